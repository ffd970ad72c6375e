//! Authentication both ways: clients to pgcorral with trust, md5 and SCRAM-SHA-256 (plaintext
//! and hashed secrets in the config), and pgcorral to servers that demand md5 or SCRAM.

mod common;

use common::clients::{connect, psql};
use common::pg::{PasswordMethod, PgOptions};
use common::stack::{Stack, StackConfig};

fn with_auth(auth_type: &str, users: &str) -> Stack {
    let stack = Stack::start_with(StackConfig {
        general: format!("auth_type = \"{auth_type}\""),
        users: users.into(),
        ..Default::default()
    });
    stack.pg.psql("CREATE ROLE app LOGIN");
    stack
}

async fn login_code(port: u16, user: &str, db: &str, password: &str) -> Result<(), String> {
    match connect(port, user, db, Some(password)).await {
        Ok(_) => Ok(()),
        Err(e) => Err(e
            .code()
            .map(|c| c.code().to_owned())
            .unwrap_or_else(|| e.to_string())),
    }
}

#[tokio::test]
async fn scram_clients_with_plaintext_and_verifier_secrets() {
    let verifier = pgcorral::auth::ScramVerifier::generate("v-secret").to_string();
    let stack = with_auth(
        "scram-sha-256",
        &format!("[users.app]\npassword = \"app-secret\"\n[users.other]\npassword = \"{verifier}\"\nserver_user = \"app\"\n"),
    );
    assert_eq!(
        login_code(stack.port, "app", "postgres", "app-secret").await,
        Ok(())
    );
    assert_eq!(
        login_code(stack.port, "other", "postgres", "v-secret").await,
        Ok(())
    );
    assert_eq!(
        login_code(stack.port, "app", "postgres", "wrong").await,
        Err("28P01".into())
    );
    // An unknown user fails exactly like a wrong password: user names cannot be probed.
    let unknown = connect(stack.port, "nobody", "postgres", Some("x"))
        .await
        .unwrap_err();
    let wrong = connect(stack.port, "app", "postgres", Some("x"))
        .await
        .unwrap_err();
    assert_eq!(unknown.code().unwrap().code(), "28P01");
    assert_eq!(
        unknown
            .as_db_error()
            .unwrap()
            .message()
            .replace("nobody", "U"),
        wrong.as_db_error().unwrap().message().replace("app", "U")
    );
    assert_eq!(
        login_code(stack.port, "app", "no_such_db", "app-secret").await,
        Err("3D000".into())
    );
}

#[test]
fn md5_clients_with_plaintext_and_md5_secrets() {
    let md5 = pgcorral::auth::md5_secret("other", "o-secret");
    let stack = with_auth(
        "md5",
        &format!("[users.app]\npassword = \"app-secret\"\n[users.other]\npassword = \"{md5}\"\nserver_user = \"app\"\n"),
    );
    let ok = psql(
        stack.port,
        "app",
        "postgres",
        Some("app-secret"),
        "SELECT current_user",
    );
    assert!(ok.success(), "{}", ok.stderr);
    assert_eq!(ok.stdout.trim(), "app");
    let ok = psql(
        stack.port,
        "other",
        "postgres",
        Some("o-secret"),
        "SELECT 1",
    );
    assert!(ok.success(), "{}", ok.stderr);
    let bad = psql(stack.port, "app", "postgres", Some("nope"), "SELECT 1");
    assert!(!bad.success());
    assert!(
        bad.stderr
            .contains("password authentication failed for user \"app\""),
        "{}",
        bad.stderr
    );
}

#[tokio::test]
async fn trust_reports_unknown_users_and_databases_alike() {
    let stack = Stack::start();
    let a = connect(stack.port, "nobody", "postgres", None)
        .await
        .unwrap_err();
    let b = connect(stack.port, "postgres", "nowhere", None)
        .await
        .unwrap_err();
    let msg = |e: &tokio_postgres::Error| e.as_db_error().unwrap().message().to_owned();
    assert!(
        msg(&a).starts_with("no such database or user"),
        "{}",
        msg(&a)
    );
    assert!(
        msg(&b).starts_with("no such database or user"),
        "{}",
        msg(&b)
    );
}

#[tokio::test]
async fn logs_into_servers_that_demand_md5_or_scram() {
    let stack = Stack::start_with(StackConfig {
        users: "[users.md5user]\npassword = \"m-pass\"\n[users.scramuser]\npassword = \"s-pass\"\n\
                [users.pwuser]\npassword = \"p-pass\"\n\
                [users.wrongpass]\npassword = \"bad\"\nserver_user = \"scramuser\"\n"
            .into(),
        pg: PgOptions {
            hba: vec![
                "host all md5user 127.0.0.1/32 md5".into(),
                "host all scramuser 127.0.0.1/32 scram-sha-256".into(),
                "host all pwuser 127.0.0.1/32 password".into(),
            ],
            ..Default::default()
        },
        ..Default::default()
    });
    stack
        .pg
        .create_role("md5user", "m-pass", PasswordMethod::Md5);
    stack
        .pg
        .create_role("scramuser", "s-pass", PasswordMethod::Scram);
    stack
        .pg
        .create_role("pwuser", "p-pass", PasswordMethod::Scram);
    for user in ["md5user", "scramuser", "pwuser"] {
        let (c, _d) = connect(stack.port, user, "postgres", None).await.unwrap();
        let r = c.query_one("SELECT current_user::text", &[]).await.unwrap();
        assert_eq!(r.get::<_, String>(0), user);
    }
    // A server that refuses pgcorral's password: the client gets a clear error, not a hang.
    let e = connect(stack.port, "wrongpass", "postgres", None)
        .await
        .unwrap_err();
    let db = e.as_db_error().expect("an ErrorResponse");
    assert_eq!(db.code().code(), "08006");
    assert!(
        db.message().contains("password authentication failed"),
        "{}",
        db.message()
    );
}
