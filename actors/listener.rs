//! Listening sockets: one per arbiter with SO_REUSEPORT so the kernel spreads accepts and no
//! client socket crosses threads; socket options as PgBouncer users expect.

use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use actix::Actor;
use pgcorral::config::General;
use slog::{info, warn};
use socket2::{Domain, Protocol, SockRef, Socket, TcpKeepalive, Type};
use tokio::net::{TcpListener, TcpStream};

use crate::client::ClientActor;
use crate::worker::{ClientCount, Worker};

/// Binds one listening socket (called on the main thread, once per arbiter, so a bad
/// address stops the daemon at start with a clear error).
pub fn bind(addr: SocketAddr, backlog: u32) -> std::io::Result<std::net::TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    #[cfg(unix)]
    socket.set_reuse_port(true)?;
    socket.bind(&addr.into())?;
    socket.listen(backlog.min(i32::MAX as u32) as i32)?;
    socket.set_nonblocking(true)?;
    Ok(socket.into())
}

/// TCP_NODELAY, keepalive and user timeout on a client or server socket.
pub fn tune_socket(stream: &TcpStream, general: &General) {
    let _ = stream.set_nodelay(true);
    let sock = SockRef::from(stream);
    if general.tcp_keepalive {
        let mut ka = TcpKeepalive::new();
        if let Some(t) = general.tcp_keepidle {
            ka = ka.with_time(t);
        }
        if let Some(t) = general.tcp_keepintvl {
            ka = ka.with_interval(t);
        }
        #[cfg(target_os = "linux")]
        if let Some(n) = general.tcp_keepcnt {
            ka = ka.with_retries(n);
        }
        let _ = sock.set_tcp_keepalive(&ka);
    }
    #[cfg(target_os = "linux")]
    if let Some(t) = general.tcp_user_timeout {
        let _ = sock.set_tcp_user_timeout(Some(t));
    }
}

/// Accepts clients on this arbiter until shutdown.
pub async fn accept_loop(listener: std::net::TcpListener, worker: Rc<Worker>) {
    let listener = match TcpListener::from_std(listener) {
        Ok(l) => l,
        Err(e) => {
            warn!(worker.shared.log, "cannot register listener"; "error" => %e);
            return;
        }
    };
    let general = worker.shared.general();
    info!(worker.shared.log, "listening"; "addr" => %general.listen, "worker" => worker.index);
    loop {
        let accepted = tokio::select! {
            r = listener.accept() => r,
            _ = worker.shutdown.notified() => break,
        };
        if worker.shared.is_shutting_down() {
            break;
        }
        match accepted {
            Ok((stream, peer)) => {
                tune_socket(&stream, &general);
                ClientActor::new(stream, peer, ClientCount::new(worker.clone())).start();
            }
            Err(e) => {
                // EMFILE and friends: back off instead of spinning.
                warn!(worker.shared.log, "accept failed"; "error" => %e);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    info!(worker.shared.log, "listener closed"; "worker" => worker.index);
}
