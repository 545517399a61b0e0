//! Layered configuration: built-in defaults (`config/default.toml`, compiled in),
//! then `config/default.toml` and `config/<profile>.toml` from the working
//! directory, then the file named by `KEYMINT_CONFIG`, then environment variables
//! `KEYMINT_<SECTION>__<KEY>`.
//!
//! Every value is parsed once, at load, into the type it is used as (addresses,
//! durations, environments, algorithms, the storage kind, the auth mode); a value
//! that does not parse stops start-up with a message naming its key. After
//! loading, nothing is parsed again and no accessor can fail.
//!
//! The settings of each section are in `sections`, but `[auth]`'s, whose mode
//! is decided at load, in `auth`; loading and the checks across values are in
//! `load`. This module holds the whole `Settings` and what the other layers are
//! given from it.

mod auth;
mod load;
mod sections;
mod values;

pub use auth::{AuthMode, AuthSettings};
pub use load::ConfigError;
pub use sections::{
    AnalyticsSettings, ConsoleSettings, DatabaseSettings, HashAlgorithm, HashingSettings, KeySettings, LeakSettings,
    LogFormat, LogSettings, MetricsSettings, ServerSettings, StorageUrl, UnsupportedStorage, VerifySettings,
    WebhookSettings,
};

use std::time::Duration;

use keymint_infrastructure::{Argon2Params, ClaimRules, HashScheme, Hs256Config, JwksSource};
use secrecy::ExposeSecret;
use serde::Deserialize;

/// The HS256 secret shipped for development. Public by construction.
pub const DEVELOPMENT_SECRET: &str = "keymint-development-secret-do-not-use-in-production";

/// The `database.url` that selects the in-memory store.
pub const MEMORY_URL: &str = "memory:";

const EMBEDDED_DEFAULTS: &str = include_str!("../../config/default.toml");
/// The production profile, compiled in too: a binary copied anywhere runs the
/// profile the README describes, with or without a `config/` folder beside it.
const EMBEDDED_PRODUCTION: &str = include_str!("../../config/production.toml");
const SECTIONS: [&str; 12] = [
    "server",
    "database",
    "auth",
    "hashing",
    "keys",
    "verify",
    "analytics",
    "log",
    "metrics",
    "leaks",
    "webhooks",
    "console",
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
    /// Usage analytics.
    pub analytics: AnalyticsSettings,
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

impl Settings {
    /// How long analytics buckets are kept, per width.
    pub fn analytics_retention(&self) -> keymint_application::Retention {
        keymint_application::Retention {
            minute: chrono_duration(self.analytics.minute_retention),
            hour: chrono_duration(self.analytics.hour_retention),
            day: chrono_duration(self.analytics.day_retention),
        }
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
                    JwksSource::Discovery { issuer } => format!(
                        "discovery={}/.well-known/openid-configuration",
                        issuer.trim_end_matches('/')
                    ),
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
