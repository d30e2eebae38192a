//! The team: adding members, changing roles, removing members (and revoking their keys),
//! transferring ownership, changing passphrases, and reading the audit log. Each operation
//! checks the actor's current role against the target's role (`permissions.rs`) and writes
//! its change and its audit entries in one `BEGIN IMMEDIATE` transaction.

use keysmith_types::{
    AuditEntry, AuditFilter, AuditReport, ChainStatus, KeySummary, MemberListing, Role,
    REMOVE_CONFIRMATION,
};

use crate::audit::{self, AuditAction};
use crate::error::{Error, Result};
use crate::permissions::{authorize, Action};
use crate::registry::{key_target, member_from_row, summary_from_row, Member, Registry};
use crate::store::{self, MemberRow};
use crate::{passphrase, validate};

fn unknown_member(id: &str) -> Error {
    Error::NotFound {
        what: "member",
        id: id.to_owned(),
    }
}

impl Registry {
    /// An active member by id, for an operation on them.
    async fn target(&self, member_id: &str) -> Result<Member> {
        match store::member_by_id(&self.pool, member_id).await? {
            Some(row) if row.disabled_at.is_none() => member_from_row(row),
            _ => Err(unknown_member(member_id)),
        }
    }

    /// Every member (removed ones last), for the Owner and Admins.
    ///
    /// # Errors
    /// [`Error::NotSignedIn`], [`Error::NotPermitted`].
    pub async fn list_members(&self, actor_id: &str) -> Result<Vec<MemberListing>> {
        let actor = self.actor(actor_id).await?;
        authorize(actor.role, Action::SeeMembers)?;
        let keys = store::list_keys(&self.pool, None).await?;
        store::list_members(&self.pool)
            .await?
            .into_iter()
            .map(|row| {
                let active = keys
                    .iter()
                    .filter(|k| k.created_by == row.id && k.revoked_at.is_none())
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
        let actor = self.actor(actor_id).await?;
        authorize(actor.role, Action::ManageMember(role))?;
        let name = validate::name(name, "member name")?;
        validate::new_passphrase(initial_passphrase)?;
        if store::member_by_name(&self.pool, &name).await?.is_some() {
            return Err(Error::DuplicateName(name));
        }
        let row = MemberRow {
            id: uuid::Uuid::now_v7().to_string(),
            name,
            role: role.as_str().to_owned(),
            passphrase_hash: passphrase::hash(initial_passphrase)?,
            must_change_passphrase: true,
            created_at: self.clock.now_ms(),
            disabled_at: None,
            failed_sign_ins: 0,
            next_sign_in_at: None,
        };
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        if let Err(e) = store::insert_member(&mut *tx, &row).await {
            return Err(match e {
                Error::Storage(sqlx::Error::Database(db)) if db.is_unique_violation() => {
                    Error::DuplicateName(row.name)
                }
                other => other,
            });
        }
        self.audit(
            &mut tx,
            Some(&actor),
            AuditAction::MemberAdded,
            &row.name,
            role.as_str(),
        )
        .await?;
        tx.commit().await?;
        member_from_row(row)
    }

    /// Gives a member another role. The actor must be allowed to manage both the old and the
    /// new role; nobody changes their own role or the Owner's, and Owner is never a target
    /// role (see [`Registry::transfer_ownership`]).
    ///
    /// # Errors
    /// [`Error::NotPermitted`], [`Error::InvalidTarget`], [`Error::NotFound`].
    pub async fn change_role(&self, actor_id: &str, member_id: &str, role: Role) -> Result<Member> {
        let actor = self.actor(actor_id).await?;
        let target = self.target(member_id).await?;
        if target.id == actor.id {
            return Err(Error::InvalidTarget("You cannot change your own role."));
        }
        authorize(actor.role, Action::ManageMember(target.role))?;
        authorize(actor.role, Action::ManageMember(role))?;
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        store::set_role(&mut *tx, &target.id, role.as_str()).await?;
        let detail = format!("{} → {}", target.role.as_str(), role.as_str());
        self.audit(
            &mut tx,
            Some(&actor),
            AuditAction::RoleChanged,
            &target.name,
            &detail,
        )
        .await?;
        tx.commit().await?;
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
        let actor = self.actor(actor_id).await?;
        let target = self.removable(&actor, member_id).await?;
        let now = self.clock.now_ms();
        store::active_keys_of(&self.pool, &target.id)
            .await?
            .into_iter()
            .map(|k| summary_from_row(k, now))
            .collect()
    }

    async fn removable(&self, actor: &Member, member_id: &str) -> Result<Member> {
        let target = self.target(member_id).await?;
        if target.id == actor.id {
            return Err(Error::InvalidTarget("You cannot remove yourself."));
        }
        authorize(actor.role, Action::ManageMember(target.role))?;
        Ok(target)
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
        let actor = self.actor(actor_id).await?;
        let target = self.removable(&actor, member_id).await?;
        if confirmation != REMOVE_CONFIRMATION {
            return Err(Error::RemoveConfirmationMismatch);
        }
        let now = self.clock.now_ms();
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let keys = store::active_keys_of(&mut *tx, &target.id).await?;
        for key in &keys {
            store::revoke_key(&mut *tx, &key.id, now).await?;
            let t = key_target(&key.name, &key.start, &key.id);
            let detail = format!("member {} removed", target.name);
            self.audit(&mut tx, Some(&actor), AuditAction::KeyRevoked, &t, &detail)
                .await?;
        }
        store::disable_member(&mut *tx, &target.id, now).await?;
        let detail = match keys.len() {
            1 => "1 key revoked".to_owned(),
            n => format!("{n} keys revoked"),
        };
        self.audit(
            &mut tx,
            Some(&actor),
            AuditAction::MemberRemoved,
            &target.name,
            &detail,
        )
        .await?;
        tx.commit().await?;
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
        let actor = self.actor(actor_id).await?;
        authorize(actor.role, Action::TransferOwnership)?;
        let target = self.target(member_id).await?;
        if target.id == actor.id {
            return Err(Error::InvalidTarget("You already own this account."));
        }
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        // Demote first: the schema holds exactly one Owner at every statement.
        store::set_role(&mut *tx, &actor.id, Role::Admin.as_str()).await?;
        store::set_role(&mut *tx, &target.id, Role::Owner.as_str()).await?;
        let detail = format!("{} → owner; {} → admin", target.name, actor.name);
        self.audit(
            &mut tx,
            Some(&actor),
            AuditAction::OwnershipTransferred,
            &target.name,
            &detail,
        )
        .await?;
        tx.commit().await?;
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
        let actor = self.actor(actor_id).await?;
        let row = store::member_by_id(&self.pool, &actor.id)
            .await?
            .ok_or(Error::NotSignedIn)?;
        if !passphrase::verify(current, &row.passphrase_hash) {
            return Err(Error::BadCredentials);
        }
        validate::new_passphrase(new)?;
        if new == current {
            return Err(Error::InvalidPassphrase(
                "The new passphrase must differ from the current one.".into(),
            ));
        }
        let phc = passphrase::hash(new)?;
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        store::set_passphrase(&mut *tx, &actor.id, &phc, false).await?;
        self.audit(
            &mut tx,
            Some(&actor),
            AuditAction::PassphraseChanged,
            &actor.name,
            "",
        )
        .await?;
        tx.commit().await?;
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
        let rows = audit::all(&self.pool).await?;
        let chain = chain_status(&rows);
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

    /// Walks the whole audit chain. Needs no member: anyone who can read the database can
    /// check it (`keysmith audit verify`).
    ///
    /// # Errors
    /// [`Error::Storage`].
    pub async fn audit_chain(&self) -> Result<ChainStatus> {
        Ok(chain_status(&audit::all(&self.pool).await?))
    }
}

fn chain_status(rows: &[audit::AuditRow]) -> ChainStatus {
    match audit::verify_chain(rows) {
        Ok(n) => ChainStatus {
            intact: true,
            entries: n as u64,
            problem: None,
        },
        Err(b) => ChainStatus {
            intact: false,
            entries: rows.len() as u64,
            problem: Some(b.to_string()),
        },
    }
}
