//! Conformance: every SQL case in `tests/conformance/*.sql` runs directly against PostgreSQL and through pgcorral in each pool mode, and the client must see the same protocol messages.
//!
//! One PostgreSQL cluster serves everything; one pgcorral per pool mode sits in front of it. For each case
//! and protocol the direct run comes first, then one run per pool mode, each on a fresh connection. The
//! messages of every statement are compared byte for byte after dropping what legitimately differs between
//! a direct and a pooled connection: ParameterStatus, BackendKeyData, and the sender pid of
//! NotificationResponse. The case format is described in `tests/conformance/README.md`.
//!
//! Environment: `CONFORMANCE_CASE=<substring>` runs only the cases whose file name contains it;
//! `CONFORMANCE_SHOW=1` prints the direct transcript of every case run (to check what a case exercises).

mod common;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::pooler::Pooler;
use common::raw::RawClient;
use common::stack::{bin, config_text, Stack, StackConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// How long one request (a statement, or the closing of named statements) may take, first byte to
/// ReadyForQuery.
const REQUEST_DEADLINE: Duration = Duration::from_secs(20);

/// Messages shown before and after the first difference in a diff.
const DIFF_CONTEXT: usize = 4;

/// A pgcorral pool mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Session,
    Transaction,
    Statement,
    Auto,
}

const ALL_MODES: [Mode; 4] = [
    Mode::Session,
    Mode::Transaction,
    Mode::Statement,
    Mode::Auto,
];

/// Pool modes in which `-- named` cases run: all of them (pgcorral renames named statements
/// per server connection in transaction, statement and auto mode).
const NAMED_MODES: &[Mode] = &ALL_MODES;

/// Pool modes whose pooled runs put every request on a server connection not used before: ahead of each
/// request the harness sends `RECONNECT postgres` to the pooler's admin console, so no idle server
/// connection is reused and the one in use closes when released. What the client sees must not depend on
/// landing on the same server connection again (prepared statements, settings...). A client in session
/// mode keeps its server connection for the whole session, so RECONNECT would change nothing there.
const FRESH_SERVER_MODES: &[Mode] = &[Mode::Transaction, Mode::Statement, Mode::Auto];

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::Session => "session",
            Mode::Transaction => "transaction",
            Mode::Statement => "statement",
            Mode::Auto => "auto",
        }
    }

    fn parse(word: &str) -> Option<Mode> {
        ALL_MODES.into_iter().find(|m| m.name() == word)
    }
}

/// How a statement is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Protocol {
    /// One Query message.
    Simple,
    /// Parse, Bind, Describe portal, Execute, Sync.
    Extended,
}

const ALL_PROTOCOLS: [Protocol; 2] = [Protocol::Simple, Protocol::Extended];

impl Protocol {
    fn name(self) -> &'static str {
        match self {
            Protocol::Simple => "simple",
            Protocol::Extended => "extended",
        }
    }

    fn parse(word: &str) -> Option<Protocol> {
        ALL_PROTOCOLS.into_iter().find(|p| p.name() == word)
    }
}

// ---------------------------------------------------------------------------------------------------------
// Cases
// ---------------------------------------------------------------------------------------------------------

/// One `tests/conformance/*.sql` file.
#[derive(Debug)]
struct Case {
    /// File name without `.sql`.
    name: String,
    modes: Vec<Mode>,
    protocols: Vec<Protocol>,
    /// Run directly on the server, once, before all runs.
    setup: Vec<String>,
    /// Extended protocol: named prepared statements `s1`, `s2`...
    named: bool,
    /// Extended protocol: binary results (format code 1 for every column).
    binary: bool,
    /// Extended protocol: Execute's row limit (0: all rows).
    max_rows: u32,
    /// Send every request at once, then read the answers.
    pipeline: bool,
    known: Vec<KnownDifference>,
    statements: Vec<Statement>,
}

#[derive(Debug)]
struct Statement {
    sql: String,
    /// Sent as one CopyData, then CopyDone, in answer to each CopyInResponse.
    copy_data: Vec<u8>,
}

/// A difference of pgcorral that the case documents; runs in these modes and protocols are skipped.
#[derive(Debug)]
struct KnownDifference {
    modes: Vec<Mode>,
    protocols: Vec<Protocol>,
    reason: String,
}

impl Case {
    /// The pool modes in which pooled runs of this case in `protocol` are compared.
    fn modes_for(&self, protocol: Protocol) -> Vec<Mode> {
        let named = self.named && protocol == Protocol::Extended;
        self.modes
            .iter()
            .copied()
            .filter(|m| !named || NAMED_MODES.contains(m))
            .collect()
    }

    /// The documented difference that skips runs in `mode` and `protocol`, if any.
    fn known_difference(&self, mode: Mode, protocol: Protocol) -> Option<&KnownDifference> {
        self.known
            .iter()
            .find(|k| k.modes.contains(&mode) && k.protocols.contains(&protocol))
    }
}

/// The cases of `tests/conformance/`, sorted by name, filtered by `CONFORMANCE_CASE`.
fn load_cases() -> Vec<Case> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/conformance");
    let filter = std::env::var("CONFORMANCE_CASE").unwrap_or_default();
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "sql"))
        .collect();
    paths.sort();
    paths
        .iter()
        .map(|p| {
            let name = p.file_stem().unwrap().to_string_lossy().into_owned();
            let text = std::fs::read_to_string(p)
                .unwrap_or_else(|e| panic!("cannot read {}: {e}", p.display()));
            parse_case(&name, &text).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        })
        .filter(|c| c.name.contains(&filter))
        .collect()
}

/// A line that separates statements.
fn is_separator(line: &str) -> bool {
    line.trim() == "-- next"
}

/// Parses a case file: leading comment lines (directives and free text), then statements separated by
/// `-- next` lines.
fn parse_case(name: &str, text: &str) -> Result<Case, String> {
    let mut case = Case {
        name: name.to_owned(),
        modes: ALL_MODES.to_vec(),
        protocols: ALL_PROTOCOLS.to_vec(),
        setup: Vec::new(),
        named: false,
        binary: false,
        max_rows: 0,
        pipeline: false,
        known: Vec::new(),
        statements: Vec::new(),
    };
    let lines: Vec<&str> = text.lines().collect();
    let header_len = lines
        .iter()
        .position(|l| is_separator(l) || !(l.trim().is_empty() || l.trim().starts_with("--")))
        .unwrap_or(lines.len());
    for line in &lines[..header_len] {
        if let Some(comment) = line.trim().strip_prefix("--") {
            apply_directive(&mut case, comment.trim())?;
        }
    }
    let mut blocks: Vec<Vec<&str>> = vec![Vec::new()];
    for line in &lines[header_len..] {
        if is_separator(line) {
            blocks.push(Vec::new());
        } else {
            blocks.last_mut().unwrap().push(line);
        }
    }
    if blocks.len() > 1 && blocks.last().unwrap().iter().all(|l| l.trim().is_empty()) {
        blocks.pop();
    }
    case.statements = blocks.iter().map(|b| parse_statement(b)).collect();
    if case.statements.is_empty() {
        return Err("no statements".into());
    }
    let copies = case.statements.iter().any(|s| !s.copy_data.is_empty());
    if case.pipeline && (case.max_rows > 0 || copies) {
        return Err("a pipeline case cannot have max-rows or copy data".into());
    }
    Ok(case)
}

/// Applies one header comment (without `--`) if it is a directive: `name` or `name: value`, where the
/// name is lowercase letters and hyphens. Other comments are free text.
fn apply_directive(case: &mut Case, comment: &str) -> Result<(), String> {
    let (key, value) = match comment.split_once(':') {
        Some((k, v)) => (k.trim(), v.trim()),
        None => (comment, ""),
    };
    if key.is_empty() || !key.chars().all(|c| c.is_ascii_lowercase() || c == '-') {
        return Ok(());
    }
    match key {
        "modes" => case.modes = parse_words(value, Mode::parse, "mode")?,
        "protocols" => case.protocols = parse_words(value, Protocol::parse, "protocol")?,
        "setup" => case.setup.push(value.to_owned()),
        "named" => case.named = true,
        "binary" => case.binary = true,
        "pipeline" => case.pipeline = true,
        "max-rows" => {
            case.max_rows = value
                .parse()
                .map_err(|_| format!("max-rows: `{value}` is not a row count"))?;
        }
        "known-difference" => case.known.push(parse_known_difference(value)?),
        _ => return Err(format!("unknown directive `-- {comment}`")),
    }
    Ok(())
}

/// Space-separated words, each parsed by `parse`.
fn parse_words<T>(value: &str, parse: fn(&str) -> Option<T>, what: &str) -> Result<Vec<T>, String> {
    let words: Vec<T> = value
        .split_whitespace()
        .map(|w| parse(w).ok_or_else(|| format!("unknown {what} `{w}`")))
        .collect::<Result<_, _>>()?;
    if words.is_empty() {
        return Err(format!("no {what} given"));
    }
    Ok(words)
}

/// `<modes and protocols>: <reason>`, e.g. `transaction auto extended: ...`; no protocol means both.
fn parse_known_difference(value: &str) -> Result<KnownDifference, String> {
    let (scope, reason) = value
        .split_once(':')
        .ok_or("known-difference: expected `<modes> [protocols]: <reason>`")?;
    let mut known = KnownDifference {
        modes: Vec::new(),
        protocols: Vec::new(),
        reason: reason.trim().to_owned(),
    };
    for word in scope.split_whitespace() {
        if let Some(m) = Mode::parse(word) {
            known.modes.push(m);
        } else if let Some(p) = Protocol::parse(word) {
            known.protocols.push(p);
        } else {
            return Err(format!(
                "known-difference: unknown mode or protocol `{word}`"
            ));
        }
    }
    if known.modes.is_empty() || known.reason.is_empty() {
        return Err("known-difference: needs at least one mode and a reason".into());
    }
    if known.protocols.is_empty() {
        known.protocols = ALL_PROTOCOLS.to_vec();
    }
    Ok(known)
}

/// A block between separators: SQL, then optionally `-- copy data:` and the lines to send in COPY FROM STDIN.
fn parse_statement(block: &[&str]) -> Statement {
    let marker = block.iter().position(|l| l.trim() == "-- copy data:");
    let (sql, data) = match marker {
        Some(i) => (&block[..i], &block[i + 1..]),
        None => (block, &[][..]),
    };
    let mut copy_data = Vec::new();
    for line in data {
        copy_data.extend_from_slice(line.as_bytes());
        copy_data.push(b'\n');
    }
    Statement {
        sql: sql.join("\n").trim().to_owned(),
        copy_data,
    }
}

// ---------------------------------------------------------------------------------------------------------
// Frontend messages
// ---------------------------------------------------------------------------------------------------------

/// `tag Int32(length) body`.
fn frame(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut msg = Vec::with_capacity(body.len() + 5);
    msg.push(tag);
    msg.extend_from_slice(&(body.len() as i32 + 4).to_be_bytes());
    msg.extend_from_slice(body);
    msg
}

fn cstr(buf: &mut Vec<u8>, s: &str) {
    buf.extend_from_slice(s.as_bytes());
    buf.push(0);
}

fn query(sql: &str) -> Vec<u8> {
    let mut body = Vec::new();
    cstr(&mut body, sql);
    frame(b'Q', &body)
}

/// Parse without parameter types.
fn parse(name: &str, sql: &str) -> Vec<u8> {
    let mut body = Vec::new();
    cstr(&mut body, name);
    cstr(&mut body, sql);
    body.extend_from_slice(&0i16.to_be_bytes());
    frame(b'P', &body)
}

/// Bind of the unnamed portal without parameters; one result format code for all columns.
fn bind(statement: &str, binary: bool) -> Vec<u8> {
    let mut body = Vec::new();
    cstr(&mut body, "");
    cstr(&mut body, statement);
    body.extend_from_slice(&0i16.to_be_bytes());
    body.extend_from_slice(&0i16.to_be_bytes());
    body.extend_from_slice(&1i16.to_be_bytes());
    body.extend_from_slice(&i16::from(binary).to_be_bytes());
    frame(b'B', &body)
}

/// Describe (`S` statement or `P` portal).
fn describe(kind: u8, name: &str) -> Vec<u8> {
    let mut body = vec![kind];
    cstr(&mut body, name);
    frame(b'D', &body)
}

/// Execute of the unnamed portal (0: all rows).
fn execute(max_rows: u32) -> Vec<u8> {
    let mut body = Vec::new();
    cstr(&mut body, "");
    body.extend_from_slice(&max_rows.to_be_bytes());
    frame(b'E', &body)
}

/// Close of a named statement.
fn close_statement(name: &str) -> Vec<u8> {
    let mut body = vec![b'S'];
    cstr(&mut body, name);
    frame(b'C', &body)
}

fn sync() -> Vec<u8> {
    frame(b'S', &[])
}

fn flush() -> Vec<u8> {
    frame(b'H', &[])
}

// ---------------------------------------------------------------------------------------------------------
// Running a case
// ---------------------------------------------------------------------------------------------------------

/// What the client saw.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Event {
    /// A backend message after normalisation: tag and body.
    Msg(u8, Vec<u8>),
    /// The connection ended before ReadyForQuery.
    Closed(String),
    /// No ReadyForQuery within [`REQUEST_DEADLINE`].
    Timeout,
}

/// One request and what came back up to ReadyForQuery.
#[derive(Debug)]
struct Step {
    /// What was sent, for diffs: the statement, or e.g. `(execute s2 again)`.
    label: String,
    events: Vec<Event>,
}

impl Step {
    /// Whether the connection is still usable after this step.
    fn completed(&self) -> bool {
        matches!(self.events.last(), Some(Event::Msg(b'Z', _)))
    }
}

/// A request: the bytes sent up front and how to answer CopyInResponse and PortalSuspended.
struct Request<'a> {
    label: String,
    bytes: Vec<u8>,
    copy_data: &'a [u8],
    extended: bool,
    /// Extended protocol with a row limit: Execute is followed by Flush, repeated after PortalSuspended,
    /// and Sync is sent once the portal is done. 0: the request already ends with Sync.
    max_rows: u32,
}

/// A logged-in connection with buffered reads.
struct Conn {
    io: BufReader<TcpStream>,
}

impl Conn {
    async fn open(port: u16) -> Conn {
        let raw = RawClient::login(port, "postgres", "postgres", &[]).await;
        Conn {
            io: BufReader::with_capacity(1 << 16, raw.stream),
        }
    }

    async fn send(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        let stream = self.io.get_mut();
        stream.write_all(bytes).await?;
        stream.flush().await
    }

    async fn read(&mut self) -> std::io::Result<(u8, Vec<u8>)> {
        let tag = self.io.read_u8().await?;
        let len = self.io.read_i32().await?;
        if !(4..=(1 << 30)).contains(&len) {
            return Err(std::io::Error::other(format!("bad message length {len}")));
        }
        let mut body = vec![0u8; len as usize - 4];
        self.io.read_exact(&mut body).await?;
        Ok((tag, body))
    }

    async fn terminate(mut self) {
        let _ = self.send(&frame(b'X', &[])).await;
    }
}

/// Drops what legitimately differs between a direct and a pooled connection.
fn normalise(tag: u8, body: Vec<u8>) -> Option<Event> {
    match tag {
        b'S' | b'K' => None,
        // NotificationResponse: the sending backend's pid, then channel and payload.
        b'A' => Some(Event::Msg(tag, body.get(4..).unwrap_or_default().to_vec())),
        _ => Some(Event::Msg(tag, body)),
    }
}

/// Sends a request (unless it was sent already, in a pipeline) and reads through ReadyForQuery, answering
/// COPY and row-limit prompts on the way.
async fn exchange(conn: &mut Conn, req: Request<'_>, already_sent: bool) -> Step {
    let mut events = Vec::new();
    let deadline = tokio::time::Instant::now() + REQUEST_DEADLINE;
    let mut sync_pending = req.max_rows > 0;
    let mut sent = if already_sent {
        Ok(())
    } else {
        conn.send(&req.bytes).await
    };
    loop {
        if let Err(e) = sent {
            events.push(Event::Closed(format!("write failed: {e}")));
            break;
        }
        let (tag, body) = match tokio::time::timeout_at(deadline, conn.read()).await {
            Err(_) => {
                events.push(Event::Timeout);
                break;
            }
            Ok(Err(e)) => {
                events.push(Event::Closed(e.to_string()));
                break;
            }
            Ok(Ok(m)) => m,
        };
        events.extend(normalise(tag, body));
        let reply = match tag {
            b'Z' => break,
            b'G' => copy_reply(req.copy_data, req.extended && !sync_pending),
            b's' if sync_pending => [execute(req.max_rows), flush()].concat(),
            b'C' | b'E' | b'I' if sync_pending => {
                sync_pending = false;
                sync()
            }
            _ => continue,
        };
        sent = conn.send(&reply).await;
    }
    Step {
        label: req.label,
        events,
    }
}

/// CopyData (unless empty) and CopyDone; then Sync in the extended protocol, as libpq does (the Sync sent
/// with the request was consumed by copy-in mode).
fn copy_reply(data: &[u8], extended: bool) -> Vec<u8> {
    let mut out = Vec::new();
    if !data.is_empty() {
        out.extend(frame(b'd', data));
    }
    out.extend(frame(b'c', &[]));
    if extended {
        out.extend(sync());
    }
    out
}

/// Name of the `i`-th prepared statement of a named run.
fn statement_name(case: &Case, i: usize) -> String {
    if case.named {
        format!("s{}", i + 1)
    } else {
        String::new()
    }
}

/// Bind, Describe portal, Execute, then Sync (or Flush when the case limits rows).
fn bind_execute(case: &Case, name: &str) -> Vec<u8> {
    let end = if case.max_rows > 0 { flush() } else { sync() };
    [
        bind(name, case.binary),
        describe(b'P', ""),
        execute(case.max_rows),
        end,
    ]
    .concat()
}

/// The requests of one run, in order.
fn requests<'a>(case: &'a Case, protocol: Protocol) -> Vec<Request<'a>> {
    let request = |label: String, bytes: Vec<u8>, copy_data: &'a [u8]| Request {
        label,
        bytes,
        copy_data,
        extended: protocol == Protocol::Extended,
        max_rows: if protocol == Protocol::Extended {
            case.max_rows
        } else {
            0
        },
    };
    let mut out = Vec::new();
    for (i, st) in case.statements.iter().enumerate() {
        let bytes = match protocol {
            Protocol::Simple => query(&st.sql),
            Protocol::Extended => {
                let name = statement_name(case, i);
                let mut b = parse(&name, &st.sql);
                if case.named {
                    b.extend(describe(b'S', &name));
                }
                b.extend(bind_execute(case, &name));
                b
            }
        };
        out.push(request(st.sql.clone(), bytes, &st.copy_data));
    }
    if case.named && protocol == Protocol::Extended {
        out.extend(named_reuse_requests(case, request));
    }
    out
}

/// A named run executes every prepared statement once more by name, then closes them all.
fn named_reuse_requests<'a>(
    case: &'a Case,
    request: impl Fn(String, Vec<u8>, &'a [u8]) -> Request<'a>,
) -> Vec<Request<'a>> {
    let mut out = Vec::new();
    let mut close = Vec::new();
    for (i, st) in case.statements.iter().enumerate() {
        let name = statement_name(case, i);
        out.push(request(
            format!("(execute {name} again) {}", st.sql),
            bind_execute(case, &name),
            &st.copy_data,
        ));
        close.extend(close_statement(&name));
    }
    close.extend(sync());
    let mut closing = request("(close every statement)".into(), close, &[]);
    closing.max_rows = 0;
    out.push(closing);
    out
}

/// One run of a case on a new client connection to `port`; stops after a request that left the connection
/// unusable. With `console`, each request is preceded by a RECONNECT there.
async fn run(
    case: &Case,
    protocol: Protocol,
    port: u16,
    mut console: Option<&mut RawClient>,
) -> Vec<Step> {
    let mut conn = Conn::open(port).await;
    let mut steps = Vec::new();
    let requests = requests(case, protocol);
    if case.pipeline {
        if let Some(console) = console.as_deref_mut() {
            retire_server_connections(console).await;
        }
        let all: Vec<u8> = requests
            .iter()
            .flat_map(|r| r.bytes.iter().copied())
            .collect();
        // A failed write shows as the connection closing while reading the answers.
        let _ = conn.send(&all).await;
    }
    for req in requests {
        if let (Some(console), false) = (console.as_deref_mut(), case.pipeline) {
            retire_server_connections(console).await;
        }
        let step = exchange(&mut conn, req, case.pipeline).await;
        let completed = step.completed();
        steps.push(step);
        if !completed {
            return steps;
        }
    }
    conn.terminate().await;
    steps
}

/// `RECONNECT postgres` on a pooler's admin console: its current server connections are not used again.
async fn retire_server_connections(console: &mut RawClient) {
    if let Err(e) = console.query("RECONNECT postgres").await {
        panic!("RECONNECT on the admin console failed: {e:?}");
    }
}

/// Runs the case's setup statements directly on the server.
async fn setup(case: &Case, port: u16) {
    if case.setup.is_empty() {
        return;
    }
    let mut client = RawClient::login(port, "postgres", "postgres", &[]).await;
    for sql in &case.setup {
        if let Err(e) = client.query(sql).await {
            panic!("{}: setup `{sql}` failed: {e:?}", case.name);
        }
    }
}

// ---------------------------------------------------------------------------------------------------------
// Comparing and showing
// ---------------------------------------------------------------------------------------------------------

/// A readable diff of the first request whose messages differ, or None when the runs match.
fn compare(expected: &[Step], got: &[Step]) -> Option<String> {
    let differing: Vec<usize> = (0..expected.len().max(got.len()))
        .filter(|&i| expected.get(i).map(|s| &s.events) != got.get(i).map(|s| &s.events))
        .collect();
    let &first = differing.first()?;
    let label = expected
        .get(first)
        .or(got.get(first))
        .unwrap()
        .label
        .as_str();
    let none = Vec::new();
    let exp = expected.get(first).map_or(&none, |s| &s.events);
    let got_events = got.get(first).map_or(&none, |s| &s.events);
    let mut out = format!(
        "  request {} of {}: {}\n",
        first + 1,
        expected.len(),
        shorten(label.as_bytes(), 300)
    );
    if got.len() < expected.len() {
        let _ = writeln!(out, "  the pooled run stopped after request {}", got.len());
    }
    if differing.len() > 1 {
        let _ = writeln!(
            out,
            "  {} requests differ in all (the first is shown)",
            differing.len()
        );
    }
    out.push_str(&diff_events(exp, got_events));
    Some(out)
}

/// The messages around the first difference of two event lists.
fn diff_events(expected: &[Event], got: &[Event]) -> String {
    let at = expected
        .iter()
        .zip(got)
        .position(|(a, b)| a != b)
        .unwrap_or(expected.len().min(got.len()));
    let from = at.saturating_sub(DIFF_CONTEXT);
    let mut out = format!(
        "  first difference at message {} (expected {} messages, got {})\n",
        at + 1,
        expected.len(),
        got.len()
    );
    if let (Some(a), Some(b)) = (expected.get(at), got.get(at)) {
        if show_event(a) == show_event(b) {
            let _ = writeln!(
                out,
                "  message {} looks the same but its bytes differ:\n    expected {}\n    got      {}",
                at + 1,
                hex_event(a),
                hex_event(b)
            );
        }
    }
    for (title, events) in [("expected (direct)", expected), ("got (pooled)", got)] {
        let _ = writeln!(out, "  {title}:");
        let to = events.len().min(at + DIFF_CONTEXT + 1);
        if from > 0 {
            let _ = writeln!(out, "      ... {from} equal messages");
        }
        for (i, e) in events.iter().enumerate().take(to).skip(from) {
            let mark = if i == at { ">" } else { " " };
            let _ = writeln!(out, "    {mark} {:>6} {}", i + 1, show_event(e));
        }
        if events.len() > to {
            let _ = writeln!(out, "      ... {} more", events.len() - to);
        }
    }
    out
}

/// A message as its tag and body in hex (the first 200 bytes).
fn hex_event(event: &Event) -> String {
    match event {
        Event::Msg(tag, body) => {
            let more = if body.len() > 200 { "..." } else { "" };
            let shown = hex(&body[..body.len().min(200)]);
            format!("{:?} 0x{shown}{more} ({} bytes)", *tag as char, body.len())
        }
        other => show_event(other),
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn show_event(event: &Event) -> String {
    match event {
        Event::Msg(tag, body) => show_message(*tag, body),
        Event::Closed(why) => format!("<connection closed: {why}>"),
        Event::Timeout => format!("<no ReadyForQuery within {REQUEST_DEADLINE:?}>"),
    }
}

/// A backend message in a readable form.
fn show_message(tag: u8, body: &[u8]) -> String {
    let name = match tag {
        b'T' => return format!("RowDescription {}", show_row_description(body)),
        b'D' => return format!("DataRow {}", show_data_row(body)),
        b'E' => return format!("ErrorResponse {}", show_fields(body)),
        b'N' => return format!("NoticeResponse {}", show_fields(body)),
        b'C' => return format!("CommandComplete {}", shorten(trim_nul(body), 100)),
        b'Z' => return format!("ReadyForQuery {}", shorten(body, 10)),
        b'd' => return format!("CopyData {}", shorten(body, 120)),
        b'A' => return format!("NotificationResponse {}", shorten(body, 120)),
        b'1' => "ParseComplete",
        b'2' => "BindComplete",
        b'3' => "CloseComplete",
        b'I' => "EmptyQueryResponse",
        b'n' => "NoData",
        b's' => "PortalSuspended",
        b't' => "ParameterDescription",
        b'G' => "CopyInResponse",
        b'H' => "CopyOutResponse",
        b'W' => "CopyBothResponse",
        b'c' => "CopyDone",
        _ => "message",
    };
    if body.is_empty() {
        format!("{name} ({:?})", tag as char)
    } else {
        format!("{name} ({:?}) {}", tag as char, shorten(body, 80))
    }
}

fn trim_nul(b: &[u8]) -> &[u8] {
    b.strip_suffix(&[0]).unwrap_or(b)
}

/// Bytes as text when they are short UTF-8 without control characters (other than tab and newline),
/// else as hex; cut to about `max` characters with the full length noted.
fn shorten(b: &[u8], max: usize) -> String {
    let text = std::str::from_utf8(b)
        .ok()
        .filter(|s| !s.chars().any(|c| c.is_control() && c != '\t' && c != '\n'));
    let shown = match text {
        Some(s) if s.chars().count() <= max => return format!("{s:?}"),
        Some(s) => format!("{:?}", s.chars().take(max).collect::<String>()),
        None if b.len() <= max / 2 => return format!("0x{}", hex(b)),
        None => format!("0x{}", hex(&b[..max / 2])),
    };
    format!("{shown}... ({} bytes)", b.len())
}

/// A big-endian integer of `N` bytes at `*at`, advancing it; None past the end.
fn take<const N: usize>(b: &[u8], at: &mut usize) -> Option<[u8; N]> {
    let v = b.get(*at..*at + N)?.try_into().ok()?;
    *at += N;
    Some(v)
}

fn take_cstr<'a>(b: &'a [u8], at: &mut usize) -> Option<&'a [u8]> {
    let len = b.get(*at..)?.iter().position(|&x| x == 0)?;
    let s = &b[*at..*at + len];
    *at += len + 1;
    Some(s)
}

/// `[name:type_oid/format, ...]`, with `@table_oid.column` for table columns and `(typmod)` when set.
fn show_row_description(b: &[u8]) -> String {
    let mut at = 0;
    let parsed = (|| {
        let n = i16::from_be_bytes(take(b, &mut at)?);
        let mut cols = Vec::new();
        for _ in 0..n {
            let name = String::from_utf8_lossy(take_cstr(b, &mut at)?).into_owned();
            let table = u32::from_be_bytes(take(b, &mut at)?);
            let column = i16::from_be_bytes(take(b, &mut at)?);
            let oid = u32::from_be_bytes(take(b, &mut at)?);
            take::<2>(b, &mut at)?; // type size: follows from the type
            let typmod = i32::from_be_bytes(take(b, &mut at)?);
            let format = i16::from_be_bytes(take(b, &mut at)?);
            let mut col = format!("{name}:{oid}/{format}");
            if table != 0 {
                let _ = write!(col, "@{table}.{column}");
            }
            if typmod != -1 {
                let _ = write!(col, "({typmod})");
            }
            cols.push(col);
        }
        Some(format!("[{}]", cols.join(", ")))
    })();
    parsed.unwrap_or_else(|| format!("(malformed) {}", shorten(b, 80)))
}

/// `[value, NULL, ...]`.
fn show_data_row(b: &[u8]) -> String {
    let mut at = 0;
    let parsed = (|| {
        let n = i16::from_be_bytes(take(b, &mut at)?);
        let mut values = Vec::new();
        for _ in 0..n {
            let len = i32::from_be_bytes(take(b, &mut at)?);
            if len < 0 {
                values.push("NULL".to_owned());
            } else {
                let v = b.get(at..at + len as usize)?;
                at += len as usize;
                values.push(shorten(v, 60));
            }
        }
        Some(format!("[{}]", values.join(", ")))
    })();
    parsed.unwrap_or_else(|| format!("(malformed) {}", shorten(b, 80)))
}

/// `{S=ERROR, C=22012, M="division by zero", ...}` in the order sent.
fn show_fields(b: &[u8]) -> String {
    let mut at = 0;
    let mut fields = Vec::new();
    while let Some(&code) = b.get(at) {
        at += 1;
        if code == 0 {
            break;
        }
        let Some(value) = take_cstr(b, &mut at) else {
            fields.push(format!("(malformed) {}", shorten(&b[at..], 40)));
            break;
        };
        fields.push(format!("{}={}", code as char, shorten(value, 200)));
    }
    format!("{{{}}}", fields.join(", "))
}

/// The direct transcript of a run, for `CONFORMANCE_SHOW`.
fn show_transcript(case: &Case, protocol: Protocol, steps: &[Step]) {
    println!("=== {} ({})", case.name, protocol.name());
    for step in steps {
        println!("--- {}", shorten(step.label.as_bytes(), 200));
        for e in &step.events {
            println!("    {}", show_event(e));
        }
    }
}

// ---------------------------------------------------------------------------------------------------------
// The test
// ---------------------------------------------------------------------------------------------------------

/// A pool in `mode`; `postgres` may use the admin console (for RECONNECT).
fn pool_config(mode: Mode) -> StackConfig {
    StackConfig {
        general: "auth_type = \"trust\"\nadmin_users = [\"postgres\"]".into(),
        pool: format!("pool_mode = \"{}\"", mode.name()),
        ..Default::default()
    }
}

/// A pgcorral in one pool mode, and its admin console when its runs need fresh server connections.
struct Target {
    mode: Mode,
    port: u16,
    console: Option<RawClient>,
}

impl Target {
    async fn new(mode: Mode, port: u16) -> Target {
        let console = if FRESH_SERVER_MODES.contains(&mode) {
            Some(RawClient::login(port, "postgres", "pgcorral", &[]).await)
        } else {
            None
        };
        Target {
            mode,
            port,
            console,
        }
    }
}

/// Totals for the summary line.
#[derive(Default)]
struct Tally {
    cases: usize,
    statements: usize,
    runs: usize,
    skipped: Vec<String>,
    failures: Vec<String>,
}

/// A direct run must answer every request: else the case (or the harness) is broken.
fn assert_direct_run_completed(case: &Case, protocol: Protocol, steps: &[Step]) {
    let last = steps.last().expect("a run has requests");
    assert!(
        last.completed() && steps.len() >= case.statements.len(),
        "{} ({} protocol): the direct run stopped at request {} of {}: {}\n{}",
        case.name,
        protocol.name(),
        steps.len(),
        case.statements.len(),
        shorten(last.label.as_bytes(), 300),
        last.events
            .iter()
            .map(|e| format!("    {}\n", show_event(e)))
            .collect::<String>()
    );
}

/// Runs one case in every protocol: directly, then through each pooler; records differences in `tally`.
async fn check_case(case: &Case, pg_port: u16, targets: &mut [Target], tally: &mut Tally) {
    setup(case, pg_port).await;
    let show = std::env::var_os("CONFORMANCE_SHOW").is_some();
    for &protocol in &case.protocols {
        let expected = run(case, protocol, pg_port, None).await;
        if show {
            show_transcript(case, protocol, &expected);
        }
        assert_direct_run_completed(case, protocol, &expected);
        tally.runs += 1;
        for mode in case.modes_for(protocol) {
            let where_ = format!(
                "{} [{} mode, {} protocol]",
                case.name,
                mode.name(),
                protocol.name()
            );
            if let Some(k) = case.known_difference(mode, protocol) {
                tally
                    .skipped
                    .push(format!("{where_}: known difference: {}", k.reason));
                continue;
            }
            let target = targets.iter_mut().find(|t| t.mode == mode).unwrap();
            let got = run(case, protocol, target.port, target.console.as_mut()).await;
            tally.runs += 1;
            if let Some(diff) = compare(&expected, &got) {
                tally.failures.push(format!("{where_}\n{diff}"));
            }
        }
    }
}

#[tokio::test]
async fn pooled_connections_see_the_same_messages_as_direct_ones() {
    let started = Instant::now();
    let cases = load_cases();
    assert!(!cases.is_empty(), "no conformance cases selected");
    let stack = Stack::start_with(pool_config(Mode::Session));
    let others: Vec<(Mode, Pooler)> = ALL_MODES
        .into_iter()
        .filter(|&mode| mode != Mode::Session)
        .map(|mode| {
            let port = Pooler::free_port();
            let config = config_text(port, stack.pg.port, &pool_config(mode));
            (mode, Pooler::start(&bin(), &config))
        })
        .collect();
    let mut targets = vec![Target::new(Mode::Session, stack.port).await];
    for (mode, pooler) in &others {
        targets.push(Target::new(*mode, pooler.port).await);
    }

    let mut tally = Tally::default();
    for case in &cases {
        check_case(case, stack.pg.port, &mut targets, &mut tally).await;
        tally.cases += 1;
        tally.statements += case.statements.len();
    }
    println!(
        "conformance: {} cases, {} statements, {} runs in {:.1?}",
        tally.cases,
        tally.statements,
        tally.runs,
        started.elapsed()
    );
    for s in &tally.skipped {
        println!("skipped: {s}");
    }
    assert!(
        tally.failures.is_empty(),
        "{} conformance failure(s):\n\n{}",
        tally.failures.len(),
        tally.failures.join("\n")
    );
}
