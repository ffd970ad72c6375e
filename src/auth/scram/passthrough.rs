//! Pass-through: the ClientKeys that clients proved during SCRAM logins, kept by verifier, so
//! the pooler can log into servers that hold the same verifier without knowing the password.
//!
//! A successful SCRAM proof gives away `ClientKey = ClientProof XOR HMAC(StoredKey,
//! AuthMessage)`, which [`ScramServer::client_key`](super::ScramServer::client_key) returns.
//! With it and the verifier's ServerKey,
//! [`client_final_from_verifier`](super::ScramClient::client_final_from_verifier) answers a
//! server's challenge, as long as the server's salt and iteration count are the verifier's. Until some client has logged in,
//! no key is known for a verifier: a pool whose only secret is a verifier cannot open server
//! connections before that.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Mutex, MutexGuard, PoisonError};

use subtle::ConstantTimeEq;

use super::keys::{self, Key};
use crate::auth::ScramVerifier;

/// Verifiers remembered by [`ClientKeys::new`].
const DEFAULT_CAPACITY: usize = 10_000;

/// ClientKeys by the StoredKey of their verifier, shared by every thread. Written once per
/// verifier (the first successful login), read when a server connection is opened.
///
/// Keyed by StoredKey, a key stays valid across reloads and cache refreshes as long as the
/// verifier does, and a changed password (a new verifier) never finds the old key. Each key is
/// a login credential: `Debug` shows only the count.
pub struct ClientKeys {
    entries: Mutex<HashMap<Key, Key>>,
    capacity: usize,
}

impl ClientKeys {
    /// A store of up to 10,000 verifiers.
    pub fn new() -> Self {
        Self::with_capacity(DEFAULT_CAPACITY)
    }

    /// A store of up to `capacity` verifiers; when full, an arbitrary one is forgotten.
    pub fn with_capacity(capacity: usize) -> Self {
        ClientKeys {
            entries: Mutex::new(HashMap::new()),
            capacity,
        }
    }

    /// Remembers `client_key` for `verifier` if it is the verifier's (`H(ClientKey) ==
    /// StoredKey`, compared in constant time). Returns whether it was kept.
    pub fn learn(&self, verifier: &ScramVerifier, client_key: [u8; 32]) -> bool {
        let fits: bool = keys::stored_key(&client_key)
            .ct_eq(&verifier.stored_key)
            .into();
        if !fits || self.capacity == 0 {
            return false;
        }
        let mut entries = self.lock();
        if entries.contains_key(&verifier.stored_key) {
            return true;
        }
        if entries.len() >= self.capacity {
            let victim = entries.keys().next().copied();
            if let Some(victim) = victim {
                entries.remove(&victim);
            }
        }
        entries.insert(verifier.stored_key, client_key);
        true
    }

    /// The ClientKey learned for `verifier`, if a client has proved it.
    pub fn get(&self, verifier: &ScramVerifier) -> Option<[u8; 32]> {
        self.lock().get(&verifier.stored_key).copied()
    }

    /// Verifiers with a known key.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// `true` when no key is known.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Each operation is one map call, so a lock poisoned by a panic elsewhere is consistent.
    fn lock(&self) -> MutexGuard<'_, HashMap<Key, Key>> {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Default for ClientKeys {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for ClientKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientKeys")
            .field("len", &self.len())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::{salted_password, AuthError, ScramClient, ScramServer};

    /// An application logs into the pooler's `ScramServer` with its password; returns the
    /// ClientKey the pooler recovered from the real proof.
    fn app_logs_in(verifier: &ScramVerifier, password: &str) -> Result<[u8; 32], AuthError> {
        let mut pooler = ScramServer::new(verifier.clone());
        let mut app = ScramClient::new();
        let first = pooler.client_first(&app.client_first())?;
        let params = app.server_first(&first)?;
        let salted = salted_password(password, &params.salt, params.iterations);
        let fin = pooler.client_final(&app.client_final(&salted))?;
        app.server_final(&fin)?;
        pooler
            .client_key()
            .ok_or_else(|| AuthError::OutOfOrder("no key".into()))
    }

    /// The pooler logs into a server holding `server_verifier` with what it learned.
    fn pooler_logs_in(
        store: &ClientKeys,
        stored: &ScramVerifier,
        server_verifier: &ScramVerifier,
    ) -> Result<(), AuthError> {
        let key = store
            .get(stored)
            .ok_or_else(|| AuthError::Unsupported("no key learned".into()))?;
        let mut server = ScramServer::new(server_verifier.clone());
        let mut pooler = ScramClient::new();
        let first = server.client_first(&pooler.client_first())?;
        pooler.server_first(&first)?;
        let fin = server.client_final(&pooler.client_final_from_verifier(stored, &key)?)?;
        pooler.server_final(&fin)
    }

    #[test]
    fn a_key_recovered_from_a_real_proof_logs_into_a_server() {
        let verifier = ScramVerifier::from_password("app-secret", b"0123456789abcdef", 64);
        let store = ClientKeys::new();
        assert!(matches!(
            pooler_logs_in(&store, &verifier, &verifier),
            Err(AuthError::Unsupported(_))
        ));
        let key = app_logs_in(&verifier, "app-secret").unwrap();
        assert!(store.learn(&verifier, key));
        assert_eq!(store.len(), 1);
        pooler_logs_in(&store, &verifier, &verifier).unwrap();
        // Learning again changes nothing.
        assert!(store.learn(&verifier, key));
        assert_eq!(store.len(), 1);

        // The password changed on the server: a new salt, so the old key is refused before
        // anything is sent.
        let changed = ScramVerifier::from_password("new-secret", b"fedcba9876543210", 64);
        assert!(matches!(
            pooler_logs_in(&store, &verifier, &changed),
            Err(AuthError::VerifierChanged)
        ));
        // And the new verifier has no key until a client proves it.
        assert!(store.get(&changed).is_none());
    }

    #[test]
    fn keys_that_do_not_fit_are_refused() {
        let verifier = ScramVerifier::from_password("pw", b"salt", 2);
        let other = ScramVerifier::from_password("other", b"salt", 2);
        let store = ClientKeys::new();
        assert!(!store.learn(&verifier, [7; 32]));
        let key = app_logs_in(&other, "other").unwrap();
        assert!(!store.learn(&verifier, key));
        assert!(store.is_empty());
        // A wrong password never yields a key at all.
        assert!(matches!(
            app_logs_in(&verifier, "wrong"),
            Err(AuthError::PasswordMismatch)
        ));
    }

    #[test]
    fn stays_bounded_and_hides_keys() {
        let store = ClientKeys::with_capacity(2);
        for i in 0..5u8 {
            let salted = [i; 32];
            let ck = keys::client_key(&salted);
            let v = ScramVerifier {
                iterations: 1,
                salt: vec![i],
                stored_key: keys::stored_key(&ck),
                server_key: keys::server_key(&salted),
            };
            assert!(store.learn(&v, ck));
            assert!(store.len() <= 2);
            assert_eq!(store.get(&v), Some(ck));
        }
        assert_eq!(format!("{store:?}"), "ClientKeys { len: 2, .. }");
        assert!(!ClientKeys::with_capacity(0).learn(
            &ScramVerifier::from_password("pw", b"s", 1),
            keys::client_key(&salted_password("pw", b"s", 1))
        ));
    }
}
