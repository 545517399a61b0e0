//! The verification path in memory: the read of a presented key, lookup
//! digests and `last_used_at` (as `sql/verification.rs`).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use keymint_application::{KeyLookup, LookupDigests, RepositoryError, UsageSink};
use keymint_domain::{ApiKey, KeyDigest, KeyId, LookupId, SecretHash};

use super::{lookup_digests, InMemoryApiKeyRepository};

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

    async fn find_by_digest(&self, digest: &KeyDigest) -> Result<Option<ApiKey>, RepositoryError> {
        let state = self.read();
        Ok(state
            .keys
            .values()
            .find(|key| lookup_digests(key).any(|d| d.matches(digest)))
            .cloned())
    }

    async fn rehash(&self, id: KeyId, old: &SecretHash, new: &SecretHash) -> Result<bool, RepositoryError> {
        let mut state = self.write();
        Ok(state.keys.get_mut(&id).is_some_and(|key| key.rehash(old, new.clone())))
    }
}

#[async_trait]
impl LookupDigests for InMemoryApiKeyRepository {
    async fn digest_generation(&self) -> Result<i64, RepositoryError> {
        Ok(self.read().digest_generation)
    }

    async fn lookup_digests(&self) -> Result<Vec<KeyDigest>, RepositoryError> {
        Ok(self.read().keys.values().flat_map(lookup_digests).collect())
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
