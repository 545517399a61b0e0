//! Every operation on API keys, as methods of [`ApiKeys`]. Creating,
//! listing, reading, deleting, credits and the audit trail are here; the
//! error enums (`errors`), the import of keys from another system (`import`)
//! and the changes that read, change and write back a key (`changes`) each
//! have their own module.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use keymint_domain::{
    check_expiry, ApiKey, AuditAction, AuditEvent, Credential, Credits, Environment, KeyField, KeyId, KeyMaterial,
    NameSearch, NewApiKey, OrgId, OwnerId, PrivateKey,
};

use crate::{
    Clock, CreditChange, CreditChangeOutcome, DigestFilter, EventCursor, EventQuery, Idempotency, KeyCursor,
    KeyGenerator, KeyQuery, KeyStore, MissingPermission, NoDigestFilter, NoVerificationCache, Permission, Principal,
    RepositoryError, SecretHasher, UsageLedger, VerificationCache,
};

mod changes;
mod errors;
mod import;

pub use changes::KeyPatch;
pub use errors::{ChangeCreditsError, CreateApiKeyError, KeyError, RotateApiKeyError};
pub use import::{ImportRefusal, ImportedSecret, KeyImport};

use errors::Storage;

/// Who is acting, for authorisation and the audit trail.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Actor {
    principal: Principal,
    request_id: Option<String>,
}

impl Actor {
    /// The authenticated `principal`, acting in the request `request_id`.
    pub fn new(principal: &Principal, request_id: Option<String>) -> Self {
        Self {
            principal: principal.clone(),
            request_id,
        }
    }

    /// The organisation acted for.
    pub fn org_id(&self) -> OrgId {
        self.principal.org_id()
    }

    /// Checks that the actor may do what `permission` covers. Every operation
    /// calls this first: reads need [`Permission::Read`], changes
    /// [`Permission::Write`]. Adapters call it too, to refuse before reading a
    /// large request body.
    pub fn authorize(&self, permission: Permission) -> Result<(), MissingPermission> {
        self.principal.authorize(permission)
    }
}

/// The rules an operator configures.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeyPolicy {
    /// The most unrevoked, unexpired keys an organisation may hold.
    pub max_active_keys: u32,
    /// How far ahead `expires_at` may be.
    pub max_expiry: Duration,
}

impl Default for KeyPolicy {
    fn default() -> Self {
        Self {
            max_active_keys: 1000,
            max_expiry: Duration::days(730),
        }
    }
}

/// A key with its private key, right after creation or rotation: the only moment
/// the private key exists outside its owner's hands.
#[derive(Debug)]
pub struct CreatedApiKey {
    /// The stored key.
    pub key: ApiKey,
    /// The private key, to show once.
    pub private_key: PrivateKey,
}

/// One page of a newest-first listing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Page<T, C> {
    /// The items, newest first.
    pub items: Vec<T>,
    /// Where the next page starts, if there is one.
    pub next: Option<C>,
}

/// Which keys to list.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KeyFilter {
    /// Only this environment.
    pub environment: Option<Environment>,
    /// Only revoked (`true`) or unrevoked (`false`) keys.
    pub revoked: Option<bool>,
    /// Only keys of this owner.
    pub owner_id: Option<OwnerId>,
    /// Only keys whose name contains this, ignoring case.
    pub name: Option<NameSearch>,
}

/// How long an idempotency key's answer is replayed.
pub const IDEMPOTENCY_WINDOW_HOURS: i64 = 24;

/// Fresh draws colliding with stored ids or keys is astronomically unlikely (≥ 95
/// random bits each); a few redraws turn one into a non-event rather than an error.
const MAX_COLLISION_ATTEMPTS: usize = 3;

/// Every operation on API keys: create, list, get, update, revoke, rotate, delete,
/// and the audit trail. Organisation scoping, expiry, revocation and rotation
/// rules live here; adapters only store and load.
#[derive(Clone)]
pub struct ApiKeys {
    store: Arc<dyn KeyStore>,
    hasher: Arc<dyn SecretHasher>,
    generator: Arc<dyn KeyGenerator>,
    clock: Arc<dyn Clock>,
    policy: KeyPolicy,
    cache: Arc<dyn VerificationCache>,
    ledger: Option<Arc<dyn UsageLedger>>,
    digests: Arc<dyn DigestFilter>,
}

impl std::fmt::Debug for ApiKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiKeys")
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

fn credential_of(material: &KeyMaterial, secret_hash: keymint_domain::SecretHash) -> Credential {
    Credential {
        lookup_id: material.lookup_id(),
        secret_hash,
        display: material.private_key().display(),
        lookup_digest: None,
    }
}

impl ApiKeys {
    /// Wires the use cases to their ports.
    pub fn new(
        store: Arc<dyn KeyStore>,
        hasher: Arc<dyn SecretHasher>,
        generator: Arc<dyn KeyGenerator>,
        clock: Arc<dyn Clock>,
        policy: KeyPolicy,
    ) -> Self {
        Self {
            store,
            hasher,
            generator,
            clock,
            policy,
            cache: Arc::new(NoVerificationCache),
            ledger: None,
            digests: Arc::new(NoDigestFilter),
        }
    }

    /// The same use cases, telling `digests` of every lookup digest stored by
    /// an import, so that this process's verifications find those keys at once.
    pub fn with_digest_filter(mut self, digests: Arc<dyn DigestFilter>) -> Self {
        self.digests = digests;
        self
    }

    /// The same use cases, changing credits through `ledger`.
    pub fn with_ledger(mut self, ledger: Arc<dyn UsageLedger>) -> Self {
        self.ledger = Some(ledger);
        self
    }

    /// Sets, increments or decrements a key's remaining credits, atomically with
    /// the verifications spending them. With an `idempotency_key`, a retry of
    /// the same request within [`IDEMPOTENCY_WINDOW_HOURS`] gets the first
    /// answer back and changes nothing. Returns the credits after the change
    /// and whether this answer is a replay.
    pub async fn change_credits(
        &self,
        actor: &Actor,
        id: KeyId,
        change: CreditChange,
        idempotency_key: Option<String>,
    ) -> Result<(Credits, bool), ChangeCreditsError> {
        actor.authorize(Permission::Write)?;
        let ledger = self
            .ledger
            .as_ref()
            .ok_or_else(|| ChangeCreditsError::Unexpected(anyhow::anyhow!("no usage ledger is wired")))?;
        let now = self.clock.now();
        let idempotency = idempotency_key.map(|key| Idempotency {
            key,
            fingerprint: format!("credits {id} {} {}", change.op.as_str(), change.value),
            not_before: now - Duration::hours(IDEMPOTENCY_WINDOW_HOURS),
        });
        let event = self.event(actor, id, AuditAction::Updated, vec![KeyField::Credits], now);
        let outcome = ledger
            .change_credits(actor.org_id(), id, change, &event, idempotency.as_ref(), now)
            .await
            .map_err(|err| match Storage::from(err) {
                Storage::Unavailable(e) => ChangeCreditsError::StorageUnavailable(e),
                Storage::Unexpected(e) => ChangeCreditsError::Unexpected(e),
            })?;
        match outcome {
            CreditChangeOutcome::Applied(credits) => Ok((credits, false)),
            CreditChangeOutcome::Replayed(credits) => Ok((credits, true)),
            CreditChangeOutcome::IdempotencyMismatch => Err(ChangeCreditsError::IdempotencyMismatch),
            CreditChangeOutcome::NotFound => Err(ChangeCreditsError::NotFound),
            CreditChangeOutcome::Unlimited => Err(ChangeCreditsError::Unlimited),
            CreditChangeOutcome::Refused(refusal) => Err(ChangeCreditsError::Refused(refusal)),
        }
    }

    /// The same use cases, forgetting `cache`'s remembered verifications of a key
    /// as soon as it is revoked, rotated, deleted or renamed.
    pub fn with_cache(mut self, cache: Arc<dyn VerificationCache>) -> Self {
        self.cache = cache;
        self
    }

    fn event(
        &self,
        actor: &Actor,
        key_id: KeyId,
        action: AuditAction,
        fields: Vec<KeyField>,
        now: DateTime<Utc>,
    ) -> AuditEvent {
        AuditEvent {
            fields,
            leak: None,
            id: self.generator.event_id(),
            key_id,
            org_id: actor.org_id(),
            action,
            actor: actor.principal.subject().cloned(),
            occurred_at: now,
            request_id: actor.request_id.clone(),
        }
    }

    /// Issues a key: draws key material, stores only the private key's hash, and
    /// hands the private key back exactly once.
    pub async fn create(&self, actor: &Actor, request: NewApiKey) -> Result<CreatedApiKey, CreateApiKeyError> {
        actor.authorize(Permission::Write)?;
        let now = self.clock.now();
        if let Some(expires_at) = request.expires_at() {
            check_expiry(expires_at, now, self.policy.max_expiry)?;
        }
        let mut attempt = 0;
        loop {
            attempt += 1;
            let material = self.generator.material(request.environment());
            let hash = self
                .hasher
                .hash(material.private_key())
                .await
                .map_err(|e| CreateApiKeyError::Unexpected(e.into()))?;
            let credential = credential_of(&material, hash);
            let (public_key, private_key) = material.into_parts();
            let key = ApiKey::issue(request.clone(), self.generator.key_id(), public_key, credential, now);
            let event = self.event(actor, key.id(), AuditAction::Created, Vec::new(), now);
            match self.store.insert(&key, &event, self.policy.max_active_keys, now).await {
                Ok(()) => return Ok(CreatedApiKey { key, private_key }),
                Err(RepositoryError::Conflict) if attempt < MAX_COLLISION_ATTEMPTS => {
                    tracing::warn!(attempt, "freshly drawn key collided with a stored one; drawing again");
                }
                Err(RepositoryError::LimitReached) => {
                    return Err(CreateApiKeyError::LimitReached {
                        max: self.policy.max_active_keys,
                    })
                }
                Err(err) => {
                    return Err(match Storage::from(err) {
                        Storage::Unavailable(e) => CreateApiKeyError::StorageUnavailable(e),
                        Storage::Unexpected(e) => CreateApiKeyError::Unexpected(e),
                    })
                }
            }
        }
    }

    /// One page of the organisation's keys, newest first.
    pub async fn list(
        &self,
        actor: &Actor,
        filter: KeyFilter,
        after: Option<KeyCursor>,
        limit: usize,
    ) -> Result<Page<ApiKey, KeyCursor>, KeyError> {
        actor.authorize(Permission::Read)?;
        let query = KeyQuery {
            org_id: actor.org_id(),
            environment: filter.environment,
            revoked: filter.revoked,
            owner_id: filter.owner_id,
            name: filter.name,
            after,
            limit: limit + 1,
        };
        let items = self.store.list(&query).await?;
        Ok(paginate(items, limit, |key| KeyCursor {
            created_at: key.created_at(),
            id: key.id(),
        }))
    }

    /// One key of the organisation.
    pub async fn get(&self, actor: &Actor, id: KeyId) -> Result<ApiKey, KeyError> {
        actor.authorize(Permission::Read)?;
        self.store.find(actor.org_id(), id).await?.ok_or(KeyError::NotFound)
    }

    /// Deletes a key. It stops existing for every read and every verification;
    /// its audit trail is kept.
    pub async fn delete(&self, actor: &Actor, id: KeyId) -> Result<(), KeyError> {
        actor.authorize(Permission::Write)?;
        let event = self.event(actor, id, AuditAction::Deleted, Vec::new(), self.clock.now());
        if self.store.delete(actor.org_id(), id, &event).await? {
            self.cache.evict_key(id);
            Ok(())
        } else {
            Err(KeyError::NotFound)
        }
    }

    /// One page of a key's audit trail, newest first. The trail outlives the key,
    /// so a deleted key's events stay readable; a key with no events is unknown.
    pub async fn events(
        &self,
        actor: &Actor,
        key_id: KeyId,
        after: Option<EventCursor>,
        limit: usize,
    ) -> Result<Page<AuditEvent, EventCursor>, KeyError> {
        actor.authorize(Permission::Read)?;
        let query = EventQuery {
            org_id: actor.org_id(),
            key_id,
            after,
            limit: limit + 1,
        };
        let items = self.store.events(&query).await?;
        if items.is_empty() && after.is_none() {
            return Err(KeyError::NotFound);
        }
        Ok(paginate(items, limit, |event| EventCursor {
            occurred_at: event.occurred_at,
            id: event.id,
        }))
    }
}

/// Turns `limit + 1` fetched items into a page and, if the extra one exists, a
/// cursor after the last item kept.
pub(crate) fn paginate<T, C>(mut items: Vec<T>, limit: usize, cursor: impl Fn(&T) -> C) -> Page<T, C> {
    let more = items.len() > limit;
    items.truncate(limit);
    let next = if more { items.last().map(cursor) } else { None };
    Page { items, next }
}

#[cfg(test)]
mod tests;
