//! The sea-orm adapter, for SQLite (the embedded default) and PostgreSQL.

mod connect;
mod entity;
mod repository;

pub use connect::{connect, ConnectError, Database, DatabaseOptions};
pub use repository::SqlApiKeyRepository;
