//! Webhooks in SQL: the endpoints, their secrets and health, and their
//! deliveries as people read and retry them. The queue the dispatcher claims
//! from is `deliveries.rs`; deliveries are written by `outbox.rs`.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use keymint_application::{Delivery, DeliveryStatus, RepositoryError, WebhookStore, WebhookStoreError};
use keymint_domain::{OrgId, Webhook, WebhookSecret};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveValue, ColumnTrait, ConnectionTrait, DatabaseBackend, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect, Statement, TransactionTrait,
};
use uuid::Uuid;

use super::entity::{webhook_attempts as attempts, webhook_deliveries as deliveries, webhooks as hooks};
use super::rows::{delivery_of, types_text, webhook_of};
use super::SqlApiKeyRepository;

impl SqlApiKeyRepository {
    async fn attempts_of(&self, ids: &[Uuid]) -> Result<Vec<attempts::Model>, RepositoryError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        attempts::Entity::find()
            .filter(attempts::Column::DeliveryId.is_in(ids.iter().copied()))
            .order_by_asc(attempts::Column::AttemptedAt)
            .order_by_asc(attempts::Column::Id)
            .all(&self.db().read)
            .await
            .map_err(|e| self.db().classify(e))
    }

    async fn with_attempts(&self, rows: Vec<deliveries::Model>) -> Result<Vec<Delivery>, RepositoryError> {
        let ids: Vec<Uuid> = rows.iter().map(|row| row.id).collect();
        let mut tries = self.attempts_of(&ids).await?;
        rows.into_iter()
            .map(|row| {
                let mine: Vec<attempts::Model> = tries.extract_if(.., |t| t.delivery_id == row.id).collect();
                delivery_of(row, mine)
            })
            .collect()
    }
}

#[async_trait]
impl WebhookStore for SqlApiKeyRepository {
    async fn insert_webhook(
        &self,
        webhook: &Webhook,
        secret: &WebhookSecret,
        max_per_org: u32,
    ) -> Result<(), WebhookStoreError> {
        let db = self.db();
        let txn = db.write.begin().await.map_err(|e| db.classify(e))?;
        if txn.get_database_backend() == DatabaseBackend::Postgres {
            // Serialises creates per organisation (a key space of its own, seed 1,
            // apart from key creation's), so two cannot both see room.
            txn.execute(Statement::from_sql_and_values(
                DatabaseBackend::Postgres,
                "SELECT pg_advisory_xact_lock(hashtextextended($1, 1))",
                [webhook.org_id.to_string().into()],
            ))
            .await
            .map_err(|e| db.classify(e))?;
        }
        // Writing first takes SQLite's write lock, so the count cannot race.
        hooks::Entity::insert(hooks::ActiveModel {
            id: ActiveValue::Set(webhook.id),
            org_id: ActiveValue::Set(webhook.org_id.as_uuid()),
            url: ActiveValue::Set(webhook.url.as_str().to_owned()),
            event_types: ActiveValue::Set(types_text(&webhook.event_types)),
            enabled: ActiveValue::Set(webhook.enabled),
            secret: ActiveValue::Set(secret.expose_secret().to_owned()),
            previous_secret: ActiveValue::Set(None),
            previous_secret_until: ActiveValue::Set(None),
            created_at: ActiveValue::Set(webhook.created_at),
            updated_at: ActiveValue::Set(webhook.updated_at),
            consecutive_failures: ActiveValue::Set(0),
            paused_until: ActiveValue::Set(None),
        })
        .exec_without_returning(&txn)
        .await
        .map_err(|e| db.classify(e))?;
        let count = hooks::Entity::find()
            .filter(hooks::Column::OrgId.eq(webhook.org_id.as_uuid()))
            .count(&txn)
            .await
            .map_err(|e| db.classify(e))?;
        if count > u64::from(max_per_org) {
            txn.rollback().await.map_err(|e| db.classify(e))?;
            return Err(WebhookStoreError::LimitReached);
        }
        txn.commit().await.map_err(|e| db.classify(e))?;
        Ok(())
    }

    async fn webhooks(&self, org_id: OrgId) -> Result<Vec<Webhook>, RepositoryError> {
        hooks::Entity::find()
            .filter(hooks::Column::OrgId.eq(org_id.as_uuid()))
            .order_by_asc(hooks::Column::CreatedAt)
            .order_by_asc(hooks::Column::Id)
            .all(&self.db().read)
            .await
            .map_err(|e| self.db().classify(e))?
            .into_iter()
            .map(webhook_of)
            .collect()
    }

    async fn webhook(&self, org_id: OrgId, id: Uuid) -> Result<Option<Webhook>, RepositoryError> {
        hooks::Entity::find_by_id(id)
            .filter(hooks::Column::OrgId.eq(org_id.as_uuid()))
            .one(&self.db().read)
            .await
            .map_err(|e| self.db().classify(e))?
            .map(webhook_of)
            .transpose()
    }

    async fn update_webhook(&self, webhook: &Webhook) -> Result<bool, RepositoryError> {
        let updated = hooks::Entity::update_many()
            .col_expr(hooks::Column::Url, Expr::value(webhook.url.as_str()))
            .col_expr(hooks::Column::EventTypes, Expr::value(types_text(&webhook.event_types)))
            .col_expr(hooks::Column::Enabled, Expr::value(webhook.enabled))
            .col_expr(hooks::Column::UpdatedAt, Expr::value(webhook.updated_at))
            .filter(hooks::Column::Id.eq(webhook.id))
            .filter(hooks::Column::OrgId.eq(webhook.org_id.as_uuid()))
            .exec(&self.db().write)
            .await
            .map_err(|e| self.db().classify(e))?;
        Ok(updated.rows_affected > 0)
    }

    async fn reset_health(&self, org_id: OrgId, id: Uuid) -> Result<(), RepositoryError> {
        hooks::Entity::update_many()
            .col_expr(hooks::Column::ConsecutiveFailures, Expr::value(0))
            .col_expr(hooks::Column::PausedUntil, Expr::value(Option::<DateTime<Utc>>::None))
            .filter(hooks::Column::Id.eq(id))
            .filter(hooks::Column::OrgId.eq(org_id.as_uuid()))
            .exec(&self.db().write)
            .await
            .map_err(|e| self.db().classify(e))?;
        Ok(())
    }

    async fn rotate_secret(
        &self,
        org_id: OrgId,
        id: Uuid,
        secret: &WebhookSecret,
        previous_until: DateTime<Utc>,
    ) -> Result<bool, RepositoryError> {
        let updated = hooks::Entity::update_many()
            .col_expr(hooks::Column::PreviousSecret, Expr::col(hooks::Column::Secret).into())
            .col_expr(hooks::Column::PreviousSecretUntil, Expr::value(Some(previous_until)))
            .col_expr(hooks::Column::Secret, Expr::value(secret.expose_secret()))
            .filter(hooks::Column::Id.eq(id))
            .filter(hooks::Column::OrgId.eq(org_id.as_uuid()))
            .exec(&self.db().write)
            .await
            .map_err(|e| self.db().classify(e))?;
        Ok(updated.rows_affected > 0)
    }

    async fn delete_webhook(&self, org_id: OrgId, id: Uuid) -> Result<bool, RepositoryError> {
        let db = self.db();
        let txn = db.write.begin().await.map_err(|e| db.classify(e))?;
        let deleted = hooks::Entity::delete_many()
            .filter(hooks::Column::Id.eq(id))
            .filter(hooks::Column::OrgId.eq(org_id.as_uuid()))
            .exec(&txn)
            .await
            .map_err(|e| db.classify(e))?;
        if deleted.rows_affected == 0 {
            txn.rollback().await.map_err(|e| db.classify(e))?;
            return Ok(false);
        }
        let gone = deliveries::Entity::find()
            .select_only()
            .column(deliveries::Column::Id)
            .filter(deliveries::Column::WebhookId.eq(id));
        attempts::Entity::delete_many()
            .filter(attempts::Column::DeliveryId.in_subquery(sea_orm::QueryTrait::into_query(gone)))
            .exec(&txn)
            .await
            .map_err(|e| db.classify(e))?;
        deliveries::Entity::delete_many()
            .filter(deliveries::Column::WebhookId.eq(id))
            .exec(&txn)
            .await
            .map_err(|e| db.classify(e))?;
        txn.commit().await.map_err(|e| db.classify(e))?;
        Ok(true)
    }

    async fn deliveries(
        &self,
        org_id: OrgId,
        webhook_id: Uuid,
        before: Option<i64>,
        limit: usize,
    ) -> Result<Vec<Delivery>, RepositoryError> {
        let mut select = deliveries::Entity::find()
            .filter(deliveries::Column::OrgId.eq(org_id.as_uuid()))
            .filter(deliveries::Column::WebhookId.eq(webhook_id));
        if let Some(before) = before {
            select = select.filter(deliveries::Column::Seq.lt(before));
        }
        let rows = select
            .order_by_desc(deliveries::Column::Seq)
            .limit(u64::try_from(limit).unwrap_or(u64::MAX))
            .all(&self.db().read)
            .await
            .map_err(|e| self.db().classify(e))?;
        self.with_attempts(rows).await
    }

    async fn retry_delivery(
        &self,
        org_id: OrgId,
        webhook_id: Uuid,
        delivery_id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<Option<Delivery>, RepositoryError> {
        let updated = deliveries::Entity::update_many()
            .col_expr(
                deliveries::Column::Status,
                Expr::value(DeliveryStatus::Pending.as_str()),
            )
            .col_expr(deliveries::Column::NextAttemptAt, Expr::value(Some(now)))
            .filter(deliveries::Column::Id.eq(delivery_id))
            .filter(deliveries::Column::WebhookId.eq(webhook_id))
            .filter(deliveries::Column::OrgId.eq(org_id.as_uuid()))
            .exec(&self.db().write)
            .await
            .map_err(|e| self.db().classify(e))?;
        if updated.rows_affected == 0 {
            return Ok(None);
        }
        // A person asking to send again is asking now: a paused endpoint is
        // probed at once (one delivery at a time) rather than after its pause.
        hooks::Entity::update_many()
            .col_expr(hooks::Column::PausedUntil, Expr::value(Some(now)))
            .filter(hooks::Column::Id.eq(webhook_id))
            .filter(hooks::Column::PausedUntil.gt(now))
            .exec(&self.db().write)
            .await
            .map_err(|e| self.db().classify(e))?;
        let rows = deliveries::Entity::find()
            .filter(deliveries::Column::Id.eq(delivery_id))
            .all(&self.db().write)
            .await
            .map_err(|e| self.db().classify(e))?;
        Ok(self.with_attempts(rows).await?.into_iter().next())
    }
}
