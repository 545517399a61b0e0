//! A database written by the previous release (argon2id at password cost for
//! every key; `tests/fixtures/release-384ad2f`, made by
//! `tests/fixtures/make-release-fixture.sh`) is migrated in place, its keys
//! keep verifying, and each is hashed anew on its first successful
//! verification: one write, counted in `/metrics`.

use keymint_migrations::{Migrator, MigratorTrait};
use sea_orm::{ConnectionTrait, Database, Statement};
use serde_json::Value;
use uuid::Uuid;

use crate::support::database::steps_back_to;
use crate::support::{spawn_app_with, test_settings, Backend, TestApp};

const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/release-384ad2f");

fn keys_of(backend: Backend) -> Value {
    let text = std::fs::read_to_string(format!("{FIXTURE}/keys.json")).unwrap();
    let all: Value = serde_json::from_str(&text).unwrap();
    all[if backend == Backend::Sqlite {
        "sqlite"
    } else {
        "postgres"
    }]
    .clone()
}

/// The fixture's database, copied (SQLite) or loaded (PostgreSQL), with the
/// rotated key's grace period moved into the future (the fixture's week has
/// passed by the time anyone runs this), and its URL.
async fn fixture_database(backend: Backend, dir: &tempfile::TempDir) -> String {
    let url = match backend {
        Backend::Sqlite => {
            let path = dir.path().join("release.db");
            std::fs::copy(format!("{FIXTURE}/sqlite.db"), &path).unwrap();
            format!("sqlite://{}", path.display())
        }
        _ => crate::support::postgres_kept_database(),
    };
    let db = Database::connect(url.as_str()).await.unwrap();
    if backend == Backend::Postgres {
        let dump = std::fs::read_to_string(format!("{FIXTURE}/postgres.sql")).unwrap();
        db.execute_unprepared(&dump).await.unwrap();
    }
    // In the form each engine's rows already hold.
    let later = match backend {
        Backend::Sqlite => "'2099-01-01T00:00:00+00:00'",
        _ => "'2099-01-01 00:00:00+00'",
    };
    db.execute_unprepared(&format!(
        "UPDATE api_keys SET previous_valid_until = {later} WHERE previous_valid_until IS NOT NULL"
    ))
    .await
    .unwrap();
    db.close().await.unwrap();
    url
}

async fn hashes(url: &str) -> Vec<(String, String, Option<String>)> {
    let db = Database::connect(url).await.unwrap();
    let rows = db
        .query_all(Statement::from_string(
            db.get_database_backend(),
            "SELECT name, secret_hash, previous_secret_hash FROM api_keys ORDER BY name",
        ))
        .await
        .unwrap();
    let read = rows
        .iter()
        .map(|row| {
            (
                row.try_get("", "name").unwrap(),
                row.try_get("", "secret_hash").unwrap(),
                row.try_get("", "previous_secret_hash").unwrap(),
            )
        })
        .collect();
    db.close().await.unwrap();
    read
}

async fn metric(app: &TestApp, line_start: &str) -> f64 {
    let text = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find(|line| line.starts_with(line_start))
        .and_then(|line| line.rsplit(' ').next())
        .map_or(0.0, |value| value.parse().unwrap())
}

async fn start(url: &str) -> TestApp {
    let dir = tempfile::tempdir().unwrap();
    spawn_app_with(test_settings(Backend::Sqlite, &dir).merge(("database.url", url)), dir).await
}

async fn keys_of_the_previous_release_verify_and_are_hashed_anew_once(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let url = fixture_database(backend, &dir).await;
    let keys = keys_of(backend);
    let before = hashes(&url).await;
    assert!(before
        .iter()
        .all(|(_, hash, _)| hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$")));

    let app = start(&url).await;
    let key = |role: &str, field: &str| keys[role][field].as_str().unwrap().to_owned();
    let verdicts = [
        (key("plain", "private_key"), "VALID"),
        (key("test", "private_key"), "VALID"),
        (key("rotated", "private_key"), "VALID"),
        (key("rotated", "previous_private_key"), "VALID"),
        (key("revoked", "private_key"), "REVOKED"),
    ];
    for (presented, code) in &verdicts {
        assert_eq!(app.verify(presented).await["code"], *code, "{presented}");
    }
    assert_eq!(
        metric(&app, "keymint_key_hash_checks_total{algorithm=\"argon2id\"}").await,
        5.0
    );
    assert_eq!(metric(&app, "keymint_key_rehashes_total{outcome=\"ok\"}").await, 5.0);
    // Organisation data came through the migration untouched.
    let org: Uuid = keys["org_id"].as_str().unwrap().parse().unwrap();
    let listed = app
        .call_as(org, reqwest::Method::GET, "/api/v2/api-keys", None)
        .await
        .json::<Value>()
        .await
        .unwrap();
    let mut names: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["name"].as_str().unwrap())
        .collect();
    names.sort_unstable();
    assert_eq!(names, ["plain", "revoked", "rotated", "test env"]);

    let after = hashes(&url).await;
    for (name, hash, previous) in &after {
        assert!(hash.starts_with("$sha256$"), "{name}: {hash}");
        assert!(previous.as_deref().is_none_or(|p| p.starts_with("$sha256$")), "{name}");
    }
    drop(app);

    // A fresh process (nothing cached) verifies the upgraded hashes without argon2.
    let app = start(&url).await;
    for (presented, code) in &verdicts {
        assert_eq!(app.verify(presented).await["code"], *code);
    }
    let wrong = key("plain", "private_key").replace(&key("plain", "private_key")[30..34], "zzzz");
    assert_eq!(app.verify(&wrong).await["code"], "NOT_FOUND");
    assert_eq!(
        metric(&app, "keymint_key_hash_checks_total{algorithm=\"argon2id\"}").await,
        0.0
    );
    assert_eq!(
        metric(&app, "keymint_key_hash_checks_total{algorithm=\"sha256\"}").await,
        5.0
    );
    assert_eq!(metric(&app, "keymint_key_rehashes_total{outcome=\"ok\"}").await, 0.0);
    assert_eq!(hashes(&url).await, after);
    drop(app);
    if backend == Backend::Postgres {
        crate::support::drop_kept_database(&url);
    }
}

#[tokio::test]
async fn sqlite_keys_of_the_previous_release_verify_and_are_hashed_anew_once() {
    keys_of_the_previous_release_verify_and_are_hashed_anew_once(Backend::Sqlite).await;
}

#[tokio::test]
#[ignore = "needs PostgreSQL: set KEYMINT_TEST_POSTGRES_URL"]
async fn postgres_keys_of_the_previous_release_verify_and_are_hashed_anew_once() {
    keys_of_the_previous_release_verify_and_are_hashed_anew_once(Backend::Postgres).await;
}

/// The migration also runs backwards and forwards again on the fixture: an
/// operator can roll back a release.
#[tokio::test]
async fn the_migration_to_lookup_digests_rolls_back_and_forward_on_the_previous_releases_database() {
    let dir = tempfile::tempdir().unwrap();
    let url = fixture_database(Backend::Sqlite, &dir).await;
    let db = Database::connect(url.as_str()).await.unwrap();
    // Rolling back to before the lookup digests undoes the later migrations too.
    let steps = steps_back_to("_lookup_digests");
    Migrator::up(&db, None).await.unwrap();
    Migrator::down(&db, Some(steps)).await.unwrap();
    Migrator::up(&db, None).await.unwrap();
    let count = db
        .query_one(Statement::from_string(
            db.get_database_backend(),
            "SELECT count(*) AS n FROM api_keys WHERE lookup_digest IS NULL",
        ))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(count.try_get::<i64>("", "n").unwrap(), 4);
    // Once a key is stored as SHA-256 (or imported), going back is refused:
    // the release before could not verify it.
    db.execute_unprepared("UPDATE api_keys SET secret_hash = '$sha256$AAAA' WHERE name = 'plain'")
        .await
        .unwrap();
    let refused = Migrator::down(&db, Some(steps)).await.unwrap_err();
    assert!(refused.to_string().contains("restore a backup"), "{refused}");
    let tables = db
        .query_one(Statement::from_string(
            db.get_database_backend(),
            "SELECT count(*) AS n FROM lookup_digest_generation",
        ))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(tables.try_get::<i64>("", "n").unwrap(), 1, "nothing was undone");
}

/// Many old hashes verified at once, each key by several concurrent requests:
/// every request answers VALID, and each stored hash is replaced exactly once.
async fn old_hashes_under_concurrent_cold_verification_are_replaced_once_each(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let url = match backend {
        Backend::Sqlite => format!("sqlite://{}/old.db", dir.path().display()),
        _ => crate::support::postgres_kept_database(),
    };
    let old = spawn_app_with(
        test_settings(Backend::Sqlite, &dir)
            .merge(("database.url", url.as_str()))
            .merge(("hashing.algorithm", "argon2id")),
        tempfile::tempdir().unwrap(),
    )
    .await;
    let org = old.org_id;
    let mut keys = Vec::new();
    for i in 0..24 {
        let created = old
            .call_as(
                org,
                reqwest::Method::POST,
                "/api/v2/api-keys",
                Some(&serde_json::json!({"name": format!("old {i}")})),
            )
            .await
            .json::<Value>()
            .await
            .unwrap();
        keys.push(created["private_key"].as_str().unwrap().to_owned());
    }
    drop(old);
    assert!(hashes(&url)
        .await
        .iter()
        .all(|(_, hash, _)| hash.starts_with("$argon2id$")));

    let app = start(&url).await;
    let verdicts = futures_util::future::join_all(
        keys.iter()
            .flat_map(|key| std::iter::repeat_n(key, 4))
            .map(|key| app.verify(key)),
    )
    .await;
    assert!(verdicts.iter().all(|v| v["code"] == "VALID"), "{verdicts:?}");
    assert_eq!(metric(&app, "keymint_key_rehashes_total{outcome=\"ok\"}").await, 24.0);
    assert_eq!(metric(&app, "keymint_key_rehashes_total{outcome=\"error\"}").await, 0.0);
    assert!(hashes(&url)
        .await
        .iter()
        .all(|(_, hash, _)| hash.starts_with("$sha256$")));
    drop(app);
    if backend == Backend::Postgres {
        crate::support::drop_kept_database(&url);
    }
}

#[tokio::test]
async fn sqlite_old_hashes_under_concurrent_cold_verification_are_replaced_once_each() {
    old_hashes_under_concurrent_cold_verification_are_replaced_once_each(Backend::Sqlite).await;
}

#[tokio::test]
#[ignore = "needs PostgreSQL: set KEYMINT_TEST_POSTGRES_URL"]
async fn postgres_old_hashes_under_concurrent_cold_verification_are_replaced_once_each() {
    old_hashes_under_concurrent_cold_verification_are_replaced_once_each(Backend::Postgres).await;
}
