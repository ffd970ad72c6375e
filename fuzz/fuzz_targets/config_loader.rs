//! The config loader: any TOML text (and environment overrides) either loads into a valid
//! config or gives an error naming the key; it never panics.
#![no_main]

use std::collections::HashMap;

use libfuzzer_sys::fuzz_target;
use pgcorral::config::load_str;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // A line starting with "#env " is taken as one override, KEY=VALUE.
    let mut env = HashMap::new();
    for line in text.lines() {
        if let Some((k, v)) = line.strip_prefix("#env ").and_then(|l| l.split_once('=')) {
            env.insert(k.to_owned(), v.to_owned());
        }
    }
    let _ = load_str(text, &env);
});
