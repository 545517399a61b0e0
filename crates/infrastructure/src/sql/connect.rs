use std::path::Path;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};

use keymint_application::RepositoryError;
use sea_orm::sqlx::postgres::PgConnection;
use sea_orm::sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sea_orm::sqlx::{ConnectOptions as _, Connection};
use sea_orm::{ConnectOptions, DatabaseConnection, DbErr, SqlxSqliteConnector};

/// How to reach the database.
#[derive(Clone, Debug)]
pub struct DatabaseOptions {
    /// Most connections in the pool (for SQLite: the readers' pool).
    pub max_connections: u32,
    /// How long to wait for a new connection.
    pub connect_timeout: Duration,
    /// How long a request may wait for a pooled connection before storage counts
    /// as unavailable.
    pub acquire_timeout: Duration,
    /// How long SQLite waits for another writer's lock before giving up.
    pub sqlite_busy_timeout: Duration,
}

impl Default for DatabaseOptions {
    fn default() -> Self {
        Self {
            max_connections: 10,
            connect_timeout: Duration::from_secs(5),
            acquire_timeout: Duration::from_secs(5),
            sqlite_busy_timeout: Duration::from_secs(5),
        }
    }
}

/// A connected database: a handle for reads and one for writes.
///
/// On PostgreSQL both are the same pool. On SQLite, writes go through a pool of
/// exactly one connection: SQLite admits one writer at a time anyway, and queueing
/// writers in the pool (instead of letting several connections race for the lock)
/// is what keeps `database is locked` from ever reaching a caller.
#[derive(Clone, Debug)]
pub struct Database {
    /// For reads; many concurrent readers.
    pub read: DatabaseConnection,
    /// For writes.
    pub write: DatabaseConnection,
    /// Whether `read` and `write` are one pool (PostgreSQL, in-memory SQLite).
    shared: bool,
    /// Failed statements, shared by every clone.
    pub errors: Arc<DatabaseErrors>,
}

/// Statements that failed since start-up, by what the failure means for callers.
/// Conflicts (a unique key taken) are answers, not errors, and are not counted.
#[derive(Debug, Default)]
pub struct DatabaseErrors {
    unavailable: AtomicU64,
    unexpected: AtomicU64,
}

impl DatabaseErrors {
    /// The database could not be reached, or was busy past its timeout.
    pub fn unavailable(&self) -> u64 {
        self.unavailable.load(Relaxed)
    }

    /// Anything else: a bug, a constraint, a corrupt row.
    pub fn unexpected(&self) -> u64 {
        self.unexpected.load(Relaxed)
    }

    pub(crate) fn count_unavailable(&self) {
        self.unavailable.fetch_add(1, Relaxed);
    }
}

/// One connection pool's use now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PoolStats {
    /// `"read"` or `"write"` on SQLite; `"shared"` where one pool serves both.
    pub pool: &'static str,
    /// Connections open, idle or not.
    pub open: u32,
    /// Open connections not lent out.
    pub idle: u32,
    /// The most it opens.
    pub max: u32,
}

impl Database {
    fn new(read: DatabaseConnection, write: DatabaseConnection, shared: bool) -> Self {
        Self {
            read,
            write,
            shared,
            errors: Arc::default(),
        }
    }

    /// Turns a sea-orm error into the repository's, counting it.
    pub(crate) fn classify(&self, err: DbErr) -> RepositoryError {
        let classified = super::errors::classify(err);
        match classified {
            RepositoryError::Unavailable(_) => self.errors.count_unavailable(),
            RepositoryError::Unexpected(_) => {
                self.errors.unexpected.fetch_add(1, Relaxed);
            }
            _ => {}
        }
        classified
    }

    /// Each pool's connections now.
    pub fn pools(&self) -> Vec<PoolStats> {
        let pools: &[(&'static str, &DatabaseConnection)] = if self.shared {
            &[("shared", &self.write)]
        } else {
            &[("read", &self.read), ("write", &self.write)]
        };
        pools
            .iter()
            .filter_map(|&(pool, connection)| {
                let (open, idle, max) = match connection {
                    DatabaseConnection::SqlxPostgresPoolConnection(_) => {
                        let p = connection.get_postgres_connection_pool();
                        (p.size(), p.num_idle(), p.options().get_max_connections())
                    }
                    DatabaseConnection::SqlxSqlitePoolConnection(_) => {
                        let p = connection.get_sqlite_connection_pool();
                        (p.size(), p.num_idle(), p.options().get_max_connections())
                    }
                    _ => return None,
                };
                Some(PoolStats {
                    pool,
                    open,
                    idle: u32::try_from(idle).unwrap_or(u32::MAX),
                    max,
                })
            })
            .collect()
    }

    /// Closes both pools, waiting for connections in use to be returned.
    pub async fn close(self) {
        let _ = self.read.close().await;
        let _ = self.write.close().await;
    }
}

/// A database URL whose kind has been decided, once, from its scheme. URLs can
/// carry passwords, so `Debug` shows only the kind.
#[derive(Clone)]
pub enum DatabaseUrl {
    /// `sqlite:…`: one file (or memory), one process or several on one machine.
    Sqlite(SecretString),
    /// `postgres://…` or `postgresql://…`: any number of processes.
    Postgres(SecretString),
}

impl DatabaseUrl {
    /// The URL itself, to connect with.
    pub fn expose_secret(&self) -> &str {
        match self {
            DatabaseUrl::Sqlite(url) | DatabaseUrl::Postgres(url) => url.expose_secret(),
        }
    }
}

impl FromStr for DatabaseUrl {
    type Err = ConnectError;

    fn from_str(url: &str) -> Result<Self, Self::Err> {
        if url.starts_with("sqlite:") {
            Ok(DatabaseUrl::Sqlite(url.into()))
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(DatabaseUrl::Postgres(url.into()))
        } else {
            Err(ConnectError::UnsupportedScheme)
        }
    }
}

impl std::fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            DatabaseUrl::Sqlite(_) => "DatabaseUrl::Sqlite(<redacted>)",
            DatabaseUrl::Postgres(_) => "DatabaseUrl::Postgres(<redacted>)",
        })
    }
}

/// Why the database could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The URL names no supported database.
    #[error("unsupported database URL scheme (expected sqlite: or postgres://)")]
    UnsupportedScheme,
    /// The URL could not be parsed.
    #[error("invalid database URL: {0}")]
    InvalidUrl(String),
    /// The database could not be reached or opened.
    #[error("could not connect to the database")]
    Connect(#[source] anyhow::Error),
}

/// Connects to the database named by `url`.
pub async fn connect(url: &DatabaseUrl, options: &DatabaseOptions) -> Result<Database, ConnectError> {
    match url {
        DatabaseUrl::Sqlite(url) => connect_sqlite(url.expose_secret(), options).await,
        DatabaseUrl::Postgres(url) => connect_postgres(url.expose_secret(), options).await,
    }
}

async fn connect_postgres(url: &str, options: &DatabaseOptions) -> Result<Database, ConnectError> {
    // The pool retries a failing connection until its acquire timeout and then
    // reports only "pool timed out": one direct attempt first says why (refused,
    // unknown database, authentication).
    let attempt = tokio::time::timeout(options.connect_timeout, PgConnection::connect(url)).await;
    match attempt {
        Ok(Ok(connection)) => {
            let _ = connection.close().await;
        }
        Ok(Err(e)) => return Err(ConnectError::Connect(e.into())),
        Err(_) => {
            return Err(ConnectError::Connect(anyhow::anyhow!(
                "no answer within {} s",
                options.connect_timeout.as_secs()
            )))
        }
    }
    let mut opts = ConnectOptions::new(url.to_owned());
    opts.max_connections(options.max_connections)
        .connect_timeout(options.connect_timeout)
        .acquire_timeout(options.acquire_timeout)
        // Bind values include key hashes: statement logging must stay off.
        .sqlx_logging(false);
    let db = sea_orm::Database::connect(opts)
        .await
        .map_err(|e| ConnectError::Connect(e.into()))?;
    Ok(Database::new(db.clone(), db, true))
}

async fn connect_sqlite(url: &str, options: &DatabaseOptions) -> Result<Database, ConnectError> {
    let base = SqliteConnectOptions::from_str(url)
        // The parser's message names the problem, not the URL's contents.
        .map_err(|e| ConnectError::InvalidUrl(e.to_string()))?
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .busy_timeout(options.sqlite_busy_timeout)
        .foreign_keys(true)
        // Bind values include key hashes: statement logging must stay off.
        .disable_statement_logging();

    let filename = base.get_filename().to_owned();
    let in_memory = filename.as_os_str().is_empty() || filename == Path::new(":memory:") || url.contains("mode=memory");
    if !in_memory {
        if let Some(dir) = filename.parent().filter(|dir| !dir.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| ConnectError::Connect(anyhow::anyhow!("cannot create {}: {e}", dir.display())))?;
        }
    }

    let pool = |max: u32| {
        SqlitePoolOptions::new()
            .max_connections(max)
            .min_connections(if in_memory { 1 } else { 0 })
            .acquire_timeout(options.acquire_timeout)
            // An in-memory database lives only as long as its one connection.
            .idle_timeout(if in_memory {
                None
            } else {
                Some(Duration::from_secs(600))
            })
            .max_lifetime(if in_memory {
                None
            } else {
                Some(Duration::from_secs(1800))
            })
    };
    // A file on this machine cannot drop the connection the way a server can:
    // pinging it before each write is one more hand-off to sqlx's worker
    // thread while every other write waits.
    // Statement journals in memory: a group of creates is one long write
    // transaction, and spilling its journal to a temporary file was a seventh
    // of a create's time.
    let write_pool = pool(1)
        .test_before_acquire(false)
        .connect_with(base.clone().pragma("temp_store", "memory"))
        .await
        .map_err(|e| ConnectError::Connect(e.into()))?;
    let write = SqlxSqliteConnector::from_sqlx_sqlite_pool(write_pool);
    if in_memory {
        // Each in-memory connection is its own database, so readers must share the
        // writer's single connection.
        return Ok(Database::new(write.clone(), write, true));
    }
    let read_pool = pool(options.max_connections.max(1))
        .connect_with(base.read_only(true))
        .await
        .map_err(|e| ConnectError::Connect(e.into()))?;
    Ok(Database::new(
        SqlxSqliteConnector::from_sqlx_sqlite_pool(read_pool),
        write,
        false,
    ))
}
