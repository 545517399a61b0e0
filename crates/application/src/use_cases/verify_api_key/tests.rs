use super::*;
use crate::{
    MockClock, MockDigestFilter, MockFailureLimiter, MockKeyLookup, MockSecretHasher, MockUsageTracker,
    MockVerificationCache,
};
use chrono::{DateTime, Duration, TimeZone, Utc};
use keymint_domain::{
    ApiKey, Credential, Environment, KeyDigest, KeyDisplay, KeyId, KeyMaterial, KeyName, NewApiKey, OrgId, PrivateKey,
    SecretHash,
};
use rand::rngs::StdRng;
use rand::SeedableRng;
use uuid::Uuid;

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 6, 1, 12, 0, 0).unwrap()
}

/// A reversible stand-in for argon2, so tests can build matching hashes.
fn fake_hash(key: &PrivateKey) -> SecretHash {
    SecretHash::new(format!("$fake${}", key.expose_secret())).unwrap()
}

fn hasher() -> MockSecretHasher {
    let mut hasher = MockSecretHasher::new();
    hasher
        .expect_verify()
        .returning(|key, hash| Ok(hash == &fake_hash(key)));
    hasher.expect_needs_rehash().returning(|_| false);
    hasher
}

struct Fixture {
    key: ApiKey,
    presented: String,
}

fn fixture(seed: u64, expires_at: Option<DateTime<Utc>>) -> Fixture {
    let material = KeyMaterial::generate(Environment::Live, &mut StdRng::seed_from_u64(seed));
    let credential = Credential {
        lookup_id: material.lookup_id(),
        secret_hash: fake_hash(material.private_key()),
        display: material.private_key().display(),
        lookup_digest: None,
    };
    let request = NewApiKey::new(
        OrgId::from_uuid(Uuid::from_u128(1)),
        KeyName::new("svc").unwrap(),
        None,
        Environment::Live,
    )
    .expiring_at(expires_at);
    let key = ApiKey::issue(
        request,
        KeyId::from_uuid(Uuid::from_u128(seed.into())),
        material.public_key().clone(),
        credential,
        now() - Duration::days(1),
    );
    Fixture {
        presented: material.private_key().expose_secret().to_owned(),
        key,
    }
}

struct Ports {
    repository: MockKeyLookup,
    hasher: MockSecretHasher,
    cache: MockVerificationCache,
    limiter: MockFailureLimiter,
    usage: MockUsageTracker,
    digests: MockDigestFilter,
}

/// A digest filter that knows no stored digest: no key was imported.
fn no_digests() -> MockDigestFilter {
    let mut digests = MockDigestFilter::new();
    digests.expect_may_hold().returning(|_| false);
    digests
}

/// A limiter that grants the attempt once and expects it never to be refunded:
/// the attempt stays counted as a failure.
fn kept_as_a_failure() -> MockFailureLimiter {
    let mut limiter = MockFailureLimiter::new();
    limiter.expect_try_reserve().times(1).returning(|_, _, _| true);
    limiter.expect_refund().never();
    limiter
}

impl Ports {
    fn new() -> Self {
        let mut cache = MockVerificationCache::new();
        cache.expect_get().returning(|_| None);
        cache.expect_get_or_refresh().returning(|_| None);
        cache.expect_evictions().returning(|| 0);
        let mut limiter = MockFailureLimiter::new();
        limiter.expect_try_reserve().returning(|_, _, _| true);
        limiter.expect_refund().returning(|_, _, _| ());
        Self {
            repository: MockKeyLookup::new(),
            hasher: hasher(),
            cache,
            limiter,
            usage: MockUsageTracker::new(),
            digests: no_digests(),
        }
    }

    fn storing(mut self, key: ApiKey) -> Self {
        self.repository.expect_find_by_lookup().returning(move |lookup| {
            Ok(
                (key.lookup_id() == lookup || key.previous_credential().is_some_and(|p| &p.lookup_id == lookup))
                    .then(|| key.clone()),
            )
        });
        self
    }

    fn use_case(self) -> VerifyApiKey {
        let mut clock = MockClock::new();
        clock.expect_now().returning(now);
        VerifyApiKey::new(
            Arc::new(self.repository),
            Arc::new(self.hasher),
            Arc::new(clock),
            Arc::new(self.cache),
            Arc::new(self.limiter),
            Arc::new(self.usage),
        )
        .with_digest_filter(Arc::new(self.digests))
    }
}

#[tokio::test]
async fn text_that_can_be_no_stored_key_is_refused_before_any_io_or_hashing() {
    let too_long = "k".repeat(257);
    for presented in [
        "",
        "sk_live_short",
        "nineteen characters",
        "a key with spaces in it",
        too_long.as_str(),
    ] {
        let mut ports = Ports::new();
        ports.repository.expect_find_by_lookup().never();
        ports.repository.expect_find_by_digest().never();
        ports.hasher = MockSecretHasher::new();
        ports.hasher.expect_verify().never();
        ports.cache = MockVerificationCache::new();
        ports.cache.expect_get().never();
        ports.cache.expect_get_or_refresh().never();
        ports.limiter = MockFailureLimiter::new();
        ports.limiter.expect_try_reserve().never();
        assert_eq!(
            ports.use_case().execute(presented, None).await.unwrap(),
            Verification::NotFound,
            "{presented}"
        );
    }
}

/// Other services hand out `sk_live_…` keys too: a key whose checksum fails
/// may be one brought in. When the digest filter knows no stored key with its
/// digest, it costs a digest and a set lookup, no read, no hash, and counts
/// against the client's failure budget like any miss.
#[tokio::test]
async fn a_mistyped_or_unknown_foreign_key_costs_no_read_and_spends_the_budget() {
    let f = fixture(1, None);
    let mut typo = f.presented.clone();
    typo.replace_range(30..31, if &typo[30..31] == "a" { "b" } else { "a" });
    for presented in [
        typo.as_str(),
        "pk_live_abcdefghijklmnopqrstuvwx",
        "ghp_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
    ] {
        let mut ports = Ports::new();
        ports.repository.expect_find_by_lookup().never();
        ports.repository.expect_find_by_digest().never();
        ports.hasher = MockSecretHasher::new();
        ports.limiter = kept_as_a_failure();
        let digest = KeyDigest::of(presented);
        ports.digests = MockDigestFilter::new();
        ports
            .digests
            .expect_may_hold()
            .withf(move |d| *d == digest)
            .times(1)
            .returning(|_| false);
        let verify = ports.use_case();
        assert_eq!(verify.execute(presented, None).await.unwrap(), Verification::NotFound);
        assert_eq!(verify.stats().digest_filtered(), 1);
        assert_eq!(verify.stats().digest_reads(), 0);
    }
}

#[tokio::test]
async fn a_valid_key_is_verified_cached_and_its_use_recorded() {
    let f = fixture(2, None);
    let mut ports = Ports::new().storing(f.key.clone());
    ports
        .cache
        .expect_put_unless_evicted()
        .times(1)
        .returning(|_, _, _| true);
    let id = f.key.id();
    ports
        .usage
        .expect_record()
        .withf(move |key, at| *key == id && *at == now())
        .times(1)
        .returning(|_, _| ());

    let outcome = ports.use_case().execute(&f.presented, None).await.unwrap();

    let Verification::Valid(verified) = outcome else {
        panic!("{outcome:?}")
    };
    assert_eq!(
        (verified.key_id, verified.org_id, verified.name.as_str()),
        (id, f.key.org_id(), "svc")
    );
    assert_eq!(verified.valid_until, None);
}

#[tokio::test]
async fn a_cache_hit_needs_neither_storage_nor_hashing() {
    let f = fixture(3, None);
    let mut ports = Ports::new();
    let cached = VerifiedKey {
        key_id: f.key.id(),
        org_id: f.key.org_id(),
        lookup_id: f.key.lookup_id().clone(),
        environment: Environment::Live,
        name: "svc".into(),
        expires_at: None,
        valid_until: None,
        permissions: Default::default(),
        owner_id: None,
        meta: None,
        ratelimits: Default::default(),
        has_credits: false,
        usage: None,
    };
    let hit = cached.clone();
    ports.cache = MockVerificationCache::new();
    ports
        .cache
        .expect_get_or_refresh()
        .returning(move |_| Some((hit.clone(), false)));
    ports.repository.expect_find_by_lookup().never();
    ports.hasher = MockSecretHasher::new();
    ports.hasher.expect_verify().never();
    ports.usage.expect_record().times(1).returning(|_, _| ());

    assert_eq!(
        ports.use_case().execute(&f.presented, None).await.unwrap(),
        Verification::Valid(cached)
    );
}

#[tokio::test]
async fn a_cached_verification_that_lapsed_is_evicted_and_rechecked() {
    let f = fixture(4, Some(now() - Duration::seconds(1)));
    let mut ports = Ports::new().storing(f.key.clone());
    let stale = VerifiedKey {
        key_id: f.key.id(),
        org_id: f.key.org_id(),
        lookup_id: f.key.lookup_id().clone(),
        environment: Environment::Live,
        name: "svc".into(),
        expires_at: f.key.expires_at(),
        valid_until: None,
        permissions: Default::default(),
        owner_id: None,
        meta: None,
        ratelimits: Default::default(),
        has_credits: false,
        usage: None,
    };
    ports.cache = MockVerificationCache::new();
    ports
        .cache
        .expect_get_or_refresh()
        .returning(move |_| Some((stale.clone(), false)));
    ports.cache.expect_evictions().returning(|| 0);
    ports.cache.expect_evict().times(1).returning(|_| ());
    ports.cache.expect_evict_key().never();
    ports.cache.expect_put_unless_evicted().never();

    assert_eq!(
        ports.use_case().execute(&f.presented, None).await.unwrap(),
        Verification::Expired(RefusedKey::of(&f.key))
    );
}

#[tokio::test]
async fn a_wrong_secret_with_a_known_lookup_id_is_not_found_and_counted() {
    // The stored row has the presented key's lookup id but another key's hash: the
    // position of an attacker who knows a (public) lookup id and guesses secrets.
    let genuine = fixture(5, None);
    let guess = KeyMaterial::generate(Environment::Live, &mut StdRng::seed_from_u64(6));
    let mut parts = genuine.key.parts().clone();
    parts.credential.lookup_id = guess.lookup_id();
    let stored = ApiKey::restore(parts);
    let mut ports = Ports::new().storing(stored);
    ports.limiter = kept_as_a_failure();
    ports.cache.expect_put_unless_evicted().never();

    let outcome = ports
        .use_case()
        .execute(guess.private_key().expose_secret(), None)
        .await
        .unwrap();

    assert_eq!(outcome, Verification::NotFound);
}

#[tokio::test]
async fn an_unknown_key_is_not_found_and_counted() {
    let f = fixture(7, None);
    let mut ports = Ports::new();
    ports.repository.expect_find_by_lookup().returning(|_| Ok(None));
    ports.limiter = kept_as_a_failure();
    assert_eq!(
        ports.use_case().execute(&f.presented, None).await.unwrap(),
        Verification::NotFound
    );
}

#[tokio::test]
async fn over_the_failure_limit_nothing_is_read_or_hashed() {
    let f = fixture(8, None);
    let mut ports = Ports::new();
    ports.limiter = MockFailureLimiter::new();
    ports.limiter.expect_try_reserve().returning(|_, _, _| false);
    ports.limiter.expect_refund().never();
    ports.repository.expect_find_by_lookup().never();
    ports.hasher = MockSecretHasher::new();
    ports.hasher.expect_verify().never();
    let client = Some("203.0.113.9".parse().unwrap());
    assert_eq!(
        ports.use_case().execute(&f.presented, client).await.unwrap(),
        Verification::RateLimited
    );
}

#[tokio::test]
async fn revoked_and_expired_keys_are_reported_only_to_holders_of_the_secret() {
    let mut revoked = fixture(9, None);
    revoked.key.revoke(now());
    let expired = fixture(10, Some(now()));
    let refused = |f: &Fixture| RefusedKey::of(&f.key);
    let revoked_verdict = Verification::Revoked(refused(&revoked));
    let expired_verdict = Verification::Expired(refused(&expired));
    for (f, expected) in [(revoked, revoked_verdict), (expired, expired_verdict)] {
        let mut ports = Ports::new().storing(f.key.clone());
        // Holding the secret is no guess: the attempt is given back.
        ports.limiter = MockFailureLimiter::new();
        ports.limiter.expect_try_reserve().times(1).returning(|_, _, _| true);
        ports.limiter.expect_refund().times(1).returning(|_, _, _| ());
        ports.cache.expect_put_unless_evicted().never();
        assert_eq!(ports.use_case().execute(&f.presented, None).await.unwrap(), expected);
    }
}

#[tokio::test]
async fn a_rotated_out_key_verifies_only_inside_its_grace_period() {
    let f = fixture(11, None);
    let replacement = KeyMaterial::generate(Environment::Live, &mut StdRng::seed_from_u64(12));
    let credential = Credential {
        lookup_digest: None,
        lookup_id: replacement.lookup_id(),
        secret_hash: fake_hash(replacement.private_key()),
        display: replacement.private_key().display(),
    };
    let mut in_grace = f.key.clone();
    in_grace
        .rotate(credential.clone(), Duration::seconds(60), now() - Duration::seconds(30))
        .unwrap();
    let mut past_grace = f.key.clone();
    past_grace
        .rotate(credential, Duration::seconds(60), now() - Duration::seconds(90))
        .unwrap();

    let mut ports = Ports::new().storing(in_grace);
    ports.cache.expect_put_unless_evicted().returning(|_, _, _| true);
    ports.usage.expect_record().returning(|_, _| ());
    let outcome = ports.use_case().execute(&f.presented, None).await.unwrap();
    let Verification::Valid(verified) = outcome else {
        panic!("{outcome:?}")
    };
    assert_eq!(verified.valid_until, Some(now() + Duration::seconds(30)));

    let mut ports = Ports::new().storing(past_grace.clone());
    ports.limiter = kept_as_a_failure();
    assert_eq!(
        ports.use_case().execute(&f.presented, None).await.unwrap(),
        Verification::NotFound
    );

    let mut ports = Ports::new().storing(past_grace);
    ports.cache.expect_put_unless_evicted().returning(|_, _, _| true);
    ports.usage.expect_record().returning(|_, _| ());
    let new_key = replacement.private_key().expose_secret().to_owned();
    assert!(matches!(
        ports.use_case().execute(&new_key, None).await.unwrap(),
        Verification::Valid(_)
    ));
}

#[tokio::test]
async fn an_attempt_that_reaches_no_verdict_spends_no_budget() {
    let f = fixture(14, None);
    let mut ports = Ports::new();
    ports
        .repository
        .expect_find_by_lookup()
        .returning(|_| Err(RepositoryError::Unavailable(anyhow::anyhow!("down"))));
    ports.limiter = MockFailureLimiter::new();
    ports.limiter.expect_try_reserve().times(1).returning(|_, _, _| true);
    ports.limiter.expect_refund().times(1).returning(|_, _, _| ());
    assert!(ports.use_case().execute(&f.presented, None).await.is_err());
}

#[tokio::test]
async fn storage_outages_are_errors_not_verdicts() {
    let f = fixture(13, None);
    let mut ports = Ports::new();
    ports
        .repository
        .expect_find_by_lookup()
        .returning(|_| Err(RepositoryError::Unavailable(anyhow::anyhow!("down"))));
    assert!(matches!(
        ports.use_case().execute(&f.presented, None).await,
        Err(VerifyApiKeyError::StorageUnavailable(_))
    ));
}

fn cached_verification(key: &ApiKey, valid_until: Option<DateTime<Utc>>) -> VerifiedKey {
    VerifiedKey {
        key_id: key.id(),
        org_id: key.org_id(),
        lookup_id: key.lookup_id().clone(),
        environment: Environment::Live,
        name: "svc".into(),
        expires_at: None,
        valid_until,
        permissions: Default::default(),
        owner_id: None,
        meta: None,
        ratelimits: Default::default(),
        has_credits: false,
        usage: None,
    }
}

#[tokio::test]
async fn identifying_a_reported_key_in_use_takes_no_hash_and_no_budget() {
    let f = fixture(21, None);
    let mut ports = Ports::new();
    let hit = cached_verification(&f.key, None);
    ports.cache = MockVerificationCache::new();
    ports.cache.expect_get().returning(move |_| Some(hit.clone()));
    ports.repository.expect_find_by_lookup().never();
    ports.hasher = MockSecretHasher::new();
    ports.hasher.expect_verify().never();
    ports.limiter = MockFailureLimiter::new();
    ports.limiter.expect_try_reserve().never();

    let identity = ports
        .use_case()
        .identify(&f.presented, Budget::Client(None))
        .await
        .unwrap();
    assert!(
        matches!(identity, Identity::Holder { key_id, org_id, ref lookup_id }
            if key_id == f.key.id() && org_id == f.key.org_id() && lookup_id == f.key.lookup_id()),
        "{identity:?}"
    );
}

#[tokio::test]
async fn identifying_an_uncached_key_proves_its_secret_and_spends_budget_only_on_failure() {
    let f = fixture(22, None);
    // A cached verification whose grace period lapsed proves nothing.
    let mut ports = Ports::new().storing(f.key.clone());
    let lapsed = cached_verification(&f.key, Some(now() - Duration::seconds(1)));
    ports.cache = MockVerificationCache::new();
    ports.cache.expect_get().returning(move |_| Some(lapsed.clone()));
    let identity = ports.use_case().identify(&f.presented, Budget::Exempt).await.unwrap();
    assert!(matches!(identity, Identity::Holder { key_id, .. } if key_id == f.key.id()));

    // The right lookup id with a wrong secret is nobody's key, and a failure.
    let stranger = fixture(23, None);
    let mut parts = f.key.parts().clone();
    parts.credential.secret_hash = stranger.key.secret_hash().clone();
    let mut ports = Ports::new().storing(ApiKey::restore(parts));
    ports.limiter = kept_as_a_failure();
    let identity = ports
        .use_case()
        .identify(&f.presented, Budget::Client(None))
        .await
        .unwrap();
    assert!(matches!(identity, Identity::Unknown), "{identity:?}");
}

/// A key brought in from another system, stored as `$sha256$` of itself and
/// found by that digest.
fn imported(seed: u128, presented: &str) -> ApiKey {
    let digest = KeyDigest::of(presented);
    let material = KeyMaterial::generate(Environment::Test, &mut StdRng::seed_from_u64(seed as u64));
    let credential = Credential {
        lookup_id: material.lookup_id(),
        secret_hash: SecretHash::sha256(&digest),
        display: KeyDisplay::restore("xoxb-…test"),
        lookup_digest: Some(digest),
    };
    let request = NewApiKey::new(
        OrgId::from_uuid(Uuid::from_u128(1)),
        KeyName::new("imported").unwrap(),
        None,
        Environment::Test,
    );
    ApiKey::issue(
        request,
        KeyId::from_uuid(Uuid::from_u128(seed)),
        material.public_key().clone(),
        credential,
        now() - Duration::days(1),
    )
}

impl Ports {
    fn storing_by_digest(mut self, key: ApiKey) -> Self {
        self.repository.expect_find_by_digest().returning(move |digest| {
            Ok((key.parts().credential.lookup_digest.as_ref() == Some(digest)).then(|| key.clone()))
        });
        self.digests = MockDigestFilter::new();
        self.digests.expect_may_hold().returning(|_| true);
        self
    }
}

#[tokio::test]
async fn a_key_from_another_system_is_found_by_its_digest_and_cached_without_hashing() {
    let presented = "xoxb-123456789012-abcdefghijklmnopqrstuvwx";
    let key = imported(40, presented);
    let mut ports = Ports::new().storing_by_digest(key.clone());
    ports.repository.expect_find_by_lookup().never();
    ports.hasher = MockSecretHasher::new();
    ports.hasher.expect_verify().never();
    ports
        .cache
        .expect_put_unless_evicted()
        .times(1)
        .returning(|_, _, _| true);
    ports.usage.expect_record().times(1).returning(|_, _| ());
    let verify = ports.use_case();

    let Verification::Valid(verified) = verify.execute(presented, None).await.unwrap() else {
        panic!("not valid")
    };
    assert_eq!((verified.key_id, &verified.lookup_id), (key.id(), key.lookup_id()));
    assert_eq!(verified.environment, Environment::Test);
    assert_eq!(verify.stats().digest_reads(), 1);
    assert_eq!(verify.stats().hash_checks(), (1, 0));
}

#[tokio::test]
async fn a_foreign_key_differing_from_a_stored_one_is_not_found() {
    let stored = "xoxb-123456789012-abcdefghijklmnopqrstuvwx";
    let mut ports = Ports::new().storing_by_digest(imported(41, stored));
    ports.limiter = kept_as_a_failure();
    let verify = ports.use_case();
    assert_eq!(
        verify
            .execute("xoxb-123456789012-abcdefghijklmnopqrstuvwy", None)
            .await
            .unwrap(),
        Verification::NotFound
    );
}

/// Another Keymint's key (or any with a valid checksum) brought in by its digest
/// alone has a lookup id Keymint drew itself: its own lookup id finds nothing,
/// and the digest does.
#[tokio::test]
async fn a_key_in_keymints_format_imported_by_digest_is_found_after_its_lookup_id_misses() {
    let material = KeyMaterial::generate(Environment::Live, &mut StdRng::seed_from_u64(42));
    let presented = material.private_key().expose_secret().to_owned();
    let key = imported(42, &presented);
    let mut ports = Ports::new().storing_by_digest(key.clone());
    ports
        .repository
        .expect_find_by_lookup()
        .times(1)
        .returning(|_| Ok(None));
    ports.cache.expect_put_unless_evicted().returning(|_, _, _| true);
    ports.usage.expect_record().returning(|_, _| ());
    let Verification::Valid(verified) = ports.use_case().execute(&presented, None).await.unwrap() else {
        panic!("not valid")
    };
    assert_eq!(verified.key_id, key.id());
}

fn hashing_anew(times: usize) -> MockSecretHasher {
    let mut hasher = MockSecretHasher::new();
    hasher
        .expect_verify()
        .returning(|key, hash| Ok(hash == &fake_hash(key)));
    hasher
        .expect_needs_rehash()
        .returning(|hash| hash.expose().starts_with("$fake$"));
    hasher
        .expect_hash()
        .times(times)
        .returning(|key| Ok(SecretHash::sha256(&KeyDigest::of(key.expose_secret()))));
    hasher
}

#[tokio::test]
async fn a_key_verified_against_an_old_hash_is_hashed_anew_once_and_counted() {
    let f = fixture(43, None);
    let mut ports = Ports::new().storing(f.key.clone());
    ports.hasher = hashing_anew(1);
    let (id, old) = (f.key.id(), f.key.secret_hash().clone());
    let new = SecretHash::sha256(&KeyDigest::of(&f.presented));
    ports
        .repository
        .expect_rehash()
        .withf(move |key, from, to| *key == id && *from == old && *to == new)
        .times(1)
        .returning(|_, _, _| Ok(true));
    ports.cache.expect_put_unless_evicted().returning(|_, _, _| true);
    ports.usage.expect_record().returning(|_, _| ());
    let verify = ports.use_case();

    assert!(matches!(
        verify.execute(&f.presented, None).await.unwrap(),
        Verification::Valid(_)
    ));
    assert_eq!((verify.stats().rehashed(), verify.stats().rehash_failures()), (1, 0));
    assert_eq!(verify.stats().hash_checks(), (0, 1));
}

#[tokio::test]
async fn a_wrong_key_is_never_hashed_anew() {
    let genuine = fixture(44, None);
    let guess = KeyMaterial::generate(Environment::Live, &mut StdRng::seed_from_u64(45));
    let mut parts = genuine.key.parts().clone();
    parts.credential.lookup_id = guess.lookup_id();
    let mut ports = Ports::new().storing(ApiKey::restore(parts));
    ports.hasher = hashing_anew(0);
    ports.repository.expect_rehash().never();
    ports.limiter = kept_as_a_failure();
    let outcome = ports
        .use_case()
        .execute(guess.private_key().expose_secret(), None)
        .await
        .unwrap();
    assert_eq!(outcome, Verification::NotFound);
}

#[tokio::test]
async fn a_rehash_that_storage_refuses_still_verifies_and_is_counted_as_failed() {
    let f = fixture(46, None);
    let mut ports = Ports::new().storing(f.key.clone());
    ports.hasher = hashing_anew(1);
    ports
        .repository
        .expect_rehash()
        .times(1)
        .returning(|_, _, _| Err(RepositoryError::Unavailable(anyhow::anyhow!("down"))));
    ports.cache.expect_put_unless_evicted().returning(|_, _, _| true);
    ports.usage.expect_record().returning(|_, _| ());
    let verify = ports.use_case();
    assert!(matches!(
        verify.execute(&f.presented, None).await.unwrap(),
        Verification::Valid(_)
    ));
    assert_eq!((verify.stats().rehashed(), verify.stats().rehash_failures()), (0, 1));
}

/// Waits for the background refresh of one entry to end, by its count.
async fn refreshed(verify: &VerifyApiKey) -> [(&'static str, u64); 5] {
    for _ in 0..200 {
        let counts = verify.stats().refreshes();
        if counts.iter().map(|(_, n)| n).sum::<u64>() > 0 {
            return counts;
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    panic!("no refresh ended within a second");
}

/// The refresh counts with one refresh ended as `outcome`.
fn only(outcome: &str) -> [(&'static str, u64); 5] {
    ["renewed", "dropped", "failed", "skipped", "raced"].map(|name| (name, u64::from(name == outcome)))
}

/// A cache holding `hit` and asking this caller to refresh it; it reports
/// `evictions` evictions throughout.
fn due_for_refresh(hit: VerifiedKey, evictions: u64) -> MockVerificationCache {
    let mut cache = MockVerificationCache::new();
    cache
        .expect_get_or_refresh()
        .times(1)
        .returning(move |_| Some((hit.clone(), true)));
    cache.expect_evictions().returning(move || evictions);
    cache
}

#[tokio::test]
async fn a_hit_due_for_refresh_answers_at_once_and_renews_the_entry_from_storage() {
    let mut f = fixture(47, None);
    let hit = cached_verification(&f.key, None);
    // Renamed since it was cached: the renewal must carry the stored name.
    f.key.rename(KeyName::new("renamed").unwrap());
    let mut ports = Ports::new().storing(f.key.clone());
    ports.cache = due_for_refresh(hit, 7);
    // Renewed only if nothing was evicted while the refresh read storage.
    ports
        .cache
        .expect_put_unless_evicted()
        .withf(|_, verified, evictions| verified.name == "renamed" && *evictions == 7)
        .times(1)
        .returning(|_, _, _| true);
    ports.cache.expect_evict().never();
    // The entry proved the secret: a refresh spends no failure budget.
    ports.limiter = MockFailureLimiter::new();
    ports.limiter.expect_try_reserve().never();
    ports.usage.expect_record().times(1).returning(|_, _| ());
    let verify = ports.use_case();

    assert!(matches!(
        verify.execute(&f.presented, None).await.unwrap(),
        Verification::Valid(_)
    ));
    assert_eq!(refreshed(&verify).await, only("renewed"));
}

#[tokio::test]
async fn a_refresh_that_finds_the_key_revoked_drops_the_entry() {
    let mut f = fixture(48, None);
    let hit = cached_verification(&f.key, None);
    f.key.revoke(now());
    let mut ports = Ports::new().storing(f.key.clone());
    ports.cache = due_for_refresh(hit, 0);
    ports.cache.expect_put_unless_evicted().never();
    ports.cache.expect_evict().times(1).returning(|_| ());
    ports.usage.expect_record().returning(|_, _| ());
    let verify = ports.use_case();

    // Answered from the entry, as any hit within the TTL; the refresh ends it.
    assert!(matches!(
        verify.execute(&f.presented, None).await.unwrap(),
        Verification::Valid(_)
    ));
    assert_eq!(refreshed(&verify).await, only("dropped"));
}

#[tokio::test]
async fn a_refresh_storage_cannot_answer_leaves_the_entry_to_lapse() {
    let f = fixture(49, None);
    let mut ports = Ports::new();
    ports.cache = due_for_refresh(cached_verification(&f.key, None), 0);
    ports.cache.expect_put_unless_evicted().never();
    ports.cache.expect_evict().never();
    ports
        .repository
        .expect_find_by_lookup()
        .returning(|_| Err(RepositoryError::Unavailable(anyhow::anyhow!("down"))));
    ports.usage.expect_record().returning(|_, _| ());
    let verify = ports.use_case();

    assert!(matches!(
        verify.execute(&f.presented, None).await.unwrap(),
        Verification::Valid(_)
    ));
    assert_eq!(refreshed(&verify).await, only("failed"));
}

#[tokio::test]
async fn a_miss_caches_only_if_nothing_was_evicted_during_its_read() {
    let f = fixture(50, None);
    let mut ports = Ports::new();
    // Each read is followed by an eviction (a revocation in this process):
    // the count handed to the put must be the one from before the read.
    let evictions = Arc::new(AtomicU64::new(41));
    let key = f.key.clone();
    let bumped = evictions.clone();
    ports.repository.expect_find_by_lookup().returning(move |_| {
        bumped.fetch_add(1, Relaxed);
        Ok(Some(key.clone()))
    });
    ports.cache = MockVerificationCache::new();
    ports.cache.expect_get_or_refresh().returning(|_| None);
    let seen = evictions.clone();
    ports.cache.expect_evictions().returning(move || seen.load(Relaxed));
    ports
        .cache
        .expect_put_unless_evicted()
        .withf(|_, _, evictions| *evictions == 41)
        .times(1)
        .returning(|_, _, _| false);
    ports.usage.expect_record().returning(|_, _| ());
    assert!(matches!(
        ports.use_case().execute(&f.presented, None).await.unwrap(),
        Verification::Valid(_)
    ));
    assert_eq!(evictions.load(Relaxed), 42);
}
