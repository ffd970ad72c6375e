//! Server-to-client messages: every backend inspector the pooler runs on what a server sends
//! must take any body without panicking.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use pgcorral::protocol::backend::{
    auth_request, backend_key_data, command_tag, data_row, error_fields, parameter_status,
    ready_status,
};
use pgcorral::protocol::MessageCodec;
use pgcorral::session::prepared::mentions_pooler_name;
use tokio_util::codec::Decoder;

fuzz_target!(|data: &[u8]| {
    let mut codec = MessageCodec::new(64 * 1024);
    let mut buf = BytesMut::from(data);
    while let Ok(Some(msg)) = codec.decode(&mut buf) {
        let body = &msg.body[..];
        let mut whole = Vec::with_capacity(body.len() + 5);
        whole.push(msg.tag);
        whole.extend_from_slice(&((body.len() + 4) as i32).to_be_bytes());
        whole.extend_from_slice(body);
        match msg.tag {
            b'Z' => {
                let _ = ready_status(&whole);
            }
            b'C' => {
                let tag = command_tag(&whole);
                assert!(tag.len() <= body.len());
            }
            b'S' => {
                let _ = parameter_status(body);
            }
            b'K' => {
                let _ = backend_key_data(body);
            }
            b'E' | b'N' => {
                let _ = error_fields(body);
                let _ = mentions_pooler_name(&whole);
            }
            b'D' => {
                let _ = data_row(body);
            }
            b'R' => {
                let _ = auth_request(body);
            }
            _ => {}
        }
    }
});
