//! Query cancellation: the client-facing keys pgcorral hands out, and forwarding a
//! CancelRequest to the server connection a client is using right now.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use bytes::BytesMut;
use pgcorral::protocol::builder;
use rand::Rng;
use subtle::ConstantTimeEq;
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

/// Process-wide map from a client's BackendKeyData pid to its secret and slot. Touched at
/// login, logout and cancel only; the per-transaction update goes to the client's own slot.
/// Keyed by pid alone so that the secret is compared in constant time, never hashed.
#[derive(Debug, Default)]
pub struct CancelRegistry {
    slots: Mutex<HashMap<i32, (i32, Arc<CancelSlot>)>>,
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
            m.remove(&self.pid);
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
            if let std::collections::hash_map::Entry::Vacant(e) = m.entry(pid) {
                e.insert((secret, slot.clone()));
                return CancelKey {
                    pid,
                    secret,
                    slot,
                    registry: self.clone(),
                };
            }
        }
    }

    /// The server target for a client key, if that client is using a server now. Only an
    /// exact (pid, secret) match counts; the secret is compared in constant time.
    pub fn lookup(&self, pid: i32, secret: i32) -> Option<CancelTarget> {
        let slot = {
            let m = self.slots.lock().ok()?;
            let (expected, slot) = m.get(&pid)?;
            let matches = expected.to_be_bytes().ct_eq(&secret.to_be_bytes());
            bool::from(matches).then(|| slot.clone())?
        };
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

#[cfg(test)]
mod tests {
    use super::*;

    fn target() -> CancelTarget {
        CancelTarget {
            addr: "127.0.0.1:5432".parse().unwrap(),
            pid: 7,
            secret: 8,
        }
    }

    #[test]
    fn a_cancel_reaches_a_server_only_with_the_exact_key() {
        let registry = Arc::new(CancelRegistry::default());
        let key = registry.register();
        assert!(key.pid > 0);
        // No server yet: nothing to cancel.
        assert_eq!(registry.lookup(key.pid, key.secret), None);
        key.slot.set(Some(target()));
        assert_eq!(registry.lookup(key.pid, key.secret), Some(target()));
        assert_eq!(registry.lookup(key.pid, key.secret ^ 1), None);
        assert_eq!(
            registry.lookup(key.pid, key.secret.wrapping_add(1 << 31)),
            None
        );
        assert_eq!(registry.lookup(key.pid ^ 1, key.secret), None);
        let (pid, secret) = (key.pid, key.secret);
        drop(key);
        assert_eq!(
            registry.lookup(pid, secret),
            None,
            "a departed client's key is gone"
        );
    }

    #[test]
    fn keys_are_unique_and_not_sequential() {
        let registry = Arc::new(CancelRegistry::default());
        let keys: Vec<CancelKey> = (0..1000).map(|_| registry.register()).collect();
        let pids: std::collections::HashSet<i32> = keys.iter().map(|k| k.pid).collect();
        assert_eq!(pids.len(), keys.len());
        let secrets: std::collections::HashSet<i32> = keys.iter().map(|k| k.secret).collect();
        assert!(
            secrets.len() > 990,
            "secrets repeat: {} distinct",
            secrets.len()
        );
        let ascending = keys.windows(2).filter(|w| w[1].pid == w[0].pid + 1).count();
        assert!(ascending < 10, "pids look sequential");
    }
}
