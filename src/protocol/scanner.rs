//! Finds message boundaries in a byte stream that is forwarded in bulk.
//!
//! The data path never waits for a whole message before forwarding it (a 100 MB COPY row or
//! a huge Bind streams through a small buffer, as in PgBouncer's sbuf). The scanner remembers
//! how much of the current message's body is still to come, shows the caller each message
//! header as it passes, and holds back only the messages the caller wants to read whole.

use super::codec::checked_total_len;
use super::{ProtocolError, HEADER_LEN};

/// What the caller decides about a message the scanner shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Forward it and go on.
    Forward,
    /// Stop before this message: the bytes before it may be forwarded, it stays in the buffer.
    StopBefore,
    /// Forward it, then stop (the caller acts on what it saw before reading further).
    StopAfter,
}

/// The result of one scan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scan {
    /// Leading bytes of the buffer that may be forwarded now.
    pub forward: usize,
    /// The scan stopped on the caller's request (not for lack of bytes).
    pub stopped: bool,
    /// When not stopped: total bytes the buffer must hold to make progress (a message the
    /// caller wants whole, or a header), if more than it has.
    pub needs: Option<usize>,
}

/// Streaming message-boundary tracker for one direction of one connection.
#[derive(Debug, Clone)]
pub struct Scanner {
    /// Body bytes of the current message not yet seen.
    remaining: usize,
    max_len: usize,
}

impl Scanner {
    pub fn new(max_len: usize) -> Self {
        Scanner {
            remaining: 0,
            max_len,
        }
    }

    /// The message size limit this scanner enforces.
    pub fn max_len(&self) -> usize {
        self.max_len
    }

    /// True when the stream is at a message boundary (nothing of a message is half-sent).
    pub fn at_boundary(&self) -> bool {
        self.remaining == 0
    }

    /// Walks `buf` (which starts where the previous scan's forwarded bytes ended).
    ///
    /// `wants_whole(tag)` says which messages must be complete in the buffer before the caller
    /// sees them; `visit(tag, message)` gets the whole message (header included) for those and
    /// the available prefix for the others, and decides what happens to it.
    pub fn scan(
        &mut self,
        buf: &[u8],
        wants_whole: impl Fn(u8) -> bool,
        mut visit: impl FnMut(u8, &[u8]) -> Verdict,
    ) -> Result<Scan, ProtocolError> {
        let mut pos = self.remaining.min(buf.len());
        self.remaining -= pos;
        while self.remaining == 0 {
            if buf.len() - pos < HEADER_LEN {
                let needs = (pos < buf.len()).then_some(HEADER_LEN - (buf.len() - pos));
                return Ok(Scan {
                    forward: pos,
                    stopped: false,
                    needs: needs.map(|n| buf.len() + n),
                });
            }
            let tag = buf[pos];
            let total = checked_total_len(&buf[pos..], self.max_len)?;
            let available = buf.len() - pos;
            if wants_whole(tag) && available < total {
                return Ok(Scan {
                    forward: pos,
                    stopped: false,
                    needs: Some(pos + total),
                });
            }
            let seen = &buf[pos..pos + total.min(available)];
            match visit(tag, seen) {
                Verdict::StopBefore => {
                    return Ok(Scan {
                        forward: pos,
                        stopped: true,
                        needs: None,
                    })
                }
                Verdict::Forward | Verdict::StopAfter if available < total => {
                    // A partial message the caller lets stream through.
                    self.remaining = total - available;
                    return Ok(Scan {
                        forward: buf.len(),
                        stopped: false,
                        needs: None,
                    });
                }
                Verdict::Forward => pos += total,
                Verdict::StopAfter => {
                    return Ok(Scan {
                        forward: pos + total,
                        stopped: true,
                        needs: None,
                    })
                }
            }
        }
        Ok(Scan {
            forward: buf.len(),
            stopped: false,
            needs: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::builder;
    use bytes::BytesMut;

    fn stream() -> BytesMut {
        let mut b = BytesMut::new();
        builder::query(&mut b, "SELECT 'a long enough query text'");
        builder::copy_data(&mut b, &[7u8; 300]);
        builder::ready_for_query(&mut b, b'T');
        b
    }

    /// Feeds `data` in two pieces cut at `cut` and returns the tags seen, in order, and the
    /// bytes forwarded, checking that everything is forwarded exactly once.
    fn feed(data: &[u8], cut: usize, whole: fn(u8) -> bool) -> Vec<u8> {
        let mut sc = Scanner::new(1 << 20);
        let mut buf = BytesMut::new();
        let mut forwarded = Vec::new();
        let mut tags = Vec::new();
        for piece in [&data[..cut], &data[cut..]] {
            buf.extend_from_slice(piece);
            let s = sc
                .scan(&buf, whole, |t, m| {
                    if whole(t) {
                        assert_eq!(m.len(), data.len().min(m.len()));
                    }
                    tags.push(t);
                    Verdict::Forward
                })
                .unwrap();
            forwarded.extend_from_slice(&buf.split_to(s.forward));
        }
        assert_eq!(forwarded, data, "cut at {cut}");
        assert!(sc.at_boundary());
        tags
    }

    #[test]
    fn sees_every_header_once_at_every_split_point() {
        let data = stream();
        for cut in 0..=data.len() {
            assert_eq!(feed(&data, cut, |_| false), b"QdZ", "cut at {cut}");
            assert_eq!(feed(&data, cut, |t| t == b'Q'), b"QdZ", "cut at {cut}");
        }
    }

    #[test]
    fn holds_back_a_wanted_message_until_whole() {
        let data = stream();
        let mut sc = Scanner::new(1 << 20);
        let s = sc
            .scan(&data[..10], |t| t == b'Q', |_, _| Verdict::Forward)
            .unwrap();
        assert_eq!(s.forward, 0);
        assert_eq!(
            s.needs,
            Some(1 + 4 + "SELECT 'a long enough query text'".len() + 1)
        );
    }

    #[test]
    fn stop_before_leaves_the_message_in_place() {
        let data = stream();
        let mut sc = Scanner::new(1 << 20);
        let s = sc
            .scan(
                &data,
                |_| true,
                |t, _| {
                    if t == b'Z' {
                        Verdict::StopBefore
                    } else {
                        Verdict::Forward
                    }
                },
            )
            .unwrap();
        assert!(s.stopped);
        assert_eq!(data[s.forward], b'Z');
    }

    #[test]
    fn rejects_oversized_and_negative_lengths() {
        let mut sc = Scanner::new(1024);
        let err = sc
            .scan(&[b'd', 0x10, 0, 0, 0], |_| false, |_, _| Verdict::Forward)
            .unwrap_err();
        assert!(matches!(err, ProtocolError::MessageTooLong { .. }));
        let err = sc
            .scan(
                &[b'd', 0xff, 0xff, 0xff, 0xfe],
                |_| false,
                |_, _| Verdict::Forward,
            )
            .unwrap_err();
        assert!(matches!(err, ProtocolError::InvalidLength(_)));
    }
}
