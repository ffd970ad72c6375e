//! The admin console with real clients: PgBouncer's column lists, counters that move with
//! traffic, PAUSE/RESUME (and SIGUSR1/SIGUSR2), BAN/UNBAN moving traffic, access rules,
//! SHUTDOWN.

mod common;

use std::time::{Duration, Instant};

use common::clients::{connect, pgbench, query_message};
use common::pg::{PgCluster, PgOptions};
use common::pooler::Pooler;
use common::raw::RawClient;
use common::stack::{bin, Stack, StackConfig};
use common::wait::wait_until_async;
use pgcorral::admin::columns as col;
use tokio_postgres::SimpleQueryMessage;

fn console_stack() -> Stack {
    console_stack_with("pool_size = 4")
}

/// [`console_stack`] with `pool` as the pool's settings.
fn console_stack_with(pool: &str) -> Stack {
    Stack::start_with(StackConfig {
        general: "auth_type = \"trust\"\nadmin_users = [\"admin\"]\nstats_users = [\"watcher\"]"
            .into(),
        users: "[users.postgres]\n[users.admin]\n[users.watcher]\n".into(),
        pool: pool.into(),
        ..Default::default()
    })
}

/// Column names and rows of one console command.
async fn console(
    port: u16,
    user: &str,
    sql: &str,
) -> Result<(Vec<String>, Vec<Vec<String>>), String> {
    let (c, _d) = connect(port, user, "pgcorral", None)
        .await
        .map_err(|e| e.to_string())?;
    let msgs = c.simple_query(sql).await.map_err(|e| {
        e.as_db_error()
            .map(|d| format!("{}: {}", d.code().code(), d.message()))
            .unwrap_or_else(|| e.to_string())
    })?;
    let mut columns = Vec::new();
    let mut rows = Vec::new();
    for m in msgs {
        match m {
            SimpleQueryMessage::RowDescription(cols) => {
                columns = cols.iter().map(|c| c.name().to_owned()).collect()
            }
            SimpleQueryMessage::Row(r) => rows.push(
                (0..r.len())
                    .map(|i| r.get(i).unwrap_or("").to_owned())
                    .collect(),
            ),
            _ => {}
        }
    }
    Ok((columns, rows))
}

fn value(columns: &[String], row: &[String], name: &str) -> String {
    let i = columns
        .iter()
        .position(|c| c == name)
        .unwrap_or_else(|| panic!("no column {name}"));
    row[i].clone()
}

#[tokio::test]
async fn every_show_command_answers_with_pgbouncer_columns() {
    let s = console_stack();
    let mut c = RawClient::login(s.port, "postgres", "postgres", &[]).await;
    c.value("SELECT 1").await;
    for (cmd, expected) in [
        ("SHOW POOLS", col::POOLS),
        ("SHOW CLIENTS", col::CLIENTS),
        ("SHOW SERVERS", col::SERVERS),
        ("SHOW STATS", col::STATS),
        ("SHOW STATS_TOTALS", col::STATS_TOTALS),
        ("SHOW STATS_AVERAGES", col::STATS_AVERAGES),
        ("SHOW DATABASES", col::DATABASES),
        ("SHOW USERS", col::USERS),
        ("SHOW LISTS", col::LISTS),
        ("SHOW CONFIG", col::CONFIG),
        ("SHOW VERSION", col::VERSION),
        ("SHOW STATE", col::STATE),
        ("show bans;", col::BANS),
    ] {
        let (columns, _) = console(s.port, "admin", cmd).await.unwrap();
        assert_eq!(columns, expected, "{cmd}");
    }
    // PgBouncer's first columns, in PgBouncer's order (as PgBouncer 1.18 answers them).
    assert_eq!(
        &col::POOLS[..16],
        [
            "database",
            "user",
            "cl_active",
            "cl_waiting",
            "cl_active_cancel_req",
            "cl_waiting_cancel_req",
            "sv_active",
            "sv_active_cancel",
            "sv_being_canceled",
            "sv_idle",
            "sv_used",
            "sv_tested",
            "sv_login",
            "maxwait",
            "maxwait_us",
            "pool_mode"
        ]
    );
    let (_, rows) = console(s.port, "admin", "SHOW VERSION").await.unwrap();
    assert_eq!(
        rows[0][0],
        format!("pgcorral {}", env!("CARGO_PKG_VERSION"))
    );
    // The alias database works too.
    let (ok, _d) = connect(s.port, "admin", "pgbouncer", None).await.unwrap();
    ok.simple_query("SHOW POOLS").await.unwrap();
}

#[tokio::test]
async fn counters_move_with_traffic() {
    let s = console_stack();
    let before = console(s.port, "admin", "SHOW STATS_TOTALS").await.unwrap();
    let xacts = |(cols, rows): &(Vec<String>, Vec<Vec<String>>)| -> u64 {
        rows.iter()
            .find(|r| value(cols, r, "database") == "postgres")
            .map(|r| value(cols, r, "xact_count").parse().unwrap())
            .unwrap_or(0)
    };
    common::clients::pgbench_init(s.port);
    let run = pgbench(
        s.port,
        "postgres",
        "postgres",
        None,
        &["-n", "-S", "-c", "4", "-t", "50"],
    );
    assert!(run.success(), "{}", run.stderr);
    let after = console(s.port, "admin", "SHOW STATS_TOTALS").await.unwrap();
    assert!(xacts(&after) >= xacts(&before) + 200, "{after:?}");
    let (cols, rows) = console(s.port, "admin", "SHOW STATS").await.unwrap();
    let row = rows
        .iter()
        .find(|r| value(&cols, r, "database") == "postgres")
        .unwrap();
    assert!(value(&cols, row, "total_received").parse::<u64>().unwrap() > 0);
    assert!(value(&cols, row, "total_sent").parse::<u64>().unwrap() > 0);
    // A client holding a transaction shows as active with a server linked to it.
    let mut holder = RawClient::login(
        s.port,
        "postgres",
        "postgres",
        &[("application_name", "holder")],
    )
    .await;
    holder.query("BEGIN").await.unwrap();
    let (cols, rows) = console(s.port, "admin", "SHOW POOLS").await.unwrap();
    let pool = rows
        .iter()
        .find(|r| value(&cols, r, "user") == "postgres")
        .unwrap();
    assert_eq!(value(&cols, pool, "sv_active"), "1");
    assert_eq!(value(&cols, pool, "pool_mode"), "transaction");
    let (cols, rows) = console(s.port, "admin", "SHOW CLIENTS").await.unwrap();
    let client = rows
        .iter()
        .find(|r| value(&cols, r, "application_name") == "holder")
        .unwrap();
    assert_ne!(value(&cols, client, "link"), "", "linked to its server");
    let (cols, rows) = console(s.port, "admin", "SHOW SERVERS").await.unwrap();
    assert!(
        rows.iter().any(|r| value(&cols, r, "state") == "active"),
        "{rows:?}"
    );
    holder.query("COMMIT").await.unwrap();
}

#[tokio::test]
async fn clients_that_leave_while_waiting_drop_out_of_cl_waiting_and_their_queries_never_run() {
    // pool_size = 1: one client holds the server in a transaction, five more queue for it with
    // an INSERT each, then close their connections. They must leave the queue at once (while
    // the server is still held) and their INSERTs must never reach it.
    let s = console_stack_with("pool_size = 1\nquery_wait_timeout = \"60s\"");
    let port = s.port;
    let mut holder = RawClient::login(port, "postgres", "postgres", &[]).await;
    holder
        .query("CREATE TABLE left_behind (x int)")
        .await
        .unwrap();
    holder.query("BEGIN").await.unwrap();
    let waiting = || async move {
        let (cols, rows) = console(port, "admin", "SHOW POOLS").await.unwrap();
        rows.iter()
            .filter(|r| value(&cols, r, "database") == "postgres")
            .map(|r| value(&cols, r, "cl_waiting").parse::<u64>().unwrap())
            .sum::<u64>()
    };
    let mut leavers = Vec::new();
    for _ in 0..5 {
        let mut c = RawClient::login(port, "postgres", "postgres", &[]).await;
        c.send(&query_message("INSERT INTO left_behind VALUES (1)"))
            .await;
        leavers.push(c);
    }
    wait_until_async("five clients waiting", Duration::from_secs(20), || async {
        waiting().await == 5
    })
    .await;
    drop(leavers);
    wait_until_async(
        "the clients that left are no longer waiting",
        Duration::from_secs(20),
        || async { waiting().await == 0 },
    )
    .await;
    holder.query("COMMIT").await.unwrap();
    let mut late = RawClient::login(port, "postgres", "postgres", &[]).await;
    assert_eq!(late.value("SELECT count(*) FROM left_behind").await, "0");
    assert_eq!(s.server_connections("postgres"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pause_holds_new_transactions_until_resume() {
    let s = console_stack();
    let port = s.port;
    let mut c = RawClient::login(port, "postgres", "postgres", &[]).await;
    c.value("SELECT 1").await;
    console(port, "admin", "PAUSE postgres").await.unwrap();
    let (cols, rows) = console(port, "admin", "SHOW DATABASES").await.unwrap();
    assert_eq!(value(&cols, &rows[0], "paused"), "1");
    // Timed from before the spawn: a task scheduled late must not shorten the measured wait.
    let started = Instant::now();
    let waiting = tokio::spawn(async move {
        let v = c.value("SELECT 42").await;
        (v, started.elapsed())
    });
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(!waiting.is_finished(), "the query waits while paused");
    console(port, "admin", "RESUME postgres").await.unwrap();
    let (v, waited) = tokio::time::timeout(Duration::from_secs(5), waiting)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(v, "42");
    assert!(waited >= Duration::from_millis(350), "{waited:?}");
    // The same with signals: SIGUSR1 pauses everything, SIGUSR2 resumes.
    let mut d = RawClient::login(port, "postgres", "postgres", &[]).await;
    s.pooler.signal(10);
    common::wait::wait_until("the pause is logged", Duration::from_secs(5), || {
        s.pooler.log().contains("SIGUSR1")
    });
    let held = tokio::spawn(async move { d.value("SELECT 7").await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!held.is_finished());
    s.pooler.signal(12);
    assert_eq!(
        tokio::time::timeout(Duration::from_secs(5), held)
            .await
            .unwrap()
            .unwrap(),
        "7"
    );
}

#[tokio::test]
async fn console_access_rules() {
    let s = console_stack();
    // A stats user may SHOW, not change anything.
    assert!(console(s.port, "watcher", "SHOW POOLS").await.is_ok());
    let err = console(s.port, "watcher", "PAUSE").await.unwrap_err();
    assert!(err.starts_with("42501"), "{err}");
    // Everyone else is turned away at login.
    let err = connect(s.port, "postgres", "pgcorral", None)
        .await
        .unwrap_err();
    assert_eq!(err.code().unwrap().code(), "28000");
    // Unknown commands point at SHOW HELP; the connection stays usable.
    let (c, _d) = connect(s.port, "admin", "pgcorral", None).await.unwrap();
    let err = c.simple_query("SHOW NOPE").await.unwrap_err();
    let db = err.as_db_error().unwrap();
    assert_eq!(db.code().code(), "08P01");
    assert!(db.message().contains("use SHOW HELP"), "{}", db.message());
    c.simple_query("SHOW VERSION").await.unwrap();
}

#[tokio::test]
async fn ban_and_unban_move_traffic() {
    let primary = PgCluster::start_with(PgOptions {
        replication: true,
        ..Default::default()
    });
    let replica = primary.start_replica();
    let port = Pooler::free_port();
    let toml = format!(
        "[general]\nlisten = \"127.0.0.1:{port}\"\nauth_type = \"trust\"\nadmin_users = [\"admin\"]\n\
         [users.postgres]\n[users.admin]\n[pools.postgres]\nload_balancing = \"round_robin\"\n\
         healthcheck_interval = \"200ms\"\n\
         servers = [{{ host = \"127.0.0.1\", port = {}, role = \"primary\" }}, \
                    {{ host = \"127.0.0.1\", port = {}, role = \"replica\" }}]\n",
        primary.port, replica.port
    );
    let _pooler = Pooler::start(&bin(), &toml);
    let mut c = RawClient::login(port, "postgres", "postgres", &[]).await;
    let ports = |seen: &[String]| {
        seen.iter()
            .filter(|p| **p == replica.port.to_string())
            .count()
    };
    let mut seen = Vec::new();
    for _ in 0..10 {
        seen.push(c.value("SELECT inet_server_port()").await);
    }
    assert_eq!(ports(&seen), 5, "round robin over both");
    console(port, "admin", &format!("BAN 127.0.0.1:{} 60", replica.port))
        .await
        .unwrap();
    let (cols, rows) = console(port, "admin", "SHOW BANS").await.unwrap();
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(value(&cols, &rows[0], "port"), replica.port.to_string());
    assert!(value(&cols, &rows[0], "reason").contains("admin console"));
    let mut seen = Vec::new();
    for _ in 0..10 {
        seen.push(c.value("SELECT inet_server_port()").await);
    }
    assert_eq!(ports(&seen), 0, "no traffic to the banned server: {seen:?}");
    console(port, "admin", &format!("UNBAN 127.0.0.1:{}", replica.port))
        .await
        .unwrap();
    let mut seen = Vec::new();
    for _ in 0..10 {
        seen.push(c.value("SELECT inet_server_port()").await);
    }
    assert!(ports(&seen) > 0, "traffic returns after UNBAN: {seen:?}");
    let err = console(port, "admin", "BAN 10.9.9.9:1").await.unwrap_err();
    assert!(err.starts_with("22023"), "{err}");
}

#[tokio::test]
async fn shutdown_on_the_console_exits_cleanly() {
    let mut s = console_stack();
    console(s.port, "admin", "SHUTDOWN").await.ok();
    let status = s.pooler.wait_exit(Duration::from_secs(10)).expect("exited");
    assert_eq!(status.code(), Some(0));
}

#[tokio::test]
async fn reconnect_disable_enable_kill_and_set() {
    let s = console_stack();
    let mut a = RawClient::login(s.port, "postgres", "postgres", &[]).await;
    let pid = a.value("SELECT pg_backend_pid()").await;
    // RECONNECT: the next transaction runs on a new server connection.
    console(s.port, "admin", "RECONNECT postgres")
        .await
        .unwrap();
    assert_ne!(a.value("SELECT pg_backend_pid()").await, pid);
    // DISABLE refuses new clients (existing ones carry on); ENABLE lets them in again.
    console(s.port, "admin", "DISABLE postgres").await.unwrap();
    let err = RawClient::try_login(s.port, "postgres", "postgres", &[])
        .await
        .err()
        .unwrap();
    assert_eq!(err[&b'C'], "57P03", "{err:?}");
    assert_eq!(a.value("SELECT 1").await, "1");
    console(s.port, "admin", "ENABLE postgres").await.unwrap();
    RawClient::login(s.port, "postgres", "postgres", &[]).await;
    let err = console(s.port, "admin", "DISABLE nowhere")
        .await
        .unwrap_err();
    assert!(err.starts_with("3D000"), "{err}");
    // SET changes a setting at runtime through the same validation as RELOAD.
    console(s.port, "admin", "SET pools.postgres.pool_size = 7")
        .await
        .unwrap();
    let (cols, rows) = console(s.port, "admin", "SHOW DATABASES").await.unwrap();
    assert_eq!(value(&cols, &rows[0], "pool_size"), "7");
    let err = console(s.port, "admin", "SET pools.postgres.pool_size = lots")
        .await
        .unwrap_err();
    assert!(
        err.starts_with("22023") && err.contains("pools.postgres.pool_size"),
        "{err}"
    );
    let err = console(s.port, "admin", "SET listen = '0.0.0.0:1'")
        .await
        .unwrap_err();
    assert!(err.starts_with("55P02"), "{err}");
    // KILL ends the database's clients; new ones wait until RESUME.
    console(s.port, "admin", "KILL postgres").await.unwrap();
    let err = a.expect_error(Duration::from_secs(5)).await;
    assert_eq!(err[&b'C'], "57P01");
    let mut b = RawClient::login(s.port, "postgres", "postgres", &[]).await;
    let held = tokio::spawn(async move { b.value("SELECT 9").await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!held.is_finished(), "paused after KILL");
    console(s.port, "admin", "RESUME postgres").await.unwrap();
    assert_eq!(
        tokio::time::timeout(Duration::from_secs(5), held)
            .await
            .unwrap()
            .unwrap(),
        "9"
    );
}

#[tokio::test]
async fn show_prepared_statements_and_show_pins_count_what_happened() {
    let s = console_stack();
    let (client, _d) = connect(s.port, "postgres", "postgres", None).await.unwrap();
    let st = client.prepare("SELECT $1::int4 + 1").await.unwrap();
    for i in 0..3i32 {
        let r: i32 = client.query_one(&st, &[&i]).await.unwrap().get(0);
        assert_eq!(r, i + 1);
    }
    let (columns, rows) = console(s.port, "admin", "SHOW PREPARED_STATEMENTS")
        .await
        .unwrap();
    assert_eq!(columns, col::PREPARED_STATEMENTS);
    let row = rows.iter().find(|r| r[0] == "postgres").expect("pool row");
    let n = |name: &str| value(&columns, row, name).parse::<u64>().unwrap();
    assert!(
        n("client_parses") >= 1 && n("server_parses") >= 1,
        "{row:?}"
    );
    assert!(n("binds") >= 3, "{row:?}");

    let mut listener = RawClient::login(s.port, "postgres", "postgres", &[]).await;
    listener.query("LISTEN counted").await.unwrap();
    // The pin is settled just after the client sees its answer: wait for it.
    let mut seen = None;
    for _ in 0..250 {
        let (columns, rows) = console(s.port, "admin", "SHOW PINS").await.unwrap();
        assert_eq!(columns, col::PINS);
        let row = rows.iter().find(|r| r[0] == "postgres").cloned();
        if let Some(r) = row.filter(|r| value(&columns, r, "listen") == "1") {
            seen = Some((value(&columns, &r, "pinned_now"), r));
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (pinned_now, row) = seen.expect("SHOW PINS never counted the LISTEN");
    assert_eq!(pinned_now, "1", "{row:?}");
}

#[tokio::test]
async fn console_rights_are_checked_at_every_command_against_the_current_config() {
    let s = console_stack();
    let (admin, _d1) = connect(s.port, "admin", "pgcorral", None).await.unwrap();
    let (watcher, _d2) = connect(s.port, "watcher", "pgcorral", None).await.unwrap();
    let code = |r: Result<Vec<SimpleQueryMessage>, tokio_postgres::Error>| {
        r.err()
            .and_then(|e| e.as_db_error().map(|d| d.code().code().to_owned()))
    };
    // A stats user may look, not act: KILL_CLIENT's cousins included.
    assert!(watcher.simple_query("SHOW POOLS").await.is_ok());
    for cmd in [
        "KILL postgres",
        "PAUSE",
        "RELOAD",
        "SHUTDOWN",
        "SET pool_size = 3",
    ] {
        assert_eq!(
            code(watcher.simple_query(cmd).await).as_deref(),
            Some("42501"),
            "{cmd}"
        );
    }
    // Take `admin` out of admin_users: its open session loses its rights at once.
    let path = &s.pooler.config_path;
    let text = std::fs::read_to_string(path).unwrap();
    std::fs::write(
        path,
        text.replace("admin_users = [\"admin\"]", "admin_users = [\"postgres\"]"),
    )
    .unwrap();
    assert!(admin.simple_query("RELOAD").await.is_ok());
    for cmd in ["SHOW POOLS", "PAUSE", "RESUME"] {
        assert_eq!(
            code(admin.simple_query(cmd).await).as_deref(),
            Some("42501"),
            "{cmd}"
        );
    }
    assert!(watcher.simple_query("SHOW POOLS").await.is_ok());
}
