//! What pgcorral knows about one PostgreSQL server (host:port), shared by every pool and
//! arbiter: its role (configured, or detected with `pg_is_in_recovery()`), whether it is
//! banned and why, and how many connections to it are checked out. Read with atomic loads on
//! the per-transaction path; written by the BalancerActor.

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use pgcorral::config::ServerRole;

/// A server's role as routing sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Primary,
    Replica,
    /// Not known yet (role `auto` before its first check, or after a failed one).
    Unknown,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Primary => "primary",
            Role::Replica => "replica",
            Role::Unknown => "unknown",
        }
    }
    fn to_u8(self) -> u8 {
        match self {
            Role::Unknown => 0,
            Role::Primary => 1,
            Role::Replica => 2,
        }
    }
    fn from_u8(v: u8) -> Role {
        match v {
            1 => Role::Primary,
            2 => Role::Replica,
            _ => Role::Unknown,
        }
    }
}

/// Why a server was banned.
#[derive(Debug, Clone, PartialEq)]
pub enum BanReason {
    HealthCheckFailed(String),
    HealthCheckTimeout(Duration),
    ConnectFailed(String),
    ConnectionLost,
    CheckoutTimeout,
    QueryTimeout,
    ReplicaLag {
        lag: Duration,
        max: Duration,
    },
    /// BAN on the admin console, by this user.
    Admin(String),
}

impl fmt::Display for BanReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BanReason::HealthCheckFailed(e) => write!(f, "health check failed: {e}"),
            BanReason::HealthCheckTimeout(t) => {
                write!(
                    f,
                    "health check took longer than healthcheck_timeout ({t:?})"
                )
            }
            BanReason::ConnectFailed(e) => write!(f, "connecting failed: {e}"),
            BanReason::ConnectionLost => {
                write!(f, "a client lost its connection to it mid-transaction")
            }
            BanReason::CheckoutTimeout => {
                write!(f, "a checkout on it timed out (query_wait_timeout)")
            }
            BanReason::QueryTimeout => write!(f, "a query on it exceeded query_timeout"),
            BanReason::ReplicaLag { lag, max } => {
                write!(f, "replica lag {lag:?} exceeds max_replica_lag ({max:?})")
            }
            BanReason::Admin(user) => write!(f, "BAN on the admin console by {user}"),
        }
    }
}

/// A ban in force.
#[derive(Debug, Clone)]
pub struct Ban {
    pub reason: BanReason,
    pub at: SystemTime,
    pub until: Instant,
}

/// Shared state of one server.
#[derive(Debug)]
pub struct ServerState {
    pub host: String,
    pub port: u16,
    pub configured: ServerRole,
    detected: AtomicU8,
    banned: AtomicBool,
    ban: Mutex<Option<Ban>>,
    /// Connections to this server checked out by clients, across arbiters and users.
    pub outstanding: AtomicUsize,
    /// Bans so far.
    pub bans_total: std::sync::atomic::AtomicU64,
}

impl ServerState {
    pub fn new(host: &str, port: u16, configured: ServerRole) -> ServerState {
        ServerState {
            host: host.to_owned(),
            port,
            configured,
            detected: AtomicU8::new(0),
            banned: AtomicBool::new(false),
            ban: Mutex::new(None),
            outstanding: AtomicUsize::new(0),
            bans_total: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// "host:port", as servers are named in logs and the admin console.
    pub fn addr(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }

    /// The role routing uses: detected when known, else configured (`auto` is unknown until
    /// its first check). A configured primary found in recovery is a replica: a write must
    /// never go to a server in recovery.
    pub fn role(&self) -> Role {
        let detected = Role::from_u8(self.detected.load(Ordering::Acquire));
        match (self.configured, detected) {
            (ServerRole::Auto, d) => d,
            (_, Role::Replica) => Role::Replica,
            (ServerRole::Primary, _) => Role::Primary,
            (ServerRole::Replica, _) => Role::Replica,
        }
    }

    pub fn set_detected(&self, role: Role) -> Role {
        Role::from_u8(self.detected.swap(role.to_u8(), Ordering::AcqRel))
    }

    pub fn is_banned(&self) -> bool {
        self.banned.load(Ordering::Acquire)
    }

    pub fn ban_info(&self) -> Option<Ban> {
        self.ban.lock().ok().and_then(|b| b.clone())
    }

    /// Records a ban (the BalancerActor is the only caller). Returns false if one was
    /// already in force (its deadline is extended).
    pub(crate) fn set_ban(&self, reason: BanReason, ban_time: Duration) -> bool {
        let until = Instant::now() + ban_time;
        let Ok(mut b) = self.ban.lock() else {
            return false;
        };
        let fresh = b.is_none();
        if fresh {
            self.bans_total.fetch_add(1, Ordering::Relaxed);
        }
        match b.as_mut() {
            Some(existing) => existing.until = existing.until.max(until),
            None => {
                *b = Some(Ban {
                    reason,
                    at: SystemTime::now(),
                    until,
                })
            }
        }
        self.banned.store(true, Ordering::Release);
        fresh
    }

    pub(crate) fn clear_ban(&self) -> Option<Ban> {
        let old = self.ban.lock().ok().and_then(|mut b| b.take());
        self.banned.store(false, Ordering::Release);
        old
    }
}
