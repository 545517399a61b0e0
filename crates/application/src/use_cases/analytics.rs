//! Usage analytics for an organisation: how its keys' verifications went,
//! over time, by key, owner, tag and outcome; and the retention of the counts.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use keymint_domain::{Granularity, KeyId, OrgId, OwnerId, VerificationOutcome};

use crate::{
    Actor, AnalyticsQuery, AnalyticsRow, AnalyticsStore, Clock, GroupBy, MissingPermission, Permission, RepositoryError,
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
    /// The bucket width (default: hour).
    pub granularity: Option<Granularity>,
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

/// An answer: the range as decided, and its rows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AnalyticsAnswer {
    /// The bucket width.
    pub granularity: Granularity,
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
    /// More rows than [`MAX_ANALYTICS_ROWS`].
    #[error("the answer has more than {MAX_ANALYTICS_ROWS} rows; ask for a coarser granularity, a shorter range or fewer groups")]
    TooManyRows,
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
        let granularity = request.granularity.unwrap_or(Granularity::Hour);
        let to = request.to.unwrap_or_else(|| self.clock.now());
        let from = request.from.unwrap_or(to - Duration::hours(24));
        if from >= to {
            return Err(AnalyticsError::EmptyRange);
        }
        if to - from > granularity.max_range() {
            return Err(AnalyticsError::RangeTooLong(granularity));
        }
        // The bucket `from` falls in is the first one answered, whole.
        let from = granularity.bucket_of(from);
        let query = AnalyticsQuery {
            org_id: actor.org_id(),
            granularity,
            from,
            to,
            key_ids: request.key_ids,
            owner_ids: request.owner_ids,
            tags: request.tags,
            outcomes: request.outcomes,
            group_by: request.group_by,
            limit: MAX_ANALYTICS_ROWS + 1,
        };
        let rows = self.store.query(&query).await?;
        if rows.len() > MAX_ANALYTICS_ROWS {
            return Err(AnalyticsError::TooManyRows);
        }
        Ok(AnalyticsAnswer {
            granularity,
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

    /// Deletes the buckets older than `retention`; returns how many.
    pub async fn prune(&self, retention: Retention) -> Result<u64, RepositoryError> {
        let now = self.clock.now();
        self.store
            .prune_buckets(&[
                (Granularity::Minute, now - retention.minute),
                (Granularity::Hour, now - retention.hour),
                (Granularity::Day, now - retention.day),
            ])
            .await
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
            Err(AnalyticsError::TooManyRows)
        ));
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
