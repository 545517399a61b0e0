use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum ApiKeys {
    Table,
    Id,
    OrgId,
    Name,
    Description,
    Environment,
    PublicKey,
    LookupId,
    SecretHash,
    PrivateKeyDisplay,
    CreatedAt,
    IsRevoked,
    RevokedAt,
    LastUsedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(ApiKeys::Table)
                    .if_not_exists()
                    .col(ColumnDef::new(ApiKeys::Id).uuid().not_null().primary_key())
                    .col(ColumnDef::new(ApiKeys::OrgId).uuid().not_null())
                    // Lengths are in characters on PostgreSQL, matching the domain's
                    // limits: a second guard should an adapter ever skip validation.
                    .col(ColumnDef::new(ApiKeys::Name).string_len(100).not_null())
                    .col(ColumnDef::new(ApiKeys::Description).string_len(255).null())
                    .col(ColumnDef::new(ApiKeys::Environment).string_len(8).not_null())
                    .col(ColumnDef::new(ApiKeys::PublicKey).string_len(64).not_null())
                    .col(ColumnDef::new(ApiKeys::LookupId).string_len(32).not_null())
                    .col(ColumnDef::new(ApiKeys::SecretHash).text().not_null())
                    .col(ColumnDef::new(ApiKeys::PrivateKeyDisplay).string_len(32).not_null())
                    .col(ColumnDef::new(ApiKeys::CreatedAt).timestamp_with_time_zone().not_null())
                    .col(ColumnDef::new(ApiKeys::IsRevoked).boolean().not_null().default(false))
                    .col(ColumnDef::new(ApiKeys::RevokedAt).timestamp_with_time_zone().null())
                    .col(ColumnDef::new(ApiKeys::LastUsedAt).timestamp_with_time_zone().null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ux_api_keys_public_key")
                    .table(ApiKeys::Table)
                    .col(ApiKeys::PublicKey)
                    .unique()
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        // Verification finds a key by the lookup id inside the presented key: one
        // indexed read, never a scan.
        manager
            .create_index(
                Index::create()
                    .name("ux_api_keys_lookup_id")
                    .table(ApiKeys::Table)
                    .col(ApiKeys::LookupId)
                    .unique()
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        // Listing is always "this organisation's keys, newest first".
        manager
            .create_index(
                Index::create()
                    .name("ix_api_keys_org_id_created_at")
                    .table(ApiKeys::Table)
                    .col(ApiKeys::OrgId)
                    .col(ApiKeys::CreatedAt)
                    .if_not_exists()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(ApiKeys::Table).to_owned()).await
    }
}
