//! Every error the HTTP API answers with: the one `ApiError` type, its mapping to
//! statuses and bodies, the translation of every use-case error into it (in
//! `from_use_cases`), and the OpenAPI description of the error bodies and of the
//! responses routes share.

mod from_use_cases;

use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;
use utoipa::{IntoResponses, ToSchema};

/// How long clients should wait before retrying a 503.
const RETRY_AFTER_SECONDS: &str = "5";

/// One failing field of a request, in FastAPI's (pydantic's) validation shape.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct FieldError {
    /// Where: `["body", "name"]`, `["query", "limit"]`, `["path", "key_id"]`.
    pub loc: Vec<String>,
    /// What is wrong, for people.
    pub msg: String,
    /// What is wrong, for programs (`missing`, `string_type`, `string_too_long`, …).
    #[serde(rename = "type")]
    pub kind: String,
}

impl FieldError {
    /// An error at `loc` of `kind` with message `msg`.
    pub fn new(loc: &[&str], kind: &str, msg: impl Into<String>) -> Self {
        Self {
            loc: loc.iter().map(|s| (*s).to_owned()).collect(),
            msg: msg.into(),
            kind: kind.to_owned(),
        }
    }
}

/// Every error the HTTP API answers with. Each maps to one status and one stable
/// machine code; server-side failures carry their cause for the log only.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400: the body is not JSON.
    #[error("malformed JSON body: {0}")]
    MalformedJson(String),
    /// 401: no bearer token was presented.
    #[error("not authenticated")]
    NotAuthenticated,
    /// 401: the bearer token failed a check, described without echoing it.
    #[error("invalid token: {0}")]
    InvalidToken(String),
    /// 403: authenticated, but not allowed.
    #[error("{detail}")]
    Forbidden {
        /// Stable machine code.
        code: &'static str,
        /// Explanation.
        detail: String,
    },
    /// 404: no such path.
    #[error("not found")]
    NotFound,
    /// 404: no such key in the caller's organisation (another organisation's key
    /// gets the same answer, so existence is never leaked).
    #[error("API key not found")]
    KeyNotFound,
    /// 404: no such webhook (or delivery) in the caller's organisation.
    #[error("webhook not found")]
    WebhookNotFound,
    /// 409: the request conflicts with the key's state or a limit.
    #[error("{detail}")]
    Conflict {
        /// Stable machine code.
        code: &'static str,
        /// Explanation.
        detail: String,
    },
    /// 405: the path exists but not with this method.
    #[error("method not allowed")]
    MethodNotAllowed,
    /// 401: a route protected by an API key was called without a valid one.
    #[error("{detail}")]
    ApiKeyRejected {
        /// Stable machine code.
        code: &'static str,
        /// Explanation.
        detail: &'static str,
    },
    /// 401: a signed request's signature was missing, unknown or wrong.
    #[error("{detail}")]
    BadSignature {
        /// Explanation, naming no header value.
        detail: &'static str,
    },
    /// 429: too many failed attempts; retry later.
    #[error("too many failed attempts")]
    RateLimited,
    /// 429: the key's own rate limit or credits refused the call.
    #[error("{detail}")]
    UsageRefused {
        /// `rate_limited` or `usage_exceeded`.
        code: &'static str,
        /// Explanation.
        detail: &'static str,
        /// Seconds until it may succeed, when that is known.
        retry_after: Option<u64>,
    },
    /// 408: the body did not arrive, whole, in time.
    #[error("the request body did not arrive within {} s", timeout.as_secs())]
    BodyTimeout {
        /// How long it had.
        timeout: std::time::Duration,
    },
    /// 413: the body is larger than the route accepts.
    #[error("request body is larger than {limit} bytes")]
    PayloadTooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// 415: the body is not declared as JSON.
    #[error("unsupported media type")]
    UnsupportedMediaType,
    /// 422: one entry per failing field.
    #[error("request validation failed")]
    Validation(Vec<FieldError>),
    /// 503: a dependency (storage, token keys) is unavailable; retry later.
    #[error("{detail}")]
    Unavailable {
        /// Stable machine code.
        code: &'static str,
        /// Explanation.
        detail: &'static str,
        /// The cause, for the log.
        #[source]
        cause: Option<anyhow::Error>,
    },
    /// 500: a bug or an unexpected failure. The body says nothing more.
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

impl ApiError {
    /// 503 because storage cannot be reached.
    pub fn storage_unavailable(cause: anyhow::Error) -> Self {
        Self::Unavailable {
            code: "storage_unavailable",
            detail: "Storage is temporarily unavailable",
            cause: Some(cause),
        }
    }

    /// The stable machine code of the answer, e.g. `not_found`.
    pub fn code(&self) -> &'static str {
        match self {
            Self::MalformedJson(_) => "malformed_json",
            Self::NotAuthenticated => "not_authenticated",
            Self::InvalidToken(_) => "invalid_token",
            Self::Forbidden { code, .. }
            | Self::Unavailable { code, .. }
            | Self::ApiKeyRejected { code, .. }
            | Self::UsageRefused { code, .. } => code,
            Self::RateLimited => "rate_limited",
            Self::BadSignature { .. } => "invalid_signature",
            Self::NotFound | Self::KeyNotFound | Self::WebhookNotFound => "not_found",
            Self::Conflict { code, .. } => code,
            Self::MethodNotAllowed => "method_not_allowed",
            Self::PayloadTooLarge { .. } => "payload_too_large",
            Self::BodyTimeout { .. } => "request_timeout",
            Self::UnsupportedMediaType => "unsupported_media_type",
            Self::Validation(_) => "validation_error",
            Self::Internal(_) => "internal_error",
        }
    }

    fn detail(&self) -> String {
        match self {
            Self::MalformedJson(reason) => format!("Malformed JSON body: {reason}"),
            Self::NotAuthenticated => "Not authenticated: a Bearer token is required".to_owned(),
            Self::InvalidToken(reason) => format!("Invalid token: {reason}"),
            Self::Forbidden { detail, .. } => detail.clone(),
            Self::ApiKeyRejected { detail, .. } | Self::UsageRefused { detail, .. } => (*detail).to_owned(),
            Self::RateLimited => "Too many failed attempts; retry later".to_owned(),
            Self::BadSignature { detail } => (*detail).to_owned(),
            Self::NotFound => "Not Found".to_owned(),
            Self::KeyNotFound => "API key not found".to_owned(),
            Self::WebhookNotFound => "Webhook not found".to_owned(),
            Self::Conflict { detail, .. } => detail.clone(),
            Self::MethodNotAllowed => "Method Not Allowed".to_owned(),
            Self::PayloadTooLarge { limit } => format!("Request body is larger than {limit} bytes"),
            Self::BodyTimeout { timeout } => {
                format!("The request body did not arrive within {} seconds", timeout.as_secs())
            }
            Self::UnsupportedMediaType => "Unsupported media type: send Content-Type: application/json".to_owned(),
            Self::Validation(_) => "Request validation failed".to_owned(),
            Self::Unavailable { detail, .. } => (*detail).to_owned(),
            Self::Internal(_) => "Internal Server Error".to_owned(),
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::MalformedJson(_) => StatusCode::BAD_REQUEST,
            Self::NotAuthenticated
            | Self::InvalidToken(_)
            | Self::ApiKeyRejected { .. }
            | Self::BadSignature { .. } => StatusCode::UNAUTHORIZED,
            Self::RateLimited | Self::UsageRefused { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::Forbidden { .. } => StatusCode::FORBIDDEN,
            Self::NotFound | Self::KeyNotFound | Self::WebhookNotFound => StatusCode::NOT_FOUND,
            Self::Conflict { .. } => StatusCode::CONFLICT,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::BodyTimeout { .. } => StatusCode::REQUEST_TIMEOUT,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::Validation(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status_code());
        match self {
            // RFC 6750 §3: no error code when no credentials were presented.
            Self::NotAuthenticated => {
                response.insert_header((header::WWW_AUTHENTICATE, r#"Bearer realm="keymint""#));
            }
            Self::InvalidToken(reason) => {
                let value = format!(r#"Bearer realm="keymint", error="invalid_token", error_description="{reason}""#);
                if let Ok(value) = HeaderValue::from_str(&value) {
                    response.insert_header((header::WWW_AUTHENTICATE, value));
                }
            }
            Self::Unavailable { .. } | Self::RateLimited => {
                response.insert_header((header::RETRY_AFTER, RETRY_AFTER_SECONDS));
            }
            Self::ApiKeyRejected { .. } => {
                response.insert_header((header::WWW_AUTHENTICATE, r#"Bearer realm="api-key""#));
            }
            Self::UsageRefused {
                retry_after: Some(seconds),
                ..
            } => {
                response.insert_header((header::RETRY_AFTER, seconds.to_string()));
            }
            _ => {}
        }
        match self {
            Self::Validation(errors) => response.json(ValidationErrorBody {
                detail: errors,
                code: self.code(),
            }),
            _ => response.json(ErrorBody {
                detail: self.detail(),
                code: self.code(),
            }),
        }
    }
}

// ------------------------------------------------------------ OpenAPI description

/// Every error but validation: a message and a stable machine code.
#[derive(Serialize, ToSchema)]
pub(crate) struct ErrorBody {
    /// For people.
    detail: String,
    /// For programs, e.g. `not_found`, `invalid_token`, `key_revoked`.
    #[schema(value_type = String)]
    code: &'static str,
}

/// A validation error: one entry per failing field.
#[derive(Serialize, ToSchema)]
pub(crate) struct ValidationErrorBody<'a> {
    /// The failing fields.
    #[schema(value_type = Vec<FieldError>)]
    detail: &'a [FieldError],
    /// Always `validation_error`.
    #[schema(value_type = String)]
    code: &'static str,
}

/// The errors every management route can answer, whatever it does.
#[derive(IntoResponses)]
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

/// The errors of every route about one key (`/api-keys/{key_id}…`).
#[derive(IntoResponses)]
#[allow(dead_code)]
pub(crate) enum KeyErrors {
    /// No such key in the caller's organization (`not_found`)
    #[response(status = 404)]
    NotFound(ErrorBody),
    /// `key_id` is not a UUID, or a field of the request is invalid: each failing
    /// field is named (`validation_error`)
    #[response(status = 422)]
    Invalid(ValidationErrorBody<'static>),
}

/// The errors of every route that reads a JSON body.
#[derive(IntoResponses)]
#[allow(dead_code)]
pub(crate) enum JsonBodyErrors {
    /// The body is not JSON (`malformed_json`)
    #[response(status = 400)]
    Malformed(ErrorBody),
    /// The body did not arrive, whole, within the body timeout (`request_timeout`)
    #[response(status = 408)]
    TimedOut(ErrorBody),
    /// The body is larger than the limit (`payload_too_large`)
    #[response(status = 413)]
    TooLarge(ErrorBody),
    /// The body is not declared as JSON (`unsupported_media_type`)
    #[response(status = 415)]
    NotJson(ErrorBody),
}
