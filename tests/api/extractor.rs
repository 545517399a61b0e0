//! The `VerifiedApiKey` extractor, through the example service's own routes.

use std::sync::Arc;

use actix_web::{test, web, App};
use keymint_application::{
    Actor, ApiKeyRepository, ApiKeys, KeyPolicy, NoFailureLimiter, NoUsageTracker, Principal, VerificationCache,
    VerifyApiKey,
};
use keymint_domain::{Environment, KeyName, NewApiKey, OrgId};
use keymint_infrastructure::{
    Argon2Hasher, Argon2Params, InMemoryApiKeyRepository, OsKeyGenerator, ShardedVerificationCache, SystemClock,
};
use serde_json::Value;
use uuid::Uuid;

#[allow(dead_code)]
#[path = "../../examples/protected_service.rs"]
mod example;

#[actix_web::test]
async fn the_example_service_serves_valid_keys_and_refuses_the_rest() {
    let repository: Arc<dyn ApiKeyRepository> = Arc::new(InMemoryApiKeyRepository::new());
    let hasher = Arc::new(
        Argon2Hasher::new(Argon2Params {
            memory_kib: 64,
            iterations: 1,
            parallelism: 1,
        })
        .unwrap(),
    );
    let cache: Arc<dyn VerificationCache> =
        Arc::new(ShardedVerificationCache::new(100, std::time::Duration::from_secs(30)));
    let keys = ApiKeys::new(
        repository.clone(),
        hasher.clone(),
        Arc::new(OsKeyGenerator),
        Arc::new(SystemClock),
        KeyPolicy::default(),
    )
    .with_cache(cache.clone());
    let verify = VerifyApiKey::new(
        repository,
        hasher,
        Arc::new(SystemClock),
        cache,
        Arc::new(NoFailureLimiter),
        Arc::new(NoUsageTracker),
    );
    let org = OrgId::from_uuid(Uuid::new_v4());
    let actor = Actor::new(&Principal::new(org, None), None);
    let request = NewApiKey::new(org, KeyName::new("reports").unwrap(), None, Environment::Live);
    let created = keys.create(&actor, request).await.unwrap();
    let key = created.private_key.expose_secret().to_owned();

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

    keys.revoke(&actor, created.key.id()).await.unwrap();
    let revoked = test::call_service(&app, call(Some(("x-api-key", key.clone())))).await;
    assert_eq!(revoked.status().as_u16(), 401);
    let body: Value = test::read_body_json(revoked).await;
    assert_eq!(body["code"], "api_key_revoked");

    let open = test::call_service(&app, test::TestRequest::get().uri("/status").to_request()).await;
    assert_eq!(open.status().as_u16(), 200, "unprotected routes need no key");
}
