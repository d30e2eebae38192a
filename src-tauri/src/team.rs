//! "Join a team server": which server this app is joined to, kept in the data directory as
//! `team-server.json` (its URL, how to trust it, and the name of the keyring entry that
//! holds the session token while a member is signed in). No secret is in the file.

use std::path::{Path, PathBuf};

use keysmith_client::{ConnectOptions, Remote};
use keysmith_types::{ErrorCode, IpcError};
use serde::{Deserialize, Serialize};

/// The file's name in the data directory.
pub const FILE: &str = "team-server.json";

/// The team server this app is joined to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TeamConfig {
    /// The server's URL, as `keysmith_client::check_url` returns it.
    pub url: String,
    #[serde(default)]
    pub allow_plain_http: bool,
    /// A PEM file with the team's own certificate authority.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// The keyring entry holding the session token while a member is signed in: one per
    /// data directory, so two app instances on one computer keep separate sessions.
    pub session_entry: String,
}

fn failed(message: String) -> IpcError {
    IpcError {
        code: ErrorCode::ServerUnavailable,
        message,
    }
}

impl TeamConfig {
    /// A new configuration for `url`, with a fresh keyring entry name.
    pub fn new(url: String, allow_plain_http: bool, ca_file: Option<PathBuf>) -> TeamConfig {
        TeamConfig {
            url,
            allow_plain_http,
            ca_file,
            session_entry: format!("team-session-{}", uuid::Uuid::now_v7()),
        }
    }

    /// The client for the server (no request yet).
    ///
    /// # Errors
    /// [`ErrorCode::ServerUnavailable`]: a bad URL, an unreadable CA file.
    pub fn remote(&self) -> Result<Remote, IpcError> {
        let ca_pem = match &self.ca_file {
            Some(path) => Some(std::fs::read(path).map_err(|e| {
                failed(format!(
                    "The certificate authority file {} cannot be read: {e}.",
                    path.display()
                ))
            })?),
            None => None,
        };
        Remote::new(
            &self.url,
            &ConnectOptions {
                allow_plain_http: self.allow_plain_http,
                ca_pem,
            },
        )
    }

    /// Reads `dir/team-server.json`; `Ok(None)` when the app is not joined to a server.
    ///
    /// # Errors
    /// An unreadable or malformed file, as [`ErrorCode::Internal`] naming it.
    pub fn load(dir: &Path) -> Result<Option<TeamConfig>, IpcError> {
        let path = dir.join(FILE);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(internal(format!("{} cannot be read: {e}", path.display()))),
        };
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| internal(format!("{} is not readable: {e}", path.display())))
    }

    /// Writes `dir/team-server.json` (through a temporary file, so a crash leaves the old
    /// one or the new one).
    ///
    /// # Errors
    /// [`ErrorCode::Internal`] naming the file.
    pub fn save(&self, dir: &Path) -> Result<(), IpcError> {
        let path = dir.join(FILE);
        let text = serde_json::to_vec_pretty(self).map_err(|e| internal(e.to_string()))?;
        let tmp = dir.join(format!("{FILE}.tmp"));
        std::fs::write(&tmp, text)
            .and_then(|()| std::fs::rename(&tmp, &path))
            .map_err(|e| internal(format!("{} cannot be written: {e}", path.display())))
    }

    /// Deletes `dir/team-server.json` (a missing file is fine).
    ///
    /// # Errors
    /// [`ErrorCode::Internal`] naming the file.
    pub fn remove(dir: &Path) -> Result<(), IpcError> {
        let path = dir.join(FILE);
        match std::fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(internal(format!(
                "{} cannot be deleted: {e}",
                path.display()
            ))),
        }
    }
}

fn internal(message: String) -> IpcError {
    IpcError {
        code: ErrorCode::Internal,
        message,
    }
}
