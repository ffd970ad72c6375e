//! The clients logged in on one arbiter, for the admin console (`SHOW CLIENTS`, `SHOW
//! SERVERS`): each client's identity and its current state, updated by the client itself.

use std::cell::Cell;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Instant, SystemTime};

use pgcorral::tls::TlsSummary;

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

/// The server connection a client holds (one per server connection, shared by the clients
/// that use it in turn).
#[derive(Debug)]
pub struct ServerLink {
    pub id: u64,
    pub addr: SocketAddr,
    pub local: Option<SocketAddr>,
    pub pid: i32,
    pub created: Instant,
    /// TLS version and suite (None: plain).
    pub tls: Option<TlsSummary>,
}

/// One logged-in client. Every client has one, parked or not: keep it small.
pub struct ClientInfo {
    pub id: u64,
    /// Shared by the clients of the same user (and database) on an arbiter.
    pub user: Rc<str>,
    pub database: Rc<str>,
    pub addr: SocketAddr,
    pub local: Option<SocketAddr>,
    /// TLS version and suite (None: plain).
    pub tls: Option<TlsSummary>,
    pub connect_time: SystemTime,
    pub application_name: String,
    pub cancel_pid: i32,
    pub state: Cell<ClientState>,
    pub request_time: Cell<Instant>,
    pub waiting_since: Cell<Option<Instant>>,
    pub server: Cell<Option<Rc<ServerLink>>>,
    /// KILL on the console: the client ends at its next chance (its arbiter's attention
    /// signal wakes it).
    pub killed: Cell<bool>,
    /// Its server connection is pinned to it by session state.
    pub pinned: Cell<bool>,
    /// Its key in the arbiter's parking lot while it is parked.
    pub parked: Cell<Option<usize>>,
}

impl ClientInfo {
    /// The server connection it holds now.
    pub fn server_link(&self) -> Option<Rc<ServerLink>> {
        let link = self.server.take();
        self.server.set(link.clone());
        link
    }
}
