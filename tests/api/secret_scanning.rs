//! GitHub's secret-scanning partner protocol against a real local key server:
//! alerts signed with P-256 key pairs generated here, the signing keys
//! published in GitHub's `{"public_keys": [...]}` shape.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use actix_web::{web, App, HttpResponse, HttpServer};
use aws_lc_rs::digest::{digest, SHA256};
use aws_lc_rs::encoding::{AsDer, PublicKeyX509Der};
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_ASN1_SIGNING};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use reqwest::Method;
use serde_json::{json, Value};

use crate::support::{error_body, json_of, spawn_app_with, test_settings, Backend, TestApp};

struct GithubKey {
    id: String,
    pair: EcdsaKeyPair,
}

impl GithubKey {
    fn new(id: &str) -> Self {
        Self {
            id: id.to_owned(),
            pair: EcdsaKeyPair::generate(&ECDSA_P256_SHA256_ASN1_SIGNING).unwrap(),
        }
    }

    fn published(&self, current: bool) -> Value {
        let der: PublicKeyX509Der<'_> = self.pair.public_key().as_der().unwrap();
        let body = STANDARD.encode(der.as_ref());
        let lines: Vec<&str> = body
            .as_bytes()
            .chunks(64)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect();
        let pem = format!(
            "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
            lines.join("\n")
        );
        json!({"key_identifier": self.id, "key": pem, "is_current": current})
    }

    fn sign(&self, body: &[u8]) -> String {
        STANDARD.encode(self.pair.sign(&SystemRandom::new(), body).unwrap().as_ref())
    }
}

/// A stand-in for GitHub's key endpoint.
struct KeyServer {
    url: String,
    keys: Arc<Mutex<Vec<Value>>>,
    fetches: Arc<AtomicUsize>,
}

impl KeyServer {
    async fn start(keys: Vec<Value>) -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!(
            "http://{}/meta/public_keys/secret_scanning",
            listener.local_addr().unwrap()
        );
        let keys = Arc::new(Mutex::new(keys));
        let fetches = Arc::new(AtomicUsize::new(0));
        let (served, counted) = (keys.clone(), fetches.clone());
        let server = HttpServer::new(move || {
            let (served, counted) = (served.clone(), counted.clone());
            App::new().route(
                "/meta/public_keys/secret_scanning",
                web::get().to(move || {
                    let (served, counted) = (served.clone(), counted.clone());
                    async move {
                        counted.fetch_add(1, Ordering::SeqCst);
                        HttpResponse::Ok().json(json!({"public_keys": *served.lock().unwrap()}))
                    }
                }),
            )
        })
        .workers(1)
        .listen(listener)
        .unwrap()
        .run();
        tokio::spawn(server);
        Self { url, keys, fetches }
    }

    fn fetches(&self) -> usize {
        self.fetches.load(Ordering::SeqCst)
    }
}

async fn app_trusting(server: &KeyServer, cooldown_seconds: u64) -> TestApp {
    let dir = tempfile::tempdir().unwrap();
    let figment = test_settings(Backend::Sqlite, &dir)
        .merge(("leaks.github_keys_url", server.url.clone()))
        .merge(("leaks.github_keys_cooldown_seconds", cooldown_seconds));
    spawn_app_with(figment, dir).await
}

async fn alert(app: &TestApp, key_id: Option<&str>, signature: Option<&str>, body: &[u8]) -> reqwest::Response {
    let mut request = app
        .client
        .post(app.url("/api/v2/secret-scanning/github"))
        .header("content-type", "application/json")
        .body(body.to_vec());
    if let Some(key_id) = key_id {
        request = request.header("Github-Public-Key-Identifier", key_id);
    }
    if let Some(signature) = signature {
        request = request.header("Github-Public-Key-Signature", signature);
    }
    request.send().await.unwrap()
}

async fn create(app: &TestApp, name: &str) -> Value {
    json_of(app.create_key(&json!({ "name": name })).await, 201).await
}

fn sha256_hex(text: &str) -> String {
    digest(&SHA256, text.as_bytes())
        .as_ref()
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

async fn latest_event(app: &TestApp, key_id: &str) -> Value {
    let events = json_of(
        app.call(Method::GET, &format!("/api/v2/api-keys/{key_id}/events"), None)
            .await,
        200,
    )
    .await;
    events[0].clone()
}

#[tokio::test]
async fn a_signed_alert_revokes_every_genuine_key_and_labels_every_token() {
    let github = GithubKey::new("f8b0c2c2e6a9c4a8c1");
    let server = KeyServer::start(vec![github.published(true)]).await;
    let app = app_trusting(&server, 30).await;
    let (first, second) = (create(&app, "first").await, create(&app, "second").await);
    let (sk1, sk2) = (
        first["private_key"].as_str().unwrap(),
        second["private_key"].as_str().unwrap(),
    );
    let stranger = keymint_domain::KeyMaterial::generate(keymint_domain::Environment::Live, &mut rand_core::OsRng);
    let stranger = stranger.private_key().expose_secret();
    let url = "https://github.com/acme/app/blob/4f2a/.env";
    let alerts = json!([
        {"token": sk1, "type": "keymint_private_key", "url": url, "source": "commit"},
        {"token": stranger, "type": "keymint_private_key", "url": url, "source": "commit"},
        {"token": "sk_live_nonsense", "type": "keymint_private_key", "url": url, "source": "content"},
        {"token": sk1, "type": "keymint_private_key", "url": "https://github.com/acme/app/issues/1", "source": "issue_comment"},
        {"token": sk2, "type": "keymint_private_key", "url": "javascript:alert(1)", "source": "not a source!"},
    ]);
    let body = serde_json::to_vec(&alerts).unwrap();

    let response = alert(&app, Some(&github.id), Some(&github.sign(&body)), &body).await;
    let feedback = json_of(response, 200).await;

    let labels: Vec<&str> = feedback
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["label"].as_str().unwrap())
        .collect();
    assert_eq!(
        labels,
        [
            "true_positive",
            "false_positive",
            "false_positive",
            "true_positive",
            "true_positive"
        ]
    );
    for (entry, sent) in feedback.as_array().unwrap().iter().zip(alerts.as_array().unwrap()) {
        assert_eq!(entry["token_hash"], sha256_hex(sent["token"].as_str().unwrap()));
        assert_eq!(entry["token_type"], "keymint_private_key");
        assert_eq!(entry.as_object().unwrap().len(), 3, "{entry}");
    }
    assert!(!feedback.to_string().contains(sk1), "tokens are never echoed");
    assert_eq!(app.verify(sk1).await["code"], "REVOKED");
    assert_eq!(app.verify(sk2).await["code"], "REVOKED");

    let first_event = latest_event(&app, first["id"].as_str().unwrap()).await;
    assert_eq!(first_event["action"], "leaked");
    assert_eq!(first_event["actor"], "github-secret-scanning");
    assert_eq!(first_event["leak"], json!({"source": "commit", "url": url}));
    let second_event = latest_event(&app, second["id"].as_str().unwrap()).await;
    assert_eq!(
        second_event["leak"],
        json!({"source": "unknown", "url": null}),
        "what GitHub said is kept only when it is plain"
    );
    assert_eq!(server.fetches(), 1, "the keys were fetched once, on the first alert");
}

#[tokio::test]
async fn a_bad_or_missing_signature_is_a_401_that_changes_nothing() {
    let github = GithubKey::new("current");
    let impostor = GithubKey::new("impostor");
    let server = KeyServer::start(vec![github.published(true)]).await;
    let app = app_trusting(&server, 3600).await;
    let key = create(&app, "target").await;
    let sk = key["private_key"].as_str().unwrap();
    let body = serde_json::to_vec(
        &json!([{"token": sk, "type": "keymint_private_key", "url": "https://e.test", "source": "content"}]),
    )
    .unwrap();
    let signature = github.sign(&body);

    let mut tampered = body.clone();
    tampered.extend_from_slice(b" ");
    let cases: Vec<(Option<&str>, Option<String>, &[u8])> = vec![
        (Some("current"), Some(signature.clone()), &tampered),
        (Some("current"), Some(impostor.sign(&body)), &body),
        (Some("impostor"), Some(impostor.sign(&body)), &body),
        (None, Some(signature.clone()), &body),
        (Some("current"), None, &body),
        (Some("current"), Some("not base64!".to_owned()), &body),
    ];
    for (key_id, signature, sent) in cases {
        let response = alert(&app, key_id, signature.as_deref(), sent).await;
        let error = error_body(response, 401, "invalid_signature").await;
        assert!(!error.to_string().contains(sk));
    }
    assert_eq!(app.verify(sk).await["code"], "VALID");
    // One fetch, on first sight; within the cooldown, unknown ids (a flood of
    // made-up ones included) cause no more requests to GitHub.
    assert_eq!(server.fetches(), 1);
    let again = alert(&app, Some("another-unknown"), Some(&impostor.sign(&body)), &body).await;
    error_body(again, 401, "invalid_signature").await;
    assert_eq!(server.fetches(), 1);

    // A correctly signed retry of the same alert still works.
    assert_eq!(
        json_of(alert(&app, Some("current"), Some(&signature), &body).await, 200).await[0]["label"],
        "true_positive"
    );
}

#[tokio::test]
async fn a_key_github_rotated_in_is_fetched_on_first_sight() {
    let old = GithubKey::new("old");
    let new = GithubKey::new("new");
    let server = KeyServer::start(vec![old.published(true)]).await;
    let app = app_trusting(&server, 0).await;
    let body = br#"[{"token":"sk_live_x","type":"keymint_private_key","url":"https://e.test","source":"content"}]"#;
    assert_eq!(
        alert(&app, Some("old"), Some(&old.sign(body)), body).await.status(),
        200
    );
    *server.keys.lock().unwrap() = vec![old.published(false), new.published(true)];
    let feedback = json_of(alert(&app, Some("new"), Some(&new.sign(body)), body).await, 200).await;
    assert_eq!(feedback[0]["label"], "false_positive");
    assert_eq!(server.fetches(), 2);
    assert_eq!(
        alert(&app, Some("old"), Some(&old.sign(body)), body).await.status(),
        200,
        "a retired key still verifies"
    );
}

#[tokio::test]
async fn a_signed_alert_that_is_not_a_list_of_tokens_is_refused() {
    let github = GithubKey::new("k");
    let server = KeyServer::start(vec![github.published(true)]).await;
    let app = app_trusting(&server, 30).await;
    for (body, status, code) in [
        (&b"{\"token\": \"x\"}"[..], 422, "validation_error"),
        (&b"[{\"type\": \"keymint_private_key\"}]"[..], 422, "validation_error"),
        (&b"[{"[..], 400, "malformed_json"),
    ] {
        error_body(
            alert(&app, Some("k"), Some(&github.sign(body)), body).await,
            status,
            code,
        )
        .await;
    }
    let empty = json_of(alert(&app, Some("k"), Some(&github.sign(b"[]")), b"[]").await, 200).await;
    assert_eq!(empty, json!([]));
}

/// Sends the head of an alert promising a 1 MiB body, then a little of it, and
/// reads what comes back before the rest is sent.
async fn answer_before_the_body(app: &TestApp, headers: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let address = app.address.trim_start_matches("http://").to_owned();
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let head = format!(
        "POST /api/v2/secret-scanning/github HTTP/1.1\r\nHost: keymint\r\n{headers}\
         Content-Type: application/json\r\nContent-Length: 1048576\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(&[b' '; 1024]).await.unwrap();
    let mut answer = vec![0; 4096];
    let read = tokio::time::timeout(std::time::Duration::from_secs(5), stream.read(&mut answer))
        .await
        .expect("answered without waiting for the rest of the body")
        .unwrap();
    String::from_utf8_lossy(&answer[..read]).into_owned()
}

/// The headers are judged before a byte of the body is buffered: an alert
/// with no signature, a malformed one or a key GitHub does not publish is
/// answered while its body is still arriving.
#[tokio::test]
async fn an_unsigned_or_unknown_key_alert_is_refused_before_its_body_is_read() {
    let github = GithubKey::new("current");
    let server = KeyServer::start(vec![github.published(true)]).await;
    let app = app_trusting(&server, 3600).await;
    let signature = github.sign(b"[]");
    for headers in [
        String::new(),
        "Github-Public-Key-Identifier: current\r\n".to_owned(),
        format!(
            "Github-Public-Key-Identifier: current\r\nGithub-Public-Key-Signature: {}\r\n",
            "A".repeat(200)
        ),
        format!("Github-Public-Key-Identifier: unknown\r\nGithub-Public-Key-Signature: {signature}\r\n"),
    ] {
        let answer = answer_before_the_body(&app, &headers).await;
        assert!(answer.starts_with("HTTP/1.1 401"), "{headers:?}: {answer}");
        assert!(answer.contains(r#""code":"invalid_signature""#), "{answer}");
    }
}

/// Alerts being received share a memory budget of their own: past it, one is
/// answered 503 with Retry-After before its body is read (GitHub retries),
/// and once the others are gone the next is read and checked as usual.
#[tokio::test]
async fn alerts_beyond_their_memory_budget_are_turned_away_unread() {
    use tokio::io::AsyncWriteExt;
    let github = GithubKey::new("current");
    let server = KeyServer::start(vec![github.published(true)]).await;
    let dir = tempfile::tempdir().unwrap();
    let figment = test_settings(Backend::Sqlite, &dir)
        .merge(("leaks.github_keys_url", server.url.clone()))
        .merge(("leaks.github_body_memory_bytes", 2 * 1024 * 1024));
    let app = spawn_app_with(figment, dir).await;
    let signature = github.sign(b"[]");
    let headers = format!("Github-Public-Key-Identifier: current\r\nGithub-Public-Key-Signature: {signature}\r\n");
    let address = app.address.trim_start_matches("http://").to_owned();
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut stream = tokio::net::TcpStream::connect(&address).await.unwrap();
        let head = format!(
            "POST /api/v2/secret-scanning/github HTTP/1.1\r\nHost: keymint\r\n{headers}\
             Content-Type: application/json\r\nContent-Length: 1048576\r\n\r\n"
        );
        stream.write_all(head.as_bytes()).await.unwrap();
        // All but the last byte: what it holds is what it sent.
        stream.write_all(&vec![b' '; 1048575]).await.unwrap();
        held.push(stream);
    }
    // Both hold their megabyte; the third finds no room.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let answer = answer_before_the_body(&app, &headers).await;
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(answer.to_ascii_lowercase().contains("retry-after: "), "{answer}");
    assert!(answer.contains(r#""code":"server_busy""#), "{answer}");
    drop(held);
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let body = b"[]";
    let response = alert(&app, Some("current"), Some(&github.sign(body)), body).await;
    assert_eq!(json_of(response, 200).await, json!([]));
}
