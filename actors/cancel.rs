//! Query cancellation: the client-facing keys pgcorral hands out, and forwarding a
//! CancelRequest to the server connection a client is using right now.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use bytes::BytesMut;
use pgcorral::protocol::builder;
use rand::Rng;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

/// Where a cancel for a client must go: its current server and that server's key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CancelTarget {
    pub addr: SocketAddr,
    pub pid: i32,
    pub secret: i32,
}

/// One client's slot, updated when it takes and returns a server connection.
#[derive(Debug, Default)]
pub struct CancelSlot {
    target: Mutex<Option<CancelTarget>>,
}

impl CancelSlot {
    pub fn set(&self, target: Option<CancelTarget>) {
        if let Ok(mut t) = self.target.lock() {
            *t = target;
        }
    }
    pub fn get(&self) -> Option<CancelTarget> {
        self.target.lock().ok().and_then(|t| *t)
    }
}

/// Process-wide map from a client's BackendKeyData to its slot. Touched at login, logout and
/// cancel only; the per-transaction update goes to the client's own slot.
#[derive(Debug, Default)]
pub struct CancelRegistry {
    slots: Mutex<HashMap<(i32, i32), Arc<CancelSlot>>>,
}

/// A registered client key; unregisters itself when dropped.
pub struct CancelKey {
    pub pid: i32,
    pub secret: i32,
    pub slot: Arc<CancelSlot>,
    registry: Arc<CancelRegistry>,
}

impl Drop for CancelKey {
    fn drop(&mut self) {
        if let Ok(mut m) = self.registry.slots.lock() {
            m.remove(&(self.pid, self.secret));
        }
    }
}

impl CancelRegistry {
    /// Hands out a fresh random key (from a cryptographic RNG) for a new client.
    pub fn register(self: &Arc<Self>) -> CancelKey {
        let mut rng = rand::thread_rng();
        let slot = Arc::new(CancelSlot::default());
        let mut m = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            let pid = rng.gen_range(1..i32::MAX);
            let secret: i32 = rng.gen();
            if let std::collections::hash_map::Entry::Vacant(e) = m.entry((pid, secret)) {
                e.insert(slot.clone());
                return CancelKey {
                    pid,
                    secret,
                    slot,
                    registry: self.clone(),
                };
            }
        }
    }

    /// The server target for a client key, if that client is using a server now.
    pub fn lookup(&self, pid: i32, secret: i32) -> Option<CancelTarget> {
        let slot = self.slots.lock().ok()?.get(&(pid, secret)).cloned()?;
        slot.get()
    }
}

/// Sends a CancelRequest to a server (a new connection, as the protocol wants).
pub async fn send_cancel(target: CancelTarget) -> std::io::Result<()> {
    let mut stream = TcpStream::connect(target.addr).await?;
    let mut buf = BytesMut::with_capacity(16);
    builder::cancel_request(&mut buf, target.pid, target.secret);
    stream.write_all(&buf).await?;
    // The server closes the connection once it has read the request.
    let mut sink = [0u8; 1];
    let _ = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        tokio::io::AsyncReadExt::read(&mut stream, &mut sink),
    )
    .await;
    Ok(())
}
