//! Access rules (`auth_type = "hba"`, `auth_hba_file`) with real clients: allowed and denied by
//! address, database and user; `reject` lines; the first matching line decides; no match is
//! refused with PostgreSQL's message; the admin console goes through the rules; `hostssl`
//! never matches a plain connection; a bad file stops the start and RELOAD keeps the old rules.

mod common;

use std::net::IpAddr;

use common::authq::{console, query_as, run_pgcorral, startup_from, whoami, TempFile};
use common::clients::{connect, psql};
use common::pg::PgOptions;
use common::stack::{Stack, StackConfig};

const RULES: &str = "\
# pgcorral access rules for the tests
host    all        blocked       127.0.0.1/32   reject
host    postgres   alice         10.0.0.0/8     trust      # another network: not this client
host    postgres   alice         127.0.0.1/32   md5
host    postgres   bob           127.0.0.1/32   scram-sha-256
host    postgres   carol         127.0.0.1/32   password
host    postgres   remote        10.0.0.0/8     trust
host    postgres   local_only    127.0.0.1/32   trust
hostssl all        all           all            trust
host    postgres   trusted       127.0.0.1/32   trust
host    postgres   trusted       127.0.0.1/32   reject     # never reached
host    other      all           all            trust
host    pgcorral   admin         127.0.0.1/32   md5
";

/// Every user logs into the servers as `postgres` (trusted there); the rules are pgcorral's.
fn start(rules: &TempFile) -> Stack {
    let mut users = String::new();
    for (name, password) in [
        ("alice", Some("alice-pw")),
        ("bob", Some("bob-pw")),
        ("carol", Some("carol-pw")),
        ("admin", Some("admin-pw")),
        ("blocked", Some("x")),
        ("remote", None),
        ("local_only", None),
        ("trusted", None),
        ("sslonly", None),
        ("eve", None),
    ] {
        users.push_str(&format!("[users.{name}]\nserver_user = \"postgres\"\n"));
        if let Some(p) = password {
            users.push_str(&format!("password = \"{p}\"\n"));
        }
    }
    let stack = Stack::start_with(StackConfig {
        general: format!(
            "auth_type = \"hba\"\nauth_hba_file = {}\nadmin_users = [\"admin\"]",
            rules.toml()
        ),
        users,
        pool: "pool_mode = \"transaction\"".into(),
        // PostgreSQL's own rules for the same reject line, to compare messages.
        pg: PgOptions {
            hba: vec!["host all blocked 127.0.0.1/32 reject".into()],
            ..Default::default()
        },
    });
    stack.pg.psql("CREATE ROLE blocked LOGIN");
    stack
}

fn code(r: Result<String, (String, String)>) -> String {
    match r {
        Ok(v) => format!("ok: {v}"),
        Err((code, _)) => code,
    }
}

#[tokio::test]
async fn the_method_of_the_first_matching_line_applies() {
    let rules = TempFile::new("hba.conf", RULES);
    let s = start(&rules);
    // md5 (the 10.0.0.0/8 trust line above it does not match 127.0.0.1).
    assert_eq!(
        whoami(s.port, "alice", Some("alice-pw")).await,
        Ok("postgres".into())
    );
    assert_eq!(code(whoami(s.port, "alice", Some("wrong")).await), "28P01");
    let out = psql(s.port, "alice", "postgres", Some("alice-pw"), "SELECT 1");
    assert!(out.success(), "{}", out.stderr);
    // scram-sha-256 and password (clear text, checked against the stored secret).
    assert_eq!(
        whoami(s.port, "bob", Some("bob-pw")).await,
        Ok("postgres".into())
    );
    assert_eq!(code(whoami(s.port, "bob", Some("wrong")).await), "28P01");
    assert_eq!(
        whoami(s.port, "carol", Some("carol-pw")).await,
        Ok("postgres".into())
    );
    assert_eq!(code(whoami(s.port, "carol", Some("wrong")).await), "28P01");
    let out = psql(s.port, "carol", "postgres", Some("carol-pw"), "SELECT 1");
    assert!(out.success(), "{}", out.stderr);
    // trust: the first line for `trusted` lets it in; the reject line after it never applies.
    assert_eq!(whoami(s.port, "trusted", None).await, Ok("postgres".into()));
}

#[tokio::test]
async fn reject_and_no_entry_are_refused_like_postgresql() {
    let rules = TempFile::new("hba.conf", RULES);
    let s = start(&rules);
    let refused = |r: Result<String, (String, String)>| r.unwrap_err();

    let ours = refused(whoami(s.port, "blocked", Some("x")).await);
    let theirs = connect(s.pg.port, "blocked", "postgres", None)
        .await
        .unwrap_err();
    let theirs = theirs.as_db_error().expect("PostgreSQL's ErrorResponse");
    assert_eq!(ours.0, "28000");
    assert_eq!(ours.0, theirs.code().code());
    assert_eq!(ours.1, theirs.message());
    assert_eq!(
        ours.1,
        "pg_hba.conf rejects connection for host \"127.0.0.1\", user \"blocked\", database \
         \"postgres\", no encryption"
    );

    let none = refused(whoami(s.port, "nobody", Some("x")).await);
    assert_eq!(
        none,
        (
            "28000".into(),
            "no pg_hba.conf entry for host \"127.0.0.1\", user \"nobody\", database \"postgres\", \
             no encryption"
                .into()
        )
    );
    // By address: remote's only line is for 10.0.0.0/8.
    assert_eq!(code(whoami(s.port, "remote", None).await), "28000");
    // By database: eve has no line for postgres, and the `other` line lets anyone in there
    // (where no pool exists, so the login ends with "no such database").
    assert_eq!(code(whoami(s.port, "eve", None).await), "28000");
    assert_eq!(
        code(query_as(s.port, "eve", "other", None, "SELECT 1").await),
        "3D000"
    );
    // hostssl never matches a connection without TLS.
    let ssl = refused(whoami(s.port, "sslonly", None).await);
    assert_eq!(ssl.0, "28000");
    assert!(ssl.1.starts_with("no pg_hba.conf entry"), "{ssl:?}");
}

#[tokio::test]
async fn the_client_address_must_fit_the_line() {
    let rules = TempFile::new("hba.conf", RULES);
    let s = start(&rules);
    let here: IpAddr = "127.0.0.1".parse().unwrap();
    let elsewhere: IpAddr = "127.0.0.2".parse().unwrap();
    // trust for 127.0.0.1/32: the first answer is AuthenticationOk.
    let (tag, _) = startup_from(here, s.port, "local_only", "postgres").await;
    assert_eq!(tag, b'R');
    let (tag, fields) = startup_from(elsewhere, s.port, "local_only", "postgres").await;
    assert_eq!(tag, b'E');
    assert_eq!(fields.get(&b'C').map(String::as_str), Some("28000"));
    assert_eq!(
        fields.get(&b'M').map(String::as_str),
        Some(
            "no pg_hba.conf entry for host \"127.0.0.2\", user \"local_only\", database \
             \"postgres\", no encryption"
        )
    );
}

#[tokio::test]
async fn the_admin_console_goes_through_the_rules() {
    let rules = TempFile::new("hba.conf", RULES);
    let s = start(&rules);
    let version = console(s.port, "admin", Some("admin-pw"), "SHOW VERSION").await;
    assert!(version.is_ok_and(|v| v.starts_with("pgcorral")));
    assert_eq!(
        code(console(s.port, "admin", Some("wrong"), "SHOW VERSION").await),
        "28P01"
    );
    // The alias database has no line.
    let alias = query_as(
        s.port,
        "admin",
        "pgbouncer",
        Some("admin-pw"),
        "SHOW VERSION",
    )
    .await;
    assert_eq!(code(alias), "28000");
    // `trusted` has no line for the console's database either.
    assert_eq!(
        code(console(s.port, "trusted", None, "SHOW VERSION").await),
        "28000"
    );
}

#[tokio::test]
async fn reload_applies_new_rules_and_keeps_the_old_ones_when_the_file_is_bad() {
    let rules = TempFile::new("hba.conf", RULES);
    let s = start(&rules);
    assert_eq!(whoami(s.port, "trusted", None).await, Ok("postgres".into()));

    rules.rewrite(&format!("{RULES}\nhost all all all ldap\n"));
    let e = console(s.port, "admin", Some("admin-pw"), "RELOAD")
        .await
        .unwrap_err();
    let line = RULES.lines().count() + 2;
    assert!(
        e.1.contains(&format!(
            "general.auth_hba_file: {}: line {line}:",
            rules.path.display()
        )),
        "{e:?}"
    );
    assert!(e.1.contains("\"ldap\" is not supported"), "{e:?}");
    assert_eq!(whoami(s.port, "trusted", None).await, Ok("postgres".into()));

    rules.rewrite(&RULES.replace(
        "host    postgres   trusted       127.0.0.1/32   trust\n",
        "",
    ));
    console(s.port, "admin", Some("admin-pw"), "RELOAD")
        .await
        .unwrap();
    let (code, message) = whoami(s.port, "trusted", None).await.unwrap_err();
    assert_eq!(code, "28000");
    assert!(
        message.starts_with("pg_hba.conf rejects connection"),
        "{message}"
    );
}

#[test]
fn a_bad_rules_file_stops_the_start_naming_file_and_line() {
    let rules = TempFile::new(
        "hba.conf",
        "host all all 127.0.0.1/32 md5\n# ok\nhost all +staff all md5\n",
    );
    let toml = format!(
        "[general]\nlisten = \"127.0.0.1:{}\"\nauth_type = \"hba\"\nauth_hba_file = {}\n\
         [pools.postgres]\nservers = [{{ host = \"127.0.0.1\", port = 1 }}]\n",
        common::free_port(),
        rules.toml()
    );
    let expected = format!("general.auth_hba_file: {}: line 3:", rules.path.display());
    let check = run_pgcorral(&["check"], &toml);
    assert_eq!(check.status, 1, "{check:?}");
    assert!(check.stdout.contains(&expected), "{check:?}");
    assert!(check.stdout.contains("group membership"), "{check:?}");
    let run = run_pgcorral(&[], &toml);
    assert_eq!(run.status, 1, "{run:?}");
    assert!(run.stderr.contains(&expected), "{run:?}");
}
