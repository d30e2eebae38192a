//! The tamper-evident audit log: who generated, copied, revoked or removed what, and when.
//!
//! Each entry's `hash = HMAC-SHA-256(audit key, "keysmith audit v2" ‖ previous hash ‖
//! canonical encoding of the entry)`, the audit key being a secret in the OS keyring, never
//! in the database (see `integrity.rs`); the first entry's previous hash is 32 zero bytes.
//! The canonical encoding is every field in a fixed order, each as an 8-byte big-endian
//! length followed by its bytes, so no two different entries encode alike. Entries written
//! before keyed chains (schema version 4 and older) keep their plain SHA-256 hash; the first
//! keyed entry seals them. Triggers refuse UPDATE and DELETE; `prev_hash` is UNIQUE so the
//! chain cannot fork. [`verify_chain`] names the first entry that was edited, removed or
//! reordered; the keyring's anchor (checked by the registry) catches entries cut off the end.

use hmac::Mac;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::error::{Error, Result};
use crate::integrity::{put as put_mac, AuditKey, Head};
use crate::store::{on, Ex, Tx};

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuditAction {
    SignIn,
    SignInFailed,
    KeyGenerated,
    KeyCopied,
    KeyRevoked,
    KeyRolled,
    KeyPaused,
    KeyResumed,
    PepperExported,
    MemberAdded,
    MemberRemoved,
    RoleChanged,
    OwnershipTransferred,
    PassphraseChanged,
    AccountCreated,
    AccountMoved,
    RowsSealed,
    TamperDetected,
    AnchorReset,
}

impl AuditAction {
    pub const ALL: [AuditAction; 19] = [
        AuditAction::SignIn,
        AuditAction::SignInFailed,
        AuditAction::KeyGenerated,
        AuditAction::KeyCopied,
        AuditAction::KeyRevoked,
        AuditAction::KeyRolled,
        AuditAction::KeyPaused,
        AuditAction::KeyResumed,
        AuditAction::PepperExported,
        AuditAction::MemberAdded,
        AuditAction::MemberRemoved,
        AuditAction::RoleChanged,
        AuditAction::OwnershipTransferred,
        AuditAction::PassphraseChanged,
        AuditAction::AccountCreated,
        AuditAction::AccountMoved,
        AuditAction::RowsSealed,
        AuditAction::TamperDetected,
        AuditAction::AnchorReset,
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
            AuditAction::KeyPaused => "key_paused",
            AuditAction::KeyResumed => "key_resumed",
            AuditAction::PepperExported => "pepper_exported",
            AuditAction::MemberAdded => "member_added",
            AuditAction::MemberRemoved => "member_removed",
            AuditAction::RoleChanged => "role_changed",
            AuditAction::OwnershipTransferred => "ownership_transferred",
            AuditAction::PassphraseChanged => "passphrase_changed",
            AuditAction::AccountCreated => "account_created",
            AuditAction::AccountMoved => "account_moved",
            AuditAction::RowsSealed => "rows_sealed",
            AuditAction::TamperDetected => "tamper_detected",
            AuditAction::AnchorReset => "anchor_reset",
        }
    }

    pub fn parse(s: &str) -> Option<AuditAction> {
        AuditAction::ALL.into_iter().find(|a| a.as_str() == s)
    }
}

/// An entry to append. `target` names what was acted on (a key or member id and name);
/// `detail` adds context (a new role, a count). Neither ever holds key material. `subject`
/// and `state` name the row the action changed and its MAC afterwards.
#[derive(Debug, Clone)]
pub struct NewEntry<'a> {
    pub at: i64,
    pub actor_id: Option<&'a str>,
    pub actor_name: &'a str,
    pub action: AuditAction,
    pub target: &'a str,
    pub detail: &'a str,
    pub subject: Option<Subject<'a>>,
}

/// The row an entry changed (`member:<id>` or `key:<id>`) and its MAC after the change.
#[derive(Debug, Clone, Copy)]
pub struct Subject<'a> {
    pub row: &'a str,
    pub state: [u8; 32],
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
    pub keyed: bool,
    pub subject: Option<String>,
    pub state: Option<Vec<u8>>,
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

/// `HMAC-SHA-256(audit key, "keysmith audit v2" ‖ prev ‖ seq ‖ at ‖ actor_id ‖ actor_name ‖
/// action ‖ target ‖ detail ‖ subject ‖ state)`, each field after `prev` length-prefixed.
#[allow(clippy::too_many_arguments)]
pub fn keyed_entry_hash(
    key: &AuditKey,
    prev: &[u8],
    seq: i64,
    at: i64,
    actor_id: Option<&str>,
    actor_name: &str,
    action: &str,
    target: &str,
    detail: &str,
    subject: Option<&str>,
    state: Option<&[u8]>,
) -> [u8; 32] {
    let mut mac = key.hmac();
    put_mac(&mut mac, b"keysmith audit v2");
    put_mac(&mut mac, prev);
    put_mac(&mut mac, seq.to_string().as_bytes());
    put_mac(&mut mac, at.to_string().as_bytes());
    put_mac(&mut mac, actor_id.unwrap_or("").as_bytes());
    put_mac(&mut mac, actor_name.as_bytes());
    put_mac(&mut mac, action.as_bytes());
    put_mac(&mut mac, target.as_bytes());
    put_mac(&mut mac, detail.as_bytes());
    put_mac(&mut mac, subject.unwrap_or("").as_bytes());
    put_mac(&mut mac, state.unwrap_or(&[]));
    mac.finalize().into_bytes().into()
}

/// The chain's last entry, or [`Head::GENESIS`] when the log is empty.
///
/// # Errors
/// [`Error::Storage`]; [`Error::AuditTampered`] for a stored hash of the wrong length.
pub async fn head<'a>(ex: impl Into<Ex<'a>>) -> Result<Head> {
    let last: Option<(i64, Vec<u8>)> = on!(ex, c => sqlx::query_as("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1")
            .fetch_optional(c)
            .await?);
    head_from(last)
}

/// The [`Head`] of a chain whose last entry is `last` (`seq`, `hash`), or
/// [`Head::GENESIS`] when there is none.
///
/// # Errors
/// [`Error::AuditTampered`] for a stored hash of the wrong length.
pub fn head_from(last: Option<(i64, Vec<u8>)>) -> Result<Head> {
    match last {
        None => Ok(Head::GENESIS),
        Some((seq, hash)) => Ok(Head {
            seq,
            hash: hash
                .as_slice()
                .try_into()
                .map_err(|_| Error::AuditTampered(format!("entry {seq} has a malformed hash")))?,
        }),
    }
}

/// Appends an entry at the end of the chain. Call it inside the transaction of the action
/// it records (a write transaction: `store::Pool::begin_write`), so both land or neither does.
///
/// # Errors
/// [`Error::Storage`].
pub async fn append(tx: &mut Tx, key: &AuditKey, e: &NewEntry<'_>) -> Result<Head> {
    let last = head(&mut *tx).await?;
    append_after(tx, key, last, e).await
}

/// [`append`] when the caller already knows the chain's head `last` (a write transaction
/// that read it after taking the write lock and tracks its own appends): one statement
/// fewer while the lock is held.
///
/// # Errors
/// [`Error::Storage`], also when `last` is not the head (the insert's `seq` then collides
/// with the primary key).
pub async fn append_after(
    tx: &mut Tx,
    key: &AuditKey,
    last: Head,
    e: &NewEntry<'_>,
) -> Result<Head> {
    append_after_with(tx, key, last, e, None).await
}

/// [`append_after`], inserting the API key `with_key` first when given (the entry that
/// records a key's generation). On PostgreSQL both rows go in one statement (a
/// data-modifying `WITH`, so one round trip under the write lock); on SQLite, two.
///
/// # Errors
/// [`Error::Storage`].
pub async fn append_after_with(
    tx: &mut Tx,
    key: &AuditKey,
    last: Head,
    e: &NewEntry<'_>,
    with_key: Option<&crate::store::NewKey<'_>>,
) -> Result<Head> {
    let seq = last.seq + 1;
    let state = e.subject.map(|s| s.state);
    let hash = keyed_entry_hash(
        key,
        &last.hash,
        seq,
        e.at,
        e.actor_id,
        e.actor_name,
        e.action.as_str(),
        e.target,
        e.detail,
        e.subject.map(|s| s.row),
        state.as_ref().map(|s| &s[..]),
    );
    const INSERT_ENTRY: &str = "INSERT INTO audit_log (seq, at, actor_id, actor_name, action, target, detail, prev_hash, hash, keyed, subject, state) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, TRUE, $10, $11)";
    const INSERT_KEY_THEN_ENTRY: &str = "WITH new_key AS (\
         INSERT INTO api_keys (id, name, start, digest, created_at, created_by, expires_at, mac, allowed_sources, rate_limit, scopes) \
         VALUES ($12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22)) \
         INSERT INTO audit_log (seq, at, actor_id, actor_name, action, target, detail, prev_hash, hash, keyed, subject, state) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, TRUE, $10, $11)";
    // The entry's eleven fields, in the column order of both statements.
    macro_rules! bind_entry {
        ($query:expr) => {
            $query
                .bind(seq)
                .bind(e.at)
                .bind(e.actor_id)
                .bind(e.actor_name)
                .bind(e.action.as_str())
                .bind(e.target)
                .bind(e.detail)
                .bind(&last.hash[..])
                .bind(&hash[..])
                .bind(e.subject.map(|s| s.row))
                .bind(state.as_ref().map(|s| &s[..]))
        };
    }
    if let Some(k) = with_key {
        if let crate::store::Ex::Postgres(c) = crate::store::Ex::from(&mut *tx) {
            crate::store::bind_new_key!(bind_entry!(sqlx::query(INSERT_KEY_THEN_ENTRY)), k)
                .execute(c)
                .await?;
            return Ok(Head { seq, hash });
        }
        crate::store::insert_key(&mut *tx, k).await?;
    }
    on!(&mut *tx, c => bind_entry!(sqlx::query(INSERT_ENTRY))
        .execute(c)
        .await
        .map(|_| ())?);
    Ok(Head { seq, hash })
}

/// Whether any entry is keyed (the log was started or upgraded by a keyed Keysmith).
pub async fn has_keyed_entries<'a>(ex: impl Into<Ex<'a>>) -> Result<bool> {
    Ok(
        on!(ex, c => sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM audit_log WHERE keyed)")
            .fetch_one(c)
            .await?),
    )
}

/// The hash of entry `seq`, if there is one.
pub async fn hash_at<'a>(ex: impl Into<Ex<'a>>, seq: i64) -> Result<Option<[u8; 32]>> {
    let hash: Option<Vec<u8>> = on!(ex, c => sqlx::query_scalar("SELECT hash FROM audit_log WHERE seq = $1")
        .bind(seq)
        .fetch_optional(c)
        .await?);
    Ok(hash.and_then(|h| h.as_slice().try_into().ok()))
}

/// The state (row MAC) the newest entry about `subject` recorded, if any did.
pub async fn latest_state<'a>(ex: impl Into<Ex<'a>>, subject: &str) -> Result<Option<Vec<u8>>> {
    Ok(on!(ex, c => sqlx::query_scalar(
        "SELECT state FROM audit_log WHERE subject = $1 AND state IS NOT NULL ORDER BY seq DESC LIMIT 1",
    )
    .bind(subject)
    .fetch_optional(c)
    .await?))
}

/// The newest entry's action and target.
pub async fn last_action<'a>(ex: impl Into<Ex<'a>>) -> Result<Option<(String, String)>> {
    Ok(
        on!(ex, c => sqlx::query_as("SELECT action, target FROM audit_log ORDER BY seq DESC LIMIT 1")
            .fetch_optional(c)
            .await?),
    )
}

/// Every entry, in chain order.
pub async fn all<'a>(ex: impl Into<Ex<'a>>) -> Result<Vec<AuditRow>> {
    Ok(on!(ex, c => sqlx::query_as(
        "SELECT seq, at, actor_id, actor_name, action, target, detail, prev_hash, hash, \
         keyed, subject, state FROM audit_log ORDER BY seq",
    )
    .fetch_all(c)
    .await?))
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
    /// An entry after the first keyed one is not keyed, or one before it is (rewritten).
    Unkeyed { seq: i64 },
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
            ChainBreak::Unkeyed { seq } => write!(
                f,
                "entry {seq} was rewritten without the audit key"
            ),
        }
    }
}

/// Walks the chain; `Ok(n)` with the number of intact entries, or the first break. Entries
/// from `keyed_from` on must be keyed and verify under `key`; earlier ones are plain SHA-256.
pub fn verify_chain(
    rows: &[AuditRow],
    key: &AuditKey,
    keyed_from: i64,
) -> std::result::Result<usize, ChainBreak> {
    let mut prev = vec![0u8; 32];
    for (i, r) in rows.iter().enumerate() {
        let expected_seq = i as i64 + 1;
        if r.seq != expected_seq {
            return Err(ChainBreak::Broken {
                seq: r.seq,
                expected_seq,
            });
        }
        if r.keyed != (r.seq >= keyed_from) {
            return Err(ChainBreak::Unkeyed { seq: r.seq });
        }
        let recomputed = if r.keyed {
            keyed_entry_hash(
                key,
                &r.prev_hash,
                r.seq,
                r.at,
                r.actor_id.as_deref(),
                &r.actor_name,
                &r.action,
                &r.target,
                &r.detail,
                r.subject.as_deref(),
                r.state.as_deref(),
            )
        } else {
            entry_hash(
                &r.prev_hash,
                r.seq,
                r.at,
                r.actor_id.as_deref(),
                &r.actor_name,
                &r.action,
                &r.target,
                &r.detail,
            )
        };
        if !bool::from(recomputed[..].ct_eq(&r.hash[..])) {
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

/// Stores `row` as it is (its seq, hashes and key flag): for moving a whole chain to
/// another store, inside that store's write transaction.
///
/// # Errors
/// [`Error::Storage`].
pub async fn copy_row(tx: &mut Tx, row: &AuditRow) -> Result<()> {
    on!(tx, c => sqlx::query(
        "INSERT INTO audit_log (seq, at, actor_id, actor_name, action, target, detail, prev_hash, hash, keyed, subject, state) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
    )
    .bind(row.seq)
    .bind(row.at)
    .bind(&row.actor_id)
    .bind(&row.actor_name)
    .bind(&row.action)
    .bind(&row.target)
    .bind(&row.detail)
    .bind(&row.prev_hash)
    .bind(&row.hash)
    .bind(row.keyed)
    .bind(&row.subject)
    .bind(&row.state)
    .execute(c)
    .await
    .map(|_| ())?);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::AuditAction;

    /// Every action the log can hold has a label in the app, and every label names an action:
    /// a new action without one would show its raw code (as `account_created` once did).
    #[test]
    fn every_action_has_a_label_and_every_label_an_action() {
        for a in AuditAction::ALL {
            assert!(
                keysmith_types::AUDIT_ACTIONS
                    .iter()
                    .any(|(code, _)| *code == a.as_str()),
                "{} has no label",
                a.as_str()
            );
        }
        for (code, label) in keysmith_types::AUDIT_ACTIONS {
            assert!(AuditAction::parse(code).is_some(), "{code} is no action");
            assert!(!label.is_empty() && label != code, "{code}: {label:?}");
        }
        assert_eq!(AuditAction::ALL.len(), keysmith_types::AUDIT_ACTIONS.len());
    }
}
