//! The settings of each `[section]` but `[auth]`, as they are once loaded:
//! every value typed, each read by its reader in `values`.

use std::net::SocketAddr;
use std::str::FromStr;
use std::time::Duration;

use keymint_application::LeakAction;
use keymint_domain::{Environment, KeyFormat, KeyPrefix};
use keymint_infrastructure::sql::{DatabaseOptions, DatabaseUrl};
use serde::Deserialize;

use super::{values, MEMORY_URL};

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

/// `[analytics]`
#[derive(Clone, Copy, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnalyticsSettings {
    /// Whether verifications are counted.
    pub enabled: bool,
    /// How long counts wait in memory between writes (`flush_seconds`).
    #[serde(rename = "flush_seconds", deserialize_with = "values::positive_seconds")]
    pub flush: Duration,
    /// How long minute buckets are kept (`minute_retention_days`).
    #[serde(rename = "minute_retention_days", deserialize_with = "values::positive_days")]
    pub minute_retention: Duration,
    /// How long hour buckets are kept (`hour_retention_days`).
    #[serde(rename = "hour_retention_days", deserialize_with = "values::positive_days")]
    pub hour_retention: Duration,
    /// How long day buckets are kept (`day_retention_days`).
    #[serde(rename = "day_retention_days", deserialize_with = "values::positive_days")]
    pub day_retention: Duration,
    /// How often old buckets are deleted (`prune_interval_seconds`).
    #[serde(rename = "prune_interval_seconds", deserialize_with = "values::positive_seconds")]
    pub prune_interval: Duration,
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
