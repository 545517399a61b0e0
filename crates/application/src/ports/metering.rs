//! Where verifications spend credits and rate-limit counts, and where credits
//! are changed by hand.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use keymint_domain::{AuditEvent, Credits, Demand, KeyId, OrgId, Outcome};

use crate::RepositoryError;

/// Settles one verification's demand against a key's stored balance.
/// Implementations MAY gather concurrent demands for one key into one atomic
/// write, and MUST NOT grant anything the stored balance does not hold at the
/// moment of the grant.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait Meter: Send + Sync {
    /// Settles `demand` for key `id` as of `now`; `Ok(None)` when the key no
    /// longer exists.
    async fn charge(&self, id: KeyId, demand: Demand, now: DateTime<Utc>) -> Result<Option<Outcome>, RepositoryError>;
}

/// The stored balances of keys: credits and rate-limit window counts.
#[async_trait]
pub trait UsageLedger: Send + Sync {
    /// Settles `demands` for key `id`, in order, in one atomic step: the key's
    /// balance is locked, each demand decided with
    /// [`keymint_domain::Ledger::settle`] against the key's stored rate limits,
    /// and the balance written back before anyone else reads it. `Ok(None)`
    /// when the key no longer exists.
    async fn settle(
        &self,
        id: KeyId,
        demands: &[(Demand, DateTime<Utc>)],
    ) -> Result<Option<Vec<Outcome>>, RepositoryError>;

    /// Applies `change` to key `id` of `org_id` atomically with the balance
    /// verifications spend from, records `event`, and, with `idempotency`,
    /// remembers the answer; a later call with the same idempotency key within
    /// its lifetime gets that answer back and changes nothing.
    async fn change_credits(
        &self,
        org_id: OrgId,
        id: KeyId,
        change: CreditChange,
        event: &AuditEvent,
        idempotency: Option<&Idempotency>,
        now: DateTime<Utc>,
    ) -> Result<CreditChangeOutcome, RepositoryError>;
}

/// How to change a key's remaining credits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CreditOp {
    /// Set them to the value.
    Set,
    /// Add the value.
    Increment,
    /// Take the value away.
    Decrement,
}

impl CreditOp {
    /// `set`, `increment` or `decrement`.
    pub fn as_str(self) -> &'static str {
        match self {
            CreditOp::Set => "set",
            CreditOp::Increment => "increment",
            CreditOp::Decrement => "decrement",
        }
    }
}

/// A change to a key's remaining credits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CreditChange {
    /// What to do.
    pub op: CreditOp,
    /// With how much.
    pub value: u64,
}

impl CreditChange {
    /// The credits after this change, as of `now`; `Err` with what remains
    /// when it would go below zero or above [`keymint_domain::MAX_CREDITS`].
    pub fn apply(self, credits: Credits, now: DateTime<Utc>) -> Result<Credits, CreditChangeRefusal> {
        let current = credits.as_of(now);
        let remaining = match self.op {
            CreditOp::Set => Some(self.value),
            CreditOp::Increment => current.remaining().checked_add(self.value),
            CreditOp::Decrement => current.remaining().checked_sub(self.value),
        };
        match remaining {
            Some(remaining) if remaining <= keymint_domain::MAX_CREDITS => {
                Ok(Credits::from_parts(remaining, current.refill(), current.period()))
            }
            Some(_) | None if self.op == CreditOp::Decrement => {
                Err(CreditChangeRefusal::BelowZero(current.remaining()))
            }
            _ => Err(CreditChangeRefusal::AboveMaximum(current.remaining())),
        }
    }
}

/// Why a credit change was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CreditChangeRefusal {
    /// Decrementing would go below zero; this many remain.
    BelowZero(u64),
    /// The result would exceed the maximum; this many remain.
    AboveMaximum(u64),
}

/// A client's idempotency key for a change, with a fingerprint of the request
/// it was first used with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Idempotency {
    /// The header's value.
    pub key: String,
    /// What the request asked (a retry must ask the same).
    pub fingerprint: String,
    /// Answers older than this are forgotten.
    pub not_before: DateTime<Utc>,
}

impl Idempotency {
    /// What an answer remembered under this key (`credits`, given at `at` to
    /// the request fingerprinted `request`) means now: the same answer again,
    /// a refusal when it was another request, or `None` when it is older than
    /// the window and forgotten. Both storage adapters decide by this.
    pub fn recall(&self, request: &str, credits: Credits, at: DateTime<Utc>) -> Option<CreditChangeOutcome> {
        (at >= self.not_before).then(|| {
            if request == self.fingerprint {
                CreditChangeOutcome::Replayed(credits)
            } else {
                CreditChangeOutcome::IdempotencyMismatch
            }
        })
    }
}

/// What a credit change did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CreditChangeOutcome {
    /// Applied now: the credits after it.
    Applied(Credits),
    /// Applied earlier under the same idempotency key: the credits it left then.
    Replayed(Credits),
    /// The idempotency key was used for a different request.
    IdempotencyMismatch,
    /// No such key in the organisation.
    NotFound,
    /// The key has unlimited use: no credits to change.
    Unlimited,
    /// Refused; nothing changed.
    Refused(CreditChangeRefusal),
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;

    #[test]
    fn an_answer_is_recalled_for_the_same_request_within_the_window_only() {
        let now = Utc::now();
        let idempotency = Idempotency {
            key: "order-1".into(),
            fingerprint: "credits k increment 5".into(),
            not_before: now - Duration::hours(24),
        };
        let credits = Credits::from_parts(15, None, now);
        assert_eq!(
            idempotency.recall("credits k increment 5", credits, now - Duration::hours(23)),
            Some(CreditChangeOutcome::Replayed(credits))
        );
        assert_eq!(
            idempotency.recall("credits k decrement 5", credits, now),
            Some(CreditChangeOutcome::IdempotencyMismatch)
        );
        assert_eq!(
            idempotency.recall("credits k increment 5", credits, now - Duration::hours(25)),
            None,
            "forgotten after the window"
        );
    }
}
