//! SCRAM-SHA-256 key derivations (RFC 5802 section 3), shared by the client and the server side.
//!
//! ```text
//! SaltedPassword  := Hi(Normalize(password), salt, i)      -- PBKDF2-HMAC-SHA-256
//! ClientKey       := HMAC(SaltedPassword, "Client Key")
//! StoredKey       := H(ClientKey)
//! ServerKey       := HMAC(SaltedPassword, "Server Key")
//! ClientSignature := HMAC(StoredKey, AuthMessage)
//! ClientProof     := ClientKey XOR ClientSignature
//! ServerSignature := HMAC(ServerKey, AuthMessage)
//! ```

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

/// Length in bytes of every SCRAM-SHA-256 key, signature and proof.
pub(crate) const KEY_LEN: usize = 32;

/// A SCRAM-SHA-256 key, signature or proof.
pub(crate) type Key = [u8; KEY_LEN];

/// PBKDF2-HMAC-SHA-256 of `password` (SCRAM's `Hi()`): the expensive step of SCRAM.
///
/// Its cost grows linearly with `iterations`; run it where blocking is acceptable, and cache
/// the result (see [`super::SaltedPasswordCache`]).
///
/// Normalization: RFC 5802 asks for SASLprep. PostgreSQL leaves pure-ASCII passwords unchanged
/// by SASLprep, and so do we; non-ASCII passwords are used as their raw UTF-8 bytes without
/// NFKC normalization, which matches PostgreSQL whenever SASLprep would not change them.
pub fn salted_password(password: &str, salt: &[u8], iterations: u32) -> [u8; 32] {
    pbkdf2::pbkdf2_hmac_array::<Sha256, KEY_LEN>(password.as_bytes(), salt, iterations)
}

/// `HMAC-SHA-256(key, data)`.
pub(crate) fn hmac(key: &[u8], data: &[u8]) -> Key {
    // Infallible: HMAC accepts keys of any length; the error type exists only for MACs
    // with fixed key sizes.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key)
        .expect("HMAC-SHA-256 accepts keys of any length");
    mac.update(data);
    mac.finalize().into_bytes().into()
}

/// `SHA-256(data)`.
pub(crate) fn sha256(data: &[u8]) -> Key {
    Sha256::digest(data).into()
}

/// `ClientKey := HMAC(SaltedPassword, "Client Key")`.
pub(crate) fn client_key(salted_password: &Key) -> Key {
    hmac(salted_password, b"Client Key")
}

/// `ServerKey := HMAC(SaltedPassword, "Server Key")`.
pub(crate) fn server_key(salted_password: &Key) -> Key {
    hmac(salted_password, b"Server Key")
}

/// `StoredKey := H(ClientKey)`.
pub(crate) fn stored_key(client_key: &Key) -> Key {
    sha256(client_key)
}

/// `ClientSignature := HMAC(StoredKey, AuthMessage)`.
pub(crate) fn client_signature(stored_key: &Key, auth_message: &[u8]) -> Key {
    hmac(stored_key, auth_message)
}

/// `ServerSignature := HMAC(ServerKey, AuthMessage)`.
pub(crate) fn server_signature(server_key: &Key, auth_message: &[u8]) -> Key {
    hmac(server_key, auth_message)
}

/// Byte-wise XOR. Used both ways: `ClientProof = ClientKey ^ ClientSignature` and
/// `ClientKey = ClientProof ^ ClientSignature`.
pub(crate) fn xor(a: &Key, b: &Key) -> Key {
    let mut out = [0u8; KEY_LEN];
    for (o, (x, y)) in out.iter_mut().zip(a.iter().zip(b.iter())) {
        *o = x ^ y;
    }
    out
}

/// `ClientProof := ClientKey XOR HMAC(H(ClientKey), AuthMessage)`.
pub(crate) fn client_proof(client_key: &Key, auth_message: &[u8]) -> Key {
    xor(
        client_key,
        &client_signature(&stored_key(client_key), auth_message),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn pbkdf2_matches_rfc7914_sha256_vector() {
        // RFC 7914 section 11: PBKDF2-HMAC-SHA256 (P="passwd", S="salt", c=1).
        let out = salted_password("passwd", b"salt", 1);
        assert_eq!(
            hex(&out),
            "55ac046e56e3089fec1691c22544b605f94185216dde0465e68b9d57c20dacbc"
        );
    }

    #[test]
    fn hmac_matches_rfc4231_case_2() {
        let out = hmac(b"Jefe", b"what do ya want for nothing?");
        assert_eq!(
            hex(&out),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn xor_round_trips() {
        let a = [0x5au8; KEY_LEN];
        let mut b = [0u8; KEY_LEN];
        for (i, v) in b.iter_mut().enumerate() {
            *v = i as u8;
        }
        assert_eq!(xor(&xor(&a, &b), &b), a);
    }

    #[test]
    fn proof_xor_signature_gives_back_client_key() {
        let ck = client_key(&salted_password("pw", b"salt", 2));
        let proof = client_proof(&ck, b"auth message");
        let sig = client_signature(&stored_key(&ck), b"auth message");
        assert_eq!(xor(&proof, &sig), ck);
    }
}
