//! A migrated database of a test's own, on SQLite or PostgreSQL, for tests of
//! the storage adapters and of the migrations themselves.

use keymint_infrastructure::sql::{connect, Database, DatabaseUrl};
use keymint_migrations::{Migrator, MigratorTrait};

use super::{drop_test_database, postgres_test_database, Backend};

/// A database with every migration run; a PostgreSQL one is dropped with it
/// and a SQLite one goes with its temporary directory, also when the test (or
/// the migration) fails.
pub struct MigratedDatabase {
    pub db: Database,
    pub url: String,
    _dir: tempfile::TempDir,
}

impl MigratedDatabase {
    /// A fresh database on `backend`, which is SQLite or PostgreSQL.
    pub async fn new(backend: Backend) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let url = match backend {
            Backend::Sqlite => format!("sqlite://{}/test.db", dir.path().display()),
            Backend::Postgres => postgres_test_database(),
            Backend::Memory => panic!("a migrated database is SQLite or PostgreSQL, not {backend:?}"),
        };
        let parsed: DatabaseUrl = url.parse().unwrap();
        // Made before migrating, so that a failed migration drops it too.
        let database = Self {
            db: connect(&parsed, &Default::default()).await.unwrap(),
            url,
            _dir: dir,
        };
        Migrator::up(&database.db.write, None).await.unwrap();
        database
    }
}

impl Drop for MigratedDatabase {
    fn drop(&mut self) {
        // Ignores SQLite URLs; FORCE ends the pool's connections.
        drop_test_database(&self.url);
    }
}

/// How many migrations `Migrator::down` undoes to be back before the one
/// whose name ends with `name` (every later one is undone with it): counted,
/// so that a test of an old migration keeps reaching it as new ones are added.
pub fn steps_back_to(name: &str) -> u32 {
    let from_last = Migrator::migrations()
        .iter()
        .rev()
        .position(|migration| migration.name().ends_with(name))
        .unwrap_or_else(|| panic!("no migration named *{name}"));
    u32::try_from(from_last + 1).unwrap()
}
