//! Session parameters: what a client asked for at startup, what a server connection has,
//! and the SET/RESET that makes a server match its client before a transaction runs.

use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Parameters the server reports with ParameterStatus that a client may change and that
/// must follow the client from server connection to server connection.
pub const TRACKED_REPORTED: &[&str] = &[
    "client_encoding",
    "datestyle",
    "timezone",
    "intervalstyle",
    "standard_conforming_strings",
    "application_name",
];

/// Startup parameters that are not settings.
const NOT_SETTINGS: &[&str] = &["user", "database", "options", "replication"];

/// A small case-insensitive map of setting name to value, in insertion order.
///
/// Sessions carry a handful of settings, so a vector beats a hash map here.
#[derive(Debug, Clone, Default)]
pub struct ParamSet {
    /// (lowercase key, name as first spelled, value)
    entries: Vec<(String, String, String)>,
    /// Names this content: every change takes a new stamp from a process-wide counter and a
    /// clone keeps it, so equal stamps mean equal contents (the empty set is 0). Lets a
    /// server connection skip comparing settings it already compared.
    stamp: u64,
}

/// Where ParamSet stamps come from.
static NEXT_STAMP: AtomicU64 = AtomicU64::new(1);

impl PartialEq for ParamSet {
    fn eq(&self, other: &Self) -> bool {
        self.entries == other.entries
    }
}

impl Eq for ParamSet {}

impl ParamSet {
    pub fn new() -> Self {
        ParamSet::default()
    }

    fn find(&self, name: &str) -> Option<usize> {
        self.entries
            .iter()
            .position(|(k, _, _)| k.eq_ignore_ascii_case(name))
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.find(name).map(|i| self.entries[i].2.as_str())
    }

    pub fn set(&mut self, name: &str, value: &str) {
        match self.find(name) {
            Some(i) => {
                if self.entries[i].2 != value {
                    self.entries[i].2 = value.to_owned();
                    self.restamp();
                }
            }
            None => {
                self.entries
                    .push((name.to_ascii_lowercase(), name.to_owned(), value.to_owned()));
                self.restamp();
            }
        }
    }

    pub fn remove(&mut self, name: &str) {
        if let Some(i) = self.find(name) {
            self.entries.remove(i);
            self.restamp();
        }
    }

    /// This content's stamp: equal stamps mean equal contents.
    pub fn stamp(&self) -> u64 {
        self.stamp
    }

    fn restamp(&mut self) {
        self.stamp = NEXT_STAMP.fetch_add(1, Ordering::Relaxed);
    }

    /// (name, value) pairs in insertion order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.entries
            .iter()
            .map(|(_, n, v)| (n.as_str(), v.as_str()))
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// The settings a client expects on every server connection it uses, and the ones it logged
/// in with (what RESET ALL returns to), kept only once they differ: most clients never change
/// a setting, and an idle client should cost as little memory as possible. Both sets are
/// shared: clients that logged in with the same settings share one copy until one of them
/// changes a setting.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientSettings {
    now: Rc<ParamSet>,
    startup: Option<Rc<ParamSet>>,
}

impl ClientSettings {
    pub fn new(startup: impl Into<Rc<ParamSet>>) -> Self {
        ClientSettings {
            now: startup.into(),
            startup: None,
        }
    }

    /// The settings as they are now.
    pub fn params(&self) -> &ParamSet {
        &self.now
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.now.get(name)
    }

    /// Changes a setting (the startup settings are kept aside on the first change).
    pub fn set(&mut self, name: &str, value: &str) {
        if self.now.get(name) == Some(value) {
            return;
        }
        if self.startup.is_none() {
            self.startup = Some(self.now.clone());
        }
        Rc::make_mut(&mut self.now).set(name, value);
    }

    /// Back to the settings the client logged in with (RESET ALL, DISCARD ALL).
    pub fn reset_to_startup(&mut self) {
        if let Some(startup) = self.startup.take() {
            self.now = startup;
        }
    }
}

/// Is `name` a reported parameter whose value follows the client?
pub fn is_tracked_reported(name: &str) -> bool {
    TRACKED_REPORTED
        .iter()
        .any(|t| t.eq_ignore_ascii_case(name))
}

/// What a client's StartupMessage asks for, split into identity and settings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StartupParams {
    pub user: String,
    pub database: String,
    /// Settings the client wants on every server connection it uses.
    pub settings: ParamSet,
}

impl StartupParams {
    /// Reads the startup parameters. `database` defaults to the user name, as in PostgreSQL;
    /// `options` (`-c name=value`, `--name=value`) become settings.
    pub fn from_startup(params: &[(String, String)]) -> Result<Self, StartupParamError> {
        let mut out = StartupParams::default();
        for (k, v) in params {
            match k.as_str() {
                "user" => out.user = v.clone(),
                "database" => out.database = v.clone(),
                "replication" if v != "false" && v != "0" && v != "off" => {
                    return Err(StartupParamError::Replication)
                }
                "options" => parse_options(v, &mut out.settings)?,
                k if k.starts_with("_pq_.") => {}
                k if NOT_SETTINGS.contains(&k) => {}
                k => out.settings.set(k, v),
            }
        }
        if out.user.is_empty() {
            return Err(StartupParamError::NoUser);
        }
        if out.database.is_empty() {
            out.database = out.user.clone();
        }
        Ok(out)
    }
}

/// A StartupMessage the pooler cannot serve.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StartupParamError {
    #[error("no PostgreSQL user name specified in startup packet")]
    NoUser,
    #[error(
        "replication connections are not supported by pgcorral; connect to the server directly"
    )]
    Replication,
    #[error("unsupported startup option {0:?}: only -c name=value and --name=value are supported")]
    Option(String),
}

/// Splits libpq's `options` string: whitespace separates words, backslash escapes.
fn parse_options(s: &str, into: &mut ParamSet) -> Result<(), StartupParamError> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => word.extend(chars.next()),
            c if c.is_whitespace() => {
                if !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
            }
            c => word.push(c),
        }
    }
    if !word.is_empty() {
        words.push(word);
    }
    let mut it = words.into_iter();
    while let Some(w) = it.next() {
        let setting = if w == "-c" {
            it.next()
                .ok_or_else(|| StartupParamError::Option(w.clone()))?
        } else if let Some(rest) = w.strip_prefix("-c") {
            rest.to_owned()
        } else if let Some(rest) = w.strip_prefix("--") {
            rest.to_owned()
        } else {
            return Err(StartupParamError::Option(w));
        };
        let (name, value) = setting
            .split_once('=')
            .ok_or_else(|| StartupParamError::Option(setting.clone()))?;
        into.set(&name.replace('-', "_"), value);
    }
    Ok(())
}

/// The statement that makes a server connection's settings what the client expects, or
/// None when they already match (the common case: no round trip).
///
/// `server_now` is what the connection has now, `server_login` what it had after login.
pub fn sync_statement(
    client: &ParamSet,
    server_now: &ParamSet,
    server_login: &ParamSet,
) -> Option<String> {
    // set_config reads the value as the server reads a startup or config-file value, so a
    // list such as search_path `a, b` keeps its meaning (SET ... TO 'a, b' would not).
    let mut sets = Vec::new();
    for (name, value) in client.iter() {
        if server_now.get(name) != Some(value) {
            let mut call = String::from("set_config(");
            push_literal(&mut call, name);
            call.push_str(", ");
            push_literal(&mut call, value);
            call.push_str(", false)");
            sets.push(call);
        }
    }
    let mut sql = String::new();
    if !sets.is_empty() {
        sql.push_str("SELECT ");
        sql.push_str(&sets.join(", "));
        sql.push(';');
    }
    for (name, value) in server_now.iter() {
        if client.get(name).is_none() && server_login.get(name) != Some(value) {
            sql.push_str("RESET ");
            push_ident(&mut sql, name);
            sql.push(';');
        }
    }
    (!sql.is_empty()).then_some(sql)
}

/// Records on `server_now` what `sync_statement` did, for settings the server does not
/// report (reported ones arrive as ParameterStatus).
pub fn apply_sync(client: &ParamSet, server_now: &mut ParamSet, server_login: &ParamSet) {
    let stale: Vec<String> = server_now
        .iter()
        .filter(|(n, v)| client.get(n).is_none() && server_login.get(n) != Some(*v))
        .map(|(n, _)| n.to_owned())
        .collect();
    for name in stale {
        match server_login.get(&name) {
            Some(v) => {
                let v = v.to_owned();
                server_now.set(&name, &v)
            }
            None => server_now.remove(&name),
        }
    }
    for (name, value) in client.iter() {
        server_now.set(name, value);
    }
}

fn push_ident(sql: &mut String, name: &str) {
    sql.push('"');
    for c in name.chars().filter(|&c| c != '\0') {
        if c == '"' {
            sql.push('"');
        }
        sql.push(c);
    }
    sql.push('"');
}

fn push_literal(sql: &mut String, value: &str) {
    sql.push_str("E'");
    for c in value.chars().filter(|&c| c != '\0') {
        if c == '\'' || c == '\\' {
            sql.push(c);
        }
        sql.push(c);
    }
    sql.push('\'');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_stamps_mean_equal_contents_and_every_change_restamps() {
        let mut a = ParamSet::new();
        assert_eq!(a.stamp(), 0);
        a.set("TimeZone", "UTC");
        let b = a.clone();
        assert_eq!(a.stamp(), b.stamp());
        let before = a.stamp();
        a.set("timezone", "UTC");
        assert_eq!(a.stamp(), before, "no change, same stamp");
        a.set("timezone", "Europe/Paris");
        assert_ne!(a.stamp(), before);
        let after_set = a.stamp();
        a.remove("TimeZone");
        assert_ne!(a.stamp(), after_set);
        assert_ne!(a.stamp(), 0, "emptied by a change is not the empty stamp");
        let mut c = ParamSet::new();
        c.set("TimeZone", "UTC");
        assert_eq!(c, b, "equality ignores stamps");
        assert_ne!(c.stamp(), b.stamp());
    }

    #[test]
    fn client_settings_keep_the_startup_ones_aside_only_after_a_change() {
        let mut startup = ParamSet::new();
        startup.set("application_name", "app");
        let mut s = ClientSettings::new(startup.clone());
        s.set("application_name", "app");
        assert_eq!(
            s,
            ClientSettings::new(startup.clone()),
            "no change, nothing kept"
        );
        s.set("application_name", "other");
        s.set("statement_timeout", "5s");
        assert_eq!(s.get("statement_timeout"), Some("5s"));
        s.reset_to_startup();
        assert_eq!(s.params(), &startup);
    }

    fn set(pairs: &[(&str, &str)]) -> ParamSet {
        let mut p = ParamSet::new();
        for (k, v) in pairs {
            p.set(k, v);
        }
        p
    }

    #[test]
    fn names_are_case_insensitive() {
        let p = set(&[("DateStyle", "ISO, MDY")]);
        assert_eq!(p.get("datestyle"), Some("ISO, MDY"));
        assert_eq!(p.iter().next(), Some(("DateStyle", "ISO, MDY")));
    }

    #[test]
    fn startup_params_split_identity_settings_and_options() {
        let raw: Vec<(String, String)> = [
            ("user", "app"),
            ("application_name", "psql"),
            (
                "options",
                "-c search_path=a,b --statement-timeout=5s -cwork_mem=1MB",
            ),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let p = StartupParams::from_startup(&raw).unwrap();
        assert_eq!(p.user, "app");
        assert_eq!(p.database, "app");
        assert_eq!(p.settings.get("application_name"), Some("psql"));
        assert_eq!(p.settings.get("search_path"), Some("a,b"));
        assert_eq!(p.settings.get("statement_timeout"), Some("5s"));
        assert_eq!(p.settings.get("work_mem"), Some("1MB"));
    }

    #[test]
    fn startup_params_refuse_what_cannot_be_pooled() {
        let raw =
            |k: &str, v: &str| vec![("user".to_string(), "u".to_string()), (k.into(), v.into())];
        assert_eq!(
            StartupParams::from_startup(&raw("replication", "database")),
            Err(StartupParamError::Replication)
        );
        assert!(matches!(
            StartupParams::from_startup(&raw("options", "-d 5")),
            Err(StartupParamError::Option(_))
        ));
        assert_eq!(
            StartupParams::from_startup(&[]),
            Err(StartupParamError::NoUser)
        );
    }

    #[test]
    fn sync_sets_what_differs_and_resets_what_the_client_did_not_ask_for() {
        let login = set(&[("TimeZone", "UTC"), ("application_name", "")]);
        let now = set(&[
            ("TimeZone", "Europe/Paris"),
            ("application_name", ""),
            ("search_path", "x"),
        ]);
        let client = set(&[("application_name", "it's")]);
        let sql = sync_statement(&client, &now, &login).unwrap();
        assert_eq!(
            sql,
            "SELECT set_config(E'application_name', E'it''s', false);RESET \"TimeZone\";RESET \"search_path\";"
        );
        let mut now = now;
        apply_sync(&client, &mut now, &login);
        assert_eq!(now.get("TimeZone"), Some("UTC"));
        assert_eq!(now.get("search_path"), None);
        assert_eq!(sync_statement(&client, &now, &login), None);
    }

    #[test]
    fn matching_settings_need_no_statement() {
        let login = set(&[("client_encoding", "UTF8")]);
        let client = set(&[("client_encoding", "UTF8")]);
        assert_eq!(sync_statement(&client, &login, &login), None);
    }

    #[test]
    fn literals_escape_backslashes() {
        let mut s = String::new();
        push_literal(&mut s, r"a\b'c");
        assert_eq!(s, r"E'a\\b''c'");
    }
}
