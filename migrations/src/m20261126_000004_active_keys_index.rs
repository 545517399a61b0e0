//! Every create counts the organisation's active keys (the per-organisation
//! limit) inside its transaction. A partial index holding exactly the unrevoked
//! keys, with their expiry, lets that count read the index alone.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum ApiKeys {
    Table,
    OrgId,
    ExpiresAt,
    IsRevoked,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_index(
                Index::create()
                    .name("ix_api_keys_active_by_org")
                    .table(ApiKeys::Table)
                    .col(ApiKeys::OrgId)
                    .col(ApiKeys::ExpiresAt)
                    .and_where(Expr::col(ApiKeys::IsRevoked).eq(false))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name("ix_api_keys_active_by_org")
                    .table(ApiKeys::Table)
                    .to_owned(),
            )
            .await
    }
}
