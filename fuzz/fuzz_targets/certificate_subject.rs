//! The DER reader that takes the common name out of a client certificate (for hba's `cert`
//! method and SHOW CLIENTS).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = pgcorral::tls::common_name(data);
});
