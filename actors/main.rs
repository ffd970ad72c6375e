//! pgcorral: the daemon. Command line, logging, the actix System and its worker threads (one
//! per `workers`), and signals (SIGTERM/SIGINT shut down gracefully; a second one, at once).

mod admin;
mod auth_query;
mod balancer;
mod budget;
mod cancel;
mod client;
mod client_stream;
mod cluster;
mod error;
mod framed;
mod handoff;
mod health;
mod listener;
mod login;
mod logins;
mod metrics;
mod negotiate;
mod parking;
mod pool;
mod registry;
mod reload;
mod salvage;
mod server;
mod server_state;
mod server_stream;
mod shards;
mod shared;
mod signal;
mod snapshot;
mod stalled;
mod tls;
mod worker;
mod worker_thread;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::Actor;
use actix_rt::System;
use clap::{Parser, Subcommand};
use pgcorral::config::{self, Config, ConfigError, LogLevel};
use slog::{crit, info, o, warn, Drain, Logger};
use tokio::signal::unix::{signal, Signal, SignalKind};

use crate::balancer::BalancerActor;
use crate::health::HealthCheckActor;
use crate::shared::{Loaded, Shared};
use crate::tls::TlsConfigs;
use crate::worker::Worker;
use crate::worker_thread::WorkerThread;

/// A PostgreSQL connection pooler and proxy.
#[derive(Parser, Debug)]
#[command(name = "pgcorral", version, about)]
struct Cli {
    /// Configuration file (default: config/pgcorral.toml, else /etc/pgcorral/pgcorral.toml).
    #[arg(short = 'c', long = "config", global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Load and validate the configuration, print `ok` or each problem, and exit.
    Check,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // The TLS files are read here, on the main thread, before any arbiter runs.
    let loaded = load(cli.config.clone()).and_then(|(config, source)| {
        let tls = TlsConfigs::load(&config.general).map_err(|e| e.to_string())?;
        Ok((config, source, tls))
    });
    match cli.command {
        // The files the configuration names (auth_file, auth_hba_file) are checked too.
        Some(Command::Check) => match loaded
            .map_err(|e| e.to_string())
            .and_then(|(c, _, _)| Loaded::new(c))
        {
            Ok(_) => {
                println!("ok");
                ExitCode::SUCCESS
            }
            Err(e) => {
                println!("{e}");
                ExitCode::FAILURE
            }
        },
        None => match loaded {
            Ok((config, source, tls)) => run(config, source, tls),
            Err(e) => {
                eprintln!("pgcorral: configuration error:\n{e}");
                ExitCode::FAILURE
            }
        },
    }
}

/// Loads the configuration from the given path, the default paths, or the embedded default.
fn load(path: Option<PathBuf>) -> Result<(Config, Option<PathBuf>), String> {
    let env = config::process_env();
    match path.or_else(config::default_path) {
        Some(p) => config::load_file(&p, &env).map(|c| (c, Some(p))),
        None => config::load_str(config::EMBEDDED_DEFAULT, &env).map(|c| (c, None)),
    }
    .map_err(|e: ConfigError| e.to_string())
}

fn logger(level: LogLevel) -> Logger {
    let decorator = slog_term::PlainSyncDecorator::new(std::io::stderr());
    let drain = slog_term::FullFormat::new(decorator).build().fuse();
    let level = match level {
        LogLevel::Error => slog::Level::Error,
        LogLevel::Warn => slog::Level::Warning,
        LogLevel::Info => slog::Level::Info,
        LogLevel::Debug => slog::Level::Debug,
        LogLevel::Trace => slog::Level::Trace,
    };
    Logger::root(slog::LevelFilter::new(drain, level).fuse(), o!())
}

fn run(config: Config, path: Option<PathBuf>, tls: TlsConfigs) -> ExitCode {
    let source = path
        .as_ref()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| "embedded default".into());
    let log = logger(config.general.log_level);
    let general = config.general.clone();
    let loaded = match Loaded::new(config) {
        Ok(l) => l,
        Err(e) => {
            crit!(log, "configuration error"; "error" => e);
            return ExitCode::FAILURE;
        }
    };
    let shared = Shared::new(loaded, tls, log.clone(), path);
    let actor_log = log.clone();
    let system = System::new();
    let code = system.block_on(async move {
        // Signal handlers first: once the listeners are bound the kernel accepts connections,
        // and a supervisor that sees the port open may already send SIGTERM.
        let Some(signals) = Signals::install() else {
            crit!(shared.log, "cannot install signal handlers");
            return ExitCode::FAILURE;
        };
        let mut listeners = Vec::new();
        for _ in 0..shared.workers {
            match listener::bind(general.listen, general.listen_backlog) {
                Ok(l) => listeners.push(l),
                Err(e) => {
                    crit!(shared.log, "cannot listen"; "addr" => %general.listen, "error" => %e);
                    return ExitCode::FAILURE;
                }
            }
        }
        if let Some(addr) = general.metrics_listen {
            if let Err(e) = metrics::start(shared.clone(), addr) {
                crit!(shared.log, "cannot listen for metrics"; "addr" => %addr, "error" => %e);
                return ExitCode::FAILURE;
            }
        }
        info!(shared.log, "pgcorral starting"; "version" => env!("CARGO_PKG_VERSION"), "config" => source,
            "listen" => %general.listen, "workers" => shared.workers);
        // The balancer and the health checker run on the main arbiter, off the client path.
        let balancer = BalancerActor { log: actor_log }.start();
        let health = HealthCheckActor::new(balancer.clone()).start();
        let _ = shared.balancer.set(balancer);
        let _ = shared.health.set(health);
        let mut threads = Vec::new();
        for (index, listener) in listeners.into_iter().enumerate() {
            let thread = match WorkerThread::start(format!("pgcorral-worker-{index}")) {
                Ok(thread) => thread,
                Err(e) => {
                    crit!(shared.log, "cannot start a worker thread"; "error" => %e);
                    return ExitCode::FAILURE;
                }
            };
            let shared = shared.clone();
            thread.spawn(async move {
                let worker = Worker::install(index, shared);
                actix_rt::spawn(listener::accept_loop(listener, worker));
            });
            threads.push(thread);
        }
        let _ = shared
            .worker_threads
            .set(threads.iter().map(WorkerThread::handle).collect());
        actix_rt::spawn(snapshot::run_stats_period(shared.clone()));
        let code = handle_signals(signals, &shared, &threads).await;
        for t in &threads {
            t.stop();
        }
        code
    });
    info!(log, "pgcorral stopped");
    code
}

/// The signals pgcorral handles.
struct Signals {
    term: Signal,
    int: Signal,
    hup: Signal,
    usr1: Signal,
    usr2: Signal,
}

impl Signals {
    fn install() -> Option<Signals> {
        Some(Signals {
            term: signal(SignalKind::terminate()).ok()?,
            int: signal(SignalKind::interrupt()).ok()?,
            hup: signal(SignalKind::hangup()).ok()?,
            usr1: signal(SignalKind::user_defined1()).ok()?,
            usr2: signal(SignalKind::user_defined2()).ok()?,
        })
    }
}

/// Waits for signals until shutdown is complete; returns the exit status.
async fn handle_signals(
    signals: Signals,
    shared: &Arc<Shared>,
    threads: &[WorkerThread],
) -> ExitCode {
    let Signals {
        mut term,
        mut int,
        mut hup,
        mut usr1,
        mut usr2,
    } = signals;
    let log = &shared.log;
    loop {
        tokio::select! {
            _ = term.recv() => break,
            _ = int.recv() => break,
            _ = hup.recv() => {
                info!(log, "SIGHUP: reloading the configuration");
                let _ = reload::reload(shared).await;
            }
            _ = usr1.recv() => {
                info!(log, "SIGUSR1: pausing every pool (new transactions wait until SIGUSR2 or RESUME)");
                shared.pause.pause(None);
            }
            _ = usr2.recv() => {
                info!(log, "SIGUSR2: resuming every pool");
                shared.pause.resume(None);
            }
            _ = shared.shutdown_request.notified() => {
                info!(log, "SHUTDOWN from the admin console");
                break;
            }
        }
    }
    let timeout = shared.general().shutdown_timeout;
    info!(log, "shutting down: no new clients; waiting for clients in a transaction";
        "clients" => shared.clients.load(Ordering::Relaxed), "shutdown_timeout" => ?timeout);
    shared.shutting_down.store(true, Ordering::SeqCst);
    for t in threads {
        t.spawn(async {
            if let Some(w) = Worker::current() {
                w.begin_shutdown();
            }
        });
    }
    let started = Instant::now();
    loop {
        let left = shared.clients.load(Ordering::Acquire);
        if left == 0 {
            info!(log, "all clients gone");
            break;
        }
        if started.elapsed() >= timeout {
            warn!(log, "shutdown_timeout reached; closing remaining clients"; "clients" => left);
            break;
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(20)) => {}
            _ = term.recv() => { warn!(log, "second signal: shutting down at once"); break; }
            _ = int.recv() => { warn!(log, "second signal: shutting down at once"); break; }
        }
    }
    ExitCode::SUCCESS
}
