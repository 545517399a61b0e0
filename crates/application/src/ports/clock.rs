use chrono::{DateTime, Utc};

/// The time, as a port so that tests can fix it.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
pub trait Clock: Send + Sync {
    /// Now, in UTC. Implementations SHOULD truncate to microseconds, the precision
    /// every supported database keeps, so a stored time reads back unchanged.
    fn now(&self) -> DateTime<Utc>;
}
