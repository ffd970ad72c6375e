//! Pinning: which session-level state a client has left on its server connection, so that in
//! transaction pooling the connection stays with the client while that state exists.
//!
//! What statements create or release is guessed from their text ([`super::state`]); what is
//! really there is then asked of the server itself, once the transaction is over, with one
//! probe query (listening channels, temp relations, advisory locks, holdable cursors, SQL
//! prepared statements, the session's role). Plain settings are not pinned: their values are
//! read back in the same probe and replayed on the next server connection the client uses.

use super::state::{Effect, PinReason};

/// A set of pin reasons.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PinSet(u16);

impl PinSet {
    fn bit(r: PinReason) -> u16 {
        1 << r.index()
    }

    pub fn contains(self, r: PinReason) -> bool {
        self.0 & Self::bit(r) != 0
    }

    pub fn insert(&mut self, r: PinReason) {
        self.0 |= Self::bit(r);
    }

    pub fn remove(&mut self, r: PinReason) {
        self.0 &= !Self::bit(r);
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    pub fn iter(self) -> impl Iterator<Item = PinReason> {
        PinReason::ALL
            .into_iter()
            .filter(move |&r| self.contains(r))
    }

    /// Reasons in `self` and not in `other`.
    pub fn minus(self, other: PinSet) -> PinSet {
        PinSet(self.0 & !other.0)
    }

    /// "listen, temp_table".
    pub fn describe(self) -> String {
        self.iter()
            .map(PinReason::as_str)
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Reasons the server can be asked about (the others are held until the client leaves,
/// or, for set_config, until RESET ALL / DISCARD ALL).
const PROBED: [PinReason; 6] = [
    PinReason::Listen,
    PinReason::TempTable,
    PinReason::AdvisoryLock,
    PinReason::HoldCursor,
    PinReason::SqlPrepare,
    PinReason::SessionAuth,
];

/// The SQL that tells whether the server still holds state of `reason`.
fn probe_expr(reason: PinReason, user: &str) -> String {
    match reason {
        PinReason::Listen => "EXISTS (SELECT 1 FROM pg_listening_channels())".into(),
        PinReason::TempTable => {
            "EXISTS (SELECT 1 FROM pg_class WHERE relnamespace = pg_my_temp_schema())".into()
        }
        PinReason::AdvisoryLock => "EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' \
                                    AND pid = pg_backend_pid())"
            .into(),
        PinReason::HoldCursor => "EXISTS (SELECT 1 FROM pg_cursors WHERE is_holdable)".into(),
        PinReason::SqlPrepare => {
            "EXISTS (SELECT 1 FROM pg_prepared_statements WHERE from_sql)".into()
        }
        PinReason::SessionAuth => format!(
            "(current_user <> session_user OR session_user <> {})",
            literal(user)
        ),
        PinReason::SetConfig | PinReason::Load => "true".into(),
    }
}

/// A string literal (E'' form, quotes and backslashes doubled).
fn literal(s: &str) -> String {
    let mut out = String::from("E'");
    for c in s.chars().filter(|&c| c != '\0') {
        if c == '\'' || c == '\\' {
            out.push(c);
        }
        out.push(c);
    }
    out.push('\'');
    out
}

/// What one client has done to its server connection's session, and what must be checked
/// when its transaction ends.
#[derive(Debug, Clone, Default)]
pub struct SessionTracker {
    /// State the server held at the last probe (plus set_config and LOAD, never probed).
    pub pins: PinSet,
    /// Reasons statements since the last probe may have created or released.
    touched: PinSet,
    /// Settings changed since the last probe (lowercase names), to read back.
    settings: Vec<String>,
    /// RESET ALL or DISCARD ALL ran: the client's startup settings must be put back.
    pub reset_all: bool,
    /// The statement that created state, for the log line that says why a server is pinned.
    pub culprit: Option<String>,
}

/// What a probe found.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Settled {
    /// Reasons pinned now that were not before.
    pub pinned: PinSet,
    /// Reasons released.
    pub released: PinSet,
    /// (setting, value now) for each setting read back; None if the server does not know it.
    pub settings: Vec<(String, Option<String>)>,
}

impl SessionTracker {
    /// Nothing noted and nothing held: as a new client's tracker.
    pub fn is_clear(&self) -> bool {
        self.pins.is_empty()
            && self.touched.is_empty()
            && self.settings.is_empty()
            && !self.reset_all
            && self.culprit.is_none()
    }

    /// Takes note of what a statement with text `sql` may do.
    pub fn note(&mut self, effects: &[Effect], sql: &str) {
        for e in effects {
            match e {
                Effect::Setting(name) => {
                    if !self.settings.iter().any(|s| s == name) {
                        self.settings.push(name.clone());
                    }
                }
                Effect::ResetAll => {
                    self.reset_all = true;
                    self.pins.remove(PinReason::SetConfig);
                    self.touched.remove(PinReason::SetConfig);
                }
                Effect::DiscardAll => {
                    self.reset_all = true;
                    self.pins.remove(PinReason::SetConfig);
                    self.touched.remove(PinReason::SetConfig);
                    for r in PROBED {
                        self.touched.insert(r);
                    }
                }
                Effect::DeallocateAll => self.touched.insert(PinReason::SqlPrepare),
                Effect::Pin(r) => {
                    self.touched.insert(*r);
                    if !self.pins.contains(*r) {
                        self.culprit = Some(excerpt(sql));
                    }
                }
                Effect::Release(r) => self.touched.insert(*r),
            }
        }
    }

    /// The reasons the probe asks about, in its column order: those held or touched.
    fn probed(&self) -> Vec<PinReason> {
        PROBED
            .into_iter()
            .filter(|&r| self.touched.contains(r) || self.pins.contains(r))
            .collect()
    }

    /// Something must be asked of the server before the connection may be given back.
    pub fn needs_probe(&self) -> bool {
        !self.touched.is_empty() || !self.settings.is_empty() || self.reset_all
    }

    /// The probe: a single-row query, or None if only set_config/LOAD were noted (their
    /// pins need no probe) and no setting changed.
    pub fn probe_sql(&self, user: &str) -> Option<String> {
        let reasons = self.probed();
        let mut columns: Vec<String> = reasons.iter().map(|&r| probe_expr(r, user)).collect();
        for name in &self.settings {
            columns.push(format!("current_setting({}, true)", literal(name)));
        }
        if columns.is_empty() {
            return None;
        }
        Some(format!("SELECT {}", columns.join(", ")))
    }

    /// Applies the probe's row (or, with None, settles what needed no probe).
    pub fn settle(&mut self, row: Option<&[Option<String>]>) -> Settled {
        let before = self.pins;
        let mut settled = Settled::default();
        if let Some(row) = row {
            let reasons = self.probed();
            for (i, r) in reasons.iter().enumerate() {
                match row.get(i).cloned().flatten().as_deref() {
                    Some("t") => self.pins.insert(*r),
                    _ => self.pins.remove(*r),
                }
            }
            for (j, name) in self.settings.iter().enumerate() {
                let value = row.get(reasons.len() + j).cloned().flatten();
                settled.settings.push((name.clone(), value));
            }
        }
        // set_config and LOAD cannot be asked about: once run, they pin.
        for r in [PinReason::SetConfig, PinReason::Load] {
            if self.touched.contains(r) {
                self.pins.insert(r);
            }
        }
        self.touched = PinSet::default();
        self.settings.clear();
        settled.pinned = self.pins.minus(before);
        settled.released = before.minus(self.pins);
        if self.pins.is_empty() {
            self.culprit = None;
        }
        settled
    }
}

/// The first 200 characters of a statement, on one line.
fn excerpt(sql: &str) -> String {
    let one_line: String = sql.split_whitespace().collect::<Vec<_>>().join(" ");
    match one_line.char_indices().nth(200) {
        Some((at, _)) => format!("{}…", &one_line[..at]),
        None => one_line,
    }
}

#[cfg(test)]
mod tests {
    use super::super::state::effects;
    use super::*;

    fn t() -> Option<String> {
        Some("t".into())
    }

    fn f() -> Option<String> {
        Some("f".into())
    }

    #[test]
    fn every_reason_has_its_own_bit() {
        for (i, r) in PinReason::ALL.iter().enumerate() {
            assert_eq!(r.index(), i);
            let mut set = PinSet::default();
            set.insert(*r);
            assert_eq!(set.iter().collect::<Vec<_>>(), [*r]);
        }
    }

    #[test]
    fn listen_pins_after_the_probe_and_unlisten_releases() {
        let mut s = SessionTracker::default();
        s.note(&effects("LISTEN jobs"), "LISTEN jobs");
        assert!(s.needs_probe());
        let sql = s.probe_sql("app").unwrap();
        assert!(sql.contains("pg_listening_channels"), "{sql}");
        let settled = s.settle(Some(&[t()]));
        assert!(settled.pinned.contains(PinReason::Listen));
        assert_eq!(s.culprit.as_deref(), Some("LISTEN jobs"));
        assert!(!s.needs_probe());
        s.note(&effects("UNLISTEN *"), "UNLISTEN *");
        let settled = s.settle(Some(&[f()]));
        assert!(settled.released.contains(PinReason::Listen));
        assert!(s.pins.is_empty());
    }

    #[test]
    fn a_failed_pinning_statement_does_not_pin() {
        let mut s = SessionTracker::default();
        s.note(&effects("CREATE TEMP TABLE t (a int"), "…");
        let settled = s.settle(Some(&[f()]));
        assert!(settled.pinned.is_empty() && s.pins.is_empty());
    }

    #[test]
    fn settings_are_read_back_with_the_pins() {
        let mut s = SessionTracker::default();
        s.note(
            &effects("SET search_path = a, b; LISTEN x"),
            "SET search_path = a, b; LISTEN x",
        );
        let sql = s.probe_sql("app").unwrap();
        assert!(
            sql.ends_with("current_setting(E'search_path', true)"),
            "{sql}"
        );
        let settled = s.settle(Some(&[t(), Some("a, b".into())]));
        assert_eq!(
            settled.settings,
            [("search_path".to_string(), Some("a, b".to_string()))]
        );
        assert!(s.pins.contains(PinReason::Listen));
    }

    #[test]
    fn load_and_set_config_pin_without_a_probe() {
        let mut s = SessionTracker::default();
        s.note(&effects("LOAD 'auto_explain'"), "LOAD 'auto_explain'");
        assert!(s.probe_sql("app").is_none());
        let settled = s.settle(None);
        assert!(settled.pinned.contains(PinReason::Load));
        s.note(
            &effects("SELECT set_config('a.b', 'c', false)"),
            "SELECT set_config('a.b', 'c', false)",
        );
        s.settle(None);
        assert!(s.pins.contains(PinReason::SetConfig));
        s.note(&effects("RESET ALL"), "RESET ALL");
        assert!(s.reset_all);
        s.settle(None);
        assert!(!s.pins.contains(PinReason::SetConfig));
        assert!(s.pins.contains(PinReason::Load), "LOAD cannot be undone");
    }

    #[test]
    fn session_auth_probe_names_the_pool_user() {
        let mut s = SessionTracker::default();
        s.note(&effects("SET ROLE admin"), "SET ROLE admin");
        let sql = s.probe_sql("o'neil").unwrap();
        assert!(sql.contains("session_user <> E'o''neil'"), "{sql}");
    }
}
