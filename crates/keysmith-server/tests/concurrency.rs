//! Two team server instances on one store, eight clients on each, mixed operations at once:
//! every operation lands exactly once and the audit chain stays one unforked chain
//! (`audit verify` passes, every entry accounted for). Over real HTTP on loopback, through
//! `keysmith-client` as the CLI and the desktop use it. On SQLite by default; `scripts/test.sh`
//! runs it again on PostgreSQL, where the instances' writers meet at the advisory lock.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use keysmith_client::{ConnectOptions, Remote, Team};
use keysmith_core::testkit::{team_registry, PASSPHRASE};
use keysmith_types::{AuditFilter, Role};

/// Operations per client (so 2 × 8 × this in all): `KEYSMITH_CONCURRENCY_OPS`, default 64.
/// The PostgreSQL pass of `scripts/test.sh` runs 1,000 per client (16,000 in all, about 85 s).
fn ops_per_client() -> usize {
    std::env::var("KEYSMITH_CONCURRENCY_OPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(64)
}

async fn instance(
    db: &keysmith_core::testkit::TestDb,
    secrets: Arc<dyn keysmith_core::SecretStore>,
) -> String {
    let registry = keysmith_core::Registry::with_parts(
        db.pool().await,
        secrets,
        Arc::new(keysmith_core::clock::SystemClock),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(keysmith_server::serve(
        Arc::new(registry),
        keysmith_core::scope::ScopeCatalog::builtin(),
        listener,
        std::future::pending(),
    ));
    url
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_instances_sixteen_clients_one_unforked_chain() {
    let (db, registry, team) = team_registry().await;
    let before = registry.audit_chain().await.unwrap().entries;
    let urls = [
        instance(&db, registry.secrets()).await,
        instance(&db, registry.secrets()).await,
    ];
    // The members who may generate: the Owner, two Admins, two Managers.
    let writers: Vec<_> = team
        .people
        .iter()
        .filter(|p| p.role >= Role::Manager)
        .cloned()
        .collect();
    // Sessions first, one after another (a member's sign-ins made at the same moment count
    // against each other: the throttle counts attempts before checking them).
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
    let ops = ops_per_client();
    let mut clients = Vec::new();
    for (c, team) in sessions.into_iter().enumerate() {
        clients.push(tokio::spawn(async move {
            let mut audited = 0usize;
            let mut mine: Vec<String> = Vec::new();
            // The slowest of each kind (generate, generate, list, revoke or roll), in ms: printed,
            // not asserted (speed is the benchmark's business), but a list that once took 19 s
            // under this load is how a planner trap showed itself.
            let mut worst = [0u128; 4];
            for i in 0..ops {
                let t0 = std::time::Instant::now();
                let kind = i % 4;
                match i % 4 {
                    0 | 1 => {
                        let g = team
                            .generate_key(
                                &keysmith_types::GenerateKeyRequest {
                                    name: format!("client {c} key {i}"),
                                    ..Default::default()
                                },
                                &keysmith_core::scope::ScopeCatalog::builtin(),
                            )
                            .await
                            .unwrap();
                        mine.push(g.key.id.clone());
                        audited += 1;
                    }
                    2 => {
                        let keys = team.list_keys().await.unwrap();
                        assert!(keys.iter().any(|k| mine.contains(&k.id)));
                    }
                    _ => {
                        if i % 8 == 3 {
                            let id = mine.remove(0);
                            team.revoke_key(&id, "REVOKE").await.unwrap();
                            audited += 1;
                        } else {
                            let id = mine.remove(0);
                            let rolled = team.roll_key(&id, 60_000).await.unwrap();
                            mine.push(rolled.key.id.clone());
                            // The replacement's "key_generated" and the old key's "key_rolled".
                            audited += 2;
                        }
                    }
                }
                worst[kind] = worst[kind].max(t0.elapsed().as_millis());
            }
            eprintln!("client {c}: slowest generate/generate/list/revoke-or-roll {worst:?} ms");
            audited
        }));
    }
    let mut audited = 0;
    for c in clients {
        audited += c.await.unwrap();
    }
    let chain = registry.audit_chain().await.unwrap();
    assert!(chain.intact, "{:?}", chain.problem);
    // Each operation's entry, plus one sign-in per client: nothing lost, nothing twice.
    assert_eq!(chain.entries, before + audited as u64 + 16, "{chain:?}");
    let owner = &team.get(Role::Owner, false).id;
    let entries = registry
        .audit_entries(owner, &AuditFilter::default())
        .await
        .unwrap();
    let mut seqs: Vec<i64> = entries.iter().map(|e| e.seq).collect();
    seqs.sort_unstable();
    assert!(
        seqs.windows(2).all(|w| w[1] == w[0] + 1),
        "gaps in the chain"
    );
    eprintln!(
        "{} operations through 2 instances × 8 clients; {} audit entries, chain intact",
        16 * ops,
        chain.entries
    );
}
