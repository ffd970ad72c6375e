//! Named prepared statements in transaction mode: a client's Parse/Bind/Describe/Close/
//! Execute/Sync sequence goes through the rewriter to a simulated PostgreSQL that keeps
//! statements by name and skips to Sync after an error, as the real one does. Whatever the
//! sequence, the server never sees a pooler statement prepared twice or used before it was
//! prepared, and every ParseComplete/CloseComplete it sends is one the pooler expected.
#![no_main]

use std::collections::HashSet;

use arbitrary::Arbitrary;
use bytes::{BufMut, BytesMut};
use libfuzzer_sys::fuzz_target;
use pgcorral::session::prepared::{
    names_statement, ClientStatements, PreparedCounts, Reply, Rewriter, ServerPrepared,
    StatementRegistry, NAME_PREFIX,
};

const NAMES: [&str; 4] = ["", "a", "b", "c"];
const QUERIES: [&str; 3] = ["SELECT 1", "SELECT $1::int", "SELECT 2"];

#[derive(Debug, Arbitrary)]
enum Op {
    Parse {
        name: u8,
        query: u8,
    },
    Bind {
        name: u8,
    },
    Describe {
        name: u8,
    },
    Close {
        name: u8,
    },
    /// Runs the bound portal; `fails` stands for a runtime error (a division by zero).
    Execute {
        fails: bool,
    },
    Sync,
    /// Moves the client to another server connection between transactions.
    SwitchServer,
}

#[derive(Debug, Arbitrary)]
struct Input {
    cap: u8,
    ops: Vec<Op>,
}

/// A server connection: the pooler's view of it and the simulated PostgreSQL behind it.
#[derive(Default)]
struct Server {
    prepared: ServerPrepared,
    statements: HashSet<Vec<u8>>,
}

fuzz_target!(|input: Input| {
    let registry = StatementRegistry::new();
    let mut client = ClientStatements::default();
    let mut servers = [Server::default(), Server::default()];
    let mut current = 0;
    let mut counts = PreparedCounts::default();
    let cap = usize::from(input.cap % 4) + 1;
    let mut out = BytesMut::new();
    // Replies the client asked for in this batch (ParseComplete, CloseComplete).
    let mut expected_replies = 0;
    for op in input.ops.iter().take(64) {
        let msg = match op {
            Op::Parse { name, query } => parse(name_of(*name), QUERIES[usize::from(*query) % 3]),
            Op::Bind { name } => {
                message(b'B', &[b"\0", name_of(*name).as_bytes(), b"\0\0\0\0\0\0\0"])
            }
            Op::Describe { name } => message(b'D', &[b"S", name_of(*name).as_bytes(), b"\0"]),
            Op::Close { name } => message(b'C', &[b"S", name_of(*name).as_bytes(), b"\0"]),
            Op::Execute { fails } => {
                message(b'E', &[if *fails { b"!" } else { b"" }, b"\0\0\0\0\0"])
            }
            Op::Sync => message(b'S', &[]),
            Op::SwitchServer => {
                if out.is_empty() {
                    current = 1 - current;
                }
                continue;
            }
        };
        if matches!(op, Op::Parse { .. } | Op::Close { .. }) {
            expected_replies += 1;
        }
        let server = &mut servers[current];
        if names_statement(msg[0], &msg) {
            Rewriter {
                registry: &registry,
                client: &mut client,
                server: &mut server.prepared,
                cap,
                counts: &mut counts,
            }
            .rewrite(&msg, &mut out)
            .expect("the rewriter refused a well-formed message");
        } else {
            match msg[0] {
                b'P' => server.prepared.pipeline.sent_plain_parse(),
                b'C' => server.prepared.pipeline.sent_plain_close(),
                b'S' => server.prepared.pipeline.sent_sync(),
                _ => {}
            }
            out.extend_from_slice(&msg);
        }
        if matches!(op, Op::Sync) {
            let (delivered, failed) = run(server, &out);
            out.clear();
            assert!(
                delivered <= expected_replies,
                "the client got replies it did not ask for"
            );
            if !failed {
                assert_eq!(
                    delivered, expected_replies,
                    "a reply the client asked for was lost"
                );
            }
            expected_replies = 0;
            for (name, id) in server.prepared.pipeline.failed_client_names.drain(..) {
                client.forget(&name, id);
            }
            assert!(
                server.prepared.pipeline.is_empty(),
                "replies still due after ReadyForQuery"
            );
        }
    }
});

fn name_of(i: u8) -> &'static str {
    NAMES[usize::from(i) % NAMES.len()]
}

fn parse(name: &str, query: &str) -> Vec<u8> {
    message(b'P', &[name.as_bytes(), b"\0", query.as_bytes(), b"\0\0\0"])
}

fn message(tag: u8, parts: &[&[u8]]) -> Vec<u8> {
    let len: usize = parts.iter().map(|p| p.len()).sum();
    let mut m = BytesMut::with_capacity(len + 5);
    m.put_u8(tag);
    m.put_u32((len + 4) as u32);
    for p in parts {
        m.put_slice(p);
    }
    m.to_vec()
}

fn cstr(b: &[u8]) -> (&[u8], &[u8]) {
    let end = b
        .iter()
        .position(|&c| c == 0)
        .expect("pooler sent a name without NUL");
    (&b[..end], &b[end + 1..])
}

/// The simulated PostgreSQL runs the batch up to and including its Sync; the pooler's
/// pipeline sees each reply as the client actor would. Returns the replies forwarded to the
/// client and whether an error skipped part of the batch.
fn run(server: &mut Server, batch: &[u8]) -> (usize, bool) {
    let mut at = 0;
    let mut failed = false;
    let mut delivered = 0;
    let mut reply = |pipeline_reply: Reply| {
        if pipeline_reply != Reply::Swallow {
            delivered += 1;
        }
    };
    while at < batch.len() {
        let tag = batch[at];
        let len = u32::from_be_bytes(batch[at + 1..at + 5].try_into().unwrap()) as usize;
        let body = &batch[at + 5..at + 1 + len];
        at += 1 + len;
        if failed && tag != b'S' {
            continue;
        }
        let pooler_name = |n: &[u8]| n.starts_with(NAME_PREFIX.as_bytes());
        match tag {
            b'P' => {
                let (name, _) = cstr(body);
                if !name.is_empty() && server.statements.contains(name) {
                    assert!(
                        !pooler_name(name),
                        "pooler prepared {name:?} twice on one server"
                    );
                    failed = true;
                    continue;
                }
                server.statements.insert(name.to_vec());
                reply(
                    server
                        .prepared
                        .pipeline
                        .parse_complete()
                        .expect("unexpected ParseComplete"),
                );
            }
            b'B' | b'D' => {
                let name = if tag == b'B' {
                    cstr(cstr(body).1).0
                } else {
                    cstr(&body[1..]).0
                };
                if !server.statements.contains(name) {
                    assert!(
                        !pooler_name(name),
                        "pooler used {name:?} before preparing it"
                    );
                    failed = true;
                }
            }
            b'C' => {
                let (name, _) = cstr(&body[1..]);
                server.statements.remove(name);
                reply(
                    server
                        .prepared
                        .pipeline
                        .close_complete()
                        .expect("unexpected CloseComplete"),
                );
            }
            b'E' => failed = body.first() == Some(&b'!'),
            b'S' => {
                server
                    .prepared
                    .pipeline
                    .ready(&mut server.prepared.statements);
                return (delivered, failed);
            }
            other => panic!("pooler sent an unexpected message {}", other as char),
        }
    }
    panic!("the batch had no Sync");
}
