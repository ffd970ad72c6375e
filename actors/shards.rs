//! Shards: a pool's shards on one arbiter — one `Cluster` of servers per shard — and how a
//! transaction's shard is found: a comment hint, the automatic sharding key in the statement
//! (literals or Bind parameters), the client's `SET SHARD` / `SET SHARDING KEY`, then
//! `default_shard`. Never a silent guess: without any of them the client is told how to
//! choose.

use std::cell::RefCell;
use std::collections::HashMap;

use pgcorral::config::ShardingFunction;
use pgcorral::protocol::frontend::BindParam;
use pgcorral::route::sharding::shard_for;
use pgcorral::route::sharding_key::{key_values, KeyColumn, KeyValue};
use pgcorral::route::{parse_hint, ShardSetting};
use rand::Rng;
use thiserror::Error;

use crate::cluster::Cluster;

/// Where statements without a shard go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DefaultShard {
    Index(usize),
    Random,
    /// Unset: such statements get an error.
    Refuse,
}

impl DefaultShard {
    pub fn from_config(value: Option<&str>, shards: usize) -> DefaultShard {
        match value {
            Some(v) if v.eq_ignore_ascii_case("random") => DefaultShard::Random,
            Some(v) => match v.parse::<usize>() {
                Ok(n) if n < shards => DefaultShard::Index(n),
                _ => DefaultShard::Refuse,
            },
            None => DefaultShard::Refuse,
        }
    }
}

/// Why no shard could be chosen.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
pub enum ShardError {
    #[error("no shard chosen for this query in pool \"{pool}\": use SET SHARD TO '<n>', SET SHARDING KEY TO '<key>', \
             a /* shard_id: <n> */ or /* sharding_key: <key> */ comment at the start of the query, or set default_shard")]
    NoShard { pool: String },
    #[error("shard {shard} does not exist: pool \"{pool}\" has {shards} shards (0 to {})", shards - 1)]
    OutOfRange {
        pool: String,
        shard: usize,
        shards: usize,
    },
    #[error("cross-shard statement: its sharding keys {first_key} and {other_key} are on shards {first} and {other}; \
             send one statement per shard")]
    CrossShard {
        first_key: i64,
        first: usize,
        other_key: i64,
        other: usize,
    },
    #[error("{0}")]
    BadHint(String),
}

impl ShardError {
    pub fn sqlstate(&self) -> &'static str {
        match self {
            ShardError::NoShard { .. } | ShardError::CrossShard { .. } => "0A000",
            ShardError::OutOfRange { .. } | ShardError::BadHint(_) => "22023",
        }
    }
}

/// Parsed statements' sharding key values are kept per statement text.
const KEY_CACHE_LIMIT: usize = 10_000;

/// A pool's shards on one arbiter.
pub struct Shards {
    pub clusters: Vec<Cluster>,
    /// RELOAD replaced this pool view (its layout changed or it is gone): clients move to
    /// the new one at their next checkout.
    pub retired: std::cell::Cell<bool>,
    pub function: ShardingFunction,
    pub key: Option<KeyColumn>,
    pub default_shard: DefaultShard,
    keys: RefCell<HashMap<Box<str>, Vec<KeyValue>, ahash::RandomState>>,
}

impl Shards {
    pub fn new(
        clusters: Vec<Cluster>,
        function: ShardingFunction,
        key: Option<KeyColumn>,
        default_shard: DefaultShard,
    ) -> Shards {
        Shards {
            clusters,
            retired: std::cell::Cell::new(false),
            function,
            key,
            default_shard,
            keys: RefCell::new(HashMap::default()),
        }
    }

    pub fn is_sharded(&self) -> bool {
        self.clusters.len() > 1
    }

    /// Whether routing looks at statements' sharding keys.
    pub fn routes_by_key(&self) -> bool {
        self.is_sharded() && self.key.is_some()
    }

    fn label(&self) -> String {
        self.clusters[0].settings().label()
    }

    /// The shard a client's setting names.
    pub fn shard_of(&self, setting: ShardSetting) -> Result<usize, ShardError> {
        let n = self.clusters.len();
        match setting {
            ShardSetting::Index(i) if i < n => Ok(i),
            ShardSetting::Index(i) => Err(ShardError::OutOfRange {
                pool: self.label(),
                shard: i,
                shards: n,
            }),
            ShardSetting::Key(k) => Ok(shard_for(self.function, k, n)),
            ShardSetting::Any => Ok(rand::thread_rng().gen_range(0..n)),
        }
    }

    /// The shard for a transaction whose first statement is `statement` (with its Bind
    /// parameters when known), for a client whose own setting is `client`.
    pub fn choose(
        &self,
        statement: Option<&str>,
        params: Option<&[BindParam<'_>]>,
        client: Option<ShardSetting>,
    ) -> Result<usize, ShardError> {
        if !self.is_sharded() {
            return Ok(0);
        }
        if let Some(sql) = statement {
            if let Some(hint) = parse_hint(sql) {
                return self.shard_of(hint.map_err(ShardError::BadHint)?);
            }
            if let Some(shard) = self.shard_by_key(sql, params)? {
                return Ok(shard);
            }
        }
        if let Some(setting) = client {
            return self.shard_of(setting);
        }
        match self.default_shard {
            DefaultShard::Index(i) => Ok(i),
            DefaultShard::Random => self.shard_of(ShardSetting::Any),
            DefaultShard::Refuse => Err(ShardError::NoShard { pool: self.label() }),
        }
    }

    /// The shard the statement's sharding key values (all of them) fall on, if it has any.
    fn shard_by_key(
        &self,
        sql: &str,
        params: Option<&[BindParam<'_>]>,
    ) -> Result<Option<usize>, ShardError> {
        let Some(key) = &self.key else {
            return Ok(None);
        };
        let mut cache = self.keys.borrow_mut();
        if !cache.contains_key(sql) {
            if cache.len() >= KEY_CACHE_LIMIT {
                cache.clear();
            }
            cache.insert(sql.into(), key_values(sql, key));
        }
        let values = &cache[sql];
        let mut found: Option<(i64, usize)> = None;
        for v in values {
            let k = match *v {
                KeyValue::Literal(k) => k,
                KeyValue::Param(n) => {
                    match params
                        .and_then(|p| p.get(n.wrapping_sub(1)))
                        .and_then(|p| p.as_i64())
                    {
                        Some(k) => k,
                        None => continue,
                    }
                }
            };
            let shard = shard_for(self.function, k, self.clusters.len());
            match found {
                None => found = Some((k, shard)),
                Some((first_key, first)) if first != shard => {
                    return Err(ShardError::CrossShard {
                        first_key,
                        first,
                        other_key: k,
                        other: shard,
                    })
                }
                _ => {}
            }
        }
        Ok(found.map(|(_, s)| s))
    }
}
