//! Usage analytics: verification counts per bucket (minute, hour, day), key,
//! owner, outcome and tag set, with the credits they spent
//! (`verification_buckets`), and the same per organisation, outcome and tag
//! set alone (`verification_totals`: an organisation's overview over 30 days
//! reads hundreds of rows, not one per key and hour). Rows are only ever
//! added to (`count = count + n`) or pruned by age; nothing else refers to
//! them, so deleting a key keeps its history.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum VerificationBuckets {
    Table,
    OrgId,
    Granularity,
    BucketStart,
    KeyId,
    Outcome,
    OwnerId,
    Tags,
    Count,
    SpentCredits,
}

#[derive(DeriveIden)]
enum VerificationTotals {
    Table,
    OrgId,
    Granularity,
    BucketStart,
    Outcome,
    Tags,
    Count,
    SpentCredits,
}

/// One row (`id` 1): when buckets were last pruned, by any process.
#[derive(DeriveIden)]
enum AnalyticsPrunes {
    Table,
    Id,
    PrunedAt,
}

const BY_KEY_INDEX: &str = "idx_verification_buckets_key";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        use VerificationBuckets as B;
        manager
            .create_table(
                Table::create()
                    .table(B::Table)
                    // Ids as text and times as Unix seconds: the same
                    // comparisons and the same index order on SQLite and
                    // PostgreSQL. No owner is '' (an owner id has 1
                    // character at least), so it can be part of the key.
                    .col(ColumnDef::new(B::OrgId).string_len(36).not_null())
                    .col(ColumnDef::new(B::Granularity).string_len(8).not_null())
                    .col(ColumnDef::new(B::BucketStart).big_integer().not_null())
                    .col(ColumnDef::new(B::KeyId).string_len(36).not_null())
                    .col(ColumnDef::new(B::Outcome).string_len(32).not_null())
                    .col(ColumnDef::new(B::OwnerId).string().not_null())
                    .col(ColumnDef::new(B::Tags).text().not_null())
                    .col(ColumnDef::new(B::Count).big_integer().not_null())
                    .col(ColumnDef::new(B::SpentCredits).big_integer().not_null())
                    .primary_key(
                        Index::create()
                            .col(B::OrgId)
                            .col(B::Granularity)
                            .col(B::BucketStart)
                            .col(B::KeyId)
                            .col(B::Outcome)
                            .col(B::OwnerId)
                            .col(B::Tags),
                    )
                    .to_owned(),
            )
            .await?;
        // A key's recent counts (its page, `usage_24h` on every key read).
        manager
            .create_index(
                Index::create()
                    .name(BY_KEY_INDEX)
                    .table(B::Table)
                    .col(B::KeyId)
                    .col(B::Granularity)
                    .col(B::BucketStart)
                    .to_owned(),
            )
            .await?;
        use VerificationTotals as T;
        manager
            .create_table(
                Table::create()
                    .table(T::Table)
                    .col(ColumnDef::new(T::OrgId).string_len(36).not_null())
                    .col(ColumnDef::new(T::Granularity).string_len(8).not_null())
                    .col(ColumnDef::new(T::BucketStart).big_integer().not_null())
                    .col(ColumnDef::new(T::Outcome).string_len(32).not_null())
                    .col(ColumnDef::new(T::Tags).text().not_null())
                    .col(ColumnDef::new(T::Count).big_integer().not_null())
                    .col(ColumnDef::new(T::SpentCredits).big_integer().not_null())
                    .primary_key(
                        Index::create()
                            .col(T::OrgId)
                            .col(T::Granularity)
                            .col(T::BucketStart)
                            .col(T::Outcome)
                            .col(T::Tags),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(AnalyticsPrunes::Table)
                    .col(ColumnDef::new(AnalyticsPrunes::Id).integer().not_null().primary_key())
                    .col(ColumnDef::new(AnalyticsPrunes::PrunedAt).big_integer().not_null())
                    .to_owned(),
            )
            .await?;
        manager
            .exec_stmt(
                Query::insert()
                    .into_table(AnalyticsPrunes::Table)
                    .columns([AnalyticsPrunes::Id, AnalyticsPrunes::PrunedAt])
                    .values_panic([1.into(), 0.into()])
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(AnalyticsPrunes::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(VerificationTotals::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(VerificationBuckets::Table).to_owned())
            .await
    }
}
