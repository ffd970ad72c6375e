//! Prometheus metrics at `http://<metrics_listen>/metrics` (actix-web, one worker of its
//! own). Every scrape collects the per-arbiter counters through arbiter handles; nothing on
//! the transaction path locks or sends a message for metrics.

use pgcorral::session::state::PinReason;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::SystemTime;

use actix_web::{web, App, HttpResponse, HttpServer};
use pgcorral::stats::Exposition;

use crate::shared::Shared;
use crate::snapshot::{collect, merged_pools, PoolSnap};

/// Reads one value of a pool's snapshot.
type PoolValue = fn(&PoolSnap) -> f64;

/// Binds the metrics listener (an error stops the daemon at start) and serves it.
pub fn start(shared: Arc<Shared>, addr: SocketAddr) -> std::io::Result<()> {
    let data = web::Data::new(shared);
    let server = HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .route("/metrics", web::get().to(scrape))
    })
    .workers(1)
    .disable_signals()
    .shutdown_timeout(1)
    .bind(addr)?
    .run();
    actix_rt::spawn(server);
    Ok(())
}

async fn scrape(shared: web::Data<Arc<Shared>>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(render(&shared).await)
}

/// The metrics page.
pub async fn render(shared: &Shared) -> String {
    let snaps = collect(shared).await;
    let pools = merged_pools(&snaps);
    let mut e = Exposition::new();
    let per_pool = |p: &PoolSnap| [("database", p.database.clone()), ("user", p.user.clone())];

    e.family(
        "pgcorral_clients",
        "gauge",
        "Logged-in clients by state: active (holding a server connection), waiting (for one), idle.",
    );
    for p in &pools {
        let l = per_pool(p);
        let idle = p.clients.saturating_sub(p.linked + p.waiting);
        for (state, n) in [("active", p.linked), ("waiting", p.waiting), ("idle", idle)] {
            e.sample(
                "pgcorral_clients",
                &labels(&l, &[("state", state)]),
                n as f64,
            );
        }
    }
    e.family(
        "pgcorral_servers",
        "gauge",
        "Server connections by state: active (checked out), idle, login (being opened).",
    );
    for p in &pools {
        let l = per_pool(p);
        for (state, n) in [("active", p.active), ("idle", p.idle), ("login", p.login)] {
            e.sample(
                "pgcorral_servers",
                &labels(&l, &[("state", state)]),
                n as f64,
            );
        }
    }
    let counters: [(&str, &str, PoolValue); 6] = [
        (
            "pgcorral_transactions_total",
            "Transactions completed.",
            |p| p.traffic.xact_count as f64,
        ),
        (
            "pgcorral_queries_total",
            "Requests answered (Query or Sync).",
            |p| p.traffic.query_count as f64,
        ),
        (
            "pgcorral_received_bytes_total",
            "Bytes received from clients.",
            |p| p.traffic.bytes_received as f64,
        ),
        ("pgcorral_sent_bytes_total", "Bytes sent to clients.", |p| {
            p.traffic.bytes_sent as f64
        }),
        (
            "pgcorral_salvaged_connections_total",
            "Server connections salvaged after their client left mid-work.",
            |p| p.salvaged as f64,
        ),
        (
            "pgcorral_salvage_failures_total",
            "Server connections closed because salvaging them failed.",
            |p| p.salvage_failed as f64,
        ),
    ];
    for (name, help, get) in counters {
        e.family(name, "counter", help);
        for p in &pools {
            e.sample(name, &labels(&per_pool(p), &[]), get(p));
        }
    }
    e.family(
        "pgcorral_transaction_duration_seconds",
        "histogram",
        "Transaction time, first request to idle.",
    );
    for p in &pools {
        e.histogram(
            "pgcorral_transaction_duration_seconds",
            &labels(&per_pool(p), &[]),
            &p.xact_hist,
        );
    }
    e.family(
        "pgcorral_client_wait_seconds",
        "histogram",
        "Time clients waited for a server connection.",
    );
    for p in &pools {
        e.histogram(
            "pgcorral_client_wait_seconds",
            &labels(&per_pool(p), &[]),
            &p.wait_hist,
        );
    }
    e.family(
        "pgcorral_server_errors_total",
        "counter",
        "Server ErrorResponses passed to clients, by SQLSTATE class.",
    );
    for p in &pools {
        for (class, n) in &p.errors {
            e.sample(
                "pgcorral_server_errors_total",
                &labels(&per_pool(p), &[("class", class)]),
                *n as f64,
            );
        }
    }

    e.family(
        "pgcorral_pinned_clients",
        "gauge",
        "Clients whose server connection is pinned to them by session state.",
    );
    for p in &pools {
        e.sample(
            "pgcorral_pinned_clients",
            &labels(&per_pool(p), &[]),
            p.pinned_now as f64,
        );
    }
    e.family(
        "pgcorral_parked_clients",
        "gauge",
        "Idle clients parked: no task of their own until they send something.",
    );
    for p in &pools {
        e.sample(
            "pgcorral_parked_clients",
            &labels(&per_pool(p), &[]),
            p.parked_now as f64,
        );
    }
    e.family(
        "pgcorral_pins_total",
        "counter",
        "Times a server connection was pinned to its client, by reason.",
    );
    for p in &pools {
        for (reason, n) in PinReason::ALL.iter().zip(&p.pins) {
            e.sample(
                "pgcorral_pins_total",
                &labels(&per_pool(p), &[("reason", reason.as_str())]),
                *n as f64,
            );
        }
    }
    e.family(
        "pgcorral_prepared_statements_total",
        "counter",
        "Named prepared statement work in transaction pooling: client Parses, Parses sent to \
         servers, Binds, and evictions (max_prepared_statements).",
    );
    for p in &pools {
        let c = &p.prepared;
        for (kind, n) in [
            ("client_parse", c.client_parses),
            ("server_parse", c.server_parses),
            ("bind", c.binds),
            ("eviction", c.evictions),
        ] {
            e.sample(
                "pgcorral_prepared_statements_total",
                &labels(&per_pool(p), &[("kind", kind)]),
                n as f64,
            );
        }
    }

    let open = shared.open_by_server();
    let servers = shared.server_states();
    let server_families: [(&str, &str, &str); 4] = [
        (
            "pgcorral_server_up",
            "gauge",
            "1 when the server takes traffic, 0 while it is banned.",
        ),
        (
            "pgcorral_server_banned",
            "gauge",
            "1 while the server is banned.",
        ),
        (
            "pgcorral_bans_total",
            "counter",
            "Bans of the server so far.",
        ),
        (
            "pgcorral_server_connections",
            "gauge",
            "Server connections open to the server, all pools.",
        ),
    ];
    for (name, kind, help) in server_families {
        e.family(name, kind, help);
        for s in &servers {
            let port = s.port.to_string();
            let l = [
                ("host", s.host.as_str()),
                ("port", port.as_str()),
                ("role", s.role().as_str()),
            ];
            let banned = s.is_banned();
            let value = match name {
                "pgcorral_server_up" => f64::from(u8::from(!banned)),
                "pgcorral_server_banned" => f64::from(u8::from(banned)),
                "pgcorral_bans_total" => s.bans_total.load(Ordering::Relaxed) as f64,
                _ => open.get(&(s.host.clone(), s.port)).copied().unwrap_or(0) as f64,
            };
            e.sample(name, &l, value);
        }
    }

    e.family(
        "pgcorral_client_connections",
        "gauge",
        "Client connections open (all states, console included).",
    );
    e.sample(
        "pgcorral_client_connections",
        &[],
        shared.clients.load(Ordering::Relaxed) as f64,
    );
    process_metrics(&mut e, shared);
    e.finish()
}

fn labels<'a>(
    base: &'a [(&'a str, String); 2],
    extra: &[(&'a str, &'a str)],
) -> Vec<(&'a str, &'a str)> {
    base.iter()
        .map(|(k, v)| (*k, v.as_str()))
        .chain(extra.iter().copied())
        .collect()
}

/// Process basics from /proc (memory-backed: a few microseconds).
fn process_metrics(e: &mut Exposition, shared: &Shared) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let rss_kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0.0);
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which may contain spaces): utime is the 12th, stime the 13th.
    let ticks: f64 = stat
        .rsplit_once(") ")
        .map(|(_, rest)| {
            let f: Vec<&str> = rest.split_whitespace().collect();
            let get = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
            get(11) + get(12)
        })
        .unwrap_or(0.0);
    let fds = std::fs::read_dir("/proc/self/fd")
        .map(|d| d.count())
        .unwrap_or(0);
    let start = SystemTime::now() - shared.started.elapsed();
    let start = start
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0);
    for (name, kind, help, value) in [
        (
            "pgcorral_process_resident_memory_bytes",
            "gauge",
            "Resident memory.",
            rss_kb * 1024.0,
        ),
        (
            "pgcorral_process_cpu_seconds_total",
            "counter",
            "User and system CPU time.",
            ticks / 100.0,
        ),
        (
            "pgcorral_process_open_fds",
            "gauge",
            "Open file descriptors.",
            fds as f64,
        ),
        (
            "pgcorral_process_start_time_seconds",
            "gauge",
            "Start time, seconds since the Unix epoch.",
            start,
        ),
    ] {
        e.family(name, kind, help);
        e.sample(name, &[], value);
    }
}
