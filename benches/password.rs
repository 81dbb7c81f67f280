//! Password hashing cost: one argon2id hash and one verification with the parameters rolegate uses
//! (`idp::local::password`: 64 MiB, 2 passes, 1 lane), on one core. Sign-in throughput on a machine
//! is bounded by cores ÷ verification time; `scripts/load-login` measures it end to end.
//!
//! `cargo bench --bench password`

use criterion::{criterion_group, criterion_main, Criterion};
use rolegate::idp::local::password::{hash_blocking, verify_blocking, Password};
use std::hint::black_box;

fn password(c: &mut Criterion) {
    let mut g = c.benchmark_group("argon2id");
    g.sample_size(20);
    let pw = Password::new("correct horse battery staple");
    g.bench_function("hash", |b| b.iter(|| hash_blocking(black_box(&pw))));
    let hash = hash_blocking(&pw).expect("hash");
    g.bench_function("verify", |b| {
        b.iter(|| verify_blocking(black_box(&hash), black_box(&pw)))
    });
    g.finish();
}

criterion_group!(benches, password);
criterion_main!(benches);
