//! RELOAD and SIGHUP: read the configuration again, validate it first (a bad file changes
//! nothing), and apply it without dropping clients:
//!
//! - users and passwords (also auth_file and auth_hba_file, read again): for new logins; secrets
//!   fetched with auth_query are forgotten and fetched again;
//! - pools added or removed: for new logins (clients of a removed pool carry on);
//! - settings of a pool whose servers are the same (sizes, timeouts, mode…): at once, for every
//!   client; a changed server target (database, user, password) closes the open connections
//!   when they are released, never under a running transaction;
//! - a pool whose shards or servers changed (addresses, roles): retired; new logins get the
//!   new layout, the old pool's connections close when released;
//! - TLS certificates, keys, CAs and sslmodes: for new connections (TLS sessions already
//!   established keep theirs); when the server side changed, open server connections are
//!   replaced as they are released (as RECONNECT); a file that cannot be used fails the
//!   reload like a bad config;
//! - keys that need a restart (listen, workers, metrics_listen, listen_backlog) are reported.

use std::sync::Arc;

use pgcorral::config::{self, Config};
use slog::{error, info, warn};

use crate::budget::PoolSettings;
use crate::shared::{Loaded, Shared, UserAuth};
use crate::tls::TlsConfigs;
use crate::worker::Worker;

/// Reloads the configuration. Ok holds notes for the operator (restart-only changes).
pub async fn reload(shared: &Arc<Shared>) -> Result<Vec<String>, String> {
    reload_with(shared, None).await
}

/// RELOAD with one more override (`SET` on the console): it is kept only if the result is
/// valid.
pub async fn reload_with(
    shared: &Arc<Shared>,
    extra: Option<(String, String)>,
) -> Result<Vec<String>, String> {
    let path = shared.config_path.clone();
    let mut overrides = shared
        .overrides
        .lock()
        .map(|o| o.clone())
        .unwrap_or_default();
    if let Some((k, v)) = &extra {
        overrides.insert(k.clone(), v.clone());
    }
    // Reading the files and deriving SCRAM verifiers (PBKDF2) stay off the arbiter threads.
    let loaded = tokio::task::spawn_blocking(move || -> Result<(Loaded, TlsConfigs), String> {
        let mut env = config::process_env();
        env.extend(overrides);
        let config = match &path {
            Some(p) => config::load_file(p, &env),
            None => config::load_str(config::EMBEDDED_DEFAULT, &env),
        }
        .map_err(|e| e.to_string())?;
        let tls = TlsConfigs::load(&config.general).map_err(|e| e.to_string())?;
        Ok((Loaded::new(config)?, tls))
    })
    .await
    .map_err(|e| format!("reload did not finish: {e}"))?;
    let (loaded, tls) = match loaded {
        Ok(l) => l,
        Err(e) => {
            error!(shared.log, "reload failed; the configuration is unchanged"; "error" => &e);
            return Err(e);
        }
    };
    if let (Some((k, v)), Ok(mut o)) = (extra, shared.overrides.lock()) {
        o.insert(k, v);
    }
    let notes = restart_only(&shared.loaded().config, &loaded.config);
    for n in &notes {
        warn!(shared.log, "reload: {}", n);
    }
    let server_tls_changed = shared.tls.load().server_fingerprint != tls.server_fingerprint;
    shared.tls.store(Arc::new(tls));
    if server_tls_changed {
        // Connections opened under the old TLS settings close as they are released.
        let pools = shared.reconnect(None);
        info!(shared.log, "server TLS settings changed: server connections are replaced as they are released";
            "pools" => pools);
    }
    let retired = shared.apply(loaded, |global, pool, user, shard, server, loaded| {
        let cfg = loaded.config.pool(pool)?;
        let auth = match loaded.users.get(user) {
            Some(a) => a.clone(),
            // A user auth_query fetched keeps its server secret until the next fetch.
            None if loaded.config.general.auth_user.is_some() => Arc::new(UserAuth::for_servers(
                user,
                global.settings().target.secret.clone(),
            )),
            None => return None,
        };
        let s = cfg.shards.get(shard)?.servers.get(server)?;
        let same_server = s.host == global.server.host
            && s.port == global.server.port
            && s.role == global.server.configured
            && cfg.shards.len() == global.shard_count;
        same_server.then(|| PoolSettings::new(cfg, &loaded.config, &auth, shard, server))
    });
    // Secrets fetched with auth_query are fetched again (auth_user or the query may have
    // changed).
    shared.auth_query.clear();
    // Every arbiter forgets the retired pools before RELOAD answers, so the next checkout of
    // any client already sees the new layout.
    let mut done = Vec::new();
    for handle in shared
        .worker_threads
        .get()
        .map(Vec::as_slice)
        .unwrap_or_default()
    {
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let retired = retired.clone();
        if handle.spawn(async move {
            if let Some(w) = Worker::current() {
                for (pool, user) in &retired {
                    w.forget_pool(pool, user);
                }
            }
            let _ = tx.send(());
        }) {
            done.push(rx);
        }
    }
    for rx in done {
        let _ = rx.await;
    }
    info!(shared.log, "configuration reloaded"; "retired_pools" => retired.len(),
        "restart_needed" => notes.len());
    Ok(notes)
}

/// Changes that only a restart applies.
fn restart_only(old: &Config, new: &Config) -> Vec<String> {
    let (o, n) = (&old.general, &new.general);
    let mut notes = Vec::new();
    let mut check = |key: &str, a: String, b: String| {
        if a != b {
            notes.push(format!(
                "general.{key} changed from {a} to {b}: it takes effect after a restart"
            ));
        }
    };
    check("listen", o.listen.to_string(), n.listen.to_string());
    check("workers", o.workers.to_string(), n.workers.to_string());
    check(
        "listen_backlog",
        o.listen_backlog.to_string(),
        n.listen_backlog.to_string(),
    );
    check(
        "metrics_listen",
        format!("{:?}", o.metrics_listen),
        format!("{:?}", n.metrics_listen),
    );
    notes
}
