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
    /// A `SET SERVER ROLE` with a value that is not a role.
    BadServerRole(String),
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
    let text = text.trim_end().trim_end_matches(';').trim_end();
    let words: Vec<&str> = text.split_whitespace().collect();
    let eq = |w: &str, k: &str| w.eq_ignore_ascii_case(k);
    match words.as_slice() {
        [show, server, role] if eq(show, "SHOW") && eq(server, "SERVER") && eq(role, "ROLE") => {
            Some(Extension::ShowServerRole)
        }
        [set, server, role, to, value]
            if eq(set, "SET")
                && eq(server, "SERVER")
                && eq(role, "ROLE")
                && (eq(to, "TO") || *to == "=") =>
        {
            let value = unquote(value);
            Some(match RoleSetting::parse(value) {
                Some(r) => Extension::SetServerRole(r),
                None => Extension::BadServerRole(value.to_owned()),
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
            Some(Extension::BadServerRole("leader".into()))
        );
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
