//! The analytics tables as SQL: the rows each write adds to, and the one
//! statement that reads a query's answer from the table that holds it in the
//! fewest rows.

use chrono::{DateTime, Utc};
use keymint_application::{AnalyticsQuery, RepositoryError, RowOrder, StoredBucket};
use keymint_domain::{Granularity, KeyId, OwnerId, TagSet, VerificationOutcome};
use sea_orm::{DatabaseBackend, FromQueryResult, Value};
use uuid::Uuid;

/// Rows per INSERT: at most 9 values each, well under both databases' parameter limits.
pub(super) const INSERT_CHUNK: usize = 500;

/// Rows for the next statement when `left` remain (more than none): whole
/// chunks, then the rest in powers of two. A connection then prepares a
/// dozen shapes per table and reuses them; one shape per remainder size was
/// a new 500-row program to compile at nearly every write, and the statement
/// cache kept a hundred of them (16 MB on SQLite at 100 000 keys).
pub(super) fn statement_rows(left: usize) -> usize {
    if left >= INSERT_CHUNK {
        INSERT_CHUNK
    } else {
        1 << left.max(1).ilog2()
    }
}

/// The most rows one query reads when tags are grouped or filtered in memory
/// (past it the query is answered as too large, asking for a coarser one).
pub(super) const MAX_TAGGED_ROWS: usize = 200_000;

/// A key row's identity: everything but its count and credits (organisation,
/// width, start, key, outcome, owner or '', tags).
pub(super) type KeyRow = (String, &'static str, i64, String, &'static str, String, String);

/// An organisation row's identity (organisation, width, start, outcome, tags).
pub(super) type OrgRow = (String, &'static str, i64, &'static str, String);

/// A key's row of every outcome, owner and tag set (organisation, width,
/// start, key).
pub(super) type KeySumRow = (String, &'static str, i64, String);

pub(super) fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Placeholders `first..first+n` in the backend's syntax.
pub(super) fn placeholders(backend: DatabaseBackend, first: usize, n: usize) -> String {
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
pub(super) struct Grouped {
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
pub(super) struct Upsert {
    pub(super) table: &'static str,
    pub(super) columns: &'static [&'static str],
}

pub(super) const KEY_ROWS: Upsert = Upsert {
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

pub(super) const ORG_ROWS: Upsert = Upsert {
    table: "verification_totals",
    columns: &["org_id", "granularity", "bucket_start", "outcome", "tags"],
};

pub(super) const KEY_SUMS: Upsert = Upsert {
    table: "verification_key_counts",
    columns: &["org_id", "granularity", "bucket_start", "key_id"],
};

impl Upsert {
    pub(super) fn statement(&self, backend: DatabaseBackend, rows: usize) -> String {
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

/// The buckets that hold a query's range, as (width, from, to): its own
/// width's, except that a total read from hour buckets takes the whole days
/// in its range from day rows (each the sum of its 24 hours, written in the
/// same transaction): the same answer from up to 24 times fewer rows.
fn bucket_ranges(query: &AnalyticsQuery) -> Vec<(Granularity, DateTime<Utc>, DateTime<Utc>)> {
    let whole = vec![(query.granularity, query.from, query.to)];
    if !query.total || query.granularity != Granularity::Hour {
        return whole;
    }
    let day = Granularity::Day;
    let first_day = match day.bucket_of(query.from) {
        start if start < query.from => start + chrono::Duration::days(1),
        start => start,
    };
    let last_day = day.bucket_of(query.to);
    if first_day >= last_day {
        return whole;
    }
    [
        (Granularity::Hour, query.from, first_day),
        (day, first_day, last_day),
        (Granularity::Hour, last_day, query.to),
    ]
    .into_iter()
    .filter(|(_, from, to)| from < to)
    .collect()
}

/// On SQLite, the index a question naming keys or owners must use. Without
/// statistics (no ANALYZE has run, as on every new database) SQLite's planner
/// prefers the primary key's range of the whole organisation, which it can
/// read without a second lookup, to the few rows of a key or an owner: at
/// 10 000 keys, 600 ms instead of 10. PostgreSQL keeps statistics itself.
fn index_hint(backend: DatabaseBackend, table: &str, query: &AnalyticsQuery) -> &'static str {
    if backend != DatabaseBackend::Sqlite || table != KEY_ROWS.table {
        ""
    } else if !query.key_ids.is_empty() {
        key_index_hint(backend)
    } else if !query.owner_ids.is_empty() {
        " INDEXED BY idx_verification_buckets_owner"
    } else {
        ""
    }
}

/// The hint that sends a question naming keys to the buckets' key index
/// (see [`index_hint`]); nothing on PostgreSQL.
pub(super) fn key_index_hint(backend: DatabaseBackend) -> &'static str {
    match backend {
        DatabaseBackend::Sqlite => " INDEXED BY idx_verification_buckets_org_key",
        _ => "",
    }
}

impl Grouped {
    /// The row as a bucket; `None` for the row of NULLs a total over nothing is.
    pub(super) fn into_bucket(self) -> Result<Option<StoredBucket>, RepositoryError> {
        let Some(bucket_start) = self.bucket_start else {
            return Ok(None);
        };
        let unexpected = |what: &str| RepositoryError::Unexpected(anyhow::anyhow!("a stored {what} is not valid"));
        Ok(Some(StoredBucket {
            time: DateTime::from_timestamp(bucket_start, 0).ok_or_else(|| unexpected("bucket start"))?,
            key_id: self
                .key_id
                .map(|id| {
                    Uuid::parse_str(&id)
                        .map(KeyId::from_uuid)
                        .map_err(|_| unexpected("key id"))
                })
                .transpose()?,
            owner_id: self
                .owner_id
                .map(|owner| (!owner.is_empty()).then(|| OwnerId::restore(owner))),
            outcome: self
                .outcome
                .map(|outcome| {
                    outcome
                        .parse::<VerificationOutcome>()
                        .map_err(|_| unexpected("outcome"))
                })
                .transpose()?,
            tags: match self.tags {
                Some(tags) => TagSet::decode(&tags).ok_or_else(|| unexpected("tag set"))?,
                None => TagSet::empty(),
            },
            count: self.count.and_then(|n| u64::try_from(n).ok()).unwrap_or_default(),
            spent_credits: self
                .spent_credits
                .and_then(|n| u64::try_from(n).ok())
                .unwrap_or_default(),
        }))
    }
}

/// The statement answering `query` (and its values): grouped and ordered by
/// the database, except tags, which the caller groups
/// ([`AnalyticsQuery::group`]); at most the query's limit and one more rows,
/// or [`MAX_TAGGED_ROWS`] and one more when tags are read.
pub(super) fn select_answer(backend: DatabaseBackend, query: &AnalyticsQuery) -> (String, Vec<Value>) {
    let by = query.group_by;
    let names_keys = by.key_id || !query.key_ids.is_empty();
    let names_owners = by.owner_id || !query.owner_ids.is_empty();
    let names_outcomes = by.outcome || !query.outcomes.is_empty();
    let table = if !names_keys && !names_owners {
        // The organisation's own rows hold the answer, one per outcome
        // and tag set instead of one per key.
        ORG_ROWS.table
    } else if by.key_id && query.key_ids.is_empty() && !names_owners && !names_outcomes && !query.reads_tags() {
        // Every key, nothing else (the busiest keys): one row per key and
        // bucket. Named keys are found faster by the buckets' key index.
        KEY_SUMS.table
    } else {
        KEY_ROWS.table
    };
    let filters: [(&str, Vec<Value>); 3] = [
        ("key_id", query.key_ids.iter().map(|id| id.to_string().into()).collect()),
        (
            "owner_id",
            query.owner_ids.iter().map(|owner| owner.as_str().into()).collect(),
        ),
        (
            "outcome",
            query.outcomes.iter().map(|outcome| outcome.as_str().into()).collect(),
        ),
    ];
    let mut values: Vec<Value> = Vec::new();
    let mut arms: Vec<String> = Vec::new();
    for (granularity, from, to) in bucket_ranges(query) {
        let first = values.len() + 1;
        let mut arm = format!(
            "org_id = {} AND granularity = {} AND bucket_start >= {} AND bucket_start < {}",
            placeholders(backend, first, 1),
            placeholders(backend, first + 1, 1),
            placeholders(backend, first + 2, 1),
            placeholders(backend, first + 3, 1)
        );
        values.extend([
            query.org_id.to_string().into(),
            granularity.as_str().into(),
            from.timestamp().into(),
            to.timestamp().into(),
        ]);
        for (column, given) in filters.iter().filter(|(_, given)| !given.is_empty()) {
            let list = placeholders(backend, values.len() + 1, given.len());
            arm.push_str(&format!(" AND {column} IN ({list})"));
            values.extend(given.iter().cloned());
        }
        arms.push(arm);
    }
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
    let table = format!("{table}{}", index_hint(backend, table, query));
    let source = match arms.as_slice() {
        [arm] => format!("{table} WHERE {arm}"),
        _ => {
            // Disjoint ranges, each one run of the primary key: UNION ALL
            // reads them as such, where an OR would also deduplicate
            // them row by row.
            let columns: Vec<&str> = std::iter::once("bucket_start")
                .chain(dims.iter().filter(|(_, wanted)| *wanted).map(|(name, _)| *name))
                .chain(["count", "spent_credits"])
                .collect();
            let selects: Vec<String> = arms
                .iter()
                .map(|arm| format!("SELECT {} FROM {table} WHERE {arm}", columns.join(", ")))
                .collect();
            format!("({}) AS ranges", selects.join(" UNION ALL "))
        }
    };
    let sql = format!(
        "SELECT {start} AS bucket_start, {} AS key_id, {} AS owner_id, {} AS outcome, {} AS tags, \
         CAST(SUM(count) AS BIGINT) AS count, CAST(SUM(spent_credits) AS BIGINT) AS spent_credits \
         FROM {source}{grouping}{order} LIMIT {}",
        column(by.key_id, "key_id"),
        column(by.owner_id, "owner_id"),
        column(by.outcome, "outcome"),
        column(query.reads_tags(), "tags"),
        cap + 1
    );
    (sql, values)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_cover_every_row_once_in_a_few_shapes() {
        let mut shapes = std::collections::BTreeSet::new();
        for rows in 1..=3 * INSERT_CHUNK {
            let (mut left, mut written) = (rows, 0);
            while left > 0 {
                let taken = statement_rows(left);
                assert!((1..=left).contains(&taken), "{taken} of {left}");
                shapes.insert(taken);
                written += taken;
                left -= taken;
            }
            assert_eq!(written, rows);
        }
        assert_eq!(shapes.len(), 10, "{shapes:?}");
    }
}
