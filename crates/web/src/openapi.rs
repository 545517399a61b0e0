//! The OpenAPI 3.1 document, assembled from the handlers' annotations. Each
//! schema lives beside the type it describes; this module only gathers them.

use utoipa::openapi::schema::{AdditionalProperties, Schema};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{OpenApi as Document, RefOr};
use utoipa::{Modify, OpenApi};

use crate::routes::{api_keys, health, leaks, verify, webhooks};

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut Document) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some("A JWT from your identity provider (Auth0 or any OIDC provider)"))
                    .build(),
            ),
        );
    }
}

/// Request bodies are read field by field and refuse fields they do not know
/// (422 `extra_forbidden`), and an update needs a field: the document says so.
/// (Done here because utoipa's derive cannot say `additionalProperties: false`
/// without serde, and writes `min_properties` as `maxProperties`.)
struct ClosedRequestBodies;

/// Each request body schema (and object inside one), and the fewest
/// properties it needs.
const REQUEST_BODIES: [(&str, usize); 16] = [
    ("ImportApiKeysRequest", 1),
    ("ImportApiKeyItem", 2),
    ("ImportedHash", 2),
    ("CreateWebhookRequest", 1),
    ("UpdateWebhookRequest", 1),
    ("RevokeLeakedRequest", 1),
    ("CreateApiKeyRequest", 1),
    ("UpdateApiKeyRequest", 1),
    ("RotateApiKeyRequest", 0),
    ("VerifyApiKeyRequest", 1),
    ("ChangeCreditsRequest", 2),
    ("RateLimitInput", 3),
    ("CreditsInput", 1),
    ("RefillInput", 2),
    ("CreditCost", 1),
    ("RateLimitCost", 1),
];

impl Modify for ClosedRequestBodies {
    fn modify(&self, openapi: &mut Document) {
        let Some(components) = openapi.components.as_mut() else {
            return;
        };
        for (name, min_properties) in REQUEST_BODIES {
            if let Some(RefOr::T(Schema::Object(object))) = components.schemas.get_mut(name) {
                object.additional_properties = Some(Box::new(AdditionalProperties::FreeForm(false)));
                object.min_properties = (min_properties > 0).then_some(min_properties);
            }
        }
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Keymint",
        description = "Self-hosted API-key management. Every `/api/v2` route is mirrored under `/api/v1`, \
                       and every route answers with and without a trailing slash."
    ),
    paths(
        api_keys::create,
        api_keys::import,
        api_keys::list,
        api_keys::get,
        api_keys::update,
        api_keys::revoke,
        api_keys::rotate,
        api_keys::change_credits,
        api_keys::delete,
        api_keys::events,
        verify::verify,
        health::healthz,
        health::readyz,
        leaks::secret_patterns,
        leaks::revoke_leaked,
        leaks::github,
        webhooks::create,
        webhooks::list,
        webhooks::get,
        webhooks::update,
        webhooks::delete,
        webhooks::rotate_secret,
        webhooks::deliveries,
        webhooks::retry,
    ),
    components(schemas(api_keys::ImportApiKeyItem, api_keys::ImportedHash)),
    modifiers(&BearerAuth, &ClosedRequestBodies),
    tags(
        (name = "api-keys", description = "Create and manage API keys"),
        (name = "verification", description = "Check keys presented by callers"),
        (name = "health", description = "Liveness and readiness probes"),
        (name = "webhooks", description = "Key events delivered to your endpoints, signed (Standard Webhooks)"),
        (name = "leaks", description = "Leaked keys: patterns for scanners, reports from them and from key holders"),
    )
)]
struct ApiDoc;

/// The whole document: the v2 routes as annotated, and their v1 mirrors.
pub fn openapi() -> Document {
    let mut doc = ApiDoc::openapi();
    let mirrors: Vec<(String, utoipa::openapi::PathItem)> = doc
        .paths
        .paths
        .iter()
        .filter_map(|(path, item)| {
            let v1 = path.strip_prefix("/api/v2/").map(|rest| format!("/api/v1/{rest}"))?;
            let mut item = item.clone();
            for operation in operations(&mut item) {
                operation.operation_id = operation.operation_id.take().map(|id| format!("{id}_v1"));
            }
            Some((v1, item))
        })
        .collect();
    doc.paths.paths.extend(mirrors);
    doc
}

fn operations(item: &mut utoipa::openapi::PathItem) -> impl Iterator<Item = &mut utoipa::openapi::path::Operation> {
    [
        &mut item.get,
        &mut item.put,
        &mut item.post,
        &mut item.delete,
        &mut item.options,
        &mut item.head,
        &mut item.patch,
        &mut item.trace,
    ]
    .into_iter()
    .filter_map(Option::as_mut)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_bodies_are_closed_and_an_update_needs_a_field() {
        let document = serde_json::to_value(openapi()).unwrap();
        let schemas = &document["components"]["schemas"];
        for (name, min_properties) in REQUEST_BODIES {
            let schema = &schemas[name];
            assert_eq!(schema["additionalProperties"], false, "{name}");
            assert!(schema.get("maxProperties").is_none(), "{name}: {schema}");
            match min_properties {
                0 => assert!(schema.get("minProperties").is_none(), "{name}"),
                n => assert_eq!(schema["minProperties"], n, "{name}"),
            }
        }
    }
}
