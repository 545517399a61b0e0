//! How fast the analytics queries answer over a month of history: seeds KEYS
//! keys of one organisation verified in every hour of DAYS days through the
//! storage port (`AnalyticsStore::add_counts`, as the usage flusher writes
//! them), then times the queries the API, the console and the CLI make, each
//! ROUNDS times. A database already seeded with the same figures is reused.
//!
//! `cargo run --release --example analytics_query -- DATABASE_URL [KEYS] [DAYS] [ROUNDS]`

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::{Duration as StdDuration, Instant};

use chrono::{DateTime, Duration, Utc};
use keymint_application::{
    Actor, Analytics, AnalyticsQuery, AnalyticsRequest, AnalyticsStore, BucketCount, GroupBy, Principal, Retention,
    RowOrder,
};
use keymint_domain::{Granularity, KeyId, OrgId, OwnerId, Tag, TagSet, VerificationOutcome};
use keymint_infrastructure::sql::{connect, DatabaseUrl, SqlApiKeyRepository};
use keymint_infrastructure::SystemClock;
use keymint_migrations::{Migrator, MigratorTrait};
use uuid::Uuid;

/// Counts handed to storage at once (the flusher hands 500).
const BATCH: usize = 5_000;

fn key(i: usize) -> KeyId {
    KeyId::from_uuid(Uuid::from_u128(0x4b45_5900_0000_0000_0000_0000_0000_0000 + i as u128))
}

/// Key `i`'s verifications in hour `h`: mostly valid, some refused; a
/// quarter untagged, the rest with one or two of a few tags.
fn counts(org: OrgId, i: usize, hour: DateTime<Utc>, h: usize) -> Vec<BucketCount> {
    let tags = match i % 4 {
        0 => TagSet::empty(),
        1 => TagSet::new([Tag::new("region=eu").unwrap()]).unwrap(),
        2 => TagSet::new([Tag::new("region=us").unwrap()]).unwrap(),
        _ => TagSet::new([Tag::new("region=eu").unwrap(), Tag::new("path=/v1/charges").unwrap()]).unwrap(),
    };
    let mut outcomes = vec![(VerificationOutcome::Valid, 1 + ((i + h) % 7) as u64)];
    if (i + h).is_multiple_of(10) {
        outcomes.push((VerificationOutcome::RateLimited, 1));
    }
    outcomes
        .into_iter()
        .map(|(outcome, count)| BucketCount {
            org_id: org,
            key_id: key(i),
            owner_id: Some(OwnerId::new(format!("customer-{}", i % 1_000)).unwrap()),
            outcome,
            minute: hour + Duration::minutes((i % 60) as i64),
            tags: tags.clone(),
            count,
            spent_credits: count,
        })
        .collect()
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let url: DatabaseUrl = args
        .get(1)
        .expect("usage: analytics_query DATABASE_URL [KEYS] [DAYS] [ROUNDS]")
        .parse()
        .unwrap();
    let keys: usize = args.get(2).map_or(10_000, |n| n.parse().unwrap());
    let days: i64 = args.get(3).map_or(30, |n| n.parse().unwrap());
    let rounds: usize = args.get(4).map_or(10, |n| n.parse().unwrap());
    let db = connect(&url, &Default::default()).await.unwrap();
    Migrator::up(&db.write, None).await.unwrap();
    let store = SqlApiKeyRepository::new(db);
    let org = OrgId::from_uuid(Uuid::from_u128(0x4b45_5900));
    // Whole hours, ending at the last one: the seeded month is the month
    // before the run, as the console asks for it.
    let to = Granularity::Hour.bucket_of(Utc::now());
    let from = to - Duration::days(days);
    let hours = (days * 24) as usize;

    let mut expected = 0;
    for h in 0..hours {
        for i in 0..keys {
            expected += counts(org, i, from, h).iter().map(|c| c.count).sum::<u64>();
        }
    }
    let mut total = AnalyticsQuery::new(
        org,
        Granularity::Day,
        Granularity::Day.bucket_of(from),
        to + Duration::days(1),
    );
    total.total = true;
    let seeded: u64 = store.query(&total).await.unwrap().iter().map(|r| r.count).sum();
    if seeded == expected {
        println!("reusing the seeded database: {seeded} verifications");
    } else {
        assert_eq!(
            seeded, 0,
            "the database holds other counts ({seeded}): start from an empty one"
        );
        let started = Instant::now();
        let mut batch = Vec::with_capacity(BATCH);
        let mut written = 0usize;
        for h in 0..hours {
            let hour = from + Duration::hours(h as i64);
            for i in 0..keys {
                batch.extend(counts(org, i, hour, h));
                if batch.len() >= BATCH {
                    store.add_counts(&batch).await.unwrap();
                    written += batch.len();
                    batch.clear();
                }
            }
            if h % 24 == 23 {
                println!(
                    "seeded day {} of {days}: {written} buckets in {:.0} s",
                    h / 24 + 1,
                    started.elapsed().as_secs_f64()
                );
            }
        }
        store.add_counts(&batch).await.unwrap();
        written += batch.len();
        println!(
            "seeded {keys} keys x {hours} hours: {written} minute buckets (each also an hour and a day row, per key and per organisation) in {:.0} s",
            started.elapsed().as_secs_f64()
        );
    }

    // Asked as the API, the console and the CLI ask: through the use case,
    // which picks the buckets a total reads.
    let store = Arc::new(store);
    let analytics = Analytics::new(store.clone(), Arc::new(SystemClock));
    let actor = Actor::new(&Principal::new(org, None), None);
    let ask = |days: i64, granularity: Option<Granularity>| AnalyticsRequest {
        from: Some(to - Duration::days(days)),
        to: Some(to),
        granularity,
        ..AnalyticsRequest::default()
    };
    let by = |key_id, outcome, tag| GroupBy {
        key_id,
        outcome,
        tag,
        ..GroupBy::default()
    };
    let top_ten = |days: i64| AnalyticsRequest {
        total: true,
        order: RowOrder::Count,
        limit: Some(10),
        group_by: by(true, false, false),
        ..ask(days, None)
    };
    let ten: Vec<KeyId> = (0..10).map(|i| key(keys - 1 - i)).collect();
    let cases: Vec<(String, AnalyticsRequest)> = vec![
        (
            format!("{days} d by the hour, ungrouped"),
            ask(days, Some(Granularity::Hour)),
        ),
        (
            format!("{days} d by the hour, by outcome (overview chart)"),
            AnalyticsRequest {
                group_by: by(false, true, false),
                ..ask(days, Some(Granularity::Hour))
            },
        ),
        (
            format!("{days} d by the day, by tag"),
            AnalyticsRequest {
                group_by: by(false, false, true),
                ..ask(days, Some(Granularity::Day))
            },
        ),
        (
            format!("{days} d by the hour, one key by outcome (key page)"),
            AnalyticsRequest {
                key_ids: vec![key(keys / 2)],
                group_by: by(false, true, false),
                ..ask(days, Some(Granularity::Hour))
            },
        ),
        (
            format!("{days} d by the day, one owner by outcome"),
            AnalyticsRequest {
                owner_ids: vec![OwnerId::new("customer-7").unwrap()],
                group_by: by(false, true, false),
                ..ask(days, Some(Granularity::Day))
            },
        ),
        ("24 h total per key, top 10 (overview)".to_owned(), top_ten(1)),
        ("7 d total per key, top 10 (overview)".to_owned(), top_ten(7.min(days))),
        (format!("{days} d total per key, top 10 (overview)"), top_ten(days)),
        (
            format!("{days} d total of 10 keys by outcome (overview)"),
            AnalyticsRequest {
                total: true,
                key_ids: ten,
                group_by: by(true, true, false),
                ..ask(days, None)
            },
        ),
    ];

    println!(
        "{:<52} {:>8} {:>8} {:>8} {:>6}",
        "query", "median", "p90", "max", "rows"
    );
    let ms = |d: StdDuration| format!("{:.1} ms", d.as_secs_f64() * 1e3);
    for (name, request) in &cases {
        let mut times: Vec<StdDuration> = Vec::with_capacity(rounds);
        let mut rows = 0;
        for _ in 0..rounds {
            let started = Instant::now();
            rows = analytics
                .verifications(&actor, request.clone())
                .await
                .unwrap()
                .rows
                .len();
            times.push(started.elapsed());
        }
        times.sort();
        println!(
            "{name:<52} {:>8} {:>8} {:>8} {rows:>6}",
            ms(times[times.len() / 2]),
            ms(times[times.len() * 9 / 10]),
            ms(times[times.len() - 1])
        );
    }
    let keys_24h: Vec<KeyId> = (0..100).map(key).collect();
    let mut times = Vec::new();
    for _ in 0..rounds {
        let started = Instant::now();
        analytics.last_day(org, &keys_24h).await.unwrap();
        times.push(started.elapsed());
    }
    times.sort();
    println!(
        "{:<52} {:>8} {:>8} {:>8}",
        "usage_24h of a list page (100 keys)",
        ms(times[times.len() / 2]),
        ms(times[times.len() * 9 / 10]),
        ms(times[times.len() - 1])
    );

    // Retention as the hourly pruning applies it: the first time, the minute
    // rows past 7 days go (23 days of them here); after that, an hour's.
    // SQLite holds its one write lock meanwhile.
    let retention = Retention::default();
    for round in ["first", "next"] {
        let started = Instant::now();
        let deleted = store
            .prune_buckets(&[
                (Granularity::Minute, to - retention.minute),
                (Granularity::Hour, to - retention.hour),
                (Granularity::Day, to - retention.day),
            ])
            .await
            .unwrap();
        println!(
            "{:<52} {:>8} ({deleted} rows deleted)",
            format!("pruning past retention, {round}"),
            ms(started.elapsed())
        );
    }
}
