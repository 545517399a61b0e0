//! Liveness and readiness probes.

use actix_web::{web, HttpResponse};
use serde::Serialize;
use utoipa::ToSchema;

use crate::error::ErrorBody;
use crate::{ApiError, AppState};

/// A health probe's answer.
#[derive(Serialize, ToSchema)]
pub(crate) struct Status {
    /// `ok` or `ready`.
    #[schema(value_type = String)]
    status: &'static str,
}

/// Liveness: the process is up and serving HTTP. Deliberately checks nothing else,
/// so an orchestrator does not restart a healthy process during a database outage.
#[utoipa::path(get, path = "/healthz", tag = "health", operation_id = "healthz",
    responses((status = 200, description = "The process serves HTTP", body = Status)))]
pub(crate) async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(Status { status: "ok" })
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
    Ok(HttpResponse::Ok().json(Status { status: "ready" }))
}
