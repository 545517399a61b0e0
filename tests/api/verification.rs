//! The verification hot path through HTTP: every code, every rule, the cache's
//! eviction, the failure limits, and last_used_at.

use std::time::Duration;

use keymint_domain::{Environment, KeyMaterial};
use reqwest::Method;
use serde_json::{json, Value};

use crate::for_each_backend;
use crate::support::{error_body, spawn_app, spawn_app_with, test_settings, Backend};

fn assert_code(verdict: &Value, code: &str) {
    assert_eq!(verdict["code"], code, "{verdict}");
    assert_eq!(verdict["valid"], code == "VALID", "{verdict}");
    let fields: Vec<&String> = verdict.as_object().unwrap().keys().collect();
    assert_eq!(fields.len(), 12, "{verdict}");
    if code != "VALID" {
        for field in [
            "key_id",
            "org_id",
            "environment",
            "name",
            "expires_at",
            "permissions",
            "owner_id",
            "meta",
            "credits",
            "ratelimits",
        ] {
            assert_eq!(verdict[field], Value::Null, "no identity for an invalid key: {verdict}");
        }
    }
}

fn random_key() -> String {
    KeyMaterial::generate(Environment::Live, &mut rand_core::OsRng)
        .private_key()
        .expose_secret()
        .to_owned()
}

fn path(id: &Value, rest: &str) -> String {
    format!("/api/v2/api-keys/{}{rest}", id.as_str().unwrap())
}

async fn a_created_key_verifies_with_its_identity_and_no_jwt(backend: Backend) {
    let app = spawn_app(backend).await;
    let created: Value = app
        .create_key(&json!({"name": "svc", "environment": "test"}))
        .await
        .json()
        .await
        .unwrap();
    let key = created["private_key"].as_str().unwrap();

    let verdict = app.verify(key).await;

    assert_code(&verdict, "VALID");
    assert_eq!(verdict["key_id"], created["id"]);
    assert_eq!(verdict["org_id"], created["org_id"]);
    assert_eq!(
        (verdict["environment"].as_str(), verdict["name"].as_str()),
        (Some("test"), Some("svc"))
    );
    assert_eq!(verdict["expires_at"], Value::Null);
}

async fn the_key_may_come_in_x_api_key_or_a_bearer_header(backend: Backend) {
    let app = spawn_app(backend).await;
    let key = app.create_named("headers").await["private_key"]
        .as_str()
        .unwrap()
        .to_owned();
    let url = app.url("/api/v2/api-keys/verify/");
    for request in [
        app.client.post(&url).header("x-api-key", &key),
        app.client.post(&url).header("authorization", format!("Bearer {key}")),
        app.client
            .post(&url)
            .header("authorization", format!("bearer {key}"))
            .header("content-length", "0"),
    ] {
        let verdict: Value = request.send().await.unwrap().json().await.unwrap();
        assert_code(&verdict, "VALID");
    }
    let v1: Value = app
        .client
        .post(app.url("/api/v1/api-keys/verify"))
        .json(&json!({"key": key}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_code(&v1, "VALID");
}

async fn unknown_malformed_mistyped_and_wrong_keys_are_all_not_found(backend: Backend) {
    let app = spawn_app(backend).await;
    let key = app.create_named("real").await["private_key"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut typo = key.clone();
    typo.replace_range(40..41, if &key[40..41] == "x" { "y" } else { "x" });
    for presented in [
        random_key(),
        "sk_live_nope".to_owned(),
        typo,
        key[..key.len() - 1].to_owned(),
        String::new(),
        format!("{key} "),
    ] {
        assert_code(&app.verify(&presented).await, "NOT_FOUND");
    }
    assert_code(&app.verify(&key).await, "VALID");
}

async fn a_revoked_key_is_refused_by_the_very_next_request(backend: Backend) {
    let app = spawn_app(backend).await;
    let created = app.create_named("soon revoked").await;
    let key = created["private_key"].as_str().unwrap();
    assert_code(&app.verify(key).await, "VALID");
    assert_code(&app.verify(key).await, "VALID");

    assert_eq!(
        app.call(Method::PUT, &path(&created["id"], "/revoke"), None)
            .await
            .status()
            .as_u16(),
        200
    );

    assert_code(&app.verify(key).await, "REVOKED");
}

async fn a_deleted_key_is_refused_by_the_very_next_request(backend: Backend) {
    let app = spawn_app(backend).await;
    let created = app.create_named("soon deleted").await;
    let key = created["private_key"].as_str().unwrap();
    assert_code(&app.verify(key).await, "VALID");
    assert_eq!(
        app.call(Method::DELETE, &path(&created["id"], ""), None)
            .await
            .status()
            .as_u16(),
        204
    );
    assert_code(&app.verify(key).await, "NOT_FOUND");
}

async fn an_expired_key_never_verifies_even_from_the_cache(backend: Backend) {
    let app = spawn_app(backend).await;
    let soon = (chrono::Utc::now() + chrono::Duration::milliseconds(1500)).to_rfc3339();
    let created: Value = app
        .create_key(&json!({"name": "short-lived", "expires_at": soon}))
        .await
        .json()
        .await
        .unwrap();
    let key = created["private_key"].as_str().unwrap();
    let verdict = app.verify(key).await;
    assert_code(&verdict, "VALID");
    assert_eq!(verdict["expires_at"], created["expires_at"]);
    tokio::time::sleep(Duration::from_millis(1600)).await;
    assert_code(&app.verify(key).await, "EXPIRED");
}

async fn a_rotated_out_key_verifies_only_within_its_grace_period(backend: Backend) {
    let app = spawn_app(backend).await;
    let created = app.create_named("rotating").await;
    let first = created["private_key"].as_str().unwrap().to_owned();
    assert_code(&app.verify(&first).await, "VALID");

    let body = json!({"grace_period_seconds": 2});
    let rotated: Value = app
        .call(Method::POST, &path(&created["id"], "/rotate"), Some(&body))
        .await
        .json()
        .await
        .unwrap();
    let second = rotated["private_key"].as_str().unwrap().to_owned();
    assert_code(&app.verify(&first).await, "VALID");
    assert_code(&app.verify(&second).await, "VALID");
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_code(&app.verify(&first).await, "NOT_FOUND");
    assert_code(&app.verify(&second).await, "VALID");

    let rotated: Value = app
        .call(Method::POST, &path(&created["id"], "/rotate"), None)
        .await
        .json()
        .await
        .unwrap();
    assert_code(&app.verify(&second).await, "NOT_FOUND");
    assert_code(&app.verify(rotated["private_key"].as_str().unwrap()).await, "VALID");
}

async fn failures_are_limited_per_key_id_and_per_client(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let figment = test_settings(backend, &dir)
        .merge(("verify.max_failures_per_key", 3))
        .merge(("verify.max_failures_per_client", 6));
    let app = spawn_app_with(figment, dir).await;
    let real = app.create_named("victim").await["private_key"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_code(&app.verify(&real).await, "VALID");

    let guessed = random_key();
    for _ in 0..3 {
        assert_code(&app.verify(&guessed).await, "NOT_FOUND");
    }
    assert_code(&app.verify(&guessed).await, "RATE_LIMITED");
    // The client has 3 failures of its 6; other key ids are still tried.
    for _ in 0..3 {
        assert_code(&app.verify(&random_key()).await, "NOT_FOUND");
    }
    assert_code(&app.verify(&random_key()).await, "RATE_LIMITED");
    // A cached good key is unaffected: limits guard hashing, not the cache.
    assert_code(&app.verify(&real).await, "VALID");
    let uncached = app.create_named("uncached").await["private_key"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_code(&app.verify(&uncached).await, "RATE_LIMITED");
}

/// The verdict on `key` for a request carrying `headers` (forwarding headers).
async fn verify_forwarded(app: &crate::support::TestApp, key: &str, headers: &[(&str, &str)]) -> Value {
    let mut request = app.client.post(app.url("/api/v2/api-keys/verify"));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.json(&json!({ "key": key })).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 200);
    response.json().await.unwrap()
}

async fn behind_a_trusted_proxy_each_forwarded_client_has_its_own_budget(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let figment = test_settings(backend, &dir)
        .merge(("server.trusted_proxies", "10.0.0.0/8, 127.0.0.1"))
        .merge(("verify.max_failures_per_client", 3));
    let app = spawn_app_with(figment, dir).await;
    let xff = |client: &'static str| [("x-forwarded-for", client)];
    for _ in 0..3 {
        assert_code(
            &verify_forwarded(&app, &random_key(), &xff("203.0.113.1")).await,
            "NOT_FOUND",
        );
    }
    assert_code(
        &verify_forwarded(&app, &random_key(), &xff("203.0.113.1")).await,
        "RATE_LIMITED",
    );
    // The same client through a second proxy hop.
    let hops = xff("203.0.113.1, 10.0.0.9");
    assert_code(&verify_forwarded(&app, &random_key(), &hops).await, "RATE_LIMITED");
    // Another client behind the same proxy is not locked out.
    assert_code(
        &verify_forwarded(&app, &random_key(), &xff("203.0.113.2")).await,
        "NOT_FOUND",
    );
    // Naming another address left of the proxy's entry does not escape, nor
    // does a `Forwarded` header of the client's own, which a proxy that
    // appends to X-Forwarded-For passes on untouched.
    let spoofed = xff("198.51.100.77, 203.0.113.1");
    assert_code(&verify_forwarded(&app, &random_key(), &spoofed).await, "RATE_LIMITED");
    let both = [("x-forwarded-for", "203.0.113.1"), ("forwarded", "for=198.51.100.78")];
    assert_code(&verify_forwarded(&app, &random_key(), &both).await, "RATE_LIMITED");
}

async fn proxies_that_speak_rfc_7239_are_read_from_forwarded_only(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let figment = test_settings(backend, &dir)
        .merge(("server.trusted_proxies", "127.0.0.1"))
        .merge(("server.forwarded_header", "forwarded"))
        .merge(("verify.max_failures_per_client", 3));
    let app = spawn_app_with(figment, dir).await;
    let forwarded = [("forwarded", "for=203.0.113.1;proto=https")];
    for _ in 0..3 {
        assert_code(&verify_forwarded(&app, &random_key(), &forwarded).await, "NOT_FOUND");
    }
    let dodge = [("forwarded", "for=203.0.113.1"), ("x-forwarded-for", "198.51.100.1")];
    assert_code(&verify_forwarded(&app, &random_key(), &dodge).await, "RATE_LIMITED");
}

async fn without_trusted_proxies_forwarded_headers_are_ignored(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let figment = test_settings(backend, &dir).merge(("verify.max_failures_per_client", 3));
    let app = spawn_app_with(figment, dir).await;
    for client in ["203.0.113.1", "203.0.113.2", "203.0.113.3"] {
        assert_code(
            &verify_forwarded(&app, &random_key(), &[("x-forwarded-for", client)]).await,
            "NOT_FOUND",
        );
    }
    // A fourth made-up address is still this connection's fourth failure.
    let made_up = [("x-forwarded-for", "203.0.113.4")];
    assert_code(&verify_forwarded(&app, &random_key(), &made_up).await, "RATE_LIMITED");
    let made_up = [("forwarded", "for=203.0.113.5")];
    assert_code(&verify_forwarded(&app, &random_key(), &made_up).await, "RATE_LIMITED");
}

async fn a_missing_key_or_bad_body_is_an_error_not_a_verdict(backend: Backend) {
    let app = spawn_app(backend).await;
    let url = app.url("/api/v2/api-keys/verify");
    let missing = app.client.post(&url).send().await.unwrap();
    let body = error_body(missing, 422, "validation_error").await;
    assert_eq!(body["detail"][0]["loc"], json!(["body", "key"]));
    let wrong_type = app.client.post(&url).json(&json!({"key": 12})).send().await.unwrap();
    error_body(wrong_type, 422, "validation_error").await;
    let extra = app
        .client
        .post(&url)
        .json(&json!({"key": "sk", "secret": "x"}))
        .send()
        .await
        .unwrap();
    error_body(extra, 422, "validation_error").await;
    let malformed = app
        .client
        .post(&url)
        .header("content-type", "application/json")
        .body("{")
        .send()
        .await
        .unwrap();
    error_body(malformed, 400, "malformed_json").await;
    let get = app.client.get(&url).send().await.unwrap();
    error_body(get, 405, "method_not_allowed").await;
}

async fn last_used_at_appears_within_the_flush_interval(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let app = spawn_app_with(
        test_settings(backend, &dir).merge(("verify.usage_flush_seconds", 1)),
        dir,
    )
    .await;
    let created = app.create_named("used").await;
    assert_eq!(created["last_used_at"], Value::Null);
    for _ in 0..5 {
        assert_code(&app.verify(created["private_key"].as_str().unwrap()).await, "VALID");
    }
    tokio::time::sleep(Duration::from_millis(1600)).await;
    let got: Value = app
        .call(Method::GET, &path(&created["id"], ""), None)
        .await
        .json()
        .await
        .unwrap();
    let used =
        chrono::DateTime::parse_from_rfc3339(got["last_used_at"].as_str().expect("last_used_at is set")).unwrap();
    let created_at = chrono::DateTime::parse_from_rfc3339(created["created_at"].as_str().unwrap()).unwrap();
    assert!(used >= created_at);

    // A later change to the key must not roll last_used_at back.
    let renamed: Value = app
        .call(
            Method::PATCH,
            &path(&created["id"], ""),
            Some(&json!({"name": "renamed"})),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(renamed["last_used_at"], got["last_used_at"]);
}

async fn usage_still_pending_is_written_at_graceful_shutdown(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let mut app = spawn_app_with(
        test_settings(backend, &dir).merge(("verify.usage_flush_seconds", 3600)),
        dir,
    )
    .await;
    let created = app.create_named("flushed").await;
    assert_code(&app.verify(created["private_key"].as_str().unwrap()).await, "VALID");

    app.stop().await;

    if backend != Backend::Memory {
        use keymint_application::KeyStore;
        let db = keymint_infrastructure::sql::connect(app.settings.database.url.sql().unwrap(), &Default::default())
            .await
            .unwrap();
        let repository = keymint_infrastructure::sql::SqlApiKeyRepository::new(db);
        let id = keymint_domain::KeyId::from_uuid(uuid::Uuid::parse_str(created["id"].as_str().unwrap()).unwrap());
        let key = repository
            .find(keymint_domain::OrgId::from_uuid(app.org_id), id)
            .await
            .unwrap()
            .unwrap();
        assert!(key.last_used_at().is_some(), "the shutdown flush wrote last_used_at");
    }
}

async fn a_key_sent_twice_is_refused_as_ambiguous(backend: Backend) {
    let app = spawn_app(backend).await;
    let key = app.create_named("twice").await["private_key"]
        .as_str()
        .unwrap()
        .to_owned();
    let url = app.url("/api/v2/api-keys/verify");
    for request in [
        app.client
            .post(&url)
            .header("x-api-key", &key)
            .header("x-api-key", "sk_live_other"),
        app.client
            .post(&url)
            .header("authorization", format!("Bearer {key}"))
            .header("authorization", "Bearer sk_live_other"),
        // Two presentations that differ, whichever would have won before.
        app.client
            .post(&url)
            .header("x-api-key", "junk")
            .json(&json!({"key": key})),
        app.client
            .post(&url)
            .header("x-api-key", &key)
            .header("authorization", "Bearer sk_live_other"),
        app.client
            .post(&url)
            .header("authorization", "Bearer sk_live_other")
            .json(&json!({"key": key})),
        // Bytes that are not text still present something.
        app.client
            .post(&url)
            .header(
                "x-api-key",
                reqwest::header::HeaderValue::from_bytes(b"sk_live_\xff").unwrap(),
            )
            .header("authorization", format!("Bearer {key}")),
    ] {
        error_body(request.send().await.unwrap(), 401, "ambiguous_api_key").await;
    }
    // The same key presented twice is one key.
    for request in [
        app.client
            .post(&url)
            .header("x-api-key", &key)
            .header("authorization", format!("Bearer {key}")),
        app.client
            .post(&url)
            .header("x-api-key", &key)
            .json(&json!({"key": key})),
        // A bearer JWT (a gateway's or SDK's on every call) is not a key.
        app.client
            .post(&url)
            .header("authorization", format!("Bearer {}", app.token()))
            .json(&json!({"key": key})),
    ] {
        let verdict: Value = request.send().await.unwrap().json().await.unwrap();
        assert_eq!(verdict["code"], "VALID", "{verdict}");
    }
}

for_each_backend!(
    a_key_sent_twice_is_refused_as_ambiguous,
    a_created_key_verifies_with_its_identity_and_no_jwt,
    the_key_may_come_in_x_api_key_or_a_bearer_header,
    unknown_malformed_mistyped_and_wrong_keys_are_all_not_found,
    a_revoked_key_is_refused_by_the_very_next_request,
    a_deleted_key_is_refused_by_the_very_next_request,
    an_expired_key_never_verifies_even_from_the_cache,
    a_rotated_out_key_verifies_only_within_its_grace_period,
    failures_are_limited_per_key_id_and_per_client,
    behind_a_trusted_proxy_each_forwarded_client_has_its_own_budget,
    proxies_that_speak_rfc_7239_are_read_from_forwarded_only,
    without_trusted_proxies_forwarded_headers_are_ignored,
    a_missing_key_or_bad_body_is_an_error_not_a_verdict,
    last_used_at_appears_within_the_flush_interval,
    usage_still_pending_is_written_at_graceful_shutdown,
);
