//! GitHub's secret-scanning partner protocol: every alert batch is signed with
//! ECDSA P-256 / SHA-256 over the raw body; the signature (base64 of ASN.1 DER)
//! and the key's id arrive in the `Github-Public-Key-Signature` and
//! `Github-Public-Key-Identifier` headers, and the public keys are published as
//! `{"public_keys": [{"key_identifier", "key" (PEM), "is_current"}]}`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, Context};
use async_trait::async_trait;
use aws_lc_rs::signature::{ParsedPublicKey, ECDSA_P256_SHA256_ASN1};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use keymint_application::{ReportSignatureError, ReportSignatures};
use serde::Deserialize;

use crate::remote_keys::{spawn_refresh_loop, Keys, RemoteKeySet};

/// GitHub's published secret-scanning keys.
pub const GITHUB_SECRET_SCANNING_KEYS_URL: &str = "https://api.github.com/meta/public_keys/secret_scanning";

/// The longest DER ECDSA signature over P-256 (two 33-byte integers and framing).
const MAX_SIGNATURE_BYTES: usize = 72;
/// The longest key id and signature accepted: GitHub's are a 64-digit hex id
/// and a ~100-character signature; anything far longer is not theirs.
const MAX_HEADER_CHARS: usize = 512;

/// How the key set is fetched.
#[derive(Clone, Debug)]
pub struct GithubKeysConfig {
    /// Where the keys are published.
    pub url: String,
    /// Connect and overall timeout of one fetch.
    pub http_timeout: Duration,
    /// The least time between two fetches caused by unknown key ids.
    pub refetch_cooldown: Duration,
    /// How often the whole set is refetched in the background.
    pub refresh_interval: Duration,
}

/// Checks GitHub's signatures on secret-scanning alerts.
pub struct GithubReportSignatures {
    config: GithubKeysConfig,
    keys: RemoteKeySet<ParsedPublicKey>,
}

impl std::fmt::Debug for GithubReportSignatures {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GithubReportSignatures")
            .field("url", &self.config.url)
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct Published {
    public_keys: Vec<PublishedKey>,
}

#[derive(Deserialize)]
struct PublishedKey {
    key_identifier: String,
    key: String,
}

/// The P-256 keys of a published set. Keys that are not PEM P-256 public keys
/// are skipped rather than failing the whole set; a retired key (`is_current:
/// false`) still verifies, since GitHub may sign with it until it is removed.
fn parse_published(document: &[u8]) -> anyhow::Result<Keys<ParsedPublicKey>> {
    let published: Published =
        serde_json::from_slice(document).context("the key set is not {\"public_keys\": [...]}")?;
    let mut keys = HashMap::new();
    for entry in published.public_keys {
        let Some(der) = pem_body(&entry.key) else { continue };
        let Ok(key) = ParsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, der) else {
            continue;
        };
        keys.insert(entry.key_identifier, Arc::new(key));
    }
    Ok(keys)
}

/// The DER inside a `-----BEGIN PUBLIC KEY-----` block.
fn pem_body(pem: &str) -> Option<Vec<u8>> {
    let body = pem
        .trim()
        .strip_prefix("-----BEGIN PUBLIC KEY-----")?
        .strip_suffix("-----END PUBLIC KEY-----")?;
    let base64: String = body.chars().filter(|c| !c.is_whitespace()).collect();
    STANDARD.decode(base64).ok()
}

impl GithubReportSignatures {
    /// A checker with an empty cache; call [`GithubReportSignatures::refresh`]
    /// to warm it.
    pub fn new(config: GithubKeysConfig) -> anyhow::Result<Self> {
        let keys = RemoteKeySet::new(
            "GitHub secret-scanning keys",
            config.http_timeout,
            64 * 1024,
            config.refetch_cooldown,
        )?;
        Ok(Self { config, keys })
    }

    /// How many key-set fetches were attempted so far.
    pub fn fetch_count(&self) -> u64 {
        self.keys.fetch_count()
    }

    async fn fetch(&self) -> anyhow::Result<Keys<ParsedPublicKey>> {
        parse_published(&self.keys.get_limited(&self.config.url).await?)
    }

    /// Fetches the key set now. On failure the cached keys stay in use.
    pub async fn refresh(&self) -> anyhow::Result<()> {
        self.keys.refresh(|| self.fetch()).await
    }

    /// Keeps a fetched key set fresh until the checker is dropped, so keys
    /// GitHub removed stop verifying. Until the first alert fetches the set,
    /// nothing is fetched: a deployment that never enrolled never calls GitHub.
    pub fn spawn_refresh(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        spawn_refresh_loop(self, self.config.refresh_interval, |checker: Arc<Self>| async move {
            if checker.keys.lookup(|_| None).fetched {
                let _ = checker.refresh().await;
            }
        })
    }

    async fn key(&self, key_id: &str) -> Result<Arc<ParsedPublicKey>, ReportSignatureError> {
        let cached = self.keys.lookup(|keys| keys.get(key_id).cloned());
        if let Some(key) = cached.key {
            return Ok(key);
        }
        self.keys.refetch_for_unknown(cached.generation, || self.fetch()).await;
        let cached = self.keys.lookup(|keys| keys.get(key_id).cloned());
        match cached.key {
            Some(key) => Ok(key),
            None if !cached.fetched => Err(ReportSignatureError::Unavailable(anyhow!(
                "GitHub's secret-scanning keys could not be fetched yet"
            ))),
            None => Err(ReportSignatureError::UnknownKey),
        }
    }
}

#[async_trait]
impl ReportSignatures for GithubReportSignatures {
    async fn check(&self, key_id: &str, signature: &str, body: &[u8]) -> Result<(), ReportSignatureError> {
        let signature = decoded_signature(key_id, signature)?;
        let key = self.key(key_id).await?;
        key.verify_sig(body, &signature)
            .map_err(|_| ReportSignatureError::Invalid)
    }

    async fn precheck(&self, key_id: &str, signature: &str) -> Result<(), ReportSignatureError> {
        decoded_signature(key_id, signature)?;
        self.key(key_id).await.map(|_| ())
    }
}

/// The signature's bytes, when both headers have the form GitHub sends: a key
/// id and a base64 ASN.1 ECDSA signature (P-256: at most 72 bytes).
fn decoded_signature(key_id: &str, signature: &str) -> Result<Vec<u8>, ReportSignatureError> {
    if key_id.is_empty() || key_id.len() > MAX_HEADER_CHARS || signature.len() > MAX_HEADER_CHARS {
        return Err(ReportSignatureError::Malformed);
    }
    match STANDARD.decode(signature.trim()) {
        Ok(bytes) if (8..=MAX_SIGNATURE_BYTES).contains(&bytes.len()) => Ok(bytes),
        _ => Err(ReportSignatureError::Malformed),
    }
}

#[cfg(test)]
mod tests {
    use aws_lc_rs::encoding::{AsDer, PublicKeyX509Der};
    use aws_lc_rs::rand::SystemRandom;
    use aws_lc_rs::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_ASN1_SIGNING, ECDSA_P384_SHA384_ASN1_SIGNING};

    use super::*;

    fn pem(pair: &EcdsaKeyPair) -> String {
        let der: PublicKeyX509Der<'_> = pair.public_key().as_der().unwrap();
        let body = STANDARD.encode(der.as_ref());
        let lines: Vec<&str> = body
            .as_bytes()
            .chunks(64)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect();
        format!(
            "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
            lines.join("\n")
        )
    }

    #[test]
    fn only_pem_p256_keys_of_a_set_are_kept_and_they_check_signatures() {
        let p256 = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_ASN1_SIGNING).unwrap();
        let p384 = EcdsaKeyPair::generate(&ECDSA_P384_SHA384_ASN1_SIGNING).unwrap();
        let document = serde_json::json!({"public_keys": [
            {"key_identifier": "p384", "key": pem(&p384), "is_current": false},
            {"key_identifier": "p256", "key": pem(&p256), "is_current": true},
            {"key_identifier": "junk", "key": "not a pem", "is_current": true},
        ]});
        let keys = parse_published(document.to_string().as_bytes()).unwrap();
        assert_eq!(keys.keys().collect::<Vec<_>>(), ["p256"]);
        let body = br#"[{"token":"x","type":"keymint_private_key","url":"https://e.test","source":"content"}]"#;
        let signature = p256.sign(&SystemRandom::new(), body).unwrap();
        assert!(keys["p256"].verify_sig(body, signature.as_ref()).is_ok());
        assert!(keys["p256"].verify_sig(&body[1..], signature.as_ref()).is_err());
        assert!(parse_published(b"{}").is_err());
        assert!(parse_published(b"[]").is_err());
    }
}
