//! SCRAM-SHA-256 (RFC 5802, RFC 7677) as PostgreSQL speaks it, for both sides of a pooler:
//! [`ScramServer`] checks applications, [`ScramClient`] logs into PostgreSQL.
//!
//! Channel binding is not implemented: only the mechanism [`MECHANISM`] is offered, never
//! `SCRAM-SHA-256-PLUS`. A client's gs2 header may be `n,,` or `y,,`; `p=...` is refused as
//! [`AuthError::Unsupported`](crate::auth::AuthError::Unsupported).
//!
//! The user name in `n=` is ignored by the server side, as PostgreSQL does (the user comes from
//! the startup message; libpq sends `n=`).

mod cache;
mod client;
pub(crate) mod keys;
pub(crate) mod message;
mod passthrough;
mod server;

#[cfg(test)]
mod rfc7677;

pub use cache::SaltedPasswordCache;
pub use client::{ScramClient, ServerFirst};
pub use keys::salted_password;
pub use passthrough::ClientKeys;
pub use server::ScramServer;

/// The SASL mechanism name offered in `AuthenticationSASL`.
pub const MECHANISM: &str = "SCRAM-SHA-256";

/// Highest iteration count the client side accepts from a server. Each iteration costs two
/// SHA-256 compressions, so a hostile server could otherwise pin a CPU for minutes.
pub const MAX_ITERATIONS: u32 = 10_000_000;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::{AuthError, ScramVerifier};

    /// Runs a full exchange between our client (knowing `password`) and our server (holding
    /// a verifier for `stored_password`), returning the server's `client_key()` on success.
    fn exchange(stored_password: &str, password: &str) -> Result<[u8; 32], AuthError> {
        let verifier = ScramVerifier::from_password(stored_password, b"some salt", 16);
        let mut server = ScramServer::new(verifier);
        let mut client = ScramClient::new();

        let server_first = server.client_first(&client.client_first())?;
        let params = client.server_first(&server_first)?;
        assert_eq!(params.iterations, 16);
        assert_eq!(params.salt, b"some salt");
        let salted = salted_password(password, &params.salt, params.iterations);
        let server_final = server.client_final(&client.client_final(&salted))?;
        client.server_final(&server_final)?;
        server
            .client_key()
            .ok_or_else(|| AuthError::OutOfOrder("no client key".into()))
    }

    #[test]
    fn client_and_server_agree_on_right_password() {
        let client_key = exchange("correct horse", "correct horse").unwrap();
        let salted = salted_password("correct horse", b"some salt", 16);
        assert_eq!(client_key, keys::client_key(&salted));
    }

    #[test]
    fn client_and_server_reject_wrong_password() {
        assert!(matches!(
            exchange("correct horse", "battery staple"),
            Err(AuthError::PasswordMismatch)
        ));
    }

    #[test]
    fn pooler_can_relay_a_client_key_to_a_server() {
        // An application authenticates to the pooler; the pooler then logs into PostgreSQL
        // with the recovered ClientKey and the verifier's ServerKey, never knowing the password.
        let verifier = ScramVerifier::from_password("pw", b"salty", 32);
        let client_key = {
            let mut pooler_side = ScramServer::new(verifier.clone());
            let mut app = ScramClient::new();
            let first = pooler_side.client_first(&app.client_first()).unwrap();
            let params = app.server_first(&first).unwrap();
            let salted = salted_password("pw", &params.salt, params.iterations);
            let fin = pooler_side
                .client_final(&app.client_final(&salted))
                .unwrap();
            app.server_final(&fin).unwrap();
            pooler_side.client_key().unwrap()
        };

        let mut postgres = ScramServer::new(verifier.clone());
        let mut pooler = ScramClient::new();
        let first = postgres.client_first(&pooler.client_first()).unwrap();
        pooler.server_first(&first).unwrap();
        let msg = pooler.client_final_with_client_key(&client_key, &verifier.server_key);
        let fin = postgres.client_final(&msg).unwrap();
        pooler.server_final(&fin).unwrap();
    }

    #[test]
    fn client_rejects_impostor_server() {
        // A server holding a verifier for another password cannot produce the right signature,
        // even if it skips checking the proof: simulate by letting a server with the right
        // StoredKey but wrong ServerKey answer.
        let mut verifier = ScramVerifier::from_password("pw", b"salt", 8);
        verifier.server_key = [0x42; 32];
        let mut server = ScramServer::new(verifier);
        let mut client = ScramClient::new();
        let first = server.client_first(&client.client_first()).unwrap();
        let params = client.server_first(&first).unwrap();
        let salted = salted_password("pw", &params.salt, params.iterations);
        let fin = server.client_final(&client.client_final(&salted)).unwrap();
        assert!(matches!(
            client.server_final(&fin),
            Err(AuthError::ServerSignatureMismatch)
        ));
    }

    /// Every truncation and many single-byte corruptions of valid messages: parsers return
    /// errors (or, rarely, succeed) but never panic.
    #[test]
    fn mangled_messages_never_panic() {
        use super::rfc7677 as rfc;
        let verifier = ScramVerifier::from_password("pw", b"salt", 2);
        let salted = salted_password("pw", b"salt", 2);
        let messages = [
            rfc::CLIENT_FIRST,
            rfc::SERVER_FIRST,
            rfc::CLIENT_FINAL,
            rfc::SERVER_FINAL,
        ];
        let mut variants: Vec<Vec<u8>> = Vec::new();
        for msg in messages {
            let bytes = msg.as_bytes();
            for cut in 0..=bytes.len() {
                variants.push(bytes[..cut].to_vec());
            }
            for i in 0..bytes.len() {
                for replacement in [b',', b'=', b'\0', 0xff, 0xc3, b' '] {
                    let mut mangled = bytes.to_vec();
                    mangled[i] = replacement;
                    variants.push(mangled);
                }
            }
        }
        for msg in &variants {
            let mut server = ScramServer::with_nonce(verifier.clone(), rfc::SERVER_NONCE);
            let _ = server.client_first(msg);
            let mut server = ScramServer::with_nonce(verifier.clone(), rfc::SERVER_NONCE);
            let _ = server.client_first(rfc::CLIENT_FIRST.as_bytes());
            let _ = server.client_final(msg);

            let mut client = ScramClient::with_nonce(rfc::CLIENT_NONCE).with_user(rfc::USER);
            let _ = client.server_first(msg);
            let mut client = ScramClient::with_nonce(rfc::CLIENT_NONCE).with_user(rfc::USER);
            let _ = client.server_first(rfc::SERVER_FIRST.as_bytes());
            let _ = client.client_final(&salted);
            let _ = client.server_final(msg);

            if let Ok(text) = std::str::from_utf8(msg) {
                let _ = crate::auth::Secret::parse(text);
                let _ = ScramVerifier::parse(text);
            }
        }
    }
}
