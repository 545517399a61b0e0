//! Secrets never reach the log, even with every target at TRACE (SQL included).
//! Its own test binary, because it installs the process-wide subscriber.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::io::Write;
use std::sync::{Arc, Mutex};

use keymint::configuration::{LogFormat, LogSettings};
use sea_orm::{ConnectionTrait, Statement};
use serde_json::{json, Value};

use support::{spawn_app, Backend};

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
    type Writer = Captured;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

/// Sends a key and a token everywhere a careless client might: the query string,
/// a JSON field name, a duplicated field name, the path, headers of the wrong
/// kind. Returns the statuses, so the caller knows each was answered.
async fn misuse(app: &support::TestApp, key: &str, token: &str) -> Vec<u16> {
    let verify = app.url("/api/v2/api-keys/verify");
    let mut key_as_field = serde_json::Map::new();
    key_as_field.insert("name".into(), json!("field"));
    key_as_field.insert(key.to_owned(), json!(1));
    let requests = [
        app.client
            .post(format!("{verify}?key={key}"))
            .json(&json!({"key": key})),
        app.client.post(format!("{verify}?key={key}")),
        app.client.post(&verify).header("x-api-key", format!("{key}x")),
        app.client
            .post(&verify)
            .header("authorization", format!("Bearer {key}"))
            .header("authorization", format!("Bearer {key}")),
        app.client
            .post(app.url("/api/v2/api-keys"))
            .bearer_auth(token)
            .json(&key_as_field),
        app.client
            .post(app.url("/api/v2/api-keys"))
            .bearer_auth(token)
            .header("content-type", "application/json")
            .body(format!(r#"{{"{key}": 1, "{key}": 2}}"#)),
        app.client
            .get(app.url(&format!("/api/v2/api-keys?access_token={token}")))
            .bearer_auth(token),
        app.client
            .get(app.url(&format!("/api/v2/api-keys/{key}")))
            .bearer_auth(token),
        app.client.get(app.url(&format!("/api/v2/{token}"))),
        app.client
            .post(app.url("/api/v2/api-keys"))
            .header("authorization", format!("Bearer {key}"))
            .json(&json!({"name": "a key as a token"})),
    ];
    let mut statuses = Vec::new();
    for request in requests {
        statuses.push(request.send().await.unwrap().status().as_u16());
    }
    statuses
}

#[tokio::test]
async fn no_private_key_hash_or_token_appears_in_trace_level_logs() {
    let captured = Captured::default();
    keymint::telemetry::init(
        &LogSettings {
            level: "trace".into(),
            format: LogFormat::Json,
        },
        captured.clone(),
        false,
    );
    let app = spawn_app(Backend::Sqlite).await;
    let token = app.token();

    let created: Value = app
        .create_key(&json!({"name": "logged", "description": "audit me"}))
        .await
        .json()
        .await
        .unwrap();
    let rejected = app
        .client
        .post(app.url("/api/v2/api-keys"))
        .bearer_auth(format!("{token}tampered"))
        .json(&json!({"name": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(rejected.status().as_u16(), 401);
    let wrong_method = app.client.put(app.url("/api/v2/api-keys")).send().await.unwrap();
    assert_eq!(wrong_method.status().as_u16(), 405);
    let invalid = app
        .create_key(&json!({"name": "", "description": "sk_live_lookalike"}))
        .await;
    assert_eq!(invalid.status().as_u16(), 422);

    // Client misuse: secrets where nobody expected them. Each is answered; none
    // may reach the log, whatever the level.
    let private_key = created["private_key"].as_str().unwrap().to_owned();
    let statuses = misuse(&app, &private_key, &token).await;
    assert!(statuses.iter().all(|s| (200..500).contains(s)), "{statuses:?}");

    // A webhook's secrets (the first and a rotated one), signed deliveries, and
    // a leaked key reported by its holder, in the query string too.
    let receiver = support::receiver::Receiver::start().await;
    let webhook: Value = app
        .call(
            reqwest::Method::POST,
            "/api/v2/webhooks",
            Some(&json!({"url": receiver.url})),
        )
        .await
        .json()
        .await
        .unwrap();
    let rotated: Value = app
        .call(
            reqwest::Method::POST,
            &format!("/api/v2/webhooks/{}/rotate-secret", webhook["id"].as_str().unwrap()),
            None,
        )
        .await
        .json()
        .await
        .unwrap();
    let leaked: Value = app.create_key(&json!({"name": "leaked"})).await.json().await.unwrap();
    let leaked_key = leaked["private_key"].as_str().unwrap().to_owned();
    let reported = app
        .client
        .post(app.url(&format!("/api/v2/api-keys/revoke-leaked?key={leaked_key}")))
        .json(&json!({"key": leaked_key, "url": "https://gist.example/x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(reported.status().as_u16(), 202);
    receiver.wait_for(2, std::time::Duration::from_secs(20)).await;

    // The console's development sign-in hands out a token; it is used as the
    // console uses it, and as a client might misuse it (in a query string).
    let session: Value = app
        .client
        .post(app.url("/console/dev-session"))
        .json(&json!({"org_id": uuid::Uuid::new_v4().to_string(), "name": "console-user"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let console_token = session["access_token"].as_str().unwrap().to_owned();
    for path in [
        "/api/v2/api-keys",
        &format!("/console/keys?access_token={console_token}"),
    ] {
        let answered = app
            .client
            .get(app.url(path))
            .bearer_auth(&console_token)
            .send()
            .await
            .unwrap();
        assert_eq!(answered.status().as_u16(), 200, "{path}");
    }

    // Keys imported from another system, by plaintext and by digest, a refused
    // one, then verified (and missed) by their digests.
    let (imported_key, refused_key) = ("xoxb-123456789012-logged-legacy-key-aaaa", "short-legacy");
    let imported_digest = keymint_domain::KeyDigest::of(imported_key).to_hex();
    let other_digest = keymint_domain::KeyDigest::of("another-legacy-key-by-digest").to_hex();
    let answer: Value = app
        .call(
            reqwest::Method::POST,
            "/api/v2/api-keys/import",
            Some(&json!({"keys": [
                {"name": "imported", "key": imported_key},
                {"name": "refused", "key": refused_key},
                {"name": "by digest", "hash": {"algorithm": "sha256", "value": other_digest}},
            ]})),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(answer["imported"].as_array().unwrap().len(), 2, "{answer}");
    assert_eq!(app.verify(imported_key).await["code"], "VALID");
    assert_eq!(app.verify(&format!("{imported_key}b")).await["code"], "NOT_FOUND");

    let db = keymint_infrastructure::sql::connect(
        app.settings.database.url.sql().unwrap(),
        &keymint_infrastructure::sql::DatabaseOptions::default(),
    )
    .await
    .unwrap();
    let row = db
        .read
        .query_one(Statement::from_string(
            db.read.get_database_backend(),
            "SELECT secret_hash FROM api_keys",
        ))
        .await
        .unwrap()
        .unwrap();
    let hash: String = row.try_get("", "secret_hash").unwrap();

    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    let key_id = created["id"].as_str().unwrap();
    assert!(
        logs.contains("API key created") && logs.contains(key_id),
        "the capture works and saw the create"
    );
    // Database-layer events reach the capture too, so silence below is not a blind spot.
    assert!(logs.contains("sea_orm"), "database-layer tracing was captured");

    // One line per request when it ends, in our words: successes and refusals
    // at INFO, the status, code and message on the request's span, never an
    // error's `Debug` form.
    let lines: Vec<Value> = logs
        .lines()
        .filter_map(|line| serde_json::from_str(line).ok())
        .collect();
    let ended = |message: &str, status: u16| {
        lines
            .iter()
            .find(|line| {
                line["target"] == "keymint_web::logging"
                    && line["fields"]["message"] == message
                    && line["span"]["http.status_code"] == status
            })
            .unwrap_or_else(|| panic!("no `{message}` line with status {status}"))
    };
    let done = ended("request done", 201);
    assert_eq!(done["level"], "INFO");
    assert_eq!(done["span"]["http.route"], "/api/v2/api-keys");
    assert!(done["fields"]["latency_ms"].as_f64().is_some(), "{done}");
    assert!(
        done["span"]["request_id"].as_str().is_some_and(|id| !id.is_empty()),
        "{done}"
    );
    let refused = ended("request refused", 401);
    assert_eq!(refused["level"], "INFO");
    assert_eq!(refused["span"]["error.code"], "invalid_token", "{refused}");
    let wrong_method = ended("request refused", 405);
    assert_eq!(wrong_method["level"], "INFO");
    let invalid = ended("request refused", 422);
    assert_eq!(invalid["span"]["error.code"], "validation_error", "{invalid}");
    assert!(
        !lines
            .iter()
            .any(|line| line["target"] == "tracing_actix_web::middleware"),
        "the middleware's own error event is off"
    );
    assert!(
        !logs.contains("FieldError") && !logs.contains("Validation("),
        "an error's Debug form reached the log"
    );
    let private_key = private_key.as_str();
    let hash_tail = hash.rsplit('$').next().unwrap();
    let token_signature = token.rsplit('.').next().unwrap();
    let signature = receiver.received()[0].signature.clone();
    for (what, secret) in [
        ("private key", private_key),
        ("secret part of the key", &private_key[25..]),
        ("argon2 hash", hash_tail),
        ("bearer token signature", token_signature),
        ("leaked key", &leaked_key[25..]),
        ("webhook secret", &webhook["secret"].as_str().unwrap()[6..]),
        ("rotated webhook secret", &rotated["secret"].as_str().unwrap()[6..]),
        ("delivery signature", &signature[3..20]),
        ("console token signature", console_token.rsplit('.').next().unwrap()),
        ("imported key", imported_key),
        ("refused imported key", refused_key),
        ("imported key's digest", &imported_digest),
        ("digest imported", &other_digest),
    ] {
        assert!(!logs.contains(secret), "the {what} appeared in the log");
    }
}

/// The lines a `keymint` process logs until it listens, started with `env`.
fn start_up_lines(env: &[(&str, &str)]) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_keymint"))
        .current_dir(dir.path())
        .env_clear()
        .env("KEYMINT_DATABASE__URL", "memory:")
        .envs(env.iter().copied())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut child = support::process::Reaped(child);
    let lines = support::stdout::lines_of(child.stdout.take().unwrap());
    let mut seen = Vec::new();
    loop {
        let line = lines
            .recv_timeout(std::time::Duration::from_secs(30))
            .expect("keymint starts listening");
        let done = line.contains("Keymint listening");
        seen.push(line);
        if done {
            return seen;
        }
    }
}

/// A development profile reachable from other hosts says what that means for
/// the console's development sign-in, whichever way it is configured, and the
/// start-up lines reach the log in Keymint's own words.
#[test]
fn start_up_warns_when_the_development_sign_in_could_be_reached_from_elsewhere() {
    let refused = start_up_lines(&[("KEYMINT_SERVER__LISTEN", "0.0.0.0:0")]);
    assert!(
        refused
            .iter()
            .any(|l| l.contains("WARN") && l.contains("development sign-in is off")),
        "{refused:#?}"
    );
    assert!(
        refused.iter().any(|l| l.contains("management API tokens are verified")),
        "the redactor leaves Keymint's own words alone: {refused:#?}"
    );
    assert!(
        refused.iter().all(|l| !l.contains("[redacted")),
        "no start-up line is taken for a secret: {refused:#?}"
    );
    let allowed = start_up_lines(&[
        ("KEYMINT_SERVER__LISTEN", "0.0.0.0:0"),
        ("KEYMINT_CONSOLE__ALLOW_REMOTE_DEV_SIGN_IN", "true"),
    ]);
    assert!(
        allowed
            .iter()
            .any(|l| l.contains("WARN") && l.contains("reachable from other hosts")),
        "{allowed:#?}"
    );
    let local = start_up_lines(&[("KEYMINT_SERVER__LISTEN", "127.0.0.1:0")]);
    assert!(
        !local.iter().any(|l| l.contains("development sign-in")),
        "nothing to warn about on loopback: {local:#?}"
    );
}

/// The production profile is compiled in: started from a directory without
/// `config/`, it logs JSON as the README says.
#[test]
fn the_production_profile_needs_no_config_folder() {
    let lines = start_up_lines(&[
        ("KEYMINT_PROFILE", "production"),
        (
            "KEYMINT_AUTH__HS256_SECRET",
            "an-operator-chosen-hs256-secret-0123456789",
        ),
        ("KEYMINT_SERVER__LISTEN", "127.0.0.1:0"),
    ]);
    for line in &lines {
        let parsed: Result<Value, _> = serde_json::from_str(line);
        assert!(parsed.is_ok(), "not JSON: {line}");
    }
    assert!(
        lines.iter().any(|line| line.contains("Keymint listening")),
        "{lines:#?}"
    );
}
