//! Validation rules: the limits one value must respect, and the checks that look at
//! several values or the whole config.
//!
//! Single-value rules are applied by `resolve.rs` as it reads each key, so the problem names
//! the key where the value was written (`defaults.pool_size`, not every pool). Whole-config
//! checks run on the resolved [`Config`] afterwards.

use std::fmt::Display;
use std::time::Duration;

use super::builtin::MIN_MAX_MESSAGE_SIZE;
use super::enums::{AuthType, TlsMode};
use super::error::Problems;
use super::model::Config;
use super::path;

/// A rule for one value: `Err(reason)` if it breaks it.
pub(super) type Rule<T> = fn(&T) -> Result<(), String>;

/// Any value is fine.
pub(super) fn any<T>(_: &T) -> Result<(), String> {
    Ok(())
}

/// Counts that must be 1 or more.
pub(super) fn at_least_one<T: PartialEq + Default + Display>(value: &T) -> Result<(), String> {
    if *value == T::default() {
        Err(format!("must be at least 1, found {value}"))
    } else {
        Ok(())
    }
}

/// TCP ports: 1..=65535.
pub(super) fn port(value: &u16) -> Result<(), String> {
    if *value == 0 {
        Err("must be from 1 to 65535, found 0".to_string())
    } else {
        Ok(())
    }
}

/// Names and hosts that must not be empty.
pub(super) fn not_empty<S: AsRef<str>>(value: &S) -> Result<(), String> {
    if value.as_ref().trim().is_empty() {
        Err("must not be empty".to_string())
    } else {
        Ok(())
    }
}

/// Passwords: empty ones are refused rather than silently accepted.
pub(super) fn password<S: AsRef<str>>(value: &S) -> Result<(), String> {
    if value.as_ref().is_empty() {
        Err(
            "must not be empty; remove the key to let the user in only with auth_type = \"trust\""
                .to_string(),
        )
    } else {
        Ok(())
    }
}

/// Intervals that must be longer than zero.
pub(super) fn positive(value: &Duration) -> Result<(), String> {
    if value.is_zero() {
        Err("must be longer than 0s".to_string())
    } else {
        Ok(())
    }
}

/// `general.max_message_size`: at least [`MIN_MAX_MESSAGE_SIZE`] bytes.
pub(super) fn message_size(value: &usize) -> Result<(), String> {
    if *value < MIN_MAX_MESSAGE_SIZE {
        Err(format!(
            "must be at least {MIN_MAX_MESSAGE_SIZE} bytes, found {value}"
        ))
    } else {
        Ok(())
    }
}

/// `automatic_sharding_key`: `table.column`.
pub(super) fn sharding_key<S: AsRef<str>>(value: &S) -> Result<(), String> {
    let value = value.as_ref();
    match value.split_once('.') {
        Some((table, column))
            if !table.trim().is_empty() && !column.trim().is_empty() && !column.contains('.') =>
        {
            Ok(())
        }
        _ => Err(format!(
            "must be \"table.column\", e.g. \"orders.customer_id\", found {value:?}"
        )),
    }
}

/// Checks that involve more than one value, on the resolved config.
pub(super) fn validate(config: &Config, problems: &mut Problems) {
    if config.pools.is_empty() && !problems.has("pools") {
        problems.push(
            "pools",
            "no pools defined; add at least one [pools.NAME] table with servers",
        );
    }
    for name in config.users.keys().filter(|name| name.is_empty()) {
        problems.push(path::join("users", name), "user name must not be empty");
    }
    for (name, pool) in &config.pools {
        if name.is_empty() {
            problems.push(path::join("pools", name), "pool name must not be empty");
        }
        if let Some(d) = &pool.default_shard {
            let shards = pool.shards.len();
            let ok =
                d.eq_ignore_ascii_case("random") || d.parse::<usize>().is_ok_and(|n| n < shards);
            if !ok {
                problems.push(
                    path::join(&path::join("pools", name), "default_shard"),
                    format!(
                        "is {d:?}; it must be \"random\" or a shard number from 0 to {}",
                        shards.saturating_sub(1)
                    ),
                );
            }
        }
        if pool.min_pool_size > pool.pool_size {
            problems.push(
                path::join(&path::join("pools", name), "min_pool_size"),
                format!(
                    "is {}, larger than pool_size ({}); it must be at most pool_size",
                    pool.min_pool_size, pool.pool_size
                ),
            );
        }
    }
    tls(config, problems);
    let g = &config.general;
    if g.auth_type == AuthType::Hba && g.auth_hba_file.is_none() {
        problems.push(
            "general.auth_hba_file",
            "is required with auth_type = \"hba\"; give the path of a pg_hba.conf-style file",
        );
    }
    if config.general.metrics_listen == Some(config.general.listen) {
        problems.push(
            "general.metrics_listen",
            format!(
                "is the same address as general.listen ({}); use another port",
                config.general.listen
            ),
        );
    }
}

/// TLS settings that need files: a certificate and key to offer TLS to clients, a CA to
/// verify peers.
fn tls(config: &Config, problems: &mut Problems) {
    let g = &config.general;
    if g.client_tls_sslmode != TlsMode::Disable {
        for (key, value) in [
            ("tls_cert_file", &g.tls_cert_file),
            ("tls_key_file", &g.tls_key_file),
        ] {
            if value.is_none() {
                problems.push(
                    path::join("general", key),
                    format!(
                        "is required with client_tls_sslmode = \"{}\"",
                        g.client_tls_sslmode.as_str()
                    ),
                );
            }
        }
    }
    if matches!(
        g.client_tls_sslmode,
        TlsMode::VerifyCa | TlsMode::VerifyFull
    ) && g.tls_ca_file.is_none()
    {
        problems.push(
            "general.tls_ca_file",
            format!(
                "is required with client_tls_sslmode = \"{}\" (the CA client certificates must chain to)",
                g.client_tls_sslmode.as_str()
            ),
        );
    }
    if matches!(
        g.server_tls_sslmode,
        TlsMode::VerifyCa | TlsMode::VerifyFull
    ) && g.server_tls_ca_file.is_none()
    {
        problems.push(
            "general.server_tls_ca_file",
            format!(
                "is required with server_tls_sslmode = \"{}\" (the CA server certificates must chain to)",
                g.server_tls_sslmode.as_str()
            ),
        );
    }
    for (cert, key, cert_value, key_value) in [
        (
            "tls_cert_file",
            "tls_key_file",
            &g.tls_cert_file,
            &g.tls_key_file,
        ),
        (
            "server_tls_cert_file",
            "server_tls_key_file",
            &g.server_tls_cert_file,
            &g.server_tls_key_file,
        ),
    ] {
        match (cert_value, key_value) {
            (Some(_), None) => problems.push(
                path::join("general", key),
                format!("is required with {cert}"),
            ),
            (None, Some(_)) => problems.push(
                path::join("general", cert),
                format!("is required with {key}"),
            ),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::load::problems_of;
    use super::*;

    #[test]
    fn all_problems_are_reported_together() {
        let toml = r#"
            [general]
            listen = "localhost:6432"
            metrics_listen = "9930"
            workers = -1
            tcp_keepcnt = 0
            max_message_size = 512
            admin_users = ["nobody"]
            stats_users = "ghost"

            [users.app]
            password = ""
            pool_size = 0

            [defaults]
            pool_size = 0

            [pools.app]
            min_pool_size = 30
            database = ""
            healthcheck_interval = "0s"
            automatic_sharding_key = "customer_id"
            servers = [
              { host = "", port = 0 },
              { port = 70000 },
              { host = "db3" },
            ]
        "#;
        assert_eq!(
            problems_of(toml),
            vec![
                "general.listen: expected IP:port such as \"127.0.0.1:6432\" or \"[::1]:6432\", \
                 found \"localhost:6432\" (host names are not accepted here)",
                "general.workers: must not be negative, found -1",
                "general.tcp_keepcnt: must be at least 1, found 0",
                "general.metrics_listen: expected IP:port such as \"127.0.0.1:6432\" or \
                 \"[::1]:6432\", found \"9930\" (host names are not accepted here)",
                "general.max_message_size: must be at least 1024 bytes, found 512",
                "users.app.password: must not be empty; remove the key to let the user in only \
                 with auth_type = \"trust\"",
                "users.app.pool_size: must be at least 1, found 0",
                "defaults.pool_size: must be at least 1, found 0",
                "pools.app.healthcheck_interval: must be longer than 0s",
                "pools.app.automatic_sharding_key: must be \"table.column\", e.g. \
                 \"orders.customer_id\", found \"customer_id\"",
                "pools.app.database: must not be empty",
                "pools.app.servers[0].host: must not be empty",
                "pools.app.servers[0].port: must be from 1 to 65535, found 0",
                "pools.app.servers[1].port: must be at most 65535, found 70000",
                "pools.app.servers[1].host: missing; every server needs a host",
                "pools.app.servers[2].port: missing; every server needs a port, e.g. port = 5432",
                "pools.app.min_pool_size: is 30, larger than pool_size (20); it must be at most \
                 pool_size",
            ]
        );
    }

    #[test]
    fn at_least_one_pool() {
        assert_eq!(
            problems_of("[general]\n"),
            vec!["pools: no pools defined; add at least one [pools.NAME] table with servers"]
        );
    }

    #[test]
    fn servers_and_shards_together_is_an_error() {
        let toml = r#"
            [pools.app]
            servers = [{ host = "db1", port = 5432 }]

            [[pools.app.shards]]
            servers = [{ host = "db2", port = 5432 }]
        "#;
        assert_eq!(
            problems_of(toml),
            vec![
                "pools.app: sets both `servers` and `shards`; use `servers = [...]` for an \
                 unsharded pool or [[pools.app.shards]] tables for a sharded one, not both"
            ]
        );
    }

    #[test]
    fn pools_need_servers() {
        let toml = r#"
            [pools.none]
            pool_size = 5

            [pools.empty]
            servers = []

            [pools.noshards]
            shards = []

            [[pools.sharded.shards]]
            database = "s0"

            [[pools.sharded.shards]]
            servers = []
        "#;
        assert_eq!(
            problems_of(toml),
            vec![
                "pools.empty.servers: is empty; list at least one server",
                "pools.none.servers: missing; a pool needs servers = [{ host = \"...\", port = \
                 5432 }] (or [[pools.none.shards]] tables for a sharded pool)",
                "pools.noshards.shards: is empty; add at least one [[pools.noshards.shards]] table",
                "pools.sharded.shards[0].servers: missing; each shard needs servers = \
                 [{ host = \"...\", port = 5432 }]",
                "pools.sharded.shards[1].servers: is empty; list at least one server",
            ]
        );
    }

    #[test]
    fn names_must_not_be_empty() {
        let toml = r#"
            [users.""]
            password = "x"

            [pools.""]
            servers = [{ host = "db1", port = 5432 }]
        "#;
        assert_eq!(
            problems_of(toml),
            vec![
                "users.\"\": user name must not be empty",
                "pools.\"\": pool name must not be empty",
            ]
        );
    }

    #[test]
    fn metrics_listen_must_differ_from_listen() {
        let toml = r#"
            [general]
            listen = "127.0.0.1:6432"
            metrics_listen = "127.0.0.1:6432"

            [pools.app]
            servers = [{ host = "db1", port = 5432 }]
        "#;
        assert_eq!(
            problems_of(toml),
            vec![
                "general.metrics_listen: is the same address as general.listen \
                 (127.0.0.1:6432); use another port"
            ]
        );
    }

    #[test]
    fn admin_and_stats_users_need_not_exist() {
        let toml = r#"
            [general]
            admin_users = ["root"]
            stats_users = ["grafana"]

            [pools.app]
            servers = [{ host = "db1", port = 5432 }]
        "#;
        let config = super::super::load::loaded(toml);
        assert!(config.users.is_empty());
        assert_eq!(config.general.admin_users, vec!["root"]);
    }

    #[test]
    fn single_value_rules() {
        assert!(at_least_one(&0_usize).is_err());
        assert!(at_least_one(&3_u32).is_ok());
        assert!(port(&0).is_err());
        assert!(port(&5432).is_ok());
        assert!(not_empty(&" ").is_err());
        assert!(password(&"").is_err());
        assert!(positive(&Duration::ZERO).is_err());
        assert!(message_size(&1023).is_err());
        assert!(message_size(&1024).is_ok());
        assert!(sharding_key(&"orders.customer_id").is_ok());
        assert!(sharding_key(&"customer_id").is_err());
        assert!(sharding_key(&"a.b.c").is_err());
        assert!(sharding_key(&".c").is_err());
        assert!(any(&()).is_ok());
    }

    #[test]
    fn default_shard_must_name_a_shard_or_random() {
        let base = "[users.u]\n[pools.p]\nservers = [{ host = \"h\", port = 1 }]\n";
        let bad = format!("{base}default_shard = \"3\"\n");
        let err = crate::config::load_str(&bad, &Default::default()).unwrap_err();
        assert!(err.to_string().contains("pools.p.default_shard"), "{err}");
        for ok in ["0", "random", "RANDOM"] {
            let text = format!("{base}default_shard = \"{ok}\"\n");
            assert!(
                crate::config::load_str(&text, &Default::default()).is_ok(),
                "{ok}"
            );
        }
    }
}
