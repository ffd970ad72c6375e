//! BalancerActor: the one writer of server bans and detected roles. Clients, pools and the
//! health checker report what they saw; it bans (for `ban_time`), unbans (when the ban time
//! has passed and a health check passes, or at once when a lagging replica caught up), and
//! logs every change with its reason. Readers see the result through atomics in
//! `ServerState`, never through a message.

use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use slog::{info, warn, Logger};

use crate::server_state::{BanReason, Role, ServerState};

pub struct BalancerActor {
    pub log: Logger,
}

impl Actor for BalancerActor {
    type Context = Context<Self>;
}

/// Ban a server for `ban_time`.
#[derive(Message)]
#[rtype(result = "()")]
pub struct BanServer {
    pub server: Arc<ServerState>,
    pub reason: BanReason,
    pub ban_time: Duration,
}

impl Handler<BanServer> for BalancerActor {
    type Result = ();
    fn handle(&mut self, msg: BanServer, _: &mut Context<Self>) {
        let s = &msg.server;
        let reason = msg.reason.to_string();
        if s.set_ban(msg.reason, msg.ban_time) {
            warn!(self.log, "server banned"; "server" => s.addr(), "role" => s.role().as_str(),
                "reason" => reason, "ban_time" => ?msg.ban_time);
        }
    }
}

/// Lift a ban now (admin UNBAN).
#[derive(Message)]
#[rtype(result = "()")]
pub struct UnbanServer {
    pub server: Arc<ServerState>,
}

impl Handler<UnbanServer> for BalancerActor {
    type Result = ();
    fn handle(&mut self, msg: UnbanServer, _: &mut Context<Self>) {
        if let Some(ban) = msg.server.clear_ban() {
            let banned_for = ban.at.elapsed().unwrap_or_default();
            info!(self.log, "server unbanned"; "server" => msg.server.addr(),
                "was" => ban.reason.to_string(), "banned_for" => ?banned_for);
        }
    }
}

/// A server's recovery state seen when a connection to it opened (role `auto`).
#[derive(Message)]
#[rtype(result = "()")]
pub struct RoleSeen {
    pub server: Arc<ServerState>,
    pub in_recovery: bool,
}

impl Handler<RoleSeen> for BalancerActor {
    type Result = ();
    fn handle(&mut self, msg: RoleSeen, _: &mut Context<Self>) {
        self.record_role(&msg.server, msg.in_recovery);
    }
}

impl BalancerActor {
    fn record_role(&self, s: &ServerState, in_recovery: bool) {
        let role = if in_recovery {
            Role::Replica
        } else {
            Role::Primary
        };
        let before = s.set_detected(role);
        if before != role {
            info!(self.log, "server role detected"; "server" => s.addr(), "role" => role.as_str(),
                "was" => before.as_str());
        }
    }
}

/// What a health check found.
#[derive(Debug, Clone)]
pub enum CheckOutcome {
    Up {
        in_recovery: bool,
        lag: Duration,
    },
    /// Every connection of the pool is in use: the server is up, nothing more is known.
    Busy,
    Failed(BanReason),
}

/// A health check result for one server.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Checked {
    pub server: Arc<ServerState>,
    pub outcome: CheckOutcome,
    pub ban_time: Duration,
    pub max_replica_lag: Option<Duration>,
}

impl Handler<Checked> for BalancerActor {
    type Result = ();
    fn handle(&mut self, msg: Checked, ctx: &mut Context<Self>) {
        let s = &msg.server;
        match msg.outcome {
            CheckOutcome::Up { in_recovery, lag } => {
                self.record_role(s, in_recovery);
                let lagging = msg.max_replica_lag.filter(|&max| in_recovery && lag > max);
                if let Some(max) = lagging {
                    self.handle(
                        BanServer {
                            server: s.clone(),
                            reason: BanReason::ReplicaLag { lag, max },
                            ban_time: msg.ban_time,
                        },
                        ctx,
                    );
                    return;
                }
                if let Some(ban) = s.ban_info() {
                    let caught_up = matches!(ban.reason, BanReason::ReplicaLag { .. });
                    if caught_up || Instant::now() >= ban.until {
                        s.clear_ban();
                        let banned_for = ban.at.elapsed().unwrap_or_default();
                        info!(self.log, "server unbanned: health check passed";
                            "server" => s.addr(), "was" => ban.reason.to_string(), "banned_for" => ?banned_for);
                    }
                }
            }
            CheckOutcome::Busy => {}
            CheckOutcome::Failed(reason) => {
                if s.configured == pgcorral::config::ServerRole::Auto
                    && s.set_detected(Role::Unknown) != Role::Unknown
                {
                    info!(self.log, "server role unknown until it answers again"; "server" => s.addr());
                }
                self.handle(
                    BanServer {
                        server: s.clone(),
                        reason,
                        ban_time: msg.ban_time,
                    },
                    ctx,
                );
            }
        }
    }
}
