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

/// Creates `dir` if needed, readable by its owner only (0700 on Unix).
///
/// # Errors
/// [`Error::DataDir`] if it cannot be created.
pub fn ensure(dir: &Path) -> Result<()> {
    let wrap = |source| Error::DataDir {
        path: dir.display().to_string(),
        source,
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(wrap)
    }
    #[cfg(not(unix))]
    {
        std::fs::create_dir_all(dir).map_err(wrap)
    }
}
