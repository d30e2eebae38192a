#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Benchmarks of Keysmith's key paths, on a real SQLite file in a temporary directory with
//! an in-memory secret store (the OS keyring is read once per registry, so it does not
//! matter to these figures).
//!
//! - `parse`: checking a presented key's format and checksum.
//! - `digest`: HMAC-SHA-256 of a key with the pepper.
//! - `generate_hash_store`: `Registry::generate_key`, i.e. draw a key, digest it and insert
//!   it (throughput in keys/s).
//! - `verify_100k`: `Registry::verify` with 100,000 keys stored: parse, digest, lookup,
//!   status check and last-used update. Before Criterion's groups, 10,000 single calls are
//!   also timed one by one and their p50 and p99 printed, since Criterion reports means and
//!   medians only.
//!
//! Run with `cargo bench -p keysmith-core --bench keys`.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput};
use keysmith_core::clock::SystemClock;
use keysmith_core::digest::Pepper;
use keysmith_core::{store, testkit, ApiKeySecret, MemoryStore, Registry, SecretStore};
use tokio::runtime::Runtime;

/// Keys stored for the verification benchmark.
const STORED_KEYS: usize = 100_000;
/// Of those, every `KEEP_EVERY`-th key is kept in memory to be presented.
const KEEP_EVERY: usize = 10;
/// Single verifications timed for the percentiles.
const LATENCY_SAMPLES: usize = 10_000;
/// Untimed verifications before the percentile run.
const LATENCY_WARM_UP: usize = 1_000;

/// A registry on a fresh SQLite file, with its account and Owner created.
struct Fixture {
    _dir: tempfile::TempDir,
    registry: Registry,
    secrets: Arc<MemoryStore>,
    owner_id: String,
}

async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let pool = store::open(&dir.path().join(store::DB_FILE)).await.unwrap();
    let secrets = Arc::new(MemoryStore::new());
    let registry = Registry::with_parts(pool, secrets.clone(), Arc::new(SystemClock));
    let owner_id = registry
        .create_account("Owner", "correct horse battery")
        .await
        .unwrap()
        .id;
    Fixture {
        _dir: dir,
        registry,
        secrets,
        owner_id,
    }
}

/// The account's pepper, read back from the in-memory secret store (the registry keeps
/// its own copy private).
async fn pepper_of(f: &Fixture) -> Pepper {
    let account = store::account_id(f.registry.pool()).await.unwrap().unwrap();
    let bytes = f
        .secrets
        .get(&format!("pepper/{account}"))
        .unwrap()
        .expect("the account's pepper is in the secret store");
    Pepper::from_bytes(&bytes).unwrap()
}

/// Stores `n` keys (see [`testkit::bulk_keys`]); returns every `keep_every`-th key.
async fn fill(f: &Fixture, n: usize, keep_every: usize) -> Vec<String> {
    let pepper = pepper_of(f).await;
    testkit::bulk_keys(f.registry.pool(), &pepper, &f.owner_id, n, keep_every).await
}

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

/// The value at quantile `q` of sorted samples (nearest rank).
fn percentile(sorted: &[Duration], q: f64) -> Duration {
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Times `LATENCY_SAMPLES` single verifications and prints p50, p99 and max.
fn verify_latency(rt: &Runtime, f: &Fixture, keys: &[String]) {
    rt.block_on(async {
        for key in keys.iter().cycle().take(LATENCY_WARM_UP) {
            black_box(f.registry.verify(key).await.unwrap());
        }
        let mut samples = Vec::with_capacity(LATENCY_SAMPLES);
        for key in keys
            .iter()
            .cycle()
            .skip(LATENCY_WARM_UP)
            .take(LATENCY_SAMPLES)
        {
            let t = Instant::now();
            let verified = f.registry.verify(key).await;
            samples.push(t.elapsed());
            black_box(verified.unwrap());
        }
        samples.sort_unstable();
        let total: Duration = samples.iter().sum();
        println!(
            "verify_100k latency over {} single calls ({} keys stored): \
             p50 {:.1} µs, p99 {:.1} µs, max {:.1} µs, mean {:.1} µs",
            samples.len(),
            STORED_KEYS,
            micros(percentile(&samples, 0.50)),
            micros(percentile(&samples, 0.99)),
            micros(samples[samples.len() - 1]),
            micros(total / u32::try_from(samples.len()).unwrap()),
        );
    });
}

fn bench_pure(c: &mut Criterion) {
    let key = ApiKeySecret::generate().unwrap();
    let presented = key.expose().to_owned();
    c.bench_function("parse", |b| {
        b.iter(|| ApiKeySecret::parse(black_box(&presented)).unwrap());
    });

    let pepper = Pepper::generate().unwrap();
    c.bench_function("digest", |b| {
        b.iter(|| pepper.digest(black_box(&key)));
    });
}

fn bench_generate(c: &mut Criterion, rt: &Runtime) {
    let f = rt.block_on(fixture());
    let mut group = c.benchmark_group("generate_hash_store");
    group.throughput(Throughput::Elements(1));
    group.bench_function("sqlite_file", |b| {
        b.to_async(rt)
            .iter(|| async { f.registry.generate_key(&f.owner_id, "bench").await.unwrap() });
    });
    group.finish();
}

fn bench_verify(c: &mut Criterion, rt: &Runtime, f: &Fixture, keys: &[String]) {
    let mut group = c.benchmark_group("verify_100k");
    group.throughput(Throughput::Elements(1));
    let mut next = 0usize;
    group.bench_function("valid_key", |b| {
        b.to_async(rt).iter(|| {
            let key = &keys[next % keys.len()];
            next = next.wrapping_add(1);
            async move { f.registry.verify(key).await.unwrap() }
        });
    });
    group.finish();
}

fn main() {
    let mut c = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5))
        .configure_from_args();
    let rt = runtime();

    bench_pure(&mut c);
    bench_generate(&mut c, &rt);

    let f = rt.block_on(fixture());
    let t = Instant::now();
    let keys = rt.block_on(fill(&f, STORED_KEYS, KEEP_EVERY));
    println!(
        "verify_100k set-up: {STORED_KEYS} keys generated, digested and stored in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    verify_latency(&rt, &f, &keys);
    bench_verify(&mut c, &rt, &f, &keys);

    c.final_summary();
}
