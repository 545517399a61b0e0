//! Webhooks end to end, with a real local receiver: management, signed
//! deliveries of every key event, retries with backoff, ordering per key, and
//! the guards on where deliveries may go.

use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Value};

use crate::for_each_backend;
use crate::support::receiver::{signature_is_valid, Receiver, FOLLOWED_REDIRECT};
use crate::support::{error_body, json_of, spawn_app, spawn_app_with, test_settings, Backend, TestApp};

const WAIT: Duration = Duration::from_secs(20);

async fn create_webhook(app: &TestApp, body: Value) -> Value {
    let response = app.call(Method::POST, "/api/v2/webhooks", Some(&body)).await;
    assert_eq!(response.status().as_u16(), 201, "{body}");
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let created: Value = response.json().await.unwrap();
    assert_eq!(
        location,
        format!("/api/v2/webhooks/{}", created["id"].as_str().unwrap())
    );
    created
}

async fn deliveries(app: &TestApp, webhook: &Value) -> Vec<Value> {
    let path = format!("/api/v2/webhooks/{}/deliveries", webhook["id"].as_str().unwrap());
    json_of(app.call(Method::GET, &path, None).await, 200)
        .await
        .as_array()
        .unwrap()
        .clone()
}

/// Waits until every delivery of the webhook is settled (delivered or failed).
async fn settled(app: &TestApp, webhook: &Value, count: usize) -> Vec<Value> {
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let found = deliveries(app, webhook).await;
        if found.len() >= count && found.iter().all(|d| d["status"] != "pending") {
            return found;
        }
        assert!(std::time::Instant::now() < deadline, "not settled: {found:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn webhooks_are_managed_and_show_their_secret_once(backend: Backend) {
    let app = spawn_app(backend).await;
    let created = create_webhook(&app, json!({"url": "https://hooks.example.com/keymint"})).await;
    let secret = created["secret"].as_str().unwrap();
    assert!(secret.starts_with("whsec_") && secret.len() > 40, "{created}");
    assert_eq!(created["enabled"], true);
    assert_eq!(
        created["event_types"].as_array().unwrap().len(),
        8,
        "every type by default"
    );
    let id = created["id"].as_str().unwrap();
    let path = format!("/api/v2/webhooks/{id}");

    let read = json_of(app.call(Method::GET, &path, None).await, 200).await;
    assert!(read.get("secret").is_none(), "{read}");
    assert!(!read.to_string().contains(&secret[6..]));
    let listed = json_of(app.call(Method::GET, "/api/v2/webhooks", None).await, 200).await;
    assert_eq!(listed.as_array().unwrap().len(), 1);
    assert!(!listed.to_string().contains(&secret[6..]));

    let patched = json_of(
        app.call(
            Method::PATCH,
            &path,
            Some(&json!({"event_types": ["key.revoked", "key.leaked", "key.revoked"], "enabled": false})),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(patched["event_types"], json!(["key.revoked", "key.leaked"]));
    assert_eq!(patched["enabled"], false);
    assert_eq!(patched["url"], "https://hooks.example.com/keymint");

    let rotated = json_of(
        app.call(Method::POST, &format!("{path}/rotate-secret"), None).await,
        200,
    )
    .await;
    assert_ne!(rotated["secret"], created["secret"]);
    assert!(rotated["secret"].as_str().unwrap().starts_with("whsec_"));

    // Another organisation sees nothing and changes nothing.
    let stranger = uuid::Uuid::new_v4();
    assert_eq!(app.call_as(stranger, Method::GET, &path, None).await.status(), 404);
    assert_eq!(app.call_as(stranger, Method::DELETE, &path, None).await.status(), 404);
    let theirs = json_of(app.call_as(stranger, Method::GET, "/api/v2/webhooks", None).await, 200).await;
    assert_eq!(theirs, json!([]));

    assert_eq!(app.call(Method::DELETE, &path, None).await.status(), 204);
    error_body(app.call(Method::GET, &path, None).await, 404, "not_found").await;
    error_body(
        app.call(Method::GET, "/api/v2/webhooks/not-a-uuid", None).await,
        422,
        "validation_error",
    )
    .await;
}

async fn webhook_bodies_are_checked_field_by_field(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let app = spawn_app_with(
        test_settings(backend, &dir)
            .merge(("webhooks.allow_http", false))
            .merge(("webhooks.max_per_org", 2)),
        dir,
    )
    .await;
    for (body, loc) in [
        (json!({}), json!(["body", "url"])),
        (json!({"url": "http://hooks.example.com/"}), json!(["body", "url"])),
        (
            json!({"url": "https://user:pw@hooks.example.com/"}),
            json!(["body", "url"]),
        ),
        (json!({"url": "ftp://hooks.example.com/"}), json!(["body", "url"])),
        (
            json!({"url": format!("https://e.test/{}", "a".repeat(2100))}),
            json!(["body", "url"]),
        ),
        (
            json!({"url": "https://e.test/", "event_types": []}),
            json!(["body", "event_types"]),
        ),
        (
            json!({"url": "https://e.test/", "event_types": ["key.viewed"]}),
            json!(["body", "event_types", "0"]),
        ),
        (
            json!({"url": "https://e.test/", "event_types": "key.created"}),
            json!(["body", "event_types"]),
        ),
        (
            json!({"url": "https://e.test/", "enabled": "yes"}),
            json!(["body", "enabled"]),
        ),
        (
            json!({"url": "https://e.test/", "secret": "whsec_mine"}),
            json!(["body", "secret"]),
        ),
    ] {
        let response = app.call(Method::POST, "/api/v2/webhooks", Some(&body)).await;
        let error = error_body(response, 422, "validation_error").await;
        assert_eq!(error["detail"][0]["loc"], loc, "{body}: {error}");
    }
    let first = create_webhook(&app, json!({"url": "https://e.test/1"})).await;
    create_webhook(&app, json!({"url": "https://e.test/2", "event_types": ["key.created"]})).await;
    let third = app
        .call(
            Method::POST,
            "/api/v2/webhooks",
            Some(&json!({"url": "https://e.test/3"})),
        )
        .await;
    error_body(third, 409, "webhook_limit_reached").await;
    let path = format!("/api/v2/webhooks/{}", first["id"].as_str().unwrap());
    error_body(
        app.call(Method::PATCH, &path, Some(&json!({}))).await,
        422,
        "validation_error",
    )
    .await;
    let bad = app
        .call(Method::PATCH, &path, Some(&json!({"url": "http://e.test/"})))
        .await;
    error_body(bad, 422, "validation_error").await;
    let unchanged = json_of(app.call(Method::GET, &path, None).await, 200).await;
    assert_eq!(unchanged["url"], "https://e.test/1", "a refused change changes nothing");
}

async fn every_key_event_is_delivered_signed_in_order_with_public_fields_only(backend: Backend) {
    let app = spawn_app(backend).await;
    let receiver = Receiver::start().await;
    let webhook = create_webhook(&app, json!({"url": receiver.url})).await;
    let secret = webhook["secret"].as_str().unwrap().to_owned();

    let key = json_of(
        app.create_key(&json!({"name": "hooked", "credits": {"remaining": 10}}))
            .await,
        201,
    )
    .await;
    let id = key["id"].as_str().unwrap();
    let sk = key["private_key"].as_str().unwrap().to_owned();
    let path = format!("/api/v2/api-keys/{id}");
    json_of(
        app.call(Method::PATCH, &path, Some(&json!({"name": "renamed"}))).await,
        200,
    )
    .await;
    json_of(
        app.call(
            Method::POST,
            &format!("{path}/credits"),
            Some(&json!({"op": "decrement", "value": 3})),
        )
        .await,
        200,
    )
    .await;
    let rotated = json_of(
        app.call(Method::POST, &format!("{path}/rotate"), Some(&json!({})))
            .await,
        200,
    )
    .await;
    let leaked = rotated["private_key"].as_str().unwrap();
    let report = app
        .client
        .post(app.url("/api/v2/api-keys/revoke-leaked"))
        .json(&json!({"key": leaked}))
        .send()
        .await
        .unwrap();
    assert_eq!(report.status(), 202);
    assert_eq!(app.call(Method::DELETE, &path, None).await.status(), 204);

    let received = receiver.wait_for(6, WAIT).await;
    let types: Vec<Value> = received.iter().map(|r| r.json()["type"].clone()).collect();
    assert_eq!(
        types,
        [
            "key.created",
            "key.updated",
            "key.updated",
            "key.rotated",
            "key.leaked",
            "key.deleted"
        ],
        "in the order the changes were made"
    );
    for delivery in &received {
        assert!(signature_is_valid(&secret, delivery), "{delivery:?}");
        let body = delivery.json();
        assert_eq!(body.as_object().unwrap().len(), 3, "{body}");
        assert_eq!(body["data"]["id"], id);
        assert!(body["timestamp"].is_string());
        for secret_text in [&sk, leaked, &secret] {
            assert!(
                !delivery.body.contains(&secret_text[8..]),
                "no key material: {}",
                delivery.body
            );
        }
        assert!(!delivery.body.contains("argon2"), "no hash: {}", delivery.body);
    }
    assert_eq!(received[1].json()["data"]["name"], "renamed");
    assert_eq!(received[2].json()["data"]["credits"], json!({"remaining": 7}));
    assert_eq!(received[4].json()["data"]["is_revoked"], true);
    assert!(received[4].json()["data"]["leaked_at"].is_string());

    // The deliveries API tells the same story, newest first, with the ids sent.
    let listed = settled(&app, &webhook, 6).await;
    let ids: Vec<&str> = listed.iter().rev().map(|d| d["id"].as_str().unwrap()).collect();
    let sent: Vec<&str> = received.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids, sent);
    for delivery in &listed {
        assert_eq!(delivery["status"], "delivered");
        assert_eq!(delivery["key_id"], id);
        assert_eq!(delivery["attempts"].as_array().unwrap().len(), 1);
        assert_eq!(delivery["attempts"][0]["status_code"], 200);
        assert!(delivery["attempts"][0]["latency_ms"].is_u64());
    }
}

async fn failed_attempts_are_retried_with_backoff_then_marked_failed_and_resent_on_request(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let app = spawn_app_with(test_settings(backend, &dir).merge(("webhooks.max_attempts", 3)), dir).await;
    let receiver = Receiver::start().await;
    let webhook = create_webhook(&app, json!({"url": receiver.url, "event_types": ["key.created"]})).await;

    receiver.answer(&[500, 503]);
    app.create_named("flaky").await;
    let received = receiver.wait_for(3, WAIT).await;
    assert!(
        received.iter().all(|r| r.id == received[0].id),
        "one webhook-id for every attempt"
    );
    // Equal jitter: each retry waits at least half its full delay (1 s, then 2 s).
    assert!(received[1].at - received[0].at >= Duration::from_millis(500));
    assert!(received[2].at - received[1].at >= Duration::from_millis(1000));
    let delivered = settled(&app, &webhook, 1).await;
    let codes: Vec<&Value> = delivered[0]["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| &a["status_code"])
        .collect();
    assert_eq!(codes, [&json!(500), &json!(503), &json!(200)]);
    assert_eq!(delivered[0]["status"], "delivered");

    receiver.answer(&[500, 500, 500]);
    app.create_named("doomed").await;
    let failed = settled(&app, &webhook, 2).await;
    assert_eq!(failed[0]["status"], "failed", "{failed:?}");
    assert_eq!(failed[0]["attempts"].as_array().unwrap().len(), 3);
    assert_eq!(failed[0]["next_attempt_at"], Value::Null);

    let retry_path = format!(
        "/api/v2/webhooks/{}/deliveries/{}/retry",
        webhook["id"].as_str().unwrap(),
        failed[0]["id"].as_str().unwrap()
    );
    let queued = json_of(app.call(Method::POST, &retry_path, None).await, 202).await;
    assert_eq!(queued["status"], "pending");
    let resent = settled(&app, &webhook, 2).await;
    assert_eq!(resent[0]["status"], "delivered");
    assert_eq!(resent[0]["attempts"].as_array().unwrap().len(), 4);
    let last = receiver.received().last().unwrap().clone();
    assert_eq!(
        last.id,
        failed[0]["id"].as_str().unwrap(),
        "resent with the same webhook-id"
    );
    let unknown = format!(
        "/api/v2/webhooks/{}/deliveries/{}/retry",
        webhook["id"].as_str().unwrap(),
        uuid::Uuid::new_v4()
    );
    error_body(app.call(Method::POST, &unknown, None).await, 404, "not_found").await;
}

async fn a_slow_endpoint_times_out_and_a_key_waits_for_its_earlier_events(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let app = spawn_app_with(test_settings(backend, &dir).merge(("webhooks.timeout_seconds", 1)), dir).await;
    let receiver = Receiver::start().await;
    let webhook = create_webhook(&app, json!({"url": receiver.url})).await;
    receiver.delay(Duration::from_secs(3));
    let key = app.create_named("ordered").await;
    let path = format!("/api/v2/api-keys/{}", key["id"].as_str().unwrap());
    for name in ["second", "third"] {
        json_of(app.call(Method::PATCH, &path, Some(&json!({"name": name}))).await, 200).await;
    }
    receiver.wait_for(1, WAIT).await;
    // While the first event is unanswered, the key's later events wait.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(receiver.received().len(), 1);
    receiver.delay(Duration::ZERO);
    let listed = settled(&app, &webhook, 3).await;
    let first = listed.last().unwrap();
    assert_eq!(first["attempts"][0]["error"], "timed out", "{first}");
    assert_eq!(first["attempts"][0]["status_code"], Value::Null);
    let received = receiver.received();
    let delivered_names: Vec<Value> = received
        .iter()
        .skip(1)
        .map(|r| r.json()["data"]["name"].clone())
        .collect();
    assert_eq!(delivered_names, ["ordered", "second", "third"]);
}

async fn deliveries_never_reach_private_addresses_unless_allowed_nor_follow_redirects(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let app = spawn_app_with(
        test_settings(backend, &dir)
            .merge(("webhooks.allow_private_targets", false))
            .merge(("webhooks.max_attempts", 1)),
        dir,
    )
    .await;
    let receiver = Receiver::start().await;
    let port = receiver
        .url
        .split(':')
        .nth(2)
        .unwrap()
        .split('/')
        .next()
        .unwrap()
        .to_owned();
    // Every spelling that can be judged without DNS is refused when it is
    // registered, naming the field: no delivery could ever succeed.
    for host in [
        "127.0.0.1".to_owned(),
        "localhost".to_owned(),
        "LOCALHOST.".to_owned(),
        "api.localhost".to_owned(),
        "[::ffff:127.0.0.1]".to_owned(),
        "0x7f.1".to_owned(),
        "2130706433".to_owned(),
        "[2002:7f00:1::]".to_owned(),
        "[64:ff9b::a9fe:a9fe]".to_owned(),
        "[2001:0:4136:e378:8000:63bf:80ff:fffe]".to_owned(),
        "169.254.169.254".to_owned(),
        "[fd00::1]".to_owned(),
    ] {
        let url = format!("http://{host}:{port}/hooks");
        let response = app
            .call(Method::POST, "/api/v2/webhooks", Some(&json!({"url": url})))
            .await;
        let body = error_body(response, 422, "validation_error").await;
        assert_eq!(body["detail"][0]["loc"], json!(["body", "url"]), "{url}: {body}");
        assert!(
            body["detail"][0]["msg"].as_str().unwrap().contains("private"),
            "{url}: {body}"
        );
    }
    // A name is judged after resolution: one that resolves only to loopback is
    // refused by the sender, attempt by attempt.
    let sender = keymint_infrastructure::HttpWebhookSender::new(
        Duration::from_secs(2),
        false,
        std::sync::Arc::new(keymint_infrastructure::SystemClock),
    )
    .unwrap();
    for url in [
        receiver.url.clone(),
        format!("http://[::ffff:127.0.0.1]:{port}/hooks"),
        format!("http://localhost:{port}/hooks"),
    ] {
        let url = keymint_domain::WebhookUrl::parse(&url, true).unwrap();
        let attempt = keymint_application::WebhookSender::send(&sender, &url, &[], "{}").await;
        let error = attempt.error.unwrap_or_default();
        assert!(error.contains("private, loopback or link-local"), "{error}");
    }
    let public = create_webhook(&app, json!({"url": "https://hooks.example.com/keymint"})).await;
    assert_eq!(public["health"]["state"], "healthy");
    assert!(receiver.received().is_empty(), "nothing reached the private address");

    let open = spawn_app(backend).await;
    let redirected = create_webhook(&open, json!({"url": receiver.url, "event_types": ["key.created"]})).await;
    receiver.answer(&[302]);
    open.create_named("redirected").await;
    receiver.wait_for(1, WAIT).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let attempts = deliveries(&open, &redirected).await[0]["attempts"].clone();
    assert_eq!(attempts[0]["status_code"], 302, "{attempts}");
    let received = receiver.received();
    assert!(
        received.iter().all(|r| r.body != FOLLOWED_REDIRECT),
        "the redirect was not followed"
    );
}

async fn expiring_and_low_credit_keys_are_announced_once(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let app = spawn_app_with(
        test_settings(backend, &dir).merge(("webhooks.credits_low_threshold", 5)),
        dir,
    )
    .await;
    let receiver = Receiver::start().await;
    create_webhook(
        &app,
        json!({"url": receiver.url, "event_types": ["key.expiring", "key.credits_low"]}),
    )
    .await;
    let in_days = |days: i64| (chrono::Utc::now() + chrono::Duration::days(days)).to_rfc3339();
    let soon = json_of(
        app.create_key(&json!({"name": "soon", "expires_at": in_days(3)})).await,
        201,
    )
    .await;
    json_of(
        app.create_key(&json!({"name": "later", "expires_at": in_days(30)}))
            .await,
        201,
    )
    .await;
    let spending = json_of(
        app.create_key(&json!({"name": "spending", "credits": {"remaining": 8}}))
            .await,
        201,
    )
    .await;
    let low = json_of(
        app.create_key(&json!({"name": "low", "credits": {"remaining": 3}}))
            .await,
        201,
    )
    .await;

    let first = receiver.wait_for(2, WAIT).await;
    let mut seen: Vec<(String, String)> = first
        .iter()
        .map(|r| {
            (
                r.json()["type"].as_str().unwrap().to_owned(),
                r.json()["data"]["name"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    seen.sort();
    assert_eq!(
        seen,
        [
            ("key.credits_low".to_owned(), "low".to_owned()),
            ("key.expiring".to_owned(), "soon".to_owned())
        ]
    );
    assert_eq!(
        first
            .iter()
            .find(|r| r.json()["type"] == "key.expiring")
            .unwrap()
            .json()["data"]["expires_at"],
        soon["expires_at"]
    );

    for _ in 0..3 {
        assert_eq!(
            app.verify(spending["private_key"].as_str().unwrap()).await["code"],
            "VALID"
        );
    }
    let third = receiver.wait_for(3, WAIT).await;
    assert_eq!(third[2].json()["type"], "key.credits_low");
    assert_eq!(third[2].json()["data"]["credits"]["remaining"], 5);
    // Later sweeps announce nothing again.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(receiver.received().len(), 3);

    // A person setting the credits anew makes running low news again.
    let path = format!("/api/v2/api-keys/{}", low["id"].as_str().unwrap());
    json_of(
        app.call(Method::PATCH, &path, Some(&json!({"credits": {"remaining": 2}})))
            .await,
        200,
    )
    .await;
    let again = receiver.wait_for(4, WAIT).await;
    assert_eq!(again[3].json()["type"], "key.credits_low");
    assert_eq!(again[3].json()["data"]["credits"]["remaining"], 2);

    // So does a change of the balance by an amount (POST …/credits), which
    // storage re-arms through the same rule.
    json_of(
        app.call(
            Method::POST,
            &format!("{path}/credits"),
            Some(&json!({"op": "decrement", "value": 1})),
        )
        .await,
        200,
    )
    .await;
    let fifth = receiver.wait_for(5, WAIT).await;
    assert_eq!(fifth[4].json()["type"], "key.credits_low");
    assert_eq!(fifth[4].json()["data"]["credits"]["remaining"], 1);
}

async fn a_slow_or_endless_endpoint_holds_up_nobody_else(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let app = spawn_app_with(test_settings(backend, &dir).merge(("webhooks.timeout_seconds", 5)), dir).await;
    let (slow, endless, fast) = (
        Receiver::start().await,
        Receiver::start().await,
        Receiver::start().await,
    );
    slow.delay(Duration::from_secs(4));
    endless.endless();
    let other = uuid::Uuid::new_v4();
    let created = |org, url: &str| {
        let body = json!({"url": url, "event_types": ["key.created"]});
        let app = &app;
        async move {
            json_of(
                app.call_as(org, Method::POST, "/api/v2/webhooks", Some(&body)).await,
                201,
            )
            .await
        }
    };
    let slow_hook = created(app.org_id, &slow.url).await;
    let endless_hook = created(other, &endless.url).await;
    created(other, &fast.url).await;
    app.create_named("slowly delivered").await;
    slow.wait_for(1, WAIT).await;
    // While that attempt waits for its answer, another organisation's event
    // is claimed and delivered: the slow endpoint holds one slot, not the
    // dispatcher.
    json_of(
        app.call_as(
            other,
            Method::POST,
            "/api/v2/api-keys",
            Some(&json!({"name": "promptly delivered"})),
        )
        .await,
        201,
    )
    .await;
    fast.wait_for(1, WAIT).await;
    let pending = deliveries(&app, &slow_hook).await;
    assert_eq!(pending[0]["status"], "pending");
    assert_eq!(pending[0]["attempts"], json!([]));

    // An answer that never ends is cut off after 64 KiB and counts as the 200
    // it is, not as a timeout.
    let path = format!("/api/v2/webhooks/{}/deliveries", endless_hook["id"].as_str().unwrap());
    let deadline = std::time::Instant::now() + WAIT;
    let attempt = loop {
        let listed = json_of(app.call_as(other, Method::GET, &path, None).await, 200).await;
        if listed[0]["status"] != "pending" {
            break listed[0]["attempts"][0].clone();
        }
        assert!(std::time::Instant::now() < deadline, "{listed}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(attempt["status_code"], 200, "{attempt}");
    assert_eq!(attempt["error"], Value::Null);
}

/// An organisation whose endpoints accept connections and never answer holds
/// at most its share of the senders: another organisation's delivery goes at
/// once (the second hardening round measured 460 s before this).
async fn a_tenants_hanging_endpoints_never_delay_another_tenants_delivery(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let app = spawn_app_with(
        test_settings(backend, &dir)
            .merge(("webhooks.timeout_seconds", 30))
            .merge(("webhooks.max_per_org", 21))
            .merge(("keys.max_active_per_org", 100)),
        dir,
    )
    .await;
    let (hanging, healthy) = (Receiver::start().await, Receiver::start().await);
    hanging.delay(Duration::from_secs(120));
    for _ in 0..20 {
        create_webhook(&app, json!({"url": hanging.url, "event_types": ["key.created"]})).await;
    }
    for i in 0..40 {
        app.create_named(&format!("busy {i}")).await;
    }
    hanging.wait_for(16, WAIT).await;
    let quiet = uuid::Uuid::new_v4();
    let body = json!({"url": healthy.url, "event_types": ["key.created"]});
    json_of(
        app.call_as(quiet, Method::POST, "/api/v2/webhooks", Some(&body)).await,
        201,
    )
    .await;
    let created = std::time::Instant::now();
    json_of(
        app.call_as(quiet, Method::POST, "/api/v2/api-keys", Some(&json!({"name": "quiet"})))
            .await,
        201,
    )
    .await;
    let received = healthy.wait_for(1, Duration::from_secs(2)).await;
    eprintln!(
        "{backend:?}: the quiet organisation's delivery arrived after {:?}",
        received[0].at - created
    );
    assert_eq!(received[0].json()["type"], "key.created");
    // Nor do they delay the busy organisation's own healthy endpoint.
    let own = Receiver::start().await;
    create_webhook(&app, json!({"url": own.url, "event_types": ["key.created"]})).await;
    let created = std::time::Instant::now();
    app.create_named("busy but healthy").await;
    let received = own.wait_for(1, Duration::from_secs(2)).await;
    eprintln!(
        "{backend:?}: the busy organisation's healthy endpoint got its delivery after {:?}",
        received[0].at - created
    );
    let held = hanging.received().len();
    assert!(
        held <= 21,
        "the busy organisation holds its share (16), or one per endpoint (20, then 21): {held}"
    );
}

/// An endpoint that keeps failing is paused by its breaker, and says so in
/// the webhook's answer and in /metrics; a success resumes it.
async fn an_endpoint_that_keeps_failing_is_paused_visibly_and_resumes(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let app = spawn_app_with(
        test_settings(backend, &dir)
            .merge(("webhooks.breaker_failures", 2))
            .merge(("webhooks.breaker_pause_seconds", 3600)),
        dir,
    )
    .await;
    let receiver = Receiver::start().await;
    receiver.answer(&[500, 503]);
    let webhook = create_webhook(&app, json!({"url": receiver.url, "event_types": ["key.created"]})).await;
    let path = format!("/api/v2/webhooks/{}", webhook["id"].as_str().unwrap());
    app.create_named("failing").await;
    receiver.wait_for(2, WAIT).await;
    let deadline = std::time::Instant::now() + WAIT;
    let paused = loop {
        let read = json_of(app.call(Method::GET, &path, None).await, 200).await;
        if read["health"]["state"] == "paused" {
            break read;
        }
        assert!(std::time::Instant::now() < deadline, "{read}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(paused["health"]["consecutive_failures"], 2);
    assert!(paused["health"]["paused_until"].is_string(), "{paused}");
    let metrics = app
        .client
        .get(format!("{}/metrics", app.address))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("keymint_webhook_breaker_transitions_total{to=\"paused\"} 1"),
        "{metrics}"
    );
    // Paused for an hour: the retry due in a second or two is not sent.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(receiver.received().len(), 2, "nothing is sent while paused");
    // "Send again" probes it now; its 200 resumes it.
    let delivery = &deliveries(&app, &webhook).await[0];
    let retry = format!("{path}/deliveries/{}/retry", delivery["id"].as_str().unwrap());
    assert_eq!(app.call(Method::POST, &retry, None).await.status().as_u16(), 202);
    receiver.wait_for(3, WAIT).await;
    settled(&app, &webhook, 1).await;
    let resumed = json_of(app.call(Method::GET, &path, None).await, 200).await;
    assert_eq!(
        resumed["health"],
        json!({"state": "healthy", "consecutive_failures": 0, "paused_until": null})
    );
}

for_each_backend!(
    a_slow_or_endless_endpoint_holds_up_nobody_else,
    a_tenants_hanging_endpoints_never_delay_another_tenants_delivery,
    an_endpoint_that_keeps_failing_is_paused_visibly_and_resumes,
    expiring_and_low_credit_keys_are_announced_once,
    webhooks_are_managed_and_show_their_secret_once,
    webhook_bodies_are_checked_field_by_field,
    every_key_event_is_delivered_signed_in_order_with_public_fields_only,
    failed_attempts_are_retried_with_backoff_then_marked_failed_and_resent_on_request,
    a_slow_endpoint_times_out_and_a_key_waits_for_its_earlier_events,
    deliveries_never_reach_private_addresses_unless_allowed_nor_follow_redirects,
);

/// Kills the example receiver however the test ends.
struct Python(std::process::Child);

impl Drop for Python {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The receiver the README shows (`examples/webhook_receiver.py`), run as
/// written against real deliveries: it accepts Keymint's signatures, refuses
/// a forged one, and prints each event once.
#[tokio::test]
async fn the_readme_receiver_example_verifies_real_deliveries() {
    use std::io::BufRead;
    let app = spawn_app(Backend::Sqlite).await;
    let placeholder = create_webhook(&app, json!({"url": "https://placeholder.example/", "enabled": false})).await;
    let secret = placeholder["secret"].as_str().unwrap().to_owned();
    let mut receiver = Python(
        std::process::Command::new("python3")
            .arg("examples/webhook_receiver.py")
            .arg("0")
            .env("KEYMINT_WEBHOOK_SECRET", &secret)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("python3 runs the example"),
    );
    let (lines_tx, mut lines) = tokio::sync::mpsc::unbounded_channel::<String>();
    let stdout = receiver.0.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = lines_tx.send(line);
        }
    });
    let mut next_line = async |within: Duration| tokio::time::timeout(within, lines.recv()).await.ok().flatten();
    let first = next_line(Duration::from_secs(10)).await.expect("the receiver starts");
    let port = first.strip_prefix("listening on ").unwrap().trim().to_owned();
    let url = format!("http://127.0.0.1:{port}/");
    // The example's secret is this webhook's: point it at the receiver.
    let path = format!("/api/v2/webhooks/{}", placeholder["id"].as_str().unwrap());
    json_of(
        app.call(Method::PATCH, &path, Some(&json!({"url": url, "enabled": true})))
            .await,
        200,
    )
    .await;

    let key = app.create_named("billing-service").await;
    let line = next_line(Duration::from_secs(20)).await.expect("the event is printed");
    assert_eq!(
        line,
        format!("key.created {} billing-service", key["id"].as_str().unwrap())
    );

    let forged = reqwest::Client::new()
        .post(&url)
        .header("webhook-id", "msg_forged")
        .header("webhook-timestamp", chrono::Utc::now().timestamp().to_string())
        .header("webhook-signature", "v1,bm90IGEgc2lnbmF0dXJl")
        .body(r#"{"type":"key.deleted","timestamp":"x","data":{"id":"x","name":"x"}}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 401);
    assert_eq!(
        next_line(Duration::from_millis(500)).await,
        None,
        "the forged event was not printed"
    );
}
