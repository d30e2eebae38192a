//! The core's one error type, and its mapping to the `{code, message}` shape that crosses
//! IPC and the CLI's stderr.

use keysmith_types::{ErrorCode, IpcError};

use crate::key::{KeyFormatError, RandomnessError};
use crate::secret_store::SecretStoreError;

/// Everything a core operation can refuse or fail with.
///
/// No variant carries key material: format errors describe the defect, not the input.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("Not permitted: {0}.")]
    NotPermitted(&'static str),
    #[error("Nobody is signed in.")]
    NotSignedIn,
    #[error("Your session ended (signed out, expired or unknown): sign in again.")]
    SessionExpired,
    #[error("This account was moved to the team server ({0}); this computer's copy is kept only as a record. Work on the team server (keysmith --server URL, or join it from the app).")]
    AccountMoved(String),
    #[error("Unknown member or wrong passphrase.")]
    BadCredentials,
    #[error("This Keysmith account already exists.")]
    AlreadyInitialized,
    #[error("No Keysmith account exists yet: create one first (`keysmith init --owner NAME`, or open the app).")]
    NotInitialized,
    #[error("{0}")]
    InvalidName(String),
    #[error("{0}")]
    InvalidPassphrase(String),
    #[error("Malformed API key: {0}.")]
    MalformedKey(#[from] KeyFormatError),
    #[error("No {what} has the id {id:?}.")]
    NotFound { what: &'static str, id: String },
    #[error("No member is called {0:?}.")]
    UnknownMember(String),
    #[error("That API key is not known to this account.")]
    UnknownKey,
    #[error("That API key was revoked.")]
    KeyRevoked,
    #[error("That API key has expired.")]
    KeyExpired,
    #[error("That API key is paused: it is refused until someone resumes it.")]
    KeyPaused,
    #[error("That API key is already paused.")]
    AlreadyPaused,
    #[error("That API key is not paused.")]
    NotPaused,
    #[error("{0}")]
    InvalidDuration(String),
    #[error("{0}")]
    InvalidAddress(String),
    #[error("{0}")]
    InvalidRateLimit(String),
    #[error("{0}")]
    InvalidScope(String),
    #[error("{0}")]
    ScopeBeyondRole(String),
    #[error("That API key was already rolled: roll its replacement instead.")]
    AlreadyReplaced,
    #[error("{0}.")]
    PepperFile(#[from] crate::digest::PepperFileError),
    #[error("Type REVOKE exactly (capital letters) to confirm.")]
    ConfirmationMismatch,
    #[error("That API key is already revoked.")]
    AlreadyRevoked,
    #[error("Another member is already called {0:?}.")]
    DuplicateName(String),
    #[error("Too many failed sign-ins for this member: try again in {retry_after_secs} s.")]
    TooManyAttempts { retry_after_secs: i64 },
    #[error("{0}")]
    InvalidTarget(&'static str),
    #[error("Type REMOVE exactly (capital letters) to confirm.")]
    RemoveConfirmationMismatch,
    #[error("The audit log is not intact: {0}.")]
    AuditTampered(String),
    #[error("{0}")]
    Keyring(#[from] SecretStoreError),
    #[error("The account's pepper is missing from the OS keyring (entry \"{entry}\" of service \"keysmith\"). Without it no key can be generated or verified; restore the keyring, or the keys of this account cannot be checked.")]
    PepperMissing { entry: String },
    #[error("The audit log's key is missing from the OS keyring (entry \"{entry}\" of service \"keysmith\"): the log cannot be checked or extended. Restore the keyring.")]
    AuditKeyMissing { entry: String },
    #[error("The store was changed outside Keysmith: {what}. Keysmith will not act on it. Restore the database from a backup made with Keysmith or `sqlite3 … .backup` (see the README, \"If the store was changed outside Keysmith\").")]
    StoreTampered {
        /// The row concerned (`member:<id>`, `key:<id>`), when one is.
        subject: Option<String>,
        what: String,
    },
    #[error("The pepper in the OS keyring does not belong to this database: the keyring entry was replaced, or the database comes from another machine. Keys of this account cannot be checked with it.")]
    WrongPepper,
    #[error("{0}")]
    Randomness(#[from] RandomnessError),
    #[error("The database could not be read or written.")]
    Storage(#[source] sqlx::Error),
    #[error("The database schema could not be brought up to date.")]
    Migration(#[from] sqlx::migrate::MigrateError),
    #[error("This database was updated by a newer Keysmith (it has schema version {0}, which this version does not know): use that newer version.")]
    SchemaTooNew(i64),
    #[error("The data directory {path} cannot be used: {source}")]
    DataDir {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    InvalidPath(String),
    #[error("Internal error: {0}")]
    Internal(String),
}

impl From<sqlx::Error> for Error {
    fn from(e: sqlx::Error) -> Self {
        Error::Storage(e)
    }
}

/// `Result` with the core's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// The stable code callers branch on.
    pub fn code(&self) -> ErrorCode {
        match self {
            Error::NotPermitted(_) => ErrorCode::NotPermitted,
            Error::NotSignedIn => ErrorCode::NotSignedIn,
            Error::SessionExpired => ErrorCode::SessionExpired,
            Error::AccountMoved(_) => ErrorCode::AccountMoved,
            Error::BadCredentials => ErrorCode::BadCredentials,
            Error::AlreadyInitialized => ErrorCode::AlreadyInitialized,
            Error::NotInitialized => ErrorCode::NotInitialized,
            Error::InvalidName(_) => ErrorCode::InvalidName,
            Error::InvalidPassphrase(_) => ErrorCode::InvalidPassphrase,
            Error::MalformedKey(_) => ErrorCode::MalformedKey,
            Error::NotFound { .. } | Error::UnknownMember(_) => ErrorCode::NotFound,
            Error::UnknownKey => ErrorCode::UnknownKey,
            Error::KeyRevoked => ErrorCode::KeyRevoked,
            Error::KeyExpired => ErrorCode::KeyExpired,
            Error::KeyPaused => ErrorCode::KeyPaused,
            Error::AlreadyPaused => ErrorCode::AlreadyPaused,
            Error::NotPaused => ErrorCode::NotPaused,
            Error::InvalidDuration(_) => ErrorCode::InvalidDuration,
            Error::InvalidAddress(_) => ErrorCode::InvalidAddress,
            Error::InvalidRateLimit(_) => ErrorCode::InvalidRateLimit,
            Error::InvalidScope(_) => ErrorCode::InvalidScope,
            Error::ScopeBeyondRole(_) => ErrorCode::ScopeBeyondRole,
            Error::AlreadyReplaced => ErrorCode::AlreadyReplaced,
            Error::PepperFile(_) => ErrorCode::PepperFile,
            Error::InvalidPath(_) => ErrorCode::InvalidPath,
            Error::ConfirmationMismatch => ErrorCode::ConfirmationMismatch,
            Error::AlreadyRevoked => ErrorCode::AlreadyRevoked,
            Error::DuplicateName(_) => ErrorCode::DuplicateName,
            Error::TooManyAttempts { .. } => ErrorCode::TooManyAttempts,
            Error::InvalidTarget(_) => ErrorCode::InvalidTarget,
            Error::RemoveConfirmationMismatch => ErrorCode::RemoveConfirmationMismatch,
            Error::AuditTampered(_) => ErrorCode::AuditTampered,
            Error::Keyring(_) => ErrorCode::KeyringUnavailable,
            Error::PepperMissing { .. } | Error::WrongPepper | Error::AuditKeyMissing { .. } => {
                ErrorCode::PepperMissing
            }
            Error::StoreTampered { .. } => ErrorCode::StoreTampered,
            Error::Storage(_)
            | Error::Migration(_)
            | Error::SchemaTooNew(_)
            | Error::DataDir { .. } => ErrorCode::Storage,
            Error::Randomness(_) | Error::Internal(_) => ErrorCode::Internal,
        }
    }

    /// The `{code, message}` form for IPC and the CLI. Database errors are logged in full
    /// (they hold no key material) and shown only as a plain sentence.
    pub fn to_ipc(&self) -> IpcError {
        match self {
            Error::Storage(inner) => tracing::error!(error = %inner, "database error"),
            Error::Migration(inner) => tracing::error!(error = %inner, "migration error"),
            _ => {}
        }
        IpcError {
            code: self.code(),
            message: self.to_string(),
        }
    }
}

impl From<Error> for IpcError {
    fn from(e: Error) -> Self {
        e.to_ipc()
    }
}
