//! Where Keysmith keeps its database: `--data-dir`, else `KEYSMITH_DATA_DIR`, else the OS
//! convention (Linux: `$XDG_DATA_HOME/keysmith`, usually `~/.local/share/keysmith`; macOS:
//! `~/Library/Application Support/dev.keysmith.Keysmith`; Windows: `%APPDATA%\keysmith\Keysmith\data`).

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// The environment variable that overrides the data directory.
pub const DATA_DIR_ENV: &str = "KEYSMITH_DATA_DIR";

/// Picks the data directory: the explicit flag, then `KEYSMITH_DATA_DIR`, then the OS default.
///
/// # Errors
/// [`Error::Internal`] if the OS reports no home directory and nothing overrides it.
pub fn resolve(flag: Option<PathBuf>) -> Result<PathBuf> {
    if let Some(dir) = flag {
        return Ok(dir);
    }
    if let Some(dir) = std::env::var_os(DATA_DIR_ENV).filter(|v| !v.is_empty()) {
        return Ok(PathBuf::from(dir));
    }
    directories::ProjectDirs::from("dev", "keysmith", "Keysmith")
        .map(|d| d.data_dir().to_path_buf())
        .ok_or_else(|| {
            Error::Internal(format!(
                "no home directory is known; set {DATA_DIR_ENV} or pass --data-dir"
            ))
        })
}

/// Creates `dir` if needed, readable by its owner only (0700 on Unix). A directory that
/// already exists is made 0700 when group or others may enter it (with a warning), and
/// refused when it belongs to another user: the database and its `-wal` hold the account's
/// key digests and audit log (OWASP ASVS V14: restrict file permissions).
///
/// # Errors
/// [`Error::DataDir`] if it cannot be created, belongs to someone else, or cannot be
/// restricted.
pub fn ensure(dir: &Path) -> Result<()> {
    let wrap = |source| Error::DataDir {
        path: dir.display().to_string(),
        source,
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(wrap)?;
        let meta = std::fs::metadata(dir).map_err(wrap)?;
        if meta.uid() != effective_uid() {
            return Err(wrap(std::io::Error::new(
                std::io::ErrorKind::PermissionDenied,
                "it belongs to another user; choose a directory of your own (--data-dir)",
            )));
        }
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            tracing::warn!(
                data_dir = %dir.display(),
                "the data directory had mode {mode:04o}; made it 0700 (owner only)"
            );
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(wrap)?;
        }
        Ok(())
    }
    #[cfg(not(unix))]
    {
        std::fs::create_dir_all(dir).map_err(wrap)
    }
}

/// The effective user id: the owner of `/proc/self` on Linux, else of a file this process
/// creates (std has no `geteuid`, and the workspace denies `unsafe` outside `shm.rs`).
#[cfg(unix)]
fn effective_uid() -> u32 {
    use std::os::unix::fs::MetadataExt;
    static UID: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    *UID.get_or_init(|| {
        if let Ok(m) = std::fs::metadata("/proc/self") {
            return m.uid();
        }
        tempfile::tempfile()
            .and_then(|f| f.metadata())
            .map(|m| m.uid())
            .unwrap_or(u32::MAX)
    })
}

/// The suffixes of the files SQLite keeps beside the database, and Keysmith's lock file.
const SIDE_FILES: [&str; 4] = ["", "-wal", "-shm", ".lock"];

/// Takes the exclusive lock that serialises opening and migrating the database at `db`
/// (`<db>.lock`, created 0600), creates the database file 0600 if it is missing, and returns
/// the lock: it is released when the returned file is dropped. Blocks while another
/// process holds it.
///
/// # Errors
/// [`Error::DataDir`].
pub fn lock_and_create(db: &Path) -> Result<std::fs::File> {
    let lock_path = side_file(db, ".lock");
    let wrap = |p: &Path, source| Error::DataDir {
        path: p.display().to_string(),
        source,
    };
    let lock = create_private(&lock_path).map_err(|e| wrap(&lock_path, e))?;
    lock.lock().map_err(|e| wrap(&lock_path, e))?;
    create_private(db).map_err(|e| wrap(db, e))?;
    restrict_files(db)?;
    Ok(lock)
}

/// Makes the database at `db`, its `-wal` and `-shm`, and the lock file 0600 where they exist
/// and others may read them.
///
/// # Errors
/// [`Error::DataDir`].
pub fn restrict_files(db: &Path) -> Result<()> {
    #[cfg(unix)]
    for suffix in SIDE_FILES {
        use std::os::unix::fs::PermissionsExt;
        let path = side_file(db, suffix);
        let wrap = |source| Error::DataDir {
            path: path.display().to_string(),
            source,
        };
        match std::fs::metadata(&path) {
            Ok(meta) if meta.permissions().mode() & 0o077 != 0 => {
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
                    .map_err(wrap)?;
            }
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(wrap(e)),
        }
    }
    #[cfg(not(unix))]
    let _ = (db, SIDE_FILES);
    Ok(())
}

fn side_file(db: &Path, suffix: &str) -> std::path::PathBuf {
    let mut name = db.as_os_str().to_owned();
    name.push(suffix);
    std::path::PathBuf::from(name)
}

/// Opens `path` for writing, creating it with mode 0600 when missing; an existing file is
/// opened as it is (never truncated).
fn create_private(path: &Path) -> std::io::Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options.read(true).write(true).create(true).truncate(false);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path)
}
