//! The verifier on a real SQLite file: every status × role × allowed/refused path, changes made
//! through another connection seen on the very next check, expiry and rolling, batched
//! last-used, and the pepper file.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use keysmith_core::clock::{Clock, SystemClock};
use keysmith_core::digest::{Pepper, PepperFileError};
use keysmith_core::policy::Policy;
use keysmith_core::testkit::{team_registry, Team};
use keysmith_core::verifier::{Denial, Target, Verifier};
use keysmith_core::{store, ApiKeySecret, Error, Registry};
use keysmith_types::{KeyStatus, Role};

const POLICY: &str = r#"
[[allow]]
role = "owner"
methods = ["*"]
paths = ["/**"]

[[allow]]
role = "admin"
methods = ["*"]
paths = ["/v1/**"]

[[allow]]
role = "manager"
methods = ["GET"]
paths = ["/v1/reports/**"]
"#;

/// A clock the test moves; starts at the system time.
struct Settable(AtomicI64);
impl Clock for Settable {
    fn now_ms(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

struct Fixture {
    dir: keysmith_core::testkit::TestDb,
    registry: Registry,
    team: Team,
    clock: Arc<Settable>,
    verifier: Verifier,
}

async fn fixture() -> Fixture {
    let (dir, registry, team) = team_registry().await;
    let clock = Arc::new(Settable(AtomicI64::new(SystemClock.now_ms())));
    let verifier = Verifier::with_clock(
        &dir.path().join(store::DB_FILE),
        registry.verifier_pepper().await.unwrap(),
        Some(Policy::parse(POLICY, "policy.toml").unwrap()),
        clock.clone(),
    )
    .unwrap();
    Fixture {
        dir,
        registry,
        team,
        clock,
        verifier,
    }
}

/// A key generated now by the first member of `role`, shown once.
async fn key_of(f: &Fixture, role: Role) -> (String, String) {
    let g = f
        .registry
        .generate_key(&f.team.get(role, false).id, "probe")
        .await
        .unwrap();
    (g.secret.expose().to_owned(), g.summary.id)
}

fn get<'a>(uri: &'a str) -> Option<Target<'a>> {
    Some(Target {
        method: "GET",
        uri,
        client: None,
    })
}

#[tokio::test]
async fn decision_table_status_by_role_by_path() {
    let f = fixture().await;
    let paths = [
        ("GET", "/v1/reports/2026?page=2"),
        ("POST", "/v1/reports/2026"),
        ("GET", "/v1/keys"),
        ("DELETE", "/admin"),
    ];
    let allowed = |role: Role, i: usize| match role {
        Role::Owner => true,
        Role::Admin => i < 3,
        Role::Manager => i == 0,
        _ => false,
    };
    let mut cells = 0;
    for role in [Role::Owner, Role::Admin, Role::Manager] {
        let (active, active_id) = key_of(&f, role).await;
        let (revoked, revoked_id) = key_of(&f, role).await;
        let owner = &f.team.get(Role::Owner, false).id;
        f.registry
            .revoke_key(owner, &revoked_id, "REVOKE")
            .await
            .unwrap();
        let expiring = f
            .registry
            .generate_key_expiring(&f.team.get(role, false).id, "short", Some(60_000))
            .await
            .unwrap();
        for (i, (method, uri)) in paths.iter().enumerate() {
            let target = Some(Target {
                method,
                uri,
                client: None,
            });
            let got = f.verifier.check(Some(&active), target);
            if allowed(role, i) {
                let grant = got.unwrap();
                assert_eq!(grant.key_id, active_id);
                assert_eq!(grant.role, role);
                assert_eq!(&*grant.member_id, f.team.get(role, false).id.as_str());
            } else {
                assert_eq!(
                    got,
                    Err(Denial::RoleRefused {
                        key_id: active_id.clone(),
                        role
                    }),
                    "{role:?} {method} {uri}"
                );
                assert_eq!(got.unwrap_err().http_status(), 403);
            }
            let got = f.verifier.check(Some(&revoked), target);
            assert_eq!(
                got,
                Err(Denial::Revoked {
                    key_id: revoked_id.clone()
                })
            );
            assert_eq!(got.unwrap_err().http_status(), 401);
            // Still inside its lifetime, then past it.
            assert_eq!(
                f.verifier
                    .check(Some(expiring.secret.expose()), target)
                    .is_ok(),
                allowed(role, i)
            );
            f.clock.0.fetch_add(61_000, Ordering::SeqCst);
            let got = f.verifier.check(Some(expiring.secret.expose()), target);
            assert_eq!(
                got,
                Err(Denial::Expired {
                    key_id: expiring.summary.id.clone()
                })
            );
            f.clock.0.fetch_sub(61_000, Ordering::SeqCst);
            let stranger = ApiKeySecret::generate().unwrap();
            assert_eq!(
                f.verifier.check(Some(stranger.expose()), target),
                Err(Denial::UnknownKey)
            );
            cells += 4;
        }
    }
    // Keys of Authors and Viewers (generated while their creator was a Manager) follow the
    // creator's current role: the policy gives those roles nothing.
    let (key, id) = key_of(&f, Role::Manager).await;
    let manager = &f.team.get(Role::Manager, false).id;
    let owner = &f.team.get(Role::Owner, false).id;
    f.registry
        .change_role(owner, manager, Role::Author)
        .await
        .unwrap();
    assert_eq!(
        f.verifier.check(Some(&key), get("/v1/reports/x")),
        Err(Denial::RoleRefused {
            key_id: id,
            role: Role::Author
        })
    );
    assert!(cells >= 48);
}

#[tokio::test]
async fn missing_malformed_and_bad_requests_are_told_apart() {
    let f = fixture().await;
    let (key, _) = key_of(&f, Role::Owner).await;
    assert_eq!(f.verifier.check(None, get("/")), Err(Denial::MissingKey));
    let mut typo = key.clone();
    typo.replace_range(10..11, if &key[10..11] == "a" { "b" } else { "a" });
    for bad in [
        "",
        "ksk_short",
        "Bearer x",
        typo.as_str(),
        &key[..key.len() - 1],
    ] {
        let got = f.verifier.check(Some(bad), get("/"));
        assert!(matches!(got, Err(Denial::MalformedKey(_))), "{got:?}");
        assert_eq!(got.unwrap_err().http_status(), 401);
    }
    for uri in ["/v1/../admin", "relative", "/a%2Fb", ""] {
        let got = f.verifier.check(Some(&key), get(uri));
        assert!(matches!(got, Err(Denial::BadRequest(_))), "{uri}: {got:?}");
        assert_eq!(got.unwrap_err().http_status(), 400);
    }
    // Without a target, only the key's status is checked.
    assert!(f.verifier.check(Some(&key), None).is_ok());
}

#[tokio::test]
async fn a_pause_and_a_resume_are_seen_on_the_next_check() {
    let f = fixture().await;
    let owner = f.team.get(Role::Owner, false).id.clone();
    let manager = f.team.get(Role::Manager, false).id.clone();
    let (key, id) = key_of(&f, Role::Manager).await;
    assert!(f.verifier.check(Some(&key), get("/v1/reports/a")).is_ok());
    // The creator pauses it: refused (401, with the key id for the log) on the next check.
    f.registry.pause_key(&manager, &id).await.unwrap();
    let got = f.verifier.check(Some(&key), get("/v1/reports/a"));
    assert_eq!(got, Err(Denial::Paused { key_id: id.clone() }));
    assert_eq!(got.unwrap_err().http_status(), 401);
    // Paused outranks nothing: an unreadable request is still 400, an unknown key 401.
    assert!(matches!(
        f.verifier.check(Some(&key), get("/a%2Fb")),
        Err(Denial::BadRequest(_))
    ));
    // The Owner resumes it: allowed on the next check, with the creator's role.
    f.registry.resume_key(&owner, &id).await.unwrap();
    assert_eq!(
        f.verifier
            .check(Some(&key), get("/v1/reports/a"))
            .unwrap()
            .role,
        Role::Manager
    );
    // A verifier opened while the key is paused refuses it from the start.
    f.registry.pause_key(&owner, &id).await.unwrap();
    let fresh = Verifier::with_clock(
        &f.dir.path().join(store::DB_FILE),
        f.registry.verifier_pepper().await.unwrap(),
        None,
        f.clock.clone(),
    )
    .unwrap();
    assert_eq!(
        fresh.check(Some(&key), None),
        Err(Denial::Paused { key_id: id })
    );
}

#[tokio::test]
async fn changes_by_another_connection_are_seen_on_the_next_check() {
    let f = fixture().await;
    let owner = f.team.get(Role::Owner, false).id.clone();
    // A key generated after the verifier opened.
    let (key, id) = key_of(&f, Role::Manager).await;
    assert!(f.verifier.check(Some(&key), get("/v1/reports/a")).is_ok());
    // Revoked through the app's pool: refused on the very next check.
    f.registry.revoke_key(&owner, &id, "REVOKE").await.unwrap();
    assert_eq!(
        f.verifier.check(Some(&key), get("/v1/reports/a")),
        Err(Denial::Revoked { key_id: id })
    );
    // A role change and a removal, likewise.
    let (key, id) = key_of(&f, Role::Manager).await;
    let manager = f.team.get(Role::Manager, false).id.clone();
    f.registry
        .change_role(&owner, &manager, Role::Admin)
        .await
        .unwrap();
    assert_eq!(
        f.verifier.check(Some(&key), get("/v1/keys")).unwrap().role,
        Role::Admin
    );
    let admin2 = f.team.get(Role::Admin, true).clone();
    let admin2_key = f.registry.generate_key(&admin2.id, "doomed").await.unwrap();
    assert!(f
        .verifier
        .check(Some(admin2_key.secret.expose()), None)
        .is_ok());
    f.registry
        .remove_member(&owner, &admin2.id, "REMOVE")
        .await
        .unwrap();
    assert!(matches!(
        f.verifier.check(Some(admin2_key.secret.expose()), None),
        Err(Denial::Revoked { .. })
    ));
    assert!(f.verifier.check(Some(&key), None).is_ok(), "{id}");
    // A second verifier opened now agrees with the first.
    let again = Verifier::open(
        &f.dir.path().join(store::DB_FILE),
        f.registry.verifier_pepper().await.unwrap(),
        None,
    )
    .unwrap();
    assert_eq!(again.key_count(), f.verifier.key_count());
}

#[tokio::test]
async fn without_the_wal_index_data_version_alone_sees_every_commit() {
    let mut f = fixture().await;
    f.verifier = Verifier::open(
        &f.dir.path().join(store::DB_FILE),
        f.registry.verifier_pepper().await.unwrap(),
        None,
    )
    .unwrap()
    .without_change_notification();
    let owner = f.team.get(Role::Owner, false).id.clone();
    for _ in 0..3 {
        let (key, id) = key_of(&f, Role::Admin).await;
        assert!(f.verifier.check(Some(&key), None).is_ok());
        f.registry.revoke_key(&owner, &id, "REVOKE").await.unwrap();
        assert_eq!(
            f.verifier.check(Some(&key), None),
            Err(Denial::Revoked { key_id: id })
        );
    }
}

#[tokio::test]
async fn rolled_key_works_through_the_grace_period_then_expires() {
    let f = fixture().await;
    let manager = f.team.get(Role::Manager, false).id.clone();
    let old = f
        .registry
        .generate_key_expiring(&manager, "billing", Some(30 * 86_400_000))
        .await
        .unwrap();
    let grace = 3_600_000;
    let new = f
        .registry
        .roll_key(&manager, &old.summary.id, grace)
        .await
        .unwrap();
    assert_eq!(new.summary.name, "billing");
    assert_eq!(
        new.summary.expires_at, old.summary.expires_at,
        "a roll replaces the secret, it never extends the key's life"
    );
    let listed = f.registry.list_keys(&manager).await.unwrap();
    let old_row = listed.iter().find(|k| k.id == old.summary.id).unwrap();
    assert_eq!(
        old_row.replaced_by.as_deref(),
        Some(new.summary.id.as_str())
    );
    assert_eq!(old_row.status, KeyStatus::Active);
    let until = old_row.expires_at.unwrap();
    assert!((until - (SystemClock.now_ms() + grace)).abs() < 10_000);

    assert!(f.verifier.check(Some(old.secret.expose()), None).is_ok());
    assert!(f.verifier.check(Some(new.secret.expose()), None).is_ok());
    f.clock.0.store(until, Ordering::SeqCst);
    assert_eq!(
        f.verifier.check(Some(old.secret.expose()), None),
        Err(Denial::Expired {
            key_id: old.summary.id.clone()
        })
    );
    assert!(f.verifier.check(Some(new.secret.expose()), None).is_ok());

    // A key is rolled once; a grace period is 0 to 90 days.
    assert!(matches!(
        f.registry.roll_key(&manager, &old.summary.id, grace).await,
        Err(Error::AlreadyReplaced)
    ));
    assert!(matches!(
        f.registry
            .roll_key(&manager, &new.summary.id, 91 * 86_400_000)
            .await,
        Err(Error::InvalidDuration(_))
    ));
    assert!(matches!(
        f.registry.roll_key(&manager, &new.summary.id, -1).await,
        Err(Error::InvalidDuration(_))
    ));
    // Grace 0 ends the old key now.
    let third = f
        .registry
        .roll_key(&manager, &new.summary.id, 0)
        .await
        .unwrap();
    f.clock.0.store(SystemClock.now_ms(), Ordering::SeqCst);
    assert!(matches!(
        f.verifier.check(Some(new.secret.expose()), None),
        Err(Denial::Expired { .. })
    ));
    assert!(f.verifier.check(Some(third.secret.expose()), None).is_ok());
    // Another Manager may not roll this one's key; lifetimes are bounded.
    let other = f.team.get(Role::Manager, true).id.clone();
    assert!(matches!(
        f.registry.roll_key(&other, &third.summary.id, grace).await,
        Err(Error::NotPermitted(_))
    ));
    assert!(matches!(
        f.registry
            .generate_key_expiring(&manager, "x", Some(59_000))
            .await,
        Err(Error::InvalidDuration(_))
    ));
}

#[tokio::test]
async fn last_use_is_written_in_batches() {
    let f = fixture().await;
    let (key, id) = key_of(&f, Role::Owner).await;
    let owner = f.team.get(Role::Owner, false).id.clone();
    let last_used = |keys: Vec<keysmith_types::KeySummary>| {
        keys.into_iter().find(|k| k.id == id).unwrap().last_used_at
    };
    for _ in 0..100 {
        f.verifier.check(Some(&key), None).unwrap();
    }
    assert_eq!(
        last_used(f.registry.list_keys(&owner).await.unwrap()),
        None,
        "no write per check"
    );
    assert_eq!(f.verifier.flush_last_used().unwrap(), 1);
    assert_eq!(
        last_used(f.registry.list_keys(&owner).await.unwrap()),
        Some(f.clock.now_ms())
    );
    assert_eq!(f.verifier.flush_last_used().unwrap(), 0);
}

#[tokio::test]
async fn pepper_file_is_owner_only_0600_and_round_trips() {
    use std::os::unix::fs::PermissionsExt;
    let f = fixture().await;
    let file = f.dir.path().join("pepper");
    let admin = f.team.get(Role::Admin, false).id.clone();
    assert!(matches!(
        f.registry.export_pepper(&admin, &file).await,
        Err(Error::NotPermitted(_))
    ));
    assert!(!file.exists());
    let owner = f.team.get(Role::Owner, false).id.clone();
    f.registry.export_pepper(&owner, &file).await.unwrap();
    let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let read = Pepper::read_file(&file).unwrap();
    assert_eq!(
        read.as_bytes(),
        f.registry.verifier_pepper().await.unwrap().as_bytes()
    );
    // Never overwritten; audited.
    assert!(matches!(
        f.registry.export_pepper(&owner, &file).await,
        Err(Error::PepperFile(PepperFileError::Io(..)))
    ));
    let audit = f
        .registry
        .audit_entries(&owner, &Default::default())
        .await
        .unwrap();
    assert_eq!(
        audit
            .iter()
            .filter(|e| e.action == "pepper_exported")
            .count(),
        1
    );
    // Readable by others: refused. Not hex: refused, without echoing the content.
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    assert!(matches!(
        Pepper::read_file(&file),
        Err(PepperFileError::Mode(_, 0o644))
    ));
    let junk = f.dir.path().join("junk");
    std::fs::write(&junk, "not-a-pepper-secretish").unwrap();
    std::fs::set_permissions(&junk, std::fs::Permissions::from_mode(0o600)).unwrap();
    let e = Pepper::read_file(&junk).unwrap_err();
    assert!(matches!(e, PepperFileError::Content(_)));
    assert!(!e.to_string().contains("secretish"));
    // A pepper of another account is refused at open, not key by key.
    assert!(matches!(
        Verifier::open(
            &f.dir.path().join(store::DB_FILE),
            Pepper::generate().unwrap(),
            None
        ),
        Err(keysmith_core::verifier::VerifierError::WrongPepper)
    ));
}

/// How a revocation reaches the database in [`zero_staleness_for_every_writer`].
#[derive(Debug, Clone, Copy)]
enum Writer {
    /// The app's and the CLI's path: the registry's sqlx pool (synchronous = NORMAL).
    Registry,
    /// Another program's connection with the given `synchronous` setting.
    Rusqlite(&'static str),
    /// A `sqlite3` shell (Debian's package), with the given `synchronous` setting.
    Shell(&'static str),
}

/// The issue's input: a writer committing with synchronous = FULL made the verifier miss the
/// commit (the change was announced before it became visible). The kind: any writer, any
/// durability setting, while checks run concurrently: once the revoking write has returned,
/// no check allows the key, and a key inserted by any writer is allowed at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zero_staleness_for_every_writer() {
    let f = fixture().await;
    let verifier = Arc::new(f.verifier);
    let db = f.dir.path().join(store::DB_FILE);
    let owner = f.team.get(Role::Owner, false).id.clone();
    // A second verifier keeps checking an unrelated key all the time, so commits land while
    // checks (and their change detection) are in flight.
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (busy_key, _) = {
        let g = f.registry.generate_key(&owner, "busy").await.unwrap();
        (g.secret.expose().to_owned(), g.summary.id)
    };
    let hammer = {
        let (v, stop, key) = (Arc::clone(&verifier), Arc::clone(&stop), busy_key.clone());
        std::thread::spawn(move || {
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let _ = v.check(Some(&key), None);
                n += 1;
            }
            n
        })
    };
    let writers = [
        Writer::Registry,
        Writer::Rusqlite("FULL"),
        Writer::Rusqlite("NORMAL"),
        Writer::Rusqlite("EXTRA"),
        Writer::Shell("FULL"),
        Writer::Shell("NORMAL"),
    ];
    let mut stale = Vec::new();
    for writer in writers {
        for round in 0..25 {
            let g = f.registry.generate_key(&owner, "probe").await.unwrap();
            let key = g.secret.expose().to_owned();
            if verifier.check(Some(&key), None).is_err() {
                stale.push(format!("{writer:?} round {round}: a new key was refused"));
            }
            let now = SystemClock.now_ms();
            match writer {
                Writer::Registry => {
                    f.registry
                        .revoke_key(&owner, &g.summary.id, "REVOKE")
                        .await
                        .unwrap();
                }
                Writer::Rusqlite(sync) => {
                    let conn = rusqlite::Connection::open(&db).unwrap();
                    conn.busy_timeout(std::time::Duration::from_secs(5))
                        .unwrap();
                    conn.execute_batch(&format!("PRAGMA synchronous = {sync};"))
                        .unwrap();
                    conn.execute(
                        "UPDATE api_keys SET revoked_at = ?1 WHERE id = ?2",
                        rusqlite::params![now, g.summary.id],
                    )
                    .unwrap();
                }
                Writer::Shell(sync) => {
                    let out = std::process::Command::new("sqlite3")
                        .args(["-bail", "-cmd", ".timeout 5000"])
                        .arg(&db)
                        .arg(format!(
                            "PRAGMA synchronous = {sync}; UPDATE api_keys SET revoked_at = {now} WHERE id = '{}';",
                            g.summary.id
                        ))
                        .output()
                        .expect("sqlite3 (Debian package sqlite3; scripts/setup.sh installs it)");
                    assert!(
                        out.status.success(),
                        "{}",
                        String::from_utf8_lossy(&out.stderr)
                    );
                }
            }
            // The write has returned: the very next check refuses the key.
            if verifier.check(Some(&key), None).is_ok() {
                stale.push(format!(
                    "{writer:?} round {round}: a revoked key was allowed"
                ));
            }
        }
    }
    stop.store(true, Ordering::Relaxed);
    let checks = hammer.join().unwrap();
    assert!(checks > 100, "the concurrent checker ran ({checks} checks)");
    assert!(stale.is_empty(), "stale answers:\n{}", stale.join("\n"));
}

/// A key limited to networks: allowed from inside them (IPv4-mapped clients too), refused
/// (403, naming the key id and the client) from outside and when the client is unknown; its
/// replacement after a roll carries the same limits. A status-only check (no target) does
/// not look at addresses.
#[tokio::test]
async fn source_networks_limit_where_a_key_works() {
    use keysmith_core::sources::AllowedSources;
    use keysmith_core::KeyLimits;
    use std::net::IpAddr;

    let f = fixture().await;
    let manager = f.team.get(Role::Manager, false).id.clone();
    let g = f
        .registry
        .generate_key_limited(
            &manager,
            "office",
            &KeyLimits {
                sources: AllowedSources::parse(&["203.0.113.0/24", "2001:db8::/32"]).unwrap(),
                ..KeyLimits::default()
            },
        )
        .await
        .unwrap();
    let from = |client: Option<&str>| Target {
        method: "GET",
        uri: "/v1/reports/7",
        client: client.map(|c| c.parse::<IpAddr>().unwrap()),
    };
    let id = g.summary.id.clone();
    let check = |key: &str, client: Option<&str>| f.verifier.check(Some(key), Some(from(client)));
    let key = g.secret.expose();
    for client in [
        "203.0.113.1",
        "203.0.113.254",
        "::ffff:203.0.113.9",
        "2001:db8::42",
    ] {
        assert!(check(key, Some(client)).is_ok(), "{client}");
    }
    for client in ["203.0.114.1", "10.0.0.1", "2001:db9::1", "::1"] {
        let got = check(key, Some(client));
        assert_eq!(
            got,
            Err(Denial::SourceRefused {
                key_id: id.clone(),
                client: Some(client.parse().unwrap())
            }),
            "{client}"
        );
        let denial = got.unwrap_err();
        assert_eq!(denial.http_status(), 403);
        assert_eq!(
            denial.to_string(),
            format!("API key {id} may not be used from {client}")
        );
    }
    assert_eq!(
        check(key, None).unwrap_err().to_string(),
        format!("API key {id} may not be used from an unknown address")
    );
    // The address is checked after the status (a paused key stays 401) and before the
    // policy (a path the role may not call from outside is 403 for the address).
    f.registry.pause_key(&manager, &id).await.unwrap();
    assert!(matches!(
        check(key, Some("10.0.0.1")),
        Err(Denial::Paused { .. })
    ));
    f.registry.resume_key(&manager, &id).await.unwrap();
    let delete = Target {
        method: "DELETE",
        uri: "/v1/reports/7",
        client: Some("203.0.113.1".parse().unwrap()),
    };
    assert!(matches!(
        f.verifier.check(Some(key), Some(delete)),
        Err(Denial::RoleRefused { .. })
    ));
    // No target: a status check only.
    assert!(f.verifier.check(Some(key), None).is_ok());
    // A roll keeps the limits.
    let next = f.registry.roll_key(&manager, &id, 0).await.unwrap();
    let next_key = next.secret.expose();
    assert!(check(next_key, Some("203.0.113.1")).is_ok());
    assert!(matches!(
        check(next_key, Some("198.51.100.1")),
        Err(Denial::SourceRefused { .. })
    ));
    // A key without a list works from anywhere, and from an unknown client.
    let (open, _) = key_of(&f, Role::Manager).await;
    assert!(check(&open, None).is_ok());
    assert!(check(&open, Some("198.51.100.1")).is_ok());
}

/// A rate-limited key: its burst is allowed at once, the next request is refused (429, naming
/// the key id and the limit, with a wait of at most one period); only requests that passed
/// every other check count (a refused role, a paused key and a status-only check take
/// nothing); a pause and resume does not refill the bucket; other keys and the replacement
/// after a roll have buckets of their own, with the same limit. The limit is one request a
/// minute, so nothing is replenished while the test runs.
#[tokio::test]
async fn a_rate_limit_refuses_requests_beyond_the_burst() {
    use keysmith_core::rate::RateLimit;
    use keysmith_core::KeyLimits;
    use std::time::Duration;

    let f = fixture().await;
    let manager = f.team.get(Role::Manager, false).id.clone();
    let limit = RateLimit::parse("1/min burst 3").unwrap().unwrap();
    let limits = KeyLimits {
        rate_limit: Some(limit),
        ..KeyLimits::default()
    };
    let generate = |name: &'static str| {
        let limits = limits.clone();
        let manager = manager.clone();
        let registry = &f.registry;
        async move {
            registry
                .generate_key_limited(&manager, name, &limits)
                .await
                .unwrap()
        }
    };
    let g = generate("metered").await;
    let other = generate("metered too").await;
    let id = g.summary.id.clone();
    let key = g.secret.expose();
    let read = get("/v1/reports/7");
    let delete = Some(Target {
        method: "DELETE",
        uri: "/v1/reports/7",
        client: None,
    });
    // Refusals for other reasons and status-only checks take nothing from the bucket.
    for _ in 0..5 {
        assert!(matches!(
            f.verifier.check(Some(key), delete),
            Err(Denial::RoleRefused { .. })
        ));
        assert!(f.verifier.check(Some(key), None).is_ok());
    }
    f.registry.pause_key(&manager, &id).await.unwrap();
    for _ in 0..5 {
        assert!(matches!(
            f.verifier.check(Some(key), read),
            Err(Denial::Paused { .. })
        ));
    }
    f.registry.resume_key(&manager, &id).await.unwrap();
    for i in 0..3 {
        assert!(f.verifier.check(Some(key), read).is_ok(), "request {i}");
    }
    let refused = f.verifier.check(Some(key), read).unwrap_err();
    let Denial::RateLimited {
        key_id,
        limit: shown,
        retry_after,
    } = &refused
    else {
        panic!("{refused:?}");
    };
    assert_eq!(key_id, &id);
    assert_eq!(shown, &limit);
    assert!(
        *retry_after > Duration::ZERO && *retry_after <= Duration::from_secs(60),
        "{retry_after:?}"
    );
    assert_eq!(refused.http_status(), 429);
    let secs = refused.retry_after_secs().unwrap();
    assert!((1..=60).contains(&secs), "{secs}");
    assert_eq!(
        refused.to_string(),
        format!("API key {id} is over its rate limit of 1/min burst 3; retry in {secs} s")
    );
    assert_eq!(refused.key_id(), Some(id.as_str()));
    // A pause and resume reloads the key, but does not hand out a fresh burst.
    f.registry.pause_key(&manager, &id).await.unwrap();
    f.registry.resume_key(&manager, &id).await.unwrap();
    assert!(matches!(
        f.verifier.check(Some(key), read),
        Err(Denial::RateLimited { .. })
    ));
    // Another key with the same limit has its own bucket; so does the replacement.
    for _ in 0..3 {
        assert!(f.verifier.check(Some(other.secret.expose()), read).is_ok());
    }
    let next = f.registry.roll_key(&manager, &id, 60_000).await.unwrap();
    assert_eq!(next.summary.rate_limit.as_deref(), Some("1/min burst 3"));
    for _ in 0..3 {
        assert!(f.verifier.check(Some(next.secret.expose()), read).is_ok());
    }
    assert!(matches!(
        f.verifier.check(Some(next.secret.expose()), read),
        Err(Denial::RateLimited { .. })
    ));
    // The old key, still in its grace period, is still over its own limit.
    assert!(matches!(
        f.verifier.check(Some(key), read),
        Err(Denial::RateLimited { .. })
    ));
    // A key without a limit is never rate-limited.
    let (open, _) = key_of(&f, Role::Manager).await;
    for _ in 0..50 {
        assert!(f.verifier.check(Some(&open), read).is_ok());
    }
}

const SCOPED_POLICY: &str = r#"
[[allow]]
role = "owner"
methods = ["*"]
paths = ["/**"]

[[allow]]
role = "manager"
methods = ["GET"]
paths = ["/v1/reports/**"]

[[allow]]
role = "manager"
methods = ["POST"]
paths = ["/v1/orders"]

[[scope]]
name = "reports:read"
roles = ["owner", "admin", "manager"]
methods = ["GET", "HEAD"]
paths = ["/v1/reports/**"]

[[scope]]
name = "orders:create"
roles = ["owner", "admin", "manager"]
methods = ["POST"]
paths = ["/v1/orders"]

[[scope]]
name = "admin:all"
roles = ["owner"]
methods = ["*"]
paths = ["/admin/**"]
"#;

/// A key with scopes gets the intersection of its creator's current role and its scopes:
/// each (key, method, path) cell below, then the creator demoted (the role caps the scopes
/// at once), and a scope this verifier's policy does not define (it covers nothing).
#[tokio::test]
async fn scopes_narrow_a_key_to_the_intersection_with_its_creators_current_role() {
    use keysmith_core::scope::ScopeCatalog;
    use keysmith_core::KeyLimits;
    use keysmith_types::GenerateKeyRequest;

    let (dir, registry, team) = team_registry().await;
    let policy = Policy::parse(SCOPED_POLICY, "policy.toml").unwrap();
    let catalog = ScopeCatalog::from_policy(&policy);
    let verifier = Verifier::open(
        &dir.path().join(store::DB_FILE),
        registry.verifier_pepper().await.unwrap(),
        Some(policy),
    )
    .unwrap();
    let owner = team.get(Role::Owner, false).id.clone();
    let manager = team.get(Role::Manager, false).id.clone();
    let scoped = |member: &str, scopes: &[&str], catalog: &ScopeCatalog| {
        let limits = KeyLimits::from_request(
            &GenerateKeyRequest {
                name: "scoped".into(),
                scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
                ..Default::default()
            },
            catalog,
        )
        .unwrap();
        let member = member.to_owned();
        let registry = &registry;
        async move {
            registry
                .generate_key_limited(&member, "scoped", &limits)
                .await
                .unwrap()
        }
    };
    let reports = scoped(&manager, &["reports:read"], &catalog).await;
    let read_only = scoped(&manager, &["read-only"], &catalog).await;
    let both = scoped(&manager, &["orders:create", "reports:read"], &catalog).await;
    let whole = scoped(&manager, &[], &catalog).await;
    let owner_read = scoped(&owner, &["read-only"], &catalog).await;
    let owner_admin = scoped(&owner, &["admin:all"], &catalog).await;

    const A: &str = "allowed";
    const R: &str = "role";
    const S: &str = "scope";
    let requests = [
        ("GET", "/v1/reports/7"),
        ("HEAD", "/v1/reports/7"),
        ("POST", "/v1/orders"),
        ("GET", "/v1/keys"),
        ("DELETE", "/admin/users/3"),
        ("GET", "/admin/users"),
    ];
    let table: [(&str, &keysmith_core::Generated, [&str; 6]); 6] = [
        ("manager, reports:read", &reports, [A, R, S, R, R, R]),
        ("manager, read-only", &read_only, [A, R, S, R, R, R]),
        ("manager, both", &both, [A, R, A, R, R, R]),
        ("manager, whole role", &whole, [A, R, A, R, R, R]),
        ("owner, read-only", &owner_read, [A, A, S, A, S, A]),
        ("owner, admin:all", &owner_admin, [S, S, S, S, A, A]),
    ];
    for (label, key, want) in &table {
        for ((method, uri), want) in requests.iter().zip(want) {
            let target = Some(Target {
                method,
                uri,
                client: None,
            });
            let got = match verifier.check(Some(key.secret.expose()), target) {
                Ok(_) => A,
                Err(Denial::RoleRefused { .. }) => R,
                Err(Denial::ScopeRefused { key_id, scopes }) => {
                    assert_eq!(key_id, key.summary.id);
                    assert_eq!(scopes.to_string(), key.summary.scopes.join(", "));
                    S
                }
                Err(other) => panic!("{label} {method} {uri}: {other}"),
            };
            assert_eq!(got, *want, "{label}: {method} {uri}");
        }
        // A status-only check (`keysmith verify`) has no endpoint for scopes to cover.
        assert!(verifier.check(Some(key.secret.expose()), None).is_ok());
    }
    let refused = verifier
        .check(
            Some(reports.secret.expose()),
            Some(Target {
                method: "POST",
                uri: "/v1/orders",
                client: None,
            }),
        )
        .unwrap_err();
    assert_eq!(refused.http_status(), 403);
    assert_eq!(
        refused.to_string(),
        format!(
            "the scopes of API key {} (reports:read) do not cover this endpoint",
            reports.summary.id
        )
    );

    // The creator's current role caps the scopes: demoted to Author, nothing is allowed.
    registry
        .change_role(&owner, &manager, Role::Author)
        .await
        .unwrap();
    assert!(matches!(
        verifier.check(Some(both.secret.expose()), get("/v1/reports/7")),
        Err(Denial::RoleRefused { .. })
    ));

    // A scope another policy defined covers nothing here (deny by default).
    let other = Policy::parse(
        "[[allow]]\nrole = \"owner\"\nmethods = [\"*\"]\npaths = [\"/**\"]\n\n[[scope]]\nname = \"legacy:all\"\nroles = [\"owner\"]\nmethods = [\"*\"]\npaths = [\"/**\"]\n",
        "other.toml",
    )
    .unwrap();
    let legacy = scoped(&owner, &["legacy:all"], &ScopeCatalog::from_policy(&other)).await;
    assert!(matches!(
        verifier.check(Some(legacy.secret.expose()), get("/v1/reports/7")),
        Err(Denial::ScopeRefused { .. })
    ));
}

/// Usage is counted per key and per UTC day: accepted uses and each refusal reason in its own
/// column, added to the day's row by each flush (never a row per request), read back as one
/// entry per day for the last N days with the last use and its address; unknown keys count
/// nowhere; `keysmith verify` (the registry's check) counts in the same rows; only who sees
/// the key sees its usage; rows past the retention period go at the next day's first flush.
#[tokio::test]
async fn usage_is_counted_per_key_per_day_by_reason() {
    use keysmith_core::rate::RateLimit;
    use keysmith_core::scope::{ScopeCatalog, Scopes};
    use keysmith_core::sources::AllowedSources;
    use keysmith_core::usage::{date_of, day_of};
    use keysmith_core::KeyLimits;
    use keysmith_types::{UsageCounts, DAY_MS};

    let f = fixture().await;
    // The registry that reads usage shares the test's clock, so "today" is the verifier's.
    let reg = Registry::with_parts(
        f.registry.pool().clone(),
        f.registry.secrets(),
        f.clock.clone(),
    );
    let t0 = f.clock.now_ms();
    let at = |ms: i64| f.clock.0.store(ms, Ordering::SeqCst);
    let owner = f.team.get(Role::Owner, false).id.clone();
    let manager = f.team.get(Role::Manager, false).id.clone();
    let author = f.team.get(Role::Author, false).id.clone();
    let a = f
        .registry
        .generate_key_expiring(&manager, "reports", Some(60_000))
        .await
        .unwrap();
    let a_id = a.summary.id.clone();
    let b = f
        .registry
        .generate_key_limited(
            &owner,
            "limited",
            &KeyLimits {
                sources: AllowedSources::parse(&["203.0.113.0/24"]).unwrap(),
                rate_limit: RateLimit::parse("1/min burst 1").unwrap(),
                scopes: Some(
                    ScopeCatalog::builtin()
                        .resolve(Scopes::parse(&["read-only"]).unwrap().unwrap())
                        .unwrap(),
                ),
                ..KeyLimits::default()
            },
        )
        .await
        .unwrap();
    let b_id = b.summary.id.clone();
    let call = |key: &str, method: &'static str, client: &str| {
        f.verifier.check(
            Some(key),
            Some(Target {
                method,
                uri: "/v1/reports/7",
                client: Some(client.parse().unwrap()),
            }),
        )
    };
    let (a_key, b_key) = (a.secret.expose(), b.secret.expose());

    // Two days ago: three uses, a flush, two refusals by role, a pause.
    at(t0 - 2 * DAY_MS);
    for _ in 0..3 {
        call(a_key, "GET", "203.0.113.5").unwrap();
    }
    assert_eq!(f.verifier.flush_last_used().unwrap(), 1);
    for _ in 0..2 {
        assert!(matches!(
            call(a_key, "DELETE", "203.0.113.5"),
            Err(Denial::RoleRefused { .. })
        ));
    }
    f.registry.pause_key(&manager, &a_id).await.unwrap();
    assert!(matches!(
        call(a_key, "GET", "203.0.113.5"),
        Err(Denial::Paused { .. })
    ));
    f.registry.resume_key(&manager, &a_id).await.unwrap();
    // Yesterday: one use from IPv6.
    at(t0 - DAY_MS);
    call(a_key, "GET", "2001:db8::1").unwrap();
    // Today, two minutes on: `a` has expired; `b` is used once, then refused for each of its
    // limits, then revoked; an unknown key counts nowhere.
    let now = t0 + 120_000;
    at(now);
    assert!(matches!(
        call(a_key, "GET", "203.0.113.5"),
        Err(Denial::Expired { .. })
    ));
    call(b_key, "GET", "203.0.113.9").unwrap();
    assert!(matches!(
        call(b_key, "POST", "203.0.113.9"),
        Err(Denial::ScopeRefused { .. })
    ));
    assert!(matches!(
        call(b_key, "GET", "198.51.100.1"),
        Err(Denial::SourceRefused { .. })
    ));
    assert!(matches!(
        call(b_key, "GET", "203.0.113.9"),
        Err(Denial::RateLimited { .. })
    ));
    f.registry
        .revoke_key(&owner, &b_id, "REVOKE")
        .await
        .unwrap();
    assert!(matches!(
        call(b_key, "GET", "203.0.113.9"),
        Err(Denial::Revoked { .. })
    ));
    let stranger = ApiKeySecret::generate().unwrap();
    assert_eq!(
        f.verifier
            .check(Some(stranger.expose()), get("/v1/reports/7")),
        Err(Denial::UnknownKey)
    );
    assert_eq!(f.verifier.flush_last_used().unwrap(), 2, "two keys counted");
    // `keysmith verify` on the revoked key counts as a refusal too.
    assert!(matches!(reg.verify(b_key).await, Err(Error::KeyRevoked)));

    let today = day_of(now);
    let usage = reg.key_usage(&manager, &a_id, 30).await.unwrap();
    assert_eq!(usage.key_id, a_id);
    assert_eq!(usage.days.len(), 30);
    assert_eq!(usage.days[29].date, date_of(today).unwrap());
    assert_eq!(usage.days[0].date, date_of(today - 29).unwrap());
    let want = |allowed, role, paused, expired| UsageCounts {
        allowed,
        role,
        paused,
        expired,
        ..UsageCounts::default()
    };
    assert_eq!(
        usage.days[27].counts,
        want(3, 2, 1, 0),
        "two flushes, one row"
    );
    assert_eq!(usage.days[28].counts, want(1, 0, 0, 0));
    assert_eq!(usage.days[29].counts, want(0, 0, 0, 1));
    assert!(usage.days[..27]
        .iter()
        .all(|d| d.counts == UsageCounts::default()));
    assert_eq!(usage.total, want(4, 2, 1, 1));
    assert_eq!(usage.last_used_at, Some(t0 - DAY_MS));
    assert_eq!(usage.last_used_from.as_deref(), Some("2001:db8::1"));

    let usage = reg.key_usage(&owner, &b_id, 1).await.unwrap();
    assert_eq!(usage.days.len(), 1);
    assert_eq!(
        usage.days[0].counts,
        UsageCounts {
            allowed: 1,
            scope: 1,
            address: 1,
            rate_limited: 1,
            revoked: 2,
            ..UsageCounts::default()
        }
    );
    assert_eq!(usage.total.refused(), 5);
    assert_eq!(usage.last_used_from.as_deref(), Some("203.0.113.9"));
    assert_eq!(usage.last_used_at, Some(now));

    // Who may see it: whoever sees the key in the list.
    assert!(reg.key_usage(&owner, &a_id, 30).await.is_ok());
    assert!(matches!(
        reg.key_usage(&manager, &b_id, 30).await,
        Err(Error::NotPermitted(_))
    ));
    assert!(matches!(
        reg.key_usage(&author, &a_id, 30).await,
        Err(Error::NotPermitted(_))
    ));
    for bad in [
        "",
        "00000000-0000-0000-0000-000000000000",
        "x'; DROP TABLE key_usage; --",
    ] {
        assert!(
            matches!(
                reg.key_usage(&owner, bad, 30).await,
                Err(Error::NotFound { .. })
            ),
            "{bad:?}"
        );
    }
    for days in [0, 367, u32::MAX] {
        assert!(
            matches!(
                reg.key_usage(&owner, &a_id, days).await,
                Err(Error::InvalidDuration(_))
            ),
            "{days}"
        );
    }
    assert_eq!(
        reg.key_usage(&owner, &a_id, 366).await.unwrap().days.len(),
        366
    );

    // Retention: a use 500 days back is written, then deleted by the next day's first flush.
    let rows = || async { store::all_usage(f.registry.pool()).await.unwrap() };
    at(t0 - 500 * DAY_MS);
    let c = f.registry.generate_key(&owner, "old").await.unwrap();
    f.verifier.check(Some(c.secret.expose()), None).unwrap();
    assert_eq!(f.verifier.flush_last_used().unwrap(), 1);
    assert!(rows().await.iter().any(|r| r.day == day_of(t0) - 500));
    at(now);
    assert_eq!(f.verifier.flush_last_used().unwrap(), 0);
    let kept = rows().await;
    assert!(kept.iter().all(|r| r.day > today - 400), "{kept:?}");
    assert_eq!(kept.len(), 4, "a: three days; b: today");
}
