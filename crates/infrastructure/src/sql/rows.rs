//! Row mapping, in one place for every file of the adapter: keys, audit
//! events, credits and rate limits, webhooks and deliveries, between the
//! domain's types and the stored columns. A stored value the domain refuses
//! is reported as corrupt, never silently dropped.

use anyhow::anyhow;
use chrono::{DateTime, Utc};
use keymint_application::{Attempt, Delivery, DeliveryStatus, RepositoryError};
use keymint_domain::{
    ApiKey, ApiKeyParts, AuditEvent, Credential, Credits, EndpointHealth, EventType, EventTypes, KeyDescription,
    KeyDigest, KeyDisplay, KeyId, KeyMeta, KeyName, LeakReport, LeakSource, LeakUrl, LookupId, OrgId, OwnerId,
    PermissionName, Permissions, PreviousCredential, PublicKey, RateLimit, RateLimits, Refill, SecretHash, Subject,
    Webhook, WebhookUrl,
};
use sea_orm::ActiveValue;
use uuid::Uuid;

use super::entity::{
    api_key_events as events, api_keys as keys, webhook_attempts as attempts, webhook_deliveries as deliveries,
    webhooks as hooks,
};

pub(crate) fn to_row(key: &ApiKey) -> keys::ActiveModel {
    let parts = key.parts();
    let previous = parts.previous.as_ref();
    keys::ActiveModel {
        id: ActiveValue::Set(parts.id.as_uuid()),
        org_id: ActiveValue::Set(parts.org_id.as_uuid()),
        name: ActiveValue::Set(parts.name.as_str().to_owned()),
        name_folded: ActiveValue::Set(parts.name.folded()),
        description: ActiveValue::Set(parts.description.as_ref().map(|d| d.as_str().to_owned())),
        environment: ActiveValue::Set(parts.environment.as_str().to_owned()),
        public_key: ActiveValue::Set(parts.public_key.as_str().to_owned()),
        lookup_id: ActiveValue::Set(parts.credential.lookup_id.as_str().to_owned()),
        secret_hash: ActiveValue::Set(parts.credential.secret_hash.expose().to_owned()),
        private_key_display: ActiveValue::Set(parts.credential.display.as_str().to_owned()),
        created_at: ActiveValue::Set(parts.created_at),
        is_revoked: ActiveValue::Set(key.is_revoked()),
        revoked_at: ActiveValue::Set(parts.revoked_at),
        last_used_at: ActiveValue::Set(parts.last_used_at),
        expires_at: ActiveValue::Set(parts.expires_at),
        revision: ActiveValue::Set(i32::try_from(parts.revision).unwrap_or(i32::MAX)),
        previous_lookup_id: ActiveValue::Set(previous.map(|p| p.lookup_id.as_str().to_owned())),
        previous_secret_hash: ActiveValue::Set(previous.map(|p| p.secret_hash.expose().to_owned())),
        previous_valid_until: ActiveValue::Set(previous.map(|p| p.valid_until)),
        lookup_digest: ActiveValue::Set(parts.credential.lookup_digest.map(|d| d.to_hex())),
        previous_lookup_digest: ActiveValue::Set(previous.and_then(|p| p.lookup_digest).map(|d| d.to_hex())),
        permissions: ActiveValue::Set(words(parts.permissions.iter().map(PermissionName::as_str))),
        owner_id: ActiveValue::Set(parts.owner_id.as_ref().map(|o| o.as_str().to_owned())),
        meta: ActiveValue::Set(parts.meta.as_ref().map(|m| m.as_json().to_owned())),
        ratelimits: ActiveValue::Set(ratelimits_text(&parts.ratelimits)),
        credits_remaining: ActiveValue::Set(parts.credits.map(|c| i64::try_from(c.remaining()).unwrap_or(i64::MAX))),
        credits_period: ActiveValue::Set(parts.credits.map(|c| c.period())),
        credits_refill: ActiveValue::Set(parts.credits.and_then(|c| c.refill()).map(|r| refill_text(&r))),
        leaked_at: ActiveValue::Set(parts.leaked_at),
    }
}

/// Names joined by single spaces: permission and field names hold no whitespace,
/// so this is lossless and the same text on every engine.
pub(crate) fn words<'a>(names: impl Iterator<Item = &'a str>) -> String {
    names.collect::<Vec<_>>().join(" ")
}

pub(crate) fn permissions_of(text: &str) -> Option<Permissions> {
    let names: Option<Vec<PermissionName>> = text.split_whitespace().map(|n| PermissionName::new(n).ok()).collect();
    Permissions::new(names?).ok()
}

/// A row that breaks a domain rule is a corrupt row: reported, never half-loaded.
pub(crate) fn from_row(row: keys::Model) -> Result<ApiKey, RepositoryError> {
    let id = row.id;
    let corrupt = |what: &str| RepositoryError::Unexpected(anyhow!("stored key {id} has an invalid {what}"));
    let previous = match (
        row.previous_lookup_id,
        row.previous_secret_hash,
        row.previous_valid_until,
    ) {
        (Some(lookup_id), Some(secret_hash), Some(valid_until)) => Some(PreviousCredential {
            lookup_id: LookupId::parse(&lookup_id).map_err(|_| corrupt("previous lookup id"))?,
            secret_hash: SecretHash::new(secret_hash).map_err(|_| corrupt("previous secret hash"))?,
            lookup_digest: row
                .previous_lookup_digest
                .as_deref()
                .map(KeyDigest::parse)
                .transpose()
                .map_err(|_| corrupt("previous lookup digest"))?,
            valid_until,
        }),
        (None, None, None) => None,
        _ => return Err(corrupt("previous credential (partly set)")),
    };
    let parts = ApiKeyParts {
        id: KeyId::from_uuid(row.id),
        org_id: OrgId::from_uuid(row.org_id),
        // Stored text is restored, not judged again: a stricter rule in a
        // later release must not make earlier keys unreadable.
        name: KeyName::restore(row.name),
        description: row.description.map(KeyDescription::restore),
        environment: row.environment.parse().map_err(|_| corrupt("environment"))?,
        public_key: PublicKey::parse(&row.public_key).map_err(|_| corrupt("public key"))?,
        credential: Credential {
            lookup_id: LookupId::parse(&row.lookup_id).map_err(|_| corrupt("lookup id"))?,
            secret_hash: SecretHash::new(row.secret_hash).map_err(|_| corrupt("secret hash"))?,
            display: KeyDisplay::restore(row.private_key_display),
            lookup_digest: row
                .lookup_digest
                .as_deref()
                .map(KeyDigest::parse)
                .transpose()
                .map_err(|_| corrupt("lookup digest"))?,
        },
        previous,
        created_at: row.created_at,
        expires_at: row.expires_at,
        revoked_at: row.revoked_at,
        leaked_at: row.leaked_at,
        last_used_at: row.last_used_at,
        permissions: permissions_of(&row.permissions).ok_or_else(|| corrupt("permissions"))?,
        owner_id: row.owner_id.map(OwnerId::restore),
        meta: row
            .meta
            .as_deref()
            .map(KeyMeta::parse)
            .transpose()
            .map_err(|_| corrupt("meta"))?,
        ratelimits: ratelimits_of(&row.ratelimits).ok_or_else(|| corrupt("rate limits"))?,
        credits: credits_of(row.credits_remaining, row.credits_period, row.credits_refill.as_deref())
            .map_err(|()| corrupt("credits"))?,
        revision: u32::try_from(row.revision).map_err(|_| corrupt("revision"))?,
    };
    if parts.revoked_at.is_some() != row.is_revoked {
        return Err(corrupt("revocation state"));
    }
    Ok(ApiKey::restore(parts))
}

pub(crate) fn event_row(event: &AuditEvent) -> events::ActiveModel {
    events::ActiveModel {
        id: ActiveValue::Set(event.id),
        key_id: ActiveValue::Set(event.key_id.as_uuid()),
        org_id: ActiveValue::Set(event.org_id.as_uuid()),
        action: ActiveValue::Set(event.action.as_str().to_owned()),
        actor: ActiveValue::Set(event.actor.as_ref().map(|s| s.as_str().to_owned())),
        request_id: ActiveValue::Set(event.request_id.clone()),
        occurred_at: ActiveValue::Set(event.occurred_at),
        fields: ActiveValue::Set(words(event.fields.iter().map(|field| field.as_str()))),
        leak_source: ActiveValue::Set(event.leak.as_ref().map(|leak| leak.source.as_str().to_owned())),
        leak_url: ActiveValue::Set(
            event
                .leak
                .as_ref()
                .and_then(|leak| leak.url.as_ref())
                .map(|url| url.as_str().to_owned()),
        ),
    }
}

pub(crate) fn from_event_row(row: events::Model) -> Result<AuditEvent, RepositoryError> {
    Ok(AuditEvent {
        id: row.id,
        key_id: KeyId::from_uuid(row.key_id),
        org_id: OrgId::from_uuid(row.org_id),
        action: row
            .action
            .parse()
            .map_err(|_| RepositoryError::Unexpected(anyhow!("audit event {} has an unknown action", row.id)))?,
        actor: row.actor.map(Subject::restore),
        occurred_at: row.occurred_at,
        request_id: row.request_id,
        // A name this release does not know (written by a later one, before a
        // rollback) is left out of the trail rather than failing all of it.
        fields: row
            .fields
            .split_whitespace()
            .filter_map(|name| match name.parse() {
                Ok(field) => Some(field),
                Err(_) => {
                    tracing::warn!(event_id = %row.id, field = name, "audit event names a field this release does not know");
                    None
                }
            })
            .collect(),
        leak: leak_of(row.id, row.leak_source.as_deref(), row.leak_url.as_deref())?,
    })
}

pub(crate) fn leak_of(
    id: Uuid,
    source: Option<&str>,
    url: Option<&str>,
) -> Result<Option<LeakReport>, RepositoryError> {
    let corrupt = |what: &str| RepositoryError::Unexpected(anyhow!("audit event {id} has an invalid leak {what}"));
    let Some(source) = source else {
        return if url.is_some() {
            Err(corrupt("url without a source"))
        } else {
            Ok(None)
        };
    };
    Ok(Some(LeakReport {
        source: LeakSource::parse(source).map_err(|_| corrupt("source"))?,
        url: url.map(LeakUrl::parse).transpose().map_err(|_| corrupt("url"))?,
    }))
}

/// A key's limits as stored: `name,limit,duration_ms,auto` entries separated by
/// single spaces (names hold neither commas nor spaces).
pub(crate) fn ratelimits_text(limits: &RateLimits) -> String {
    limits
        .iter()
        .map(|l| {
            format!(
                "{},{},{},{}",
                l.name(),
                l.limit(),
                l.duration_ms(),
                u8::from(l.auto_apply())
            )
        })
        .collect::<Vec<_>>()
        .join(" ")
}

pub(crate) fn ratelimits_of(text: &str) -> Option<RateLimits> {
    let limits: Option<Vec<RateLimit>> = text
        .split_whitespace()
        .map(|entry| {
            let mut fields = entry.split(',');
            let name = fields.next()?;
            let limit = fields.next()?.parse().ok()?;
            let duration = fields.next()?.parse().ok()?;
            let auto = match fields.next()? {
                "1" => true,
                "0" => false,
                _ => return None,
            };
            RateLimit::new(name, limit, duration, auto).ok()
        })
        .collect();
    RateLimits::new(limits?).ok()
}

/// `daily:<amount>` or `monthly:<amount>:<day>`.
pub(crate) fn refill_text(refill: &Refill) -> String {
    match refill.day() {
        Some(day) => format!("{}:{}:{day}", refill.interval().as_str(), refill.amount()),
        None => format!("{}:{}", refill.interval().as_str(), refill.amount()),
    }
}

pub(crate) fn refill_of(text: &str) -> Option<Refill> {
    let mut fields = text.split(':');
    let interval = fields.next()?.parse().ok()?;
    let amount = fields.next()?.parse().ok()?;
    let day = fields.next().map(str::parse).transpose().ok()?;
    Refill::new(interval, amount, day).ok()
}

/// The credits columns of a row back as domain credits; `Ok(None)` is unlimited.
pub(crate) fn credits_of(
    remaining: Option<i64>,
    period: Option<DateTime<Utc>>,
    refill: Option<&str>,
) -> Result<Option<Credits>, ()> {
    match (remaining, period) {
        (None, _) => Ok(None),
        (Some(remaining), Some(period)) => {
            let remaining = u64::try_from(remaining).map_err(|_| ())?;
            let refill = refill.map(|text| refill_of(text).ok_or(())).transpose()?;
            Ok(Some(Credits::from_parts(remaining, refill, period)))
        }
        (Some(_), None) => Err(()),
    }
}

pub(crate) fn types_text(types: &EventTypes) -> String {
    let names: Vec<&str> = types.iter().map(EventType::as_str).collect();
    format!(" {} ", names.join(" "))
}

pub(crate) fn types_of(text: &str) -> Option<EventTypes> {
    let types: Option<Vec<EventType>> = text.split_whitespace().map(|name| name.parse().ok()).collect();
    EventTypes::new(types?).ok()
}

pub(crate) fn corrupt_webhook_row(what: &str, id: Uuid) -> RepositoryError {
    RepositoryError::Unexpected(anyhow!("stored webhook data {id} has an invalid {what}"))
}

pub(crate) fn health_of(row: &hooks::Model) -> EndpointHealth {
    EndpointHealth {
        consecutive_failures: u32::try_from(row.consecutive_failures).unwrap_or_default(),
        paused_until: row.paused_until,
    }
}

pub(crate) fn webhook_of(row: hooks::Model) -> Result<Webhook, RepositoryError> {
    let health = health_of(&row);
    Ok(Webhook {
        health,
        id: row.id,
        org_id: OrgId::from_uuid(row.org_id),
        url: WebhookUrl::restore(row.url),
        event_types: types_of(&row.event_types).ok_or_else(|| corrupt_webhook_row("event type list", row.id))?,
        enabled: row.enabled,
        created_at: row.created_at,
        updated_at: row.updated_at,
    })
}

pub(crate) fn delivery_of(row: deliveries::Model, tries: Vec<attempts::Model>) -> Result<Delivery, RepositoryError> {
    Ok(Delivery {
        id: row.id,
        seq: row.seq,
        webhook_id: row.webhook_id,
        key_id: KeyId::from_uuid(row.key_id),
        event_type: row
            .event_type
            .parse()
            .map_err(|_| corrupt_webhook_row("event type", row.id))?,
        status: DeliveryStatus::parse(&row.status).ok_or_else(|| corrupt_webhook_row("status", row.id))?,
        created_at: row.created_at,
        next_attempt_at: (row.status == DeliveryStatus::Pending.as_str())
            .then_some(row.next_attempt_at)
            .flatten(),
        attempts: tries
            .into_iter()
            .map(|attempt| Attempt {
                attempted_at: attempt.attempted_at,
                latency_ms: u64::try_from(attempt.latency_ms).unwrap_or_default(),
                status_code: attempt.status_code.and_then(|code| u16::try_from(code).ok()),
                error: attempt.error,
            })
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use keymint_domain::RefillInterval;

    #[test]
    fn stored_texts_read_back_to_the_same_values() {
        let limits = RateLimits::new(vec![
            RateLimit::new("per-second", 10, 1_000, true).unwrap(),
            RateLimit::new("a.b:c_d-e", 1_000_000_000, 2_592_000_000, false).unwrap(),
        ])
        .unwrap();
        assert_eq!(ratelimits_of(&ratelimits_text(&limits)), Some(limits));
        assert_eq!(ratelimits_of(""), Some(RateLimits::default()));
        assert_eq!(ratelimits_of("a,1,1000,2"), None);
        for refill in [
            Refill::new(RefillInterval::Daily, 5, None).unwrap(),
            Refill::new(RefillInterval::Monthly, 1_000, Some(31)).unwrap(),
        ] {
            assert_eq!(refill_of(&refill_text(&refill)), Some(refill));
        }
    }
}
