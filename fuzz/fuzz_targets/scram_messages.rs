//! SCRAM-SHA-256 messages from both sides: what a client sends pgcorral (client-first,
//! client-final) and what a server sends pgcorral when it logs in (server-first,
//! server-final). A forged proof must never authenticate.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use pgcorral::auth::{ScramClient, ScramServer, ScramVerifier};

/// One iteration keeps each run cheap; the message handling does not depend on the count.
fn verifier() -> ScramVerifier {
    static V: OnceLock<ScramVerifier> = OnceLock::new();
    V.get_or_init(|| ScramVerifier::from_password("pencil", b"fuzz-salt", 1))
        .clone()
}

fuzz_target!(|data: &[u8]| {
    // The first byte says where the first message ends and the second begins.
    let Some((&n, rest)) = data.split_first() else {
        return;
    };
    let (first, second) = rest.split_at(usize::from(n).min(rest.len()));

    let mut server = ScramServer::with_nonce(verifier(), "fuzzservernonce");
    if server.client_first(first).is_ok() {
        // The fuzzer does not know the password: a final message that passes would mean
        // the proof check is broken.
        assert!(
            server.client_final(second).is_err(),
            "a client-final-message without the password was accepted"
        );
    }

    let mut client = ScramClient::with_nonce("fuzzclientnonce");
    if client.server_first(first).is_ok() {
        let _ = client.client_final_with_client_key(&[7; 32], &[9; 32]);
        let _ = client.server_final(second);
    }
});
