//! Verification counts in memory, per minute, hour and day (as
//! `sql/analytics.rs`).

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use keymint_application::{AnalyticsQuery, AnalyticsRow, AnalyticsStore, BucketCount, RepositoryError, StoredBucket};
use keymint_domain::{Granularity, KeyId, OrgId};

use super::{BucketKey, InMemoryApiKeyRepository};

#[async_trait]
impl AnalyticsStore for InMemoryApiKeyRepository {
    async fn add_counts(&self, counts: &[BucketCount]) -> Result<(), RepositoryError> {
        let mut state = self.write();
        for count in counts {
            for granularity in Granularity::ALL {
                let key = BucketKey {
                    granularity,
                    start: granularity.bucket_of(count.minute),
                    org_id: count.org_id,
                    key_id: count.key_id,
                    owner_id: count.owner_id.clone(),
                    outcome: count.outcome,
                    tags: count.tags.clone(),
                };
                let entry = state.analytics.entry(key).or_default();
                entry.0 += count.count;
                entry.1 += count.spent_credits;
            }
        }
        Ok(())
    }

    async fn query(&self, query: &AnalyticsQuery) -> Result<Vec<AnalyticsRow>, RepositoryError> {
        let state = self.read();
        let buckets = state
            .analytics
            .iter()
            .filter(|(key, _)| {
                key.granularity == query.granularity
                    && key.org_id == query.org_id
                    && key.start >= query.from
                    && key.start < query.to
                    && query.admits(key.key_id, key.owner_id.as_ref(), key.outcome)
            })
            .map(|(key, (count, spent_credits))| StoredBucket {
                time: key.start,
                key_id: Some(key.key_id),
                owner_id: Some(key.owner_id.clone()),
                outcome: Some(key.outcome),
                tags: key.tags.clone(),
                count: *count,
                spent_credits: *spent_credits,
            });
        Ok(query.group(buckets))
    }

    async fn counts_since(
        &self,
        org_id: OrgId,
        keys: &[KeyId],
        since: DateTime<Utc>,
    ) -> Result<Vec<(KeyId, u64)>, RepositoryError> {
        let state = self.read();
        let mut totals: std::collections::HashMap<KeyId, u64> = std::collections::HashMap::new();
        for (key, (count, _)) in &state.analytics {
            if key.granularity == Granularity::Hour
                && key.org_id == org_id
                && key.start >= since
                && keys.contains(&key.key_id)
            {
                *totals.entry(key.key_id).or_default() += count;
            }
        }
        Ok(totals.into_iter().collect())
    }

    async fn prune_buckets(&self, cutoffs: &[(Granularity, DateTime<Utc>)]) -> Result<u64, RepositoryError> {
        let mut state = self.write();
        let before = state.analytics.len();
        state.analytics.retain(|key, _| {
            cutoffs
                .iter()
                .all(|(granularity, cutoff)| key.granularity != *granularity || key.start >= *cutoff)
        });
        Ok((before - state.analytics.len()) as u64)
    }

    async fn claim_prune(&self, now: DateTime<Utc>, every: Duration) -> Result<bool, RepositoryError> {
        let mut state = self.write();
        if state.pruned_at.is_some_and(|pruned| pruned > now - every) {
            return Ok(false);
        }
        state.pruned_at = Some(now);
        Ok(true)
    }
}
