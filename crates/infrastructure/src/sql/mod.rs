//! The sea-orm adapter, for SQLite (the embedded default) and PostgreSQL.

mod connect;
mod creates;
pub(crate) mod entity;
mod ledger;
mod listener;
mod repository;
mod webhooks;

pub use connect::{connect, ConnectError, Database, DatabaseErrors, DatabaseOptions, DatabaseUrl, PoolStats};
pub use listener::{spawn_change_listener, ListenerStats};
pub use repository::{SqlApiKeyRepository, KEY_CHANGES_CHANNEL};
