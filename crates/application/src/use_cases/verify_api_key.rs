use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, PoisonError};

use chrono::{DateTime, Utc};
use keymint_domain::{
    ApiKey, Demand, KeyFormat, KeyId, LookupId, OrgId, PermissionQuery, PresentedKey, PrivateKey, SecretHash,
    Settlement,
};
use tokio::sync::{watch, Semaphore};
use zeroize::Zeroizing;

use crate::{
    Clock, DigestFilter, FailureLimiter, KeyLookup, Meter, NoDigestFilter, RepositoryError, SecretHasher, UsageTracker,
    VerificationCache, VerifiedKey,
};

/// The answer to "is this key good?".
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verification {
    /// The key is valid.
    Valid(VerifiedKey),
    /// Unknown, malformed, failing its checksum, wrong secret, deleted, or a
    /// rotated-out key past its grace period: all alike, so nothing is learned.
    NotFound,
    /// The right key, revoked.
    Revoked,
    /// The right key, expired.
    Expired,
    /// Too many failed attempts for this key id or client; try later.
    RateLimited,
    /// The right key, valid, without the permissions the verification asked
    /// for. The key is named: whoever sent it holds its secret.
    InsufficientPermissions(VerifiedKey),
    /// The right key, allowed, but one of its own rate limits has too little
    /// left; [`VerifiedKey::usage`] says which and when it resets.
    KeyRateLimited(VerifiedKey),
    /// The right key, allowed, without the credits the verification costs.
    UsageExceeded(VerifiedKey),
}

impl Verification {
    /// The stable code clients switch on.
    pub fn code(&self) -> &'static str {
        match self {
            Verification::Valid(_) => "VALID",
            Verification::NotFound => "NOT_FOUND",
            Verification::Revoked => "REVOKED",
            Verification::Expired => "EXPIRED",
            Verification::RateLimited => "RATE_LIMITED",
            Verification::InsufficientPermissions(_) => "INSUFFICIENT_PERMISSIONS",
            Verification::KeyRateLimited(_) => "RATE_LIMITED",
            Verification::UsageExceeded(_) => "USAGE_EXCEEDED",
        }
    }
}

/// Whose private key a presented key is, for acting on a report about it.
#[derive(Clone, Debug)]
pub enum Identity {
    /// The stored key the private key with `lookup_id` belongs to: the secret
    /// matched. It may be revoked or expired.
    Holder {
        /// The key.
        key_id: KeyId,
        /// Its organisation.
        org_id: OrgId,
        /// Which of its private keys was presented (the current or a rotated-out
        /// one in its grace period).
        lookup_id: LookupId,
    },
    /// Not a private key of any stored key (same cases as
    /// [`Verification::NotFound`]).
    Unknown,
    /// Too many failed attempts for this key id or client.
    RateLimited,
}

/// Whether identifying a key spends the failure budgets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Budget {
    /// Anyone may send keys: the budgets of this client (and of the key id)
    /// apply as they do to verifications.
    Client(Option<IpAddr>),
    /// The sender is authenticated otherwise (a signed scanner report).
    Exempt,
}

/// Why a verification could not be decided.
#[derive(Debug, thiserror::Error)]
pub enum VerifyApiKeyError {
    /// Storage is unreachable.
    #[error("storage is unavailable")]
    StorageUnavailable(#[source] anyhow::Error),
    /// The verification named a rate limit the key does not have.
    #[error("the key has no rate limit named '{name}'")]
    UnknownRateLimit {
        /// Its position in the request.
        index: usize,
        /// The name asked for.
        name: String,
    },
    /// Anything else.
    #[error(transparent)]
    Unexpected(anyhow::Error),
}

/// Verifies presented private keys: the hot path.
///
/// In order: recognising the key (this deployment's format and checksum, or a
/// key brought in from another system; no I/O), the cache of successful
/// verifications (no I/O), the failure limits (no I/O), one indexed read (by
/// lookup id, or by digest when the digest filter says a stored key may have
/// it), one hash comparison. Only then are revocation and expiry reported, so
/// that nobody without the secret learns a key's state. A key that verifies
/// against a hash in an older form is hashed anew (one write).
#[derive(Clone)]
pub struct VerifyApiKey {
    lookup: Arc<dyn KeyLookup>,
    hasher: Arc<dyn SecretHasher>,
    clock: Arc<dyn Clock>,
    cache: Arc<dyn VerificationCache>,
    limiter: Arc<dyn FailureLimiter>,
    usage: Arc<dyn UsageTracker>,
    meter: Arc<dyn Meter>,
    flights: Arc<Flights>,
    format: Arc<KeyFormat>,
    digests: Arc<dyn DigestFilter>,
    stats: Arc<VerifyStats>,
    refreshes: Arc<Semaphore>,
}

/// Background refreshes of cache entries at once. Each is one batched read
/// and holds a copy of a presented key until it ends; past this many, an
/// entry due for refresh is left to lapse and is read on its next request.
const MAX_REFRESHES: usize = 256;

/// What verification did beyond the cache, for metrics.
#[derive(Debug, Default)]
pub struct VerifyStats {
    rehashed: AtomicU64,
    rehash_failures: AtomicU64,
    digest_reads: AtomicU64,
    digest_filtered: AtomicU64,
    sha256_checks: AtomicU64,
    argon2_checks: AtomicU64,
    refreshed: AtomicU64,
    refresh_dropped: AtomicU64,
    refresh_failed: AtomicU64,
    refresh_skipped: AtomicU64,
    refresh_refused: AtomicU64,
}

impl VerifyStats {
    /// Stored hashes replaced by the current form after their key verified.
    pub fn rehashed(&self) -> u64 {
        self.rehashed.load(Relaxed)
    }

    /// Replacements that failed (storage); the key verified all the same and
    /// is hashed anew on a later verification.
    pub fn rehash_failures(&self) -> u64 {
        self.rehash_failures.load(Relaxed)
    }

    /// Storage reads by lookup digest.
    pub fn digest_reads(&self) -> u64 {
        self.digest_reads.load(Relaxed)
    }

    /// Presented keys answered by the digest filter alone, with no read.
    pub fn digest_filtered(&self) -> u64 {
        self.digest_filtered.load(Relaxed)
    }

    /// Background refreshes of cached verifications, by outcome: the key
    /// still verifies (entry renewed), no longer does (entry dropped: revoked,
    /// expired, deleted, past its grace period), storage failed (the entry
    /// lapses at its TTL), too many were running to start one, or a change
    /// was announced while it read (not renewed; the entry lapses).
    pub fn refreshes(&self) -> [(&'static str, u64); 5] {
        [
            ("renewed", self.refreshed.load(Relaxed)),
            ("dropped", self.refresh_dropped.load(Relaxed)),
            ("failed", self.refresh_failed.load(Relaxed)),
            ("skipped", self.refresh_skipped.load(Relaxed)),
            ("raced", self.refresh_refused.load(Relaxed)),
        ]
    }

    /// Presented keys compared with a stored hash, by the stored hash's
    /// algorithm: `(sha256, argon2)`.
    pub fn hash_checks(&self) -> (u64, u64) {
        (self.sha256_checks.load(Relaxed), self.argon2_checks.load(Relaxed))
    }
}

/// The meter of a verifier wired without one: a metered key cannot be
/// decided, so its verifications fail rather than spend nothing.
struct NoMeter;

#[async_trait::async_trait]
impl Meter for NoMeter {
    async fn charge(
        &self,
        _: keymint_domain::KeyId,
        _: Demand,
        _: DateTime<Utc>,
    ) -> Result<Option<keymint_domain::Outcome>, RepositoryError> {
        Err(RepositoryError::Unexpected(anyhow::anyhow!(
            "a metered key was verified without a meter"
        )))
    }
}

/// Verifications under way that did not find the key cached, by client and
/// presented key. A request presenting the same key from the same client while
/// one is under way waits for its verdict instead of reserving failure budget
/// and hashing again: a burst of a client's requests when its key's cache entry
/// lapses costs one argon2 and no budget, and every request in it gets the same
/// verdict. (Per client, because a verdict such as `RATE_LIMITED` is that
/// client's own.)
type Flights = Mutex<HashMap<Flight, watch::Receiver<Option<Verification>>>>;

/// A flight's key. It holds the presented key only while the verification is
/// under way, and wipes it when dropped.
struct Flight {
    client: Option<IpAddr>,
    presented: Zeroizing<String>,
}

impl Flight {
    fn new(client: Option<IpAddr>, presented: &str) -> Self {
        Self {
            client,
            presented: Zeroizing::new(presented.to_owned()),
        }
    }
}

/// Whether a request verifies (and tells the others) or waits for a verdict.
enum Role {
    Lead(watch::Sender<Option<Verification>>),
    Follow(watch::Receiver<Option<Verification>>),
}

impl PartialEq for Flight {
    fn eq(&self, other: &Self) -> bool {
        self.client == other.client && self.presented.as_str() == other.presented.as_str()
    }
}

impl Eq for Flight {}

impl Hash for Flight {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.client.hash(state);
        self.presented.as_str().hash(state);
    }
}

/// The leader's claim on a flight: dropping it (verdict sent, or the request
/// abandoned) ends the flight, so followers never wait on a flight nobody flies.
struct Leading<'a> {
    flights: &'a Flights,
    flight: Flight,
}

impl Drop for Leading<'_> {
    fn drop(&mut self) {
        self.flights
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&self.flight);
    }
}

impl std::fmt::Debug for VerifyApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifyApiKey").finish_non_exhaustive()
    }
}

impl VerifyApiKey {
    /// Wires the use case to its ports.
    pub fn new(
        lookup: Arc<dyn KeyLookup>,
        hasher: Arc<dyn SecretHasher>,
        clock: Arc<dyn Clock>,
        cache: Arc<dyn VerificationCache>,
        limiter: Arc<dyn FailureLimiter>,
        usage: Arc<dyn UsageTracker>,
    ) -> Self {
        Self {
            lookup,
            hasher,
            clock,
            cache,
            limiter,
            usage,
            meter: Arc::new(NoMeter),
            flights: Arc::default(),
            format: Arc::default(),
            digests: Arc::new(NoDigestFilter),
            stats: Arc::default(),
            refreshes: Arc::new(Semaphore::new(MAX_REFRESHES)),
        }
    }

    /// The same verifier, skipping the storage read for presented keys whose
    /// digest `digests` says no stored key has.
    pub fn with_digest_filter(mut self, digests: Arc<dyn DigestFilter>) -> Self {
        self.digests = digests;
        self
    }

    /// The same verifier, counting into `stats` (shared with whoever reports them).
    pub fn with_stats(mut self, stats: Arc<VerifyStats>) -> Self {
        self.stats = stats;
        self
    }

    /// What verification did beyond the cache.
    pub fn stats(&self) -> &Arc<VerifyStats> {
        &self.stats
    }

    /// The same verifier, recognising keys in `format` (by default, `sk_…`
    /// only). A key under any other prefix is not found, before any I/O.
    pub fn with_key_format(mut self, format: KeyFormat) -> Self {
        self.format = Arc::new(format);
        self
    }

    /// How presented keys are recognised.
    pub fn key_format(&self) -> &KeyFormat {
        &self.format
    }

    /// The same verifier, spending credits and rate limits through `meter`.
    pub fn with_meter(mut self, meter: Arc<dyn Meter>) -> Self {
        self.meter = meter;
        self
    }

    /// Verifies `presented`, as sent by `client` (for the failure limits).
    pub async fn execute(&self, presented: &str, client: Option<IpAddr>) -> Result<Verification, VerifyApiKeyError> {
        self.execute_with(presented, client, None, Demand::default()).await
    }

    /// Verifies `presented` and, once the key is known good, that its
    /// permissions satisfy `required`, then spends `demand` from its rate
    /// limits and credits. Steps, in order: format, secret, revoked/expired,
    /// permissions, rate limits, credits; a refusal at one step is decided
    /// before any later one is looked at, and a refused verification spends
    /// nothing.
    pub async fn execute_with(
        &self,
        presented: &str,
        client: Option<IpAddr>,
        required: Option<&PermissionQuery>,
        demand: Demand,
    ) -> Result<Verification, VerifyApiKeyError> {
        let verification = self.authenticate(presented, client).await?;
        let key = match (verification, required) {
            (Verification::Valid(key), Some(query)) if !key.permissions.satisfy(query) => {
                return Ok(Verification::InsufficientPermissions(key))
            }
            (Verification::Valid(key), _) => key,
            (verification, _) => return Ok(verification),
        };
        if let Some((index, (name, _))) = demand
            .ratelimits
            .iter()
            .enumerate()
            .find(|(_, (name, _))| key.ratelimits.get(name).is_none())
        {
            return Err(VerifyApiKeyError::UnknownRateLimit {
                index,
                name: name.clone(),
            });
        }
        let metered = key.has_credits || !demand.ratelimits.is_empty() || key.ratelimits.iter().any(|l| l.auto_apply());
        if !metered {
            return Ok(Verification::Valid(key));
        }
        let outcome = self
            .meter
            .charge(key.key_id, demand, self.clock.now())
            .await
            .map_err(|err| match err {
                RepositoryError::Unavailable(e) => VerifyApiKeyError::StorageUnavailable(e),
                other => VerifyApiKeyError::Unexpected(other.into()),
            })?;
        // Deleted since it was cached: the key is gone.
        let Some(outcome) = outcome else {
            return Ok(Verification::NotFound);
        };
        let settlement = outcome.settlement;
        let key = VerifiedKey {
            usage: Some(Arc::new(outcome)),
            ..key
        };
        Ok(match settlement {
            Settlement::Granted => Verification::Valid(key),
            Settlement::RateLimited { .. } => Verification::KeyRateLimited(key),
            Settlement::UsageExceeded { .. } => Verification::UsageExceeded(key),
        })
    }

    /// Whose private key `presented` is: the format, then the cache of
    /// successful verifications (a hit proves the whole secret: entries are
    /// keyed by a keyed digest of the presented key), else the failure budgets
    /// (per `budget`), one indexed read and one argon2 verification, as a
    /// verification does. A leaked key in use is identified without hashing.
    pub async fn identify(&self, presented: &str, budget: Budget) -> Result<Identity, VerifyApiKeyError> {
        let Some(key) = PresentedKey::recognise(&self.format, presented) else {
            return Ok(Identity::Unknown);
        };
        let now = self.clock.now();
        // A rotated-out key past its grace period is cached no more than it is valid.
        if let Some(verified) = self.cache.get(&key).filter(|v| v.valid_until.is_none_or(|at| at > now)) {
            return Ok(Identity::Holder {
                key_id: verified.key_id,
                org_id: verified.org_id,
                lookup_id: verified.lookup_id,
            });
        }
        let budget_id = budget_id(&key);
        let client = match budget {
            Budget::Client(client) if !self.limiter.try_reserve(&budget_id, client, now) => {
                return Ok(Identity::RateLimited)
            }
            Budget::Client(client) => Some(client),
            Budget::Exempt => None,
        };
        let found = self.holder_of(&key, now).await;
        // As in a verification: the holder of the secret and an outage spend no budget.
        if let (Some(client), Ok(Some(_)) | Err(_)) = (client, &found) {
            self.limiter.refund(&budget_id, client, now);
        }
        Ok(match found? {
            Some(holder) => Identity::Holder {
                key_id: holder.key.id(),
                org_id: holder.key.org_id(),
                lookup_id: holder.lookup_id,
            },
            None => Identity::Unknown,
        })
    }

    /// The format, secret, revoked and expired steps.
    async fn authenticate(&self, presented: &str, client: Option<IpAddr>) -> Result<Verification, VerifyApiKeyError> {
        let Some(key) = PresentedKey::recognise(&self.format, presented) else {
            return Ok(Verification::NotFound);
        };
        let now = self.clock.now();
        if let Some((verified, refresh)) = self.cache.get_or_refresh(&key) {
            let lapsed =
                verified.expires_at.is_some_and(|at| at <= now) || verified.valid_until.is_some_and(|at| at <= now);
            if !lapsed {
                if refresh {
                    self.refresh(presented);
                }
                self.usage.record(verified.key_id, now);
                return Ok(Verification::Valid(verified));
            }
            // Only this presented key lapsed; the key's other private key (during
            // a rotation) may still be good, and one digest is O(1) to drop.
            self.cache.evict(&key);
        }
        loop {
            let flight = Flight::new(client, presented);
            let role = {
                let mut flights = self.flights.lock().unwrap_or_else(PoisonError::into_inner);
                match flights.get(&flight) {
                    Some(receiver) => Role::Follow(receiver.clone()),
                    None => {
                        let (sender, receiver) = watch::channel(None);
                        flights.insert(Flight::new(client, presented), receiver);
                        Role::Lead(sender)
                    }
                }
            };
            match role {
                Role::Follow(mut receiver) => {
                    if let Some(verdict) = receiver.wait_for(Option::is_some).await.ok().and_then(|v| (*v).clone()) {
                        return Ok(verdict);
                    }
                    // The leader failed or was abandoned: try again, perhaps leading.
                }
                Role::Lead(sender) => {
                    let _leading = Leading {
                        flights: &self.flights,
                        flight,
                    };
                    let verdict = self.verify_uncached(&key, client, now).await?;
                    sender.send_replace(Some(verdict.clone()));
                    return Ok(verdict);
                }
            }
        }
    }

    /// The steps after a cache miss: the failure budgets, the stored key, the
    /// hash, then revoked and expired.
    async fn verify_uncached(
        &self,
        key: &PresentedKey,
        client: Option<IpAddr>,
        now: DateTime<Utc>,
    ) -> Result<Verification, VerifyApiKeyError> {
        let budget_id = budget_id(key);
        // Reserved before any I/O, so concurrent guesses cannot overshoot the
        // budget; kept as a failure unless the secret turns out right.
        if !self.limiter.try_reserve(&budget_id, client, now) {
            return Ok(Verification::RateLimited);
        }
        let evictions = self.cache.evictions();
        let holder = match self.holder_of(key, now).await {
            Ok(Some(holder)) => holder,
            Ok(None) => return Ok(Verification::NotFound),
            Err(err) => {
                // No verdict (storage or hashing failed): the attempt was no guess
                // either, and an outage must not spend anyone's budget.
                self.limiter.refund(&budget_id, client, now);
                return Err(err);
            }
        };
        // The caller holds the secret: whatever the key's state, this was no guess.
        self.limiter.refund(&budget_id, client, now);
        let Holder {
            key: stored,
            lookup_id,
            valid_until,
        } = holder;
        if stored.is_revoked() {
            return Ok(Verification::Revoked);
        }
        if stored.is_expired(now) {
            return Ok(Verification::Expired);
        }
        let verified = verified_key(&stored, lookup_id, valid_until);
        self.cache.put_unless_evicted(key, verified.clone(), evictions);
        self.usage.record(verified.key_id, now);
        Ok(Verification::Valid(verified))
    }

    /// Reads `presented`'s key again in the background and renews or drops
    /// its cache entry, as a miss would decide it. No failure budget is
    /// involved: the entry proves the caller held the secret.
    fn refresh(&self, presented: &str) {
        let Ok(permit) = Arc::clone(&self.refreshes).try_acquire_owned() else {
            self.stats.refresh_skipped.fetch_add(1, Relaxed);
            return;
        };
        let this = self.clone();
        let presented = Zeroizing::new(presented.to_owned());
        tokio::spawn(async move {
            let _permit = permit;
            let Some(key) = PresentedKey::recognise(&this.format, &presented) else {
                return;
            };
            let now = this.clock.now();
            let evictions = this.cache.evictions();
            match this.holder_of(&key, now).await {
                Ok(Some(holder)) if !holder.key.is_revoked() && !holder.key.is_expired(now) => {
                    let verified = verified_key(&holder.key, holder.lookup_id, holder.valid_until);
                    // Refused when a change was announced meanwhile: the entry
                    // lapses and the next request reads afresh.
                    let counter = if this.cache.put_unless_evicted(&key, verified, evictions) {
                        &this.stats.refreshed
                    } else {
                        &this.stats.refresh_refused
                    };
                    counter.fetch_add(1, Relaxed);
                }
                Ok(_) => {
                    this.cache.evict(&key);
                    this.stats.refresh_dropped.fetch_add(1, Relaxed);
                }
                Err(err) => {
                    this.stats.refresh_failed.fetch_add(1, Relaxed);
                    tracing::warn!(error = %err, "refreshing a cached verification failed; it lapses at its TTL");
                }
            }
        });
    }

    /// The stored key whose secret `key` is; `None` when nothing stored matches
    /// (unknown lookup id or digest, other environment, lapsed grace period,
    /// wrong secret).
    ///
    /// A key in this deployment's format is looked up by its lookup id. Any
    /// key is then looked up by its digest, if the digest filter says a stored
    /// key may have it: keys brought in from other systems, including ones in
    /// a format like Keymint's, are found that way.
    async fn holder_of(&self, key: &PresentedKey, now: DateTime<Utc>) -> Result<Option<Holder>, VerifyApiKeyError> {
        if let PresentedKey::Issued(private) = key {
            match self.holder_by_lookup_id(private, now).await? {
                ByLookupId::Holder(holder) => return Ok(Some(*holder)),
                // A stored key has this lookup id: the presented key is that
                // key or nothing, never a key imported by its digest.
                ByLookupId::Mismatch => return Ok(None),
                ByLookupId::NoKey => {}
            }
        }
        let digest = key.digest();
        if !self.digests.may_hold(&digest) {
            self.stats.digest_filtered.fetch_add(1, Relaxed);
            return Ok(None);
        }
        self.stats.digest_reads.fetch_add(1, Relaxed);
        let Some(stored) = self.lookup.find_by_digest(&digest).await.map_err(storage_error)? else {
            return Ok(None);
        };
        let Some((hash, valid_until)) = stored.hash_for_digest(&digest, now) else {
            return Ok(None);
        };
        // The read matched the digest already; the stored hash is what decides.
        self.stats.sha256_checks.fetch_add(1, Relaxed);
        if !hash.sha256_digest().is_some_and(|stored| stored.matches(&digest)) {
            return Ok(None);
        }
        let lookup_id = if valid_until.is_some() {
            stored.previous_credential().map(|p| p.lookup_id.clone())
        } else {
            None
        }
        .unwrap_or_else(|| stored.lookup_id().clone());
        Ok(Some(Holder {
            key: stored,
            lookup_id,
            valid_until,
        }))
    }

    async fn holder_by_lookup_id(&self, key: &PrivateKey, now: DateTime<Utc>) -> Result<ByLookupId, VerifyApiKeyError> {
        let lookup_id = key.lookup_id();
        let Some(stored) = self.lookup.find_by_lookup(&lookup_id).await.map_err(storage_error)? else {
            return Ok(ByLookupId::NoKey);
        };
        if stored.environment() != key.environment() {
            return Ok(ByLookupId::Mismatch);
        }
        let Some((hash, valid_until)) = stored.hash_for(&lookup_id, now) else {
            return Ok(ByLookupId::Mismatch);
        };
        let counter = if hash.algorithm() == "sha256" {
            &self.stats.sha256_checks
        } else {
            &self.stats.argon2_checks
        };
        counter.fetch_add(1, Relaxed);
        let matched = self
            .hasher
            .verify(key, hash)
            .await
            .map_err(|e| VerifyApiKeyError::Unexpected(e.into()))?;
        if !matched {
            return Ok(ByLookupId::Mismatch);
        }
        if self.hasher.needs_rehash(hash) {
            self.rehash(stored.id(), key, hash).await;
        }
        Ok(ByLookupId::Holder(Box::new(Holder {
            key: stored,
            lookup_id,
            valid_until,
        })))
    }

    /// Stores `key`'s hash in the current form in place of `old`. A failure
    /// is logged and counted, not reported: the key verified, and the next
    /// verification tries again.
    async fn rehash(&self, id: KeyId, key: &PrivateKey, old: &SecretHash) {
        let replaced = match self.hasher.hash(key).await {
            Ok(new) => self.lookup.rehash(id, old, &new).await.map_err(anyhow::Error::from),
            Err(err) => Err(anyhow::Error::from(err)),
        };
        match replaced {
            Ok(true) => {
                self.stats.rehashed.fetch_add(1, Relaxed);
                tracing::debug!(key_id = %id, from = old.algorithm(), "stored hash replaced by the current form");
            }
            // Rotated meanwhile: the hash that verified is no longer stored.
            Ok(false) => {}
            Err(err) => {
                self.stats.rehash_failures.fetch_add(1, Relaxed);
                tracing::warn!(key_id = %id, error = %err, "could not store the key's hash in the current form");
            }
        }
    }
}

/// What a lookup by a presented key's lookup id found.
enum ByLookupId {
    /// No stored key has the lookup id.
    NoKey,
    /// A stored key has it, and the presented key is not (or no longer) its
    /// private key.
    Mismatch,
    /// The presented key is this stored key's (boxed: a key is large, and
    /// the other answers are the common ones).
    Holder(Box<Holder>),
}

/// A stored key a presented key belongs to.
struct Holder {
    key: ApiKey,
    /// Which of its private keys was presented.
    lookup_id: LookupId,
    /// Set when that private key was rotated out: the end of its grace period.
    valid_until: Option<DateTime<Utc>>,
}

/// What a verification of `stored` establishes, as cached.
fn verified_key(stored: &ApiKey, lookup_id: LookupId, valid_until: Option<DateTime<Utc>>) -> VerifiedKey {
    VerifiedKey {
        key_id: stored.id(),
        org_id: stored.org_id(),
        lookup_id,
        environment: stored.environment(),
        name: stored.name().as_str().to_owned(),
        expires_at: stored.expires_at(),
        valid_until,
        permissions: Arc::new(stored.permissions().clone()),
        owner_id: stored.owner_id().map(|owner| Arc::from(owner.as_str())),
        meta: stored.meta().cloned().map(Arc::new),
        ratelimits: Arc::new(stored.ratelimits().clone()),
        has_credits: stored.credits().is_some(),
        usage: None,
    }
}

/// What failed attempts with `key` are counted against, per client: its
/// lookup id, or for a key without one, an id derived from its digest.
fn budget_id(key: &PresentedKey) -> LookupId {
    match key {
        PresentedKey::Issued(private) => private.lookup_id(),
        PresentedKey::Foreign(foreign) => foreign.digest().budget_id(),
    }
}

fn storage_error(err: RepositoryError) -> VerifyApiKeyError {
    match err {
        RepositoryError::Unavailable(e) => VerifyApiKeyError::StorageUnavailable(e),
        other => VerifyApiKeyError::Unexpected(other.into()),
    }
}

#[cfg(test)]
mod tests;
