//! Keys in memory: management reads and writes, and readiness (as
//! `sql/repository.rs`).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use keymint_application::{EventQuery, KeyQuery, KeyStore, RepositoryError, StorageHealth};
use keymint_domain::{ApiKey, AuditAction, AuditEvent, KeyId, OrgId};

use super::{lookup_digests, InMemoryApiKeyRepository};

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
        // An imported key must not be any stored key in another form (see the
        // SQL adapter).
        if let (AuditAction::Imported, Some(digest)) = (event.action, key.secret_hash().sha256_digest()) {
            let holds = |stored: &ApiKey| {
                let previous = stored.previous_credential();
                lookup_digests(stored).any(|d| d.matches(&digest))
                    || stored.secret_hash().sha256_digest().is_some_and(|d| d.matches(&digest))
                    || previous
                        .and_then(|p| p.secret_hash.sha256_digest())
                        .is_some_and(|d| d.matches(&digest))
            };
            if state.keys.values().any(holds) {
                return Err(RepositoryError::Conflict);
            }
        }
        let active = state
            .keys
            .values()
            .filter(|k| k.org_id() == key.org_id() && k.is_active(now))
            .count();
        if active + usize::from(key.is_active(now)) > usize::try_from(max_active).unwrap_or(usize::MAX) {
            return Err(RepositoryError::LimitReached);
        }
        if key.parts().credential.lookup_digest.is_some() {
            state.digest_generation += 1;
        }
        state.keys.insert(key.id(), key.clone());
        let queued = state.record(event, key);
        drop(state);
        self.queued_some(queued);
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
            .filter(|key| query.name.as_ref().is_none_or(|search| search.matches(key.name())))
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
        if !event.sets_credits() {
            parts.credits = credits;
        }
        let stored = ApiKey::restore(parts);
        state.keys.insert(key.id(), stored.clone());
        let queued = state.record(event, &stored);
        drop(state);
        self.queued_some(queued);
        Ok(())
    }

    async fn delete(&self, org_id: OrgId, id: KeyId, event: &AuditEvent) -> Result<bool, RepositoryError> {
        let mut state = self.write();
        if state.keys.get(&id).is_none_or(|key| key.org_id() != org_id) {
            return Ok(false);
        }
        let removed = state.keys.remove(&id);
        state.windows.remove(&id);
        let queued = match removed {
            Some(key) => state.record(event, &key),
            None => 0,
        };
        drop(state);
        self.queued_some(queued);
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
impl StorageHealth for InMemoryApiKeyRepository {
    async fn ping(&self) -> Result<(), RepositoryError> {
        Ok(())
    }
}
