//! The error type shared by every authentication step (MD5 and SCRAM-SHA-256, client and server side).

/// Why an authentication step failed.
///
/// Messages are written for the person reading the pooler's log: they say what was wrong and,
/// where there is one, what to change.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// The password, MD5 response or SCRAM client proof did not match the stored secret.
    #[error("password authentication failed: the password does not match the stored secret")]
    PasswordMismatch,

    /// A SCRAM or MD5 message, or a stored secret, does not parse. The text says what was wrong.
    #[error("malformed authentication data: {0}")]
    Malformed(String),

    /// The peer or the configuration asks for something this pooler does not implement
    /// (channel binding, an unknown mechanism, a secret that cannot serve the requested method).
    #[error("unsupported authentication request: {0}")]
    Unsupported(String),

    /// The SCRAM nonce sent back does not continue the nonce of this exchange.
    #[error(
        "SCRAM nonce mismatch: the peer's nonce does not continue this exchange's nonce \
         (a replayed or mixed-up authentication exchange)"
    )]
    NonceMismatch,

    /// The server's SCRAM signature is wrong: the server does not know this user's verifier.
    #[error(
        "SCRAM server signature mismatch: the server could not prove it knows the password; \
         check that the pooler is connecting to the intended server"
    )]
    ServerSignatureMismatch,

    /// Pass-through: the server's SCRAM salt or iteration count is not the stored verifier's,
    /// so the verifier (and the ClientKey learned with it) no longer fits that server.
    #[error(
        "the server's SCRAM salt or iteration count differs from the stored verifier: the \
         password was changed on the server"
    )]
    VerifierChanged,

    /// A SCRAM exchange step was called before the step it depends on, or after the
    /// exchange had already finished or failed.
    #[error("SCRAM exchange step out of order: {0}")]
    OutOfOrder(String),
}
