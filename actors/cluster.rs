//! Cluster: one arbiter's view of a pool's servers for one user — a `PoolShard` per server —
//! and the choice of server for each transaction (or session): which servers the role
//! allows, which are banned, and the balancing strategy among the rest.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use pgcorral::config::{DefaultRole, LoadBalancing, PoolMode};
use pgcorral::route::{pick, Access, ClassifyCache, RoleSetting, Want};
use pgcorral::session::ParamSet;

use crate::budget::PoolSettings;
use crate::pool::PoolShard;
use crate::server_state::{Role, ServerState};

/// One server of the pool, as this arbiter uses it.
pub struct Member {
    pub state: Arc<ServerState>,
    pub shard: Rc<PoolShard>,
}

/// A pool's servers on one arbiter.
pub struct Cluster {
    pub members: Vec<Member>,
    pub balancing: LoadBalancing,
    pub default_role: RoleSetting,
    pub read_write_split: bool,
    counter: Cell<usize>,
    classified: RefCell<ClassifyCache>,
}

impl Cluster {
    pub fn new(
        members: Vec<Member>,
        balancing: LoadBalancing,
        default_role: DefaultRole,
        read_write_split: bool,
    ) -> Cluster {
        Cluster {
            members,
            balancing,
            default_role: match default_role {
                DefaultRole::Any => RoleSetting::Any,
                DefaultRole::Primary => RoleSetting::Primary,
                DefaultRole::Replica => RoleSetting::Replica,
            },
            read_write_split,
            counter: Cell::new(0),
            classified: RefCell::new(ClassifyCache::default()),
        }
    }

    /// The pool's settings (the same on every member but for the server address).
    pub fn settings(&self) -> arc_swap::Guard<std::sync::Arc<PoolSettings>> {
        self.members[0].shard.global.settings()
    }

    /// Reads the settings a transaction needs (timeouts, statement cap) without an
    /// `ArcSwap` load.
    pub fn read_settings<R>(&self, read: impl FnOnce(&PoolSettings) -> R) -> R {
        self.members[0].shard.read_settings(read)
    }

    /// Whether choosing needs the statement text (to classify it).
    pub fn needs_statement(&self, role: RoleSetting, mode: PoolMode) -> bool {
        mode != PoolMode::Session
            && (role == RoleSetting::Auto || (role == RoleSetting::Any && self.read_write_split))
    }

    /// Which servers a transaction may use, given the client's role setting and (when the
    /// role asks for it) the text of its first statement. Session mode chooses once per
    /// session, so it never splits reads from writes.
    pub fn want(&self, role: RoleSetting, mode: PoolMode, statement: Option<&str>) -> Want {
        match role {
            RoleSetting::Primary => Want::Primary,
            RoleSetting::Replica => Want::Replica,
            _ if !self.needs_statement(role, mode) => Want::Any,
            _ => match statement.map(|s| self.classified.borrow_mut().classify(s)) {
                Some(Access::Read) => Want::ReplicaPreferred,
                // A write, or a first message without SQL (Bind of a named statement…).
                _ => Want::Primary,
            },
        }
    }

    fn eligible(&self, i: usize, want: Want, allow_banned: bool, skip: &[usize]) -> bool {
        let s = &self.members[i].state;
        let role = s.role();
        let fits = match want {
            Want::Primary => role == Role::Primary,
            Want::Replica | Want::ReplicaPreferred => role == Role::Replica,
            Want::Any => role != Role::Unknown,
        };
        fits && (allow_banned || !s.is_banned()) && !skip.contains(&i)
    }

    fn pick_among(&self, want: Want, allow_banned: bool, skip: &[usize]) -> Option<usize> {
        // One server (most pools): nothing to balance, no random number.
        if self.members.len() == 1 {
            return self.eligible(0, want, allow_banned, skip).then_some(0);
        }
        let mut counter = self.counter.get();
        let chosen = pick(
            self.balancing,
            self.members.len(),
            |i| self.eligible(i, want, allow_banned, skip),
            |i| self.members[i].state.outstanding.load(Ordering::Relaxed),
            &mut counter,
            &mut rand::thread_rng(),
        );
        self.counter.set(counter);
        chosen
    }

    /// The server for a transaction, or None when none is eligible now. A write goes to the
    /// primary even when it is banned (there is nowhere else for it); reads fall back to the
    /// primary when every replica is banned, unless the client asked for replicas only.
    pub fn choose(&self, want: Want, skip: &[usize]) -> Option<usize> {
        match want {
            Want::Primary => self
                .pick_among(Want::Primary, false, skip)
                .or_else(|| self.pick_among(Want::Primary, true, skip)),
            Want::Replica => self.pick_among(Want::Replica, false, skip),
            Want::Any => self
                .pick_among(Want::Any, false, skip)
                .or_else(|| self.pick_among(Want::Primary, true, skip)),
            Want::ReplicaPreferred => self
                .pick_among(Want::Replica, false, skip)
                .or_else(|| self.pick_among(Want::Primary, false, skip))
                .or_else(|| self.pick_among(Want::Primary, true, skip)),
        }
    }

    /// Whether waiting may help: some server's role is not known yet (a health check will
    /// tell), or the client waits for a primary (a failover may bring one).
    pub fn worth_waiting(&self, want: Want) -> bool {
        want == Want::Primary || self.members.iter().any(|m| m.state.role() == Role::Unknown)
    }

    /// Server ParameterStatus values learned from any member.
    pub fn server_params(&self) -> Option<Arc<ParamSet>> {
        self.members
            .iter()
            .find_map(|m| m.shard.global.server_params())
    }

    /// Whether checkouts must be counted per server (only least_outstanding reads them).
    pub fn counts_outstanding(&self) -> bool {
        self.balancing == LoadBalancing::LeastOutstanding
    }
}
