//! Named prepared statements under transaction pooling.
//!
//! A client's named statement lives on whichever server connection it happens to use, so the
//! pooler renames it: every distinct (query text, parameter types) gets one pooler-wide name
//! (`pgcorral_<n>`), each server connection remembers which of those it has (a bounded LRU),
//! and a Bind or Describe for a statement the server lacks gets its Parse sent first.
//!
//! The client must then see exactly the replies PostgreSQL would have sent it. Two replies
//! differ: the ParseComplete of an injected Parse (swallowed), and the ParseComplete of a
//! Parse the server already had (there is nothing to send it). The pooler never answers
//! locally: a Parse the server already has is replaced by a Close of a name that does not
//! exist, which the server answers with CloseComplete in order, and that CloseComplete is
//! shown to the client as the ParseComplete it expects. [`Pipeline`] keeps, per server
//! connection, the queue of ParseComplete/CloseComplete replies still due and what to do with
//! each; replies skipped because of an error are settled at the next ReadyForQuery.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::{BufMut, Bytes, BytesMut};

use crate::protocol::tag::frontend as fe;
use crate::protocol::{ProtocolError, HEADER_LEN};

/// Prefix of the names pgcorral gives statements on servers.
pub const NAME_PREFIX: &str = "pgcorral_";

/// A statement name no statement has: closing it costs nothing and is answered in order.
const NOOP_NAME: &str = "pgcorral_noop";

/// The registry forgets everything past this many distinct statements (clients keep theirs).
const REGISTRY_LIMIT: usize = 100_000;

/// One distinct prepared statement: its text and parameter types, under its pooler name.
#[derive(Debug)]
pub struct Statement {
    pub id: u64,
    /// The name it has on servers.
    pub name: Box<str>,
    /// Its SQL text (routing reads it).
    pub query: Box<str>,
    /// The Parse message (header included) that prepares it on a server under `name`.
    pub parse: Bytes,
}

/// Process-wide: (query text, parameter types) to statement. Consulted once per named Parse,
/// never per Bind.
#[derive(Debug, Default)]
pub struct StatementRegistry {
    map: Mutex<HashMap<Box<[u8]>, Arc<Statement>, ahash::RandomState>>,
    next: AtomicU64,
}

impl StatementRegistry {
    pub fn new() -> Self {
        StatementRegistry::default()
    }

    /// The statement for a Parse whose body after the name is `spec` (query text, NUL,
    /// parameter types).
    pub fn intern(&self, spec: &[u8]) -> Arc<Statement> {
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(s) = map.get(spec) {
            return s.clone();
        }
        if map.len() >= REGISTRY_LIMIT {
            map.clear();
        }
        let id = self.next.fetch_add(1, Ordering::Relaxed) + 1;
        let name = format!("{NAME_PREFIX}{id}");
        let query_end = spec.iter().position(|&b| b == 0).unwrap_or(spec.len());
        let query = String::from_utf8_lossy(&spec[..query_end]).into();
        let mut parse = BytesMut::with_capacity(HEADER_LEN + name.len() + 1 + spec.len());
        parse.put_u8(fe::PARSE);
        parse.put_u32((4 + name.len() + 1 + spec.len()) as u32);
        parse.put_slice(name.as_bytes());
        parse.put_u8(0);
        parse.put_slice(spec);
        let statement = Arc::new(Statement {
            id,
            name: name.into(),
            query,
            parse: parse.freeze(),
        });
        map.insert(spec.into(), statement.clone());
        statement
    }
}

/// A client's named statements: its name to the shared statement.
#[derive(Debug, Default)]
pub struct ClientStatements {
    map: HashMap<Box<str>, Arc<Statement>, ahash::RandomState>,
    /// The last few names dropped or redefined, with their statement: an error for a
    /// request sent before that still names the statement as the client knew it.
    recent: VecDeque<(Box<str>, u64)>,
}

/// How many dropped names [`ClientStatements`] remembers for error messages.
const RECENT_NAMES: usize = 16;

impl ClientStatements {
    pub fn get(&self, name: &str) -> Option<&Arc<Statement>> {
        self.map.get(name)
    }

    pub fn insert(&mut self, name: &str, statement: Arc<Statement>) {
        if let Some(old) = self.map.insert(name.into(), statement) {
            self.retire(name, old.id);
        }
    }

    fn retire(&mut self, name: &str, id: u64) {
        if self.recent.len() == RECENT_NAMES {
            self.recent.pop_front();
        }
        self.recent.push_back((name.into(), id));
    }

    /// Forgets `name` if it still means statement `id`.
    pub fn forget(&mut self, name: &str, id: u64) {
        if self.map.get(name).is_some_and(|s| s.id == id) {
            self.remove(name);
        }
    }

    pub fn remove(&mut self, name: &str) {
        if let Some(old) = self.map.remove(name) {
            self.retire(name, old.id);
        }
    }

    /// The client's name for statement `id`: a current one, else one dropped lately.
    pub fn name_of(&self, id: u64) -> Option<&str> {
        self.map
            .iter()
            .find(|(_, s)| s.id == id)
            .map(|(name, _)| &**name)
            .or_else(|| {
                self.recent
                    .iter()
                    .rev()
                    .find(|(_, i)| *i == id)
                    .map(|(name, _)| &**name)
            })
    }

    pub fn clear(&mut self) {
        self.map.clear();
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// No statements and no dropped names remembered: as a new client's.
    pub fn is_clear(&self) -> bool {
        self.map.is_empty() && self.recent.is_empty()
    }
}

/// The statements one server connection has prepared, least recently used first out.
#[derive(Debug, Default, Clone)]
pub struct ServerStatements {
    /// Statement id to the tick of its last use.
    used: HashMap<u64, u64, ahash::RandomState>,
    clock: u64,
}

impl ServerStatements {
    pub fn has(&self, id: u64) -> bool {
        self.used.contains_key(&id)
    }

    /// Marks `id` as used now (it must be present, or it is added).
    pub fn touch(&mut self, id: u64) {
        self.clock += 1;
        self.used.insert(id, self.clock);
    }

    pub fn remove(&mut self, id: u64) {
        self.used.remove(&id);
    }

    /// The least recently used statement, to close before adding one when `cap` is reached.
    pub fn evict_for(&mut self, cap: usize) -> Option<u64> {
        if self.used.len() < cap.max(1) {
            return None;
        }
        let (&id, _) = self.used.iter().min_by_key(|(_, &tick)| tick)?;
        self.used.remove(&id);
        Some(id)
    }

    pub fn clear(&mut self) {
        self.used.clear();
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.used.len()
    }
}

/// What to do with a ParseComplete or CloseComplete from the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reply {
    /// The client expects it as it is.
    Forward,
    /// The client did not ask for it (an injected Parse, an eviction).
    Swallow,
    /// A CloseComplete standing in for the ParseComplete of a Parse the server already had.
    AsParseComplete,
}

/// A reply the server owes, and what to undo if it never comes (an error skipped it).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Due {
    /// ParseComplete for a Parse of statement `id` (None: the client's unnamed statement).
    Parse {
        id: Option<u64>,
        client_name: Option<Box<str>>,
        reply: Reply,
    },
    /// CloseComplete; `evicted` is the statement an eviction closed.
    Close {
        reply: Reply,
        evicted: Option<u64>,
        /// For a Close standing in for a Parse: the client's name and the statement.
        client: Option<(Box<str>, u64)>,
    },
}

/// The ParseComplete/CloseComplete replies a server connection still owes, in order.
#[derive(Debug, Default, Clone)]
pub struct Pipeline {
    /// (number of ReadyForQuery the reply comes before, the reply)
    due: VecDeque<(u64, Due)>,
    /// Requests sent that end with ReadyForQuery (Sync, Query, FunctionCall).
    syncs_sent: u64,
    readies_seen: u64,
    /// Client names whose Parse never succeeded: the client actor forgets them.
    pub failed_client_names: Vec<(Box<str>, u64)>,
}

/// The server answered something the pipeline did not expect.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the server sent {0} where pgcorral expected another reply")]
pub struct PipelineError(&'static str);

impl Pipeline {
    /// A Sync, Query or FunctionCall went to the server.
    pub fn sent_sync(&mut self) {
        self.syncs_sent += 1;
    }

    fn push(&mut self, due: Due) {
        self.due.push_back((self.syncs_sent, due));
    }

    /// A Parse went to the server as the client sent it (the unnamed statement).
    pub fn sent_plain_parse(&mut self) {
        self.push(Due::Parse {
            id: None,
            client_name: None,
            reply: Reply::Forward,
        });
    }

    /// A Close went to the server whose CloseComplete the client expects.
    pub fn sent_plain_close(&mut self) {
        self.push(Due::Close {
            reply: Reply::Forward,
            evicted: None,
            client: None,
        });
    }

    /// Replies still due.
    pub fn is_empty(&self) -> bool {
        self.due.is_empty()
    }

    /// Forgets everything (the connection was reset).
    pub fn clear(&mut self) {
        self.due.clear();
        self.syncs_sent = 0;
        self.readies_seen = 0;
    }

    /// The server sent ParseComplete.
    pub fn parse_complete(&mut self) -> Result<Reply, PipelineError> {
        match self.due.pop_front() {
            Some((_, Due::Parse { reply, .. })) => Ok(reply),
            None => Ok(Reply::Forward),
            Some(_) => Err(PipelineError("ParseComplete")),
        }
    }

    /// The server sent CloseComplete.
    pub fn close_complete(&mut self) -> Result<Reply, PipelineError> {
        match self.due.pop_front() {
            Some((_, Due::Close { reply, .. })) => Ok(reply),
            None => Ok(Reply::Forward),
            Some(_) => Err(PipelineError("CloseComplete")),
        }
    }

    /// The server sent ReadyForQuery: replies of that request that never came were skipped
    /// after an error, so their optimistic bookkeeping is undone, latest first: a statement
    /// injected and then evicted again in the skipped part ends up as it was before the
    /// injection (absent), not as the eviction's undo alone would leave it (present).
    pub fn ready(&mut self, server: &mut ServerStatements) {
        if self.due.is_empty() {
            // Nothing in flight (every simple Query): what the end of this function does.
            self.syncs_sent = 0;
            self.readies_seen = 0;
            return;
        }
        self.readies_seen += 1;
        let skipped = self
            .due
            .iter()
            .take_while(|(before, _)| *before < self.readies_seen)
            .count();
        for (_, due) in self.due.drain(..skipped).rev() {
            match due {
                Due::Parse {
                    id: Some(id),
                    client_name,
                    ..
                } => {
                    server.remove(id);
                    if let Some(name) = client_name {
                        self.failed_client_names.push((name, id));
                    }
                }
                Due::Parse { id: None, .. } => {}
                Due::Close {
                    evicted, client, ..
                } => {
                    if let Some(id) = evicted {
                        server.touch(id);
                    }
                    if let Some(c) = client {
                        self.failed_client_names.push(c);
                    }
                }
            }
        }
        if self.due.is_empty() {
            self.syncs_sent = 0;
            self.readies_seen = 0;
        }
    }
}

/// Everything a server connection knows about prepared statements.
#[derive(Debug, Default, Clone)]
pub struct ServerPrepared {
    pub statements: ServerStatements,
    pub pipeline: Pipeline,
    /// The server said "cached plan must not change result type": a statement it has is
    /// stale, so the connection is closed when its transaction ends.
    pub stale: bool,
}

impl ServerPrepared {
    /// The server completed a command with tag `tag`: after `DISCARD ALL` or
    /// `DEALLOCATE ALL` it has no prepared statements left. Returns whether that happened.
    pub fn command_complete(&mut self, tag: &[u8]) -> bool {
        let gone = tag == b"DISCARD ALL" || tag == b"DEALLOCATE ALL";
        if gone {
            self.statements.clear();
        }
        gone
    }
}

/// Is this whole client message one that names a statement (and so may need rewriting)?
pub fn names_statement(tag: u8, msg: &[u8]) -> bool {
    let body = msg.get(HEADER_LEN..).unwrap_or_default();
    match tag {
        fe::PARSE => body.first().is_some_and(|&b| b != 0),
        fe::BIND => {
            let portal_end = body.iter().position(|&b| b == 0);
            portal_end.is_some_and(|e| body.get(e + 1).is_some_and(|&b| b != 0))
        }
        fe::DESCRIBE | fe::CLOSE => {
            body.first() == Some(&b'S') && body.get(1).is_some_and(|&b| b != 0)
        }
        _ => false,
    }
}

/// Is `sql` exactly `DEALLOCATE [PREPARE] ALL` (which the pooler answers for the client's own
/// statements, leaving the server's shared ones in place)?
pub fn is_deallocate_all(sql: &str) -> bool {
    // Runs for every simple query: no allocation, and most queries stop at the first letter.
    let sql = sql.trim_start();
    if !matches!(sql.as_bytes().first(), Some(b'd' | b'D')) {
        return false;
    }
    let sql = sql.trim_end().trim_end_matches(';');
    let mut words = sql.split_whitespace();
    let is = |w: Option<&str>, k: &str| w.is_some_and(|w| w.eq_ignore_ascii_case(k));
    if !is(words.next(), "deallocate") {
        return false;
    }
    let all = match words.next() {
        Some(w) if w.eq_ignore_ascii_case("prepare") => is(words.next(), "all"),
        w => is(w, "all"),
    };
    all && words.next().is_none()
}

/// Does this whole ErrorResponse or NoticeResponse name a pooler statement?
pub fn mentions_pooler_name(msg: &[u8]) -> bool {
    let quoted = format!("\"{NAME_PREFIX}");
    msg.windows(quoted.len()).any(|w| w == quoted.as_bytes())
}

/// Appends `msg` (a whole ErrorResponse or NoticeResponse) to `out` with every
/// `"pgcorral_<n>"` in its text fields spelled as the client's name for that statement, so
/// the client reads the name it used.
pub fn rename_in_error(msg: &[u8], client: &ClientStatements, out: &mut BytesMut) {
    let body = msg.get(HEADER_LEN..).unwrap_or_default();
    let start = out.len();
    out.put_u8(msg.first().copied().unwrap_or(b'E'));
    out.put_u32(0);
    for field in body.split(|&b| b == 0).filter(|f| !f.is_empty()) {
        let text = String::from_utf8_lossy(&field[1..]);
        out.put_u8(field[0]);
        out.put_slice(rename_all(&text, client).as_bytes());
        out.put_u8(0);
    }
    out.put_u8(0);
    let len = (out.len() - start - 1) as u32;
    out[start + 1..start + 5].copy_from_slice(&len.to_be_bytes());
}

/// `text` with each `"pgcorral_<n>"` the client knows by another name renamed.
fn rename_all(text: &str, client: &ClientStatements) -> String {
    let quoted = format!("\"{NAME_PREFIX}");
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(&quoted) {
        out.push_str(&rest[..at]);
        let after = &rest[at + quoted.len()..];
        let digits = after.bytes().take_while(u8::is_ascii_digit).count();
        let name = after[..digits]
            .parse::<u64>()
            .ok()
            .filter(|_| after[digits..].starts_with('"'))
            .and_then(|id| client.name_of(id));
        match name {
            Some(name) => {
                out.push('"');
                out.push_str(name);
                out.push('"');
                rest = &after[digits + 1..];
            }
            None => {
                out.push_str(&quoted);
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// Splits a NUL-terminated string off the front of `b`.
fn cstr(b: &[u8]) -> Option<(&[u8], &[u8])> {
    let end = b.iter().position(|&c| c == 0)?;
    Some((&b[..end], &b[end + 1..]))
}

fn utf8<'a>(b: &'a [u8], what: &'static str) -> Result<&'a str, ProtocolError> {
    std::str::from_utf8(b).map_err(|_| ProtocolError::malformed(what))
}

/// Appends a Close of a statement name.
fn close_statement(out: &mut BytesMut, name: &str) {
    out.put_u8(fe::CLOSE);
    out.put_u32((4 + 1 + name.len() + 1) as u32);
    out.put_u8(b'S');
    out.put_slice(name.as_bytes());
    out.put_u8(0);
}

/// Counts of named-statement work, for the admin console and metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PreparedCounts {
    /// Named Parse messages from clients.
    pub client_parses: u64,
    /// Parse messages sent to servers (a client's first, or injected before a Bind).
    pub server_parses: u64,
    /// Binds of named statements.
    pub binds: u64,
    /// Statements closed on a server to make room.
    pub evictions: u64,
}

impl PreparedCounts {
    pub fn add(&mut self, o: &PreparedCounts) {
        self.client_parses += o.client_parses;
        self.server_parses += o.server_parses;
        self.binds += o.binds;
        self.evictions += o.evictions;
    }
}

/// Rewrites client messages that name statements for one server connection.
pub struct Rewriter<'a> {
    pub registry: &'a StatementRegistry,
    pub client: &'a mut ClientStatements,
    pub server: &'a mut ServerPrepared,
    /// max_prepared_statements.
    pub cap: usize,
    pub counts: &'a mut PreparedCounts,
}

impl Rewriter<'_> {
    /// Appends to `out` what goes to the server in place of the whole client message `msg`
    /// (a Parse, Bind, Describe or Close that [`names_statement`]).
    pub fn rewrite(&mut self, msg: &[u8], out: &mut BytesMut) -> Result<(), ProtocolError> {
        let body = msg.get(HEADER_LEN..).unwrap_or_default();
        match msg.first().copied() {
            Some(fe::PARSE) => self.parse(body, out),
            Some(fe::BIND) => self.bind(msg, body, out),
            Some(fe::DESCRIBE) => self.describe(msg, body, out),
            Some(fe::CLOSE) => self.close(body, out),
            _ => {
                out.extend_from_slice(msg);
                Ok(())
            }
        }
    }

    fn parse(&mut self, body: &[u8], out: &mut BytesMut) -> Result<(), ProtocolError> {
        let (name, spec) = cstr(body).ok_or_else(|| ProtocolError::malformed("Parse"))?;
        let name = utf8(name, "Parse")?;
        let statement = self.registry.intern(spec);
        self.counts.client_parses += 1;
        // A name the client reuses without Close now means the new statement.
        self.client.insert(name, statement.clone());
        let id = statement.id;
        if self.server.statements.has(id) {
            self.server.statements.touch(id);
            close_statement(out, NOOP_NAME);
            self.server.pipeline.push(Due::Close {
                reply: Reply::AsParseComplete,
                evicted: None,
                client: Some((name.into(), id)),
            });
        } else {
            self.prepare(&statement, Some(name), out);
        }
        Ok(())
    }

    /// Sends the Parse of `statement` (evicting first if the server is full).
    fn prepare(&mut self, statement: &Statement, client_name: Option<&str>, out: &mut BytesMut) {
        if let Some(evicted) = self.server.statements.evict_for(self.cap) {
            self.counts.evictions += 1;
            close_statement(out, &format!("{NAME_PREFIX}{evicted}"));
            self.server.pipeline.push(Due::Close {
                reply: Reply::Swallow,
                evicted: Some(evicted),
                client: None,
            });
        }
        out.extend_from_slice(&statement.parse);
        self.counts.server_parses += 1;
        self.server.statements.touch(statement.id);
        self.server.pipeline.push(Due::Parse {
            id: Some(statement.id),
            client_name: client_name.map(Into::into),
            reply: if client_name.is_some() {
                Reply::Forward
            } else {
                Reply::Swallow
            },
        });
    }

    /// The statement the client calls `name`, prepared on the server (Parse injected if the
    /// server lacks it); None if the client has no such statement.
    fn ensure(&mut self, name: &[u8], out: &mut BytesMut) -> Option<Arc<Statement>> {
        let name = std::str::from_utf8(name).ok()?;
        let statement = self.client.get(name)?.clone();
        if self.server.statements.has(statement.id) {
            self.server.statements.touch(statement.id);
        } else {
            self.prepare(&statement, None, out);
        }
        Some(statement)
    }

    fn bind(&mut self, msg: &[u8], body: &[u8], out: &mut BytesMut) -> Result<(), ProtocolError> {
        let bad = || ProtocolError::malformed("Bind");
        let (portal, rest) = cstr(body).ok_or_else(bad)?;
        let (name, rest) = cstr(rest).ok_or_else(bad)?;
        let Some(statement) = self.ensure(name, out) else {
            // Not a statement of this client's: the server says it does not exist.
            out.extend_from_slice(msg);
            return Ok(());
        };
        self.counts.binds += 1;
        out.put_u8(fe::BIND);
        out.put_u32((4 + portal.len() + 1 + statement.name.len() + 1 + rest.len()) as u32);
        out.put_slice(portal);
        out.put_u8(0);
        out.put_slice(statement.name.as_bytes());
        out.put_u8(0);
        out.put_slice(rest);
        Ok(())
    }

    fn describe(
        &mut self,
        msg: &[u8],
        body: &[u8],
        out: &mut BytesMut,
    ) -> Result<(), ProtocolError> {
        let (name, _) = cstr(body.get(1..).unwrap_or_default())
            .ok_or_else(|| ProtocolError::malformed("Describe"))?;
        let Some(statement) = self.ensure(name, out) else {
            out.extend_from_slice(msg);
            return Ok(());
        };
        out.put_u8(fe::DESCRIBE);
        out.put_u32((4 + 1 + statement.name.len() + 1) as u32);
        out.put_u8(b'S');
        out.put_slice(statement.name.as_bytes());
        out.put_u8(0);
        Ok(())
    }

    fn close(&mut self, body: &[u8], out: &mut BytesMut) -> Result<(), ProtocolError> {
        let (name, _) = cstr(body.get(1..).unwrap_or_default())
            .ok_or_else(|| ProtocolError::malformed("Close"))?;
        // The server keeps the statement for other clients; the client's name is gone.
        self.client.remove(utf8(name, "Close")?);
        close_statement(out, NOOP_NAME);
        self.server.pipeline.sent_plain_close();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_msg(name: &str, query: &str) -> Vec<u8> {
        let mut body = Vec::new();
        body.extend_from_slice(name.as_bytes());
        body.push(0);
        body.extend_from_slice(query.as_bytes());
        body.push(0);
        body.extend_from_slice(&0u16.to_be_bytes());
        msg(b'P', &body)
    }

    fn bind_msg(statement: &str) -> Vec<u8> {
        let mut body = vec![0];
        body.extend_from_slice(statement.as_bytes());
        body.push(0);
        body.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
        msg(b'B', &body)
    }

    fn close_msg(name: &str) -> Vec<u8> {
        let mut body = vec![b'S'];
        body.extend_from_slice(name.as_bytes());
        body.push(0);
        msg(b'C', &body)
    }

    fn msg(tag: u8, body: &[u8]) -> Vec<u8> {
        let mut m = vec![tag];
        m.extend_from_slice(&((body.len() + 4) as u32).to_be_bytes());
        m.extend_from_slice(body);
        m
    }

    /// The tags and statement names of the messages in `out`.
    fn sent(out: &[u8]) -> Vec<(char, String)> {
        let mut v = Vec::new();
        let mut at = 0;
        while at < out.len() {
            let len = 1 + u32::from_be_bytes(out[at + 1..at + 5].try_into().unwrap()) as usize;
            let body = &out[at + 5..at + len];
            let name = match out[at] {
                b'P' => cstr(body).unwrap().0,
                b'B' => cstr(cstr(body).unwrap().1).unwrap().0,
                b'C' | b'D' => cstr(&body[1..]).unwrap().0,
                _ => b"",
            };
            v.push((out[at] as char, String::from_utf8_lossy(name).into_owned()));
            at += len;
        }
        v
    }

    struct World {
        registry: StatementRegistry,
        client: ClientStatements,
        server: ServerPrepared,
        cap: usize,
        counts: PreparedCounts,
    }

    impl World {
        fn new(cap: usize) -> World {
            World {
                registry: StatementRegistry::new(),
                client: ClientStatements::default(),
                server: ServerPrepared::default(),
                cap,
                counts: PreparedCounts::default(),
            }
        }

        fn send(&mut self, m: &[u8]) -> Vec<(char, String)> {
            let mut out = BytesMut::new();
            if names_statement(m[0], m) {
                Rewriter {
                    registry: &self.registry,
                    client: &mut self.client,
                    server: &mut self.server,
                    cap: self.cap,
                    counts: &mut self.counts,
                }
                .rewrite(m, &mut out)
                .unwrap();
            } else {
                match m[0] {
                    b'P' => self.server.pipeline.sent_plain_parse(),
                    b'C' => self.server.pipeline.sent_plain_close(),
                    b'S' | b'Q' => self.server.pipeline.sent_sync(),
                    _ => {}
                }
                out.extend_from_slice(m);
            }
            sent(&out)
        }
    }

    fn p(tag: char, name: &str) -> (char, String) {
        (tag, name.to_string())
    }

    #[test]
    fn first_parse_is_renamed_and_its_reply_forwarded() {
        let mut w = World::new(10);
        assert_eq!(w.send(&parse_msg("s1", "SELECT 1")), [p('P', "pgcorral_1")]);
        assert_eq!(w.send(&bind_msg("s1")), [p('B', "pgcorral_1")]);
        w.send(&msg(b'S', &[]));
        assert_eq!(w.server.pipeline.parse_complete(), Ok(Reply::Forward));
        w.server.pipeline.ready(&mut w.server.statements);
        assert!(w.server.statements.has(1));
        assert!(w.server.pipeline.is_empty());
    }

    #[test]
    fn parse_the_server_has_becomes_a_noop_close_shown_as_parse_complete() {
        let mut w = World::new(10);
        w.send(&parse_msg("a", "SELECT 1"));
        // Another client, same text, same server connection.
        w.client = ClientStatements::default();
        assert_eq!(w.send(&parse_msg("b", "SELECT 1")), [p('C', NOOP_NAME)]);
        assert_eq!(w.server.pipeline.parse_complete(), Ok(Reply::Forward));
        assert_eq!(
            w.server.pipeline.close_complete(),
            Ok(Reply::AsParseComplete)
        );
    }

    #[test]
    fn bind_on_a_server_without_the_statement_injects_its_parse() {
        let mut w = World::new(10);
        w.send(&parse_msg("s1", "SELECT 1"));
        w.server = ServerPrepared::default(); // the next transaction got another server
        assert_eq!(
            w.send(&bind_msg("s1")),
            [p('P', "pgcorral_1"), p('B', "pgcorral_1")]
        );
        assert_eq!(w.server.pipeline.parse_complete(), Ok(Reply::Swallow));
        // A second Bind in the same pipeline does not prepare again.
        assert_eq!(w.send(&bind_msg("s1")), [p('B', "pgcorral_1")]);
    }

    #[test]
    fn eviction_closes_the_least_recently_used_and_swallows_its_reply() {
        let mut w = World::new(2);
        w.send(&parse_msg("a", "SELECT 1"));
        w.send(&parse_msg("b", "SELECT 2"));
        w.send(&bind_msg("a")); // b is now the least recently used
        assert_eq!(
            w.send(&parse_msg("c", "SELECT 3")),
            [p('C', "pgcorral_2"), p('P', "pgcorral_3")]
        );
        assert_eq!(w.server.statements.len(), 2);
        assert!(!w.server.statements.has(2));
        assert_eq!(
            w.counts,
            PreparedCounts {
                client_parses: 3,
                server_parses: 3,
                binds: 1,
                evictions: 1
            }
        );
        assert_eq!(w.server.pipeline.parse_complete(), Ok(Reply::Forward));
        assert_eq!(w.server.pipeline.parse_complete(), Ok(Reply::Forward));
        assert_eq!(w.server.pipeline.close_complete(), Ok(Reply::Swallow));
        assert_eq!(w.server.pipeline.parse_complete(), Ok(Reply::Forward));
        // b comes back on demand.
        assert_eq!(
            w.send(&bind_msg("b")),
            [
                p('C', "pgcorral_1"),
                p('P', "pgcorral_2"),
                p('B', "pgcorral_2")
            ]
        );
    }

    #[test]
    fn a_failed_parse_is_undone_at_ready_for_query() {
        let mut w = World::new(10);
        w.send(&parse_msg("bad", "SELEC 1"));
        w.send(&bind_msg("bad"));
        w.send(&msg(b'S', &[]));
        w.send(&parse_msg("ok", "SELECT 1"));
        w.send(&msg(b'S', &[]));
        // ErrorResponse for the first Parse, then ReadyForQuery: nothing was prepared.
        w.server.pipeline.ready(&mut w.server.statements);
        assert!(!w.server.statements.has(1));
        assert_eq!(w.server.pipeline.failed_client_names, [("bad".into(), 1)]);
        // The second request is untouched by the first one's error.
        assert!(w.server.statements.has(2));
        assert_eq!(w.server.pipeline.parse_complete(), Ok(Reply::Forward));
        w.server.pipeline.ready(&mut w.server.statements);
        assert!(w.server.statements.has(2));
        assert!(w.server.pipeline.is_empty());
    }

    #[test]
    fn a_skipped_eviction_keeps_the_statement() {
        let mut w = World::new(1);
        w.send(&parse_msg("a", "SELECT 1"));
        w.send(&msg(b'S', &[]));
        w.server.pipeline.parse_complete().unwrap();
        w.server.pipeline.ready(&mut w.server.statements);
        w.send(&msg(b'Q', b"SELEC\0")); // fails
        w.send(&parse_msg("b", "SELECT 2"));
        w.send(&msg(b'S', &[]));
        w.server.pipeline.ready(&mut w.server.statements); // the Query's error
        w.server.pipeline.close_complete().unwrap();
        w.server.pipeline.parse_complete().unwrap();
        w.server.pipeline.ready(&mut w.server.statements);
        assert!(w.server.statements.has(2) && !w.server.statements.has(1));
        // Now an error before the eviction: the Close is skipped and statement 2 stays.
        w.send(&bind_msg("nonexistent"));
        w.send(&parse_msg("a", "SELECT 1"));
        w.send(&msg(b'S', &[]));
        w.server.pipeline.ready(&mut w.server.statements);
        assert!(w.server.statements.has(2));
        assert!(!w.server.statements.has(1));
    }

    /// Found by the prepared_statements fuzz target: with room for one statement, a skipped
    /// part that injects statement 1 and then evicts it again must leave it absent.
    #[test]
    fn a_skipped_injection_then_eviction_of_one_statement_leaves_it_absent() {
        let mut w = World::new(1);
        w.send(&parse_msg("a", "SELECT 1"));
        w.send(&parse_msg("b", "SELECT 2")); // evicts 1
        w.send(&msg(b'E', b"\0\0\0\0\0")); // fails on the server
        assert_eq!(
            w.send(&bind_msg("a")),
            [
                p('C', "pgcorral_2"),
                p('P', "pgcorral_1"),
                p('B', "pgcorral_1")
            ]
        );
        assert_eq!(
            w.send(&bind_msg("b")),
            [
                p('C', "pgcorral_1"),
                p('P', "pgcorral_2"),
                p('B', "pgcorral_2")
            ]
        );
        w.send(&msg(b'S', &[]));
        // The server ran Parse 1, Close 1 and Parse 2, then failed and skipped the rest.
        assert_eq!(w.server.pipeline.parse_complete(), Ok(Reply::Forward));
        assert_eq!(w.server.pipeline.close_complete(), Ok(Reply::Swallow));
        assert_eq!(w.server.pipeline.parse_complete(), Ok(Reply::Forward));
        w.server.pipeline.ready(&mut w.server.statements);
        assert!(
            !w.server.statements.has(1),
            "statement 1 was closed on the server"
        );
        assert!(w.server.statements.has(2));
        // So a Bind of "a" prepares it again.
        assert_eq!(
            w.send(&bind_msg("a")),
            [
                p('C', "pgcorral_2"),
                p('P', "pgcorral_1"),
                p('B', "pgcorral_1")
            ]
        );
    }

    #[test]
    fn close_is_answered_in_order_and_forgets_the_client_name() {
        let mut w = World::new(10);
        w.send(&parse_msg("s1", "SELECT 1"));
        assert_eq!(w.send(&close_msg("s1")), [p('C', NOOP_NAME)]);
        assert!(w.client.get("s1").is_none());
        assert!(w.server.statements.has(1), "other clients may use it");
        assert_eq!(w.server.pipeline.parse_complete(), Ok(Reply::Forward));
        assert_eq!(w.server.pipeline.close_complete(), Ok(Reply::Forward));
        // Unknown names pass through untouched.
        assert_eq!(w.send(&bind_msg("s1")), [p('B', "s1")]);
    }

    #[test]
    fn unnamed_statements_pass_through() {
        let mut w = World::new(10);
        let m = parse_msg("", "SELECT 1");
        assert!(!names_statement(b'P', &m));
        assert!(!names_statement(b'B', &bind_msg("")));
        assert!(names_statement(b'B', &bind_msg("x")));
        assert_eq!(w.send(&m), [p('P', "")]);
        assert_eq!(w.server.pipeline.parse_complete(), Ok(Reply::Forward));
    }

    #[test]
    fn same_text_different_types_are_different_statements() {
        let r = StatementRegistry::new();
        let a = r.intern(b"SELECT $1\0\0\0");
        let b = r.intern(b"SELECT $1\0\0\x01\0\0\0\x17");
        let c = r.intern(b"SELECT $1\0\0\0");
        assert_ne!(a.id, b.id);
        assert_eq!(a.id, c.id);
        assert_eq!(&*a.query, "SELECT $1");
    }

    #[test]
    fn errors_name_the_statement_as_the_client_does() {
        let mut w = World::new(10);
        w.send(&parse_msg("mine", "SELECT $1"));
        let m = msg(
            b'E',
            b"SERROR\0C08P01\0Mbind message supplies 0 parameters, but prepared statement \"pgcorral_1\" requires 1\0Mx \"pgcorral_9\"\0\0",
        );
        assert!(mentions_pooler_name(&m));
        let mut out = BytesMut::new();
        rename_in_error(&m, &w.client, &mut out);
        let want = msg(
            b'E',
            b"SERROR\0C08P01\0Mbind message supplies 0 parameters, but prepared statement \"mine\" requires 1\0Mx \"pgcorral_9\"\0\0",
        );
        assert_eq!(&out[..], &want[..]);
    }

    #[test]
    fn deallocate_all_is_recognised_exactly() {
        assert!(is_deallocate_all("DEALLOCATE ALL"));
        assert!(is_deallocate_all("  deallocate prepare all ; "));
        assert!(!is_deallocate_all("DEALLOCATE x"));
        assert!(!is_deallocate_all("DEALLOCATE ALL; SELECT 1"));
        assert!(!is_deallocate_all("SELECT 'DEALLOCATE ALL'"));
    }

    #[test]
    fn unexpected_replies_are_errors() {
        let mut w = World::new(10);
        w.send(&parse_msg("s1", "SELECT 1"));
        assert!(w.server.pipeline.close_complete().is_err());
    }
}
