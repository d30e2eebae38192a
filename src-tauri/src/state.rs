//! The app's one piece of state, and the command bodies as plain async functions over it,
//! so they can be tested without a webview. The Tauri commands in `commands.rs` only
//! delegate here.

use std::sync::{Arc, Mutex, MutexGuard};

use keysmith_core::{ApiKeySecret, Registry};
use keysmith_types::{
    CopyReceipt, CreateAccountRequest, ErrorCode, GenerateKeyRequest, IpcError, KeyReveal,
    KeySummary, MemberSummary, RevealRequest, RevealedKey, RevokeKeyRequest, SessionStatus,
    UnlockRequest,
};

use crate::clipboard::{self, Clipboard};

/// The key being shown once: held from generation until Done (or the window closes).
struct PendingReveal {
    key_id: String,
    secret: ApiKeySecret,
    copied: bool,
}

/// Everything the window's commands share.
pub struct AppState {
    registry: Registry,
    /// The signed-in member's id; `None` when locked.
    session: Mutex<Option<String>>,
    reveal: Mutex<Option<PendingReveal>>,
    clipboard: Arc<Clipboard>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn no_pending_reveal(id: &str) -> IpcError {
    IpcError {
        code: ErrorCode::NotFound,
        message: format!("The key {id} is no longer on display: a key is shown only once."),
    }
}

impl AppState {
    pub fn new(registry: Registry) -> AppState {
        AppState {
            registry,
            session: Mutex::new(None),
            reveal: Mutex::new(None),
            clipboard: Arc::new(Clipboard::default()),
        }
    }

    fn signed_in(&self) -> Result<String, IpcError> {
        lock(&self.session)
            .clone()
            .ok_or_else(|| keysmith_core::Error::NotSignedIn.to_ipc())
    }

    /// Whether set-up was done and who is signed in (re-read: a removed member is signed out).
    pub async fn session_status(&self) -> Result<SessionStatus, IpcError> {
        let initialized = self.registry.is_initialized().await?;
        let current = lock(&self.session).clone();
        let signed_in = match current {
            Some(id) => match self.registry.actor(&id).await {
                Ok(m) => Some(m.summary()),
                Err(_) => {
                    self.lock();
                    None
                }
            },
            None => None,
        };
        Ok(SessionStatus {
            initialized,
            signed_in,
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
        *lock(&self.session) = Some(owner.id.clone());
        Ok(owner.summary())
    }

    pub async fn unlock(&self, req: UnlockRequest) -> Result<MemberSummary, IpcError> {
        let member = self
            .registry
            .sign_in(&req.name, req.passphrase.expose())
            .await?;
        *lock(&self.session) = Some(member.id.clone());
        Ok(member.summary())
    }

    /// Signs out and drops any key still on display.
    pub fn lock(&self) {
        *lock(&self.session) = None;
        *lock(&self.reveal) = None;
    }

    pub async fn list_keys(&self) -> Result<Vec<KeySummary>, IpcError> {
        let actor = self.signed_in()?;
        Ok(self.registry.list_keys(&actor).await?)
    }

    /// Generates a key and starts its one-time display (replacing any earlier one).
    pub async fn generate_key(&self, req: GenerateKeyRequest) -> Result<KeyReveal, IpcError> {
        let actor = self.signed_in()?;
        let generated = self.registry.generate_key(&actor, &req.name).await?;
        let reveal = KeyReveal {
            key: generated.summary.clone(),
            secret: RevealedKey::new(generated.secret.expose().to_owned()),
        };
        *lock(&self.reveal) = Some(PendingReveal {
            key_id: generated.summary.id,
            secret: generated.secret,
            copied: false,
        });
        Ok(reveal)
    }

    /// Copies the key on display to the clipboard and schedules the clipboard's clearing.
    pub fn copy_key(&self, req: RevealRequest) -> Result<CopyReceipt, IpcError> {
        self.signed_in()?;
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
        let after = clipboard::clear_after();
        let cb = Arc::clone(&self.clipboard);
        tauri::async_runtime::spawn(async move {
            tokio::time::sleep(after).await;
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
        let actor = self.signed_in()?;
        Ok(self
            .registry
            .revoke_key(&actor, &req.id, &req.confirmation)
            .await?)
    }
}
