//! Parking: an idle client gives up its actor (it is parked) and comes back unchanged when it
//! speaks; KILL, client_idle_timeout and shutdown still reach it while it is parked.

mod common;

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use common::clients::{connect, psql};
use common::raw::RawClient;
use common::stack::{Stack, StackConfig};
use common::wait::wait_until;

/// A stack with the metrics endpoint and an admin user; returns it and the metrics port.
fn stack(pool: &str) -> (Stack, u16) {
    let metrics = common::pooler::Pooler::free_port();
    let s = Stack::start_with(StackConfig {
        general: format!(
            "auth_type = \"trust\"\nadmin_users = [\"admin\"]\n\
             metrics_listen = \"127.0.0.1:{metrics}\""
        ),
        users: "[users.postgres]\n[users.admin]\n".into(),
        pool: pool.into(),
        ..Default::default()
    });
    wait_until("metrics answer", Duration::from_secs(10), || {
        std::net::TcpStream::connect(("127.0.0.1", metrics)).is_ok()
    });
    (s, metrics)
}

/// pgcorral_parked_clients summed over pools.
fn parked(metrics: u16) -> f64 {
    let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", metrics)) else {
        return -1.0;
    };
    let _ = s.write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    let mut body = String::new();
    let _ = s.read_to_string(&mut body);
    body.lines()
        .filter(|l| l.starts_with("pgcorral_parked_clients{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[tokio::test]
async fn idle_clients_park_and_come_back_with_their_session() {
    let (s, metrics) = stack("pool_mode = \"transaction\"\npool_size = 2");
    let mut raws = Vec::new();
    for _ in 0..20 {
        raws.push(RawClient::login(s.port, "postgres", "postgres", &[]).await);
    }
    let (pg, _driver) = connect(s.port, "postgres", "postgres", None)
        .await
        .expect("tokio-postgres connects");
    let stmt = pg.prepare("SELECT $1::int + 1").await.unwrap();
    pg.batch_execute("SET statement_timeout = '4321ms'")
        .await
        .unwrap();
    wait_until("all 21 clients parked", Duration::from_secs(10), || {
        parked(metrics) == 21.0
    });
    for (i, c) in raws.iter_mut().enumerate() {
        assert_eq!(c.value(&format!("SELECT {i}")).await, i.to_string());
    }
    let row = pg.query_one(&stmt, &[&41i32]).await.unwrap();
    assert_eq!(
        row.get::<_, i32>(0),
        42,
        "a statement prepared before parking"
    );
    let row = pg.query_one("SHOW statement_timeout", &[]).await.unwrap();
    assert_eq!(
        row.get::<_, &str>(0),
        "4321ms",
        "a setting made before parking"
    );
    // Woken clients park again once idle.
    wait_until("parked again", Duration::from_secs(10), || {
        parked(metrics) == 21.0
    });
    assert_eq!(raws[3].value("SELECT 'again'").await, "again");
}

#[tokio::test]
async fn kill_reaches_a_parked_client() {
    let (s, metrics) = stack("");
    let mut c = RawClient::login(s.port, "postgres", "postgres", &[]).await;
    wait_until("client parked", Duration::from_secs(10), || {
        parked(metrics) == 1.0
    });
    let out = psql(s.port, "admin", "pgcorral", None, "KILL postgres");
    assert!(out.success(), "{}", out.stderr);
    let err = c.expect_error(Duration::from_secs(5)).await;
    assert_eq!(err[&b'C'], "57P01", "{err:?}");
    assert!(c.closed_within(Duration::from_secs(5)).await);
    let out = psql(s.port, "admin", "pgcorral", None, "RESUME postgres");
    assert!(out.success(), "{}", out.stderr);
}

#[tokio::test]
async fn client_idle_timeout_runs_on_while_parked() {
    let (s, metrics) = stack("client_idle_timeout = \"1500ms\"");
    let mut c = RawClient::login(s.port, "postgres", "postgres", &[]).await;
    let logged_in = Instant::now();
    wait_until("client parked", Duration::from_secs(10), || {
        parked(metrics) == 1.0
    });
    let err = c.expect_error(Duration::from_secs(10)).await;
    assert_eq!(err[&b'C'], "57P05", "{err:?}");
    let waited = logged_in.elapsed();
    assert!(
        waited >= Duration::from_millis(1400),
        "closed after {waited:?}, before client_idle_timeout"
    );
    // A sweep period (500 ms) is the timeout's granularity while parked.
    assert!(
        waited < Duration::from_secs(4),
        "closed only after {waited:?}"
    );
}
