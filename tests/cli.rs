//! The `keymint` binary: configuration errors, the production guard, `dev-token`,
//! `migrate` and the start-up warning.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::process::{Command, Output, Stdio};
use std::time::Duration;

use keymint::Settings;
use keymint_application::TokenVerifier;
use keymint_infrastructure::Hs256Verifier;
use uuid::Uuid;

/// The binary, run in an empty directory with only the given KEYMINT_* variables,
/// so neither the developer's environment nor repository files leak in.
fn keymint(dir: &tempfile::TempDir, args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_keymint"));
    command
        .args(args)
        .current_dir(dir.path())
        .env_clear()
        .envs(env.iter().copied());
    command
}

/// A development token for `org`, as `keymint dev-token` prints it.
fn dev_token(org: Uuid) -> String {
    let output = run(&["dev-token", "--org", &org.to_string()], &[]);
    assert!(output.status.success());
    String::from_utf8(output.stdout).unwrap().trim().to_owned()
}

fn run(args: &[&str], env: &[(&str, &str)]) -> Output {
    let dir = tempfile::tempdir().unwrap();
    keymint(&dir, args, env).output().unwrap()
}

#[test]
fn the_production_profile_refuses_the_shipped_development_secret() {
    let output = run(&["migrate"], &[("KEYMINT_PROFILE", "production")]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("auth.hs256_secret"), "{stderr}");
    assert!(
        !stderr.contains("keymint-development-secret"),
        "the secret itself is not echoed: {stderr}"
    );
}

#[test]
fn a_bad_configuration_value_exits_non_zero_naming_the_key() {
    for (var, value, key) in [
        ("KEYMINT_HASHING__MEMORY_KIB", "lots", "hashing.memory_kib"),
        ("KEYMINT_SERVER__LISTEN", "everywhere", "server.listen"),
        ("KEYMINT_KEYS__DEFAULT_ENVIRONMENT", "prod", "keys.default_environment"),
        ("KEYMINT_SERVER__LISTN", "127.0.0.1:1", "listn"),
    ] {
        let output = run(&["migrate"], &[(var, value)]);
        assert_eq!(output.status.code(), Some(2), "{var}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(key), "{var}: {stderr}");
    }
}

#[test]
fn a_refused_database_connection_is_reported_as_refused_once() {
    // Port 9 (discard) on loopback: nothing listens there.
    let output = run(
        &["migrate"],
        &[
            (
                "KEYMINT_DATABASE__URL",
                "postgres://keymint:hunter2@127.0.0.1:9/keymint",
            ),
            ("KEYMINT_DATABASE__CONNECT_TIMEOUT_SECONDS", "2"),
        ],
    );
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("Connection refused"), "{stderr}");
    assert!(!stderr.contains("pool timed out"), "{stderr}");
    assert_eq!(stderr.matches("Connection refused").count(), 1, "{stderr}");
    assert!(!stderr.contains("hunter2"), "{stderr}");
}

#[test]
#[ignore = "needs PostgreSQL: set KEYMINT_TEST_POSTGRES_URL"]
fn migrating_a_new_postgres_database_prints_no_server_notices() {
    let url = support::postgres_test_database();
    let output = run(&["migrate"], &[("KEYMINT_DATABASE__URL", &url)]);
    support::drop_test_database(&url);
    assert!(output.status.success());
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("migrations applied"), "{stdout}");
    assert!(!stdout.contains("already exists"), "{stdout}");
}

#[test]
fn a_missing_config_file_is_named_with_its_path() {
    let output = run(&["migrate"], &[("KEYMINT_CONFIG", "/nonexistent/keymint.toml")]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("/nonexistent/keymint.toml"), "{stderr}");
}

#[tokio::test]
async fn dev_token_prints_a_token_for_the_organisation_that_the_service_accepts() {
    let org = Uuid::new_v4();
    let output = run(
        &["dev-token", "--org", &org.to_string(), "--sub", "alice", "--ttl", "120"],
        &[],
    );
    assert!(output.status.success());
    let token = String::from_utf8(output.stdout).unwrap().trim().to_owned();

    let settings = Settings::from_figment(Settings::defaults()).unwrap();
    let principal = Hs256Verifier::new(&settings.hs256()).verify(&token).await.unwrap();
    assert_eq!(principal.organization, Some(org.to_string()));
    assert_eq!(principal.subject.as_deref(), Some("alice"));
}

#[test]
fn dev_token_requires_an_organisation_uuid() {
    let named = run(&["dev-token", "--org", "acme"], &[]);
    assert!(!named.status.success());
    let stderr = String::from_utf8_lossy(&named.stderr);
    assert!(stderr.contains("expected the organisation's UUID"), "{stderr}");
    assert!(!run(&["dev-token"], &[]).status.success());
}

#[test]
fn configuration_is_read_from_the_working_directory_never_a_parent() {
    // A checkout's config/ above the directory the binary runs in (a
    // client's folder inside the repository, say) is not this process's.
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("config")).unwrap();
    std::fs::write(
        dir.path().join("config/default.toml"),
        "[server]\nno_such_setting = 1\n",
    )
    .unwrap();
    std::fs::create_dir_all(dir.path().join("clients/python")).unwrap();
    let org = Uuid::new_v4().to_string();
    let below = Command::new(env!("CARGO_BIN_EXE_keymint"))
        .args(["dev-token", "--org", &org])
        .current_dir(dir.path().join("clients/python"))
        .env_clear()
        .output()
        .unwrap();
    assert!(below.status.success(), "{}", String::from_utf8_lossy(&below.stderr));
    // In the directory itself it is read (and this one is refused).
    let here = keymint(&dir, &["dev-token", "--org", &org], &[]).output().unwrap();
    assert!(!here.status.success());
    assert!(String::from_utf8_lossy(&here.stderr).contains("no_such_setting"));
}

#[test]
fn migrate_creates_the_sqlite_file_and_schema_and_is_repeatable() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/nested/keymint.db", dir.path().display());
    for _ in 0..2 {
        let output = keymint(&dir, &["migrate"], &[("KEYMINT_DATABASE__URL", &url)])
            .output()
            .unwrap();
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    }
    let bytes = std::fs::read(dir.path().join("nested/keymint.db")).unwrap();
    assert!(bytes.starts_with(b"SQLite format 3"));
    assert!(bytes.windows(8).any(|w| w == b"api_keys"), "the api_keys table exists");
}

#[test]
fn serving_with_the_development_secret_logs_a_loud_warning() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = keymint(
        &dir,
        &[],
        &[
            ("KEYMINT_SERVER__LISTEN", "127.0.0.1:0"),
            ("KEYMINT_DATABASE__URL", "memory:"),
        ],
    )
    .stdout(Stdio::piped())
    .spawn()
    .unwrap();
    let received = support::stdout::lines_of(child.stdout.take().unwrap());
    let mut saw_warning = false;
    while let Ok(line) = received.recv_timeout(Duration::from_secs(30)) {
        if line.contains("WARN") && line.contains("DEVELOPMENT AUTH") {
            saw_warning = true;
            break;
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(saw_warning, "no development warning was logged");
}

#[tokio::test]
async fn sigterm_drains_and_writes_pending_key_usage_before_exiting() {
    // Only the shutdown flush can write last_used_at within this test.
    let mut server = server_with(&[("KEYMINT_VERIFY__USAGE_FLUSH_SECONDS", "3600")]);
    let address = server.url.trim_start_matches("http://").to_owned();
    let org = Uuid::new_v4();
    let token = dev_token(org);
    let client = reqwest::Client::new();
    let created: serde_json::Value = client
        .post(format!("http://{address}/api/v2/api-keys"))
        .bearer_auth(&token)
        .json(&serde_json::json!({"name": "used before shutdown"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let verdict: serde_json::Value = client
        .post(format!("http://{address}/api/v2/api-keys/verify"))
        .json(&serde_json::json!({"key": created["private_key"]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(verdict["code"], "VALID");

    let status = Command::new("kill")
        .args(["-TERM", &server.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    // The server is another process: waiting for it blocks nothing it needs.
    let exit = server.child.wait().unwrap();
    assert!(exit.success(), "graceful exit: {exit:?}");

    let db = keymint_infrastructure::sql::connect(&server.database_url.parse().unwrap(), &Default::default())
        .await
        .unwrap();
    let repository = keymint_infrastructure::sql::SqlApiKeyRepository::new(db);
    let id = keymint_domain::KeyId::from_uuid(Uuid::parse_str(created["id"].as_str().unwrap()).unwrap());
    use keymint_application::KeyStore;
    let key = repository
        .find(keymint_domain::OrgId::from_uuid(org), id)
        .await
        .unwrap()
        .unwrap();
    assert!(key.last_used_at().is_some(), "no update is lost on SIGTERM");
}

type Server = support::process::KeymintProcess;

fn server() -> Server {
    server_with(&[])
}

fn server_with(extra: &[(&str, &str)]) -> Server {
    support::process::spawn_keymint(extra)
}

/// Runs a client command as a person would, with the server and token in the
/// environment; returns (exit code, stdout, stderr).
fn client(server: &Server, token: &str, args: &[&str]) -> (i32, String, String) {
    let output = run(args, &[("KEYMINT_URL", server.url.as_str()), ("KEYMINT_TOKEN", token)]);
    (
        output.status.code().unwrap(),
        String::from_utf8(output.stdout).unwrap(),
        String::from_utf8(output.stderr).unwrap(),
    )
}

#[test]
fn the_client_manages_a_key_end_to_end_against_a_running_server() {
    let server = server();
    let token = dev_token(Uuid::new_v4());
    let token = token.as_str();

    let (code, out, err) = client(
        &server,
        token,
        &["keys", "create", "--name", "billing", "--permission", "billing.read"],
    );
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("shown once and never again"),
        "the warning goes to stderr: {err}"
    );
    let private_key = out
        .lines()
        .find_map(|line| line.strip_prefix("private_key "))
        .unwrap()
        .trim()
        .to_owned();
    assert!(private_key.starts_with("sk_live_"), "{out}");
    assert!(!err.contains(&private_key[8..]), "the key itself is on stdout only");

    let (code, out, _) = client(&server, token, &["keys", "list"]);
    assert_eq!(code, 0);
    let header = out.lines().next().unwrap();
    assert!(
        header.starts_with("ID") && header.contains("STATUS") && header.contains("LAST USED"),
        "{out}"
    );
    assert!(
        out.lines().nth(1).unwrap().contains("billing") && out.contains("active"),
        "{out}"
    );
    let (_, listed, _) = client(&server, token, &["keys", "list", "--json"]);
    let listed: serde_json::Value = serde_json::from_str(&listed).unwrap();
    let id = listed[0]["id"].as_str().unwrap().to_owned();
    assert!(listed[0].get("private_key").is_none());

    let (code, out, _) = client(&server, token, &["verify", &private_key]);
    assert_eq!((code, out.starts_with("VALID: billing")), (0, true), "{out}");
    let piped = keymint(
        &tempfile::tempdir().unwrap(),
        &["verify", "-"],
        &[("KEYMINT_URL", &server.url)],
    )
    .stdin(Stdio::piped())
    .stdout(Stdio::piped())
    .spawn()
    .and_then(|mut child| {
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(format!("{private_key}\n").as_bytes())?;
        child.wait_with_output()
    })
    .unwrap();
    assert!(piped.status.success(), "a key read from stdin");

    let (code, out, _) = client(
        &server,
        token,
        &["keys", "update", &id, "--name", "billing-v2", "--clear-description"],
    );
    assert_eq!(code, 0);
    assert!(out.contains("billing-v2"), "{out}");
    let (code, out, err) = client(
        &server,
        token,
        &["keys", "rotate", &id, "--grace-period", "60", "--json"],
    );
    assert_eq!(code, 0, "{err}");
    let rotated: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert!(rotated["private_key"].as_str().unwrap().starts_with("sk_live_"));
    assert!(err.contains("shown once"));
    let (code, out, _) = client(&server, token, &["keys", "revoke", &id]);
    assert_eq!((code, out.starts_with(&format!("revoked {id}"))), (0, true), "{out}");
    let (code, out, _) = client(&server, token, &["keys", "events", &id]);
    assert_eq!(code, 0);
    let actions: Vec<&str> = out
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().nth(1).unwrap())
        .collect();
    assert_eq!(actions, ["revoked", "rotated", "updated", "created"], "{out}");
    let current = rotated["private_key"].as_str().unwrap();
    let (code, out, err) = client(&server, token, &["verify", current]);
    assert_eq!((code, out.trim()), (1, "REVOKED"), "{err}");
    assert_eq!(err, "", "the verdict is said once, on stdout");
    let (code, out, _) = client(&server, token, &["verify", &private_key]);
    assert_eq!(
        (code, out.trim()),
        (1, "NOT_FOUND"),
        "revoking ended the old key's grace too"
    );
    let (code, _, _) = client(&server, token, &["keys", "get", &id]);
    assert_eq!(code, 0);
    let (code, out, _) = client(&server, token, &["keys", "delete", &id]);
    assert_eq!((code, out.trim().to_owned()), (0, format!("deleted {id}")));
    let (code, _, err) = client(&server, token, &["keys", "get", &id]);
    assert_eq!(code, 1);
    assert!(err.contains("API key not found (404 not_found, request "), "{err}");
}

#[test]
fn the_client_fails_with_the_apis_message_and_a_nonzero_exit() {
    let server = server();
    let token = dev_token(Uuid::new_v4());
    let token = token.as_str();

    let (code, out, err) = client(
        &server,
        token,
        &["keys", "create", "--name", "", "--expires-at", "yesterday"],
    );
    assert_eq!((code, out.as_str()), (1, ""));
    assert!(
        err.contains("name: ") && err.contains("expires_at: "),
        "every field is named: {err}"
    );
    assert!(err.contains("(422 validation_error, request "), "{err}");

    let (code, _, err) = client(&server, "", &["keys", "list"]);
    assert_eq!(code, 2, "a command that cannot be sent is a usage error");
    assert!(err.contains("no token"), "{err}");
    let (code, _, err) = client(&server, &format!("{token}x"), &["keys", "list"]);
    assert_eq!(code, 1);
    assert!(err.contains("401 invalid_token"), "{err}");
    assert!(!err.contains(token), "the token is not echoed");

    let unreachable = run(
        &["keys", "list", "--url", "http://127.0.0.1:9"],
        &[("KEYMINT_TOKEN", token)],
    );
    assert_eq!(unreachable.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&unreachable.stderr).contains("cannot reach http://127.0.0.1:9"));
    let with_credentials = run(
        &["keys", "list", "--url", "http://ops:s3cret@127.0.0.1:9"],
        &[("KEYMINT_TOKEN", token)],
    );
    let err = String::from_utf8_lossy(&with_credentials.stderr);
    assert!(
        err.contains("cannot reach http://127.0.0.1:9") && !err.contains("s3cret"),
        "{err}"
    );

    let key_id = Uuid::new_v4().to_string();
    let (code, _, err) = client(
        &server,
        token,
        &["credits", "set", &key_id, "5", "--idempotency-key", "two words"],
    );
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--idempotency-key: 1 to 255 visible ASCII"), "{err}");

    let help = String::from_utf8(run(&["keys", "--help"], &[]).stdout).unwrap();
    for command in [
        "list", "create", "get", "update", "rotate", "revoke", "delete", "events",
    ] {
        assert!(help.contains(command), "{help}");
    }
    assert!(help.contains("KEYMINT_TOKEN") && help.contains("--json"), "{help}");
    // A subcommand's own options, then the connection's under their heading.
    let list = String::from_utf8(run(&["keys", "list", "--help"], &[]).stdout).unwrap();
    let (own, connection) = list.split_once("Connection:").expect("a Connection heading");
    assert!(own.contains("--limit") && !own.contains("--token"), "{list}");
    assert!(connection.contains("--token") && connection.contains("--url"), "{list}");
    // Verification needs no token, so it offers none.
    let verify = String::from_utf8(run(&["verify", "--help"], &[]).stdout).unwrap();
    assert!(verify.contains("--url") && !verify.contains("--token"), "{verify}");
    let top = String::from_utf8(run(&["--help"], &[]).stdout).unwrap();
    assert!(top.contains("keys") && top.contains("verify"), "{top}");
}

#[test]
fn credits_rate_limits_and_metadata_are_set_on_create_and_lists_search_by_name() {
    let server = server();
    let token = dev_token(Uuid::new_v4());
    let token = token.as_str();

    let (code, out, err) = client(
        &server,
        token,
        &[
            "keys",
            "create",
            "--name",
            "Metered Élan",
            "--credits",
            "100",
            "--refill",
            "daily:100",
            "--ratelimit",
            "requests=10/1m",
            "--ratelimit",
            "burst=2/1s",
            "--meta",
            r#"{"plan": "pro"}"#,
            "--json",
        ],
    );
    assert_eq!(code, 0, "{err}");
    let created: serde_json::Value = serde_json::from_str(&out).unwrap();
    let id = created["id"].as_str().unwrap();
    let (code, out, _) = client(&server, token, &["keys", "get", id, "--json"]);
    assert_eq!(code, 0);
    let key: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(key["credits"]["remaining"], 100);
    assert_eq!(key["credits"]["refill"]["interval"], "daily");
    assert_eq!(key["ratelimits"][0]["duration_ms"], 60_000);
    assert_eq!(key["ratelimits"][1]["name"], "burst");
    assert_eq!(key["meta"]["plan"], "pro");

    client(&server, token, &["keys", "create", "--name", "other"]);
    let (code, out, _) = client(&server, token, &["keys", "list", "--name", "élan", "--json"]);
    assert_eq!(code, 0);
    let found: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(found.as_array().unwrap().len(), 1);
    assert_eq!(found[0]["name"], "Metered Élan");

    // A malformed option is a usage error naming it; a value the server refuses
    // is its 422, named.
    let (code, _, err) = client(
        &server,
        token,
        &["keys", "create", "--name", "x", "--ratelimit", "requests=10"],
    );
    assert_eq!(code, 2);
    assert!(
        err.contains("--ratelimit") && err.contains("NAME=LIMIT/WINDOW"),
        "{err}"
    );
    let (code, _, err) = client(
        &server,
        token,
        &["keys", "create", "--name", "x", "--refill", "daily:5"],
    );
    assert_eq!(code, 2, "a refill needs credits: {err}");
    let (code, _, err) = client(
        &server,
        token,
        &["keys", "create", "--name", "x", "--ratelimit", "r=0/1m"],
    );
    assert_eq!(code, 1);
    assert!(err.contains("limit must be from 1"), "{err}");
    let (code, _, err) = client(&server, token, &["keys", "create", "--name", "x", "--meta", "[1]"]);
    assert_eq!(code, 1);
    assert!(err.contains("meta"), "{err}");
}

#[test]
fn import_sends_a_json_lines_file_and_reports_each_line_never_a_key() {
    let server = server();
    let token = dev_token(Uuid::new_v4());
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("legacy.jsonl");
    let (good, short) = ("xoxb-123456789012-abcdefghijklmnopqrstuvwx", "abc-secret");
    std::fs::write(
        &file,
        format!(
            "{{\"name\": \"legacy\", \"key\": \"{good}\"}}\n\n{{\"name\": \"short\", \"key\": \"{short}\"}}\nnot json {good}\n"
        ),
    )
    .unwrap();

    let (code, out, err) = client(&server, &token, &["keys", "import", file.to_str().unwrap()]);
    assert_eq!(code, 1, "a failed line fails the command: {err}");
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].starts_with("line 1: imported "), "{out}");
    assert!(
        lines[1].starts_with("line 3: failed: key: A key needs at least 20 characters"),
        "{out}"
    );
    assert!(lines[2].starts_with("line 4: failed: not JSON"), "{out}");
    assert_eq!(lines[3], "imported 1, failed 2 (of 3 lines)");
    assert!(err.contains("2 of 3 lines were not imported"), "{err}");
    for secret in [good, short] {
        assert!(!out.contains(secret) && !err.contains(secret), "{secret} printed");
    }
    let (code, out, _) = client(&server, &token, &["verify", good]);
    assert_eq!(code, 0, "{out}");
    assert!(out.starts_with("VALID: legacy"), "{out}");
    let (code, out, err) = client(&server, &token, &["verify", good, "--permissions", "billing.write"]);
    assert_eq!((code, err.as_str()), (1, ""), "{out}");
    assert!(out.starts_with("INSUFFICIENT_PERMISSIONS: the key has "), "{out}");
    assert!(out.trim_end().ends_with("; asked billing.write"), "{out}");

    std::fs::write(
        &file,
        format!(
            "{{\"name\": \"by hash\", \"hash\": {{\"algorithm\": \"sha256\", \"value\": \"{}\"}}}}\n",
            "ab".repeat(32)
        ),
    )
    .unwrap();
    let (code, out, err) = client(&server, &token, &["keys", "import", "--json", file.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let results: Vec<serde_json::Value> = out.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(results[0]["line"], 1);
    assert!(results[0]["id"].is_string());
    assert_eq!(results[1], serde_json::json!({"imported": 1, "failed": 0}));
}

#[test]
fn keys_update_changes_every_field_and_clears_each_on_request() {
    let server = server();
    let token = dev_token(Uuid::new_v4());
    let token = token.as_str();
    let (_, out, _) = client(&server, token, &["keys", "create", "--name", "plain", "--json"]);
    let id = serde_json::from_str::<serde_json::Value>(&out).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();

    let (code, out, err) = client(
        &server,
        token,
        &[
            "keys",
            "update",
            &id,
            "--description",
            "for the invoicing job",
            "--permission",
            "billing.read",
            "--permission",
            "billing.write",
            "--owner",
            "cus_42",
            "--meta",
            r#"{"tier": 2}"#,
            "--ratelimit",
            "requests=5/1s",
            "--credits",
            "50",
            "--refill",
            "monthly:50",
            "--json",
        ],
    );
    assert_eq!(code, 0, "{err}");
    let key: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(key["name"], "plain", "what is not given stays");
    assert_eq!(key["description"], "for the invoicing job");
    assert_eq!(key["permissions"], serde_json::json!(["billing.read", "billing.write"]));
    assert_eq!(key["owner_id"], "cus_42");
    assert_eq!(key["meta"], serde_json::json!({"tier": 2}));
    assert_eq!(key["ratelimits"][0]["duration_ms"], 1000);
    assert_eq!(key["credits"]["remaining"], 50);
    assert_eq!(key["credits"]["refill"]["interval"], "monthly");

    let (code, out, err) = client(
        &server,
        token,
        &[
            "keys",
            "update",
            &id,
            "--clear-description",
            "--clear-permissions",
            "--clear-owner",
            "--clear-meta",
            "--clear-ratelimits",
            "--unlimited",
            "--json",
        ],
    );
    assert_eq!(code, 0, "{err}");
    let key: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(key["description"], serde_json::Value::Null);
    assert_eq!(key["permissions"], serde_json::json!([]));
    assert_eq!(key["owner_id"], serde_json::Value::Null);
    assert_eq!(key["meta"], serde_json::Value::Null);
    assert_eq!(key["ratelimits"], serde_json::json!([]));
    assert_eq!(key["credits"], serde_json::Value::Null);

    // Usage errors say what is wrong before anything is sent.
    let (code, _, err) = client(&server, token, &["keys", "update", &id]);
    assert_eq!(code, 2);
    assert!(err.contains("nothing to change"), "{err}");
    let (code, _, err) = client(
        &server,
        token,
        &["keys", "update", &id, "--owner", "a", "--clear-owner"],
    );
    assert_eq!(code, 2);
    assert!(
        err.contains("--clear-owner") && err.contains("cannot be used with"),
        "{err}"
    );
    let (code, _, err) = client(
        &server,
        token,
        &["keys", "update", &id, "--credits", "5", "--unlimited"],
    );
    assert_eq!(code, 2, "{err}");
}

#[test]
fn credits_are_read_and_changed_once_per_idempotency_key() {
    let server = server();
    let token = dev_token(Uuid::new_v4());
    let token = token.as_str();
    let (_, out, _) = client(
        &server,
        token,
        &["keys", "create", "--name", "metered", "--credits", "10", "--json"],
    );
    let id = serde_json::from_str::<serde_json::Value>(&out).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();

    let (code, out, _) = client(&server, token, &["credits", "get", &id]);
    assert_eq!(code, 0);
    assert!(
        out.starts_with("REMAINING") && out.lines().nth(1).unwrap().starts_with("10 "),
        "{out}"
    );
    for _ in 0..2 {
        // A retried top-up is applied once.
        let (code, out, err) = client(
            &server,
            token,
            &[
                "credits",
                "increment",
                &id,
                "90",
                "--idempotency-key",
                "invoice-7",
                "--json",
            ],
        );
        assert_eq!(code, 0, "{err}");
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&out).unwrap()["remaining"],
            100
        );
    }
    let (code, out, _) = client(&server, token, &["credits", "decrement", &id, "30", "--json"]);
    assert_eq!(code, 0);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&out).unwrap()["remaining"],
        70
    );
    let (code, out, _) = client(&server, token, &["credits", "set", &id, "5"]);
    assert_eq!(code, 0);
    assert!(out.lines().nth(1).unwrap().starts_with("5 "), "{out}");

    let (code, out, err) = client(&server, token, &["credits", "decrement", &id, "6"]);
    assert_eq!((code, out.as_str()), (1, ""));
    assert!(err.contains("(409 "), "below 0 is the API's refusal: {err}");
    let (code, _, err) = client(&server, token, &["credits", "set", &id, "-1"]);
    assert_eq!(code, 2, "{err}");

    let (_, out, _) = client(&server, token, &["keys", "create", "--name", "free", "--json"]);
    let free = serde_json::from_str::<serde_json::Value>(&out).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (code, out, _) = client(&server, token, &["credits", "get", &free]);
    assert_eq!((code, out.trim()), (0, "unlimited"));
}

/// An endpoint that answers every request with 503 and counts them.
#[test]
fn usage_totals_verifications_by_outcome_and_tag_with_a_bar_each() {
    let server = server_with(&[
        ("KEYMINT_VERIFY__USAGE_FLUSH_SECONDS", "1"),
        ("KEYMINT_ANALYTICS__FLUSH_SECONDS", "1"),
    ]);
    let token = dev_token(Uuid::new_v4());
    let token = token.as_str();
    let (_, out, _) = client(
        &server,
        token,
        &["keys", "create", "--name", "counted", "--permission", "read", "--json"],
    );
    let created: serde_json::Value = serde_json::from_str(&out).unwrap();
    let key = created["private_key"].as_str().unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let http = reqwest::Client::new();
    let verify = |body: serde_json::Value| {
        runtime.block_on(async {
            http.post(format!("{}/api/v2/api-keys/verify", server.url))
                .json(&body)
                .send()
                .await
                .unwrap()
                .error_for_status()
                .unwrap();
        })
    };
    for _ in 0..3 {
        verify(serde_json::json!({"key": key, "tags": ["path=/a"]}));
    }
    verify(serde_json::json!({"key": key, "permissions": "write"}));

    // Counts are written by the usage flusher, every second here.
    let mut out = String::new();
    for _ in 0..50 {
        let (code, text, err) = client(&server, token, &["usage"]);
        assert_eq!(code, 0, "{err}");
        out = text;
        if out.contains("4 verifications") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let lines: Vec<&str> = out.lines().collect();
    assert!(
        lines[0].starts_with("OUTCOME") && lines[0].contains("VERIFICATIONS"),
        "{out}"
    );
    assert!(
        lines[1].starts_with("VALID ") && lines[1].ends_with(&"█".repeat(30)),
        "{out}"
    );
    assert!(
        lines[2].starts_with("INSUFFICIENT_PERMISSIONS") && lines[2].ends_with(&"█".repeat(10)),
        "{out}"
    );
    assert!(lines[3].starts_with("4 verifications from "), "{out}");

    let (code, out, _) = client(&server, token, &["usage", "--by", "tag", "--since", "7d"]);
    assert_eq!(code, 0);
    assert!(out.contains("path=/a") && out.contains("(untagged)"), "{out}");
    let (code, out, _) = client(&server, token, &["usage", "--tag", "path=/a", "--json"]);
    assert_eq!(code, 0);
    let answer: serde_json::Value = serde_json::from_str(&out).unwrap();
    let counted: u64 = answer["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| row["count"].as_u64().unwrap())
        .sum();
    assert_eq!(counted, 3);
    let (code, _, err) = client(&server, token, &["usage", "--since", "3w"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("m, h or d"), "{err}");
}

fn failing_endpoint() -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let seen = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
            let mut buffer = [0u8; 16384];
            let _ = stream.read(&mut buffer);
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let _ =
                stream.write_all(b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
        }
    });
    (url, seen)
}

#[test]
fn webhooks_are_managed_and_their_deliveries_shown_and_retried() {
    let server = server_with(&[
        ("KEYMINT_WEBHOOKS__ALLOW_HTTP", "true"),
        ("KEYMINT_WEBHOOKS__ALLOW_PRIVATE_TARGETS", "true"),
        ("KEYMINT_WEBHOOKS__POLL_INTERVAL_MS", "100"),
        ("KEYMINT_WEBHOOKS__BACKOFF_BASE_SECONDS", "3600"),
    ]);
    let token = dev_token(Uuid::new_v4());
    let token = token.as_str();
    let (url, seen) = failing_endpoint();

    let (code, out, err) = client(
        &server,
        token,
        &["webhooks", "create", "--endpoint", &url, "--event-type", "key.revoked"],
    );
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("shown once"), "{err}");
    let secret = out
        .lines()
        .find_map(|line| line.strip_prefix("secret "))
        .unwrap()
        .trim();
    assert!(secret.starts_with("whsec_"), "{out}");
    assert!(!err.contains(secret), "the secret is on stdout only");
    let (_, listed, _) = client(&server, token, &["webhooks", "list", "--json"]);
    let listed: serde_json::Value = serde_json::from_str(&listed).unwrap();
    let id = listed[0]["id"].as_str().unwrap().to_owned();
    assert!(listed[0].get("secret").is_none(), "reads never hold the secret");
    let (code, out, _) = client(&server, token, &["webhooks", "list"]);
    assert_eq!(code, 0);
    assert!(
        out.starts_with("ID") && out.contains(&id) && out.contains("key.revoked"),
        "{out}"
    );

    let (code, out, err) = client(
        &server,
        token,
        &[
            "webhooks",
            "update",
            &id,
            "--event-type",
            "key.revoked",
            "--event-type",
            "key.leaked",
            "--json",
        ],
    );
    assert_eq!(code, 0, "{err}");
    let updated: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(updated["event_types"], serde_json::json!(["key.revoked", "key.leaked"]));
    let (code, _, err) = client(
        &server,
        token,
        &["webhooks", "update", &id, "--event-type", "key.viewed"],
    );
    assert_eq!(code, 1);
    assert!(
        err.contains("event_types") && err.contains("key.revoked"),
        "names the valid types: {err}"
    );

    let (_, out, _) = client(&server, token, &["keys", "create", "--name", "doomed", "--json"]);
    let key_id = serde_json::from_str::<serde_json::Value>(&out).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    client(&server, token, &["keys", "revoke", &key_id]);
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let deliveries = loop {
        let (_, out, _) = client(&server, token, &["webhooks", "deliveries", &id, "--json"]);
        let deliveries: serde_json::Value = serde_json::from_str(&out).unwrap();
        if deliveries[0]["attempts"].as_array().is_some_and(|a| !a.is_empty()) {
            break deliveries;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no attempt was made: {deliveries}"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    let delivery = deliveries[0]["id"].as_str().unwrap().to_owned();
    let (code, out, _) = client(&server, token, &["webhooks", "deliveries", &id]);
    assert_eq!(code, 0);
    let row = out.lines().nth(1).unwrap();
    for expected in [delivery.as_str(), "key.revoked", key_id.as_str(), "HTTP 503"] {
        assert!(row.contains(expected), "{expected} in {out}");
    }

    let before = seen.load(std::sync::atomic::Ordering::SeqCst);
    let (code, out, err) = client(&server, token, &["webhooks", "retry", &id, &delivery]);
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with(&format!("queued {delivery} again")), "{out}");
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while seen.load(std::sync::atomic::Ordering::SeqCst) == before {
        assert!(std::time::Instant::now() < deadline, "the retry was never sent");
        std::thread::sleep(Duration::from_millis(100));
    }

    let (code, out, err) = client(&server, token, &["webhooks", "rotate-secret", &id, "--json"]);
    assert_eq!(code, 0, "{err}");
    let rotated: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert!(rotated["secret"].as_str().unwrap().starts_with("whsec_"));
    assert_ne!(rotated["secret"], secret);
    let (code, out, _) = client(&server, token, &["webhooks", "update", &id, "--enabled", "false"]);
    assert_eq!(code, 0);
    assert!(
        out.lines()
            .any(|line| line.starts_with("enabled") && line.ends_with("false")),
        "{out}"
    );
    let (code, out, _) = client(&server, token, &["webhooks", "delete", &id]);
    assert_eq!((code, out.trim().to_owned()), (0, format!("deleted {id}")));
    let (code, _, err) = client(&server, token, &["webhooks", "get", &id]);
    assert_eq!(code, 1);
    assert!(err.contains("(404 "), "{err}");
    let (code, _, err) = client(&server, token, &["webhooks", "update", &id]);
    assert_eq!(code, 2);
    assert!(err.contains("nothing to change"), "{err}");
}

#[test]
fn health_answers_for_a_running_server_and_fails_for_none() {
    let server = server();
    let (code, out, err) = client(&server, "", &["health"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.trim(), format!("{}/healthz: ok", server.url));
    let (code, out, _) = client(&server, "", &["health", "--ready"]);
    assert_eq!((code, out.trim().to_owned()), (0, format!("{}/readyz: ok", server.url)));

    let none = run(&["health", "--url", "http://127.0.0.1:9"], &[]);
    assert_eq!(none.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&none.stderr).contains("cannot reach http://127.0.0.1:9"));

    // With no URL, it asks where this machine's configuration listens.
    let address = server.url.trim_start_matches("http://");
    let port = address.rsplit_once(':').unwrap().1;
    let configured = run(&["health"], &[("KEYMINT_SERVER__LISTEN", &format!("0.0.0.0:{port}"))]);
    assert_eq!(configured.status.code(), Some(0), "{configured:?}");
    assert_eq!(
        String::from_utf8_lossy(&configured.stdout).trim(),
        format!("http://127.0.0.1:{port}/healthz: ok")
    );
}
