//! The first packets of a client connection, up to its StartupMessage: TLS (after an
//! SSLRequest, or at once with PostgreSQL 17's direct TLS), GSSENCRequest refused with `N`,
//! a CancelRequest forwarded. `client_tls_sslmode` decides what is offered and what is
//! required; the configuration in force when the connection began is used throughout.

use bytes::BytesMut;
use pgcorral::config::TlsMode;
use pgcorral::protocol::startup::StartupPacket;
use pgcorral::protocol::{ProtocolError, StartupCodec};
use pgcorral::tls::{ALPN_POSTGRESQL, TLS_HANDSHAKE_RECORD};
use slog::debug;
use tokio_rustls::TlsAcceptor;

use crate::cancel::send_cancel;
use crate::client_stream::{ClientStream, ClientTransport};
use crate::error::ClientError;
use crate::framed::read_frame;
use crate::tls::describe_io_error;
use crate::worker::Worker;

/// How a connection opened.
pub enum Opening {
    /// A StartupMessage, and the transport it came over.
    Startup {
        params: Vec<(String, String)>,
        transport: ClientTransport,
    },
    /// A CancelRequest, forwarded: the connection is done.
    Cancel,
}

/// Reads the opening packets from `stream`, upgrading it to TLS on the way if the client
/// asks and TLS is offered. Bytes after the StartupMessage stay in `buf`.
pub async fn open(
    stream: &mut ClientStream,
    buf: &mut BytesMut,
    worker: &Worker,
) -> Result<Opening, ClientError> {
    let tls = worker.shared.tls.load_full();
    let acceptor = tls.acceptor.as_ref();
    // PostgreSQL 17's direct TLS: a ClientHello where a startup packet would be. Looked for
    // only when TLS is offered (a peek costs a syscall per connection).
    if let Some(acceptor) = acceptor {
        if buf.is_empty() && stream.peek_first().await? == Some(TLS_HANDSHAKE_RECORD) {
            handshake(stream, acceptor).await?;
            if stream.alpn() != Some(ALPN_POSTGRESQL) {
                return Err(ClientError::TlsHandshake(
                    "direct TLS without ALPN \"postgresql\" (as PostgreSQL 17, the connection is closed)"
                        .into(),
                ));
            }
        }
    }
    let (mut ssl_asked, mut gss_asked) = (false, false);
    loop {
        let packet = read_frame::<_, ClientError>(stream, buf, &mut StartupCodec, 512).await?;
        match packet {
            StartupPacket::SslRequest => {
                if stream.is_tls() {
                    return Err(out_of_sequence(
                        "SSLRequest over an established TLS session",
                    ));
                }
                if std::mem::replace(&mut ssl_asked, true) {
                    return Err(out_of_sequence("SSLRequest sent twice"));
                }
                // Bytes sent before the handshake must not pass for ones sent over TLS
                // (CVE-2021-23214): a client waits for our answer before sending more.
                if !buf.is_empty() {
                    return Err(out_of_sequence(
                        "received unencrypted data after SSL request",
                    ));
                }
                match acceptor {
                    Some(acceptor) => {
                        stream.send(b"S").await?;
                        handshake(stream, acceptor).await?;
                    }
                    None => stream.send(b"N").await?,
                }
            }
            StartupPacket::GssEncRequest => {
                if stream.is_tls() || std::mem::replace(&mut gss_asked, true) {
                    return Err(out_of_sequence("GSSENCRequest out of sequence"));
                }
                // GSSAPI encryption is not offered.
                stream.send(b"N").await?;
            }
            StartupPacket::Cancel { pid, secret } => {
                let shared = &worker.shared;
                if let Some(target) = shared.cancels.lookup(pid, secret) {
                    debug!(shared.log, "forwarding cancel request"; "server" => %target.addr);
                    let _ = send_cancel(target).await;
                }
                return Ok(Opening::Cancel);
            }
            StartupPacket::Startup { params, .. } => {
                let required = matches!(
                    tls.client_mode,
                    TlsMode::Require | TlsMode::VerifyCa | TlsMode::VerifyFull
                );
                if required && !stream.is_tls() {
                    return Err(ClientError::TlsRequired {
                        mode: tls.client_mode.as_str(),
                    });
                }
                return Ok(Opening::Startup {
                    params,
                    transport: stream.transport(),
                });
            }
        }
    }
}

async fn handshake(stream: &mut ClientStream, acceptor: &TlsAcceptor) -> Result<(), ClientError> {
    stream
        .accept_tls(acceptor)
        .await
        .map_err(|e| ClientError::TlsHandshake(describe_io_error(&e)))
}

fn out_of_sequence(what: &'static str) -> ClientError {
    ProtocolError::OutOfSequence(what).into()
}
