//! `POST /api-keys/verify`: the presented key is the credential, no JWT needed.

use std::sync::Arc;

use actix_web::{web, HttpRequest, HttpResponse};
use keymint_application::{Verification, VerifiedKey};
use keymint_domain::{
    Demand, KeyMeta, PermissionName, PermissionQuery, Permissions, RateLimit, Tag, TagError, TagSet, MAX_RATE_LIMITS,
    MAX_TAGS, MIN_WINDOW_MS,
};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use super::timestamp;
use crate::error::{ErrorBody, JsonBodyErrors, ValidationErrorBody};
use crate::extract::{one_key, presented_api_key, OptionalJson};
use crate::validation::{FromJsonBody, Nested, ObjectReader, Optional};
use crate::{ApiError, AppState, FieldError};

/// The most a verification may cost, in credits or of a rate limit.
pub(crate) const MAX_COST: u64 = 10_000;

// What the parser makes of a body is what OpenAPI shows of it.
/// The body of a verification.
#[derive(Debug, ToSchema)]
#[schema(as = VerifyApiKeyRequest)]
pub(crate) struct VerifyBody {
    /// The private key a caller presented (`sk_live_…` / `sk_test_…`).
    key: String,
    /// A permission query the key must satisfy: names joined by `AND` / `OR`
    /// with parentheses, at most 1 000 characters
    #[schema(value_type = Option<String>, max_length = 1000)]
    permissions: Option<PermissionQuery>,
    /// What this call costs in credits (default 1 when the key has credits)
    credits: Option<CreditCost>,
    /// The key's rate limits to apply with their cost (its `auto_apply` limits
    /// apply with cost 1 unless named here)
    #[schema(value_type = Option<Vec<RateLimitCost>>, max_items = 5, required = false)]
    ratelimits: Vec<RateLimitCost>,
    /// Labels to count this verification under in the key's usage analytics
    /// (`path=/v1/charges`, `region=eu`): at most 10, each 1 to 128
    /// characters, not starting with `keymint:`. Counted, never stored otherwise
    #[schema(value_type = Option<Vec<String>>, max_items = 10, required = false)]
    tags: TagSet,
}

impl VerifyBody {
    /// The key, the permission query, and what the call asks of the key's
    /// credits and rate limits.
    fn into_parts(self) -> (String, Option<PermissionQuery>, Demand, TagSet) {
        let demand = Demand {
            credits: self.credits.map(|credits| credits.cost),
            ratelimits: self
                .ratelimits
                .into_iter()
                .map(|limit| (limit.name, limit.cost.unwrap_or(1)))
                .collect(),
        };
        (self.key, self.permissions, demand, self.tags)
    }
}

/// A verification's cost in credits.
#[derive(Debug, ToSchema)]
pub(crate) struct CreditCost {
    /// 0 to 10 000; 0 spends nothing and is never refused for credits
    #[schema(value_type = u32, minimum = 0, maximum = 10000)]
    cost: u64,
}

/// A rate limit to apply, by name, with its cost.
#[derive(Debug, ToSchema)]
pub(crate) struct RateLimitCost {
    /// The name of one of the key's rate limits
    #[schema(min_length = 1, max_length = 64, pattern = "^[A-Za-z0-9_.:-]+$")]
    name: String,
    /// How much of the limit the call takes, 0 to 10 000 (default 1)
    #[schema(value_type = Option<u32>, minimum = 0, maximum = 10000)]
    cost: Option<u64>,
}

fn read_cost(object: &mut Nested<'_>, required: bool) -> Option<Option<u64>> {
    let cost = object.number("cost", required)?;
    if cost.is_some_and(|cost| cost > MAX_COST) {
        object.fail(
            "cost",
            "less_than_equal",
            format!("Input should be less than or equal to {MAX_COST}"),
        );
        return None;
    }
    Some(cost)
}

/// `credits: {cost}`: `Some(None)` when absent or `null`, `None` if invalid.
fn read_credit_cost(body: &mut ObjectReader) -> Option<Option<CreditCost>> {
    let object = match body.optional_object("credits")? {
        Optional::Absent | Optional::Null => return Some(None),
        Optional::Value(object) => object,
    };
    let mut credits = body.nested(vec!["credits".into()], Value::Object(object))?;
    let cost = read_cost(&mut credits, true);
    let clean = credits.finish();
    cost.filter(|_| clean).map(|cost| cost.map(|cost| CreditCost { cost }))
}

/// `ratelimits: [{name, cost}]`: empty when absent or `null`, `None` if invalid.
fn read_limit_costs(body: &mut ObjectReader) -> Option<Vec<RateLimitCost>> {
    let items = match body.optional_array("ratelimits")? {
        Optional::Absent | Optional::Null => return Some(Vec::new()),
        Optional::Value(items) => items,
    };
    if items.len() > MAX_RATE_LIMITS {
        body.fail(
            "ratelimits",
            "too_long",
            format!("List should have at most {MAX_RATE_LIMITS} items"),
        );
        return None;
    }
    let mut costs: Vec<RateLimitCost> = Vec::with_capacity(items.len());
    let mut valid = true;
    for (index, item) in items.into_iter().enumerate() {
        let Some(mut limit) = body.nested(vec!["ratelimits".into(), index.to_string()], item) else {
            valid = false;
            continue;
        };
        let name = match limit.string("name", true) {
            // The key's own rules for a name, so that no other text is ever
            // echoed back in an answer.
            Some(Some(name)) if RateLimit::new(name.as_str(), 1, MIN_WINDOW_MS, false).is_err() => {
                limit.fail(
                    "name",
                    "string_pattern_mismatch",
                    "name must be 1 to 64 characters of letters, digits and _ . : -",
                );
                None
            }
            Some(Some(name)) if costs.iter().any(|seen| seen.name == name) => {
                limit.fail("name", "value_error", "each rate limit may be named once");
                None
            }
            other => other.flatten(),
        };
        let cost = read_cost(&mut limit, false);
        let clean = limit.finish();
        match (name, cost) {
            (Some(name), Some(cost)) if clean => costs.push(RateLimitCost { name, cost }),
            _ => valid = false,
        }
    }
    valid.then_some(costs)
}

/// `tags`: empty when absent or `null`, `None` if invalid (each failing tag
/// named by its index, never echoed).
fn read_tags(body: &mut ObjectReader) -> Option<TagSet> {
    let items = match body.optional_array("tags")? {
        Optional::Absent | Optional::Null => return Some(TagSet::empty()),
        Optional::Value(items) => items,
    };
    if items.len() > MAX_TAGS {
        body.fail("tags", "too_long", format!("List should have at most {MAX_TAGS} items"));
        return None;
    }
    let mut tags = Vec::with_capacity(items.len());
    let mut valid = true;
    for (index, item) in items.into_iter().enumerate() {
        let Value::String(raw) = item else {
            body.fail_item("tags", index, "string_type", "Input should be a valid string");
            valid = false;
            continue;
        };
        match Tag::new(raw) {
            Ok(tag) => tags.push(tag),
            Err(err) => {
                let kind = match err {
                    TagError::Empty => "string_too_short",
                    TagError::TooLong(_) => "string_too_long",
                    TagError::Reserved | TagError::Text(_) => "value_error",
                };
                body.fail_item("tags", index, kind, err.to_string());
                valid = false;
            }
        }
    }
    if !valid {
        return None;
    }
    // At most MAX_TAGS items were given, so the set (deduplicated) fits.
    TagSet::new(tags).ok()
}

impl FromJsonBody for VerifyBody {
    fn from_json(value: Value) -> Result<Self, Vec<FieldError>> {
        let mut body = ObjectReader::new("body", value)?;
        let key = body.required_string("key");
        let permissions = match body.optional_string("permissions") {
            Some(Optional::Value(raw)) => body
                .check("permissions", PermissionQuery::parse(&raw), |_| "value_error")
                .map(Some),
            Some(Optional::Absent | Optional::Null) => Some(None),
            None => None,
        };
        let credits = read_credit_cost(&mut body);
        let ratelimits = read_limit_costs(&mut body);
        let tags = read_tags(&mut body);
        let parsed = match (key, permissions, credits, ratelimits, tags) {
            (Some(key), Some(permissions), Some(credits), Some(ratelimits), Some(tags)) => Some(Self {
                key,
                permissions,
                credits,
                ratelimits,
                tags,
            }),
            _ => None,
        };
        body.finish(parsed)
    }
}

/// The verdict. Identity fields are set only when the key is valid.
#[derive(Serialize, ToSchema)]
#[schema(as = VerifyResult)]
pub(crate) struct VerifyResponse {
    valid: bool,
    /// `VALID`, `NOT_FOUND`, `REVOKED`, `EXPIRED`, `INSUFFICIENT_PERMISSIONS`,
    /// `RATE_LIMITED` or `USAGE_EXCEEDED`.
    code: &'static str,
    #[schema(format = Uuid, required = true)]
    key_id: Option<String>,
    #[schema(format = Uuid, required = true)]
    org_id: Option<String>,
    #[schema(required = true)]
    environment: Option<&'static str>,
    #[schema(required = true)]
    name: Option<String>,
    #[schema(format = DateTime, required = true)]
    expires_at: Option<String>,
    /// The key's permissions, when the key was recognised (`VALID`,
    /// `INSUFFICIENT_PERMISSIONS`)
    #[schema(required = true, value_type = Option<Vec<String>>)]
    permissions: Option<PermissionList>,
    /// The key's owner, when the key was recognised and has one
    #[schema(required = true, value_type = Option<String>)]
    owner_id: Option<Arc<str>>,
    /// The key's metadata, when the key was recognised and has some
    #[schema(required = true, schema_with = crate::routes::api_keys::meta_answer_schema)]
    meta: Option<Meta>,
    /// The key's credits after this call, when it was recognised and has
    /// credits (`null`: unlimited, or not recognised)
    #[schema(required = true)]
    credits: Option<CreditsLeft>,
    /// Each of the key's rate limits that applied, after this call (`null`
    /// when the key was not recognised)
    #[schema(required = true)]
    ratelimits: Option<Vec<LimitLeft>>,
}

/// Credits left.
#[derive(Serialize, ToSchema)]
pub(crate) struct CreditsLeft {
    remaining: u64,
}

/// A rate limit's state after a call.
#[derive(Serialize, ToSchema)]
pub(crate) struct LimitLeft {
    name: String,
    /// Uses allowed per window
    limit: u64,
    /// Uses left in the current window
    remaining: u64,
    /// When the current window ends (RFC 3339)
    #[schema(format = DateTime)]
    reset: String,
}

/// Metadata written straight from the cached verification.
struct Meta(Arc<KeyMeta>);

impl Serialize for Meta {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.as_raw().serialize(serializer)
    }
}

/// A key's permissions as a JSON array, written straight from the cached
/// verification: no copy per request.
struct PermissionList(Arc<Permissions>);

impl Serialize for PermissionList {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.0.iter().map(PermissionName::as_str))
    }
}

impl From<Verification> for VerifyResponse {
    fn from(verification: Verification) -> Self {
        let code = verification.code();
        match verification {
            Verification::Valid(key) => Self::recognised(true, code, key),
            Verification::InsufficientPermissions(key)
            | Verification::KeyRateLimited(key)
            | Verification::UsageExceeded(key) => Self::recognised(false, code, key),
            _ => Self {
                valid: false,
                code,
                key_id: None,
                org_id: None,
                environment: None,
                name: None,
                expires_at: None,
                permissions: None,
                owner_id: None,
                meta: None,
                credits: None,
                ratelimits: None,
            },
        }
    }
}

impl VerifyResponse {
    /// The caller proved it holds the key's secret: the key is named.
    fn recognised(valid: bool, code: &'static str, key: VerifiedKey) -> Self {
        let (credits, ratelimits) = match key.usage.as_deref() {
            Some(usage) => (
                usage.credits_remaining.map(|remaining| CreditsLeft { remaining }),
                usage
                    .ratelimits
                    .iter()
                    .map(|state| LimitLeft {
                        name: state.name.clone(),
                        limit: state.limit,
                        remaining: state.remaining,
                        reset: timestamp(state.reset),
                    })
                    .collect(),
            ),
            None => (None, Vec::new()),
        };
        Self {
            credits,
            ratelimits: Some(ratelimits),
            valid,
            code,
            key_id: Some(key.key_id.to_string()),
            org_id: Some(key.org_id.to_string()),
            environment: Some(key.environment.as_str()),
            expires_at: key.expires_at.map(timestamp),
            permissions: Some(PermissionList(key.permissions)),
            owner_id: key.owner_id,
            meta: key.meta.map(Meta),
            name: Some(key.name),
        }
    }
}

/// `POST /api-keys/verify` with `{"key": "sk_…"}`, or with no body and the key in
/// `x-api-key` or `Authorization: Bearer`.
#[utoipa::path(
    post, path = "/api/v2/api-keys/verify", tag = "verification", operation_id = "verify_api_key",
    summary = "Verify an API key (no JWT: the key is the credential)",
    request_body(content = Option<VerifyBody>,
        description = "Optional when the key is sent as x-api-key or Authorization: Bearer"),
    responses(
        (status = 200, description = "The verdict, valid or not", body = VerifyResponse),
        (status = 401, description = "Two different keys presented (body, x-api-key, Authorization: Bearer): ambiguous_api_key", body = ErrorBody),
        JsonBodyErrors,
        (status = 422, description = "No key in the body or headers", body = ValidationErrorBody),
        (status = 503, description = "Storage unavailable", body = ErrorBody),
    ),
    // No JWT: the key goes in the body, or in one of these headers.
    security((), ("api_key" = []), ("api_key_bearer" = [])),
)]
pub(crate) async fn verify(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: OptionalJson<VerifyBody>,
) -> Result<HttpResponse, ApiError> {
    let in_headers = presented_api_key(&req)?;
    let (presented, required, demand, tags) = match body.0 {
        Some(body) => {
            let (key, permissions, demand, tags) = body.into_parts();
            (
                one_key(Some(key), in_headers)?.unwrap_or_default(),
                permissions,
                demand,
                tags,
            )
        }
        None => (
            in_headers.ok_or_else(|| {
                ApiError::Validation(vec![FieldError::new(
                    &["body", "key"],
                    "missing",
                    "Field required (or send the key as x-api-key or Authorization: Bearer)",
                )])
            })?,
            None,
            Demand::default(),
            TagSet::empty(),
        ),
    };
    let client = crate::client_address(&req);
    let verification = state
        .verify
        .execute_tagged(&presented, client, required.as_ref(), demand, tags)
        .await?;
    state.metrics.verification(verification.code());
    Ok(HttpResponse::Ok().json(VerifyResponse::from(verification)))
}
