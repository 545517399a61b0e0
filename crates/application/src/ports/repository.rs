use async_trait::async_trait;
use keymint_domain::{ApiKey, KeyId, OrgId};

/// What a repository may fail with.
#[derive(Debug, thiserror::Error)]
pub enum RepositoryError {
    /// A key with the same id, public key or lookup id already exists.
    #[error("a key with the same id, public key or lookup id already exists")]
    Conflict,
    /// The storage cannot be reached right now; retrying later may succeed.
    #[error("storage is unavailable")]
    Unavailable(#[source] anyhow::Error),
    /// Anything else: a bug, a corrupt row, a schema mismatch.
    #[error(transparent)]
    Unexpected(anyhow::Error),
}

/// Durable storage of API keys.
///
/// Implementations MUST keep every key's `id`, `public_key` and `lookup_id` unique
/// and MUST scope reads by organisation: a key of another organisation is reported
/// exactly like a key that does not exist.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait ApiKeyRepository: Send + Sync {
    /// Stores a newly issued key, atomically: afterwards it is stored whole or not
    /// at all.
    ///
    /// MUST return [`RepositoryError::Conflict`] when the id, public key or lookup id
    /// is taken, [`RepositoryError::Unavailable`] when storage cannot be reached.
    async fn insert(&self, key: &ApiKey) -> Result<(), RepositoryError>;

    /// Loads one key of `org_id`.
    ///
    /// MUST return `Ok(None)` for an unknown id and for another organisation's key.
    async fn find(&self, org_id: OrgId, id: KeyId) -> Result<Option<ApiKey>, RepositoryError>;

    /// Checks that storage answers, for readiness probes.
    ///
    /// MUST return [`RepositoryError::Unavailable`] when it does not.
    async fn ping(&self) -> Result<(), RepositoryError>;
}
