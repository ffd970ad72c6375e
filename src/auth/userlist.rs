//! PgBouncer's `auth_file` (`userlist.txt`): one `"user" "secret"` pair per line.
//!
//! The format, as PgBouncer reads it:
//!
//! ```text
//! ; comment               # comment too
//! "app"       "md5f3b6d8cc2ba1be5d1e0a1b2c3d4e5f60"
//! "reporting" "SCRAM-SHA-256$4096:c2FsdA==$...:..."
//! "o""brien"  "plain ""quoted"" password"   anything after the second field is ignored
//! ```
//!
//! Each field is in double quotes; `""` inside a field is one literal `"`. Blank lines and
//! lines whose first non-blank character is `;` or `#` are skipped. A secret is a plaintext
//! password, PostgreSQL's `md5<32 hex>` or a `SCRAM-SHA-256$…` verifier ([`Secret::parse`]);
//! an empty secret (`""`) means the user has no password (it may log in only where none is
//! asked). A user listed twice gets the last line's secret, as in PgBouncer.

use crate::auth::Secret;

/// One line of an auth file that does not parse. The message never quotes a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {reason}")]
pub struct UserlistError {
    /// 1-based line number.
    pub line: usize,
    /// What is wrong with it, and what the line should look like.
    pub reason: String,
}

/// One user of an auth file.
#[derive(Debug, Clone)]
pub struct UserlistEntry {
    /// 1-based line number (for messages).
    pub line: usize,
    /// The user name.
    pub user: String,
    /// Its secret; `None` for `""`.
    pub secret: Option<Secret>,
}

/// Parses the whole text of an auth file; the first bad line is the error.
pub fn parse(text: &str) -> Result<Vec<UserlistEntry>, UserlistError> {
    let mut entries = Vec::new();
    for (index, raw) in text.lines().enumerate() {
        let line = index + 1;
        let bad = |reason: String| UserlistError { line, reason };
        let rest = raw.trim_start();
        if rest.is_empty() || rest.starts_with(';') || rest.starts_with('#') {
            continue;
        }
        let (user, rest) = quoted(rest).map_err(|why| {
            bad(format!(
                "{why} for the user name; each line must be \"user\" \"secret\""
            ))
        })?;
        if user.is_empty() {
            return Err(bad("the user name is empty".into()));
        }
        let rest = rest.trim_start();
        let (secret, _ignored) = quoted(rest).map_err(|why| {
            bad(format!(
                "{why} for the secret of user \"{user}\"; each line must be \"user\" \"secret\""
            ))
        })?;
        let secret = if secret.is_empty() {
            None
        } else {
            Some(
                Secret::parse(&secret)
                    .map_err(|e| bad(format!("the secret of user \"{user}\": {e}")))?,
            )
        };
        entries.push(UserlistEntry { line, user, secret });
    }
    Ok(entries)
}

/// Reads one double-quoted field at the start of `text` (`""` is a literal quote); returns it
/// and what follows it.
fn quoted(text: &str) -> Result<(String, &str), &'static str> {
    let Some(body) = text.strip_prefix('"') else {
        return Err(if text.is_empty() {
            "nothing found where a double-quoted field was expected"
        } else {
            "expected a double quote"
        });
    };
    let mut value = String::new();
    let mut chars = body.char_indices();
    while let Some((i, c)) = chars.next() {
        if c != '"' {
            value.push(c);
            continue;
        }
        if body[i + 1..].starts_with('"') {
            value.push('"');
            chars.next();
            continue;
        }
        return Ok((value, &body[i + 1..]));
    }
    Err("the closing double quote is missing")
}

#[cfg(test)]
mod tests {
    use super::*;

    const VERIFIER: &str = "SCRAM-SHA-256$4096:lWa+BG+NdQ8/r1x99Fr6hQ==$\
        Ev3Se2IUwbgr5p0vP1GVgtuuTWenipJBUiecmTFIonQ=:V8NnRU4nkJaeoXbiXffEfH5sFTUMtW5bBjYWctqxSCI=";

    fn users(text: &str) -> Vec<(usize, String, Option<&'static str>)> {
        parse(text)
            .unwrap()
            .into_iter()
            .map(|e| {
                let kind = e.secret.as_ref().map(|s| match s {
                    Secret::Plain(_) => "plain",
                    Secret::Md5(_) => "md5",
                    Secret::Scram(_) => "scram",
                });
                (e.line, e.user, kind)
            })
            .collect()
    }

    #[test]
    fn every_line_form() {
        let text = format!(
            "; a comment\n\
             # another comment\n\
             \n   \t\n\
             \"app\" \"app-secret\"\n\
             \t \"hashed\"\t\"md53175bce1d3201d16594cebf9d7eb3f9d\"\n\
             \"scram\" \"{VERIFIER}\"\n\
             \"o\"\"brien\" \"say \"\"hi\"\"\" extra fields \"ignored\"\n\
             \"nopass\" \"\"\n\
             \"crlf\" \"x\"\r\n\
             \"tight\"\"\" \"no space needed after a field\"\n\
             \"a b\"   \"c\"\n"
        );
        assert_eq!(
            users(&text),
            vec![
                (5, "app".into(), Some("plain")),
                (6, "hashed".into(), Some("md5")),
                (7, "scram".into(), Some("scram")),
                (8, "o\"brien".into(), Some("plain")),
                (9, "nopass".into(), None),
                (10, "crlf".into(), Some("plain")),
                (11, "tight\"".into(), Some("plain")),
                (12, "a b".into(), Some("plain")),
            ]
        );
        let all = parse(&text).unwrap();
        assert!(matches!(&all[3].secret, Some(Secret::Plain(p)) if p == "say \"hi\""));
        assert!(matches!(&all[5].secret, Some(Secret::Plain(p)) if p == "x"));
        assert!(matches!(&all[7].secret, Some(Secret::Plain(p)) if p == "c"));
        assert!(parse("").unwrap().is_empty());
    }

    #[test]
    fn bad_lines_name_their_line_number() {
        let cases = [
            (
                "app \"secret\"",
                1,
                "expected a double quote for the user name",
            ),
            (
                "\n\n\"app\" secret",
                3,
                "expected a double quote for the secret of user \"app\"",
            ),
            (
                "\"app\"",
                1,
                "nothing found where a double-quoted field was expected",
            ),
            (
                "; ok\n\"app",
                2,
                "the closing double quote is missing for the user name",
            ),
            (
                "\"app\" \"secret",
                1,
                "the closing double quote is missing for the secret",
            ),
            ("\"\" \"secret\"", 1, "the user name is empty"),
            (
                "\"u\" \"x\"\n\"v\" \"SCRAM-SHA-256$4096:broken\"",
                2,
                "the secret of user \"v\": malformed authentication data",
            ),
        ];
        for (text, line, reason) in cases {
            let e = parse(text).unwrap_err();
            assert_eq!(e.line, line, "{text:?}: {e}");
            assert!(e.reason.contains(reason), "{text:?}: {e}");
            assert!(e.to_string().starts_with(&format!("line {line}: ")));
        }
    }

    #[test]
    fn errors_never_quote_secrets() {
        let e = parse("\"v\" \"SCRAM-SHA-256$4096:c2FsdA==$c2VjcmV0c2VjcmV0:c2VjcmV0\"")
            .unwrap_err()
            .to_string();
        assert!(!e.contains("c2VjcmV0"), "{e}");
        let e = parse("\"u\" \"hunter2").unwrap_err().to_string();
        assert!(!e.contains("hunter2"), "{e}");
    }

    #[test]
    fn later_lines_come_later() {
        let all = parse("\"u\" \"one\"\n\"u\" \"two\"").unwrap();
        assert_eq!(all.len(), 2);
        assert!(matches!(&all[1].secret, Some(Secret::Plain(p)) if p == "two"));
    }
}
