//! Client login after the StartupMessage (the packets before it are `negotiate`'s):
//! authentication (trust, md5, SCRAM-SHA-256), the pool lookup, and the
//! ParameterStatus/BackendKeyData/ReadyForQuery that complete a PostgreSQL login.

use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use pgcorral::auth::{md5_verify, ScramServer, ScramVerifier, Secret};
use pgcorral::config::AuthType;
use pgcorral::protocol::tag::frontend as fe;
use pgcorral::protocol::{builder, MessageCodec, ProtocolError};
use pgcorral::session::params::{is_tracked_reported, StartupParams};
use pgcorral::session::ParamSet;
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::admin::AdminUser;
use crate::cancel::CancelKey;
use crate::client_stream::{ClientStream, ClientTransport};
use crate::cluster::Member;
use crate::error::ClientError;
use crate::framed::read_frame;
use crate::pool::{CheckoutError, PoolShard};
use crate::shards::Shards;
use crate::shared::UserAuth;
use crate::worker::Worker;

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

/// Runs the login of a client that sent `params` over `transport`. Bytes the client sent
/// after its login stay in `buf`.
pub async fn login(
    stream: &mut ClientStream,
    buf: &mut BytesMut,
    worker: &Worker,
    params: Vec<(String, String)>,
    transport: &ClientTransport,
) -> Result<LoginOutcome, ClientError> {
    let shared = &worker.shared;
    // Access rules (auth_type = "hba") read it: hostssl / hostnossl lines, the cert method.
    let _ = transport;
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
    let user = loaded.users.get(&params.user).cloned();
    let mut out = BytesMut::new();
    match general.auth_type {
        AuthType::Trust => {}
        AuthType::Md5 => match user.as_deref() {
            // PostgreSQL too uses SCRAM for md5 when it only has a SCRAM verifier.
            Some(UserAuth {
                secret: Some(s), ..
            }) if matches!(**s, Secret::Scram(_)) => {
                authenticate_scram(stream, buf, &params.user, user.as_deref(), &mut out).await?
            }
            _ => authenticate_md5(stream, buf, &params.user, user.as_deref(), &mut out).await?,
        },
        AuthType::ScramSha256 => {
            authenticate_scram(stream, buf, &params.user, user.as_deref(), &mut out).await?
        }
        // Access rules are read by the security work in progress; until then nobody passes.
        AuthType::Hba => {
            return Err(ClientError::AuthFailed {
                user: params.user.clone(),
            })
        }
    }
    if params.database == "pgcorral" || params.database == "pgbouncer" {
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
    if user.is_none() {
        return Err(no_pool(false));
    }
    if shared.is_disabled(&params.database) {
        return Err(ClientError::Disabled(params.database.clone()));
    }
    if loaded.config.pool(&params.database).is_none() {
        return Err(no_pool(true));
    }
    let shards = worker
        .pool(&params.database, &params.user)
        .ok_or_else(|| no_pool(true))?;
    let known = shards.clusters.iter().find_map(|c| c.server_params());
    let server_params = match known {
        Some(p) => p,
        None => learn_server_params(&shards).await?,
    };
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

async fn authenticate_md5(
    stream: &mut ClientStream,
    buf: &mut BytesMut,
    user_name: &str,
    user: Option<&UserAuth>,
    out: &mut BytesMut,
) -> Result<(), ClientError> {
    let mut salt = [0u8; 4];
    rand::thread_rng().fill_bytes(&mut salt);
    out.clear();
    builder::auth_md5(out, salt);
    stream.send(out).await?;
    out.clear();
    let body = read_password_message(stream, buf).await?;
    let response =
        builder::parse_password(&body).ok_or(ProtocolError::malformed("password message"))?;
    let failed = || ClientError::AuthFailed {
        user: user_name.to_owned(),
    };
    let secret = user.and_then(|u| u.secret.as_deref()).ok_or_else(failed)?;
    md5_verify(user_name, secret, salt, response).map_err(|_| failed())
}

async fn authenticate_scram(
    stream: &mut ClientStream,
    buf: &mut BytesMut,
    user_name: &str,
    user: Option<&UserAuth>,
    out: &mut BytesMut,
) -> Result<(), ClientError> {
    let failed = || ClientError::AuthFailed {
        user: user_name.to_owned(),
    };
    // Unknown users (and users without a usable secret) go through the same exchange with a
    // mock verifier, as PostgreSQL does, so user names cannot be probed.
    let real = user.and_then(|u| u.scram.clone());
    let known = real.is_some();
    let verifier = real.unwrap_or_else(|| mock_verifier(user_name));
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
    let server_first = server.client_first(first).map_err(|_| failed())?;
    builder::auth_sasl_continue(out, &server_first);
    stream.send(out).await?;
    out.clear();
    let body = read_password_message(stream, buf).await?;
    let server_final = server.client_final(&body).map_err(|_| failed())?;
    if !known {
        return Err(failed());
    }
    builder::auth_sasl_final(out, &server_final);
    Ok(())
}

/// A verifier that no password matches, stable per user name within this process.
fn mock_verifier(user: &str) -> ScramVerifier {
    static NONCE: std::sync::OnceLock<[u8; 16]> = std::sync::OnceLock::new();
    let nonce = NONCE.get_or_init(|| {
        let mut n = [0u8; 16];
        rand::thread_rng().fill_bytes(&mut n);
        n
    });
    let digest = Sha256::new()
        .chain_update(nonce)
        .chain_update(user.as_bytes())
        .finalize();
    let mut random = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut random);
    ScramVerifier {
        iterations: 4096,
        salt: digest[..16].to_vec(),
        stored_key: random,
        server_key: random,
    }
}
