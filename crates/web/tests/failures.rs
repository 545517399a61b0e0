//! How the HTTP adapter answers when a port fails: storage or token keys down,
//! or a bug. Ports are mockall mocks, so every failure is exact and repeatable.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use actix_web::{test, web, App};
use keymint_application::{
    ApiKeys, AuthError, Authenticate, KeyPolicy, LeakAction, MockClock, MockKeyGenerator, MockKeyLookup, MockKeyStore,
    MockReportSignatures, MockSecretHasher, MockStorageHealth, MockTokenVerifier, MockWebhookStore, NoFailureLimiter,
    NoUsageTracker, NoVerificationCache, ReportLeaks, ReportSignatureError, RepositoryError, VerifiedToken,
    VerifyApiKey, WebhookPolicy, Webhooks,
};
use keymint_domain::{Environment, KeyId, KeyMaterial, SecretHash};
use keymint_web::{configure, AppState, BodyLimit};
use serde_json::{json, Value};
use uuid::Uuid;

fn verifier_accepting() -> MockTokenVerifier {
    let mut verifier = MockTokenVerifier::new();
    verifier.expect_verify().returning(|_| {
        Ok(VerifiedToken {
            subject: Some("auth0|tester".to_owned()),
            organization: Some(Uuid::nil().to_string()),
            ..VerifiedToken::default()
        })
    });
    verifier
}

/// Each port is a mock of just its capability: a test states only what the
/// route under test may touch.
fn state(store: MockKeyStore, verifier: MockTokenVerifier) -> AppState {
    state_with(store, MockStorageHealth::new(), verifier)
}

fn state_with(store: MockKeyStore, health: MockStorageHealth, verifier: MockTokenVerifier) -> AppState {
    state_of(
        store,
        health,
        verifier,
        MockKeyLookup::new(),
        MockReportSignatures::new(),
    )
}

fn state_of(
    store: MockKeyStore,
    health: MockStorageHealth,
    verifier: MockTokenVerifier,
    lookup: MockKeyLookup,
    signatures: MockReportSignatures,
) -> AppState {
    let mut hasher = MockSecretHasher::new();
    hasher
        .expect_hash()
        .returning(|_| Ok(SecretHash::new("$argon2id$v=19$m=8,t=1,p=1$c2FsdA$aGFzaA").unwrap()));
    let mut generator = MockKeyGenerator::new();
    generator
        .expect_key_id()
        .returning(|| KeyId::from_uuid(Uuid::from_u128(1)));
    generator.expect_event_id().returning(Uuid::new_v4);
    generator
        .expect_material()
        .returning(|env| KeyMaterial::generate(env, &mut rand_core::OsRng));
    let mut clock = MockClock::new();
    clock.expect_now().returning(chrono::Utc::now);
    let api_keys = ApiKeys::new(
        Arc::new(store),
        Arc::new(hasher),
        Arc::new(generator),
        Arc::new(clock),
        KeyPolicy::default(),
    );
    let mut verify_clock = MockClock::new();
    verify_clock.expect_now().returning(chrono::Utc::now);
    let verify = VerifyApiKey::new(
        Arc::new(lookup),
        Arc::new(MockSecretHasher::new()),
        Arc::new(verify_clock),
        Arc::new(NoVerificationCache),
        Arc::new(NoFailureLimiter),
        Arc::new(NoUsageTracker),
    );
    let mut webhook_clock = MockClock::new();
    webhook_clock.expect_now().returning(chrono::Utc::now);
    let mut counts = keymint_application::MockAnalyticsStore::new();
    counts.expect_counts_since().returning(|_, _, _| Ok(Vec::new()));
    counts.expect_query().returning(|_| Ok(Vec::new()));
    let mut analytics_clock = MockClock::new();
    analytics_clock.expect_now().returning(chrono::Utc::now);
    AppState {
        analytics: keymint_application::Analytics::new(Arc::new(counts), Arc::new(analytics_clock)),
        webhooks: Webhooks::new(
            Arc::new(MockWebhookStore::new()),
            Arc::new(MockKeyGenerator::new()),
            Arc::new(webhook_clock),
            WebhookPolicy::default(),
        ),
        leaks: ReportLeaks::new(verify.clone(), api_keys.clone(), LeakAction::Revoke),
        report_signatures: Arc::new(signatures),
        api_keys,
        authenticate: Authenticate::new(
            Arc::new(verifier),
            Arc::new(keymint_application::MockOrganizationDirectory::new()),
            false,
        ),
        verify,
        storage: Arc::new(health),
        default_environment: Environment::Live,
        metrics: keymint_web::HttpMetrics::default(),
    }
}

async fn call(state: AppState, request: test::TestRequest) -> (u16, Option<String>, Value) {
    let app = test::init_service(
        App::new()
            .app_data(web::Data::new(state))
            .configure(|cfg| configure(cfg, BodyLimit::default())),
    )
    .await;
    let response = test::call_service(&app, request.to_request()).await;
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_owned());
    let body: Value = test::read_body_json(response).await;
    (status, retry_after, body)
}

fn create_request() -> test::TestRequest {
    test::TestRequest::post()
        .uri("/api/v2/api-keys")
        .insert_header(("authorization", "Bearer any"))
        .set_json(json!({"name": "x"}))
}

#[actix_web::test]
async fn storage_that_cannot_be_reached_is_a_503_with_retry_after_and_no_cause() {
    let mut repository = MockKeyStore::new();
    repository.expect_insert().returning(|_, _, _, _| {
        Err(RepositoryError::Unavailable(anyhow::anyhow!(
            "connection refused to 10.0.0.7:5432"
        )))
    });

    let (status, retry_after, body) = call(state(repository, verifier_accepting()), create_request()).await;

    assert_eq!(status, 503);
    assert_eq!(retry_after.as_deref(), Some("5"));
    assert_eq!(body["code"], "storage_unavailable");
    assert!(!body.to_string().contains("10.0.0.7"));
}

#[actix_web::test]
async fn an_unexpected_failure_is_an_opaque_500() {
    let mut repository = MockKeyStore::new();
    repository.expect_insert().returning(|_, _, _, _| {
        Err(RepositoryError::Unexpected(anyhow::anyhow!(
            "UNIQUE constraint failed: api_keys.secret"
        )))
    });

    let (status, _, body) = call(state(repository, verifier_accepting()), create_request()).await;

    assert_eq!(status, 500);
    assert_eq!(
        body,
        json!({"detail": "Internal Server Error", "code": "internal_error"})
    );
}

#[actix_web::test]
async fn readiness_fails_with_503_when_storage_does_not_answer() {
    let mut health = MockStorageHealth::new();
    health
        .expect_ping()
        .returning(|| Err(RepositoryError::Unavailable(anyhow::anyhow!("down"))));

    let (status, retry_after, body) = call(
        state_with(MockKeyStore::new(), health, verifier_accepting()),
        test::TestRequest::get().uri("/readyz"),
    )
    .await;

    assert_eq!((status, retry_after.as_deref()), (503, Some("5")));
    assert_eq!(body["code"], "storage_unavailable");
}

#[actix_web::test]
async fn token_verification_that_cannot_run_is_a_503_not_a_401() {
    let mut verifier = MockTokenVerifier::new();
    verifier
        .expect_verify()
        .returning(|_| Err(AuthError::Unavailable(anyhow::anyhow!("JWKS unreachable"))));
    let mut repository = MockKeyStore::new();
    repository.expect_insert().never();

    let (status, retry_after, body) = call(state(repository, verifier), create_request()).await;

    assert_eq!((status, retry_after.as_deref()), (503, Some("5")));
    assert_eq!(body["code"], "auth_unavailable");
}

#[actix_web::test]
async fn a_leak_report_while_storage_is_down_is_a_503_and_never_a_false_all_clear() {
    let mut lookup = MockKeyLookup::new();
    lookup
        .expect_find_by_lookup()
        .returning(|_| Err(RepositoryError::Unavailable(anyhow::anyhow!("connection refused"))));
    let state = state_of(
        MockKeyStore::new(),
        MockStorageHealth::new(),
        MockTokenVerifier::new(),
        lookup,
        MockReportSignatures::new(),
    );
    let key = KeyMaterial::generate(Environment::Live, &mut rand_core::OsRng);
    let request = test::TestRequest::post()
        .uri("/api/v2/api-keys/revoke-leaked")
        .set_json(json!({"key": key.private_key().expose_secret()}));

    let (status, retry_after, body) = call(state, request).await;

    assert_eq!(status, 503);
    assert_eq!(retry_after.as_deref(), Some("5"));
    assert_eq!(body["code"], "storage_unavailable");
}

#[actix_web::test]
async fn github_alerts_are_503_while_its_keys_cannot_be_fetched_and_401_when_the_signature_is_wrong() {
    for (failure, status, code) in [
        (
            ReportSignatureError::Unavailable(anyhow::anyhow!("api.github.com unreachable")),
            503,
            "signing_keys_unavailable",
        ),
        (ReportSignatureError::Invalid, 401, "invalid_signature"),
    ] {
        let mut signatures = MockReportSignatures::new();
        let failure = std::sync::Mutex::new(Some(failure));
        signatures.expect_precheck().times(1).returning(|_, _| Ok(()));
        signatures
            .expect_check()
            .times(1)
            .returning(move |_, _, _| Err(failure.lock().unwrap().take().unwrap()));
        let state = state_of(
            MockKeyStore::new(),
            MockStorageHealth::new(),
            MockTokenVerifier::new(),
            MockKeyLookup::new(),
            signatures,
        );
        let request = test::TestRequest::post()
            .uri("/api/v2/secret-scanning/github")
            .insert_header(("github-public-key-identifier", "abc"))
            .insert_header(("github-public-key-signature", "MEUCIQ=="))
            .set_json(json!([{"token": "sk_live_x", "type": "keymint_private_key", "url": "", "source": "content"}]));

        let (got, _, body) = call(state, request).await;

        assert_eq!((got, body["code"].as_str()), (status, Some(code)), "{body}");
        assert!(!body.to_string().contains("github.com unreachable"));
    }
}

#[actix_web::test]
async fn a_github_alert_whose_headers_fail_is_refused_without_checking_its_body() {
    let mut signatures = MockReportSignatures::new();
    signatures
        .expect_precheck()
        .times(1)
        .returning(|_, _| Err(ReportSignatureError::UnknownKey));
    signatures.expect_check().times(0);
    let state = state_of(
        MockKeyStore::new(),
        MockStorageHealth::new(),
        MockTokenVerifier::new(),
        MockKeyLookup::new(),
        signatures,
    );
    let request = test::TestRequest::post()
        .uri("/api/v2/secret-scanning/github")
        .insert_header(("github-public-key-identifier", "made-up"))
        .insert_header(("github-public-key-signature", "MEUCIQ=="))
        .set_json(json!([{"token": "sk_live_x", "type": "keymint_private_key"}]));

    let (status, _, body) = call(state, request).await;

    assert_eq!(
        (status, body["code"].as_str()),
        (401, Some("invalid_signature")),
        "{body}"
    );
}
