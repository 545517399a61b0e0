use std::collections::HashMap;
use std::sync::{PoisonError, RwLock};

use async_trait::async_trait;
use keymint_application::{ApiKeyRepository, RepositoryError};
use keymint_domain::{ApiKey, KeyId, OrgId};

/// Keys held in the process's memory: for tests and demos (`database.url =
/// "memory:"`). It keeps the same uniqueness and scoping rules as the SQL adapter,
/// and loses everything when the process exits.
#[derive(Debug, Default)]
pub struct InMemoryApiKeyRepository {
    state: RwLock<State>,
}

#[derive(Debug, Default)]
struct State {
    keys: HashMap<KeyId, ApiKey>,
    by_public_key: HashMap<String, KeyId>,
    by_lookup_id: HashMap<String, KeyId>,
}

impl InMemoryApiKeyRepository {
    /// An empty repository.
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait]
impl ApiKeyRepository for InMemoryApiKeyRepository {
    async fn insert(&self, key: &ApiKey) -> Result<(), RepositoryError> {
        // A panic elsewhere cannot leave State half-updated (every update below is
        // checked before any map is touched), so a poisoned lock is safe to reuse.
        let mut state = self.state.write().unwrap_or_else(PoisonError::into_inner);
        let public_key = key.public_key().as_str();
        let lookup_id = key.lookup_id().as_str();
        if state.keys.contains_key(&key.id())
            || state.by_public_key.contains_key(public_key)
            || state.by_lookup_id.contains_key(lookup_id)
        {
            return Err(RepositoryError::Conflict);
        }
        state.by_public_key.insert(public_key.to_owned(), key.id());
        state.by_lookup_id.insert(lookup_id.to_owned(), key.id());
        state.keys.insert(key.id(), key.clone());
        Ok(())
    }

    async fn find(&self, org_id: OrgId, id: KeyId) -> Result<Option<ApiKey>, RepositoryError> {
        let state = self.state.read().unwrap_or_else(PoisonError::into_inner);
        Ok(state
            .keys
            .get(&id)
            .filter(|key| key.org_id() == org_id)
            .cloned())
    }

    async fn ping(&self) -> Result<(), RepositoryError> {
        Ok(())
    }
}
