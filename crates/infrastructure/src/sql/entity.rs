//! The `api_keys` table as sea-orm sees it. Only this adapter uses these types: rows
//! become domain values in the repository.

use sea_orm::entity::prelude::*;

#[derive(Clone, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "api_keys")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub org_id: Uuid,
    pub name: String,
    pub description: Option<String>,
    pub environment: String,
    #[sea_orm(unique)]
    pub public_key: String,
    #[sea_orm(unique)]
    pub lookup_id: String,
    pub secret_hash: String,
    pub private_key_display: String,
    pub created_at: DateTimeUtc,
    pub is_revoked: bool,
    pub revoked_at: Option<DateTimeUtc>,
    pub last_used_at: Option<DateTimeUtc>,
}

/// Written by hand so that the hash never reaches a log through `{:?}`.
impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("api_keys::Model")
            .field("id", &self.id)
            .field("org_id", &self.org_id)
            .field("public_key", &self.public_key)
            .field("secret_hash", &"<redacted>")
            .finish_non_exhaustive()
    }
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
