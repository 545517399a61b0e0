use serde_json::{json, Value};

use crate::for_each_backend;
use crate::support::{spawn_app, Backend};

async fn liveness_and_readiness_answer_ok_with_storage_up(backend: Backend) {
    let app = spawn_app(backend).await;
    for (path, status) in [("/healthz", "ok"), ("/readyz", "ready"), ("/healthz/", "ok")] {
        let response = app.client.get(app.url(path)).send().await.unwrap();
        assert_eq!(response.status().as_u16(), 200, "{path}");
        assert_eq!(response.json::<Value>().await.unwrap(), json!({"status": status}));
    }
}

async fn head_answers_wherever_get_does_without_a_body(backend: Backend) {
    let app = spawn_app(backend).await;
    let key = app.create_named("head").await;
    let id = key["id"].as_str().unwrap();
    for path in [
        "/healthz".to_owned(),
        "/readyz".to_owned(),
        "/api/v2/api-keys".to_owned(),
        "/api/v1/api-keys/".to_owned(),
        format!("/api/v2/api-keys/{id}"),
        format!("/api/v2/api-keys/{id}/events"),
    ] {
        let get = app.call(reqwest::Method::GET, &path, None).await;
        let head = app.call(reqwest::Method::HEAD, &path, None).await;
        assert_eq!(head.status(), get.status(), "{path}");
        assert_eq!(
            head.headers().get("content-type"),
            get.headers().get("content-type"),
            "{path}"
        );
        assert!(head.bytes().await.unwrap().is_empty(), "{path}: HEAD has no body");
    }
    let unknown = app
        .call(
            reqwest::Method::HEAD,
            &format!("/api/v2/api-keys/{}", uuid::Uuid::new_v4()),
            None,
        )
        .await;
    assert_eq!(unknown.status().as_u16(), 404);
    let refused = app.call(reqwest::Method::PUT, "/api/v2/api-keys", None).await;
    assert_eq!(refused.headers()["allow"], "GET, HEAD, POST");
}

for_each_backend!(
    liveness_and_readiness_answer_ok_with_storage_up,
    head_answers_wherever_get_does_without_a_body,
);
