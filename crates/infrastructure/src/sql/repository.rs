use std::collections::HashMap;
use std::sync::Arc;
use std::time::SystemTime;

use anyhow::{anyhow, Context};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use keymint_application::{
    EventQuery, KeyLookup, KeyQuery, KeyStore, LookupDigests, RepositoryError, StorageHealth, UsageSink,
};
use keymint_domain::{ApiKey, AuditEvent, EventType, KeyDigest, KeyId, LookupId, OrgId, SecretHash};
use sea_orm::sea_query::{Expr, LikeExpr};
use sea_orm::{
    ActiveValue, ColumnTrait, Condition, ConnectionTrait, DatabaseBackend, DatabaseTransaction, EntityTrait,
    QueryFilter, QueryOrder, QuerySelect, Statement, TransactionTrait,
};
use tokio::sync::Notify;

use super::creates::{create_in, Create, Group};
use super::entity::{api_key_events as events, api_keys as keys, key_rate_windows};
use super::listener::{change_payload, KEY_CHANGES_CHANNEL};
use super::outbox;
use super::rows::{event_row, from_event_row, from_row, to_row};
use super::Database;
use crate::batch::Batcher;

/// API keys and their audit trail in SQLite or PostgreSQL, through sea-orm.
#[derive(Clone, Debug)]
pub struct SqlApiKeyRepository {
    db: Database,
    queued: Arc<Notify>,
    by_lookup: Arc<Batcher<LookupId, Found, SharedError>>,
    /// SQLite's creates, committed together; PostgreSQL takes each in its own
    /// transaction, several at once.
    group: Option<Arc<Group>>,
}

/// A stored key as one batched read found it; a row that does not decode
/// fails only the lookups it answers.
type Found = Result<ApiKey, SharedError>;

/// A failure shared by every lookup of a batch.
#[derive(Clone, Debug)]
struct SharedError {
    unavailable: bool,
    cause: Arc<anyhow::Error>,
}

impl From<RepositoryError> for SharedError {
    fn from(err: RepositoryError) -> Self {
        let unavailable = matches!(err, RepositoryError::Unavailable(_));
        Self {
            unavailable,
            cause: Arc::new(err.into()),
        }
    }
}

impl From<SharedError> for RepositoryError {
    fn from(err: SharedError) -> Self {
        let cause = anyhow!("{:#}", err.cause);
        if err.unavailable {
            RepositoryError::Unavailable(cause)
        } else {
            RepositoryError::Unexpected(cause)
        }
    }
}

/// Keys per `last_used_at` statement: two bind values each, far under
/// either database's limit.
const USAGE_CHUNK: usize = 500;

/// The most lookup ids one batched read asks for. Far more than a miss storm
/// queues between two reads, and a statement of this size stays small.
const LOOKUP_BATCH: usize = 128;
/// The same on PostgreSQL. Until a table has statistics (a bulk import before
/// autovacuum's first ANALYZE, or autovacuum off), its planner guesses that
/// each `previous_lookup_id` in the list matches 0.5 % of the rows: at 64 and
/// 128 ids it chose a sequential scan of every key for each batch (measured:
/// 6 689 scans, 667 million rows read in one 90 s benchmark, p99 60 ms). At
/// 16 ids the guess stays under a tenth of the table, which it reads through
/// the indexes.
const LOOKUP_BATCH_POSTGRES: usize = 16;
/// Batched reads at once: enough to overlap a read with its decoding, few
/// enough that lookups queue behind them and batch.
const LOOKUP_LOADERS: usize = 2;
/// How long a lookup waits for its batch before storage counts as
/// unavailable: the pool's own acquire timeout is 5 s by default, and a read
/// may have queued behind another.
const LOOKUP_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

impl SqlApiKeyRepository {
    /// A repository over an already migrated database.
    pub fn new(db: Database) -> Self {
        let reader = db.clone();
        let batch = match db.read.get_database_backend() {
            DatabaseBackend::Postgres => LOOKUP_BATCH_POSTGRES,
            _ => LOOKUP_BATCH,
        };
        let by_lookup = Batcher::new(batch, LOOKUP_LOADERS, LOOKUP_WAIT, move |ids: Vec<LookupId>| {
            let db = reader.clone();
            async move { find_by_lookups(&db, ids).await.map_err(SharedError::from) }
        });
        let queued = Arc::new(Notify::new());
        let group = (db.write.get_database_backend() == DatabaseBackend::Sqlite)
            .then(|| Arc::new(Group::new(db.clone(), queued.clone())));
        Self {
            db,
            queued,
            by_lookup,
            group,
        }
    }

    pub(crate) fn db(&self) -> &Database {
        &self.db
    }

    /// Signalled when this process queued webhook deliveries, so its
    /// dispatcher sends them at once instead of at its next poll.
    pub fn deliveries_queued(&self) -> Arc<Notify> {
        self.queued.clone()
    }

    /// What follows a stored change's audit event in its transaction: an
    /// event that sets the credits anew re-arms the credits-low announcement
    /// ([`AuditEvent::sets_credits`]), and the event's deliveries are queued
    /// about the key as stored in `txn` now (after the change, so credits
    /// spent meanwhile are counted). The key is read only when some webhook
    /// receives the event.
    pub(crate) async fn after_event(
        &self,
        txn: &DatabaseTransaction,
        event: &AuditEvent,
    ) -> Result<usize, RepositoryError> {
        if event.sets_credits() {
            outbox::rearm_credits_low(txn, event.key_id)
                .await
                .map_err(|e| self.db.classify(e))?;
        }
        let event_type = EventType::of_action(event.action);
        let subscribed = outbox::subscribers(txn, event.org_id, event_type)
            .await
            .map_err(|e| self.db.classify(e))?;
        if subscribed.is_empty() {
            return Ok(0);
        }
        let Some(row) = keys::Entity::find_by_id(event.key_id.as_uuid())
            .one(txn)
            .await
            .map_err(|e| self.db.classify(e))?
        else {
            return Ok(0);
        };
        let key = from_row(row)?;
        outbox::queue(txn, &subscribed, event_type, &key, event.occurred_at)
            .await
            .map_err(|e| self.db.classify(e))
    }

    /// Commits `txn` and wakes the dispatcher if it queued deliveries.
    pub(crate) async fn commit_queued(&self, txn: DatabaseTransaction, queued: usize) -> Result<(), RepositoryError> {
        txn.commit().await.map_err(|e| self.db.classify(e))?;
        if queued > 0 {
            self.queued.notify_one();
        }
        Ok(())
    }
}

/// `text` with LIKE's wildcards and its escape character made literal.
fn escape_like(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

/// Announces a change inside its transaction: PostgreSQL delivers the
/// notification on commit and drops it on rollback. SQLite has no listeners.
async fn notify_change(db: &Database, txn: &impl ConnectionTrait, id: KeyId) -> Result<(), RepositoryError> {
    if txn.get_database_backend() == DatabaseBackend::Postgres {
        txn.execute(Statement::from_sql_and_values(
            DatabaseBackend::Postgres,
            "SELECT pg_notify($1, $2)",
            [KEY_CHANGES_CHANNEL.into(), change_payload(id, SystemTime::now()).into()],
        ))
        .await
        .map_err(|e| db.classify(e))?;
    }
    Ok(())
}

fn to_limit(limit: usize) -> u64 {
    u64::try_from(limit).unwrap_or(u64::MAX)
}

#[async_trait]
impl KeyStore for SqlApiKeyRepository {
    async fn insert(
        &self,
        key: &ApiKey,
        event: &AuditEvent,
        max_active: u32,
        now: DateTime<Utc>,
    ) -> Result<(), RepositoryError> {
        let create = Create {
            key: key.clone(),
            event: event.clone(),
            max_active,
            now,
        };
        if let Some(group) = &self.group {
            return group.create(create).await;
        }
        let txn = self.db.write.begin().await.map_err(|e| self.db.classify(e))?;
        match create_in(&self.db, &txn, &create).await {
            Ok(queued) => self.commit_queued(txn, queued).await,
            Err(err) => {
                txn.rollback().await.map_err(|e| self.db.classify(e))?;
                Err(err)
            }
        }
    }

    async fn find(&self, org_id: OrgId, id: KeyId) -> Result<Option<ApiKey>, RepositoryError> {
        keys::Entity::find_by_id(id.as_uuid())
            .filter(keys::Column::OrgId.eq(org_id.as_uuid()))
            .one(&self.db.read)
            .await
            .map_err(|e| self.db.classify(e))?
            .map(from_row)
            .transpose()
    }

    async fn list(&self, query: &KeyQuery) -> Result<Vec<ApiKey>, RepositoryError> {
        let mut select = keys::Entity::find().filter(keys::Column::OrgId.eq(query.org_id.as_uuid()));
        if let Some(environment) = query.environment {
            select = select.filter(keys::Column::Environment.eq(environment.as_str()));
        }
        if let Some(revoked) = query.revoked {
            select = select.filter(keys::Column::IsRevoked.eq(revoked));
        }
        if let Some(owner) = &query.owner_id {
            select = select.filter(keys::Column::OwnerId.eq(owner.as_str()));
        }
        if let Some(search) = &query.name {
            // Both sides are folded already, so the engines' own case rules
            // for LIKE (SQLite's ASCII-insensitive, PostgreSQL's sensitive)
            // never come into play; the escape makes `%`, `_` and `\` literal.
            let pattern = format!("%{}%", escape_like(search.folded()));
            select = select.filter(Expr::col(keys::Column::NameFolded).like(LikeExpr::new(pattern).escape('\\')));
        }
        if let Some(after) = query.after {
            select = select.filter(
                Condition::any().add(keys::Column::CreatedAt.lt(after.created_at)).add(
                    Condition::all()
                        .add(keys::Column::CreatedAt.eq(after.created_at))
                        .add(keys::Column::Id.lt(after.id.as_uuid())),
                ),
            );
        }
        select
            .order_by_desc(keys::Column::CreatedAt)
            .order_by_desc(keys::Column::Id)
            .limit(to_limit(query.limit))
            .all(&self.db.read)
            .await
            .map_err(|e| self.db.classify(e))?
            .into_iter()
            .map(from_row)
            .collect()
    }

    async fn update(&self, key: &ApiKey, expected_revision: u32, event: &AuditEvent) -> Result<(), RepositoryError> {
        let txn = self.db.write.begin().await.map_err(|e| self.db.classify(e))?;
        let mut row = to_row(key);
        // Usage is recorded separately; a change must not roll it back.
        row.last_used_at = ActiveValue::NotSet;
        // Verifications spend credits without a revision: the balance is
        // written only by a change that sets the credits anew.
        if !event.sets_credits() {
            row.credits_remaining = ActiveValue::NotSet;
            row.credits_period = ActiveValue::NotSet;
        }
        let updated = keys::Entity::update_many()
            .set(row)
            .filter(keys::Column::Id.eq(key.id().as_uuid()))
            .filter(keys::Column::OrgId.eq(key.org_id().as_uuid()))
            .filter(keys::Column::Revision.eq(i64::from(expected_revision)))
            .exec(&txn)
            .await
            .map_err(|e| self.db.classify(e))?;
        if updated.rows_affected == 0 {
            txn.rollback().await.map_err(|e| self.db.classify(e))?;
            return Err(RepositoryError::Stale);
        }
        notify_change(&self.db, &txn, key.id()).await?;
        events::Entity::insert(event_row(event))
            .exec_without_returning(&txn)
            .await
            .map_err(|e| self.db.classify(e))?;
        let queued = self.after_event(&txn, event).await?;
        self.commit_queued(txn, queued).await
    }

    async fn delete(&self, org_id: OrgId, id: KeyId, event: &AuditEvent) -> Result<bool, RepositoryError> {
        let txn = self.db.write.begin().await.map_err(|e| self.db.classify(e))?;
        let subscribed = outbox::subscribers(&txn, org_id, EventType::KeyDeleted)
            .await
            .map_err(|e| self.db.classify(e))?;
        // The key as it was: what a key.deleted delivery describes, read only
        // when some webhook receives it.
        let before = if subscribed.is_empty() {
            None
        } else {
            keys::Entity::find_by_id(id.as_uuid())
                .filter(keys::Column::OrgId.eq(org_id.as_uuid()))
                .one(&txn)
                .await
                .map_err(|e| self.db.classify(e))?
                .map(from_row)
                .transpose()?
        };
        let deleted = keys::Entity::delete_many()
            .filter(keys::Column::Id.eq(id.as_uuid()))
            .filter(keys::Column::OrgId.eq(org_id.as_uuid()))
            .exec(&txn)
            .await
            .map_err(|e| self.db.classify(e))?;
        if deleted.rows_affected == 0 {
            txn.rollback().await.map_err(|e| self.db.classify(e))?;
            return Ok(false);
        }
        key_rate_windows::Entity::delete_many()
            .filter(key_rate_windows::Column::KeyId.eq(id.as_uuid()))
            .exec(&txn)
            .await
            .map_err(|e| self.db.classify(e))?;
        notify_change(&self.db, &txn, id).await?;
        events::Entity::insert(event_row(event))
            .exec_without_returning(&txn)
            .await
            .map_err(|e| self.db.classify(e))?;
        let queued = match &before {
            Some(key) => outbox::queue(&txn, &subscribed, EventType::KeyDeleted, key, event.occurred_at)
                .await
                .map_err(|e| self.db.classify(e))?,
            None => 0,
        };
        self.commit_queued(txn, queued).await?;
        Ok(true)
    }

    async fn events(&self, query: &EventQuery) -> Result<Vec<AuditEvent>, RepositoryError> {
        let mut select = events::Entity::find()
            .filter(events::Column::OrgId.eq(query.org_id.as_uuid()))
            .filter(events::Column::KeyId.eq(query.key_id.as_uuid()));
        if let Some(after) = query.after {
            select = select.filter(
                Condition::any()
                    .add(events::Column::OccurredAt.lt(after.occurred_at))
                    .add(
                        Condition::all()
                            .add(events::Column::OccurredAt.eq(after.occurred_at))
                            .add(events::Column::Id.lt(after.id)),
                    ),
            );
        }
        select
            .order_by_desc(events::Column::OccurredAt)
            .order_by_desc(events::Column::Id)
            .limit(to_limit(query.limit))
            .all(&self.db.read)
            .await
            .map_err(|e| self.db.classify(e))?
            .into_iter()
            .map(from_event_row)
            .collect()
    }
}

#[async_trait]
impl KeyLookup for SqlApiKeyRepository {
    async fn find_by_lookup(&self, lookup_id: &LookupId) -> Result<Option<ApiKey>, RepositoryError> {
        match self.by_lookup.load(lookup_id.clone()).await {
            Ok(found) => found.transpose().map_err(RepositoryError::from),
            Err(Some(err)) => Err(err.into()),
            Err(None) => Err(RepositoryError::Unavailable(anyhow!("the key read was abandoned"))),
        }
    }

    async fn find_by_digest(&self, digest: &KeyDigest) -> Result<Option<ApiKey>, RepositoryError> {
        let hex = digest.to_hex();
        keys::Entity::find()
            .filter(
                Condition::any()
                    .add(keys::Column::LookupDigest.eq(hex.as_str()))
                    .add(keys::Column::PreviousLookupDigest.eq(hex.as_str())),
            )
            .one(&self.db.read)
            .await
            .map_err(|e| self.db.classify(e))?
            .map(from_row)
            .transpose()
    }

    async fn rehash(&self, id: KeyId, old: &SecretHash, new: &SecretHash) -> Result<bool, RepositoryError> {
        // One statement: whichever column still holds `old` gets `new`; a
        // rotation that replaced it meanwhile leaves nothing to match.
        let replace = |column: keys::Column| {
            Expr::case(Expr::col(column).eq(old.expose()), Expr::value(new.expose())).finally(Expr::col(column))
        };
        let updated = keys::Entity::update_many()
            .col_expr(keys::Column::SecretHash, replace(keys::Column::SecretHash).into())
            .col_expr(
                keys::Column::PreviousSecretHash,
                replace(keys::Column::PreviousSecretHash).into(),
            )
            .filter(keys::Column::Id.eq(id.as_uuid()))
            .filter(
                Condition::any()
                    .add(keys::Column::SecretHash.eq(old.expose()))
                    .add(keys::Column::PreviousSecretHash.eq(old.expose())),
            )
            .exec(&self.db.write)
            .await
            .map_err(|e| self.db.classify(e))?;
        Ok(updated.rows_affected > 0)
    }
}

/// The stored keys holding any of `ids` as their current or rotated-out
/// lookup id, in one statement, each under the ids it answers.
async fn find_by_lookups(db: &Database, ids: Vec<LookupId>) -> Result<Vec<(LookupId, Found)>, RepositoryError> {
    let mut texts: Vec<&str> = ids.iter().map(LookupId::as_str).collect();
    // Each length of the IN lists is its own statement text, prepared and
    // cached per connection: padding to a few lengths (repeating an id
    // changes no answer) keeps that cache from churning.
    let padded = [1, 4, 16, 64, LOOKUP_BATCH]
        .into_iter()
        .find(|&size| size >= texts.len())
        .unwrap_or(texts.len());
    if let Some(&first) = texts.first() {
        texts.resize(padded, first);
    }
    let rows = keys::Entity::find()
        .filter(
            Condition::any()
                .add(keys::Column::LookupId.is_in(texts.iter().copied()))
                .add(keys::Column::PreviousLookupId.is_in(texts.iter().copied())),
        )
        .all(&db.read)
        .await
        .map_err(|e| db.classify(e))?;
    let mut found = Vec::with_capacity(rows.len());
    for row in rows {
        let (current, previous) = (row.lookup_id.clone(), row.previous_lookup_id.clone());
        let key = from_row(row).map_err(SharedError::from);
        for id in &ids {
            if id.as_str() == current || previous.as_deref() == Some(id.as_str()) {
                found.push((id.clone(), key.clone()));
            }
        }
    }
    Ok(found)
}

/// Marks that a lookup digest was added, in the transaction adding it.
#[async_trait]
impl LookupDigests for SqlApiKeyRepository {
    async fn digest_generation(&self) -> Result<i64, RepositoryError> {
        let row = self
            .db
            .read
            .query_one(Statement::from_string(
                self.db.read.get_database_backend(),
                "SELECT generation FROM lookup_digest_generation WHERE id = 1",
            ))
            .await
            .map_err(|e| self.db.classify(e))?
            .ok_or_else(|| RepositoryError::Unexpected(anyhow!("lookup_digest_generation has no row")))?;
        row.try_get("", "generation")
            .map_err(|e| RepositoryError::Unexpected(e.into()))
    }

    async fn lookup_digests(&self) -> Result<Vec<KeyDigest>, RepositoryError> {
        let rows: Vec<(Option<String>, Option<String>)> = keys::Entity::find()
            .select_only()
            .column(keys::Column::LookupDigest)
            .column(keys::Column::PreviousLookupDigest)
            .filter(
                Condition::any()
                    .add(keys::Column::LookupDigest.is_not_null())
                    .add(keys::Column::PreviousLookupDigest.is_not_null()),
            )
            .into_tuple()
            .all(&self.db.read)
            .await
            .map_err(|e| self.db.classify(e))?;
        let mut digests = Vec::with_capacity(rows.len());
        let mut damaged = 0usize;
        for hex in rows
            .into_iter()
            .flat_map(|(current, previous)| [current, previous])
            .flatten()
        {
            match KeyDigest::parse(&hex) {
                Ok(digest) => digests.push(digest),
                Err(_) => damaged += 1,
            }
        }
        // One damaged row must not stop every other imported key from being
        // found; its own key is reported corrupt when it is read.
        if damaged > 0 {
            tracing::error!(damaged, "stored lookup digests that are not digests were skipped");
        }
        Ok(digests)
    }
}

#[async_trait]
impl UsageSink for SqlApiKeyRepository {
    async fn record_usage(&self, usage: &[(KeyId, DateTime<Utc>)]) -> Result<(), RepositoryError> {
        if usage.is_empty() {
            return Ok(());
        }
        // One row per key, its latest use (an UPDATE ... FROM with a key twice
        // would pick either row), in key order, so that concurrent flushes
        // from several processes lock rows in the same order.
        let mut latest: HashMap<KeyId, DateTime<Utc>> = HashMap::with_capacity(usage.len());
        for (id, at) in usage {
            let entry = latest.entry(*id).or_insert(*at);
            *entry = (*entry).max(*at);
        }
        let mut latest: Vec<(KeyId, DateTime<Utc>)> = latest.into_iter().collect();
        latest.sort_unstable_by_key(|(id, _)| id.as_uuid());
        let backend = self.db.write.get_database_backend();
        let txn = self.db.write.begin().await.map_err(|e| self.db.classify(e))?;
        // One statement per chunk: with 100 000 keys in use, a flush is 100 000
        // rows, and a statement each (a worker-thread hand-off on SQLite, a
        // round trip on PostgreSQL) was most of the database's work.
        for chunk in latest.chunks(USAGE_CHUNK) {
            let mut rows = Vec::with_capacity(chunk.len());
            let mut values = Vec::with_capacity(chunk.len() * 2);
            for (id, at) in chunk {
                let n = values.len();
                rows.push(match backend {
                    DatabaseBackend::Postgres => format!("(${}::uuid, ${}::timestamptz)", n + 1, n + 2),
                    _ => "(?, ?)".to_owned(),
                });
                values.push(id.as_uuid().into());
                values.push((*at).into());
            }
            // VALUES names its columns column1, column2 on both databases.
            let sql = format!(
                "UPDATE api_keys SET last_used_at = used.column2 FROM (VALUES {}) AS used \
                 WHERE api_keys.id = used.column1 \
                 AND (api_keys.last_used_at IS NULL OR api_keys.last_used_at < used.column2)",
                rows.join(", ")
            );
            txn.execute(Statement::from_sql_and_values(backend, sql, values))
                .await
                .map_err(|e| self.db.classify(e))?;
        }
        txn.commit().await.map_err(|e| self.db.classify(e))
    }
}

#[async_trait]
impl StorageHealth for SqlApiKeyRepository {
    async fn ping(&self) -> Result<(), RepositoryError> {
        let probe = self.db.read.execute_unprepared("SELECT 1").await;
        if probe.is_err() {
            self.db.errors.count_unavailable();
        }
        probe.context("readiness probe").map_err(RepositoryError::Unavailable)?;
        Ok(())
    }
}
