//! Query cancellation: the client-facing keys pgcorral hands out, and forwarding a
//! CancelRequest to the server connection a client is using right now.

use std::collections::HashMap;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::sync::atomic::{fence, AtomicU64, Ordering};
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

/// One client's slot: where a cancel for it must go now. Written by the client itself each
/// time it takes and returns a server connection (twice per transaction), read by whoever
/// forwards a CancelRequest, on any thread. A sequence lock, so the write takes no lock and
/// no atomic read-modify-write: a handful of plain stores. A read that overlaps a write
/// tries again. Only the [`CancelKey`] that owns the slot writes it (`&mut`), so writes never
/// overlap each other.
#[derive(Debug, Default)]
pub struct CancelSlot {
    /// Odd while a write is in progress; every write adds 2.
    seq: AtomicU64,
    /// The target, encoded by [`encode`].
    words: [AtomicU64; WORDS],
}

const WORDS: usize = 5;

impl CancelSlot {
    fn store(&self, target: Option<CancelTarget>) {
        let words = encode(target);
        let seq = self.seq.load(Ordering::Relaxed);
        self.seq.store(seq.wrapping_add(1), Ordering::Relaxed);
        // Keeps the data stores below after the odd sequence number (paired with the
        // reader's acquire fence).
        fence(Ordering::Release);
        for (word, value) in self.words.iter().zip(words) {
            word.store(value, Ordering::Relaxed);
        }
        self.seq.store(seq.wrapping_add(2), Ordering::Release);
    }

    /// The current target; None while the client has no server connection.
    pub fn get(&self) -> Option<CancelTarget> {
        let mut attempts = 0u32;
        loop {
            let before = self.seq.load(Ordering::Acquire);
            if before & 1 == 0 {
                let words = std::array::from_fn(|i| self.words[i].load(Ordering::Relaxed));
                fence(Ordering::Acquire);
                if self.seq.load(Ordering::Relaxed) == before {
                    return decode(words);
                }
            }
            // A write takes nanoseconds, unless its thread was preempted in the middle: then
            // let it run rather than spin.
            attempts = attempts.saturating_add(1);
            if attempts < 64 {
                std::hint::spin_loop();
            } else {
                std::thread::yield_now();
            }
        }
    }
}

/// A target as words: [kind (0 none, 4, 6) | port << 8 | flowinfo << 32, address high,
/// address low, pid << 32 | secret, scope id].
fn encode(target: Option<CancelTarget>) -> [u64; WORDS] {
    let Some(t) = target else {
        return [0; WORDS];
    };
    let keys = (u64::from(t.pid as u32) << 32) | u64::from(t.secret as u32);
    let port = u64::from(t.addr.port()) << 8;
    match t.addr {
        SocketAddr::V4(a) => [4 | port, 0, u64::from(a.ip().to_bits()), keys, 0],
        SocketAddr::V6(a) => {
            let ip = a.ip().to_bits();
            let flow = u64::from(a.flowinfo()) << 32;
            let scope = u64::from(a.scope_id());
            [6 | port | flow, (ip >> 64) as u64, ip as u64, keys, scope]
        }
    }
}

fn decode([head, high, low, keys, scope]: [u64; WORDS]) -> Option<CancelTarget> {
    let port = (head >> 8) as u16;
    let addr = match head & 0xff {
        4 => SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::from_bits(low as u32), port)),
        6 => SocketAddr::V6(SocketAddrV6::new(
            Ipv6Addr::from_bits((u128::from(high) << 64) | u128::from(low)),
            port,
            (head >> 32) as u32,
            scope as u32,
        )),
        _ => return None,
    };
    Some(CancelTarget {
        addr,
        pid: (keys >> 32) as u32 as i32,
        secret: keys as u32 as i32,
    })
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
    slot: Arc<CancelSlot>,
    registry: Arc<CancelRegistry>,
}

impl CancelKey {
    /// Where a cancel for this client must go from now on (None: it has no server).
    pub fn set_target(&mut self, target: Option<CancelTarget>) {
        self.slot.store(target);
    }

    /// Where a cancel for this client goes now.
    pub fn target(&self) -> Option<CancelTarget> {
        self.slot.get()
    }
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
        let mut key = registry.register();
        assert!(key.pid > 0);
        // No server yet: nothing to cancel.
        assert_eq!(registry.lookup(key.pid, key.secret), None);
        key.set_target(Some(target()));
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

    #[test]
    fn a_slot_gives_back_any_address_it_was_given() {
        let slot = CancelSlot::default();
        assert_eq!(slot.get(), None);
        for addr in [
            "127.0.0.1:5432",
            "10.1.2.3:65535",
            "[::1]:6432",
            "[fe80::1%7]:5433",
            "[2001:db8::ff:1]:1",
        ] {
            let mut addr: SocketAddr = addr.parse().unwrap();
            if let SocketAddr::V6(a) = &mut addr {
                a.set_flowinfo(0xabcd);
            }
            for (pid, secret) in [(1, -1), (i32::MAX, i32::MIN), (-7, 0)] {
                let t = CancelTarget { addr, pid, secret };
                slot.store(Some(t));
                assert_eq!(slot.get(), Some(t));
            }
        }
        slot.store(None);
        assert_eq!(slot.get(), None);
    }

    #[test]
    fn a_reader_never_sees_half_of_a_write() {
        let slot = Arc::new(CancelSlot::default());
        let targets: Vec<CancelTarget> = (0..4)
            .map(|i| CancelTarget {
                addr: if i % 2 == 0 {
                    format!("10.0.0.{i}:{}", 5000 + i).parse().unwrap()
                } else {
                    format!("[2001:db8::{i}]:{}", 6000 + i).parse().unwrap()
                },
                pid: i,
                secret: -i,
            })
            .collect();
        let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let seen = Arc::new(std::sync::atomic::AtomicU32::new(0));
        let reader = {
            let (slot, targets) = (slot.clone(), targets.clone());
            let (done, seen) = (done.clone(), seen.clone());
            std::thread::spawn(move || {
                while !done.load(Ordering::Relaxed) {
                    if let Some(t) = slot.get() {
                        assert!(targets.contains(&t), "torn read: {t:?}");
                        seen.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        };
        // Write until the reader has read plenty of them while writes were going on.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        let mut i = 0;
        while i < 100_000 || seen.load(Ordering::Relaxed) < 100_000 {
            if reader.is_finished() {
                break; // it panicked: join says why
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the reader did not run"
            );
            slot.store(Some(targets[i % targets.len()]));
            i += 1;
        }
        done.store(true, Ordering::Relaxed);
        reader.join().expect("no torn read");
    }
}
