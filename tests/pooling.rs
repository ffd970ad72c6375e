//! Pooling behaviour end to end: pgbench through transaction mode with more clients than
//! connections, session-mode reset, statement mode, and session parameters following clients.

mod common;

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::clients::{pgbench, pgbench_failed, pgbench_tps};
use common::raw::RawClient;
use common::stack::{Stack, StackConfig};
use common::wait::wait_until_async;

/// Runs pgbench and records the most server connections PostgreSQL saw meanwhile.
fn pgbench_watching(stack: &Stack, args: &[&str]) -> (common::clients::CmdOutput, i64) {
    let stop = Arc::new(AtomicBool::new(false));
    let max = Arc::new(AtomicI64::new(0));
    let out = std::thread::scope(|s| {
        let (stop2, max2) = (stop.clone(), max.clone());
        s.spawn(move || {
            while !stop2.load(Ordering::Relaxed) {
                max2.fetch_max(stack.server_connections("postgres"), Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(50));
            }
        });
        let out = pgbench(stack.port, "postgres", "postgres", None, args);
        stop.store(true, Ordering::Relaxed);
        out
    });
    (out, max.load(Ordering::Relaxed))
}

#[test]
fn pgbench_runs_50_clients_over_10_server_connections_in_transaction_mode() {
    let stack = Stack::start_with(StackConfig {
        pool: "pool_size = 10".into(),
        ..Default::default()
    });
    // pgbench -i goes through pgcorral too: DDL, COPY FROM STDIN, VACUUM.
    let init = pgbench(
        stack.port,
        "postgres",
        "postgres",
        None,
        &["-i", "-s", "1", "-q"],
    );
    assert!(
        init.success(),
        "pgbench -i failed: {}{}",
        init.stdout,
        init.stderr
    );
    for mode in ["simple", "extended"] {
        let (out, max) = pgbench_watching(
            &stack,
            &["-n", "-c", "50", "-j", "2", "-T", "4", "-M", mode],
        );
        assert!(
            out.success(),
            "pgbench -M {mode} failed: {}{}",
            out.stdout,
            out.stderr
        );
        assert_eq!(pgbench_failed(&out), Some(0), "-M {mode}: {}", out.stdout);
        assert!(
            pgbench_tps(&out).unwrap_or(0.0) > 0.0,
            "-M {mode}: {}",
            out.stdout
        );
        assert!(
            max <= 10,
            "-M {mode}: PostgreSQL saw {max} connections, pool_size is 10"
        );
        assert!(max > 0, "the sampler saw no server connection at all");
    }
}

#[tokio::test]
async fn session_mode_runs_the_reset_query_when_a_client_leaves() {
    let stack = Stack::start_with(StackConfig {
        pool: "pool_mode = \"session\"\npool_size = 1".into(),
        ..Default::default()
    });
    let mut a = RawClient::login(stack.port, "postgres", "postgres", &[]).await;
    let pid_a = a.value("SELECT pg_backend_pid()").await;
    a.query("SET work_mem = '7MB'").await.unwrap();
    assert_eq!(a.value("SHOW work_mem").await, "7MB");
    drop(a);
    let mut b = RawClient::login(stack.port, "postgres", "postgres", &[]).await;
    assert_eq!(
        b.value("SELECT pg_backend_pid()").await,
        pid_a,
        "server connection reused"
    );
    assert_eq!(
        b.value("SHOW work_mem").await,
        "4MB",
        "DISCARD ALL ran between clients"
    );
}

#[tokio::test]
async fn statement_mode_refuses_transaction_blocks() {
    let stack = Stack::start_with(StackConfig {
        pool: "pool_mode = \"statement\"".into(),
        ..Default::default()
    });
    let mut c = RawClient::login(stack.port, "postgres", "postgres", &[]).await;
    assert_eq!(c.value("SELECT 41 + 1").await, "42");
    let err = c.query("BEGIN").await.unwrap_err();
    assert!(
        err[&b'M'].contains("transaction blocks not allowed in statement pooling mode"),
        "{err:?}"
    );
    // The server is rolled back (after the client has its error, so wait for it) and no
    // server connection stays inside the refused transaction.
    let port = stack.port;
    wait_until_async(
        "no server connection left idle in transaction after the refused BEGIN",
        Duration::from_secs(10),
        || async move {
            let mut d = RawClient::login(port, "postgres", "postgres", &[]).await;
            d.value("SELECT count(*) FROM pg_stat_activity WHERE state = 'idle in transaction'")
                .await
                == "0"
        },
    )
    .await;
}

#[tokio::test]
async fn startup_parameters_follow_each_client_across_server_connections() {
    let stack = Stack::start_with(StackConfig {
        pool: "pool_size = 1".into(),
        ..Default::default()
    });
    let mut a = RawClient::login(
        stack.port,
        "postgres",
        "postgres",
        &[
            ("application_name", "client_a"),
            (
                "options",
                "-c search_path=pg_catalog --statement_timeout=5s",
            ),
            ("DateStyle", "German"),
        ],
    )
    .await;
    let mut b = RawClient::login(
        stack.port,
        "postgres",
        "postgres",
        &[("application_name", "client_b")],
    )
    .await;
    assert_eq!(
        a.params.get("application_name").map(String::as_str),
        Some("client_a")
    );
    for _ in 0..3 {
        // One server connection serves both clients in turn.
        assert_eq!(a.value("SHOW application_name").await, "client_a");
        assert_eq!(a.value("SHOW search_path").await, "pg_catalog");
        assert_eq!(a.value("SHOW statement_timeout").await, "5s");
        assert!(a.value("SHOW DateStyle").await.starts_with("German"));
        assert_eq!(b.value("SHOW application_name").await, "client_b");
        assert_eq!(b.value("SHOW search_path").await, "\"$user\", public");
        assert_eq!(b.value("SHOW statement_timeout").await, "0");
        assert!(b.value("SHOW DateStyle").await.starts_with("ISO"));
    }
    // A SET of a reported parameter sticks to its client in transaction mode.
    b.query("SET application_name = 'renamed_b'").await.unwrap();
    assert_eq!(a.value("SHOW application_name").await, "client_a");
    assert_eq!(b.value("SHOW application_name").await, "renamed_b");
    assert_eq!(stack.server_connections("postgres"), 1);
}

#[tokio::test]
async fn login_replays_the_server_parameters() {
    let stack = Stack::start();
    let c = RawClient::login(stack.port, "postgres", "postgres", &[]).await;
    for p in [
        "server_version",
        "server_encoding",
        "client_encoding",
        "DateStyle",
        "TimeZone",
        "integer_datetimes",
        "standard_conforming_strings",
        "application_name",
    ] {
        assert!(
            c.params.contains_key(p),
            "missing ParameterStatus {p}: {:?}",
            c.params
        );
    }
    assert!(c.params["server_version"].starts_with("15"));
    assert_ne!(c.key, (0, 0), "BackendKeyData was sent");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_connection_is_shared_by_clients_on_every_arbiter() {
    // workers = 2 and pool_size = 1: clients accepted on either arbiter take turns on the one
    // server connection, which moves between arbiters as they need it.
    let stack = Stack::start_with(StackConfig {
        pool: "pool_size = 1\nquery_wait_timeout = \"10s\"".into(),
        ..Default::default()
    });
    let port = stack.port;
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            tokio::spawn(async move {
                let mut c = RawClient::login(port, "postgres", "postgres", &[]).await;
                for j in 0..50 {
                    assert_eq!(
                        c.value(&format!("SELECT {i} * 1000 + {j}")).await,
                        (i * 1000 + j).to_string()
                    );
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(stack.server_connections("postgres"), 1);
    let log = stack.pooler.log();
    assert!(
        log.contains("worker: 0") && log.contains("worker: 1"),
        "two arbiters listened"
    );
}

#[tokio::test]
async fn reserve_pool_serves_a_client_that_waited_reserve_pool_timeout() {
    let stack = Stack::start_with(StackConfig {
        pool: "pool_size = 1\nreserve_pool_size = 1\nreserve_pool_timeout = \"200ms\"\nquery_wait_timeout = \"5s\"".into(),
        ..Default::default()
    });
    let mut holder = RawClient::login(stack.port, "postgres", "postgres", &[]).await;
    holder.query("BEGIN").await.unwrap();
    let mut late = RawClient::login(stack.port, "postgres", "postgres", &[]).await;
    let started = std::time::Instant::now();
    assert_eq!(late.value("SELECT 1").await, "1");
    assert!(
        started.elapsed() >= Duration::from_millis(150),
        "waited for reserve_pool_timeout first"
    );
    assert_eq!(stack.server_connections("postgres"), 2);
    holder.query("COMMIT").await.unwrap();
}
