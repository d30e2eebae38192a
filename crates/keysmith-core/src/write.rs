//! The registry's write path and its protection (`integrity.rs`): the account's secrets read
//! once from the OS keyring, write transactions that extend the audit chain only from a head
//! the keyring's anchor vouches for, row MACs kept current by every change, rows checked
//! before anything acts on them, and the whole-store check behind `keysmith audit verify`.

use std::collections::HashMap;
use std::ops::{Deref, DerefMut};

use keysmith_types::ChainStatus;
use tokio::task::JoinHandle;

use crate::audit::{self, AuditAction, Subject};
use crate::digest::Pepper;
use crate::error::{Error, Result};
use crate::integrity::{Anchor, AuditKey, Head, KeyFields, MemberFields, RowKey};
use crate::registry::Registry;
use crate::store::{self, KeyRow, MemberRow, Tx};

/// The account's secrets, read from the OS keyring once per process.
pub(crate) struct Keys {
    pub account_id: String,
    pub pepper: Pepper,
    pub rows: RowKey,
    pub audit: AuditKey,
    /// The first keyed audit entry (earlier ones predate keyed chains).
    pub keyed_from: i64,
}

pub(crate) fn pepper_entry(account_id: &str) -> String {
    format!("pepper/{account_id}")
}
pub(crate) fn audit_key_entry(account_id: &str) -> String {
    format!("audit-key/{account_id}")
}
pub(crate) fn anchor_entry(account_id: &str) -> String {
    format!("audit-head/{account_id}")
}

/// A write transaction ([`store::Pool::begin_write`]): from its start to its commit no other
/// writer commits, so what it reads is what it acts on. Derefs to the transaction for `store`.
pub(crate) struct WriteTx<'r> {
    tx: Tx,
    keys: &'r Keys,
    /// The chain's head when the transaction began.
    start: Head,
    /// The chain's head now: `start`, moved by each entry this transaction appended.
    head: Head,
    /// Whether the anchor was found to vouch for `start` (checked before the first append).
    vouched: bool,
    /// The keyring read of the anchor, started as soon as the write lock was held so that
    /// it runs alongside the transaction's first statements.
    anchor: Option<JoinHandle<AnchorRead>>,
}

impl Deref for WriteTx<'_> {
    type Target = Tx;
    fn deref(&self) -> &Tx {
        &self.tx
    }
}

impl DerefMut for WriteTx<'_> {
    fn deref_mut(&mut self) -> &mut Tx {
        &mut self.tx
    }
}

impl<'r> WriteTx<'r> {
    /// A write transaction holding the write lock, whose chain starts at `start`.
    fn new(tx: Tx, keys: &'r Keys, start: Head, anchor: JoinHandle<AnchorRead>) -> Self {
        WriteTx {
            tx,
            keys,
            start,
            head: start,
            vouched: false,
            anchor: Some(anchor),
        }
    }

    pub fn keys(&self) -> &Keys {
        self.keys
    }
}

type AnchorRead =
    std::result::Result<Option<zeroize::Zeroizing<Vec<u8>>>, crate::secret_store::SecretStoreError>;

/// The keyring read of the anchor of `account_id`, to run off the executor.
fn anchor_reader(
    account_id: &str,
) -> impl FnOnce(&dyn crate::SecretStore) -> AnchorRead + Send + 'static {
    let entry = anchor_entry(account_id);
    move |s| s.get(&entry)
}

/// The anchor an [`anchor_reader`] read; [`Error::StoreTampered`] when there is none.
fn decode_anchor(read: Result<AnchorRead>) -> Result<Anchor> {
    let bytes = read?.map_err(Error::from)?;
    bytes
        .as_deref()
        .and_then(|b| Anchor::decode(b))
        .ok_or_else(|| {
            tampered(
                None,
                "the audit log's anchor is missing from the OS keyring (or unreadable)".into(),
            )
        })
}

/// Subjects of audit entries: the row an entry changed.
pub(crate) fn member_subject(id: &str) -> String {
    format!("member:{id}")
}
pub(crate) fn key_subject(id: &str) -> String {
    format!("key:{id}")
}

fn tampered(subject: Option<String>, what: String) -> Error {
    Error::StoreTampered { subject, what }
}

/// The error for a chain the keyring's anchor does not vouch for: [`Error::AccountMoved`]
/// when its last entry records a move to a team server (which has gone on writing the same
/// chain, on the same anchor, since), else [`Error::StoreTampered`] saying `what`.
async fn moved_or_tampered(tx: &mut Tx, what: String) -> Error {
    match audit::last_action(&mut *tx).await {
        Ok(Some((action, target))) if action == AuditAction::AccountMoved.as_str() => {
            Error::AccountMoved(target)
        }
        _ => tampered(None, what),
    }
}

impl Registry {
    /// The account's secrets: the pepper (and the row key derived from it), the audit key
    /// and where keyed entries start. Read from the OS keyring at first use; on the first
    /// use after an upgrade from an unkeyed log, the audit key is created and the rows are
    /// sealed (see [`Registry::upgrade_integrity`]).
    ///
    /// # Errors
    /// [`Error::NotInitialized`], [`Error::PepperMissing`], [`Error::WrongPepper`],
    /// [`Error::AuditKeyMissing`], [`Error::StoreTampered`], [`Error::Keyring`].
    pub(crate) async fn keys(&self) -> Result<&Keys> {
        self.keys.get_or_try_init(|| self.load_keys()).await
    }

    async fn load_keys(&self) -> Result<Keys> {
        let account_id = store::account_id(&self.pool)
            .await?
            .ok_or(Error::NotInitialized)?;
        let entry = pepper_entry(&account_id);
        let lookup = entry.clone();
        let bytes = self
            .keyring(move |s| s.get(&lookup))
            .await?
            .ok_or_else(|| Error::PepperMissing {
                entry: entry.clone(),
            })?;
        let pepper = Pepper::from_bytes(&bytes).ok_or(Error::PepperMissing { entry })?;
        let check = pepper.check_value();
        match store::pepper_check(&self.pool).await? {
            // Accounts made before the check value existed get it now.
            None => store::set_pepper_check(&self.pool, &check).await?,
            Some(recorded) => {
                if !bool::from(subtle::ConstantTimeEq::ct_eq(
                    recorded.as_slice(),
                    &check[..],
                )) {
                    return Err(Error::WrongPepper);
                }
            }
        }
        let rows = RowKey::derive(&pepper);
        if !audit::has_keyed_entries(&self.pool).await? {
            self.upgrade_integrity(&account_id, &rows).await?;
        }
        let key_entry = audit_key_entry(&account_id);
        let lookup = key_entry.clone();
        let audit = self
            .keyring(move |s| s.get(&lookup))
            .await?
            .and_then(|b| AuditKey::from_bytes(&b))
            .ok_or(Error::AuditKeyMissing { entry: key_entry })?;
        let anchor = self.read_anchor(&account_id).await?;
        Ok(Keys {
            account_id,
            pepper,
            rows,
            audit,
            keyed_from: anchor.keyed_from,
        })
    }

    /// The first use of a database whose audit log has no keyed entry yet (made before
    /// keyed chains, or set up by a process that stopped half-way): under the write lock,
    /// so concurrent first uses do this once, it creates the audit key (unless one is
    /// already in the keyring), gives every row its MAC, appends the first keyed entry
    /// ("rows_sealed"), and anchors the chain. Trust in the rows starts here.
    async fn upgrade_integrity(&self, account_id: &str, rows: &RowKey) -> Result<()> {
        let mut tx = self.pool.begin_write().await?;
        if audit::has_keyed_entries(&mut tx).await? {
            return Ok(()); // another process did it first
        }
        let start = audit::head(&mut tx).await?;
        // An anchor means this account's log was keyed already: keyed entries are gone, so
        // the log was cut or rewritten, and sealing now would vouch for the edit. The one
        // exception is an upgrade that anchored its first entry and then never committed.
        let entry = anchor_entry(account_id);
        if let Some(bytes) = self.keyring(move |s| s.get(&entry)).await? {
            let crashed_upgrade = Anchor::decode(&bytes).is_some_and(|a| {
                a.head == start && a.pending.is_some() && a.keyed_from == start.seq + 1
            });
            if !crashed_upgrade {
                return Err(tampered(
                    None,
                    "the audit log holds no keyed entry, but the keyring's anchor says it had some: the log was cut or rewritten".into(),
                ));
            }
        }
        let key_entry = audit_key_entry(account_id);
        let lookup = key_entry.clone();
        let audit = match self
            .keyring(move |s| s.get(&lookup))
            .await?
            .and_then(|b| AuditKey::from_bytes(&b))
        {
            Some(k) => k,
            None => {
                let k = AuditKey::generate()?;
                let bytes = *k.as_bytes();
                self.keyring(move |s| s.set(&key_entry, &bytes)).await?;
                k
            }
        };
        let members = store::list_members(&mut tx).await?;
        for m in &members {
            store::set_member_mac(&mut tx, &m.id, &rows.member_mac(MemberFields::from(m))).await?;
        }
        let keys = store::all_keys(&mut tx).await?;
        for k in &keys {
            store::set_key_mac(&mut tx, &k.id, &rows.key_mac(KeyFields::from(k))).await?;
        }
        let detail = format!(
            "{} members and {} keys sealed; audit entries from {} on are keyed",
            members.len(),
            keys.len(),
            start.seq + 1
        );
        let end = audit::append(
            &mut tx,
            &audit,
            &audit::NewEntry {
                at: self.clock.now_ms(),
                actor_id: None,
                actor_name: "Keysmith",
                action: AuditAction::RowsSealed,
                target: "the store",
                detail: &detail,
                subject: None,
            },
        )
        .await?;
        self.commit_anchored(tx, account_id, start.seq + 1, (start, end))
            .await?;
        tracing::info!(members = members.len(), keys = keys.len(), "rows sealed");
        Ok(())
    }

    async fn read_anchor(&self, account_id: &str) -> Result<Anchor> {
        decode_anchor(self.keyring_call(anchor_reader(account_id)).await)
    }

    async fn write_anchor(&self, account_id: &str, anchor: Anchor) -> Result<()> {
        let entry = anchor_entry(account_id);
        let text = anchor.encode();
        self.keyring(move |s| s.set(&entry, text.as_bytes())).await
    }

    /// Commits `tx`, which moved the audit chain's head from `start` to `end`, anchored: the
    /// keyring's anchor is told first ("pending": if the commit then never happens, the
    /// anchor still vouches for `start`), and settled on `end` after. A failure to settle is
    /// only logged: the pending head already vouches for `end`. For the writes that set the
    /// anchor rather than follow it (an account's first entry, sealing an upgraded store, an
    /// anchor reset), where no anchor, or one that does not vouch, is there before.
    pub(crate) async fn commit_anchored(
        &self,
        tx: Tx,
        account_id: &str,
        keyed_from: i64,
        (start, end): (Head, Head),
    ) -> Result<()> {
        let mut last_settled = self.anchor_settled.lock().await;
        *last_settled = 0;
        *self.committed_slot() = None;
        let pending = Anchor {
            keyed_from,
            head: start,
            pending: Some(end),
        };
        self.write_anchor(account_id, pending).await?;
        tx.commit().await?;
        let settled = Anchor {
            keyed_from,
            head: end,
            pending: None,
        };
        self.note_committed(end);
        match self.write_anchor(account_id, settled).await {
            Ok(()) => *last_settled = end.seq,
            Err(e) => tracing::warn!(error = %e, "could not settle the audit anchor"),
        }
        Ok(())
    }

    /// Opens a write transaction (`BEGIN IMMEDIATE`) after the account's secrets are loaded.
    pub(crate) async fn begin_write(&self) -> Result<WriteTx<'_>> {
        let keys = self.keys().await?;
        let mut tx = self.pool.begin_write().await?;
        let anchor = self.spawn_keyring(anchor_reader(&keys.account_id));
        let start = audit::head(&mut tx).await?;
        Ok(WriteTx::new(tx, keys, start, anchor))
    }

    /// Opens a write transaction ([`Registry::begin_write`]) for the member `actor_id`, and
    /// returns it with the member as they are inside it: every operation reads its actor
    /// here, in the transaction that acts, so a role changed or a member removed a moment
    /// before is what the permission check sees. The chain's head and the member are read in
    /// one statement once the write lock is held.
    ///
    /// # Errors
    /// [`Error::NotSignedIn`] for an unknown or removed member, [`Error::StoreTampered`] for a
    /// member row without Keysmith's seal, and [`Registry::begin_write`]'s errors.
    pub(crate) async fn begin_write_as(
        &self,
        actor_id: &str,
    ) -> Result<(WriteTx<'_>, crate::registry::Member)> {
        let keys = self.keys().await?;
        let mut tx = self.pool.begin_write().await?;
        let anchor = self.spawn_keyring(anchor_reader(&keys.account_id));
        let found = store::member_at_head(&mut tx, actor_id)
            .await?
            .filter(|f| f.member.row.disabled_at.is_none())
            .ok_or(Error::NotSignedIn)?;
        let start = audit::head_from(found.head_seq.zip(found.head_hash))?;
        let actor = crate::registry::member_from_row(
            self.member_as_recorded(found.member.row, found.member.recorded_state.as_deref())
                .await?,
        )?;
        Ok((WriteTx::new(tx, keys, start, anchor), actor))
    }

    /// Appends an audit entry inside `tx`. Before the first one, the chain's head must be
    /// one the keyring's anchor vouches for: a log cut short or rolled back is never
    /// extended (which would hide the cut).
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn append_entry(
        &self,
        tx: &mut WriteTx<'_>,
        actor_id: Option<&str>,
        actor_name: &str,
        action: AuditAction,
        target: &str,
        detail: &str,
        subject: Option<Subject<'_>>,
    ) -> Result<()> {
        let entry = audit::NewEntry {
            at: self.clock.now_ms(),
            actor_id,
            actor_name,
            action,
            target,
            detail,
            subject,
        };
        self.append_with(tx, &entry, None).await
    }

    /// Inserts the new API key `key` and appends `entry`, which records it, inside `tx`
    /// (one statement on PostgreSQL: `audit::append_after_with`), after the same anchor
    /// check as [`Registry::append_entry`].
    pub(crate) async fn append_entry_with_key(
        &self,
        tx: &mut WriteTx<'_>,
        key: &store::NewKey<'_>,
        entry: &audit::NewEntry<'_>,
    ) -> Result<()> {
        self.append_with(tx, entry, Some(key)).await
    }

    async fn append_with(
        &self,
        tx: &mut WriteTx<'_>,
        entry: &audit::NewEntry<'_>,
        with_key: Option<&store::NewKey<'_>>,
    ) -> Result<()> {
        if !tx.vouched {
            let anchor = match tx.anchor.take() {
                Some(read) => decode_anchor(
                    read.await
                        .map_err(|e| Error::Internal(format!("keyring task: {e}"))),
                )?,
                None => self.read_anchor(&tx.keys.account_id).await?,
            };
            // The usual case, a head the anchor names, needs no look-up of the entry at
            // the anchor's reach (one statement fewer while the write lock is held).
            let vouched = match anchor.vouches_for(tx.start, None) {
                Ok(()) => Ok(()),
                Err(_) => {
                    let at_reach = audit::hash_at(&mut tx.tx, anchor.reach().seq).await?;
                    anchor.vouches_for(tx.start, at_reach)
                }
            };
            if let Err(what) = vouched {
                return Err(moved_or_tampered(&mut tx.tx, what).await);
            }
            tx.vouched = true;
        }
        tx.head =
            audit::append_after_with(&mut tx.tx, &tx.keys.audit, tx.head, entry, with_key).await?;
        Ok(())
    }

    /// Commits `tx`, then, when it extended the audit chain, settles the keyring's anchor on
    /// the new head.
    ///
    /// No "pending" write is needed before `COMMIT` here (unlike
    /// [`Registry::commit_anchored`], which writes an account's first anchor): the entries
    /// were appended only after the anchor was found to vouch for the chain's start, and an
    /// anchor that lags behind a chain that goes on from it still vouches
    /// ([`Anchor::vouches_for`]). So a crash between `COMMIT` and the settle leaves an
    /// anchor one commit behind, exactly what a pending anchor would have accepted too, and
    /// the keyring write (a D-Bus round trip on Linux) stays out of the write lock. A
    /// failure to settle is only logged, for the same reason.
    pub(crate) async fn commit(&self, tx: WriteTx<'_>) -> Result<()> {
        let (end, keys) = (tx.head, tx.keys);
        let extended = end != tx.start;
        tx.tx.commit().await?;
        if !extended {
            return Ok(());
        }
        self.note_committed(end);
        let mut settled = self.anchor_settled.lock().await;
        // Coalesced: a settle that ran while this one waited may already cover `end`.
        if end.seq > *settled {
            let newest = self.newest_committed().unwrap_or(end);
            let anchor = Anchor {
                keyed_from: keys.keyed_from,
                head: newest,
                pending: None,
            };
            match self.write_anchor(&keys.account_id, anchor).await {
                Ok(()) => *settled = newest.seq,
                Err(e) => tracing::warn!(error = %e, "could not settle the audit anchor"),
            }
        }
        Ok(())
    }

    fn committed_slot(&self) -> std::sync::MutexGuard<'_, Option<Head>> {
        self.newest_committed
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn newest_committed(&self) -> Option<Head> {
        *self.committed_slot()
    }

    /// Records `head` as committed by this process, if it is the newest so far.
    fn note_committed(&self, head: Head) {
        let mut slot = self.committed_slot();
        if slot.is_none_or(|h| h.seq < head.seq) {
            *slot = Some(head);
        }
    }

    /// Recomputes the MAC of member `id` after a change in `tx`, and returns it.
    pub(crate) async fn reseal_member(&self, tx: &mut WriteTx<'_>, id: &str) -> Result<[u8; 32]> {
        let row = store::member_by_id(&mut **tx, id)
            .await?
            .ok_or_else(|| Error::Internal(format!("member {id} vanished mid-transaction")))?;
        let mac = tx.keys.rows.member_mac(MemberFields::from(&row));
        store::set_member_mac(&mut **tx, id, &mac).await?;
        Ok(mac)
    }

    /// Recomputes the MAC of key `id` after a change in `tx`, and returns it.
    pub(crate) async fn reseal_key(&self, tx: &mut WriteTx<'_>, id: &str) -> Result<[u8; 32]> {
        let row = store::key_by_id(&mut **tx, id)
            .await?
            .ok_or_else(|| Error::Internal(format!("key {id} vanished mid-transaction")))?;
        let mac = tx.keys.rows.key_mac(KeyFields::from(&row));
        store::set_key_mac(&mut **tx, id, &mac).await?;
        Ok(mac)
    }

    /// `row`, if its MAC matches and it is in the state the audit log last recorded for it;
    /// else [`Error::StoreTampered`] naming the member.
    pub(crate) async fn checked_member(&self, conn: &mut Tx, row: MemberRow) -> Result<MemberRow> {
        let recorded = audit::latest_state(conn, &member_subject(&row.id)).await?;
        self.member_as_recorded(row, recorded.as_deref()).await
    }

    /// [`Registry::checked_member`] when the state the audit log last recorded for the
    /// member (`recorded`) was read with the row.
    pub(crate) async fn member_as_recorded(
        &self,
        row: MemberRow,
        recorded: Option<&[u8]>,
    ) -> Result<MemberRow> {
        let keys = self.keys().await?;
        if keys
            .rows
            .member_ok(MemberFields::from(&row), row.mac.as_deref())
            && as_recorded(recorded, row.mac.as_deref())
        {
            Ok(row)
        } else {
            Err(tampered(
                Some(member_subject(&row.id)),
                format!(
                    "member {:?}'s row (role, removal or passphrase) does not carry Keysmith's seal",
                    row.name
                ),
            ))
        }
    }

    /// Whether a key row's MAC matches and it is in the state the audit log last recorded
    /// for it (the list shows the others as changed outside Keysmith).
    pub(crate) async fn key_sealed(&self, conn: &mut Tx, row: &KeyRow) -> Result<bool> {
        let keys = self.keys().await?;
        let recorded = audit::latest_state(conn, &key_subject(&row.id)).await?;
        Ok(key_sealed_as(&keys.rows, row, recorded.as_deref()))
    }
}

/// Whether a row's MAC is `recorded`, the state the newest audit entry about it recorded
/// (true when no entry recorded one: rows sealed at an upgrade). A row put back as it was
/// before a later change, with the MAC it had then, fails here.
fn as_recorded(recorded: Option<&[u8]>, mac: Option<&[u8]>) -> bool {
    recorded.is_none_or(|state| Some(state) == mac)
}

/// Whether key `row`'s MAC matches its fields and is the state `recorded` for it.
pub(crate) fn key_sealed_as(rows: &RowKey, row: &KeyRow, recorded: Option<&[u8]>) -> bool {
    rows.key_ok(KeyFields::from(row), row.mac.as_deref())
        && as_recorded(recorded, row.mac.as_deref())
}

impl Registry {
    /// Whether the audit log's head is one the keyring's anchor vouches for: a database
    /// rolled back to an earlier copy (where a revoked key may be active again) fails here.
    /// Checked by every read that decides access on its own (`verify`, the verifier's start)
    /// and before any entry is appended.
    ///
    /// # Errors
    /// [`Error::StoreTampered`], and the errors of loading the account's secrets.
    pub async fn check_anchor(&self) -> Result<()> {
        let keys = self.keys().await?;
        // The anchor first, then the database: a commit landing in between only takes the
        // chain past the anchor's reach, which is accepted; the other order would see the
        // anchor ahead of the head read before it and call that a rollback.
        let anchor = self.read_anchor(&keys.account_id).await?;
        let mut tx = self.pool.begin().await?;
        let head = audit::head(&mut tx).await?;
        let at_reach = audit::hash_at(&mut tx, anchor.reach().seq).await?;
        let vouched = anchor.vouches_for(head, at_reach);
        let result = match vouched {
            Ok(()) => Ok(()),
            Err(what) => Err(moved_or_tampered(&mut tx, what).await),
        };
        tx.rollback().await?;
        result
    }

    /// `row`, if its MAC matches; else [`Error::StoreTampered`] naming the key.
    pub(crate) async fn checked_key(&self, conn: &mut Tx, row: KeyRow) -> Result<KeyRow> {
        if self.key_sealed(conn, &row).await? {
            Ok(row)
        } else {
            Err(tampered(
                Some(key_subject(&row.id)),
                format!(
                    "API key {:?} ({}…, {})'s row (creator, revocation or expiry) does not carry Keysmith's seal",
                    row.name, row.start, row.id
                ),
            ))
        }
    }

    /// Runs one operation; when it was refused because the store was changed outside
    /// Keysmith, records that in the audit log (in a transaction of its own, once per row
    /// and finding) before handing the refusal on. A chain that cannot be extended safely
    /// (cut short, anchor missing) gets no entry; the refusal says why.
    pub(crate) async fn noting_tamper<T>(
        &self,
        op: impl std::future::Future<Output = Result<T>>,
    ) -> Result<T> {
        let result = op.await;
        if let Err(Error::StoreTampered {
            subject: Some(subject),
            what,
        }) = &result
        {
            tracing::error!(%subject, %what, "the store was changed outside Keysmith");
            if let Err(e) = self.record_tamper(subject, what).await {
                tracing::warn!(error = %e, "could not record the finding in the audit log");
            }
        } else if let Err(Error::StoreTampered {
            subject: None,
            what,
        }) = &result
        {
            tracing::error!(%what, "the store was changed outside Keysmith");
        }
        result
    }

    async fn record_tamper(&self, subject: &str, what: &str) -> Result<()> {
        let mut tx = self.begin_write().await?;
        let last = audit::last_action(&mut *tx).await?;
        if last.as_ref().is_some_and(|(action, target)| {
            action == AuditAction::TamperDetected.as_str() && target == subject
        }) {
            return Ok(());
        }
        self.audit(
            &mut tx,
            None,
            AuditAction::TamperDetected,
            subject,
            what,
            None,
        )
        .await?;
        self.commit(tx).await
    }

    /// The whole store checked against its protection, needing no member (`keysmith audit
    /// verify`, the audit page): the chain entry by entry (keyed from where keyed entries
    /// start), its head against the keyring's anchor, every member and key row's MAC, and
    /// each row against the state the log last recorded for it (a row put back as it was
    /// earlier no longer matches). The first problem found is named.
    ///
    /// # Errors
    /// [`Error::Storage`], and the errors of loading the account's secrets.
    pub async fn audit_chain(&self) -> Result<ChainStatus> {
        let keys = match self.keys().await {
            Ok(k) => k,
            Err(Error::StoreTampered { what, .. }) => {
                return Ok(ChainStatus {
                    intact: false,
                    entries: audit::all(&self.pool).await?.len() as u64,
                    problem: Some(what),
                })
            }
            Err(e) => return Err(e),
        };
        let (rows, problem) = self.checked_log(keys).await?;
        let entries = rows.len() as u64;
        Ok(ChainStatus {
            intact: problem.is_none(),
            entries,
            problem,
        })
    }

    /// The whole audit log and the first problem with it, the rows and the log read from
    /// one snapshot and the anchor just before it (see [`Registry::check_anchor`] on the
    /// order), so changes committed meanwhile are not taken for tampering.
    pub(crate) async fn checked_log(
        &self,
        keys: &Keys,
    ) -> Result<(Vec<audit::AuditRow>, Option<String>)> {
        let anchor = self.read_anchor(&keys.account_id).await;
        let mut tx = self.pool.begin().await?;
        let rows = audit::all(&mut tx).await?;
        let members = store::list_members(&mut tx).await?;
        let key_rows = store::all_keys(&mut tx).await?;
        tx.rollback().await?;
        let problem = first_problem(keys, anchor, &rows, &members, &key_rows);
        Ok((rows, problem))
    }
}

/// The first problem with the log `rows` and the `members` and `key_rows` of the same
/// snapshot: the chain's MACs, its head against `anchor`, each row's seal and the state the
/// log last recorded for it.
fn first_problem(
    keys: &Keys,
    anchor: Result<Anchor>,
    rows: &[audit::AuditRow],
    members: &[store::MemberRow],
    key_rows: &[KeyRow],
) -> Option<String> {
    if let Err(b) = audit::verify_chain(rows, &keys.audit, keys.keyed_from) {
        return Some(b.to_string());
    }
    let head = match rows.last() {
        None => Head::GENESIS,
        Some(r) => Head {
            seq: r.seq,
            hash: r.hash.as_slice().try_into().unwrap_or([0; 32]),
        },
    };
    let anchor = match anchor {
        Ok(a) => a,
        Err(e) => return Some(e.to_string()),
    };
    let reach = anchor.reach().seq;
    let at_reach = rows
        .iter()
        .find(|r| r.seq == reach)
        .and_then(|r| r.hash.as_slice().try_into().ok());
    if let Err(what) = anchor.vouches_for(head, at_reach) {
        return Some(what);
    }
    // The state the log last recorded for each row.
    let mut recorded: HashMap<&str, &[u8]> = HashMap::new();
    for r in rows {
        if let (Some(s), Some(state)) = (&r.subject, &r.state) {
            recorded.insert(s.as_str(), state.as_slice());
        }
    }
    for m in members {
        let subject = member_subject(&m.id);
        if !keys.rows.member_ok(MemberFields::from(m), m.mac.as_deref()) {
            return Some(format!(
                "member {:?}'s row was changed outside Keysmith",
                m.name
            ));
        }
        if let Some(state) = recorded.get(subject.as_str()) {
            if Some(*state) != m.mac.as_deref() {
                return Some(format!(
                    "member {:?}'s row is not as the audit log last recorded it (put back from an earlier copy?)",
                    m.name
                ));
            }
        }
    }
    for k in key_rows {
        let subject = key_subject(&k.id);
        if !keys.rows.key_ok(KeyFields::from(k), k.mac.as_deref()) {
            return Some(format!(
                "API key {:?} ({}…)'s row was changed outside Keysmith",
                k.name, k.start
            ));
        }
        if let Some(state) = recorded.get(subject.as_str()) {
            if Some(*state) != k.mac.as_deref() {
                return Some(format!(
                    "API key {:?} ({}…)'s row is not as the audit log last recorded it (put back from an earlier copy?)",
                    k.name, k.start
                ));
            }
        }
    }
    None
}

impl Registry {
    /// After the database was put back from a backup older than the last action (or its
    /// log was cut), the keyring's anchor no longer vouches for it and Keysmith refuses to
    /// extend it. The Owner, signing in with their passphrase and typing `RESTORED`, accepts
    /// the database as it is now: an `anchor_reset` entry naming what did not match is
    /// appended, and the anchor moves to it. Rows keep their seals: a row that does not carry
    /// one is still refused.
    ///
    /// # Errors
    /// [`Error::ConfirmationMismatch`] (not `RESTORED`), [`Error::BadCredentials`],
    /// [`Error::TooManyAttempts`], [`Error::NotPermitted`] (not the Owner),
    /// [`Error::StoreTampered`] (the Owner's own row is not sealed), and the errors of
    /// loading the account's secrets.
    pub async fn accept_restored_store(
        &self,
        owner_name: &str,
        pass: &str,
        confirmation: &str,
    ) -> Result<String> {
        if confirmation != keysmith_types::RESTORED_CONFIRMATION {
            return Err(Error::ConfirmationMismatch);
        }
        let keys = self.keys().await?;
        let now = self.clock.now_ms();
        let name_key = crate::validate::name_key(owner_name);
        // Counted like any sign-in attempt; a failure appends no entry (the log is the thing
        // not trusted yet), the count is its record.
        let attempt = self
            .try_passphrase(owner_name, &name_key, pass, now)
            .await?;
        let Some(row) = attempt.row.filter(|_| attempt.matched) else {
            return Err(Error::BadCredentials);
        };
        let mut tx = self.pool.begin_write().await?;
        // The member as they are now: removed, or given another passphrase, while Argon2 ran.
        let row = store::member_by_id(&mut tx, &row.id)
            .await?
            .filter(|r| r.disabled_at.is_none() && r.passphrase_hash == attempt.checked_hash)
            .ok_or(Error::BadCredentials)?;
        let owner = crate::registry::member_from_row(self.checked_member(&mut tx, row).await?)?;
        // The passphrase was right: the count is cleared whatever follows.
        store::clear_attempts(&mut tx, &name_key).await?;
        let problem = match crate::permissions::authorize(
            owner.role,
            crate::permissions::Action::TransferOwnership,
        ) {
            Err(e) => Err(e),
            Ok(()) => match self.check_anchor().await {
                Err(Error::StoreTampered { what, .. }) => Ok(Some(what)),
                Err(e) => Err(e),
                Ok(()) => Ok(None),
            },
        };
        let problem = match problem {
            Ok(Some(what)) => what,
            other => {
                tx.commit().await?;
                return other.map(|_| "the audit log already matches the keyring's anchor".into());
            }
        };
        let start = audit::head(&mut tx).await?;
        let end = audit::append(
            &mut tx,
            &keys.audit,
            &audit::NewEntry {
                at: now,
                actor_id: Some(&owner.id),
                actor_name: &owner.name,
                action: AuditAction::AnchorReset,
                target: "the store",
                detail: &format!("accepted as it is: {problem}"),
                subject: None,
            },
        )
        .await?;
        self.commit_anchored(tx, &keys.account_id, keys.keyed_from, (start, end))
            .await?;
        tracing::warn!(member = %owner.id, %problem, "the Owner accepted the store as it is");
        Ok(problem)
    }
}

impl Registry {
    /// Writes what a further team server host needs into a new secrets directory `to`
    /// ([`crate::FileStore`]: mode 0700, one 0600 file per entry): the pepper, the audit
    /// key, and an anchor on the audit chain's head as of this export, so that
    /// `keysmith serve --secrets-dir` on that host checks and extends the same chain (its
    /// anchor then follows the commits that host makes). Owner only; audited (a
    /// `pepper_exported` entry naming the directory). Whoever holds the directory can verify
    /// keys, seal rows and extend the audit chain: keep it as secret as the keyring.
    ///
    /// # Errors
    /// [`Error::NotSignedIn`], [`Error::NotPermitted`] (everyone but the Owner),
    /// [`Error::Keyring`] (`to` exists or cannot be written; this host's keyring),
    /// [`Error::PepperMissing`], [`Error::AuditKeyMissing`].
    pub async fn export_server_secrets(&self, actor_id: &str, to: &std::path::Path) -> Result<()> {
        self.noting_tamper(self.export_secrets_checked(actor_id, to))
            .await
    }

    async fn export_secrets_checked(&self, actor_id: &str, to: &std::path::Path) -> Result<()> {
        let (mut tx, actor) = self.begin_write_as(actor_id).await?;
        crate::permissions::authorize(actor.role, crate::permissions::Action::ExportPepper)?;
        // Created first: a directory that exists already is refused before anything is
        // written, and only one made here is removed when the export fails.
        let store = crate::FileStore::create(to)?;
        let done = async {
            let keys = tx.keys;
            let account = keys.account_id.clone();
            let entries = [pepper_entry(&account), audit_key_entry(&account)];
            let lookup = entries.clone();
            let secrets = self
                .keyring(move |s| {
                    lookup
                        .iter()
                        .map(|e| s.get(e))
                        .collect::<std::result::Result<Vec<_>, _>>()
                })
                .await?;
            self.audit(
                &mut tx,
                Some(&actor),
                AuditAction::PepperExported,
                &format!("secrets directory {}", to.display()),
                "pepper, audit key and audit anchor, for a team server host",
                None,
            )
            .await?;
            for (entry, secret) in entries.iter().zip(&secrets) {
                let bytes = secret.as_ref().ok_or_else(|| {
                    Error::Internal(format!("the keyring entry {entry} vanished"))
                })?;
                crate::SecretStore::set(&store, entry, bytes)?;
            }
            let anchor = Anchor {
                keyed_from: keys.keyed_from,
                head: tx.head,
                pending: None,
            };
            crate::SecretStore::set(&store, &anchor_entry(&account), anchor.encode().as_bytes())?;
            self.commit(tx).await
        }
        .await;
        if let Err(e) = done {
            // Unaudited (or half written), the export did not happen.
            let _ = std::fs::remove_dir_all(to);
            return Err(e);
        }
        tracing::info!(member = %actor.id, "server secrets exported");
        Ok(())
    }
}
