use std::time::Duration;

use reqwest::Method;

use crate::for_each_backend;
use crate::support::{guess_at, spawn_app, spawn_app_with, test_settings, Backend, TestApp};

async fn scrape(app: &TestApp) -> String {
    let response = app.client.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    response.text().await.unwrap()
}

/// The value of the sample whose name and labels are exactly `series`.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .map(|value| value.parse().unwrap())
}

fn value(text: &str, series: &str) -> f64 {
    sample(text, series).unwrap_or_else(|| panic!("no {series} in\n{text}"))
}

async fn verify(app: &TestApp, key: &str) -> String {
    app.verify(key).await["code"].as_str().unwrap().to_owned()
}

async fn requests_verdicts_and_adapters_are_counted_without_key_material(backend: Backend) {
    let app = spawn_app(backend).await;
    let created = app.create_named("metered").await;
    let (id, private_key) = (
        created["id"].as_str().unwrap(),
        created["private_key"].as_str().unwrap(),
    );
    assert_eq!(verify(&app, private_key).await, "VALID");
    assert_eq!(verify(&app, private_key).await, "VALID");
    assert_ne!(verify(&app, &guess_at(private_key)).await, "VALID");
    app.call(Method::GET, &format!("/api/v2/api-keys/{id}"), None).await;
    app.call(Method::GET, &format!("/api/v2/api-keys/{id}/"), None).await;
    app.call(Method::GET, "/no/such/path/sk_live_NotAKeyButLooksLikeOne", None)
        .await;
    app.call(Method::from_bytes(b"BREW").unwrap(), "/api/v2/api-keys", None)
        .await;

    let text = scrape(&app).await;
    let route = |method: &str, route: &str, status: u16| {
        value(
            &text,
            &format!("keymint_http_requests_total{{method=\"{method}\",route=\"{route}\",status=\"{status}\"}}"),
        )
    };
    assert_eq!(route("POST", "/api/v2/api-keys", 201), 1.0);
    assert_eq!(route("POST", "/api/v2/api-keys/verify", 200), 3.0);
    assert_eq!(
        route("GET", "/api/v2/api-keys/{key_id}", 200),
        2.0,
        "both spellings, one series"
    );
    assert_eq!(route("GET", "unmatched", 404), 1.0);
    assert_eq!(route("OTHER", "/api/v2/api-keys", 405), 1.0);
    assert_eq!(
        value(
            &text,
            "keymint_http_request_duration_seconds_count{method=\"POST\",route=\"/api/v2/api-keys/verify\"}"
        ),
        3.0
    );
    assert_eq!(value(&text, "keymint_verifications_total{code=\"VALID\"}"), 2.0);
    let failed: f64 = text
        .lines()
        .filter(|l| l.starts_with("keymint_verifications_total{") && !l.contains("VALID\""))
        .map(|l| l.rsplit(' ').next().unwrap().parse::<f64>().unwrap())
        .sum();
    assert_eq!(failed, 1.0, "{text}");
    assert_eq!(value(&text, "keymint_verification_cache_hits_total"), 1.0);
    assert!(value(&text, "keymint_verification_cache_misses_total") >= 2.0);
    assert_eq!(value(&text, "keymint_verification_cache_entries"), 1.0);
    assert!(value(&text, "keymint_hashing_permits") >= 1.0);
    assert_eq!(value(&text, "keymint_hashing_permits_in_use"), 0.0);
    // The first verification and the guess were compared with the stored
    // SHA-256; nothing needed argon2.
    assert_eq!(value(&text, "keymint_key_hash_checks_total{algorithm=\"sha256\"}"), 2.0);
    assert_eq!(
        value(&text, "keymint_key_hash_checks_total{algorithm=\"argon2id\"}"),
        0.0
    );
    assert_eq!(value(&text, "keymint_key_rehashes_total{outcome=\"ok\"}"), 0.0);
    assert_eq!(value(&text, "keymint_hashing_queue_wait_seconds_count"), 0.0);
    assert!(value(&text, "process_resident_memory_bytes") > 0.0);
    if backend == Backend::Memory {
        assert!(!text.contains("keymint_db_pool"), "no pools in memory");
    } else {
        assert!(value(&text, "keymint_db_errors_total{kind=\"unavailable\"}") == 0.0);
        assert!(text.contains("keymint_db_pool_connections_max{pool="), "{text}");
    }
    // What a label could leak: the key, its id, the path a client made up, the token.
    for secret in [
        private_key,
        &private_key[private_key.len() - 20..],
        id,
        "NotAKey",
        &app.token(),
    ] {
        assert!(!text.contains(secret), "{secret} reached the metrics");
    }
}

async fn usage_flushes_are_counted(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let app = spawn_app_with(
        test_settings(backend, &dir).merge(("verify.usage_flush_seconds", 1)),
        dir,
    )
    .await;
    let created = app.create_named("used").await;
    assert_eq!(verify(&app, created["private_key"].as_str().unwrap()).await, "VALID");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let text = scrape(&app).await;
        if sample(&text, "keymint_usage_keys_written_total") == Some(1.0) {
            assert_eq!(value(&text, "keymint_usage_flushes_total{outcome=\"ok\"}"), 1.0);
            assert_eq!(value(&text, "keymint_usage_pending_keys"), 0.0);
            // The verification's count went out with the same flush.
            assert_eq!(value(&text, "keymint_analytics_pending_buckets"), 0.0);
            assert_eq!(value(&text, "keymint_analytics_dropped_verifications_total"), 0.0);
            // One bucket, in one timed write.
            assert_eq!(value(&text, "keymint_analytics_buckets_written_total"), 1.0);
            assert_eq!(value(&text, "keymint_analytics_write_seconds_count"), 1.0);
            assert!(value(&text, "keymint_analytics_write_seconds_sum") > 0.0, "{text}");
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "no flush counted:\n{text}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

for_each_backend!(
    requests_verdicts_and_adapters_are_counted_without_key_material,
    usage_flushes_are_counted,
);

#[tokio::test]
async fn spent_failure_budgets_are_counted_by_budget() {
    let dir = tempfile::tempdir().unwrap();
    let settings = test_settings(Backend::Memory, &dir).merge(("verify.max_failures_per_key", 1));
    let app = spawn_app_with(settings, dir).await;
    let created = app.create_named("guessed").await;
    let key = created["private_key"].as_str().unwrap();
    for _ in 0..3 {
        assert_ne!(verify(&app, &guess_at(key)).await, "VALID");
    }
    let text = scrape(&app).await;
    assert_eq!(
        value(&text, "keymint_failure_budget_refusals_total{budget=\"client_key\"}"),
        2.0
    );
    assert_eq!(
        value(&text, "keymint_failure_budget_refusals_total{budget=\"client\"}"),
        0.0
    );
    assert_eq!(
        value(&text, "keymint_key_hash_checks_total{algorithm=\"sha256\"}"),
        1.0,
        "the one guess within budget was checked; refusals were not"
    );
}

#[tokio::test]
async fn scrapers_that_ask_for_openmetrics_get_it() {
    let app = spawn_app(Backend::Memory).await;
    let response = app
        .client
        .get(app.url("/metrics"))
        .header(
            "accept",
            "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.headers()["content-type"],
        "application/openmetrics-text; version=1.0.0; charset=utf-8"
    );
    let text = response.text().await.unwrap();
    assert!(text.ends_with("# EOF\n"), "{text}");
    let head = app.client.head(app.url("/metrics/")).send().await.unwrap();
    assert_eq!(head.status().as_u16(), 200);
    let post = app.client.post(app.url("/metrics")).send().await.unwrap();
    assert_eq!(post.status().as_u16(), 405);
}

#[tokio::test]
async fn metrics_on_their_own_address_are_not_on_the_api_listener() {
    let dir = tempfile::tempdir().unwrap();
    let settings =
        keymint::Settings::from_figment(test_settings(Backend::Memory, &dir).merge(("metrics.listen", "127.0.0.1:0")))
            .unwrap();
    let app = keymint::Application::build(settings).await.unwrap();
    let (api, metrics) = (app.address(), app.metrics_address().expect("a metrics listener"));
    assert_ne!(api, metrics);
    let handle = app.handle();
    let task = tokio::spawn(app.run_until_stopped());
    let client = reqwest::Client::new();
    let on_api = client.get(format!("http://{api}/metrics")).send().await.unwrap();
    assert_eq!(on_api.status().as_u16(), 404);
    let scraped = client.get(format!("http://{metrics}/metrics")).send().await.unwrap();
    assert_eq!(scraped.status().as_u16(), 200);
    let text = scraped.text().await.unwrap();
    assert!(text.contains("keymint_hashing_permits"), "{text}");
    let elsewhere = client
        .get(format!("http://{metrics}/api/v2/api-keys"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        elsewhere.status().as_u16(),
        404,
        "the metrics listener serves nothing else"
    );
    handle.stop(true).await;
    task.await.unwrap().unwrap();
    assert!(
        client.get(format!("http://{metrics}/metrics")).send().await.is_err(),
        "the metrics listener stops with the service"
    );
}

#[tokio::test]
async fn disabled_metrics_are_not_served() {
    let dir = tempfile::tempdir().unwrap();
    let app = spawn_app_with(
        test_settings(Backend::Memory, &dir).merge(("metrics.enabled", false)),
        dir,
    )
    .await;
    let response = app.client.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 404);
}

#[tokio::test]
#[ignore = "needs PostgreSQL: set KEYMINT_TEST_POSTGRES_URL"]
async fn another_process_s_changes_are_counted_with_their_lag() {
    let dir = tempfile::tempdir().unwrap();
    let first = spawn_app(Backend::Postgres).await;
    let url = first.settings.database.url.sql().unwrap().expose_secret().to_owned();
    let second = spawn_app_with(test_settings(Backend::Memory, &dir).merge(("database.url", url)), dir).await;
    let before = scrape(&second).await;
    assert_eq!(value(&before, "keymint_key_change_listener_up"), 1.0);
    assert_eq!(value(&before, "keymint_key_change_notifications_total"), 0.0);
    let created = first.create_named("watched").await;
    let id = created["id"].as_str().unwrap();
    let revoked = first
        .call(Method::PUT, &format!("/api/v2/api-keys/{id}/revoke"), None)
        .await;
    assert_eq!(revoked.status().as_u16(), 200);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let text = scrape(&second).await;
        if sample(&text, "keymint_key_change_notifications_total") == Some(1.0) {
            assert_eq!(value(&text, "keymint_key_change_notification_lag_seconds_count"), 1.0);
            assert!(value(&text, "keymint_key_change_notification_lag_seconds_sum") < 5.0);
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no notification counted:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn webhook_attempts_and_leak_reports_are_counted_by_outcome() {
    let app = spawn_app(Backend::Sqlite).await;
    let receiver = crate::support::receiver::Receiver::start().await;
    receiver.answer(&[500]);
    let webhook = app
        .call(
            Method::POST,
            "/api/v2/webhooks",
            Some(&serde_json::json!({"url": receiver.url, "event_types": ["key.created", "key.leaked"]})),
        )
        .await;
    assert_eq!(webhook.status().as_u16(), 201);
    let key = app.create_named("counted").await;
    let leaked = key["private_key"].as_str().unwrap();
    for body in [
        serde_json::json!({"key": leaked}),
        serde_json::json!({"key": "sk_live_nope"}),
    ] {
        let report = app
            .client
            .post(app.url("/api/v2/api-keys/revoke-leaked"))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(report.status().as_u16(), 202);
    }
    // key.created fails once and is delivered on retry; then key.leaked.
    receiver.wait_for(3, Duration::from_secs(20)).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let text = loop {
        let text = scrape(&app).await;
        if sample(&text, "keymint_webhook_attempts_total{outcome=\"delivered\"}") == Some(2.0) {
            break text;
        }
        assert!(std::time::Instant::now() < deadline, "{text}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(value(&text, "keymint_webhook_attempts_total{outcome=\"retry\"}"), 1.0);
    assert_eq!(value(&text, "keymint_webhook_attempts_total{outcome=\"failed\"}"), 0.0);
    assert_eq!(
        value(
            &text,
            "keymint_leak_reports_total{reporter=\"holder\",verdict=\"genuine\"}"
        ),
        1.0
    );
    assert_eq!(
        value(
            &text,
            "keymint_leak_reports_total{reporter=\"holder\",verdict=\"not_ours\"}"
        ),
        1.0
    );
    assert!(!text.contains(&leaked[25..]));
}
