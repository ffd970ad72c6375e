//! Salvage: a client left while its server connection was busy (in a transaction, running a
//! query, in COPY). Instead of closing the connection, cancel what runs, fail a COPY IN,
//! drain to ReadyForQuery, ROLLBACK, reset if the pool mode wants it, and return it to the
//! pool. Anything unexpected, or slower than the deadline, closes it.

use std::rc::Rc;
use std::time::Duration;

use bytes::BytesMut;
use pgcorral::protocol::builder;
use pgcorral::protocol::tag::frontend as fe;
use slog::{debug, info, warn, Logger};

use crate::cancel::{send_cancel, CancelTarget};
use crate::error::ServerError;
use crate::pool::PoolShard;
use crate::server::ServerConn;

/// How long a salvage may take before the connection is closed instead.
pub const SALVAGE_TIMEOUT: Duration = Duration::from_secs(10);

/// Salvages `server` in the background and returns it to `shard` (or closes it). A server
/// that was idle only needs its reset (session mode): that is not counted as a salvage.
pub fn salvage(
    shard: Rc<PoolShard>,
    mut server: Box<ServerConn>,
    reset: Option<String>,
    log: Logger,
) {
    let busy = !server.exchange.is_idle();
    actix_rt::spawn(async move {
        let id = server.id;
        let result = tokio::time::timeout(SALVAGE_TIMEOUT, repair(&mut server, reset.as_deref()))
            .await
            .unwrap_or(Err(ServerError::SalvageTimeout(SALVAGE_TIMEOUT)));
        match result {
            Ok(()) => {
                if busy {
                    info!(log, "salvaged server connection"; "server" => id);
                    shard.count_salvage(true);
                } else {
                    debug!(log, "server connection reset"; "server" => id);
                }
                shard.checkin(server);
            }
            Err(e) => {
                warn!(log, "could not salvage server connection; closing it"; "server" => id, "error" => %e);
                if busy {
                    shard.count_salvage(false);
                }
                shard.discard(server, true);
            }
        }
    });
}

async fn repair(server: &mut ServerConn, reset: Option<&str>) -> Result<(), ServerError> {
    let plan = server.exchange.salvage_plan();
    if plan.cancel {
        let target = CancelTarget {
            addr: server.addr,
            pid: server.key.0,
            secret: server.key.1,
        };
        send_cancel(target).await?;
    }
    let mut out = BytesMut::new();
    if plan.copy_fail {
        builder::copy_fail(&mut out, "client disconnected");
        server.exchange.frontend(fe::COPY_FAIL);
    }
    if plan.sync {
        builder::sync(&mut out);
        server.exchange.frontend(fe::SYNC);
    }
    if !out.is_empty() {
        server.stream.send(&out).await?;
    }
    match server.drain().await {
        // The interrupted work ends in an error (canceled, COPY failed): expected.
        Ok(()) | Err(ServerError::Query(_)) => {}
        Err(e) => return Err(e),
    }
    if !server.tx_idle() {
        server.run_quiet("ROLLBACK").await?;
    }
    if !server.prepared.pipeline.is_empty() {
        // Replies about prepared statements were drained unread: which ones the server has
        // is unknown, so it is made to have none (drain sees DEALLOCATE ALL complete).
        server.prepared.pipeline.clear();
        server.run_quiet("DEALLOCATE ALL").await?;
    }
    if let Some(q) = reset {
        server.run_quiet(q).await?;
        server.params = (*server.login_params).clone();
    }
    if server.exchange.is_idle() {
        Ok(())
    } else {
        Err(ServerError::Closed)
    }
}
