//! The in-memory adapter: every storage port on one lock, for tests and
//! demos. Its files mirror `sql/`: `repository.rs`, `ledger.rs`,
//! `verification.rs`, `webhooks.rs`, `deliveries.rs`, `outbox.rs`,
//! `analytics.rs`.

use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};

use chrono::{DateTime, Utc};
use keymint_application::Delivery;
use keymint_domain::{
    ApiKey, AuditEvent, Credits, Granularity, KeyDigest, KeyId, OrgId, OwnerId, TagSet, VerificationOutcome, Webhook,
    WebhookSecret, WindowCount,
};
use tokio::sync::Notify;

mod analytics;
mod deliveries;
mod ledger;
mod outbox;
mod repository;
mod verification;
mod webhooks;

/// Keys held in the process's memory: for tests and demos (`database.url =
/// "memory:"`). It keeps the same uniqueness, scoping, limit and revision rules as
/// the SQL adapter, and loses everything when the process exits.
#[derive(Debug, Default)]
pub struct InMemoryApiKeyRepository {
    state: RwLock<State>,
    queued: Arc<Notify>,
}

#[derive(Debug, Default)]
struct State {
    keys: HashMap<KeyId, ApiKey>,
    events: Vec<AuditEvent>,
    windows: HashMap<KeyId, Vec<WindowCount>>,
    /// By organisation and idempotency key: the request's fingerprint, the
    /// credits it left, and when.
    answers: HashMap<(OrgId, String), (String, Credits, DateTime<Utc>)>,
    webhooks: Vec<StoredWebhook>,
    /// Keys whose `key.expiring` went out.
    expiry_announced: std::collections::HashSet<KeyId>,
    /// Keys whose `key.credits_low` went out (forgotten when a person changes
    /// their credits).
    credits_low_announced: std::collections::HashSet<KeyId>,
    /// In `seq` order.
    deliveries: Vec<StoredDelivery>,
    next_seq: i64,
    /// Counts lookup digests added.
    digest_generation: i64,
    /// Verification counts and credits spent, per bucket.
    analytics: HashMap<BucketKey, (u64, u64)>,
    /// When buckets were last pruned.
    pruned_at: Option<DateTime<Utc>>,
}

/// One analytics bucket: what `sql/` keys its `verification_buckets` rows by.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct BucketKey {
    granularity: Granularity,
    start: DateTime<Utc>,
    org_id: OrgId,
    key_id: KeyId,
    owner_id: Option<OwnerId>,
    outcome: VerificationOutcome,
    tags: TagSet,
}

#[derive(Debug)]
struct StoredWebhook {
    webhook: Webhook,
    secret: WebhookSecret,
    previous: Option<(WebhookSecret, DateTime<Utc>)>,
}

#[derive(Debug)]
struct StoredDelivery {
    delivery: Delivery,
    org_id: OrgId,
    payload: String,
    locked_until: Option<DateTime<Utc>>,
}

impl State {
    /// Whether `candidate`'s id, public key, any lookup id or any lookup
    /// digest clashes with another key.
    fn clashes(&self, candidate: &ApiKey) -> bool {
        let lookups = |key: &ApiKey| {
            std::iter::once(key.lookup_id().clone()).chain(key.previous_credential().map(|p| p.lookup_id.clone()))
        };
        let candidate_digests: Vec<KeyDigest> = lookup_digests(candidate).collect();
        self.keys.values().filter(|key| key.id() != candidate.id()).any(|key| {
            key.public_key() == candidate.public_key()
                || lookups(key).any(|l| lookups(candidate).any(|c| c == l))
                || lookup_digests(key).any(|d| candidate_digests.contains(&d))
        })
    }
}

/// The lookup digests of `key`'s current and rotated-out private keys.
fn lookup_digests(key: &ApiKey) -> impl Iterator<Item = KeyDigest> + '_ {
    let parts = key.parts();
    parts
        .credential
        .lookup_digest
        .into_iter()
        .chain(parts.previous.as_ref().and_then(|p| p.lookup_digest))
}

impl InMemoryApiKeyRepository {
    /// An empty repository.
    pub fn new() -> Self {
        Self::default()
    }

    // Every change below is checked before anything is touched, so a panic cannot
    // leave State half-updated and a poisoned lock is safe to keep using.
    fn write(&self) -> std::sync::RwLockWriteGuard<'_, State> {
        self.state.write().unwrap_or_else(PoisonError::into_inner)
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(PoisonError::into_inner)
    }

    /// Signalled when deliveries were queued, so the dispatcher sends them at
    /// once instead of at its next poll.
    pub fn deliveries_queued(&self) -> Arc<Notify> {
        self.queued.clone()
    }

    fn queued_some(&self, queued: usize) {
        if queued > 0 {
            self.queued.notify_one();
        }
    }
}
