//! The raw argon2id rate of this machine with every core hashing, using the
//! argon2 crate directly (fresh memory per hash, as the crate does by default):
//! the ceiling against which create and cold-verify throughput are compared in
//! the same run (`benches/load/run-memory.sh`).
//!
//! `cargo run --release --example argon2_rate -- SECONDS`

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHasher, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};

fn main() {
    let seconds: u64 = std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(5);
    let cores = std::thread::available_parallelism().map(usize::from).unwrap_or(1);
    // Keymint's defaults: OWASP's m=19 MiB, t=2, p=1.
    let params = Params::new(19_456, 2, 1, None).unwrap();
    let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
    let (done, stop) = (AtomicU64::new(0), AtomicBool::new(false));
    let start = Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..cores {
            scope.spawn(|| {
                while !stop.load(Ordering::Relaxed) {
                    let salt = SaltString::generate(&mut OsRng);
                    argon2.hash_password(b"sk_live_raw_argon2_rate", &salt).unwrap();
                    done.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
        std::thread::sleep(Duration::from_secs(seconds));
        stop.store(true, Ordering::Relaxed);
    });
    let rate = done.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64();
    println!("raw argon2id rate: {rate:.1} hashes/s on {cores} cores");
}
