//! Why a key operation failed: one enum per set of outcomes a caller must
//! handle, and the storage failures they all share, told apart once here.

use keymint_domain::{ExpiryError, RotateError};

use crate::{CreditChangeRefusal, MissingPermission, RepositoryError};

/// Why a key could not be created.
#[derive(Debug, thiserror::Error)]
pub enum CreateApiKeyError {
    /// The actor may not create keys.
    #[error(transparent)]
    Forbidden(#[from] MissingPermission),
    /// `expires_at` is in the past or too far ahead.
    #[error(transparent)]
    InvalidExpiry(#[from] ExpiryError),
    /// The organisation already holds the most active keys it may.
    #[error("the organisation already has {max} active keys")]
    LimitReached {
        /// The configured maximum.
        max: u32,
    },
    /// Storage is unreachable; nothing was stored and retrying may succeed.
    #[error("storage is unavailable")]
    StorageUnavailable(#[source] anyhow::Error),
    /// Anything else.
    #[error(transparent)]
    Unexpected(anyhow::Error),
}

/// Why an operation on existing keys failed.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The actor may not do this.
    #[error(transparent)]
    Forbidden(#[from] MissingPermission),
    /// No such key in the caller's organisation.
    #[error("no such key")]
    NotFound,
    /// Storage is unreachable; nothing changed and retrying may succeed.
    #[error("storage is unavailable")]
    StorageUnavailable(#[source] anyhow::Error),
    /// Anything else.
    #[error(transparent)]
    Unexpected(anyhow::Error),
}

/// Why a key's credits could not be changed.
#[derive(Debug, thiserror::Error)]
pub enum ChangeCreditsError {
    /// The actor may not change keys.
    #[error(transparent)]
    Forbidden(#[from] MissingPermission),
    /// No such key in the caller's organisation.
    #[error("no such key")]
    NotFound,
    /// The key has unlimited use.
    #[error("the key has unlimited use; give it credits with an update first")]
    Unlimited,
    /// The change was refused; nothing changed.
    #[error("the change would take the credits out of range")]
    Refused(CreditChangeRefusal),
    /// The idempotency key was first used for a different request.
    #[error("the idempotency key was used for a different request")]
    IdempotencyMismatch,
    /// Storage is unreachable; nothing changed and retrying may succeed.
    #[error("storage is unavailable")]
    StorageUnavailable(#[source] anyhow::Error),
    /// Anything else.
    #[error(transparent)]
    Unexpected(anyhow::Error),
}

/// Why a key could not be rotated.
#[derive(Debug, thiserror::Error)]
pub enum RotateApiKeyError {
    /// The actor may not rotate keys.
    #[error(transparent)]
    Forbidden(#[from] MissingPermission),
    /// No such key in the caller's organisation.
    #[error("no such key")]
    NotFound,
    /// The domain refused: a grace period out of bounds, or a revoked or expired
    /// key.
    #[error(transparent)]
    Refused(#[from] RotateError),
    /// Storage is unreachable; nothing changed and retrying may succeed.
    #[error("storage is unavailable")]
    StorageUnavailable(#[source] anyhow::Error),
    /// Anything else.
    #[error(transparent)]
    Unexpected(anyhow::Error),
}

/// Storage failures every error enum shares.
pub(super) enum Storage {
    Unavailable(anyhow::Error),
    Unexpected(anyhow::Error),
}

impl From<RepositoryError> for Storage {
    fn from(err: RepositoryError) -> Self {
        match err {
            RepositoryError::Unavailable(e) => Storage::Unavailable(e),
            other => Storage::Unexpected(other.into()),
        }
    }
}

impl From<Storage> for KeyError {
    fn from(err: Storage) -> Self {
        match err {
            Storage::Unavailable(e) => KeyError::StorageUnavailable(e),
            Storage::Unexpected(e) => KeyError::Unexpected(e),
        }
    }
}

impl From<RepositoryError> for KeyError {
    fn from(err: RepositoryError) -> Self {
        Storage::from(err).into()
    }
}

impl From<RepositoryError> for RotateApiKeyError {
    fn from(err: RepositoryError) -> Self {
        match Storage::from(err) {
            Storage::Unavailable(e) => RotateApiKeyError::StorageUnavailable(e),
            Storage::Unexpected(e) => RotateApiKeyError::Unexpected(e),
        }
    }
}
