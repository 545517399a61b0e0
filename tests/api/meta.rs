//! Customers' own metadata on keys: returned as given, bounded, never audited.

use reqwest::Method;
use serde_json::{json, Value};

use crate::for_each_backend;
use crate::support::{error_body, json_of, spawn_app, Backend};

/// The text of `field` in a response body as sent, to check member order.
fn raw_field<'a>(body: &'a str, field: &str) -> &'a str {
    let start = body.find(&format!("\"{field}\":")).unwrap() + field.len() + 3;
    let value: &serde_json::value::RawValue = serde_json::Deserializer::from_str(&body[start..])
        .into_iter::<&serde_json::value::RawValue>()
        .next()
        .unwrap()
        .unwrap();
    &body[start..start + value.get().len()]
}

async fn metadata_is_returned_as_given_everywhere_the_key_is(backend: Backend) {
    let app = spawn_app(backend).await;
    let meta = r#"{"plan":"pro","z":1,"a":{"seats":[3,"x",null],"trial":false},"ü":"\u0000é"}"#;
    let body = format!(r#"{{"name":"m","meta":{meta}}}"#);
    let created = app.post_raw("/api/v2/api-keys", Some("application/json"), body).await;
    assert_eq!(created.status().as_u16(), 201);
    let text = created.text().await.unwrap();
    assert_eq!(raw_field(&text, "meta"), meta, "member order and escapes kept");
    let key: Value = serde_json::from_str(&text).unwrap();
    let path = format!("/api/v2/api-keys/{}", key["id"].as_str().unwrap());

    let got = app.call(Method::GET, &path, None).await.text().await.unwrap();
    assert_eq!(raw_field(&got, "meta"), meta);
    let listed = app
        .call(Method::GET, "/api/v2/api-keys", None)
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(raw_field(&listed, "meta"), meta);
    let verdict = app
        .client
        .post(app.url("/api/v2/api-keys/verify"))
        .json(&json!({"key": key["private_key"]}))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(
        raw_field(&verdict, "meta"),
        meta,
        "the service gets it with the verdict"
    );

    // Replaced, then cleared; the audit trail names the field, never its value.
    let replaced = json_of(
        app.call(Method::PATCH, &path, Some(&json!({"meta": {"plan": "enterprise"}})))
            .await,
        200,
    )
    .await;
    assert_eq!(replaced["meta"], json!({"plan": "enterprise"}));
    let cleared = json_of(app.call(Method::PATCH, &path, Some(&json!({"meta": null}))).await, 200).await;
    assert_eq!(cleared["meta"], Value::Null);
    let events = app
        .call(Method::GET, &format!("{path}/events"), None)
        .await
        .text()
        .await
        .unwrap();
    assert!(!events.contains("enterprise") && !events.contains("pro"), "{events}");
    let events: Value = serde_json::from_str(&events).unwrap();
    assert_eq!(events[0]["fields"], json!(["meta"]));
    assert_eq!(events[1]["fields"], json!(["meta"]));
}

async fn metadata_is_an_object_of_at_most_4_kib(backend: Backend) {
    let app = spawn_app(backend).await;
    // {"k":"…"} is 8 bytes around the string: 4 096 fits, 4 097 does not.
    let fits = json!({"k": "x".repeat(4096 - 8)});
    let key = json_of(app.create_key(&json!({"name": "big", "meta": fits})).await, 201).await;
    assert_eq!(key["meta"], fits);
    let over = json!({"k": "x".repeat(4096 - 7)});
    let body = error_body(
        app.create_key(&json!({"name": "bigger", "meta": over})).await,
        422,
        "validation_error",
    )
    .await;
    assert_eq!(body["detail"][0]["loc"], json!(["body", "meta"]));
    assert_eq!(body["detail"][0]["type"], "too_long");
    for not_an_object in [json!([1]), json!("{}"), json!(3)] {
        let body = error_body(
            app.create_key(&json!({"name": "odd", "meta": not_an_object})).await,
            422,
            "validation_error",
        )
        .await;
        assert_eq!(body["detail"][0]["type"], "dict_type", "{not_an_object}");
    }
    let listed = json_of(app.call(Method::GET, "/api/v2/api-keys", None).await, 200).await;
    assert_eq!(listed.as_array().unwrap().len(), 1, "nothing refused was stored");
}

for_each_backend!(
    metadata_is_returned_as_given_everywhere_the_key_is,
    metadata_is_an_object_of_at_most_4_kib,
);
