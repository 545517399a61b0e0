//! Keymint's schema. The only place schema changes live; run at start-up and by
//! `keymint migrate`. Migrations describe tables with sea-query and never import
//! entity types, so old migrations keep compiling as entities evolve.

#![forbid(unsafe_code)]

pub use sea_orm_migration::prelude::*;

mod m20261126_000001_create_api_keys;
mod m20261126_000002_key_lifecycle;
mod m20261126_000003_organizations;
mod m20261126_000004_active_keys_index;
mod m20261126_000005_key_permissions;
mod m20261126_000006_key_owners;
mod m20261126_000007_key_meta;
mod m20261126_000008_key_usage_limits;
mod m20261126_000009_key_leaks;
mod m20261126_000010_webhooks;
mod m20261126_000011_key_announcements;
mod m20261127_000012_key_name_search;
mod m20261203_000013_webhook_breakers;
mod m20261203_000014_lookup_digests;
mod m20261204_000015_verification_buckets;
mod m20261204_000016_verification_key_counts;

/// Every migration, in order.
#[derive(Debug)]
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261126_000001_create_api_keys::Migration),
            Box::new(m20261126_000002_key_lifecycle::Migration),
            Box::new(m20261126_000003_organizations::Migration),
            Box::new(m20261126_000004_active_keys_index::Migration),
            Box::new(m20261126_000005_key_permissions::Migration),
            Box::new(m20261126_000006_key_owners::Migration),
            Box::new(m20261126_000007_key_meta::Migration),
            Box::new(m20261126_000008_key_usage_limits::Migration),
            Box::new(m20261126_000009_key_leaks::Migration),
            Box::new(m20261126_000010_webhooks::Migration),
            Box::new(m20261126_000011_key_announcements::Migration),
            Box::new(m20261127_000012_key_name_search::Migration),
            Box::new(m20261203_000013_webhook_breakers::Migration),
            Box::new(m20261203_000014_lookup_digests::Migration),
            Box::new(m20261204_000015_verification_buckets::Migration),
            Box::new(m20261204_000016_verification_key_counts::Migration),
        ]
    }
}
