//! Failure budgets with real hashing, counted: a burst of guesses gets exactly
//! its budget's worth of argon2 work, and nobody's guesses lock out a key's
//! rightful users.

use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures_util::future::join_all;
use keymint_application::{HashError, NoUsageTracker, NoVerificationCache, SecretHasher, Verification, VerifyApiKey};
use keymint_domain::{PrivateKey, SecretHash};
use keymint_infrastructure::{Argon2Hasher, SystemClock, WindowFailureLimiter};

use crate::support::{guess_at, one_key, CHEAP_ARGON2};

/// The real hasher, counting the verifications it runs, each taking at least
/// `delay`.
struct Counting {
    inner: Argon2Hasher,
    verifications: AtomicUsize,
    delay: Duration,
}

#[async_trait]
impl SecretHasher for Counting {
    async fn hash(&self, key: &PrivateKey) -> Result<SecretHash, HashError> {
        self.inner.hash(key).await
    }
    async fn verify(&self, key: &PrivateKey, hash: &SecretHash) -> Result<bool, HashError> {
        self.verifications.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(self.delay).await;
        self.inner.verify(key, hash).await
    }
    fn needs_rehash(&self, hash: &SecretHash) -> bool {
        self.inner.needs_rehash(hash)
    }
}

struct Service {
    verify: VerifyApiKey,
    hasher: Arc<Counting>,
    key: String,
}

/// One stored key; verification with no cache (every attempt is cold) and a
/// budget of `per_key` failures per client on a key.
async fn service(per_key: u32) -> Service {
    slow_service(per_key, Duration::ZERO).await
}

async fn slow_service(per_key: u32, delay: Duration) -> Service {
    let hasher = Arc::new(Counting {
        inner: Argon2Hasher::new(CHEAP_ARGON2).unwrap(),
        verifications: AtomicUsize::new(0),
        delay,
    });
    let target = one_key("target", hasher.clone(), Arc::new(NoVerificationCache)).await;
    let verify = VerifyApiKey::new(
        target.repository,
        hasher.clone(),
        Arc::new(SystemClock),
        Arc::new(NoVerificationCache),
        Arc::new(WindowFailureLimiter::new(per_key, 1_000, Duration::from_secs(60))),
        Arc::new(NoUsageTracker),
    );
    Service {
        verify,
        hasher,
        key: target.private_key,
    }
}

#[tokio::test]
async fn sixteen_concurrent_guesses_get_exactly_the_budgets_worth_of_hashes() {
    let s = service(10).await;
    let attacker: IpAddr = "203.0.113.66".parse().unwrap();
    let guesses: Vec<String> = (0..16).map(|_| guess_at(&s.key)).collect();
    let outcomes = join_all(guesses.iter().map(|g| s.verify.execute(g, Some(attacker)))).await;
    let outcomes: Vec<Verification> = outcomes.into_iter().map(Result::unwrap).collect();
    let limited = outcomes.iter().filter(|o| **o == Verification::RateLimited).count();
    assert_eq!(s.hasher.verifications.load(Ordering::SeqCst), 10, "{outcomes:?}");
    assert_eq!(limited, 6);
}

#[tokio::test]
async fn an_attackers_failures_never_lock_the_key_out_for_its_users() {
    let s = service(10).await;
    let attacker: IpAddr = "203.0.113.66".parse().unwrap();
    for _ in 0..30 {
        s.verify.execute(&guess_at(&s.key), Some(attacker)).await.unwrap();
    }
    assert_eq!(
        s.hasher.verifications.load(Ordering::SeqCst),
        10,
        "beyond the budget nothing is hashed"
    );
    // The key's users, from anywhere else, cold (no cache here), are served.
    for user in ["198.51.100.20", "198.51.100.21"] {
        let outcome = s.verify.execute(&s.key, Some(user.parse().unwrap())).await.unwrap();
        assert!(matches!(outcome, Verification::Valid(_)), "{user}: {outcome:?}");
    }
    // And a user's own successes never use up its budget.
    let user: IpAddr = "198.51.100.22".parse().unwrap();
    for _ in 0..25 {
        let outcome = s.verify.execute(&s.key, Some(user)).await.unwrap();
        assert!(matches!(outcome, Verification::Valid(_)));
    }
}

#[tokio::test]
async fn a_burst_of_one_clients_requests_with_its_uncached_key_is_one_hash_and_all_valid() {
    // The moment a busy client's cache entry lapses: 64 of its requests present
    // the key at once. They share one verification, so they spend no budget
    // (a per-key budget of 10 would otherwise refuse 54 of them) and one hash.
    let s = service(10).await;
    let client: IpAddr = "198.51.100.10".parse().unwrap();
    let outcomes = join_all((0..64).map(|_| s.verify.execute(&s.key, Some(client)))).await;
    let codes: Vec<&str> = outcomes.iter().map(|o| o.as_ref().unwrap().code()).collect();
    assert!(codes.iter().all(|code| *code == "VALID"), "{codes:?}");
    assert_eq!(s.hasher.verifications.load(Ordering::SeqCst), 1);
    // Once it is over, the next request verifies afresh (nothing is cached here).
    assert_eq!(s.verify.execute(&s.key, Some(client)).await.unwrap().code(), "VALID");
    assert_eq!(s.hasher.verifications.load(Ordering::SeqCst), 2);
    // Different clients do not share a verdict: each verifies for itself.
    let others: Vec<IpAddr> = (1..=3).map(|i| format!("192.0.2.{i}").parse().unwrap()).collect();
    join_all(others.iter().map(|ip| s.verify.execute(&s.key, Some(*ip)))).await;
    assert_eq!(s.hasher.verifications.load(Ordering::SeqCst), 5);
}

#[tokio::test]
async fn requests_waiting_on_an_abandoned_verification_verify_for_themselves() {
    let s = Arc::new(slow_service(10, Duration::from_millis(300)).await);
    let client: IpAddr = "198.51.100.11".parse().unwrap();
    // The first request leads, then its client goes away (the handler future is
    // dropped, as actix does on a disconnect) while others wait on it.
    let leader = {
        let s = s.clone();
        tokio::spawn(async move { s.verify.execute(&s.key, Some(client)).await })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    let followers = {
        let s = s.clone();
        tokio::spawn(async move { join_all((0..8).map(|_| s.verify.execute(&s.key, Some(client)))).await })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    leader.abort();
    let outcomes = tokio::time::timeout(Duration::from_secs(10), followers)
        .await
        .expect("followers are not left waiting")
        .unwrap();
    assert!(outcomes.iter().all(|o| o.as_ref().unwrap().code() == "VALID"));
    assert_eq!(
        s.hasher.verifications.load(Ordering::SeqCst),
        2,
        "one abandoned, one new leader"
    );
}
