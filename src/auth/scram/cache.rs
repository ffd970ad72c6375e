//! A bounded, thread-safe cache of SCRAM salted passwords, so PBKDF2 runs once per distinct
//! (password, salt, iteration count).

use std::collections::HashMap;
use std::fmt;
use std::sync::{Mutex, MutexGuard, PoisonError};

use super::keys::{self, Key};

/// Entries kept by [`SaltedPasswordCache::new`].
const DEFAULT_CAPACITY: usize = 1024;

/// Thread-safe cache of salted passwords (PBKDF2 results).
///
/// Entries are keyed by a SHA-256 digest of the password, salt and iteration count, so the
/// cache holds no copy of the plain-text password and each entry has a fixed size. The cached
/// salted password is itself a login credential: the cache's `Debug` shows only its size.
/// When full, an arbitrary entry is evicted.
pub struct SaltedPasswordCache {
    entries: Mutex<HashMap<Key, Key>>,
    capacity: usize,
}

impl SaltedPasswordCache {
    /// A cache of 1024 entries.
    pub fn new() -> Self {
        Self::with_capacity(DEFAULT_CAPACITY)
    }

    /// A cache of at most `capacity` entries (0 caches nothing).
    pub fn with_capacity(capacity: usize) -> Self {
        SaltedPasswordCache {
            entries: Mutex::new(HashMap::new()),
            capacity,
        }
    }

    /// The cached salted password, if any.
    pub fn get(&self, password: &str, salt: &[u8], iterations: u32) -> Option<[u8; 32]> {
        self.lock()
            .get(&cache_key(password, salt, iterations))
            .copied()
    }

    /// Remembers a salted password computed by [`salted_password`](super::salted_password).
    pub fn insert(&self, password: &str, salt: &[u8], iterations: u32, salted: [u8; 32]) {
        if self.capacity == 0 {
            return;
        }
        let key = cache_key(password, salt, iterations);
        let mut entries = self.lock();
        if entries.len() >= self.capacity && !entries.contains_key(&key) {
            let victim = entries.keys().next().copied();
            if let Some(victim) = victim {
                entries.remove(&victim);
            }
        }
        entries.insert(key, salted);
    }

    /// The cached salted password, or computes it (without holding the lock, so other
    /// threads are not blocked behind PBKDF2) and caches it.
    pub fn get_or_compute(&self, password: &str, salt: &[u8], iterations: u32) -> [u8; 32] {
        if let Some(salted) = self.get(password, salt, iterations) {
            return salted;
        }
        let salted = keys::salted_password(password, salt, iterations);
        self.insert(password, salt, iterations, salted);
        salted
    }

    /// Number of cached entries.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// `true` when nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The map is consistent after any panic in another thread (each operation is a single
    /// map call), so a poisoned lock is simply taken over.
    fn lock(&self) -> MutexGuard<'_, HashMap<Key, Key>> {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Default for SaltedPasswordCache {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for SaltedPasswordCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SaltedPasswordCache")
            .field("len", &self.len())
            .field("capacity", &self.capacity)
            .finish()
    }
}

/// Digest of the length-prefixed fields, so that no two different inputs share an encoding.
fn cache_key(password: &str, salt: &[u8], iterations: u32) -> Key {
    let mut data = Vec::with_capacity(password.len() + salt.len() + 20);
    data.extend_from_slice(&(password.len() as u64).to_be_bytes());
    data.extend_from_slice(password.as_bytes());
    data.extend_from_slice(&(salt.len() as u64).to_be_bytes());
    data.extend_from_slice(salt);
    data.extend_from_slice(&iterations.to_be_bytes());
    keys::sha256(&data)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn get_insert_and_distinct_keys() {
        let cache = SaltedPasswordCache::new();
        assert!(cache.is_empty());
        assert_eq!(cache.get("pw", b"salt", 2), None);
        cache.insert("pw", b"salt", 2, [1; 32]);
        assert_eq!(cache.get("pw", b"salt", 2), Some([1; 32]));
        assert_eq!(cache.get("pw", b"salt", 3), None);
        assert_eq!(cache.get("pw", b"salT", 2), None);
        assert_eq!(cache.get("pW", b"salt", 2), None);
        // Field boundaries matter: ("ab", "c") is not ("a", "bc").
        cache.insert("ab", b"c", 1, [2; 32]);
        assert_eq!(cache.get("a", b"bc", 1), None);
        assert_eq!(cache.len(), 2);
    }

    #[test]
    fn get_or_compute_matches_pbkdf2() {
        let cache = SaltedPasswordCache::new();
        let salted = cache.get_or_compute("pw", b"salt", 3);
        assert_eq!(salted, keys::salted_password("pw", b"salt", 3));
        assert_eq!(cache.get("pw", b"salt", 3), Some(salted));
    }

    #[test]
    fn stays_bounded() {
        let cache = SaltedPasswordCache::with_capacity(4);
        for i in 0..100u32 {
            cache.insert("pw", b"salt", i + 1, [0; 32]);
            assert!(cache.len() <= 4);
        }
        assert_eq!(cache.len(), 4);
        cache.insert("pw", b"salt", 100, [9; 32]);
        assert_eq!(cache.get("pw", b"salt", 100), Some([9; 32]));

        let none = SaltedPasswordCache::with_capacity(0);
        none.insert("pw", b"salt", 1, [0; 32]);
        assert!(none.is_empty());
    }

    #[test]
    fn shared_between_threads() {
        let cache = Arc::new(SaltedPasswordCache::new());
        let handles: Vec<_> = (0..4u8)
            .map(|t| {
                let cache = Arc::clone(&cache);
                std::thread::spawn(move || {
                    for i in 0..50u32 {
                        cache.insert("pw", &[t], i + 1, [t; 32]);
                        assert_eq!(cache.get("pw", &[t], i + 1), Some([t; 32]));
                    }
                })
            })
            .collect();
        for handle in handles {
            handle.join().unwrap();
        }
        assert_eq!(cache.len(), 200);
    }

    #[test]
    fn debug_shows_no_entries() {
        let cache = SaltedPasswordCache::with_capacity(8);
        cache.insert("pw", b"salt", 1, [7; 32]);
        assert_eq!(
            format!("{cache:?}"),
            "SaltedPasswordCache { len: 1, capacity: 8 }"
        );
    }
}
