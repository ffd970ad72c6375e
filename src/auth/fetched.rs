//! Secrets fetched from the database with `auth_query`: the process-wide cache per (pool
//! database, user) and the rules for fetching again. I/O-free: callers pass the time.
//!
//! The rules (docs/authentication.md explains them to users):
//!
//! * an entry is used while it is younger than `auth_query_cache_ttl` (no TTL: never reused,
//!   every login fetches);
//! * a login that fails against an entry at least [`REFETCH_MIN_AGE`] old fetches again (md5,
//!   password: the same answer is checked against the new secret) or drops the entry (SCRAM:
//!   the next login fetches), so a new password takes effect without waiting for the TTL,
//!   while a stream of wrong passwords costs at most one fetch per second per user;
//! * RELOAD empties the cache.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

/// A failed login refreshes an entry only when it is at least this old.
pub const REFETCH_MIN_AGE: Duration = Duration::from_secs(1);

/// Entries kept by [`FetchedSecrets::new`].
const DEFAULT_CAPACITY: usize = 10_000;

/// One fetched value and when it was fetched.
#[derive(Clone)]
pub struct Fetched<V> {
    /// What the query returned (made into whatever the caller needs).
    pub value: V,
    /// When it was fetched.
    pub at: Instant,
    /// Tells this fetch from a later one of the same key.
    pub id: u64,
}

impl<V> Fetched<V> {
    /// How old the value is at `now`.
    pub fn age(&self, now: Instant) -> Duration {
        now.saturating_duration_since(self.at)
    }

    /// Whether a login that failed against this value at `now` may fetch again.
    pub fn may_refetch(&self, now: Instant) -> bool {
        self.age(now) >= REFETCH_MIN_AGE
    }
}

/// The cache, shared by every thread.
pub struct FetchedSecrets<V> {
    inner: Mutex<Inner<V>>,
    capacity: usize,
}

struct Inner<V> {
    entries: HashMap<(String, String), Fetched<V>>,
    next_id: u64,
}

impl<V: Clone> FetchedSecrets<V> {
    /// A cache of up to 10,000 (database, user) entries.
    pub fn new() -> Self {
        Self::with_capacity(DEFAULT_CAPACITY)
    }

    /// A cache of up to `capacity` entries; when full, an arbitrary one is forgotten.
    pub fn with_capacity(capacity: usize) -> Self {
        FetchedSecrets {
            inner: Mutex::new(Inner {
                entries: HashMap::new(),
                next_id: 0,
            }),
            capacity,
        }
    }

    /// The entry for (`database`, `user`) if it is younger than `ttl` at `now` (`None`: no
    /// entry is ever reused).
    pub fn get(
        &self,
        database: &str,
        user: &str,
        ttl: Option<Duration>,
        now: Instant,
    ) -> Option<Fetched<V>> {
        let ttl = ttl?;
        let inner = self.lock();
        let entry = inner.entries.get(&(database.to_owned(), user.to_owned()))?;
        (entry.age(now) < ttl).then(|| entry.clone())
    }

    /// Stores what a fetch at `now` returned, replacing any older entry; returns the entry.
    pub fn insert(&self, database: &str, user: &str, value: V, now: Instant) -> Fetched<V> {
        let mut inner = self.lock();
        inner.next_id += 1;
        let entry = Fetched {
            value,
            at: now,
            id: inner.next_id,
        };
        if self.capacity == 0 {
            return entry;
        }
        let key = (database.to_owned(), user.to_owned());
        if inner.entries.len() >= self.capacity && !inner.entries.contains_key(&key) {
            let victim = inner.entries.keys().next().cloned();
            if let Some(victim) = victim {
                inner.entries.remove(&victim);
            }
        }
        inner.entries.insert(key, entry.clone());
        entry
    }

    /// Forgets the entry of (`database`, `user`) if it is still the fetch `id` (a newer
    /// fetch stays). Returns whether it was forgotten.
    pub fn invalidate(&self, database: &str, user: &str, id: u64) -> bool {
        let mut inner = self.lock();
        let key = (database.to_owned(), user.to_owned());
        if inner.entries.get(&key).is_some_and(|e| e.id == id) {
            inner.entries.remove(&key);
            return true;
        }
        false
    }

    /// The newest entry of (`database`, `user`) whatever its age.
    pub fn latest(&self, database: &str, user: &str) -> Option<Fetched<V>> {
        self.lock()
            .entries
            .get(&(database.to_owned(), user.to_owned()))
            .cloned()
    }

    /// Forgets everything (RELOAD).
    pub fn clear(&self) {
        self.lock().entries.clear();
    }

    /// Entries held.
    pub fn len(&self) -> usize {
        self.lock().entries.len()
    }

    /// `true` when nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Each operation is a few map calls that leave the map consistent, so a lock poisoned by
    /// a panic elsewhere is taken over.
    fn lock(&self) -> MutexGuard<'_, Inner<V>> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl<V: Clone> Default for FetchedSecrets<V> {
    fn default() -> Self {
        Self::new()
    }
}

impl<V> fmt::Debug for FetchedSecrets<V> {
    /// Only the size: the values are credentials.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let len = self
            .inner
            .lock()
            .map(|i| i.entries.len())
            .unwrap_or_default();
        f.debug_struct("FetchedSecrets")
            .field("len", &len)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TTL: Option<Duration> = Some(Duration::from_secs(60));

    #[test]
    fn entries_live_for_the_ttl() {
        let cache = FetchedSecrets::new();
        let t0 = Instant::now();
        assert!(cache.get("db", "u", TTL, t0).is_none());
        cache.insert("db", "u", "s1", t0);
        let hit = cache
            .get("db", "u", TTL, t0 + Duration::from_secs(59))
            .unwrap();
        assert_eq!(hit.value, "s1");
        assert_eq!(
            hit.age(t0 + Duration::from_secs(59)),
            Duration::from_secs(59)
        );
        assert!(cache
            .get("db", "u", TTL, t0 + Duration::from_secs(60))
            .is_none());
        // Per database and user.
        assert!(cache.get("db2", "u", TTL, t0).is_none());
        assert!(cache.get("db", "v", TTL, t0).is_none());
        // No TTL: fetched at every login, nothing is reused.
        assert!(cache.get("db", "u", None, t0).is_none());
        assert_eq!(cache.latest("db", "u").unwrap().value, "s1");
    }

    #[test]
    fn a_failed_login_refreshes_only_entries_a_second_old() {
        let cache = FetchedSecrets::new();
        let t0 = Instant::now();
        let e = cache.insert("db", "u", "s1", t0);
        assert!(!e.may_refetch(t0 + Duration::from_millis(999)));
        assert!(e.may_refetch(t0 + REFETCH_MIN_AGE));
        // Dropping the entry a login failed against leaves a newer fetch alone.
        let newer = cache.insert("db", "u", "s2", t0 + Duration::from_secs(2));
        assert!(!cache.invalidate("db", "u", e.id));
        assert_eq!(cache.latest("db", "u").unwrap().value, "s2");
        assert!(cache.invalidate("db", "u", newer.id));
        assert!(cache.latest("db", "u").is_none());
    }

    #[test]
    fn clear_and_capacity() {
        let cache = FetchedSecrets::with_capacity(3);
        let t0 = Instant::now();
        for i in 0..10 {
            cache.insert("db", &format!("u{i}"), i, t0);
            assert!(cache.len() <= 3);
        }
        assert_eq!(cache.get("db", "u9", TTL, t0).unwrap().value, 9);
        assert_eq!(format!("{cache:?}"), "FetchedSecrets { len: 3, .. }");
        cache.clear();
        assert!(cache.is_empty());
        let none = FetchedSecrets::with_capacity(0);
        let e = none.insert("db", "u", 1, t0);
        assert_eq!(e.value, 1);
        assert!(none.is_empty());
    }
}
