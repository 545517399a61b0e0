//! Several real Keymint processes on one PostgreSQL database: a key created on
//! one verifies on the other, and a change on one reaches the other's cache
//! within a second.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::collections::HashSet;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use serde_json::{json, Value};
use uuid::Uuid;

struct Process {
    child: support::process::Reaped,
    base: String,
}

fn start(url: &str) -> Process {
    start_with(url, &[])
}

fn start_with(url: &str, extra: &[(&str, &str)]) -> Process {
    let dir = std::env::temp_dir();
    let child = Command::new(env!("CARGO_BIN_EXE_keymint"))
        .current_dir(dir)
        .env_clear()
        .envs([
            ("KEYMINT_SERVER__LISTEN", "127.0.0.1:0"),
            ("KEYMINT_DATABASE__URL", url),
            ("KEYMINT_HASHING__MEMORY_KIB", "64"),
            ("KEYMINT_HASHING__ITERATIONS", "1"),
            ("KEYMINT_KEYS__MAX_ACTIVE_PER_ORG", "10000"),
            ("KEYMINT_ANALYTICS__FLUSH_SECONDS", "1"),
        ])
        .envs(extra.iter().copied())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    // Owned by a Process from here, so it is killed and reaped on every path.
    let mut process = Process {
        child: support::process::Reaped(child),
        base: String::new(),
    };
    let lines = support::stdout::lines_of(process.child.stdout.take().unwrap());
    process.base = format!("http://{}", support::stdout::listening_address(&lines));
    process
}

fn token(org: Uuid) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_keymint"))
        .args(["dev-token", "--org", &org.to_string()])
        .env_clear()
        .current_dir(std::env::temp_dir())
        .output()
        .unwrap();
    String::from_utf8(output.stdout).unwrap().trim().to_owned()
}

async fn verify(client: &reqwest::Client, process: &Process, key: &str) -> String {
    let verdict: Value = client
        .post(format!("{}/api/v2/api-keys/verify", process.base))
        .json(&json!({ "key": key }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    verdict["code"].as_str().unwrap().to_owned()
}

/// Polls `process` until `key` verifies as `code`; returns how long it took.
async fn until(client: &reqwest::Client, process: &Process, key: &str, code: &str) -> Duration {
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(5) {
        if verify(client, process, key).await == code {
            return started.elapsed();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("{key:.12}… never became {code}");
}

#[tokio::test]
#[ignore = "needs PostgreSQL: set KEYMINT_TEST_POSTGRES_URL"]
async fn changes_on_one_process_reach_the_other_within_a_second() {
    let url = support::postgres_test_database();
    let (a, b) = (start(&url), start(&url));
    let client = reqwest::Client::new();
    let org = Uuid::new_v4();
    let bearer = token(org);
    let create = |process: &Process| {
        client
            .post(format!("{}/api/v2/api-keys", process.base))
            .bearer_auth(&bearer)
            .json(&json!({"name": "shared"}))
            .send()
    };

    let created: Value = create(&a).await.unwrap().json().await.unwrap();
    let key = created["private_key"].as_str().unwrap().to_owned();
    let id = created["id"].as_str().unwrap().to_owned();
    assert_eq!(verify(&client, &b, &key).await, "VALID", "created on A, verified on B");
    assert_eq!(verify(&client, &b, &key).await, "VALID", "now cached on B");

    let revoked = client
        .put(format!("{}/api/v2/api-keys/{id}/revoke", a.base))
        .bearer_auth(&bearer)
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status().as_u16(), 200);
    let took = until(&client, &b, &key, "REVOKED").await;
    assert!(
        took < Duration::from_secs(1),
        "B refused the revoked key after {took:?}"
    );

    let second: Value = create(&b).await.unwrap().json().await.unwrap();
    let second_key = second["private_key"].as_str().unwrap().to_owned();
    assert_eq!(verify(&client, &a, &second_key).await, "VALID");
    let rotated: Value = client
        .post(format!(
            "{}/api/v2/api-keys/{}/rotate",
            b.base,
            second["id"].as_str().unwrap()
        ))
        .bearer_auth(&bearer)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        until(&client, &a, &second_key, "NOT_FOUND").await < Duration::from_secs(1),
        "rotation reached A"
    );
    assert_eq!(
        verify(&client, &a, rotated["private_key"].as_str().unwrap()).await,
        "VALID"
    );

    let deleted = client
        .delete(format!("{}/api/v2/api-keys/{}", b.base, second["id"].as_str().unwrap()))
        .bearer_auth(&bearer)
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status().as_u16(), 204);
    assert!(until(&client, &a, rotated["private_key"].as_str().unwrap(), "NOT_FOUND").await < Duration::from_secs(1));

    drop((a, b));
    support::drop_test_database(&url);
}

#[tokio::test]
#[ignore = "needs PostgreSQL: set KEYMINT_TEST_POSTGRES_URL"]
async fn two_hundred_creates_and_ten_thousand_verifications_across_two_processes() {
    let url = support::postgres_test_database();
    let processes = [start(&url), start(&url)];
    let client = reqwest::Client::new();
    let org = Uuid::new_v4();
    let bearer = token(org);

    let creates = join_all((0..200).map(|i| {
        let process = &processes[i % 2];
        client
            .post(format!("{}/api/v2/api-keys", process.base))
            .bearer_auth(&bearer)
            .json(&json!({ "name": format!("load-{i}") }))
            .send()
    }))
    .await;
    let mut keys = Vec::new();
    let (mut ids, mut secrets) = (HashSet::new(), HashSet::new());
    for response in creates {
        let response = response.unwrap();
        assert_eq!(response.status().as_u16(), 201);
        let body: Value = response.json().await.unwrap();
        ids.insert(body["id"].as_str().unwrap().to_owned());
        secrets.insert(body["private_key"].as_str().unwrap().to_owned());
        keys.push(body["private_key"].as_str().unwrap().to_owned());
    }
    assert_eq!((ids.len(), secrets.len()), (200, 200), "unique ids and keys");

    for batch in 0..50 {
        let verdicts = join_all((0..200).map(|i| verify(&client, &processes[(i + batch) % 2], &keys[i]))).await;
        assert!(
            verdicts.iter().all(|code| code == "VALID"),
            "batch {batch}: {verdicts:?}"
        );
    }

    let listed: Vec<Value> = {
        let mut all = Vec::new();
        let mut next = Some(format!("{}/api/v2/api-keys?limit=100", processes[0].base));
        while let Some(url) = next.take() {
            let response = client.get(&url).bearer_auth(&bearer).send().await.unwrap();
            next = response.headers().get("link").map(|l| {
                let target = l
                    .to_str()
                    .unwrap()
                    .trim_start_matches('<')
                    .split('>')
                    .next()
                    .unwrap()
                    .to_owned();
                format!("{}{target}", processes[0].base)
            });
            all.extend(response.json::<Vec<Value>>().await.unwrap());
        }
        all
    };
    assert_eq!(listed.len(), 200, "the row count matches exactly");

    drop(processes);
    support::drop_test_database(&url);
}

#[tokio::test]
#[ignore = "needs PostgreSQL: set KEYMINT_TEST_POSTGRES_URL"]
async fn a_revocation_whose_notification_is_lost_still_reaches_the_other_process_within_the_ttl() {
    let url = support::postgres_test_database();
    let a = start(&url);
    let b = start_with(&url, &[("KEYMINT_VERIFY__CACHE_TTL_SECONDS", "2")]);
    let client = reqwest::Client::new();
    let bearer = token(Uuid::new_v4());
    let created: Value = client
        .post(format!("{}/api/v2/api-keys", a.base))
        .bearer_auth(&bearer)
        .json(&json!({"name": "lossy"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let key = created["private_key"].as_str().unwrap().to_owned();
    assert_eq!(verify(&client, &b, &key).await, "VALID");

    // Cut every listening connection, then revoke while they are down: the
    // notification goes nowhere.
    let database = url.rsplit('/').next().unwrap().split('?').next().unwrap().to_owned();
    let admin = keymint_infrastructure::sql::connect(&url.parse().unwrap(), &Default::default())
        .await
        .unwrap();
    use sea_orm::{ConnectionTrait, Statement};
    let cut = admin
        .write
        .query_one(Statement::from_string(
            admin.write.get_database_backend(),
            format!(
                "SELECT count(pg_terminate_backend(pid)) AS cut FROM pg_stat_activity \
                 WHERE datname = '{database}' AND query LIKE 'LISTEN%' AND pid <> pg_backend_pid()"
            ),
        ))
        .await
        .unwrap()
        .unwrap()
        .try_get::<i64>("", "cut")
        .unwrap();
    assert_eq!(cut, 2, "both processes' listeners were cut");
    let revoked = client
        .put(format!(
            "{}/api/v2/api-keys/{}/revoke",
            a.base,
            created["id"].as_str().unwrap()
        ))
        .bearer_auth(&bearer)
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status().as_u16(), 200);

    let took = until(&client, &b, &key, "REVOKED").await;
    assert!(
        took <= Duration::from_millis(2500),
        "refused within the 2 s cache TTL: {took:?}"
    );
    admin.close().await;
    drop((a, b));
    support::drop_test_database(&url);
}

/// Sends `total` verifications with `body` from `tasks` tasks spread over
/// every process.
async fn storm(
    client: &reqwest::Client,
    processes: &[Process],
    body: &Value,
    total: usize,
    tasks: usize,
) -> Vec<Value> {
    let bases: Vec<&str> = processes.iter().map(|p| p.base.as_str()).collect();
    support::verify_storm(client, &bases, body, total, tasks).await
}

fn count(answers: &[Value], code: &str) -> usize {
    answers.iter().filter(|a| a["code"] == code).count()
}

#[tokio::test]
#[ignore = "needs PostgreSQL: set KEYMINT_TEST_POSTGRES_URL"]
async fn credits_and_rate_limits_are_exact_across_three_processes() {
    let url = support::postgres_test_database();
    let processes = [start(&url), start(&url), start(&url)];
    let client = reqwest::Client::new();
    let bearer = token(Uuid::new_v4());
    let create = |body: Value| {
        let request = client
            .post(format!("{}/api/v2/api-keys", processes[0].base))
            .bearer_auth(&bearer)
            .json(&body)
            .send();
        async move { request.await.unwrap().json::<Value>().await.unwrap() }
    };

    let credited = create(json!({"name": "credits", "credits": {"remaining": 300}})).await;
    let answers = storm(&client, &processes, &json!({"key": credited["private_key"]}), 960, 48).await;
    assert_eq!(count(&answers, "VALID"), 300, "exactly N grants, never N+1");
    assert_eq!(count(&answers, "USAGE_EXCEEDED"), 660);
    for process in &processes {
        let path = format!("/api/v2/api-keys/{}", credited["id"].as_str().unwrap());
        let read = get(&client, process, &bearer, &path).await;
        assert_eq!(read["credits"]["remaining"], 0);
    }

    // One 30-day window: the run falls inside one unless it crosses a boundary,
    // which counting grants per window allows for.
    let limited = create(json!({
        "name": "limited",
        "ratelimits": [{"name": "monthly", "limit": 100, "duration_ms": 2_592_000_000_u64}],
    }))
    .await;
    let answers = storm(&client, &processes, &json!({"key": limited["private_key"]}), 480, 48).await;
    let mut per_window = std::collections::HashMap::<String, usize>::new();
    for answer in answers.iter().filter(|a| a["code"] == "VALID") {
        *per_window
            .entry(answer["ratelimits"][0]["reset"].as_str().unwrap().to_owned())
            .or_default() += 1;
    }
    assert!(per_window.values().all(|granted| *granted <= 100), "{per_window:?}");
    if per_window.len() == 1 {
        assert_eq!(
            count(&answers, "VALID"),
            100,
            "all of L is granted when demand exceeds it"
        );
    }
    assert_eq!(count(&answers, "VALID") + count(&answers, "RATE_LIMITED"), 480);

    // Each process counted its share and wrote it with its own flushes: the
    // organisation's analytics add up to every verification, by outcome.
    let expected = [
        ("RATE_LIMITED", count(&answers, "RATE_LIMITED") as u64),
        ("USAGE_EXCEEDED", 660),
        ("VALID", 300 + count(&answers, "VALID") as u64),
    ];
    let path = "/api/v2/analytics/verifications?granularity=minute&group_by=outcome";
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let answer = get(&client, &processes[2], &bearer, path).await;
        let mut counted = std::collections::BTreeMap::<String, u64>::new();
        for row in answer["data"].as_array().unwrap() {
            *counted.entry(row["outcome"].as_str().unwrap().to_owned()).or_default() += row["count"].as_u64().unwrap();
        }
        let counted: Vec<(&str, u64)> = counted.iter().map(|(k, v)| (k.as_str(), *v)).collect();
        if counted.iter().map(|(_, n)| n).sum::<u64>() >= 1440 {
            let mut expected: Vec<(&str, u64)> = expected.into_iter().filter(|(_, n)| *n > 0).collect();
            expected.sort();
            assert_eq!(counted, expected, "three processes' counts, added exactly");
            break;
        }
        assert!(Instant::now() < deadline, "the counts never reached 1440: {counted:?}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }

    drop(processes);
    support::drop_test_database(&url);
}

/// What every webhook test process sets: deliveries to 127.0.0.1 over http,
/// found within 100 ms.
const WEBHOOK_TEST_SETTINGS: [(&str, &str); 3] = [
    ("KEYMINT_WEBHOOKS__ALLOW_HTTP", "true"),
    ("KEYMINT_WEBHOOKS__ALLOW_PRIVATE_TARGETS", "true"),
    ("KEYMINT_WEBHOOKS__POLL_INTERVAL_MS", "100"),
];

async fn post(client: &reqwest::Client, process: &Process, bearer: &str, path: &str, body: Value) -> Value {
    let response = client
        .post(format!("{}{path}", process.base))
        .bearer_auth(bearer)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success(), "{path}: {}", response.status());
    response.json().await.unwrap()
}

async fn get(client: &reqwest::Client, process: &Process, bearer: &str, path: &str) -> Value {
    let response = client
        .get(format!("{}{path}", process.base))
        .bearer_auth(bearer)
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success(), "{path}: {}", response.status());
    response.json().await.unwrap()
}

#[tokio::test]
async fn a_delivery_cut_off_by_sigkill_after_its_commit_is_sent_after_restart() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/keymint.db", dir.path().display());
    let mut settings = WEBHOOK_TEST_SETTINGS.to_vec();
    // A lease of 2 · 2 s + 5 s: how long until a dead process's claim lapses.
    settings.push(("KEYMINT_WEBHOOKS__TIMEOUT_SECONDS", "2"));
    let receiver = support::receiver::Receiver::start().await;
    // The first attempt hangs: the event is committed and being delivered
    // when the process dies.
    receiver.delay(Duration::from_secs(60));
    let client = reqwest::Client::new();
    let bearer = token(Uuid::new_v4());

    let mut first = start_with(&url, &settings);
    let webhook = post(
        &client,
        &first,
        &bearer,
        "/api/v2/webhooks",
        json!({"url": receiver.url}),
    )
    .await;
    let key = post(&client, &first, &bearer, "/api/v2/api-keys", json!({"name": "durable"})).await;
    let cut_off = receiver.wait_for(1, Duration::from_secs(10)).await;
    first.child.kill().unwrap();
    first.child.wait().unwrap();
    receiver.delay(Duration::ZERO);

    let second = start_with(&url, &settings);
    let received = receiver.wait_for(2, Duration::from_secs(30)).await;
    assert_eq!(received[1].id, cut_off[0].id, "the same webhook-id, for de-duplication");
    assert_eq!(received[1].body, cut_off[0].body, "the same event");
    assert_eq!(received[1].json()["data"]["id"], key["id"]);
    assert!(support::receiver::signature_is_valid(
        webhook["secret"].as_str().unwrap(),
        &received[1]
    ));
    // The attempt is recorded after the receiver answered: under load, a
    // moment after the receiver saw it.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let path = format!("/api/v2/webhooks/{}/deliveries", webhook["id"].as_str().unwrap());
        let deliveries = get(&client, &second, &bearer, &path).await;
        if deliveries[0]["status"] == "delivered" {
            break;
        }
        assert!(Instant::now() < deadline, "{deliveries}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
#[ignore = "needs PostgreSQL: set KEYMINT_TEST_POSTGRES_URL"]
async fn two_processes_deliver_each_event_once() {
    let url = support::postgres_test_database();
    let processes = [
        start_with(&url, &WEBHOOK_TEST_SETTINGS),
        start_with(&url, &WEBHOOK_TEST_SETTINGS),
    ];
    let receiver = support::receiver::Receiver::start().await;
    let client = reqwest::Client::new();
    let bearer = token(Uuid::new_v4());
    let webhook = post(
        &client,
        &processes[0],
        &bearer,
        "/api/v2/webhooks",
        json!({"url": receiver.url, "event_types": ["key.created"]}),
    )
    .await;

    let creates = (0..60).map(|i| {
        post(
            &client,
            &processes[i % 2],
            &bearer,
            "/api/v2/api-keys",
            json!({"name": format!("key {i}")}),
        )
    });
    let created: HashSet<String> = join_all(creates)
        .await
        .iter()
        .map(|key| key["id"].as_str().unwrap().to_owned())
        .collect();
    let received = receiver.wait_for(60, Duration::from_secs(30)).await;
    // Both processes poll the same queue; give a double delivery time to show.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let received_now = receiver.received();
    assert_eq!(received_now.len(), 60, "each event once, not once per process");
    let ids: HashSet<&str> = received.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids.len(), 60);
    let keys: HashSet<String> = received
        .iter()
        .map(|r| r.json()["data"]["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(keys, created);
    assert!(received
        .iter()
        .all(|r| support::receiver::signature_is_valid(webhook["secret"].as_str().unwrap(), r)));

    drop(processes);
    support::drop_test_database(&url);
}

/// Two processes share the senders fairly: an organisation whose endpoints
/// hang holds at most its share across both (the in-flight counts are read
/// from the database), and another organisation's delivery goes at once from
/// whichever process claims it.
#[tokio::test]
#[ignore = "needs PostgreSQL: set KEYMINT_TEST_POSTGRES_URL"]
async fn hanging_endpoints_of_one_organisation_delay_no_other_across_two_processes() {
    let url = support::postgres_test_database();
    let mut settings = WEBHOOK_TEST_SETTINGS.to_vec();
    settings.push(("KEYMINT_WEBHOOKS__TIMEOUT_SECONDS", "30"));
    let processes = [start_with(&url, &settings), start_with(&url, &settings)];
    let (hanging, healthy) = (
        support::receiver::Receiver::start().await,
        support::receiver::Receiver::start().await,
    );
    hanging.delay(Duration::from_secs(120));
    let client = reqwest::Client::new();
    let busy = token(Uuid::new_v4());
    for i in 0..20 {
        post(
            &client,
            &processes[i % 2],
            &busy,
            "/api/v2/webhooks",
            json!({"url": hanging.url, "event_types": ["key.created"]}),
        )
        .await;
    }
    let creates = (0..40).map(|i| {
        post(
            &client,
            &processes[i % 2],
            &busy,
            "/api/v2/api-keys",
            json!({"name": format!("busy {i}")}),
        )
    });
    join_all(creates).await;
    hanging.wait_for(16, Duration::from_secs(20)).await;

    let quiet = token(Uuid::new_v4());
    post(
        &client,
        &processes[1],
        &quiet,
        "/api/v2/webhooks",
        json!({"url": healthy.url, "event_types": ["key.created"]}),
    )
    .await;
    let created = Instant::now();
    post(
        &client,
        &processes[0],
        &quiet,
        "/api/v2/api-keys",
        json!({"name": "quiet"}),
    )
    .await;
    let received = healthy.wait_for(1, Duration::from_secs(2)).await;
    eprintln!(
        "the quiet organisation's delivery arrived after {:?}",
        received[0].at - created
    );
    // Both processes poll; give one that ignored the caps time to show it.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let held = hanging.received().len();
    assert!(
        held <= 20,
        "its share (16), or one per endpoint (20), across both processes: {held}"
    );

    drop(processes);
    support::drop_test_database(&url);
}

/// A key imported through one process (found by its digest) verifies there at
/// once and in another process as soon as that one's digest filter has seen
/// the import (`verify.digest_refresh_seconds`, 1 s).
async fn an_imported_key_verifies_in_every_process_within_the_refresh(url: &str) {
    let (a, b) = (start(url), start(url));
    let client = reqwest::Client::new();
    let bearer = token(Uuid::new_v4());
    let key = "xoxb-123456789012-imported-across-processes";
    assert_eq!(verify(&client, &b, key).await, "NOT_FOUND", "not imported yet");
    let answer = post(
        &client,
        &a,
        &bearer,
        "/api/v2/api-keys/import",
        json!({"keys": [{"name": "shared legacy", "key": key}]}),
    )
    .await;
    assert_eq!(answer["imported"].as_array().unwrap().len(), 1, "{answer}");
    assert_eq!(
        verify(&client, &a, key).await,
        "VALID",
        "the importing process knows at once"
    );
    // Polled slowly: each NOT_FOUND spends this client's failure budget for
    // the key (10 a minute), as any miss does.
    let started = Instant::now();
    loop {
        tokio::time::sleep(Duration::from_millis(400)).await;
        let code = verify(&client, &b, key).await;
        if code == "VALID" {
            break;
        }
        assert_eq!(code, "NOT_FOUND");
        assert!(
            started.elapsed() < Duration::from_millis(2500),
            "the other process took too long"
        );
    }
}

#[tokio::test]
async fn sqlite_an_imported_key_verifies_in_every_process_within_the_refresh() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/shared.db", dir.path().display());
    an_imported_key_verifies_in_every_process_within_the_refresh(&url).await;
}

#[tokio::test]
#[ignore = "needs PostgreSQL: set KEYMINT_TEST_POSTGRES_URL"]
async fn postgres_an_imported_key_verifies_in_every_process_within_the_refresh() {
    let url = support::postgres_test_database();
    an_imported_key_verifies_in_every_process_within_the_refresh(&url).await;
    support::drop_test_database(&url);
}
