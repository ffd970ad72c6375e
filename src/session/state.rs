//! Session state a SQL text leaves on a server connection: what must keep ("pin") the
//! connection to its client in transaction pooling, what may release such state, and which
//! plain settings the pooler can replay instead of pinning.
//!
//! No parse tree: a small lexer that skips string literals (`'…'`, `E'…'`, `$tag$…$tag$`),
//! quoted identifiers and comments (`--`, nested `/* */`) the way PostgreSQL does, assuming
//! `standard_conforming_strings = on`, then keyword rules per statement. When in doubt the
//! rules find state rather than miss it: a needless pin costs a connection for a while, a
//! missed one breaks a client. State created by user functions, procedures or dynamic SQL
//! (`EXECUTE '…'`) is invisible here.

use std::borrow::Cow;

/// Why a server connection is pinned to its client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PinReason {
    /// `LISTEN`: notifications go to the session that listens.
    Listen,
    /// Temporary tables, views, sequences (and other objects in `pg_temp`).
    TempTable,
    /// Session-level advisory locks.
    AdvisoryLock,
    /// Cursors declared `WITH HOLD`, which outlive their transaction.
    HoldCursor,
    /// Prepared statements created with SQL `PREPARE`.
    SqlPrepare,
    /// `SET ROLE` / `SET SESSION AUTHORIZATION`.
    SessionAuth,
    /// `set_config(…)` with a session-level (or unknown) scope.
    SetConfig,
    /// `LOAD` of a shared library.
    Load,
}

impl PinReason {
    /// Its place in [`PinReason::ALL`] (for per-reason counters).
    pub fn index(self) -> usize {
        self as usize
    }

    /// Every reason, in declaration order.
    pub const ALL: [PinReason; 8] = [
        PinReason::Listen,
        PinReason::TempTable,
        PinReason::AdvisoryLock,
        PinReason::HoldCursor,
        PinReason::SqlPrepare,
        PinReason::SessionAuth,
        PinReason::SetConfig,
        PinReason::Load,
    ];

    /// A stable snake_case name, for logs and statistics.
    pub fn as_str(self) -> &'static str {
        match self {
            PinReason::Listen => "listen",
            PinReason::TempTable => "temp_table",
            PinReason::AdvisoryLock => "advisory_lock",
            PinReason::HoldCursor => "hold_cursor",
            PinReason::SqlPrepare => "sql_prepare",
            PinReason::SessionAuth => "session_auth",
            PinReason::SetConfig => "set_config",
            PinReason::Load => "load",
        }
    }
}

/// One session-level effect of a SQL text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// A plain setting changed at session level (`SET [SESSION] name …`, `SET TIME ZONE`,
    /// `SET NAMES`, `SET SCHEMA`, `SET XML OPTION`, `RESET name`): the pooler reads it back
    /// with current_setting() and replays it. The name is lowercase and canonical
    /// ("timezone", "client_encoding", "search_path", "xmloption").
    Setting(String),
    /// `RESET ALL`.
    ResetAll,
    /// `DISCARD ALL` (releases everything, resets settings, deallocates prepared statements).
    DiscardAll,
    /// `DEALLOCATE ALL` / `DEALLOCATE PREPARE ALL`.
    DeallocateAll,
    /// State that must pin the server connection.
    Pin(PinReason),
    /// A statement that may release state of that kind (the pooler then checks the server).
    Release(PinReason),
}

/// Cheap pre-check: false means [`effects`] would certainly return nothing. It may answer
/// true needlessly (a table named `temperature`, a `;` inside a literal).
///
/// It looks at the first word only, then makes one pass over the bytes for the few words
/// that can matter anywhere in a statement, and answers true for any text with a second
/// statement.
pub fn may_have_effects(sql: &str) -> bool {
    first_word_is_effect_verb(sql) || mentions_effect_word_or_second_statement(sql.as_bytes())
}

/// The effects of every statement in `sql` (which may hold several statements separated by
/// `;`), in order. An effect repeated right after itself is reported once.
pub fn effects(sql: &str) -> Vec<Effect> {
    let tokens: Vec<Token> = Lexer::new(sql).collect();
    let mut out = Vec::new();
    for statement in tokens.split(|t| t.is_punct(";")) {
        statement_effects(statement, &mut out);
    }
    out
}

// ---------------------------------------------------------------------------------------
// The pre-check
// ---------------------------------------------------------------------------------------

/// Is this first token a statement keyword with rules (or one that wraps such statements)?
fn is_effect_verb(token: &Token) -> bool {
    token.kind == Kind::Word && is_effect_word(token.text.as_bytes())
}

/// A keyword [`is_effect_verb`] answers true for, in any case.
fn is_effect_word(word: &[u8]) -> bool {
    let is = |verb: &str| word.eq_ignore_ascii_case(verb.as_bytes());
    VERBS.iter().any(|(verb, _)| is(verb)) || is("do") || is("explain")
}

/// [`is_effect_verb`] of the first token. A text that starts with a plain ASCII word (after
/// whitespace), as nearly every statement does, is read directly; anything else (a comment,
/// a parenthesis, a non-ASCII letter) goes through the lexer.
fn first_word_is_effect_verb(sql: &str) -> bool {
    let bytes = sql.as_bytes();
    let start = bytes
        .iter()
        .position(|&b| !is_space(b))
        .unwrap_or(bytes.len());
    let rest = &bytes[start..];
    if rest.first().is_some_and(|b| b.is_ascii_alphabetic()) {
        let end = rest
            .iter()
            .position(|&b| !(b.is_ascii_alphanumeric() || b == b'_' || b == b'$'))
            .unwrap_or(rest.len());
        if rest.get(end).is_none_or(|&b| b < 0x80) {
            return is_effect_word(&rest[..end]);
        }
    }
    Lexer::new(sql).next().is_some_and(|t| is_effect_verb(&t))
}

/// Does the text contain `advisory`, `set_config` or `temp`, in any case (the words that can
/// make a statement with any first word have effects), or anything but whitespace after its
/// first `;` (a second statement)? One pass: this runs on every Query in transaction mode.
fn mentions_effect_word_or_second_statement(sql: &[u8]) -> bool {
    for (i, &b) in sql.iter().enumerate() {
        // OR-ing 0x20 folds ASCII letters to lowercase; no other byte folds to a, s or t.
        let word: &[u8] = match b | 0x20 {
            b'a' => b"advisory",
            b's' => b"set_config",
            b't' => b"temp",
            _ if b == b';' => return sql[i + 1..].iter().any(|&b| !is_space(b)),
            _ => continue,
        };
        if sql[i..]
            .get(..word.len())
            .is_some_and(|w| w.eq_ignore_ascii_case(word))
        {
            return true;
        }
    }
    false
}

// ---------------------------------------------------------------------------------------
// Statements
// ---------------------------------------------------------------------------------------

/// What a statement's first keyword says, given the tokens after it.
type Rule = fn(&[Token]) -> Option<Effect>;

/// First keywords with a rule of their own. (`DO` and `EXPLAIN` wrap other statements.)
const VERBS: &[(&str, Rule)] = &[
    ("set", set_effect),
    ("reset", reset_effect),
    ("discard", discard_effect),
    ("listen", listen_effect),
    ("unlisten", unlisten_effect),
    ("create", create_effect),
    ("declare", declare_effect),
    ("close", close_effect),
    ("prepare", prepare_effect),
    ("deallocate", deallocate_effect),
    ("drop", drop_effect),
    ("load", load_effect),
];

/// Functions whose call has an effect, wherever the call is.
const CALLS: &[(&str, Effect)] = &[
    ("pg_advisory_lock", Effect::Pin(PinReason::AdvisoryLock)),
    (
        "pg_advisory_lock_shared",
        Effect::Pin(PinReason::AdvisoryLock),
    ),
    ("pg_try_advisory_lock", Effect::Pin(PinReason::AdvisoryLock)),
    (
        "pg_try_advisory_lock_shared",
        Effect::Pin(PinReason::AdvisoryLock),
    ),
    (
        "pg_advisory_unlock",
        Effect::Release(PinReason::AdvisoryLock),
    ),
    (
        "pg_advisory_unlock_shared",
        Effect::Release(PinReason::AdvisoryLock),
    ),
    (
        "pg_advisory_unlock_all",
        Effect::Release(PinReason::AdvisoryLock),
    ),
    ("set_config", Effect::Pin(PinReason::SetConfig)),
];

/// Appends an effect unless it repeats the last one.
fn push(out: &mut Vec<Effect>, effect: Effect) {
    if out.last() != Some(&effect) {
        out.push(effect);
    }
}

fn statement_effects(statement: &[Token], out: &mut Vec<Effect>) {
    match skip_explain(statement) {
        [first, rest @ ..] if first.is_kw("do") => do_block_effects(rest, out),
        statement => plain_statement_effects(statement, out),
    }
}

/// The effects of a statement other than `DO`.
fn plain_statement_effects(statement: &[Token], out: &mut Vec<Effect>) {
    if let Some(effect) = leading_effect(statement) {
        push(out, effect);
    }
    if selects_into_temp(statement) {
        push(out, Effect::Pin(PinReason::TempTable));
    }
    call_effects(statement, out);
}

/// `EXPLAIN ANALYZE` runs the statement it wraps (`CREATE TEMP TABLE … AS` included), so
/// the wrapped statement is what counts.
fn skip_explain<'t, 'a>(statement: &'t [Token<'a>]) -> &'t [Token<'a>] {
    let [first, rest @ ..] = statement else {
        return statement;
    };
    if !first.is_kw("explain") {
        return statement;
    }
    let mut rest = match rest {
        [open, ..] if open.is_punct("(") => parenthesized(rest).1,
        _ => rest,
    };
    while let [option, tail @ ..] = rest {
        if !option.is_kw_any(&["analyze", "analyse", "verbose"]) {
            break;
        }
        rest = tail;
    }
    rest
}

/// The rule of the statement's first keyword.
fn leading_effect(statement: &[Token]) -> Option<Effect> {
    let [first, rest @ ..] = statement else {
        return None;
    };
    let (_, rule) = VERBS.iter().find(|(verb, _)| first.is_kw(verb))?;
    rule(rest)
}

/// `DO [LANGUAGE l] 'body'`: the body's statements run at session level. In PL/pgSQL a
/// statement starts after `;`, `BEGIN`, `THEN`, `ELSE` or `LOOP`; the pieces between those
/// are judged as statements (a `DO` inside is not looked into).
fn do_block_effects(rest: &[Token], out: &mut Vec<Effect>) {
    let Some(body) = rest.iter().find_map(Token::literal) else {
        return;
    };
    let tokens: Vec<Token> = Lexer::new(&body).collect();
    let starts_statement =
        |t: &Token| t.is_punct(";") || t.is_kw_any(&["begin", "then", "else", "loop"]);
    for piece in tokens.split(starts_statement) {
        plain_statement_effects(piece, out);
    }
}

// --- SET and RESET ----------------------------------------------------------------------

/// `SET …`: LOCAL is transaction-scoped; SESSION is the default scope.
fn set_effect(rest: &[Token]) -> Option<Effect> {
    match rest {
        [local, ..] if local.is_kw("local") => None,
        [session, what, ..]
            if session.is_kw("session")
                && what.is_kw_any(&["authorization", "characteristics"]) =>
        {
            set_rest_effect(rest)
        }
        [session, tail @ ..] if session.is_kw("session") => set_rest_effect(tail),
        _ => set_rest_effect(rest),
    }
}

/// What follows `SET [SESSION]`.
fn set_rest_effect(rest: &[Token]) -> Option<Effect> {
    match rest {
        [first, ..] if first.is_kw_any(&["transaction", "constraints"]) => None,
        [s, c, ..] if s.is_kw("session") && c.is_kw("characteristics") => None,
        [s, a, value @ ..] if s.is_kw("session") && a.is_kw("authorization") => {
            identity_effect(value)
        }
        [role, value @ ..] if role.is_kw("role") => identity_effect(value),
        [t, z, ..] if t.is_kw("time") && z.is_kw("zone") => setting("timezone"),
        [names, ..] if names.is_kw("names") => setting("client_encoding"),
        [schema, ..] if schema.is_kw("schema") => setting("search_path"),
        [x, o, ..] if x.is_kw("xml") && o.is_kw("option") => setting("xmloption"),
        _ => generic_set_effect(rest),
    }
}

/// `SET name {TO | =} value`.
fn generic_set_effect(rest: &[Token]) -> Option<Effect> {
    let (name, tail) = setting_name(rest)?;
    let value = match tail {
        [to, value @ ..] if to.is_kw("to") || to.is_punct("=") => value,
        _ => return None,
    };
    if is_identity_setting(&name) {
        return identity_effect(value);
    }
    Some(Effect::Setting(name))
}

/// `SET ROLE` / `SET SESSION AUTHORIZATION` (and `SET role = …`): back to the session's own
/// identity with NONE or DEFAULT, which may release the pin (the pooler checks), or to
/// another identity, which pins. No value at all is a syntax error: nothing.
fn identity_effect(value: &[Token]) -> Option<Effect> {
    let value = match value {
        [to, tail @ ..] if to.is_kw("to") || to.is_punct("=") => tail,
        _ => value,
    };
    match value {
        [v, ..] if v.is_kw_any(&["none", "default"]) || v.literal().as_deref() == Some("none") => {
            Some(Effect::Release(PinReason::SessionAuth))
        }
        [_, ..] => Some(Effect::Pin(PinReason::SessionAuth)),
        [] => None,
    }
}

/// `RESET …`.
fn reset_effect(rest: &[Token]) -> Option<Effect> {
    match rest {
        [all, ..] if all.is_kw("all") => Some(Effect::ResetAll),
        [t, z, ..] if t.is_kw("time") && z.is_kw("zone") => setting("timezone"),
        [t, ..] if t.is_kw("transaction") => None,
        [s, a, ..] if s.is_kw("session") && a.is_kw("authorization") => {
            Some(Effect::Release(PinReason::SessionAuth))
        }
        _ => {
            let (name, _) = setting_name(rest)?;
            if is_identity_setting(&name) {
                return Some(Effect::Release(PinReason::SessionAuth));
            }
            Some(Effect::Setting(name))
        }
    }
}

/// Settings that change who the session is: not plain settings.
fn is_identity_setting(name: &str) -> bool {
    name == "role" || name == "session_authorization"
}

fn setting(name: &str) -> Option<Effect> {
    Some(Effect::Setting(name.to_owned()))
}

/// A setting name, possibly dotted (`myapp.tenant`), lowercase, and the tokens after it.
fn setting_name<'t, 'a>(tokens: &'t [Token<'a>]) -> Option<(String, &'t [Token<'a>])> {
    let (first, mut rest) = tokens.split_first()?;
    let mut name = first.identifier()?.into_owned();
    while let [dot, part, tail @ ..] = rest {
        if !dot.is_punct(".") {
            break;
        }
        name.push('.');
        name.push_str(&part.identifier()?);
        rest = tail;
    }
    if rest.first().is_some_and(|t| t.is_punct(".")) {
        return None; // a dangling dot
    }
    name.make_ascii_lowercase();
    Some((name, rest))
}

// --- Other statements -------------------------------------------------------------------

/// `DISCARD ALL | TEMP | TEMPORARY | PLANS | SEQUENCES`.
fn discard_effect(rest: &[Token]) -> Option<Effect> {
    match rest {
        [all, ..] if all.is_kw("all") => Some(Effect::DiscardAll),
        [temp, ..] if temp.is_kw_any(&["temp", "temporary"]) => {
            Some(Effect::Release(PinReason::TempTable))
        }
        _ => None,
    }
}

/// `LISTEN channel`.
fn listen_effect(rest: &[Token]) -> Option<Effect> {
    (!rest.is_empty()).then_some(Effect::Pin(PinReason::Listen))
}

/// `UNLISTEN channel | *`.
fn unlisten_effect(rest: &[Token]) -> Option<Effect> {
    (!rest.is_empty()).then_some(Effect::Release(PinReason::Listen))
}

/// `CREATE [OR REPLACE] [GLOBAL | LOCAL] {TEMP | TEMPORARY} …` or any `CREATE` naming
/// `pg_temp.something`, except tables that go away with `ON COMMIT DROP`.
fn create_effect(rest: &[Token]) -> Option<Effect> {
    let rest_after_replace = match rest {
        [or, replace, tail @ ..] if or.is_kw("or") && replace.is_kw("replace") => tail,
        _ => rest,
    };
    let temporary = starts_with_temp(rest_after_replace) || names_pg_temp(rest);
    (temporary && !drops_on_commit(rest)).then_some(Effect::Pin(PinReason::TempTable))
}

/// `[GLOBAL | LOCAL] {TEMP | TEMPORARY}`.
fn starts_with_temp(tokens: &[Token]) -> bool {
    let tokens = match tokens {
        [scope, tail @ ..] if scope.is_kw_any(&["global", "local"]) => tail,
        _ => tokens,
    };
    tokens
        .first()
        .is_some_and(|t| t.is_kw_any(&["temp", "temporary"]))
}

/// A name qualified with the session's temporary schema, `pg_temp` (or `pg_temp_N`).
fn names_pg_temp(tokens: &[Token]) -> bool {
    tokens.windows(2).any(|w| {
        w[1].is_punct(".")
            && w[0].identifier().is_some_and(|schema| {
                let schema = schema.to_ascii_lowercase();
                schema == "pg_temp" || schema.starts_with("pg_temp_")
            })
    })
}

fn drops_on_commit(tokens: &[Token]) -> bool {
    tokens
        .windows(3)
        .any(|w| w[0].is_kw("on") && w[1].is_kw("commit") && w[2].is_kw("drop"))
}

/// `SELECT … INTO [GLOBAL | LOCAL] {TEMP | TEMPORARY} [TABLE] name …` (not `INSERT INTO`).
fn selects_into_temp(statement: &[Token]) -> bool {
    statement.iter().enumerate().any(|(i, t)| {
        let after_insert = i
            .checked_sub(1)
            .and_then(|before| statement.get(before))
            .is_some_and(|before| before.is_kw_any(&["insert", "merge"]));
        t.is_kw("into")
            && !after_insert
            && starts_with_temp(statement.get(i + 1..).unwrap_or_default())
    })
}

/// `DECLARE name … CURSOR WITH HOLD FOR query`: WITH HOLD comes before the first FOR.
fn declare_effect(rest: &[Token]) -> Option<Effect> {
    let head = match rest.iter().position(|t| t.is_kw("for")) {
        Some(end) => rest.get(..end).unwrap_or_default(),
        None => rest,
    };
    let holds = head
        .windows(2)
        .any(|w| w[0].is_kw("with") && w[1].is_kw("hold"));
    holds.then_some(Effect::Pin(PinReason::HoldCursor))
}

/// `CLOSE name | ALL`.
fn close_effect(rest: &[Token]) -> Option<Effect> {
    (!rest.is_empty()).then_some(Effect::Release(PinReason::HoldCursor))
}

/// `PREPARE name [(types)] AS statement`. Without AS it is `PREPARE TRANSACTION 'gid'`
/// (two-phase commit, which ends the transaction and leaves nothing in the session) or a
/// syntax error.
fn prepare_effect(rest: &[Token]) -> Option<Effect> {
    rest.iter()
        .any(|t| t.is_kw("as"))
        .then_some(Effect::Pin(PinReason::SqlPrepare))
}

/// `DEALLOCATE [PREPARE] {name | ALL}`.
fn deallocate_effect(rest: &[Token]) -> Option<Effect> {
    let rest = match rest {
        [prepare, tail @ ..] if prepare.is_kw("prepare") && !tail.is_empty() => tail,
        _ => rest,
    };
    match rest {
        [all, ..] if all.is_kw("all") => Some(Effect::DeallocateAll),
        [_, ..] => Some(Effect::Release(PinReason::SqlPrepare)),
        [] => None,
    }
}

/// Any `DROP` may drop a temporary object.
fn drop_effect(rest: &[Token]) -> Option<Effect> {
    (!rest.is_empty()).then_some(Effect::Release(PinReason::TempTable))
}

/// `LOAD 'library'`.
fn load_effect(rest: &[Token]) -> Option<Effect> {
    (!rest.is_empty()).then_some(Effect::Pin(PinReason::Load))
}

// --- Function calls ---------------------------------------------------------------------

/// Every call of a function in [`CALLS`]: a name (any schema) followed by `(`.
fn call_effects(statement: &[Token], out: &mut Vec<Effect>) {
    for (i, name) in statement.iter().enumerate() {
        let after = statement.get(i + 1..).unwrap_or_default();
        if after.first().is_some_and(|t| t.is_punct("(")) {
            if let Some(effect) = call_effect(name, after) {
                push(out, effect);
            }
        }
    }
}

/// The effect of calling `name` with the parenthesized `arguments` (and what follows them).
fn call_effect(name: &Token, arguments: &[Token]) -> Option<Effect> {
    let (_, effect) = CALLS.iter().find(|(function, _)| name.names(function))?;
    if *effect == Effect::Pin(PinReason::SetConfig) && sets_locally(arguments) {
        return None; // set_config(name, value, true) lasts until the transaction ends
    }
    Some(effect.clone())
}

/// Is the third argument of this `set_config(…)` literally true?
fn sets_locally(arguments: &[Token]) -> bool {
    let inside = parenthesized(arguments).0;
    let is_local = split_arguments(inside).nth(2);
    match is_local {
        Some([value]) => {
            value.is_kw("true")
                || value.literal().is_some_and(|v| {
                    ["t", "true", "y", "yes", "on", "1"]
                        .iter()
                        .any(|t| v.trim().eq_ignore_ascii_case(t))
                })
        }
        _ => false,
    }
}

/// For tokens starting with `(`: the tokens inside the matching `)` and those after it.
/// Unbalanced: everything after the `(` is inside.
fn parenthesized<'t, 'a>(tokens: &'t [Token<'a>]) -> (&'t [Token<'a>], &'t [Token<'a>]) {
    let mut depth = 0usize;
    for (i, t) in tokens.iter().enumerate() {
        if t.is_punct("(") {
            depth += 1;
        } else if t.is_punct(")") {
            depth = depth.saturating_sub(1);
            if depth == 0 {
                let inside = tokens.get(1..i).unwrap_or_default();
                return (inside, tokens.get(i + 1..).unwrap_or_default());
            }
        }
    }
    (tokens.get(1..).unwrap_or_default(), &[])
}

/// Comma-separated arguments, commas inside nested parentheses excepted.
fn split_arguments<'t, 'a>(tokens: &'t [Token<'a>]) -> impl Iterator<Item = &'t [Token<'a>]> {
    let mut depth = 0usize;
    tokens.split(move |t| {
        if t.is_punct("(") {
            depth += 1;
        } else if t.is_punct(")") {
            depth = depth.saturating_sub(1);
        }
        depth == 0 && t.is_punct(",")
    })
}

// ---------------------------------------------------------------------------------------
// The lexer
// ---------------------------------------------------------------------------------------

/// What a token is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// An unquoted identifier or keyword, as written.
    Word,
    /// A quoted identifier: its contents, `""` not yet undoubled.
    Quoted,
    /// A string literal: its contents, not yet unescaped.
    Str(Quote),
    /// One of `( ) , ; . = *`.
    Punct,
    /// Numbers, parameters, operators and anything else.
    Other,
}

/// How a string literal is quoted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Quote {
    /// `'…'` (also `N'…'`, `B'…'`, `X'…'`, `U&'…'`): `''` is a quote.
    Standard,
    /// `E'…'`: backslash escapes too.
    Escape,
    /// `$tag$…$tag$`: no escapes.
    Dollar,
}

#[derive(Debug, Clone, Copy)]
struct Token<'a> {
    kind: Kind,
    text: &'a str,
}

impl<'a> Token<'a> {
    /// Is this the unquoted keyword `kw` (lowercase)?
    fn is_kw(&self, kw: &str) -> bool {
        self.kind == Kind::Word && self.text.eq_ignore_ascii_case(kw)
    }

    fn is_kw_any(&self, kws: &[&str]) -> bool {
        kws.iter().any(|kw| self.is_kw(kw))
    }

    fn is_punct(&self, p: &str) -> bool {
        self.kind == Kind::Punct && self.text == p
    }

    /// Does this identifier name `name` (lowercase), as PostgreSQL folds identifiers?
    fn names(&self, name: &str) -> bool {
        match self.kind {
            Kind::Word => self.text.eq_ignore_ascii_case(name),
            Kind::Quoted => self.text == name,
            _ => false,
        }
    }

    /// An identifier's text: unquoted as written, quoted with `""` undoubled.
    fn identifier(&self) -> Option<Cow<'a, str>> {
        match self.kind {
            Kind::Word => Some(Cow::Borrowed(self.text)),
            Kind::Quoted => Some(undouble(self.text, "\"")),
            _ => None,
        }
    }

    /// A string literal's value.
    fn literal(&self) -> Option<Cow<'a, str>> {
        match self.kind {
            Kind::Str(Quote::Standard) => Some(undouble(self.text, "'")),
            Kind::Str(Quote::Escape) => Some(Cow::Owned(unescape(self.text))),
            Kind::Str(Quote::Dollar) => Some(Cow::Borrowed(self.text)),
            _ => None,
        }
    }
}

/// Replaces each doubled `quote` with a single one.
fn undouble<'a>(text: &'a str, quote: &str) -> Cow<'a, str> {
    let doubled = quote.repeat(2);
    if text.contains(&doubled) {
        Cow::Owned(text.replace(&doubled, quote))
    } else {
        Cow::Borrowed(text)
    }
}

/// The value of an `E'…'` literal's contents. Whitespace escapes become whitespace, any
/// other escaped character stands for itself (octal, hex and Unicode escapes are not
/// decoded: nothing here needs them).
fn unescape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some('n') => out.push('\n'),
                Some('t') => out.push('\t'),
                Some('r') => out.push('\r'),
                Some('f') => out.push('\x0c'),
                Some('b') => out.push('\x08'),
                Some(other) => out.push(other),
                None => {}
            },
            '\'' => {
                out.push('\'');
                chars.next(); // '' is one quote
            }
            c => out.push(c),
        }
    }
    out
}

/// PostgreSQL's whitespace: space, tab, newline, carriage return, form feed, vertical tab.
fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r' | b'\x0b' | b'\x0c')
}

fn is_ident_start(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_' || b >= 0x80
}

fn is_ident_cont(b: u8) -> bool {
    is_ident_start(b) || b.is_ascii_digit() || b == b'$'
}

/// Splits SQL into tokens, skipping whitespace and comments. Never fails: an unterminated
/// literal, identifier or comment runs to the end of the text.
struct Lexer<'a> {
    sql: &'a str,
    pos: usize,
}

impl<'a> Lexer<'a> {
    fn new(sql: &'a str) -> Self {
        Lexer { sql, pos: 0 }
    }

    fn peek(&self, ahead: usize) -> Option<u8> {
        self.sql.as_bytes().get(self.pos + ahead).copied()
    }

    fn advance(&mut self, n: usize) {
        self.pos = (self.pos + n).min(self.sql.len());
    }

    /// The text between two byte offsets (always on character boundaries: tokens start and
    /// end next to ASCII bytes or at the end).
    fn slice(&self, from: usize, to: usize) -> &'a str {
        self.sql.get(from..to).unwrap_or_default()
    }

    fn token(&self, kind: Kind, from: usize) -> Token<'a> {
        Token {
            kind,
            text: self.slice(from, self.pos),
        }
    }

    fn skip_trivia(&mut self) {
        loop {
            match (self.peek(0), self.peek(1)) {
                (Some(b), _) if is_space(b) => self.advance(1),
                (Some(b'-'), Some(b'-')) => self.skip_line_comment(),
                (Some(b'/'), Some(b'*')) => self.skip_block_comment(),
                _ => return,
            }
        }
    }

    fn skip_line_comment(&mut self) {
        let rest = self.sql.as_bytes().get(self.pos..).unwrap_or_default();
        let len = rest.iter().position(|&b| b == b'\n').unwrap_or(rest.len());
        self.advance(len);
    }

    /// `/* … */`, which nests.
    fn skip_block_comment(&mut self) {
        let mut depth = 0usize;
        while let Some(b) = self.peek(0) {
            match (b, self.peek(1)) {
                (b'/', Some(b'*')) => {
                    depth += 1;
                    self.advance(2);
                }
                (b'*', Some(b'/')) => {
                    depth = depth.saturating_sub(1);
                    self.advance(2);
                    if depth == 0 {
                        return;
                    }
                }
                _ => self.advance(1),
            }
        }
    }

    /// An identifier or keyword, or `E'…'`.
    fn word(&mut self) -> Token<'a> {
        let start = self.pos;
        self.advance(1);
        while self.peek(0).is_some_and(is_ident_cont) {
            self.advance(1);
        }
        let single_e =
            self.pos == start + 1 && self.slice(start, self.pos).eq_ignore_ascii_case("e");
        if single_e && self.peek(0) == Some(b'\'') {
            let text = self.quoted(b'\'', true);
            return Token {
                kind: Kind::Str(Quote::Escape),
                text,
            };
        }
        self.token(Kind::Word, start)
    }

    /// The contents of a `'…'` literal or `"…"` identifier starting here; a doubled quote
    /// (and with `backslash`, a backslash and the byte after it) does not end it.
    fn quoted(&mut self, quote: u8, backslash: bool) -> &'a str {
        self.advance(1);
        let start = self.pos;
        loop {
            match self.peek(0) {
                None => return self.slice(start, self.pos),
                Some(b'\\') if backslash => self.advance(2),
                Some(b) if b == quote && self.peek(1) == Some(quote) => self.advance(2),
                Some(b) if b == quote => {
                    let text = self.slice(start, self.pos);
                    self.advance(1);
                    return text;
                }
                Some(_) => self.advance(1),
            }
        }
    }

    /// `$tag$…$tag$`, a parameter `$1`, or a lone `$`.
    fn dollar(&mut self) -> Token<'a> {
        let start = self.pos;
        let Some(tag_len) = self.dollar_tag_len() else {
            self.advance(1);
            while self.peek(0).is_some_and(|b| b.is_ascii_digit()) {
                self.advance(1);
            }
            return self.token(Kind::Other, start);
        };
        let tag = self.slice(start, start + tag_len);
        let body = start + tag_len;
        let rest = self.sql.get(body..).unwrap_or_default();
        let body_len = rest.find(tag).unwrap_or(rest.len());
        self.pos = body;
        self.advance(body_len + tag_len);
        Token {
            kind: Kind::Str(Quote::Dollar),
            text: self.slice(body, body + body_len),
        }
    }

    /// The length of the `$tag$` starting here, if one does.
    fn dollar_tag_len(&self) -> Option<usize> {
        let rest = self.sql.as_bytes().get(self.pos + 1..)?;
        let name_len = rest
            .iter()
            .take_while(|&&b| is_ident_cont(b) && b != b'$')
            .count();
        let starts_with_digit = rest.first().is_some_and(|b| b.is_ascii_digit());
        (!starts_with_digit && rest.get(name_len) == Some(&b'$')).then_some(name_len + 2)
    }

    fn number(&mut self) -> Token<'a> {
        let start = self.pos;
        while self
            .peek(0)
            .is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.')
        {
            self.advance(1);
        }
        self.token(Kind::Other, start)
    }
}

impl<'a> Iterator for Lexer<'a> {
    type Item = Token<'a>;

    fn next(&mut self) -> Option<Token<'a>> {
        self.skip_trivia();
        let start = self.pos;
        let token = match self.peek(0)? {
            b'\'' => Token {
                kind: Kind::Str(Quote::Standard),
                text: self.quoted(b'\'', false),
            },
            b'"' => Token {
                kind: Kind::Quoted,
                text: self.quoted(b'"', false),
            },
            b'$' => self.dollar(),
            b if is_ident_start(b) => self.word(),
            b if b.is_ascii_digit() => self.number(),
            b'(' | b')' | b',' | b';' | b'.' | b'=' | b'*' => {
                self.advance(1);
                self.token(Kind::Punct, start)
            }
            _ => {
                self.advance(1);
                self.token(Kind::Other, start)
            }
        };
        Some(token)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use PinReason::*;

    #[test]
    fn the_first_word_fast_path_agrees_with_the_lexer() {
        let texts = [
            "SET x = 1",
            "  select 1",
            "\tReset all",
            "E'set'",
            "/* c */ set x to 1",
            "-- c\nset x to 1",
            "déclare c cursor for select 1",
            "set$x",
            "Set_config",
            "do $$ begin end $$",
            "EXPLAIN ANALYZE select 1",
            "drop table t",
            "dropx",
            "(select 1)",
            "",
            "   ",
            "listen a",
            "unlisten *",
            "LOAD 'x'",
            "sét x",
            "set\u{e9}",
            "\"set\" x",
            "x",
            "create temp table t()",
            "prepare p as select 1",
        ];
        for sql in texts {
            let lexed = Lexer::new(sql).next().is_some_and(|t| is_effect_verb(&t));
            assert_eq!(first_word_is_effect_verb(sql), lexed, "{sql:?}");
        }
    }

    type Cases = Vec<(&'static str, Vec<Effect>)>;

    fn set(name: &str) -> Effect {
        Effect::Setting(name.to_owned())
    }

    fn pin(reason: PinReason) -> Effect {
        Effect::Pin(reason)
    }

    fn release(reason: PinReason) -> Effect {
        Effect::Release(reason)
    }

    fn check(cases: Cases) {
        for (sql, expected) in cases {
            assert_eq!(effects(sql), expected, "effects of {sql:?}");
            if !expected.is_empty() {
                assert!(may_have_effects(sql), "may_have_effects({sql:?})");
            }
        }
    }

    fn setting_cases() -> Cases {
        vec![
            ("SET search_path TO app, public", vec![set("search_path")]),
            ("set Search_Path = 'x'", vec![set("search_path")]),
            ("SET work_mem='64MB'", vec![set("work_mem")]),
            (
                "SET SESSION statement_timeout = 0",
                vec![set("statement_timeout")],
            ),
            ("set session DateStyle to ISO", vec![set("datestyle")]),
            ("SET myapp.tenant = '42'", vec![set("myapp.tenant")]),
            ("SET MyApp.Tenant TO 42", vec![set("myapp.tenant")]),
            ("SET \"TimeZone\" TO 'UTC'", vec![set("timezone")]),
            ("SET \"MyApp\".\"Tenant\" = 1", vec![set("myapp.tenant")]),
            ("SET TIME ZONE 'UTC'", vec![set("timezone")]),
            ("set time zone local", vec![set("timezone")]),
            ("SET SESSION TIME ZONE DEFAULT", vec![set("timezone")]),
            ("SET NAMES 'UTF8'", vec![set("client_encoding")]),
            ("SET SCHEMA 'app'", vec![set("search_path")]),
            ("SET XML OPTION DOCUMENT", vec![set("xmloption")]),
            ("SET datestyle TO DEFAULT", vec![set("datestyle")]),
            ("RESET search_path", vec![set("search_path")]),
            ("reset MyApp.Tenant", vec![set("myapp.tenant")]),
            ("RESET TIME ZONE", vec![set("timezone")]),
            ("RESET ALL", vec![Effect::ResetAll]),
            ("reset all", vec![Effect::ResetAll]),
            (
                "SET application_name = 'LISTEN x; SET LOCAL y = 1'",
                vec![set("application_name")],
            ),
            ("SET a = 'unterminated", vec![set("a")]),
        ]
    }

    fn transaction_scoped_cases() -> Cases {
        vec![
            ("SET LOCAL search_path = x", vec![]),
            ("set local time zone 'UTC'", vec![]),
            ("SET LOCAL ROLE admin", vec![]),
            ("SET LOCAL SESSION AUTHORIZATION alice", vec![]),
            ("SET TRANSACTION ISOLATION LEVEL SERIALIZABLE", vec![]),
            ("SET TRANSACTION SNAPSHOT '00000003-0000001B-1'", vec![]),
            ("SET SESSION TRANSACTION READ ONLY", vec![]),
            (
                "SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY",
                vec![],
            ),
            ("SET CONSTRAINTS ALL DEFERRED", vec![]),
            ("RESET TRANSACTION ISOLATION LEVEL", vec![]),
            ("SET search_path", vec![]),
            ("SHOW search_path", vec![]),
            ("UPDATE t SET a = 1", vec![]),
            ("ALTER ROLE app SET search_path = app", vec![]),
            (
                "CREATE FUNCTION f() RETURNS int LANGUAGE sql SET search_path = x AS 'SELECT 1'",
                vec![],
            ),
        ]
    }

    fn identity_cases() -> Cases {
        vec![
            ("SET ROLE app_admin", vec![pin(SessionAuth)]),
            ("set role = 'admin'", vec![pin(SessionAuth)]),
            ("SET role TO admin", vec![pin(SessionAuth)]),
            ("SET \"role\" TO admin", vec![pin(SessionAuth)]),
            ("SET SESSION ROLE admin", vec![pin(SessionAuth)]),
            ("SET SESSION AUTHORIZATION alice", vec![pin(SessionAuth)]),
            ("set session authorization 'alice'", vec![pin(SessionAuth)]),
            (
                "SET session_authorization = 'alice'",
                vec![pin(SessionAuth)],
            ),
            ("SET ROLE NONE", vec![release(SessionAuth)]),
            ("SET role = DEFAULT", vec![release(SessionAuth)]),
            (
                "SET SESSION AUTHORIZATION DEFAULT",
                vec![release(SessionAuth)],
            ),
            ("RESET ROLE", vec![release(SessionAuth)]),
            ("reset role", vec![release(SessionAuth)]),
            ("RESET SESSION AUTHORIZATION", vec![release(SessionAuth)]),
            ("RESET session_authorization", vec![release(SessionAuth)]),
        ]
    }

    fn discard_listen_load_cases() -> Cases {
        vec![
            ("DISCARD ALL", vec![Effect::DiscardAll]),
            ("discard all", vec![Effect::DiscardAll]),
            ("DISCARD TEMP", vec![release(TempTable)]),
            ("Discard Temporary", vec![release(TempTable)]),
            ("DISCARD PLANS", vec![]),
            ("DISCARD SEQUENCES", vec![]),
            ("LISTEN jobs", vec![pin(Listen)]),
            ("listen \"Jobs\"", vec![pin(Listen)]),
            ("UNLISTEN jobs", vec![release(Listen)]),
            ("unlisten *", vec![release(Listen)]),
            ("NOTIFY jobs, 'LISTEN x'", vec![]),
            ("SELECT pg_notify('jobs', 'LISTEN')", vec![]),
            ("LOAD 'auto_explain'", vec![pin(Load)]),
            ("load '$libdir/plugins/auto_explain'", vec![pin(Load)]),
        ]
    }

    fn temp_cases() -> Cases {
        vec![
            ("CREATE TEMP TABLE t (a int)", vec![pin(TempTable)]),
            ("create temporary table t (a int)", vec![pin(TempTable)]),
            (
                "CREATE GLOBAL TEMPORARY TABLE t (a int)",
                vec![pin(TempTable)],
            ),
            ("CREATE LOCAL TEMP TABLE t (a int)", vec![pin(TempTable)]),
            ("CREATE TEMP VIEW v AS SELECT 1", vec![pin(TempTable)]),
            (
                "CREATE OR REPLACE TEMP VIEW v AS SELECT 1",
                vec![pin(TempTable)],
            ),
            ("CREATE TEMP SEQUENCE s", vec![pin(TempTable)]),
            (
                "CREATE TEMP RECURSIVE VIEW v (n) AS SELECT 1",
                vec![pin(TempTable)],
            ),
            ("CREATE TEMP TABLE t AS SELECT 1", vec![pin(TempTable)]),
            (
                "CREATE TEMP TABLE IF NOT EXISTS t (a int) ON COMMIT PRESERVE ROWS",
                vec![pin(TempTable)],
            ),
            (
                "CREATE TEMP TABLE t (a int) ON COMMIT DELETE ROWS",
                vec![pin(TempTable)],
            ),
            ("CREATE TEMP TABLE t (a int) ON COMMIT DROP", vec![]),
            ("create temp table t on commit drop as select 1", vec![]),
            ("CREATE TABLE pg_temp.t (a int)", vec![pin(TempTable)]),
            ("CREATE VIEW pg_temp.v AS SELECT 1", vec![pin(TempTable)]),
            ("CREATE TABLE \"pg_temp\".t (a int)", vec![pin(TempTable)]),
            ("CREATE TABLE PG_TEMP . t (a int)", vec![pin(TempTable)]),
            (
                "CREATE FUNCTION pg_temp.f() RETURNS int LANGUAGE sql AS 'SELECT 1'",
                vec![pin(TempTable)],
            ),
            ("CREATE TABLE t (a int)", vec![]),
            ("CREATE UNLOGGED TABLE t (a int)", vec![]),
            ("CREATE TABLE temp_log (temp int)", vec![]),
            ("CREATE TABLE t (a int) /* TEMP */", vec![]),
            ("SELECT * INTO TEMP t FROM u", vec![pin(TempTable)]),
            ("SELECT 1 AS a INTO TEMPORARY TABLE t", vec![pin(TempTable)]),
            ("select * into local temp t from u", vec![pin(TempTable)]),
            (
                "WITH x AS (SELECT 1) SELECT * INTO TEMP t FROM x",
                vec![pin(TempTable)],
            ),
            (
                "EXPLAIN ANALYZE CREATE TEMP TABLE t AS SELECT 1",
                vec![pin(TempTable)],
            ),
            (
                "EXPLAIN (ANALYZE, BUFFERS) SELECT * INTO TEMP t FROM u",
                vec![pin(TempTable)],
            ),
            ("SELECT * INTO t FROM u", vec![]),
            ("INSERT INTO temp VALUES (1)", vec![]),
            ("SELECT temp FROM weather", vec![]),
            ("SELECT 'INTO TEMP'", vec![]),
            ("DROP TABLE t", vec![release(TempTable)]),
            ("drop view v", vec![release(TempTable)]),
            ("DROP SEQUENCE IF EXISTS s", vec![release(TempTable)]),
        ]
    }

    fn cursor_cases() -> Cases {
        vec![
            (
                "DECLARE c CURSOR WITH HOLD FOR SELECT 1",
                vec![pin(HoldCursor)],
            ),
            (
                "declare c binary insensitive no scroll cursor with hold for select 1",
                vec![pin(HoldCursor)],
            ),
            (
                "DECLARE \"C\" ASENSITIVE SCROLL CURSOR WITH HOLD FOR SELECT 1",
                vec![pin(HoldCursor)],
            ),
            ("DECLARE c CURSOR FOR SELECT 1", vec![]),
            ("DECLARE c CURSOR WITHOUT HOLD FOR SELECT 1", vec![]),
            ("DECLARE c CURSOR FOR SELECT 'with hold'", vec![]),
            (
                "DECLARE c CURSOR FOR WITH hold AS (SELECT 1) SELECT * FROM hold",
                vec![],
            ),
            ("CLOSE c", vec![release(HoldCursor)]),
            ("close all", vec![release(HoldCursor)]),
            ("FETCH 10 FROM c", vec![]),
        ]
    }

    fn prepare_cases() -> Cases {
        vec![
            ("PREPARE q (int) AS SELECT $1", vec![pin(SqlPrepare)]),
            ("prepare q as select 1", vec![pin(SqlPrepare)]),
            ("PREPARE TRANSACTION 'gid-1'", vec![]),
            ("PREPARE transaction AS SELECT 1", vec![pin(SqlPrepare)]),
            ("PREPARE q", vec![]),
            ("DEALLOCATE q", vec![release(SqlPrepare)]),
            ("DEALLOCATE PREPARE q", vec![release(SqlPrepare)]),
            ("deallocate prepare", vec![release(SqlPrepare)]),
            ("DEALLOCATE ALL", vec![Effect::DeallocateAll]),
            ("deallocate prepare all", vec![Effect::DeallocateAll]),
            ("EXECUTE q(1)", vec![]),
            ("COMMIT PREPARED 'gid-1'", vec![]),
        ]
    }

    fn call_cases() -> Cases {
        vec![
            ("SELECT pg_advisory_lock(1)", vec![pin(AdvisoryLock)]),
            ("select PG_ADVISORY_LOCK_SHARED(1)", vec![pin(AdvisoryLock)]),
            ("SELECT pg_try_advisory_lock(1, 2)", vec![pin(AdvisoryLock)]),
            (
                "SELECT pg_try_advisory_lock_shared(1)",
                vec![pin(AdvisoryLock)],
            ),
            (
                "SELECT pg_catalog.pg_advisory_lock(1)",
                vec![pin(AdvisoryLock)],
            ),
            ("SELECT \"pg_advisory_lock\"(1)", vec![pin(AdvisoryLock)]),
            (
                "SELECT pg_advisory_lock /* why not */ (1)",
                vec![pin(AdvisoryLock)],
            ),
            (
                "SELECT id FROM jobs WHERE pg_try_advisory_lock(jobs.id) LIMIT 1",
                vec![pin(AdvisoryLock)],
            ),
            (
                "UPDATE t SET locked = pg_try_advisory_lock(id)",
                vec![pin(AdvisoryLock)],
            ),
            ("SELECT pg_advisory_unlock(1)", vec![release(AdvisoryLock)]),
            (
                "SELECT pg_advisory_unlock_shared(1)",
                vec![release(AdvisoryLock)],
            ),
            (
                "SELECT pg_advisory_unlock_all()",
                vec![release(AdvisoryLock)],
            ),
            ("SELECT pg_advisory_xact_lock(1)", vec![]),
            ("SELECT pg_advisory_xact_lock_shared(1)", vec![]),
            ("SELECT pg_try_advisory_xact_lock(1)", vec![]),
            ("SELECT pg_try_advisory_xact_lock_shared(1)", vec![]),
            ("SELECT \"PG_ADVISORY_LOCK\"(1)", vec![]),
            ("SELECT pg_advisory_lock FROM t", vec![]),
            ("SELECT my_pg_advisory_lock(1)", vec![]),
            (
                "SELECT set_config('search_path', 'x', false)",
                vec![pin(SetConfig)],
            ),
            ("SELECT set_config('a', $1, $2)", vec![pin(SetConfig)]),
            ("SELECT SET_CONFIG('a', 'b')", vec![pin(SetConfig)]),
            ("SELECT set_config('a', 'b', true)", vec![]),
            ("SELECT pg_catalog.set_config('a', 'b', 'on')", vec![]),
            (
                "SELECT set_config('a', (SELECT string_agg(x, ',') FROM t), TRUE)",
                vec![],
            ),
            (
                "SELECT set_config('a', 'b', NOT false)",
                vec![pin(SetConfig)],
            ),
            (
                "SELECT pg_advisory_lock(1), set_config('a', 'b', false)",
                vec![pin(AdvisoryLock), pin(SetConfig)],
            ),
            (
                "SELECT pg_advisory_lock(1), pg_advisory_lock(2)",
                vec![pin(AdvisoryLock)],
            ),
            (
                "PREPARE q AS SELECT pg_advisory_lock($1)",
                vec![pin(SqlPrepare), pin(AdvisoryLock)],
            ),
            (
                "CREATE TEMP TABLE t AS SELECT pg_advisory_unlock_all()",
                vec![pin(TempTable), release(AdvisoryLock)],
            ),
        ]
    }

    fn do_cases() -> Cases {
        vec![
            (
                "DO $$BEGIN PERFORM pg_advisory_lock(1); END$$",
                vec![pin(AdvisoryLock)],
            ),
            (
                "do $body$ BEGIN LISTEN jobs; CREATE TEMP TABLE t (a int); END $body$",
                vec![pin(Listen), pin(TempTable)],
            ),
            (
                "DO LANGUAGE plpgsql 'BEGIN IF true THEN RAISE NOTICE ''x''; LISTEN x; END IF; END'",
                vec![pin(Listen)],
            ),
            (
                "DO E'BEGIN\\nSET search_path = app;\\nEND'",
                vec![set("search_path")],
            ),
            ("DO $$BEGIN RAISE NOTICE 'LISTEN x'; END$$", vec![]),
            ("DO $$BEGIN PERFORM pg_advisory_xact_lock(1); END$$", vec![]),
            ("DO $$BEGIN SET LOCAL a = 1; END$$", vec![]),
        ]
    }

    fn ignored_text_cases() -> Cases {
        vec![
            ("SELECT 'LISTEN x'", vec![]),
            ("/* SET x=1 */ SELECT 1", vec![]),
            ("SELECT $$pg_advisory_lock(1)$$", vec![]),
            ("SELECT $tag$ ; LISTEN x; $tag$", vec![]),
            ("SELECT $a$ $b$ LISTEN $b$ $a$", vec![]),
            ("-- LISTEN x\nSELECT 1", vec![]),
            ("SELECT 1 -- ; pg_advisory_lock(1)", vec![]),
            ("/* outer /* inner */ ; LISTEN x */ SELECT 1", vec![]),
            ("SELECT E'it\\'s; pg_advisory_lock(1)'", vec![]),
            ("SELECT 'it''s; LISTEN x'", vec![]),
            ("SELECT 'a\\'; SELECT 1", vec![]),
            ("SELECT \"pg_advisory_lock\" FROM t", vec![]),
            ("SELECT 1 AS \"; LISTEN x\"", vec![]),
            ("SELECT 1 AS \"a\"\"; LISTEN x\"", vec![]),
            ("SELECT x$$ FROM t; SELECT 2", vec![]),
            ("SELECT $1; SELECT $2", vec![]),
            ("SELECT U&'\\0041; LISTEN'", vec![]),
            ("/* c */ LISTEN x", vec![pin(Listen)]),
            ("-- c\n  SET a = 1", vec![set("a")]),
            ("SELECT 1", vec![]),
            (
                "select abalance from pgbench_accounts where aid = $1",
                vec![],
            ),
            ("INSERT INTO t VALUES (1)", vec![]),
            ("DELETE FROM t WHERE id = 1", vec![]),
            ("BEGIN", vec![]),
            ("COMMIT", vec![]),
            ("BEGIN; UPDATE t SET a = 1; COMMIT", vec![]),
            ("EXPLAIN ANALYZE SELECT 1", vec![]),
            ("VACUUM t", vec![]),
        ]
    }

    fn multi_statement_cases() -> Cases {
        vec![
            (
                "SET a = 1; SET LOCAL b = 2; LISTEN c",
                vec![set("a"), pin(Listen)],
            ),
            ("SELECT 1; DISCARD ALL", vec![Effect::DiscardAll]),
            ("LISTEN a;UNLISTEN a", vec![pin(Listen), release(Listen)]),
            (";;; LISTEN x ;", vec![pin(Listen)]),
            (
                "BEGIN; SELECT pg_advisory_lock(1); COMMIT",
                vec![pin(AdvisoryLock)],
            ),
            ("SELECT ';'; LISTEN x", vec![pin(Listen)]),
            ("SET a = 1; SET a = 2", vec![set("a")]),
            (
                "SET a = 1; RESET ALL; SET a = 2",
                vec![set("a"), Effect::ResetAll, set("a")],
            ),
            (
                "SELECT pg_advisory_unlock(1); SELECT pg_advisory_lock(1)",
                vec![release(AdvisoryLock), pin(AdvisoryLock)],
            ),
            ("LISTEN x; SELECT 'oops", vec![pin(Listen)]),
        ]
    }

    fn garbage_cases() -> Cases {
        let nothing = [
            "",
            ";",
            "   \n\t",
            "SET",
            "SET SESSION",
            "SET LOCAL",
            "SET TIME",
            "SET ROLE",
            "RESET",
            "DISCARD",
            "LISTEN",
            "UNLISTEN",
            "CREATE",
            "CREATE OR",
            "CREATE GLOBAL",
            "DECLARE",
            "CLOSE",
            "PREPARE",
            "PREPARE TRANSACTION",
            "DEALLOCATE",
            "DROP",
            "LOAD",
            "DO",
            "DO $$",
            "EXPLAIN",
            "EXPLAIN (",
            "EXPLAIN (ANALYZE",
            "SELECT 'unterminated",
            "SELECT \"unterminated",
            "SELECT $$ unterminated",
            "SELECT $x$ unterminated $y$",
            "/* unterminated",
            "/* /* */",
            "-- no newline",
            "SELECT E'\\",
            "E'",
            "e'\\'",
            "$",
            "$1",
            "$a",
            "$$",
            "é LISTEN",
            "ÉSET a = 1",
            "SELECT 1.5e3, .5, 0x1F, 1_000",
            "((((",
            "))))",
            "SET = 1",
            "SET a.",
            "SET a.= 1",
            "RESET a.",
            "\u{0}\u{1}",
        ];
        let mut cases: Cases = nothing.iter().map(|sql| (*sql, vec![])).collect();
        cases.extend([
            ("SELECT pg_advisory_lock(", vec![pin(AdvisoryLock)]),
            ("SELECT set_config(", vec![pin(SetConfig)]),
            ("SELECT set_config('a', 'b', true", vec![]),
            ("DO $$BEGIN LISTEN x", vec![pin(Listen)]),
            ("LISTEN é", vec![pin(Listen)]),
        ]);
        cases
    }

    fn all_cases() -> Cases {
        [
            setting_cases(),
            transaction_scoped_cases(),
            identity_cases(),
            discard_listen_load_cases(),
            temp_cases(),
            cursor_cases(),
            prepare_cases(),
            call_cases(),
            do_cases(),
            ignored_text_cases(),
            multi_statement_cases(),
            garbage_cases(),
        ]
        .concat()
    }

    #[test]
    fn plain_settings_are_named_canonically() {
        check(setting_cases());
    }

    #[test]
    fn transaction_scoped_statements_have_no_effect() {
        check(transaction_scoped_cases());
    }

    #[test]
    fn role_and_session_authorization_pin_and_release() {
        check(identity_cases());
    }

    #[test]
    fn discard_listen_and_load() {
        check(discard_listen_load_cases());
    }

    #[test]
    fn temporary_objects_pin_unless_dropped_on_commit() {
        check(temp_cases());
    }

    #[test]
    fn only_cursors_with_hold_pin() {
        check(cursor_cases());
    }

    #[test]
    fn sql_prepared_statements() {
        check(prepare_cases());
    }

    #[test]
    fn function_calls_anywhere_in_a_statement() {
        check(call_cases());
    }

    #[test]
    fn do_blocks_are_judged_by_their_body() {
        check(do_cases());
    }

    #[test]
    fn literals_comments_and_quoted_identifiers_do_not_count() {
        check(ignored_text_cases());
    }

    #[test]
    fn every_statement_counts_in_order() {
        check(multi_statement_cases());
    }

    #[test]
    fn garbage_never_panics() {
        check(garbage_cases());
    }

    #[test]
    fn the_pre_check_never_hides_effects() {
        for (sql, _) in all_cases() {
            if !effects(sql).is_empty() {
                assert!(may_have_effects(sql), "may_have_effects({sql:?})");
            }
        }
    }

    #[test]
    fn the_pre_check_rejects_ordinary_statements() {
        for sql in [
            "SELECT 1",
            "select abalance from pgbench_accounts where aid = $1",
            "UPDATE pgbench_accounts SET abalance = abalance + $1 WHERE aid = $2",
            "INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES ($1, $2, $3, $4, now())",
            "DELETE FROM t WHERE id = 1",
            "BEGIN",
            "COMMIT",
            "ROLLBACK",
            "SELECT 1;",
            "  /* hi */ SELECT 1 ;  \n",
        ] {
            assert!(!may_have_effects(sql), "may_have_effects({sql:?})");
        }
    }

    /// Every prefix of every case (unterminated everything) and every pair of fragments:
    /// no panic, and the pre-check never hides an effect.
    #[test]
    fn truncated_and_spliced_texts_never_panic_nor_hide_effects() {
        let property = |sql: &str| {
            if !effects(sql).is_empty() {
                assert!(may_have_effects(sql), "may_have_effects({sql:?})");
            }
        };
        for (sql, _) in all_cases() {
            for (i, _) in sql.char_indices() {
                property(&sql[..i]);
                property(&sql[i..]);
            }
        }
        let fragments = [
            "SET",
            "RESET",
            "LISTEN",
            "DO",
            "EXPLAIN",
            "CREATE",
            "TEMP",
            "INTO",
            "SELECT",
            "DECLARE",
            "WITH",
            "HOLD",
            "FOR",
            "SESSION",
            "LOCAL",
            "ROLE",
            "a",
            "pg_advisory_lock",
            "set_config",
            "(",
            ")",
            ",",
            ";",
            ".",
            "=",
            "'",
            "''",
            "E'",
            "\\",
            "\"",
            "$$",
            "$a$",
            "$1",
            "--",
            "\n",
            "/*",
            "*/",
            " ",
            "é",
            "true",
        ];
        for a in fragments {
            for b in fragments {
                for c in fragments {
                    property(&format!("{a} {b}{c}"));
                    property(&format!("{a}{b} {c} x"));
                }
            }
        }
    }

    #[test]
    fn reasons_have_distinct_names() {
        let names: std::collections::HashSet<&str> =
            PinReason::ALL.iter().map(|r| r.as_str()).collect();
        assert_eq!(names.len(), PinReason::ALL.len());
        assert_eq!(PinReason::TempTable.as_str(), "temp_table");
        assert_eq!(PinReason::SqlPrepare.as_str(), "sql_prepare");
    }

    #[test]
    fn the_lexer_skips_literals_identifiers_and_comments() {
        let kinds = |sql: &str| -> Vec<(Kind, String)> {
            Lexer::new(sql)
                .map(|t| (t.kind, t.text.to_owned()))
                .collect()
        };
        assert_eq!(
            kinds("a /* x /* y */ z */ 'b''c' E'd\\'e' $t$f$t$ \"g\"\"h\" $1 -- i"),
            vec![
                (Kind::Word, "a".into()),
                (Kind::Str(Quote::Standard), "b''c".into()),
                (Kind::Str(Quote::Escape), "d\\'e".into()),
                (Kind::Str(Quote::Dollar), "f".into()),
                (Kind::Quoted, "g\"\"h".into()),
                (Kind::Other, "$1".into()),
            ]
        );
        let literal = |sql: &str| {
            Lexer::new(sql)
                .next()
                .and_then(|t| t.literal().map(|l| l.into_owned()))
        };
        assert_eq!(literal("'b''c'"), Some("b'c".to_owned()));
        assert_eq!(literal("E'd\\'e\\n'"), Some("d'e\n".to_owned()));
        assert_eq!(literal("$$x'y$$"), Some("x'y".to_owned()));
    }
}
