//! Events found by sweeping keys rather than caused by a change are announced
//! once: when a key's `key.expiring` went out, and when its `key.credits_low`
//! did (cleared whenever a person changes the credits, so a key that runs low
//! again is announced again). Kept out of the key's own fields: they are the
//! announcer's bookkeeping, not the key's state.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum ApiKeys {
    Table,
    ExpiryAnnouncedAt,
    CreditsLowAnnouncedAt,
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
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for column in [ApiKeys::CreditsLowAnnouncedAt, ApiKeys::ExpiryAnnouncedAt] {
            manager
                .alter_table(Table::alter().table(ApiKeys::Table).drop_column(column).to_owned())
                .await?;
        }
        Ok(())
    }
}
