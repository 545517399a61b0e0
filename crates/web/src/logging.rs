//! What the HTTP layer puts in the log about each request: its method, route,
//! path, client, status and request id, and for an error its code and message.
//!
//! Never the query string (clients put keys and tokens there: `?key=sk_…`,
//! `?access_token=…`), never a header value, never an error's `Debug` form
//! (which would carry the names and values a client sent). The process's log
//! writer redacts anything shaped like a secret on top of this.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::{Error, HttpMessage};
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

impl RootSpanBuilder for RequestSpan {
    fn on_request_start(request: &ServiceRequest) -> Span {
        let request_id = request.extensions().get::<RequestId>().map(ToString::to_string);
        let route = request.match_pattern().unwrap_or_else(|| "(unmatched)".to_owned());
        let client = request.connection_info().peer_addr().map(str::to_owned);
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
        let (status, error) = match outcome {
            Ok(response) => (response.status(), response.response().error()),
            Err(error) => (error.as_response_error().status_code(), Some(error)),
        };
        span.record("http.status_code", status.as_u16());
        if let Some(error) = error {
            // Keymint's own errors say which check failed without quoting input;
            // anything else (actix's own 400s) is described by its status alone.
            match error.as_error::<crate::ApiError>() {
                Some(api_error) => {
                    span.record("error.code", api_error.code());
                    span.record("exception.message", tracing::field::display(api_error));
                    if status.is_server_error() {
                        // The body said nothing; the log says why, under the request id.
                        tracing::error!(parent: &span, error.code = api_error.code(), cause = %causes(api_error), "request failed");
                    }
                }
                None => {
                    span.record("exception.message", status.canonical_reason().unwrap_or("error"));
                }
            }
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
