//! TLS for tests: a throwaway CA and the certificates it signs (rcgen), PEM files for
//! pgcorral, psql and PostgreSQL, psql driven by a conninfo string, and a raw TLS client
//! (after an SSLRequest, or direct as PostgreSQL 17 clients do) speaking protocol 3.0.

use std::collections::HashMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

use super::clients::{
    cancel_request, error_fields, query_message, ssl_request, startup_message, CmdOutput,
    PSQL_TIMEOUT,
};
use super::{clear_pg_env, give_to_postgres, new_test_dir, pg_bin, run_cmd};

/// How long a raw TLS exchange may take.
const DEADLINE: Duration = Duration::from_secs(20);

/// A certificate authority of its own (its name is unique, as webpki finds issuers by name).
pub struct Ca {
    cert: rcgen::Certificate,
    key: KeyPair,
    /// The CA certificate, PEM.
    pub pem: String,
}

/// A certificate and its key, signed by a [`Ca`].
#[derive(Clone)]
pub struct Issued {
    pub cert_pem: String,
    pub key_pem: String,
    /// The certificate, DER (to compare with what a peer showed).
    pub der: Vec<u8>,
}

impl Ca {
    pub fn new(name: &str) -> Ca {
        let key = KeyPair::generate().expect("generate CA key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        let cert = params.self_signed(&key).expect("self-sign CA");
        let pem = cert.pem();
        Ca { cert, key, pem }
    }

    /// A certificate for `names` (IP addresses become IP names, others DNS names) with
    /// common name `cn`.
    pub fn issue(&self, names: &[&str], cn: &str) -> Issued {
        let key = KeyPair::generate().expect("generate key");
        let mut params =
            CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
                .expect("certificate params");
        params.distinguished_name.push(DnType::CommonName, cn);
        let cert = params
            .signed_by(&key, &self.cert, &self.key)
            .expect("sign certificate");
        Issued {
            cert_pem: cert.pem(),
            der: cert.der().to_vec(),
            key_pem: key.serialize_pem(),
        }
    }
}

/// A temp dir of PEM files (mode 0600), removed on drop.
pub struct Files {
    pub dir: PathBuf,
}

impl Files {
    pub fn new() -> Files {
        Files {
            dir: new_test_dir(),
        }
    }

    /// Writes `text` to `name` in the dir (mode 0600); its path.
    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.dir.join(name);
        std::fs::write(&path, text).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
            .unwrap_or_else(|e| panic!("chmod {}: {e}", path.display()));
        path
    }

    /// `<stem>.crt` and `<stem>.key`.
    pub fn write_issued(&self, stem: &str, issued: &Issued) -> (PathBuf, PathBuf) {
        (
            self.write(&format!("{stem}.crt"), &issued.cert_pem),
            self.write(&format!("{stem}.key"), &issued.key_pem),
        )
    }

    /// Makes the dir and every file in it the `postgres` user's (PostgreSQL refuses a key
    /// file that is not its own with mode 0600).
    pub fn give_to_postgres(&self) {
        give_to_postgres(&self.dir);
        for entry in std::fs::read_dir(&self.dir)
            .expect("read files dir")
            .flatten()
        {
            give_to_postgres(&entry.path());
        }
    }
}

impl Drop for Files {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `psql -X -At -w -v ON_ERROR_STOP=1 -d "<conninfo>" -c <command>...` (PGCONNECT_TIMEOUT=10,
/// killed after 60 s). Backslash commands such as `\conninfo` are allowed.
pub fn psql_conninfo(conninfo: &str, commands: &[&str]) -> CmdOutput {
    let mut cmd = std::process::Command::new(pg_bin("psql"));
    clear_pg_env(&mut cmd);
    for var in ["PGSSLCERT", "PGSSLKEY", "PGSSLROOTCERT", "PGSSLCRL"] {
        cmd.env_remove(var);
    }
    cmd.env("PGCONNECT_TIMEOUT", "10").args([
        "-X",
        "-At",
        "-w",
        "-v",
        "ON_ERROR_STOP=1",
        "-d",
        conninfo,
    ]);
    for c in commands {
        cmd.args(["-c", c]);
    }
    run_cmd(&mut cmd, PSQL_TIMEOUT)
}

/// Whether psql's `\conninfo` output says the session is encrypted.
pub fn says_ssl(out: &CmdOutput) -> bool {
    out.stdout.contains("SSL connection (protocol: TLSv")
}

/// A rustls client configuration trusting `ca_pem`, offering ALPN "postgresql" when `alpn`,
/// and showing `identity` when given.
pub fn client_config(
    ca_pem: &str,
    alpn: bool,
    identity: Option<&Issued>,
) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(cert.expect("CA PEM")).expect("add CA");
    }
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("protocol versions")
    .with_root_certificates(roots);
    let mut config = match identity {
        Some(id) => builder
            .with_client_auth_cert(
                vec![CertificateDer::from(id.der.clone())],
                PrivateKeyDer::from_pem_slice(id.key_pem.as_bytes()).expect("key PEM"),
            )
            .expect("client certificate"),
        None => builder.with_no_client_auth(),
    };
    if alpn {
        config.alpn_protocols = vec![b"postgresql".to_vec()];
    }
    Arc::new(config)
}

/// A TLS connection to 127.0.0.1:port, verified against the configured CA as "127.0.0.1":
/// after an SSLRequest answered `S`, or `direct`ly (the ClientHello first).
pub async fn tls_connect(
    port: u16,
    config: Arc<rustls::ClientConfig>,
    direct: bool,
) -> std::io::Result<TlsStream<TcpStream>> {
    let work = async {
        let mut tcp = TcpStream::connect(("127.0.0.1", port)).await?;
        tcp.set_nodelay(true)?;
        if !direct {
            tcp.write_all(&ssl_request()).await?;
            let answer = tcp.read_u8().await?;
            if answer != b'S' {
                return Err(std::io::Error::other(format!(
                    "SSLRequest answered {:?}",
                    char::from(answer)
                )));
            }
        }
        let name = ServerName::IpAddress(std::net::IpAddr::from([127, 0, 0, 1]).into());
        TlsConnector::from(config).connect(name, tcp).await
    };
    tokio::time::timeout(DEADLINE, work)
        .await
        .unwrap_or_else(|_| Err(std::io::Error::other("TLS connect timed out")))
}

/// The certificate the server showed on `stream`.
pub fn peer_certificate(stream: &TlsStream<TcpStream>) -> Vec<u8> {
    stream
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|c| c.first())
        .map(|c| c.to_vec())
        .unwrap_or_default()
}

/// Writes and flushes (a TLS write is on the wire only once flushed).
pub async fn send<S: AsyncWrite + Unpin>(stream: &mut S, bytes: &[u8]) {
    stream.write_all(bytes).await.expect("write");
    stream.flush().await.expect("flush");
}

/// One backend message (tag, body); None on EOF, error or after `deadline`.
pub async fn read_message<S: AsyncRead + Unpin>(
    stream: &mut S,
    deadline: Duration,
) -> Option<(u8, Vec<u8>)> {
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

/// Logs in (trust) and returns the BackendKeyData; the ErrorResponse fields on failure (a
/// closed connection is `M` = "connection closed").
pub async fn login<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    user: &str,
    db: &str,
) -> Result<(i32, i32), HashMap<u8, String>> {
    send(stream, &startup_message(user, db, &[])).await;
    let mut key = (0, 0);
    loop {
        match read_message(stream, DEADLINE).await {
            None => return Err(HashMap::from([(b'M', "connection closed".into())])),
            Some((b'E', body)) => return Err(error_fields(&body)),
            Some((b'K', body)) if body.len() == 8 => {
                key = (
                    i32::from_be_bytes([body[0], body[1], body[2], body[3]]),
                    i32::from_be_bytes([body[4], body[5], body[6], body[7]]),
                )
            }
            Some((b'Z', _)) => return Ok(key),
            Some(_) => {}
        }
    }
}

/// Runs `sql`; the first column of its first row, or the ErrorResponse fields.
pub async fn query_value<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    sql: &str,
) -> Result<String, HashMap<u8, String>> {
    send(stream, &query_message(sql)).await;
    read_result(stream).await
}

/// Reads the answer to a query up to ReadyForQuery: the first column of its first row, or
/// the ErrorResponse fields.
pub async fn read_result<S: AsyncRead + Unpin>(
    stream: &mut S,
) -> Result<String, HashMap<u8, String>> {
    let mut value = None;
    let mut error = None;
    loop {
        match read_message(stream, DEADLINE).await {
            None => return Err(HashMap::from([(b'M', "connection closed".into())])),
            Some((b'D', body)) if value.is_none() => {
                let len = i32::from_be_bytes([body[2], body[3], body[4], body[5]]);
                value = Some(if len < 0 {
                    String::new()
                } else {
                    String::from_utf8_lossy(&body[6..6 + len as usize]).into_owned()
                });
            }
            Some((b'E', body)) => error = Some(error_fields(&body)),
            Some((b'Z', _)) => {
                return match error {
                    Some(e) => Err(e),
                    None => Ok(value.unwrap_or_default()),
                }
            }
            Some(_) => {}
        }
    }
}

/// Sends a CancelRequest for `key` over `stream` (plain or TLS) and waits for the pooler to
/// close it.
pub async fn cancel_over<S: AsyncRead + AsyncWrite + Unpin>(stream: &mut S, key: (i32, i32)) {
    send(stream, &cancel_request(key.0, key.1)).await;
    let mut sink = [0u8; 16];
    let _ = tokio::time::timeout(DEADLINE, stream.read(&mut sink)).await;
}

/// Whether the peer closes `stream` (EOF or an error, with no message) within `deadline`.
pub async fn closed_without_reply<S: AsyncRead + Unpin>(
    stream: &mut S,
    deadline: Duration,
) -> bool {
    let mut buf = [0u8; 64];
    matches!(
        tokio::time::timeout(deadline, stream.read(&mut buf)).await,
        Ok(Ok(0)) | Ok(Err(_))
    )
}

/// The general-section lines that offer TLS to clients with `mode`, from `files`.
pub fn client_tls_lines(mode: &str, cert: &Path, key: &Path, ca: Option<&Path>) -> String {
    let mut lines = format!(
        "client_tls_sslmode = \"{mode}\"\ntls_cert_file = \"{}\"\ntls_key_file = \"{}\"\n",
        cert.display(),
        key.display()
    );
    if let Some(ca) = ca {
        lines.push_str(&format!("tls_ca_file = \"{}\"\n", ca.display()));
    }
    lines
}
