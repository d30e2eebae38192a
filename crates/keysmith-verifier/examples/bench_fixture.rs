//! Builds a data directory for the HTTP benchmark (scripts/bench-verifier.sh): an account
//! whose Owner has N keys, a Manager with keys that are then revoked, and the pepper in a
//! 0600 file (so the verifier needs no keyring). Writes the presented keys, one per line, to
//! `good.keys` (active Owner keys), `revoked.keys`, `manager.keys` (active, refused on
//! Owner-only paths) and `unknown.keys` (well-formed, never stored).
//!
//! The Owner's keys carry an allowlist, a rate limit (high enough never to refuse) and two
//! scopes, so the benchmark measures those checks; with a third argument `plain` they carry
//! none of them (the same-run baseline of what the limits cost).
//!
//! `cargo run --release -p keysmith-verifier --example bench_fixture -- DIR N [plain]`
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::sync::Arc;

use keysmith_core::clock::SystemClock;
use keysmith_core::digest::Pepper;
use keysmith_core::{store, testkit, ApiKeySecret, MemoryStore, Registry, SecretStore};
use keysmith_types::Role;

fn write_keys(path: &std::path::Path, keys: &[String]) {
    let mut f = std::fs::File::create(path).unwrap();
    for k in keys {
        writeln!(f, "{k}").unwrap();
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let dir = std::path::PathBuf::from(args.next().expect("usage: bench_fixture DIR N"));
    let n: usize = args.next().map_or(100_000, |v| v.parse().unwrap());
    let plain = args.next().as_deref() == Some("plain");
    std::fs::create_dir_all(&dir).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let pool = store::open(&dir.join(store::DB_FILE)).await.unwrap();
        let secrets = Arc::new(MemoryStore::new());
        let registry = Registry::with_parts(pool, secrets.clone(), Arc::new(SystemClock));
        let pass = "correct horse battery";
        let owner = registry.create_account("Olive", pass).await.unwrap();
        let account = store::account_id(registry.pool()).await.unwrap().unwrap();
        let pepper =
            Pepper::from_bytes(&secrets.get(&format!("pepper/{account}")).unwrap().unwrap())
                .unwrap();
        let good = testkit::bulk_keys_from(
            registry.pool(),
            &pepper,
            &owner.id,
            n,
            (n / 1000).max(1),
            testkit::BulkLimits {
                // Every key limited to networks: the benchmark's client (203.0.113.9,
                // told by the trusted proxy 127.0.0.1) is inside the second one.
                sources: (!plain).then_some("192.0.2.0/24 203.0.113.0/24 2001:db8::/32"),
                // And rate-limited, high enough that no request is refused (a refused one
                // would be a non-2xx in wrk's count): each request still takes from its
                // bucket.
                rate_limit: (!plain).then_some("1000000/s burst 1000000"),
                // And narrowed to two of examples/policy.toml's scopes, the second of which
                // covers the benchmark's GET /v1/reports/2026.
                scopes: (!plain).then_some("orders:create,reports:read"),
            },
        )
        .await;
        let manager = registry
            .add_member(&owner.id, "Max", Role::Manager, pass)
            .await
            .unwrap();
        // A new member replaces the initial passphrase before anything else.
        registry
            .change_passphrase(&manager.id, pass, "another good passphrase")
            .await
            .unwrap();
        let mut manager_keys = Vec::new();
        let mut revoked = Vec::new();
        for i in 0..200 {
            let g = registry
                .generate_key(&manager.id, &format!("m{i}"))
                .await
                .unwrap();
            if i % 2 == 0 {
                manager_keys.push(g.secret.expose().to_owned());
            } else {
                registry
                    .revoke_key(&owner.id, &g.summary.id, "REVOKE")
                    .await
                    .unwrap();
                revoked.push(g.secret.expose().to_owned());
            }
        }
        let unknown: Vec<String> = (0..200)
            .map(|_| ApiKeySecret::generate().unwrap().expose().to_owned())
            .collect();
        write_keys(&dir.join("good.keys"), &good);
        write_keys(&dir.join("manager.keys"), &manager_keys);
        write_keys(&dir.join("revoked.keys"), &revoked);
        write_keys(&dir.join("unknown.keys"), &unknown);
        let pepper_file = dir.join("pepper");
        let _ = std::fs::remove_file(&pepper_file);
        pepper.write_file(&pepper_file).unwrap();
        registry.pool().close().await;
        println!(
            "{}: {n} Owner keys, {} Manager keys, {} revoked",
            dir.display(),
            manager_keys.len(),
            revoked.len()
        );
    });
}
