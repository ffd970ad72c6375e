//! Errors a client sees, each with the SQLSTATE PostgreSQL would use, and server-side errors.

use std::time::Duration;

use pgcorral::protocol::backend::ErrorFields;
use pgcorral::protocol::ProtocolError;
use thiserror::Error;

use crate::shards::ShardError;

/// Why a client connection ends (or a request fails) on the pooler's side.
#[derive(Debug, Error)]
pub enum ClientError {
    #[error("protocol violation: {0}")]
    Protocol(#[from] ProtocolError),
    #[error("{0}")]
    BadStartup(String),
    #[error("password authentication failed for user \"{user}\"")]
    AuthFailed { user: String },
    #[error("no such database or user: database \"{database}\", user \"{user}\"")]
    NoSuchPool {
        database: String,
        user: String,
        unknown_database: bool,
    },
    #[error("too many clients already (max_client_conn = {max})")]
    TooManyClients { max: usize },
    #[error("no server connection available in pool \"{pool}\" after waiting {waited:?} (query_wait_timeout)")]
    WaitTimeout { pool: String, waited: Duration },
    #[error("cannot connect to the server for pool \"{pool}\": {reason}")]
    ServerUnavailable { pool: String, reason: String },
    #[error("{}", .0.message)]
    ServerRejected(ErrorFields),
    #[error("no {role} server available in pool \"{pool}\"{}", match waited {
        Some(w) => format!(" after waiting {w:?} (query_wait_timeout)"),
        None => ": every eligible server is banned or down".to_string(),
    })]
    NoServer {
        pool: String,
        role: &'static str,
        waited: Option<Duration>,
    },
    #[error("{0}")]
    Shard(#[from] ShardError),
    #[error("server connection lost ({0})")]
    ServerGone(String),
    #[error("pgcorral is shutting down")]
    ShuttingDown,
    #[error("terminated by the administrator (KILL)")]
    Killed,
    #[error("client did not finish logging in within client_login_timeout ({0:?})")]
    LoginTimeout(Duration),
    #[error("idle transaction timeout: the transaction stayed idle longer than idle_transaction_timeout ({0:?})")]
    IdleTransactionTimeout(Duration),
    #[error("client idle timeout: no query for longer than client_idle_timeout ({0:?})")]
    ClientIdleTimeout(Duration),
    #[error("transaction blocks not allowed in statement pooling mode")]
    StatementModeTransaction,
    #[error("database \"{0}\" is disabled (DISABLE on the admin console; ENABLE lifts it)")]
    Disabled(String),
    #[error("user \"{user}\" may not use the admin console: add it to admin_users or stats_users")]
    NotConsoleUser { user: String },
    #[error("the client took none of its results for {0:?} (client_write_timeout)")]
    SlowClient(Duration),
    #[error("too many logins in progress (max_logins_in_progress = {0}); this was the oldest")]
    LoginEvicted(usize),
    /// No access rule fits the client (PostgreSQL's message).
    #[error("no pg_hba.conf entry for host \"{host}\", user \"{user}\", database \"{database}\", {}", encryption(*.tls))]
    NoHbaEntry {
        host: String,
        user: String,
        database: String,
        tls: bool,
    },
    /// A `reject` access rule fits the client (PostgreSQL's message).
    #[error("pg_hba.conf rejects connection for host \"{host}\", user \"{user}\", database \"{database}\", {}", encryption(*.tls))]
    HbaRejected {
        host: String,
        user: String,
        database: String,
        tls: bool,
    },
    /// The access rule wants a client certificate naming the user, and there is none.
    #[error("certificate authentication failed for user \"{user}\"")]
    CertificateFailed { user: String },
    #[error("SSL required: this pooler refuses connections without TLS (client_tls_sslmode = \"{mode}\")")]
    TlsRequired { mode: &'static str },
    /// The TLS handshake with the client failed, or a direct TLS client did not negotiate
    /// ALPN "postgresql": nothing can be said to it in plain text.
    #[error("TLS with the client failed: {0}")]
    TlsHandshake(String),
    /// The client's socket failed or closed: nobody to tell.
    #[error("client connection error: {0}")]
    Io(#[from] std::io::Error),
}

impl ClientError {
    /// The SQLSTATE sent with this error.
    pub fn sqlstate(&self) -> &str {
        match self {
            ClientError::ServerRejected(f) => &f.code,
            ClientError::Protocol(_) | ClientError::BadStartup(_) => "08P01",
            ClientError::AuthFailed { .. } => "28P01",
            ClientError::NoSuchPool {
                unknown_database: true,
                ..
            } => "3D000",
            ClientError::NoSuchPool { .. } => "28000",
            ClientError::TooManyClients { .. } => "53300",
            ClientError::WaitTimeout { .. }
            | ClientError::NoServer {
                waited: Some(_), ..
            } => "53400",
            ClientError::NoServer { .. } => "08006",
            ClientError::Shard(e) => e.sqlstate(),
            ClientError::ServerUnavailable { .. } | ClientError::ServerGone(_) => "08006",
            ClientError::ShuttingDown | ClientError::Killed => "57P01",
            ClientError::LoginTimeout(_) => "08P01",
            ClientError::IdleTransactionTimeout(_) => "25P03",
            ClientError::ClientIdleTimeout(_) => "57P05",
            ClientError::StatementModeTransaction => "0A000",
            ClientError::NotConsoleUser { .. }
            | ClientError::NoHbaEntry { .. }
            | ClientError::HbaRejected { .. }
            | ClientError::CertificateFailed { .. }
            | ClientError::TlsRequired { .. } => "28000",
            ClientError::TlsHandshake(_) => "08P01",
            ClientError::Disabled(_) => "57P03",
            ClientError::Io(_) | ClientError::SlowClient(_) => "08006",
            ClientError::LoginEvicted(_) => "53300",
        }
    }

    /// Whether the client can still be told (its socket is not the problem).
    pub fn tellable(&self) -> bool {
        // A client that does not read cannot be told either, nor one mid-handshake.
        !matches!(
            self,
            ClientError::Io(_) | ClientError::SlowClient(_) | ClientError::TlsHandshake(_)
        )
    }
}

impl ServerError {
    /// The server refused this pool's credentials (SQLSTATE class 28), or pgcorral has none
    /// it can use: a problem of this user's pool, not of the server, so no ban.
    pub fn is_credentials_problem(&self) -> bool {
        match self {
            ServerError::Credentials(_) => true,
            ServerError::Login(f) => f.code.starts_with("28"),
            _ => false,
        }
    }
}

/// How PostgreSQL names the connection's encryption in access-rule errors.
fn encryption(tls: bool) -> &'static str {
    if tls {
        "SSL encryption"
    } else {
        "no encryption"
    }
}

/// Why a server connection could not be made or used.
#[derive(Debug, Error)]
pub enum ServerError {
    #[error("connect to {addr} failed: {source}")]
    Connect {
        addr: String,
        source: std::io::Error,
    },
    #[error("TLS with server {addr} failed: {reason}")]
    Tls { addr: String, reason: String },
    #[error("server {addr} does not support TLS (server_tls_sslmode = \"{mode}\" requires it)")]
    TlsUnsupported { addr: String, mode: &'static str },
    #[error("server did not answer within server_connect_timeout ({0:?})")]
    ConnectTimeout(Duration),
    #[error("server refused login: {} ({})", .0.message, .0.code)]
    Login(ErrorFields),
    #[error("cannot authenticate to the server: {0}")]
    Auth(String),
    /// pgcorral lacks what it needs to log in (no plaintext password, no pass-through key yet,
    /// a verifier the server no longer has): its own problem, not the server's, so no ban.
    #[error("cannot authenticate to the server: {0}")]
    Credentials(String),
    #[error("server error: {} ({})", .0.message, .0.code)]
    Query(ErrorFields),
    #[error("protocol violation by the server: {0}")]
    Protocol(#[from] ProtocolError),
    #[error("server closed the connection")]
    Closed,
    #[error("server i/o error: {0}")]
    Io(#[from] std::io::Error),
    #[error("salvage took longer than {0:?}")]
    SalvageTimeout(Duration),
}
