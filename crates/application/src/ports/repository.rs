use async_trait::async_trait;
use chrono::{DateTime, Utc};
use keymint_domain::{
    ApiKey, AuditEvent, Environment, KeyDigest, KeyId, LookupId, NameSearch, OrgId, OwnerId, SecretHash,
};
use uuid::Uuid;

/// What a repository may fail with.
#[derive(Debug, thiserror::Error)]
pub enum RepositoryError {
    /// A key with the same id, public key or lookup id already exists.
    #[error("a key with the same id, public key or lookup id already exists")]
    Conflict,
    /// The stored key changed since it was read (its revision moved on), or it
    /// was deleted meanwhile. Re-read and decide again.
    #[error("the key changed since it was read")]
    Stale,
    /// The organisation already has the most active keys it may have.
    #[error("the organisation's active key limit is reached")]
    LimitReached,
    /// The storage cannot be reached right now; retrying later may succeed.
    #[error("storage is unavailable")]
    Unavailable(#[source] anyhow::Error),
    /// Anything else: a bug, a corrupt row, a schema mismatch.
    #[error(transparent)]
    Unexpected(anyhow::Error),
}

/// Where a page of keys starts: strictly after this key in newest-first order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeyCursor {
    /// The last listed key's creation time.
    pub created_at: DateTime<Utc>,
    /// The last listed key's id (ties on `created_at` are ordered by id).
    pub id: KeyId,
}

/// Which keys to list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyQuery {
    /// Whose keys.
    pub org_id: OrgId,
    /// Only keys of this environment.
    pub environment: Option<Environment>,
    /// Only revoked (`true`) or unrevoked (`false`) keys.
    pub revoked: Option<bool>,
    /// Only keys of this owner.
    pub owner_id: Option<OwnerId>,
    /// Only keys whose name contains this, ignoring case.
    pub name: Option<NameSearch>,
    /// Start after this key.
    pub after: Option<KeyCursor>,
    /// At most this many keys.
    pub limit: usize,
}

/// Where a page of audit events starts: strictly after this event, newest first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EventCursor {
    /// The last listed event's time.
    pub occurred_at: DateTime<Utc>,
    /// The last listed event's id.
    pub id: Uuid,
}

/// Which audit events to list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventQuery {
    /// The key's organisation.
    pub org_id: OrgId,
    /// The key.
    pub key_id: KeyId,
    /// Start after this event.
    pub after: Option<EventCursor>,
    /// At most this many events.
    pub limit: usize,
}

/// Durable storage of API keys and their audit trail: what the management use
/// cases read and write.
///
/// Implementations MUST keep every key's `id`, `public_key` and lookup ids
/// unique, MUST scope every read and write by organisation (another
/// organisation's key is reported exactly like a missing one), and MUST write a
/// change and its audit event in one transaction: both or neither.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait KeyStore: Send + Sync {
    /// Stores a newly issued key and its `created` event, unless the organisation
    /// already has `max_active` keys that are unrevoked and unexpired at `now`.
    ///
    /// MUST return [`RepositoryError::Conflict`] when the id, public key, lookup
    /// id or lookup digest is taken, [`RepositoryError::LimitReached`] at the limit (checked
    /// atomically with the insert), [`RepositoryError::Unavailable`] when storage
    /// cannot be reached.
    async fn insert(
        &self,
        key: &ApiKey,
        event: &AuditEvent,
        max_active: u32,
        now: DateTime<Utc>,
    ) -> Result<(), RepositoryError>;

    /// Loads one key of `org_id`; `Ok(None)` for unknown ids and other
    /// organisations' keys.
    async fn find(&self, org_id: OrgId, id: KeyId) -> Result<Option<ApiKey>, RepositoryError>;

    /// Lists keys newest first (`created_at` then `id`, both descending).
    async fn list(&self, query: &KeyQuery) -> Result<Vec<ApiKey>, RepositoryError>;

    /// Replaces the stored key with `key` and records `event`, provided the stored
    /// revision is still `expected_revision`. `last_used_at` is not written: usage
    /// is recorded separately and must not be rolled back by a change.
    ///
    /// MUST return [`RepositoryError::Stale`] when the revision moved on or the key
    /// is gone, writing nothing.
    async fn update(&self, key: &ApiKey, expected_revision: u32, event: &AuditEvent) -> Result<(), RepositoryError>;

    /// Deletes a key of `org_id` and records `event`. Returns whether a key was
    /// deleted; its audit trail stays.
    async fn delete(&self, org_id: OrgId, id: KeyId, event: &AuditEvent) -> Result<bool, RepositoryError>;

    /// Lists a key's audit events, newest first (`occurred_at` then `id`).
    async fn events(&self, query: &EventQuery) -> Result<Vec<AuditEvent>, RepositoryError>;
}

/// Finds the key a presented private key belongs to: the one read of a
/// verification.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait KeyLookup: Send + Sync {
    /// Loads the key whose current or rotated-out private key has `lookup_id`,
    /// in any organisation (the lookup id is unique across all of them).
    ///
    /// MUST be one indexed read, and MUST return [`RepositoryError::Unavailable`]
    /// when storage cannot be reached.
    async fn find_by_lookup(&self, lookup_id: &LookupId) -> Result<Option<ApiKey>, RepositoryError>;

    /// Loads the key whose current or rotated-out private key has the lookup
    /// digest `digest` (a key brought in from another system), in any
    /// organisation.
    ///
    /// MUST be one indexed read, and MUST return [`RepositoryError::Unavailable`]
    /// when storage cannot be reached.
    async fn find_by_digest(&self, digest: &KeyDigest) -> Result<Option<ApiKey>, RepositoryError>;

    /// Replaces the stored hash `old` of key `id` (its current or rotated-out
    /// private key's) with `new`, a hash of the same private key in the
    /// deployment's current form. Returns whether `old` was still stored (a
    /// rotation may have replaced it meanwhile: then nothing is written).
    /// Neither the revision nor the audit trail changes: nobody changed the key.
    async fn rehash(&self, id: KeyId, old: &SecretHash, new: &SecretHash) -> Result<bool, RepositoryError>;
}

/// Every lookup digest stored, for a process's filter of which digests are
/// worth a storage read.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait LookupDigests: Send + Sync {
    /// A number that changes whenever a lookup digest is added (keys brought
    /// in). It may also change at other times; it never changes back.
    async fn digest_generation(&self) -> Result<i64, RepositoryError>;

    /// Every lookup digest of a current or rotated-out private key, in any
    /// organisation.
    async fn lookup_digests(&self) -> Result<Vec<KeyDigest>, RepositoryError>;
}

/// Where coalesced key usage (`last_used_at`) is written.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait UsageSink: Send + Sync {
    /// Sets `last_used_at` of each key to the given time unless it already holds a
    /// later one. Keys that no longer exist are skipped; the revision is untouched
    /// (usage is not a change made by anyone).
    async fn record_usage(&self, usage: &[(KeyId, DateTime<Utc>)]) -> Result<(), RepositoryError>;
}

/// Whether storage answers, for readiness probes.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait StorageHealth: Send + Sync {
    /// Checks that storage answers.
    ///
    /// MUST return [`RepositoryError::Unavailable`] when it does not.
    async fn ping(&self) -> Result<(), RepositoryError>;
}

/// A storage adapter that offers every capability above: what the wiring (and the
/// repository contract tests) hand out, each use case taking only the part it uses.
pub trait ApiKeyRepository:
    KeyStore
    + KeyLookup
    + LookupDigests
    + UsageSink
    + StorageHealth
    + crate::UsageLedger
    + crate::WebhookStore
    + crate::DeliveryQueue
    + crate::AnalyticsStore
{
}

impl<
        T: KeyStore
            + KeyLookup
            + LookupDigests
            + UsageSink
            + StorageHealth
            + crate::UsageLedger
            + crate::WebhookStore
            + crate::DeliveryQueue
            + crate::AnalyticsStore
            + ?Sized,
    > ApiKeyRepository for T
{
}
