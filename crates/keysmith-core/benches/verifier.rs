#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The verifier's in-process decision with 1,000,000 keys stored (issue 5's goal: p50 ≤ 2 µs,
//! p99 ≤ 10 µs), and the index's memory per key.
//!
//! Set-up stores the keys in a real SQLite file (one transaction), then opens a
//! [`Verifier`] with a policy. Each of `SAMPLES` calls of [`Verifier::check`] (a known key,
//! a method and a path the policy allows) is timed on its own; the order of keys is
//! shuffled. The same for unknown keys and policy refusals. Each call includes its
//! `PRAGMA data_version` look at the database, as in service.
//!
//! Memory per key: the growth of the process's resident set while the index loads, divided
//! by the number of keys.
//!
//! Run with `cargo bench -p keysmith-core --bench verifier` (`KEYSMITH_BENCH_KEYS` to change
//! the key count).

use std::sync::Arc;
use std::time::{Duration, Instant};

use keysmith_core::clock::SystemClock;
use keysmith_core::digest::Pepper;
use keysmith_core::policy::Policy;
use keysmith_core::verifier::{Target, Verifier};
use keysmith_core::{store, testkit, ApiKeySecret, MemoryStore, Registry, SecretStore};
use rand::seq::SliceRandom;

const SAMPLES: usize = 1_000_000;
/// The allowlist every benchmark key carries (the client is inside its second network).
const BENCH_SOURCES: &str = "192.0.2.0/24 10.0.0.0/8 2001:db8::/32";

const POLICY: &str = r#"
[[allow]]
role = "owner"
methods = ["GET", "POST"]
paths = ["/v1/reports/**", "/v1/orders"]
"#;

fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|kb| kb.parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

fn percentile(sorted: &[Duration], q: f64) -> Duration {
    let rank = ((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

fn report(what: &str, mut samples: Vec<Duration>) {
    samples.sort_unstable();
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    println!(
        "{what:<34} n={:<8} p50 {:>6.2} µs  p99 {:>6.2} µs  p99.9 {:>6.2} µs  max {:>8.1} µs",
        samples.len(),
        us(percentile(&samples, 0.50)),
        us(percentile(&samples, 0.99)),
        us(percentile(&samples, 0.999)),
        us(*samples.last().unwrap()),
    );
}

fn main() {
    // `cargo bench` passes `--bench`; any other argument is a filter we do not use.
    let n: usize = std::env::var("KEYSMITH_BENCH_KEYS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join(store::DB_FILE);
    let started = Instant::now();
    let (pepper, kept) = rt.block_on(async {
        let pool = store::open(&db).await.unwrap();
        let secrets = Arc::new(MemoryStore::new());
        let registry = Registry::with_parts(pool, secrets.clone(), Arc::new(SystemClock));
        let owner = registry
            .create_account("Owner", "correct horse battery")
            .await
            .unwrap();
        let account = store::account_id(registry.pool()).await.unwrap().unwrap();
        let bytes = secrets.get(&format!("pepper/{account}")).unwrap().unwrap();
        let pepper = Pepper::from_bytes(&bytes).unwrap();
        // Every key carries an allowlist and a rate limit (high enough never to refuse), so each
        // check also matches the client address and takes from the key's bucket.
        let kept = testkit::bulk_keys_from(
            registry.pool(),
            &pepper,
            &owner.id,
            n,
            100,
            testkit::BulkLimits {
                sources: Some(BENCH_SOURCES),
                rate_limit: Some("1000000/s burst 1000000"),
                scopes: None,
            },
        )
        .await;
        registry.pool().close().await;
        (pepper, kept)
    });
    println!(
        "stored {n} keys in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    let policy = Policy::parse(POLICY, "bench.toml").unwrap();
    let before = rss_bytes();
    let opened = Instant::now();
    let pepper_copy = pepper.clone();
    let verifier = Verifier::open(&db, pepper, Some(policy)).unwrap();
    let load = opened.elapsed();
    let grown = rss_bytes().saturating_sub(before);
    println!(
        "index: {} keys loaded in {:.2} s; resident set grew {:.1} MB = {:.0} bytes per key",
        verifier.key_count(),
        load.as_secs_f64(),
        grown as f64 / 1e6,
        grown as f64 / n as f64
    );

    let mut rng = rand::rng();
    let mut order: Vec<usize> = (0..SAMPLES).map(|i| i % kept.len()).collect();
    order.shuffle(&mut rng);
    let allowed = Target {
        method: "GET",
        uri: "/v1/reports/2026/11?page=2",
        client: Some(std::net::IpAddr::from([10, 20, 30, 40])),
    };
    // Warm-up.
    for i in order.iter().take(10_000) {
        verifier.check(Some(&kept[*i]), Some(allowed)).unwrap();
    }
    let mut samples = Vec::with_capacity(SAMPLES);
    for i in &order {
        let key = kept[*i].as_str();
        let t = Instant::now();
        let r = verifier.check(Some(key), Some(allowed));
        samples.push(t.elapsed());
        assert!(r.is_ok());
    }
    report("allowed (known key, policy allows)", samples);

    let refused = Target {
        method: "DELETE",
        uri: "/v1/orders",
        client: Some(std::net::IpAddr::from([10, 20, 30, 40])),
    };
    let mut samples = Vec::with_capacity(SAMPLES / 10);
    for i in order.iter().take(SAMPLES / 10) {
        let t = Instant::now();
        let r = verifier.check(Some(&kept[*i]), Some(refused));
        samples.push(t.elapsed());
        assert!(r.is_err());
    }
    report("refused by policy (403)", samples);

    let strangers: Vec<String> = (0..1000)
        .map(|_| ApiKeySecret::generate().unwrap().expose().to_owned())
        .collect();
    let mut samples = Vec::with_capacity(SAMPLES / 10);
    for i in 0..SAMPLES / 10 {
        let t = Instant::now();
        let r = verifier.check(Some(&strangers[i % strangers.len()]), Some(allowed));
        samples.push(t.elapsed());
        assert!(r.is_err());
    }
    report("unknown key (401)", samples);
    // Where the time goes: the parts of a check on their own (mean of 1M calls).
    let mean = |f: &dyn Fn()| {
        let t = Instant::now();
        for _ in 0..1_000_000 {
            f();
        }
        t.elapsed().as_secs_f64() * 1e3 // ns per call
    };
    let policy = Policy::parse(POLICY, "bench.toml").unwrap();
    let key = ApiKeySecret::parse(&kept[0]).unwrap();
    let digester = pepper_copy.digester();
    println!(
        "parts (mean): parse {:.0} ns, HMAC {:.0} ns, request_path {:.0} ns, policy {:.0} ns, \
         change look (WAL-index read) {:.0} ns",
        mean(&|| {
            std::hint::black_box(ApiKeySecret::parse(std::hint::black_box(&kept[0])).is_ok());
        }),
        mean(&|| {
            std::hint::black_box(digester.digest(std::hint::black_box(&key)));
        }),
        mean(&|| {
            std::hint::black_box(
                keysmith_core::policy::request_path(std::hint::black_box(
                    "/v1/reports/2026/11?page=2",
                ))
                .is_ok(),
            );
        }),
        mean(&|| {
            std::hint::black_box(policy.allows(
                keysmith_types::Role::Owner,
                "GET",
                std::hint::black_box("/v1/reports/2026/11"),
            ));
        }),
        mean(&|| {
            std::hint::black_box(verifier.catch_up().is_ok());
        }),
    );
    let flushed = verifier.flush_last_used().unwrap();
    println!("last-used flush wrote {flushed} keys in one transaction");
}
