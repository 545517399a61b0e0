//! A deployment's key format: the prefix its keys are issued under, every
//! prefix whose keys still verify, and the patterns that find its keys in
//! text (what secret scanners are given).

use std::fmt;

use rand_core::{CryptoRng, RngCore};

use super::{
    KeyFormatError, KeyMaterial, PrivateKey, PublicKey, CHECKSUM_CHARS, LOOKUP_ID_CHARS, PRIVATE_PREFIX,
    PUBLIC_KEY_RANDOM_CHARS, PUBLIC_PREFIX, SECRET_CHARS,
};
use crate::Environment;

/// Characters a [`KeyPrefix`] may have at most.
pub const MAX_PREFIX_CHARS: usize = 16;

/// A deployment's key prefix: `sk` (the default: keys start `sk_` and `pk_`) or a
/// brand of 1 to [`MAX_PREFIX_CHARS`] lowercase ASCII letters and digits, starting
/// with a letter, that is put in front of both keys (`acme_sk_live_…`,
/// `acme_pk_live_…`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct KeyPrefix {
    name: String,
    private_lead: String,
    public_lead: String,
}

/// Why a key prefix was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum KeyPrefixError {
    /// Empty or longer than [`MAX_PREFIX_CHARS`].
    #[error("a key prefix has 1 to {MAX_PREFIX_CHARS} characters")]
    Length,
    /// Not lowercase ASCII letters and digits starting with a letter.
    #[error("a key prefix is lowercase ASCII letters and digits, starting with a letter")]
    Characters,
    /// `pk` would make private keys look like public ones.
    #[error("'pk' cannot be a key prefix: private keys would start like public keys")]
    Reserved,
}

impl KeyPrefix {
    /// Checks a configured prefix.
    pub fn parse(raw: &str) -> Result<Self, KeyPrefixError> {
        if raw.is_empty() || raw.len() > MAX_PREFIX_CHARS {
            return Err(KeyPrefixError::Length);
        }
        let mut chars = raw.chars();
        let starts_with_letter = chars.next().is_some_and(|c| c.is_ascii_lowercase());
        if !starts_with_letter || !raw.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()) {
            return Err(KeyPrefixError::Characters);
        }
        if raw == "pk" {
            return Err(KeyPrefixError::Reserved);
        }
        let brand = if raw == "sk" { String::new() } else { format!("{raw}_") };
        Ok(Self {
            name: raw.to_owned(),
            private_lead: format!("{brand}{PRIVATE_PREFIX}"),
            public_lead: format!("{brand}{PUBLIC_PREFIX}"),
        })
    }

    /// The prefix as configured.
    pub fn as_str(&self) -> &str {
        &self.name
    }

    /// What private keys under this prefix start with (`sk_`, `acme_sk_`).
    pub fn private_lead(&self) -> &str {
        &self.private_lead
    }

    /// What public keys under this prefix start with (`pk_`, `acme_pk_`).
    pub fn public_lead(&self) -> &str {
        &self.public_lead
    }
}

impl Default for KeyPrefix {
    fn default() -> Self {
        Self {
            name: "sk".to_owned(),
            private_lead: PRIVATE_PREFIX.to_owned(),
            public_lead: PUBLIC_PREFIX.to_owned(),
        }
    }
}

impl fmt::Display for KeyPrefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}

/// How one deployment issues and recognises keys: the prefix new keys get, and
/// every prefix whose keys still verify (the issuing one first), so that keys
/// issued before a change of prefix keep working while they are replaced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyFormat {
    accepted: Vec<KeyPrefix>,
}

impl Default for KeyFormat {
    fn default() -> Self {
        Self::new(KeyPrefix::default(), [])
    }
}

impl KeyFormat {
    /// Issues keys under `issuing` and also accepts keys under `also_accepted`
    /// (duplicates are ignored).
    pub fn new(issuing: KeyPrefix, also_accepted: impl IntoIterator<Item = KeyPrefix>) -> Self {
        let mut accepted = vec![issuing];
        for prefix in also_accepted {
            if !accepted.contains(&prefix) {
                accepted.push(prefix);
            }
        }
        Self { accepted }
    }

    /// The prefix new keys get.
    pub fn issuing(&self) -> &KeyPrefix {
        &self.accepted[0]
    }

    /// Every prefix whose keys verify, the issuing one first.
    pub fn accepted(&self) -> &[KeyPrefix] {
        &self.accepted
    }

    /// Draws a new public and private key for `environment` under the issuing
    /// prefix.
    pub fn generate<R: RngCore + CryptoRng + ?Sized>(&self, environment: Environment, rng: &mut R) -> KeyMaterial {
        KeyMaterial::draw(self.issuing(), environment, rng)
    }

    /// Draws a new private key, under the issuing prefix, for an existing public
    /// key (which keeps the prefix it was issued with).
    pub fn rotate<R: RngCore + CryptoRng + ?Sized>(
        &self,
        public_key: PublicKey,
        environment: Environment,
        rng: &mut R,
    ) -> KeyMaterial {
        KeyMaterial {
            public_key,
            private_key: KeyMaterial::draw_private_key(self.issuing(), environment, rng),
        }
    }

    /// Checks a presented key's prefix, shape and checksum, with no storage or
    /// hashing: a key under a prefix this deployment does not accept is
    /// [`KeyFormatError::Malformed`].
    pub fn parse(&self, raw: &str) -> Result<PrivateKey, KeyFormatError> {
        let prefix = self
            .accepted
            .iter()
            .find(|prefix| raw.starts_with(prefix.private_lead()))
            .ok_or(KeyFormatError::Malformed)?;
        PrivateKey::parse_under(raw, prefix.private_lead().len() - PRIVATE_PREFIX.len())
    }

    /// A regular expression matching exactly this deployment's private keys, as
    /// they appear in text (between word boundaries): what a secret-scanning
    /// provider is given.
    pub fn private_key_pattern(&self) -> String {
        format!(
            r"\b(?:{})_(?:{})_[0-9A-Za-z]{{{LOOKUP_ID_CHARS}}}_[0-9A-Za-z]{{{}}}\b",
            self.leads(KeyPrefix::private_lead),
            environments(),
            SECRET_CHARS + CHECKSUM_CHARS
        )
    }

    /// A regular expression matching exactly this deployment's public keys.
    pub fn public_key_pattern(&self) -> String {
        format!(
            r"\b(?:{})_(?:{})_[0-9A-Za-z]{{{PUBLIC_KEY_RANDOM_CHARS}}}\b",
            self.leads(KeyPrefix::public_lead),
            environments()
        )
    }

    fn leads(&self, lead: fn(&KeyPrefix) -> &str) -> String {
        let leads: Vec<&str> = self
            .accepted
            .iter()
            .map(|prefix| lead(prefix).trim_end_matches('_'))
            .collect();
        leads.join("|")
    }
}

fn environments() -> String {
    let names: Vec<&str> = Environment::ALL.iter().map(|env| env.as_str()).collect();
    names.join("|")
}
