use super::*;
use crate::{HashError, MockClock, MockKeyGenerator, MockKeyStore, MockSecretHasher};
use chrono::TimeZone;
use keymint_domain::KeyDigest;
use keymint_domain::{
    ExpiryError, KeyDescription, KeyMaterial, KeyName, PresentedKey, RotateError, SecretHash, Subject,
    MAX_GRACE_PERIOD_SECONDS,
};
use rand::rngs::StdRng;
use rand::SeedableRng;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use uuid::Uuid;

const HASH: &str = "$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2g";

fn fixed_time() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap()
}

fn org() -> OrgId {
    OrgId::from_uuid(Uuid::from_u128(42))
}

fn actor() -> Actor {
    Actor::new(
        &Principal::new(org(), Some(Subject::new("alice").unwrap())),
        Some("req-1".into()),
    )
}

fn request() -> NewApiKey {
    NewApiKey::new(org(), KeyName::new("billing").unwrap(), None, Environment::Live)
}

fn generator() -> MockKeyGenerator {
    let rng = Arc::new(Mutex::new(StdRng::seed_from_u64(1)));
    let rotation_rng = rng.clone();
    let mut generator = MockKeyGenerator::new();
    generator
        .expect_key_id()
        .returning(|| KeyId::from_uuid(Uuid::from_u128(7)));
    generator.expect_event_id().returning(Uuid::new_v4);
    generator
        .expect_material()
        .returning(move |env| KeyMaterial::generate(env, &mut *rng.lock().unwrap()));
    generator
        .expect_rotation()
        .returning(move |pk, env| KeyMaterial::rotate(pk, env, &mut *rotation_rng.lock().unwrap()));
    generator
}

fn hasher() -> MockSecretHasher {
    let mut hasher = MockSecretHasher::new();
    hasher.expect_hash().returning(|_| Ok(SecretHash::new(HASH).unwrap()));
    hasher
}

fn clock() -> MockClock {
    let mut clock = MockClock::new();
    clock.expect_now().returning(fixed_time);
    clock
}

fn service(repository: MockKeyStore, hasher: MockSecretHasher) -> ApiKeys {
    ApiKeys::new(
        Arc::new(repository),
        Arc::new(hasher),
        Arc::new(generator()),
        Arc::new(clock()),
        KeyPolicy::default(),
    )
}

/// A stored key as the repository would return it.
fn stored_key() -> ApiKey {
    let material = KeyMaterial::generate(Environment::Live, &mut StdRng::seed_from_u64(99));
    let credential = Credential {
        lookup_id: material.lookup_id(),
        secret_hash: SecretHash::new(HASH).unwrap(),
        display: material.private_key().display(),
        lookup_digest: None,
    };
    ApiKey::issue(
        request(),
        KeyId::from_uuid(Uuid::from_u128(7)),
        material.public_key().clone(),
        credential,
        fixed_time(),
    )
}

#[tokio::test]
async fn only_the_hash_of_the_private_key_reaches_the_repository() {
    let stored = Arc::new(Mutex::new(None));
    let seen = stored.clone();
    let mut repository = MockKeyStore::new();
    repository.expect_insert().times(1).returning(move |key, event, _, _| {
        *seen.lock().unwrap() = Some((key.clone(), event.clone()));
        Ok(())
    });

    let created = service(repository, hasher()).create(&actor(), request()).await.unwrap();

    let (stored, event) = stored.lock().unwrap().clone().unwrap();
    let secret = created.private_key.expose_secret();
    assert_eq!(stored.secret_hash().expose(), HASH);
    let everything_stored = format!(
        "{} {} {} {} {} {:?}",
        stored.public_key(),
        stored.lookup_id(),
        stored.private_key_display(),
        stored.name(),
        stored.secret_hash().expose(),
        event
    );
    assert!(
        !everything_stored.contains(&secret[25..]),
        "the secret part reached the repository"
    );
    assert_eq!(stored.lookup_id(), &created.private_key.lookup_id());
    assert_eq!(
        (
            event.action,
            event.actor.as_ref().map(Subject::as_str),
            event.request_id.as_deref()
        ),
        (AuditAction::Created, Some("alice"), Some("req-1"))
    );
}

#[tokio::test]
async fn no_private_key_is_returned_when_storage_fails() {
    let mut repository = MockKeyStore::new();
    repository
        .expect_insert()
        .times(1)
        .returning(|_, _, _, _| Err(RepositoryError::Unavailable(anyhow::anyhow!("connection refused"))));

    let result = service(repository, hasher()).create(&actor(), request()).await;

    assert!(matches!(result, Err(CreateApiKeyError::StorageUnavailable(_))));
}

#[tokio::test]
async fn nothing_is_stored_when_hashing_fails() {
    let mut hasher = MockSecretHasher::new();
    hasher
        .expect_hash()
        .returning(|_| Err(HashError(anyhow::anyhow!("bad parameters"))));
    let mut repository = MockKeyStore::new();
    repository.expect_insert().never();

    let result = service(repository, hasher).create(&actor(), request()).await;

    assert!(matches!(result, Err(CreateApiKeyError::Unexpected(_))));
}

#[tokio::test]
async fn timestamps_come_from_the_clock_and_the_key_starts_active() {
    let mut repository = MockKeyStore::new();
    repository
        .expect_insert()
        .withf(|_, event, max, now| event.occurred_at == fixed_time() && *max == 1000 && *now == fixed_time())
        .returning(|_, _, _, _| Ok(()));

    let created = service(repository, hasher()).create(&actor(), request()).await.unwrap();

    assert_eq!(created.key.created_at(), fixed_time());
    assert_eq!((created.key.revoked_at(), created.key.last_used_at()), (None, None));
    assert!(created.key.is_active(fixed_time()));
}

#[tokio::test]
async fn an_expiry_in_the_past_or_too_far_ahead_is_refused_before_any_work() {
    for expires_at in [fixed_time(), fixed_time() + Duration::days(731)] {
        let mut repository = MockKeyStore::new();
        repository.expect_insert().never();
        let mut hasher = MockSecretHasher::new();
        hasher.expect_hash().never();

        let result = service(repository, hasher)
            .create(&actor(), request().expiring_at(Some(expires_at)))
            .await;

        assert!(
            matches!(result, Err(CreateApiKeyError::InvalidExpiry(_))),
            "{expires_at}"
        );
    }
}

#[tokio::test]
async fn the_active_key_limit_is_reported_as_such() {
    let mut repository = MockKeyStore::new();
    repository
        .expect_insert()
        .returning(|_, _, _, _| Err(RepositoryError::LimitReached));

    let result = service(repository, hasher()).create(&actor(), request()).await;

    assert!(matches!(result, Err(CreateApiKeyError::LimitReached { max: 1000 })));
}

#[tokio::test]
async fn a_collision_draws_fresh_material_and_succeeds_but_repeated_ones_end() {
    let mut repository = MockKeyStore::new();
    let calls = AtomicUsize::new(0);
    repository.expect_insert().times(2).returning(move |_, _, _, _| {
        if calls.fetch_add(1, Ordering::SeqCst) == 0 {
            Err(RepositoryError::Conflict)
        } else {
            Ok(())
        }
    });
    assert!(service(repository, hasher()).create(&actor(), request()).await.is_ok());

    let mut repository = MockKeyStore::new();
    repository
        .expect_insert()
        .times(MAX_COLLISION_ATTEMPTS)
        .returning(|_, _, _, _| Err(RepositoryError::Conflict));
    let result = service(repository, hasher()).create(&actor(), request()).await;
    assert!(matches!(result, Err(CreateApiKeyError::Unexpected(_))));
}

#[tokio::test]
async fn a_change_that_lost_a_race_is_reapplied_to_the_fresh_state() {
    let mut repository = MockKeyStore::new();
    let reads = AtomicUsize::new(0);
    repository.expect_find().times(2).returning(move |_, _| {
        let mut key = stored_key();
        if reads.fetch_add(1, Ordering::SeqCst) == 1 {
            // Meanwhile, another client set a description.
            key.set_description(Some(KeyDescription::new("theirs").unwrap()));
        }
        Ok(Some(key))
    });
    let writes = AtomicUsize::new(0);
    repository
        .expect_update()
        .times(2)
        .returning(move |key, expected, event| {
            assert_eq!(event.action, AuditAction::Updated);
            if writes.fetch_add(1, Ordering::SeqCst) == 0 {
                assert_eq!(expected, 1);
                Err(RepositoryError::Stale)
            } else {
                assert_eq!(expected, 2, "the second write is based on the second read");
                assert_eq!(key.description().map(|d| d.as_str()), Some("theirs"));
                Ok(())
            }
        });
    let patch = KeyPatch {
        name: Some(KeyName::new("mine").unwrap()),
        ..KeyPatch::default()
    };

    let updated = service(repository, hasher())
        .update(&actor(), stored_key().id(), patch)
        .await
        .unwrap();

    assert_eq!(updated.name().as_str(), "mine");
    assert_eq!(updated.description().map(|d| d.as_str()), Some("theirs"));
}

#[tokio::test]
async fn revoking_a_revoked_key_writes_nothing_and_keeps_the_first_time() {
    let mut already = stored_key();
    already.revoke(fixed_time() - Duration::hours(1));
    let mut repository = MockKeyStore::new();
    repository
        .expect_find()
        .returning(move |_, _| Ok(Some(already.clone())));
    repository.expect_update().never();

    let key = service(repository, hasher())
        .revoke(&actor(), stored_key().id())
        .await
        .unwrap();

    assert_eq!(key.revoked_at(), Some(fixed_time() - Duration::hours(1)));
}

#[tokio::test]
async fn an_unknown_key_is_not_found_for_every_operation() {
    let mut repository = MockKeyStore::new();
    repository.expect_find().returning(|_, _| Ok(None));
    repository.expect_delete().returning(|_, _, _| Ok(false));
    repository.expect_events().returning(|_| Ok(vec![]));
    let keys = service(repository, hasher());
    let id = KeyId::from_uuid(Uuid::from_u128(1));

    assert!(matches!(keys.get(&actor(), id).await, Err(KeyError::NotFound)));
    assert!(matches!(
        keys.update(&actor(), id, KeyPatch::default()).await,
        Err(KeyError::NotFound)
    ));
    assert!(matches!(keys.revoke(&actor(), id).await, Err(KeyError::NotFound)));
    assert!(matches!(
        keys.rotate(&actor(), id, Duration::zero()).await,
        Err(RotateApiKeyError::NotFound)
    ));
    assert!(matches!(keys.delete(&actor(), id).await, Err(KeyError::NotFound)));
    assert!(matches!(
        keys.events(&actor(), id, None, 10).await,
        Err(KeyError::NotFound)
    ));
}

#[tokio::test]
async fn a_revoked_key_is_not_rotated_and_costs_no_hash() {
    let mut revoked = stored_key();
    revoked.revoke(fixed_time());
    let mut repository = MockKeyStore::new();
    repository
        .expect_find()
        .returning(move |_, _| Ok(Some(revoked.clone())));
    repository.expect_update().never();
    let mut hasher = MockSecretHasher::new();
    hasher.expect_hash().never();

    let result = service(repository, hasher)
        .rotate(&actor(), stored_key().id(), Duration::zero())
        .await;

    assert!(matches!(result, Err(RotateApiKeyError::Refused(RotateError::Revoked))));
}

#[tokio::test]
async fn rotation_returns_a_new_private_key_for_the_same_public_key() {
    let original = stored_key();
    let mut repository = MockKeyStore::new();
    let for_find = original.clone();
    repository
        .expect_find()
        .returning(move |_, _| Ok(Some(for_find.clone())));
    repository
        .expect_update()
        .withf(|_, expected, event| *expected == 1 && event.action == AuditAction::Rotated)
        .returning(|_, _, _| Ok(()));

    let rotated = service(repository, hasher())
        .rotate(&actor(), original.id(), Duration::seconds(60))
        .await
        .unwrap();

    assert_eq!(rotated.key.public_key(), original.public_key());
    assert_eq!(rotated.key.lookup_id(), &rotated.private_key.lookup_id());
    assert_ne!(rotated.key.lookup_id(), original.lookup_id());
    let previous = rotated.key.previous_credential().unwrap();
    assert_eq!(
        (&previous.lookup_id, previous.valid_until),
        (original.lookup_id(), fixed_time() + Duration::seconds(60))
    );
}

#[tokio::test]
async fn a_grace_period_over_a_week_is_refused() {
    let result = service(MockKeyStore::new(), hasher())
        .rotate(
            &actor(),
            stored_key().id(),
            Duration::seconds(i64::from(MAX_GRACE_PERIOD_SECONDS) + 1),
        )
        .await;
    assert!(matches!(
        result,
        Err(RotateApiKeyError::Refused(RotateError::GracePeriodTooLong))
    ));
}

#[tokio::test]
async fn a_negative_grace_period_is_refused_as_negative_without_io() {
    let result = service(MockKeyStore::new(), MockSecretHasher::new())
        .rotate(&actor(), stored_key().id(), Duration::seconds(-1))
        .await;
    assert!(matches!(
        result,
        Err(RotateApiKeyError::Refused(RotateError::NegativeGracePeriod))
    ));
}

#[tokio::test]
async fn listing_fetches_one_extra_to_know_whether_another_page_exists() {
    let keys: Vec<ApiKey> = (0..3).map(|_| stored_key()).collect();
    let mut repository = MockKeyStore::new();
    let returned = keys.clone();
    repository
        .expect_list()
        .withf(|q| q.limit == 3 && q.org_id == org())
        .returning(move |_| Ok(returned.clone()));

    let page = service(repository, hasher())
        .list(&actor(), KeyFilter::default(), None, 2)
        .await
        .unwrap();

    assert_eq!(page.items.len(), 2);
    assert_eq!(
        page.next,
        Some(KeyCursor {
            created_at: keys[1].created_at(),
            id: keys[1].id()
        })
    );
}

#[tokio::test]
async fn every_operation_checks_its_permission_before_touching_anything() {
    let reader = Actor::new(
        &Principal::new(org(), None).with_permissions(["read:api_keys".to_owned()]),
        None,
    );
    let writer = Actor::new(
        &Principal::new(org(), None).with_permissions(["write:api_keys".to_owned()]),
        None,
    );
    let mut repository = MockKeyStore::new();
    repository.expect_insert().never();
    repository.expect_update().never();
    repository.expect_delete().never();
    repository.expect_find().never();
    repository.expect_list().never();
    repository.expect_events().never();
    let mut hasher = MockSecretHasher::new();
    hasher.expect_hash().never();
    let keys = service(repository, hasher);
    let id = KeyId::from_uuid(Uuid::from_u128(1));
    let forbidden = |result: Result<(), KeyError>| matches!(result, Err(KeyError::Forbidden(_)));

    assert!(matches!(
        keys.create(&reader, request()).await,
        Err(CreateApiKeyError::Forbidden(_))
    ));
    assert!(forbidden(
        keys.update(&reader, id, KeyPatch::default()).await.map(|_| ())
    ));
    assert!(forbidden(keys.revoke(&reader, id).await.map(|_| ())));
    assert!(forbidden(keys.delete(&reader, id).await));
    assert!(matches!(
        keys.rotate(&reader, id, Duration::zero()).await,
        Err(RotateApiKeyError::Forbidden(_))
    ));
    assert!(forbidden(keys.get(&writer, id).await.map(|_| ())));
    assert!(forbidden(
        keys.list(&writer, KeyFilter::default(), None, 10).await.map(|_| ())
    ));
    assert!(forbidden(keys.events(&writer, id, None, 10).await.map(|_| ())));
}

fn importing(repository: MockKeyStore, hasher: MockSecretHasher, digests: crate::MockDigestFilter) -> ApiKeys {
    service(repository, hasher).with_digest_filter(Arc::new(digests))
}

fn foreign(raw: &str) -> ImportedSecret {
    ImportedSecret::Key(PresentedKey::Foreign(keymint_domain::ForeignKey::parse(raw).unwrap()))
}

fn item(secret: ImportedSecret) -> KeyImport {
    KeyImport {
        request: request(),
        secret,
    }
}

/// What a recording repository was asked to insert.
type Inserted = Arc<Mutex<Vec<(ApiKey, AuditEvent)>>>;

/// A repository that records what it is asked to insert and answers with
/// `answer(n)` for the n-th insert.
fn recording(answer: impl Fn(usize) -> Result<(), RepositoryError> + Send + 'static) -> (MockKeyStore, Inserted) {
    let stored = Arc::new(Mutex::new(Vec::new()));
    let seen = stored.clone();
    let mut repository = MockKeyStore::new();
    repository.expect_insert().returning(move |key, event, _, _| {
        let mut seen = seen.lock().unwrap();
        seen.push((key.clone(), event.clone()));
        answer(seen.len() - 1)
    });
    (repository, stored)
}

#[tokio::test]
async fn a_foreign_key_is_stored_as_its_digest_found_by_it_and_audited_as_imported() {
    let raw = "xoxb-123456789012-abcdefghijklmnopqrstuvwx";
    let (repository, stored) = recording(|_| Ok(()));
    let mut hasher = MockSecretHasher::new();
    hasher.expect_hash().never();
    let digest = KeyDigest::of(raw);
    let mut digests = crate::MockDigestFilter::new();
    digests
        .expect_add()
        .withf(move |d| *d == digest)
        .times(1)
        .return_const(());

    let results = importing(repository, hasher, digests)
        .import(&actor(), vec![item(foreign(raw))])
        .await
        .unwrap();

    let [Ok(key)] = results.as_slice() else {
        panic!("{results:?}")
    };
    let (stored, event) = stored.lock().unwrap()[0].clone();
    assert_eq!(stored.id(), key.id());
    let credential = &stored.parts().credential;
    assert_eq!(credential.lookup_digest, Some(digest));
    assert_eq!(credential.secret_hash, SecretHash::sha256(&digest));
    assert_eq!(credential.display.as_str(), "xoxb-…uvwx");
    assert_eq!(event.action, AuditAction::Imported);
    assert!(!format!("{stored:?} {event:?}").contains("abcdefghijklmnop"));
}

#[tokio::test]
async fn a_key_in_keymints_format_keeps_its_lookup_id_and_is_stored_as_its_sha256() {
    let material = KeyMaterial::generate(Environment::Live, &mut StdRng::seed_from_u64(5));
    let lookup_id = material.lookup_id();
    let (_, private_key) = material.into_parts();
    let digest = KeyDigest::of(private_key.expose_secret());
    let (repository, stored) = recording(|_| Ok(()));
    let mut hasher = MockSecretHasher::new();
    hasher.expect_hash().never();
    let mut digests = crate::MockDigestFilter::new();
    digests.expect_add().never();

    let results = importing(repository, hasher, digests)
        .import(
            &actor(),
            vec![item(ImportedSecret::Key(PresentedKey::Issued(private_key)))],
        )
        .await
        .unwrap();

    assert!(results[0].is_ok());
    let (stored, _) = stored.lock().unwrap()[0].clone();
    assert_eq!(stored.lookup_id(), &lookup_id);
    assert_eq!(stored.secret_hash(), &SecretHash::sha256(&digest));
    assert_eq!(stored.parts().credential.lookup_digest, None);
}

#[tokio::test]
async fn a_digest_import_stores_the_digest_as_given_and_shows_its_start() {
    let digest = KeyDigest::of("whatever the other system issued");
    let (repository, stored) = recording(|_| Ok(()));
    let mut digests = crate::MockDigestFilter::new();
    digests.expect_add().times(1).return_const(());

    importing(repository, MockSecretHasher::new(), digests)
        .import(&actor(), vec![item(ImportedSecret::Sha256(digest))])
        .await
        .unwrap();

    let (stored, _) = stored.lock().unwrap()[0].clone();
    assert_eq!(stored.parts().credential.lookup_digest, Some(digest));
    assert_eq!(
        stored.private_key_display().as_str(),
        format!("sha256:{}…", &digest.to_hex()[..4])
    );
}

#[tokio::test]
async fn each_item_is_decided_on_its_own_and_an_outage_stops_the_batch_without_retries() {
    // Item 0 is stored; item 1 conflicts on every redraw (its key is taken);
    // item 2 meets the limit; item 3 meets an outage; item 4 is not tried.
    let (repository, stored) = recording(|n| match n {
        0 => Ok(()),
        1..=3 => Err(RepositoryError::Conflict),
        4 => Err(RepositoryError::LimitReached),
        _ => Err(RepositoryError::Unavailable(anyhow::anyhow!("down"))),
    });
    let mut digests = crate::MockDigestFilter::new();
    // Told before each insert tried (a "maybe" for a key not stored is harmless).
    digests.expect_add().times(4).return_const(());
    let items = (0..5)
        .map(|i| item(foreign(&format!("legacy_key_{i}_aaaaaaaaaaaaaaaaaaaa"))))
        .collect();

    let results = importing(repository, MockSecretHasher::new(), digests)
        .import(&actor(), items)
        .await
        .unwrap();

    assert!(results[0].is_ok());
    assert!(matches!(results[1], Err(ImportRefusal::Duplicate)));
    assert!(matches!(results[2], Err(ImportRefusal::LimitReached { max: 1000 })));
    assert!(matches!(results[3], Err(ImportRefusal::StorageUnavailable)));
    assert!(matches!(results[4], Err(ImportRefusal::StorageUnavailable)));
    assert_eq!(
        stored.lock().unwrap().len(),
        6,
        "1 + 3 redraws + 1 + 1, and none for the last"
    );
}

#[tokio::test]
async fn an_expiry_out_of_bounds_refuses_its_item_before_storage() {
    let mut repository = MockKeyStore::new();
    repository.expect_insert().never();
    let past = KeyImport {
        request: request().expiring_at(Some(fixed_time() - Duration::days(1))),
        secret: foreign("legacy_key_expired_aaaaaaaaaaaaa"),
    };
    let results = importing(repository, MockSecretHasher::new(), crate::MockDigestFilter::new())
        .import(&actor(), vec![past])
        .await
        .unwrap();
    assert!(matches!(
        results[0],
        Err(ImportRefusal::InvalidExpiry(ExpiryError::NotInFuture))
    ));
}
