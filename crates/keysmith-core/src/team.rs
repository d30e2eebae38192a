//! The team: adding members, changing roles, removing members (and revoking their keys),
//! transferring ownership, changing passphrases, and reading the audit log. Each operation
//! checks the actor's current role against the target's role (`permissions.rs`) and writes
//! its change and its audit entries in one `BEGIN IMMEDIATE` transaction.

use keysmith_types::{
    AuditEntry, AuditFilter, AuditReport, ChainStatus, KeySummary, MemberListing, Role,
    REMOVE_CONFIRMATION,
};

use crate::audit::{AuditAction, Subject};
use crate::error::{Error, Result};
use crate::integrity::MemberFields;
use crate::permissions::{authorize, Action};
use crate::registry::{key_target, member_from_row, summary_from_row, Member, Registry};
use crate::store::{self, MemberRow};
use crate::write::{key_subject, member_subject, WriteTx};
use crate::{passphrase, validate};

fn unknown_member(id: &str) -> Error {
    Error::NotFound {
        what: "member",
        id: id.to_owned(),
    }
}

impl Registry {
    /// An active member by id, read inside `tx` and checked against its seal, for an
    /// operation on them.
    async fn target(&self, tx: &mut WriteTx<'_>, member_id: &str) -> Result<Member> {
        match store::member_by_id(&mut **tx, member_id).await? {
            Some(row) if row.disabled_at.is_none() => {
                member_from_row(self.checked_member(tx, row).await?)
            }
            _ => Err(unknown_member(member_id)),
        }
    }

    /// The member `member_id`, read inside `tx`, once `actor` may remove them.
    async fn removable(
        &self,
        tx: &mut WriteTx<'_>,
        actor: &Member,
        member_id: &str,
    ) -> Result<Member> {
        let target = self.target(tx, member_id).await?;
        if target.id == actor.id {
            return Err(Error::InvalidTarget("You cannot remove yourself."));
        }
        authorize(actor.role, Action::ManageMember(target.role))?;
        Ok(target)
    }

    /// Records a change of member `id` in `tx`: reseals the row and appends the entry that
    /// names its new state.
    #[allow(clippy::too_many_arguments)]
    async fn audit_member_change(
        &self,
        tx: &mut WriteTx<'_>,
        actor: &Member,
        action: AuditAction,
        id: &str,
        target: &str,
        detail: &str,
    ) -> Result<()> {
        let mac = self.reseal_member(tx, id).await?;
        let subject = member_subject(id);
        self.audit(
            tx,
            Some(actor),
            action,
            target,
            detail,
            Some(Subject {
                row: &subject,
                state: mac,
            }),
        )
        .await
    }
}

impl Registry {
    /// Every member (removed ones last), for the Owner and Admins.
    ///
    /// # Errors
    /// [`Error::NotSignedIn`], [`Error::NotPermitted`].
    pub async fn list_members(&self, actor_id: &str) -> Result<Vec<MemberListing>> {
        let actor = self.actor(actor_id).await?;
        authorize(actor.role, Action::SeeMembers)?;
        let keys = store::list_keys_with_state(&self.pool, None, None).await?;
        store::list_members(&self.pool)
            .await?
            .into_iter()
            .map(|row| {
                let active = keys
                    .iter()
                    .filter(|k| k.row.created_by == row.id && k.row.revoked_at.is_none())
                    .count();
                let removed_at = row.disabled_at;
                let must_change = row.must_change_passphrase;
                let created_at = row.created_at;
                let member = member_from_row(row)?;
                Ok(MemberListing {
                    member: member.summary(),
                    created_at,
                    removed_at,
                    must_change_passphrase: must_change,
                    active_keys: u32::try_from(active).unwrap_or(u32::MAX),
                })
            })
            .collect()
    }

    /// Adds a member with an initial passphrase they must change at first sign-in.
    ///
    /// # Errors
    /// [`Error::NotPermitted`] (Admins add only roles below Admin; nobody adds an Owner),
    /// [`Error::InvalidName`], [`Error::DuplicateName`], [`Error::InvalidPassphrase`].
    pub async fn add_member(
        &self,
        actor_id: &str,
        name: &str,
        role: Role,
        initial_passphrase: &str,
    ) -> Result<Member> {
        let name = validate::name(name, "member name")?;
        validate::new_passphrase(initial_passphrase)?;
        let row = MemberRow {
            id: uuid::Uuid::now_v7().to_string(),
            name_key: validate::name_key(&name),
            name,
            role: role.as_str().to_owned(),
            passphrase_hash: passphrase::hash_off_executor(initial_passphrase).await?,
            must_change_passphrase: true,
            created_at: self.clock.now_ms(),
            disabled_at: None,
            mac: None,
        };
        self.noting_tamper(self.add_checked(actor_id, role, row))
            .await
    }

    async fn add_checked(&self, actor_id: &str, role: Role, mut row: MemberRow) -> Result<Member> {
        let (mut tx, actor) = self.begin_write_as(actor_id).await?;
        let mac = tx.keys().rows.member_mac(MemberFields::from(&row));
        row.mac = Some(mac.to_vec());
        authorize(actor.role, Action::ManageMember(role))?;
        if store::member_by_name(&mut *tx, &row.name).await?.is_some() {
            return Err(Error::DuplicateName(row.name));
        }
        if let Err(e) = store::insert_member(&mut *tx, &row).await {
            return Err(match e {
                Error::Storage(sqlx::Error::Database(db)) if db.is_unique_violation() => {
                    Error::DuplicateName(row.name)
                }
                other => other,
            });
        }
        let subject = member_subject(&row.id);
        self.audit(
            &mut tx,
            Some(&actor),
            AuditAction::MemberAdded,
            &row.name,
            role.as_str(),
            Some(Subject {
                row: &subject,
                state: mac,
            }),
        )
        .await?;
        self.commit(tx).await?;
        member_from_row(row)
    }

    /// Gives a member another role. The actor must be allowed to manage both the old and the
    /// new role; nobody changes their own role or the Owner's, and Owner is never a target
    /// role (see [`Registry::transfer_ownership`]).
    ///
    /// # Errors
    /// [`Error::NotPermitted`], [`Error::InvalidTarget`], [`Error::NotFound`].
    pub async fn change_role(&self, actor_id: &str, member_id: &str, role: Role) -> Result<Member> {
        self.noting_tamper(self.change_role_checked(actor_id, member_id, role))
            .await
    }

    async fn change_role_checked(
        &self,
        actor_id: &str,
        member_id: &str,
        role: Role,
    ) -> Result<Member> {
        let (mut tx, actor) = self.begin_write_as(actor_id).await?;
        let target = self.target(&mut tx, member_id).await?;
        if target.id == actor.id {
            return Err(Error::InvalidTarget("You cannot change your own role."));
        }
        authorize(actor.role, Action::ManageMember(target.role))?;
        authorize(actor.role, Action::ManageMember(role))?;
        store::set_role(&mut *tx, &target.id, role.as_str()).await?;
        let detail = format!("{} → {}", target.role.as_str(), role.as_str());
        self.audit_member_change(
            &mut tx,
            &actor,
            AuditAction::RoleChanged,
            &target.id,
            &target.name,
            &detail,
        )
        .await?;
        self.commit(tx).await?;
        Ok(Member { role, ..target })
    }

    /// The keys that removing `member_id` would revoke (active keys only).
    ///
    /// # Errors
    /// As [`Registry::remove_member`], without the confirmation.
    pub async fn removal_preview(
        &self,
        actor_id: &str,
        member_id: &str,
    ) -> Result<Vec<KeySummary>> {
        // A write transaction that writes nothing: the same checks as the removal, on the
        // same consistent view.
        let (mut tx, actor) = self.begin_write_as(actor_id).await?;
        let target = self.removable(&mut tx, &actor, member_id).await?;
        let now = self.clock.now_ms();
        store::active_keys_of(&mut *tx, &target.id)
            .await?
            .into_iter()
            .map(|k| summary_from_row(k, now))
            .collect()
    }

    /// Removes a member: disables them and revokes every key they generated, with an audit
    /// entry for each, all in one transaction (the article: "we'll remove any API keys that
    /// user generated"). `confirmation` must be exactly `REMOVE`. Returns the revoked keys.
    ///
    /// # Errors
    /// [`Error::NotPermitted`], [`Error::InvalidTarget`] (yourself, the Owner),
    /// [`Error::NotFound`], [`Error::RemoveConfirmationMismatch`].
    pub async fn remove_member(
        &self,
        actor_id: &str,
        member_id: &str,
        confirmation: &str,
    ) -> Result<Vec<KeySummary>> {
        self.noting_tamper(self.remove_checked(actor_id, member_id, confirmation))
            .await
    }

    async fn remove_checked(
        &self,
        actor_id: &str,
        member_id: &str,
        confirmation: &str,
    ) -> Result<Vec<KeySummary>> {
        let (mut tx, actor) = self.begin_write_as(actor_id).await?;
        let target = self.removable(&mut tx, &actor, member_id).await?;
        if confirmation != REMOVE_CONFIRMATION {
            return Err(Error::RemoveConfirmationMismatch);
        }
        let now = self.clock.now_ms();
        let keys = store::active_keys_of(&mut *tx, &target.id).await?;
        for key in &keys {
            store::revoke_key(&mut *tx, &key.id, now).await?;
            let mac = self.reseal_key(&mut tx, &key.id).await?;
            let t = key_target(&key.name, &key.start, &key.id);
            let detail = format!("member {} removed", target.name);
            let subject = key_subject(&key.id);
            self.audit(
                &mut tx,
                Some(&actor),
                AuditAction::KeyRevoked,
                &t,
                &detail,
                Some(Subject {
                    row: &subject,
                    state: mac,
                }),
            )
            .await?;
        }
        store::disable_member(&mut *tx, &target.id, now).await?;
        let detail = match keys.len() {
            1 => "1 key revoked".to_owned(),
            n => format!("{n} keys revoked"),
        };
        self.audit_member_change(
            &mut tx,
            &actor,
            AuditAction::MemberRemoved,
            &target.id,
            &target.name,
            &detail,
        )
        .await?;
        self.commit(tx).await?;
        tracing::info!(member = %target.id, keys = keys.len(), "member removed");
        keys.into_iter()
            .map(|mut k| {
                k.revoked_at = Some(now);
                summary_from_row(k, now)
            })
            .collect()
    }

    /// Makes `member_id` the Owner and the current Owner an Admin, in one transaction.
    ///
    /// # Errors
    /// [`Error::NotPermitted`] (only the Owner), [`Error::InvalidTarget`] (yourself),
    /// [`Error::NotFound`].
    pub async fn transfer_ownership(&self, actor_id: &str, member_id: &str) -> Result<Member> {
        self.noting_tamper(self.transfer_checked(actor_id, member_id))
            .await
    }

    async fn transfer_checked(&self, actor_id: &str, member_id: &str) -> Result<Member> {
        let (mut tx, actor) = self.begin_write_as(actor_id).await?;
        authorize(actor.role, Action::TransferOwnership)?;
        let target = self.target(&mut tx, member_id).await?;
        if target.id == actor.id {
            return Err(Error::InvalidTarget("You already own this account."));
        }
        // The Owner chose the initial passphrase: until the member replaces it, the Owner
        // could sign in as them, so handing over would leave the account where it was.
        if target.must_change_passphrase {
            return Err(Error::InvalidTarget(
                "This member has not signed in yet: ownership can pass only to someone who has set their own passphrase.",
            ));
        }
        // Demote first: the schema holds exactly one Owner at every statement.
        store::set_role(&mut *tx, &actor.id, Role::Admin.as_str()).await?;
        store::set_role(&mut *tx, &target.id, Role::Owner.as_str()).await?;
        let detail = format!("{} → owner; {} → admin", target.name, actor.name);
        self.audit_member_change(
            &mut tx,
            &actor,
            AuditAction::OwnershipTransferred,
            &target.id,
            &target.name,
            &detail,
        )
        .await?;
        self.audit_member_change(
            &mut tx,
            &actor,
            AuditAction::RoleChanged,
            &actor.id,
            &actor.name,
            "owner → admin (ownership transferred)",
        )
        .await?;
        self.commit(tx).await?;
        Ok(Member {
            role: Role::Owner,
            ..target
        })
    }

    /// Changes the actor's own passphrase (required after an initial one).
    ///
    /// # Errors
    /// [`Error::BadCredentials`] (wrong current passphrase), [`Error::InvalidPassphrase`].
    pub async fn change_passphrase(&self, actor_id: &str, current: &str, new: &str) -> Result<()> {
        self.noting_tamper(self.change_passphrase_checked(actor_id, current, new))
            .await
    }

    async fn change_passphrase_checked(
        &self,
        actor_id: &str,
        current: &str,
        new: &str,
    ) -> Result<()> {
        let actor = self.actor(actor_id).await?;
        validate::new_passphrase(new)?;
        // The current passphrase is checked like a sign-in: counted first and slowed down
        // after failures, so an unlocked window is no way to guess it.
        let name_key = validate::name_key(&actor.name);
        let attempt = self
            .try_passphrase(&actor.name, &name_key, current, self.clock.now_ms())
            .await?;
        let checked_hash = attempt
            .row
            .filter(|r| attempt.matched && r.id == actor.id)
            .map(|_| attempt.checked_hash)
            .ok_or(Error::BadCredentials)?;
        // The new hash, or `None` when the new passphrase is the current one.
        let phc = {
            let current = zeroize::Zeroizing::new(current.to_owned());
            let new = zeroize::Zeroizing::new(new.to_owned());
            tokio::task::spawn_blocking(move || {
                (!passphrase::same_text(&current, &new)).then(|| passphrase::hash(&new))
            })
            .await
            .map_err(|e| Error::Internal(e.to_string()))?
        };
        let Some(phc) = phc else {
            return Err(Error::InvalidPassphrase(
                "The new passphrase must differ from the current one.".into(),
            ));
        };
        let phc = phc?;
        let (mut tx, actor) = self.begin_write_as(actor_id).await?;
        // Checked against the passphrase as it is now: not one changed meanwhile.
        let now = store::member_by_id(&mut *tx, &actor.id)
            .await?
            .ok_or(Error::NotSignedIn)?;
        if now.passphrase_hash != checked_hash {
            return Err(Error::BadCredentials);
        }
        store::set_passphrase(&mut *tx, &actor.id, &phc, false).await?;
        // Every session opened with the old passphrase ends (team server).
        store::end_sessions_of(&mut *tx, &actor.id, self.clock.now_ms()).await?;
        store::clear_attempts(&mut *tx, &name_key).await?;
        self.audit_member_change(
            &mut tx,
            &actor,
            AuditAction::PassphraseChanged,
            &actor.id,
            &actor.name,
            "",
        )
        .await?;
        self.commit(tx).await?;
        Ok(())
    }

    /// Audit entries matching `filter`, newest first, for the Owner and Admins.
    ///
    /// # Errors
    /// [`Error::NotPermitted`].
    pub async fn audit_entries(
        &self,
        actor_id: &str,
        filter: &AuditFilter,
    ) -> Result<Vec<AuditEntry>> {
        Ok(self.audit_report(actor_id, filter).await?.entries)
    }

    /// The audit page in one read of the log: the entries matching `filter` (newest first)
    /// and the whole chain's status, for the Owner and Admins.
    ///
    /// # Errors
    /// [`Error::NotPermitted`].
    pub async fn audit_report(&self, actor_id: &str, filter: &AuditFilter) -> Result<AuditReport> {
        let actor = self.actor(actor_id).await?;
        authorize(actor.role, Action::SeeAudit)?;
        let keys = self.keys().await?;
        let (rows, problem) = self.checked_log(keys).await?;
        let chain = ChainStatus {
            intact: problem.is_none(),
            entries: rows.len() as u64,
            problem,
        };
        let entries = rows
            .into_iter()
            .rev()
            .filter(|r| {
                filter
                    .member_id
                    .as_deref()
                    .is_none_or(|m| r.actor_id.as_deref() == Some(m))
            })
            .filter(|r| filter.action.as_deref().is_none_or(|a| r.action == a))
            .filter(|r| filter.from.is_none_or(|f| r.at >= f))
            .filter(|r| filter.until.is_none_or(|u| r.at < u))
            .map(|r| AuditEntry {
                seq: r.seq,
                at: r.at,
                actor_id: r.actor_id,
                actor_name: r.actor_name,
                action: r.action,
                target: r.target,
                detail: r.detail,
            })
            .collect();
        Ok(AuditReport { entries, chain })
    }
}
