//! The PostgreSQL wire protocol v3: framing, startup packets, message inspection and builders.
//!
//! Nothing here touches a socket. The actors read bytes into buffers and ask this module where
//! the message boundaries are, what a message says, and how to build the few messages the
//! pooler originates itself.

pub mod backend;
pub mod builder;
pub mod codec;
pub mod error;
pub mod frontend;
pub mod scanner;
pub mod startup;
pub mod tag;

pub use codec::{Message, MessageCodec};
pub use error::ProtocolError;
pub use scanner::Scanner;
pub use startup::{StartupCodec, StartupPacket};

/// PostgreSQL's own limit on a message: 1 GiB.
pub const DEFAULT_MAX_MESSAGE_SIZE: usize = 1 << 30;
/// Length of a tagged message header: one tag byte and a four-byte length.
pub const HEADER_LEN: usize = 5;
