//! `POST /api-keys/verify`: the presented key is the credential, no JWT needed.

use std::sync::Arc;

use actix_web::{web, HttpRequest, HttpResponse};
use keymint_application::{Verification, VerifiedKey};
use keymint_domain::{KeyMeta, PermissionName, PermissionQuery, Permissions};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use super::timestamp;
use crate::error::{ErrorBody, JsonBodyErrors, ValidationErrorBody};
use crate::extract::{presented_api_key, OptionalJson};
use crate::validation::{FromJsonBody, ObjectReader, Optional};
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
    permissions: Option<PermissionQuery>,
}

impl FromJsonBody for VerifyBody {
    fn from_json(value: Value) -> Result<Self, Vec<FieldError>> {
        let mut body = ObjectReader::new("body", value)?;
        let key = body.required_string("key");
        let permissions = match body.optional_string("permissions") {
            Some(Optional::Value(raw)) => body
                .check("permissions", PermissionQuery::parse(&raw), |_| "value_error")
                .map(Some),
            Some(Optional::Absent | Optional::Null) => Some(None),
            None => None,
        };
        let parsed = match (key, permissions) {
            (Some(key), Some(permissions)) => Some(Self { key, permissions }),
            _ => None,
        };
        body.finish(parsed)
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
    /// The key's permissions, when the key was recognised (`VALID`,
    /// `INSUFFICIENT_PERMISSIONS`)
    #[schema(required = true, value_type = Option<Vec<String>>)]
    permissions: Option<PermissionList>,
    /// The key's owner, when the key was recognised and has one
    #[schema(required = true, value_type = Option<String>)]
    owner_id: Option<Arc<str>>,
    /// The key's metadata, when the key was recognised and has some
    #[schema(required = true, value_type = Option<Object>)]
    meta: Option<Meta>,
}

/// Metadata written straight from the cached verification.
struct Meta(Arc<KeyMeta>);

impl Serialize for Meta {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.as_raw().serialize(serializer)
    }
}

/// A key's permissions as a JSON array, written straight from the cached
/// verification: no copy per request.
struct PermissionList(Arc<Permissions>);

impl Serialize for PermissionList {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.0.iter().map(PermissionName::as_str))
    }
}

impl From<Verification> for VerifyResponse {
    fn from(verification: Verification) -> Self {
        let code = verification.code();
        match verification {
            Verification::Valid(key) => Self::recognised(true, code, key),
            Verification::InsufficientPermissions(key) => Self::recognised(false, code, key),
            _ => Self {
                valid: false,
                code,
                key_id: None,
                org_id: None,
                environment: None,
                name: None,
                expires_at: None,
                permissions: None,
                owner_id: None,
                meta: None,
            },
        }
    }
}

impl VerifyResponse {
    /// The caller proved it holds the key's secret: the key is named.
    fn recognised(valid: bool, code: &'static str, key: VerifiedKey) -> Self {
        Self {
            valid,
            code,
            key_id: Some(key.key_id.to_string()),
            org_id: Some(key.org_id.to_string()),
            environment: Some(key.environment.as_str()),
            expires_at: key.expires_at.map(timestamp),
            permissions: Some(PermissionList(key.permissions)),
            owner_id: key.owner_id,
            meta: key.meta.map(Meta),
            name: Some(key.name),
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
    let (presented, required) = match body.0 {
        Some(body) => (body.key, body.permissions),
        None => (
            presented_api_key(&req)?.ok_or_else(|| {
                ApiError::Validation(vec![FieldError::new(
                    &["body", "key"],
                    "missing",
                    "Field required (or send the key as x-api-key or Authorization: Bearer)",
                )])
            })?,
            None,
        ),
    };
    let client = req.peer_addr().map(|addr| addr.ip());
    let verification = state.verify.execute_with(&presented, client, required.as_ref()).await?;
    state.metrics.verification(verification.code());
    Ok(HttpResponse::Ok().json(VerifyResponse::from(verification)))
}
