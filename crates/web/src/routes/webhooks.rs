//! `/api/v2/webhooks`: an organisation's endpoints for key events, their
//! signing secrets (shown once) and their deliveries.

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::Utc;
use keymint_application::{Delivery, NewWebhook, WebhookPatch, WebhookWithSecret};
use keymint_domain::{EndpointHealth, EndpointState, EventType, EventTypes, Webhook, MAX_WEBHOOK_URL_CHARS};
use serde::Serialize;
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::timestamp;
use crate::error::{ErrorBody, JsonBodyErrors, ManagementErrors, ValidationErrorBody};
use crate::extract::{path_uuid, Acting, ValidatedJson};
use crate::routes::paging::{next_link, QueryReader, SequencePageQuery};
use crate::validation::{FromJsonBody, ObjectReader, Optional};
use crate::{ApiError, AppState, FieldError};

/// The collection path this request was made under.
fn collection(req: &HttpRequest) -> &'static str {
    if req.path().starts_with("/api/v1/") {
        "/api/v1/webhooks"
    } else {
        "/api/v2/webhooks"
    }
}

/// An event type's name, as OpenAPI describes it: the server refuses any
/// other (422 naming the item).
#[derive(Serialize, ToSchema)]
#[schema(as = EventType)]
#[allow(dead_code)]
pub(crate) enum EventTypeName {
    #[serde(rename = "key.created")]
    Created,
    #[serde(rename = "key.updated")]
    Updated,
    #[serde(rename = "key.rotated")]
    Rotated,
    #[serde(rename = "key.revoked")]
    Revoked,
    #[serde(rename = "key.deleted")]
    Deleted,
    #[serde(rename = "key.leaked")]
    Leaked,
    #[serde(rename = "key.expiring")]
    Expiring,
    #[serde(rename = "key.credits_low")]
    CreditsLow,
}

fn read_event_types(body: &mut ObjectReader) -> Option<Option<EventTypes>> {
    let items = match body.optional_array("event_types")? {
        Optional::Absent | Optional::Null => return Some(None),
        Optional::Value(items) => items,
    };
    let mut types = Vec::with_capacity(items.len());
    let mut valid = true;
    for (index, item) in items.iter().enumerate() {
        match item.as_str().map(str::parse::<EventType>) {
            Some(Ok(event)) => types.push(event),
            Some(Err(_)) => {
                let names: Vec<&str> = EventType::ALL.iter().map(|e| e.as_str()).collect();
                body.fail_item(
                    "event_types",
                    index,
                    "enum",
                    format!("Input should be one of {}", names.join(", ")),
                );
                valid = false;
            }
            None => {
                body.fail_item("event_types", index, "string_type", "Input should be a valid string");
                valid = false;
            }
        }
    }
    if !valid {
        return None;
    }
    match EventTypes::new(types) {
        Ok(types) => Some(Some(types)),
        Err(err) => {
            body.fail("event_types", "too_short", err.to_string());
            None
        }
    }
}

fn read_url(body: &mut ObjectReader, raw: String) -> Option<String> {
    if raw.chars().count() > MAX_WEBHOOK_URL_CHARS {
        body.fail(
            "url",
            "string_too_long",
            format!("String should have at most {MAX_WEBHOOK_URL_CHARS} characters"),
        );
        return None;
    }
    Some(raw)
}

fn read_enabled(body: &mut ObjectReader) -> Option<Option<bool>> {
    match body.optional_bool("enabled")? {
        Optional::Value(flag) => Some(Some(flag)),
        Optional::Absent | Optional::Null => Some(None),
    }
}

// What the parser makes of a create body is what OpenAPI shows of it.
/// The body of a webhook create.
#[derive(Debug, ToSchema)]
#[schema(as = CreateWebhookRequest)]
pub(crate) struct CreateWebhookBody {
    /// Where deliveries go: https (http only where the deployment allows it), no
    /// credentials, no fragment
    #[schema(max_length = 2048, pattern = "^https?://[^\\s@#]+$")]
    url: String,
    /// What it receives (default: every event type)
    #[schema(min_items = 1, value_type = Option<Vec<EventTypeName>>)]
    event_types: Option<EventTypes>,
    /// Whether it receives events (default true)
    enabled: Option<bool>,
}

impl From<CreateWebhookBody> for NewWebhook {
    fn from(body: CreateWebhookBody) -> Self {
        Self {
            url: body.url,
            event_types: body.event_types,
            enabled: body.enabled.unwrap_or(true),
        }
    }
}

impl FromJsonBody for CreateWebhookBody {
    fn from_json(value: Value) -> Result<Self, Vec<FieldError>> {
        let mut body = ObjectReader::new("body", value)?;
        let url = body.required_string("url").and_then(|raw| read_url(&mut body, raw));
        let event_types = read_event_types(&mut body);
        let enabled = read_enabled(&mut body);
        let parsed = match (url, event_types, enabled) {
            (Some(url), Some(event_types), Some(enabled)) => Some(Self {
                url,
                event_types,
                enabled,
            }),
            _ => None,
        };
        body.finish(parsed)
    }
}

// What the parser makes of an update body is what OpenAPI shows of it.
/// The body of a webhook update: at least one field.
#[derive(Debug, ToSchema)]
#[schema(as = UpdateWebhookRequest, min_properties = 1)]
pub(crate) struct UpdateWebhookBody {
    /// A new URL (it cannot be removed: `null` is refused)
    #[schema(max_length = 2048, pattern = "^https?://[^\\s@#]+$", nullable = false)]
    url: Option<String>,
    /// New event types
    #[schema(min_items = 1, value_type = Option<Vec<EventTypeName>>)]
    event_types: Option<EventTypes>,
    /// Enable or disable
    enabled: Option<bool>,
}

impl From<UpdateWebhookBody> for WebhookPatch {
    fn from(body: UpdateWebhookBody) -> Self {
        Self {
            url: body.url,
            event_types: body.event_types,
            enabled: body.enabled,
        }
    }
}

impl FromJsonBody for UpdateWebhookBody {
    fn from_json(value: Value) -> Result<Self, Vec<FieldError>> {
        let mut body = ObjectReader::new("body", value)?;
        if !["url", "event_types", "enabled"].iter().any(|field| body.has(field)) {
            body.fail("body", "missing", "Give at least one of url, event_types, enabled");
        }
        let url = match body.optional_string("url") {
            Some(Optional::Value(raw)) => read_url(&mut body, raw).map(Some),
            Some(Optional::Absent) => Some(None),
            Some(Optional::Null) => {
                body.fail("url", "string_type", "Input should be a valid string");
                None
            }
            None => None,
        };
        let event_types = read_event_types(&mut body);
        let enabled = read_enabled(&mut body);
        let parsed = match (url, event_types, enabled) {
            (Some(url), Some(event_types), Some(enabled)) => Some(Self {
                url,
                event_types,
                enabled,
            }),
            _ => None,
        };
        body.finish(parsed)
    }
}

/// A webhook as every read returns it (never its secret).
#[derive(Serialize, ToSchema)]
#[schema(as = Webhook)]
pub(crate) struct WebhookResponse<'a> {
    #[schema(format = Uuid)]
    id: String,
    url: &'a str,
    /// What it receives
    #[schema(value_type = Vec<EventTypeName>)]
    event_types: Vec<&'static str>,
    /// Whether it receives events
    enabled: bool,
    #[schema(format = DateTime)]
    created_at: String,
    #[schema(format = DateTime)]
    updated_at: String,
    /// How the endpoint has been answering: its circuit breaker
    health: HealthResponse,
}

/// Where an endpoint's circuit breaker stands.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(as = WebhookHealthState)]
pub(crate) enum HealthState {
    /// Its last attempt succeeded, or none was made
    Healthy,
    /// Recent attempts failed, not yet enough to pause it
    Failing,
    /// Nothing is sent to it until `paused_until`; its deliveries wait, spending no attempts
    Paused,
    /// The pause is over: one delivery at a time tries it until one succeeds
    Probing,
}

/// An endpoint's circuit breaker: after `webhooks.breaker_failures` failed
/// attempts in a row it is paused, and probed after the pause.
#[derive(Serialize, ToSchema)]
#[schema(as = WebhookHealth)]
pub(crate) struct HealthResponse {
    state: HealthState,
    /// Attempts that failed in a row (0 after any success)
    consecutive_failures: u32,
    /// While paused: when it is probed again
    #[schema(format = DateTime)]
    paused_until: Option<String>,
}

impl HealthResponse {
    fn new(health: &EndpointHealth) -> Self {
        let state = match health.state(Utc::now()) {
            EndpointState::Healthy => HealthState::Healthy,
            EndpointState::Failing => HealthState::Failing,
            EndpointState::Paused => HealthState::Paused,
            EndpointState::Probing => HealthState::Probing,
        };
        Self {
            paused_until: match state {
                HealthState::Paused => health.paused_until.map(timestamp),
                _ => None,
            },
            state,
            consecutive_failures: health.consecutive_failures,
        }
    }
}

impl<'a> From<&'a Webhook> for WebhookResponse<'a> {
    fn from(webhook: &'a Webhook) -> Self {
        Self {
            id: webhook.id.to_string(),
            url: webhook.url.as_str(),
            event_types: webhook.event_types.iter().map(EventType::as_str).collect(),
            enabled: webhook.enabled,
            created_at: timestamp(webhook.created_at),
            updated_at: timestamp(webhook.updated_at),
            health: HealthResponse::new(&webhook.health),
        }
    }
}

/// A webhook with its signing secret: the create and rotate-secret answers,
/// the only ones that show it.
#[derive(Serialize, ToSchema)]
#[schema(as = WebhookWithSecret)]
pub(crate) struct WebhookWithSecretResponse<'a> {
    #[serde(flatten)]
    #[schema(inline)]
    webhook: WebhookResponse<'a>,
    /// The signing secret (`whsec_<base64>`, Standard Webhooks): shown here only
    secret: &'a str,
}

impl<'a> From<&'a WebhookWithSecret> for WebhookWithSecretResponse<'a> {
    fn from(created: &'a WebhookWithSecret) -> Self {
        Self {
            webhook: WebhookResponse::from(&created.webhook),
            secret: created.secret.expose_secret(),
        }
    }
}

/// One attempt at a delivery.
#[derive(Serialize, ToSchema)]
pub(crate) struct AttemptResponse {
    #[schema(format = DateTime)]
    attempted_at: String,
    /// The endpoint's HTTP status, if it answered
    status_code: Option<u16>,
    /// Time to the answer or the failure, milliseconds
    latency_ms: u64,
    /// Why it failed without an answer
    error: Option<String>,
}

/// A delivery of one event to the webhook.
#[derive(Serialize, ToSchema)]
#[schema(as = WebhookDelivery)]
pub(crate) struct DeliveryResponse {
    /// The `webhook-id` header of every attempt
    #[schema(format = Uuid)]
    id: String,
    event_type: &'static str,
    #[schema(format = Uuid)]
    key_id: String,
    /// `pending`, `delivered` or `failed`
    status: &'static str,
    #[schema(format = DateTime)]
    created_at: String,
    /// When the next attempt is due, while pending
    #[schema(format = DateTime)]
    next_attempt_at: Option<String>,
    /// Oldest first
    attempts: Vec<AttemptResponse>,
}

impl From<&Delivery> for DeliveryResponse {
    fn from(delivery: &Delivery) -> Self {
        Self {
            id: delivery.id.to_string(),
            event_type: delivery.event_type.as_str(),
            key_id: delivery.key_id.to_string(),
            status: delivery.status.as_str(),
            created_at: timestamp(delivery.created_at),
            next_attempt_at: delivery.next_attempt_at.map(timestamp),
            attempts: delivery
                .attempts
                .iter()
                .map(|attempt| AttemptResponse {
                    attempted_at: timestamp(attempt.attempted_at),
                    status_code: attempt.status_code,
                    latency_ms: attempt.latency_ms,
                    error: attempt.error.clone(),
                })
                .collect(),
        }
    }
}

/// A webhook's id in the path.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)]
pub(crate) struct WebhookPath {
    /// The webhook's id
    webhook_id: Uuid,
}

/// A delivery's id in the path.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)]
pub(crate) struct DeliveryPath {
    /// The webhook's id
    webhook_id: Uuid,
    /// The delivery's id
    delivery_id: Uuid,
}

/// `POST /webhooks`
#[utoipa::path(
    post, path = "/api/v2/webhooks", tag = "webhooks", operation_id = "create_webhook",
    summary = "Create a webhook (its signing secret is in this answer only)",
    request_body = CreateWebhookBody,
    responses(
        (status = 201, description = "Created", body = WebhookWithSecretResponse,
            headers(("Location" = String, description = "The webhook's URL"))),
        JsonBodyErrors,
        ManagementErrors,
        (status = 409, description = "The organisation's webhook limit is reached", body = ErrorBody),
        (status = 422, description = "Validation failed", body = ValidationErrorBody),
    ),
    security(("bearer" = [])),
)]
pub(crate) async fn create(
    req: HttpRequest,
    state: web::Data<AppState>,
    Acting(actor): Acting,
    ValidatedJson(body): ValidatedJson<CreateWebhookBody>,
) -> Result<HttpResponse, ApiError> {
    let created = state.webhooks.create(&actor, body.into()).await?;
    tracing::info!(webhook_id = %created.webhook.id, org_id = %created.webhook.org_id, "webhook created");
    Ok(HttpResponse::Created()
        .insert_header((header::LOCATION, format!("{}/{}", collection(&req), created.webhook.id)))
        .json(WebhookWithSecretResponse::from(&created)))
}

/// `GET /webhooks`
#[utoipa::path(
    get, path = "/api/v2/webhooks", tag = "webhooks", operation_id = "list_webhooks",
    summary = "List webhooks, oldest first",
    responses((status = 200, description = "Every webhook", body = Vec<WebhookResponse>), ManagementErrors),
    security(("bearer" = [])),
)]
pub(crate) async fn list(state: web::Data<AppState>, Acting(actor): Acting) -> Result<HttpResponse, ApiError> {
    let webhooks = state.webhooks.list(&actor).await?;
    Ok(HttpResponse::Ok().json(webhooks.iter().map(WebhookResponse::from).collect::<Vec<_>>()))
}

/// `GET /webhooks/{webhook_id}`
#[utoipa::path(
    get, path = "/api/v2/webhooks/{webhook_id}", tag = "webhooks", operation_id = "get_webhook",
    summary = "Get a webhook",
    params(WebhookPath),
    responses(
        (status = 200, description = "The webhook", body = WebhookResponse),
        ManagementErrors,
        (status = 404, description = "No such webhook", body = ErrorBody),
        (status = 422, description = "webhook_id is not a UUID", body = ValidationErrorBody),
    ),
    security(("bearer" = [])),
)]
pub(crate) async fn get(
    req: HttpRequest,
    state: web::Data<AppState>,
    Acting(actor): Acting,
) -> Result<HttpResponse, ApiError> {
    let webhook = state.webhooks.get(&actor, path_uuid(&req, "webhook_id")?).await?;
    Ok(HttpResponse::Ok().json(WebhookResponse::from(&webhook)))
}

/// `PATCH /webhooks/{webhook_id}`
#[utoipa::path(
    patch, path = "/api/v2/webhooks/{webhook_id}", tag = "webhooks", operation_id = "update_webhook",
    summary = "Change a webhook's URL, event types or enabled flag",
    params(WebhookPath),
    request_body = UpdateWebhookBody,
    responses(
        (status = 200, description = "The updated webhook", body = WebhookResponse),
        JsonBodyErrors,
        ManagementErrors,
        (status = 404, description = "No such webhook", body = ErrorBody),
        (status = 422, description = "Validation failed", body = ValidationErrorBody),
    ),
    security(("bearer" = [])),
)]
pub(crate) async fn update(
    req: HttpRequest,
    state: web::Data<AppState>,
    Acting(actor): Acting,
    ValidatedJson(body): ValidatedJson<UpdateWebhookBody>,
) -> Result<HttpResponse, ApiError> {
    let webhook = state
        .webhooks
        .update(&actor, path_uuid(&req, "webhook_id")?, body.into())
        .await?;
    Ok(HttpResponse::Ok().json(WebhookResponse::from(&webhook)))
}

/// `DELETE /webhooks/{webhook_id}`
#[utoipa::path(
    delete, path = "/api/v2/webhooks/{webhook_id}", tag = "webhooks", operation_id = "delete_webhook",
    summary = "Delete a webhook and its deliveries",
    params(WebhookPath),
    responses(
        (status = 204, description = "Deleted"),
        ManagementErrors,
        (status = 404, description = "No such webhook", body = ErrorBody),
        (status = 422, description = "webhook_id is not a UUID", body = ValidationErrorBody),
    ),
    security(("bearer" = [])),
)]
pub(crate) async fn delete(
    req: HttpRequest,
    state: web::Data<AppState>,
    Acting(actor): Acting,
) -> Result<HttpResponse, ApiError> {
    state.webhooks.delete(&actor, path_uuid(&req, "webhook_id")?).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// `POST /webhooks/{webhook_id}/rotate-secret`
#[utoipa::path(
    post, path = "/api/v2/webhooks/{webhook_id}/rotate-secret", tag = "webhooks",
    operation_id = "rotate_webhook_secret",
    summary = "Give a webhook a new signing secret (the old one also signs for 24 hours)",
    params(WebhookPath),
    responses(
        (status = 200, description = "The webhook and its new secret, shown here only", body = WebhookWithSecretResponse),
        ManagementErrors,
        (status = 404, description = "No such webhook", body = ErrorBody),
        (status = 422, description = "webhook_id is not a UUID", body = ValidationErrorBody),
    ),
    security(("bearer" = [])),
)]
pub(crate) async fn rotate_secret(
    req: HttpRequest,
    state: web::Data<AppState>,
    Acting(actor): Acting,
) -> Result<HttpResponse, ApiError> {
    let rotated = state
        .webhooks
        .rotate_secret(&actor, path_uuid(&req, "webhook_id")?)
        .await?;
    Ok(HttpResponse::Ok().json(WebhookWithSecretResponse::from(&rotated)))
}

/// `GET /webhooks/{webhook_id}/deliveries?limit=&cursor=`
#[utoipa::path(
    get, path = "/api/v2/webhooks/{webhook_id}/deliveries", tag = "webhooks", operation_id = "list_webhook_deliveries",
    summary = "A webhook's deliveries, newest first, with every attempt",
    params(WebhookPath, SequencePageQuery),
    responses(
        (status = 200, description = "A page of deliveries", body = Vec<DeliveryResponse>,
            headers(("Link" = String, description = "RFC 8288 rel=\"next\" link when more exist"))),
        ManagementErrors,
        (status = 404, description = "No such webhook", body = ErrorBody),
        (status = 422, description = "A path or query parameter is invalid", body = ValidationErrorBody),
    ),
    security(("bearer" = [])),
)]
pub(crate) async fn deliveries(
    req: HttpRequest,
    state: web::Data<AppState>,
    Acting(actor): Acting,
) -> Result<HttpResponse, ApiError> {
    let id = path_uuid(&req, "webhook_id")?;
    let mut query = QueryReader::new(req.query_string()).map_err(ApiError::Validation)?;
    let limit = query.limit();
    let before = query.sequence_cursor();
    query.finish().map_err(ApiError::Validation)?;
    let page = state.webhooks.deliveries(&actor, id, before, limit).await?;
    let mut response = HttpResponse::Ok();
    if let Some(next) = page.next {
        let path = format!("{}/{id}/deliveries", collection(&req));
        response.insert_header((
            header::LINK,
            next_link(&path, &[("limit", limit.to_string())], next.to_string()),
        ));
    }
    Ok(response.json(page.items.iter().map(DeliveryResponse::from).collect::<Vec<_>>()))
}

/// `POST /webhooks/{webhook_id}/deliveries/{delivery_id}/retry`
#[utoipa::path(
    post, path = "/api/v2/webhooks/{webhook_id}/deliveries/{delivery_id}/retry", tag = "webhooks",
    operation_id = "retry_webhook_delivery",
    summary = "Send a delivery again now (same webhook-id), whatever became of it",
    params(DeliveryPath),
    responses(
        (status = 202, description = "Queued", body = DeliveryResponse),
        ManagementErrors,
        (status = 404, description = "No such webhook or delivery", body = ErrorBody),
        (status = 422, description = "An id is not a UUID", body = ValidationErrorBody),
    ),
    security(("bearer" = [])),
)]
pub(crate) async fn retry(
    req: HttpRequest,
    state: web::Data<AppState>,
    Acting(actor): Acting,
) -> Result<HttpResponse, ApiError> {
    let (id, delivery_id) = (path_uuid(&req, "webhook_id")?, path_uuid(&req, "delivery_id")?);
    let delivery = state.webhooks.retry(&actor, id, delivery_id).await?;
    Ok(HttpResponse::Accepted().json(DeliveryResponse::from(&delivery)))
}
