//! The sea-orm adapter, for SQLite (the embedded default) and PostgreSQL.

mod connect;
pub(crate) mod entity;
mod repository;

pub use connect::{connect, ConnectError, Database, DatabaseOptions};
pub(crate) use repository::classify;
pub use repository::SqlApiKeyRepository;
