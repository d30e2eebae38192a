//! The verifier: the check a receiving service runs on each request's API key.
//!
//! One function, [`Verifier::check`]: parse (prefix, length, alphabet, checksum) → HMAC-SHA-256
//! with the pepper → lookup in an in-memory index → status (active, revoked, expired,
//! paused, unknown) → the key's allowed source networks, if any (`sources.rs`) → the creator's
//! *current* role → the policy's answer for (method, path) → the key's scopes, if any
//! (`scope.rs`: one must cover the request too) → the key's rate limit, if any
//! (`rate.rs`; only a request that passed everything else counts against it).
//!
//! The index holds every key's digest, so a check costs one HMAC and one hash lookup. It
//! stays exact without polling: before answering, the verifier reads the header of the
//! database's WAL index (the `-shm` file's first 96 bytes, mapped read-only by `shm.rs`, so
//! no system call). In WAL mode a commit
//! becomes visible to readers exactly when its writer rewrites that header, before the
//! writer's `COMMIT` returns, whatever its `synchronous` setting; so an unchanged header
//! proves that nothing was committed since the last look. When it changed, the verifier asks
//! SQLite's `PRAGMA data_version` on its own connection and, if that moved, reloads the keys
//! named in the `key_changes` log since the last look and the members table (roles,
//! removals) whole. So a key revoked by the app, the CLI or a `sqlite3` shell is refused on
//! the very next request. Where there is no WAL index (another journal mode) every check
//! asks `data_version`.
//!
//! Last use is not written per request: uses are collected in memory and written in one
//! transaction by [`Verifier::flush_last_used`] (the HTTP service calls it every 2 s), with
//! each key's counts for the day: accepted, and refused by reason (`usage.rs`).

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};
use std::time::Duration;

use keysmith_types::Role;
use rusqlite::{Connection, OpenFlags, OptionalExtension};
use subtle::ConstantTimeEq;

use crate::clock::{Clock, SystemClock};
use crate::digest::{Digester, Pepper};
use crate::integrity::{KeyFields, MemberFields, RowKey};
use crate::key::{KeyFormatError, WellFormedKey};
use crate::policy::{request_path, PathError, Policy, RequestTarget};
use crate::rate::RateLimit;
use crate::usage::{day_of, DayTally, Outcome};

/// The hasher of the request path's maps (foldhash, a few instructions for a `u128`). Their
/// keys are HMAC output and key ids, which nobody sending requests can choose, so a
/// flooding-resistant hasher (std's SipHash) buys nothing there.
type Fast = foldhash::fast::RandomState;

/// Checks counted since the last flush, per (key id, UTC day number).
pub(crate) type Uses = HashMap<(u128, i64), DayTally, Fast>;

/// The original request a key is presented for.
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    /// The HTTP method, as sent (`GET`).
    pub method: &'a str,
    /// The original request URI (`/v1/reports?x=1`), see [`request_path`].
    pub uri: &'a str,
    /// The client's address, when the caller could establish it (`keysmith-verifier` takes
    /// it from the connection, or from a trusted proxy's `X-Forwarded-For`). A key with an
    /// allowlist is refused when it is `None`.
    pub client: Option<IpAddr>,
}

/// A key that passed every check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// The key's id (a UUID), never the key.
    pub key_id: String,
    /// The creator's member id.
    pub member_id: Arc<str>,
    /// The creator's role at the time of the check.
    pub role: Role,
}

/// Why a check refused. No variant carries key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Denial {
    #[error("no API key was presented")]
    MissingKey,
    #[error("malformed API key: {0}")]
    MalformedKey(KeyFormatError),
    #[error("unknown API key")]
    UnknownKey,
    #[error("API key {key_id} is revoked")]
    Revoked { key_id: String },
    #[error("API key {key_id} has expired")]
    Expired { key_id: String },
    #[error("API key {key_id} is paused")]
    Paused { key_id: String },
    #[error("API key {key_id} may not be used from {}", .client.map_or_else(|| "an unknown address".to_owned(), |a| a.to_string()))]
    SourceRefused {
        key_id: String,
        client: Option<IpAddr>,
    },
    #[error("role {role} of API key {key_id} may not call this endpoint")]
    RoleRefused { key_id: String, role: Role },
    #[error("the scopes of API key {key_id} ({scopes}) do not cover this endpoint")]
    ScopeRefused {
        key_id: String,
        scopes: crate::scope::Scopes,
    },
    #[error("API key {key_id} is over its rate limit of {limit}; retry in {} s", retry_after_secs(*.retry_after))]
    RateLimited {
        key_id: String,
        limit: RateLimit,
        /// How long until the key's next request would be allowed.
        retry_after: Duration,
    },
    #[error("bad original request: {0}")]
    BadRequest(PathError),
    #[error("the verifier cannot read the key database")]
    Unavailable,
    #[error("API key {key_id} or its creator's row was changed outside Keysmith")]
    Tampered { key_id: String },
    #[error("the key database went back to an earlier state while the verifier ran (restored from a copy?); restart the verifier once it is checked")]
    RolledBack,
}

impl Denial {
    /// The HTTP status the forward-auth service answers with: 401 for no usable key, 403 for a
    /// role the policy refuses or an address the key's allowlist does not hold, 429 for a key
    /// over its rate limit (RFC 6585 §4), 400 for an unreadable original request, 503 when
    /// the database cannot be read (fail closed).
    pub fn http_status(&self) -> u16 {
        match self {
            Denial::MissingKey
            | Denial::MalformedKey(_)
            | Denial::UnknownKey
            | Denial::Revoked { .. }
            | Denial::Expired { .. }
            | Denial::Paused { .. }
            | Denial::Tampered { .. } => 401,
            Denial::RoleRefused { .. }
            | Denial::ScopeRefused { .. }
            | Denial::SourceRefused { .. } => 403,
            Denial::RateLimited { .. } => 429,
            Denial::BadRequest(_) => 400,
            Denial::Unavailable | Denial::RolledBack => 503,
        }
    }

    /// The key id, when the key was found.
    pub fn key_id(&self) -> Option<&str> {
        match self {
            Denial::Revoked { key_id }
            | Denial::Expired { key_id }
            | Denial::Paused { key_id }
            | Denial::Tampered { key_id }
            | Denial::SourceRefused { key_id, .. }
            | Denial::RateLimited { key_id, .. }
            | Denial::ScopeRefused { key_id, .. }
            | Denial::RoleRefused { key_id, .. } => Some(key_id),
            _ => None,
        }
    }

    /// For a key over its rate limit, the whole seconds to wait before retrying (at least 1,
    /// rounded up): the value of `Retry-After` (RFC 9110 §10.2.3).
    pub fn retry_after_secs(&self) -> Option<u64> {
        match self {
            Denial::RateLimited { retry_after, .. } => Some(retry_after_secs(*retry_after)),
            _ => None,
        }
    }
}

/// `wait` in whole seconds, rounded up, at least 1.
fn retry_after_secs(wait: Duration) -> u64 {
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    secs.max(1)
}

/// One key's rate limiter: `governor`'s GCRA state for the key's [`RateLimit`], kept across
/// index reloads of the same key (a pause and resume does not refill the bucket).
struct KeyLimiter {
    limit: RateLimit,
    limiter: governor::DefaultDirectRateLimiter,
}

impl KeyLimiter {
    fn new(limit: RateLimit) -> KeyLimiter {
        KeyLimiter {
            limit,
            limiter: governor::RateLimiter::direct(limit.quota()),
        }
    }

    /// Takes one request from the bucket, or says how long until one is there.
    fn take(&self) -> Result<(), Duration> {
        self.limiter.check().map_err(|not_until| {
            not_until.wait_time_from(governor::clock::Clock::now(self.limiter.clock()))
        })
    }
}

impl std::fmt::Debug for KeyLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyLimiter")
            .field("limit", &self.limit)
            .finish_non_exhaustive()
    }
}

/// Errors opening or refreshing the verifier.
#[derive(Debug, thiserror::Error)]
pub enum VerifierError {
    #[error("the key database could not be read: {0}")]
    Database(#[from] rusqlite::Error),
    #[error(
        "the key database has no Keysmith schema yet: open it once with the app or `keysmith init`"
    )]
    NoSchema,
    #[error("the key database holds a value the verifier cannot read: {0}")]
    BadRow(String),
    #[error("this pepper does not belong to this key database (is the pepper file from another server?)")]
    WrongPepper,
    #[error("the verifier could not confirm within {0:?} that it holds every change (the database is unreachable)")]
    Stale(Duration),
}

/// One key in the index: everything a decision needs, nothing secret (the digest is
/// HMAC output, and only compared).
#[derive(Debug, Clone)]
struct Entry {
    digest: [u8; 32],
    key_id: u128,
    creator: u32,
    revoked: bool,
    /// Paused by a member: refused until resumed.
    paused: bool,
    /// The row's MAC does not match: it was changed outside Keysmith.
    tampered: bool,
    /// Unix ms; `i64::MAX` when the key never expires.
    expires_at: i64,
    /// The networks the key may be used from; empty for anywhere.
    sources: Box<[ipnet::IpNet]>,
    /// The key's rate limiter; `None` for no limit.
    limiter: Option<Arc<KeyLimiter>>,
    /// The key's scopes; `None` for its creator's whole role.
    scopes: Option<crate::scope::Scopes>,
}

impl Index {
    /// Puts `entry` in the index; a key already there with the same rate limit keeps its
    /// limiter's state (a reload must not hand out a fresh burst).
    fn put(&mut self, mut entry: Entry) {
        let slot = prefix(&entry.digest);
        if let (Some(old), Some(new)) = (self.keys.get(&slot), entry.limiter.as_ref()) {
            if let Some(kept) = old.limiter.as_ref().filter(|l| l.limit == new.limit) {
                entry.limiter = Some(Arc::clone(kept));
            }
        }
        self.keys.insert(slot, entry);
    }
}

#[derive(Debug, Clone)]
struct MemberInfo {
    id: Arc<str>,
    role: Role,
    disabled: bool,
    /// The row's MAC does not match: it was changed outside Keysmith.
    tampered: bool,
}

#[derive(Debug, Default)]
struct Index {
    /// Keyed by the digest's first 16 bytes; the whole digest is then compared in constant
    /// time.
    keys: HashMap<u128, Entry, Fast>,
    members: Vec<MemberInfo>,
    member_ix: HashMap<String, u32>,
}

struct Watch {
    conn: Connection,
    data_version: i64,
    last_seq: i64,
    /// The WAL index header as last read; `None` where there is no `-shm` to read. Dropped
    /// after `conn`: closing its file first would release SQLite's locks on the `-shm`
    /// while the connection still uses it (`shm.rs`); nothing reads the mapping after.
    wal_index: Option<WalIndex>,
}

/// The database's WAL index (`<db>-shm`), mapped read-only (`shm.rs`). SQLite keeps two
/// copies of a 48-byte header at its start (the WAL-index format of
/// sqlite.org/walformat.html); a writer's commit rewrites both before its `COMMIT`
/// returns, and readers take their snapshot from it, so it is the one place where "a
/// commit became visible" can be seen. Reading it is a few memory loads: a `pread` of it
/// cost each check about 4 µs of the verifier's throughput on a 2-core KVM guest (issue 11).
struct WalIndex {
    map: crate::shm::WalIndexMap,
    header: crate::shm::Header,
}

impl WalIndex {
    /// See [`crate::shm::WalIndexMap::open`]: the verifier's own connection (`Watch::conn`)
    /// has read the database in WAL mode by now, and outlives the returned value.
    fn open(db: &Path) -> Option<WalIndex> {
        let map = crate::shm::WalIndexMap::open(db)?;
        let header = map.read();
        Some(WalIndex { map, header })
    }

    /// Whether anything may have been committed since the last call: false only when the
    /// header reads back word for word as before.
    fn changed(&mut self) -> bool {
        let now = self.map.read();
        if now == self.header {
            false
        } else {
            self.header = now;
            true
        }
    }
}

/// Checks API keys against an in-memory index of one Keysmith database.
pub struct Verifier {
    digester: Digester,
    /// Checks the rows' MACs (derived from the pepper, see `integrity.rs`).
    row_key: RowKey,
    /// Set when the change log went backwards: every check then answers 503.
    rolled_back: std::sync::atomic::AtomicBool,
    policy: Option<Policy>,
    clock: Arc<dyn Clock>,
    index: RwLock<Index>,
    source: Source,
    /// Checks since the last flush, counted per (key id, UTC day number).
    usage: Mutex<Uses>,
    /// How many days of usage rows the flush keeps.
    retention_days: std::sync::atomic::AtomicU32,
    /// The day whose flush last deleted old usage rows (`i64::MIN` before the first).
    pruned_on: std::sync::atomic::AtomicI64,
}

/// Where the index learns of changes.
enum Source {
    /// A SQLite file, watched through its WAL index on every check.
    Sqlite {
        watch: Box<Mutex<Watch>>,
        db_path: std::path::PathBuf,
    },
    /// A feed that applies changes as they come ([`crate::replica`]: PostgreSQL's
    /// LISTEN/NOTIFY plus a freshness poll) and confirms, now and then, that the index holds
    /// every change committed before a moment. Checks answer only while that moment is
    /// within `max_staleness` of now.
    Feed {
        confirmed: Mutex<Option<std::time::Instant>>,
        max_staleness: Duration,
    },
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let source = match &self.source {
            Source::Sqlite { db_path, .. } => db_path.display().to_string(),
            Source::Feed { max_staleness, .. } => format!("feed, max staleness {max_staleness:?}"),
        };
        f.debug_struct("Verifier")
            .field("source", &source)
            .field("keys", &self.key_count())
            .finish_non_exhaustive()
    }
}

const KEY_SELECT: &str = crate::store::SEALED_KEY_SELECT;

/// The index of a fed verifier while it loads: every member first, then the keys one row
/// at a time as they stream from the database ([`crate::store::each_sealed_key`]), so the
/// load never holds more than one row besides the index.
pub(crate) struct FedIndex {
    pepper: Pepper,
    row_key: RowKey,
    index: Index,
}

impl FedIndex {
    /// # Errors
    /// [`VerifierError::BadRow`] for a member row the verifier cannot read.
    pub(crate) fn new(
        pepper: Pepper,
        members: &[crate::store::MemberRow],
    ) -> Result<FedIndex, VerifierError> {
        let row_key = RowKey::derive(&pepper);
        let mut index = Index::default();
        for m in members {
            push_member(&mut index, member_info(m, &row_key))?;
        }
        Ok(FedIndex {
            pepper,
            row_key,
            index,
        })
    }

    /// # Errors
    /// [`VerifierError::BadRow`] for a key row the verifier cannot read.
    pub(crate) fn push_key(&mut self, k: &crate::store::SealedKeyRow) -> Result<(), VerifierError> {
        let entry = entry_from_fields(
            KeyFields::from(k),
            k.mac.as_deref(),
            &self.index,
            &self.row_key,
        )?;
        self.index.put(entry);
        Ok(())
    }
}

impl Verifier {
    /// Opens the database at `db_path` (which the app or CLI already created and migrated)
    /// and loads every key into the index. `policy` is required for checks that name a
    /// [`Target`].
    ///
    /// # Errors
    /// [`VerifierError`].
    pub fn open(
        db_path: &Path,
        pepper: Pepper,
        policy: Option<Policy>,
    ) -> Result<Verifier, VerifierError> {
        Verifier::with_clock(db_path, pepper, policy, Arc::new(SystemClock))
    }

    /// [`Verifier::open`] with a clock of the caller's (tests of expiry).
    ///
    /// # Errors
    /// [`VerifierError`].
    pub fn with_clock(
        db_path: &Path,
        pepper: Pepper,
        policy: Option<Policy>,
        clock: Arc<dyn Clock>,
    ) -> Result<Verifier, VerifierError> {
        let conn = open_conn(db_path, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
        let has_log: Option<i64> = conn
            .query_row(
                "SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = 'key_changes'",
                [],
                |r| r.get(0),
            )
            .optional()?;
        if has_log.is_none() {
            return Err(VerifierError::NoSchema);
        }
        let recorded: Option<Vec<u8>> = conn
            .query_row("SELECT pepper_check FROM account", [], |r| r.get(0))
            .optional()?
            .flatten();
        if let Some(recorded) = recorded {
            if !bool::from(recorded.as_slice().ct_eq(&pepper.check_value())) {
                return Err(VerifierError::WrongPepper);
            }
        }
        // The connection has opened the WAL index by now. Its header is read before anything
        // is loaded: a commit made while the index loads then shows as a change.
        let mut watch = Watch {
            conn,
            data_version: 0,
            last_seq: 0,
            wal_index: WalIndex::open(db_path),
        };
        watch.data_version = data_version(&watch.conn)?;
        // The log position first: a change committed while the keys load is then read again.
        watch.last_seq =
            watch
                .conn
                .query_row("SELECT coalesce(max(seq), 0) FROM key_changes", [], |r| {
                    r.get(0)
                })?;
        let row_key = RowKey::derive(&pepper);
        let mut index = Index::default();
        load_members(&watch.conn, &mut index, &row_key)?;
        {
            let mut stmt = watch.conn.prepare(KEY_SELECT)?;
            let mut rows = stmt.query([])?;
            while let Some(row) = rows.next()? {
                let entry = entry_from_row(row, &index, &row_key)?;
                index.put(entry);
            }
        }
        Ok(Verifier {
            digester: pepper.digester(),
            row_key,
            rolled_back: std::sync::atomic::AtomicBool::new(false),
            policy,
            clock,
            index: RwLock::new(index),
            source: Source::Sqlite {
                watch: Box::new(Mutex::new(watch)),
                db_path: db_path.to_owned(),
            },
            usage: Mutex::new(Uses::default()),
            retention_days: std::sync::atomic::AtomicU32::new(crate::usage::RETENTION_DAYS_DEFAULT),
            pruned_on: std::sync::atomic::AtomicI64::new(i64::MIN),
        })
    }

    /// A verifier whose index is fed from outside ([`crate::replica`]), built by `loaded`
    /// and fresh as of `confirmed` (a moment before its rows were read). Checks answer 503
    /// ([`Denial::Unavailable`]) once the last confirmation is older than `max_staleness`.
    pub(crate) fn fed(
        loaded: FedIndex,
        policy: Option<Policy>,
        clock: Arc<dyn Clock>,
        confirmed: std::time::Instant,
        max_staleness: Duration,
    ) -> Verifier {
        let FedIndex {
            pepper,
            row_key,
            index,
        } = loaded;
        Verifier {
            digester: pepper.digester(),
            row_key,
            rolled_back: std::sync::atomic::AtomicBool::new(false),
            policy,
            clock,
            index: RwLock::new(index),
            source: Source::Feed {
                confirmed: Mutex::new(Some(confirmed)),
                max_staleness,
            },
            usage: Mutex::new(Uses::default()),
            retention_days: std::sync::atomic::AtomicU32::new(crate::usage::RETENTION_DAYS_DEFAULT),
            pruned_on: std::sync::atomic::AtomicI64::new(i64::MIN),
        }
    }

    /// Applies changes read from the feed: every member (when given) and the changed keys.
    ///
    /// # Errors
    /// [`VerifierError::BadRow`]; nothing is applied then.
    pub(crate) fn apply(
        &self,
        members: Option<&[crate::store::MemberRow]>,
        keys: &[crate::store::KeyRow],
    ) -> Result<(), VerifierError> {
        // Members keep their positions (key entries point at them by position); new ones
        // are appended. Only a change of members copies the member list.
        let updated = match members {
            None => None,
            Some(rows) => {
                let current = self.index.read();
                let mut next = Index {
                    keys: HashMap::default(),
                    members: current.members.clone(),
                    member_ix: current.member_ix.clone(),
                };
                drop(current);
                for m in rows {
                    let info = member_info(m, &self.row_key);
                    match next.member_ix.get(m.id.as_str()) {
                        Some(&at) => next.members[at as usize] = info,
                        None => push_member(&mut next, info)?,
                    }
                }
                Some(next)
            }
        };
        let entries = {
            let current = self.index.read();
            let lookup = updated.as_ref().unwrap_or(&current);
            keys.iter()
                .map(|k| {
                    entry_from_fields(KeyFields::from(k), k.mac.as_deref(), lookup, &self.row_key)
                })
                .collect::<Result<Vec<_>, _>>()?
        };
        let mut index = self.index.write();
        if let Some(next) = updated {
            index.members = next.members;
            index.member_ix = next.member_ix;
        }
        for entry in entries {
            index.put(entry);
        }
        Ok(())
    }

    /// Records that the index holds every change committed before `at` (a fed verifier).
    pub(crate) fn confirm_fresh(&self, at: std::time::Instant) {
        if let Source::Feed { confirmed, .. } = &self.source {
            let mut c = confirmed.lock();
            if c.is_none_or(|prev| prev < at) {
                *c = Some(at);
            }
        }
    }

    /// Marks the store as gone back to an earlier state: every check answers 503.
    pub(crate) fn mark_rolled_back(&self) {
        self.rolled_back
            .store(true, std::sync::atomic::Ordering::SeqCst);
    }

    /// Takes the checks counted since the last call ((key id, UTC day number) → tally), for
    /// the flush to write (this verifier's own, or a feed's).
    pub(crate) fn take_uses(&self) -> Uses {
        let mut usage = self.usage.lock();
        // Sized as the last batch: under steady load the map then never grows (rehashes) on
        // the request path.
        let capacity = usage.len();
        std::mem::replace(
            &mut *usage,
            Uses::with_capacity_and_hasher(capacity, Fast::default()),
        )
    }

    /// Puts back counts a flush could not write, for the next one.
    pub(crate) fn restore_uses(&self, batch: Uses) {
        let mut usage = self.usage.lock();
        for (slot, tally) in batch {
            usage.entry(slot).or_default().merge(tally);
        }
    }

    /// Keeps `days` days of usage rows (at least [`crate::usage::RETENTION_DAYS_MIN`]); each
    /// day's first flush deletes older ones. The default is
    /// [`crate::usage::RETENTION_DAYS_DEFAULT`].
    pub fn keep_usage_days(&self, days: u32) {
        self.retention_days.store(
            days.max(crate::usage::RETENTION_DAYS_MIN),
            std::sync::atomic::Ordering::SeqCst,
        );
    }

    /// The first usage day to keep when the flush at `now` (Unix ms) is the day's first, so
    /// older rows are to be deleted; `None` when that was done today already.
    pub(crate) fn prune_due(&self, now: i64) -> Option<i64> {
        let today = day_of(now);
        let before = self
            .pruned_on
            .swap(today, std::sync::atomic::Ordering::SeqCst);
        let keep = self
            .retention_days
            .load(std::sync::atomic::Ordering::SeqCst);
        (before != today).then(|| crate::usage::oldest_kept(today, keep))
    }

    /// Forgets that today's pruning was done (it failed): the next flush tries again.
    pub(crate) fn prune_failed(&self) {
        self.pruned_on
            .store(i64::MIN, std::sync::atomic::Ordering::SeqCst);
    }

    /// The clock the verifier decides with (Unix ms).
    pub(crate) fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }

    /// Stops reading the WAL index header, so every check asks SQLite's `data_version` (what
    /// the verifier does outside WAL mode). For tests of that path.
    #[doc(hidden)]
    pub fn without_change_notification(self) -> Verifier {
        if let Source::Sqlite { watch, .. } = &self.source {
            watch.lock().wal_index = None;
        }
        self
    }

    /// How many keys the index holds (revoked ones included).
    pub fn key_count(&self) -> usize {
        self.index.read().keys.len()
    }

    /// The one decision: is `presented` (the key as sent, or `None` when the request had
    /// none) an active key, and — when `target` is given — may its creator's current role
    /// call that method and path under the policy? Counts the answer against the key, when
    /// one was found, for the next [`Verifier::flush_last_used`] (see
    /// [`crate::usage::Outcome`] for what counts).
    ///
    /// Sees every commit made before the call, by any process.
    pub fn check(
        &self,
        presented: Option<&str>,
        target: Option<Target<'_>>,
    ) -> Result<Grant, Denial> {
        let mut found = None;
        let answer = self.decide(presented, target, &mut found);
        if let Some((key_id, now)) = found {
            let outcome = match &answer {
                Ok(_) => Some(Outcome::Allowed),
                Err(denial) => Outcome::of_denial(denial),
            };
            if let Some(outcome) = outcome {
                self.usage
                    .lock()
                    .entry((key_id, day_of(now)))
                    .or_default()
                    .count(outcome, now, target.and_then(|t| t.client));
            }
        }
        answer
    }

    /// [`Verifier::check`]'s decision; sets `found` to the key's id and the time of the
    /// decision once the key is found in the index.
    fn decide(
        &self,
        presented: Option<&str>,
        target: Option<Target<'_>>,
        found: &mut Option<(u128, i64)>,
    ) -> Result<Grant, Denial> {
        let path = match target {
            Some(t) => Some(request_path(t.uri).map_err(Denial::BadRequest)?),
            None => None,
        };
        let presented = presented.ok_or(Denial::MissingKey)?;
        // Borrowed from the request, not copied: nothing to zeroize.
        let key = WellFormedKey::check(presented).map_err(Denial::MalformedKey)?;
        let digest = self.digester.digest(key);
        if self.catch_up().is_err() {
            return Err(Denial::Unavailable);
        }
        if self.rolled_back.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(Denial::RolledBack);
        }
        let now = self.clock.now_ms();
        let index = self.index.read();
        let entry = index
            .keys
            .get(&prefix(digest.as_bytes()))
            .filter(|e| bool::from(e.digest.ct_eq(digest.as_bytes())))
            .ok_or(Denial::UnknownKey)?;
        *found = Some((entry.key_id, now));
        let key_id = || uuid::Uuid::from_u128(entry.key_id).to_string();
        let member = index
            .members
            .get(entry.creator as usize)
            .ok_or(Denial::Unavailable)?;
        if entry.tampered || member.tampered {
            return Err(Denial::Tampered { key_id: key_id() });
        }
        if entry.revoked || member.disabled {
            return Err(Denial::Revoked { key_id: key_id() });
        }
        if now >= entry.expires_at {
            return Err(Denial::Expired { key_id: key_id() });
        }
        if entry.paused {
            return Err(Denial::Paused { key_id: key_id() });
        }
        if let Some(t) = target {
            if !crate::sources::allows(&entry.sources, t.client) {
                return Err(Denial::SourceRefused {
                    key_id: key_id(),
                    client: t.client,
                });
            }
        }
        if let (Some(t), Some(path)) = (target, path) {
            let request = RequestTarget::new(t.method, path);
            let allowed = self
                .policy
                .as_ref()
                .is_some_and(|p| p.allows_request(member.role, &request));
            if !allowed {
                return Err(Denial::RoleRefused {
                    key_id: key_id(),
                    role: member.role,
                });
            }
            // A key with scopes gets the intersection of its role and its scopes.
            if let Some(scopes) = &entry.scopes {
                let covered = self
                    .policy
                    .as_ref()
                    .is_some_and(|p| p.scopes_cover(scopes.names(), &request));
                if !covered {
                    return Err(Denial::ScopeRefused {
                        key_id: key_id(),
                        scopes: scopes.clone(),
                    });
                }
            }
        }
        // Last, so a request refused for another reason does not use up the key's quota. A
        // status-only check (no target: `keysmith verify`) is not a use of the key.
        if let (Some(_), Some(limiter)) = (target, entry.limiter.as_ref()) {
            limiter.take().map_err(|retry_after| Denial::RateLimited {
                key_id: key_id(),
                limit: limiter.limit,
                retry_after,
            })?;
        }
        Ok(Grant {
            key_id: key_id(),
            member_id: member.id.clone(),
            role: member.role,
        })
    }

    /// Brings the index up to date with every commit made so far, by any process. Every
    /// [`Verifier::check`] calls it first; costs a read of the mapped WAL index header
    /// (no system call) when nothing changed.
    ///
    /// # Errors
    /// [`VerifierError`] when the database cannot be read.
    pub fn catch_up(&self) -> Result<(), VerifierError> {
        let watch = match &self.source {
            Source::Sqlite { watch, .. } => watch,
            Source::Feed {
                confirmed,
                max_staleness,
            } => {
                let fresh = confirmed
                    .lock()
                    .is_some_and(|at| at.elapsed() <= *max_staleness);
                return if fresh {
                    Ok(())
                } else {
                    Err(VerifierError::Stale(*max_staleness))
                };
            }
        };
        let mut watch = watch.lock();
        if let Some(index) = watch.wal_index.as_mut() {
            if !index.changed() {
                return Ok(());
            }
        }
        let version = data_version(&watch.conn)?;
        if version == watch.data_version {
            return Ok(());
        }
        // Read inside one transaction, so members and keys agree with each other.
        let tx = watch.conn.unchecked_transaction()?;
        let mut fresh = Index::default();
        load_members(&tx, &mut fresh, &self.row_key)?;
        // The change log only grows: a smaller one means the file was replaced by an earlier
        // copy, in which revoked keys may be active again.
        let newest: i64 =
            tx.query_row("SELECT coalesce(max(seq), 0) FROM key_changes", [], |r| {
                r.get(0)
            })?;
        if newest < watch.last_seq {
            self.rolled_back
                .store(true, std::sync::atomic::Ordering::SeqCst);
            tracing::error!(
                newest,
                seen = watch.last_seq,
                "the key database went back to an earlier state; refusing every key"
            );
        }
        let changed: Vec<(i64, String)> = {
            let mut stmt = tx
                .prepare_cached("SELECT seq, key_id FROM key_changes WHERE seq > ? ORDER BY seq")?;
            let rows = stmt.query_map([watch.last_seq], |r| Ok((r.get(0)?, r.get(1)?)))?;
            rows.collect::<Result<_, _>>()?
        };
        let mut entries = Vec::with_capacity(changed.len());
        {
            let mut stmt = tx.prepare_cached(&format!("{KEY_SELECT} WHERE id = ?"))?;
            for (_, id) in &changed {
                if let Some(entry) = stmt
                    .query_row([id], |row| {
                        Ok(entry_from_row(row, &fresh, &self.row_key).map_err(|e| e.to_string()))
                    })
                    .optional()?
                {
                    entries.push(entry.map_err(VerifierError::BadRow)?);
                }
            }
        }
        tx.finish()?;
        let mut index = self.index.write();
        index.members = fresh.members;
        index.member_ix = fresh.member_ix;
        for entry in entries {
            index.put(entry);
        }
        drop(index);
        if let Some((seq, _)) = changed.last() {
            watch.last_seq = *seq;
        }
        watch.data_version = version;
        Ok(())
    }

    /// Writes what was counted since the last flush, in one transaction: each key's latest
    /// accepted use as `last_used_at` (never moving a time backwards) and its counts added to
    /// its `key_usage` row for each day (`usage.rs`); the day's first flush also deletes the
    /// rows older than the retention period ([`Verifier::keep_usage_days`]). Returns how many
    /// keys were counted.
    ///
    /// # Errors
    /// [`VerifierError::Database`]; the counts are kept for the next attempt.
    pub fn flush_last_used(&self) -> Result<usize, VerifierError> {
        let Source::Sqlite { db_path, .. } = &self.source else {
            return Ok(0); // a feed writes its uses itself
        };
        let prune = self.prune_due(self.clock.now_ms());
        let batch = self.take_uses();
        if batch.is_empty() && prune.is_none() {
            return Ok(0);
        }
        let last_used = latest_uses(&batch);
        let result = (|| {
            let mut conn = open_conn(db_path, OpenFlags::SQLITE_OPEN_READ_WRITE)?;
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            {
                let mut touch = tx.prepare(
                    "UPDATE api_keys SET last_used_at = ?1 WHERE id = ?2 \
                     AND (last_used_at IS NULL OR last_used_at < ?1)",
                )?;
                for (id, at) in &last_used {
                    touch.execute(rusqlite::params![
                        at,
                        uuid::Uuid::from_u128(*id).to_string()
                    ])?;
                }
                let mut add = tx.prepare(crate::usage::UPSERT_SQL)?;
                for ((id, day), tally) in &batch {
                    add.execute(rusqlite::params_from_iter(usage_params(*id, *day, tally)))?;
                }
                if let Some(oldest) = prune {
                    tx.execute(crate::usage::PRUNE_SQL, [oldest])?;
                }
            }
            tx.commit()?;
            Ok::<_, VerifierError>(
                batch
                    .keys()
                    .map(|(id, _)| id)
                    .collect::<std::collections::HashSet<_>>()
                    .len(),
            )
        })();
        if result.is_err() {
            if prune.is_some() {
                self.prune_failed();
            }
            self.restore_uses(batch);
        }
        result
    }
}

/// Each key's latest accepted use in a batch of tallies.
fn latest_uses(batch: &Uses) -> HashMap<u128, i64> {
    let mut latest = HashMap::new();
    for ((id, _), tally) in batch {
        if let Some((at, _)) = tally.last {
            let slot = latest.entry(*id).or_insert(at);
            *slot = (*slot).max(at);
        }
    }
    latest
}

/// [`crate::usage::UPSERT_SQL`]'s twelve parameters for one key and day.
fn usage_params(id: u128, day: i64, tally: &DayTally) -> Vec<Box<dyn rusqlite::ToSql>> {
    use crate::usage::stored;
    let c = &tally.counts;
    let (last_at, last_from) = tally.stored_last();
    vec![
        Box::new(uuid::Uuid::from_u128(id).to_string()),
        Box::new(day),
        Box::new(stored(c.allowed)),
        Box::new(stored(c.revoked)),
        Box::new(stored(c.expired)),
        Box::new(stored(c.paused)),
        Box::new(stored(c.role)),
        Box::new(stored(c.scope)),
        Box::new(stored(c.address)),
        Box::new(stored(c.rate_limited)),
        Box::new(last_at),
        Box::new(last_from),
    ]
}

fn open_conn(path: &Path, flags: OpenFlags) -> Result<Connection, VerifierError> {
    let conn = Connection::open_with_flags(path, flags | OpenFlags::SQLITE_OPEN_NO_MUTEX)?;
    conn.busy_timeout(Duration::from_secs(5))?;
    Ok(conn)
}

fn data_version(conn: &Connection) -> Result<i64, rusqlite::Error> {
    conn.prepare_cached("PRAGMA data_version")?
        .query_row([], |r| r.get(0))
}

fn prefix(digest: &[u8; 32]) -> u128 {
    let mut head = [0u8; 16];
    head.copy_from_slice(&digest[..16]);
    u128::from_le_bytes(head)
}

fn load_members(conn: &Connection, index: &mut Index, rows: &RowKey) -> Result<(), VerifierError> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, name, name_key, role, passphrase_hash, must_change_passphrase, created_at, \
         disabled_at, mac FROM members ORDER BY rowid",
    )?;
    let mut result = stmt.query([])?;
    while let Some(row) = result.next()? {
        let m = crate::store::MemberRow {
            id: row.get(0)?,
            name: row.get(1)?,
            name_key: row.get(2)?,
            role: row.get(3)?,
            passphrase_hash: row.get(4)?,
            must_change_passphrase: row.get(5)?,
            created_at: row.get(6)?,
            disabled_at: row.get(7)?,
            mac: row.get(8)?,
        };
        push_member(index, member_info(&m, rows))?;
    }
    Ok(())
}

/// What a decision needs of a member row; a row without Keysmith's seal, or with a role the
/// verifier does not know, is marked as changed outside Keysmith.
fn member_info(m: &crate::store::MemberRow, rows: &RowKey) -> MemberInfo {
    let sealed = rows.member_ok(MemberFields::from(m), m.mac.as_deref());
    let role = Role::ALL.into_iter().find(|r| r.as_str() == m.role);
    if !sealed || role.is_none() {
        tracing::error!(member = %m.id, "a member row was changed outside Keysmith; its keys are refused");
    }
    MemberInfo {
        id: Arc::from(m.id.as_str()),
        role: role.unwrap_or(Role::Viewer),
        disabled: m.disabled_at.is_some(),
        tampered: !sealed || role.is_none(),
    }
}

fn push_member(index: &mut Index, info: MemberInfo) -> Result<(), VerifierError> {
    let ix = u32::try_from(index.members.len())
        .map_err(|_| VerifierError::BadRow("too many members".into()))?;
    index.member_ix.insert(info.id.to_string(), ix);
    index.members.push(info);
    Ok(())
}

fn entry_from_row(
    row: &rusqlite::Row<'_>,
    index: &Index,
    rows: &RowKey,
) -> Result<Entry, VerifierError> {
    let id: String = row.get(0)?;
    let digest: Vec<u8> = row.get(1)?;
    let created_by: String = row.get(2)?;
    let replaced_by: Option<String> = row.get(6)?;
    let mac: Option<Vec<u8>> = row.get(7)?;
    let paused_at: Option<i64> = row.get(8)?;
    let allowed_sources: Option<String> = row.get(9)?;
    let rate_limit: Option<String> = row.get(10)?;
    let scopes: Option<String> = row.get(11)?;
    entry_from_fields(
        KeyFields {
            id: &id,
            digest: &digest,
            created_by: &created_by,
            created_at: row.get(3)?,
            revoked_at: row.get(4)?,
            expires_at: row.get(5)?,
            replaced_by: replaced_by.as_deref(),
            paused_at,
            allowed_sources: allowed_sources.as_deref(),
            rate_limit: rate_limit.as_deref(),
            scopes: scopes.as_deref(),
        },
        mac.as_deref(),
        index,
        rows,
    )
}

/// What a decision needs of a key row; a row without Keysmith's seal is marked as changed
/// outside Keysmith.
fn entry_from_fields(
    k: KeyFields<'_>,
    mac: Option<&[u8]>,
    index: &Index,
    rows: &RowKey,
) -> Result<Entry, VerifierError> {
    let id = k.id;
    let key_id = uuid::Uuid::parse_str(id)
        .map_err(|_| VerifierError::BadRow(format!("key id {id:?} is not a UUID")))?
        .as_u128();
    let digest: [u8; 32] = k
        .digest
        .try_into()
        .map_err(|_| VerifierError::BadRow(format!("key {id} has a digest of the wrong length")))?;
    let creator = *index
        .member_ix
        .get(k.created_by)
        .ok_or_else(|| VerifierError::BadRow(format!("key {id} names an unknown creator")))?;
    // A list that does not read back is Keysmith's own only if the row is changed outside
    // it (the MAC covers the text): refuse the key either way.
    let sources = crate::sources::AllowedSources::from_stored(k.allowed_sources);
    let rate_limit = RateLimit::from_stored(k.rate_limit);
    let scopes = crate::scope::Scopes::from_stored(k.scopes);
    let sealed = rows.key_ok(k, mac) && sources.is_ok() && rate_limit.is_ok() && scopes.is_ok();
    if !sealed {
        tracing::error!(key = %id, "a key row was changed outside Keysmith; it is refused");
    }
    Ok(Entry {
        digest,
        key_id,
        creator,
        revoked: k.revoked_at.is_some(),
        paused: k.paused_at.is_some(),
        tampered: !sealed,
        expires_at: k.expires_at.unwrap_or(i64::MAX),
        sources: sources
            .map(|s| s.networks().to_vec().into_boxed_slice())
            .unwrap_or_default(),
        limiter: rate_limit
            .ok()
            .flatten()
            .map(|limit| Arc::new(KeyLimiter::new(limit))),
        scopes: scopes.ok().flatten(),
    })
}
