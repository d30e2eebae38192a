//! All SQL lives here. Each function takes an executor, so it runs on the pool or inside a
//! transaction alike (and ports to PostgreSQL by swapping the database type). The schema
//! comes only from `migrations/`.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Executor, Sqlite, SqlitePool};

use crate::error::Result;

/// The database file inside the data directory.
pub const DB_FILE: &str = "keysmith.sqlite3";

/// The migrations in `migrations/` at the repository root, embedded at compile time.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations");

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
pub async fn open(path: &Path) -> Result<SqlitePool> {
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
    MIGRATOR.run(&pool).await.map_err(|e| match e {
        sqlx::migrate::MigrateError::VersionMissing(v) => crate::Error::SchemaTooNew(v),
        other => crate::Error::Migration(other),
    })?;
    // The -wal and -shm exist now; an older version may have left them readable by others.
    crate::data_dir::restrict_files(path)?;
    drop(lock);
    Ok(pool)
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
    /// The row's MAC (`integrity::RowKey::key_mac`); `None` before it was sealed.
    pub mac: Option<Vec<u8>>,
}

const KEY_COLUMNS: &str = "k.id, k.name, k.start, k.digest, k.created_at, k.created_by, \
     m.name AS creator_name, m.role AS creator_role, m.disabled_at AS creator_disabled_at, \
     k.last_used_at, k.revoked_at, k.expires_at, k.replaced_by, k.mac \
     FROM api_keys k JOIN members m ON m.id = k.created_by";

/// The account's id, if first-run set-up was done.
pub async fn account_id<'e, E: Executor<'e, Database = Sqlite>>(ex: E) -> Result<Option<String>> {
    Ok(sqlx::query_scalar("SELECT id FROM account")
        .fetch_optional(ex)
        .await?)
}

/// The account's pepper check value, if recorded (see `Pepper::check_value`).
pub async fn pepper_check<'e, E: Executor<'e, Database = Sqlite>>(
    ex: E,
) -> Result<Option<Vec<u8>>> {
    Ok(sqlx::query_scalar("SELECT pepper_check FROM account")
        .fetch_optional(ex)
        .await?
        .flatten())
}

/// Records the pepper check value when none is recorded yet.
pub async fn set_pepper_check<'e, E: Executor<'e, Database = Sqlite>>(
    ex: E,
    check: &[u8; 32],
) -> Result<()> {
    sqlx::query("UPDATE account SET pepper_check = ? WHERE pepper_check IS NULL")
        .bind(&check[..])
        .execute(ex)
        .await?;
    Ok(())
}

pub async fn insert_account<'e, E: Executor<'e, Database = Sqlite>>(
    ex: E,
    id: &str,
    now: i64,
) -> Result<()> {
    sqlx::query("INSERT INTO account (id, created_at) VALUES (?, ?)")
        .bind(id)
        .bind(now)
        .execute(ex)
        .await?;
    Ok(())
}

/// Inserts a member. `name_key` is the lowercase name that must be unique.
pub async fn insert_member<'e, E: Executor<'e, Database = Sqlite>>(
    ex: E,
    m: &MemberRow,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO members (id, name, name_key, role, passphrase_hash, must_change_passphrase, created_at, mac) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(&m.id)
    .bind(&m.name)
    .bind(&m.name_key)
    .bind(&m.role)
    .bind(&m.passphrase_hash)
    .bind(m.must_change_passphrase)
    .bind(m.created_at)
    .bind(&m.mac)
    .execute(ex)
    .await?;
    Ok(())
}

const MEMBER_COLUMNS: &str =
    "id, name, name_key, role, passphrase_hash, must_change_passphrase, created_at, disabled_at, mac \
     FROM members";

/// The member with this name, compared as [`crate::validate::name_key`] does (trimmed, NFC,
/// case-insensitive).
pub async fn member_by_name<'e, E: Executor<'e, Database = Sqlite>>(
    ex: E,
    name: &str,
) -> Result<Option<MemberRow>> {
    Ok(
        sqlx::query_as(&format!("SELECT {MEMBER_COLUMNS} WHERE name_key = ?"))
            .bind(crate::validate::name_key(name))
            .fetch_optional(ex)
            .await?,
    )
}

pub async fn member_by_id<'e, E: Executor<'e, Database = Sqlite>>(
    ex: E,
    id: &str,
) -> Result<Option<MemberRow>> {
    Ok(
        sqlx::query_as(&format!("SELECT {MEMBER_COLUMNS} WHERE id = ?"))
            .bind(id)
            .fetch_optional(ex)
            .await?,
    )
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
}

pub async fn insert_key<'e, E: Executor<'e, Database = Sqlite>>(
    ex: E,
    k: &NewKey<'_>,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO api_keys (id, name, start, digest, created_at, created_by, expires_at, mac) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(k.id)
    .bind(k.name)
    .bind(k.start)
    .bind(&k.digest[..])
    .bind(k.created_at)
    .bind(k.created_by)
    .bind(k.expires_at)
    .bind(&k.mac[..])
    .execute(ex)
    .await?;
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
pub async fn list_keys_with_state<'e, E: Executor<'e, Database = Sqlite>>(
    ex: E,
    created_by: Option<&str>,
) -> Result<Vec<KeyRowWithState>> {
    const STATE: &str = "(SELECT a.state FROM audit_log a \
         WHERE a.subject = 'key:' || k.id AND a.state IS NOT NULL \
         ORDER BY a.seq DESC LIMIT 1) AS recorded_state";
    let rows = match created_by {
        Some(member) => {
            sqlx::query_as(&format!(
                "SELECT {STATE}, {KEY_COLUMNS} WHERE k.created_by = ? \
                 ORDER BY k.created_at DESC, k.id DESC"
            ))
            .bind(member)
            .fetch_all(ex)
            .await?
        }
        None => {
            sqlx::query_as(&format!(
                "SELECT {STATE}, {KEY_COLUMNS} ORDER BY k.created_at DESC, k.id DESC"
            ))
            .fetch_all(ex)
            .await?
        }
    };
    Ok(rows)
}

pub async fn key_by_id<'e, E: Executor<'e, Database = Sqlite>>(
    ex: E,
    id: &str,
) -> Result<Option<KeyRow>> {
    Ok(
        sqlx::query_as(&format!("SELECT {KEY_COLUMNS} WHERE k.id = ?"))
            .bind(id)
            .fetch_optional(ex)
            .await?,
    )
}

pub async fn key_by_digest<'e, E: Executor<'e, Database = Sqlite>>(
    ex: E,
    digest: &[u8; 32],
) -> Result<Option<KeyRow>> {
    Ok(
        sqlx::query_as(&format!("SELECT {KEY_COLUMNS} WHERE k.digest = ?"))
            .bind(&digest[..])
            .fetch_optional(ex)
            .await?,
    )
}

/// Marks a key revoked at `now`. Returns false if it was already revoked (or is unknown).
pub async fn revoke_key<'e, E: Executor<'e, Database = Sqlite>>(
    ex: E,
    id: &str,
    now: i64,
) -> Result<bool> {
    let done =
        sqlx::query("UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL")
            .bind(now)
            .bind(id)
            .execute(ex)
            .await?;
    Ok(done.rows_affected() == 1)
}

/// Ends a rolled key's life at `expires_at` (never later than an expiry it already had) and
/// points it at its replacement. Returns false if it was already replaced or revoked.
pub async fn mark_rolled<'e, E: Executor<'e, Database = Sqlite>>(
    ex: E,
    id: &str,
    replaced_by: &str,
    expires_at: i64,
) -> Result<bool> {
    let done = sqlx::query(
        "UPDATE api_keys SET replaced_by = ?1, expires_at = min(coalesce(expires_at, ?3), ?3) \
         WHERE id = ?2 AND replaced_by IS NULL AND revoked_at IS NULL",
    )
    .bind(replaced_by)
    .bind(id)
    .bind(expires_at)
    .execute(ex)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Records a use of the key at `now` (never moves last-used backwards).
pub async fn touch_last_used<'e, E: Executor<'e, Database = Sqlite>>(
    ex: E,
    id: &str,
    now: i64,
) -> Result<()> {
    sqlx::query(
        "UPDATE api_keys SET last_used_at = ? WHERE id = ? AND (last_used_at IS NULL OR last_used_at < ?)",
    )
    .bind(now)
    .bind(id)
    .bind(now)
    .execute(ex)
    .await?;
    Ok(())
}

/// Every member, removed ones included, in role order then by name.
pub async fn list_members<'e, E: Executor<'e, Database = Sqlite>>(ex: E) -> Result<Vec<MemberRow>> {
    Ok(sqlx::query_as(&format!(
        "SELECT {MEMBER_COLUMNS} ORDER BY disabled_at IS NOT NULL, \
         CASE role WHEN 'owner' THEN 0 WHEN 'admin' THEN 1 WHEN 'manager' THEN 2 \
         WHEN 'author' THEN 3 ELSE 4 END, name_key"
    ))
    .fetch_all(ex)
    .await?)
}

pub async fn set_role<'e, E: Executor<'e, Database = Sqlite>>(
    ex: E,
    id: &str,
    role: &str,
) -> Result<()> {
    sqlx::query("UPDATE members SET role = ? WHERE id = ?")
        .bind(role)
        .bind(id)
        .execute(ex)
        .await?;
    Ok(())
}

/// Disables a member (members are never deleted).
pub async fn disable_member<'e, E: Executor<'e, Database = Sqlite>>(
    ex: E,
    id: &str,
    now: i64,
) -> Result<()> {
    sqlx::query("UPDATE members SET disabled_at = ? WHERE id = ? AND disabled_at IS NULL")
        .bind(now)
        .bind(id)
        .execute(ex)
        .await?;
    Ok(())
}

pub async fn set_passphrase<'e, E: Executor<'e, Database = Sqlite>>(
    ex: E,
    id: &str,
    phc: &str,
    must_change: bool,
) -> Result<()> {
    sqlx::query("UPDATE members SET passphrase_hash = ?, must_change_passphrase = ? WHERE id = ?")
        .bind(phc)
        .bind(must_change)
        .bind(id)
        .execute(ex)
        .await?;
    Ok(())
}

/// Stores a member row's MAC (after a change made in the same transaction).
pub async fn set_member_mac<'e, E: Executor<'e, Database = Sqlite>>(
    ex: E,
    id: &str,
    mac: &[u8; 32],
) -> Result<()> {
    sqlx::query("UPDATE members SET mac = ? WHERE id = ?")
        .bind(&mac[..])
        .bind(id)
        .execute(ex)
        .await?;
    Ok(())
}

/// Stores a key row's MAC (after a change made in the same transaction).
pub async fn set_key_mac<'e, E: Executor<'e, Database = Sqlite>>(
    ex: E,
    id: &str,
    mac: &[u8; 32],
) -> Result<()> {
    sqlx::query("UPDATE api_keys SET mac = ? WHERE id = ?")
        .bind(&mac[..])
        .bind(id)
        .execute(ex)
        .await?;
    Ok(())
}

/// Every key row, for sealing or reconciling.
pub async fn all_keys<'e, E: Executor<'e, Database = Sqlite>>(ex: E) -> Result<Vec<KeyRow>> {
    Ok(
        sqlx::query_as(&format!("SELECT {KEY_COLUMNS} ORDER BY k.id"))
            .fetch_all(ex)
            .await?,
    )
}

/// Whether any member or key row has no MAC yet (a database from before schema version 5).
pub async fn has_unsealed_rows<'e, E: Executor<'e, Database = Sqlite>>(ex: E) -> Result<bool> {
    Ok(sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM members WHERE mac IS NULL) \
             OR EXISTS (SELECT 1 FROM api_keys WHERE mac IS NULL)",
    )
    .fetch_one(ex)
    .await?)
}

/// Sign-in attempts for one typed name: how many since the last success, and the earliest
/// time the next one is checked.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, sqlx::FromRow)]
pub struct Attempts {
    pub failed: i64,
    pub next_at: Option<i64>,
}

/// The attempts counted against `name_key`; zero when none are recorded.
pub async fn attempts<'e, E: Executor<'e, Database = Sqlite>>(
    ex: E,
    name_key: &str,
) -> Result<Attempts> {
    Ok(
        sqlx::query_as("SELECT failed, next_at FROM sign_in_attempts WHERE name_key = ?")
            .bind(name_key)
            .fetch_optional(ex)
            .await?
            .unwrap_or_default(),
    )
}

/// Records the attempts counted against `name_key` at `now`.
pub async fn set_attempts<'e, E: Executor<'e, Database = Sqlite>>(
    ex: E,
    name_key: &str,
    a: Attempts,
    now: i64,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO sign_in_attempts (name_key, failed, next_at, last_at) VALUES (?1, ?2, ?3, ?4) \
         ON CONFLICT (name_key) DO UPDATE SET failed = ?2, next_at = ?3, last_at = ?4",
    )
    .bind(name_key)
    .bind(a.failed)
    .bind(a.next_at)
    .bind(now)
    .execute(ex)
    .await?;
    Ok(())
}

/// Forgets the attempts counted against `name_key` (after a successful sign-in).
pub async fn clear_attempts<'e, E: Executor<'e, Database = Sqlite>>(
    ex: E,
    name_key: &str,
) -> Result<()> {
    sqlx::query("DELETE FROM sign_in_attempts WHERE name_key = ?")
        .bind(name_key)
        .execute(ex)
        .await?;
    Ok(())
}

/// Forgets attempt counters idle since before `before` (their delay is long over), so
/// guessed names do not pile up.
pub async fn prune_attempts<'e, E: Executor<'e, Database = Sqlite>>(
    ex: E,
    before: i64,
) -> Result<()> {
    sqlx::query("DELETE FROM sign_in_attempts WHERE last_at < ?")
        .bind(before)
        .execute(ex)
        .await?;
    Ok(())
}

/// The keys a member generated that are not revoked yet.
pub async fn active_keys_of<'e, E: Executor<'e, Database = Sqlite>>(
    ex: E,
    member_id: &str,
) -> Result<Vec<KeyRow>> {
    Ok(sqlx::query_as(&format!(
        "SELECT {KEY_COLUMNS} WHERE k.created_by = ? AND k.revoked_at IS NULL ORDER BY k.created_at"
    ))
    .bind(member_id)
    .fetch_all(ex)
    .await?)
}
