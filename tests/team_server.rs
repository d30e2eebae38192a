//! The team server and a verifier replica as shipped: the `keysmith` binary on a throwaway
//! PostgreSQL cluster and the real keyring. `init` on the database, two `serve` instances
//! (one HTTPS with a certificate, one plain HTTP on loopback) sharing sessions, a
//! `serve-verifier` replica that allows a key created through one instance and refuses it
//! once revoked through the other, and the refusals of a server that cannot serve.
//!
//! PostgreSQL only: `scripts/test.sh` runs it with `--ignored` in its PostgreSQL pass.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use keysmith_tests::{
    built_binary, cli_with, forward_auth_status, free_port, require_secret_service, serve_team,
    serve_team_https, start_replica, team_database, wait_for_port, Running, PASSPHRASE,
};

/// One request with curl: status and JSON body (`Null` when empty). `tls` names the CA file.
fn curl(
    url: &str,
    method: &str,
    token: Option<&str>,
    body: Option<serde_json::Value>,
    tls: Option<&Path>,
) -> (u16, serde_json::Value) {
    let mut cmd = Command::new("curl");
    cmd.args(["-sS", "-X", method, "-w", "\n%{http_code}"]);
    if let Some(ca) = tls {
        cmd.arg("--cacert").arg(ca);
    }
    if let Some(t) = token {
        cmd.args(["-H", &format!("Authorization: Bearer {t}")]);
    }
    if let Some(b) = body {
        cmd.args(["-H", "Content-Type: application/json", "--data-binary"]);
        cmd.arg(b.to_string());
    }
    let out = cmd.arg(url).output().expect("curl (Debian package curl)");
    assert!(
        out.status.success(),
        "curl {url}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, status) = text.rsplit_once('\n').unwrap();
    let value = if body.is_empty() {
        serde_json::Value::Null
    } else {
        serde_json::from_str(body).unwrap_or_else(|_| panic!("not JSON: {body}"))
    };
    (status.parse().unwrap(), value)
}

#[test]
#[ignore = "needs PostgreSQL: run by scripts/test.sh's PostgreSQL pass"]
fn two_server_instances_and_a_replica_on_one_postgres_database() {
    require_secret_service();
    let url = tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(team_database("keysmith_team_server"));
    let work = tempfile::tempdir().unwrap();
    let w = work.path();

    // A server on a database without an account refuses to start, and says why.
    let port = free_port();
    let o = Command::new(built_binary("keysmith"))
        .args(["--database-url", &url, "serve", "--listen"])
        .arg(format!("127.0.0.1:{port}"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("No Keysmith account"));
    // And `serve` without a database names the option.
    let o = Command::new(built_binary("keysmith"))
        .args(["serve"])
        .env_remove("KEYSMITH_DATABASE_URL")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--database-url"));

    let o = cli_with(
        w,
        &["--database-url", &url, "init", "--owner", "Olive"],
        None,
        &[],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));

    // The verifiers' policy, with a scope: instance b offers it (`serve --policy`), a does not.
    let policy = w.join("policy.toml");
    std::fs::write(
        &policy,
        "[[allow]]\nrole = \"owner\"\nmethods = [\"*\"]\npaths = [\"/**\"]\n\n\
         [[scope]]\nname = \"reports:read\"\nroles = [\"owner\"]\nmethods = [\"GET\"]\n\
         paths = [\"/v1/reports/**\"]\n",
    )
    .unwrap();
    let (_a, tls_port, ca) = serve_team_https(&url, w);
    let http_port = free_port();
    let _b = serve_team(&url, &["--policy", policy.to_str().unwrap()], http_port);
    let a = format!("https://127.0.0.1:{tls_port}");
    let b = format!("http://127.0.0.1:{http_port}");

    let (status, info) = curl(&format!("{a}/v1/info"), "GET", None, None, Some(&ca));
    assert_eq!((status, info["product"].as_str()), (200, Some("keysmith")));
    // Plain HTTP to the HTTPS port gets no API answer.
    let plain = Command::new("curl")
        .args(["-sS", "-o", "/dev/null", "-w", "%{http_code}"])
        .arg(format!("http://127.0.0.1:{tls_port}/v1/info"))
        .output()
        .unwrap();
    assert_ne!(String::from_utf8_lossy(&plain.stdout), "200");

    // Signed in on one instance, the session works on the other (sessions live in the store).
    let (status, signed) = curl(
        &format!("{a}/v1/sessions"),
        "POST",
        None,
        Some(serde_json::json!({"name": "Olive", "passphrase": PASSPHRASE})),
        Some(&ca),
    );
    assert_eq!(status, 200, "{signed}");
    let token = signed["token"].as_str().unwrap().to_owned();
    let (status, made) = curl(
        &format!("{b}/v1/keys"),
        "POST",
        Some(&token),
        Some(serde_json::json!({"name": "Billing"})),
        None,
    );
    assert_eq!(status, 201, "{made}");
    let api_key = made["secret"].as_str().unwrap().to_owned();
    let key_id = made["key"]["id"].as_str().unwrap().to_owned();

    // Scopes come from each instance's --policy.
    let scope_names = |base: &str, ca: Option<&Path>| {
        let (status, list) = curl(&format!("{base}/v1/scopes"), "GET", Some(&token), None, ca);
        assert_eq!(status, 200, "{list}");
        list.as_array()
            .unwrap()
            .iter()
            .map(|s| s["name"].as_str().unwrap().to_owned())
            .collect::<Vec<_>>()
    };
    assert_eq!(scope_names(&b, None), ["read-only", "reports:read"]);
    assert_eq!(scope_names(&a, Some(&ca)), ["read-only"]);
    let scoped = serde_json::json!({"name": "Dashboard", "scopes": ["reports:read"]});
    let (status, made) = curl(
        &format!("{b}/v1/keys"),
        "POST",
        Some(&token),
        Some(scoped.clone()),
        None,
    );
    assert_eq!(status, 201, "{made}");
    assert_eq!(made["key"]["scopes"], serde_json::json!(["reports:read"]));
    let (status, refused) = curl(
        &format!("{a}/v1/keys"),
        "POST",
        Some(&token),
        Some(scoped),
        Some(&ca),
    );
    assert_eq!(
        (status, refused["code"].as_str()),
        (422, Some("invalid_scope")),
        "{refused}"
    );

    // A verifier replica on the same database.
    let (_replica, vport) = start_replica(&url, &policy);
    let check = || forward_auth_status(vport, &api_key);
    assert_eq!(check(), 204);
    // The replica's count reaches the store within its flush period; either instance reads it.
    let start = std::time::Instant::now();
    loop {
        let (status, usage) = curl(
            &format!("{a}/v1/keys/{key_id}/usage?days=2"),
            "GET",
            Some(&token),
            None,
            Some(&ca),
        );
        assert_eq!(status, 200, "{usage}");
        if usage["total"]["allowed"] == 1 {
            assert!(usage["last_used_at"].is_i64(), "{usage}");
            assert_eq!(usage["last_used_from"], "127.0.0.1", "{usage}");
            break;
        }
        assert!(
            start.elapsed() < std::time::Duration::from_secs(15),
            "{usage}"
        );
        std::thread::sleep(std::time::Duration::from_millis(250));
    }

    let (status, revoked) = curl(
        &format!("{a}/v1/keys/{key_id}/revoke"),
        "POST",
        Some(&token),
        Some(serde_json::json!({"confirmation": "REVOKE"})),
        Some(&ca),
    );
    assert_eq!(status, 200, "{revoked}");
    assert_eq!(revoked["status"], "revoked");
    let returned = Instant::now();
    loop {
        match check() {
            401 => break,
            204 => assert!(
                returned.elapsed() < Duration::from_millis(500),
                "the replica allowed a revoked key {:?} after the revoke returned",
                returned.elapsed()
            ),
            other => panic!("the replica answered {other}"),
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    eprintln!(
        "the replica refused the revoked key {:?} after the revoke returned",
        returned.elapsed()
    );

    // The CLI on a member's machine: `--server` with the team's CA.
    let remote = |args: &[&str], env: &[(&str, &str)]| {
        let mut full = vec!["--server", a.as_str(), "--server-ca", ca.to_str().unwrap()];
        full.extend_from_slice(args);
        cli_with(w, &full, None, env)
    };
    let o = remote(
        &["--as", "Olive", "keys", "create", "--name", "From the CLI"],
        &[],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let cli_key = String::from_utf8_lossy(&o.stdout).trim().to_owned();
    assert!(cli_key.starts_with("ksk_") && cli_key.len() == 53);
    let o = remote(&["--as", "Olive", "keys", "list", "--json"], &[]);
    let listed: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 3, "{listed}");
    // `keys usage` through the server: the Billing key's one use.
    let o = remote(
        &["--as", "Olive", "keys", "usage", &key_id, "--days", "2"],
        &[],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains(": 1 accepted, "),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
    assert!(!String::from_utf8_lossy(&o.stdout).contains(&cli_key[4..]));
    let o = remote(
        &[
            "--as", "Olive", "members", "add", "Nadia", "--role", "manager",
        ],
        &[("KEYSMITH_NEW_PASSPHRASE", "nadia's first passphrase")],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // Nadia must change the initial passphrase first, then works normally.
    let o = remote(
        &["--as", "Nadia", "keys", "list"],
        &[("KEYSMITH_PASSPHRASE", "nadia's first passphrase")],
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("must change the initial passphrase"));
    let o = remote(
        &["--as", "Nadia", "passphrase"],
        &[
            ("KEYSMITH_PASSPHRASE", "nadia's first passphrase"),
            ("KEYSMITH_NEW_PASSPHRASE", "nadia's own passphrase"),
        ],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = remote(
        &["--as", "Nadia", "keys", "list", "--json"],
        &[("KEYSMITH_PASSPHRASE", "nadia's own passphrase")],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // A wrong passphrase, a wrong URL, plain HTTP to another machine, a URL that is not
    // Keysmith: each a clear error, exit 1 or 2.
    let o = remote(
        &["--as", "Olive", "keys", "list"],
        &[("KEYSMITH_PASSPHRASE", "wrong")],
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("wrong passphrase"));
    for (url, says) in [
        (
            format!("https://127.0.0.1:{}", free_port()),
            "could not be reached",
        ),
        ("http://192.0.2.1:9180".to_owned(), "plain HTTP"),
        (
            format!("http://127.0.0.1:{vport}"),
            "not a Keysmith team server",
        ),
    ] {
        let o = cli_with(
            w,
            &["--server", &url, "--as", "Olive", "keys", "list"],
            None,
            &[],
        );
        assert_eq!(o.status.code(), Some(1), "{url}");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains(says), "{url}: {err}");
    }
    let o = cli_with(w, &["--server", &a, "init", "--owner", "X"], None, &[]);
    assert_eq!(o.status.code(), Some(2));

    // Signing out on one instance ends the session on both.
    let (status, _) = curl(
        &format!("{b}/v1/sessions/current"),
        "DELETE",
        Some(&token),
        None,
        None,
    );
    assert_eq!(status, 204);
    let (status, v) = curl(
        &format!("{a}/v1/keys"),
        "GET",
        Some(&token),
        None,
        Some(&ca),
    );
    assert_eq!((status, v["code"].as_str()), (401, Some("session_expired")));
}

#[test]
#[ignore = "needs PostgreSQL: run by scripts/test.sh's PostgreSQL pass"]
fn a_one_computer_account_moves_to_postgres_and_its_keys_keep_working() {
    require_secret_service();
    let url = tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(team_database("keysmith_moved"));
    let work = tempfile::tempdir().unwrap();
    let d = work.path();
    let ok = |o: std::process::Output| {
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    ok(cli_with(d, &["init", "--owner", "Olive"], None, &[]));
    let key = ok(cli_with(
        d,
        &["--as", "Olive", "keys", "create", "--name", "CRM"],
        None,
        &[],
    ));
    let key = key.trim();
    let o = cli_with(d, &["--as", "Olive", "migrate", "--to", &url], None, &[]);
    let said = ok(o);
    assert!(said.contains("Moved 1 members, 1 keys"), "{said}");
    assert!(
        !said.contains(&url[url.find(':').unwrap() + 3..url.find('@').unwrap()]),
        "the URL's password was printed"
    );
    // The key verifies against the team's database, with this host's keyring.
    let o = cli_with(d, &["--database-url", &url, "verify", key], None, &[]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let o = cli_with(d, &["--database-url", &url, "audit", "verify"], None, &[]);
    assert!(ok(o).starts_with("intact"));
    let o = cli_with(
        d,
        &[
            "--database-url",
            &url,
            "--as",
            "Olive",
            "audit",
            "list",
            "--json",
        ],
        None,
        &[],
    );
    let entries: serde_json::Value = serde_json::from_str(&ok(o)).unwrap();
    assert!(entries
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["action"] == "account_moved"));
    // The team server has written since (a sign-in): this computer's copy now says where the
    // account went, for a second move and for any other command.
    for args in [
        vec!["--as", "Olive", "migrate", "--to", url.as_str()],
        vec!["--as", "Olive", "keys", "create", "--name", "here"],
        vec!["verify", key],
    ] {
        let o = cli_with(d, &args, None, &[]);
        assert_ne!(o.status.code(), Some(0), "{args:?}");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            err.contains("was moved to the team server"),
            "{args:?}: {err}"
        );
    }
}

/// The sequence number of the anchor kept in a secrets directory (`v1 KEYED_FROM SEQ HASH`).
fn anchor_seq(dir: &Path) -> i64 {
    let entry = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("audit-head.")
        })
        .expect("an anchor file");
    let text = std::fs::read_to_string(entry).unwrap();
    text.split(' ').nth(2).unwrap().parse().unwrap()
}

#[test]
#[ignore = "needs PostgreSQL: run by scripts/test.sh's PostgreSQL pass"]
fn a_second_server_host_runs_on_exported_secrets_without_a_keyring() {
    require_secret_service();
    let url = tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(team_database("keysmith_two_hosts"));
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let run = |args: &[&str], env: &[(&str, &str)]| {
        let mut full = vec!["--database-url", url.as_str()];
        full.extend_from_slice(args);
        cli_with(w, &full, None, env)
    };
    let ok = |o: std::process::Output| {
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    };
    ok(run(&["init", "--owner", "Olive"], &[]));
    ok(run(
        &["--as", "Olive", "members", "add", "Ada", "--role", "admin"],
        &[("KEYSMITH_NEW_PASSPHRASE", "ada's first passphrase")],
    ));
    ok(run(
        &["--as", "Ada", "passphrase"],
        &[
            ("KEYSMITH_PASSPHRASE", "ada's first passphrase"),
            ("KEYSMITH_NEW_PASSPHRASE", "ada's own passphrase"),
        ],
    ));

    // Only the Owner exports, and only into a directory that does not exist yet.
    let secrets = w.join("host-b-secrets");
    let o = run(
        &[
            "--as",
            "Ada",
            "export-server-secrets",
            "--to",
            secrets.to_str().unwrap(),
        ],
        &[("KEYSMITH_PASSPHRASE", "ada's own passphrase")],
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("only the Owner"));
    assert!(!secrets.exists());
    let o = cli_with(
        w,
        &[
            "--as",
            "Olive",
            "export-server-secrets",
            "--to",
            secrets.to_str().unwrap(),
        ],
        None,
        &[],
    );
    assert_eq!(
        o.status.code(),
        Some(2),
        "without --database-url it names the option"
    );
    assert!(!secrets.exists());
    ok(run(
        &[
            "--as",
            "Olive",
            "export-server-secrets",
            "--to",
            secrets.to_str().unwrap(),
        ],
        &[],
    ));
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&secrets), 0o700);
        let mut names = Vec::new();
        for e in std::fs::read_dir(&secrets).unwrap() {
            let p = e.unwrap().path();
            assert_eq!(mode(&p), 0o600, "{}", p.display());
            names.push(
                p.file_name()
                    .unwrap()
                    .to_string_lossy()
                    .split('.')
                    .next()
                    .unwrap()
                    .to_owned(),
            );
        }
        names.sort();
        assert_eq!(names, ["audit-head", "audit-key", "pepper"]);
    }
    let exported_at = anchor_seq(&secrets);
    let o = run(
        &[
            "--as",
            "Olive",
            "export-server-secrets",
            "--to",
            secrets.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(o.status.code(), Some(1), "an existing directory is refused");
    assert_eq!(anchor_seq(&secrets), exported_at, "and left as it was");

    // Host B: no session bus at all, so no keyring; its secrets come from the directory.
    let b_port = free_port();
    let mut b = Running(
        Command::new(built_binary("keysmith"))
            .args(["--database-url", &url, "serve", "--listen"])
            .arg(format!("127.0.0.1:{b_port}"))
            .arg("--secrets-dir")
            .arg(&secrets)
            .env_remove("DBUS_SESSION_BUS_ADDRESS")
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_for_port(b_port, &mut b.0, "keysmith serve --secrets-dir");
    let a_port = free_port();
    let _a = serve_team(&url, &[], a_port);
    let hosts = [
        format!("http://127.0.0.1:{a_port}"),
        format!("http://127.0.0.1:{b_port}"),
    ];
    let (status, signed) = curl(
        &format!("{}/v1/sessions", hosts[1]),
        "POST",
        None,
        Some(serde_json::json!({"name": "Olive", "passphrase": PASSPHRASE})),
        None,
    );
    assert_eq!(status, 200, "{signed}");
    let token = signed["token"].as_str().unwrap().to_owned();
    // Writes through both hosts, interleaved: one chain, each host's anchor following it.
    let mut last_b_key = String::new();
    for i in 0..6 {
        let host = &hosts[i % 2];
        let (status, made) = curl(
            &format!("{host}/v1/keys"),
            "POST",
            Some(&token),
            Some(serde_json::json!({"name": format!("Key {i}")})),
            None,
        );
        assert_eq!(status, 201, "{host}: {made}");
        if i % 2 == 1 {
            last_b_key = made["key"]["id"].as_str().unwrap().to_owned();
        }
    }
    let (status, revoked) = curl(
        &format!("{}/v1/keys/{last_b_key}/revoke", hosts[1]),
        "POST",
        Some(&token),
        Some(serde_json::json!({"confirmation": "REVOKE"})),
        None,
    );
    assert_eq!(status, 200, "{revoked}");
    assert!(
        anchor_seq(&secrets) > exported_at,
        "host B's anchor follows the commits it makes"
    );
    let o = run(&["audit", "verify"], &[]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stdout).starts_with("intact"));

    // A secrets directory open to others is refused, and the message says what to do.
    drop(b);
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&secrets, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let o = Command::new(built_binary("keysmith"))
        .args(["--database-url", &url, "serve", "--listen"])
        .arg(format!("127.0.0.1:{}", free_port()))
        .arg("--secrets-dir")
        .arg(&secrets)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("chmod 700"));
}
