//! One contract for the storage ports (`KeyStore`, `KeyLookup`, `UsageSink`,
//! `StorageHealth`), run on every adapter: in memory, SQLite and PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::sync::Arc;

use chrono::{DateTime, Duration, TimeZone, Utc};
use keymint_application::{
    AfterAttempt, AnalyticsQuery, AnalyticsStore, ApiKeyRepository, Attempt, BucketCount, DeliveryStatus, EventQuery,
    GroupBy, KeyCursor, KeyQuery, OrganizationDirectory, RepositoryError, RowOrder, WebhookStoreError,
};
use keymint_domain::{
    ApiKey, AuditAction, AuditEvent, BreakerPolicy, Credential, EndpointHealth, EndpointState, Environment, EventType,
    EventTypes, FairShare, Granularity, KeyDigest, KeyField, KeyId, KeyMaterial, KeyName, LeakReport, LeakSource,
    LeakUrl, LookupId, NameSearch, NewApiKey, OrgId, OwnerId, SecretHash, Tag, TagSet, VerificationOutcome, Webhook,
    WebhookSecret, WebhookUrl, MAX_LEAK_URL_CHARS,
};
use keymint_infrastructure::sql::SqlApiKeyRepository;
use keymint_infrastructure::{InMemoryApiKeyRepository, InMemoryOrganizationDirectory, SqlOrganizationDirectory};
use keymint_migrations::{Migrator, MigratorTrait};
use uuid::Uuid;

use support::database::{steps_back_to, MigratedDatabase};
use support::Backend;

/// A repository on `backend`, and the database it is kept in.
struct Subject {
    repository: Arc<dyn ApiKeyRepository>,
    directory: Arc<dyn OrganizationDirectory>,
    _database: Option<MigratedDatabase>,
}

async fn subject(backend: Backend) -> Subject {
    if backend == Backend::Memory {
        return Subject {
            repository: Arc::new(InMemoryApiKeyRepository::new()),
            directory: Arc::new(InMemoryOrganizationDirectory::default()),
            _database: None,
        };
    }
    let database = MigratedDatabase::new(backend).await;
    Subject {
        repository: Arc::new(SqlApiKeyRepository::new(database.db.clone())),
        directory: Arc::new(SqlOrganizationDirectory::new(database.db.clone())),
        _database: Some(database),
    }
}

fn t(seconds: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 0, 0, 0).unwrap() + Duration::seconds(seconds)
}

fn credential(material: &KeyMaterial) -> Credential {
    Credential {
        lookup_id: material.lookup_id(),
        secret_hash: SecretHash::new(format!("$fake${}", material.lookup_id())).unwrap(),
        display: material.private_key().display(),
        lookup_digest: None,
    }
}

/// A key brought in from another system: found by the digest of `raw`.
fn imported_key(org: OrgId, raw: &str, created: DateTime<Utc>) -> ApiKey {
    let mut parts = key(org, "imported", created, Environment::Live).parts().clone();
    let digest = KeyDigest::of(raw);
    parts.credential.secret_hash = SecretHash::sha256(&digest);
    parts.credential.lookup_digest = Some(digest);
    ApiKey::restore(parts)
}

fn key(org: OrgId, name: &str, created: DateTime<Utc>, environment: Environment) -> ApiKey {
    let material = KeyMaterial::generate(environment, &mut rand_core::OsRng);
    let request = NewApiKey::new(org, KeyName::new(name).unwrap(), None, environment);
    ApiKey::issue(
        request,
        KeyId::from_uuid(Uuid::now_v7()),
        material.public_key().clone(),
        credential(&material),
        created,
    )
}

fn event(key: &ApiKey, action: AuditAction, at: DateTime<Utc>) -> AuditEvent {
    AuditEvent {
        id: Uuid::now_v7(),
        key_id: key.id(),
        org_id: key.org_id(),
        action,
        actor: Some(keymint_domain::Subject::new("contract").unwrap()),
        occurred_at: at,
        request_id: None,
        fields: Vec::new(),
        leak: None,
    }
}

async fn insert(repository: &dyn ApiKeyRepository, key: &ApiKey) {
    repository
        .insert(
            key,
            &event(key, AuditAction::Created, key.created_at()),
            1000,
            key.created_at(),
        )
        .await
        .unwrap();
}

fn org() -> OrgId {
    OrgId::from_uuid(Uuid::new_v4())
}

async fn stored_keys_read_back_identically_and_only_for_their_organisation(backend: Backend) {
    let s = subject(backend).await;
    let (mine, theirs) = (org(), org());
    let original = key(mine, "identical", t(0), Environment::Test).clone();
    insert(&*s.repository, &original).await;

    let found = s.repository.find(mine, original.id()).await.unwrap().unwrap();
    assert_eq!(format!("{:?}", found.parts()), format!("{:?}", original.parts()));
    assert_eq!(found.secret_hash(), original.secret_hash());
    assert!(s.repository.find(theirs, original.id()).await.unwrap().is_none());
    assert!(s
        .repository
        .find(mine, KeyId::from_uuid(Uuid::new_v4()))
        .await
        .unwrap()
        .is_none());
}

async fn a_taken_id_public_key_or_lookup_id_is_a_conflict(backend: Backend) {
    let s = subject(backend).await;
    let first = key(org(), "first", t(0), Environment::Live);
    insert(&*s.repository, &first).await;
    let mut same_id = key(first.org_id(), "same id", t(1), Environment::Live).parts().clone();
    same_id.id = first.id();
    let mut same_lookup = key(first.org_id(), "same lookup", t(1), Environment::Live)
        .parts()
        .clone();
    same_lookup.credential.lookup_id = first.lookup_id().clone();
    let mut same_public = key(first.org_id(), "same public", t(1), Environment::Live)
        .parts()
        .clone();
    same_public.public_key = first.public_key().clone();
    for parts in [same_id, same_lookup, same_public] {
        let clash = ApiKey::restore(parts);
        let result = s
            .repository
            .insert(&clash, &event(&clash, AuditAction::Created, t(1)), 1000, t(1))
            .await;
        assert!(matches!(result, Err(RepositoryError::Conflict)), "{result:?}");
    }
}

async fn the_limit_counts_only_unrevoked_unexpired_keys(backend: Backend) {
    let s = subject(backend).await;
    let owner = org();
    let mut revoked = key(owner, "revoked", t(0), Environment::Live);
    insert(&*s.repository, &revoked).await;
    let read = revoked.revision();
    revoked.revoke(t(1));
    s.repository
        .update(&revoked, read, &event(&revoked, AuditAction::Revoked, t(1)))
        .await
        .unwrap();
    let expiring = {
        let material = KeyMaterial::generate(Environment::Live, &mut rand_core::OsRng);
        let request =
            NewApiKey::new(owner, KeyName::new("expired").unwrap(), None, Environment::Live).expiring_at(Some(t(5)));
        ApiKey::issue(
            request,
            KeyId::from_uuid(Uuid::now_v7()),
            material.public_key().clone(),
            credential(&material),
            t(2),
        )
    };
    insert(&*s.repository, &expiring).await;
    let active = key(owner, "active", t(3), Environment::Live);
    insert(&*s.repository, &active).await;

    let one_more = key(owner, "one more", t(10), Environment::Live);
    let at_limit = s
        .repository
        .insert(&one_more, &event(&one_more, AuditAction::Created, t(10)), 1, t(10))
        .await;
    assert!(matches!(at_limit, Err(RepositoryError::LimitReached)), "{at_limit:?}");
    assert!(
        s.repository.find(owner, one_more.id()).await.unwrap().is_none(),
        "nothing stored over the limit"
    );
    s.repository
        .insert(&one_more, &event(&one_more, AuditAction::Created, t(10)), 2, t(10))
        .await
        .unwrap();
}

/// `k`'s audit trail, newest first (at most 10 events).
async fn trail_of(repository: &dyn ApiKeyRepository, k: &ApiKey) -> Vec<AuditEvent> {
    repository
        .events(&EventQuery {
            org_id: k.org_id(),
            key_id: k.id(),
            after: None,
            limit: 10,
        })
        .await
        .unwrap()
}

async fn the_same_key_stored_again_is_a_conflict_even_at_the_limit(backend: Backend) {
    let s = subject(backend).await;
    let k = key(org(), "once", t(0), Environment::Live);
    s.repository
        .insert(&k, &event(&k, AuditAction::Created, t(0)), 1, t(0))
        .await
        .unwrap();
    for max_active in [1, 1000] {
        let again = s
            .repository
            .insert(&k, &event(&k, AuditAction::Created, t(1)), max_active, t(1))
            .await;
        assert!(
            matches!(again, Err(RepositoryError::Conflict)),
            "{max_active}: {again:?}"
        );
    }
    assert_eq!(trail_of(&*s.repository, &k).await.len(), 1, "no second audit event");
}

async fn concurrent_creates_each_get_their_own_answer(backend: Backend) {
    // SQLite commits concurrent creates together: one refused or clashing
    // create must take nothing of the others with it, and the limit must hold
    // across a group as it does across transactions.
    let s = subject(backend).await;
    let (crowded, other) = (org(), org());
    s.repository
        .insert_webhook(
            &webhook(crowded, t(0)),
            &WebhookSecret::generate(&mut rand_core::OsRng),
            5,
        )
        .await
        .unwrap();
    let first = key(crowded, "first", t(0), Environment::Live);
    insert(&*s.repository, &first).await;
    let mut attempts = Vec::new();
    for i in 0..20 {
        attempts.push(("fresh", key(crowded, &format!("fresh {i}"), t(1), Environment::Live)));
    }
    for i in 0..4 {
        let mut parts = key(crowded, &format!("clash {i}"), t(1), Environment::Live)
            .parts()
            .clone();
        parts.public_key = first.public_key().clone();
        attempts.push(("clash", ApiKey::restore(parts)));
    }
    for i in 0..5 {
        attempts.push(("other", key(other, &format!("other {i}"), t(1), Environment::Live)));
    }
    let tasks: Vec<_> = attempts
        .into_iter()
        .map(|(kind, k)| {
            let repository = s.repository.clone();
            tokio::spawn(async move {
                let outcome = repository
                    .insert(&k, &event(&k, AuditAction::Created, t(1)), 10, t(1))
                    .await;
                (kind, k, outcome)
            })
        })
        .collect();
    let mut stored = Vec::new();
    let (mut over, mut clashes) = (0, 0);
    for task in tasks {
        let (kind, k, outcome) = task.await.unwrap();
        match (kind, outcome) {
            ("fresh" | "other", Ok(())) => stored.push(k),
            ("fresh", Err(RepositoryError::LimitReached)) => {
                over += 1;
                assert!(
                    s.repository.find(crowded, k.id()).await.unwrap().is_none(),
                    "refused yet stored"
                );
                assert!(
                    trail_of(&*s.repository, &k).await.is_empty(),
                    "a refused create left an audit event"
                );
            }
            ("clash", Err(RepositoryError::Conflict)) => {
                clashes += 1;
                assert!(
                    trail_of(&*s.repository, &k).await.is_empty(),
                    "a refused create left an audit event"
                );
            }
            (kind, outcome) => panic!("{kind}: {outcome:?}"),
        }
    }
    assert_eq!((over, clashes), (11, 4), "nine fresh keys fit beside the first");
    assert_eq!(stored.len(), 9 + 5);
    for k in &stored {
        let found = s.repository.find(k.org_id(), k.id()).await.unwrap().unwrap();
        assert_eq!(format!("{:?}", found.parts()), format!("{:?}", k.parts()));
        assert_eq!(
            trail_of(&*s.repository, k).await.len(),
            1,
            "one audit event per stored key"
        );
    }
    let room = FairShare {
        room: 100,
        per_endpoint: 100,
        per_org: 100,
    };
    let claimed = s.repository.claim(t(2), t(60), room).await.unwrap();
    assert_eq!(
        claimed.len(),
        10,
        "one delivery per key stored in the organisation with a webhook"
    );
}

async fn lists_are_newest_first_filtered_and_paged_without_gaps(backend: Backend) {
    let s = subject(backend).await;
    let owner = org();
    let mut all = Vec::new();
    for i in 0..7 {
        let environment = if i % 2 == 0 {
            Environment::Live
        } else {
            Environment::Test
        };
        // Two keys share each creation time, so ties are broken by id.
        let mut k = key(owner, &format!("k{i}"), t(i / 2), environment);
        if i % 3 == 0 {
            k.set_owner_id(Some(OwnerId::new("team-ä 1").unwrap()));
        }
        insert(&*s.repository, &k).await;
        all.push(k);
    }
    let mut elsewhere = key(org(), "elsewhere", t(0), Environment::Live);
    elsewhere.set_owner_id(Some(OwnerId::new("team-ä 1").unwrap()));
    insert(&*s.repository, &elsewhere).await;
    let mut expected: Vec<KeyId> = all.iter().map(ApiKey::id).collect();
    expected.sort_by_key(|id| {
        let k = all.iter().find(|k| k.id() == *id).unwrap();
        std::cmp::Reverse((k.created_at(), k.id()))
    });

    let mut paged = Vec::new();
    let mut after = None;
    loop {
        let query = KeyQuery {
            org_id: owner,
            environment: None,
            revoked: None,
            owner_id: None,
            name: None,
            after,
            limit: 3,
        };
        let page = s.repository.list(&query).await.unwrap();
        if page.is_empty() {
            break;
        }
        after = page.last().map(|k| KeyCursor {
            created_at: k.created_at(),
            id: k.id(),
        });
        paged.extend(page.iter().map(ApiKey::id));
    }
    assert_eq!(paged, expected);

    let query = KeyQuery {
        org_id: owner,
        environment: Some(Environment::Test),
        revoked: Some(false),
        owner_id: None,
        name: None,
        after: None,
        limit: 100,
    };
    let tests = s.repository.list(&query).await.unwrap();
    assert_eq!(tests.len(), 3);
    assert!(tests.iter().all(|k| k.environment() == Environment::Test));

    let team = OwnerId::new("team-ä 1").unwrap();
    let query = KeyQuery {
        owner_id: Some(team.clone()),
        environment: None,
        revoked: None,
        ..query
    };
    let owned: Vec<String> = s
        .repository
        .list(&query)
        .await
        .unwrap()
        .iter()
        .map(|k| k.name().as_str().to_owned())
        .collect();
    assert_eq!(owned, ["k6", "k3", "k0"], "newest first, this organisation only");
    let found = s.repository.find(owner, all[3].id()).await.unwrap().unwrap();
    assert_eq!(found.owner_id(), Some(&team));
}

async fn updates_are_compare_and_set_and_never_roll_back_usage(backend: Backend) {
    let s = subject(backend).await;
    let mut k = key(org(), "before", t(0), Environment::Live);
    insert(&*s.repository, &k).await;
    s.repository.record_usage(&[(k.id(), t(50))]).await.unwrap();

    let read = k.revision();
    k.rename(KeyName::new("after").unwrap());
    s.repository
        .update(&k, read, &event(&k, AuditAction::Updated, t(1)))
        .await
        .unwrap();
    let stale = s
        .repository
        .update(&k, read, &event(&k, AuditAction::Updated, t(2)))
        .await;
    assert!(matches!(stale, Err(RepositoryError::Stale)), "{stale:?}");

    let stored = s.repository.find(k.org_id(), k.id()).await.unwrap().unwrap();
    assert_eq!((stored.name().as_str(), stored.revision()), ("after", 2));
    assert_eq!(stored.last_used_at(), Some(t(50)), "the change kept the recorded usage");
    let events = s
        .repository
        .events(&EventQuery {
            org_id: k.org_id(),
            key_id: k.id(),
            after: None,
            limit: 10,
        })
        .await
        .unwrap();
    assert_eq!(events.len(), 2, "the stale write recorded no event");
}

async fn a_leak_and_where_it_was_seen_read_back_identically(backend: Backend) {
    let s = subject(backend).await;
    let mut k = key(org(), "leaky", t(0), Environment::Live);
    insert(&*s.repository, &k).await;
    let read = k.revision();
    let lookup_id = k.lookup_id().clone();
    assert!(k.report_leak(&lookup_id, true, t(5) + Duration::microseconds(123_456)));
    // The longest URL a report may carry, with non-ASCII and percent-escapes.
    let prefix = "https://github.com/o/r/blob/main/";
    let tail: String = "é%00/"
        .chars()
        .cycle()
        .take(MAX_LEAK_URL_CHARS - prefix.len())
        .collect();
    let url = LeakUrl::parse(&format!("{prefix}{tail}")).unwrap();
    let report = LeakReport {
        source: LeakSource::parse("pull_request_comment").unwrap(),
        url: Some(url),
    };
    let leaked = AuditEvent {
        leak: Some(report.clone()),
        ..event(&k, AuditAction::Leaked, t(5))
    };
    s.repository.update(&k, read, &leaked).await.unwrap();

    let stored = s.repository.find(k.org_id(), k.id()).await.unwrap().unwrap();
    assert_eq!(stored.leaked_at(), Some(t(5) + Duration::microseconds(123_456)));
    assert_eq!(stored.revoked_at(), stored.leaked_at());
    let events = s
        .repository
        .events(&EventQuery {
            org_id: k.org_id(),
            key_id: k.id(),
            after: None,
            limit: 10,
        })
        .await
        .unwrap();
    assert_eq!(events[0].action, AuditAction::Leaked);
    assert_eq!(events[0].leak, Some(report));
    assert_eq!(events[1].leak, None);
}

fn webhook(org: OrgId, at: DateTime<Utc>) -> Webhook {
    Webhook {
        id: Uuid::now_v7(),
        org_id: org,
        url: WebhookUrl::parse("https://hooks.example.com/keymint", false).unwrap(),
        event_types: EventTypes::all(),
        enabled: true,
        created_at: at,
        updated_at: at,
        health: EndpointHealth::default(),
    }
}

/// Room for every test claim, with caps wide enough not to matter.
fn wide() -> FairShare {
    FairShare {
        room: 10,
        per_endpoint: 10,
        per_org: 10,
    }
}

fn breaker() -> BreakerPolicy {
    BreakerPolicy {
        failures_to_pause: 2,
        first_pause: Duration::seconds(30),
        longest_pause: Duration::seconds(100),
    }
}

async fn a_change_queues_its_delivery_which_is_claimed_once_recorded_and_pruned(backend: Backend) {
    let s = subject(backend).await;
    let owner = org();
    let hook = webhook(owner, t(0));
    let secret = WebhookSecret::generate(&mut rand_core::OsRng);
    s.repository.insert_webhook(&hook, &secret, 5).await.unwrap();
    let k = key(owner, "hooked", t(1), Environment::Live);
    insert(&*s.repository, &k).await;
    // Another organisation's change reaches none of this webhook's deliveries.
    insert(&*s.repository, &key(org(), "elsewhere", t(1), Environment::Live)).await;

    let claimed = s.repository.claim(t(2), t(60), wide()).await.unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].secrets.len(), 1);
    assert_eq!(claimed[0].secrets[0].expose_secret(), secret.expose_secret());
    let payload: serde_json::Value = serde_json::from_str(&claimed[0].payload).unwrap();
    assert_eq!(payload["type"], "key.created");
    assert_eq!(payload["data"]["id"], k.id().to_string());
    assert!(
        s.repository.claim(t(3), t(60), wide()).await.unwrap().is_empty(),
        "leased"
    );

    let attempt = Attempt {
        attempted_at: t(3),
        latency_ms: 12,
        status_code: None,
        error: Some("reset\0by peer\n".to_owned()),
    };
    s.repository
        .record(claimed[0].id, &attempt, AfterAttempt::RetryAt(t(10)), breaker(), t(3))
        .await
        .unwrap();
    assert!(
        s.repository.claim(t(5), t(60), wide()).await.unwrap().is_empty(),
        "not due yet"
    );
    let again = s.repository.claim(t(10), t(70), wide()).await.unwrap();
    assert_eq!((again.len(), again[0].attempts), (1, 1));
    let delivered = Attempt {
        status_code: Some(204),
        error: None,
        ..attempt.clone()
    };
    s.repository
        .record(again[0].id, &delivered, AfterAttempt::Delivered, breaker(), t(10))
        .await
        .unwrap();
    let listed = s.repository.deliveries(owner, hook.id, None, 10).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].status, DeliveryStatus::Delivered);
    assert_eq!(listed[0].event_type, EventType::KeyCreated);
    let errors: Vec<Option<&str>> = listed[0].attempts.iter().map(|a| a.error.as_deref()).collect();
    assert_eq!(errors, [Some("reset by peer "), None], "stored alike on every engine");
    assert!(s
        .repository
        .deliveries(org(), hook.id, None, 10)
        .await
        .unwrap()
        .is_empty());

    assert_eq!(
        s.repository.prune(t(1)).await.unwrap(),
        0,
        "kept until the retention passes"
    );
    assert_eq!(s.repository.prune(t(100)).await.unwrap(), 1);
    assert!(s
        .repository
        .deliveries(owner, hook.id, None, 10)
        .await
        .unwrap()
        .is_empty());
}

async fn a_disabled_webhooks_deliveries_wait_and_a_deleted_ones_go(backend: Backend) {
    let s = subject(backend).await;
    let owner = org();
    let mut hook = webhook(owner, t(0));
    s.repository
        .insert_webhook(&hook, &WebhookSecret::generate(&mut rand_core::OsRng), 5)
        .await
        .unwrap();
    insert(&*s.repository, &key(owner, "waiting", t(1), Environment::Live)).await;
    hook.enabled = false;
    assert!(s.repository.update_webhook(&hook).await.unwrap());
    assert!(s.repository.claim(t(2), t(60), wide()).await.unwrap().is_empty());
    hook.enabled = true;
    assert!(s.repository.update_webhook(&hook).await.unwrap());
    let claimed = s.repository.claim(t(3), t(60), wide()).await.unwrap();
    assert_eq!(claimed.len(), 1);

    // Deleted while its delivery was in flight: the attempt lands nowhere.
    assert!(s.repository.delete_webhook(owner, hook.id).await.unwrap());
    let attempt = Attempt {
        attempted_at: t(4),
        latency_ms: 1,
        status_code: Some(200),
        error: None,
    };
    s.repository
        .record(claimed[0].id, &attempt, AfterAttempt::Delivered, breaker(), t(4))
        .await
        .unwrap();
    assert!(s
        .repository
        .deliveries(owner, hook.id, None, 10)
        .await
        .unwrap()
        .is_empty());
    let second = webhook(owner, t(5));
    s.repository
        .insert_webhook(&second, &WebhookSecret::generate(&mut rand_core::OsRng), 1)
        .await
        .unwrap();
    let over = s
        .repository
        .insert_webhook(
            &webhook(owner, t(6)),
            &WebhookSecret::generate(&mut rand_core::OsRng),
            1,
        )
        .await;
    assert!(matches!(over, Err(WebhookStoreError::LimitReached)), "{over:?}");
}

async fn usage_only_moves_forward_and_skips_missing_keys(backend: Backend) {
    let s = subject(backend).await;
    let k = key(org(), "used", t(0), Environment::Live);
    insert(&*s.repository, &k).await;
    let ghost = KeyId::from_uuid(Uuid::new_v4());
    s.repository
        .record_usage(&[(k.id(), t(20)), (ghost, t(20))])
        .await
        .unwrap();
    s.repository.record_usage(&[(k.id(), t(10))]).await.unwrap();
    let stored = s.repository.find(k.org_id(), k.id()).await.unwrap().unwrap();
    assert_eq!(stored.last_used_at(), Some(t(20)));
    // A key twice in one batch: the later use wins, in whatever order.
    s.repository
        .record_usage(&[(k.id(), t(40)), (k.id(), t(35))])
        .await
        .unwrap();
    let stored = s.repository.find(k.org_id(), k.id()).await.unwrap().unwrap();
    assert_eq!(stored.last_used_at(), Some(t(40)));
    assert_eq!(stored.revision(), 1, "usage is not a change");
}

async fn usage_for_more_keys_than_one_statement_holds_reaches_each(backend: Backend) {
    let s = subject(backend).await;
    let owner = org();
    // Stored keys in the first, a middle and the last of three statements' worth.
    let stored: Vec<ApiKey> = (0..3)
        .map(|i| key(owner, &format!("used {i}"), t(0), Environment::Live))
        .collect();
    for k in &stored {
        insert(&*s.repository, k).await;
    }
    let mut usage: Vec<(KeyId, DateTime<Utc>)> =
        (0..1_200).map(|_| (KeyId::from_uuid(Uuid::new_v4()), t(30))).collect();
    usage[0] = (stored[0].id(), t(31));
    usage[700] = (stored[1].id(), t(32));
    usage[1_199] = (stored[2].id(), t(33));
    s.repository.record_usage(&usage).await.unwrap();
    for (k, at) in stored.iter().zip([t(31), t(32), t(33)]) {
        let read = s.repository.find(owner, k.id()).await.unwrap().unwrap();
        assert_eq!(read.last_used_at(), Some(at), "{}", k.name().as_str());
        assert_eq!(read.revision(), 1);
    }
}

async fn concurrent_lookups_each_find_their_own_key(backend: Backend) {
    let s = subject(backend).await;
    let mut stored = Vec::new();
    for i in 0..40 {
        let mut k = key(org(), &format!("k{i}"), t(0), Environment::Live);
        if i % 4 == 0 {
            // A rotated-out private key must be found too, as its own holder.
            let rotated = key(org(), "new", t(0), Environment::Live);
            k.rotate(rotated.parts().credential.clone(), Duration::hours(1), t(1))
                .unwrap();
        }
        insert(&*s.repository, &k).await;
        stored.push(k);
    }
    let mut wanted: Vec<(LookupId, Option<KeyId>)> = Vec::new();
    for k in &stored {
        wanted.push((k.lookup_id().clone(), Some(k.id())));
        if let Some(previous) = k.previous_credential() {
            wanted.push((previous.lookup_id.clone(), Some(k.id())));
        }
        let stranger = key(org(), "stranger", t(0), Environment::Live);
        wanted.push((stranger.lookup_id().clone(), None));
    }
    // All at once: they share batched reads, and each gets its own answer.
    let answers =
        futures_util::future::join_all(wanted.iter().map(|(lookup, _)| s.repository.find_by_lookup(lookup))).await;
    for ((lookup, expected), answer) in wanted.iter().zip(answers) {
        assert_eq!(answer.unwrap().map(|k| k.id()), *expected, "{lookup:?}");
    }
}

async fn lookups_find_the_current_and_the_rotated_out_private_key(backend: Backend) {
    let s = subject(backend).await;
    let mut k = key(org(), "rotating", t(0), Environment::Live);
    insert(&*s.repository, &k).await;
    let old_lookup = k.lookup_id().clone();
    let replacement = KeyMaterial::generate(Environment::Live, &mut rand_core::OsRng);
    let read = k.revision();
    k.rotate(credential(&replacement), Duration::seconds(60), t(1)).unwrap();
    s.repository
        .update(&k, read, &event(&k, AuditAction::Rotated, t(1)))
        .await
        .unwrap();

    let by_new = s
        .repository
        .find_by_lookup(&replacement.lookup_id())
        .await
        .unwrap()
        .unwrap();
    let by_old = s.repository.find_by_lookup(&old_lookup).await.unwrap().unwrap();
    assert_eq!((by_new.id(), by_old.id()), (k.id(), k.id()));
    assert_eq!(by_old.previous_credential().map(|p| p.valid_until), Some(t(61)));
    let unknown = KeyMaterial::generate(Environment::Live, &mut rand_core::OsRng).lookup_id();
    assert!(s.repository.find_by_lookup(&unknown).await.unwrap().is_none());
}

async fn deletion_is_scoped_and_keeps_the_audit_trail(backend: Backend) {
    let s = subject(backend).await;
    let k = key(org(), "doomed", t(0), Environment::Live);
    insert(&*s.repository, &k).await;
    let stranger = org();
    let foreign = AuditEvent {
        org_id: stranger,
        ..event(&k, AuditAction::Deleted, t(1))
    };
    assert!(!s.repository.delete(stranger, k.id(), &foreign).await.unwrap());
    assert!(s
        .repository
        .delete(k.org_id(), k.id(), &event(&k, AuditAction::Deleted, t(2)))
        .await
        .unwrap());
    assert!(!s
        .repository
        .delete(k.org_id(), k.id(), &event(&k, AuditAction::Deleted, t(3)))
        .await
        .unwrap());
    assert!(s.repository.find(k.org_id(), k.id()).await.unwrap().is_none());
    assert!(s.repository.find_by_lookup(k.lookup_id()).await.unwrap().is_none());
    let events = s
        .repository
        .events(&EventQuery {
            org_id: k.org_id(),
            key_id: k.id(),
            after: None,
            limit: 10,
        })
        .await
        .unwrap();
    let actions: Vec<AuditAction> = events.iter().map(|e| e.action).collect();
    assert_eq!(actions, [AuditAction::Deleted, AuditAction::Created]);
    let theirs = s
        .repository
        .events(&EventQuery {
            org_id: stranger,
            key_id: k.id(),
            after: None,
            limit: 10,
        })
        .await
        .unwrap();
    assert!(theirs.is_empty());
}

/// Every text column at its limit, in characters that take several bytes (and,
/// for the description, the line breaks and tabs it may hold), reads back
/// exactly; what no database could store (NUL, too long) never gets this far,
/// because the domain types refuse it.
async fn text_at_every_limit_reads_back_identically(backend: Backend) {
    use keymint_domain::{
        KeyDescription, PermissionName, Permissions, Subject as Actor, MAX_DESCRIPTION_CHARS, MAX_NAME_CHARS,
        MAX_PERMISSIONS, MAX_PERMISSION_CHARS, MAX_SUBJECT_CHARS,
    };
    let s = subject(backend).await;
    let owner = org();
    let name = "🔑".repeat(MAX_NAME_CHARS);
    let description = format!("ж\n\t{}", "é".repeat(MAX_DESCRIPTION_CHARS - 3));
    let actor = Actor::new("𝔘".repeat(MAX_SUBJECT_CHARS)).unwrap();
    let material = KeyMaterial::generate(Environment::Live, &mut rand_core::OsRng);
    // Metadata of exactly 4 KiB as compact JSON: member order, NUL, non-ASCII
    // and escapes must read back byte for byte on every engine.
    let head = r#"{"z":1,"a":{"nul":"\u0000","q":"\"","ü":[true,null,1.5]},"pad":""#;
    let pad = "x".repeat(keymint_domain::MAX_META_BYTES - head.len() - 2);
    let meta = keymint_domain::KeyMeta::parse(&format!("{head}{pad}\"}}")).unwrap();
    assert_eq!(meta.as_json().len(), keymint_domain::MAX_META_BYTES);
    // Fifty names of 64 characters, every allowed character used, order kept.
    let permissions = Permissions::new(
        (0..MAX_PERMISSIONS)
            .map(|i| PermissionName::new(format!("{i:02}:Az_.-*{}", "x".repeat(MAX_PERMISSION_CHARS - 9))).unwrap()),
    )
    .unwrap();
    let request = NewApiKey::new(
        owner,
        KeyName::new(name.clone()).unwrap(),
        Some(KeyDescription::new(description.clone()).unwrap()),
        Environment::Live,
    )
    .with_permissions(permissions.clone())
    .owned_by(Some(OwnerId::new("ø".repeat(255)).unwrap()))
    .with_meta(Some(meta.clone()));
    let mut stored = ApiKey::issue(
        request,
        KeyId::from_uuid(Uuid::now_v7()),
        material.public_key().clone(),
        credential(&material),
        t(0),
    );
    let mut created = event(&stored, AuditAction::Created, t(0));
    created.actor = Some(actor.clone());
    s.repository.insert(&stored, &created, 10, t(0)).await.unwrap();

    let found = s.repository.find(owner, stored.id()).await.unwrap().unwrap();
    assert_eq!(found.name().as_str(), name);
    assert_eq!(
        found.description().map(KeyDescription::as_str),
        Some(description.as_str())
    );
    assert_eq!(found.permissions(), &permissions);
    assert_eq!(found.owner_id().map(OwnerId::as_str), Some("ø".repeat(255).as_str()));
    assert_eq!(found.meta().map(|m| m.as_json()), Some(meta.as_json()));

    // An update replaces them (reversed: order is stored), and its event names
    // the fields it changed.
    let read = stored.revision();
    let reversed = Permissions::new(permissions.iter().rev().cloned()).unwrap();
    assert!(stored.set_permissions(reversed.clone()));
    let mut updated = event(&stored, AuditAction::Updated, t(1));
    updated.fields = vec![KeyField::Description, KeyField::Permissions];
    s.repository.update(&stored, read, &updated).await.unwrap();
    let found = s.repository.find(owner, stored.id()).await.unwrap().unwrap();
    assert_eq!(found.permissions(), &reversed);
    let events = s
        .repository
        .events(&EventQuery {
            org_id: owner,
            key_id: stored.id(),
            after: None,
            limit: 10,
        })
        .await
        .unwrap();
    assert_eq!(events[0].fields, [KeyField::Description, KeyField::Permissions]);
    assert_eq!(events[1].actor, Some(actor));
    assert!(events[1].fields.is_empty());

    let external = "ø".repeat(255);
    let resolved = s.directory.resolve(&external).await.unwrap();
    assert_eq!(s.directory.resolve(&external).await.unwrap(), resolved);
    assert_ne!(s.directory.resolve(&"ø".repeat(254)).await.unwrap(), resolved);

    assert!(KeyName::new("a\0b").is_err() && KeyDescription::new("a\0b").is_err());
    assert!(Actor::new("a\0b").is_err() && Actor::new("x".repeat(MAX_SUBJECT_CHARS + 1)).is_err());
}

/// Every engine folds case the same way (Unicode, not SQLite's ASCII-only
/// rule) and takes LIKE's wildcards in a search as plain text.
async fn name_search_ignores_case_alike_everywhere_and_wildcards_are_text(backend: Backend) {
    let s = subject(backend).await;
    let owner = org();
    let names = ["Élan Billing", "élan-reports", "ÉLAN_ops", "100% done", "plain", "a\\b"];
    for (i, name) in names.iter().enumerate() {
        insert(&*s.repository, &key(owner, name, t(i as i64), Environment::Live)).await;
    }
    insert(&*s.repository, &key(org(), "élan elsewhere", t(9), Environment::Live)).await;
    let mut renamed = key(owner, "Renamed Later", t(10), Environment::Test);
    insert(&*s.repository, &renamed).await;
    let read = renamed.revision();
    renamed.rename(KeyName::new("ÅNGSTRÖM").unwrap());
    s.repository
        .update(&renamed, read, &event(&renamed, AuditAction::Updated, t(11)))
        .await
        .unwrap();

    let search = |text: &str| {
        let query = KeyQuery {
            org_id: owner,
            environment: None,
            revoked: None,
            owner_id: None,
            name: Some(NameSearch::new(text).unwrap()),
            after: None,
            limit: 100,
        };
        let repository = s.repository.clone();
        async move {
            let mut found: Vec<String> = repository
                .list(&query)
                .await
                .unwrap()
                .iter()
                .map(|k| k.name().as_str().to_owned())
                .collect();
            found.sort();
            found
        }
    };
    assert_eq!(search("ÉLAN").await, ["ÉLAN_ops", "Élan Billing", "élan-reports"]);
    assert_eq!(search("élan_").await, ["ÉLAN_ops"], "_ is a character, not a wildcard");
    assert_eq!(search("%").await, ["100% done"], "% is a character, not a wildcard");
    assert_eq!(search("a\\").await, ["a\\b"]);
    assert_eq!(
        search("ångström").await,
        ["ÅNGSTRÖM"],
        "a rename is searched by its new name"
    );
    assert!(search("renamed").await.is_empty());
    assert!(search("zzz").await.is_empty());
}

/// Counts stored before the per-key sums existed are in them after migration
/// 000016 (which on SQLite also rebuilds the buckets table in key order):
/// rolled back over stored counts, then forward again.
async fn counts_stored_before_the_per_key_sums_are_summed_by_their_migration(backend: Backend) {
    let database = MigratedDatabase::new(backend).await;
    let db = &database.db;
    let repository = SqlApiKeyRepository::new(db.clone());
    let owner = OrgId::from_uuid(Uuid::from_u128(1));
    let (a, b) = (
        KeyId::from_uuid(Uuid::from_u128(10)),
        KeyId::from_uuid(Uuid::from_u128(11)),
    );
    let counts = [
        counted(owner, a, VerificationOutcome::Valid, t(60), &["region=eu"], 3),
        counted(owner, a, VerificationOutcome::RateLimited, t(3_700), &[], 2),
        counted(owner, b, VerificationOutcome::Valid, t(90_000), &[], 4),
    ];
    repository.add_counts(&counts).await.unwrap();
    Migrator::down(&db.write, Some(steps_back_to("_verification_key_counts")))
        .await
        .unwrap();
    Migrator::up(&db.write, None).await.unwrap();
    for granularity in [Granularity::Minute, Granularity::Hour, Granularity::Day] {
        let mut busiest = AnalyticsQuery::new(owner, granularity, t(0), t(2 * 86_400));
        busiest.total = true;
        busiest.group_by.key_id = true;
        busiest.order = RowOrder::Count;
        let rows = repository.query(&busiest).await.unwrap();
        assert_eq!(
            rows.iter()
                .map(|r| (r.key_id, r.count, r.spent_credits))
                .collect::<Vec<_>>(),
            vec![(Some(a), 5, 10), (Some(b), 4, 8)],
            "{granularity:?}"
        );
    }
    // The rebuilt buckets still answer by tag and outcome.
    let mut tagged = AnalyticsQuery::new(owner, Granularity::Day, t(0), t(2 * 86_400));
    tagged.total = true;
    tagged.group_by.outcome = true;
    tagged.key_ids = vec![a];
    tagged.tags = vec!["region=eu".to_owned()];
    let rows = repository.query(&tagged).await.unwrap();
    assert_eq!(
        rows.iter().map(|r| (r.outcome, r.count)).collect::<Vec<_>>(),
        vec![(Some(VerificationOutcome::Valid), 3)]
    );
}

/// SQLite runs a migration's statements each on its own: migration 000016,
/// stopped between any two of its steps (here: with a half-made copy of the
/// buckets, and with the copy made and the original dropped), finishes when
/// run again, every count kept once.
#[tokio::test]
async fn sqlite_the_per_key_sums_migration_finishes_after_stopping_between_its_steps() {
    use sea_orm::ConnectionTrait;
    let database = MigratedDatabase::new(Backend::Sqlite).await;
    let db = &database.db;
    let repository = SqlApiKeyRepository::new(db.clone());
    let owner = OrgId::from_uuid(Uuid::from_u128(1));
    let key = KeyId::from_uuid(Uuid::from_u128(10));
    repository
        .add_counts(&[counted(owner, key, VerificationOutcome::Valid, t(60), &[], 7)])
        .await
        .unwrap();
    let forget_16 = "DELETE FROM seaql_migrations WHERE version LIKE '%_verification_key_counts'";
    let stops = [
        // Stopped while copying: the copy is partial, the original whole.
        "CREATE TABLE verification_buckets_by_key AS SELECT * FROM verification_buckets WHERE 0",
        // Stopped after dropping the original: the copy is whole.
        "ALTER TABLE verification_buckets RENAME TO verification_buckets_by_key",
    ];
    for stop in stops {
        db.write.execute_unprepared(stop).await.unwrap();
        db.write.execute_unprepared(forget_16).await.unwrap();
        Migrator::up(&db.write, None).await.unwrap();
        let mut busiest = AnalyticsQuery::new(owner, Granularity::Hour, t(0), t(86_400));
        busiest.total = true;
        busiest.group_by.key_id = true;
        let rows = repository.query(&busiest).await.unwrap();
        assert_eq!(
            rows.iter().map(|r| (r.key_id, r.count)).collect::<Vec<_>>(),
            vec![(Some(key), 7)],
            "{stop}"
        );
        let mut one_key = busiest.clone();
        one_key.key_ids = vec![key];
        one_key.group_by.outcome = true;
        let rows = repository.query(&one_key).await.unwrap();
        assert_eq!(rows.iter().map(|r| r.count).sum::<u64>(), 7, "{stop}");
    }
}

#[tokio::test]
async fn sqlite_counts_stored_before_the_per_key_sums_are_summed_by_their_migration() {
    counts_stored_before_the_per_key_sums_are_summed_by_their_migration(Backend::Sqlite).await;
}

#[tokio::test]
#[ignore = "needs PostgreSQL: set KEYMINT_TEST_POSTGRES_URL"]
async fn postgres_counts_stored_before_the_per_key_sums_are_summed_by_their_migration() {
    counts_stored_before_the_per_key_sums_are_summed_by_their_migration(Backend::Postgres).await;
}

/// Keys stored before name search existed are found by it: migration 000012
/// folds their names (in Rust, as the service does), here run again after
/// being rolled back over a stored key.
async fn names_stored_before_search_are_folded_by_its_migration(backend: Backend) {
    let database = MigratedDatabase::new(backend).await;
    let db = &database.db;
    let repository: Arc<dyn ApiKeyRepository> = Arc::new(SqlApiKeyRepository::new(db.clone()));
    let owner = org();
    insert(&*repository, &key(owner, "ÅNGSTRÖM Old", t(0), Environment::Live)).await;
    // Back to before 000012 (undoing every later one), then forward again.
    Migrator::down(&db.write, Some(steps_back_to("_key_name_search")))
        .await
        .unwrap();
    Migrator::up(&db.write, None).await.unwrap();
    let query = KeyQuery {
        org_id: owner,
        environment: None,
        revoked: None,
        owner_id: None,
        name: Some(NameSearch::new("ångström").unwrap()),
        after: None,
        limit: 10,
    };
    let found = repository.list(&query).await.unwrap();
    assert_eq!(found.len(), 1, "the stored name was folded by the migration");
}

#[tokio::test]
async fn sqlite_names_stored_before_search_are_folded_by_its_migration() {
    names_stored_before_search_are_folded_by_its_migration(Backend::Sqlite).await;
}

#[tokio::test]
#[ignore = "needs PostgreSQL: set KEYMINT_TEST_POSTGRES_URL"]
async fn postgres_names_stored_before_search_are_folded_by_its_migration() {
    names_stored_before_search_are_folded_by_its_migration(Backend::Postgres).await;
}

/// A busy organisation's deliveries take at most its share of the senders,
/// counted across claims (and processes) by their leases, and a quiet one's
/// delivery goes in the same claim.
async fn deliveries_are_shared_fairly_between_organisations_and_endpoints(backend: Backend) {
    let s = subject(backend).await;
    let busy = org();
    let mut busy_hooks = Vec::new();
    for _ in 0..3 {
        let hook = webhook(busy, t(0));
        s.repository
            .insert_webhook(&hook, &WebhookSecret::generate(&mut rand_core::OsRng), 5)
            .await
            .unwrap();
        busy_hooks.push(hook.id);
    }
    for i in 0..4 {
        insert(
            &*s.repository,
            &key(busy, &format!("busy {i}"), t(1), Environment::Live),
        )
        .await;
    }
    let quiet = org();
    let quiet_hook = webhook(quiet, t(0));
    s.repository
        .insert_webhook(&quiet_hook, &WebhookSecret::generate(&mut rand_core::OsRng), 5)
        .await
        .unwrap();
    insert(&*s.repository, &key(quiet, "quiet", t(2), Environment::Live)).await;
    let share = FairShare {
        room: 64,
        per_endpoint: 1,
        per_org: 2,
    };

    let first = s.repository.claim(t(3), t(60), share).await.unwrap();
    let mut endpoints: Vec<Uuid> = first.iter().map(|d| d.webhook_id).collect();
    assert!(
        endpoints.contains(&quiet_hook.id),
        "the quiet organisation is served at once"
    );
    assert_eq!(
        first.len(),
        4,
        "one per busy endpoint (two under the organisation's cap, then one per idle endpoint), one quiet"
    );
    endpoints.sort();
    endpoints.dedup();
    assert_eq!(endpoints.len(), 4, "one per endpoint");
    assert!(
        s.repository.claim(t(4), t(60), share).await.unwrap().is_empty(),
        "leased deliveries count against the caps"
    );
    let done = Attempt {
        attempted_at: t(4),
        latency_ms: 1,
        status_code: Some(200),
        error: None,
    };
    for delivery in &first {
        s.repository
            .record(delivery.id, &done, AfterAttempt::Delivered, breaker(), t(5))
            .await
            .unwrap();
    }
    let second = s.repository.claim(t(6), t(60), share).await.unwrap();
    assert_eq!(second.len(), 3, "the busy organisation's next share");
    assert!(second.iter().all(|d| busy_hooks.contains(&d.webhook_id)));
    // A lease that lapsed (its process died) no longer counts.
    let third = s.repository.claim(t(61), t(120), share).await.unwrap();
    assert_eq!(third.len(), 3);
}

/// An endpoint whose attempts keep failing is paused: none of its deliveries
/// goes until the pause ends, then one probes it, and a success resumes it.
async fn a_failing_endpoint_is_paused_probed_and_resumed(backend: Backend) {
    let s = subject(backend).await;
    let owner = org();
    let hook = webhook(owner, t(0));
    s.repository
        .insert_webhook(&hook, &WebhookSecret::generate(&mut rand_core::OsRng), 5)
        .await
        .unwrap();
    for i in 0..3 {
        insert(&*s.repository, &key(owner, &format!("k{i}"), t(1), Environment::Live)).await;
    }
    let failed = Attempt {
        attempted_at: t(2),
        latency_ms: 5000,
        status_code: None,
        error: Some("timed out".to_owned()),
    };
    let claimed = s.repository.claim(t(2), t(60), wide()).await.unwrap();
    assert_eq!(claimed.len(), 3);
    let first = s
        .repository
        .record(claimed[0].id, &failed, AfterAttempt::RetryAt(t(3)), breaker(), t(7))
        .await
        .unwrap();
    assert!(!first.paused);
    let second = s
        .repository
        .record(claimed[1].id, &failed, AfterAttempt::RetryAt(t(3)), breaker(), t(7))
        .await
        .unwrap();
    assert!(second.paused, "the second failure in a row pauses it");
    let stored = s.repository.webhook(owner, hook.id).await.unwrap().unwrap();
    assert_eq!(stored.health.consecutive_failures, 2);
    assert_eq!(stored.health.paused_until, Some(t(37)));
    assert_eq!(stored.health.state(t(10)), EndpointState::Paused);
    s.repository
        .record(claimed[2].id, &failed, AfterAttempt::RetryAt(t(3)), breaker(), t(8))
        .await
        .unwrap();
    assert!(
        s.repository.claim(t(20), t(80), wide()).await.unwrap().is_empty(),
        "nothing goes to a paused endpoint"
    );
    let probe = s.repository.claim(t(40), t(100), wide()).await.unwrap();
    assert_eq!(probe.len(), 1, "one delivery probes it after the pause");
    let delivered = Attempt {
        status_code: Some(204),
        error: None,
        ..failed.clone()
    };
    let resumed = s
        .repository
        .record(probe[0].id, &delivered, AfterAttempt::Delivered, breaker(), t(41))
        .await
        .unwrap();
    assert!(resumed.closed);
    let stored = s.repository.webhook(owner, hook.id).await.unwrap().unwrap();
    assert_eq!(stored.health, EndpointHealth::default());
    assert_eq!(s.repository.claim(t(42), t(100), wide()).await.unwrap().len(), 2);
}

/// "Send again" on a paused endpoint's delivery probes it now.
async fn a_manual_retry_probes_a_paused_endpoint_at_once(backend: Backend) {
    let s = subject(backend).await;
    let owner = org();
    let hook = webhook(owner, t(0));
    s.repository
        .insert_webhook(&hook, &WebhookSecret::generate(&mut rand_core::OsRng), 5)
        .await
        .unwrap();
    insert(&*s.repository, &key(owner, "k", t(1), Environment::Live)).await;
    let failed = Attempt {
        attempted_at: t(2),
        latency_ms: 1,
        status_code: Some(500),
        error: None,
    };
    for at in [2, 10] {
        let claimed = s.repository.claim(t(at), t(at + 5), wide()).await.unwrap();
        s.repository
            .record(
                claimed[0].id,
                &failed,
                AfterAttempt::RetryAt(t(at + 1)),
                breaker(),
                t(at),
            )
            .await
            .unwrap();
    }
    assert!(
        s.repository.claim(t(20), t(30), wide()).await.unwrap().is_empty(),
        "paused"
    );
    let delivery = s
        .repository
        .deliveries(owner, hook.id, None, 1)
        .await
        .unwrap()
        .remove(0);
    s.repository
        .retry_delivery(owner, hook.id, delivery.id, t(21))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(s.repository.claim(t(21), t(30), wide()).await.unwrap().len(), 1);
}

/// Text an earlier release accepted and the current rule refuses (a zero-width
/// space inside a name, U+2028 in a description, an invisible actor) still
/// reads back: a key is never made unreadable, unverifiable or unrevocable by
/// an upgrade.
async fn text_stored_under_an_earlier_rule_still_reads_back(backend: Backend) {
    let database = MigratedDatabase::new(backend).await;
    let db = &database.db;
    let repository: Arc<dyn ApiKeyRepository> = Arc::new(SqlApiKeyRepository::new(db.clone()));
    let owner = org();
    let k = key(owner, "billing service", t(0), Environment::Live);
    insert(&*repository, &k).await;
    use sea_orm::ConnectionTrait;
    let backend_kind = db.write.get_database_backend();
    let (name, description, owner_id, actor) = ("billing\u{200B}service", "line\u{2028}break", "\u{2800}", "\u{200B}");
    for (sql, value) in [
        ("UPDATE api_keys SET name = $1", name),
        ("UPDATE api_keys SET description = $1", description),
        ("UPDATE api_keys SET owner_id = $1", owner_id),
        ("UPDATE api_key_events SET actor = $1", actor),
    ] {
        let sql = if backend == Backend::Sqlite {
            sql.replace("$1", "?")
        } else {
            sql.to_owned()
        };
        db.write
            .execute(sea_orm::Statement::from_sql_and_values(
                backend_kind,
                sql,
                [value.into()],
            ))
            .await
            .unwrap();
    }
    let read = repository.find(owner, k.id()).await.unwrap().unwrap();
    assert_eq!(read.name().as_str(), name);
    assert_eq!(read.description().map(|d| d.as_str()), Some(description));
    assert_eq!(read.owner_id().map(|o| o.as_str()), Some(owner_id));
    let events = trail_of(&*repository, &k).await;
    assert_eq!(events[0].actor.as_ref().map(|a| a.as_str()), Some(actor));
}

#[tokio::test]
async fn sqlite_text_stored_under_an_earlier_rule_still_reads_back() {
    text_stored_under_an_earlier_rule_still_reads_back(Backend::Sqlite).await;
}

#[tokio::test]
#[ignore = "needs PostgreSQL: set KEYMINT_TEST_POSTGRES_URL"]
async fn postgres_text_stored_under_an_earlier_rule_still_reads_back() {
    text_stored_under_an_earlier_rule_still_reads_back(Backend::Postgres).await;
}

async fn imported_keys_are_found_by_digest_current_or_rotated_out_and_never_stored_twice(backend: Backend) {
    let s = subject(backend).await;
    let (mine, theirs) = (org(), org());
    let generation = s.repository.digest_generation().await.unwrap();
    let raw = "xoxb-123456789012-abcdefghijklmnopqrstuvwx";
    let imported = imported_key(mine, raw, t(0));
    insert(&*s.repository, &imported).await;
    let digest = KeyDigest::of(raw);

    let found = s.repository.find_by_digest(&digest).await.unwrap().unwrap();
    assert_eq!(format!("{:?}", found.parts()), format!("{:?}", imported.parts()));
    assert!(s
        .repository
        .find_by_digest(&KeyDigest::of("other"))
        .await
        .unwrap()
        .is_none());
    assert_ne!(
        s.repository.digest_generation().await.unwrap(),
        generation,
        "an import moves the generation"
    );
    assert_eq!(s.repository.lookup_digests().await.unwrap(), vec![digest]);

    // The same private key again, in this organisation or another: refused.
    for owner in [mine, theirs] {
        let again = imported_key(owner, raw, t(1));
        let result = s
            .repository
            .insert(&again, &event(&again, AuditAction::Imported, t(1)), 1000, t(1))
            .await;
        assert!(matches!(result, Err(RepositoryError::Conflict)), "{result:?}");
    }

    // Rotated out with a grace period: still found by its digest, and still taken.
    let mut rotated = found;
    let read = rotated.revision();
    let replacement = KeyMaterial::generate(Environment::Live, &mut rand_core::OsRng);
    rotated
        .rotate(credential(&replacement), Duration::hours(1), t(2))
        .unwrap();
    s.repository
        .update(&rotated, read, &event(&rotated, AuditAction::Rotated, t(2)))
        .await
        .unwrap();
    let found = s.repository.find_by_digest(&digest).await.unwrap().unwrap();
    assert_eq!(found.id(), imported.id());
    assert_eq!(found.previous_credential().and_then(|p| p.lookup_digest), Some(digest));
    assert_eq!(found.parts().credential.lookup_digest, None);
    assert_eq!(s.repository.lookup_digests().await.unwrap(), vec![digest]);
    let again = imported_key(theirs, raw, t(3));
    let result = s
        .repository
        .insert(&again, &event(&again, AuditAction::Imported, t(3)), 1000, t(3))
        .await;
    assert!(matches!(result, Err(RepositoryError::Conflict)), "{result:?}");
    // A key whose lookup id is another key's rotated-out one is refused too.
    let mut reused = key(theirs, "reused", t(4), Environment::Live).parts().clone();
    reused.credential.lookup_id = rotated.previous_credential().unwrap().lookup_id.clone();
    let reused = ApiKey::restore(reused);
    let result = s
        .repository
        .insert(&reused, &event(&reused, AuditAction::Imported, t(4)), 1000, t(4))
        .await;
    assert!(matches!(result, Err(RepositoryError::Conflict)), "{result:?}");
}

/// The same private key imported in another form than a stored key has it:
/// by digest when it was issued here, by plaintext (keeping its lookup id)
/// when it was imported by digest. Both refused, in any organisation.
async fn an_import_of_a_stored_key_in_another_form_is_a_conflict(backend: Backend) {
    let s = subject(backend).await;
    let (mine, theirs) = (org(), org());
    let material = KeyMaterial::generate(Environment::Live, &mut rand_core::OsRng);
    let digest = KeyDigest::of(material.private_key().expose_secret());
    let mut issued = key(mine, "issued", t(0), Environment::Live).parts().clone();
    issued.credential = Credential {
        lookup_id: material.lookup_id(),
        secret_hash: SecretHash::sha256(&digest),
        display: material.private_key().display(),
        lookup_digest: None,
    };
    let issued = ApiKey::restore(issued);
    insert(&*s.repository, &issued).await;

    let mut by_digest = imported_key(theirs, "unused", t(1)).parts().clone();
    by_digest.credential.secret_hash = SecretHash::sha256(&digest);
    by_digest.credential.lookup_digest = Some(digest);
    let by_digest = ApiKey::restore(by_digest);
    let result = s
        .repository
        .insert(&by_digest, &event(&by_digest, AuditAction::Imported, t(1)), 1000, t(1))
        .await;
    assert!(matches!(result, Err(RepositoryError::Conflict)), "{result:?}");

    // The other way round: imported by digest first, then by plaintext.
    let other = KeyMaterial::generate(Environment::Live, &mut rand_core::OsRng);
    let other_digest = KeyDigest::of(other.private_key().expose_secret());
    let mut first = imported_key(mine, "unused", t(2)).parts().clone();
    first.credential.secret_hash = SecretHash::sha256(&other_digest);
    first.credential.lookup_digest = Some(other_digest);
    let first = ApiKey::restore(first);
    s.repository
        .insert(&first, &event(&first, AuditAction::Imported, t(2)), 1000, t(2))
        .await
        .unwrap();
    let mut plaintext = key(theirs, "plaintext", t(3), Environment::Live).parts().clone();
    plaintext.credential = Credential {
        lookup_id: other.lookup_id(),
        secret_hash: SecretHash::sha256(&other_digest),
        display: other.private_key().display(),
        lookup_digest: None,
    };
    let plaintext = ApiKey::restore(plaintext);
    let result = s
        .repository
        .insert(&plaintext, &event(&plaintext, AuditAction::Imported, t(3)), 1000, t(3))
        .await;
    assert!(matches!(result, Err(RepositoryError::Conflict)), "{result:?}");
    assert!(s.repository.find(theirs, plaintext.id()).await.unwrap().is_none());
}

async fn a_rehash_replaces_exactly_the_hash_it_names(backend: Backend) {
    let s = subject(backend).await;
    let owner = org();
    let mut k = key(owner, "old hash", t(0), Environment::Live);
    insert(&*s.repository, &k).await;
    let read = k.revision();
    let replacement = KeyMaterial::generate(Environment::Live, &mut rand_core::OsRng);
    k.rotate(credential(&replacement), Duration::hours(1), t(1)).unwrap();
    s.repository
        .update(&k, read, &event(&k, AuditAction::Rotated, t(1)))
        .await
        .unwrap();
    let (current, previous) = (
        k.secret_hash().clone(),
        k.previous_credential().unwrap().secret_hash.clone(),
    );
    let new_previous = SecretHash::sha256(&KeyDigest::of("the rotated-out private key"));
    let new_current = SecretHash::sha256(&KeyDigest::of("the current private key"));

    assert!(s.repository.rehash(k.id(), &previous, &new_previous).await.unwrap());
    let read = s.repository.find(owner, k.id()).await.unwrap().unwrap();
    assert_eq!(read.previous_credential().map(|p| &p.secret_hash), Some(&new_previous));
    assert_eq!(read.secret_hash(), &current);
    assert_eq!(read.revision(), k.revision(), "a rehash is no change anyone made");

    assert!(s.repository.rehash(k.id(), &current, &new_current).await.unwrap());
    assert!(
        !s.repository.rehash(k.id(), &current, &new_previous).await.unwrap(),
        "the hash it names is no longer stored"
    );
    let other = key(owner, "other", t(2), Environment::Live);
    insert(&*s.repository, &other).await;
    assert!(!s
        .repository
        .rehash(other.id(), &new_current, &new_previous)
        .await
        .unwrap());
    let read = s.repository.find(owner, k.id()).await.unwrap().unwrap();
    assert_eq!(read.secret_hash(), &new_current);
    assert_eq!(read.previous_credential().map(|p| &p.secret_hash), Some(&new_previous));
    let events = s
        .repository
        .events(&EventQuery {
            org_id: owner,
            key_id: k.id(),
            after: None,
            limit: 10,
        })
        .await
        .unwrap();
    assert_eq!(events.len(), 2, "created and rotated; rehashes are not audited");
}

/// One minute's counts, as the usage flusher hands them over.
fn counted(
    org: OrgId,
    key: KeyId,
    outcome: VerificationOutcome,
    at: DateTime<Utc>,
    tags: &[&str],
    n: u64,
) -> BucketCount {
    BucketCount {
        org_id: org,
        key_id: key,
        owner_id: Some(OwnerId::new("acme").unwrap()),
        outcome,
        minute: Granularity::Minute.bucket_of(at),
        tags: TagSet::new(tags.iter().map(|tag| Tag::new(*tag).unwrap())).unwrap(),
        count: n,
        spent_credits: n * 2,
    }
}

async fn verification_counts_add_up_at_every_width_and_are_pruned_by_age(backend: Backend) {
    use VerificationOutcome::{Revoked, Valid};
    let s = subject(backend).await;
    let (org, other) = (
        OrgId::from_uuid(Uuid::from_u128(1)),
        OrgId::from_uuid(Uuid::from_u128(2)),
    );
    let (a, b) = (
        KeyId::from_uuid(Uuid::from_u128(10)),
        KeyId::from_uuid(Uuid::from_u128(11)),
    );
    // Two days of traffic, written by two flushes (or two processes) that
    // overlap on the same buckets: counts add up, never overwrite.
    let day = 86_400;
    let first = vec![
        counted(org, a, Valid, t(10), &["path=/x"], 3),
        counted(org, a, Valid, t(70), &["path=/x", "region=eu"], 2),
        counted(org, b, Revoked, t(3_700), &[], 1),
        counted(org, a, Valid, t(day + 5), &[], 4),
        counted(other, a, Valid, t(10), &[], 100),
    ];
    let second = vec![counted(org, a, Valid, t(10), &["path=/x"], 5)];
    s.repository.add_counts(&first).await.unwrap();
    s.repository.add_counts(&second).await.unwrap();

    let range = |granularity| AnalyticsQuery::new(org, granularity, t(0), t(2 * day));
    let rows = s.repository.query(&range(Granularity::Minute)).await.unwrap();
    let minutes: Vec<(DateTime<Utc>, u64, u64)> = rows.iter().map(|r| (r.time, r.count, r.spent_credits)).collect();
    assert_eq!(
        minutes,
        vec![(t(0), 8, 16), (t(60), 2, 4), (t(3_660), 1, 2), (t(day), 4, 8)],
        "minute buckets, time ascending, the two writes of minute 0 added"
    );
    let hours: Vec<(DateTime<Utc>, u64)> = s
        .repository
        .query(&range(Granularity::Hour))
        .await
        .unwrap()
        .iter()
        .map(|r| (r.time, r.count))
        .collect();
    assert_eq!(hours, vec![(t(0), 10), (t(3_600), 1), (t(day), 4)]);
    // Per key, the same totals (an ungrouped query may read the
    // organisation's own rows; one grouped by key reads the keys').
    let mut per_key = range(Granularity::Hour);
    per_key.group_by = GroupBy {
        key_id: true,
        ..GroupBy::default()
    };
    let mut summed: Vec<(DateTime<Utc>, u64)> = Vec::new();
    for row in s.repository.query(&per_key).await.unwrap() {
        match summed.last_mut() {
            Some((time, count)) if *time == row.time => *count += row.count,
            _ => summed.push((row.time, row.count)),
        }
    }
    assert_eq!(summed, hours);
    // Totals over the whole range, the organisation's and per key, largest
    // first; a total over nothing is no row.
    let mut total = range(Granularity::Hour);
    total.total = true;
    let rows = s.repository.query(&total).await.unwrap();
    assert_eq!(
        rows.iter().map(|r| (r.time, r.count)).collect::<Vec<_>>(),
        vec![(t(0), 15)]
    );
    total.group_by.key_id = true;
    total.order = RowOrder::Count;
    let rows = s.repository.query(&total).await.unwrap();
    assert_eq!(
        rows.iter().map(|r| (r.time, r.key_id, r.count)).collect::<Vec<_>>(),
        vec![(t(0), Some(a), 14), (t(0), Some(b), 1)]
    );
    total.limit = 1;
    let rows = s.repository.query(&total).await.unwrap();
    assert_eq!(
        rows.iter().map(|r| (r.key_id, r.count)).collect::<Vec<_>>(),
        vec![(Some(a), 14)]
    );
    let mut nothing = AnalyticsQuery::new(org, Granularity::Hour, t(10 * day), t(11 * day));
    nothing.total = true;
    assert_eq!(s.repository.query(&nothing).await.unwrap(), Vec::new());
    nothing.group_by.tag = true;
    assert_eq!(s.repository.query(&nothing).await.unwrap(), Vec::new());
    let days: Vec<(DateTime<Utc>, u64)> = s
        .repository
        .query(&range(Granularity::Day))
        .await
        .unwrap()
        .iter()
        .map(|r| (r.time, r.count))
        .collect();
    assert_eq!(
        days,
        vec![(t(0), 11), (t(day), 4)],
        "the other organisation's 100 are not ours"
    );

    let mut by_tag = range(Granularity::Day);
    by_tag.group_by = GroupBy {
        tag: true,
        ..GroupBy::default()
    };
    let tagged: Vec<(DateTime<Utc>, Option<Option<String>>, u64)> = s
        .repository
        .query(&by_tag)
        .await
        .unwrap()
        .into_iter()
        .map(|r| (r.time, r.tag, r.count))
        .collect();
    assert_eq!(
        tagged,
        vec![
            (t(0), Some(None), 1),
            (t(0), Some(Some("path=/x".to_owned())), 10),
            (t(0), Some(Some("region=eu".to_owned())), 2),
            (t(day), Some(None), 4),
        ]
    );
    let mut filtered = range(Granularity::Hour);
    filtered.tags = vec!["region=eu".to_owned()];
    filtered.key_ids = vec![a];
    filtered.outcomes = vec![Valid];
    filtered.owner_ids = vec![OwnerId::new("acme").unwrap()];
    filtered.group_by = GroupBy {
        key_id: true,
        owner_id: true,
        outcome: true,
        tag: false,
    };
    let rows = s.repository.query(&filtered).await.unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(
        (rows[0].key_id, rows[0].owner_id.clone(), rows[0].outcome, rows[0].count),
        (Some(a), Some(Some(OwnerId::new("acme").unwrap())), Some(Valid), 2)
    );

    let mut since: Vec<(KeyId, u64)> = s.repository.counts_since(org, &[a, b], t(0)).await.unwrap();
    since.sort();
    assert_eq!(since, vec![(a, 14), (b, 1)]);
    assert_eq!(
        s.repository.counts_since(org, &[a], t(day)).await.unwrap(),
        vec![(a, 4)]
    );

    // Retention, the clock moved on: minute buckets before day 1 go, hours
    // and days stay.
    let pruned = s
        .repository
        .prune_buckets(&[
            (Granularity::Minute, t(day)),
            (Granularity::Hour, t(0)),
            (Granularity::Day, t(0)),
        ])
        .await
        .unwrap();
    // Our three minute rows of day 0 and the other organisation's; SQL
    // keeps each three times (per key and tag set, per organisation, per key
    // alone).
    let rows_each = if backend == Backend::Memory { 1 } else { 3 };
    assert_eq!(pruned, 4 * rows_each);
    let minutes = s.repository.query(&range(Granularity::Minute)).await.unwrap();
    assert_eq!(minutes.iter().map(|r| r.count).sum::<u64>(), 4);
    let mut minutes_by_key = range(Granularity::Minute);
    minutes_by_key.key_ids = vec![a, b];
    let minutes = s.repository.query(&minutes_by_key).await.unwrap();
    assert_eq!(minutes.iter().map(|r| r.count).sum::<u64>(), 4);
    assert_eq!(s.repository.query(&range(Granularity::Hour)).await.unwrap().len(), 3);

    // One pruning per interval, whichever process asks, remembered by the
    // storage: a claim within the interval of the last is refused.
    let hour = chrono::Duration::hours(1);
    assert!(s.repository.claim_prune(t(2 * day), hour).await.unwrap());
    assert!(!s.repository.claim_prune(t(2 * day + 1_800), hour).await.unwrap());
    assert!(s.repository.claim_prune(t(2 * day + 3_600), hour).await.unwrap());
}

/// Totals read from hour buckets may take whole days from day rows: the
/// answer must be the same as adding up the hours, whichever table a
/// question is answered from (the organisation's, a key's alone, a key's by
/// outcome, owner and tag).
async fn a_total_over_days_and_hours_adds_up_exactly_the_hours_in_its_range(backend: Backend) {
    use VerificationOutcome::{RateLimited, Valid};
    let s = subject(backend).await;
    let org = OrgId::from_uuid(Uuid::from_u128(1));
    let keys: Vec<KeyId> = (0..3).map(|i| KeyId::from_uuid(Uuid::from_u128(20 + i))).collect();
    let (hour, day) = (3_600, 86_400);
    let mut counts = Vec::new();
    for d in 0..4 {
        for h in [0, 1, 5, 13, 23] {
            for (i, key) in keys.iter().enumerate() {
                let outcome = if (d + h + i as i64) % 3 == 0 {
                    RateLimited
                } else {
                    Valid
                };
                let tags: &[&str] = if i == 1 { &["region=eu"] } else { &[] };
                let n = 1 + (i as u64 + 1) * (d as u64 * 24 + h as u64);
                counts.push(counted(org, *key, outcome, t(d * day + h * hour + 59 * 60), tags, n));
            }
        }
    }
    s.repository.add_counts(&counts).await.unwrap();
    for (from, to) in [
        (t(0), t(4 * day)),
        (t(hour), t(3 * day + 13 * hour + 1)),
        (t(5 * hour), t(day + 2 * hour)),
        (t(day + hour), t(day + 20 * hour)),
        (t(23 * hour), t(2 * day + 30 * 60)),
    ] {
        let within: Vec<&BucketCount> = counts
            .iter()
            .filter(|c| (from..to).contains(&Granularity::Hour.bucket_of(c.minute)))
            .collect();
        let mut total = AnalyticsQuery::new(org, Granularity::Hour, from, to);
        total.total = true;
        let all: Vec<(u64, u64)> = s
            .repository
            .query(&total)
            .await
            .unwrap()
            .iter()
            .map(|r| (r.count, r.spent_credits))
            .collect();
        let expected = (
            within.iter().map(|c| c.count).sum::<u64>(),
            within.iter().map(|c| c.spent_credits).sum::<u64>(),
        );
        assert_eq!(all, vec![expected], "{from}..{to}, the organisation's");

        let mut busiest = total.clone();
        busiest.group_by.key_id = true;
        busiest.order = RowOrder::Count;
        let mut expected: Vec<(Option<KeyId>, u64)> = keys
            .iter()
            .map(|key| {
                let n = within.iter().filter(|c| c.key_id == *key).map(|c| c.count).sum();
                (Some(*key), n)
            })
            .filter(|(_, n)| *n > 0)
            .collect();
        expected.sort_by_key(|(_, n)| std::cmp::Reverse(*n));
        let rows = s.repository.query(&busiest).await.unwrap();
        assert_eq!(
            rows.iter().map(|r| (r.key_id, r.count)).collect::<Vec<_>>(),
            expected,
            "{from}..{to}, per key"
        );
        assert!(rows.iter().all(|r| r.time == from), "a total's time is its from");

        let mut by_outcome = total.clone();
        by_outcome.group_by.key_id = true;
        by_outcome.group_by.outcome = true;
        by_outcome.key_ids = keys.clone();
        let rows = s.repository.query(&by_outcome).await.unwrap();
        for key in &keys {
            for outcome in [Valid, RateLimited] {
                let n: u64 = within
                    .iter()
                    .filter(|c| c.key_id == *key && c.outcome == outcome)
                    .map(|c| c.count)
                    .sum();
                let found: u64 = rows
                    .iter()
                    .filter(|r| r.key_id == Some(*key) && r.outcome == Some(outcome))
                    .map(|r| r.count)
                    .sum();
                assert_eq!(found, n, "{from}..{to}, {key} {outcome:?}");
            }
        }

        let mut owned = total.clone();
        owned.owner_ids = vec![OwnerId::new("acme").unwrap()];
        owned.group_by.owner_id = true;
        let rows = s.repository.query(&owned).await.unwrap();
        assert_eq!(
            rows.iter().map(|r| (r.owner_id.clone(), r.count)).collect::<Vec<_>>(),
            vec![(
                Some(Some(OwnerId::new("acme").unwrap())),
                within.iter().map(|c| c.count).sum::<u64>()
            )],
            "{from}..{to}, by owner"
        );

        let mut tagged = total.clone();
        tagged.tags = vec!["region=eu".to_owned()];
        let rows = s.repository.query(&tagged).await.unwrap();
        let n: u64 = within.iter().filter(|c| c.key_id == keys[1]).map(|c| c.count).sum();
        assert_eq!(rows.iter().map(|r| r.count).sum::<u64>(), n, "{from}..{to}, tagged");
    }
}

async fn storage_answers_the_readiness_probe(backend: Backend) {
    let s = subject(backend).await;
    s.repository.ping().await.unwrap();
}

for_each_backend!(
    verification_counts_add_up_at_every_width_and_are_pruned_by_age,
    a_total_over_days_and_hours_adds_up_exactly_the_hours_in_its_range,
    imported_keys_are_found_by_digest_current_or_rotated_out_and_never_stored_twice,
    a_rehash_replaces_exactly_the_hash_it_names,
    an_import_of_a_stored_key_in_another_form_is_a_conflict,
    stored_keys_read_back_identically_and_only_for_their_organisation,
    a_taken_id_public_key_or_lookup_id_is_a_conflict,
    the_limit_counts_only_unrevoked_unexpired_keys,
    concurrent_creates_each_get_their_own_answer,
    the_same_key_stored_again_is_a_conflict_even_at_the_limit,
    lists_are_newest_first_filtered_and_paged_without_gaps,
    updates_are_compare_and_set_and_never_roll_back_usage,
    a_leak_and_where_it_was_seen_read_back_identically,
    a_change_queues_its_delivery_which_is_claimed_once_recorded_and_pruned,
    a_disabled_webhooks_deliveries_wait_and_a_deleted_ones_go,
    deliveries_are_shared_fairly_between_organisations_and_endpoints,
    a_failing_endpoint_is_paused_probed_and_resumed,
    a_manual_retry_probes_a_paused_endpoint_at_once,
    usage_only_moves_forward_and_skips_missing_keys,
    usage_for_more_keys_than_one_statement_holds_reaches_each,
    concurrent_lookups_each_find_their_own_key,
    lookups_find_the_current_and_the_rotated_out_private_key,
    deletion_is_scoped_and_keeps_the_audit_trail,
    text_at_every_limit_reads_back_identically,
    name_search_ignores_case_alike_everywhere_and_wildcards_are_text,
    storage_answers_the_readiness_probe,
);

/// On SQLite a group of creates is one transaction: a create whose statement
/// fails (here a trigger refuses it, standing in for any failure that is not a
/// refusal) or whose webhook delivery cannot be queued must fail alone, leave
/// nothing behind, and take nothing of its group with it.
#[tokio::test]
async fn sqlite_a_failing_create_fails_alone_in_its_group() {
    use sea_orm::ConnectionTrait;
    let database = MigratedDatabase::new(Backend::Sqlite).await;
    let db = &database.db;
    for trigger in [
        "CREATE TRIGGER refuse_key BEFORE INSERT ON api_keys WHEN NEW.name = 'poison' \
         BEGIN SELECT RAISE(ABORT, 'refused by the test'); END",
        "CREATE TRIGGER refuse_delivery BEFORE INSERT ON webhook_deliveries \
         WHEN (SELECT name FROM api_keys WHERE id = NEW.key_id) = 'poisoned delivery' \
         BEGIN SELECT RAISE(ABORT, 'refused by the test'); END",
    ] {
        db.write.execute_unprepared(trigger).await.unwrap();
    }
    let repository: Arc<dyn ApiKeyRepository> = Arc::new(SqlApiKeyRepository::new(db.clone()));
    let owner = org();
    repository
        .insert_webhook(
            &webhook(owner, t(0)),
            &WebhookSecret::generate(&mut rand_core::OsRng),
            5,
        )
        .await
        .unwrap();
    let names = ["a", "poison", "b", "poisoned delivery", "c", "d"];
    // Spawned together on this one-threaded runtime, they queue before the
    // group writer runs and are committed as one group.
    let tasks: Vec<_> = names
        .iter()
        .map(|name| {
            let repository = repository.clone();
            let k = key(owner, name, t(1), Environment::Live);
            tokio::spawn(async move {
                let outcome = repository
                    .insert(&k, &event(&k, AuditAction::Created, t(1)), 100, t(1))
                    .await;
                (k, outcome)
            })
        })
        .collect();
    for task in tasks {
        let (k, outcome) = task.await.unwrap();
        let name = k.name().as_str().to_owned();
        let stored = repository.find(owner, k.id()).await.unwrap();
        let trail = trail_of(&*repository, &k).await;
        if name.starts_with("poison") {
            assert!(
                matches!(outcome, Err(RepositoryError::Unexpected(_))),
                "{name}: {outcome:?}"
            );
            assert!(stored.is_none() && trail.is_empty(), "{name} left something behind");
        } else {
            assert!(outcome.is_ok(), "{name}: {outcome:?}");
            assert!(stored.is_some() && trail.len() == 1, "{name} is not stored whole");
        }
    }
    let room = FairShare {
        room: 100,
        per_endpoint: 100,
        per_org: 100,
    };
    let claimed = repository.claim(t(2), t(60), room).await.unwrap();
    assert_eq!(
        claimed.len(),
        4,
        "one delivery per stored key, none for the failed ones"
    );
}
