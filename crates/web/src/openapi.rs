//! The OpenAPI 3.1 document, assembled from the handlers' annotations. Each
//! schema lives beside the type it describes; this module only gathers them.

use utoipa::openapi::schema::{AdditionalProperties, Schema, SchemaType, Type};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::Required;
use utoipa::openapi::{OpenApi as Document, RefOr};
use utoipa::{Modify, OpenApi};

use crate::routes::{analytics, api_keys, health, leaks, verify, webhooks};

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
        // The two header forms `POST …/verify` takes the key in besides the
        // body: declared, so that generated clients can send them.
        components.add_security_scheme(
            "api_key",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "x-api-key",
                "The API key being verified, for POST /api-keys/verify without a body",
            ))),
        );
        components.add_security_scheme(
            "api_key_bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("Keymint API key")
                    .description(Some(
                        "The API key being verified as Authorization: Bearer, for POST /api-keys/verify \
                         without a body",
                    ))
                    .build(),
            ),
        );
    }
}

/// Bodies a request may leave out (rotate's grace period, verify's key when
/// a header carries it): `required: false` and the body's own schema. The
/// derive writes `oneOf: [null, …]` instead, which generators turn into a
/// union every caller has to spell out; a JSON `null` body is still taken.
struct OptionalBodies;

impl Modify for OptionalBodies {
    fn modify(&self, openapi: &mut Document) {
        for item in openapi.paths.paths.values_mut() {
            for operation in operations(item) {
                let Some(body) = operation.request_body.as_mut() else {
                    continue;
                };
                if body.required == Some(Required::True) {
                    continue;
                }
                for content in body.content.values_mut() {
                    let Some(RefOr::T(Schema::OneOf(one_of))) = &content.schema else {
                        continue;
                    };
                    let mut reference = one_of
                        .items
                        .iter()
                        .filter(|item| !matches!(item, RefOr::T(Schema::Object(object)) if object.schema_type == SchemaType::Type(Type::Null)));
                    if let (Some(only), None) = (reference.next(), reference.next()) {
                        content.schema = Some(only.clone());
                    }
                }
                body.required = Some(Required::False);
            }
        }
    }
}

/// Request bodies are read field by field and refuse fields they do not know
/// (422 `extra_forbidden`), and some need a field: the document says so of
/// every schema a request body reaches. Done here because utoipa's derive
/// cannot say `additionalProperties: false` without serde, and writes a
/// struct's `min_properties` as `maxProperties` (moved back here).
struct ClosedRequestBodies;

/// GitHub's alert format is GitHub's: fields it adds must not be refused.
const OPEN_BODIES: [&str; 1] = ["github_secret_scanning"];

/// Every `#/components/schemas/…` name `value` refers to.
fn referenced(value: &serde_json::Value, names: &mut Vec<String>) {
    match value {
        serde_json::Value::Object(members) => {
            for (key, member) in members {
                match (key.as_str(), member.as_str()) {
                    ("$ref", Some(target)) => {
                        names.extend(target.strip_prefix("#/components/schemas/").map(str::to_owned))
                    }
                    _ => referenced(member, names),
                }
            }
        }
        serde_json::Value::Array(items) => items.iter().for_each(|item| referenced(item, names)),
        _ => {}
    }
}

impl Modify for ClosedRequestBodies {
    fn modify(&self, openapi: &mut Document) {
        let mut pending = Vec::new();
        for item in openapi.paths.paths.values_mut() {
            for operation in operations(item) {
                let open = operation
                    .operation_id
                    .as_deref()
                    .is_some_and(|id| OPEN_BODIES.contains(&id));
                if let (Some(body), false) = (&operation.request_body, open) {
                    referenced(&serde_json::to_value(body).unwrap_or_default(), &mut pending);
                }
            }
        }
        let Some(components) = openapi.components.as_mut() else {
            return;
        };
        let mut closed = std::collections::BTreeSet::new();
        while let Some(name) = pending.pop() {
            if !closed.insert(name.clone()) {
                continue;
            }
            let Some(RefOr::T(schema)) = components.schemas.get_mut(&name) else {
                continue;
            };
            referenced(&serde_json::to_value(&*schema).unwrap_or_default(), &mut pending);
            // Objects only: an enum of strings is closed by its values.
            match schema {
                Schema::Object(object) if !object.properties.is_empty() => {
                    object.additional_properties = Some(Box::new(AdditionalProperties::FreeForm(false)));
                    let declared = object.max_properties.take().into_iter().chain(object.min_properties);
                    let fewest = declared.chain([object.required.len()]).max().unwrap_or(0);
                    object.min_properties = (fewest > 0).then_some(fewest);
                }
                _ => {}
            }
        }
    }
}

/// A response made of flattened parts (`#[serde(flatten)]`, one JSON object on
/// the wire) is derived as an `allOf` of inline objects; generators read one
/// object better, and it is what the wire carries, so the parts are merged.
struct FlattenedObjects;

impl Modify for FlattenedObjects {
    fn modify(&self, openapi: &mut Document) {
        let Some(components) = openapi.components.as_mut() else {
            return;
        };
        for schema in components.schemas.values_mut() {
            let RefOr::T(Schema::AllOf(all_of)) = schema else {
                continue;
            };
            let inline = all_of
                .items
                .iter()
                .all(|item| matches!(item, RefOr::T(Schema::Object(_))));
            if !inline {
                continue;
            }
            let mut merged = utoipa::openapi::schema::Object::new();
            for item in std::mem::take(&mut all_of.items) {
                if let RefOr::T(Schema::Object(part)) = item {
                    merged.properties.extend(part.properties);
                    merged.required.extend(part.required);
                }
            }
            merged.schema_type = Type::Object.into();
            merged.description = all_of.description.take();
            *schema = RefOr::T(Schema::Object(merged));
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
        analytics::key_usage,
        analytics::verifications,
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
    components(schemas(api_keys::ImportItemBody)),
    modifiers(&BearerAuth, &FlattenedObjects, &ClosedRequestBodies, &OptionalBodies),
    tags(
        (name = "api-keys", description = "Create and manage API keys"),
        (name = "verification", description = "Check keys presented by callers"),
        (name = "analytics", description = "How keys are used: verifications over time, by key, owner, tag and outcome"),
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
    fn request_bodies_are_closed_and_say_how_many_fields_they_need() {
        let document = serde_json::to_value(openapi()).unwrap();
        let schemas = document["components"]["schemas"].as_object().unwrap();
        let expected = [
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
        for (name, min_properties) in expected {
            let schema = &schemas[name];
            assert_eq!(schema["additionalProperties"], false, "{name}");
            assert!(schema.get("maxProperties").is_none(), "{name}: {schema}");
            match min_properties {
                0 => assert!(schema.get("minProperties").is_none(), "{name}"),
                n => assert_eq!(schema["minProperties"], n, "{name}"),
            }
        }
        let closed = schemas
            .iter()
            .filter(|(_, schema)| schema["additionalProperties"] == false)
            .count();
        assert_eq!(closed, expected.len(), "only request bodies are closed");
        assert!(
            schemas["GithubAlert"].get("additionalProperties").is_none(),
            "GitHub's alerts stay open to fields GitHub adds"
        );
    }

    #[test]
    fn meta_is_any_object_everywhere_so_generated_types_can_hold_it() {
        let document = serde_json::to_value(openapi()).unwrap();
        let schemas = &document["components"]["schemas"];
        for name in [
            "ApiKey",
            "ApiKeyCreated",
            "CreateApiKeyRequest",
            "ImportApiKeyItem",
            "UpdateApiKeyRequest",
            "VerifyResult",
        ] {
            let meta = &schemas[name]["properties"]["meta"];
            assert_eq!(meta["additionalProperties"], true, "{name}: {meta}");
            assert_eq!(meta["type"], serde_json::json!(["object", "null"]), "{name}");
        }
    }

    #[test]
    fn each_import_branch_names_the_secret_it_requires() {
        let document = serde_json::to_value(openapi()).unwrap();
        let items = &document["components"]["schemas"]["ImportApiKeysRequest"]["properties"]["keys"]["items"];
        let branches = &items["allOf"][1]["oneOf"];
        assert_eq!(branches[0]["required"], serde_json::json!(["key"]));
        assert_eq!(branches[0]["properties"]["key"]["type"], "string");
        assert_eq!(branches[1]["required"], serde_json::json!(["hash"]));
        assert_eq!(
            branches[1]["properties"]["hash"]["$ref"],
            "#/components/schemas/ImportedHash"
        );
    }

    #[test]
    fn optional_bodies_are_plain_references_and_verify_names_its_header_forms() {
        let document = serde_json::to_value(openapi()).unwrap();
        for (path, schema) in [
            ("/api/v2/api-keys/verify", "VerifyApiKeyRequest"),
            ("/api/v2/api-keys/{key_id}/rotate", "RotateApiKeyRequest"),
            ("/api/v1/api-keys/verify", "VerifyApiKeyRequest"),
        ] {
            let body = &document["paths"][path]["post"]["requestBody"];
            assert_eq!(body["required"], false, "{path}");
            assert_eq!(
                body["content"]["application/json"]["schema"]["$ref"],
                format!("#/components/schemas/{schema}"),
                "{path}: {body}"
            );
        }
        assert_eq!(
            document["paths"]["/api/v2/api-keys/verify"]["post"]["security"],
            serde_json::json!([{}, {"api_key": []}, {"api_key_bearer": []}])
        );
        let schemes = &document["components"]["securitySchemes"];
        assert_eq!(schemes["api_key"]["in"], "header");
        assert_eq!(schemes["api_key"]["name"], "x-api-key");
        assert_eq!(schemes["api_key_bearer"]["scheme"], "bearer");
    }
}
