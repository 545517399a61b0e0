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
//!
//! Here, the statements of one create and how they are run; the groups (their
//! queue, their transaction, the run again one create at a time) are in
//! `group`.

mod group;

use chrono::{DateTime, Utc};
use keymint_application::RepositoryError;
use keymint_domain::{ApiKey, AuditAction, AuditEvent, EventType, OrgId};
use sea_orm::sea_query::{Alias, Asterisk, Expr, InsertStatement, Query, SimpleExpr, UnionType};
use sea_orm::{
    ActiveModelTrait, ActiveValue, ColumnTrait, Condition, ConnectionTrait, DatabaseBackend, DatabaseTransaction,
    EntityTrait, Iterable, PaginatorTrait, QueryFilter, QueryResult, QueryTrait, Statement,
};
use uuid::Uuid;

use super::entity::api_keys as keys;
use super::outbox;
use super::rows::{event_row, to_row};
use super::Database;

pub(crate) use group::Group;

/// A key to store, with its audit event, under the organisation's limit.
#[derive(Clone)]
pub(crate) struct Create {
    pub key: ApiKey,
    pub event: AuditEvent,
    pub max_active: u32,
    pub now: DateTime<Utc>,
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
