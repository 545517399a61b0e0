//! Keymint's use cases wired in-process over the in-memory store, for tests that
//! drive them (or an embedding service) without an HTTP server.

use std::sync::Arc;

use keymint_application::{Actor, ApiKeyRepository, ApiKeys, KeyPolicy, Principal, SecretHasher, VerificationCache};
use keymint_domain::{Environment, KeyId, KeyName, NewApiKey, OrgId};
use keymint_infrastructure::{Argon2Params, InMemoryApiKeyRepository, OsKeyGenerator, SystemClock};
use uuid::Uuid;

/// argon2 parameters for tests: they check behaviour, not cost.
pub const CHEAP_ARGON2: Argon2Params = Argon2Params {
    memory_kib: 64,
    iterations: 1,
    parallelism: 1,
};

/// An in-memory store holding one key, and the use cases that made it.
pub struct OneKey {
    /// The store.
    pub repository: Arc<dyn ApiKeyRepository>,
    /// Key management over it.
    pub keys: ApiKeys,
    /// Who created the key.
    pub actor: Actor,
    /// The key's organisation.
    pub org: OrgId,
    /// The key's id.
    pub id: KeyId,
    /// The key's private key.
    pub private_key: String,
}

/// A key named `name` in a fresh organisation, created through the use case with
/// `hasher`; changes to it evict from `cache`.
pub async fn one_key(name: &str, hasher: Arc<dyn SecretHasher>, cache: Arc<dyn VerificationCache>) -> OneKey {
    let repository: Arc<dyn ApiKeyRepository> = Arc::new(InMemoryApiKeyRepository::new());
    let keys = ApiKeys::new(
        repository.clone(),
        hasher,
        Arc::new(OsKeyGenerator),
        Arc::new(SystemClock),
        KeyPolicy::default(),
    )
    .with_cache(cache);
    let org = OrgId::from_uuid(Uuid::new_v4());
    let actor = Actor::new(&Principal::new(org, None), None);
    let request = NewApiKey::new(org, KeyName::new(name).unwrap(), None, Environment::Live);
    let created = keys.create(&actor, request).await.unwrap();
    OneKey {
        repository,
        id: created.key.id(),
        private_key: created.private_key.expose_secret().to_owned(),
        keys,
        actor,
        org,
    }
}
