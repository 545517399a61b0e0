use std::net::TcpListener;
use std::time::Duration;

use actix_web::dev::{Server, Service};
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::middleware::DefaultHeaders;
use actix_web::{web, App, HttpMessage, HttpServer};
use tracing_actix_web::{RequestId, TracingLogger};

use crate::routes::{api_keys, health, method_not_allowed, not_found};
use crate::{AppState, BodyLimit};

/// How the HTTP server runs.
#[derive(Clone, Debug)]
pub struct HttpSettings {
    /// The most bytes any route reads from a request body.
    pub body_limit: usize,
    /// Worker threads; 0 means one per core.
    pub workers: usize,
    /// How long in-flight requests may take to finish on shutdown.
    pub shutdown_timeout: Duration,
}

impl Default for HttpSettings {
    fn default() -> Self {
        Self {
            body_limit: BodyLimit::default().0,
            workers: 0,
            shutdown_timeout: Duration::from_secs(30),
        }
    }
}

/// Registers every route. Each path is served with and without a trailing slash,
/// without redirects, and answers a JSON 405 for other methods.
pub fn configure(cfg: &mut web::ServiceConfig, body_limit: BodyLimit) {
    cfg.service(
        web::resource(["/api/v2/api-keys", "/api/v2/api-keys/"])
            .app_data(body_limit)
            .route(web::post().to(api_keys::create_v2))
            .default_service(web::to(|| async { method_not_allowed("POST") })),
    )
    .service(
        web::resource(["/api/v1/api-keys", "/api/v1/api-keys/"])
            .app_data(body_limit)
            .route(web::post().to(api_keys::create_v1))
            .default_service(web::to(|| async { method_not_allowed("POST") })),
    )
    .service(
        web::resource(["/healthz", "/healthz/"])
            .route(web::get().to(health::healthz))
            .default_service(web::to(|| async { method_not_allowed("GET") })),
    )
    .service(
        web::resource(["/readyz", "/readyz/"])
            .route(web::get().to(health::readyz))
            .default_service(web::to(|| async { method_not_allowed("GET") })),
    );
}

/// Starts serving `state` on `listener`. The returned server runs until stopped
/// or until the process receives SIGINT/SIGTERM, then drains in-flight requests.
pub fn serve(
    listener: TcpListener,
    state: AppState,
    settings: HttpSettings,
) -> std::io::Result<Server> {
    let state = web::Data::new(state);
    let limit = BodyLimit(settings.body_limit);
    let mut server = HttpServer::new(move || {
        App::new()
            // Inside TracingLogger, so the request id it assigned is available.
            .wrap_fn(|req, srv| {
                let response = srv.call(req);
                async move {
                    let mut response = response.await?;
                    let id = response
                        .request()
                        .extensions()
                        .get::<RequestId>()
                        .map(ToString::to_string);
                    if let Some(value) = id.and_then(|id| HeaderValue::from_str(&id).ok()) {
                        response
                            .headers_mut()
                            .insert(HeaderName::from_static("x-request-id"), value);
                    }
                    Ok(response)
                }
            })
            .wrap(TracingLogger::default())
            .wrap(
                DefaultHeaders::new()
                    // Responses carry key metadata and, once, private keys: never cache.
                    .add((header::CACHE_CONTROL, "no-store"))
                    .add((header::X_CONTENT_TYPE_OPTIONS, "nosniff")),
            )
            .app_data(state.clone())
            .app_data(limit)
            // Guards for any extractor that bypasses ValidatedJson.
            .app_data(web::PayloadConfig::new(limit.0))
            .app_data(web::JsonConfig::default().limit(limit.0))
            .configure(|cfg| configure(cfg, limit))
            .default_service(web::to(not_found))
    })
    .shutdown_timeout(settings.shutdown_timeout.as_secs());
    if settings.workers > 0 {
        server = server.workers(settings.workers);
    }
    Ok(server.listen(listener)?.run())
}
