//! Failure budgets: how many failed verifications are answered with a hash.

use std::net::IpAddr;

use chrono::{DateTime, Utc};
use keymint_domain::LookupId;

/// Counts failed verifications so that a known (public) lookup id or a single
/// client cannot make the service burn argon2 CPU at will.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
pub trait FailureLimiter: Send + Sync {
    /// Whether attempts for `lookup_id` or from `client` are over their failure
    /// budget at `now` and must be refused without hashing.
    fn is_limited(&self, lookup_id: &LookupId, client: Option<IpAddr>, now: DateTime<Utc>) -> bool;
    /// Counts one failed verification.
    fn record_failure(&self, lookup_id: &LookupId, client: Option<IpAddr>, now: DateTime<Utc>);
}

/// A limiter that never limits.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoFailureLimiter;

impl FailureLimiter for NoFailureLimiter {
    fn is_limited(&self, _: &LookupId, _: Option<IpAddr>, _: DateTime<Utc>) -> bool {
        false
    }
    fn record_failure(&self, _: &LookupId, _: Option<IpAddr>, _: DateTime<Utc>) {}
}
