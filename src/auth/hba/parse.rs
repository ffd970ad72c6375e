//! Reading a pg_hba.conf-style file: PostgreSQL's tokenizer (blanks separate fields, `#`
//! starts a comment, double quotes make a keyword a plain name and `""` inside them is a
//! quote, `a,b` is a list within one field) and the checks of each field.

use std::net::IpAddr;

use super::{Address, ClientCert, ConnType, DatabasePattern, HbaMethod, HbaRule, UserPattern};

/// A line of the file that cannot be used, with what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {reason}")]
pub struct HbaError {
    /// 1-based line number.
    pub line: usize,
    /// What is wrong, and what to write instead.
    pub reason: String,
}

/// The expected shape of a line, for messages.
const SHAPE: &str = "expected TYPE DATABASE USER ADDRESS METHOD [OPTIONS], or \
                     local DATABASE USER METHOD [OPTIONS]";

/// One word of a field.
#[derive(Debug)]
struct Token {
    text: String,
    /// Any part of it was in double quotes: never a keyword.
    quoted: bool,
}

impl Token {
    /// The unquoted keyword `word`.
    fn is(&self, word: &str) -> bool {
        !self.quoted && self.text == word
    }
}

/// A field: one token, or a comma list of them.
type Field = Vec<Token>;

/// Parses the whole file.
pub(super) fn parse(text: &str) -> Result<Vec<HbaRule>, HbaError> {
    let mut rules = Vec::new();
    for (index, raw) in text.lines().enumerate() {
        let line = index + 1;
        let fields = tokenize(raw).map_err(|reason| HbaError { line, reason })?;
        if fields.is_empty() {
            continue;
        }
        rules.push(rule(line, fields).map_err(|reason| HbaError { line, reason })?);
    }
    Ok(rules)
}

fn tokenize(line: &str) -> Result<Vec<Field>, String> {
    let blank = |c: char| c == ' ' || c == '\t' || c == '\r';
    let mut fields = Vec::new();
    let mut field: Field = Vec::new();
    let mut chars = line.chars().peekable();
    loop {
        while chars.next_if(|&c| blank(c)).is_some() {}
        match chars.peek() {
            None | Some('#') if !field.is_empty() => {
                return Err("a comma list ends with a comma".into())
            }
            None | Some('#') => break,
            _ => {}
        }
        let mut token = Token {
            text: String::new(),
            quoted: false,
        };
        let mut in_quote = false;
        while let Some(&c) = chars.peek() {
            if !in_quote && (blank(c) || c == ',' || c == '#') {
                break;
            }
            chars.next();
            if c != '"' {
                token.text.push(c);
            } else if in_quote && chars.next_if_eq(&'"').is_some() {
                token.text.push('"');
            } else {
                in_quote = !in_quote;
                token.quoted = true;
            }
        }
        if in_quote {
            return Err("a double-quoted string is not closed".into());
        }
        if token.text.is_empty() && !token.quoted {
            return Err("a comma list has an empty item".into());
        }
        field.push(token);
        if chars.next_if_eq(&',').is_none() {
            fields.push(std::mem::take(&mut field));
        }
    }
    Ok(fields)
}

fn rule(line: usize, fields: Vec<Field>) -> Result<HbaRule, String> {
    let mut fields = fields.into_iter();
    let conn_field = fields.next().unwrap_or_default();
    let conn_word = single(&conn_field, "the connection type")?;
    let conn = match conn_word {
        "local" => ConnType::Local,
        "host" => ConnType::Host,
        "hostssl" => ConnType::HostSsl,
        "hostnossl" => ConnType::HostNoSsl,
        "hostgssenc" => ConnType::HostGssEnc,
        "hostnogssenc" => ConnType::HostNoGssEnc,
        other => {
            return Err(format!(
                "unknown connection type \"{other}\" (expected local, host, hostssl, \
                 hostnossl, hostgssenc or hostnogssenc)"
            ))
        }
    };
    let databases = fields
        .next()
        .ok_or_else(|| format!("the database field is missing; {SHAPE}"))?
        .iter()
        .map(database)
        .collect::<Result<Vec<_>, _>>()?;
    let users = fields
        .next()
        .ok_or_else(|| format!("the user field is missing; {SHAPE}"))?
        .iter()
        .map(user)
        .collect::<Result<Vec<_>, _>>()?;
    let address = if conn == ConnType::Local {
        None
    } else {
        let field = fields
            .next()
            .ok_or_else(|| format!("the address field is missing; {SHAPE}"))?;
        let text = single(&field, "the address")?;
        Some(match text.parse::<IpAddr>() {
            // An address without a prefix length: the next field is its mask.
            Ok(addr) => {
                let mask = fields.next().ok_or_else(|| {
                    format!(
                        "the address {addr} needs a prefix length ({addr}/32) or a mask in the \
                         next field (such as 255.255.255.255); {SHAPE}"
                    )
                })?;
                with_mask(addr, single(&mask, "the mask")?)?
            }
            Err(_) => address(&field[0])?,
        })
    };
    let method_field = fields
        .next()
        .ok_or_else(|| format!("the authentication method is missing; {SHAPE}"))?;
    let method = method(single(&method_field, "the authentication method")?)?;
    let mut clientcert = None;
    for option in fields {
        let text = single(&option, "an option")?;
        let (name, value) = text.split_once('=').ok_or_else(|| {
            format!("expected an option of the form name=value, found \"{text}\"")
        })?;
        match name {
            "clientcert" => {
                clientcert = Some(match value {
                    "verify-ca" => ClientCert::VerifyCa,
                    "verify-full" => ClientCert::VerifyFull,
                    other => {
                        return Err(format!(
                            "clientcert must be verify-ca or verify-full, found \"{other}\""
                        ))
                    }
                })
            }
            other => {
                return Err(format!(
                    "the option \"{other}\" is not supported by pgcorral (only clientcert is)"
                ))
            }
        }
    }
    if method == HbaMethod::Cert && conn != ConnType::HostSsl {
        return Err("the cert method is only supported on hostssl lines".into());
    }
    if clientcert.is_some() && conn != ConnType::HostSsl {
        return Err("clientcert is only supported on hostssl lines".into());
    }
    if method == HbaMethod::Cert && clientcert == Some(ClientCert::VerifyCa) {
        return Err(
            "clientcert=verify-ca cannot be used with the cert method (cert always checks that \
             the certificate's common name is the user name)"
                .into(),
        );
    }
    Ok(HbaRule {
        line,
        conn,
        databases,
        users,
        address,
        method,
        clientcert,
    })
}

/// The field's only word, unquoted.
fn single<'a>(field: &'a [Token], what: &str) -> Result<&'a str, String> {
    match field {
        [t] if !t.quoted => Ok(&t.text),
        [t] => Err(format!("{what} must not be quoted, found \"{}\"", t.text)),
        _ => Err(format!("{what} must be a single word, not a comma list")),
    }
}

fn database(t: &Token) -> Result<DatabasePattern, String> {
    if t.quoted {
        return Ok(DatabasePattern::Name(t.text.clone()));
    }
    Ok(match t.text.as_str() {
        "all" => DatabasePattern::All,
        "sameuser" => DatabasePattern::SameUser,
        "replication" => DatabasePattern::Replication,
        "samerole" | "samegroup" => {
            return Err(format!(
                "the database keyword \"{}\" (role membership) is not supported by pgcorral; \
                 list the databases",
                t.text
            ))
        }
        _ => DatabasePattern::Name(plain_name(t, "database")?),
    })
}

fn user(t: &Token) -> Result<UserPattern, String> {
    if t.quoted {
        return Ok(UserPattern::Name(t.text.clone()));
    }
    if t.text == "all" {
        return Ok(UserPattern::All);
    }
    if t.text.starts_with('+') {
        return Err(format!(
            "group membership (\"{}\") is not supported by pgcorral; list the users",
            t.text
        ));
    }
    Ok(UserPattern::Name(plain_name(t, "user")?))
}

/// An unquoted name that is not one of PostgreSQL's special forms pgcorral cannot honour.
fn plain_name(t: &Token, what: &str) -> Result<String, String> {
    if t.text.starts_with('@') {
        return Err(format!(
            "file inclusion (\"{}\") is not supported by pgcorral; list the names in the line",
            t.text
        ));
    }
    if t.text.starts_with('/') {
        return Err(format!(
            "regular expressions (\"{}\") are not supported by pgcorral; list the {what} names, \
             or quote the name if it really starts with /",
            t.text
        ));
    }
    Ok(t.text.clone())
}

/// `all`, or `address/prefix`.
fn address(t: &Token) -> Result<Address, String> {
    let text = t.text.as_str();
    if t.is("all") {
        return Ok(Address::All);
    }
    if t.is("samehost") || t.is("samenet") {
        return Err(format!(
            "the address keyword \"{text}\" is not supported by pgcorral; give the addresses \
             (such as 127.0.0.1/32)"
        ));
    }
    let Some((addr, prefix)) = text.split_once('/') else {
        return Err(format!(
            "host names (\"{text}\") are not supported by pgcorral; give an address with a \
             prefix length (such as 10.0.0.0/8), an address and a mask, or all"
        ));
    };
    let addr: IpAddr = addr
        .parse()
        .map_err(|_| format!("\"{addr}\" in \"{text}\" is not an IPv4 or IPv6 address"))?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let bad_prefix = || format!("the prefix length in \"{text}\" must be a number from 0 to {max}");
    let prefix: u32 = prefix.parse().map_err(|_| bad_prefix())?;
    if prefix > max {
        return Err(bad_prefix());
    }
    Ok(match addr {
        IpAddr::V4(a) => Address::V4 {
            net: a.into(),
            mask: u32::MAX.checked_shl(32 - prefix).unwrap_or(0),
        },
        IpAddr::V6(a) => Address::V6 {
            net: a.into(),
            mask: u128::MAX.checked_shl(128 - prefix).unwrap_or(0),
        },
    })
}

/// `address mask` (two fields).
fn with_mask(addr: IpAddr, mask: &str) -> Result<Address, String> {
    let bad = || format!("\"{mask}\" is not a mask for the address {addr}");
    match (addr, mask.parse::<IpAddr>().map_err(|_| bad())?) {
        (IpAddr::V4(a), IpAddr::V4(m)) => Ok(Address::V4 {
            net: a.into(),
            mask: m.into(),
        }),
        (IpAddr::V6(a), IpAddr::V6(m)) => Ok(Address::V6 {
            net: a.into(),
            mask: m.into(),
        }),
        _ => Err(format!(
            "the mask {mask} and the address {addr} are not of the same IP version"
        )),
    }
}

fn method(word: &str) -> Result<HbaMethod, String> {
    Ok(match word {
        "trust" => HbaMethod::Trust,
        "reject" => HbaMethod::Reject,
        "md5" => HbaMethod::Md5,
        "scram-sha-256" => HbaMethod::ScramSha256,
        "password" => HbaMethod::Password,
        "cert" => HbaMethod::Cert,
        "ident" | "peer" | "gss" | "sspi" | "pam" | "ldap" | "radius" | "bsd" => {
            return Err(format!(
                "the authentication method \"{word}\" is not supported by pgcorral (supported: \
                 trust, reject, md5, scram-sha-256, password, cert)"
            ))
        }
        other => {
            return Err(format!(
                "unknown authentication method \"{other}\" (supported: trust, reject, md5, \
                 scram-sha-256, password, cert)"
            ))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::super::HbaRules;
    use super::*;

    fn error(text: &str) -> HbaError {
        HbaRules::parse(text).unwrap_err()
    }

    #[test]
    fn every_line_form_parses() {
        let text = "\
            # TYPE  DATABASE  USER  ADDRESS  METHOD\n\
            \n\
            local   all       all                     trust   # trailing comment\n\
            host    all       all   127.0.0.1/32      md5\n\
            host    all       all   ::1/128           scram-sha-256\n\
            host    all       all   10.0.0.0 255.0.0.0 password\n\
            host    all       all   all               reject\n\
            hostssl all       all   all               cert\n\
            hostssl all       all   all               md5 clientcert=verify-ca\n\
            hostssl all       all   all               md5 clientcert=verify-full\n\
            hostnossl sameuser all  0.0.0.0/0         trust\n\
            hostgssenc all    all   all               trust\n\
            hostnogssenc all  all   all               trust\n\
            host    a,b,c     x, y  all               trust\n\
            host  \"we\"\"ird, db\"  \"all\" all trust\n\
            \thost\treplication\tall\tall\ttrust\r\n";
        let rules = HbaRules::parse(text).unwrap();
        let lines: Vec<usize> = rules.rules().iter().map(|r| r.line).collect();
        assert_eq!(lines, vec![3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16]);
        let r = &rules.rules()[11];
        assert_eq!(
            r.databases,
            vec![
                DatabasePattern::Name("a".into()),
                DatabasePattern::Name("b".into()),
                DatabasePattern::Name("c".into())
            ]
        );
        assert_eq!(
            r.users,
            vec![UserPattern::Name("x".into()), UserPattern::Name("y".into())]
        );
        let r = &rules.rules()[12];
        assert_eq!(
            r.databases,
            vec![DatabasePattern::Name("we\"ird, db".into())]
        );
        assert_eq!(r.users, vec![UserPattern::Name("all".into())]);
        assert_eq!(rules.rules()[0].address, None);
        assert_eq!(
            rules.rules()[3].address,
            Some(Address::V4 {
                net: 0x0a00_0000,
                mask: 0xff00_0000
            })
        );
        assert_eq!(rules.rules()[7].clientcert, Some(ClientCert::VerifyFull));
    }

    #[test]
    fn bad_lines_name_their_line_number() {
        let cases: &[(&str, usize, &str)] = &[
            (
                "hots all all all trust",
                1,
                "unknown connection type \"hots\"",
            ),
            ("\n\nhost", 3, "the database field is missing"),
            ("host all", 1, "the user field is missing"),
            ("host all all", 1, "the address field is missing"),
            (
                "host all all all",
                1,
                "the authentication method is missing",
            ),
            ("local all all", 1, "the authentication method is missing"),
            ("host all all 127.0.0.1 md5", 1, "\"md5\" is not a mask"),
            ("host all all 127.0.0.1", 1, "needs a prefix length"),
            (
                "host all all 127.0.0.1 ffff:: md5",
                1,
                "not of the same IP version",
            ),
            ("host all all 127.0.0.1/33 md5", 1, "from 0 to 32"),
            ("host all all ::1/129 md5", 1, "from 0 to 128"),
            ("host all all 127.0.0.1/x md5", 1, "from 0 to 32"),
            (
                "host all all 300.0.0.1/8 md5",
                1,
                "is not an IPv4 or IPv6 address",
            ),
            (
                "host all all db.example.com md5",
                1,
                "host names (\"db.example.com\")",
            ),
            ("host all all .example.com md5", 1, "host names"),
            (
                "host all all samenet md5",
                1,
                "\"samenet\" is not supported",
            ),
            (
                "host all all samehost md5",
                1,
                "\"samehost\" is not supported",
            ),
            (
                "host all all all ldap",
                1,
                "\"ldap\" is not supported by pgcorral",
            ),
            ("host all all all ident", 1, "\"ident\" is not supported"),
            (
                "host all all all md4",
                1,
                "unknown authentication method \"md4\"",
            ),
            (
                "host all all all trust map=x",
                1,
                "\"map\" is not supported",
            ),
            ("host all all all trust junk", 1, "name=value"),
            (
                "hostssl all all all md5 clientcert=1",
                1,
                "verify-ca or verify-full",
            ),
            (
                "host all all all md5 clientcert=verify-ca",
                1,
                "only supported on hostssl",
            ),
            (
                "host all all all cert",
                1,
                "cert method is only supported on hostssl",
            ),
            (
                "hostssl all all all cert clientcert=verify-ca",
                1,
                "cannot be used with the cert",
            ),
            (
                "host @dbs.txt all all trust",
                1,
                "file inclusion (\"@dbs.txt\")",
            ),
            (
                "host all @users all trust",
                1,
                "file inclusion (\"@users\")",
            ),
            (
                "host all +admins all trust",
                1,
                "group membership (\"+admins\")",
            ),
            (
                "host samerole all all trust",
                1,
                "\"samerole\" (role membership)",
            ),
            (
                "host /^db all all trust",
                1,
                "regular expressions (\"/^db\")",
            ),
            ("host all /^u all trust", 1, "regular expressions"),
            (
                "host all \"all all all trust",
                1,
                "double-quoted string is not closed",
            ),
            (
                "host all all 127.0.0.1/32,::1/128 trust",
                1,
                "must be a single word",
            ),
            ("host a,,b all all trust", 1, "empty item"),
            ("host a ,b all all trust", 1, "empty item"),
            ("host all all all trust,", 1, "ends with a comma"),
            ("host all all, # x", 1, "ends with a comma"),
            ("host,local all all all trust", 1, "must be a single word"),
            ("\"host\" all all all trust", 1, "must not be quoted"),
            ("host all all all \"trust\"", 1, "must not be quoted"),
            (
                "host all all \"127.0.0.1/32\" trust",
                1,
                "must not be quoted",
            ),
        ];
        for (text, line, reason) in cases {
            let e = error(text);
            assert_eq!(e.line, *line, "{text:?}: {e}");
            assert!(e.reason.contains(reason), "{text:?}: {e}");
            assert!(e.to_string().starts_with(&format!("line {line}: ")), "{e}");
        }
        // The first bad line is reported even after good ones.
        let e = error("host all all all trust\n# fine\nhost all all all nope\n");
        assert_eq!(e.line, 3);
    }

    #[test]
    fn quoted_special_names_are_plain_names() {
        let rules =
            HbaRules::parse("host \"@x\",\"/y\",\"sameuser\" \"+g\",\"@u\" all trust").unwrap();
        let r = &rules.rules()[0];
        assert_eq!(
            r.databases,
            vec![
                DatabasePattern::Name("@x".into()),
                DatabasePattern::Name("/y".into()),
                DatabasePattern::Name("sameuser".into())
            ]
        );
        assert_eq!(
            r.users,
            vec![
                UserPattern::Name("+g".into()),
                UserPattern::Name("@u".into())
            ]
        );
    }
}
