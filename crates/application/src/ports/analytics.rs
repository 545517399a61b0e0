//! Usage analytics: the hot path's counter, and the storage of the counts.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use keymint_domain::{Granularity, KeyId, OrgId, OwnerId, TagSet, VerificationOutcome};

use crate::RepositoryError;

/// One verification to count: the key it named and how it ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CountedVerification {
    /// The key's organisation.
    pub org_id: OrgId,
    /// The key.
    pub key_id: KeyId,
    /// The key's owner when it was verified (shared with the cached key).
    pub owner_id: Option<Arc<str>>,
    /// What the verification answered.
    pub outcome: VerificationOutcome,
    /// The tags the caller sent.
    pub tags: TagSet,
    /// Credits the verification took from the key.
    pub spent_credits: u64,
    /// When.
    pub at: DateTime<Utc>,
}

/// Counts verifications on the hot path. Implementations add in memory and
/// write in batches: a call is cheap and never waits for storage.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
pub trait VerificationCounter: Send + Sync {
    /// Counts one verification.
    fn count(&self, verification: CountedVerification);
}

/// A counter that counts nothing (analytics off).
#[derive(Clone, Copy, Debug, Default)]
pub struct NoVerificationCounter;

impl VerificationCounter for NoVerificationCounter {
    fn count(&self, _: CountedVerification) {}
}

/// The verifications one minute bucket holds: what a flush hands to storage.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BucketCount {
    /// The key's organisation.
    pub org_id: OrgId,
    /// The key.
    pub key_id: KeyId,
    /// The key's owner.
    pub owner_id: Option<OwnerId>,
    /// The verifications' outcome.
    pub outcome: VerificationOutcome,
    /// The minute (its start).
    pub minute: DateTime<Utc>,
    /// Their tags.
    pub tags: TagSet,
    /// How many.
    pub count: u64,
    /// Credits they spent.
    pub spent_credits: u64,
}

/// What to group an analytics answer by, besides time.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GroupBy {
    /// One row per key.
    pub key_id: bool,
    /// One row per owner.
    pub owner_id: bool,
    /// One row per tag: a verification with two tags counts in both rows, one
    /// with none in the row whose tag is `None`.
    pub tag: bool,
    /// One row per outcome.
    pub outcome: bool,
}

/// The order of an answer's rows.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum RowOrder {
    /// Time ascending, then the grouped fields.
    #[default]
    Time,
    /// The largest count first (ties: time, then the grouped fields): with a
    /// limit, the top rows.
    Count,
}

/// An analytics query, already checked (the range fits the granularity).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AnalyticsQuery {
    /// Whose verifications.
    pub org_id: OrgId,
    /// The width of the buckets read.
    pub granularity: Granularity,
    /// One row per group for the whole range (its `time` is `from`) instead
    /// of one per bucket.
    pub total: bool,
    /// The rows' order.
    pub order: RowOrder,
    /// From this bucket start, inclusive.
    pub from: DateTime<Utc>,
    /// To this instant, exclusive.
    pub to: DateTime<Utc>,
    /// Only these keys (empty: every key).
    pub key_ids: Vec<KeyId>,
    /// Only these owners (empty: every owner).
    pub owner_ids: Vec<OwnerId>,
    /// Only verifications carrying one of these tags (empty: any).
    pub tags: Vec<String>,
    /// Only these outcomes (empty: every outcome).
    pub outcomes: Vec<VerificationOutcome>,
    /// The grouping.
    pub group_by: GroupBy,
    /// Return at most this many rows (an adapter may stop reading after it).
    pub limit: usize,
}

/// One row of an analytics answer: a bucket and the grouped fields (`None`
/// where the query did not group by them).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AnalyticsRow {
    /// The bucket's start.
    pub time: DateTime<Utc>,
    /// The key, when grouped by key.
    pub key_id: Option<KeyId>,
    /// The owner, when grouped by owner (`Some(None)`: keys without one).
    pub owner_id: Option<Option<OwnerId>>,
    /// The tag, when grouped by tag (`Some(None)`: untagged verifications).
    pub tag: Option<Option<String>>,
    /// The outcome, when grouped by outcome.
    pub outcome: Option<VerificationOutcome>,
    /// Verifications.
    pub count: u64,
    /// Credits they spent.
    pub spent_credits: u64,
}

/// Where counts are kept: per minute, hour and day, each pruned after its
/// retention.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait AnalyticsStore: Send + Sync {
    /// Adds `counts` to their minute, hour and day buckets. Additive: counts
    /// written by several processes, or by several flushes, sum up.
    async fn add_counts(&self, counts: &[BucketCount]) -> Result<(), RepositoryError>;

    /// The rows of `query`, time ascending, empty buckets omitted.
    async fn query(&self, query: &AnalyticsQuery) -> Result<Vec<AnalyticsRow>, RepositoryError>;

    /// How many verifications each of `keys` (of `org_id`) had in the hour
    /// buckets from `since`; keys with none are left out.
    async fn counts_since(
        &self,
        org_id: OrgId,
        keys: &[KeyId],
        since: DateTime<Utc>,
    ) -> Result<Vec<(KeyId, u64)>, RepositoryError>;

    /// Deletes each granularity's buckets that start before its cutoff;
    /// returns how many were deleted.
    async fn prune_buckets(&self, cutoffs: &[(Granularity, DateTime<Utc>)]) -> Result<u64, RepositoryError>;

    /// Whether the caller should prune now: true when no one sharing this
    /// storage claimed a pruning since `now - every`, recording the claim
    /// atomically, so that of several processes one prunes per `every`, and a
    /// restart does not prune again early.
    async fn claim_prune(&self, now: DateTime<Utc>, every: Duration) -> Result<bool, RepositoryError>;
}

/// Buckets as storage read them, for [`AnalyticsQuery::group`]: already
/// filtered by key, owner, outcome and time; a field is `None` when the query
/// neither groups nor filters by it, so storage need not read it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredBucket {
    /// The bucket's start.
    pub time: DateTime<Utc>,
    /// The key.
    pub key_id: Option<KeyId>,
    /// The key's owner (`Some(None)`: none).
    pub owner_id: Option<Option<OwnerId>>,
    /// The outcome.
    pub outcome: Option<VerificationOutcome>,
    /// The tags (empty when not read).
    pub tags: TagSet,
    /// Verifications.
    pub count: u64,
    /// Credits they spent.
    pub spent_credits: u64,
}

type GroupKey = (
    DateTime<Utc>,
    Option<KeyId>,
    Option<Option<OwnerId>>,
    Option<Option<String>>,
    Option<VerificationOutcome>,
);

impl AnalyticsQuery {
    /// Every verification of `org_id` from `from` to `to` by `granularity`
    /// buckets, in time order, ungrouped, unfiltered, up to
    /// [`MAX_ANALYTICS_ROWS`](crate::MAX_ANALYTICS_ROWS) rows and one more (to
    /// tell a full answer from a cut one); set the fields to narrow it.
    pub fn new(org_id: OrgId, granularity: Granularity, from: DateTime<Utc>, to: DateTime<Utc>) -> Self {
        Self {
            org_id,
            granularity,
            total: false,
            order: RowOrder::Time,
            from,
            to,
            key_ids: Vec::new(),
            owner_ids: Vec::new(),
            tags: Vec::new(),
            outcomes: Vec::new(),
            group_by: GroupBy::default(),
            limit: crate::MAX_ANALYTICS_ROWS + 1,
        }
    }

    /// Whether storage must read the tags: the query groups or filters by them.
    pub fn reads_tags(&self) -> bool {
        self.group_by.tag || !self.tags.is_empty()
    }

    /// Whether a bucket of `key_id`, `owner_id` and `outcome` is one this
    /// query asks about (for adapters that filter in memory).
    pub fn admits(&self, key_id: KeyId, owner_id: Option<&OwnerId>, outcome: VerificationOutcome) -> bool {
        (self.key_ids.is_empty() || self.key_ids.contains(&key_id))
            && (self.owner_ids.is_empty() || owner_id.is_some_and(|owner| self.owner_ids.contains(owner)))
            && (self.outcomes.is_empty() || self.outcomes.contains(&outcome))
    }

    /// The answer from the buckets storage found (every adapter's last step,
    /// so that tags mean the same everywhere): filtered by tag, grouped, in
    /// the query's order, at most [`AnalyticsQuery::limit`] rows.
    pub fn group(&self, buckets: impl IntoIterator<Item = StoredBucket>) -> Vec<AnalyticsRow> {
        let mut rows: std::collections::BTreeMap<GroupKey, (u64, u64)> = std::collections::BTreeMap::new();
        let by = self.group_by;
        for bucket in buckets {
            if !self.tags.is_empty() && !self.tags.iter().any(|tag| bucket.tags.contains(tag)) {
                continue;
            }
            let time = if self.total {
                self.from
            } else {
                self.granularity.bucket_of(bucket.time)
            };
            let key_id = bucket.key_id.filter(|_| by.key_id);
            let owner_id = bucket.owner_id.filter(|_| by.owner_id);
            let outcome = bucket.outcome.filter(|_| by.outcome);
            let tags: Vec<Option<Option<String>>> = if !by.tag {
                vec![None]
            } else if bucket.tags.is_empty() {
                vec![Some(None)]
            } else {
                bucket.tags.iter().map(|tag| Some(Some(tag.to_owned()))).collect()
            };
            for tag in tags {
                let entry = rows.entry((time, key_id, owner_id.clone(), tag, outcome)).or_default();
                entry.0 += bucket.count;
                entry.1 += bucket.spent_credits;
            }
        }
        let mut rows: Vec<(GroupKey, (u64, u64))> = rows.into_iter().collect();
        if self.order == RowOrder::Count {
            // Stable: equal counts keep the time-then-fields order.
            rows.sort_by_key(|(_, (count, _))| std::cmp::Reverse(*count));
        }
        rows.into_iter()
            .take(self.limit)
            .map(
                |((time, key_id, owner_id, tag, outcome), (count, spent_credits))| AnalyticsRow {
                    time,
                    key_id,
                    owner_id,
                    tag,
                    outcome,
                    count,
                    spent_credits,
                },
            )
            .collect()
    }
}
