//! The RFC 7677 section 3 SCRAM-SHA-256 test exchange, shared by the client and server tests.

/// User name in the RFC's client-first-message (PostgreSQL clients send an empty one).
pub(crate) const USER: &str = "user";
pub(crate) const PASSWORD: &str = "pencil";
pub(crate) const CLIENT_NONCE: &str = "rOprNGfwEbeRWgbNEkqO";
pub(crate) const SERVER_NONCE: &str = "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
pub(crate) const SALT_B64: &str = "W22ZaJ0SNY7soEsUEjb6gQ==";
pub(crate) const ITERATIONS: u32 = 4096;

pub(crate) const CLIENT_FIRST: &str = "n,,n=user,r=rOprNGfwEbeRWgbNEkqO";
pub(crate) const SERVER_FIRST: &str =
    "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
pub(crate) const CLIENT_FINAL: &str =
    "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,\
                                       p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
/// As printed in RFC 7677 (and recomputed independently with Python's hashlib/hmac).
pub(crate) const SERVER_FINAL: &str = "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=";

/// The RFC's salt, decoded.
pub(crate) fn salt() -> Vec<u8> {
    super::message::decode_base64(SALT_B64, "salt").unwrap_or_default()
}
