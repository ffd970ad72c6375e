//! The enumerated settings (pool mode, auth type, ...), each with its config spelling.

use std::fmt;
use std::str::FromStr;

use ::config::{Value, ValueKind};

use super::value::{describe, FromValue};

/// Defines an enum whose values are written in the config as fixed strings.
///
/// Generates `as_str` (the config spelling), `ALL`, `Default`, `Display`, `FromStr` (error
/// lists the accepted values) and `FromValue`.
macro_rules! config_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident = $text:literal, )+
        }
        default = $default:ident;
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $( $(#[$vmeta])* $variant, )+
        }

        impl $name {
            /// Every value, in the order the docs list them.
            pub const ALL: &'static [Self] = &[$(Self::$variant),+];

            /// The value as written in the config file.
            pub fn as_str(&self) -> &'static str {
                match self {
                    $( Self::$variant => $text, )+
                }
            }

            /// The accepted spellings, for messages: `a | b | c`.
            fn choices() -> String {
                Self::ALL.iter().map(Self::as_str).collect::<Vec<_>>().join(" | ")
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::$default
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = String;

            fn from_str(s: &str) -> Result<Self, String> {
                Self::ALL
                    .iter()
                    .copied()
                    .find(|v| v.as_str() == s)
                    .ok_or_else(|| format!("invalid value {s:?}; expected one of {}", Self::choices()))
            }
        }

        impl FromValue for $name {
            fn from_value(value: Value) -> Result<Self, String> {
                match &value.kind {
                    ValueKind::String(s) => s.parse(),
                    _ => Err(format!(
                        "expected one of {} (as a string), found {}",
                        Self::choices(),
                        describe(&value)
                    )),
                }
            }
        }
    };
}

config_enum! {
    /// How clients prove who they are (`general.auth_type`).
    pub enum AuthType {
        /// No password asked.
        Trust = "trust",
        /// PostgreSQL's MD5 challenge.
        Md5 = "md5",
        /// SCRAM-SHA-256 (the default).
        ScramSha256 = "scram-sha-256",
        /// The method of the first matching line of `auth_hba_file`.
        Hba = "hba",
    }
    default = ScramSha256;
}

config_enum! {
    /// TLS toward clients (`client_tls_sslmode`) or servers (`server_tls_sslmode`), with
    /// libpq's and PgBouncer's meanings.
    pub enum TlsMode {
        /// No TLS.
        Disable = "disable",
        /// Clients: TLS if asked for. Servers: plain first, TLS if the server refuses plain.
        Allow = "allow",
        /// TLS if the other side agrees, plain otherwise.
        Prefer = "prefer",
        /// TLS or nothing; certificates not checked.
        Require = "require",
        /// TLS, and the peer's certificate must be signed by the configured CA.
        VerifyCa = "verify-ca",
        /// Servers: as verify-ca, and the certificate must name the configured host.
        /// Clients: the same as verify-ca (as in PgBouncer: a client has no host name to
        /// check; hba's `cert` method compares the common name with the user).
        VerifyFull = "verify-full",
    }
    default = Disable;
}

config_enum! {
    /// How much the daemon logs (`general.log_level`).
    pub enum LogLevel {
        /// Errors only.
        Error = "error",
        /// Errors and warnings.
        Warn = "warn",
        /// Normal operation (the default).
        Info = "info",
        /// Details for debugging.
        Debug = "debug",
        /// Everything, including per-message tracing.
        Trace = "trace",
    }
    default = Info;
}

config_enum! {
    /// When a server connection goes back to the pool (`pool_mode`).
    pub enum PoolMode {
        /// When the client disconnects.
        Session = "session",
        /// At the end of each transaction (the default).
        Transaction = "transaction",
        /// After each statement; multi-statement transactions are refused.
        Statement = "statement",
        /// Like transaction, but pinned to the client while session state exists.
        Auto = "auto",
    }
    default = Transaction;
}

config_enum! {
    /// How a server is chosen among a shard's candidates (`load_balancing`).
    pub enum LoadBalancing {
        /// A random healthy server (the default).
        Random = "random",
        /// Each healthy server in turn.
        RoundRobin = "round_robin",
        /// The healthy server with the fewest queries in flight.
        LeastOutstanding = "least_outstanding",
    }
    default = Random;
}

config_enum! {
    /// Where queries go when nothing says otherwise (`default_role`).
    pub enum DefaultRole {
        /// Any server, primary or replica (the default).
        Any = "any",
        /// The primary only.
        Primary = "primary",
        /// Replicas only.
        Replica = "replica",
    }
    default = Any;
}

config_enum! {
    /// A server's role (`servers[].role`).
    pub enum ServerRole {
        /// Takes writes (the default).
        Primary = "primary",
        /// Read-only copy.
        Replica = "replica",
        /// Detected from `pg_is_in_recovery()`.
        Auto = "auto",
    }
    default = Primary;
}

config_enum! {
    /// How a sharding key maps to a shard (`sharding_function`).
    pub enum ShardingFunction {
        /// PostgreSQL's hash partitioning of a bigint column (the default).
        PgBigintHash = "pg_bigint_hash",
        /// SHA-1 of the key's text.
        Sha1 = "sha1",
    }
    default = PgBigintHash;
}

#[cfg(test)]
mod tests {
    use super::super::load::problems_of;
    use super::*;

    #[test]
    fn bad_enum_values_in_a_config() {
        let toml = r#"
            [general]
            auth_type = "password"
            log_level = "verbose"

            [users.app]
            pool_mode = "Session"

            [pools.app]
            pool_mode = "sesion"
            load_balancing = "roundrobin"
            default_role = "master"
            sharding_function = 1
            servers = [{ host = "db1", port = 5432, role = "standby" }]
        "#;
        assert_eq!(
            problems_of(toml),
            vec![
                "general.auth_type: invalid value \"password\"; expected one of trust | md5 | \
                 scram-sha-256 | hba",
                "general.log_level: invalid value \"verbose\"; expected one of error | warn | \
                 info | debug | trace",
                "users.app.pool_mode: invalid value \"Session\"; expected one of session | \
                 transaction | statement | auto",
                "pools.app.pool_mode: invalid value \"sesion\"; expected one of session | \
                 transaction | statement | auto",
                "pools.app.load_balancing: invalid value \"roundrobin\"; expected one of random \
                 | round_robin | least_outstanding",
                "pools.app.default_role: invalid value \"master\"; expected one of any | primary \
                 | replica",
                "pools.app.sharding_function: expected one of pg_bigint_hash | sha1 (as a \
                 string), found 1",
                "pools.app.servers[0].role: invalid value \"standby\"; expected one of primary | \
                 replica | auto",
            ]
        );
    }

    #[test]
    fn spellings_round_trip() {
        for mode in PoolMode::ALL {
            assert_eq!(mode.as_str().parse::<PoolMode>(), Ok(*mode));
        }
        assert_eq!(AuthType::ScramSha256.as_str(), "scram-sha-256");
        assert_eq!(
            LoadBalancing::LeastOutstanding.to_string(),
            "least_outstanding"
        );
        assert_eq!(ShardingFunction::default(), ShardingFunction::PgBigintHash);
        assert_eq!(ServerRole::default(), ServerRole::Primary);
    }

    #[test]
    fn bad_values_list_the_choices() {
        assert_eq!(
            "sesion".parse::<PoolMode>(),
            Err(
                "invalid value \"sesion\"; expected one of session | transaction | statement | auto"
                    .to_string()
            )
        );
        assert!("Info".parse::<LogLevel>().is_err());
        let err = DefaultRole::from_value(Value::new(None, 1_i64)).unwrap_err();
        assert_eq!(
            err,
            "expected one of any | primary | replica (as a string), found 1"
        );
    }
}
