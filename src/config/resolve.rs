//! Resolution: raw values to the resolved [`Config`], in the order pool > `[defaults]` >
//! built-in, recording every problem met on the way.
//!
//! A value that cannot be read, or breaks its rule, is reported at the key where it was
//! written and replaced by the next value in that order, so that resolution always finishes
//! and the rest of the config is still checked. The result is used only if no problem was
//! found.

use std::collections::BTreeMap;
use std::time::Duration;

use super::builtin::cpu_workers;
use super::enums::ServerRole;
use super::error::Problems;
use super::model::{Config, General, Pool, Server, Shard, User};
use super::path;
use super::schema::{RawConfig, RawGeneral, RawPool, RawPoolSettings, RawServer, RawUser};
use super::validate::{self as rules, Rule};
use super::value::Field;

/// Resolves the whole config.
pub(super) fn resolve(raw: &RawConfig, problems: &mut Problems) -> Config {
    let general = general(problems, &raw.general);
    let users = raw
        .users
        .iter()
        .map(|(name, user_raw)| (name.clone(), user(problems, name, user_raw)))
        .collect();
    let mut template = Pool::default();
    apply_settings(problems, &mut template, &raw.defaults, "defaults");
    let pools: BTreeMap<String, Pool> = raw
        .pools
        .iter()
        .map(|(name, pool_raw)| (name.clone(), pool(problems, &template, name, pool_raw)))
        .collect();
    Config {
        general,
        users,
        pools,
    }
}

/// Reads the keys of one table (`prefix`), recording problems under `prefix.key`.
struct Section<'p> {
    problems: &'p mut Problems,
    prefix: String,
}

impl<'p> Section<'p> {
    fn new(problems: &'p mut Problems, prefix: impl Into<String>) -> Self {
        Self {
            problems,
            prefix: prefix.into(),
        }
    }

    fn path(&self, key: &str) -> String {
        path::join(&self.prefix, key)
    }

    /// The value of `key` if it is set, readable and obeys `rule`.
    fn get_checked<T: Clone>(
        &mut self,
        field: &Option<Field<T>>,
        key: &str,
        rule: Rule<T>,
    ) -> Option<T> {
        let result = match field.as_ref()? {
            Field(Ok(value)) => rule(value).map(|()| value.clone()),
            Field(Err(reason)) => Err(reason.clone()),
        };
        result
            .map_err(|reason| self.problems.push(self.path(key), reason))
            .ok()
    }

    /// The value of `key` if it is set and readable.
    fn get<T: Clone>(&mut self, field: &Option<Field<T>>, key: &str) -> Option<T> {
        self.get_checked(field, key, rules::any)
    }

    /// Overrides `target` with the value of `key`, if set and valid.
    fn set_checked<T: Clone>(
        &mut self,
        target: &mut T,
        field: &Option<Field<T>>,
        key: &str,
        rule: Rule<T>,
    ) {
        if let Some(value) = self.get_checked(field, key, rule) {
            *target = value;
        }
    }

    /// Overrides `target` with the value of `key`, if set and readable.
    fn set<T: Clone>(&mut self, target: &mut T, field: &Option<Field<T>>, key: &str) {
        self.set_checked(target, field, key, rules::any);
    }

    /// Sets an optional `target` to the value of `key`, if set and valid.
    fn set_option<T: Clone>(
        &mut self,
        target: &mut Option<T>,
        field: &Option<Field<T>>,
        key: &str,
        rule: Rule<T>,
    ) {
        if let Some(value) = self.get_checked(field, key, rule) {
            *target = Some(value);
        }
    }

    /// Sets a timeout where `"0s"` means off (`None`).
    fn set_timeout(
        &mut self,
        target: &mut Option<Duration>,
        field: &Option<Field<Duration>>,
        key: &str,
    ) {
        if let Some(value) = self.get(field, key) {
            *target = (!value.is_zero()).then_some(value);
        }
    }

    /// Sets an optional file path; an empty string is a problem.
    fn set_path(
        &mut self,
        target: &mut Option<std::path::PathBuf>,
        field: &Option<Field<String>>,
        key: &str,
    ) {
        if let Some(value) = self.get_checked(field, key, rules::not_empty) {
            *target = Some(value.into());
        }
    }

    /// Records a problem at `key` unless one was already recorded there.
    fn missing(&mut self, key: &str, reason: String) {
        let path = self.path(key);
        if !self.problems.has(&path) {
            self.problems.push(path, reason);
        }
    }
}

fn general(problems: &mut Problems, raw: &RawGeneral) -> General {
    let mut g = General::default();
    let mut s = Section::new(problems, "general");
    s.set(&mut g.listen, &raw.listen, "listen");
    s.set(&mut g.workers_configured, &raw.workers, "workers");
    g.workers = match g.workers_configured {
        0 => cpu_workers(),
        n => n,
    };
    s.set(
        &mut g.max_client_conn,
        &raw.max_client_conn,
        "max_client_conn",
    );
    s.set(
        &mut g.max_db_connections,
        &raw.max_db_connections,
        "max_db_connections",
    );
    s.set(
        &mut g.max_user_connections,
        &raw.max_user_connections,
        "max_user_connections",
    );
    s.set(&mut g.listen_backlog, &raw.listen_backlog, "listen_backlog");
    s.set(&mut g.tcp_keepalive, &raw.tcp_keepalive, "tcp_keepalive");
    s.set_timeout(&mut g.tcp_keepidle, &raw.tcp_keepidle, "tcp_keepidle");
    s.set_timeout(&mut g.tcp_keepintvl, &raw.tcp_keepintvl, "tcp_keepintvl");
    s.set_option(
        &mut g.tcp_keepcnt,
        &raw.tcp_keepcnt,
        "tcp_keepcnt",
        rules::at_least_one,
    );
    s.set_timeout(
        &mut g.tcp_user_timeout,
        &raw.tcp_user_timeout,
        "tcp_user_timeout",
    );
    s.set(&mut g.admin_users, &raw.admin_users, "admin_users");
    s.set(&mut g.stats_users, &raw.stats_users, "stats_users");
    s.set_option(
        &mut g.metrics_listen,
        &raw.metrics_listen,
        "metrics_listen",
        rules::any,
    );
    s.set(
        &mut g.shutdown_timeout,
        &raw.shutdown_timeout,
        "shutdown_timeout",
    );
    s.set_timeout(
        &mut g.client_login_timeout,
        &raw.client_login_timeout,
        "client_login_timeout",
    );
    s.set(&mut g.auth_type, &raw.auth_type, "auth_type");
    s.set(&mut g.log_level, &raw.log_level, "log_level");
    s.set_checked(
        &mut g.max_message_size,
        &raw.max_message_size,
        "max_message_size",
        rules::message_size,
    );
    s.set_checked(
        &mut g.max_logins_in_progress,
        &raw.max_logins_in_progress,
        "max_logins_in_progress",
        rules::at_least_one,
    );
    s.set_timeout(
        &mut g.client_write_timeout,
        &raw.client_write_timeout,
        "client_write_timeout",
    );
    s.set_path(&mut g.tls_cert_file, &raw.tls_cert_file, "tls_cert_file");
    s.set_path(&mut g.tls_key_file, &raw.tls_key_file, "tls_key_file");
    s.set_path(&mut g.tls_ca_file, &raw.tls_ca_file, "tls_ca_file");
    s.set(
        &mut g.client_tls_sslmode,
        &raw.client_tls_sslmode,
        "client_tls_sslmode",
    );
    s.set(
        &mut g.server_tls_sslmode,
        &raw.server_tls_sslmode,
        "server_tls_sslmode",
    );
    s.set_path(
        &mut g.server_tls_ca_file,
        &raw.server_tls_ca_file,
        "server_tls_ca_file",
    );
    s.set_path(
        &mut g.server_tls_cert_file,
        &raw.server_tls_cert_file,
        "server_tls_cert_file",
    );
    s.set_path(
        &mut g.server_tls_key_file,
        &raw.server_tls_key_file,
        "server_tls_key_file",
    );
    s.set_option(
        &mut g.auth_user,
        &raw.auth_user,
        "auth_user",
        rules::not_empty,
    );
    s.set_checked(
        &mut g.auth_query,
        &raw.auth_query,
        "auth_query",
        rules::not_empty,
    );
    s.set_timeout(
        &mut g.auth_query_cache_ttl,
        &raw.auth_query_cache_ttl,
        "auth_query_cache_ttl",
    );
    s.set_path(&mut g.auth_file, &raw.auth_file, "auth_file");
    s.set_path(&mut g.auth_hba_file, &raw.auth_hba_file, "auth_hba_file");
    g
}

fn user(problems: &mut Problems, name: &str, raw: &RawUser) -> User {
    let mut s = Section::new(problems, path::join("users", name));
    User {
        name: name.to_string(),
        password: s
            .get_checked(&raw.password, "password", rules::password)
            .map(|p| p.0),
        server_user: s.get_checked(&raw.server_user, "server_user", rules::not_empty),
        server_password: s.get(&raw.server_password, "server_password").map(|p| p.0),
        pool_size: s.get_checked(&raw.pool_size, "pool_size", rules::at_least_one),
        pool_mode: s.get(&raw.pool_mode, "pool_mode"),
    }
}

/// Applies the pool settings of one table (`[defaults]` or a pool) over `pool`.
fn apply_settings(problems: &mut Problems, pool: &mut Pool, raw: &RawPoolSettings, prefix: &str) {
    let mut s = Section::new(problems, prefix);
    s.set(&mut pool.pool_mode, &raw.pool_mode, "pool_mode");
    s.set_checked(
        &mut pool.pool_size,
        &raw.pool_size,
        "pool_size",
        rules::at_least_one,
    );
    s.set(&mut pool.min_pool_size, &raw.min_pool_size, "min_pool_size");
    s.set(
        &mut pool.reserve_pool_size,
        &raw.reserve_pool_size,
        "reserve_pool_size",
    );
    s.set(
        &mut pool.max_prepared_statements,
        &raw.max_prepared_statements,
        "max_prepared_statements",
    );
    s.set(
        &mut pool.reserve_pool_timeout,
        &raw.reserve_pool_timeout,
        "reserve_pool_timeout",
    );
    s.set_timeout(
        &mut pool.query_wait_timeout,
        &raw.query_wait_timeout,
        "query_wait_timeout",
    );
    s.set_timeout(
        &mut pool.server_connect_timeout,
        &raw.server_connect_timeout,
        "server_connect_timeout",
    );
    s.set_timeout(
        &mut pool.server_idle_timeout,
        &raw.server_idle_timeout,
        "server_idle_timeout",
    );
    s.set_timeout(
        &mut pool.server_lifetime,
        &raw.server_lifetime,
        "server_lifetime",
    );
    s.set_timeout(
        &mut pool.idle_transaction_timeout,
        &raw.idle_transaction_timeout,
        "idle_transaction_timeout",
    );
    s.set_timeout(
        &mut pool.client_idle_timeout,
        &raw.client_idle_timeout,
        "client_idle_timeout",
    );
    s.set_timeout(&mut pool.query_timeout, &raw.query_timeout, "query_timeout");
    s.set(
        &mut pool.server_reset_query,
        &raw.server_reset_query,
        "server_reset_query",
    );
    s.set(
        &mut pool.load_balancing,
        &raw.load_balancing,
        "load_balancing",
    );
    s.set(&mut pool.default_role, &raw.default_role, "default_role");
    s.set(
        &mut pool.read_write_split,
        &raw.read_write_split,
        "read_write_split",
    );
    s.set_checked(
        &mut pool.healthcheck_interval,
        &raw.healthcheck_interval,
        "healthcheck_interval",
        rules::positive,
    );
    s.set_checked(
        &mut pool.healthcheck_timeout,
        &raw.healthcheck_timeout,
        "healthcheck_timeout",
        rules::positive,
    );
    s.set(&mut pool.ban_time, &raw.ban_time, "ban_time");
    s.set_timeout(
        &mut pool.max_replica_lag,
        &raw.max_replica_lag,
        "max_replica_lag",
    );
    s.set(
        &mut pool.sharding_function,
        &raw.sharding_function,
        "sharding_function",
    );
    s.set_option(
        &mut pool.automatic_sharding_key,
        &raw.automatic_sharding_key,
        "automatic_sharding_key",
        rules::sharding_key,
    );
    s.set_option(
        &mut pool.default_shard,
        &raw.default_shard,
        "default_shard",
        rules::not_empty,
    );
}

fn pool(problems: &mut Problems, template: &Pool, name: &str, raw: &RawPool) -> Pool {
    let prefix = path::join("pools", name);
    let mut pool = template.clone();
    pool.name = name.to_string();
    pool.database = name.to_string();
    apply_settings(problems, &mut pool, &raw.settings(), &prefix);
    Section::new(problems, prefix.as_str()).set_checked(
        &mut pool.database,
        &raw.database,
        "database",
        rules::not_empty,
    );
    pool.shards = shards(problems, raw, &prefix, &pool.database);
    pool
}

/// The pool's shards: one for `servers = [...]`, one per `[[pools.NAME.shards]]` table.
fn shards(problems: &mut Problems, raw: &RawPool, prefix: &str, database: &str) -> Vec<Shard> {
    let mut s = Section::new(problems, prefix);
    match (&raw.servers, &raw.shards) {
        (Some(_), Some(_)) => {
            s.problems.push(
                prefix,
                format!(
                    "sets both `servers` and `shards`; use `servers = [...]` for an unsharded \
                     pool or [[{prefix}.shards]] tables for a sharded one, not both"
                ),
            );
            Vec::new()
        }
        (Some(list), None) => {
            let list_path = s.path("servers");
            vec![Shard {
                database: database.to_string(),
                servers: servers(s.problems, list, &list_path),
            }]
        }
        (None, Some(shards)) => {
            if shards.is_empty() {
                s.missing(
                    "shards",
                    format!("is empty; add at least one [[{prefix}.shards]] table"),
                );
            }
            let shards_path = s.path("shards");
            shards
                .iter()
                .enumerate()
                .map(|(i, shard)| {
                    let mut s = Section::new(&mut *s.problems, path::index(&shards_path, i));
                    let database = s
                        .get_checked(&shard.database, "database", rules::not_empty)
                        .unwrap_or_else(|| database.to_string());
                    let servers = match &shard.servers {
                        Some(list) => {
                            let list_path = s.path("servers");
                            servers(s.problems, list, &list_path)
                        }
                        None => {
                            s.missing(
                                "servers",
                                "missing; each shard needs servers = [{ host = \"...\", port = 5432 }]"
                                    .to_string(),
                            );
                            Vec::new()
                        }
                    };
                    Shard { database, servers }
                })
                .collect()
        }
        (None, None) => {
            if !s.problems.has(&s.path("shards")) {
                s.missing(
                    "servers",
                    format!(
                        "missing; a pool needs servers = [{{ host = \"...\", port = 5432 }}] \
                         (or [[{prefix}.shards]] tables for a sharded pool)"
                    ),
                );
            }
            Vec::new()
        }
    }
}

/// The servers of one list; an empty list and bad entries are reported.
fn servers(problems: &mut Problems, list: &[RawServer], list_path: &str) -> Vec<Server> {
    if list.is_empty() {
        problems.push(list_path, "is empty; list at least one server");
    }
    let mut out = Vec::with_capacity(list.len());
    for (i, raw) in list.iter().enumerate() {
        let server_path = path::index(list_path, i);
        // The key check already reported an entry that was not a table at all.
        let reported = problems.has(&server_path);
        let mut s = Section::new(&mut *problems, server_path);
        let host = s.get_checked(&raw.host, "host", rules::not_empty);
        let port = s.get_checked(&raw.port, "port", rules::port);
        let mut role = ServerRole::default();
        s.set(&mut role, &raw.role, "role");
        if !reported {
            if raw.host.is_none() {
                s.missing("host", "missing; every server needs a host".to_string());
            }
            if raw.port.is_none() {
                s.missing(
                    "port",
                    "missing; every server needs a port, e.g. port = 5432".to_string(),
                );
            }
        }
        if let (Some(host), Some(port)) = (host, port) {
            out.push(Server { host, port, role });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::super::enums::{LoadBalancing, PoolMode, ServerRole};
    use super::super::load::{loaded, problems_of};
    use super::*;

    #[test]
    fn pool_beats_defaults_beats_built_in() {
        let toml = r#"
            [defaults]
            pool_size = 8
            pool_mode = "session"
            ban_time = "2m"

            [pools.a]
            pool_size = 3
            servers = [{ host = "db1", port = 5432 }]

            [pools.b]
            servers = [{ host = "db1", port = 5432 }]
        "#;
        let config = loaded(toml);
        let a = config.pool("a").unwrap();
        let b = config.pool("b").unwrap();
        assert_eq!(a.pool_size, 3); // pool
        assert_eq!(b.pool_size, 8); // [defaults]
        assert_eq!(a.pool_mode, PoolMode::Session); // [defaults]
        assert_eq!(a.ban_time, Duration::from_secs(120)); // [defaults]
        assert_eq!(a.load_balancing, LoadBalancing::Random); // built-in
        assert_eq!(b.server_reset_query, "DISCARD ALL"); // built-in
    }

    #[test]
    fn user_overrides_pool_size_and_mode() {
        let toml = r#"
            [users.batch]
            pool_size = 2
            pool_mode = "session"

            [users.web]
            password = "x"

            [pools.app]
            pool_size = 10
            servers = [{ host = "db1", port = 5432 }]
        "#;
        let config = loaded(toml);
        let pool = config.pool("app").unwrap();
        let batch = config.user("batch").unwrap();
        let web = config.user("web").unwrap();
        assert_eq!(batch.name, "batch");
        assert_eq!(batch.password, None);
        assert_eq!(config.effective_pool_size(pool, batch), 2);
        assert_eq!(config.effective_pool_mode(pool, batch), PoolMode::Session);
        assert_eq!(config.effective_pool_size(pool, web), 10);
        assert_eq!(config.effective_pool_mode(pool, web), PoolMode::Transaction);
        assert!(config.user("nobody").is_none());
        assert!(config.pool("nothing").is_none());
    }

    #[test]
    fn sharded_pool_resolution() {
        let toml = r#"
            [pools.orders]
            database = "orders_db"

            [[pools.orders.shards]]
            database = "orders_0"
            servers = [
              { host = "10.0.0.1", port = 5432, role = "primary" },
              { host = "10.0.0.2", port = 5432, role = "replica" },
            ]

            [[pools.orders.shards]]
            servers = [{ host = "10.0.1.1", port = 6543 }]

            [[pools.orders.shards]]
            database = "orders_2"
            servers = [{ host = "10.0.2.1", port = 5432, role = "auto" }]
        "#;
        let config = loaded(toml);
        let pool = config.pool("orders").unwrap();
        assert_eq!(pool.database, "orders_db");
        type Summary<'a> = Vec<(&'a str, Vec<(&'a str, u16, ServerRole)>)>;
        let summary: Summary<'_> = pool
            .shards
            .iter()
            .map(|shard| {
                let servers = shard
                    .servers
                    .iter()
                    .map(|s| (s.host.as_str(), s.port, s.role))
                    .collect();
                (shard.database.as_str(), servers)
            })
            .collect();
        assert_eq!(
            summary,
            vec![
                (
                    "orders_0",
                    vec![
                        ("10.0.0.1", 5432, ServerRole::Primary),
                        ("10.0.0.2", 5432, ServerRole::Replica),
                    ]
                ),
                ("orders_db", vec![("10.0.1.1", 6543, ServerRole::Primary)]),
                ("orders_2", vec![("10.0.2.1", 5432, ServerRole::Auto)]),
            ]
        );
    }

    #[test]
    fn unsharded_pool_is_one_shard() {
        let config = loaded("[pools.app]\nservers = [{ host = \"db1\", port = 5432 }]\n");
        let pool = config.pool("app").unwrap();
        assert_eq!(pool.shards.len(), 1);
        assert_eq!(pool.shards[0].database, "app");
        assert_eq!(pool.shards[0].servers.len(), 1);
    }

    #[test]
    fn zero_seconds_turns_timeouts_off() {
        let toml = r#"
            [general]
            client_login_timeout = "0s"
            tcp_user_timeout = "0s"
            tcp_keepidle = "0s"

            [defaults]
            query_wait_timeout = "0s"

            [pools.app]
            server_lifetime = "0s"
            server_idle_timeout = "0ms"
            query_timeout = "5s"
            ban_time = "0s"
            servers = [{ host = "db1", port = 5432 }]
        "#;
        let config = loaded(toml);
        assert_eq!(config.general.client_login_timeout, None);
        assert_eq!(config.general.tcp_user_timeout, None);
        assert_eq!(config.general.tcp_keepidle, None);
        let pool = config.pool("app").unwrap();
        assert_eq!(pool.query_wait_timeout, None);
        assert_eq!(pool.server_lifetime, None);
        assert_eq!(pool.server_idle_timeout, None);
        assert_eq!(pool.query_timeout, Some(Duration::from_secs(5)));
        assert_eq!(pool.ban_time, Duration::ZERO);
    }

    #[test]
    fn bad_default_is_reported_once_where_written() {
        let toml = r#"
            [defaults]
            pool_size = "many"

            [pools.a]
            pool_size = 4
            servers = [{ host = "db1", port = 5432 }]

            [pools.b]
            servers = [{ host = "db1", port = 5432 }]
        "#;
        assert_eq!(
            problems_of(toml),
            vec!["defaults.pool_size: expected an integer, found \"many\""]
        );
    }

    #[test]
    fn wrong_types_name_key_and_reason() {
        let toml = r#"
            [general]
            tcp_keepalive = "sometimes"
            listen_backlog = 1.5
            admin_users = [1, 2]

            [users.app]
            password = 12345

            [pools.app]
            pool_size = "5"
            read_write_split = 1
            servers = [{ host = "db1", port = "5432" }]
        "#;
        assert_eq!(
            problems_of(toml),
            vec![
                "general.listen_backlog: expected an integer, found 1.5",
                "general.tcp_keepalive: expected true or false, found \"sometimes\"",
                "general.admin_users: expected an array of strings, but element 0 is 1",
                "users.app.password: expected a string, found an integer; put the value in quotes",
                "pools.app.read_write_split: expected true or false, found 1",
            ]
        );
    }

    #[test]
    fn workers_zero_means_one_per_core() {
        let servers = "[pools.app]\nservers = [{ host = \"db1\", port = 5432 }]\n";
        let auto = loaded(&format!("[general]\nworkers = 0\n{servers}"));
        assert_eq!(auto.general.workers_configured, 0);
        assert_eq!(auto.general.workers, cpu_workers());
        assert!(auto.general.workers >= 1);
        let fixed = loaded(&format!("[general]\nworkers = 2\n{servers}"));
        assert_eq!(
            (fixed.general.workers, fixed.general.workers_configured),
            (2, 2)
        );
    }
}
