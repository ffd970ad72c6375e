//! Loading: TOML text plus `PGCORRAL_*` environment overrides, through the `config` crate,
//! into a checked [`Config`].
//!
//! Environment overrides are `PGCORRAL_<SECTION>__<KEY>`, `__` between levels:
//! `PGCORRAL_GENERAL__LISTEN=0.0.0.0:6432`, `PGCORRAL_POOLS__APP__POOL_SIZE=5`. The `config`
//! crate lowercases environment keys, so pool and user names reached from the environment
//! are lowercase: `PGCORRAL_POOLS__APP__...` sets pool `app`, and cannot reach a pool
//! written `[pools.App]` in the file (it would define a second pool, `app`). Values are kept
//! as strings (no `try_parsing`): each setting converts the string itself, so a password
//! such as `007` stays `007`. A list (`admin_users`) can be given as `a,b,c`. Tables and
//! arrays of tables (`servers`, `shards`) cannot be set from the environment.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use ::config::{Environment, File, FileFormat, Source, Value};

use super::error::{ConfigError, Problem, Problems};
use super::keys;
use super::model::Config;
use super::path;
use super::resolve::resolve;
use super::schema::RawConfig;
use super::validate::validate;

/// Prefix of environment overrides, without its `_`.
const ENV_PREFIX: &str = "PGCORRAL";

/// Where the daemon looks when no `-c PATH` is given, in order.
const DEFAULT_PATHS: &[&str] = &["config/pgcorral.toml", "/etc/pgcorral/pgcorral.toml"];

/// Loads and checks the config file at `path`, with `env` overrides (see [`process_env`]).
pub fn load_file(path: &Path, env: &HashMap<String, String>) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    load(&text, Some(path), env)
}

/// Loads and checks config text, with `env` overrides (see [`process_env`]).
pub fn load_str(toml: &str, env: &HashMap<String, String>) -> Result<Config, ConfigError> {
    load(toml, None, env)
}

/// This process's `PGCORRAL_*` environment variables (name matched case-insensitively, as
/// the `config` crate does); variables whose name or value is not UTF-8 are left out.
pub fn process_env() -> HashMap<String, String> {
    std::env::vars_os()
        .filter_map(|(key, value)| {
            let key = key.into_string().ok()?;
            if !is_override(&key) {
                return None;
            }
            Some((key, value.into_string().ok()?))
        })
        .collect()
}

/// `config/pgcorral.toml` if it exists, else `/etc/pgcorral/pgcorral.toml` if it exists.
pub fn default_path() -> Option<PathBuf> {
    DEFAULT_PATHS
        .iter()
        .map(PathBuf::from)
        .find(|path| path.exists())
}

/// `PGCORRAL_<SECTION>__<KEY>`. Other `PGCORRAL_*` variables (`PGCORRAL_BIN` in a script,
/// say) are not overrides and are left alone.
fn is_override(key: &str) -> bool {
    key.len() > ENV_PREFIX.len()
        && key.is_char_boundary(ENV_PREFIX.len())
        && key[..ENV_PREFIX.len()].eq_ignore_ascii_case(ENV_PREFIX)
        && key[ENV_PREFIX.len()..]
            .strip_prefix('_')
            .is_some_and(|rest| rest.contains("__"))
}

fn load(
    text: &str,
    origin: Option<&Path>,
    env: &HashMap<String, String>,
) -> Result<Config, ConfigError> {
    let environment = Environment::default()
        .prefix(ENV_PREFIX)
        .prefix_separator("_")
        .separator("__")
        .source(Some(
            env.iter()
                .filter(|(k, _)| is_override(k))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        ));
    let merged = ::config::Config::builder()
        .add_source(File::from_str(text, FileFormat::Toml))
        .add_source(environment)
        .build()
        .and_then(|merged| merged.collect())
        .map_err(|err| syntax_error(err, origin))?;

    let mut problems = Problems::default();
    let tree = keys::check(merged, &mut problems);
    let raw = match Value::new(None, tree).try_deserialize::<RawConfig>() {
        Ok(raw) => raw,
        Err(err) => {
            // The key check leaves nothing serde can refuse; this is a safety net.
            problems.push("(config)", err.to_string());
            RawConfig::default()
        }
    };
    let config = resolve(&raw, &mut problems);
    validate(&config, &mut problems);

    let mut problems = problems.into_vec();
    if problems.is_empty() {
        return Ok(config);
    }
    name_env_sources(&mut problems, env);
    Err(ConfigError::Invalid(problems))
}

fn syntax_error(err: ::config::ConfigError, origin: Option<&Path>) -> ConfigError {
    let message = match &err {
        ::config::ConfigError::FileParse { cause, .. } => cause.to_string(),
        other => other.to_string(),
    };
    let message = hide_secret_lines(message.trim_end());
    ConfigError::Parse(match origin {
        Some(path) => format!("{}: {message}", path.display()),
        None => message,
    })
}

/// The TOML parser quotes the line it stopped at (`3 | password = secret`): a quoted line
/// that mentions a password is replaced, so a mistyped secret never reaches a log.
fn hide_secret_lines(message: &str) -> String {
    message
        .lines()
        .map(|line| {
            let quoted = line.split_once(" | ").filter(|(number, _)| {
                let number = number.trim();
                !number.is_empty() && number.bytes().all(|b| b.is_ascii_digit())
            });
            match quoted {
                Some((number, text)) if text.to_ascii_lowercase().contains("password") => {
                    format!("{number} | (line not shown: it sets a password)")
                }
                _ => line.to_string(),
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Adds "(from environment variable X)" to problems about values the environment set.
fn name_env_sources(problems: &mut [Problem], env: &HashMap<String, String>) {
    let mut sources: Vec<(String, &String)> = env
        .keys()
        .filter(|key| is_override(key))
        .map(|key| {
            let rest = key[ENV_PREFIX.len() + 1..].to_lowercase();
            let key_path = rest.split("__").fold(String::new(), |parent, segment| {
                path::join(&parent, segment)
            });
            (key_path, key)
        })
        .collect();
    sources.sort();
    for problem in problems {
        let source = sources.iter().find(|(key_path, _)| {
            problem.key == *key_path
                || problem
                    .key
                    .strip_prefix(key_path.as_str())
                    .is_some_and(|rest| rest.starts_with('.') || rest.starts_with('['))
        });
        if let Some((_, var)) = source {
            problem.reason = format!("{} (from environment variable {var})", problem.reason);
        }
    }
}

/// Test helper: the problems of a config that must not load, as `key: reason` lines.
#[cfg(test)]
pub(super) fn problems_of(toml: &str) -> Vec<String> {
    match load_str(toml, &HashMap::new()) {
        Ok(config) => panic!("expected problems, config loaded: {config:#?}"),
        Err(ConfigError::Invalid(problems)) => problems.iter().map(Problem::to_string).collect(),
        Err(other) => panic!("expected Invalid, got: {other}"),
    }
}

/// Test helper: a config that must load.
#[cfg(test)]
pub(super) fn loaded(toml: &str) -> Config {
    load_str(toml, &HashMap::new()).unwrap_or_else(|e| panic!("config did not load:\n{e}"))
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;
    use std::time::Duration;

    use super::super::{
        AuthType, DefaultRole, General, LoadBalancing, LogLevel, Pool, PoolMode, Server,
        ServerRole, Shard, ShardingFunction, TlsMode, User, EMBEDDED_DEFAULT,
    };
    use super::*;

    const APP: &str = r#"
        [pools.app]
        servers = [{ host = "db1", port = 5432 }]
    "#;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn a_syntax_error_on_a_password_line_does_not_quote_the_password() {
        let toml = "[users.app]\npassword = hunter2-unquoted\n";
        let err = load_str(toml, &HashMap::new()).unwrap_err().to_string();
        assert!(!err.contains("hunter2"), "{err}");
        assert!(err.contains("line not shown"), "{err}");
        let err = load_str("[general]\nlisten = nope\n", &HashMap::new())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("listen = nope"),
            "other lines are still quoted: {err}"
        );
    }

    #[test]
    fn embedded_default_loads() {
        let config = load_str(EMBEDDED_DEFAULT, &HashMap::new()).expect("embedded default");
        let g = &config.general;
        assert_eq!(g.listen, SocketAddr::from(([127, 0, 0, 1], 6432)));
        assert_eq!(g.auth_type, AuthType::ScramSha256);
        assert_eq!(g.admin_users, vec!["postgres".to_string()]);
        assert_eq!(g.metrics_listen, None);
        let user = config.user("postgres").expect("user postgres");
        assert_eq!(user.password.as_deref(), Some("postgres"));
        let pool = config.pool("postgres").expect("pool postgres");
        assert_eq!(pool.database, "postgres");
        assert_eq!(pool.pool_mode, PoolMode::Transaction);
        assert_eq!(pool.pool_size, 20);
        assert_eq!(
            pool.shards,
            vec![Shard {
                database: "postgres".to_string(),
                servers: vec![Server {
                    host: "127.0.0.1".to_string(),
                    port: 5432,
                    role: ServerRole::Primary,
                }],
            }]
        );
        assert_eq!(config.pools.len(), 1);
        assert_eq!(config.users.len(), 1);
    }

    #[test]
    fn embedded_default_mentions_every_key() {
        // Every accepted key is documented in the shipped file.
        use super::super::fields::field_names;
        use super::super::schema::{RawGeneral, RawPool, RawServer, RawShard, RawUser};
        let keys = field_names::<RawGeneral>()
            .iter()
            .chain(field_names::<RawUser>())
            .chain(field_names::<RawPool>())
            .chain(field_names::<RawShard>())
            .chain(field_names::<RawServer>());
        for key in keys {
            assert!(
                EMBEDDED_DEFAULT.contains(&format!("{key} ="))
                    || EMBEDDED_DEFAULT.contains(&format!(".{key}]]")),
                "config/pgcorral.toml does not show `{key}`"
            );
        }
    }

    #[test]
    fn minimal_config_gets_built_in_defaults() {
        let config = loaded(APP);
        assert_eq!(config.general, General::default());
        let pool = config.pool("app").unwrap();
        let expected = Pool {
            name: "app".to_string(),
            database: "app".to_string(),
            shards: pool.shards.clone(),
            ..Pool::default()
        };
        assert_eq!(*pool, expected);
        assert_eq!(pool.query_wait_timeout, Some(Duration::from_secs(120)));
        assert_eq!(pool.idle_transaction_timeout, None);
        assert!(config.general.workers >= 1);
        assert_eq!(config.general.workers_configured, 0);
    }

    #[test]
    fn env_overrides_general_and_pool_keys() {
        let vars = env(&[
            ("PGCORRAL_GENERAL__LISTEN", "0.0.0.0:7000"),
            ("PGCORRAL_GENERAL__TCP_KEEPALIVE", "false"),
            ("PGCORRAL_GENERAL__ADMIN_USERS", "admin, ops"),
            ("PGCORRAL_GENERAL__SHUTDOWN_TIMEOUT", "2s"),
            ("PGCORRAL_POOLS__APP__POOL_SIZE", "5"),
            ("PGCORRAL_POOLS__APP__POOL_MODE", "session"),
            ("PGCORRAL_USERS__BOB__PASSWORD", "007"),
            ("HOME", "/root"),
            ("PGCORRALX", "ignored"),
            ("PGCORRAL_BIN", "/usr/bin/pgcorral"),
            ("PGCORRAL_CONFIG_DIR", "not an override either"),
        ]);
        let toml = format!("[general]\nlisten = \"127.0.0.1:1\"\n{APP}");
        let config = load_str(&toml, &vars).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            config.general.listen,
            SocketAddr::from(([0, 0, 0, 0], 7000))
        );
        assert!(!config.general.tcp_keepalive);
        assert_eq!(config.general.admin_users, vec!["admin", "ops"]);
        assert_eq!(config.general.shutdown_timeout, Duration::from_secs(2));
        let pool = config.pool("app").unwrap();
        assert_eq!(pool.pool_size, 5);
        assert_eq!(pool.pool_mode, PoolMode::Session);
        assert_eq!(config.user("bob").unwrap().password.as_deref(), Some("007"));
    }

    #[test]
    fn env_problems_name_the_variable() {
        let vars = env(&[
            ("PGCORRAL_POOLS__APP__POOL_SIZE", "lots"),
            ("PGCORRAL_GENERAL__LISTN", "0.0.0.0:1"),
        ]);
        let err = load_str(APP, &vars).unwrap_err();
        let lines: Vec<String> = err.problems().iter().map(Problem::to_string).collect();
        assert_eq!(
            lines,
            vec![
                "general.listn: unknown key (did you mean `listen`?) \
                 (from environment variable PGCORRAL_GENERAL__LISTN)",
                "pools.app.pool_size: expected an integer, found \"lots\" \
                 (from environment variable PGCORRAL_POOLS__APP__POOL_SIZE)",
            ]
        );
    }

    #[test]
    fn env_names_are_lowercase() {
        // `PGCORRAL_POOLS__APP__...` reaches pool `app`, never `[pools.App]`.
        let toml = r#"
            [pools.App]
            servers = [{ host = "db1", port = 5432 }]
        "#;
        let err = load_str(toml, &env(&[("PGCORRAL_POOLS__APP__POOL_SIZE", "5")])).unwrap_err();
        assert_eq!(err.problems().len(), 1);
        assert_eq!(err.problems()[0].key, "pools.app.servers");
    }

    #[test]
    fn syntax_errors_give_the_location() {
        let err = load_str("[general\nlisten = 1", &HashMap::new()).unwrap_err();
        match &err {
            ConfigError::Parse(message) => assert!(message.contains("line 1"), "{message}"),
            other => panic!("expected Parse, got {other:?}"),
        }
        assert!(
            err.to_string().starts_with("config syntax error: "),
            "{err}"
        );
    }

    #[test]
    fn load_file_reads_and_reports_missing_files() {
        let dir = std::env::temp_dir().join(format!("pgcorral-config-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("pgcorral.toml");
        std::fs::write(&file, EMBEDDED_DEFAULT).unwrap();
        let config = load_file(&file, &HashMap::new()).unwrap();
        assert!(config.pool("postgres").is_some());

        std::fs::write(&file, "[general\n").unwrap();
        match load_file(&file, &HashMap::new()).unwrap_err() {
            ConfigError::Parse(message) => {
                assert!(
                    message.starts_with(&file.display().to_string()),
                    "{message}"
                )
            }
            other => panic!("expected Parse, got {other:?}"),
        }

        let missing = dir.join("missing.toml");
        let err = load_file(&missing, &HashMap::new()).unwrap_err();
        assert!(matches!(err, ConfigError::Read { .. }));
        assert!(
            err.to_string()
                .starts_with(&format!("cannot read config file {}: ", missing.display())),
            "{err}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn override_names() {
        assert!(is_override("PGCORRAL_GENERAL__LISTEN"));
        assert!(is_override("pgcorral_general__listen"));
        assert!(!is_override("PGCORRAL"));
        assert!(!is_override("PGCORRALX_Y"));
        assert!(!is_override("HOME"));
        assert!(process_env().keys().all(|k| is_override(k)));
        if let Some(path) = default_path() {
            assert!(path.exists());
        }
    }

    #[test]
    fn full_config_with_every_key() {
        let toml = r#"
            [general]
            listen = "0.0.0.0:7432"
            workers = 3
            max_client_conn = 500
            max_db_connections = 40
            max_user_connections = 30
            listen_backlog = 128
            tcp_keepalive = false
            tcp_keepidle = "60s"
            tcp_keepintvl = "10s"
            tcp_keepcnt = 6
            tcp_user_timeout = "30s"
            admin_users = ["admin"]
            stats_users = ["stats", "grafana"]
            metrics_listen = "127.0.0.1:9930"
            shutdown_timeout = "45s"
            client_login_timeout = "0s"
            auth_type = "md5"
            log_level = "debug"
            max_message_size = 65536
            max_logins_in_progress = 200
            client_write_timeout = "0s"
            tls_cert_file = "/etc/pgcorral/server.crt"
            tls_key_file = "/etc/pgcorral/server.key"
            tls_ca_file = "/etc/pgcorral/ca.crt"
            client_tls_sslmode = "verify-ca"
            server_tls_sslmode = "verify-full"
            server_tls_ca_file = "/etc/pgcorral/server-ca.crt"
            server_tls_cert_file = "/etc/pgcorral/pgcorral.crt"
            server_tls_key_file = "/etc/pgcorral/pgcorral.key"
            auth_user = "pgcorral_auth"
            auth_query = "SELECT rolname, rolpassword FROM pg_authid WHERE rolname = $1"
            auth_query_cache_ttl = "5s"
            auth_file = "/etc/pgcorral/userlist.txt"
            auth_hba_file = "/etc/pgcorral/hba.conf"

            [users.app]
            password = "app-secret"
            server_user = "app_rw"
            server_password = "rw-secret"
            pool_size = 7
            pool_mode = "session"

            [users.trusted]

            [defaults]
            pool_mode = "statement"
            pool_size = 11
            min_pool_size = 1
            reserve_pool_size = 2
            reserve_pool_timeout = "3s"
            query_wait_timeout = "0s"
            server_connect_timeout = "2s"
            server_idle_timeout = "5m"
            server_lifetime = "2h"
            idle_transaction_timeout = "30s"
            client_idle_timeout = "1h"
            query_timeout = "250ms"
            server_reset_query = "RESET ALL"
            load_balancing = "least_outstanding"
            default_role = "replica"
            read_write_split = true
            healthcheck_interval = "10s"
            healthcheck_timeout = "2s"
            ban_time = "30s"
            sharding_function = "sha1"
            automatic_sharding_key = "orders.customer_id"
            default_shard = "0"

            [pools.app]
            database = "app_db"
            pool_mode = "auto"
            pool_size = 30
            min_pool_size = 5
            reserve_pool_size = 3
            reserve_pool_timeout = "4s"
            query_wait_timeout = "10s"
            server_connect_timeout = "1s"
            server_idle_timeout = "0s"
            server_lifetime = "0s"
            idle_transaction_timeout = "0s"
            client_idle_timeout = "0s"
            query_timeout = "0s"
            server_reset_query = ""
            load_balancing = "round_robin"
            default_role = "primary"
            read_write_split = false
            healthcheck_interval = "1s"
            healthcheck_timeout = "500ms"
            ban_time = "2m"
            sharding_function = "pg_bigint_hash"
            automatic_sharding_key = "users.id"
            default_shard = "random"
            servers = [
              { host = "10.0.0.1", port = 5432, role = "primary" },
              { host = "10.0.0.2", port = 5433, role = "replica" },
              { host = "10.0.0.3", port = 5434, role = "auto" },
              { host = "10.0.0.4", port = 5435 },
            ]

            [[pools.orders.shards]]
            database = "orders_0"
            servers = [{ host = "10.1.0.1", port = 5432 }]

            [[pools.orders.shards]]
            servers = [{ host = "10.1.0.2", port = 5432, role = "replica" }]
        "#;
        let config = loaded(toml);

        let g = &config.general;
        assert_eq!(
            *g,
            General {
                listen: SocketAddr::from(([0, 0, 0, 0], 7432)),
                workers: 3,
                workers_configured: 3,
                max_client_conn: 500,
                max_db_connections: 40,
                max_user_connections: 30,
                listen_backlog: 128,
                tcp_keepalive: false,
                tcp_keepidle: Some(Duration::from_secs(60)),
                tcp_keepintvl: Some(Duration::from_secs(10)),
                tcp_keepcnt: Some(6),
                tcp_user_timeout: Some(Duration::from_secs(30)),
                admin_users: vec!["admin".to_string()],
                stats_users: vec!["stats".to_string(), "grafana".to_string()],
                metrics_listen: Some(SocketAddr::from(([127, 0, 0, 1], 9930))),
                shutdown_timeout: Duration::from_secs(45),
                client_login_timeout: None,
                auth_type: AuthType::Md5,
                log_level: LogLevel::Debug,
                max_message_size: 65536,
                max_logins_in_progress: 200,
                client_write_timeout: None,
                tls_cert_file: Some("/etc/pgcorral/server.crt".into()),
                tls_key_file: Some("/etc/pgcorral/server.key".into()),
                tls_ca_file: Some("/etc/pgcorral/ca.crt".into()),
                client_tls_sslmode: TlsMode::VerifyCa,
                server_tls_sslmode: TlsMode::VerifyFull,
                server_tls_ca_file: Some("/etc/pgcorral/server-ca.crt".into()),
                server_tls_cert_file: Some("/etc/pgcorral/pgcorral.crt".into()),
                server_tls_key_file: Some("/etc/pgcorral/pgcorral.key".into()),
                auth_user: Some("pgcorral_auth".to_string()),
                auth_query: "SELECT rolname, rolpassword FROM pg_authid WHERE rolname = $1"
                    .to_string(),
                auth_query_cache_ttl: Some(Duration::from_secs(5)),
                auth_file: Some("/etc/pgcorral/userlist.txt".into()),
                auth_hba_file: Some("/etc/pgcorral/hba.conf".into()),
            }
        );

        let app_user = config.user("app").unwrap();
        assert_eq!(
            *app_user,
            User {
                name: "app".to_string(),
                password: Some("app-secret".to_string()),
                server_user: Some("app_rw".to_string()),
                server_password: Some("rw-secret".to_string()),
                pool_size: Some(7),
                pool_mode: Some(PoolMode::Session),
            }
        );
        let trusted = config.user("trusted").unwrap();
        assert_eq!(trusted.password, None);
        assert_eq!(trusted.pool_size, None);

        let app = config.pool("app").unwrap();
        let server = |host: &str, port, role| Server {
            host: host.to_string(),
            port,
            role,
        };
        assert_eq!(
            *app,
            Pool {
                name: "app".to_string(),
                database: "app_db".to_string(),
                pool_mode: PoolMode::Auto,
                pool_size: 30,
                min_pool_size: 5,
                reserve_pool_size: 3,
                max_prepared_statements: 200,
                reserve_pool_timeout: Duration::from_secs(4),
                query_wait_timeout: Some(Duration::from_secs(10)),
                server_connect_timeout: Some(Duration::from_secs(1)),
                server_idle_timeout: None,
                server_lifetime: None,
                idle_transaction_timeout: None,
                client_idle_timeout: None,
                query_timeout: None,
                server_reset_query: String::new(),
                load_balancing: LoadBalancing::RoundRobin,
                default_role: DefaultRole::Primary,
                read_write_split: false,
                healthcheck_interval: Duration::from_secs(1),
                healthcheck_timeout: Duration::from_millis(500),
                ban_time: Duration::from_secs(120),
                max_replica_lag: None,
                sharding_function: ShardingFunction::PgBigintHash,
                automatic_sharding_key: Some("users.id".to_string()),
                default_shard: Some("random".to_string()),
                shards: vec![Shard {
                    database: "app_db".to_string(),
                    servers: vec![
                        server("10.0.0.1", 5432, ServerRole::Primary),
                        server("10.0.0.2", 5433, ServerRole::Replica),
                        server("10.0.0.3", 5434, ServerRole::Auto),
                        server("10.0.0.4", 5435, ServerRole::Primary),
                    ],
                }],
            }
        );

        // `orders` sets nothing itself: everything comes from [defaults].
        let orders = config.pool("orders").unwrap();
        assert_eq!(
            *orders,
            Pool {
                name: "orders".to_string(),
                database: "orders".to_string(),
                pool_mode: PoolMode::Statement,
                pool_size: 11,
                min_pool_size: 1,
                reserve_pool_size: 2,
                max_prepared_statements: 200,
                reserve_pool_timeout: Duration::from_secs(3),
                query_wait_timeout: None,
                server_connect_timeout: Some(Duration::from_secs(2)),
                server_idle_timeout: Some(Duration::from_secs(300)),
                server_lifetime: Some(Duration::from_secs(7200)),
                idle_transaction_timeout: Some(Duration::from_secs(30)),
                client_idle_timeout: Some(Duration::from_secs(3600)),
                query_timeout: Some(Duration::from_millis(250)),
                server_reset_query: "RESET ALL".to_string(),
                load_balancing: LoadBalancing::LeastOutstanding,
                default_role: DefaultRole::Replica,
                read_write_split: true,
                healthcheck_interval: Duration::from_secs(10),
                healthcheck_timeout: Duration::from_secs(2),
                ban_time: Duration::from_secs(30),
                max_replica_lag: None,
                sharding_function: ShardingFunction::Sha1,
                automatic_sharding_key: Some("orders.customer_id".to_string()),
                default_shard: Some("0".to_string()),
                shards: vec![
                    Shard {
                        database: "orders_0".to_string(),
                        servers: vec![server("10.1.0.1", 5432, ServerRole::Primary)],
                    },
                    Shard {
                        database: "orders".to_string(),
                        servers: vec![server("10.1.0.2", 5432, ServerRole::Replica)],
                    },
                ],
            }
        );

        assert_eq!(config.effective_pool_size(app, app_user), 7);
        assert_eq!(config.effective_pool_mode(app, app_user), PoolMode::Session);
        assert_eq!(config.effective_pool_size(app, trusted), 30);
        assert_eq!(config.effective_pool_mode(app, trusted), PoolMode::Auto);
    }
}
