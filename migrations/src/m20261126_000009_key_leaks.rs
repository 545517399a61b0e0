//! Leaked keys: when a key's private key was last reported leaked, and where
//! each `leaked` audit event says it was seen. One column per statement, which
//! is what SQLite's ALTER TABLE allows.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum ApiKeys {
    Table,
    LeakedAt,
}

#[derive(DeriveIden)]
enum ApiKeyEvents {
    Table,
    LeakSource,
    LeakUrl,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(ApiKeys::Table)
                    .add_column(ColumnDef::new(ApiKeys::LeakedAt).timestamp_with_time_zone().null())
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(ApiKeyEvents::Table)
                    .add_column(ColumnDef::new(ApiKeyEvents::LeakSource).string_len(64).null())
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(ApiKeyEvents::Table)
                    .add_column(ColumnDef::new(ApiKeyEvents::LeakUrl).string_len(2048).null())
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for column in [ApiKeyEvents::LeakUrl, ApiKeyEvents::LeakSource] {
            manager
                .alter_table(Table::alter().table(ApiKeyEvents::Table).drop_column(column).to_owned())
                .await?;
        }
        manager
            .alter_table(
                Table::alter()
                    .table(ApiKeys::Table)
                    .drop_column(ApiKeys::LeakedAt)
                    .to_owned(),
            )
            .await
    }
}
