//! The sea-orm adapter, for SQLite (the embedded default) and PostgreSQL.

mod analytics;
mod analytics_tables;
mod connect;
mod creates;
mod deliveries;
pub(crate) mod entity;
mod errors;
mod ledger;
mod listener;
mod outbox;
mod repository;
mod rows;
mod verification;
mod webhooks;

pub use connect::{connect, ConnectError, Database, DatabaseErrors, DatabaseOptions, DatabaseUrl, PoolStats};
pub use listener::{spawn_change_listener, ListenerStats, KEY_CHANGES_CHANNEL};
pub use repository::SqlApiKeyRepository;
