//! Permissions on keys, and verifications that ask for them.

use reqwest::Method;
use serde_json::{json, Value};

use crate::for_each_backend;
use crate::support::{error_body, json_of, spawn_app, Backend, TestApp};

async fn create(app: &TestApp, body: Value) -> Value {
    json_of(app.create_key(&body).await, 201).await
}

async fn verify(app: &TestApp, body: Value) -> reqwest::Response {
    app.client
        .post(app.url("/api/v2/api-keys/verify"))
        .json(&body)
        .send()
        .await
        .unwrap()
}

fn key_path(key: &Value, suffix: &str) -> String {
    format!("/api/v2/api-keys/{}{suffix}", key["id"].as_str().unwrap())
}

async fn keys_hold_the_permissions_they_are_given_deduplicated_in_order(backend: Backend) {
    let app = spawn_app(backend).await;
    let key = create(
        &app,
        json!({"name": "billing", "permissions": ["billing.read", "admin", "billing.read", "reports:*"]}),
    )
    .await;
    let expected = json!(["billing.read", "admin", "reports:*"]);
    assert_eq!(key["permissions"], expected);
    let read = json_of(app.call(Method::GET, &key_path(&key, ""), None).await, 200).await;
    assert_eq!(read["permissions"], expected);
    let listed = json_of(app.call(Method::GET, "/api/v2/api-keys", None).await, 200).await;
    assert_eq!(listed[0]["permissions"], expected);
    let plain = create(&app, json!({"name": "plain"})).await;
    assert_eq!(
        plain["permissions"],
        json!([]),
        "a client written for the seed gets none"
    );
    let rotated = json_of(app.call(Method::POST, &key_path(&key, "/rotate"), None).await, 200).await;
    assert_eq!(rotated["permissions"], expected, "a rotation keeps them");
}

async fn each_bad_permission_is_named_by_its_index_and_nothing_is_stored(backend: Backend) {
    let app = spawn_app(backend).await;
    let response = app
        .create_key(&json!({"name": "bad", "permissions": ["ok", "", "a b", 5, "x".repeat(65)]}))
        .await;
    let body = error_body(response, 422, "validation_error").await;
    let found: Vec<(Value, &str)> = body["detail"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["loc"].clone(), e["type"].as_str().unwrap()))
        .collect();
    assert_eq!(
        found,
        [
            (json!(["body", "permissions", "1"]), "string_too_short"),
            (json!(["body", "permissions", "2"]), "string_pattern_mismatch"),
            (json!(["body", "permissions", "3"]), "string_type"),
            (json!(["body", "permissions", "4"]), "string_too_long"),
        ]
    );
    let too_many: Vec<String> = (0..51).map(|i| format!("p{i}")).collect();
    let body = error_body(
        app.create_key(&json!({"name": "many", "permissions": too_many})).await,
        422,
        "validation_error",
    )
    .await;
    assert_eq!(body["detail"][0]["loc"], json!(["body", "permissions"]));
    let body = error_body(
        app.create_key(&json!({"name": "scalar", "permissions": "admin"})).await,
        422,
        "validation_error",
    )
    .await;
    assert_eq!(body["detail"][0]["type"], "list_type");
    let listed = json_of(app.call(Method::GET, "/api/v2/api-keys", None).await, 200).await;
    assert_eq!(listed, json!([]));
}

async fn an_update_replaces_permissions_and_its_audit_event_names_the_fields(backend: Backend) {
    let app = spawn_app(backend).await;
    let key = create(&app, json!({"name": "svc", "permissions": ["a"]})).await;
    let path = key_path(&key, "");
    let updated = json_of(
        app.call(
            Method::PATCH,
            &path,
            Some(&json!({"name": "svc", "permissions": ["b", "a"]})),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(updated["permissions"], json!(["b", "a"]));
    let events = json_of(app.call(Method::GET, &key_path(&key, "/events"), None).await, 200).await;
    assert_eq!(events[0]["action"], "updated");
    assert_eq!(
        events[0]["fields"],
        json!(["permissions"]),
        "the unchanged name is not named"
    );
    assert_eq!(events[1]["fields"], json!([]));

    // The same values again change nothing and write no event.
    let same = app
        .call(Method::PATCH, &path, Some(&json!({"permissions": ["b", "a"]})))
        .await;
    assert_eq!(same.status().as_u16(), 200);
    let events = json_of(app.call(Method::GET, &key_path(&key, "/events"), None).await, 200).await;
    assert_eq!(events.as_array().unwrap().len(), 2);

    let cleared = json_of(
        app.call(
            Method::PATCH,
            &path,
            Some(&json!({"permissions": null, "description": "x"})),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(cleared["permissions"], json!([]));
    let events = json_of(app.call(Method::GET, &key_path(&key, "/events"), None).await, 200).await;
    assert_eq!(events[0]["fields"], json!(["description", "permissions"]));
}

async fn verification_answers_the_permission_query_from_storage_and_from_the_cache(backend: Backend) {
    let app = spawn_app(backend).await;
    let key = create(
        &app,
        json!({"name": "svc", "permissions": ["billing.read", "reports.*"]}),
    )
    .await;
    let secret = key["private_key"].as_str().unwrap();
    for round in ["hashed", "cached"] {
        let granted = json_of(
            verify(
                &app,
                json!({"key": secret, "permissions": "billing.read AND reports.export"}),
            )
            .await,
            200,
        )
        .await;
        assert_eq!(
            (granted["valid"].clone(), granted["code"].clone()),
            (json!(true), json!("VALID")),
            "{round}"
        );
        assert_eq!(granted["permissions"], json!(["billing.read", "reports.*"]));
        let refused = json_of(
            verify(
                &app,
                json!({"key": secret, "permissions": "billing.write OR (admin AND billing.read)"}),
            )
            .await,
            200,
        )
        .await;
        assert_eq!(refused["valid"], false, "{round}");
        assert_eq!(refused["code"], "INSUFFICIENT_PERMISSIONS");
        assert_eq!(
            refused["key_id"], key["id"],
            "the holder of the secret learns which key it is"
        );
    }
    // A grant takes effect on the next verification, cached or not.
    app.call(
        Method::PATCH,
        &key_path(&key, ""),
        Some(&json!({"permissions": ["billing.read", "reports.*", "admin"]})),
    )
    .await;
    let granted = json_of(
        verify(
            &app,
            json!({"key": secret, "permissions": "billing.write OR (admin AND billing.read)"}),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(granted["code"], "VALID");
    // No query: any valid key is valid, whatever it holds.
    let plain = json_of(verify(&app, json!({"key": secret})).await, 200).await;
    assert_eq!(plain["code"], "VALID");
}

async fn a_malformed_query_is_a_422_naming_it_and_an_unknown_key_stays_not_found(backend: Backend) {
    let app = spawn_app(backend).await;
    let key = create(&app, json!({"name": "svc", "permissions": ["a"]})).await;
    let secret = key["private_key"].as_str().unwrap();
    for query in ["a AND", "(a", "a b", "", "a/b", &"a OR ".repeat(200)] {
        let body = error_body(
            verify(&app, json!({"key": secret, "permissions": query})).await,
            422,
            "validation_error",
        )
        .await;
        assert_eq!(body["detail"][0]["loc"], json!(["body", "permissions"]), "{query:?}");
    }
    // The permission step comes after the secret: a wrong key learns nothing.
    let unknown = keymint_domain::KeyMaterial::generate(keymint_domain::Environment::Live, &mut rand_core::OsRng);
    let answer = json_of(
        verify(
            &app,
            json!({"key": unknown.private_key().expose_secret(), "permissions": "a"}),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(answer["code"], "NOT_FOUND");
    assert_eq!(answer["permissions"], Value::Null);
}

for_each_backend!(
    keys_hold_the_permissions_they_are_given_deduplicated_in_order,
    each_bad_permission_is_named_by_its_index_and_nothing_is_stored,
    an_update_replaces_permissions_and_its_audit_event_names_the_fields,
    verification_answers_the_permission_query_from_storage_and_from_the_cache,
    a_malformed_query_is_a_422_naming_it_and_an_unknown_key_stays_not_found,
);
