//! Layered configuration: built-in defaults (`config/default.toml`, compiled in),
//! then `config/default.toml` and `config/<profile>.toml` from the working
//! directory, then the file named by `KEYMINT_CONFIG`, then environment variables
//! `KEYMINT_<SECTION>__<KEY>`.

use std::net::SocketAddr;
use std::time::Duration;

use figment::providers::{Env, Format, Toml};
use figment::Figment;
use keymint_domain::Environment;
use std::str::FromStr;

use jsonwebtoken::Algorithm;
use keymint_infrastructure::{
    Argon2Hasher, Argon2Params, ClaimRules, Hs256Config, JwksConfig, JwksSource, SUPPORTED_ALGORITHMS,
};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

/// The HS256 secret shipped for development. Public by construction.
pub const DEVELOPMENT_SECRET: &str = "keymint-development-secret-do-not-use-in-production";

const EMBEDDED_DEFAULTS: &str = include_str!("../config/default.toml");
const SECTIONS: [&str; 7] = ["server", "database", "auth", "hashing", "keys", "verify", "log"];
const MIN_PRODUCTION_SECRET_BYTES: usize = 32;

/// Development or production.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Profile {
    /// Friendly defaults; the shipped secret is accepted with a warning.
    Development,
    /// Refuses development credentials.
    Production,
}

/// Everything Keymint can be configured with.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// The profile.
    pub profile: Profile,
    /// The HTTP server.
    pub server: ServerSettings,
    /// The database.
    pub database: DatabaseSettings,
    /// Bearer-token authentication.
    pub auth: AuthSettings,
    /// argon2id cost.
    pub hashing: HashingSettings,
    /// Key issuance.
    pub keys: KeySettings,
    /// Key verification.
    pub verify: VerifySettings,
    /// Logging.
    pub log: LogSettings,
}

/// `[server]`
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSettings {
    /// Address to listen on.
    pub listen: String,
    /// Request body limit, bytes.
    pub body_limit_bytes: usize,
    /// Worker threads; 0 = one per core.
    pub workers: usize,
    /// Graceful shutdown timeout, seconds.
    pub shutdown_timeout_seconds: u64,
}

/// `[database]`
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseSettings {
    /// `sqlite:…`, `postgres://…` or `memory:`.
    pub url: SecretString,
    /// Pool size.
    pub max_connections: u32,
    /// Connect timeout, seconds.
    pub connect_timeout_seconds: u64,
    /// Pool acquire timeout, seconds.
    pub acquire_timeout_seconds: u64,
    /// SQLite busy timeout, seconds.
    pub sqlite_busy_timeout_seconds: u64,
}

/// `[auth]`
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthSettings {
    /// HS256 shared secret; empty disables HS256.
    pub hs256_secret: SecretString,
    /// JWKS URL; when set, tokens are verified against it (and HS256 is off).
    pub jwks_url: String,
    /// Comma-separated asymmetric algorithms accepted with a JWKS.
    pub algorithms: String,
    /// Background JWKS refresh period, seconds.
    pub jwks_refresh_seconds: u64,
    /// Least time between refetches caused by unknown key ids, seconds.
    pub jwks_cooldown_seconds: u64,
    /// Timeout of one JWKS or discovery fetch, seconds.
    pub jwks_timeout_seconds: u64,
    /// Require `read:api_keys` / `write:api_keys` permissions.
    pub require_permissions: bool,
    /// Required issuer; empty = unchecked.
    pub issuer: String,
    /// Required audience; empty = unchecked.
    pub audience: String,
    /// Claim holding the organisation UUID.
    pub org_claim: String,
    /// Clock skew tolerance, seconds.
    pub leeway_seconds: u64,
}

/// `[hashing]`
#[derive(Clone, Copy, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HashingSettings {
    /// Memory, KiB.
    pub memory_kib: u32,
    /// Iterations.
    pub iterations: u32,
    /// Parallelism.
    pub parallelism: u32,
}

/// `[keys]`
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeySettings {
    /// `live` or `test`.
    pub default_environment: String,
    /// The most unrevoked, unexpired keys one organisation may hold.
    pub max_active_per_org: u32,
    /// How many days ahead `expires_at` may be.
    pub max_expiry_days: u32,
}

/// `[verify]`
#[derive(Clone, Copy, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VerifySettings {
    /// Cached verifications per process.
    pub cache_capacity: u64,
    /// Cache entry lifetime, seconds.
    pub cache_ttl_seconds: u64,
    /// `last_used_at` write interval, seconds.
    pub usage_flush_seconds: u64,
    /// Failed verifications per lookup id per window (0 = unlimited).
    pub max_failures_per_key: u32,
    /// Failed verifications per client address per window (0 = unlimited).
    pub max_failures_per_client: u32,
    /// Failure window, seconds.
    pub failure_window_seconds: u64,
}

/// `[log]`
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSettings {
    /// EnvFilter directive.
    pub level: String,
    /// `text` or `json`.
    pub format: LogFormat,
}

/// How log lines are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable.
    Text,
    /// One JSON object per line.
    Json,
}

/// How bearer tokens are verified.
#[derive(Clone, Debug)]
pub enum AuthMode {
    /// A shared secret (development, simple deployments).
    Hs256(Hs256Config),
    /// A JWKS from the identity provider.
    Jwks(JwksConfig),
}

/// A configuration that cannot be used; the message names the key.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A value has the wrong type, an unknown key was given, or a file is unreadable.
    #[error("{0}")]
    Load(String),
    /// A value has the right type but is not acceptable.
    #[error("{key}: {message}")]
    Invalid {
        /// The offending key, as `section.key`.
        key: &'static str,
        /// What is wrong with it.
        message: String,
    },
}

/// One line per problem, each starting with the key as `section.key` and ending
/// with where the value came from (file or environment variable).
fn describe(err: figment::Error) -> ConfigError {
    let lines: Vec<String> = err
        .into_iter()
        .map(|e| {
            let key = e
                .path
                .iter()
                .map(|p| p.to_ascii_lowercase())
                .collect::<Vec<_>>()
                .join(".");
            let source = e
                .metadata
                .as_ref()
                .map(|m| format!(" (from {})", m.name))
                .unwrap_or_default();
            if key.is_empty() {
                format!("{}{source}", e.kind)
            } else {
                format!("{key}: {}{source}", e.kind)
            }
        })
        .collect();
    ConfigError::Load(lines.join("; "))
}

fn invalid(key: &'static str, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key,
        message: message.into(),
    }
}

impl Settings {
    /// The configuration layers in force for this process.
    pub fn figment() -> Figment {
        let profile = std::env::var("KEYMINT_PROFILE").unwrap_or_else(|_| "development".to_owned());
        let mut figment = Figment::new()
            .merge(Toml::string(EMBEDDED_DEFAULTS))
            .merge(Toml::file("config/default.toml"))
            .merge(Toml::file(format!("config/{profile}.toml")));
        if let Ok(path) = std::env::var("KEYMINT_CONFIG") {
            figment = figment.merge(Toml::file_exact(path));
        }
        figment.merge(
            Env::prefixed("KEYMINT_")
                .lowercase(true)
                .filter(|key| {
                    let key = key.as_str().to_ascii_lowercase();
                    key == "profile" || SECTIONS.iter().any(|s| key.starts_with(&format!("{s}__")))
                })
                .split("__"),
        )
    }

    /// Only the built-in defaults: what tests start from, independent of the
    /// environment of the process running them.
    pub fn defaults() -> Figment {
        Figment::new().merge(Toml::string(EMBEDDED_DEFAULTS))
    }

    /// Loads and checks the configuration in force.
    pub fn load() -> Result<Self, ConfigError> {
        Self::from_figment(Self::figment())
    }

    /// Extracts and checks settings from `figment`.
    pub fn from_figment(figment: Figment) -> Result<Self, ConfigError> {
        let settings: Settings = figment.extract().map_err(describe)?;
        settings.validate()?;
        Ok(settings)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        self.listen_addr()?;
        self.default_environment()?;
        Argon2Hasher::new(self.argon2_params()).map_err(|e| invalid("hashing", format!("{:#}", e.0)))?;
        if self.server.body_limit_bytes == 0 {
            return Err(invalid("server.body_limit_bytes", "must be greater than 0"));
        }
        if self.keys.max_active_per_org == 0 {
            return Err(invalid("keys.max_active_per_org", "must be greater than 0"));
        }
        if self.keys.max_expiry_days == 0 || self.keys.max_expiry_days > 36_500 {
            return Err(invalid("keys.max_expiry_days", "must be between 1 and 36500"));
        }
        if self.verify.usage_flush_seconds == 0 || self.verify.failure_window_seconds == 0 {
            return Err(invalid(
                "verify",
                "usage_flush_seconds and failure_window_seconds must be greater than 0",
            ));
        }
        if self.database.max_connections == 0 {
            return Err(invalid("database.max_connections", "must be greater than 0"));
        }
        if self.auth.org_claim.trim().is_empty() {
            return Err(invalid("auth.org_claim", "must not be empty"));
        }
        let secret = self.auth.hs256_secret.expose_secret();
        let mode = self.auth_mode()?;
        if self.profile == Profile::Production && matches!(mode, AuthMode::Hs256(_)) {
            if secret == DEVELOPMENT_SECRET {
                return Err(invalid(
                    "auth.hs256_secret",
                    "the shipped development secret is refused in production; set KEYMINT_AUTH__HS256_SECRET",
                ));
            }
            if secret.len() < MIN_PRODUCTION_SECRET_BYTES {
                return Err(invalid(
                    "auth.hs256_secret",
                    format!("must be at least {MIN_PRODUCTION_SECRET_BYTES} bytes in production"),
                ));
            }
        }
        Ok(())
    }

    /// Whether the shipped development secret is in use (logged loudly at start).
    pub fn uses_development_secret(&self) -> bool {
        matches!(self.auth_mode(), Ok(AuthMode::Hs256(_)))
            && self.auth.hs256_secret.expose_secret() == DEVELOPMENT_SECRET
    }

    /// `server.listen` as a socket address.
    pub fn listen_addr(&self) -> Result<SocketAddr, ConfigError> {
        self.server.listen.parse().map_err(|_| {
            invalid(
                "server.listen",
                format!(
                    "'{}' is not a socket address such as 127.0.0.1:8080",
                    self.server.listen
                ),
            )
        })
    }

    /// `keys.default_environment` as an environment.
    pub fn default_environment(&self) -> Result<Environment, ConfigError> {
        self.keys
            .default_environment
            .parse()
            .map_err(|_| invalid("keys.default_environment", "must be 'live' or 'test'"))
    }

    /// `[keys]` as the key policy.
    pub fn key_policy(&self) -> keymint_application::KeyPolicy {
        keymint_application::KeyPolicy {
            max_active_keys: self.keys.max_active_per_org,
            max_expiry: chrono::Duration::days(i64::from(self.keys.max_expiry_days)),
        }
    }

    /// `[hashing]` as argon2 parameters.
    pub fn argon2_params(&self) -> Argon2Params {
        Argon2Params {
            memory_kib: self.hashing.memory_kib,
            iterations: self.hashing.iterations,
            parallelism: self.hashing.parallelism,
        }
    }

    fn claim_rules(&self) -> ClaimRules {
        let non_empty = |s: &str| (!s.trim().is_empty()).then(|| s.to_owned());
        ClaimRules {
            issuer: non_empty(&self.auth.issuer),
            audience: non_empty(&self.auth.audience),
            org_claim: self.auth.org_claim.clone(),
            leeway_seconds: self.auth.leeway_seconds,
        }
    }

    /// `[auth]` as an HS256 configuration (whether or not HS256 is the mode in
    /// force; `dev-token` and tests sign with it).
    pub fn hs256(&self) -> Hs256Config {
        Hs256Config {
            secret: self.auth.hs256_secret.clone(),
            rules: self.claim_rules(),
        }
    }

    /// How bearer tokens are verified: a JWKS URL wins, then an HS256 secret, then
    /// OIDC discovery from the issuer alone.
    pub fn auth_mode(&self) -> Result<AuthMode, ConfigError> {
        let auth = &self.auth;
        let source = if !auth.jwks_url.trim().is_empty() {
            if !(auth.jwks_url.starts_with("https://") || auth.jwks_url.starts_with("http://")) {
                return Err(invalid("auth.jwks_url", "must be an http(s) URL"));
            }
            JwksSource::Url(auth.jwks_url.clone())
        } else if !auth.hs256_secret.expose_secret().is_empty() {
            return Ok(AuthMode::Hs256(self.hs256()));
        } else if !auth.issuer.trim().is_empty() {
            JwksSource::Discovery {
                issuer: auth.issuer.clone(),
            }
        } else {
            return Err(invalid(
                "auth",
                "no token verification configured: set auth.jwks_url, auth.issuer (OIDC discovery) or auth.hs256_secret",
            ));
        };
        let algorithms = auth
            .algorithms
            .split(',')
            .map(str::trim)
            .filter(|a| !a.is_empty())
            .map(|name| {
                Algorithm::from_str(name)
                    .ok()
                    .filter(|a| SUPPORTED_ALGORITHMS.contains(a))
                    .ok_or_else(|| {
                        invalid(
                            "auth.algorithms",
                            format!("'{name}' is not one of RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384"),
                        )
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;
        if algorithms.is_empty() {
            return Err(invalid("auth.algorithms", "must name at least one algorithm"));
        }
        if auth.jwks_refresh_seconds == 0 || auth.jwks_timeout_seconds == 0 {
            return Err(invalid(
                "auth.jwks_refresh_seconds",
                "refresh period and timeout must be greater than 0",
            ));
        }
        Ok(AuthMode::Jwks(JwksConfig {
            source,
            algorithms,
            rules: self.claim_rules(),
            refresh_interval: Duration::from_secs(auth.jwks_refresh_seconds),
            refetch_cooldown: Duration::from_secs(auth.jwks_cooldown_seconds),
            http_timeout: Duration::from_secs(auth.jwks_timeout_seconds),
            max_document_bytes: 256 * 1024,
        }))
    }

    /// `[database]` as adapter options.
    pub fn database_options(&self) -> keymint_infrastructure::sql::DatabaseOptions {
        keymint_infrastructure::sql::DatabaseOptions {
            max_connections: self.database.max_connections,
            connect_timeout: Duration::from_secs(self.database.connect_timeout_seconds),
            acquire_timeout: Duration::from_secs(self.database.acquire_timeout_seconds),
            sqlite_busy_timeout: Duration::from_secs(self.database.sqlite_busy_timeout_seconds),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(key: &str, value: impl serde::Serialize) -> Result<Settings, ConfigError> {
        Settings::from_figment(Settings::defaults().merge((key, value)))
    }

    #[test]
    fn the_shipped_defaults_load_and_use_sqlite_under_data() {
        let settings = Settings::from_figment(Settings::defaults()).unwrap();
        assert_eq!(settings.profile, Profile::Development);
        assert_eq!(settings.listen_addr().unwrap().to_string(), "127.0.0.1:8080");
        assert_eq!(settings.database.url.expose_secret(), "sqlite://data/keymint.db");
        assert_eq!(settings.argon2_params(), Argon2Params::default());
        assert_eq!(settings.default_environment().unwrap(), Environment::Live);
        assert!(settings.uses_development_secret());
    }

    #[test]
    fn production_refuses_the_development_secret_and_short_secrets() {
        let err = with("profile", "production").unwrap_err().to_string();
        assert!(err.contains("auth.hs256_secret"), "{err}");
        let short = Settings::from_figment(
            Settings::defaults()
                .merge(("profile", "production"))
                .merge(("auth.hs256_secret", "short")),
        );
        assert!(short.unwrap_err().to_string().contains("at least 32 bytes"));
        let good = Settings::from_figment(
            Settings::defaults()
                .merge(("profile", "production"))
                .merge(("auth.hs256_secret", "a-production-secret-of-sufficient-length")),
        );
        assert!(good.is_ok());
    }

    #[test]
    fn the_auth_mode_follows_jwks_url_then_secret_then_issuer() {
        let jwks = with("auth.jwks_url", "https://tenant.example/.well-known/jwks.json").unwrap();
        assert!(matches!(
            jwks.auth_mode(),
            Ok(AuthMode::Jwks(JwksConfig {
                source: JwksSource::Url(_),
                ..
            }))
        ));
        assert!(
            !jwks.uses_development_secret(),
            "the secret is unused when a JWKS is configured"
        );

        let hs = Settings::from_figment(Settings::defaults()).unwrap();
        assert!(matches!(hs.auth_mode(), Ok(AuthMode::Hs256(_))));

        let discovery = Settings::from_figment(
            Settings::defaults()
                .merge(("auth.hs256_secret", ""))
                .merge(("auth.issuer", "https://tenant.example/")),
        )
        .unwrap();
        assert!(matches!(
            discovery.auth_mode(),
            Ok(AuthMode::Jwks(JwksConfig {
                source: JwksSource::Discovery { .. },
                ..
            }))
        ));

        let none = Settings::from_figment(Settings::defaults().merge(("auth.hs256_secret", "")));
        assert!(none
            .unwrap_err()
            .to_string()
            .contains("no token verification configured"));
        let bad = Settings::from_figment(
            Settings::defaults()
                .merge(("auth.jwks_url", "https://t.example/jwks"))
                .merge(("auth.algorithms", "RS256,HS256")),
        );
        assert!(bad.unwrap_err().to_string().contains("auth.algorithms"));
    }

    #[test]
    fn production_accepts_a_jwks_without_any_secret() {
        let settings = Settings::from_figment(
            Settings::defaults()
                .merge(("profile", "production"))
                .merge(("auth.hs256_secret", ""))
                .merge(("auth.issuer", "https://tenant.example/"))
                .merge(("auth.audience", "https://keymint.example")),
        );
        assert!(settings.is_ok());
    }

    #[test]
    fn bad_values_are_refused_with_the_key_named() {
        let cases: [(&str, Result<Settings, ConfigError>); 5] = [
            ("hashing.memory_kib", with("hashing.memory_kib", "lots")),
            ("server.listen", with("server.listen", "localhost")),
            ("keys.default_environment", with("keys.default_environment", "prod")),
            ("hashing", with("hashing.iterations", 0)),
            ("typo", with("server.typo", 1)),
        ];
        for (key, result) in cases {
            let message = result.unwrap_err().to_string();
            assert!(message.contains(key), "{key}: {message}");
        }
    }

    #[test]
    fn secrets_never_appear_in_debug_output() {
        let settings = with("auth.hs256_secret", "super-secret-value-0123456789abcdef").unwrap();
        let debug = format!("{settings:?}");
        assert!(!debug.contains("super-secret-value"), "{debug}");
        assert!(
            !debug.contains("sqlite://data"),
            "database URLs can hold passwords: {debug}"
        );
    }
}
