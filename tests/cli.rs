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

    // Pause: refused (exit 1, "paused") until resumed; both say what happened.
    let o = cli(d, &["--as", "Olive", "keys", "pause", &id], None);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("Paused \"Zapier sync\""),
        "{}",
        stdout(&o)
    );
    let o = cli(d, &["verify", &key], None);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("paused"), "{}", stderr(&o));
    let o = cli(d, &["--as", "Olive", "keys", "list", "--json"], None);
    let list: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(list[0]["status"], "paused");
    assert!(list[0]["paused_at"].is_i64());
    let o = cli(d, &["--as", "Olive", "keys", "pause", &id], None);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("already paused"), "{}", stderr(&o));
    let o = cli(d, &["--as", "Olive", "keys", "resume", &id], None);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("active again"), "{}", stdout(&o));
    assert_eq!(cli(d, &["verify", &key], None).status.code(), Some(0));
    let o = cli(d, &["--as", "Olive", "keys", "resume", &id], None);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("not paused"), "{}", stderr(&o));

    // Usage: the three accepted checks and the paused one, counted today (malformed keys
    // count nowhere); the table lists the day, the JSON every day.
    let o = cli(d, &["--as", "Olive", "keys", "usage", &id], None);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    assert!(
        text.starts_with("Last 30 days (UTC, from ")
            && text.contains("): 3 accepted, 1 refused (1 paused)."),
        "{text}"
    );
    assert!(text.contains("\nLast used: 20"), "{text}");
    let rows: Vec<&str> = text.lines().skip(2).collect();
    assert_eq!(rows.len(), 3, "a two-line header and today: {text}");
    assert!(rows[0].contains("- refused, by reason -"), "{text}");
    assert!(
        rows[1].starts_with("DATE") && rows[1].ends_with("REFUSED"),
        "{text}"
    );
    let cells: Vec<&str> = rows[2].split_whitespace().collect();
    assert_eq!(
        cells[1..],
        ["3", "0", "0", "1", "0", "0", "0", "0", "1"],
        "{text}"
    );
    let o = cli(
        d,
        &[
            "--as", "Olive", "keys", "usage", &id, "--days", "7", "--json",
        ],
        None,
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let usage: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(usage["days"].as_array().unwrap().len(), 7);
    assert_eq!(usage["days"][6]["counts"]["allowed"], 3);
    assert_eq!(usage["days"][6]["counts"]["paused"], 1);
    assert_eq!(usage["total"]["allowed"], 3);
    assert_eq!(usage["last_used_from"], serde_json::Value::Null);
    let o = cli(
        d,
        &["--as", "Olive", "keys", "usage", &id, "--days", "1"],
        None,
    );
    assert!(
        stdout(&o).starts_with("Today (UTC, from "),
        "{}",
        stdout(&o)
    );
    for (args, fragment) in [
        (vec!["--days", "0"], "0 is not in 1..=366"),
        (vec!["--days", "400"], "400 is not in 1..=366"),
        (vec!["--days", "-1"], "unexpected argument '-1'"),
    ] {
        let mut all = vec!["--as", "Olive", "keys", "usage", id.as_str()];
        all.extend(args.iter().copied());
        let o = cli(d, &all, None);
        // A usage error, as for --keep-usage-days: refused before anything is read.
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        assert!(stderr(&o).contains(fragment), "{args:?}: {}", stderr(&o));
    }
    let o = cli(
        d,
        &[
            "--as",
            "Olive",
            "keys",
            "usage",
            "00000000-0000-0000-0000-000000000000",
        ],
        None,
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("00000000-0000-0000-0000-000000000000"),
        "{}",
        stderr(&o)
    );

    // A key limited to networks: said on creation, listed, kept by a roll.
    let o = cli(
        d,
        &[
            "--as",
            "Olive",
            "keys",
            "create",
            "--name",
            "office",
            "--allow-from",
            "203.0.113.0/24,2001:DB8::/32",
            "--allow-from",
            "198.51.100.7",
        ],
        None,
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("It works only from 203.0.113.0/24, 2001:db8::/32, 198.51.100.7/32."),
        "{}",
        stderr(&o)
    );
    let o = cli(d, &["--as", "Olive", "keys", "list"], None);
    assert!(
        stdout(&o).contains("203.0.113.0/24,2001:db8::/32,198.51.100.7/32"),
        "{}",
        stdout(&o)
    );
    assert!(stdout(&o).contains("anywhere"), "{}", stdout(&o));
    let o = cli(d, &["--as", "Olive", "keys", "list", "--json"], None);
    let list: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let office = list
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["name"] == "office")
        .unwrap();
    assert_eq!(
        office["allowed_sources"],
        serde_json::json!(["203.0.113.0/24", "2001:db8::/32", "198.51.100.7/32"])
    );
    let office_id = office["id"].as_str().unwrap().to_owned();
    let o = cli(
        d,
        &["--as", "Olive", "keys", "roll", &office_id, "--grace", "0s"],
        None,
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let o = cli(d, &["--as", "Olive", "keys", "list", "--json"], None);
    let list: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let limited = list
        .as_array()
        .unwrap()
        .iter()
        .filter(|k| k["name"] == "office" && k["allowed_sources"].as_array().unwrap().len() == 3)
        .count();
    assert_eq!(limited, 2, "the replacement keeps the list");

    // A rate-limited key: said on creation, listed in canonical form, kept by a roll.
    let o = cli(
        d,
        &[
            "--as",
            "Olive",
            "keys",
            "create",
            "--name",
            "partner",
            "--rate-limit",
            "600 per minute, burst 50",
        ],
        None,
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("It is limited to 600/min burst 50."),
        "{}",
        stderr(&o)
    );
    let o = cli(d, &["--as", "Olive", "keys", "list"], None);
    let row = stdout(&o)
        .lines()
        .find(|l| l.contains("partner"))
        .unwrap_or_default()
        .to_owned();
    assert!(row.contains("600/min burst 50"), "{}", stdout(&o));
    assert!(stdout(&o).contains("RATE LIMIT"), "{}", stdout(&o));
    let o = cli(d, &["--as", "Olive", "keys", "list", "--json"], None);
    let list: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let partner = list
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["name"] == "partner")
        .unwrap();
    assert_eq!(partner["rate_limit"], "600/min burst 50");
    assert!(office["rate_limit"].is_null());
    let partner_id = partner["id"].as_str().unwrap().to_owned();
    let o = cli(
        d,
        &[
            "--as",
            "Olive",
            "keys",
            "roll",
            &partner_id,
            "--grace",
            "0s",
        ],
        None,
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let o = cli(d, &["--as", "Olive", "keys", "list", "--json"], None);
    let list: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let metered = list
        .as_array()
        .unwrap()
        .iter()
        .filter(|k| k["name"] == "partner" && k["rate_limit"] == "600/min burst 50")
        .count();
    assert_eq!(metered, 2, "the replacement keeps the rate limit");

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
    let revoked = list
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["id"] == id.as_str())
        .unwrap();
    assert_eq!(revoked["status"], "revoked");
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
        (
            vec![
                "--as",
                "Olive",
                "keys",
                "create",
                "--name",
                "n",
                "--allow-from",
                "10.1.2.3/8",
            ],
            "\"10.1.2.3/8\" has bits set past its /8 prefix: did you mean 10.0.0.0/8?",
        ),
        (
            vec![
                "--as",
                "Olive",
                "keys",
                "create",
                "--name",
                "n",
                "--allow-from",
                "10.0.0.0/8",
                "--allow-from",
                "office.example",
            ],
            "\"office.example\" is not an IPv4 or IPv6 address",
        ),
        (
            vec![
                "--as",
                "Olive",
                "keys",
                "create",
                "--name",
                "n",
                "--allow-from",
                "::/129",
            ],
            "\"::/129\" is not an IPv4 or IPv6 network",
        ),
        (
            vec![
                "--as",
                "Olive",
                "keys",
                "create",
                "--name",
                "n",
                "--rate-limit",
                "0/s",
            ],
            "\"0/s\": the number of requests must be at least 1",
        ),
        (
            vec![
                "--as",
                "Olive",
                "keys",
                "create",
                "--name",
                "n",
                "--rate-limit",
                "10/hour",
            ],
            "\"10/hour\": the period must be a second (/s) or a minute (/min)",
        ),
        (
            vec![
                "--as",
                "Olive",
                "keys",
                "create",
                "--name",
                "n",
                "--rate-limit",
                "10/s burst 0",
            ],
            "\"10/s burst 0\": the burst must be at least 1",
        ),
        (
            vec![
                "--as",
                "Olive",
                "keys",
                "create",
                "--name",
                "n",
                "--rate-limit",
                "5000000/min",
            ],
            "\"5000000/min\": the number of requests must be at most 1000000",
        ),
    ] {
        let o = cli(d, &args, None);
        assert_ne!(o.status.code(), Some(0), "{args:?}");
        assert!(stderr(&o).contains(fragment), "{args:?}: {}", stderr(&o));
    }
    let o = cli(d, &["--as", "Olive", "keys", "list", "--json"], None);
    assert_eq!(stdout(&o).trim(), "[]");
}

/// Scopes from the command line: `keys scopes` lists what the member's role may give (the
/// built-in `read-only` alone without a policy file, then the data directory's
/// `policy.toml`); `keys create --scope` narrows a key, said on creation, listed, and kept by
/// a roll; malformed, undefined and too-high scopes and an unreadable policy are refused
/// naming the value, and create nothing.
#[test]
fn scopes_come_from_the_policy_file_and_narrow_a_key() {
    require_secret_service();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let o = cli(d, &["init", "--owner", "Olive"], None);
    assert!(o.status.success(), "{}", stderr(&o));
    let as_olive = |args: &[&str]| {
        let mut all = vec!["--as", "Olive"];
        all.extend_from_slice(args);
        cli(d, &all, None)
    };
    let o = as_olive(&["keys", "scopes", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let scopes: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(scopes.as_array().unwrap().len(), 1, "{scopes}");
    assert_eq!(scopes[0]["name"], "read-only");

    std::fs::write(
        d.join("policy.toml"),
        r#"
[[allow]]
role = "owner"
methods = ["*"]
paths = ["/**"]

[[scope]]
name = "reports:read"
description = "Read reports"
roles = ["owner", "admin", "manager"]
methods = ["GET", "HEAD"]
paths = ["/v1/reports/**"]

[[scope]]
name = "billing:admin"
roles = ["admin"]
methods = ["*"]
paths = ["/v1/billing/**"]
"#,
    )
    .unwrap();
    let o = as_olive(&["keys", "scopes"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let table = stdout(&o);
    assert!(table.contains("read-only"), "{table}");
    assert!(
        table.lines().any(|l| l.starts_with("reports:read")
            && l.contains("owner,admin,manager")
            && l.contains("Read reports")),
        "{table}"
    );
    assert!(
        !table.contains("billing:admin"),
        "only what the Owner may give: {table}"
    );

    for (scope, fragment) in [
        ("billing:admin", "scope \"billing:admin\" is beyond the Owner role: only Admin may give it to a key"),
        ("reports:write", "scope \"reports:write\" is not defined: the policy defines read-only, reports:read, billing:admin"),
        ("Reports:read", "scope \"Reports:read\" must start with a lowercase letter"),
        ("reports read", "scope \"reports read\" holds ' '"),
    ] {
        let o = as_olive(&["keys", "create", "--name", "n", "--scope", scope]);
        assert_eq!(o.status.code(), Some(1), "{scope}: {}", stderr(&o));
        assert!(stderr(&o).contains(fragment), "{scope}: {}", stderr(&o));
    }
    let o = as_olive(&[
        "keys",
        "create",
        "--name",
        "n",
        "--scope",
        "read-only",
        "--policy",
        "/nonexistent/policy.toml",
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("policy refused: /nonexistent/policy.toml"),
        "{}",
        stderr(&o)
    );
    let o = as_olive(&["keys", "list", "--json"]);
    assert_eq!(stdout(&o).trim(), "[]", "nothing was created");

    let o = as_olive(&[
        "keys",
        "create",
        "--name",
        "reports",
        "--scope",
        "reports:read,read-only",
        "--scope",
        "reports:read",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("Its scopes are read-only, reports:read."),
        "{}",
        stderr(&o)
    );
    let o = as_olive(&["keys", "list"]);
    assert!(stdout(&o).contains("SCOPES"), "{}", stdout(&o));
    let row = stdout(&o)
        .lines()
        .find(|l| l.contains("reports"))
        .unwrap_or_default()
        .to_owned();
    assert!(row.contains("read-only,reports:read"), "{}", stdout(&o));
    let o = as_olive(&["keys", "list", "--json"]);
    let list: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(
        list[0]["scopes"],
        serde_json::json!(["read-only", "reports:read"])
    );
    let id = list[0]["id"].as_str().unwrap().to_owned();
    let o = as_olive(&["keys", "roll", &id, "--grace", "0s"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = as_olive(&["keys", "list", "--json"]);
    let list: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let scoped = list
        .as_array()
        .unwrap()
        .iter()
        .filter(|k| k["scopes"] == serde_json::json!(["read-only", "reports:read"]))
        .count();
    assert_eq!(scoped, 2, "the replacement keeps the scopes");
}

/// Every command but `init`, pointed at a directory with no Keysmith database (a typo, a
/// moved folder): it says there is no account there, exits non-zero (3 for `verify`, which
/// could not check), and creates nothing, neither the directory nor a database in an existing
/// empty one.
#[test]
fn commands_on_a_directory_without_a_database_create_nothing() {
    require_secret_service();
    let root = tempfile::tempdir().unwrap();
    let key = format!("ksk_{}", "A".repeat(49));
    let commands: Vec<Vec<&str>> = vec![
        vec!["verify", &key],
        vec!["--as", "Olive", "keys", "list"],
        vec!["--as", "Olive", "keys", "create", "--name", "n"],
        vec!["--as", "Olive", "members", "list"],
        vec!["--as", "Olive", "audit", "list"],
        vec!["audit", "verify"],
        vec!["--as", "Olive", "passphrase"],
        vec![
            "--as",
            "Olive",
            "export-pepper",
            "--to",
            "/nonexistent/pepper",
        ],
        vec!["serve-verifier", "--policy", "/nonexistent/policy.toml"],
    ];
    for (i, args) in commands.iter().enumerate() {
        for existing in [false, true] {
            let d = root.path().join(format!("{i}-{existing}"));
            if existing {
                std::fs::create_dir(&d).unwrap();
            }
            let o = cli(&d, args, None);
            let want = if args[0] == "verify" { 3 } else { 1 };
            assert_eq!(o.status.code(), Some(want), "{args:?}: {}", stderr(&o));
            assert!(
                stderr(&o).contains("No Keysmith account")
                    && stderr(&o).contains(&*d.to_string_lossy()),
                "{args:?}: {}",
                stderr(&o)
            );
            let left: Vec<_> = std::fs::read_dir(root.path())
                .unwrap()
                .flatten()
                .map(|e| e.file_name())
                .collect();
            if existing {
                assert_eq!(
                    std::fs::read_dir(&d).unwrap().count(),
                    0,
                    "{args:?} wrote into {d:?}"
                );
            } else {
                assert!(!d.exists(), "{args:?} created {d:?}: {left:?}");
            }
        }
    }
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
    pool.execute_raw(
        "DROP TRIGGER audit_log_no_update; \
         UPDATE audit_log SET target = 'nothing to see' WHERE seq = 2",
    )
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

/// `keysmith` with `env` (raw bytes allowed) on `d`, the test passphrase unless overridden.
fn cli_os(
    d: &std::path::Path,
    args: &[&str],
    env: &[(&str, &std::ffi::OsStr)],
) -> std::process::Output {
    std::process::Command::new(keysmith_tests::built_binary("keysmith"))
        .arg("--data-dir")
        .arg(d)
        .args(args)
        .env("KEYSMITH_PASSPHRASE", keysmith_tests::PASSPHRASE)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .env_remove("KEYSMITH_DATA_DIR")
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap()
}

/// The issue's input: ten bytes that are not UTF-8 as a passphrase were accepted, and then
/// any other ten such bytes signed in (both became ten U+FFFD). Right value: refused, with a
/// clear error, and nothing created or signed in.
#[test]
fn passphrases_that_are_not_utf8_are_refused() {
    use std::os::unix::ffi::OsStrExt;
    require_secret_service();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let bad = std::ffi::OsStr::from_bytes(&[0xff; 10]);
    let other = std::ffi::OsStr::from_bytes(&[0xfe; 10]);
    let o = cli_os(
        d,
        &["init", "--owner", "Olive"],
        &[("KEYSMITH_PASSPHRASE", bad)],
    );
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("not valid UTF-8"), "{}", stderr(&o));
    let o = cli(d, &["--as", "Olive", "keys", "list"], None);
    assert!(stderr(&o).contains("No Keysmith account"), "{}", stderr(&o));

    assert!(cli(d, &["init", "--owner", "Olive"], None).status.success());
    let o = cli_os(
        d,
        &[
            "--as", "Olive", "members", "add", "Max", "--role", "manager",
        ],
        &[("KEYSMITH_NEW_PASSPHRASE", bad)],
    );
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let o = cli_os(
        d,
        &["--as", "Olive", "keys", "list"],
        &[("KEYSMITH_PASSPHRASE", other)],
    );
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    // The replacement character itself (what a lossy conversion leaves) is refused too.
    let o = cli_os(
        d,
        &[
            "--as", "Olive", "members", "add", "Max", "--role", "manager",
        ],
        &[(
            "KEYSMITH_NEW_PASSPHRASE",
            std::ffi::OsStr::new(&"\u{fffd}".repeat(10)),
        )],
    );
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("U+FFFD"), "{}", stderr(&o));
    let o = cli(d, &["--as", "Olive", "members", "list", "--json"], None);
    assert!(!stdout(&o).contains("\"Max\""), "nothing was added");
}

/// The issue's input: six `keysmith init` on one empty data directory at once. One wins;
/// the other five say the account already exists (not "the schema could not be brought up
/// to date").
#[test]
fn six_inits_at_once_one_wins_the_others_say_it_exists() {
    require_secret_service();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("fresh");
    let children: Vec<_> = (0..6)
        .map(|i| {
            std::process::Command::new(keysmith_tests::built_binary("keysmith"))
                .arg("--data-dir")
                .arg(&d)
                .args(["init", "--owner", &format!("Owner{i}")])
                .env("KEYSMITH_PASSPHRASE", keysmith_tests::PASSPHRASE)
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let outputs: Vec<_> = children
        .into_iter()
        .map(|c| c.wait_with_output().unwrap())
        .collect();
    let won = outputs.iter().filter(|o| o.status.success()).count();
    let exists = outputs
        .iter()
        .filter(|o| stderr(o).contains("already exists"))
        .count();
    let all: Vec<String> = outputs.iter().map(stderr).collect();
    assert_eq!((won, exists), (1, 5), "{all:#?}");
    assert_eq!(cli(&d, &["audit", "verify"], None).status.code(), Some(0));
}

/// The issue's inputs, through the real CLI and the real keyring: with only the file, a
/// Manager made the Owner (a `sqlite3` shell) is refused and named by `audit verify`; the
/// database and its -wal/-shm are 0600 in a data directory made 0700.
#[test]
fn a_manager_made_owner_outside_keysmith_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    require_secret_service();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("data");
    std::fs::create_dir(&d).unwrap();
    std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o755)).unwrap();
    assert!(cli(&d, &["init", "--owner", "Olive"], None)
        .status
        .success());
    let o = keysmith_tests::cli_with(
        &d,
        &[
            "--as", "Olive", "members", "add", "Max", "--role", "manager",
        ],
        None,
        &[("KEYSMITH_NEW_PASSPHRASE", "initial passphrase 1")],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let o = keysmith_tests::cli_with(
        &d,
        &["--as", "Max", "passphrase"],
        None,
        &[
            ("KEYSMITH_PASSPHRASE", "initial passphrase 1"),
            ("KEYSMITH_NEW_PASSPHRASE", keysmith_tests::PASSPHRASE),
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let o = cli(
        &d,
        &["--as", "Max", "keys", "create", "--name", "reports"],
        None,
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let key = stdout(&o).trim().to_owned();
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&d), 0o700);
    for f in [
        "keysmith.sqlite3",
        "keysmith.sqlite3-wal",
        "keysmith.sqlite3-shm",
    ] {
        let p = d.join(f);
        if p.exists() {
            assert_eq!(mode(&p), 0o600, "{f}");
        }
    }

    let db = d.join("keysmith.sqlite3");
    let o = std::process::Command::new("sqlite3")
        .args(["-bail", "-cmd", ".timeout 5000"])
        .arg(&db)
        .arg(
            "DROP INDEX members_one_owner; \
             UPDATE members SET role = 'admin' WHERE role = 'owner'; \
             UPDATE members SET role = 'owner' WHERE name = 'Max';",
        )
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let o = cli(&d, &["--as", "Max", "members", "list"], None);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("changed outside Keysmith"),
        "{}",
        stderr(&o)
    );
    let o = cli(&d, &["verify", "-"], Some(&key));
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    let o = cli(&d, &["audit", "verify"], None);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("changed outside Keysmith"),
        "{}",
        stderr(&o)
    );
}

/// Four commands of one member started at once, every passphrase right: each attempt is
/// counted before Argon2 runs, so the fourth may be told to wait a second. The CLI waits that
/// out by itself (saying so on stderr) and every command succeeds.
#[test]
fn four_commands_of_one_member_at_once_all_succeed() {
    require_secret_service();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    assert!(cli(d, &["init", "--owner", "Olive"], None).status.success());
    let outputs: Vec<std::process::Output> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..4)
            .map(|i| {
                scope.spawn(move || {
                    let name = format!("parallel {i}");
                    cli(
                        d,
                        &["--as", "Olive", "keys", "create", "--name", &name],
                        None,
                    )
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for o in &outputs {
        assert!(o.status.success(), "{}", stderr(o));
        assert!(stdout(o).trim().starts_with("ksk_"), "{}", stdout(o));
    }
    let waited = outputs
        .iter()
        .filter(|o| stderr(o).contains("trying again in"))
        .count();
    println!("{waited} of 4 commands waited out a sign-in delay");
    let list = cli(d, &["--as", "Olive", "keys", "list", "--json"], None);
    assert!(list.status.success(), "{}", stderr(&list));
    let keys: serde_json::Value = serde_json::from_slice(&list.stdout).unwrap();
    assert_eq!(keys.as_array().map(Vec::len), Some(4), "{keys}");
}

/// `keysmith scan`: the account's keys found in files and in git history are named (never
/// printed); a live one makes the exit code 1, a revoked or foreign one does not; binary,
/// missing and look-alike input is handled as documented.
#[test]
fn scan_names_the_live_keys_it_finds_and_never_prints_them() {
    use std::process::{Command, Stdio};
    require_secret_service();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("data");
    let work = dir.path().join("work");
    std::fs::create_dir_all(work.join("conf")).unwrap();
    let o = cli(&d, &["scan", work.to_str().unwrap()], None);
    assert_eq!(o.status.code(), Some(3), "no account: {}", stderr(&o));

    assert!(cli(&d, &["init", "--owner", "Olive"], None)
        .status
        .success());
    let create = |name: &str| {
        let o = cli(
            &d,
            &["--as", "Olive", "keys", "create", "--name", name],
            None,
        );
        assert!(o.status.success(), "{}", stderr(&o));
        stdout(&o).trim().to_owned()
    };
    let live = create("Billing export");
    let old = create("Old import");
    let foreign = keysmith_core::ApiKeySecret::generate().unwrap();
    let foreign = foreign.expose().to_owned();
    let list = cli(&d, &["--as", "Olive", "keys", "list", "--json"], None);
    let list: serde_json::Value = serde_json::from_str(&stdout(&list)).unwrap();
    let id_of = |name: &str| {
        list.as_array()
            .unwrap()
            .iter()
            .find(|k| k["name"] == name)
            .unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let revoke = |name: &str| {
        let id = id_of(name);
        let o = cli(
            &d,
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
    };
    revoke("Old import");

    let mut look_alike = live.clone();
    look_alike.replace_range(20..21, if &live[20..21] == "a" { "b" } else { "a" });
    std::fs::write(
        work.join("conf/.env"),
        format!("# settings\nDB=postgres://x\nBILLING_KEY={live}\n"),
    )
    .unwrap();
    std::fs::write(work.join("notes.md"), format!("old: `{old}`\n")).unwrap();
    std::fs::write(
        work.join("other.txt"),
        format!("\n\n{foreign}\n{look_alike}\n"),
    )
    .unwrap();
    let mut binary = b"\x00\x01ELF".to_vec();
    binary.extend_from_slice(live.as_bytes());
    std::fs::write(work.join("blob.bin"), &binary).unwrap();

    let git = |args: &[&str]| {
        let o = Command::new("git")
            .args(["-c", "user.name=T", "-c", "user.email=t@example.com"])
            .args(args)
            .current_dir(&work)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(o.status.success(), "git {args:?}: {}", stderr(&o));
    };
    // A key committed once and deleted since lives on in the history.
    git(&["init", "-q"]);
    std::fs::write(
        work.join("leak.sh"),
        format!("#!/bin/sh\n\ncurl -H 'Authorization: Bearer {live}'\n"),
    )
    .unwrap();
    git(&["add", "leak.sh"]);
    git(&["commit", "-qm", "add a script"]);
    git(&["rm", "-q", "leak.sh"]);
    git(&["commit", "-qm", "remove it"]);

    let w = work.to_str().unwrap();
    let o = cli(&d, &["scan", w], None);
    let (out, err) = (stdout(&o), stderr(&o));
    assert_eq!(o.status.code(), Some(1), "a live key found: {out}{err}");
    for key in [&live, &old, &foreign] {
        assert!(
            !out.contains(&key[4..]) && !err.contains(&key[4..]),
            "a key was printed"
        );
    }
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 4, "{out}");
    let env = work.join("conf/.env");
    assert!(
        lines.contains(
            &format!(
                "{}:3: LIVE key \"Billing export\" (ksk_{}…, active) by Olive: roll or revoke it",
                env.display(),
                &live[4..8]
            )
            .as_str()
        ),
        "{out}"
    );
    assert!(
        lines.iter().any(|l| l.starts_with(&format!(
            "{}:1: dead key \"Old import\"",
            work.join("notes.md").display()
        )) && l.contains("revoked")),
        "{out}"
    );
    assert!(
        lines.contains(
            &format!(
                "{}:3: a Keysmith key that is not this account's",
                work.join("other.txt").display()
            )
            .as_str()
        ),
        "{out}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains(":leak.sh:3: LIVE key \"Billing export\"")),
        "{out}"
    );
    assert!(
        err.contains("1 binary files skipped") && err.contains("4 keys found, 2 live"),
        "{err}"
    );

    // --json: the same findings, for tools.
    let o = cli(&d, &["scan", "--json", "--no-history", w], None);
    assert_eq!(o.status.code(), Some(1));
    let found: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let found = found.as_array().unwrap();
    assert_eq!(found.len(), 3, "--no-history leaves the deleted file out");
    assert_eq!(found[0]["line"], 3);
    assert_eq!(found[0]["live"], true);
    assert_eq!(found[0]["key"]["id"], id_of("Billing export"));
    assert!(found
        .iter()
        .any(|f| f["key"].is_null() && f["live"] == false));

    // A named binary file and a missing path cannot be scanned: exit 2, each named.
    let o = cli(
        &d,
        &[
            "scan",
            work.join("blob.bin").to_str().unwrap(),
            work.join("nope").to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("blob.bin: binary data") && stderr(&o).contains("nope: cannot read it"),
        "{}",
        stderr(&o)
    );

    // As a pre-commit hook: what is staged.
    std::fs::write(
        work.join("deploy.yml"),
        format!("steps:\n  - key: {live}\n"),
    )
    .unwrap();
    git(&["add", "deploy.yml"]);
    let hook = Command::new(keysmith_tests::built_binary("keysmith"))
        .args(["--data-dir", d.to_str().unwrap(), "scan", "--staged"])
        .current_dir(&work)
        .output()
        .unwrap();
    assert_eq!(hook.status.code(), Some(1), "{}", stderr(&hook));
    assert!(
        stdout(&hook).starts_with("(staged) deploy.yml:2: LIVE key \"Billing export\""),
        "{}",
        stdout(&hook)
    );

    // Once revoked, nothing found is live: exit 0.
    revoke("Billing export");
    let o = cli(&d, &["scan", w], None);
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    assert!(!stdout(&o).contains("LIVE"));
}
