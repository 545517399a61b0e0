//! Keymint's HTTP adapter (actix-web): routes, request and response bodies, the
//! bearer-token extractor, and the mapping of every error to its HTTP answer.
//!
//! Request bodies are read into JSON values and validated field by field into
//! domain types, so one response can name every failing field (FastAPI's shape),
//! and no request type can skip a domain constructor.

#![forbid(unsafe_code)]

mod client;
mod console;
mod error;
mod extract;
mod logging;
mod metrics;
mod openapi;
mod routes;
mod server;
mod state;
mod validation;

pub use client::{client_address, ForwardedHeader, TrustedProxies};
pub use console::{ConsoleSignIn, DevSigner};
pub use error::{ApiError, FieldError};
pub use extract::{
    Authenticated, BodyBudget, BodyLimit, BodyTimeout, OptionalJson, RequiredPermissions, UsageCost, UsageTags,
    UsageTagsError, ValidatedJson, VerifiedApiKey,
};
pub use logging::causes;
pub use metrics::{HttpMetrics, MetricsRegistry};
pub use openapi::openapi;
pub use server::{configure, configure_with, serve, serve_metrics, HttpSettings, DEFAULT_SCANNER_BODY_LIMIT};
pub use state::AppState;
pub use validation::FromJsonBody;
