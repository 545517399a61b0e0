//! How long issuing and checking a key's format costs, without any hashing.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use criterion::{criterion_group, criterion_main, Criterion};
use keymint_domain::{Environment, KeyMaterial, PrivateKey};
use rand_core::OsRng;

fn key_generation(c: &mut Criterion) {
    c.bench_function("generate key material (OsRng)", |b| {
        b.iter(|| KeyMaterial::generate(Environment::Live, &mut OsRng))
    });
    let material = KeyMaterial::generate(Environment::Live, &mut OsRng);
    let presented = material.private_key().expose_secret().to_owned();
    c.bench_function("parse and checksum a private key", |b| {
        b.iter(|| PrivateKey::parse(&presented))
    });
}

criterion_group!(benches, key_generation);
criterion_main!(benches);
