//! SCRAM message syntax (RFC 5802 section 7): `x=value` attributes, nonces, iteration counts,
//! user names and base64 fields, parsed without trusting the peer.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use rand::rngs::OsRng;
use rand::RngCore;

use super::keys::{Key, KEY_LEN};
use crate::auth::AuthError;

/// Random bytes in a nonce we generate; base64 makes them 24 printable characters.
const NONCE_BYTES: usize = 18;

/// Longest piece of peer-supplied text quoted back in an error message.
const MAX_SHOWN: usize = 64;

/// A fresh nonce: [`NONCE_BYTES`] random bytes from the operating system, base64-encoded.
pub(crate) fn random_nonce() -> String {
    let mut bytes = [0u8; NONCE_BYTES];
    OsRng.fill_bytes(&mut bytes);
    encode_base64(&bytes)
}

/// Standard, padded base64, as SCRAM and PostgreSQL use.
pub(crate) fn encode_base64(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

/// Decodes a base64 field; `what` names the field for the error message.
pub(crate) fn decode_base64(value: &str, what: &str) -> Result<Vec<u8>, AuthError> {
    STANDARD
        .decode(value)
        .map_err(|e| AuthError::Malformed(format!("{what} is not valid base64 ({e})")))
}

/// Decodes a base64 field that must hold exactly one 32-byte SCRAM-SHA-256 key or proof.
pub(crate) fn decode_key(value: &str, what: &str) -> Result<Key, AuthError> {
    let bytes = decode_base64(value, what)?;
    Key::try_from(bytes.as_slice()).map_err(|_| {
        AuthError::Malformed(format!(
            "{what} decodes to {} bytes, expected {KEY_LEN}",
            bytes.len()
        ))
    })
}

/// The message as text; SCRAM messages are UTF-8 (in practice ASCII).
pub(crate) fn utf8<'a>(msg: &'a [u8], what: &str) -> Result<&'a str, AuthError> {
    std::str::from_utf8(msg).map_err(|_| AuthError::Malformed(format!("{what} is not valid UTF-8")))
}

/// Splits one `x=value` attribute into its name and value.
pub(crate) fn attribute<'a>(part: &'a str, what: &str) -> Result<(u8, &'a str), AuthError> {
    match part.as_bytes() {
        [name, b'=', ..] if name.is_ascii_alphabetic() => Ok((*name, &part[2..])),
        _ => Err(AuthError::Malformed(format!(
            "{what}: expected an attribute of the form \"x=value\", found {}",
            shown(part)
        ))),
    }
}

/// The value of the next attribute, which must be present and named `name`.
pub(crate) fn expect_attribute<'a>(
    part: Option<&'a str>,
    name: u8,
    what: &str,
) -> Result<&'a str, AuthError> {
    let name = char::from(name);
    let part = part.ok_or_else(|| {
        AuthError::Malformed(format!("{what} is truncated: attribute {name}= is missing"))
    })?;
    let (found, value) = attribute(part, what)?;
    if char::from(found) != name {
        return Err(AuthError::Malformed(format!(
            "{what}: expected attribute {name}=, found {}=",
            char::from(found)
        )));
    }
    Ok(value)
}

/// Checks the optional extensions that may follow the mandatory attributes: each must be a
/// well-formed attribute; their content is ignored (RFC 5802 lets receivers skip unknown
/// optional extensions).
pub(crate) fn skip_extensions<'a>(
    rest: impl Iterator<Item = &'a str>,
    what: &str,
) -> Result<(), AuthError> {
    for part in rest {
        attribute(part, what)?;
    }
    Ok(())
}

/// A nonce must be non-empty printable ASCII without commas (RFC 5802 `printable`).
pub(crate) fn check_nonce(nonce: &str, what: &str) -> Result<(), AuthError> {
    if nonce.is_empty() {
        return Err(AuthError::Malformed(format!("{what} is empty")));
    }
    if !nonce
        .bytes()
        .all(|b| (0x21..=0x7e).contains(&b) && b != b',')
    {
        return Err(AuthError::Malformed(format!(
            "{what} contains characters other than printable ASCII"
        )));
    }
    Ok(())
}

/// Parses an iteration count: decimal digits only, at least 1, fitting in `u32`.
/// Upper limits beyond that are the caller's policy.
pub(crate) fn parse_iterations(value: &str, what: &str) -> Result<u32, AuthError> {
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(AuthError::Malformed(format!(
            "{what} must be a positive decimal number, found {}",
            shown(value)
        )));
    }
    match value.parse::<u32>() {
        Ok(0) => Err(AuthError::Malformed(format!(
            "{what} must be at least 1, found 0"
        ))),
        Ok(n) => Ok(n),
        Err(_) => Err(AuthError::Malformed(format!(
            "{what} is too large: {}",
            shown(value)
        ))),
    }
}

/// Escapes a user name for `n=` (RFC 5802 `saslname`): `=` becomes `=3D`, `,` becomes `=2C`.
pub(crate) fn escape_saslname(user: &str) -> String {
    let mut out = String::with_capacity(user.len());
    for c in user.chars() {
        match c {
            '=' => out.push_str("=3D"),
            ',' => out.push_str("=2C"),
            c => out.push(c),
        }
    }
    out
}

/// Quotes peer-supplied text for an error message, shortened so a hostile peer cannot flood
/// the log.
pub(crate) fn shown(text: &str) -> String {
    match text.char_indices().nth(MAX_SHOWN) {
        Some((cut, _)) => format!("{:?}...", &text[..cut]),
        None => format!("{text:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attributes_parse() {
        assert_eq!(attribute("r=abc", "m").unwrap(), (b'r', "abc"));
        assert_eq!(attribute("s=QQ==", "m").unwrap(), (b's', "QQ=="));
        assert_eq!(attribute("n=", "m").unwrap(), (b'n', ""));
        for bad in ["", "r", "=x", "1=x", "rr=x", "é=x"] {
            assert!(
                matches!(attribute(bad, "m"), Err(AuthError::Malformed(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn expect_attribute_reports_missing_and_wrong_names() {
        assert!(matches!(
            expect_attribute(None, b'r', "m"),
            Err(AuthError::Malformed(m)) if m.contains("r= is missing")
        ));
        assert!(matches!(
            expect_attribute(Some("s=x"), b'r', "m"),
            Err(AuthError::Malformed(m)) if m.contains("expected attribute r=")
        ));
    }

    #[test]
    fn nonces_must_be_printable() {
        assert!(check_nonce("abc~!", "n").is_ok());
        assert!(check_nonce("", "n").is_err());
        assert!(check_nonce("a b", "n").is_err());
        assert!(check_nonce("a,b", "n").is_err());
        assert!(check_nonce("a\u{7f}", "n").is_err());
        assert!(check_nonce("é", "n").is_err());
    }

    #[test]
    fn random_nonces_are_valid_and_distinct() {
        let a = random_nonce();
        let b = random_nonce();
        assert_eq!(a.len(), 24);
        assert!(check_nonce(&a, "n").is_ok());
        assert_ne!(a, b);
    }

    #[test]
    fn iteration_counts() {
        assert_eq!(parse_iterations("4096", "i").unwrap(), 4096);
        for bad in [
            "",
            "0",
            "00",
            "-1",
            "+1",
            " 1",
            "1x",
            "4294967296",
            "99999999999999999999",
        ] {
            assert!(
                matches!(parse_iterations(bad, "i"), Err(AuthError::Malformed(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn keys_must_be_32_bytes() {
        assert!(decode_key(&encode_base64(&[7u8; 32]), "k").is_ok());
        assert!(matches!(
            decode_key(&encode_base64(&[7u8; 31]), "k"),
            Err(AuthError::Malformed(m)) if m.contains("31 bytes")
        ));
        assert!(matches!(
            decode_key("not base64!", "k"),
            Err(AuthError::Malformed(_))
        ));
    }

    #[test]
    fn saslname_escaping() {
        assert_eq!(escape_saslname("a=b,c"), "a=3Db=2Cc");
        assert_eq!(escape_saslname(""), "");
    }

    #[test]
    fn shown_truncates_long_text() {
        let long = "x".repeat(1000);
        assert!(shown(&long).len() < 80);
        assert_eq!(shown("ab"), "\"ab\"");
    }
}
