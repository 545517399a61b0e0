//! Bringing in keys from another key system with the private keys they
//! already have: what an import takes, why one key of it may be refused, and
//! the import itself, which decides each key on its own.

use keymint_domain::{
    check_expiry, ApiKey, AuditAction, Credential, ExpiryError, KeyDigest, NewApiKey, PresentedKey, SecretHash,
};

use super::{Actor, ApiKeys, MAX_COLLISION_ATTEMPTS};
use crate::{MissingPermission, Permission, RepositoryError};

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

impl ApiKeys {
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
}
