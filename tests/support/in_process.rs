//! Keymint's use cases wired in-process over the in-memory store, for tests that
//! drive them (or an embedding service) without an HTTP server.

use std::sync::Arc;

use keymint_application::{Actor, ApiKeyRepository, ApiKeys, KeyPolicy, Principal, SecretHasher, VerificationCache};
use keymint_domain::{Environment, KeyId, KeyMaterial, KeyName, NewApiKey, OrgId, PrivateKey, CHECKSUM_CHARS};
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
        Arc::new(OsKeyGenerator::default()),
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

/// A guess at the real key: its lookup id (public), another secret, and the
/// checksum recomputed as anyone can (CRC32 is no secret), so the guess passes
/// the format check and costs the service a lookup and a hash.
pub fn guess_at(key: &str) -> String {
    const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let lookup = PrivateKey::parse(key).unwrap().lookup_id();
    let other = KeyMaterial::generate(Environment::Live, &mut rand_core::OsRng);
    let text = other
        .private_key()
        .expose_secret()
        .replacen(other.lookup_id().as_str(), lookup.as_str(), 1);
    let payload = &text[..text.len() - CHECKSUM_CHARS];
    let mut crc = u64::from(crc32fast::hash(payload.as_bytes()));
    let mut checksum = [0u8; CHECKSUM_CHARS];
    for digit in checksum.iter_mut().rev() {
        *digit = BASE62[(crc % 62) as usize];
        crc /= 62;
    }
    let guess = format!("{payload}{}", std::str::from_utf8(&checksum).unwrap());
    assert_eq!(PrivateKey::parse(&guess).unwrap().lookup_id(), lookup);
    guess
}
