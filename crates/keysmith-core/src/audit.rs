//! The tamper-evident audit log: who generated, copied, revoked or removed what, and when.
//!
//! Each entry's `hash = SHA-256(previous hash ‖ canonical encoding of the entry)`; the first
//! entry's previous hash is 32 zero bytes. The canonical encoding is every field in a fixed
//! order, each as an 8-byte big-endian length followed by its UTF-8 bytes, so no two different
//! entries encode alike. Triggers refuse UPDATE and DELETE; `prev_hash` is UNIQUE so the chain
//! cannot fork. [`verify_chain`] names the first entry that was edited, removed or reordered.

use sha2::{Digest, Sha256};
use sqlx::{Executor, Sqlite, SqliteConnection};

use crate::error::{Error, Result};

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuditAction {
    SignIn,
    SignInFailed,
    KeyGenerated,
    KeyCopied,
    KeyRevoked,
    KeyRolled,
    PepperExported,
    MemberAdded,
    MemberRemoved,
    RoleChanged,
    OwnershipTransferred,
    PassphraseChanged,
}

impl AuditAction {
    pub const ALL: [AuditAction; 12] = [
        AuditAction::SignIn,
        AuditAction::SignInFailed,
        AuditAction::KeyGenerated,
        AuditAction::KeyCopied,
        AuditAction::KeyRevoked,
        AuditAction::KeyRolled,
        AuditAction::PepperExported,
        AuditAction::MemberAdded,
        AuditAction::MemberRemoved,
        AuditAction::RoleChanged,
        AuditAction::OwnershipTransferred,
        AuditAction::PassphraseChanged,
    ];

    /// The stored name (`key_generated`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            AuditAction::SignIn => "sign_in",
            AuditAction::SignInFailed => "sign_in_failed",
            AuditAction::KeyGenerated => "key_generated",
            AuditAction::KeyCopied => "key_copied",
            AuditAction::KeyRevoked => "key_revoked",
            AuditAction::KeyRolled => "key_rolled",
            AuditAction::PepperExported => "pepper_exported",
            AuditAction::MemberAdded => "member_added",
            AuditAction::MemberRemoved => "member_removed",
            AuditAction::RoleChanged => "role_changed",
            AuditAction::OwnershipTransferred => "ownership_transferred",
            AuditAction::PassphraseChanged => "passphrase_changed",
        }
    }

    pub fn parse(s: &str) -> Option<AuditAction> {
        AuditAction::ALL.into_iter().find(|a| a.as_str() == s)
    }
}

/// An entry to append. `target` names what was acted on (a key or member id and name);
/// `detail` adds context (a new role, a count). Neither ever holds key material.
#[derive(Debug, Clone)]
pub struct NewEntry<'a> {
    pub at: i64,
    pub actor_id: Option<&'a str>,
    pub actor_name: &'a str,
    pub action: AuditAction,
    pub target: &'a str,
    pub detail: &'a str,
}

/// A stored entry.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct AuditRow {
    pub seq: i64,
    pub at: i64,
    pub actor_id: Option<String>,
    pub actor_name: String,
    pub action: String,
    pub target: String,
    pub detail: String,
    pub prev_hash: Vec<u8>,
    pub hash: Vec<u8>,
}

fn put(h: &mut Sha256, field: &[u8]) {
    h.update((field.len() as u64).to_be_bytes());
    h.update(field);
}

/// `SHA-256(prev ‖ seq ‖ at ‖ actor_id ‖ actor_name ‖ action ‖ target ‖ detail)`, each field
/// length-prefixed.
#[allow(clippy::too_many_arguments)]
pub fn entry_hash(
    prev: &[u8],
    seq: i64,
    at: i64,
    actor_id: Option<&str>,
    actor_name: &str,
    action: &str,
    target: &str,
    detail: &str,
) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(prev);
    put(&mut h, seq.to_string().as_bytes());
    put(&mut h, at.to_string().as_bytes());
    put(&mut h, actor_id.unwrap_or("").as_bytes());
    put(&mut h, actor_name.as_bytes());
    put(&mut h, action.as_bytes());
    put(&mut h, target.as_bytes());
    put(&mut h, detail.as_bytes());
    h.finalize().into()
}

/// Appends an entry at the end of the chain. Call it inside the transaction of the action
/// it records (opened with `BEGIN IMMEDIATE`), so both land or neither does.
///
/// # Errors
/// [`Error::Storage`].
pub async fn append(conn: &mut SqliteConnection, e: &NewEntry<'_>) -> Result<()> {
    let last: Option<(i64, Vec<u8>)> =
        sqlx::query_as("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1")
            .fetch_optional(&mut *conn)
            .await?;
    let (seq, prev) = match last {
        Some((seq, hash)) => (seq + 1, hash),
        None => (1, vec![0u8; 32]),
    };
    let hash = entry_hash(
        &prev,
        seq,
        e.at,
        e.actor_id,
        e.actor_name,
        e.action.as_str(),
        e.target,
        e.detail,
    );
    sqlx::query(
        "INSERT INTO audit_log (seq, at, actor_id, actor_name, action, target, detail, prev_hash, hash) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(seq)
    .bind(e.at)
    .bind(e.actor_id)
    .bind(e.actor_name)
    .bind(e.action.as_str())
    .bind(e.target)
    .bind(e.detail)
    .bind(&prev)
    .bind(&hash[..])
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Every entry, in chain order.
pub async fn all<'e, E: Executor<'e, Database = Sqlite>>(ex: E) -> Result<Vec<AuditRow>> {
    Ok(sqlx::query_as(
        "SELECT seq, at, actor_id, actor_name, action, target, detail, prev_hash, hash \
         FROM audit_log ORDER BY seq",
    )
    .fetch_all(ex)
    .await?)
}

/// The first break in the chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChainBreak {
    /// The entry's content no longer matches its hash (edited).
    Edited { seq: i64 },
    /// Entries before this one are missing (removed), or it was moved (reordered).
    Broken { seq: i64, expected_seq: i64 },
    /// The entry does not follow the hash of the one before it (removed or reordered).
    Unlinked { seq: i64 },
}

impl std::fmt::Display for ChainBreak {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ChainBreak::Edited { seq } => write!(f, "entry {seq} was edited or moved"),
            ChainBreak::Broken { seq, expected_seq } => write!(
                f,
                "entry {expected_seq} is missing or out of place (found entry {seq} there)"
            ),
            ChainBreak::Unlinked { seq } => write!(
                f,
                "entry {seq} does not follow the entry before it (an entry was removed or reordered)"
            ),
        }
    }
}

/// Walks the chain; `Ok(n)` with the number of intact entries, or the first break.
pub fn verify_chain(rows: &[AuditRow]) -> std::result::Result<usize, ChainBreak> {
    let mut prev = vec![0u8; 32];
    for (i, r) in rows.iter().enumerate() {
        let expected_seq = i as i64 + 1;
        if r.seq != expected_seq {
            return Err(ChainBreak::Broken {
                seq: r.seq,
                expected_seq,
            });
        }
        let recomputed = entry_hash(
            &r.prev_hash,
            r.seq,
            r.at,
            r.actor_id.as_deref(),
            &r.actor_name,
            &r.action,
            &r.target,
            &r.detail,
        );
        if recomputed[..] != r.hash[..] {
            return Err(ChainBreak::Edited { seq: r.seq });
        }
        if r.prev_hash != prev {
            return Err(ChainBreak::Unlinked { seq: r.seq });
        }
        prev.clone_from(&r.hash);
    }
    Ok(rows.len())
}

impl From<ChainBreak> for Error {
    fn from(b: ChainBreak) -> Self {
        Error::AuditTampered(b.to_string())
    }
}
