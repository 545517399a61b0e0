//! Webhooks and their deliveries.
//!
//! A delivery row is written in the same transaction as the key change that
//! causes it (the outbox), one per subscribed webhook, with the exact body to
//! send. `seq` orders deliveries: per key, changes commit one after the other
//! (each holds the key's row lock), so a later change always gets a larger
//! `seq`. `locked_until` is the lease of the process sending it. Event types
//! are stored space-separated with a space at each end, so `LIKE '% key.x %'`
//! selects subscribers the same way on every engine.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Webhooks {
    Table,
    Id,
    OrgId,
    Url,
    EventTypes,
    Enabled,
    Secret,
    PreviousSecret,
    PreviousSecretUntil,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum WebhookDeliveries {
    Table,
    Seq,
    Id,
    WebhookId,
    OrgId,
    KeyId,
    EventType,
    Payload,
    Status,
    Attempts,
    NextAttemptAt,
    LockedUntil,
    CreatedAt,
}

#[derive(DeriveIden)]
enum WebhookAttempts {
    Table,
    Id,
    DeliveryId,
    AttemptedAt,
    LatencyMs,
    StatusCode,
    Error,
}

fn timestamp(column: impl IntoIden) -> ColumnDef {
    ColumnDef::new(column).timestamp_with_time_zone().not_null().to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Webhooks::Table)
                    .col(ColumnDef::new(Webhooks::Id).uuid().not_null().primary_key())
                    .col(ColumnDef::new(Webhooks::OrgId).uuid().not_null())
                    .col(ColumnDef::new(Webhooks::Url).string_len(2048).not_null())
                    .col(ColumnDef::new(Webhooks::EventTypes).string_len(512).not_null())
                    .col(ColumnDef::new(Webhooks::Enabled).boolean().not_null())
                    .col(ColumnDef::new(Webhooks::Secret).string_len(128).not_null())
                    .col(ColumnDef::new(Webhooks::PreviousSecret).string_len(128).null())
                    .col(
                        ColumnDef::new(Webhooks::PreviousSecretUntil)
                            .timestamp_with_time_zone()
                            .null(),
                    )
                    .col(timestamp(Webhooks::CreatedAt))
                    .col(timestamp(Webhooks::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_webhooks_org")
                    .table(Webhooks::Table)
                    .col(Webhooks::OrgId)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(WebhookDeliveries::Table)
                    .col(
                        ColumnDef::new(WebhookDeliveries::Seq)
                            .big_integer()
                            .not_null()
                            .auto_increment()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(WebhookDeliveries::Id).uuid().not_null().unique_key())
                    .col(ColumnDef::new(WebhookDeliveries::WebhookId).uuid().not_null())
                    .col(ColumnDef::new(WebhookDeliveries::OrgId).uuid().not_null())
                    .col(ColumnDef::new(WebhookDeliveries::KeyId).uuid().not_null())
                    .col(ColumnDef::new(WebhookDeliveries::EventType).string_len(32).not_null())
                    .col(ColumnDef::new(WebhookDeliveries::Payload).text().not_null())
                    .col(ColumnDef::new(WebhookDeliveries::Status).string_len(16).not_null())
                    .col(ColumnDef::new(WebhookDeliveries::Attempts).integer().not_null())
                    .col(
                        ColumnDef::new(WebhookDeliveries::NextAttemptAt)
                            .timestamp_with_time_zone()
                            .null(),
                    )
                    .col(
                        ColumnDef::new(WebhookDeliveries::LockedUntil)
                            .timestamp_with_time_zone()
                            .null(),
                    )
                    .col(timestamp(WebhookDeliveries::CreatedAt))
                    .to_owned(),
            )
            .await?;
        for (name, columns) in [
            (
                "idx_deliveries_due",
                vec![WebhookDeliveries::Status, WebhookDeliveries::NextAttemptAt],
            ),
            (
                "idx_deliveries_per_key",
                vec![
                    WebhookDeliveries::WebhookId,
                    WebhookDeliveries::KeyId,
                    WebhookDeliveries::Seq,
                ],
            ),
        ] {
            let mut index = Index::create();
            index.name(name).table(WebhookDeliveries::Table);
            for column in columns {
                index.col(column);
            }
            manager.create_index(index.to_owned()).await?;
        }
        manager
            .create_table(
                Table::create()
                    .table(WebhookAttempts::Table)
                    .col(ColumnDef::new(WebhookAttempts::Id).uuid().not_null().primary_key())
                    .col(ColumnDef::new(WebhookAttempts::DeliveryId).uuid().not_null())
                    .col(timestamp(WebhookAttempts::AttemptedAt))
                    .col(ColumnDef::new(WebhookAttempts::LatencyMs).big_integer().not_null())
                    .col(ColumnDef::new(WebhookAttempts::StatusCode).integer().null())
                    .col(ColumnDef::new(WebhookAttempts::Error).string_len(256).null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_attempts_delivery")
                    .table(WebhookAttempts::Table)
                    .col(WebhookAttempts::DeliveryId)
                    .col(WebhookAttempts::AttemptedAt)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            WebhookAttempts::Table.into_iden(),
            WebhookDeliveries::Table.into_iden(),
            Webhooks::Table.into_iden(),
        ] {
            manager.drop_table(Table::drop().table(table).to_owned()).await?;
        }
        Ok(())
    }
}
