//! Finding the stored key a presented key belongs to: by its lookup id, else
//! by its digest when the digest filter says a stored key may have it, then
//! one hash comparison (and a rehash of a hash in an older form).

use std::sync::atomic::Ordering::Relaxed;

use chrono::{DateTime, Utc};
use keymint_domain::{ApiKey, KeyId, LookupId, PresentedKey, PrivateKey, SecretHash};

use super::verdict::VerifyApiKeyError;
use super::VerifyApiKey;
use crate::RepositoryError;

impl VerifyApiKey {
    /// The stored key whose secret `key` is; `None` when nothing stored matches
    /// (unknown lookup id or digest, other environment, lapsed grace period,
    /// wrong secret).
    ///
    /// A key in this deployment's format is looked up by its lookup id. Any
    /// key is then looked up by its digest, if the digest filter says a stored
    /// key may have it: keys brought in from other systems, including ones in
    /// a format like Keymint's, are found that way.
    pub(super) async fn holder_of(
        &self,
        key: &PresentedKey,
        now: DateTime<Utc>,
    ) -> Result<Option<Holder>, VerifyApiKeyError> {
        if let PresentedKey::Issued(private) = key {
            match self.holder_by_lookup_id(private, now).await? {
                ByLookupId::Holder(holder) => return Ok(Some(*holder)),
                // A stored key has this lookup id: the presented key is that
                // key or nothing, never a key imported by its digest.
                ByLookupId::Mismatch => return Ok(None),
                ByLookupId::NoKey => {}
            }
        }
        let digest = key.digest();
        if !self.digests.may_hold(&digest) {
            self.stats.digest_filtered.fetch_add(1, Relaxed);
            return Ok(None);
        }
        self.stats.digest_reads.fetch_add(1, Relaxed);
        let Some(stored) = self.lookup.find_by_digest(&digest).await.map_err(storage_error)? else {
            return Ok(None);
        };
        let Some((hash, valid_until)) = stored.hash_for_digest(&digest, now) else {
            return Ok(None);
        };
        // The read matched the digest already; the stored hash is what decides.
        self.stats.sha256_checks.fetch_add(1, Relaxed);
        if !hash.sha256_digest().is_some_and(|stored| stored.matches(&digest)) {
            return Ok(None);
        }
        let lookup_id = if valid_until.is_some() {
            stored.previous_credential().map(|p| p.lookup_id.clone())
        } else {
            None
        }
        .unwrap_or_else(|| stored.lookup_id().clone());
        Ok(Some(Holder {
            key: stored,
            lookup_id,
            valid_until,
        }))
    }

    async fn holder_by_lookup_id(&self, key: &PrivateKey, now: DateTime<Utc>) -> Result<ByLookupId, VerifyApiKeyError> {
        let lookup_id = key.lookup_id();
        let Some(stored) = self.lookup.find_by_lookup(&lookup_id).await.map_err(storage_error)? else {
            return Ok(ByLookupId::NoKey);
        };
        if stored.environment() != key.environment() {
            return Ok(ByLookupId::Mismatch);
        }
        let Some((hash, valid_until)) = stored.hash_for(&lookup_id, now) else {
            return Ok(ByLookupId::Mismatch);
        };
        let counter = if hash.algorithm() == "sha256" {
            &self.stats.sha256_checks
        } else {
            &self.stats.argon2_checks
        };
        counter.fetch_add(1, Relaxed);
        let matched = self
            .hasher
            .verify(key, hash)
            .await
            .map_err(|e| VerifyApiKeyError::Unexpected(e.into()))?;
        if !matched {
            return Ok(ByLookupId::Mismatch);
        }
        if self.hasher.needs_rehash(hash) {
            self.rehash(stored.id(), key, hash).await;
        }
        Ok(ByLookupId::Holder(Box::new(Holder {
            key: stored,
            lookup_id,
            valid_until,
        })))
    }

    /// Stores `key`'s hash in the current form in place of `old`. A failure
    /// is logged and counted, not reported: the key verified, and the next
    /// verification tries again.
    async fn rehash(&self, id: KeyId, key: &PrivateKey, old: &SecretHash) {
        let replaced = match self.hasher.hash(key).await {
            Ok(new) => self.lookup.rehash(id, old, &new).await.map_err(anyhow::Error::from),
            Err(err) => Err(anyhow::Error::from(err)),
        };
        match replaced {
            Ok(true) => {
                self.stats.rehashed.fetch_add(1, Relaxed);
                tracing::debug!(key_id = %id, from = old.algorithm(), "stored hash replaced by the current form");
            }
            // Rotated meanwhile: the hash that verified is no longer stored.
            Ok(false) => {}
            Err(err) => {
                self.stats.rehash_failures.fetch_add(1, Relaxed);
                tracing::warn!(key_id = %id, error = %err, "could not store the key's hash in the current form");
            }
        }
    }
}

/// What a lookup by a presented key's lookup id found.
enum ByLookupId {
    /// No stored key has the lookup id.
    NoKey,
    /// A stored key has it, and the presented key is not (or no longer) its
    /// private key.
    Mismatch,
    /// The presented key is this stored key's (boxed: a key is large, and
    /// the other answers are the common ones).
    Holder(Box<Holder>),
}

/// A stored key a presented key belongs to.
pub(super) struct Holder {
    pub(super) key: ApiKey,
    /// Which of its private keys was presented.
    pub(super) lookup_id: LookupId,
    /// Set when that private key was rotated out: the end of its grace period.
    pub(super) valid_until: Option<DateTime<Utc>>,
}

fn storage_error(err: RepositoryError) -> VerifyApiKeyError {
    match err {
        RepositoryError::Unavailable(e) => VerifyApiKeyError::StorageUnavailable(e),
        other => VerifyApiKeyError::Unexpected(other.into()),
    }
}
