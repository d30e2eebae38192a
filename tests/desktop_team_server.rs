//! Two desktops, one team: two app windows (two data directories) joined to two instances of
//! the team server on one PostgreSQL database, and two verifier replicas. The Owner joins
//! over plain HTTP on loopback, the Admin over HTTPS with the team's own CA; the Admin
//! revokes the Owner's key, the Owner's list shows it on its next refresh, and both replicas
//! refuse the key. Also: the session token is in the OS keyring only while signed in; a
//! server that is away gets a plain error and no key on display; a session ended elsewhere
//! sends the window back to sign-in, saying why.
//!
//! PostgreSQL only: `scripts/test.sh` runs it with `--ignored` in its PostgreSQL pass.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::time::Duration;

use keysmith_tests::ui::{
    accessible, by_id, click, eventually, gone, launch, rows, select, shot, type_into, unlock,
};
use keysmith_tests::{
    cli_with, forward_auth_status as verdict, free_port, keyring_dump, require_secret_service,
    serve_team as serve, serve_team_https, start_replica as replica, team_database, PASSPHRASE,
};
use thirtyfour::prelude::*;

const INITIAL: &str = "ada's initial passphrase";
const ADA: &str = "ada's own passphrase";

/// First run: "Join a team server" with `url` (and the CA file, for HTTPS).
async fn join(d: &WebDriver, url: &str, ca: Option<&Path>) {
    click(d, "mode-join").await;
    type_into(d, "join-url", url).await;
    if let Some(ca) = ca {
        type_into(d, "join-ca", ca.to_str().unwrap()).await;
    }
    click(d, "join-submit").await;
    let shown = by_id(d, "unlock-server").await.text().await.unwrap();
    assert_eq!(shown, url.trim_end_matches('/'));
}

/// The status cell of the row of key `id`, once the list shows it.
async fn status_of(d: &WebDriver, id: &str) -> String {
    eventually("the key's row", Duration::from_secs(10), || async move {
        rows(d)
            .await
            .into_iter()
            .find(|r| r.0 == id)
            .map(|r| r.3)
            .ok_or("no row")
    })
    .await
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs PostgreSQL: run by scripts/test.sh's PostgreSQL pass"]
async fn two_desktops_one_team_server_and_its_replicas() {
    require_secret_service();
    let url = team_database("keysmith_desktops").await;
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let o = cli_with(
        w,
        &["--database-url", &url, "init", "--owner", "Olive Owner"],
        None,
        &[],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));

    // Two instances of the team server (HTTPS with the team's CA, and plain HTTP on
    // loopback), and two verifier replicas, all on the one database.
    let (_a, tls_port, ca) = serve_team_https(&url, w);
    let http_port = free_port();
    let mut b = serve(&url, &[], http_port);
    let a_url = format!("https://localhost:{tls_port}");
    let b_url = format!("http://127.0.0.1:{http_port}");
    let policy = w.join("policy.toml");
    std::fs::write(
        &policy,
        "[[allow]]\nrole = \"owner\"\nmethods = [\"*\"]\npaths = [\"/**\"]\n",
    )
    .unwrap();
    let (_r1, r1) = replica(&url, &policy);
    let (_r2, r2) = replica(&url, &policy);

    // The Owner's desktop joins over plain HTTP on loopback.
    let olive_dir = w.join("olive");
    let (_olive_driver, olive) = launch(
        &[("KEYSMITH_DATA_DIR", olive_dir.as_os_str())],
        &w.join("olive.log"),
    )
    .await;
    by_id(&olive, "mode-join").await;
    // A URL that is not a server: a plain error, and the form stays.
    click(&olive, "mode-join").await;
    type_into(&olive, "join-url", "http://keys.example.com").await;
    click(&olive, "join-submit").await;
    let err = by_id(&olive, "join-error").await.text().await.unwrap();
    assert!(err.contains("plain HTTP"), "{err}");
    by_id(&olive, "join-url").await.clear().await.unwrap();
    type_into(&olive, "join-url", &format!("{b_url}/")).await;
    shot(&olive, "20-join-team-server").await;
    accessible(&olive, "20-join-team-server").await;
    click(&olive, "join-submit").await;
    assert_eq!(
        by_id(&olive, "unlock-server").await.text().await.unwrap(),
        b_url
    );
    assert!(olive_dir.join("team-server.json").is_file());
    assert!(
        !keyring_dump().contains("kss_"),
        "no session before sign-in"
    );
    unlock(&olive, "Olive Owner", PASSPHRASE).await;
    by_id(&olive, "no-keys").await;
    assert!(by_id(&olive, "team-server")
        .await
        .text()
        .await
        .unwrap()
        .contains("127.0.0.1"));
    assert!(
        keyring_dump().contains("kss_"),
        "the session token is kept in the OS keyring while signed in"
    );

    // The Owner generates a key and adds an Admin.
    click(&olive, "create-key").await;
    type_into(&olive, "key-name", "Shared billing").await;
    click(&olive, "generate-key").await;
    let shared = by_id(&olive, "revealed-key").await.text().await.unwrap();
    click(&olive, "copy-key").await;
    by_id(&olive, "copy-note").await;
    click(&olive, "reveal-done").await;
    gone(&olive, "reveal-dialog").await;
    let shared_id = rows(&olive).await[0].0.clone();
    assert_eq!(verdict(r1, &shared), 204);
    assert_eq!(verdict(r2, &shared), 204);
    click(&olive, "tab-members").await;
    click(&olive, "add-member").await;
    type_into(&olive, "member-name", "Ada Admin").await;
    select(&olive, "member-role", "admin").await;
    type_into(&olive, "member-pass", INITIAL).await;
    click(&olive, "add-member-submit").await;
    gone(&olive, "add-member-dialog").await;
    click(&olive, "tab-keys").await;
    assert_eq!(status_of(&olive, &shared_id).await, "Active");
    shot(&olive, "21-team-server-keys").await;
    accessible(&olive, "21-team-server-keys").await;

    // The server goes away: generating says so plainly and shows no key.
    drop(b);
    click(&olive, "create-key").await;
    type_into(&olive, "key-name", "Never stored").await;
    click(&olive, "generate-key").await;
    let err = by_id(&olive, "key-name-error").await.text().await.unwrap();
    assert!(err.contains("could not be reached"), "{err}");
    assert!(olive
        .find_all(By::Id("revealed-key"))
        .await
        .unwrap()
        .is_empty());
    shot(&olive, "22-server-away").await;
    accessible(&olive, "22-server-away").await;
    by_id(&olive, "key-name")
        .await
        .send_keys(Key::Escape)
        .await
        .unwrap();
    gone(&olive, "create-dialog").await;
    b = serve(&url, &[], http_port);

    // The Admin's desktop joins over HTTPS, trusting the team's CA, and changes the
    // initial passphrase first.
    let ada_dir = w.join("ada");
    let (_ada_driver, ada) = launch(
        &[("KEYSMITH_DATA_DIR", ada_dir.as_os_str())],
        &w.join("ada.log"),
    )
    .await;
    join(&ada, &a_url, Some(&ca)).await;
    unlock(&ada, "Ada Admin", INITIAL).await;
    type_into(&ada, "change-current", INITIAL).await;
    type_into(&ada, "change-new", ADA).await;
    type_into(&ada, "change-new2", ADA).await;
    click(&ada, "change-submit").await;
    by_id(&ada, "signed-in-as").await;

    // The Admin revokes the Owner's key; the Owner's list shows it on its next refresh
    // (every 5 s), and both replicas refuse it.
    assert_eq!(status_of(&ada, &shared_id).await, "Active");
    ada.find(By::Css(format!(
        "tr[data-key-id='{shared_id}'] button.revoke"
    )))
    .await
    .unwrap()
    .click()
    .await
    .unwrap();
    type_into(&ada, "revoke-confirm", "REVOKE").await;
    click(&ada, "revoke-submit").await;
    gone(&ada, "revoke-dialog").await;
    for port in [r1, r2] {
        let shared = shared.as_str();
        eventually(
            "the replica refuses",
            Duration::from_secs(2),
            || async move {
                match verdict(port, shared) {
                    401 => Ok(()),
                    other => Err(other),
                }
            },
        )
        .await;
    }
    eventually(
        "the Owner's list shows the revoke",
        Duration::from_secs(12),
        || async {
            let s = status_of(&olive, &shared_id).await;
            if s == "Revoked" {
                Ok(())
            } else {
                Err(s)
            }
        },
    )
    .await;
    shot(&olive, "23-revoked-elsewhere").await;

    // Locking drops the Admin's token from the keyring (the Owner's stays).
    let before = keyring_dump().matches("kss_").count();
    assert_eq!(before, 2, "one session token per signed-in desktop");
    click(&ada, "lock-button").await;
    by_id(&ada, "unlock-name").await;
    eventually(
        "the token leaves the keyring",
        Duration::from_secs(5),
        || async {
            match keyring_dump().matches("kss_").count() {
                1 => Ok(()),
                n => Err(n),
            }
        },
    )
    .await;

    // The Owner's passphrase changes from the CLI: the server ends the desktop's session,
    // and the window goes back to sign-in saying why; signing in again finds it all.
    let o = cli_with(
        w,
        &["--server", &b_url, "--as", "Olive Owner", "passphrase"],
        None,
        &[("KEYSMITH_NEW_PASSPHRASE", "olive's new passphrase")],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let notice = by_id(&olive, "unlock-notice").await.text().await.unwrap();
    assert!(notice.to_lowercase().contains("sign in"), "{notice}");
    shot(&olive, "24-session-ended").await;
    accessible(&olive, "24-session-ended").await;
    unlock(&olive, "Olive Owner", "olive's new passphrase").await;
    assert_eq!(status_of(&olive, &shared_id).await, "Revoked");

    // Leaving the team server returns the desktop to its first run.
    click(&olive, "lock-button").await;
    click(&olive, "leave-server").await;
    by_id(&olive, "mode-local").await;
    assert!(!olive_dir.join("team-server.json").exists());
    assert_eq!(keyring_dump().matches("kss_").count(), 0);

    let _ = ada.quit().await;
    let _ = olive.quit().await;
    drop(b);
}
