//! Writes that notice a peer that stopped reading (slow-client eviction).
//!
//! pgcorral never queues output in memory beyond one read buffer: when a client does not
//! read, the write to it blocks, pgcorral stops reading the server, and the server stops.
//! That bounds memory but would hold a server connection forever, so a write that makes no
//! progress for `client_write_timeout` gives up. The common case, a write the kernel takes
//! at once, costs no timer and no clock read.

use std::future::poll_fn;
use std::pin::Pin;
use std::task::Poll;
use std::time::Duration;

use tokio::io::{AsyncWrite, AsyncWriteExt};

/// Why a watched write did not finish.
#[derive(Debug)]
pub enum WriteFailed {
    Io(std::io::Error),
    /// No byte was taken for the whole limit, and the stall counts (see [`write_all_watched`]).
    Stalled(Duration),
}

/// Writes all of `bytes`, then flushes (a TLS stream keeps records the socket did not take
/// until flushed; for a plain socket the flush is free). If the peer takes nothing for
/// `limit()` (evaluated only once a write blocks; `None` = wait forever), `stalled(w)`
/// decides: `true` gives up with [`WriteFailed::Stalled`], `false` waits another period.
pub async fn write_all_watched<W: AsyncWrite + Unpin>(
    w: &mut W,
    bytes: &[u8],
    limit: impl FnOnce() -> Option<Duration>,
    mut stalled: impl FnMut(&mut W) -> bool,
) -> Result<(), WriteFailed> {
    let mut limit = Lazy::Unread(limit);
    write_watched(w, bytes, &mut limit, &mut stalled).await?;
    // Fast path again: a flush that completes at once needs no timer.
    match poll_fn(|cx| Poll::Ready(Pin::new(&mut *w).poll_flush(cx))).await {
        Poll::Ready(r) => return r.map_err(WriteFailed::Io),
        Poll::Pending => {}
    }
    let Some(limit) = limit.get() else {
        return w.flush().await.map_err(WriteFailed::Io);
    };
    loop {
        match tokio::time::timeout(limit, w.flush()).await {
            Ok(r) => return r.map_err(WriteFailed::Io),
            Err(_) if stalled(w) => return Err(WriteFailed::Stalled(limit)),
            Err(_) => {}
        }
    }
}

/// `client_write_timeout`, read only once a write blocks.
enum Lazy<F> {
    Unread(F),
    Read(Option<Duration>),
}

impl<F: FnOnce() -> Option<Duration>> Lazy<F> {
    fn get(&mut self) -> Option<Duration> {
        if let Lazy::Read(v) = self {
            return *v;
        }
        let Lazy::Unread(f) = std::mem::replace(self, Lazy::Read(None)) else {
            return None;
        };
        let v = f();
        *self = Lazy::Read(v);
        v
    }
}

/// The write half of [`write_all_watched`].
async fn write_watched<W: AsyncWrite + Unpin, F: FnOnce() -> Option<Duration>>(
    w: &mut W,
    mut bytes: &[u8],
    limit: &mut Lazy<F>,
    stalled: &mut impl FnMut(&mut W) -> bool,
) -> Result<(), WriteFailed> {
    // Fast path: write while the socket takes it, without a timer.
    while !bytes.is_empty() {
        match poll_fn(|cx| Poll::Ready(Pin::new(&mut *w).poll_write(cx, bytes))).await {
            Poll::Ready(Ok(0)) => return Err(WriteFailed::Io(write_zero())),
            Poll::Ready(Ok(n)) => bytes = &bytes[n..],
            Poll::Ready(Err(e)) => return Err(WriteFailed::Io(e)),
            Poll::Pending => break,
        }
    }
    if bytes.is_empty() {
        return Ok(());
    }
    let Some(limit) = limit.get() else {
        return w.write_all(bytes).await.map_err(WriteFailed::Io);
    };
    while !bytes.is_empty() {
        match tokio::time::timeout(limit, w.write(bytes)).await {
            Ok(Ok(0)) => return Err(WriteFailed::Io(write_zero())),
            Ok(Ok(n)) => bytes = &bytes[n..],
            Ok(Err(e)) => return Err(WriteFailed::Io(e)),
            Err(_) if stalled(w) => return Err(WriteFailed::Stalled(limit)),
            Err(_) => {}
        }
    }
    Ok(())
}

/// Whether the reactor has seen input on `stream` that nobody read yet (no syscall).
pub fn readable_now(stream: &tokio::net::TcpStream) -> bool {
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    matches!(stream.poll_read_ready(&mut cx), Poll::Ready(_))
}

fn write_zero() -> std::io::Error {
    std::io::Error::from(std::io::ErrorKind::WriteZero)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    fn rt() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
    }

    #[test]
    fn a_reader_that_keeps_up_gets_everything() {
        rt().block_on(async {
            let (mut a, mut b) = tokio::io::duplex(64);
            let data = vec![7u8; 10_000];
            let reader = tokio::spawn(async move {
                let mut got = Vec::new();
                b.read_to_end(&mut got).await.map(|_| got)
            });
            write_all_watched(&mut a, &data, || Some(Duration::from_secs(5)), |_| true)
                .await
                .expect("write");
            drop(a);
            assert_eq!(reader.await.expect("join").expect("read"), data);
        });
    }

    #[test]
    fn a_peer_that_stops_reading_is_given_up_only_when_the_stall_counts() {
        rt().block_on(async {
            let (mut a, _b) = tokio::io::duplex(64);
            let mut asked = 0;
            let r = write_all_watched(
                &mut a,
                &[1u8; 1000],
                || Some(Duration::from_millis(20)),
                |_| {
                    asked += 1;
                    asked == 3
                },
            )
            .await;
            assert!(matches!(r, Err(WriteFailed::Stalled(_))));
            assert_eq!(asked, 3);
        });
    }
}
