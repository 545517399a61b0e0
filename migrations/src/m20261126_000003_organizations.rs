//! Organisations known by an identity provider's own id (Auth0 Organizations'
//! `org_…`), mapped to stable Keymint UUIDs.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Organizations {
    Table,
    Id,
    ExternalId,
    CreatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Organizations::Table)
                    .if_not_exists()
                    .col(ColumnDef::new(Organizations::Id).uuid().not_null().primary_key())
                    .col(ColumnDef::new(Organizations::ExternalId).string_len(255).not_null())
                    .col(
                        ColumnDef::new(Organizations::CreatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .to_owned(),
            )
            .await?;
        // The unique index is what makes concurrent first sightings agree.
        manager
            .create_index(
                Index::create()
                    .name("ux_organizations_external_id")
                    .table(Organizations::Table)
                    .col(Organizations::ExternalId)
                    .unique()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Organizations::Table).to_owned())
            .await
    }
}
