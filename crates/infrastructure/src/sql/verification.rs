//! The verification path's storage: the read of a presented key (batched),
//! the digests of imported keys, and `last_used_at` written in batches.

use std::collections::HashMap;

use anyhow::anyhow;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use keymint_application::{KeyLookup, LookupDigests, RepositoryError, UsageSink};
use keymint_domain::{ApiKey, KeyDigest, KeyId, LookupId, SecretHash};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DatabaseBackend, EntityTrait, QueryFilter, QuerySelect, Statement,
    TransactionTrait,
};

use super::entity::api_keys as keys;
use super::rows::from_row;

use super::SqlApiKeyRepository;

/// Keys per `last_used_at` statement: two bind values each, far under
/// either database's limit.
const USAGE_CHUNK: usize = 500;

#[async_trait]
impl KeyLookup for SqlApiKeyRepository {
    async fn find_by_lookup(&self, lookup_id: &LookupId) -> Result<Option<ApiKey>, RepositoryError> {
        match self.by_lookup.load(lookup_id.clone()).await {
            Ok(found) => found.transpose().map_err(RepositoryError::from),
            Err(Some(err)) => Err(err.into()),
            Err(None) => Err(RepositoryError::Unavailable(anyhow!("the key read was abandoned"))),
        }
    }

    async fn find_by_digest(&self, digest: &KeyDigest) -> Result<Option<ApiKey>, RepositoryError> {
        let hex = digest.to_hex();
        keys::Entity::find()
            .filter(
                Condition::any()
                    .add(keys::Column::LookupDigest.eq(hex.as_str()))
                    .add(keys::Column::PreviousLookupDigest.eq(hex.as_str())),
            )
            .one(&self.db().read)
            .await
            .map_err(|e| self.db().classify(e))?
            .map(from_row)
            .transpose()
    }

    async fn rehash(&self, id: KeyId, old: &SecretHash, new: &SecretHash) -> Result<bool, RepositoryError> {
        // One statement: whichever column still holds `old` gets `new`; a
        // rotation that replaced it meanwhile leaves nothing to match.
        let replace = |column: keys::Column| {
            Expr::case(Expr::col(column).eq(old.expose()), Expr::value(new.expose())).finally(Expr::col(column))
        };
        let updated = keys::Entity::update_many()
            .col_expr(keys::Column::SecretHash, replace(keys::Column::SecretHash).into())
            .col_expr(
                keys::Column::PreviousSecretHash,
                replace(keys::Column::PreviousSecretHash).into(),
            )
            .filter(keys::Column::Id.eq(id.as_uuid()))
            .filter(
                Condition::any()
                    .add(keys::Column::SecretHash.eq(old.expose()))
                    .add(keys::Column::PreviousSecretHash.eq(old.expose())),
            )
            .exec(&self.db().write)
            .await
            .map_err(|e| self.db().classify(e))?;
        Ok(updated.rows_affected > 0)
    }
}

/// Marks that a lookup digest was added, in the transaction adding it.
#[async_trait]
impl LookupDigests for SqlApiKeyRepository {
    async fn digest_generation(&self) -> Result<i64, RepositoryError> {
        let row = self
            .db()
            .read
            .query_one(Statement::from_string(
                self.db().read.get_database_backend(),
                "SELECT generation FROM lookup_digest_generation WHERE id = 1",
            ))
            .await
            .map_err(|e| self.db().classify(e))?
            .ok_or_else(|| RepositoryError::Unexpected(anyhow!("lookup_digest_generation has no row")))?;
        row.try_get("", "generation")
            .map_err(|e| RepositoryError::Unexpected(e.into()))
    }

    async fn lookup_digests(&self) -> Result<Vec<KeyDigest>, RepositoryError> {
        let rows: Vec<(Option<String>, Option<String>)> = keys::Entity::find()
            .select_only()
            .column(keys::Column::LookupDigest)
            .column(keys::Column::PreviousLookupDigest)
            .filter(
                Condition::any()
                    .add(keys::Column::LookupDigest.is_not_null())
                    .add(keys::Column::PreviousLookupDigest.is_not_null()),
            )
            .into_tuple()
            .all(&self.db().read)
            .await
            .map_err(|e| self.db().classify(e))?;
        let mut digests = Vec::with_capacity(rows.len());
        let mut damaged = 0usize;
        for hex in rows
            .into_iter()
            .flat_map(|(current, previous)| [current, previous])
            .flatten()
        {
            match KeyDigest::parse(&hex) {
                Ok(digest) => digests.push(digest),
                Err(_) => damaged += 1,
            }
        }
        // One damaged row must not stop every other imported key from being
        // found; its own key is reported corrupt when it is read.
        if damaged > 0 {
            tracing::error!(damaged, "stored lookup digests that are not digests were skipped");
        }
        Ok(digests)
    }
}

#[async_trait]
impl UsageSink for SqlApiKeyRepository {
    async fn record_usage(&self, usage: &[(KeyId, DateTime<Utc>)]) -> Result<(), RepositoryError> {
        if usage.is_empty() {
            return Ok(());
        }
        // One row per key, its latest use (an UPDATE ... FROM with a key twice
        // would pick either row), in key order, so that concurrent flushes
        // from several processes lock rows in the same order.
        let mut latest: HashMap<KeyId, DateTime<Utc>> = HashMap::with_capacity(usage.len());
        for (id, at) in usage {
            let entry = latest.entry(*id).or_insert(*at);
            *entry = (*entry).max(*at);
        }
        let mut latest: Vec<(KeyId, DateTime<Utc>)> = latest.into_iter().collect();
        latest.sort_unstable_by_key(|(id, _)| id.as_uuid());
        let backend = self.db().write.get_database_backend();
        let txn = self.db().write.begin().await.map_err(|e| self.db().classify(e))?;
        // One statement per chunk: with 100 000 keys in use, a flush is 100 000
        // rows, and a statement each (a worker-thread hand-off on SQLite, a
        // round trip on PostgreSQL) was most of the database's work.
        for chunk in latest.chunks(USAGE_CHUNK) {
            let mut rows = Vec::with_capacity(chunk.len());
            let mut values = Vec::with_capacity(chunk.len() * 2);
            for (id, at) in chunk {
                let n = values.len();
                rows.push(match backend {
                    DatabaseBackend::Postgres => format!("(${}::uuid, ${}::timestamptz)", n + 1, n + 2),
                    _ => "(?, ?)".to_owned(),
                });
                values.push(id.as_uuid().into());
                values.push((*at).into());
            }
            // VALUES names its columns column1, column2 on both databases.
            let sql = format!(
                "UPDATE api_keys SET last_used_at = used.column2 FROM (VALUES {}) AS used \
                 WHERE api_keys.id = used.column1 \
                 AND (api_keys.last_used_at IS NULL OR api_keys.last_used_at < used.column2)",
                rows.join(", ")
            );
            txn.execute(Statement::from_sql_and_values(backend, sql, values))
                .await
                .map_err(|e| self.db().classify(e))?;
        }
        txn.commit().await.map_err(|e| self.db().classify(e))
    }
}
