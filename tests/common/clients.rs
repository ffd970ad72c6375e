//! Real clients: `psql` and `pgbench` processes, tokio-postgres connections, and raw protocol-3.0 TCP streams.

use std::collections::HashMap;
use std::process::Command;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::{clear_pg_env, pg_bin, run_cmd};

/// How long a client `psql` may run before it is killed (status -1).
pub const PSQL_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a `pgbench` without `-T` may run before it is killed; with `-T N`, N s + this.
pub const PGBENCH_TIMEOUT: Duration = Duration::from_secs(300);

/// Outcome of a client process. `status` is the exit code, or -1 when it could not be spawned, was killed
/// by a signal, or was killed by the harness after its timeout (then `stderr` ends with a `[harness: ...]` note).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CmdOutput {
    pub status: i32,
    pub stdout: String,
    pub stderr: String,
}

impl CmdOutput {
    /// Exit status 0.
    pub fn success(&self) -> bool {
        self.status == 0
    }
}

fn client_command(name: &str, password: Option<&str>) -> Command {
    let mut cmd = Command::new(pg_bin(name));
    clear_pg_env(&mut cmd);
    cmd.env("PGCONNECT_TIMEOUT", "10");
    if let Some(pw) = password {
        cmd.env("PGPASSWORD", pw);
    }
    cmd
}

/// `psql -X -At -w -v ON_ERROR_STOP=1 -h 127.0.0.1 -p port -U user -d db -c sql` with `PGPASSWORD` when given
/// and `PGCONNECT_TIMEOUT=10`. `-w`: never prompt for a password (fail instead). Killed after 60 s.
/// Never panics.
pub fn psql(port: u16, user: &str, db: &str, password: Option<&str>, sql: &str) -> CmdOutput {
    let mut cmd = client_command("psql", password);
    cmd.args([
        "-X",
        "-At",
        "-w",
        "-v",
        "ON_ERROR_STOP=1",
        "-h",
        "127.0.0.1",
        "-p",
    ])
    .arg(port.to_string())
    .args(["-U", user, "-d", db, "-c", sql]);
    run_cmd(&mut cmd, PSQL_TIMEOUT)
}

/// `pgbench -h 127.0.0.1 -p port -U user <args> db` with `PGPASSWORD` when given and `PGCONNECT_TIMEOUT=10`.
/// Killed after 300 s, or after N + 300 s when `args` has `-T N`. Never panics.
pub fn pgbench(
    port: u16,
    user: &str,
    db: &str,
    password: Option<&str>,
    args: &[&str],
) -> CmdOutput {
    let mut cmd = client_command("pgbench", password);
    cmd.args(["-h", "127.0.0.1", "-p"])
        .arg(port.to_string())
        .args(["-U", user])
        .args(args)
        .arg(db);
    run_cmd(&mut cmd, PGBENCH_TIMEOUT + pgbench_duration(args))
}

/// The `-T N` / `-TN` / `--time=N` of pgbench arguments.
fn pgbench_duration(args: &[&str]) -> Duration {
    let mut secs = 0;
    for (i, a) in args.iter().enumerate() {
        let v = match *a {
            "-T" | "--time" => args.get(i + 1).copied(),
            _ => a.strip_prefix("--time=").or_else(|| a.strip_prefix("-T")),
        };
        if let Some(n) = v.and_then(|v| v.parse::<u64>().ok()) {
            secs = n;
        }
    }
    Duration::from_secs(secs)
}

/// The N of pgbench's `tps = N (...)` line (stdout, or stderr if absent there).
pub fn pgbench_tps(out: &CmdOutput) -> Option<f64> {
    find_value(out, "tps = ").and_then(|v| v.parse().ok())
}

/// The N of pgbench's `number of failed transactions: N (x%)` line; None when there is no such line.
pub fn pgbench_failed(out: &CmdOutput) -> Option<u64> {
    find_value(out, "number of failed transactions: ").and_then(|v| v.parse().ok())
}

/// The first whitespace-separated token after `prefix` on the first line starting with it.
fn find_value<'a>(out: &'a CmdOutput, prefix: &str) -> Option<&'a str> {
    [&out.stdout, &out.stderr].into_iter().find_map(|text| {
        text.lines()
            .find_map(|l| l.trim_start().strip_prefix(prefix))
            .and_then(|rest| rest.split_whitespace().next())
    })
}

/// A tokio-postgres connection (NoTls) to 127.0.0.1:port with a 10 s connect timeout; the connection
/// driver runs on a spawned task (whose handle is returned; it ends when the connection closes).
/// Must be called inside a tokio runtime.
pub async fn connect(
    port: u16,
    user: &str,
    db: &str,
    password: Option<&str>,
) -> Result<(tokio_postgres::Client, tokio::task::JoinHandle<()>), tokio_postgres::Error> {
    let mut config = tokio_postgres::Config::new();
    config
        .host("127.0.0.1")
        .port(port)
        .user(user)
        .dbname(db)
        .connect_timeout(Duration::from_secs(10));
    if let Some(pw) = password {
        config.password(pw);
    }
    let (client, connection) = config.connect(tokio_postgres::NoTls).await?;
    let driver = tokio::spawn(async move {
        // Errors here are the connection closing (server gone, backend terminated): the client sees them.
        let _ = connection.await;
    });
    Ok((client, driver))
}

/// A plain TCP connection to 127.0.0.1:port (TCP_NODELAY) for protocol-level tests. Panics if it cannot
/// connect within 10 s.
pub async fn raw_connect(port: u16) -> TcpStream {
    let stream = tokio::time::timeout(
        Duration::from_secs(10),
        TcpStream::connect(("127.0.0.1", port)),
    )
    .await
    .unwrap_or_else(|_| panic!("raw_connect: timed out connecting to 127.0.0.1:{port}"))
    .unwrap_or_else(|e| panic!("raw_connect: cannot connect to 127.0.0.1:{port}: {e}"));
    let _ = stream.set_nodelay(true);
    stream
}

/// A protocol 3.0 StartupMessage with `user`, `database` and the `extra` parameters
/// (e.g. `("application_name", "x")`, `("options", "-c search_path=s")`).
pub fn startup_message(user: &str, db: &str, extra: &[(&str, &str)]) -> Vec<u8> {
    let mut body = Vec::new();
    body.extend_from_slice(&196608i32.to_be_bytes()); // 3.0
    for (k, v) in [("user", user), ("database", db)]
        .iter()
        .chain(extra.iter())
    {
        push_cstr(&mut body, k);
        push_cstr(&mut body, v);
    }
    body.push(0);
    with_length(None, body)
}

/// An SSLRequest (8 bytes); the server answers with a single byte `S` or `N`, not a tagged message.
pub fn ssl_request() -> Vec<u8> {
    with_length(None, 80877103i32.to_be_bytes().to_vec())
}

/// A CancelRequest for a backend's (pid, secret key), as received in BackendKeyData.
pub fn cancel_request(pid: i32, secret: i32) -> Vec<u8> {
    let mut body = 80877102i32.to_be_bytes().to_vec();
    body.extend_from_slice(&pid.to_be_bytes());
    body.extend_from_slice(&secret.to_be_bytes());
    with_length(None, body)
}

/// A simple Query message (`Q`).
pub fn query_message(sql: &str) -> Vec<u8> {
    let mut body = Vec::new();
    push_cstr(&mut body, sql);
    with_length(Some(b'Q'), body)
}

/// A PasswordMessage (`p`) with a cleartext password (answer to AuthenticationCleartextPassword).
pub fn password_message(password: &str) -> Vec<u8> {
    let mut body = Vec::new();
    push_cstr(&mut body, password);
    with_length(Some(b'p'), body)
}

/// A Terminate message (`X`).
pub fn terminate_message() -> Vec<u8> {
    with_length(Some(b'X'), Vec::new())
}

/// Writes `bytes` to the stream and flushes; panics on I/O errors.
pub async fn send(stream: &mut TcpStream, bytes: &[u8]) {
    stream
        .write_all(bytes)
        .await
        .expect("send: write to raw stream");
    stream.flush().await.expect("send: flush raw stream");
}

/// Reads one backend message: (tag, body without the length). None on EOF, I/O error, a malformed
/// length, or when `deadline` passes (a message cut by the deadline leaves the stream mid-message).
pub async fn read_message(stream: &mut TcpStream, deadline: Duration) -> Option<(u8, Vec<u8>)> {
    let read = async {
        let tag = stream.read_u8().await.ok()?;
        let len = stream.read_i32().await.ok()?;
        if !(4..=(1 << 30)).contains(&len) {
            return None;
        }
        let mut body = vec![0u8; len as usize - 4];
        stream.read_exact(&mut body).await.ok()?;
        Some((tag, body))
    };
    tokio::time::timeout(deadline, read).await.ok().flatten()
}

/// Reads messages until one with tag `want` (returned), skipping others; None on EOF/timeout. If an
/// ErrorResponse (`E`) arrives while waiting for something else, returns it instead.
pub async fn read_until(
    stream: &mut TcpStream,
    want: u8,
    deadline: Duration,
) -> Option<(u8, Vec<u8>)> {
    let end = tokio::time::Instant::now() + deadline;
    loop {
        let left = end.saturating_duration_since(tokio::time::Instant::now());
        let (tag, body) = read_message(stream, left).await?;
        if tag == want || tag == b'E' {
            return Some((tag, body));
        }
    }
}

/// Fields of an ErrorResponse / NoticeResponse body: `b'S'` severity, `b'C'` SQLSTATE, `b'M'` message,
/// `b'D'` detail, `b'H'` hint, ...
pub fn error_fields(body: &[u8]) -> HashMap<u8, String> {
    let mut fields = HashMap::new();
    let mut rest = body;
    while let Some((&code, after)) = rest.split_first() {
        if code == 0 {
            break;
        }
        let end = after.iter().position(|&b| b == 0).unwrap_or(after.len());
        fields.insert(code, String::from_utf8_lossy(&after[..end]).into_owned());
        rest = after.get(end + 1..).unwrap_or(&[]);
    }
    fields
}

fn push_cstr(buf: &mut Vec<u8>, s: &str) {
    buf.extend_from_slice(s.as_bytes());
    buf.push(0);
}

/// `[tag] Int32(len including itself) body`.
fn with_length(tag: Option<u8>, body: Vec<u8>) -> Vec<u8> {
    let mut msg = Vec::with_capacity(body.len() + 5);
    msg.extend(tag);
    msg.extend_from_slice(&(body.len() as i32 + 4).to_be_bytes());
    msg.extend_from_slice(&body);
    msg
}

/// `pgbench -i -s 1 -q` against 127.0.0.1:port (the pgbench tables); panics with its output
/// if it fails.
pub fn pgbench_init(port: u16) {
    let out = pgbench(port, "postgres", "postgres", None, &["-i", "-s", "1", "-q"]);
    assert!(
        out.success(),
        "pgbench -i failed: {}{}",
        out.stdout,
        out.stderr
    );
}
