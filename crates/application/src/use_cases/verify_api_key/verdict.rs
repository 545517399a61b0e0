//! What a verification or an identification answers, the failure budget an
//! identification spends, and why one could not be decided: the vocabulary
//! callers of the verifier switch on.

use std::net::IpAddr;
use std::sync::Arc;

use keymint_domain::{ApiKey, KeyId, LookupId, OrgId};

use crate::VerifiedKey;

/// The answer to "is this key good?".
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verification {
    /// The key is valid.
    Valid(VerifiedKey),
    /// Unknown, malformed, failing its checksum, wrong secret, deleted, or a
    /// rotated-out key past its grace period: all alike, so nothing is learned.
    NotFound,
    /// The right key, revoked.
    Revoked(RefusedKey),
    /// The right key, expired.
    Expired(RefusedKey),
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
            Verification::Revoked(_) => "REVOKED",
            Verification::Expired(_) => "EXPIRED",
            Verification::RateLimited => "RATE_LIMITED",
            Verification::InsufficientPermissions(_) => "INSUFFICIENT_PERMISSIONS",
            Verification::KeyRateLimited(_) => "RATE_LIMITED",
            Verification::UsageExceeded(_) => "USAGE_EXCEEDED",
        }
    }
}

/// The key a revoked or expired verdict is about. The caller held its secret,
/// so naming it tells them nothing new; it is counted in the key's usage, and
/// never shown in the answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RefusedKey {
    /// The key.
    pub key_id: KeyId,
    /// Its organisation.
    pub org_id: OrgId,
    /// Its owner.
    pub owner_id: Option<Arc<str>>,
}

impl RefusedKey {
    /// The stored key's identity.
    pub fn of(key: &ApiKey) -> Self {
        Self {
            key_id: key.id(),
            org_id: key.org_id(),
            owner_id: key.owner_id().map(|owner| Arc::from(owner.as_str())),
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
