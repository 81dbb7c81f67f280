//! The cost of recording metrics on the STS hot path, per call, against the two clock reads every
//! timed request pays anyway.
//!
//! `cargo bench --bench metrics`
//!
//! Cases:
//! - `clock only`: `Instant::now()` and `elapsed()`, the floor of any latency histogram;
//! - `sts_request ok` / `sts_request error code`: what `sts::handle` records per request (one
//!   counter and one histogram observation; action and code found by name);
//! - `sts_request off`: the same with `[metrics] enabled = false`;
//! - `session_minted`: the active-session ring, per set of credentials minted;
//! - `store_op`: one store operation's histogram;
//! - `sts_request, 2 threads`: two threads recording the same series at once (contention on the
//!   shared atomics), time per call per thread.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use rolegate::metrics::{Metrics, StoreOp};

fn bench(c: &mut Criterion) {
    let m = Metrics::new().expect("metrics");
    let off = Metrics::with_recording(false).expect("metrics");
    let d = Duration::from_micros(900);
    let mut g = c.benchmark_group("metrics");
    g.bench_function("clock only", |b| {
        b.iter(|| {
            let t = Instant::now();
            black_box(t.elapsed())
        })
    });
    g.bench_function("sts_request ok", |b| {
        b.iter(|| m.sts_request(black_box("AssumeRoleWithWebIdentity"), None, black_box(d)))
    });
    g.bench_function("sts_request error code", |b| {
        b.iter(|| {
            m.sts_request(
                black_box("GetCallerIdentity"),
                Some(black_box("SignatureDoesNotMatch")),
                black_box(d),
            )
        })
    });
    g.bench_function("sts_request off", |b| {
        b.iter(|| off.sts_request(black_box("AssumeRoleWithWebIdentity"), None, black_box(d)))
    });
    let mut now = 1_800_000_000i64;
    g.bench_function("session_minted", |b| {
        b.iter(|| {
            now += 1;
            m.session_minted(black_box(now), black_box(now + 3600))
        })
    });
    g.bench_function("store_op", |b| {
        b.iter(|| m.store_op(black_box(StoreOp::FirstUse), true, black_box(d)))
    });
    let shared = Arc::new(Metrics::new().expect("metrics"));
    g.bench_function("sts_request, 2 threads", |b| {
        b.iter_custom(|iters| {
            let other = {
                let m = shared.clone();
                std::thread::spawn(move || {
                    for _ in 0..iters {
                        m.sts_request("AssumeRoleWithWebIdentity", None, d);
                    }
                })
            };
            let start = Instant::now();
            for _ in 0..iters {
                shared.sts_request(black_box("AssumeRoleWithWebIdentity"), None, black_box(d));
            }
            let t = start.elapsed();
            let _ = other.join();
            t
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
