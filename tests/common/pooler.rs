//! The real pgcorral binary as a child process: config in a temp dir, output to a log file, readiness by TCP connect.
//!
//! Typical use:
//! ```ignore
//! let pg = PgCluster::start();
//! let port = Pooler::free_port();
//! let pooler = Pooler::start(env!("CARGO_BIN_EXE_pgcorral"), &format!(
//!     "listen = \"127.0.0.1:{port}\"\n...backend port {}...", pg.port));
//! ```

use std::fs::File;
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use super::{new_test_dir, read_lossy, run_cmd, tail_lines};

/// How long [`Pooler::start`] waits for the listen port to accept a TCP connection.
const READY_DEADLINE: Duration = Duration::from_secs(15);

/// A running pooler process. Dropping it SIGKILLs the process (if still running), reaps it and removes its dir.
#[derive(Debug)]
pub struct Pooler {
    /// The port of the `listen = "127.0.0.1:NNNN"` line of the config.
    pub port: u16,
    /// PID of the child process.
    pub pid: u32,
    /// The config file the pooler was started with (`<dir>/pgcorral.toml`); rewrite it and
    /// `signal(1)` (SIGHUP) to test reloads.
    pub config_path: PathBuf,
    /// The pooler's temp dir `/tmp/pgcorral-test-<pid>-<n>`.
    pub dir: PathBuf,
    /// stdout and stderr of the pooler (`<dir>/pooler.log`).
    pub log_path: PathBuf,
    child: Child,
    exit: Option<ExitStatus>,
    /// The log was already printed in a panic message: don't print it again on drop.
    log_shown: bool,
}

impl Pooler {
    /// Writes `config_toml` into a temp dir, runs `<bin> -c <config>`, and waits (15 s) until
    /// 127.0.0.1:<listen port> accepts a TCP connection. Panics, with the pooler's log, if the process
    /// cannot be spawned, exits first, or the deadline passes. `bin` is `env!("CARGO_BIN_EXE_pgcorral")`.
    pub fn start(bin: &str, config_toml: &str) -> Pooler {
        Pooler::start_with_env(bin, config_toml, &[])
    }

    /// Like [`Pooler::start`] with extra environment variables for the pooler process.
    pub fn start_with_env(bin: &str, config_toml: &str, env: &[(&str, &str)]) -> Pooler {
        let port = listen_port(config_toml).unwrap_or_else(|| {
            panic!(
                "Pooler::start: the config has no `listen = \"127.0.0.1:NNNN\"` line \
                 (take a port from Pooler::free_port()); config:\n{config_toml}"
            )
        });
        let dir = new_test_dir();
        let config_path = dir.join("pgcorral.toml");
        let log_path = dir.join("pooler.log");
        let spawned = std::fs::write(&config_path, config_toml)
            .map_err(|e| format!("cannot write {}: {e}", config_path.display()))
            .and_then(|()| {
                let log = File::create(&log_path)
                    .map_err(|e| format!("cannot create {}: {e}", log_path.display()))?;
                let log2 = log
                    .try_clone()
                    .map_err(|e| format!("cannot dup log file: {e}"))?;
                let mut cmd = Command::new(bin);
                cmd.arg("-c")
                    .arg(&config_path)
                    .current_dir(&dir)
                    .stdin(Stdio::null())
                    .stdout(log)
                    .stderr(log2);
                for (k, v) in env {
                    cmd.env(k, v);
                }
                cmd.spawn()
                    .map_err(|e| format!("failed to spawn pooler binary `{bin}`: {e}"))
            });
        let child = match spawned {
            Ok(child) => child,
            Err(msg) => {
                let _ = std::fs::remove_dir_all(&dir);
                panic!("Pooler::start: {msg}");
            }
        };
        let mut pooler = Pooler {
            port,
            pid: child.id(),
            config_path,
            dir,
            log_path,
            child,
            exit: None,
            log_shown: false,
        };
        // `pooler` is dropped (killed, dir removed) if this panics.
        pooler.wait_ready(bin);
        pooler
    }

    /// A free 127.0.0.1 port, never handed out before in this process (shared with the PostgreSQL clusters).
    pub fn free_port() -> u16 {
        super::free_port()
    }

    /// The pooler's stdout+stderr so far.
    pub fn log(&self) -> String {
        read_lossy(&self.log_path)
    }

    /// Sends signal `sig` (e.g. 1 = SIGHUP, 2 = SIGINT, 15 = SIGTERM) to this child via `kill -<sig> <pid>`.
    /// Does nothing if the child has already been reaped by `wait_exit`/`is_running` (its PID may belong to
    /// someone else by then); an exited but unreaped child is a zombie that still holds its PID.
    pub fn signal(&self, sig: i32) {
        if self.exit.is_some() {
            return;
        }
        let mut cmd = Command::new("kill");
        cmd.arg(format!("-{sig}")).arg(self.pid.to_string());
        let out = run_cmd(&mut cmd, Duration::from_secs(10));
        assert_eq!(
            out.status, 0,
            "kill -{sig} {} failed: {}{}",
            self.pid, out.stdout, out.stderr
        );
    }

    /// Waits up to `deadline` for the process to exit; its exit status, or None if it is still running.
    pub fn wait_exit(&mut self, deadline: Duration) -> Option<ExitStatus> {
        let start = Instant::now();
        loop {
            if let Some(status) = self.try_exit() {
                return Some(status);
            }
            if start.elapsed() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Whether the process is still running (reaps it if it has exited).
    pub fn is_running(&mut self) -> bool {
        self.try_exit().is_none()
    }

    /// The exit status if the process has exited (reaping it), None while it runs.
    fn try_exit(&mut self) -> Option<ExitStatus> {
        if self.exit.is_none() {
            if let Ok(Some(status)) = self.child.try_wait() {
                self.exit = Some(status);
            }
        }
        self.exit
    }

    fn wait_ready(&mut self, bin: &str) {
        let addr = SocketAddr::from(([127, 0, 0, 1], self.port));
        let start = Instant::now();
        loop {
            if let Some(status) = self.try_exit() {
                self.log_shown = true;
                panic!(
                    "pooler `{bin}` exited with {status} before accepting connections on {addr}\n\
                     --- pooler log ({}) ---\n{}\n--- config ---\n{}",
                    self.log_path.display(),
                    self.log(),
                    read_lossy(&self.config_path)
                );
            }
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                return;
            }
            if start.elapsed() >= READY_DEADLINE {
                self.log_shown = true;
                panic!(
                    "pooler `{bin}` (pid {}) did not accept connections on {addr} within {READY_DEADLINE:?}\n\
                     --- pooler log ({}) ---\n{}\n--- config ---\n{}",
                    self.pid,
                    self.log_path.display(),
                    self.log(),
                    read_lossy(&self.config_path)
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Pooler {
    fn drop(&mut self) {
        if self.try_exit().is_none() {
            // SIGKILL by PID; the child is not reaped yet, so the PID is still ours.
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        if std::thread::panicking() && !self.log_shown {
            eprintln!(
                "--- pooler log (pid {}, port {}), last 100 lines ---\n{}\n--- end of pooler log ---",
                self.pid,
                self.port,
                tail_lines(&self.log(), 100)
            );
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The port of the first `listen = "HOST:PORT"` line (any table) of a TOML config.
pub fn listen_port(config_toml: &str) -> Option<u16> {
    config_toml.lines().find_map(|line| {
        let line = line.split('#').next()?.trim();
        let (key, value) = line.split_once('=')?;
        if key.trim() != "listen" {
            return None;
        }
        let value = value.trim().trim_matches(|c| c == '"' || c == '\'');
        value.rsplit_once(':')?.1.parse().ok()
    })
}
