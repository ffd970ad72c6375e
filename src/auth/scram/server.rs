//! Server side of SCRAM-SHA-256: checks an application's proof against a stored verifier.

use std::fmt;
use std::mem;

use subtle::ConstantTimeEq;

use super::keys::{self, Key};
use super::message::{
    check_nonce, decode_base64, decode_key, encode_base64, expect_attribute, random_nonce, shown,
    skip_extensions, utf8,
};
use crate::auth::{AuthError, ScramVerifier};

/// One SCRAM-SHA-256 authentication of a client against a stored [`ScramVerifier`].
///
/// Feed it the client's SASL messages in order: [`client_first`](Self::client_first), then
/// [`client_final`](Self::client_final). Any error ends the exchange: later calls fail with
/// [`AuthError::OutOfOrder`].
pub struct ScramServer {
    verifier: ScramVerifier,
    server_nonce: String,
    stage: Stage,
}

enum Stage {
    AwaitingClientFirst,
    AwaitingClientFinal(Exchange),
    Succeeded { client_key: Key },
    Failed,
}

/// What the final step needs from the first.
struct Exchange {
    /// `n,,` or `y,,`, which the client must repeat (base64) in the `c=` attribute.
    gs2_header: String,
    client_first_bare: String,
    server_first: String,
    /// Client nonce followed by server nonce.
    nonce: String,
}

impl ScramServer {
    /// Starts an exchange with a fresh random server nonce.
    pub fn new(verifier: ScramVerifier) -> Self {
        Self::with_nonce(verifier, &random_nonce())
    }

    /// Starts an exchange with a fixed server nonce (for tests). The nonce must be printable
    /// ASCII without commas.
    pub fn with_nonce(verifier: ScramVerifier, server_nonce: &str) -> Self {
        ScramServer {
            verifier,
            server_nonce: server_nonce.to_owned(),
            stage: Stage::AwaitingClientFirst,
        }
    }

    /// Takes the client-first-message (the data of `SASLInitialResponse`) and returns the
    /// server-first-message `r=<client nonce><server nonce>,s=<salt>,i=<iterations>` to send
    /// in `AuthenticationSASLContinue`.
    pub fn client_first(&mut self, msg: &[u8]) -> Result<Vec<u8>, AuthError> {
        match mem::replace(&mut self.stage, Stage::Failed) {
            Stage::AwaitingClientFirst => {}
            _ => {
                return Err(AuthError::OutOfOrder(
                    "client-first-message received twice in one SCRAM exchange".into(),
                ))
            }
        }
        let first = ClientFirst::parse(msg)?;
        let nonce = format!("{}{}", first.nonce, self.server_nonce);
        let server_first = format!(
            "r={nonce},s={},i={}",
            encode_base64(&self.verifier.salt),
            self.verifier.iterations
        );
        let reply = server_first.clone().into_bytes();
        self.stage = Stage::AwaitingClientFinal(Exchange {
            gs2_header: first.gs2_header.to_owned(),
            client_first_bare: first.bare.to_owned(),
            server_first,
            nonce,
        });
        Ok(reply)
    }

    /// Takes the client-final-message `c=biws,r=<nonce>,p=<proof>` (the data of
    /// `SASLResponse`), checks the channel-binding attribute, the nonce
    /// ([`AuthError::NonceMismatch`]) and, in constant time, the proof
    /// ([`AuthError::PasswordMismatch`]). On success returns the server-final-message
    /// `v=<ServerSignature>` to send in `AuthenticationSASLFinal`.
    pub fn client_final(&mut self, msg: &[u8]) -> Result<Vec<u8>, AuthError> {
        let exchange = match mem::replace(&mut self.stage, Stage::Failed) {
            Stage::AwaitingClientFinal(exchange) => exchange,
            Stage::AwaitingClientFirst => {
                return Err(AuthError::OutOfOrder(
                    "client-final-message received before client-first-message".into(),
                ))
            }
            Stage::Succeeded { .. } | Stage::Failed => {
                return Err(AuthError::OutOfOrder(
                    "client-final-message received after the SCRAM exchange had ended".into(),
                ))
            }
        };
        let what = "client-final-message";
        let text = utf8(msg, what)?;

        // The proof is the last attribute; everything before it is signed.
        let (without_proof, proof) = text.rsplit_once(',').ok_or_else(|| {
            AuthError::Malformed(format!(
                "{what} is truncated: expected \"c=...,r=...,p=...\", found {}",
                shown(text)
            ))
        })?;
        let proof = expect_attribute(Some(proof), b'p', "client-final-message (last attribute)")?;

        let mut attrs = without_proof.split(',');
        let channel_binding = expect_attribute(attrs.next(), b'c', what)?;
        check_channel_binding(channel_binding, &exchange.gs2_header)?;
        let nonce = expect_attribute(attrs.next(), b'r', what)?;
        if nonce != exchange.nonce {
            return Err(AuthError::NonceMismatch);
        }
        skip_extensions(attrs, what)?;
        let proof = decode_key(proof, "client proof (p=)")?;

        let auth_message = format!(
            "{},{},{}",
            exchange.client_first_bare, exchange.server_first, without_proof
        );
        let signature = keys::client_signature(&self.verifier.stored_key, auth_message.as_bytes());
        let client_key = keys::xor(&proof, &signature);
        let matches = keys::stored_key(&client_key).ct_eq(&self.verifier.stored_key);
        if !bool::from(matches) {
            return Err(AuthError::PasswordMismatch);
        }

        let server_signature =
            keys::server_signature(&self.verifier.server_key, auth_message.as_bytes());
        self.stage = Stage::Succeeded { client_key };
        Ok(format!("v={}", encode_base64(&server_signature)).into_bytes())
    }

    /// After a successful [`client_final`](Self::client_final): the client's
    /// `ClientKey = ClientProof XOR ClientSignature`. With the verifier's ServerKey it lets
    /// the pooler log into a PostgreSQL server holding the same verifier
    /// (see [`ScramClient::client_final_with_client_key`](super::ScramClient::client_final_with_client_key)).
    /// It is a login credential: keep it out of logs.
    pub fn client_key(&self) -> Option<[u8; 32]> {
        match self.stage {
            Stage::Succeeded { client_key } => Some(client_key),
            _ => None,
        }
    }
}

impl fmt::Debug for ScramServer {
    /// Shows only how far the exchange got; never keys or proofs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let stage = match self.stage {
            Stage::AwaitingClientFirst => "awaiting client-first-message",
            Stage::AwaitingClientFinal(_) => "awaiting client-final-message",
            Stage::Succeeded { .. } => "succeeded",
            Stage::Failed => "failed",
        };
        f.debug_struct("ScramServer")
            .field("stage", &stage)
            .finish_non_exhaustive()
    }
}

/// The parts of a client-first-message the server uses.
struct ClientFirst<'a> {
    /// `n,,` or `y,,`.
    gs2_header: &'a str,
    /// client-first-message-bare: `n=<user>,r=<nonce>[,extensions]`.
    bare: &'a str,
    nonce: &'a str,
}

impl<'a> ClientFirst<'a> {
    fn parse(msg: &'a [u8]) -> Result<Self, AuthError> {
        let what = "client-first-message";
        let text = utf8(msg, what)?;
        let truncated = || {
            AuthError::Malformed(format!(
                "{what} is truncated: expected \"n,,n=,r=<nonce>\", found {}",
                shown(text)
            ))
        };
        let mut parts = text.splitn(3, ',');
        let flag = parts.next().unwrap_or_default();
        let authzid = parts.next().ok_or_else(truncated)?;
        let bare = parts.next().ok_or_else(truncated)?;

        match flag {
            // "y": the client could do channel binding but thinks we cannot, which is true.
            "n" | "y" => {}
            _ if flag.starts_with("p=") => {
                return Err(AuthError::Unsupported(
                    "the client requested SCRAM channel binding (SCRAM-SHA-256-PLUS), which \
                     this pooler does not offer; connect with channel_binding=prefer or disable"
                        .into(),
                ))
            }
            _ => {
                return Err(AuthError::Malformed(format!(
                    "{what}: channel-binding flag must be \"n\", \"y\" or \"p=...\", found {}",
                    shown(flag)
                )))
            }
        }
        if !authzid.is_empty() {
            return Err(if authzid.starts_with("a=") {
                AuthError::Unsupported(
                    "SCRAM authorization identity (a=...) is not supported; leave it empty".into(),
                )
            } else {
                AuthError::Malformed(format!(
                    "{what}: expected an empty authorization identity or \"a=...\", found {}",
                    shown(authzid)
                ))
            });
        }
        let gs2_header = &text[..flag.len() + authzid.len() + 2];

        let mut attrs = bare.split(',');
        let user = attrs.next().unwrap_or_default();
        if user.starts_with("m=") {
            return Err(AuthError::Unsupported(
                "the client requires a mandatory SCRAM extension (m=...), which is not supported"
                    .into(),
            ));
        }
        // The user name is ignored, as in PostgreSQL: the user comes from the startup packet.
        expect_attribute(Some(user), b'n', what)?;
        let nonce = expect_attribute(attrs.next(), b'r', what)?;
        check_nonce(nonce, "client nonce (r=)")?;
        skip_extensions(attrs, what)?;

        Ok(ClientFirst {
            gs2_header,
            bare,
            nonce,
        })
    }
}

/// The `c=` attribute must be the base64 of the client's own gs2 header (`biws` for `n,,`,
/// `eSws` for `y,,`).
fn check_channel_binding(value: &str, gs2_header: &str) -> Result<(), AuthError> {
    if value == encode_base64(gs2_header.as_bytes()) {
        return Ok(());
    }
    let decoded = decode_base64(value, "channel-binding attribute (c=)")?;
    if decoded.starts_with(b"p=") {
        return Err(AuthError::Unsupported(
            "the client sent SCRAM channel-binding data, which this pooler does not support".into(),
        ));
    }
    Err(AuthError::Malformed(format!(
        "channel-binding attribute (c=) does not repeat the gs2 header {gs2_header:?} of the \
         client-first-message (expected c={})",
        encode_base64(gs2_header.as_bytes())
    )))
}

#[cfg(test)]
mod tests {
    use super::super::rfc7677 as rfc;
    use super::*;
    use crate::auth::scram::{salted_password, ScramClient};

    fn rfc_verifier() -> ScramVerifier {
        ScramVerifier::from_password(rfc::PASSWORD, &rfc::salt(), rfc::ITERATIONS)
    }

    /// A cheap verifier for tests that do not need the RFC numbers.
    fn cheap_verifier() -> ScramVerifier {
        ScramVerifier::from_password("pw", b"salt", 2)
    }

    /// A server that has answered `n,,n=,r=cnonce`, with server nonce `snonce`.
    fn server_after_first() -> ScramServer {
        let mut server = ScramServer::with_nonce(cheap_verifier(), "snonce");
        server.client_first(b"n,,n=,r=cnonce").unwrap();
        server
    }

    /// A correct client-final-message for [`server_after_first`], built by our client.
    fn good_client_final() -> Vec<u8> {
        let mut client = ScramClient::with_nonce("cnonce");
        client
            .server_first(b"r=cnoncesnonce,s=c2FsdA==,i=2")
            .unwrap();
        client.client_final(&salted_password("pw", b"salt", 2))
    }

    #[test]
    fn rfc7677_vector_server_side() {
        let mut server = ScramServer::with_nonce(rfc_verifier(), rfc::SERVER_NONCE);
        let first = server.client_first(rfc::CLIENT_FIRST.as_bytes()).unwrap();
        assert_eq!(String::from_utf8(first).unwrap(), rfc::SERVER_FIRST);
        assert!(server.client_key().is_none());
        let fin = server.client_final(rfc::CLIENT_FINAL.as_bytes()).unwrap();
        assert_eq!(String::from_utf8(fin).unwrap(), rfc::SERVER_FINAL);

        let salted = salted_password(rfc::PASSWORD, &rfc::salt(), rfc::ITERATIONS);
        assert_eq!(server.client_key(), Some(keys::client_key(&salted)));
    }

    #[test]
    fn accepts_y_flag_and_libpq_style_messages() {
        let mut server = ScramServer::with_nonce(cheap_verifier(), "snonce");
        server.client_first(b"y,,n=,r=cnonce").unwrap();
        let fin = String::from_utf8(good_client_final()).unwrap();
        // For "y,," the client must repeat it as c=eSws, not c=biws.
        let with_biws = server.client_final(fin.as_bytes());
        assert!(matches!(with_biws, Err(AuthError::Malformed(m)) if m.contains("eSws")));

        let mut server = ScramServer::with_nonce(cheap_verifier(), "snonce");
        let first = server.client_first(b"y,,n=,r=cnonce").unwrap();
        let without_proof = "c=eSws,r=cnoncesnonce";
        let auth_message = format!(
            "n=,r=cnonce,{},{without_proof}",
            String::from_utf8(first).unwrap()
        );
        let client_key = keys::client_key(&salted_password("pw", b"salt", 2));
        let proof = keys::client_proof(&client_key, auth_message.as_bytes());
        let msg = format!("{without_proof},p={}", encode_base64(&proof));
        assert!(server.client_final(msg.as_bytes()).is_ok());
        assert_eq!(server.client_key(), Some(client_key));
    }

    #[test]
    fn accepts_any_user_name_and_extensions() {
        for first in [
            &b"n,,n=,r=cnonce"[..],
            b"n,,n=*,r=cnonce",
            b"n,,n=someone=2Celse,r=cnonce",
            b"n,,n=,r=cnonce,x=future extension",
        ] {
            let mut server = ScramServer::with_nonce(cheap_verifier(), "snonce");
            let reply = server.client_first(first).unwrap();
            assert_eq!(reply, b"r=cnoncesnonce,s=c2FsdA==,i=2");
        }
    }

    #[test]
    fn right_proof_succeeds_and_wrong_proof_fails() {
        let mut server = server_after_first();
        assert!(server.client_final(&good_client_final()).is_ok());
        assert!(server.client_key().is_some());

        let mut server = server_after_first();
        let mut client = ScramClient::with_nonce("cnonce");
        client
            .server_first(b"r=cnoncesnonce,s=c2FsdA==,i=2")
            .unwrap();
        let wrong = client.client_final(&salted_password("wrong", b"salt", 2));
        assert!(matches!(
            server.client_final(&wrong),
            Err(AuthError::PasswordMismatch)
        ));
        assert!(server.client_key().is_none());
    }

    #[test]
    fn wrong_nonce_is_nonce_mismatch() {
        let mut server = server_after_first();
        let proof = encode_base64(&[0u8; 32]);
        let msg = format!("c=biws,r=cnonceOTHER,p={proof}");
        assert!(matches!(
            server.client_final(msg.as_bytes()),
            Err(AuthError::NonceMismatch)
        ));
    }

    #[test]
    fn channel_binding_is_unsupported() {
        let mut server = ScramServer::with_nonce(cheap_verifier(), "snonce");
        assert!(matches!(
            server.client_first(b"p=tls-server-end-point,,n=,r=cnonce"),
            Err(AuthError::Unsupported(_))
        ));
        let mut server = server_after_first();
        let cbind = encode_base64(b"p=tls-server-end-point,,\x01\x02");
        let proof = encode_base64(&[0u8; 32]);
        let msg = format!("c={cbind},r=cnoncesnonce,p={proof}");
        assert!(matches!(
            server.client_final(msg.as_bytes()),
            Err(AuthError::Unsupported(_))
        ));
    }

    #[test]
    fn malformed_client_first_messages() {
        let cases: &[(&[u8], &str)] = &[
            (b"", "empty"),
            (b"n", "truncated"),
            (b"n,", "truncated"),
            (b"n,,", "no user"),
            (b"n,,n=", "no nonce"),
            (b"n,,n=,", "empty attribute"),
            (b"n,,n=,r=", "empty nonce"),
            (b"n,,n=,r=a b", "space in nonce"),
            (b"n,,r=cnonce", "no user attribute"),
            (b"n,,n=,s=cnonce", "wrong attribute"),
            (b"x,,n=,r=cnonce", "bad flag"),
            (b"n,x,n=,r=cnonce", "bad authzid"),
            (b"n,,n=,r=cnonce,garbage", "bad extension"),
            (b"n,,n=,r=\xff\xfe", "invalid utf-8"),
        ];
        for (msg, why) in cases {
            let mut server = ScramServer::with_nonce(cheap_verifier(), "snonce");
            assert!(
                matches!(server.client_first(msg), Err(AuthError::Malformed(_))),
                "{why}"
            );
        }
        for msg in [&b"n,a=admin,n=,r=cnonce"[..], b"n,,m=ext,n=,r=cnonce"] {
            let mut server = ScramServer::with_nonce(cheap_verifier(), "snonce");
            assert!(matches!(
                server.client_first(msg),
                Err(AuthError::Unsupported(_))
            ));
        }
    }

    #[test]
    fn malformed_client_final_messages() {
        let proof = encode_base64(&[0u8; 32]);
        let cases = [
            String::new(),
            "c=biws".to_owned(),
            "c=biws,r=cnoncesnonce".to_owned(),
            "c=biws,r=cnoncesnonce,p=".to_owned(),
            "c=biws,r=cnoncesnonce,p=!!!!".to_owned(),
            format!("c=biws,r=cnoncesnonce,p={}", encode_base64(&[0u8; 31])),
            format!("c=biws,p={proof}"),
            format!("r=cnoncesnonce,p={proof}"),
            format!("c=bad!,r=cnoncesnonce,p={proof}"),
            format!("c=eSws,r=cnoncesnonce,p={proof}"),
            format!("c=biws,r=cnoncesnonce,p={proof},x=after proof"),
            format!("c=biws,r=cnoncesnonce,junk,p={proof}"),
            format!("c=biws,r=cnoncesnonce,p={proof}\u{0}"),
        ];
        for case in &cases {
            let mut server = server_after_first();
            let result = server.client_final(case.as_bytes());
            assert!(
                matches!(result, Err(AuthError::Malformed(_))),
                "{case:?}: {result:?}"
            );
        }
        let mut server = server_after_first();
        assert!(server.client_final(b"\xff").is_err());
    }

    #[test]
    fn out_of_order_calls_are_errors() {
        let mut server = ScramServer::with_nonce(cheap_verifier(), "snonce");
        assert!(matches!(
            server.client_final(&good_client_final()),
            Err(AuthError::OutOfOrder(_))
        ));

        let mut server = server_after_first();
        assert!(matches!(
            server.client_first(b"n,,n=,r=cnonce"),
            Err(AuthError::OutOfOrder(_))
        ));

        // After success, and after a failure, the exchange is over.
        let mut server = server_after_first();
        server.client_final(&good_client_final()).unwrap();
        assert!(matches!(
            server.client_final(&good_client_final()),
            Err(AuthError::OutOfOrder(_))
        ));
        let mut server = server_after_first();
        assert!(server.client_final(b"garbage").is_err());
        assert!(matches!(
            server.client_final(&good_client_final()),
            Err(AuthError::OutOfOrder(_))
        ));
        assert!(server.client_key().is_none());
    }

    #[test]
    fn debug_shows_no_keys() {
        let mut server = server_after_first();
        server.client_final(&good_client_final()).unwrap();
        let shown = format!("{server:?}");
        assert_eq!(shown, "ScramServer { stage: \"succeeded\", .. }");
    }

    #[test]
    fn generated_server_nonces_are_fresh() {
        let mut a = ScramServer::new(cheap_verifier());
        let mut b = ScramServer::new(cheap_verifier());
        let fa = a.client_first(b"n,,n=,r=x").unwrap();
        let fb = b.client_first(b"n,,n=,r=x").unwrap();
        assert_ne!(fa, fb);
    }
}
