use std::sync::Arc;

use keymint_domain::{ApiKey, NewApiKey, PrivateKey};

use crate::{ApiKeyRepository, Clock, KeyGenerator, RepositoryError, SecretHasher};

/// A key that has just been created, with its private key: the only moment the
/// private key exists outside the caller's hands.
#[derive(Debug)]
pub struct CreatedApiKey {
    /// The stored key.
    pub key: ApiKey,
    /// The private key, to show once.
    pub private_key: PrivateKey,
}

/// Why a key could not be created.
#[derive(Debug, thiserror::Error)]
pub enum CreateApiKeyError {
    /// Storage is unreachable; nothing was stored and retrying may succeed.
    #[error("storage is unavailable")]
    StorageUnavailable(#[source] anyhow::Error),
    /// Anything else. Nothing is returned to the caller but a generic failure.
    #[error(transparent)]
    Unexpected(anyhow::Error),
}

/// Issues a new key: draws key material, hashes the private key, stores the key
/// with that hash and hands the private key back exactly once.
#[derive(Clone)]
pub struct CreateApiKey {
    repository: Arc<dyn ApiKeyRepository>,
    hasher: Arc<dyn SecretHasher>,
    generator: Arc<dyn KeyGenerator>,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for CreateApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CreateApiKey").finish_non_exhaustive()
    }
}

/// A collision of freshly drawn ids or keys is astronomically unlikely (≥ 95 random
/// bits each); a few fresh draws turn one into a non-event rather than an error.
const MAX_ATTEMPTS: usize = 3;

impl CreateApiKey {
    /// Wires the use case to its ports.
    pub fn new(
        repository: Arc<dyn ApiKeyRepository>,
        hasher: Arc<dyn SecretHasher>,
        generator: Arc<dyn KeyGenerator>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            repository,
            hasher,
            generator,
            clock,
        }
    }

    /// Creates a key for `request`.
    pub async fn execute(&self, request: NewApiKey) -> Result<CreatedApiKey, CreateApiKeyError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let material = self.generator.material(request.environment());
            let hash = self
                .hasher
                .hash(material.private_key())
                .await
                .map_err(|e| CreateApiKeyError::Unexpected(e.into()))?;
            let lookup_id = material.lookup_id();
            let display = material.private_key().display();
            let (public_key, private_key) = material.into_parts();
            let key = ApiKey::issue(
                request.clone(),
                self.generator.key_id(),
                public_key,
                lookup_id,
                display,
                hash,
                self.clock.now(),
            );
            match self.repository.insert(&key).await {
                Ok(()) => return Ok(CreatedApiKey { key, private_key }),
                Err(RepositoryError::Conflict) if attempt < MAX_ATTEMPTS => {
                    tracing::warn!(
                        attempt,
                        "freshly drawn key collided with a stored one; drawing again"
                    );
                }
                Err(RepositoryError::Conflict) => {
                    return Err(CreateApiKeyError::Unexpected(anyhow::anyhow!(
                        "{MAX_ATTEMPTS} freshly drawn keys all collided with stored ones"
                    )))
                }
                Err(RepositoryError::Unavailable(e)) => {
                    return Err(CreateApiKeyError::StorageUnavailable(e))
                }
                Err(RepositoryError::Unexpected(e)) => {
                    return Err(CreateApiKeyError::Unexpected(e))
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{HashError, MockApiKeyRepository, MockClock, MockKeyGenerator, MockSecretHasher};
    use chrono::{DateTime, TimeZone, Utc};
    use keymint_domain::{Environment, KeyId, KeyMaterial, KeyName, OrgId, SecretHash};
    use rand::rngs::StdRng;
    use rand::SeedableRng;
    use std::sync::Mutex;
    use uuid::Uuid;

    const HASH: &str = "$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2g";

    fn fixed_time() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap()
    }

    fn request() -> NewApiKey {
        NewApiKey::new(
            OrgId::from_uuid(Uuid::from_u128(42)),
            KeyName::new("billing").unwrap(),
            None,
            Environment::Live,
        )
    }

    fn generator() -> MockKeyGenerator {
        let rng = Mutex::new(StdRng::seed_from_u64(1));
        let mut generator = MockKeyGenerator::new();
        generator
            .expect_key_id()
            .returning(|| KeyId::from_uuid(Uuid::from_u128(7)));
        generator
            .expect_material()
            .returning(move |env| KeyMaterial::generate(env, &mut *rng.lock().unwrap()));
        generator
    }

    fn hasher() -> MockSecretHasher {
        let mut hasher = MockSecretHasher::new();
        hasher
            .expect_hash()
            .returning(|_| Ok(SecretHash::new(HASH).unwrap()));
        hasher
    }

    fn clock() -> MockClock {
        let mut clock = MockClock::new();
        clock.expect_now().returning(fixed_time);
        clock
    }

    fn use_case(repository: MockApiKeyRepository, hasher: MockSecretHasher) -> CreateApiKey {
        CreateApiKey::new(
            Arc::new(repository),
            Arc::new(hasher),
            Arc::new(generator()),
            Arc::new(clock()),
        )
    }

    #[tokio::test]
    async fn only_the_hash_of_the_private_key_reaches_the_repository() {
        let stored = Arc::new(Mutex::new(None));
        let seen = stored.clone();
        let mut repository = MockApiKeyRepository::new();
        repository.expect_insert().times(1).returning(move |key| {
            *seen.lock().unwrap() = Some(key.clone());
            Ok(())
        });

        let created = use_case(repository, hasher())
            .execute(request())
            .await
            .unwrap();

        let stored = stored.lock().unwrap().clone().unwrap();
        let secret = created.private_key.expose_secret();
        assert_eq!(stored.secret_hash().expose(), HASH);
        let everything_stored = format!(
            "{} {} {} {} {}",
            stored.public_key(),
            stored.lookup_id(),
            stored.private_key_display(),
            stored.name(),
            stored.secret_hash().expose()
        );
        assert!(
            !everything_stored.contains(&secret[25..]),
            "the secret part reached the repository"
        );
        assert_eq!(stored.lookup_id(), &created.private_key.lookup_id());
        assert_eq!(stored.private_key_display(), &created.private_key.display());
    }

    #[tokio::test]
    async fn the_hasher_is_handed_the_private_key_that_is_returned() {
        let returned_to_hasher = Arc::new(Mutex::new(String::new()));
        let seen = returned_to_hasher.clone();
        let mut hasher = MockSecretHasher::new();
        hasher.expect_hash().times(1).returning(move |key| {
            *seen.lock().unwrap() = key.expose_secret().to_owned();
            Ok(SecretHash::new(HASH).unwrap())
        });
        let mut repository = MockApiKeyRepository::new();
        repository.expect_insert().returning(|_| Ok(()));

        let created = use_case(repository, hasher)
            .execute(request())
            .await
            .unwrap();

        assert_eq!(
            *returned_to_hasher.lock().unwrap(),
            created.private_key.expose_secret()
        );
    }

    #[tokio::test]
    async fn no_private_key_is_returned_when_storage_fails() {
        let mut repository = MockApiKeyRepository::new();
        repository.expect_insert().times(1).returning(|_| {
            Err(RepositoryError::Unavailable(anyhow::anyhow!(
                "connection refused"
            )))
        });

        let result = use_case(repository, hasher()).execute(request()).await;

        assert!(matches!(
            result,
            Err(CreateApiKeyError::StorageUnavailable(_))
        ));
    }

    #[tokio::test]
    async fn an_unexpected_storage_failure_is_not_reported_as_unavailability() {
        let mut repository = MockApiKeyRepository::new();
        repository
            .expect_insert()
            .returning(|_| Err(RepositoryError::Unexpected(anyhow::anyhow!("bad row"))));

        let result = use_case(repository, hasher()).execute(request()).await;

        assert!(matches!(result, Err(CreateApiKeyError::Unexpected(_))));
    }

    #[tokio::test]
    async fn nothing_is_stored_when_hashing_fails() {
        let mut hasher = MockSecretHasher::new();
        hasher
            .expect_hash()
            .returning(|_| Err(HashError(anyhow::anyhow!("bad parameters"))));
        let mut repository = MockApiKeyRepository::new();
        repository.expect_insert().never();

        let result = use_case(repository, hasher).execute(request()).await;

        assert!(matches!(result, Err(CreateApiKeyError::Unexpected(_))));
    }

    #[tokio::test]
    async fn timestamps_come_from_the_clock_and_the_key_starts_active() {
        let mut repository = MockApiKeyRepository::new();
        repository.expect_insert().returning(|_| Ok(()));

        let created = use_case(repository, hasher())
            .execute(request())
            .await
            .unwrap();

        assert_eq!(created.key.created_at(), fixed_time());
        assert_eq!(created.key.revoked_at(), None);
        assert_eq!(created.key.last_used_at(), None);
        assert!(!created.key.is_revoked());
        assert_eq!(created.key.org_id(), request().org_id());
        assert_eq!(created.key.environment(), Environment::Live);
    }

    #[tokio::test]
    async fn a_collision_draws_fresh_material_and_succeeds() {
        let mut repository = MockApiKeyRepository::new();
        let mut calls = 0;
        let first_lookup = Arc::new(Mutex::new(None));
        let seen = first_lookup.clone();
        repository.expect_insert().times(2).returning(move |key| {
            calls += 1;
            if calls == 1 {
                *seen.lock().unwrap() = Some(key.lookup_id().clone());
                Err(RepositoryError::Conflict)
            } else {
                Ok(())
            }
        });

        let created = use_case(repository, hasher())
            .execute(request())
            .await
            .unwrap();

        assert_ne!(
            Some(created.private_key.lookup_id()),
            first_lookup.lock().unwrap().clone()
        );
    }

    #[tokio::test]
    async fn repeated_collisions_end_in_an_error_not_a_loop() {
        let mut repository = MockApiKeyRepository::new();
        repository
            .expect_insert()
            .times(MAX_ATTEMPTS)
            .returning(|_| Err(RepositoryError::Conflict));

        let result = use_case(repository, hasher()).execute(request()).await;

        assert!(matches!(result, Err(CreateApiKeyError::Unexpected(_))));
    }
}
