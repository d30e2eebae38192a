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
//! When a call or the connection fails on the bus (the daemon died in the middle of it, or
//! restarted and so ended every session), the connection is dropped and the call is tried
//! again on a new one, a few times with a short pause: the bus starts the daemon again on
//! demand. Every call here is idempotent (read, replace, delete), so trying again is safe.

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

/// How many times a call is tried when the bus fails, and the pause before the second try
/// (doubled before each further one): 25 + 50 + … + 1,600 ms, 3.2 s in all, for the bus to
/// start a daemon again. Five tries (0.4 s) once ran out in tests/keyring_restart.rs, whose
/// daemon is killed every 40-200 ms.
const TRIES: u32 = 8;
const FIRST_PAUSE: std::time::Duration = std::time::Duration::from_millis(25);

/// Runs `op` on the process's Secret Service session, connecting first if needed. A bus
/// failure (while connecting or during `op`) drops the connection and tries again on a
/// fresh one, up to [`TRIES`] times in all; any other failure is returned at once.
fn with_service<T>(op: impl Fn(&SecretService) -> Result<T, Failure>) -> Result<T, KrError> {
    let mut slot = SERVICE.lock().unwrap_or_else(PoisonError::into_inner);
    let mut tries = 1;
    let mut pause = FIRST_PAUSE;
    loop {
        let connected = match slot.take() {
            Some(service) => Ok(service),
            None => SecretService::connect(EncryptionType::Dh).map_err(Failure::Service),
        };
        let outcome = connected.and_then(|service| {
            let result = op(&service);
            // On a bus failure `service` is dropped, closing its connection.
            if !result.as_ref().is_err_and(Failure::on_the_bus) {
                *slot = Some(service);
            }
            result
        });
        match outcome {
            Err(failure) if failure.on_the_bus() && tries < TRIES => {
                tracing::debug!(
                    ?failure,
                    tries,
                    "the Secret Service failed on the bus; trying again"
                );
                std::thread::sleep(pause);
                pause *= 2;
                tries += 1;
            }
            other => {
                return other.map_err(|failure| match failure {
                    Failure::Service(e) => to_keyring_error(e),
                    Failure::Ambiguous => KrError::Ambiguous(Vec::new()),
                })
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
#[derive(Debug)]
enum Failure {
    Service(SsError),
    Ambiguous,
}

impl Failure {
    /// A failure of the bus itself (the daemon died, restarted or closed the session), which
    /// a new connection may not meet.
    fn on_the_bus(&self) -> bool {
        matches!(self, Failure::Service(SsError::Dbus(_)))
    }
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
