//! `POST /api-keys/verify`: the presented key is the credential, no JWT needed.

use actix_web::{web, HttpRequest, HttpResponse};
use keymint_application::Verification;
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use super::timestamp;
use crate::error::{ErrorBody, JsonBodyErrors, ValidationErrorBody};
use crate::extract::{presented_api_key, OptionalJson};
use crate::validation::{FromJsonBody, ObjectReader};
use crate::{ApiError, AppState, FieldError};

/// The body of a verification, as OpenAPI describes it.
#[derive(ToSchema)]
#[schema(as = VerifyApiKeyRequest)]
#[allow(dead_code)]
pub(crate) struct VerifyApiKeyRequest {
    /// The private key a caller presented (`sk_live_…` / `sk_test_…`).
    key: String,
}

/// The body of a verify request.
#[derive(Debug)]
pub(crate) struct VerifyBody {
    key: String,
}

impl FromJsonBody for VerifyBody {
    fn from_json(value: Value) -> Result<Self, Vec<FieldError>> {
        let mut body = ObjectReader::new("body", value)?;
        let key = body.required_string("key").map(|key| Self { key });
        body.finish(key)
    }
}

/// The verdict. Identity fields are set only when the key is valid.
#[derive(Serialize, ToSchema)]
#[schema(as = VerifyResult)]
pub(crate) struct VerifyResponse {
    valid: bool,
    /// `VALID`, `NOT_FOUND`, `REVOKED`, `EXPIRED` or `RATE_LIMITED`.
    code: &'static str,
    #[schema(format = Uuid, required = true)]
    key_id: Option<String>,
    #[schema(format = Uuid, required = true)]
    org_id: Option<String>,
    #[schema(required = true)]
    environment: Option<&'static str>,
    #[schema(required = true)]
    name: Option<String>,
    #[schema(format = DateTime, required = true)]
    expires_at: Option<String>,
}

impl From<Verification> for VerifyResponse {
    fn from(verification: Verification) -> Self {
        let code = verification.code();
        match verification {
            Verification::Valid(key) => Self {
                valid: true,
                code,
                key_id: Some(key.key_id.to_string()),
                org_id: Some(key.org_id.to_string()),
                environment: Some(key.environment.as_str()),
                name: Some(key.name),
                expires_at: key.expires_at.map(timestamp),
            },
            _ => Self {
                valid: false,
                code,
                key_id: None,
                org_id: None,
                environment: None,
                name: None,
                expires_at: None,
            },
        }
    }
}

/// `POST /api-keys/verify` with `{"key": "sk_…"}`, or with no body and the key in
/// `x-api-key` or `Authorization: Bearer`.
#[utoipa::path(
    post, path = "/api/v2/api-keys/verify", tag = "verification", operation_id = "verify_api_key",
    summary = "Verify an API key (no JWT: the key is the credential)",
    request_body(content = Option<VerifyApiKeyRequest>,
        description = "Optional when the key is sent as x-api-key or Authorization: Bearer"),
    responses(
        (status = 200, description = "The verdict, valid or not", body = VerifyResponse),
        JsonBodyErrors,
        (status = 422, description = "No key in the body or headers", body = ValidationErrorBody),
        (status = 503, description = "Storage unavailable", body = ErrorBody),
    ),
)]
pub(crate) async fn verify(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: OptionalJson<VerifyBody>,
) -> Result<HttpResponse, ApiError> {
    let presented = match body.0 {
        Some(body) => body.key,
        None => presented_api_key(&req)?.ok_or_else(|| {
            ApiError::Validation(vec![FieldError::new(
                &["body", "key"],
                "missing",
                "Field required (or send the key as x-api-key or Authorization: Bearer)",
            )])
        })?,
    };
    let client = req.peer_addr().map(|addr| addr.ip());
    let verification = state.verify.execute(&presented, client).await?;
    state.metrics.verification(verification.code());
    Ok(HttpResponse::Ok().json(VerifyResponse::from(verification)))
}
