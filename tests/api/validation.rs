use serde_json::{json, Value};

use crate::for_each_backend;
use crate::support::{error_body, spawn_app, Backend};

/// The `(loc, type)` pairs of a 422 body.
async fn failures(response: reqwest::Response) -> Vec<(Vec<String>, String)> {
    let body = error_body(response, 422, "validation_error").await;
    body["detail"]
        .as_array()
        .expect("422 detail is a list")
        .iter()
        .map(|entry| {
            assert!(entry["msg"].as_str().is_some_and(|m| !m.is_empty()), "{entry}");
            let loc = entry["loc"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p.as_str().unwrap().to_owned())
                .collect();
            (loc, entry["type"].as_str().unwrap().to_owned())
        })
        .collect()
}

fn at(field: &str, kind: &str) -> (Vec<String>, String) {
    (vec!["body".to_owned(), field.to_owned()], kind.to_owned())
}

async fn each_invalid_field_is_a_422_naming_it(backend: Backend) {
    let app = spawn_app(backend).await;
    let cases: Vec<(Value, (Vec<String>, String))> = vec![
        (json!({}), at("name", "missing")),
        (json!({"name": ""}), at("name", "string_too_short")),
        (json!({"name": "x".repeat(101)}), at("name", "string_too_long")),
        (json!({"name": "   "}), at("name", "value_error")),
        (json!({"name": "tab\there"}), at("name", "value_error")),
        (json!({"name": null}), at("name", "string_type")),
        (json!({"name": 12}), at("name", "string_type")),
        (json!({"name": ["a"]}), at("name", "string_type")),
        (
            json!({"name": "ok", "description": "d".repeat(256)}),
            at("description", "string_too_long"),
        ),
        (
            json!({"name": "ok", "description": "nul\u{0}byte"}),
            at("description", "value_error"),
        ),
        (
            json!({"name": "ok", "description": false}),
            at("description", "string_type"),
        ),
        // Text that shows nothing, or reads as something else, or repaints a terminal.
        (json!({"name": "\u{200B}\u{200D}"}), at("name", "value_error")),
        (json!({"name": "\u{FEFF}"}), at("name", "value_error")),
        (json!({"name": "invoice\u{202E}fdp.exe"}), at("name", "value_error")),
        (json!({"name": "\u{2066}isolated\u{2069}"}), at("name", "value_error")),
        // The second hardening round's invisible names and inner separators.
        (json!({"name": "\u{2800}"}), at("name", "value_error")),
        (json!({"name": "\u{0301}"}), at("name", "value_error")),
        (json!({"name": "\u{13430}"}), at("name", "value_error")),
        (json!({"name": "\u{110BD}"}), at("name", "value_error")),
        (json!({"name": "\u{0600}"}), at("name", "value_error")),
        (json!({"name": "a\u{2028}b"}), at("name", "value_error")),
        (json!({"name": "a\u{206A}b"}), at("name", "value_error")),
        (
            json!({"name": "ok", "owner_id": "\u{2800}"}),
            at("owner_id", "value_error"),
        ),
        (
            json!({"name": "ok", "owner_id": "x\u{FFF9}y"}),
            at("owner_id", "value_error"),
        ),
        (
            json!({"name": "ok", "description": "one\u{2029}two"}),
            at("description", "value_error"),
        ),
        (
            json!({"name": "ok", "description": "\u{1b}[2Jcleared"}),
            at("description", "value_error"),
        ),
        (
            json!({"name": "ok", "description": "carriage\rreturn"}),
            at("description", "value_error"),
        ),
        (
            json!({"name": "ok", "description": "see \u{2067}flipped"}),
            at("description", "value_error"),
        ),
        (
            json!({"name": "ok", "environment": "production"}),
            at("environment", "literal_error"),
        ),
        (
            json!({"name": "ok", "environment": "LIVE"}),
            at("environment", "literal_error"),
        ),
        (
            json!({"name": "ok", "environment": 1}),
            at("environment", "string_type"),
        ),
        (
            json!({"name": "ok", "descripton": "typo"}),
            at("descripton", "extra_forbidden"),
        ),
        (
            json!({"name": "ok", "private_key": "sk_live_mine"}),
            at("private_key", "extra_forbidden"),
        ),
    ];
    for (body, expected) in cases {
        assert_eq!(
            failures(app.create_key(&body).await).await,
            vec![expected],
            "body: {body}"
        );
    }
}

async fn all_failing_fields_are_reported_together(backend: Backend) {
    let app = spawn_app(backend).await;
    let found = failures(
        app.create_key(&json!({"description": 3, "environment": "x", "extra": true}))
            .await,
    )
    .await;
    assert_eq!(
        found,
        vec![
            at("name", "missing"),
            at("description", "string_type"),
            at("environment", "literal_error"),
            at("extra", "extra_forbidden"),
        ]
    );
}

async fn a_body_that_is_not_an_object_is_a_422_on_the_body(backend: Backend) {
    let app = spawn_app(backend).await;
    for body in [json!([]), json!("name"), json!(null), json!(1)] {
        let found = failures(app.create_key(&body).await).await;
        assert_eq!(
            found,
            vec![(vec!["body".to_owned()], "model_attributes_type".to_owned())],
            "{body}"
        );
    }
}

async fn malformed_json_is_a_400(backend: Backend) {
    let app = spawn_app(backend).await;
    for raw in ["{", "{\"name\": }", "", "name=ok", "{\"name\": \"a\"} trailing"] {
        let response = app.post_raw("/api/v2/api-keys", Some("application/json"), raw).await;
        let body = error_body(response, 400, "malformed_json").await;
        assert!(
            body["detail"].as_str().unwrap().starts_with("Malformed JSON body"),
            "{body}"
        );
    }
}

async fn a_body_not_declared_as_json_is_a_415(backend: Backend) {
    let app = spawn_app(backend).await;
    for content_type in [
        None,
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
        Some("multipart/form-data"),
    ] {
        let response = app.post_raw("/api/v2/api-keys", content_type, r#"{"name":"ok"}"#).await;
        error_body(response, 415, "unsupported_media_type").await;
    }
    let charset = app
        .post_raw(
            "/api/v2/api-keys",
            Some("application/json; charset=utf-8"),
            r#"{"name":"ok"}"#,
        )
        .await;
    assert_eq!(charset.status().as_u16(), 201, "a charset parameter is fine");
}

async fn a_body_over_16_kib_is_a_413_whether_declared_or_streamed(backend: Backend) {
    let app = spawn_app(backend).await;
    let big = format!(r#"{{"name":"ok","description":"{}"}}"#, "x".repeat(16 * 1024));
    let declared = app
        .post_raw("/api/v2/api-keys", Some("application/json"), big.clone())
        .await;
    error_body(declared, 413, "payload_too_large").await;

    let chunks: Vec<Result<String, std::io::Error>> = big
        .as_bytes()
        .chunks(1024)
        .map(|c| Ok(String::from_utf8_lossy(c).into_owned()))
        .collect();
    let streamed = reqwest::Body::wrap_stream(futures_util::stream::iter(chunks));
    let response = app
        .post_raw("/api/v2/api-keys", Some("application/json"), streamed)
        .await;
    error_body(response, 413, "payload_too_large").await;

    let just_under = format!(r#"{{"name":"ok","x":"{}"}}"#, "x".repeat(16 * 1024 - 30));
    assert!(just_under.len() <= 16 * 1024);
    let response = app
        .post_raw("/api/v2/api-keys", Some("application/json"), just_under)
        .await;
    assert_eq!(
        response.status().as_u16(),
        422,
        "under the limit the body is read and validated"
    );
}

async fn a_key_named_twice_is_a_400_naming_it(backend: Backend) {
    let app = spawn_app(backend).await;
    for body in [
        r#"{"name": "a", "environment": "test", "environment": "live"}"#,
        r#"{"name": "a", "name": "b"}"#,
    ] {
        let response = app.post_raw("/api/v2/api-keys", Some("application/json"), body).await;
        let error = error_body(response, 400, "malformed_json").await;
        assert!(
            error["detail"].as_str().unwrap().contains("duplicate key"),
            "{body}: {error}"
        );
    }
    let listed: Value = app
        .call(reqwest::Method::GET, "/api/v2/api-keys", None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(listed, json!([]), "nothing was created");
}

for_each_backend!(
    each_invalid_field_is_a_422_naming_it,
    all_failing_fields_are_reported_together,
    a_body_that_is_not_an_object_is_a_422_on_the_body,
    malformed_json_is_a_400,
    a_body_not_declared_as_json_is_a_415,
    a_body_over_16_kib_is_a_413_whether_declared_or_streamed,
    a_key_named_twice_is_a_400_naming_it,
);
