//! Stored user secrets: a plain-text password, PostgreSQL's `md5...` hash, or a
//! SCRAM-SHA-256 verifier, parsed from the forms PostgreSQL and `pg_authid` use.

use std::fmt;

use rand::rngs::OsRng;
use rand::RngCore;
use subtle::ConstantTimeEq;

use super::scram::keys::{self, Key};
use super::scram::message::{decode_base64, decode_key, encode_base64, parse_iterations};
use crate::auth::AuthError;

/// Prefix of PostgreSQL's text form of a SCRAM-SHA-256 verifier.
const SCRAM_PREFIX: &str = "SCRAM-SHA-256$";

/// The shape of PostgreSQL's SCRAM-SHA-256 verifier, for error messages.
const SCRAM_FORM: &str =
    "SCRAM-SHA-256$<iterations>:<base64 salt>$<base64 StoredKey>:<base64 ServerKey>";

/// Iteration count used by [`ScramVerifier::generate`] (PostgreSQL's default `scram_iterations`).
pub const DEFAULT_ITERATIONS: u32 = 4096;

/// Salt length used by [`ScramVerifier::generate`] (PostgreSQL's default).
pub const DEFAULT_SALT_LEN: usize = 16;

/// A user's stored secret.
///
/// `Debug` never shows the secret itself.
#[derive(Clone)]
pub enum Secret {
    /// The plain-text password.
    Plain(String),
    /// PostgreSQL's MD5 hash: the 32 lowercase hex digits after the `md5` prefix,
    /// i.e. `hex(md5(password ++ user))`.
    Md5(String),
    /// A SCRAM-SHA-256 verifier.
    Scram(ScramVerifier),
}

impl Secret {
    /// Classifies a stored password the way PostgreSQL does:
    ///
    /// * `md5` followed by exactly 32 lowercase hex digits is an MD5 hash (anything else that
    ///   merely starts with `md5`, including uppercase hex, is a plain-text password, as in
    ///   PostgreSQL);
    /// * text starting with `SCRAM-SHA-256$` must be a valid verifier, otherwise this is an
    ///   error (treating a broken verifier as a plain password would hide the mistake);
    /// * anything else is a plain-text password.
    pub fn parse(s: &str) -> Result<Secret, AuthError> {
        if let Some(hex) = s.strip_prefix("md5") {
            if is_md5_hex(hex) {
                return Ok(Secret::Md5(hex.to_owned()));
            }
        }
        if s.starts_with(SCRAM_PREFIX) {
            return ScramVerifier::parse(s).map(Secret::Scram);
        }
        Ok(Secret::Plain(s.to_owned()))
    }

    /// Whether two secrets are the same, compared in constant time (the kind and, for a
    /// plaintext password, the length are not hidden).
    pub fn same_as(&self, other: &Secret) -> bool {
        match (self, other) {
            (Secret::Plain(a), Secret::Plain(b)) | (Secret::Md5(a), Secret::Md5(b)) => {
                a.as_bytes().ct_eq(b.as_bytes()).into()
            }
            (Secret::Scram(a), Secret::Scram(b)) => a == b,
            _ => false,
        }
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self {
            Secret::Plain(_) => "Plain",
            Secret::Md5(_) => "Md5",
            Secret::Scram(_) => "Scram",
        };
        write!(f, "Secret::{kind}(<redacted>)")
    }
}

/// `true` for exactly 32 lowercase hex digits, the part of an MD5 secret after `md5`.
pub(crate) fn is_md5_hex(hex: &str) -> bool {
    hex.len() == 32 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// A SCRAM-SHA-256 verifier as PostgreSQL stores it: enough to check a client's proof and to
/// prove the server's identity, but not enough to log in anywhere by itself.
///
/// Equality compares the keys in constant time (the salt and iteration count are public);
/// `Debug` never shows the keys.
#[derive(Clone)]
pub struct ScramVerifier {
    /// PBKDF2 iteration count.
    pub iterations: u32,
    /// PBKDF2 salt.
    pub salt: Vec<u8>,
    /// `H(ClientKey)`.
    pub stored_key: [u8; 32],
    /// `HMAC(SaltedPassword, "Server Key")`.
    pub server_key: [u8; 32],
}

impl ScramVerifier {
    /// Parses PostgreSQL's text form
    /// `SCRAM-SHA-256$<iterations>:<base64 salt>$<base64 StoredKey>:<base64 ServerKey>`.
    ///
    /// Error messages never quote the verifier's keys.
    pub fn parse(s: &str) -> Result<Self, AuthError> {
        let shape = || AuthError::Malformed(format!("SCRAM verifier must look like {SCRAM_FORM}"));
        let rest = s.strip_prefix(SCRAM_PREFIX).ok_or_else(shape)?;
        let (params, keys) = rest.split_once('$').ok_or_else(shape)?;
        let (iterations, salt) = params.split_once(':').ok_or_else(shape)?;
        let (stored_key, server_key) = keys.split_once(':').ok_or_else(shape)?;

        let iterations = parse_iterations(iterations, "SCRAM verifier iteration count")?;
        let salt = decode_base64(salt, "SCRAM verifier salt")?;
        if salt.is_empty() {
            return Err(AuthError::Malformed("SCRAM verifier salt is empty".into()));
        }
        Ok(ScramVerifier {
            iterations,
            salt,
            stored_key: decode_key(stored_key, "SCRAM verifier StoredKey")?,
            server_key: decode_key(server_key, "SCRAM verifier ServerKey")?,
        })
    }

    /// Derives the verifier for `password` with PBKDF2 (expensive: cost grows with
    /// `iterations`; the caller decides where to run it).
    ///
    /// The password bytes are used as they are: no SASLprep normalization beyond what
    /// PostgreSQL does for ASCII passwords (none), see [`super::scram::salted_password`].
    pub fn from_password(password: &str, salt: &[u8], iterations: u32) -> Self {
        let salted: Key = keys::salted_password(password, salt, iterations);
        ScramVerifier {
            iterations,
            salt: salt.to_vec(),
            stored_key: keys::stored_key(&keys::client_key(&salted)),
            server_key: keys::server_key(&salted),
        }
    }

    /// A new verifier for `password` with a random [`DEFAULT_SALT_LEN`]-byte salt and
    /// [`DEFAULT_ITERATIONS`] iterations, as PostgreSQL's defaults produce.
    pub fn generate(password: &str) -> Self {
        let mut salt = [0u8; DEFAULT_SALT_LEN];
        OsRng.fill_bytes(&mut salt);
        Self::from_password(password, &salt, DEFAULT_ITERATIONS)
    }
}

impl PartialEq for ScramVerifier {
    fn eq(&self, other: &Self) -> bool {
        let keys =
            self.stored_key.ct_eq(&other.stored_key) & self.server_key.ct_eq(&other.server_key);
        self.iterations == other.iterations && self.salt == other.salt && bool::from(keys)
    }
}

impl Eq for ScramVerifier {}

impl fmt::Debug for ScramVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScramVerifier")
            .field("iterations", &self.iterations)
            .field("salt_len", &self.salt.len())
            .finish_non_exhaustive()
    }
}

impl fmt::Display for ScramVerifier {
    /// PostgreSQL's text form, as accepted by [`ScramVerifier::parse`] and `ALTER ROLE ... PASSWORD`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{SCRAM_PREFIX}{}:{}${}:{}",
            self.iterations,
            encode_base64(&self.salt),
            encode_base64(&self.stored_key),
            encode_base64(&self.server_key)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Taken from a `pg_dumpall` of a PostgreSQL 13 server whose `postgres` role has the
    /// password "postgres" (checked independently with Python's hashlib/hmac).
    const PG_VERIFIER_POSTGRES: &str = "SCRAM-SHA-256$4096:lWa+BG+NdQ8/r1x99Fr6hQ==$\
        Ev3Se2IUwbgr5p0vP1GVgtuuTWenipJBUiecmTFIonQ=:V8NnRU4nkJaeoXbiXffEfH5sFTUMtW5bBjYWctqxSCI=";

    #[test]
    fn parse_classifies_secrets() {
        assert!(matches!(
            Secret::parse("md53175bce1d3201d16594cebf9d7eb3f9d").unwrap(),
            Secret::Md5(h) if h == "3175bce1d3201d16594cebf9d7eb3f9d"
        ));
        // PostgreSQL only recognizes lowercase hex of the right length; the rest is plain text.
        for plain in [
            "md53175BCE1D3201D16594CEBF9D7EB3F9D",
            "md53175bce1d3201d16594cebf9d7eb3f9",
            "md53175bce1d3201d16594cebf9d7eb3f9d0",
            "md5",
            "hunter2",
            "",
            "SCRAM-SHA-256",
        ] {
            assert!(
                matches!(Secret::parse(plain).unwrap(), Secret::Plain(p) if p == plain),
                "{plain:?}"
            );
        }
        assert!(matches!(
            Secret::parse(PG_VERIFIER_POSTGRES).unwrap(),
            Secret::Scram(v) if v.iterations == 4096
        ));
        assert!(matches!(
            Secret::parse("SCRAM-SHA-256$4096:broken"),
            Err(AuthError::Malformed(_))
        ));
    }

    #[test]
    fn same_as_compares_kind_and_content() {
        let v = Secret::parse(PG_VERIFIER_POSTGRES).unwrap();
        let other = Secret::Scram(ScramVerifier::generate("postgres"));
        let md5 = Secret::parse("md53175bce1d3201d16594cebf9d7eb3f9d").unwrap();
        let plain = Secret::Plain("md5".into());
        assert!(v.same_as(&v.clone()));
        assert!(!v.same_as(&other));
        assert!(md5.same_as(&md5.clone()));
        assert!(!md5.same_as(&Secret::Md5("3175bce1d3201d16594cebf9d7eb3f9e".into())));
        assert!(plain.same_as(&Secret::Plain("md5".into())));
        assert!(!plain.same_as(&Secret::Plain("md6".into())));
        assert!(!plain.same_as(&md5));
        assert!(!md5.same_as(&v));
    }

    #[test]
    fn verifier_equality_and_debug() {
        let v = ScramVerifier::parse(PG_VERIFIER_POSTGRES).unwrap();
        let mut other = v.clone();
        assert_eq!(v, other);
        other.server_key[31] ^= 1;
        assert_ne!(v, other);
        let mut other = v.clone();
        other.iterations += 1;
        assert_ne!(v, other);
        let shown = format!("{v:?}");
        assert_eq!(
            shown,
            "ScramVerifier { iterations: 4096, salt_len: 16, .. }"
        );
    }

    #[test]
    fn debug_does_not_print_secrets() {
        let plain = Secret::Plain("hunter2".into());
        assert_eq!(format!("{plain:?}"), "Secret::Plain(<redacted>)");
        let md5 = Secret::parse("md53175bce1d3201d16594cebf9d7eb3f9d").unwrap();
        assert_eq!(format!("{md5:?}"), "Secret::Md5(<redacted>)");
        let scram = Secret::parse(PG_VERIFIER_POSTGRES).unwrap();
        let shown = format!("{scram:?}");
        assert_eq!(shown, "Secret::Scram(<redacted>)");
    }

    #[test]
    fn verifier_parse_display_round_trip() {
        let v = ScramVerifier::parse(PG_VERIFIER_POSTGRES).unwrap();
        assert_eq!(v.salt.len(), 16);
        assert_eq!(v.to_string(), PG_VERIFIER_POSTGRES);
        assert_eq!(ScramVerifier::parse(&v.to_string()).unwrap(), v);
    }

    #[test]
    fn from_password_matches_postgresql() {
        let pg = ScramVerifier::parse(PG_VERIFIER_POSTGRES).unwrap();
        let ours = ScramVerifier::from_password("postgres", &pg.salt, 4096);
        assert_eq!(ours, pg);
        assert_eq!(ours.to_string(), PG_VERIFIER_POSTGRES);
        assert_ne!(ScramVerifier::from_password("postgreS", &pg.salt, 4096), pg);
    }

    #[test]
    fn from_password_matches_rfc7677_keys() {
        // RFC 7677's user "user" / password "pencil"; keys checked independently with Python.
        let salt = decode_base64("W22ZaJ0SNY7soEsUEjb6gQ==", "salt").unwrap();
        let v = ScramVerifier::from_password("pencil", &salt, 4096);
        assert_eq!(
            v.to_string(),
            "SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$\
             WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU="
        );
    }

    #[test]
    fn generate_uses_postgresql_defaults_and_random_salt() {
        let a = ScramVerifier::generate("pw");
        let b = ScramVerifier::generate("pw");
        assert_eq!(a.iterations, DEFAULT_ITERATIONS);
        assert_eq!(a.salt.len(), DEFAULT_SALT_LEN);
        assert_ne!(a.salt, b.salt);
        assert_eq!(ScramVerifier::from_password("pw", &a.salt, a.iterations), a);
    }

    #[test]
    fn malformed_verifiers_are_errors() {
        let key = encode_base64(&[1u8; 32]);
        let short = encode_base64(&[1u8; 31]);
        let cases = [
            "SCRAM-SHA-256$".to_owned(),
            "SCRAM-SHA-256$4096".to_owned(),
            "SCRAM-SHA-256$4096:c2FsdA==".to_owned(),
            format!("SCRAM-SHA-256$4096:c2FsdA==${key}"),
            format!("SCRAM-SHA-256$0:c2FsdA==${key}:{key}"),
            format!("SCRAM-SHA-256$-1:c2FsdA==${key}:{key}"),
            format!("SCRAM-SHA-256$x:c2FsdA==${key}:{key}"),
            format!("SCRAM-SHA-256$99999999999:c2FsdA==${key}:{key}"),
            format!("SCRAM-SHA-256$4096:${key}:{key}"),
            format!("SCRAM-SHA-256$4096:c2FsdA=${key}:{key}"),
            format!("SCRAM-SHA-256$4096:c2FsdA==${short}:{key}"),
            format!("SCRAM-SHA-256$4096:c2FsdA==${key}:{short}"),
            format!("SCRAM-SHA-256$4096:c2FsdA==${key}:{key}$extra"),
            format!("SCRAM-SHA-256$4096:c2FsdA==${key}:{key}:extra"),
            format!("scram-sha-256$4096:c2FsdA==${key}:{key}"),
        ];
        for case in &cases {
            assert!(
                matches!(ScramVerifier::parse(case), Err(AuthError::Malformed(_))),
                "{case:?}"
            );
        }
    }

    #[test]
    fn verifier_errors_do_not_quote_keys() {
        let err = ScramVerifier::parse("SCRAM-SHA-256$4096:c2FsdA==$c2VjcmV0c2VjcmV0:c2VjcmV0")
            .unwrap_err()
            .to_string();
        assert!(!err.contains("c2VjcmV0"), "{err}");
    }
}
