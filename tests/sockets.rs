//! Socket options as PgBouncer users expect: TCP keepalive with the configured idle time on
//! client and server sockets (seen through `ss`, as an operator would check).

mod common;

use std::process::Command;
use std::time::Duration;

use common::raw::RawClient;
use common::stack::{Stack, StackConfig};

/// The keepalive timer `ss -o` shows for established sockets matching `filter`, in seconds.
fn keepalive_timers(filter: &str) -> Vec<f64> {
    let out = Command::new("ss")
        .args(["-tnoH", "state", "established", filter])
        .output()
        .expect("ss (iproute2) is installed");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let t = l.split("timer:(keepalive,").nth(1)?;
            let v = t.split(',').next()?;
            // "6.9sec", "1min5sec", "850ms"
            if let Some(ms) = v.strip_suffix("ms") {
                return ms.parse::<f64>().ok().map(|m| m / 1000.0);
            }
            let (min, rest) = v.split_once("min").unwrap_or(("0", v));
            let sec = rest.strip_suffix("sec").unwrap_or("0");
            Some(min.parse::<f64>().ok()? * 60.0 + sec.parse::<f64>().unwrap_or(0.0))
        })
        .collect()
}

#[tokio::test]
async fn keepalive_uses_the_configured_idle_time_on_both_sides() {
    let s = Stack::start_with(StackConfig {
        general: "auth_type = \"trust\"\ntcp_keepalive = true\ntcp_keepidle = \"17s\"\ntcp_keepintvl = \"3s\"\ntcp_keepcnt = 4\ntcp_user_timeout = \"20s\"".into(),
        ..Default::default()
    });
    let mut c = RawClient::login(s.port, "postgres", "postgres", &[]).await;
    c.value("SELECT 1").await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    // pgcorral's side of the client connection (source port = the listen port).
    let client_side = keepalive_timers(&format!("sport = :{}", s.port));
    assert!(
        !client_side.is_empty(),
        "no keepalive timer on the client socket"
    );
    assert!(
        client_side.iter().all(|&t| t > 10.0 && t <= 17.0),
        "{client_side:?}"
    );
    // pgcorral's side of the server connection (destination port = PostgreSQL's).
    let server_side = keepalive_timers(&format!("dport = :{}", s.pg.port));
    assert!(
        !server_side.is_empty(),
        "no keepalive timer on the server socket"
    );
    assert!(
        server_side.iter().all(|&t| t > 10.0 && t <= 17.0),
        "{server_side:?}"
    );
}
