//! The resolved config: defaults applied, values typed and checked. What the program uses.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use super::enums::{
    AuthType, DefaultRole, LoadBalancing, LogLevel, PoolMode, ServerRole, ShardingFunction, TlsMode,
};

/// A loaded, valid config.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// `[general]`.
    pub general: General,
    /// `[users.NAME]`, by name.
    pub users: BTreeMap<String, User>,
    /// `[pools.NAME]`, by name, with `[defaults]` and built-in defaults applied.
    pub pools: BTreeMap<String, Pool>,
}

impl Config {
    /// The pool clients reach by asking for database `name`.
    pub fn pool(&self, name: &str) -> Option<&Pool> {
        self.pools.get(name)
    }

    /// The user called `name`.
    pub fn user(&self, name: &str) -> Option<&User> {
        self.users.get(name)
    }

    /// Server connections for (`pool`, `user`): the user's `pool_size` if set, else the pool's.
    pub fn effective_pool_size(&self, pool: &Pool, user: &User) -> usize {
        user.pool_size.unwrap_or(pool.pool_size)
    }

    /// Pool mode for (`pool`, `user`): the user's `pool_mode` if set, else the pool's.
    pub fn effective_pool_mode(&self, pool: &Pool, user: &User) -> PoolMode {
        user.pool_mode.unwrap_or(pool.pool_mode)
    }
}

/// `[general]`: daemon-wide settings.
#[derive(Debug, Clone, PartialEq)]
pub struct General {
    /// Address clients connect to.
    pub listen: SocketAddr,
    /// Worker threads to run: `workers_configured`, or the CPU count if that is 0. At least 1.
    pub workers: usize,
    /// `workers` as written; 0 means one per CPU core.
    pub workers_configured: usize,
    /// Clients beyond this get SQLSTATE 53300 and are closed.
    pub max_client_conn: usize,
    /// Cap on server connections per database across its pools; 0 = none.
    pub max_db_connections: usize,
    /// Cap on server connections per user across pools; 0 = none.
    pub max_user_connections: usize,
    /// `listen(2)` backlog.
    pub listen_backlog: u32,
    /// Whether TCP keepalive is enabled on client and server sockets.
    pub tcp_keepalive: bool,
    /// Idle time before the first keepalive probe; `None` = OS default.
    pub tcp_keepidle: Option<Duration>,
    /// Time between keepalive probes; `None` = OS default.
    pub tcp_keepintvl: Option<Duration>,
    /// Unanswered probes before the connection is dropped; `None` = OS default.
    pub tcp_keepcnt: Option<u32>,
    /// `TCP_USER_TIMEOUT`; `None` = OS default.
    pub tcp_user_timeout: Option<Duration>,
    /// Users that may use the admin console and change things (need not be in `[users]`).
    pub admin_users: Vec<String>,
    /// Users that may use the admin console's SHOW commands only.
    pub stats_users: Vec<String>,
    /// Where to serve Prometheus metrics; `None` = disabled.
    pub metrics_listen: Option<SocketAddr>,
    /// Longest wait for clients inside a transaction on graceful shutdown.
    pub shutdown_timeout: Duration,
    /// Time a client has to finish startup and authentication; `None` = no limit.
    pub client_login_timeout: Option<Duration>,
    /// How clients authenticate.
    pub auth_type: AuthType,
    /// Log verbosity.
    pub log_level: LogLevel,
    /// Longest client or server message accepted, in bytes; longer is a protocol error.
    pub max_message_size: usize,
    /// Logins (startup and authentication) in progress at once; at the cap, a new
    /// connection closes the oldest login still in progress on its worker.
    pub max_logins_in_progress: usize,
    /// A client that takes none of the output waiting for it for this long is disconnected
    /// (its server connection is salvaged); `None` = never.
    pub client_write_timeout: Option<Duration>,
    /// TLS certificate chain (PEM) shown to clients.
    pub tls_cert_file: Option<PathBuf>,
    /// Private key (PEM) of `tls_cert_file`.
    pub tls_key_file: Option<PathBuf>,
    /// CA certificates (PEM) that client certificates must chain to.
    pub tls_ca_file: Option<PathBuf>,
    /// TLS toward clients.
    pub client_tls_sslmode: TlsMode,
    /// TLS toward servers.
    pub server_tls_sslmode: TlsMode,
    /// CA certificates (PEM) that server certificates must chain to.
    pub server_tls_ca_file: Option<PathBuf>,
    /// Client certificate chain (PEM) pgcorral shows to servers.
    pub server_tls_cert_file: Option<PathBuf>,
    /// Private key (PEM) of `server_tls_cert_file`.
    pub server_tls_key_file: Option<PathBuf>,
    /// Role that runs `auth_query` for users not in `[users]` or `auth_file`.
    pub auth_user: Option<String>,
    /// Query returning (user name, secret) for `$1`.
    pub auth_query: String,
    /// How long a secret fetched with `auth_query` is used before it is fetched again;
    /// `None` = fetched at every login.
    pub auth_query_cache_ttl: Option<Duration>,
    /// PgBouncer's `userlist.txt`: `"user" "secret"` lines, merged with `[users]`.
    pub auth_file: Option<PathBuf>,
    /// pg_hba.conf-style rules, used when `auth_type = "hba"`.
    pub auth_hba_file: Option<PathBuf>,
}

/// `[users.NAME]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// The user name (the table's name; lowercase if it came from the environment).
    pub name: String,
    /// Plaintext, `md5<32 hex>` or a SCRAM verifier; `None` = may log in only with `trust`.
    pub password: Option<String>,
    /// Role used toward the servers; `None` = the same name.
    pub server_user: Option<String>,
    /// Password used toward the servers; `None` = the same password.
    pub server_password: Option<String>,
    /// Overrides the pools' `pool_size` for this user.
    pub pool_size: Option<usize>,
    /// Overrides the pools' `pool_mode` for this user.
    pub pool_mode: Option<PoolMode>,
}

/// `[pools.NAME]` with `[defaults]` and built-in defaults applied.
#[derive(Debug, Clone, PartialEq)]
pub struct Pool {
    /// The pool's name: the database name clients ask for.
    pub name: String,
    /// Database name on the servers.
    pub database: String,
    /// When a server connection goes back to the pool.
    pub pool_mode: PoolMode,
    /// Server connections per (pool, user).
    pub pool_size: usize,
    /// Server connections kept open even when idle; at most `pool_size`.
    pub min_pool_size: usize,
    /// Extra connections allowed once clients have waited `reserve_pool_timeout`.
    pub reserve_pool_size: usize,
    /// Named prepared statements kept per server connection (0 = no tracking).
    pub max_prepared_statements: usize,
    /// Wait after which the reserve pool may be used.
    pub reserve_pool_timeout: Duration,
    /// Longest a client may wait for a server connection; `None` = forever.
    pub query_wait_timeout: Option<Duration>,
    /// Longest a server connection attempt may take; `None` = no limit.
    pub server_connect_timeout: Option<Duration>,
    /// Idle server connections older than this are closed; `None` = never.
    pub server_idle_timeout: Option<Duration>,
    /// Server connections older than this are closed when released; `None` = never.
    pub server_lifetime: Option<Duration>,
    /// Clients idle inside a transaction this long are closed; `None` = never.
    pub idle_transaction_timeout: Option<Duration>,
    /// Clients idle this long are closed; `None` = never.
    pub client_idle_timeout: Option<Duration>,
    /// Queries running longer are canceled (57014); `None` = never.
    pub query_timeout: Option<Duration>,
    /// Query run on a server when a session-mode client leaves.
    pub server_reset_query: String,
    /// How a server is chosen among candidates.
    pub load_balancing: LoadBalancing,
    /// Where queries go without a hint.
    pub default_role: DefaultRole,
    /// Route reads to replicas and writes to the primary by parsing queries.
    pub read_write_split: bool,
    /// Time between health checks of a server.
    pub healthcheck_interval: Duration,
    /// Longest a health check may take.
    pub healthcheck_timeout: Duration,
    /// How long a failed server stays banned.
    pub ban_time: Duration,
    /// Replicas whose replay lag exceeds this are banned until they catch up; `None` = no limit.
    pub max_replica_lag: Option<Duration>,
    /// How a sharding key maps to a shard.
    pub sharding_function: ShardingFunction,
    /// `table.column` whose value picks the shard automatically.
    pub automatic_sharding_key: Option<String>,
    /// Shard used when a query names none.
    pub default_shard: Option<String>,
    /// The shards, in shard order; an unsharded pool has exactly one.
    pub shards: Vec<Shard>,
}

/// One shard of a pool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shard {
    /// Database name on this shard's servers (the shard's own, or the pool's).
    pub database: String,
    /// The shard's servers, at least one.
    pub servers: Vec<Server>,
}

/// One PostgreSQL server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Server {
    /// Host name or address.
    pub host: String,
    /// TCP port, 1..=65535.
    pub port: u16,
    /// Primary, replica, or detected.
    pub role: ServerRole,
}
