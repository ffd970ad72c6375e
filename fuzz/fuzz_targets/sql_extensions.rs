//! The SQL the pooler reads on client connections: PgCat's extensions (SET SHARDING KEY,
//! SET SHARD, SET SERVER ROLE, SHOW SHARD…), comment hints, the session-state lexer and the
//! admin console's command parser.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pgcorral::admin::parse_command;
use pgcorral::route::{parse_extension, parse_hint, RoleSetting};
use pgcorral::session::prepared::is_deallocate_all;
use pgcorral::session::state::{effects, may_have_effects};

fuzz_target!(|data: &[u8]| {
    let sql = String::from_utf8_lossy(data);
    let _ = parse_extension(&sql);
    let _ = parse_hint(&sql);
    let _ = RoleSetting::parse(&sql);
    let _ = is_deallocate_all(&sql);
    let found = effects(&sql);
    // The cheap pre-check must never hide a statement that has session effects.
    if !found.is_empty() {
        assert!(
            may_have_effects(&sql),
            "pre-check missed effects {found:?} in {sql:?}"
        );
    }
    let _ = parse_command(&sql);
});
