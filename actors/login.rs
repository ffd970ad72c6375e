//! Client login after the StartupMessage (the packets before it, TLS included, are
//! `negotiate`'s): the access rules (`auth_type = "hba"`), the user's credentials
//! (`[users]`, `auth_file`, or auth_query), authentication (trust, md5, SCRAM-SHA-256,
//! password, cert), the pool lookup, and the ParameterStatus/BackendKeyData/ReadyForQuery
//! that complete a PostgreSQL login.

use std::net::IpAddr;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use pgcorral::auth::hba::{HbaMethod, HbaRequest, HbaVerdict};
use pgcorral::auth::{md5_verify, verify_password, ScramServer, ScramVerifier, Secret};
use pgcorral::config::AuthType;
use pgcorral::protocol::tag::frontend as fe;
use pgcorral::protocol::{builder, MessageCodec, ProtocolError};
use pgcorral::session::params::{is_tracked_reported, StartupParams};
use pgcorral::session::ParamSet;
use rand::rngs::OsRng;
use rand::RngCore;
use sha2::{Digest, Sha256};
use slog::{debug, warn};

use crate::admin::AdminUser;
use crate::auth_query::FetchedUser;
use crate::cancel::CancelKey;
use crate::client_stream::{ClientStream, ClientTransport};
use crate::cluster::Member;
use crate::error::ClientError;
use crate::framed::read_frame;
use crate::pool::{CheckoutError, PoolShard};
use crate::shards::Shards;
use crate::shared::{Loaded, Shared, UserAuth};
use crate::worker::Worker;

/// Bytes reserved for the reply that ends a login (PostgreSQL 15's usual reply is about
/// 400 bytes).
const LOGIN_REPLY_CAPACITY: usize = 512;

/// Login messages (passwords, SASL) are small; anything longer is refused.
const LOGIN_MESSAGE_MAX: usize = 64 * 1024;

/// A client that logged in.
pub struct LoggedIn {
    pub params: StartupParams,
    pub shards: Rc<Shards>,
    pub key: CancelKey,
}

pub enum LoginOutcome {
    LoggedIn(LoggedIn),
    /// A user of the admin console.
    Admin(AdminUser),
    /// The connection carried a CancelRequest and is done.
    CancelHandled,
}

/// Where a client connects from, as the access rules see it.
#[derive(Debug, Clone)]
pub struct ClientOrigin {
    /// The client's address.
    pub addr: IpAddr,
    /// Whether the connection uses TLS.
    pub tls: bool,
    /// The common name of the client certificate the TLS layer verified, if any.
    pub peer_cn: Option<String>,
}

impl ClientOrigin {
    /// The origin of a client at `addr` connected over `transport`.
    pub fn new(addr: IpAddr, transport: &ClientTransport) -> Self {
        ClientOrigin {
            addr,
            tls: transport.tls,
            peer_cn: transport.peer_cn.clone(),
        }
    }
}

/// Runs the login of a client that sent `params` from `origin`. Bytes the client sent
/// after its login stay in `buf`.
pub async fn login(
    stream: &mut ClientStream,
    buf: &mut BytesMut,
    worker: &Worker,
    params: Vec<(String, String)>,
    origin: &ClientOrigin,
) -> Result<LoginOutcome, ClientError> {
    let shared = &worker.shared;
    let general = shared.general();
    if shared.clients.load(Ordering::Relaxed) > general.max_client_conn {
        return Err(ClientError::TooManyClients {
            max: general.max_client_conn,
        });
    }
    if shared.is_shutting_down() {
        return Err(ClientError::ShuttingDown);
    }
    let params =
        StartupParams::from_startup(&params).map_err(|e| ClientError::BadStartup(e.to_string()))?;
    let loaded = shared.loaded();
    let console = params.database == "pgcorral" || params.database == "pgbouncer";
    let method = access(shared, &loaded, origin, &params)?;
    let mut out = BytesMut::new();
    let user = authenticate(
        stream, buf, shared, &loaded, &params, console, method, &mut out,
    )
    .await?;
    if console {
        let admin = general.admin_users.contains(&params.user);
        if !admin && !general.stats_users.contains(&params.user) {
            return Err(ClientError::NotConsoleUser {
                user: params.user.clone(),
            });
        }
        builder::auth_ok(&mut out);
        for (name, value) in [
            ("server_version", "15.0 (pgcorral)"),
            ("server_encoding", "UTF8"),
            ("client_encoding", "UTF8"),
            ("DateStyle", "ISO, MDY"),
            ("TimeZone", "UTC"),
            ("integer_datetimes", "on"),
            ("standard_conforming_strings", "on"),
            (
                "application_name",
                params.settings.get("application_name").unwrap_or(""),
            ),
        ] {
            builder::parameter_status(&mut out, name, value);
        }
        builder::backend_key_data(&mut out, 0, 0);
        builder::ready_for_query(&mut out, b'I');
        stream.send(&out).await?;
        return Ok(LoginOutcome::Admin(AdminUser {
            name: params.user.clone(),
            admin,
        }));
    }
    let no_pool = |unknown_database| ClientError::NoSuchPool {
        database: params.database.clone(),
        user: params.user.clone(),
        unknown_database,
    };
    let Some(user) = user else {
        return Err(no_pool(false));
    };
    if shared.is_disabled(&params.database) {
        return Err(ClientError::Disabled(params.database.clone()));
    }
    if loaded.config.pool(&params.database).is_none() {
        return Err(no_pool(true));
    }
    let shards = worker
        .pool_with(&params.database, &user)
        .ok_or_else(|| no_pool(true))?;
    let known = shards.clusters.iter().find_map(|c| c.server_params());
    let server_params = match known {
        Some(p) => p,
        None => learn_server_params(&shards).await?,
    };
    // Room for the whole reply (AuthenticationOk, a dozen ParameterStatus, the key,
    // ReadyForQuery) in one allocation, made last: a buffer that lived across the login's
    // other allocations would leave a hole among them.
    out.reserve(LOGIN_REPLY_CAPACITY);
    builder::auth_ok(&mut out);
    for (name, value) in server_params.iter() {
        let value = match params.settings.get(name) {
            Some(v) if is_tracked_reported(name) => v,
            _ => value,
        };
        builder::parameter_status(&mut out, name, value);
    }
    let key = shared.cancels.register();
    builder::backend_key_data(&mut out, key.pid, key.secret);
    builder::ready_for_query(&mut out, b'I');
    stream.send(&out).await?;
    Ok(LoginOutcome::LoggedIn(LoggedIn {
        params,
        shards,
        key,
    }))
}

/// First client of a pool: log into a server to learn what it reports. Any server that
/// answers will do (no role is needed for that), those not banned first.
async fn learn_server_params(shards: &Shards) -> Result<Arc<ParamSet>, ClientError> {
    let mut last = None;
    let mut members: Vec<&Member> = shards.clusters.iter().flat_map(|c| &c.members).collect();
    members.sort_by_key(|m| m.state.is_banned());
    for m in members {
        let shard = &m.shard;
        match shard.checkout().await {
            Ok(conn) => {
                let p = conn.login_params.clone();
                shard.global.remember_server_params(&p);
                shard.checkin(conn);
                return Ok(p);
            }
            Err(e) => last = Some(checkout_error(shard, e)),
        }
    }
    Err(last.unwrap_or_else(|| ClientError::ServerUnavailable {
        pool: shards.clusters[0].settings().label(),
        reason: "no server is up (all banned or not answering health checks)".into(),
    }))
}

/// Maps a failed checkout to what the client is told.
pub fn checkout_error(shard: &PoolShard, e: CheckoutError) -> ClientError {
    let pool = shard.global.settings().label();
    match e {
        CheckoutError::WaitTimeout(waited) => ClientError::WaitTimeout { pool, waited },
        CheckoutError::Server(reason) => ClientError::ServerUnavailable { pool, reason },
        CheckoutError::Closed => ClientError::ServerUnavailable {
            pool,
            reason: "the pool was closed".into(),
        },
    }
}

/// Reads one password-type message (`p`); anything else is a protocol violation.
async fn read_password_message(
    stream: &mut ClientStream,
    buf: &mut BytesMut,
) -> Result<Bytes, ClientError> {
    let m =
        read_frame::<_, ClientError>(stream, buf, &mut MessageCodec::new(LOGIN_MESSAGE_MAX), 512)
            .await?;
    if m.tag != fe::PASSWORD {
        return Err(ProtocolError::Unexpected {
            tag: m.tag,
            context: "expected a password message",
        }
        .into());
    }
    Ok(m.body)
}

/// How a client must prove who it is: `auth_type`, or the access rule that fits it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Method {
    Trust,
    Md5,
    Scram,
    Password,
    /// The access rule checked the client certificate: no password.
    Cert,
}

/// The method for this client; with `auth_type = "hba"`, the first access rule that fits
/// decides (before any password is asked, as in PostgreSQL), also for the admin console.
fn access(
    shared: &Shared,
    loaded: &Loaded,
    origin: &ClientOrigin,
    params: &StartupParams,
) -> Result<Method, ClientError> {
    let rules = match loaded.config.general.auth_type {
        AuthType::Trust => return Ok(Method::Trust),
        AuthType::Md5 => return Ok(Method::Md5),
        AuthType::ScramSha256 => return Ok(Method::Scram),
        AuthType::Hba => loaded.hba.as_deref(),
    };
    let request = HbaRequest {
        addr: origin.addr,
        tls: origin.tls,
        peer_cn: origin.peer_cn.as_deref(),
        database: &params.database,
        user: &params.user,
    };
    let verdict = rules.map_or(HbaVerdict::NoEntry, |r| r.decide(&request));
    let who = || {
        (
            origin.addr.to_string(),
            params.user.clone(),
            params.database.clone(),
        )
    };
    match verdict {
        HbaVerdict::Authenticate { line, method } => {
            debug!(shared.log, "access rule"; "line" => line, "method" => method.as_str(),
                "user" => &params.user, "database" => &params.database);
            Ok(match method {
                HbaMethod::Trust => Method::Trust,
                HbaMethod::Md5 => Method::Md5,
                HbaMethod::ScramSha256 => Method::Scram,
                HbaMethod::Password => Method::Password,
                HbaMethod::Cert => Method::Cert,
                // decide() never authenticates with reject.
                HbaMethod::Reject => return Err(rejected(who(), origin.tls)),
            })
        }
        HbaVerdict::Reject { line } => {
            debug!(shared.log, "access rule rejects"; "line" => line);
            Err(rejected(who(), origin.tls))
        }
        HbaVerdict::CertificateRefused { line } => {
            debug!(shared.log, "access rule wants a client certificate"; "line" => line);
            Err(ClientError::CertificateFailed {
                user: params.user.clone(),
            })
        }
        HbaVerdict::NoEntry => {
            let (host, user, database) = who();
            Err(ClientError::NoHbaEntry {
                host,
                user,
                database,
                tls: origin.tls,
            })
        }
    }
}

fn rejected((host, user, database): (String, String, String), tls: bool) -> ClientError {
    ClientError::HbaRejected {
        host,
        user,
        database,
        tls,
    }
}

/// Where a user's credentials come from.
enum Credentials {
    /// `[users]` or `auth_file`.
    Configured(Arc<UserAuth>),
    /// auth_query, for a pool.
    Fetched(FetchedUser),
    /// Nowhere: the login fails like a wrong password, after the same exchange.
    Unknown,
}

impl Credentials {
    fn auth(&self) -> Option<&Arc<UserAuth>> {
        match self {
            Credentials::Configured(a) => Some(a),
            Credentials::Fetched(f) => Some(&f.value),
            Credentials::Unknown => None,
        }
    }

    fn secret(&self) -> Option<&Secret> {
        self.auth().and_then(|a| a.secret.as_deref())
    }
}

/// Finds the user and runs the exchange `method` asks for. Returns the user's credentials
/// (None: unknown, which only `trust` and `cert` let through, to be refused by the caller).
#[allow(clippy::too_many_arguments)]
async fn authenticate(
    stream: &mut ClientStream,
    buf: &mut BytesMut,
    shared: &Shared,
    loaded: &Loaded,
    params: &StartupParams,
    console: bool,
    method: Method,
    out: &mut BytesMut,
) -> Result<Option<Arc<UserAuth>>, ClientError> {
    let mut creds = find_user(shared, loaded, params, console).await?;
    let who = Who {
        shared,
        pool: &params.database,
        user: &params.user,
    };
    match method {
        Method::Trust | Method::Cert => {}
        // PostgreSQL too uses SCRAM for md5 when it only has a SCRAM verifier.
        Method::Md5 if matches!(creds.secret(), Some(Secret::Scram(_))) => {
            authenticate_scram(stream, buf, &who, &creds, out).await?
        }
        Method::Md5 => authenticate_md5(stream, buf, &who, &mut creds, out).await?,
        Method::Scram => authenticate_scram(stream, buf, &who, &creds, out).await?,
        Method::Password => authenticate_password(stream, buf, &who, &mut creds, out).await?,
    }
    Ok(creds.auth().cloned())
}

/// The user's credentials: `[users]` and `auth_file` first; else, for a pool and with
/// `auth_user` set, what auth_query returns.
async fn find_user(
    shared: &Shared,
    loaded: &Loaded,
    params: &StartupParams,
    console: bool,
) -> Result<Credentials, ClientError> {
    if let Some(u) = loaded.users.get(&params.user) {
        return Ok(Credentials::Configured(u.clone()));
    }
    if console
        || loaded.config.general.auth_user.is_none()
        || loaded.config.pool(&params.database).is_none()
    {
        return Ok(Credentials::Unknown);
    }
    match shared
        .auth_query
        .lookup(shared, &params.database, &params.user)
        .await
    {
        Ok(Some(f)) => Ok(Credentials::Fetched(f)),
        Ok(None) => Ok(Credentials::Unknown),
        Err(e) => {
            warn!(shared.log, "auth_query failed"; "pool" => &params.database,
                "user" => &params.user, "error" => %e);
            Err(ClientError::ServerUnavailable {
                pool: format!("{}/{}", params.database, params.user),
                reason: e.to_string(),
            })
        }
    }
}

/// The login being authenticated, for fetching a fresher secret.
struct Who<'a> {
    shared: &'a Shared,
    pool: &'a str,
    user: &'a str,
}

impl Who<'_> {
    fn failed(&self) -> ClientError {
        ClientError::AuthFailed {
            user: self.user.to_owned(),
        }
    }

    /// A check failed against `creds`: when they came from auth_query's cache, fetch again
    /// and return the new credentials if the secret changed (a failed fetch is logged and
    /// counts as no change).
    async fn fresher(&self, creds: &Credentials) -> Option<FetchedUser> {
        let Credentials::Fetched(failed) = creds else {
            return None;
        };
        let aq = &self.shared.auth_query;
        match aq.refetch(self.shared, self.pool, self.user, failed).await {
            Ok(newer) => newer,
            Err(e) => {
                warn!(self.shared.log, "auth_query failed"; "pool" => self.pool,
                    "user" => self.user, "error" => %e);
                None
            }
        }
    }
}

async fn authenticate_md5(
    stream: &mut ClientStream,
    buf: &mut BytesMut,
    who: &Who<'_>,
    creds: &mut Credentials,
    out: &mut BytesMut,
) -> Result<(), ClientError> {
    let mut salt = [0u8; 4];
    OsRng.fill_bytes(&mut salt);
    out.clear();
    builder::auth_md5(out, salt);
    stream.send(out).await?;
    out.clear();
    let body = read_password_message(stream, buf).await?;
    let response =
        builder::parse_password(&body).ok_or(ProtocolError::malformed("password message"))?;
    let secret = creds.secret().ok_or_else(|| who.failed())?;
    if md5_verify(who.user, secret, salt, response).is_ok() {
        return Ok(());
    }
    // The salt is ours: the same response can be checked against a fresher secret.
    if let Some(newer) = who.fresher(creds).await {
        let fits = newer
            .value
            .secret
            .as_deref()
            .is_some_and(|s| md5_verify(who.user, s, salt, response).is_ok());
        *creds = Credentials::Fetched(newer);
        if fits {
            return Ok(());
        }
    }
    Err(who.failed())
}

async fn authenticate_password(
    stream: &mut ClientStream,
    buf: &mut BytesMut,
    who: &Who<'_>,
    creds: &mut Credentials,
    out: &mut BytesMut,
) -> Result<(), ClientError> {
    out.clear();
    builder::auth_cleartext(out);
    stream.send(out).await?;
    out.clear();
    let body = read_password_message(stream, buf).await?;
    let password =
        builder::parse_password(&body).ok_or(ProtocolError::malformed("password message"))?;
    let secret = creds.secret().cloned().ok_or_else(|| who.failed())?;
    if check_password(who, &secret, password).await {
        return Ok(());
    }
    if let Some(newer) = who.fresher(creds).await {
        let fits = match newer.value.secret.as_deref() {
            Some(s) => check_password(who, s, password).await,
            None => false,
        };
        *creds = Credentials::Fetched(newer);
        if fits {
            return Ok(());
        }
    }
    Err(who.failed())
}

/// A clear-text password against a secret; for a SCRAM verifier PBKDF2 runs on a blocking
/// thread and the ClientKey it gives is kept for pass-through.
async fn check_password(who: &Who<'_>, secret: &Secret, password: &str) -> bool {
    let Secret::Scram(verifier) = secret else {
        return verify_password(who.user, secret, password).is_ok();
    };
    let (user, s, p) = (who.user.to_owned(), secret.clone(), password.to_owned());
    match tokio::task::spawn_blocking(move || verify_password(&user, &s, &p)).await {
        Ok(Ok(key)) => {
            if let Some(key) = key {
                who.shared.client_keys.learn(verifier, key);
            }
            true
        }
        _ => false,
    }
}

async fn authenticate_scram(
    stream: &mut ClientStream,
    buf: &mut BytesMut,
    who: &Who<'_>,
    creds: &Credentials,
    out: &mut BytesMut,
) -> Result<(), ClientError> {
    // Unknown users (and users without a usable secret) go through the same exchange with a
    // mock verifier, as PostgreSQL does, so user names cannot be probed.
    let real = creds.auth().and_then(|u| u.scram.clone());
    let known = real.is_some();
    let verifier = real.unwrap_or_else(|| mock_verifier(who.user));
    let mut server = ScramServer::new(verifier);
    out.clear();
    builder::auth_sasl(out, pgcorral::auth::scram::MECHANISM);
    stream.send(out).await?;
    out.clear();
    let body = read_password_message(stream, buf).await?;
    let (mechanism, first) = builder::parse_sasl_initial_response(&body)
        .ok_or(ProtocolError::malformed("SASLInitialResponse"))?;
    if mechanism != pgcorral::auth::scram::MECHANISM {
        return Err(ClientError::BadStartup(format!(
            "SASL mechanism {mechanism:?} is not supported; use SCRAM-SHA-256"
        )));
    }
    let server_first = server.client_first(first).map_err(|_| who.failed())?;
    builder::auth_sasl_continue(out, &server_first);
    stream.send(out).await?;
    out.clear();
    let body = read_password_message(stream, buf).await?;
    let server_final = match server.client_final(&body) {
        Ok(f) => f,
        Err(_) => {
            // The verifier's salt went out already, so a fresher verifier cannot check this
            // proof: the next login fetches one. (Also when a mock verifier stood for an md5
            // hash: the role may have moved to SCRAM since.)
            if let Credentials::Fetched(failed) = creds {
                who.shared
                    .auth_query
                    .forget_after_failure(who.pool, who.user, failed);
            }
            return Err(who.failed());
        }
    };
    if !known {
        return Err(who.failed());
    }
    // Pass-through: the proof gave away the ClientKey, which logs into servers that hold the
    // same verifier.
    if let (Some(key), Some(Secret::Scram(verifier))) = (server.client_key(), creds.secret()) {
        who.shared.client_keys.learn(verifier, key);
    }
    builder::auth_sasl_final(out, &server_final);
    Ok(())
}

/// A verifier that no password matches, stable per user name within this process.
fn mock_verifier(user: &str) -> ScramVerifier {
    static NONCE: std::sync::OnceLock<[u8; 16]> = std::sync::OnceLock::new();
    let nonce = NONCE.get_or_init(|| {
        let mut n = [0u8; 16];
        OsRng.fill_bytes(&mut n);
        n
    });
    let digest = Sha256::new()
        .chain_update(nonce)
        .chain_update(user.as_bytes())
        .finalize();
    let mut random = [0u8; 32];
    OsRng.fill_bytes(&mut random);
    ScramVerifier {
        iterations: 4096,
        salt: digest[..16].to_vec(),
        stored_key: random,
        server_key: random,
    }
}
