//! What the HTTP layer puts in the log about each request: one line when it
//! ends, with its method, route, path, client, status, latency and request id,
//! and for an error its code and message. Successes and client errors (4xx)
//! are INFO; a 5xx is ERROR with its cause chain, once.
//!
//! Never the query string (clients put keys and tokens there: `?key=sk_…`,
//! `?access_token=…`), never a header value, never an error's `Debug` form
//! (which would carry the names and values a client sent). The process's log
//! writer redacts anything shaped like a secret on top of this.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::{Error, HttpMessage};
use std::time::Instant;

use tracing::field::Empty;
use tracing::Span;
use tracing_actix_web::{RequestId, RootSpanBuilder};

/// An error and its causes, outermost first, joined by ": ", leaving out a cause
/// whose text the message before it already contains: database drivers wrap an
/// error and repeat its text in their own, so a plain walk of the chain said
/// "database x does not exist" four times.
pub fn causes(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut last = text.clone();
    let mut source = error.source();
    while let Some(cause) = source {
        let message = cause.to_string();
        if !last.contains(&message) {
            text.push_str(": ");
            text.push_str(&message);
        }
        last = message;
        source = cause.source();
    }
    text
}

/// The root span of every request, as described above.
#[derive(Debug)]
pub(crate) struct RequestSpan;

/// When the request arrived, for the latency in its log line.
#[derive(Clone, Copy)]
struct Arrived(Instant);

impl RootSpanBuilder for RequestSpan {
    fn on_request_start(request: &ServiceRequest) -> Span {
        request.extensions_mut().insert(Arrived(Instant::now()));
        let request_id = request.extensions().get::<RequestId>().map(ToString::to_string);
        let route = request.match_pattern().unwrap_or_else(|| "(unmatched)".to_owned());
        let client = crate::client_address(request.request()).map(|address| address.to_string());
        tracing::info_span!(
            "HTTP request",
            http.method = %request.method(),
            http.route = %route,
            http.target = %request.path(),
            http.client_ip = client.as_deref().unwrap_or(""),
            http.status_code = Empty,
            request_id = request_id.as_deref().unwrap_or(""),
            error.code = Empty,
            exception.message = Empty,
        )
    }

    fn on_request_end<B: MessageBody>(span: Span, outcome: &Result<ServiceResponse<B>, Error>) {
        let (status, error, arrived) = match outcome {
            Ok(response) => (
                response.status(),
                response.response().error(),
                response.request().extensions().get::<Arrived>().copied(),
            ),
            Err(error) => (error.as_response_error().status_code(), Some(error), None),
        };
        span.record("http.status_code", status.as_u16());
        // Milliseconds to the microsecond.
        let latency_ms = arrived.map_or(0.0, |Arrived(at)| (at.elapsed().as_secs_f64() * 1e6).round() / 1e3);
        // Keymint's own errors say which check failed without quoting input;
        // anything else (actix's own 400s) is described by its status alone.
        let api_error = error.and_then(|error| error.as_error::<crate::ApiError>());
        let code = api_error.map(crate::ApiError::code);
        let message = match (api_error, error) {
            (Some(api_error), _) => Some(api_error.to_string()),
            (None, Some(_)) => Some(status.canonical_reason().unwrap_or("error").to_owned()),
            (None, None) => None,
        };
        if let Some(code) = code {
            span.record("error.code", code);
        }
        if let Some(message) = &message {
            span.record("exception.message", message.as_str());
        }
        // The span carries the status, code and message; the line adds how long.
        match (api_error, status.is_server_error()) {
            // The body said nothing; the log says why, under the request id.
            (Some(api_error), true) => {
                tracing::error!(parent: &span, latency_ms, cause = %causes(api_error), "request failed");
            }
            (None, true) => tracing::error!(parent: &span, latency_ms, "request failed"),
            // By status, not by whether an error is attached: a 405 is built
            // as a plain response.
            (_, false) if status.is_client_error() => tracing::info!(parent: &span, latency_ms, "request refused"),
            _ => tracing::info!(parent: &span, latency_ms, "request done"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn causes_are_joined_once_each() {
        #[derive(Debug, thiserror::Error)]
        #[error("connection error: {0}")]
        struct Outer(#[source] Inner);
        #[derive(Debug, thiserror::Error)]
        #[error("database \"x\" does not exist")]
        struct Inner;
        let error = anyhow::Error::new(Outer(Inner)).context("database.url: cannot open the database");
        assert_eq!(
            causes(error.as_ref()),
            "database.url: cannot open the database: connection error: database \"x\" does not exist"
        );
    }
}
