use async_trait::async_trait;
use keymint_domain::{PrivateKey, SecretHash};

/// A hashing failure: bad parameters or a stored hash that cannot be parsed.
#[derive(Debug, thiserror::Error)]
#[error("secret hashing failed")]
pub struct HashError(#[source] pub anyhow::Error);

/// Turns private keys into slow, salted hashes and checks keys against them.
///
/// Implementations are deliberately expensive (argon2id) and MUST NOT run that work
/// on an async worker thread.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait SecretHasher: Send + Sync {
    /// Hashes `key` with a fresh random salt.
    async fn hash(&self, key: &PrivateKey) -> Result<SecretHash, HashError>;

    /// Whether `key` is the one `hash` was made from, compared in constant time.
    ///
    /// MUST return `Ok(false)` for a wrong key and `Err` only when `hash` is unusable.
    async fn verify(&self, key: &PrivateKey, hash: &SecretHash) -> Result<bool, HashError>;
}
