//! What the admin console shows, collected from every arbiter when asked (the per-arbiter
//! counters live in `Cell`s; nothing on the transaction path locks or sends a message).

use pgcorral::session::prepared::PreparedCounts;
use pgcorral::session::state::PinReason;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime};

use pgcorral::stats::HistogramSnap;

use crate::shared::Shared;
use crate::worker::Worker;

/// Traffic totals (SHOW STATS).
#[derive(Debug, Clone, Copy, Default)]
pub struct TrafficSnap {
    pub xact_count: u64,
    pub query_count: u64,
    pub bytes_received: u64,
    pub bytes_sent: u64,
    pub xact_time_us: u64,
    pub query_time_us: u64,
    pub wait_time_us: u64,
}

impl TrafficSnap {
    /// What happened between `earlier` and `self`.
    pub fn since(&self, earlier: &TrafficSnap) -> TrafficSnap {
        TrafficSnap {
            xact_count: self.xact_count.saturating_sub(earlier.xact_count),
            query_count: self.query_count.saturating_sub(earlier.query_count),
            bytes_received: self.bytes_received.saturating_sub(earlier.bytes_received),
            bytes_sent: self.bytes_sent.saturating_sub(earlier.bytes_sent),
            xact_time_us: self.xact_time_us.saturating_sub(earlier.xact_time_us),
            query_time_us: self.query_time_us.saturating_sub(earlier.query_time_us),
            wait_time_us: self.wait_time_us.saturating_sub(earlier.wait_time_us),
        }
    }

    pub fn add(&mut self, o: &TrafficSnap) {
        self.xact_count += o.xact_count;
        self.query_count += o.query_count;
        self.bytes_received += o.bytes_received;
        self.bytes_sent += o.bytes_sent;
        self.xact_time_us += o.xact_time_us;
        self.query_time_us += o.query_time_us;
        self.wait_time_us += o.wait_time_us;
    }
}

/// One (database, user) pool on one arbiter, or merged.
#[derive(Debug, Clone, Default)]
pub struct PoolSnap {
    pub database: String,
    pub user: String,
    pub mode: &'static str,
    pub clients: usize,
    pub waiting: usize,
    pub active: usize,
    pub idle: usize,
    pub login: usize,
    pub max_wait: Duration,
    pub servers: usize,
    pub shards: usize,
    pub traffic: TrafficSnap,
    /// Clients holding a server connection now.
    pub linked: usize,
    pub xact_hist: HistogramSnap,
    pub wait_hist: HistogramSnap,
    pub errors: BTreeMap<String, u64>,
    /// Clients whose server connection is pinned to them now.
    pub pinned_now: usize,
    /// Idle clients parked now (no actor of their own).
    pub parked_now: usize,
    /// Times a server connection was pinned, by reason (PinReason::ALL order).
    pub pins: [u64; PinReason::ALL.len()],
    pub prepared: PreparedCounts,
    pub salvaged: u64,
    pub salvage_failed: u64,
}

/// A client or a server connection, as SHOW CLIENTS / SHOW SERVERS print them.
#[derive(Debug, Clone)]
pub struct ConnRow {
    pub id: u64,
    pub user: String,
    pub database: String,
    pub state: &'static str,
    pub addr: SocketAddr,
    pub local: Option<SocketAddr>,
    pub connect_time: SystemTime,
    pub request_time: SystemTime,
    pub wait: Duration,
    pub link: Option<u64>,
    pub remote_pid: i32,
    /// TLS version and suite (None: plain).
    pub tls: Option<pgcorral::tls::TlsSummary>,
    pub application_name: String,
}

/// One arbiter's view.
#[derive(Debug, Clone, Default)]
pub struct WorkerSnapshot {
    pub pools: Vec<PoolSnap>,
    pub clients: Vec<ConnRow>,
    pub servers: Vec<ConnRow>,
}

fn system_time(at: Instant) -> SystemTime {
    SystemTime::now() - at.elapsed()
}

impl Worker {
    /// This arbiter's pools, clients and servers, now.
    pub fn snapshot(&self) -> WorkerSnapshot {
        let mut snap = WorkerSnapshot::default();
        let clients = self.logged_in();
        for ((database, user), shards) in self.pools_by_name() {
            let mut p = PoolSnap {
                mode: shards.clusters[0].settings().mode.as_str(),
                shards: shards.clusters.len(),
                clients: clients
                    .iter()
                    .filter(|c| *c.database == *database && *c.user == *user)
                    .count(),
                pinned_now: clients
                    .iter()
                    .filter(|c| *c.database == *database && *c.user == *user && c.pinned.get())
                    .count(),
                parked_now: clients
                    .iter()
                    .filter(|c| {
                        *c.database == *database && *c.user == *user && c.parked.get().is_some()
                    })
                    .count(),
                linked: clients
                    .iter()
                    .filter(|c| {
                        *c.database == *database && *c.user == *user && c.server_link().is_some()
                    })
                    .count(),
                database: database.clone(),
                user: user.clone(),
                ..Default::default()
            };
            for cluster in &shards.clusters {
                for m in &cluster.members {
                    let s = &m.shard;
                    p.servers += 1;
                    p.waiting += s.waiting_count();
                    p.active += s.active_count();
                    p.idle += s.idle_count();
                    p.login += s.connecting_count();
                    p.max_wait = p.max_wait.max(s.max_wait());
                    let t = &s.traffic;
                    p.xact_hist.add(&t.xact_hist.snapshot());
                    p.wait_hist.add(&t.wait_hist.snapshot());
                    for (class, n) in t.errors.borrow().iter() {
                        *p.errors.entry(class.clone()).or_default() += n;
                    }
                    for (total, n) in p.pins.iter_mut().zip(&t.pins) {
                        *total += n.get();
                    }
                    p.prepared.add(&t.prepared.get());
                    let stats = s.stats.get();
                    p.salvaged += stats.salvaged;
                    p.salvage_failed += stats.salvage_failed;
                    p.traffic.add(&TrafficSnap {
                        xact_count: t.xact_count.get(),
                        query_count: t.query_count.get(),
                        bytes_received: t.bytes_received.get(),
                        bytes_sent: t.bytes_sent.get(),
                        xact_time_us: t.xact_time_us.get(),
                        query_time_us: t.query_time_us.get(),
                        wait_time_us: t.wait_time_us.get(),
                    });
                    for (id, pid, created, last_used, tls) in s.idle_connections() {
                        snap.servers.push(ConnRow {
                            id,
                            user: user.clone(),
                            database: database.clone(),
                            state: "idle",
                            addr: std::net::SocketAddr::new(
                                m.state
                                    .host
                                    .parse()
                                    .unwrap_or(std::net::Ipv4Addr::UNSPECIFIED.into()),
                                m.state.port,
                            ),
                            local: None,
                            connect_time: system_time(created),
                            request_time: system_time(last_used),
                            wait: Duration::ZERO,
                            link: None,
                            remote_pid: pid,
                            tls,
                            application_name: String::new(),
                        });
                    }
                }
            }
            snap.pools.push(p);
        }
        for c in &clients {
            let waited = c
                .waiting_since
                .get()
                .map(|s| s.elapsed())
                .unwrap_or_default();
            let link = c.server_link();
            snap.clients.push(ConnRow {
                id: c.id,
                user: c.user.to_string(),
                database: c.database.to_string(),
                state: c.state.get().as_str(),
                addr: c.addr,
                local: c.local,
                connect_time: c.connect_time,
                request_time: system_time(c.request_time.get()),
                wait: waited,
                link: link.as_ref().map(|l| l.id),
                remote_pid: c.cancel_pid,
                tls: c.tls,
                application_name: c.application_name.clone(),
            });
            if let Some(l) = link {
                snap.servers.push(ConnRow {
                    id: l.id,
                    user: c.user.to_string(),
                    database: c.database.to_string(),
                    state: "active",
                    addr: l.addr,
                    local: l.local,
                    connect_time: system_time(l.created),
                    request_time: system_time(c.request_time.get()),
                    wait: Duration::ZERO,
                    link: Some(c.id),
                    remote_pid: l.pid,
                    tls: l.tls,
                    application_name: c.application_name.clone(),
                });
            }
        }
        snap
    }
}

/// Snapshots of every arbiter (asked on each arbiter's own thread).
pub async fn collect(shared: &Shared) -> Vec<WorkerSnapshot> {
    let mut waiting = Vec::new();
    for handle in shared
        .worker_threads
        .get()
        .map(Vec::as_slice)
        .unwrap_or_default()
    {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let sent = handle.spawn(async move {
            let snap = Worker::current().map(|w| w.snapshot()).unwrap_or_default();
            let _ = tx.send(snap);
        });
        if sent {
            waiting.push(rx);
        }
    }
    let mut out = Vec::new();
    for rx in waiting {
        if let Ok(Ok(s)) = tokio::time::timeout(Duration::from_secs(5), rx).await {
            out.push(s);
        }
    }
    out
}

/// Pools summed over arbiters, by (database, user).
pub fn merged_pools(snaps: &[WorkerSnapshot]) -> Vec<PoolSnap> {
    let mut by: BTreeMap<(String, String), PoolSnap> = BTreeMap::new();
    for p in snaps.iter().flat_map(|s| &s.pools) {
        let e = by
            .entry((p.database.clone(), p.user.clone()))
            .or_insert_with(|| PoolSnap {
                database: p.database.clone(),
                user: p.user.clone(),
                mode: p.mode,
                servers: p.servers,
                shards: p.shards,
                ..Default::default()
            });
        e.clients += p.clients;
        e.waiting += p.waiting;
        e.active += p.active;
        e.idle += p.idle;
        e.login += p.login;
        e.max_wait = e.max_wait.max(p.max_wait);
        e.traffic.add(&p.traffic);
        e.linked += p.linked;
        e.xact_hist.add(&p.xact_hist);
        e.wait_hist.add(&p.wait_hist);
        for (class, n) in &p.errors {
            *e.errors.entry(class.clone()).or_default() += n;
        }
        e.pinned_now += p.pinned_now;
        e.parked_now += p.parked_now;
        for (total, n) in e.pins.iter_mut().zip(&p.pins) {
            *total += n;
        }
        e.prepared.add(&p.prepared);
        e.salvaged += p.salvaged;
        e.salvage_failed += p.salvage_failed;
    }
    by.into_values().collect()
}

/// PgBouncer's time format: "2026-11-25 00:33:59 UTC".
pub fn fmt_time(t: SystemTime) -> String {
    let secs = t
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// Traffic per database (summed over users).
pub fn by_database(pools: &[PoolSnap]) -> BTreeMap<String, TrafficSnap> {
    let mut by: BTreeMap<String, TrafficSnap> = BTreeMap::new();
    for p in pools {
        by.entry(p.database.clone()).or_default().add(&p.traffic);
    }
    by
}

/// How often SHOW STATS averages are computed (PgBouncer's default stats_period).
pub const STATS_PERIOD: Duration = Duration::from_secs(60);

/// Samples the totals every stats period and keeps the last period's traffic for averages.
pub async fn run_stats_period(shared: std::sync::Arc<Shared>) {
    let mut previous: Option<(Instant, BTreeMap<String, TrafficSnap>)> = None;
    let mut tick = tokio::time::interval(STATS_PERIOD);
    loop {
        tick.tick().await;
        let now = Instant::now();
        let totals = by_database(&merged_pools(&collect(&shared).await));
        if let Some((at, before)) = &previous {
            let period: BTreeMap<String, TrafficSnap> = totals
                .iter()
                .map(|(db, t)| {
                    (
                        db.clone(),
                        t.since(&before.get(db).copied().unwrap_or_default()),
                    )
                })
                .collect();
            if let Ok(mut p) = shared.stats_period.lock() {
                *p = Some(((now - *at).as_secs_f64(), period));
            }
        }
        previous = Some((now, totals));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_times_like_pgbouncer() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_912_439);
        assert_eq!(fmt_time(t), "2026-11-29 00:33:59 UTC");
        assert_eq!(fmt_time(SystemTime::UNIX_EPOCH), "1970-01-01 00:00:00 UTC");
    }
}
