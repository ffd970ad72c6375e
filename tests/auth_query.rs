//! Credentials from the database and from auth_file, with real PostgreSQL and real clients:
//! roles that exist only in PostgreSQL log in through auth_query (md5 and SCRAM), reach the
//! servers as themselves without pgcorral knowing their passwords (pass-through), survive
//! pgbench, and a password change takes effect as docs/authentication.md says; auth_file users
//! (md5, SCRAM, plaintext) merged with [users]; a bad auth_file stops the start and is refused
//! by RELOAD.

mod common;

use std::time::{Duration, Instant};

use common::authq::{
    change_password, console, create_lookup_function, login, pg_secret, run_pgcorral, whoami,
    TempFile, LOOKUP_QUERY,
};
use common::clients::{pgbench, pgbench_failed, psql};
use common::pg::{PasswordMethod, PgCluster, PgOptions};
use common::pooler::Pooler;
use common::stack::{bin, config_text, Stack, StackConfig};
use common::wait::wait_until_async;

const AUTH_USER: &str = "pgcorral_auth";

/// PostgreSQL demands passwords from these roles, so a pass-through that does not work shows.
fn pg_options() -> PgOptions {
    PgOptions {
        hba: vec![
            "host all alice 127.0.0.1/32 md5".into(),
            "host all bob 127.0.0.1/32 scram-sha-256".into(),
            format!("host all {AUTH_USER} 127.0.0.1/32 scram-sha-256"),
        ],
        ..Default::default()
    }
}

/// pgcorral with auth_query on a transaction pool; only the auth_user is configured.
fn start(auth_type: &str, ttl: &str) -> Stack {
    let stack = Stack::start_with(StackConfig {
        general: format!(
            "auth_type = \"{auth_type}\"\nauth_user = \"{AUTH_USER}\"\n\
             auth_query = \"{LOOKUP_QUERY}\"\nauth_query_cache_ttl = \"{ttl}\""
        ),
        users: format!("[users.{AUTH_USER}]\npassword = \"auth-secret\"\n"),
        pool: "pool_mode = \"transaction\"\npool_size = 4".into(),
        pg: pg_options(),
    });
    let pg = &stack.pg;
    pg.create_role("alice", "alice-pw", PasswordMethod::Md5);
    pg.create_role("bob", "bob-pw", PasswordMethod::Scram);
    pg.create_role(AUTH_USER, "auth-secret", PasswordMethod::Scram);
    create_lookup_function(pg, AUTH_USER);
    stack
}

fn code(r: Result<String, (String, String)>) -> String {
    match r {
        Ok(v) => format!("ok: {v}"),
        Err((code, _)) => code,
    }
}

#[tokio::test]
async fn roles_only_in_postgresql_log_in_with_md5_and_reach_servers_as_themselves() {
    let s = start("md5", "60s");
    // md5 hash in pg_shadow: md5 both ways. SCRAM verifier: md5 turns into SCRAM, as in
    // PostgreSQL, and the server login uses the ClientKey the client proved.
    for _round in 0..2 {
        assert_eq!(
            whoami(s.port, "alice", Some("alice-pw")).await,
            Ok("alice".into())
        );
        assert_eq!(
            whoami(s.port, "bob", Some("bob-pw")).await,
            Ok("bob".into())
        );
    }
    let out = psql(
        s.port,
        "alice",
        "postgres",
        Some("alice-pw"),
        "SELECT current_user; SELECT count(*) > 0 FROM pg_class; BEGIN; SELECT session_user; COMMIT;",
    );
    assert!(out.success(), "{}", out.stderr);
    assert_eq!(
        out.stdout.lines().collect::<Vec<_>>(),
        ["alice", "t", "BEGIN", "alice", "COMMIT"]
    );
    let out = psql(
        s.port,
        "bob",
        "postgres",
        Some("bob-pw"),
        "SELECT current_user",
    );
    assert!(out.success(), "{}", out.stderr);
    assert_eq!(out.stdout.trim(), "bob");
    // The pool's server connections are the roles' own, logged in without a plaintext password.
    assert!(s.pg.backend_count("postgres", "alice") >= 1);
    assert!(s.pg.backend_count("postgres", "bob") >= 1);

    assert_eq!(code(whoami(s.port, "alice", Some("nope")).await), "28P01");
    assert_eq!(code(whoami(s.port, "bob", Some("nope")).await), "28P01");
    // A role PostgreSQL does not know fails like a wrong password.
    let unknown = whoami(s.port, "nobody", Some("x")).await.unwrap_err();
    let wrong = whoami(s.port, "alice", Some("x")).await.unwrap_err();
    assert_eq!(unknown.0, "28P01");
    assert_eq!(
        unknown.1.replace("nobody", "U"),
        wrong.1.replace("alice", "U")
    );
    let out = psql(s.port, "alice", "postgres", Some("wrong"), "SELECT 1");
    assert!(!out.success());
    assert!(
        out.stderr
            .contains("password authentication failed for user \"alice\""),
        "{}",
        out.stderr
    );
    // The auth_user's own secret is never fetched: it is configured.
    assert!(!s.pooler.log().contains("auth-secret"));
    assert!(!s.pooler.log().contains(&pg_secret(&s.pg, "bob")));
    assert!(!s.pooler.log().contains(&pg_secret(&s.pg, "alice")));
}

#[tokio::test]
async fn roles_only_in_postgresql_log_in_with_scram() {
    let s = start("scram-sha-256", "60s");
    assert_eq!(
        whoami(s.port, "bob", Some("bob-pw")).await,
        Ok("bob".into())
    );
    let out = psql(
        s.port,
        "bob",
        "postgres",
        Some("bob-pw"),
        "SELECT current_user",
    );
    assert!(out.success(), "{}", out.stderr);
    assert_eq!(out.stdout.trim(), "bob");
    assert_eq!(code(whoami(s.port, "bob", Some("nope")).await), "28P01");
    // An md5 hash cannot check a SCRAM proof (PostgreSQL refuses the same way).
    assert_eq!(
        code(whoami(s.port, "alice", Some("alice-pw")).await),
        "28P01"
    );
    let unknown = whoami(s.port, "nobody", Some("x")).await.unwrap_err();
    let wrong = whoami(s.port, "bob", Some("x")).await.unwrap_err();
    assert_eq!(unknown.0, "28P01");
    assert_eq!(
        unknown.1.replace("nobody", "U"),
        wrong.1.replace("bob", "U")
    );
}

#[tokio::test]
async fn pgbench_through_a_scram_pass_through_user() {
    let s = start("scram-sha-256", "60s");
    let init = pgbench(
        s.pg.port,
        "postgres",
        "postgres",
        None,
        &["-i", "-s", "1", "-q"],
    );
    assert!(init.success(), "{}", init.stderr);
    s.pg.psql("GRANT SELECT ON ALL TABLES IN SCHEMA public TO bob");
    let out = pgbench(
        s.port,
        "bob",
        "postgres",
        Some("bob-pw"),
        &["-n", "-S", "-c", "6", "-j", "2", "-t", "100"],
    );
    assert!(out.success(), "{}\n{}", out.stdout, out.stderr);
    assert_eq!(pgbench_failed(&out), Some(0), "{}", out.stdout);
    let n = s.pg.backend_count("postgres", "bob");
    assert!((1..=4).contains(&n), "{n} server connections as bob");
}

#[tokio::test]
async fn a_new_md5_password_works_at_once_and_the_old_one_stops() {
    let s = start("md5", "60s");
    assert_eq!(
        whoami(s.port, "alice", Some("alice-pw")).await,
        Ok("alice".into())
    );
    change_password(&s.pg, "alice", "alice-new", "md5");
    // A failed login fetches again only from an entry at least a second old.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    // The same md5 answer is checked against the fetched secret: the first try works.
    assert_eq!(
        whoami(s.port, "alice", Some("alice-new")).await,
        Ok("alice".into())
    );
    assert_eq!(
        code(whoami(s.port, "alice", Some("alice-pw")).await),
        "28P01"
    );
    assert_eq!(
        whoami(s.port, "alice", Some("alice-new")).await,
        Ok("alice".into())
    );
}

#[tokio::test]
async fn a_new_scram_password_works_from_the_second_try_and_the_old_one_stops() {
    let s = start("scram-sha-256", "60s");
    assert_eq!(
        whoami(s.port, "bob", Some("bob-pw")).await,
        Ok("bob".into())
    );
    change_password(&s.pg, "bob", "bob-new", "scram-sha-256");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    // The cached verifier's salt goes out before the proof: the first try fails and drops
    // the entry; the next one uses the new verifier, and its key logs into the server.
    assert_eq!(code(whoami(s.port, "bob", Some("bob-new")).await), "28P01");
    assert_eq!(
        whoami(s.port, "bob", Some("bob-new")).await,
        Ok("bob".into())
    );
    assert_eq!(code(whoami(s.port, "bob", Some("bob-pw")).await), "28P01");
    let out = psql(
        s.port,
        "bob",
        "postgres",
        Some("bob-new"),
        "SELECT current_user",
    );
    assert!(out.success(), "{}", out.stderr);
}

#[tokio::test]
async fn the_old_password_stops_working_within_the_ttl() {
    let ttl = Duration::from_secs(3);
    let s = start("md5", "3s");
    assert_eq!(
        whoami(s.port, "alice", Some("alice-pw")).await,
        Ok("alice".into())
    );
    change_password(&s.pg, "alice", "alice-new", "md5");
    let changed = Instant::now();
    // Within the TTL the cached secret still accepts the old password (logins only: a new
    // server connection would be refused, see the next test).
    assert_eq!(
        login(s.port, "alice", "postgres", Some("alice-pw")).await,
        Ok(())
    );
    wait_until_async(
        "the old password is refused",
        ttl + Duration::from_secs(5),
        || async {
            let refused = login(s.port, "alice", "postgres", Some("alice-pw")).await;
            refused.is_err_and(|(code, _)| code == "28P01")
        },
    )
    .await;
    assert!(
        changed.elapsed() <= ttl + Duration::from_secs(2),
        "{:?}",
        changed.elapsed()
    );
    assert_eq!(
        whoami(s.port, "alice", Some("alice-new")).await,
        Ok("alice".into())
    );
}

#[tokio::test]
async fn a_server_that_refuses_the_cached_secret_makes_the_next_login_fetch_it_again() {
    let s = start("md5", "60s");
    assert_eq!(
        whoami(s.port, "alice", Some("alice-pw")).await,
        Ok("alice".into())
    );
    change_password(&s.pg, "alice", "alice-new", "md5");
    // The pool must open a new server connection, with the md5 hash it still has.
    s.pg.kill_backends("alice");
    let (code, message) = whoami(s.port, "alice", Some("alice-pw")).await.unwrap_err();
    assert_eq!(code, "08006", "{message}");
    assert!(
        message.contains("password authentication failed for user \"alice\""),
        "{message}"
    );
    // The refusal dropped the cached secret: the old password is refused at login now, the
    // new one works, and the server (fine all along) was not banned.
    assert_eq!(
        code_of(login(s.port, "alice", "postgres", Some("alice-pw")).await),
        "28P01"
    );
    assert_eq!(
        whoami(s.port, "alice", Some("alice-new")).await,
        Ok("alice".into())
    );
    assert_eq!(
        whoami(s.port, "bob", Some("bob-pw")).await,
        Ok("bob".into())
    );
    assert!(
        !s.pooler.log().contains("server banned"),
        "{}",
        s.pooler.log()
    );
}

fn code_of(r: Result<(), (String, String)>) -> String {
    r.map_or_else(|(code, _)| code, |()| "ok".into())
}

#[tokio::test]
async fn a_changed_server_password_is_reported_for_a_configured_verifier() {
    // [users.gina] holds only PostgreSQL's verifier: the server login uses the ClientKey
    // learned from the client (pass-through), which a plaintext-less config could not do before.
    let pg = PgCluster::start_with(PgOptions {
        hba: vec!["host all gina 127.0.0.1/32 scram-sha-256".into()],
        ..Default::default()
    });
    pg.create_role("gina", "gina-pw", PasswordMethod::Scram);
    let verifier = pg_secret(&pg, "gina");
    let port = Pooler::free_port();
    let cfg = StackConfig {
        general: "auth_type = \"scram-sha-256\"".into(),
        users: format!("[users.gina]\npassword = \"{verifier}\"\n"),
        pool: "pool_mode = \"transaction\"".into(),
        ..Default::default()
    };
    let pooler = Pooler::start(&bin(), &config_text(port, pg.port, &cfg));
    assert_eq!(
        whoami(port, "gina", Some("gina-pw")).await,
        Ok("gina".into())
    );

    change_password(&pg, "gina", "gina-new", "scram-sha-256");
    pg.kill_backends("gina");
    let (code, message) = whoami(port, "gina", Some("gina-pw")).await.unwrap_err();
    assert_eq!(code, "08006", "{message}");
    assert!(
        message.contains("the password of \"gina\" changed on the server"),
        "{message}"
    );
    // Not the server's fault: it is not banned.
    assert!(!pooler.log().contains("server banned"), "{}", pooler.log());
}

#[tokio::test]
async fn auth_file_users_log_in_and_merge_with_users() {
    let pg = PgCluster::start_with(PgOptions {
        hba: vec![
            "host all carol 127.0.0.1/32 md5".into(),
            "host all dave 127.0.0.1/32 scram-sha-256".into(),
            "host all erin 127.0.0.1/32 scram-sha-256".into(),
            "host all frank 127.0.0.1/32 md5".into(),
        ],
        ..Default::default()
    });
    pg.create_role("carol", "carol-pw", PasswordMethod::Md5);
    pg.create_role("dave", "dave-pw", PasswordMethod::Scram);
    pg.create_role("erin", "erin-pw", PasswordMethod::Scram);
    pg.create_role("frank", "frank-pw", PasswordMethod::Md5);
    let userlist = |frank: &str| {
        format!(
            ";; userlist.txt\n\
             \"carol\" \"{}\"\n\
             # SCRAM verifier, plaintext, and a user that [users] overrides\n\
             \"dave\" \"{}\"\n\
             \"erin\"  \"erin-pw\"  extra fields are ignored\n\
             \"frank\" \"{frank}\"\n\
             \"admin\" \"admin-pw\"\n",
            pg_secret(&pg, "carol"),
            pg_secret(&pg, "dave")
        )
    };
    let file = TempFile::new("userlist.txt", &userlist("frank-from-file"));
    let port = Pooler::free_port();
    let cfg = StackConfig {
        general: format!(
            "auth_type = \"md5\"\nauth_file = {}\nadmin_users = [\"admin\"]",
            file.toml()
        ),
        users: "[users.frank]\npassword = \"frank-pw\"\npool_mode = \"session\"\n".into(),
        pool: "pool_mode = \"transaction\"".into(),
        ..Default::default()
    };
    let _pooler = Pooler::start(&bin(), &config_text(port, pg.port, &cfg));

    for (user, password) in [
        ("carol", "carol-pw"),
        ("dave", "dave-pw"),
        ("erin", "erin-pw"),
        ("frank", "frank-pw"),
    ] {
        assert_eq!(
            whoami(port, user, Some(password)).await,
            Ok(user.into()),
            "{user}"
        );
        let out = psql(
            port,
            user,
            "postgres",
            Some(password),
            "SELECT current_user",
        );
        assert!(out.success(), "{user}: {}", out.stderr);
    }
    // [users.frank] has a password: it wins over the file's.
    assert_eq!(
        code(whoami(port, "frank", Some("frank-from-file")).await),
        "28P01"
    );
    assert_eq!(code(whoami(port, "carol", Some("nope")).await), "28P01");
    let users = console(port, "admin", Some("admin-pw"), "SHOW USERS").await;
    assert_eq!(users, Ok("admin".into()), "auth_file users are listed");

    // A bad file on RELOAD: reported, and the old users keep logging in.
    file.rewrite("\"carol\" \"x\"\n\"dave\" broken\n");
    let e = console(port, "admin", Some("admin-pw"), "RELOAD")
        .await
        .unwrap_err();
    assert!(
        e.1.contains(&format!(
            "general.auth_file: {}: line 2:",
            file.path.display()
        )),
        "{e:?}"
    );
    assert_eq!(
        whoami(port, "carol", Some("carol-pw")).await,
        Ok("carol".into())
    );
    // A good file on RELOAD applies.
    file.rewrite(
        &userlist("frank-from-file").replace("\"erin\"  \"erin-pw\"", "\"erin\" \"other\""),
    );
    console(port, "admin", Some("admin-pw"), "RELOAD")
        .await
        .unwrap();
    assert_eq!(code(whoami(port, "erin", Some("erin-pw")).await), "28P01");
}

#[test]
fn a_bad_auth_file_stops_the_start_naming_file_and_line() {
    let file = TempFile::new("userlist.txt", "\"ok\" \"pw-1\"\n\n\"bad\" s3cr3t-value\n");
    let port = Pooler::free_port();
    let toml = format!(
        "[general]\nlisten = \"127.0.0.1:{port}\"\nauth_type = \"md5\"\nauth_file = {}\n\
         [pools.postgres]\nservers = [{{ host = \"127.0.0.1\", port = 1 }}]\n",
        file.toml()
    );
    let expected = format!("general.auth_file: {}: line 3:", file.path.display());
    let check = run_pgcorral(&["check"], &toml);
    assert_eq!(check.status, 1, "{check:?}");
    assert!(check.stdout.contains(&expected), "{check:?}");
    let run = run_pgcorral(&[], &toml);
    assert_eq!(run.status, 1, "{run:?}");
    assert!(run.stderr.contains(&expected), "{run:?}");
    assert!(!run.stderr.contains("s3cr3t-value"), "{run:?}");

    let missing = toml.replace(
        &file.path.display().to_string(),
        "/nonexistent/userlist.txt",
    );
    let run = run_pgcorral(&[], &missing);
    assert_eq!(run.status, 1, "{run:?}");
    assert!(
        run.stderr
            .contains("general.auth_file: cannot read /nonexistent/userlist.txt"),
        "{run:?}"
    );
}
