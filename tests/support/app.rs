//! `spawn_app()`: a real Keymint on a free port, per test, with its own storage.

use keymint::Settings;
pub use keymint_infrastructure::unix_now;
use keymint_infrastructure::{DevTokenRequest, Hs256Config};
use reqwest::Response;
use serde_json::Value;
use tempfile::TempDir;
use uuid::Uuid;

/// The storage adapters every scenario runs against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Memory,
    Sqlite,
    Postgres,
}

const POSTGRES_ENV: &str = "KEYMINT_TEST_POSTGRES_URL";
const TEST_DATABASE_PREFIX: &str = "keymint_test_";

fn postgres_admin_url() -> String {
    std::env::var(POSTGRES_ENV).unwrap_or_else(|_| panic!("needs PostgreSQL: set {POSTGRES_ENV}"))
}

/// `url` with its database name replaced by `name`.
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = url.split_once('?').map_or((url, None), |(b, q)| (b, Some(q)));
    let server = base.rsplit_once('/').map_or(base, |(server, _)| server);
    match query {
        Some(query) => format!("{server}/{name}?{query}"),
        None => format!("{server}/{name}"),
    }
}

/// Runs `statement` on the admin database from a thread of its own, so it can be
/// called from synchronous code (settings, `Drop`) inside or outside a runtime.
/// Its failure fails the test, except in a clean-up while the test is already
/// failing: a second panic there would abort every test of the binary.
fn admin(statement: String) {
    let url = postgres_admin_url();
    let ran = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(async move {
            use sea_orm::ConnectionTrait;
            let mut options = sea_orm::ConnectOptions::new(url);
            options.sqlx_logging(false).max_connections(1);
            let db = sea_orm::Database::connect(options)
                .await
                .expect("PostgreSQL is reachable");
            db.execute_unprepared(&statement).await.expect("admin statement runs");
            let _ = db.close().await;
        })
    })
    .join();
    if ran.is_err() && !std::thread::panicking() {
        panic!("a PostgreSQL admin statement failed (above)");
    }
}

/// A fresh, empty database for one test; it is dropped with the test's app.
pub fn postgres_test_database() -> String {
    let name = format!("{TEST_DATABASE_PREFIX}{}", Uuid::new_v4().simple());
    admin(format!("CREATE DATABASE {name}"));
    with_database(&postgres_admin_url(), &name)
}

const KEPT_DATABASE_PREFIX: &str = "keymint_kept_";

/// A fresh, empty database that outlives the apps using it (for a test that
/// starts several on one database); [`drop_kept_database`] drops it.
pub fn postgres_kept_database() -> String {
    let name = format!("{KEPT_DATABASE_PREFIX}{}", Uuid::new_v4().simple());
    admin(format!("CREATE DATABASE {name}"));
    with_database(&postgres_admin_url(), &name)
}

/// Drops a database made by [`postgres_kept_database`].
pub fn drop_kept_database(url: &str) {
    if let Some(name) = url
        .rsplit('/')
        .next()
        .filter(|name| name.starts_with(KEPT_DATABASE_PREFIX))
    {
        admin(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
    }
}

/// Drops a database made by [`postgres_test_database`] (other URLs are ignored).
pub fn drop_test_database(url: &str) {
    if let Some(name) = url
        .rsplit('/')
        .next()
        .map(|tail| tail.split('?').next().unwrap_or(tail))
    {
        if name.starts_with(TEST_DATABASE_PREFIX) && url.starts_with("postgres") {
            admin(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
        }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        // Stop serving so the app's pools and listeners go away with it.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(self.handle.stop(false));
        }
        if let Some(url) = self.settings.database.url.sql() {
            drop_test_database(url.expose_secret());
        }
    }
}

pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    pub org_id: Uuid,
    pub settings: Settings,
    /// The SQLite file's directory, removed when the test ends.
    pub dir: TempDir,
    /// Stops the server gracefully.
    pub handle: actix_web::dev::ServerHandle,
    /// Ends when the server has stopped and flushed.
    task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

/// Cheap argon2 parameters: tests check behaviour, not cost.
pub fn test_settings(backend: Backend, dir: &TempDir) -> figment::Figment {
    let url = match backend {
        Backend::Memory => "memory:".to_owned(),
        Backend::Sqlite => format!("sqlite://{}/keymint.db", dir.path().display()),
        Backend::Postgres => postgres_test_database(),
    };
    Settings::defaults()
        .merge(("server.listen", "127.0.0.1:0"))
        .merge(("server.workers", 2))
        .merge(("database.url", url))
        .merge(("hashing.memory_kib", super::CHEAP_ARGON2.memory_kib))
        .merge(("hashing.iterations", super::CHEAP_ARGON2.iterations))
        .merge(("log.level", "warn"))
        // Verification counts go out with every usage flush, not once a minute.
        .merge(("analytics.flush_seconds", 1))
        // Tests deliver webhooks to receivers on 127.0.0.1, over http, and
        // retry within a second or two.
        .merge(("webhooks.allow_http", true))
        .merge(("webhooks.allow_private_targets", true))
        .merge(("webhooks.poll_interval_ms", 50))
        .merge(("webhooks.backoff_base_seconds", 1))
        .merge(("webhooks.backoff_cap_seconds", 2))
        .merge(("webhooks.sweep_interval_seconds", 1))
}

pub async fn spawn_app(backend: Backend) -> TestApp {
    let dir = tempfile::tempdir().expect("temp dir");
    spawn_app_with(test_settings(backend, &dir), dir).await
}

pub async fn spawn_app_with(figment: figment::Figment, dir: TempDir) -> TestApp {
    let settings = Settings::from_figment(figment).expect("test settings are valid");
    let app = keymint::Application::build(settings.clone()).await.expect("app builds");
    let address = format!("http://{}", app.address());
    let handle = app.handle();
    let task = tokio::spawn(app.run_until_stopped());
    TestApp {
        address,
        client: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            // Shorter than the server's keep-alive (actix's 5 s): a pooled
            // connection is never reused just as the server closes it, which
            // a slow step between two requests otherwise turns into an
            // IncompleteMessage.
            .pool_idle_timeout(std::time::Duration::from_secs(2))
            .build()
            .expect("client"),
        org_id: Uuid::new_v4(),
        settings,
        dir,
        handle,
        task: Some(task),
    }
}

impl TestApp {
    /// Stops the server gracefully and waits until it has flushed and closed.
    pub async fn stop(&mut self) {
        self.handle.stop(true).await;
        if let Some(task) = self.task.take() {
            task.await.expect("server task").expect("server stopped cleanly");
        }
    }

    pub fn hs256(&self) -> Hs256Config {
        self.settings.hs256()
    }

    /// A valid token for this test's organisation.
    pub fn token(&self) -> String {
        self.token_for(self.org_id)
    }

    pub fn token_for(&self, org_id: Uuid) -> String {
        DevTokenRequest {
            org_id,
            subject: "test-user".into(),
            ttl_seconds: 300,
        }
        .sign(&self.hs256(), unix_now())
        .expect("token signs")
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    /// POST a JSON value to the create route with a valid token.
    pub async fn create_key(&self, body: &Value) -> Response {
        self.client
            .post(self.url("/api/v2/api-keys"))
            .bearer_auth(self.token())
            .json(body)
            .send()
            .await
            .expect("request sent")
    }

    /// Creates a key named `name` and returns its response body.
    pub async fn create_named(&self, name: &str) -> Value {
        let response = self.create_key(&serde_json::json!({ "name": name })).await;
        assert_eq!(response.status().as_u16(), 201, "creating {name}");
        response.json().await.expect("JSON body")
    }

    /// Sends `method` to `path` with a valid token for `org_id` and an optional JSON body.
    pub async fn call_as(&self, org_id: Uuid, method: reqwest::Method, path: &str, body: Option<&Value>) -> Response {
        let mut request = self
            .client
            .request(method, self.url(path))
            .bearer_auth(self.token_for(org_id));
        if let Some(body) = body {
            request = request.json(body);
        }
        request.send().await.expect("request sent")
    }

    /// Sends `method` to `path` as this test's organisation.
    pub async fn call(&self, method: reqwest::Method, path: &str, body: Option<&Value>) -> Response {
        self.call_as(self.org_id, method, path, body).await
    }

    /// POST raw bytes with the given content type (or none) and a valid token.
    pub async fn post_raw(&self, path: &str, content_type: Option<&str>, body: impl Into<reqwest::Body>) -> Response {
        let mut request = self.client.post(self.url(path)).bearer_auth(self.token()).body(body);
        if let Some(content_type) = content_type {
            request = request.header("content-type", content_type);
        }
        request.send().await.expect("request sent")
    }
}

/// The JSON body of a response that must have `status`.
pub async fn json_of(response: Response, status: u16) -> Value {
    assert_eq!(response.status().as_u16(), status, "unexpected status");
    response.json().await.expect("a JSON body")
}

impl TestApp {
    /// `POST /api/v2/api-keys/verify` with `body` (no JWT), answering 200.
    pub async fn verify_with(&self, body: &Value) -> Value {
        let response = self
            .client
            .post(self.url("/api/v2/api-keys/verify"))
            .json(body)
            .send()
            .await
            .expect("the request is sent");
        json_of(response, 200).await
    }

    /// The verdict on `key`.
    pub async fn verify(&self, key: &str) -> Value {
        self.verify_with(&serde_json::json!({ "key": key })).await
    }
}

/// Reads an error body and checks its shape: `detail` plus a stable `code`.
pub async fn error_body(response: Response, status: u16, code: &str) -> Value {
    assert_eq!(response.status().as_u16(), status, "unexpected status");
    let body: Value = response.json().await.expect("error bodies are JSON");
    assert_eq!(body["code"], code, "{body}");
    assert!(body.get("detail").is_some(), "{body}");
    assert_eq!(
        body.as_object().map(|o| o.len()),
        Some(2),
        "only detail and code: {body}"
    );
    body
}

/// Runs each named scenario `async fn name(backend: Backend)` once per backend,
/// as tests `memory::name`, `sqlite::name` and `postgres::name`; the PostgreSQL
/// ones are ignored unless run with `--include-ignored` (CI does).
#[macro_export]
macro_rules! for_each_backend {
    ($($scenario:ident),* $(,)?) => {
        mod memory {
            $(
                #[tokio::test]
                async fn $scenario() {
                    super::$scenario($crate::support::Backend::Memory).await
                }
            )*
        }
        mod sqlite {
            $(
                #[tokio::test]
                async fn $scenario() {
                    super::$scenario($crate::support::Backend::Sqlite).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                #[ignore = "needs PostgreSQL: set KEYMINT_TEST_POSTGRES_URL"]
                async fn $scenario() {
                    super::$scenario($crate::support::Backend::Postgres).await
                }
            )*
        }
    };
}

/// Sends `total` verifications with `body` from `tasks` concurrent tasks, each
/// task spreading its requests over the Keymint processes at `bases` in turn,
/// and returns every answer.
pub async fn verify_storm(
    client: &reqwest::Client,
    bases: &[&str],
    body: &Value,
    total: usize,
    tasks: usize,
) -> Vec<Value> {
    let per_task = total / tasks;
    let runs = (0..tasks).map(|task| async move {
        let mut answers = Vec::with_capacity(per_task);
        for i in 0..per_task {
            let base = bases[(task + i) % bases.len()];
            let answer: Value = client
                .post(format!("{base}/api/v2/api-keys/verify"))
                .json(body)
                .send()
                .await
                .expect("request sent")
                .json()
                .await
                .expect("a JSON verdict");
            answers.push(answer);
        }
        answers
    });
    futures_util::future::join_all(runs)
        .await
        .into_iter()
        .flatten()
        .collect()
}
