//! Signals: SIGTERM shuts down gracefully (idle clients told 57P01, clients inside a
//! transaction allowed to finish), then exit status 0.

mod common;

use std::time::Duration;

use common::raw::RawClient;
use common::stack::Stack;

const SIGTERM: i32 = 15;

#[tokio::test]
async fn sigterm_tells_idle_clients_and_lets_a_transaction_finish() {
    let mut s = Stack::start();
    let mut idle = RawClient::login(s.port, "postgres", "postgres", &[]).await;
    let mut busy = RawClient::login(s.port, "postgres", "postgres", &[]).await;
    busy.query("BEGIN").await.unwrap();
    busy.query("CREATE TABLE made_during_shutdown (v int)")
        .await
        .unwrap();
    s.pooler.signal(SIGTERM);
    let err = idle.expect_error(Duration::from_secs(5)).await;
    assert_eq!(err[&b'C'], "57P01");
    // New clients are not accepted any more.
    assert!(s.pooler.is_running());
    busy.query("INSERT INTO made_during_shutdown VALUES (1)")
        .await
        .unwrap();
    busy.query("COMMIT").await.unwrap();
    let status = s.pooler.wait_exit(Duration::from_secs(10)).expect("exited");
    assert_eq!(status.code(), Some(0));
    assert_eq!(s.pg.psql("SELECT count(*) FROM made_during_shutdown"), "1");
}

#[tokio::test]
async fn sigterm_with_no_clients_exits_at_once() {
    let mut s = Stack::start();
    s.pooler.signal(SIGTERM);
    let status = s.pooler.wait_exit(Duration::from_secs(5)).expect("exited");
    assert_eq!(status.code(), Some(0));
}
