//! The console's server side: the page and its assets, how to sign in, the
//! development sign-in (and its absence elsewhere), and the name search the
//! console's list uses. The pages themselves are tested in a browser
//! (`tests/console.rs`).

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::for_each_backend;
use crate::support::{error_body, json_of, spawn_app, spawn_app_with, test_settings, Backend, TestApp};

fn names(list: &Value) -> Vec<&str> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|k| k["name"].as_str().unwrap())
        .collect()
}

async fn list(app: &TestApp, query: &[(&str, &str)]) -> reqwest::Response {
    let url = reqwest::Url::parse_with_params(&app.url("/api/v2/api-keys"), query).unwrap();
    app.call(Method::GET, &format!("{}?{}", url.path(), url.query().unwrap()), None)
        .await
}

async fn the_list_searches_names_ignoring_case_and_pages_keep_the_search(backend: Backend) {
    let app = spawn_app(backend).await;
    for name in ["Élan billing", "ÉLAN reports", "other", "50% off", "élan_ops"] {
        json_of(app.create_key(&json!({"name": name})).await, 201).await;
    }
    let found = json_of(list(&app, &[("name", "élan")]).await, 200).await;
    assert_eq!(names(&found), ["élan_ops", "ÉLAN reports", "Élan billing"]);
    let found = json_of(list(&app, &[("name", "%")]).await, 200).await;
    assert_eq!(names(&found), ["50% off"], "% is text");

    let first = list(&app, &[("name", "ÉLAN"), ("limit", "2")]).await;
    let link = first.headers()["link"].to_str().unwrap().to_owned();
    assert_eq!(names(&json_of(first, 200).await), ["élan_ops", "ÉLAN reports"]);
    let next = link.trim_start_matches('<').split('>').next().unwrap().to_owned();
    let second = json_of(app.call(Method::GET, &next, None).await, 200).await;
    assert_eq!(names(&second), ["Élan billing"], "the next page keeps the search");

    for bad in ["", "a\u{0}b", "   ", &"x".repeat(101)] {
        let body = error_body(list(&app, &[("name", bad)]).await, 422, "validation_error").await;
        assert_eq!(body["detail"][0]["loc"], json!(["query", "name"]), "{bad:?}");
    }
}

for_each_backend!(the_list_searches_names_ignoring_case_and_pages_keep_the_search);

async fn get(app: &TestApp, path: &str) -> reqwest::Response {
    app.client.get(app.url(path)).send().await.unwrap()
}

#[tokio::test]
async fn the_console_page_is_served_for_every_console_path_with_a_strict_policy() {
    let app = spawn_app(Backend::Memory).await;
    for path in [
        "/console",
        "/console/",
        "/console/keys/new",
        "/console/keys/0192f0c1-0000-7000-8000-000000000000",
    ] {
        let response = get(&app, path).await;
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        let headers = response.headers().clone();
        let policy = headers["content-security-policy"].to_str().unwrap();
        assert!(policy.contains("script-src 'self';"), "{policy}");
        assert!(!policy.contains("unsafe-inline"), "{policy}");
        assert!(policy.contains("frame-ancestors 'none'"), "{policy}");
        assert_eq!(headers["referrer-policy"], "no-referrer");
        assert!(headers["content-type"].to_str().unwrap().starts_with("text/html"));
        let page = response.text().await.unwrap();
        assert!(page.contains(r#"<script type="module" src="/console/assets/js/main.js">"#));
        assert!(!page.contains("<script>"), "no inline script");
        // Development sign-in: the banner saying so is there before any script runs.
        assert!(page.contains(r#"<p id="dev-banner" class="banner">"#), "{page}");
    }
    let response = app.client.post(app.url("/console")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test]
async fn assets_are_embedded_and_revalidated_by_their_etag() {
    let app = spawn_app(Backend::Memory).await;
    for (path, kind) in [
        ("/console/assets/js/main.js", "text/javascript"),
        ("/console/assets/js/pages/key.js", "text/javascript"),
        ("/console/assets/console.css", "text/css"),
        ("/console/assets/icon.svg", "image/svg+xml"),
    ] {
        let response = get(&app, path).await;
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        assert!(response.headers()["content-type"].to_str().unwrap().starts_with(kind));
        assert_eq!(response.headers()["cache-control"], "no-cache");
        let etag = response.headers()["etag"].to_str().unwrap().to_owned();
        assert!(!response.bytes().await.unwrap().is_empty());
        let again = app
            .client
            .get(app.url(path))
            .header("if-none-match", &etag)
            .send()
            .await
            .unwrap();
        assert_eq!(again.status(), StatusCode::NOT_MODIFIED, "{path}");
        assert!(again.bytes().await.unwrap().is_empty());
    }
    // An asset that does not exist is not the page: a module importing it
    // fails on a 404 rather than on HTML where a script was expected.
    error_body(get(&app, "/console/assets/other.js").await, 404, "not_found").await;
    error_body(get(&app, "/console/assets/console.js").await, 404, "not_found").await;
}

#[tokio::test]
async fn the_development_sign_in_issues_a_token_the_api_accepts() {
    let app = spawn_app(Backend::Memory).await;
    let config: Value = get(&app, "/console/config.json").await.json().await.unwrap();
    assert_eq!(config, json!({"sign_in": "development"}));

    let org = Uuid::new_v4();
    let response = app
        .client
        .post(app.url("/console/dev-session"))
        .json(&json!({"org_id": org.to_string(), "name": "alice"}))
        .send()
        .await
        .unwrap();
    let session = json_of(response, 201).await;
    let token = session["access_token"].as_str().unwrap();
    assert_eq!(session["token_type"], "Bearer");
    let expires_at = session["expires_at"].as_u64().unwrap();
    let now = crate::support::unix_now();
    assert!((now + 3500..=now + 3700).contains(&expires_at), "an hour by default");
    let created = app
        .client
        .post(app.url("/api/v2/api-keys"))
        .bearer_auth(token)
        .json(&json!({"name": "from the console"}))
        .send()
        .await
        .unwrap();
    let created = json_of(created, 201).await;
    assert_eq!(created["org_id"], org.to_string());
    let events = app
        .client
        .get(app.url(&format!("/api/v2/api-keys/{}/events", created["id"].as_str().unwrap())))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(json_of(events, 200).await[0]["actor"], "alice");
}

#[tokio::test]
async fn a_bad_development_sign_in_names_each_field() {
    let app = spawn_app(Backend::Memory).await;
    let response = app
        .client
        .post(app.url("/console/dev-session"))
        .json(&json!({"org_id": Uuid::nil().to_string(), "name": "a\u{7}", "role": "admin"}))
        .send()
        .await
        .unwrap();
    let body = error_body(response, 422, "validation_error").await;
    let locs: Vec<&Value> = body["detail"].as_array().unwrap().iter().map(|d| &d["loc"]).collect();
    assert_eq!(
        locs,
        [
            &json!(["body", "org_id"]),
            &json!(["body", "name"]),
            &json!(["body", "role"])
        ]
    );
    let response = app
        .client
        .post(app.url("/console/dev-session"))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);

    // The name becomes the token's subject: what authentication would refuse
    // (a bidirectional override, white space alone, 65 characters) is refused
    // here, not handed out as a token that then fails.
    for name in [
        "alice\u{202e}",
        "   ",
        &"a".repeat(65),
        "\u{2800}",
        "\u{0301}",
        "a\u{2028}b",
    ] {
        let response = app
            .client
            .post(app.url("/console/dev-session"))
            .json(&json!({"org_id": Uuid::new_v4().to_string(), "name": name}))
            .send()
            .await
            .unwrap();
        let body = error_body(response, 422, "validation_error").await;
        assert_eq!(body["detail"][0]["loc"], json!(["body", "name"]), "{name:?}");
    }
}

/// The route does not exist: the same 404 as any unknown path.
async fn there_is_no_development_sign_in(app: &TestApp) {
    let response = app
        .client
        .post(app.url("/console/dev-session"))
        .json(&json!({"org_id": Uuid::new_v4().to_string()}))
        .send()
        .await
        .unwrap();
    error_body(response, 404, "not_found").await;
}

#[tokio::test]
async fn outside_the_development_profile_there_is_no_development_sign_in() {
    let dir = tempfile::tempdir().unwrap();
    let production = test_settings(Backend::Memory, &dir)
        .merge(("profile", "production"))
        .merge(("auth.hs256_secret", "a-production-secret-of-at-least-thirty-two-bytes"));
    let app = spawn_app_with(production, dir).await;
    let config: Value = get(&app, "/console/config.json").await.json().await.unwrap();
    assert_eq!(config, json!({"sign_in": "unavailable"}));
    there_is_no_development_sign_in(&app).await;
}

/// A development profile on a listener other hosts can reach (a strong
/// secret set, the profile kept) offers no development sign-in unless asked:
/// anyone reaching it would get a token for any organisation.
#[tokio::test]
async fn the_development_sign_in_is_only_on_loopback_unless_allowed() {
    for (allowed, expected) in [
        (false, json!({"sign_in": "unavailable"})),
        (true, json!({"sign_in": "development"})),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let exposed = test_settings(Backend::Memory, &dir)
            .merge(("server.listen", "0.0.0.0:0"))
            .merge(("auth.hs256_secret", "an-operator-chosen-secret-of-at-least-32-bytes"))
            .merge(("console.allow_remote_dev_sign_in", allowed));
        let app = spawn_app_with(exposed, dir).await;
        let config: Value = get(&app, "/console/config.json").await.json().await.unwrap();
        assert_eq!(config, expected, "allowed: {allowed}");
        if !allowed {
            there_is_no_development_sign_in(&app).await;
        }
    }
}

#[tokio::test]
async fn with_a_client_id_the_console_signs_in_at_the_issuer() {
    let dir = tempfile::tempdir().unwrap();
    let oidc = test_settings(Backend::Memory, &dir)
        .merge(("auth.hs256_secret", "an-operator-secret-of-at-least-thirty-two-bytes"))
        .merge(("auth.issuer", "https://tenant.eu.auth0.com/"))
        .merge(("auth.audience", "https://keymint.example"))
        .merge(("console.client_id", "AbC123"));
    let app = spawn_app_with(oidc, dir).await;
    let config: Value = get(&app, "/console/config.json").await.json().await.unwrap();
    assert_eq!(
        config,
        json!({"sign_in": "oidc", "issuer": "https://tenant.eu.auth0.com/", "client_id": "AbC123",
               "audience": "https://keymint.example", "scope": "openid profile email", "org_claim": "org_id"})
    );
    let page = get(&app, "/console").await;
    let policy = page.headers()["content-security-policy"].to_str().unwrap().to_owned();
    assert!(
        policy.contains("connect-src 'self' https://tenant.eu.auth0.com;"),
        "{policy}"
    );
    let html = page.text().await.unwrap();
    assert!(html.contains(r#"<p id="dev-banner" class="banner" hidden>"#), "{html}");
    there_is_no_development_sign_in(&app).await;
}

#[tokio::test]
async fn a_disabled_console_is_not_served() {
    let dir = tempfile::tempdir().unwrap();
    let app = spawn_app_with(
        test_settings(Backend::Memory, &dir).merge(("console.enabled", false)),
        dir,
    )
    .await;
    error_body(get(&app, "/console").await, 404, "not_found").await;
    error_body(get(&app, "/console/assets/js/main.js").await, 404, "not_found").await;
}
