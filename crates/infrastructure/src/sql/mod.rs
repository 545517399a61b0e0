//! The sea-orm adapter, for SQLite (the embedded default) and PostgreSQL.

mod connect;
pub(crate) mod entity;
mod listener;
mod repository;

pub use connect::{connect, ConnectError, Database, DatabaseOptions, DatabaseUrl};
pub use listener::spawn_change_listener;
pub(crate) use repository::classify;
pub use repository::{SqlApiKeyRepository, KEY_CHANGES_CHANNEL};
