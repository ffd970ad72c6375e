//! The process-wide half of a pool: its resolved settings, the `pool_size` budget shared by
//! every arbiter's shard (plus `max_db_connections` / `max_user_connections`), and the
//! per-arbiter waiting and idle counts that let shards hand connections to each other.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix::Addr;
use arc_swap::ArcSwap;
use pgcorral::config::{Config, Pool, PoolMode};
use pgcorral::session::ParamSet;

use crate::health::CheckSettings;
use crate::pool::PoolActor;
use crate::server::ServerTarget;
use crate::server_state::ServerState;
use crate::shared::UserAuth;

/// A pool's settings, resolved for one user.
#[derive(Debug, Clone)]
pub struct PoolSettings {
    /// The database name clients ask for (the pool's name).
    pub name: String,
    pub user: String,
    pub mode: PoolMode,
    pub size: usize,
    pub min_size: usize,
    pub reserve_size: usize,
    pub reserve_timeout: Duration,
    pub query_wait_timeout: Option<Duration>,
    pub connect_timeout: Option<Duration>,
    pub idle_timeout: Option<Duration>,
    pub lifetime: Option<Duration>,
    pub idle_transaction_timeout: Option<Duration>,
    pub client_idle_timeout: Option<Duration>,
    pub query_timeout: Option<Duration>,
    pub reset_query: String,
    /// Named prepared statements kept per server connection (0 = not tracked).
    pub max_prepared_statements: usize,
    pub target: ServerTarget,
    pub ban_time: Duration,
}

impl PoolSettings {
    /// Settings for the pool's server number `server` of shard number `shard`.
    pub fn new(
        pool: &Pool,
        config: &Config,
        auth: &UserAuth,
        shard: usize,
        server: usize,
    ) -> PoolSettings {
        let shard = &pool.shards[shard];
        let server = &shard.servers[server];
        let user = &auth.user;
        PoolSettings {
            name: pool.name.clone(),
            user: user.name.clone(),
            mode: config.effective_pool_mode(pool, user),
            size: config.effective_pool_size(pool, user),
            min_size: pool.min_pool_size,
            reserve_size: pool.reserve_pool_size,
            max_prepared_statements: pool.max_prepared_statements,
            reserve_timeout: pool.reserve_pool_timeout,
            query_wait_timeout: pool.query_wait_timeout,
            connect_timeout: pool.server_connect_timeout,
            idle_timeout: pool.server_idle_timeout,
            lifetime: pool.server_lifetime,
            idle_transaction_timeout: pool.idle_transaction_timeout,
            client_idle_timeout: pool.client_idle_timeout,
            query_timeout: pool.query_timeout,
            reset_query: pool.server_reset_query.clone(),
            target: ServerTarget {
                host: server.host.clone(),
                port: server.port,
                database: shard.database.clone(),
                user: user
                    .server_user
                    .clone()
                    .unwrap_or_else(|| user.name.clone()),
                secret: auth.server_secret.clone(),
            },
            ban_time: pool.ban_time,
        }
    }

    /// "database/user", as pools are named in errors and logs.
    pub fn label(&self) -> String {
        format!("{}/{}", self.name, self.user)
    }

    /// The health-check settings of this pool.
    pub fn checks(pool: &Pool) -> CheckSettings {
        CheckSettings {
            interval: pool.healthcheck_interval,
            timeout: pool.healthcheck_timeout,
            ban_time: pool.ban_time,
            max_replica_lag: pool.max_replica_lag,
        }
    }
}

/// A shared cap on open connections (0 = no cap).
#[derive(Debug, Clone)]
pub struct Cap {
    pub count: Arc<AtomicUsize>,
    pub max: usize,
}

impl Cap {
    fn try_take(&self) -> bool {
        if self.max == 0 {
            self.count.fetch_add(1, Ordering::Relaxed);
            return true;
        }
        self.count
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.max).then_some(n + 1)
            })
            .is_ok()
    }
    fn give_back(&self) {
        self.count.fetch_sub(1, Ordering::AcqRel);
    }
}

/// One slot of a pool's connection budget, held by a server connection (or its opening).
/// Dropping it gives the slot back, so no path that loses a connection can leak budget.
pub struct BudgetToken(Arc<PoolGlobal>);

impl BudgetToken {
    /// Takes a slot if `global` allows another connection under `limit`.
    pub fn take(global: &Arc<PoolGlobal>, limit: usize) -> Option<BudgetToken> {
        global.try_open(limit).then(|| BudgetToken(global.clone()))
    }
}

impl Drop for BudgetToken {
    fn drop(&mut self) {
        self.0.closed();
    }
}

/// One arbiter's counter on a cache line of its own: the idle count changes on every
/// transaction, and must not invalidate the line another core reads its neighbour from.
#[derive(Debug, Default)]
#[repr(align(128))]
struct CacheLine(AtomicUsize);

/// What all arbiters' shards of one (pool, user, server) share.
pub struct PoolGlobal {
    /// Swapped whole by RELOAD; read lock-free.
    settings: ArcSwap<PoolSettings>,
    /// Bumped after every swap of `settings` (shards take the new ones then).
    settings_version: AtomicU64,
    /// RELOAD replaced this pool (its layout changed or it is gone): its connections close
    /// when released and new logins use the new pool.
    pub retired: std::sync::atomic::AtomicBool,
    /// The server these connections go to.
    pub server: Arc<ServerState>,
    /// Server connections open or being opened, across arbiters.
    open: AtomicUsize,
    db: Cap,
    user: Cap,
    /// Clients waiting for a connection, per arbiter.
    waiting: Vec<CacheLine>,
    /// Idle connections, per arbiter.
    idle: Vec<CacheLine>,
    /// Each arbiter's pool actor, for handing connections across.
    shards: Mutex<Vec<Option<Addr<PoolActor>>>>,
    /// ParameterStatus values of the first server login, replayed to clients at login.
    server_params: Mutex<Option<Arc<ParamSet>>>,
    /// Bumped by RECONNECT and reloads: older connections close at checkin.
    pub generation: AtomicU64,
    /// The arbiter that keeps `min_pool_size` warm (the first to use the pool).
    pub home_worker: usize,
    /// Shards of the pool when this was made (a change retires it on RELOAD).
    pub shard_count: usize,
}

impl PoolGlobal {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        pool: &Pool,
        config: &Config,
        auth: &UserAuth,
        shard_index: usize,
        server_index: usize,
        server: Arc<ServerState>,
        workers: usize,
        home_worker: usize,
        db_count: Arc<AtomicUsize>,
        user_count: Arc<AtomicUsize>,
    ) -> PoolGlobal {
        PoolGlobal {
            settings: ArcSwap::from_pointee(PoolSettings::new(
                pool,
                config,
                auth,
                shard_index,
                server_index,
            )),
            settings_version: AtomicU64::new(1),
            retired: std::sync::atomic::AtomicBool::new(false),
            server,
            open: AtomicUsize::new(0),
            db: Cap {
                count: db_count,
                max: config.general.max_db_connections,
            },
            user: Cap {
                count: user_count,
                max: config.general.max_user_connections,
            },
            waiting: (0..workers).map(|_| CacheLine::default()).collect(),
            idle: (0..workers).map(|_| CacheLine::default()).collect(),
            shards: Mutex::new(vec![None; workers]),
            server_params: Mutex::new(None),
            generation: AtomicU64::new(0),
            home_worker,
            shard_count: pool.shards.len(),
        }
    }

    /// The pool's settings now.
    pub fn settings(&self) -> arc_swap::Guard<Arc<PoolSettings>> {
        self.settings.load()
    }

    /// Changes whenever the settings do.
    pub fn settings_version(&self) -> u64 {
        self.settings_version.load(Ordering::Acquire)
    }

    /// The pool's settings now, to keep across awaits.
    pub fn settings_arc(&self) -> Arc<PoolSettings> {
        self.settings.load_full()
    }

    /// RELOAD: new settings; a changed server target retires the open connections (they
    /// close when released, never under a running transaction).
    pub fn replace_settings(&self, new: PoolSettings) {
        let old = self.settings.load();
        let target_changed = old.target.host != new.target.host
            || old.target.port != new.target.port
            || old.target.database != new.target.database
            || old.target.user != new.target.user
            || !same_secret(&old.target.secret, &new.target.secret);
        self.settings.store(Arc::new(new));
        self.settings_version.fetch_add(1, Ordering::Release);
        if target_changed {
            self.generation.fetch_add(1, Ordering::AcqRel);
        }
    }

    pub fn is_retired(&self) -> bool {
        self.retired.load(Ordering::Acquire)
    }

    /// Takes one connection from the budget, allowing up to `limit` for this pool.
    fn try_open(&self, limit: usize) -> bool {
        if self
            .open
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < limit).then_some(n + 1)
            })
            .is_err()
        {
            return false;
        }
        if !self.db.try_take() {
            self.open.fetch_sub(1, Ordering::AcqRel);
            return false;
        }
        if !self.user.try_take() {
            self.db.give_back();
            self.open.fetch_sub(1, Ordering::AcqRel);
            return false;
        }
        true
    }

    /// Returns one connection to the budget (it was closed or its opening failed).
    fn closed(&self) {
        self.user.give_back();
        self.db.give_back();
        self.open.fetch_sub(1, Ordering::AcqRel);
    }

    /// Server connections open or being opened, across arbiters.
    pub fn open_count(&self) -> usize {
        self.open.load(Ordering::Relaxed)
    }

    pub fn set_waiting(&self, worker: usize, n: usize) {
        let w = &self.waiting[worker].0;
        // Waiting changes rarely: skip the store (and the cache-line write) when it did not.
        if w.load(Ordering::Relaxed) != n {
            w.store(n, Ordering::Relaxed);
        }
    }

    pub fn set_idle(&self, worker: usize, n: usize) {
        self.idle[worker].0.store(n, Ordering::Relaxed);
    }

    /// Another arbiter whose clients wait more than `mine` do, the one waiting most.
    pub fn neediest_other(&self, worker: usize, mine: usize) -> Option<usize> {
        (0..self.waiting.len())
            .filter(|&w| w != worker)
            .map(|w| (w, self.waiting[w].0.load(Ordering::Relaxed)))
            .filter(|&(_, n)| n > mine)
            .max_by_key(|&(_, n)| n)
            .map(|(w, _)| w)
    }

    /// Whether another connection fits under `limit` (a hint: `try_open` decides, and also
    /// checks the database and user caps).
    pub fn has_room(&self, limit: usize) -> bool {
        self.open.load(Ordering::Acquire) < limit
    }

    /// Whether an arbiter other than `worker` has idle connections.
    pub fn any_idle_besides(&self, worker: usize) -> bool {
        self.idle
            .iter()
            .enumerate()
            .any(|(w, n)| w != worker && n.0.load(Ordering::Relaxed) > 0)
    }

    /// Arbiters other than `worker` that have idle connections.
    pub fn others_with_idle(&self, worker: usize) -> Vec<usize> {
        (0..self.idle.len())
            .filter(|&w| w != worker && self.idle[w].0.load(Ordering::Relaxed) > 0)
            .collect()
    }

    pub fn register_shard(&self, worker: usize, addr: Addr<PoolActor>) {
        if let Ok(mut s) = self.shards.lock() {
            s[worker] = Some(addr);
        }
    }

    pub fn shard(&self, worker: usize) -> Option<Addr<PoolActor>> {
        self.shards.lock().ok().and_then(|s| s[worker].clone())
    }

    pub fn server_params(&self) -> Option<Arc<ParamSet>> {
        self.server_params.lock().ok().and_then(|p| p.clone())
    }

    pub fn remember_server_params(&self, params: &Arc<ParamSet>) {
        if let Ok(mut p) = self.server_params.lock() {
            if p.is_none() {
                *p = Some(params.clone());
            }
        }
    }

    /// Number of arbiters sharing this pool.
    pub fn workers(&self) -> usize {
        self.waiting.len()
    }

    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Relaxed)
    }
}

fn same_secret(
    a: &Option<Arc<pgcorral::auth::Secret>>,
    b: &Option<Arc<pgcorral::auth::Secret>>,
) -> bool {
    match (a.as_deref(), b.as_deref()) {
        (None, None) => true,
        (Some(x), Some(y)) => x.same_as(y),
        _ => false,
    }
}
