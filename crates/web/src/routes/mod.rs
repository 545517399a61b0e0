//! Route handlers and their request/response bodies.

pub(crate) mod analytics;
pub(crate) mod api_keys;
pub(crate) mod health;
pub(crate) mod leaks;
mod paging;
pub(crate) mod verify;
pub(crate) mod webhooks;

use actix_web::http::header;
use actix_web::{guard, web, HttpResponse};
use keymint_domain::Environment;
use utoipa::openapi::schema::{ObjectBuilder, Schema, SchemaType, Type};
use utoipa::openapi::RefOr;

use crate::ApiError;

/// An environment's schema: one of the domain's environments.
pub(crate) fn environment_schema() -> impl Into<RefOr<Schema>> {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .description(Some("The keys' environment"))
        .enum_values(Some(Environment::ALL.map(Environment::as_str)))
}

/// An environment or `null`.
pub(crate) fn nullable_environment_schema() -> impl Into<RefOr<Schema>> {
    let names = Environment::ALL.map(|e| serde_json::Value::from(e.as_str()));
    ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([Type::String, Type::Null]))
        .description(Some(
            "The key's environment; the configured default when absent or `null`",
        ))
        .enum_values(Some(names.into_iter().chain([serde_json::Value::Null])))
}

/// The JSON 404 for any path Keymint does not serve.
pub(crate) async fn not_found() -> Result<HttpResponse, ApiError> {
    Err(ApiError::NotFound)
}

/// A route for GET and for HEAD (HTTP says HEAD works wherever GET does; actix
/// sends the same status and headers without the body).
pub(crate) fn get_or_head() -> actix_web::Route {
    web::route().guard(guard::Any(guard::Get()).or(guard::Head()))
}

/// A JSON 405 naming the methods the path does accept.
pub(crate) fn method_not_allowed(allow: &'static str) -> HttpResponse {
    let mut response = actix_web::ResponseError::error_response(&ApiError::MethodNotAllowed);
    response
        .headers_mut()
        .insert(header::ALLOW, header::HeaderValue::from_static(allow));
    response
}

/// RFC 3339 in UTC with a `Z`, with only as many fractional digits as needed.
pub(crate) fn timestamp(at: chrono::DateTime<chrono::Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
}
