//! The `password` method: a client sends its password in clear text (after
//! `AuthenticationCleartextPassword`), and it is checked against the stored secret the way
//! PostgreSQL checks it: compared with a plaintext secret, hashed for an MD5 secret, or run
//! through PBKDF2 with a SCRAM verifier's salt and iteration count.

use subtle::ConstantTimeEq;

use super::md5::md5_secret;
use super::scram::keys;
use crate::auth::{AuthError, ScramVerifier, Secret};

/// Checks a clear-text `password` of `user` against `secret`, in constant time.
///
/// For a SCRAM verifier this runs PBKDF2 (milliseconds: run it off the event loop) and, on
/// success, returns the ClientKey the password gives, which logs into servers holding the
/// same verifier (pass-through). For other secrets it is cheap and returns `None`.
pub fn verify_password(
    user: &str,
    secret: &Secret,
    password: &str,
) -> Result<Option<[u8; 32]>, AuthError> {
    let ok = match secret {
        // Digests of both, so the comparison does not even reveal the length.
        Secret::Plain(stored) => keys::sha256(stored.as_bytes())
            .ct_eq(&keys::sha256(password.as_bytes()))
            .into(),
        Secret::Md5(hex) => {
            let given = md5_secret(user, password);
            let stored = format!("md5{}", hex.to_ascii_lowercase());
            given.as_bytes().ct_eq(stored.as_bytes()).into()
        }
        Secret::Scram(verifier) => {
            return scram_client_key(verifier, password).map(Some);
        }
    };
    if ok {
        Ok(None)
    } else {
        Err(AuthError::PasswordMismatch)
    }
}

/// The ClientKey of `password` for `verifier` (PBKDF2 with the verifier's salt and
/// iterations), if the password is the verifier's.
fn scram_client_key(verifier: &ScramVerifier, password: &str) -> Result<[u8; 32], AuthError> {
    let salted = keys::salted_password(password, &verifier.salt, verifier.iterations);
    let client_key = keys::client_key(&salted);
    let fits: bool = keys::stored_key(&client_key)
        .ct_eq(&verifier.stored_key)
        .into();
    if fits {
        Ok(client_key)
    } else {
        Err(AuthError::PasswordMismatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::ClientKeys;

    #[test]
    fn every_secret_form() {
        let plain = Secret::Plain("s3cret".into());
        let md5 = Secret::parse(&md5_secret("alice", "s3cret")).unwrap();
        let scram = Secret::Scram(ScramVerifier::from_password("s3cret", b"salt", 8));
        for secret in [&plain, &md5, &scram] {
            assert!(
                verify_password("alice", secret, "s3cret").is_ok(),
                "{secret:?}"
            );
            for wrong in ["S3cret", "s3cret ", "", "s3cre"] {
                assert!(
                    matches!(
                        verify_password("alice", secret, wrong),
                        Err(AuthError::PasswordMismatch)
                    ),
                    "{secret:?} {wrong:?}"
                );
            }
        }
        // The MD5 hash contains the user name.
        assert!(verify_password("bob", &md5, "s3cret").is_err());
        assert!(verify_password("bob", &plain, "s3cret").is_ok());
    }

    #[test]
    fn a_scram_password_gives_the_client_key() {
        let verifier = ScramVerifier::from_password("s3cret", b"salt", 8);
        let key = verify_password("alice", &Secret::Scram(verifier.clone()), "s3cret")
            .unwrap()
            .unwrap();
        assert!(ClientKeys::new().learn(&verifier, key));
        assert_eq!(
            verify_password("alice", &Secret::Plain("x".into()), "x").unwrap(),
            None
        );
    }
}
