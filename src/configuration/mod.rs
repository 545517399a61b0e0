//! Layered configuration: built-in defaults (`config/default.toml`, compiled in),
//! then `config/default.toml` and `config/<profile>.toml` from the working
//! directory, then the file named by `KEYMINT_CONFIG`, then environment variables
//! `KEYMINT_<SECTION>__<KEY>`.
//!
//! Every value is parsed once, at load, into the type it is used as (addresses,
//! durations, environments, algorithms, the storage kind, the auth mode); a value
//! that does not parse stops start-up with a message naming its key. After
//! loading, nothing is parsed again and no accessor can fail.

mod values;

use std::net::SocketAddr;
use std::str::FromStr;
use std::time::Duration;

use figment::providers::{Env, Format, Toml};
use figment::Figment;
use jsonwebtoken::Algorithm;
use keymint_application::LeakAction;
use keymint_domain::{Environment, KeyFormat, KeyPrefix};
use keymint_infrastructure::sql::{DatabaseOptions, DatabaseUrl};
use keymint_infrastructure::{Argon2Params, ClaimRules, HashScheme, Hs256Config, JwksConfig, JwksSource};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

/// The HS256 secret shipped for development. Public by construction.
pub const DEVELOPMENT_SECRET: &str = "keymint-development-secret-do-not-use-in-production";

/// The `database.url` that selects the in-memory store.
pub const MEMORY_URL: &str = "memory:";

const EMBEDDED_DEFAULTS: &str = include_str!("../../config/default.toml");
/// The production profile, compiled in too: a binary copied anywhere runs the
/// profile the README describes, with or without a `config/` folder beside it.
const EMBEDDED_PRODUCTION: &str = include_str!("../../config/production.toml");
const SECTIONS: [&str; 11] = [
    "server", "database", "auth", "hashing", "keys", "verify", "log", "metrics", "leaks", "webhooks", "console",
];
const MIN_PRODUCTION_SECRET_BYTES: usize = 32;

fn chrono_duration(duration: Duration) -> chrono::Duration {
    chrono::Duration::from_std(duration).unwrap_or(chrono::Duration::MAX)
}
/// The largest JWKS or discovery document accepted.
const MAX_JWKS_DOCUMENT_BYTES: usize = 256 * 1024;

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
    /// Prometheus metrics.
    pub metrics: MetricsSettings,
    /// Leaked keys.
    pub leaks: LeakSettings,
    /// Webhook deliveries.
    pub webhooks: WebhookSettings,
    /// The web console.
    pub console: ConsoleSettings,
}

/// `[console]`
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsoleSettings {
    /// Whether `/console` is served.
    pub enabled: bool,
    /// The console's client id at the OIDC issuer (`auth.issuer`); set, the
    /// console signs people in there with the authorization-code flow and PKCE.
    #[serde(deserialize_with = "values::optional_text")]
    pub client_id: Option<String>,
    /// The scopes the console asks the issuer for.
    pub scope: String,
    /// How long a development sign-in lasts (`dev_session_minutes`).
    pub dev_session_minutes: u64,
    /// Offer the development sign-in on a listener other hosts can reach
    /// (only loopback listeners offer it otherwise).
    pub allow_remote_dev_sign_in: bool,
}

/// `[webhooks]`
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookSettings {
    /// Accept `http` URLs (only `https` otherwise).
    pub allow_http: bool,
    /// Deliver to private, loopback and link-local addresses.
    pub allow_private_targets: bool,
    /// The most webhooks one organisation may have.
    pub max_per_org: u32,
    /// One attempt's timeout (`timeout_seconds`).
    #[serde(rename = "timeout_seconds", deserialize_with = "values::positive_seconds")]
    pub timeout: Duration,
    /// Attempts before a delivery is marked failed.
    pub max_attempts: u32,
    /// The first retry's delay (`backoff_base_seconds`).
    #[serde(rename = "backoff_base_seconds", deserialize_with = "values::positive_seconds")]
    pub backoff_base: Duration,
    /// The longest delay between attempts (`backoff_cap_seconds`).
    #[serde(rename = "backoff_cap_seconds", deserialize_with = "values::positive_seconds")]
    pub backoff_cap: Duration,
    /// How often each process looks for due deliveries (`poll_interval_ms`).
    #[serde(rename = "poll_interval_ms", deserialize_with = "values::positive_millis")]
    pub poll_interval: Duration,
    /// How long a rotated-out signing secret keeps signing (`secret_overlap_hours`).
    #[serde(rename = "secret_overlap_hours", deserialize_with = "values::hours")]
    pub secret_overlap: Duration,
    /// How many days before `expires_at` a key's `key.expiring` goes out.
    pub expiring_notice_days: u32,
    /// At how many credits left a key's `key.credits_low` goes out.
    pub credits_low_threshold: u64,
    /// How many days settled deliveries and their attempts are kept.
    pub retention_days: u32,
    /// How often keys are swept for those two events (`sweep_interval_seconds`).
    #[serde(rename = "sweep_interval_seconds", deserialize_with = "values::positive_seconds")]
    pub sweep_interval: Duration,
    /// The most deliveries one process sends at once.
    pub max_in_flight: usize,
    /// The most deliveries in flight to one endpoint, all processes together.
    pub max_in_flight_per_endpoint: usize,
    /// The most deliveries in flight for one organisation, all processes together.
    pub max_in_flight_per_org: usize,
    /// Consecutive failed attempts that pause an endpoint.
    pub breaker_failures: u32,
    /// The first pause (`breaker_pause_seconds`).
    #[serde(rename = "breaker_pause_seconds", deserialize_with = "values::positive_seconds")]
    pub breaker_pause: Duration,
    /// The longest pause (`breaker_max_pause_seconds`).
    #[serde(rename = "breaker_max_pause_seconds", deserialize_with = "values::positive_seconds")]
    pub breaker_max_pause: Duration,
}

/// `[leaks]`
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LeakSettings {
    /// What a genuine leak report does: revoke or flag.
    #[serde(deserialize_with = "values::leak_action")]
    pub action: LeakAction,
    /// Where GitHub publishes its secret-scanning signing keys.
    #[serde(deserialize_with = "values::required_http_url")]
    pub github_keys_url: String,
    /// Least time between refetches for unknown key ids (`github_keys_cooldown_seconds`).
    #[serde(rename = "github_keys_cooldown_seconds", deserialize_with = "values::seconds")]
    pub github_keys_cooldown: Duration,
    /// Background refresh of fetched keys (`github_keys_refresh_seconds`).
    #[serde(
        rename = "github_keys_refresh_seconds",
        deserialize_with = "values::positive_seconds"
    )]
    pub github_keys_refresh: Duration,
    /// Timeout of one key fetch (`github_keys_timeout_seconds`).
    #[serde(
        rename = "github_keys_timeout_seconds",
        deserialize_with = "values::positive_seconds"
    )]
    pub github_keys_timeout: Duration,
    /// The largest alert batch read, bytes.
    pub github_body_limit_bytes: usize,
    /// What alert batches being received may hold together, bytes.
    pub github_body_memory_bytes: usize,
}

/// `[metrics]`
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsSettings {
    /// Whether `/metrics` is served at all.
    pub enabled: bool,
    /// Serve `/metrics` here only, away from the API; empty = on the API's
    /// listener.
    #[serde(deserialize_with = "values::optional_socket_address")]
    pub listen: Option<SocketAddr>,
}

/// `[server]`
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSettings {
    /// Address to listen on.
    #[serde(deserialize_with = "values::socket_address")]
    pub listen: SocketAddr,
    /// Request body limit, bytes.
    pub body_limit_bytes: usize,
    /// Request body limit of key imports, bytes.
    pub import_body_limit_bytes: usize,
    /// What request bodies being received may hold together, bytes.
    pub body_memory_bytes: usize,
    /// How long a request body may take to arrive, whole (`body_timeout_seconds`).
    #[serde(rename = "body_timeout_seconds", deserialize_with = "values::positive_seconds")]
    pub body_timeout: Duration,
    /// Worker threads; 0 = one per core.
    pub workers: usize,
    /// How long in-flight requests get to finish on shutdown (`shutdown_timeout_seconds`).
    #[serde(rename = "shutdown_timeout_seconds", deserialize_with = "values::seconds")]
    pub shutdown_timeout: Duration,
    /// Reverse proxies (addresses or CIDR networks) whose `Forwarded` /
    /// `X-Forwarded-For` headers name the client; empty: the socket's peer is.
    #[serde(default, deserialize_with = "values::networks")]
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// The header those proxies append the client to; the other is ignored.
    #[serde(default, deserialize_with = "values::forwarded_header")]
    pub forwarded_header: keymint_web::ForwardedHeader,
}

/// Where keys are stored, decided once from `database.url`.
#[derive(Clone, Debug)]
pub enum StorageUrl {
    /// `memory:`: nothing is kept; for demos and tests.
    Memory,
    /// SQLite or PostgreSQL.
    Sql(DatabaseUrl),
}

impl StorageUrl {
    /// The SQL database, unless storage is in memory.
    pub fn sql(&self) -> Option<&DatabaseUrl> {
        match self {
            StorageUrl::Memory => None,
            StorageUrl::Sql(url) => Some(url),
        }
    }
}

/// `database.url` names no store Keymint has.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unsupported database URL scheme (expected sqlite:, postgres:// or memory:)")]
pub struct UnsupportedStorage;

impl FromStr for StorageUrl {
    type Err = UnsupportedStorage;

    fn from_str(url: &str) -> Result<Self, Self::Err> {
        if url == MEMORY_URL {
            return Ok(StorageUrl::Memory);
        }
        url.parse().map(StorageUrl::Sql).map_err(|_| UnsupportedStorage)
    }
}

/// `[database]`
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseSettings {
    /// `sqlite:…`, `postgres://…` or `memory:`.
    #[serde(deserialize_with = "values::storage_url")]
    pub url: StorageUrl,
    /// Pool size.
    pub max_connections: u32,
    /// How long opening a connection may take (`connect_timeout_seconds`).
    #[serde(rename = "connect_timeout_seconds", deserialize_with = "values::seconds")]
    pub connect_timeout: Duration,
    /// How long a request waits for a pooled connection (`acquire_timeout_seconds`).
    #[serde(rename = "acquire_timeout_seconds", deserialize_with = "values::seconds")]
    pub acquire_timeout: Duration,
    /// How long SQLite waits for another writer (`sqlite_busy_timeout_seconds`).
    #[serde(rename = "sqlite_busy_timeout_seconds", deserialize_with = "values::seconds")]
    pub sqlite_busy_timeout: Duration,
}

impl DatabaseSettings {
    /// The settings as adapter options.
    pub fn options(&self) -> DatabaseOptions {
        DatabaseOptions {
            max_connections: self.max_connections,
            connect_timeout: self.connect_timeout,
            acquire_timeout: self.acquire_timeout,
            sqlite_busy_timeout: self.sqlite_busy_timeout,
        }
    }
}

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
        })
    }
}

/// How new private keys are hashed (`hashing.algorithm`).
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum HashAlgorithm {
    /// SHA-256: Keymint's keys carry 256 random bits.
    Sha256,
    /// argon2id at `[hashing]`'s cost, for password-grade cost on every key.
    Argon2id,
}

/// `[hashing]`
#[derive(Clone, Copy, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HashingSettings {
    /// How new private keys are hashed.
    pub algorithm: HashAlgorithm,
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
    /// The environment of keys created without one.
    #[serde(deserialize_with = "values::environment")]
    pub default_environment: Environment,
    /// The most unrevoked, unexpired keys one organisation may hold.
    pub max_active_per_org: u32,
    /// How many days ahead `expires_at` may be.
    pub max_expiry_days: u32,
    /// The prefix new keys are issued under.
    #[serde(deserialize_with = "values::key_prefix")]
    pub prefix: KeyPrefix,
    /// Earlier prefixes whose keys still verify.
    #[serde(deserialize_with = "values::key_prefixes")]
    pub accepted_prefixes: Vec<KeyPrefix>,
}

impl KeySettings {
    /// How keys are issued and recognised.
    pub fn format(&self) -> KeyFormat {
        KeyFormat::new(self.prefix.clone(), self.accepted_prefixes.iter().cloned())
    }
}

/// `[verify]`
#[derive(Clone, Copy, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VerifySettings {
    /// Cached verifications per process.
    pub cache_capacity: u64,
    /// How long a cached verification is trusted (`cache_ttl_seconds`).
    #[serde(rename = "cache_ttl_seconds", deserialize_with = "values::seconds")]
    pub cache_ttl: Duration,
    /// How often `last_used_at` is written (`usage_flush_seconds`).
    #[serde(rename = "usage_flush_seconds", deserialize_with = "values::positive_seconds")]
    pub usage_flush: Duration,
    /// How long after writing a key's `last_used_at` its next use waits to be
    /// written (`usage_resolution_seconds`; 0: every flush).
    #[serde(rename = "usage_resolution_seconds", deserialize_with = "values::seconds")]
    pub usage_resolution: Duration,
    /// Failed verifications per lookup id per window (0 = unlimited).
    pub max_failures_per_key: u32,
    /// Failed verifications per client address per window (0 = unlimited).
    pub max_failures_per_client: u32,
    /// The failure window (`failure_window_seconds`).
    #[serde(rename = "failure_window_seconds", deserialize_with = "values::positive_seconds")]
    pub failure_window: Duration,
    /// How often the lookup digest filter checks for keys imported by other
    /// processes (`digest_refresh_seconds`).
    #[serde(rename = "digest_refresh_seconds", deserialize_with = "values::positive_seconds")]
    pub digest_refresh: Duration,
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
        // Defaults, then the profile; in each, what is compiled in first and a
        // file in ./config over it.
        let mut figment = Figment::new()
            .merge(Toml::string(EMBEDDED_DEFAULTS))
            .merge(Toml::file("config/default.toml"));
        if profile == "production" {
            figment = figment.merge(Toml::string(EMBEDDED_PRODUCTION));
        }
        figment = figment.merge(Toml::file(format!("config/{profile}.toml")));
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
        // figment reports a missing file without its path; say which file.
        if let Ok(path) = std::env::var("KEYMINT_CONFIG") {
            if !std::path::Path::new(&path).is_file() {
                return Err(ConfigError::Load(format!(
                    "KEYMINT_CONFIG names {path}, which is not a readable file"
                )));
            }
        }
        Self::from_figment(Self::figment())
    }

    /// Extracts and checks settings from `figment`.
    pub fn from_figment(figment: Figment) -> Result<Self, ConfigError> {
        let settings: Settings = figment.extract().map_err(describe)?;
        settings.validate()?;
        Ok(settings)
    }

    /// The rules that span more than one value or need more than its type.
    fn validate(&self) -> Result<(), ConfigError> {
        self.argon2_params()
            .check()
            .map_err(|e| invalid("hashing", format!("{:#}", e.0)))?;
        if self.server.body_limit_bytes == 0 {
            return Err(invalid("server.body_limit_bytes", "must be greater than 0"));
        }
        if self.webhooks.max_attempts == 0 {
            return Err(invalid("webhooks.max_attempts", "must be greater than 0"));
        }
        if self.webhooks.retention_days == 0 || self.webhooks.retention_days > 3650 {
            return Err(invalid("webhooks.retention_days", "must be between 1 and 3650"));
        }
        if self.webhooks.expiring_notice_days > 365 {
            return Err(invalid("webhooks.expiring_notice_days", "must be at most 365"));
        }
        if self.webhooks.max_in_flight == 0 {
            return Err(invalid("webhooks.max_in_flight", "must be greater than 0"));
        }
        if self.webhooks.max_in_flight_per_endpoint == 0 {
            return Err(invalid("webhooks.max_in_flight_per_endpoint", "must be greater than 0"));
        }
        if self.webhooks.max_in_flight_per_org == 0 {
            return Err(invalid("webhooks.max_in_flight_per_org", "must be greater than 0"));
        }
        if self.webhooks.breaker_failures == 0 {
            return Err(invalid("webhooks.breaker_failures", "must be greater than 0"));
        }
        if self.webhooks.breaker_max_pause < self.webhooks.breaker_pause {
            return Err(invalid(
                "webhooks.breaker_max_pause_seconds",
                "must be at least webhooks.breaker_pause_seconds",
            ));
        }
        if self.webhooks.max_per_org == 0 {
            return Err(invalid("webhooks.max_per_org", "must be greater than 0"));
        }
        if self.webhooks.backoff_cap < self.webhooks.backoff_base {
            return Err(invalid(
                "webhooks.backoff_cap_seconds",
                "must be at least webhooks.backoff_base_seconds",
            ));
        }
        if self.server.import_body_limit_bytes == 0 {
            return Err(invalid("server.import_body_limit_bytes", "must be greater than 0"));
        }
        if self.server.body_memory_bytes < self.server.import_body_limit_bytes {
            return Err(invalid(
                "server.body_memory_bytes",
                "must be at least server.import_body_limit_bytes",
            ));
        }
        if self.server.body_memory_bytes < self.server.body_limit_bytes {
            return Err(invalid(
                "server.body_memory_bytes",
                "must be at least server.body_limit_bytes",
            ));
        }
        if self.leaks.github_body_memory_bytes < self.leaks.github_body_limit_bytes {
            return Err(invalid(
                "leaks.github_body_memory_bytes",
                "must be at least leaks.github_body_limit_bytes",
            ));
        }
        if self.leaks.github_body_limit_bytes == 0 {
            return Err(invalid("leaks.github_body_limit_bytes", "must be greater than 0"));
        }
        if self.keys.max_active_per_org == 0 {
            return Err(invalid("keys.max_active_per_org", "must be greater than 0"));
        }
        if self.keys.max_expiry_days == 0 || self.keys.max_expiry_days > 36_500 {
            return Err(invalid("keys.max_expiry_days", "must be between 1 and 36500"));
        }
        if self.console.client_id.is_some() && self.auth.hs256.rules.issuer.is_none() {
            return Err(invalid(
                "console.client_id",
                "needs auth.issuer: the console signs people in at that issuer",
            ));
        }
        if self.console.dev_session_minutes == 0 || self.console.dev_session_minutes > 24 * 60 {
            return Err(invalid("console.dev_session_minutes", "must be between 1 and 1440"));
        }
        if self.database.max_connections == 0 {
            return Err(invalid("database.max_connections", "must be greater than 0"));
        }
        let secret = self.auth.hs256.secret.expose_secret();
        if self.profile == Profile::Production && matches!(self.auth.mode, AuthMode::Hs256(_)) {
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
        matches!(&self.auth.mode, AuthMode::Hs256(config) if config.secret.expose_secret() == DEVELOPMENT_SECRET)
    }

    /// `[webhooks]` as the management policy.
    pub fn webhook_policy(&self) -> keymint_application::WebhookPolicy {
        keymint_application::WebhookPolicy {
            allow_http: self.webhooks.allow_http,
            allow_private_targets: self.webhooks.allow_private_targets,
            max_per_org: self.webhooks.max_per_org,
            secret_overlap: chrono_duration(self.webhooks.secret_overlap),
        }
    }

    /// `[webhooks]` as the delivery policy. The lease outlasts an attempt twice
    /// over plus a margin for recording it, so only a process that died (or
    /// stalled for that long) loses its claim.
    pub fn delivery_policy(&self) -> keymint_application::DeliveryPolicy {
        keymint_application::DeliveryPolicy {
            max_attempts: self.webhooks.max_attempts,
            backoff_base: chrono_duration(self.webhooks.backoff_base),
            backoff_cap: chrono_duration(self.webhooks.backoff_cap),
            lease: chrono_duration(self.webhooks.timeout) * 2 + chrono::Duration::seconds(5),
            expiring_notice: chrono::Duration::days(i64::from(self.webhooks.expiring_notice_days)),
            credits_low_at: self.webhooks.credits_low_threshold,
            retention: chrono::Duration::days(i64::from(self.webhooks.retention_days)),
            max_in_flight_per_endpoint: self.webhooks.max_in_flight_per_endpoint,
            max_in_flight_per_org: self.webhooks.max_in_flight_per_org,
            breaker: keymint_domain::BreakerPolicy {
                failures_to_pause: self.webhooks.breaker_failures,
                first_pause: chrono_duration(self.webhooks.breaker_pause),
                longest_pause: chrono_duration(self.webhooks.breaker_max_pause),
            },
        }
    }

    /// `[keys]` as the key policy.
    pub fn key_policy(&self) -> keymint_application::KeyPolicy {
        keymint_application::KeyPolicy {
            max_active_keys: self.keys.max_active_per_org,
            max_expiry: chrono::Duration::days(i64::from(self.keys.max_expiry_days)),
        }
    }

    /// One line for the log at start-up: how tokens are verified, and against what.
    pub fn describe_auth(&self) -> String {
        let rules = |rules: &ClaimRules| {
            format!(
                "issuer={} audience={} org_claim={}",
                rules.issuer.as_deref().unwrap_or("(unchecked)"),
                rules.audience.as_deref().unwrap_or("(unchecked)"),
                rules.org_claim
            )
        };
        match &self.auth.mode {
            AuthMode::Hs256(config) => format!("mode=hs256 algorithms=HS256 {}", rules(&config.rules)),
            AuthMode::Jwks(config) => {
                let source = match &config.source {
                    JwksSource::Url(url) => format!("jwks_url={url}"),
                    JwksSource::Discovery { issuer } => format!("discovery={issuer}.well-known/openid-configuration"),
                };
                let algorithms: Vec<String> = config.algorithms.iter().map(|a| format!("{a:?}")).collect();
                format!(
                    "mode=jwks {source} algorithms={} {}",
                    algorithms.join(","),
                    rules(&config.rules)
                )
            }
        }
    }

    /// How new keys are hashed.
    pub fn hash_scheme(&self) -> HashScheme {
        match self.hashing.algorithm {
            HashAlgorithm::Sha256 => HashScheme::Sha256,
            HashAlgorithm::Argon2id => HashScheme::Argon2id(self.argon2_params()),
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

    /// The HS256 secret and claim rules (whether or not HS256 is the mode in
    /// force; `dev-token` and tests sign with them).
    pub fn hs256(&self) -> Hs256Config {
        self.auth.hs256.clone()
    }
}

#[cfg(test)]
mod tests;
