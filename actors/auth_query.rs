//! auth_query: the secret of a user that is in neither `[users]` nor `auth_file`, fetched from
//! the database the client asked for by running `auth_query` (its `$1` bound to the user name)
//! logged in as `auth_user`, and cached per (pool, user) for every arbiter.
//!
//! Each fetch uses a connection of its own, opened and closed around the query: it takes no
//! slot of any pool's budget, and the cache makes it rare. It is bounded by the pool's
//! `server_connect_timeout` (connecting and logging in) and `query_wait_timeout` (the query).
//! One fetch at a time runs per (pool, user); logins that need the same one wait for it.
//! When to fetch again is [`pgcorral::auth::fetched`]'s business. Secrets are never logged.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::{Duration, Instant};

use pgcorral::auth::fetched::{Fetched, FetchedSecrets};
use pgcorral::auth::Secret;
use slog::{debug, warn};

use crate::error::ServerError;
use crate::server::{ServerConn, ServerTarget};
use crate::shared::{Shared, UserAuth};

/// A fetched user: its credentials and when they were fetched.
pub type FetchedUser = Fetched<Arc<UserAuth>>;

/// Why a secret could not be fetched. The messages name servers and roles, never secrets.
#[derive(Debug, thiserror::Error)]
pub enum AuthQueryError {
    #[error("auth_query is not available: {0}")]
    NotConfigured(String),
    #[error("auth_query as \"{auth_user}\" on {server} failed: {source}")]
    Server {
        auth_user: String,
        server: String,
        source: ServerError,
    },
    #[error("auth_query on {server} took longer than query_wait_timeout ({waited:?})")]
    Timeout { server: String, waited: Duration },
    #[error(
        "auth_query must return the user name and its secret (two columns); it returned {0} \
         column(s)"
    )]
    Shape(usize),
}

/// One fetch at a time per (pool, user): the lock logins of that user wait on.
type Flight = tokio::sync::Mutex<()>;

/// The cache and the fetches under way.
#[derive(Default)]
pub struct AuthQuery {
    cache: FetchedSecrets<Arc<UserAuth>>,
    /// One lock per (pool, user) whose secret is being fetched.
    flights: Mutex<HashMap<(String, String), Weak<Flight>>>,
}

impl AuthQuery {
    /// The credentials of `user` for pool `pool`: cached while younger than
    /// auth_query_cache_ttl, else fetched. `Ok(None)`: no such user, or no secret for it.
    pub async fn lookup(
        &self,
        shared: &Shared,
        pool: &str,
        user: &str,
    ) -> Result<Option<FetchedUser>, AuthQueryError> {
        let ttl = shared.general().auth_query_cache_ttl;
        if let Some(hit) = self.cache.get(pool, user, ttl, Instant::now()) {
            return Ok(Some(hit));
        }
        if ttl.is_none() {
            // Fetched at every login: nothing to share with concurrent logins.
            return self.fetch_and_store(shared, pool, user).await;
        }
        let flight = self.flight(pool, user);
        let _one_at_a_time = flight.lock().await;
        // The fetch this login waited for may have brought it.
        if let Some(hit) = self.cache.get(pool, user, ttl, Instant::now()) {
            return Ok(Some(hit));
        }
        self.fetch_and_store(shared, pool, user).await
    }

    /// A login failed against `failed`: fetch again (when it is old enough) and return the new
    /// credentials if their secret differs, so the caller can check the same answer again.
    pub async fn refetch(
        &self,
        shared: &Shared,
        pool: &str,
        user: &str,
        failed: &FetchedUser,
    ) -> Result<Option<FetchedUser>, AuthQueryError> {
        if !failed.may_refetch(Instant::now()) {
            return Ok(None);
        }
        let flight = self.flight(pool, user);
        let _one_at_a_time = flight.lock().await;
        let newer = match self.cache.latest(pool, user) {
            // Another login refreshed it meanwhile.
            Some(latest) if latest.id != failed.id && !latest.may_refetch(Instant::now()) => {
                Some(latest)
            }
            _ => self.fetch_and_store(shared, pool, user).await?,
        };
        Ok(newer.filter(|n| !same_secret(&n.value, &failed.value)))
    }

    /// A SCRAM login failed against `failed`: its salt was already sent, so the same proof
    /// cannot be checked against a new verifier. Drop the entry (when it is old enough) so
    /// the next login fetches a fresh one.
    pub fn forget_after_failure(&self, pool: &str, user: &str, failed: &FetchedUser) {
        if failed.may_refetch(Instant::now()) {
            self.cache.invalidate(pool, user, failed.id);
        }
    }

    /// A server refused the fetched secret: the next login fetches it again.
    pub fn forget(&self, pool: &str, user: &str) {
        if let Some(old) = self.cache.latest(pool, user) {
            self.cache.invalidate(pool, user, old.id);
        }
    }

    /// What was fetched last for (pool, user), whatever its age.
    pub fn latest(&self, pool: &str, user: &str) -> Option<FetchedUser> {
        self.cache.latest(pool, user)
    }

    /// RELOAD: everything is fetched again.
    pub fn clear(&self) {
        self.cache.clear();
    }

    fn flight(&self, pool: &str, user: &str) -> Arc<Flight> {
        let mut flights = self.flights.lock().unwrap_or_else(PoisonError::into_inner);
        flights.retain(|_, f| f.strong_count() > 0);
        let key = (pool.to_owned(), user.to_owned());
        if let Some(f) = flights.get(&key).and_then(Weak::upgrade) {
            return f;
        }
        let f = Arc::new(Flight::new(()));
        flights.insert(key, Arc::downgrade(&f));
        f
    }

    async fn fetch_and_store(
        &self,
        shared: &Shared,
        pool: &str,
        user: &str,
    ) -> Result<Option<FetchedUser>, AuthQueryError> {
        match fetch(shared, pool, user).await? {
            Some(auth) => {
                let entry = self.cache.insert(pool, user, auth, Instant::now());
                shared.update_fetched_user(pool, &entry.value);
                Ok(Some(entry))
            }
            None => {
                // Gone (or its password removed): forget what was known.
                self.forget(pool, user);
                Ok(None)
            }
        }
    }
}

fn same_secret(a: &UserAuth, b: &UserAuth) -> bool {
    match (a.secret.as_deref(), b.secret.as_deref()) {
        (Some(x), Some(y)) => x.same_as(y),
        (None, None) => true,
        _ => false,
    }
}

/// Runs auth_query for `user` on the servers of `pool` (in configuration order, banned ones
/// last) until one answers.
async fn fetch(
    shared: &Shared,
    pool: &str,
    user: &str,
) -> Result<Option<Arc<UserAuth>>, AuthQueryError> {
    let loaded = shared.loaded();
    let general = &loaded.config.general;
    let auth_user = general
        .auth_user
        .clone()
        .ok_or_else(|| AuthQueryError::NotConfigured("general.auth_user is not set".into()))?;
    let cfg = loaded
        .config
        .pool(pool)
        .ok_or_else(|| AuthQueryError::NotConfigured(format!("no pool \"{pool}\"")))?;
    // auth_user's own secret comes from [users] or auth_file.
    let (server_user, secret) = match loaded.users.get(&auth_user) {
        Some(a) => (
            a.user
                .server_user
                .clone()
                .unwrap_or_else(|| auth_user.clone()),
            a.server_secret.clone(),
        ),
        None => (auth_user.clone(), None),
    };
    let mut servers: Vec<(&pgcorral::config::Server, &str)> = cfg
        .shards
        .iter()
        .flat_map(|s| s.servers.iter().map(move |srv| (srv, s.database.as_str())))
        .collect();
    servers.sort_by_key(|(s, _)| shared.server_state(&s.host, s.port, s.role).is_banned());
    let mut last = None;
    for (server, database) in servers {
        let target = ServerTarget {
            host: server.host.clone(),
            port: server.port,
            database: database.to_owned(),
            user: server_user.clone(),
            secret: secret.clone(),
        };
        let name = format!("{}:{}", server.host, server.port);
        let started = Instant::now();
        match run(shared, &target, cfg, &general.auth_query, user).await {
            Ok(row) => {
                debug!(shared.log, "auth_query answered"; "pool" => pool, "user" => user,
                    "server" => &name, "found" => row.is_some(), "ms" => started.elapsed().as_millis() as u64);
                return secret_of(shared, user, row).await;
            }
            // The query itself failed: it would fail on every server.
            Err(Failure::Query(source)) => {
                return Err(AuthQueryError::Server {
                    auth_user,
                    server: name,
                    source,
                })
            }
            Err(Failure::Server(source)) => {
                last = Some(AuthQueryError::Server {
                    auth_user: auth_user.clone(),
                    server: name,
                    source,
                })
            }
            Err(Failure::Timeout(waited)) => {
                last = Some(AuthQueryError::Timeout {
                    server: name,
                    waited,
                })
            }
        }
    }
    Err(last.unwrap_or_else(|| {
        AuthQueryError::NotConfigured(format!("pool \"{pool}\" has no servers"))
    }))
}

enum Failure {
    Server(ServerError),
    Query(ServerError),
    Timeout(Duration),
}

/// One attempt on one server: a connection of its own, the query, goodbye.
async fn run(
    shared: &Shared,
    target: &ServerTarget,
    cfg: &pgcorral::config::Pool,
    sql: &str,
    user: &str,
) -> Result<Option<Vec<Option<String>>>, Failure> {
    let mut conn = ServerConn::connect(target, shared, cfg.server_connect_timeout, 0)
        .await
        .map_err(Failure::Server)?;
    let query = conn.query_with_param(sql, user);
    let row = match cfg.query_wait_timeout {
        Some(t) => tokio::time::timeout(t, query)
            .await
            .map_err(|_| Failure::Timeout(t))?,
        None => query.await,
    };
    match row {
        Ok(row) => {
            conn.terminate().await;
            Ok(row)
        }
        Err(e @ ServerError::Query(_)) => {
            conn.terminate().await;
            Err(Failure::Query(e))
        }
        Err(e) => Err(Failure::Server(e)),
    }
}

/// The credentials in the row auth_query returned (user name, secret). No row, a NULL or
/// empty secret, or one that does not parse: no such user (the client fails like any unknown
/// user).
async fn secret_of(
    shared: &Shared,
    user: &str,
    row: Option<Vec<Option<String>>>,
) -> Result<Option<Arc<UserAuth>>, AuthQueryError> {
    let Some(row) = row else {
        return Ok(None);
    };
    if row.len() < 2 {
        return Err(AuthQueryError::Shape(row.len()));
    }
    let Some(text) = row.into_iter().nth(1).flatten().filter(|t| !t.is_empty()) else {
        return Ok(None);
    };
    let secret = match Secret::parse(&text) {
        Ok(s) => s,
        Err(e) => {
            warn!(shared.log, "auth_query returned a secret that does not parse; the user cannot log in";
                "user" => user, "error" => %e);
            return Ok(None);
        }
    };
    let name = user.to_owned();
    let auth = match secret {
        // A plaintext secret needs a SCRAM verifier derived: PBKDF2, off the arbiter.
        Secret::Plain(_) => tokio::task::spawn_blocking(move || UserAuth::fetched(&name, secret))
            .await
            .map_err(|e| {
                AuthQueryError::NotConfigured(format!("deriving the SCRAM verifier failed: {e}"))
            })?,
        _ => UserAuth::fetched(&name, secret),
    };
    Ok(Some(Arc::new(auth)))
}
