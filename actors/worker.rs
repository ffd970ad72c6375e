//! Per-arbiter state: this arbiter's pool shards (created on first use) and its shutdown
//! signal. Lives in a thread-local because every arbiter is one thread.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;

use actix::{Actor, Supervisor};
use tokio::sync::Notify;

use crate::pool::{PoolActor, PoolShard};
use crate::shared::Shared;

/// One arbiter's view of the world.
pub struct Worker {
    pub index: usize,
    pub shared: Arc<Shared>,
    pools: RefCell<HashMap<(String, String), Rc<PoolShard>>>,
    /// Wakes idle clients when shutdown starts.
    pub shutdown: Rc<Notify>,
    pub clients: Cell<usize>,
}

thread_local! {
    static WORKER: RefCell<Option<Rc<Worker>>> = const { RefCell::new(None) };
}

impl Worker {
    /// Installs this arbiter's worker state (called once per arbiter at start).
    pub fn install(index: usize, shared: Arc<Shared>) -> Rc<Worker> {
        let w = Rc::new(Worker {
            index,
            shared,
            pools: RefCell::new(HashMap::new()),
            shutdown: Rc::new(Notify::new()),
            clients: Cell::new(0),
        });
        WORKER.with(|cell| *cell.borrow_mut() = Some(w.clone()));
        w
    }

    /// The worker of the current arbiter thread.
    pub fn current() -> Option<Rc<Worker>> {
        WORKER.with(|cell| cell.borrow().clone())
    }

    /// This arbiter's shard of the pool for (pool, user), started under a supervisor on
    /// first use. None when the pool or the user is not configured.
    pub fn shard(&self, pool: &str, user: &str) -> Option<Rc<PoolShard>> {
        let key = (pool.to_owned(), user.to_owned());
        if let Some(s) = self.pools.borrow().get(&key) {
            return Some(s.clone());
        }
        let global = self.shared.pool_global(pool, user, self.index)?;
        let shard = PoolShard::new(global, self.shared.clone(), self.index);
        let for_actor = shard.clone();
        let _addr = Supervisor::start(move |_| PoolActor { shard: for_actor });
        self.pools.borrow_mut().insert(key, shard.clone());
        Some(shard)
    }

    /// Every shard on this arbiter.
    pub fn shards(&self) -> Vec<Rc<PoolShard>> {
        self.pools.borrow().values().cloned().collect()
    }

    /// Starts shutdown on this arbiter: idle clients are told and closed, idle server
    /// connections closed; clients inside a transaction finish it first.
    pub fn begin_shutdown(&self) {
        self.shutdown.notify_waiters();
        for s in self.shards() {
            s.close_idle();
        }
    }
}

/// Silences the unused-import lint for `Actor` (needed by `Supervisor::start`).
#[allow(dead_code)]
fn _assert_actor<A: Actor>() {}
