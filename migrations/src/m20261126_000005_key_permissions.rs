//! Keys hold permissions, and an update's audit event says which fields it
//! changed. Both are space-separated names: permission names and field names
//! never contain whitespace, so the text is one canonical form on every engine
//! and existing rows read as "none".

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum ApiKeys {
    Table,
    Permissions,
}

#[derive(DeriveIden)]
enum ApiKeyEvents {
    Table,
    Fields,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(ApiKeys::Table)
                    .add_column(ColumnDef::new(ApiKeys::Permissions).text().not_null().default(""))
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(ApiKeyEvents::Table)
                    .add_column(ColumnDef::new(ApiKeyEvents::Fields).text().not_null().default(""))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(ApiKeyEvents::Table)
                    .drop_column(ApiKeyEvents::Fields)
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(ApiKeys::Table)
                    .drop_column(ApiKeys::Permissions)
                    .to_owned(),
            )
            .await
    }
}
