//! PostgreSQL going away and coming back, through a TCP proxy the test controls:
//! bounded 503s with Retry-After (never another 5xx), a failing readiness probe,
//! recovery without a restart, and no acknowledged create lost or half written.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use reqwest::Method;
use serde_json::{json, Value};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use crate::support::{postgres_test_database, spawn_app_with, test_settings, Backend};

/// A TCP proxy that can cut every connection and refuse new ones, then restore.
struct ChaosProxy {
    port: u16,
    up: Arc<AtomicBool>,
    connections: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl ChaosProxy {
    async fn start(upstream: String) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let up = Arc::new(AtomicBool::new(true));
        let connections: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let (accept_up, accept_connections) = (up.clone(), connections.clone());
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if !accept_up.load(Ordering::SeqCst) {
                    drop(inbound);
                    continue;
                }
                let upstream = upstream.clone();
                let task = tokio::spawn(async move {
                    if let Ok(mut outbound) = TcpStream::connect(upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                accept_connections.lock().unwrap().push(task);
            }
        });
        Self { port, up, connections }
    }

    fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        for task in self.connections.lock().unwrap().drain(..) {
            task.abort();
        }
    }

    fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

fn through(url: &str, port: u16) -> String {
    // postgres://user@host:port/db?query -> the same with the proxy's port.
    let (scheme, rest) = url.split_once("://").unwrap();
    let (authority, path) = rest.split_once('/').unwrap();
    let (user, _) = authority.rsplit_once('@').map_or(("", authority), |(u, h)| (u, h));
    let user = if user.is_empty() {
        String::new()
    } else {
        format!("{user}@")
    };
    format!("{scheme}://{user}127.0.0.1:{port}/{path}")
}

#[tokio::test]
#[ignore = "needs PostgreSQL: set KEYMINT_TEST_POSTGRES_URL"]
async fn losing_postgres_gives_bounded_503s_and_recovery_without_losing_acknowledged_creates() {
    let direct = postgres_test_database();
    let proxy = ChaosProxy::start("127.0.0.1:5432".to_owned()).await;
    let dir = tempfile::tempdir().unwrap();
    let figment = test_settings(Backend::Memory, &dir)
        .merge(("database.url", through(&direct, proxy.port)))
        .merge(("database.connect_timeout_seconds", 1))
        .merge(("database.acquire_timeout_seconds", 1))
        .merge(("keys.max_active_per_org", 10_000));
    let app = spawn_app_with(figment, dir).await;
    let acknowledged = Arc::new(Mutex::new(Vec::<String>::new()));

    let create = |i: usize| {
        let (app, acknowledged) = (&app, acknowledged.clone());
        async move {
            let response = app.create_key(&json!({ "name": format!("chaos-{i}") })).await;
            let status = response.status().as_u16();
            let retry_after = response.headers().get("retry-after").is_some();
            let body: Value = response.json().await.unwrap();
            if status == 201 {
                acknowledged
                    .lock()
                    .unwrap()
                    .push(body["id"].as_str().unwrap().to_owned());
            }
            (status, retry_after, body)
        }
    };

    for (status, _, _) in join_all((0..20).map(create)).await {
        assert_eq!(status, 201);
    }
    let cached = app.create_named("cached").await;
    let cached_key = cached["private_key"].as_str().unwrap().to_owned();
    let verify = |key: String| {
        let app = &app;
        async move {
            let response = app
                .client
                .post(app.url("/api/v2/api-keys/verify"))
                .json(&json!({ "key": key }))
                .send()
                .await
                .unwrap();
            let status = response.status().as_u16();
            (status, response.json::<Value>().await.unwrap())
        }
    };
    assert_eq!(verify(cached_key.clone()).await.1["code"], "VALID");

    // Mid-load: creates in flight while the database disappears.
    let in_flight = tokio::spawn({
        let acknowledged = acknowledged.clone();
        let url = app.url("/api/v2/api-keys");
        let (client, token) = (app.client.clone(), app.token());
        async move {
            let mut statuses = Vec::new();
            for i in 0..40 {
                let response = client
                    .post(&url)
                    .bearer_auth(&token)
                    .json(&json!({ "name": format!("mid-{i}") }))
                    .send()
                    .await
                    .unwrap();
                let status = response.status().as_u16();
                let body: Value = response.json().await.unwrap();
                if status == 201 {
                    acknowledged
                        .lock()
                        .unwrap()
                        .push(body["id"].as_str().unwrap().to_owned());
                }
                statuses.push(status);
            }
            statuses
        }
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    proxy.cut();

    let started = Instant::now();
    for (status, retry_after, body) in join_all((100..110).map(create)).await {
        assert_eq!(status, 503, "{body}");
        assert!(retry_after);
        assert_eq!(body["code"], "storage_unavailable");
    }
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "answers are bounded in time: {:?}",
        started.elapsed()
    );
    let ready = app.client.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status().as_u16(), 503);
    let listed = app.call(Method::GET, "/api/v2/api-keys", None).await;
    assert_eq!(listed.status().as_u16(), 503);
    let (status, verdict) = verify(cached_key.clone()).await;
    assert_eq!(
        (status, verdict["code"].as_str()),
        (200, Some("VALID")),
        "cached keys keep verifying"
    );
    let uncached = keymint_domain::KeyMaterial::generate(keymint_domain::Environment::Live, &mut rand_core::OsRng);
    let (status, body) = verify(uncached.private_key().expose_secret().to_owned()).await;
    assert_eq!((status, body["code"].as_str()), (503, Some("storage_unavailable")));

    for status in in_flight.await.unwrap() {
        assert!(status == 201 || status == 503, "no 5xx but 503: {status}");
    }
    // Operators see it: the failed statements are counted as unavailability.
    let metrics = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let unavailable: f64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("keymint_db_errors_total{kind=\"unavailable\"} "))
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        unavailable >= 13.0,
        "10 creates, the probe, the list, the verify: {unavailable}"
    );

    proxy.restore();
    let recovered = Instant::now();
    loop {
        let ready = app.client.get(app.url("/readyz")).send().await.unwrap();
        if ready.status().as_u16() == 200 {
            break;
        }
        assert!(
            recovered.elapsed() < Duration::from_secs(15),
            "Keymint recovers by itself"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    for (status, _, body) in join_all((200..210).map(create)).await {
        assert_eq!(status, 201, "{body}");
    }

    // Straight to the database: every acknowledged create is there, whole.
    let db = keymint_infrastructure::sql::connect(&direct.parse().unwrap(), &Default::default())
        .await
        .unwrap();
    use sea_orm::{ConnectionTrait, Statement};
    let ids: std::collections::HashSet<String> = db
        .read
        .query_all(Statement::from_string(
            db.read.get_database_backend(),
            "SELECT id::text AS id FROM api_keys",
        ))
        .await
        .unwrap()
        .into_iter()
        .map(|row| row.try_get::<String>("", "id").unwrap())
        .collect();
    for id in acknowledged.lock().unwrap().iter() {
        assert!(ids.contains(id), "acknowledged key {id} was lost");
    }
    let orphans = db
        .read
        .query_one(Statement::from_string(
            db.read.get_database_backend(),
            "SELECT count(*) AS n FROM api_keys k WHERE NOT EXISTS \
             (SELECT 1 FROM api_key_events e WHERE e.key_id = k.id AND e.action = 'created')",
        ))
        .await
        .unwrap()
        .unwrap()
        .try_get::<i64>("", "n")
        .unwrap();
    assert_eq!(orphans, 0, "no key without its audit record: nothing half written");
    db.close().await;
}
