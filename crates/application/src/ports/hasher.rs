use async_trait::async_trait;
use keymint_domain::{PrivateKey, SecretHash};

/// A hashing failure: bad parameters or a stored hash that cannot be parsed.
#[derive(Debug, thiserror::Error)]
#[error("secret hashing failed")]
pub struct HashError(#[source] pub anyhow::Error);

/// Turns private keys into stored hashes and checks keys against them.
///
/// Which hash a new key gets is the deployment's choice; a stored hash names
/// its own algorithm and parameters, so hashes made under an earlier choice
/// keep verifying. Implementations MUST NOT run expensive hashing (argon2) on
/// an async worker thread.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait SecretHasher: Send + Sync {
    /// Hashes `key` in the deployment's current form.
    async fn hash(&self, key: &PrivateKey) -> Result<SecretHash, HashError>;
    /// Whether `key` is the one `hash` was made from, compared in constant time.
    ///
    /// MUST return `Ok(false)` for a wrong key and `Err` only when `hash` is unusable.
    async fn verify(&self, key: &PrivateKey, hash: &SecretHash) -> Result<bool, HashError>;
    /// Whether `hash` is in another form than [`SecretHasher::hash`] makes now
    /// (another algorithm, or other parameters), so that a key that just
    /// verified against it should be hashed anew.
    fn needs_rehash(&self, hash: &SecretHash) -> bool;
}
