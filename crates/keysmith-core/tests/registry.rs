//! The registry on a real SQLite file (fresh per test) with an in-memory secret store.
//! The real OS keyring is exercised in `tests/keyring.rs` at the repository root.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use keysmith_core::clock::Clock;
use keysmith_core::testkit::TestDb;
use keysmith_core::{store, ApiKeySecret, Error, MemoryStore, Registry, SecretStore};
use keysmith_types::{ErrorCode, KeyStatus, Role};

struct TestClock(AtomicI64);
impl Clock for TestClock {
    fn now_ms(&self) -> i64 {
        self.0.fetch_add(1000, Ordering::SeqCst)
    }
}

struct Fixture {
    db: TestDb,
    /// The SQLite file (absent on PostgreSQL).
    path: std::path::PathBuf,
    registry: Registry,
    secrets: Arc<MemoryStore>,
}

async fn fixture() -> Fixture {
    let db = TestDb::new().await;
    let path = db.path().join(store::DB_FILE);
    let secrets = Arc::new(MemoryStore::new());
    let registry = Registry::with_parts(
        db.pool().await,
        secrets.clone(),
        Arc::new(TestClock(AtomicI64::new(1_700_000_000_000))),
    );
    Fixture {
        db,
        path,
        registry,
        secrets,
    }
}

const PASS: &str = "correct horse battery";

async fn owner(f: &Fixture) -> String {
    f.registry.create_account("Olive", PASS).await.unwrap().id
}

async fn insert_member(f: &Fixture, name: &str, role: Role) -> String {
    let id = format!("member-{name}");
    let phc = keysmith_core::passphrase::hash(PASS).unwrap();
    keysmith_core::testkit::insert_member(&f.registry, &id, name, role, &phc).await;
    id
}

#[tokio::test]
async fn first_run_creates_owner_and_pepper_once() {
    let f = fixture().await;
    assert!(!f.registry.is_initialized().await.unwrap());
    assert!(matches!(
        f.registry.sign_in("Olive", PASS).await,
        Err(Error::NotInitialized)
    ));
    let o = f.registry.create_account("  Olive ", PASS).await.unwrap();
    assert_eq!((o.name.as_str(), o.role), ("Olive", Role::Owner));
    assert!(f.registry.is_initialized().await.unwrap());
    let account = store::account_id(f.registry.pool()).await.unwrap().unwrap();
    let pepper = f
        .secrets
        .get(&format!("pepper/{account}"))
        .unwrap()
        .unwrap();
    assert_eq!(pepper.len(), 32);
    assert!(matches!(
        f.registry.create_account("Other", PASS).await,
        Err(Error::AlreadyInitialized)
    ));
}

#[tokio::test]
async fn set_up_refuses_bad_input_and_changes_nothing() {
    let f = fixture().await;
    for (name, pass, code) in [
        ("", PASS, ErrorCode::InvalidName),
        ("a\u{1b}[31m", PASS, ErrorCode::InvalidName),
        ("Olive", "short", ErrorCode::InvalidPassphrase),
    ] {
        let err = f.registry.create_account(name, pass).await.unwrap_err();
        assert_eq!(err.code(), code);
    }
    assert!(!f.registry.is_initialized().await.unwrap());
}

#[tokio::test]
async fn sign_in_checks_the_passphrase_case_insensitive_name() {
    let f = fixture().await;
    let id = owner(&f).await;
    assert_eq!(f.registry.sign_in("olive", PASS).await.unwrap().id, id);
    for (name, pass) in [("Olive", "correct horse batterY"), ("Nobody", PASS)] {
        assert!(matches!(
            f.registry.sign_in(name, pass).await,
            Err(Error::BadCredentials)
        ));
    }
}

#[tokio::test]
async fn generate_list_verify_revoke_round_trip() {
    let f = fixture().await;
    let o = owner(&f).await;
    let g = f.registry.generate_key(&o, "  Zapier sync ").await.unwrap();
    assert_eq!(g.summary.name, "Zapier sync");
    assert_eq!(g.summary.start, &g.secret.expose()[4..8]);
    let key = g.secret.expose().to_owned();

    let listed = f.registry.list_keys(&o).await.unwrap();
    assert_eq!(listed, vec![g.summary.clone()]);
    assert_eq!(listed[0].last_used_at, None);

    let v = f.registry.verify(&key).await.unwrap();
    assert_eq!(v.key_id, g.summary.id);
    assert_eq!(
        (v.creator.name.as_str(), v.creator.role),
        ("Olive", Role::Owner)
    );
    assert!(f.registry.list_keys(&o).await.unwrap()[0]
        .last_used_at
        .is_some());

    let r = f
        .registry
        .revoke_key(&o, &g.summary.id, "REVOKE")
        .await
        .unwrap();
    assert_eq!(r.status, KeyStatus::Revoked);
    assert!(matches!(
        f.registry.verify(&key).await,
        Err(Error::KeyRevoked)
    ));
    assert!(matches!(
        f.registry.revoke_key(&o, &g.summary.id, "REVOKE").await,
        Err(Error::AlreadyRevoked)
    ));
}

#[tokio::test]
async fn bad_key_names_are_refused_and_nothing_is_created() {
    let f = fixture().await;
    let o = owner(&f).await;
    for bad in ["", "   ", &"k".repeat(65), "tab\there", "new\nline"] {
        let err = f.registry.generate_key(&o, bad).await.unwrap_err();
        assert_eq!(err.code(), ErrorCode::InvalidName, "{bad:?}");
    }
    assert!(f.registry.list_keys(&o).await.unwrap().is_empty());
}

#[tokio::test]
async fn revoke_demands_exact_confirmation_and_changes_nothing_otherwise() {
    let f = fixture().await;
    let o = owner(&f).await;
    let g = f.registry.generate_key(&o, "CRM").await.unwrap();
    for wrong in ["", "revoke", "Revoke", "REVOKE ", " REVOKE", "REVOKED"] {
        let err = f
            .registry
            .revoke_key(&o, &g.summary.id, wrong)
            .await
            .unwrap_err();
        assert_eq!(err.code(), ErrorCode::ConfirmationMismatch, "{wrong:?}");
    }
    assert!(f.registry.verify(g.secret.expose()).await.is_ok());
    let err = f
        .registry
        .revoke_key(&o, "no-such-id", "REVOKE")
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::NotFound);
}

#[tokio::test]
async fn verify_rejects_malformed_before_lookup_and_unknown_keys() {
    let f = fixture().await;
    owner(&f).await;
    let err = f.registry.verify("ksk_tooshort").await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::MalformedKey);
    let stranger = ApiKeySecret::generate().unwrap();
    let err = f.registry.verify(stranger.expose()).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::UnknownKey);
}

#[tokio::test]
async fn a_copied_database_without_the_pepper_confirms_nothing() {
    let f = fixture().await;
    let o = owner(&f).await;
    let g = f.registry.generate_key(&o, "CRM").await.unwrap();
    // The same database file, but a keyring that lacks the pepper.
    let thief = Registry::with_parts(
        f.db.pool().await,
        Arc::new(MemoryStore::new()),
        Arc::new(keysmith_core::clock::SystemClock),
    );
    let err = thief.verify(g.secret.expose()).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::PepperMissing);
}

/// The keys page's first page: the newest `n` keys are the whole list's first `n`, for each
/// role that may list (a Manager's own keys only), on both engines.
/// The change counter moves with every commit, from this registry's pool or another's (as a
/// verifier's in another process), and only then; PostgreSQL has none.
#[tokio::test]
async fn the_change_counter_moves_with_every_commit() {
    let f = fixture().await;
    let o = owner(&f).await;
    let Some(start) = f.registry.change_counter().await.unwrap() else {
        assert!(f.db.url.is_some(), "SQLite has a change counter");
        return;
    };
    assert_eq!(f.registry.change_counter().await.unwrap(), Some(start));
    f.registry.list_newest_keys(&o, None).await.unwrap();
    assert_eq!(
        f.registry.change_counter().await.unwrap(),
        Some(start),
        "reading commits nothing"
    );
    let key = f.registry.generate_key(&o, "Deploy").await.unwrap();
    let after_generate = f.registry.change_counter().await.unwrap().unwrap();
    assert_ne!(after_generate, start);
    let other = f.db.pool().await;
    store::touch_last_used(&other, &key.summary.id, 1)
        .await
        .unwrap();
    let after_other = f.registry.change_counter().await.unwrap().unwrap();
    assert_ne!(
        after_other, after_generate,
        "another pool's commit went unseen"
    );
    assert_eq!(
        f.registry.change_counter().await.unwrap(),
        Some(after_other)
    );
}

#[tokio::test]
async fn the_newest_keys_are_the_whole_lists_first() {
    let f = fixture().await;
    let o = owner(&f).await;
    let manager = insert_member(&f, "Max", Role::Manager).await;
    let viewer = insert_member(&f, "Vic", Role::Viewer).await;
    for i in 0..5 {
        let creator = if i % 2 == 0 { &o } else { &manager };
        f.registry
            .generate_key(creator, &format!("key {i}"))
            .await
            .unwrap();
    }
    for (actor, count) in [(&o, 5), (&manager, 2)] {
        let all = f.registry.list_keys(actor).await.unwrap();
        assert_eq!(all.len(), count);
        for n in 0..=6u32 {
            let first = f.registry.list_newest_keys(actor, Some(n)).await.unwrap();
            assert_eq!(
                first,
                all[..all.len().min(n as usize)],
                "{actor}: first {n}"
            );
        }
        assert_eq!(f.registry.list_newest_keys(actor, None).await.unwrap(), all);
    }
    let err = f
        .registry
        .list_newest_keys(&viewer, Some(1))
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::NotPermitted);
}

#[tokio::test]
async fn roles_decide_generate_list_and_revoke() {
    let f = fixture().await;
    let o = owner(&f).await;
    let admin = insert_member(&f, "Ada", Role::Admin).await;
    let manager = insert_member(&f, "Max", Role::Manager).await;
    let author = insert_member(&f, "Aut", Role::Author).await;
    let viewer = insert_member(&f, "Vic", Role::Viewer).await;

    let ok = f.registry.generate_key(&o, "owner key").await.unwrap();
    let mk = f
        .registry
        .generate_key(&manager, "manager key")
        .await
        .unwrap();
    for refused in [&author, &viewer] {
        let err = f.registry.generate_key(refused, "nope").await.unwrap_err();
        assert_eq!(err.code(), ErrorCode::NotPermitted);
        let err = f.registry.list_keys(refused).await.unwrap_err();
        assert_eq!(err.code(), ErrorCode::NotPermitted);
    }
    assert_eq!(f.registry.list_keys(&admin).await.unwrap().len(), 2);
    let mine = f.registry.list_keys(&manager).await.unwrap();
    assert_eq!(
        mine.iter().map(|k| k.id.as_str()).collect::<Vec<_>>(),
        vec![mk.summary.id.as_str()]
    );

    // A Manager cannot revoke the Owner's key; the key keeps working.
    let err = f
        .registry
        .revoke_key(&manager, &ok.summary.id, "REVOKE")
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::NotPermitted);
    assert!(f.registry.verify(ok.secret.expose()).await.is_ok());
    // An Admin revokes the Manager's key.
    f.registry
        .revoke_key(&admin, &mk.summary.id, "REVOKE")
        .await
        .unwrap();
    assert!(matches!(
        f.registry.verify(mk.secret.expose()).await,
        Err(Error::KeyRevoked)
    ));
}

/// Runs `sql` behind Keysmith's back; the error's full text (the engine's message).
/// Drops the `api_keys` trigger `name` in each engine's syntax, as someone editing the
/// database outside Keysmith would before changing what it guards.
async fn drop_key_trigger(f: &Fixture, name: &str) {
    let sql = if f.registry.pool().backend() == store::Backend::Postgres {
        format!("DROP TRIGGER {name} ON api_keys")
    } else {
        format!("DROP TRIGGER {name}")
    };
    raw(f, &sql).await.unwrap();
}

async fn raw(f: &Fixture, sql: &str) -> Result<(), String> {
    f.registry
        .pool()
        .execute_raw(sql)
        .await
        .map(|_| ())
        .map_err(|e| format!("{e:?}"))
}

#[tokio::test]
async fn the_schema_refuses_unrevoke_identity_changes_and_deletes() {
    let f = fixture().await;
    let o = owner(&f).await;
    let g = f.registry.generate_key(&o, "CRM").await.unwrap();
    let id = &g.summary.id;

    for sql in [
        format!("UPDATE api_keys SET digest = mac WHERE id = '{id}'"),
        format!("UPDATE api_keys SET start = 'AAAA' WHERE id = '{id}'"),
        format!("DELETE FROM api_keys WHERE id = '{id}'"),
    ] {
        let err = raw(&f, &sql).await.unwrap_err();
        assert!(err.to_string().contains("keysmith:"), "{sql}: {err}");
    }
    f.registry.revoke_key(&o, id, "REVOKE").await.unwrap();
    for sql in [
        format!("UPDATE api_keys SET revoked_at = NULL WHERE id = '{id}'"),
        format!("UPDATE api_keys SET revoked_at = revoked_at + 1 WHERE id = '{id}'"),
    ] {
        let err = raw(&f, &sql).await.unwrap_err();
        assert!(
            err.to_string().contains("cannot be reactivated"),
            "{sql}: {err}"
        );
    }
    assert!(matches!(
        f.registry.verify(g.secret.expose()).await,
        Err(Error::KeyRevoked)
    ));
    // Names and last-used may still change.
    raw(
        &f,
        &format!("UPDATE api_keys SET name = 'renamed' WHERE id = '{id}'"),
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn the_schema_holds_exactly_one_owner() {
    let f = fixture().await;
    owner(&f).await;
    let err = store::insert_member(
        f.registry.pool(),
        &store::MemberRow {
            id: "second".into(),
            name: "Second".into(),
            name_key: "second".into(),
            role: "owner".into(),
            passphrase_hash: "x".into(),
            must_change_passphrase: false,
            created_at: 0,
            disabled_at: None,
            mac: None,
        },
    )
    .await
    .unwrap_err();
    assert_eq!(err.code(), ErrorCode::Storage);
}

#[tokio::test]
async fn the_database_file_never_holds_a_key() {
    let f = fixture().await;
    let o = owner(&f).await;
    let mut keys = Vec::new();
    for i in 0..20 {
        keys.push(
            f.registry
                .generate_key(&o, &format!("key {i}"))
                .await
                .unwrap()
                .secret,
        );
    }
    f.registry.pool().close().await;
    let mut bytes = Vec::new();
    for suffix in ["", "-wal", "-shm"] {
        let p = format!("{}{suffix}", f.path.display());
        if let Ok(b) = std::fs::read(&p) {
            bytes.extend(b);
        }
    }
    assert!(!bytes.is_empty());
    for k in &keys {
        let body = &k.expose()[4..];
        assert!(
            !bytes.windows(body.len()).any(|w| w == body.as_bytes()),
            "a key body was found in the database files"
        );
    }
}

/// The actions of the audit entries that name `key_id`, oldest first.
async fn key_actions(f: &Fixture, actor: &str, key_id: &str) -> Vec<String> {
    let report = f
        .registry
        .audit_report(actor, &keysmith_types::AuditFilter::default())
        .await
        .unwrap();
    assert!(report.chain.intact, "{:?}", report.chain.problem);
    let mut actions: Vec<String> = report
        .entries
        .into_iter()
        .filter(|e| e.target.contains(key_id))
        .map(|e| e.action)
        .collect();
    actions.reverse();
    actions
}

#[tokio::test]
async fn a_paused_key_is_refused_until_resumed_and_both_are_audited() {
    let f = fixture().await;
    let o = owner(&f).await;
    let g = f.registry.generate_key(&o, "CRM").await.unwrap();
    let id = g.summary.id.clone();
    let key = g.secret.expose().to_owned();

    let paused = f.registry.pause_key(&o, &id).await.unwrap();
    assert_eq!(paused.status, KeyStatus::Paused);
    assert!(paused.paused_at.is_some());
    let listed = f.registry.list_keys(&o).await.unwrap();
    assert_eq!(
        (listed[0].status, listed[0].paused_at),
        (KeyStatus::Paused, paused.paused_at)
    );
    let err = f.registry.verify(&key).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::KeyPaused);
    // A paused key found in a file is still live: resuming it brings it back.
    let secret = ApiKeySecret::parse(&key).unwrap();
    let found = f.registry.identify(&[&secret]).await.unwrap();
    assert_eq!(found[0].as_ref().unwrap().status, KeyStatus::Paused);

    let resumed = f.registry.resume_key(&o, &id).await.unwrap();
    assert_eq!(
        (resumed.status, resumed.paused_at),
        (KeyStatus::Active, None)
    );
    assert!(f.registry.verify(&key).await.is_ok());
    // And once more: a key may be paused again after a resume.
    f.registry.pause_key(&o, &id).await.unwrap();
    assert_eq!(
        f.registry.verify(&key).await.unwrap_err().code(),
        ErrorCode::KeyPaused
    );
    assert_eq!(
        key_actions(&f, &o, &id).await,
        ["key_generated", "key_paused", "key_resumed", "key_paused"]
    );
}

#[tokio::test]
async fn pause_and_resume_refuse_what_they_cannot_do_and_change_nothing() {
    let f = fixture().await;
    let o = owner(&f).await;
    let manager = insert_member(&f, "Max", Role::Manager).await;
    let active = f
        .registry
        .generate_key(&o, "active")
        .await
        .unwrap()
        .summary
        .id;
    let paused = f
        .registry
        .generate_key(&o, "paused")
        .await
        .unwrap()
        .summary
        .id;
    f.registry.pause_key(&o, &paused).await.unwrap();
    let revoked = f
        .registry
        .generate_key(&o, "revoked")
        .await
        .unwrap()
        .summary
        .id;
    f.registry.revoke_key(&o, &revoked, "REVOKE").await.unwrap();
    // Rolled with no grace: the old key is expired from the next instant.
    let expired = f
        .registry
        .generate_key(&o, "expired")
        .await
        .unwrap()
        .summary
        .id;
    f.registry.roll_key(&o, &expired, 0).await.unwrap();
    let paused_then_revoked = f.registry.generate_key(&o, "p+r").await.unwrap().summary.id;
    f.registry
        .pause_key(&o, &paused_then_revoked)
        .await
        .unwrap();
    f.registry
        .revoke_key(&o, &paused_then_revoked, "REVOKE")
        .await
        .unwrap();
    let pool = f.registry.pool().clone();

    let cases: [(&str, &str, bool, ErrorCode); 12] = [
        (
            "pause a paused key",
            &paused,
            true,
            ErrorCode::AlreadyPaused,
        ),
        ("resume an active key", &active, false, ErrorCode::NotPaused),
        (
            "pause a revoked key",
            &revoked,
            true,
            ErrorCode::AlreadyRevoked,
        ),
        (
            "resume a revoked key",
            &revoked,
            false,
            ErrorCode::AlreadyRevoked,
        ),
        (
            "resume a revoked paused key",
            &paused_then_revoked,
            false,
            ErrorCode::AlreadyRevoked,
        ),
        (
            "pause an expired key",
            &expired,
            true,
            ErrorCode::KeyExpired,
        ),
        (
            "resume an expired key",
            &expired,
            false,
            ErrorCode::NotPaused,
        ),
        (
            "pause an unknown id",
            "no-such-id",
            true,
            ErrorCode::NotFound,
        ),
        ("resume an empty id", "", false, ErrorCode::NotFound),
        (
            "pause with a control character",
            "id\u{7}",
            true,
            ErrorCode::NotFound,
        ),
        (
            "a Manager pauses the Owner's key",
            &active,
            true,
            ErrorCode::NotPermitted,
        ),
        (
            "a Manager resumes the Owner's key",
            &paused,
            false,
            ErrorCode::NotPermitted,
        ),
    ];
    for (what, id, pause, want) in cases {
        let actor = if what.starts_with("a Manager") {
            &manager
        } else {
            &o
        };
        let before = keysmith_core::testkit::fingerprint(&pool).await;
        let got = if pause {
            f.registry.pause_key(actor, id).await
        } else {
            f.registry.resume_key(actor, id).await
        };
        assert_eq!(got.map(|_| ()).map_err(|e| e.code()), Err(want), "{what}");
        assert_eq!(
            keysmith_core::testkit::fingerprint(&pool).await,
            before,
            "{what}"
        );
    }
    // A paused key is not rolled: a roll hands out a working secret.
    let before = keysmith_core::testkit::fingerprint(&pool).await;
    let err = f
        .registry
        .roll_key(&o, &paused, 3_600_000)
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::KeyPaused);
    assert_eq!(keysmith_core::testkit::fingerprint(&pool).await, before);
}

#[tokio::test]
async fn a_pause_lifted_or_set_outside_keysmith_is_refused() {
    let f = fixture().await;
    let o = owner(&f).await;
    let lifted = f.registry.generate_key(&o, "lifted").await.unwrap();
    f.registry.pause_key(&o, &lifted.summary.id).await.unwrap();
    let set = f.registry.generate_key(&o, "set").await.unwrap();
    let revoked = f.registry.generate_key(&o, "revoked").await.unwrap();
    f.registry
        .revoke_key(&o, &revoked.summary.id, "REVOKE")
        .await
        .unwrap();

    raw(
        &f,
        &format!(
            "UPDATE api_keys SET paused_at = NULL WHERE id = '{}'",
            lifted.summary.id
        ),
    )
    .await
    .unwrap();
    raw(
        &f,
        &format!(
            "UPDATE api_keys SET paused_at = 5 WHERE id = '{}'",
            set.summary.id
        ),
    )
    .await
    .unwrap();
    for g in [&lifted, &set] {
        let err = f.registry.verify(g.secret.expose()).await.unwrap_err();
        assert_eq!(err.code(), ErrorCode::StoreTampered, "{}", g.summary.name);
    }
    let list = f.registry.list_keys(&o).await.unwrap();
    for g in [&lifted, &set] {
        let k = list.iter().find(|k| k.id == g.summary.id).unwrap();
        assert_eq!(k.status, KeyStatus::Tampered, "{}", k.name);
    }
    // The schema refuses pausing or resuming a revoked key, whoever asks.
    let err = raw(
        &f,
        &format!(
            "UPDATE api_keys SET paused_at = 5 WHERE id = '{}'",
            revoked.summary.id
        ),
    )
    .await
    .unwrap_err();
    assert!(err.contains("cannot be paused or resumed"), "{err}");
}

/// A key's allowed source networks: canonical in the list and the reveal, kept by a roll,
/// fixed by the schema, and a list changed outside Keysmith (trigger dropped) no longer
/// matches the row's seal.
#[tokio::test]
async fn allowed_sources_are_kept_on_roll_and_sealed() {
    use keysmith_core::sources::AllowedSources;
    use keysmith_core::KeyLimits;

    let f = fixture().await;
    let o = owner(&f).await;
    let limits = KeyLimits {
        expires_in_ms: None,
        sources: AllowedSources::parse(&["2001:DB8::/32, 203.0.113.0/24", "198.51.100.7"]).unwrap(),
        rate_limit: None,
        scopes: None,
    };
    let g = f
        .registry
        .generate_key_limited(&o, "office", &limits)
        .await
        .unwrap();
    let want = ["2001:db8::/32", "203.0.113.0/24", "198.51.100.7/32"];
    assert_eq!(g.summary.allowed_sources, want);
    assert_eq!(g.reveal().key.allowed_sources, want);
    let open = f.registry.generate_key(&o, "anywhere").await.unwrap();
    assert!(open.summary.allowed_sources.is_empty());
    let rolled = f.registry.roll_key(&o, &g.summary.id, 0).await.unwrap();
    assert_eq!(
        rolled.summary.allowed_sources, want,
        "a roll keeps the list"
    );
    let list = f.registry.list_keys(&o).await.unwrap();
    for id in [&g.summary.id, &rolled.summary.id] {
        let k = list.iter().find(|k| &k.id == id).unwrap();
        assert_eq!(k.allowed_sources, want);
    }
    assert!(list
        .iter()
        .find(|k| k.id == open.summary.id)
        .unwrap()
        .allowed_sources
        .is_empty());
    // The audit entry says where the key works.
    let log = f
        .registry
        .audit_entries(&o, &keysmith_types::AuditFilter::default())
        .await
        .unwrap();
    assert!(
        log.iter().any(|e| e
            .detail
            .contains("only from 2001:db8::/32 203.0.113.0/24 198.51.100.7/32")),
        "{log:?}"
    );

    // Fixed for the key's life: the schema refuses any change.
    let id = &rolled.summary.id;
    for sql in [
        format!("UPDATE api_keys SET allowed_sources = NULL WHERE id = '{id}'"),
        format!("UPDATE api_keys SET allowed_sources = '0.0.0.0/0' WHERE id = '{id}'"),
        format!(
            "UPDATE api_keys SET allowed_sources = '10.0.0.0/8' WHERE id = '{}'",
            open.summary.id
        ),
    ] {
        let err = raw(&f, &sql).await.unwrap_err();
        assert!(err.contains("fixed for its life"), "{sql}: {err}");
    }
    assert!(f.registry.verify(rolled.secret.expose()).await.is_ok());
    // Past the trigger: the seal no longer matches, widened or narrowed.
    drop_key_trigger(&f, "api_keys_sources_fixed").await;
    raw(
        &f,
        &format!("UPDATE api_keys SET allowed_sources = '0.0.0.0/0 ::/0' WHERE id = '{id}'"),
    )
    .await
    .unwrap();
    raw(
        &f,
        &format!(
            "UPDATE api_keys SET allowed_sources = '127.0.0.1/32' WHERE id = '{}'",
            open.summary.id
        ),
    )
    .await
    .unwrap();
    for secret in [&rolled.secret, &open.secret] {
        let err = f.registry.verify(secret.expose()).await.unwrap_err();
        assert_eq!(err.code(), ErrorCode::StoreTampered);
    }
}

/// A key's rate limit: canonical in the summary, the reveal and the list, kept by a roll, in
/// the audit entry, fixed by the schema, and sealed: a limit raised or removed outside
/// Keysmith (trigger dropped) is refused as a changed row. A bad limit changes nothing.
#[tokio::test]
async fn rate_limits_are_kept_on_roll_and_sealed() {
    use keysmith_core::rate::RateLimit;
    use keysmith_core::KeyLimits;
    use keysmith_types::GenerateKeyRequest;

    let f = fixture().await;
    let o = owner(&f).await;
    // Bad limits from a request: each names the value, and no key or entry is written.
    let before_keys = f.registry.list_keys(&o).await.unwrap().len();
    let before_log = f
        .registry
        .audit_entries(&o, &keysmith_types::AuditFilter::default())
        .await
        .unwrap()
        .len();
    for (bad, named) in [
        ("0/s", "\"0/s\""),
        ("10/s burst 0", "\"10/s burst 0\""),
        ("10/hour", "\"10/hour\""),
        ("2000000/s", "\"2000000/s\""),
        ("lots", "\"lots\""),
    ] {
        let req = GenerateKeyRequest {
            name: "limited".into(),
            rate_limit: Some(bad.into()),
            ..Default::default()
        };
        let err = KeyLimits::from_request(&req, &Default::default()).unwrap_err();
        assert_eq!(err.code(), ErrorCode::InvalidRateLimit, "{bad}");
        assert!(err.to_string().contains(named), "{bad}: {err}");
    }
    assert_eq!(f.registry.list_keys(&o).await.unwrap().len(), before_keys);
    assert_eq!(
        f.registry
            .audit_entries(&o, &keysmith_types::AuditFilter::default())
            .await
            .unwrap()
            .len(),
        before_log
    );

    let req = GenerateKeyRequest {
        name: "metered".into(),
        rate_limit: Some(" 600 per minute, BURST 50 ".into()),
        ..Default::default()
    };
    let limits = KeyLimits::from_request(&req, &Default::default()).unwrap();
    assert_eq!(
        limits.rate_limit,
        RateLimit::parse("600/min burst 50").unwrap()
    );
    let g = f
        .registry
        .generate_key_limited(&o, "metered", &limits)
        .await
        .unwrap();
    let want = Some("600/min burst 50".to_owned());
    assert_eq!(g.summary.rate_limit, want);
    assert_eq!(g.reveal().key.rate_limit, want);
    let open = f.registry.generate_key(&o, "unmetered").await.unwrap();
    assert_eq!(open.summary.rate_limit, None);
    let rolled = f.registry.roll_key(&o, &g.summary.id, 0).await.unwrap();
    assert_eq!(rolled.summary.rate_limit, want, "a roll keeps the limit");
    let list = f.registry.list_keys(&o).await.unwrap();
    for id in [&g.summary.id, &rolled.summary.id] {
        assert_eq!(list.iter().find(|k| &k.id == id).unwrap().rate_limit, want);
    }
    assert_eq!(
        list.iter()
            .find(|k| k.id == open.summary.id)
            .unwrap()
            .rate_limit,
        None
    );
    let log = f
        .registry
        .audit_entries(&o, &keysmith_types::AuditFilter::default())
        .await
        .unwrap();
    assert!(
        log.iter()
            .any(|e| e.detail.contains("at most 600/min burst 50")),
        "{log:?}"
    );

    // Fixed for the key's life.
    let id = &rolled.summary.id;
    for sql in [
        format!("UPDATE api_keys SET rate_limit = NULL WHERE id = '{id}'"),
        format!("UPDATE api_keys SET rate_limit = '1000000/s burst 1000000' WHERE id = '{id}'"),
        format!(
            "UPDATE api_keys SET rate_limit = '1/min burst 1' WHERE id = '{}'",
            open.summary.id
        ),
    ] {
        let err = raw(&f, &sql).await.unwrap_err();
        assert!(
            err.contains("rate limit is fixed for its life"),
            "{sql}: {err}"
        );
    }
    assert!(f.registry.verify(rolled.secret.expose()).await.is_ok());
    // Past the trigger: raised, removed or added, the seal no longer matches.
    drop_key_trigger(&f, "api_keys_rate_limit_fixed").await;
    let g2 = f
        .registry
        .generate_key_limited(&o, "metered too", &limits)
        .await
        .unwrap();
    for sql in [
        format!("UPDATE api_keys SET rate_limit = '1000000/s burst 1000000' WHERE id = '{id}'"),
        format!(
            "UPDATE api_keys SET rate_limit = NULL WHERE id = '{}'",
            g2.summary.id
        ),
        format!(
            "UPDATE api_keys SET rate_limit = '600/min burst 50' WHERE id = '{}'",
            open.summary.id
        ),
    ] {
        raw(&f, &sql).await.unwrap();
    }
    for secret in [&rolled.secret, &g2.secret, &open.secret] {
        let err = f.registry.verify(secret.expose()).await.unwrap_err();
        assert_eq!(err.code(), ErrorCode::StoreTampered);
    }
}

const SCOPED_POLICY: &str = r#"
[[allow]]
role = "manager"
methods = ["GET", "POST"]
paths = ["/v1/**"]

[[scope]]
name = "reports:read"
description = "Read reports"
roles = ["owner", "admin", "manager"]
methods = ["GET", "HEAD"]
paths = ["/v1/reports/**"]

[[scope]]
name = "billing:write"
roles = ["owner"]
methods = ["POST"]
paths = ["/v1/billing"]
"#;

/// A key's scopes: checked against the policy's catalogue and the generating member's role
/// (a malformed, unknown or too-high scope is refused naming it, and nothing is written);
/// sorted in the summary, the reveal and the list; kept by a roll; in the audit entry; fixed
/// by the schema; and sealed: scopes removed or added outside Keysmith (trigger dropped) are
/// refused as a changed row.
#[tokio::test]
async fn scopes_are_checked_kept_on_roll_and_sealed() {
    use keysmith_core::policy::Policy;
    use keysmith_core::scope::ScopeCatalog;
    use keysmith_core::KeyLimits;
    use keysmith_types::GenerateKeyRequest;

    let catalog = ScopeCatalog::from_policy(&Policy::parse(SCOPED_POLICY, "p.toml").unwrap());
    let f = fixture().await;
    let o = owner(&f).await;
    let manager = insert_member(&f, "Max", Role::Manager).await;
    let request = |scopes: &[&str]| GenerateKeyRequest {
        name: "scoped".into(),
        scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
        ..Default::default()
    };
    let entries = || async {
        f.registry
            .audit_entries(&o, &keysmith_types::AuditFilter::default())
            .await
            .unwrap()
            .len()
    };
    let before_keys = f.registry.list_keys(&o).await.unwrap().len();
    let before_log = entries().await;
    let many: Vec<String> = (0..17).map(|i| format!("s{i}")).collect();
    let many: Vec<&str> = many.iter().map(String::as_str).collect();
    for (bad, named) in [
        (
            &["Reports:read"][..],
            "\"Reports:read\" must start with a lowercase letter",
        ),
        (&["reports:write"], "\"reports:write\" is not defined"),
        (&["reports read"], "\"reports read\" holds ' '"),
        (
            &["reports:read", "reports/read"],
            "\"reports/read\" holds '/'",
        ),
        (&["  "], "a scope name is empty"),
        (&["read-only\u{7}"], "holds '\\u{7}'"),
        (&many, "at most 16 scopes, not 17"),
    ] {
        let err = KeyLimits::from_request(&request(bad), &catalog).unwrap_err();
        assert_eq!(err.code(), ErrorCode::InvalidScope, "{bad:?}");
        assert!(err.to_string().contains(named), "{bad:?}: {err}");
    }
    // Only the built-in scope exists without a policy.
    let err =
        KeyLimits::from_request(&request(&["reports:read"]), &ScopeCatalog::builtin()).unwrap_err();
    assert_eq!(err.code(), ErrorCode::InvalidScope);
    // A Manager may not give what only the Owner may.
    let beyond =
        KeyLimits::from_request(&request(&["reports:read", "billing:write"]), &catalog).unwrap();
    let err = f
        .registry
        .generate_key_limited(&manager, "scoped", &beyond)
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::ScopeBeyondRole);
    assert_eq!(
        err.to_string(),
        "scope \"billing:write\" is beyond the Manager role: only Owner may give it to a key"
    );
    assert_eq!(f.registry.list_keys(&o).await.unwrap().len(), before_keys);
    assert_eq!(entries().await, before_log, "nothing was written");
    // The Owner may.
    let billing = f
        .registry
        .generate_key_limited(&o, "billing", &beyond)
        .await
        .unwrap();
    assert_eq!(billing.summary.scopes, ["billing:write", "reports:read"]);

    let limits = KeyLimits::from_request(
        &request(&[" reports:read", "read-only", "reports:read "]),
        &catalog,
    )
    .unwrap();
    let g = f
        .registry
        .generate_key_limited(&manager, "reports", &limits)
        .await
        .unwrap();
    let want = ["read-only", "reports:read"];
    assert_eq!(g.summary.scopes, want);
    assert_eq!(g.reveal().key.scopes, want);
    let open = f
        .registry
        .generate_key(&manager, "whole role")
        .await
        .unwrap();
    assert!(open.summary.scopes.is_empty());
    let rolled = f
        .registry
        .roll_key(&manager, &g.summary.id, 0)
        .await
        .unwrap();
    assert_eq!(rolled.summary.scopes, want, "a roll keeps the scopes");
    let list = f.registry.list_keys(&o).await.unwrap();
    for id in [&g.summary.id, &rolled.summary.id] {
        assert_eq!(list.iter().find(|k| &k.id == id).unwrap().scopes, want);
    }
    assert!(list
        .iter()
        .find(|k| k.id == open.summary.id)
        .unwrap()
        .scopes
        .is_empty());
    let log = f
        .registry
        .audit_entries(&o, &keysmith_types::AuditFilter::default())
        .await
        .unwrap();
    assert!(
        log.iter()
            .any(|e| e.detail.contains("scopes read-only, reports:read")),
        "{log:?}"
    );

    // Fixed for the key's life.
    let id = &rolled.summary.id;
    for sql in [
        format!("UPDATE api_keys SET scopes = NULL WHERE id = '{id}'"),
        format!("UPDATE api_keys SET scopes = 'billing:write' WHERE id = '{id}'"),
        format!(
            "UPDATE api_keys SET scopes = 'read-only' WHERE id = '{}'",
            open.summary.id
        ),
    ] {
        let err = raw(&f, &sql).await.unwrap_err();
        assert!(
            err.contains("scopes are fixed for its life"),
            "{sql}: {err}"
        );
    }
    assert!(f.registry.verify(rolled.secret.expose()).await.is_ok());
    // Past the trigger: widened, removed or added, the seal no longer matches.
    drop_key_trigger(&f, "api_keys_scopes_fixed").await;
    for sql in [
        format!("UPDATE api_keys SET scopes = NULL WHERE id = '{id}'"),
        format!(
            "UPDATE api_keys SET scopes = 'reports:read' WHERE id = '{}'",
            billing.summary.id
        ),
        format!(
            "UPDATE api_keys SET scopes = 'read-only' WHERE id = '{}'",
            open.summary.id
        ),
    ] {
        raw(&f, &sql).await.unwrap();
    }
    for secret in [&rolled.secret, &billing.secret, &open.secret] {
        let err = f.registry.verify(secret.expose()).await.unwrap_err();
        assert_eq!(err.code(), ErrorCode::StoreTampered);
    }
}
