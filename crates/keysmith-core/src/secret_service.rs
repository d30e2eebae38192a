//! The Secret Service (freedesktop.org Secret Service API 0.2) as a `keyring` credential,
//! with **one D-Bus connection and one encrypted session per process**.
//!
//! The `keyring` crate's own Secret Service store connects and negotiates a new
//! Diffie-Hellman session (`OpenSession`, `dh-ietf1024-sha256-aes128-cbc-pkcs7`) for every
//! read and twice for every write. A Keysmith command touches the keyring about six times
//! (pepper, audit key, the audit anchor read, written pending and settled), and
//! gnome-keyring-daemon aborts when a session negotiation races a client going away
//! (gnome-keyring issues 190 and 194, Debian bug 1147303: `aes_negotiate: assertion
//! 'session' failed`). Negotiating once per process, under one lock, makes that window
//! one per process instead of several per command, and halves the round trips.
//!
//! Items keep the attributes the `keyring` crate gives them (`service`, `username`,
//! `target` = `default`), so entries written by earlier Keysmith versions are found.
//! When a call fails on the bus (the daemon restarted, or the session was closed), the
//! connection is dropped and the call is tried once more on a new one.

use std::any::Any;
use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use dbus_secret_service::{EncryptionType, Error as SsError, Item, SecretService};
use keyring::credential::CredentialApi;
use keyring::Error as KrError;

/// The `target` attribute the `keyring` crate writes for the default collection.
const TARGET: &str = "default";

/// The process's connection and session, made at first use.
static SERVICE: Mutex<Option<SecretService>> = Mutex::new(None);

/// Runs `op` on the process's Secret Service session, connecting first if needed. A bus
/// failure drops the connection and retries once on a fresh one (the daemon may have
/// been restarted, which ends every session it had).
fn with_service<T>(op: impl Fn(&SecretService) -> Result<T, Failure>) -> Result<T, KrError> {
    let mut slot = SERVICE.lock().unwrap_or_else(PoisonError::into_inner);
    let mut retried = false;
    loop {
        let service = match slot.take() {
            Some(s) => s,
            None => SecretService::connect(EncryptionType::Dh).map_err(to_keyring_error)?,
        };
        match op(&service) {
            Err(Failure::Service(SsError::Dbus(_))) if !retried => {
                // Dropping `service` closes its connection; the next turn opens a new one.
                retried = true;
            }
            result => {
                *slot = Some(service);
                return result.map_err(|failure| match failure {
                    Failure::Service(e) => to_keyring_error(e),
                    Failure::Ambiguous => KrError::Ambiguous(Vec::new()),
                });
            }
        }
    }
}

fn to_keyring_error(e: SsError) -> KrError {
    match e {
        SsError::Locked | SsError::Prompt => KrError::NoStorageAccess(Box::new(e)),
        other => KrError::PlatformFailure(Box::new(other)),
    }
}

/// One keyring entry (`service`, `user`) in the default collection.
#[derive(Debug, Clone)]
pub(crate) struct SharedSessionCredential {
    service: String,
    user: String,
}

impl SharedSessionCredential {
    pub(crate) fn entry(service: &str, user: &str) -> keyring::Entry {
        keyring::Entry::new_with_credential(Box::new(SharedSessionCredential {
            service: service.to_owned(),
            user: user.to_owned(),
        }))
    }

    fn search_attributes(&self) -> HashMap<&str, &str> {
        HashMap::from([
            ("service", self.service.as_str()),
            ("username", self.user.as_str()),
            ("target", TARGET),
        ])
    }

    /// The matching items, unlocked (which may prompt the person to unlock the keyring).
    /// More than one match is an error: which one holds the secret would be a guess.
    fn matching<'s>(&self, service: &'s SecretService) -> Result<Option<Item<'s>>, Failure> {
        let found = service.search_items(self.search_attributes())?;
        let mut all = found.unlocked.into_iter().chain(found.locked);
        let first = all.next();
        if all.next().is_some() {
            return Err(Failure::Ambiguous);
        }
        if let Some(item) = &first {
            item.ensure_unlocked()?;
        }
        Ok(first)
    }
}

/// A Secret Service error, or more than one item where one was expected.
enum Failure {
    Service(SsError),
    Ambiguous,
}

impl From<SsError> for Failure {
    fn from(e: SsError) -> Self {
        Failure::Service(e)
    }
}

impl CredentialApi for SharedSessionCredential {
    fn set_secret(&self, secret: &[u8]) -> keyring::Result<()> {
        with_service(|service| {
            match self.matching(service)? {
                Some(item) => item.set_secret(secret, "text/plain")?,
                None => {
                    let collection = service.get_default_collection()?;
                    collection.ensure_unlocked()?;
                    let label = format!("Keysmith: {}", self.user);
                    let mut attributes = self.search_attributes();
                    attributes.insert("application", "keysmith");
                    collection.create_item(&label, attributes, secret, true, "text/plain")?;
                }
            }
            Ok(())
        })
    }

    fn get_secret(&self) -> keyring::Result<Vec<u8>> {
        with_service(|service| match self.matching(service)? {
            Some(item) => Ok(Some(item.get_secret()?)),
            None => Ok(None),
        })?
        .ok_or(KrError::NoEntry)
    }

    fn delete_credential(&self) -> keyring::Result<()> {
        let deleted = with_service(|service| match self.matching(service)? {
            Some(item) => {
                item.delete()?;
                Ok(true)
            }
            None => Ok(false),
        })?;
        if deleted {
            Ok(())
        } else {
            Err(KrError::NoEntry)
        }
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}
