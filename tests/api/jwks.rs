//! Auth0-grade bearer authentication against a real local JWKS server with RSA and
//! EC keys generated at test time.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::{web, App, HttpResponse, HttpServer};
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::{KeyPair as RsaKeyPair, KeySize};
use aws_lc_rs::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use futures_util::future::join_all;
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use reqwest::Method;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::support::{error_body, spawn_app_with, test_settings, unix_now, Backend, TestApp};

const ISSUER: &str = "https://issuer.test/";
const AUDIENCE: &str = "https://keymint.test";

struct SigningKey {
    kid: String,
    algorithm: Algorithm,
    encoding: EncodingKey,
    jwk: Value,
    public_pem: String,
}

fn pem(label: &str, der: &[u8]) -> String {
    let body = STANDARD.encode(der);
    let lines: Vec<&str> = body
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    format!("-----BEGIN {label}-----\n{}\n-----END {label}-----\n", lines.join("\n"))
}

fn rsa_key(kid: &str) -> SigningKey {
    let pair = RsaKeyPair::generate(KeySize::Rsa2048).unwrap();
    let private: aws_lc_rs::encoding::Pkcs8V1Der = pair.as_der().unwrap();
    let public = pair.public_key();
    let spki: aws_lc_rs::encoding::PublicKeyX509Der = public.as_der().unwrap();
    SigningKey {
        kid: kid.into(),
        algorithm: Algorithm::RS256,
        encoding: EncodingKey::from_rsa_pem(pem("PRIVATE KEY", private.as_ref()).as_bytes()).unwrap(),
        jwk: json!({
            "kty": "RSA", "kid": kid, "use": "sig", "alg": "RS256",
            "n": URL_SAFE_NO_PAD.encode(public.modulus().big_endian_without_leading_zero()),
            "e": URL_SAFE_NO_PAD.encode(public.exponent().big_endian_without_leading_zero()),
        }),
        public_pem: pem("PUBLIC KEY", spki.as_ref()),
    }
}

fn ec_key(kid: &str) -> SigningKey {
    let rng = aws_lc_rs::rand::SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
    let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref()).unwrap();
    let point = pair.public_key().as_ref();
    SigningKey {
        kid: kid.into(),
        algorithm: Algorithm::ES256,
        encoding: EncodingKey::from_ec_der(pkcs8.as_ref()),
        jwk: json!({
            "kty": "EC", "kid": kid, "use": "sig", "alg": "ES256", "crv": "P-256",
            "x": URL_SAFE_NO_PAD.encode(&point[1..33]),
            "y": URL_SAFE_NO_PAD.encode(&point[33..65]),
        }),
        public_pem: String::new(),
    }
}

fn claims(org: &str) -> Value {
    json!({"iss": ISSUER, "aud": [AUDIENCE], "sub": "auth0|alice", "org_id": org, "iat": unix_now(), "exp": unix_now() + 300})
}

fn sign(key: &SigningKey, claims: &Value) -> String {
    let mut header = Header::new(key.algorithm);
    header.kid = Some(key.kid.clone());
    encode(&header, claims, &key.encoding).unwrap()
}

/// A stand-in identity provider serving a JWKS (and a discovery document).
struct Provider {
    base: String,
    keys: Arc<Mutex<Vec<Value>>>,
    up: Arc<AtomicBool>,
    fetches: Arc<AtomicUsize>,
    /// 0: answer normally; 1: answer with a 300 KiB document; 2: hang for 10 s.
    misbehave: Arc<AtomicUsize>,
}

impl Provider {
    async fn start(keys: &[&SigningKey]) -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let provider = Provider {
            base: base.clone(),
            keys: Arc::new(Mutex::new(keys.iter().map(|k| k.jwk.clone()).collect())),
            up: Arc::new(AtomicBool::new(true)),
            fetches: Arc::new(AtomicUsize::new(0)),
            misbehave: Arc::new(AtomicUsize::new(0)),
        };
        let (keys, up, fetches, misbehave) = (
            provider.keys.clone(),
            provider.up.clone(),
            provider.fetches.clone(),
            provider.misbehave.clone(),
        );
        let server = HttpServer::new(move || {
            let (keys, up, fetches, base, misbehave) = (
                keys.clone(),
                up.clone(),
                fetches.clone(),
                base.clone(),
                misbehave.clone(),
            );
            App::new()
                .route(
                    "/jwks.json",
                    web::get().to(move || {
                        let (keys, up, fetches, misbehave) =
                            (keys.clone(), up.clone(), fetches.clone(), misbehave.clone());
                        async move {
                            fetches.fetch_add(1, Ordering::SeqCst);
                            if !up.load(Ordering::SeqCst) {
                                return HttpResponse::ServiceUnavailable().finish();
                            }
                            match misbehave.load(Ordering::SeqCst) {
                                1 => {
                                    let padding = "x".repeat(300 * 1024);
                                    let keys = keys.lock().unwrap().clone();
                                    return HttpResponse::Ok().json(json!({"keys": keys, "padding": padding}));
                                }
                                2 => tokio::time::sleep(Duration::from_secs(10)).await,
                                _ => {}
                            }
                            HttpResponse::Ok().json(json!({"keys": *keys.lock().unwrap()}))
                        }
                    }),
                )
                .route(
                    "/.well-known/openid-configuration",
                    web::get().to(move || {
                        let base = base.clone();
                        async move {
                            HttpResponse::Ok()
                                .json(json!({"issuer": format!("{base}/"), "jwks_uri": format!("{base}/jwks.json")}))
                        }
                    }),
                )
        })
        .workers(1)
        .listen(listener)
        .unwrap()
        .run();
        tokio::spawn(server);
        provider
    }

    fn jwks_url(&self) -> String {
        format!("{}/jwks.json", self.base)
    }

    fn fetches(&self) -> usize {
        self.fetches.load(Ordering::SeqCst)
    }
}

async fn keymint(provider: &Provider, backend: Backend, extra: &[(&str, Value)]) -> TestApp {
    let dir = tempfile::tempdir().unwrap();
    let mut figment = test_settings(backend, &dir)
        .merge(("auth.hs256_secret", ""))
        .merge(("auth.jwks_url", provider.jwks_url()))
        .merge(("auth.issuer", ISSUER))
        .merge(("auth.audience", AUDIENCE))
        .merge(("auth.algorithms", "RS256,ES256"))
        .merge(("auth.jwks_timeout_seconds", 2));
    for (key, value) in extra {
        figment = figment.merge((*key, value.clone()));
    }
    spawn_app_with(figment, dir).await
}

async fn create_with(app: &TestApp, token: &str) -> reqwest::Response {
    app.client
        .post(app.url("/api/v2/api-keys"))
        .header("authorization", format!("Bearer {token}"))
        .json(&json!({"name": "via jwks"}))
        .send()
        .await
        .unwrap()
}

async fn invalid_token(response: reqwest::Response, reason: &str) {
    let challenge = response
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let body = error_body(response, 401, "invalid_token").await;
    assert!(
        body["detail"].as_str().unwrap().contains(reason),
        "wanted '{reason}': {body}"
    );
    assert!(
        challenge.contains(r#"error="invalid_token""#) && challenge.contains(reason),
        "{challenge}"
    );
}

#[tokio::test]
async fn valid_rs256_and_es256_tokens_are_accepted() {
    let (rsa, ec) = (rsa_key("rsa-1"), ec_key("ec-1"));
    let provider = Provider::start(&[&rsa, &ec]).await;
    let app = keymint(&provider, Backend::Memory, &[]).await;
    let org = Uuid::new_v4().to_string();
    for key in [&rsa, &ec] {
        let response = create_with(&app, &sign(key, &claims(&org))).await;
        assert_eq!(response.status().as_u16(), 201, "{:?}", key.algorithm);
        assert_eq!(response.json::<Value>().await.unwrap()["org_id"], org);
    }
}

#[tokio::test]
async fn a_rotated_in_key_is_fetched_on_first_sight_and_a_removed_one_dropped_by_the_refresh() {
    let (old, new) = (rsa_key("old"), ec_key("new"));
    let provider = Provider::start(&[&old]).await;
    let app = keymint(&provider, Backend::Memory, &[("auth.jwks_refresh_seconds", json!(1))]).await;
    let org = Uuid::new_v4().to_string();

    provider.keys.lock().unwrap().push(new.jwk.clone());
    assert_eq!(
        create_with(&app, &sign(&new, &claims(&org))).await.status().as_u16(),
        201,
        "new kid after a refetch"
    );

    provider.keys.lock().unwrap().retain(|k| k["kid"] != "old");
    assert_eq!(
        create_with(&app, &sign(&old, &claims(&org))).await.status().as_u16(),
        201,
        "cached until the refresh"
    );
    let before = provider.fetches();
    tokio::time::sleep(Duration::from_millis(2200)).await;
    assert!(provider.fetches() > before, "the background refresh ran");
    invalid_token(create_with(&app, &sign(&old, &claims(&org))).await, "key id is unknown").await;
}

#[tokio::test]
async fn a_storm_of_requests_with_an_unknown_key_id_causes_one_fetch() {
    let (known, ghost) = (rsa_key("known"), rsa_key("ghost"));
    let provider = Provider::start(&[&known]).await;
    let app = keymint(&provider, Backend::Memory, &[("auth.jwks_cooldown_seconds", json!(30))]).await;
    let before = provider.fetches();
    let token = sign(&ghost, &claims(&Uuid::new_v4().to_string()));

    let responses = join_all((0..100).map(|_| create_with(&app, &token))).await;

    for response in responses {
        assert_eq!(response.status().as_u16(), 401);
    }
    assert_eq!(provider.fetches() - before, 1, "one refetch for the whole storm");
}

#[tokio::test]
async fn cached_keys_keep_working_while_the_provider_is_down() {
    let key = rsa_key("k");
    let provider = Provider::start(&[&key]).await;
    let app = keymint(&provider, Backend::Memory, &[("auth.jwks_cooldown_seconds", json!(0))]).await;
    provider.up.store(false, Ordering::SeqCst);

    assert_eq!(
        create_with(&app, &sign(&key, &claims(&Uuid::new_v4().to_string())))
            .await
            .status()
            .as_u16(),
        201
    );
    let stranger = rsa_key("unknown");
    invalid_token(
        create_with(&app, &sign(&stranger, &claims(&Uuid::new_v4().to_string()))).await,
        "key id is unknown",
    )
    .await;
}

#[tokio::test]
async fn with_no_key_ever_fetched_requests_get_503_not_401() {
    let key = rsa_key("k");
    let provider = Provider::start(&[&key]).await;
    provider.up.store(false, Ordering::SeqCst);
    let app = keymint(&provider, Backend::Memory, &[("auth.jwks_cooldown_seconds", json!(0))]).await;

    let response = create_with(&app, &sign(&key, &claims(&Uuid::new_v4().to_string()))).await;
    assert_eq!(response.headers()["retry-after"], "5");
    error_body(response, 503, "auth_unavailable").await;

    provider.up.store(true, Ordering::SeqCst);
    let response = create_with(&app, &sign(&key, &claims(&Uuid::new_v4().to_string()))).await;
    assert_eq!(response.status().as_u16(), 201, "recovers once the provider answers");
}

#[tokio::test]
async fn every_bad_token_gets_its_exact_status_and_code() {
    let (rsa, other) = (rsa_key("rsa"), rsa_key("second"));
    let provider = Provider::start(&[&rsa, &other]).await;
    let app = keymint(&provider, Backend::Memory, &[]).await;
    let org = Uuid::new_v4().to_string();
    let good = sign(&rsa, &claims(&org));
    let parts: Vec<&str> = good.split('.').collect();
    let with = |field: &str, value: Value| {
        let mut c = claims(&org);
        c[field] = value;
        sign(&rsa, &c)
    };

    let unsigned = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(r#"{"alg":"none","kid":"rsa"}"#),
        parts[1]
    );
    let mut confused = Header::new(Algorithm::HS256);
    confused.kid = Some("rsa".into());
    let confused = encode(
        &confused,
        &claims(&org),
        &EncodingKey::from_secret(rsa.public_pem.as_bytes()),
    )
    .unwrap();
    let mut no_kid = Header::new(Algorithm::RS256);
    no_kid.kid = None;
    let no_kid = encode(&no_kid, &claims(&org), &rsa.encoding).unwrap();
    let mut forged = claims(&Uuid::new_v4().to_string());
    forged["sub"] = json!("auth0|mallory");
    let tampered_payload = format!(
        "{}.{}.{}",
        parts[0],
        URL_SAFE_NO_PAD.encode(forged.to_string()),
        parts[2]
    );
    let mut signature = parts[2].to_owned();
    let flipped = if signature.starts_with('A') { "B" } else { "A" };
    signature.replace_range(0..1, flipped);
    let tampered_signature = format!("{}.{}.{}", parts[0], parts[1], signature);

    let cases = [
        ("alg none", unsigned, "algorithm is not allowed"),
        (
            "HS256 keyed with the RSA public key",
            confused,
            "algorithm is not allowed",
        ),
        ("expired", with("exp", json!(unix_now() - 600)), "expired"),
        (
            "nbf in the future",
            with("nbf", json!(unix_now() + 600)),
            "not valid yet",
        ),
        (
            "iat in the future",
            with("iat", json!(unix_now() + 600)),
            "issued in the future",
        ),
        ("wrong iss", with("iss", json!("https://evil.test/")), "issuer"),
        ("wrong aud", with("aud", json!("https://elsewhere.test")), "audience"),
        ("no kid among several keys", no_kid, "key id is unknown"),
        (
            "unknown kid",
            sign(&rsa_key("nobody"), &claims(&org)),
            "key id is unknown",
        ),
        ("tampered payload", tampered_payload, "signature is invalid"),
        ("tampered signature", tampered_signature, "signature is invalid"),
        ("garbage", "garbage".to_owned(), "malformed"),
        ("10 KiB", "a".repeat(10 * 1024), "too large"),
    ];
    for (case, token, reason) in cases {
        let response = create_with(&app, &token).await;
        assert_eq!(response.status().as_u16(), 401, "{case}");
        invalid_token(response, reason).await;
    }
    for authorization in ["Bearer ", &format!("Basic {}", STANDARD.encode("user:pass"))] {
        let response = app
            .client
            .post(app.url("/api/v2/api-keys"))
            .header("authorization", authorization)
            .json(&json!({"name": "x"}))
            .send()
            .await
            .unwrap();
        error_body(response, 401, "not_authenticated").await;
    }
    assert_eq!(
        create_with(&app, &good).await.status().as_u16(),
        201,
        "the untampered token still works"
    );
}

#[tokio::test]
async fn provider_organisation_ids_map_to_stable_uuids_and_stay_apart() {
    let key = rsa_key("k");
    let provider = Provider::start(&[&key]).await;
    let dir = tempfile::tempdir().unwrap();
    let figment = |dir: &tempfile::TempDir| {
        test_settings(Backend::Sqlite, dir)
            .merge(("auth.hs256_secret", ""))
            .merge(("auth.jwks_url", provider.jwks_url()))
            .merge(("auth.issuer", ISSUER))
            .merge(("auth.audience", AUDIENCE))
    };
    let acme = sign(&key, &claims("org_9ybsU1dN2dKfDkBi"));
    let globex = sign(&key, &claims("org_globex"));

    let first = spawn_app_with(figment(&dir), tempfile::tempdir().unwrap()).await;
    let bodies = join_all((0..20).map(|_| create_with(&first, &acme))).await;
    let mut orgs = std::collections::HashSet::new();
    for response in bodies {
        assert_eq!(response.status().as_u16(), 201);
        orgs.insert(
            response.json::<Value>().await.unwrap()["org_id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    assert_eq!(orgs.len(), 1, "concurrent first requests agree on one organisation");
    let acme_id = orgs.into_iter().next().unwrap();
    Uuid::parse_str(&acme_id).unwrap();

    let second = spawn_app_with(figment(&dir), tempfile::tempdir().unwrap()).await;
    let listed = second
        .client
        .get(second.url("/api/v2/api-keys"))
        .header("authorization", format!("Bearer {acme}"))
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    assert_eq!(
        listed.as_array().unwrap().len(),
        20,
        "after a restart, the same organisation"
    );
    assert!(listed
        .as_array()
        .unwrap()
        .iter()
        .all(|k| k["org_id"] == acme_id.as_str()));

    let others = second
        .client
        .get(second.url("/api/v2/api-keys"))
        .header("authorization", format!("Bearer {globex}"))
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    assert_eq!(others, json!([]), "another organisation sees none of them");
}

#[tokio::test]
async fn a_namespaced_organisation_claim_works() {
    let key = ec_key("k");
    let provider = Provider::start(&[&key]).await;
    let claim = "https://keymint.test/org_id";
    let app = keymint(&provider, Backend::Memory, &[("auth.org_claim", json!(claim))]).await;
    let mut c = claims("ignored");
    c.as_object_mut().unwrap().remove("org_id");
    let org = Uuid::new_v4().to_string();
    c[claim] = json!(org);
    let response = create_with(&app, &sign(&key, &c)).await;
    assert_eq!(response.json::<Value>().await.unwrap()["org_id"], org);
    let without: Value = claims(&org);
    error_body(create_with(&app, &sign(&key, &without)).await, 403, "no_organization").await;
}

#[tokio::test]
async fn required_permissions_come_from_the_permissions_array_or_scope() {
    let key = rsa_key("k");
    let provider = Provider::start(&[&key]).await;
    let app = keymint(&provider, Backend::Memory, &[("auth.require_permissions", json!(true))]).await;
    let org = Uuid::new_v4().to_string();
    let token_with = |field: &str, value: Value| {
        let mut c = claims(&org);
        c[field] = value;
        sign(&key, &c)
    };
    let reader = token_with("permissions", json!(["read:api_keys"]));
    let writer = token_with("scope", json!("openid read:api_keys write:api_keys"));
    let nobody = sign(&key, &claims(&org));

    let denied = error_body(create_with(&app, &reader).await, 403, "insufficient_permissions").await;
    assert!(
        denied["detail"].as_str().unwrap().contains("write:api_keys"),
        "{denied}"
    );
    assert_eq!(create_with(&app, &writer).await.status().as_u16(), 201);
    let list = |token: String| {
        let app = &app;
        async move {
            app.client
                .get(app.url("/api/v2/api-keys"))
                .header("authorization", format!("Bearer {token}"))
                .send()
                .await
                .unwrap()
        }
    };
    assert_eq!(list(reader.clone()).await.status().as_u16(), 200);
    let denied = error_body(list(nobody).await, 403, "insufficient_permissions").await;
    assert!(denied["detail"].as_str().unwrap().contains("read:api_keys"), "{denied}");
    let method = app.call(Method::GET, "/healthz", None).await;
    assert_eq!(method.status().as_u16(), 200);
}

#[tokio::test]
async fn the_issuer_alone_is_enough_through_oidc_discovery() {
    let key = rsa_key("k");
    let provider = Provider::start(&[&key]).await;
    let issuer = format!("{}/", provider.base);
    // With no secret, and with the shipped development secret left in place: an
    // explicitly configured issuer wins over a shipped default.
    for secret in [Some(""), None] {
        let dir = tempfile::tempdir().unwrap();
        let mut figment = test_settings(Backend::Memory, &dir)
            .merge(("auth.issuer", issuer.clone()))
            .merge(("auth.audience", AUDIENCE));
        if let Some(secret) = secret {
            figment = figment.merge(("auth.hs256_secret", secret));
        }
        let app = spawn_app_with(figment, dir).await;
        let mut c = claims(&Uuid::new_v4().to_string());
        c["iss"] = json!(issuer);
        assert_eq!(
            create_with(&app, &sign(&key, &c)).await.status().as_u16(),
            201,
            "secret {secret:?}"
        );
        let dev = create_with(&app, &app.token()).await;
        assert_eq!(dev.status().as_u16(), 401, "HS256 is off: secret {secret:?}");
    }
    assert!(provider.fetches() >= 1);
}

#[tokio::test]
async fn an_oversized_or_hanging_jwks_is_a_failed_fetch_not_a_hang() {
    let key = rsa_key("k");
    for (mode, what) in [(1, "oversized"), (2, "hanging")] {
        let provider = Provider::start(&[&key]).await;
        provider.misbehave.store(mode, Ordering::SeqCst);
        let started = std::time::Instant::now();
        let app = keymint(&provider, Backend::Memory, &[("auth.jwks_timeout_seconds", json!(1))]).await;
        let response = create_with(&app, &sign(&key, &claims(&Uuid::new_v4().to_string()))).await;
        error_body(response, 503, "auth_unavailable").await;
        assert!(
            started.elapsed() < Duration::from_secs(8),
            "{what}: bounded by the fetch timeout"
        );
    }
}
