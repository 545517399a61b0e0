//! Rotating a key: a new private key for the same key, the replaced one
//! verifying on through a bounded grace period, and the rules that refuse a
//! rotation before any work is done for it.

use chrono::{DateTime, Utc};

use super::{ApiKey, Credential, PreviousCredential};

/// Why a key could not be rotated.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RotateError {
    /// The grace period is negative.
    #[error("the grace period must be at least 0 seconds")]
    NegativeGracePeriod,
    /// The grace period is longer than [`MAX_GRACE_PERIOD_SECONDS`].
    #[error("the grace period must be at most {MAX_GRACE_PERIOD_SECONDS} seconds")]
    GracePeriodTooLong,
    /// Revocation is final: a revoked key gets no new secret.
    #[error("the key is revoked")]
    Revoked,
    /// An expired key gets no new secret; create a new key instead.
    #[error("the key has expired")]
    Expired,
}

/// The most a rotation's grace period may be: one week.
pub const MAX_GRACE_PERIOD_SECONDS: u32 = 604_800;

impl ApiKey {
    /// Checks a rotation's grace period on its own: from zero to
    /// [`MAX_GRACE_PERIOD_SECONDS`]. Callers may ask before loading any key, so
    /// that a request bound to fail costs no I/O; [`ApiKey::rotate`] asks again.
    pub fn check_grace_period(grace: chrono::Duration) -> Result<(), RotateError> {
        if grace < chrono::Duration::zero() {
            Err(RotateError::NegativeGracePeriod)
        } else if grace > chrono::Duration::seconds(i64::from(MAX_GRACE_PERIOD_SECONDS)) {
            Err(RotateError::GracePeriodTooLong)
        } else {
            Ok(())
        }
    }

    /// Whether [`ApiKey::rotate`] would accept `grace` at `now`: the grace period
    /// first, then the key's state. Asking before drawing and hashing a new
    /// private key saves that work for a rotation that is bound to be refused.
    pub fn check_rotation(&self, grace: chrono::Duration, now: DateTime<Utc>) -> Result<(), RotateError> {
        Self::check_grace_period(grace)?;
        if self.is_revoked() {
            return Err(RotateError::Revoked);
        }
        if self.is_expired(now) {
            return Err(RotateError::Expired);
        }
        Ok(())
    }

    /// Replaces the private key with `replacement`. With a non-zero `grace`, the
    /// replaced key keeps verifying until `now + grace`; a key replaced earlier
    /// is dropped, so at most two private keys are ever valid at once.
    ///
    /// Refused, changing nothing, when [`ApiKey::check_rotation`] refuses.
    pub fn rotate(
        &mut self,
        replacement: Credential,
        grace: chrono::Duration,
        now: DateTime<Utc>,
    ) -> Result<(), RotateError> {
        self.check_rotation(grace, now)?;
        let replaced = std::mem::replace(&mut self.parts.credential, replacement);
        self.parts.previous = (grace > chrono::Duration::zero()).then(|| PreviousCredential {
            lookup_id: replaced.lookup_id,
            secret_hash: replaced.secret_hash,
            lookup_digest: replaced.lookup_digest,
            valid_until: now + grace,
        });
        // Rotation is the remedy for a flagged leak: the key is no longer marked.
        self.parts.leaked_at = None;
        self.changed();
        Ok(())
    }
}
