//! A `tokio_util` codec for tagged messages (everything after the startup packet).
//!
//! Used where whole messages are wanted (logins, the admin console, salvage). The data path
//! does not decode: it forwards in bulk and asks the [`Scanner`](super::Scanner) for boundaries.

use bytes::{Buf, Bytes, BytesMut};
use tokio_util::codec::Decoder;

use super::{ProtocolError, HEADER_LEN};

/// One tagged message: its type byte and its body (without the length word).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub tag: u8,
    pub body: Bytes,
}

/// Decodes tagged messages, refusing any longer than `max_len` before allocating for it.
#[derive(Debug, Clone, Copy)]
pub struct MessageCodec {
    pub max_len: usize,
}

impl MessageCodec {
    pub fn new(max_len: usize) -> Self {
        MessageCodec { max_len }
    }
}

/// Reads the length word of a header at `buf[1..5]` and checks it: at least 4, at most `max`.
/// Returns the total message size including the tag byte.
pub fn checked_total_len(buf: &[u8], max: usize) -> Result<usize, ProtocolError> {
    let len = i32::from_be_bytes([buf[1], buf[2], buf[3], buf[4]]);
    if len < 4 {
        return Err(ProtocolError::InvalidLength(len.into()));
    }
    let len = len as usize;
    if len > max {
        return Err(ProtocolError::MessageTooLong { len, max });
    }
    Ok(len + 1)
}

impl Decoder for MessageCodec {
    type Item = Message;
    type Error = ProtocolError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Message>, ProtocolError> {
        if src.len() < HEADER_LEN {
            return Ok(None);
        }
        let total = checked_total_len(src, self.max_len)?;
        if src.len() < total {
            // Reserve only what a bounded message needs; the limit was checked above.
            src.reserve(total - src.len());
            return Ok(None);
        }
        let tag = src[0];
        src.advance(HEADER_LEN);
        let body = src.split_to(total - HEADER_LEN).freeze();
        Ok(Some(Message { tag, body }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::builder;

    fn encoded() -> BytesMut {
        let mut b = BytesMut::new();
        builder::query(&mut b, "SELECT 1");
        builder::ready_for_query(&mut b, b'I');
        b
    }

    #[test]
    fn decodes_messages_split_at_every_byte_boundary() {
        let whole = encoded();
        for cut in 0..=whole.len() {
            let mut codec = MessageCodec::new(1024);
            let mut buf = BytesMut::from(&whole[..cut]);
            let mut got = Vec::new();
            while let Some(m) = codec.decode(&mut buf).unwrap() {
                got.push(m);
            }
            buf.extend_from_slice(&whole[cut..]);
            while let Some(m) = codec.decode(&mut buf).unwrap() {
                got.push(m);
            }
            assert_eq!(got.len(), 2, "cut at {cut}");
            assert_eq!(got[0].tag, b'Q');
            assert_eq!(&got[0].body[..], b"SELECT 1\0");
            assert_eq!(got[1].tag, b'Z');
            assert_eq!(&got[1].body[..], b"I");
            assert!(buf.is_empty());
        }
    }

    /// Every message the builders make, in one stream.
    fn every_builder_message() -> (BytesMut, Vec<u8>) {
        let mut b = BytesMut::new();
        builder::auth_ok(&mut b);
        builder::auth_cleartext(&mut b);
        builder::auth_md5(&mut b, [1, 2, 3, 4]);
        builder::auth_sasl(&mut b, "SCRAM-SHA-256");
        builder::auth_sasl_continue(&mut b, b"r=abc,s=xyz,i=4096");
        builder::auth_sasl_final(&mut b, b"v=sig");
        builder::parameter_status(&mut b, "TimeZone", "UTC");
        builder::backend_key_data(&mut b, 1, 2);
        builder::ready_for_query(&mut b, b'I');
        builder::error_response(&mut b, "ERROR", "22012", "division by zero");
        builder::notice_response(&mut b, "NOTICE", "00000", "hello");
        builder::command_complete(&mut b, "SELECT 1");
        builder::row_description(&mut b, &["a", "b"]);
        builder::data_row(&mut b, &[Some("x"), None]);
        builder::copy_data(&mut b, b"1\t2\n");
        builder::password(&mut b, "secret");
        builder::sasl_initial_response(&mut b, "SCRAM-SHA-256", b"n,,n=,r=x");
        builder::sasl_response(&mut b, b"c=biws");
        builder::query(&mut b, "SELECT 1");
        builder::sync(&mut b);
        builder::copy_fail(&mut b, "client gone");
        builder::terminate(&mut b);
        let tags = b"RRRRRRSKZENCTDdpppQSfX".to_vec();
        (b, tags)
    }

    #[test]
    fn every_message_type_decodes_at_every_split_point() {
        let (whole, tags) = every_builder_message();
        let codec = MessageCodec::new(1024);
        for cut in 0..=whole.len() {
            let mut codec = codec;
            let mut buf = BytesMut::from(&whole[..cut]);
            let mut got = Vec::new();
            while let Some(m) = codec.decode(&mut buf).unwrap() {
                got.push(m.tag);
            }
            buf.extend_from_slice(&whole[cut..]);
            while let Some(m) = codec.decode(&mut buf).unwrap() {
                got.push(m.tag);
            }
            assert_eq!(got, tags, "cut at {cut}");
        }
    }

    #[test]
    fn refuses_an_absurd_length_without_allocating() {
        let mut codec = MessageCodec::new(1024);
        let mut buf = BytesMut::from(&[b'Q', 0x7f, 0xff, 0xff, 0xff][..]);
        let err = codec.decode(&mut buf).unwrap_err();
        assert!(matches!(err, ProtocolError::MessageTooLong { .. }));
        assert!(buf.capacity() < 4096);
    }

    #[test]
    fn refuses_a_length_below_four() {
        let mut codec = MessageCodec::new(1024);
        let mut buf = BytesMut::from(&[b'Q', 0, 0, 0, 3][..]);
        assert_eq!(
            codec.decode(&mut buf).unwrap_err(),
            ProtocolError::InvalidLength(3)
        );
        let mut buf = BytesMut::from(&[b'Q', 0xff, 0xff, 0xff, 0xff][..]);
        assert_eq!(
            codec.decode(&mut buf).unwrap_err(),
            ProtocolError::InvalidLength(-1)
        );
    }
}
