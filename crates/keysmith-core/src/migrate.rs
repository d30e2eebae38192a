//! Moving a one-computer account to the team server's PostgreSQL store (`keysmith migrate
//! --to postgres://…`): members, keys, their usage counts and the whole audit chain, row
//! for row, with their seals and hashes. The account keeps its id, so the pepper, the audit key and the anchor in
//! the OS keyring serve the team server on this host unchanged, and every existing key keeps
//! verifying (its digest is the same HMAC of the same pepper).

use keysmith_types::ChainStatus;

use crate::audit::{self, AuditAction};
use crate::error::{Error, Result};
use crate::permissions::{authorize, Action};
use crate::registry::Registry;
use crate::store::{self, Pool};

/// What a move copied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Moved {
    pub members: usize,
    pub keys: usize,
    pub audit_entries: usize,
}

impl Registry {
    /// Copies the whole account to `target` (an empty store: no account yet), after recording
    /// "account_moved" (to `label`, the server's name as the Owner gave it) in the audit log,
    /// so both stores hold the same chain. Owner only. The copy is one transaction: it lands
    /// whole or not at all. Then the copy is checked: the same chain, intact under the same
    /// audit key, and the same members and keys.
    ///
    /// # Errors
    /// [`Error::NotPermitted`]; [`Error::AlreadyInitialized`] when `target` holds an
    /// account; [`Error::AuditTampered`] when this account's chain is not intact (a broken
    /// chain is not carried over); [`Error::Storage`]; [`Error::Internal`] when the copy
    /// does not read back the same.
    pub async fn move_to(&self, actor_id: &str, target: &Pool, label: &str) -> Result<Moved> {
        self.noting_tamper(self.move_checked(actor_id, target, label))
            .await
    }

    async fn move_checked(&self, actor_id: &str, target: &Pool, label: &str) -> Result<Moved> {
        if store::account_id(target).await?.is_some() {
            return Err(Error::AlreadyInitialized);
        }
        let chain = self.audit_chain().await?;
        if let Some(problem) = chain.problem {
            return Err(Error::AuditTampered(problem));
        }
        let (mut tx, actor) = self.begin_write_as(actor_id).await?;
        authorize(actor.role, Action::MoveAccount)?;
        self.audit(
            &mut tx,
            Some(&actor),
            AuditAction::AccountMoved,
            label,
            "members, keys and the audit log copied; keep using the team server",
            None,
        )
        .await?;
        self.commit(tx).await?;

        // One snapshot of everything, taken after the move was recorded.
        let mut read = self.pool.begin().await?;
        let account = store::account_row(&mut read)
            .await?
            .ok_or(Error::NotInitialized)?;
        let members = store::list_members(&mut read).await?;
        let keys = store::all_keys(&mut read).await?;
        let entries = audit::all(&mut read).await?;
        let usage = store::all_usage(&mut read).await?;
        read.rollback().await?;

        let mut out = target.begin_write().await?;
        if store::account_id(&mut out).await?.is_some() {
            return Err(Error::AlreadyInitialized);
        }
        store::insert_account_row(&mut out, &account).await?;
        for m in &members {
            store::copy_member(&mut out, m).await?;
        }
        for k in &keys {
            store::copy_key(&mut out, k).await?;
        }
        for k in keys.iter().filter(|k| k.replaced_by.is_some()) {
            if let Some(next) = &k.replaced_by {
                store::set_replaced_by(&mut out, &k.id, next).await?;
            }
        }
        for e in &entries {
            audit::copy_row(&mut out, e).await?;
        }
        for u in &usage {
            store::copy_usage(&mut out, u).await?;
        }
        out.commit().await?;

        // Read back on the target with this account's secrets: the same chain, intact.
        let copy = Registry::with_parts(target.clone(), self.secrets(), self.clock.clone());
        let ChainStatus {
            intact, entries: n, ..
        } = copy.audit_chain().await?;
        let copied_keys = store::all_keys(target).await?.len();
        let copied_members = store::list_members(target).await?.len();
        if !intact
            || n != entries.len() as u64
            || copied_keys != keys.len()
            || copied_members != members.len()
        {
            return Err(Error::Internal(format!(
                "the copy on the team server does not read back the same ({n} of {} audit \
                 entries, {copied_keys} of {} keys, {copied_members} of {} members)",
                entries.len(),
                keys.len(),
                members.len()
            )));
        }
        tracing::info!(
            members = members.len(),
            keys = keys.len(),
            entries = entries.len(),
            "account moved"
        );
        Ok(Moved {
            members: members.len(),
            keys: keys.len(),
            audit_entries: entries.len(),
        })
    }
}
