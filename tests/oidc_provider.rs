//! Keymint against a real OpenID provider: panva's `oidc-provider` (pinned in
//! `tests/oidc/package-lock.json`, started by `tests/oidc/provider.mjs`), set up
//! as a standards provider is for an API: resource indicators (RFC 8707), JWT
//! access tokens for the resource `https://keymint.test/api` with the scopes
//! `read:api_keys write:api_keys` and an `org_id` claim, a confidential client
//! for the client-credentials grant and a public PKCE client for the console.
//!
//! Keymint runs as a real process in its production profile, configured only
//! through `KEYMINT_*` variables (issuer discovery, audience, algorithms,
//! required permissions), as the README's "Any other OIDC provider" says.
//!
//! These tests need Node.js and the provider's packages (`npm ci --prefix
//! tests/oidc`), the console's also Debian's `chromium` and `chromium-driver`,
//! so they are ignored by a plain `cargo test` (which must pass on a machine
//! with Rust alone); `--include-ignored` runs them, as `.ci/run` does after
//! installing what they need, and without it they fail, saying what is
//! missing. `KEYMINT_CONSOLE_SCREENSHOTS=<dir>` saves the console's pages.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use fantoccini::Client;
use serde_json::{json, Value};
use uuid::Uuid;

use support::browser::{fill, free_port, js, open_browser, screenshot, wait_for, wait_text, Screen, PATIENCE};
use support::process::Reaped;

const NEEDS_PROVIDER: &str = "needs Node.js and the OIDC provider's packages: run `npm ci --prefix tests/oidc`";

/// The API as the provider knows it: the resource indicator and the audience.
const API: &str = "https://keymint.test/api";
/// Another API the provider issues tokens for, which Keymint must refuse.
const OTHER_API: &str = "https://other.test/api";
const SERVICE_SECRET: &str = "service-secret";

/// A child's output lines, kept as they arrive, for waiting on a line and for
/// showing what the process said when an assertion fails.
#[derive(Clone, Default)]
struct Log(Arc<Mutex<Vec<String>>>);

impl Log {
    /// Reads `stream` on a thread of its own to its end, into the log; each line
    /// is also sent on the returned channel.
    fn follow(&self, stream: impl std::io::Read + Send + 'static) -> mpsc::Receiver<String> {
        use std::io::BufRead;
        let (sender, receiver) = mpsc::channel();
        let lines = self.0.clone();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stream).lines().map_while(Result::ok) {
                lines.lock().unwrap().push(line.clone());
                let _ = sender.send(line);
            }
        });
        receiver
    }

    fn lines(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }

    fn count(&self, needle: &str) -> usize {
        self.lines().iter().filter(|l| l.contains(needle)).count()
    }

    /// Waits (at most [`PATIENCE_FOR_LOG`]) until `needle` is in `at_least`
    /// lines: the child writes a request's lines before it answers, but this
    /// side reads them on another thread, so a response can arrive first.
    fn wait_count(&self, needle: &str, at_least: usize) -> usize {
        let started = Instant::now();
        loop {
            let count = self.count(needle);
            if count >= at_least || started.elapsed() > PATIENCE_FOR_LOG {
                return count;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn tail(&self) -> String {
        let lines = self.lines();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }
}

/// How long a line the child has written may take to reach [`Log`].
const PATIENCE_FOR_LOG: Duration = Duration::from_secs(5);

/// Waits (at most `within`) for a line containing `needle`.
fn wait_line(lines: &mpsc::Receiver<String>, needle: &str, within: Duration, log: &Log, what: &str) -> String {
    let started = Instant::now();
    loop {
        let left = within.saturating_sub(started.elapsed());
        match lines.recv_timeout(left) {
            Ok(line) if line.contains(needle) => return line,
            Ok(_) => {}
            Err(_) => panic!(
                "{what} did not say {needle:?} within {within:?}; it said:\n{}",
                log.tail()
            ),
        }
    }
}

// ---------------------------------------------------------------- the provider

/// The provider's project, checked: Node.js runs and its packages are installed.
fn provider_project() -> PathBuf {
    let dir = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/oidc"));
    let node = Command::new("node").arg("--version").output();
    assert!(
        node.as_ref().is_ok_and(|o| o.status.success()),
        "node does not run ({node:?}): {NEEDS_PROVIDER}"
    );
    assert!(
        dir.join("node_modules/oidc-provider/package.json").is_file(),
        "tests/oidc/node_modules/oidc-provider is missing: {NEEDS_PROVIDER}"
    );
    dir
}

/// What the provider is started with.
#[derive(Clone)]
struct ProviderSetup {
    port: u16,
    alg: &'static str,
    org: Uuid,
    /// The Keymints whose console may sign in (`<url>/console` redirect URIs).
    keymints: Vec<String>,
}

/// `tests/oidc/provider.mjs`, running; killed when dropped.
struct Provider {
    child: Reaped,
    /// `http://127.0.0.1:<port>`, exactly as in tokens' `iss`.
    issuer: String,
    /// The key id of the signing key made at this start.
    kid: String,
    log: Log,
}

impl Provider {
    fn start(setup: &ProviderSetup) -> Provider {
        let dir = provider_project();
        let mut child = Reaped(
            Command::new("node")
                .arg("provider.mjs")
                .arg(setup.port.to_string())
                .current_dir(&dir)
                .env("ALG", setup.alg)
                .env("ORG_ID", setup.org.to_string())
                .env("KEYMINT_URL", setup.keymints.join(" "))
                .env("SERVICE_SECRET", SERVICE_SECRET)
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start node ({e}): {NEEDS_PROVIDER}")),
        );
        let log = Log::default();
        let lines = log.follow(child.stdout.take().unwrap());
        let _ = log.follow(child.stderr.take().unwrap());
        let line = wait_line(&lines, "listening ", Duration::from_secs(20), &log, "the OIDC provider");
        let issuer = format!("http://127.0.0.1:{}", setup.port);
        assert!(line.starts_with(&format!("listening {issuer} ")), "{line}");
        let kid = line
            .split("kid=")
            .nth(1)
            .unwrap()
            .split_whitespace()
            .next()
            .unwrap()
            .to_owned();
        Provider {
            child,
            issuer,
            kid,
            log,
        }
    }

    /// What it logged as `what {json}` lines: `authorization` requests and
    /// `grant`s, oldest first.
    fn seen(&self, what: &str) -> Vec<Value> {
        let prefix = format!("{what} ");
        self.log
            .lines()
            .iter()
            .filter_map(|l| l.strip_prefix(&prefix))
            .map(|json| serde_json::from_str(json).unwrap())
            .collect()
    }

    /// Stops it with SIGTERM and waits until it has exited (so its port is free).
    fn stop(mut self) {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(sent.success(), "kill -TERM {pid}");
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                assert!(status.success(), "the provider exits cleanly on SIGTERM: {status}");
                return;
            }
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "the provider did not exit on SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// A client-credentials token from the `service` client (client_secret_basic),
    /// or from `service-post` (client_secret_post) when `post`.
    async fn token(&self, resource: Option<&str>, scope: &str, post: bool) -> String {
        let mut form = vec![("grant_type", "client_credentials"), ("scope", scope)];
        if let Some(resource) = resource {
            form.push(("resource", resource));
        }
        let request = reqwest::Client::new().post(format!("{}/token", self.issuer));
        let request = if post {
            form.extend([("client_id", "service-post"), ("client_secret", SERVICE_SECRET)]);
            request
        } else {
            request.basic_auth("service", Some(SERVICE_SECRET))
        };
        let response = request.form(&form).send().await.unwrap();
        let status = response.status();
        let body: Value = response.json().await.unwrap();
        assert_eq!(status, 200, "token endpoint: {body}\n{}", self.log.tail());
        assert_eq!(body["token_type"], "Bearer", "{body}");
        body["access_token"].as_str().unwrap().to_owned()
    }
}

/// A JWT's header and payload, decoded (not verified: Keymint does that).
fn decode(token: &str) -> (Value, Value) {
    let mut parts = token.split('.');
    let mut part = || serde_json::from_slice::<Value>(&URL_SAFE_NO_PAD.decode(parts.next().unwrap()).unwrap()).unwrap();
    (part(), part())
}

// ---------------------------------------------------------------- Keymint

/// A `keymint` process in its production profile on an in-memory database,
/// run from an empty directory; killed when dropped.
struct Keymint {
    _child: Reaped,
    /// `http://127.0.0.1:<port>`.
    url: String,
    log: Log,
    _dir: tempfile::TempDir,
}

/// What a standards provider needs from Keymint, as the README sets it.
fn keymint(port: u16, issuer: &str, extra: &[(&str, &str)]) -> Keymint {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Reaped(
        Command::new(env!("CARGO_BIN_EXE_keymint"))
            .current_dir(dir.path())
            .env_clear()
            .env("KEYMINT_PROFILE", "production")
            .env("KEYMINT_LOG__FORMAT", "text")
            .env("KEYMINT_SERVER__LISTEN", format!("127.0.0.1:{port}"))
            .env("KEYMINT_DATABASE__URL", "memory:")
            .env("KEYMINT_HASHING__MEMORY_KIB", "64")
            .env("KEYMINT_HASHING__ITERATIONS", "1")
            .env("KEYMINT_AUTH__ISSUER", issuer)
            .env("KEYMINT_AUTH__AUDIENCE", API)
            .env("KEYMINT_AUTH__ALGORITHMS", "RS256,ES256")
            .env("KEYMINT_AUTH__REQUIRE_PERMISSIONS", "true")
            .env("KEYMINT_AUTH__HS256_SECRET", "")
            .env("KEYMINT_CONSOLE__CLIENT_ID", "console")
            .env("KEYMINT_CONSOLE__SCOPE", "openid read:api_keys write:api_keys")
            .envs(extra.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let log = Log::default();
    let lines = log.follow(child.stdout.take().unwrap());
    wait_line(&lines, "Keymint listening", Duration::from_secs(60), &log, "keymint");
    Keymint {
        _child: child,
        url: format!("http://127.0.0.1:{port}"),
        log,
        _dir: dir,
    }
}

/// One request to Keymint's API with `token`: the status and the JSON body.
async fn api(keymint: &Keymint, token: &str, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    let client = reqwest::Client::new();
    let url = format!("{}{path}", keymint.url);
    let request = match method {
        "GET" => client.get(url),
        "POST" => client.post(url).json(&body.unwrap_or(json!({}))),
        other => panic!("{other}"),
    };
    let response = request.bearer_auth(token).send().await.unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

// ---------------------------------------------------------------- tests: the API

/// Client-credentials tokens from the provider, signed with `alg`, against the API.
async fn the_api_takes_client_credentials_tokens(alg: &'static str) {
    let org = Uuid::new_v4();
    let keymint_port = free_port();
    let provider = Provider::start(&ProviderSetup {
        port: free_port(),
        alg,
        org,
        keymints: vec![format!("http://127.0.0.1:{keymint_port}")],
    });
    let keymint = keymint(keymint_port, &provider.issuer, &[]);
    assert_eq!(
        keymint.log.count("mode=jwks discovery="),
        1,
        "Keymint verifies by discovery:\n{}",
        keymint.log.tail()
    );

    // The token is what a standards provider issues for the API.
    let token = provider.token(Some(API), "read:api_keys write:api_keys", false).await;
    let (header, claims) = decode(&token);
    assert_eq!(header["alg"], alg);
    assert_eq!(header["kid"], provider.kid.as_str());
    assert_eq!(header["typ"], "at+jwt");
    assert_eq!(claims["iss"], provider.issuer.as_str());
    assert_eq!(claims["aud"], API);
    assert_eq!(claims["scope"], "read:api_keys write:api_keys");
    assert_eq!(claims["org_id"], org.to_string());
    assert_eq!(claims["sub"], "service");

    // List, create, get it back: all in the token's organisation.
    let (status, list) = api(&keymint, &token, "GET", "/api/v2/api-keys", None).await;
    assert_eq!(status, 200, "{list}\n{}", keymint.log.tail());
    assert_eq!(list, json!([]));
    let (status, created) = api(
        &keymint,
        &token,
        "POST",
        "/api/v2/api-keys",
        Some(json!({"name": format!("made-with-{alg}")})),
    )
    .await;
    assert_eq!(status, 201, "{created}\n{}", keymint.log.tail());
    assert_eq!(created["org_id"], org.to_string());
    let id = created["id"].as_str().unwrap();
    let (status, got) = api(&keymint, &token, "GET", &format!("/api/v2/api-keys/{id}"), None).await;
    assert_eq!(status, 200, "{got}");
    assert_eq!(got["name"], format!("made-with-{alg}"));
    assert_eq!(got["org_id"], org.to_string());
    let (status, list) = api(&keymint, &token, "GET", "/api/v2/api-keys", None).await;
    assert_eq!(status, 200);
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
    assert_eq!(list[0]["id"], id);

    // Without the write scope (and with client_secret_post): reads, no writes.
    let reader = provider.token(Some(API), "read:api_keys", true).await;
    assert_eq!(decode(&reader).1["scope"], "read:api_keys");
    let (status, _) = api(&keymint, &reader, "GET", "/api/v2/api-keys", None).await;
    assert_eq!(status, 200);
    let (status, refused) = api(
        &keymint,
        &reader,
        "POST",
        "/api/v2/api-keys",
        Some(json!({"name": "not-made"})),
    )
    .await;
    assert_eq!(status, 403, "{refused}");
    assert_eq!(refused["code"], "insufficient_permissions");
    assert_eq!(refused["detail"], "The token lacks the permission write:api_keys");

    // A token for another API is refused, whatever its scopes.
    let other = provider
        .token(Some(OTHER_API), "read:api_keys write:api_keys", false)
        .await;
    assert_eq!(decode(&other).1["aud"], OTHER_API);
    let (status, refused) = api(&keymint, &other, "GET", "/api/v2/api-keys", None).await;
    assert_eq!(status, 401, "{refused}");
    assert_eq!(refused["code"], "invalid_token");
    assert_eq!(refused["detail"], "Invalid token: the token's audience is not accepted");

    // Without a resource indicator the provider issues an opaque token, for its
    // own userinfo endpoint: not a JWT, so refused.
    let opaque = provider.token(None, "read:api_keys write:api_keys", false).await;
    assert_eq!(opaque.split('.').count(), 1, "opaque: {opaque}");
    let (status, refused) = api(&keymint, &opaque, "GET", "/api/v2/api-keys", None).await;
    assert_eq!(status, 401, "{refused}");
    assert_eq!(refused["code"], "invalid_token");
    assert_eq!(refused["detail"], "Invalid token: the token is malformed");
    assert_eq!(
        list_with(&keymint, &token).await.len(),
        1,
        "nothing was made by the refused requests"
    );
}

async fn list_with(keymint: &Keymint, token: &str) -> Vec<Value> {
    let (status, list) = api(keymint, token, "GET", "/api/v2/api-keys", None).await;
    assert_eq!(status, 200, "{list}");
    list.as_array().unwrap().clone()
}

#[tokio::test]
#[ignore = "needs Node.js and the OIDC provider (npm ci --prefix tests/oidc); .ci/run installs it"]
async fn client_credentials_tokens_signed_rs256_manage_keys_and_the_wrong_ones_are_refused() {
    the_api_takes_client_credentials_tokens("RS256").await;
}

#[tokio::test]
#[ignore = "needs Node.js and the OIDC provider (npm ci --prefix tests/oidc); .ci/run installs it"]
async fn client_credentials_tokens_signed_es256_manage_keys_and_the_wrong_ones_are_refused() {
    the_api_takes_client_credentials_tokens("ES256").await;
}

/// The provider restarts with a new signing key on the same port: Keymint
/// fetches the key set again on the new `kid`, which replaces the old set, so
/// the old key no longer verifies (README, "Key rotation").
#[tokio::test]
#[ignore = "needs Node.js and the OIDC provider (npm ci --prefix tests/oidc); .ci/run installs it"]
async fn a_key_rotated_at_the_provider_is_fetched_on_its_first_token_and_the_old_key_is_dropped() {
    let org = Uuid::new_v4();
    let keymint_port = free_port();
    let setup = ProviderSetup {
        port: free_port(),
        alg: "RS256",
        org,
        keymints: vec![format!("http://127.0.0.1:{keymint_port}")],
    };
    let provider = Provider::start(&setup);
    let keymint = keymint(keymint_port, &provider.issuer, &[]);
    const FETCHED: &str = "public keys fetched keys=1 what=\"JWKS\"";
    assert_eq!(
        keymint.log.count(FETCHED),
        1,
        "fetched at start:\n{}",
        keymint.log.tail()
    );

    let old = provider.token(Some(API), "read:api_keys write:api_keys", false).await;
    let kid_a = provider.kid.clone();
    assert_eq!(decode(&old).0["kid"], kid_a.as_str());
    assert_eq!(list_with(&keymint, &old).await.len(), 0);

    // The provider is down: the cached key keeps working.
    provider.stop();
    assert_eq!(list_with(&keymint, &old).await.len(), 0);

    // Back on the same port with a new key.
    let provider = Provider::start(&setup);
    let kid_b = provider.kid.clone();
    assert_ne!(kid_a, kid_b, "a new key at each start");
    let new = provider.token(Some(API), "read:api_keys write:api_keys", false).await;
    assert_eq!(decode(&new).0["kid"], kid_b.as_str());
    let (status, created) = api(
        &keymint,
        &new,
        "POST",
        "/api/v2/api-keys",
        Some(json!({"name": "after-rotation"})),
    )
    .await;
    assert_eq!(
        status,
        201,
        "the new kid is fetched on first sight: {created}\n{}",
        keymint.log.tail()
    );
    // Every line the POST logged has arrived once its own "request done" has.
    assert_eq!(
        keymint.log.wait_count("http.status_code=201}", 1),
        1,
        "the create's own line:\n{}",
        keymint.log.tail()
    );
    assert_eq!(keymint.log.count(FETCHED), 2, "one refetch:\n{}", keymint.log.tail());
    assert_eq!(list_with(&keymint, &new).await.len(), 1);

    // The refetched set is the provider's whole set now: the old key is gone
    // from it, so a token it signed (not expired) is refused, and asking again
    // within the cooldown fetches nothing.
    let refusals = keymint.log.count("request refused");
    let (status, refused) = api(&keymint, &old, "GET", "/api/v2/api-keys", None).await;
    assert_eq!(status, 401, "{refused}");
    assert_eq!(refused["code"], "invalid_token");
    assert_eq!(refused["detail"], "Invalid token: the token's key id is unknown");
    assert_eq!(
        keymint.log.wait_count("request refused", refusals + 1),
        refusals + 1,
        "the refusal's own line:\n{}",
        keymint.log.tail()
    );
    assert_eq!(
        keymint.log.count(FETCHED),
        2,
        "no refetch within the cooldown:\n{}",
        keymint.log.tail()
    );
    provider.stop();
}

/// Keymint started before its provider (a deployment brought up in any order):
/// no key set was ever fetched, so 503 `auth_unavailable`, not 401; once the
/// provider answers, the next request past the cooldown fetches the keys.
#[tokio::test]
#[ignore = "needs Node.js and the OIDC provider (npm ci --prefix tests/oidc); .ci/run installs it"]
async fn keymint_started_before_its_provider_answers_503_until_the_keys_can_be_fetched() {
    let keymint_port = free_port();
    let setup = ProviderSetup {
        port: free_port(),
        alg: "ES256",
        org: Uuid::new_v4(),
        keymints: vec![format!("http://127.0.0.1:{keymint_port}")],
    };
    let issuer = format!("http://127.0.0.1:{}", setup.port);
    let keymint = keymint(keymint_port, &issuer, &[("KEYMINT_AUTH__JWKS_COOLDOWN_SECONDS", "1")]);
    // Any well-formed token: there is no key to check it with.
    let header = URL_SAFE_NO_PAD.encode(r#"{"alg":"ES256","typ":"at+jwt","kid":"not-fetched-yet"}"#);
    let unchecked = format!("{header}.{}.c2ln", URL_SAFE_NO_PAD.encode("{}"));
    let (status, unavailable) = api(&keymint, &unchecked, "GET", "/api/v2/api-keys", None).await;
    assert_eq!(status, 503, "{unavailable}\n{}", keymint.log.tail());
    assert_eq!(unavailable["code"], "auth_unavailable");

    let provider = Provider::start(&setup);
    let token = provider.token(Some(API), "read:api_keys write:api_keys", false).await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(list_with(&keymint, &token).await.len(), 0);
    provider.stop();
}

// ---------------------------------------------------------------- tests: the console

/// Waits until the browser is on `origin` (scheme, host and port).
async fn wait_origin(c: &Client, origin: &str) -> url::Url {
    let started = Instant::now();
    loop {
        let url = c.current_url().await.unwrap();
        if url.origin().ascii_serialization() == origin {
            return url;
        }
        assert!(started.elapsed() < PATIENCE, "not on {origin}: on {url}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The provider's own development login page: any login and password.
async fn log_in_at_the_provider(c: &Client, provider: &Provider, login: &str) {
    let url = wait_origin(c, &provider.issuer).await;
    assert!(
        url.path().starts_with("/interaction/"),
        "the provider's login page: {url}"
    );
    wait_text(c, "h1", "Sign-in").await;
    fill(c, "input[name=login]", login).await;
    fill(c, "input[name=password]", "any password").await;
    screenshot(c, "oidc-provider-login").await;
    wait_text(c, "button[type=submit]", "Sign-in")
        .await
        .click()
        .await
        .unwrap();
}

/// The provider's consent page: the console asks for the API's scopes.
async fn consent_at_the_provider(c: &Client, provider: &Provider) {
    let url = wait_origin(c, &provider.issuer).await;
    assert!(
        url.path().starts_with("/interaction/"),
        "the provider's consent page: {url}"
    );
    wait_text(c, "h1", "Authorize").await;
    screenshot(c, "oidc-provider-consent").await;
    wait_text(c, "button[type=submit]", "Continue")
        .await
        .click()
        .await
        .unwrap();
}

/// The console's session in this tab, if any.
async fn stored_session(c: &Client) -> Value {
    let stored = js(c, "return sessionStorage.getItem('keymint.console.session')").await;
    match stored.as_str() {
        Some(text) => serde_json::from_str(text).unwrap(),
        None => Value::Null,
    }
}

#[tokio::test]
#[ignore = "needs chromium, chromium-driver and the OIDC provider (npm ci --prefix tests/oidc); .ci/run installs them"]
async fn the_console_signs_in_and_out_at_the_provider_s_own_pages() {
    let org = Uuid::new_v4();
    let keymint_port = free_port();
    let provider = Provider::start(&ProviderSetup {
        port: free_port(),
        alg: "RS256",
        org,
        keymints: vec![format!("http://127.0.0.1:{keymint_port}")],
    });
    let keymint = keymint(keymint_port, &provider.issuer, &[]);

    // A key the organisation's service made through the API.
    let service = provider.token(Some(API), "read:api_keys write:api_keys", false).await;
    let (status, made) = api(
        &keymint,
        &service,
        "POST",
        "/api/v2/api-keys",
        Some(json!({"name": "made-by-the-service"})),
    )
    .await;
    assert_eq!(status, 201, "{made}");

    let (_driver, c) = open_browser(Screen::Desktop).await;
    c.goto(&format!("{}/console", keymint.url)).await.unwrap();
    wait_text(&c, "h1", "Sign in to Keymint").await;
    let host = provider.issuer.trim_start_matches("http://");
    wait_text(&c, "main button", &format!("Sign in with {host}"))
        .await
        .click()
        .await
        .unwrap();

    // At the provider: its login page, then its consent page; then back.
    log_in_at_the_provider(&c, &provider, "carol").await;
    consent_at_the_provider(&c, &provider).await;
    wait_origin(&c, &keymint.url).await;
    wait_text(&c, "h1", "API keys").await;
    wait_text(&c, "main", "made-by-the-service").await;
    wait_text(&c, "#who-text", "carol").await;
    screenshot(&c, "oidc-signed-in").await;
    let url = c.current_url().await.unwrap();
    assert_eq!(url.path(), "/console");
    assert_eq!(url.fragment(), None, "the code is gone from the address bar");

    // The console asked for the API both ways, and for the answer in the fragment.
    let asked = provider.seen("authorization");
    assert_eq!(
        asked,
        [json!({
            "client_id": "console", "response_type": "code", "response_mode": "fragment",
            "scope": "openid read:api_keys write:api_keys", "resource": API, "audience": API,
            "code_challenge_method": "S256", "redirect_uri": format!("{}/console", keymint.url),
        })]
    );
    let grants = provider.seen("grant");
    assert_eq!(
        grants.last().unwrap(),
        &json!({"grant_type": "authorization_code", "client_id": "console", "resource": API})
    );

    // The console holds the provider's access token for the API.
    let session = stored_session(&c).await;
    assert_eq!(session["mode"], "oidc", "{session}");
    let (header, claims) = decode(session["token"].as_str().unwrap());
    assert_eq!(header["kid"], provider.kid.as_str());
    assert_eq!(claims["iss"], provider.issuer.as_str());
    assert_eq!(claims["aud"], API);
    assert_eq!(claims["sub"], "carol");
    assert_eq!(claims["client_id"], "console");
    assert_eq!(claims["org_id"], org.to_string());
    assert_eq!(claims["scope"], "read:api_keys write:api_keys");

    // Sign-out: the provider's end-session page asks, then back to the console.
    wait_for(&c, "#sign-out").await.click().await.unwrap();
    let url = wait_origin(&c, &provider.issuer).await;
    assert_eq!(url.path(), "/session/end", "{url}");
    let query: std::collections::HashMap<String, String> = url.query_pairs().into_owned().collect();
    assert_eq!(query["client_id"], "console");
    assert_eq!(query["post_logout_redirect_uri"], format!("{}/console", keymint.url));
    screenshot(&c, "oidc-provider-sign-out").await;
    wait_text(&c, "button", "Yes, sign me out").await.click().await.unwrap();
    wait_origin(&c, &keymint.url).await;
    wait_text(&c, "h1", "Sign in to Keymint").await;
    wait_text(&c, "main button", &format!("Sign in with {host}")).await;
    assert_eq!(stored_session(&c).await, Value::Null);

    // The provider's session ended too: signing in again asks for a login.
    wait_text(&c, "main button", "Sign in with")
        .await
        .click()
        .await
        .unwrap();
    log_in_at_the_provider(&c, &provider, "carol").await;
    // Consent lived in the ended session: asked again.
    consent_at_the_provider(&c, &provider).await;
    wait_origin(&c, &keymint.url).await;
    wait_text(&c, "main", "made-by-the-service").await;
    c.close().await.unwrap();
}

#[tokio::test]
#[ignore = "needs chromium, chromium-driver and the OIDC provider (npm ci --prefix tests/oidc); .ci/run installs them"]
async fn a_sign_in_whose_token_keymint_refuses_is_explained_on_the_sign_in_page() {
    let org = Uuid::new_v4();
    let (wrong_audience_port, no_permissions_port) = (free_port(), free_port());
    let provider = Provider::start(&ProviderSetup {
        port: free_port(),
        alg: "ES256",
        org,
        keymints: vec![
            format!("http://127.0.0.1:{wrong_audience_port}"),
            format!("http://127.0.0.1:{no_permissions_port}"),
        ],
    });
    // An audience that is not the provider's resource indicator (not a URI, as
    // an Auth0 API identifier may be): the console cannot ask for it as a
    // resource, and the provider issues an opaque token for its userinfo.
    let wrong_audience = keymint(
        wrong_audience_port,
        &provider.issuer,
        &[("KEYMINT_AUTH__AUDIENCE", "keymint-api")],
    );
    // The console asks for no API scope: the token is for the API but grants
    // nothing in it.
    let no_permissions = keymint(
        no_permissions_port,
        &provider.issuer,
        &[("KEYMINT_CONSOLE__SCOPE", "openid profile")],
    );
    let (_driver, c) = open_browser(Screen::Desktop).await;
    let host = provider.issuer.trim_start_matches("http://").to_owned();

    let cases = [
        (
            &wrong_audience,
            json!({"scope": "openid read:api_keys write:api_keys", "audience": "keymint-api", "resource": null}),
            "Keymint refused the token the identity provider issued: Invalid token: the token is malformed. \
             Keymint reads a JWT issued for its API: set auth.audience",
        ),
        (
            &no_permissions,
            json!({"scope": "openid profile", "audience": API, "resource": API}),
            "Keymint accepted the token but: The token lacks the permission read:api_keys. \
             Ask the identity provider for the API permissions (console.scope",
        ),
    ];
    for (n, (keymint, asked, explained)) in cases.into_iter().enumerate() {
        c.goto(&format!("{}/console", keymint.url)).await.unwrap();
        wait_text(&c, "main button", &format!("Sign in with {host}"))
            .await
            .click()
            .await
            .unwrap();
        // The first sign-in at the provider asks for a login; the second
        // Keymint's console is another origin but the same provider session.
        if n == 0 {
            log_in_at_the_provider(&c, &provider, "dave").await;
        }
        consent_at_the_provider(&c, &provider).await;
        wait_origin(&c, &keymint.url).await;
        wait_text(&c, "main .alert", explained).await;
        let seen = provider.seen("authorization").pop().unwrap();
        for field in ["scope", "audience", "resource"] {
            assert_eq!(
                seen.get(field).unwrap_or(&Value::Null),
                &asked[field],
                "{field} in {seen}"
            );
        }

        // And it stays there: no session, the sign-in page with its button, no
        // new trip to the provider.
        tokio::time::sleep(Duration::from_millis(1500)).await;
        screenshot(&c, &format!("oidc-refused-{n}")).await;
        let url = c.current_url().await.unwrap();
        assert_eq!(
            url.origin().ascii_serialization(),
            keymint.url,
            "stays at Keymint: {url}"
        );
        assert_eq!(url.path(), "/console/sign-in");
        wait_text(&c, "h1", "Sign in to Keymint").await;
        wait_text(&c, "main .alert", explained).await;
        wait_text(&c, "main button", &format!("Sign in with {host}")).await;
        assert_eq!(stored_session(&c).await, Value::Null, "no session is kept");
        assert!(
            keymint.log.lines().iter().any(|l| l.contains("/api/v2/api-keys")),
            "Keymint was asked:\n{}",
            keymint.log.tail()
        );
    }
    c.close().await.unwrap();
}
