//! The cache of successful verifications.

use chrono::{DateTime, Utc};
use std::sync::Arc;

use keymint_domain::{Environment, KeyId, KeyMeta, LookupId, OrgId, Outcome, Permissions, PresentedKey, RateLimits};

/// What a successful verification established about a presented key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedKey {
    /// The key's id.
    pub key_id: KeyId,
    /// Its organisation.
    pub org_id: OrgId,
    /// Which of its private keys was presented (the lookup id stored for it).
    pub lookup_id: LookupId,
    /// Its environment.
    pub environment: Environment,
    /// Its name.
    pub name: String,
    /// When it expires, if ever.
    pub expires_at: Option<DateTime<Utc>>,
    /// Set when the presented key is a rotated-out one: the end of its grace period.
    pub valid_until: Option<DateTime<Utc>>,
    /// What it may do; shared, so a cache hit copies a pointer, not the names.
    pub permissions: Arc<Permissions>,
    /// Whom it belongs to (shared, as the permissions).
    pub owner_id: Option<Arc<str>>,
    /// The customer's metadata (shared, as the permissions).
    pub meta: Option<Arc<KeyMeta>>,
    /// Its own rate limits (shared, as the permissions).
    pub ratelimits: Arc<RateLimits>,
    /// Whether it has credits to spend (`false`: unlimited use).
    pub has_credits: bool,
    /// What this verification spent and what is left, when the key is metered
    /// (credits, or a rate limit that applied). Never cached: each
    /// verification settles its own.
    pub usage: Option<Arc<Outcome>>,
}

/// Remembers successful verifications so the hot path needs no storage read (nor,
/// for keys hashed with argon2, a hash).
///
/// Implementations MUST key entries by a keyed digest of the presented key (never
/// the key itself), MUST bound their size and entry lifetime, and MUST make
/// [`VerificationCache::evict_key`] take effect before it returns.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
pub trait VerificationCache: Send + Sync {
    /// A remembered successful verification of `presented`, if any.
    fn get(&self, presented: &PresentedKey) -> Option<VerifiedKey>;
    /// Like [`get`](Self::get), and whether this caller should read the key
    /// again in the background: `true` once per entry, late in its
    /// lifetime. A key in steady use is then re-read before its entry lapses
    /// and never waits for a read on the request path. A cache that never
    /// asks for refreshes answers as `get`.
    fn get_or_refresh(&self, presented: &PresentedKey) -> Option<(VerifiedKey, bool)> {
        self.get(presented).map(|verified| (verified, false))
    }
    /// Remembers that `presented` verified as `verified`.
    fn put(&self, presented: &PresentedKey, verified: VerifiedKey);
    /// How many evictions this cache has seen: taken before a storage read,
    /// it lets [`put_unless_evicted`](Self::put_unless_evicted) tell whether
    /// a change was announced while the read ran.
    fn evictions(&self) -> u64 {
        0
    }
    /// Remembers `verified` unless something was evicted since `evictions`
    /// was read: a key revoked in this process while its verification read
    /// storage must not be cached as it was before the revocation. Says
    /// whether it was remembered.
    fn put_unless_evicted(&self, presented: &PresentedKey, verified: VerifiedKey, evictions: u64) -> bool {
        let _ = evictions;
        self.put(presented, verified);
        true
    }
    /// Forgets the remembered verification of `presented` alone (it lapsed).
    fn evict(&self, presented: &PresentedKey);
    /// Forgets every remembered verification of key `id` (revoked, rotated, deleted
    /// or renamed).
    fn evict_key(&self, id: KeyId);
    /// Forgets everything, for example after change notifications may have been
    /// missed.
    fn evict_all(&self);
}

/// A cache that remembers nothing: every verification hashes.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoVerificationCache;

impl VerificationCache for NoVerificationCache {
    fn get(&self, _: &PresentedKey) -> Option<VerifiedKey> {
        None
    }
    fn put(&self, _: &PresentedKey, _: VerifiedKey) {}
    fn evict(&self, _: &PresentedKey) {}
    fn evict_key(&self, _: KeyId) {}
    fn evict_all(&self) {}
}
