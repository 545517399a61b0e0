//! The outbox: deliveries written in the same transaction as the key change
//! that causes them, for the webhooks subscribed to the event, and the
//! once-per-key announcements (expiry, credits low) and their re-arming.

use chrono::{DateTime, Utc};
use keymint_application::{event_payload, DeliveryStatus};
use keymint_domain::{ApiKey, EventType, KeyId, OrgId};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveValue, ColumnTrait, ConnectionTrait, DatabaseBackend, DbErr, EntityTrait, QueryFilter, QuerySelect, Statement,
};
use uuid::Uuid;

use super::entity::{webhook_deliveries as deliveries, webhooks as hooks};

/// Queues `event` (about `key`, as it is after the change, or as it was
/// before a deletion) for every enabled webhook of its organisation that
/// receives its type, inside the caller's transaction: the change and its
/// deliveries are committed together or not at all. Returns how many.
pub(crate) async fn enqueue_type<C: ConnectionTrait>(
    conn: &C,
    event_type: EventType,
    key: &ApiKey,
    at: DateTime<Utc>,
) -> Result<usize, DbErr> {
    let subscribed = subscribers(conn, key.org_id(), event_type).await?;
    queue(conn, &subscribed, event_type, key, at).await
}

/// The enabled webhooks of `org_id` that receive `event_type`. Asked first,
/// so a change in an organisation without webhooks reads nothing more.
pub(crate) async fn subscribers<C: ConnectionTrait>(
    conn: &C,
    org_id: OrgId,
    event_type: EventType,
) -> Result<Vec<Uuid>, DbErr> {
    subscribers_query(org_id, event_type)
        .into_tuple::<Uuid>()
        .all(conn)
        .await
}

/// The query behind [`subscribers`], one column `id`, for callers that
/// send it together with other statements.
pub(crate) fn subscribers_query(org_id: OrgId, event_type: EventType) -> sea_orm::Select<hooks::Entity> {
    hooks::Entity::find()
        .select_only()
        .column(hooks::Column::Id)
        .filter(hooks::Column::OrgId.eq(org_id.as_uuid()))
        .filter(hooks::Column::Enabled.eq(true))
        // A literal, not a bound value: SQLite re-prepares a statement on
        // every run when a LIKE pattern is bound (the pattern could enable an
        // index), and event type names are fixed words of ours.
        .filter(Expr::cust(format!(
            r#""webhooks"."event_types" LIKE '% {} %'"#,
            event_type.as_str()
        )))
}

/// Queues one delivery of `event_type` about `key` per webhook in `subscribed`.
pub(crate) async fn queue<C: ConnectionTrait>(
    conn: &C,
    subscribed: &[Uuid],
    event_type: EventType,
    key: &ApiKey,
    at: DateTime<Utc>,
) -> Result<usize, DbErr> {
    if subscribed.is_empty() {
        return Ok(0);
    }
    let payload = event_payload(event_type, key, at);
    let rows = subscribed.iter().map(|webhook_id| deliveries::ActiveModel {
        seq: ActiveValue::NotSet,
        id: ActiveValue::Set(Uuid::now_v7()),
        webhook_id: ActiveValue::Set(*webhook_id),
        org_id: ActiveValue::Set(key.org_id().as_uuid()),
        key_id: ActiveValue::Set(key.id().as_uuid()),
        event_type: ActiveValue::Set(event_type.as_str().to_owned()),
        payload: ActiveValue::Set(payload.clone()),
        status: ActiveValue::Set(DeliveryStatus::Pending.as_str().to_owned()),
        attempts: ActiveValue::Set(0),
        next_attempt_at: ActiveValue::Set(Some(at)),
        locked_until: ActiveValue::Set(None),
        created_at: ActiveValue::Set(at),
    });
    deliveries::Entity::insert_many(rows)
        .exec_without_returning(conn)
        .await?;
    Ok(subscribed.len())
}

/// The column recording that a key's `key.expiring` went out.
pub(crate) const EXPIRY_ANNOUNCED: &str = "expiry_announced_at";
/// The column recording that a key's `key.credits_low` went out.
pub(crate) const CREDITS_LOW_ANNOUNCED: &str = "credits_low_announced_at";
pub(crate) fn announced_column(event_type: EventType) -> &'static str {
    if event_type == EventType::KeyExpiring {
        EXPIRY_ANNOUNCED
    } else {
        CREDITS_LOW_ANNOUNCED
    }
}

/// Forgets that a key's low credits were announced: a person changed them,
/// so running low again is news again.
pub(crate) async fn rearm_credits_low<C: ConnectionTrait>(conn: &C, key_id: KeyId) -> Result<(), DbErr> {
    let backend = conn.get_database_backend();
    let placeholder = if backend == DatabaseBackend::Postgres {
        "$1"
    } else {
        "?"
    };
    conn.execute(Statement::from_sql_and_values(
        backend,
        format!("UPDATE api_keys SET {CREDITS_LOW_ANNOUNCED} = NULL WHERE id = {placeholder}"),
        [key_id.as_uuid().into()],
    ))
    .await?;
    Ok(())
}
