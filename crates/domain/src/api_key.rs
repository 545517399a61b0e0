use std::fmt;

use chrono::{DateTime, Utc};

use crate::{Environment, KeyDescription, KeyDisplay, KeyId, KeyName, LookupId, OrgId, PublicKey};

/// A slow, salted hash of a private key, as a PHC string (`$argon2id$v=19$…`).
///
/// It is the only stored trace of the secret. It is not the secret, but it still
/// lets an attacker run offline guesses, so `Debug` does not print it either.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretHash(String);

/// The text is not a PHC string.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("a secret hash must be a PHC string starting with '$'")]
pub struct SecretHashError;

impl SecretHash {
    /// Wraps a PHC string produced by a hasher or loaded from storage.
    pub fn new(phc: impl Into<String>) -> Result<Self, SecretHashError> {
        let phc = phc.into();
        if phc.starts_with('$') && phc.len() > 1 {
            Ok(Self(phc))
        } else {
            Err(SecretHashError)
        }
    }

    /// The PHC string, for storage and verification.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretHash(<redacted>)")
    }
}

/// A request for a new key, validated, before any key material exists.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewApiKey {
    org_id: OrgId,
    name: KeyName,
    description: Option<KeyDescription>,
    environment: Environment,
}

impl NewApiKey {
    /// Assembles a request from already validated parts.
    pub fn new(
        org_id: OrgId,
        name: KeyName,
        description: Option<KeyDescription>,
        environment: Environment,
    ) -> Self {
        Self {
            org_id,
            name,
            description,
            environment,
        }
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
    /// The lookup id of the current private key.
    pub lookup_id: LookupId,
    /// The hash of the current private key.
    pub secret_hash: SecretHash,
    /// The masked form of the current private key.
    pub private_key_display: KeyDisplay,
    /// When the key was created.
    pub created_at: DateTime<Utc>,
    /// When the key was revoked, if it was.
    pub revoked_at: Option<DateTime<Utc>>,
    /// When the key was last verified successfully, if ever.
    pub last_used_at: Option<DateTime<Utc>>,
}

/// An API key as Keymint stores it: everything but the private key itself.
#[derive(Clone, Debug)]
pub struct ApiKey {
    parts: ApiKeyParts,
}

impl ApiKey {
    /// Issues a key for `request`: a fresh, unrevoked, unused key created `now`.
    ///
    /// The caller supplies the id, the key material's public parts and the hash of
    /// its private key, so that this type never sees the secret itself.
    pub fn issue(
        request: NewApiKey,
        id: KeyId,
        public_key: PublicKey,
        lookup_id: LookupId,
        private_key_display: KeyDisplay,
        secret_hash: SecretHash,
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
                lookup_id,
                secret_hash,
                private_key_display,
                created_at: now,
                revoked_at: None,
                last_used_at: None,
            },
        }
    }

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
        &self.parts.lookup_id
    }

    /// The hash of the current private key.
    pub fn secret_hash(&self) -> &SecretHash {
        &self.parts.secret_hash
    }

    /// The masked form of the current private key.
    pub fn private_key_display(&self) -> &KeyDisplay {
        &self.parts.private_key_display
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::KeyMaterial;
    use rand::rngs::StdRng;
    use rand::SeedableRng;
    use uuid::Uuid;

    #[test]
    fn an_issued_key_is_active_unused_and_carries_the_request() {
        let material = KeyMaterial::generate(Environment::Test, &mut StdRng::seed_from_u64(5));
        let request = NewApiKey::new(
            OrgId::from_uuid(Uuid::nil()),
            KeyName::new("ci").unwrap(),
            None,
            Environment::Test,
        );
        let now = DateTime::<Utc>::UNIX_EPOCH;
        let key = ApiKey::issue(
            request,
            KeyId::from_uuid(Uuid::from_u128(1)),
            material.public_key().clone(),
            material.lookup_id(),
            material.private_key().display(),
            SecretHash::new("$argon2id$stub").unwrap(),
            now,
        );
        assert!(!key.is_revoked());
        assert_eq!(key.revoked_at(), None);
        assert_eq!(key.last_used_at(), None);
        assert_eq!(key.created_at(), now);
        assert_eq!(key.name().as_str(), "ci");
        assert_eq!(key.environment(), Environment::Test);
        assert_eq!(key.lookup_id(), &material.lookup_id());
    }

    #[test]
    fn a_secret_hash_must_look_like_a_phc_string_and_is_never_printed() {
        assert_eq!(SecretHash::new("plain"), Err(SecretHashError));
        let hash = SecretHash::new("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA");
        assert_eq!(
            hash.map(|h| format!("{h:?}")),
            Ok("SecretHash(<redacted>)".to_owned())
        );
    }
}
