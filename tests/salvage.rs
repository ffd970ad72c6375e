//! Salvage: a client that vanishes mid-transaction, mid-query or mid-COPY does not cost a
//! server connection. The same backend serves the next client, rolled back and clean.

mod common;

use std::time::Duration;

use common::clients::query_message;
use common::raw::RawClient;
use common::stack::{Stack, StackConfig};
use common::wait::wait_until;

/// One server connection, so reuse is visible as the same backend pid.
fn one_connection() -> Stack {
    let s = Stack::start_with(StackConfig {
        pool: "pool_size = 1".into(),
        ..Default::default()
    });
    s.pg.psql("CREATE TABLE kept (v int)");
    s
}

async fn assert_clean_and_reused(s: &Stack, pid: &str) {
    let mut next = RawClient::login(s.port, "postgres", "postgres", &[]).await;
    assert_eq!(
        next.value("SELECT pg_backend_pid()").await,
        pid,
        "same server connection"
    );
    assert_eq!(
        next.value("SELECT count(*) FROM kept").await,
        "0",
        "rolled back"
    );
    assert_eq!(
        next.value("SELECT count(*) FROM pg_stat_activity WHERE state <> 'idle' AND pid <> pg_backend_pid() AND backend_type = 'client backend'").await,
        "0"
    );
    assert_eq!(s.server_connections("postgres"), 1);
}

#[tokio::test]
async fn salvages_a_connection_when_the_client_dies_idle_in_transaction() {
    let s = one_connection();
    let mut c = RawClient::login(s.port, "postgres", "postgres", &[]).await;
    c.query("BEGIN").await.unwrap();
    c.query("INSERT INTO kept VALUES (1)").await.unwrap();
    let pid = c.value("SELECT pg_backend_pid()").await;
    drop(c);
    assert_clean_and_reused(&s, &pid).await;
}

#[tokio::test]
async fn salvages_a_connection_when_the_client_dies_during_a_query() {
    let s = one_connection();
    let mut c = RawClient::login(s.port, "postgres", "postgres", &[]).await;
    c.query("BEGIN").await.unwrap();
    c.query("INSERT INTO kept VALUES (1)").await.unwrap();
    let pid = c.value("SELECT pg_backend_pid()").await;
    c.send(&query_message("SELECT pg_sleep(60)")).await;
    wait_until("the query is running", Duration::from_secs(10), || {
        s.pg.psql("SELECT count(*) FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(60)' AND state = 'active'") == "1"
    });
    drop(c);
    let started = std::time::Instant::now();
    assert_clean_and_reused(&s, &pid).await;
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "the query was canceled, not waited for"
    );
}

#[tokio::test]
async fn salvages_a_connection_when_the_client_dies_mid_copy() {
    let s = one_connection();
    let mut c = RawClient::login(s.port, "postgres", "postgres", &[]).await;
    let pid = c.value("SELECT pg_backend_pid()").await;
    c.send(&query_message("COPY kept FROM STDIN")).await;
    let (tag, _) = common::clients::read_message(&mut c.stream, Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(tag, b'G', "CopyInResponse");
    // A few rows of CopyData, then the client vanishes without CopyDone.
    let mut data = vec![b'd'];
    data.extend_from_slice(&(4 + 6i32).to_be_bytes());
    data.extend_from_slice(b"1\n2\n3\n");
    c.send(&data).await;
    drop(c);
    assert_clean_and_reused(&s, &pid).await;
}

#[tokio::test]
async fn salvages_in_session_mode_and_resets() {
    let s = Stack::start_with(StackConfig {
        pool: "pool_size = 1\npool_mode = \"session\"".into(),
        ..Default::default()
    });
    s.pg.psql("CREATE TABLE kept (v int)");
    let mut c = RawClient::login(s.port, "postgres", "postgres", &[]).await;
    c.query("SET work_mem = '9MB'").await.unwrap();
    c.query("BEGIN").await.unwrap();
    c.query("INSERT INTO kept VALUES (1)").await.unwrap();
    let pid = c.value("SELECT pg_backend_pid()").await;
    drop(c);
    let mut next = RawClient::login(s.port, "postgres", "postgres", &[]).await;
    assert_eq!(next.value("SELECT pg_backend_pid()").await, pid);
    assert_eq!(next.value("SHOW work_mem").await, "4MB");
    assert_eq!(next.value("SELECT count(*) FROM kept").await, "0");
}
