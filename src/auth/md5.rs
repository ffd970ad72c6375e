//! PostgreSQL's MD5 password authentication: the stored `md5...` form and the salted
//! challenge response of `AuthenticationMD5Password`.

use ::md5::{Digest, Md5};
use subtle::ConstantTimeEq;

use super::secret::{is_md5_hex, Secret};
use crate::auth::AuthError;

/// Lowercase hex of `md5(data)`: 32 characters.
pub fn md5_hex(data: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let digest = Md5::digest(data);
    let mut out = String::with_capacity(32);
    for byte in digest {
        out.push(char::from(HEX[usize::from(byte >> 4)]));
        out.push(char::from(HEX[usize::from(byte & 0x0f)]));
    }
    out
}

/// PostgreSQL's stored MD5 form of a password: `"md5" + hex(md5(password ++ user))`.
pub fn md5_secret(user: &str, password: &str) -> String {
    format!("md5{}", password_hash_hex(user, password))
}

/// `hex(md5(password ++ user))`: the stored MD5 secret without its prefix.
fn password_hash_hex(user: &str, password: &str) -> String {
    let mut data = Vec::with_capacity(password.len() + user.len());
    data.extend_from_slice(password.as_bytes());
    data.extend_from_slice(user.as_bytes());
    md5_hex(&data)
}

/// What a client sends in its `PasswordMessage` (without the trailing NUL) to answer
/// `AuthenticationMD5Password` with `salt`:
/// `"md5" + hex(md5(hex(md5(password ++ user)) ++ salt))`.
///
/// Works from a plain-text password or a stored MD5 hash. A SCRAM verifier cannot produce it
/// ([`AuthError::Unsupported`]); PostgreSQL itself switches such users to SCRAM even where
/// `pg_hba.conf` says `md5`, and the caller should do the same.
pub fn md5_response(user: &str, secret: &Secret, salt: [u8; 4]) -> Result<String, AuthError> {
    let inner = match secret {
        Secret::Plain(password) => password_hash_hex(user, password),
        Secret::Md5(hex) => {
            let hex = hex.to_ascii_lowercase();
            if !is_md5_hex(&hex) {
                return Err(AuthError::Malformed(
                    "stored MD5 secret must be 32 hex digits after the \"md5\" prefix".into(),
                ));
            }
            hex
        }
        Secret::Scram(_) => {
            return Err(AuthError::Unsupported(
                "MD5 authentication needs the plain-text password or its md5 hash, but only a \
                 SCRAM-SHA-256 verifier is stored for this user; use SCRAM-SHA-256 \
                 authentication or store the password in another form"
                    .into(),
            ))
        }
    };
    let mut data = Vec::with_capacity(inner.len() + salt.len());
    data.extend_from_slice(inner.as_bytes());
    data.extend_from_slice(&salt);
    Ok(format!("md5{}", md5_hex(&data)))
}

/// Checks a client's MD5 response (the `PasswordMessage` text without the trailing NUL)
/// against the stored secret, in constant time.
///
/// Returns [`AuthError::PasswordMismatch`] when it does not match, and the errors of
/// [`md5_response`] when the secret cannot serve MD5 authentication.
pub fn md5_verify(
    user: &str,
    secret: &Secret,
    salt: [u8; 4],
    response: &str,
) -> Result<(), AuthError> {
    let expected = md5_response(user, secret, salt)?;
    // Lengths are public (always 35 for a well-formed response); the contents are compared
    // without early exit.
    if bool::from(expected.as_bytes().ct_eq(response.as_bytes())) {
        Ok(())
    } else {
        Err(AuthError::PasswordMismatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Independent formula: hex of an MD5 digest via `format!`, not via [`md5_hex`].
    fn hex_md5(parts: &[&[u8]]) -> String {
        let mut hasher = Md5::new();
        for part in parts {
            hasher.update(part);
        }
        hasher
            .finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    #[test]
    fn md5_hex_known_values() {
        // RFC 1321 test suite.
        assert_eq!(md5_hex(b""), "d41d8cd98f00b204e9800998ecf8427e");
        assert_eq!(md5_hex(b"abc"), "900150983cd24fb0d6963f7d28e17f72");
    }

    #[test]
    fn secret_for_postgres_postgres() {
        let secret = md5_secret("postgres", "postgres");
        // The well-known pg_authid value, also checked with Python's hashlib.
        assert_eq!(secret, "md53175bce1d3201d16594cebf9d7eb3f9d");
        assert_eq!(
            secret,
            format!("md5{}", hex_md5(&[b"postgres", b"postgres"]))
        );
    }

    #[test]
    fn response_from_plain_and_md5_secrets() {
        let salt = [0x01, 0x02, 0x03, 0x04];
        let inner = hex_md5(&[b"postgres", b"postgres"]);
        let expected = format!("md5{}", hex_md5(&[inner.as_bytes(), &salt]));
        // Also computed with Python's hashlib.
        assert_eq!(expected, "md568be9ed08db75f318087ab337aaea044");

        let plain = Secret::Plain("postgres".into());
        assert_eq!(md5_response("postgres", &plain, salt).unwrap(), expected);
        let hashed = Secret::parse(&md5_secret("postgres", "postgres")).unwrap();
        assert_eq!(md5_response("postgres", &hashed, salt).unwrap(), expected);
        let upper = Secret::Md5(inner.to_ascii_uppercase());
        assert_eq!(md5_response("postgres", &upper, salt).unwrap(), expected);

        let other_salt = [0xde, 0xad, 0xbe, 0xef];
        assert_eq!(
            md5_response("postgres", &plain, other_salt).unwrap(),
            "md58ee245854025535aedb7b15709315318"
        );
    }

    #[test]
    fn verify_accepts_right_and_rejects_wrong() {
        let salt = [9, 8, 7, 6];
        let secret = Secret::parse(&md5_secret("alice", "s3cret")).unwrap();
        let good = md5_response("alice", &Secret::Plain("s3cret".into()), salt).unwrap();
        assert!(md5_verify("alice", &secret, salt, &good).is_ok());

        let wrong_pw = md5_response("alice", &Secret::Plain("S3cret".into()), salt).unwrap();
        let wrong_salt = md5_response("alice", &Secret::Plain("s3cret".into()), [0; 4]).unwrap();
        for bad in [
            wrong_pw.as_str(),
            wrong_salt.as_str(),
            "",
            "md5",
            &good[..34],
            "x",
        ] {
            assert!(
                matches!(
                    md5_verify("alice", &secret, salt, bad),
                    Err(AuthError::PasswordMismatch)
                ),
                "{bad:?}"
            );
        }
        // The user name is part of the hash of a plain password (a stored MD5 hash already
        // contains it, so there the `user` argument does not matter).
        let plain = Secret::Plain("s3cret".into());
        assert!(md5_verify("alice", &plain, salt, &good).is_ok());
        assert!(matches!(
            md5_verify("bob", &plain, salt, &good),
            Err(AuthError::PasswordMismatch)
        ));
    }

    #[test]
    fn scram_and_broken_secrets_cannot_do_md5() {
        let scram = Secret::Scram(crate::auth::ScramVerifier {
            iterations: 1,
            salt: vec![1],
            stored_key: [0; 32],
            server_key: [0; 32],
        });
        assert!(matches!(
            md5_response("u", &scram, [0; 4]),
            Err(AuthError::Unsupported(_))
        ));
        assert!(matches!(
            md5_verify("u", &scram, [0; 4], "md5"),
            Err(AuthError::Unsupported(_))
        ));
        assert!(matches!(
            md5_response("u", &Secret::Md5("xyz".into()), [0; 4]),
            Err(AuthError::Malformed(_))
        ));
    }
}
