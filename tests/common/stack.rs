//! A PostgreSQL cluster with pgcorral in front of it, from a generated config.

use super::pg::{PgCluster, PgOptions};
use super::pooler::Pooler;

/// The pgcorral binary under test: cargo's for integration tests; for examples (which cargo
/// gives no binary path) the `pgcorral` next to the example's own target directory.
pub fn bin() -> String {
    if let Some(b) = option_env!("CARGO_BIN_EXE_pgcorral") {
        return b.to_owned();
    }
    let exe = std::env::current_exe().expect("current_exe");
    // target/<profile>/examples/<name> -> target/<profile>/pgcorral
    let profile_dir = exe.parent().and_then(|p| p.parent()).expect("target dir");
    profile_dir.join("pgcorral").display().to_string()
}

/// What to put in the generated config besides the listen address and the one pool.
#[derive(Debug, Clone)]
pub struct StackConfig {
    /// Extra lines in `[general]` (default: `auth_type = "trust"`).
    pub general: String,
    /// `[users.*]` tables (default: a `postgres` user without password).
    pub users: String,
    /// Extra lines in `[pools.postgres]`.
    pub pool: String,
    pub pg: PgOptions,
}

impl Default for StackConfig {
    fn default() -> Self {
        StackConfig {
            general: "auth_type = \"trust\"".into(),
            users: "[users.postgres]\n".into(),
            pool: String::new(),
            pg: PgOptions::default(),
        }
    }
}

/// A running PostgreSQL and a running pgcorral in front of it (pool `postgres`).
pub struct Stack {
    pub pooler: Pooler,
    pub pg: PgCluster,
    pub port: u16,
}

/// The config text for a pooler on `listen` in front of the server on `pg_port`.
pub fn config_text(listen: u16, pg_port: u16, c: &StackConfig) -> String {
    format!(
        "[general]\nlisten = \"127.0.0.1:{listen}\"\nworkers = 2\nlog_level = \"debug\"\n{}\n\n{}\n\n\
         [pools.postgres]\nservers = [{{ host = \"127.0.0.1\", port = {pg_port}, role = \"primary\" }}]\n{}\n",
        c.general, c.users, c.pool
    )
}

impl Stack {
    pub fn start() -> Stack {
        Stack::start_with(StackConfig::default())
    }

    pub fn start_with(c: StackConfig) -> Stack {
        let pg = PgCluster::start_with(c.pg.clone());
        let port = Pooler::free_port();
        let pooler = Pooler::start(&bin(), &config_text(port, pg.port, &c));
        Stack { pooler, pg, port }
    }

    /// Server connections the pooler holds to the `postgres` database as `user`.
    pub fn server_connections(&self, user: &str) -> i64 {
        self.pg.backend_count("postgres", user)
    }
}

/// Builds the pgcorral binary with the same profile as the running example (`cargo run
/// --example` builds only the example); a no-op when it is up to date.
pub fn build_pgcorral() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = std::process::Command::new(cargo);
    cmd.args(["build", "--quiet", "--bin", "pgcorral"]);
    if !cfg!(debug_assertions) {
        cmd.arg("--release");
    }
    let built = cmd
        .status()
        .expect("run cargo to build the pgcorral binary");
    assert!(built.success(), "building pgcorral failed");
}
