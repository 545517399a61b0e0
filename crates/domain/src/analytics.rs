//! Usage analytics: what a verification is counted as (its outcome and its
//! tags), the time buckets counts are kept in, and how far one query may reach.
//!
//! A verification that names a key is counted once, in the bucket of
//! (organisation, key, outcome, minute, tag set), with the credits it spent.
//! Counts are additive: buckets from several processes, or from several
//! flushes of one, add up to the exact total.

use std::fmt;

use chrono::{DateTime, Duration, DurationRound, Utc};

use crate::text::{check_visible_text, Lines, TextError};

/// The most tags one verification may carry.
pub const MAX_TAGS: usize = 10;

/// The most characters in one tag.
pub const MAX_TAG_CHARS: usize = 128;

/// Tags starting with this are Keymint's own; a caller's tag may not.
pub const RESERVED_TAG_PREFIX: &str = "keymint:";

/// The tag of the overflow bucket: verifications whose tag set arrived after a
/// key already had [`MAX_TAG_SETS_PER_KEY_MINUTE`] others in the same minute.
/// Counts stay exact; only which tags they carried is lost.
pub const OVERFLOW_TAG: &str = "keymint:overflow";

/// The most distinct tag sets one key is counted under in one minute (the
/// overflow bucket aside), so memory and storage stay bounded whatever
/// clients send.
pub const MAX_TAG_SETS_PER_KEY_MINUTE: usize = 32;

/// A label a verification is counted under (`path=/v1/charges`, `region=eu`):
/// 1–128 characters following the text rule ([`crate::text`]), not starting
/// with [`RESERVED_TAG_PREFIX`]. Never stored anywhere but in the counts.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Tag(String);

/// Why a tag was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TagError {
    /// No characters.
    #[error("a tag must have at least 1 character")]
    Empty,
    /// More than [`MAX_TAG_CHARS`].
    #[error("a tag must have at most {MAX_TAG_CHARS} characters, got {0}")]
    TooLong(usize),
    /// It starts with [`RESERVED_TAG_PREFIX`].
    #[error("a tag may not start with {RESERVED_TAG_PREFIX:?}: those are Keymint's own")]
    Reserved,
    /// It breaks the text rule.
    #[error("a tag {0}")]
    Text(#[from] TextError),
}

impl Tag {
    /// Checks `raw` against the rules.
    pub fn new(raw: impl Into<String>) -> Result<Self, TagError> {
        let raw = raw.into();
        let chars = raw.chars().count();
        if chars == 0 {
            return Err(TagError::Empty);
        }
        if chars > MAX_TAG_CHARS {
            return Err(TagError::TooLong(chars));
        }
        if raw.starts_with(RESERVED_TAG_PREFIX) {
            return Err(TagError::Reserved);
        }
        check_visible_text(&raw, Lines::Single)?;
        Ok(Self(raw))
    }

    /// The tag.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The tags one verification is counted under: at most [`MAX_TAGS`],
/// deduplicated and sorted, so `["b", "a", "a"]` and `["a", "b"]` are one
/// bucket.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TagSet(Vec<String>);

/// Why a tag list was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TagSetError {
    /// More than [`MAX_TAGS`] distinct tags.
    #[error("at most {MAX_TAGS} tags, got {0}")]
    TooMany(usize),
}

impl TagSet {
    /// No tags.
    pub fn empty() -> Self {
        Self::default()
    }

    /// The set of `tags`, refused when more than [`MAX_TAGS`] are distinct.
    pub fn new(tags: impl IntoIterator<Item = Tag>) -> Result<Self, TagSetError> {
        let mut tags: Vec<String> = tags.into_iter().map(|tag| tag.0).collect();
        tags.sort_unstable();
        tags.dedup();
        if tags.len() > MAX_TAGS {
            return Err(TagSetError::TooMany(tags.len()));
        }
        Ok(Self(tags))
    }

    /// The overflow bucket's set: [`OVERFLOW_TAG`] alone.
    pub fn overflow() -> Self {
        Self(vec![OVERFLOW_TAG.to_owned()])
    }

    /// Restores a set stored by [`TagSet::encode`], trusting it (only storage
    /// adapters call this).
    pub fn restore(tags: Vec<String>) -> Self {
        Self(tags)
    }

    /// Whether it holds no tag.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether `tag` is one of them.
    pub fn contains(&self, tag: &str) -> bool {
        self.0.binary_search_by(|held| held.as_str().cmp(tag)).is_ok()
    }

    /// The tags, sorted.
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(String::as_str)
    }

    /// The set as one canonical text, for storage: a JSON array of the
    /// sorted tags (`[]` for none). Equal sets encode equally.
    pub fn encode(&self) -> String {
        serde_json::Value::from(self.0.clone()).to_string()
    }

    /// The inverse of [`TagSet::encode`]; `None` for text it did not write.
    pub fn decode(text: &str) -> Option<Self> {
        let tags: Vec<String> = serde_json::from_str::<Vec<String>>(text).ok()?;
        Some(Self(tags))
    }
}

/// What a counted verification answered: every code but `NOT_FOUND` (no key
/// is named) and the anonymous `RATE_LIMITED` of a failure budget.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum VerificationOutcome {
    /// `VALID`.
    Valid,
    /// `REVOKED`.
    Revoked,
    /// `EXPIRED`.
    Expired,
    /// `INSUFFICIENT_PERMISSIONS`.
    InsufficientPermissions,
    /// `RATE_LIMITED` by one of the key's own rate limits.
    RateLimited,
    /// `USAGE_EXCEEDED`: the key's credits ran out.
    UsageExceeded,
}

/// A name that is no [`VerificationOutcome`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("an outcome is one of VALID, REVOKED, EXPIRED, INSUFFICIENT_PERMISSIONS, RATE_LIMITED, USAGE_EXCEEDED")]
pub struct UnknownOutcome;

impl VerificationOutcome {
    /// Every outcome, in the order answers list them.
    pub const ALL: [VerificationOutcome; 6] = [
        VerificationOutcome::Valid,
        VerificationOutcome::Revoked,
        VerificationOutcome::Expired,
        VerificationOutcome::InsufficientPermissions,
        VerificationOutcome::RateLimited,
        VerificationOutcome::UsageExceeded,
    ];

    /// The verification's code, as `POST …/verify` answers it.
    pub fn as_str(self) -> &'static str {
        match self {
            VerificationOutcome::Valid => "VALID",
            VerificationOutcome::Revoked => "REVOKED",
            VerificationOutcome::Expired => "EXPIRED",
            VerificationOutcome::InsufficientPermissions => "INSUFFICIENT_PERMISSIONS",
            VerificationOutcome::RateLimited => "RATE_LIMITED",
            VerificationOutcome::UsageExceeded => "USAGE_EXCEEDED",
        }
    }
}

impl std::str::FromStr for VerificationOutcome {
    type Err = UnknownOutcome;

    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|outcome| outcome.as_str() == raw)
            .ok_or(UnknownOutcome)
    }
}

/// The width of a bucket. Every count is kept per minute, per hour and per
/// day, each for its own retention.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Granularity {
    /// One minute.
    Minute,
    /// One hour.
    Hour,
    /// One UTC day.
    Day,
}

/// A name that is no [`Granularity`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("granularity is one of minute, hour, day")]
pub struct UnknownGranularity;

impl Granularity {
    /// Every granularity, finest first.
    pub const ALL: [Granularity; 3] = [Granularity::Minute, Granularity::Hour, Granularity::Day];

    /// Its name in queries and storage.
    pub fn as_str(self) -> &'static str {
        match self {
            Granularity::Minute => "minute",
            Granularity::Hour => "hour",
            Granularity::Day => "day",
        }
    }

    /// A bucket's width.
    pub fn width(self) -> Duration {
        match self {
            Granularity::Minute => Duration::minutes(1),
            Granularity::Hour => Duration::hours(1),
            Granularity::Day => Duration::days(1),
        }
    }

    /// The start of the bucket `at` falls in (UTC).
    pub fn bucket_of(self, at: DateTime<Utc>) -> DateTime<Utc> {
        at.duration_trunc(self.width()).unwrap_or(at)
    }

    /// The longest range one query may cover at this granularity: a day of
    /// minutes, 92 days of hours, two years of days. A longer range is
    /// refused, naming the granularity, so no query reads without bound.
    pub fn max_range(self) -> Duration {
        match self {
            Granularity::Minute => Duration::days(1),
            Granularity::Hour => Duration::days(92),
            Granularity::Day => Duration::days(732),
        }
    }
}

impl std::str::FromStr for Granularity {
    type Err = UnknownGranularity;

    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|granularity| granularity.as_str() == raw)
            .ok_or(UnknownGranularity)
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    #[test]
    fn tags_follow_the_text_rule_and_leave_keymint_s_own_prefix_alone() {
        assert_eq!(Tag::new("path=/v1/charges").unwrap().as_str(), "path=/v1/charges");
        assert_eq!(Tag::new(""), Err(TagError::Empty));
        assert_eq!(Tag::new("a".repeat(129)), Err(TagError::TooLong(129)));
        assert!(Tag::new("a".repeat(128)).is_ok());
        assert_eq!(Tag::new("keymint:overflow"), Err(TagError::Reserved));
        assert!(matches!(Tag::new("a\u{0}b"), Err(TagError::Text(_))));
        assert!(matches!(Tag::new("a\nb"), Err(TagError::Text(_))));
        assert!(matches!(Tag::new("  "), Err(TagError::Text(_))));
    }

    #[test]
    fn a_tag_set_is_sorted_and_deduplicated_and_encodes_canonically() {
        let tags = |names: &[&str]| TagSet::new(names.iter().map(|name| Tag::new(*name).unwrap()));
        let set = tags(&["region=eu", "path=/a", "region=eu"]).unwrap();
        assert_eq!(set, tags(&["path=/a", "region=eu"]).unwrap());
        assert_eq!(set.encode(), r#"["path=/a","region=eu"]"#);
        assert_eq!(TagSet::decode(&set.encode()), Some(set.clone()));
        assert!(set.contains("region=eu") && !set.contains("region"));
        assert_eq!(TagSet::empty().encode(), "[]");
        let eleven: Vec<String> = (0..11).map(|i| format!("t{i}")).collect();
        let eleven: Vec<&str> = eleven.iter().map(String::as_str).collect();
        assert_eq!(tags(&eleven), Err(TagSetError::TooMany(11)));
        assert!(tags(&eleven[..10]).is_ok());
        assert!(TagSet::overflow().contains(OVERFLOW_TAG));
    }

    #[test]
    fn outcomes_and_granularities_read_back_their_names() {
        for outcome in VerificationOutcome::ALL {
            assert_eq!(outcome.as_str().parse(), Ok(outcome));
        }
        assert_eq!("NOT_FOUND".parse::<VerificationOutcome>(), Err(UnknownOutcome));
        for granularity in Granularity::ALL {
            assert_eq!(granularity.as_str().parse(), Ok(granularity));
        }
        assert_eq!("week".parse::<Granularity>(), Err(UnknownGranularity));
    }

    #[test]
    fn buckets_start_on_utc_boundaries() {
        let at = Utc.with_ymd_and_hms(2026, 12, 4, 13, 47, 31).unwrap();
        assert_eq!(
            Granularity::Minute.bucket_of(at),
            Utc.with_ymd_and_hms(2026, 12, 4, 13, 47, 0).unwrap()
        );
        assert_eq!(
            Granularity::Hour.bucket_of(at),
            Utc.with_ymd_and_hms(2026, 12, 4, 13, 0, 0).unwrap()
        );
        assert_eq!(
            Granularity::Day.bucket_of(at),
            Utc.with_ymd_and_hms(2026, 12, 4, 0, 0, 0).unwrap()
        );
    }
}
