//! The webhook handlers: each takes its caller from an extractor, calls one
//! use case, and shapes the answer.

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};

use super::requests::{CreateWebhookBody, DeliveryPath, UpdateWebhookBody, WebhookPath};
use super::responses::{DeliveryResponse, WebhookResponse, WebhookWithSecretResponse};
use crate::error::{ErrorBody, JsonBodyErrors, ManagementErrors, ValidationErrorBody};
use crate::extract::{path_uuid, Acting, ValidatedJson};
use crate::routes::paging::{next_link, QueryReader, SequencePageQuery};
use crate::{ApiError, AppState};

/// The collection path this request was made under.
fn collection(req: &HttpRequest) -> &'static str {
    if req.path().starts_with("/api/v1/") {
        "/api/v1/webhooks"
    } else {
        "/api/v2/webhooks"
    }
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
