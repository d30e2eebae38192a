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
    /// A secrets directory ([`FileStore`]) is missing, open to others, or failed a read or
    /// write.
    #[error("the secrets directory cannot be used: {detail}")]
    Directory { detail: String },
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

/// Secrets kept as files in one directory, for a team server host that has no OS keyring
/// (`keysmith serve --secrets-dir DIR`, filled by `keysmith export-server-secrets`).
///
/// The directory must belong to this user and be closed to others (mode 0700 or
/// stricter), as `~/.ssh` is; each entry is a file of mode 0600 named after it (`/` becomes
/// `.`), replaced atomically (written to a temporary file in the directory, flushed, then
/// renamed over the old one), so a crash leaves the old or the new secret, never half of one.
#[derive(Debug, Clone)]
pub struct FileStore {
    dir: std::path::PathBuf,
}

impl FileStore {
    /// Opens the store in `dir`, which must exist.
    ///
    /// # Errors
    /// [`SecretStoreError::Directory`] when `dir` is missing, not a directory, or open to
    /// its group or others (the message names the mode).
    pub fn open(dir: &std::path::Path) -> Result<FileStore, SecretStoreError> {
        let shown = dir.display();
        let meta = std::fs::metadata(dir).map_err(|e| SecretStoreError::Directory {
            detail: format!("secrets directory {shown}: {e}"),
        })?;
        if !meta.is_dir() {
            return Err(SecretStoreError::Directory {
                detail: format!("{shown} is not a directory"),
            });
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = meta.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                return Err(SecretStoreError::Directory {
                    detail: format!(
                        "secrets directory {shown} has mode {mode:o}; it must be closed to group and others (chmod 700)"
                    ),
                });
            }
        }
        Ok(FileStore {
            dir: dir.to_path_buf(),
        })
    }

    /// Creates `dir` (mode 0700; it must not exist yet) and opens the store in it.
    ///
    /// # Errors
    /// [`SecretStoreError::Directory`] when `dir` exists or cannot be created.
    pub fn create(dir: &std::path::Path) -> Result<FileStore, SecretStoreError> {
        let mut builder = std::fs::DirBuilder::new();
        #[cfg(unix)]
        {
            use std::os::unix::fs::DirBuilderExt;
            builder.mode(0o700);
        }
        builder
            .create(dir)
            .map_err(|e| SecretStoreError::Directory {
                detail: format!("cannot create secrets directory {}: {e}", dir.display()),
            })?;
        FileStore::open(dir)
    }

    /// The file that holds `entry`: its name with `/` as `.`; entries with other characters
    /// than ASCII letters, digits, `-`, `_` and `/` are refused (none of Keysmith's are).
    fn path(&self, entry: &str) -> Result<std::path::PathBuf, SecretStoreError> {
        let ok = !entry.is_empty()
            && !entry.starts_with('/')
            && entry
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '/'));
        if !ok {
            return Err(SecretStoreError::BadEntry {
                entry: entry.to_owned(),
            });
        }
        Ok(self.dir.join(entry.replace('/', ".")))
    }

    fn io_error(&self, e: &std::io::Error) -> SecretStoreError {
        SecretStoreError::Directory {
            detail: format!("secrets directory {}: {e}", self.dir.display()),
        }
    }
}

impl SecretStore for FileStore {
    fn get(&self, entry: &str) -> Result<Option<Zeroizing<Vec<u8>>>, SecretStoreError> {
        match std::fs::read(self.path(entry)?) {
            Ok(bytes) => Ok(Some(Zeroizing::new(bytes))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(self.io_error(&e)),
        }
    }

    fn set(&self, entry: &str, secret: &[u8]) -> Result<(), SecretStoreError> {
        use std::io::Write;
        let path = self.path(entry)?;
        // tempfile creates the file with mode 0600.
        let mut file = tempfile::NamedTempFile::new_in(&self.dir).map_err(|e| self.io_error(&e))?;
        file.write_all(secret)
            .and_then(|()| file.as_file().sync_all())
            .map_err(|e| self.io_error(&e))?;
        file.persist(&path).map_err(|e| self.io_error(&e.error))?;
        Ok(())
    }

    fn delete(&self, entry: &str) -> Result<(), SecretStoreError> {
        match std::fs::remove_file(self.path(entry)?) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(self.io_error(&e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_store_keeps_entries_as_private_files_and_replaces_them_whole() {
        let parent = tempfile::tempdir().unwrap();
        let dir = parent.path().join("secrets");
        let store = FileStore::create(&dir).unwrap();
        assert_eq!(store.get("pepper/abc-1").unwrap(), None);
        store.set("pepper/abc-1", b"first").unwrap();
        store.set("pepper/abc-1", b"second").unwrap();
        assert_eq!(
            store
                .get("pepper/abc-1")
                .unwrap()
                .as_deref()
                .map(Vec::as_slice),
            Some(&b"second"[..])
        );
        let names: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["pepper.abc-1"], "no temporary file is left behind");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode =
                |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode(&dir), 0o700);
            assert_eq!(mode(&dir.join("pepper.abc-1")), 0o600);
        }
        store.delete("pepper/abc-1").unwrap();
        store.delete("pepper/abc-1").unwrap();
        assert_eq!(store.get("pepper/abc-1").unwrap(), None);
        assert!(
            FileStore::create(&dir).is_err(),
            "an existing directory is not reused"
        );
    }

    #[test]
    fn a_file_store_refuses_open_directories_and_odd_entry_names() {
        let parent = tempfile::tempdir().unwrap();
        let missing = FileStore::open(&parent.path().join("none")).unwrap_err();
        assert!(matches!(missing, SecretStoreError::Directory { .. }));
        let file = parent.path().join("file");
        std::fs::write(&file, b"x").unwrap();
        assert!(FileStore::open(&file).is_err());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let open = parent.path().join("open");
            std::fs::create_dir(&open).unwrap();
            for mode in [0o755, 0o750, 0o705, 0o770, 0o701] {
                std::fs::set_permissions(&open, std::fs::Permissions::from_mode(mode)).unwrap();
                let e = FileStore::open(&open).unwrap_err().to_string();
                assert!(e.contains(&format!("{mode:o}")), "{mode:o}: {e}");
            }
            std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o700)).unwrap();
            assert!(FileStore::open(&open).is_ok());
        }
        let store = FileStore::create(&parent.path().join("s")).unwrap();
        for bad in [
            "",
            "/etc/passwd",
            "../x",
            "a/../../b",
            "a b",
            "a.b",
            "a\0b",
            "ä",
        ] {
            assert!(
                matches!(store.set(bad, b"x"), Err(SecretStoreError::BadEntry { .. })),
                "{bad:?}"
            );
            assert!(
                matches!(store.get(bad), Err(SecretStoreError::BadEntry { .. })),
                "{bad:?}"
            );
        }
    }
}
