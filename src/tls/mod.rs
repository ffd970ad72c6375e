//! TLS for both sides, built from PEM bytes (reading the files is the daemon's job): the
//! configuration shown to clients, the one used toward servers with libpq's sslmode
//! meanings, and what the admin console and login need to know of a session.

mod acceptor;
mod connector;
mod error;
mod pem;
mod subject;
mod summary;
mod verify;

pub use acceptor::acceptor_config;
pub use connector::{connector_config, server_name};
pub use error::{describe_handshake_error, TlsError};
pub use pem::PemFile;
pub use subject::common_name;
pub use summary::TlsSummary;

/// The ALPN protocol name PostgreSQL 17 uses, required with direct TLS.
pub const ALPN_POSTGRESQL: &[u8] = b"postgresql";

/// The first byte of a TLS handshake record: a client that starts with it speaks TLS at once
/// (PostgreSQL 17's `sslnegotiation=direct`) instead of sending an SSLRequest.
pub const TLS_HANDSHAKE_RECORD: u8 = 0x16;

/// The cryptography pgcorral uses (ring: no C toolchain beyond what ring builds itself).
fn provider() -> std::sync::Arc<rustls::crypto::CryptoProvider> {
    std::sync::Arc::new(rustls::crypto::ring::default_provider())
}

#[cfg(test)]
mod tests;
