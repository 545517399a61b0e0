//! Key usage (`last_used_at`) as the hot path reports it.

use chrono::{DateTime, Utc};
use keymint_domain::KeyId;

/// Notes that keys were used, for `last_used_at`. Implementations coalesce: a
/// call is cheap and does not write storage itself.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
pub trait UsageTracker: Send + Sync {
    /// Key `id` verified successfully at `at`.
    fn record(&self, id: KeyId, at: DateTime<Utc>);
}

/// A tracker that records nothing.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoUsageTracker;

impl UsageTracker for NoUsageTracker {
    fn record(&self, _: KeyId, _: DateTime<Utc>) {}
}
