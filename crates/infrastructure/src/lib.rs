//! Adapters implementing Keymint's ports: sea-orm repositories (SQLite, PostgreSQL),
//! an in-memory repository, the key hasher (SHA-256, argon2id for older hashes), the
//! lookup digest filter, the JWT verifier, the system clock
//! and the secure key generator.

#![forbid(unsafe_code)]

mod analytics;
mod batch;
mod cache;
mod clock;
mod digest_filter;
mod failure_limiter;
mod generator;
mod github;
mod hasher;
mod home_runtime;
mod jwks;
mod jwt;
mod memory;
mod meter;
pub mod metrics;
mod organizations;
mod remote_keys;
pub mod sql;
mod usage;
mod webhook_sender;

pub use cache::{CacheStats, ShardedVerificationCache};
pub use clock::{unix_now, SystemClock};
pub use digest_filter::LookupDigestFilter;
pub use failure_limiter::{BudgetStats, WindowFailureLimiter};
pub use generator::OsKeyGenerator;
pub use github::{GithubKeysConfig, GithubReportSignatures, GITHUB_SECRET_SCANNING_KEYS_URL};
pub use hasher::{Argon2Hasher, Argon2Params, Argon2Worker, HashScheme, HashingLoad, KeyHasher};
pub use jwks::{parse_algorithm, JwksConfig, JwksSource, JwksVerifier, UnsupportedAlgorithm, SUPPORTED_ALGORITHMS};
pub use jwt::{ClaimRules, DevTokenRequest, Hs256Config, Hs256Verifier};
pub use memory::InMemoryApiKeyRepository;
pub use meter::{BatchingMeter, MeterStats};
pub use organizations::{InMemoryOrganizationDirectory, SqlOrganizationDirectory};
pub use usage::{CoalescingUsageTracker, UsageStats};
pub use webhook_sender::{HttpWebhookSender, MAX_RESPONSE_BYTES};
