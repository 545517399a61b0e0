//! The stored trace of a private key: a PHC string naming the algorithm that
//! made it, never printed.

use std::fmt;

use base64::Engine as _;

use crate::KeyDigest;

/// The hash of a private key, as a PHC-style string that names how it was
/// made: `$sha256$<digest>` (a key of 256 random bits needs no work factor) or
/// `$argon2id$v=19$m=…,t=…,p=…$<salt>$<hash>` (keys hashed by earlier
/// releases, or by a deployment configured for password-grade cost).
///
/// It is the only stored trace of the secret. It is not the secret, but for a
/// key with little entropy it allows offline guessing, so `Debug` does not
/// print it either.
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

    /// The stored form of a SHA-256 digest: `$sha256$` and the digest in
    /// base64 without padding, as PHC strings write their hashes.
    pub fn sha256(digest: &KeyDigest) -> Self {
        let encoded = base64::engine::general_purpose::STANDARD_NO_PAD.encode(digest.as_bytes());
        Self(format!("{SHA256_PHC_LEAD}{encoded}"))
    }

    /// The algorithm the string names (`sha256`, `argon2id`, …).
    pub fn algorithm(&self) -> &str {
        self.0[1..].split('$').next().unwrap_or_default()
    }

    /// The digest of a `$sha256$` hash; `None` for any other algorithm or a
    /// damaged string.
    pub fn sha256_digest(&self) -> Option<KeyDigest> {
        let encoded = self.0.strip_prefix(SHA256_PHC_LEAD)?;
        let mut bytes = [0u8; 32];
        match base64::engine::general_purpose::STANDARD_NO_PAD.decode_slice(encoded, &mut bytes) {
            Ok(32) if encoded.len() == 43 => Some(KeyDigest::from_bytes(bytes)),
            _ => None,
        }
    }
}

const SHA256_PHC_LEAD: &str = "$sha256$";

impl fmt::Debug for SecretHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretHash(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_hash_must_look_like_a_phc_string_and_is_never_printed() {
        assert_eq!(SecretHash::new("plain"), Err(SecretHashError));
        let hash = SecretHash::new("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA");
        assert_eq!(hash.map(|h| format!("{h:?}")), Ok("SecretHash(<redacted>)".to_owned()));
    }

    #[test]
    fn a_sha256_hash_names_its_algorithm_and_gives_its_digest_back() {
        let digest = KeyDigest::of("sk_live_some-key-from-elsewhere");
        let hash = SecretHash::sha256(&digest);
        assert!(hash.expose().starts_with("$sha256$"));
        assert_eq!(hash.expose().len(), "$sha256$".len() + 43);
        assert_eq!(hash.algorithm(), "sha256");
        assert_eq!(hash.sha256_digest(), Some(digest));
        assert_eq!(SecretHash::new(hash.expose()).ok(), Some(hash));
        let argon = SecretHash::new("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA").unwrap();
        assert_eq!(argon.algorithm(), "argon2id");
        assert_eq!(argon.sha256_digest(), None);
        assert_eq!(SecretHash::new("$sha256$tooshort").unwrap().sha256_digest(), None);
    }
}
