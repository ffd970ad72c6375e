//! HealthCheckActor: checks every server in use, every `healthcheck_interval`:
//! `pg_is_in_recovery()` (the role of `auto` servers, and a primary found in recovery) and the
//! replica's replay lag, within `healthcheck_timeout`. The check runs on a connection of the
//! server's pool (asked of a PoolActor with `Probe`), so PostgreSQL never sees more than
//! `pool_size` connections. Results go to the BalancerActor, which bans, unbans and records
//! roles.

use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;

use crate::balancer::{BalancerActor, CheckOutcome, Checked};
use crate::server_state::{BanReason, ServerState};

/// The health query: recovery state, and replay lag while WAL is pending (0 otherwise).
pub const HEALTH_QUERY: &str = "SELECT pg_is_in_recovery()::text, \
     CASE WHEN pg_is_in_recovery() AND pg_last_wal_receive_lsn() IS DISTINCT FROM pg_last_wal_replay_lsn() \
     THEN COALESCE(EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp()), 0) ELSE 0 END::text";

/// How to check one server.
#[derive(Debug, Clone)]
pub struct CheckSettings {
    pub interval: Duration,
    pub timeout: Duration,
    pub ban_time: Duration,
    pub max_replica_lag: Option<Duration>,
}

/// Run one health check on a pooled connection of the server (sent to a PoolActor).
#[derive(Message)]
#[rtype(result = "CheckOutcome")]
pub struct Probe {
    pub timeout: Duration,
}

/// Reads the health query's row: in recovery, and replay lag.
pub fn parse_health_row(row: &[Option<String>]) -> (bool, Duration) {
    let in_recovery = row.first().and_then(|v| v.as_deref()) == Some("true");
    let lag = row
        .get(1)
        .and_then(|v| v.as_deref())
        .and_then(|v| v.parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s >= 0.0)
        .map(Duration::from_secs_f64)
        .unwrap_or_default();
    (in_recovery, lag)
}

struct Watched {
    state: Arc<ServerState>,
    probe: Recipient<Probe>,
    settings: CheckSettings,
    next: Instant,
    running: bool,
}

pub struct HealthCheckActor {
    pub balancer: Addr<BalancerActor>,
    watched: Vec<Watched>,
}

impl HealthCheckActor {
    pub fn new(balancer: Addr<BalancerActor>) -> Self {
        HealthCheckActor {
            balancer,
            watched: Vec::new(),
        }
    }

    fn run_due(&mut self, ctx: &mut Context<Self>) {
        let now = Instant::now();
        for i in 0..self.watched.len() {
            let w = &mut self.watched[i];
            if w.running || w.next > now {
                continue;
            }
            w.running = true;
            let timeout = w.settings.timeout;
            let asked = w.probe.send(Probe { timeout });
            let fut = async move {
                // The pool enforces the timeout; this one covers a pool that does not answer.
                match tokio::time::timeout(timeout + Duration::from_millis(500), asked).await {
                    Ok(Ok(outcome)) => Some(outcome),
                    Ok(Err(_)) => None, // the pool actor is gone (restarting): try next time
                    Err(_) => Some(CheckOutcome::Failed(BanReason::HealthCheckTimeout(timeout))),
                }
            };
            ctx.spawn(fut.into_actor(self).map(move |outcome, act, _| {
                let w = &mut act.watched[i];
                w.running = false;
                w.next = Instant::now() + w.settings.interval;
                if let Some(outcome) = outcome {
                    act.balancer.do_send(Checked {
                        server: w.state.clone(),
                        outcome,
                        ban_time: w.settings.ban_time,
                        max_replica_lag: w.settings.max_replica_lag,
                    });
                }
            }));
        }
    }
}

impl Actor for HealthCheckActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.run_interval(Duration::from_millis(50), |act, ctx| act.run_due(ctx));
    }
}

/// Start checking a server through `probe` (first check at once). A server already watched
/// keeps its first probe.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Watch {
    pub state: Arc<ServerState>,
    pub probe: Recipient<Probe>,
    pub settings: CheckSettings,
}

impl Handler<Watch> for HealthCheckActor {
    type Result = ();
    fn handle(&mut self, msg: Watch, ctx: &mut Context<Self>) {
        if self
            .watched
            .iter()
            .any(|w| Arc::ptr_eq(&w.state, &msg.state))
        {
            return;
        }
        self.watched.push(Watched {
            state: msg.state,
            probe: msg.probe,
            settings: msg.settings,
            next: Instant::now(),
            running: false,
        });
        self.run_due(ctx);
    }
}
