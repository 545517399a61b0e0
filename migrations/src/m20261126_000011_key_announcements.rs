//! Events found by sweeping keys rather than caused by a change are announced
//! once: when a key's `key.expiring` went out, and when its `key.credits_low`
//! did (cleared whenever a person changes the credits, so a key that runs low
//! again is announced again). Kept out of the key's own fields: they are the
//! announcer's bookkeeping, not the key's state. Every process sweeps for
//! unannounced keys each minute; the two indexes keep that from reading the
//! whole table.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum ApiKeys {
    Table,
    ExpiryAnnouncedAt,
    CreditsLowAnnouncedAt,
    ExpiresAt,
    CreditsRemaining,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for column in [ApiKeys::ExpiryAnnouncedAt, ApiKeys::CreditsLowAnnouncedAt] {
            manager
                .alter_table(
                    Table::alter()
                        .table(ApiKeys::Table)
                        .add_column(ColumnDef::new(column).timestamp_with_time_zone().null())
                        .to_owned(),
                )
                .await?;
        }
        for (name, announced, by) in [
            (
                "idx_api_keys_expiry_sweep",
                ApiKeys::ExpiryAnnouncedAt,
                ApiKeys::ExpiresAt,
            ),
            (
                "idx_api_keys_credits_sweep",
                ApiKeys::CreditsLowAnnouncedAt,
                ApiKeys::CreditsRemaining,
            ),
        ] {
            manager
                .create_index(
                    Index::create()
                        .name(name)
                        .table(ApiKeys::Table)
                        .col(announced)
                        .col(by)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for name in ["idx_api_keys_credits_sweep", "idx_api_keys_expiry_sweep"] {
            manager
                .drop_index(Index::drop().name(name).table(ApiKeys::Table).to_owned())
                .await?;
        }
        for column in [ApiKeys::CreditsLowAnnouncedAt, ApiKeys::ExpiryAnnouncedAt] {
            manager
                .alter_table(Table::alter().table(ApiKeys::Table).drop_column(column).to_owned())
                .await?;
        }
        Ok(())
    }
}
