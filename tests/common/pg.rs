//! Throwaway PostgreSQL 15 clusters: initdb into `/tmp/pgcorral-test-<pid>-<n>/data`, start, replicate, promote, stop.
//!
//! Layout of a cluster's dir (`PgCluster::dir`, owned by `postgres` when running as root):
//! - `data/`: the data directory (mode 0700);
//! - `postgres.log`: the server log (`pg_ctl -l`);
//! - `.s.PGSQL.<port>`: the unix socket (`unix_socket_directories` is the dir itself).
//!
//! The server listens on 127.0.0.1 only. The superuser is `postgres`, trusted from 127.0.0.1 unless
//! `PgOptions::hba` lines say otherwise.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::clients::CmdOutput;
use super::{
    free_port, give_to_postgres, new_test_dir, pg_bin, pg_command, read_lossy, run_cmd, tail_lines,
};

/// How long a `psql` run by the harness itself may take before it is killed.
const PSQL_TIMEOUT: Duration = Duration::from_secs(120);
/// `pg_ctl -t` for start, stop and promote.
const PG_CTL_WAIT_SECS: u64 = 60;

/// How a role's password is stored (`password_encryption` when the role is created).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PasswordMethod {
    Md5,
    Scram,
}

impl PasswordMethod {
    fn encryption(self) -> &'static str {
        match self {
            PasswordMethod::Md5 => "md5",
            PasswordMethod::Scram => "scram-sha-256",
        }
    }
}

/// Options for [`PgCluster::start_with`].
#[derive(Debug, Clone)]
pub struct PgOptions {
    /// `max_connections` (default 100). `superuser_reserved_connections` stays at PostgreSQL's default of 3
    /// (so other roles get `max_connections - 3` slots), lowered to `max_connections - 1` when
    /// `max_connections` is 3 or less; set it in `extra_conf` to override.
    pub max_connections: u32,
    /// Extra `postgresql.conf` lines, appended last (so they override the harness's settings).
    pub extra_conf: Vec<String>,
    /// Extra `pg_hba.conf` lines, inserted before the default trust lines,
    /// e.g. `host all md5user 127.0.0.1/32 md5`.
    pub hba: Vec<String>,
    /// `wal_level = replica`, `max_wal_senders = 10` and a `host replication all 127.0.0.1/32 trust` line,
    /// so that [`PgCluster::start_replica`] works.
    pub replication: bool,
}

impl Default for PgOptions {
    fn default() -> Self {
        PgOptions {
            max_connections: 100,
            extra_conf: Vec::new(),
            hba: Vec::new(),
            replication: false,
        }
    }
}

/// A running (until stopped or dropped) PostgreSQL 15 cluster. Dropping it stops the server
/// (`-m immediate`) and removes its dir.
#[derive(Debug)]
pub struct PgCluster {
    /// TCP port on 127.0.0.1.
    pub port: u16,
    /// The cluster's own base dir `/tmp/pgcorral-test-<pid>-<n>`: data dir, log and unix socket live here.
    pub dir: PathBuf,
    /// `dir/data`.
    pub data_dir: PathBuf,
    /// `dir/postgres.log`.
    pub log_path: PathBuf,
    /// The options the cluster was started with (a replica has its primary's).
    pub opts: PgOptions,
    /// Whether this cluster was made by `start_replica`.
    pub is_replica: bool,
    running: bool,
    /// The log was already printed in a panic message: don't print it again on drop.
    log_shown: AtomicBool,
}

impl PgCluster {
    /// A cluster with default options.
    pub fn start() -> PgCluster {
        PgCluster::start_with(PgOptions::default())
    }

    /// initdb + configure + `pg_ctl start -w`. Panics with the PostgreSQL log if the server fails to start.
    pub fn start_with(opts: PgOptions) -> PgCluster {
        let mut cluster = PgCluster::empty(opts, false);
        // `cluster` is dropped (dir removed) if anything below panics.
        cluster.initdb();
        cluster.write_config();
        cluster.start_server(true);
        cluster
    }

    /// A streaming replica of this cluster (which must have been started with `replication: true`):
    /// `pg_basebackup -R -X stream` into a new dir, a new port, started; returns once it accepts connections.
    pub fn start_replica(&self) -> PgCluster {
        assert!(
            self.opts.replication,
            "start_replica needs a primary started with PgOptions {{ replication: true, .. }}"
        );
        let mut replica = PgCluster::empty(self.opts.clone(), true);
        let mut cmd = pg_command("pg_basebackup");
        cmd.current_dir(&replica.dir)
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-U",
                "postgres",
                "-D",
            ])
            .arg(&replica.data_dir)
            .args(["-R", "-X", "stream", "-c", "fast", "--no-sync", "-w"]);
        let out = run_cmd(&mut cmd, Duration::from_secs(120));
        if out.status != 0 {
            panic!(
                "pg_basebackup from port {} failed (status {}):\n{}{}\n--- primary log ({}) ---\n{}",
                self.port,
                out.status,
                out.stdout,
                out.stderr,
                self.log_path.display(),
                tail_lines(&self.log(), 100)
            );
        }
        // The copied postgresql.conf has the primary's port and socket dir: later lines win.
        replica.append_conf(&format!(
            "\n# pgcorral test harness: replica overrides\nport = {}\nunix_socket_directories = '{}'\n",
            replica.port,
            replica.dir.display()
        ));
        replica.start_server(true);
        replica
    }

    /// `pg_ctl promote -w`: returns once the server has left recovery. Panics with the log on failure.
    pub fn promote(&self) {
        let mut cmd = pg_command("pg_ctl");
        cmd.current_dir(&self.dir)
            .arg("promote")
            .arg("-D")
            .arg(&self.data_dir)
            .args(["-w", "-t", &PG_CTL_WAIT_SECS.to_string()]);
        let out = run_cmd(&mut cmd, Duration::from_secs(PG_CTL_WAIT_SECS + 10));
        if out.status != 0 {
            self.log_shown.store(true, Ordering::Relaxed);
            panic!(
                "pg_ctl promote failed (status {}):\n{}{}\n--- log ({}) ---\n{}",
                out.status,
                out.stdout,
                out.stderr,
                self.log_path.display(),
                tail_lines(&self.log(), 100)
            );
        }
    }

    /// Runs SQL as `postgres` in database `postgres`; panics with stderr on failure; returns trimmed stdout
    /// (unaligned, tuples only: one row per line, columns separated by `|`).
    pub fn psql(&self, sql: &str) -> String {
        self.psql_db("postgres", sql)
    }

    /// Like [`PgCluster::psql`] in database `db`.
    pub fn psql_db(&self, db: &str, sql: &str) -> String {
        let out = self.psql_raw(db, sql);
        if out.status != 0 {
            panic!(
                "psql on port {} db {db} failed (status {}): {}\nSQL: {sql}",
                self.port,
                out.status,
                out.stderr.trim()
            );
        }
        out.stdout.trim().to_string()
    }

    /// Like [`PgCluster::psql_db`] but returns the outcome instead of panicking.
    pub fn psql_raw(&self, db: &str, sql: &str) -> CmdOutput {
        let mut cmd = std::process::Command::new(pg_bin("psql"));
        super::clear_pg_env(&mut cmd);
        cmd.args([
            "-X",
            "-q",
            "-At",
            "-w",
            "-v",
            "ON_ERROR_STOP=1",
            "-h",
            "127.0.0.1",
            "-p",
        ])
        .arg(self.port.to_string())
        .args(["-U", "postgres", "-d", db, "-c", sql])
        .env("PGCONNECT_TIMEOUT", "10");
        run_cmd(&mut cmd, PSQL_TIMEOUT)
    }

    /// `SET password_encryption = ...; CREATE ROLE name LOGIN PASSWORD '...'` in one session.
    pub fn create_role(&self, name: &str, password: &str, method: PasswordMethod) {
        self.psql(&format!(
            "SET password_encryption = '{}'; CREATE ROLE {} LOGIN PASSWORD {}",
            method.encryption(),
            quote_ident(name),
            quote_literal(password)
        ));
    }

    /// A tokio-postgres connection string for this cluster over TCP (no password: add ` password=...`).
    pub fn conn_str(&self, user: &str, db: &str) -> String {
        format!(
            "host=127.0.0.1 port={} user={} dbname={} connect_timeout=10",
            self.port,
            conn_value(user),
            conn_value(db)
        )
    }

    /// Number of client backends connected to `db` as `user` (not counting the query's own backend).
    pub fn backend_count(&self, db: &str, user: &str) -> i64 {
        let out = self.psql(&format!(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = {} AND usename = {} \
             AND backend_type = 'client backend' AND pid <> pg_backend_pid()",
            quote_literal(db),
            quote_literal(user)
        ));
        out.parse()
            .unwrap_or_else(|e| panic!("backend_count: cannot parse {out:?}: {e}"))
    }

    /// `pg_terminate_backend` for every client backend of `user` (other than the query's own), waiting up to
    /// 5 s for each to be gone.
    pub fn kill_backends(&self, user: &str) {
        self.psql(&format!(
            "SELECT count(pg_terminate_backend(pid, 5000)) FROM pg_stat_activity WHERE usename = {} \
             AND backend_type = 'client backend' AND pid <> pg_backend_pid()",
            quote_literal(user)
        ));
    }

    /// `pg_ctl stop -m immediate`. Idempotent; never panics.
    pub fn stop(&mut self) {
        self.stop_mode("immediate");
    }

    /// `pg_ctl stop -m fast` (clean shutdown, checkpoint). Idempotent; never panics.
    pub fn stop_fast(&mut self) {
        self.stop_mode("fast");
    }

    /// Starts the server again after [`PgCluster::stop`], on the same port. Panics with the log on failure.
    pub fn restart(&mut self) {
        self.stop_mode("fast");
        self.start_server(false);
    }

    /// `pg_ctl reload` (after editing `pg_hba.conf` or `postgresql.conf` via [`PgCluster::append_conf`]).
    pub fn reload(&self) {
        let mut cmd = pg_command("pg_ctl");
        cmd.current_dir(&self.dir)
            .arg("reload")
            .arg("-D")
            .arg(&self.data_dir);
        let out = run_cmd(&mut cmd, Duration::from_secs(30));
        assert_eq!(
            out.status, 0,
            "pg_ctl reload failed: {}{}",
            out.stdout, out.stderr
        );
    }

    /// Whether the server is (as far as the harness knows) running: started and not stopped.
    pub fn is_running(&self) -> bool {
        self.running
    }

    /// PID of the postmaster, from `postmaster.pid` (None when not running).
    pub fn postmaster_pid(&self) -> Option<u32> {
        let text = std::fs::read_to_string(self.data_dir.join("postmaster.pid")).ok()?;
        text.lines().next()?.trim().parse().ok()
    }

    /// The server log contents.
    pub fn log(&self) -> String {
        read_lossy(&self.log_path)
    }

    /// Appends text to `postgresql.conf` (takes effect on restart or, for reloadable settings, reload).
    pub fn append_conf(&self, text: &str) {
        let path = self.data_dir.join("postgresql.conf");
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
        f.write_all(text.as_bytes())
            .unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    }

    // ---- internals ----

    /// A not-yet-initialized cluster with its own dir (owned by postgres) and port.
    fn empty(opts: PgOptions, is_replica: bool) -> PgCluster {
        let dir = new_test_dir();
        give_to_postgres(&dir);
        PgCluster {
            port: free_port(),
            data_dir: dir.join("data"),
            log_path: dir.join("postgres.log"),
            dir,
            opts,
            is_replica,
            running: false,
            log_shown: AtomicBool::new(false),
        }
    }

    fn initdb(&self) {
        let mut cmd = pg_command("initdb");
        cmd.current_dir(&self.dir)
            .arg("-D")
            .arg(&self.data_dir)
            .args([
                "-U",
                "postgres",
                "--auth=trust",
                "-N",
                "-E",
                "UTF8",
                "--locale=C",
            ]);
        let out = run_cmd(&mut cmd, Duration::from_secs(120));
        if out.status != 0 {
            panic!(
                "initdb failed (status {}):\n{}{}",
                out.status, out.stdout, out.stderr
            );
        }
    }

    fn write_config(&self) {
        let o = &self.opts;
        let mut conf = String::from("\n# pgcorral test harness\n");
        let _ = writeln!(conf, "listen_addresses = '127.0.0.1'");
        let _ = writeln!(conf, "port = {}", self.port);
        let _ = writeln!(conf, "unix_socket_directories = '{}'", self.dir.display());
        let _ = writeln!(conf, "max_connections = {}", o.max_connections);
        if o.max_connections <= 3 {
            let _ = writeln!(
                conf,
                "superuser_reserved_connections = {}",
                o.max_connections.saturating_sub(1)
            );
        }
        let _ = writeln!(conf, "password_encryption = 'scram-sha-256'");
        let _ = writeln!(conf, "fsync = off");
        let _ = writeln!(conf, "synchronous_commit = off");
        let _ = writeln!(conf, "full_page_writes = off");
        let _ = writeln!(conf, "logging_collector = off");
        let _ = writeln!(conf, "log_min_messages = warning");
        if o.replication {
            let _ = writeln!(conf, "wal_level = replica");
            let _ = writeln!(conf, "max_wal_senders = 10");
        }
        for line in &o.extra_conf {
            let _ = writeln!(conf, "{line}");
        }
        self.append_conf(&conf);

        let mut hba = String::from("# pgcorral test harness\n");
        for line in &o.hba {
            let _ = writeln!(hba, "{line}");
        }
        hba.push_str("local all all trust\n");
        hba.push_str("host all all 127.0.0.1/32 trust\n");
        if o.replication {
            hba.push_str("host replication all 127.0.0.1/32 trust\n");
        }
        // Overwrites initdb's file (keeps its owner and mode).
        let path = self.data_dir.join("pg_hba.conf");
        std::fs::write(&path, hba).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    }

    /// `pg_ctl start -w`. If the port was taken in the meantime (by a process outside this test binary), retries
    /// on a new port when `may_change_port`, else after a pause on the same port.
    fn start_server(&mut self, may_change_port: bool) {
        let started = Instant::now();
        let mut attempt = 0;
        loop {
            attempt += 1;
            let log_before = self.log().len();
            let mut cmd = pg_command("pg_ctl");
            cmd.current_dir(&self.dir)
                .arg("start")
                .arg("-D")
                .arg(&self.data_dir)
                .arg("-l")
                .arg(&self.log_path)
                .args(["-w", "-t", &PG_CTL_WAIT_SECS.to_string()]);
            // From here on a postmaster may exist: make sure drop stops it.
            self.running = true;
            let out = run_cmd(&mut cmd, Duration::from_secs(PG_CTL_WAIT_SECS + 10));
            if out.status == 0 {
                return;
            }
            self.stop();
            let log = self.log();
            let new_log = log.get(log_before..).unwrap_or(&log);
            if new_log.contains("Address already in use") && attempt < 4 {
                if may_change_port {
                    self.port = free_port();
                    self.append_conf(&format!("port = {}\n", self.port));
                } else {
                    std::thread::sleep(Duration::from_millis(500));
                }
                continue;
            }
            self.log_shown.store(true, Ordering::Relaxed);
            panic!(
                "PostgreSQL in {} failed to start on port {} (pg_ctl status {}, after {:?}, attempt {attempt}):\n\
                 {}{}\n--- PostgreSQL log ({}) ---\n{}",
                self.data_dir.display(),
                self.port,
                out.status,
                started.elapsed(),
                out.stdout,
                out.stderr,
                self.log_path.display(),
                log
            );
        }
    }

    fn stop_mode(&mut self, mode: &str) {
        if !self.running && !self.data_dir.join("postmaster.pid").exists() {
            return;
        }
        let mut cmd = pg_command("pg_ctl");
        cmd.current_dir(&self.dir)
            .arg("stop")
            .arg("-D")
            .arg(&self.data_dir)
            .args(["-m", mode, "-w", "-t", &PG_CTL_WAIT_SECS.to_string()]);
        let _ = run_cmd(&mut cmd, Duration::from_secs(PG_CTL_WAIT_SECS + 10));
        self.running = false;
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        if std::thread::panicking()
            && !self.log_shown.load(Ordering::Relaxed)
            && self.log_path.exists()
        {
            eprintln!(
                "--- PostgreSQL log of port {} ({}), last 60 lines ---\n{}\n--- end of log ---",
                self.port,
                self.log_path.display(),
                tail_lines(&self.log(), 60)
            );
        }
        self.stop();
        remove_dir(&self.dir);
    }
}

/// `remove_dir_all`, retried briefly (a server that just exited may still be unlinking files).
fn remove_dir(dir: &Path) {
    for _ in 0..10 {
        match std::fs::remove_dir_all(dir) {
            Ok(()) => return,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return,
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    }
    let _ = std::fs::remove_dir_all(dir);
}

/// An SQL string literal: `'it''s'`.
pub fn quote_literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// An SQL identifier: `"My Role"`.
pub fn quote_ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

/// A libpq/tokio-postgres connection-string value, quoted when needed.
fn conn_value(s: &str) -> String {
    if !s.is_empty() && !s.contains([' ', '\'', '\\', '=']) {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"))
    }
}
