//! Usage analytics: every verification that names a key is counted, by
//! outcome, key, owner and tag; the counts are exact under concurrency,
//! survive a graceful restart, and are the organisation's alone.

use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::for_each_backend;
use crate::support::{error_body, json_of, spawn_app_with, test_settings, verify_storm, Backend, TestApp};

/// An app writing counts every second (the default is every 5 s).
async fn app(backend: Backend) -> TestApp {
    let dir = tempfile::tempdir().expect("temp dir");
    spawn_app_with(
        test_settings(backend, &dir).merge(("verify.usage_flush_seconds", 1)),
        dir,
    )
    .await
}

async fn get(app: &TestApp, path: &str) -> Value {
    json_of(app.call(Method::GET, path, None).await, 200).await
}

fn total(answer: &Value) -> u64 {
    answer["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| row["count"].as_u64().unwrap())
        .sum()
}

/// The analytics answer to `query` once its total reaches `expected` (counts
/// are written by the usage flusher, within a second here).
async fn settled(app: &TestApp, query: &str, expected: u64) -> Value {
    let path = format!("/api/v2/analytics/verifications?{query}");
    for _ in 0..100 {
        let answer = get(app, &path).await;
        if total(&answer) >= expected {
            assert_eq!(total(&answer), expected, "no more than what was verified: {answer}");
            return answer;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "{query}: the counts never reached {expected}: {}",
        get(app, &path).await
    );
}

/// `field -> (count, spent_credits)` of an answer grouped by `field`.
fn by(answer: &Value, field: &str) -> Vec<(Value, u64, u64)> {
    let mut rows: Vec<(Value, u64, u64)> = Vec::new();
    for row in answer["data"].as_array().unwrap() {
        let (count, spent) = (row["count"].as_u64().unwrap(), row["spent_credits"].as_u64().unwrap());
        match rows.iter_mut().find(|(value, _, _)| *value == row[field]) {
            Some(existing) => {
                existing.1 += count;
                existing.2 += spent;
            }
            None => rows.push((row[field].clone(), count, spent)),
        }
    }
    rows.sort_by_key(|(value, _, _)| value.to_string());
    rows
}

async fn every_named_verification_is_counted_by_outcome_key_and_tag(backend: Backend) {
    let app = app(backend).await;
    let metered = json_of(
        app.create_key(&json!({"name": "metered", "owner_id": "acme", "permissions": ["read"],
            "credits": {"remaining": 3}}))
            .await,
        201,
    )
    .await;
    let revoked = app.create_named("revoked").await;
    let path = format!("/api/v2/api-keys/{}/revoke", revoked["id"].as_str().unwrap());
    assert_eq!(app.call(Method::PUT, &path, None).await.status(), 200);
    let key = metered["private_key"].as_str().unwrap();

    let tagged = json!({"key": key, "tags": ["path=/v1/charges", "region=eu", "region=eu"]});
    for _ in 0..3 {
        assert_eq!(app.verify_with(&tagged).await["code"], "VALID");
    }
    for _ in 0..2 {
        assert_eq!(app.verify(key).await["code"], "USAGE_EXCEEDED");
    }
    let refused = app.verify_with(&json!({"key": key, "permissions": "write"})).await;
    assert_eq!(refused["code"], "INSUFFICIENT_PERMISSIONS");
    for _ in 0..2 {
        assert_eq!(
            app.verify(revoked["private_key"].as_str().unwrap()).await["code"],
            "REVOKED"
        );
    }
    // Names no key: never counted.
    for _ in 0..3 {
        assert_eq!(app.verify("sk_live_not-a-key").await["code"], "NOT_FOUND");
    }

    let outcomes = settled(&app, "granularity=minute&group_by=outcome", 8).await;
    assert_eq!(outcomes["granularity"], "minute");
    assert_eq!(
        by(&outcomes, "outcome"),
        vec![
            (json!("INSUFFICIENT_PERMISSIONS"), 1, 0),
            (json!("REVOKED"), 2, 0),
            (json!("USAGE_EXCEEDED"), 2, 0),
            (json!("VALID"), 3, 3),
        ],
        "a granted verification of a key with credits spent its cost; refusals spent nothing"
    );

    let (metered_id, revoked_id) = (metered["id"].clone(), revoked["id"].clone());
    let keys = get(&app, "/api/v2/analytics/verifications?group_by=key_id").await;
    let mut expected = vec![(metered_id.clone(), 6, 3), (revoked_id.clone(), 2, 0)];
    expected.sort_by_key(|(value, _, _)| value.to_string());
    assert_eq!(by(&keys, "key_id"), expected);

    // The busiest key over the period: one total per key, largest first, cut
    // to the limit rather than refused.
    let top = get(
        &app,
        "/api/v2/analytics/verifications?granularity=total&group_by=key_id&order_by=count&limit=1",
    )
    .await;
    assert_eq!(top["granularity"], "total");
    assert_eq!(by(&top, "key_id"), vec![(metered_id.clone(), 6, 3)]);
    assert_eq!(
        top["data"][0]["time"], top["from"],
        "a total's time is the range's start"
    );
    let totals = get(
        &app,
        "/api/v2/analytics/verifications?granularity=total&group_by=outcome",
    )
    .await;
    assert_eq!(
        by(&totals, "outcome"),
        by(&outcomes, "outcome"),
        "the same counts as the buckets'"
    );
    let cut = app
        .call(
            Method::GET,
            "/api/v2/analytics/verifications?granularity=minute&group_by=key_id&limit=1",
            None,
        )
        .await;
    let body = error_body(cut, 422, "validation_error").await;
    assert!(body.to_string().contains("more than 1 rows"), "{body}");

    let tags = get(&app, "/api/v2/analytics/verifications?group_by=tag").await;
    assert_eq!(
        by(&tags, "tag"),
        vec![
            (json!("path=/v1/charges"), 3, 3),
            (json!("region=eu"), 3, 3),
            (json!(null), 5, 0),
        ],
        "a verification counts under each of its tags; untagged ones under null"
    );
    let filtered = get(&app, "/api/v2/analytics/verifications?tag=region%3Deu&outcome=VALID").await;
    assert_eq!(total(&filtered), 3);
    let owners = get(
        &app,
        "/api/v2/analytics/verifications?group_by=owner_id,outcome&owner_id=acme",
    )
    .await;
    assert_eq!(total(&owners), 6);
    assert!(owners["data"]
        .as_array()
        .unwrap()
        .iter()
        .all(|row| row["owner_id"] == "acme"));
    let two = format!(
        "/api/v2/analytics/verifications?key_id={}&outcome=REVOKED&outcome=VALID",
        revoked_id.as_str().unwrap()
    );
    let two = get(&app, &two).await;
    assert_eq!(total(&two), 2);

    // One key's page: its usage by outcome, and usage_24h on every read.
    let usage = get(
        &app,
        &format!("/api/v2/api-keys/{}/usage", metered_id.as_str().unwrap()),
    )
    .await;
    assert_eq!(total(&usage), 6);
    assert!(usage["data"]
        .as_array()
        .unwrap()
        .iter()
        .all(|row| row.get("outcome").is_some()));
    let read = get(&app, &format!("/api/v2/api-keys/{}", metered_id.as_str().unwrap())).await;
    assert_eq!(read["usage_24h"], 6);
    let list = get(&app, "/api/v2/api-keys").await;
    let listed: Vec<(Value, Value)> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|key| (key["id"].clone(), key["usage_24h"].clone()))
        .collect();
    assert!(listed.contains(&(metered_id.clone(), json!(6))), "{listed:?}");
    assert!(listed.contains(&(revoked_id, json!(2))), "{listed:?}");

    // Deleting a key keeps its history: it is usage that happened.
    let path = format!("/api/v2/api-keys/{}", metered_id.as_str().unwrap());
    assert_eq!(app.call(Method::DELETE, &path, None).await.status(), 204);
    assert_eq!(total(&get(&app, "/api/v2/analytics/verifications").await), 8);
}

async fn counts_are_exact_under_concurrency(backend: Backend) {
    let app = app(backend).await;
    let key = app.create_named("busy").await;
    let body = json!({"key": key["private_key"], "tags": ["path=/busy"]});
    let answers = verify_storm(&app.client, &[app.address.as_str()], &body, 400, 16).await;
    assert!(answers.iter().all(|answer| answer["code"] == "VALID"));
    let answer = settled(&app, "granularity=minute&tag=path%3D%2Fbusy", 400).await;
    assert_eq!(total(&answer), 400);
}

async fn an_organisation_sees_only_its_own_counts(backend: Backend) {
    let app = app(backend).await;
    let key = app.create_named("ours").await;
    for _ in 0..4 {
        app.verify(key["private_key"].as_str().unwrap()).await;
    }
    settled(&app, "", 4).await;
    let other = Uuid::new_v4();
    let theirs = app
        .call_as(
            other,
            Method::GET,
            "/api/v2/analytics/verifications?group_by=key_id",
            None,
        )
        .await;
    assert_eq!(json_of(theirs, 200).await["data"], json!([]));
    let path = format!("/api/v2/api-keys/{}/usage", key["id"].as_str().unwrap());
    error_body(app.call_as(other, Method::GET, &path, None).await, 404, "not_found").await;
    let filtered = format!("/api/v2/analytics/verifications?key_id={}", key["id"].as_str().unwrap());
    let answer = json_of(app.call_as(other, Method::GET, &filtered, None).await, 200).await;
    assert_eq!(
        answer["data"],
        json!([]),
        "naming another organisation's key finds nothing"
    );
}

async fn bad_queries_and_tags_are_named(backend: Backend) {
    let app = app(backend).await;
    let cases = [
        ("granularity=week", vec!["query", "granularity"]),
        (
            "granularity=minute&from=2026-01-01T00:00:00Z&to=2026-01-03T00:00:00Z",
            vec!["query", "granularity"],
        ),
        (
            "from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z",
            vec!["query", "from"],
        ),
        ("from=yesterday", vec!["query", "from"]),
        ("outcome=NOT_FOUND", vec!["query", "outcome"]),
        ("group_by=colour", vec!["query", "group_by"]),
        ("key_id=12", vec!["query", "key_id"]),
        ("owner_id=%00", vec!["query", "owner_id"]),
        ("order_by=size", vec!["query", "order_by"]),
        ("limit=0", vec!["query", "limit"]),
        ("limit=10001", vec!["query", "limit"]),
        ("limit=ten", vec!["query", "limit"]),
        (
            "granularity=total&from=2020-01-01T00:00:00Z&to=2026-01-01T00:00:00Z",
            vec!["query", "granularity"],
        ),
    ];
    for (query, loc) in cases {
        let path = format!("/api/v2/analytics/verifications?{query}");
        let body = error_body(app.call(Method::GET, &path, None).await, 422, "validation_error").await;
        assert_eq!(body["detail"][0]["loc"], json!(loc), "{query}: {body}");
    }
    let long = "t".repeat(129);
    let path = format!("/api/v2/analytics/verifications?tag={long}");
    let body = error_body(app.call(Method::GET, &path, None).await, 422, "validation_error").await;
    assert_eq!(body["detail"][0]["loc"], json!(["query", "tag"]));

    let key = app.create_named("tagged").await;
    let eleven: Vec<String> = (0..11).map(|i| format!("t{i}")).collect();
    for (tags, loc) in [
        (json!(eleven), json!(["body", "tags"])),
        (json!(["ok", "keymint:overflow"]), json!(["body", "tags", "1"])),
        (json!([""]), json!(["body", "tags", "0"])),
        (json!(["a\u{0}b"]), json!(["body", "tags", "0"])),
        (json!([5]), json!(["body", "tags", "0"])),
        (json!("region=eu"), json!(["body", "tags"])),
    ] {
        let response = app
            .client
            .post(app.url("/api/v2/api-keys/verify"))
            .json(&json!({"key": key["private_key"], "tags": tags}))
            .send()
            .await
            .unwrap();
        let body = error_body(response, 422, "validation_error").await;
        assert_eq!(body["detail"][0]["loc"], loc, "{tags}: {body}");
        assert!(!body.to_string().contains("a\\u0000b"), "a refused tag is not echoed");
    }
    // Reading analytics needs the read permission, like every other read.
    let no_permissions = app
        .client
        .get(app.url("/api/v2/analytics/verifications"))
        .send()
        .await
        .unwrap();
    error_body(no_permissions, 401, "not_authenticated").await;
}

for_each_backend!(
    every_named_verification_is_counted_by_outcome_key_and_tag,
    counts_are_exact_under_concurrency,
    an_organisation_sees_only_its_own_counts,
    bad_queries_and_tags_are_named,
);

/// Counts not yet written when the server stops are written by its graceful
/// shutdown, and read back by the next process.
async fn counts_survive_a_graceful_restart(backend: Backend) {
    let dir = tempfile::tempdir().expect("temp dir");
    // Written only at shutdown.
    let settings = test_settings(backend, &dir).merge(("verify.usage_flush_seconds", 3600));
    let mut first = spawn_app_with(settings.clone(), tempfile::tempdir().unwrap()).await;
    let key = first.create_named("restarted").await;
    for _ in 0..7 {
        first.verify(key["private_key"].as_str().unwrap()).await;
    }
    let before = get(&first, "/api/v2/analytics/verifications").await;
    assert_eq!(total(&before), 0, "nothing is written before a flush");
    let org_id = first.org_id;
    first.stop().await;
    let mut second = spawn_app_with(settings, dir).await;
    second.org_id = org_id;
    assert_eq!(total(&get(&second, "/api/v2/analytics/verifications").await), 7);
}

#[tokio::test]
async fn sqlite_counts_survive_a_graceful_restart() {
    counts_survive_a_graceful_restart(Backend::Sqlite).await
}

#[tokio::test]
#[ignore = "needs PostgreSQL: set KEYMINT_TEST_POSTGRES_URL"]
async fn postgres_counts_survive_a_graceful_restart() {
    counts_survive_a_graceful_restart(Backend::Postgres).await
}
