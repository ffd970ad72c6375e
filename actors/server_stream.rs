//! A server connection's socket: plain TCP or TLS, and the SSLRequest that starts TLS.
//!
//! Server connections move between arbiters (`into_std` on one, `from_std` on the other so
//! the socket joins the adopting arbiter's reactor). A TLS session cannot be rebuilt from
//! its parts, so it runs over [`MovableTcp`], whose socket is detached and attached in place
//! while the whole session moves.
//!
//! As for clients, a TLS write is complete only once flushed: write with
//! [`ServerStream::send`] or `stalled::write_all_watched`, which both flush.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::BytesMut;
use pgcorral::config::TlsMode;
use pgcorral::protocol::builder;
use pgcorral::tls::{server_name, TlsSummary};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

use crate::error::ServerError;
use crate::tls::describe_io_error;

/// A TCP socket that can leave its arbiter's reactor and join another's without moving
/// out of the TLS session that owns it.
pub enum MovableTcp {
    Attached(TcpStream),
    /// Between arbiters: reads and writes fail until attached.
    Detached(std::net::TcpStream),
    /// Detaching or attaching failed: the connection is unusable.
    Lost,
}

fn detached() -> io::Error {
    io::Error::new(
        io::ErrorKind::NotConnected,
        "server connection is not attached to an arbiter",
    )
}

impl MovableTcp {
    fn detach(&mut self) -> io::Result<()> {
        match std::mem::replace(self, MovableTcp::Lost) {
            MovableTcp::Attached(s) => *self = MovableTcp::Detached(s.into_std()?),
            other => *self = other,
        }
        Ok(())
    }

    /// Registers the socket with the current arbiter's reactor.
    fn attach(&mut self) -> io::Result<()> {
        match std::mem::replace(self, MovableTcp::Lost) {
            MovableTcp::Detached(s) => *self = MovableTcp::Attached(TcpStream::from_std(s)?),
            other => *self = other,
        }
        Ok(())
    }
}

impl AsyncRead for MovableTcp {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            MovableTcp::Attached(s) => Pin::new(s).poll_read(cx, buf),
            _ => Poll::Ready(Err(detached())),
        }
    }
}

impl AsyncWrite for MovableTcp {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            MovableTcp::Attached(s) => Pin::new(s).poll_write(cx, buf),
            _ => Poll::Ready(Err(detached())),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            MovableTcp::Attached(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            _ => Poll::Ready(Err(detached())),
        }
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            MovableTcp::Attached(s) => Pin::new(s).poll_flush(cx),
            _ => Poll::Ready(Err(detached())),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            MovableTcp::Attached(s) => Pin::new(s).poll_shutdown(cx),
            _ => Poll::Ready(Err(detached())),
        }
    }
}

/// A server connection's socket.
pub enum ServerStream {
    Plain(TcpStream),
    Tls(Box<TlsStream<MovableTcp>>),
}

/// A [`ServerStream`] detached from its arbiter, to be adopted by another.
pub enum DetachedStream {
    Plain(std::net::TcpStream),
    Tls(Box<TlsStream<MovableTcp>>),
}

impl ServerStream {
    /// Starts TLS on a connected socket as `server_tls_sslmode` says (allow, prefer,
    /// require, verify-ca, verify-full): SSLRequest, then the handshake if the server says
    /// `S`. `N` leaves the connection plain for `prefer`; for the others it is an error.
    /// `host` is the configured host: its certificate name (verify-full) and SNI.
    pub async fn start_tls(
        mut tcp: TcpStream,
        connector: &TlsConnector,
        mode: TlsMode,
        host: &str,
        addr: SocketAddr,
    ) -> Result<ServerStream, ServerError> {
        let server = format!("{host}:{}", addr.port());
        let mut out = BytesMut::with_capacity(8);
        builder::ssl_request(&mut out);
        tcp.write_all(&out).await?;
        // Exactly one byte: anything the server (or someone in between) sent after it would
        // be taken for the first TLS record and fail the handshake, never read as plaintext.
        let answer = tcp.read_u8().await.map_err(|e| match e.kind() {
            io::ErrorKind::UnexpectedEof => ServerError::Closed,
            _ => ServerError::Io(e),
        })?;
        match answer {
            b'S' => {
                let name = server_name(host, addr.ip());
                let tls = connector
                    .connect(name, MovableTcp::Attached(tcp))
                    .await
                    .map_err(|e| ServerError::Tls {
                        addr: server.clone(),
                        reason: describe_io_error(&e),
                    })?;
                Ok(ServerStream::Tls(Box::new(tls)))
            }
            b'N' if mode == TlsMode::Prefer => Ok(ServerStream::Plain(tcp)),
            b'N' => Err(ServerError::TlsUnsupported {
                addr: server,
                mode: mode.as_str(),
            }),
            other => Err(ServerError::Tls {
                addr: server,
                reason: format!(
                    "the server answered the SSLRequest with {:?}, not S or N",
                    char::from(other)
                ),
            }),
        }
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        match self {
            ServerStream::Plain(s) => s.local_addr(),
            ServerStream::Tls(s) => match &s.get_ref().0 {
                MovableTcp::Attached(s) => s.local_addr(),
                MovableTcp::Detached(s) => s.local_addr(),
                MovableTcp::Lost => Err(detached()),
            },
        }
    }

    /// Writes all of `bytes` (over TLS: and flushes them to the socket).
    pub async fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        match self {
            ServerStream::Plain(s) => s.write_all(bytes).await,
            ServerStream::Tls(s) => {
                s.write_all(bytes).await?;
                s.flush().await
            }
        }
    }

    /// Version and cipher suite, for SHOW SERVERS.
    pub fn tls_summary(&self) -> Option<TlsSummary> {
        match self {
            ServerStream::Plain(_) => None,
            ServerStream::Tls(s) => TlsSummary::of(s.get_ref().1),
        }
    }

    /// Whether the server has output waiting that nobody read (no syscall): decrypted bytes
    /// in rustls, or a socket the reactor saw turn readable.
    pub fn readable_now(&mut self) -> bool {
        match self {
            ServerStream::Plain(s) => crate::stalled::readable_now(s),
            ServerStream::Tls(s) => {
                let (tcp, session) = s.get_ref();
                !session.wants_read()
                    || matches!(tcp, MovableTcp::Attached(t) if crate::stalled::readable_now(t))
            }
        }
    }

    /// True when an idle connection has seen no input and no EOF: nothing may arrive on an
    /// idle server, so anything that did (or bytes rustls already decrypted) means it is not
    /// reusable. Costs no syscall unless the reactor has marked the socket readable.
    pub fn is_healthy_idle(&mut self) -> bool {
        let tcp = match self {
            ServerStream::Plain(s) => &*s,
            ServerStream::Tls(s) => {
                let (tcp, session) = s.get_ref();
                // wants_read is false while decrypted bytes wait or after close_notify.
                if !session.wants_read() {
                    return false;
                }
                match tcp {
                    MovableTcp::Attached(tcp) => tcp,
                    _ => return false,
                }
            }
        };
        let mut cx = Context::from_waker(std::task::Waker::noop());
        match tcp.poll_read_ready(&mut cx) {
            Poll::Pending => true,
            Poll::Ready(Err(_)) => false,
            Poll::Ready(Ok(())) => {
                // Over TLS, a byte taken here breaks the session: it is closed anyway.
                let mut probe = [0u8; 1];
                matches!(tcp.try_read(&mut probe), Err(ref e) if e.kind() == io::ErrorKind::WouldBlock)
            }
        }
    }

    /// Leaves this arbiter's reactor.
    pub fn detach(self) -> io::Result<DetachedStream> {
        match self {
            ServerStream::Plain(s) => Ok(DetachedStream::Plain(s.into_std()?)),
            ServerStream::Tls(mut s) => {
                s.get_mut().0.detach()?;
                Ok(DetachedStream::Tls(s))
            }
        }
    }
}

impl DetachedStream {
    /// Joins the current arbiter's reactor.
    pub fn attach(self) -> io::Result<ServerStream> {
        match self {
            DetachedStream::Plain(s) => Ok(ServerStream::Plain(TcpStream::from_std(s)?)),
            DetachedStream::Tls(mut s) => {
                s.get_mut().0.attach()?;
                Ok(ServerStream::Tls(s))
            }
        }
    }
}

impl AsyncRead for ServerStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            ServerStream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            ServerStream::Tls(s) => Pin::new(&mut **s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for ServerStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            ServerStream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            ServerStream::Tls(s) => Pin::new(&mut **s).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            ServerStream::Plain(s) => Pin::new(s).poll_flush(cx),
            ServerStream::Tls(s) => Pin::new(&mut **s).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            ServerStream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            ServerStream::Tls(s) => Pin::new(&mut **s).poll_shutdown(cx),
        }
    }
}
