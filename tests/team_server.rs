//! The team server and a verifier replica as shipped: the `keysmith` binary on a throwaway
//! PostgreSQL cluster and the real keyring. `init` on the database, two `serve` instances
//! (one HTTPS with a certificate, one plain HTTP on loopback) sharing sessions, a
//! `serve-verifier` replica that allows a key created through one instance and refuses it
//! once revoked through the other, and the refusals of a server that cannot serve.
//!
//! PostgreSQL only: `scripts/test.sh` runs it with `--ignored` in its PostgreSQL pass.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use keysmith_tests::{
    built_binary, cli_with, free_port, http, require_secret_service, wait_for_port, Running,
    PASSPHRASE,
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

fn serve(url: &str, args: &[&str], port: u16) -> Running {
    let mut child = Running(
        Command::new(built_binary("keysmith"))
            .args(["--database-url", url, "serve", "--listen"])
            .arg(format!("127.0.0.1:{port}"))
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap(),
    );
    wait_for_port(port, &mut child.0, "keysmith serve");
    child
}

#[test]
#[ignore = "needs PostgreSQL: run by scripts/test.sh's PostgreSQL pass"]
fn two_server_instances_and_a_replica_on_one_postgres_database() {
    require_secret_service();
    let server = std::env::var("KEYSMITH_TEST_DATABASE_URL").expect("scripts/with-postgres.sh");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let url = rt
        .block_on(keysmith_core::store::create_postgres_database(
            &server,
            "keysmith_team_server",
        ))
        .unwrap();
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

    // A certificate for localhost, as an operator would make one.
    let (cert, key) = (w.join("cert.pem"), w.join("key.pem"));
    let ok = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
        ])
        .args(["-nodes", "-days", "1", "-subj", "/CN=localhost"])
        .args([
            "-addext",
            "subjectAltName=DNS:localhost,IP:127.0.0.1",
            "-keyout",
        ])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(ok.success());
    let tls_port = free_port();
    let _a = serve(
        &url,
        &[
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
        ],
        tls_port,
    );
    let http_port = free_port();
    let _b = serve(&url, &[], http_port);
    let a = format!("https://127.0.0.1:{tls_port}");
    let b = format!("http://127.0.0.1:{http_port}");

    let (status, info) = curl(&format!("{a}/v1/info"), "GET", None, None, Some(&cert));
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
        Some(&cert),
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

    // A verifier replica on the same database.
    let policy = w.join("policy.toml");
    std::fs::write(
        &policy,
        "[[allow]]\nrole = \"owner\"\nmethods = [\"*\"]\npaths = [\"/**\"]\n",
    )
    .unwrap();
    let vport = free_port();
    let mut replica = Running(
        Command::new(built_binary("keysmith"))
            .args(["--database-url", &url, "serve-verifier", "--listen"])
            .arg(format!("127.0.0.1:{vport}"))
            .arg("--policy")
            .arg(&policy)
            .args(["--max-staleness", "500ms"])
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap(),
    );
    wait_for_port(vport, &mut replica.0, "keysmith serve-verifier");
    let bearer = format!("Bearer {api_key}");
    let check = || {
        http(
            vport,
            "GET",
            "/",
            &[
                ("Authorization", bearer.as_str()),
                ("X-Original-Method", "GET"),
                ("X-Original-URI", "/v1/invoices"),
            ],
        )
        .status
    };
    assert_eq!(check(), 204);

    let (status, revoked) = curl(
        &format!("{a}/v1/keys/{key_id}/revoke"),
        "POST",
        Some(&token),
        Some(serde_json::json!({"confirmation": "REVOKE"})),
        Some(&cert),
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
        Some(&cert),
    );
    assert_eq!((status, v["code"].as_str()), (401, Some("session_expired")));
}
