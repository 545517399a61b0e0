use std::future::Future;
use std::pin::Pin;

use std::sync::Arc;

use actix_web::http::header;
use actix_web::{web, FromRequest, HttpRequest};
use keymint_application::{Verification, VerifiedKey, VerifyApiKey, VerifyApiKeyError};
use keymint_domain::{Demand, PermissionQuery, PermissionQueryError, Settlement, Tag, TagError, TagSet, TagSetError};

use crate::ApiError;

/// Refused when a request presents two different keys: which one counts
/// would depend on the order Keymint reads them in, and a proxy or framework
/// in front may read another.
const AMBIGUOUS: ApiError = ApiError::ApiKeyRejected {
    code: "ambiguous_api_key",
    detail: "Send the API key once: in one x-api-key header, one Authorization header or the body",
};

/// The one value of header `name`, `None` if absent; an error if it is repeated,
/// since proxies and frameworks disagree on which of two values counts.
fn single<'a>(req: &'a HttpRequest, name: &header::HeaderName) -> Result<Option<&'a header::HeaderValue>, ApiError> {
    let mut values = req.headers().get_all(name);
    let first = values.next();
    match values.next() {
        None => Ok(first),
        Some(_) => Err(AMBIGUOUS),
    }
}

/// `found` joined with another presentation of a key: the same key twice is
/// one key, two different ones are refused.
pub(crate) fn one_key(found: Option<String>, other: Option<String>) -> Result<Option<String>, ApiError> {
    match (found, other) {
        (Some(a), Some(b)) if a != b => Err(AMBIGUOUS),
        (found, other) => Ok(found.or(other)),
    }
}

/// A header's text; bytes that are not text still present something (it
/// cannot be a key, and it must not make another presentation win unseen).
fn text_of(value: &header::HeaderValue) -> String {
    String::from_utf8_lossy(value.as_bytes()).trim().to_owned()
}

/// Whether a bearer token is a JWT (three base64url parts, the first a JSON
/// header): never an API key, but what a gateway or SDK sends to every call.
fn is_jwt(token: &str) -> bool {
    token.starts_with("eyJ") && token.split('.').count() == 3
}

/// The API key a request presents: `x-api-key: sk_…` or
/// `Authorization: Bearer sk_…`. Both, with different keys, is
/// `ambiguous_api_key`; an `Authorization` header of another scheme, or a
/// bearer JWT, presents no key.
pub(crate) fn presented_api_key(req: &HttpRequest) -> Result<Option<String>, ApiError> {
    let x_api_key = header::HeaderName::from_static("x-api-key");
    let from_header = single(req, &x_api_key)?.map(text_of);
    let bearer = single(req, &header::AUTHORIZATION)?
        .map(text_of)
        .and_then(|authorization| {
            let (scheme, token) = authorization.split_once(' ')?;
            let token = token.trim();
            (scheme.eq_ignore_ascii_case("bearer") && !is_jwt(token)).then(|| token.to_owned())
        });
    one_key(from_header, bearer)
}

/// A request authenticated by a valid Keymint API key.
///
/// Put it in any actix-web handler's arguments to require a key; register a
/// [`VerifyApiKey`] as `web::Data` in the app. Requests without a valid key are
/// answered 401 (or 429 after too many failures) before the handler runs:
///
/// ```no_run
/// use actix_web::HttpResponse;
/// use keymint_web::VerifiedApiKey;
///
/// async fn reports(key: VerifiedApiKey) -> HttpResponse {
///     HttpResponse::Ok().json(serde_json::json!({ "org": key.0.org_id.to_string() }))
/// }
/// ```
#[derive(Clone, Debug)]
pub struct VerifiedApiKey(pub VerifiedKey);

/// The permissions a route's key must hold, checked by [`VerifiedApiKey`] in the
/// same verification (from the cache when the key is cached). Register it as the
/// route's, scope's or app's `app_data`; the innermost wins. A key without them
/// is answered 403 `insufficient_permissions` before the handler runs.
///
/// ```
/// use actix_web::{web, HttpResponse};
/// use keymint_web::{RequiredPermissions, VerifiedApiKey};
///
/// async fn refund(_key: VerifiedApiKey) -> HttpResponse {
///     HttpResponse::Ok().finish()
/// }
///
/// # fn routes(cfg: &mut web::ServiceConfig) -> Result<(), keymint_domain::PermissionQueryError> {
/// cfg.service(
///     web::resource("/refunds")
///         .app_data(RequiredPermissions::new("billing.write AND (refunds OR admin)")?)
///         .route(web::post().to(refund)),
/// );
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct RequiredPermissions(Arc<PermissionQuery>);

impl RequiredPermissions {
    /// Parses the query once, when routes are configured.
    pub fn new(query: &str) -> Result<Self, PermissionQueryError> {
        PermissionQuery::parse(query).map(|query| Self(Arc::new(query)))
    }
}

/// What a route's call costs the key: credits and rate-limit counts, spent by
/// [`VerifiedApiKey`] in the same verification once the key and its
/// permissions are good. Register it as `app_data` like
/// [`RequiredPermissions`]. A key without the credits or over a limit is
/// answered 429 (`usage_exceeded` / `rate_limited`) with `Retry-After` when
/// the wait is known, before the handler runs; a refused call spends nothing.
/// Without it, a key with credits spends 1 per call and its `auto_apply` limits
/// take 1.
///
/// ```
/// use actix_web::{web, HttpResponse};
/// use keymint_web::{UsageCost, VerifiedApiKey};
///
/// async fn export(_key: VerifiedApiKey) -> HttpResponse {
///     HttpResponse::Ok().finish()
/// }
///
/// # fn routes(cfg: &mut web::ServiceConfig) {
/// cfg.service(
///     web::resource("/exports")
///         .app_data(UsageCost::credits(10).with_ratelimit("exports", 1))
///         .route(web::post().to(export)),
/// );
/// # }
/// ```
#[derive(Clone, Debug, Default)]
pub struct UsageCost(Demand);

impl UsageCost {
    /// A call costing `cost` credits.
    pub fn credits(cost: u64) -> Self {
        Self(Demand {
            credits: Some(cost),
            ratelimits: Vec::new(),
        })
    }

    /// The same cost, also taking `cost` from the key's rate limit `name`
    /// (a key without a limit of that name cannot call the route: 500, as a
    /// misconfigured route).
    pub fn with_ratelimit(mut self, name: impl Into<String>, cost: u64) -> Self {
        self.0.ratelimits.push((name.into(), cost));
        self
    }
}

/// The tags a route's verifications are counted under in the key's usage
/// analytics (`GET /api/v2/analytics/verifications?tag=…`). Register it as
/// `app_data` like [`RequiredPermissions`]; the innermost wins.
///
/// ```
/// use actix_web::{web, HttpResponse};
/// use keymint_web::{UsageTags, VerifiedApiKey};
///
/// async fn charge(_key: VerifiedApiKey) -> HttpResponse {
///     HttpResponse::Ok().finish()
/// }
///
/// # fn routes(cfg: &mut web::ServiceConfig) -> Result<(), Box<dyn std::error::Error>> {
/// cfg.service(
///     web::resource("/v1/charges")
///         .app_data(UsageTags::new(["path=/v1/charges", "region=eu"])?)
///         .route(web::post().to(charge)),
/// );
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Debug, Default)]
pub struct UsageTags(TagSet);

/// Why [`UsageTags::new`] refused its tags.
#[derive(Debug, thiserror::Error)]
pub enum UsageTagsError {
    /// A tag breaks the tag rules.
    #[error(transparent)]
    Tag(#[from] TagError),
    /// More than ten tags.
    #[error(transparent)]
    TooMany(#[from] TagSetError),
}

impl UsageTags {
    /// Checks the tags once, when routes are configured.
    pub fn new<T: Into<String>>(tags: impl IntoIterator<Item = T>) -> Result<Self, UsageTagsError> {
        let tags = tags.into_iter().map(Tag::new).collect::<Result<Vec<_>, _>>()?;
        Ok(Self(TagSet::new(tags)?))
    }
}

/// Whole seconds from now until `at`, at least 1.
fn seconds_until(at: chrono::DateTime<chrono::Utc>) -> u64 {
    let millis = (at - chrono::Utc::now()).num_milliseconds().max(1);
    u64::try_from(millis).unwrap_or(u64::MAX).div_ceil(1000)
}

impl FromRequest for VerifiedApiKey {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        let presented = presented_api_key(req);
        let client = crate::client_address(req);
        let verifier = req.app_data::<web::Data<VerifyApiKey>>().cloned();
        let required = req.app_data::<RequiredPermissions>().cloned();
        let cost = req.app_data::<UsageCost>().cloned().unwrap_or_default();
        let tags = req
            .app_data::<UsageTags>()
            .map(|tags| tags.0.clone())
            .unwrap_or_default();
        Box::pin(async move {
            let verifier =
                verifier.ok_or_else(|| ApiError::Internal(anyhow::anyhow!("VerifyApiKey is not registered")))?;
            let presented = presented?.ok_or(ApiError::ApiKeyRejected {
                code: "api_key_required",
                detail: "An API key is required: send it as x-api-key or Authorization: Bearer",
            })?;
            let query = required.as_ref().map(|required| &*required.0);
            let verdict = match verifier.execute_tagged(&presented, client, query, cost.0, tags).await {
                Err(VerifyApiKeyError::UnknownRateLimit { name, .. }) => {
                    return Err(ApiError::Internal(anyhow::anyhow!(
                        "the route's UsageCost names rate limit '{name}', which the key does not have"
                    )))
                }
                other => other?,
            };
            let retry_at = |key: &VerifiedKey| match key.usage.as_ref().map(|usage| usage.settlement) {
                Some(Settlement::RateLimited { retry_at }) => Some(seconds_until(retry_at)),
                Some(Settlement::UsageExceeded { next_refill }) => next_refill.map(seconds_until),
                _ => None,
            };
            match verdict {
                Verification::KeyRateLimited(key) => Err(ApiError::UsageRefused {
                    code: "rate_limited",
                    detail: "The API key's rate limit is reached; retry later",
                    retry_after: retry_at(&key),
                }),
                Verification::UsageExceeded(key) => Err(ApiError::UsageRefused {
                    code: "usage_exceeded",
                    detail: "The API key has no credits left for this call",
                    retry_after: retry_at(&key),
                }),
                Verification::Valid(key) => Ok(VerifiedApiKey(key)),
                Verification::NotFound => Err(ApiError::ApiKeyRejected {
                    code: "invalid_api_key",
                    detail: "The API key is not valid",
                }),
                Verification::Revoked(_) => Err(ApiError::ApiKeyRejected {
                    code: "api_key_revoked",
                    detail: "The API key has been revoked",
                }),
                Verification::Expired(_) => Err(ApiError::ApiKeyRejected {
                    code: "api_key_expired",
                    detail: "The API key has expired",
                }),
                Verification::RateLimited => Err(ApiError::RateLimited),
                Verification::InsufficientPermissions(_) => Err(ApiError::Forbidden {
                    code: "insufficient_permissions",
                    detail: match &required {
                        Some(required) => {
                            format!("The API key lacks the permissions this call requires: {}", required.0)
                        }
                        None => "The API key lacks the permissions this call requires".into(),
                    },
                }),
            }
        })
    }
}
