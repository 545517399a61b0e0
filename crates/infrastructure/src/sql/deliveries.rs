//! The delivery queue in SQL: what every process claims from (fairly, under
//! a lease), records attempts into, and sweeps for announcements and old
//! deliveries.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use keymint_application::{
    AfterAttempt, Attempt, DeliveryQueue, DeliveryStatus, DueDelivery, Recorded, RepositoryError, Sweep,
};
use keymint_domain::{
    pick_fairly, ApiKey, BreakerPolicy, Candidate, EventType, FairShare, InFlight, OrgId, WebhookSecret, WebhookUrl,
};
use sea_orm::sea_query::{Alias, Expr};
use sea_orm::{
    ActiveValue, ColumnTrait, ConnectionTrait, DatabaseBackend, EntityTrait, FromQueryResult, PaginatorTrait,
    QueryFilter, QuerySelect, Statement, TransactionTrait,
};
use uuid::Uuid;

use super::entity::{
    api_keys as keys, webhook_attempts as attempts, webhook_deliveries as deliveries, webhooks as hooks,
};
use super::outbox::{announced_column, enqueue_type, CREDITS_LOW_ANNOUNCED, EXPIRY_ANNOUNCED};
use super::rows::{corrupt_webhook_row, from_row, health_of};
use super::SqlApiKeyRepository;

/// The advisory lock key that serialises claims across processes
/// (`keymint.webhook_claims`, as a number).
const CLAIM_LOCK: i64 = 0x6b6d_7768_636c_6d00;

/// The deliveries that could be sent now: each (webhook, key) lane's first
/// pending one, due and not leased, of an enabled endpoint that is not paused;
/// at most `per_endpoint` per endpoint, its oldest due.
const CANDIDATES_SQL: &str = "SELECT seq, webhook_id, org_id, next_attempt_at, probing FROM (
    SELECT d.seq, d.webhook_id, d.org_id, d.next_attempt_at,
           (w.paused_until IS NOT NULL) AS probing,
           ROW_NUMBER() OVER (PARTITION BY d.webhook_id ORDER BY d.next_attempt_at, d.seq) AS place
    FROM webhook_deliveries d JOIN webhooks w ON w.id = d.webhook_id
    WHERE d.status = 'pending' AND d.next_attempt_at <= ?
      AND (d.locked_until IS NULL OR d.locked_until <= ?)
      AND w.enabled AND (w.paused_until IS NULL OR w.paused_until <= ?)
      AND NOT EXISTS (SELECT 1 FROM webhook_deliveries e
        WHERE e.webhook_id = d.webhook_id AND e.key_id = d.key_id
          AND e.status = 'pending' AND e.seq < d.seq)
  ) lanes WHERE place <= ?";

/// Deliveries leased now (in flight in some process), per endpoint.
const IN_FLIGHT_SQL: &str = "SELECT webhook_id, org_id, COUNT(*) AS in_flight FROM webhook_deliveries
    WHERE status = 'pending' AND locked_until > ? GROUP BY webhook_id, org_id";

/// `sql` with PostgreSQL's numbered placeholders where it is the backend.
fn placeholders(backend: DatabaseBackend, sql: &str) -> String {
    if backend != DatabaseBackend::Postgres {
        return sql.to_owned();
    }
    let mut numbered = String::with_capacity(sql.len() + 16);
    let mut n = 0;
    for c in sql.chars() {
        if c == '?' {
            n += 1;
            numbered.push_str(&format!("${n}"));
        } else {
            numbered.push(c);
        }
    }
    numbered
}

#[derive(Debug, FromQueryResult)]
struct CandidateRow {
    seq: i64,
    webhook_id: Uuid,
    org_id: Uuid,
    next_attempt_at: DateTime<Utc>,
    probing: bool,
}

#[derive(Debug, FromQueryResult)]
struct InFlightRow {
    webhook_id: Uuid,
    org_id: Uuid,
    in_flight: i64,
}

/// The most keys one sweep announces of each kind; the next sweep takes the rest.
const SWEEP_BATCH: u64 = 100;

#[async_trait]
impl DeliveryQueue for SqlApiKeyRepository {
    async fn claim(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        share: FairShare,
    ) -> Result<Vec<DueDelivery>, RepositoryError> {
        let db = self.db();
        let backend = db.write.get_database_backend();
        let txn = db.write.begin().await.map_err(|e| db.classify(e))?;
        if backend == DatabaseBackend::Postgres {
            // Claims are short and serialised across processes, so the in-flight
            // counts each one reads are exact and the caps hold cluster-wide.
            txn.execute(Statement::from_string(
                backend,
                format!("SELECT pg_advisory_xact_lock({CLAIM_LOCK})"),
            ))
            .await
            .map_err(|e| db.classify(e))?;
        }
        let per_endpoint = i64::try_from(share.per_endpoint).unwrap_or(i64::MAX);
        let candidates = CandidateRow::find_by_statement(Statement::from_sql_and_values(
            backend,
            placeholders(backend, CANDIDATES_SQL),
            [now.into(), now.into(), now.into(), per_endpoint.into()],
        ))
        .all(&txn)
        .await
        .map_err(|e| db.classify(e))?;
        if candidates.is_empty() {
            txn.rollback().await.map_err(|e| db.classify(e))?;
            return Ok(Vec::new());
        }
        let mut in_flight = InFlight::default();
        for row in InFlightRow::find_by_statement(Statement::from_sql_and_values(
            backend,
            placeholders(backend, IN_FLIGHT_SQL),
            [now.into()],
        ))
        .all(&txn)
        .await
        .map_err(|e| db.classify(e))?
        {
            in_flight.add(
                row.webhook_id,
                OrgId::from_uuid(row.org_id),
                usize::try_from(row.in_flight).unwrap_or_default(),
            );
        }
        let candidates = candidates
            .into_iter()
            .map(|row| Candidate {
                seq: row.seq,
                webhook_id: row.webhook_id,
                org_id: OrgId::from_uuid(row.org_id),
                due_at: row.next_attempt_at,
                probing: row.probing,
            })
            .collect();
        let picked = pick_fairly(candidates, in_flight, share);
        if picked.is_empty() {
            txn.rollback().await.map_err(|e| db.classify(e))?;
            return Ok(Vec::new());
        }
        // Guarded again: on SQLite another process may have claimed one since.
        let list = vec!["?"; picked.len()].join(", ");
        let sql = format!(
            "UPDATE webhook_deliveries SET locked_until = ? WHERE seq IN ({list})
               AND status = 'pending' AND (locked_until IS NULL OR locked_until <= ?)
             RETURNING *"
        );
        let mut values: Vec<sea_orm::Value> = vec![lease_until.into()];
        values.extend(picked.iter().map(|seq| sea_orm::Value::from(*seq)));
        values.push(now.into());
        let claimed = deliveries::Entity::find()
            .from_raw_sql(Statement::from_sql_and_values(
                backend,
                placeholders(backend, &sql),
                values,
            ))
            .all(&txn)
            .await
            .map_err(|e| db.classify(e))?;
        let webhook_ids: Vec<Uuid> = claimed.iter().map(|row| row.webhook_id).collect();
        let webhooks = hooks::Entity::find()
            .filter(hooks::Column::Id.is_in(webhook_ids))
            .all(&txn)
            .await
            .map_err(|e| db.classify(e))?;
        txn.commit().await.map_err(|e| db.classify(e))?;
        let mut due = Vec::with_capacity(claimed.len());
        for row in claimed {
            let Some(webhook) = webhooks.iter().find(|w| w.id == row.webhook_id) else {
                // Deleted while claimed: its deliveries went with it.
                continue;
            };
            let mut secrets =
                vec![WebhookSecret::parse(&webhook.secret).map_err(|_| corrupt_webhook_row("secret", webhook.id))?];
            if let (Some(previous), Some(until)) = (&webhook.previous_secret, webhook.previous_secret_until) {
                if until > now {
                    secrets.push(
                        WebhookSecret::parse(previous)
                            .map_err(|_| corrupt_webhook_row("previous secret", webhook.id))?,
                    );
                }
            }
            due.push(DueDelivery {
                id: row.id,
                webhook_id: row.webhook_id,
                url: WebhookUrl::restore(webhook.url.clone()),
                secrets,
                payload: row.payload,
                attempts: u32::try_from(row.attempts).unwrap_or_default(),
            });
        }
        Ok(due)
    }

    async fn paused_endpoints(&self, now: DateTime<Utc>) -> Result<usize, RepositoryError> {
        let db = self.db();
        let paused = hooks::Entity::find()
            .filter(hooks::Column::PausedUntil.gt(now))
            .count(&db.read)
            .await
            .map_err(|e| db.classify(e))?;
        Ok(usize::try_from(paused).unwrap_or(usize::MAX))
    }

    async fn announce(&self, sweep: Sweep, now: DateTime<Utc>) -> Result<usize, RepositoryError> {
        let db = self.db();
        let expiring: Vec<Uuid> = keys::Entity::find()
            .select_only()
            .column(keys::Column::Id)
            .filter(keys::Column::IsRevoked.eq(false))
            .filter(keys::Column::ExpiresAt.gt(now))
            .filter(keys::Column::ExpiresAt.lte(sweep.expiring_before))
            .filter(Expr::col(Alias::new(EXPIRY_ANNOUNCED)).is_null())
            .limit(SWEEP_BATCH)
            .into_tuple()
            .all(&db.read)
            .await
            .map_err(|e| db.classify(e))?;
        let low: Vec<Uuid> = keys::Entity::find()
            .select_only()
            .column(keys::Column::Id)
            .filter(keys::Column::CreditsRemaining.lte(i64::try_from(sweep.credits_at_most).unwrap_or(i64::MAX)))
            .filter(Expr::col(Alias::new(CREDITS_LOW_ANNOUNCED)).is_null())
            .limit(SWEEP_BATCH)
            .into_tuple()
            .all(&db.read)
            .await
            .map_err(|e| db.classify(e))?;
        let mut announced = 0;
        for id in expiring {
            if self
                .announce_one(id, EventType::KeyExpiring, now, |key| sweep.finds_expiring(key, now))
                .await?
            {
                announced += 1;
            }
        }
        for id in low {
            // The query selects by the stored balance; the rule is the sweep's.
            let still_low = |key: &ApiKey| sweep.finds_low_credits(key, now);
            if self.announce_one(id, EventType::KeyCreditsLow, now, still_low).await? {
                announced += 1;
            }
        }
        Ok(announced)
    }

    async fn prune(&self, before: DateTime<Utc>) -> Result<usize, RepositoryError> {
        let db = self.db();
        let settled = || {
            deliveries::Entity::find()
                .select_only()
                .column(deliveries::Column::Id)
                .filter(deliveries::Column::Status.ne(DeliveryStatus::Pending.as_str()))
                .filter(deliveries::Column::CreatedAt.lt(before))
        };
        let txn = db.write.begin().await.map_err(|e| db.classify(e))?;
        attempts::Entity::delete_many()
            .filter(attempts::Column::DeliveryId.in_subquery(sea_orm::QueryTrait::into_query(settled())))
            .exec(&txn)
            .await
            .map_err(|e| db.classify(e))?;
        let pruned = deliveries::Entity::delete_many()
            .filter(deliveries::Column::Status.ne(DeliveryStatus::Pending.as_str()))
            .filter(deliveries::Column::CreatedAt.lt(before))
            .exec(&txn)
            .await
            .map_err(|e| db.classify(e))?;
        txn.commit().await.map_err(|e| db.classify(e))?;
        Ok(usize::try_from(pruned.rows_affected).unwrap_or(usize::MAX))
    }

    async fn record(
        &self,
        delivery_id: Uuid,
        attempt: &Attempt,
        next: AfterAttempt,
        breaker: BreakerPolicy,
        now: DateTime<Utc>,
    ) -> Result<Recorded, RepositoryError> {
        let db = self.db();
        let txn = db.write.begin().await.map_err(|e| db.classify(e))?;
        // The webhook's row first, then the delivery's: the order a deletion
        // takes them in, so the two never wait on each other.
        let webhook_id = deliveries::Entity::find()
            .filter(deliveries::Column::Id.eq(delivery_id))
            .select_only()
            .column(deliveries::Column::WebhookId)
            .into_tuple::<Uuid>()
            .one(&txn)
            .await
            .map_err(|e| db.classify(e))?;
        let webhook = match webhook_id {
            Some(id) => hooks::Entity::find_by_id(id)
                .lock_exclusive()
                .one(&txn)
                .await
                .map_err(|e| db.classify(e))?,
            None => None,
        };
        let (status, next_attempt_at) = next.status();
        let updated = deliveries::Entity::update_many()
            .col_expr(deliveries::Column::Status, Expr::value(status.as_str()))
            .col_expr(deliveries::Column::NextAttemptAt, Expr::value(next_attempt_at))
            .col_expr(
                deliveries::Column::LockedUntil,
                Expr::value(Option::<DateTime<Utc>>::None),
            )
            .col_expr(
                deliveries::Column::Attempts,
                Expr::col(deliveries::Column::Attempts).add(1),
            )
            .filter(deliveries::Column::Id.eq(delivery_id))
            .exec(&txn)
            .await
            .map_err(|e| db.classify(e))?;
        // Its webhook was deleted during the attempt: nothing to record it on.
        if updated.rows_affected == 0 {
            txn.rollback().await.map_err(|e| db.classify(e))?;
            return Ok(Recorded::default());
        }
        attempts::Entity::insert(attempts::ActiveModel {
            id: ActiveValue::Set(Uuid::now_v7()),
            delivery_id: ActiveValue::Set(delivery_id),
            attempted_at: ActiveValue::Set(attempt.attempted_at),
            latency_ms: ActiveValue::Set(i64::try_from(attempt.latency_ms).unwrap_or(i64::MAX)),
            status_code: ActiveValue::Set(attempt.status_code.map(i32::from)),
            error: ActiveValue::Set(attempt.stored_error()),
        })
        .exec_without_returning(&txn)
        .await
        .map_err(|e| db.classify(e))?;
        // The breaker is read and written under the webhook's row lock (taken
        // above; SQLite's write lock), so attempts ending together all count.
        let mut recorded = Recorded::default();
        if let Some(webhook) = webhook {
            let before = health_of(&webhook);
            let after = before.after_attempt(attempt.succeeded(), now, breaker);
            if after != before {
                hooks::Entity::update_many()
                    .col_expr(
                        hooks::Column::ConsecutiveFailures,
                        Expr::value(i32::try_from(after.consecutive_failures).unwrap_or(i32::MAX)),
                    )
                    .col_expr(hooks::Column::PausedUntil, Expr::value(after.paused_until))
                    .filter(hooks::Column::Id.eq(webhook.id))
                    .exec(&txn)
                    .await
                    .map_err(|e| db.classify(e))?;
            }
            recorded = Recorded {
                paused: after.opened_from(&before),
                closed: before.paused_until.is_some() && after.paused_until.is_none(),
            };
        }
        txn.commit().await.map_err(|e| db.classify(e))?;
        Ok(recorded)
    }
}

impl SqlApiKeyRepository {
    /// Marks one key announced for `event_type` and queues its deliveries, in
    /// one transaction, unless another sweep did first or `still` no longer
    /// holds for the key as stored. Returns whether it was announced.
    async fn announce_one(
        &self,
        id: Uuid,
        event_type: EventType,
        now: DateTime<Utc>,
        still: impl Fn(&ApiKey) -> bool,
    ) -> Result<bool, RepositoryError> {
        let db = self.db();
        let txn = db.write.begin().await.map_err(|e| db.classify(e))?;
        let backend = txn.get_database_backend();
        let column = announced_column(event_type);
        let sql = if backend == DatabaseBackend::Postgres {
            format!("UPDATE api_keys SET {column} = $1 WHERE id = $2 AND {column} IS NULL")
        } else {
            format!("UPDATE api_keys SET {column} = ? WHERE id = ? AND {column} IS NULL")
        };
        let claimed = txn
            .execute(Statement::from_sql_and_values(backend, sql, [now.into(), id.into()]))
            .await
            .map_err(|e| db.classify(e))?;
        let key = match keys::Entity::find_by_id(id)
            .one(&txn)
            .await
            .map_err(|e| db.classify(e))?
        {
            Some(row) if claimed.rows_affected() > 0 => from_row(row)?,
            _ => {
                txn.rollback().await.map_err(|e| db.classify(e))?;
                return Ok(false);
            }
        };
        if !still(&key) {
            txn.rollback().await.map_err(|e| db.classify(e))?;
            return Ok(false);
        }
        let queued = enqueue_type(&txn, event_type, &key, now)
            .await
            .map_err(|e| db.classify(e))?;
        self.commit_queued(txn, queued).await?;
        Ok(true)
    }
}
