//! The team server's figures (issue 10), on a throwaway PostgreSQL cluster:
//!
//! ```text
//! scripts/with-postgres.sh -- cargo bench -p keysmith-server --bench team
//! ```
//!
//! 1. Revocation seen by 3 verifier replicas: time from the revoking call's return until
//!    each replica refuses the key (p50, p99, max over `KEYSMITH_BENCH_REVOKES`, default 300).
//! 2. Key creation through 2 server instances over HTTP on loopback: 16 clients for 10 s.
//! 3. The list of 10,000 keys through the API (`GET /v1/keys` as the Owner).
//! 4. Replica start-up with `KEYSMITH_BENCH_KEYS` keys (default 1,000,000): index load time
//!    and resident memory per key.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use keysmith_client::{ConnectOptions, Remote, Team};
use keysmith_core::policy::Policy;
use keysmith_core::testkit::{self, TestDb, PASSPHRASE};
use keysmith_core::verifier::{Denial, Target};
use keysmith_core::{replica, Registry};
use keysmith_types::Role;

const POLICY: &str = "[[allow]]\nrole = \"manager\"\nmethods = [\"GET\"]\npaths = [\"/**\"]\n";
const GET: Target<'static> = Target {
    method: "GET",
    uri: "/v1/x",
    client: None,
};

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

async fn serve(db: &TestDb, registry: &Registry) -> String {
    let r = Registry::with_parts(
        db.pool().await,
        registry.secrets(),
        Arc::new(keysmith_core::clock::SystemClock),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(keysmith_server::serve(
        Arc::new(r),
        keysmith_core::scope::ScopeCatalog::builtin(),
        listener,
        std::future::pending(),
    ));
    url
}

async fn revocations(db: &TestDb, registry: &Registry, team: &testkit::Team) {
    let n = env_usize("KEYSMITH_BENCH_REVOKES", 300);
    let owner = team.get(Role::Owner, false).id.clone();
    let manager = team.get(Role::Manager, false).id.clone();
    let mut keys = Vec::with_capacity(n);
    for i in 0..n {
        keys.push(
            registry
                .generate_key(&manager, &format!("k{i}"))
                .await
                .unwrap(),
        );
    }
    let mut set = Vec::new();
    for _ in 0..3 {
        set.push(
            replica::start(
                db.pool().await,
                registry.verifier_pepper().await.unwrap(),
                Some(Policy::parse(POLICY, "p.toml").unwrap()),
                Duration::from_secs(1),
            )
            .await
            .unwrap(),
        );
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut seen = Vec::with_capacity(n * 3);
    let mut late = 0;
    for g in &keys {
        registry
            .revoke_key(&owner, &g.summary.id, "REVOKE")
            .await
            .unwrap();
        let returned = Instant::now();
        for r in &set {
            loop {
                match r.verifier.check(Some(g.secret.expose()), Some(GET)) {
                    Err(Denial::Revoked { .. }) => break,
                    Ok(_) if returned.elapsed() > Duration::from_secs(1) => {
                        late += 1;
                        break;
                    }
                    _ => tokio::task::yield_now().await,
                }
            }
            seen.push(returned.elapsed());
        }
    }
    seen.sort_unstable();
    println!(
        "revocation seen by 3 replicas ({} revokes × 3): p50 {:?}, p99 {:?}, max {:?}; allowed after the 1 s bound: {late}",
        n,
        percentile(&seen, 0.5),
        percentile(&seen, 0.99),
        seen[seen.len() - 1]
    );
}

async fn creation(db: &TestDb, registry: &Registry, team: &testkit::Team) {
    let urls = [serve(db, registry).await, serve(db, registry).await];
    let writers: Vec<_> = team
        .people
        .iter()
        .filter(|p| p.role >= Role::Manager)
        .cloned()
        .collect();
    let mut sessions = Vec::new();
    for c in 0..16 {
        let remote = Remote::connect(&urls[c % 2], &ConnectOptions::default())
            .await
            .unwrap();
        remote
            .sign_in(&writers[c % writers.len()].name, PASSPHRASE)
            .await
            .unwrap();
        sessions.push(Team::Remote(remote));
    }
    let until = Instant::now() + Duration::from_secs(10);
    let start = Instant::now();
    let mut tasks = Vec::new();
    for (c, team) in sessions.into_iter().enumerate() {
        tasks.push(tokio::spawn(async move {
            let mut n = 0u64;
            while Instant::now() < until {
                team.generate_key(
                    &keysmith_types::GenerateKeyRequest {
                        name: format!("bench {c} {n}"),
                        ..Default::default()
                    },
                    &keysmith_core::scope::ScopeCatalog::builtin(),
                )
                .await
                .unwrap();
                n += 1;
            }
            n
        }));
    }
    let mut total = 0;
    for t in tasks {
        total += t.await.unwrap();
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "key creation through 2 server instances, 16 clients: {total} keys in {secs:.1} s = {:.0} keys/s",
        total as f64 / secs
    );
}

async fn listing(db: &TestDb, registry: &Registry, team: &testkit::Team) {
    let owner = team.get(Role::Owner, false);
    let pepper = registry.verifier_pepper().await.unwrap();
    let have = registry.list_keys(&owner.id).await.unwrap().len();
    if have < 10_000 {
        testkit::bulk_keys(registry.pool(), &pepper, &owner.id, 10_000 - have, 10_000).await;
    }
    let url = serve(db, registry).await;
    let remote = Remote::connect(&url, &ConnectOptions::default())
        .await
        .unwrap();
    remote.sign_in(&owner.name, PASSPHRASE).await.unwrap();
    let team = Team::Remote(remote);
    let mut times = Vec::new();
    let mut count = 0;
    for _ in 0..20 {
        let t = Instant::now();
        count = team.list_keys().await.unwrap().len();
        times.push(t.elapsed());
    }
    times.sort_unstable();
    println!(
        "list of {count} keys through the API: p50 {:?}, max {:?} (20 runs)",
        percentile(&times, 0.5),
        times[times.len() - 1]
    );
}

async fn startup(registry: &Registry, db: &TestDb, team: &testkit::Team) {
    let n = env_usize("KEYSMITH_BENCH_KEYS", 1_000_000);
    let owner = team.get(Role::Owner, false);
    let pepper = registry.verifier_pepper().await.unwrap();
    let t = Instant::now();
    testkit::bulk_keys(registry.pool(), &pepper, &owner.id, n, n).await;
    println!("({n} keys stored in {:.1} s)", t.elapsed().as_secs_f64());
    let before = rss_bytes();
    let t = Instant::now();
    let r = replica::start(
        db.pool().await,
        pepper,
        Some(Policy::parse(POLICY, "p.toml").unwrap()),
        Duration::from_secs(1),
    )
    .await
    .unwrap();
    let took = t.elapsed();
    let keys = r.verifier.key_count();
    let after = rss_bytes();
    println!(
        "replica start-up with {keys} keys: {:.2} s; resident memory +{} MB ({} bytes per key)",
        took.as_secs_f64(),
        after.saturating_sub(before) / 1_000_000,
        after.saturating_sub(before) / keys.max(1) as u64
    );
}

fn main() {
    if std::env::var_os(testkit::DATABASE_URL_VAR).is_none() {
        eprintln!(
            "run through scripts/with-postgres.sh (needs {})",
            testkit::DATABASE_URL_VAR
        );
        return;
    }
    // `cargo bench` passes --bench; a filter argument picks one figure.
    let only: Option<String> = std::env::args().skip(1).find(|a| !a.starts_with("--"));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let wants = |name: &str| only.as_deref().is_none_or(|o| name.contains(o));
        if wants("revocation") {
            let (db, registry, team) = testkit::team_registry().await;
            revocations(&db, &registry, &team).await;
        }
        if wants("creation") {
            let (db, registry, team) = testkit::team_registry().await;
            creation(&db, &registry, &team).await;
        }
        if wants("listing") {
            let (db, registry, team) = testkit::team_registry().await;
            listing(&db, &registry, &team).await;
        }
        if wants("startup") {
            let (db, registry, team) = testkit::team_registry().await;
            startup(&registry, &db, &team).await;
        }
    });
}
