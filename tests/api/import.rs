//! `POST /api/v2/api-keys/import`: keys from another key system, with their
//! own private keys, on every storage adapter.

use keymint_domain::{Environment, KeyDigest, KeyMaterial};
use reqwest::Method;
use serde_json::{json, Value};

use crate::for_each_backend;
use crate::support::{json_of, spawn_app, Backend, TestApp};

const FOREIGN: &str = "sk_live_51HqLyjWDarjtT1zdp7dcXnKpV5kvgGkjrwQx";
const SLACK_LIKE: &str = "xoxb-123456789012-abcdefghijklmnopqrstuvwx";

async fn import(app: &TestApp, keys: Value) -> reqwest::Response {
    app.call(Method::POST, "/api/v2/api-keys/import", Some(&json!({ "keys": keys })))
        .await
}

async fn import_ok(app: &TestApp, keys: Value) -> Value {
    json_of(import(app, keys).await, 200).await
}

async fn every_item_shape_imports_and_verifies_like_any_key(backend: Backend) {
    let app = spawn_app(backend).await;
    let keymint = KeyMaterial::generate(Environment::Test, &mut rand_core::OsRng);
    let keymint_key = keymint.private_key().expose_secret().to_owned();
    let hashed_hex = "legacy-hex-0123456789abcdefghij";
    let hashed_b64 = "legacy-b64-0123456789abcdefghij";
    let b64 = {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(KeyDigest::of(hashed_b64).as_bytes())
    };
    let answer = import_ok(
        &app,
        json!([
            {"name": "stripe-like", "key": FOREIGN, "permissions": ["documents.read"], "meta": {"plan": "pro"}},
            {"name": "hex", "environment": "test", "hash": {"algorithm": "sha256", "value": KeyDigest::of(hashed_hex).to_hex()}},
            {"name": "base64", "hash": {"algorithm": "sha256", "value": b64}, "credits": {"remaining": 2}},
            {"name": "from another keymint", "key": keymint_key},
        ]),
    )
    .await;
    let text = answer.to_string();
    assert!(
        !text.contains(FOREIGN) && !text.contains(&keymint_key),
        "no plaintext in the answer"
    );
    assert_eq!(answer["failed"], json!([]));
    let ids: Vec<String> = answer["imported"]
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
        .map(|(i, item)| {
            assert_eq!(item["index"], i);
            item["id"].as_str().unwrap().to_owned()
        })
        .collect();

    for (presented, id) in [
        (FOREIGN, &ids[0]),
        (hashed_hex, &ids[1]),
        (hashed_b64, &ids[2]),
        (keymint_key.as_str(), &ids[3]),
    ] {
        let verdict = app.verify(presented).await;
        assert_eq!(
            (verdict["code"].as_str(), verdict["key_id"].as_str()),
            (Some("VALID"), Some(id.as_str()))
        );
        // The header presentation and the extractor path find it the same way.
        let by_header = app
            .client
            .post(app.url("/api/v2/api-keys/verify"))
            .header("x-api-key", presented)
            .send()
            .await
            .unwrap();
        assert_eq!(json_of(by_header, 200).await["key_id"], id.as_str());
    }
    assert_eq!(app.verify(FOREIGN).await["meta"], json!({"plan": "pro"}));
    assert_eq!(app.verify(hashed_hex).await["environment"], "test");
    assert_eq!(
        app.verify(&keymint_key).await["environment"],
        "test",
        "a Keymint key keeps its environment"
    );

    let shown = json_of(
        app.call(Method::GET, &format!("/api/v2/api-keys/{}", ids[0]), None)
            .await,
        200,
    )
    .await;
    assert_eq!(shown["private_key_display"], "sk_live_…rwQx");
    assert!(!shown.to_string().contains(&FOREIGN[8..]));
    let hashed = json_of(
        app.call(Method::GET, &format!("/api/v2/api-keys/{}", ids[1]), None)
            .await,
        200,
    )
    .await;
    assert_eq!(
        hashed["private_key_display"],
        format!("sha256:{}…", &KeyDigest::of(hashed_hex).to_hex()[..4])
    );
    let events = json_of(
        app.call(Method::GET, &format!("/api/v2/api-keys/{}/events", ids[0]), None)
            .await,
        200,
    )
    .await;
    assert_eq!(events[0]["action"], "imported");

    // Rotation issues a Keymint key; the imported one keeps its grace period.
    let rotated = json_of(
        app.call(
            Method::POST,
            &format!("/api/v2/api-keys/{}/rotate", ids[0]),
            Some(&json!({"grace_period_seconds": 60})),
        )
        .await,
        200,
    )
    .await;
    let new_key = rotated["private_key"].as_str().unwrap();
    assert!(new_key.starts_with("sk_live_") && new_key.len() == 74, "{new_key}");
    assert_eq!(app.verify(new_key).await["key_id"], ids[0].as_str());
    assert_eq!(app.verify(FOREIGN).await["code"], "VALID");

    let revoked = app
        .call(Method::PUT, &format!("/api/v2/api-keys/{}/revoke", ids[1]), None)
        .await;
    assert_eq!(revoked.status().as_u16(), 200);
    assert_eq!(app.verify(hashed_hex).await["code"], "REVOKED");
    let deleted = app
        .call(Method::DELETE, &format!("/api/v2/api-keys/{}", ids[2]), None)
        .await;
    assert_eq!(deleted.status().as_u16(), 204);
    assert_eq!(app.verify(hashed_b64).await["code"], "NOT_FOUND");
}

/// A typo of an imported key, or another service's key, is answered from the
/// digest filter: no read.
async fn a_foreign_key_matching_nothing_is_answered_without_a_read(backend: Backend) {
    let app = spawn_app(backend).await;
    import_ok(&app, json!([{"name": "slack-like", "key": SLACK_LIKE}])).await;
    for presented in [
        &SLACK_LIKE.replace('x', "y")[..],
        "ghp_16C7e42F292c6912E7710c838347Ae178B4a",
    ] {
        assert_eq!(app.verify(presented).await["code"], "NOT_FOUND");
    }
    let metrics = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("keymint_key_digest_lookups_total{result=\"filtered\"} 2"),
        "{metrics}"
    );
    assert!(
        metrics.contains("keymint_key_digest_lookups_total{result=\"read\"} 0"),
        "{metrics}"
    );
    assert!(metrics.contains("keymint_lookup_digests 1"), "{metrics}");
}

fn failure(answer: &Value, index: usize) -> &Value {
    answer["failed"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["index"] == index)
        .unwrap_or_else(|| panic!("item {index} did not fail: {answer}"))
}

async fn every_refusal_names_its_item_and_field_and_spares_the_others(backend: Backend) {
    let app = spawn_app(backend).await;
    let live = KeyMaterial::generate(Environment::Live, &mut rand_core::OsRng);
    let live_key = live.private_key().expose_secret().to_owned();
    let short = "too-short-1234567";
    let items = json!([
        {"name": "short", "key": short},
        {"name": "space", "key": "has a space in it, twenty+"},
        {"name": "unicode", "key": "ключ-ключ-ключ-ключ-ключ"},
        {"name": "both", "key": FOREIGN, "hash": {"algorithm": "sha256", "value": KeyDigest::of("x").to_hex()}},
        {"name": "neither"},
        {"name": "md5", "hash": {"algorithm": "md5", "value": KeyDigest::of("x").to_hex()}},
        {"name": "bad digest", "hash": {"algorithm": "sha256", "value": "abc"}},
        {"name": "", "key": "valid-but-bad-name-aaaaaaaa"},
        {"name": "env", "environment": "test", "key": live_key},
        {"name": "past", "key": "legacy-expired-aaaaaaaaaaaa", "expires_at": "2001-01-01T00:00:00Z"},
        "not an object",
        {"name": "extra", "key": "legacy-extra-aaaaaaaaaaaaa", "colour": "blue"},
        {"name": "fine", "key": SLACK_LIKE},
    ]);
    let answer = import_ok(&app, items).await;
    let text = answer.to_string();
    for secret in [short, FOREIGN, SLACK_LIKE, live_key.as_str()] {
        assert!(!text.contains(secret), "{secret} echoed: {text}");
    }
    assert_eq!(answer["imported"].as_array().unwrap().len(), 1);
    assert_eq!(answer["imported"][0]["index"], 12);
    let expected: [(usize, &[&str], &str); 12] = [
        (0, &["key"], "string_too_short"),
        (1, &["key"], "string_pattern_mismatch"),
        (2, &["key"], "string_pattern_mismatch"),
        (3, &[], "value_error"),
        (4, &["key"], "missing"),
        (5, &["hash", "algorithm"], "literal_error"),
        (6, &["hash", "value"], "value_error"),
        (7, &["name"], "string_too_short"),
        (8, &["environment"], "value_error"),
        (9, &["expires_at"], "value_error"),
        (10, &[], "model_attributes_type"),
        (11, &["colour"], "extra_forbidden"),
    ];
    for (index, field, kind) in expected {
        let detail = &failure(&answer, index)["detail"][0];
        let mut loc = vec![json!("body"), json!("keys"), json!(index.to_string())];
        loc.extend(field.iter().map(|f| json!(f)));
        assert_eq!(
            (&detail["loc"], &detail["type"]),
            (&json!(loc), &json!(kind)),
            "item {index}: {detail}"
        );
        assert!(detail["msg"].as_str().is_some_and(|m| !m.is_empty()));
    }
    assert_eq!(app.verify(SLACK_LIKE).await["code"], "VALID");
}

async fn a_key_already_present_anywhere_fails_without_saying_where(backend: Backend) {
    let app = spawn_app(backend).await;
    let other_org = uuid::Uuid::new_v4();
    let created = app.create_named("issued here").await;
    let issued = created["private_key"].as_str().unwrap().to_owned();
    let answer = import_ok(
        &app,
        json!([{"name": "first", "key": SLACK_LIKE}, {"name": "twice in one batch", "key": SLACK_LIKE}]),
    )
    .await;
    assert_eq!(answer["imported"].as_array().unwrap().len(), 1);
    let twice = failure(&answer, 1)["detail"][0].clone();
    assert_eq!(twice["type"], "duplicate_key");

    let elsewhere = json_of(
        app.call_as(
            other_org,
            Method::POST,
            "/api/v2/api-keys/import",
            Some(&json!({"keys": [
                {"name": "theirs", "key": SLACK_LIKE},
                {"name": "by digest", "hash": {"algorithm": "sha256", "value": KeyDigest::of(SLACK_LIKE).to_hex()}},
                {"name": "an issued key", "key": issued},
            ]})),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(elsewhere["imported"], json!([]));
    for index in 0..3 {
        let detail = &failure(&elsewhere, index)["detail"][0];
        assert_eq!(
            detail,
            &json!({"loc": ["body", "keys", index.to_string(), "key"], "msg": twice["msg"], "type": "duplicate_key"})
        );
    }
    assert!(!elsewhere.to_string().contains(&app.org_id.to_string()));
    assert_eq!(app.verify(SLACK_LIKE).await["key_id"], answer["imported"][0]["id"]);
}

async fn the_batch_holds_one_to_a_thousand_keys_within_the_active_limit(backend: Backend) {
    let app = spawn_app(backend).await;
    let item = |i: usize| json!({"name": format!("bulk {i}"), "key": format!("legacy_bulk_key_{i:05}_aaaaaaaa")});
    for (keys, kind) in [
        (json!([]), "too_short"),
        (Value::Array((0..1001).map(item).collect()), "too_long"),
    ] {
        let response = import(&app, keys).await;
        let body = json_of(response, 422).await;
        assert_eq!(body["detail"][0]["loc"], json!(["body", "keys"]));
        assert_eq!(body["detail"][0]["type"], kind);
    }
    let missing = json_of(
        app.call(Method::POST, "/api/v2/api-keys/import", Some(&json!({})))
            .await,
        422,
    )
    .await;
    assert_eq!(missing["detail"][0]["type"], "missing");

    let answer = import_ok(&app, Value::Array((0..1000).map(item).collect())).await;
    assert_eq!(answer["imported"].as_array().unwrap().len(), 1000);
    assert_eq!(app.verify("legacy_bulk_key_00999_aaaaaaaa").await["code"], "VALID");
    // The organisation now holds the most active keys it may (1 000).
    let over = import_ok(&app, json!([item(1000)])).await;
    assert_eq!(failure(&over, 0)["detail"][0]["type"], "limit_reached");
}

async fn importing_needs_a_token_and_is_mirrored_under_v1(backend: Backend) {
    let app = spawn_app(backend).await;
    let anonymous = app
        .client
        .post(app.url("/api/v1/api-keys/import"))
        .json(&json!({"keys": [{"name": "x", "key": SLACK_LIKE}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status().as_u16(), 401);
    let v1 = app
        .call(
            Method::POST,
            "/api/v1/api-keys/import",
            Some(&json!({"keys": [{"name": "x", "key": SLACK_LIKE}]})),
        )
        .await;
    assert_eq!(json_of(v1, 200).await["imported"].as_array().unwrap().len(), 1);
    let wrong_method = app.call(Method::GET, "/api/v2/api-keys/import", None).await;
    assert_eq!(wrong_method.status().as_u16(), 405);
    assert_eq!(app.verify(SLACK_LIKE).await["code"], "VALID");
}

for_each_backend!(
    every_item_shape_imports_and_verifies_like_any_key,
    a_foreign_key_matching_nothing_is_answered_without_a_read,
    every_refusal_names_its_item_and_field_and_spares_the_others,
    a_key_already_present_anywhere_fails_without_saying_where,
    the_batch_holds_one_to_a_thousand_keys_within_the_active_limit,
    importing_needs_a_token_and_is_mirrored_under_v1,
);
