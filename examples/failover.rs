//! Failover demo and measurement: a primary and a streaming replica behind pgcorral, both with
//! role `auto` and the default health-check settings. A writer inserts a row every 20 ms; the
//! primary is killed, the replica promoted one second later, and pgcorral finds the new
//! primary on its own. Prints how long writes were unavailable and how many failed.
//!
//! Run it with `cargo run --release --example failover`.

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use common::pg::{PgCluster, PgOptions};
use common::pooler::Pooler;
use common::raw::RawClient;
use common::stack::bin;

#[tokio::main]
async fn main() {
    // `cargo run --example` builds the example, not the daemon.
    common::stack::build_pgcorral();

    println!("==> primary + streaming replica, pgcorral with role auto and default health checks");
    let mut primary = PgCluster::start_with(PgOptions {
        replication: true,
        ..Default::default()
    });
    primary.psql("CREATE TABLE ticks (at timestamptz DEFAULT now())");
    let replica = primary.start_replica();
    let port = Pooler::free_port();
    let toml = format!(
        "[general]\nlisten = \"127.0.0.1:{port}\"\nauth_type = \"trust\"\nlog_level = \"info\"\n\
         [users.postgres]\n[pools.postgres]\nread_write_split = true\n\
         servers = [{{ host = \"127.0.0.1\", port = {}, role = \"auto\" }}, \
                    {{ host = \"127.0.0.1\", port = {}, role = \"auto\" }}]\n",
        primary.port, replica.port
    );
    let pooler = Pooler::start(&bin(), &toml);

    let writer = tokio::spawn(async move {
        let mut ok = 0u32;
        let mut failed = 0u32;
        let mut last_ok_before_gap: Option<Instant> = None;
        let mut longest_gap = Duration::ZERO;
        let mut client: Option<RawClient> = None;
        let end = Instant::now() + Duration::from_secs(16);
        while Instant::now() < end {
            if client.is_none() {
                client = RawClient::try_login(port, "postgres", "postgres", &[])
                    .await
                    .ok();
            }
            let result = match client.as_mut() {
                Some(c) => c.query("INSERT INTO ticks DEFAULT VALUES").await,
                None => Err(Default::default()),
            };
            match result {
                Ok(_) => {
                    ok += 1;
                    if let Some(last) = last_ok_before_gap {
                        longest_gap = longest_gap.max(last.elapsed());
                    }
                    last_ok_before_gap = Some(Instant::now());
                }
                Err(_) => {
                    failed += 1;
                    client = None;
                }
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        (ok, failed, longest_gap)
    });

    tokio::time::sleep(Duration::from_secs(3)).await;
    println!("==> killing the primary (pg_ctl stop -m immediate)");
    primary.stop();
    tokio::time::sleep(Duration::from_secs(1)).await;
    println!("==> promoting the replica (pg_ctl promote)");
    replica.promote();
    let promoted = Instant::now();
    let (ok, failed, gap) = writer.await.unwrap();
    println!("==> writes succeeded: {ok}, failed: {failed}");
    println!(
        "==> writes were unavailable for {:.1} s in all (kill to first write on the new primary), \
         {:.1} s after the promotion",
        gap.as_secs_f64(),
        (gap.as_secs_f64() - 1.0).max(0.0)
    );
    let _ = promoted;
    let log = pooler.log();
    for line in log
        .lines()
        .filter(|l| l.contains("banned") || l.contains("role detected"))
    {
        println!("    {line}");
    }
}
