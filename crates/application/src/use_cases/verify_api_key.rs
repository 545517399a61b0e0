//! Verifying presented keys, the hot path: [`VerifyApiKey`] and its
//! counters. What a verification answers is in `verdict`, the coalescing of
//! concurrent verifications of one key in `flights`, and the search for the
//! stored key a presented key belongs to in `holder`.

use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, PoisonError};

use chrono::{DateTime, Utc};
use keymint_domain::{ApiKey, Demand, KeyFormat, LookupId, PermissionQuery, PresentedKey, Settlement, TagSet};
use tokio::sync::{watch, Semaphore};
use zeroize::Zeroizing;

use crate::{
    Clock, DigestFilter, FailureLimiter, KeyLookup, Meter, NoDigestFilter, NoVerificationCounter, RepositoryError,
    SecretHasher, UsageTracker, VerificationCache, VerificationCounter, VerifiedKey,
};

mod counting;
mod flights;
mod holder;
mod verdict;

pub use verdict::{Budget, Identity, RefusedKey, Verification, VerifyApiKeyError};

use flights::{Flight, Flights, Leading, Role};
use holder::Holder;

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
    counter: Arc<dyn VerificationCounter>,
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
            counter: Arc::new(NoVerificationCounter),
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

    /// The same verifier, counting verifications through `counter`.
    pub fn with_counter(mut self, counter: Arc<dyn VerificationCounter>) -> Self {
        self.counter = counter;
        self
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
        self.execute_tagged(presented, client, required, demand, TagSet::empty())
            .await
    }

    /// The verdict of [`VerifyApiKey::execute_tagged`], before it is counted.
    pub(super) async fn decide(
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
            return Ok(Verification::Revoked(RefusedKey::of(&stored)));
        }
        if stored.is_expired(now) {
            return Ok(Verification::Expired(RefusedKey::of(&stored)));
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

#[cfg(test)]
mod tests;
