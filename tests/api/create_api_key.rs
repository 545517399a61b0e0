use std::collections::HashSet;

use chrono::{DateTime, Utc};
use futures_util::future::join_all;
use keymint_domain::{Environment, PrivateKey, PublicKey};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::for_each_backend;
use crate::support::{error_body, spawn_app, spawn_app_with, test_settings, Backend};

const SPEC_FIELDS: [&str; 19] = [
    "id",
    "org_id",
    "name",
    "public_key",
    "private_key_display",
    "created_at",
    "private_key",
    "description",
    "is_revoked",
    "revoked_at",
    "last_used_at",
    "environment",
    // Backward-compatible additions: every key response carries its expiry, its
    // permissions (`[]` for a key created by a client that knows none) and its
    // owner and metadata (null).
    "expires_at",
    "permissions",
    "owner_id",
    "meta",
    "ratelimits",
    "credits",
    "status",
];

fn rfc3339_utc(value: &Value) -> DateTime<Utc> {
    let text = value.as_str().expect("timestamps are strings");
    assert!(text.ends_with('Z'), "UTC with Z: {text}");
    DateTime::parse_from_rfc3339(text)
        .expect("RFC 3339")
        .with_timezone(&Utc)
}

async fn a_new_key_is_returned_once_with_exactly_the_spec_fields(backend: Backend) {
    let app = spawn_app(backend).await;
    let before = Utc::now();

    let response = app
        .create_key(&json!({"name": "billing-service", "description": "Charges cards"}))
        .await;

    assert_eq!(response.status().as_u16(), 201);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let body: Value = response.json().await.unwrap();
    let fields: HashSet<&str> = body.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(fields, SPEC_FIELDS.into_iter().collect());

    let id = Uuid::parse_str(body["id"].as_str().unwrap()).expect("id is a UUID");
    assert_eq!(location, format!("/api/v2/api-keys/{id}"));
    assert_eq!(body["org_id"], app.org_id.to_string());
    assert_eq!(body["name"], "billing-service");
    assert_eq!(body["description"], "Charges cards");
    assert_eq!(body["is_revoked"], false);
    assert_eq!(body["revoked_at"], Value::Null);
    assert_eq!(body["last_used_at"], Value::Null);
    assert_eq!(body["environment"], "live");
    assert_eq!(body["expires_at"], Value::Null);
    let created_at = rfc3339_utc(&body["created_at"]);
    assert!(created_at >= before - chrono::Duration::seconds(1) && created_at <= Utc::now());

    let private_key = body["private_key"].as_str().unwrap();
    let parsed = PrivateKey::parse(private_key).expect("the private key has a valid format and checksum");
    assert_eq!(parsed.environment(), Environment::Live);
    PublicKey::parse(body["public_key"].as_str().unwrap()).expect("the public key has a valid format");
    assert!(body["public_key"].as_str().unwrap().starts_with("pk_live_"));
    assert_eq!(
        body["private_key_display"],
        format!("sk_live_…{}", &private_key[private_key.len() - 4..])
    );
}

async fn absent_and_null_optionals_are_returned_as_null(backend: Backend) {
    let app = spawn_app(backend).await;
    for body in [
        json!({"name": "a"}),
        json!({"name": "b", "description": null, "environment": null}),
    ] {
        let response = app.create_key(&body).await;
        assert_eq!(response.status().as_u16(), 201);
        let created: Value = response.json().await.unwrap();
        assert_eq!(created["description"], Value::Null, "description present as null");
        assert_eq!(created["environment"], "live");
    }
}

async fn a_test_environment_key_carries_test_prefixes(backend: Backend) {
    let app = spawn_app(backend).await;
    let created: Value = app
        .create_key(&json!({"name": "staging", "environment": "test"}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(created["environment"], "test");
    assert!(created["public_key"].as_str().unwrap().starts_with("pk_test_"));
    assert!(created["private_key"].as_str().unwrap().starts_with("sk_test_"));
    assert!(created["private_key_display"]
        .as_str()
        .unwrap()
        .starts_with("sk_test_…"));
}

async fn the_default_environment_comes_from_configuration(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let app = spawn_app_with(
        test_settings(backend, &dir).merge(("keys.default_environment", "test")),
        dir,
    )
    .await;
    let created: Value = app.create_key(&json!({"name": "defaults"})).await.json().await.unwrap();
    assert_eq!(created["environment"], "test");
}

async fn both_versions_answer_with_and_without_trailing_slash_without_redirecting(backend: Backend) {
    let app = spawn_app(backend).await;
    for (path, collection) in [
        ("/api/v2/api-keys", "/api/v2/api-keys"),
        ("/api/v2/api-keys/", "/api/v2/api-keys"),
        ("/api/v1/api-keys", "/api/v1/api-keys"),
        ("/api/v1/api-keys/", "/api/v1/api-keys"),
    ] {
        let response = app
            .client
            .post(app.url(path))
            .bearer_auth(app.token())
            .json(&json!({"name": path}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 201, "{path}");
        let location = response.headers()["location"].to_str().unwrap().to_owned();
        let body: Value = response.json().await.unwrap();
        assert_eq!(
            location,
            format!("{collection}/{}", body["id"].as_str().unwrap()),
            "{path}"
        );
        assert_eq!(body.as_object().unwrap().len(), SPEC_FIELDS.len());
    }
}

async fn names_are_counted_in_characters_not_bytes(backend: Backend) {
    let app = spawn_app(backend).await;
    let hundred = "ключ".repeat(25);
    let created: Value = app
        .create_key(&json!({"name": hundred, "description": "é".repeat(255)}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(created["name"], hundred);
    assert_eq!(created["description"].as_str().unwrap().chars().count(), 255);
}

async fn fifty_concurrent_creates_all_succeed_with_distinct_keys(backend: Backend) {
    let app = spawn_app(backend).await;
    let bodies: Vec<Value> = (0..50).map(|i| json!({"name": format!("concurrent-{i}")})).collect();
    let responses = join_all(bodies.iter().map(|body| app.create_key(body))).await;
    let mut ids = HashSet::new();
    let mut private_keys = HashSet::new();
    let mut public_keys = HashSet::new();
    for response in responses {
        assert_eq!(response.status().as_u16(), 201);
        let body: Value = response.json().await.unwrap();
        ids.insert(body["id"].as_str().unwrap().to_owned());
        private_keys.insert(body["private_key"].as_str().unwrap().to_owned());
        public_keys.insert(body["public_key"].as_str().unwrap().to_owned());
    }
    assert_eq!((ids.len(), private_keys.len(), public_keys.len()), (50, 50, 50));
}

async fn other_methods_on_the_collection_are_405_with_allow(backend: Backend) {
    let app = spawn_app(backend).await;
    let response = app
        .client
        .delete(app.url("/api/v2/api-keys"))
        .bearer_auth(app.token())
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["allow"], "GET, HEAD, POST");
    error_body(response, 405, "method_not_allowed").await;
}

async fn unknown_paths_are_json_404s(backend: Backend) {
    let app = spawn_app(backend).await;
    let response = app.client.get(app.url("/api/v3/nothing")).send().await.unwrap();
    error_body(response, 404, "not_found").await;
}

async fn every_response_carries_a_request_id(backend: Backend) {
    let app = spawn_app(backend).await;
    let ok = app.create_key(&json!({"name": "traced"})).await;
    let failed = app.client.post(app.url("/api/v2/api-keys")).send().await.unwrap();
    for response in [ok, failed] {
        let id = response.headers()["x-request-id"].to_str().unwrap();
        Uuid::parse_str(id).expect("request ids are UUIDs");
    }
}

for_each_backend!(
    a_new_key_is_returned_once_with_exactly_the_spec_fields,
    absent_and_null_optionals_are_returned_as_null,
    a_test_environment_key_carries_test_prefixes,
    the_default_environment_comes_from_configuration,
    both_versions_answer_with_and_without_trailing_slash_without_redirecting,
    names_are_counted_in_characters_not_bytes,
    fifty_concurrent_creates_all_succeed_with_distinct_keys,
    other_methods_on_the_collection_are_405_with_allow,
    unknown_paths_are_json_404s,
    every_response_carries_a_request_id,
);
