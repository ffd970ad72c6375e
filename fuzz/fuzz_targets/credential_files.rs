//! Files and strings that hold credentials and access rules: PgBouncer's auth_file, the
//! pg_hba.conf subset, and password secrets (plaintext, md5, SCRAM verifiers).
#![no_main]

use libfuzzer_sys::fuzz_target;
use pgcorral::auth::hba::HbaRules;
use pgcorral::auth::{userlist, ScramVerifier, Secret};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let _ = userlist::parse(&text);
    let _ = HbaRules::parse(&text);
    if let Ok(secret) = Secret::parse(&text) {
        assert!(secret.same_as(&secret));
    }
    let _ = ScramVerifier::parse(&text);
});
