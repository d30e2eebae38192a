//! The verifier behind a real nginx (Debian's package), with `auth_request` in front of a
//! small upstream, all on loopback: keys generated and revoked with the real CLI, the pepper
//! from the real Secret Service.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use keysmith_tests::{
    cli, cli_with, free_port, http, require_secret_service, start_verifier, wait_for_port, Running,
    PASSPHRASE,
};

const NGINX: &str = "/usr/sbin/nginx";

const POLICY: &str = r#"
[[allow]]
role = "owner"
methods = ["*"]
paths = ["/**"]

[[allow]]
role = "manager"
methods = ["GET"]
paths = ["/api/reports/**"]
"#;

/// The configuration the README documents, with this test's ports and folders, and a small
/// upstream that echoes what it was asked and who the verifier said was calling.
fn nginx_conf(dir: &Path, front: u16, upstream: u16, verifier: u16) -> String {
    let echo = format!(
        r#"
    server {{
        listen 127.0.0.1:{upstream};
        location / {{
            return 200 "upstream saw $request_method $request_uri for $http_x_keysmith_member\n";
        }}
    }}
"#
    );
    keysmith_tests::nginx_conf(dir, &[(front, upstream)], verifier, &echo)
}

fn out(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).trim().to_owned()
}

fn key_id(d: &Path, name: &str) -> String {
    let o = cli(d, &["--as", "Olive", "keys", "list", "--json"], None);
    let keys: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    keys.as_array()
        .unwrap()
        .iter()
        .find(|k| k["name"] == name)
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// Prints nginx's and the verifier's logs when the test fails (its folder goes with it).
struct LogsOnPanic(std::path::PathBuf);

impl Drop for LogsOnPanic {
    fn drop(&mut self) {
        if std::thread::panicking() {
            for name in ["error.log", "access.log", "verifier.log"] {
                let text = std::fs::read_to_string(self.0.join(name)).unwrap_or_default();
                eprintln!("---- {name}\n{text}");
            }
        }
    }
}

#[test]
fn nginx_accepts_and_refuses_by_policy_and_sees_revocations_at_once() {
    require_secret_service();
    assert!(
        Path::new(NGINX).is_file(),
        "nginx is missing: scripts/setup.sh installs Debian's nginx-light"
    );
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let _logs = LogsOnPanic(d.to_path_buf());

    // An Owner and a Manager, each with a key, through the real CLI.
    assert!(cli(d, &["init", "--owner", "Olive"], None).status.success());
    let initial = "initial passphrase 1";
    let o = cli_with(
        d,
        &[
            "--as", "Olive", "members", "add", "Mia", "--role", "manager",
        ],
        None,
        &[("KEYSMITH_NEW_PASSPHRASE", initial)],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = cli_with(
        d,
        &["--as", "Mia", "passphrase"],
        None,
        &[
            ("KEYSMITH_PASSPHRASE", initial),
            ("KEYSMITH_NEW_PASSPHRASE", PASSPHRASE),
        ],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let owner_key = out(&cli(
        d,
        &["--as", "Olive", "keys", "create", "--name", "ops"],
        None,
    ));
    let manager_key = out(&cli(
        d,
        &["--as", "Mia", "keys", "create", "--name", "reports"],
        None,
    ));
    assert_eq!(manager_key.len(), 53);
    // Keys limited to source networks: nginx and this test both run on 127.0.0.1.
    let here_key = out(&cli(
        d,
        &[
            "--as",
            "Olive",
            "keys",
            "create",
            "--name",
            "here only",
            "--allow-from",
            "127.0.0.0/8, ::1",
        ],
        None,
    ));
    // A key limited to 2 requests at once and 1 a minute.
    let metered_key = out(&cli(
        d,
        &[
            "--as",
            "Olive",
            "keys",
            "create",
            "--name",
            "metered",
            "--rate-limit",
            "1/min burst 2",
        ],
        None,
    ));
    let elsewhere_key = out(&cli(
        d,
        &[
            "--as",
            "Olive",
            "keys",
            "create",
            "--name",
            "elsewhere only",
            "--allow-from",
            "192.0.2.0/24",
        ],
        None,
    ));

    let policy = d.join("policy.toml");
    std::fs::write(&policy, POLICY).unwrap();
    let (front, upstream) = (free_port(), free_port());
    let log = std::fs::File::create(d.join("verifier.log")).unwrap();
    let (verifier, verifier_port) = start_verifier(
        d,
        &policy,
        &["--flush-secs", "1", "--trusted-proxy", "127.0.0.1"],
        &[("KEYSMITH_LOG", "debug")],
        log.into(),
    );

    let conf = d.join("nginx.conf");
    std::fs::write(&conf, nginx_conf(d, front, upstream, verifier_port)).unwrap();
    let mut nginx = Running(
        Command::new(NGINX)
            .arg("-c")
            .arg(&conf)
            .arg("-p")
            .arg(d)
            .arg("-e")
            .arg(d.join("error.log"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_for_port(front, &mut nginx.0, "nginx");

    let bearer = |k: &str| format!("Bearer {k}");
    // Allowed: the upstream answers, and hears who called.
    let r = http(
        front,
        "GET",
        "/api/orders?page=2",
        &[("Authorization", &bearer(&owner_key))],
    );
    assert_eq!(r.status, 200, "{r:?}");
    assert!(
        r.body
            .starts_with("upstream saw GET /api/orders?page=2 for "),
        "{r:?}"
    );
    let r = http(
        front,
        "GET",
        "/api/reports/2026",
        &[("X-Api-Key", &manager_key)],
    );
    assert_eq!(r.status, 200, "{r:?}");
    let basic =
        base64::engine::general_purpose::STANDARD.encode(format!("anystring:{manager_key}"));
    let r = http(
        front,
        "GET",
        "/api/reports/2026/11",
        &[("Authorization", &format!("Basic {basic}"))],
    );
    assert_eq!(r.status, 200, "{r:?}");

    // Refused by the policy: the Manager's role may not call these.
    for (method, path) in [("POST", "/api/reports/2026"), ("GET", "/api/orders")] {
        let r = http(front, method, path, &[("X-Api-Key", &manager_key)]);
        assert_eq!(r.status, 403, "{method} {path}: {r:?}");
        assert!(!r.body.contains("upstream saw"));
    }
    // Source networks: nginx replaces X-Forwarded-For with the client's address and the
    // verifier trusts nginx only, so a client cannot claim an address of its own (even one
    // connecting from the proxy's own address, as this test does).
    let r = http(front, "GET", "/api/orders", &[("X-Api-Key", &here_key)]);
    assert_eq!(r.status, 200, "{r:?}");
    for spoof in [None, Some("192.0.2.7"), Some("192.0.2.7, 192.0.2.8")] {
        let mut headers = vec![("X-Api-Key", elsewhere_key.as_str())];
        if let Some(claimed) = spoof {
            headers.push(("X-Forwarded-For", claimed));
        }
        let r = http(front, "GET", "/api/orders", &headers);
        assert_eq!(r.status, 403, "claimed {spoof:?}: {r:?}");
        assert!(!r.body.contains("upstream saw"));
    }
    let r = http(
        front,
        "GET",
        "/api/orders",
        &[("X-Api-Key", &here_key), ("X-Forwarded-For", "192.0.2.7")],
    );
    assert_eq!(
        r.status, 200,
        "a claimed address does not hide the real one: {r:?}"
    );

    // Rate limit: the burst passes, the next request reaches the client as 429 with
    // Retry-After (nginx's auth_request would make it 500 without the recipe's error_page).
    for i in 0..2 {
        let r = http(front, "GET", "/api/orders", &[("X-Api-Key", &metered_key)]);
        assert_eq!(r.status, 200, "request {i} of the burst: {r:?}");
    }
    let r = http(front, "GET", "/api/orders", &[("X-Api-Key", &metered_key)]);
    assert_eq!(r.status, 429, "{r:?}");
    let wait: u64 = r
        .headers
        .iter()
        .find(|(k, _)| k == "retry-after")
        .map(|(_, v)| v.parse().unwrap())
        .expect("Retry-After");
    assert!((1..=60).contains(&wait), "Retry-After: {wait}");
    assert!(!r.body.contains("upstream saw"));
    // Other keys are not limited by it.
    let r = http(front, "GET", "/api/orders", &[("X-Api-Key", &here_key)]);
    assert_eq!(r.status, 200, "{r:?}");

    // No key; a browser page (Origin); a malformed key.
    let r = http(front, "GET", "/api/orders", &[]);
    assert_eq!(r.status, 401, "{r:?}");
    let r = http(
        front,
        "GET",
        "/api/orders",
        &[
            ("Authorization", &bearer(&owner_key)),
            ("Origin", "https://app.example"),
        ],
    );
    assert_eq!(r.status, 403, "{r:?}");
    assert!(!r
        .headers
        .iter()
        .any(|(k, _)| k.starts_with("access-control-")));
    let r = http(front, "GET", "/api/orders", &[("X-Api-Key", "ksk_nope")]);
    assert_eq!(r.status, 401, "{r:?}");

    // Revoked in the database between two requests: the second is refused.
    let r = http(
        front,
        "GET",
        "/api/reports/x",
        &[("X-Api-Key", &manager_key)],
    );
    assert_eq!(r.status, 200, "{r:?}");
    let id = key_id(d, "reports");
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
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let r = http(
        front,
        "GET",
        "/api/reports/x",
        &[("X-Api-Key", &manager_key)],
    );
    assert_eq!(r.status, 401, "revoked key still accepted: {r:?}");

    // Last use reaches the database within a few seconds, without a write per request.
    let ops = key_id(d, "ops");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let o = cli(d, &["--as", "Olive", "keys", "list", "--json"], None);
        let keys: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        let used = keys
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["id"] == ops.as_str())
            .map(|k| !k["last_used_at"].is_null());
        if used == Some(true) {
            break;
        }
        assert!(Instant::now() < deadline, "last use never written");
        std::thread::sleep(Duration::from_millis(200));
    }

    // The logs name key ids, never a key.
    drop(nginx);
    drop(verifier);
    let logs = std::fs::read_to_string(d.join("verifier.log")).unwrap();
    assert!(logs.contains(&id), "the refusal names the key id");
    let elsewhere = key_id(d, "elsewhere only");
    assert!(
        logs.lines()
            .any(|l| l.contains(&elsewhere) && l.contains("may not be used from 127.0.0.1")),
        "the address refusal names the key id and the client address"
    );
    let metered = key_id(d, "metered");
    assert!(
        logs.lines()
            .any(|l| l.contains(&metered) && l.contains("over its rate limit of 1/min burst 2")),
        "the rate-limit refusal names the key id and the limit"
    );
    for k in [
        &owner_key,
        &manager_key,
        &here_key,
        &elsewhere_key,
        &metered_key,
    ] {
        assert!(!logs.contains(&k[4..]), "a key reached the verifier's log");
    }
}

#[test]
fn serve_verifier_refuses_a_bad_policy_and_a_readable_pepper_file() {
    use std::os::unix::fs::PermissionsExt;
    require_secret_service();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    assert!(cli(d, &["init", "--owner", "Olive"], None).status.success());
    let policy = d.join("policy.toml");
    std::fs::write(
        &policy,
        "[[allow]]\nrole = \"owner\"\nmethods = [\"GET\"]\npaths = [\"/\"]\n\n[[allow]]\nrole = \"boss\"\nmethods = [\"GET\"]\npaths = [\"/\"]\n",
    )
    .unwrap();
    let o = cli(
        d,
        &["serve-verifier", "--policy", policy.to_str().unwrap()],
        None,
    );
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("policy.toml:7:") && err.contains("unknown role"),
        "{err}"
    );

    // Only the Owner exports the pepper; the file is 0600; readable by others it is refused.
    let pepper = d.join("pepper");
    let o = cli(
        d,
        &[
            "--as",
            "Olive",
            "export-pepper",
            "--to",
            pepper.to_str().unwrap(),
        ],
        None,
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let mode = std::fs::metadata(&pepper).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    std::fs::set_permissions(&pepper, std::fs::Permissions::from_mode(0o640)).unwrap();
    std::fs::write(&policy, POLICY).unwrap();
    let o = cli(
        d,
        &[
            "serve-verifier",
            "--policy",
            policy.to_str().unwrap(),
            "--pepper-file",
            pepper.to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("chmod 600"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );

    // A pepper of another account is refused at start-up.
    let stranger = d.join("stranger-pepper");
    std::fs::write(&stranger, format!("{}\n", "ab".repeat(32))).unwrap();
    std::fs::set_permissions(&stranger, std::fs::Permissions::from_mode(0o600)).unwrap();
    let o = cli(
        d,
        &[
            "serve-verifier",
            "--policy",
            policy.to_str().unwrap(),
            "--pepper-file",
            stranger.to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("does not belong"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );

    // With the file at 0600 the verifier runs without any keyring (no session bus at all).
    std::fs::set_permissions(&pepper, std::fs::Permissions::from_mode(0o600)).unwrap();
    let key = out(&cli(
        d,
        &["--as", "Olive", "keys", "create", "--name", "headless"],
        None,
    ));
    // No session bus at all: the verifier must not need the keyring.
    let (_verifier, port) = start_verifier(
        d,
        &policy,
        &["--pepper-file", pepper.to_str().unwrap()],
        &[("DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent")],
        Stdio::null(),
    );
    let r = http(
        port,
        "GET",
        "/auth",
        &[
            ("X-Api-Key", &key),
            ("X-Forwarded-Method", "GET"),
            ("X-Forwarded-Uri", "/anything"),
        ],
    );
    assert_eq!(r.status, 204, "{r:?}");
    assert_eq!(r.header("x-keysmith-role"), Some("owner"));
}
