//! Client side of SCRAM-SHA-256: logs the pooler into a PostgreSQL server.

use std::fmt;

use subtle::ConstantTimeEq;

use super::keys::{self, Key};
use super::message::{
    check_nonce, decode_base64, decode_key, encode_base64, escape_saslname, expect_attribute,
    parse_iterations, random_nonce, shown, skip_extensions, utf8,
};
use super::MAX_ITERATIONS;
use crate::auth::{AuthError, ScramVerifier};

/// The gs2 header we send: no channel binding, no authorization identity.
const GS2_HEADER: &str = "n,,";

/// `c=` attribute of our client-final-message: base64 of [`GS2_HEADER`].
const CHANNEL_BINDING: &str = "biws";

/// Parameters from the server-first-message, needed to compute the salted password.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerFirst {
    /// PBKDF2 salt.
    pub salt: Vec<u8>,
    /// PBKDF2 iteration count, between 1 and [`MAX_ITERATIONS`].
    pub iterations: u32,
}

/// One SCRAM-SHA-256 login to a server.
///
/// Call, in order: [`client_first`](Self::client_first) (send it in `SASLInitialResponse`),
/// [`server_first`](Self::server_first) with the data of `AuthenticationSASLContinue`,
/// [`client_final`](Self::client_final) or
/// [`client_final_with_client_key`](Self::client_final_with_client_key) (send it in
/// `SASLResponse`), and [`server_final`](Self::server_final) with the data of
/// `AuthenticationSASLFinal`. Only when `server_final` succeeds has the server proven it
/// knows the verifier.
pub struct ScramClient {
    nonce: String,
    /// Already escaped for `n=`.
    user: String,
    /// Set by a successful `server_first`.
    exchange: Option<Exchange>,
    /// Set by `client_final*` after a successful `server_first`.
    expected_server_signature: Option<Key>,
}

struct Exchange {
    /// Client nonce followed by server nonce.
    nonce: String,
    server_first: String,
    /// The server's PBKDF2 salt and iteration count.
    salt: Vec<u8>,
    iterations: u32,
}

impl ScramClient {
    /// Starts a login with a fresh random client nonce and an empty user name (`n=`), as libpq
    /// does: PostgreSQL takes the user from the startup message.
    pub fn new() -> Self {
        Self::with_nonce(&random_nonce())
    }

    /// Starts a login with a fixed client nonce (for tests). The nonce must be printable ASCII
    /// without commas.
    pub fn with_nonce(client_nonce: &str) -> Self {
        ScramClient {
            nonce: client_nonce.to_owned(),
            user: String::new(),
            exchange: None,
            expected_server_signature: None,
        }
    }

    /// Sends `user` in `n=` instead of an empty name (escaped as RFC 5802 requires). PostgreSQL
    /// ignores it; it is here for other SCRAM servers and for the RFC test vectors.
    pub fn with_user(mut self, user: &str) -> Self {
        self.user = escape_saslname(user);
        self
    }

    /// The client-first-message `n,,n=,r=<nonce>`.
    pub fn client_first(&self) -> Vec<u8> {
        format!("{GS2_HEADER}{}", self.client_first_bare()).into_bytes()
    }

    fn client_first_bare(&self) -> String {
        format!("n={},r={}", self.user, self.nonce)
    }

    /// Parses the server-first-message `r=<nonce>,s=<salt>,i=<iterations>`.
    ///
    /// The server's nonce must extend ours ([`AuthError::NonceMismatch`]); the salt must be
    /// non-empty base64 and the iteration count between 1 and [`MAX_ITERATIONS`]
    /// ([`AuthError::Malformed`]).
    pub fn server_first(&mut self, msg: &[u8]) -> Result<ServerFirst, AuthError> {
        if self.exchange.is_some() {
            return Err(AuthError::OutOfOrder(
                "server-first-message received twice in one SCRAM exchange".into(),
            ));
        }
        let what = "server-first-message";
        let text = utf8(msg, what)?;
        let mut attrs = text.split(',');
        let first = attrs.next().unwrap_or_default();
        if first.starts_with("m=") {
            return Err(AuthError::Unsupported(
                "the server requires a mandatory SCRAM extension (m=...), which is not supported"
                    .into(),
            ));
        }
        if let Some(error) = first.strip_prefix("e=") {
            return Err(server_error(error));
        }
        let nonce = expect_attribute(Some(first), b'r', what)?;
        check_nonce(nonce, "server nonce (r=)")?;
        if nonce.len() <= self.nonce.len() || !nonce.starts_with(&self.nonce) {
            return Err(AuthError::NonceMismatch);
        }
        let salt = decode_base64(expect_attribute(attrs.next(), b's', what)?, "salt (s=)")?;
        if salt.is_empty() {
            return Err(AuthError::Malformed(format!("{what}: salt (s=) is empty")));
        }
        let iterations = parse_iterations(
            expect_attribute(attrs.next(), b'i', what)?,
            "iteration count (i=)",
        )?;
        if iterations > MAX_ITERATIONS {
            return Err(AuthError::Malformed(format!(
                "{what}: iteration count {iterations} is above the limit of {MAX_ITERATIONS}; \
                 refusing to spend that much CPU (lower the server's scram_iterations and reset \
                 the password)"
            )));
        }
        skip_extensions(attrs, what)?;

        self.exchange = Some(Exchange {
            nonce: nonce.to_owned(),
            server_first: text.to_owned(),
            salt: salt.clone(),
            iterations,
        });
        Ok(ServerFirst { salt, iterations })
    }

    /// The client-final-message `c=biws,r=<nonce>,p=<proof>`, from the salted password
    /// ([`salted_password`](super::salted_password) of the [`ServerFirst`] parameters, which the
    /// caller may cache in a [`SaltedPasswordCache`](super::SaltedPasswordCache)).
    ///
    /// Must follow a successful [`server_first`](Self::server_first); otherwise the message
    /// carries only our own nonce, the server rejects it, and
    /// [`server_final`](Self::server_final) fails with [`AuthError::OutOfOrder`].
    pub fn client_final(&mut self, salted_password: &[u8; 32]) -> Vec<u8> {
        self.client_final_with_client_key(
            &keys::client_key(salted_password),
            &keys::server_key(salted_password),
        )
    }

    /// Same as [`client_final`](Self::client_final), from ClientKey and ServerKey instead of
    /// the salted password: the pooler gets ClientKey from
    /// [`ScramServer::client_key`](super::ScramServer::client_key) and ServerKey from the
    /// user's [`ScramVerifier`](crate::auth::ScramVerifier).
    pub fn client_final_with_client_key(
        &mut self,
        client_key: &[u8; 32],
        server_key: &[u8; 32],
    ) -> Vec<u8> {
        let (nonce, server_first) = match &self.exchange {
            Some(exchange) => (exchange.nonce.as_str(), exchange.server_first.as_str()),
            None => (self.nonce.as_str(), ""),
        };
        let without_proof = format!("c={CHANNEL_BINDING},r={nonce}");
        let auth_message = format!(
            "{},{server_first},{without_proof}",
            self.client_first_bare()
        );
        let proof = keys::client_proof(client_key, auth_message.as_bytes());
        self.expected_server_signature = self
            .exchange
            .as_ref()
            .map(|_| keys::server_signature(server_key, auth_message.as_bytes()));
        format!("{without_proof},p={}", encode_base64(&proof)).into_bytes()
    }

    /// Pass-through: the client-final-message from a stored `verifier` and the ClientKey a
    /// client proved against it (see [`ClientKeys`](super::ClientKeys)), without the password.
    ///
    /// The server must hold the same verifier: its salt and iteration count (from
    /// [`server_first`](Self::server_first)) must be the verifier's, otherwise the password
    /// was changed on the server since the verifier was stored
    /// ([`AuthError::VerifierChanged`]). [`server_final`](Self::server_final) then checks the
    /// server's signature with the verifier's ServerKey.
    pub fn client_final_from_verifier(
        &mut self,
        verifier: &ScramVerifier,
        client_key: &[u8; 32],
    ) -> Result<Vec<u8>, AuthError> {
        let exchange = self.exchange.as_ref().ok_or_else(|| {
            AuthError::OutOfOrder(
                "client-final-message built before a valid server-first-message".into(),
            )
        })?;
        if exchange.iterations != verifier.iterations || exchange.salt != verifier.salt {
            return Err(AuthError::VerifierChanged);
        }
        Ok(self.client_final_with_client_key(client_key, &verifier.server_key))
    }

    /// Checks the server-final-message: `v=<ServerSignature>` must match, compared in constant
    /// time ([`AuthError::ServerSignatureMismatch`]). A server error `e=invalid-proof` or
    /// `e=unknown-user` is [`AuthError::PasswordMismatch`]; any other `e=...` is
    /// [`AuthError::Malformed`] quoting the server's error.
    pub fn server_final(&self, msg: &[u8]) -> Result<(), AuthError> {
        let expected = self.expected_server_signature.ok_or_else(|| {
            AuthError::OutOfOrder(
                "server-final-message checked before a client-final-message was built from a \
                 valid server-first-message"
                    .into(),
            )
        })?;
        let what = "server-final-message";
        let text = utf8(msg, what)?;
        let mut attrs = text.split(',');
        let first = attrs.next().unwrap_or_default();
        if let Some(error) = first.strip_prefix("e=") {
            return Err(server_error(error));
        }
        let signature = decode_key(
            expect_attribute(Some(first), b'v', what)?,
            "server signature (v=)",
        )?;
        skip_extensions(attrs, what)?;
        if bool::from(signature.ct_eq(&expected)) {
            Ok(())
        } else {
            Err(AuthError::ServerSignatureMismatch)
        }
    }
}

impl Default for ScramClient {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for ScramClient {
    /// Shows only how far the exchange got.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let stage = match (&self.exchange, &self.expected_server_signature) {
            (None, _) => "awaiting server-first-message",
            (Some(_), None) => "ready for client-final-message",
            (Some(_), Some(_)) => "awaiting server-final-message",
        };
        f.debug_struct("ScramClient")
            .field("stage", &stage)
            .finish_non_exhaustive()
    }
}

/// Maps a SCRAM `e=` server error (RFC 5802 `server-error-value`) to our error.
fn server_error(value: &str) -> AuthError {
    match value {
        "invalid-proof" | "unknown-user" => AuthError::PasswordMismatch,
        other => AuthError::Malformed(format!(
            "the server rejected the SCRAM exchange with error {}",
            shown(other)
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::super::rfc7677 as rfc;
    use super::*;
    use crate::auth::scram::salted_password;

    fn rfc_client() -> ScramClient {
        ScramClient::with_nonce(rfc::CLIENT_NONCE).with_user(rfc::USER)
    }

    /// A client that has accepted `r=cnoncesnonce,s=c2FsdA==,i=2`.
    fn client_after_first() -> ScramClient {
        let mut client = ScramClient::with_nonce("cnonce");
        client
            .server_first(b"r=cnoncesnonce,s=c2FsdA==,i=2")
            .unwrap();
        client
    }

    #[test]
    fn rfc7677_vector_client_side() {
        let mut client = rfc_client();
        assert_eq!(client.client_first(), rfc::CLIENT_FIRST.as_bytes());
        let params = client.server_first(rfc::SERVER_FIRST.as_bytes()).unwrap();
        assert_eq!(
            params,
            ServerFirst {
                salt: rfc::salt(),
                iterations: rfc::ITERATIONS
            }
        );
        let salted = salted_password(rfc::PASSWORD, &params.salt, params.iterations);
        let fin = client.client_final(&salted);
        assert_eq!(String::from_utf8(fin).unwrap(), rfc::CLIENT_FINAL);
        client.server_final(rfc::SERVER_FINAL.as_bytes()).unwrap();

        // The same proof from ClientKey/ServerKey.
        let mut client = rfc_client();
        client.server_first(rfc::SERVER_FIRST.as_bytes()).unwrap();
        let fin = client
            .client_final_with_client_key(&keys::client_key(&salted), &keys::server_key(&salted));
        assert_eq!(String::from_utf8(fin).unwrap(), rfc::CLIENT_FINAL);
        client.server_final(rfc::SERVER_FINAL.as_bytes()).unwrap();
        assert!(matches!(
            client.server_final(b"v=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="),
            Err(AuthError::ServerSignatureMismatch)
        ));
    }

    #[test]
    fn default_client_first_is_libpq_style() {
        let client = ScramClient::with_nonce("abc");
        assert_eq!(client.client_first(), b"n,,n=,r=abc");
        let client = ScramClient::new();
        let first = String::from_utf8(client.client_first()).unwrap();
        assert!(first.starts_with("n,,n=,r="));
        assert_eq!(first.len(), "n,,n=,r=".len() + 24);
        let named = ScramClient::with_nonce("abc").with_user("a,b=c");
        assert_eq!(named.client_first(), b"n,,n=a=2Cb=3Dc,r=abc");
    }

    #[test]
    fn server_nonce_must_extend_ours() {
        for msg in [
            &b"r=othernonce,s=c2FsdA==,i=2"[..],
            b"r=cnonce,s=c2FsdA==,i=2",
            b"r=cnon,s=c2FsdA==,i=2",
            b"r=xcnonce,s=c2FsdA==,i=2",
        ] {
            let mut client = ScramClient::with_nonce("cnonce");
            assert!(matches!(
                client.server_first(msg),
                Err(AuthError::NonceMismatch)
            ));
        }
    }

    #[test]
    fn iteration_limits() {
        let mut client = ScramClient::with_nonce("c");
        let ok = format!("r=cs,s=c2FsdA==,i={MAX_ITERATIONS}");
        assert_eq!(
            client.server_first(ok.as_bytes()).unwrap().iterations,
            MAX_ITERATIONS
        );
        for i in [
            "0".to_owned(),
            (MAX_ITERATIONS + 1).to_string(),
            u32::MAX.to_string(),
            "4294967296".to_owned(),
            "99999999999999999999999".to_owned(),
            "-4096".to_owned(),
            "".to_owned(),
            "4096x".to_owned(),
        ] {
            let mut client = ScramClient::with_nonce("c");
            let msg = format!("r=cs,s=c2FsdA==,i={i}");
            assert!(
                matches!(
                    client.server_first(msg.as_bytes()),
                    Err(AuthError::Malformed(_))
                ),
                "i={i}"
            );
        }
    }

    #[test]
    fn malformed_server_first_messages() {
        let cases: &[&[u8]] = &[
            b"",
            b"r=cnoncesnonce",
            b"r=cnoncesnonce,",
            b"r=cnoncesnonce,s=c2FsdA==",
            b"r=cnoncesnonce,s=c2FsdA==,",
            b"r=cnoncesnonce,s=,i=4096",
            b"r=cnoncesnonce,s=not base64!,i=4096",
            b"r=cnoncesnonce,s=c2FsdA=,i=4096",
            b"r=cnoncesnonce,i=4096,s=c2FsdA==",
            b"s=c2FsdA==,r=cnoncesnonce,i=4096",
            b"r=cnonce snonce,s=c2FsdA==,i=4096",
            b"r=cnoncesnonce,s=c2FsdA==,i=4096,junk",
            b"x",
            b"\xff\xfe",
            b"e=other-error",
        ];
        for msg in cases {
            let mut client = ScramClient::with_nonce("cnonce");
            let result = client.server_first(msg);
            assert!(
                matches!(result, Err(AuthError::Malformed(_))),
                "{:?}: {result:?}",
                String::from_utf8_lossy(msg)
            );
        }
        let mut client = ScramClient::with_nonce("cnonce");
        assert!(matches!(
            client.server_first(b"m=ext,r=cnoncesnonce,s=c2FsdA==,i=1"),
            Err(AuthError::Unsupported(_))
        ));
        // Extensions after the mandatory attributes are ignored.
        let mut client = ScramClient::with_nonce("cnonce");
        assert!(client
            .server_first(b"r=cnoncesnonce,s=c2FsdA==,i=1,x=ext")
            .is_ok());
    }

    #[test]
    fn server_final_errors() {
        let mut client = client_after_first();
        client.client_final(&salted_password("pw", b"salt", 2));
        type Check = fn(&AuthError) -> bool;
        let cases: &[(&[u8], Check)] = &[
            (b"e=invalid-proof", |e| {
                matches!(e, AuthError::PasswordMismatch)
            }),
            (b"e=unknown-user", |e| {
                matches!(e, AuthError::PasswordMismatch)
            }),
            (
                b"e=other-error",
                |e| matches!(e, AuthError::Malformed(m) if m.contains("other-error")),
            ),
            (b"", |e| matches!(e, AuthError::Malformed(_))),
            (b"v=", |e| matches!(e, AuthError::Malformed(_))),
            (b"v=!!!", |e| matches!(e, AuthError::Malformed(_))),
            (b"v=AAAA", |e| matches!(e, AuthError::Malformed(_))),
            (b"x=1", |e| matches!(e, AuthError::Malformed(_))),
            (b"\xff", |e| matches!(e, AuthError::Malformed(_))),
            (b"v=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", |e| {
                matches!(e, AuthError::ServerSignatureMismatch)
            }),
        ];
        for (msg, check) in cases {
            let err = client.server_final(msg).unwrap_err();
            assert!(check(&err), "{:?}: {err:?}", String::from_utf8_lossy(msg));
        }
    }

    #[test]
    fn out_of_order_calls_are_errors() {
        let mut client = ScramClient::with_nonce("cnonce");
        assert!(matches!(
            client.server_final(b"v=AAAA"),
            Err(AuthError::OutOfOrder(_))
        ));
        // client_final without server_first produces a message no server accepts, and
        // leaves nothing for server_final to accept.
        let fin = client.client_final(&[0u8; 32]);
        assert!(String::from_utf8(fin)
            .unwrap()
            .starts_with("c=biws,r=cnonce,p="));
        assert!(matches!(
            client.server_final(b"v=AAAA"),
            Err(AuthError::OutOfOrder(_))
        ));

        let mut client = client_after_first();
        assert!(matches!(
            client.server_first(b"r=cnoncesnonce,s=c2FsdA==,i=2"),
            Err(AuthError::OutOfOrder(_))
        ));
    }

    #[test]
    fn pass_through_needs_the_servers_salt_and_iterations() {
        use crate::auth::ScramServer;
        let verifier = ScramVerifier::from_password("pw", b"salt", 2);
        let client_key = keys::client_key(&salted_password("pw", b"salt", 2));
        // Our own server holding the verifier accepts a login from the ClientKey alone.
        let mut server = ScramServer::new(verifier.clone());
        let mut client = ScramClient::new();
        let first = server.client_first(&client.client_first()).unwrap();
        client.server_first(&first).unwrap();
        let fin = client
            .client_final_from_verifier(&verifier, &client_key)
            .unwrap();
        let signature = server.client_final(&fin).unwrap();
        client.server_final(&signature).unwrap();

        // The password was changed on the server: another salt, or another iteration count.
        for (salt, iterations) in [(&b"other salt"[..], 2), (b"salt", 3)] {
            let changed = ScramVerifier::from_password("pw", salt, iterations);
            let mut server = ScramServer::new(changed);
            let mut client = ScramClient::new();
            let first = server.client_first(&client.client_first()).unwrap();
            client.server_first(&first).unwrap();
            assert!(matches!(
                client.client_final_from_verifier(&verifier, &client_key),
                Err(AuthError::VerifierChanged)
            ));
        }
        // Before server_first there is nothing to answer.
        let mut client = ScramClient::new();
        assert!(matches!(
            client.client_final_from_verifier(&verifier, &client_key),
            Err(AuthError::OutOfOrder(_))
        ));
    }

    #[test]
    fn debug_shows_no_keys() {
        let mut client = client_after_first();
        client.client_final(&[1u8; 32]);
        assert_eq!(
            format!("{client:?}"),
            "ScramClient { stage: \"awaiting server-final-message\", .. }"
        );
    }
}
