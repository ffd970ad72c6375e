//! SQL extensions understood on client connections (compatible with PgCat), recognised in a
//! simple Query before it would go to a server.

use super::role::RoleSetting;

/// A recognised extension statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Extension {
    /// `SET SERVER ROLE TO 'primary' | 'replica' | 'any' | 'auto'`
    SetServerRole(RoleSetting),
    /// `SHOW SERVER ROLE`
    ShowServerRole,
    /// `SET SHARDING KEY TO '<bigint>'`
    SetShardingKey(i64),
    /// `SET SHARD TO '<n>'` / `SET SHARD TO 'any'`
    SetShard(ShardSetting),
    /// `SHOW SHARD`
    ShowShard,
    /// A known extension with a value it cannot take: (what, value).
    BadValue(&'static str, String),
}

/// Which shard a client asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShardSetting {
    Index(usize),
    Key(i64),
    Any,
}

/// Statements longer than this are never extensions (keeps the common path to one check).
const MAX_EXTENSION_LEN: usize = 128;

/// Recognises an extension in the text of a simple Query, case-insensitively, with an
/// optional trailing semicolon. Everything else (the common case) returns None after looking
/// at the first letter.
pub fn parse_extension(sql: &str) -> Option<Extension> {
    let text = sql.trim_start();
    match text.as_bytes().first() {
        Some(b's' | b'S') if text.len() <= MAX_EXTENSION_LEN => {}
        _ => return None,
    }
    let eq = |w: &str, k: &str| w.eq_ignore_ascii_case(k);
    // Most queries start with SELECT: decide on the leading letters before splitting the rest.
    let letters = text.bytes().take_while(u8::is_ascii_alphabetic).count();
    let first = &text[..letters];
    if !eq(first, "SET") && !eq(first, "SHOW") {
        return None;
    }
    let text = text.trim_end().trim_end_matches(';').trim_end();
    let words: Vec<&str> = text.split_whitespace().collect();
    let is_to = |w: &str| eq(w, "TO") || w == "=";
    match words.as_slice() {
        [show, server, role] if eq(show, "SHOW") && eq(server, "SERVER") && eq(role, "ROLE") => {
            Some(Extension::ShowServerRole)
        }
        [show, shard] if eq(show, "SHOW") && eq(shard, "SHARD") => Some(Extension::ShowShard),
        [set, server, role, to, value]
            if eq(set, "SET") && eq(server, "SERVER") && eq(role, "ROLE") && is_to(to) =>
        {
            let value = unquote(value);
            Some(match RoleSetting::parse(value) {
                Some(r) => Extension::SetServerRole(r),
                None => Extension::BadValue("server role", value.to_owned()),
            })
        }
        [set, sharding, key, to, value]
            if eq(set, "SET") && eq(sharding, "SHARDING") && eq(key, "KEY") && is_to(to) =>
        {
            let value = unquote(value);
            Some(match value.parse::<i64>() {
                Ok(k) => Extension::SetShardingKey(k),
                Err(_) => Extension::BadValue("sharding key", value.to_owned()),
            })
        }
        [set, shard, to, value] if eq(set, "SET") && eq(shard, "SHARD") && is_to(to) => {
            let value = unquote(value);
            Some(if value.eq_ignore_ascii_case("any") {
                Extension::SetShard(ShardSetting::Any)
            } else {
                match value.parse::<usize>() {
                    Ok(n) => Extension::SetShard(ShardSetting::Index(n)),
                    Err(_) => Extension::BadValue("shard", value.to_owned()),
                }
            })
        }
        _ => None,
    }
}

fn unquote(v: &str) -> &str {
    v.strip_prefix('\'')
        .and_then(|v| v.strip_suffix('\''))
        .unwrap_or(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_server_role_statements() {
        assert_eq!(
            parse_extension("SET SERVER ROLE TO 'replica'"),
            Some(Extension::SetServerRole(RoleSetting::Replica))
        );
        assert_eq!(
            parse_extension("  set server role = primary ;"),
            Some(Extension::SetServerRole(RoleSetting::Primary))
        );
        assert_eq!(
            parse_extension("SET SERVER ROLE TO 'auto';"),
            Some(Extension::SetServerRole(RoleSetting::Auto))
        );
        assert_eq!(
            parse_extension("show server role"),
            Some(Extension::ShowServerRole)
        );
        assert_eq!(
            parse_extension("SET SERVER ROLE TO 'leader'"),
            Some(Extension::BadValue("server role", "leader".into()))
        );
    }

    #[test]
    fn recognises_shard_statements() {
        assert_eq!(
            parse_extension("SET SHARDING KEY TO '-1234'"),
            Some(Extension::SetShardingKey(-1234))
        );
        assert_eq!(
            parse_extension("set sharding key = 99;"),
            Some(Extension::SetShardingKey(99))
        );
        assert_eq!(
            parse_extension("SET SHARD TO '2'"),
            Some(Extension::SetShard(ShardSetting::Index(2)))
        );
        assert_eq!(
            parse_extension("SET SHARD TO 'ANY'"),
            Some(Extension::SetShard(ShardSetting::Any))
        );
        assert_eq!(
            parse_extension("  SHOW   SHARD ; "),
            Some(Extension::ShowShard)
        );
        assert_eq!(
            parse_extension("SET SHARDING KEY TO 'abc'"),
            Some(Extension::BadValue("sharding key", "abc".into()))
        );
        assert_eq!(
            parse_extension("SET SHARD TO '-1'"),
            Some(Extension::BadValue("shard", "-1".into()))
        );
        assert_eq!(parse_extension("SET shard_setting TO 1"), None);
    }

    #[test]
    fn leaves_ordinary_sql_alone() {
        for sql in [
            "SELECT 1",
            "SET search_path TO app",
            "SHOW server_version",
            "SET SERVER ROLE TO",
            "",
            "select 'SET SERVER ROLE TO primary'",
        ] {
            assert_eq!(parse_extension(sql), None, "{sql}");
        }
    }
}
