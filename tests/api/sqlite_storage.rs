//! What only a persistent adapter can show: the stored row itself, and survival
//! across restarts.

use argon2::{Argon2, PasswordHash, PasswordVerifier};
use keymint_application::KeyStore;
use keymint_domain::{KeyId, OrgId};
use keymint_infrastructure::sql::{connect, DatabaseOptions, DatabaseUrl, SqlApiKeyRepository};
use sea_orm::{ConnectionTrait, Statement};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::support::{spawn_app, spawn_app_with, test_settings, Backend};

async fn stored_columns(url: &DatabaseUrl, id: &str) -> Vec<(String, String)> {
    let db = connect(url, &DatabaseOptions::default()).await.unwrap();
    let row = db
        .read
        .query_one(Statement::from_sql_and_values(
            db.read.get_database_backend(),
            "SELECT name, description, environment, public_key, lookup_id, secret_hash, private_key_display, lookup_digest FROM api_keys WHERE id = ?",
            [Uuid::parse_str(id).unwrap().into()],
        ))
        .await
        .unwrap()
        .expect("the created key is stored");
    [
        "name",
        "description",
        "environment",
        "public_key",
        "lookup_id",
        "secret_hash",
        "private_key_display",
        "lookup_digest",
    ]
    .into_iter()
    .map(|column| {
        (
            column.to_owned(),
            row.try_get::<Option<String>>("", column).unwrap().unwrap_or_default(),
        )
    })
    .collect()
}

/// The row of a new key: its hash in the configured form, and no part of its secret.
async fn stored_hash(app: &crate::support::TestApp) -> (String, String, Vec<(String, String)>) {
    let created: Value = app
        .create_key(&json!({"name": "stored", "description": "row check"}))
        .await
        .json()
        .await
        .unwrap();
    let private_key = created["private_key"].as_str().unwrap().to_owned();
    let columns = stored_columns(
        app.settings.database.url.sql().unwrap(),
        created["id"].as_str().unwrap(),
    )
    .await;
    let hash = columns.iter().find(|(c, _)| c == "secret_hash").unwrap().1.clone();
    let secret_part = &private_key[25..];
    for (column, value) in &columns {
        for window in secret_part.as_bytes().windows(8) {
            let window = std::str::from_utf8(window).unwrap();
            assert!(!value.contains(window), "column {column} holds part of the secret");
        }
    }
    (private_key, hash, columns)
}

#[tokio::test]
async fn the_stored_row_holds_the_sha256_of_the_key_and_no_part_of_its_secret() {
    let app = spawn_app(Backend::Sqlite).await;
    let (private_key, hash, columns) = stored_hash(&app).await;
    use base64::Engine as _;
    // Computed with another SHA-256 implementation than the service's.
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, private_key.as_bytes());
    let expected = format!(
        "$sha256${}",
        base64::engine::general_purpose::STANDARD_NO_PAD.encode(digest.as_ref())
    );
    assert_eq!(hash, expected);
    let lookup_digest = &columns.iter().find(|(c, _)| c == "lookup_digest").unwrap().1;
    assert_eq!(
        lookup_digest, "",
        "a Keymint key is found by its lookup id, not a digest"
    );
    assert_eq!(app.verify(&private_key).await["code"], "VALID");
}

/// `hashing.algorithm = "argon2id"`: the PHC string is argon2's own, which the
/// argon2 crate verifies.
#[tokio::test]
async fn a_password_grade_deployment_stores_an_argon2id_hash_the_argon2_crate_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let app = spawn_app_with(
        test_settings(Backend::Sqlite, &dir).merge(("hashing.algorithm", "argon2id")),
        dir,
    )
    .await;
    let (private_key, hash, _) = stored_hash(&app).await;
    assert!(hash.starts_with("$argon2id$v=19$"), "{hash}");
    let parsed = PasswordHash::new(&hash).unwrap();
    assert!(
        Argon2::default()
            .verify_password(private_key.as_bytes(), &parsed)
            .is_ok(),
        "the hash verifies the returned key"
    );
    assert!(Argon2::default().verify_password(b"sk_live_wrong", &parsed).is_err());
    assert_eq!(app.verify(&private_key).await["code"], "VALID");
}

#[tokio::test]
async fn a_second_app_on_the_same_sqlite_file_still_sees_the_keys() {
    let first = spawn_app(Backend::Sqlite).await;
    let created: Value = first
        .create_key(&json!({"name": "durable"}))
        .await
        .json()
        .await
        .unwrap();
    let figment = test_settings(Backend::Sqlite, &first.dir);

    let second = spawn_app_with(figment, tempfile::tempdir().unwrap()).await;
    assert_eq!(
        second
            .client
            .get(second.url("/readyz"))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16(),
        200
    );
    let also: Value = second
        .create_key(&json!({"name": "second"}))
        .await
        .json()
        .await
        .unwrap();
    assert_ne!(also["id"], created["id"]);

    let db = connect(second.settings.database.url.sql().unwrap(), &DatabaseOptions::default())
        .await
        .unwrap();
    let repository = SqlApiKeyRepository::new(db);
    let id = KeyId::from_uuid(Uuid::parse_str(created["id"].as_str().unwrap()).unwrap());
    let org = OrgId::from_uuid(first.org_id);
    let key = repository
        .find(org, id)
        .await
        .unwrap()
        .expect("the key survived a second app starting (and migrating)");
    assert_eq!(key.name().as_str(), "durable");
    assert_eq!(key.public_key().as_str(), created["public_key"].as_str().unwrap());
    assert!(
        repository
            .find(OrgId::from_uuid(Uuid::new_v4()), id)
            .await
            .unwrap()
            .is_none(),
        "scoped by organisation"
    );
}
