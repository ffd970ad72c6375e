//! The clients logged in on one arbiter, for the admin console (`SHOW CLIENTS`, `SHOW
//! SERVERS`): each client's identity and its current state, updated by the client itself.

use std::cell::Cell;
use std::net::SocketAddr;
use std::time::{Instant, SystemTime};

/// A client's state, as `SHOW CLIENTS` prints it (PgBouncer's names).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientState {
    /// Logged in; with or without a server.
    Active,
    /// Waiting for a server connection.
    Waiting,
}

impl ClientState {
    pub fn as_str(self) -> &'static str {
        match self {
            ClientState::Active => "active",
            ClientState::Waiting => "waiting",
        }
    }
}

/// The server connection a client holds.
#[derive(Debug, Clone, Copy)]
pub struct ServerLink {
    pub id: u64,
    pub addr: SocketAddr,
    pub local: Option<SocketAddr>,
    pub pid: i32,
    pub created: Instant,
}

/// One logged-in client.
#[derive(Debug)]
pub struct ClientInfo {
    pub id: u64,
    pub user: String,
    pub database: String,
    pub addr: SocketAddr,
    pub local: Option<SocketAddr>,
    pub connect_time: SystemTime,
    pub application_name: String,
    pub cancel_pid: i32,
    pub state: Cell<ClientState>,
    pub request_time: Cell<SystemTime>,
    pub waiting_since: Cell<Option<Instant>>,
    pub server: Cell<Option<ServerLink>>,
    /// KILL on the console: the client ends at its next chance.
    pub killed: Cell<bool>,
    /// Its server connection is pinned to it by session state.
    pub pinned: Cell<bool>,
    pub kill: tokio::sync::Notify,
}
