//! Where the pepper lives: the OS keyring (Secret Service on Linux, Keychain on macOS,
//! Credential Manager on Windows) through the `keyring` crate's `Entry` (on Linux with the
//! one-session-per-process credential of `secret_service.rs`), behind a small trait so unit
//! tests can use an in-memory store. The real store is tested against a real Secret Service
//! (`tests/keyring.rs`).
//!
//! There is no fallback to a file: where no keyring answers, the error says what is missing.

use std::collections::HashMap;
use std::sync::Mutex;

use zeroize::Zeroizing;

/// The keyring "service" under which Keysmith stores its entries.
pub const KEYRING_SERVICE: &str = "keysmith";

/// Why the secret store could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretStoreError {
    /// No keyring daemon or session bus answered.
    #[error("no OS keyring is reachable ({detail}). On Linux, Keysmith needs a Secret Service such as gnome-keyring or KWallet running in your session")]
    Unavailable { detail: String },
    /// The keyring exists but is locked or refused access.
    #[error("the OS keyring is locked or refused access ({detail}). Unlock your login keyring and try again")]
    Locked { detail: String },
    /// The entry exists but does not hold what Keysmith wrote.
    #[error("the keyring entry \"{entry}\" holds unexpected data")]
    BadEntry { entry: String },
}

/// A place to keep small binary secrets by name.
pub trait SecretStore: Send + Sync {
    /// Reads the secret named `entry`; `Ok(None)` when there is none.
    fn get(&self, entry: &str) -> Result<Option<Zeroizing<Vec<u8>>>, SecretStoreError>;
    /// Writes (or replaces) the secret named `entry`.
    fn set(&self, entry: &str, secret: &[u8]) -> Result<(), SecretStoreError>;
    /// Deletes the secret named `entry`; deleting a missing entry is not an error.
    fn delete(&self, entry: &str) -> Result<(), SecretStoreError>;
}

/// The OS keyring.
#[derive(Debug, Default, Clone, Copy)]
pub struct OsKeyring;

impl OsKeyring {
    /// On Linux, an entry on the process's one Secret Service session
    /// ([`crate::secret_service`]); elsewhere the `keyring` crate's native store.
    #[cfg(target_os = "linux")]
    fn entry(name: &str) -> Result<keyring::Entry, SecretStoreError> {
        Ok(crate::secret_service::SharedSessionCredential::entry(
            KEYRING_SERVICE,
            name,
        ))
    }

    #[cfg(not(target_os = "linux"))]
    fn entry(name: &str) -> Result<keyring::Entry, SecretStoreError> {
        keyring::Entry::new(KEYRING_SERVICE, name).map_err(map_keyring_error)
    }
}

fn map_keyring_error(e: keyring::Error) -> SecretStoreError {
    match e {
        keyring::Error::NoStorageAccess(inner) => SecretStoreError::Locked {
            detail: inner.to_string(),
        },
        keyring::Error::PlatformFailure(inner) => {
            let detail = inner.to_string();
            if detail.to_ascii_lowercase().contains("locked") {
                SecretStoreError::Locked { detail }
            } else {
                SecretStoreError::Unavailable { detail }
            }
        }
        other => SecretStoreError::Unavailable {
            detail: other.to_string(),
        },
    }
}

impl SecretStore for OsKeyring {
    fn get(&self, entry: &str) -> Result<Option<Zeroizing<Vec<u8>>>, SecretStoreError> {
        match Self::entry(entry)?.get_secret() {
            Ok(bytes) => Ok(Some(Zeroizing::new(bytes))),
            Err(keyring::Error::NoEntry) => Ok(None),
            Err(keyring::Error::BadEncoding(_)) | Err(keyring::Error::Ambiguous(_)) => {
                Err(SecretStoreError::BadEntry {
                    entry: entry.to_owned(),
                })
            }
            Err(e) => Err(map_keyring_error(e)),
        }
    }

    fn set(&self, entry: &str, secret: &[u8]) -> Result<(), SecretStoreError> {
        Self::entry(entry)?
            .set_secret(secret)
            .map_err(map_keyring_error)
    }

    fn delete(&self, entry: &str) -> Result<(), SecretStoreError> {
        match Self::entry(entry)?.delete_credential() {
            Ok(()) | Err(keyring::Error::NoEntry) => Ok(()),
            Err(e) => Err(map_keyring_error(e)),
        }
    }
}

/// An in-memory store for fast unit tests. Never the only test of a keyring path.
#[derive(Debug, Default)]
pub struct MemoryStore {
    entries: Mutex<HashMap<String, Zeroizing<Vec<u8>>>>,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Zeroizing<Vec<u8>>>> {
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl SecretStore for MemoryStore {
    fn get(&self, entry: &str) -> Result<Option<Zeroizing<Vec<u8>>>, SecretStoreError> {
        Ok(self.lock().get(entry).cloned())
    }
    fn set(&self, entry: &str, secret: &[u8]) -> Result<(), SecretStoreError> {
        self.lock()
            .insert(entry.to_owned(), Zeroizing::new(secret.to_vec()));
        Ok(())
    }
    fn delete(&self, entry: &str) -> Result<(), SecretStoreError> {
        self.lock().remove(entry);
        Ok(())
    }
}
