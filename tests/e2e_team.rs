//! A team of several roles in the real window (Xvfb, WebDriver): the Owner adds an Admin
//! and a Manager; the Manager changes the initial passphrase, generates keys and cannot see
//! the Owner's; the Admin sees the Manager's keys and revokes one with REVOKE; the Owner
//! removes the Manager after the preview, which revokes the rest; the audit page shows it
//! all with the chain intact. The CLI confirms every revoked key fails verification.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::ffi::OsStr;
use std::path::Path;
use std::time::Duration;

use keysmith_tests::ui::{
    accessible, by_id, click, eventually, focus_returns_to, gone, launch, rows, select, shot,
    type_into, unlock,
};
use keysmith_tests::{cli, require_secret_service, PASSPHRASE};
use thirtyfour::prelude::*;

const INITIAL: &str = "initial passphrase";

async fn lock(d: &WebDriver) {
    click(d, "lock-button").await;
    by_id(d, "unlock-name").await;
}

/// Generates a key named `name` and copies it; returns the key.
async fn generate(d: &WebDriver, name: &str) -> String {
    click(d, "create-key").await;
    type_into(d, "key-name", name).await;
    click(d, "generate-key").await;
    let key = by_id(d, "revealed-key").await.text().await.unwrap();
    click(d, "copy-key").await;
    by_id(d, "copy-note").await;
    click(d, "reveal-done").await;
    gone(d, "reveal-dialog").await;
    key
}

async fn add_member(d: &WebDriver, name: &str, role: &str) {
    click(d, "add-member").await;
    type_into(d, "member-name", name).await;
    select(d, "member-role", role).await;
    type_into(d, "member-pass", INITIAL).await;
    click(d, "add-member-submit").await;
    gone(d, "add-member-dialog").await;
    when_shown(d, &format!("tr[data-member='{name}']")).await;
}

/// The element `css` selects, once it is there (up to 10 s: the list it is in may still be
/// loading).
async fn when_shown(d: &WebDriver, css: &str) -> WebElement {
    d.query(By::Css(css))
        .wait(Duration::from_secs(10), Duration::from_millis(50))
        .first()
        .await
        .unwrap()
}

async fn click_when_shown(d: &WebDriver, css: &str) {
    when_shown(d, css).await.click().await.unwrap();
}

async fn first_sign_in(d: &WebDriver, name: &str, own: &str) {
    unlock(d, name, INITIAL).await;
    type_into(d, "change-current", INITIAL).await;
    type_into(d, "change-new", own).await;
    type_into(d, "change-new2", own).await;
    click(d, "change-submit").await;
    by_id(d, "signed-in-as").await;
}

async fn wait_rows(d: &WebDriver, want: usize) -> Vec<(String, String, String, String)> {
    let what = format!("expected {want} rows");
    eventually(&what, Duration::from_secs(10), || async move {
        let r = rows(d).await;
        if r.len() == want {
            Ok(r)
        } else {
            Err(r)
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_team_of_roles_in_the_real_window() {
    require_secret_service();
    let work = tempfile::tempdir().unwrap();
    let data_dir = work.path().join("data");
    let log = work.path().join("app.log");
    let (driver, d) = launch(
        &[
            ("KEYSMITH_DATA_DIR", data_dir.as_os_str()),
            ("KEYSMITH_CLIPBOARD_CLEAR_SECS", OsStr::new("3")),
        ],
        &log,
    )
    .await;
    team(&d, &data_dir).await;
    let _ = d.quit().await;
    drop(driver);
}

async fn team(d: &WebDriver, data_dir: &Path) {
    // The Owner sets up the account, generates a key, adds an Admin and a Manager.
    click(d, "mode-local").await;
    type_into(d, "setup-name", "Olive Owner").await;
    type_into(d, "setup-pass", PASSPHRASE).await;
    type_into(d, "setup-pass2", PASSPHRASE).await;
    click(d, "setup-submit").await;
    let owner_key = generate(d, "Owner billing").await;
    click(d, "tab-members").await;
    add_member(d, "Ada Admin", "admin").await;
    add_member(d, "Max Manager", "manager").await;
    add_member(d, "Vic Viewer", "viewer").await;
    // A duplicate name is refused inline.
    click(d, "add-member").await;
    type_into(d, "member-name", "max manager").await;
    type_into(d, "member-pass", INITIAL).await;
    click(d, "add-member-submit").await;
    let err = by_id(d, "add-member-error").await.text().await.unwrap();
    assert!(err.contains("already called"), "{err}");
    by_id(d, "member-name")
        .await
        .send_keys(Key::Escape)
        .await
        .unwrap();
    gone(d, "add-member-dialog").await;
    // Focus goes back to the control that opened the dialog, not to the top of the page.
    focus_returns_to(d, "#add-member").await;
    shot(d, "10-members").await;
    accessible(d, "10-members").await;
    lock(d).await;

    // A Viewer gets a plain explanation instead of the keys page, and no other tab.
    first_sign_in(d, "Vic Viewer", "vic's own passphrase").await;
    let text = by_id(d, "no-keys-page").await.text().await.unwrap();
    assert!(text.contains("can't generate or see API keys"), "{text}");
    assert!(d.find_all(By::Id("create-key")).await.unwrap().is_empty());
    assert!(d.find_all(By::Id("tab-audit")).await.unwrap().is_empty());
    shot(d, "15-viewer").await;
    accessible(d, "15-viewer").await;
    // Ctrl+L locks from anywhere.
    d.find(By::Tag("body"))
        .await
        .unwrap()
        .send_keys(Key::Control + "l")
        .await
        .unwrap();
    by_id(d, "unlock-name").await;

    // The Manager: first sign-in changes the passphrase; no Members tab; own keys only.
    first_sign_in(d, "Max Manager", "max's own passphrase").await;
    assert_eq!(
        by_id(d, "signed-in-role").await.text().await.unwrap(),
        "Manager"
    );
    assert!(d.find_all(By::Id("tab-members")).await.unwrap().is_empty());
    by_id(d, "no-keys").await;
    let max_first = generate(d, "Max CRM sync").await;
    let max_second = generate(d, "Max webhooks").await;
    let listed = wait_rows(d, 2).await;
    assert!(listed.iter().all(|r| r.1.starts_with("Max")), "{listed:?}");
    shot(d, "11-manager-keys").await;
    accessible(d, "11-manager-keys").await;
    lock(d).await;

    // The Admin sees every key, filters by member, revokes one of Max's with REVOKE.
    first_sign_in(d, "Ada Admin", "ada's own passphrase").await;
    let listed = wait_rows(d, 3).await;
    assert!(listed.iter().any(|r| r.1 == "Owner billing"));
    let max_id = d
        .execute(
            "return Array.from(document.querySelectorAll('#key-filter option')).find(o => o.textContent === 'Max Manager').value;",
            vec![],
        )
        .await
        .unwrap()
        .json()
        .as_str()
        .unwrap()
        .to_owned();
    select(d, "key-filter", &max_id).await;
    let only_max = wait_rows(d, 2).await;
    let crm = only_max
        .iter()
        .find(|r| r.1 == "Max CRM sync")
        .unwrap()
        .0
        .clone();
    d.find(By::Css(format!("tr[data-key-id='{crm}'] button.revoke")))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    type_into(d, "revoke-confirm", "REVOKE").await;
    click(d, "revoke-submit").await;
    gone(d, "revoke-dialog").await;
    shot(d, "12-admin-filtered").await;
    accessible(d, "12-admin-filtered").await;
    assert_eq!(
        cli(data_dir, &["verify", &max_first], None).status.code(),
        Some(1)
    );
    assert_eq!(
        cli(data_dir, &["verify", &max_second], None).status.code(),
        Some(0)
    );
    lock(d).await;

    // The Owner removes the Manager after the preview: the remaining key is revoked.
    unlock(d, "Olive Owner", PASSPHRASE).await;
    click(d, "tab-members").await;
    let remove_max = "tr[data-member='Max Manager'] button.remove";
    // Escape first: focus returns to that row's Remove button.
    click_when_shown(d, remove_max).await;
    by_id(d, "remove-confirm")
        .await
        .send_keys(Key::Escape)
        .await
        .unwrap();
    gone(d, "remove-member-dialog").await;
    focus_returns_to(d, remove_max).await;
    click_when_shown(d, remove_max).await;
    let preview = by_id(d, "remove-preview").await.text().await.unwrap();
    assert!(
        preview.contains("Max webhooks") && !preview.contains("Max CRM sync"),
        "{preview}"
    );
    assert!(!by_id(d, "remove-submit").await.is_enabled().await.unwrap());
    type_into(d, "remove-confirm", "REMOVE").await;
    shot(d, "13-remove-preview").await;
    accessible(d, "13-remove-preview").await;
    click(d, "remove-submit").await;
    gone(d, "remove-member-dialog").await;
    let notice = by_id(d, "members-notice").await.text().await.unwrap();
    assert!(notice.contains("1 key revoked"), "{notice}");
    assert_eq!(
        cli(data_dir, &["verify", &max_second], None).status.code(),
        Some(1)
    );
    assert_eq!(
        cli(data_dir, &["verify", &owner_key], None).status.code(),
        Some(0)
    );

    // The audit page: chain intact, the removal and both revocations listed; filters work.
    click(d, "tab-audit").await;
    let status = by_id(d, "chain-status").await.text().await.unwrap();
    assert!(status.contains("Chain intact"), "{status}");
    eventually("audit page lacks entries", Duration::from_secs(10), || async move {
        let actions: Vec<String> = d
            .execute(
                "return Array.from(document.querySelectorAll('#audit-table tbody tr')).map(r => r.dataset.action);",
                vec![],
            )
            .await
            .unwrap()
            .convert()
            .unwrap();
        let wanted = [
            "member_added",
            "key_generated",
            "key_copied",
            "key_revoked",
            "member_removed",
            "passphrase_changed",
            "sign_in",
        ];
        if wanted.iter().all(|w| actions.iter().any(|a| a == w)) {
            Ok(())
        } else {
            Err(actions)
        }
    })
    .await;
    shot(d, "14-audit").await;
    accessible(d, "14-audit").await;
    select(d, "audit-action", "member_removed").await;
    eventually(
        "the action filter shows other than 1 row",
        Duration::from_secs(10),
        || async move {
            let n: usize = d
                .execute(
                    "return document.querySelectorAll('#audit-table tbody tr').length;",
                    vec![],
                )
                .await
                .unwrap()
                .convert()
                .unwrap();
            if n == 1 {
                Ok(())
            } else {
                Err(n)
            }
        },
    )
    .await;
    assert_eq!(
        cli(data_dir, &["audit", "verify"], None).status.code(),
        Some(0)
    );

    // Ownership moves only after a confirmation.
    click(d, "tab-members").await;
    let make_owner = "tr[data-member='Ada Admin'] button.transfer";
    click_when_shown(d, make_owner).await;
    by_id(d, "transfer-cancel")
        .await
        .send_keys(Key::Escape)
        .await
        .unwrap();
    gone(d, "transfer-dialog").await;
    focus_returns_to(d, make_owner).await;
    d.find(By::Css(make_owner))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    click(d, "transfer-confirm").await;
    eventually(
        "no transfer notice",
        Duration::from_secs(10),
        || async move {
            let notice = by_id(d, "members-notice").await.text().await.unwrap();
            if notice.contains("Ada Admin is now the Owner") {
                Ok(())
            } else {
                Err(notice)
            }
        },
    )
    .await;
    let out = cli(data_dir, &["--as", "Olive Owner", "members", "list"], None);
    let out = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.lines()
            .any(|l| l.starts_with("Ada Admin") && l.contains("owner")),
        "{out}"
    );
}
