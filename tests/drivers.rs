//! Real Python drivers through pgcorral: psycopg 3 with `prepare_threshold=0` and asyncpg with its
//! statement cache, both preparing named statements, eight concurrent connections each, in session
//! mode and in transaction mode over fewer server connections than clients.
//!
//! The scripts are `tests/drivers/*_check.py`; they check every result themselves and exit 0 or
//! print what failed. They run in a virtualenv at `<repo>/target/py-drivers` with the exact
//! packages of `tests/drivers/requirements.txt`, made by `tests/drivers/venv.sh` on first use
//! (`.ci/run` makes it ahead of `cargo test`); it needs `python3` with `venv` (Debian:
//! `python3-venv`) and PyPI.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use common::stack::{Stack, StackConfig};
use common::{clear_pg_env, describe, run_cmd};

/// How long one driver script may run before it is killed and the test fails.
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(120);

/// How long creating the virtualenv (including downloads from PyPI) may take.
const VENV_TIMEOUT: Duration = Duration::from_secs(600);

/// Concurrent driver connections per script.
const CONNECTIONS: usize = 8;

/// Server connections in transaction mode: fewer than [`CONNECTIONS`], so clients share them.
const TRANSACTION_POOL_SIZE: usize = 2;

/// Server connections in session mode: one per client connection.
const SESSION_POOL_SIZE: usize = CONNECTIONS;

fn repo_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The virtualenv's python, after `tests/drivers/venv.sh` has made the virtualenv (or found it
/// complete). Made once per test binary: tests calling this at the same time wait for the first.
/// Panics with the script's output if it fails.
fn python() -> &'static Path {
    static PYTHON: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let made = PYTHON.get_or_init(|| {
        let venv = repo_dir().join("target").join("py-drivers");
        let mut cmd = Command::new("bash");
        cmd.arg(repo_dir().join("tests/drivers/venv.sh")).arg(&venv);
        let start = Instant::now();
        let out = run_cmd(&mut cmd, VENV_TIMEOUT);
        if !out.success() {
            return Err(format!(
                "`{}` failed with status {} (needs python3 with venv, e.g. Debian's python3-venv, \
                 and PyPI; .ci/run installs them)\n--- stdout ---\n{}\n--- stderr ---\n{}",
                describe(&cmd),
                out.status,
                out.stdout,
                out.stderr
            ));
        }
        eprintln!(
            "python venv {} ready in {:.1?}",
            venv.display(),
            start.elapsed()
        );
        Ok(venv.join("bin").join("python"))
    });
    match made {
        Ok(p) => p,
        Err(e) => panic!("{e}"),
    }
}

/// Starts a stack with `pool_mode` and `pool_size`, runs `tests/drivers/<script>` against it and
/// asserts that it exits 0, showing its output either way.
fn run_driver(script: &str, pool_mode: &str, pool_size: usize) {
    let python = python();
    let stack = Stack::start_with(StackConfig {
        pool: format!("pool_mode = \"{pool_mode}\"\npool_size = {pool_size}"),
        ..Default::default()
    });
    let mut cmd = Command::new(python);
    clear_pg_env(&mut cmd);
    cmd.env("PYTHONDONTWRITEBYTECODE", "1")
        .env_remove("PYTHONPATH")
        .arg("-u")
        .arg(repo_dir().join("tests/drivers").join(script))
        .args(["--port", &stack.port.to_string()])
        .args(["--mode", pool_mode])
        .args(["--pool-size", &pool_size.to_string()])
        .args(["--connections", &CONNECTIONS.to_string()]);
    let start = Instant::now();
    let out = run_cmd(&mut cmd, SCRIPT_TIMEOUT);
    let took = start.elapsed();
    assert!(
        out.success(),
        "{script} ({pool_mode} mode, pool_size {pool_size}) exited with status {} after {took:.1?}\n\
         --- stdout ---\n{}\n--- stderr ---\n{}",
        out.status,
        out.stdout,
        out.stderr
    );
    eprintln!("{script} ({pool_mode} mode) in {took:.1?}:\n{}", out.stdout);
    let servers = stack.server_connections("postgres");
    assert!(
        servers <= pool_size as i64,
        "{servers} server connections after {script}, pool_size is {pool_size}"
    );
}

#[test]
fn psycopg3_session_mode() {
    run_driver("psycopg3_check.py", "session", SESSION_POOL_SIZE);
}

#[test]
fn asyncpg_session_mode() {
    run_driver("asyncpg_check.py", "session", SESSION_POOL_SIZE);
}

/// The target: psycopg's named prepared statements (`_pg3_N`) while 8 connections share 2
/// server connections.
#[test]
fn psycopg3_transaction_mode_prepare_threshold_0() {
    run_driver("psycopg3_check.py", "transaction", TRANSACTION_POOL_SIZE);
}

/// The target: asyncpg's statement cache (`__asyncpg_stmt_N__`) and `conn.prepare()` while 8
/// connections share 2 server connections.
#[test]
fn asyncpg_transaction_mode_statement_cache() {
    run_driver("asyncpg_check.py", "transaction", TRANSACTION_POOL_SIZE);
}
