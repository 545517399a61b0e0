//! Verification counts in `verification_buckets`: each flush adds its counts
//! to the minute, hour and day rows they fall in (`count = count + n`), so
//! processes sharing a database add up exactly and no rollup job has to run;
//! old rows are pruned by age.

use std::collections::HashMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use keymint_application::{AnalyticsQuery, AnalyticsRow, AnalyticsStore, BucketCount, RepositoryError, StoredBucket};
use keymint_domain::{Granularity, KeyId, OrgId, OwnerId, TagSet, VerificationOutcome};
use sea_orm::{ConnectionTrait, DatabaseBackend, FromQueryResult, Statement, TransactionTrait, Value};
use uuid::Uuid;

use super::repository::SqlApiKeyRepository;

/// Rows per INSERT: 9 values each, well under both databases' parameter limits.
const INSERT_CHUNK: usize = 500;

/// The most rows one query reads when tags are grouped or filtered in memory
/// (past it the query is answered as too large, asking for a coarser one).
const MAX_TAGGED_ROWS: usize = 200_000;

/// A row's identity: everything but its count and credits.
type RowKey = (String, &'static str, i64, String, &'static str, String, String);

fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Placeholders `first..first+n` in the backend's syntax.
fn placeholders(backend: DatabaseBackend, first: usize, n: usize) -> String {
    (first..first + n)
        .map(|i| match backend {
            DatabaseBackend::Postgres => format!("${i}"),
            _ => "?".to_owned(),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

#[derive(Debug, FromQueryResult)]
struct Grouped {
    bucket_start: i64,
    key_id: Option<String>,
    owner_id: Option<String>,
    outcome: Option<String>,
    tags: Option<String>,
    count: i64,
    spent_credits: i64,
}

impl SqlApiKeyRepository {
    async fn insert_rows(&self, rows: &HashMap<RowKey, (u64, u64)>) -> Result<(), RepositoryError> {
        let backend = self.db().write.get_database_backend();
        let rows: Vec<(&RowKey, &(u64, u64))> = rows.iter().collect();
        let txn = self.db().write.begin().await.map_err(|e| self.db().classify(e))?;
        for chunk in rows.chunks(INSERT_CHUNK) {
            let mut tuples = Vec::with_capacity(chunk.len());
            let mut values: Vec<Value> = Vec::with_capacity(chunk.len() * 9);
            for ((org, granularity, start, key, outcome, owner, tags), (count, spent)) in chunk {
                tuples.push(format!("({})", placeholders(backend, values.len() + 1, 9)));
                values.extend([
                    org.clone().into(),
                    (*granularity).into(),
                    (*start).into(),
                    key.clone().into(),
                    (*outcome).into(),
                    owner.clone().into(),
                    tags.clone().into(),
                    to_i64(*count).into(),
                    to_i64(*spent).into(),
                ]);
            }
            let sql = format!(
                "INSERT INTO verification_buckets \
                 (org_id, granularity, bucket_start, key_id, outcome, owner_id, tags, count, spent_credits) \
                 VALUES {} ON CONFLICT (org_id, granularity, bucket_start, key_id, outcome, owner_id, tags) \
                 DO UPDATE SET count = verification_buckets.count + excluded.count, \
                 spent_credits = verification_buckets.spent_credits + excluded.spent_credits",
                tuples.join(", ")
            );
            txn.execute(Statement::from_sql_and_values(backend, sql, values))
                .await
                .map_err(|e| self.db().classify(e))?;
        }
        txn.commit().await.map_err(|e| self.db().classify(e))
    }
}

#[async_trait]
impl AnalyticsStore for SqlApiKeyRepository {
    async fn add_counts(&self, counts: &[BucketCount]) -> Result<(), RepositoryError> {
        // One row per bucket of each granularity: a flush's minutes of one
        // hour are one hour row (PostgreSQL refuses a statement that updates
        // a row twice).
        let mut rows: HashMap<RowKey, (u64, u64)> = HashMap::new();
        for count in counts {
            for granularity in Granularity::ALL {
                let key = (
                    count.org_id.to_string(),
                    granularity.as_str(),
                    granularity.bucket_of(count.minute).timestamp(),
                    count.key_id.to_string(),
                    count.outcome.as_str(),
                    count
                        .owner_id
                        .as_ref()
                        .map(|owner| owner.as_str().to_owned())
                        .unwrap_or_default(),
                    count.tags.encode(),
                );
                let entry = rows.entry(key).or_default();
                entry.0 += count.count;
                entry.1 += count.spent_credits;
            }
        }
        self.insert_rows(&rows).await
    }

    async fn query(&self, query: &AnalyticsQuery) -> Result<Vec<AnalyticsRow>, RepositoryError> {
        let backend = self.db().read.get_database_backend();
        let by = query.group_by;
        let mut values: Vec<Value> = vec![
            query.org_id.to_string().into(),
            query.granularity.as_str().into(),
            query.from.timestamp().into(),
            query.to.timestamp().into(),
        ];
        let mut sql_where = format!(
            "org_id = {} AND granularity = {} AND bucket_start >= {} AND bucket_start < {}",
            placeholders(backend, 1, 1),
            placeholders(backend, 2, 1),
            placeholders(backend, 3, 1),
            placeholders(backend, 4, 1)
        );
        let mut filter = |column: &str, given: Vec<Value>, values: &mut Vec<Value>| {
            if given.is_empty() {
                return;
            }
            let list = placeholders(backend, values.len() + 1, given.len());
            sql_where.push_str(&format!(" AND {column} IN ({list})"));
            values.extend(given);
        };
        filter(
            "key_id",
            query.key_ids.iter().map(|id| id.to_string().into()).collect(),
            &mut values,
        );
        filter(
            "owner_id",
            query.owner_ids.iter().map(|owner| owner.as_str().into()).collect(),
            &mut values,
        );
        filter(
            "outcome",
            query.outcomes.iter().map(|outcome| outcome.as_str().into()).collect(),
            &mut values,
        );
        let column = |wanted: bool, name: &'static str| if wanted { name } else { "NULL" };
        let dims = [
            ("key_id", by.key_id),
            ("owner_id", by.owner_id),
            ("outcome", by.outcome),
            ("tags", query.reads_tags()),
        ];
        let group: Vec<&str> = std::iter::once("bucket_start")
            .chain(dims.iter().filter(|(_, wanted)| *wanted).map(|(name, _)| *name))
            .collect();
        let cap = if query.reads_tags() {
            MAX_TAGGED_ROWS
        } else {
            query.limit
        };
        let sql = format!(
            "SELECT bucket_start, {} AS key_id, {} AS owner_id, {} AS outcome, {} AS tags, \
             CAST(SUM(count) AS BIGINT) AS count, CAST(SUM(spent_credits) AS BIGINT) AS spent_credits \
             FROM verification_buckets WHERE {sql_where} GROUP BY {} ORDER BY {} LIMIT {}",
            column(by.key_id, "key_id"),
            column(by.owner_id, "owner_id"),
            column(by.outcome, "outcome"),
            column(query.reads_tags(), "tags"),
            group.join(", "),
            group.join(", "),
            cap + 1
        );
        let rows = Grouped::find_by_statement(Statement::from_sql_and_values(backend, sql, values))
            .all(&self.db().read)
            .await
            .map_err(|e| self.db().classify(e))?;
        if query.reads_tags() && rows.len() > MAX_TAGGED_ROWS {
            // Too much to group in memory: answered as a full page, which the
            // use case refuses as too large.
            return Ok(vec![
                AnalyticsRow {
                    time: query.from,
                    key_id: None,
                    owner_id: None,
                    tag: None,
                    outcome: None,
                    count: 0,
                    spent_credits: 0,
                };
                query.limit
            ]);
        }
        let buckets = rows
            .into_iter()
            .map(|row| {
                let unexpected =
                    |what: &str| RepositoryError::Unexpected(anyhow::anyhow!("a stored {what} is not valid"));
                Ok(StoredBucket {
                    time: DateTime::from_timestamp(row.bucket_start, 0).ok_or_else(|| unexpected("bucket start"))?,
                    key_id: row
                        .key_id
                        .map(|id| {
                            Uuid::parse_str(&id)
                                .map(KeyId::from_uuid)
                                .map_err(|_| unexpected("key id"))
                        })
                        .transpose()?,
                    owner_id: row
                        .owner_id
                        .map(|owner| (!owner.is_empty()).then(|| OwnerId::restore(owner))),
                    outcome: row
                        .outcome
                        .map(|outcome| {
                            outcome
                                .parse::<VerificationOutcome>()
                                .map_err(|_| unexpected("outcome"))
                        })
                        .transpose()?,
                    tags: match row.tags {
                        Some(tags) => TagSet::decode(&tags).ok_or_else(|| unexpected("tag set"))?,
                        None => TagSet::empty(),
                    },
                    count: u64::try_from(row.count).unwrap_or_default(),
                    spent_credits: u64::try_from(row.spent_credits).unwrap_or_default(),
                })
            })
            .collect::<Result<Vec<_>, RepositoryError>>()?;
        Ok(query.group(buckets))
    }

    async fn counts_since(
        &self,
        org_id: OrgId,
        keys: &[KeyId],
        since: DateTime<Utc>,
    ) -> Result<Vec<(KeyId, u64)>, RepositoryError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        #[derive(FromQueryResult)]
        struct Total {
            key_id: String,
            count: i64,
        }
        let backend = self.db().read.get_database_backend();
        let mut values: Vec<Value> = vec![org_id.to_string().into(), since.timestamp().into()];
        let list = placeholders(backend, 3, keys.len());
        values.extend(keys.iter().map(|id| Value::from(id.to_string())));
        let sql = format!(
            "SELECT key_id, CAST(SUM(count) AS BIGINT) AS count FROM verification_buckets \
             WHERE org_id = {} AND granularity = 'hour' AND bucket_start >= {} AND key_id IN ({list}) \
             GROUP BY key_id",
            placeholders(backend, 1, 1),
            placeholders(backend, 2, 1),
        );
        let totals = Total::find_by_statement(Statement::from_sql_and_values(backend, sql, values))
            .all(&self.db().read)
            .await
            .map_err(|e| self.db().classify(e))?;
        Ok(totals
            .into_iter()
            .filter_map(|total| {
                let id = Uuid::parse_str(&total.key_id).ok()?;
                Some((KeyId::from_uuid(id), u64::try_from(total.count).unwrap_or_default()))
            })
            .collect())
    }

    async fn prune_buckets(&self, cutoffs: &[(Granularity, DateTime<Utc>)]) -> Result<u64, RepositoryError> {
        let backend = self.db().write.get_database_backend();
        let mut deleted = 0;
        for (granularity, cutoff) in cutoffs {
            let sql = format!(
                "DELETE FROM verification_buckets WHERE granularity = {} AND bucket_start < {}",
                placeholders(backend, 1, 1),
                placeholders(backend, 2, 1)
            );
            let values: Vec<Value> = vec![granularity.as_str().into(), cutoff.timestamp().into()];
            let done = self
                .db()
                .write
                .execute(Statement::from_sql_and_values(backend, sql, values))
                .await
                .map_err(|e| self.db().classify(e))?;
            deleted += done.rows_affected();
        }
        Ok(deleted)
    }
}
