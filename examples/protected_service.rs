//! A small service whose routes require a Keymint API key, verified in-process
//! against Keymint's database with `keymint_web::VerifiedApiKey`.
//!
//! ```sh
//! cargo run                                  # Keymint itself, to create keys
//! cargo run --example protected_service      # this service on 127.0.0.1:8081
//! curl -H "x-api-key: sk_live_…" http://127.0.0.1:8081/reports
//! curl -X DELETE -H "x-api-key: sk_live_…" http://127.0.0.1:8081/reports/2026-q3.csv   # needs reports.delete or admin
//! curl -X POST -H "x-api-key: sk_live_…" http://127.0.0.1:8081/exports   # costs 10 credits
//! ```
//!
//! It reads Keymint's configuration (the same `KEYMINT_DATABASE__URL`), so it sees
//! the same keys; revocations made through Keymint reach it within the cache TTL.

use actix_web::{web, App, HttpResponse, HttpServer};
use keymint_web::{RequiredPermissions, UsageCost, VerifiedApiKey};
use serde_json::json;

/// The routes: `/reports` needs a valid key, deleting one a key that also holds
/// `reports.delete` (or `admin`), an export costs a metered key 10 credits,
/// `/status` needs nothing. A key with credits spends 1 on every other route,
/// and its `auto_apply` rate limits count every call.
pub fn configure(cfg: &mut web::ServiceConfig) {
    let deleting = RequiredPermissions::new("reports.delete OR admin").unwrap_or_else(|e| unreachable!("{e}"));
    cfg.route("/reports", web::get().to(reports))
        .service(
            web::resource("/reports/{name}")
                .app_data(deleting)
                .route(web::delete().to(delete_report)),
        )
        .service(
            web::resource("/exports")
                .app_data(UsageCost::credits(10))
                .route(web::post().to(export)),
        )
        .route("/status", web::get().to(status));
}

/// Reached once the key had 10 credits to spend (or unlimited use); answers
/// what is left.
async fn export(key: VerifiedApiKey) -> HttpResponse {
    let remaining = key.0.usage.as_ref().and_then(|usage| usage.credits_remaining);
    HttpResponse::Accepted().json(json!({"export": "queued", "credits_remaining": remaining}))
}

/// Only reached with a key holding `reports.delete` or `admin`.
async fn delete_report(key: VerifiedApiKey, name: web::Path<String>) -> HttpResponse {
    HttpResponse::Ok().json(json!({"deleted": name.into_inner(), "by": key.0.key_id.to_string()}))
}

/// Only reached with a valid key; the key tells whose reports to serve.
async fn reports(key: VerifiedApiKey) -> HttpResponse {
    let key = key.0;
    HttpResponse::Ok().json(json!({
        "organization": key.org_id.to_string(),
        "key": key.key_id.to_string(),
        "environment": key.environment.as_str(),
        "reports": ["2026-q3.csv", "2026-q4.csv"],
    }))
}

async fn status() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok"}))
}

#[allow(dead_code)]
#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let settings = keymint::Settings::load()?;
    keymint::telemetry::init(&settings.log, std::io::stdout, false);
    let verifier = keymint::startup::key_verifier(&settings).await?;
    let verify = web::Data::new(verifier.verify.clone());
    HttpServer::new(move || App::new().app_data(verify.clone()).configure(configure))
        .bind(("127.0.0.1", 8081))?
        .run()
        .await?;
    verifier.usage.flush().await?;
    Ok(())
}
