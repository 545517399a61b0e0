use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use serde_json::{json, Value};

use crate::for_each_backend;
use crate::support::{error_body, spawn_app, spawn_app_with, test_settings, unix_now, Backend, TestApp};

async fn post_with_authorization(app: &TestApp, authorization: Option<&str>) -> reqwest::Response {
    let mut request = app
        .client
        .post(app.url("/api/v2/api-keys"))
        .json(&json!({"name": "auth"}));
    if let Some(value) = authorization {
        request = request.header("authorization", value);
    }
    request.send().await.unwrap()
}

fn signed(claims: Value, secret: &str) -> String {
    encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap()
}

async fn a_request_without_a_bearer_token_is_401_with_a_bearer_challenge(backend: Backend) {
    let app = spawn_app(backend).await;
    for authorization in [None, Some("Basic dXNlcjpwYXNz"), Some("Bearer"), Some("Bearer    ")] {
        let response = post_with_authorization(&app, authorization).await;
        assert_eq!(
            response.headers()["www-authenticate"],
            r#"Bearer realm="keymint""#,
            "{authorization:?}"
        );
        error_body(response, 401, "not_authenticated").await;
    }
}

async fn invalid_tokens_are_401_naming_the_failed_check_without_echoing_the_token(backend: Backend) {
    let app = spawn_app(backend).await;
    let secret = "keymint-development-secret-do-not-use-in-production";
    let org = app.org_id.to_string();
    let cases = [
        ("garbage", "not-a-jwt".to_owned(), "malformed"),
        (
            "wrong secret",
            signed(json!({"org_id": org, "exp": unix_now() + 60}), "some-other-secret"),
            "signature",
        ),
        (
            "expired",
            signed(json!({"org_id": org, "exp": unix_now() - 600}), secret),
            "expired",
        ),
        (
            "not yet valid",
            signed(
                json!({"org_id": org, "exp": unix_now() + 600, "nbf": unix_now() + 300}),
                secret,
            ),
            "not valid yet",
        ),
        (
            "no exp",
            signed(json!({"org_id": org}), secret),
            "lacks a required claim",
        ),
        ("too large", "a".repeat(9 * 1024), "too large"),
    ];
    for (case, token, reason) in cases {
        let response = post_with_authorization(&app, Some(&format!("Bearer {token}"))).await;
        let challenge = response.headers()["www-authenticate"].to_str().unwrap().to_owned();
        assert!(
            challenge.starts_with(r#"Bearer realm="keymint", error="invalid_token", error_description=""#),
            "{case}: {challenge}"
        );
        assert!(challenge.contains(reason), "{case}: {challenge}");
        let body = error_body(response, 401, "invalid_token").await;
        assert!(body["detail"].as_str().unwrap().contains(reason), "{case}: {body}");
        let token_tail = &token[token.len().saturating_sub(16)..];
        assert!(
            !body.to_string().contains(token_tail) && !challenge.contains(token_tail),
            "{case} echoed the token"
        );
    }
}

async fn the_bearer_scheme_is_case_insensitive(backend: Backend) {
    let app = spawn_app(backend).await;
    for scheme in ["bearer", "BEARER", "Bearer"] {
        let response = post_with_authorization(&app, Some(&format!("{scheme} {}", app.token()))).await;
        assert_eq!(response.status().as_u16(), 201, "{scheme}");
    }
}

async fn a_valid_token_without_an_organisation_is_403_no_organization(backend: Backend) {
    let app = spawn_app(backend).await;
    let secret = "keymint-development-secret-do-not-use-in-production";
    for claims in [
        json!({"sub": "u", "exp": unix_now() + 60}),
        json!({"sub": "u", "exp": unix_now() + 60, "org_id": ""}),
        json!({"sub": "u", "exp": unix_now() + 60, "org_id": ["3c90c3cc-0d44-4b50-8888-8dd25736052a"]}),
        json!({"sub": "u", "exp": unix_now() + 60, "org_id": 17}),
    ] {
        let response = post_with_authorization(&app, Some(&format!("Bearer {}", signed(claims, secret)))).await;
        error_body(response, 403, "no_organization").await;
    }
}

async fn issuer_and_audience_are_enforced_when_configured(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    // An issuer next to the shipped development secret selects the identity
    // provider; an operator's own HS256 secret keeps HS256.
    let secret = "an-operator-chosen-hs256-secret-0123456789";
    let figment = test_settings(backend, &dir)
        .merge(("auth.hs256_secret", secret))
        .merge(("auth.issuer", "https://issuer.example/"))
        .merge(("auth.audience", "https://keymint.example"));
    let app = spawn_app_with(figment, dir).await;
    let org = app.org_id.to_string();
    let base = |iss: &str, aud: Value| json!({"org_id": org, "sub": "auth0|alice", "exp": unix_now() + 60, "iss": iss, "aud": aud});

    let ok = post_with_authorization(&app, Some(&format!("Bearer {}", app.token()))).await;
    assert_eq!(ok.status().as_u16(), 201, "dev tokens carry the configured iss and aud");
    let array_aud = signed(
        base("https://issuer.example/", json!(["x", "https://keymint.example"])),
        secret,
    );
    assert_eq!(
        post_with_authorization(&app, Some(&format!("Bearer {array_aud}")))
            .await
            .status()
            .as_u16(),
        201
    );

    for (token, reason) in [
        (
            signed(base("https://evil.example/", json!("https://keymint.example")), secret),
            "issuer",
        ),
        (
            signed(base("https://issuer.example/", json!("https://other.example")), secret),
            "audience",
        ),
    ] {
        let response = post_with_authorization(&app, Some(&format!("Bearer {token}"))).await;
        let body = error_body(response, 401, "invalid_token").await;
        assert!(body["detail"].as_str().unwrap().contains(reason), "{body}");
    }
}

async fn authentication_is_checked_before_the_body(backend: Backend) {
    let app = spawn_app(backend).await;
    let response = app
        .client
        .post(app.url("/api/v2/api-keys"))
        .header("content-type", "application/json")
        .body("{")
        .send()
        .await
        .unwrap();
    error_body(response, 401, "not_authenticated").await;
}

async fn a_sub_that_no_database_could_store_is_401_naming_the_claim(backend: Backend) {
    let app = spawn_app(backend).await;
    let secret = "keymint-development-secret-do-not-use-in-production";
    let org = app.org_id.to_string();
    let token = |sub: &str| signed(json!({"org_id": org, "exp": unix_now() + 60, "sub": sub}), secret);
    let unrecordable = [
        "x".repeat(256),
        "nul\u{0}byte".to_owned(),
        "\u{1b}[2J".to_owned(),
        String::new(),
        // Shows nothing: the audit trail would name an invisible actor.
        "\u{2800}".to_owned(),
        "\u{200B}".to_owned(),
    ]
    .map(|sub| (format!("{sub:?}"), token(&sub)));
    // No sub at all, or one that is not a string: refused, not recorded as nobody.
    let missing = signed(json!({"org_id": org, "exp": unix_now() + 60}), secret);
    let numeric = signed(json!({"org_id": org, "exp": unix_now() + 60, "sub": 12345}), secret);
    for (what, token) in unrecordable
        .into_iter()
        .chain([("no sub".to_owned(), missing), ("numeric sub".to_owned(), numeric)])
    {
        let response = post_with_authorization(&app, Some(&format!("Bearer {token}"))).await;
        let body = error_body(response, 401, "invalid_token").await;
        assert!(body["detail"].as_str().unwrap().contains("sub claim"), "{what}: {body}");
    }
    // At the limit, in characters of several bytes, on every database alike.
    let sub = "ü".repeat(255);
    let created = post_with_authorization(&app, Some(&format!("Bearer {}", token(&sub)))).await;
    assert_eq!(created.status().as_u16(), 201);
    let id = created.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let events: Value = app
        .call(reqwest::Method::GET, &format!("/api/v2/api-keys/{id}/events"), None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(events[0]["actor"], sub.as_str());
}

async fn two_authorization_headers_are_refused(backend: Backend) {
    let app = spawn_app(backend).await;
    let response = app
        .client
        .post(app.url("/api/v2/api-keys"))
        .header("authorization", format!("Bearer {}", app.token()))
        .header(
            "authorization",
            format!("Bearer {}", app.token_for(uuid::Uuid::new_v4())),
        )
        .json(&json!({"name": "two"}))
        .send()
        .await
        .unwrap();
    let body = error_body(response, 401, "invalid_token").await;
    assert!(body["detail"].as_str().unwrap().contains("exactly one"), "{body}");
}

for_each_backend!(
    a_request_without_a_bearer_token_is_401_with_a_bearer_challenge,
    invalid_tokens_are_401_naming_the_failed_check_without_echoing_the_token,
    the_bearer_scheme_is_case_insensitive,
    a_valid_token_without_an_organisation_is_403_no_organization,
    issuer_and_audience_are_enforced_when_configured,
    authentication_is_checked_before_the_body,
    a_sub_that_no_database_could_store_is_401_naming_the_claim,
    two_authorization_headers_are_refused,
);
