//! Usage analytics for an organisation: how its keys' verifications went,
//! over time, by key, owner, tag and outcome; and the retention of the counts.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use keymint_domain::{Granularity, KeyId, OrgId, OwnerId, VerificationOutcome};

use crate::{
    Actor, AnalyticsQuery, AnalyticsRow, AnalyticsStore, Clock, GroupBy, MissingPermission, Permission,
    RepositoryError, RowOrder,
};

/// The most rows one answer holds; a query that would return more is
/// refused, asking for a coarser one.
pub const MAX_ANALYTICS_ROWS: usize = 10_000;

/// What a caller asks: the range (default: the last 24 hours), the bucket
/// width, the filters and the grouping.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AnalyticsRequest {
    /// From (default: `to` minus 24 hours).
    pub from: Option<DateTime<Utc>>,
    /// To (default: now).
    pub to: Option<DateTime<Utc>>,
    /// The bucket width (default: hour); ignored when `total`.
    pub granularity: Option<Granularity>,
    /// One row per group for the whole range, read from hour buckets for a
    /// range of up to [`TOTAL_BY_HOUR`], from day buckets beyond.
    pub total: bool,
    /// The rows' order (default: time).
    pub order: RowOrder,
    /// At most this many rows (1 to [`MAX_ANALYTICS_ROWS`], the default):
    /// ordered by count, the first ones; by time, more is refused.
    pub limit: Option<usize>,
    /// Only these keys.
    pub key_ids: Vec<KeyId>,
    /// Only these owners.
    pub owner_ids: Vec<OwnerId>,
    /// Only verifications with one of these tags.
    pub tags: Vec<String>,
    /// Only these outcomes.
    pub outcomes: Vec<VerificationOutcome>,
    /// The grouping.
    pub group_by: GroupBy,
}

/// The longest range a total is read from hour buckets for (past it, from
/// day buckets: a month of 10 000 keys is 300 000 rows, not 7.2 million).
pub const TOTAL_BY_HOUR: Duration = Duration::days(7);

/// An answer: the range as decided, and its rows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AnalyticsAnswer {
    /// The width of the buckets read.
    pub granularity: Granularity,
    /// Whether each row is the whole range's total.
    pub total: bool,
    /// The first bucket's start.
    pub from: DateTime<Utc>,
    /// The end (exclusive).
    pub to: DateTime<Utc>,
    /// The non-empty buckets, time ascending.
    pub rows: Vec<AnalyticsRow>,
}

/// Why an analytics query was not answered.
#[derive(Debug, thiserror::Error)]
pub enum AnalyticsError {
    /// The caller may not read.
    #[error(transparent)]
    Forbidden(#[from] MissingPermission),
    /// `from` is not before `to`.
    #[error("from must be before to")]
    EmptyRange,
    /// The range is longer than the granularity allows.
    #[error("a {granularity} query covers at most {max_days} days; ask for a coarser granularity or a shorter range", granularity = .0.as_str(), max_days = .0.max_range().num_days())]
    RangeTooLong(Granularity),
    /// More rows than the limit, in time order.
    #[error("the answer has more than {0} rows; ask for a coarser granularity, a shorter range or fewer groups, or order by count for the largest")]
    TooManyRows(usize),
    /// Storage failed.
    #[error(transparent)]
    Storage(#[from] RepositoryError),
}

/// How long each granularity's buckets are kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Retention {
    /// Minute buckets.
    pub minute: Duration,
    /// Hour buckets.
    pub hour: Duration,
    /// Day buckets.
    pub day: Duration,
}

impl Default for Retention {
    fn default() -> Self {
        Self {
            minute: Duration::days(7),
            hour: Duration::days(90),
            day: Duration::days(730),
        }
    }
}

/// The analytics use case.
#[derive(Clone)]
pub struct Analytics {
    store: Arc<dyn AnalyticsStore>,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for Analytics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Analytics").finish_non_exhaustive()
    }
}

impl Analytics {
    /// Analytics over `store`.
    pub fn new(store: Arc<dyn AnalyticsStore>, clock: Arc<dyn Clock>) -> Self {
        Self { store, clock }
    }

    /// The actor's organisation's verifications, as `request` asks.
    pub async fn verifications(
        &self,
        actor: &Actor,
        request: AnalyticsRequest,
    ) -> Result<AnalyticsAnswer, AnalyticsError> {
        actor.authorize(Permission::Read)?;
        let to = request.to.unwrap_or_else(|| self.clock.now());
        let from = request.from.unwrap_or(to - Duration::hours(24));
        if from >= to {
            return Err(AnalyticsError::EmptyRange);
        }
        let granularity = match (request.total, request.granularity) {
            (true, _) if to - from <= TOTAL_BY_HOUR => Granularity::Hour,
            (true, _) => Granularity::Day,
            (false, granularity) => granularity.unwrap_or(Granularity::Hour),
        };
        if to - from > granularity.max_range() {
            return Err(AnalyticsError::RangeTooLong(granularity));
        }
        let limit = request.limit.unwrap_or(MAX_ANALYTICS_ROWS).clamp(1, MAX_ANALYTICS_ROWS);
        // The bucket `from` falls in is the first one answered, whole.
        let from = granularity.bucket_of(from);
        let query = AnalyticsQuery {
            org_id: actor.org_id(),
            granularity,
            total: request.total,
            order: request.order,
            from,
            to,
            key_ids: request.key_ids,
            owner_ids: request.owner_ids,
            tags: request.tags,
            outcomes: request.outcomes,
            group_by: request.group_by,
            // In time order one more, to tell a full answer from a cut one.
            limit: match request.order {
                RowOrder::Time => limit + 1,
                RowOrder::Count => limit,
            },
        };
        let rows = self.store.query(&query).await?;
        if rows.len() > limit {
            return Err(AnalyticsError::TooManyRows(limit));
        }
        Ok(AnalyticsAnswer {
            granularity,
            total: request.total,
            from,
            to,
            rows,
        })
    }

    /// Each of `keys`' verifications in the last 24 hours (as of the last
    /// flush, counted by the hour: up to an hour more than a day), for key
    /// reads; keys with none map to 0.
    pub async fn last_day(&self, org_id: OrgId, keys: &[KeyId]) -> Result<HashMap<KeyId, u64>, RepositoryError> {
        let since = Granularity::Hour.bucket_of(self.clock.now() - Duration::hours(24));
        let counts = self.store.counts_since(org_id, keys, since).await?;
        Ok(counts.into_iter().collect())
    }

    /// Deletes the buckets older than `retention` and returns how many, if
    /// no one sharing the storage did so within the last `every` (then
    /// `None`).
    pub async fn prune(&self, retention: Retention, every: Duration) -> Result<Option<u64>, RepositoryError> {
        let now = self.clock.now();
        if !self.store.claim_prune(now, every).await? {
            return Ok(None);
        }
        self.store
            .prune_buckets(&[
                (Granularity::Minute, now - retention.minute),
                (Granularity::Hour, now - retention.hour),
                (Granularity::Day, now - retention.day),
            ])
            .await
            .map(Some)
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;
    use crate::{MockAnalyticsStore, MockClock, Principal};

    fn at(hour: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 4, hour, 30, 0).unwrap()
    }

    fn analytics(store: MockAnalyticsStore) -> Analytics {
        let mut clock = MockClock::new();
        clock.expect_now().returning(|| at(12));
        Analytics::new(Arc::new(store), Arc::new(clock))
    }

    fn actor() -> Actor {
        Actor::new(&Principal::new(OrgId::from_uuid(uuid::Uuid::from_u128(1)), None), None)
    }

    #[tokio::test]
    async fn the_default_range_is_the_last_day_by_the_hour_from_a_whole_bucket() {
        let mut store = MockAnalyticsStore::new();
        store
            .expect_query()
            .withf(|query| {
                query.granularity == Granularity::Hour
                    && query.from == Utc.with_ymd_and_hms(2026, 12, 3, 12, 0, 0).unwrap()
                    && query.to == at(12)
                    && query.limit == MAX_ANALYTICS_ROWS + 1
            })
            .returning(|_| Ok(Vec::new()));
        let answer = analytics(store)
            .verifications(&actor(), AnalyticsRequest::default())
            .await
            .unwrap();
        assert_eq!(answer.granularity, Granularity::Hour);
        assert!(answer.rows.is_empty());
    }

    #[tokio::test]
    async fn ranges_too_long_for_their_granularity_or_empty_are_refused_before_storage() {
        let mut store = MockAnalyticsStore::new();
        store.expect_query().never();
        let analytics = analytics(store);
        let request = |from: DateTime<Utc>, granularity| AnalyticsRequest {
            from: Some(from),
            to: Some(at(12)),
            granularity: Some(granularity),
            ..AnalyticsRequest::default()
        };
        assert!(matches!(
            analytics
                .verifications(&actor(), request(at(12) - Duration::days(2), Granularity::Minute))
                .await,
            Err(AnalyticsError::RangeTooLong(Granularity::Minute))
        ));
        assert!(matches!(
            analytics
                .verifications(&actor(), request(at(12) - Duration::days(93), Granularity::Hour))
                .await,
            Err(AnalyticsError::RangeTooLong(Granularity::Hour))
        ));
        assert!(matches!(
            analytics
                .verifications(&actor(), request(at(13), Granularity::Hour))
                .await,
            Err(AnalyticsError::EmptyRange)
        ));
    }

    #[tokio::test]
    async fn more_rows_than_the_cap_is_refused() {
        let mut store = MockAnalyticsStore::new();
        store.expect_query().returning(|query| {
            Ok(vec![
                AnalyticsRow {
                    time: query.from,
                    key_id: None,
                    owner_id: None,
                    tag: None,
                    outcome: None,
                    count: 1,
                    spent_credits: 0,
                };
                query.limit
            ])
        });
        assert!(matches!(
            analytics(store)
                .verifications(&actor(), AnalyticsRequest::default())
                .await,
            Err(AnalyticsError::TooManyRows(MAX_ANALYTICS_ROWS))
        ));
    }

    #[tokio::test]
    async fn a_total_reads_hours_for_a_week_days_beyond_and_a_top_list_is_cut_not_refused() {
        let mut store = MockAnalyticsStore::new();
        store
            .expect_query()
            .withf(|query| {
                query.total
                    && query.granularity == Granularity::Hour
                    && query.from == Granularity::Hour.bucket_of(at(12) - Duration::days(7))
            })
            .times(1)
            .returning(|_| Ok(Vec::new()));
        store
            .expect_query()
            .withf(|query| query.total && query.granularity == Granularity::Day && query.order == RowOrder::Count)
            .times(1)
            .returning(|query| {
                assert_eq!(
                    query.limit, 10,
                    "ordered by count, the limit itself: more is not an error"
                );
                Ok(vec![
                    AnalyticsRow {
                        time: query.from,
                        key_id: None,
                        owner_id: None,
                        tag: None,
                        outcome: None,
                        count: 1,
                        spent_credits: 0,
                    };
                    10
                ])
            });
        let analytics = analytics(store);
        let week = AnalyticsRequest {
            from: Some(at(12) - Duration::days(7)),
            total: true,
            granularity: Some(Granularity::Minute),
            ..AnalyticsRequest::default()
        };
        let answer = analytics.verifications(&actor(), week).await.unwrap();
        assert!(answer.total);
        assert_eq!(
            answer.granularity,
            Granularity::Hour,
            "the granularity asked is not what a total reads"
        );
        let top = AnalyticsRequest {
            from: Some(at(12) - Duration::days(30)),
            total: true,
            order: RowOrder::Count,
            limit: Some(10),
            ..AnalyticsRequest::default()
        };
        let answer = analytics.verifications(&actor(), top).await.unwrap();
        assert_eq!((answer.granularity, answer.rows.len()), (Granularity::Day, 10));
        assert_eq!(answer.from, Granularity::Day.bucket_of(at(12) - Duration::days(30)));
    }

    #[tokio::test]
    async fn reading_needs_the_read_permission() {
        let mut store = MockAnalyticsStore::new();
        store.expect_query().never();
        let principal =
            Principal::new(OrgId::from_uuid(uuid::Uuid::from_u128(1)), None).with_permissions(Vec::<String>::new());
        let actor = Actor::new(&principal, None);
        assert!(matches!(
            analytics(store)
                .verifications(&actor, AnalyticsRequest::default())
                .await,
            Err(AnalyticsError::Forbidden(_))
        ));
    }
}
