//! Loading: the layers merged in their order, the settings extracted from
//! them, and the rules that span more than one value; every problem is
//! reported naming its key.

use figment::providers::{Env, Format, Toml};
use figment::Figment;
use secrecy::ExposeSecret;

use super::{
    AuthMode, Profile, Settings, DEVELOPMENT_SECRET, EMBEDDED_DEFAULTS, EMBEDDED_PRODUCTION,
    MIN_PRODUCTION_SECRET_BYTES, SECTIONS,
};

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

/// `path` in the working directory, if it is there. Never a file found in a
/// parent directory (figment's `Toml::file` searches them): run from inside
/// some checkout, that would be another version's configuration.
fn local_file(path: &str) -> Option<figment::providers::Data<Toml>> {
    std::path::Path::new(path).is_file().then(|| Toml::file_exact(path))
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
        let mut figment = Figment::new().merge(Toml::string(EMBEDDED_DEFAULTS));
        if let Some(file) = local_file("config/default.toml") {
            figment = figment.merge(file);
        }
        if profile == "production" {
            figment = figment.merge(Toml::string(EMBEDDED_PRODUCTION));
        }
        if let Some(file) = local_file(&format!("config/{profile}.toml")) {
            figment = figment.merge(file);
        }
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
        // Coarser buckets outlive finer ones: a total takes its whole days
        // from day rows and its edges from hour rows, which must agree.
        if self.analytics.hour_retention < self.analytics.minute_retention {
            return Err(invalid(
                "analytics.hour_retention_days",
                "must be at least analytics.minute_retention_days",
            ));
        }
        if self.analytics.day_retention < self.analytics.hour_retention {
            return Err(invalid(
                "analytics.day_retention_days",
                "must be at least analytics.hour_retention_days",
            ));
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
        if let Some((setting, _)) = self.auth.insecure_source() {
            if self.profile == Profile::Production && !self.auth.allow_http {
                return Err(invalid(
                    setting,
                    "must be https in production (signing keys fetched over http can be swapped on the way); \
                     http is accepted on loopback, or with auth.allow_http = true",
                ));
            }
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
}
