use std::sync::{Arc, Mutex, PoisonError};

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{Output, ParamsString, PasswordHash, Salt, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use async_trait::async_trait;
use keymint_application::{HashError, SecretHasher};
use keymint_domain::{PrivateKey, SecretHash};
use tokio::sync::Semaphore;
use zeroize::{Zeroize, Zeroizing};

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

fn hash_error(context: &str, err: impl std::fmt::Display) -> HashError {
    HashError(anyhow::anyhow!("{context}: {err}"))
}

/// argon2's working memory, allocated once per hashing permit and reused.
///
/// argon2 itself allocates `memory_kib` for every hash and frees it after. On
/// the blocking pool each hash may land on another thread, and the allocator
/// keeps each thread's freed buffer for reuse by that thread: a create storm
/// left a process at 1.35 GB. Owning the memory bounds it by the permits (one
/// buffer per core), and warm memory also spares each hash its page faults.
/// The blocks hold data derived from the secret, so they are wiped before a
/// buffer goes back to the pool.
#[derive(Debug)]
struct WorkingMemory {
    free: Mutex<Vec<Vec<Block>>>,
    blocks: usize,
}

impl WorkingMemory {
    fn take(&self) -> Vec<Block> {
        let reused = self.free.lock().unwrap_or_else(PoisonError::into_inner).pop();
        reused.unwrap_or_else(|| vec![Block::default(); self.blocks])
    }

    fn give_back(&self, mut memory: Vec<Block>) {
        memory.iter_mut().for_each(Zeroize::zeroize);
        self.free.lock().unwrap_or_else(PoisonError::into_inner).push(memory);
    }

    /// Runs `work` with a buffer of at least `blocks` blocks: a pooled one, or,
    /// for a stored hash made with more memory than configured now, one of its own.
    fn with<T>(&self, blocks: usize, work: impl FnOnce(&mut [Block]) -> T) -> T {
        if blocks > self.blocks {
            let mut memory = Zeroizing::new(BlockVec(vec![Block::default(); blocks]));
            return work(&mut memory.0);
        }
        let mut memory = self.take();
        let result = work(&mut memory);
        self.give_back(memory);
        result
    }
}

/// A one-off buffer, wiped when dropped.
struct BlockVec(Vec<Block>);

impl Zeroize for BlockVec {
    fn zeroize(&mut self) {
        self.0.iter_mut().for_each(Zeroize::zeroize);
    }
}

/// Hashes private keys with argon2id on tokio's blocking pool, so a hash (tens of
/// milliseconds of CPU) never stalls an async worker serving other requests.
///
/// At most one hash per core runs at once: more would not finish sooner, would
/// hold `memory_kib` each, and would let a burst of hashing crowd out everything
/// else. Callers beyond that wait their turn asynchronously. Each running hash
/// uses one of the hasher's own working buffers, so memory is bounded by the
/// permits, whatever the load.
#[derive(Clone, Debug)]
pub struct Argon2Hasher {
    params: Params,
    permits: Arc<Semaphore>,
    memory: Arc<WorkingMemory>,
}

impl Argon2Hasher {
    /// Checks the parameters once, so a bad configuration fails at start-up rather
    /// than on the first request.
    pub fn new(params: Argon2Params) -> Result<Self, HashError> {
        let params = Params::new(params.memory_kib, params.iterations, params.parallelism, None)
            .map_err(|e| hash_error("invalid argon2 parameters", e))?;
        let cores = std::thread::available_parallelism().map(usize::from).unwrap_or(1);
        Ok(Self {
            memory: Arc::new(WorkingMemory {
                free: Mutex::new(Vec::with_capacity(cores)),
                blocks: params.block_count(),
            }),
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
            .map_err(|e| hash_error("hashing is shut down", e))?;
        tokio::task::spawn_blocking(move || {
            let result = work();
            drop(permit);
            result
        })
        .await
        .map_err(|e| hash_error("hashing task failed", e))?
    }

    /// argon2's output for `secret` and `salt` under `argon2`, computed in the
    /// hasher's working memory.
    fn output(&self, argon2: &Argon2<'_>, blocks: usize, secret: &[u8], salt: Salt<'_>) -> Result<Output, HashError> {
        let mut salt_bytes = [0u8; Salt::MAX_LENGTH];
        let salt = salt
            .decode_b64(&mut salt_bytes)
            .map_err(|e| hash_error("bad salt", e))?;
        let length = argon2.params().output_len().unwrap_or(Params::DEFAULT_OUTPUT_LEN);
        self.memory.with(blocks, |memory| {
            Output::init_with(length, |out| {
                argon2
                    .hash_password_into_with_memory(secret, salt, out, memory)
                    .map_err(|_| argon2::password_hash::Error::Crypto)
            })
            .map_err(|e| hash_error("argon2 hashing failed", e))
        })
    }

    /// Hashes on the current thread, into a PHC string; for benchmarks and the
    /// blocking pool.
    pub fn hash_blocking(&self, secret: &[u8]) -> Result<String, HashError> {
        let salt = SaltString::generate(&mut OsRng);
        let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, self.params.clone());
        let output = self.output(&argon2, self.params.block_count(), secret, salt.as_salt())?;
        let hash = PasswordHash {
            algorithm: Algorithm::Argon2id.ident(),
            version: Some(Version::V0x13.into()),
            params: ParamsString::try_from(&self.params).map_err(|e| hash_error("argon2 parameters", e))?,
            salt: Some(salt.as_salt()),
            hash: Some(output),
        };
        Ok(hash.to_string())
    }

    /// Whether `secret` matches the PHC string `phc`, on the current thread. The
    /// stored string carries its own parameters, so keys hashed before a cost
    /// change keep verifying.
    pub fn verify_blocking(&self, secret: &[u8], phc: &str) -> Result<bool, HashError> {
        let unusable = |e| hash_error("unusable stored hash", e);
        let parsed = PasswordHash::new(phc).map_err(unusable)?;
        let algorithm = Algorithm::try_from(parsed.algorithm).map_err(unusable)?;
        let version = parsed
            .version
            .map(Version::try_from)
            .transpose()
            .map_err(|e| hash_error("unusable stored hash", e))?
            .unwrap_or_default();
        let params = Params::try_from(&parsed).map_err(unusable)?;
        let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else {
            return Err(hash_error("unusable stored hash", "no salt or no hash"));
        };
        let blocks = params.block_count();
        let argon2 = Argon2::new(algorithm, version, params);
        // `Output`'s equality is constant-time.
        Ok(self.output(&argon2, blocks, secret, salt)? == expected)
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
        let hasher = self.clone();
        self.on_blocking_pool(move || hasher.verify_blocking(&secret, &phc))
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
    fn hashes_match_the_argon2_crates_own_and_verify_both_ways() {
        use argon2::password_hash::{PasswordHasher, PasswordVerifier};
        let hasher = cheap();
        let secret = b"sk_test_interop";
        let ours = hasher.hash_blocking(secret).unwrap();
        let reference = Argon2::new(Algorithm::Argon2id, Version::V0x13, hasher.params.clone());
        let parsed = PasswordHash::new(&ours).unwrap();
        assert!(
            reference.verify_password(secret, &parsed).is_ok(),
            "the crate accepts ours"
        );
        assert!(reference.verify_password(b"sk_test_other", &parsed).is_err());
        let theirs = reference
            .hash_password(secret, &SaltString::generate(&mut OsRng))
            .unwrap()
            .to_string();
        assert!(
            hasher.verify_blocking(secret, &theirs).unwrap(),
            "we accept the crate's"
        );
        assert!(!hasher.verify_blocking(b"sk_test_other", &theirs).unwrap());
    }

    #[tokio::test]
    async fn working_memory_is_bounded_by_the_permits_and_wiped_between_uses() {
        let hasher = cheap();
        let key = KeyMaterial::generate(Environment::Live, &mut rand_core::OsRng);
        let hashes: Vec<_> = futures_util::future::join_all((0..32).map(|_| hasher.hash(key.private_key())))
            .await
            .into_iter()
            .collect::<Result<_, _>>()
            .unwrap();
        for hash in &hashes {
            assert!(hasher.verify(key.private_key(), hash).await.unwrap());
        }
        let pooled = hasher.memory.free.lock().unwrap();
        assert!(!pooled.is_empty());
        assert!(pooled.len() <= hasher.permits.available_permits(), "{}", pooled.len());
        assert!(
            pooled
                .iter()
                .flatten()
                .all(|block| block.as_ref().iter().all(|&word| word == 0)),
            "no secret-derived block is left in idle memory"
        );
    }

    #[test]
    fn a_hash_made_with_more_memory_than_configured_still_verifies() {
        let bigger = Argon2Hasher::new(Argon2Params {
            memory_kib: 256,
            iterations: 1,
            parallelism: 1,
        })
        .unwrap();
        let phc = bigger.hash_blocking(b"sk_test_bigger").unwrap();
        assert!(cheap().verify_blocking(b"sk_test_bigger", &phc).unwrap());
        assert!(
            cheap().memory.free.lock().unwrap().is_empty(),
            "the pool keeps only its own size"
        );
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
