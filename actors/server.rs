//! ServerConnection: one connection to a PostgreSQL server — TLS as server_tls_sslmode says,
//! login, quiet statements (parameter sync, ROLLBACK, reset), liveness checks, and moving
//! between arbiters.
//!
//! While checked out, the client actor drives `stream`, `buf`, `scanner` and `exchange`
//! directly; nothing here is on the per-message path.

use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Buf, BytesMut};
use pgcorral::auth::{md5_response, AuthError, ScramClient, Secret};
use pgcorral::config::TlsMode;
use pgcorral::protocol::backend::{self, AuthRequest, ErrorFields, TxStatus};
use pgcorral::protocol::tag::backend as be;
use pgcorral::protocol::{builder, MessageCodec, Scanner};
use pgcorral::session::params::{self, ParamSet};
use pgcorral::session::prepared::ServerPrepared;
use pgcorral::session::Exchange;
use pgcorral::tls::TlsSummary;
use slog::debug;
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

use crate::budget::BudgetToken;
use crate::error::ServerError;
use crate::framed::read_frame;
use crate::registry::ServerLink;
use crate::server_stream::{DetachedStream, ServerStream};
use crate::shared::Shared;
use crate::tls::TlsConfigs;

/// Read buffer size for server sockets.
pub const SERVER_READ_SIZE: usize = 16 * 1024;

/// What is needed to open a connection to one server for one pool.
#[derive(Debug, Clone)]
pub struct ServerTarget {
    pub host: String,
    pub port: u16,
    pub database: String,
    pub user: String,
    pub secret: Option<Arc<Secret>>,
}

/// Monotonic ids for log lines and the admin console.
static NEXT_SERVER_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

/// An open, logged-in server connection.
pub struct ServerConn {
    pub id: u64,
    pub stream: ServerStream,
    pub addr: SocketAddr,
    /// The TLS session's version and suite (None: plain), for the admin console.
    pub tls: Option<TlsSummary>,
    /// Our end of the connection (read once, for the admin console).
    pub local: Option<SocketAddr>,
    /// Bytes read from the server and not yet forwarded.
    pub buf: BytesMut,
    /// Message boundaries in the server-to-client direction.
    pub scanner: Scanner,
    /// Where the conversation stands.
    pub exchange: Exchange,
    /// The server's BackendKeyData.
    pub key: (i32, i32),
    /// Settings as they are now on this connection.
    pub params: ParamSet,
    /// Settings right after login (what RESET returns to).
    pub login_params: Arc<ParamSet>,
    pub created: Instant,
    pub last_used: Instant,
    /// The pool generation this connection belongs to (RECONNECT/RELOAD bump it).
    pub generation: u64,
    /// This connection's slot in the pool budget, returned when the connection is dropped.
    pub budget: Option<BudgetToken>,
    /// The named prepared statements it has, and their replies still due.
    pub prepared: ServerPrepared,
    /// What the admin console shows of it while a client holds it (made on first use).
    link: Option<Rc<ServerLink>>,
    /// (client settings, own settings) stamps it was last found in sync with.
    synced: Option<(u64, u64)>,
}

/// A server connection detached from its arbiter's reactor, to hand to another arbiter.
pub struct TransferableConn {
    stream: DetachedStream,
    rest: ServerConnParts,
}

struct ServerConnParts {
    id: u64,
    addr: SocketAddr,
    tls: Option<TlsSummary>,
    local: Option<SocketAddr>,
    buf: BytesMut,
    scanner: Scanner,
    exchange: Exchange,
    key: (i32, i32),
    params: ParamSet,
    login_params: Arc<ParamSet>,
    created: Instant,
    last_used: Instant,
    generation: u64,
    budget: Option<BudgetToken>,
    prepared: ServerPrepared,
}

impl ServerConn {
    /// Connects and logs in, within `timeout` (None = no limit).
    pub async fn connect(
        target: &ServerTarget,
        shared: &Shared,
        timeout: Option<Duration>,
        generation: u64,
    ) -> Result<Box<ServerConn>, ServerError> {
        let work = Self::connect_inner(target, shared, generation);
        match timeout {
            Some(t) => tokio::time::timeout(t, work)
                .await
                .map_err(|_| ServerError::ConnectTimeout(t))?,
            None => work.await,
        }
    }

    async fn connect_inner(
        target: &ServerTarget,
        shared: &Shared,
        generation: u64,
    ) -> Result<Box<ServerConn>, ServerError> {
        let addr_text = format!("{}:{}", target.host, target.port);
        let connect_err = |source| ServerError::Connect {
            addr: addr_text.clone(),
            source,
        };
        // lookup_host resolves on tokio's blocking pool, never on the arbiter thread.
        let addr = tokio::net::lookup_host((target.host.as_str(), target.port))
            .await
            .map_err(connect_err)?
            .next()
            .ok_or_else(|| {
                connect_err(std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    "host name did not resolve",
                ))
            })?;
        let tls = shared.tls.load_full();
        let mode = tls.server_mode;
        let first = Self::open(target, shared, generation, addr, &tls, mode).await;
        match first {
            // libpq's allow: plain first, TLS if the server refuses the plain login (a
            // hostssl-only pg_hba.conf, for one).
            Err(ServerError::Login(e)) if mode == TlsMode::Allow => {
                debug!(shared.log, "server refused a plain login; trying TLS (server_tls_sslmode = \"allow\")";
                    "server" => %addr, "error" => &e.message);
                Self::open(target, shared, generation, addr, &tls, TlsMode::Require).await
            }
            other => other,
        }
    }

    /// One connection attempt: TCP, TLS as `mode` says (`allow`: plain), login.
    async fn open(
        target: &ServerTarget,
        shared: &Shared,
        generation: u64,
        addr: SocketAddr,
        tls: &TlsConfigs,
        mode: TlsMode,
    ) -> Result<Box<ServerConn>, ServerError> {
        let tcp = TcpStream::connect(addr)
            .await
            .map_err(|source| ServerError::Connect {
                addr: format!("{}:{}", target.host, target.port),
                source,
            })?;
        crate::listener::tune_socket(&tcp, &shared.general());
        let stream = match (&tls.connector, mode) {
            (
                Some(connector),
                TlsMode::Prefer | TlsMode::Require | TlsMode::VerifyCa | TlsMode::VerifyFull,
            ) => ServerStream::start_tls(tcp, connector, mode, &target.host, addr).await?,
            _ => ServerStream::Plain(tcp),
        };
        // Boxed from birth: a connection changes hands (pool, client, pool) every
        // transaction, and a pointer moves for free where the struct would be copied.
        let mut conn = Box::new(ServerConn::new(
            stream,
            addr,
            shared.max_message_size(),
            generation,
        ));
        conn.login(target, shared).await?;
        Ok(conn)
    }

    /// A connection over a connected socket, before login.
    fn new(
        stream: ServerStream,
        addr: SocketAddr,
        max_message_size: usize,
        generation: u64,
    ) -> Self {
        ServerConn {
            id: NEXT_SERVER_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            local: stream.local_addr().ok(),
            tls: stream.tls_summary(),
            stream,
            addr,
            buf: BytesMut::with_capacity(SERVER_READ_SIZE),
            scanner: Scanner::new(max_message_size),
            exchange: Exchange::default(),
            key: (0, 0),
            params: ParamSet::new(),
            login_params: Arc::new(ParamSet::new()),
            created: Instant::now(),
            last_used: Instant::now(),
            generation,
            budget: None,
            prepared: ServerPrepared::default(),
            link: None,
            synced: None,
        }
    }

    /// What the admin console shows of this connection.
    pub fn link(&mut self) -> Rc<ServerLink> {
        self.link
            .get_or_insert_with(|| {
                Rc::new(ServerLink {
                    id: self.id,
                    addr: self.addr,
                    local: self.local,
                    pid: self.key.0,
                    created: self.created,
                    tls: self.tls,
                })
            })
            .clone()
    }

    async fn login(&mut self, target: &ServerTarget, shared: &Shared) -> Result<(), ServerError> {
        let mut out = BytesMut::new();
        builder::startup(
            &mut out,
            &[
                ("user", target.user.as_str()),
                ("database", target.database.as_str()),
            ],
        );
        self.stream.send(&out).await?;
        let mut scram: Option<ScramClient> = None;
        loop {
            let (tag, body) = self.read_message().await?;
            match tag {
                be::AUTHENTICATION => {
                    out.clear();
                    match backend::auth_request(&body)? {
                        AuthRequest::Ok => continue,
                        AuthRequest::Cleartext => match target.secret.as_deref() {
                            Some(Secret::Plain(p)) => builder::password(&mut out, p),
                            _ => return Err(no_plaintext(target, "a cleartext password")),
                        },
                        AuthRequest::Md5 { salt } => {
                            let secret = target
                                .secret
                                .as_deref()
                                .ok_or_else(|| no_plaintext(target, "an md5 password"))?;
                            let resp = md5_response(&target.user, secret, salt)
                                .map_err(|e| ServerError::Auth(e.to_string()))?;
                            builder::password(&mut out, &resp);
                        }
                        AuthRequest::Sasl { mechanisms } => {
                            if !mechanisms.iter().any(|m| m == pgcorral::auth::scram::MECHANISM) {
                                return Err(ServerError::Auth(format!(
                                    "server offers SASL mechanisms {mechanisms:?}, pgcorral speaks SCRAM-SHA-256"
                                )));
                            }
                            let client = ScramClient::new();
                            builder::sasl_initial_response(
                                &mut out,
                                pgcorral::auth::scram::MECHANISM,
                                &client.client_first(),
                            );
                            scram = Some(client);
                        }
                        AuthRequest::SaslContinue(data) => {
                            let client = scram
                                .as_mut()
                                .ok_or_else(|| ServerError::Auth("unexpected SASL continue".into()))?;
                            let first = client
                                .server_first(&data)
                                .map_err(|e| ServerError::Auth(e.to_string()))?;
                            let msg = match target.secret.as_deref() {
                                Some(Secret::Plain(p)) => {
                                    let salted = shared
                                        .salted_password(p.clone(), first.salt, first.iterations)
                                        .await;
                                    client.client_final(&salted)
                                }
                                // Pass-through: the ClientKey a client proved for this verifier.
                                Some(Secret::Scram(verifier)) => {
                                    let key = shared
                                        .client_keys
                                        .get(verifier)
                                        .ok_or_else(|| no_client_key(target))?;
                                    client
                                        .client_final_from_verifier(verifier, &key)
                                        .map_err(|e| match e {
                                            AuthError::VerifierChanged => password_changed(target),
                                            e => ServerError::Auth(e.to_string()),
                                        })?
                                }
                                _ => return Err(no_plaintext(target, "a SCRAM password")),
                            };
                            builder::sasl_response(&mut out, &msg);
                        }
                        AuthRequest::SaslFinal(data) => {
                            let client = scram
                                .as_ref()
                                .ok_or_else(|| ServerError::Auth("unexpected SASL final".into()))?;
                            client
                                .server_final(&data)
                                .map_err(|e| ServerError::Auth(e.to_string()))?;
                            continue;
                        }
                        AuthRequest::Other(code) => {
                            return Err(ServerError::Auth(format!(
                                "server asks for authentication method {code}, which pgcorral does not support"
                            )))
                        }
                    }
                    self.stream.send(&out).await?;
                }
                be::PARAMETER_STATUS => {
                    let (name, value) = backend::parameter_status(&body)?;
                    self.params.set(name, value);
                }
                be::BACKEND_KEY_DATA => self.key = backend::backend_key_data(&body)?,
                be::ERROR_RESPONSE => return Err(ServerError::Login(backend::error_fields(&body))),
                be::READY_FOR_QUERY => {
                    self.login_params = Arc::new(self.params.clone());
                    return Ok(());
                }
                _ => {} // NoticeResponse, NegotiateProtocolVersion: nothing to do
            }
        }
    }

    /// Reads one whole message (login and quiet statements only; never on the data path).
    async fn read_message(&mut self) -> Result<(u8, bytes::Bytes), ServerError> {
        let mut codec = MessageCodec::new(self.scanner.max_len());
        let m = read_frame::<_, ServerError>(
            &mut self.stream,
            &mut self.buf,
            &mut codec,
            SERVER_READ_SIZE,
        )
        .await
        .map_err(|e| match e {
            ServerError::Io(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                ServerError::Closed
            }
            e => e,
        })?;
        Ok((m.tag, m.body))
    }

    /// Sends `sql` as a simple query and reads until the server is quiet, discarding the
    /// results. Returns the first ErrorResponse as an error (after draining).
    pub async fn run_quiet(&mut self, sql: &str) -> Result<(), ServerError> {
        let mut out = BytesMut::new();
        builder::query(&mut out, sql);
        self.stream.send(&out).await?;
        self.exchange.frontend(b'Q');
        self.drain().await
    }

    /// Runs a simple query and returns its first row as text (health checks; the connection
    /// must be quiet and its results small).
    pub async fn query_row(&mut self, sql: &str) -> Result<Vec<Option<String>>, ServerError> {
        self.query_row_keeping(sql, &mut BytesMut::new()).await
    }

    /// [`Self::query_row`] for a connection a client holds: NotificationResponses that arrive
    /// meanwhile are appended to `notifications` (whole messages) for the client.
    pub async fn query_row_keeping(
        &mut self,
        sql: &str,
        notifications: &mut BytesMut,
    ) -> Result<Vec<Option<String>>, ServerError> {
        let mut out = BytesMut::new();
        builder::query(&mut out, sql);
        self.stream.send(&out).await?;
        let mut row = None;
        let mut error = None;
        loop {
            let (tag, body) = self.read_message().await?;
            match tag {
                be::DATA_ROW if row.is_none() => row = Some(backend::data_row(&body)?),
                be::ERROR_RESPONSE => error = Some(backend::error_fields(&body)),
                be::NOTIFICATION_RESPONSE => {
                    notifications.extend_from_slice(&[tag]);
                    notifications.extend_from_slice(&(body.len() as u32 + 4).to_be_bytes());
                    notifications.extend_from_slice(&body);
                }
                be::READY_FOR_QUERY => break,
                _ => {}
            }
        }
        match (error, row) {
            (Some(e), _) => Err(ServerError::Query(e)),
            (None, row) => Ok(row.unwrap_or_default()),
        }
    }

    /// Runs `sql` with the extended protocol, `$1` bound to `param` (never spliced into the
    /// text), and returns its first row as text, or None when it returns no row (auth_query).
    pub async fn query_with_param(
        &mut self,
        sql: &str,
        param: &str,
    ) -> Result<Option<Vec<Option<String>>>, ServerError> {
        let mut out = BytesMut::new();
        builder::parse_unnamed(&mut out, sql);
        builder::bind_unnamed(&mut out, &[Some(param)]);
        builder::execute_unnamed(&mut out);
        builder::sync(&mut out);
        self.stream.send(&out).await?;
        let mut row = None;
        let mut error = None;
        loop {
            let (tag, body) = self.read_message().await?;
            match tag {
                be::DATA_ROW if row.is_none() => row = Some(backend::data_row(&body)?),
                be::ERROR_RESPONSE if error.is_none() => error = Some(backend::error_fields(&body)),
                be::READY_FOR_QUERY => break,
                _ => {}
            }
        }
        match error {
            Some(e) => Err(ServerError::Query(e)),
            None => Ok(row),
        }
    }

    /// Says goodbye to the server (best effort) and closes the connection.
    pub async fn terminate(mut self) {
        let mut out = BytesMut::new();
        builder::terminate(&mut out);
        let _ = self.stream.send(&out).await;
    }

    /// Reads and discards server output until every pending request is answered, tracking
    /// parameters and transaction status. Handles a partially forwarded message at the start.
    pub async fn drain(&mut self) -> Result<(), ServerError> {
        let mut first_error: Option<ErrorFields> = None;
        while !self.exchange.is_quiet() || !self.scanner.at_boundary() {
            if self.buf.is_empty() || !self.scanner_made_progress(&mut first_error)? {
                self.buf.reserve(SERVER_READ_SIZE);
                if self.stream.read_buf(&mut self.buf).await? == 0 {
                    return Err(ServerError::Closed);
                }
                self.scanner_made_progress(&mut first_error)?;
            }
        }
        match first_error {
            Some(e) => Err(ServerError::Query(e)),
            None => Ok(()),
        }
    }

    /// Scans what is buffered, discarding it; returns whether anything was consumed.
    fn scanner_made_progress(
        &mut self,
        first_error: &mut Option<ErrorFields>,
    ) -> Result<bool, ServerError> {
        let ServerConn {
            buf,
            scanner,
            exchange,
            params,
            prepared,
            ..
        } = self;
        let mut bad = None;
        let scan = scanner.scan(
            buf,
            |t| {
                matches!(
                    t,
                    be::READY_FOR_QUERY
                        | be::PARAMETER_STATUS
                        | be::ERROR_RESPONSE
                        | be::COMMAND_COMPLETE
                )
            },
            |tag, msg| {
                match tag {
                    be::READY_FOR_QUERY => match backend::ready_status(msg) {
                        Ok(s) => exchange.backend(tag, Some(s)),
                        Err(e) => bad = Some(e),
                    },
                    // As on the data path: only settings that follow clients are recorded.
                    be::PARAMETER_STATUS => {
                        if let Ok((n, v)) = backend::parameter_status(&msg[5..]) {
                            if params::is_tracked_reported(n) {
                                params.set(n, v);
                            }
                        }
                    }
                    // A reset (DISCARD ALL) or DEALLOCATE ALL drops the prepared statements.
                    be::COMMAND_COMPLETE => {
                        prepared.command_complete(backend::command_tag(msg));
                    }
                    be::ERROR_RESPONSE => {
                        if first_error.is_none() {
                            *first_error = Some(backend::error_fields(&msg[5..]));
                        }
                    }
                    _ => exchange.backend(tag, None),
                }
                pgcorral::protocol::scanner::Verdict::Forward
            },
        )?;
        if let Some(e) = bad {
            return Err(e.into());
        }
        buf.advance(scan.forward);
        if let Some(needs) = scan.needs {
            buf.reserve(needs.saturating_sub(buf.len()));
        }
        Ok(scan.forward > 0)
    }

    /// A connection over an already connected socket, as if logged in (unit tests only).
    #[cfg(test)]
    pub fn for_tests(stream: TcpStream, addr: SocketAddr, generation: u64) -> Box<ServerConn> {
        Box::new(ServerConn::new(
            ServerStream::Plain(stream),
            addr,
            pgcorral::protocol::DEFAULT_MAX_MESSAGE_SIZE,
            generation,
        ))
    }

    /// Makes this connection's settings what `client` expects; true when that took a
    /// statement (none needed: no round trip). ParameterStatus replies update `self.params`;
    /// the caller copies tracked ones back.
    pub async fn sync_params(&mut self, client: &ParamSet) -> Result<bool, ServerError> {
        // The same settings (by stamp) on both sides as last time: nothing to compare.
        let stamps = (client.stamp(), self.params.stamp());
        if self.synced == Some(stamps) {
            return Ok(false);
        }
        // Nothing is allocated when the settings already match (the common case).
        let Some(sql) = params::sync_statement(client, &self.params, &self.login_params) else {
            self.synced = Some(stamps);
            return Ok(false);
        };
        // Boxed: the round trip is rare, and a client's future would otherwise carry its
        // state for the client's whole life.
        Box::pin(self.run_sync(&sql, client)).await?;
        Ok(true)
    }

    async fn run_sync(&mut self, sql: &str, client: &ParamSet) -> Result<(), ServerError> {
        self.run_quiet(sql).await?;
        let login = self.login_params.clone();
        params::apply_sync(client, &mut self.params, &login);
        Ok(())
    }

    /// True when the idle connection has seen no unexpected input or EOF. Costs no syscall
    /// unless the reactor has marked the socket readable (which an idle server never should).
    pub fn is_healthy_idle(&mut self) -> bool {
        self.stream.is_healthy_idle()
    }

    /// Whether the server is idle and outside a transaction.
    pub fn tx_idle(&self) -> bool {
        self.exchange.tx == TxStatus::Idle
    }

    /// Gives back a large read buffer while the connection sits in the pool.
    pub fn shrink(&mut self) {
        if self.buf.is_empty() && self.buf.capacity() > 4 * SERVER_READ_SIZE {
            self.buf = BytesMut::with_capacity(SERVER_READ_SIZE);
        }
    }

    /// Detaches from this arbiter's reactor so another arbiter can adopt the connection.
    pub fn into_transferable(self: Box<Self>) -> std::io::Result<TransferableConn> {
        let this = *self;
        let stream = this.stream.detach()?;
        Ok(TransferableConn {
            stream,
            rest: ServerConnParts {
                id: this.id,
                addr: this.addr,
                tls: this.tls,
                local: this.local,
                buf: this.buf,
                scanner: this.scanner,
                exchange: this.exchange,
                key: this.key,
                params: this.params,
                login_params: this.login_params,
                created: this.created,
                last_used: this.last_used,
                generation: this.generation,
                budget: this.budget,
                prepared: this.prepared,
            },
        })
    }
}

impl TransferableConn {
    /// Registers the connection with the current arbiter's reactor.
    pub fn adopt(self) -> std::io::Result<Box<ServerConn>> {
        let r = self.rest;
        Ok(Box::new(ServerConn {
            stream: self.stream.attach()?,
            id: r.id,
            addr: r.addr,
            tls: r.tls,
            local: r.local,
            buf: r.buf,
            scanner: r.scanner,
            exchange: r.exchange,
            key: r.key,
            params: r.params,
            login_params: r.login_params,
            created: r.created,
            last_used: r.last_used,
            generation: r.generation,
            budget: r.budget,
            prepared: r.prepared,
            link: None,
            synced: None,
        }))
    }
}

fn no_plaintext(target: &ServerTarget, what: &str) -> ServerError {
    ServerError::Credentials(format!(
        "the server asks for {what} for user \"{}\" but pgcorral has no plaintext password for it \
         (set users.<name>.server_password or a plaintext users.<name>.password)",
        target.user
    ))
}

/// A SCRAM verifier is all pgcorral has, and no client has proved its key yet.
fn no_client_key(target: &ServerTarget) -> ServerError {
    ServerError::Credentials(format!(
        "cannot log into the server as \"{}\" yet: pgcorral has only a SCRAM verifier for \
         it, and the key that logs in with a verifier is learned when a client logs in as that \
         user with SCRAM (or the password method); until then this pool opens no server \
         connections (min_pool_size and health checks wait too). Give a plaintext \
         users.<name>.server_password to connect without waiting",
        target.user
    ))
}

/// The server's SCRAM salt or iteration count is not the stored verifier's.
fn password_changed(target: &ServerTarget) -> ServerError {
    ServerError::Credentials(format!(
        "the password of \"{}\" changed on the server (its SCRAM salt or iteration count is \
         not the verifier pgcorral has); update the secret in users, auth_file, or let \
         auth_query fetch it again by logging in with the new password",
        target.user
    ))
}
