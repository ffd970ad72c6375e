//! ClientActor: one per client connection. After login it owns its socket and, for the length
//! of a transaction (or a session), its server connection, and moves bytes between them
//! itself: headers are inspected, bodies are forwarded in bulk, nothing goes through a
//! mailbox per message.

use std::cell::Cell;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use actix::prelude::*;
use bytes::{Buf, BytesMut};
use pgcorral::config::PoolMode;
use pgcorral::protocol::backend::{self, TxStatus};
use pgcorral::protocol::codec::checked_total_len;
use pgcorral::protocol::frontend::{bind_message, parse_message, BindParam};
use pgcorral::protocol::scanner::Verdict;
use pgcorral::protocol::tag::{backend as be, frontend as fe};
use pgcorral::protocol::{builder, Scanner, HEADER_LEN};
use pgcorral::route::{parse_extension, Extension, RoleSetting, ShardSetting};
use pgcorral::session::params::{is_tracked_reported, ClientSettings};
use pgcorral::session::pins::SessionTracker;
use pgcorral::session::prepared::{
    is_deallocate_all, mentions_pooler_name, names_statement, rename_in_error, ClientStatements,
    Reply, Rewriter, StatementRegistry,
};
use pgcorral::session::state::{self, PinReason};
use slog::{debug, info, o, warn, Logger};
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

use crate::admin;
use crate::cancel::{send_cancel, CancelKey, CancelTarget};
use crate::client_stream::ClientStream;
use crate::cluster::Cluster;
use crate::error::{ClientError, ServerError};
use crate::login::{checkout_error, login, ClientOrigin, LoggedIn, LoginOutcome};
use crate::negotiate::{open, Opening};
use crate::pool::{CheckoutError, PoolShard, Traffic};
use crate::registry::{ClientInfo, ClientState};
use crate::salvage::salvage;
use crate::server::{ServerConn, SERVER_READ_SIZE};
use crate::server_state::BanReason;
use crate::server_stream::ServerStream;
use crate::shards::{ShardError, Shards};
use crate::stalled::{write_all_watched, WriteFailed};
use crate::worker::Worker;
use crate::worker::{ClientCount, Registered};

/// How much a client read asks for at once.
const CLIENT_READ_SIZE: usize = 8 * 1024;
/// Clients on an arbiter above which a new client parks right after login.
const PARK_AT_LOGIN_ABOVE: usize = 64;
/// Buffers larger than this are given back when the client goes idle.
const KEEP_WHILE_IDLE: usize = 4 * CLIENT_READ_SIZE;
/// Pause before choosing again when no server fits (waiting for a primary, or for roles).
const RETRY_PAUSE: Duration = Duration::from_millis(100);

static NEXT_CLIENT_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

/// The actor for one client connection. It owns the client's session, which runs as a task of
/// its own on the same arbiter: a wake-up of the data path (a socket became readable) then
/// polls the session alone, not the actor's context (its mailbox and spawned items) as well.
/// The actor stops when the session ends, and ends the session if it is stopped first.
pub struct ClientActor {
    start: Option<Start>,
    session: Option<tokio::task::AbortHandle>,
}

/// How a client actor begins.
enum Start {
    /// A new connection: login first.
    Login(Session),
    /// A parked client woken up; `why`, when given, ends it.
    Resume {
        client: Box<ParkedClient>,
        stream: ClientStream,
        why: Option<ClientError>,
    },
}

impl ClientActor {
    pub fn new(stream: TcpStream, peer: std::net::SocketAddr, count: ClientCount) -> Self {
        let worker = count.worker().clone();
        let id = NEXT_CLIENT_ID.fetch_add(1, Ordering::Relaxed);
        let log = worker.shared.log.new(o!("client" => id, "peer" => peer));
        ClientActor {
            start: Some(Start::Login(Session {
                id,
                peer,
                stream: ClientStream::Plain(stream),
                buf: BytesMut::new(),
                worker,
                log,
                count,
            })),
            session: None,
        }
    }

    /// Starts the actor of a parked client again (or of one that could not park).
    pub fn resume(client: Box<ParkedClient>, stream: ClientStream, why: Option<ClientError>) {
        ClientActor {
            start: Some(Start::Resume {
                client,
                stream,
                why,
            }),
            session: None,
        }
        .start();
    }

    /// Runs `session` as a task of this arbiter and stops the actor when it ends.
    fn own(
        &mut self,
        ctx: &mut Context<Self>,
        session: impl std::future::Future<Output = ()> + 'static,
    ) {
        let task = actix_rt::spawn(session);
        self.session = Some(task.abort_handle());
        ctx.spawn(
            actix::fut::wrap_future::<_, Self>(task)
                .map(|_, _, ctx: &mut Context<Self>| ctx.stop()),
        );
    }
}

impl Actor for ClientActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        match self.start.take() {
            Some(Start::Login(session)) => self.own(ctx, session.run()),
            Some(Start::Resume {
                client,
                stream,
                why,
            }) => {
                let conn = Connected::unpark(*client, stream);
                self.own(ctx, conn.run(why));
            }
            None => {}
        }
    }

    fn stopped(&mut self, _: &mut Context<Self>) {
        if let Some(session) = self.session.take() {
            session.abort();
        }
    }
}

/// A client connection before login.
struct Session {
    id: u64,
    peer: std::net::SocketAddr,
    stream: ClientStream,
    buf: BytesMut,
    worker: Rc<Worker>,
    log: Logger,
    count: ClientCount,
}

impl Session {
    async fn run(mut self) {
        let general = self.worker.shared.general();
        // Rarely taken or short-lived branches are boxed: an idle client's future is only as
        // large as the biggest state it can be in, and a boxed branch costs no space there.
        let cap = general
            .max_logins_in_progress
            .div_ceil(general.workers.max(1));
        let ticket = self.worker.logins.admit(cap);
        let work = Box::pin(async {
            match open(&mut self.stream, &mut self.buf, &self.worker).await? {
                Opening::Startup { params, transport } => {
                    login(
                        &mut self.stream,
                        &mut self.buf,
                        &self.worker,
                        params,
                        &ClientOrigin::new(self.peer.ip(), &transport),
                    )
                    .await
                }
                Opening::Cancel => Ok(LoginOutcome::CancelHandled),
            }
        });
        let timed = async {
            match general.client_login_timeout {
                Some(t) => tokio::time::timeout(t, work)
                    .await
                    .unwrap_or(Err(ClientError::LoginTimeout(t))),
                None => work.await,
            }
        };
        let outcome = tokio::select! {
            outcome = timed => outcome,
            _ = ticket.evicted() => Err(ClientError::LoginEvicted(general.max_logins_in_progress)),
        };
        drop(ticket);
        match outcome {
            Ok(LoginOutcome::LoggedIn(l)) => {
                let conn = Connected::new(self, l);
                match conn.info.tls {
                    Some(tls) => info!(conn.log, "client logged in"; "tls" => %tls),
                    None => info!(conn.log, "client logged in"),
                }
                conn.run(None).await;
            }
            Ok(LoginOutcome::CancelHandled) => {}
            Ok(LoginOutcome::Admin(user)) => {
                info!(self.log, "admin console login"; "user" => &user.name, "admin" => user.admin,
                    "tls" => self.stream.is_tls());
                let shared = self.worker.shared.clone();
                let shutdown = self.worker.shutdown.clone();
                let served = Box::pin(admin::serve(
                    &mut self.stream,
                    &mut self.buf,
                    &shared,
                    user,
                    &self.log,
                    &shutdown,
                ));
                if let Err(e) = served.await {
                    tell(&mut self.stream, &e).await;
                }
            }
            Err(e) => {
                debug!(self.log, "login failed"; "error" => %e);
                tell(&mut self.stream, &e).await;
            }
        }
    }
}

/// Sends a FATAL ErrorResponse for `e` if the client can still hear it.
async fn tell(stream: &mut ClientStream, e: &ClientError) {
    if !e.tellable() {
        return;
    }
    let mut out = BytesMut::new();
    builder::error_response(&mut out, "FATAL", e.sqlstate(), &e.to_string());
    let _ = tokio::time::timeout(Duration::from_secs(1), stream.send(&out)).await;
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
    stream: ClientStream,
    /// Client bytes read and not yet forwarded.
    buf: BytesMut,
    /// Message boundaries in the client-to-server direction.
    scanner: Scanner,
    /// Settings the client expects on every server connection.
    settings: ClientSettings,
    /// What the admin console shows of this client.
    info: Rc<ClientInfo>,
    /// Its place in the registry (and in the client counts).
    registered: Registered,
    /// When the current transaction started (for SHOW STATS).
    xact_started: Option<Instant>,
    /// The pool's shards and servers on this arbiter.
    shards: Rc<Shards>,
    /// The shard of the attached connection (meaningful while `server` is Some).
    shard: usize,
    /// The member (server) of that shard whose connection is attached.
    member: usize,
    /// `SET SHARD` / `SET SHARDING KEY`, kept for the following transactions.
    shard_setting: Option<ShardSetting>,
    /// Named statements this client prepared (renamed on servers in transaction pooling;
    /// automatic sharding reads the key of a later Bind from their text).
    statements: ClientStatements,
    /// Named statements are renamed and tracked per server connection (transaction,
    /// statement and auto mode with max_prepared_statements > 0).
    track_prepared: bool,
    /// max_prepared_statements of the pool.
    prepared_cap: usize,
    /// Bytes staged for one write when messages had to be rewritten.
    out: BytesMut,
    /// The client's server role setting (`SET SERVER ROLE`, else the pool's default_role).
    role: RoleSetting,
    /// The pool mode, with `auto` served as transaction mode plus pinning.
    mode: PoolMode,
    /// The pool's mode is `auto`: pinning is expected, not warned about.
    auto: bool,
    /// Session state this client leaves on its server connection (not in session mode).
    tracker: SessionTracker,
    key: CancelKey,
    worker: Rc<Worker>,
    log: Logger,
    server: Option<Box<ServerConn>>,
    /// When the running request was sent (for query_timeout).
    query_started: Option<Instant>,
    /// When the server went quiet inside a transaction (for idle_transaction_timeout).
    quiet_since: Option<Instant>,
    /// query_timeout fired and a cancel was sent.
    timed_out: bool,
    /// The client sent Terminate.
    terminated: bool,
    /// Just logged in while many clients are: park at the first idle wait instead of after
    /// a sweep period, so the memory of the login is given back before the next clients log
    /// in. With few clients the memory does not matter and parking at once would cost a
    /// short-lived client (one query per connection) a park and a wake-up.
    park_soon: bool,
}

/// How a logged-in client's service ends.
enum Served {
    /// The client left.
    Left,
    /// The client sat idle for a sweep period: it parks (with its client_idle_timeout
    /// deadline, if any).
    Park(Option<Instant>),
}

/// What an idle wait ended with.
enum Idle {
    /// Bytes were read.
    Data,
    /// The client closed the connection.
    Closed,
    Park(Option<Instant>),
}

/// A parked client: all of [`Connected`] that outlives an idle period (no socket, buffers,
/// server connection or logger; those come back when it wakes). Every idle client is one of
/// these, so it is kept small: what most clients never use is boxed apart, and only when
/// used.
pub struct ParkedClient {
    settings: ClientSettings,
    info: Rc<ClientInfo>,
    registered: Registered,
    shards: Rc<Shards>,
    shard: u32,
    member: u32,
    role: RoleSetting,
    mode: PoolMode,
    auto: bool,
    shard_setting: Option<ShardSetting>,
    extras: Option<Box<ParkedExtras>>,
    key: CancelKey,
    /// client_idle_timeout runs on while parked.
    pub deadline: Option<Instant>,
}

/// The parts of a parked client that are empty for most clients.
struct ParkedExtras {
    statements: ClientStatements,
    tracker: SessionTracker,
}

impl ParkedClient {
    pub fn info(&self) -> &ClientInfo {
        &self.info
    }

    /// The pool's client_idle_timeout.
    pub fn pool_idle_timeout(&self) -> Option<Duration> {
        self.shards.clusters[self.shard as usize]
            .settings()
            .client_idle_timeout
    }
}

impl Connected {
    fn new(s: Session, l: LoggedIn) -> Connected {
        let settings = l.shards.clusters[0].settings();
        let log = s.log.new(o!("pool" => settings.label()));
        // `auto` is transaction pooling that keeps a server attached while session state
        // exists on it (transaction and statement mode pin too, with a warning).
        let auto = settings.mode == PoolMode::Auto;
        let mode = match settings.mode {
            PoolMode::Auto => PoolMode::Transaction,
            m => m,
        };
        let info = Rc::new(ClientInfo {
            id: s.id,
            user: s.worker.intern_name(&l.params.user),
            database: s.worker.intern_name(&l.params.database),
            addr: s.peer,
            local: s.stream.local_addr().ok(),
            tls: s.stream.tls_summary(),
            connect_time: std::time::SystemTime::now(),
            application_name: l
                .params
                .settings
                .get("application_name")
                .unwrap_or_default()
                .to_owned(),
            cancel_pid: l.key.pid,
            state: Cell::new(ClientState::Active),
            request_time: Cell::new(Instant::now()),
            waiting_since: Cell::new(None),
            server: Cell::new(None),
            killed: Cell::new(false),
            pinned: Cell::new(false),
            parked: Cell::new(None),
        });
        let registered = s.worker.register_client(info.clone(), s.count);
        let client = ParkedClient {
            settings: ClientSettings::new(s.worker.intern_settings(l.params.settings)),
            info,
            registered,
            role: l.shards.clusters[0].default_role,
            shards: l.shards,
            shard: 0,
            member: 0,
            mode,
            auto,
            shard_setting: None,
            extras: None,
            key: l.key,
            deadline: None,
        };
        let park_soon = s.worker.clients.get() > PARK_AT_LOGIN_ABOVE;
        Connected::assemble(client, s.stream, s.buf, s.worker, log, park_soon)
    }

    /// Serves the client until it leaves or parks.
    async fn run(mut self, why: Option<ClientError>) {
        let result = match why {
            Some(e) => Err(e),
            None => self.serve().await,
        };
        match result {
            Ok(Served::Park(deadline)) => {
                let worker = self.worker.clone();
                let (client, stream) = self.park(deadline);
                let parked = match stream {
                    ClientStream::Plain(stream) => worker.parking.park(client, stream),
                    // Only plain sockets park (wait_idle_client asks no other to): carry on.
                    other => {
                        ClientActor::resume(Box::new(client), other, None);
                        Ok(())
                    }
                };
                if let Err(e) = parked {
                    debug!(worker.shared.log, "client lost while parking"; "error" => %e);
                }
            }
            Ok(Served::Left) => Box::pin(self.finish(Ok(()))).await,
            Err(e) => Box::pin(self.finish(Err(e))).await,
        }
    }

    /// Takes the client apart for parking (it holds no server and no unread bytes).
    fn park(self, deadline: Option<Instant>) -> (ParkedClient, ClientStream) {
        let Connected {
            stream,
            buf: _,
            scanner: _,
            settings,
            info,
            registered,
            xact_started: _,
            shards,
            shard,
            member,
            shard_setting,
            statements,
            track_prepared: _,
            prepared_cap: _,
            out: _,
            role,
            mode,
            auto,
            tracker,
            key,
            worker: _,
            log: _,
            server: _,
            query_started: _,
            quiet_since: _,
            timed_out: _,
            terminated: _,
            park_soon: _,
        } = self;
        let extras = (!statements.is_clear() || !tracker.is_clear()).then(|| {
            Box::new(ParkedExtras {
                statements,
                tracker,
            })
        });
        let client = ParkedClient {
            settings,
            info,
            registered,
            shards,
            shard: shard as u32,
            member: member as u32,
            role,
            mode,
            auto,
            shard_setting,
            extras,
            key,
            deadline,
        };
        (client, stream)
    }

    /// Puts a parked client together again around its socket.
    fn unpark(p: ParkedClient, stream: ClientStream) -> Connected {
        let worker = p.registered.worker().clone();
        let log = worker.shared.log.new(o!(
            "client" => p.info.id,
            "peer" => p.info.addr,
            "pool" => p.shards.clusters[0].settings().label(),
        ));
        Connected::assemble(p, stream, BytesMut::new(), worker, log, false)
    }

    /// A client at rest (between transactions, no server) around its socket: what a login
    /// and a wake-up both end with.
    fn assemble(
        p: ParkedClient,
        stream: ClientStream,
        buf: BytesMut,
        worker: Rc<Worker>,
        log: Logger,
        park_soon: bool,
    ) -> Connected {
        let (statements, tracker) = match p.extras {
            Some(e) => (e.statements, e.tracker),
            None => Default::default(),
        };
        let mut conn = Connected {
            stream,
            buf,
            scanner: Scanner::new(worker.shared.max_message_size()),
            settings: p.settings,
            info: p.info,
            registered: p.registered,
            xact_started: None,
            shards: p.shards,
            shard: p.shard as usize,
            member: p.member as usize,
            shard_setting: p.shard_setting,
            statements,
            track_prepared: false,
            prepared_cap: 0,
            out: BytesMut::new(),
            role: p.role,
            mode: p.mode,
            auto: p.auto,
            tracker,
            key: p.key,
            worker,
            log,
            server: None,
            query_started: None,
            quiet_since: None,
            timed_out: false,
            terminated: false,
            park_soon,
        };
        conn.refresh_prepared_settings();
        conn
    }

    /// The main loop: returns Ok when the client leaves, Err when the connection must end
    /// with an error.
    async fn serve(&mut self) -> Result<Served, ClientError> {
        loop {
            if self.info.killed.get() {
                return Err(ClientError::Killed);
            }
            if self.server.is_none() {
                if self.worker.shared.is_shutting_down() {
                    return Err(ClientError::ShuttingDown);
                }
                if self.buf.is_empty() {
                    match self.wait_idle_client().await? {
                        Idle::Data => {}
                        Idle::Closed => return Ok(Served::Left),
                        Idle::Park(deadline) => return Ok(Served::Park(deadline)),
                    }
                }
            }
            self.forward_client().await?;
            if self.terminated {
                return Ok(Served::Left);
            }
            if self.server.is_some() {
                self.wait_attached().await?;
            }
        }
    }

    /// Waits for a client without a server. A client still idle after a whole parking sweep
    /// period parks (and gives up its buffers); until then it keeps them, unless a large
    /// message grew them, so a busy client allocates nothing per transaction. TLS clients
    /// never park (parking watches raw sockets, and rustls may hold decrypted bytes).
    async fn wait_idle_client(&mut self) -> Result<Idle, ClientError> {
        if self.buf.capacity() > KEEP_WHILE_IDLE {
            self.buf = BytesMut::new();
        }
        if self.out.capacity() > KEEP_WHILE_IDLE {
            self.out = BytesMut::new();
        }
        let idle = self.cluster().read_settings(|s| s.client_idle_timeout);
        let deadline = idle.map(|t| Instant::now() + t);
        let since = self.worker.parking.epoch();
        let may_park =
            self.worker.parking.enabled() && matches!(self.stream, ClientStream::Plain(_));
        if std::mem::take(&mut self.park_soon) && may_park {
            return Ok(Idle::Park(deadline));
        }
        let read = loop {
            tokio::select! {
                r = self.stream.idle_input(&mut self.buf, CLIENT_READ_SIZE) => break r?,
                _ = self.worker.attention.notified() => {
                    if self.info.killed.get() {
                        return Err(ClientError::Killed);
                    }
                    if self.worker.shared.is_shutting_down() {
                        return Err(ClientError::ShuttingDown);
                    }
                    if may_park && self.worker.parking.epoch() >= since + 2 {
                        return Ok(Idle::Park(deadline));
                    }
                }
                _ = sleep_opt(deadline) => {
                    return Err(ClientError::ClientIdleTimeout(idle.unwrap_or_default()))
                }
            }
        };
        let n = match read {
            Some(n) => n,
            None => {
                self.buf.reserve(CLIENT_READ_SIZE);
                self.stream.read_buf(&mut self.buf).await?
            }
        };
        Ok(match n {
            0 => Idle::Closed,
            _ => Idle::Data,
        })
    }

    /// The cluster (servers) of the current shard.
    fn cluster(&self) -> &Cluster {
        &self.shards.clusters[self.shard]
    }

    /// The pool shard of the attached server.
    fn shard(&self) -> &Rc<PoolShard> {
        &self.cluster().members[self.member].shard
    }

    /// The length of the whole message at the front of the buffer, or None if it is not all
    /// there yet.
    fn front_message(&self) -> Result<Option<usize>, ClientError> {
        if self.buf.len() < HEADER_LEN {
            return Ok(None);
        }
        let len = checked_total_len(&self.buf, self.scanner.max_len())?;
        Ok((self.buf.len() >= len).then_some(len))
    }

    /// Reads more client bytes into the buffer; false when the client closed.
    async fn read_more(&mut self) -> Result<bool, ClientError> {
        self.buf.reserve(CLIENT_READ_SIZE);
        Ok(self.stream.read_buf(&mut self.buf).await? > 0)
    }

    /// Forwards buffered client messages to the server, checking one out first if needed.
    /// Queries are looked at whole (SQL extensions, routing); everything else streams.
    async fn forward_client(&mut self) -> Result<(), ClientError> {
        loop {
            if self.buf.is_empty() {
                return self.flush_out().await;
            }
            // Set once the Query at the front was found not to be answered here: whether it
            // may have session effects. The scan below then need not look at it again, nor
            // read its text at all when it cannot.
            let mut front_checked: Option<bool> = None;
            // When a server was checked out for this request (the clock read then serves as
            // the query's start too).
            let mut attached_at = None;
            if self.scanner.at_boundary() {
                let tag = self.buf[0];
                if tag == fe::TERMINATE {
                    self.terminated = true;
                    return Ok(());
                }
                let routes_by_statement = self.server.is_none()
                    && (self.shards.is_sharded()
                        || self.cluster().needs_statement(self.role, self.mode));
                let by_key = self.shards.routes_by_key();
                let whole_needed = tag == fe::QUERY
                    || (tag == fe::PARSE && (routes_by_statement || by_key))
                    || (tag == fe::BIND && routes_by_statement && by_key);
                if whole_needed {
                    let Some(len) = self.front_message()? else {
                        self.flush_out().await?;
                        if !self.read_more().await? {
                            return Err(eof());
                        }
                        continue;
                    };
                    // Automatic sharding reads a Parse's key from the Bind that follows it.
                    if tag == fe::PARSE
                        && routes_by_statement
                        && by_key
                        && !self.next_is_whole(len)?
                    {
                        if !self.read_more().await? {
                            return Err(eof());
                        }
                        continue;
                    }
                    if tag == fe::QUERY {
                        let sql = query_text(&self.buf[..len]);
                        let local = match parse_extension(sql) {
                            Some(ext) => Some(Some(ext)),
                            // SQL-level PREPAREs on the server: DEALLOCATE ALL must reach it.
                            None => (self.deallocates_locally() && is_deallocate_all(sql))
                                .then_some(None),
                        };
                        if let Some(ext) = local {
                            if self.server.as_ref().is_some_and(|s| !s.exchange.is_quiet()) {
                                // Answer in order: after the server has answered what came first.
                                return self.flush_out().await;
                            }
                            match ext {
                                Some(ext) => Box::pin(self.answer_extension(ext, len)).await?,
                                None => Box::pin(self.answer_deallocate_all(len)).await?,
                            }
                            continue;
                        }
                        front_checked =
                            Some(self.mode != PoolMode::Session && state::may_have_effects(sql));
                    }
                }
            }
            if self.server.is_none() {
                match self.attach().await {
                    Err(ClientError::Shard(e)) => {
                        Box::pin(self.reject_request(&e)).await?;
                        continue;
                    }
                    r => attached_at = Some(r?),
                }
            }
            let dealloc_local = self.deallocates_locally();
            let Some(server) = self.server.as_deref_mut() else {
                return Ok(());
            };
            let was_quiet = server.exchange.is_quiet();
            let ServerConn {
                exchange, prepared, ..
            } = server;
            let record = self.shards.routes_by_key();
            let track = self.track_prepared;
            let pinning = self.mode != PoolMode::Session;
            let tracker = &mut self.tracker;
            let statements = &mut self.statements;
            let registry = &self.worker.shared.statements;
            let mut rewrite = false;
            let scan = self.scanner.scan(
                &self.buf,
                |t| {
                    t == fe::QUERY
                        || (record && t == fe::PARSE)
                        || (track && matches!(t, fe::PARSE | fe::BIND | fe::DESCRIBE | fe::CLOSE))
                },
                |tag, msg| {
                    let checked = front_checked.take();
                    if tag == fe::TERMINATE {
                        return Verdict::StopBefore;
                    }
                    let sql = (tag == fe::QUERY && checked != Some(false)).then(|| query_text(msg));
                    if sql
                        .is_some_and(|sql| checked.is_none() && answers_locally(sql, dealloc_local))
                    {
                        return Verdict::StopBefore;
                    }
                    if pinning {
                        note_session_effects(tracker, tag, msg, sql, track);
                    }
                    if track {
                        match tag {
                            _ if names_statement(tag, msg) => {
                                rewrite = true;
                                return Verdict::StopBefore;
                            }
                            fe::PARSE => prepared.pipeline.sent_plain_parse(),
                            fe::CLOSE => prepared.pipeline.sent_plain_close(),
                            fe::SYNC | fe::QUERY | fe::FUNCTION_CALL => {
                                prepared.pipeline.sent_sync()
                            }
                            _ => {}
                        }
                    } else if record && tag == fe::PARSE {
                        remember_statement(statements, registry, msg);
                    }
                    exchange.frontend(tag);
                    Verdict::Forward
                },
            )?;
            let traffic = &self.shards.clusters[self.shard].members[self.member]
                .shard
                .traffic;
            let mut received = scan.forward;
            if rewrite || !self.out.is_empty() {
                self.out.extend_from_slice(&self.buf[..scan.forward]);
                self.buf.advance(scan.forward);
            }
            if rewrite {
                // A message naming a statement: what the server gets instead goes out with
                // the rest, in one write.
                let len = checked_total_len(&self.buf, self.scanner.max_len())?;
                let tag = self.buf[0];
                let mut counts = traffic.prepared.get();
                Rewriter {
                    registry,
                    client: &mut self.statements,
                    server: &mut server.prepared,
                    cap: self.prepared_cap,
                    counts: &mut counts,
                }
                .rewrite(&self.buf[..len], &mut self.out)?;
                traffic.prepared.set(counts);
                server.exchange.frontend(tag);
                self.buf.advance(len);
                received += len;
            } else if !self.out.is_empty() {
                send_to_server(server, &self.worker, &self.out).await?;
                self.out.clear();
            } else if scan.forward > 0 {
                send_to_server(server, &self.worker, &self.buf[..scan.forward]).await?;
                self.buf.advance(scan.forward);
            }
            if received > 0 {
                Traffic::add(&traffic.bytes_received, received as u64);
            }
            if was_quiet && !server.exchange.is_quiet() {
                let now = attached_at.take().unwrap_or_else(Instant::now);
                self.query_started = Some(now);
                self.xact_started.get_or_insert(now);
                self.quiet_since = None;
            }
            if rewrite {
                continue;
            }
            if !scan.stopped {
                if let Some(needs) = scan.needs {
                    self.buf.reserve(needs.saturating_sub(self.buf.len()));
                }
                return Ok(());
            }
        }
    }

    /// DEALLOCATE ALL is answered for the client's own named statements, unless SQL-level
    /// PREPAREs are on its server (then the server must run it).
    fn deallocates_locally(&self) -> bool {
        self.track_prepared && !self.tracker.pins.contains(PinReason::SqlPrepare)
    }

    /// Writes the bytes staged for the server by a rewrite.
    async fn flush_out(&mut self) -> Result<(), ClientError> {
        if self.out.is_empty() {
            return Ok(());
        }
        if let Some(server) = self.server.as_mut() {
            send_to_server(server, &self.worker, &self.out).await?;
        }
        self.out.clear();
        Ok(())
    }

    /// Whether the message after the `len`-byte one at the front is all there (when it is a
    /// Bind), or at least its header (otherwise).
    fn next_is_whole(&self, len: usize) -> Result<bool, ClientError> {
        let Some(header) = self.buf.get(len..len + HEADER_LEN) else {
            return Ok(false);
        };
        let next = checked_total_len(header, self.scanner.max_len())?;
        Ok(header[0] != fe::BIND || self.buf.len() >= len + next)
    }

    /// Fails the request at the front of the buffer (a Query, or extended-protocol messages
    /// up to their Sync) with `e`, and answers ReadyForQuery: the client carries on.
    async fn reject_request(&mut self, e: &ShardError) -> Result<(), ClientError> {
        loop {
            let Some(len) = self.front_message()? else {
                if !self.read_more().await? {
                    return Err(eof());
                }
                continue;
            };
            let tag = self.buf[0];
            self.buf.advance(len);
            if tag == fe::QUERY || tag == fe::SYNC {
                break;
            }
        }
        let mut out = BytesMut::new();
        builder::error_response(&mut out, "ERROR", e.sqlstate(), &e.to_string());
        builder::ready_for_query(&mut out, b'I');
        write_client(&mut self.stream, &self.worker, &out).await?;
        Ok(())
    }

    /// Answers `SET SERVER ROLE` / `SHOW SERVER ROLE` (the `len`-byte Query at the front).
    async fn answer_extension(&mut self, ext: Extension, len: usize) -> Result<(), ClientError> {
        self.buf.advance(len);
        let mut out = BytesMut::new();
        match ext {
            Extension::SetServerRole(_)
                if self.mode == PoolMode::Session && self.server.is_some() =>
            {
                builder::error_response(
                    &mut out,
                    "ERROR",
                    "0A000",
                    "SET SERVER ROLE must come before the first query of a session-mode client",
                );
            }
            Extension::SetServerRole(role) => {
                self.role = role;
                builder::command_complete(&mut out, "SET");
            }
            Extension::ShowServerRole => {
                builder::row_description(&mut out, &["server_role"]);
                builder::data_row(&mut out, &[Some(self.role.as_str())]);
                builder::command_complete(&mut out, "SHOW");
            }
            Extension::SetShardingKey(_) | Extension::SetShard(_)
                if self.mode == PoolMode::Session && self.server.is_some() =>
            {
                builder::error_response(
                    &mut out,
                    "ERROR",
                    "0A000",
                    "the shard of a session-mode client is chosen by its first query and cannot \
                     change: SET SHARD or SET SHARDING KEY must come first",
                );
            }
            Extension::SetShardingKey(key) => {
                self.shard_setting = Some(ShardSetting::Key(key));
                builder::command_complete(&mut out, "SET");
            }
            Extension::SetShard(setting) => match self.shards.shard_of(setting) {
                Ok(_) => {
                    self.shard_setting = Some(setting);
                    builder::command_complete(&mut out, "SET");
                }
                Err(e) => builder::error_response(&mut out, "ERROR", e.sqlstate(), &e.to_string()),
            },
            Extension::ShowShard => {
                let attached = self.server.is_some() && self.mode == PoolMode::Session;
                let shown = match (attached, self.shard_setting) {
                    (true, _) => self.shard.to_string(),
                    (false, Some(ShardSetting::Any)) => "any".to_string(),
                    (false, Some(s)) => self
                        .shards
                        .shard_of(s)
                        .map(|n| n.to_string())
                        .unwrap_or_default(),
                    (false, None) => "none".to_string(),
                };
                builder::row_description(&mut out, &["shard"]);
                builder::data_row(&mut out, &[Some(&shown)]);
                builder::command_complete(&mut out, "SHOW");
            }
            Extension::BadValue(what, value) => builder::error_response(
                &mut out,
                "ERROR",
                "22023",
                &format!("invalid {what} \"{value}\""),
            ),
        }
        self.end_local_answer(out).await
    }

    /// Answers `DEALLOCATE ALL` (the `len`-byte Query at the front) for the client's own named
    /// statements: the server's are shared with other clients and stay.
    async fn answer_deallocate_all(&mut self, len: usize) -> Result<(), ClientError> {
        self.buf.advance(len);
        self.statements.clear();
        let mut out = BytesMut::new();
        builder::command_complete(&mut out, "DEALLOCATE ALL");
        self.end_local_answer(out).await
    }

    /// Sends a locally answered request with its ReadyForQuery, then gives the server back if
    /// the pool mode allows.
    async fn end_local_answer(&mut self, mut out: BytesMut) -> Result<(), ClientError> {
        let status = self
            .server
            .as_ref()
            .map_or(b'I', |s| s.exchange.tx.as_byte());
        builder::ready_for_query(&mut out, status);
        write_client(&mut self.stream, &self.worker, &out).await?;
        let idle = self.server.as_ref().is_some_and(|s| s.exchange.is_idle());
        if idle && self.buf.is_empty() && self.mode != PoolMode::Session {
            self.detach(Instant::now());
        }
        Ok(())
    }

    /// Chooses a server for the transaction (or session), checks out one of its connections
    /// and prepares it for this client. A server that cannot be reached is banned (by its
    /// pool) and another tried; a client that needs the primary waits for one up to
    /// query_wait_timeout.
    /// Returns when the server was in hand.
    async fn attach(&mut self) -> Result<Instant, ClientError> {
        if self.shards.retired.get() {
            // RELOAD changed this pool's servers: use the new layout from now on (a pool that
            // is gone keeps serving this client as it was).
            if let Some(new) = self.worker.pool(&self.info.database, &self.info.user) {
                info!(self.log, "moving to the reloaded pool");
                self.shards = new;
                self.shard = 0;
                self.member = 0;
            }
        }
        let (shard, want) = if !self.shards.is_sharded()
            && !self.shards.clusters[0].needs_statement(self.role, self.mode)
        {
            // The common case: one shard, no parsing; nothing is read from the request.
            (0, self.shards.clusters[0].want(self.role, self.mode, None))
        } else {
            let (statement, params) = routing_input(&self.buf, &self.statements);
            let shard = self
                .shards
                .choose(statement, params.as_deref(), self.shard_setting)
                .map_err(ClientError::Shard)?;
            let cluster = &self.shards.clusters[shard];
            let statement = statement.filter(|_| cluster.needs_statement(self.role, self.mode));
            (shard, cluster.want(self.role, self.mode, statement))
        };
        self.shard = shard;
        self.wait_while_paused().await?;
        let started = Instant::now();
        let wait = self.cluster().read_settings(|s| s.query_wait_timeout);
        let mut tried = Vec::new();
        let mut last_failure = None;
        let (member, server) = loop {
            let Some(i) = self.cluster().choose(want, &tried) else {
                let waited = started.elapsed();
                if self.cluster().worth_waiting(want) && wait.is_none_or(|w| waited < w) {
                    tokio::time::sleep(RETRY_PAUSE).await;
                    tried.clear();
                    continue;
                }
                // Every server was tried and failed, nothing to wait for: say why the last
                // one did (a refused login, no credentials yet), not only that none is left.
                if let (false, Some(e)) = (self.cluster().worth_waiting(want), last_failure) {
                    return Err(e);
                }
                return Err(ClientError::NoServer {
                    pool: self.cluster().settings().label(),
                    role: want.as_str(),
                    waited: self.cluster().worth_waiting(want).then_some(waited),
                });
            };
            // Through the fields, not `cluster()`: the client's stream and buffer are
            // borrowed beside it.
            let shard = &self.shards.clusters[self.shard].members[i].shard;
            self.info.state.set(ClientState::Waiting);
            self.info.waiting_since.set(Some(started));
            let checked_out = tokio::select! {
                biased;
                r = shard.checkout_since(started) => r,
                e = client_left(&mut self.stream, &mut self.buf) => return Err(e),
            };
            self.info.state.set(ClientState::Active);
            self.info.waiting_since.set(None);
            match checked_out {
                Ok(conn) => break (i, conn),
                Err(CheckoutError::WaitTimeout(t)) => {
                    let m = &self.cluster().members[i];
                    let shared = &self.worker.shared;
                    shared.ban(
                        &m.state,
                        BanReason::CheckoutTimeout,
                        m.shard.global.settings().ban_time,
                    );
                    return Err(checkout_error(shard, CheckoutError::WaitTimeout(t)));
                }
                Err(e) => {
                    debug!(self.log, "server unavailable, choosing another";
                        "server" => self.cluster().members[i].state.addr(), "error" => ?e);
                    last_failure = Some(checkout_error(shard, e));
                    tried.push(i);
                }
            }
        };
        let shard = self.cluster().members[member].shard.clone();
        // Held by `self` from here on, so no await below keeps a ServerConn in this future.
        self.member = member;
        let server = self.server.insert(server);
        let synced = match server.sync_params(self.settings.params()).await {
            Ok(synced) => synced,
            Err(e) => {
                if let Some(server) = self.server.take() {
                    shard.discard(server, !matches!(e, ServerError::Query(_)));
                }
                return Err(server_failed(e));
            }
        };
        let Some(server) = self.server.as_ref() else {
            return Ok(Instant::now());
        };
        if synced {
            // Adopt the server's spelling of what the client asked for (DateStyle "iso" is
            // reported as "ISO, MDY"), so the next comparison matches.
            for (name, value) in server.params.iter() {
                if is_tracked_reported(name) && self.settings.get(name).is_some() {
                    self.settings.set(name, value);
                }
            }
        }
        self.key.set_target(Some(CancelTarget {
            addr: server.addr,
            pid: server.key.0,
            secret: server.key.1,
        }));
        if self.cluster().counts_outstanding() {
            shard
                .global
                .server
                .outstanding
                .fetch_add(1, Ordering::Relaxed);
        }
        let now = Instant::now();
        let waited = (now - started).as_micros() as u64;
        Traffic::add(&shard.traffic.wait_time_us, waited);
        shard.traffic.wait_hist.observe(waited);
        self.info.request_time.set(now);
        let link = self.server.as_deref_mut().map(ServerConn::link);
        self.info.server.set(link);
        self.refresh_prepared_settings();
        Ok(now)
    }

    /// Whether named statements are renamed per server connection (transaction, statement
    /// and auto mode, with max_prepared_statements > 0), read from the pool's settings.
    fn refresh_prepared_settings(&mut self) {
        self.prepared_cap = self.cluster().read_settings(|s| s.max_prepared_statements);
        self.track_prepared = self.mode != PoolMode::Session && self.prepared_cap > 0;
    }

    /// While the client's database is paused (PAUSE, SIGUSR1), new transactions wait.
    async fn wait_while_paused(&self) -> Result<(), ClientError> {
        let pause = &self.worker.shared.pause;
        while pause.is_paused(&self.info.database) {
            if self.worker.shared.is_shutting_down() {
                return Err(ClientError::ShuttingDown);
            }
            self.info.state.set(ClientState::Waiting);
            tokio::time::sleep(RETRY_PAUSE).await;
        }
        self.info.state.set(ClientState::Active);
        Ok(())
    }

    /// Returns the server connection, last used at `now`, to the pool.
    fn detach(&mut self, now: Instant) {
        if let Some(server) = self.server.take() {
            self.key.set_target(None);
            self.query_started = None;
            self.quiet_since = None;
            self.timed_out = false;
            self.uncount();
            self.info.server.set(None);
            if server.prepared.stale {
                // A statement it has no longer matches its tables: start afresh.
                info!(
                    self.log,
                    "closing server connection: a prepared statement's result type changed"
                );
                self.shard().discard(server, true);
            } else {
                self.shard().checkin_at(server, now);
            }
        }
    }

    /// Takes this client's checkout off its server's outstanding count.
    fn uncount(&self) {
        if self.cluster().counts_outstanding() {
            let state = &self.cluster().members[self.member].state;
            state.outstanding.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// Bans the attached server for `reason`.
    fn ban_attached(&self, reason: BanReason) {
        let m = &self.cluster().members[self.member];
        self.worker
            .shared
            .ban(&m.state, reason, m.shard.global.settings().ban_time);
    }

    /// With a server attached: waits for server output or more client input, and handles
    /// query_timeout and idle_transaction_timeout.
    async fn wait_attached(&mut self) -> Result<(), ClientError> {
        if self.info.killed.get() {
            return Err(ClientError::Killed);
        }
        let (query_timeout, idle_transaction_timeout, client_idle_timeout) =
            self.cluster().read_settings(|s| {
                (
                    s.query_timeout,
                    s.idle_transaction_timeout,
                    s.client_idle_timeout,
                )
            });
        let (deadline, timer, idle) = {
            let Some(server) = self.server.as_ref() else {
                return Ok(());
            };
            let x = &server.exchange;
            if !x.is_quiet() {
                match (query_timeout, self.query_started, self.timed_out) {
                    (Some(t), Some(s), false) => (Some(s + t), Timer::Query, false),
                    _ => (None, Timer::Query, false),
                }
            } else if x.tx != TxStatus::Idle {
                let since = *self.quiet_since.get_or_insert_with(Instant::now);
                (
                    idle_transaction_timeout.map(|t| since + t),
                    Timer::IdleTransaction,
                    false,
                )
            } else {
                let since = *self.quiet_since.get_or_insert_with(Instant::now);
                (
                    client_idle_timeout.map(|t| since + t),
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
            _ = sleep_opt(deadline) => Box::pin(self.timer_fired(timer)).await,
            // KILL, shutdown or a parking sweep: the first two end the client (a session-mode
            // client between transactions leaves at shutdown like an idle one).
            _ = self.worker.attention.notified() => {
                if self.info.killed.get() {
                    Err(ClientError::Killed)
                } else if idle && self.worker.shared.is_shutting_down() {
                    Err(ClientError::ShuttingDown)
                } else {
                    Ok(())
                }
            }
        }
    }

    async fn timer_fired(&mut self, timer: Timer) -> Result<(), ClientError> {
        let settings = &self.cluster().settings();
        match timer {
            Timer::Query => {
                self.timed_out = true;
                self.ban_attached(BanReason::QueryTimeout);
                if let Some(target) = self.key.target() {
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
        let Some(server) = self.server.as_deref_mut() else {
            return Ok(());
        };
        let track = self.track_prepared;
        loop {
            // Names whose Parse failed are forgotten only now: an error the previous scan
            // stopped at may still have named them.
            for (name, id) in server.prepared.pipeline.failed_client_names.drain(..) {
                self.statements.forget(&name, id);
            }
            let timed_out = self.timed_out;
            let settings = &mut self.settings;
            let ServerConn {
                buf,
                scanner,
                exchange,
                params,
                prepared,
                ..
            } = server;
            let mut bad = None;
            let mut rewrite = false;
            let mut errors: Vec<String> = Vec::new();
            let mut refuse = false;
            let mut reply = None;
            let mut deallocated = false;
            let mut rename = false;
            let statement_mode = self.mode == PoolMode::Statement;
            let scan = scanner.scan(
                buf,
                |t| {
                    matches!(
                        t,
                        be::READY_FOR_QUERY | be::PARAMETER_STATUS | be::ERROR_RESPONSE
                    ) || (track
                        && matches!(
                            t,
                            be::PARSE_COMPLETE | be::CLOSE_COMPLETE | be::COMMAND_COMPLETE
                        ))
                },
                |tag, msg| match tag {
                    be::READY_FOR_QUERY => {
                        match backend::ready_status(msg) {
                            Ok(s) => {
                                exchange.backend(tag, Some(s));
                                if track {
                                    prepared.pipeline.ready(&mut prepared.statements);
                                }
                                // Statement mode: a transaction left open is refused before the
                                // client sees ReadyForQuery.
                                if statement_mode && s != TxStatus::Idle && exchange.is_quiet() {
                                    refuse = true;
                                    return Verdict::StopBefore;
                                }
                            }
                            Err(e) => bad = Some(e.to_string()),
                        }
                        Verdict::Forward
                    }
                    be::PARAMETER_STATUS => {
                        // Only settings that follow the client are recorded: is_superuser or
                        // session_authorization change with SET ROLE and cannot be RESET.
                        if let Ok((name, value)) = backend::parameter_status(&msg[5..]) {
                            if is_tracked_reported(name) {
                                params.set(name, value);
                                settings.set(name, value);
                            }
                        }
                        Verdict::Forward
                    }
                    be::ERROR_RESPONSE => {
                        let fields = backend::error_fields(&msg[5..]);
                        if track && is_stale_plan(&fields) {
                            prepared.stale = true;
                        }
                        rewrite = timed_out && fields.code == "57014";
                        if rewrite {
                            return Verdict::StopBefore;
                        }
                        errors.push(fields.code);
                        if track && mentions_pooler_name(msg) {
                            rename = true;
                            return Verdict::StopBefore;
                        }
                        Verdict::Forward
                    }
                    be::PARSE_COMPLETE | be::CLOSE_COMPLETE if track => {
                        let r = if tag == be::PARSE_COMPLETE {
                            prepared.pipeline.parse_complete()
                        } else {
                            prepared.pipeline.close_complete()
                        };
                        match r {
                            Ok(Reply::Forward) => Verdict::Forward,
                            Ok(r) => {
                                reply = Some(r);
                                Verdict::StopBefore
                            }
                            Err(e) => {
                                bad = Some(e.to_string());
                                Verdict::StopBefore
                            }
                        }
                    }
                    be::COMMAND_COMPLETE if track => {
                        deallocated |= prepared.command_complete(backend::command_tag(msg));
                        Verdict::Forward
                    }
                    _ => {
                        exchange.backend(tag, None);
                        Verdict::Forward
                    }
                },
            )?;
            if let Some(e) = bad {
                return Err(ClientError::ServerGone(e));
            }
            if deallocated {
                self.statements.clear();
            }
            for code in &errors {
                self.shards.clusters[self.shard].members[self.member]
                    .shard
                    .traffic
                    .error(code);
            }
            let stopped = rewrite || refuse || reply.is_some() || rename;
            if scan.forward > 0 {
                if stopped || !self.out.is_empty() {
                    self.out.extend_from_slice(&buf[..scan.forward]);
                } else {
                    write_client(&mut self.stream, &self.worker, &buf[..scan.forward]).await?;
                }
                buf.advance(scan.forward);
                let traffic = &self.shards.clusters[self.shard].members[self.member]
                    .shard
                    .traffic;
                Traffic::add(&traffic.bytes_sent, scan.forward as u64);
            }
            if let Some(needs) = scan.needs {
                buf.reserve(needs.saturating_sub(buf.len()));
            }
            if refuse {
                buf.advance(6); // the ReadyForQuery the client must not see
                self.flush_to_client().await?;
                return Err(ClientError::StatementModeTransaction);
            }
            if rename {
                // An error naming a statement by its server name: use the client's name.
                let len = 1 + u32::from_be_bytes([buf[1], buf[2], buf[3], buf[4]]) as usize;
                rename_in_error(&buf[..len], &self.statements, &mut self.out);
                buf.advance(len);
                continue;
            }
            if let Some(reply) = reply {
                // A ParseComplete or CloseComplete: swallowed, or shown as ParseComplete.
                let len = 1 + u32::from_be_bytes([buf[1], buf[2], buf[3], buf[4]]) as usize;
                buf.advance(len);
                if reply == Reply::AsParseComplete {
                    builder::parse_complete(&mut self.out);
                }
                continue;
            }
            if !rewrite {
                break;
            }
            // query_timeout canceled this query: say so instead of "user request".
            let len = 1 + u32::from_be_bytes([buf[1], buf[2], buf[3], buf[4]]) as usize;
            buf.advance(len);
            let t = self.shards.clusters[self.shard]
                .settings()
                .query_timeout
                .unwrap_or_default();
            builder::error_response(
                &mut self.out,
                "ERROR",
                "57014",
                &format!("canceling statement due to query_timeout ({t:?})"),
            );
            // `timed_out` stays set until the exchange ends (its ReadyForQuery may come in a
            // later read): cleared here, the next wait saw an expired query_timeout and sent
            // a second cancel, which could hit the client's next query.
        }
        for (name, id) in server.prepared.pipeline.failed_client_names.drain(..) {
            self.statements.forget(&name, id);
        }
        if !self.out.is_empty() {
            write_client(&mut self.stream, &self.worker, &self.out).await?;
            self.out.clear();
        }
        if !server.exchange.is_quiet() {
            return Ok(());
        }
        let idle = server.exchange.is_idle();
        let now = Instant::now();
        let traffic = &self.shards.clusters[self.shard].members[self.member]
            .shard
            .traffic;
        if let Some(started) = self.query_started.take() {
            Traffic::add(&traffic.query_count, 1);
            Traffic::add(&traffic.query_time_us, (now - started).as_micros() as u64);
        }
        if idle {
            if let Some(started) = self.xact_started.take() {
                let us = (now - started).as_micros() as u64;
                Traffic::add(&traffic.xact_count, 1);
                Traffic::add(&traffic.xact_time_us, us);
                traffic.xact_hist.observe(us);
            }
        }
        self.timed_out = false;
        if idle && self.tracker.needs_probe() {
            Box::pin(self.settle_session_state()).await?;
        }
        match self.mode {
            PoolMode::Transaction | PoolMode::Statement
                if idle && self.buf.is_empty() && self.tracker.pins.is_empty() =>
            {
                self.detach(now)
            }
            _ => {}
        }
        Ok(())
    }

    /// After a transaction that may have created or released session state: asks the server
    /// what is there (pins), reads back changed settings (replayed on the next server instead
    /// of pinning), and puts the startup settings back after RESET ALL / DISCARD ALL.
    async fn settle_session_state(&mut self) -> Result<(), ClientError> {
        let user = self.cluster().settings().target.user.clone();
        let sql = self.tracker.probe_sql(&user);
        let Some(server) = self.server.as_mut() else {
            return Ok(());
        };
        let row = match sql {
            Some(q) => Some(
                server
                    .query_row_keeping(&q, &mut self.out)
                    .await
                    .map_err(server_failed)?,
            ),
            None => None,
        };
        let culprit = self.tracker.culprit.clone().unwrap_or_default();
        let settled = self.tracker.settle(row.as_deref());
        self.info.pinned.set(!self.tracker.pins.is_empty());
        if std::mem::take(&mut self.tracker.reset_all) {
            self.settings.reset_to_startup();
            server.params = (*server.login_params).clone();
        }
        for (name, value) in &settled.settings {
            if let Some(v) = value {
                self.settings.set(name, v);
                server.params.set(name, v);
            }
        }
        server
            .sync_params(self.settings.params())
            .await
            .map_err(server_failed)?;
        let traffic = &self.shards.clusters[self.shard].members[self.member]
            .shard
            .traffic;
        for r in settled.pinned.iter() {
            traffic.pinned(r);
        }
        if !settled.pinned.is_empty() {
            let reasons = settled.pinned.describe();
            if self.auto {
                info!(self.log, "server connection pinned to its client while session state exists";
                    "reason" => reasons, "statement" => culprit);
            } else {
                warn!(self.log, "server connection pinned to its client: session state outlives the transaction (pool_mode = \"auto\" expects this)";
                    "reason" => reasons, "statement" => culprit);
            }
        }
        if !settled.released.is_empty() {
            debug!(self.log, "session state released"; "reason" => settled.released.describe(),
                "still_pinned" => self.tracker.pins.describe());
        }
        // Notifications that arrived during the probe.
        self.flush_to_client().await
    }

    /// Writes the bytes staged for the client by a rewrite.
    async fn flush_to_client(&mut self) -> Result<(), ClientError> {
        if !self.out.is_empty() {
            write_client(&mut self.stream, &self.worker, &self.out).await?;
            self.out.clear();
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
        self.key.set_target(None);
        self.uncount();
        if matches!(result, Err(ClientError::ServerGone(_))) {
            self.ban_attached(BanReason::ConnectionLost);
        }
        let shard = self.shard().clone();
        let reset = match self.mode {
            PoolMode::Session | PoolMode::Auto => {
                Some(self.cluster().settings().reset_query.clone()).filter(|q| !q.is_empty())
            }
            // Session state left behind (pinned): cleared before anyone else gets the server.
            _ if !self.tracker.pins.is_empty() => Some("DISCARD ALL".to_string()),
            _ => None,
        };
        if server.prepared.stale || self.tracker.pins.contains(PinReason::Load) {
            shard.discard(server, true);
        } else if matches!(result, Err(ClientError::SlowClient(_))) {
            // Stuck mid-output (or mid-write): closing is cheaper than draining it.
            info!(
                self.log,
                "closing server connection: its client stopped reading"
            );
            shard.discard(server, true);
        } else if server.exchange.is_idle() && reset.is_none() && server.scanner.at_boundary() {
            shard.checkin(server);
        } else if self.scanner.at_boundary() {
            salvage(shard, server, reset, self.log.clone());
        } else {
            // Half a message went to the server: its stream cannot be repaired.
            info!(
                self.log,
                "closing server connection: client left in the middle of a message"
            );
            shard.discard(server, true);
        }
    }
}

/// Writes client bytes (forwarded or rewritten) to the server. A server that takes nothing
/// for `client_write_timeout` while its own output waits unread is stuck behind a client
/// that sends without reading: the client is disconnected. (A server that is merely busy,
/// say waiting for a lock, has no output waiting and is waited for.)
async fn send_to_server(
    server: &mut ServerConn,
    worker: &Worker,
    bytes: &[u8],
) -> Result<(), ClientError> {
    write_all_watched(
        &mut server.stream,
        bytes,
        || worker.shared.general().client_write_timeout,
        |stream: &mut ServerStream| stream.readable_now(),
    )
    .await
    .map_err(|e| match e {
        WriteFailed::Io(e) => ClientError::ServerGone(e.to_string()),
        WriteFailed::Stalled(t) => ClientError::SlowClient(t),
    })
}

/// Writes to the client; a client that takes nothing for `client_write_timeout` is
/// disconnected (its server connection is then salvaged or closed).
async fn write_client(
    stream: &mut ClientStream,
    worker: &Worker,
    bytes: &[u8],
) -> Result<(), ClientError> {
    write_all_watched(
        stream,
        bytes,
        || worker.shared.general().client_write_timeout,
        |_| true,
    )
    .await
    .map_err(|e| match e {
        WriteFailed::Io(e) => ClientError::Io(e),
        WriteFailed::Stalled(t) => ClientError::SlowClient(t),
    })
}

/// While a checkout waits: keeps reading what the client sends (its next requests, kept for
/// later, up to [`KEEP_WHILE_IDLE`]) and returns when the client has closed its connection or
/// it failed. A client that leaves while waiting so gives up its place in the queue, and its
/// request never reaches a server.
async fn client_left(stream: &mut ClientStream, buf: &mut BytesMut) -> ClientError {
    while buf.len() < KEEP_WHILE_IDLE {
        match stream.next_input(buf, CLIENT_READ_SIZE).await {
            Ok(0) => return eof(),
            Ok(_) => {}
            Err(e) => return e.into(),
        }
    }
    // Enough is buffered: wait for the server alone; the rest stays in the socket.
    std::future::pending().await
}

/// Sleeps until `deadline`, or forever when there is none.
async fn sleep_opt(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d.into()).await,
        None => std::future::pending().await,
    }
}

/// "cached plan must not change result type": a statement prepared on this server is stale.
fn is_stale_plan(fields: &backend::ErrorFields) -> bool {
    fields.code == "0A000"
        && fields
            .message
            .starts_with("cached plan must not change result type")
}

/// Notes what a whole Query (its text `query`) or Parse may do to the session (cheap unless
/// its text looks like it could).
fn note_session_effects(
    tracker: &mut SessionTracker,
    tag: u8,
    msg: &[u8],
    query: Option<&str>,
    whole_parse: bool,
) {
    let sql = match (tag, query) {
        (_, Some(sql)) => sql,
        (fe::PARSE, None) if whole_parse => {
            parse_message(&msg[HEADER_LEN..]).map_or("", |(_, q)| q)
        }
        _ => return,
    };
    if state::may_have_effects(sql) {
        tracker.note(&state::effects(sql), sql);
    }
}

/// A server that failed a statement pgcorral ran on the client's behalf.
fn server_failed(e: ServerError) -> ClientError {
    match e {
        ServerError::Query(f) => ClientError::ServerRejected(f),
        e => ClientError::ServerGone(e.to_string()),
    }
}

/// Queries pgcorral answers itself: its SQL extensions, and (when it tracks named statements
/// and `deallocate_all` says so) `DEALLOCATE ALL`.
fn answers_locally(sql: &str, deallocate_all: bool) -> bool {
    parse_extension(sql).is_some() || (deallocate_all && is_deallocate_all(sql))
}

/// The SQL text of a whole Query message (header included); empty if malformed.
fn query_text(msg: &[u8]) -> &str {
    msg.get(HEADER_LEN..msg.len().saturating_sub(1))
        .and_then(|b| std::str::from_utf8(b).ok())
        .unwrap_or("")
}

/// The client closed its connection.
fn eof() -> ClientError {
    std::io::Error::from(std::io::ErrorKind::UnexpectedEof).into()
}

/// The whole message at `at` in `buf`: (tag, message with header), if all there.
fn message_at(buf: &[u8], at: usize) -> Option<(u8, &[u8])> {
    let tag = *buf.get(at)?;
    let len = 1 + u32::from_be_bytes(buf.get(at + 1..at + 5)?.try_into().ok()?) as usize;
    Some((tag, buf.get(at..at + len)?))
}

/// What routing reads from the request at the front of `buf`: the SQL of a Query, or of a
/// Parse (or of the named statement a Bind refers to), and the parameters of the Bind.
fn routing_input<'a>(
    buf: &'a [u8],
    statements: &'a ClientStatements,
) -> (Option<&'a str>, Option<Vec<BindParam<'a>>>) {
    let Some((tag, msg)) = message_at(buf, 0) else {
        return (None, None);
    };
    match tag {
        fe::QUERY => (Some(query_text(msg)), None),
        fe::PARSE => {
            let sql = parse_message(&msg[HEADER_LEN..]).ok().map(|(_, q)| q);
            let params = match message_at(buf, msg.len()) {
                Some((fe::BIND, b)) => bind_message(&b[HEADER_LEN..]).ok().map(|(_, p)| p),
                _ => None,
            };
            (sql, params)
        }
        fe::BIND => match bind_message(&msg[HEADER_LEN..]) {
            Ok((name, params)) => (statements.get(name).map(|s| &*s.query), Some(params)),
            Err(_) => (None, None),
        },
        _ => (None, None),
    }
}

/// Records a named statement from a whole Parse message (session mode: for routing only).
fn remember_statement(statements: &mut ClientStatements, registry: &StatementRegistry, msg: &[u8]) {
    let body = &msg[HEADER_LEN..];
    if let Ok((name, _)) = parse_message(body) {
        if !name.is_empty() {
            if statements.len() >= 10_000 {
                statements.clear();
            }
            statements.insert(name, registry.intern(&body[name.len() + 1..]));
        }
    }
}
