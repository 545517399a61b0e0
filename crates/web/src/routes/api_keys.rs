//! The key lifecycle routes, served identically under `/api/v1` and `/api/v2`.

use actix_web::http::header;
use actix_web::{web, HttpMessage, HttpRequest, HttpResponse};
use chrono::{DateTime, Duration, Utc};
use keymint_application::{
    Actor, CreateApiKeyError, CreatedApiKey, KeyError, KeyFilter, KeyPatch, MissingPermission, RotateApiKeyError,
};
use keymint_domain::{
    ApiKey, AuditEvent, Environment, ExpiryError, KeyDescription, KeyDescriptionError, KeyId, KeyName, KeyNameError,
    NewApiKey, RotateError, MAX_GRACE_PERIOD_SECONDS,
};
use serde::Serialize;
use serde_json::Value;
use tracing_actix_web::RequestId;
use utoipa::ToSchema;
use uuid::Uuid;

use super::paging::{encode_cursor, event_cursor, key_cursor, next_link, QueryReader};
use super::timestamp;
use crate::openapi::{
    CreateApiKeyRequest, ErrorBody, ManagementErrors, RotateApiKeyRequest, UpdateApiKeyRequest, ValidationErrorBody,
};
use crate::validation::{parse_timestamp, FromJsonBody, ObjectReader, Optional};
use crate::{ApiError, AppState, Authenticated, FieldError, ValidatedJson};

// ---------------------------------------------------------------- request bodies

fn name_error_kind(err: &KeyNameError) -> &'static str {
    match err {
        KeyNameError::Empty => "string_too_short",
        KeyNameError::TooLong(_) => "string_too_long",
        KeyNameError::Blank | KeyNameError::ControlCharacter => "value_error",
    }
}

fn description_error_kind(err: &KeyDescriptionError) -> &'static str {
    match err {
        KeyDescriptionError::TooLong(_) => "string_too_long",
        KeyDescriptionError::Nul => "value_error",
    }
}

fn read_name(body: &mut ObjectReader, raw: String) -> Option<KeyName> {
    body.check("name", KeyName::new(raw), name_error_kind)
}

/// `Some(None)` for absent or null, `Some(Some(_))` for a valid value, `None` if invalid.
fn read_description(body: &mut ObjectReader) -> Option<Option<KeyDescription>> {
    match body.optional_string("description")? {
        Optional::Value(raw) => body
            .check("description", KeyDescription::new(raw), description_error_kind)
            .map(Some),
        Optional::Absent | Optional::Null => Some(None),
    }
}

/// The body of `POST /api-keys`.
#[derive(Debug)]
pub(crate) struct CreateApiKeyBody {
    name: KeyName,
    description: Option<KeyDescription>,
    environment: Option<Environment>,
    expires_at: Option<DateTime<Utc>>,
}

impl FromJsonBody for CreateApiKeyBody {
    fn from_json(value: Value) -> Result<Self, Vec<FieldError>> {
        let mut body = ObjectReader::new("body", value)?;
        let name = body.required_string("name").and_then(|raw| read_name(&mut body, raw));
        let description = read_description(&mut body);
        let environment = match body.optional_string("environment") {
            Some(Optional::Value(raw)) => body.check("environment", raw.parse(), |_| "literal_error").map(Some),
            Some(Optional::Absent | Optional::Null) => Some(None),
            None => None,
        };
        let expires_at = match body.optional_string("expires_at") {
            Some(Optional::Value(raw)) => body
                .check("expires_at", parse_timestamp(&raw), |_| "datetime_parsing")
                .map(Some),
            Some(Optional::Absent | Optional::Null) => Some(None),
            None => None,
        };
        let parsed = match (name, description, environment, expires_at) {
            (Some(name), Some(description), Some(environment), Some(expires_at)) => Some(Self {
                name,
                description,
                environment,
                expires_at,
            }),
            _ => None,
        };
        body.finish(parsed)
    }
}

/// The body of `PATCH /api-keys/{key_id}`: at least one of `name`, `description`.
#[derive(Debug)]
pub(crate) struct UpdateApiKeyBody(KeyPatch);

impl FromJsonBody for UpdateApiKeyBody {
    fn from_json(value: Value) -> Result<Self, Vec<FieldError>> {
        let mut body = ObjectReader::new("body", value)?;
        let name = match body.optional_string("name") {
            Some(Optional::Value(raw)) => read_name(&mut body, raw).map(Some),
            Some(Optional::Absent) => Some(None),
            Some(Optional::Null) => {
                body.fail(
                    "name",
                    "string_type",
                    "Input should be a valid string (a name cannot be cleared)",
                );
                None
            }
            None => None,
        };
        let description = match body.optional_string("description") {
            Some(Optional::Absent) => Some(None),
            Some(Optional::Null) => Some(Some(None)),
            Some(Optional::Value(raw)) => body
                .check("description", KeyDescription::new(raw), description_error_kind)
                .map(|d| Some(Some(d))),
            None => None,
        };
        if matches!((&name, &description), (Some(None), Some(None))) && body.ok() {
            body.fail("", "value_error", "Provide at least one of name, description");
        }
        let parsed = match (name, description) {
            (Some(name), Some(description)) => Some(Self(KeyPatch { name, description })),
            _ => None,
        };
        body.finish(parsed)
    }
}

/// The optional body of `POST /api-keys/{key_id}/rotate`.
#[derive(Debug, Default)]
pub(crate) struct RotateApiKeyBody {
    grace_period_seconds: u32,
}

impl FromJsonBody for RotateApiKeyBody {
    fn from_json(value: Value) -> Result<Self, Vec<FieldError>> {
        let mut body = ObjectReader::new("body", value)?;
        let grace = match body.optional_u32("grace_period_seconds") {
            Some(Optional::Value(seconds)) if seconds > MAX_GRACE_PERIOD_SECONDS => {
                body.fail(
                    "grace_period_seconds",
                    "less_than_equal",
                    format!("Input should be less than or equal to {MAX_GRACE_PERIOD_SECONDS}"),
                );
                None
            }
            Some(Optional::Value(seconds)) => Some(seconds),
            Some(Optional::Absent | Optional::Null) => Some(0),
            None => None,
        };
        body.finish(grace.map(|grace_period_seconds| Self { grace_period_seconds }))
    }
}

// --------------------------------------------------------------- response bodies

/// A key as every read returns it: all create fields but `private_key`.
#[derive(Serialize, ToSchema)]
#[schema(as = ApiKey)]
pub(crate) struct ApiKeyResponse<'a> {
    #[schema(format = Uuid)]
    id: String,
    #[schema(format = Uuid)]
    org_id: String,
    name: &'a str,
    public_key: &'a str,
    private_key_display: &'a str,
    #[schema(format = DateTime)]
    created_at: String,
    #[schema(required = true)]
    description: Option<&'a str>,
    is_revoked: bool,
    #[schema(format = DateTime, required = true)]
    revoked_at: Option<String>,
    #[schema(format = DateTime, required = true)]
    last_used_at: Option<String>,
    #[schema(required = true)]
    environment: Option<&'a str>,
    #[schema(format = DateTime, required = true)]
    expires_at: Option<String>,
}

impl<'a> From<&'a ApiKey> for ApiKeyResponse<'a> {
    fn from(key: &'a ApiKey) -> Self {
        Self {
            id: key.id().to_string(),
            org_id: key.org_id().to_string(),
            name: key.name().as_str(),
            public_key: key.public_key().as_str(),
            private_key_display: key.private_key_display().as_str(),
            created_at: timestamp(key.created_at()),
            description: key.description().map(KeyDescription::as_str),
            is_revoked: key.is_revoked(),
            revoked_at: key.revoked_at().map(timestamp),
            last_used_at: key.last_used_at().map(timestamp),
            environment: Some(key.environment().as_str()),
            expires_at: key.expires_at().map(timestamp),
        }
    }
}

/// The create (and rotate) response: the specification's twelve fields in its
/// order, then `expires_at`.
#[derive(Serialize, ToSchema)]
#[schema(as = ApiKeyCreated)]
pub(crate) struct CreatedApiKeyResponse<'a> {
    #[schema(format = Uuid)]
    id: String,
    #[schema(format = Uuid)]
    org_id: String,
    name: &'a str,
    public_key: &'a str,
    private_key_display: &'a str,
    #[schema(format = DateTime)]
    created_at: String,
    /// The private key, shown in this response only.
    private_key: &'a str,
    #[schema(required = true)]
    description: Option<&'a str>,
    is_revoked: bool,
    #[schema(format = DateTime, required = true)]
    revoked_at: Option<String>,
    #[schema(format = DateTime, required = true)]
    last_used_at: Option<String>,
    #[schema(required = true)]
    environment: Option<&'a str>,
    #[schema(format = DateTime, required = true)]
    expires_at: Option<String>,
}

impl<'a> From<&'a CreatedApiKey> for CreatedApiKeyResponse<'a> {
    fn from(created: &'a CreatedApiKey) -> Self {
        let key = ApiKeyResponse::from(&created.key);
        Self {
            id: key.id,
            org_id: key.org_id,
            name: key.name,
            public_key: key.public_key,
            private_key_display: key.private_key_display,
            created_at: key.created_at,
            private_key: created.private_key.expose_secret(),
            description: key.description,
            is_revoked: key.is_revoked,
            revoked_at: key.revoked_at,
            last_used_at: key.last_used_at,
            environment: key.environment,
            expires_at: key.expires_at,
        }
    }
}

/// The original service's revoke model, plus `revoked_at`.
#[derive(Serialize, ToSchema)]
#[schema(as = ApiKeyRevoked)]
pub(crate) struct RevokedApiKeyResponse<'a> {
    #[schema(format = Uuid)]
    id: String,
    #[schema(format = Uuid)]
    org_id: String,
    name: &'a str,
    is_revoked: bool,
    #[schema(format = DateTime)]
    created_at: String,
    #[schema(required = true)]
    description: Option<&'a str>,
    #[schema(format = DateTime, required = true)]
    expires_at: Option<String>,
    #[schema(format = DateTime, required = true)]
    last_used_at: Option<String>,
    #[schema(format = DateTime, required = true)]
    revoked_at: Option<String>,
}

impl<'a> From<&'a ApiKey> for RevokedApiKeyResponse<'a> {
    fn from(key: &'a ApiKey) -> Self {
        let key = ApiKeyResponse::from(key);
        Self {
            id: key.id,
            org_id: key.org_id,
            name: key.name,
            is_revoked: key.is_revoked,
            created_at: key.created_at,
            description: key.description,
            expires_at: key.expires_at,
            last_used_at: key.last_used_at,
            revoked_at: key.revoked_at,
        }
    }
}

/// One audit trail entry.
#[derive(Serialize, ToSchema)]
#[schema(as = AuditEvent)]
pub(crate) struct AuditEventResponse<'a> {
    #[schema(format = Uuid)]
    id: String,
    #[schema(format = Uuid)]
    key_id: String,
    action: &'static str,
    #[schema(required = true)]
    actor: Option<&'a str>,
    #[schema(format = DateTime)]
    occurred_at: String,
    #[schema(required = true)]
    request_id: Option<&'a str>,
}

impl<'a> From<&'a AuditEvent> for AuditEventResponse<'a> {
    fn from(event: &'a AuditEvent) -> Self {
        Self {
            id: event.id.to_string(),
            key_id: event.key_id.to_string(),
            action: event.action.as_str(),
            actor: event.actor.as_deref(),
            occurred_at: timestamp(event.occurred_at),
            request_id: event.request_id.as_deref(),
        }
    }
}

// ---------------------------------------------------------------------- helpers

fn actor(req: &HttpRequest, principal: &keymint_application::Principal) -> Actor {
    let request_id = req.extensions().get::<RequestId>().map(ToString::to_string);
    Actor::new(principal, request_id)
}

/// The collection path this request was made under (`/api/v1/api-keys` or v2).
fn collection(req: &HttpRequest) -> &'static str {
    if req.path().starts_with("/api/v1/") {
        "/api/v1/api-keys"
    } else {
        "/api/v2/api-keys"
    }
}

fn parse_key_id(raw: &str) -> Result<KeyId, ApiError> {
    Uuid::try_parse(raw).map(KeyId::from_uuid).map_err(|_| {
        ApiError::Validation(vec![FieldError::new(
            &["path", "key_id"],
            "uuid_parsing",
            "Input should be a valid UUID",
        )])
    })
}

impl From<MissingPermission> for ApiError {
    fn from(missing: MissingPermission) -> Self {
        ApiError::Forbidden {
            code: "insufficient_permissions",
            detail: format!("The token lacks the permission {}", missing.0.as_str()),
        }
    }
}

impl From<KeyError> for ApiError {
    fn from(err: KeyError) -> Self {
        match err {
            KeyError::Forbidden(missing) => missing.into(),
            KeyError::NotFound => ApiError::KeyNotFound,
            KeyError::StorageUnavailable(cause) => ApiError::storage_unavailable(cause),
            KeyError::Unexpected(cause) => ApiError::Internal(cause),
        }
    }
}

impl From<CreateApiKeyError> for ApiError {
    fn from(err: CreateApiKeyError) -> Self {
        match err {
            CreateApiKeyError::Forbidden(missing) => missing.into(),
            CreateApiKeyError::InvalidExpiry(reason) => {
                let kind = match reason {
                    ExpiryError::NotInFuture => "greater_than",
                    ExpiryError::TooFarAhead { .. } => "less_than_equal",
                };
                ApiError::Validation(vec![FieldError::new(&["body", "expires_at"], kind, reason.to_string())])
            }
            CreateApiKeyError::LimitReached { max } => ApiError::Conflict {
                code: "key_limit_reached",
                detail: format!("The organization already has {max} active API keys; revoke or delete one first"),
            },
            CreateApiKeyError::StorageUnavailable(cause) => ApiError::storage_unavailable(cause),
            CreateApiKeyError::Unexpected(cause) => ApiError::Internal(cause),
        }
    }
}

impl From<RotateApiKeyError> for ApiError {
    fn from(err: RotateApiKeyError) -> Self {
        match err {
            RotateApiKeyError::Forbidden(missing) => missing.into(),
            RotateApiKeyError::NotFound => ApiError::KeyNotFound,
            RotateApiKeyError::Refused(RotateError::Revoked) => ApiError::Conflict {
                code: "key_revoked",
                detail: "The API key is revoked and cannot be rotated".into(),
            },
            RotateApiKeyError::Refused(RotateError::Expired) => ApiError::Conflict {
                code: "key_expired",
                detail: "The API key has expired and cannot be rotated".into(),
            },
            RotateApiKeyError::GracePeriodTooLong => ApiError::Validation(vec![FieldError::new(
                &["body", "grace_period_seconds"],
                "less_than_equal",
                format!("Input should be less than or equal to {MAX_GRACE_PERIOD_SECONDS}"),
            )]),
            RotateApiKeyError::StorageUnavailable(cause) => ApiError::storage_unavailable(cause),
            RotateApiKeyError::Unexpected(cause) => ApiError::Internal(cause),
        }
    }
}

fn created_response(status: actix_web::http::StatusCode, location: String, created: &CreatedApiKey) -> HttpResponse {
    HttpResponse::build(status)
        .insert_header((header::LOCATION, location))
        .json(CreatedApiKeyResponse::from(created))
}

// --------------------------------------------------------------------- handlers

/// `POST /api-keys`
#[utoipa::path(
    post, path = "/api/v2/api-keys", tag = "api-keys", operation_id = "create_api_key",
    summary = "Create API Key",
    request_body = CreateApiKeyRequest,
    responses(
        (status = 201, description = "Created; the private key is in this response only", body = CreatedApiKeyResponse,
            headers(("Location" = String, description = "The new key's URL"))),
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        ManagementErrors,
        (status = 409, description = "The organization's active key limit is reached", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 415, description = "Body not JSON", body = ErrorBody),
        (status = 422, description = "Validation failed", body = ValidationErrorBody),
    ),
    security(("bearer" = [])),
)]
pub(crate) async fn create(
    req: HttpRequest,
    state: web::Data<AppState>,
    Authenticated(principal): Authenticated,
    ValidatedJson(body): ValidatedJson<CreateApiKeyBody>,
) -> Result<HttpResponse, ApiError> {
    let request = NewApiKey::new(
        principal.org_id(),
        body.name,
        body.description,
        body.environment.unwrap_or(state.default_environment),
    )
    .expiring_at(body.expires_at);
    let created = state.api_keys.create(&actor(&req, &principal), request).await?;
    tracing::info!(key_id = %created.key.id(), org_id = %created.key.org_id(), "API key created");
    let location = format!("{}/{}", collection(&req), created.key.id());
    Ok(created_response(
        actix_web::http::StatusCode::CREATED,
        location,
        &created,
    ))
}

/// `GET /api-keys?limit=&cursor=&environment=&is_revoked=`
#[utoipa::path(
    get, path = "/api/v2/api-keys", tag = "api-keys", operation_id = "list_api_keys",
    summary = "List API Keys, newest first",
    params(
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 100, description = "Page size (default 100)"),
        ("cursor" = Option<String>, Query, description = "Opaque cursor from a Link header"),
        ("environment" = Option<String>, Query, description = "Only `live` or only `test` keys"),
        ("is_revoked" = Option<bool>, Query, description = "Only revoked or only unrevoked keys"),
    ),
    responses(
        (status = 200, description = "A page of keys", body = Vec<ApiKeyResponse>,
            headers(("Link" = String, description = "RFC 8288 rel=\"next\" link when more keys exist"))),
        ManagementErrors,
        (status = 422, description = "A query parameter is invalid", body = ValidationErrorBody),
    ),
    security(("bearer" = [])),
)]
pub(crate) async fn list(
    req: HttpRequest,
    state: web::Data<AppState>,
    Authenticated(principal): Authenticated,
) -> Result<HttpResponse, ApiError> {
    let mut query = QueryReader::new(req.query_string()).map_err(ApiError::Validation)?;
    let limit = query.limit();
    let after = query.cursor().map(key_cursor);
    let filter = KeyFilter {
        environment: query.environment(),
        revoked: query.boolean("is_revoked"),
    };
    query.finish().map_err(ApiError::Validation)?;

    let page = state
        .api_keys
        .list(&actor(&req, &principal), filter, after, limit)
        .await?;
    let mut response = HttpResponse::Ok();
    if let Some(next) = page.next {
        let params = [
            ("limit", limit.to_string()),
            (
                "environment",
                filter.environment.map(|e| e.as_str().to_owned()).unwrap_or_default(),
            ),
            ("is_revoked", filter.revoked.map(|r| r.to_string()).unwrap_or_default()),
        ];
        let cursor = encode_cursor(next.created_at, next.id.as_uuid());
        response.insert_header((header::LINK, next_link(collection(&req), &params, cursor)));
    }
    Ok(response.json(page.items.iter().map(ApiKeyResponse::from).collect::<Vec<_>>()))
}

/// `GET /api-keys/{key_id}`
#[utoipa::path(
    get, path = "/api/v2/api-keys/{key_id}", tag = "api-keys", operation_id = "get_api_key",
    summary = "Get API Key",
    params(("key_id" = String, Path, description = "The key's id (a UUID)")),
    responses(
        (status = 200, description = "The key", body = ApiKeyResponse),
        ManagementErrors,
        (status = 404, description = "No such key in the caller's organization", body = ErrorBody),
        (status = 422, description = "key_id is not a UUID", body = ValidationErrorBody),
    ),
    security(("bearer" = [])),
)]
pub(crate) async fn get(
    req: HttpRequest,
    state: web::Data<AppState>,
    Authenticated(principal): Authenticated,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = parse_key_id(&path)?;
    let key = state.api_keys.get(&actor(&req, &principal), id).await?;
    Ok(HttpResponse::Ok().json(ApiKeyResponse::from(&key)))
}

/// `PATCH /api-keys/{key_id}`
#[utoipa::path(
    patch, path = "/api/v2/api-keys/{key_id}", tag = "api-keys", operation_id = "update_api_key",
    summary = "Rename an API Key or change its description",
    params(("key_id" = String, Path, description = "The key's id (a UUID)")),
    request_body = UpdateApiKeyRequest,
    responses(
        (status = 200, description = "The updated key", body = ApiKeyResponse),
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        ManagementErrors,
        (status = 404, description = "No such key in the caller's organization", body = ErrorBody),
        (status = 422, description = "Validation failed", body = ValidationErrorBody),
    ),
    security(("bearer" = [])),
)]
pub(crate) async fn update(
    req: HttpRequest,
    state: web::Data<AppState>,
    Authenticated(principal): Authenticated,
    path: web::Path<String>,
    ValidatedJson(UpdateApiKeyBody(patch)): ValidatedJson<UpdateApiKeyBody>,
) -> Result<HttpResponse, ApiError> {
    let id = parse_key_id(&path)?;
    let key = state.api_keys.update(&actor(&req, &principal), id, patch).await?;
    Ok(HttpResponse::Ok().json(ApiKeyResponse::from(&key)))
}

/// `PUT /api-keys/{key_id}/revoke`
#[utoipa::path(
    put, path = "/api/v2/api-keys/{key_id}/revoke", tag = "api-keys", operation_id = "revoke_api_key",
    summary = "Revoke API Key (final; repeating it keeps the first revoked_at)",
    params(("key_id" = String, Path, description = "The key's id (a UUID)")),
    responses(
        (status = 200, description = "The revoked key", body = RevokedApiKeyResponse),
        ManagementErrors,
        (status = 404, description = "No such key in the caller's organization", body = ErrorBody),
        (status = 422, description = "key_id is not a UUID", body = ValidationErrorBody),
    ),
    security(("bearer" = [])),
)]
pub(crate) async fn revoke(
    req: HttpRequest,
    state: web::Data<AppState>,
    Authenticated(principal): Authenticated,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = parse_key_id(&path)?;
    let key = state.api_keys.revoke(&actor(&req, &principal), id).await?;
    Ok(HttpResponse::Ok().json(RevokedApiKeyResponse::from(&key)))
}

/// `POST /api-keys/{key_id}/rotate` with an optional `{"grace_period_seconds": n}`.
#[utoipa::path(
    post, path = "/api/v2/api-keys/{key_id}/rotate", tag = "api-keys", operation_id = "rotate_api_key",
    summary = "Rotate API Key: a new private key, the old one valid for the grace period",
    params(("key_id" = String, Path, description = "The key's id (a UUID)")),
    request_body(content = Option<RotateApiKeyRequest>, description = "Optional; no body means no grace period"),
    responses(
        (status = 200, description = "The key with its new private key, shown once", body = CreatedApiKeyResponse),
        ManagementErrors,
        (status = 404, description = "No such key in the caller's organization", body = ErrorBody),
        (status = 409, description = "The key is revoked (key_revoked) or expired (key_expired)", body = ErrorBody),
        (status = 422, description = "Validation failed", body = ValidationErrorBody),
    ),
    security(("bearer" = [])),
)]
pub(crate) async fn rotate(
    req: HttpRequest,
    state: web::Data<AppState>,
    Authenticated(principal): Authenticated,
    path: web::Path<String>,
    body: crate::extract::OptionalJson<RotateApiKeyBody>,
) -> Result<HttpResponse, ApiError> {
    let id = parse_key_id(&path)?;
    let grace = Duration::seconds(i64::from(body.0.unwrap_or_default().grace_period_seconds));
    let rotated = state.api_keys.rotate(&actor(&req, &principal), id, grace).await?;
    tracing::info!(key_id = %rotated.key.id(), org_id = %rotated.key.org_id(), "API key rotated");
    let location = format!("{}/{}", collection(&req), rotated.key.id());
    Ok(created_response(actix_web::http::StatusCode::OK, location, &rotated))
}

/// `DELETE /api-keys/{key_id}`
#[utoipa::path(
    delete, path = "/api/v2/api-keys/{key_id}", tag = "api-keys", operation_id = "delete_api_key",
    summary = "Delete API Key (its audit trail is kept)",
    params(("key_id" = String, Path, description = "The key's id (a UUID)")),
    responses(
        (status = 204, description = "Deleted"),
        ManagementErrors,
        (status = 404, description = "No such key in the caller's organization", body = ErrorBody),
        (status = 422, description = "key_id is not a UUID", body = ValidationErrorBody),
    ),
    security(("bearer" = [])),
)]
pub(crate) async fn delete(
    req: HttpRequest,
    state: web::Data<AppState>,
    Authenticated(principal): Authenticated,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = parse_key_id(&path)?;
    state.api_keys.delete(&actor(&req, &principal), id).await?;
    tracing::info!(key_id = %id, org_id = %principal.org_id(), "API key deleted");
    Ok(HttpResponse::NoContent().finish())
}

/// `GET /api-keys/{key_id}/events?limit=&cursor=`
#[utoipa::path(
    get, path = "/api/v2/api-keys/{key_id}/events", tag = "api-keys", operation_id = "list_api_key_events",
    summary = "A key's audit trail, newest first",
    params(
        ("key_id" = String, Path, description = "The key's id (a UUID)"),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 100, description = "Page size (default 100)"),
        ("cursor" = Option<String>, Query, description = "Opaque cursor from a Link header"),
    ),
    responses(
        (status = 200, description = "A page of events", body = Vec<AuditEventResponse>,
            headers(("Link" = String, description = "RFC 8288 rel=\"next\" link when more events exist"))),
        ManagementErrors,
        (status = 404, description = "No such key in the caller's organization", body = ErrorBody),
        (status = 422, description = "A parameter is invalid", body = ValidationErrorBody),
    ),
    security(("bearer" = [])),
)]
pub(crate) async fn events(
    req: HttpRequest,
    state: web::Data<AppState>,
    Authenticated(principal): Authenticated,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = parse_key_id(&path)?;
    let mut query = QueryReader::new(req.query_string()).map_err(ApiError::Validation)?;
    let limit = query.limit();
    let after = query.cursor().map(event_cursor);
    query.finish().map_err(ApiError::Validation)?;

    let page = state
        .api_keys
        .events(&actor(&req, &principal), id, after, limit)
        .await?;
    let mut response = HttpResponse::Ok();
    if let Some(next) = page.next {
        let path = format!("{}/{id}/events", collection(&req));
        let link = next_link(
            &path,
            &[("limit", limit.to_string())],
            encode_cursor(next.occurred_at, next.id),
        );
        response.insert_header((header::LINK, link));
    }
    Ok(response.json(page.items.iter().map(AuditEventResponse::from).collect::<Vec<_>>()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn errors<T: FromJsonBody + std::fmt::Debug>(value: Value) -> Vec<(String, String)> {
        T::from_json(value)
            .err()
            .unwrap_or_default()
            .into_iter()
            .map(|e| (e.loc.join("."), e.kind))
            .collect()
    }

    #[test]
    fn a_minimal_create_body_is_a_name() {
        let body = CreateApiKeyBody::from_json(json!({"name": "ci"})).unwrap();
        assert_eq!(body.name.as_str(), "ci");
        assert_eq!(
            (body.description, body.environment, body.expires_at),
            (None, None, None)
        );
    }

    #[test]
    fn every_failing_create_field_is_reported_at_once() {
        let found = errors::<CreateApiKeyBody>(
            json!({"name": "", "description": 5, "environment": "prod", "expires_at": "tomorrow", "scope": "all"}),
        );
        assert_eq!(
            found,
            vec![
                ("body.name".into(), "string_too_short".into()),
                ("body.description".into(), "string_type".into()),
                ("body.environment".into(), "literal_error".into()),
                ("body.expires_at".into(), "datetime_parsing".into()),
                ("body.scope".into(), "extra_forbidden".into()),
            ]
        );
    }

    #[test]
    fn a_patch_needs_a_field_and_cannot_null_the_name() {
        assert_eq!(
            errors::<UpdateApiKeyBody>(json!({})),
            vec![("body".into(), "value_error".into())]
        );
        assert_eq!(
            errors::<UpdateApiKeyBody>(json!({"name": null})),
            vec![("body.name".into(), "string_type".into())]
        );
        let clear = UpdateApiKeyBody::from_json(json!({"description": null})).unwrap();
        assert_eq!(clear.0.description, Some(None));
        assert_eq!(clear.0.name, None);
    }

    #[test]
    fn grace_periods_are_whole_seconds_up_to_a_week() {
        assert_eq!(RotateApiKeyBody::from_json(json!({})).unwrap().grace_period_seconds, 0);
        assert_eq!(
            RotateApiKeyBody::from_json(json!({"grace_period_seconds": 604800}))
                .unwrap()
                .grace_period_seconds,
            604_800
        );
        for (value, kind) in [
            (json!(604801), "less_than_equal"),
            (json!(-1), "greater_than_equal"),
            (json!(1.5), "int_from_float"),
            (json!("60"), "int_type"),
        ] {
            assert_eq!(
                errors::<RotateApiKeyBody>(json!({"grace_period_seconds": value})),
                vec![("body.grace_period_seconds".into(), kind.into())]
            );
        }
    }
}
