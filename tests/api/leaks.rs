//! Leak response: branded key prefixes, the patterns given to secret scanners,
//! reports from GitHub's secret scanning and from key holders.

use regex::Regex;
use reqwest::Method;
use serde_json::{json, Value};

use crate::support::{json_of, spawn_app, spawn_app_with, test_settings, Backend, TestApp};

async fn branded_app(backend_of: &TestApp, prefix: &str, accepted: &str) -> TestApp {
    let dir = tempfile::tempdir().unwrap();
    let url = backend_of
        .settings
        .database
        .url
        .sql()
        .unwrap()
        .expose_secret()
        .to_owned();
    let figment = test_settings(Backend::Sqlite, &dir)
        .merge(("database.url", url))
        .merge(("keys.prefix", prefix))
        .merge(("keys.accepted_prefixes", accepted));
    let mut app = spawn_app_with(figment, dir).await;
    app.org_id = backend_of.org_id;
    app
}

async fn create(app: &TestApp, name: &str) -> Value {
    json_of(app.create_key(&json!({ "name": name })).await, 201).await
}

fn anchored(pattern: &str) -> Regex {
    Regex::new(&format!("^(?:{pattern})$")).unwrap()
}

#[tokio::test]
async fn a_new_prefix_brands_new_keys_and_accepted_prefixes_keep_old_ones_verifying() {
    let plain = spawn_app(Backend::Sqlite).await;
    let old = create(&plain, "before").await;
    let old_key = old["private_key"].as_str().unwrap();
    assert!(old_key.starts_with("sk_live_"));

    let migrating = branded_app(&plain, "acme", "sk").await;
    let new = create(&migrating, "after").await;
    let new_key = new["private_key"].as_str().unwrap();
    assert!(new_key.starts_with("acme_sk_live_"), "{new}");
    assert!(new["public_key"].as_str().unwrap().starts_with("acme_pk_live_"));
    assert!(new["private_key_display"]
        .as_str()
        .unwrap()
        .starts_with("acme_sk_live_…"));
    assert_eq!(migrating.verify(old_key).await["code"], "VALID");
    assert_eq!(migrating.verify(new_key).await["code"], "VALID");
    // Rotation issues the new prefix and keeps the public key.
    let rotated = json_of(
        migrating
            .call(
                Method::POST,
                &format!("/api/v2/api-keys/{}/rotate", old["id"].as_str().unwrap()),
                Some(&json!({})),
            )
            .await,
        200,
    )
    .await;
    assert!(rotated["private_key"].as_str().unwrap().starts_with("acme_sk_live_"));
    assert_eq!(rotated["public_key"], old["public_key"]);
    assert_eq!(
        migrating.verify(rotated["private_key"].as_str().unwrap()).await["code"],
        "VALID"
    );

    // Once the old prefix is dropped, its keys are refused before any lookup,
    // and a deployment that never issued the brand refuses branded keys.
    let finished = branded_app(&plain, "acme", "").await;
    let other = create(&plain, "plain again").await;
    assert_eq!(
        finished.verify(other["private_key"].as_str().unwrap()).await["code"],
        "NOT_FOUND"
    );
    assert_eq!(finished.verify(new_key).await["code"], "VALID");
    assert_eq!(plain.verify(new_key).await["code"], "NOT_FOUND");
}

#[tokio::test]
async fn the_secret_patterns_match_every_key_the_deployment_issued_and_nothing_else() {
    let plain = spawn_app(Backend::Sqlite).await;
    let app = branded_app(&plain, "acme", "sk").await;
    let answer = json_of(
        app.client
            .get(app.url("/.well-known/keymint/secret-patterns"))
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    assert_eq!(answer["prefix"], "acme");
    assert_eq!(answer["accepted_prefixes"], json!(["acme", "sk"]));
    let patterns = answer["patterns"].as_array().unwrap();
    assert_eq!(patterns[0]["type"], "keymint_private_key");
    assert_eq!(patterns[0]["secret"], true);
    assert_eq!(patterns[1]["type"], "keymint_public_key");
    assert_eq!(patterns[1]["secret"], false);
    let private = anchored(patterns[0]["regex"].as_str().unwrap());
    let public = anchored(patterns[1]["regex"].as_str().unwrap());

    let mut issued = Vec::new();
    for (i, environment) in ["live", "test", "live", "test"].into_iter().enumerate() {
        let by = if i % 2 == 0 { &app } else { &plain };
        issued.push(
            json_of(
                by.create_key(&json!({"name": "k", "environment": environment})).await,
                201,
            )
            .await,
        );
    }
    let foreign = {
        let stranger = branded_app(&plain, "other", "").await;
        create(&stranger, "elsewhere").await
    };
    for key in &issued {
        let (sk, pk) = (
            key["private_key"].as_str().unwrap(),
            key["public_key"].as_str().unwrap(),
        );
        assert!(private.is_match(sk), "{sk}");
        assert!(public.is_match(pk), "{pk}");
        // Everything else a key response holds matches neither pattern.
        for field in ["id", "private_key_display", "name", "created_at", "public_key"] {
            let text = key[field].as_str().unwrap();
            assert!(!private.is_match(text), "{field}: {text}");
        }
        for field in ["id", "private_key_display", "private_key"] {
            assert!(!public.is_match(key[field].as_str().unwrap()), "{field}");
        }
    }
    for field in ["private_key", "public_key"] {
        let text = foreign[field].as_str().unwrap();
        assert!(!private.is_match(text) && !public.is_match(text), "{text}");
    }
}

async fn events_of(app: &TestApp, key_id: &str) -> Vec<Value> {
    let events = json_of(
        app.call(Method::GET, &format!("/api/v2/api-keys/{key_id}/events"), None)
            .await,
        200,
    )
    .await;
    events.as_array().unwrap().clone()
}

async fn report_own_leak(app: &TestApp, body: &Value) -> reqwest::Response {
    app.client
        .post(app.url("/api/v2/api-keys/revoke-leaked"))
        .json(body)
        .send()
        .await
        .unwrap()
}

async fn get_key(app: &TestApp, key_id: &str) -> Value {
    json_of(
        app.call(Method::GET, &format!("/api/v2/api-keys/{key_id}"), None).await,
        200,
    )
    .await
}

/// A private key of the right shape and checksum that no deployment issued.
fn stranger_key() -> String {
    keymint_domain::KeyMaterial::generate(keymint_domain::Environment::Live, &mut rand_core::OsRng)
        .private_key()
        .expose_secret()
        .to_owned()
}

async fn whoever_holds_a_leaked_key_can_kill_it_and_learns_nothing_else(backend: Backend) {
    let app = spawn_app(backend).await;
    let key = create(&app, "leaky").await;
    let (id, sk) = (key["id"].as_str().unwrap(), key["private_key"].as_str().unwrap());
    let url = "https://gist.github.com/someone/0123abcd#file-env";

    let answers = [
        json!({"key": sk, "url": url}),
        json!({"key": sk}),
        json!({"key": stranger_key()}),
        json!({"key": "not a key at all"}),
    ];
    let mut bodies = Vec::new();
    for body in &answers {
        bodies.push(json_of(report_own_leak(&app, body).await, 202).await);
    }
    assert!(
        bodies.iter().all(|body| *body == json!({"status": "received"})),
        "{bodies:?}"
    );

    assert_eq!(app.verify(sk).await["code"], "REVOKED");
    let stored = get_key(&app, id).await;
    assert_eq!(stored["is_revoked"], true);
    assert_eq!(stored["leaked_at"], stored["revoked_at"]);
    let events = events_of(&app, id).await;
    assert_eq!(events.len(), 2, "the repeated report is not audited again: {events:?}");
    assert_eq!(events[0]["action"], "leaked");
    assert_eq!(events[0]["leak"], json!({"source": "self_report", "url": url}));
    assert_eq!(events[0]["actor"], Value::Null);
    assert_eq!(events[1]["leak"], Value::Null);
}

async fn a_self_report_is_checked_like_any_body_and_spends_the_failure_budget(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let app = spawn_app_with(
        test_settings(backend, &dir).merge(("verify.max_failures_per_client", 3)),
        dir,
    )
    .await;
    let key = create(&app, "kept").await;
    for (body, field) in [
        (json!({}), "key"),
        (json!({"key": 7}), "key"),
        (json!({"key": "x", "url": "javascript:alert(1)"}), "url"),
        (json!({"key": "x", "url": "https://e.test/a\nb"}), "url"),
        (json!({"key": "x", "extra": 1}), "extra"),
    ] {
        let body = crate::support::error_body(report_own_leak(&app, &body).await, 422, "validation_error").await;
        assert_eq!(body["detail"][0]["loc"], json!(["body", field]), "{body}");
    }
    // Three well-formed guesses spend this client's budget; the fourth is refused
    // before any lookup, like a verification would be.
    for _ in 0..3 {
        assert_eq!(
            report_own_leak(&app, &json!({"key": stranger_key()})).await.status(),
            202
        );
    }
    let refused = report_own_leak(&app, &json!({"key": key["private_key"]})).await;
    crate::support::error_body(refused, 429, "rate_limited").await;
    assert_eq!(
        get_key(&app, key["id"].as_str().unwrap()).await["leaked_at"],
        Value::Null
    );
}

async fn flagging_only_records_the_leak_and_rotating_clears_it(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let app = spawn_app_with(test_settings(backend, &dir).merge(("leaks.action", "flag")), dir).await;
    let key = create(&app, "flagged").await;
    let (id, sk) = (key["id"].as_str().unwrap(), key["private_key"].as_str().unwrap());
    assert_eq!(report_own_leak(&app, &json!({"key": sk})).await.status(), 202);
    assert_eq!(
        app.verify(sk).await["code"],
        "VALID",
        "flag mode leaves the key working"
    );
    let flagged = get_key(&app, id).await;
    assert!(flagged["leaked_at"].is_string(), "{flagged}");
    assert_eq!(flagged["is_revoked"], false);
    assert_eq!(flagged["status"], "leaked", "working, but to be acted on");
    assert_eq!(events_of(&app, id).await[0]["action"], "leaked");

    let rotated = json_of(
        app.call(Method::POST, &format!("/api/v2/api-keys/{id}/rotate"), Some(&json!({})))
            .await,
        200,
    )
    .await;
    let after = get_key(&app, id).await;
    assert_eq!(
        (&after["leaked_at"], &after["status"]),
        (&Value::Null, &json!("active"))
    );
    assert_eq!(
        app.verify(rotated["private_key"].as_str().unwrap()).await["code"],
        "VALID"
    );
}

async fn a_leaked_rotated_out_key_loses_its_grace_and_the_new_one_keeps_working(backend: Backend) {
    let app = spawn_app(backend).await;
    let key = create(&app, "rotating").await;
    let (id, old) = (key["id"].as_str().unwrap(), key["private_key"].as_str().unwrap());
    let rotated = json_of(
        app.call(
            Method::POST,
            &format!("/api/v2/api-keys/{id}/rotate"),
            Some(&json!({"grace_period_seconds": 3600})),
        )
        .await,
        200,
    )
    .await;
    let new = rotated["private_key"].as_str().unwrap();
    assert_eq!(app.verify(old).await["code"], "VALID", "in its grace period");
    assert_eq!(report_own_leak(&app, &json!({"key": old})).await.status(), 202);
    assert_eq!(app.verify(old).await["code"], "NOT_FOUND");
    assert_eq!(app.verify(new).await["code"], "VALID");
    let stored = get_key(&app, id).await;
    assert_eq!(stored["is_revoked"], false);
    assert!(stored["leaked_at"].is_string());
}

crate::for_each_backend!(
    whoever_holds_a_leaked_key_can_kill_it_and_learns_nothing_else,
    a_self_report_is_checked_like_any_body_and_spends_the_failure_budget,
    flagging_only_records_the_leak_and_rotating_clears_it,
    a_leaked_rotated_out_key_loses_its_grace_and_the_new_one_keeps_working,
);
