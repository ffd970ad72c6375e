//! Named prepared statements in transaction mode: pgbench -M prepared, tokio-postgres with
//! many statements over few server connections, eviction, errors in the middle of a
//! pipeline, and DDL that changes a statement's result type.

mod common;

use std::time::Duration;

use common::clients::{
    connect, error_fields, pgbench, pgbench_failed, pgbench_init, pgbench_tps, read_message,
};
use common::raw::RawClient;
use common::stack::{Stack, StackConfig};

fn transaction_stack(pool: &str) -> Stack {
    Stack::start_with(StackConfig {
        pool: format!("pool_mode = \"transaction\"\n{pool}"),
        ..Default::default()
    })
}

#[test]
fn pgbench_prepared_with_more_clients_than_server_connections() {
    let stack = transaction_stack("pool_size = 4");
    pgbench_init(stack.port);
    let out = pgbench(
        stack.port,
        "postgres",
        "postgres",
        None,
        // One thread per client: pgbench prepares with a blocking call on the client's first
        // use of a statement, which in a shared thread would wait for a server connection
        // held by that thread's other clients (the same through any transaction pooler).
        &["-n", "-c", "16", "-j", "16", "-T", "3", "-M", "prepared"],
    );
    assert!(
        out.success(),
        "pgbench failed: {}{}",
        out.stdout,
        out.stderr
    );
    assert_eq!(pgbench_failed(&out), Some(0), "{}", out.stdout);
    assert!(pgbench_tps(&out).unwrap_or(0.0) > 0.0, "{}", out.stdout);
    assert!(stack.server_connections("postgres") <= 4);
}

#[tokio::test]
async fn tokio_postgres_clients_share_two_server_connections() {
    let stack = transaction_stack("pool_size = 2");
    let mut tasks = Vec::new();
    for c in 0..8i64 {
        let port = stack.port;
        tasks.push(tokio::spawn(async move {
            let (client, _driver) = connect(port, "postgres", "postgres", None)
                .await
                .expect("connect");
            let add = client.prepare("SELECT $1::int8 + $2::int8").await.unwrap();
            let text = client
                .prepare("SELECT $1::text || '-' || $2::int4::text")
                .await
                .unwrap();
            let rows = client
                .prepare("SELECT g FROM generate_series(1, $1::int4) g")
                .await
                .unwrap();
            for i in 0..100i64 {
                let r: i64 = client.query_one(&add, &[&c, &i]).await.unwrap().get(0);
                assert_eq!(r, c + i);
                let t: String = client
                    .query_one(&text, &[&format!("c{c}"), &(i as i32)])
                    .await
                    .unwrap()
                    .get(0);
                assert_eq!(t, format!("c{c}-{i}"));
                let n = client.query(&rows, &[&((i % 7) as i32)]).await.unwrap();
                assert_eq!(n.len() as i64, i % 7);
                // A fresh statement now and then (tokio-postgres prepares and closes it).
                if i % 25 == 0 {
                    let v: i64 = client
                        .query_one(&format!("SELECT {i}::int8 * {c}"), &[])
                        .await
                        .unwrap()
                        .get(0);
                    assert_eq!(v, i * c);
                }
            }
        }));
    }
    for t in tasks {
        t.await.expect("client task");
    }
    assert!(stack.server_connections("postgres") <= 2);
}

#[tokio::test]
async fn eviction_keeps_at_most_max_prepared_statements_per_server() {
    let stack = transaction_stack("pool_size = 1\nmax_prepared_statements = 2");
    let (client, _driver) = connect(stack.port, "postgres", "postgres", None)
        .await
        .unwrap();
    let mut statements = Vec::new();
    for n in 0..5i32 {
        statements.push(
            client
                .prepare(&format!("SELECT {n} + $1::int4"))
                .await
                .unwrap(),
        );
    }
    for round in 0..3i32 {
        for (n, s) in statements.iter().enumerate() {
            let v: i32 = client.query_one(s, &[&round]).await.unwrap().get(0);
            assert_eq!(v, n as i32 + round);
        }
    }
    let on_server: i64 = client
        .query_one(
            "SELECT count(*) FROM pg_prepared_statements WHERE name LIKE 'pgcorral_%'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(
        on_server <= 2,
        "the server connection has {on_server} statements"
    );
}

/// Builds extended-protocol messages.
mod wire {
    fn msg(tag: u8, body: &[u8]) -> Vec<u8> {
        let mut m = vec![tag];
        m.extend_from_slice(&((body.len() + 4) as u32).to_be_bytes());
        m.extend_from_slice(body);
        m
    }

    fn cstr(v: &mut Vec<u8>, s: &str) {
        v.extend_from_slice(s.as_bytes());
        v.push(0);
    }

    pub fn parse(name: &str, sql: &str) -> Vec<u8> {
        let mut b = Vec::new();
        cstr(&mut b, name);
        cstr(&mut b, sql);
        b.extend_from_slice(&0u16.to_be_bytes());
        msg(b'P', &b)
    }

    pub fn bind(statement: &str) -> Vec<u8> {
        let mut b = Vec::new();
        cstr(&mut b, "");
        cstr(&mut b, statement);
        b.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
        msg(b'B', &b)
    }

    pub fn describe_statement(name: &str) -> Vec<u8> {
        let mut b = vec![b'S'];
        cstr(&mut b, name);
        msg(b'D', &b)
    }

    pub fn close_statement(name: &str) -> Vec<u8> {
        let mut b = vec![b'S'];
        cstr(&mut b, name);
        msg(b'C', &b)
    }

    pub fn execute() -> Vec<u8> {
        msg(b'E', &[0, 0, 0, 0, 0])
    }

    pub fn sync() -> Vec<u8> {
        msg(b'S', &[])
    }
}

/// Sends `messages` in one write and returns the tags of the replies through the
/// ReadyForQuery that answers the last Sync (`syncs` of them), with error codes, and the
/// errors' messages.
async fn exchange(
    c: &mut RawClient,
    messages: &[Vec<u8>],
    syncs: usize,
) -> (Vec<String>, Vec<String>) {
    c.send(&messages.concat()).await;
    let mut seen = Vec::new();
    let mut errors = Vec::new();
    let mut readies = 0;
    while readies < syncs {
        let (tag, body) = read_message(&mut c.stream, Duration::from_secs(20))
            .await
            .expect("a reply before the deadline");
        match tag {
            b'E' => {
                let f = error_fields(&body);
                seen.push(format!("E{}", f[&b'C']));
                errors.push(f[&b'M'].clone());
            }
            b'Z' => {
                readies += 1;
                seen.push(format!("Z{}", body[0] as char));
            }
            t => seen.push((t as char).to_string()),
        }
    }
    (seen, errors)
}

#[tokio::test]
async fn replies_keep_their_order_through_renaming_injection_and_errors() {
    let stack = transaction_stack("pool_size = 1");
    let mut a = RawClient::login(stack.port, "postgres", "postgres", &[]).await;
    let mut b = RawClient::login(stack.port, "postgres", "postgres", &[]).await;
    use wire::*;
    // A pipeline: two statements, one of them bound twice, Describe and Close in between.
    let got = exchange(
        &mut a,
        &[
            parse("s1", "SELECT 1"),
            parse("s2", "SELECT 'two'"),
            describe_statement("s1"),
            bind("s1"),
            execute(),
            bind("s2"),
            execute(),
            close_statement("s2"),
            bind("s1"),
            execute(),
            sync(),
        ],
        1,
    )
    .await
    .0;
    assert_eq!(
        got,
        ["1", "1", "t", "T", "2", "D", "C", "2", "D", "C", "3", "2", "D", "C", "ZI"]
    );
    // Another client prepares the same text on the same server connection: the server
    // already has it, and the client still sees ParseComplete in its place.
    let got = exchange(
        &mut b,
        &[parse("mine", "SELECT 1"), bind("mine"), execute(), sync()],
        1,
    )
    .await
    .0;
    assert_eq!(got, ["1", "2", "D", "C", "ZI"]);
    // An error mid-pipeline: the rest up to Sync is skipped, and a failed Parse leaves no
    // statement behind (the next Bind fails with 26000 naming the client's statement).
    let (got, errors) = exchange(
        &mut a,
        &[
            parse("bad", "SELEC 1"),
            bind("bad"),
            execute(),
            sync(),
            bind("bad"),
            execute(),
            sync(),
            parse("bad", "SELECT 'fixed'"),
            bind("bad"),
            execute(),
            bind("s2"),
            sync(),
        ],
        3,
    )
    .await;
    assert_eq!(
        got,
        ["E42601", "ZI", "E26000", "ZI", "1", "2", "D", "C", "E26000", "ZI"]
    );
    assert_eq!(errors[1], "prepared statement \"bad\" does not exist");
    assert_eq!(errors[2], "prepared statement \"s2\" does not exist");
    // s1 still works for a, after b's use of the same server statement.
    let got = exchange(&mut a, &[bind("s1"), execute(), sync()], 1)
        .await
        .0;
    assert_eq!(got, ["2", "D", "C", "ZI"]);
}

#[tokio::test]
async fn ddl_that_changes_a_result_type_does_not_break_the_statement_forever() {
    let stack = transaction_stack("pool_size = 1");
    stack.pg.psql("CREATE TABLE shape (a int)");
    let (client, _driver) = connect(stack.port, "postgres", "postgres", None)
        .await
        .unwrap();
    let s = client.prepare("SELECT * FROM shape").await.unwrap();
    client.query(&s, &[]).await.unwrap();
    stack.pg.psql("ALTER TABLE shape ADD COLUMN b int");
    let err = client.query(&s, &[]).await.unwrap_err();
    assert_eq!(
        err.code().map(|c| c.code()),
        Some("0A000"),
        "expected cached plan error, got {err}"
    );
    // The application prepares again, as drivers do after this error.
    let s = client.prepare("SELECT * FROM shape").await.unwrap();
    assert_eq!(s.columns().len(), 2);
    client.query(&s, &[]).await.unwrap();
}

#[tokio::test]
async fn sql_prepare_execute_deallocate_pass_through() {
    let stack = transaction_stack("pool_size = 1");
    let mut c = RawClient::login(stack.port, "postgres", "postgres", &[]).await;
    c.query("PREPARE q(int) AS SELECT $1 * 2").await.unwrap();
    assert_eq!(c.value("EXECUTE q(21)").await, "42");
    c.query("DEALLOCATE q").await.unwrap();
    let e = c.query("EXECUTE q(1)").await.unwrap_err();
    assert_eq!(e[&b'C'], "26000");
    // DEALLOCATE ALL reaches the server while SQL-level statements are there.
    c.query("PREPARE r AS SELECT 1").await.unwrap();
    c.query("DEALLOCATE ALL").await.unwrap();
    let e = c.query("EXECUTE r").await.unwrap_err();
    assert_eq!(e[&b'C'], "26000");
}
