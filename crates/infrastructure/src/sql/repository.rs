use std::sync::Arc;
use std::time::SystemTime;

use anyhow::{anyhow, Context};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use keymint_application::{EventQuery, KeyQuery, KeyStore, RepositoryError, StorageHealth};
use keymint_domain::{ApiKey, AuditEvent, EventType, KeyId, LookupId, OrgId};
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
    pub(super) by_lookup: Arc<Batcher<LookupId, Found, SharedError>>,
    /// SQLite's creates, committed together; PostgreSQL takes each in its own
    /// transaction, several at once.
    group: Option<Arc<Group>>,
}

/// A stored key as one batched read found it; a row that does not decode
/// fails only the lookups it answers.
pub(super) type Found = Result<ApiKey, SharedError>;

/// A failure shared by every lookup of a batch.
#[derive(Clone, Debug)]
pub(super) struct SharedError {
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
