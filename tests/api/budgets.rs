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

/// The real hasher, counting the verifications it runs.
struct Counting {
    inner: Argon2Hasher,
    verifications: AtomicUsize,
}

#[async_trait]
impl SecretHasher for Counting {
    async fn hash(&self, key: &PrivateKey) -> Result<SecretHash, HashError> {
        self.inner.hash(key).await
    }
    async fn verify(&self, key: &PrivateKey, hash: &SecretHash) -> Result<bool, HashError> {
        self.verifications.fetch_add(1, Ordering::SeqCst);
        self.inner.verify(key, hash).await
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
    let hasher = Arc::new(Counting {
        inner: Argon2Hasher::new(CHEAP_ARGON2).unwrap(),
        verifications: AtomicUsize::new(0),
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
