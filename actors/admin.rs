//! The admin console: the database `pgcorral` (alias `pgbouncer`) for `admin_users` (all
//! commands) and `stats_users` (SHOW only), over the simple query protocol, answering with
//! PgBouncer's columns so psql and PgBouncer tooling read it.

use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use pgcorral::admin::columns as col;
use pgcorral::admin::command::HELP;
use pgcorral::admin::result::v;
use pgcorral::admin::{parse_command, AdminCommand, ResultSet, ShowWhat};
use pgcorral::protocol::tag::frontend as fe;
use pgcorral::protocol::{builder, MessageCodec};
use slog::{info, warn, Logger};

use crate::balancer::{BanServer, UnbanServer};
use crate::client_stream::ClientStream;
use crate::error::ClientError;
use crate::framed::read_frame;
use crate::server_state::BanReason;
use crate::shared::Shared;
use crate::snapshot::{
    by_database, collect, fmt_time, merged_pools, ConnRow, PoolSnap, TrafficSnap,
};

/// Console queries are short.
const ADMIN_MESSAGE_MAX: usize = 1 << 20;

/// Who is on the console.
#[derive(Debug, Clone)]
pub struct AdminUser {
    pub name: String,
    /// In admin_users (else stats_users: SHOW only).
    pub admin: bool,
}

/// Serves one console connection until the client leaves.
pub async fn serve(
    stream: &mut ClientStream,
    buf: &mut BytesMut,
    shared: &Arc<Shared>,
    user: AdminUser,
    log: &Logger,
    shutdown: &tokio::sync::Notify,
) -> Result<(), ClientError> {
    let mut codec = MessageCodec::new(ADMIN_MESSAGE_MAX);
    loop {
        if shared.is_shutting_down() {
            return Err(ClientError::ShuttingDown);
        }
        // An idle console session is closed at shutdown like any idle client.
        let m = tokio::select! {
            m = read_frame::<_, ClientError>(stream, buf, &mut codec, 512) => m?,
            _ = shutdown.notified() => return Err(ClientError::ShuttingDown),
        };
        let mut out = BytesMut::new();
        match m.tag {
            fe::TERMINATE => return Ok(()),
            fe::QUERY => {
                let body = &m.body[..m.body.len().saturating_sub(1)];
                let sql = String::from_utf8_lossy(body);
                run(&sql, shared, &user, log, &mut out).await;
            }
            fe::SYNC => {}
            _ => builder::error_response(
                &mut out,
                "ERROR",
                "08P01",
                "the admin console speaks the simple query protocol only",
            ),
        }
        if m.tag == fe::QUERY || m.tag == fe::SYNC {
            builder::ready_for_query(&mut out, b'I');
        }
        stream.send(&out).await?;
    }
}

/// Runs one console command, writing its answer (or error) to `out`.
async fn run(sql: &str, shared: &Arc<Shared>, user: &AdminUser, log: &Logger, out: &mut BytesMut) {
    if sql.trim().is_empty() {
        builder::empty_query_response(out);
        return;
    }
    let cmd = match parse_command(sql) {
        Ok(c) => c,
        Err(e) => return builder::error_response(out, "ERROR", "08P01", &e.to_string()),
    };
    // Checked against the config as it is now, at every command: a RELOAD that takes a user
    // out of admin_users or stats_users takes effect on its open console sessions too.
    let general = shared.general();
    let admin = user.admin && general.admin_users.contains(&user.name);
    let stats = admin || general.stats_users.contains(&user.name);
    if !stats {
        return builder::error_response(
            out,
            "ERROR",
            "42501",
            &format!(
                "\"{}\" is no longer in admin_users or stats_users",
                user.name
            ),
        );
    }
    if !admin && !cmd.read_only() {
        return builder::error_response(
            out,
            "ERROR",
            "42501",
            &format!(
                "admin access needed: \"{}\" is a stats user (SHOW only)",
                user.name
            ),
        );
    }
    match cmd {
        AdminCommand::Show(what) => show(what, shared, out).await,
        AdminCommand::Pause(db) => {
            info!(log, "PAUSE"; "database" => db.as_deref().unwrap_or("(all)"), "by" => &user.name);
            shared.pause.pause(db.as_deref());
            // PAUSE returns once no server connection of the paused pools is in use.
            loop {
                let snaps = collect(shared).await;
                let busy: usize = merged_pools(&snaps)
                    .iter()
                    .filter(|p| db.as_deref().is_none_or(|d| d == p.database))
                    .map(|p| p.active)
                    .sum();
                if busy == 0 {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            builder::command_complete(out, "PAUSE");
        }
        AdminCommand::Resume(db) => {
            info!(log, "RESUME"; "database" => db.as_deref().unwrap_or("(all)"), "by" => &user.name);
            shared.pause.resume(db.as_deref());
            builder::command_complete(out, "RESUME");
        }
        AdminCommand::Shutdown => {
            warn!(log, "SHUTDOWN requested on the admin console"; "by" => &user.name);
            shared.shutdown_request.notify_one();
            builder::command_complete(out, "SHUTDOWN");
        }
        AdminCommand::Ban { server, seconds } => match find_server(shared, &server) {
            Some(state) => {
                let ban_time = Duration::from_secs(seconds.unwrap_or(60));
                // Answer once the ban is in place, so a SHOW BANS that follows sees it.
                if let Some(b) = shared.balancer.get() {
                    let ban = BanServer {
                        server: state,
                        reason: BanReason::Admin(user.name.clone()),
                        ban_time,
                    };
                    let _ = b.send(ban).await;
                }
                builder::command_complete(out, "BAN");
            }
            None => unknown_server(out, &server),
        },
        AdminCommand::Unban { server } => match find_server(shared, &server) {
            Some(state) => {
                if let Some(b) = shared.balancer.get() {
                    let _ = b.send(UnbanServer { server: state }).await;
                }
                builder::command_complete(out, "UNBAN");
            }
            None => unknown_server(out, &server),
        },
        AdminCommand::Reload => {
            info!(log, "RELOAD"; "by" => &user.name);
            match crate::reload::reload(shared).await {
                Ok(notes) => {
                    for n in notes {
                        builder::notice_response(out, "WARNING", "01000", &n);
                    }
                    builder::command_complete(out, "RELOAD");
                }
                Err(e) => builder::error_response(
                    out,
                    "ERROR",
                    "F0000",
                    &format!("reload failed; the configuration is unchanged:\n{e}"),
                ),
            }
        }
        AdminCommand::Reconnect(db) => {
            let n = shared.reconnect(db.as_deref());
            info!(log, "RECONNECT"; "database" => db.as_deref().unwrap_or("(all)"), "pools" => n, "by" => &user.name);
            builder::command_complete(out, "RECONNECT");
        }
        AdminCommand::Disable(db) | AdminCommand::Enable(db)
            if config_pool(shared, &db).is_none() =>
        {
            unknown_database(out, &db)
        }
        AdminCommand::Disable(db) => {
            info!(log, "DISABLE"; "database" => &db, "by" => &user.name);
            if let Ok(mut d) = shared.disabled.lock() {
                d.insert(db);
            }
            builder::command_complete(out, "DISABLE");
        }
        AdminCommand::Enable(db) => {
            info!(log, "ENABLE"; "database" => &db, "by" => &user.name);
            if let Ok(mut d) = shared.disabled.lock() {
                d.remove(&db);
            }
            builder::command_complete(out, "ENABLE");
        }
        AdminCommand::Kill(db) if config_pool(shared, &db).is_none() => unknown_database(out, &db),
        AdminCommand::Kill(db) => {
            // As PgBouncer: new clients of a killed database wait until RESUME.
            shared.pause.pause(Some(&db));
            let mut killed = 0;
            for handle in shared
                .worker_threads
                .get()
                .map(Vec::as_slice)
                .unwrap_or_default()
            {
                let (tx, rx) = tokio::sync::oneshot::channel();
                let db = db.clone();
                if handle.spawn(async move {
                    let n = crate::worker::Worker::current().map_or(0, |w| w.kill_database(&db));
                    let _ = tx.send(n);
                }) {
                    killed += rx.await.unwrap_or(0);
                }
            }
            shared.reconnect(Some(&db));
            warn!(log, "KILL"; "database" => &db, "clients" => killed, "by" => &user.name);
            builder::command_complete(out, "KILL");
        }
        AdminCommand::Set { key, value } => {
            let Some(var) = override_var(&key) else {
                return builder::error_response(
                    out,
                    "ERROR",
                    "55P02",
                    &format!("{key} cannot be changed at runtime: edit the configuration file and restart"),
                );
            };
            let shown = if holds_secret(&key) {
                "(hidden)"
            } else {
                value.as_str()
            };
            info!(log, "SET"; "key" => &key, "value" => shown, "by" => &user.name);
            match crate::reload::reload_with(shared, Some((var, value))).await {
                Ok(_) => builder::command_complete(out, "SET"),
                Err(e) => builder::error_response(
                    out,
                    "ERROR",
                    "22023",
                    &format!("SET {key} failed; nothing changed:\n{e}"),
                ),
            }
        }
    }
}

fn config_pool(shared: &Shared, db: &str) -> Option<()> {
    shared.loaded().config.pool(db).map(|_| ())
}

fn unknown_database(out: &mut BytesMut, db: &str) {
    builder::error_response(
        out,
        "ERROR",
        "3D000",
        &format!("no such database: \"{db}\""),
    );
}

/// Settings that need a restart; SET refuses them.
const RESTART_ONLY: &[&str] = &["listen", "workers", "listen_backlog", "metrics_listen"];

/// Keys whose values are never logged (`users.NAME.password`, `server_password`).
fn holds_secret(key: &str) -> bool {
    key.rsplit('.')
        .next()
        .is_some_and(|last| last.to_ascii_lowercase().contains("password"))
}

/// The `PGCORRAL_…` override for a SET key: `max_client_conn` (a [general] key),
/// `pool_size` (a pool key: [defaults]), or a path such as `pools.app.pool_size`. None for
/// keys that need a restart.
fn override_var(key: &str) -> Option<String> {
    const GENERAL: &[&str] = &[
        "max_client_conn",
        "max_db_connections",
        "max_user_connections",
        "tcp_keepalive",
        "tcp_keepidle",
        "tcp_keepintvl",
        "tcp_keepcnt",
        "tcp_user_timeout",
        "admin_users",
        "stats_users",
        "shutdown_timeout",
        "client_login_timeout",
        "auth_type",
        "log_level",
        "max_message_size",
    ];
    let key = key.strip_prefix("general.").unwrap_or(key);
    if RESTART_ONLY.contains(&key) {
        return None;
    }
    let path = if key.contains('.') {
        key.to_owned()
    } else if GENERAL.contains(&key) {
        format!("general.{key}")
    } else {
        format!("defaults.{key}")
    };
    Some(format!(
        "PGCORRAL_{}",
        path.replace('.', "__").to_ascii_uppercase()
    ))
}

fn unknown_server(out: &mut BytesMut, server: &str) {
    builder::error_response(
        out,
        "ERROR",
        "22023",
        &format!("no server {server} in any pool in use (expected host:port)"),
    );
}

fn find_server(shared: &Shared, addr: &str) -> Option<Arc<crate::server_state::ServerState>> {
    let (host, port) = addr.rsplit_once(':')?;
    let port: u16 = port.parse().ok()?;
    shared
        .server_states()
        .into_iter()
        .find(|s| s.host == host && s.port == port)
}

fn yes_no(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "no"
    }
}

async fn show(what: ShowWhat, shared: &Arc<Shared>, out: &mut BytesMut) {
    let loaded = shared.loaded();
    let config = &loaded.config;
    let rs = match what {
        ShowWhat::Help => {
            builder::notice_response(
                out,
                "NOTICE",
                "00000",
                &format!("Console usage\n\t{}", HELP.join("\n\t")),
            );
            builder::command_complete(out, "SHOW");
            return;
        }
        ShowWhat::Version => {
            let mut rs = ResultSet::new(col::VERSION);
            rs.push(vec![v(format!("pgcorral {}", env!("CARGO_PKG_VERSION")))]);
            rs
        }
        ShowWhat::State => {
            let mut rs = ResultSet::new(col::STATE);
            rs.push(vec![v("active"), v(yes_no(!shared.pause.all_paused()))]);
            rs.push(vec![v("paused"), v(yes_no(shared.pause.all_paused()))]);
            rs.push(vec![v("suspended"), v("no")]);
            rs.push(vec![
                v("shutting_down"),
                v(yes_no(shared.is_shutting_down())),
            ]);
            rs
        }
        ShowWhat::Users => {
            // [users] and auth_file.
            let mut rs = ResultSet::new(col::USERS);
            let mut users: Vec<_> = loaded.users.values().map(|u| &u.user).collect();
            users.sort_by(|a, b| a.name.cmp(&b.name));
            for u in users {
                rs.push(vec![
                    v(&u.name),
                    Some(u.pool_mode.map(|m| m.as_str()).unwrap_or("").to_owned()),
                ]);
            }
            rs
        }
        ShowWhat::Config => {
            let g = &config.general;
            let d = pgcorral::config::General::default();
            let dur =
                |x: Option<Duration>| x.map(|t| format!("{t:?}")).unwrap_or_else(|| "0s".into());
            let rows: Vec<(&str, String, String)> = vec![
                ("listen", g.listen.to_string(), d.listen.to_string()),
                (
                    "workers",
                    g.workers_configured.to_string(),
                    d.workers_configured.to_string(),
                ),
                (
                    "max_client_conn",
                    g.max_client_conn.to_string(),
                    d.max_client_conn.to_string(),
                ),
                (
                    "max_db_connections",
                    g.max_db_connections.to_string(),
                    d.max_db_connections.to_string(),
                ),
                (
                    "max_user_connections",
                    g.max_user_connections.to_string(),
                    d.max_user_connections.to_string(),
                ),
                (
                    "listen_backlog",
                    g.listen_backlog.to_string(),
                    d.listen_backlog.to_string(),
                ),
                (
                    "tcp_keepalive",
                    g.tcp_keepalive.to_string(),
                    d.tcp_keepalive.to_string(),
                ),
                (
                    "admin_users",
                    g.admin_users.join(","),
                    d.admin_users.join(","),
                ),
                (
                    "stats_users",
                    g.stats_users.join(","),
                    d.stats_users.join(","),
                ),
                (
                    "auth_type",
                    g.auth_type.as_str().to_owned(),
                    d.auth_type.as_str().to_owned(),
                ),
                (
                    "shutdown_timeout",
                    format!("{:?}", g.shutdown_timeout),
                    format!("{:?}", d.shutdown_timeout),
                ),
                (
                    "client_login_timeout",
                    dur(g.client_login_timeout),
                    dur(d.client_login_timeout),
                ),
                (
                    "log_level",
                    g.log_level.as_str().to_owned(),
                    d.log_level.as_str().to_owned(),
                ),
                (
                    "max_message_size",
                    g.max_message_size.to_string(),
                    d.max_message_size.to_string(),
                ),
            ];
            let mut rs = ResultSet::new(col::CONFIG);
            for (k, val, def) in rows {
                rs.push(vec![v(k), v(val), v(def), v("no")]);
            }
            rs
        }
        ShowWhat::Databases => {
            let open = shared.open_by_database();
            let mut rs = ResultSet::new(col::DATABASES);
            for (name, p) in &config.pools {
                let first = &p.shards[0].servers[0];
                let paused = shared.pause.is_paused(name);
                rs.push(vec![
                    v(name),
                    v(&first.host),
                    v(first.port),
                    v(&p.database),
                    v(""),
                    v(p.pool_size),
                    v(p.min_pool_size),
                    v(p.reserve_pool_size),
                    v(p.pool_mode.as_str()),
                    v(config.general.max_db_connections),
                    v(open.get(&p.database).copied().unwrap_or(0)),
                    v(u8::from(paused)),
                    v(0),
                    v(p.shards.len()),
                    v(p.shards.iter().map(|s| s.servers.len()).sum::<usize>()),
                ]);
            }
            rs
        }
        ShowWhat::Bans => {
            let mut rs = ResultSet::new(col::BANS);
            for (database, user, s) in shared.servers_by_pool() {
                if let Some(ban) = s.ban_info() {
                    let remaining = ban
                        .until
                        .saturating_duration_since(std::time::Instant::now());
                    rs.push(vec![
                        v(database),
                        v(user),
                        v(&s.host),
                        v(s.port),
                        v(s.role().as_str()),
                        v(ban.reason.to_string()),
                        v(fmt_time(ban.at)),
                        v(remaining.as_secs()),
                    ]);
                }
            }
            rs
        }
        ShowWhat::Pools
        | ShowWhat::Clients
        | ShowWhat::Servers
        | ShowWhat::Lists
        | ShowWhat::Stats
        | ShowWhat::StatsTotals
        | ShowWhat::StatsAverages
        | ShowWhat::PreparedStatements
        | ShowWhat::Pins => {
            let snaps = collect(shared).await;
            let pools = merged_pools(&snaps);
            match what {
                ShowWhat::Pools => pools_result(&pools),
                ShowWhat::Clients => conn_result("C", snaps.iter().flat_map(|s| &s.clients)),
                ShowWhat::Servers => conn_result("S", snaps.iter().flat_map(|s| &s.servers)),
                ShowWhat::Lists => {
                    let clients: usize = snaps.iter().map(|s| s.clients.len()).sum();
                    let servers: usize = snaps.iter().map(|s| s.servers.len()).sum();
                    let login: usize = pools.iter().map(|p| p.login).sum();
                    let mut rs = ResultSet::new(col::LISTS);
                    for (k, n) in [
                        ("databases", config.pools.len()),
                        ("users", config.users.len()),
                        ("pools", pools.len()),
                        ("free_clients", 0),
                        ("used_clients", clients),
                        ("login_clients", 0),
                        ("free_servers", 0),
                        ("used_servers", servers + login),
                        ("dns_names", 0),
                        ("dns_zones", 0),
                        ("dns_queries", 0),
                        ("dns_pending", 0),
                    ] {
                        rs.push(vec![v(k), v(n)]);
                    }
                    rs
                }
                ShowWhat::PreparedStatements => {
                    let mut rs = ResultSet::new(col::PREPARED_STATEMENTS);
                    for p in &pools {
                        let c = &p.prepared;
                        rs.push(vec![
                            v(&p.database),
                            v(&p.user),
                            v(c.client_parses),
                            v(c.server_parses),
                            v(c.binds),
                            v(c.evictions),
                        ]);
                    }
                    rs
                }
                ShowWhat::Pins => {
                    let mut rs = ResultSet::new(col::PINS);
                    for p in &pools {
                        let mut row = vec![v(&p.database), v(&p.user), v(p.pinned_now)];
                        row.extend(p.pins.iter().map(v));
                        rs.push(row);
                    }
                    rs
                }
                _ => stats_result(what, &pools, shared),
            }
        }
    };
    rs.render(out);
}

fn pools_result(pools: &[PoolSnap]) -> ResultSet {
    let mut rs = ResultSet::new(col::POOLS);
    for p in pools {
        rs.push(vec![
            v(&p.database),
            v(&p.user),
            v(p.clients.saturating_sub(p.waiting)),
            v(p.waiting),
            v(0),
            v(0),
            v(p.active),
            v(0),
            v(0),
            v(p.idle),
            v(0),
            v(0),
            v(p.login),
            v(p.max_wait.as_secs()),
            v(p.max_wait.subsec_micros()),
            v(p.mode),
            v(p.servers),
            v(p.shards),
        ]);
    }
    rs
}

fn conn_result<'a>(kind: &str, rows: impl Iterator<Item = &'a ConnRow>) -> ResultSet {
    let mut rs = ResultSet::new(col::CLIENTS);
    for r in rows {
        rs.push(vec![
            v(kind),
            v(&r.user),
            v(&r.database),
            v(r.state),
            v(r.addr.ip()),
            v(r.addr.port()),
            r.local.map(|l| l.ip().to_string()),
            r.local.map(|l| l.port().to_string()),
            v(fmt_time(r.connect_time)),
            v(fmt_time(r.request_time)),
            v(r.wait.as_secs()),
            v(r.wait.subsec_micros()),
            v(0),
            v(format!("0x{:x}", r.id)),
            Some(r.link.map(|l| format!("0x{l:x}")).unwrap_or_default()),
            v(r.remote_pid),
            Some(r.tls.map(|t| t.to_string()).unwrap_or_default()),
            v(&r.application_name),
            v(r.id),
        ]);
    }
    rs
}

/// SHOW STATS / STATS_TOTALS / STATS_AVERAGES, per database (summed over users). Averages
/// are over the last completed stats period (60 s; over the uptime until one has passed):
/// per second for counts and bytes, per transaction or query for times.
fn stats_result(what: ShowWhat, pools: &[PoolSnap], shared: &Shared) -> ResultSet {
    let by = by_database(pools);
    let period = shared.stats_period.lock().ok().and_then(|p| p.clone());
    let per = |total: u64, n: u64| total.checked_div(n).unwrap_or(0);
    let averages = |db: &str, total: &TrafficSnap| {
        let (secs, t) = match &period {
            Some((secs, by_db)) => (*secs, by_db.get(db).copied().unwrap_or_default()),
            None => (shared.started.elapsed().as_secs_f64(), *total),
        };
        let rate = |n: u64| (n as f64 / secs.max(1.0)) as u64;
        [
            rate(t.xact_count),
            rate(t.query_count),
            rate(t.bytes_received),
            rate(t.bytes_sent),
            per(t.xact_time_us, t.xact_count),
            per(t.query_time_us, t.query_count),
            per(t.wait_time_us, t.xact_count),
        ]
    };
    let totals = |t: &TrafficSnap| {
        [
            t.xact_count,
            t.query_count,
            t.bytes_received,
            t.bytes_sent,
            t.xact_time_us,
            t.query_time_us,
            t.wait_time_us,
        ]
    };
    let columns = match what {
        ShowWhat::Stats => col::STATS,
        ShowWhat::StatsTotals => col::STATS_TOTALS,
        _ => col::STATS_AVERAGES,
    };
    let mut rs = ResultSet::new(columns);
    for (db, t) in &by {
        let mut row = vec![v(db)];
        match what {
            ShowWhat::Stats => {
                row.extend(totals(t).iter().map(v));
                row.extend(averages(db, t).iter().map(v));
            }
            ShowWhat::StatsTotals => row.extend(totals(t).iter().map(v)),
            _ => row.extend(averages(db, t).iter().map(v)),
        }
        rs.push(row);
    }
    rs
}

#[cfg(test)]
mod tests {
    use super::holds_secret;

    #[test]
    fn password_keys_are_not_logged() {
        assert!(holds_secret("users.app.password"));
        assert!(holds_secret("users.app.server_password"));
        assert!(holds_secret("users.app.PASSWORD"));
        assert!(!holds_secret("pool_size"));
        assert!(!holds_secret("users.password.pool_size"));
    }
}
