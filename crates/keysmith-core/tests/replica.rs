//! Verifier replicas on PostgreSQL: three replicas of one store see a revoke, a removal and a
//! role change; while a replica cannot confirm it is current (its reads blocked, or its
//! connections cut) it answers 503 once the bound passes, never a stale allow.
//!
//! PostgreSQL only: `scripts/test.sh` runs these with `--ignored` in its PostgreSQL pass
//! (`KEYSMITH_TEST_DATABASE_URL` set by `scripts/with-postgres.sh`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use keysmith_core::policy::Policy;
use keysmith_core::replica::{self, Replica};
use keysmith_core::testkit::{team_registry, TestDb};
use keysmith_core::verifier::{Denial, Target};
use keysmith_core::Registry;
use keysmith_types::{Role, REMOVE_CONFIRMATION, REVOKE_CONFIRMATION};

const POLICY: &str = r#"
[[allow]]
role = "manager"
methods = ["GET"]
paths = ["/v1/reports/**"]

[[allow]]
role = "admin"
methods = ["GET", "POST"]
paths = ["/**"]
"#;

const BOUND: Duration = Duration::from_millis(400);

const GET: Target<'static> = Target {
    method: "GET",
    uri: "/v1/reports/today",
    client: None,
};

async fn replicas(db: &TestDb, registry: &Registry, n: usize) -> Vec<Replica> {
    let mut out = Vec::new();
    for _ in 0..n {
        out.push(
            replica::start(
                db.pool().await,
                registry.verifier_pepper().await.unwrap(),
                Some(Policy::parse(POLICY, "policy.toml").unwrap()),
                BOUND,
            )
            .await
            .unwrap(),
        );
    }
    out
}

/// Checks `key` on `r` with `target` until it is allowed, failing as `what` if that takes
/// more than ten times the bound (a change that never reached the replica).
async fn until_allowed(r: &Replica, key: &str, target: Target<'_>, what: &str) {
    let start = Instant::now();
    while r.verifier.check(Some(key), Some(target)).is_err() {
        assert!(start.elapsed() < BOUND * 10, "{what}");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// Checks `key` on `r` until `refused` holds of the answer, asserting that no check after
/// `deadline` allows it; returns how long it took from `since`.
async fn until_refused(
    r: &Replica,
    key: &str,
    since: Instant,
    deadline: Instant,
    refused: impl Fn(&Denial) -> bool,
) -> Duration {
    loop {
        match r.verifier.check(Some(key), Some(GET)) {
            Err(d) if refused(&d) => return since.elapsed(),
            Err(Denial::Unavailable) => {}
            Err(d) => panic!("refused for another reason: {d}"),
            Ok(_) => assert!(
                Instant::now() < deadline,
                "allowed {:?} after the change returned (bound {BOUND:?})",
                since.elapsed()
            ),
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs PostgreSQL: run by scripts/test.sh's PostgreSQL pass"]
async fn every_replica_refuses_a_revoked_key_within_the_bound() {
    let (db, registry, team) = team_registry().await;
    let owner = team.get(Role::Owner, false).id.clone();
    let manager = team.get(Role::Manager, false).id.clone();
    let g = registry.generate_key(&manager, "reports").await.unwrap();
    let set = replicas(&db, &registry, 3).await;
    for r in &set {
        assert!(r.verifier.key_count() >= 4);
        let grant = r
            .verifier
            .check(Some(g.secret.expose()), Some(GET))
            .unwrap();
        assert_eq!(grant.role, Role::Manager);
    }
    // A key generated after the replicas started is allowed by each once fed.
    let later = registry.generate_key(&manager, "later").await.unwrap();
    for r in &set {
        until_allowed(
            r,
            later.secret.expose(),
            GET,
            "a new key never reached a replica",
        )
        .await;
    }

    // A pause reaches every replica within the bound, and so does the resume.
    registry
        .pause_key(&manager, &later.summary.id)
        .await
        .unwrap();
    let returned = Instant::now();
    for r in &set {
        until_refused(r, later.secret.expose(), returned, returned + BOUND, |d| {
            matches!(d, Denial::Paused { .. })
        })
        .await;
    }
    registry
        .resume_key(&owner, &later.summary.id)
        .await
        .unwrap();
    for r in &set {
        until_allowed(
            r,
            later.secret.expose(),
            GET,
            "a resume never reached a replica",
        )
        .await;
    }

    registry
        .revoke_key(&owner, &g.summary.id, REVOKE_CONFIRMATION)
        .await
        .unwrap();
    let returned = Instant::now();
    let mut seen = Vec::new();
    for r in &set {
        seen.push(
            until_refused(r, g.secret.expose(), returned, returned + BOUND, |d| {
                matches!(d, Denial::Revoked { .. })
            })
            .await,
        );
    }
    eprintln!("revocation seen by 3 replicas after {seen:?}");

    // Removing the creator revokes the later key everywhere; a role change applies too.
    let admin = team.get(Role::Admin, false).id.clone();
    let a = registry.generate_key(&admin, "admin key").await.unwrap();
    let post = Target {
        method: "POST",
        uri: "/v1/anything",
        client: None,
    };
    for r in &set {
        until_allowed(
            r,
            a.secret.expose(),
            post,
            "the Admin's key never reached a replica",
        )
        .await;
    }
    registry
        .change_role(&owner, &admin, Role::Manager)
        .await
        .unwrap();
    let returned = Instant::now();
    for r in &set {
        loop {
            match r.verifier.check(Some(a.secret.expose()), Some(post)) {
                Err(Denial::RoleRefused { role, .. }) => {
                    assert_eq!(role, Role::Manager);
                    break;
                }
                Ok(_) => assert!(returned.elapsed() < BOUND, "the old role still allowed"),
                Err(Denial::Unavailable) => {}
                Err(d) => panic!("{d}"),
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
    registry
        .remove_member(&owner, &manager, REMOVE_CONFIRMATION)
        .await
        .unwrap();
    let returned = Instant::now();
    for r in &set {
        until_refused(r, later.secret.expose(), returned, returned + BOUND, |d| {
            matches!(d, Denial::Revoked { .. })
        })
        .await;
    }
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs PostgreSQL: run by scripts/test.sh's PostgreSQL pass"]
async fn a_replica_that_cannot_confirm_it_is_current_answers_503() {
    let (db, registry, team) = team_registry().await;
    let owner = team.get(Role::Owner, false).id.clone();
    let manager = team.get(Role::Manager, false).id.clone();
    let g = registry.generate_key(&manager, "reports").await.unwrap();
    let set = replicas(&db, &registry, 1).await;
    let r = &set[0];
    r.verifier
        .check(Some(g.secret.expose()), Some(GET))
        .unwrap();

    // Its reads blocked: another session holds the change log locked.
    let admin = db.pool().await;
    let mut blocker = admin.begin_unlocked().await.unwrap();
    keysmith_core::store::lock_change_log_for_tests(&mut blocker)
        .await
        .unwrap();
    let locked = Instant::now();
    let mut unavailable = false;
    while locked.elapsed() < BOUND * 3 {
        match r.verifier.check(Some(g.secret.expose()), Some(GET)) {
            Ok(_) => assert!(
                locked.elapsed() < BOUND,
                "allowed {:?} after the replica last could read",
                locked.elapsed()
            ),
            Err(Denial::Unavailable) => unavailable = true,
            Err(d) => panic!("{d}"),
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(unavailable, "never answered 503 while it could not read");
    blocker.rollback().await.unwrap();
    until_allowed(r, g.secret.expose(), GET, "never recovered").await;

    // Its connections cut (the listener's too), and a revoke made meanwhile.
    keysmith_core::store::terminate_other_connections_for_tests(&admin)
        .await
        .unwrap();
    registry
        .revoke_key(&owner, &g.summary.id, REVOKE_CONFIRMATION)
        .await
        .unwrap();
    let returned = Instant::now();
    until_refused(r, g.secret.expose(), returned, returned + BOUND, |d| {
        matches!(d, Denial::Revoked { .. })
    })
    .await;
}

/// Replicas count uses in memory and add them to the same per-day rows on PostgreSQL: two
/// replicas' counts for one key sum, with the last use and its address.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs PostgreSQL: run by scripts/test.sh's PostgreSQL pass"]
async fn replicas_add_their_usage_counts_to_the_same_rows() {
    let (db, registry, team) = team_registry().await;
    let manager = team.get(Role::Manager, false).id.clone();
    let g = registry.generate_key(&manager, "reports").await.unwrap();
    let set = replicas(&db, &registry, 2).await;
    let from = Target {
        client: Some("192.0.2.7".parse().unwrap()),
        ..GET
    };
    for _ in 0..3 {
        set[0]
            .verifier
            .check(Some(g.secret.expose()), Some(from))
            .unwrap();
    }
    let post = Target {
        method: "POST",
        ..GET
    };
    for _ in 0..2 {
        assert!(matches!(
            set[1].verifier.check(Some(g.secret.expose()), Some(post)),
            Err(Denial::RoleRefused { .. })
        ));
    }
    // Both replicas flush within their 2 s period; two days cover a run across midnight.
    let start = Instant::now();
    let usage = loop {
        let usage = registry
            .key_usage(&manager, &g.summary.id, 2)
            .await
            .unwrap();
        if usage.total.allowed == 3 && usage.total.role == 2 {
            break usage;
        }
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "the replicas' counts never reached the store: {usage:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(usage.total.refused(), 2);
    assert_eq!(usage.last_used_from.as_deref(), Some("192.0.2.7"));
    assert!(usage.last_used_at.is_some());
}
