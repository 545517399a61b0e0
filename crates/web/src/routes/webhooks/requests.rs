//! The request bodies of the webhook routes and their path parameters: each
//! body is what its parser makes of a request and, through its derive, what
//! OpenAPI shows of it, event type names included.

use keymint_application::{NewWebhook, WebhookPatch};
use keymint_domain::{EventType, EventTypes, MAX_WEBHOOK_URL_CHARS};
use serde::Serialize;
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::validation::{FromJsonBody, ObjectReader, Optional};
use crate::FieldError;

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
