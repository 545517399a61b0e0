//! Analytics at 10 000 keys: a month's busiest keys summed 620 000 rows of
//! `verification_buckets` (one per key, outcome, owner and tag set per day),
//! in rowid order scattered across the whole table on SQLite.
//!
//! - `verification_key_counts`: the same counts per key alone (every outcome,
//!   owner and tag set together), for the questions that name nothing else:
//!   the busiest keys. A key verified with 32 tag sets a minute is
//!   one row here, not 32. Filled from the buckets already counted.
//! - Indexes by organisation and key, and by organisation and owner: one
//!   key's or one owner's counts read its rows, not every key's of the
//!   organisation (per-owner analytics).
//! - On SQLite both tables are stored in primary-key order (`WITHOUT ROWID`):
//!   a range of one width's buckets is one run of pages, not a row lookup per
//!   bucket. `verification_buckets` is rebuilt so, its rows copied. On
//!   PostgreSQL the per-key counts are carried in their primary key's index.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DatabaseBackend;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum VerificationBuckets {
    Table,
    OrgId,
    KeyId,
    OwnerId,
    Granularity,
    BucketStart,
}

#[derive(DeriveIden)]
enum VerificationKeyCounts {
    Table,
}

/// `verification_buckets` as migration 15 made it, stored in key order.
const SQLITE_BUCKETS: &str = "CREATE TABLE verification_buckets_by_key (\
     org_id varchar(36) NOT NULL, granularity varchar(8) NOT NULL, bucket_start bigint NOT NULL, \
     key_id varchar(36) NOT NULL, outcome varchar(32) NOT NULL, owner_id varchar NOT NULL, tags text NOT NULL, \
     count bigint NOT NULL, spent_credits bigint NOT NULL, \
     PRIMARY KEY (org_id, granularity, bucket_start, key_id, outcome, owner_id, tags)) WITHOUT ROWID";

/// Migration 15's index by key, replaced by one that starts with the
/// organisation: every question names it, and with one more column bound a
/// planner takes the key index over the primary key's whole range.
const BY_KEY_INDEX: &str = "idx_verification_buckets_key";
const BY_ORG_KEY_INDEX: &str = "idx_verification_buckets_org_key";
const BY_OWNER_INDEX: &str = "idx_verification_buckets_owner";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let sqlite = manager.get_database_backend() == DatabaseBackend::Sqlite;
        let db = manager.get_connection();
        if sqlite {
            // SQLite runs each statement of a migration on its own (no
            // transaction around it), so every step here can run again
            // after a crash between two of them: the rows are always whole
            // in one of the two tables, never lost or doubled.
            if manager.has_table("verification_buckets").await? {
                db.execute_unprepared("DROP TABLE IF EXISTS verification_buckets_by_key")
                    .await?;
                db.execute_unprepared(SQLITE_BUCKETS).await?;
                db.execute_unprepared(
                    "INSERT INTO verification_buckets_by_key SELECT org_id, granularity, bucket_start, key_id, \
                     outcome, owner_id, tags, count, spent_credits FROM verification_buckets",
                )
                .await?;
                db.execute_unprepared("DROP TABLE verification_buckets").await?;
            }
            db.execute_unprepared("ALTER TABLE verification_buckets_by_key RENAME TO verification_buckets")
                .await?;
        }
        use VerificationBuckets as B;
        for (name, column) in [(BY_ORG_KEY_INDEX, B::KeyId), (BY_OWNER_INDEX, B::OwnerId)] {
            manager
                .create_index(
                    Index::create()
                        .name(name)
                        .table(B::Table)
                        .col(B::OrgId)
                        .col(column)
                        .col(B::Granularity)
                        .col(B::BucketStart)
                        .if_not_exists()
                        .to_owned(),
                )
                .await?;
        }
        // The counts ride in the primary key's index on PostgreSQL
        // (INCLUDE), so a range of buckets is read from the index alone, not
        // from heap pages scattered by every update (a day's top keys at
        // 10 000 keys: 78 ms instead of a 570 ms scan of the table).
        let (include, rowid) = if sqlite {
            ("", " WITHOUT ROWID")
        } else {
            (" INCLUDE (count, spent_credits)", "")
        };
        db.execute_unprepared(&format!(
            "CREATE TABLE IF NOT EXISTS verification_key_counts (org_id varchar(36) NOT NULL, \
             granularity varchar(8) NOT NULL, bucket_start bigint NOT NULL, key_id varchar(36) NOT NULL, \
             count bigint NOT NULL, spent_credits bigint NOT NULL, \
             PRIMARY KEY (org_id, granularity, bucket_start, key_id){include}){rowid}"
        ))
        .await?;
        // In key order: on PostgreSQL a range of buckets is then a run of
        // pages, as the flushes' rows in time order would have been, not a
        // page per row (a day's top keys: 217 000 pages read, 700 ms).
        db.execute_unprepared(
            "INSERT INTO verification_key_counts (org_id, granularity, bucket_start, key_id, count, spent_credits) \
             SELECT org_id, granularity, bucket_start, key_id, SUM(count), SUM(spent_credits) \
             FROM verification_buckets \
             WHERE NOT EXISTS (SELECT 1 FROM verification_key_counts) \
             GROUP BY org_id, granularity, bucket_start, key_id \
             ORDER BY org_id, granularity, bucket_start, key_id",
        )
        .await?;
        if !sqlite {
            // Last: PostgreSQL holds the exclusive lock a dropped index takes
            // until the migration commits, and reads wait for it.
            manager
                .drop_index(
                    Index::drop()
                        .name(BY_KEY_INDEX)
                        .table(VerificationBuckets::Table)
                        .if_exists()
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // The buckets stay in key order on SQLite: the same rows, answering
        // the same queries.
        use VerificationBuckets as B;
        for index in [BY_OWNER_INDEX, BY_ORG_KEY_INDEX] {
            manager
                .drop_index(Index::drop().name(index).table(B::Table).to_owned())
                .await?;
        }
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
        manager
            .drop_table(Table::drop().table(VerificationKeyCounts::Table).to_owned())
            .await
    }
}
