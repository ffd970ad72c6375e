//! Protocol errors: what was wrong with the bytes a peer sent.

use thiserror::Error;

/// A violation of the wire protocol by a client or a server.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum ProtocolError {
    #[error("message of {len} bytes exceeds the limit of {max} bytes (max_message_size)")]
    MessageTooLong { len: usize, max: usize },
    #[error("invalid message length {0}")]
    InvalidLength(i64),
    #[error("invalid startup packet length {0}")]
    InvalidStartupLength(i64),
    #[error("unsupported frontend protocol {major}.{minor}: pgcorral speaks protocol 3.0")]
    UnsupportedProtocol { major: u16, minor: u16 },
    #[error("malformed {what}")]
    Malformed { what: &'static str },
    #[error("unexpected message type {:?} ({context})", char::from(*tag))]
    Unexpected { tag: u8, context: &'static str },
    /// A packet that is valid but not allowed where it came (a second SSLRequest, bytes sent
    /// in plain after an SSLRequest).
    #[error("{0}")]
    OutOfSequence(&'static str),
    #[error("connection error: {0}")]
    Io(std::io::ErrorKind),
}

impl From<std::io::Error> for ProtocolError {
    fn from(e: std::io::Error) -> Self {
        ProtocolError::Io(e.kind())
    }
}

impl ProtocolError {
    pub fn malformed(what: &'static str) -> Self {
        ProtocolError::Malformed { what }
    }
}
