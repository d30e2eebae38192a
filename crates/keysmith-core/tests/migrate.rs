//! Moving a one-computer account (SQLite) to the team server's PostgreSQL store: every
//! member, key and audit entry arrives with its seal and hash; existing keys verify as
//! before, revoked ones stay revoked; only the Owner may move; a store that already holds an
//! account, or a local chain that is not intact, is refused with nothing copied.
//!
//! PostgreSQL only: `scripts/test.sh` runs it with `--ignored` in its PostgreSQL pass.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use keysmith_core::testkit::{self, PASSPHRASE};
use keysmith_core::{store, Error, Registry};
use keysmith_types::{ErrorCode, KeyStatus, Role, REMOVE_CONFIRMATION, REVOKE_CONFIRMATION};

/// A fresh empty PostgreSQL store.
async fn postgres() -> store::Pool {
    let server = std::env::var(testkit::DATABASE_URL_VAR).expect("scripts/with-postgres.sh");
    let name = format!(
        "ks_move_{}",
        std::process::id() as u64 * 1000 + rand_suffix()
    );
    let url = store::create_postgres_database(&server, &name)
        .await
        .unwrap();
    store::connect_postgres(&url, 4).await.unwrap()
}

fn rand_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::SeqCst)
}

/// A one-computer account with history: keys generated, one revoked, one rolled, a member
/// removed (their keys revoked with them).
async fn local_account() -> (tempfile::TempDir, Registry, testkit::Team) {
    let dir = tempfile::tempdir().unwrap();
    let pool = store::open(&dir.path().join(store::DB_FILE)).await.unwrap();
    assert_eq!(pool.backend(), store::Backend::Sqlite);
    let registry = Registry::with_parts(
        pool,
        Arc::new(keysmith_core::MemoryStore::new()),
        Arc::new(keysmith_core::clock::SystemClock),
    );
    let team = testkit::fill_team(&registry).await;
    (dir, registry, team)
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs PostgreSQL: run by scripts/test.sh's PostgreSQL pass"]
async fn a_moved_account_keeps_its_keys_members_and_chain() {
    let (_dir, local, team) = local_account().await;
    let owner = team.get(Role::Owner, false).id.clone();
    let manager = team.get(Role::Manager, false).id.clone();
    let kept = local.generate_key(&manager, "kept").await.unwrap();
    let revoked = local.generate_key(&manager, "revoked").await.unwrap();
    local
        .revoke_key(&owner, &revoked.summary.id, REVOKE_CONFIRMATION)
        .await
        .unwrap();
    let old = local.generate_key(&owner, "rolled").await.unwrap();
    let new = local
        .roll_key(&owner, &old.summary.id, 3_600_000)
        .await
        .unwrap();
    let author = team.get(Role::Admin, true).id.clone();
    local
        .remove_member(&owner, &author, REMOVE_CONFIRMATION)
        .await
        .unwrap();
    // Usage counted before the move: two uses, one refusal.
    local.verify(kept.secret.expose()).await.unwrap();
    local.verify(kept.secret.expose()).await.unwrap();
    assert!(local.verify(revoked.secret.expose()).await.is_err());
    let before_usage = local.key_usage(&owner, &kept.summary.id, 30).await.unwrap();
    assert_eq!(before_usage.total.allowed, 2);
    let before_list = local.list_keys(&owner).await.unwrap();

    // Refused: not the Owner (nothing copied, nothing recorded).
    let target = postgres().await;
    let err = local
        .move_to(&manager, &target, "keys.example.com")
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::NotPermitted);
    assert!(store::account_id(&target).await.unwrap().is_none());

    let moved = local
        .move_to(&owner, &target, "keys.example.com")
        .await
        .unwrap();
    assert_eq!(moved.keys, before_list.len());
    let server = Registry::with_parts(
        target.clone(),
        local.secrets(),
        Arc::new(keysmith_core::clock::SystemClock),
    );
    let chain = server.audit_chain().await.unwrap();
    assert!(chain.intact, "{:?}", chain.problem);
    assert_eq!(chain.entries as usize, moved.audit_entries);
    assert_eq!(server.list_keys(&owner).await.unwrap(), before_list);

    // The usage rows came along.
    assert_eq!(
        server
            .key_usage(&owner, &kept.summary.id, 30)
            .await
            .unwrap(),
        before_usage
    );
    assert_eq!(
        server
            .key_usage(&owner, &revoked.summary.id, 30)
            .await
            .unwrap()
            .total
            .revoked,
        1
    );
    // Keys verify as before, revoked stays revoked, the rolled key is in its grace period.
    assert_eq!(
        server.verify(kept.secret.expose()).await.unwrap().key_id,
        kept.summary.id
    );
    assert!(matches!(
        server.verify(revoked.secret.expose()).await,
        Err(Error::KeyRevoked)
    ));
    server.verify(old.secret.expose()).await.unwrap();
    server.verify(new.secret.expose()).await.unwrap();
    // Members sign in with their passphrases; the removed member cannot.
    let m = server
        .sign_in(&team.get(Role::Manager, false).name, PASSPHRASE)
        .await
        .unwrap();
    assert_eq!(m.id, manager);
    assert_eq!(
        server
            .sign_in(&team.get(Role::Admin, true).name, PASSPHRASE)
            .await
            .unwrap_err()
            .code(),
        ErrorCode::BadCredentials
    );
    // The team server goes on writing the same chain.
    server
        .generate_key(&manager, "after the move")
        .await
        .unwrap();
    assert!(server.audit_chain().await.unwrap().intact);
    let statuses: Vec<KeyStatus> = server
        .list_keys(&owner)
        .await
        .unwrap()
        .into_iter()
        .map(|k| k.status)
        .collect();
    assert!(statuses.contains(&KeyStatus::Revoked));

    // A store that holds an account already is refused.
    let (_dir2, other, other_team) = local_account().await;
    let err = other
        .move_to(&other_team.get(Role::Owner, false).id, &target, "again")
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::AlreadyInitialized);
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs PostgreSQL: run by scripts/test.sh's PostgreSQL pass"]
async fn a_local_chain_that_is_not_intact_is_not_moved() {
    let (_dir, local, team) = local_account().await;
    local
        .pool()
        .execute_raw(
            "DROP TRIGGER audit_log_no_update; UPDATE audit_log SET detail = 'edited' WHERE seq = 2",
        )
        .await
        .unwrap();
    let target = postgres().await;
    let err = local
        .move_to(&team.get(Role::Owner, false).id, &target, "x")
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::AuditTampered);
    assert!(store::account_id(&target).await.unwrap().is_none());
}
