//! The untagged first packet of a connection: StartupMessage, SSLRequest, GSSENCRequest or
//! CancelRequest.

use bytes::{Buf, BytesMut};
use tokio_util::codec::Decoder;

use super::ProtocolError;

/// PostgreSQL refuses startup packets longer than this (MAX_STARTUP_PACKET_LENGTH).
pub const MAX_STARTUP_PACKET_LENGTH: usize = 10_000;
pub const PROTOCOL_3_0: i32 = 196_608;
pub const CANCEL_REQUEST_CODE: i32 = 80_877_102;
pub const SSL_REQUEST_CODE: i32 = 80_877_103;
pub const GSSENC_REQUEST_CODE: i32 = 80_877_104;

/// A decoded first packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartupPacket {
    /// A StartupMessage: protocol 3.x and its parameters in the order sent.
    Startup {
        minor: u16,
        params: Vec<(String, String)>,
    },
    SslRequest,
    GssEncRequest,
    Cancel {
        pid: i32,
        secret: i32,
    },
}

impl StartupPacket {
    /// The value of a startup parameter.
    pub fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
        params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Decodes one first packet (the caller switches codecs after a StartupMessage).
#[derive(Debug, Default, Clone, Copy)]
pub struct StartupCodec;

impl Decoder for StartupCodec {
    type Item = StartupPacket;
    type Error = ProtocolError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<StartupPacket>, ProtocolError> {
        if src.len() < 4 {
            return Ok(None);
        }
        let len = i32::from_be_bytes([src[0], src[1], src[2], src[3]]);
        if !(8..=MAX_STARTUP_PACKET_LENGTH as i32).contains(&len) {
            return Err(ProtocolError::InvalidStartupLength(len.into()));
        }
        let len = len as usize;
        if src.len() < len {
            src.reserve(len - src.len());
            return Ok(None);
        }
        let packet = src.split_to(len);
        parse(&packet[4..]).map(Some)
    }
}

fn parse(mut body: &[u8]) -> Result<StartupPacket, ProtocolError> {
    let code = body.get_i32();
    match code {
        SSL_REQUEST_CODE if body.is_empty() => Ok(StartupPacket::SslRequest),
        GSSENC_REQUEST_CODE if body.is_empty() => Ok(StartupPacket::GssEncRequest),
        CANCEL_REQUEST_CODE if body.len() == 8 => Ok(StartupPacket::Cancel {
            pid: body.get_i32(),
            secret: body.get_i32(),
        }),
        SSL_REQUEST_CODE | GSSENC_REQUEST_CODE | CANCEL_REQUEST_CODE => {
            Err(ProtocolError::malformed("startup packet"))
        }
        _ => {
            let major = (code >> 16) as u16;
            let minor = (code & 0xffff) as u16;
            if major != 3 {
                return Err(ProtocolError::UnsupportedProtocol { major, minor });
            }
            Ok(StartupPacket::Startup {
                minor,
                params: parse_params(body)?,
            })
        }
    }
}

/// Parameters are NUL-terminated name/value pairs ended by an empty name.
fn parse_params(body: &[u8]) -> Result<Vec<(String, String)>, ProtocolError> {
    let bad = || ProtocolError::malformed("startup parameters");
    let mut fields = body.split(|&b| b == 0);
    let mut params = Vec::new();
    loop {
        let name = fields.next().ok_or_else(bad)?;
        if name.is_empty() {
            break;
        }
        let value = fields.next().ok_or_else(bad)?;
        let name = std::str::from_utf8(name).map_err(|_| bad())?;
        let value = std::str::from_utf8(value).map_err(|_| bad())?;
        params.push((name.to_owned(), value.to_owned()));
    }
    // After the terminating empty name only the final split remainder (empty) may follow.
    match (fields.next(), fields.next()) {
        (Some([]), None) => Ok(params),
        (None, None) => Ok(params),
        _ => Err(bad()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::builder;

    #[test]
    fn decodes_a_startup_message_split_at_every_byte() {
        let mut whole = BytesMut::new();
        builder::startup(&mut whole, &[("user", "app"), ("database", "db")]);
        for cut in 0..whole.len() {
            let mut buf = BytesMut::from(&whole[..cut]);
            assert_eq!(StartupCodec.decode(&mut buf).unwrap(), None);
            buf.extend_from_slice(&whole[cut..]);
            let p = StartupCodec.decode(&mut buf).unwrap().unwrap();
            assert_eq!(
                p,
                StartupPacket::Startup {
                    minor: 0,
                    params: vec![
                        ("user".into(), "app".into()),
                        ("database".into(), "db".into())
                    ]
                }
            );
        }
    }

    #[test]
    fn decodes_ssl_gss_and_cancel() {
        let mut b = BytesMut::new();
        builder::ssl_request(&mut b);
        assert_eq!(
            StartupCodec.decode(&mut b).unwrap(),
            Some(StartupPacket::SslRequest)
        );
        let mut b = BytesMut::from(&[0, 0, 0, 8, 4, 0xd2, 0x16, 0x30][..]);
        assert_eq!(
            StartupCodec.decode(&mut b).unwrap(),
            Some(StartupPacket::GssEncRequest)
        );
        let mut b = BytesMut::new();
        builder::cancel_request(&mut b, 42, -7);
        assert_eq!(
            StartupCodec.decode(&mut b).unwrap(),
            Some(StartupPacket::Cancel {
                pid: 42,
                secret: -7
            })
        );
    }

    #[test]
    fn rejects_bad_packets() {
        for bytes in [
            &[0u8, 0, 0, 4][..],                           // too short
            &[0x7f, 0xff, 0xff, 0xff][..],                 // absurd length
            &[0, 0, 0, 12, 0, 2, 0, 0, b'u', 0, 0, 0][..], // protocol 2
            &[0, 0, 0, 11, 0, 3, 0, 0, b'u', 0, b'x'][..], // unterminated
            &[0, 0, 0, 9, 4, 0xd2, 0x16, 0x2f, 0][..],     // SSLRequest with a body
            b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",          // HTTP
        ] {
            let mut b = BytesMut::from(bytes);
            assert!(StartupCodec.decode(&mut b).is_err(), "{bytes:?}");
        }
    }
}
