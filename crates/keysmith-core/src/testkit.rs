//! Test support (feature `testkit`): a team fixture and the walker that checks every cell
//! of the role table ([`crate::permissions::TABLE`]) through any surface that exposes the
//! operations: the core API, or the Tauri command layer as a direct IPC call reaches it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use keysmith_types::{ErrorCode, KeySummary, Role};

use crate::clock::Clock;
use crate::permissions::{permits, Action};
use crate::{store, MemoryStore, Registry};

/// The passphrase of every fixture member.
pub const PASSPHRASE: &str = "correct horse battery";

/// A member of the fixture team.
#[derive(Debug, Clone)]
pub struct Person {
    pub id: String,
    pub name: String,
    pub role: Role,
    /// The key this person generated, if their role may generate.
    pub key_id: Option<String>,
}

/// Two members of every role but Owner, each keyholder with one key.
#[derive(Debug, Clone)]
pub struct Team {
    pub people: Vec<Person>,
}

impl Team {
    /// The first (actor) or second (target) member of `role`; the Owner for both.
    pub fn get(&self, role: Role, second: bool) -> &Person {
        let mut of_role = self.people.iter().filter(|p| p.role == role);
        let first = of_role.next().expect("a member of each role");
        if second {
            of_role.next().unwrap_or(first)
        } else {
            first
        }
    }
}

/// The variable naming a PostgreSQL server (`postgres://user:pass@host:port/db`) on which
/// the core's tests run instead of SQLite: `scripts/test.sh` runs the suite once on each
/// back end, with a throwaway cluster from `pg_virtualenv`.
pub const DATABASE_URL_VAR: &str = "KEYSMITH_TEST_DATABASE_URL";

/// Whether the tests run on PostgreSQL ([`DATABASE_URL_VAR`] is set).
pub fn on_postgres() -> bool {
    std::env::var_os(DATABASE_URL_VAR).is_some()
}

/// A fresh, empty store for one test: a SQLite file in a temporary directory, or (with
/// [`DATABASE_URL_VAR`] set) a new database on that PostgreSQL server.
#[derive(Debug)]
pub struct TestDb {
    /// A temporary directory (the SQLite file's, or unused on PostgreSQL).
    pub dir: tempfile::TempDir,
    /// The new database's URL on PostgreSQL.
    pub url: Option<String>,
}

impl TestDb {
    /// Creates the store (on PostgreSQL, `CREATE DATABASE ks_<random>`).
    pub async fn new() -> TestDb {
        let dir = tempfile::tempdir().unwrap();
        let url = match std::env::var(DATABASE_URL_VAR) {
            Err(_) => None,
            Ok(server) => {
                let name = format!("ks_{}", uuid::Uuid::now_v7().simple());
                Some(
                    store::create_postgres_database(&server, &name)
                        .await
                        .unwrap(),
                )
            }
        };
        TestDb { dir, url }
    }

    /// The directory (the SQLite file lives here).
    pub fn path(&self) -> &std::path::Path {
        self.dir.path()
    }

    /// Opens a pool on the store (another one each call, as another process would).
    pub async fn pool(&self) -> store::Pool {
        match &self.url {
            Some(url) => store::connect_postgres(url, 8).await.unwrap(),
            None => store::open(&self.dir.path().join(store::DB_FILE))
                .await
                .unwrap(),
        }
    }

    /// A registry on the store with an in-memory keyring and the system clock.
    pub async fn registry(&self) -> Registry {
        Registry::with_parts(
            self.pool().await,
            Arc::new(MemoryStore::new()),
            Arc::new(crate::clock::SystemClock),
        )
    }
}

/// A fresh registry on a temporary store ([`TestDb`]), with the [`Team`].
pub async fn team_registry() -> (TestDb, Registry, Team) {
    let dir = TestDb::new().await;
    let registry = dir.registry().await;
    let team = fill_team(&registry).await;
    (dir, registry, team)
}

/// Creates the account and the [`Team`] in an empty `registry`.
pub async fn fill_team(registry: &Registry) -> Team {
    let owner = registry.create_account("Olive", PASSPHRASE).await.unwrap();
    let hash = crate::passphrase::hash(PASSPHRASE).unwrap();
    let mut people = vec![Person {
        id: owner.id.clone(),
        name: owner.name.clone(),
        role: Role::Owner,
        key_id: None,
    }];
    for role in [Role::Admin, Role::Manager, Role::Author, Role::Viewer] {
        for n in 1..=2 {
            let name = format!("{}{n}", role.label());
            let id = format!("id-{name}");
            insert_member(registry, &id, &name, role, &hash).await;
            people.push(Person {
                id,
                name,
                role,
                key_id: None,
            });
        }
    }
    for p in &mut people {
        if p.role >= Role::Manager {
            let g = registry
                .generate_key(&p.id, &format!("{} key", p.name))
                .await
                .unwrap();
            p.key_id = Some(g.summary.id);
        }
    }
    Team { people }
}

/// Inserts a member row directly (no Argon2 per member, no audit entry), sealed with the
/// account's row key as Keysmith seals every row, for fixtures.
pub async fn insert_member(registry: &Registry, id: &str, name: &str, role: Role, phc: &str) {
    let keys = registry.keys().await.unwrap();
    let mut row = store::MemberRow {
        id: id.to_owned(),
        name: name.to_owned(),
        name_key: crate::validate::name_key(name),
        role: role.as_str().into(),
        passphrase_hash: phc.to_owned(),
        must_change_passphrase: false,
        created_at: 0,
        disabled_at: None,
        mac: None,
    };
    row.mac = Some(
        keys.rows
            .member_mac(crate::integrity::MemberFields::from(&row))
            .to_vec(),
    );
    store::insert_member(registry.pool(), &row).await.unwrap();
}

/// Stores `n` keys created by `owner_id` the way `generate_key` does (same digest, same row,
/// UUIDv7 ids), in one transaction so a million take seconds, not minutes; for benchmarks.
/// Returns every `keep_every`-th key, to be presented.
pub async fn bulk_keys(
    pool: &store::Pool,
    pepper: &crate::digest::Pepper,
    owner_id: &str,
    n: usize,
    keep_every: usize,
) -> Vec<String> {
    bulk_keys_from(pool, pepper, owner_id, n, keep_every, BulkLimits::default()).await
}

/// What every key of [`bulk_keys_from`] is narrowed by, each in its stored form.
#[derive(Debug, Clone, Copy, Default)]
pub struct BulkLimits<'a> {
    /// The allowlist, as `AllowedSources::stored` writes it.
    pub sources: Option<&'a str>,
    /// The rate limit, as `RateLimit::stored` writes it.
    pub rate_limit: Option<&'a str>,
    /// The scopes, as `Scopes::stored` writes them (sorted names joined by `,`).
    pub scopes: Option<&'a str>,
}

/// [`bulk_keys`] whose keys carry `limits`, so benchmarks measure those checks too.
pub async fn bulk_keys_from(
    pool: &store::Pool,
    pepper: &crate::digest::Pepper,
    owner_id: &str,
    n: usize,
    keep_every: usize,
    limits: BulkLimits<'_>,
) -> Vec<String> {
    let BulkLimits {
        sources,
        rate_limit,
        scopes,
    } = limits;
    let now = crate::clock::SystemClock.now_ms();
    let rows = crate::integrity::RowKey::derive(pepper);
    let mut kept = Vec::with_capacity(n / keep_every.max(1) + 1);
    let mut tx = pool.begin_write().await.unwrap();
    for i in 0..n {
        let secret = crate::ApiKeySecret::generate().unwrap();
        let digest = pepper.digest(&secret);
        let id = uuid::Uuid::now_v7().to_string();
        let name = format!("bench key {i}");
        let start = secret.start();
        let mac = rows.key_mac(crate::integrity::KeyFields {
            id: &id,
            digest: digest.as_bytes(),
            created_by: owner_id,
            created_at: now,
            revoked_at: None,
            expires_at: None,
            replaced_by: None,
            paused_at: None,
            allowed_sources: sources,
            rate_limit,
            scopes,
        });
        store::insert_key(
            &mut tx,
            &store::NewKey {
                id: &id,
                name: &name,
                start: &start,
                digest: digest.as_bytes(),
                created_at: now,
                created_by: owner_id,
                expires_at: None,
                mac: &mac,
                allowed_sources: sources,
                rate_limit,
                scopes,
            },
        )
        .await
        .unwrap();
        if i % keep_every.max(1) == 0 {
            kept.push(secret.expose().to_owned());
        }
    }
    tx.commit().await.unwrap();
    kept
}

/// Everything a refused operation must leave as it was.
pub async fn fingerprint(pool: &store::Pool) -> String {
    let members: Vec<String> = store::list_members(pool)
        .await
        .unwrap()
        .into_iter()
        .map(|m| format!("{} {} {:?}", m.id, m.role, m.disabled_at))
        .collect();
    let keys: Vec<String> = store::all_keys(pool)
        .await
        .unwrap()
        .into_iter()
        .map(|k| format!("{} {:?} {:?}", k.id, k.revoked_at, k.paused_at))
        .collect();
    let audit = crate::audit::head(pool).await.unwrap().seq;
    format!("{members:?}|{keys:?}|{audit}")
}

/// The operations, as one surface exposes them, acting as the member set by `act_as`.
#[allow(async_fn_in_trait)]
pub trait Surface {
    async fn act_as(&self, actor: &Person);
    async fn generate_key(&self, name: &str) -> Result<(), ErrorCode>;
    async fn list_keys(&self) -> Result<Vec<KeySummary>, ErrorCode>;
    async fn revoke_key(&self, key_id: &str) -> Result<(), ErrorCode>;
    /// Pauses the key.
    async fn pause_key(&self, key_id: &str) -> Result<(), ErrorCode>;
    /// Rolls the key with a 1-hour grace period.
    async fn roll_key(&self, key_id: &str) -> Result<(), ErrorCode>;
    /// Reads the key's usage over the default 30 days.
    async fn key_usage(&self, key_id: &str) -> Result<(), ErrorCode>;
    async fn add_member(&self, name: &str, role: Role) -> Result<(), ErrorCode>;
    async fn change_role(&self, member_id: &str, role: Role) -> Result<(), ErrorCode>;
    async fn remove_member(&self, member_id: &str) -> Result<(), ErrorCode>;
    async fn transfer_ownership(&self, member_id: &str) -> Result<(), ErrorCode>;
    async fn list_members(&self) -> Result<(), ErrorCode>;
    async fn audit(&self) -> Result<(), ErrorCode>;
}

#[derive(Debug, Clone)]
enum Op {
    Generate,
    List,
    RevokeOwn,
    RevokeOf(Role),
    PauseOwn,
    PauseOf(Role),
    RollOwn,
    RollOf(Role),
    UsageOwn,
    UsageOf(Role),
    Add(Role),
    ChangeRole(Role, Role),
    Remove(Role),
    Transfer(Role),
    Members,
    Audit,
}

fn cells(actor: Role) -> Vec<(Op, bool)> {
    let manage = |r| permits(actor, Action::ManageMember(r));
    let mut cells = vec![
        (Op::Generate, permits(actor, Action::GenerateOwnKey)),
        (Op::List, permits(actor, Action::SeeOwnKeys)),
        (Op::Members, permits(actor, Action::SeeMembers)),
        (Op::Audit, permits(actor, Action::SeeAudit)),
    ];
    let generates = permits(actor, Action::GenerateOwnKey);
    if actor >= Role::Manager {
        cells.push((Op::RevokeOwn, permits(actor, Action::RevokeOwnKey)));
        cells.push((Op::PauseOwn, permits(actor, Action::RevokeOwnKey)));
        cells.push((
            Op::RollOwn,
            permits(actor, Action::RevokeOwnKey) && generates,
        ));
        cells.push((Op::UsageOwn, permits(actor, Action::SeeOwnKeys)));
    }
    for target in Role::ALL {
        let is_self = target == Role::Owner && actor == Role::Owner;
        if target >= Role::Manager && !is_self {
            cells.push((
                Op::RevokeOf(target),
                permits(actor, Action::RevokeOthersKey),
            ));
            cells.push((Op::PauseOf(target), permits(actor, Action::RevokeOthersKey)));
            cells.push((
                Op::RollOf(target),
                permits(actor, Action::RevokeOthersKey) && generates,
            ));
            cells.push((Op::UsageOf(target), permits(actor, Action::SeeOthersKeys)));
        }
        cells.push((Op::Add(target), manage(target)));
        if !is_self {
            cells.push((Op::Remove(target), manage(target)));
            for to in Role::ALL.into_iter().filter(|to| *to != target) {
                cells.push((Op::ChangeRole(target, to), manage(target) && manage(to)));
            }
        }
        if target != Role::Owner {
            cells.push((
                Op::Transfer(target),
                permits(actor, Action::TransferOwnership),
            ));
        }
    }
    cells
}

/// Walks every cell of operation × actor role × target: each allowed cell succeeds; each
/// refused cell answers `not_permitted` and changes nothing. `surface` wraps a fresh
/// registry per cell. Returns the number of cells checked.
pub async fn walk_role_table<S: Surface>(surface: impl Fn(Registry) -> S) -> usize {
    let mut checked = 0;
    for actor_role in Role::ALL {
        for (op, allowed) in cells(actor_role) {
            let (_dir, registry, team) = team_registry().await;
            let pool = registry.pool().clone();
            let s = surface(registry);
            let actor = team.get(actor_role, false).clone();
            s.act_as(&actor).await;
            let before = fingerprint(&pool).await;
            let result = match &op {
                Op::Generate => s.generate_key("cell key").await,
                Op::List => s.list_keys().await.map(|keys| {
                    let others = keys.iter().any(|k| k.created_by.id != actor.id);
                    assert_eq!(
                        others,
                        permits(actor_role, Action::SeeOthersKeys),
                        "{actor_role:?} listing sees others' keys: {others}"
                    );
                }),
                Op::RevokeOwn => s.revoke_key(actor.key_id.as_deref().unwrap()).await,
                Op::RevokeOf(t) => {
                    let key = team.get(*t, true).key_id.clone().unwrap();
                    s.revoke_key(&key).await
                }
                Op::PauseOwn => s.pause_key(actor.key_id.as_deref().unwrap()).await,
                Op::PauseOf(t) => {
                    let key = team.get(*t, true).key_id.clone().unwrap();
                    s.pause_key(&key).await
                }
                Op::RollOwn => s.roll_key(actor.key_id.as_deref().unwrap()).await,
                Op::RollOf(t) => {
                    let key = team.get(*t, true).key_id.clone().unwrap();
                    s.roll_key(&key).await
                }
                Op::UsageOwn => s.key_usage(actor.key_id.as_deref().unwrap()).await,
                Op::UsageOf(t) => {
                    let key = team.get(*t, true).key_id.clone().unwrap();
                    s.key_usage(&key).await
                }
                Op::Add(t) => s.add_member("Newcomer", *t).await,
                Op::ChangeRole(t, to) => s.change_role(&team.get(*t, true).id, *to).await,
                Op::Remove(t) => s.remove_member(&team.get(*t, true).id).await,
                Op::Transfer(t) => s.transfer_ownership(&team.get(*t, true).id).await,
                Op::Members => s.list_members().await,
                Op::Audit => s.audit().await,
            };
            if allowed {
                assert_eq!(result, Ok(()), "{actor_role:?} × {op:?} should be allowed");
            } else {
                assert_eq!(
                    result,
                    Err(ErrorCode::NotPermitted),
                    "{actor_role:?} × {op:?} should be refused"
                );
                assert_eq!(
                    fingerprint(&pool).await,
                    before,
                    "{actor_role:?} × {op:?} changed state"
                );
            }
            checked += 1;
        }
    }
    checked
}
