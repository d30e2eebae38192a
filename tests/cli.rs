//! The `keysmith` command line, end to end on a real database and the real keyring.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use keysmith_tests::{cli, require_secret_service};

fn stdout(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}
fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn init_create_list_verify_revoke() {
    require_secret_service();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();

    let o = cli(d, &["init", "--owner", "Olive"], None);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = cli(d, &["init", "--owner", "Again"], None);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("already exists"));

    let o = cli(
        d,
        &["--as", "Olive", "keys", "create", "--name", "Zapier sync"],
        None,
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let key = stdout(&o).trim().to_owned();
    assert_eq!(key.len(), 53);
    assert!(key.starts_with("ksk_"));
    assert_eq!(stdout(&o).lines().count(), 1, "stdout holds the key alone");
    assert!(!stderr(&o).contains(&key[4..]), "the key leaked to stderr");

    // Listing shows the first 4 characters, never the key.
    let o = cli(d, &["--as", "Olive", "keys", "list", "--json"], None);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!stdout(&o).contains(&key[4..]));
    let list: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(list[0]["name"], "Zapier sync");
    assert_eq!(list[0]["start"], &key[4..8]);
    assert_eq!(list[0]["status"], "active");
    let id = list[0]["id"].as_str().unwrap().to_owned();
    let o = cli(d, &["--as", "Olive", "keys", "list"], None);
    assert!(stdout(&o).contains("Zapier sync") && !stdout(&o).contains(&key[4..]));

    // verify: as an argument and from stdin.
    let o = cli(d, &["verify", &key], None);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stdout(&o).contains(&id) && stdout(&o).contains("Olive") && stdout(&o).contains("Owner")
    );
    let o = cli(d, &["verify", "-"], Some(&format!("{key}\n")));
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));

    // Malformed: exit 2, before any lookup; the input is not echoed.
    let mut typo = key.clone();
    typo.replace_range(10..11, if &key[10..11] == "a" { "b" } else { "a" });
    for bad in [typo.as_str(), "ksk_short", "not a key"] {
        let o = cli(d, &["verify", bad], None);
        assert_eq!(o.status.code(), Some(2), "{bad}: {}", stderr(&o));
        assert!(!stderr(&o).contains(&typo[4..]));
    }

    // Revoke needs REVOKE exactly.
    let o = cli(
        d,
        &[
            "--as",
            "Olive",
            "keys",
            "revoke",
            &id,
            "--confirm",
            "revoke",
        ],
        None,
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("REVOKE"));
    assert_eq!(cli(d, &["verify", &key], None).status.code(), Some(0));

    let o = cli(
        d,
        &[
            "--as",
            "Olive",
            "keys",
            "revoke",
            &id,
            "--confirm",
            "REVOKE",
        ],
        None,
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let o = cli(d, &["verify", &key], None);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("revoked"));
    let o = cli(d, &["--as", "Olive", "keys", "list", "--json"], None);
    let list: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(list[0]["status"], "revoked");
}

#[test]
fn bad_input_gets_clear_errors() {
    require_secret_service();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let o = cli(d, &["--as", "Olive", "keys", "list"], None);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("No Keysmith account"), "{}", stderr(&o));

    assert!(cli(d, &["init", "--owner", "Olive"], None).status.success());
    let long = "x".repeat(65);
    for (args, fragment) in [
        (
            vec!["--as", "Olive", "keys", "create", "--name", "   "],
            "cannot be empty",
        ),
        (
            vec!["--as", "Olive", "keys", "create", "--name", &long],
            "at most 64",
        ),
        (
            vec!["--as", "Olive", "keys", "create", "--name", "a\u{7}b"],
            "control characters",
        ),
        (vec!["--as", "Nobody", "keys", "list"], "wrong passphrase"),
        (
            vec![
                "--as",
                "Olive",
                "keys",
                "revoke",
                "nope",
                "--confirm",
                "REVOKE",
            ],
            "No API key",
        ),
        (vec!["keys", "list"], "--as NAME"),
    ] {
        let o = cli(d, &args, None);
        assert_ne!(o.status.code(), Some(0), "{args:?}");
        assert!(stderr(&o).contains(fragment), "{args:?}: {}", stderr(&o));
    }
    let o = cli(d, &["--as", "Olive", "keys", "list", "--json"], None);
    assert_eq!(stdout(&o).trim(), "[]");
}

#[test]
fn a_team_from_the_command_line() {
    use keysmith_tests::cli_with;
    require_secret_service();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let ok = |o: std::process::Output| {
        assert!(o.status.success(), "{}", stderr(&o));
        stdout(&o)
    };
    ok(cli(d, &["init", "--owner", "Olive"], None));
    let initial = [("KEYSMITH_NEW_PASSPHRASE", "initial passphrase")];
    ok(cli_with(
        d,
        &["--as", "Olive", "members", "add", "Ada", "--role", "admin"],
        None,
        &initial,
    ));
    // Ada must change the initial passphrase before anything else.
    let as_ada_initial = [("KEYSMITH_PASSPHRASE", "initial passphrase")];
    let o = cli_with(d, &["--as", "Ada", "keys", "list"], None, &as_ada_initial);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("must change the initial passphrase"));
    let change = [
        ("KEYSMITH_PASSPHRASE", "initial passphrase"),
        ("KEYSMITH_NEW_PASSPHRASE", "ada's own passphrase"),
    ];
    ok(cli_with(d, &["--as", "Ada", "passphrase"], None, &change));
    let as_ada = [("KEYSMITH_PASSPHRASE", "ada's own passphrase")];

    // An Admin adds a Manager, but not another Admin.
    let add = [
        ("KEYSMITH_PASSPHRASE", "ada's own passphrase"),
        ("KEYSMITH_NEW_PASSPHRASE", "initial passphrase"),
    ];
    let o = cli_with(
        d,
        &["--as", "Ada", "members", "add", "Bea", "--role", "admin"],
        None,
        &add,
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("Not permitted"), "{}", stderr(&o));
    let add_max = [
        ("KEYSMITH_PASSPHRASE", "ada's own passphrase"),
        ("KEYSMITH_NEW_PASSPHRASE", "initial passphrase"),
    ];
    ok(cli_with(
        d,
        &["--as", "Ada", "members", "add", "Max", "--role", "manager"],
        None,
        &add_max,
    ));
    let max_change = [
        ("KEYSMITH_PASSPHRASE", "initial passphrase"),
        ("KEYSMITH_NEW_PASSPHRASE", "max's own passphrase"),
    ];
    ok(cli_with(
        d,
        &["--as", "Max", "passphrase"],
        None,
        &max_change,
    ));
    let as_max = [("KEYSMITH_PASSPHRASE", "max's own passphrase")];
    let key = ok(cli_with(
        d,
        &["--as", "Max", "keys", "create", "--name", "Max's CRM"],
        None,
        &as_max,
    ))
    .trim()
    .to_owned();

    // verify names the creator and the creator's current role; a role change shows at once.
    let out = ok(cli(d, &["verify", &key], None));
    assert!(out.contains("Max") && out.contains("(Manager)"), "{out}");
    ok(cli(
        d,
        &["--as", "Olive", "members", "role", "Max", "author"],
        None,
    ));
    let out = ok(cli(d, &["verify", &key], None));
    assert!(out.contains("(Author)"), "{out}");

    let list = ok(cli(
        d,
        &["--as", "Olive", "members", "list", "--json"],
        None,
    ));
    let list: serde_json::Value = serde_json::from_str(&list).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 3);

    // Removing Max revokes his key and says which.
    let o = cli(
        d,
        &[
            "--as",
            "Olive",
            "members",
            "remove",
            "Max",
            "--confirm",
            "remove",
        ],
        None,
    );
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(cli(d, &["verify", &key], None).status.code(), Some(0));
    let out = ok(cli(
        d,
        &[
            "--as",
            "Olive",
            "members",
            "remove",
            "Max",
            "--confirm",
            "REMOVE",
        ],
        None,
    ));
    assert!(
        out.contains("1 key revoked") && out.contains("Max's CRM"),
        "{out}"
    );
    assert_eq!(cli(d, &["verify", &key], None).status.code(), Some(1));

    // Ownership moves; the old Owner is an Admin afterwards.
    ok(cli(
        d,
        &["--as", "Olive", "members", "transfer-ownership", "Ada"],
        None,
    ));
    let out = ok(cli_with(
        d,
        &["--as", "Ada", "members", "list"],
        None,
        &as_ada,
    ));
    assert!(
        out.lines()
            .any(|l| l.starts_with("Ada") && l.contains("owner")),
        "{out}"
    );
    assert!(
        out.lines()
            .any(|l| l.starts_with("Olive") && l.contains("admin")),
        "{out}"
    );

    // The audit log has it all, and its chain is intact.
    let audit = ok(cli_with(
        d,
        &["--as", "Ada", "audit", "list", "--json"],
        None,
        &as_ada,
    ));
    let audit: serde_json::Value = serde_json::from_str(&audit).unwrap();
    let actions: Vec<&str> = audit
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    for action in [
        "member_added",
        "passphrase_changed",
        "key_generated",
        "role_changed",
        "key_revoked",
        "member_removed",
        "ownership_transferred",
        "sign_in",
    ] {
        assert!(
            actions.contains(&action),
            "{action} missing from {actions:?}"
        );
    }
    assert!(!serde_json::to_string(&audit).unwrap().contains(&key[4..]));
    let out = ok(cli(d, &["audit", "verify"], None));
    assert!(out.starts_with("intact:"), "{out}");
}

#[tokio::test]
async fn audit_verify_exits_1_and_names_the_tampered_entry() {
    require_secret_service();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    assert!(cli(d, &["init", "--owner", "Olive"], None).status.success());
    for name in ["one", "two", "three"] {
        assert!(cli(
            d,
            &["--as", "Olive", "keys", "create", "--name", name],
            None
        )
        .status
        .success());
    }
    assert_eq!(cli(d, &["audit", "verify"], None).status.code(), Some(0));
    let pool = keysmith_core::store::open(&d.join("keysmith.sqlite3"))
        .await
        .unwrap();
    sqlx::query("DROP TRIGGER audit_log_no_update")
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query("UPDATE audit_log SET target = 'nothing to see' WHERE seq = 2")
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    let o = cli(d, &["audit", "verify"], None);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("entry 2"), "{}", stderr(&o));
}

#[test]
fn a_closed_output_pipe_ends_the_command_quietly() {
    use std::process::{Command, Stdio};
    require_secret_service();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    assert!(cli(d, &["init", "--owner", "Olive"], None).status.success());
    for _ in 0..3 {
        assert!(cli(d, &["--as", "Olive", "keys", "list"], None)
            .status
            .success());
    }
    // `keysmith … | head -0`: the reader is gone before anything is written.
    let mut child = Command::new(keysmith_tests::built_binary("keysmith"))
        .arg("--data-dir")
        .arg(d)
        .args(["--as", "Olive", "audit", "list"])
        .env("KEYSMITH_PASSPHRASE", keysmith_tests::PASSPHRASE)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(out.status.code(), Some(0), "{err}");
}
