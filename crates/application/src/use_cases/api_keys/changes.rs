//! Changes to an existing key (an update, a revocation, a leak report, a
//! rotation): each reads the key, changes it and writes it back, applied
//! again to a fresh read when another writer got there first, so that
//! concurrent changes never overwrite each other.

use chrono::{DateTime, Duration, Utc};
use keymint_domain::{
    ApiKey, AuditAction, AuditEvent, Credits, KeyDescription, KeyField, KeyId, KeyMeta, KeyName, LeakReport, LookupId,
    OwnerId, Permissions, RateLimits,
};

use super::errors::{KeyError, RotateApiKeyError};
use super::{credential_of, Actor, ApiKeys, CreatedApiKey};
use crate::{Permission, RepositoryError};

/// A change to a key's name and description; `None` leaves a field as it is.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KeyPatch {
    /// A new name.
    pub name: Option<KeyName>,
    /// A new description; `Some(None)` clears it.
    pub description: Option<Option<KeyDescription>>,
    /// New permissions (empty: none).
    pub permissions: Option<Permissions>,
    /// A new owner; `Some(None)` clears it.
    pub owner_id: Option<Option<OwnerId>>,
    /// New metadata; `Some(None)` clears it.
    pub meta: Option<Option<KeyMeta>>,
    /// New rate limits (empty: none).
    pub ratelimits: Option<RateLimits>,
    /// New credits, set anew; `Some(None)` makes use unlimited.
    pub credits: Option<Option<Credits>>,
}

/// How often a change is re-applied when another writer changed the key between
/// our read and our write. Each retry re-reads, so the change applies to the
/// latest state; contention beyond this many rounds is reported, not looped on.
const MAX_STALE_RETRIES: usize = 16;

impl ApiKeys {
    /// Reads, changes and writes back a key, re-reading and re-applying when a
    /// concurrent writer got there first. `change` returns `None` when it changed
    /// nothing (an unchanged key is neither written nor audited), else the
    /// fields to name in the audit event.
    async fn modify<E>(
        &self,
        actor: &Actor,
        id: KeyId,
        action: AuditAction,
        leak: Option<&LeakReport>,
        mut change: impl FnMut(&mut ApiKey, DateTime<Utc>) -> Result<Option<Vec<KeyField>>, E>,
    ) -> Result<ApiKey, Modify<E>> {
        for _ in 0..MAX_STALE_RETRIES {
            let mut key = self.store.find(actor.org_id(), id).await?.ok_or(Modify::NotFound)?;
            let now = self.clock.now();
            let read_revision = key.revision();
            let Some(fields) = change(&mut key, now).map_err(Modify::Refused)? else {
                return Ok(key);
            };
            let event = AuditEvent {
                leak: leak.cloned(),
                ..self.event(actor, id, action, fields, now)
            };
            match self.store.update(&key, read_revision, &event).await {
                Ok(()) => {
                    self.cache.evict_key(id);
                    return Ok(key);
                }
                Err(RepositoryError::Stale) => continue,
                Err(err) => return Err(err.into()),
            }
        }
        Err(Modify::Repository(RepositoryError::Unexpected(anyhow::anyhow!(
            "key {id} kept changing under {MAX_STALE_RETRIES} attempts to {action} it"
        ))))
    }

    /// Renames a key and/or replaces its description.
    pub async fn update(&self, actor: &Actor, id: KeyId, patch: KeyPatch) -> Result<ApiKey, KeyError> {
        actor.authorize(Permission::Write)?;
        self.modify(actor, id, AuditAction::Updated, None, |key, now| {
            let mut fields = Vec::new();
            if patch.name.clone().is_some_and(|name| key.rename(name)) {
                fields.push(KeyField::Name);
            }
            if patch
                .description
                .clone()
                .is_some_and(|description| key.set_description(description))
            {
                fields.push(KeyField::Description);
            }
            if patch
                .permissions
                .clone()
                .is_some_and(|permissions| key.set_permissions(permissions))
            {
                fields.push(KeyField::Permissions);
            }
            if patch.owner_id.clone().is_some_and(|owner| key.set_owner_id(owner)) {
                fields.push(KeyField::OwnerId);
            }
            if patch.meta.clone().is_some_and(|meta| key.set_meta(meta)) {
                fields.push(KeyField::Meta);
            }
            if patch
                .ratelimits
                .clone()
                .is_some_and(|ratelimits| key.set_ratelimits(ratelimits))
            {
                fields.push(KeyField::Ratelimits);
            }
            // Storage writes the credit balance only when the event names
            // `credits`: a change of anything else must not undo spending.
            if patch
                .credits
                .is_some_and(|credits| key.set_credits(credits.map(|credits| credits.set_at(now))))
            {
                fields.push(KeyField::Credits);
            }
            Ok::<_, std::convert::Infallible>((!fields.is_empty()).then_some(fields))
        })
        .await
        .map_err(|err| err.into_key_error(|never| match never {}))
    }

    /// Revokes a key, once: revoking a revoked key succeeds and changes nothing.
    pub async fn revoke(&self, actor: &Actor, id: KeyId) -> Result<ApiKey, KeyError> {
        actor.authorize(Permission::Write)?;
        self.modify(actor, id, AuditAction::Revoked, None, |key, now| {
            Ok::<_, std::convert::Infallible>(key.revoke(now).then(Vec::new))
        })
        .await
        .map_err(|err| err.into_key_error(|never| match never {}))
    }

    /// Records that the private key with `lookup_id` of key `id` leaked, as
    /// `report` says, and with `take_out_of_use` stops it verifying (see
    /// [`ApiKey::report_leak`]). The reporter is not authorised by permissions:
    /// the caller has established that the report is genuine (a signed scanner
    /// report, or the private key itself). Returns whether anything changed; a
    /// repeated report is neither written nor audited again.
    pub async fn report_leak(
        &self,
        reporter: &Actor,
        id: KeyId,
        lookup_id: &LookupId,
        report: &LeakReport,
        take_out_of_use: bool,
    ) -> Result<bool, KeyError> {
        // Each attempt (a stale write is re-applied to a fresh read) says anew
        // whether it changed anything; the last one is what was written.
        let mut changed = false;
        self.modify(reporter, id, AuditAction::Leaked, Some(report), |key, now| {
            changed = key.report_leak(lookup_id, take_out_of_use, now);
            Ok::<_, std::convert::Infallible>(changed.then(Vec::new))
        })
        .await
        .map_err(|err| err.into_key_error(|never| match never {}))?;
        Ok(changed)
    }

    /// Gives a key a new private key, returned once. The previous private key
    /// keeps verifying for `grace_period` (zero: not at all).
    pub async fn rotate(
        &self,
        actor: &Actor,
        id: KeyId,
        grace_period: Duration,
    ) -> Result<CreatedApiKey, RotateApiKeyError> {
        actor.authorize(Permission::Write)?;
        // A grace period out of bounds is refused before any I/O.
        ApiKey::check_grace_period(grace_period)?;
        let current = self
            .store
            .find(actor.org_id(), id)
            .await?
            .ok_or(RotateApiKeyError::NotFound)?;
        // Refuse before paying for a hash; `modify` checks again against fresh state.
        current.check_rotation(grace_period, self.clock.now())?;
        let material = self
            .generator
            .rotation(current.public_key().clone(), current.environment());
        let hash = self
            .hasher
            .hash(material.private_key())
            .await
            .map_err(|e| RotateApiKeyError::Unexpected(e.into()))?;
        let credential = credential_of(&material, hash);
        let key = self
            .modify(actor, id, AuditAction::Rotated, None, |key, now| {
                key.rotate(credential.clone(), grace_period, now)
                    .map(|()| Some(Vec::new()))
            })
            .await
            .map_err(|err| match err {
                Modify::NotFound => RotateApiKeyError::NotFound,
                Modify::Refused(reason) => RotateApiKeyError::Refused(reason),
                Modify::Repository(err) => err.into(),
            })?;
        let (_, private_key) = material.into_parts();
        Ok(CreatedApiKey { key, private_key })
    }
}

enum Modify<E> {
    NotFound,
    Refused(E),
    Repository(RepositoryError),
}

impl<E> From<RepositoryError> for Modify<E> {
    fn from(err: RepositoryError) -> Self {
        Modify::Repository(err)
    }
}

impl<E> Modify<E> {
    fn into_key_error(self, refused: impl FnOnce(E) -> KeyError) -> KeyError {
        match self {
            Modify::NotFound => KeyError::NotFound,
            Modify::Refused(reason) => refused(reason),
            Modify::Repository(err) => err.into(),
        }
    }
}
