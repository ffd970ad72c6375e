//! Admin console commands, as PgBouncer's console accepts them (case-insensitive, optional
//! trailing semicolon).

use std::fmt;

/// What `SHOW` can show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShowWhat {
    Pools,
    Clients,
    Servers,
    Stats,
    StatsTotals,
    StatsAverages,
    Databases,
    Users,
    Lists,
    Config,
    Version,
    State,
    Bans,
    /// Named prepared statement work per pool (transaction pooling).
    PreparedStatements,
    /// Server connections pinned to clients by session state, per pool and reason.
    Pins,
    Help,
}

impl ShowWhat {
    const ALL: &'static [(&'static str, ShowWhat)] = &[
        ("POOLS", ShowWhat::Pools),
        ("CLIENTS", ShowWhat::Clients),
        ("SERVERS", ShowWhat::Servers),
        ("STATS", ShowWhat::Stats),
        ("STATS_TOTALS", ShowWhat::StatsTotals),
        ("STATS_AVERAGES", ShowWhat::StatsAverages),
        ("DATABASES", ShowWhat::Databases),
        ("USERS", ShowWhat::Users),
        ("LISTS", ShowWhat::Lists),
        ("CONFIG", ShowWhat::Config),
        ("VERSION", ShowWhat::Version),
        ("STATE", ShowWhat::State),
        ("BANS", ShowWhat::Bans),
        ("PREPARED_STATEMENTS", ShowWhat::PreparedStatements),
        ("PINS", ShowWhat::Pins),
        ("HELP", ShowWhat::Help),
    ];

    fn parse(word: &str) -> Option<ShowWhat> {
        Self::ALL
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(word))
            .map(|(_, w)| *w)
    }
}

/// A parsed admin command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdminCommand {
    Show(ShowWhat),
    Reload,
    Pause(Option<String>),
    Resume(Option<String>),
    Disable(String),
    Enable(String),
    Reconnect(Option<String>),
    Kill(String),
    Shutdown,
    Ban {
        server: String,
        seconds: Option<u64>,
    },
    Unban {
        server: String,
    },
    Set {
        key: String,
        value: String,
    },
}

impl AdminCommand {
    /// Whether a `stats_users` member may run it (only SHOW).
    pub fn read_only(&self) -> bool {
        matches!(self, AdminCommand::Show(_))
    }
}

/// A command the console does not understand.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminParseError(pub String);

impl fmt::Display for AdminParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid command '{}', use SHOW HELP;", self.0)
    }
}

/// The lines of `SHOW HELP`.
pub const HELP: &[&str] = &[
    "SHOW HELP|CONFIG|DATABASES|POOLS|CLIENTS|SERVERS|USERS|VERSION|STATE|BANS",
    "SHOW PREPARED_STATEMENTS|PINS",
    "SHOW LISTS|STATS|STATS_TOTALS|STATS_AVERAGES",
    "SET key = arg",
    "RELOAD",
    "PAUSE [<db>]",
    "RESUME [<db>]",
    "DISABLE <db>",
    "ENABLE <db>",
    "RECONNECT [<db>]",
    "KILL <db>",
    "SHUTDOWN",
    "BAN <host:port> [<seconds>]",
    "UNBAN <host:port>",
];

/// Parses one console command.
pub fn parse_command(sql: &str) -> Result<AdminCommand, AdminParseError> {
    let text = sql.trim().trim_end_matches(';').trim();
    let bad = || AdminParseError(text.to_owned());
    let words: Vec<&str> = text.split_whitespace().collect();
    let upper = words
        .first()
        .map(|w| w.to_ascii_uppercase())
        .unwrap_or_default();
    let arg = |i: usize| words.get(i).map(|w| unquote(w).to_owned());
    let no_more = |n: usize| words.len() <= n;
    let cmd = match upper.as_str() {
        "SHOW" if words.len() == 2 => {
            AdminCommand::Show(ShowWhat::parse(words[1]).ok_or_else(bad)?)
        }
        "RELOAD" if no_more(1) => AdminCommand::Reload,
        "SHUTDOWN" if no_more(1) => AdminCommand::Shutdown,
        "PAUSE" if no_more(2) => AdminCommand::Pause(arg(1)),
        "RESUME" if no_more(2) => AdminCommand::Resume(arg(1)),
        "RECONNECT" if no_more(2) => AdminCommand::Reconnect(arg(1)),
        "DISABLE" if words.len() == 2 => AdminCommand::Disable(arg(1).ok_or_else(bad)?),
        "ENABLE" if words.len() == 2 => AdminCommand::Enable(arg(1).ok_or_else(bad)?),
        "KILL" if words.len() == 2 => AdminCommand::Kill(arg(1).ok_or_else(bad)?),
        "BAN" if (2..=3).contains(&words.len()) => AdminCommand::Ban {
            server: arg(1).ok_or_else(bad)?,
            seconds: match words.get(2) {
                Some(s) => Some(s.parse().map_err(|_| bad())?),
                None => None,
            },
        },
        "UNBAN" if words.len() == 2 => AdminCommand::Unban {
            server: arg(1).ok_or_else(bad)?,
        },
        "SET" => {
            let rest = text[3..].trim();
            let (key, value) = rest
                .split_once('=')
                .or_else(|| {
                    rest.split_once(|c: char| c.is_whitespace())
                        .filter(|(_, v)| v.trim_start().to_ascii_uppercase().starts_with("TO "))
                })
                .ok_or_else(bad)?;
            let value = value.trim();
            let value = value
                .strip_prefix("TO ")
                .or_else(|| value.strip_prefix("to "))
                .unwrap_or(value)
                .trim();
            let key = key.trim();
            if key.is_empty() || value.is_empty() {
                return Err(bad());
            }
            AdminCommand::Set {
                key: key.to_ascii_lowercase(),
                value: unquote(value).to_owned(),
            }
        }
        _ => return Err(bad()),
    };
    Ok(cmd)
}

fn unquote(v: &str) -> &str {
    v.strip_prefix('\'')
        .and_then(|v| v.strip_suffix('\''))
        .or_else(|| v.strip_prefix('"').and_then(|v| v.strip_suffix('"')))
        .unwrap_or(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_commands() {
        assert_eq!(
            parse_command("show pools;"),
            Ok(AdminCommand::Show(ShowWhat::Pools))
        );
        assert_eq!(
            parse_command("SHOW STATS_TOTALS"),
            Ok(AdminCommand::Show(ShowWhat::StatsTotals))
        );
        assert_eq!(parse_command("PAUSE"), Ok(AdminCommand::Pause(None)));
        assert_eq!(
            parse_command("pause app"),
            Ok(AdminCommand::Pause(Some("app".into())))
        );
        assert_eq!(
            parse_command("RESUME 'app';"),
            Ok(AdminCommand::Resume(Some("app".into())))
        );
        assert_eq!(
            parse_command("BAN 10.0.0.2:5432 30"),
            Ok(AdminCommand::Ban {
                server: "10.0.0.2:5432".into(),
                seconds: Some(30)
            })
        );
        assert_eq!(
            parse_command("SET query_wait_timeout = '5s'"),
            Ok(AdminCommand::Set {
                key: "query_wait_timeout".into(),
                value: "5s".into()
            })
        );
        assert_eq!(parse_command("reload"), Ok(AdminCommand::Reload));
    }

    #[test]
    fn refuses_what_it_does_not_know() {
        for bad in [
            "SHOW NOPE",
            "SELECT 1",
            "",
            "PAUSE a b",
            "KILL",
            "BAN x y",
            "SET x",
        ] {
            let e = parse_command(bad).unwrap_err();
            assert!(e.to_string().contains("use SHOW HELP"), "{bad}: {e}");
        }
        assert!(!AdminCommand::Reload.read_only());
        assert!(AdminCommand::Show(ShowWhat::Pools).read_only());
    }
}
