use anyhow::{anyhow, Context};
use async_trait::async_trait;
use keymint_application::{ApiKeyRepository, RepositoryError};
use keymint_domain::{
    ApiKey, ApiKeyParts, KeyDescription, KeyDisplay, KeyId, KeyName, LookupId, OrgId, PublicKey,
    SecretHash,
};
use sea_orm::sqlx;
use sea_orm::{
    ActiveValue, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, RuntimeErr, SqlErr,
};

use super::entity::{self, Column, Entity};
use super::Database;

/// API keys in SQLite or PostgreSQL through sea-orm.
#[derive(Clone, Debug)]
pub struct SqlApiKeyRepository {
    db: Database,
}

impl SqlApiKeyRepository {
    /// A repository over an already migrated database.
    pub fn new(db: Database) -> Self {
        Self { db }
    }
}

/// Sorts sea-orm errors into the port's cases: a unique violation is a conflict,
/// anything that says "cannot reach the database" is unavailability, and the rest
/// is unexpected. The cause is kept for the log, never shown to callers.
fn classify(err: DbErr) -> RepositoryError {
    if matches!(err.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) {
        return RepositoryError::Conflict;
    }
    let unavailable = match &err {
        DbErr::ConnectionAcquire(_) | DbErr::Conn(_) => true,
        DbErr::Exec(RuntimeErr::SqlxError(e)) | DbErr::Query(RuntimeErr::SqlxError(e)) => {
            matches!(
                e,
                sqlx::Error::Io(_)
                    | sqlx::Error::PoolTimedOut
                    | sqlx::Error::PoolClosed
                    | sqlx::Error::Tls(_)
            ) || is_sqlite_busy(e)
        }
        _ => false,
    };
    if unavailable {
        RepositoryError::Unavailable(err.into())
    } else {
        RepositoryError::Unexpected(err.into())
    }
}

/// SQLITE_BUSY after the busy timeout means another process held the write lock
/// for longer than we wait: a temporary condition, worth a retry by the caller.
fn is_sqlite_busy(err: &sqlx::Error) -> bool {
    matches!(err, sqlx::Error::Database(db) if db.code().is_some_and(|code| code == "5" || code == "517"))
}

fn to_row(key: &ApiKey) -> entity::ActiveModel {
    let parts = key.parts();
    entity::ActiveModel {
        id: ActiveValue::Set(parts.id.as_uuid()),
        org_id: ActiveValue::Set(parts.org_id.as_uuid()),
        name: ActiveValue::Set(parts.name.as_str().to_owned()),
        description: ActiveValue::Set(parts.description.as_ref().map(|d| d.as_str().to_owned())),
        environment: ActiveValue::Set(parts.environment.as_str().to_owned()),
        public_key: ActiveValue::Set(parts.public_key.as_str().to_owned()),
        lookup_id: ActiveValue::Set(parts.lookup_id.as_str().to_owned()),
        secret_hash: ActiveValue::Set(parts.secret_hash.expose().to_owned()),
        private_key_display: ActiveValue::Set(parts.private_key_display.as_str().to_owned()),
        created_at: ActiveValue::Set(parts.created_at),
        is_revoked: ActiveValue::Set(key.is_revoked()),
        revoked_at: ActiveValue::Set(parts.revoked_at),
        last_used_at: ActiveValue::Set(parts.last_used_at),
    }
}

/// A row that breaks a domain rule is a corrupt row: reported, never half-loaded.
fn from_row(row: entity::Model) -> Result<ApiKey, RepositoryError> {
    let corrupt = |what: &str| {
        RepositoryError::Unexpected(anyhow!("stored key {} has an invalid {what}", row.id))
    };
    let parts = ApiKeyParts {
        id: KeyId::from_uuid(row.id),
        org_id: OrgId::from_uuid(row.org_id),
        name: KeyName::new(row.name.clone()).map_err(|_| corrupt("name"))?,
        description: row
            .description
            .clone()
            .map(KeyDescription::new)
            .transpose()
            .map_err(|_| corrupt("description"))?,
        environment: row
            .environment
            .parse()
            .map_err(|_| corrupt("environment"))?,
        public_key: PublicKey::parse(&row.public_key).map_err(|_| corrupt("public key"))?,
        lookup_id: LookupId::parse(&row.lookup_id).map_err(|_| corrupt("lookup id"))?,
        secret_hash: SecretHash::new(row.secret_hash.clone())
            .map_err(|_| corrupt("secret hash"))?,
        private_key_display: KeyDisplay::restore(row.private_key_display.clone()),
        created_at: row.created_at,
        revoked_at: row.revoked_at,
        last_used_at: row.last_used_at,
    };
    Ok(ApiKey::restore(parts))
}

#[async_trait]
impl ApiKeyRepository for SqlApiKeyRepository {
    async fn insert(&self, key: &ApiKey) -> Result<(), RepositoryError> {
        Entity::insert(to_row(key))
            .exec_without_returning(&self.db.write)
            .await
            .map_err(classify)?;
        Ok(())
    }

    async fn find(&self, org_id: OrgId, id: KeyId) -> Result<Option<ApiKey>, RepositoryError> {
        Entity::find_by_id(id.as_uuid())
            .filter(Column::OrgId.eq(org_id.as_uuid()))
            .one(&self.db.read)
            .await
            .map_err(classify)?
            .map(from_row)
            .transpose()
    }

    async fn ping(&self) -> Result<(), RepositoryError> {
        self.db
            .read
            .execute_unprepared("SELECT 1")
            .await
            .context("readiness probe")
            .map_err(RepositoryError::Unavailable)?;
        Ok(())
    }
}
