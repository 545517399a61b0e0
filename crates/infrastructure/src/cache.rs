//! The cache of successful verifications: the hot path's only shared state.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use keymint_application::{VerificationCache, VerifiedKey};
use keymint_domain::{KeyId, PresentedKey};
use rand_core::{OsRng, RngCore};

/// Successful verifications, keyed by a keyed BLAKE3 digest of the presented key.
///
/// The digest key is drawn at start-up and never leaves the process, so the cache
/// holds nothing that would let anyone test guesses offline, and the plain key
/// is never kept beyond the request (or its background refresh). Entries live
/// at most `ttl` (the bound on how stale a verification in another process can
/// be) and the cache holds at most `capacity` of them: the capacity is split
/// exactly across the shards. Once an entry has been trusted for three
/// quarters of its TTL, the next hit is asked to read the key again in the
/// background (once per entry), so a key in steady use is renewed before it
/// lapses instead of costing a request a storage read (at the price of reading
/// it every three quarters of a TTL instead of every TTL).
///
/// Sharded maps behind short mutexes: a hit is one digest, one lock and one
/// lookup, and an entry costs a couple of hundred bytes (a general-purpose cache
/// with frequency sketches and operation logs cost several times that here).
/// Beside the shards, an index from key id to its digests lets a revocation
/// evict exactly that key's entries (one or two: a rotation's old and new
/// private keys) instead of scanning the cache.
pub struct ShardedVerificationCache {
    digest_key: [u8; 32],
    shards: Box<[Mutex<Shard>]>,
    /// Lock order: `by_key` before any shard. Only writers take it (a put follows
    /// a storage read and a hash comparison, so it is rare next to hits), never a hit.
    by_key: Mutex<HashMap<KeyId, Vec<Digest>>>,
    ttl: Duration,
    capacity: usize,
    counts: Counts,
    /// Evictions by key or of everything, changed only under `by_key`.
    evictions: AtomicU64,
}

/// Plain atomics, read by metrics at scrape time: a hit pays one relaxed add.
#[derive(Default)]
struct Counts {
    hits: AtomicU64,
    misses: AtomicU64,
    expired: AtomicU64,
    crowded_out: AtomicU64,
    invalidated: AtomicU64,
}

/// What the cache has done since it started, and what it holds now.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Lookups answered from the cache.
    pub hits: u64,
    /// Lookups the cache could not answer (absent or lapsed).
    pub misses: u64,
    /// Entries dropped because their TTL had passed.
    pub expired: u64,
    /// Live entries dropped to make room for a new one.
    pub crowded_out: u64,
    /// Entries dropped because their key changed (revoked, rotated, updated,
    /// deleted, here or in another process).
    pub invalidated: u64,
    /// Entries held now (lapsed ones included until swept).
    pub entries: u64,
    /// The most entries it holds.
    pub capacity: u64,
}

type Digest = [u8; 32];

struct Shard {
    entries: HashMap<Digest, Cached>,
    capacity: usize,
}

struct Cached {
    verified: VerifiedKey,
    stored: Instant,
    /// Whether a caller was told to refresh this entry.
    refresh_claimed: bool,
}

/// The most shards; a smaller capacity gets one shard per entry.
const MAX_SHARDS: usize = 64;

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock leaves a map that is still consistent.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

fn unindex(index: &mut HashMap<KeyId, Vec<Digest>>, id: KeyId, digest: &Digest) {
    if let Some(digests) = index.get_mut(&id) {
        digests.retain(|d| d != digest);
        if digests.is_empty() {
            index.remove(&id);
        }
    }
}

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
        let count = capacity.min(MAX_SHARDS);
        // The first `capacity % count` shards hold one more, so the shards' sizes
        // add up to the capacity exactly.
        let shards = (0..count)
            .map(|i| {
                Mutex::new(Shard {
                    entries: HashMap::new(),
                    capacity: capacity / count + usize::from(i < capacity % count),
                })
            })
            .collect();
        Self {
            digest_key,
            shards,
            by_key: Mutex::new(HashMap::new()),
            ttl,
            capacity,
            counts: Counts::default(),
            evictions: AtomicU64::new(0),
        }
    }

    /// Counts since start-up, and the current size.
    pub fn stats(&self) -> CacheStats {
        let count = |n: &AtomicU64| n.load(Relaxed);
        CacheStats {
            hits: count(&self.counts.hits),
            misses: count(&self.counts.misses),
            expired: count(&self.counts.expired),
            crowded_out: count(&self.counts.crowded_out),
            invalidated: count(&self.counts.invalidated),
            entries: u64::try_from(self.len()).unwrap_or(u64::MAX),
            capacity: u64::try_from(self.capacity).unwrap_or(u64::MAX),
        }
    }

    fn digest(&self, presented: &PresentedKey) -> Digest {
        *blake3::keyed_hash(&self.digest_key, presented.expose_secret().as_bytes()).as_bytes()
    }

    /// The digest's shard, or `None` for a cache of capacity 0.
    fn shard(&self, digest: &Digest) -> Option<MutexGuard<'_, Shard>> {
        // The digest is uniformly distributed already: its first bytes pick a shard.
        let [a, b, c, d, e, f, g, h, ..] = *digest;
        let n = u64::from_le_bytes([a, b, c, d, e, f, g, h]);
        let count = u64::try_from(self.shards.len()).ok().filter(|&count| count > 0)?;
        let index = usize::try_from(n % count).ok()?;
        self.shards.get(index).map(lock)
    }

    /// How many verifications are cached (expired ones included until swept).
    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| lock(s).entries.len()).sum()
    }

    /// Whether nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Drops `digest`'s entry if it is still the lapsed one found by `get`, and
    /// its index record with it.
    fn forget_lapsed(&self, id: KeyId, digest: &Digest) {
        let mut index = lock(&self.by_key);
        let Some(mut shard) = self.shard(digest) else { return };
        let lapsed = match shard.entries.get(digest) {
            Some(cached) => cached.stored.elapsed() >= self.ttl,
            None => true,
        };
        if lapsed && shard.entries.remove(digest).is_some() {
            self.counts.expired.fetch_add(1, Relaxed);
            unindex(&mut index, id, digest);
        }
    }
}

impl ShardedVerificationCache {
    /// The live entry for `presented`, and whether the caller is the one to
    /// refresh it (only when `claim`).
    fn lookup(&self, presented: &PresentedKey, claim: bool, now: Instant) -> Option<(VerifiedKey, bool)> {
        let digest = self.digest(presented);
        let miss = || {
            self.counts.misses.fetch_add(1, Relaxed);
            None
        };
        let Some(mut shard) = self.shard(&digest) else {
            return miss();
        };
        let Some(cached) = shard.entries.get_mut(&digest) else {
            drop(shard);
            return miss();
        };
        let age = now.saturating_duration_since(cached.stored);
        if age < self.ttl {
            self.counts.hits.fetch_add(1, Relaxed);
            let refresh = claim && !cached.refresh_claimed && age >= self.ttl / 4 * 3;
            if refresh {
                cached.refresh_claimed = true;
            }
            return Some((cached.verified.clone(), refresh));
        }
        self.counts.misses.fetch_add(1, Relaxed);
        let id = cached.verified.key_id;
        // Taking the index lock while holding a shard would invert the lock order.
        drop(shard);
        self.forget_lapsed(id, &digest);
        None
    }

    /// Stores an entry; with `evictions`, only if no eviction happened since
    /// that count was read (checked under the index lock evictions take).
    fn insert(&self, presented: &PresentedKey, verified: VerifiedKey, evictions: Option<u64>) -> bool {
        let digest = self.digest(presented);
        let mut index = lock(&self.by_key);
        if evictions.is_some_and(|seen| seen != self.evictions.load(Relaxed)) {
            return false;
        }
        let Some(mut shard) = self.shard(&digest) else {
            return false;
        };
        if shard.entries.len() >= shard.capacity && !shard.entries.contains_key(&digest) {
            let ttl = self.ttl;
            let before = shard.entries.len();
            shard.entries.retain(|digest, cached| {
                let live = cached.stored.elapsed() < ttl;
                if !live {
                    unindex(&mut index, cached.verified.key_id, digest);
                }
                live
            });
            let swept = before - shard.entries.len();
            self.counts.expired.fetch_add(swept as u64, Relaxed);
            if shard.entries.len() >= shard.capacity {
                // Full of live entries: drop an arbitrary one. It only costs that
                // key one more storage read.
                if let Some(victim) = shard.entries.keys().next().copied() {
                    if let Some(dropped) = shard.entries.remove(&victim) {
                        self.counts.crowded_out.fetch_add(1, Relaxed);
                        unindex(&mut index, dropped.verified.key_id, &victim);
                    }
                }
            }
        }
        let id = verified.key_id;
        let replaced = shard.entries.insert(
            digest,
            Cached {
                verified,
                stored: Instant::now(),
                refresh_claimed: false,
            },
        );
        if let Some(replaced) = replaced.filter(|r| r.verified.key_id != id) {
            unindex(&mut index, replaced.verified.key_id, &digest);
        }
        let digests = index.entry(id).or_default();
        if !digests.contains(&digest) {
            digests.push(digest);
        }
        true
    }
}

impl VerificationCache for ShardedVerificationCache {
    fn get(&self, presented: &PresentedKey) -> Option<VerifiedKey> {
        self.lookup(presented, false, Instant::now())
            .map(|(verified, _)| verified)
    }

    fn get_or_refresh(&self, presented: &PresentedKey) -> Option<(VerifiedKey, bool)> {
        self.lookup(presented, true, Instant::now())
    }

    fn put(&self, presented: &PresentedKey, verified: VerifiedKey) {
        self.insert(presented, verified, None);
    }

    fn evictions(&self) -> u64 {
        self.evictions.load(Relaxed)
    }

    fn put_unless_evicted(&self, presented: &PresentedKey, verified: VerifiedKey, evictions: u64) -> bool {
        self.insert(presented, verified, Some(evictions))
    }

    fn evict(&self, presented: &PresentedKey) {
        let digest = self.digest(presented);
        let mut index = lock(&self.by_key);
        self.evictions.fetch_add(1, Relaxed);
        let Some(mut shard) = self.shard(&digest) else { return };
        if let Some(dropped) = shard.entries.remove(&digest) {
            self.counts.invalidated.fetch_add(1, Relaxed);
            unindex(&mut index, dropped.verified.key_id, &digest);
        }
    }

    fn evict_key(&self, id: KeyId) {
        let mut index = lock(&self.by_key);
        self.evictions.fetch_add(1, Relaxed);
        for digest in index.remove(&id).unwrap_or_default() {
            if let Some(mut shard) = self.shard(&digest) {
                if shard.entries.get(&digest).is_some_and(|c| c.verified.key_id == id) {
                    shard.entries.remove(&digest);
                    self.counts.invalidated.fetch_add(1, Relaxed);
                }
            }
        }
    }

    fn evict_all(&self) {
        let mut index = lock(&self.by_key);
        self.evictions.fetch_add(1, Relaxed);
        index.clear();
        for shard in self.shards.iter() {
            let mut shard = lock(shard);
            self.counts.invalidated.fetch_add(shard.entries.len() as u64, Relaxed);
            shard.entries.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use keymint_domain::{Environment, KeyMaterial, LookupId, OrgId};
    use uuid::Uuid;

    fn verified(id: u128) -> VerifiedKey {
        VerifiedKey {
            key_id: KeyId::from_uuid(Uuid::from_u128(id)),
            org_id: OrgId::from_uuid(Uuid::nil()),
            lookup_id: LookupId::parse("0123456789abcdef").unwrap(),
            environment: Environment::Live,
            name: "k".into(),
            expires_at: None,
            valid_until: None,
            permissions: Default::default(),
            owner_id: None,
            meta: None,
            ratelimits: Default::default(),
            has_credits: false,
            usage: None,
        }
    }

    /// A presented key, as the verifier hands it to the cache.
    struct Presented(PresentedKey);

    impl Presented {
        fn private_key(&self) -> &PresentedKey {
            &self.0
        }
    }

    fn new_key() -> Presented {
        let (_, private_key) = KeyMaterial::generate(Environment::Live, &mut OsRng).into_parts();
        Presented(PresentedKey::Issued(private_key))
    }

    /// Every indexed digest has its entry, and every entry is indexed once.
    fn assert_index_matches(cache: &ShardedVerificationCache) {
        let indexed: usize = lock(&cache.by_key).values().map(Vec::len).sum();
        assert_eq!(indexed, cache.len(), "the index and the entries agree");
    }

    #[test]
    fn the_cache_finds_by_presented_key_and_evicts_by_key_id_at_once() {
        // Room for both in any shard: at 100, two keys in one of the shards
        // holding one would crowd each other out.
        let cache = ShardedVerificationCache::new(10_000, Duration::from_secs(30));
        let (a, b) = (new_key(), new_key());
        cache.put(a.private_key(), verified(1));
        cache.put(b.private_key(), verified(2));
        assert_eq!(cache.get(a.private_key()), Some(verified(1)));
        cache.evict_key(KeyId::from_uuid(Uuid::from_u128(1)));
        assert_eq!(cache.get(a.private_key()), None);
        assert_eq!(cache.get(b.private_key()), Some(verified(2)));
        assert_index_matches(&cache);
    }

    #[test]
    fn evicting_a_key_drops_both_of_its_private_keys_and_nothing_else() {
        let cache = ShardedVerificationCache::new(1_000, Duration::from_secs(30));
        let (old, new) = (new_key(), new_key());
        cache.put(old.private_key(), verified(1));
        cache.put(new.private_key(), verified(1));
        let others: Vec<Presented> = (0..200).map(|_| new_key()).collect();
        for (i, other) in (2..).zip(&others) {
            cache.put(other.private_key(), verified(i));
        }
        cache.evict_key(KeyId::from_uuid(Uuid::from_u128(1)));
        assert_eq!(cache.get(old.private_key()), None);
        assert_eq!(cache.get(new.private_key()), None);
        assert_eq!(cache.len(), 200);
        assert!(others.iter().all(|k| cache.get(k.private_key()).is_some()));
        assert_index_matches(&cache);
    }

    #[test]
    fn one_presented_key_can_be_forgotten_alone() {
        let cache = ShardedVerificationCache::new(10_000, Duration::from_secs(30));
        let (old, new) = (new_key(), new_key());
        cache.put(old.private_key(), verified(1));
        cache.put(new.private_key(), verified(1));
        cache.evict(old.private_key());
        assert_eq!(cache.get(old.private_key()), None);
        assert_eq!(
            cache.get(new.private_key()),
            Some(verified(1)),
            "the same key's other private key stays"
        );
        assert_index_matches(&cache);
    }

    #[test]
    fn cached_entries_expire_after_the_ttl() {
        let cache = ShardedVerificationCache::new(10_000, Duration::from_millis(50));
        let a = new_key();
        cache.put(a.private_key(), verified(1));
        std::thread::sleep(Duration::from_millis(80));
        assert_eq!(cache.get(a.private_key()), None);
        assert!(cache.is_empty());
        assert_index_matches(&cache);
    }

    #[test]
    fn an_entry_past_three_quarters_of_its_ttl_asks_one_caller_to_refresh_it() {
        let cache = ShardedVerificationCache::new(10_000, Duration::from_secs(40));
        let key = new_key();
        let at = |seconds| Instant::now() + Duration::from_secs(seconds);
        cache.put(key.private_key(), verified(1));
        assert_eq!(cache.get_or_refresh(key.private_key()), Some((verified(1), false)));
        assert_eq!(
            cache.lookup(key.private_key(), true, at(20)),
            Some((verified(1), false))
        );
        // A plain get never claims.
        assert_eq!(
            cache.lookup(key.private_key(), false, at(31)),
            Some((verified(1), false))
        );
        assert_eq!(cache.lookup(key.private_key(), true, at(31)), Some((verified(1), true)));
        assert_eq!(
            cache.lookup(key.private_key(), true, at(32)),
            Some((verified(1), false)),
            "once per entry"
        );
        // The refresh's put starts the entry's life again.
        cache.put(key.private_key(), verified(1));
        assert_eq!(
            cache.lookup(key.private_key(), true, at(20)),
            Some((verified(1), false))
        );
    }

    #[test]
    fn a_verification_read_before_an_eviction_is_not_cached() {
        let cache = ShardedVerificationCache::new(10_000, Duration::from_secs(30));
        let (key, other) = (new_key(), new_key());
        let before = cache.evictions();
        // Meanwhile this process revoked some key.
        cache.evict_key(KeyId::from_uuid(Uuid::from_u128(9)));
        assert!(!cache.put_unless_evicted(key.private_key(), verified(1), before));
        assert_eq!(cache.get(key.private_key()), None);
        let now = cache.evictions();
        assert!(cache.put_unless_evicted(other.private_key(), verified(2), now));
        assert_eq!(cache.get(other.private_key()), Some(verified(2)));
        assert_index_matches(&cache);
    }

    #[test]
    fn stats_count_hits_misses_and_each_kind_of_eviction() {
        let cache = ShardedVerificationCache::new(1, Duration::from_millis(50));
        let (a, b) = (new_key(), new_key());
        assert_eq!(cache.get(a.private_key()), None);
        cache.put(a.private_key(), verified(1));
        assert!(cache.get(a.private_key()).is_some());
        cache.put(b.private_key(), verified(2)); // crowds `a` out of the one place
        cache.evict_key(KeyId::from_uuid(Uuid::from_u128(2)));
        cache.put(a.private_key(), verified(1));
        std::thread::sleep(Duration::from_millis(80));
        assert_eq!(cache.get(a.private_key()), None, "lapsed");
        assert_eq!(
            cache.stats(),
            CacheStats {
                hits: 1,
                misses: 2,
                expired: 1,
                crowded_out: 1,
                invalidated: 1,
                entries: 0,
                capacity: 1,
            }
        );
        cache.put(a.private_key(), verified(1));
        cache.evict_all();
        assert_eq!(cache.stats().invalidated, 2, "clearing counts what it dropped");
    }

    #[test]
    fn the_cache_never_holds_more_than_its_capacity() {
        // 100 and 1 are not multiples of the shard count; 128 is.
        for capacity in [100_u64, 1, 128, 65] {
            let cache = ShardedVerificationCache::new(capacity, Duration::from_secs(30));
            for i in 0..5_000 {
                cache.put(new_key().private_key(), verified(i));
                assert!(cache.len() as u64 <= capacity, "{capacity}: {}", cache.len());
            }
            assert_eq!(cache.len() as u64, capacity, "it fills up to its capacity");
            assert_index_matches(&cache);
        }
        let none = ShardedVerificationCache::new(0, Duration::from_secs(30));
        let key = new_key();
        none.put(key.private_key(), verified(1));
        assert_eq!(none.get(key.private_key()), None);
        none.evict_key(KeyId::from_uuid(Uuid::from_u128(1)));
        assert!(none.is_empty());
    }

    #[test]
    fn a_cache_of_one_keeps_the_latest_verification() {
        let cache = ShardedVerificationCache::new(1, Duration::from_secs(30));
        let (a, b) = (new_key(), new_key());
        cache.put(a.private_key(), verified(1));
        cache.put(b.private_key(), verified(2));
        assert_eq!(cache.get(a.private_key()), None);
        assert_eq!(cache.get(b.private_key()), Some(verified(2)));
        assert_eq!(cache.len(), 1);
        assert_index_matches(&cache);
    }

    #[test]
    fn two_processes_digest_the_same_key_differently() {
        let key = new_key();
        let (one, two) = (
            ShardedVerificationCache::new(1, Duration::from_secs(1)),
            ShardedVerificationCache::new(1, Duration::from_secs(1)),
        );
        assert_ne!(one.digest(key.private_key()), two.digest(key.private_key()));
        assert_eq!(one.digest(key.private_key()), one.digest(key.private_key()));
    }
}
