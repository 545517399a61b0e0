//! `[auth]`: the section as written in files and variables, and the settings
//! it becomes at load, with how bearer tokens are verified decided (a JWKS
//! URL, an HS256 secret, or OIDC discovery from the issuer).

use std::time::Duration;

use jsonwebtoken::Algorithm;
use keymint_infrastructure::{ClaimRules, Hs256Config, JwksConfig, JwksSource};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use super::{values, DEVELOPMENT_SECRET, MAX_JWKS_DOCUMENT_BYTES};

/// `[auth]` as written in files and variables; turned into [`AuthSettings`] at load.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AuthFile {
    hs256_secret: SecretString,
    #[serde(deserialize_with = "values::optional_http_url")]
    jwks_url: Option<String>,
    #[serde(deserialize_with = "values::algorithms")]
    algorithms: Vec<Algorithm>,
    #[serde(rename = "jwks_refresh_seconds", deserialize_with = "values::seconds")]
    jwks_refresh: Duration,
    #[serde(rename = "jwks_cooldown_seconds", deserialize_with = "values::seconds")]
    jwks_cooldown: Duration,
    #[serde(rename = "jwks_timeout_seconds", deserialize_with = "values::seconds")]
    jwks_timeout: Duration,
    require_permissions: bool,
    #[serde(deserialize_with = "values::optional_text")]
    issuer: Option<String>,
    #[serde(deserialize_with = "values::optional_text")]
    audience: Option<String>,
    #[serde(deserialize_with = "values::required_text")]
    org_claim: String,
    leeway_seconds: u64,
    allow_http: bool,
}

/// How bearer tokens are verified.
#[derive(Clone, Debug)]
pub enum AuthMode {
    /// A shared secret (development, simple deployments).
    Hs256(Hs256Config),
    /// A JWKS from the identity provider.
    Jwks(JwksConfig),
}

/// `[auth]`, with the verification mode decided.
#[derive(Clone, Debug, Deserialize)]
#[serde(try_from = "AuthFile")]
pub struct AuthSettings {
    /// How tokens are verified: a JWKS URL wins, then an HS256 secret, then OIDC
    /// discovery from the issuer alone. The shipped development secret counts
    /// only when no issuer is configured.
    pub mode: AuthMode,
    /// The HS256 secret and claim rules, whatever the mode (`dev-token` and tests
    /// sign with them); the secret may be empty.
    pub hs256: Hs256Config,
    /// Require `read:api_keys` / `write:api_keys` permissions.
    pub require_permissions: bool,
    /// Accept an `http://` issuer or JWKS URL off loopback in production.
    pub allow_http: bool,
}

impl TryFrom<AuthFile> for AuthSettings {
    type Error = String;

    fn try_from(file: AuthFile) -> Result<Self, Self::Error> {
        let rules = ClaimRules {
            issuer: file.issuer,
            audience: file.audience,
            org_claim: file.org_claim,
            leeway_seconds: file.leeway_seconds,
        };
        let hs256 = Hs256Config {
            secret: file.hs256_secret,
            rules: rules.clone(),
        };
        // What an operator configured wins over what Keymint ships: an issuer set
        // next to the shipped development secret means "use my identity provider".
        let secret = hs256.secret.expose_secret();
        let shipped_default_overridden = secret == DEVELOPMENT_SECRET && rules.issuer.is_some();
        let own_secret = !(secret.is_empty() || shipped_default_overridden);
        let source = match (file.jwks_url, &rules.issuer) {
            (Some(url), _) => JwksSource::Url(url),
            (None, _) if own_secret => {
                return Ok(Self {
                    mode: AuthMode::Hs256(hs256.clone()),
                    hs256,
                    require_permissions: file.require_permissions,
                    allow_http: file.allow_http,
                })
            }
            (None, Some(issuer)) => JwksSource::Discovery { issuer: issuer.clone() },
            (None, None) => {
                return Err(
                    "no token verification configured: set auth.jwks_url, auth.issuer (OIDC discovery) \
                            or auth.hs256_secret"
                        .to_owned(),
                )
            }
        };
        if file.jwks_refresh.is_zero() || file.jwks_timeout.is_zero() {
            return Err(
                "auth.jwks_refresh_seconds and auth.jwks_timeout_seconds must be greater than 0 with a JWKS".to_owned(),
            );
        }
        Ok(Self {
            mode: AuthMode::Jwks(JwksConfig {
                source,
                algorithms: file.algorithms,
                rules,
                refresh_interval: file.jwks_refresh,
                refetch_cooldown: file.jwks_cooldown,
                http_timeout: file.jwks_timeout,
                max_document_bytes: MAX_JWKS_DOCUMENT_BYTES,
            }),
            hs256,
            require_permissions: file.require_permissions,
            allow_http: file.allow_http,
        })
    }
}

impl AuthSettings {
    /// The `http://` URL (issuer or JWKS) tokens are verified against over a
    /// network, if any, and the setting that names it: keys fetched over
    /// plain HTTP can be swapped by anyone on the path. Loopback is exempt
    /// (a provider beside Keymint, a test).
    pub fn insecure_source(&self) -> Option<(&'static str, &str)> {
        let AuthMode::Jwks(config) = &self.mode else {
            return None;
        };
        let (setting, url) = match &config.source {
            JwksSource::Url(url) => ("auth.jwks_url", url.as_str()),
            JwksSource::Discovery { issuer } => ("auth.issuer", issuer.as_str()),
        };
        let rest = url.strip_prefix("http://")?;
        let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
        let host = authority.rsplit_once('@').map_or(authority, |(_, host)| host);
        let host = match host.strip_prefix('[') {
            Some(bracketed) => bracketed.split(']').next().unwrap_or_default(),
            None => host.split(':').next().unwrap_or_default(),
        };
        let loopback =
            host.eq_ignore_ascii_case("localhost") || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback());
        (!loopback).then_some((setting, url))
    }
}
