use std::sync::Arc;
use std::time::{Duration, Instant};

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{Output, ParamsString, PasswordHash, Salt, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use async_trait::async_trait;
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, TryRecvError};
use keymint_application::{HashError, SecretHasher};
use keymint_domain::{KeyDigest, PrivateKey, SecretHash};
use prometheus_client::metrics::histogram::Histogram;
use tokio::sync::oneshot;
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

impl Argon2Params {
    /// The parameters as argon2 takes them, or why they are unusable.
    pub fn check(&self) -> Result<Params, HashError> {
        Params::new(self.memory_kib, self.iterations, self.parallelism, None)
            .map_err(|e| hash_error("invalid argon2 parameters", e))
    }
}

fn hash_error(context: &str, err: impl std::fmt::Display) -> HashError {
    HashError(anyhow::anyhow!("{context}: {err}"))
}

/// One hashing thread's argon2: the parameters and the working memory it owns
/// and reuses for every hash.
///
/// argon2 itself allocates `memory_kib` for every hash and frees it after; on a
/// pool of changing threads the allocator keeps each thread's freed buffer for
/// reuse by that thread, and a create storm left a process at 1.35 GB. Owned,
/// reused memory is bounded by the number of hashing threads, and spares each
/// hash its page faults. The blocks hold data derived from the secret: see
/// [`Argon2Worker::wipe`].
pub struct Argon2Worker {
    params: Params,
    memory: Vec<Block>,
}

impl std::fmt::Debug for Argon2Worker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Argon2Worker")
            .field("blocks", &self.memory.len())
            .finish_non_exhaustive()
    }
}

impl Argon2Worker {
    /// A worker whose memory is allocated on its first hash.
    pub fn new(params: Argon2Params) -> Result<Self, HashError> {
        Ok(Self {
            params: params.check()?,
            memory: Vec::new(),
        })
    }

    /// argon2's output for `secret` and `salt` under `argon2`, computed in this
    /// worker's memory (or, for a stored hash made with more memory than
    /// configured now, in a one-off buffer wiped when dropped).
    fn output(&mut self, argon2: &Argon2<'_>, secret: &[u8], salt: Salt<'_>) -> Result<Output, HashError> {
        let mut salt_bytes = [0u8; Salt::MAX_LENGTH];
        let salt = salt
            .decode_b64(&mut salt_bytes)
            .map_err(|e| hash_error("bad salt", e))?;
        let length = argon2.params().output_len().unwrap_or(Params::DEFAULT_OUTPUT_LEN);
        let blocks = argon2.params().block_count();
        let mut one_off = Zeroizing::new(BlockVec(Vec::new()));
        let memory = if blocks <= self.params.block_count() {
            if self.memory.len() < blocks {
                self.memory = vec![Block::default(); self.params.block_count()];
            }
            &mut self.memory
        } else {
            one_off.0 = vec![Block::default(); blocks];
            &mut one_off.0
        };
        Output::init_with(length, |out| {
            argon2
                .hash_password_into_with_memory(secret, salt, out, &mut *memory)
                .map_err(|_| argon2::password_hash::Error::Crypto)
        })
        .map_err(|e| hash_error("argon2 hashing failed", e))
    }

    /// Hashes `secret` with a fresh salt into a PHC string, on this thread.
    pub fn hash(&mut self, secret: &[u8]) -> Result<String, HashError> {
        let salt = SaltString::generate(&mut OsRng);
        let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, self.params.clone());
        let output = self.output(&argon2, secret, salt.as_salt())?;
        let hash = PasswordHash {
            algorithm: Algorithm::Argon2id.ident(),
            version: Some(Version::V0x13.into()),
            params: ParamsString::try_from(&self.params).map_err(|e| hash_error("argon2 parameters", e))?,
            salt: Some(salt.as_salt()),
            hash: Some(output),
        };
        Ok(hash.to_string())
    }

    /// Whether `secret` matches the PHC string `phc`, on this thread. The stored
    /// string carries its own parameters, so keys hashed before a cost change
    /// keep verifying.
    pub fn verify(&mut self, secret: &[u8], phc: &str) -> Result<bool, HashError> {
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
        let argon2 = Argon2::new(algorithm, version, params);
        // `Output`'s equality is constant-time.
        Ok(self.output(&argon2, secret, salt)? == expected)
    }

    /// Overwrites the working memory with zeros. A worker wipes before it
    /// waits for work, so secret-derived blocks never rest in idle memory; a
    /// worker that goes straight on to the next hash has it overwritten by that
    /// hash's first pass instead.
    pub fn wipe(&mut self) {
        self.memory.iter_mut().for_each(Zeroize::zeroize);
    }

    /// Whether the working memory holds nothing but zeros.
    pub fn is_wiped(&self) -> bool {
        self.memory
            .iter()
            .all(|block| block.as_ref().iter().all(|&word| word == 0))
    }
}

/// A one-off buffer, wiped when dropped.
struct BlockVec(Vec<Block>);

impl Zeroize for BlockVec {
    fn zeroize(&mut self) {
        self.0.iter_mut().for_each(Zeroize::zeroize);
    }
}

/// What a hashing thread is asked to do.
enum Work {
    Hash(Zeroizing<Vec<u8>>),
    Verify(Zeroizing<Vec<u8>>, String),
}

enum Done {
    Hashed(String),
    Verified(bool),
}

struct Job {
    work: Work,
    queued: Instant,
    reply: oneshot::Sender<Result<Done, HashError>>,
}

/// How long jobs waited for a hashing thread, and how many are waiting now;
/// read by metrics.
#[derive(Debug)]
pub struct HashingLoad {
    threads: usize,
    queued: std::sync::atomic::AtomicUsize,
    running: std::sync::atomic::AtomicUsize,
    waited_micros: std::sync::atomic::AtomicU64,
    jobs: std::sync::atomic::AtomicU64,
    waits: Histogram,
}

/// Upper bounds, in seconds, of the queue-wait histogram's buckets: from "a
/// thread was free" to "callers are timing out".
const WAIT_BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

impl HashingLoad {
    fn new(threads: usize) -> Self {
        Self {
            threads,
            queued: Default::default(),
            running: Default::default(),
            waited_micros: Default::default(),
            jobs: Default::default(),
            waits: Histogram::new(WAIT_BUCKETS),
        }
    }

    /// Hashing threads, busy or not: the hashing permits.
    pub fn threads(&self) -> usize {
        self.threads
    }

    /// How long each job waited for a thread, in seconds.
    pub fn waits(&self) -> &Histogram {
        &self.waits
    }

    /// Jobs waiting for a hashing thread now.
    pub fn queued(&self) -> usize {
        self.queued.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Hashing threads busy now.
    pub fn running(&self) -> usize {
        self.running.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Jobs started so far, and the total time they waited for a thread.
    pub fn waited(&self) -> (u64, Duration) {
        use std::sync::atomic::Ordering::Relaxed;
        (
            self.jobs.load(Relaxed),
            Duration::from_micros(self.waited_micros.load(Relaxed)),
        )
    }
}

/// How long a hashing thread keeps its memory with no work: after that it gives
/// the memory back, so an idle process returns to its idle size.
const RELEASE_IDLE_MEMORY_AFTER: Duration = Duration::from_secs(10);

/// Runs jobs from `jobs` on `worker` until every sender is gone, then returns
/// the worker (wiped). Between jobs, if none is waiting, the memory is wiped
/// before the thread blocks, and released if no job comes for `release_after`.
fn serve(mut worker: Argon2Worker, jobs: &Receiver<Job>, load: &HashingLoad, release_after: Duration) -> Argon2Worker {
    use std::sync::atomic::Ordering::Relaxed;
    loop {
        let job = match jobs.try_recv() {
            Ok(job) => job,
            Err(TryRecvError::Empty) => {
                worker.wipe();
                match jobs.recv_timeout(release_after) {
                    Ok(job) => job,
                    Err(RecvTimeoutError::Timeout) => {
                        worker.memory = Vec::new();
                        match jobs.recv() {
                            Ok(job) => job,
                            Err(_) => return worker,
                        }
                    }
                    Err(RecvTimeoutError::Disconnected) => return worker,
                }
            }
            Err(TryRecvError::Disconnected) => {
                worker.wipe();
                return worker;
            }
        };
        load.queued.fetch_sub(1, Relaxed);
        // A caller that gave up (a client that disconnected) costs no hash.
        if job.reply.is_closed() {
            continue;
        }
        let waited = job.queued.elapsed();
        load.waits.observe(waited.as_secs_f64());
        let waited = u64::try_from(waited.as_micros()).unwrap_or(u64::MAX);
        load.waited_micros.fetch_add(waited, Relaxed);
        load.jobs.fetch_add(1, Relaxed);
        load.running.fetch_add(1, Relaxed);
        let done = match &job.work {
            Work::Hash(secret) => worker.hash(secret).map(Done::Hashed),
            Work::Verify(secret, phc) => worker.verify(secret, phc).map(Done::Verified),
        };
        load.running.fetch_sub(1, Relaxed);
        let _ = job.reply.send(done);
    }
}

/// Hashes private keys with argon2id on dedicated threads, one per core, so a
/// hash (tens of milliseconds of CPU) never stalls an async worker.
///
/// More threads would not finish sooner and would let a burst of hashing crowd
/// out everything else; callers beyond them queue. Each thread owns its argon2
/// memory, so memory is bounded by the thread count whatever the load, and a
/// thread goes from one job to the next without an async hand-off. The
/// threads end when the last clone of the hasher is dropped.
#[derive(Clone, Debug)]
pub struct Argon2Hasher {
    jobs: Sender<Job>,
    load: Arc<HashingLoad>,
    /// How the hashes it makes start (`$argon2id$v=19$m=…,t=…,p=…$`): a stored
    /// hash that starts otherwise was made with other parameters.
    phc_lead: String,
}

impl Argon2Hasher {
    /// Checks the parameters and starts one hashing thread per core.
    pub fn new(params: Argon2Params) -> Result<Self, HashError> {
        let cores = std::thread::available_parallelism().map(usize::from).unwrap_or(1);
        Self::with_threads(params, cores)
    }

    /// The same with `threads` hashing threads.
    pub fn with_threads(params: Argon2Params, threads: usize) -> Result<Self, HashError> {
        params.check()?;
        let (sender, receiver) = crossbeam_channel::unbounded::<Job>();
        let threads = threads.max(1);
        let load = Arc::new(HashingLoad::new(threads));
        for i in 0..threads {
            let (receiver, load) = (receiver.clone(), Arc::clone(&load));
            let worker = Argon2Worker::new(params)?;
            std::thread::Builder::new()
                .name(format!("keymint-argon2-{i}"))
                .spawn(move || {
                    serve(worker, &receiver, &load, RELEASE_IDLE_MEMORY_AFTER);
                })
                .map_err(|e| hash_error("cannot start a hashing thread", e))?;
        }
        let phc_lead = format!(
            "$argon2id$v=19$m={},t={},p={}$",
            params.memory_kib, params.iterations, params.parallelism
        );
        Ok(Self {
            jobs: sender,
            load,
            phc_lead,
        })
    }

    /// How busy hashing is.
    pub fn load(&self) -> &Arc<HashingLoad> {
        &self.load
    }

    async fn run(&self, work: Work) -> Result<Done, HashError> {
        let (reply, done) = oneshot::channel();
        self.load.queued.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.jobs
            .send(Job {
                work,
                queued: Instant::now(),
                reply,
            })
            .map_err(|_| hash_error("hashing is shut down", "no hashing thread"))?;
        done.await
            .map_err(|_| hash_error("hashing failed", "the hashing thread stopped"))?
    }
}

#[async_trait]
impl SecretHasher for Argon2Hasher {
    async fn hash(&self, key: &PrivateKey) -> Result<SecretHash, HashError> {
        // The copy handed to the hashing thread is wiped when that thread drops it.
        let secret = Zeroizing::new(key.expose_secret().as_bytes().to_vec());
        match self.run(Work::Hash(secret)).await? {
            Done::Hashed(phc) => SecretHash::new(phc).map_err(|e| HashError(e.into())),
            Done::Verified(_) => Err(hash_error("hashing failed", "wrong answer from the hashing thread")),
        }
    }

    async fn verify(&self, key: &PrivateKey, hash: &SecretHash) -> Result<bool, HashError> {
        let secret = Zeroizing::new(key.expose_secret().as_bytes().to_vec());
        match self.run(Work::Verify(secret, hash.expose().to_owned())).await? {
            Done::Verified(matched) => Ok(matched),
            Done::Hashed(_) => Err(hash_error("hashing failed", "wrong answer from the hashing thread")),
        }
    }

    fn needs_rehash(&self, hash: &SecretHash) -> bool {
        !hash.expose().starts_with(&self.phc_lead)
    }
}

/// How a deployment hashes the private keys it stores.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HashScheme {
    /// SHA-256 of the whole key: for keys of 256 random bits, an approved
    /// one-way function is all a stored copy needs (NIST SP 800-63B), and a
    /// verification costs a microsecond instead of an argon2 run.
    Sha256,
    /// argon2id at the given cost, for deployments that want password-grade
    /// cost whatever the key.
    Argon2id(Argon2Params),
}

/// The deployment's hasher: new keys in its [`HashScheme`]; stored hashes
/// verified by the algorithm they name, so keys hashed with argon2 by earlier
/// releases keep verifying (on the argon2 threads) until they are hashed anew.
#[derive(Clone, Debug)]
pub struct KeyHasher {
    scheme: HashScheme,
    argon2: Argon2Hasher,
}

impl KeyHasher {
    /// New keys hashed per `scheme`; argon2 hashes, old or new, run on
    /// `argon2`'s threads.
    pub fn new(scheme: HashScheme, argon2: Argon2Hasher) -> Self {
        Self { scheme, argon2 }
    }

    /// How busy the argon2 threads are.
    pub fn load(&self) -> &Arc<HashingLoad> {
        self.argon2.load()
    }
}

#[async_trait]
impl SecretHasher for KeyHasher {
    async fn hash(&self, key: &PrivateKey) -> Result<SecretHash, HashError> {
        match self.scheme {
            HashScheme::Sha256 => Ok(SecretHash::sha256(&KeyDigest::of(key.expose_secret()))),
            HashScheme::Argon2id(_) => self.argon2.hash(key).await,
        }
    }

    async fn verify(&self, key: &PrivateKey, hash: &SecretHash) -> Result<bool, HashError> {
        if hash.algorithm() != "sha256" {
            return self.argon2.verify(key, hash).await;
        }
        let stored = hash
            .sha256_digest()
            .ok_or_else(|| hash_error("unusable stored hash", "not a SHA-256 digest"))?;
        Ok(stored.matches(&KeyDigest::of(key.expose_secret())))
    }

    fn needs_rehash(&self, hash: &SecretHash) -> bool {
        match self.scheme {
            HashScheme::Sha256 => hash.algorithm() != "sha256",
            HashScheme::Argon2id(_) => self.argon2.needs_rehash(hash),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use keymint_domain::{Environment, KeyMaterial};

    const CHEAP: Argon2Params = Argon2Params {
        memory_kib: 64,
        iterations: 1,
        parallelism: 1,
    };

    fn cheap() -> Argon2Hasher {
        Argon2Hasher::new(CHEAP).unwrap()
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
    async fn sha256_hashes_verify_only_their_key_and_argon2_hashes_keep_verifying_until_rehashed() {
        let hasher = KeyHasher::new(HashScheme::Sha256, cheap());
        let key = KeyMaterial::generate(Environment::Live, &mut rand_core::OsRng);
        let other = KeyMaterial::generate(Environment::Live, &mut rand_core::OsRng);

        let hash = hasher.hash(key.private_key()).await.unwrap();
        assert_eq!(
            hash,
            SecretHash::sha256(&KeyDigest::of(key.private_key().expose_secret()))
        );
        assert!(hasher.verify(key.private_key(), &hash).await.unwrap());
        assert!(!hasher.verify(other.private_key(), &hash).await.unwrap());
        assert!(!hasher.needs_rehash(&hash));

        let old = cheap().hash(key.private_key()).await.unwrap();
        assert!(hasher.verify(key.private_key(), &old).await.unwrap());
        assert!(!hasher.verify(other.private_key(), &old).await.unwrap());
        assert!(hasher.needs_rehash(&old));

        let damaged = SecretHash::new("$sha256$not-a-digest").unwrap();
        assert!(hasher.verify(key.private_key(), &damaged).await.is_err());
    }

    #[tokio::test]
    async fn a_password_grade_deployment_rehashes_sha256_and_other_argon2_costs() {
        let hasher = KeyHasher::new(HashScheme::Argon2id(CHEAP), cheap());
        let key = KeyMaterial::generate(Environment::Live, &mut rand_core::OsRng);
        let own = hasher.hash(key.private_key()).await.unwrap();
        assert_eq!(own.algorithm(), "argon2id");
        assert!(!hasher.needs_rehash(&own));
        let sha = SecretHash::sha256(&KeyDigest::of(key.private_key().expose_secret()));
        assert!(hasher.needs_rehash(&sha));
        let costlier = Argon2Hasher::new(Argon2Params {
            memory_kib: 128,
            ..CHEAP
        })
        .unwrap()
        .hash(key.private_key())
        .await
        .unwrap();
        assert!(hasher.needs_rehash(&costlier));
        assert!(hasher.verify(key.private_key(), &costlier).await.unwrap());
    }

    #[tokio::test]
    async fn an_unparseable_stored_hash_is_an_error_not_a_mismatch() {
        let key = KeyMaterial::generate(Environment::Test, &mut rand_core::OsRng);
        let broken = SecretHash::new("$argon2id$v=19$m=abc,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2g").unwrap();
        assert!(cheap().verify(key.private_key(), &broken).await.is_err());
    }

    fn cheap_worker() -> Argon2Worker {
        Argon2Worker::new(CHEAP).unwrap()
    }

    #[test]
    fn hashes_match_the_argon2_crates_own_and_verify_both_ways() {
        use argon2::password_hash::{PasswordHasher, PasswordVerifier};
        let mut hasher = cheap_worker();
        let secret = b"sk_test_interop";
        let ours = hasher.hash(secret).unwrap();
        let reference = Argon2::new(Algorithm::Argon2id, Version::V0x13, CHEAP.check().unwrap());
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
        assert!(hasher.verify(secret, &theirs).unwrap(), "we accept the crate's");
        assert!(!hasher.verify(b"sk_test_other", &theirs).unwrap());
    }

    #[test]
    fn a_worker_wipes_its_memory_before_it_waits_and_only_then() {
        let (jobs, receiver) = crossbeam_channel::unbounded();
        let load = HashingLoad::new(1);
        let mut replies = Vec::new();
        for i in 0..4 {
            let (reply, done) = oneshot::channel();
            jobs.send(Job {
                work: Work::Hash(Zeroizing::new(format!("sk_test_{i}").into_bytes())),
                queued: Instant::now(),
                reply,
            })
            .unwrap();
            load.queued.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            replies.push(done);
        }
        drop(jobs);
        let worker = serve(cheap_worker(), &receiver, &load, Duration::from_secs(60));
        assert_eq!(
            worker.memory.len(),
            CHEAP.check().unwrap().block_count(),
            "one buffer, reused"
        );
        assert!(worker.is_wiped(), "no secret-derived block is left in idle memory");
        assert_eq!((load.queued(), load.running(), load.waited().0), (0, 0, 4));
        for mut done in replies {
            assert!(matches!(done.try_recv(), Ok(Ok(Done::Hashed(_)))));
        }

        let mut dirty = cheap_worker();
        dirty.hash(b"sk_test_x").unwrap();
        assert!(!dirty.is_wiped(), "a hash leaves secret-derived blocks until wiped");
        dirty.wipe();
        assert!(dirty.is_wiped());
    }

    #[tokio::test]
    async fn a_caller_that_gave_up_costs_no_hash() {
        let (jobs, receiver) = crossbeam_channel::unbounded();
        let load = HashingLoad::new(1);
        let (reply, done) = oneshot::channel();
        drop(done);
        jobs.send(Job {
            work: Work::Hash(Zeroizing::new(b"sk_test_gone".to_vec())),
            queued: Instant::now(),
            reply,
        })
        .unwrap();
        drop(jobs);
        let worker = serve(cheap_worker(), &receiver, &load, Duration::from_secs(60));
        assert_eq!(load.waited().0, 0, "nothing was hashed");
        assert!(worker.memory.is_empty(), "no memory was even allocated");
    }

    #[test]
    fn an_idle_worker_gives_its_memory_back() {
        let (jobs, receiver) = crossbeam_channel::unbounded();
        let (reply, _done) = oneshot::channel();
        jobs.send(Job {
            work: Work::Hash(Zeroizing::new(b"sk_test_idle".to_vec())),
            queued: Instant::now(),
            reply,
        })
        .unwrap();
        let load = HashingLoad::new(1);
        load.queued.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let closer = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            drop(jobs);
        });
        let worker = serve(cheap_worker(), &receiver, &load, Duration::from_millis(50));
        closer.join().unwrap();
        assert_eq!(load.waited().0, 1, "the job ran");
        assert!(worker.memory.is_empty(), "idle past the limit, the memory was released");
    }

    #[tokio::test]
    async fn many_concurrent_hashes_all_complete_on_a_few_threads() {
        let hasher = Argon2Hasher::with_threads(CHEAP, 2).unwrap();
        let key = KeyMaterial::generate(Environment::Live, &mut rand_core::OsRng);
        let hashes: Vec<_> = futures_util::future::join_all((0..32).map(|_| hasher.hash(key.private_key())))
            .await
            .into_iter()
            .collect::<Result<_, _>>()
            .unwrap();
        for hash in &hashes {
            assert!(hasher.verify(key.private_key(), hash).await.unwrap());
        }
        assert_eq!(hasher.load().waited().0, 64);
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
