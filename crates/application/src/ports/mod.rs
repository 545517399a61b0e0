//! The ports: what the use cases need, split by capability.

mod analytics;
mod auth;
mod cache;
mod clock;
mod digests;
mod failure_limiter;
mod generator;
mod hasher;
mod metering;
mod repository;
mod scanner;
mod usage;
mod webhooks;

pub use analytics::*;
pub use auth::*;
pub use cache::*;
pub use clock::*;
pub use digests::*;
pub use failure_limiter::*;
pub use generator::*;
pub use hasher::*;
pub use metering::*;
pub use repository::*;
pub use scanner::*;
pub use usage::*;
pub use webhooks::*;
