//! The raw cost of one argon2id hash at Keymint's default parameters, on one core
//! and with every core hashing: the ceiling for create throughput.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use keymint_infrastructure::{Argon2Hasher, Argon2Params};

fn argon2_hash(c: &mut Criterion) {
    let hasher = Argon2Hasher::new(Argon2Params::default()).expect("default parameters are valid");
    let secret = b"sk_live_0123456789abcdef_0123456789abcdefghijklmnopqrstuvwxyzABCDEFG012345";
    let cores = std::thread::available_parallelism().map(usize::from).unwrap_or(1);

    let mut group = c.benchmark_group("argon2id m=19456 t=2 p=1");
    group
        .sample_size(20)
        .measurement_time(Duration::from_secs(15))
        .throughput(Throughput::Elements(1));
    group.bench_function("one hash, one core", |b| b.iter(|| hasher.hash_blocking(secret)));
    // Time per hash with every core busy: 1 / this is the machine's raw hash rate.
    group.bench_function(format!("one hash, {cores} cores in parallel"), |b| {
        b.iter_custom(|iters| {
            let per_thread = iters.div_ceil(cores as u64);
            let start = Instant::now();
            std::thread::scope(|scope| {
                for _ in 0..cores {
                    scope.spawn(|| {
                        for _ in 0..per_thread {
                            let _ = hasher.hash_blocking(secret);
                        }
                    });
                }
            });
            start
                .elapsed()
                .mul_f64(iters as f64 / (per_thread * cores as u64) as f64)
        })
    });
    group.finish();
}

criterion_group!(benches, argon2_hash);
criterion_main!(benches);
