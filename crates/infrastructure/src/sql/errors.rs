//! What a failed statement means to a caller: storage unavailable (retry
//! later) or unexpected, with SQLite's busy lock counted as unavailable.

use keymint_application::RepositoryError;
use sea_orm::{sqlx, DbErr, RuntimeErr, SqlErr};

/// Sorts sea-orm errors into the port's cases: a unique violation is a conflict,
/// anything that says "cannot reach the database" is unavailability, and the rest
/// is unexpected. The cause is kept for the log, never shown to callers.
pub(crate) fn classify(err: DbErr) -> RepositoryError {
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
                    | sqlx::Error::Protocol(_)
                    | sqlx::Error::WorkerCrashed
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
pub(crate) fn is_sqlite_busy(err: &sqlx::Error) -> bool {
    matches!(err, sqlx::Error::Database(db) if db.code().is_some_and(|code| code == "5" || code == "517"))
}
