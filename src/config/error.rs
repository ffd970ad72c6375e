//! Errors: why a config did not load, and each problem found in it.

use std::fmt;
use std::path::PathBuf;

/// One thing wrong with a config: where it is (the key path) and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The key path, e.g. `pools.app.pool_size` or `pools.app.servers[0].port`.
    pub key: String,
    /// What is wrong and, where possible, how to fix it.
    pub reason: String,
}

impl Problem {
    /// A problem at `key`.
    pub fn new(key: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            reason: reason.into(),
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.key, self.reason)
    }
}

/// Why a config could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The config file could not be read.
    #[error("cannot read config file {}: {source}", path.display())]
    Read {
        /// The file that was asked for.
        path: PathBuf,
        /// What the operating system said.
        source: std::io::Error,
    },
    /// The text is not valid TOML; the message says where.
    #[error("config syntax error: {0}")]
    Parse(String),
    /// The config parsed but has problems; every one found is listed, one per line.
    #[error("{}", list(.0))]
    Invalid(Vec<Problem>),
}

impl ConfigError {
    /// The problems of an [`ConfigError::Invalid`] config; empty for the other kinds.
    pub fn problems(&self) -> &[Problem] {
        match self {
            Self::Invalid(problems) => problems,
            _ => &[],
        }
    }
}

fn list(problems: &[Problem]) -> String {
    problems
        .iter()
        .map(Problem::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

/// Collects problems while a config is checked, so all of them are reported at once.
#[derive(Debug, Default)]
pub(super) struct Problems(Vec<Problem>);

impl Problems {
    /// Records a problem at `key`.
    pub(super) fn push(&mut self, key: impl Into<String>, reason: impl Into<String>) {
        self.0.push(Problem::new(key, reason));
    }

    /// Whether a problem was already recorded at exactly `key`.
    pub(super) fn has(&self, key: &str) -> bool {
        self.0.iter().any(|p| p.key == key)
    }

    /// The problems, in the order they were found.
    pub(super) fn into_vec(self) -> Vec<Problem> {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_lists_one_problem_per_line() {
        let err = ConfigError::Invalid(vec![
            Problem::new("general.listen", "bad"),
            Problem::new("pools.app.pool_size", "worse"),
        ]);
        assert_eq!(
            err.to_string(),
            "general.listen: bad\npools.app.pool_size: worse"
        );
        assert_eq!(err.problems().len(), 2);
    }

    #[test]
    fn has_matches_exact_key() {
        let mut p = Problems::default();
        p.push("pools.app.servers[0]", "x");
        assert!(p.has("pools.app.servers[0]"));
        assert!(!p.has("pools.app.servers"));
        assert_eq!(p.into_vec().len(), 1);
    }
}
