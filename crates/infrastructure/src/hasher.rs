use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use std::sync::Arc;

use async_trait::async_trait;
use keymint_application::{HashError, SecretHasher};
use keymint_domain::{PrivateKey, SecretHash};
use tokio::sync::Semaphore;
use zeroize::Zeroizing;

/// argon2id cost parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Argon2Params {
    /// Memory in KiB (OWASP: 19456).
    pub memory_kib: u32,
    /// Passes over memory (OWASP: 2).
    pub iterations: u32,
    /// Lanes (OWASP: 1).
    pub parallelism: u32,
}

impl Default for Argon2Params {
    /// OWASP's recommended minimum for argon2id: m=19 MiB, t=2, p=1.
    fn default() -> Self {
        Self {
            memory_kib: 19_456,
            iterations: 2,
            parallelism: 1,
        }
    }
}

/// Hashes private keys with argon2id on tokio's blocking pool, so a hash (tens of
/// milliseconds of CPU) never stalls an async worker serving other requests.
///
/// At most one hash per core runs at once: more would not finish sooner, would
/// hold `memory_kib` each, and would let a burst of hashing crowd out everything
/// else. Callers beyond that wait their turn asynchronously.
#[derive(Clone, Debug)]
pub struct Argon2Hasher {
    params: Params,
    permits: Arc<Semaphore>,
}

impl Argon2Hasher {
    /// Checks the parameters once, so a bad configuration fails at start-up rather
    /// than on the first request.
    pub fn new(params: Argon2Params) -> Result<Self, HashError> {
        let params = Params::new(params.memory_kib, params.iterations, params.parallelism, None)
            .map_err(|e| HashError(anyhow::anyhow!("invalid argon2 parameters: {e}")))?;
        let cores = std::thread::available_parallelism().map(usize::from).unwrap_or(1);
        Ok(Self {
            params,
            permits: Arc::new(Semaphore::new(cores)),
        })
    }

    async fn on_blocking_pool<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> Result<T, HashError> + Send + 'static,
    ) -> Result<T, HashError> {
        // The permit travels with the work, so a caller that gives up (a client
        // disconnecting) does not free a core that is still hashing.
        let permit = Arc::clone(&self.permits)
            .acquire_owned()
            .await
            .map_err(|e| HashError(anyhow::anyhow!("hashing is shut down: {e}")))?;
        tokio::task::spawn_blocking(move || {
            let result = work();
            drop(permit);
            result
        })
        .await
        .map_err(|e| HashError(anyhow::anyhow!("hashing task failed: {e}")))?
    }

    fn argon2(&self) -> Argon2<'static> {
        Argon2::new(Algorithm::Argon2id, Version::V0x13, self.params.clone())
    }

    /// Hashes on the current thread; for benchmarks and the blocking pool.
    pub fn hash_blocking(&self, secret: &[u8]) -> Result<String, HashError> {
        let salt = SaltString::generate(&mut OsRng);
        self.argon2()
            .hash_password(secret, &salt)
            .map(|hash| hash.to_string())
            .map_err(|e| HashError(anyhow::anyhow!("argon2 hashing failed: {e}")))
    }
}

#[async_trait]
impl SecretHasher for Argon2Hasher {
    async fn hash(&self, key: &PrivateKey) -> Result<SecretHash, HashError> {
        // The copy moved to the blocking thread is wiped when that thread drops it.
        let secret = Zeroizing::new(key.expose_secret().as_bytes().to_vec());
        let hasher = self.clone();
        let phc = self.on_blocking_pool(move || hasher.hash_blocking(&secret)).await?;
        SecretHash::new(phc).map_err(|e| HashError(e.into()))
    }

    async fn verify(&self, key: &PrivateKey, hash: &SecretHash) -> Result<bool, HashError> {
        let secret = Zeroizing::new(key.expose_secret().as_bytes().to_vec());
        let phc = hash.expose().to_owned();
        let argon2 = self.argon2();
        self.on_blocking_pool(move || {
            let parsed =
                PasswordHash::new(&phc).map_err(|e| HashError(anyhow::anyhow!("unusable stored hash: {e}")))?;
            // The stored string carries its own parameters, so keys hashed before a
            // cost change keep verifying.
            match argon2.verify_password(&secret, &parsed) {
                Ok(()) => Ok(true),
                Err(argon2::password_hash::Error::Password) => Ok(false),
                Err(e) => Err(HashError(anyhow::anyhow!("unusable stored hash: {e}"))),
            }
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use keymint_domain::{Environment, KeyMaterial};

    fn cheap() -> Argon2Hasher {
        Argon2Hasher::new(Argon2Params {
            memory_kib: 64,
            iterations: 1,
            parallelism: 1,
        })
        .unwrap()
    }

    #[tokio::test]
    async fn hashes_are_argon2id_phc_strings_that_verify_only_their_key() {
        let hasher = cheap();
        let key = KeyMaterial::generate(Environment::Live, &mut rand_core::OsRng);
        let other = KeyMaterial::generate(Environment::Live, &mut rand_core::OsRng);

        let hash = hasher.hash(key.private_key()).await.unwrap();

        assert!(hash.expose().starts_with("$argon2id$v=19$m=64,t=1,p=1$"));
        assert!(hasher.verify(key.private_key(), &hash).await.unwrap());
        assert!(!hasher.verify(other.private_key(), &hash).await.unwrap());
    }

    #[tokio::test]
    async fn two_hashes_of_one_key_differ_by_their_salt() {
        let hasher = cheap();
        let key = KeyMaterial::generate(Environment::Test, &mut rand_core::OsRng);
        let (a, b) = (
            hasher.hash(key.private_key()).await.unwrap(),
            hasher.hash(key.private_key()).await.unwrap(),
        );
        assert_ne!(a, b);
    }

    #[tokio::test]
    async fn keys_hashed_with_older_parameters_still_verify() {
        let key = KeyMaterial::generate(Environment::Test, &mut rand_core::OsRng);
        let old = cheap().hash(key.private_key()).await.unwrap();
        let stronger = Argon2Hasher::new(Argon2Params {
            memory_kib: 128,
            iterations: 2,
            parallelism: 1,
        })
        .unwrap();
        assert!(stronger.verify(key.private_key(), &old).await.unwrap());
    }

    #[tokio::test]
    async fn an_unparseable_stored_hash_is_an_error_not_a_mismatch() {
        let key = KeyMaterial::generate(Environment::Test, &mut rand_core::OsRng);
        let broken = SecretHash::new("$argon2id$v=19$m=abc,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2g").unwrap();
        assert!(cheap().verify(key.private_key(), &broken).await.is_err());
    }

    #[test]
    fn invalid_parameters_are_refused_up_front() {
        assert!(Argon2Hasher::new(Argon2Params {
            memory_kib: 1,
            iterations: 0,
            parallelism: 1
        })
        .is_err());
    }
}
