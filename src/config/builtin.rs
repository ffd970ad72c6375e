//! Built-in defaults: the values CONTRACT.md shows, used where neither a pool nor
//! `[defaults]` sets a key.

use std::net::SocketAddr;
use std::time::Duration;

use super::enums::{
    AuthType, DefaultRole, LoadBalancing, LogLevel, PoolMode, ShardingFunction, TlsMode,
};
use super::model::{General, Pool};

/// Default `general.max_message_size`: 1 GiB.
pub const DEFAULT_MAX_MESSAGE_SIZE: usize = 1 << 30;

/// Default `general.auth_query`: PgBouncer's.
pub const DEFAULT_AUTH_QUERY: &str = "SELECT usename, passwd FROM pg_shadow WHERE usename = $1";

/// Smallest accepted `general.max_message_size`.
pub const MIN_MAX_MESSAGE_SIZE: usize = 1024;

/// Worker threads for `workers = 0`: one per CPU core, at least 1.
pub(super) fn cpu_workers() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

impl Default for General {
    /// The built-in `[general]`; `workers` is resolved to the CPU count.
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 6432)),
            workers: cpu_workers(),
            workers_configured: 0,
            max_client_conn: 10_000,
            max_db_connections: 0,
            max_user_connections: 0,
            listen_backlog: 4096,
            tcp_keepalive: true,
            tcp_keepidle: None,
            tcp_keepintvl: None,
            tcp_keepcnt: None,
            tcp_user_timeout: None,
            admin_users: Vec::new(),
            stats_users: Vec::new(),
            metrics_listen: None,
            shutdown_timeout: Duration::from_secs(30),
            client_login_timeout: Some(Duration::from_secs(15)),
            auth_type: AuthType::ScramSha256,
            log_level: LogLevel::Info,
            max_message_size: DEFAULT_MAX_MESSAGE_SIZE,
            max_logins_in_progress: 1000,
            client_write_timeout: Some(Duration::from_secs(60)),
            tls_cert_file: None,
            tls_key_file: None,
            tls_ca_file: None,
            client_tls_sslmode: TlsMode::Disable,
            server_tls_sslmode: TlsMode::Prefer,
            server_tls_ca_file: None,
            server_tls_cert_file: None,
            server_tls_key_file: None,
            auth_user: None,
            auth_query: DEFAULT_AUTH_QUERY.to_string(),
            auth_query_cache_ttl: Some(Duration::from_secs(60)),
            auth_file: None,
            auth_hba_file: None,
        }
    }
}

impl Default for Pool {
    /// The built-in pool settings, with an empty name and database and no shards.
    fn default() -> Self {
        Self {
            name: String::new(),
            database: String::new(),
            pool_mode: PoolMode::Transaction,
            pool_size: 20,
            min_pool_size: 0,
            reserve_pool_size: 0,
            max_prepared_statements: 200,
            reserve_pool_timeout: Duration::from_secs(5),
            query_wait_timeout: Some(Duration::from_secs(120)),
            server_connect_timeout: Some(Duration::from_secs(5)),
            server_idle_timeout: Some(Duration::from_secs(600)),
            server_lifetime: Some(Duration::from_secs(3600)),
            idle_transaction_timeout: None,
            client_idle_timeout: None,
            query_timeout: None,
            server_reset_query: "DISCARD ALL".to_string(),
            load_balancing: LoadBalancing::Random,
            default_role: DefaultRole::Any,
            read_write_split: false,
            healthcheck_interval: Duration::from_secs(5),
            healthcheck_timeout: Duration::from_secs(1),
            ban_time: Duration::from_secs(60),
            max_replica_lag: None,
            sharding_function: ShardingFunction::PgBigintHash,
            automatic_sharding_key: None,
            default_shard: None,
            shards: Vec::new(),
        }
    }
}
