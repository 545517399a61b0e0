//! Liveness and readiness probes.

use actix_web::{web, HttpResponse};
use serde_json::json;
use utoipa::ToSchema;

use crate::error::ErrorBody;
use crate::{ApiError, AppState};

/// A health probe's answer.
#[derive(ToSchema)]
#[allow(dead_code)]
pub(crate) struct Status {
    /// `ok` or `ready`.
    status: String,
}

/// Liveness: the process is up and serving HTTP. Deliberately checks nothing else,
/// so an orchestrator does not restart a healthy process during a database outage.
#[utoipa::path(get, path = "/healthz", tag = "health", operation_id = "healthz",
    responses((status = 200, description = "The process serves HTTP", body = Status)))]
pub(crate) async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok"}))
}

/// Readiness: storage answers, so requests can be served.
#[utoipa::path(get, path = "/readyz", tag = "health", operation_id = "readyz",
    responses(
        (status = 200, description = "Storage answers", body = Status),
        (status = 503, description = "Storage is unavailable", body = ErrorBody),
    ))]
pub(crate) async fn readyz(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    state
        .storage
        .ping()
        .await
        .map_err(|e| ApiError::storage_unavailable(e.into()))?;
    Ok(HttpResponse::Ok().json(json!({"status": "ready"})))
}
