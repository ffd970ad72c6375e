//! A client's connection: plain TCP or TLS, read and written through `AsyncRead` /
//! `AsyncWrite` by delegation; on the plain path that costs one enum match per call.
//!
//! A TLS write is complete only once flushed (rustls keeps records the socket would not
//! take): write with [`ClientStream::send`] or `stalled::write_all_watched`, which both
//! flush, never with a bare `write_all`.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::BytesMut;
use pgcorral::tls::{common_name, TlsSummary};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

/// What login and access rules know about how a client is connected.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientTransport {
    /// The session runs over TLS (for `hostssl` / `hostnossl` rules).
    pub tls: bool,
    /// The common name of the certificate the client showed (verified against
    /// `tls_ca_file`; asked for only when that is set), for the `cert` method.
    pub peer_cn: Option<String>,
}

/// A client socket.
pub enum ClientStream {
    Plain(TcpStream),
    /// Boxed: a TLS session is large and rare enough not to size every client by it.
    Tls(Box<TlsStream<TcpStream>>),
    /// The socket went into a TLS handshake that did not finish: nothing to read or write.
    Closed,
}

fn closed() -> io::Error {
    io::Error::new(
        io::ErrorKind::NotConnected,
        "the client's TLS handshake did not finish",
    )
}

impl ClientStream {
    pub fn is_tls(&self) -> bool {
        matches!(self, ClientStream::Tls(_))
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        match self {
            ClientStream::Plain(s) => s.local_addr(),
            ClientStream::Tls(s) => s.get_ref().0.local_addr(),
            ClientStream::Closed => Err(closed()),
        }
    }

    /// Writes all of `bytes` (over TLS: and flushes them to the socket).
    pub async fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        match self {
            ClientStream::Plain(s) => s.write_all(bytes).await,
            ClientStream::Tls(s) => {
                s.write_all(bytes).await?;
                s.flush().await
            }
            ClientStream::Closed => Err(closed()),
        }
    }

    /// Waits for an idle client to send something or close. Plain: only waits for the socket
    /// to turn readable (nothing is read, so no buffer is needed while idle) and returns
    /// None. TLS: reads into `buf` (reserving `chunk` first), because rustls may already hold
    /// decrypted bytes the socket no longer shows; returns Some(bytes read), 0 at EOF.
    /// Cancel-safe: dropped while pending, nothing was consumed.
    pub async fn idle_input(
        &mut self,
        buf: &mut BytesMut,
        chunk: usize,
    ) -> io::Result<Option<usize>> {
        match self {
            ClientStream::Plain(s) => s.readable().await.map(|()| None),
            ClientStream::Tls(s) => {
                buf.reserve(chunk);
                s.read_buf(buf).await.map(Some)
            }
            ClientStream::Closed => Err(closed()),
        }
    }

    /// Waits for the client to send something or close, and reads it into `buf` (`Ok(0)`:
    /// closed). A plain socket is waited on for readiness first, so the wait itself does no
    /// buffer work and makes no read attempt.
    pub async fn next_input(&mut self, buf: &mut BytesMut, chunk: usize) -> io::Result<usize> {
        if let ClientStream::Plain(s) = self {
            std::future::poll_fn(|cx| s.poll_read_ready(cx)).await?;
        }
        buf.reserve(chunk);
        self.read_buf(buf).await
    }

    /// The first byte the client sent, left unread (None at EOF). Plain streams only.
    pub async fn peek_first(&self) -> io::Result<Option<u8>> {
        match self {
            ClientStream::Plain(s) => {
                let mut first = [0u8; 1];
                Ok((s.peek(&mut first).await? > 0).then_some(first[0]))
            }
            _ => Ok(None),
        }
    }

    /// Runs the TLS handshake (as the server) on a plain stream. If it fails, the stream is
    /// [`ClientStream::Closed`].
    pub async fn accept_tls(&mut self, acceptor: &TlsAcceptor) -> io::Result<()> {
        let ClientStream::Plain(tcp) = std::mem::replace(self, ClientStream::Closed) else {
            return Err(io::Error::other("TLS is already on"));
        };
        let tls = acceptor.accept(tcp).await?;
        *self = ClientStream::Tls(Box::new(tls));
        Ok(())
    }

    /// The ALPN protocol agreed in the handshake.
    pub fn alpn(&self) -> Option<&[u8]> {
        match self {
            ClientStream::Tls(s) => s.get_ref().1.alpn_protocol(),
            _ => None,
        }
    }

    /// TLS or not, and whose certificate.
    pub fn transport(&self) -> ClientTransport {
        match self {
            ClientStream::Tls(s) => ClientTransport {
                tls: true,
                peer_cn: s
                    .get_ref()
                    .1
                    .peer_certificates()
                    .and_then(|chain| chain.first())
                    .and_then(|cert| common_name(cert)),
            },
            _ => ClientTransport::default(),
        }
    }

    /// Version and cipher suite, for SHOW CLIENTS.
    pub fn tls_summary(&self) -> Option<TlsSummary> {
        match self {
            ClientStream::Tls(s) => TlsSummary::of(s.get_ref().1),
            _ => None,
        }
    }
}

impl AsyncRead for ClientStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            ClientStream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            ClientStream::Tls(s) => Pin::new(&mut **s).poll_read(cx, buf),
            ClientStream::Closed => Poll::Ready(Err(closed())),
        }
    }
}

impl AsyncWrite for ClientStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            ClientStream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            ClientStream::Tls(s) => Pin::new(&mut **s).poll_write(cx, buf),
            ClientStream::Closed => Poll::Ready(Err(closed())),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            ClientStream::Plain(s) => Pin::new(s).poll_flush(cx),
            ClientStream::Tls(s) => Pin::new(&mut **s).poll_flush(cx),
            ClientStream::Closed => Poll::Ready(Err(closed())),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            ClientStream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            ClientStream::Tls(s) => Pin::new(&mut **s).poll_shutdown(cx),
            ClientStream::Closed => Poll::Ready(Err(closed())),
        }
    }
}
