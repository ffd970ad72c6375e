//! Quickstart: a throwaway PostgreSQL, pgcorral in front of it in transaction mode, pgbench
//! through it for a few seconds; prints pgbench's summary and the pool's state, then cleans up.
//!
//! Run it with `cargo run --release --example quickstart`. Needs the PostgreSQL 15 server
//! binaries in /usr/lib/postgresql/15/bin (Debian's `postgresql-15` package).

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::Duration;

use common::clients::{pgbench, pgbench_failed, pgbench_tps, psql};
use common::stack::{Stack, StackConfig};

const CLIENTS: &str = "50";
const POOL_SIZE: u32 = 10;
const SECONDS: &str = "5";

fn main() {
    // `cargo run --example` builds the example, not the daemon.
    common::stack::build_pgcorral();

    println!("==> starting a throwaway PostgreSQL 15 and pgcorral (transaction mode, pool_size = {POOL_SIZE})");
    let stack = Stack::start_with(StackConfig {
        general: "auth_type = \"trust\"".into(),
        pool: format!("pool_mode = \"transaction\"\npool_size = {POOL_SIZE}"),
        ..Default::default()
    });
    let port = stack.port.to_string();
    println!(
        "    PostgreSQL on 127.0.0.1:{}, pgcorral on 127.0.0.1:{port} (pid {})",
        stack.pg.port, stack.pooler.pid
    );

    println!("==> pgbench -i through pgcorral");
    let init = pgbench(
        stack.port,
        "postgres",
        "postgres",
        None,
        &["-i", "-s", "2", "-q"],
    );
    assert!(
        init.success(),
        "pgbench -i failed:\n{}{}",
        init.stdout,
        init.stderr
    );

    println!("==> pgbench: {CLIENTS} clients for {SECONDS}s over {POOL_SIZE} server connections");
    let run = pgbench(
        stack.port,
        "postgres",
        "postgres",
        None,
        &["-n", "-c", CLIENTS, "-j", "2", "-T", SECONDS, "-P", "1"],
    );
    print!("{}", run.stdout);
    eprint!(
        "{}",
        run.stderr
            .lines()
            .filter(|l| l.starts_with("progress"))
            .map(|l| format!("{l}\n"))
            .collect::<String>()
    );
    assert!(run.success(), "pgbench failed:\n{}", run.stderr);

    println!("==> the pool's state, as PostgreSQL sees it (connections from pgcorral by state)");
    let state = stack.pg.psql(
        "SELECT state, count(*) FROM pg_stat_activity \
         WHERE backend_type = 'client backend' AND pid <> pg_backend_pid() GROUP BY state ORDER BY state",
    );
    for line in state.lines() {
        let (state, n) = line.split_once('|').unwrap_or((line, ""));
        println!("    server connections {state:<8} {n}");
    }
    let via = psql(
        stack.port,
        "postgres",
        "postgres",
        None,
        "SELECT count(*) FROM pgbench_history",
    );
    println!("    rows written through pgcorral: {}", via.stdout.trim());

    println!(
        "==> result: tps = {:.0}, failed transactions = {}",
        pgbench_tps(&run).unwrap_or(0.0),
        pgbench_failed(&run).unwrap_or(0)
    );
    drop(stack);
    std::thread::sleep(Duration::from_millis(100));
    println!("==> cleaned up");
}
