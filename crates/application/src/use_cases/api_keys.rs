use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use keymint_domain::{
    check_expiry, ApiKey, AuditAction, AuditEvent, Credential, Credits, Environment, ExpiryError, KeyDescription,
    KeyDigest, KeyField, KeyId, KeyMaterial, KeyMeta, KeyName, LeakReport, LookupId, NameSearch, NewApiKey, OrgId,
    OwnerId, Permissions, PresentedKey, PrivateKey, RateLimits, RotateError, SecretHash,
};

use crate::{
    Clock, CreditChange, CreditChangeOutcome, CreditChangeRefusal, DigestFilter, EventCursor, EventQuery, Idempotency,
    KeyCursor, KeyGenerator, KeyQuery, KeyStore, MissingPermission, NoDigestFilter, NoVerificationCache, Permission,
    Principal, RepositoryError, SecretHasher, UsageLedger, VerificationCache,
};

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

/// Why a key could not be created.
#[derive(Debug, thiserror::Error)]
pub enum CreateApiKeyError {
    /// The actor may not create keys.
    #[error(transparent)]
    Forbidden(#[from] MissingPermission),
    /// `expires_at` is in the past or too far ahead.
    #[error(transparent)]
    InvalidExpiry(#[from] ExpiryError),
    /// The organisation already holds the most active keys it may.
    #[error("the organisation already has {max} active keys")]
    LimitReached {
        /// The configured maximum.
        max: u32,
    },
    /// Storage is unreachable; nothing was stored and retrying may succeed.
    #[error("storage is unavailable")]
    StorageUnavailable(#[source] anyhow::Error),
    /// Anything else.
    #[error(transparent)]
    Unexpected(anyhow::Error),
}

/// One key to bring in from another key system: what a create takes, and the
/// private key it already has.
#[derive(Debug)]
pub struct KeyImport {
    /// The key's name, environment, permissions and the rest, as for a create.
    pub request: NewApiKey,
    /// Its private key, or only the private key's digest.
    pub secret: ImportedSecret,
}

/// The private key of a key brought in.
#[derive(Debug)]
pub enum ImportedSecret {
    /// The private key itself. It is hashed and dropped, never stored. A key
    /// in this deployment's own format keeps its lookup id; any other is found
    /// by its digest.
    Key(PresentedKey),
    /// The SHA-256 digest of the private key, as another system exported it.
    Sha256(KeyDigest),
}

/// Why one key could not be brought in; the others are unaffected.
#[derive(Debug, thiserror::Error)]
pub enum ImportRefusal {
    /// A stored key (in this organisation or another: which is not said)
    /// already has this private key, or the batch had it twice.
    #[error("this private key is already stored")]
    Duplicate,
    /// `expires_at` is in the past or too far ahead.
    #[error(transparent)]
    InvalidExpiry(#[from] ExpiryError),
    /// The organisation already holds the most active keys it may.
    #[error("the organisation already has {max} active keys")]
    LimitReached {
        /// The configured maximum.
        max: u32,
    },
    /// Storage could not be reached for this item (nor is tried again for
    /// the rest of the batch); retrying it later may succeed.
    #[error("storage is unavailable; nothing was stored for this key")]
    StorageUnavailable,
    /// Anything else went wrong with this item; nothing was stored for it.
    #[error("the key could not be stored")]
    Unexpected(#[source] anyhow::Error),
}

/// Why an operation on existing keys failed.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The actor may not do this.
    #[error(transparent)]
    Forbidden(#[from] MissingPermission),
    /// No such key in the caller's organisation.
    #[error("no such key")]
    NotFound,
    /// Storage is unreachable; nothing changed and retrying may succeed.
    #[error("storage is unavailable")]
    StorageUnavailable(#[source] anyhow::Error),
    /// Anything else.
    #[error(transparent)]
    Unexpected(anyhow::Error),
}

/// Why a key's credits could not be changed.
#[derive(Debug, thiserror::Error)]
pub enum ChangeCreditsError {
    /// The actor may not change keys.
    #[error(transparent)]
    Forbidden(#[from] MissingPermission),
    /// No such key in the caller's organisation.
    #[error("no such key")]
    NotFound,
    /// The key has unlimited use.
    #[error("the key has unlimited use; give it credits with an update first")]
    Unlimited,
    /// The change was refused; nothing changed.
    #[error("the change would take the credits out of range")]
    Refused(CreditChangeRefusal),
    /// The idempotency key was first used for a different request.
    #[error("the idempotency key was used for a different request")]
    IdempotencyMismatch,
    /// Storage is unreachable; nothing changed and retrying may succeed.
    #[error("storage is unavailable")]
    StorageUnavailable(#[source] anyhow::Error),
    /// Anything else.
    #[error(transparent)]
    Unexpected(anyhow::Error),
}

/// How long an idempotency key's answer is replayed.
pub const IDEMPOTENCY_WINDOW_HOURS: i64 = 24;

/// Why a key could not be rotated.
#[derive(Debug, thiserror::Error)]
pub enum RotateApiKeyError {
    /// The actor may not rotate keys.
    #[error(transparent)]
    Forbidden(#[from] MissingPermission),
    /// No such key in the caller's organisation.
    #[error("no such key")]
    NotFound,
    /// The domain refused: a grace period out of bounds, or a revoked or expired
    /// key.
    #[error(transparent)]
    Refused(#[from] RotateError),
    /// Storage is unreachable; nothing changed and retrying may succeed.
    #[error("storage is unavailable")]
    StorageUnavailable(#[source] anyhow::Error),
    /// Anything else.
    #[error(transparent)]
    Unexpected(anyhow::Error),
}

/// Storage failures every error enum shares.
enum Storage {
    Unavailable(anyhow::Error),
    Unexpected(anyhow::Error),
}

impl From<RepositoryError> for Storage {
    fn from(err: RepositoryError) -> Self {
        match err {
            RepositoryError::Unavailable(e) => Storage::Unavailable(e),
            other => Storage::Unexpected(other.into()),
        }
    }
}

impl From<Storage> for KeyError {
    fn from(err: Storage) -> Self {
        match err {
            Storage::Unavailable(e) => KeyError::StorageUnavailable(e),
            Storage::Unexpected(e) => KeyError::Unexpected(e),
        }
    }
}

impl From<RepositoryError> for KeyError {
    fn from(err: RepositoryError) -> Self {
        Storage::from(err).into()
    }
}

impl From<RepositoryError> for RotateApiKeyError {
    fn from(err: RepositoryError) -> Self {
        match Storage::from(err) {
            Storage::Unavailable(e) => RotateApiKeyError::StorageUnavailable(e),
            Storage::Unexpected(e) => RotateApiKeyError::Unexpected(e),
        }
    }
}

/// Fresh draws colliding with stored ids or keys is astronomically unlikely (≥ 95
/// random bits each); a few redraws turn one into a non-event rather than an error.
const MAX_COLLISION_ATTEMPTS: usize = 3;
/// How often a change is re-applied when another writer changed the key between
/// our read and our write. Each retry re-reads, so the change applies to the
/// latest state; contention beyond this many rounds is reported, not looped on.
const MAX_STALE_RETRIES: usize = 16;

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

    /// Brings in keys from another key system with the private keys they
    /// already have, so that nobody has to hand out new ones. Each item is
    /// decided on its own, in order: the answer has one result per item, and
    /// one refused item changes nothing for the others. An imported key is an
    /// ordinary key from then on; its audit trail starts with `imported`.
    pub async fn import(
        &self,
        actor: &Actor,
        items: Vec<KeyImport>,
    ) -> Result<Vec<Result<ApiKey, ImportRefusal>>, MissingPermission> {
        actor.authorize(Permission::Write)?;
        let mut results = Vec::with_capacity(items.len());
        let mut unavailable = false;
        for item in items {
            if unavailable {
                results.push(Err(ImportRefusal::StorageUnavailable));
                continue;
            }
            let result = self.import_one(actor, item).await;
            unavailable = matches!(result, Err(ImportRefusal::StorageUnavailable));
            results.push(result);
        }
        Ok(results)
    }

    async fn import_one(&self, actor: &Actor, item: KeyImport) -> Result<ApiKey, ImportRefusal> {
        let KeyImport { request, secret } = item;
        let now = self.clock.now();
        if let Some(expires_at) = request.expires_at() {
            check_expiry(expires_at, now, self.policy.max_expiry)?;
        }
        // Every imported key is stored as its SHA-256, whatever the
        // deployment hashes new keys with: that is the form other systems
        // export, and what lets storage refuse the same key imported twice in
        // any form. A key in this deployment's format keeps its lookup id;
        // any other is found by its digest.
        let (lookup_id, digest, display, lookup_digest) = match &secret {
            ImportedSecret::Key(PresentedKey::Issued(private)) => (
                Some(private.lookup_id()),
                KeyDigest::of(private.expose_secret()),
                private.display(),
                None,
            ),
            ImportedSecret::Key(PresentedKey::Foreign(foreign)) => {
                let digest = foreign.digest();
                (None, digest, foreign.display(), Some(digest))
            }
            ImportedSecret::Sha256(digest) => (None, *digest, digest.display(), Some(*digest)),
        };
        let secret_hash = SecretHash::sha256(&digest);
        // Before the insert: a moment's "maybe" for a key not yet stored costs
        // one read; a moment's "no" for a stored one would refuse it.
        if let Some(digest) = &lookup_digest {
            self.digests.add(digest);
        }
        for attempt in 1..=MAX_COLLISION_ATTEMPTS {
            // The drawn private key is discarded: only its public key, and for
            // a key without a lookup id its (never presented) lookup id, are used.
            let material = self.generator.material(request.environment());
            let credential = Credential {
                lookup_id: lookup_id.clone().unwrap_or_else(|| material.lookup_id()),
                secret_hash: secret_hash.clone(),
                display: display.clone(),
                lookup_digest,
            };
            let (public_key, _) = material.into_parts();
            let key = ApiKey::issue(request.clone(), self.generator.key_id(), public_key, credential, now);
            let event = self.event(actor, key.id(), AuditAction::Imported, Vec::new(), now);
            match self.store.insert(&key, &event, self.policy.max_active_keys, now).await {
                Ok(()) => return Ok(key),
                // The imported private key is taken, or (astronomically rarely)
                // a drawn id is: only a redraw tells which.
                Err(RepositoryError::Conflict) if attempt < MAX_COLLISION_ATTEMPTS => {}
                Err(RepositoryError::Conflict) => return Err(ImportRefusal::Duplicate),
                Err(RepositoryError::LimitReached) => {
                    return Err(ImportRefusal::LimitReached {
                        max: self.policy.max_active_keys,
                    })
                }
                Err(RepositoryError::Unavailable(_)) => return Err(ImportRefusal::StorageUnavailable),
                Err(err) => return Err(ImportRefusal::Unexpected(err.into())),
            }
        }
        Err(ImportRefusal::Duplicate)
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

#[cfg(test)]
mod tests;
