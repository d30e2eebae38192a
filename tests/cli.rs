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
