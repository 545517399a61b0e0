//! Creates keys in a running Keymint as fast as it takes them, spread over
//! organisations as a service with many customers holds them, and writes each
//! private key to a file (one per line) for the verification benchmarks. Prints
//! the create rate. Tokens are signed with `KEYMINT_AUTH__HS256_SECRET` (or the
//! public development secret), as `keymint dev-token` signs them.
//!
//! `cargo run --release --example fill_keys -- URL KEYS ORGS CONCURRENCY OUT_FILE`

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::Write as _;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use keymint::Settings;
use keymint_infrastructure::{unix_now, DevTokenRequest};

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, url, keys, orgs, concurrency, out] = args.as_slice() else {
        panic!("usage: fill_keys URL KEYS ORGS CONCURRENCY OUT_FILE");
    };
    let (keys, orgs, concurrency): (usize, usize, usize) = (
        keys.parse().unwrap(),
        orgs.parse().unwrap(),
        concurrency.parse().unwrap(),
    );
    let settings = Settings::load().expect("settings");
    let tokens: Arc<Vec<String>> = Arc::new(
        (0..orgs)
            .map(|_| {
                DevTokenRequest {
                    org_id: uuid::Uuid::new_v4(),
                    subject: "bench".into(),
                    ttl_seconds: 7200,
                }
                .sign(&settings.hs256(), unix_now())
                .unwrap()
            })
            .collect(),
    );
    let client = reqwest::Client::new();
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (client, tokens, next, url) = (client.clone(), tokens.clone(), next.clone(), url.clone());
        tasks.push(tokio::spawn(async move {
            let mut made = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= keys {
                    return made;
                }
                let response = client
                    .post(format!("{url}/api/v2/api-keys"))
                    .bearer_auth(&tokens[i % tokens.len()])
                    .json(&serde_json::json!({"name": format!("bench {i}")}))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(response.status().as_u16(), 201, "create {i}");
                let body: serde_json::Value = response.json().await.unwrap();
                made.push(body["private_key"].as_str().unwrap().to_owned());
            }
        }));
    }
    let mut file = std::io::BufWriter::new(std::fs::File::create(out).unwrap());
    let mut total = 0;
    for task in tasks {
        for key in task.await.unwrap() {
            writeln!(file, "{key}").unwrap();
            total += 1;
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "created {total} keys in {orgs} organisations in {seconds:.1} s: {:.0} creates/s ({concurrency} concurrent)",
        total as f64 / seconds
    );
}
