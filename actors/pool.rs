//! PoolActor: one per (database, user) per arbiter, and the shard state it shares with the
//! arbiter's client actors.
//!
//! Checkout and checkin are direct calls on the shard (same thread, no message): an idle
//! connection is popped, or the client queues a handoff and the shard opens a connection if
//! the global budget allows, or asks another arbiter's shard to hand one over. The actor owns
//! the timers (idle timeout, lifetime, min_pool_size, reserve pool) and receives connections
//! handed across arbiters. It runs under an actix `Supervisor`: its state lives in the shard,
//! which survives a restart, so idle connections and waiters are kept.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use pgcorral::config::ServerRole;
use pgcorral::session::prepared::PreparedCounts;
use pgcorral::session::state::PinReason;
use pgcorral::stats::Histogram;
use pgcorral::tls::TlsSummary;
use slog::{debug, info, warn, Logger};

use crate::balancer::{CheckOutcome, RoleSeen};
use crate::budget::{BudgetToken, PoolGlobal, PoolSettings};
use crate::error::ServerError;
use crate::handoff::{self, Slots};
use crate::health::{parse_health_row, Probe, HEALTH_QUERY};
use crate::server::{ServerConn, TransferableConn};
use crate::server_state::BanReason;
use crate::shared::Shared;

/// Why a checkout failed.
#[derive(Debug)]
pub enum CheckoutError {
    WaitTimeout(Duration),
    Server(String),
    Closed,
}

struct Waiter {
    tx: handoff::Sender<Handoff>,
    since: Instant,
}

/// A waiting checkout's place in its shard's queue: when the wait is given up (its future
/// dropped, because the client left), the place is taken out of the queue at once, so the
/// waiting count is right and nobody is handed a connection for it.
struct Place<'a> {
    shard: &'a PoolShard,
    given_up: bool,
}

impl Drop for Place<'_> {
    fn drop(&mut self) {
        if self.given_up {
            self.shard.purge_waiters();
        }
    }
}

/// What a waiting client is sent.
enum Handoff {
    Conn(Box<ServerConn>),
    /// No connection could be opened, for this reason.
    Failed(String),
    /// It waited query_wait_timeout.
    WaitedTooLong(Duration),
}

/// Counters of one shard, for logs and (later) the admin console and metrics.
#[derive(Debug, Default, Clone, Copy)]
pub struct ShardStats {
    pub checkouts: u64,
    pub waits: u64,
    pub salvaged: u64,
    pub salvage_failed: u64,
    pub connects: u64,
    pub connect_failures: u64,
}

/// Traffic counters of one shard (SHOW STATS), bumped by its clients without a lock.
#[derive(Debug, Default)]
pub struct Traffic {
    pub xact_count: Cell<u64>,
    pub query_count: Cell<u64>,
    pub bytes_received: Cell<u64>,
    pub bytes_sent: Cell<u64>,
    pub xact_time_us: Cell<u64>,
    pub query_time_us: Cell<u64>,
    pub wait_time_us: Cell<u64>,
    pub xact_hist: Histogram,
    pub wait_hist: Histogram,
    /// Server ErrorResponses passed to clients, by SQLSTATE class.
    pub errors: RefCell<std::collections::BTreeMap<String, u64>>,
    /// Times a server connection was pinned to its client, by reason (PinReason::ALL order).
    pub pins: [Cell<u64>; PinReason::ALL.len()],
    /// Named prepared statement work (transaction pooling).
    pub prepared: Cell<PreparedCounts>,
}

impl Traffic {
    pub fn add(cell: &Cell<u64>, n: u64) {
        cell.set(cell.get().wrapping_add(n));
    }

    /// Counts a server connection pinned for `reason`.
    pub fn pinned(&self, reason: PinReason) {
        Traffic::add(&self.pins[reason.index()], 1);
    }

    /// Counts an error by its SQLSTATE class (first two characters).
    pub fn error(&self, sqlstate: &str) {
        let class = sqlstate.get(..2).unwrap_or("??").to_owned();
        *self.errors.borrow_mut().entry(class).or_default() += 1;
    }
}

/// One arbiter's part of a pool.
pub struct PoolShard {
    pub global: Arc<PoolGlobal>,
    pub shared: Arc<Shared>,
    pub worker: usize,
    pub log: Logger,
    // Boxed on purpose: a connection moves between this list and clients as a pointer.
    #[allow(clippy::vec_box)]
    idle: RefCell<Vec<Box<ServerConn>>>,
    waiters: RefCell<VecDeque<Waiter>>,
    /// Where waiters receive their answer (kept and reused: a wait allocates nothing).
    handoffs: Slots<Handoff>,
    connecting: Cell<usize>,
    /// Connections checked out by clients of this arbiter.
    active: Cell<usize>,
    pub stats: Cell<ShardStats>,
    pub traffic: Traffic,
    /// How often the pool actor was restarted by its supervisor.
    pub restarts: Cell<u32>,
    addr: RefCell<Option<Addr<PoolActor>>>,
    /// The pool's settings as this shard last took them, and their version: reading them
    /// costs one atomic load instead of an `ArcSwap` load.
    settings: RefCell<Arc<PoolSettings>>,
    settings_version: Cell<u64>,
    /// Wakes the task that enforces query_wait_timeout (one timer per shard, aimed at the
    /// oldest waiter, instead of one per waiting client).
    wait_timer: tokio::sync::Notify,
    /// The deadline that task sleeps until (None: it waits for a waiter to arrive).
    wait_timer_at: Cell<Option<Instant>>,
}

impl PoolShard {
    pub fn new(global: Arc<PoolGlobal>, shared: Arc<Shared>, worker: usize) -> Rc<PoolShard> {
        let log = shared
            .log
            .new(slog::o!("pool" => global.settings().label(), "server" => global.server.addr()));
        let settings_version = global.settings_version();
        let settings = global.settings_arc();
        Rc::new(PoolShard {
            global,
            shared,
            worker,
            log,
            idle: RefCell::new(Vec::new()),
            waiters: RefCell::new(VecDeque::new()),
            handoffs: Slots::default(),
            connecting: Cell::new(0),
            active: Cell::new(0),
            stats: Cell::new(ShardStats::default()),
            traffic: Traffic::default(),
            restarts: Cell::new(0),
            addr: RefCell::new(None),
            settings_version: Cell::new(settings_version),
            settings: RefCell::new(settings),
            wait_timer: tokio::sync::Notify::new(),
            wait_timer_at: Cell::new(None),
        })
    }

    /// Reads the pool's settings (taken again only after RELOAD changed them): what the
    /// hot path reads, without an `ArcSwap` load.
    pub fn read_settings<R>(&self, read: impl FnOnce(&PoolSettings) -> R) -> R {
        let version = self.global.settings_version();
        if self.settings_version.get() != version {
            *self.settings.borrow_mut() = self.global.settings_arc();
            self.settings_version.set(version);
        }
        read(&self.settings.borrow())
    }

    fn bump(&self, f: impl FnOnce(&mut ShardStats)) {
        let mut s = self.stats.get();
        f(&mut s);
        self.stats.set(s);
    }

    pub fn count_salvage(&self, ok: bool) {
        self.bump(|s| {
            if ok {
                s.salvaged += 1
            } else {
                s.salvage_failed += 1
            }
        });
    }

    pub fn idle_count(&self) -> usize {
        self.idle.borrow().len()
    }

    pub fn active_count(&self) -> usize {
        self.active.get()
    }

    pub fn connecting_count(&self) -> usize {
        self.connecting.get()
    }

    /// How long the oldest waiting client has waited.
    pub fn max_wait(&self) -> Duration {
        self.waiters
            .borrow()
            .front()
            .map(|w| w.since.elapsed())
            .unwrap_or_default()
    }

    /// (id, server pid, created, last used) of each idle connection.
    pub fn idle_connections(&self) -> Vec<(u64, i32, Instant, Instant, Option<TlsSummary>)> {
        self.idle
            .borrow()
            .iter()
            .map(|c| (c.id, c.key.0, c.created, c.last_used, c.tls))
            .collect()
    }

    pub fn waiting_count(&self) -> usize {
        self.waiters.borrow().len()
    }

    fn publish_counts(&self) {
        self.global.set_idle(self.worker, self.idle.borrow().len());
        self.global
            .set_waiting(self.worker, self.waiters.borrow().len());
    }

    /// Pops a healthy idle connection (most recently used first, as PgBouncer does).
    fn pop_idle(&self) -> Option<Box<ServerConn>> {
        let mut idle = self.idle.borrow_mut();
        while let Some(mut conn) = idle.pop() {
            // RECONNECT or a changed server target retire the older generation.
            if conn.generation == self.global.generation() && conn.is_healthy_idle() {
                return Some(conn);
            }
            debug!(self.log, "dropping broken idle server connection"; "server" => conn.id);
        }
        None
    }

    /// Takes a server connection for a client: immediately if one is idle, otherwise waits
    /// (up to query_wait_timeout) while a new one is opened or another is returned.
    pub async fn checkout(self: &Rc<Self>) -> Result<Box<ServerConn>, CheckoutError> {
        self.checkout_since(Instant::now()).await
    }

    /// [`checkout`](Self::checkout) for a client that has been asking since `since` (a clock
    /// read it already made).
    pub async fn checkout_since(
        self: &Rc<Self>,
        since: Instant,
    ) -> Result<Box<ServerConn>, CheckoutError> {
        if let Some(conn) = self.pop_idle() {
            if self.global.set_idle_needed() {
                self.publish_counts();
            }
            self.active.set(self.active.get() + 1);
            self.bump(|s| s.checkouts += 1);
            return Ok(conn);
        }
        // Declared before the receiver, so it is dropped after it: a wait given up (the future
        // dropped: the client left) finds its place closed and takes it out of the queue.
        let mut place = Place {
            shard: self,
            given_up: true,
        };
        let (tx, mut rx) = self.handoffs.channel();
        self.waiters.borrow_mut().push_back(Waiter { tx, since });
        self.bump(|s| s.waits += 1);
        self.publish_counts();
        self.grow();
        // The shard's wait timer fires at the oldest waiter's deadline: only a waiter that
        // would expire before that (the first after an empty queue) needs to re-aim it.
        if let Some(t) = self.read_settings(|s| s.query_wait_timeout) {
            if self.wait_timer_at.get().is_none_or(|at| since + t < at) {
                self.wait_timer.notify_one();
            }
        }
        let answer = (&mut rx).await;
        place.given_up = false;
        self.handoffs.recycle(rx);
        match answer {
            Ok(Handoff::Conn(conn)) => {
                self.active.set(self.active.get() + 1);
                self.bump(|s| s.checkouts += 1);
                Ok(conn)
            }
            Ok(Handoff::Failed(reason)) => Err(CheckoutError::Server(reason)),
            Ok(Handoff::WaitedTooLong(t)) => Err(CheckoutError::WaitTimeout(t)),
            Err(_) => Err(CheckoutError::Closed),
        }
    }

    /// Enforces query_wait_timeout for this shard's waiters: sleeps until the oldest one's
    /// deadline, fails those whose time is up, and aims again. Runs as long as the pool actor.
    async fn expire_waiters(self: Rc<Self>) {
        loop {
            let timeout = self.read_settings(|s| s.query_wait_timeout);
            let oldest = self.waiters.borrow().iter().map(|w| w.since).min();
            let at = timeout.zip(oldest).map(|(t, since)| since + t);
            self.wait_timer_at.set(at);
            match at {
                None => self.wait_timer.notified().await,
                Some(at) => {
                    tokio::select! {
                        _ = tokio::time::sleep_until(at.into()) => {}
                        _ = self.wait_timer.notified() => {}
                    }
                }
            }
            if let Some(t) = self.read_settings(|s| s.query_wait_timeout) {
                self.fail_waiters_older_than(t);
            }
        }
    }

    /// Fails every waiter that has waited `t` or more (and drops those whose client left).
    fn fail_waiters_older_than(&self, t: Duration) {
        let now = Instant::now();
        let mut kept = VecDeque::new();
        let waiters = std::mem::take(&mut *self.waiters.borrow_mut());
        for w in waiters {
            if w.tx.is_closed() {
                continue;
            }
            if now.saturating_duration_since(w.since) >= t {
                let _ = w.tx.send(Handoff::WaitedTooLong(t));
            } else {
                kept.push_back(w);
            }
        }
        // Sending wakes the clients but runs none of them: nobody queued in between.
        *self.waiters.borrow_mut() = kept;
        self.publish_counts();
    }

    /// Returns a connection after use. It goes to the oldest waiter here, or to an arbiter
    /// whose clients wait more, or back to the idle list; or it is closed if it is too old,
    /// from an older generation, or not idle.
    pub fn checkin(self: &Rc<Self>, conn: Box<ServerConn>) {
        self.checkin_at(conn, Instant::now());
    }

    /// [`checkin`](Self::checkin) of a connection last used at `now`.
    pub fn checkin_at(self: &Rc<Self>, mut conn: Box<ServerConn>, now: Instant) {
        self.active.set(self.active.get().saturating_sub(1));
        conn.last_used = now;
        self.release(conn);
    }

    /// Gives up a checked-out connection that cannot be reused (`broken`), or that failed
    /// a statement on the client's behalf but is fine (then it is returned).
    pub fn discard(self: &Rc<Self>, conn: Box<ServerConn>, broken: bool) {
        if broken {
            self.active.set(self.active.get().saturating_sub(1));
            drop(conn);
            if !self.waiters.borrow().is_empty() {
                self.grow();
            }
        } else {
            self.checkin(conn);
        }
    }

    /// Puts a connection that is not counted as active (new, adopted, salvaged) to use.
    fn release(self: &Rc<Self>, conn: Box<ServerConn>) {
        // Its age when last used (just now, at a checkin): no clock read per transaction.
        let too_old = self
            .read_settings(|s| s.lifetime)
            .is_some_and(|l| conn.last_used.saturating_duration_since(conn.created) >= l);
        if too_old
            || conn.generation != self.global.generation()
            || !conn.exchange.is_idle()
            || !conn.scanner.at_boundary()
            || self.shared.is_shutting_down()
        {
            debug!(self.log, "closing server connection at checkin"; "server" => conn.id, "too_old" => too_old);
            drop(conn);
            if !self.waiters.borrow().is_empty() {
                self.grow();
            }
            return;
        }
        let mut conn = Some(conn);
        loop {
            let waiter = self.waiters.borrow_mut().pop_front();
            let Some(w) = waiter else { break };
            match w
                .tx
                .send(Handoff::Conn(conn.take().expect("connection present")))
            {
                Ok(()) => {
                    self.publish_counts();
                    return;
                }
                Err(Handoff::Conn(back)) => conn = Some(back),
                Err(_) => unreachable!("only connections are sent"),
            }
        }
        let conn = conn.expect("connection present");
        if self.global.is_retired() {
            // RELOAD replaced this pool: it still serves its waiting clients (above), but
            // keeps nothing idle.
            return;
        }
        if self.shared.workers > 1 {
            if let Some(to) = self.global.neediest_other(self.worker, 0) {
                self.hand_over(conn, to);
                return;
            }
        }
        let mut conn = conn;
        conn.shrink();
        self.idle.borrow_mut().push(conn);
        self.publish_counts();
    }

    /// Moves a connection to another arbiter's shard (a connection that cannot be detached
    /// is closed; its budget slot returns on drop).
    fn hand_over(&self, conn: Box<ServerConn>, to: usize) {
        let Some(addr) = self.global.shard(to) else {
            return;
        };
        match conn.into_transferable() {
            Ok(t) => addr.do_send(Adopt(SendConn(t))),
            Err(e) => warn!(self.log, "could not detach a server connection"; "error" => %e),
        }
    }

    /// Drops waiters whose client gave up.
    fn purge_waiters(&self) {
        self.waiters.borrow_mut().retain(|w| !w.tx.is_closed());
        self.publish_counts();
    }

    /// Opens connections for waiting clients while the budget allows; when it does not,
    /// asks arbiters with idle connections to hand one over.
    pub fn grow(self: &Rc<Self>) {
        if self.waiters.borrow().len() <= self.connecting.get() {
            return;
        }
        let (size, reserve_size, reserve_timeout) =
            self.read_settings(|s| (s.size, s.reserve_size, s.reserve_timeout));
        let reserve_due = reserve_size > 0
            && self
                .waiters
                .borrow()
                .front()
                .is_some_and(|w| w.since.elapsed() >= reserve_timeout);
        let limit = size + if reserve_due { reserve_size } else { 0 };
        // A busy pool waits for checkins: no room to open and nothing idle elsewhere. That is
        // the common case under load, decided without walking the queue.
        let others_idle = self.shared.workers > 1 && self.global.any_idle_besides(self.worker);
        if !self.global.has_room(limit) && !others_idle {
            return;
        }
        // Clients that gave up leave their entry behind: open nothing for them.
        self.purge_waiters();
        let mut opened = false;
        while self.waiters.borrow().len() > self.connecting.get() {
            let Some(token) = BudgetToken::take(&self.global, limit) else {
                break;
            };
            self.spawn_connect(token);
            opened = true;
        }
        if !opened && others_idle && self.waiters.borrow().len() > self.connecting.get() {
            if let Some(me) = self.addr.borrow().clone() {
                for w in self.global.others_with_idle(self.worker) {
                    if let Some(addr) = self.global.shard(w) {
                        addr.do_send(Donate { to: me.clone() });
                    }
                }
            }
        }
    }

    /// Opens one connection in the background with the budget slot already taken.
    fn spawn_connect(self: &Rc<Self>, token: BudgetToken) {
        self.connecting.set(self.connecting.get() + 1);
        let shard = self.clone();
        actix_rt::spawn(async move {
            let s = shard.global.settings_arc();
            let result = ServerConn::connect(
                &s.target,
                &shard.shared,
                s.connect_timeout,
                shard.global.generation(),
            )
            .await;
            shard.connecting.set(shard.connecting.get() - 1);
            let result = match result {
                Ok(conn) => shard.classify_new(conn).await,
                Err(e) => Err(e),
            };
            match result {
                Ok(mut conn) => {
                    conn.budget = Some(token);
                    conn.last_used = Instant::now();
                    shard.bump(|s| s.connects += 1);
                    debug!(shard.log, "server connection opened"; "server" => conn.id, "addr" => %conn.addr);
                    shard.global.remember_server_params(&conn.login_params);
                    shard.release(conn);
                }
                Err(e) => {
                    shard.bump(|s| s.connect_failures += 1);
                    drop(token);
                    shard.connect_failed(&e);
                }
            }
        });
    }

    /// A new connection to an `auto` server tells its role (pg_is_in_recovery) before any
    /// client uses it; other servers' connections pass through.
    async fn classify_new(
        &self,
        mut conn: Box<ServerConn>,
    ) -> Result<Box<ServerConn>, ServerError> {
        let server = &self.global.server;
        if server.configured == ServerRole::Auto {
            let row = conn.query_row("SELECT pg_is_in_recovery()::text").await?;
            let in_recovery = row.first().and_then(|v| v.as_deref()) == Some("true");
            if let Some(b) = self.shared.balancer.get() {
                b.do_send(RoleSeen {
                    server: server.clone(),
                    in_recovery,
                });
            }
        }
        Ok(conn)
    }

    /// A connection could not be opened: the oldest waiter gets the error (no hang until
    /// query_wait_timeout when the server is down), and opening is retried for the rest.
    fn connect_failed(self: &Rc<Self>, e: &ServerError) {
        warn!(self.log, "cannot open server connection"; "server" => self.global.server.addr(), "error" => %e);
        // Refused or missing credentials are this pool's problem, not the server's: no ban.
        // A secret auth_query fetched is outdated (the password changed): fetch it again.
        if e.is_credentials_problem() {
            let s = self.global.settings();
            self.shared.server_refused_login(&s.name, &s.user);
        } else {
            self.shared.ban(
                &self.global.server,
                BanReason::ConnectFailed(e.to_string()),
                self.global.settings().ban_time,
            );
        }
        let waiter = self.waiters.borrow_mut().pop_front();
        if let Some(w) = waiter {
            let _ = w.tx.send(Handoff::Failed(e.to_string()));
        }
        self.publish_counts();
        if !self.waiters.borrow().is_empty() {
            self.grow();
        }
    }

    /// The connections this shard keeps warm: the pool's home arbiter keeps min_pool_size.
    fn min_size(&self) -> usize {
        if self.worker == self.global.home_worker {
            self.global.settings().min_size
        } else {
            0
        }
    }

    /// Periodic upkeep: idle timeout, lifetime, min_pool_size, reserve pool, stale waiters.
    fn maintain(self: &Rc<Self>) {
        let s = self.global.settings_arc();
        let now = Instant::now();
        let mut closed = 0;
        {
            let mut idle = self.idle.borrow_mut();
            let keep_min = self.min_size();
            let mut i = 0;
            while i < idle.len() {
                let len = idle.len();
                let c = &mut idle[i];
                let expired =
                    s.idle_timeout.is_some_and(|t| now - c.last_used >= t) && len > keep_min;
                let old = s.lifetime.is_some_and(|l| c.created.elapsed() >= l);
                let stale = c.generation != self.global.generation();
                if expired || old || stale || !c.is_healthy_idle() {
                    idle.remove(i);
                    closed += 1;
                } else {
                    i += 1;
                }
            }
        }
        if closed > 0 {
            debug!(self.log, "closed idle server connections"; "count" => closed);
            self.publish_counts();
        }
        // Keep min_pool_size warm.
        let want = self.min_size();
        let have = self.idle.borrow().len() + self.active.get() + self.connecting.get();
        if !self.shared.is_shutting_down() {
            for _ in have..want {
                let Some(token) = BudgetToken::take(&self.global, s.size) else {
                    break;
                };
                self.spawn_connect(token);
            }
        }
        if !self.waiters.borrow().is_empty() {
            self.grow();
        }
    }

    /// A health check on a connection of this pool: an idle one (its idle clock untouched,
    /// so checks never keep a connection from server_idle_timeout), or a new one within the
    /// budget when the pool has none. When every connection is busy the server is evidently up.
    pub async fn probe(self: &Rc<Self>, timeout: Duration) -> CheckOutcome {
        let mut conn = match self.pop_idle() {
            Some(c) => {
                self.publish_counts();
                c
            }
            None => {
                // Connections in use and none idle: the server is evidently up. No connection
                // at all: open one (within the budget; it then serves clients too).
                if self.active.get() > 0 || self.connecting.get() > 0 {
                    return CheckOutcome::Busy;
                }
                let s = self.global.settings_arc();
                let Some(token) = BudgetToken::take(&self.global, s.size) else {
                    return CheckOutcome::Busy;
                };
                let connect = ServerConn::connect(
                    &s.target,
                    &self.shared,
                    Some(timeout),
                    self.global.generation(),
                );
                match connect.await {
                    Ok(mut c) => {
                        c.budget = Some(token);
                        self.global.remember_server_params(&c.login_params);
                        c
                    }
                    // No way to log in (pass-through before any client, a refused
                    // password): nothing is known about the server, and it is not its fault.
                    Err(e) if e.is_credentials_problem() => {
                        debug!(self.log, "health check skipped"; "reason" => %e);
                        return CheckOutcome::Busy;
                    }
                    Err(e) => {
                        return CheckOutcome::Failed(BanReason::HealthCheckFailed(e.to_string()))
                    }
                }
            }
        };
        match tokio::time::timeout(timeout, conn.query_row(HEALTH_QUERY)).await {
            Ok(Ok(row)) => {
                let (in_recovery, lag) = parse_health_row(&row);
                self.release(conn);
                CheckOutcome::Up { in_recovery, lag }
            }
            Ok(Err(e)) => CheckOutcome::Failed(BanReason::HealthCheckFailed(e.to_string())),
            Err(_) => CheckOutcome::Failed(BanReason::HealthCheckTimeout(timeout)),
        }
    }

    /// Closes every idle connection (shutdown).
    pub fn close_idle(&self) {
        self.idle.borrow_mut().clear();
        self.publish_counts();
    }
}

impl PoolGlobal {
    /// Whether idle counts must be published after a pop (only when other arbiters read them).
    pub fn set_idle_needed(&self) -> bool {
        self.workers() > 1
    }
}

/// The actor that owns a shard's timers and cross-arbiter hand-overs.
pub struct PoolActor {
    pub shard: Rc<PoolShard>,
}

impl Actor for PoolActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        *self.shard.addr.borrow_mut() = Some(ctx.address());
        self.shard
            .global
            .register_shard(self.shard.worker, ctx.address());
        ctx.run_interval(Duration::from_millis(250), |act, _| act.shard.maintain());
        ctx.spawn(actix::fut::wrap_future(self.shard.clone().expire_waiters()));
    }
}

impl Supervised for PoolActor {
    fn restarting(&mut self, _ctx: &mut Context<Self>) {
        self.shard.restarts.set(self.shard.restarts.get() + 1);
        info!(self.shard.log, "pool actor restarting; idle connections and waiters are kept";
            "idle" => self.shard.idle_count(), "waiting" => self.shard.waiting_count());
    }
}

/// A detached server connection, sent between arbiters.
pub struct SendConn(pub TransferableConn);

/// "Take this connection" (from another arbiter).
#[derive(Message)]
#[rtype(result = "()")]
pub struct Adopt(pub SendConn);

impl Handler<Adopt> for PoolActor {
    type Result = ();
    fn handle(&mut self, msg: Adopt, _: &mut Context<Self>) {
        match msg.0 .0.adopt() {
            Ok(conn) => {
                debug!(self.shard.log, "server connection adopted from another arbiter";
                    "server" => conn.id, "tls" => conn.tls.is_some());
                self.shard.release(conn)
            }
            Err(e) => warn!(self.shard.log, "could not adopt a server connection"; "error" => %e),
        }
    }
}

/// "Hand an idle connection to `to` if you can spare one."
#[derive(Message)]
#[rtype(result = "()")]
pub struct Donate {
    pub to: Addr<PoolActor>,
}

impl Handler<Donate> for PoolActor {
    type Result = ();
    fn handle(&mut self, msg: Donate, _: &mut Context<Self>) {
        let shard = &self.shard;
        if !shard.waiters.borrow().is_empty() {
            return;
        }
        if let Some(conn) = shard.pop_idle() {
            shard.publish_counts();
            if let Ok(t) = conn.into_transferable() {
                msg.to.do_send(Adopt(SendConn(t)));
            }
        }
    }
}

/// Stop the actor; its supervisor restarts it with the shard (idle connections, waiters)
/// intact and the timers re-armed.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Restart;

impl Handler<Restart> for PoolActor {
    type Result = ();
    fn handle(&mut self, _: Restart, ctx: &mut Context<Self>) {
        ctx.stop();
    }
}

impl Handler<Probe> for PoolActor {
    type Result = ResponseFuture<CheckOutcome>;
    fn handle(&mut self, msg: Probe, _: &mut Context<Self>) -> Self::Result {
        let shard = self.shard.clone();
        Box::pin(async move { shard.probe(msg.timeout).await })
    }
}

/// Close idle connections now (shutdown).
#[derive(Message)]
#[rtype(result = "()")]
pub struct CloseIdle;

impl Handler<CloseIdle> for PoolActor {
    type Result = ();
    fn handle(&mut self, _: CloseIdle, _: &mut Context<Self>) {
        self.shard.close_idle();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shared::Loaded;
    use crate::worker::Worker;

    /// A config whose only server accepts TCP and never answers, so a connection being
    /// opened stays pending and a waiter keeps waiting.
    async fn shard_in_front_of_a_black_hole() -> (Rc<PoolShard>, tokio::net::TcpListener) {
        shard_in_front_of_a_black_hole_waiting("0s").await
    }

    /// The same, with `query_wait_timeout` set ("0s": none).
    async fn shard_in_front_of_a_black_hole_waiting(
        query_wait_timeout: &str,
    ) -> (Rc<PoolShard>, tokio::net::TcpListener) {
        let hole = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = hole.local_addr().unwrap().port();
        let toml = format!(
            "[general]\nauth_type = \"trust\"\nworkers = 1\n[users.u]\n[pools.p]\n\
             server_connect_timeout = \"0s\"\nquery_wait_timeout = \"{query_wait_timeout}\"\n\
             servers = [{{ host = \"127.0.0.1\", port = {port} }}]\n"
        );
        let config = pgcorral::config::load_str(&toml, &Default::default()).unwrap();
        let log = Logger::root(slog::Discard, slog::o!());
        let shared = Shared::new(
            Loaded::new(config).unwrap(),
            crate::tls::TlsConfigs::disabled(),
            log,
            None,
        );
        let worker = Worker::install(0, shared);
        let pool = worker.pool("p", "u").unwrap();
        (pool.clusters[0].members[0].shard.clone(), hole)
    }

    /// A connected socket dressed up as an idle, logged-in server connection.
    async fn fake_server_conn(shard: &PoolShard) -> (Box<ServerConn>, tokio::net::TcpStream) {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let (client, server) = tokio::join!(tokio::net::TcpStream::connect(addr), l.accept());
        let conn = ServerConn::for_tests(client.unwrap(), addr, shard.global.generation());
        (conn, server.unwrap().0)
    }

    async fn until(what: &str, f: impl Fn() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(5);
        while !f() {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    #[test]
    fn each_waiter_times_out_at_its_own_deadline_from_the_one_shard_timer() {
        actix_rt::System::new().block_on(async {
            let (shard, _hole) = shard_in_front_of_a_black_hole_waiting("400ms").await;
            let started = Instant::now();
            let first = shard.clone();
            let first = actix_rt::spawn(async move {
                let r = first.checkout().await;
                (
                    matches!(r, Err(CheckoutError::WaitTimeout(_))),
                    Instant::now(),
                )
            });
            until("the first waiter is queued", || shard.waiting_count() == 1).await;
            tokio::time::sleep(Duration::from_millis(200)).await;
            let second = shard.clone();
            let second = actix_rt::spawn(async move { second.checkout().await.is_ok() });
            until("the second waiter is queued", || shard.waiting_count() == 2).await;

            let (timed_out, at) = first.await.unwrap();
            let waited = at - started;
            assert!(timed_out, "the first waiter failed with WaitTimeout");
            assert!(
                waited >= Duration::from_millis(400) && waited < Duration::from_millis(1500),
                "the first waiter gave up after {waited:?}, not at its 400ms deadline"
            );
            // The second arrived 200ms later: its deadline has not come yet.
            assert_eq!(shard.waiting_count(), 1, "the second waiter still waits");
            let (conn, _peer) = fake_server_conn(&shard).await;
            shard.release(conn);
            assert!(
                second.await.unwrap(),
                "the second waiter got the connection"
            );
        });
    }

    #[test]
    fn a_restarted_pool_actor_keeps_its_idle_connections_and_waiters() {
        actix_rt::System::new().block_on(async {
            let (shard, _hole) = shard_in_front_of_a_black_hole().await;
            let addr = loop {
                if let Some(a) = shard.addr.borrow().clone() {
                    break a;
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            };
            // A client waits: the only server never answers, so it waits on.
            let waiting = shard.clone();
            let waiter = actix_rt::spawn(async move { waiting.checkout().await.is_ok() });
            until("the waiter is queued", || shard.waiting_count() == 1).await;

            addr.do_send(Restart);
            until("the supervisor restarted the actor", || {
                shard.restarts.get() == 1
            })
            .await;
            assert_eq!(shard.waiting_count(), 1, "the waiter survived the restart");

            // A connection returned now goes to that waiter.
            let (conn, _peer) = fake_server_conn(&shard).await;
            shard.release(conn);
            assert!(waiter.await.unwrap(), "the waiter got the connection");

            // An idle connection survives a restart too, and the timers run again after it.
            let (conn, _peer2) = fake_server_conn(&shard).await;
            shard.release(conn);
            assert_eq!(shard.idle_count(), 1);
            let addr = shard.addr.borrow().clone().unwrap();
            addr.do_send(Restart);
            until("the second restart", || shard.restarts.get() == 2).await;
            assert_eq!(
                shard.idle_count(),
                1,
                "the idle connection survived the restart"
            );
            assert!(shard.addr.borrow().is_some());
        });
    }
}
