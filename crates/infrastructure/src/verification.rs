//! The hot path's in-process helpers: the cache of successful verifications, the
//! failure limiter, and the coalescing `last_used_at` tracker.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use keymint_application::{ApiKeyRepository, FailureLimiter, UsageTracker, VerificationCache, VerifiedKey};
use keymint_domain::{KeyId, LookupId, PrivateKey};
use rand_core::{OsRng, RngCore};

/// Successful verifications, keyed by a keyed BLAKE3 digest of the presented key.
///
/// The digest key is drawn at start-up and never leaves the process, so the cache
/// holds nothing that would let anyone test guesses offline, and the plain key
/// is never kept beyond the request. Entries live at most `ttl` (the bound on how
/// stale a verification in another process can be) and the cache holds at most
/// `capacity` of them.
///
/// Sharded maps behind short mutexes: a hit is one digest, one lock and one
/// lookup, and an entry costs a couple of hundred bytes (a general-purpose cache
/// with frequency sketches and operation logs cost several times that here).
pub struct ShardedVerificationCache {
    digest_key: [u8; 32],
    shards: Box<[Mutex<Shard>]>,
    per_shard: usize,
    ttl: Duration,
}

type Shard = HashMap<[u8; 32], Cached>;

struct Cached {
    verified: VerifiedKey,
    stored: Instant,
}

const SHARDS: usize = 64;

impl std::fmt::Debug for ShardedVerificationCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShardedVerificationCache")
            .field("len", &self.len())
            .finish_non_exhaustive()
    }
}

impl ShardedVerificationCache {
    /// A cache of at most `capacity` verifications, each trusted for `ttl`.
    pub fn new(capacity: u64, ttl: Duration) -> Self {
        let mut digest_key = [0u8; 32];
        OsRng.fill_bytes(&mut digest_key);
        let capacity = usize::try_from(capacity).unwrap_or(usize::MAX);
        Self {
            digest_key,
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            per_shard: capacity.div_ceil(SHARDS),
            ttl,
        }
    }

    fn digest(&self, presented: &PrivateKey) -> [u8; 32] {
        *blake3::keyed_hash(&self.digest_key, presented.expose_secret().as_bytes()).as_bytes()
    }

    fn shard(&self, digest: &[u8; 32]) -> std::sync::MutexGuard<'_, Shard> {
        // The digest is uniformly distributed already: its first byte picks a shard.
        self.shards[usize::from(digest[0]) % SHARDS]
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// How many verifications are cached (expired ones included until swept).
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().unwrap_or_else(PoisonError::into_inner).len())
            .sum()
    }

    /// Whether nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl VerificationCache for ShardedVerificationCache {
    fn get(&self, presented: &PrivateKey) -> Option<VerifiedKey> {
        let digest = self.digest(presented);
        let mut shard = self.shard(&digest);
        match shard.get(&digest) {
            Some(cached) if cached.stored.elapsed() < self.ttl => Some(cached.verified.clone()),
            Some(_) => {
                shard.remove(&digest);
                None
            }
            None => None,
        }
    }

    fn put(&self, presented: &PrivateKey, verified: VerifiedKey) {
        if self.per_shard == 0 {
            return;
        }
        let digest = self.digest(presented);
        let mut shard = self.shard(&digest);
        if shard.len() >= self.per_shard && !shard.contains_key(&digest) {
            shard.retain(|_, cached| cached.stored.elapsed() < self.ttl);
            if shard.len() >= self.per_shard {
                // Full of live entries: drop an arbitrary one. It only costs that
                // key one more argon2 check.
                if let Some(victim) = shard.keys().next().copied() {
                    shard.remove(&victim);
                }
            }
        }
        shard.insert(
            digest,
            Cached {
                verified,
                stored: Instant::now(),
            },
        );
    }

    fn evict(&self, presented: &PrivateKey) {
        let digest = self.digest(presented);
        self.shard(&digest).remove(&digest);
    }

    fn evict_key(&self, id: KeyId) {
        for shard in self.shards.iter() {
            shard
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .retain(|_, cached| cached.verified.key_id != id);
        }
    }

    fn evict_all(&self) {
        for shard in self.shards.iter() {
            shard.lock().unwrap_or_else(PoisonError::into_inner).clear();
        }
    }
}

/// Failure budgets per lookup id and per client address, in fixed windows.
#[derive(Debug)]
pub struct WindowFailureLimiter {
    per_key: u32,
    per_client: u32,
    window: chrono::Duration,
    keys: Mutex<HashMap<String, Window>>,
    clients: Mutex<HashMap<IpAddr, Window>>,
}

#[derive(Clone, Copy, Debug)]
struct Window {
    started: DateTime<Utc>,
    failures: u32,
}

/// Beyond this many tracked keys or clients, windows that have ended are swept.
const SWEEP_ABOVE: usize = 10_000;

impl WindowFailureLimiter {
    /// At most `per_key` failures per lookup id and `per_client` per address in
    /// each `window`; 0 disables that limit.
    pub fn new(per_key: u32, per_client: u32, window: Duration) -> Self {
        Self {
            per_key,
            per_client,
            window: chrono::Duration::from_std(window).unwrap_or(chrono::Duration::MAX),
            keys: Mutex::new(HashMap::new()),
            clients: Mutex::new(HashMap::new()),
        }
    }

    fn over<K, Q>(&self, map: &Mutex<HashMap<K, Window>>, key: &Q, limit: u32, now: DateTime<Utc>) -> bool
    where
        K: std::hash::Hash + Eq + std::borrow::Borrow<Q>,
        Q: std::hash::Hash + Eq + ?Sized,
    {
        if limit == 0 {
            return false;
        }
        let map = map.lock().unwrap_or_else(PoisonError::into_inner);
        map.get(key)
            .is_some_and(|w| now - w.started < self.window && w.failures >= limit)
    }

    fn count<K: std::hash::Hash + Eq>(&self, map: &Mutex<HashMap<K, Window>>, key: K, limit: u32, now: DateTime<Utc>) {
        if limit == 0 {
            return;
        }
        let mut map = map.lock().unwrap_or_else(PoisonError::into_inner);
        if map.len() > SWEEP_ABOVE {
            map.retain(|_, w| now - w.started < self.window);
        }
        let window = map.entry(key).or_insert(Window {
            started: now,
            failures: 0,
        });
        if now - window.started >= self.window {
            *window = Window {
                started: now,
                failures: 0,
            };
        }
        window.failures = window.failures.saturating_add(1);
    }
}

impl FailureLimiter for WindowFailureLimiter {
    fn is_limited(&self, lookup_id: &LookupId, client: Option<IpAddr>, now: DateTime<Utc>) -> bool {
        // Borrowed lookups: checking a budget allocates nothing.
        self.over(&self.keys, lookup_id.as_str(), self.per_key, now)
            || client.is_some_and(|ip| self.over(&self.clients, &ip, self.per_client, now))
    }

    fn record_failure(&self, lookup_id: &LookupId, client: Option<IpAddr>, now: DateTime<Utc>) {
        self.count(&self.keys, lookup_id.as_str().to_owned(), self.per_key, now);
        if let Some(ip) = client {
            self.count(&self.clients, ip, self.per_client, now);
        }
    }
}

/// Records `last_used_at` without a database write per verification: uses are
/// collected in memory and written every `interval` (at most one write per key
/// per interval), and on [`CoalescingUsageTracker::flush`] at shutdown.
pub struct CoalescingUsageTracker {
    pending: Mutex<HashMap<KeyId, DateTime<Utc>>>,
    repository: Arc<dyn ApiKeyRepository>,
    /// Serialises flushes so a shutdown flush waits for a periodic one in flight.
    flushing: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for CoalescingUsageTracker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CoalescingUsageTracker").finish_non_exhaustive()
    }
}

impl CoalescingUsageTracker {
    /// A tracker writing through `repository`.
    pub fn new(repository: Arc<dyn ApiKeyRepository>) -> Self {
        Self {
            pending: Mutex::new(HashMap::new()),
            repository,
            flushing: tokio::sync::Mutex::new(()),
        }
    }

    /// Writes every pending use now. On failure the uses are put back (unless a
    /// newer one arrived meanwhile) to be written by the next flush.
    pub async fn flush(&self) -> anyhow::Result<usize> {
        let _flushing = self.flushing.lock().await;
        let batch: Vec<(KeyId, DateTime<Utc>)> =
            std::mem::take(&mut *self.pending.lock().unwrap_or_else(PoisonError::into_inner))
                .into_iter()
                .collect();
        if batch.is_empty() {
            return Ok(0);
        }
        if let Err(err) = self.repository.record_usage(&batch).await {
            let mut pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
            for (id, at) in batch {
                let entry = pending.entry(id).or_insert(at);
                *entry = (*entry).max(at);
            }
            return Err(err.into());
        }
        Ok(batch.len())
    }

    /// Flushes every `interval` until the tracker is dropped.
    pub fn spawn_flusher(self: &Arc<Self>, interval: Duration) -> tokio::task::JoinHandle<()> {
        let weak: Weak<Self> = Arc::downgrade(self);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(interval).await;
                let Some(tracker) = weak.upgrade() else { break };
                if let Err(err) = tracker.flush().await {
                    tracing::warn!(error = format!("{err:#}"), "recording key usage failed; will retry");
                }
            }
        })
    }
}

impl UsageTracker for CoalescingUsageTracker {
    fn record(&self, id: KeyId, at: DateTime<Utc>) {
        let mut pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
        let entry = pending.entry(id).or_insert(at);
        *entry = (*entry).max(at);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::InMemoryApiKeyRepository;
    use chrono::TimeZone;
    use keymint_domain::{Environment, KeyMaterial, OrgId};
    use uuid::Uuid;

    fn verified(id: u128) -> VerifiedKey {
        VerifiedKey {
            key_id: KeyId::from_uuid(Uuid::from_u128(id)),
            org_id: OrgId::from_uuid(Uuid::nil()),
            environment: Environment::Live,
            name: "k".into(),
            expires_at: None,
            valid_until: None,
        }
    }

    #[test]
    fn the_cache_finds_by_presented_key_and_evicts_by_key_id_at_once() {
        let cache = ShardedVerificationCache::new(100, Duration::from_secs(30));
        let (a, b) = (
            KeyMaterial::generate(Environment::Live, &mut OsRng),
            KeyMaterial::generate(Environment::Live, &mut OsRng),
        );
        cache.put(a.private_key(), verified(1));
        cache.put(b.private_key(), verified(2));
        assert_eq!(cache.get(a.private_key()), Some(verified(1)));
        cache.evict_key(KeyId::from_uuid(Uuid::from_u128(1)));
        assert_eq!(cache.get(a.private_key()), None);
        assert_eq!(cache.get(b.private_key()), Some(verified(2)));
    }

    #[test]
    fn one_presented_key_can_be_forgotten_alone() {
        let cache = ShardedVerificationCache::new(100, Duration::from_secs(30));
        let (old, new) = (
            KeyMaterial::generate(Environment::Live, &mut OsRng),
            KeyMaterial::generate(Environment::Live, &mut OsRng),
        );
        cache.put(old.private_key(), verified(1));
        cache.put(new.private_key(), verified(1));
        cache.evict(old.private_key());
        assert_eq!(cache.get(old.private_key()), None);
        assert_eq!(
            cache.get(new.private_key()),
            Some(verified(1)),
            "the same key's other private key stays"
        );
    }

    #[test]
    fn cached_entries_expire_after_the_ttl() {
        let cache = ShardedVerificationCache::new(100, Duration::from_millis(50));
        let a = KeyMaterial::generate(Environment::Live, &mut OsRng);
        cache.put(a.private_key(), verified(1));
        std::thread::sleep(Duration::from_millis(80));
        assert_eq!(cache.get(a.private_key()), None);
    }

    #[test]
    fn the_cache_never_holds_more_than_its_capacity() {
        let cache = ShardedVerificationCache::new(128, Duration::from_secs(30));
        for i in 0..1_000 {
            cache.put(
                KeyMaterial::generate(Environment::Live, &mut OsRng).private_key(),
                verified(i),
            );
        }
        assert!(cache.len() <= 128, "{}", cache.len());
        let none = ShardedVerificationCache::new(0, Duration::from_secs(30));
        let key = KeyMaterial::generate(Environment::Live, &mut OsRng);
        none.put(key.private_key(), verified(1));
        assert_eq!(none.get(key.private_key()), None);
    }

    #[test]
    fn two_processes_digest_the_same_key_differently() {
        let key = KeyMaterial::generate(Environment::Live, &mut OsRng);
        let (one, two) = (
            ShardedVerificationCache::new(1, Duration::from_secs(1)),
            ShardedVerificationCache::new(1, Duration::from_secs(1)),
        );
        assert_ne!(one.digest(key.private_key()), two.digest(key.private_key()));
        assert_eq!(one.digest(key.private_key()), one.digest(key.private_key()));
    }

    #[test]
    fn failures_are_limited_per_key_and_per_client_within_a_window() {
        let limiter = WindowFailureLimiter::new(3, 5, Duration::from_secs(60));
        let t0 = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        let key = KeyMaterial::generate(Environment::Live, &mut OsRng).lookup_id();
        let other = KeyMaterial::generate(Environment::Live, &mut OsRng).lookup_id();
        let ip: IpAddr = "198.51.100.7".parse().unwrap();
        for _ in 0..3 {
            assert!(!limiter.is_limited(&key, None, t0));
            limiter.record_failure(&key, Some(ip), t0);
        }
        assert!(limiter.is_limited(&key, None, t0), "the key's budget is spent");
        assert!(!limiter.is_limited(&other, None, t0), "other keys are unaffected");
        limiter.record_failure(&other, Some(ip), t0);
        limiter.record_failure(&other, Some(ip), t0);
        assert!(limiter.is_limited(&other, Some(ip), t0), "the client's budget is spent");
        assert!(!limiter.is_limited(&other, Some("198.51.100.8".parse().unwrap()), t0));
        let later = t0 + chrono::Duration::seconds(60);
        assert!(!limiter.is_limited(&key, Some(ip), later), "a new window starts afresh");
    }

    #[tokio::test]
    async fn usage_is_coalesced_to_the_latest_time_per_key_and_flushed() {
        let repository = Arc::new(InMemoryApiKeyRepository::new());
        let tracker = CoalescingUsageTracker::new(repository);
        let id = KeyId::from_uuid(Uuid::from_u128(1));
        let t0 = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        for s in [3, 1, 2] {
            tracker.record(id, t0 + chrono::Duration::seconds(s));
        }
        assert_eq!(
            tracker.pending.lock().unwrap().get(&id),
            Some(&(t0 + chrono::Duration::seconds(3)))
        );
        assert_eq!(tracker.flush().await.unwrap(), 1, "one write for three uses");
        assert_eq!(tracker.flush().await.unwrap(), 0);
    }
}
