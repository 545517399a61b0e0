//! The organisation directory: external organisation ids to Keymint UUIDs.

use std::collections::HashMap;
use std::sync::{PoisonError, RwLock};

use async_trait::async_trait;
use keymint_application::{OrganizationDirectory, RepositoryError};
use keymint_domain::OrgId;
use sea_orm::sea_query::OnConflict;
use sea_orm::{ActiveValue, ColumnTrait, EntityTrait, QueryFilter};
use uuid::Uuid;

use crate::sql::entity::organizations;
use crate::sql::Database;

/// Mappings never change once made, so each process remembers the ones it has
/// seen; the bound only keeps a flood of distinct ids from growing memory.
const MAX_REMEMBERED: usize = 100_000;

#[derive(Debug, Default)]
struct Remembered(RwLock<HashMap<String, OrgId>>);

impl Remembered {
    fn get(&self, external_id: &str) -> Option<OrgId> {
        self.0
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(external_id)
            .copied()
    }

    fn put(&self, external_id: &str, org_id: OrgId) {
        let mut map = self.0.write().unwrap_or_else(PoisonError::into_inner);
        if map.len() >= MAX_REMEMBERED {
            map.clear();
        }
        map.insert(external_id.to_owned(), org_id);
    }
}

/// The directory in SQLite or PostgreSQL.
#[derive(Debug)]
pub struct SqlOrganizationDirectory {
    db: Database,
    remembered: Remembered,
}

impl SqlOrganizationDirectory {
    /// A directory over an already migrated database.
    pub fn new(db: Database) -> Self {
        Self {
            db,
            remembered: Remembered::default(),
        }
    }
}

#[async_trait]
impl OrganizationDirectory for SqlOrganizationDirectory {
    async fn resolve(&self, external_id: &str) -> Result<OrgId, RepositoryError> {
        if let Some(org_id) = self.remembered.get(external_id) {
            return Ok(org_id);
        }
        let existing = organizations::Entity::find()
            .filter(organizations::Column::ExternalId.eq(external_id))
            .one(&self.db.read)
            .await
            .map_err(|e| self.db.classify(e))?;
        let id = match existing {
            Some(row) => row.id,
            None => {
                // Insert-or-keep, then read back: whichever of several concurrent
                // first sightings wins, all of them read the same row.
                let row = organizations::ActiveModel {
                    id: ActiveValue::Set(Uuid::now_v7()),
                    external_id: ActiveValue::Set(external_id.to_owned()),
                    created_at: ActiveValue::Set(chrono::Utc::now()),
                };
                organizations::Entity::insert(row)
                    .on_conflict(
                        OnConflict::column(organizations::Column::ExternalId)
                            .do_nothing()
                            .to_owned(),
                    )
                    .exec_without_returning(&self.db.write)
                    .await
                    .map_err(|e| self.db.classify(e))?;
                organizations::Entity::find()
                    .filter(organizations::Column::ExternalId.eq(external_id))
                    .one(&self.db.write)
                    .await
                    .map_err(|e| self.db.classify(e))?
                    .ok_or_else(|| RepositoryError::Unexpected(anyhow::anyhow!("organisation vanished after insert")))?
                    .id
            }
        };
        let org_id = OrgId::from_uuid(id);
        self.remembered.put(external_id, org_id);
        Ok(org_id)
    }
}

/// The directory in memory, for tests and demos.
#[derive(Debug, Default)]
pub struct InMemoryOrganizationDirectory {
    remembered: Remembered,
}

#[async_trait]
impl OrganizationDirectory for InMemoryOrganizationDirectory {
    async fn resolve(&self, external_id: &str) -> Result<OrgId, RepositoryError> {
        let mut map = self.remembered.0.write().unwrap_or_else(PoisonError::into_inner);
        Ok(*map
            .entry(external_id.to_owned())
            .or_insert_with(|| OrgId::from_uuid(Uuid::now_v7())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use keymint_migrations::{Migrator, MigratorTrait};

    async fn sql() -> (SqlOrganizationDirectory, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let url: crate::sql::DatabaseUrl = format!("sqlite://{}/orgs.db", dir.path().display()).parse().unwrap();
        let db = crate::sql::connect(&url, &crate::sql::DatabaseOptions::default())
            .await
            .unwrap();
        Migrator::up(&db.write, None).await.unwrap();
        (SqlOrganizationDirectory::new(db), dir)
    }

    #[tokio::test]
    async fn the_same_external_id_always_maps_to_the_same_uuid_and_others_differ() {
        let (directory, dir) = sql().await;
        let a = directory.resolve("org_9ybsU1dN2dKfDkBi").await.unwrap();
        assert_eq!(directory.resolve("org_9ybsU1dN2dKfDkBi").await.unwrap(), a);
        assert_ne!(directory.resolve("org_other").await.unwrap(), a);

        // A fresh process (no remembered mappings) reads the stored one.
        let url: crate::sql::DatabaseUrl = format!("sqlite://{}/orgs.db", dir.path().display()).parse().unwrap();
        let again = SqlOrganizationDirectory::new(crate::sql::connect(&url, &Default::default()).await.unwrap());
        assert_eq!(again.resolve("org_9ybsU1dN2dKfDkBi").await.unwrap(), a);
    }

    #[tokio::test]
    async fn concurrent_first_sightings_agree() {
        let (directory, _dir) = sql().await;
        let directory = std::sync::Arc::new(directory);
        let handles: Vec<_> = (0..20)
            .map(|_| {
                let directory = directory.clone();
                tokio::spawn(async move { directory.resolve("org_new").await.unwrap() })
            })
            .collect();
        let mut ids = std::collections::HashSet::new();
        for handle in handles {
            ids.insert(handle.await.unwrap());
        }
        assert_eq!(ids.len(), 1);
    }
}
