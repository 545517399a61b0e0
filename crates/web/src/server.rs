use std::net::TcpListener;
use std::time::Duration;

use actix_web::dev::{Server, Service};
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::middleware::DefaultHeaders;
use actix_web::{web, App, HttpMessage, HttpServer};
use tracing_actix_web::{RequestId, TracingLogger};
use utoipa_swagger_ui::SwaggerUi;

use crate::console::{console_routes, ConsoleSignIn};
use crate::logging::RequestSpan;
use crate::metrics::{self, MetricsRegistry};
use crate::routes::{analytics, api_keys, get_or_head, health, leaks, method_not_allowed, not_found, verify, webhooks};
use crate::{AppState, BodyBudget, BodyLimit, BodyTimeout, TrustedProxies};

/// How the HTTP server runs.
#[derive(Clone, Debug)]
pub struct HttpSettings {
    /// The most bytes any route reads from a request body (but imports and
    /// secret-scanning alerts).
    pub body_limit: usize,
    /// The most bytes a key import may have.
    pub import_body_limit: usize,
    /// How long a request body may take to arrive, whole.
    pub body_timeout: Duration,
    /// The most bytes a secret-scanning alert may have.
    pub scanner_body_limit: usize,
    /// The most bytes request bodies being received may hold together (every
    /// route but secret-scanning alerts, which have their own).
    pub body_memory: usize,
    /// The most bytes secret-scanning alerts being received may hold together.
    pub scanner_body_memory: usize,
    /// Worker threads; 0 means one per core.
    pub workers: usize,
    /// How long in-flight requests may take to finish on shutdown.
    pub shutdown_timeout: Duration,
    /// Serve `/metrics` on this listener too (when metrics have no address of
    /// their own).
    pub metrics: Option<MetricsRegistry>,
    /// Serve the web console at `/console`, signing people in this way.
    pub console: Option<ConsoleSignIn>,
    /// Peers whose `Forwarded`/`X-Forwarded-For` name the client.
    pub trusted_proxies: TrustedProxies,
}

impl Default for HttpSettings {
    fn default() -> Self {
        Self {
            body_limit: BodyLimit::default().0,
            import_body_limit: DEFAULT_IMPORT_BODY_LIMIT.0,
            body_timeout: BodyTimeout::default().0,
            scanner_body_limit: DEFAULT_SCANNER_BODY_LIMIT.0,
            body_memory: 32 * 1024 * 1024,
            scanner_body_memory: 8 * 1024 * 1024,
            workers: 0,
            shutdown_timeout: Duration::from_secs(30),
            metrics: None,
            console: None,
            trusted_proxies: TrustedProxies::default(),
        }
    }
}

/// Both spellings of a path: Keymint answers with and without a trailing slash,
/// never with a redirect.
fn both(path: &str) -> [String; 2] {
    [path.to_owned(), format!("{path}/")]
}

/// The body limit of secret-scanning alerts when none is configured. GitHub's
/// partner documentation sets no maximum ("may send a single message with
/// more than one secret match"); an entry is about 350 bytes (token, type, a
/// blob URL, source), so 1 MiB holds some 3 000 matches, more than one push
/// or one scanned repository produces.
pub const DEFAULT_SCANNER_BODY_LIMIT: BodyLimit = BodyLimit(1024 * 1024);

/// The body limit of key imports when none is configured: 1 000 items of
/// about 4 KB each (a create body with a few KB of metadata).
pub const DEFAULT_IMPORT_BODY_LIMIT: BodyLimit = BodyLimit(4 * 1024 * 1024);

/// Registers every route, under `/api/v2` and its mirror `/api/v1`. A path answers
/// a JSON 405 (with `Allow`) for methods it does not serve.
pub fn configure(cfg: &mut web::ServiceConfig, body_limit: BodyLimit) {
    configure_with(cfg, body_limit, DEFAULT_SCANNER_BODY_LIMIT);
}

/// [`configure`], with the body limit of secret-scanning alerts.
pub fn configure_with(cfg: &mut web::ServiceConfig, body_limit: BodyLimit, scanner_body_limit: BodyLimit) {
    let limits = Limits {
        body: body_limit,
        import: DEFAULT_IMPORT_BODY_LIMIT,
        scanner: scanner_body_limit,
    };
    configure_routes(cfg, limits, None);
}

/// The body limits of the routes.
#[derive(Clone, Copy)]
struct Limits {
    body: BodyLimit,
    import: BodyLimit,
    scanner: BodyLimit,
}

/// Registers every route; secret-scanning alerts get their own body budget
/// when one is given (the app's applies to every other route).
fn configure_routes(cfg: &mut web::ServiceConfig, limits: Limits, scanner_budget: Option<&BodyBudget>) {
    let Limits {
        body: body_limit,
        import: import_body_limit,
        scanner: scanner_body_limit,
    } = limits;
    for version in ["v1", "v2"] {
        let collection = format!("/api/{version}/api-keys");
        cfg.service(
            web::resource(both(&collection))
                .app_data(body_limit)
                .route(web::post().to(api_keys::create))
                .route(get_or_head().to(api_keys::list))
                .default_service(web::to(|| async { method_not_allowed("GET, HEAD, POST") })),
        )
        // Before `{key_id}`, which would otherwise match "verify", "import" and "revoke-leaked".
        .service(
            web::resource(both(&format!("{collection}/import")))
                .app_data(import_body_limit)
                .route(web::post().to(api_keys::import))
                .default_service(web::to(|| async { method_not_allowed("POST") })),
        )
        .service(
            web::resource(both(&format!("{collection}/verify")))
                .app_data(body_limit)
                .route(web::post().to(verify::verify))
                .default_service(web::to(|| async { method_not_allowed("POST") })),
        )
        .service(
            web::resource(both(&format!("{collection}/revoke-leaked")))
                .app_data(body_limit)
                .route(web::post().to(leaks::revoke_leaked))
                .default_service(web::to(|| async { method_not_allowed("POST") })),
        )
        .service({
            let alerts = web::resource(both(&format!("/api/{version}/secret-scanning/github")))
                .app_data(scanner_body_limit)
                .route(web::post().to(leaks::github))
                .default_service(web::to(|| async { method_not_allowed("POST") }));
            match scanner_budget {
                Some(budget) => alerts.app_data(budget.clone()),
                None => alerts,
            }
        })
        .service(
            web::resource(both(&format!("{collection}/{{key_id}}")))
                .app_data(body_limit)
                .route(get_or_head().to(api_keys::get))
                .route(web::patch().to(api_keys::update))
                .route(web::delete().to(api_keys::delete))
                .default_service(web::to(|| async { method_not_allowed("GET, HEAD, PATCH, DELETE") })),
        )
        .service(
            web::resource(both(&format!("{collection}/{{key_id}}/revoke")))
                .app_data(body_limit)
                .route(web::put().to(api_keys::revoke))
                .default_service(web::to(|| async { method_not_allowed("PUT") })),
        )
        .service(
            web::resource(both(&format!("{collection}/{{key_id}}/rotate")))
                .app_data(body_limit)
                .route(web::post().to(api_keys::rotate))
                .default_service(web::to(|| async { method_not_allowed("POST") })),
        )
        .service(
            web::resource(both(&format!("{collection}/{{key_id}}/credits")))
                .app_data(body_limit)
                .route(web::post().to(api_keys::change_credits))
                .default_service(web::to(|| async { method_not_allowed("POST") })),
        )
        .service(
            web::resource(both(&format!("{collection}/{{key_id}}/events")))
                .app_data(body_limit)
                .route(get_or_head().to(api_keys::events))
                .default_service(web::to(|| async { method_not_allowed("GET, HEAD") })),
        )
        .service(
            web::resource(both(&format!("{collection}/{{key_id}}/usage")))
                .app_data(body_limit)
                .route(get_or_head().to(analytics::key_usage))
                .default_service(web::to(|| async { method_not_allowed("GET, HEAD") })),
        )
        .service(
            web::resource(both(&format!("/api/{version}/analytics/verifications")))
                .app_data(body_limit)
                .route(get_or_head().to(analytics::verifications))
                .default_service(web::to(|| async { method_not_allowed("GET, HEAD") })),
        );
        let hooks = format!("/api/{version}/webhooks");
        cfg.service(
            web::resource(both(&hooks))
                .app_data(body_limit)
                .route(web::post().to(webhooks::create))
                .route(get_or_head().to(webhooks::list))
                .default_service(web::to(|| async { method_not_allowed("GET, HEAD, POST") })),
        )
        .service(
            web::resource(both(&format!("{hooks}/{{webhook_id}}")))
                .app_data(body_limit)
                .route(get_or_head().to(webhooks::get))
                .route(web::patch().to(webhooks::update))
                .route(web::delete().to(webhooks::delete))
                .default_service(web::to(|| async { method_not_allowed("GET, HEAD, PATCH, DELETE") })),
        )
        .service(
            web::resource(both(&format!("{hooks}/{{webhook_id}}/rotate-secret")))
                .route(web::post().to(webhooks::rotate_secret))
                .default_service(web::to(|| async { method_not_allowed("POST") })),
        )
        .service(
            web::resource(both(&format!("{hooks}/{{webhook_id}}/deliveries")))
                .route(get_or_head().to(webhooks::deliveries))
                .default_service(web::to(|| async { method_not_allowed("GET, HEAD") })),
        )
        .service(
            web::resource(both(&format!(
                "{hooks}/{{webhook_id}}/deliveries/{{delivery_id}}/retry"
            )))
            .route(web::post().to(webhooks::retry))
            .default_service(web::to(|| async { method_not_allowed("POST") })),
        );
    }
    cfg.service(
        web::resource(both("/healthz"))
            .route(get_or_head().to(health::healthz))
            .default_service(web::to(|| async { method_not_allowed("GET, HEAD") })),
    )
    .service(
        web::resource(both("/readyz"))
            .route(get_or_head().to(health::readyz))
            .default_service(web::to(|| async { method_not_allowed("GET, HEAD") })),
    )
    .service(
        web::resource(both("/.well-known/keymint/secret-patterns"))
            .route(get_or_head().to(leaks::secret_patterns))
            .default_service(web::to(|| async { method_not_allowed("GET, HEAD") })),
    );
}

/// The OpenAPI document at `/openapi.json` (and `/openapi.json/`: every route
/// answers with and without a trailing slash, and this one is fetched by tools)
/// and the docs page at `/docs/`.
fn documentation(cfg: &mut web::ServiceConfig, document: &utoipa::openapi::OpenApi, json: &web::Bytes) {
    let json = json.clone();
    cfg.service(SwaggerUi::new("/docs/{_:.*}").url("/openapi.json", document.clone()))
        .route(
            "/openapi.json/",
            get_or_head().to(move || {
                let json = json.clone();
                async move {
                    actix_web::HttpResponse::Ok()
                        .content_type("application/json")
                        .body(json)
                }
            }),
        )
        // The docs page is for browsers, which follow a redirect to its
        // directory (its assets are relative to it); API routes never redirect.
        .route(
            "/docs",
            web::get().to(|| async {
                actix_web::HttpResponse::PermanentRedirect()
                    .insert_header((header::LOCATION, "/docs/"))
                    .finish()
            }),
        );
}

/// `GET /metrics` (and HEAD, with or without the trailing slash).
fn metrics_route(cfg: &mut web::ServiceConfig, registry: &MetricsRegistry) {
    cfg.service(
        web::resource(both("/metrics"))
            .app_data(web::Data::new(registry.clone()))
            .route(get_or_head().to(metrics::scrape))
            .default_service(web::to(|| async { method_not_allowed("GET, HEAD") })),
    );
}

/// Serves only `/metrics` on `listener` (its own address, away from the API),
/// on one worker: a scrape every few seconds needs no more.
pub fn serve_metrics(listener: TcpListener, registry: MetricsRegistry) -> std::io::Result<Server> {
    Ok(HttpServer::new(move || {
        App::new()
            .configure(|cfg| metrics_route(cfg, &registry))
            .default_service(web::to(not_found))
    })
    .workers(1)
    .disable_signals()
    .shutdown_timeout(1)
    .listen(listener)?
    .run())
}

/// Starts serving `state` on `listener`. The returned server runs until stopped
/// or until the process receives SIGINT/SIGTERM, then drains in-flight requests.
pub fn serve(listener: TcpListener, state: AppState, settings: HttpSettings) -> std::io::Result<Server> {
    let state = web::Data::new(state);
    let limits = Limits {
        body: BodyLimit(settings.body_limit),
        import: BodyLimit(settings.import_body_limit),
        scanner: BodyLimit(settings.scanner_body_limit),
    };
    let body_timeout = BodyTimeout(settings.body_timeout);
    // One of each for the whole server, shared by every worker.
    let body_budget = BodyBudget::new(settings.body_memory);
    let scanner_budget = BodyBudget::new(settings.scanner_body_memory);
    let document = crate::openapi();
    let document_json = web::Bytes::from(serde_json::to_vec(&document).unwrap_or_default());
    let exposed = settings.metrics.clone();
    let sign_in = settings.console.clone();
    let trusted_proxies = settings.trusted_proxies.clone();
    let mut server = HttpServer::new(move || {
        let observed = state.metrics.clone();
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
            .wrap(TracingLogger::<RequestSpan>::new())
            .wrap(
                DefaultHeaders::new()
                    // Responses carry key metadata and, once, private keys: never cache.
                    .add((header::CACHE_CONTROL, "no-store"))
                    .add((header::X_CONTENT_TYPE_OPTIONS, "nosniff")),
            )
            .app_data(state.clone())
            .app_data(trusted_proxies.clone())
            .app_data(limits.body)
            .app_data(body_timeout)
            .app_data(body_budget.clone())
            // Guards for any extractor that bypasses ValidatedJson.
            .app_data(web::PayloadConfig::new(limits.body.0))
            .app_data(web::JsonConfig::default().limit(limits.body.0))
            .configure(|cfg| configure_routes(cfg, limits, Some(&scanner_budget)))
            .configure(|cfg| documentation(cfg, &document, &document_json))
            .configure(|cfg| {
                if let Some(sign_in) = &sign_in {
                    console_routes(cfg, sign_in.clone());
                }
            })
            .configure(|cfg| {
                if let Some(registry) = &exposed {
                    metrics_route(cfg, registry);
                }
            })
            .default_service(web::to(not_found))
            // Outermost: times the whole answer, logging included, and sees the
            // final status of every request.
            .wrap_fn(move |req, srv| metrics::observe(&observed, req, srv))
    })
    .shutdown_timeout(settings.shutdown_timeout.as_secs());
    if settings.workers > 0 {
        server = server.workers(settings.workers);
    }
    Ok(server.listen(listener)?.run())
}
