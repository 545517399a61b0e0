//! Expiry, rotation grace periods, optimistic concurrency and the audit trail.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum ApiKeys {
    Table,
    ExpiresAt,
    Revision,
    PreviousLookupId,
    PreviousSecretHash,
    PreviousValidUntil,
}

#[derive(DeriveIden)]
enum ApiKeyEvents {
    Table,
    Id,
    KeyId,
    OrgId,
    Action,
    Actor,
    RequestId,
    OccurredAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite's ALTER TABLE adds one at a time.
        let columns = [
            ColumnDef::new(ApiKeys::ExpiresAt)
                .timestamp_with_time_zone()
                .null()
                .to_owned(),
            ColumnDef::new(ApiKeys::Revision)
                .integer()
                .not_null()
                .default(1)
                .to_owned(),
            ColumnDef::new(ApiKeys::PreviousLookupId)
                .string_len(32)
                .null()
                .to_owned(),
            ColumnDef::new(ApiKeys::PreviousSecretHash).text().null().to_owned(),
            ColumnDef::new(ApiKeys::PreviousValidUntil)
                .timestamp_with_time_zone()
                .null()
                .to_owned(),
        ];
        for mut column in columns {
            manager
                .alter_table(Table::alter().table(ApiKeys::Table).add_column(&mut column).to_owned())
                .await?;
        }
        // Verification during a rotation's grace period finds the key by the
        // replaced private key's lookup id.
        manager
            .create_index(
                Index::create()
                    .name("ix_api_keys_previous_lookup_id")
                    .table(ApiKeys::Table)
                    .col(ApiKeys::PreviousLookupId)
                    .to_owned(),
            )
            .await?;
        // No foreign key to api_keys: the trail outlives a deleted key.
        manager
            .create_table(
                Table::create()
                    .table(ApiKeyEvents::Table)
                    .if_not_exists()
                    .col(ColumnDef::new(ApiKeyEvents::Id).uuid().not_null().primary_key())
                    .col(ColumnDef::new(ApiKeyEvents::KeyId).uuid().not_null())
                    .col(ColumnDef::new(ApiKeyEvents::OrgId).uuid().not_null())
                    .col(ColumnDef::new(ApiKeyEvents::Action).string_len(16).not_null())
                    .col(ColumnDef::new(ApiKeyEvents::Actor).string_len(255).null())
                    .col(ColumnDef::new(ApiKeyEvents::RequestId).string_len(64).null())
                    .col(
                        ColumnDef::new(ApiKeyEvents::OccurredAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_api_key_events_org_key_time")
                    .table(ApiKeyEvents::Table)
                    .col(ApiKeyEvents::OrgId)
                    .col(ApiKeyEvents::KeyId)
                    .col(ApiKeyEvents::OccurredAt)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(ApiKeyEvents::Table).to_owned())
            .await?;
        manager
            .drop_index(
                Index::drop()
                    .name("ix_api_keys_previous_lookup_id")
                    .table(ApiKeys::Table)
                    .to_owned(),
            )
            .await?;
        for column in [
            ApiKeys::PreviousValidUntil,
            ApiKeys::PreviousSecretHash,
            ApiKeys::PreviousLookupId,
            ApiKeys::Revision,
            ApiKeys::ExpiresAt,
        ] {
            manager
                .alter_table(Table::alter().table(ApiKeys::Table).drop_column(column).to_owned())
                .await?;
        }
        Ok(())
    }
}
