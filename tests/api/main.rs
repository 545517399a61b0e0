//! Black-box tests of the whole service over HTTP, each scenario run against every
//! storage adapter.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../support/mod.rs"]
mod support;

mod analytics;
mod authentication;
mod budgets;
mod console;
mod create_api_key;
mod extractor;
mod faults;
mod hash_upgrade;
mod health;
mod import;
mod jwks;
mod leaks;
mod lifecycle;
mod meta;
mod metrics;
mod openapi;
mod owners;
mod permissions;
mod secret_scanning;
mod slow_bodies;
mod sqlite_storage;
mod usage_limits;
mod validation;
mod verification;
mod webhooks;
