//! The OpenAPI 3.1 document, generated from the handlers' annotations, and the
//! schema-only types describing bodies that are validated by hand.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::OpenApi as Document;
use utoipa::{Modify, OpenApi, ToSchema};

use crate::routes::{api_keys, health, verify};
use crate::FieldError;

/// The body of a create request (validated field by field, not deserialised).
#[derive(ToSchema)]
#[allow(dead_code)]
pub(crate) struct CreateApiKeyRequest {
    /// A user-friendly name for the API key.
    #[schema(min_length = 1, max_length = 100)]
    name: String,
    /// An optional description for the API key.
    #[schema(max_length = 255)]
    description: Option<String>,
    /// `live` or `test`; the configured default when absent.
    #[schema(pattern = "^(live|test)$")]
    environment: Option<String>,
    /// When the key stops verifying (RFC 3339, in the future, at most the configured maximum ahead).
    #[schema(format = DateTime)]
    expires_at: Option<String>,
}

/// The body of an update: at least one field. A `null` description clears it.
#[derive(ToSchema)]
#[allow(dead_code)]
pub(crate) struct UpdateApiKeyRequest {
    /// A new name.
    #[schema(min_length = 1, max_length = 100)]
    name: Option<String>,
    /// A new description, or `null` to clear it.
    #[schema(max_length = 255)]
    description: Option<String>,
}

/// The optional body of a rotation.
#[derive(ToSchema)]
#[allow(dead_code)]
pub(crate) struct RotateApiKeyRequest {
    /// How long the replaced private key keeps verifying (default 0).
    #[schema(minimum = 0, maximum = 604800)]
    grace_period_seconds: Option<u32>,
}

/// The body of a verification.
#[derive(ToSchema)]
#[allow(dead_code)]
pub(crate) struct VerifyApiKeyRequest {
    /// The private key a caller presented (`sk_live_…` / `sk_test_…`).
    key: String,
}

/// Every error but validation: a message and a stable machine code.
#[derive(ToSchema)]
#[allow(dead_code)]
pub(crate) struct ErrorBody {
    /// For people.
    detail: String,
    /// For programs, e.g. `not_found`, `invalid_token`, `key_revoked`.
    code: String,
}

/// The errors every management route can answer, whatever it does.
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)]
pub(crate) enum ManagementErrors {
    /// Missing or invalid bearer token (`not_authenticated`, `invalid_token`)
    #[response(status = 401)]
    Unauthorized(ErrorBody),
    /// The token names no valid organization (`no_organization`) or lacks the
    /// permission (`insufficient_permissions`)
    #[response(status = 403)]
    Forbidden(ErrorBody),
    /// Storage or token verification unavailable (`storage_unavailable`, `auth_unavailable`)
    #[response(status = 503)]
    Unavailable(ErrorBody),
}

/// A validation error: one entry per failing field.
#[derive(ToSchema)]
#[allow(dead_code)]
pub(crate) struct ValidationErrorBody {
    /// The failing fields.
    detail: Vec<FieldError>,
    /// Always `validation_error`.
    code: String,
}

/// A health probe's answer.
#[derive(ToSchema)]
#[allow(dead_code)]
pub(crate) struct Status {
    /// `ok` or `ready`.
    status: String,
}

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

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Keymint",
        description = "Self-hosted API-key management. Every `/api/v2` route is mirrored under `/api/v1`, \
                       and every route answers with and without a trailing slash."
    ),
    paths(
        api_keys::create,
        api_keys::list,
        api_keys::get,
        api_keys::update,
        api_keys::revoke,
        api_keys::rotate,
        api_keys::delete,
        api_keys::events,
        verify::verify,
        health::healthz,
        health::readyz,
    ),
    modifiers(&BearerAuth),
    tags(
        (name = "api-keys", description = "Create and manage API keys"),
        (name = "verification", description = "Check keys presented by callers"),
        (name = "health", description = "Liveness and readiness probes"),
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
