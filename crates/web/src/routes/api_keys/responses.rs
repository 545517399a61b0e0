//! The response bodies of the key routes, in the field order clients know, and
//! their OpenAPI schemas.

use actix_web::http::{header, StatusCode};
use actix_web::HttpResponse;
use chrono::{DateTime, Utc};
use keymint_application::CreatedApiKey;
use keymint_domain::{
    ApiKey, AuditEvent, Credits, KeyDescription, KeyMeta, KeyStatus, LeakUrl, OwnerId, PermissionName, RateLimit,
    Subject,
};
use serde::Serialize;
use serde_json::value::RawValue;
use utoipa::ToSchema;

use crate::routes::timestamp;

/// The fields every key response starts with, in the specification's order.
#[derive(Serialize, ToSchema)]
pub(crate) struct KeyIdentity<'a> {
    #[schema(format = Uuid)]
    id: String,
    #[schema(format = Uuid)]
    org_id: String,
    name: &'a str,
    public_key: &'a str,
    private_key_display: &'a str,
    #[schema(format = DateTime)]
    created_at: String,
}

/// What a key is set to and how it has been used: the fields after its
/// identity (after `private_key` in a create response).
#[derive(Serialize, ToSchema)]
pub(crate) struct KeySettings<'a> {
    #[schema(required = true)]
    description: Option<&'a str>,
    is_revoked: bool,
    #[schema(format = DateTime, required = true)]
    revoked_at: Option<String>,
    #[schema(format = DateTime, required = true)]
    last_used_at: Option<String>,
    #[schema(required = true)]
    environment: Option<&'a str>,
    #[schema(format = DateTime, required = true)]
    expires_at: Option<String>,
    /// What the key may do (checked when a verification asks), in order given
    permissions: Vec<&'a str>,
    /// Whom the key belongs to, in your terms
    #[schema(required = true)]
    owner_id: Option<&'a str>,
    /// Your own data about the key, as given
    #[schema(required = true, schema_with = crate::routes::api_keys::meta_answer_schema)]
    meta: Option<&'a RawValue>,
    /// The key's own rate limits, in order given
    ratelimits: Vec<RateLimitBody<'a>>,
    /// The key's credits (`null`: unlimited use); `remaining` counts what
    /// verifications have not spent, refilled by the calendar
    #[schema(required = true)]
    credits: Option<CreditsBody>,
}

/// A key as every read returns it: all create fields but `private_key`.
#[derive(Serialize, ToSchema)]
#[schema(as = ApiKey)]
pub(crate) struct ApiKeyResponse<'a> {
    #[serde(flatten)]
    #[schema(inline)]
    identity: KeyIdentity<'a>,
    #[serde(flatten)]
    #[schema(inline)]
    settings: KeySettings<'a>,
    /// When one of the key's private keys was last reported leaked (by a
    /// secret scanner or its holder), unless the key was rotated since
    #[schema(format = DateTime, required = true)]
    leaked_at: Option<String>,
    /// Until when the private key replaced by the last rotation keeps
    /// verifying (its grace period); `null` once it has stopped, or if there
    /// was none
    #[schema(format = DateTime, required = true)]
    previous_key_valid_until: Option<String>,
    /// Where the key stands now, in one word
    status: StatusBody,
    /// Its verifications in the last 24 hours (every outcome that names the
    /// key), as of the last usage flush and counted by the hour
    usage_24h: u64,
}

/// Where a key stands: the first that holds of `revoked` (never verifies
/// again), `expired` (its `expires_at` has passed), `leaked` (verifies, but was
/// reported leaked and neither revoked nor rotated since) and `active`.
#[derive(Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(as = KeyStatus)]
pub(crate) enum StatusBody {
    Active,
    Leaked,
    Expired,
    Revoked,
}

impl From<KeyStatus> for StatusBody {
    fn from(status: KeyStatus) -> Self {
        match status {
            KeyStatus::Active => StatusBody::Active,
            KeyStatus::Leaked => StatusBody::Leaked,
            KeyStatus::Expired => StatusBody::Expired,
            KeyStatus::Revoked => StatusBody::Revoked,
        }
    }
}

/// The end of `key`'s rotation grace period, if it lasts beyond `now`.
fn grace_until(key: &ApiKey, now: DateTime<Utc>) -> Option<String> {
    key.previous_credential()
        .map(|previous| previous.valid_until)
        .filter(|until| *until > now)
        .map(timestamp)
}

impl<'a> From<&'a ApiKey> for KeyIdentity<'a> {
    fn from(key: &'a ApiKey) -> Self {
        Self {
            id: key.id().to_string(),
            org_id: key.org_id().to_string(),
            name: key.name().as_str(),
            public_key: key.public_key().as_str(),
            private_key_display: key.private_key_display().as_str(),
            created_at: timestamp(key.created_at()),
        }
    }
}

impl<'a> KeySettings<'a> {
    fn of(key: &'a ApiKey, now: DateTime<Utc>) -> Self {
        Self {
            description: key.description().map(KeyDescription::as_str),
            is_revoked: key.is_revoked(),
            revoked_at: key.revoked_at().map(timestamp),
            last_used_at: key.last_used_at().map(timestamp),
            environment: Some(key.environment().as_str()),
            expires_at: key.expires_at().map(timestamp),
            permissions: key.permissions().iter().map(PermissionName::as_str).collect(),
            owner_id: key.owner_id().map(OwnerId::as_str),
            meta: key.meta().map(KeyMeta::as_raw),
            ratelimits: key.ratelimits().iter().map(RateLimitBody::from).collect(),
            credits: key.credits().map(|credits| CreditsBody::from(credits.as_of(now))),
        }
    }
}

impl<'a> ApiKeyResponse<'a> {
    /// `key` as reads show it, with its last day's verifications.
    pub(crate) fn new(key: &'a ApiKey, usage_24h: u64) -> Self {
        // One instant for every judgement the response makes about the key.
        let now = Utc::now();
        Self {
            identity: KeyIdentity::from(key),
            settings: KeySettings::of(key, now),
            leaked_at: key.leaked_at().map(timestamp),
            previous_key_valid_until: grace_until(key, now),
            status: key.status(now).into(),
            usage_24h,
        }
    }
}

/// A rate limit as keys show it.
#[derive(Serialize, ToSchema)]
#[schema(as = RateLimit)]
pub(crate) struct RateLimitBody<'a> {
    /// Its name (letters, digits and _ . : -, at most 64)
    name: &'a str,
    /// Uses allowed per window (1 to 1 000 000 000)
    limit: u64,
    /// The window in milliseconds (1 000 to 2 592 000 000, 30 days), aligned to
    /// the Unix epoch
    duration_ms: u64,
    /// Whether it applies to every verification (else only when a
    /// verification names it)
    auto_apply: bool,
}

impl<'a> From<&'a RateLimit> for RateLimitBody<'a> {
    fn from(limit: &'a RateLimit) -> Self {
        Self {
            name: limit.name(),
            limit: limit.limit(),
            duration_ms: limit.duration_ms(),
            auto_apply: limit.auto_apply(),
        }
    }
}

/// A key's credits.
#[derive(Serialize, ToSchema)]
#[schema(as = Credits)]
pub(crate) struct CreditsBody {
    /// How many verifications (of cost 1) remain
    remaining: u64,
    /// How they are refilled (`null`: never)
    #[schema(required = true)]
    refill: Option<RefillBody>,
}

impl From<Credits> for CreditsBody {
    fn from(credits: Credits) -> Self {
        Self {
            remaining: credits.remaining(),
            refill: credits.refill().map(|refill| RefillBody {
                interval: refill.interval().as_str(),
                amount: refill.amount(),
                refill_day: refill.day(),
            }),
        }
    }
}

/// A refill rule: `remaining` is set to `amount` at 00:00 UTC each day, or on
/// `refill_day` of each month (its last day when shorter).
#[derive(Serialize, ToSchema)]
#[schema(as = Refill)]
pub(crate) struct RefillBody {
    /// `daily` or `monthly`
    interval: &'static str,
    /// What `remaining` is set to
    amount: u64,
    /// The day of the month of a monthly refill (`null` for daily)
    #[schema(required = true)]
    refill_day: Option<u32>,
}

/// The create (and rotate) response: the specification's twelve fields in its
/// order, then the key's other settings and its status.
#[derive(Serialize, ToSchema)]
#[schema(as = ApiKeyCreated)]
pub(crate) struct CreatedApiKeyResponse<'a> {
    #[serde(flatten)]
    #[schema(inline)]
    identity: KeyIdentity<'a>,
    /// The private key, shown in this response only.
    private_key: &'a str,
    #[serde(flatten)]
    #[schema(inline)]
    settings: KeySettings<'a>,
    /// Where the key stands now, in one word
    status: StatusBody,
}

impl<'a> From<&'a CreatedApiKey> for CreatedApiKeyResponse<'a> {
    fn from(created: &'a CreatedApiKey) -> Self {
        let now = Utc::now();
        let key = &created.key;
        Self {
            identity: KeyIdentity::from(key),
            private_key: created.private_key.expose_secret(),
            settings: KeySettings::of(key, now),
            status: key.status(now).into(),
        }
    }
}

/// The original service's revoke model, plus `revoked_at`.
#[derive(Serialize, ToSchema)]
#[schema(as = ApiKeyRevoked)]
pub(crate) struct RevokedApiKeyResponse<'a> {
    #[schema(format = Uuid)]
    id: String,
    #[schema(format = Uuid)]
    org_id: String,
    name: &'a str,
    is_revoked: bool,
    #[schema(format = DateTime)]
    created_at: String,
    #[schema(required = true)]
    description: Option<&'a str>,
    #[schema(format = DateTime, required = true)]
    expires_at: Option<String>,
    #[schema(format = DateTime, required = true)]
    last_used_at: Option<String>,
    #[schema(format = DateTime, required = true)]
    revoked_at: Option<String>,
    /// Where the key stands now, in one word (`revoked`)
    status: StatusBody,
}

impl<'a> From<&'a ApiKey> for RevokedApiKeyResponse<'a> {
    fn from(key: &'a ApiKey) -> Self {
        Self {
            id: key.id().to_string(),
            org_id: key.org_id().to_string(),
            name: key.name().as_str(),
            is_revoked: key.is_revoked(),
            created_at: timestamp(key.created_at()),
            description: key.description().map(KeyDescription::as_str),
            expires_at: key.expires_at().map(timestamp),
            last_used_at: key.last_used_at().map(timestamp),
            revoked_at: key.revoked_at().map(timestamp),
            status: key.status(Utc::now()).into(),
        }
    }
}

/// One audit trail entry.
#[derive(Serialize, ToSchema)]
#[schema(as = AuditEvent)]
pub(crate) struct AuditEventResponse<'a> {
    #[schema(format = Uuid)]
    id: String,
    #[schema(format = Uuid)]
    key_id: String,
    action: &'static str,
    #[schema(required = true)]
    actor: Option<&'a str>,
    #[schema(format = DateTime)]
    occurred_at: String,
    #[schema(required = true)]
    request_id: Option<&'a str>,
    /// For `updated`, the fields it changed (names, never values); empty otherwise
    fields: Vec<&'static str>,
    /// For `leaked`, where the leak was seen; `null` otherwise
    #[schema(required = true)]
    leak: Option<LeakBody<'a>>,
}

/// Where a leaked private key was seen.
#[derive(Serialize, ToSchema)]
#[schema(as = Leak)]
pub(crate) struct LeakBody<'a> {
    /// The scanner's source (`commit`, `content`, `issue_comment`, …) or
    /// `self_report`
    source: &'a str,
    /// The page it was found on, if the reporter said
    #[schema(required = true)]
    url: Option<&'a str>,
}

impl<'a> From<&'a AuditEvent> for AuditEventResponse<'a> {
    fn from(event: &'a AuditEvent) -> Self {
        Self {
            id: event.id.to_string(),
            key_id: event.key_id.to_string(),
            action: event.action.as_str(),
            actor: event.actor.as_ref().map(Subject::as_str),
            occurred_at: timestamp(event.occurred_at),
            request_id: event.request_id.as_deref(),
            fields: event.fields.iter().map(|field| field.as_str()).collect(),
            leak: event.leak.as_ref().map(|leak| LeakBody {
                source: leak.source.as_str(),
                url: leak.url.as_ref().map(LeakUrl::as_str),
            }),
        }
    }
}

/// The create (or rotate) response with `status`, its `Location` pointing at the key.
pub(crate) fn created(status: StatusCode, location: String, created: &CreatedApiKey) -> HttpResponse {
    HttpResponse::build(status)
        .insert_header((header::LOCATION, location))
        .json(CreatedApiKeyResponse::from(created))
}
