//! Failure budgets: how many failed verifications are answered with a hash.

use std::net::IpAddr;

use chrono::{DateTime, Utc};
use keymint_domain::LookupId;

/// Bounds the argon2 work that failed verifications can make the service do,
/// without letting anyone's failures lock out a key's rightful users.
///
/// An attempt is *reserved* before any storage read or hashing and counts as a
/// failure unless it is *refunded* because the presented secret was right, so
/// concurrent attempts can never overshoot a budget. Budgets belong to the
/// client: one per client over all keys, and one per client on each key. The
/// lookup id alone is public, so a budget keyed by it would let anyone lock a
/// key out for everyone; what bounds a botnet of many clients is the hasher's
/// global permits, not this port.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
pub trait FailureLimiter: Send + Sync {
    /// Reserves one attempt by `client` on `lookup_id` at `now`. `false` when the
    /// client is over one of its budgets: the attempt must then be refused
    /// without reading storage or hashing.
    fn try_reserve(&self, lookup_id: &LookupId, client: Option<IpAddr>, now: DateTime<Utc>) -> bool;
    /// Gives back the attempt reserved at `reserved_at`: its secret was right.
    fn refund(&self, lookup_id: &LookupId, client: Option<IpAddr>, reserved_at: DateTime<Utc>);
}

/// A limiter that never limits.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoFailureLimiter;

impl FailureLimiter for NoFailureLimiter {
    fn try_reserve(&self, _: &LookupId, _: Option<IpAddr>, _: DateTime<Utc>) -> bool {
        true
    }
    fn refund(&self, _: &LookupId, _: Option<IpAddr>, _: DateTime<Utc>) {}
}
