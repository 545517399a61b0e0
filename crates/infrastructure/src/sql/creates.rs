//! Storing a new key: one list of statements for both databases, and on
//! SQLite, concurrent creates committed together.
//!
//! SQLite takes one writer at a time, and what a create costs there is not
//! SQLite's own work but the hand-offs to sqlx's worker thread (one per
//! statement, each waking two threads) and the commit's WAL writes of every
//! page the create touched. So a create is sent as one string of statements,
//! and the creates that arrive while one group commits wait and go together
//! in the next transaction: one commit, and the pages they share (the newest
//! leaf of each index) written once.
//!
//! A create that is refused (a clash, the limit) writes nothing, decided in
//! its own `INSERT … SELECT`, so it never disturbs its group. A statement that
//! fails for another reason stops the group's string where it is: the
//! transaction is rolled back and the group run again one create at a time,
//! each in its own savepoint, so the failure is that create's alone — unless
//! storage itself is unavailable (busy past its timeout, out of disk), which
//! fails the group at once rather than once per create.

use std::sync::{Arc, OnceLock};

use anyhow::anyhow;
use chrono::{DateTime, Utc};
use keymint_application::RepositoryError;
use keymint_domain::{ApiKey, AuditAction, AuditEvent, EventType, OrgId};
use sea_orm::sea_query::{Alias, Asterisk, Expr, InsertStatement, Query, SimpleExpr, UnionType};
use sea_orm::{
    ActiveModelTrait, ActiveValue, ColumnTrait, Condition, ConnectionTrait, DatabaseBackend, DatabaseTransaction,
    EntityTrait, Iterable, PaginatorTrait, QueryFilter, QueryResult, QueryTrait, Statement, TransactionTrait,
};
use tokio::sync::{mpsc, oneshot, Notify};
use uuid::Uuid;

use super::entity::api_keys as keys;
use super::outbox;
use super::rows::{event_row, to_row};
use super::Database;
use crate::home_runtime::HomeRuntime;

/// A key to store, with its audit event, under the organisation's limit.
#[derive(Clone)]
pub(crate) struct Create {
    pub key: ApiKey,
    pub event: AuditEvent,
    pub max_active: u32,
    pub now: DateTime<Utc>,
}

/// The most creates in one transaction. A group holds SQLite's write lock
/// while it runs, so other writers (updates, usage, another process) wait at
/// most this many creates.
const MAX_GROUP: usize = 64;
/// Creates waiting for a group; past this, callers wait to join the queue.
const QUEUE: usize = 1024;
const SAVEPOINT: &str = "keymint_create";

type Reply = oneshot::Sender<Result<usize, RepositoryError>>;

/// Concurrent creates on SQLite, committed in groups by one task.
#[derive(Debug)]
pub(crate) struct Group {
    db: Database,
    queued: Arc<Notify>,
    runtime: HomeRuntime,
    sender: OnceLock<mpsc::Sender<(Create, Reply)>>,
}

impl Group {
    /// The task starts with the first create, on the runtime this is made on
    /// if there is one (the one the process serves from), else the caller's.
    pub(crate) fn new(db: Database, queued: Arc<Notify>) -> Self {
        Self {
            db,
            queued,
            runtime: HomeRuntime::current(),
            sender: OnceLock::new(),
        }
    }

    /// Stores `create` in the next group and answers once that group is
    /// committed (or refused this create).
    pub(crate) async fn create(&self, create: Create) -> Result<(), RepositoryError> {
        let sender = self.sender.get_or_init(|| {
            let (sender, receiver) = mpsc::channel(QUEUE);
            self.runtime
                .spawn(write_groups(self.db.clone(), self.queued.clone(), receiver));
            sender
        });
        let (reply, answer) = oneshot::channel();
        sender
            .send((create, reply))
            .await
            .map_err(|_| RepositoryError::Unavailable(anyhow!("the create queue has stopped")))?;
        match answer.await {
            Ok(outcome) => outcome.map(|_| ()),
            Err(_) => Err(RepositoryError::Unexpected(anyhow!(
                "the create was dropped before its group was committed"
            ))),
        }
    }
}

async fn write_groups(db: Database, queued: Arc<Notify>, mut receiver: mpsc::Receiver<(Create, Reply)>) {
    let mut group = Vec::with_capacity(MAX_GROUP);
    while receiver.recv_many(&mut group, MAX_GROUP).await > 0 {
        let taken = std::mem::replace(&mut group, Vec::with_capacity(MAX_GROUP));
        // Its own task, so a panic fails this group's callers (their replies
        // are dropped), not every create after it.
        let (db, queued) = (db.clone(), queued.clone());
        if let Err(err) = tokio::spawn(async move { commit_group(&db, &queued, taken).await }).await {
            tracing::error!(error = %err, "a group of creates failed; its callers were answered with an error");
        }
    }
}

async fn commit_group(db: &Database, queued: &Notify, mut group: Vec<(Create, Reply)>) {
    // A caller that stopped waiting (its client went away) gets no key that
    // nobody will ever see. One that leaves during the commit may still.
    group.retain(|(_, reply)| !reply.is_closed());
    if group.is_empty() {
        return;
    }
    let creates: Vec<&Create> = group.iter().map(|(create, _)| create).collect();
    let outcomes = match all_at_once(db, &creates).await {
        Ok(Ok((txn, outcomes))) => commit(db, txn, outcomes).await,
        Ok(Err(())) => match one_at_a_time(db, &creates).await {
            Ok((txn, outcomes)) => commit(db, txn, outcomes).await,
            Err(err) => Err(err),
        },
        Err(err) => Err(err),
    };
    match outcomes {
        Ok(outcomes) => {
            if outcomes
                .iter()
                .any(|outcome| matches!(outcome, Ok(queued) if *queued > 0))
            {
                queued.notify_one();
            }
            for ((_, reply), outcome) in group.into_iter().zip(outcomes) {
                let _ = reply.send(outcome);
            }
        }
        Err(err) => {
            for (_, reply) in group {
                let _ = reply.send(Err(copy(&err)));
            }
        }
    }
}

type Outcomes = Vec<Result<usize, RepositoryError>>;

/// Commits `txn`; if that fails, no create of the group was stored, whatever
/// its outcome said.
async fn commit(db: &Database, txn: DatabaseTransaction, outcomes: Outcomes) -> Result<Outcomes, RepositoryError> {
    txn.commit().await.map_err(|e| db.classify(e))?;
    Ok(outcomes)
}

/// Every create of the group in as few hand-offs as the strings allow.
/// `Ok(Err(()))`: something failed that one create may own; the transaction
/// was rolled back, and the group should be run one create at a time.
async fn all_at_once(
    db: &Database,
    creates: &[&Create],
) -> Result<Result<(DatabaseTransaction, Outcomes), ()>, RepositoryError> {
    let txn = db.write.begin().await.map_err(|e| db.classify(e))?;
    let mut each = Vec::with_capacity(creates.len());
    for (tag, create) in creates.iter().enumerate() {
        each.push(statements_of(create, DatabaseBackend::Sqlite, Some(tag))?);
    }
    let mut rows = Vec::new();
    for chunk in chunks(&each) {
        match run_in_turn(db, &txn, chunk.iter().flatten().cloned().collect()).await {
            Ok(answered) => rows.extend(answered),
            Err(err) => return give_up(txn, err).await,
        }
    }
    let mut read = vec![Recipients::default(); creates.len()];
    for row in rows {
        let tag: i64 = row.try_get("", "tag").map_err(|e| db.classify(e))?;
        let webhook = row.try_get::<Option<Uuid>>("", "id").map_err(|e| db.classify(e))?;
        let entry = usize::try_from(tag)
            .ok()
            .and_then(|tag| read.get_mut(tag))
            .ok_or_else(|| RepositoryError::Unexpected(anyhow!("a create's rows carry an unknown tag {tag}")))?;
        entry.add(webhook);
    }
    let mut outcomes = Vec::with_capacity(creates.len());
    for (create, recipients) in creates.iter().zip(read) {
        let written = recipients.written;
        match finish(db, &txn, create, recipients).await {
            // A written create whose deliveries could not be queued must not
            // stay written: only a savepoint can take it back alone.
            Err(err) if written => return give_up(txn, err).await,
            outcome => outcomes.push(outcome),
        }
    }
    Ok(Ok((txn, outcomes)))
}

/// Rolls back after `err`: the whole group fails if storage is unavailable
/// (running it again would wait out the busy timeout once per create),
/// otherwise it is run again one create at a time.
async fn give_up(
    txn: DatabaseTransaction,
    err: RepositoryError,
) -> Result<Result<(DatabaseTransaction, Outcomes), ()>, RepositoryError> {
    let _ = txn.rollback().await;
    match err {
        RepositoryError::Unavailable(_) => Err(err),
        _ => {
            tracing::debug!(
                error = format!("{err:#}"),
                "a group of creates is run again one at a time"
            );
            Ok(Err(()))
        }
    }
}

/// The most creates sent in one string.
const MAX_CHUNK: usize = 16;

/// Splits a group into runs of at most 16 creates whose statements read
/// alike. sqlx keeps each distinct string prepared, and a string holds four
/// statements per create: a string for every group size and mix (up to 64
/// creates, 256 statements each) took 70 MB of prepared statements under
/// load; this makes at most 16 strings per shape.
fn chunks(each: &[Vec<Statement>]) -> Vec<&[Vec<Statement>]> {
    let mut chunks = Vec::new();
    let mut rest = each;
    while let Some(first) = rest.first() {
        let alike = rest
            .iter()
            .take(MAX_CHUNK)
            .take_while(|statements| same_text(statements, first))
            .count();
        let (chunk, after) = rest.split_at(alike);
        chunks.push(chunk);
        rest = after;
    }
    chunks
}

fn same_text(a: &[Statement], b: &[Statement]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(a, b)| a.sql == b.sql)
}

async fn one_at_a_time(db: &Database, creates: &[&Create]) -> Result<(DatabaseTransaction, Outcomes), RepositoryError> {
    let txn = db.write.begin().await.map_err(|e| db.classify(e))?;
    let mut outcomes = Vec::with_capacity(creates.len());
    for create in creates {
        // On its own, so that a rollback to it can only ever undo this create.
        let savepoint = Statement::from_string(DatabaseBackend::Sqlite, format!("SAVEPOINT {SAVEPOINT}"));
        if let Err(err) = txn.execute(savepoint).await {
            let _ = txn.rollback().await;
            return Err(db.classify(err));
        }
        let outcome = create_in(db, &txn, create).await;
        match &outcome {
            Ok(_) => {
                let release = Statement::from_string(DatabaseBackend::Sqlite, format!("RELEASE {SAVEPOINT}"));
                if let Err(err) = txn.execute(release).await {
                    let _ = txn.rollback().await;
                    return Err(db.classify(err));
                }
            }
            Err(RepositoryError::Unavailable(_)) => {
                // Busy or out of disk: the next create would only wait again.
                let _ = txn.rollback().await;
                return Err(outcome
                    .err()
                    .unwrap_or(RepositoryError::Unavailable(anyhow!("storage is unavailable"))));
            }
            Err(_) => {
                // Undoes whatever of this create was written; if even that
                // fails, the transaction is gone and so is everything before it.
                let undo = Statement::from_string(DatabaseBackend::Sqlite, format!("ROLLBACK TO {SAVEPOINT}"));
                let release = Statement::from_string(DatabaseBackend::Sqlite, format!("RELEASE {SAVEPOINT}"));
                if let Err(err) = async {
                    txn.execute(undo).await?;
                    txn.execute(release).await
                }
                .await
                {
                    let _ = txn.rollback().await;
                    return Err(db.classify(err));
                }
            }
        }
        outcomes.push(outcome);
    }
    Ok((txn, outcomes))
}

/// One error for each caller of a group. The cause is kept as text.
fn copy(err: &RepositoryError) -> RepositoryError {
    match err {
        RepositoryError::Conflict => RepositoryError::Conflict,
        RepositoryError::Stale => RepositoryError::Stale,
        RepositoryError::LimitReached => RepositoryError::LimitReached,
        RepositoryError::Unavailable(cause) => RepositoryError::Unavailable(anyhow!("{cause:#}")),
        RepositoryError::Unexpected(cause) => RepositoryError::Unexpected(anyhow!("{cause:#}")),
    }
}

/// Writes `create` in `txn` and answers how many webhook deliveries it
/// queued. On an error the caller rolls back (the transaction, or on SQLite
/// the savepoint it set for this create).
pub(crate) async fn create_in(
    db: &Database,
    txn: &DatabaseTransaction,
    create: &Create,
) -> Result<usize, RepositoryError> {
    let backend = txn.get_database_backend();
    let mut statements = statements_of(create, backend, None)?;
    let mut recipients = Recipients::default();
    let rows = if backend == DatabaseBackend::Sqlite {
        run_in_turn(db, txn, statements).await?
    } else {
        // Serialises creates per organisation, so two concurrent creates
        // cannot both see room under the limit.
        txn.execute(Statement::from_sql_and_values(
            DatabaseBackend::Postgres,
            "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
            [create.key.org_id().to_string().into()],
        ))
        .await
        .map_err(|e| db.classify(e))?;
        let last = statements.pop();
        let mut statements = statements.into_iter();
        // The first statement is the key's insert: nothing after it runs if
        // it wrote nothing.
        let written = match statements.next() {
            Some(insert) => txn.execute(insert).await.map_err(|e| db.classify(e))?.rows_affected() == 1,
            None => false,
        };
        if written {
            for statement in statements {
                txn.execute(statement).await.map_err(|e| db.classify(e))?;
            }
        }
        match last {
            Some(query) if written => txn.query_all(query).await.map_err(|e| db.classify(e))?,
            _ => Vec::new(),
        }
    };
    for row in rows {
        recipients.add(row.try_get::<Option<Uuid>>("", "id").map_err(|e| db.classify(e))?);
    }
    finish(db, txn, create, recipients).await
}

/// What a create's last statement answered.
#[derive(Clone, Default)]
struct Recipients {
    written: bool,
    subscribed: Vec<Uuid>,
}

impl Recipients {
    fn add(&mut self, webhook: Option<Uuid>) {
        match webhook {
            Some(webhook) => self.subscribed.push(webhook),
            None => self.written = true,
        }
    }
}

/// The statements that store `create`: its key, written only if it clashes
/// with no stored key and the organisation has room, then its audit event and
/// (for a key found by digest) the digest generation, then a query answering
/// one row with no webhook id if the key was written and one per webhook to
/// tell; each row carries `tag` as the column `tag` when given.
///
/// On SQLite each statement after the insert acts only if the one before it
/// changed a row (`changes()`), which is what the insert itself did — not a
/// read that a stored twin of the key could also answer. PostgreSQL runs them
/// one by one and stops when the insert wrote nothing.
fn statements_of(
    create: &Create,
    backend: DatabaseBackend,
    tag: Option<usize>,
) -> Result<Vec<Statement>, RepositoryError> {
    let Create {
        key,
        event,
        max_active,
        now,
    } = create;
    let went_on = || match backend {
        DatabaseBackend::Sqlite => Expr::cust("changes() = 1"),
        _ => SimpleExpr::Constant(true.into()),
    };
    let mut statements = Vec::with_capacity(4);
    // Being a write from its first step, the statement takes SQLite's write
    // lock (waiting on the busy timeout) before it reads, so the checks cannot
    // race another process's insert.
    let mut admitted = has_room(key.org_id(), *max_active, *now);
    for clash in clash_conditions(key, event) {
        let stored = Query::select()
            .expr(Expr::val(1))
            .from(keys::Entity)
            .and_where(clash)
            .to_owned();
        admitted = admitted.and(Expr::exists(stored).not());
    }
    statements.push(backend.build(&insert_if(to_row(key), admitted)?));
    statements.push(backend.build(&insert_if(event_row(event), went_on())?));
    if key.parts().credential.lookup_digest.is_some() {
        // Other processes reload their filter of imported digests when this moves.
        statements.push(
            backend.build(
                Query::update()
                    .table(Alias::new("lookup_digest_generation"))
                    .value(Alias::new("generation"), Expr::col(Alias::new("generation")).add(1))
                    .and_where(Expr::col(Alias::new("id")).eq(1))
                    .and_where(went_on()),
            ),
        );
    }
    let event_type = EventType::of_action(event.action);
    let mut recipients = outbox::subscribers_query(key.org_id(), event_type).into_query();
    let mut written = Query::select();
    written.expr(Expr::val(Option::<Uuid>::None)).and_where(went_on());
    if let Some(tag) = tag {
        let tag = i64::try_from(tag).map_err(|e| RepositoryError::Unexpected(e.into()))?;
        recipients.expr_as(Expr::val(tag), Alias::new("tag"));
        written.expr(Expr::val(tag));
    }
    recipients.union(UnionType::All, written);
    statements.push(backend.build(&recipients));
    Ok(statements)
}

/// After the statements: why a key was not written, or its deliveries queued.
async fn finish(
    db: &Database,
    txn: &DatabaseTransaction,
    create: &Create,
    recipients: Recipients,
) -> Result<usize, RepositoryError> {
    let (key, event) = (&create.key, &create.event);
    if !recipients.written {
        // Rare, so asked again rather than on every create: which check kept
        // the key out.
        let clash = clash_conditions(key, event)
            .into_iter()
            .fold(Condition::any(), Condition::add);
        let taken = keys::Entity::find()
            .filter(clash)
            .count(txn)
            .await
            .map_err(|e| db.classify(e))?;
        return Err(if taken > 0 {
            RepositoryError::Conflict
        } else {
            RepositoryError::LimitReached
        });
    }
    let event_type = EventType::of_action(event.action);
    outbox::queue(txn, &recipients.subscribed, event_type, key, event.occurred_at)
        .await
        .map_err(|e| db.classify(e))
}

/// Runs `statements` in `txn` as one string, on SQLite: one hand-off to
/// sqlx's worker thread instead of one per statement. Answers the rows of
/// every statement that returns rows (here, each create's last).
async fn run_in_turn(
    db: &Database,
    txn: &DatabaseTransaction,
    statements: Vec<Statement>,
) -> Result<Vec<QueryResult>, RepositoryError> {
    let mut sql = String::new();
    let mut values = Vec::new();
    for statement in statements {
        sql.push_str(&statement.sql);
        sql.push_str(";\n");
        values.extend(statement.values.map(|v| v.0).unwrap_or_default());
    }
    txn.query_all(Statement::from_sql_and_values(DatabaseBackend::Sqlite, sql, values))
        .await
        .map_err(|e| db.classify(e))
}

/// Whether `org_id` has fewer than `max_active` active keys. Only that
/// matters, so at most `max_active` are counted: a create costs the same in an
/// organisation of 100 000 keys as in one of ten.
fn has_room(org_id: OrgId, max_active: u32, now: DateTime<Utc>) -> SimpleExpr {
    let mut active = Query::select();
    active
        .expr(Expr::val(1))
        .from(keys::Entity)
        .and_where(keys::Column::OrgId.eq(org_id.as_uuid()))
        // A literal, as the partial index of active keys is written: a bound
        // value matched against an index's condition makes SQLite re-prepare
        // the statement each time it is bound.
        .and_where(Expr::col((keys::Entity, keys::Column::IsRevoked)).eq(SimpleExpr::Constant(false.into())))
        .cond_where(
            Condition::any()
                .add(keys::Column::ExpiresAt.is_null())
                .add(keys::Column::ExpiresAt.gt(now)),
        )
        .limit(u64::from(max_active));
    let mut count = Query::select();
    count
        .expr(Expr::col(Asterisk).count())
        .from_subquery(active, Alias::new("bounded"));
    Expr::expr(SimpleExpr::SubQuery(None, Box::new(count.into_sub_query_statement()))).lt(i64::from(max_active))
}

/// What a stored key `key` may not be stored beside would match, one column
/// each: its id, public key, lookup id or lookup digest (what the unique
/// indexes hold, checked here so that a clash is a refusal rather than a
/// failed statement); a rotated-out key in its grace period with the same
/// lookup id or digest (an import of a key someone still holds); and for an
/// import, any stored key that is the same secret in another form — one
/// issued here (its SHA-256 hash) or imported before (its lookup digest),
/// current or rotated out, in any organisation.
///
/// One condition per column, each its own `EXISTS`: PostgreSQL plans an
/// `EXISTS` over an `OR` of them to stop at the first match and, before a
/// table has statistics, chose to scan every key for it (one scan per create
/// in the benchmark, 15 000 rows each).
fn clash_conditions(key: &ApiKey, event: &AuditEvent) -> Vec<SimpleExpr> {
    let credential = &key.parts().credential;
    let mut conditions = vec![
        keys::Column::Id.eq(key.id().as_uuid()),
        keys::Column::PublicKey.eq(key.public_key().as_str()),
        keys::Column::LookupId.eq(credential.lookup_id.as_str()),
        keys::Column::PreviousLookupId.eq(credential.lookup_id.as_str()),
    ];
    if let Some(digest) = credential.lookup_digest {
        conditions.push(keys::Column::LookupDigest.eq(digest.to_hex()));
        conditions.push(keys::Column::PreviousLookupDigest.eq(digest.to_hex()));
    }
    if let (AuditAction::Imported, Some(digest)) = (event.action, credential.secret_hash.sha256_digest()) {
        let (hex, hash) = (digest.to_hex(), credential.secret_hash.expose());
        conditions.push(keys::Column::LookupDigest.eq(hex.as_str()));
        conditions.push(keys::Column::PreviousLookupDigest.eq(hex.as_str()));
        conditions.push(keys::Column::SecretHash.eq(hash));
        conditions.push(keys::Column::PreviousSecretHash.eq(hash));
    }
    conditions
}

/// `INSERT … SELECT <the model's values> WHERE condition`: a row written only
/// when the condition holds, decided in the same statement.
fn insert_if<A>(model: A, condition: SimpleExpr) -> Result<InsertStatement, RepositoryError>
where
    A: ActiveModelTrait,
{
    let mut columns = Vec::new();
    let mut values = Query::select();
    for column in <A::Entity as EntityTrait>::Column::iter() {
        if let ActiveValue::Set(value) = model.get(column) {
            columns.push(column);
            values.expr(Expr::val(value));
        }
    }
    values.and_where(condition);
    let mut insert = Query::insert();
    insert
        .into_table(A::Entity::default())
        .columns(columns)
        .select_from(values)
        .map_err(|e| RepositoryError::Unexpected(e.into()))?;
    Ok(insert)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shaped(sql: &str) -> Vec<Statement> {
        vec![Statement::from_string(DatabaseBackend::Sqlite, sql.to_owned())]
    }

    #[test]
    fn chunks_are_runs_of_alike_creates_of_at_most_sixteen() {
        let mut each: Vec<_> = (0..35).map(|_| shaped("create")).collect();
        each.insert(20, shaped("import"));
        each.insert(21, shaped("import"));
        let sizes: Vec<usize> = chunks(&each).iter().map(|chunk| chunk.len()).collect();
        assert_eq!(sizes, [16, 4, 2, 15]);
        assert!(chunks(&each)
            .iter()
            .all(|chunk| chunk.iter().all(|statements| same_text(statements, &chunk[0]))));
        assert!(chunks(&[]).is_empty());
    }
}
