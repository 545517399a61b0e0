//! Credits and rate-limit counts in memory, settled under the state's lock
//! (as `sql/ledger.rs`).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use keymint_application::{CreditChange, CreditChangeOutcome, Idempotency, RepositoryError, UsageLedger};
use keymint_domain::{ApiKey, AuditEvent, Demand, KeyId, Ledger, OrgId, Outcome};

use super::InMemoryApiKeyRepository;

#[async_trait]
impl UsageLedger for InMemoryApiKeyRepository {
    async fn settle(
        &self,
        id: KeyId,
        demands: &[(Demand, DateTime<Utc>)],
    ) -> Result<Option<Vec<Outcome>>, RepositoryError> {
        let mut state = self.write();
        let Some(key) = state.keys.get(&id) else {
            return Ok(None);
        };
        let limits = key.ratelimits().clone();
        let mut ledger = Ledger::new(
            key.credits().copied(),
            state.windows.get(&id).cloned().unwrap_or_default(),
        );
        let outcomes = demands
            .iter()
            .map(|(demand, now)| ledger.settle(&limits, demand, *now))
            .collect();
        if let Some(key) = state.keys.get_mut(&id) {
            let mut parts = key.parts().clone();
            parts.credits = ledger.credits().copied();
            *key = ApiKey::restore(parts);
        }
        state.windows.insert(id, ledger.windows().to_vec());
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
        let mut state = self.write();
        if let Some(idempotency) = idempotency {
            state.answers.retain(|_, (_, _, at)| *at >= idempotency.not_before);
        }
        let Some(key) = state.keys.get(&id).filter(|key| key.org_id() == org_id) else {
            return Ok(CreditChangeOutcome::NotFound);
        };
        if let Some(idempotency) = idempotency {
            let earlier = state.answers.get(&(org_id, idempotency.key.clone()));
            if let Some(outcome) = earlier.and_then(|(request, credits, at)| idempotency.recall(request, *credits, *at))
            {
                return Ok(outcome);
            }
        }
        let Some(credits) = key.credits().copied() else {
            return Ok(CreditChangeOutcome::Unlimited);
        };
        let after = match change.apply(credits, now) {
            Ok(after) => after,
            Err(refusal) => return Ok(CreditChangeOutcome::Refused(refusal)),
        };
        let mut parts = key.parts().clone();
        parts.credits = Some(after);
        let stored = ApiKey::restore(parts);
        state.keys.insert(id, stored.clone());
        let queued = state.record(event, &stored);
        if let Some(idempotency) = idempotency {
            state.answers.insert(
                (org_id, idempotency.key.clone()),
                (idempotency.fingerprint.clone(), after, now),
            );
        }
        drop(state);
        self.queued_some(queued);
        Ok(CreditChangeOutcome::Applied(after))
    }
}
