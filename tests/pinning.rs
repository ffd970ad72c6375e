//! Session state under transaction pooling: each kind of state pins the server connection to
//! its client until it is released, settings are replayed instead of pinned, RESET ALL goes
//! back to the startup settings, and LISTEN/NOTIFY works in auto mode.

mod common;

use std::time::Duration;

use common::clients::{query_message, read_message};
use common::raw::RawClient;
use common::stack::{Stack, StackConfig};
use common::wait::wait_until;

fn stack(mode: &str, pool_size: usize) -> Stack {
    Stack::start_with(StackConfig {
        pool: format!("pool_mode = \"{mode}\"\npool_size = {pool_size}"),
        ..Default::default()
    })
}

/// Whether a query sent by `other` gets an answer within `within` (it cannot while the only
/// server connection is pinned to someone else). On false the query is still pending.
async fn answered(other: &mut RawClient, within: Duration) -> bool {
    tokio::time::timeout(within, other.read_result())
        .await
        .is_ok()
}

#[tokio::test]
async fn each_kind_of_session_state_pins_until_released() {
    let stack = stack("auto", 1);
    stack.pg.psql("CREATE ROLE pin_role");
    let cases: &[(&str, &str, &str)] = &[
        ("listen", "LISTEN jobs", "UNLISTEN *"),
        (
            "temp_table",
            "CREATE TEMP TABLE scratch (a int)",
            "DROP TABLE scratch",
        ),
        (
            "advisory_lock",
            "SELECT pg_advisory_lock(42)",
            "SELECT pg_advisory_unlock(42)",
        ),
        (
            "hold_cursor",
            "BEGIN; DECLARE c CURSOR WITH HOLD FOR SELECT 1; COMMIT",
            "CLOSE c",
        ),
        ("sql_prepare", "PREPARE p AS SELECT 1", "DEALLOCATE p"),
        ("session_auth", "SET ROLE pin_role", "RESET ROLE"),
    ];
    for (reason, pin, release) in cases {
        let mut owner = RawClient::login(stack.port, "postgres", "postgres", &[]).await;
        let mut other = RawClient::login(stack.port, "postgres", "postgres", &[]).await;
        owner
            .query(pin)
            .await
            .unwrap_or_else(|e| panic!("{pin}: {e:?}"));
        // The owner keeps its server across transactions...
        let pid = owner.value("SELECT pg_backend_pid()").await;
        assert_eq!(
            owner.value("SELECT pg_backend_pid()").await,
            pid,
            "{reason}"
        );
        // ...and nobody else gets it.
        other.send(&query_message("SELECT 1")).await;
        assert!(
            !answered(&mut other, Duration::from_millis(500)).await,
            "{reason}: another client got the pinned server connection"
        );
        owner
            .query(release)
            .await
            .unwrap_or_else(|e| panic!("{release}: {e:?}"));
        assert!(
            answered(&mut other, Duration::from_secs(10)).await,
            "{reason}: still pinned after {release}"
        );
        drop(owner);
        drop(other);
    }
    let log = stack.pooler.log();
    assert!(log.contains("pinned to its client"), "no pin log line");
}

#[tokio::test]
async fn a_client_that_leaves_pinned_state_behind_gets_its_server_reset() {
    let stack = stack("auto", 1);
    let mut owner = RawClient::login(stack.port, "postgres", "postgres", &[]).await;
    owner.query("LISTEN jobs").await.unwrap();
    owner
        .query("CREATE TEMP TABLE left_behind (a int)")
        .await
        .unwrap();
    drop(owner);
    let mut next = RawClient::login(stack.port, "postgres", "postgres", &[]).await;
    assert_eq!(
        next.value("SELECT count(*) FROM pg_listening_channels()")
            .await,
        "0"
    );
    assert_eq!(
        next.value("SELECT count(*) FROM pg_class WHERE relname = 'left_behind'")
            .await,
        "0"
    );
}

#[tokio::test]
async fn transaction_mode_pins_too_and_warns_with_the_statement() {
    let stack = stack("transaction", 2);
    let mut c = RawClient::login(stack.port, "postgres", "postgres", &[]).await;
    c.query("SELECT pg_advisory_lock(7)").await.unwrap();
    let pid = c.value("SELECT pg_backend_pid()").await;
    let mut other = RawClient::login(stack.port, "postgres", "postgres", &[]).await;
    other.query("BEGIN").await.unwrap();
    assert_ne!(other.value("SELECT pg_backend_pid()").await, pid);
    assert_eq!(c.value("SELECT pg_backend_pid()").await, pid);
    wait_until("the pin warning", Duration::from_secs(10), || {
        let log = stack.pooler.log();
        log.contains("WARN") && log.contains("SELECT pg_advisory_lock(7)")
    });
}

#[tokio::test]
async fn settings_follow_the_client_across_server_connections() {
    let stack = stack("transaction", 2);
    let mut a = RawClient::login(
        stack.port,
        "postgres",
        "postgres",
        &[("application_name", "from_startup")],
    )
    .await;
    let mut b = RawClient::login(stack.port, "postgres", "postgres", &[]).await;
    a.query("SET statement_timeout = '1234ms'").await.unwrap();
    a.query("SET search_path = pg_catalog, public")
        .await
        .unwrap();
    a.query("SET application_name = 'changed'").await.unwrap();
    // b holds one server connection in a transaction, so a must use the other one as well.
    for round in 0..4 {
        b.query("BEGIN").await.unwrap();
        assert_eq!(
            b.value("SHOW statement_timeout").await,
            "0",
            "round {round}"
        );
        assert_eq!(b.value("SHOW search_path").await, "\"$user\", public");
        assert_eq!(a.value("SHOW statement_timeout").await, "1234ms");
        assert_eq!(a.value("SHOW search_path").await, "pg_catalog, public");
        assert_eq!(a.value("SHOW application_name").await, "changed");
        b.query("COMMIT").await.unwrap();
        assert_eq!(a.value("SHOW statement_timeout").await, "1234ms");
    }
    // A SET that is rolled back is not replayed.
    a.query("BEGIN; SET statement_timeout = '999ms'; ROLLBACK")
        .await
        .unwrap();
    b.query("BEGIN").await.unwrap();
    assert_eq!(a.value("SHOW statement_timeout").await, "1234ms");
    b.query("COMMIT").await.unwrap();
    // RESET ALL goes back to what the client logged in with.
    a.query("RESET ALL").await.unwrap();
    b.query("BEGIN").await.unwrap();
    assert_eq!(a.value("SHOW statement_timeout").await, "0");
    assert_eq!(a.value("SHOW application_name").await, "from_startup");
    b.query("COMMIT").await.unwrap();
    assert_eq!(a.value("SHOW application_name").await, "from_startup");
}

#[tokio::test]
async fn listen_notify_reaches_the_listening_client_in_auto_mode() {
    let stack = stack("auto", 2);
    let mut listener = RawClient::login(stack.port, "postgres", "postgres", &[]).await;
    let mut sender = RawClient::login(stack.port, "postgres", "postgres", &[]).await;
    listener.query("LISTEN events").await.unwrap();
    for i in 0..3 {
        sender
            .query(&format!("NOTIFY events, 'payload {i}'"))
            .await
            .unwrap();
        let got = loop {
            let (tag, body) = read_message(&mut listener.stream, Duration::from_secs(10))
                .await
                .expect("a notification before the deadline");
            if tag == b'A' {
                break body;
            }
        };
        let text = String::from_utf8_lossy(&got[4..]).into_owned();
        assert!(
            text.starts_with("events\0") && text.contains(&format!("payload {i}")),
            "{text:?}"
        );
    }
    // The listener still runs queries between notifications.
    assert_eq!(listener.value("SELECT 1").await, "1");
}
