//! Issuing a key: the request for one, validated before any key material
//! exists, the check of the expiry it asks for, and the issue that makes it
//! a stored [`ApiKey`].

use chrono::{DateTime, DurationRound, Utc};

use super::{ApiKey, ApiKeyParts, Credential};
use crate::{
    Credits, Environment, KeyDescription, KeyId, KeyMeta, KeyName, OrgId, OwnerId, Permissions, PublicKey, RateLimits,
};

/// A request for a new key, validated, before any key material exists.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewApiKey {
    org_id: OrgId,
    name: KeyName,
    description: Option<KeyDescription>,
    environment: Environment,
    expires_at: Option<DateTime<Utc>>,
    permissions: Permissions,
    owner_id: Option<OwnerId>,
    meta: Option<KeyMeta>,
    ratelimits: RateLimits,
    credits: Option<Credits>,
}

impl NewApiKey {
    /// Assembles a request from already validated parts; the key never expires
    /// unless [`NewApiKey::expiring_at`] says otherwise.
    pub fn new(org_id: OrgId, name: KeyName, description: Option<KeyDescription>, environment: Environment) -> Self {
        Self {
            org_id,
            name,
            description,
            environment,
            expires_at: None,
            permissions: Permissions::default(),
            owner_id: None,
            meta: None,
            ratelimits: RateLimits::default(),
            credits: None,
        }
    }

    /// The same request for a key with its own rate limits.
    pub fn with_ratelimits(mut self, ratelimits: RateLimits) -> Self {
        self.ratelimits = ratelimits;
        self
    }

    /// The rate limits the key will have.
    pub fn ratelimits(&self) -> &RateLimits {
        &self.ratelimits
    }

    /// The same request for a key with credits (`None`: unlimited use).
    pub fn with_credits(mut self, credits: Option<Credits>) -> Self {
        self.credits = credits;
        self
    }

    /// The credits the key will start with.
    pub fn credits(&self) -> Option<&Credits> {
        self.credits.as_ref()
    }

    /// The same request for a key carrying `meta`.
    pub fn with_meta(mut self, meta: Option<KeyMeta>) -> Self {
        self.meta = meta;
        self
    }

    /// The metadata the key will carry.
    pub fn meta(&self) -> Option<&KeyMeta> {
        self.meta.as_ref()
    }

    /// The same request for a key owned by `owner_id`.
    pub fn owned_by(mut self, owner_id: Option<OwnerId>) -> Self {
        self.owner_id = owner_id;
        self
    }

    /// Whom the key will belong to.
    pub fn owner_id(&self) -> Option<&OwnerId> {
        self.owner_id.as_ref()
    }

    /// The same request for a key holding `permissions`.
    pub fn with_permissions(mut self, permissions: Permissions) -> Self {
        self.permissions = permissions;
        self
    }

    /// The permissions the key will hold.
    pub fn permissions(&self) -> &Permissions {
        &self.permissions
    }

    /// The same request for a key that stops verifying at `expires_at`. Whether that
    /// moment is acceptable is checked with [`check_expiry`] when the key is issued.
    ///
    /// The time is kept to the microsecond, the precision every supported database
    /// stores, so the key reads back exactly as it was created.
    pub fn expiring_at(mut self, expires_at: Option<DateTime<Utc>>) -> Self {
        self.expires_at = expires_at.map(|at| at.duration_trunc(chrono::TimeDelta::microseconds(1)).unwrap_or(at));
        self
    }

    /// When the requested key should expire, if ever.
    pub fn expires_at(&self) -> Option<DateTime<Utc>> {
        self.expires_at
    }

    /// The organisation that will own the key.
    pub fn org_id(&self) -> OrgId {
        self.org_id
    }

    /// The requested name.
    pub fn name(&self) -> &KeyName {
        &self.name
    }

    /// The requested description, if any.
    pub fn description(&self) -> Option<&KeyDescription> {
        self.description.as_ref()
    }

    /// The environment the key is for.
    pub fn environment(&self) -> Environment {
        self.environment
    }
}

/// Why an expiry time was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ExpiryError {
    /// The time is not in the future.
    #[error("expires_at must be in the future")]
    NotInFuture,
    /// The time is further ahead than allowed.
    #[error("expires_at must be at most {max_days} days ahead")]
    TooFarAhead {
        /// The maximum, in days.
        max_days: i64,
    },
}

/// Checks that a requested expiry lies after `now` and at most `max_ahead` later.
pub fn check_expiry(
    expires_at: DateTime<Utc>,
    now: DateTime<Utc>,
    max_ahead: chrono::Duration,
) -> Result<(), ExpiryError> {
    if expires_at <= now {
        Err(ExpiryError::NotInFuture)
    } else if expires_at - now > max_ahead {
        Err(ExpiryError::TooFarAhead {
            max_days: max_ahead.num_days(),
        })
    } else {
        Ok(())
    }
}

impl ApiKey {
    /// Issues a key for `request`: a fresh, unrevoked, unused key created `now`.
    ///
    /// The caller supplies the id, the public key and the stored trace of the
    /// private key, so that this type never sees the secret itself.
    pub fn issue(
        request: NewApiKey,
        id: KeyId,
        public_key: PublicKey,
        credential: Credential,
        now: DateTime<Utc>,
    ) -> Self {
        Self {
            parts: ApiKeyParts {
                id,
                org_id: request.org_id,
                name: request.name,
                description: request.description,
                environment: request.environment,
                public_key,
                credential,
                previous: None,
                created_at: now,
                expires_at: request.expires_at,
                revoked_at: None,
                leaked_at: None,
                last_used_at: None,
                permissions: request.permissions,
                owner_id: request.owner_id,
                meta: request.meta,
                ratelimits: request.ratelimits,
                credits: request.credits.map(|credits| credits.set_at(now)),
                revision: 1,
            },
        }
    }
}
