//! The configured store: a SQL database opened and migrated, or memory, with
//! the adapters over it.

use std::sync::Arc;

use anyhow::Context;
use keymint_application::{ApiKeyRepository, OrganizationDirectory};
use keymint_infrastructure::sql::{self, Database, DatabaseUrl, SqlApiKeyRepository};
use keymint_infrastructure::{InMemoryApiKeyRepository, InMemoryOrganizationDirectory, SqlOrganizationDirectory};
use keymint_migrations::{Migrator, MigratorTrait};
use tokio::sync::Notify;

use crate::configuration::{DatabaseSettings, Settings, StorageUrl};

/// Connects to the database at `url` and brings its schema up to date.
pub async fn connect_and_migrate(url: &DatabaseUrl, settings: &DatabaseSettings) -> anyhow::Result<Database> {
    let database = sql::connect(url, &settings.options())
        .await
        .context("database.url: cannot open the database")?;
    Migrator::up(&database.write, None)
        .await
        .context("applying database migrations failed")?;
    Ok(database)
}

/// The storage adapters for the configured URL, and the database to close at
/// shutdown (none in memory).
pub(super) struct Storage {
    pub(super) repository: Arc<dyn ApiKeyRepository>,
    pub(super) directory: Arc<dyn OrganizationDirectory>,
    pub(super) database: Option<Database>,
    /// Signalled when this process queued webhook deliveries.
    pub(super) queued: Arc<Notify>,
}

impl Storage {
    /// Opens the configured store, bringing a SQL schema up to date first.
    pub(super) async fn open(settings: &Settings) -> anyhow::Result<Self> {
        Ok(match &settings.database.url {
            StorageUrl::Memory => {
                let repository = InMemoryApiKeyRepository::new();
                Self {
                    queued: repository.deliveries_queued(),
                    repository: Arc::new(repository),
                    directory: Arc::new(InMemoryOrganizationDirectory::default()),
                    database: None,
                }
            }
            StorageUrl::Sql(url) => {
                let database = connect_and_migrate(url, &settings.database).await?;
                let repository = SqlApiKeyRepository::new(database.clone());
                Self {
                    queued: repository.deliveries_queued(),
                    repository: Arc::new(repository),
                    directory: Arc::new(SqlOrganizationDirectory::new(database.clone())),
                    database: Some(database),
                }
            }
        })
    }
}
