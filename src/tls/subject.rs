//! The common name (CN) in a certificate's subject: what `hba` rules with the `cert` method
//! compare with the user name. A small DER reader: only the path to the subject is walked,
//! every length is checked, nothing panics on malformed input.

/// DER tags on the path to the subject.
const SEQUENCE: u8 = 0x30;
const SET: u8 = 0x31;
const OID: u8 = 0x06;
/// `[0] EXPLICIT Version` of tbsCertificate.
const VERSION: u8 = 0xa0;
/// id-at-commonName, 2.5.4.3.
const COMMON_NAME: &[u8] = &[0x55, 0x04, 0x03];

/// The first common name of the certificate's subject (as PostgreSQL takes it), if it has
/// one and it is text without NUL characters.
pub fn common_name(cert_der: &[u8]) -> Option<String> {
    let (tag, cert, _) = tlv(cert_der)?;
    if tag != SEQUENCE {
        return None;
    }
    let (tag, mut tbs, _) = tlv(cert)?;
    if tag != SEQUENCE {
        return None;
    }
    if tbs.first() == Some(&VERSION) {
        tbs = tlv(tbs)?.2;
    }
    // serialNumber, signature, issuer, validity; then the subject.
    for _ in 0..4 {
        tbs = tlv(tbs)?.2;
    }
    let (tag, mut subject, _) = tlv(tbs)?;
    if tag != SEQUENCE {
        return None;
    }
    while !subject.is_empty() {
        let (tag, mut rdn, rest) = tlv(subject)?;
        subject = rest;
        if tag != SET {
            return None;
        }
        while !rdn.is_empty() {
            let (tag, attribute, rest) = tlv(rdn)?;
            rdn = rest;
            if tag != SEQUENCE {
                return None;
            }
            let (tag, oid, value) = tlv(attribute)?;
            if tag == OID && oid == COMMON_NAME {
                let (tag, text, _) = tlv(value)?;
                return decode_string(tag, text).filter(|s| !s.contains('\0'));
            }
        }
    }
    None
}

/// One DER element: (tag, contents, what follows). None if the lengths do not fit.
fn tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
        (len, &rest[n..])
    };
    if rest.len() < len {
        return None;
    }
    Some((tag, &rest[..len], &rest[len..]))
}

/// The directory string types a CN may use.
fn decode_string(tag: u8, bytes: &[u8]) -> Option<String> {
    match tag {
        // UTF8String, PrintableString, IA5String
        0x0c | 0x13 | 0x16 => std::str::from_utf8(bytes).ok().map(str::to_owned),
        // TeletexString: taken as Latin-1, as OpenSSL prints it
        0x14 => Some(bytes.iter().map(|&b| char::from(b)).collect()),
        // BMPString: UTF-16BE
        0x1e if bytes.len() % 2 == 0 => {
            let units = bytes
                .chunks_exact(2)
                .map(|c| u16::from_be_bytes([c[0], c[1]]));
            char::decode_utf16(units)
                .collect::<Result<String, _>>()
                .ok()
        }
        // UniversalString: UTF-32BE
        0x1c if bytes.len() % 4 == 0 => bytes
            .chunks_exact(4)
            .map(|c| char::from_u32(u32::from_be_bytes([c[0], c[1], c[2], c[3]])))
            .collect(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A certificate whose tbsCertificate holds only what is walked: the subject has an
    /// organization (O) then a common name.
    fn cert_with_subject(cn: &[u8], cn_tag: u8) -> Vec<u8> {
        fn wrap(tag: u8, body: &[u8]) -> Vec<u8> {
            let mut out = vec![tag];
            if body.len() < 0x80 {
                out.push(body.len() as u8);
            } else {
                out.extend_from_slice(&[0x82, (body.len() >> 8) as u8, body.len() as u8]);
            }
            out.extend_from_slice(body);
            out
        }
        let attr = |oid: &[u8], tag: u8, value: &[u8]| {
            wrap(
                SET,
                &wrap(SEQUENCE, &[wrap(OID, oid), wrap(tag, value)].concat()),
            )
        };
        let subject = wrap(
            SEQUENCE,
            &[
                attr(&[0x55, 0x04, 0x0a], 0x0c, b"org"),
                attr(COMMON_NAME, cn_tag, cn),
            ]
            .concat(),
        );
        let tbs = wrap(
            SEQUENCE,
            &[
                wrap(VERSION, &wrap(0x02, &[2])),
                wrap(0x02, &[1]),
                wrap(SEQUENCE, &[]),
                wrap(SEQUENCE, &[]),
                wrap(SEQUENCE, &[]),
                subject,
            ]
            .concat(),
        );
        wrap(SEQUENCE, &tbs)
    }

    #[test]
    fn reads_the_common_name() {
        assert_eq!(
            common_name(&cert_with_subject(b"alice", 0x0c)).as_deref(),
            Some("alice")
        );
        assert_eq!(
            common_name(&cert_with_subject(&[0, b'b', 0, b'o'], 0x1e)).as_deref(),
            Some("bo")
        );
    }

    #[test]
    fn refuses_nul_characters_and_odd_types() {
        assert_eq!(common_name(&cert_with_subject(b"al\0ice", 0x0c)), None);
        assert_eq!(common_name(&cert_with_subject(b"alice", 0x04)), None);
    }

    #[test]
    fn never_panics_on_truncated_or_garbage_input() {
        let good = cert_with_subject(b"alice", 0x0c);
        for n in 0..good.len() {
            assert_eq!(common_name(&good[..n]), None);
        }
        assert_eq!(common_name(&[0x30, 0x84, 0xff, 0xff, 0xff, 0xff]), None);
        assert_eq!(common_name(&[0x30, 0x80]), None);
    }
}
