//! The key registry: every operation of Keysmith, each checking who asks and what they may do.
//!
//! The Tauri commands, the CLI and the tests all call these methods; none of them runs SQL
//! or decides permissions on its own.

use std::path::Path;
use std::sync::Arc;

use keysmith_types::{KeyStatus, KeySummary, MemberSummary, Role, REVOKE_CONFIRMATION};
use tokio::sync::OnceCell;

use crate::audit::{self, AuditAction, Subject};
use crate::clock::{Clock, SystemClock};
use crate::digest::Pepper;
use crate::error::{Error, Result};
use crate::integrity::{AuditKey, KeyFields, MemberFields, RowKey};
use crate::key::ApiKeySecret;
use crate::permissions::{authorize, permits, Action};
use crate::rate::RateLimit;
use crate::scope::{ScopeCatalog, ScopeGrant, Scopes};
use crate::secret_store::SecretStore;
use crate::sources::AllowedSources;
use crate::store::{self, KeyRow, MemberRow};
use crate::usage::{day_of, DayTally, Outcome};
use crate::write::{
    anchor_entry, audit_key_entry, key_sealed_as, key_subject, member_subject, pepper_entry, Keys,
    WriteTx,
};
use crate::{data_dir, passphrase, validate};

/// A member, as the core sees them at the moment of a call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub id: String,
    pub name: String,
    pub role: Role,
    pub must_change_passphrase: bool,
}

impl Member {
    pub fn summary(&self) -> MemberSummary {
        MemberSummary {
            id: self.id.clone(),
            name: self.name.clone(),
            role: self.role,
        }
    }
}

/// A key that passed verification: which key, and whose (with the creator's *current* role,
/// which decides what the key may do: PRODUCT.md, "access follows the creator's role").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub key_id: String,
    pub key_name: String,
    pub creator: MemberSummary,
}

/// A freshly generated key: its summary and, this once, the key itself.
#[derive(Debug)]
pub struct Generated {
    pub summary: KeySummary,
    pub secret: ApiKeySecret,
}

impl Generated {
    /// The one-time reveal as it crosses IPC or HTTP: the summary and a copy of the key
    /// (zeroized on drop like the key itself).
    pub fn reveal(&self) -> keysmith_types::KeyReveal {
        keysmith_types::KeyReveal {
            key: self.summary.clone(),
            secret: keysmith_types::RevealedKey::new(self.secret.expose().to_owned()),
        }
    }
}

/// A counted sign-in attempt ([`Registry::try_passphrase`]): its number for this name, the
/// member row as read when it was counted, the hash checked, and whether the passphrase
/// matched it. Acting on a match must re-read the row in its own transaction and check the
/// hash is still `checked_hash` (the passphrase may have changed while Argon2 ran).
pub(crate) struct Attempt {
    pub number: i64,
    pub row: Option<store::MemberRow>,
    pub checked_hash: String,
    pub matched: bool,
}

/// The registry: one SQLite database plus the pepper in the OS keyring.
pub struct Registry {
    pub(crate) pool: store::Pool,
    secrets: Arc<dyn SecretStore>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) keys: OnceCell<Keys>,
    /// The highest audit entry this process has settled the keyring's anchor on
    /// ([`Registry::commit`]): settles are serialised here so the anchor never moves back.
    pub(crate) anchor_settled: tokio::sync::Mutex<i64>,
    /// The newest head this process committed: a settle writes it, so one keyring write
    /// covers every commit that landed while the previous settle was under way.
    pub(crate) newest_committed: std::sync::Mutex<Option<crate::integrity::Head>>,
    /// Opened on first use by [`Registry::change_counter`].
    watch: tokio::sync::Mutex<Option<store::ChangeWatch>>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry").finish_non_exhaustive()
    }
}

pub(crate) fn member_from_row(row: MemberRow) -> Result<Member> {
    let role = Role::parse(&row.role)
        .ok_or_else(|| Error::Internal(format!("unknown role {:?} in the database", row.role)))?;
    Ok(Member {
        id: row.id,
        name: row.name,
        role,
        must_change_passphrase: row.must_change_passphrase,
    })
}

/// A key's status at `now`: revoked (also when its creator was removed), expired (past its
/// expiry or its grace period after a roll), paused, or active, the first that holds.
pub fn key_status(
    revoked_at: Option<i64>,
    creator_disabled_at: Option<i64>,
    expires_at: Option<i64>,
    paused_at: Option<i64>,
    now: i64,
) -> KeyStatus {
    if revoked_at.is_some() || creator_disabled_at.is_some() {
        KeyStatus::Revoked
    } else if expires_at.is_some_and(|at| now >= at) {
        KeyStatus::Expired
    } else if paused_at.is_some() {
        KeyStatus::Paused
    } else {
        KeyStatus::Active
    }
}

/// [`key_status`] of a stored row.
fn row_status(row: &KeyRow, now: i64) -> KeyStatus {
    key_status(
        row.revoked_at,
        row.creator_disabled_at,
        row.expires_at,
        row.paused_at,
        now,
    )
}

/// The key row whose digest is `digest`: looked up by the database's index, then compared
/// again in constant time.
async fn key_with_digest(
    tx: &mut store::Tx,
    digest: &crate::digest::KeyDigest,
) -> Result<Option<KeyRow>> {
    Ok(store::key_by_digest(tx, digest.as_bytes())
        .await?
        .filter(|m| crate::digest::KeyDigest::from_slice(&m.digest).is_some_and(|d| d == *digest)))
}

pub(crate) fn summary_from_row(row: KeyRow, now: i64) -> Result<KeySummary> {
    let role = Role::parse(&row.creator_role).ok_or_else(|| {
        Error::Internal(format!(
            "unknown role {:?} in the database",
            row.creator_role
        ))
    })?;
    Ok(KeySummary {
        status: row_status(&row, now),
        id: row.id,
        name: row.name,
        start: row.start,
        created_at: row.created_at,
        created_by: MemberSummary {
            id: row.created_by,
            name: row.creator_name,
            role,
        },
        last_used_at: row.last_used_at,
        revoked_at: row.revoked_at,
        expires_at: row.expires_at,
        replaced_by: row.replaced_by,
        paused_at: row.paused_at,
        allowed_sources: crate::sources::stored_networks(row.allowed_sources.as_deref()),
        rate_limit: row.rate_limit,
        scopes: crate::scope::stored_names(row.scopes.as_deref()),
    })
}

/// What limits a new key besides its creator's role. A roll keeps them.
#[derive(Debug, Clone, Default)]
pub struct KeyLimits {
    /// Lifetime in milliseconds from generation (1 minute to 10 years); `None` for a key
    /// that never expires.
    pub expires_in_ms: Option<i64>,
    /// Where the key may be used from (`sources.rs`); any address by default.
    pub sources: AllowedSources,
    /// How often the key may be used (`rate.rs`); no limit by default.
    pub rate_limit: Option<RateLimit>,
    /// Scopes that narrow the key below its creator's role (`scope.rs`); the whole role by
    /// default. Generation checks them against the generating member's role.
    pub scopes: Option<ScopeGrant>,
}

impl KeyLimits {
    /// The limits a generate request asks for (`POST /v1/keys`, the app's dialog, `keys
    /// create`), checked.
    ///
    /// The lifetime's range is checked by [`Registry::generate_key_limited`], which every
    /// generation goes through.
    ///
    /// # Errors
    /// [`Error::InvalidDuration`] for a lifetime too large to count in milliseconds,
    /// [`Error::InvalidAddress`] for a malformed allowlist, [`Error::InvalidRateLimit`] for a
    /// malformed, zero or too large rate limit, [`Error::InvalidScope`] for a malformed scope
    /// or one `catalog` does not define; each names the bad value.
    pub fn from_request(
        req: &keysmith_types::GenerateKeyRequest,
        catalog: &ScopeCatalog,
    ) -> Result<KeyLimits> {
        let expires_in_ms = req.expires_in_secs.map(validate::secs_to_ms).transpose()?;
        Ok(KeyLimits {
            scopes: Scopes::parse(&req.scopes)?
                .map(|s| catalog.resolve(s))
                .transpose()?,
            expires_in_ms,
            sources: AllowedSources::parse(&req.allowed_sources)?,
            rate_limit: match req.rate_limit.as_deref() {
                Some(text) => RateLimit::parse(text)?,
                None => None,
            },
        })
    }
}

impl Registry {
    /// Opens the registry in `dir` (created 0700 if missing) with the system clock.
    ///
    /// # Errors
    /// [`Error::DataDir`], [`Error::Storage`], [`Error::Migration`].
    pub async fn open(dir: &Path, secrets: Arc<dyn SecretStore>) -> Result<Registry> {
        data_dir::ensure(dir)?;
        let pool = store::open(&dir.join(store::DB_FILE)).await?;
        Ok(Registry::with_parts(pool, secrets, Arc::new(SystemClock)))
    }

    /// Opens the registry in `dir` only if a Keysmith database is there already: for every
    /// command but first-run set-up, so a mistyped directory is reported, not filled with
    /// an empty database.
    ///
    /// # Errors
    /// [`Error::NotInitialized`] when `dir` holds no database; otherwise as [`Registry::open`].
    pub async fn open_existing(dir: &Path, secrets: Arc<dyn SecretStore>) -> Result<Registry> {
        if !dir.join(store::DB_FILE).is_file() {
            return Err(Error::NotInitialized);
        }
        Registry::open(dir, secrets).await
    }

    /// Opens the registry on the PostgreSQL database at `url` (the team server's store; see
    /// [`store::connect_postgres`]) with the system clock, migrating it if needed.
    ///
    /// # Errors
    /// [`Error::Storage`] (unreachable server, bad URL), [`Error::Migration`],
    /// [`Error::SchemaTooNew`].
    pub async fn connect_postgres(
        url: &str,
        max_connections: u32,
        secrets: Arc<dyn SecretStore>,
    ) -> Result<Registry> {
        let pool = store::connect_postgres(url, max_connections).await?;
        Ok(Registry::with_parts(pool, secrets, Arc::new(SystemClock)))
    }

    /// Builds a registry from an open pool, a secret store and a clock.
    pub fn with_parts(
        pool: store::Pool,
        secrets: Arc<dyn SecretStore>,
        clock: Arc<dyn Clock>,
    ) -> Registry {
        Registry {
            pool,
            secrets,
            clock,
            keys: OnceCell::new(),
            anchor_settled: tokio::sync::Mutex::new(0),
            newest_committed: std::sync::Mutex::new(None),
            watch: tokio::sync::Mutex::new(None),
        }
    }

    /// The secret store (for tests that open a second registry on the same keyring).
    pub fn secrets(&self) -> Arc<dyn SecretStore> {
        Arc::clone(&self.secrets)
    }

    /// The connection pool (for tests and benchmarks that inspect the database).
    pub fn pool(&self) -> &store::Pool {
        &self.pool
    }

    /// Whether first-run set-up was done.
    pub async fn is_initialized(&self) -> Result<bool> {
        Ok(store::account_id(&self.pool).await?.is_some())
    }

    /// First run: creates the account, its pepper and audit key in the OS keyring, and its
    /// Owner, and starts the keyed audit chain with "account_created".
    ///
    /// The secrets are written first; if the database then refuses (another set-up won),
    /// the keyring entries are removed again, so a failed set-up leaves nothing behind.
    ///
    /// # Errors
    /// [`Error::AlreadyInitialized`], [`Error::InvalidName`], [`Error::InvalidPassphrase`],
    /// [`Error::Keyring`] when no keyring answers.
    pub async fn create_account(&self, owner_name: &str, pass: &str) -> Result<Member> {
        let name = validate::name(owner_name, "member name")?;
        validate::new_passphrase(pass)?;
        if self.is_initialized().await? {
            return Err(Error::AlreadyInitialized);
        }
        let now = self.clock.now_ms();
        let account_id = uuid::Uuid::now_v7().to_string();
        let pepper = Pepper::generate()?;
        let rows = RowKey::derive(&pepper);
        let audit_key = AuditKey::generate()?;
        let mut owner = MemberRow {
            id: uuid::Uuid::now_v7().to_string(),
            name_key: validate::name_key(&name),
            name,
            role: Role::Owner.as_str().to_owned(),
            passphrase_hash: passphrase::hash_off_executor(pass).await?,
            must_change_passphrase: false,
            created_at: now,
            disabled_at: None,
            mac: None,
        };
        let owner_mac = rows.member_mac(MemberFields::from(&owner));
        owner.mac = Some(owner_mac.to_vec());
        let check = pepper.check_value();
        for (entry, secret) in [
            (pepper_entry(&account_id), pepper.as_bytes().to_vec()),
            (audit_key_entry(&account_id), audit_key.as_bytes().to_vec()),
        ] {
            let secret = zeroize::Zeroizing::new(secret);
            self.keyring(move |s| s.set(&entry, &secret)).await?;
        }

        let written = async {
            let mut tx = self.pool.begin_write().await?;
            if store::account_id(&mut tx).await?.is_some() {
                return Err(Error::AlreadyInitialized);
            }
            store::insert_account(&mut tx, &account_id, now).await?;
            store::set_pepper_check(&mut tx, &check).await?;
            store::insert_member(&mut tx, &owner).await?;
            let start = audit::head(&mut tx).await?;
            let subject = member_subject(&owner.id);
            let end = audit::append(
                &mut tx,
                &audit_key,
                &audit::NewEntry {
                    at: now,
                    actor_id: Some(&owner.id),
                    actor_name: &owner.name,
                    action: AuditAction::AccountCreated,
                    target: &owner.name,
                    detail: "owner",
                    subject: Some(Subject {
                        row: &subject,
                        state: owner_mac,
                    }),
                },
            )
            .await?;
            self.commit_anchored(tx, &account_id, start.seq + 1, (start, end))
                .await?;
            Ok::<_, Error>(())
        }
        .await;
        if let Err(e) = written {
            for entry in [
                pepper_entry(&account_id),
                audit_key_entry(&account_id),
                anchor_entry(&account_id),
            ] {
                if let Err(cleanup) = self.keyring(move |s| s.delete(&entry)).await {
                    tracing::warn!(error = %cleanup, "could not remove a secret of a failed set-up");
                }
            }
            return Err(match e {
                Error::Storage(sqlx::Error::Database(db)) if db.is_unique_violation() => {
                    Error::AlreadyInitialized
                }
                other => other,
            });
        }
        tracing::info!(member = %owner.id, "account created");
        member_from_row(owner)
    }

    /// Signs a member in by name and passphrase.
    ///
    /// Each attempt is counted against the name typed before its passphrase is checked, in
    /// the same write transaction that checks the throttle: parallel attempts each count, and
    /// none slips past a delay another one set. Unknown names are counted and slowed down
    /// exactly like members' names, and cost the same Argon2 work, so neither the answer nor
    /// its timing tells which members exist (OWASP Authentication Cheat Sheet).
    ///
    /// # Errors
    /// [`Error::NotInitialized`], [`Error::BadCredentials`], [`Error::TooManyAttempts`].
    pub async fn sign_in(&self, name: &str, pass: &str) -> Result<Member> {
        if !self.is_initialized().await? {
            return Err(Error::NotInitialized);
        }
        let name_key = validate::name_key(name);
        let now = self.clock.now_ms();
        self.noting_tamper(self.sign_in_checked(name, &name_key, pass, now))
            .await
    }

    async fn sign_in_checked(
        &self,
        name: &str,
        name_key: &str,
        pass: &str,
        now: i64,
    ) -> Result<Member> {
        let Attempt {
            number: attempt,
            row,
            checked_hash,
            matched: ok,
        } = self.try_passphrase(name, name_key, pass, now).await?;
        let mut tx = self.begin_write().await?;
        // The member as they are now: removed, or given another passphrase, while Argon2 ran.
        let current = match &row {
            Some(r) => store::member_by_id(&mut *tx, &r.id)
                .await?
                .filter(|now| now.disabled_at.is_none() && now.passphrase_hash == checked_hash),
            None => None,
        };
        let outcome = match current {
            Some(r) if ok => {
                let r = self.checked_member(&mut tx, r).await?;
                store::clear_attempts(&mut *tx, name_key).await?;
                let member = member_from_row(r)?;
                self.audit(
                    &mut tx,
                    Some(&member),
                    AuditAction::SignIn,
                    &member.name,
                    "",
                    None,
                )
                .await?;
                tracing::info!(member = %member.id, "signed in");
                Ok(member)
            }
            _ => {
                let detail = match &row {
                    Some(_) => format!("failed attempt {attempt}"),
                    None => format!("unknown member; failed attempt {attempt}"),
                };
                let typed: String = name.chars().filter(|c| !c.is_control()).take(64).collect();
                let (actor_id, actor_name) = match &row {
                    Some(r) => (Some(r.id.as_str()), r.name.as_str()),
                    None => (None, typed.as_str()),
                };
                self.audit_as(
                    &mut tx,
                    actor_id,
                    actor_name,
                    AuditAction::SignInFailed,
                    actor_name,
                    &detail,
                    None,
                )
                .await?;
                tracing::info!(member = actor_id.unwrap_or("-"), attempt, "failed sign-in");
                Err(Error::BadCredentials)
            }
        };
        self.commit(tx).await?;
        outcome
    }

    /// A sign-in attempt up to its outcome: counted first, in the write transaction that
    /// checks the delay (so parallel attempts all count), then the passphrase checked with
    /// Argon2, also for an unknown or removed name (against a dummy hash), so the time taken
    /// does not tell who exists (OWASP Authentication Cheat Sheet). Shared by
    /// [`Registry::sign_in`] and [`Registry::accept_restored_store`].
    ///
    /// # Errors
    /// [`Error::TooManyAttempts`] while a delay runs (the attempt still counts).
    pub(crate) async fn try_passphrase(
        &self,
        name: &str,
        name_key: &str,
        pass: &str,
        now: i64,
    ) -> Result<Attempt> {
        let (number, row) = {
            let mut tx = self.begin_write().await?;
            store::prune_attempts(&mut *tx, now - ATTEMPTS_KEPT_MS).await?;
            let mut attempts = store::attempts(&mut *tx, name_key).await?;
            attempts.failed += 1;
            if let Some(next) = attempts.next_at.filter(|next| *next > now) {
                store::set_attempts(&mut *tx, name_key, attempts, now).await?;
                self.commit(tx).await?;
                return Err(Error::TooManyAttempts {
                    retry_after_secs: (next - now + 999) / 1000,
                });
            }
            attempts.next_at = sign_in_delay_ms(attempts.failed).map(|d| now + d);
            store::set_attempts(&mut *tx, name_key, attempts, now).await?;
            let row = store::member_by_name(&mut *tx, name)
                .await?
                .filter(|r| r.disabled_at.is_none());
            self.commit(tx).await?;
            (attempts.failed, row)
        };
        let hash = row
            .as_ref()
            .map_or_else(|| dummy_hash().to_owned(), |r| r.passphrase_hash.clone());
        let checked_hash = hash.clone();
        let pass = zeroize::Zeroizing::new(pass.to_owned());
        let matched = tokio::task::spawn_blocking(move || passphrase::verify(&pass, &hash))
            .await
            .map_err(|e| Error::Internal(e.to_string()))?;
        Ok(Attempt {
            number,
            row,
            checked_hash,
            matched,
        })
    }

    /// The member with this id as they are now; a removed member is no longer signed in.
    ///
    /// # Errors
    /// [`Error::NotSignedIn`] for an unknown or disabled member.
    pub async fn actor(&self, member_id: &str) -> Result<Member> {
        self.keys().await?;
        // One statement: the row and the state the audit log recorded for it come from one
        // snapshot, so a change committed in between is not taken for tampering.
        match store::member_by_id_with_state(&self.pool, member_id).await? {
            Some(found) if found.row.disabled_at.is_none() => member_from_row(
                self.member_as_recorded(found.row, found.recorded_state.as_deref())
                    .await?,
            ),
            _ => Err(Error::NotSignedIn),
        }
    }

    /// The member with this name (for the CLI's `--as NAME`).
    ///
    /// # Errors
    /// [`Error::NotFound`] for an unknown or disabled member.
    pub async fn member_named(&self, name: &str) -> Result<Member> {
        match store::member_by_name(&self.pool, name).await? {
            Some(row) if row.disabled_at.is_none() => member_from_row(row),
            _ => Err(Error::UnknownMember(name.trim().to_owned())),
        }
    }

    /// Generates an API key named `name` for the member `actor_id`.
    ///
    /// The key is drawn from the OS CSPRNG, stored only as HMAC-SHA-256(pepper, key), and
    /// returned this once.
    ///
    /// # Errors
    /// [`Error::NotSignedIn`], [`Error::NotPermitted`] (Authors and Viewers),
    /// [`Error::InvalidName`], [`Error::PepperMissing`], [`Error::Keyring`].
    pub async fn generate_key(&self, actor_id: &str, name: &str) -> Result<Generated> {
        self.generate_key_expiring(actor_id, name, None).await
    }

    /// [`Registry::generate_key`] with an optional lifetime: the key fails as expired
    /// `expires_in_ms` milliseconds from now (1 minute to 10 years).
    ///
    /// # Errors
    /// As [`Registry::generate_key`], and [`Error::InvalidDuration`].
    pub async fn generate_key_expiring(
        &self,
        actor_id: &str,
        name: &str,
        expires_in_ms: Option<i64>,
    ) -> Result<Generated> {
        let limits = KeyLimits {
            expires_in_ms,
            ..KeyLimits::default()
        };
        self.generate_key_limited(actor_id, name, &limits).await
    }

    /// [`Registry::generate_key`] with [`KeyLimits`]: a lifetime and a source allowlist.
    ///
    /// # Errors
    /// As [`Registry::generate_key`], and [`Error::InvalidDuration`].
    pub async fn generate_key_limited(
        &self,
        actor_id: &str,
        name: &str,
        limits: &KeyLimits,
    ) -> Result<Generated> {
        let name = validate::name(name, "key name")?;
        if let Some(ms) = limits.expires_in_ms {
            validate::lifetime_ms(ms)?;
        }
        self.noting_tamper(self.generate_checked(actor_id, &name, limits))
            .await
    }

    async fn generate_checked(
        &self,
        actor_id: &str,
        name: &str,
        limits: &KeyLimits,
    ) -> Result<Generated> {
        let (mut tx, actor) = self.begin_write_as(actor_id).await?;
        authorize(actor.role, Action::GenerateOwnKey)?;
        // The member's role now, read in this transaction, decides which scopes they may give.
        if let Some(grant) = &limits.scopes {
            grant.check_role(actor.role)?;
        }
        let scopes = limits.scopes.as_ref().map(ScopeGrant::scopes);
        let now = self.clock.now_ms();
        let expires_at = limits.expires_in_ms.map(|ms| now + ms);
        let stored = StoredLimits {
            expires_at,
            sources: limits.sources.stored(),
            rate_limit: limits.rate_limit.map(|r| r.stored()),
            scopes: scopes.map(Scopes::stored),
        };
        let drawn = draw_key(&tx, &actor.summary(), name, stored, now)?;
        let summary = &drawn.generated.summary;
        let target = key_target(name, &summary.start, &summary.id);
        let detail = [
            expires_at.map(|at| format!("expires {} UTC", crate::clock::format_utc(at))),
            (!limits.sources.is_any()).then(|| format!("only from {}", limits.sources)),
            limits.rate_limit.map(|r| format!("at most {r}")),
            scopes.map(|s| format!("scopes {s}")),
        ]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join("; ");
        let subject = key_subject(&summary.id);
        // The key and its entry in one statement on PostgreSQL.
        self.append_entry_with_key(
            &mut tx,
            &drawn.row(),
            &audit::NewEntry {
                at: now,
                actor_id: Some(&actor.id),
                actor_name: &actor.name,
                action: AuditAction::KeyGenerated,
                target: &target,
                detail: &detail,
                subject: Some(Subject {
                    row: &subject,
                    state: drawn.mac,
                }),
            },
        )
        .await?;
        self.commit(tx).await?;
        let generated = drawn.generated;
        tracing::info!(key = %generated.summary.id, member = %actor.id, "API key generated");
        Ok(generated)
    }

    /// Rolls a key: generates its replacement (returned this once) and lets the old key keep
    /// working for `grace_ms` more (0 to 90 days; 0 ends it now), after which it fails as
    /// expired. Both in one transaction.
    ///
    /// The replacement is derived from the old key and keeps what limits it (PRODUCT.md,
    /// "whatever derives from a key keeps its creator and limits"): the same creator, whoever
    /// rolls it (so it acts with the creator's role, shows in the creator's list, and is
    /// revoked when the creator is removed), the same name, and the same expiry: a roll
    /// replaces the secret, it never extends a key's life. Allowed to whoever may revoke the
    /// key (the article: rotate by issuing a new key before the old one stops working), while
    /// the creator's role may still generate keys.
    ///
    /// # Errors
    /// [`Error::NotSignedIn`], [`Error::NotFound`], [`Error::NotPermitted`],
    /// [`Error::InvalidDuration`], [`Error::AlreadyRevoked`], [`Error::KeyExpired`],
    /// [`Error::AlreadyReplaced`].
    pub async fn roll_key(&self, actor_id: &str, key_id: &str, grace_ms: i64) -> Result<Generated> {
        validate::grace_ms(grace_ms)?;
        self.noting_tamper(self.roll_checked(actor_id, key_id, grace_ms))
            .await
    }

    async fn roll_checked(&self, actor_id: &str, key_id: &str, grace_ms: i64) -> Result<Generated> {
        let (mut tx, actor) = self.begin_write_as(actor_id).await?;
        let key = self.revocable_key(&mut tx, &actor, key_id).await?;
        let key = self.checked_key(&mut tx, key).await?;
        authorize(actor.role, Action::GenerateOwnKey)?;
        let creator_row = store::member_by_id(&mut *tx, &key.created_by)
            .await?
            .ok_or_else(|| Error::Internal(format!("key {} has no creator", key.id)))?;
        let creator = member_from_row(self.checked_member(&mut tx, creator_row).await?)?.summary();
        if !permits(creator.role, Action::GenerateOwnKey) {
            return Err(Error::NotPermitted(
                "the key's creator is now a role that cannot generate API keys; revoke it instead",
            ));
        }
        let now = self.clock.now_ms();
        if key.replaced_by.is_some() {
            return Err(Error::AlreadyReplaced);
        }
        match row_status(&key, now) {
            KeyStatus::Revoked | KeyStatus::Tampered => return Err(Error::AlreadyRevoked),
            KeyStatus::Expired => return Err(Error::KeyExpired),
            // A roll hands out a working secret; a paused key's integration is on hold.
            KeyStatus::Paused => return Err(Error::KeyPaused),
            KeyStatus::Active => {}
        }
        // The replacement keeps what limits the old key: its expiry, allowlist, rate limit and
        // scopes.
        let kept = StoredLimits {
            expires_at: key.expires_at,
            sources: key.allowed_sources.clone(),
            rate_limit: key.rate_limit.clone(),
            scopes: key.scopes.clone(),
        };
        let (generated, new_mac) = insert_new_key(&mut tx, &creator, &key.name, kept, now).await?;
        if !store::mark_rolled(&mut *tx, &key.id, &generated.summary.id, now + grace_ms).await? {
            return Err(Error::AlreadyReplaced);
        }
        let old_mac = self.reseal_key(&mut tx, &key.id).await?;
        let old_until = key
            .expires_at
            .map_or(now + grace_ms, |at| at.min(now + grace_ms));
        let target = key_target(&key.name, &key.start, &key.id);
        let detail = format!(
            "replaced by {}… ({}) for {}; old key works until {}",
            generated.summary.start,
            generated.summary.id,
            creator.name,
            crate::clock::format_utc(old_until)
        );
        let new_subject = key_subject(&generated.summary.id);
        let new_target = key_target(&key.name, &generated.summary.start, &generated.summary.id);
        self.audit(
            &mut tx,
            Some(&actor),
            AuditAction::KeyGenerated,
            &new_target,
            &format!("replacement of {}… for {}", key.start, creator.name),
            Some(Subject {
                row: &new_subject,
                state: new_mac,
            }),
        )
        .await?;
        let old_subject = key_subject(&key.id);
        self.audit(
            &mut tx,
            Some(&actor),
            AuditAction::KeyRolled,
            &target,
            &detail,
            Some(Subject {
                row: &old_subject,
                state: old_mac,
            }),
        )
        .await?;
        self.commit(tx).await?;
        tracing::info!(key = %key.id, replacement = %generated.summary.id, member = %actor.id, "API key rolled");
        Ok(generated)
    }

    /// Records that `actor_id` copied the key `key_id` to the clipboard during its one-time
    /// display. Only for a key the member may see (as [`Registry::list_keys`]): nobody can
    /// write "copied" entries against keys they were never shown.
    ///
    /// # Errors
    /// [`Error::NotSignedIn`], [`Error::NotFound`], [`Error::NotPermitted`] (a key of
    /// someone else's for a Manager; any key for Authors and Viewers).
    pub async fn record_copy(&self, actor_id: &str, key_id: &str) -> Result<()> {
        let (mut tx, actor) = self.begin_write_as(actor_id).await?;
        let key = self
            .key_for(
                &mut tx,
                &actor,
                key_id,
                Action::SeeOwnKeys,
                Action::SeeOthersKeys,
            )
            .await?;
        let target = key_target(&key.name, &key.start, &key.id);
        self.audit(
            &mut tx,
            Some(&actor),
            AuditAction::KeyCopied,
            &target,
            "",
            None,
        )
        .await?;
        self.commit(tx).await?;
        Ok(())
    }

    /// The keys `actor_id` may see: every key for the Owner and Admins, their own for
    /// Managers. Newest first.
    ///
    /// # Errors
    /// [`Error::NotSignedIn`], [`Error::NotPermitted`] (Authors and Viewers).
    pub async fn list_keys(&self, actor_id: &str) -> Result<Vec<KeySummary>> {
        self.list_newest_keys(actor_id, None).await
    }

    /// [`Registry::list_keys`], only the newest `limit` of them when `limit` is given: the
    /// keys page shows these first, before the whole of a long list arrives.
    ///
    /// # Errors
    /// As [`Registry::list_keys`].
    pub async fn list_newest_keys(
        &self,
        actor_id: &str,
        limit: Option<u32>,
    ) -> Result<Vec<KeySummary>> {
        let actor = self.actor(actor_id).await?;
        let rows = if permits(actor.role, Action::SeeOthersKeys) {
            store::list_keys_with_state(&self.pool, None, limit).await?
        } else {
            authorize(actor.role, Action::SeeOwnKeys)?;
            store::list_keys_with_state(&self.pool, Some(&actor.id), limit).await?
        };
        let now = self.clock.now_ms();
        let row_key = &self.keys().await?.rows;
        let mut out = Vec::with_capacity(rows.len());
        for store::KeyRowWithState {
            row: r,
            recorded_state,
        } in rows
        {
            let sealed = key_sealed_as(row_key, &r, recorded_state.as_deref());
            let mut summary = summary_from_row(r, now)?;
            if !sealed {
                summary.status = KeyStatus::Tampered;
            }
            out.push(summary);
        }
        Ok(out)
    }

    /// A number that changes whenever anything is committed to the database, by this
    /// process or another (SQLite's `PRAGMA data_version`, see [`store::ChangeWatch`]): while
    /// it stays the same, and no key's expiry passes, [`Registry::list_newest_keys`] answers
    /// the same. `None` on PostgreSQL, where no such number exists.
    ///
    /// # Errors
    /// [`Error::Storage`].
    pub async fn change_counter(&self) -> Result<Option<i64>> {
        let mut watch = self.watch.lock().await;
        if watch.is_none() {
            *watch = self.pool.change_watch().await?;
        }
        match watch.as_mut() {
            Some(w) => Ok(Some(w.data_version().await?)),
            None => Ok(None),
        }
    }

    /// Revokes a key, irreversibly. `confirmation` must be exactly `REVOKE` (the article's
    /// typed confirmation); the schema refuses any later un-revoke.
    ///
    /// # Errors
    /// [`Error::NotSignedIn`], [`Error::NotFound`], [`Error::NotPermitted`],
    /// [`Error::ConfirmationMismatch`], [`Error::AlreadyRevoked`].
    pub async fn revoke_key(
        &self,
        actor_id: &str,
        key_id: &str,
        confirmation: &str,
    ) -> Result<KeySummary> {
        self.noting_tamper(self.revoke_checked(actor_id, key_id, confirmation))
            .await
    }

    async fn revoke_checked(
        &self,
        actor_id: &str,
        key_id: &str,
        confirmation: &str,
    ) -> Result<KeySummary> {
        let (mut tx, actor) = self.begin_write_as(actor_id).await?;
        // A key whose row was changed outside Keysmith may still be revoked: revoking only
        // ever takes access away, and seals the row as revoked.
        let mut key = self.revocable_key(&mut tx, &actor, key_id).await?;
        if confirmation != REVOKE_CONFIRMATION {
            return Err(Error::ConfirmationMismatch);
        }
        if key.revoked_at.is_some() {
            return Err(Error::AlreadyRevoked);
        }
        let now = self.clock.now_ms();
        if !store::revoke_key(&mut *tx, key_id, now).await? {
            return Err(Error::AlreadyRevoked);
        }
        self.record_key_change(tx, &actor, &key, AuditAction::KeyRevoked)
            .await?;
        tracing::info!(key = %key_id, member = %actor.id, "API key revoked");
        key.revoked_at = Some(now);
        summary_from_row(key, now)
    }

    /// Pauses a key: from the commit on it is refused everywhere (app, CLI, verifiers) like a
    /// revoked key, but [`Registry::resume_key`] brings it back. Allowed to whoever may revoke
    /// it (its creator while their role may revoke their own keys, the Owner and Admins for
    /// anyone's). Audited as `key_paused`.
    ///
    /// # Errors
    /// [`Error::NotSignedIn`], [`Error::NotFound`], [`Error::NotPermitted`],
    /// [`Error::AlreadyPaused`], [`Error::AlreadyRevoked`], [`Error::KeyExpired`] (nothing to
    /// pause), [`Error::StoreTampered`] (its row was changed outside Keysmith: revoke it).
    pub async fn pause_key(&self, actor_id: &str, key_id: &str) -> Result<KeySummary> {
        self.noting_tamper(self.pause_checked(actor_id, key_id, true))
            .await
    }

    /// Resumes a paused key: it works again as it did before the pause (its expiry, if any,
    /// still applies). Allowed to the same members as [`Registry::pause_key`]; audited as
    /// `key_resumed`.
    ///
    /// # Errors
    /// [`Error::NotSignedIn`], [`Error::NotFound`], [`Error::NotPermitted`],
    /// [`Error::NotPaused`], [`Error::AlreadyRevoked`], [`Error::StoreTampered`].
    pub async fn resume_key(&self, actor_id: &str, key_id: &str) -> Result<KeySummary> {
        self.noting_tamper(self.pause_checked(actor_id, key_id, false))
            .await
    }

    async fn pause_checked(&self, actor_id: &str, key_id: &str, pause: bool) -> Result<KeySummary> {
        let (mut tx, actor) = self.begin_write_as(actor_id).await?;
        let key = self.revocable_key(&mut tx, &actor, key_id).await?;
        let mut key = self.checked_key(&mut tx, key).await?;
        let now = self.clock.now_ms();
        match (row_status(&key, now), pause) {
            (KeyStatus::Revoked | KeyStatus::Tampered, _) => return Err(Error::AlreadyRevoked),
            (KeyStatus::Expired, true) => return Err(Error::KeyExpired),
            (KeyStatus::Paused, true) => return Err(Error::AlreadyPaused),
            (KeyStatus::Active, false) => return Err(Error::NotPaused),
            // An expired key that is still paused may be resumed: it stays expired.
            (KeyStatus::Expired, false) if key.paused_at.is_none() => return Err(Error::NotPaused),
            _ => {}
        }
        let paused_at = pause.then_some(now);
        if !store::set_paused(&mut *tx, key_id, paused_at).await? {
            return Err(if pause {
                Error::AlreadyPaused
            } else {
                Error::NotPaused
            });
        }
        let action = if pause {
            AuditAction::KeyPaused
        } else {
            AuditAction::KeyResumed
        };
        self.record_key_change(tx, &actor, &key, action).await?;
        tracing::info!(key = %key_id, member = %actor.id, paused = pause, "API key pause changed");
        key.paused_at = paused_at;
        summary_from_row(key, now)
    }

    /// Ends a change of `key`'s row made inside `tx` by `actor` (a revoke, a pause, a
    /// resume): seals the row again, appends the audit entry `action` ("key of CREATOR",
    /// recording the new seal as the key's state) and commits.
    ///
    /// # Errors
    /// [`Error::Storage`].
    async fn record_key_change(
        &self,
        mut tx: WriteTx<'_>,
        actor: &Member,
        key: &store::KeyRow,
        action: AuditAction,
    ) -> Result<()> {
        let mac = self.reseal_key(&mut tx, &key.id).await?;
        let target = key_target(&key.name, &key.start, &key.id);
        let detail = format!("key of {}", key.creator_name);
        let subject = key_subject(&key.id);
        self.audit(
            &mut tx,
            Some(actor),
            action,
            &target,
            &detail,
            Some(Subject {
                row: &subject,
                state: mac,
            }),
        )
        .await?;
        self.commit(tx).await
    }

    /// Checks a presented key: format and checksum, then HMAC with the pepper, then lookup,
    /// then status; records the use. Digests are compared in constant time.
    ///
    /// # Errors
    /// [`Error::MalformedKey`] (before any lookup), [`Error::UnknownKey`],
    /// [`Error::KeyRevoked`] (also for keys of removed members), [`Error::PepperMissing`].
    pub async fn verify(&self, presented: &str) -> Result<Verified> {
        let key = ApiKeySecret::parse(presented)?;
        self.noting_tamper(self.verify_checked(key)).await
    }

    async fn verify_checked(&self, key: ApiKeySecret) -> Result<Verified> {
        let pepper = self.pepper().await?;
        self.check_anchor().await?;
        let digest = pepper.digest(&key);
        drop(key);
        // One read transaction: the key, its creator and the states the audit log recorded
        // for both come from one snapshot (a change committed meanwhile is not tampering).
        let mut tx = self.pool.begin().await?;
        let found = key_with_digest(&mut tx, &digest)
            .await?
            .ok_or(Error::UnknownKey)?;
        let row = self.checked_key(&mut tx, found).await?;
        // The creator's row decides what the key may do: it must carry the seal too.
        let creator = store::member_by_id(&mut tx, &row.created_by)
            .await?
            .ok_or_else(|| Error::Internal(format!("key {} has no creator", row.id)))?;
        self.checked_member(&mut tx, creator).await?;
        tx.rollback().await?;
        let now = self.clock.now_ms();
        let (outcome, refusal) = match row_status(&row, now) {
            KeyStatus::Tampered => return Err(Error::KeyRevoked),
            KeyStatus::Revoked => (Outcome::Revoked, Some(Error::KeyRevoked)),
            KeyStatus::Expired => (Outcome::Expired, Some(Error::KeyExpired)),
            KeyStatus::Paused => (Outcome::Paused, Some(Error::KeyPaused)),
            KeyStatus::Active => (Outcome::Allowed, None),
        };
        // Counted like the verifier's answers, in the same per-day row.
        let mut tally = DayTally::default();
        tally.count(outcome, now, None);
        let mut tx = self.pool.begin_unlocked().await?;
        if refusal.is_none() {
            store::touch_last_used(&mut tx, &row.id, now).await?;
        }
        store::add_usage(&mut tx, &row.id, day_of(now), &tally).await?;
        tx.commit().await?;
        if let Some(refusal) = refusal {
            return Err(refusal);
        }
        let summary = summary_from_row(row, now)?;
        Ok(Verified {
            key_id: summary.id,
            key_name: summary.name,
            creator: summary.created_by,
        })
    }

    /// How `key_id` was used over the last `days` UTC days (1 to
    /// [`keysmith_types::USAGE_DAYS_MAX`]), today included: one entry per day, oldest first,
    /// with the verifiers' counts of accepted uses and refusals by reason, and the key's last
    /// use and its client address. Seen by whoever sees the key in the list: the Owner and
    /// Admins for every key, Managers for their own.
    ///
    /// # Errors
    /// [`Error::NotSignedIn`], [`Error::NotPermitted`], [`Error::NotFound`] (no such key),
    /// [`Error::InvalidDuration`] (`days` out of range).
    pub async fn key_usage(
        &self,
        actor_id: &str,
        key_id: &str,
        days: u32,
    ) -> Result<keysmith_types::KeyUsage> {
        if !(1..=keysmith_types::USAGE_DAYS_MAX).contains(&days) {
            return Err(Error::InvalidDuration(format!(
                "{days} days of usage: choose 1 to {}",
                keysmith_types::USAGE_DAYS_MAX
            )));
        }
        let actor = self.actor(actor_id).await?;
        authorize(actor.role, Action::SeeOwnKeys)?;
        let mut tx = self.pool.begin().await?;
        let key = store::key_by_id(&mut tx, key_id)
            .await?
            .ok_or_else(|| Error::NotFound {
                what: "API key",
                id: key_id.to_owned(),
            })?;
        if key.created_by != actor.id {
            authorize(actor.role, Action::SeeOthersKeys)?;
        }
        let today = day_of(self.clock.now_ms());
        let first = today - i64::from(days) + 1;
        let rows = store::usage_of_key(&mut tx, key_id, first).await?;
        let last_used_from = store::last_use_source(&mut tx, key_id).await?;
        tx.rollback().await?;
        let mut total = keysmith_types::UsageCounts::default();
        let mut by_day = rows.iter().peekable();
        let mut out = Vec::with_capacity(days as usize);
        for day in first..=today {
            let counts = match by_day.next_if(|r| r.day == day) {
                Some(row) => row.counts(),
                None => keysmith_types::UsageCounts::default(),
            };
            total.add(&counts);
            out.push(keysmith_types::UsageDay {
                date: crate::usage::date_of(day)
                    .ok_or_else(|| Error::Internal(format!("day {day} has no date")))?,
                counts,
            });
        }
        Ok(keysmith_types::KeyUsage {
            key_id: key.id,
            days: out,
            total,
            last_used_at: key.last_used_at,
            last_used_from,
        })
    }

    /// What this account knows of keys found somewhere (`keysmith scan`), in order: each
    /// key's summary (name, first 4 characters, creator, status), or `None` for a
    /// well-formed key that is none of this account's. Only reads: no last use is recorded,
    /// and revoked or expired keys are reported as such. A row changed outside Keysmith is
    /// reported as [`KeyStatus::Tampered`]. Like [`Registry::verify`], it needs no signed-in
    /// member: whoever holds a key can already check it.
    ///
    /// # Errors
    /// [`Error::PepperMissing`] and the other errors of loading the account's secrets,
    /// [`Error::StoreTampered`] (the database rolled back), [`Error::Storage`].
    pub async fn identify(&self, keys: &[&ApiKeySecret]) -> Result<Vec<Option<KeySummary>>> {
        let pepper = self.pepper().await?;
        self.noting_tamper(self.check_anchor()).await?;
        let now = self.clock.now_ms();
        let mut tx = self.pool.begin().await?;
        let mut out = Vec::with_capacity(keys.len());
        for key in keys {
            let digest = pepper.digest(key);
            let Some(row) = key_with_digest(&mut tx, &digest).await? else {
                out.push(None);
                continue;
            };
            let sealed = self.key_sealed(&mut tx, &row).await?;
            let mut summary = summary_from_row(row, now)?;
            if !sealed {
                summary.status = KeyStatus::Tampered;
            }
            out.push(Some(summary));
        }
        tx.rollback().await?;
        Ok(out)
    }

    /// Scans `target` for Keysmith keys and says what each found key is
    /// ([`Registry::identify`]); the keys themselves go no further than this call.
    ///
    /// # Errors
    /// As [`Registry::identify`]; what could not be scanned is in the report's `problems`.
    pub async fn scan(
        &self,
        target: crate::scan::ScanTarget,
    ) -> Result<keysmith_types::ScanReport> {
        let (found, walked) = tokio::task::spawn_blocking(move || {
            let mut found = Vec::new();
            let walked = crate::scan::scan_target(&target, &mut |f| found.push(f));
            (found, walked)
        })
        .await
        .map_err(|e| Error::Internal(format!("the scan stopped: {e}")))?;
        let keys: Vec<&ApiKeySecret> = found.iter().map(|f| &f.key).collect();
        let known = self.identify(&keys).await?;
        drop(keys);
        let findings = found
            .into_iter()
            .zip(known)
            .map(|(f, key)| keysmith_types::ScanFinding {
                // A paused key works again the moment someone resumes it.
                live: key
                    .as_ref()
                    .is_some_and(|k| matches!(k.status, KeyStatus::Active | KeyStatus::Paused)),
                place: f.place,
                line: f.line,
                key,
            })
            .collect();
        Ok(keysmith_types::ScanReport {
            findings,
            files: walked.files,
            bytes: walked.bytes,
            binary_skipped: walked.binary_skipped,
            git_lines: walked.git_lines,
            problems: walked.problems.iter().map(ToString::to_string).collect(),
        })
    }

    /// Writes the account's pepper to a new file (mode 0600), for a verifier that runs where
    /// no keyring is (`keysmith serve-verifier --pepper-file`). Owner only; audited. Whoever
    /// holds the file and a copy of the database can confirm guessed keys, so keep it as
    /// secret as the keyring entry.
    ///
    /// # Errors
    /// [`Error::NotSignedIn`], [`Error::NotPermitted`], [`Error::PepperMissing`],
    /// [`Error::PepperFile`] (the file exists or cannot be written).
    pub async fn export_pepper(&self, actor_id: &str, to: &Path) -> Result<()> {
        self.noting_tamper(self.export_checked(actor_id, to)).await
    }

    async fn export_checked(&self, actor_id: &str, to: &Path) -> Result<()> {
        let pepper = self.pepper().await?;
        let (mut tx, actor) = self.begin_write_as(actor_id).await?;
        authorize(actor.role, Action::ExportPepper)?;
        self.audit(
            &mut tx,
            Some(&actor),
            AuditAction::PepperExported,
            &format!("file {}", to.display()),
            "",
            None,
        )
        .await?;
        pepper.write_file(to)?;
        if let Err(e) = self.commit(tx).await {
            // Unaudited, the export did not happen.
            let _ = std::fs::remove_file(to);
            return Err(e);
        }
        tracing::info!(member = %actor.id, "pepper exported");
        Ok(())
    }

    /// The account's pepper, for a verifier in this process (read from the OS keyring).
    ///
    /// # Errors
    /// [`Error::NotInitialized`], [`Error::PepperMissing`], [`Error::Keyring`].
    pub async fn verifier_pepper(&self) -> Result<Pepper> {
        self.pepper().await.cloned()
    }

    /// The account's pepper, read from the OS keyring once and then kept in memory.
    async fn pepper(&self) -> Result<&Pepper> {
        Ok(&self.keys().await?.pepper)
    }

    /// Appends an audit entry for `actor` inside `tx` (see [`Registry::audit_as`]).
    pub(crate) async fn audit(
        &self,
        tx: &mut WriteTx<'_>,
        actor: Option<&Member>,
        action: AuditAction,
        target: &str,
        detail: &str,
        subject: Option<Subject<'_>>,
    ) -> Result<()> {
        self.audit_as(
            tx,
            actor.map(|a| a.id.as_str()),
            actor.map_or("", |a| a.name.as_str()),
            action,
            target,
            detail,
            subject,
        )
        .await
    }

    /// Runs a blocking keyring call off the async executor.
    pub(crate) async fn keyring<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&dyn SecretStore) -> Result<T, crate::secret_store::SecretStoreError>
            + Send
            + 'static,
    {
        self.keyring_call(f).await?.map_err(Error::from)
    }

    /// Runs a blocking keyring call off the async executor; the outer error is the task's.
    pub(crate) async fn keyring_call<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&dyn SecretStore) -> T + Send + 'static,
    {
        self.spawn_keyring(f)
            .await
            .map_err(|e| Error::Internal(e.to_string()))
    }

    /// Starts a blocking keyring call off the async executor.
    pub(crate) fn spawn_keyring<T, F>(&self, f: F) -> tokio::task::JoinHandle<T>
    where
        T: Send + 'static,
        F: FnOnce(&dyn SecretStore) -> T + Send + 'static,
    {
        let secrets = Arc::clone(&self.secrets);
        tokio::task::spawn_blocking(move || f(secrets.as_ref()))
    }
}

/// Draws a key for `creator`, stores its digest and row MAC inside `tx`, and returns it with
/// its summary and MAC.
async fn insert_new_key(
    tx: &mut WriteTx<'_>,
    creator: &MemberSummary,
    name: &str,
    limits: StoredLimits,
    now: i64,
) -> Result<(Generated, [u8; 32])> {
    let drawn = draw_key(tx, creator, name, limits, now)?;
    store::insert_key(&mut **tx, &drawn.row()).await?;
    Ok((drawn.generated, drawn.mac))
}

/// What limits a new key, in stored form: what a roll copies to the replacement.
#[derive(Debug, Clone, Default)]
struct StoredLimits {
    /// Unix ms; `None` for never.
    expires_at: Option<i64>,
    /// `AllowedSources::stored`.
    sources: Option<String>,
    /// `RateLimit::stored`.
    rate_limit: Option<String>,
    /// `Scopes::stored`.
    scopes: Option<String>,
}

/// A key drawn for `creator` with its digest and row MAC, not stored yet.
struct DrawnKey {
    generated: Generated,
    digest: [u8; 32],
    mac: [u8; 32],
    limits: StoredLimits,
}

impl DrawnKey {
    fn row(&self) -> store::NewKey<'_> {
        let s = &self.generated.summary;
        store::NewKey {
            id: &s.id,
            name: &s.name,
            start: &s.start,
            digest: &self.digest,
            created_at: s.created_at,
            created_by: &s.created_by.id,
            expires_at: s.expires_at,
            mac: &self.mac,
            allowed_sources: self.limits.sources.as_deref(),
            rate_limit: self.limits.rate_limit.as_deref(),
            scopes: self.limits.scopes.as_deref(),
        }
    }
}

/// Draws a key for `creator` (see [`insert_new_key`]) without storing it.
fn draw_key(
    tx: &WriteTx<'_>,
    creator: &MemberSummary,
    name: &str,
    limits: StoredLimits,
    now: i64,
) -> Result<DrawnKey> {
    let expires_at = limits.expires_at;
    let secret = ApiKeySecret::generate()?;
    let digest = *tx.keys().pepper.digest(&secret).as_bytes();
    let id = uuid::Uuid::now_v7().to_string();
    let start = secret.start();
    let mac = tx.keys().rows.key_mac(KeyFields {
        id: &id,
        digest: &digest,
        created_by: &creator.id,
        created_at: now,
        revoked_at: None,
        expires_at,
        replaced_by: None,
        paused_at: None,
        allowed_sources: limits.sources.as_deref(),
        rate_limit: limits.rate_limit.as_deref(),
        scopes: limits.scopes.as_deref(),
    });
    let allowed_sources = crate::sources::stored_networks(limits.sources.as_deref());
    let rate_limit = limits.rate_limit.clone();
    let scopes = crate::scope::stored_names(limits.scopes.as_deref());
    Ok(DrawnKey {
        digest,
        mac,
        limits,
        generated: Generated {
            summary: KeySummary {
                id,
                name: name.to_owned(),
                start,
                created_at: now,
                created_by: creator.clone(),
                last_used_at: None,
                revoked_at: None,
                expires_at,
                replaced_by: None,
                paused_at: None,
                allowed_sources,
                rate_limit,
                scopes,
                status: KeyStatus::Active,
            },
            secret,
        },
    })
}

impl Registry {
    /// The key `key_id` read inside `tx`, once `actor` is allowed to revoke it (their own,
    /// or anyone's for the Owner and Admins). Revoking, rolling, pausing and resuming all
    /// start here.
    ///
    /// # Errors
    /// [`Error::NotFound`], [`Error::NotPermitted`].
    async fn revocable_key(
        &self,
        tx: &mut WriteTx<'_>,
        actor: &Member,
        key_id: &str,
    ) -> Result<KeyRow> {
        self.key_for(
            tx,
            actor,
            key_id,
            Action::RevokeOwnKey,
            Action::RevokeOthersKey,
        )
        .await
    }

    /// The key `key_id`, if `actor` may act on it: `own` for a key they generated, `others`
    /// for anyone else's.
    async fn key_for(
        &self,
        tx: &mut WriteTx<'_>,
        actor: &Member,
        key_id: &str,
        own: Action,
        others: Action,
    ) -> Result<KeyRow> {
        let key = store::key_by_id(&mut **tx, key_id)
            .await?
            .ok_or_else(|| Error::NotFound {
                what: "API key",
                id: key_id.to_owned(),
            })?;
        let action = if key.created_by == actor.id {
            own
        } else {
            others
        };
        authorize(actor.role, action)?;
        Ok(key)
    }

    /// Appends an audit entry with the actor given by id and name (a failed sign-in names
    /// the member whose name was typed).
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn audit_as(
        &self,
        tx: &mut WriteTx<'_>,
        actor_id: Option<&str>,
        actor_name: &str,
        action: AuditAction,
        target: &str,
        detail: &str,
        subject: Option<Subject<'_>>,
    ) -> Result<()> {
        self.append_entry(tx, actor_id, actor_name, action, target, detail, subject)
            .await
    }
}

/// How an audit entry names a key: name, first 4 characters, id. Never more of the key.
pub(crate) fn key_target(name: &str, start: &str, id: &str) -> String {
    format!("key \"{name}\" ({start}…, {id})")
}

/// How long an idle name's attempt counter is kept (1 day, far beyond the longest delay).
const ATTEMPTS_KEPT_MS: i64 = 86_400_000;

/// The wait imposed after `failed` consecutive failed sign-ins: none for the first two, then
/// 1 s, 2 s, 4 s, … up to 5 minutes (OWASP Authentication Cheat Sheet: throttle, don't lock out).
pub fn sign_in_delay_ms(failed: i64) -> Option<i64> {
    if failed < 3 {
        return None;
    }
    let exp = u32::try_from((failed - 3).min(20)).unwrap_or(20);
    Some((1000_i64 << exp).min(300_000))
}

/// A valid Argon2id hash of a random passphrase nobody knows, to spend the same work on
/// unknown member names.
fn dummy_hash() -> &'static str {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY.get_or_init(|| {
        ApiKeySecret::generate()
            .ok()
            .and_then(|random| passphrase::hash(random.expose()).ok())
            .unwrap_or_default()
    })
}
