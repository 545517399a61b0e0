//! Keys brought in from other systems carry no lookup id: they are found by the
//! SHA-256 digest of the whole private key, stored (hex) for the current and
//! the rotated-out private key. A one-row counter changes whenever a digest is
//! added, so every process can tell cheaply when to reload its digest filter.
//!
//! Stored hashes are not touched: an argon2 hash written by an earlier release
//! keeps verifying and is replaced by the current form on its key's next
//! successful verification. That makes the upgrade one-way once a key is
//! created, imported or verified: `down` refuses then.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum ApiKeys {
    Table,
    LookupDigest,
    PreviousLookupDigest,
    SecretHash,
    PreviousSecretHash,
}

#[derive(DeriveIden)]
enum LookupDigestGeneration {
    Table,
    Id,
    Generation,
}

const LOOKUP_DIGEST_INDEX: &str = "ux_api_keys_lookup_digest";
const PREVIOUS_LOOKUP_DIGEST_INDEX: &str = "ix_api_keys_previous_lookup_digest";
/// An import is refused when any stored key already is its key in another
/// form, which includes a key issued here whose SHA-256 hash is the imported
/// digest: these make that check one indexed read.
const SECRET_HASH_INDEX: &str = "ix_api_keys_secret_hash";
const PREVIOUS_SECRET_HASH_INDEX: &str = "ix_api_keys_previous_secret_hash";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // SQLite adds one column per ALTER TABLE.
        for column in [ApiKeys::LookupDigest, ApiKeys::PreviousLookupDigest] {
            manager
                .alter_table(
                    Table::alter()
                        .table(ApiKeys::Table)
                        .add_column(ColumnDef::new(column).string_len(64).null())
                        .to_owned(),
                )
                .await?;
        }
        // Unique: one private key belongs to one key, in whichever organisation.
        manager
            .create_index(
                Index::create()
                    .name(LOOKUP_DIGEST_INDEX)
                    .table(ApiKeys::Table)
                    .col(ApiKeys::LookupDigest)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name(PREVIOUS_LOOKUP_DIGEST_INDEX)
                    .table(ApiKeys::Table)
                    .col(ApiKeys::PreviousLookupDigest)
                    .to_owned(),
            )
            .await?;
        for (name, column) in [
            (SECRET_HASH_INDEX, ApiKeys::SecretHash),
            (PREVIOUS_SECRET_HASH_INDEX, ApiKeys::PreviousSecretHash),
        ] {
            manager
                .create_index(Index::create().name(name).table(ApiKeys::Table).col(column).to_owned())
                .await?;
        }
        manager
            .create_table(
                Table::create()
                    .table(LookupDigestGeneration::Table)
                    .col(
                        ColumnDef::new(LookupDigestGeneration::Id)
                            .integer()
                            .not_null()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(LookupDigestGeneration::Generation)
                            .big_integer()
                            .not_null()
                            .default(0),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .exec_stmt(
                Query::insert()
                    .into_table(LookupDigestGeneration::Table)
                    .columns([LookupDigestGeneration::Id, LookupDigestGeneration::Generation])
                    .values_panic([1.into(), 0.into()])
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // The release before cannot verify a SHA-256 hash nor find an
        // imported key: going back once there are any would turn working keys
        // into errors. Refused rather than done half.
        let in_use = manager
            .get_connection()
            .query_one(sea_orm_migration::sea_orm::Statement::from_string(
                manager.get_database_backend(),
                "SELECT count(*) AS n FROM api_keys WHERE secret_hash LIKE '$sha256$%' \
                 OR previous_secret_hash LIKE '$sha256$%' OR lookup_digest IS NOT NULL",
            ))
            .await?
            .map(|row| row.try_get::<i64>("", "n"))
            .transpose()?
            .unwrap_or(0);
        if in_use > 0 {
            return Err(DbErr::Migration(format!(
                "{in_use} keys are stored as SHA-256 or were imported, which the release before cannot verify; \
                 restore a backup taken before the upgrade instead"
            )));
        }
        manager
            .drop_table(Table::drop().table(LookupDigestGeneration::Table).to_owned())
            .await?;
        for index in [
            PREVIOUS_SECRET_HASH_INDEX,
            SECRET_HASH_INDEX,
            PREVIOUS_LOOKUP_DIGEST_INDEX,
            LOOKUP_DIGEST_INDEX,
        ] {
            manager
                .drop_index(Index::drop().name(index).table(ApiKeys::Table).to_owned())
                .await?;
        }
        for column in [ApiKeys::PreviousLookupDigest, ApiKeys::LookupDigest] {
            manager
                .alter_table(Table::alter().table(ApiKeys::Table).drop_column(column).to_owned())
                .await?;
        }
        Ok(())
    }
}
