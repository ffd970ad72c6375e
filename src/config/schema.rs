//! The raw config file shape: serde structs that mirror the TOML, every leaf a [`Field`].
//!
//! Nothing here has defaults applied; an absent key is `None`. Unknown keys are refused
//! (`deny_unknown_fields`); `keys.rs` checks them first over the whole tree so that every
//! unknown key is reported with its full path, and uses these structs' field lists to know
//! which keys exist.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use serde::Deserialize;

use super::enums::{
    AuthType, DefaultRole, LoadBalancing, LogLevel, PoolMode, ServerRole, ShardingFunction, TlsMode,
};
use super::value::{Field, SecretText};

/// The whole file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(super) struct RawConfig {
    /// `[general]`: daemon-wide settings.
    pub general: RawGeneral,
    /// `[users.NAME]`: one table per user.
    pub users: BTreeMap<String, RawUser>,
    /// `[defaults]`: pool settings that apply to every pool that does not set them.
    pub defaults: RawPoolSettings,
    /// `[pools.NAME]`: one table per pool (the database name clients ask for).
    pub pools: BTreeMap<String, RawPool>,
}

/// `[general]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(super) struct RawGeneral {
    /// Address clients connect to, `IP:port`.
    pub listen: Option<Field<SocketAddr>>,
    /// Worker threads; 0 = one per CPU core.
    pub workers: Option<Field<usize>>,
    /// Most clients connected at once.
    pub max_client_conn: Option<Field<usize>>,
    /// Cap on server connections per database across its pools; 0 = none.
    pub max_db_connections: Option<Field<usize>>,
    /// Cap on server connections per user across pools; 0 = none.
    pub max_user_connections: Option<Field<usize>>,
    /// `listen(2)` backlog.
    pub listen_backlog: Option<Field<u32>>,
    /// Whether to enable TCP keepalive on client and server sockets.
    pub tcp_keepalive: Option<Field<bool>>,
    /// Idle time before the first keepalive probe.
    pub tcp_keepidle: Option<Field<Duration>>,
    /// Time between keepalive probes.
    pub tcp_keepintvl: Option<Field<Duration>>,
    /// Unanswered probes before the connection is dropped.
    pub tcp_keepcnt: Option<Field<u32>>,
    /// `TCP_USER_TIMEOUT`.
    pub tcp_user_timeout: Option<Field<Duration>>,
    /// Users that may use the admin console and change things.
    pub admin_users: Option<Field<Vec<String>>>,
    /// Users that may use the admin console's SHOW commands only.
    pub stats_users: Option<Field<Vec<String>>>,
    /// Address of the Prometheus endpoint; absent = disabled.
    pub metrics_listen: Option<Field<SocketAddr>>,
    /// Longest wait for clients inside a transaction on shutdown.
    pub shutdown_timeout: Option<Field<Duration>>,
    /// Time a client has to finish startup and authentication.
    pub client_login_timeout: Option<Field<Duration>>,
    /// How clients authenticate.
    pub auth_type: Option<Field<AuthType>>,
    /// Log verbosity.
    pub log_level: Option<Field<LogLevel>>,
    /// Longest protocol message accepted, in bytes.
    pub max_message_size: Option<Field<usize>>,
    /// Logins in progress at once.
    pub max_logins_in_progress: Option<Field<usize>>,
    /// How long a client may leave its output unread.
    pub client_write_timeout: Option<Field<Duration>>,
    /// TLS certificate chain shown to clients.
    pub tls_cert_file: Option<Field<String>>,
    /// Its private key.
    pub tls_key_file: Option<Field<String>>,
    /// CA for client certificates.
    pub tls_ca_file: Option<Field<String>>,
    /// TLS toward clients.
    pub client_tls_sslmode: Option<Field<TlsMode>>,
    /// TLS toward servers.
    pub server_tls_sslmode: Option<Field<TlsMode>>,
    /// CA for server certificates.
    pub server_tls_ca_file: Option<Field<String>>,
    /// Client certificate shown to servers.
    pub server_tls_cert_file: Option<Field<String>>,
    /// Its private key.
    pub server_tls_key_file: Option<Field<String>>,
    /// Role that runs auth_query.
    pub auth_user: Option<Field<String>>,
    /// Query returning a user's secret.
    pub auth_query: Option<Field<String>>,
    /// How long a fetched secret is reused.
    pub auth_query_cache_ttl: Option<Field<Duration>>,
    /// PgBouncer's userlist.txt.
    pub auth_file: Option<Field<String>>,
    /// pg_hba.conf-style rules for auth_type = "hba".
    pub auth_hba_file: Option<Field<String>>,
}

/// `[users.NAME]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(super) struct RawUser {
    /// Password or verifier; absent = only `auth_type = "trust"` lets the user in.
    pub password: Option<Field<SecretText>>,
    /// Role used toward the servers, if different.
    pub server_user: Option<Field<String>>,
    /// Password used toward the servers, if different.
    pub server_password: Option<Field<SecretText>>,
    /// Per-user override of the pools' `pool_size`.
    pub pool_size: Option<Field<usize>>,
    /// Per-user override of the pools' `pool_mode`.
    pub pool_mode: Option<Field<PoolMode>>,
}

/// One entry of a `servers = [...]` array.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(super) struct RawServer {
    /// Host name or address (required).
    pub host: Option<Field<String>>,
    /// TCP port (required).
    pub port: Option<Field<u16>>,
    /// `primary` (default), `replica` or `auto`.
    pub role: Option<Field<ServerRole>>,
}

/// One `[[pools.NAME.shards]]` table.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(super) struct RawShard {
    /// Database name on this shard's servers; default: the pool's.
    pub database: Option<Field<String>>,
    /// This shard's servers.
    pub servers: Option<Vec<RawServer>>,
}

/// Defines `RawPoolSettings` (`[defaults]`) and `RawPool` (`[pools.NAME]`) from one list of
/// the pool settings both accept, so the two cannot drift apart.
macro_rules! pool_structs {
    ($( $(#[$doc:meta])* $name:ident: $ty:ty, )+) => {
        /// `[defaults]`: every pool setting, applied to pools that do not set it.
        #[derive(Debug, Clone, Default, Deserialize)]
        #[serde(default, deny_unknown_fields)]
        pub(super) struct RawPoolSettings {
            $( $(#[$doc])* pub $name: Option<Field<$ty>>, )+
        }

        /// `[pools.NAME]`: the pool settings plus what only a pool has.
        #[derive(Debug, Clone, Default, Deserialize)]
        #[serde(default, deny_unknown_fields)]
        pub(super) struct RawPool {
            /// Database name on the servers; default: the pool's name.
            pub database: Option<Field<String>>,
            /// Servers of an unsharded pool.
            pub servers: Option<Vec<RawServer>>,
            /// Shards of a sharded pool, in shard order.
            pub shards: Option<Vec<RawShard>>,
            $( $(#[$doc])* pub $name: Option<Field<$ty>>, )+
        }

        impl RawPool {
            /// The pool settings this pool sets itself.
            pub(super) fn settings(&self) -> RawPoolSettings {
                RawPoolSettings { $( $name: self.$name.clone(), )+ }
            }
        }
    };
}

pool_structs! {
    /// session | transaction | statement | auto.
    pool_mode: PoolMode,
    /// Server connections per (pool, user).
    pool_size: usize,
    /// Server connections kept open even when idle.
    min_pool_size: usize,
    /// Extra connections allowed when clients have waited `reserve_pool_timeout`.
    reserve_pool_size: usize,
    /// Named prepared statements kept per server connection in transaction/statement/auto
    /// mode (least recently used are closed); 0 = pass them through untouched.
    max_prepared_statements: usize,
    /// Wait after which the reserve pool may be used.
    reserve_pool_timeout: Duration,
    /// Longest a client may wait for a server connection; "0s" = forever.
    query_wait_timeout: Duration,
    /// Longest a server connection attempt may take; "0s" = no limit.
    server_connect_timeout: Duration,
    /// Idle server connections older than this are closed; "0s" = never.
    server_idle_timeout: Duration,
    /// Server connections older than this are closed when released; "0s" = never.
    server_lifetime: Duration,
    /// Clients idle inside a transaction this long are closed; "0s" = never.
    idle_transaction_timeout: Duration,
    /// Clients idle this long are closed; "0s" = never.
    client_idle_timeout: Duration,
    /// Queries running longer are canceled; "0s" = never.
    query_timeout: Duration,
    /// Query run when a session-mode client leaves.
    server_reset_query: String,
    /// random | round_robin | least_outstanding.
    load_balancing: LoadBalancing,
    /// any | primary | replica.
    default_role: DefaultRole,
    /// Route reads to replicas and writes to the primary by parsing queries.
    read_write_split: bool,
    /// Time between health checks of a server.
    healthcheck_interval: Duration,
    /// Longest a health check may take.
    healthcheck_timeout: Duration,
    /// How long a failed server stays banned.
    ban_time: Duration,
    /// Replicas lagging more than this are banned until they catch up; "0s" = no limit.
    max_replica_lag: Duration,
    /// pg_bigint_hash | sha1.
    sharding_function: ShardingFunction,
    /// "table.column" whose value picks the shard automatically.
    automatic_sharding_key: String,
    /// Shard used when a query names none.
    default_shard: String,
}
