//! Helpers for the auth_query, auth_file and access-rule tests: files the pooler reads, a
//! lookup function that lets a role without superuser rights read pg_shadow, logins that
//! report SQLSTATE and message, clients from another source address, and runs of the binary
//! that are expected to fail.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use tokio::net::TcpSocket;

use super::clients::{connect, error_fields, read_message, send, startup_message, CmdOutput};
use super::pg::{quote_literal, PgCluster};
use super::{new_test_dir, run_cmd};

/// The auth_query the tests use: PgBouncer's recommended shape, through a SECURITY DEFINER
/// function so the auth_user needs no superuser rights.
pub const LOOKUP_QUERY: &str = "SELECT usename, passwd FROM public.pgcorral_lookup($1)";

/// A file in a temp dir of its own, removed on drop.
pub struct TempFile {
    pub path: PathBuf,
    dir: PathBuf,
}

impl TempFile {
    pub fn new(name: &str, text: &str) -> TempFile {
        let dir = new_test_dir();
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        TempFile { path, dir }
    }

    /// Replaces the contents (before a RELOAD).
    pub fn rewrite(&self, text: &str) {
        std::fs::write(&self.path, text)
            .unwrap_or_else(|e| panic!("write {}: {e}", self.path.display()));
    }

    /// The path as a TOML string value.
    pub fn toml(&self) -> String {
        format!("{:?}", self.path.display().to_string())
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Creates `public.pgcorral_lookup(name)` in database `postgres`, owned by the superuser and
/// executable by `auth_user` only.
pub fn create_lookup_function(pg: &PgCluster, auth_user: &str) {
    pg.psql(&format!(
        "CREATE FUNCTION public.pgcorral_lookup(p_user name) \
         RETURNS TABLE(usename name, passwd text) LANGUAGE sql SECURITY DEFINER \
         SET search_path = pg_catalog AS \
         $$ SELECT usename, passwd FROM pg_catalog.pg_shadow WHERE usename = p_user $$; \
         REVOKE ALL ON FUNCTION public.pgcorral_lookup(name) FROM PUBLIC; \
         GRANT EXECUTE ON FUNCTION public.pgcorral_lookup(name) TO {auth_user};"
    ));
}

/// The stored secret of `role` (`md5…` or `SCRAM-SHA-256$…`).
pub fn pg_secret(pg: &PgCluster, role: &str) -> String {
    pg.psql(&format!(
        "SELECT rolpassword FROM pg_authid WHERE rolname = {}",
        quote_literal(role)
    ))
}

/// `ALTER ROLE … PASSWORD …` stored with `method` (`md5` or `scram-sha-256`).
pub fn change_password(pg: &PgCluster, role: &str, password: &str, method: &str) {
    pg.psql(&format!(
        "SET password_encryption = '{method}'; ALTER ROLE {role} PASSWORD {}",
        quote_literal(password)
    ));
}

/// Why a login failed: (SQLSTATE, message); SQLSTATE is empty when the server sent none.
pub type Refusal = (String, String);

fn refusal(e: tokio_postgres::Error) -> Refusal {
    match e.as_db_error() {
        Some(db) => (db.code().code().to_owned(), db.message().to_owned()),
        None => (String::new(), e.to_string()),
    }
}

/// Logs in with tokio-postgres (which speaks md5, SCRAM and cleartext) and runs `sql` as a
/// simple query; returns the first column of its first row.
pub async fn query_as(
    port: u16,
    user: &str,
    db: &str,
    password: Option<&str>,
    sql: &str,
) -> Result<String, Refusal> {
    let (client, _driver) = connect(port, user, db, password).await.map_err(refusal)?;
    let messages = client.simple_query(sql).await.map_err(refusal)?;
    for m in messages {
        if let tokio_postgres::SimpleQueryMessage::Row(row) = m {
            return Ok(row.get(0).unwrap_or_default().to_owned());
        }
    }
    Ok(String::new())
}

/// Only logs in (no query, so no server connection is needed).
pub async fn login(port: u16, user: &str, db: &str, password: Option<&str>) -> Result<(), Refusal> {
    connect(port, user, db, password)
        .await
        .map(|_| ())
        .map_err(refusal)
}

/// Logs in as `user` and asks the server who it is (`current_user`).
pub async fn whoami(port: u16, user: &str, password: Option<&str>) -> Result<String, Refusal> {
    query_as(port, user, "postgres", password, "SELECT current_user").await
}

/// A raw StartupMessage from `source` (for example 127.0.0.2) to 127.0.0.1:`port`: the tag of
/// the first message that comes back and, for an ErrorResponse, its fields.
pub async fn startup_from(
    source: IpAddr,
    port: u16,
    user: &str,
    db: &str,
) -> (u8, HashMap<u8, String>) {
    let socket = TcpSocket::new_v4().expect("socket");
    socket
        .bind(SocketAddr::new(source, 0))
        .unwrap_or_else(|e| panic!("bind {source}: {e}"));
    let mut stream = tokio::time::timeout(
        Duration::from_secs(10),
        socket.connect(SocketAddr::from(([127, 0, 0, 1], port))),
    )
    .await
    .expect("connect within 10 s")
    .expect("connect");
    send(&mut stream, &startup_message(user, db, &[])).await;
    let (tag, body) = read_message(&mut stream, Duration::from_secs(10))
        .await
        .expect("an answer to the startup message");
    let fields = if tag == b'E' {
        error_fields(&body)
    } else {
        HashMap::new()
    };
    (tag, fields)
}

/// Runs the binary with `args` and the config `toml` (written to a temp file), expecting it to
/// exit by itself within 15 s.
pub fn run_pgcorral(args: &[&str], toml: &str) -> CmdOutput {
    let config = TempFile::new("pgcorral.toml", toml);
    let mut cmd = Command::new(super::stack::bin());
    cmd.args(args).arg("-c").arg(&config.path);
    run_cmd(&mut cmd, Duration::from_secs(15))
}

/// A command on the admin console, as `user` with `password`: Ok(first column of the first
/// row, or "" for a command without rows) or the refusal.
pub async fn console(
    port: u16,
    user: &str,
    password: Option<&str>,
    sql: &str,
) -> Result<String, Refusal> {
    query_as(port, user, "pgcorral", password, sql).await
}
