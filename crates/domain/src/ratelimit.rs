//! A key's own rate limits: named budgets of `limit` uses per window.
//!
//! Windows are fixed and aligned to the Unix epoch: a limit of 10 per second
//! allows 10 uses in each whole second, the count resetting at the next
//! multiple of the duration. Fixed windows can be counted exactly across
//! processes with one number per (key, limit, window), which a sliding log
//! cannot; the price is that up to twice the limit may land within one
//! duration straddling a boundary.

use chrono::{DateTime, Duration, Utc};

/// The most limits one key has.
pub const MAX_RATE_LIMITS: usize = 5;
/// The most characters in a limit's name.
pub const MAX_RATE_LIMIT_NAME_CHARS: usize = 64;
/// The shortest window, in milliseconds.
pub const MIN_WINDOW_MS: u64 = 1_000;
/// The longest window (30 days), in milliseconds.
pub const MAX_WINDOW_MS: u64 = 30 * 24 * 60 * 60 * 1_000;
/// The largest limit.
pub const MAX_LIMIT: u64 = 1_000_000_000;

/// One limit: at most `limit` uses per window of `duration_ms`. An
/// `auto_apply` limit applies to every verification; the others only when a
/// verification names them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RateLimit {
    name: String,
    limit: u64,
    duration_ms: u64,
    auto_apply: bool,
}

/// Why a rate limit, or a key's set of them, was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RateLimitError {
    /// A name that is empty, too long, or has characters outside `[A-Za-z0-9_.:-]`.
    #[error("name must be 1 to {MAX_RATE_LIMIT_NAME_CHARS} characters of letters, digits and _ . : -")]
    InvalidName,
    /// A limit of 0 or above [`MAX_LIMIT`].
    #[error("limit must be from 1 to {MAX_LIMIT}")]
    LimitOutOfRange,
    /// A window outside [`MIN_WINDOW_MS`]–[`MAX_WINDOW_MS`].
    #[error("duration_ms must be from {MIN_WINDOW_MS} (1 second) to {MAX_WINDOW_MS} (30 days)")]
    DurationOutOfRange,
    /// More than [`MAX_RATE_LIMITS`] limits.
    #[error("a key may have at most {MAX_RATE_LIMITS} rate limits, got {0}")]
    TooMany(usize),
    /// Two limits with one name.
    #[error("rate limit names must be unique; '{0}' is repeated")]
    DuplicateName(String),
}

impl RateLimit {
    /// Checks each rule.
    pub fn new(
        name: impl Into<String>,
        limit: u64,
        duration_ms: u64,
        auto_apply: bool,
    ) -> Result<Self, RateLimitError> {
        let name = name.into();
        let valid_name = !name.is_empty()
            && name.len() <= MAX_RATE_LIMIT_NAME_CHARS
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b':' | b'-'));
        if !valid_name {
            return Err(RateLimitError::InvalidName);
        }
        if limit == 0 || limit > MAX_LIMIT {
            return Err(RateLimitError::LimitOutOfRange);
        }
        if !(MIN_WINDOW_MS..=MAX_WINDOW_MS).contains(&duration_ms) {
            return Err(RateLimitError::DurationOutOfRange);
        }
        Ok(Self {
            name,
            limit,
            duration_ms,
            auto_apply,
        })
    }

    /// Its name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Uses allowed per window.
    pub fn limit(&self) -> u64 {
        self.limit
    }

    /// The window, in milliseconds.
    pub fn duration_ms(&self) -> u64 {
        self.duration_ms
    }

    /// Whether it applies to every verification.
    pub fn auto_apply(&self) -> bool {
        self.auto_apply
    }

    /// The window containing `now`.
    pub fn window(&self, now: DateTime<Utc>) -> Window {
        Window::containing(now, self.duration_ms)
    }
}

/// A fixed window: `[start, reset)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Window {
    /// Its first instant.
    pub start: DateTime<Utc>,
    /// Its end, when the count starts over.
    pub reset: DateTime<Utc>,
}

impl Window {
    /// The window of `duration_ms` (at least 1) containing `now`, aligned to
    /// the Unix epoch so every process computes the same one.
    pub fn containing(now: DateTime<Utc>, duration_ms: u64) -> Self {
        let duration = i64::try_from(duration_ms.max(1)).unwrap_or(i64::MAX);
        let start_ms = now.timestamp_millis().div_euclid(duration) * duration;
        let start = DateTime::from_timestamp_millis(start_ms).unwrap_or(now);
        Self {
            start,
            reset: start + Duration::milliseconds(duration),
        }
    }
}

/// A key's limits: at most [`MAX_RATE_LIMITS`], names unique, in order given.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RateLimits(Vec<RateLimit>);

impl RateLimits {
    /// Checks the count and that names are unique.
    pub fn new(limits: Vec<RateLimit>) -> Result<Self, RateLimitError> {
        if limits.len() > MAX_RATE_LIMITS {
            return Err(RateLimitError::TooMany(limits.len()));
        }
        for (i, limit) in limits.iter().enumerate() {
            if limits[..i].iter().any(|earlier| earlier.name == limit.name) {
                return Err(RateLimitError::DuplicateName(limit.name.clone()));
            }
        }
        Ok(Self(limits))
    }

    /// The limits, in order.
    pub fn iter(&self) -> impl Iterator<Item = &RateLimit> {
        self.0.iter()
    }

    /// The limit called `name`.
    pub fn get(&self, name: &str) -> Option<&RateLimit> {
        self.0.iter().find(|limit| limit.name == name)
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn each_rule_is_checked() {
        assert!(RateLimit::new("per-second", 10, 1_000, true).is_ok());
        assert!(RateLimit::new("monthly", 1, MAX_WINDOW_MS, false).is_ok());
        assert_eq!(RateLimit::new("", 1, 1_000, true), Err(RateLimitError::InvalidName));
        assert_eq!(RateLimit::new("a b", 1, 1_000, true), Err(RateLimitError::InvalidName));
        assert_eq!(
            RateLimit::new("x".repeat(65), 1, 1_000, true),
            Err(RateLimitError::InvalidName)
        );
        assert_eq!(
            RateLimit::new("a", 0, 1_000, true),
            Err(RateLimitError::LimitOutOfRange)
        );
        assert_eq!(
            RateLimit::new("a", 1, 999, true),
            Err(RateLimitError::DurationOutOfRange)
        );
        assert_eq!(
            RateLimit::new("a", 1, MAX_WINDOW_MS + 1, true),
            Err(RateLimitError::DurationOutOfRange)
        );
        let limit = |name: &str| RateLimit::new(name, 1, 1_000, true).unwrap();
        assert_eq!(
            RateLimits::new(vec![limit("a"), limit("b"), limit("a")]),
            Err(RateLimitError::DuplicateName("a".into()))
        );
        assert_eq!(
            RateLimits::new((0..6).map(|i| limit(&format!("l{i}"))).collect()),
            Err(RateLimitError::TooMany(6))
        );
        let limits = RateLimits::new(vec![limit("a"), limit("b")]).unwrap();
        assert_eq!(limits.get("b").map(RateLimit::name), Some("b"));
    }

    #[test]
    fn windows_align_to_the_epoch() {
        let now = DateTime::from_timestamp_millis(1_764_000_123_456).unwrap();
        let window = Window::containing(now, 1_000);
        assert_eq!(window.start.timestamp_millis(), 1_764_000_123_000);
        assert_eq!(window.reset.timestamp_millis(), 1_764_000_124_000);
    }

    proptest! {
        #[test]
        fn a_window_contains_its_instant_and_every_instant_in_it_agrees(
            ms in 0_i64..4_102_444_800_000,
            duration in MIN_WINDOW_MS..=MAX_WINDOW_MS,
            offset in 0_u64..MAX_WINDOW_MS,
        ) {
            let now = DateTime::from_timestamp_millis(ms).unwrap();
            let window = Window::containing(now, duration);
            prop_assert!(window.start <= now && now < window.reset);
            prop_assert_eq!((window.reset - window.start).num_milliseconds(), duration as i64);
            let other = window.start + Duration::milliseconds((offset % duration) as i64);
            prop_assert_eq!(Window::containing(other, duration), window);
        }
    }
}
