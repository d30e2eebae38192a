//! The OS keyring path against a real Secret Service (gnome-keyring in a private D-Bus
//! session, started by scripts/with-session.sh): the pepper is created there on first run,
//! read back by a second process, and no key ever reaches it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use keysmith_core::{OsKeyring, Registry, SecretStore};
use keysmith_tests::{keyring_dump, require_secret_service, PASSPHRASE};
use keysmith_types::ErrorCode;

#[test]
fn os_keyring_stores_reads_and_deletes_bytes() {
    require_secret_service();
    let store = OsKeyring;
    let entry = format!("test/{}", std::process::id());
    assert_eq!(store.get(&entry).unwrap(), None);
    let secret = [0u8, 1, 2, 250, 255, 7];
    store.set(&entry, &secret).unwrap();
    assert_eq!(store.get(&entry).unwrap().unwrap().as_slice(), &secret);
    store.delete(&entry).unwrap();
    assert_eq!(store.get(&entry).unwrap(), None);
    store.delete(&entry).unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn the_pepper_lives_in_the_keyring_and_keys_never_do() {
    require_secret_service();
    let dir = tempfile::tempdir().unwrap();
    let registry = Registry::open(dir.path(), Arc::new(OsKeyring))
        .await
        .unwrap();
    let owner = registry.create_account("Kim", PASSPHRASE).await.unwrap();
    let generated = registry
        .generate_key(&owner.id, "keyring test")
        .await
        .unwrap();
    let key = generated.secret.expose().to_owned();

    // A second registry on the same files (as the CLI beside the app) reads the same pepper.
    let second = Registry::open(dir.path(), Arc::new(OsKeyring))
        .await
        .unwrap();
    let verified = second.verify(&key).await.unwrap();
    assert_eq!(verified.key_id, generated.summary.id);

    let account: String = sqlx_account_id(&registry).await;
    let pepper = OsKeyring
        .get(&format!("pepper/{account}"))
        .unwrap()
        .unwrap();
    assert_eq!(pepper.len(), 32);

    let dump = keyring_dump();
    assert!(dump.contains(&format!("pepper/{account}")), "{dump}");
    assert!(!dump.contains(&key[4..]), "the key reached the keyring");

    // Without the pepper entry nothing verifies, and the error says what is missing.
    OsKeyring.delete(&format!("pepper/{account}")).unwrap();
    let third = Registry::open(dir.path(), Arc::new(OsKeyring))
        .await
        .unwrap();
    let err = third.verify(&key).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::PepperMissing);
    assert!(err.to_string().contains("keyring"));
}

async fn sqlx_account_id(registry: &Registry) -> String {
    keysmith_core::store::account_id(registry.pool())
        .await
        .unwrap()
        .unwrap()
}

#[test]
fn without_a_session_bus_the_error_says_what_is_missing() {
    // A child process with no session bus: the keyring must refuse clearly, never fall back.
    let out = std::process::Command::new(keysmith_tests::built_binary("keysmith"))
        .args(["--data-dir"])
        .arg(tempfile::tempdir().unwrap().path())
        .args(["init", "--owner", "Kim"])
        .env("KEYSMITH_PASSPHRASE", PASSPHRASE)
        .env_remove("DBUS_SESSION_BUS_ADDRESS")
        .env(
            "DBUS_SESSION_BUS_ADDRESS",
            "unix:path=/nonexistent/keysmith-test-bus",
        )
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("keyring"), "{stderr}");
    assert!(
        stderr.contains("Secret Service") || stderr.contains("locked"),
        "{stderr}"
    );
}
