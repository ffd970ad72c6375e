//! Client-to-server messages: the codec and the streaming scanner must agree on message
//! boundaries however the bytes are split, and every frontend inspector must take any body.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use pgcorral::protocol::builder::{parse_password, parse_sasl_initial_response};
use pgcorral::protocol::frontend::{bind_message, parse_message};
use pgcorral::protocol::scanner::Verdict;
use pgcorral::protocol::{MessageCodec, Scanner};
use pgcorral::route::{parse_extension, parse_hint};
use pgcorral::session::prepared::{is_deallocate_all, names_statement};
use pgcorral::session::state::{effects, may_have_effects};
use tokio_util::codec::Decoder;

/// Small enough that the fuzzer reaches the too-long path with short inputs.
const MAX_LEN: usize = 4096;

fuzz_target!(|data: &[u8]| {
    // The first byte chooses where the stream is split in two reads.
    let Some((&split, stream)) = data.split_first() else {
        return;
    };
    let split = usize::from(split).min(stream.len());

    let codec_tags = decode_all(stream);
    let scanner_tags = scan_all(stream, split);
    // Both stop at the same malformed header, and see the same whole messages before it.
    assert_eq!(codec_tags, scanner_tags, "codec and scanner disagree");
});

/// Whole messages the codec decodes (tags), and whether it stopped on an error.
fn decode_all(stream: &[u8]) -> (Vec<u8>, bool) {
    let mut codec = MessageCodec::new(MAX_LEN);
    let mut buf = BytesMut::from(stream);
    let mut tags = Vec::new();
    loop {
        match codec.decode(&mut buf) {
            Ok(Some(msg)) => {
                inspect(msg.tag, &msg.body);
                tags.push(msg.tag);
            }
            Ok(None) => return (tags, false),
            Err(_) => return (tags, true),
        }
    }
}

/// The same stream through the scanner in two reads, the second appended to what the first
/// left unforwarded (as the client actor's read buffer does).
fn scan_all(stream: &[u8], split: usize) -> (Vec<u8>, bool) {
    let mut scanner = Scanner::new(MAX_LEN);
    let mut tags = Vec::new();
    let mut pending: Vec<u8> = Vec::new();
    for chunk in [&stream[..split], &stream[split..]] {
        pending.extend_from_slice(chunk);
        let scan = scanner.scan(
            &pending,
            |_| true,
            |tag, msg| {
                assert!(
                    msg.len() >= 5,
                    "scanner showed a message shorter than its header"
                );
                tags.push(tag);
                Verdict::Forward
            },
        );
        match scan {
            Ok(scan) => {
                assert!(scan.forward <= pending.len());
                pending.drain(..scan.forward);
            }
            Err(_) => return (tags, true),
        }
    }
    (tags, false)
}

/// Everything the pooler reads out of a client message.
fn inspect(tag: u8, body: &[u8]) {
    let mut whole = Vec::with_capacity(body.len() + 5);
    whole.push(tag);
    whole.extend_from_slice(&((body.len() + 4) as i32).to_be_bytes());
    whole.extend_from_slice(body);
    let _ = names_statement(tag, &whole);
    match tag {
        b'Q' => {
            if let Ok(sql) = std::str::from_utf8(body.strip_suffix(&[0]).unwrap_or(body)) {
                let _ = parse_extension(sql);
                let _ = parse_hint(sql);
                let _ = is_deallocate_all(sql);
                if may_have_effects(sql) {
                    let _ = effects(sql);
                }
            }
        }
        b'P' => {
            if let Ok((_, sql)) = parse_message(body) {
                let _ = parse_hint(sql);
            }
        }
        b'B' => {
            if let Ok((_, params)) = bind_message(body) {
                for p in &params {
                    let _ = p.as_i64();
                }
            }
        }
        b'p' => {
            let _ = parse_sasl_initial_response(body);
            let _ = parse_password(body);
        }
        _ => {}
    }
}
