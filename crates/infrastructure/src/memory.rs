use std::collections::HashMap;
use std::sync::{PoisonError, RwLock};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use keymint_application::{
    CreditChange, CreditChangeOutcome, EventQuery, Idempotency, KeyLookup, KeyQuery, KeyStore, RepositoryError,
    StorageHealth, UsageLedger, UsageSink,
};
use keymint_domain::{ApiKey, AuditEvent, Credits, Demand, KeyId, Ledger, LookupId, OrgId, Outcome, WindowCount};

/// Keys held in the process's memory: for tests and demos (`database.url =
/// "memory:"`). It keeps the same uniqueness, scoping, limit and revision rules as
/// the SQL adapter, and loses everything when the process exits.
#[derive(Debug, Default)]
pub struct InMemoryApiKeyRepository {
    state: RwLock<State>,
}

#[derive(Debug, Default)]
struct State {
    keys: HashMap<KeyId, ApiKey>,
    events: Vec<AuditEvent>,
    windows: HashMap<KeyId, Vec<WindowCount>>,
    /// By organisation and idempotency key: the request's fingerprint, the
    /// credits it left, and when.
    answers: HashMap<(OrgId, String), (String, Credits, DateTime<Utc>)>,
}

impl State {
    /// Whether `candidate`'s id, public key or any lookup id clashes with another key.
    fn clashes(&self, candidate: &ApiKey) -> bool {
        let lookups = |key: &ApiKey| {
            std::iter::once(key.lookup_id().clone()).chain(key.previous_credential().map(|p| p.lookup_id.clone()))
        };
        self.keys.values().filter(|key| key.id() != candidate.id()).any(|key| {
            key.public_key() == candidate.public_key() || lookups(key).any(|l| lookups(candidate).any(|c| c == l))
        })
    }
}

impl InMemoryApiKeyRepository {
    /// An empty repository.
    pub fn new() -> Self {
        Self::default()
    }

    // Every change below is checked before anything is touched, so a panic cannot
    // leave State half-updated and a poisoned lock is safe to keep using.
    fn write(&self) -> std::sync::RwLockWriteGuard<'_, State> {
        self.state.write().unwrap_or_else(PoisonError::into_inner)
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(PoisonError::into_inner)
    }
}

#[async_trait]
impl KeyStore for InMemoryApiKeyRepository {
    async fn insert(
        &self,
        key: &ApiKey,
        event: &AuditEvent,
        max_active: u32,
        now: DateTime<Utc>,
    ) -> Result<(), RepositoryError> {
        let mut state = self.write();
        if state.keys.contains_key(&key.id()) || state.clashes(key) {
            return Err(RepositoryError::Conflict);
        }
        let active = state
            .keys
            .values()
            .filter(|k| k.org_id() == key.org_id() && k.is_active(now))
            .count();
        if active + usize::from(key.is_active(now)) > usize::try_from(max_active).unwrap_or(usize::MAX) {
            return Err(RepositoryError::LimitReached);
        }
        state.keys.insert(key.id(), key.clone());
        state.events.push(event.clone());
        Ok(())
    }

    async fn find(&self, org_id: OrgId, id: KeyId) -> Result<Option<ApiKey>, RepositoryError> {
        Ok(self.read().keys.get(&id).filter(|key| key.org_id() == org_id).cloned())
    }

    async fn list(&self, query: &KeyQuery) -> Result<Vec<ApiKey>, RepositoryError> {
        let state = self.read();
        let mut keys: Vec<&ApiKey> = state
            .keys
            .values()
            .filter(|key| key.org_id() == query.org_id)
            .filter(|key| query.environment.is_none_or(|env| key.environment() == env))
            .filter(|key| query.revoked.is_none_or(|revoked| key.is_revoked() == revoked))
            .filter(|key| query.owner_id.is_none() || key.owner_id() == query.owner_id.as_ref())
            .filter(|key| {
                query
                    .after
                    .is_none_or(|after| (key.created_at(), key.id()) < (after.created_at, after.id))
            })
            .collect();
        keys.sort_by_key(|key| std::cmp::Reverse((key.created_at(), key.id())));
        Ok(keys.into_iter().take(query.limit).cloned().collect())
    }

    async fn update(&self, key: &ApiKey, expected_revision: u32, event: &AuditEvent) -> Result<(), RepositoryError> {
        let mut state = self.write();
        let Some(current) = state
            .keys
            .get(&key.id())
            .filter(|stored| stored.org_id() == key.org_id())
        else {
            return Err(RepositoryError::Stale);
        };
        if current.revision() != expected_revision {
            return Err(RepositoryError::Stale);
        }
        let last_used_at = current.last_used_at();
        if state.clashes(key) {
            return Err(RepositoryError::Conflict);
        }
        let credits = current.credits().copied();
        let mut parts = key.parts().clone();
        // Usage is recorded separately; a change must not roll it back.
        parts.last_used_at = last_used_at;
        // Nor may it undo spending, unless it sets the credits anew.
        if !event.fields.iter().any(|field| field == "credits") {
            parts.credits = credits;
        }
        state.keys.insert(key.id(), ApiKey::restore(parts));
        state.events.push(event.clone());
        Ok(())
    }

    async fn delete(&self, org_id: OrgId, id: KeyId, event: &AuditEvent) -> Result<bool, RepositoryError> {
        let mut state = self.write();
        if state.keys.get(&id).is_none_or(|key| key.org_id() != org_id) {
            return Ok(false);
        }
        state.keys.remove(&id);
        state.windows.remove(&id);
        state.events.push(event.clone());
        Ok(true)
    }

    async fn events(&self, query: &EventQuery) -> Result<Vec<AuditEvent>, RepositoryError> {
        let state = self.read();
        let mut events: Vec<&AuditEvent> = state
            .events
            .iter()
            .filter(|e| e.org_id == query.org_id && e.key_id == query.key_id)
            .filter(|e| {
                query
                    .after
                    .is_none_or(|after| (e.occurred_at, e.id) < (after.occurred_at, after.id))
            })
            .collect();
        events.sort_by_key(|e| std::cmp::Reverse((e.occurred_at, e.id)));
        Ok(events.into_iter().take(query.limit).cloned().collect())
    }
}

#[async_trait]
impl KeyLookup for InMemoryApiKeyRepository {
    async fn find_by_lookup(&self, lookup_id: &LookupId) -> Result<Option<ApiKey>, RepositoryError> {
        let state = self.read();
        Ok(state
            .keys
            .values()
            .find(|key| {
                key.lookup_id() == lookup_id || key.previous_credential().is_some_and(|p| &p.lookup_id == lookup_id)
            })
            .cloned())
    }
}

#[async_trait]
impl UsageSink for InMemoryApiKeyRepository {
    async fn record_usage(&self, usage: &[(KeyId, DateTime<Utc>)]) -> Result<(), RepositoryError> {
        let mut state = self.write();
        for (id, at) in usage {
            if let Some(key) = state.keys.get_mut(id) {
                if key.last_used_at().is_none_or(|last| last < *at) {
                    let mut parts = key.parts().clone();
                    parts.last_used_at = Some(*at);
                    *key = ApiKey::restore(parts);
                }
            }
        }
        Ok(())
    }
}

#[async_trait]
impl StorageHealth for InMemoryApiKeyRepository {
    async fn ping(&self) -> Result<(), RepositoryError> {
        Ok(())
    }
}

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
        state.keys.insert(id, ApiKey::restore(parts));
        state.events.push(event.clone());
        if let Some(idempotency) = idempotency {
            state.answers.insert(
                (org_id, idempotency.key.clone()),
                (idempotency.fingerprint.clone(), after, now),
            );
        }
        Ok(CreditChangeOutcome::Applied(after))
    }
}
