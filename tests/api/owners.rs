//! Owners of keys, in the caller's own terms, and lists filtered by them.

use reqwest::Method;
use serde_json::{json, Value};

use crate::for_each_backend;
use crate::support::{error_body, json_of, spawn_app, Backend, TestApp};

async fn create(app: &TestApp, body: Value) -> Value {
    json_of(app.create_key(&body).await, 201).await
}

fn names(list: &Value) -> Vec<&str> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|k| k["name"].as_str().unwrap())
        .collect()
}

async fn keys_name_their_owner_and_lists_filter_by_it_exactly(backend: Backend) {
    let app = spawn_app(backend).await;
    let owner = "cus_Ä 42/x";
    for (name, owner_id) in [
        ("a", Some(owner)),
        ("b", None),
        ("c", Some(owner)),
        ("d", Some("cus_Ä 4")),
    ] {
        let key = create(&app, json!({"name": name, "owner_id": owner_id})).await;
        assert_eq!(key["owner_id"], json!(owner_id));
    }
    let url =
        reqwest::Url::parse_with_params(&app.url("/api/v2/api-keys"), [("owner_id", owner), ("limit", "1")]).unwrap();
    let first = app
        .call(Method::GET, &format!("{}?{}", url.path(), url.query().unwrap()), None)
        .await;
    let link = first.headers()["link"].to_str().unwrap().to_owned();
    let first = json_of(first, 200).await;
    assert_eq!(names(&first), ["c"]);
    assert_eq!(first[0]["owner_id"], owner);
    // The next page keeps the filter.
    let next = link.trim_start_matches('<').split('>').next().unwrap().to_owned();
    let second = json_of(app.call(Method::GET, &next, None).await, 200).await;
    assert_eq!(names(&second), ["a"]);
    let all = json_of(app.call(Method::GET, "/api/v2/api-keys", None).await, 200).await;
    assert_eq!(names(&all), ["d", "c", "b", "a"]);

    let body = error_body(
        app.call(Method::GET, "/api/v2/api-keys?owner_id=", None).await,
        422,
        "validation_error",
    )
    .await;
    assert_eq!(body["detail"][0]["loc"], json!(["query", "owner_id"]));
}

async fn owner_rules_are_checked_and_an_update_changes_or_clears_it(backend: Backend) {
    let app = spawn_app(backend).await;
    for (owner_id, kind) in [
        (json!(""), "string_too_short"),
        (json!("x".repeat(256)), "string_too_long"),
        (json!("a\u{0}b"), "value_error"),
        (json!("\u{200B}"), "value_error"),
        (json!(7), "string_type"),
    ] {
        let body = error_body(
            app.create_key(&json!({"name": "k", "owner_id": owner_id})).await,
            422,
            "validation_error",
        )
        .await;
        assert_eq!(body["detail"][0]["loc"], json!(["body", "owner_id"]), "{owner_id}");
        assert_eq!(body["detail"][0]["type"], kind, "{owner_id}");
    }
    let key = create(&app, json!({"name": "k", "owner_id": "user_1"})).await;
    let path = format!("/api/v2/api-keys/{}", key["id"].as_str().unwrap());
    let moved = json_of(
        app.call(Method::PATCH, &path, Some(&json!({"owner_id": "user_2"})))
            .await,
        200,
    )
    .await;
    assert_eq!(moved["owner_id"], "user_2");
    let cleared = json_of(
        app.call(Method::PATCH, &path, Some(&json!({"owner_id": null}))).await,
        200,
    )
    .await;
    assert_eq!(cleared["owner_id"], Value::Null);
    let events = json_of(app.call(Method::GET, &format!("{path}/events"), None).await, 200).await;
    assert_eq!(events[0]["fields"], json!(["owner_id"]));
    assert_eq!(events[1]["fields"], json!(["owner_id"]));

    // A verification names the owner, so the service knows whose call it is.
    let owned = create(&app, json!({"name": "v", "owner_id": "svc-billing"})).await;
    let verdict = json_of(
        app.client
            .post(app.url("/api/v2/api-keys/verify"))
            .json(&json!({"key": owned["private_key"]}))
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    assert_eq!(verdict["owner_id"], "svc-billing");
}

for_each_backend!(
    keys_name_their_owner_and_lists_filter_by_it_exactly,
    owner_rules_are_checked_and_an_update_changes_or_clears_it,
);
