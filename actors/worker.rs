//! Per-arbiter state: this arbiter's pool shards (created on first use), its parked clients
//! and its shutdown signal. Lives in a thread-local because every arbiter is one thread.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use actix::Supervisor;
use tokio::sync::Notify;

use crate::budget::PoolSettings;
use crate::cluster::{Cluster, Member};
use crate::health::Watch;
use crate::logins::Logins;
use crate::parking::Parking;
use crate::pool::{PoolActor, PoolShard};
use crate::registry::ClientInfo;
use crate::shards::{DefaultShard, Shards};
use crate::shared::{Shared, UserAuth};
use crate::signal::Signal;
use pgcorral::route::sharding_key::KeyColumn;
use pgcorral::session::ParamSet;

/// How many distinct startup settings (and names) an arbiter shares between its clients.
const INTERNED: usize = 32;

/// One arbiter's view of the world.
pub struct Worker {
    pub index: usize,
    pub shared: Arc<Shared>,
    pools: RefCell<HashMap<(String, String), Rc<Shards>>>,
    /// Logged-in clients on this arbiter, for the admin console.
    registry: RefCell<HashMap<u64, Rc<ClientInfo>>>,
    /// Wakes the listener and the admin console when shutdown starts.
    pub shutdown: Rc<Notify>,
    /// Wakes waiting clients to look at their state: at KILL, at shutdown, and at every
    /// parking sweep.
    pub attention: Rc<Signal>,
    /// Clients idle long enough to give up their actor.
    pub parking: Rc<Parking>,
    /// Logins in progress, capped.
    pub logins: Rc<Logins>,
    /// Startup settings shared by the clients that logged in with the same ones.
    settings: RefCell<Vec<Rc<ParamSet>>>,
    /// User and database names shared by their clients.
    names: RefCell<Vec<Rc<str>>>,
    pub clients: Cell<usize>,
}

thread_local! {
    static WORKER: RefCell<Option<Rc<Worker>>> = const { RefCell::new(None) };
}

impl Worker {
    /// Installs this arbiter's worker state (called once per arbiter at start, inside its
    /// runtime) and starts its parking lot.
    pub fn install(index: usize, shared: Arc<Shared>) -> Rc<Worker> {
        let parking = Rc::new(Parking::new(shared.log.clone()));
        let w = Rc::new(Worker {
            index,
            shared,
            pools: RefCell::new(HashMap::new()),
            registry: RefCell::new(HashMap::new()),
            shutdown: Rc::new(Notify::new()),
            attention: Rc::new(Signal::new()),
            parking: parking.clone(),
            logins: Rc::new(Logins::default()),
            settings: RefCell::new(Vec::new()),
            names: RefCell::new(Vec::new()),
            clients: Cell::new(0),
        });
        WORKER.with(|cell| *cell.borrow_mut() = Some(w.clone()));
        actix_rt::spawn(parking.run(w.attention.clone()));
        w
    }

    /// The shared copy of a client's startup settings.
    pub fn intern_settings(&self, settings: ParamSet) -> Rc<ParamSet> {
        intern(&self.settings, settings)
    }

    /// The shared copy of a user or database name.
    pub fn intern_name(&self, name: &str) -> Rc<str> {
        intern(&self.names, name)
    }

    /// The worker of the current arbiter thread.
    pub fn current() -> Option<Rc<Worker>> {
        WORKER.with(|cell| cell.borrow().clone())
    }

    /// This arbiter's view of the pool for (pool, user), for a user configured or fetched
    /// by auth_query. None when the pool or the user is not known.
    pub fn pool(&self, pool: &str, user: &str) -> Option<Rc<Shards>> {
        let key = (pool.to_owned(), user.to_owned());
        if let Some(c) = self.pools.borrow().get(&key) {
            return Some(c.clone());
        }
        let auth = self.shared.user_auth(pool, user)?;
        self.pool_with(pool, &auth)
    }

    /// This arbiter's view of the pool for (pool, `auth`'s user): for each shard a cluster
    /// with one pool shard per server, each started with its pool actor under a supervisor on
    /// first use. None when the pool is not configured.
    pub fn pool_with(&self, pool: &str, auth: &UserAuth) -> Option<Rc<Shards>> {
        let user = auth.user.name.as_str();
        let key = (pool.to_owned(), user.to_owned());
        if let Some(c) = self.pools.borrow().get(&key) {
            return Some(c.clone());
        }
        let loaded = self.shared.loaded();
        let cfg = loaded.config.pool(pool)?;
        let mut clusters = Vec::new();
        for (shard_index, shard) in cfg.shards.iter().enumerate() {
            let mut members = Vec::new();
            for server in 0..shard.servers.len() {
                let global =
                    self.shared
                        .pool_global(pool, auth, shard_index, server, self.index)?;
                let state = global.server.clone();
                let shard = PoolShard::new(global, self.shared.clone(), self.index);
                let for_actor = shard.clone();
                let addr = Supervisor::start(move |_| PoolActor { shard: for_actor });
                // The pool's home arbiter runs the health checks of its servers (the first
                // pool of a server to ask keeps it).
                if shard.global.home_worker == self.index {
                    if let Some(health) = self.shared.health.get() {
                        health.do_send(Watch {
                            state: state.clone(),
                            probe: addr.recipient(),
                            settings: PoolSettings::checks(cfg),
                        });
                    }
                }
                members.push(Member { state, shard });
            }
            clusters.push(Cluster::new(
                members,
                cfg.load_balancing,
                cfg.default_role,
                cfg.read_write_split,
            ));
        }
        let shards = Rc::new(Shards::new(
            clusters,
            cfg.sharding_function,
            cfg.automatic_sharding_key
                .as_deref()
                .and_then(KeyColumn::parse),
            DefaultShard::from_config(cfg.default_shard.as_deref(), cfg.shards.len()),
        ));
        self.pools.borrow_mut().insert(key, shards.clone());
        Some(shards)
    }

    /// Adds a logged-in client to the registry; it is removed (and counted out) when the
    /// returned guard drops.
    pub fn register_client(&self, info: Rc<ClientInfo>, count: ClientCount) -> Registered {
        let id = info.id;
        self.registry.borrow_mut().insert(id, info);
        Registered { count, id }
    }

    /// The logged-in clients on this arbiter.
    pub fn logged_in(&self) -> Vec<Rc<ClientInfo>> {
        self.registry.borrow().values().cloned().collect()
    }

    /// The pools on this arbiter by (database, user).
    pub fn pools_by_name(&self) -> Vec<((String, String), Rc<Shards>)> {
        self.pools
            .borrow()
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    /// Drops this arbiter's view of a retired pool: new logins build it from the new
    /// configuration; clients still holding the old one carry on.
    pub fn forget_pool(&self, pool: &str, user: &str) {
        let removed = self
            .pools
            .borrow_mut()
            .remove(&(pool.to_owned(), user.to_owned()));
        if let Some(old) = removed {
            old.retired.set(true);
            for c in &old.clusters {
                for m in &c.members {
                    m.shard.close_idle();
                }
            }
        }
    }

    /// KILL: ends every client of `database` on this arbiter and closes idle connections.
    pub fn kill_database(&self, database: &str) -> usize {
        let mut n = 0;
        let mut parked = Vec::new();
        for c in self.registry.borrow().values() {
            if *c.database == *database {
                c.killed.set(true);
                parked.extend(c.parked.get());
                n += 1;
            }
        }
        self.attention.notify_waiters();
        for key in parked {
            self.parking.wake(key, None);
        }
        for ((db, _), shards) in self.pools.borrow().iter() {
            if db == database {
                for c in &shards.clusters {
                    for m in &c.members {
                        m.shard.close_idle();
                    }
                }
            }
        }
        n
    }

    /// Every pool shard on this arbiter.
    pub fn shards(&self) -> Vec<Rc<PoolShard>> {
        self.pools
            .borrow()
            .values()
            .flat_map(|p| {
                p.clusters
                    .iter()
                    .flat_map(|c| c.members.iter().map(|m| m.shard.clone()))
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    /// Starts shutdown on this arbiter: idle clients are told and closed, idle server
    /// connections closed; clients inside a transaction finish it first.
    pub fn begin_shutdown(&self) {
        self.shutdown.notify_waiters();
        self.attention.notify_waiters();
        self.parking.wake_all();
        for s in self.shards() {
            s.close_idle();
        }
    }
}

/// The most recently used shared copy equal to `value`, made if there is none; the
/// `INTERNED` most recently used are kept.
fn intern<T: ?Sized + PartialEq, V>(known: &RefCell<Vec<Rc<T>>>, value: V) -> Rc<T>
where
    V: std::borrow::Borrow<T> + Into<Rc<T>>,
{
    let mut known = known.borrow_mut();
    if let Some(i) = known.iter().position(|s| **s == *value.borrow()) {
        let s = known.remove(i);
        known.push(s.clone());
        return s;
    }
    let s: Rc<T> = value.into();
    if known.len() >= INTERNED {
        known.remove(0);
    }
    known.push(s.clone());
    s
}

/// A client connection's place in the client counts (max_client_conn, the arbiter's own
/// count): counted in when made at accept, out when dropped, however the connection ends.
pub struct ClientCount(Rc<Worker>);

impl ClientCount {
    pub fn new(worker: Rc<Worker>) -> ClientCount {
        worker.shared.clients.fetch_add(1, Ordering::AcqRel);
        worker.clients.set(worker.clients.get() + 1);
        ClientCount(worker)
    }

    /// The client's arbiter.
    pub fn worker(&self) -> &Rc<Worker> {
        &self.0
    }
}

impl Drop for ClientCount {
    fn drop(&mut self) {
        self.0.shared.clients.fetch_sub(1, Ordering::AcqRel);
        self.0.clients.set(self.0.clients.get().saturating_sub(1));
    }
}

/// A client's place in its arbiter's registry and client counts.
pub struct Registered {
    count: ClientCount,
    id: u64,
}

impl Registered {
    /// The client's arbiter.
    pub fn worker(&self) -> &Rc<Worker> {
        self.count.worker()
    }
}

impl Drop for Registered {
    fn drop(&mut self) {
        self.count.0.registry.borrow_mut().remove(&self.id);
    }
}
