//! Keysmith's core: API keys, members and roles, the SQLite store, the OS keyring and key
//! verification. Nothing here knows about Tauri, the UI or the command line; those are
//! shells that call [`Registry`].

pub mod audit;
pub mod clock;
pub mod data_dir;
pub mod digest;
pub mod error;
pub mod integrity;
pub mod key;
pub mod migrate;
pub mod passphrase;
pub mod permissions;
pub mod policy;
pub mod process;
pub mod rate;
pub mod registry;
pub mod replica;
pub mod scan;
pub mod scope;
#[cfg(target_os = "linux")]
mod secret_service;
pub mod secret_store;
pub mod session;
mod shm;
pub mod sources;
pub mod store;
mod team;
#[cfg(feature = "testkit")]
pub mod testkit;
pub mod usage;
pub mod validate;
pub mod verifier;
mod write;

pub use error::{Error, Result};
pub use key::ApiKeySecret;
pub use registry::{Generated, KeyLimits, Member, Registry, Verified};
pub use secret_store::{FileStore, MemoryStore, OsKeyring, SecretStore};
