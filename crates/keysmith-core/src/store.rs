//! All SQL lives here (plus the audit chain's queries in `audit.rs`): the store split. One
//! SQL text per operation runs on either back end, SQLite (one computer: a file in the data
//! directory) or PostgreSQL (the team server), through [`Ex`], so no SQLite or PostgreSQL type
//! is seen outside this module and `audit.rs`. The statements use `$N` parameters and SQL
//! both engines read alike; the schemas come only from `migrations/sqlite/` and
//! `migrations/postgres/`.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use futures_util::TryStreamExt;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{PgConnection, PgPool, Postgres, Sqlite, SqliteConnection, SqlitePool};

use crate::error::Result;

/// The database file inside the data directory.
pub const DB_FILE: &str = "keysmith.sqlite3";

/// The SQLite schema (`migrations/sqlite/`), embedded at compile time.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations/sqlite");

/// The PostgreSQL schema (`migrations/postgres/`), embedded at compile time.
pub static PG_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations/postgres");

/// The advisory lock every PostgreSQL write transaction takes first (`pg_advisory_xact_lock`),
/// so writers from any number of server instances run one at a time, as SQLite's
/// `BEGIN IMMEDIATE` makes them on one computer: the audit chain never forks.
const PG_WRITE_LOCK: i64 = 0x6b65_7973_6d69_7468; // "keysmith"

/// An open store: a SQLite file or a PostgreSQL database.
#[derive(Debug, Clone)]
pub enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// A transaction on either back end (a write transaction holds the write lock).
#[derive(Debug)]
pub enum Tx {
    Sqlite(sqlx::Transaction<'static, Sqlite>),
    Postgres(sqlx::Transaction<'static, Postgres>),
}

/// Where a statement runs: on the pool (its own connection, autocommit) or inside a
/// transaction. Every function here takes `impl Into<Ex>`, so callers pass `&Pool` or
/// `&mut Tx`.
#[derive(Debug)]
pub enum Ex<'a> {
    SqlitePool(&'a SqlitePool),
    Sqlite(&'a mut SqliteConnection),
    PgPool(&'a PgPool),
    Postgres(&'a mut PgConnection),
}

impl<'a> From<&'a Pool> for Ex<'a> {
    fn from(p: &'a Pool) -> Ex<'a> {
        match p {
            Pool::Sqlite(p) => Ex::SqlitePool(p),
            Pool::Postgres(p) => Ex::PgPool(p),
        }
    }
}

impl<'a> From<&'a mut Tx> for Ex<'a> {
    fn from(t: &'a mut Tx) -> Ex<'a> {
        match t {
            Tx::Sqlite(t) => Ex::Sqlite(&mut *t),
            Tx::Postgres(t) => Ex::Postgres(&mut *t),
        }
    }
}

/// Runs `$body` with `$c` bound to the executor of whichever back end `$ex` is on. The body
/// is compiled once per back end, so one SQL text serves both.
macro_rules! on {
    ($ex:expr, $c:ident => $body:expr) => {
        match Into::<$crate::store::Ex<'_>>::into($ex) {
            $crate::store::Ex::SqlitePool($c) => $body,
            $crate::store::Ex::Sqlite($c) => $body,
            $crate::store::Ex::PgPool($c) => $body,
            $crate::store::Ex::Postgres($c) => $body,
        }
    };
}
pub(crate) use on;

/// Which engine a store runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A read-only SQLite connection that only asks `PRAGMA data_version`: a number that
/// changes whenever another connection, of this process (the pool's) or of another (a
/// verifier writing last use, a hand edit of the file), commits to the database
/// (<https://sqlite.org/pragma.html#pragma_data_version>). It never writes, so its own
/// commits cannot go unseen.
#[derive(Debug)]
pub struct ChangeWatch(SqliteConnection);

impl ChangeWatch {
    /// The current `PRAGMA data_version`; equal to an earlier answer when nothing was
    /// committed in between.
    ///
    /// # Errors
    /// [`crate::Error::Storage`].
    pub async fn data_version(&mut self) -> Result<i64> {
        Ok(sqlx::query_scalar("PRAGMA data_version")
            .fetch_one(&mut self.0)
            .await?)
    }
}

impl Pool {
    pub fn backend(&self) -> Backend {
        match self {
            Pool::Sqlite(_) => Backend::Sqlite,
            Pool::Postgres(_) => Backend::Postgres,
        }
    }

    /// The SQLite pool, for tests and tools that work on the file itself.
    pub fn as_sqlite(&self) -> Option<&SqlitePool> {
        match self {
            Pool::Sqlite(p) => Some(p),
            Pool::Postgres(_) => None,
        }
    }

    /// The PostgreSQL pool (the verifier replica's change feed, tests).
    pub fn as_postgres(&self) -> Option<&PgPool> {
        match self {
            Pool::Postgres(p) => Some(p),
            Pool::Sqlite(_) => None,
        }
    }

    /// A connection of its own on the SQLite file that tells when anything was committed
    /// ([`ChangeWatch`]); `None` on PostgreSQL.
    ///
    /// # Errors
    /// [`crate::Error::Storage`] when the connection cannot be opened.
    pub async fn change_watch(&self) -> Result<Option<ChangeWatch>> {
        use sqlx::ConnectOptions as _;
        match self {
            Pool::Sqlite(p) => {
                let options = (*p.connect_options()).clone().read_only(true);
                Ok(Some(ChangeWatch(options.connect().await?)))
            }
            Pool::Postgres(_) => Ok(None),
        }
    }

    /// A read transaction: one snapshot of the store for several statements.
    ///
    /// # Errors
    /// [`crate::Error::Storage`].
    pub async fn begin(&self) -> Result<Tx> {
        Ok(match self {
            Pool::Sqlite(p) => Tx::Sqlite(p.begin().await?),
            Pool::Postgres(p) => {
                let mut tx = p.begin().await?;
                // One snapshot for the whole transaction, as SQLite's read transactions are.
                sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                    .execute(&mut *tx)
                    .await?;
                Tx::Postgres(tx)
            }
        })
    }

    /// A write transaction: from its start to its commit no other writer commits (SQLite:
    /// `BEGIN IMMEDIATE`; PostgreSQL: the advisory write lock), so what it reads is what it
    /// acts on, and the audit chain grows one entry after another.
    ///
    /// # Errors
    /// [`crate::Error::Storage`].
    pub async fn begin_write(&self) -> Result<Tx> {
        Ok(match self {
            Pool::Sqlite(p) => Tx::Sqlite(p.begin_with("BEGIN IMMEDIATE").await?),
            Pool::Postgres(p) => {
                let mut tx = p.begin().await?;
                sqlx::query("SELECT pg_advisory_xact_lock($1)")
                    .bind(PG_WRITE_LOCK)
                    .execute(&mut *tx)
                    .await?;
                Tx::Postgres(tx)
            }
        })
    }

    /// A plain read-write transaction without the write lock: for writes that touch no
    /// protected row and no audit entry (the verifier's last-used times).
    ///
    /// # Errors
    /// [`crate::Error::Storage`].
    pub async fn begin_unlocked(&self) -> Result<Tx> {
        Ok(match self {
            Pool::Sqlite(p) => Tx::Sqlite(p.begin().await?),
            Pool::Postgres(p) => Tx::Postgres(p.begin().await?),
        })
    }

    /// Closes every connection.
    pub async fn close(&self) {
        match self {
            Pool::Sqlite(p) => p.close().await,
            Pool::Postgres(p) => p.close().await,
        }
    }

    /// Runs one statement of raw SQL (tests that edit the store behind Keysmith's back).
    ///
    /// # Errors
    /// [`crate::Error::Storage`].
    pub async fn execute_raw(&self, sql: &str) -> Result<u64> {
        Ok(on!(self, c => sqlx::raw_sql(sql).execute(c).await?.rows_affected()))
    }
}

impl Tx {
    /// Commits.
    ///
    /// # Errors
    /// [`crate::Error::Storage`].
    pub async fn commit(self) -> Result<()> {
        match self {
            Tx::Sqlite(t) => t.commit().await?,
            Tx::Postgres(t) => t.commit().await?,
        }
        Ok(())
    }

    /// Rolls back (dropping a `Tx` does too, without waiting).
    ///
    /// # Errors
    /// [`crate::Error::Storage`].
    pub async fn rollback(self) -> Result<()> {
        match self {
            Tx::Sqlite(t) => t.rollback().await?,
            Tx::Postgres(t) => t.rollback().await?,
        }
        Ok(())
    }
}

/// Opens (creating if needed) the database at `path`: WAL journal, foreign keys on, a busy
/// timeout of 5 s for writers in other processes (the CLI beside the app), and every
/// migration applied.
///
/// Safe from many processes at once (the app, the CLI, the verifier, several `keysmith init`):
/// the database file is created and migrated while holding an exclusive lock on
/// `keysmith.sqlite3.lock` beside it, so one process applies a migration and the others find
/// it applied. The database is created with mode 0600 (SQLite gives its `-wal` and `-shm` the
/// database's mode), and files left group- or world-readable by an older version are made
/// 0600 again.
///
/// # Errors
/// [`crate::Error::DataDir`], [`crate::Error::Storage`], [`crate::Error::Migration`],
/// [`crate::Error::SchemaTooNew`].
pub async fn open(path: &Path) -> Result<Pool> {
    let owned = path.to_owned();
    let lock = tokio::task::spawn_blocking(move || crate::data_dir::lock_and_create(&owned))
        .await
        .map_err(|e| crate::Error::Internal(e.to_string()))??;
    let options = SqliteConnectOptions::from_str("sqlite:")?
        .filename(path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .foreign_keys(true)
        .busy_timeout(Duration::from_secs(5));
    let pool = SqlitePoolOptions::new()
        .max_connections(4)
        .connect_with(options)
        .await?;
    MIGRATOR.run(&pool).await.map_err(migrate_error)?;
    // The -wal and -shm exist now; an older version may have left them readable by others.
    crate::data_dir::restrict_files(path)?;
    drop(lock);
    Ok(Pool::Sqlite(pool))
}

/// Connects to the PostgreSQL database at `url` (`postgres://user@host/db`, libpq's
/// parameters and `PG*` variables apply) with up to `max_connections` connections, and
/// applies every migration (sqlx holds an advisory lock while it does, so instances that
/// start together migrate once).
///
/// # Errors
/// [`crate::Error::Storage`] (a URL that does not parse, a server that does not answer),
/// [`crate::Error::Migration`], [`crate::Error::SchemaTooNew`].
pub async fn connect_postgres(url: &str, max_connections: u32) -> Result<Pool> {
    let pool = connect_postgres_as_is(url, max_connections).await?;
    if let Pool::Postgres(pg) = &pool {
        PG_MIGRATOR.run(pg).await.map_err(migrate_error)?;
    }
    Ok(pool)
}

/// [`connect_postgres`] without migrating: for verifier replicas, which only read (and may
/// use a role that cannot change the schema).
///
/// # Errors
/// [`crate::Error::Storage`].
pub async fn connect_postgres_as_is(url: &str, max_connections: u32) -> Result<Pool> {
    let options = PgConnectOptions::from_str(url)?.application_name("keysmith");
    let pool = PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(Duration::from_secs(10))
        .connect_with(options)
        .await?;
    Ok(Pool::Postgres(pool))
}

/// Creates database `name` (letters, digits and `_` only) on the PostgreSQL server at
/// `server_url`, and returns the new database's URL. For tests and set-up scripts.
///
/// # Errors
/// [`crate::Error::InvalidName`] for another name; [`crate::Error::Storage`].
pub async fn create_postgres_database(server_url: &str, name: &str) -> Result<String> {
    use sqlx::Connection;
    if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        return Err(crate::Error::InvalidName(format!(
            "{name:?} is not a plain database name"
        )));
    }
    let mut admin = PgConnection::connect(server_url).await?;
    sqlx::raw_sql(&format!("CREATE DATABASE {name}"))
        .execute(&mut admin)
        .await?;
    admin.close().await?;
    let mut url = url_without_database(server_url);
    url.push('/');
    url.push_str(name);
    Ok(url)
}

/// `postgres://user@host:port/db?opts` without `/db?opts`.
fn url_without_database(url: &str) -> String {
    let after_scheme = url.find("://").map_or(0, |i| i + 3);
    match url[after_scheme..].find(['/', '?']) {
        Some(i) => url[..after_scheme + i].to_owned(),
        None => url.to_owned(),
    }
}

fn migrate_error(e: sqlx::migrate::MigrateError) -> crate::Error {
    match e {
        sqlx::migrate::MigrateError::VersionMissing(v) => crate::Error::SchemaTooNew(v),
        other => crate::Error::Migration(other),
    }
}

/// A member row.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct MemberRow {
    pub id: String,
    pub name: String,
    /// The name as compared (`validate::name_key`): unique.
    pub name_key: String,
    pub role: String,
    pub passphrase_hash: String,
    pub must_change_passphrase: bool,
    pub created_at: i64,
    pub disabled_at: Option<i64>,
    /// The row's MAC (`integrity::RowKey::member_mac`); `None` before it was sealed.
    pub mac: Option<Vec<u8>>,
}

/// A key row joined with its creator, as lists show it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct KeyRow {
    pub id: String,
    pub name: String,
    pub start: String,
    /// HMAC-SHA-256(pepper, key): the key's stored form.
    pub digest: Vec<u8>,
    pub created_at: i64,
    pub created_by: String,
    pub creator_name: String,
    pub creator_role: String,
    pub creator_disabled_at: Option<i64>,
    pub last_used_at: Option<i64>,
    pub revoked_at: Option<i64>,
    pub expires_at: Option<i64>,
    pub replaced_by: Option<String>,
    /// When the key was paused (Unix ms); `None` when it is not.
    pub paused_at: Option<i64>,
    /// The networks the key may be used from (`sources::AllowedSources::stored`); `None` for
    /// anywhere.
    pub allowed_sources: Option<String>,
    /// The key's rate limit (`rate::RateLimit::stored`); `None` for none.
    pub rate_limit: Option<String>,
    /// The key's scopes (`scope::Scopes::stored`); `None` for the creator's whole role.
    pub scopes: Option<String>,
    /// The row's MAC (`integrity::RowKey::key_mac`); `None` before it was sealed.
    pub mac: Option<Vec<u8>>,
}

const KEY_COLUMNS: &str = "k.id, k.name, k.start, k.digest, k.created_at, k.created_by, \
     m.name AS creator_name, m.role AS creator_role, m.disabled_at AS creator_disabled_at, \
     k.last_used_at, k.revoked_at, k.expires_at, k.replaced_by, k.paused_at, k.allowed_sources, k.rate_limit, k.scopes, k.mac \
     FROM api_keys k JOIN members m ON m.id = k.created_by";

/// The account's id, if first-run set-up was done.
pub async fn account_id<'a>(ex: impl Into<Ex<'a>>) -> Result<Option<String>> {
    Ok(on!(ex, c => sqlx::query_scalar("SELECT id FROM account")
        .fetch_optional(c)
        .await?))
}

/// The account's pepper check value, if recorded (see `Pepper::check_value`).
pub async fn pepper_check<'a>(ex: impl Into<Ex<'a>>) -> Result<Option<Vec<u8>>> {
    Ok(
        on!(ex, c => sqlx::query_scalar("SELECT pepper_check FROM account")
        .fetch_optional(c)
        .await?)
        .flatten(),
    )
}

/// Records the pepper check value when none is recorded yet.
pub async fn set_pepper_check<'a>(ex: impl Into<Ex<'a>>, check: &[u8; 32]) -> Result<()> {
    on!(ex, c => sqlx::query("UPDATE account SET pepper_check = $1 WHERE pepper_check IS NULL")
        .bind(&check[..])
        .execute(c)
        .await?
        .rows_affected());
    Ok(())
}

pub async fn insert_account<'a>(ex: impl Into<Ex<'a>>, id: &str, now: i64) -> Result<()> {
    on!(ex, c => sqlx::query("INSERT INTO account (id, created_at) VALUES ($1, $2)")
        .bind(id)
        .bind(now)
        .execute(c)
        .await?
        .rows_affected());
    Ok(())
}

/// Inserts a member. `name_key` is the lowercase name that must be unique.
pub async fn insert_member<'a>(ex: impl Into<Ex<'a>>, m: &MemberRow) -> Result<()> {
    on!(ex, c => sqlx::query(
        "INSERT INTO members (id, name, name_key, role, passphrase_hash, must_change_passphrase, created_at, mac) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(&m.id)
    .bind(&m.name)
    .bind(&m.name_key)
    .bind(&m.role)
    .bind(&m.passphrase_hash)
    .bind(m.must_change_passphrase)
    .bind(m.created_at)
    .bind(&m.mac)
    .execute(c)
    .await?
    .rows_affected());
    Ok(())
}

const MEMBER_COLUMNS: &str =
    "id, name, name_key, role, passphrase_hash, must_change_passphrase, created_at, disabled_at, mac \
     FROM members";

/// The member with this name, compared as [`crate::validate::name_key`] does (trimmed, NFC,
/// case-insensitive).
pub async fn member_by_name<'a>(ex: impl Into<Ex<'a>>, name: &str) -> Result<Option<MemberRow>> {
    Ok(
        on!(ex, c => sqlx::query_as(&format!("SELECT {MEMBER_COLUMNS} WHERE name_key = $1"))
            .bind(crate::validate::name_key(name))
            .fetch_optional(c)
            .await?),
    )
}

pub async fn member_by_id<'a>(ex: impl Into<Ex<'a>>, id: &str) -> Result<Option<MemberRow>> {
    Ok(
        on!(ex, c => sqlx::query_as(&format!("SELECT {MEMBER_COLUMNS} WHERE id = $1"))
            .bind(id)
            .fetch_optional(c)
            .await?),
    )
}

/// A member row with the state (row MAC) the newest audit entry about it recorded, if any did.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct MemberRowWithState {
    #[sqlx(flatten)]
    pub row: MemberRow,
    pub recorded_state: Option<Vec<u8>>,
}

/// [`member_by_id`] with the state the audit log last recorded for the member, in one
/// statement (every command checks its actor this way, inside the write lock).
pub async fn member_by_id_with_state<'a>(
    ex: impl Into<Ex<'a>>,
    id: &str,
) -> Result<Option<MemberRowWithState>> {
    Ok(on!(ex, c => sqlx::query_as(&format!(
        "SELECT (SELECT a.state FROM audit_log a \
         WHERE a.subject = 'member:' || members.id AND a.state IS NOT NULL \
         ORDER BY a.seq DESC LIMIT 1) AS recorded_state, {MEMBER_COLUMNS} WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(c)
    .await?))
}

/// A member row with its recorded state ([`MemberRowWithState`]) and the audit chain's last
/// entry (`head_seq`, `head_hash`; `None` for an empty log).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct MemberRowAtHead {
    #[sqlx(flatten)]
    pub member: MemberRowWithState,
    pub head_seq: Option<i64>,
    pub head_hash: Option<Vec<u8>>,
}

/// [`member_by_id_with_state`] and the audit chain's head in one statement: how a write
/// transaction starts once it holds the write lock (one round trip fewer under the lock).
pub async fn member_at_head<'a>(
    ex: impl Into<Ex<'a>>,
    id: &str,
) -> Result<Option<MemberRowAtHead>> {
    Ok(on!(ex, c => sqlx::query_as(&format!(
        "SELECT h.seq AS head_seq, h.hash AS head_hash, \
         (SELECT a.state FROM audit_log a \
         WHERE a.subject = 'member:' || members.id AND a.state IS NOT NULL \
         ORDER BY a.seq DESC LIMIT 1) AS recorded_state, {MEMBER_COLUMNS} \
         LEFT JOIN (SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1) h ON 1 = 1 \
         WHERE members.id = $1"
    ))
    .bind(id)
    .fetch_optional(c)
    .await?))
}

/// A key to insert. The digest is HMAC-SHA-256 of the key; the key itself is never stored.
#[derive(Debug)]
pub struct NewKey<'a> {
    pub id: &'a str,
    pub name: &'a str,
    pub start: &'a str,
    pub digest: &'a [u8; 32],
    pub created_at: i64,
    pub created_by: &'a str,
    /// Unix ms; `None` for a key that never expires.
    pub expires_at: Option<i64>,
    /// The row's MAC (`integrity::RowKey::key_mac`).
    pub mac: &'a [u8; 32],
    /// `sources::AllowedSources::stored`; `None` for anywhere.
    pub allowed_sources: Option<&'a str>,
    /// `rate::RateLimit::stored`; `None` for no limit.
    pub rate_limit: Option<&'a str>,
    /// `scope::Scopes::stored`; `None` for the creator's whole role.
    pub scopes: Option<&'a str>,
}

/// Binds a [`NewKey`]'s eleven fields, in the column order of [`insert_key`]'s statement, to
/// a query (also `audit::append_after_with`'s, which inserts the key in the same statement
/// as its audit entry).
macro_rules! bind_new_key {
    ($query:expr, $k:expr) => {
        $query
            .bind($k.id)
            .bind($k.name)
            .bind($k.start)
            .bind(&$k.digest[..])
            .bind($k.created_at)
            .bind($k.created_by)
            .bind($k.expires_at)
            .bind(&$k.mac[..])
            .bind($k.allowed_sources)
            .bind($k.rate_limit)
            .bind($k.scopes)
    };
}
pub(crate) use bind_new_key;

/// Inserts a key (`audit::append_after_with` has the same statement inside its own).
pub async fn insert_key<'a>(ex: impl Into<Ex<'a>>, k: &NewKey<'_>) -> Result<()> {
    on!(ex, c => bind_new_key!(sqlx::query(
        "INSERT INTO api_keys (id, name, start, digest, created_at, created_by, expires_at, mac, \
         allowed_sources, rate_limit, scopes) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
    ), k)
    .execute(c)
    .await?
    .rows_affected());
    Ok(())
}

/// A key row with the state (row MAC) the newest audit entry about it recorded, if any did.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct KeyRowWithState {
    #[sqlx(flatten)]
    pub row: KeyRow,
    pub recorded_state: Option<Vec<u8>>,
}

/// Keys, newest first (only those `created_by` made, when given), each with the state the
/// audit log last recorded for it, in one statement: one snapshot of the database, so a change
/// committed meanwhile cannot make a row and its recorded state disagree (one index look-up
/// per row, not one query per row).
///
/// `limit`: only the first that many, newest first (the index `api_keys_newest` reads them
/// in order); `None` for all.
pub async fn list_keys_with_state<'a>(
    ex: impl Into<Ex<'a>>,
    created_by: Option<&str>,
    limit: Option<u32>,
) -> Result<Vec<KeyRowWithState>> {
    const STATE: &str = "(SELECT a.state FROM audit_log a \
         WHERE a.subject = 'key:' || k.id AND a.state IS NOT NULL \
         ORDER BY a.seq DESC LIMIT 1) AS recorded_state";
    // SQLite reads "no limit" as LIMIT -1, PostgreSQL as LIMIT NULL: so no LIMIT at all.
    let (filter, limit_at) = match created_by {
        Some(_) => ("WHERE k.created_by = $1", 2),
        None => ("", 1),
    };
    let sql = match limit {
        Some(_) => format!(
            "SELECT {STATE}, {KEY_COLUMNS} {filter} ORDER BY k.created_at DESC, k.id DESC \
             LIMIT ${limit_at}"
        ),
        None => {
            format!("SELECT {STATE}, {KEY_COLUMNS} {filter} ORDER BY k.created_at DESC, k.id DESC")
        }
    };
    let rows = on!(ex, c => {
        let mut query = sqlx::query_as(&sql);
        if let Some(member) = created_by {
            query = query.bind(member);
        }
        if let Some(n) = limit {
            query = query.bind(i64::from(n));
        }
        query.fetch_all(c).await?
    });
    Ok(rows)
}

pub async fn key_by_id<'a>(ex: impl Into<Ex<'a>>, id: &str) -> Result<Option<KeyRow>> {
    Ok(
        on!(ex, c => sqlx::query_as(&format!("SELECT {KEY_COLUMNS} WHERE k.id = $1"))
            .bind(id)
            .fetch_optional(c)
            .await?),
    )
}

pub async fn key_by_digest<'a>(ex: impl Into<Ex<'a>>, digest: &[u8; 32]) -> Result<Option<KeyRow>> {
    Ok(
        on!(ex, c => sqlx::query_as(&format!("SELECT {KEY_COLUMNS} WHERE k.digest = $1"))
            .bind(&digest[..])
            .fetch_optional(c)
            .await?),
    )
}

/// Marks a key revoked at `now`. Returns false if it was already revoked (or is unknown).
pub async fn revoke_key<'a>(ex: impl Into<Ex<'a>>, id: &str, now: i64) -> Result<bool> {
    let done = on!(ex, c => sqlx::query("UPDATE api_keys SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
            .bind(now)
            .bind(id)
            .execute(c)
            .await?
            .rows_affected());
    Ok(done == 1)
}

/// Pauses a key at `now` (`Some`) or resumes it (`None`). Returns false if the key is
/// unknown, revoked, or already in that state.
pub async fn set_paused<'a>(
    ex: impl Into<Ex<'a>>,
    id: &str,
    paused_at: Option<i64>,
) -> Result<bool> {
    let done = on!(ex, c => sqlx::query(
        "UPDATE api_keys SET paused_at = $1 WHERE id = $2 AND revoked_at IS NULL \
         AND (paused_at IS NULL) = ($1 IS NOT NULL)",
    )
    .bind(paused_at)
    .bind(id)
    .execute(c)
    .await?
    .rows_affected());
    Ok(done == 1)
}

/// Ends a rolled key's life at `expires_at` (never later than an expiry it already had) and
/// points it at its replacement. Returns false if it was already replaced or revoked.
pub async fn mark_rolled<'a>(
    ex: impl Into<Ex<'a>>,
    id: &str,
    replaced_by: &str,
    expires_at: i64,
) -> Result<bool> {
    let done = on!(ex, c => sqlx::query(
        "UPDATE api_keys SET replaced_by = $1, expires_at = CASE WHEN expires_at IS NULL OR expires_at > $3 THEN $3 ELSE expires_at END \
         WHERE id = $2 AND replaced_by IS NULL AND revoked_at IS NULL",
    )
    .bind(replaced_by)
    .bind(id)
    .bind(expires_at)
    .execute(c)
    .await?
    .rows_affected());
    Ok(done == 1)
}

/// Records a use of the key at `now` (never moves last-used backwards).
pub async fn touch_last_used<'a>(ex: impl Into<Ex<'a>>, id: &str, now: i64) -> Result<()> {
    on!(ex, c => sqlx::query(
        "UPDATE api_keys SET last_used_at = $1 WHERE id = $2 AND (last_used_at IS NULL OR last_used_at < $3)",
    )
    .bind(now)
    .bind(id)
    .bind(now)
    .execute(c)
    .await?
    .rows_affected());
    Ok(())
}

/// One row of `key_usage`: a key's counts for one UTC day (`usage.rs`).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct UsageRow {
    pub key_id: String,
    /// Days since 1970-01-01, UTC.
    pub day: i64,
    pub allowed: i64,
    pub revoked: i64,
    pub expired: i64,
    pub paused: i64,
    pub role_refused: i64,
    pub scope_refused: i64,
    pub address_refused: i64,
    pub rate_limited: i64,
    pub last_at: Option<i64>,
    pub last_from: Option<String>,
}

impl UsageRow {
    /// The counts, as the API carries them (a negative count, which the schema refuses,
    /// reads as 0).
    pub fn counts(&self) -> keysmith_types::UsageCounts {
        let n = |v: i64| u64::try_from(v).unwrap_or(0);
        keysmith_types::UsageCounts {
            allowed: n(self.allowed),
            revoked: n(self.revoked),
            expired: n(self.expired),
            paused: n(self.paused),
            role: n(self.role_refused),
            scope: n(self.scope_refused),
            address: n(self.address_refused),
            rate_limited: n(self.rate_limited),
        }
    }
}

const USAGE_COLUMNS: &str = "key_id, day, allowed, revoked, expired, paused, role_refused, \
     scope_refused, address_refused, rate_limited, last_at, last_from";

/// Adds one key's tally for one day to its usage row ([`crate::usage::UPSERT_SQL`]).
pub async fn add_usage<'a>(
    ex: impl Into<Ex<'a>>,
    key_id: &str,
    day: i64,
    tally: &crate::usage::DayTally,
) -> Result<()> {
    use crate::usage::stored;
    let c = &tally.counts;
    let (last_at, last_from) = tally.stored_last();
    on!(ex, e => sqlx::query(crate::usage::UPSERT_SQL)
        .bind(key_id)
        .bind(day)
        .bind(stored(c.allowed))
        .bind(stored(c.revoked))
        .bind(stored(c.expired))
        .bind(stored(c.paused))
        .bind(stored(c.role))
        .bind(stored(c.scope))
        .bind(stored(c.address))
        .bind(stored(c.rate_limited))
        .bind(last_at)
        .bind(last_from.as_deref())
        .execute(e)
        .await?
        .rows_affected());
    Ok(())
}

/// Deletes the usage rows of days before `day`; returns how many.
pub async fn prune_usage<'a>(ex: impl Into<Ex<'a>>, day: i64) -> Result<u64> {
    Ok(on!(ex, e => sqlx::query(crate::usage::PRUNE_SQL)
        .bind(day)
        .execute(e)
        .await?
        .rows_affected()))
}

/// A key's usage rows from day `from` on, oldest first.
pub async fn usage_of_key<'a>(
    ex: impl Into<Ex<'a>>,
    key_id: &str,
    from: i64,
) -> Result<Vec<UsageRow>> {
    Ok(on!(ex, e => sqlx::query_as(&format!(
        "SELECT {USAGE_COLUMNS} FROM key_usage WHERE key_id = $1 AND day >= $2 ORDER BY day"
    ))
    .bind(key_id)
    .bind(from)
    .fetch_all(e)
    .await?))
}

/// The client address of a key's latest accepted use on record, if the verifier knew one.
pub async fn last_use_source<'a>(ex: impl Into<Ex<'a>>, key_id: &str) -> Result<Option<String>> {
    let found: Option<(Option<String>,)> = on!(ex, e => sqlx::query_as(
        "SELECT last_from FROM key_usage WHERE key_id = $1 AND last_at IS NOT NULL \
         ORDER BY last_at DESC LIMIT 1"
    )
    .bind(key_id)
    .fetch_optional(e)
    .await?);
    Ok(found.and_then(|(from,)| from))
}

/// Every usage row (moving an account), by key then day.
pub async fn all_usage<'a>(ex: impl Into<Ex<'a>>) -> Result<Vec<UsageRow>> {
    Ok(on!(ex, e => sqlx::query_as(&format!(
        "SELECT {USAGE_COLUMNS} FROM key_usage ORDER BY key_id, day"
    ))
    .fetch_all(e)
    .await?))
}

/// Writes a usage row read from another store, as it is.
pub async fn copy_usage<'a>(ex: impl Into<Ex<'a>>, r: &UsageRow) -> Result<()> {
    on!(ex, e => sqlx::query(&format!(
        "INSERT INTO key_usage ({USAGE_COLUMNS}) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
    ))
    .bind(&r.key_id)
    .bind(r.day)
    .bind(r.allowed)
    .bind(r.revoked)
    .bind(r.expired)
    .bind(r.paused)
    .bind(r.role_refused)
    .bind(r.scope_refused)
    .bind(r.address_refused)
    .bind(r.rate_limited)
    .bind(r.last_at)
    .bind(r.last_from.as_deref())
    .execute(e)
    .await?
    .rows_affected());
    Ok(())
}

/// Every member, removed ones included, in role order then by name.
pub async fn list_members<'a>(ex: impl Into<Ex<'a>>) -> Result<Vec<MemberRow>> {
    Ok(on!(ex, c => sqlx::query_as(&format!(
        "SELECT {MEMBER_COLUMNS} ORDER BY disabled_at IS NOT NULL, \
         CASE role WHEN 'owner' THEN 0 WHEN 'admin' THEN 1 WHEN 'manager' THEN 2 \
         WHEN 'author' THEN 3 ELSE 4 END, name_key"
    ))
    .fetch_all(c)
    .await?))
}

pub async fn set_role<'a>(ex: impl Into<Ex<'a>>, id: &str, role: &str) -> Result<()> {
    on!(ex, c => sqlx::query("UPDATE members SET role = $1 WHERE id = $2")
        .bind(role)
        .bind(id)
        .execute(c)
        .await?
        .rows_affected());
    Ok(())
}

/// Disables a member (members are never deleted).
pub async fn disable_member<'a>(ex: impl Into<Ex<'a>>, id: &str, now: i64) -> Result<()> {
    on!(ex, c => sqlx::query("UPDATE members SET disabled_at = $1 WHERE id = $2 AND disabled_at IS NULL")
        .bind(now)
        .bind(id)
        .execute(c)
        .await?
        .rows_affected());
    Ok(())
}

pub async fn set_passphrase<'a>(
    ex: impl Into<Ex<'a>>,
    id: &str,
    phc: &str,
    must_change: bool,
) -> Result<()> {
    on!(ex, c => sqlx::query("UPDATE members SET passphrase_hash = $1, must_change_passphrase = $2 WHERE id = $3")
        .bind(phc)
        .bind(must_change)
        .bind(id)
        .execute(c)
        .await?
        .rows_affected());
    Ok(())
}

/// Stores a member row's MAC (after a change made in the same transaction).
pub async fn set_member_mac<'a>(ex: impl Into<Ex<'a>>, id: &str, mac: &[u8; 32]) -> Result<()> {
    on!(ex, c => sqlx::query("UPDATE members SET mac = $1 WHERE id = $2")
        .bind(&mac[..])
        .bind(id)
        .execute(c)
        .await?
        .rows_affected());
    Ok(())
}

/// Stores a key row's MAC (after a change made in the same transaction).
pub async fn set_key_mac<'a>(ex: impl Into<Ex<'a>>, id: &str, mac: &[u8; 32]) -> Result<()> {
    on!(ex, c => sqlx::query("UPDATE api_keys SET mac = $1 WHERE id = $2")
        .bind(&mac[..])
        .bind(id)
        .execute(c)
        .await?
        .rows_affected());
    Ok(())
}

/// Every key row, for sealing or reconciling.
pub async fn all_keys<'a>(ex: impl Into<Ex<'a>>) -> Result<Vec<KeyRow>> {
    Ok(
        on!(ex, c => sqlx::query_as(&format!("SELECT {KEY_COLUMNS} ORDER BY k.id"))
            .fetch_all(c)
            .await?),
    )
}

/// The columns of a key row that its seal covers, with the seal: all a verifier's index
/// needs (no names, so loading a large store holds no text per key).
#[derive(Debug, sqlx::FromRow)]
pub struct SealedKeyRow {
    pub id: String,
    /// HMAC-SHA-256(pepper, key): the key's stored form.
    pub digest: Vec<u8>,
    pub created_by: String,
    pub created_at: i64,
    pub revoked_at: Option<i64>,
    pub expires_at: Option<i64>,
    pub replaced_by: Option<String>,
    /// When the key was paused (Unix ms); `None` when it is not.
    pub paused_at: Option<i64>,
    /// The networks the key may be used from; `None` for anywhere.
    pub allowed_sources: Option<String>,
    /// The key's rate limit; `None` for none.
    pub rate_limit: Option<String>,
    /// The key's scopes; `None` for the creator's whole role.
    pub scopes: Option<String>,
    /// The row's MAC (`integrity::RowKey::key_mac`); `None` before it was sealed.
    pub mac: Option<Vec<u8>>,
}

/// Selects a [`SealedKeyRow`], columns in that order (the SQLite verifier reads them by
/// position).
pub(crate) const SEALED_KEY_SELECT: &str = "SELECT id, digest, created_by, created_at, \
     revoked_at, expires_at, replaced_by, mac, paused_at, allowed_sources, rate_limit, scopes FROM api_keys";

/// Hands every key row to `each` as it is read (streamed, never collected: an index of a
/// million keys is built without a million rows in memory at once).
///
/// # Errors
/// [`Error::Storage`], or the first error `each` returns (the rest are not read).
pub async fn each_sealed_key<'a>(
    ex: impl Into<Ex<'a>>,
    mut each: impl FnMut(SealedKeyRow) -> Result<()>,
) -> Result<()> {
    on!(ex, c => {
        let mut rows = sqlx::query_as::<_, SealedKeyRow>(SEALED_KEY_SELECT).fetch(c);
        while let Some(row) = rows.try_next().await? {
            each(row)?;
        }
    });
    Ok(())
}

/// Whether any member or key row has no MAC yet (a database from before schema version 5).
pub async fn has_unsealed_rows<'a>(ex: impl Into<Ex<'a>>) -> Result<bool> {
    Ok(on!(ex, c => sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM members WHERE mac IS NULL) \
             OR EXISTS (SELECT 1 FROM api_keys WHERE mac IS NULL)",
    )
    .fetch_one(c)
    .await?))
}

/// Sign-in attempts for one typed name: how many since the last success, and the earliest
/// time the next one is checked.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, sqlx::FromRow)]
pub struct Attempts {
    pub failed: i64,
    pub next_at: Option<i64>,
}

/// The attempts counted against `name_key`; zero when none are recorded.
pub async fn attempts<'a>(ex: impl Into<Ex<'a>>, name_key: &str) -> Result<Attempts> {
    Ok(
        on!(ex, c => sqlx::query_as("SELECT failed, next_at FROM sign_in_attempts WHERE name_key = $1")
            .bind(name_key)
            .fetch_optional(c)
            .await?)
            .unwrap_or_default(),
    )
}

/// Records the attempts counted against `name_key` at `now`.
pub async fn set_attempts<'a>(
    ex: impl Into<Ex<'a>>,
    name_key: &str,
    a: Attempts,
    now: i64,
) -> Result<()> {
    on!(ex, c => sqlx::query(
        "INSERT INTO sign_in_attempts (name_key, failed, next_at, last_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (name_key) DO UPDATE SET failed = $2, next_at = $3, last_at = $4",
    )
    .bind(name_key)
    .bind(a.failed)
    .bind(a.next_at)
    .bind(now)
    .execute(c)
    .await?
    .rows_affected());
    Ok(())
}

/// Forgets the attempts counted against `name_key` (after a successful sign-in).
pub async fn clear_attempts<'a>(ex: impl Into<Ex<'a>>, name_key: &str) -> Result<()> {
    on!(ex, c => sqlx::query("DELETE FROM sign_in_attempts WHERE name_key = $1")
        .bind(name_key)
        .execute(c)
        .await?
        .rows_affected());
    Ok(())
}

/// Forgets attempt counters idle since before `before` (their delay is long over), so
/// guessed names do not pile up.
pub async fn prune_attempts<'a>(ex: impl Into<Ex<'a>>, before: i64) -> Result<()> {
    on!(ex, c => sqlx::query("DELETE FROM sign_in_attempts WHERE last_at < $1")
        .bind(before)
        .execute(c)
        .await?
        .rows_affected());
    Ok(())
}

/// The keys a member generated that are not revoked yet.
pub async fn active_keys_of<'a>(ex: impl Into<Ex<'a>>, member_id: &str) -> Result<Vec<KeyRow>> {
    Ok(on!(ex, c => sqlx::query_as(&format!(
        "SELECT {KEY_COLUMNS} WHERE k.created_by = $1 AND k.revoked_at IS NULL ORDER BY k.created_at"
    ))
    .bind(member_id)
    .fetch_all(c)
    .await?))
}

/// A session row (the team server's signed-in members).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SessionRow {
    /// SHA-256 of the bearer token.
    pub digest: Vec<u8>,
    pub member_id: String,
    pub created_at: i64,
    pub expires_at: i64,
    pub ended_at: Option<i64>,
    pub mac: Vec<u8>,
}

/// Forgets sessions that expired before `before`.
pub async fn prune_sessions<'a>(ex: impl Into<Ex<'a>>, before: i64) -> Result<()> {
    on!(ex, c => sqlx::query("DELETE FROM sessions WHERE expires_at < $1")
        .bind(before)
        .execute(c)
        .await?
        .rows_affected());
    Ok(())
}

/// Stores a new session.
pub async fn insert_session<'a>(ex: impl Into<Ex<'a>>, s: &SessionRow) -> Result<()> {
    on!(ex, c => sqlx::query(
        "INSERT INTO sessions (digest, member_id, created_at, expires_at, ended_at, mac) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&s.digest)
    .bind(&s.member_id)
    .bind(s.created_at)
    .bind(s.expires_at)
    .bind(s.ended_at)
    .bind(&s.mac)
    .execute(c)
    .await?
    .rows_affected());
    Ok(())
}

pub async fn session_by_digest<'a>(
    ex: impl Into<Ex<'a>>,
    digest: &[u8; 32],
) -> Result<Option<SessionRow>> {
    Ok(on!(ex, c => sqlx::query_as(
        "SELECT digest, member_id, created_at, expires_at, ended_at, mac FROM sessions \
         WHERE digest = $1",
    )
    .bind(&digest[..])
    .fetch_optional(c)
    .await?))
}

/// Ends one session at `now`; false if it was unknown or ended already.
pub async fn end_session<'a>(ex: impl Into<Ex<'a>>, digest: &[u8; 32], now: i64) -> Result<bool> {
    let done = on!(ex, c => sqlx::query(
        "UPDATE sessions SET ended_at = $1 WHERE digest = $2 AND ended_at IS NULL",
    )
    .bind(now)
    .bind(&digest[..])
    .execute(c)
    .await?
    .rows_affected());
    Ok(done == 1)
}

/// Ends every open session of a member at `now` (passphrase changed); how many.
pub async fn end_sessions_of<'a>(ex: impl Into<Ex<'a>>, member_id: &str, now: i64) -> Result<u64> {
    Ok(on!(ex, c => sqlx::query(
        "UPDATE sessions SET ended_at = $1 WHERE member_id = $2 AND ended_at IS NULL",
    )
    .bind(now)
    .bind(member_id)
    .execute(c)
    .await?
    .rows_affected()))
}

/// How far the change logs reach: the newest `key_changes` and `member_changes` sequence
/// numbers (0 when empty).
pub async fn change_positions<'a>(ex: impl Into<Ex<'a>>) -> Result<(i64, i64)> {
    Ok(on!(ex, c => sqlx::query_as(
        "SELECT (SELECT coalesce(max(seq), 0) FROM key_changes), \
                (SELECT coalesce(max(seq), 0) FROM member_changes)",
    )
    .fetch_one(c)
    .await?))
}

/// The keys changed (inserted, revoked, expiry moved) after sequence number `seq`, each once.
pub async fn keys_changed_since<'a>(ex: impl Into<Ex<'a>>, seq: i64) -> Result<Vec<String>> {
    Ok(on!(ex, c => sqlx::query_scalar(
        "SELECT key_id FROM key_changes WHERE seq > $1 GROUP BY key_id ORDER BY max(seq)",
    )
    .bind(seq)
    .fetch_all(c)
    .await?))
}

/// The channel PostgreSQL's triggers notify on every key or member change
/// (`migrations/postgres/`).
pub const CHANGES_CHANNEL: &str = "keysmith_changes";

/// Change notifications from PostgreSQL (`LISTEN keysmith_changes`). A notification says
/// only that something changed; the change logs say what.
#[derive(Debug)]
pub struct ChangeListener(sqlx::postgres::PgListener);

impl ChangeListener {
    /// Listens on `pool`'s database.
    ///
    /// # Errors
    /// [`crate::Error::Internal`] on SQLite (it has no notifications);
    /// [`crate::Error::Storage`].
    pub async fn connect(pool: &Pool) -> Result<ChangeListener> {
        let Pool::Postgres(pg) = pool else {
            return Err(crate::Error::Internal(
                "change notifications need PostgreSQL".into(),
            ));
        };
        let mut listener = sqlx::postgres::PgListener::connect_with(pg).await?;
        listener.listen(CHANGES_CHANNEL).await?;
        Ok(ChangeListener(listener))
    }

    /// Waits for the next notification. After a lost connection it reconnects (and listens
    /// again) on the next call; notifications sent meanwhile are lost, which the caller's
    /// freshness poll covers.
    ///
    /// # Errors
    /// [`crate::Error::Storage`] when the connection is lost and cannot be made again.
    pub async fn next(&mut self) -> Result<()> {
        self.0.recv().await?;
        Ok(())
    }
}

/// Locks the change logs against readers until `tx` ends (tests of a replica that cannot
/// read). PostgreSQL only.
///
/// # Errors
/// [`crate::Error::Storage`].
#[cfg(feature = "testkit")]
pub async fn lock_change_log_for_tests(tx: &mut Tx) -> Result<()> {
    on!(tx, c => sqlx::query("LOCK TABLE key_changes, member_changes IN ACCESS EXCLUSIVE MODE")
        .execute(c)
        .await?
        .rows_affected());
    Ok(())
}

/// Ends every other connection to this database (tests of a replica whose connections are
/// cut). PostgreSQL only.
///
/// # Errors
/// [`crate::Error::Storage`].
#[cfg(feature = "testkit")]
pub async fn terminate_other_connections_for_tests(pool: &Pool) -> Result<()> {
    on!(pool, c => sqlx::query(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
         WHERE datname = current_database() AND pid <> pg_backend_pid()",
    )
    .execute(c)
    .await?
    .rows_affected());
    Ok(())
}

/// The account row: id, creation time, pepper check value.
pub type AccountRow = (String, i64, Option<Vec<u8>>);

pub async fn account_row<'a>(ex: impl Into<Ex<'a>>) -> Result<Option<AccountRow>> {
    Ok(
        on!(ex, c => sqlx::query_as("SELECT id, created_at, pepper_check FROM account")
        .fetch_optional(c)
        .await?),
    )
}

pub async fn insert_account_row<'a>(ex: impl Into<Ex<'a>>, row: &AccountRow) -> Result<()> {
    on!(ex, c => sqlx::query("INSERT INTO account (id, created_at, pepper_check) VALUES ($1, $2, $3)")
        .bind(&row.0)
        .bind(row.1)
        .bind(&row.2)
        .execute(c)
        .await?
        .rows_affected());
    Ok(())
}

/// Stores a member row as it is (removal time and seal included), for moving an account.
pub async fn copy_member<'a>(ex: impl Into<Ex<'a>>, m: &MemberRow) -> Result<()> {
    on!(ex, c => sqlx::query(
        "INSERT INTO members (id, name, name_key, role, passphrase_hash, must_change_passphrase, \
         created_at, disabled_at, mac) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(&m.id)
    .bind(&m.name)
    .bind(&m.name_key)
    .bind(&m.role)
    .bind(&m.passphrase_hash)
    .bind(m.must_change_passphrase)
    .bind(m.created_at)
    .bind(m.disabled_at)
    .bind(&m.mac)
    .execute(c)
    .await?
    .rows_affected());
    Ok(())
}

/// Stores a key row as it is, but for its replacement (set after every key is stored, by
/// [`set_replaced_by`]), for moving an account.
pub async fn copy_key<'a>(ex: impl Into<Ex<'a>>, k: &KeyRow) -> Result<()> {
    on!(ex, c => sqlx::query(
        "INSERT INTO api_keys (id, name, start, digest, created_at, created_by, revoked_at, \
         last_used_at, expires_at, mac, paused_at, allowed_sources, rate_limit, scopes) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
    )
    .bind(&k.id)
    .bind(&k.name)
    .bind(&k.start)
    .bind(&k.digest)
    .bind(k.created_at)
    .bind(&k.created_by)
    .bind(k.revoked_at)
    .bind(k.last_used_at)
    .bind(k.expires_at)
    .bind(&k.mac)
    .bind(k.paused_at)
    .bind(&k.allowed_sources)
    .bind(&k.rate_limit)
    .bind(&k.scopes)
    .execute(c)
    .await?
    .rows_affected());
    Ok(())
}

pub async fn set_replaced_by<'a>(ex: impl Into<Ex<'a>>, id: &str, replaced_by: &str) -> Result<()> {
    on!(ex, c => sqlx::query("UPDATE api_keys SET replaced_by = $1 WHERE id = $2")
        .bind(replaced_by)
        .bind(id)
        .execute(c)
        .await?
        .rows_affected());
    Ok(())
}
