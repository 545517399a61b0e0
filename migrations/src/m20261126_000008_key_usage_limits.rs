//! Keys get rate limits and credits.
//!
//! A key's limits are text (`name,limit,duration_ms,auto` entries separated by
//! spaces: names hold none of those characters), its credits three columns
//! (`NULL` remaining means unlimited use). The count each limit took in its
//! current window lives in `key_rate_windows`, one row per (key, limit), so a
//! verification updates a fixed-size set of rows. `idempotency_keys` remembers
//! the answer to a credit change made with an `Idempotency-Key` header, so a
//! retried call is applied once.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum ApiKeys {
    Table,
    Ratelimits,
    CreditsRemaining,
    CreditsPeriod,
    CreditsRefill,
}

#[derive(DeriveIden)]
enum KeyRateWindows {
    Table,
    KeyId,
    Name,
    WindowStartMs,
    Used,
}

#[derive(DeriveIden)]
enum IdempotencyKeys {
    Table,
    OrgId,
    IdempotencyKey,
    Request,
    Response,
    CreatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite alters a table one column at a time.
        let columns = [
            ColumnDef::new(ApiKeys::Ratelimits)
                .text()
                .not_null()
                .default("")
                .to_owned(),
            ColumnDef::new(ApiKeys::CreditsRemaining)
                .big_integer()
                .null()
                .to_owned(),
            ColumnDef::new(ApiKeys::CreditsPeriod)
                .timestamp_with_time_zone()
                .null()
                .to_owned(),
            ColumnDef::new(ApiKeys::CreditsRefill).text().null().to_owned(),
        ];
        for mut column in columns {
            manager
                .alter_table(Table::alter().table(ApiKeys::Table).add_column(&mut column).to_owned())
                .await?;
        }
        manager
            .create_table(
                Table::create()
                    .table(KeyRateWindows::Table)
                    .col(ColumnDef::new(KeyRateWindows::KeyId).uuid().not_null())
                    .col(ColumnDef::new(KeyRateWindows::Name).text().not_null())
                    .col(ColumnDef::new(KeyRateWindows::WindowStartMs).big_integer().not_null())
                    .col(ColumnDef::new(KeyRateWindows::Used).big_integer().not_null())
                    .primary_key(Index::create().col(KeyRateWindows::KeyId).col(KeyRateWindows::Name))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(IdempotencyKeys::Table)
                    .col(ColumnDef::new(IdempotencyKeys::OrgId).uuid().not_null())
                    .col(ColumnDef::new(IdempotencyKeys::IdempotencyKey).text().not_null())
                    .col(ColumnDef::new(IdempotencyKeys::Request).text().not_null())
                    .col(ColumnDef::new(IdempotencyKeys::Response).text().not_null())
                    .col(
                        ColumnDef::new(IdempotencyKeys::CreatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .primary_key(
                        Index::create()
                            .col(IdempotencyKeys::OrgId)
                            .col(IdempotencyKeys::IdempotencyKey),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(IdempotencyKeys::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(KeyRateWindows::Table).to_owned())
            .await?;
        for column in [
            ApiKeys::CreditsRefill,
            ApiKeys::CreditsPeriod,
            ApiKeys::CreditsRemaining,
            ApiKeys::Ratelimits,
        ] {
            manager
                .alter_table(Table::alter().table(ApiKeys::Table).drop_column(column).to_owned())
                .await?;
        }
        Ok(())
    }
}
