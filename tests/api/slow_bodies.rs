//! Bodies that arrive too slowly are cut off with a 408 and a closed
//! connection, while the service keeps answering everyone else; a route whose
//! body is optional treats an empty one as none.

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::for_each_backend;
use crate::support::{error_body, spawn_app, spawn_app_with, test_settings, Backend, TestApp};

/// Opens a connection and sends the head of a JSON POST promising `length`
/// bytes, then `first` of them.
async fn start_post(app: &TestApp, path: &str, length: usize, first: &[u8]) -> TcpStream {
    let address = app.address.trim_start_matches("http://").to_owned();
    let mut stream = TcpStream::connect(address).await.unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: keymint\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nContent-Length: {length}\r\n\r\n",
        app.token()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(first).await.unwrap();
    stream
}

/// Everything the server sends until it closes the connection (or 10 s pass).
async fn read_to_close(stream: &mut TcpStream) -> String {
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer)).await;
    assert!(read.is_ok(), "the server closed the connection");
    String::from_utf8_lossy(&answer).into_owned()
}

async fn a_body_that_trickles_is_cut_off_with_a_408(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let app = spawn_app_with(
        test_settings(backend, &dir).merge(("server.body_timeout_seconds", 1)),
        dir,
    )
    .await;
    let started = Instant::now();
    let mut slow = start_post(&app, "/api/v2/api-keys", 100, b"{").await;
    // One byte every 200 ms: each arrives well within any per-read timeout, but
    // the whole body never does.
    let trickle = async {
        for _ in 0..20 {
            tokio::time::sleep(Duration::from_millis(200)).await;
            if slow.write_all(b" ").await.is_err() {
                break;
            }
        }
    };
    // Meanwhile the service answers everyone else.
    let others = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        app.create_named("while-one-trickles").await
    };
    let ((), created) = tokio::join!(trickle, others);
    assert_eq!(created["name"], "while-one-trickles");
    let answer = read_to_close(&mut slow).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains(r#""code":"request_timeout""#), "{answer}");
    assert!(started.elapsed() < Duration::from_secs(8), "{:?}", started.elapsed());
    let listed: Value = app
        .call(Method::GET, "/api/v2/api-keys", None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        listed.as_array().unwrap().len(),
        1,
        "the cut-off request created nothing"
    );
}

async fn many_stalled_bodies_are_all_released(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let app = spawn_app_with(
        test_settings(backend, &dir).merge(("server.body_timeout_seconds", 1)),
        dir,
    )
    .await;
    let mut stalled = Vec::new();
    for _ in 0..50 {
        stalled.push(start_post(&app, "/api/v2/api-keys/verify", 64, b"{\"key\":").await);
    }
    for stream in &mut stalled {
        let answer = read_to_close(stream).await;
        assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    }
    let ready = app.client.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status().as_u16(), 200);
}

async fn a_rotation_with_no_body_uses_no_grace_period_whatever_its_content_type(backend: Backend) {
    let app = spawn_app(backend).await;
    let created = app.create_named("rotate-me").await;
    let path = format!("/api/v2/api-keys/{}/rotate", created["id"].as_str().unwrap());
    for content_type in [Some("application/json"), Some("text/plain"), None] {
        let mut request = app.client.post(app.url(&path)).bearer_auth(app.token());
        if let Some(content_type) = content_type {
            request = request.header("content-type", content_type);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status().as_u16(), 200, "{content_type:?}");
    }
    // JSON `null`, which the document allows for an optional body, means the same.
    let null = app
        .client
        .post(app.url(&path))
        .bearer_auth(app.token())
        .header("content-type", "application/json")
        .body("null")
        .send()
        .await
        .unwrap();
    assert_eq!(null.status().as_u16(), 200);
    let verified = app
        .client
        .post(app.url("/api/v2/api-keys/verify"))
        .header(
            "x-api-key",
            null.json::<Value>().await.unwrap()["private_key"].as_str().unwrap(),
        )
        .header("content-type", "application/json")
        .body("null")
        .send()
        .await
        .unwrap();
    assert_eq!(
        verified.json::<Value>().await.unwrap()["code"],
        "VALID",
        "a null body defers to the header"
    );
    // A body that is there but not JSON is still refused.
    let not_json = app
        .client
        .post(app.url(&path))
        .bearer_auth(app.token())
        .header("content-type", "text/plain")
        .body("grace=60")
        .send()
        .await
        .unwrap();
    error_body(not_json, 415, "unsupported_media_type").await;
    let events: Value = app
        .call(
            Method::GET,
            &format!("/api/v2/api-keys/{}/events", created["id"].as_str().unwrap()),
            None,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        events.as_array().unwrap().len(),
        5,
        "created and rotated four times: {events}"
    );
    assert_eq!(events[0]["action"], json!("rotated"));
}

for_each_backend!(
    a_body_that_trickles_is_cut_off_with_a_408,
    many_stalled_bodies_are_all_released,
    a_rotation_with_no_body_uses_no_grace_period_whatever_its_content_type,
    stalled_bodies_hold_at_most_the_body_memory_budget,
);

/// Bodies being received share a memory budget: stalled uploads that fill it
/// make the next body a 503 with Retry-After before its bytes are buffered,
/// whatever the number of connections, and their room comes back when they go.
async fn stalled_bodies_hold_at_most_the_body_memory_budget(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let app = spawn_app_with(
        test_settings(backend, &dir)
            .merge(("server.body_memory_bytes", 2 * 16384))
            .merge(("server.import_body_limit_bytes", 16384)),
        dir,
    )
    .await;
    // Unauthenticated routes too: verify takes no token.
    // Two uploads send all but the last byte of their 16 KiB and stall: they
    // hold the whole budget (a promise alone would hold nothing).
    let mut stalled = Vec::new();
    let almost = [b' '; 16383];
    for _ in 0..2 {
        stalled.push(start_post(&app, "/api/v2/api-keys/verify", 16384, &almost).await);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut refused = start_post(&app, "/api/v2/api-keys/verify", 16384, &[b' '; 4096]).await;
    let mut answer = vec![0; 4096];
    let read = tokio::time::timeout(Duration::from_secs(5), refused.read(&mut answer))
        .await
        .expect("answered before the body arrived")
        .unwrap();
    let answer = String::from_utf8_lossy(&answer[..read]).into_owned();
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(answer.to_ascii_lowercase().contains("retry-after: "), "{answer}");
    assert!(answer.contains(r#""code":"server_busy""#), "{answer}");
    drop(stalled);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let created = app.create_named("after the stall").await;
    assert_eq!(
        app.verify(created["private_key"].as_str().unwrap()).await["code"],
        "VALID"
    );
}
