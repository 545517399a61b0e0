//! Credits and rate-limit counts in SQL: each batch of verifications of a key
//! is settled in one transaction that holds the key's row lock, so processes
//! sharing a database never grant what the stored balance does not hold.

use anyhow::anyhow;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use keymint_application::{CreditChange, CreditChangeOutcome, Idempotency, RepositoryError, UsageLedger};
use keymint_domain::{AuditEvent, Credits, Demand, KeyId, Ledger, OrgId, Outcome, WindowCount};
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{
    ActiveValue, ColumnTrait, ConnectionTrait, DatabaseBackend, DatabaseTransaction, DbErr, EntityTrait, QueryFilter,
    Statement, TransactionTrait,
};

use super::entity::key_rate_windows as windows;
use super::entity::{api_key_events as events, api_keys as keys, idempotency_keys as idempotency};
use super::repository::SqlApiKeyRepository;
use super::rows::{credits_of, event_row, ratelimits_of, refill_of, refill_text};

fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// A replayable answer: `<remaining> <period micros> <refill or ->`.
fn answer_text(credits: &Credits) -> String {
    format!(
        "{} {} {}",
        credits.remaining(),
        credits.period().timestamp_micros(),
        credits.refill().map_or_else(|| "-".to_owned(), |r| refill_text(&r))
    )
}

fn answer_of(text: &str) -> Option<Credits> {
    let mut fields = text.split(' ');
    let remaining = fields.next()?.parse().ok()?;
    let period = DateTime::from_timestamp_micros(fields.next()?.parse().ok()?)?;
    let refill = match fields.next()? {
        "-" => None,
        other => Some(refill_of(other)?),
    };
    Some(Credits::from_parts(remaining, refill, period))
}

type Balance = (String, Option<i64>, Option<DateTime<Utc>>, Option<String>);

impl SqlApiKeyRepository {
    /// Takes the key's row lock (PostgreSQL) or the database's write lock
    /// (SQLite) and reads its balance in the same statement, so what is read is
    /// the state this transaction writes over. With `org`, only that
    /// organisation's key. `None` when no such key exists.
    async fn lock_balance(
        &self,
        txn: &DatabaseTransaction,
        id: KeyId,
        org: Option<OrgId>,
    ) -> Result<Option<Balance>, RepositoryError> {
        let backend = txn.get_database_backend();
        let postgres = backend == DatabaseBackend::Postgres;
        let mut values = vec![id.as_uuid().into()];
        let mut sql = format!(
            "UPDATE api_keys SET revision = revision WHERE id = {}",
            if postgres { "$1" } else { "?" }
        );
        if let Some(org) = org {
            sql.push_str(if postgres {
                " AND org_id = $2"
            } else {
                " AND org_id = ?"
            });
            values.push(org.as_uuid().into());
        }
        sql.push_str(" RETURNING ratelimits, credits_remaining, credits_period, credits_refill");
        let Some(row) = txn
            .query_one(Statement::from_sql_and_values(backend, sql, values))
            .await
            .map_err(|e| self.db().classify(e))?
        else {
            return Ok(None);
        };
        let read = |e: DbErr| RepositoryError::Unexpected(anyhow!("reading key {id}'s balance: {e}"));
        Ok(Some((
            row.try_get("", "ratelimits").map_err(read)?,
            row.try_get("", "credits_remaining").map_err(read)?,
            row.try_get("", "credits_period").map_err(read)?,
            row.try_get("", "credits_refill").map_err(read)?,
        )))
    }

    async fn write_credits(
        &self,
        txn: &DatabaseTransaction,
        id: KeyId,
        credits: &Credits,
    ) -> Result<(), RepositoryError> {
        keys::Entity::update_many()
            .col_expr(keys::Column::CreditsRemaining, Expr::value(to_i64(credits.remaining())))
            .col_expr(keys::Column::CreditsPeriod, Expr::value(credits.period()))
            .filter(keys::Column::Id.eq(id.as_uuid()))
            .exec(txn)
            .await
            .map_err(|e| self.db().classify(e))?;
        Ok(())
    }
}

fn corrupt(id: KeyId, what: &str) -> RepositoryError {
    RepositoryError::Unexpected(anyhow!("stored key {id} has invalid {what}"))
}

#[async_trait]
impl UsageLedger for SqlApiKeyRepository {
    async fn settle(
        &self,
        id: KeyId,
        demands: &[(Demand, DateTime<Utc>)],
    ) -> Result<Option<Vec<Outcome>>, RepositoryError> {
        let txn = self.db().write.begin().await.map_err(|e| self.db().classify(e))?;
        let Some((limits, remaining, period, refill)) = self.lock_balance(&txn, id, None).await? else {
            txn.rollback().await.map_err(|e| self.db().classify(e))?;
            return Ok(None);
        };
        let limits = ratelimits_of(&limits).ok_or_else(|| corrupt(id, "rate limits"))?;
        let credits = credits_of(remaining, period, refill.as_deref()).map_err(|()| corrupt(id, "credits"))?;
        let stored: Vec<WindowCount> = windows::Entity::find()
            .filter(windows::Column::KeyId.eq(id.as_uuid()))
            .all(&txn)
            .await
            .map_err(|e| self.db().classify(e))?
            .into_iter()
            .map(|row| WindowCount {
                name: row.name,
                window_start_ms: row.window_start_ms,
                used: u64::try_from(row.used).unwrap_or(0),
            })
            .collect();
        let mut ledger = Ledger::new(credits, stored.clone());
        let outcomes: Vec<Outcome> = demands
            .iter()
            .map(|(demand, now)| ledger.settle(&limits, demand, *now))
            .collect();
        if let Some(after) = ledger.credits().filter(|after| Some(*after) != credits.as_ref()) {
            self.write_credits(&txn, id, after).await?;
        }
        for count in ledger.windows().iter().filter(|count| !stored.contains(count)) {
            windows::Entity::insert(windows::ActiveModel {
                key_id: ActiveValue::Set(id.as_uuid()),
                name: ActiveValue::Set(count.name.clone()),
                window_start_ms: ActiveValue::Set(count.window_start_ms),
                used: ActiveValue::Set(to_i64(count.used)),
            })
            .on_conflict(
                OnConflict::columns([windows::Column::KeyId, windows::Column::Name])
                    .update_columns([windows::Column::WindowStartMs, windows::Column::Used])
                    .to_owned(),
            )
            .exec_without_returning(&txn)
            .await
            .map_err(|e| self.db().classify(e))?;
        }
        let dropped: Vec<String> = stored
            .iter()
            .filter(|old| !ledger.windows().iter().any(|count| count.name == old.name))
            .map(|old| old.name.clone())
            .collect();
        if !dropped.is_empty() {
            windows::Entity::delete_many()
                .filter(windows::Column::KeyId.eq(id.as_uuid()))
                .filter(windows::Column::Name.is_in(dropped))
                .exec(&txn)
                .await
                .map_err(|e| self.db().classify(e))?;
        }
        txn.commit().await.map_err(|e| self.db().classify(e))?;
        Ok(Some(outcomes))
    }

    async fn change_credits(
        &self,
        org_id: OrgId,
        id: KeyId,
        change: CreditChange,
        event: &AuditEvent,
        idempotency: Option<&Idempotency>,
        now: DateTime<Utc>,
    ) -> Result<CreditChangeOutcome, RepositoryError> {
        let txn = self.db().write.begin().await.map_err(|e| self.db().classify(e))?;
        // The key's lock first: a concurrent retry with the same idempotency key
        // waits here and then finds this call's answer below.
        let Some((_, remaining, period, refill)) = self.lock_balance(&txn, id, Some(org_id)).await? else {
            txn.rollback().await.map_err(|e| self.db().classify(e))?;
            return Ok(CreditChangeOutcome::NotFound);
        };
        if let Some(idempotency) = idempotency {
            let earlier = idempotency::Entity::find_by_id((org_id.as_uuid(), idempotency.key.clone()))
                .one(&txn)
                .await
                .map_err(|e| self.db().classify(e))?;
            if let Some(earlier) = earlier {
                let credits = answer_of(&earlier.response)
                    .ok_or_else(|| RepositoryError::Unexpected(anyhow!("unreadable idempotent answer")))?;
                if let Some(outcome) = idempotency.recall(&earlier.request, credits, earlier.created_at) {
                    txn.rollback().await.map_err(|e| self.db().classify(e))?;
                    return Ok(outcome);
                }
            }
            // Answers older than the window are forgotten (this one included,
            // so its key may be used anew).
            idempotency::Entity::delete_many()
                .filter(idempotency::Column::OrgId.eq(org_id.as_uuid()))
                .filter(idempotency::Column::CreatedAt.lt(idempotency.not_before))
                .exec(&txn)
                .await
                .map_err(|e| self.db().classify(e))?;
        }
        let Some(credits) = credits_of(remaining, period, refill.as_deref()).map_err(|()| corrupt(id, "credits"))?
        else {
            txn.rollback().await.map_err(|e| self.db().classify(e))?;
            return Ok(CreditChangeOutcome::Unlimited);
        };
        let after = match change.apply(credits, now) {
            Ok(after) => after,
            Err(refusal) => {
                txn.rollback().await.map_err(|e| self.db().classify(e))?;
                return Ok(CreditChangeOutcome::Refused(refusal));
            }
        };
        self.write_credits(&txn, id, &after).await?;
        events::Entity::insert(event_row(event))
            .exec_without_returning(&txn)
            .await
            .map_err(|e| self.db().classify(e))?;
        if let Some(idempotency) = idempotency {
            let stored = idempotency::Entity::insert(idempotency::ActiveModel {
                org_id: ActiveValue::Set(org_id.as_uuid()),
                idempotency_key: ActiveValue::Set(idempotency.key.clone()),
                request: ActiveValue::Set(idempotency.fingerprint.clone()),
                response: ActiveValue::Set(answer_text(&after)),
                created_at: ActiveValue::Set(now),
            })
            .exec_without_returning(&txn)
            .await;
            match stored.map_err(|e| self.db().classify(e)) {
                Ok(_) => {}
                // The same idempotency key, used at this moment on another key:
                // that is another request. Dropping the transaction undoes this one.
                Err(RepositoryError::Conflict) => return Ok(CreditChangeOutcome::IdempotencyMismatch),
                Err(other) => return Err(other),
            }
        }
        let queued = self.after_event(&txn, event).await?;
        self.commit_queued(txn, queued).await?;
        Ok(CreditChangeOutcome::Applied(after))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use keymint_domain::{Refill, RefillInterval};

    #[test]
    fn a_stored_answer_reads_back_to_the_same_credits() {
        let credits = Credits::from_parts(
            7,
            Some(Refill::new(RefillInterval::Monthly, 9, Some(3)).unwrap()),
            DateTime::from_timestamp_micros(1_764_000_000_123_456).unwrap(),
        );
        assert_eq!(answer_of(&answer_text(&credits)), Some(credits));
    }
}
