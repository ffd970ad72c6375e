//! Configuration: loading `pgcorral.toml` plus `PGCORRAL_*` environment overrides into a
//! checked, fully resolved [`Config`].
//!
//! The external contract (keys, defaults, durations, overrides) is CONTRACT.md's "Config
//! file (TOML)" section. In short:
//!
//! - [`load_file`] / [`load_str`] take the environment as a map ([`process_env`] gives this
//!   process's), so tests can inject overrides. Environment keys are lowercased by the
//!   `config` crate: pool and user names set from the environment are lowercase.
//! - Durations are strings with a unit (`"250ms"`, `"5s"`, `"10m"`, `"1h"`); for timeouts
//!   `"0s"` means off and resolves to `None`. A bare number is an error asking for a unit.
//! - Pool settings resolve pool > `[defaults]` > built-in ([`Pool::default`]).
//! - Every problem is collected, unknown keys included, each as a [`Problem`] naming the
//!   key path (`pools.app.servers[0].port`) and the reason; see [`ConfigError::Invalid`].
//!
//! Module map: `schema` is the raw file shape, `keys` checks for unknown keys, `value` and
//! `duration` read leaf values, `enums` the enumerated settings, `resolve` applies defaults,
//! `validate` holds the rules, `model` the resolved types, `builtin` the built-in defaults,
//! `load` the entry points.

mod builtin;
mod duration;
mod enums;
mod error;
mod fields;
mod keys;
mod load;
mod model;
mod path;
mod resolve;
mod schema;
mod validate;
mod value;

pub use builtin::{DEFAULT_AUTH_QUERY, DEFAULT_MAX_MESSAGE_SIZE, MIN_MAX_MESSAGE_SIZE};
pub use enums::{
    AuthType, DefaultRole, LoadBalancing, LogLevel, PoolMode, ServerRole, ShardingFunction, TlsMode,
};
pub use error::{ConfigError, Problem};
pub use load::{default_path, load_file, load_str, process_env};
pub use model::{Config, General, Pool, Server, Shard, User};

/// The default config shipped with pgcorral (`config/pgcorral.toml`), every key commented.
pub const EMBEDDED_DEFAULT: &str = include_str!("../../config/pgcorral.toml");
