//! Hostile and broken input: each gets a clear ErrorResponse with the right SQLSTATE where
//! the protocol allows one, and never takes the pooler down or disturbs another client.

mod common;

use std::time::Duration;

use common::clients::{error_fields, raw_connect, read_message, send, startup_message};
use common::raw::RawClient;
use common::stack::{Stack, StackConfig};

/// Sends `bytes` on a new connection and returns the first ErrorResponse's fields (if any)
/// before the pooler closes the connection.
async fn first_error(port: u16, bytes: &[u8]) -> Option<std::collections::HashMap<u8, String>> {
    let mut s = raw_connect(port).await;
    send(&mut s, bytes).await;
    match read_message(&mut s, Duration::from_secs(5)).await {
        Some((b'E', body)) => Some(error_fields(&body)),
        _ => None,
    }
}

#[tokio::test]
async fn garbage_and_absurd_packets_get_08p01_and_others_carry_on() {
    let s = Stack::start();
    let mut bystander = RawClient::login(s.port, "postgres", "postgres", &[]).await;
    bystander.query("BEGIN").await.unwrap();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("absurd length", vec![0x7f, 0xff, 0xff, 0xff, 1, 2, 3, 4]),
        (
            "http request",
            b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n".to_vec(),
        ),
        ("protocol 2", vec![0, 0, 0, 9, 0, 2, 0, 0, 0]),
        ("garbage", (0..200u8).map(|i| i.wrapping_mul(37)).collect()),
        (
            "unterminated params",
            vec![0, 0, 0, 12, 0, 3, 0, 0, b'u', b's', b'e', b'r'],
        ),
    ];
    for (what, bytes) in cases {
        let err = first_error(s.port, &bytes)
            .await
            .unwrap_or_else(|| panic!("{what}: no error"));
        assert_eq!(err[&b'C'], "08P01", "{what}: {err:?}");
    }
    // A truncated startup packet followed by a close: nothing to answer, nothing breaks.
    let mut t = raw_connect(s.port).await;
    send(&mut t, &[0, 0, 0, 40, 0, 3]).await;
    drop(t);
    assert_eq!(bystander.value("SELECT 1").await, "1");
    bystander.query("COMMIT").await.unwrap();
}

#[tokio::test]
async fn an_oversized_message_is_a_protocol_error_not_an_allocation() {
    let s = Stack::start_with(StackConfig {
        general: "auth_type = \"trust\"\nmax_message_size = 1048576".into(),
        ..Default::default()
    });
    let mut c = RawClient::login(s.port, "postgres", "postgres", &[]).await;
    // Announce a 1.5 GiB query; send only its header.
    c.send(&[b'Q', 0x60, 0, 0, 0]).await;
    let err = c.expect_error(Duration::from_secs(5)).await;
    assert_eq!(err[&b'C'], "08P01");
    assert!(err[&b'M'].contains("max_message_size"), "{err:?}");
    RawClient::login(s.port, "postgres", "postgres", &[]).await;
}

#[tokio::test]
async fn a_client_speaking_out_of_turn_during_login_gets_08p01() {
    let s = Stack::start_with(StackConfig {
        general: "auth_type = \"md5\"".into(),
        users: "[users.postgres]\npassword = \"pw\"\n".into(),
        ..Default::default()
    });
    let mut c = raw_connect(s.port).await;
    send(&mut c, &startup_message("postgres", "postgres", &[])).await;
    let (tag, _) = read_message(&mut c, Duration::from_secs(5)).await.unwrap();
    assert_eq!(tag, b'R');
    send(&mut c, &common::clients::query_message("SELECT 1")).await;
    let (tag, body) = read_message(&mut c, Duration::from_secs(5)).await.unwrap();
    assert_eq!(tag, b'E');
    assert_eq!(error_fields(&body)[&b'C'], "08P01");
}

#[tokio::test]
async fn ssl_and_gssenc_requests_are_refused_with_n_and_login_continues() {
    let s = Stack::start();
    let mut c = raw_connect(s.port).await;
    send(&mut c, &common::clients::ssl_request()).await;
    let mut one = [0u8; 1];
    tokio::io::AsyncReadExt::read_exact(&mut c, &mut one)
        .await
        .unwrap();
    assert_eq!(&one, b"N");
    send(&mut c, &[0, 0, 0, 8, 4, 0xd2, 0x16, 0x30]).await;
    tokio::io::AsyncReadExt::read_exact(&mut c, &mut one)
        .await
        .unwrap();
    assert_eq!(&one, b"N");
    send(&mut c, &startup_message("postgres", "postgres", &[])).await;
    let (tag, _) = common::clients::read_until(&mut c, b'Z', Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(tag, b'Z');
}

#[tokio::test]
async fn a_server_that_vanishes_mid_result_fails_only_its_client() {
    let s = Stack::start();
    let mut victim = RawClient::login(s.port, "postgres", "postgres", &[]).await;
    let mut bystander = RawClient::login(s.port, "postgres", "postgres", &[]).await;
    bystander.query("BEGIN").await.unwrap();
    victim
        .send(&common::clients::query_message("SELECT pg_sleep(60)"))
        .await;
    common::wait::wait_until("the query is running", Duration::from_secs(10), || {
        s.pg.psql("SELECT count(*) FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(60)' AND state = 'active'") == "1"
    });
    s.pg.psql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(60)'");
    let err = victim.expect_error(Duration::from_secs(10)).await;
    assert!(["57P01", "08006"].contains(&err[&b'C'].as_str()), "{err:?}");
    assert!(victim.closed_within(Duration::from_secs(5)).await);
    assert_eq!(bystander.value("SELECT 2").await, "2");
    bystander.query("COMMIT").await.unwrap();
    // The pool replaced the lost connection.
    let mut next = RawClient::login(s.port, "postgres", "postgres", &[]).await;
    assert_eq!(next.value("SELECT 3").await, "3");
}
