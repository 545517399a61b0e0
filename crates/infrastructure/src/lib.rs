//! Adapters implementing Keymint's ports: sea-orm repositories (SQLite, PostgreSQL),
//! an in-memory repository, the argon2id hasher, the JWT verifier, the system clock
//! and the secure key generator.

mod clock;
mod generator;
mod hasher;
mod jwks;
mod jwt;
mod memory;
mod organizations;
pub mod sql;
mod verification;

pub use clock::SystemClock;
pub use generator::OsKeyGenerator;
pub use hasher::{Argon2Hasher, Argon2Params};
pub use jwks::{JwksConfig, JwksSource, JwksVerifier, SUPPORTED_ALGORITHMS};
pub use jwt::{ClaimRules, DevTokenRequest, Hs256Config, Hs256Verifier};
pub use memory::InMemoryApiKeyRepository;
pub use organizations::{InMemoryOrganizationDirectory, SqlOrganizationDirectory};
pub use verification::{CoalescingUsageTracker, ShardedVerificationCache, WindowFailureLimiter};
