//! List, get, update, revoke, rotate, expire, delete, limits and the audit trail,
//! through HTTP, on every adapter.

use std::collections::HashSet;

use chrono::{DateTime, Duration, Utc};
use futures_util::future::join_all;
use keymint_domain::PrivateKey;
use reqwest::Method;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::for_each_backend;
use crate::support::{error_body, json_of, spawn_app, spawn_app_with, test_settings, Backend};

const KEY_FIELDS: [&str; 20] = [
    "id",
    "org_id",
    "name",
    "public_key",
    "private_key_display",
    "created_at",
    "description",
    "is_revoked",
    "revoked_at",
    "last_used_at",
    "environment",
    "expires_at",
    "permissions",
    "owner_id",
    "meta",
    "ratelimits",
    "credits",
    "leaked_at",
    "previous_key_valid_until",
    "status",
];

fn keys_of(body: &Value) -> HashSet<String> {
    body.as_object().unwrap().keys().cloned().collect()
}

/// A read's fields: the create's but `private_key`, and the last day's usage.
fn key_fields() -> HashSet<String> {
    KEY_FIELDS
        .iter()
        .chain(&["usage_24h"])
        .map(|s| (*s).to_owned())
        .collect()
}

fn path(id: &Value, rest: &str) -> String {
    format!("/api/v2/api-keys/{}{rest}", id.as_str().unwrap())
}

/// The `rel="next"` target of a Link header, if any.
fn next_link(response: &reqwest::Response) -> Option<String> {
    let link = response.headers().get("link")?.to_str().unwrap().to_owned();
    assert!(link.ends_with(r#">; rel="next""#), "{link}");
    Some(link.trim_start_matches('<').split('>').next().unwrap().to_owned())
}

async fn the_list_is_the_organisations_keys_newest_first_without_private_keys(backend: Backend) {
    let app = spawn_app(backend).await;
    let created: Vec<Value> = [
        app.create_named("first").await,
        app.create_named("second").await,
        app.create_named("third").await,
    ]
    .into();
    let stranger = app
        .call_as(
            Uuid::new_v4(),
            Method::POST,
            "/api/v2/api-keys",
            Some(&json!({"name": "theirs"})),
        )
        .await;
    assert_eq!(stranger.status().as_u16(), 201);

    let response = app.call(Method::GET, "/api/v2/api-keys", None).await;
    assert!(
        response.headers().get("link").is_none(),
        "a single page has no next link"
    );
    let listed = json_of(response, 200).await;

    let names: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["third", "second", "first"]);
    for (item, original) in listed.as_array().unwrap().iter().zip(created.iter().rev()) {
        assert_eq!(keys_of(item), key_fields(), "every create field but private_key");
        for field in KEY_FIELDS {
            assert_eq!(item[field], original[field], "{field}");
        }
    }
}

async fn the_list_pages_through_link_headers_without_gaps_or_repeats(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut created = HashSet::new();
    for i in 0..5 {
        created.insert(
            app.create_named(&format!("key-{i}")).await["id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    let mut seen = Vec::new();
    let mut next = Some("/api/v2/api-keys?limit=2".to_owned());
    let mut pages = 0;
    while let Some(url) = next.take() {
        let response = app.call(Method::GET, &url, None).await;
        next = next_link(&response);
        let page = json_of(response, 200).await;
        assert!(page.as_array().unwrap().len() <= 2);
        seen.extend(
            page.as_array()
                .unwrap()
                .iter()
                .map(|k| k["id"].as_str().unwrap().to_owned()),
        );
        pages += 1;
    }
    assert_eq!(pages, 3);
    assert_eq!(seen.len(), 5, "no repeats");
    assert_eq!(seen.iter().cloned().collect::<HashSet<_>>(), created, "no gaps");
}

async fn the_list_filters_by_environment_and_revocation(backend: Backend) {
    let app = spawn_app(backend).await;
    let live = app.create_named("live").await;
    let test: Value = app
        .create_key(&json!({"name": "test", "environment": "test"}))
        .await
        .json()
        .await
        .unwrap();
    json_of(app.call(Method::PUT, &path(&live["id"], "/revoke"), None).await, 200).await;

    let names = |body: Value| {
        body.as_array()
            .unwrap()
            .iter()
            .map(|k| k["name"].as_str().unwrap().to_owned())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        names(
            json_of(
                app.call(Method::GET, "/api/v2/api-keys?environment=test", None).await,
                200
            )
            .await
        ),
        ["test"]
    );
    assert_eq!(
        names(
            json_of(
                app.call(Method::GET, "/api/v2/api-keys?is_revoked=true", None).await,
                200
            )
            .await
        ),
        ["live"]
    );
    assert_eq!(
        names(
            json_of(
                app.call(Method::GET, "/api/v2/api-keys?is_revoked=false&environment=test", None)
                    .await,
                200
            )
            .await
        ),
        ["test"]
    );
    assert_eq!(test["environment"], "test");
}

async fn bad_list_parameters_are_422s_naming_the_parameter(backend: Backend) {
    let app = spawn_app(backend).await;
    for (query, parameter, kind) in [
        ("limit=0", "limit", "greater_than_equal"),
        ("limit=101", "limit", "less_than_equal"),
        ("limit=ten", "limit", "int_parsing"),
        ("environment=prod", "environment", "literal_error"),
        ("is_revoked=maybe", "is_revoked", "bool_parsing"),
        ("cursor=not-a-cursor", "cursor", "value_error"),
    ] {
        let body = error_body(
            app.call(Method::GET, &format!("/api/v2/api-keys?{query}"), None).await,
            422,
            "validation_error",
        )
        .await;
        assert_eq!(body["detail"][0]["loc"], json!(["query", parameter]), "{query}");
        assert_eq!(body["detail"][0]["type"], kind, "{query}");
    }
}

async fn get_returns_one_key_and_404s_unknown_and_foreign_keys_alike(backend: Backend) {
    let app = spawn_app(backend).await;
    let created = app.create_named("one").await;
    let got = json_of(app.call(Method::GET, &path(&created["id"], ""), None).await, 200).await;
    assert_eq!(keys_of(&got), key_fields());
    assert_eq!(got["public_key"], created["public_key"]);

    let unknown = error_body(
        app.call(Method::GET, &format!("/api/v2/api-keys/{}", Uuid::new_v4()), None)
            .await,
        404,
        "not_found",
    )
    .await;
    let foreign = error_body(
        app.call_as(Uuid::new_v4(), Method::GET, &path(&created["id"], ""), None)
            .await,
        404,
        "not_found",
    )
    .await;
    assert_eq!(
        unknown, foreign,
        "another organisation's key is indistinguishable from a missing one"
    );

    let bad = error_body(
        app.call(Method::GET, "/api/v2/api-keys/not-a-uuid", None).await,
        422,
        "validation_error",
    )
    .await;
    assert_eq!(bad["detail"][0]["loc"], json!(["path", "key_id"]));
}

async fn update_renames_and_clears_the_description_with_create_validation(backend: Backend) {
    let app = spawn_app(backend).await;
    let created: Value = app
        .create_key(&json!({"name": "old", "description": "to clear"}))
        .await
        .json()
        .await
        .unwrap();
    let url = path(&created["id"], "");

    let renamed = json_of(app.call(Method::PATCH, &url, Some(&json!({"name": "new"}))).await, 200).await;
    assert_eq!(
        (renamed["name"].as_str(), renamed["description"].as_str()),
        (Some("new"), Some("to clear"))
    );
    let cleared = json_of(
        app.call(Method::PATCH, &url, Some(&json!({"description": null}))).await,
        200,
    )
    .await;
    assert_eq!(cleared["description"], Value::Null);
    assert_eq!(keys_of(&cleared), key_fields());

    for (body, loc, kind) in [
        (json!({"name": ""}), json!(["body", "name"]), "string_too_short"),
        (
            json!({"description": "x".repeat(256)}),
            json!(["body", "description"]),
            "string_too_long",
        ),
        (json!({"name": null}), json!(["body", "name"]), "string_type"),
        (
            json!({"private_key": "sk"}),
            json!(["body", "private_key"]),
            "extra_forbidden",
        ),
        (json!({}), json!(["body"]), "value_error"),
    ] {
        let error = error_body(
            app.call(Method::PATCH, &url, Some(&body)).await,
            422,
            "validation_error",
        )
        .await;
        assert_eq!(
            (&error["detail"][0]["loc"], error["detail"][0]["type"].as_str()),
            (&loc, Some(kind)),
            "{body}"
        );
    }
    let after = json_of(app.call(Method::GET, &url, None).await, 200).await;
    assert_eq!(
        (after["name"].as_str(), &after["description"]),
        (Some("new"), &Value::Null),
        "failed updates changed nothing"
    );
}

async fn revocation_is_final_and_keeps_its_first_time(backend: Backend) {
    let app = spawn_app(backend).await;
    let created = app.create_named("to revoke").await;
    let first = json_of(app.call(Method::PUT, &path(&created["id"], "/revoke"), None).await, 200).await;
    let expected: HashSet<String> = [
        "id",
        "org_id",
        "name",
        "is_revoked",
        "created_at",
        "description",
        "expires_at",
        "last_used_at",
        "revoked_at",
        "status",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    assert_eq!(keys_of(&first), expected);
    assert_eq!(first["is_revoked"], true);
    assert!(first["revoked_at"].is_string());
    assert_eq!(
        (&created["status"], &first["status"]),
        (&json!("active"), &json!("revoked"))
    );

    let again = json_of(
        app.call(Method::PUT, &path(&created["id"], "/revoke/"), None).await,
        200,
    )
    .await;
    assert_eq!(again["revoked_at"], first["revoked_at"]);
    let got = json_of(app.call(Method::GET, &path(&created["id"], ""), None).await, 200).await;
    assert_eq!(
        (got["is_revoked"].as_bool(), &got["revoked_at"]),
        (Some(true), &first["revoked_at"])
    );
}

async fn delete_removes_the_key_for_good(backend: Backend) {
    let app = spawn_app(backend).await;
    let created = app.create_named("doomed").await;
    let kept = app.create_named("kept").await;
    let response = app.call(Method::DELETE, &path(&created["id"], ""), None).await;
    assert_eq!(response.status().as_u16(), 204);
    assert!(response.bytes().await.unwrap().is_empty());

    error_body(
        app.call(Method::GET, &path(&created["id"], ""), None).await,
        404,
        "not_found",
    )
    .await;
    error_body(
        app.call(Method::DELETE, &path(&created["id"], ""), None).await,
        404,
        "not_found",
    )
    .await;
    // Every other operation on it answers 404 too (what schemathesis's
    // use_after_free would check; see tests/schemathesis.toml).
    for (method, suffix, body) in [
        (Method::PATCH, "", Some(json!({"name": "revived"}))),
        (Method::PUT, "/revoke", None),
        (Method::POST, "/rotate", None),
        (Method::HEAD, "", None),
    ] {
        let response = app
            .call(method.clone(), &path(&created["id"], suffix), body.as_ref())
            .await;
        assert_eq!(response.status().as_u16(), 404, "{method} {suffix}");
    }
    // Only its audit trail outlives it, by design.
    let events = json_of(app.call(Method::GET, &path(&created["id"], "/events"), None).await, 200).await;
    assert_eq!(events[0]["action"], "deleted", "{events}");
    let listed = json_of(app.call(Method::GET, "/api/v2/api-keys", None).await, 200).await;
    let ids: Vec<&Value> = listed.as_array().unwrap().iter().map(|k| &k["id"]).collect();
    assert_eq!(ids, [&kept["id"]]);
}

async fn rotation_issues_a_new_private_key_for_the_same_key_once(backend: Backend) {
    let app = spawn_app(backend).await;
    let created = app.create_named("rotating").await;
    let rotated = json_of(
        app.call(
            Method::POST,
            &path(&created["id"], "/rotate"),
            Some(&json!({"grace_period_seconds": 3600})),
        )
        .await,
        200,
    )
    .await;

    assert_eq!(keys_of(&rotated), keys_of(&created), "the create shape");
    for same in ["id", "public_key", "name", "created_at", "org_id", "environment"] {
        assert_eq!(rotated[same], created[same], "{same}");
    }
    let new_key = rotated["private_key"].as_str().unwrap();
    assert_ne!(new_key, created["private_key"].as_str().unwrap());
    PrivateKey::parse(new_key).expect("a well-formed key");
    assert_eq!(
        rotated["private_key_display"],
        format!("sk_live_…{}", &new_key[new_key.len() - 4..])
    );
    let got = json_of(app.call(Method::GET, &path(&created["id"], ""), None).await, 200).await;
    assert_eq!(got["private_key_display"], rotated["private_key_display"]);
    assert!(got.get("private_key").is_none());
    // Reads say until when the replaced key keeps working.
    let until: DateTime<Utc> = got["previous_key_valid_until"].as_str().unwrap().parse().unwrap();
    let expected = Utc::now() + Duration::seconds(3600);
    assert!((until - expected).num_seconds().abs() < 60, "{until} vs {expected}");
    assert!(
        created.get("previous_key_valid_until").is_none(),
        "the create contract's shape"
    );

    // No body at all means no grace period.
    let bare = app
        .client
        .post(app.url(&path(&created["id"], "/rotate")))
        .bearer_auth(app.token())
        .send()
        .await
        .unwrap();
    assert_eq!(bare.status().as_u16(), 200);
    let got = json_of(app.call(Method::GET, &path(&created["id"], ""), None).await, 200).await;
    assert_eq!(
        got["previous_key_valid_until"],
        Value::Null,
        "no grace: the old key stopped at once"
    );

    for (grace, kind) in [
        (json!(604_801), "less_than_equal"),
        (json!(-5), "greater_than_equal"),
        (json!("1h"), "int_type"),
    ] {
        let body = json!({"grace_period_seconds": grace});
        let error = error_body(
            app.call(Method::POST, &path(&created["id"], "/rotate"), Some(&body))
                .await,
            422,
            "validation_error",
        )
        .await;
        assert_eq!(error["detail"][0]["type"], kind);
    }
}

async fn revoked_and_expired_keys_cannot_be_rotated(backend: Backend) {
    let app = spawn_app(backend).await;
    let revoked = app.create_named("revoked").await;
    json_of(app.call(Method::PUT, &path(&revoked["id"], "/revoke"), None).await, 200).await;
    error_body(
        app.call(Method::POST, &path(&revoked["id"], "/rotate"), None).await,
        409,
        "key_revoked",
    )
    .await;

    let soon = (Utc::now() + Duration::milliseconds(1200)).to_rfc3339();
    let expiring: Value = app
        .create_key(&json!({"name": "expiring", "expires_at": soon}))
        .await
        .json()
        .await
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(1300)).await;
    let read = json_of(app.call(Method::GET, &path(&expiring["id"], ""), None).await, 200).await;
    assert_eq!(read["status"], "expired", "a key past its expiry says so");
    error_body(
        app.call(Method::POST, &path(&expiring["id"], "/rotate"), None).await,
        409,
        "key_expired",
    )
    .await;
}

async fn expiry_is_optional_in_the_future_and_bounded(backend: Backend) {
    let app = spawn_app(backend).await;
    let at = (Utc::now() + Duration::days(30)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let created: Value = app
        .create_key(&json!({"name": "expiring", "expires_at": at}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(created["expires_at"], at);
    let got = json_of(app.call(Method::GET, &path(&created["id"], ""), None).await, 200).await;
    assert_eq!(got["expires_at"], at);

    for (value, kind) in [
        ((Utc::now() - Duration::seconds(5)).to_rfc3339(), "greater_than"),
        ((Utc::now() + Duration::days(731)).to_rfc3339(), "less_than_equal"),
        ("next tuesday".to_owned(), "datetime_parsing"),
        ("2030-01-01T00:00:00".to_owned(), "datetime_parsing"),
    ] {
        let error = error_body(
            app.create_key(&json!({"name": "x", "expires_at": value})).await,
            422,
            "validation_error",
        )
        .await;
        assert_eq!(
            (&error["detail"][0]["loc"], error["detail"][0]["type"].as_str()),
            (&json!(["body", "expires_at"]), Some(kind)),
            "{value}"
        );
    }
}

async fn the_active_key_limit_is_a_409_until_a_key_is_revoked(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let app = spawn_app_with(test_settings(backend, &dir).merge(("keys.max_active_per_org", 2)), dir).await;
    let first = app.create_named("one").await;
    app.create_named("two").await;
    error_body(
        app.create_key(&json!({"name": "three"})).await,
        409,
        "key_limit_reached",
    )
    .await;
    let other_org = app
        .call_as(
            Uuid::new_v4(),
            Method::POST,
            "/api/v2/api-keys",
            Some(&json!({"name": "elsewhere"})),
        )
        .await;
    assert_eq!(other_org.status().as_u16(), 201, "the limit is per organisation");

    json_of(app.call(Method::PUT, &path(&first["id"], "/revoke"), None).await, 200).await;
    app.create_named("three").await;
}

async fn concurrent_creates_never_exceed_the_limit(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let app = spawn_app_with(test_settings(backend, &dir).merge(("keys.max_active_per_org", 5)), dir).await;
    let bodies: Vec<Value> = (0..20).map(|i| json!({"name": format!("racer-{i}")})).collect();
    let statuses: Vec<u16> = join_all(bodies.iter().map(|b| app.create_key(b)))
        .await
        .iter()
        .map(|r| r.status().as_u16())
        .collect();
    assert_eq!(statuses.iter().filter(|s| **s == 201).count(), 5, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 409).count(), 15, "{statuses:?}");
}

async fn every_change_is_in_the_audit_trail_newest_first_without_secrets(backend: Backend) {
    let app = spawn_app(backend).await;
    let created = app.create_named("audited").await;
    let id = &created["id"];
    json_of(
        app.call(Method::PATCH, &path(id, ""), Some(&json!({"name": "renamed"})))
            .await,
        200,
    )
    .await;
    let rotated = json_of(app.call(Method::POST, &path(id, "/rotate"), None).await, 200).await;
    json_of(app.call(Method::PUT, &path(id, "/revoke"), None).await, 200).await;
    assert_eq!(
        app.call(Method::DELETE, &path(id, ""), None).await.status().as_u16(),
        204
    );

    let response = app.call(Method::GET, &path(id, "/events"), None).await;
    let text = response.text().await.unwrap();
    for secret in [&created["private_key"], &rotated["private_key"]] {
        assert!(
            !text.contains(&secret.as_str().unwrap()[25..]),
            "a secret is in the trail"
        );
    }
    let events: Value = serde_json::from_str(&text).unwrap();
    let actions: Vec<&str> = events
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        ["deleted", "revoked", "rotated", "updated", "created"],
        "the trail outlives the key"
    );
    for event in events.as_array().unwrap() {
        assert_eq!(
            (event["key_id"].as_str(), event["actor"].as_str()),
            (id.as_str(), Some("test-user"))
        );
        Uuid::parse_str(event["request_id"].as_str().unwrap()).expect("the request id is recorded");
        assert!(event["occurred_at"].as_str().unwrap().ends_with('Z'));
    }

    let first_page = app
        .call(Method::GET, &format!("{}?limit=2", path(id, "/events")), None)
        .await;
    let next = next_link(&first_page).expect("more events");
    assert_eq!(json_of(first_page, 200).await.as_array().unwrap().len(), 2);
    let second = json_of(app.call(Method::GET, &next, None).await, 200).await;
    assert_eq!(second[0]["action"], "rotated");
}

async fn another_organisations_key_is_404_on_every_route_and_untouched(backend: Backend) {
    let app = spawn_app(backend).await;
    let created = app.create_named("mine").await;
    let stranger = Uuid::new_v4();
    for (method, suffix, body) in [
        (Method::GET, "", None),
        (Method::PATCH, "", Some(json!({"name": "stolen"}))),
        (Method::PUT, "/revoke", None),
        (Method::POST, "/rotate", None),
        (Method::DELETE, "", None),
        (Method::GET, "/events", None),
    ] {
        let response = app
            .call_as(stranger, method.clone(), &path(&created["id"], suffix), body.as_ref())
            .await;
        error_body(response, 404, "not_found").await;
    }
    let got = json_of(app.call(Method::GET, &path(&created["id"], ""), None).await, 200).await;
    assert_eq!(
        (got["name"].as_str(), got["is_revoked"].as_bool()),
        (Some("mine"), Some(false))
    );
    assert_eq!(got["private_key_display"], created["private_key_display"]);
    let events = json_of(app.call(Method::GET, &path(&created["id"], "/events"), None).await, 200).await;
    assert_eq!(events.as_array().unwrap().len(), 1, "only the create was recorded");
}

async fn revocation_racing_rotation_always_ends_revoked(backend: Backend) {
    let app = spawn_app(backend).await;
    for _ in 0..5 {
        let key = app.create_named("raced").await;
        let rotate_url = path(&key["id"], "/rotate");
        let revoke_url = path(&key["id"], "/revoke");
        let (rotated, revoked) = tokio::join!(
            app.call(Method::POST, &rotate_url, None),
            app.call(Method::PUT, &revoke_url, None)
        );
        assert!(matches!(rotated.status().as_u16(), 200 | 409), "{}", rotated.status());
        assert_eq!(revoked.status().as_u16(), 200);
        let got = json_of(app.call(Method::GET, &path(&key["id"], ""), None).await, 200).await;
        assert_eq!(got["is_revoked"], true, "a rotation never undoes a revocation");
    }
}

async fn concurrent_revocations_agree_on_one_time(backend: Backend) {
    let app = spawn_app(backend).await;
    let key = app.create_named("twice").await;
    let url = path(&key["id"], "/revoke");
    let responses = join_all((0..8).map(|_| app.call(Method::PUT, &url, None))).await;
    let mut times = HashSet::new();
    for response in responses {
        times.insert(json_of(response, 200).await["revoked_at"].as_str().unwrap().to_owned());
    }
    assert_eq!(times.len(), 1, "{times:?}");
    let events = json_of(app.call(Method::GET, &path(&key["id"], "/events"), None).await, 200).await;
    assert_eq!(
        events
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["action"] == "revoked")
            .count(),
        1
    );
}

async fn deletion_racing_reads_gives_200_or_404_never_an_error(backend: Backend) {
    let app = spawn_app(backend).await;
    let key = app.create_named("vanishing").await;
    let url = path(&key["id"], "");
    let reads = join_all((0..10).map(|_| app.call(Method::GET, &url, None)));
    let (reads, deleted) = tokio::join!(reads, app.call(Method::DELETE, &url, None));
    assert_eq!(deleted.status().as_u16(), 204);
    for read in reads {
        assert!(matches!(read.status().as_u16(), 200 | 404), "{}", read.status());
    }
}

async fn concurrent_updates_each_apply_whole_and_the_last_wins(backend: Backend) {
    let app = spawn_app(backend).await;
    let key = app.create_named("contended").await;
    let url = path(&key["id"], "");
    let bodies: Vec<Value> = (0..10)
        .map(|i| json!({"name": format!("name-{i}"), "description": format!("description-{i}")}))
        .collect();
    let responses = join_all(bodies.iter().map(|b| app.call(Method::PATCH, &url, Some(b)))).await;
    for response in responses {
        assert_eq!(response.status().as_u16(), 200);
    }
    let got = json_of(app.call(Method::GET, &url, None).await, 200).await;
    let name = got["name"].as_str().unwrap();
    let n = name.strip_prefix("name-").unwrap();
    assert_eq!(
        got["description"],
        format!("description-{n}"),
        "name and description come from the same update"
    );
    let events = json_of(app.call(Method::GET, &path(&key["id"], "/events"), None).await, 200).await;
    assert_eq!(
        events
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["action"] == "updated")
            .count(),
        10
    );
}

async fn every_route_is_mirrored_under_v1(backend: Backend) {
    let app = spawn_app(backend).await;
    let created = json_of(
        app.call(Method::POST, "/api/v1/api-keys/", Some(&json!({"name": "v1"})))
            .await,
        201,
    )
    .await;
    let v1 = |rest: &str| format!("/api/v1/api-keys/{}{rest}", created["id"].as_str().unwrap());
    assert_eq!(
        json_of(app.call(Method::GET, "/api/v1/api-keys", None).await, 200)
            .await
            .as_array()
            .unwrap()
            .len(),
        1
    );
    json_of(app.call(Method::GET, &v1(""), None).await, 200).await;
    json_of(
        app.call(Method::PATCH, &v1(""), Some(&json!({"name": "v1b"}))).await,
        200,
    )
    .await;
    let rotated = app.call(Method::POST, &v1("/rotate"), None).await;
    assert_eq!(rotated.headers()["location"].to_str().unwrap(), v1(""));
    json_of(rotated, 200).await;
    json_of(app.call(Method::PUT, &v1("/revoke"), None).await, 200).await;
    json_of(app.call(Method::GET, &v1("/events"), None).await, 200).await;
    assert_eq!(app.call(Method::DELETE, &v1(""), None).await.status().as_u16(), 204);
}

async fn every_lifecycle_route_requires_a_token(backend: Backend) {
    let app = spawn_app(backend).await;
    let id = Uuid::new_v4();
    for (method, url) in [
        (Method::GET, "/api/v2/api-keys".to_owned()),
        (Method::GET, format!("/api/v2/api-keys/{id}")),
        (Method::PATCH, format!("/api/v2/api-keys/{id}")),
        (Method::DELETE, format!("/api/v2/api-keys/{id}")),
        (Method::PUT, format!("/api/v2/api-keys/{id}/revoke")),
        (Method::POST, format!("/api/v2/api-keys/{id}/rotate")),
        (Method::GET, format!("/api/v2/api-keys/{id}/events")),
    ] {
        let response = app.client.request(method.clone(), app.url(&url)).send().await.unwrap();
        error_body(response, 401, "not_authenticated").await;
    }
}

for_each_backend!(
    the_list_is_the_organisations_keys_newest_first_without_private_keys,
    the_list_pages_through_link_headers_without_gaps_or_repeats,
    the_list_filters_by_environment_and_revocation,
    bad_list_parameters_are_422s_naming_the_parameter,
    get_returns_one_key_and_404s_unknown_and_foreign_keys_alike,
    update_renames_and_clears_the_description_with_create_validation,
    revocation_is_final_and_keeps_its_first_time,
    delete_removes_the_key_for_good,
    rotation_issues_a_new_private_key_for_the_same_key_once,
    revoked_and_expired_keys_cannot_be_rotated,
    expiry_is_optional_in_the_future_and_bounded,
    the_active_key_limit_is_a_409_until_a_key_is_revoked,
    concurrent_creates_never_exceed_the_limit,
    every_change_is_in_the_audit_trail_newest_first_without_secrets,
    another_organisations_key_is_404_on_every_route_and_untouched,
    revocation_racing_rotation_always_ends_revoked,
    concurrent_revocations_agree_on_one_time,
    deletion_racing_reads_gives_200_or_404_never_an_error,
    concurrent_updates_each_apply_whole_and_the_last_wins,
    every_route_is_mirrored_under_v1,
    every_lifecycle_route_requires_a_token,
);
