//! Prometheus metrics: every series CONTRACT.md names is present with its labels, and the
//! counters move with traffic.

mod common;

use std::io::{Read, Write};
use std::time::Duration;

use common::clients::pgbench;
use common::raw::RawClient;
use common::stack::{Stack, StackConfig};

fn scrape(port: u16) -> String {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).expect("metrics port");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    assert!(out.starts_with("HTTP/1.1 200"), "{out}");
    out.split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default()
}

/// The value of the sample whose line starts with `prefix` (name and labels).
fn sample(body: &str, prefix: &str) -> Option<f64> {
    body.lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
}

#[tokio::test]
async fn every_contract_series_is_exported_and_moves_with_traffic() {
    let metrics_port = common::pooler::Pooler::free_port();
    let s = Stack::start_with(StackConfig {
        general: format!("auth_type = \"trust\"\nmetrics_listen = \"127.0.0.1:{metrics_port}\""),
        pool: "pool_size = 3".into(),
        ..Default::default()
    });
    common::wait::wait_until("metrics answer", Duration::from_secs(10), || {
        std::net::TcpStream::connect(("127.0.0.1", metrics_port)).is_ok()
    });
    common::clients::pgbench_init(s.port);
    let before = scrape(metrics_port);
    let pool = "{database=\"postgres\",user=\"postgres\"";
    let xacts =
        |body: &str| sample(body, &format!("pgcorral_transactions_total{pool}}}")).unwrap_or(0.0);
    let run = pgbench(
        s.port,
        "postgres",
        "postgres",
        None,
        &["-n", "-S", "-c", "4", "-t", "25"],
    );
    assert!(run.success(), "{}", run.stderr);
    let mut c = RawClient::login(s.port, "postgres", "postgres", &[]).await;
    c.query("SELECT 1/0").await.unwrap_err();
    let body = scrape(metrics_port);
    assert!(xacts(&body) >= xacts(&before) + 100.0, "{body}");
    for name in [
        "pgcorral_clients",
        "pgcorral_servers",
        "pgcorral_transactions_total",
        "pgcorral_queries_total",
        "pgcorral_received_bytes_total",
        "pgcorral_sent_bytes_total",
        "pgcorral_client_wait_seconds",
        "pgcorral_transaction_duration_seconds",
        "pgcorral_salvaged_connections_total",
        "pgcorral_server_errors_total",
        "pgcorral_bans_total",
        "pgcorral_server_up",
        "pgcorral_server_connections",
        "pgcorral_process_resident_memory_bytes",
        "pgcorral_process_cpu_seconds_total",
    ] {
        assert!(body.contains(&format!("# TYPE {name} ")), "missing {name}");
    }
    for state in ["active", "waiting", "idle"] {
        assert!(
            sample(
                &body,
                &format!("pgcorral_clients{pool},state=\"{state}\"}}")
            )
            .is_some(),
            "clients {state}"
        );
    }
    for state in ["active", "idle", "login"] {
        assert!(
            sample(
                &body,
                &format!("pgcorral_servers{pool},state=\"{state}\"}}")
            )
            .is_some(),
            "servers {state}"
        );
    }
    assert!(sample(&body, &format!("pgcorral_received_bytes_total{pool}}}")).unwrap() > 0.0);
    assert!(
        sample(
            &body,
            &format!("pgcorral_transaction_duration_seconds_count{pool}}}")
        )
        .unwrap()
            >= 100.0
    );
    assert!(body.contains(&format!(
        "pgcorral_client_wait_seconds_bucket{pool},le=\"+Inf\"}}"
    )));
    assert_eq!(
        sample(
            &body,
            &format!("pgcorral_server_errors_total{pool},class=\"22\"}}")
        ),
        Some(1.0)
    );
    let server = format!(
        "{{host=\"127.0.0.1\",port=\"{}\",role=\"primary\"}}",
        s.pg.port
    );
    assert_eq!(
        sample(&body, &format!("pgcorral_server_up{server}")),
        Some(1.0)
    );
    assert!(sample(&body, &format!("pgcorral_server_connections{server}")).unwrap() <= 3.0);
    assert!(sample(&body, "pgcorral_process_resident_memory_bytes").unwrap() > 1e6);
}
