//! What `SHOW CLIENTS` and `SHOW SERVERS` print in the `tls` column: the protocol version and
//! cipher suite of a session.

use std::fmt;

use rustls::{CipherSuite, CommonState, ProtocolVersion};

/// A TLS session's version and cipher suite: small and `Copy`, so every client can keep one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TlsSummary {
    version: ProtocolVersion,
    suite: CipherSuite,
}

impl TlsSummary {
    /// The summary of an established session (None before the handshake completes).
    pub fn of(session: &CommonState) -> Option<TlsSummary> {
        Some(TlsSummary {
            version: session.protocol_version()?,
            suite: session.negotiated_cipher_suite()?.suite(),
        })
    }
}

/// `TLSv1.3/TLS13_AES_256_GCM_SHA384`, like PgBouncer's `version/cipher`.
impl fmt::Display for TlsSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.version.as_str() {
            Some(v) => f.write_str(&v.replace('_', "."))?,
            None => write!(f, "TLS({:?})", self.version)?,
        }
        match self.suite.as_str() {
            Some(s) => write!(f, "/{s}"),
            None => write!(f, "/{:?}", self.suite),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prints_version_and_suite() {
        let s = TlsSummary {
            version: ProtocolVersion::TLSv1_3,
            suite: CipherSuite::TLS13_AES_256_GCM_SHA384,
        };
        assert_eq!(s.to_string(), "TLSv1.3/TLS13_AES_256_GCM_SHA384");
    }
}
