//! Integration-test harness for pgcorral: throwaway PostgreSQL 15 clusters, a running pooler, real clients, and waits with deadlines.
//!
//! Each test binary does `mod common;` and uses the submodules:
//! - [`pg`]: `PgCluster`, a real PostgreSQL 15 cluster in its own temp dir (primary or streaming replica).
//! - [`pooler`]: `Pooler`, the real pgcorral binary running as a child process.
//! - [`clients`]: `psql`, `pgbench`, tokio-postgres and raw wire-protocol clients.
//! - [`wait`]: `wait_until` / `wait_until_async`, condition polling with a deadline.
//! - [`authq`]: auth_query, auth_file and access-rule helpers (temp files, logins with SQLSTATE).
//!
//! Everything here is safe to use from tests running in parallel threads of one binary:
//! temp dirs and ports come from process-wide allocators.
//!
//! Temp dirs are `/tmp/pgcorral-test-<pid>-<n>`. Each owner removes its dir on drop; in addition, the first
//! dir made by a process reaps dirs left behind by test processes that no longer exist (for example a test
//! binary killed by a timeout), stopping any PostgreSQL server still running in them.
#![allow(dead_code)]

pub mod authq;
pub mod clients;
pub mod pg;
pub mod pooler;
pub mod raw;
pub mod stack;
pub mod tls;
pub mod wait;

use std::collections::BTreeSet;
use std::io::Read;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Mutex, Once, OnceLock};
use std::time::{Duration, Instant};

use clients::CmdOutput;

/// Where the PostgreSQL 15 binaries live on Debian 12.
pub const PG_BIN: &str = "/usr/lib/postgresql/15/bin";

/// Parent of the temp dirs: fixed (not `$TMPDIR`) so `postgres` can reach it and unix socket paths stay short.
const TEST_DIR_PARENT: &str = "/tmp";

/// Prefix of every temp dir the harness makes: `/tmp/pgcorral-test-<pid>-<n>`.
const TEST_DIR_PREFIX: &str = "pgcorral-test-";

/// Full path of a PostgreSQL binary, e.g. `pg_bin("psql")`.
pub fn pg_bin(name: &str) -> String {
    format!("{PG_BIN}/{name}")
}

/// Ports handed out by [`free_port`] in this process; never reused, so two clusters or poolers of one
/// test binary never get the same port.
static PORTS: Mutex<BTreeSet<u16>> = Mutex::new(BTreeSet::new());

/// A TCP port on 127.0.0.1 that was free a moment ago and was never handed out before in this process.
///
/// Binds `127.0.0.1:0`, reads the port the kernel chose, drops the listener.
pub fn free_port() -> u16 {
    for _ in 0..1000 {
        let listener =
            TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0 to find a free port");
        let port = listener
            .local_addr()
            .expect("local_addr of a bound listener")
            .port();
        drop(listener);
        let mut ports = PORTS.lock().unwrap_or_else(|e| e.into_inner());
        if ports.insert(port) {
            return port;
        }
    }
    panic!("could not find a free port that was not handed out before (1000 tries)");
}

static DIR_COUNTER: AtomicU64 = AtomicU64::new(0);
static REAP_STALE: Once = Once::new();

/// Makes a new, empty `/tmp/pgcorral-test-<pid>-<n>` dir (mode as per umask, owned by the caller).
/// The caller owns it and must remove it.
pub fn new_test_dir() -> PathBuf {
    REAP_STALE.call_once(reap_stale_test_dirs);
    let pid = std::process::id();
    loop {
        let n = DIR_COUNTER.fetch_add(1, Ordering::Relaxed);
        let dir = Path::new(TEST_DIR_PARENT).join(format!("{TEST_DIR_PREFIX}{pid}-{n}"));
        match std::fs::create_dir(&dir) {
            Ok(()) => return dir,
            // Left over by an earlier process that had the same pid: leave it alone, take the next number.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => panic!("cannot create test dir {}: {e}", dir.display()),
        }
    }
}

/// Removes `/tmp/pgcorral-test-<pid>-<n>` dirs whose `<pid>` is no longer a running process, after an
/// immediate stop of any PostgreSQL server still running from them. Best effort, never panics.
fn reap_stale_test_dirs() {
    let Ok(entries) = std::fs::read_dir(Path::new(TEST_DIR_PARENT)) else {
        return;
    };
    let me = std::process::id();
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(rest) = name.to_str().and_then(|n| n.strip_prefix(TEST_DIR_PREFIX)) else {
            continue;
        };
        let Some(pid) = rest.split('-').next().and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        if pid == me || Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        let dir = entry.path();
        let data = dir.join("data");
        if data.join("postmaster.pid").exists() {
            let mut cmd = pg_command("pg_ctl");
            cmd.arg("stop")
                .arg("-D")
                .arg(&data)
                .args(["-m", "immediate", "-w", "-t", "30"]);
            cmd.current_dir(&dir);
            let _ = run_cmd(&mut cmd, Duration::from_secs(40));
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}

/// True when this process runs as root (then PostgreSQL server binaries must run as `postgres`).
pub fn is_root() -> bool {
    static ROOT: OnceLock<bool> = OnceLock::new();
    *ROOT.get_or_init(|| {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata("/proc/self")
            .map(|m| m.uid() == 0)
            .unwrap_or(false)
    })
}

/// uid and gid of the `postgres` OS user, from `/etc/passwd`.
pub fn postgres_ids() -> (u32, u32) {
    static IDS: OnceLock<(u32, u32)> = OnceLock::new();
    *IDS.get_or_init(|| {
        let passwd = std::fs::read_to_string("/etc/passwd").expect("read /etc/passwd");
        for line in passwd.lines() {
            let fields: Vec<&str> = line.split(':').collect();
            if fields.len() >= 4 && fields[0] == "postgres" {
                if let (Ok(uid), Ok(gid)) = (fields[2].parse(), fields[3].parse()) {
                    return (uid, gid);
                }
            }
        }
        panic!("no `postgres` user in /etc/passwd: install postgresql-15 (apt-get install postgresql-15)");
    })
}

/// When running as root, makes `path` owned by `postgres` so the server binaries (run as `postgres`)
/// can write there. No-op otherwise.
pub fn give_to_postgres(path: &Path) {
    if is_root() {
        let (uid, gid) = postgres_ids();
        std::os::unix::fs::chown(path, Some(uid), Some(gid))
            .unwrap_or_else(|e| panic!("chown postgres {}: {e}", path.display()));
    }
}

/// A command for a PostgreSQL server-side binary (`initdb`, `pg_ctl`, `pg_basebackup`, ...):
/// `runuser -u postgres -- <PG_BIN>/<name>` when root, `<PG_BIN>/<name>` otherwise.
pub fn pg_command(name: &str) -> Command {
    let bin = pg_bin(name);
    let mut cmd = if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(bin);
        c
    } else {
        Command::new(bin)
    };
    clear_pg_env(&mut cmd);
    cmd
}

/// Removes libpq environment variables inherited from the caller's environment that would change where or
/// how a client connects.
pub fn clear_pg_env(cmd: &mut Command) {
    for var in [
        "PGHOST",
        "PGHOSTADDR",
        "PGPORT",
        "PGUSER",
        "PGDATABASE",
        "PGPASSWORD",
        "PGPASSFILE",
        "PGSERVICE",
        "PGSERVICEFILE",
        "PGOPTIONS",
        "PGSSLMODE",
        "PGREQUIRESSL",
        "PGCONNECT_TIMEOUT",
        "PGTARGETSESSIONATTRS",
        "PGDATA",
    ] {
        cmd.env_remove(var);
    }
}

/// Runs `cmd` to completion with stdin from /dev/null, capturing stdout and stderr, killing it after
/// `timeout`. Never panics: a spawn failure or a timeout gives status -1 and an explanation in `stderr`.
/// A process killed by a signal gives status -1 too.
pub fn run_cmd(cmd: &mut Command, timeout: Duration) -> CmdOutput {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            return CmdOutput {
                status: -1,
                stdout: String::new(),
                stderr: format!("failed to spawn {}: {e}", describe(cmd)),
            }
        }
    };
    // Read both pipes on threads so a chatty child never blocks on a full pipe.
    let (tx, rx) = mpsc::channel::<(bool, Vec<u8>)>();
    if let Some(mut out) = child.stdout.take() {
        let tx = tx.clone();
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = out.read_to_end(&mut buf);
            let _ = tx.send((true, buf));
        });
    }
    if let Some(mut err) = child.stderr.take() {
        let tx = tx.clone();
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = err.read_to_end(&mut buf);
            let _ = tx.send((false, buf));
        });
    }
    drop(tx);

    let start = Instant::now();
    let mut pause = Duration::from_millis(1);
    let mut note = String::new();
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break s.code().unwrap_or(-1),
            Ok(None) => {}
            Err(e) => {
                note = format!("\n[harness: waiting for {} failed: {e}]", describe(cmd));
                let _ = child.kill();
                let _ = child.wait();
                break -1;
            }
        }
        if start.elapsed() >= timeout {
            note = format!(
                "\n[harness: killed {} after a timeout of {timeout:?}]",
                describe(cmd)
            );
            let _ = child.kill();
            let _ = child.wait();
            break -1;
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(20));
    };

    // The pipes close when the child exits, unless it left a grandchild holding them: don't wait forever.
    let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
    let collect_deadline = Instant::now() + Duration::from_secs(5);
    for _ in 0..2 {
        let left = collect_deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok((true, b)) => stdout = b,
            Ok((false, b)) => stderr = b,
            Err(_) => break,
        }
    }
    CmdOutput {
        status,
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned() + &note,
    }
}

/// `program arg1 arg2 ...` of a command, without its environment.
pub fn describe(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    s
}

/// The last `n` lines of `text`.
pub fn tail_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Reads a file as (lossy) UTF-8; empty string if it cannot be read.
pub fn read_lossy(path: &Path) -> String {
    std::fs::read(path)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default()
}
