//! Verification counts in `verification_buckets`: each flush adds its counts
//! to the minute, hour and day rows they fall in (`count = count + n`), so
//! processes sharing a database add up exactly and no rollup job has to run;
//! old rows are pruned by age. The same counts are summed per organisation
//! (`verification_totals`) and per key alone (`verification_key_counts`), so
//! that a question naming neither keys nor owners, or keys alone, reads those
//! fewer rows.

use std::collections::BTreeMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use keymint_application::{AnalyticsQuery, AnalyticsRow, AnalyticsStore, BucketCount, RepositoryError};
use keymint_domain::{Granularity, KeyId, OrgId};
use sea_orm::{ConnectionTrait, FromQueryResult, Statement, TransactionTrait, Value};
use uuid::Uuid;

use super::analytics_tables::{
    key_index_hint, placeholders, select_answer, statement_rows, to_i64, Grouped, KeyRow, KeySumRow, OrgRow, Upsert,
    KEY_ROWS, KEY_SUMS, MAX_TAGGED_ROWS, ORG_ROWS,
};
use super::repository::SqlApiKeyRepository;

impl SqlApiKeyRepository {
    /// Writes `rows` (each its identity's values, then count and credits) in
    /// statements of the sizes [`statement_rows`] gives, within `txn`. Rows come
    /// sorted: processes adding to the same rows lock them in one order, so
    /// PostgreSQL never finds two flushes waiting on each other.
    async fn upsert(
        &self,
        txn: &sea_orm::DatabaseTransaction,
        upsert: &Upsert,
        rows: impl ExactSizeIterator<Item = Vec<Value>>,
    ) -> Result<(), RepositoryError> {
        let backend = txn.get_database_backend();
        // Collected before the first await: the future may not hold the
        // callers' mapping closures across it (their borrowed lifetimes).
        let mut rows = rows.collect::<Vec<Vec<Value>>>().into_iter();
        while rows.len() > 0 {
            let taken = statement_rows(rows.len());
            let values: Vec<Value> = rows.by_ref().take(taken).flatten().collect();
            txn.execute(Statement::from_sql_and_values(
                backend,
                upsert.statement(backend, taken),
                values,
            ))
            .await
            .map_err(|e| self.db().classify(e))?;
        }
        Ok(())
    }
}

#[async_trait]
impl AnalyticsStore for SqlApiKeyRepository {
    async fn add_counts(&self, counts: &[BucketCount]) -> Result<(), RepositoryError> {
        // One row per bucket of each width, per key and per organisation: a
        // flush's minutes of one hour are one hour row (PostgreSQL refuses a
        // statement that updates a row twice). Ordered maps: see `upsert`.
        let mut by_key: BTreeMap<KeyRow, (u64, u64)> = BTreeMap::new();
        let mut by_org: BTreeMap<OrgRow, (u64, u64)> = BTreeMap::new();
        let mut key_sums: BTreeMap<KeySumRow, (u64, u64)> = BTreeMap::new();
        for count in counts {
            let org = count.org_id.to_string();
            let key = count.key_id.to_string();
            let owner = count
                .owner_id
                .as_ref()
                .map(|owner| owner.as_str().to_owned())
                .unwrap_or_default();
            let tags = count.tags.encode();
            for granularity in Granularity::ALL {
                let start = granularity.bucket_of(count.minute).timestamp();
                let outcome = count.outcome.as_str();
                for entry in [
                    by_key
                        .entry((
                            org.clone(),
                            granularity.as_str(),
                            start,
                            key.clone(),
                            outcome,
                            owner.clone(),
                            tags.clone(),
                        ))
                        .or_default(),
                    by_org
                        .entry((org.clone(), granularity.as_str(), start, outcome, tags.clone()))
                        .or_default(),
                    key_sums
                        .entry((org.clone(), granularity.as_str(), start, key.clone()))
                        .or_default(),
                ] {
                    entry.0 += count.count;
                    entry.1 += count.spent_credits;
                }
            }
        }
        let sums = |(count, spent): (u64, u64)| [Value::from(to_i64(count)), Value::from(to_i64(spent))];
        let txn = self.db().write.begin().await.map_err(|e| self.db().classify(e))?;
        self.upsert(
            &txn,
            &KEY_ROWS,
            by_key
                .into_iter()
                .map(|((org, width, start, key, outcome, owner, tags), totals)| {
                    let mut row: Vec<Value> = vec![
                        org.into(),
                        width.into(),
                        start.into(),
                        key.into(),
                        outcome.into(),
                        owner.into(),
                        tags.into(),
                    ];
                    row.extend(sums(totals));
                    row
                }),
        )
        .await?;
        self.upsert(
            &txn,
            &ORG_ROWS,
            by_org.into_iter().map(|((org, width, start, outcome, tags), totals)| {
                let mut row: Vec<Value> = vec![org.into(), width.into(), start.into(), outcome.into(), tags.into()];
                row.extend(sums(totals));
                row
            }),
        )
        .await?;
        self.upsert(
            &txn,
            &KEY_SUMS,
            key_sums.into_iter().map(|((org, width, start, key), totals)| {
                let mut row: Vec<Value> = vec![org.into(), width.into(), start.into(), key.into()];
                row.extend(sums(totals));
                row
            }),
        )
        .await?;
        txn.commit().await.map_err(|e| self.db().classify(e))
    }

    async fn query(&self, query: &AnalyticsQuery) -> Result<Vec<AnalyticsRow>, RepositoryError> {
        let backend = self.db().read.get_database_backend();
        let (sql, values) = select_answer(backend, query);
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
            .filter_map(|row| row.into_bucket().transpose())
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
            "SELECT key_id, CAST(SUM(count) AS BIGINT) AS count FROM verification_buckets{} \
             WHERE org_id = {} AND granularity = 'hour' AND bucket_start >= {} AND key_id IN ({list}) \
             GROUP BY key_id",
            key_index_hint(backend),
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
        // By organisation and width, oldest first, a slice of time per
        // statement: each delete is a range of the primary key (one
        // statement over every organisation scanned the whole table), and
        // on SQLite, whose one write lock a delete holds, writes of counts
        // and keys go on between slices (a month of minute rows at 10 000
        // keys held it two minutes, past the 5 s other writes wait).
        #[derive(FromQueryResult)]
        struct Org {
            org_id: String,
        }
        #[derive(FromQueryResult)]
        struct Oldest {
            start: Option<i64>,
        }
        let db = &self.db().write;
        let backend = db.get_database_backend();
        let classify = |e| self.db().classify(e);
        // Every organisation with counts has rows of its own in each width.
        let orgs = Org::find_by_statement(Statement::from_string(
            backend,
            format!("SELECT DISTINCT org_id FROM {}", ORG_ROWS.table),
        ))
        .all(db)
        .await
        .map_err(classify)?;
        // The organisation's own rows last: they are how the next pruning
        // finds the organisation if this one stops midway.
        let statements: Vec<(String, String)> = [KEY_ROWS.table, KEY_SUMS.table, ORG_ROWS.table]
            .into_iter()
            .map(|table| {
                let (org, width) = (placeholders(backend, 1, 1), placeholders(backend, 2, 1));
                let oldest = format!("SELECT MIN(bucket_start) AS start FROM {table} WHERE org_id = {org} AND granularity = {width}");
                let delete = format!(
                    "DELETE FROM {table} WHERE org_id = {org} AND granularity = {width} AND bucket_start >= {} AND bucket_start < {}",
                    placeholders(backend, 3, 1),
                    placeholders(backend, 4, 1)
                );
                (oldest, delete)
            })
            .collect();
        let mut deleted = 0;
        for org in orgs {
            for (granularity, cutoff) in cutoffs {
                // About 10 buckets a slice: 10 000 keys in steady use are
                // 100 000 minute rows.
                let slice = match granularity {
                    Granularity::Minute => chrono::Duration::minutes(10),
                    Granularity::Hour => chrono::Duration::hours(6),
                    Granularity::Day => chrono::Duration::days(7),
                };
                for (oldest_sql, delete_sql) in &statements {
                    let (org_id, width) = (org.org_id.as_str(), granularity.as_str());
                    let oldest = Oldest::find_by_statement(Statement::from_sql_and_values(
                        backend,
                        oldest_sql.as_str(),
                        [org_id.into(), width.into()],
                    ))
                    .one(db)
                    .await
                    .map_err(classify)?
                    .and_then(|oldest| oldest.start);
                    // Each slice bounded on both sides: PostgreSQL's index
                    // still holds the rows deleted before (until a vacuum),
                    // which a scan from the oldest would walk again.
                    let mut from = oldest.unwrap_or(i64::MAX);
                    while from < cutoff.timestamp() {
                        let to = (from + slice.num_seconds()).min(cutoff.timestamp());
                        let done = db
                            .execute(Statement::from_sql_and_values(
                                backend,
                                delete_sql.as_str(),
                                [org_id.into(), width.into(), from.into(), to.into()],
                            ))
                            .await
                            .map_err(classify)?;
                        deleted += done.rows_affected();
                        from = to;
                    }
                }
            }
        }
        Ok(deleted)
    }

    async fn claim_prune(&self, now: DateTime<Utc>, every: chrono::Duration) -> Result<bool, RepositoryError> {
        // One row, moved forward by whoever finds it old enough: the UPDATE is
        // atomic on both databases, so of processes racing, one changes it.
        let backend = self.db().write.get_database_backend();
        let sql = format!(
            "UPDATE analytics_prunes SET pruned_at = {} WHERE id = 1 AND pruned_at <= {}",
            placeholders(backend, 1, 1),
            placeholders(backend, 2, 1)
        );
        let values: Vec<Value> = vec![now.timestamp().into(), (now - every).timestamp().into()];
        let done = self
            .db()
            .write
            .execute(Statement::from_sql_and_values(backend, sql, values))
            .await
            .map_err(|e| self.db().classify(e))?;
        Ok(done.rows_affected() == 1)
    }
}
