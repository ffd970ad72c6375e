//! A minimal raw-protocol client for tests that need exact control over bytes and timing
//! (dropping a socket mid-COPY, sending garbage, reading an asynchronous FATAL).

use std::collections::HashMap;
use std::time::Duration;

use tokio::net::TcpStream;

use super::clients::{
    error_fields, query_message, raw_connect, read_message, send, startup_message,
};

const DEADLINE: Duration = Duration::from_secs(20);

/// A logged-in raw connection.
pub struct RawClient {
    pub stream: TcpStream,
    /// ParameterStatus values received at login.
    pub params: HashMap<String, String>,
    /// BackendKeyData (pid, secret).
    pub key: (i32, i32),
}

/// Rows of text values; None is NULL.
pub type Rows = Vec<Vec<Option<String>>>;

impl RawClient {
    /// Logs in without a password (trust); panics on an error.
    pub async fn login(port: u16, user: &str, db: &str, extra: &[(&str, &str)]) -> RawClient {
        match RawClient::try_login(port, user, db, extra).await {
            Ok(c) => c,
            Err(f) => panic!("login failed: {f:?}"),
        }
    }

    /// Logs in without a password; returns the ErrorResponse fields on failure.
    pub async fn try_login(
        port: u16,
        user: &str,
        db: &str,
        extra: &[(&str, &str)],
    ) -> Result<RawClient, HashMap<u8, String>> {
        let mut stream = raw_connect(port).await;
        send(&mut stream, &startup_message(user, db, extra)).await;
        let mut params = HashMap::new();
        let mut key = (0, 0);
        loop {
            let Some((tag, body)) = read_message(&mut stream, DEADLINE).await else {
                return Err(HashMap::from([(
                    b'M',
                    "connection closed during login".into(),
                )]));
            };
            match tag {
                b'S' => {
                    let mut parts = body.split(|&b| b == 0);
                    let k = String::from_utf8_lossy(parts.next().unwrap_or_default()).into_owned();
                    let v = String::from_utf8_lossy(parts.next().unwrap_or_default()).into_owned();
                    params.insert(k, v);
                }
                b'K' if body.len() == 8 => {
                    key = (
                        i32::from_be_bytes(body[0..4].try_into().unwrap()),
                        i32::from_be_bytes(body[4..8].try_into().unwrap()),
                    );
                }
                b'E' => return Err(error_fields(&body)),
                b'Z' => {
                    return Ok(RawClient {
                        stream,
                        params,
                        key,
                    })
                }
                _ => {}
            }
        }
    }

    /// Sends bytes as they are.
    pub async fn send(&mut self, bytes: &[u8]) {
        send(&mut self.stream, bytes).await;
    }

    /// Runs a simple query and reads to ReadyForQuery: the rows, or the first error.
    pub async fn query(&mut self, sql: &str) -> Result<Rows, HashMap<u8, String>> {
        self.send(&query_message(sql)).await;
        self.read_result().await
    }

    /// Reads the answer to a request up to ReadyForQuery.
    pub async fn read_result(&mut self) -> Result<Rows, HashMap<u8, String>> {
        let mut rows = Vec::new();
        let mut error = None;
        loop {
            let Some((tag, body)) = read_message(&mut self.stream, DEADLINE).await else {
                return Err(error
                    .unwrap_or_else(|| HashMap::from([(b'M', "connection closed".to_string())])));
            };
            match tag {
                b'D' => rows.push(data_row(&body)),
                b'E' if error.is_none() => error = Some(error_fields(&body)),
                b'Z' => return error.map_or(Ok(rows), Err),
                _ => {}
            }
        }
    }

    /// Runs a query and returns the first column of the first row.
    pub async fn value(&mut self, sql: &str) -> String {
        let rows = self
            .query(sql)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e:?}"));
        rows.first()
            .and_then(|r| r.first().cloned().flatten())
            .unwrap_or_else(|| panic!("{sql}: no value"))
    }

    /// Waits for the next message, expecting an ErrorResponse; returns its fields.
    pub async fn expect_error(&mut self, deadline: Duration) -> HashMap<u8, String> {
        loop {
            match read_message(&mut self.stream, deadline).await {
                Some((b'E', body)) => return error_fields(&body),
                Some(_) => continue,
                None => panic!("expected an ErrorResponse, got EOF or timeout"),
            }
        }
    }

    /// True when the server closes the connection within `deadline` (after any messages).
    pub async fn closed_within(&mut self, deadline: Duration) -> bool {
        let end = tokio::time::Instant::now() + deadline;
        loop {
            let left = end.saturating_duration_since(tokio::time::Instant::now());
            if left.is_zero() {
                return false;
            }
            if read_message(&mut self.stream, left).await.is_none() {
                return tokio::time::Instant::now() < end;
            }
        }
    }
}

fn data_row(body: &[u8]) -> Vec<Option<String>> {
    let mut out = Vec::new();
    if body.len() < 2 {
        return out;
    }
    let n = i16::from_be_bytes([body[0], body[1]]);
    let mut at = 2;
    for _ in 0..n {
        let len = i32::from_be_bytes(body[at..at + 4].try_into().unwrap());
        at += 4;
        if len < 0 {
            out.push(None);
        } else {
            let end = at + len as usize;
            out.push(Some(String::from_utf8_lossy(&body[at..end]).into_owned()));
            at = end;
        }
    }
    out
}
