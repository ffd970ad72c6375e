//! The wire protocol through pgcorral with a real driver (tokio-postgres) and psql: simple and
//! extended queries, pipelining, COPY both ways, large values, notices, notifications, errors
//! in the middle of things, and cancellation.

mod common;

use std::time::Duration;

use common::clients::{connect, psql};
use common::stack::{Stack, StackConfig};
use common::wait::wait_until;
use futures_util::{SinkExt, StreamExt, TryStreamExt};

fn driver_stack() -> Stack {
    // tokio-postgres prepares named statements: transaction mode renames them per server
    // connection, and LISTEN pins the server connection to its client.
    Stack::start_with(StackConfig {
        pool: "pool_mode = \"transaction\"".into(),
        ..Default::default()
    })
}

#[tokio::test]
async fn simple_and_extended_queries_with_parameters() {
    let stack = driver_stack();
    let (client, _driver) = connect(stack.port, "postgres", "postgres", None)
        .await
        .unwrap();
    let msgs = client
        .simple_query("SELECT 1 AS one; SELECT 'two' AS two")
        .await
        .unwrap();
    let rows: Vec<_> = msgs
        .iter()
        .filter_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(r) => Some(r.get(0).unwrap().to_owned()),
            _ => None,
        })
        .collect();
    assert_eq!(rows, ["1", "two"]);
    let row = client
        .query_one("SELECT $1::int8 * 2, $2::text || '!'", &[&21i64, &"hi"])
        .await
        .unwrap();
    assert_eq!(row.get::<_, i64>(0), 42);
    assert_eq!(row.get::<_, String>(1), "hi!");
    let stmt = client.prepare("SELECT $1::int4 + 1").await.unwrap();
    for i in 0..5 {
        let r = client.query_one(&stmt, &[&i]).await.unwrap();
        assert_eq!(r.get::<_, i32>(0), i + 1);
    }
}

#[tokio::test]
async fn pipelined_queries_keep_their_order() {
    let stack = driver_stack();
    let (client, _driver) = connect(stack.port, "postgres", "postgres", None)
        .await
        .unwrap();
    let stmt = client.prepare("SELECT $1::int4").await.unwrap();
    // tokio-postgres pipelines requests that are polled together.
    let values: Vec<i32> = (0..200).collect();
    let futures: Vec<_> = values
        .iter()
        .map(|i| {
            let (client, stmt) = (&client, &stmt);
            async move { client.query_one(stmt, &[i]).await }
        })
        .collect();
    let results = futures_util::future::join_all(futures).await;
    for (i, r) in results.into_iter().enumerate() {
        assert_eq!(r.unwrap().get::<_, i32>(0), i as i32);
    }
}

#[tokio::test]
async fn copy_in_and_copy_out_round_trip() {
    let stack = driver_stack();
    let (client, _driver) = connect(stack.port, "postgres", "postgres", None)
        .await
        .unwrap();
    client
        .batch_execute("CREATE TABLE copied (id int, name text)")
        .await
        .unwrap();
    let sink = client.copy_in("COPY copied FROM STDIN").await.unwrap();
    futures_util::pin_mut!(sink);
    let mut data = String::new();
    for i in 0..20_000 {
        data.push_str(&format!("{i}\tname {i}\n"));
    }
    // Send in chunks that split rows, as drivers do.
    for chunk in data.as_bytes().chunks(7_777) {
        sink.send(bytes::Bytes::copy_from_slice(chunk))
            .await
            .unwrap();
    }
    assert_eq!(sink.finish().await.unwrap(), 20_000);
    let out = client
        .copy_out("COPY (SELECT * FROM copied ORDER BY id) TO STDOUT")
        .await
        .unwrap();
    let chunks: Vec<bytes::Bytes> = out.try_collect().await.unwrap();
    let text: Vec<u8> = chunks.concat();
    assert_eq!(String::from_utf8(text).unwrap(), data);
}

#[tokio::test]
async fn copy_through_transaction_mode_with_psql() {
    let stack = Stack::start();
    let out = psql(
        stack.port,
        "postgres",
        "postgres",
        None,
        "CREATE TABLE t (a int); COPY t FROM PROGRAM 'seq 1 1000'; SELECT sum(a) FROM t;",
    );
    // COPY FROM PROGRAM runs server side; the client-side COPY is below.
    assert!(out.success(), "{}", out.stderr);
    let copy_in = std::process::Command::new("/usr/lib/postgresql/15/bin/psql")
        .args([
            "-X",
            "-At",
            "-v",
            "ON_ERROR_STOP=1",
            "-h",
            "127.0.0.1",
            "-p",
        ])
        .arg(stack.port.to_string())
        .args([
            "-U",
            "postgres",
            "-d",
            "postgres",
            "-c",
            "COPY t FROM STDIN",
            "-c",
            "SELECT count(*) FROM t",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .map(|mut child| {
            use std::io::Write;
            let mut stdin = child.stdin.take().unwrap();
            for i in 0..500 {
                writeln!(stdin, "{i}").unwrap();
            }
            drop(stdin);
            child.wait_with_output().unwrap()
        })
        .unwrap();
    assert!(copy_in.status.success());
    let stdout = String::from_utf8_lossy(&copy_in.stdout).into_owned();
    assert_eq!(stdout.lines().collect::<Vec<_>>(), ["COPY 500", "1500"]);
}

#[tokio::test]
async fn large_values_stream_both_ways() {
    let stack = Stack::start();
    let (client, _driver) = connect(stack.port, "postgres", "postgres", None)
        .await
        .unwrap();
    let big = "x".repeat(12 * 1024 * 1024);
    // Unnamed statement in one round trip: fine in transaction mode.
    let rows = client
        .simple_query(&format!(
            "SELECT length('{big}') AS n, repeat('y', 9000000) AS y"
        ))
        .await
        .unwrap();
    let row = rows
        .iter()
        .find_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(r) => Some(r),
            _ => None,
        })
        .unwrap();
    assert_eq!(row.get(0), Some("12582912"));
    assert_eq!(row.get(1).map(str::len), Some(9_000_000));
}

#[tokio::test]
async fn errors_in_the_middle_leave_the_connection_usable() {
    let stack = driver_stack();
    let (client, _driver) = connect(stack.port, "postgres", "postgres", None)
        .await
        .unwrap();
    let err = client
        .simple_query("SELECT 1; SELECT 1/0; SELECT 3")
        .await
        .unwrap_err();
    assert_eq!(err.code().unwrap().code(), "22012");
    let err = client
        .query_one("SELECT $1::int4 / 0", &[&1i32])
        .await
        .unwrap_err();
    assert_eq!(err.code().unwrap().code(), "22012");
    let r = client.query_one("SELECT 7", &[]).await.unwrap();
    assert_eq!(r.get::<_, i32>(0), 7);
    let tx = client
        .simple_query("BEGIN; SELECT nope; ")
        .await
        .unwrap_err();
    assert_eq!(tx.code().unwrap().code(), "42703");
    let aborted = client.simple_query("SELECT 1").await.unwrap_err();
    assert_eq!(aborted.code().unwrap().code(), "25P02");
    client.simple_query("ROLLBACK").await.unwrap();
    client.simple_query("SELECT 1").await.unwrap();
}

#[test]
fn notices_reach_psql() {
    let stack = Stack::start();
    let out = psql(
        stack.port,
        "postgres",
        "postgres",
        None,
        "DO $$ BEGIN RAISE NOTICE 'hello from the server'; END $$",
    );
    assert!(out.success(), "{}", out.stderr);
    assert!(
        out.stderr.contains("NOTICE:  hello from the server"),
        "{}",
        out.stderr
    );
}

#[tokio::test]
async fn notifications_reach_a_listening_session_client() {
    let stack = driver_stack();
    let mut config = tokio_postgres::Config::new();
    config
        .host("127.0.0.1")
        .port(stack.port)
        .user("postgres")
        .dbname("postgres");
    let (listener, mut connection) = config.connect(tokio_postgres::NoTls).await.unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut messages = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
        while let Some(Ok(m)) = messages.next().await {
            if let tokio_postgres::AsyncMessage::Notification(n) = m {
                let _ = tx.send((n.channel().to_owned(), n.payload().to_owned()));
            }
        }
    });
    listener
        .batch_execute("LISTEN pgcorral_test")
        .await
        .unwrap();
    let (sender, _d) = connect(stack.port, "postgres", "postgres", None)
        .await
        .unwrap();
    sender
        .batch_execute("NOTIFY pgcorral_test, 'payload 1'")
        .await
        .unwrap();
    let got = tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .expect("notification within 10 s")
        .unwrap();
    assert_eq!(got, ("pgcorral_test".to_owned(), "payload 1".to_owned()));
}

// Multi-threaded: the blocking wait below must not stall the task running the query.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_request_stops_a_running_query() {
    let stack = Stack::start();
    let (client, _driver) = connect(stack.port, "postgres", "postgres", None)
        .await
        .unwrap();
    let token = client.cancel_token();
    let running = tokio::spawn(async move { client.simple_query("SELECT pg_sleep(60)").await });
    let pg = &stack.pg;
    wait_until("the query is running", Duration::from_secs(10), || {
        pg.psql("SELECT count(*) FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(60)' AND state = 'active'") == "1"
    });
    token.cancel_query(tokio_postgres::NoTls).await.unwrap();
    let result = tokio::time::timeout(Duration::from_secs(10), running)
        .await
        .expect("query ended within 10 s")
        .unwrap();
    assert_eq!(result.unwrap_err().code().unwrap().code(), "57014");
}

#[tokio::test]
async fn a_cancel_with_a_wrong_key_does_nothing() {
    let stack = Stack::start();
    let (client, _driver) = connect(stack.port, "postgres", "postgres", None)
        .await
        .unwrap();
    let mut s = common::clients::raw_connect(stack.port).await;
    common::clients::send(&mut s, &common::clients::cancel_request(12345, 678)).await;
    let r = client.simple_query("SELECT pg_sleep(0.5), 1").await;
    assert!(r.is_ok(), "{r:?}");
}
