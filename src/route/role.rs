//! Server roles as clients ask for them.

use std::fmt;

/// What a client asked for with `SET SERVER ROLE TO '…'` (or the pool's `default_role`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoleSetting {
    Primary,
    Replica,
    Any,
    /// Let the query parser decide (reads to replicas, writes to the primary).
    Auto,
}

impl RoleSetting {
    pub fn parse(s: &str) -> Option<RoleSetting> {
        match s.to_ascii_lowercase().as_str() {
            "primary" => Some(RoleSetting::Primary),
            "replica" => Some(RoleSetting::Replica),
            "any" => Some(RoleSetting::Any),
            "auto" => Some(RoleSetting::Auto),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            RoleSetting::Primary => "primary",
            RoleSetting::Replica => "replica",
            RoleSetting::Any => "any",
            RoleSetting::Auto => "auto",
        }
    }
}

impl fmt::Display for RoleSetting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which servers a transaction may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Want {
    /// The primary only (writes). Never refused because of a ban: waits for a primary.
    Primary,
    /// Replicas only.
    Replica,
    /// Any server that is up.
    Any,
    /// Replicas, or the primary when every replica is banned (reads under read_write_split).
    ReplicaPreferred,
}

impl Want {
    pub fn as_str(self) -> &'static str {
        match self {
            Want::Primary => "primary",
            Want::Replica => "replica",
            Want::Any => "any",
            Want::ReplicaPreferred => "replica (or primary)",
        }
    }
}
