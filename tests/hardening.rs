//! Hostile clients: one that sends without reading its output, one that announces a 1 GiB
//! CopyData message, and 10,000 logins left half-finished. Each is cut off without costing
//! another client its connection, its server or its answers.

mod common;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::clients::{
    connect, error_fields, query_message, raw_connect, read_message, send, startup_message,
};
use common::raw::RawClient;
use common::stack::{Stack, StackConfig};
use tokio::io::AsyncWriteExt;

/// Resident memory of a process, in KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Raises this process's open-file limit to its hard limit (10,000 sockets are opened here).
fn raise_fd_limit() -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit write to and read from a valid rlimit struct.
    unsafe {
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim);
        lim.rlim_cur = lim.rlim_max;
        libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
    }
    lim.rlim_cur
}

#[tokio::test]
async fn a_client_that_sends_without_reading_is_cut_off_and_others_carry_on() {
    let s = Stack::start_with(StackConfig {
        general: "auth_type = \"trust\"\nclient_write_timeout = \"2s\"".into(),
        pool: "pool_size = 2".into(),
        ..Default::default()
    });
    let mut bystander = RawClient::login(s.port, "postgres", "postgres", &[]).await;
    assert_eq!(bystander.value("SELECT 1").await, "1");
    let rss_before = rss_kib(s.pooler.pid);

    // Each query asks for 1 MB of CopyData output; the client never reads any of it and
    // goes on sending until 1 GiB is out or the pooler cuts it off.
    let hostile = RawClient::login(s.port, "postgres", "postgres", &[]).await;
    let mut stream = hostile.stream;
    let sent = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let query =
        query_message("COPY (SELECT repeat('x', 1000) FROM generate_series(1, 1000)) TO STDOUT");
    let batch: Vec<u8> = query
        .iter()
        .copied()
        .cycle()
        .take(query.len() * 64)
        .collect();
    let writer = tokio::spawn({
        let sent = sent.clone();
        let done = done.clone();
        async move {
            let result = loop {
                if sent.load(Ordering::Relaxed) >= 1 << 30 {
                    break Ok(());
                }
                match stream.write_all(&batch).await {
                    Ok(()) => sent.fetch_add(batch.len() as u64, Ordering::Relaxed),
                    Err(e) => break Err(e),
                };
            };
            done.store(true, Ordering::Relaxed);
            (result, stream)
        }
    });

    // Meanwhile the other client is served, on the pool's other server connection.
    let started = Instant::now();
    let mut served = 0;
    while !done.load(Ordering::Relaxed) && started.elapsed() < Duration::from_secs(30) {
        assert_eq!(bystander.value("SELECT 41 + 1").await, "42");
        served += 1;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let Ok(joined) = tokio::time::timeout(Duration::from_secs(10), writer).await else {
        panic!(
            "the pooler never cut off a client that read nothing ({} bytes sent)",
            sent.load(Ordering::Relaxed)
        );
    };
    let (result, _stream) = joined.unwrap();
    assert!(
        result.is_err(),
        "the pooler never cut off a client that read nothing ({} bytes sent in {:?})",
        sent.load(Ordering::Relaxed),
        started.elapsed()
    );
    assert!(
        sent.load(Ordering::Relaxed) < 1 << 30,
        "the whole GiB went through"
    );
    assert!(served > 10, "the bystander was served {served} times");
    let grown = rss_kib(s.pooler.pid).saturating_sub(rss_before);
    assert!(
        grown < 64 * 1024,
        "pgcorral grew by {grown} KiB holding output for a client that did not read"
    );
    assert!(
        s.pooler.log().contains("took none of its results"),
        "no eviction in the log"
    );
    // The evicted client's server connection was closed, not leaked: two clients can hold
    // both of the pool's connections at once.
    let mut other = RawClient::login(s.port, "postgres", "postgres", &[]).await;
    bystander.query("BEGIN").await.unwrap();
    other.query("BEGIN").await.unwrap();
    assert_ne!(
        bystander.value("SELECT pg_backend_pid()").await,
        other.value("SELECT pg_backend_pid()").await
    );
    bystander.query("COMMIT").await.unwrap();
    other.query("COMMIT").await.unwrap();
}

#[tokio::test]
async fn a_1_gib_copy_data_message_is_refused_at_its_header_and_the_server_recovers() {
    let s = Stack::start_with(StackConfig {
        pool: "pool_size = 2".into(),
        ..Default::default()
    });
    let mut setup = RawClient::login(s.port, "postgres", "postgres", &[]).await;
    setup
        .query("CREATE TABLE IF NOT EXISTS sink (t text)")
        .await
        .unwrap();
    drop(setup);
    // A bystander inside a transaction, on the pool's other server connection.
    let mut bystander = RawClient::login(s.port, "postgres", "postgres", &[]).await;
    bystander.query("BEGIN").await.unwrap();
    bystander
        .query("INSERT INTO sink VALUES ('kept')")
        .await
        .unwrap();
    let rss_before = rss_kib(s.pooler.pid);

    let mut c = RawClient::login(s.port, "postgres", "postgres", &[]).await;
    c.send(&query_message("COPY sink FROM STDIN")).await;
    // CopyData announcing 1 GiB of payload (PostgreSQL's own limit is 1 GiB - 2), then the
    // first bytes of it.
    let mut msg = vec![b'd'];
    msg.extend_from_slice(&((1u32 << 30) + 4).to_be_bytes());
    msg.extend_from_slice(&[b'x'; 64 * 1024]);
    let _ = c.stream.write_all(&msg).await;
    let err = c.expect_error(Duration::from_secs(10)).await;
    assert_eq!(err[&b'C'], "08P01", "{err:?}");
    assert!(err[&b'M'].contains("max_message_size"), "{err:?}");
    assert!(c.closed_within(Duration::from_secs(10)).await);
    let grown = rss_kib(s.pooler.pid).saturating_sub(rss_before);
    assert!(
        grown < 16 * 1024,
        "pgcorral grew by {grown} KiB for a refused message"
    );

    // The bystander's transaction went on untouched.
    assert_eq!(bystander.value("SELECT count(*) FROM sink").await, "1");
    bystander.query("COMMIT").await.unwrap();
    // The hostile client's server connection was repaired (COPY failed, rolled back), not
    // lost: two clients can again hold both of the pool's connections at once.
    let mut next = RawClient::login(s.port, "postgres", "postgres", &[]).await;
    next.query("BEGIN").await.unwrap();
    bystander.query("BEGIN").await.unwrap();
    assert_eq!(next.value("SELECT t FROM sink").await, "kept");
    assert_ne!(
        bystander.value("SELECT pg_backend_pid()").await,
        next.value("SELECT pg_backend_pid()").await
    );
    next.query("COMMIT").await.unwrap();
    bystander.query("COMMIT").await.unwrap();
}

#[tokio::test]
async fn ten_thousand_half_finished_logins_do_not_lock_out_a_real_client() {
    let limit = raise_fd_limit();
    assert!(
        limit > 12_000,
        "need more than 12,000 open files, have {limit}"
    );
    let s = Stack::start_with(StackConfig {
        general: "auth_type = \"scram-sha-256\"\nmax_logins_in_progress = 1000".into(),
        users: "[users.postgres]\npassword = \"secret\"".into(),
        ..Default::default()
    });
    // Half stop in the middle of their startup packet, half after the whole packet, never
    // answering the SCRAM challenge.
    let startup = startup_message("postgres", "postgres", &[]);
    let mut attackers = Vec::with_capacity(10_000);
    for i in 0..10_000 {
        let mut stream = raw_connect(s.port).await;
        let bytes = if i % 2 == 0 {
            &startup[..6]
        } else {
            &startup[..]
        };
        send(&mut stream, bytes).await;
        attackers.push(stream);
    }
    // A real client gets in and is served.
    let started = Instant::now();
    let (client, _driver) = connect(s.port, "postgres", "postgres", Some("secret"))
        .await
        .expect("a real client logs in beside 10,000 half-finished logins");
    let row = client.query_one("SELECT 1::int4", &[]).await.unwrap();
    assert_eq!(row.get::<_, i32>(0), 1);
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(5),
        "login and query took {took:?}"
    );
    // The pooler kept at most max_logins_in_progress of them: the oldest were told 53300
    // and closed to make room.
    let mut evicted = 0;
    for stream in &mut attackers[..8_000] {
        if ended_with_53300(stream).await {
            evicted += 1;
        }
    }
    assert!(
        evicted >= 7_900,
        "only {evicted} of the 8,000 oldest half-finished logins were closed"
    );
    assert!(s.pooler.log().contains("max_logins_in_progress"));
}

/// Whether the pooler sent FATAL 53300 and closed `stream` (after any login messages).
async fn ended_with_53300(stream: &mut tokio::net::TcpStream) -> bool {
    let mut code = None;
    while let Some((tag, body)) = read_message(stream, Duration::from_secs(2)).await {
        if tag == b'E' {
            code = error_fields(&body).get(&b'C').cloned();
        }
    }
    code.as_deref() == Some("53300")
}
