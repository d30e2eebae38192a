//! The app's one piece of state, and the command bodies as plain async functions over it,
//! so they can be tested without a webview. The Tauri commands in `commands.rs` only
//! delegate here.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use keysmith_core::{ApiKeySecret, Error, Member, Registry};
use keysmith_types::{
    AddMemberRequest, AuditFilter, AuditReport, ChangePassphraseRequest, ChangeRoleRequest,
    CopyReceipt, CreateAccountRequest, ErrorCode, GenerateKeyRequest, IpcError, KeyReveal,
    KeySummary, MemberListing, MemberRequest, MemberSummary, RemoveMemberRequest, RevealRequest,
    RevokeKeyRequest, RollKeyRequest, SessionStatus, UnlockRequest,
};

use crate::clipboard::{self, Clipboard};

/// The key being shown once: held from generation until Done (or the window closes).
struct PendingReveal {
    key_id: String,
    secret: ApiKeySecret,
    copied: bool,
}

struct Session {
    member_id: String,
    last_activity: Instant,
}

/// Everything the window's commands share.
pub struct AppState {
    registry: Registry,
    /// The signed-in member; `None` when locked.
    session: Mutex<Option<Session>>,
    reveal: Mutex<Option<PendingReveal>>,
    clipboard: Arc<Clipboard>,
    /// SHA-256 of the last key copied, until the clipboard is cleared of it: locking clears
    /// it at once rather than when its timer runs out.
    copied: Arc<Mutex<Option<[u8; 32]>>>,
    idle_limit: Duration,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Seconds from the UI as milliseconds, refusing what does not fit.
fn secs_to_ms(secs: i64) -> Result<i64, IpcError> {
    Ok(keysmith_core::validate::secs_to_ms(secs)?)
}

fn no_pending_reveal(id: &str) -> IpcError {
    IpcError {
        code: ErrorCode::NotFound,
        message: format!("The key {id} is no longer on display: a key is shown only once."),
    }
}

/// The idle time after which the app locks: `KEYSMITH_IDLE_LOCK_SECS`, default 5 minutes.
pub fn idle_limit_from_env() -> Duration {
    let secs = std::env::var("KEYSMITH_IDLE_LOCK_SECS")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .filter(|s| (10..=86_400).contains(s))
        .unwrap_or(300);
    Duration::from_secs(secs)
}

impl AppState {
    pub fn new(registry: Registry) -> AppState {
        AppState::with_idle_limit(registry, idle_limit_from_env())
    }

    pub fn with_idle_limit(registry: Registry, idle_limit: Duration) -> AppState {
        AppState {
            registry,
            session: Mutex::new(None),
            reveal: Mutex::new(None),
            clipboard: Arc::new(Clipboard::default()),
            copied: Arc::new(Mutex::new(None)),
            idle_limit,
        }
    }

    /// The signed-in member's id, if the session has not gone idle; counts as activity.
    fn session_member(&self) -> Result<String, IpcError> {
        let mut guard = lock(&self.session);
        let expired = guard
            .as_ref()
            .is_some_and(|s| s.last_activity.elapsed() > self.idle_limit);
        if expired {
            *guard = None;
            drop(guard);
            *lock(&self.reveal) = None;
            return Err(IpcError {
                code: ErrorCode::NotSignedIn,
                message: format!(
                    "Keysmith locked itself after {} minutes without activity.",
                    self.idle_limit.as_secs() / 60
                ),
            });
        }
        match guard.as_mut() {
            Some(s) => {
                s.last_activity = Instant::now();
                Ok(s.member_id.clone())
            }
            None => Err(Error::NotSignedIn.to_ipc()),
        }
    }

    /// The signed-in member as they are now; refuses everything until an initial
    /// passphrase is changed.
    async fn signed_in(&self) -> Result<Member, IpcError> {
        let id = self.session_member()?;
        let member = match self.registry.actor(&id).await {
            Ok(m) => m,
            Err(e) => {
                self.lock();
                return Err(e.to_ipc());
            }
        };
        if member.must_change_passphrase {
            return Err(IpcError {
                code: ErrorCode::PassphraseChangeRequired,
                message: "Change your initial passphrase first.".into(),
            });
        }
        Ok(member)
    }

    fn start_session(&self, member_id: &str) {
        *lock(&self.session) = Some(Session {
            member_id: member_id.to_owned(),
            last_activity: Instant::now(),
        });
    }

    /// Whether set-up was done and who is signed in (re-read: a removed member is signed out).
    pub async fn session_status(&self) -> Result<SessionStatus, IpcError> {
        let initialized = self.registry.is_initialized().await?;
        let member = match self.session_member() {
            Ok(id) => match self.registry.actor(&id).await {
                Ok(m) => Some(m),
                Err(_) => {
                    self.lock();
                    None
                }
            },
            Err(_) => None,
        };
        Ok(SessionStatus {
            initialized,
            must_change_passphrase: member.as_ref().is_some_and(|m| m.must_change_passphrase),
            signed_in: member.map(|m| m.summary()),
            idle_lock_secs: self.idle_limit.as_secs(),
        })
    }

    /// First run: creates the account and signs its Owner in.
    pub async fn create_account(
        &self,
        req: CreateAccountRequest,
    ) -> Result<MemberSummary, IpcError> {
        let owner = self
            .registry
            .create_account(&req.owner_name, req.passphrase.expose())
            .await?;
        self.start_session(&owner.id);
        Ok(owner.summary())
    }

    pub async fn unlock(&self, req: UnlockRequest) -> Result<MemberSummary, IpcError> {
        let member = self
            .registry
            .sign_in(&req.name, req.passphrase.expose())
            .await?;
        self.start_session(&member.id);
        Ok(member.summary())
    }

    /// Signs out and drops everything the session held: the member, any key on display, and
    /// a copied key still on the clipboard (as KeePassXC clears it on lock).
    pub fn lock(&self) {
        *lock(&self.session) = None;
        *lock(&self.reveal) = None;
        if let Some(fingerprint) = lock(&self.copied).take() {
            match self.clipboard.clear_if_holds(&fingerprint) {
                Ok(true) => tracing::info!("clipboard cleared on lock"),
                Ok(false) => {}
                Err(e) => tracing::warn!(error = %e, "could not clear the clipboard"),
            }
        }
    }

    pub async fn change_passphrase(&self, req: ChangePassphraseRequest) -> Result<(), IpcError> {
        let id = self.session_member()?;
        Ok(self
            .registry
            .change_passphrase(&id, req.current.expose(), req.new.expose())
            .await?)
    }

    pub async fn list_keys(&self) -> Result<Vec<KeySummary>, IpcError> {
        let actor = self.signed_in().await?;
        Ok(self.registry.list_keys(&actor.id).await?)
    }

    /// Generates a key and starts its one-time display (replacing any earlier one).
    pub async fn generate_key(&self, req: GenerateKeyRequest) -> Result<KeyReveal, IpcError> {
        let actor = self.signed_in().await?;
        let expires_in_ms = req.expires_in_secs.map(secs_to_ms).transpose()?;
        let generated = self
            .registry
            .generate_key_expiring(&actor.id, &req.name, expires_in_ms)
            .await?;
        Ok(self.start_reveal(generated))
    }

    /// Rolls a key: its replacement starts its one-time display; the old key keeps working
    /// for the grace period.
    pub async fn roll_key(&self, req: RollKeyRequest) -> Result<KeyReveal, IpcError> {
        let actor = self.signed_in().await?;
        let grace_ms = secs_to_ms(req.grace_secs)?;
        let generated = self.registry.roll_key(&actor.id, &req.id, grace_ms).await?;
        Ok(self.start_reveal(generated))
    }

    fn start_reveal(&self, generated: keysmith_core::Generated) -> KeyReveal {
        let reveal = generated.reveal();
        *lock(&self.reveal) = Some(PendingReveal {
            key_id: generated.summary.id,
            secret: generated.secret,
            copied: false,
        });
        reveal
    }

    /// Copies the key on display to the clipboard, audits it, and schedules the clearing.
    pub async fn copy_key(&self, req: RevealRequest) -> Result<CopyReceipt, IpcError> {
        let actor = self.signed_in().await?;
        let fingerprint = {
            let mut guard = lock(&self.reveal);
            let pending = guard
                .as_mut()
                .filter(|p| p.key_id == req.id)
                .ok_or_else(|| no_pending_reveal(&req.id))?;
            let fp = self
                .clipboard
                .copy_secret(pending.secret.expose())
                .map_err(|e| IpcError {
                    code: ErrorCode::Clipboard,
                    message: e.to_string(),
                })?;
            pending.copied = true;
            fp
        };
        *lock(&self.copied) = Some(fingerprint);
        self.registry.record_copy(&actor.id, &req.id).await?;
        let after = clipboard::clear_after();
        let cb = Arc::clone(&self.clipboard);
        let copied = Arc::clone(&self.copied);
        tauri::async_runtime::spawn(async move {
            tokio::time::sleep(after).await;
            {
                let mut last = lock(&copied);
                if *last == Some(fingerprint) {
                    *last = None;
                }
            }
            match cb.clear_if_holds(&fingerprint) {
                Ok(true) => tracing::info!("clipboard cleared"),
                Ok(false) => {}
                Err(e) => tracing::warn!(error = %e, "could not clear the clipboard"),
            }
        });
        Ok(CopyReceipt {
            clear_after_secs: u32::try_from(after.as_secs()).unwrap_or(u32::MAX),
        })
    }

    /// Ends the one-time display: the key is dropped (and zeroized) for good.
    pub fn finish_reveal(&self, req: RevealRequest) -> Result<(), IpcError> {
        let mut guard = lock(&self.reveal);
        match guard.as_ref() {
            Some(p) if p.key_id == req.id => {
                *guard = None;
                Ok(())
            }
            _ => Err(no_pending_reveal(&req.id)),
        }
    }

    /// Whether a key is on display that was not copied yet (closing the window asks first).
    pub fn reveal_uncopied(&self) -> bool {
        lock(&self.reveal).as_ref().is_some_and(|p| !p.copied)
    }

    pub async fn revoke_key(&self, req: RevokeKeyRequest) -> Result<KeySummary, IpcError> {
        let actor = self.signed_in().await?;
        Ok(self
            .registry
            .revoke_key(&actor.id, &req.id, &req.confirmation)
            .await?)
    }

    pub async fn list_members(&self) -> Result<Vec<MemberListing>, IpcError> {
        let actor = self.signed_in().await?;
        Ok(self.registry.list_members(&actor.id).await?)
    }

    pub async fn add_member(&self, req: AddMemberRequest) -> Result<MemberSummary, IpcError> {
        let actor = self.signed_in().await?;
        let m = self
            .registry
            .add_member(
                &actor.id,
                &req.name,
                req.role,
                req.initial_passphrase.expose(),
            )
            .await?;
        Ok(m.summary())
    }

    pub async fn change_role(&self, req: ChangeRoleRequest) -> Result<MemberSummary, IpcError> {
        let actor = self.signed_in().await?;
        let m = self
            .registry
            .change_role(&actor.id, &req.member_id, req.role)
            .await?;
        Ok(m.summary())
    }

    pub async fn removal_preview(&self, req: MemberRequest) -> Result<Vec<KeySummary>, IpcError> {
        let actor = self.signed_in().await?;
        Ok(self
            .registry
            .removal_preview(&actor.id, &req.member_id)
            .await?)
    }

    pub async fn remove_member(
        &self,
        req: RemoveMemberRequest,
    ) -> Result<Vec<KeySummary>, IpcError> {
        let actor = self.signed_in().await?;
        Ok(self
            .registry
            .remove_member(&actor.id, &req.member_id, &req.confirmation)
            .await?)
    }

    pub async fn transfer_ownership(&self, req: MemberRequest) -> Result<MemberSummary, IpcError> {
        let actor = self.signed_in().await?;
        let m = self
            .registry
            .transfer_ownership(&actor.id, &req.member_id)
            .await?;
        Ok(m.summary())
    }

    pub async fn audit_report(&self, filter: AuditFilter) -> Result<AuditReport, IpcError> {
        let actor = self.signed_in().await?;
        Ok(self.registry.audit_report(&actor.id, &filter).await?)
    }
}

#[cfg(test)]
mod tests {
    //! The command bodies as a direct IPC call reaches them (without a webview).
    use std::sync::Arc;

    use keysmith_core::{store, testkit, MemoryStore, Registry};
    use keysmith_types::{
        AddMemberRequest, AuditFilter, ChangePassphraseRequest, ChangeRoleRequest,
        CreateAccountRequest, ErrorCode, GenerateKeyRequest, MemberRequest, Passphrase,
        RemoveMemberRequest, RevealRequest, RevokeKeyRequest, Role, RollKeyRequest, UnlockRequest,
    };

    use super::AppState;

    const PASS: &str = "correct horse battery";

    async fn state() -> (tempfile::TempDir, AppState) {
        let dir = tempfile::tempdir().unwrap();
        let pool = store::open(&dir.path().join(store::DB_FILE)).await.unwrap();
        let registry = Registry::with_parts(
            pool,
            Arc::new(MemoryStore::new()),
            Arc::new(keysmith_core::clock::SystemClock),
        );
        (dir, AppState::new(registry))
    }

    /// A state whose account exists, with its Owner (Olive) signed in.
    async fn signed_in_owner() -> (tempfile::TempDir, AppState) {
        let (dir, s) = state().await;
        s.create_account(CreateAccountRequest {
            owner_name: "Olive".into(),
            passphrase: Passphrase::new(PASS),
        })
        .await
        .unwrap();
        (dir, s)
    }

    #[tokio::test]
    async fn commands_refuse_until_someone_signs_in() {
        let (_dir, s) = state().await;
        let status = s.session_status().await.unwrap();
        assert!(!status.initialized && status.signed_in.is_none());
        assert_eq!(
            s.list_keys().await.unwrap_err().code,
            ErrorCode::NotSignedIn
        );
        let req = GenerateKeyRequest {
            name: "x".into(),
            expires_in_secs: None,
        };
        assert_eq!(
            s.generate_key(req).await.unwrap_err().code,
            ErrorCode::NotSignedIn
        );

        let owner = s
            .create_account(CreateAccountRequest {
                owner_name: "Olive".into(),
                passphrase: Passphrase::new(PASS),
            })
            .await
            .unwrap();
        assert_eq!(s.session_status().await.unwrap().signed_in, Some(owner));
        s.lock();
        assert_eq!(
            s.list_keys().await.unwrap_err().code,
            ErrorCode::NotSignedIn
        );
        let wrong = UnlockRequest {
            name: "Olive".into(),
            passphrase: Passphrase::new("not it at all"),
        };
        assert_eq!(
            s.unlock(wrong).await.unwrap_err().code,
            ErrorCode::BadCredentials
        );
        let right = UnlockRequest {
            name: "olive".into(),
            passphrase: Passphrase::new(PASS),
        };
        assert_eq!(s.unlock(right).await.unwrap().name, "Olive");
    }

    #[tokio::test]
    async fn the_key_is_held_only_until_done_or_lock() {
        let (_dir, s) = signed_in_owner().await;
        let reveal = s
            .generate_key(GenerateKeyRequest {
                name: "CRM".into(),
                expires_in_secs: None,
            })
            .await
            .unwrap();
        let id = reveal.key.id.clone();
        assert!(s.reveal_uncopied());
        s.finish_reveal(RevealRequest { id: id.clone() }).unwrap();
        assert!(!s.reveal_uncopied());
        let again = s.finish_reveal(RevealRequest { id: id.clone() });
        assert_eq!(again.unwrap_err().code, ErrorCode::NotFound);
        let copy = s.copy_key(RevealRequest { id: id.clone() }).await;
        assert_eq!(copy.unwrap_err().code, ErrorCode::NotFound);

        let second = s
            .generate_key(GenerateKeyRequest {
                name: "ERP".into(),
                expires_in_secs: None,
            })
            .await
            .unwrap();
        s.lock();
        assert!(!s.reveal_uncopied());
        let gone = s.finish_reveal(RevealRequest { id: second.key.id });
        assert_eq!(gone.unwrap_err().code, ErrorCode::NotFound);
    }

    /// Lock clears a copied key from the clipboard at once, not when its 30 s run out; and
    /// leaves alone what the person copied since. Uses the real clipboard (X11 on Xvfb).
    #[tokio::test]
    async fn locking_clears_a_copied_key_from_the_clipboard() {
        assert!(
            std::env::var_os("DISPLAY").is_some(),
            "no DISPLAY: run through scripts/with-session.sh --display"
        );
        let mut other = arboard::Clipboard::new().unwrap();
        let (_dir, s) = signed_in_owner().await;
        for copied_since in [false, true] {
            s.unlock(UnlockRequest {
                name: "Olive".into(),
                passphrase: Passphrase::new(PASS),
            })
            .await
            .unwrap();
            let reveal = s
                .generate_key(GenerateKeyRequest {
                    name: format!("CRM {copied_since}"),
                    expires_in_secs: None,
                })
                .await
                .unwrap();
            let key = reveal.secret.expose().to_owned();
            s.copy_key(RevealRequest { id: reveal.key.id })
                .await
                .unwrap();
            assert_eq!(other.get_text().ok().as_deref(), Some(key.as_str()));
            if copied_since {
                other.set_text("a note of the person's own").unwrap();
            }
            s.lock();
            let held = other.get_text().ok();
            if copied_since {
                assert_eq!(held.as_deref(), Some("a note of the person's own"));
            } else {
                assert!(
                    held.as_deref().is_none_or(str::is_empty),
                    "the clipboard still holds {} characters after the lock",
                    held.map_or(0, |h| h.len())
                );
            }
        }
    }

    #[tokio::test]
    async fn revoke_checks_the_confirmation_again() {
        let (_dir, s) = signed_in_owner().await;
        let reveal = s
            .generate_key(GenerateKeyRequest {
                name: "CRM".into(),
                expires_in_secs: None,
            })
            .await
            .unwrap();
        let wrong = RevokeKeyRequest {
            id: reveal.key.id.clone(),
            confirmation: "revoke".into(),
        };
        assert_eq!(
            s.revoke_key(wrong).await.unwrap_err().code,
            ErrorCode::ConfirmationMismatch
        );
        assert_eq!(s.list_keys().await.unwrap()[0].revoked_at, None);
        let right = RevokeKeyRequest {
            id: reveal.key.id.clone(),
            confirmation: "REVOKE".into(),
        };
        assert!(s.revoke_key(right).await.unwrap().revoked_at.is_some());
    }

    struct Ipc(AppState);

    fn code<T>(r: Result<T, keysmith_types::IpcError>) -> Result<(), ErrorCode> {
        r.map(|_| ()).map_err(|e| e.code)
    }

    impl testkit::Surface for Ipc {
        async fn act_as(&self, actor: &testkit::Person) {
            self.0
                .unlock(UnlockRequest {
                    name: actor.name.clone(),
                    passphrase: Passphrase::new(testkit::PASSPHRASE),
                })
                .await
                .unwrap();
        }
        async fn generate_key(&self, name: &str) -> Result<(), ErrorCode> {
            code(
                self.0
                    .generate_key(GenerateKeyRequest {
                        name: name.into(),
                        expires_in_secs: None,
                    })
                    .await,
            )
        }
        async fn list_keys(&self) -> Result<Vec<keysmith_types::KeySummary>, ErrorCode> {
            self.0.list_keys().await.map_err(|e| e.code)
        }
        async fn revoke_key(&self, key_id: &str) -> Result<(), ErrorCode> {
            code(
                self.0
                    .revoke_key(RevokeKeyRequest {
                        id: key_id.into(),
                        confirmation: "REVOKE".into(),
                    })
                    .await,
            )
        }
        async fn roll_key(&self, key_id: &str) -> Result<(), ErrorCode> {
            code(
                self.0
                    .roll_key(RollKeyRequest {
                        id: key_id.into(),
                        grace_secs: 3600,
                    })
                    .await,
            )
        }
        async fn add_member(&self, name: &str, role: Role) -> Result<(), ErrorCode> {
            code(
                self.0
                    .add_member(AddMemberRequest {
                        name: name.into(),
                        role,
                        initial_passphrase: Passphrase::new(testkit::PASSPHRASE),
                    })
                    .await,
            )
        }
        async fn change_role(&self, member_id: &str, role: Role) -> Result<(), ErrorCode> {
            code(
                self.0
                    .change_role(ChangeRoleRequest {
                        member_id: member_id.into(),
                        role,
                    })
                    .await,
            )
        }
        async fn remove_member(&self, member_id: &str) -> Result<(), ErrorCode> {
            code(
                self.0
                    .remove_member(RemoveMemberRequest {
                        member_id: member_id.into(),
                        confirmation: "REMOVE".into(),
                    })
                    .await,
            )
        }
        async fn transfer_ownership(&self, member_id: &str) -> Result<(), ErrorCode> {
            code(
                self.0
                    .transfer_ownership(MemberRequest {
                        member_id: member_id.into(),
                    })
                    .await,
            )
        }
        async fn list_members(&self) -> Result<(), ErrorCode> {
            code(self.0.list_members().await)
        }
        async fn audit(&self) -> Result<(), ErrorCode> {
            code(self.0.audit_report(AuditFilter::default()).await)
        }
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn every_cell_of_the_role_table_through_the_command_layer() {
        let checked = testkit::walk_role_table(|registry| Ipc(AppState::new(registry))).await;
        assert!(checked > 150, "only {checked} cells");
    }

    #[tokio::test]
    async fn an_idle_session_locks_itself() {
        let (_dir, s) = state().await;
        let s = AppState::with_idle_limit(s.registry, std::time::Duration::from_millis(200));
        s.create_account(CreateAccountRequest {
            owner_name: "Olive".into(),
            passphrase: Passphrase::new(PASS),
        })
        .await
        .unwrap();
        s.list_keys().await.unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        let err = s.list_keys().await.unwrap_err();
        assert_eq!(err.code, ErrorCode::NotSignedIn);
        assert!(err.message.contains("without activity"));
        assert!(s.session_status().await.unwrap().signed_in.is_none());
    }

    #[tokio::test]
    async fn a_new_member_must_change_the_initial_passphrase_first() {
        let (_dir, s) = signed_in_owner().await;
        s.add_member(AddMemberRequest {
            name: "Max".into(),
            role: Role::Manager,
            initial_passphrase: Passphrase::new("initial passphrase"),
        })
        .await
        .unwrap();
        s.unlock(UnlockRequest {
            name: "Max".into(),
            passphrase: Passphrase::new("initial passphrase"),
        })
        .await
        .unwrap();
        assert!(s.session_status().await.unwrap().must_change_passphrase);
        let err = s.list_keys().await.unwrap_err();
        assert_eq!(err.code, ErrorCode::PassphraseChangeRequired);
        s.change_passphrase(ChangePassphraseRequest {
            current: Passphrase::new("initial passphrase"),
            new: Passphrase::new("my own passphrase"),
        })
        .await
        .unwrap();
        assert!(s.list_keys().await.unwrap().is_empty());
    }
}
