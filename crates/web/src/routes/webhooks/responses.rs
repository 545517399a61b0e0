//! The response bodies of the webhook routes (a webhook, its signing secret
//! when shown, its circuit breaker, its deliveries and their attempts) and
//! their OpenAPI schemas.

use chrono::Utc;
use keymint_application::{Delivery, WebhookWithSecret};
use keymint_domain::{EndpointHealth, EndpointState, EventType, Webhook};
use serde::Serialize;
use utoipa::ToSchema;

use super::requests::EventTypeName;
use crate::routes::timestamp;

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
