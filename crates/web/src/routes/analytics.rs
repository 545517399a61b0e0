//! `GET /api/v2/analytics/verifications` and `GET /api/v2/api-keys/{key_id}/usage`:
//! an organisation's verification counts over time, as the customer sees them.

use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use keymint_application::{AnalyticsAnswer, AnalyticsRequest, GroupBy, RowOrder, MAX_ANALYTICS_ROWS};
use keymint_domain::{Granularity, KeyId, OwnerId, VerificationOutcome, MAX_TAG_CHARS};
use serde::Serialize;
use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, Schema, Type};
use utoipa::openapi::RefOr;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::paging::QueryReader;
use super::timestamp;
use crate::error::{ErrorBody, KeyErrors, ManagementErrors, ValidationErrorBody};
use crate::extract::{Acting, ActingOnKey};
use crate::validation::parse_timestamp;
use crate::{ApiError, AppState};

/// The most values one repeatable filter may list.
const MAX_FILTER_VALUES: usize = 100;

/// The query of an analytics read.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub(crate) struct AnalyticsParams {
    /// From (RFC 3339; default: 24 hours before `to`); the bucket it falls in
    /// is answered whole
    #[param(format = DateTime)]
    from: Option<String>,
    /// To, exclusive (RFC 3339; default: now)
    #[param(format = DateTime)]
    to: Option<String>,
    /// Bucket width (default `hour`): a range covers at most 1 day of
    /// minutes, 92 days of hours, 732 days of days; `total`: one row per
    /// group for the whole range (up to 732 days; counted from hour buckets
    /// for up to 7 days, from day buckets beyond)
    #[param(pattern = "^(minute|hour|day|total)$")]
    granularity: Option<String>,
    /// `time` (default: time ascending) or `count` (the largest first; with
    /// `limit`, the top rows)
    #[param(pattern = "^(time|count)$")]
    order_by: Option<String>,
    /// At most this many rows (default and most 10 000): ordered by count,
    /// the first ones; ordered by time, more is a 422
    #[param(minimum = 1, maximum = 10000)]
    limit: Option<u32>,
    /// Only these keys (repeatable)
    #[param(style = Form, explode)]
    key_id: Option<Vec<Uuid>>,
    /// Only keys of these owners (repeatable)
    #[param(style = Form, explode, schema_with = owner_ids_schema)]
    owner_id: Option<Vec<String>>,
    /// Only verifications carrying one of these tags (repeatable;
    /// `keymint:overflow` is the bucket of tag sets past a key's cap)
    #[param(style = Form, explode, schema_with = tags_schema)]
    tag: Option<Vec<String>>,
    /// Only these outcomes (repeatable)
    #[param(style = Form, explode, inline)]
    outcome: Option<Vec<OutcomeName>>,
    /// Group by any of `key_id`, `owner_id`, `tag`, `outcome` (repeatable or
    /// comma-separated)
    #[param(style = Form, explode)]
    group_by: Option<Vec<String>>,
}

/// Repeated `owner_id`s: each an owner id as keys store them.
fn owner_ids_schema() -> impl Into<RefOr<Schema>> {
    ArrayBuilder::new()
        .items(Into::<RefOr<Schema>>::into(super::paging::owner_id_query_schema()))
        .max_items(Some(MAX_FILTER_VALUES))
}

/// Repeated `tag`s: 1 to 128 characters each.
fn tags_schema() -> impl Into<RefOr<Schema>> {
    ArrayBuilder::new()
        .items(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .min_length(Some(1))
                .max_length(Some(MAX_TAG_CHARS)),
        )
        .max_items(Some(MAX_FILTER_VALUES))
}

/// A verification's outcome, as `POST …/verify` answers its code.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[schema(as = VerificationOutcome)]
#[allow(dead_code)]
pub(crate) enum OutcomeName {
    Valid,
    Revoked,
    Expired,
    InsufficientPermissions,
    RateLimited,
    UsageExceeded,
}

/// Verifications over time: non-empty buckets only, time ascending.
#[derive(Serialize, ToSchema)]
#[schema(as = VerificationAnalytics)]
pub(crate) struct AnswerBody {
    /// `minute`, `hour`, `day` or `total`
    granularity: &'static str,
    /// The first bucket's start
    #[schema(format = DateTime)]
    from: String,
    /// The end, exclusive
    #[schema(format = DateTime)]
    to: String,
    /// At most 10 000 rows
    data: Vec<RowBody>,
}

/// One bucket (and group).
#[derive(Serialize, ToSchema)]
#[schema(as = VerificationBucket)]
pub(crate) struct RowBody {
    /// The bucket's start
    #[schema(format = DateTime)]
    time: String,
    /// Verifications
    count: u64,
    /// Credits they spent
    spent_credits: u64,
    /// When grouped by key
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(format = Uuid)]
    key_id: Option<String>,
    /// When grouped by owner (`null`: keys without one)
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    owner_id: Option<Option<String>>,
    /// When grouped by tag (`null`: untagged verifications)
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    tag: Option<Option<String>>,
    /// When grouped by outcome
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<OutcomeName>)]
    outcome: Option<&'static str>,
}

impl From<AnalyticsAnswer> for AnswerBody {
    fn from(answer: AnalyticsAnswer) -> Self {
        Self {
            granularity: if answer.total {
                "total"
            } else {
                answer.granularity.as_str()
            },
            from: timestamp(answer.from),
            to: timestamp(answer.to),
            data: answer
                .rows
                .into_iter()
                .map(|row| RowBody {
                    time: timestamp(row.time),
                    count: row.count,
                    spent_credits: row.spent_credits,
                    key_id: row.key_id.map(|id| id.to_string()),
                    owner_id: row.owner_id.map(|owner| owner.map(|owner| owner.as_str().to_owned())),
                    tag: row.tag,
                    outcome: row.outcome.map(VerificationOutcome::as_str),
                })
                .collect(),
        }
    }
}

/// A timestamp parameter.
fn time_param(query: &mut QueryReader, name: &str) -> Option<DateTime<Utc>> {
    let raw = query.take_one(name)?;
    match parse_timestamp(&raw) {
        Ok(at) => Some(at),
        Err(err) => {
            query.fail(name, "datetime_parsing", err.to_string());
            None
        }
    }
}

/// A repeatable parameter's values, each read by `parse` (a failure names the
/// parameter and never echoes the value).
fn list_param<T>(query: &mut QueryReader, name: &str, parse: impl Fn(&str) -> Result<T, String>) -> Vec<T> {
    let values = query.take_all(name);
    if values.len() > MAX_FILTER_VALUES {
        query.fail(name, "too_long", format!("At most {MAX_FILTER_VALUES} values"));
        return Vec::new();
    }
    let mut parsed = Vec::with_capacity(values.len());
    for value in values {
        match parse(&value) {
            Ok(value) => parsed.push(value),
            Err(message) => query.fail(name, "value_error", message),
        }
    }
    parsed
}

/// Reads the range, granularity and tag filter; organisation-wide, also the
/// key, owner and outcome filters and the grouping.
fn read_request(query: &mut QueryReader, organisation_wide: bool) -> AnalyticsRequest {
    let from = time_param(query, "from");
    let to = time_param(query, "to");
    let mut total = false;
    let granularity = query.take_one("granularity").and_then(|raw| {
        if raw == "total" {
            total = true;
            return None;
        }
        match raw.parse::<Granularity>() {
            Ok(granularity) => Some(granularity),
            Err(_) => {
                query.fail(
                    "granularity",
                    "literal_error",
                    "Input should be 'minute', 'hour', 'day' or 'total'",
                );
                None
            }
        }
    });
    let tags = list_param(query, "tag", |raw| {
        let chars = raw.chars().count();
        if (1..=MAX_TAG_CHARS).contains(&chars) {
            Ok(raw.to_owned())
        } else {
            Err(format!("A tag has 1 to {MAX_TAG_CHARS} characters"))
        }
    });
    let mut request = AnalyticsRequest {
        from,
        to,
        granularity,
        total,
        tags,
        ..AnalyticsRequest::default()
    };
    if !organisation_wide {
        return request;
    }
    match query.take_one("order_by").as_deref() {
        None | Some("time") => {}
        Some("count") => request.order = RowOrder::Count,
        Some(_) => query.fail("order_by", "literal_error", "Input should be 'time' or 'count'"),
    }
    if let Some(raw) = query.take_one("limit") {
        match raw.parse::<usize>() {
            Ok(limit) if (1..=MAX_ANALYTICS_ROWS).contains(&limit) => request.limit = Some(limit),
            _ => query.fail(
                "limit",
                "value_error",
                format!("Input should be a whole number from 1 to {MAX_ANALYTICS_ROWS}"),
            ),
        }
    }
    request.key_ids = list_param(query, "key_id", |raw| {
        Uuid::parse_str(raw)
            .map(KeyId::from_uuid)
            .map_err(|_| "Input should be a valid UUID".to_owned())
    });
    request.owner_ids = list_param(query, "owner_id", |raw| {
        OwnerId::new(raw).map_err(|err| err.to_string())
    });
    request.outcomes = list_param(query, "outcome", |raw| {
        raw.parse::<VerificationOutcome>().map_err(|err| err.to_string())
    });
    let group_by = &mut request.group_by;
    let fields: Vec<String> = query
        .take_all("group_by")
        .iter()
        .flat_map(|raw| raw.split(',').map(|field| field.trim().to_owned()).collect::<Vec<_>>())
        .collect();
    for field in fields {
        match field.as_str() {
            "key_id" => group_by.key_id = true,
            "owner_id" => group_by.owner_id = true,
            "tag" => group_by.tag = true,
            "outcome" => group_by.outcome = true,
            _ => query.fail(
                "group_by",
                "literal_error",
                "Input should be any of 'key_id', 'owner_id', 'tag', 'outcome'",
            ),
        }
    }
    request
}

/// `GET /analytics/verifications`
#[utoipa::path(
    get, path = "/api/v2/analytics/verifications", tag = "analytics", operation_id = "verification_analytics",
    summary = "Verifications over time, by key, owner, tag and outcome",
    description = "Counts every verification that named one of the organisation's keys (every code but \
                   NOT_FOUND and a failure budget's RATE_LIMITED), as of the last usage flush.",
    params(AnalyticsParams),
    responses(
        (status = 200, description = "The buckets", body = AnswerBody),
        ManagementErrors,
        (status = 422, description = "A parameter is invalid, the range is too long for the granularity, \
                                      or the answer would exceed 10 000 rows", body = ValidationErrorBody),
    ),
    security(("bearer" = [])),
)]
pub(crate) async fn verifications(
    req: HttpRequest,
    state: web::Data<AppState>,
    Acting(actor): Acting,
) -> Result<HttpResponse, ApiError> {
    let mut query = QueryReader::new(req.query_string()).map_err(ApiError::Validation)?;
    let request = read_request(&mut query, true);
    query.finish().map_err(ApiError::Validation)?;
    let answer = state.analytics.verifications(&actor, request).await?;
    Ok(HttpResponse::Ok().json(AnswerBody::from(answer)))
}

/// The query of a key's usage.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub(crate) struct KeyUsageParams {
    /// From (RFC 3339; default: 24 hours before `to`)
    #[param(format = DateTime)]
    from: Option<String>,
    /// To, exclusive (RFC 3339; default: now)
    #[param(format = DateTime)]
    to: Option<String>,
    /// Bucket width (default `hour`), or `total` for the whole range
    #[param(pattern = "^(minute|hour|day|total)$")]
    granularity: Option<String>,
    /// Only verifications carrying one of these tags (repeatable)
    #[param(style = Form, explode, schema_with = tags_schema)]
    tag: Option<Vec<String>>,
}

/// `GET /api-keys/{key_id}/usage`
#[utoipa::path(
    get, path = "/api/v2/api-keys/{key_id}/usage", tag = "analytics", operation_id = "api_key_usage",
    summary = "One key's verifications over time, by outcome",
    params(crate::routes::api_keys::KeyPath, KeyUsageParams),
    responses(
        (status = 200, description = "The buckets, grouped by outcome", body = AnswerBody),
        ManagementErrors,
        KeyErrors,
        (status = 503, description = "Storage unavailable", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub(crate) async fn key_usage(
    req: HttpRequest,
    state: web::Data<AppState>,
    on: ActingOnKey,
) -> Result<HttpResponse, ApiError> {
    let mut query = QueryReader::new(req.query_string()).map_err(ApiError::Validation)?;
    let mut request = read_request(&mut query, false);
    query.finish().map_err(ApiError::Validation)?;
    // The key must be the organisation's (404 otherwise), deleted or not
    // being a matter of its history: a deleted key's usage is still read
    // through the organisation's analytics.
    state.api_keys.get(&on.actor, on.key_id).await?;
    request.key_ids = vec![on.key_id];
    request.group_by = GroupBy {
        outcome: true,
        ..GroupBy::default()
    };
    let answer = state.analytics.verifications(&on.actor, request).await?;
    Ok(HttpResponse::Ok().json(AnswerBody::from(answer)))
}
