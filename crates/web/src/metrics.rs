//! HTTP metrics and the Prometheus scrape endpoint.
//!
//! Labels come from a closed set: the route *pattern* (never the path, which
//! carries key ids and whatever a client makes up), a known method, the status
//! and the verification code. No label ever holds key material or client text,
//! and the number of series is bounded whatever clients send.

use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use actix_web::dev::{Service, ServiceRequest, ServiceResponse};
use actix_web::http::{header, Method};
use actix_web::{web, HttpRequest, HttpResponse};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: &'static str,
    route: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    method: &'static str,
    route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CodeLabels {
    code: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LeakLabels {
    reporter: &'static str,
    verdict: &'static str,
}

/// Upper bounds, in seconds, of the latency buckets: a cached verification
/// takes well under a millisecond, an argon2 hash tens of milliseconds, and a
/// request waiting on a saturated hasher or database up to seconds.
const LATENCY_BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

fn latency_histogram() -> Histogram {
    Histogram::new(LATENCY_BUCKETS)
}

/// Requests by route, method and status, their latency, and verification
/// verdicts. Cheap to clone (the families are shared); a default instance
/// counts without being exported, for apps built without metrics.
#[derive(Clone, Debug)]
pub struct HttpMetrics {
    requests: Family<RequestLabels, Counter>,
    latency: Family<RouteLabels, Histogram, fn() -> Histogram>,
    verifications: Family<CodeLabels, Counter>,
    leak_reports: Family<LeakLabels, Counter>,
}

impl Default for HttpMetrics {
    fn default() -> Self {
        Self {
            requests: Family::default(),
            latency: Family::new_with_constructor(latency_histogram),
            verifications: Family::default(),
            leak_reports: Family::default(),
        }
    }
}

impl HttpMetrics {
    /// Metrics registered in `registry`.
    pub fn register(registry: &mut Registry) -> Self {
        let metrics = Self::default();
        registry.register(
            "http_requests",
            "HTTP requests answered, by method, route pattern and status",
            metrics.requests.clone(),
        );
        registry.register_with_unit(
            "http_request_duration",
            "Time to answer an HTTP request (to the response head), by method and route pattern",
            Unit::Seconds,
            metrics.latency.clone(),
        );
        registry.register(
            "verifications",
            "API key verifications answered, by code",
            metrics.verifications.clone(),
        );
        registry.register(
            "leak_reports",
            "Leaked-key reports, by reporter (github, holder) and verdict (genuine, not_ours, rate_limited)",
            metrics.leak_reports.clone(),
        );
        metrics
    }

    /// Counts a leak report's verdict.
    pub fn leak_report(&self, reporter: &'static str, verdict: &'static str) {
        self.leak_reports.get_or_create(&LeakLabels { reporter, verdict }).inc();
    }

    /// Counts a verification verdict.
    pub fn verification(&self, code: &'static str) {
        self.verifications.get_or_create(&CodeLabels { code }).inc();
    }

    fn request(&self, method: &'static str, route: String, status: u16, started: Instant) {
        let elapsed = started.elapsed().as_secs_f64();
        self.latency
            .get_or_create(&RouteLabels {
                method,
                route: route.clone(),
            })
            .observe(elapsed);
        self.requests
            .get_or_create(&RequestLabels { method, route, status })
            .inc();
    }
}

/// A method as a label: anything but the standard ones is `OTHER`, so invented
/// methods cannot add series.
fn method_label(method: &Method) -> &'static str {
    const KNOWN: [(Method, &str); 8] = [
        (Method::GET, "GET"),
        (Method::HEAD, "HEAD"),
        (Method::POST, "POST"),
        (Method::PUT, "PUT"),
        (Method::PATCH, "PATCH"),
        (Method::DELETE, "DELETE"),
        (Method::OPTIONS, "OPTIONS"),
        (Method::TRACE, "TRACE"),
    ];
    KNOWN
        .iter()
        .find(|(known, _)| known == method)
        .map_or("OTHER", |&(_, label)| label)
}

/// The route pattern that matched, one spelling per route (both trailing-slash
/// forms count as one), or `unmatched` for paths Keymint does not serve.
fn route_label(request: &HttpRequest) -> String {
    match request.match_pattern() {
        Some(pattern) if pattern.len() > 1 && pattern.ends_with('/') => pattern[..pattern.len() - 1].to_owned(),
        Some(pattern) => pattern,
        None => "unmatched".to_owned(),
    }
}

/// Middleware: times and counts every request the app answers.
pub(crate) fn observe<S, B>(
    metrics: &HttpMetrics,
    request: ServiceRequest,
    service: &S,
) -> impl Future<Output = Result<ServiceResponse<B>, actix_web::Error>> + 'static
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error>,
    S::Future: 'static,
{
    let started = Instant::now();
    let method = method_label(request.method());
    let call = service.call(request);
    let metrics = metrics.clone();
    async move {
        let response = call.await?;
        let route = route_label(response.request());
        metrics.request(method, route, response.status().as_u16(), started);
        Ok(response)
    }
}

/// The registry a scrape encodes.
#[derive(Clone, Debug)]
pub struct MetricsRegistry(pub Arc<Registry>);

const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// `GET /metrics`: OpenMetrics when the scraper asks for it (Prometheus does),
/// the classic text format otherwise (curl, older scrapers).
pub(crate) async fn scrape(request: HttpRequest, registry: web::Data<MetricsRegistry>) -> HttpResponse {
    let wants_openmetrics = request
        .headers()
        .get_all(header::ACCEPT)
        .filter_map(|value| value.to_str().ok())
        .any(|accept| accept.contains("application/openmetrics-text"));
    let mut body = String::with_capacity(16 * 1024);
    let (encoded, content_type) = if wants_openmetrics {
        (
            prometheus_client::encoding::text::encode(&mut body, &registry.0),
            OPENMETRICS,
        )
    } else {
        (
            prometheus_client::encoding::prometheus_text::encode(&mut body, &registry.0),
            PROMETHEUS_TEXT,
        )
    };
    match encoded {
        Ok(()) => HttpResponse::Ok().content_type(content_type).body(body),
        Err(_) => {
            tracing::error!("metrics could not be encoded");
            HttpResponse::InternalServerError().finish()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invented_methods_share_one_label() {
        assert_eq!(method_label(&Method::PATCH), "PATCH");
        assert_eq!(method_label(&Method::from_bytes(b"BREW").unwrap()), "OTHER");
        assert_eq!(method_label(&Method::from_bytes(b"PROPFIND").unwrap()), "OTHER");
    }
}
