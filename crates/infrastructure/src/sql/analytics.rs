//! Verification counts in `verification_buckets`: each flush adds its counts
//! to the minute, hour and day rows they fall in (`count = count + n`), so
//! processes sharing a database add up exactly and no rollup job has to run;
//! old rows are pruned by age.

use std::collections::BTreeMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use keymint_application::{
    AnalyticsQuery, AnalyticsRow, AnalyticsStore, BucketCount, RepositoryError, RowOrder, StoredBucket,
};
use keymint_domain::{Granularity, KeyId, OrgId, OwnerId, TagSet, VerificationOutcome};
use sea_orm::{ConnectionTrait, DatabaseBackend, FromQueryResult, Statement, TransactionTrait, Value};
use uuid::Uuid;

use super::repository::SqlApiKeyRepository;

/// Rows per INSERT: at most 9 values each, well under both databases' parameter limits.
const INSERT_CHUNK: usize = 500;

/// The most rows one query reads when tags are grouped or filtered in memory
/// (past it the query is answered as too large, asking for a coarser one).
const MAX_TAGGED_ROWS: usize = 200_000;

/// A key row's identity: everything but its count and credits (organisation,
/// width, start, key, outcome, owner or '', tags).
type KeyRow = (String, &'static str, i64, String, &'static str, String, String);

/// An organisation row's identity (organisation, width, start, outcome, tags).
type OrgRow = (String, &'static str, i64, &'static str, String);

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

/// A row of a query's answer; a total over no rows at all is one row of
/// NULLs, hence the options.
#[derive(Debug, FromQueryResult)]
struct Grouped {
    bucket_start: Option<i64>,
    key_id: Option<String>,
    owner_id: Option<String>,
    outcome: Option<String>,
    tags: Option<String>,
    count: Option<i64>,
    spent_credits: Option<i64>,
}

/// One multi-row upsert: `columns` then `count, spent_credits`, adding to a
/// row that exists.
struct Upsert {
    table: &'static str,
    columns: &'static [&'static str],
}

const KEY_ROWS: Upsert = Upsert {
    table: "verification_buckets",
    columns: &[
        "org_id",
        "granularity",
        "bucket_start",
        "key_id",
        "outcome",
        "owner_id",
        "tags",
    ],
};

const ORG_ROWS: Upsert = Upsert {
    table: "verification_totals",
    columns: &["org_id", "granularity", "bucket_start", "outcome", "tags"],
};

impl Upsert {
    fn statement(&self, backend: DatabaseBackend, rows: usize) -> String {
        let width = self.columns.len() + 2;
        let tuples: Vec<String> = (0..rows)
            .map(|row| format!("({})", placeholders(backend, row * width + 1, width)))
            .collect();
        let columns = self.columns.join(", ");
        format!(
            "INSERT INTO {table} ({columns}, count, spent_credits) VALUES {} \
             ON CONFLICT ({columns}) DO UPDATE SET count = {table}.count + excluded.count, \
             spent_credits = {table}.spent_credits + excluded.spent_credits",
            tuples.join(", "),
            table = self.table,
        )
    }
}

impl SqlApiKeyRepository {
    /// Writes `rows` (each its identity's values, then count and credits) in
    /// statements of at most [`INSERT_CHUNK`] rows, within `txn`. Rows come
    /// sorted: processes adding to the same rows lock them in one order, so
    /// PostgreSQL never finds two flushes waiting on each other.
    async fn upsert(
        &self,
        txn: &sea_orm::DatabaseTransaction,
        upsert: &Upsert,
        rows: impl ExactSizeIterator<Item = Vec<Value>>,
    ) -> Result<(), RepositoryError> {
        let backend = txn.get_database_backend();
        let rows: Vec<Vec<Value>> = rows.collect();
        for chunk in rows.chunks(INSERT_CHUNK) {
            let values: Vec<Value> = chunk.iter().flatten().cloned().collect();
            txn.execute(Statement::from_sql_and_values(
                backend,
                upsert.statement(backend, chunk.len()),
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
        txn.commit().await.map_err(|e| self.db().classify(e))
    }

    async fn query(&self, query: &AnalyticsQuery) -> Result<Vec<AnalyticsRow>, RepositoryError> {
        let backend = self.db().read.get_database_backend();
        let by = query.group_by;
        // Neither keys nor owners asked for: the organisation's own rows hold
        // the answer, one per outcome and tag set instead of one per key.
        let table = if query.key_ids.is_empty() && query.owner_ids.is_empty() && !by.key_id && !by.owner_id {
            ORG_ROWS.table
        } else {
            KEY_ROWS.table
        };
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
        let group: Vec<&str> = (!query.total)
            .then_some("bucket_start")
            .into_iter()
            .chain(dims.iter().filter(|(_, wanted)| *wanted).map(|(name, _)| *name))
            .collect();
        // A total is one group for the whole range (its time is set by
        // `group`); with nothing to group by, one row.
        let (start, grouping) = match (query.total, group.is_empty()) {
            (false, _) => ("bucket_start", format!(" GROUP BY {}", group.join(", "))),
            (true, true) => ("MIN(bucket_start)", String::new()),
            (true, false) => ("MIN(bucket_start)", format!(" GROUP BY {}", group.join(", "))),
        };
        let (cap, order) = if query.reads_tags() {
            // Tags are grouped (and so ordered and cut) in memory.
            (MAX_TAGGED_ROWS, group.join(", "))
        } else if query.order == RowOrder::Count {
            (query.limit, format!("SUM(count) DESC, {}", group.join(", ")))
        } else {
            (query.limit, group.join(", "))
        };
        let order = match order.trim_end_matches(", ") {
            "" => String::new(),
            order => format!(" ORDER BY {order}"),
        };
        let sql = format!(
            "SELECT {start} AS bucket_start, {} AS key_id, {} AS owner_id, {} AS outcome, {} AS tags, \
             CAST(SUM(count) AS BIGINT) AS count, CAST(SUM(spent_credits) AS BIGINT) AS spent_credits \
             FROM {table} WHERE {sql_where}{grouping}{order} LIMIT {}",
            column(by.key_id, "key_id"),
            column(by.owner_id, "owner_id"),
            column(by.outcome, "outcome"),
            column(query.reads_tags(), "tags"),
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
            .filter_map(|row| Some((row.bucket_start?, row)))
            .map(|(bucket_start, row)| {
                let unexpected =
                    |what: &str| RepositoryError::Unexpected(anyhow::anyhow!("a stored {what} is not valid"));
                Ok(StoredBucket {
                    time: DateTime::from_timestamp(bucket_start, 0).ok_or_else(|| unexpected("bucket start"))?,
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
                    count: row.count.and_then(|n| u64::try_from(n).ok()).unwrap_or_default(),
                    spent_credits: row
                        .spent_credits
                        .and_then(|n| u64::try_from(n).ok())
                        .unwrap_or_default(),
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
        for ((granularity, cutoff), table) in cutoffs
            .iter()
            .flat_map(|cutoff| [(cutoff, KEY_ROWS.table), (cutoff, ORG_ROWS.table)])
        {
            let sql = format!(
                "DELETE FROM {table} WHERE granularity = {} AND bucket_start < {}",
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
