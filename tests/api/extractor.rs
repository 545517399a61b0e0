//! The `VerifiedApiKey` extractor, through the example service's own routes.

use std::sync::Arc;

use actix_web::{test, web, App};
use keymint_application::{KeyPatch, NoFailureLimiter, NoUsageTracker, VerificationCache, VerifyApiKey};
use keymint_domain::{Credits, PermissionName, Permissions, RateLimit, RateLimits};
use keymint_infrastructure::{Argon2Hasher, BatchingMeter, ShardedVerificationCache, SystemClock};
use serde_json::Value;

use crate::support::{one_key, OneKey, CHEAP_ARGON2};

#[allow(dead_code)]
#[path = "../../examples/protected_service.rs"]
mod example;

#[actix_web::test]
async fn the_example_service_serves_valid_keys_and_refuses_the_rest() {
    let hasher = Arc::new(Argon2Hasher::new(CHEAP_ARGON2).unwrap());
    let cache: Arc<dyn VerificationCache> =
        Arc::new(ShardedVerificationCache::new(100, std::time::Duration::from_secs(30)));
    let OneKey {
        repository,
        keys,
        actor,
        org,
        id,
        private_key: key,
    } = one_key("reports", hasher.clone(), cache.clone()).await;
    let verify = VerifyApiKey::new(
        repository,
        hasher,
        Arc::new(SystemClock),
        cache,
        Arc::new(NoFailureLimiter),
        Arc::new(NoUsageTracker),
    );

    let app = test::init_service(
        App::new()
            .app_data(web::Data::new(verify))
            .configure(example::configure),
    )
    .await;
    let call = |header: Option<(&'static str, String)>| {
        let mut request = test::TestRequest::get().uri("/reports");
        if let Some(header) = header {
            request = request.insert_header(header);
        }
        request.to_request()
    };

    let ok = test::call_service(&app, call(Some(("x-api-key", key.clone())))).await;
    assert_eq!(ok.status().as_u16(), 200);
    let body: Value = test::read_body_json(ok).await;
    assert_eq!(body["organization"], org.to_string());
    let bearer = test::call_service(&app, call(Some(("authorization", format!("Bearer {key}"))))).await;
    assert_eq!(bearer.status().as_u16(), 200);
    // Two different keys in the two headers: refused, whichever would win;
    // the same key in both is one key.
    let both = |other: &str| {
        test::TestRequest::get()
            .uri("/reports")
            .insert_header(("x-api-key", key.clone()))
            .insert_header(("authorization", format!("Bearer {other}")))
            .to_request()
    };
    let ambiguous = test::call_service(&app, both("sk_live_junk")).await;
    assert_eq!(ambiguous.status().as_u16(), 401);
    let body: Value = test::read_body_json(ambiguous).await;
    assert_eq!(body["code"], "ambiguous_api_key");
    assert_eq!(test::call_service(&app, both(&key)).await.status().as_u16(), 200);

    for (header, code) in [
        (None, "api_key_required"),
        (Some(("x-api-key", "sk_live_bogus".to_owned())), "invalid_api_key"),
    ] {
        let response = test::call_service(&app, call(header)).await;
        assert_eq!(response.status().as_u16(), 401);
        assert!(response.headers().contains_key("www-authenticate"));
        let body: Value = test::read_body_json(response).await;
        assert_eq!(body["code"], code);
    }

    // A route that requires permissions: refused until the key holds them, then
    // served at once (the update evicts the cached verification).
    let delete = || {
        test::TestRequest::delete()
            .uri("/reports/2026-q3.csv")
            .insert_header(("x-api-key", key.clone()))
            .to_request()
    };
    let refused = test::call_service(&app, delete()).await;
    assert_eq!(refused.status().as_u16(), 403);
    let body: Value = test::read_body_json(refused).await;
    assert_eq!(body["code"], "insufficient_permissions");
    assert!(
        body["detail"].as_str().unwrap().contains("reports.delete OR admin"),
        "{body}"
    );
    let admin = Permissions::new([PermissionName::new("admin").unwrap()]).unwrap();
    let patch = KeyPatch {
        permissions: Some(admin),
        ..KeyPatch::default()
    };
    keys.update(&actor, id, patch).await.unwrap();
    let allowed = test::call_service(&app, delete()).await;
    assert_eq!(allowed.status().as_u16(), 200);
    let body: Value = test::read_body_json(allowed).await;
    assert_eq!(body["deleted"], "2026-q3.csv");

    keys.revoke(&actor, id).await.unwrap();
    let revoked = test::call_service(&app, call(Some(("x-api-key", key.clone())))).await;
    assert_eq!(revoked.status().as_u16(), 401);
    let body: Value = test::read_body_json(revoked).await;
    assert_eq!(body["code"], "api_key_revoked");

    let open = test::call_service(&app, test::TestRequest::get().uri("/status").to_request()).await;
    assert_eq!(open.status().as_u16(), 200, "unprotected routes need no key");
}

#[actix_web::test]
async fn a_route_s_cost_is_spent_and_refusals_answer_429() {
    let hasher = Arc::new(Argon2Hasher::new(CHEAP_ARGON2).unwrap());
    let cache: Arc<dyn VerificationCache> =
        Arc::new(ShardedVerificationCache::new(100, std::time::Duration::from_secs(30)));
    let OneKey {
        repository,
        keys,
        actor,
        id,
        private_key: key,
        ..
    } = one_key("exports", hasher.clone(), cache.clone()).await;
    let keys = keys.with_ledger(repository.clone());
    let verify = VerifyApiKey::new(
        repository.clone(),
        hasher,
        Arc::new(SystemClock),
        cache,
        Arc::new(NoFailureLimiter),
        Arc::new(NoUsageTracker),
    )
    .with_meter(Arc::new(BatchingMeter::new(repository)));
    let app = test::init_service(
        App::new()
            .app_data(web::Data::new(verify))
            .configure(example::configure),
    )
    .await;
    let now = chrono::Utc::now();
    let credits = Credits::new(25, None, now).unwrap();
    keys.update(
        &actor,
        id,
        KeyPatch {
            credits: Some(Some(credits)),
            ..KeyPatch::default()
        },
    )
    .await
    .unwrap();
    let export = || {
        test::TestRequest::post()
            .uri("/exports")
            .insert_header(("x-api-key", key.clone()))
            .to_request()
    };
    let reports = || {
        test::TestRequest::get()
            .uri("/reports")
            .insert_header(("x-api-key", key.clone()))
            .to_request()
    };
    for left in [15, 5] {
        let served = test::call_service(&app, export()).await;
        assert_eq!(served.status().as_u16(), 202);
        let body: Value = test::read_body_json(served).await;
        assert_eq!(body["credits_remaining"], left);
    }
    let refused = test::call_service(&app, export()).await;
    assert_eq!(refused.status().as_u16(), 429);
    assert!(
        !refused.headers().contains_key("retry-after"),
        "no refill: no time to wait for"
    );
    let body: Value = test::read_body_json(refused).await;
    assert_eq!(body["code"], "usage_exceeded");
    assert_eq!(
        test::call_service(&app, reports()).await.status().as_u16(),
        200,
        "an ordinary call costs 1 of the 5 left"
    );
    let daily = RateLimits::new(vec![RateLimit::new("daily", 1, 86_400_000, true).unwrap()]).unwrap();
    keys.update(
        &actor,
        id,
        KeyPatch {
            ratelimits: Some(daily),
            ..KeyPatch::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(test::call_service(&app, reports()).await.status().as_u16(), 200);
    let limited = test::call_service(&app, reports()).await;
    assert_eq!(limited.status().as_u16(), 429);
    let wait: u64 = limited
        .headers()
        .get("retry-after")
        .unwrap()
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=86_400).contains(&wait), "until the day's window ends: {wait}");
    let body: Value = test::read_body_json(limited).await;
    assert_eq!(body["code"], "rate_limited");
    let stored = keys.get(&actor, id).await.unwrap();
    assert_eq!(
        stored.credits().unwrap().remaining(),
        3,
        "the rate-limited call spent nothing"
    );
}
