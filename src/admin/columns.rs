//! PgBouncer's column lists (as PgBouncer 1.18 answers them), in PgBouncer's order, followed
//! by pgcorral's own columns.

pub const POOLS: &[&str] = &[
    "database",
    "user",
    "cl_active",
    "cl_waiting",
    "cl_active_cancel_req",
    "cl_waiting_cancel_req",
    "sv_active",
    "sv_active_cancel",
    "sv_being_canceled",
    "sv_idle",
    "sv_used",
    "sv_tested",
    "sv_login",
    "maxwait",
    "maxwait_us",
    "pool_mode",
    // pgcorral
    "servers",
    "shards",
];

pub const CLIENTS: &[&str] = &[
    "type",
    "user",
    "database",
    "state",
    "addr",
    "port",
    "local_addr",
    "local_port",
    "connect_time",
    "request_time",
    "wait",
    "wait_us",
    "close_needed",
    "ptr",
    "link",
    "remote_pid",
    "tls",
    "application_name",
    // pgcorral
    "id",
];

pub const SERVERS: &[&str] = CLIENTS;

pub const STATS: &[&str] = &[
    "database",
    "total_xact_count",
    "total_query_count",
    "total_received",
    "total_sent",
    "total_xact_time",
    "total_query_time",
    "total_wait_time",
    "avg_xact_count",
    "avg_query_count",
    "avg_recv",
    "avg_sent",
    "avg_xact_time",
    "avg_query_time",
    "avg_wait_time",
];

pub const STATS_TOTALS: &[&str] = &[
    "database",
    "xact_count",
    "query_count",
    "bytes_received",
    "bytes_sent",
    "xact_time",
    "query_time",
    "wait_time",
];

pub const STATS_AVERAGES: &[&str] = STATS_TOTALS;

pub const DATABASES: &[&str] = &[
    "name",
    "host",
    "port",
    "database",
    "force_user",
    "pool_size",
    "min_pool_size",
    "reserve_pool",
    "pool_mode",
    "max_connections",
    "current_connections",
    "paused",
    "disabled",
    // pgcorral
    "shards",
    "servers",
];

pub const USERS: &[&str] = &["name", "pool_mode"];

pub const LISTS: &[&str] = &["list", "items"];

pub const CONFIG: &[&str] = &["key", "value", "default", "changeable"];

pub const VERSION: &[&str] = &["version"];

pub const STATE: &[&str] = &["key", "value"];

pub const BANS: &[&str] = &[
    "database",
    "user",
    "host",
    "port",
    "role",
    "reason",
    "banned_at",
    "remaining_s",
];

/// SHOW PREPARED_STATEMENTS (pgcorral's own).
pub const PREPARED_STATEMENTS: &[&str] = &[
    "database",
    "user",
    "client_parses",
    "server_parses",
    "binds",
    "evictions",
];

/// SHOW PINS (pgcorral's own): pinned_now, then one count per reason.
pub const PINS: &[&str] = &[
    "database",
    "user",
    "pinned_now",
    "listen",
    "temp_table",
    "advisory_lock",
    "hold_cursor",
    "sql_prepare",
    "session_auth",
    "set_config",
    "load",
];
