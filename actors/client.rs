//! ClientActor: one per client connection. After login it owns its socket and, for the length
//! of a transaction (or a session), its server connection, and moves bytes between them
//! itself: headers are inspected, bodies are forwarded in bulk, nothing goes through a
//! mailbox per message.

use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use actix::prelude::*;
use bytes::{Buf, BytesMut};
use pgcorral::config::PoolMode;
use pgcorral::protocol::backend::{self, TxStatus};
use pgcorral::protocol::scanner::Verdict;
use pgcorral::protocol::tag::{backend as be, frontend as fe};
use pgcorral::protocol::{builder, Scanner};
use pgcorral::session::params::{is_tracked_reported, ParamSet};
use slog::{debug, info, o, Logger};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::cancel::{send_cancel, CancelKey, CancelTarget};
use crate::error::{ClientError, ServerError};
use crate::login::{checkout_error, login, LoggedIn, LoginOutcome};
use crate::pool::PoolShard;
use crate::salvage::salvage;
use crate::server::{ServerConn, SERVER_READ_SIZE};
use crate::worker::Worker;

/// How much a client read asks for at once.
const CLIENT_READ_SIZE: usize = 8 * 1024;

static NEXT_CLIENT_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

/// The actor for one client connection.
pub struct ClientActor {
    session: Option<Session>,
}

impl ClientActor {
    pub fn new(stream: TcpStream, peer: std::net::SocketAddr, worker: Rc<Worker>) -> Self {
        let id = NEXT_CLIENT_ID.fetch_add(1, Ordering::Relaxed);
        let log = worker
            .shared
            .log
            .new(o!("client" => id, "peer" => peer.to_string()));
        ClientActor {
            session: Some(Session {
                stream,
                buf: BytesMut::new(),
                worker,
                log,
            }),
        }
    }
}

impl Actor for ClientActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        if let Some(session) = self.session.take() {
            ctx.spawn(
                actix::fut::wrap_future::<_, Self>(session.run())
                    .map(|_, _, ctx: &mut Context<Self>| ctx.stop()),
            );
        }
    }
}

/// Keeps the client counts true however the session ends.
struct ClientCount(Rc<Worker>);

impl Drop for ClientCount {
    fn drop(&mut self) {
        self.0.shared.clients.fetch_sub(1, Ordering::AcqRel);
        self.0.clients.set(self.0.clients.get().saturating_sub(1));
    }
}

/// A client connection before login.
struct Session {
    stream: TcpStream,
    buf: BytesMut,
    worker: Rc<Worker>,
    log: Logger,
}

impl Session {
    async fn run(mut self) {
        let _count = ClientCount(self.worker.clone());
        let general = self.worker.shared.general();
        let work = login(&mut self.stream, &mut self.buf, &self.worker);
        let outcome = match general.client_login_timeout {
            Some(t) => tokio::time::timeout(t, work)
                .await
                .unwrap_or(Err(ClientError::LoginTimeout(t))),
            None => work.await,
        };
        match outcome {
            Ok(LoginOutcome::LoggedIn(l)) => {
                let mut conn = Connected::new(self, l);
                info!(conn.log, "client logged in");
                let result = conn.serve().await;
                conn.finish(result).await;
            }
            Ok(LoginOutcome::CancelHandled) => {}
            Err(e) => {
                debug!(self.log, "login failed"; "error" => %e);
                tell(&mut self.stream, &e).await;
            }
        }
    }
}

/// Sends a FATAL ErrorResponse for `e` if the client can still hear it.
async fn tell(stream: &mut TcpStream, e: &ClientError) {
    if !e.tellable() {
        return;
    }
    let mut out = BytesMut::new();
    builder::error_response(&mut out, "FATAL", e.sqlstate(), &e.to_string());
    let _ = tokio::time::timeout(Duration::from_secs(1), stream.write_all(&out)).await;
}

/// What the next wait is for, when a timer is armed.
#[derive(Debug, Clone, Copy)]
enum Timer {
    Query,
    IdleTransaction,
    ClientIdle,
}

/// A logged-in client.
struct Connected {
    stream: TcpStream,
    /// Client bytes read and not yet forwarded.
    buf: BytesMut,
    /// Message boundaries in the client-to-server direction.
    scanner: Scanner,
    /// Settings the client expects on every server connection.
    settings: ParamSet,
    shard: Rc<PoolShard>,
    mode: PoolMode,
    key: CancelKey,
    worker: Rc<Worker>,
    log: Logger,
    server: Option<ServerConn>,
    /// When the running request was sent (for query_timeout).
    query_started: Option<Instant>,
    /// When the server went quiet inside a transaction (for idle_transaction_timeout).
    quiet_since: Option<Instant>,
    /// query_timeout fired and a cancel was sent.
    timed_out: bool,
    /// The client sent Terminate.
    terminated: bool,
}

impl Connected {
    fn new(s: Session, l: LoggedIn) -> Connected {
        let settings = &l.shard.global.settings;
        let log = s.log.new(o!("pool" => settings.label()));
        // `auto` pins a server while session state exists; until state tracking lands it
        // keeps the server for the session, which is always correct.
        let mode = match settings.mode {
            PoolMode::Auto => PoolMode::Session,
            m => m,
        };
        Connected {
            stream: s.stream,
            buf: s.buf,
            scanner: Scanner::new(s.worker.shared.max_message_size()),
            settings: l.params.settings,
            mode,
            shard: l.shard,
            key: l.key,
            worker: s.worker,
            log,
            server: None,
            query_started: None,
            quiet_since: None,
            timed_out: false,
            terminated: false,
        }
    }

    /// The main loop: returns Ok when the client leaves, Err when the connection must end
    /// with an error.
    async fn serve(&mut self) -> Result<(), ClientError> {
        loop {
            if self.server.is_none() {
                if self.worker.shared.is_shutting_down() {
                    return Err(ClientError::ShuttingDown);
                }
                if self.buf.is_empty() && !self.wait_idle_client().await? {
                    return Ok(());
                }
            }
            self.forward_client().await?;
            if self.terminated {
                return Ok(());
            }
            if self.server.is_some() {
                self.wait_attached().await?;
            }
        }
    }

    /// Waits for a client without a server. Holds no read buffer meanwhile. Returns false
    /// when the client closed the connection.
    async fn wait_idle_client(&mut self) -> Result<bool, ClientError> {
        if self.buf.capacity() > 0 {
            self.buf = BytesMut::new();
        }
        let idle = self.shard.global.settings.client_idle_timeout;
        tokio::select! {
            r = self.stream.readable() => r?,
            _ = self.worker.shutdown.notified() => return Err(ClientError::ShuttingDown),
            _ = sleep_opt(idle.map(|t| Instant::now() + t)) => {
                return Err(ClientError::ClientIdleTimeout(idle.unwrap_or_default()))
            }
        }
        self.buf.reserve(CLIENT_READ_SIZE);
        Ok(self.stream.read_buf(&mut self.buf).await? > 0)
    }

    /// Forwards buffered client messages to the server, checking one out first if needed.
    async fn forward_client(&mut self) -> Result<(), ClientError> {
        loop {
            if self.buf.is_empty() {
                return Ok(());
            }
            if self.scanner.at_boundary() && self.buf[0] == fe::TERMINATE {
                self.terminated = true;
                return Ok(());
            }
            if self.server.is_none() {
                self.attach().await?;
            }
            let Some(server) = self.server.as_mut() else {
                return Ok(());
            };
            let was_quiet = server.exchange.is_quiet();
            let exchange = &mut server.exchange;
            let scan = self.scanner.scan(
                &self.buf,
                |_| false,
                |tag, _| {
                    if tag == fe::TERMINATE {
                        Verdict::StopBefore
                    } else {
                        exchange.frontend(tag);
                        Verdict::Forward
                    }
                },
            )?;
            if scan.forward > 0 {
                server
                    .stream
                    .write_all(&self.buf[..scan.forward])
                    .await
                    .map_err(|e| ClientError::ServerGone(e.to_string()))?;
                self.buf.advance(scan.forward);
            }
            if was_quiet && !server.exchange.is_quiet() {
                self.query_started = Some(Instant::now());
                self.quiet_since = None;
            }
            if !scan.stopped {
                return Ok(());
            }
        }
    }

    /// Checks out a server connection and prepares it for this client.
    async fn attach(&mut self) -> Result<(), ClientError> {
        let mut server = self
            .shard
            .checkout()
            .await
            .map_err(|e| checkout_error(&self.shard, e))?;
        let before = server.params.clone();
        if let Err(e) = server.sync_params(&self.settings).await {
            let broken = !matches!(e, ServerError::Query(_));
            self.shard.discard(server, broken);
            return Err(match e {
                ServerError::Query(f) => ClientError::ServerRejected(f),
                e => ClientError::ServerGone(e.to_string()),
            });
        }
        if server.params != before {
            // Adopt the server's spelling of what the client asked for (DateStyle "iso" is
            // reported as "ISO, MDY"), so the next comparison matches.
            for (name, value) in server.params.iter() {
                if is_tracked_reported(name) && self.settings.get(name).is_some() {
                    self.settings.set(name, value);
                }
            }
        }
        self.key.slot.set(Some(CancelTarget {
            addr: server.addr,
            pid: server.key.0,
            secret: server.key.1,
        }));
        self.server = Some(server);
        Ok(())
    }

    /// Returns the server connection to the pool.
    fn detach(&mut self) {
        if let Some(server) = self.server.take() {
            self.key.slot.set(None);
            self.query_started = None;
            self.quiet_since = None;
            self.timed_out = false;
            self.shard.checkin(server);
        }
    }

    /// With a server attached: waits for server output or more client input, and handles
    /// query_timeout and idle_transaction_timeout.
    async fn wait_attached(&mut self) -> Result<(), ClientError> {
        let settings = &self.shard.global.settings;
        let (deadline, timer, idle) = {
            let Some(server) = self.server.as_ref() else {
                return Ok(());
            };
            let x = &server.exchange;
            if !x.is_quiet() {
                match (settings.query_timeout, self.query_started, self.timed_out) {
                    (Some(t), Some(s), false) => (Some(s + t), Timer::Query, false),
                    _ => (None, Timer::Query, false),
                }
            } else if x.tx != TxStatus::Idle {
                let since = *self.quiet_since.get_or_insert_with(Instant::now);
                (
                    settings.idle_transaction_timeout.map(|t| since + t),
                    Timer::IdleTransaction,
                    false,
                )
            } else {
                let since = *self.quiet_since.get_or_insert_with(Instant::now);
                (
                    settings.client_idle_timeout.map(|t| since + t),
                    Timer::ClientIdle,
                    true,
                )
            }
        };
        let Some(server) = self.server.as_mut() else {
            return Ok(());
        };
        if server.buf.capacity() - server.buf.len() < 1024 {
            server.buf.reserve(SERVER_READ_SIZE);
        }
        if self.buf.capacity() - self.buf.len() < 1024 {
            self.buf.reserve(CLIENT_READ_SIZE);
        }
        tokio::select! {
            biased;
            r = server.stream.read_buf(&mut server.buf) => {
                match r {
                    Ok(0) => Err(ClientError::ServerGone("the server closed the connection".into())),
                    Ok(_) => self.forward_server().await,
                    Err(e) => Err(ClientError::ServerGone(e.to_string())),
                }
            }
            r = self.stream.read_buf(&mut self.buf) => {
                if r? == 0 {
                    return Err(std::io::Error::from(std::io::ErrorKind::UnexpectedEof).into());
                }
                Ok(())
            }
            _ = sleep_opt(deadline) => self.timer_fired(timer).await,
            // A session-mode client between transactions leaves at shutdown like an idle one.
            _ = self.worker.shutdown.notified(), if idle => Err(ClientError::ShuttingDown),
        }
    }

    async fn timer_fired(&mut self, timer: Timer) -> Result<(), ClientError> {
        let settings = &self.shard.global.settings;
        match timer {
            Timer::Query => {
                self.timed_out = true;
                if let Some(target) = self.key.slot.get() {
                    info!(self.log, "query_timeout: canceling the running query"; "server" => %target.addr);
                    actix_rt::spawn(async move {
                        let _ = send_cancel(target).await;
                    });
                }
                Ok(())
            }
            Timer::IdleTransaction => Err(ClientError::IdleTransactionTimeout(
                settings.idle_transaction_timeout.unwrap_or_default(),
            )),
            Timer::ClientIdle => Err(ClientError::ClientIdleTimeout(
                settings.client_idle_timeout.unwrap_or_default(),
            )),
        }
    }

    /// Forwards buffered server output to the client; returns the server to the pool when
    /// the exchange is over and the pool mode allows.
    async fn forward_server(&mut self) -> Result<(), ClientError> {
        let Some(server) = self.server.as_mut() else {
            return Ok(());
        };
        loop {
            let timed_out = self.timed_out;
            let settings = &mut self.settings;
            let ServerConn {
                buf,
                scanner,
                exchange,
                params,
                ..
            } = server;
            let mut bad = None;
            let mut rewrite = false;
            let mut refuse = false;
            let statement_mode = self.mode == PoolMode::Statement;
            let scan = scanner.scan(
                buf,
                |t| {
                    matches!(t, be::READY_FOR_QUERY | be::PARAMETER_STATUS)
                        || (timed_out && t == be::ERROR_RESPONSE)
                },
                |tag, msg| match tag {
                    be::READY_FOR_QUERY => {
                        match backend::ready_status(msg) {
                            Ok(s) => {
                                exchange.backend(tag, Some(s));
                                // Statement mode: a transaction left open is refused before the
                                // client sees ReadyForQuery.
                                if statement_mode && s != TxStatus::Idle && exchange.is_quiet() {
                                    refuse = true;
                                    return Verdict::StopBefore;
                                }
                            }
                            Err(e) => bad = Some(e),
                        }
                        Verdict::Forward
                    }
                    be::PARAMETER_STATUS => {
                        if let Ok((name, value)) = backend::parameter_status(&msg[5..]) {
                            params.set(name, value);
                            if is_tracked_reported(name) {
                                settings.set(name, value);
                            }
                        }
                        Verdict::Forward
                    }
                    be::ERROR_RESPONSE if timed_out => {
                        rewrite = backend::error_fields(&msg[5..]).code == "57014";
                        if rewrite {
                            Verdict::StopBefore
                        } else {
                            Verdict::Forward
                        }
                    }
                    _ => {
                        exchange.backend(tag, None);
                        Verdict::Forward
                    }
                },
            )?;
            if let Some(e) = bad {
                return Err(ClientError::ServerGone(e.to_string()));
            }
            if scan.forward > 0 {
                self.stream.write_all(&buf[..scan.forward]).await?;
                buf.advance(scan.forward);
            }
            if let Some(needs) = scan.needs {
                buf.reserve(needs.saturating_sub(buf.len()));
            }
            if refuse {
                buf.advance(6); // the ReadyForQuery the client must not see
                return Err(ClientError::StatementModeTransaction);
            }
            if !rewrite {
                break;
            }
            // query_timeout canceled this query: say so instead of "user request".
            let len = 1 + u32::from_be_bytes([buf[1], buf[2], buf[3], buf[4]]) as usize;
            buf.advance(len);
            let t = self.shard.global.settings.query_timeout.unwrap_or_default();
            let mut out = BytesMut::new();
            builder::error_response(
                &mut out,
                "ERROR",
                "57014",
                &format!("canceling statement due to query_timeout ({t:?})"),
            );
            self.stream.write_all(&out).await?;
            self.timed_out = false;
        }
        if !server.exchange.is_quiet() {
            return Ok(());
        }
        self.query_started = None;
        self.timed_out = false;
        let idle = server.exchange.is_idle();
        match self.mode {
            PoolMode::Transaction | PoolMode::Statement if idle && self.buf.is_empty() => {
                self.detach()
            }
            _ => {}
        }
        Ok(())
    }

    /// Ends the connection: tells the client why if there is an error, and gives the server
    /// connection back (salvaged if the client left mid-transaction, reset in session mode).
    async fn finish(&mut self, result: Result<(), ClientError>) {
        match &result {
            Ok(()) => debug!(self.log, "client left"),
            Err(e) => {
                info!(self.log, "closing client connection"; "reason" => %e);
                tell(&mut self.stream, e).await;
            }
        }
        let Some(server) = self.server.take() else {
            return;
        };
        self.key.slot.set(None);
        let reset = match self.mode {
            PoolMode::Session | PoolMode::Auto => {
                Some(self.shard.global.settings.reset_query.clone()).filter(|q| !q.is_empty())
            }
            _ => None,
        };
        if server.exchange.is_idle() && reset.is_none() && server.scanner.at_boundary() {
            self.shard.checkin(server);
        } else if self.scanner.at_boundary() {
            salvage(self.shard.clone(), server, reset, self.log.clone());
        } else {
            // Half a message went to the server: its stream cannot be repaired.
            info!(
                self.log,
                "closing server connection: client left in the middle of a message"
            );
            self.shard.discard(server, true);
        }
    }
}

/// Sleeps until `deadline`, or forever when there is none.
async fn sleep_opt(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d.into()).await,
        None => std::future::pending().await,
    }
}
