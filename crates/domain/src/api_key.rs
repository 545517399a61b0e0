//! An API key as Keymint stores it ([`ApiKey`]), the stored trace of its
//! private keys, and where it stands ([`KeyStatus`]). Issuing a key is in
//! `issue`, rotating one in `rotation`.

use chrono::{DateTime, Utc};

use crate::{
    Credits, Environment, KeyDescription, KeyDigest, KeyDisplay, KeyId, KeyMeta, KeyName, LookupId, OrgId, OwnerId,
    Permissions, PublicKey, RateLimits, SecretHash,
};

mod issue;
mod rotation;

pub use issue::{check_expiry, ExpiryError, NewApiKey};
pub use rotation::{RotateError, MAX_GRACE_PERIOD_SECONDS};

/// What is stored of one private key: enough to find it and to check it, never
/// enough to recompute it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Credential {
    /// The lookup id embedded in the private key. A key brought in from another
    /// system has none: it gets a random one that no presented key carries, and
    /// is found by [`Credential::lookup_digest`].
    pub lookup_id: LookupId,
    /// The hash of the private key.
    pub secret_hash: SecretHash,
    /// The masked form people see.
    pub display: KeyDisplay,
    /// For a key that carries no lookup id (brought in from another system):
    /// its SHA-256 digest, by which it is found.
    pub lookup_digest: Option<KeyDigest>,
}

/// The private key that a rotation replaced, still accepted until `valid_until`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PreviousCredential {
    /// The replaced private key's lookup id.
    pub lookup_id: LookupId,
    /// The replaced private key's hash.
    pub secret_hash: SecretHash,
    /// The replaced private key's digest, if it was found by digest.
    pub lookup_digest: Option<KeyDigest>,
    /// The end of the grace period (exclusive).
    pub valid_until: DateTime<Utc>,
}

/// Every field of a stored key, for adapters that load one back from storage
/// through [`ApiKey::restore`]. Each field is already a validated type.
#[derive(Clone, Debug)]
pub struct ApiKeyParts {
    /// The key's id.
    pub id: KeyId,
    /// The owning organisation.
    pub org_id: OrgId,
    /// The name.
    pub name: KeyName,
    /// The description.
    pub description: Option<KeyDescription>,
    /// The environment.
    pub environment: Environment,
    /// The public key.
    pub public_key: PublicKey,
    /// The current private key's stored trace.
    pub credential: Credential,
    /// The private key a rotation replaced, while its grace period lasts.
    pub previous: Option<PreviousCredential>,
    /// When the key was created.
    pub created_at: DateTime<Utc>,
    /// When the key stops verifying, if ever.
    pub expires_at: Option<DateTime<Utc>>,
    /// When the key was revoked, if it was.
    pub revoked_at: Option<DateTime<Utc>>,
    /// When one of its private keys was last reported leaked, unless it was
    /// rotated since.
    pub leaked_at: Option<DateTime<Utc>>,
    /// When the key was last verified successfully, if ever.
    pub last_used_at: Option<DateTime<Utc>>,
    /// What the key may do, checked when a verification asks.
    pub permissions: Permissions,
    /// Whom the key belongs to, in the caller's terms.
    pub owner_id: Option<OwnerId>,
    /// The customer's own data about the key.
    pub meta: Option<KeyMeta>,
    /// The key's own rate limits.
    pub ratelimits: RateLimits,
    /// The key's credits as last stored (`None`: unlimited use). Verifications
    /// spend them through the metering ledger, not through a key update.
    pub credits: Option<Credits>,
    /// Counts changes, starting at 1. Storage compares it to refuse a write based
    /// on a stale read, so concurrent changes never overwrite each other silently.
    pub revision: u32,
}

/// An API key as Keymint stores it: everything but the private key itself.
#[derive(Clone, Debug)]
pub struct ApiKey {
    parts: ApiKeyParts,
}

impl ApiKey {
    /// Loads a key back from storage. Only adapters should need this.
    pub fn restore(parts: ApiKeyParts) -> Self {
        Self { parts }
    }

    /// The key's id.
    pub fn id(&self) -> KeyId {
        self.parts.id
    }

    /// The owning organisation.
    pub fn org_id(&self) -> OrgId {
        self.parts.org_id
    }

    /// The name.
    pub fn name(&self) -> &KeyName {
        &self.parts.name
    }

    /// The description, if any.
    pub fn description(&self) -> Option<&KeyDescription> {
        self.parts.description.as_ref()
    }

    /// The environment.
    pub fn environment(&self) -> Environment {
        self.parts.environment
    }

    /// The public key.
    pub fn public_key(&self) -> &PublicKey {
        &self.parts.public_key
    }

    /// The lookup id of the current private key.
    pub fn lookup_id(&self) -> &LookupId {
        &self.parts.credential.lookup_id
    }

    /// The hash of the current private key.
    pub fn secret_hash(&self) -> &SecretHash {
        &self.parts.credential.secret_hash
    }

    /// The masked form of the current private key.
    pub fn private_key_display(&self) -> &KeyDisplay {
        &self.parts.credential.display
    }

    /// The private key a rotation replaced, if its grace period was granted.
    /// It may have lapsed: compare `valid_until` with the time.
    pub fn previous_credential(&self) -> Option<&PreviousCredential> {
        self.parts.previous.as_ref()
    }

    /// When the key stops verifying, if ever.
    pub fn expires_at(&self) -> Option<DateTime<Utc>> {
        self.parts.expires_at
    }

    /// The stored hash a presented private key with `lookup_id` must match at
    /// `now`: the current private key's, or the replaced one's during its grace
    /// period (then with the end of that period). `None` if neither applies.
    pub fn hash_for(&self, lookup_id: &LookupId, now: DateTime<Utc>) -> Option<(&SecretHash, Option<DateTime<Utc>>)> {
        if &self.parts.credential.lookup_id == lookup_id {
            return Some((&self.parts.credential.secret_hash, None));
        }
        self.parts
            .previous
            .as_ref()
            .filter(|previous| &previous.lookup_id == lookup_id && now < previous.valid_until)
            .map(|previous| (&previous.secret_hash, Some(previous.valid_until)))
    }

    /// The same for a private key found by its digest: the current private
    /// key's hash if it has `digest`, or the replaced one's during its grace
    /// period. Digests are compared in constant time.
    pub fn hash_for_digest(
        &self,
        digest: &KeyDigest,
        now: DateTime<Utc>,
    ) -> Option<(&SecretHash, Option<DateTime<Utc>>)> {
        let current = &self.parts.credential;
        if current.lookup_digest.is_some_and(|own| own.matches(digest)) {
            return Some((&current.secret_hash, None));
        }
        self.parts
            .previous
            .as_ref()
            .filter(|previous| previous.lookup_digest.is_some_and(|own| own.matches(digest)))
            .filter(|previous| now < previous.valid_until)
            .map(|previous| (&previous.secret_hash, Some(previous.valid_until)))
    }

    /// Replaces the stored hash `old` (of the current or the replaced private
    /// key) with `new`: the same private key, hashed anew. Returns whether one
    /// matched. Not a change anyone made: the revision stays.
    pub fn rehash(&mut self, old: &SecretHash, new: SecretHash) -> bool {
        if &self.parts.credential.secret_hash == old {
            self.parts.credential.secret_hash = new;
            return true;
        }
        match self.parts.previous.as_mut() {
            Some(previous) if &previous.secret_hash == old => {
                previous.secret_hash = new;
                true
            }
            _ => false,
        }
    }

    /// Whether the key has expired at `now`.
    pub fn is_expired(&self, now: DateTime<Utc>) -> bool {
        self.parts.expires_at.is_some_and(|at| at <= now)
    }

    /// Whether the key may be used at `now`: neither revoked nor expired.
    pub fn is_active(&self, now: DateTime<Utc>) -> bool {
        !self.is_revoked() && !self.is_expired(now)
    }

    /// Where the key stands at `now`, in one word: see [`KeyStatus`] for the
    /// order in which its facts decide.
    pub fn status(&self, now: DateTime<Utc>) -> KeyStatus {
        if self.is_revoked() {
            KeyStatus::Revoked
        } else if self.is_expired(now) {
            KeyStatus::Expired
        } else if self.parts.leaked_at.is_some() {
            KeyStatus::Leaked
        } else {
            KeyStatus::Active
        }
    }

    /// The key's revision: 1 when issued, one more after each change.
    pub fn revision(&self) -> u32 {
        self.parts.revision
    }

    fn changed(&mut self) {
        self.parts.revision = self.parts.revision.saturating_add(1);
    }

    /// Renames the key; returns whether the name changed.
    pub fn rename(&mut self, name: KeyName) -> bool {
        if self.parts.name == name {
            return false;
        }
        self.parts.name = name;
        self.changed();
        true
    }

    /// Replaces (or, with `None`, clears) the description; returns whether it
    /// changed.
    pub fn set_description(&mut self, description: Option<KeyDescription>) -> bool {
        if self.parts.description == description {
            return false;
        }
        self.parts.description = description;
        self.changed();
        true
    }

    /// The customer's own data about the key.
    pub fn meta(&self) -> Option<&KeyMeta> {
        self.parts.meta.as_ref()
    }

    /// Replaces (or, with `None`, clears) the metadata; returns whether it
    /// changed.
    pub fn set_meta(&mut self, meta: Option<KeyMeta>) -> bool {
        if self.parts.meta == meta {
            return false;
        }
        self.parts.meta = meta;
        self.changed();
        true
    }

    /// Whom the key belongs to.
    pub fn owner_id(&self) -> Option<&OwnerId> {
        self.parts.owner_id.as_ref()
    }

    /// The key's own rate limits.
    pub fn ratelimits(&self) -> &RateLimits {
        &self.parts.ratelimits
    }

    /// Replaces the rate limits; returns whether they changed. Counts already
    /// taken in a current window are kept for a limit of the same name.
    pub fn set_ratelimits(&mut self, ratelimits: RateLimits) -> bool {
        if self.parts.ratelimits == ratelimits {
            return false;
        }
        self.parts.ratelimits = ratelimits;
        self.changed();
        true
    }

    /// The key's credits as last stored (`None`: unlimited).
    pub fn credits(&self) -> Option<&Credits> {
        self.parts.credits.as_ref()
    }

    /// Replaces the credits (remaining count and refill rule) or, with `None`,
    /// makes use unlimited. Setting credits is always a change: the count is
    /// set anew even when it equals the stored one, which verifications may
    /// have spent meanwhile.
    pub fn set_credits(&mut self, credits: Option<Credits>) -> bool {
        if self.parts.credits.is_none() && credits.is_none() {
            return false;
        }
        self.parts.credits = credits;
        self.changed();
        true
    }

    /// Replaces (or, with `None`, clears) the owner; returns whether it changed.
    pub fn set_owner_id(&mut self, owner_id: Option<OwnerId>) -> bool {
        if self.parts.owner_id == owner_id {
            return false;
        }
        self.parts.owner_id = owner_id;
        self.changed();
        true
    }

    /// The key's permissions.
    pub fn permissions(&self) -> &Permissions {
        &self.parts.permissions
    }

    /// Replaces the permissions; returns whether they changed (the same names
    /// in another order are a change: order is kept as given).
    pub fn set_permissions(&mut self, permissions: Permissions) -> bool {
        if self.parts.permissions == permissions {
            return false;
        }
        self.parts.permissions = permissions;
        self.changed();
        true
    }

    /// Revokes the key at `now`. Revocation is final and happens once: revoking a
    /// revoked key changes nothing and keeps the first time. Returns whether this
    /// call revoked it.
    pub fn revoke(&mut self, now: DateTime<Utc>) -> bool {
        if self.is_revoked() {
            return false;
        }
        self.parts.revoked_at = Some(now);
        self.parts.previous = None;
        self.changed();
        true
    }

    /// Records that the private key with `lookup_id` leaked at `now`. With
    /// `take_out_of_use`, that private key stops verifying: the key is revoked
    /// when it is the current one, and only the grace period ends when it is a
    /// rotated-out one (the current private key did not leak). Returns whether
    /// anything changed: a repeated report of a handled leak changes nothing.
    pub fn report_leak(&mut self, lookup_id: &LookupId, take_out_of_use: bool, now: DateTime<Utc>) -> bool {
        let mut changed = false;
        if take_out_of_use {
            if self.parts.previous.as_ref().is_some_and(|p| &p.lookup_id == lookup_id) {
                self.parts.previous = None;
                changed = true;
            } else if &self.parts.credential.lookup_id == lookup_id && !self.is_revoked() {
                self.parts.revoked_at = Some(now);
                self.parts.previous = None;
                changed = true;
            }
        }
        if changed || self.parts.leaked_at.is_none() {
            self.parts.leaked_at = Some(now);
            changed = true;
        }
        if changed {
            self.changed();
        }
        changed
    }

    /// When one of the key's private keys was last reported leaked, unless the
    /// key was rotated since.
    pub fn leaked_at(&self) -> Option<DateTime<Utc>> {
        self.parts.leaked_at
    }

    /// When the key was created.
    pub fn created_at(&self) -> DateTime<Utc> {
        self.parts.created_at
    }

    /// When the key was revoked, if it was.
    pub fn revoked_at(&self) -> Option<DateTime<Utc>> {
        self.parts.revoked_at
    }

    /// Whether the key has been revoked. Derived from [`ApiKey::revoked_at`] so the
    /// two can never disagree.
    pub fn is_revoked(&self) -> bool {
        self.parts.revoked_at.is_some()
    }

    /// When the key was last verified successfully, if ever.
    pub fn last_used_at(&self) -> Option<DateTime<Utc>> {
        self.parts.last_used_at
    }

    /// All fields, for adapters that store the key.
    pub fn parts(&self) -> &ApiKeyParts {
        &self.parts
    }
}

/// Where a key stands, in one word, for every reader (the API's `status`,
/// the console, the command-line client) to show as it is.
///
/// The first that holds decides: a key that no longer verifies says why
/// (revoked, then expired, since a revocation is final and an expiry is only
/// a date); a key that verifies says whether someone reported it leaked,
/// because that is the state a person must act on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KeyStatus {
    /// It verifies, and nothing is known against it.
    Active,
    /// It verifies, but one of its private keys was reported leaked and the
    /// key was neither revoked nor rotated since: under `leaks.action =
    /// "flag"`, or (under "revoke") when the leaked one was a rotated-out
    /// private key, whose grace the report ended while the current one works.
    Leaked,
    /// Its `expires_at` has passed: it no longer verifies.
    Expired,
    /// It was revoked, by a person or a leak report: it never verifies again.
    Revoked,
}

impl KeyStatus {
    /// Every status, from the best state to the final one.
    pub const ALL: [KeyStatus; 4] = [
        KeyStatus::Active,
        KeyStatus::Leaked,
        KeyStatus::Expired,
        KeyStatus::Revoked,
    ];

    /// The status's name in the API: `active`, `leaked`, `expired`, `revoked`.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyStatus::Active => "active",
            KeyStatus::Leaked => "leaked",
            KeyStatus::Expired => "expired",
            KeyStatus::Revoked => "revoked",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::KeyMaterial;
    use chrono::{Duration, TimeZone};
    use rand::rngs::StdRng;
    use rand::SeedableRng;
    use uuid::Uuid;

    fn at(seconds: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_800_000_000 + seconds, 0).unwrap()
    }

    fn credential(seed: u64) -> Credential {
        let material = KeyMaterial::generate(Environment::Test, &mut StdRng::seed_from_u64(seed));
        Credential {
            lookup_id: material.lookup_id(),
            secret_hash: SecretHash::new(format!("$argon2id$stub{seed}")).unwrap(),
            display: material.private_key().display(),
            lookup_digest: None,
        }
    }

    fn key(expires_at: Option<DateTime<Utc>>) -> ApiKey {
        let material = KeyMaterial::generate(Environment::Test, &mut StdRng::seed_from_u64(5));
        let request = NewApiKey::new(
            OrgId::from_uuid(Uuid::nil()),
            KeyName::new("ci").unwrap(),
            None,
            Environment::Test,
        )
        .expiring_at(expires_at);
        ApiKey::issue(
            request,
            KeyId::from_uuid(Uuid::from_u128(1)),
            material.public_key().clone(),
            credential(1),
            at(0),
        )
    }

    #[test]
    fn an_issued_key_is_active_unused_and_carries_the_request() {
        let key = key(Some(at(100)));
        assert!(!key.is_revoked());
        assert!(key.is_active(at(99)));
        assert_eq!((key.revoked_at(), key.last_used_at()), (None, None));
        assert_eq!(key.created_at(), at(0));
        assert_eq!(key.expires_at(), Some(at(100)));
        assert_eq!(key.name().as_str(), "ci");
        assert_eq!(key.lookup_id(), &credential(1).lookup_id);
        assert!(key.previous_credential().is_none());
        assert_eq!(key.revision(), 1);
    }

    #[test]
    fn a_status_says_first_why_a_key_does_not_verify_then_whether_it_leaked() {
        let mut key = key(Some(at(100)));
        assert_eq!(key.status(at(99)), KeyStatus::Active);
        assert_eq!(key.status(at(100)), KeyStatus::Expired, "expiry is inclusive");
        let current = key.lookup_id().clone();
        assert!(key.report_leak(&current, false, at(10)));
        assert_eq!(key.status(at(11)), KeyStatus::Leaked, "flagged, still verifying");
        assert_eq!(key.status(at(100)), KeyStatus::Expired, "no longer verifying says why");
        key.revoke(at(20));
        assert_eq!(key.status(at(21)), KeyStatus::Revoked);
        assert_eq!(
            key.status(at(100)),
            KeyStatus::Revoked,
            "a revocation outranks an expiry"
        );

        let mut rotated = self::key(None);
        let leaked = rotated.lookup_id().clone();
        rotated.report_leak(&leaked, false, at(1));
        rotated.rotate(credential(7), Duration::zero(), at(2)).unwrap();
        assert_eq!(
            rotated.status(at(3)),
            KeyStatus::Active,
            "a rotation replaces the leaked private key"
        );
        let names: Vec<&str> = KeyStatus::ALL.iter().map(|s| s.as_str()).collect();
        assert_eq!(names, ["active", "leaked", "expired", "revoked"]);
    }

    #[test]
    fn every_change_and_only_a_change_moves_the_revision() {
        let mut key = key(None);
        assert!(key.rename(KeyName::new("renamed").unwrap()));
        assert!(key.set_description(Some(KeyDescription::new("d").unwrap())));
        let permissions = Permissions::new([crate::PermissionName::new("a").unwrap()]).unwrap();
        assert!(key.set_permissions(permissions.clone()));
        assert_eq!(key.revision(), 4);
        assert!(!key.rename(KeyName::new("renamed").unwrap()), "the same name");
        assert!(!key.set_description(Some(KeyDescription::new("d").unwrap())));
        assert!(!key.set_permissions(permissions));
        assert_eq!(key.revision(), 4, "setting what is already there changes nothing");
        key.revoke(at(1));
        key.revoke(at(2));
        assert_eq!(key.revision(), 5, "a repeated revoke changes nothing");
        assert!(key.rotate(credential(9), Duration::zero(), at(3)).is_err());
        assert_eq!(key.revision(), 5, "a refused rotation changes nothing");
    }

    #[test]
    fn a_leak_of_the_current_private_key_revokes_and_a_rotated_out_one_only_ends_its_grace() {
        let mut flagged = key(None);
        assert!(flagged.report_leak(&credential(1).lookup_id, false, at(5)));
        assert_eq!((flagged.leaked_at(), flagged.revoked_at()), (Some(at(5)), None));
        assert!(
            !flagged.report_leak(&credential(1).lookup_id, false, at(6)),
            "already flagged"
        );
        assert_eq!(flagged.revision(), 2);
        flagged.rotate(credential(2), Duration::zero(), at(7)).unwrap();
        assert_eq!(flagged.leaked_at(), None, "rotation is the remedy");

        let mut current = key(None);
        assert!(current.report_leak(&credential(1).lookup_id, true, at(5)));
        assert_eq!((current.leaked_at(), current.revoked_at()), (Some(at(5)), Some(at(5))));
        assert!(
            !current.report_leak(&credential(1).lookup_id, true, at(6)),
            "already revoked"
        );

        let mut rotated = key(None);
        rotated.rotate(credential(2), Duration::seconds(60), at(10)).unwrap();
        assert!(rotated.report_leak(&credential(1).lookup_id, true, at(20)));
        assert!(rotated.previous_credential().is_none(), "the leaked one stops at once");
        assert_eq!(rotated.revoked_at(), None, "the current private key did not leak");
        assert!(rotated.hash_for(&credential(2).lookup_id, at(21)).is_some());
        assert_eq!(rotated.leaked_at(), Some(at(20)));
    }

    #[test]
    fn expiry_is_kept_to_the_microsecond() {
        let precise = at(100) + Duration::nanoseconds(123_456_789);
        let request = NewApiKey::new(
            OrgId::from_uuid(Uuid::nil()),
            KeyName::new("x").unwrap(),
            None,
            Environment::Live,
        )
        .expiring_at(Some(precise));
        assert_eq!(request.expires_at(), Some(at(100) + Duration::microseconds(123_456)));
    }

    #[test]
    fn a_key_expires_at_its_expiry_instant_exactly() {
        let key = key(Some(at(100)));
        assert!(!key.is_expired(at(99)));
        assert!(key.is_expired(at(100)));
        assert!(!key.is_active(at(100)));
    }

    #[test]
    fn revocation_happens_once_and_keeps_the_first_time() {
        let mut key = key(None);
        assert!(key.revoke(at(10)));
        assert!(!key.revoke(at(20)));
        assert_eq!(key.revoked_at(), Some(at(10)));
        assert!(key.is_revoked() && !key.is_active(at(11)));
    }

    #[test]
    fn rotation_replaces_the_secret_and_keeps_the_old_one_only_for_the_grace_period() {
        let mut key = key(None);
        key.rotate(credential(2), Duration::seconds(60), at(10)).unwrap();
        assert_eq!(key.lookup_id(), &credential(2).lookup_id);
        let previous = key.previous_credential().unwrap();
        assert_eq!(previous.lookup_id, credential(1).lookup_id);
        assert_eq!(previous.valid_until, at(70));

        key.rotate(credential(3), Duration::zero(), at(20)).unwrap();
        assert_eq!(key.lookup_id(), &credential(3).lookup_id);
        assert!(
            key.previous_credential().is_none(),
            "no grace: nothing but the new key is valid"
        );
    }

    #[test]
    fn a_replaced_private_key_matches_only_during_its_grace_period() {
        let mut key = key(None);
        key.rotate(credential(2), Duration::seconds(60), at(10)).unwrap();
        let (old, new) = (credential(1), credential(2));
        assert_eq!(key.hash_for(&new.lookup_id, at(1000)), Some((&new.secret_hash, None)));
        assert_eq!(
            key.hash_for(&old.lookup_id, at(69)),
            Some((&old.secret_hash, Some(at(70))))
        );
        assert_eq!(
            key.hash_for(&old.lookup_id, at(70)),
            None,
            "the grace period ends exclusively"
        );
        assert_eq!(key.hash_for(&credential(3).lookup_id, at(11)), None);
    }

    #[test]
    fn revoked_and_expired_keys_cannot_be_rotated() {
        let mut revoked = key(None);
        revoked.revoke(at(1));
        assert_eq!(
            revoked.rotate(credential(2), Duration::zero(), at(2)),
            Err(RotateError::Revoked)
        );
        assert_eq!(revoked.lookup_id(), &credential(1).lookup_id, "nothing changed");

        let mut expired = key(Some(at(5)));
        assert_eq!(
            expired.rotate(credential(2), Duration::zero(), at(5)),
            Err(RotateError::Expired)
        );
    }

    #[test]
    fn a_grace_period_is_checked_first_with_its_own_errors() {
        let mut key = key(None);
        let week = Duration::seconds(i64::from(MAX_GRACE_PERIOD_SECONDS));
        assert_eq!(ApiKey::check_grace_period(week), Ok(()));
        assert_eq!(ApiKey::check_grace_period(Duration::zero()), Ok(()));
        assert_eq!(
            key.rotate(credential(2), Duration::seconds(-1), at(1)),
            Err(RotateError::NegativeGracePeriod)
        );
        assert_eq!(
            key.rotate(credential(2), week + Duration::seconds(1), at(1)),
            Err(RotateError::GracePeriodTooLong)
        );
        assert_eq!(key.revision(), 1, "a refused rotation changes nothing");
        key.revoke(at(2));
        assert_eq!(
            key.check_rotation(week + Duration::seconds(1), at(3)),
            Err(RotateError::GracePeriodTooLong),
            "the request is judged before the key's state"
        );
        assert_eq!(key.check_rotation(week, at(3)), Err(RotateError::Revoked));
    }

    #[test]
    fn revoking_drops_a_grace_period_in_progress() {
        let mut key = key(None);
        key.rotate(credential(2), Duration::seconds(600), at(10)).unwrap();
        key.revoke(at(11));
        assert!(key.previous_credential().is_none());
    }

    #[test]
    fn expiry_must_be_in_the_future_and_within_the_maximum() {
        let max = Duration::days(730);
        assert_eq!(check_expiry(at(0), at(0), max), Err(ExpiryError::NotInFuture));
        assert_eq!(check_expiry(at(-1), at(0), max), Err(ExpiryError::NotInFuture));
        assert_eq!(check_expiry(at(1), at(0), max), Ok(()));
        assert_eq!(check_expiry(at(0) + max, at(0), max), Ok(()));
        assert_eq!(
            check_expiry(at(1) + max, at(0), max),
            Err(ExpiryError::TooFarAhead { max_days: 730 })
        );
    }

    #[test]
    fn a_key_found_by_digest_keeps_its_digest_through_a_rotation_for_the_grace_period() {
        let digest = KeyDigest::of("xoxb-an-imported-key-of-another-system");
        let mut imported = key(None);
        imported.parts.credential.lookup_digest = Some(digest);
        imported.parts.credential.secret_hash = SecretHash::sha256(&digest);
        assert!(imported
            .hash_for_digest(&digest, at(0))
            .is_some_and(|(_, until)| until.is_none()));
        assert!(imported.hash_for_digest(&KeyDigest::of("other"), at(0)).is_none());

        imported.rotate(credential(9), Duration::seconds(60), at(0)).unwrap();
        let (hash, until) = imported.hash_for_digest(&digest, at(59)).unwrap();
        assert_eq!((hash.sha256_digest(), until), (Some(digest), Some(at(60))));
        assert!(imported.hash_for_digest(&digest, at(60)).is_none());
    }

    #[test]
    fn a_rehash_replaces_only_the_hash_it_names_and_is_no_revision() {
        let mut stored = key(None);
        stored.rotate(credential(9), Duration::seconds(60), at(0)).unwrap();
        let revision = stored.revision();
        let (current, previous) = (
            stored.secret_hash().clone(),
            stored.previous_credential().unwrap().secret_hash.clone(),
        );
        let new = SecretHash::sha256(&KeyDigest::of("the same private key"));
        assert!(!stored.rehash(&SecretHash::new("$argon2id$other").unwrap(), new.clone()));
        assert!(stored.rehash(&previous, new.clone()));
        assert_eq!(stored.previous_credential().map(|p| &p.secret_hash), Some(&new));
        assert_eq!(stored.secret_hash(), &current);
        assert!(stored.rehash(&current, new.clone()));
        assert_eq!(stored.secret_hash(), &new);
        assert_eq!(stored.revision(), revision);
    }
}
