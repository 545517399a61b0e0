//! The cost of one argon2id hash at Keymint's default parameters, on one core
//! and with every core hashing: the argon2 crate's own hashing (fresh memory per
//! hash, the ceiling create throughput is compared with) beside Keymint's worker
//! (memory owned and reused, wiped before it rests).

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::time::{Duration, Instant};

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHasher, SaltString};
use argon2::{Algorithm, Argon2, Version};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use keymint_infrastructure::{Argon2Params, Argon2Worker};

const SECRET: &[u8] = b"sk_live_0123456789abcdef_0123456789abcdefghijklmnopqrstuvwxyzABCDEFG012345";

/// Time per hash with `cores` threads each running `hash` in a loop.
fn parallel(cores: usize, iters: u64, hash: impl Fn() + Sync) -> Duration {
    let per_thread = iters.div_ceil(cores as u64);
    let start = Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..cores {
            scope.spawn(|| {
                for _ in 0..per_thread {
                    hash();
                }
            });
        }
    });
    start
        .elapsed()
        .mul_f64(iters as f64 / (per_thread * cores as u64) as f64)
}

fn argon2_hash(c: &mut Criterion) {
    let params = Argon2Params::default();
    let crate_argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.check().unwrap());
    let crate_hash = || {
        let salt = SaltString::generate(&mut OsRng);
        crate_argon2.hash_password(SECRET, &salt).unwrap();
    };
    let cores = std::thread::available_parallelism().map(usize::from).unwrap_or(1);

    let mut group = c.benchmark_group("argon2id m=19456 t=2 p=1");
    group
        .sample_size(20)
        .measurement_time(Duration::from_secs(15))
        .throughput(Throughput::Elements(1));
    group.bench_function("argon2 crate, one core", |b| b.iter(crate_hash));
    let mut worker = Argon2Worker::new(params).unwrap();
    group.bench_function("keymint worker, one core", |b| b.iter(|| worker.hash(SECRET).unwrap()));
    // Time per hash with every core busy: 1 / this is the machine's raw hash rate.
    group.bench_function(format!("argon2 crate, {cores} cores in parallel"), |b| {
        b.iter_custom(|iters| parallel(cores, iters, crate_hash))
    });
    group.bench_function(format!("keymint worker with a wipe, {cores} cores in parallel"), |b| {
        b.iter_custom(|iters| {
            parallel(cores, iters, || {
                thread_local!(static WORKER: std::cell::RefCell<Option<Argon2Worker>> = const { std::cell::RefCell::new(None) });
                WORKER.with(|cell| {
                    let mut cell = cell.borrow_mut();
                    let worker = cell.get_or_insert_with(|| Argon2Worker::new(params).unwrap());
                    worker.hash(SECRET).unwrap();
                    worker.wipe();
                });
            })
        })
    });
    group.finish();
}

criterion_group!(benches, argon2_hash);
criterion_main!(benches);
