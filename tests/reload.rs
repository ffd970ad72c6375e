//! RELOAD and SIGHUP: validated first (a bad file changes nothing), applied without dropping
//! clients: a pool resized under pgbench, pools added and removed, restart-only keys reported.

mod common;

use std::time::Duration;

use common::clients::{connect, pgbench, pgbench_failed};
use common::raw::RawClient;
use common::stack::{Stack, StackConfig};
use common::wait::wait_until;

fn console_stack(pool: &str) -> Stack {
    Stack::start_with(StackConfig {
        general: "auth_type = \"trust\"\nadmin_users = [\"admin\"]".into(),
        users: "[users.postgres]\n[users.admin]\n".into(),
        pool: pool.into(),
        ..Default::default()
    })
}

/// Runs a console command; the error text (SQLSTATE: message) on failure.
async fn console(port: u16, sql: &str) -> Result<Vec<tokio_postgres::SimpleQueryMessage>, String> {
    let (c, _d) = connect(port, "admin", "pgcorral", None)
        .await
        .map_err(|e| e.to_string())?;
    c.simple_query(sql).await.map_err(|e| {
        e.as_db_error()
            .map(|d| format!("{}: {}", d.code().code(), d.message()))
            .unwrap_or_else(|| e.to_string())
    })
}

fn rewrite(stack: &Stack, from: &str, to: &str) {
    let path = &stack.pooler.config_path;
    let text = std::fs::read_to_string(path).unwrap();
    assert!(text.contains(from), "{text}");
    std::fs::write(path, text.replace(from, to)).unwrap();
}

async fn pool_size(port: u16) -> String {
    let msgs = console(port, "SHOW DATABASES").await.unwrap();
    let mut cols = Vec::new();
    for m in msgs {
        match m {
            tokio_postgres::SimpleQueryMessage::RowDescription(c) => {
                cols = c.iter().map(|c| c.name().to_owned()).collect::<Vec<_>>()
            }
            tokio_postgres::SimpleQueryMessage::Row(r) if r.get(0) == Some("postgres") => {
                let i = cols.iter().position(|c| c == "pool_size").unwrap();
                return r.get(i).unwrap().to_owned();
            }
            _ => {}
        }
    }
    panic!("no postgres pool")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_resizes_a_pool_under_pgbench_without_client_errors() {
    let s = console_stack("pool_size = 2");
    common::clients::pgbench_init(s.port);
    let port = s.port;
    let run = std::thread::spawn(move || {
        pgbench(
            port,
            "postgres",
            "postgres",
            None,
            &["-n", "-S", "-c", "8", "-j", "2", "-T", "5"],
        )
    });
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(pool_size(port).await, "2");
    rewrite(&s, "pool_size = 2", "pool_size = 6");
    console(port, "RELOAD").await.unwrap();
    assert_eq!(pool_size(port).await, "6");
    wait_until(
        "more server connections after the resize",
        Duration::from_secs(10),
        || s.server_connections("postgres") > 2,
    );
    let out = run.join().unwrap();
    assert!(out.success(), "{}", out.stderr);
    assert_eq!(pgbench_failed(&out), Some(0), "{}", out.stdout);
    assert!(s.server_connections("postgres") <= 6);
}

#[tokio::test]
async fn a_bad_reload_changes_nothing() {
    let s = console_stack("pool_size = 3");
    let mut c = RawClient::login(s.port, "postgres", "postgres", &[]).await;
    rewrite(&s, "pool_size = 3", "pool_sise = 5");
    let err = console(s.port, "RELOAD").await.unwrap_err();
    assert!(err.starts_with("F0000"), "{err}");
    assert!(err.contains("pools.postgres.pool_sise"), "{err}");
    assert_eq!(pool_size(s.port).await, "3");
    s.pooler.signal(1);
    wait_until(
        "the failed SIGHUP reload is logged",
        Duration::from_secs(5),
        || s.pooler.log().contains("reload failed"),
    );
    assert_eq!(c.value("SELECT 1").await, "1", "clients carry on");
    assert_eq!(pool_size(s.port).await, "3");
}

#[tokio::test]
async fn sighup_reloads_and_reports_what_needs_a_restart() {
    let s = console_stack("pool_size = 3");
    let mut c = RawClient::login(s.port, "postgres", "postgres", &[]).await;
    rewrite(&s, "pool_size = 3", "pool_size = 4");
    let other_port = common::pooler::Pooler::free_port();
    rewrite(
        &s,
        &format!("127.0.0.1:{}\"", s.port),
        &format!("127.0.0.1:{other_port}\""),
    );
    s.pooler.signal(1);
    wait_until("the reload", Duration::from_secs(5), || {
        s.pooler.log().contains("configuration reloaded")
    });
    assert!(
        s.pooler.log().contains("general.listen changed"),
        "{}",
        s.pooler.log()
    );
    assert_eq!(pool_size(s.port).await, "4");
    assert_eq!(
        c.value("SELECT 2").await,
        "2",
        "still on the old listen address, still connected"
    );
}

#[tokio::test]
async fn reload_adds_and_removes_pools_without_dropping_clients() {
    let s = console_stack("pool_size = 3");
    let path = &s.pooler.config_path;
    let base = std::fs::read_to_string(path).unwrap();
    let with_other = format!(
        "{base}\n[pools.other]\ndatabase = \"postgres\"\nservers = [{{ host = \"127.0.0.1\", port = {} }}]\n",
        s.pg.port
    );
    assert!(RawClient::try_login(s.port, "postgres", "other", &[])
        .await
        .is_err());
    std::fs::write(path, &with_other).unwrap();
    console(s.port, "RELOAD").await.unwrap();
    let mut other = RawClient::login(s.port, "postgres", "other", &[]).await;
    assert_eq!(other.value("SELECT 3").await, "3");
    std::fs::write(path, &base).unwrap();
    console(s.port, "RELOAD").await.unwrap();
    let err = RawClient::try_login(s.port, "postgres", "other", &[])
        .await
        .err()
        .unwrap();
    assert_eq!(err[&b'C'], "3D000");
    assert_eq!(
        other.value("SELECT 4").await,
        "4",
        "a client of a removed pool carries on"
    );
}

#[tokio::test]
async fn a_changed_server_address_takes_effect_at_the_next_checkout() {
    let s = console_stack("pool_size = 3");
    let other = common::pg::PgCluster::start();
    let mut c = RawClient::login(s.port, "postgres", "postgres", &[]).await;
    assert_eq!(
        c.value("SELECT inet_server_port()").await,
        s.pg.port.to_string()
    );
    rewrite(
        &s,
        &format!("port = {}", s.pg.port),
        &format!("port = {}", other.port),
    );
    console(s.port, "RELOAD").await.unwrap();
    // The same client, still connected, now reaches the new server.
    assert_eq!(
        c.value("SELECT inet_server_port()").await,
        other.port.to_string()
    );
    wait_until(
        "the old server's connections close",
        Duration::from_secs(10),
        || s.server_connections("postgres") == 0,
    );
}
