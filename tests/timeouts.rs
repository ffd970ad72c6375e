//! Every timeout and limit a PgBouncer user relies on, each observed from a client.

mod common;

use std::time::{Duration, Instant};

use common::clients::raw_connect;
use common::raw::RawClient;
use common::stack::{Stack, StackConfig};
use common::wait::wait_until;

fn stack(general: &str, pool: &str) -> Stack {
    Stack::start_with(StackConfig {
        general: format!("auth_type = \"trust\"\n{general}"),
        pool: pool.into(),
        ..Default::default()
    })
}

#[tokio::test]
async fn query_wait_timeout_fails_a_waiting_client_with_53400_naming_the_pool() {
    let s = stack("", "pool_size = 1\nquery_wait_timeout = \"500ms\"");
    let mut holder = RawClient::login(s.port, "postgres", "postgres", &[]).await;
    holder.query("BEGIN").await.unwrap();
    let mut waiter = RawClient::login(s.port, "postgres", "postgres", &[]).await;
    let started = Instant::now();
    let err = waiter.query("SELECT 1").await.unwrap_err();
    assert_eq!(err[&b'C'], "53400", "{err:?}");
    assert!(err[&b'M'].contains("postgres/postgres"), "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(5));
    holder.query("COMMIT").await.unwrap();
}

#[tokio::test]
async fn query_timeout_cancels_the_query_with_57014_and_keeps_the_client() {
    let s = stack("", "query_timeout = \"300ms\"");
    let mut c = RawClient::login(s.port, "postgres", "postgres", &[]).await;
    let err = c.query("SELECT pg_sleep(20)").await.unwrap_err();
    assert_eq!(err[&b'C'], "57014");
    assert!(err[&b'M'].contains("query_timeout"), "{err:?}");
    assert_eq!(c.value("SELECT 5").await, "5");
}

#[tokio::test]
async fn client_login_timeout_closes_a_silent_client() {
    let s = stack("client_login_timeout = \"300ms\"", "");
    let mut silent = raw_connect(s.port).await;
    let mut buf = [0u8; 64];
    let n = tokio::time::timeout(
        Duration::from_secs(5),
        tokio::io::AsyncReadExt::read(&mut silent, &mut buf),
    )
    .await
    .expect("closed within 5 s")
    .unwrap_or(0);
    // Either a bare close or an ErrorResponse (08P01) followed by a close.
    assert!(n == 0 || buf[0] == b'E', "unexpected bytes {:?}", &buf[..n]);
    RawClient::login(s.port, "postgres", "postgres", &[]).await;
}

#[tokio::test]
async fn idle_transaction_timeout_closes_the_client_with_25p03() {
    let s = stack("", "idle_transaction_timeout = \"300ms\"\npool_size = 1");
    let mut c = RawClient::login(s.port, "postgres", "postgres", &[]).await;
    c.query("BEGIN").await.unwrap();
    let err = c.expect_error(Duration::from_secs(5)).await;
    assert_eq!(err[&b'C'], "25P03");
    assert!(c.closed_within(Duration::from_secs(5)).await);
    // The server connection was rolled back and reused.
    let mut d = RawClient::login(s.port, "postgres", "postgres", &[]).await;
    assert_eq!(
        d.value("SELECT count(*) FROM pg_stat_activity WHERE state LIKE 'idle in%'")
            .await,
        "0"
    );
}

#[tokio::test]
async fn client_idle_timeout_closes_an_idle_client() {
    let s = stack("", "client_idle_timeout = \"300ms\"");
    let mut c = RawClient::login(s.port, "postgres", "postgres", &[]).await;
    let err = c.expect_error(Duration::from_secs(5)).await;
    assert_eq!(err[&b'C'], "57P05");
}

#[tokio::test]
async fn server_idle_timeout_closes_unused_server_connections() {
    let s = stack("", "server_idle_timeout = \"500ms\"");
    let mut c = RawClient::login(s.port, "postgres", "postgres", &[]).await;
    c.value("SELECT 1").await;
    wait_until(
        "idle server connections closed",
        Duration::from_secs(10),
        || s.server_connections("postgres") == 0,
    );
    assert_eq!(
        c.value("SELECT 2").await,
        "2",
        "a new connection is opened on demand"
    );
}

#[tokio::test]
async fn server_lifetime_retires_connections_at_checkin() {
    let s = stack("", "server_lifetime = \"300ms\"\npool_size = 1");
    let mut c = RawClient::login(s.port, "postgres", "postgres", &[]).await;
    let first = c.value("SELECT pg_backend_pid()").await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    // This transaction still gets the old connection or a new one; the next surely a new one.
    c.value("SELECT 1").await;
    let later = c.value("SELECT pg_backend_pid()").await;
    assert_ne!(first, later);
}

#[tokio::test]
async fn min_pool_size_keeps_connections_warm() {
    let s = stack("", "min_pool_size = 4");
    RawClient::login(s.port, "postgres", "postgres", &[]).await;
    wait_until("4 warm server connections", Duration::from_secs(10), || {
        s.server_connections("postgres") >= 4
    });
}

#[tokio::test]
async fn server_connect_timeout_bounds_a_server_that_never_answers() {
    // A listener that accepts TCP (kernel backlog) but never speaks.
    let black_hole = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let hole_port = black_hole.local_addr().unwrap().port();
    let pg = common::pg::PgCluster::start();
    let port = common::pooler::Pooler::free_port();
    let toml = format!(
        "[general]\nlisten = \"127.0.0.1:{port}\"\nauth_type = \"trust\"\n[users.postgres]\n\
         [pools.postgres]\nserver_connect_timeout = \"300ms\"\n\
         servers = [{{ host = \"127.0.0.1\", port = {hole_port}, role = \"primary\" }}]\n"
    );
    let _p = common::pooler::Pooler::start(&common::stack::bin(), &toml);
    let started = Instant::now();
    let err = RawClient::try_login(port, "postgres", "postgres", &[])
        .await
        .err()
        .unwrap();
    assert_eq!(err[&b'C'], "08006", "{err:?}");
    assert!(err[&b'M'].contains("server_connect_timeout"), "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(5));
    drop(pg);
}

#[tokio::test]
async fn max_client_conn_refuses_extra_clients_with_53300() {
    let s = stack("max_client_conn = 2", "");
    let _a = RawClient::login(s.port, "postgres", "postgres", &[]).await;
    let _b = RawClient::login(s.port, "postgres", "postgres", &[]).await;
    let err = RawClient::try_login(s.port, "postgres", "postgres", &[])
        .await
        .err()
        .unwrap();
    assert_eq!(err[&b'C'], "53300");
    drop(_a);
    let port = s.port;
    common::wait::wait_until_async("a slot frees up", Duration::from_secs(5), || async move {
        RawClient::try_login(port, "postgres", "postgres", &[])
            .await
            .is_ok()
    })
    .await;
}

#[tokio::test]
async fn max_db_connections_caps_connections_across_users() {
    let s = Stack::start_with(StackConfig {
        general: "auth_type = \"trust\"\nmax_db_connections = 2".into(),
        users: "[users.postgres]\n[users.app]\n".into(),
        pool: "pool_size = 5\nquery_wait_timeout = \"500ms\"".into(),
        ..Default::default()
    });
    s.pg.psql("CREATE ROLE app LOGIN");
    let mut a = RawClient::login(s.port, "postgres", "postgres", &[]).await;
    let mut b = RawClient::login(s.port, "app", "postgres", &[]).await;
    let mut c = RawClient::login(s.port, "app", "postgres", &[]).await;
    a.query("BEGIN").await.unwrap();
    b.query("BEGIN").await.unwrap();
    let err = c.query("SELECT 1").await.unwrap_err();
    assert_eq!(
        err[&b'C'], "53400",
        "third connection to the database waits and times out"
    );
    assert!(
        c.closed_within(Duration::from_secs(5)).await,
        "disconnected, as PgBouncer does"
    );
    assert_eq!(
        s.pg.backend_count("postgres", "postgres") + s.pg.backend_count("postgres", "app"),
        2
    );
    b.query("COMMIT").await.unwrap();
    let mut d = RawClient::login(s.port, "app", "postgres", &[]).await;
    assert_eq!(d.value("SELECT 1").await, "1");
    a.query("COMMIT").await.unwrap();
}
