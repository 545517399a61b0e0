//! Each webhook endpoint's circuit breaker (how many attempts failed in a row,
//! and until when it is paused), and an index for counting the deliveries in
//! flight, which the dispatcher reads on every claim to share the senders
//! fairly between endpoints and organisations.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Webhooks {
    Table,
    ConsecutiveFailures,
    PausedUntil,
}

#[derive(DeriveIden)]
enum WebhookDeliveries {
    Table,
    LockedUntil,
}

const IN_FLIGHT_INDEX: &str = "idx_deliveries_in_flight";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // SQLite adds one column per ALTER TABLE.
        manager
            .alter_table(
                Table::alter()
                    .table(Webhooks::Table)
                    .add_column(
                        ColumnDef::new(Webhooks::ConsecutiveFailures)
                            .integer()
                            .not_null()
                            .default(0),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Webhooks::Table)
                    .add_column(ColumnDef::new(Webhooks::PausedUntil).timestamp_with_time_zone().null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name(IN_FLIGHT_INDEX)
                    .table(WebhookDeliveries::Table)
                    .col(WebhookDeliveries::LockedUntil)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name(IN_FLIGHT_INDEX)
                    .table(WebhookDeliveries::Table)
                    .to_owned(),
            )
            .await?;
        for column in [Webhooks::PausedUntil, Webhooks::ConsecutiveFailures] {
            manager
                .alter_table(Table::alter().table(Webhooks::Table).drop_column(column).to_owned())
                .await?;
        }
        Ok(())
    }
}
