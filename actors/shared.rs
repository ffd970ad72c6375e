//! Process-wide state shared by every arbiter: the loaded configuration and the secrets
//! derived from it, the TLS configurations, the cancel registry, pool budgets, client counts
//! and shutdown state.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::Duration;

use actix::Addr;
use arc_swap::ArcSwap;

use pgcorral::auth::hba::HbaRules;
use pgcorral::auth::{
    salted_password, userlist, ClientKeys, SaltedPasswordCache, ScramVerifier, Secret,
};
use pgcorral::config::{AuthType, Config, General, ServerRole, User};
use slog::Logger;

use crate::auth_query::AuthQuery;
use crate::balancer::{BalancerActor, BanServer};
use crate::budget::{PoolGlobal, PoolSettings};
use crate::cancel::CancelRegistry;
use crate::health::HealthCheckActor;
use crate::server_state::{BanReason, ServerState};
use crate::tls::TlsConfigs;
use crate::worker_thread::WorkerHandle;

/// A user's credentials with its secrets parsed (and a SCRAM verifier derived from a
/// plaintext password once, off the arbiter threads, so no login pays for PBKDF2): a user of
/// `[users]` or `auth_file`, or one whose secret `auth_query` fetched.
#[derive(Debug)]
pub struct UserAuth {
    pub user: User,
    pub secret: Option<Arc<Secret>>,
    pub scram: Option<ScramVerifier>,
    /// The secret used toward servers (server_password, else password).
    pub server_secret: Option<Arc<Secret>>,
}

impl UserAuth {
    /// Runs PBKDF2 when `secret` is a plaintext password: not on an arbiter thread.
    fn new(user: User, secret: Option<Secret>, server_secret: Option<Secret>) -> UserAuth {
        let secret = secret.map(Arc::new);
        let scram = match secret.as_deref() {
            Some(Secret::Plain(p)) => Some(ScramVerifier::generate(p)),
            Some(Secret::Scram(v)) => Some(v.clone()),
            _ => None,
        };
        let server_secret = match server_secret {
            Some(s) => Some(Arc::new(s)),
            None => secret.clone(),
        };
        UserAuth {
            user,
            secret,
            scram,
            server_secret,
        }
    }

    /// A user known only by the secret `auth_query` returned: default settings. Runs PBKDF2
    /// when the secret is a plaintext password: call it on a blocking thread then.
    pub fn fetched(name: &str, secret: Secret) -> UserAuth {
        UserAuth::new(default_user(name), Some(secret), None)
    }

    /// A fetched user as far as its pools need it (RELOAD keeps their server secret until the
    /// next fetch).
    pub fn for_servers(name: &str, server_secret: Option<Arc<Secret>>) -> UserAuth {
        UserAuth {
            user: default_user(name),
            secret: None,
            scram: None,
            server_secret,
        }
    }
}

/// A user with no settings of its own.
fn default_user(name: &str) -> User {
    User {
        name: name.to_owned(),
        password: None,
        server_user: None,
        server_password: None,
        pool_size: None,
        pool_mode: None,
    }
}

/// One loaded configuration with what was derived from it and the files it names. No
/// `Debug`: it holds secrets.
pub struct Loaded {
    pub config: Config,
    /// `[users]` merged with `auth_file`.
    pub users: HashMap<String, Arc<UserAuth>>,
    /// `auth_hba_file`, read when `auth_type = "hba"`.
    pub hba: Option<Arc<HbaRules>>,
}

impl Loaded {
    /// Parses the secrets of `config` and reads the files it names: blocking work (file reads,
    /// PBKDF2), done on the main thread at start and on a blocking thread by RELOAD. Errors
    /// name the key, the file and the line.
    pub fn new(config: Config) -> Result<Loaded, String> {
        let general = &config.general;
        let mut from_file: HashMap<String, Option<Secret>> = HashMap::new();
        if let Some(path) = &general.auth_file {
            let text = read_file(path, "general.auth_file")?;
            let entries = userlist::parse(&text)
                .map_err(|e| format!("general.auth_file: {}: {e}", path.display()))?;
            // A user listed twice gets the last line's secret, as in PgBouncer.
            for e in entries {
                from_file.insert(e.user, e.secret);
            }
        }
        let hba = match (general.auth_type, &general.auth_hba_file) {
            (AuthType::Hba, Some(path)) => {
                let text = read_file(path, "general.auth_hba_file")?;
                let rules = HbaRules::parse(&text)
                    .map_err(|e| format!("general.auth_hba_file: {}: {e}", path.display()))?;
                Some(Arc::new(rules))
            }
            _ => None,
        };
        let mut users = HashMap::new();
        for (name, user) in &config.users {
            let parse = |s: &Option<String>, key: &str| -> Result<Option<Secret>, String> {
                s.as_deref()
                    .map(Secret::parse)
                    .transpose()
                    .map_err(|e| format!("users.{name}.{key}: {e}"))
            };
            // [users.NAME] wins for its password; without one, auth_file's applies.
            let listed = from_file.remove(name).flatten();
            let secret = parse(&user.password, "password")?.or(listed);
            let server_secret = parse(&user.server_password, "server_password")?;
            users.insert(
                name.clone(),
                Arc::new(UserAuth::new(user.clone(), secret, server_secret)),
            );
        }
        for (name, secret) in from_file {
            let auth = UserAuth::new(default_user(&name), secret, None);
            users.insert(name, Arc::new(auth));
        }
        Ok(Loaded { config, users, hba })
    }
}

/// Reads a file a key names; the error names the key and the file.
fn read_file(path: &std::path::Path, key: &str) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|e| format!("{key}: cannot read {}: {e}", path.display()))
}

/// (pool, user, shard index, server index): one server's pool for one user.
type PoolKey = (String, String, usize, usize);

/// Everything the arbiters share. Reached through an `Arc`, read at login, never locked on
/// the per-transaction path.
pub struct Shared {
    loaded: RwLock<Arc<Loaded>>,
    /// TLS toward clients and servers; RELOAD swaps it (new connections only).
    pub tls: ArcSwap<TlsConfigs>,
    pub log: Logger,
    pub cancels: Arc<CancelRegistry>,
    pub clients: AtomicUsize,
    pub shutting_down: AtomicBool,
    pub workers: usize,
    pools: Mutex<HashMap<PoolKey, Arc<PoolGlobal>>>,
    servers: Mutex<HashMap<(String, u16), Arc<ServerState>>>,
    /// The actor that owns bans and detected roles (set once the System runs).
    pub balancer: OnceLock<Addr<BalancerActor>>,
    /// The actor that checks servers (set once the System runs).
    pub health: OnceLock<Addr<HealthCheckActor>>,
    /// Every worker thread (arbiter), for running work on each: admin snapshots, KILL,
    /// RELOAD (set once the System runs).
    pub worker_threads: OnceLock<Vec<WorkerHandle>>,
    /// PAUSE / RESUME.
    pub pause: PauseState,
    /// SHUTDOWN from the admin console (the signal loop listens).
    pub shutdown_request: tokio::sync::Notify,
    /// When the process started (for averages in SHOW STATS).
    pub started: std::time::Instant,
    /// The file the configuration came from (None: the embedded default), for RELOAD.
    pub config_path: Option<std::path::PathBuf>,
    /// Databases refused to new clients (DISABLE).
    pub disabled: Mutex<std::collections::HashSet<String>>,
    /// The last completed stats period: per database, (seconds, traffic in that period).
    pub stats_period: Mutex<
        Option<(
            f64,
            std::collections::BTreeMap<String, crate::snapshot::TrafficSnap>,
        )>,
    >,
    /// Settings changed with SET on the console, as `PGCORRAL_…` overrides (kept by RELOAD).
    pub overrides: Mutex<HashMap<String, String>>,
    db_counts: Mutex<HashMap<String, Arc<AtomicUsize>>>,
    user_counts: Mutex<HashMap<String, Arc<AtomicUsize>>>,
    salted: SaltedPasswordCache,
    /// SCRAM pass-through: the ClientKeys clients proved, by verifier.
    pub client_keys: ClientKeys,
    /// Secrets fetched with auth_query, cached per (pool, user).
    pub auth_query: AuthQuery,
    /// Named prepared statements by (query, parameter types), shared by all clients.
    pub statements: pgcorral::session::prepared::StatementRegistry,
}

impl Shared {
    pub fn new(
        loaded: Loaded,
        tls: TlsConfigs,
        log: Logger,
        config_path: Option<std::path::PathBuf>,
    ) -> Arc<Shared> {
        let workers = loaded.config.general.workers.max(1);
        Arc::new(Shared {
            loaded: RwLock::new(Arc::new(loaded)),
            tls: ArcSwap::from_pointee(tls),
            log,
            cancels: Arc::new(CancelRegistry::default()),
            clients: AtomicUsize::new(0),
            shutting_down: AtomicBool::new(false),
            workers,
            pools: Mutex::new(HashMap::new()),
            servers: Mutex::new(HashMap::new()),
            balancer: OnceLock::new(),
            health: OnceLock::new(),
            worker_threads: OnceLock::new(),
            pause: PauseState::default(),
            shutdown_request: tokio::sync::Notify::new(),
            started: std::time::Instant::now(),
            config_path,
            disabled: Mutex::new(Default::default()),
            stats_period: Mutex::new(None),
            overrides: Mutex::new(HashMap::new()),
            db_counts: Mutex::new(HashMap::new()),
            user_counts: Mutex::new(HashMap::new()),
            salted: SaltedPasswordCache::new(),
            client_keys: ClientKeys::new(),
            auth_query: AuthQuery::default(),
            statements: Default::default(),
        })
    }

    pub fn loaded(&self) -> Arc<Loaded> {
        self.loaded
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub fn general(&self) -> General {
        self.loaded().config.general.clone()
    }

    pub fn max_message_size(&self) -> usize {
        self.loaded().config.general.max_message_size
    }

    pub fn is_shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::Relaxed)
    }

    /// The process-wide half of the pool for (pool, `auth`'s user) toward server number
    /// `server` of shard number `shard`, created on first use.
    pub fn pool_global(
        self: &Arc<Self>,
        pool: &str,
        auth: &UserAuth,
        shard: usize,
        server: usize,
        worker: usize,
    ) -> Option<Arc<PoolGlobal>> {
        let user = auth.user.name.as_str();
        let key = (pool.to_owned(), user.to_owned(), shard, server);
        let mut pools = self.pools.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(p) = pools.get(&key) {
            return Some(p.clone());
        }
        let loaded = self.loaded();
        let cfg = loaded.config.pool(pool)?;
        let server_cfg = cfg.shards.get(shard)?.servers.get(server)?;
        let state = self.server_state(&server_cfg.host, server_cfg.port, server_cfg.role);
        let counter = |m: &Mutex<HashMap<String, Arc<AtomicUsize>>>, k: &str| {
            m.lock()
                .unwrap_or_else(|p| p.into_inner())
                .entry(k.to_owned())
                .or_default()
                .clone()
        };
        let global = Arc::new(PoolGlobal::new(
            cfg,
            &loaded.config,
            auth,
            shard,
            server,
            state.clone(),
            self.workers,
            worker,
            counter(&self.db_counts, &cfg.database),
            counter(&self.user_counts, user),
        ));
        pools.insert(key, global.clone());
        Some(global)
    }

    /// The credentials of `user` for pools of `pool`: configured, else what auth_query
    /// fetched last.
    pub fn user_auth(&self, pool: &str, user: &str) -> Option<Arc<UserAuth>> {
        if let Some(u) = self.loaded().users.get(user) {
            return Some(u.clone());
        }
        self.auth_query.latest(pool, user).map(|f| f.value)
    }

    /// auth_query fetched `auth` for a user of `pool`: the user's pools there log into servers
    /// with its secret from now on (a changed secret retires their open connections when they
    /// are released, as RELOAD does).
    pub fn update_fetched_user(&self, pool: &str, auth: &UserAuth) {
        let loaded = self.loaded();
        let user = &auth.user.name;
        let Some(cfg) = loaded.config.pool(pool) else {
            return;
        };
        if loaded.users.contains_key(user) {
            return;
        }
        let pools = self.pools.lock().unwrap_or_else(|p| p.into_inner());
        for ((p, u, shard, server), global) in pools.iter() {
            if p == pool
                && u == user
                && cfg
                    .shards
                    .get(*shard)
                    .is_some_and(|s| *server < s.servers.len())
            {
                global.replace_settings(PoolSettings::new(
                    cfg,
                    &loaded.config,
                    auth,
                    *shard,
                    *server,
                ));
            }
        }
    }

    /// A server refused to log in as `user` for `pool` (or pgcorral had nothing to answer
    /// with): a secret auth_query fetched is outdated, so the next login fetches it again.
    pub fn server_refused_login(&self, pool: &str, user: &str) {
        if !self.loaded().users.contains_key(user) {
            self.auth_query.forget(pool, user);
        }
    }

    /// The shared state of the server at host:port.
    pub fn server_state(&self, host: &str, port: u16, role: ServerRole) -> Arc<ServerState> {
        self.servers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry((host.to_owned(), port))
            .or_insert_with(|| Arc::new(ServerState::new(host, port, role)))
            .clone()
    }

    /// Installs a reloaded configuration. `settings_for` gives each existing pool its new
    /// settings, or None when the pool must be retired (gone, or its servers changed).
    /// Returns the (pool, user) pairs retired.
    pub fn apply(
        &self,
        loaded: Loaded,
        settings_for: impl Fn(&PoolGlobal, &str, &str, usize, usize, &Loaded) -> Option<PoolSettings>,
    ) -> Vec<(String, String)> {
        let mut retired = Vec::new();
        {
            let mut pools = self.pools.lock().unwrap_or_else(|p| p.into_inner());
            pools.retain(|(pool, user, shard, server), global| {
                match settings_for(global, pool, user, *shard, *server, &loaded) {
                    Some(new) => {
                        global.replace_settings(new);
                        true
                    }
                    None => {
                        global.retired.store(true, Ordering::Release);
                        retired.push((pool.clone(), user.clone()));
                        false
                    }
                }
            });
        }
        retired.sort();
        retired.dedup();
        *self.loaded.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(loaded);
        retired
    }

    /// RECONNECT: every open connection of the pools of `database` (or all) closes when it
    /// is next released. Returns how many pools it touched.
    pub fn reconnect(&self, database: Option<&str>) -> usize {
        let pools = self.pools.lock().unwrap_or_else(|p| p.into_inner());
        let mut n = 0;
        for g in pools.values() {
            if database.is_none_or(|d| d == g.settings().name) {
                g.generation.fetch_add(1, Ordering::AcqRel);
                n += 1;
            }
        }
        n
    }

    pub fn is_disabled(&self, database: &str) -> bool {
        self.disabled
            .lock()
            .map(|d| d.contains(database))
            .unwrap_or(false)
    }

    /// Every server known to a pool in use.
    pub fn server_states(&self) -> Vec<Arc<ServerState>> {
        self.servers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect()
    }

    /// (database, user, server) for every server of every pool in use.
    pub fn servers_by_pool(&self) -> Vec<(String, String, Arc<ServerState>)> {
        let pools = self.pools.lock().unwrap_or_else(|p| p.into_inner());
        let mut out: Vec<_> = pools
            .values()
            .map(|g| {
                (
                    g.settings().name.clone(),
                    g.settings().user.clone(),
                    g.server.clone(),
                )
            })
            .collect();
        out.sort_by(|a, b| (&a.0, &a.1, a.2.port).cmp(&(&b.0, &b.1, b.2.port)));
        out
    }

    /// Open server connections per server-side database name.
    pub fn open_by_database(&self) -> HashMap<String, usize> {
        let pools = self.pools.lock().unwrap_or_else(|p| p.into_inner());
        let mut out = HashMap::new();
        for g in pools.values() {
            *out.entry(g.settings().target.database.clone()).or_default() += g.open_count();
        }
        out
    }

    /// Open server connections per server (host, port), all pools and users.
    pub fn open_by_server(&self) -> HashMap<(String, u16), usize> {
        let pools = self.pools.lock().unwrap_or_else(|p| p.into_inner());
        let mut out = HashMap::new();
        for g in pools.values() {
            *out.entry((g.server.host.clone(), g.server.port))
                .or_default() += g.open_count();
        }
        out
    }

    /// Asks the BalancerActor to ban `server` (off the per-transaction path: only failures ban).
    pub fn ban(&self, server: &Arc<ServerState>, reason: BanReason, ban_time: Duration) {
        if let Some(b) = self.balancer.get() {
            b.do_send(BanServer {
                server: server.clone(),
                reason,
                ban_time,
            });
        }
    }

    /// PBKDF2 for logging into a server with SCRAM: cached per (password, salt, iterations),
    /// computed on tokio's blocking pool on a miss so the arbiter thread never stalls.
    pub async fn salted_password(
        &self,
        password: String,
        salt: Vec<u8>,
        iterations: u32,
    ) -> [u8; 32] {
        if let Some(s) = self.salted.get(&password, &salt, iterations) {
            return s;
        }
        let (p, s) = (password.clone(), salt.clone());
        let salted =
            match tokio::task::spawn_blocking(move || salted_password(&p, &s, iterations)).await {
                Ok(v) => v,
                Err(_) => salted_password(&password, &salt, iterations),
            };
        self.salted.insert(&password, &salt, iterations, salted);
        salted
    }
}

/// Which databases are paused: new transactions there wait until RESUME.
#[derive(Debug, Default)]
pub struct PauseState {
    /// Anything paused at all (the one load the transaction path pays).
    any: AtomicBool,
    all: AtomicBool,
    databases: Mutex<std::collections::HashSet<String>>,
}

impl PauseState {
    /// Whether new transactions for `database` must wait.
    pub fn is_paused(&self, database: &str) -> bool {
        if !self.any.load(Ordering::Acquire) {
            return false;
        }
        self.all.load(Ordering::Acquire)
            || self
                .databases
                .lock()
                .map(|d| d.contains(database))
                .unwrap_or(false)
    }

    pub fn pause(&self, database: Option<&str>) {
        match database {
            None => self.all.store(true, Ordering::Release),
            Some(db) => {
                if let Ok(mut d) = self.databases.lock() {
                    d.insert(db.to_owned());
                }
            }
        }
        self.any.store(true, Ordering::Release);
    }

    pub fn resume(&self, database: Option<&str>) {
        let mut d = self.databases.lock().unwrap_or_else(|p| p.into_inner());
        match database {
            None => {
                self.all.store(false, Ordering::Release);
                d.clear();
            }
            Some(db) => {
                d.remove(db);
            }
        }
        let still = self.all.load(Ordering::Acquire) || !d.is_empty();
        self.any.store(still, Ordering::Release);
    }

    /// "paused" state for SHOW STATE.
    pub fn all_paused(&self) -> bool {
        self.all.load(Ordering::Acquire)
    }
}
