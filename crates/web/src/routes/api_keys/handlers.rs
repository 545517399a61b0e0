//! The key lifecycle handlers: each takes its caller (and key) from an
//! extractor, calls one use case, and shapes the answer. Nothing is decided here.

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use keymint_application::KeyFilter;

use super::requests::{ChangeCreditsBody, CreateApiKeyBody, KeyPath, RotateApiKeyBody, UpdateApiKeyBody};
use super::responses::{self, ApiKeyResponse, AuditEventResponse, CreatedApiKeyResponse, RevokedApiKeyResponse};
use crate::error::{JsonBodyErrors, KeyErrors, ManagementErrors, ValidationErrorBody};
use crate::extract::{Acting, ActingOnKey, OptionalJson, ValidatedJson};
use crate::routes::paging::{encode_cursor, event_cursor, key_cursor, next_link, KeyListQuery, PageQuery, QueryReader};
use crate::{ApiError, AppState};

/// The collection path this request was made under (`/api/v1/api-keys` or v2).
fn collection(req: &HttpRequest) -> &'static str {
    if req.path().starts_with("/api/v1/") {
        "/api/v1/api-keys"
    } else {
        "/api/v2/api-keys"
    }
}

/// `POST /api-keys`
#[utoipa::path(
    post, path = "/api/v2/api-keys", tag = "api-keys", operation_id = "create_api_key",
    summary = "Create API Key",
    request_body = CreateApiKeyBody,
    responses(
        (status = 201, description = "Created; the private key is in this response only", body = CreatedApiKeyResponse,
            headers(("Location" = String, description = "The new key's URL"))),
        JsonBodyErrors,
        ManagementErrors,
        (status = 409, description = "The organization's active key limit is reached", body = crate::error::ErrorBody),
        (status = 422, description = "Validation failed", body = ValidationErrorBody),
    ),
    security(("bearer" = [])),
)]
pub(crate) async fn create(
    req: HttpRequest,
    state: web::Data<AppState>,
    Acting(actor): Acting,
    ValidatedJson(body): ValidatedJson<CreateApiKeyBody>,
) -> Result<HttpResponse, ApiError> {
    let request = body.into_request(actor.org_id(), state.default_environment);
    let created = state.api_keys.create(&actor, request).await?;
    tracing::info!(key_id = %created.key.id(), org_id = %created.key.org_id(), "API key created");
    let location = format!("{}/{}", collection(&req), created.key.id());
    Ok(responses::created(StatusCode::CREATED, location, &created))
}

/// `GET /api-keys?limit=&cursor=&environment=&is_revoked=&owner_id=&name=`
#[utoipa::path(
    get, path = "/api/v2/api-keys", tag = "api-keys", operation_id = "list_api_keys",
    summary = "List API Keys, newest first",
    params(PageQuery, KeyListQuery),
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
    Acting(actor): Acting,
) -> Result<HttpResponse, ApiError> {
    let mut query = QueryReader::new(req.query_string()).map_err(ApiError::Validation)?;
    let limit = query.limit();
    let after = query.cursor().map(key_cursor);
    let filter = KeyFilter {
        environment: query.environment(),
        revoked: query.boolean("is_revoked"),
        owner_id: query.owner_id(),
        name: query.name_search(),
    };
    query.finish().map_err(ApiError::Validation)?;

    let page = state.api_keys.list(&actor, filter.clone(), after, limit).await?;
    let mut response = HttpResponse::Ok();
    if let Some(next) = page.next {
        let params = [
            ("limit", limit.to_string()),
            (
                "environment",
                filter.environment.map(|e| e.as_str().to_owned()).unwrap_or_default(),
            ),
            ("is_revoked", filter.revoked.map(|r| r.to_string()).unwrap_or_default()),
            (
                "owner_id",
                filter
                    .owner_id
                    .as_ref()
                    .map(|o| o.as_str().to_owned())
                    .unwrap_or_default(),
            ),
            (
                "name",
                filter.name.as_ref().map(|n| n.folded().to_owned()).unwrap_or_default(),
            ),
        ];
        let cursor = encode_cursor(next.created_at, next.id.as_uuid());
        response.insert_header((header::LINK, next_link(collection(&req), &params, cursor)));
    }
    let ids: Vec<_> = page.items.iter().map(|key| key.id()).collect();
    let usage = state.analytics.last_day(actor.org_id(), &ids).await?;
    let keys: Vec<_> = page
        .items
        .iter()
        .map(|key| ApiKeyResponse::new(key, usage.get(&key.id()).copied().unwrap_or(0)))
        .collect();
    Ok(response.json(keys))
}

/// `key`'s verifications in the last day, for its response.
async fn usage_24h(state: &AppState, key: &keymint_domain::ApiKey) -> Result<u64, ApiError> {
    let usage = state.analytics.last_day(key.org_id(), &[key.id()]).await?;
    Ok(usage.get(&key.id()).copied().unwrap_or(0))
}

/// `GET /api-keys/{key_id}`
#[utoipa::path(
    get, path = "/api/v2/api-keys/{key_id}", tag = "api-keys", operation_id = "get_api_key",
    summary = "Get API Key",
    params(KeyPath),
    responses(
        (status = 200, description = "The key", body = ApiKeyResponse),
        ManagementErrors,
        KeyErrors,
    ),
    security(("bearer" = [])),
)]
pub(crate) async fn get(state: web::Data<AppState>, on: ActingOnKey) -> Result<HttpResponse, ApiError> {
    let key = state.api_keys.get(&on.actor, on.key_id).await?;
    Ok(HttpResponse::Ok().json(ApiKeyResponse::new(&key, usage_24h(&state, &key).await?)))
}

/// `PATCH /api-keys/{key_id}`
#[utoipa::path(
    patch, path = "/api/v2/api-keys/{key_id}", tag = "api-keys", operation_id = "update_api_key",
    summary = "Rename an API Key or change its description",
    params(KeyPath),
    request_body = UpdateApiKeyBody,
    responses(
        (status = 200, description = "The updated key", body = ApiKeyResponse),
        JsonBodyErrors,
        ManagementErrors,
        KeyErrors,
    ),
    security(("bearer" = [])),
)]
pub(crate) async fn update(
    state: web::Data<AppState>,
    on: ActingOnKey,
    ValidatedJson(body): ValidatedJson<UpdateApiKeyBody>,
) -> Result<HttpResponse, ApiError> {
    let key = state.api_keys.update(&on.actor, on.key_id, body.into()).await?;
    Ok(HttpResponse::Ok().json(ApiKeyResponse::new(&key, usage_24h(&state, &key).await?)))
}

/// The `Idempotency-Key` header: 1 to 255 visible ASCII characters.
fn idempotency_key(req: &HttpRequest) -> Result<Option<String>, ApiError> {
    let mut values = req.headers().get_all("idempotency-key");
    let Some(value) = values.next() else {
        return Ok(None);
    };
    let refuse = |msg: &str| {
        ApiError::Validation(vec![crate::FieldError::new(
            &["header", "idempotency-key"],
            "value_error",
            msg,
        )])
    };
    if values.next().is_some() {
        return Err(refuse("Send one Idempotency-Key header"));
    }
    let text = value
        .to_str()
        .ok()
        .filter(|text| (1..=255).contains(&text.len()) && text.bytes().all(|b| b.is_ascii_graphic()))
        .ok_or_else(|| refuse("Idempotency-Key must be 1 to 255 visible ASCII characters"))?;
    Ok(Some(text.to_owned()))
}

/// `POST /api-keys/{key_id}/credits`
#[utoipa::path(
    post, path = "/api/v2/api-keys/{key_id}/credits", tag = "api-keys", operation_id = "change_api_key_credits",
    summary = "Set, increment or decrement a key's remaining credits",
    description = "Applied atomically with the verifications spending them, and audited (`updated`, field         `credits`). With an `Idempotency-Key` header, a retry within 24 hours gets the first answer back         (with `Idempotent-Replayed: true`) and changes nothing; the same key with another request is a 409.",
    params(KeyPath,
        ("Idempotency-Key" = Option<String>, Header, description = "1 to 255 visible ASCII characters",
            min_length = 1, max_length = 255, pattern = "^[!-~]+$")),
    request_body = ChangeCreditsBody,
    responses(
        (status = 200, description = "The credits after the change", body = responses::CreditsBody,
            headers(("Idempotent-Replayed" = String, description = "`true` when this is a replayed answer"))),
        JsonBodyErrors,
        ManagementErrors,
        KeyErrors,
        (status = 409, description = "The key has unlimited use, the change would go below 0 or above the maximum,             or the idempotency key was used for another request", body = crate::error::ErrorBody),
        (status = 422, description = "Validation failed", body = ValidationErrorBody),
    ),
    security(("bearer" = [])),
)]
pub(crate) async fn change_credits(
    req: HttpRequest,
    state: web::Data<AppState>,
    on: ActingOnKey,
    ValidatedJson(body): ValidatedJson<ChangeCreditsBody>,
) -> Result<HttpResponse, ApiError> {
    let idempotency = idempotency_key(&req)?;
    let (credits, replayed) = state
        .api_keys
        .change_credits(&on.actor, on.key_id, body.into(), idempotency)
        .await?;
    let mut response = HttpResponse::Ok();
    if replayed {
        response.insert_header(("Idempotent-Replayed", "true"));
    }
    Ok(response.json(responses::CreditsBody::from(credits)))
}

/// `PUT /api-keys/{key_id}/revoke`
#[utoipa::path(
    put, path = "/api/v2/api-keys/{key_id}/revoke", tag = "api-keys", operation_id = "revoke_api_key",
    summary = "Revoke API Key (final; repeating it keeps the first revoked_at)",
    params(KeyPath),
    responses(
        (status = 200, description = "The revoked key", body = RevokedApiKeyResponse),
        ManagementErrors,
        KeyErrors,
    ),
    security(("bearer" = [])),
)]
pub(crate) async fn revoke(state: web::Data<AppState>, on: ActingOnKey) -> Result<HttpResponse, ApiError> {
    let key = state.api_keys.revoke(&on.actor, on.key_id).await?;
    Ok(HttpResponse::Ok().json(RevokedApiKeyResponse::from(&key)))
}

/// `POST /api-keys/{key_id}/rotate` with an optional `{"grace_period_seconds": n}`.
#[utoipa::path(
    post, path = "/api/v2/api-keys/{key_id}/rotate", tag = "api-keys", operation_id = "rotate_api_key",
    summary = "Rotate API Key: a new private key, the old one valid for the grace period",
    params(KeyPath),
    request_body(content = Option<RotateApiKeyBody>, description = "Optional; no body means no grace period"),
    responses(
        (status = 200, description = "The key with its new private key, shown once", body = CreatedApiKeyResponse),
        JsonBodyErrors,
        ManagementErrors,
        KeyErrors,
        (status = 409, description = "The key is revoked (key_revoked) or expired (key_expired)",
            body = crate::error::ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub(crate) async fn rotate(
    req: HttpRequest,
    state: web::Data<AppState>,
    on: ActingOnKey,
    body: OptionalJson<RotateApiKeyBody>,
) -> Result<HttpResponse, ApiError> {
    let grace = body.0.unwrap_or_default().grace_period();
    let rotated = state.api_keys.rotate(&on.actor, on.key_id, grace).await?;
    tracing::info!(key_id = %rotated.key.id(), org_id = %rotated.key.org_id(), "API key rotated");
    let location = format!("{}/{}", collection(&req), rotated.key.id());
    Ok(responses::created(StatusCode::OK, location, &rotated))
}

/// `DELETE /api-keys/{key_id}`
#[utoipa::path(
    delete, path = "/api/v2/api-keys/{key_id}", tag = "api-keys", operation_id = "delete_api_key",
    summary = "Delete API Key (its audit trail is kept)",
    params(KeyPath),
    responses(
        (status = 204, description = "Deleted"),
        ManagementErrors,
        KeyErrors,
    ),
    security(("bearer" = [])),
)]
pub(crate) async fn delete(state: web::Data<AppState>, on: ActingOnKey) -> Result<HttpResponse, ApiError> {
    state.api_keys.delete(&on.actor, on.key_id).await?;
    tracing::info!(key_id = %on.key_id, org_id = %on.actor.org_id(), "API key deleted");
    Ok(HttpResponse::NoContent().finish())
}

/// `GET /api-keys/{key_id}/events?limit=&cursor=`
#[utoipa::path(
    get, path = "/api/v2/api-keys/{key_id}/events", tag = "api-keys", operation_id = "list_api_key_events",
    summary = "A key's audit trail, newest first",
    params(KeyPath, PageQuery),
    responses(
        (status = 200, description = "A page of events", body = Vec<AuditEventResponse>,
            headers(("Link" = String, description = "RFC 8288 rel=\"next\" link when more events exist"))),
        ManagementErrors,
        KeyErrors,
    ),
    security(("bearer" = [])),
)]
pub(crate) async fn events(
    req: HttpRequest,
    state: web::Data<AppState>,
    on: ActingOnKey,
) -> Result<HttpResponse, ApiError> {
    let mut query = QueryReader::new(req.query_string()).map_err(ApiError::Validation)?;
    let limit = query.limit();
    let after = query.cursor().map(event_cursor);
    query.finish().map_err(ApiError::Validation)?;

    let page = state.api_keys.events(&on.actor, on.key_id, after, limit).await?;
    let mut response = HttpResponse::Ok();
    if let Some(next) = page.next {
        let path = format!("{}/{}/events", collection(&req), on.key_id);
        let link = next_link(
            &path,
            &[("limit", limit.to_string())],
            encode_cursor(next.occurred_at, next.id),
        );
        response.insert_header((header::LINK, link));
    }
    Ok(response.json(page.items.iter().map(AuditEventResponse::from).collect::<Vec<_>>()))
}
