//! RS/PS/ES-signed bearer tokens verified against a JSON Web Key Set fetched from
//! the identity provider (Auth0 or any OIDC provider).
//!
//! Keys are cached ([`RemoteKeySet`]: single-flight refetch of unknown `kid`s with
//! a cooldown); a background task refreshes the set periodically and so drops
//! keys the provider removed. If the provider is down, cached keys keep working;
//! with no key ever fetched, verification is unavailable (503), not failed (401).

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use async_trait::async_trait;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::jwk::{AlgorithmParameters, Jwk, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey};
use keymint_application::{AuthError, InvalidToken, TokenVerifier, VerifiedToken};
use serde_json::{Map, Value};
use tokio::sync::OnceCell;

use crate::jwt::{invalid, ClaimRules};
use crate::remote_keys::{spawn_refresh_loop, Cached, Keys, RemoteKeySet};
use crate::unix_now;

/// The asymmetric algorithms Keymint accepts from a JWKS.
pub const SUPPORTED_ALGORITHMS: [Algorithm; 8] = [
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
];

/// The names of [`SUPPORTED_ALGORITHMS`], for messages: "RS256, RS384, …".
fn supported_names() -> String {
    SUPPORTED_ALGORITHMS
        .iter()
        .map(|a| format!("{a:?}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// An algorithm name that is not one of [`SUPPORTED_ALGORITHMS`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("'{0}' is not one of {names}", names = supported_names())]
pub struct UnsupportedAlgorithm(pub String);

/// Reads an algorithm name such as `RS256`, accepting only [`SUPPORTED_ALGORITHMS`].
pub fn parse_algorithm(name: &str) -> Result<Algorithm, UnsupportedAlgorithm> {
    Algorithm::from_str(name)
        .ok()
        .filter(|a| SUPPORTED_ALGORITHMS.contains(a))
        .ok_or_else(|| UnsupportedAlgorithm(name.to_owned()))
}

/// Where the key set comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum JwksSource {
    /// A JWKS URL, e.g. `https://TENANT.auth0.com/.well-known/jwks.json`.
    Url(String),
    /// OIDC discovery: `jwks_uri` from `{issuer}.well-known/openid-configuration`.
    Discovery {
        /// The issuer, exactly as it appears in tokens' `iss`.
        issuer: String,
    },
}

/// How a JWKS verifier behaves.
#[derive(Clone, Debug)]
pub struct JwksConfig {
    /// Where keys come from.
    pub source: JwksSource,
    /// Accepted algorithms; the token header only selects among these.
    pub algorithms: Vec<Algorithm>,
    /// Claim checks.
    pub rules: ClaimRules,
    /// How often the whole set is refetched in the background.
    pub refresh_interval: Duration,
    /// The least time between two fetches caused by unknown key ids.
    pub refetch_cooldown: Duration,
    /// Connect and overall timeout of one fetch.
    pub http_timeout: Duration,
    /// The largest JWKS or discovery document accepted, in bytes.
    pub max_document_bytes: usize,
}

struct CachedKey {
    key: DecodingKey,
    /// The JWK's `alg`, when it names one: the token must then use exactly it.
    algorithm: Option<Algorithm>,
}

/// The JWKS configuration of the token-verifier port.
pub struct JwksVerifier {
    config: JwksConfig,
    keys: RemoteKeySet<CachedKey>,
    jwks_uri: OnceCell<String>,
}

impl std::fmt::Debug for JwksVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwksVerifier")
            .field("source", &self.config.source)
            .finish_non_exhaustive()
    }
}

fn algorithm_of(jwk: &Jwk) -> Option<Algorithm> {
    match jwk.common.key_algorithm? {
        KeyAlgorithm::RS256 => Some(Algorithm::RS256),
        KeyAlgorithm::RS384 => Some(Algorithm::RS384),
        KeyAlgorithm::RS512 => Some(Algorithm::RS512),
        KeyAlgorithm::PS256 => Some(Algorithm::PS256),
        KeyAlgorithm::PS384 => Some(Algorithm::PS384),
        KeyAlgorithm::PS512 => Some(Algorithm::PS512),
        KeyAlgorithm::ES256 => Some(Algorithm::ES256),
        KeyAlgorithm::ES384 => Some(Algorithm::ES384),
        _ => None,
    }
}

/// The usable signing keys of a JWKS document. Keys that are not for signatures,
/// symmetric (`oct`: a shared secret has no place in a public key set) or not
/// understood are skipped rather than failing the whole set.
fn parse_key_set(document: &[u8]) -> anyhow::Result<Keys<CachedKey>> {
    let document: Value = serde_json::from_slice(document).context("the JWKS is not JSON")?;
    let entries = document
        .get("keys")
        .and_then(Value::as_array)
        .ok_or_else(|| anyhow!("the JWKS has no keys array"))?;
    let mut keys = HashMap::new();
    for entry in entries {
        let Ok(jwk) = serde_json::from_value::<Jwk>(entry.clone()) else {
            continue;
        };
        if matches!(jwk.common.public_key_use, Some(ref use_) if *use_ != PublicKeyUse::Signature) {
            continue;
        }
        if !matches!(
            jwk.algorithm,
            AlgorithmParameters::RSA(_) | AlgorithmParameters::EllipticCurve(_)
        ) {
            continue;
        }
        let Ok(key) = DecodingKey::from_jwk(&jwk) else { continue };
        let kid = jwk.common.key_id.clone().unwrap_or_default();
        keys.insert(
            kid,
            Arc::new(CachedKey {
                key,
                algorithm: algorithm_of(&jwk),
            }),
        );
    }
    Ok(keys)
}

/// The token's header fields that matter, read without trusting anything else in
/// it: `jku`, `x5u` and embedded `jwk` are never looked at.
fn header(token: &str) -> Result<(Algorithm, Option<String>), InvalidToken> {
    let mut parts = token.split('.');
    let (Some(head), Some(_), Some(_), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return Err(InvalidToken::Malformed);
    };
    let bytes = URL_SAFE_NO_PAD.decode(head).map_err(|_| InvalidToken::Malformed)?;
    let header: Map<String, Value> = serde_json::from_slice(&bytes).map_err(|_| InvalidToken::Malformed)?;
    let alg = header
        .get("alg")
        .and_then(Value::as_str)
        .ok_or(InvalidToken::Malformed)?;
    let algorithm = Algorithm::from_str(alg).map_err(|_| InvalidToken::UnsupportedAlgorithm)?;
    let kid = match header.get("kid") {
        None => None,
        Some(Value::String(kid)) => Some(kid.clone()),
        Some(_) => return Err(InvalidToken::Malformed),
    };
    Ok((algorithm, kid))
}

impl JwksVerifier {
    /// A verifier with an empty cache; call [`JwksVerifier::refresh`] to warm it.
    pub fn new(config: JwksConfig) -> anyhow::Result<Self> {
        if config.algorithms.is_empty() || config.algorithms.iter().any(|a| !SUPPORTED_ALGORITHMS.contains(a)) {
            bail!("auth.algorithms must be a non-empty subset of {}", supported_names());
        }
        let keys = RemoteKeySet::new(
            "JWKS",
            config.http_timeout,
            config.max_document_bytes,
            config.refetch_cooldown,
        )?;
        Ok(Self {
            config,
            keys,
            jwks_uri: OnceCell::new(),
        })
    }

    /// How many key-set fetches were attempted so far.
    pub fn fetch_count(&self) -> u64 {
        self.keys.fetch_count()
    }

    async fn jwks_uri(&self) -> anyhow::Result<&str> {
        let uri = self
            .jwks_uri
            .get_or_try_init(|| async {
                match &self.config.source {
                    JwksSource::Url(url) => Ok(url.clone()),
                    JwksSource::Discovery { issuer } => {
                        let base = issuer.trim_end_matches('/');
                        let document = self
                            .keys
                            .get_limited(&format!("{base}/.well-known/openid-configuration"))
                            .await?;
                        let document: Value = serde_json::from_slice(&document).context("discovery document")?;
                        if document.get("issuer").and_then(Value::as_str) != Some(issuer.as_str()) {
                            bail!("the discovery document's issuer does not match auth.issuer");
                        }
                        document
                            .get("jwks_uri")
                            .and_then(Value::as_str)
                            .map(str::to_owned)
                            .ok_or_else(|| anyhow!("the discovery document has no jwks_uri"))
                    }
                }
            })
            .await?;
        Ok(uri)
    }

    async fn fetch(&self) -> anyhow::Result<Keys<CachedKey>> {
        let uri = self.jwks_uri().await?.to_owned();
        parse_key_set(&self.keys.get_limited(&uri).await?)
    }

    /// Fetches the key set now (start-up and the periodic refresh). On failure the
    /// cached keys stay in use.
    pub async fn refresh(&self) -> anyhow::Result<()> {
        self.keys.refresh(|| self.fetch()).await
    }

    /// The cached key for `kid` (or the only key when the token names none).
    fn cached(&self, kid: Option<&str>) -> Cached<CachedKey> {
        self.keys.lookup(|keys| match kid {
            Some(kid) => keys.get(kid).cloned(),
            None if keys.len() == 1 => keys.values().next().cloned(),
            None => None,
        })
    }

    async fn key_for(&self, kid: Option<&str>) -> Result<Arc<CachedKey>, AuthError> {
        let cached = self.cached(kid);
        if let Some(key) = cached.key {
            return Ok(key);
        }
        // Without a kid, several keys are ambiguous: refetching cannot help.
        if kid.is_some() || !cached.fetched {
            self.keys.refetch_for_unknown(cached.generation, || self.fetch()).await;
        }
        match self.cached(kid) {
            Cached { key: Some(key), .. } => Ok(key),
            Cached { fetched: false, .. } => {
                Err(AuthError::Unavailable(anyhow!("no signing keys could be fetched yet")))
            }
            Cached { fetched: true, .. } => Err(InvalidToken::UnknownKey.into()),
        }
    }

    /// Keeps the key set fresh every `refresh_interval` until the verifier is
    /// dropped, so keys the provider removed stop verifying.
    pub fn spawn_refresh(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        spawn_refresh_loop(self, self.config.refresh_interval, |verifier: Arc<Self>| async move {
            let _ = verifier.refresh().await;
        })
    }
}

#[async_trait]
impl TokenVerifier for JwksVerifier {
    async fn verify(&self, token: &str) -> Result<VerifiedToken, AuthError> {
        let (algorithm, kid) = header(token)?;
        // The allow-list comes from configuration; the header only picks from it.
        if !self.config.algorithms.contains(&algorithm) {
            return Err(InvalidToken::UnsupportedAlgorithm.into());
        }
        let key = self.key_for(kid.as_deref()).await?;
        if key.algorithm.is_some_and(|expected| expected != algorithm) {
            return Err(InvalidToken::UnsupportedAlgorithm.into());
        }
        let data =
            jsonwebtoken::decode::<Map<String, Value>>(token, &key.key, &self.config.rules.validation(algorithm))
                .map_err(|e| AuthError::Invalid(invalid(e.kind())))?;
        Ok(self.config.rules.verified_token(&data.claims, unix_now())?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_are_read_strictly() {
        let encode = |v: &str| URL_SAFE_NO_PAD.encode(v);
        let token = |h: &str| format!("{}.e30.sig", encode(h));
        assert_eq!(
            header(&token(r#"{"alg":"RS256","kid":"a"}"#)),
            Ok((Algorithm::RS256, Some("a".into())))
        );
        assert_eq!(
            header(&token(r#"{"alg":"none"}"#)),
            Err(InvalidToken::UnsupportedAlgorithm)
        );
        assert_eq!(
            header(&token(r#"{"alg":"RS256","kid":7}"#)),
            Err(InvalidToken::Malformed)
        );
        assert_eq!(header(&token(r#"{"kid":"a"}"#)), Err(InvalidToken::Malformed));
        assert_eq!(header("a.b"), Err(InvalidToken::Malformed));
        assert_eq!(header("a.b.c.d"), Err(InvalidToken::Malformed));
        assert_eq!(header("!!.b.c"), Err(InvalidToken::Malformed));
    }

    #[test]
    fn symmetric_and_encryption_keys_in_a_set_are_skipped() {
        let document = br#"{"keys": [
            {"kty": "oct", "kid": "secret", "k": "c2VjcmV0"},
            {"kty": "EC", "kid": "enc", "use": "enc", "crv": "P-256",
             "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU", "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"},
            {"kty": "EC", "kid": "sig", "use": "sig", "alg": "ES256", "crv": "P-256",
             "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU", "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"},
            {"kty": "unknown", "kid": "weird"}
        ]}"#;
        let keys = parse_key_set(document).unwrap();
        assert_eq!(keys.keys().collect::<Vec<_>>(), ["sig"]);
        assert_eq!(keys["sig"].algorithm, Some(Algorithm::ES256));
        assert!(parse_key_set(b"{}").is_err());
        assert!(parse_key_set(b"not json").is_err());
    }

    #[test]
    fn symmetric_algorithms_cannot_be_configured() {
        let config = JwksConfig {
            source: JwksSource::Url("http://127.0.0.1:9/jwks.json".into()),
            algorithms: vec![Algorithm::HS256],
            rules: ClaimRules {
                issuer: None,
                audience: None,
                org_claim: "org_id".into(),
                leeway_seconds: 0,
            },
            refresh_interval: Duration::from_secs(600),
            refetch_cooldown: Duration::from_secs(30),
            http_timeout: Duration::from_secs(1),
            max_document_bytes: 1024,
        };
        assert!(JwksVerifier::new(config).is_err());
    }
}
