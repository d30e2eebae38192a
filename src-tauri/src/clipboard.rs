//! "Copy key to clipboard", done by the backend: the key is marked so clipboard managers
//! skip it where the platform allows (on Linux the `x-kde-passwordManagerHint` target that
//! KeePassXC also sets), and cleared after a timeout if the clipboard still holds it.
//!
//! Only a SHA-256 of the copied text is kept for that later check, never the key.

use std::sync::Mutex;
use std::time::Duration;

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Seconds before the clipboard is cleared; `KEYSMITH_CLIPBOARD_CLEAR_SECS` overrides it
/// (the end-to-end test uses a short one).
pub fn clear_after() -> Duration {
    let secs = std::env::var("KEYSMITH_CLIPBOARD_CLEAR_SECS")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .filter(|s| (1..=600).contains(s))
        .unwrap_or(30);
    Duration::from_secs(secs)
}

/// The system clipboard, opened on first use and kept open (on X11 the owner must stay alive
/// to serve what it copied).
#[derive(Default)]
pub struct Clipboard {
    inner: Mutex<Option<arboard::Clipboard>>,
}

/// What went wrong with the clipboard (the message never holds the copied text).
#[derive(Debug, thiserror::Error)]
#[error("The clipboard cannot be used: {0}")]
pub struct ClipboardError(String);

impl Clipboard {
    fn with<T>(
        &self,
        f: impl FnOnce(&mut arboard::Clipboard) -> Result<T, arboard::Error>,
    ) -> Result<T, ClipboardError> {
        let mut guard = self
            .inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if guard.is_none() {
            *guard = Some(arboard::Clipboard::new().map_err(|e| ClipboardError(e.to_string()))?);
        }
        match guard.as_mut() {
            Some(cb) => f(cb).map_err(|e| ClipboardError(e.to_string())),
            None => Err(ClipboardError("not available".into())),
        }
    }

    /// Copies `text`, excluded from clipboard history where supported. Returns the SHA-256
    /// of `text`, to recognise it later without keeping it.
    pub fn copy_secret(&self, text: &str) -> Result<[u8; 32], ClipboardError> {
        self.with(|cb| {
            let set = cb.set();
            #[cfg(all(unix, not(any(target_os = "macos", target_os = "android"))))]
            let set = {
                use arboard::SetExtLinux;
                set.exclude_from_history()
            };
            #[cfg(target_os = "windows")]
            let set = {
                use arboard::SetExtWindows;
                set.exclude_from_history().exclude_from_cloud()
            };
            set.text(text)
        })?;
        Ok(Sha256::digest(text.as_bytes()).into())
    }

    /// Clears the clipboard if it still holds the text whose SHA-256 is `fingerprint`.
    /// Returns whether it cleared.
    pub fn clear_if_holds(&self, fingerprint: &[u8; 32]) -> Result<bool, ClipboardError> {
        self.with(|cb| {
            let current = match cb.get_text() {
                Ok(t) => zeroize::Zeroizing::new(t),
                Err(arboard::Error::ContentNotAvailable) => return Ok(false),
                Err(e) => return Err(e),
            };
            let held: [u8; 32] = Sha256::digest(current.as_bytes()).into();
            if bool::from(held.ct_eq(fingerprint)) {
                cb.clear()?;
                Ok(true)
            } else {
                Ok(false)
            }
        })
    }
}
