//! TLS on both sides with real clients and servers: psql's sslmodes against every
//! client_tls_sslmode, client certificates, plaintext refused, PostgreSQL 17's direct TLS,
//! cancel requests, certificates swapped by RELOAD and SIGHUP, bad files at start, and
//! server_tls_sslmode against a PostgreSQL that only accepts TLS.

mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::clients::{raw_connect, read_message, send, ssl_request, startup_message};
use common::pg::{PgCluster, PgOptions};
use common::pooler::Pooler;
use common::stack::{bin, config_text, StackConfig};
use common::tls::{
    cancel_over, client_config, client_tls_lines, closed_without_reply, login, peer_certificate,
    psql_conninfo, query_value, says_ssl, tls_connect, Ca, Files, Issued,
};
use common::wait::wait_until_async;

const USERS: &str = "[users.postgres]\n[users.admin]\n";

/// A CA, a server certificate for 127.0.0.1 and localhost signed by it, and a client
/// certificate for `postgres`, written out.
struct Pki {
    ca: Ca,
    files: Files,
    ca_file: PathBuf,
    server: Issued,
    cert: PathBuf,
    key: PathBuf,
    client_cert: PathBuf,
    client_key: PathBuf,
}

impl Pki {
    fn new() -> Pki {
        let ca = Ca::new("pgcorral test CA");
        let files = Files::new();
        let ca_file = files.write("ca.crt", &ca.pem);
        let server = ca.issue(&["localhost", "127.0.0.1"], "pgcorral");
        let (cert, key) = files.write_issued("server", &server);
        let (client_cert, client_key) = files.write_issued("client", &ca.issue(&[], "postgres"));
        Pki {
            ca,
            files,
            ca_file,
            server,
            cert,
            key,
            client_cert,
            client_key,
        }
    }

    /// `[general]` lines offering TLS to clients with `mode`.
    fn general(&self, mode: &str) -> String {
        client_tls_lines(mode, &self.cert, &self.key, Some(&self.ca_file))
    }
}

/// A pooler in front of `pg` with these `[general]` lines (trust, admin console for admin).
fn pooler(pg: &PgCluster, general: &str) -> Pooler {
    let port = Pooler::free_port();
    let c = StackConfig {
        general: format!("auth_type = \"trust\"\nadmin_users = [\"admin\"]\n{general}"),
        users: USERS.into(),
        ..Default::default()
    };
    Pooler::start(&bin(), &config_text(port, pg.port, &c))
}

fn conninfo(port: u16, user: &str, db: &str, extra: &str) -> String {
    format!("host=127.0.0.1 port={port} user={user} dbname={db} {extra}")
}

#[test]
fn every_client_sslmode_meets_every_psql_sslmode() {
    let pki = Pki::new();
    let pg = PgCluster::start();
    let root = format!("sslrootcert={}", pki.ca_file.display());
    let psql_modes = [
        ("disable", String::new()),
        ("allow", String::new()),
        ("prefer", String::new()),
        ("require", String::new()),
        ("verify-ca", root.clone()),
        ("verify-full", root.clone()),
    ];
    // (pooler mode, expected per psql mode: None = refused, Some(encrypted)). psql's
    // `allow` tries plaintext first and retries with TLS only when that is refused.
    let tls_when_asked = [
        Some(false),
        Some(false),
        Some(true),
        Some(true),
        Some(true),
        Some(true),
    ];
    let expected: [(&str, [Option<bool>; 6]); 4] = [
        (
            "disable",
            [Some(false), Some(false), Some(false), None, None, None],
        ),
        ("allow", tls_when_asked),
        ("prefer", tls_when_asked),
        (
            "require",
            [
                None,
                Some(true),
                Some(true),
                Some(true),
                Some(true),
                Some(true),
            ],
        ),
    ];
    for (pooler_mode, outcomes) in expected {
        let p = pooler(&pg, &pki.general(pooler_mode));
        for ((psql_mode, extra), want) in psql_modes.iter().zip(outcomes) {
            let info = conninfo(
                p.port,
                "postgres",
                "postgres",
                &format!("sslmode={psql_mode} {extra}"),
            );
            let out = psql_conninfo(&info, &["\\conninfo", "SELECT 40 + 2"]);
            let what =
                format!("client_tls_sslmode={pooler_mode}, psql sslmode={psql_mode}: {out:?}");
            match want {
                None => {
                    assert!(!out.success(), "expected a refusal; {what}");
                    if pooler_mode == "require" {
                        assert!(out.stderr.contains("SSL required"), "{what}");
                    }
                }
                Some(encrypted) => {
                    assert!(out.success(), "{what}");
                    assert!(out.stdout.contains("42"), "{what}");
                    assert_eq!(says_ssl(&out), encrypted, "{what}");
                }
            }
        }
    }
}

#[test]
fn verify_modes_require_a_client_certificate_signed_by_the_ca() {
    let pki = Pki::new();
    let stranger_ca = Ca::new("another CA");
    let (stranger_cert, stranger_key) = pki
        .files
        .write_issued("stranger", &stranger_ca.issue(&[], "postgres"));
    let pg = PgCluster::start();
    for mode in ["verify-ca", "verify-full"] {
        let p = pooler(&pg, &pki.general(mode));
        let base = conninfo(p.port, "postgres", "postgres", "sslmode=require");
        let with = |cert: &PathBuf, key: &PathBuf| {
            format!("{base} sslcert={} sslkey={}", cert.display(), key.display())
        };
        let out = psql_conninfo(
            &with(&pki.client_cert, &pki.client_key),
            &["\\conninfo", "SELECT 1"],
        );
        assert!(
            out.success() && says_ssl(&out),
            "{mode}, CA's certificate: {out:?}"
        );
        let out = psql_conninfo(&base, &["SELECT 1"]);
        assert!(!out.success(), "{mode}, no certificate: {out:?}");
        let out = psql_conninfo(&with(&stranger_cert, &stranger_key), &["SELECT 1"]);
        assert!(!out.success(), "{mode}, another CA's certificate: {out:?}");
        let plain = conninfo(p.port, "postgres", "postgres", "sslmode=disable");
        let out = psql_conninfo(&plain, &["SELECT 1"]);
        assert!(
            out.stderr.contains("SSL required"),
            "{mode}, plaintext: {out:?}"
        );
    }
}

#[tokio::test]
async fn plaintext_is_refused_with_28000_under_require() {
    let pki = Pki::new();
    let pg = PgCluster::start();
    let p = pooler(&pg, &pki.general("require"));
    let mut c = raw_connect(p.port).await;
    send(&mut c, &startup_message("postgres", "postgres", &[])).await;
    let (tag, body) = read_message(&mut c, Duration::from_secs(10)).await.unwrap();
    assert_eq!(tag, b'E');
    let fields = common::clients::error_fields(&body);
    assert_eq!(fields[&b'S'], "FATAL");
    assert_eq!(fields[&b'C'], "28000");
    assert!(fields[&b'M'].starts_with("SSL required"), "{fields:?}");
}

#[tokio::test]
async fn ssl_requests_out_of_sequence_are_protocol_violations() {
    let pki = Pki::new();
    let pg = PgCluster::start();
    let plain = pooler(&pg, "");
    let tls = pooler(&pg, &pki.general("prefer"));
    // Twice, with TLS off: N, then 08P01.
    let mut c = raw_connect(plain.port).await;
    send(&mut c, &ssl_request()).await;
    let mut one = [0u8; 1];
    tokio::io::AsyncReadExt::read_exact(&mut c, &mut one)
        .await
        .unwrap();
    assert_eq!(&one, b"N");
    send(&mut c, &ssl_request()).await;
    let (tag, body) = read_message(&mut c, Duration::from_secs(10)).await.unwrap();
    assert_eq!(
        (tag, common::clients::error_fields(&body)[&b'C'].as_str()),
        (b'E', "08P01")
    );
    // Inside an established TLS session.
    let config = client_config(&pki.ca.pem, false, None);
    let mut s = tls_connect(tls.port, config, false).await.unwrap();
    common::tls::send(&mut s, &ssl_request()).await;
    let (tag, body) = common::tls::read_message(&mut s, Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(
        (tag, common::clients::error_fields(&body)[&b'C'].as_str()),
        (b'E', "08P01")
    );
    // Plaintext sent right behind the SSLRequest is never taken as encrypted.
    let mut c = raw_connect(tls.port).await;
    let mut both = ssl_request();
    both.extend_from_slice(&startup_message("postgres", "postgres", &[]));
    send(&mut c, &both).await;
    let (tag, body) = read_message(&mut c, Duration::from_secs(10)).await.unwrap();
    let fields = common::clients::error_fields(&body);
    assert_eq!((tag, fields[&b'C'].as_str()), (b'E', "08P01"), "{fields:?}");
    assert!(
        fields[&b'M'].contains("unencrypted data after SSL request"),
        "{fields:?}"
    );
}

#[tokio::test]
async fn direct_tls_needs_alpn_postgresql() {
    let pki = Pki::new();
    let pg = PgCluster::start();
    let p = pooler(&pg, &pki.general("require"));
    let mut s = tls_connect(p.port, client_config(&pki.ca.pem, true, None), true)
        .await
        .unwrap();
    assert_eq!(s.get_ref().1.alpn_protocol(), Some(&b"postgresql"[..]));
    login(&mut s, "postgres", "postgres").await.unwrap();
    assert_eq!(query_value(&mut s, "SELECT 7 * 6").await.unwrap(), "42");
    // Without ALPN the handshake completes, then the pooler hangs up, as PostgreSQL 17 does.
    let mut s = tls_connect(p.port, client_config(&pki.ca.pem, false, None), true)
        .await
        .unwrap();
    common::tls::send(&mut s, &startup_message("postgres", "postgres", &[])).await;
    assert!(closed_without_reply(&mut s, Duration::from_secs(10)).await);
}

#[tokio::test]
async fn cancel_requests_work_over_plain_and_tls() {
    let pki = Pki::new();
    let pg = PgCluster::start();
    let p = pooler(&pg, &pki.general("require"));
    let config = client_config(&pki.ca.pem, false, None);
    let mut s = tls_connect(p.port, config.clone(), false).await.unwrap();
    let key = login(&mut s, "postgres", "postgres").await.unwrap();
    for over_tls in [false, true] {
        common::tls::send(
            &mut s,
            &common::clients::query_message("SELECT pg_sleep(30)"),
        )
        .await;
        let started = std::time::Instant::now();
        wait_until_async("the query to run", Duration::from_secs(10), || async {
            pg.psql("SELECT count(*) FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(30)' AND state = 'active'") == "1"
        })
        .await;
        if over_tls {
            let mut c = tls_connect(p.port, config.clone(), false).await.unwrap();
            cancel_over(&mut c, key).await;
        } else {
            let mut c = raw_connect(p.port).await;
            cancel_over(&mut c, key).await;
        }
        let e = common::tls::read_result(&mut s).await.unwrap_err();
        assert_eq!(e[&b'C'], "57014", "over_tls={over_tls}: {e:?}");
        assert!(started.elapsed() < Duration::from_secs(25));
    }
}

#[tokio::test]
async fn reload_swaps_the_certificate_for_new_connections_only() {
    let pki = Pki::new();
    let pg = PgCluster::start();
    let p = pooler(&pg, &pki.general("require"));
    let config = client_config(&pki.ca.pem, false, None);
    let mut old = tls_connect(p.port, config.clone(), false).await.unwrap();
    login(&mut old, "postgres", "postgres").await.unwrap();
    assert_eq!(peer_certificate(&old), pki.server.der);

    let second = pki.ca.issue(&["127.0.0.1"], "pgcorral-2");
    pki.files.write_issued("server", &second);
    let admin = conninfo(p.port, "admin", "pgcorral", "sslmode=require");
    let out = psql_conninfo(&admin, &["RELOAD"]);
    assert!(out.success(), "{out:?}");
    let fresh = tls_connect(p.port, config.clone(), false).await.unwrap();
    assert_eq!(peer_certificate(&fresh), second.der);
    // The session from before the reload goes on with its certificate.
    assert_eq!(
        query_value(&mut old, "SELECT 'still here'").await.unwrap(),
        "still here"
    );
    assert_eq!(peer_certificate(&old), pki.server.der);

    // A file that cannot be used fails RELOAD and changes nothing.
    pki.files.write("server.crt", "not a certificate\n");
    let out = psql_conninfo(&admin, &["RELOAD"]);
    assert!(!out.success(), "{out:?}");
    assert!(out.stderr.contains("general.tls_cert_file"), "{out:?}");
    let fresh = tls_connect(p.port, config.clone(), false).await.unwrap();
    assert_eq!(peer_certificate(&fresh), second.der);
    assert!(p.log().contains("reload failed"));

    // SIGHUP reloads too.
    pki.files.write_issued("server", &pki.server);
    p.signal(1);
    wait_until_async(
        "the first certificate again after SIGHUP",
        Duration::from_secs(10),
        || {
            let config = config.clone();
            let port = p.port;
            let want = pki.server.der.clone();
            async move {
                match tls_connect(port, config, false).await {
                    Ok(s) => peer_certificate(&s) == want,
                    Err(_) => false,
                }
            }
        },
    )
    .await;
}

#[test]
fn unusable_tls_files_stop_check_and_start_with_the_key_and_path() {
    let pki = Pki::new();
    let missing = pki.files.dir.join("missing.crt");
    let garbage = pki.files.write(
        "garbage.key",
        "-----BEGIN PRIVATE KEY-----\n!!\n-----END PRIVATE KEY-----\n",
    );
    let port = Pooler::free_port();
    for (general, key, path) in [
        (
            client_tls_lines("require", &missing, &pki.key, None),
            "general.tls_cert_file",
            &missing,
        ),
        (
            client_tls_lines("require", &pki.cert, &garbage, None),
            "general.tls_key_file",
            &garbage,
        ),
        (
            format!(
                "server_tls_sslmode = \"verify-ca\"\nserver_tls_ca_file = \"{}\"\n",
                missing.display()
            ),
            "general.server_tls_ca_file",
            &missing,
        ),
    ] {
        let c = StackConfig {
            general: format!("auth_type = \"trust\"\n{general}"),
            ..Default::default()
        };
        let config = pki
            .files
            .write("pgcorral.toml", &config_text(port, 5432, &c));
        for args in [vec!["check", "-c"], vec!["-c"]] {
            let mut cmd = std::process::Command::new(bin());
            cmd.args(&args).arg(&config);
            let out = common::run_cmd(&mut cmd, Duration::from_secs(20));
            let text = format!("{}{}", out.stdout, out.stderr);
            assert_eq!(out.status, 1, "{args:?}: {text}");
            assert!(text.contains(key), "{args:?}: {text}");
            assert!(
                text.contains(&path.display().to_string()),
                "{args:?}: {text}"
            );
        }
    }
}

/// A PostgreSQL that accepts TLS connections only, with `server` as its certificate.
fn tls_only_pg(files: &Files, server: &Issued) -> PgCluster {
    tls_pg(
        files,
        server,
        vec![
            "hostssl all all 127.0.0.1/32 trust".into(),
            "hostnossl all all 127.0.0.1/32 reject".into(),
        ],
    )
}

/// A PostgreSQL with TLS on, `server` as its certificate and these pg_hba.conf lines first.
fn tls_pg(files: &Files, server: &Issued, hba: Vec<String>) -> PgCluster {
    let (cert, key) = files.write_issued("pg", server);
    files.give_to_postgres();
    PgCluster::start_with(PgOptions {
        extra_conf: vec![
            "ssl = on".into(),
            format!("ssl_cert_file = '{}'", cert.display()),
            format!("ssl_key_file = '{}'", key.display()),
        ],
        hba,
        ..Default::default()
    })
}

fn server_tls_lines(mode: &str, ca: &std::path::Path) -> String {
    format!(
        "server_tls_sslmode = \"{mode}\"\nserver_tls_ca_file = \"{}\"\n",
        ca.display()
    )
}

#[test]
fn server_sslmodes_against_a_server_that_only_accepts_tls() {
    let pki = Pki::new();
    let pg = tls_only_pg(&pki.files, &pki.server);
    let ssl_in_use = "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()";
    for mode in ["allow", "prefer", "require", "verify-ca", "verify-full"] {
        let p = pooler(&pg, &server_tls_lines(mode, &pki.ca_file));
        let out = psql_conninfo(
            &conninfo(p.port, "postgres", "postgres", "sslmode=disable"),
            &[ssl_in_use],
        );
        assert!(out.success(), "{mode}: {out:?}");
        assert_eq!(out.stdout.trim(), "t", "{mode}: {out:?}");
        if mode == "verify-full" {
            let admin = conninfo(p.port, "admin", "pgcorral", "sslmode=disable");
            let out = psql_conninfo(&admin, &["SHOW SERVERS"]);
            assert!(out.stdout.contains("|TLSv1."), "{out:?}");
        }
    }
    let p = pooler(&pg, &server_tls_lines("disable", &pki.ca_file));
    let out = psql_conninfo(&conninfo(p.port, "postgres", "postgres", ""), &["SELECT 1"]);
    assert!(!out.success(), "{out:?}");
    assert!(out.stderr.contains("no encryption"), "{out:?}");
}

#[test]
fn server_verification_failures_name_the_server_and_the_reason() {
    let pki = Pki::new();
    // Valid for a name the pooler does not use (it connects to 127.0.0.1).
    let elsewhere = pki.ca.issue(&["db.example"], "db");
    let pg = tls_only_pg(&pki.files, &elsewhere);
    pg.psql("CREATE TABLE hits (n int)");
    let insert = "INSERT INTO hits VALUES (1)";
    let client =
        |p: &Pooler| psql_conninfo(&conninfo(p.port, "postgres", "postgres", ""), &[insert]);

    let p = pooler(&pg, &server_tls_lines("verify-full", &pki.ca_file));
    let out = client(&p);
    assert!(!out.success(), "{out:?}");
    assert!(
        out.stderr
            .contains(&format!("TLS with server 127.0.0.1:{} failed", pg.port)),
        "{out:?}"
    );
    assert!(out.stderr.contains("not valid for name"), "{out:?}");

    let other_ca = Ca::new("not the server's CA");
    let other_ca_file = pki.files.write("other-ca.crt", &other_ca.pem);
    let p = pooler(&pg, &server_tls_lines("verify-ca", &other_ca_file));
    let out = client(&p);
    assert!(!out.success(), "{out:?}");
    assert!(out.stderr.contains("unknown issuer"), "{out:?}");
    assert_eq!(pg.psql("SELECT count(*) FROM hits"), "0");

    // verify-ca does not look at the name.
    let p = pooler(&pg, &server_tls_lines("verify-ca", &pki.ca_file));
    let out = client(&p);
    assert!(out.success(), "{out:?}");
    assert_eq!(pg.psql("SELECT count(*) FROM hits"), "1");
}

#[test]
fn server_require_fails_clearly_against_a_server_without_tls() {
    let pg = PgCluster::start();
    let p = pooler(&pg, "server_tls_sslmode = \"require\"");
    let out = psql_conninfo(&conninfo(p.port, "postgres", "postgres", ""), &["SELECT 1"]);
    assert!(!out.success(), "{out:?}");
    assert!(out.stderr.contains("does not support TLS"), "{out:?}");
}

#[tokio::test]
async fn show_clients_prints_the_tls_of_each_client() {
    let pki = Pki::new();
    let pg = PgCluster::start();
    let p = pooler(&pg, &pki.general("prefer"));
    let mut s = tls_connect(p.port, client_config(&pki.ca.pem, false, None), false)
        .await
        .unwrap();
    login(&mut s, "postgres", "postgres").await.unwrap();
    let mut plain = common::raw::RawClient::login(p.port, "postgres", "postgres", &[]).await;
    let _ = plain.value("SELECT 1").await;
    let admin = conninfo(p.port, "admin", "pgcorral", "sslmode=require");
    let out = psql_conninfo(&admin, &["SHOW CLIENTS"]);
    assert!(out.success(), "{out:?}");
    let tls_column = |line: &str| line.split('|').nth(16).unwrap_or("").to_owned();
    let mut columns: Vec<String> = out.stdout.lines().map(tls_column).collect();
    columns.sort();
    assert_eq!(columns.len(), 2, "{out:?}");
    assert_eq!(columns[0], "", "{out:?}");
    assert!(columns[1].starts_with("TLSv1.3/TLS13_"), "{out:?}");
}

#[tokio::test]
async fn tls_sessions_carry_large_values_and_move_between_arbiters() {
    let pki = Pki::new();
    let pg = tls_only_pg(&pki.files, &pki.server);
    // workers = 2, pool_size = 1: the one TLS server connection moves between the arbiters.
    let port = Pooler::free_port();
    let c = StackConfig {
        general: format!(
            "auth_type = \"trust\"\n{}{}",
            pki.general("require"),
            server_tls_lines("verify-full", &pki.ca_file)
        ),
        users: USERS.into(),
        pool: "pool_size = 1\nquery_wait_timeout = \"20s\"".into(),
        ..Default::default()
    };
    let p = Pooler::start(&bin(), &config_text(port, pg.port, &c));
    let config = client_config(&pki.ca.pem, false, None);
    // The kernel spreads clients over the arbiters by a hash of their address: with 12 the
    // chance that all land on one (and the connection has no reason to move) is 1 in 2,048;
    // with 6 it was 1 in 32, and CI met it.
    let tasks: Vec<_> = (0..12)
        .map(|i| {
            let config = config.clone();
            tokio::spawn(async move {
                let mut s = tls_connect(port, config, false).await.unwrap();
                login(&mut s, "postgres", "postgres").await.unwrap();
                if i < 6 {
                    // 3 MB up and 8 MB down, through both TLS sessions.
                    let text = "x".repeat(3_000_000);
                    let sql = format!("SELECT length('{text}') + {i}");
                    assert_eq!(
                        query_value(&mut s, &sql).await.unwrap(),
                        (3_000_000 + i).to_string()
                    );
                    let big = query_value(&mut s, "SELECT repeat('ab', 4000000)")
                        .await
                        .unwrap();
                    assert_eq!(big.len(), 8_000_000);
                }
                for j in 0..20 {
                    let sql = format!(
                        "SELECT ssl::text || {j} FROM pg_stat_ssl WHERE pid = pg_backend_pid()"
                    );
                    assert_eq!(query_value(&mut s, &sql).await.unwrap(), format!("true{j}"));
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let log = p.log();
    assert!(
        log.lines()
            .any(|l| l.contains("adopted from another arbiter") && l.contains("tls: true")),
        "the TLS server connection never moved"
    );
    assert!(!log.contains("could not adopt"));
}

#[tokio::test]
async fn reload_replaces_server_connections_when_server_tls_changes() {
    let pki = Pki::new();
    let pg = tls_pg(&pki.files, &pki.server, Vec::new());
    let port = Pooler::free_port();
    let c = StackConfig {
        general:
            "auth_type = \"trust\"\nadmin_users = [\"admin\"]\nserver_tls_sslmode = \"disable\""
                .into(),
        users: USERS.into(),
        pool: "pool_size = 1".into(),
        ..Default::default()
    };
    let p = Pooler::start(&bin(), &config_text(port, pg.port, &c));
    let ssl = "SELECT ssl::text FROM pg_stat_ssl WHERE pid = pg_backend_pid()";
    let mut client = common::raw::RawClient::login(port, "postgres", "postgres", &[]).await;
    assert_eq!(client.value(ssl).await, "false");
    let text = std::fs::read_to_string(&p.config_path).unwrap();
    std::fs::write(
        &p.config_path,
        text.replace(
            "server_tls_sslmode = \"disable\"",
            "server_tls_sslmode = \"require\"",
        ),
    )
    .unwrap();
    let out = psql_conninfo(&conninfo(port, "admin", "pgcorral", ""), &["RELOAD"]);
    assert!(out.success(), "{out:?}");
    // The same client's next transaction gets a new, encrypted server connection.
    assert_eq!(client.value(ssl).await, "true");
    common::wait::wait_until(
        "the old server connection to close",
        Duration::from_secs(10),
        || pg.backend_count("postgres", "postgres") == 1,
    );
}

#[tokio::test]
async fn a_tls_client_that_stops_reading_is_cut_off() {
    let pki = Pki::new();
    let pg = PgCluster::start();
    let port = Pooler::free_port();
    let c = StackConfig {
        general: format!(
            "auth_type = \"trust\"\nclient_write_timeout = \"1s\"\n{}",
            pki.general("require")
        ),
        users: USERS.into(),
        pool: "pool_size = 1".into(),
        ..Default::default()
    };
    let p = Pooler::start(&bin(), &config_text(port, pg.port, &c));
    let config = client_config(&pki.ca.pem, false, None);
    let mut silent = tls_connect(port, config.clone(), false).await.unwrap();
    login(&mut silent, "postgres", "postgres").await.unwrap();
    // 200 MB of output that is never read: the pooler's writes (and TLS flushes) stall.
    let copy = "COPY (SELECT repeat('x', 1000) FROM generate_series(1, 200000)) TO STDOUT";
    common::tls::send(&mut silent, &common::clients::query_message(copy)).await;
    // The pool's one server connection comes free once the silent client is cut off.
    let mut other = tls_connect(port, config, false).await.unwrap();
    login(&mut other, "postgres", "postgres").await.unwrap();
    let started = std::time::Instant::now();
    assert_eq!(query_value(&mut other, "SELECT 6 * 7").await.unwrap(), "42");
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "{:?}",
        started.elapsed()
    );
    assert!(p.log().contains("client_write_timeout"), "{}", p.log());
    drop(silent);
}

#[test]
fn access_rules_see_tls_and_the_client_certificate() {
    let pki = Pki::new();
    let (cert_cert, cert_key) = pki
        .files
        .write_issued("certuser", &pki.ca.issue(&[], "certuser"));
    let rules = pki.files.write(
        "hba.conf",
        "hostssl   postgres certuser  127.0.0.1/32 cert\n\
         hostnossl postgres plainuser 127.0.0.1/32 trust\n\
         hostssl   pgcorral admin     127.0.0.1/32 trust\n",
    );
    let pg = PgCluster::start();
    let port = Pooler::free_port();
    let c = StackConfig {
        general: format!(
            "auth_type = \"hba\"\nauth_hba_file = \"{}\"\nadmin_users = [\"admin\"]\n{}",
            rules.display(),
            pki.general("prefer")
        ),
        users: "[users.certuser]\nserver_user = \"postgres\"\n\
                [users.plainuser]\nserver_user = \"postgres\"\n[users.admin]\n"
            .into(),
        ..Default::default()
    };
    let _p = Pooler::start(&bin(), &config_text(port, pg.port, &c));
    let run = |user: &str, db: &str, extra: &str| {
        psql_conninfo(&conninfo(port, user, db, extra), &["SELECT current_user"])
    };
    let with_cert = |cert: &PathBuf, key: &PathBuf| {
        format!(
            "sslmode=require sslcert={} sslkey={}",
            cert.display(),
            key.display()
        )
    };
    // cert: a certificate from the CA naming the user, over TLS.
    let out = run("certuser", "postgres", &with_cert(&cert_cert, &cert_key));
    assert!(out.success() && out.stdout.contains("postgres"), "{out:?}");
    let out = run("certuser", "postgres", "sslmode=require");
    assert!(
        out.stderr.contains("certificate authentication failed"),
        "{out:?}"
    );
    let out = run(
        "certuser",
        "postgres",
        &with_cert(&pki.client_cert, &pki.client_key),
    );
    assert!(
        out.stderr.contains("certificate authentication failed"),
        "{out:?}"
    );
    // hostnossl: plain only; hostssl: TLS only.
    let out = run("plainuser", "postgres", "sslmode=disable");
    assert!(out.success(), "{out:?}");
    let out = run("plainuser", "postgres", "sslmode=require");
    assert!(out.stderr.contains("SSL encryption"), "{out:?}");
    let out = psql_conninfo(
        &conninfo(port, "admin", "pgcorral", "sslmode=require"),
        &["SHOW VERSION"],
    );
    assert!(out.success(), "{out:?}");
    let out = psql_conninfo(
        &conninfo(port, "admin", "pgcorral", "sslmode=disable"),
        &["SHOW VERSION"],
    );
    assert!(out.stderr.contains("no encryption"), "{out:?}");
}
