//! The Debian package, installed on a clean Debian 12 root (issue 12). `scripts/test-package.sh`
//! makes the root with mmdebstrap, installs the .deb there with apt (its dependencies from
//! Debian), starts a session in it (D-Bus, an unlocked gnome-keyring, Xvfb, tauri-driver) and
//! runs this test with `KEYSMITH_PACKAGE_ROOT` and `KEYSMITH_PACKAGE_DRIVER` set. It checks:
//!
//! - what the package put where a user and an admin look for it (menu entry, icon, both
//!   programs on the PATH, the verifier's unit, disabled, and its configuration);
//! - the installed app, launched from `/usr/bin` over WebDriver: first run, two keys, one
//!   revoked, each checked with the installed `keysmith verify`;
//! - the verifier started with the unit's own command line as an unprivileged user, with the
//!   installed policy and a pepper file, answering nginx-style checks;
//! - `apt-get purge` removes the programs and the configuration the package made, but the
//!   user's account (database and keyring entries) survives: after installing again, the
//!   kept key still verifies and the revoked one is still revoked.
//! - The .rpm (`KEYSMITH_PACKAGE_RPM`), installed in its place with Debian's own `rpm`: the
//!   same files where the .deb put them, every library its `Requires` names by soname found,
//!   the app opening the same account, and `rpm --erase` taking back what the package made
//!   but not the user's data. (No RPM distribution's archive is reachable from here, so the
//!   root stays Debian's and rpm installs without resolving dependencies; `ldd` checks that
//!   what the programs load is there.)
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use keysmith_tests::ui::{by_id, focused_id, gone, rows, unlock};
use keysmith_tests::{forward_auth_status, free_port, install_crypto_provider, PASSPHRASE};
use thirtyfour::prelude::*;

/// The root and the session `scripts/test-package.sh` prepared.
struct Installed {
    root: PathBuf,
    /// The session's variables (D-Bus address, XDG folders, DISPLAY), from `/tmp/session.env`.
    session: HashMap<String, String>,
}

impl Installed {
    fn from_env() -> Installed {
        let root = PathBuf::from(
            std::env::var_os("KEYSMITH_PACKAGE_ROOT")
                .expect("KEYSMITH_PACKAGE_ROOT: run through scripts/test-package.sh"),
        );
        let text = std::fs::read_to_string(root.join("tmp/session.env"))
            .expect("the session in the root wrote /tmp/session.env");
        let session = text
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        Installed { root, session }
    }

    /// A path inside the root, as the host sees it.
    fn path(&self, inside: &str) -> PathBuf {
        self.root.join(inside.trim_start_matches('/'))
    }

    /// Runs `args` inside the root (chroot) as root, in the session; `stdin` is written to
    /// its standard input.
    fn run(&self, args: &[&str], stdin: Option<&str>) -> Output {
        let mut cmd = Command::new("chroot");
        cmd.arg(&self.root)
            .arg("env")
            .arg("-i")
            .arg("HOME=/root")
            .arg("LANG=C.UTF-8")
            .arg("DEBIAN_FRONTEND=noninteractive")
            .arg("PATH=/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
            .args(self.session.iter().map(|(k, v)| format!("{k}={v}")))
            .args(args)
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("chroot (the test runs as root)");
        if let Some(text) = stdin {
            child
                .stdin
                .take()
                .unwrap()
                .write_all(text.as_bytes())
                .unwrap();
        }
        child.wait_with_output().unwrap()
    }

    /// Runs `args` in the root and panics, with its output, unless it succeeds.
    fn ok(&self, args: &[&str]) -> String {
        let o = self.run(args, None);
        assert!(o.status.success(), "{args:?}: {}", text(&o));
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    /// `keysmith verify` of `key` (from standard input) with the installed CLI: its exit code
    /// and its message.
    fn verify(&self, key: &str) -> (Option<i32>, String) {
        let o = self.run(&["keysmith", "verify"], Some(key));
        (o.status.code(), text(&o))
    }

    /// Panics unless the programs, the menu entry, the unit, the policy the package made and
    /// `also` are all gone after `removal`.
    fn all_gone(&self, removal: &str, also: &[&str]) {
        let made = [
            "/usr/bin/keysmith-app",
            "/usr/bin/keysmith",
            "/usr/share/applications/Keysmith.desktop",
            "/usr/lib/systemd/system/keysmith-verifier.service",
            "/etc/keysmith/policy.toml",
        ];
        for path in made.iter().chain(also) {
            assert!(!self.path(path).exists(), "{path} outlived {removal}");
        }
    }

    /// The user's data folder (the app's and the CLI's default, in the session's
    /// XDG_DATA_HOME).
    fn data_dir(&self) -> PathBuf {
        self.path(&format!("{}/keysmith", self.session["XDG_DATA_HOME"]))
    }
}

/// Whether a process of the installed app (`/usr/bin/keysmith-app` in `root`) still runs.
fn app_running(root: &Path) -> bool {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return false;
    };
    entries.flatten().any(|entry| {
        let dir = entry.path();
        std::fs::read_link(dir.join("root")).is_ok_and(|r| r == root)
            && std::fs::read_to_string(dir.join("comm")).is_ok_and(|c| c.trim() == "keysmith-app")
    })
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs the Debian root scripts/test-package.sh prepares"]
async fn the_installed_package_works_and_removing_it_keeps_the_users_data() {
    let pkg = Installed::from_env();
    let rpm = std::env::var("KEYSMITH_PACKAGE_RPM")
        .expect("KEYSMITH_PACKAGE_RPM: run through scripts/test-package.sh");
    what_the_package_installed(&pkg);
    let status = pkg.ok(&["dpkg-query", "-W", "-f", "${Version} ${Status}", "keysmith"]);
    assert_eq!(
        status,
        format!("{} install ok installed", env!("CARGO_PKG_VERSION"))
    );

    install_crypto_provider();
    let driver_url = std::env::var("KEYSMITH_PACKAGE_DRIVER").expect("KEYSMITH_PACKAGE_DRIVER");
    let mut caps = thirtyfour::Capabilities::new();
    caps.set(
        "tauri:options",
        serde_json::json!({ "application": "/usr/bin/keysmith-app" }),
    )
    .unwrap();
    let driver = WebDriver::new(driver_url.clone(), caps.clone())
        .await
        .expect("a WebDriver session with the installed app");
    let result = flows(&driver, &pkg).await;
    let _ = driver.quit().await;
    app_exited(&pkg);
    let (revoked, kept) = result;

    the_verifier_runs_as_its_unit_says(&pkg, &revoked, &kept);

    // Purge: the programs, the menu entry, the unit and the configuration the package made
    // go; the user's account does not.
    let db = pkg.data_dir().join("keysmith.sqlite3");
    assert!(
        db.is_file(),
        "the app's database is not at {}",
        db.display()
    );
    let keyring_files = pkg.path(&format!("{}/keyrings", pkg.session["XDG_DATA_HOME"]));
    pkg.ok(&["apt-get", "purge", "-y", "-q", "keysmith"]);
    pkg.all_gone("purge", &["/etc/keysmith/verifier.env"]);
    // The admin's pepper file is theirs: purge leaves it (and so /etc/keysmith).
    assert!(pkg.path("/etc/keysmith/pepper").is_file());
    assert!(db.is_file(), "purge removed the user's database");
    assert!(
        std::fs::read_dir(&keyring_files).unwrap().next().is_some(),
        "purge emptied the user's keyring"
    );

    // Installed again, the same account answers as before.
    pkg.ok(&["apt-get", "install", "-y", "-q", "/tmp/keysmith.deb"]);
    assert_eq!(
        pkg.verify(&kept).0,
        Some(0),
        "the kept key after reinstalling"
    );
    let (code, message) = pkg.verify(&revoked);
    assert_eq!(code, Some(1), "{message}");
    assert!(message.contains("revoked"), "{message}");

    the_rpm_does_the_same(&pkg, &rpm, driver_url, caps, &revoked, &kept).await;
}

/// The app writes its last changes back into the database file as it exits (SQLite's WAL):
/// waits (up to 20 s) for the installed app to be gone before anything reads the file as a
/// copy.
fn app_exited(pkg: &Installed) {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while app_running(&pkg.root) {
        assert!(
            std::time::Instant::now() < deadline,
            "the installed app did not exit"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The .rpm at `rpm` (inside the root) in place of the .deb, over the account the .deb's run
/// left: the same files, the same account in the app and the CLI, and an erase that keeps the
/// user's data and an admin's edited configuration.
async fn the_rpm_does_the_same(
    pkg: &Installed,
    rpm: &str,
    driver_url: String,
    caps: thirtyfour::Capabilities,
    revoked: &str,
    kept: &str,
) {
    pkg.ok(&["apt-get", "purge", "-y", "-q", "keysmith"]);
    pkg.ok(&["rpm", "--install", "--nodeps", rpm]);
    let installed = pkg.ok(&[
        "rpm",
        "--query",
        "--queryformat",
        "%{NAME} %{VERSION}",
        "keysmith",
    ]);
    assert_eq!(installed, format!("keysmith {}", env!("CARGO_PKG_VERSION")));
    what_the_package_installed(pkg);

    // The package names its libraries by soname (rpm's automatic form, `libX.so.N()(64bit)`),
    // which any RPM distribution resolves; each is one the programs load, and all are there.
    let requires = pkg.ok(&["rpm", "--query", "--requires", "keysmith"]);
    let sonames: Vec<&str> = requires
        .lines()
        .filter_map(|l| l.trim().strip_suffix("()(64bit)"))
        .collect();
    for library in ["libwebkit2gtk-4.1.so.0", "libgtk-3.so.0", "libdbus-1.so.3"] {
        assert!(
            sonames.contains(&library),
            "{library} not required:\n{requires}"
        );
    }
    let loaded = pkg.ok(&["ldd", "/usr/bin/keysmith-app", "/usr/bin/keysmith"]);
    assert!(!loaded.contains("not found"), "{loaded}");
    for soname in &sonames {
        assert!(
            loaded.contains(&format!("{soname} => /")),
            "{soname} is required but not loaded:\n{loaded}"
        );
    }

    // The installed app opens the account the .deb's app made.
    let driver = WebDriver::new(driver_url, caps)
        .await
        .expect("a WebDriver session with the app from the .rpm");
    let listed = async {
        unlock(&driver, "Olive Owner", PASSPHRASE).await;
        by_id(&driver, "keys-table").await;
        rows(&driver).await
    }
    .await;
    let _ = driver.quit().await;
    app_exited(pkg);
    let mut statuses: Vec<(String, String)> = listed.into_iter().map(|r| (r.1, r.3)).collect();
    statuses.sort();
    assert_eq!(
        statuses,
        [
            ("Billing sync".to_owned(), "Active".to_owned()),
            ("Old deploy bot".to_owned(), "Revoked".to_owned())
        ]
    );
    assert_eq!(
        pkg.verify(kept).0,
        Some(0),
        "the kept key, from the .rpm's CLI"
    );
    assert_eq!(
        pkg.verify(revoked).0,
        Some(1),
        "the revoked key, from the .rpm's CLI"
    );

    // Erase: what the package made goes, as with purge, except configuration an admin edited
    // (RPM's rule for changed configuration files); the user's account stays.
    pkg.ok(&[
        "sh",
        "-ec",
        "echo KEYSMITH_LOG=debug >> /etc/keysmith/verifier.env",
    ]);
    pkg.ok(&["rpm", "--erase", "keysmith"]);
    pkg.all_gone("rpm --erase", &[]);
    assert!(
        std::fs::read_to_string(pkg.path("/etc/keysmith/verifier.env"))
            .is_ok_and(|env| env.ends_with("KEYSMITH_LOG=debug\n")),
        "rpm --erase removed an edited verifier.env"
    );
    assert!(pkg.path("/etc/keysmith/pepper").is_file());
    assert!(
        pkg.data_dir().join("keysmith.sqlite3").is_file(),
        "rpm --erase removed the user's database"
    );
}

/// The files a user and an admin look for, where they look.
fn what_the_package_installed(pkg: &Installed) {
    let entry = std::fs::read_to_string(pkg.path("/usr/share/applications/Keysmith.desktop"))
        .expect("a menu entry");
    for line in [
        "Exec=keysmith-app",
        "Icon=keysmith-app",
        "Name=Keysmith",
        "Categories=Development;",
    ] {
        assert!(entry.lines().any(|l| l == line), "{line} in:\n{entry}");
    }
    for size in ["32x32", "128x128", "512x512"] {
        assert!(
            pkg.path(&format!(
                "/usr/share/icons/hicolor/{size}/apps/keysmith-app.png"
            ))
            .is_file(),
            "no {size} icon"
        );
    }
    let version = pkg.ok(&["keysmith", "--version"]);
    assert_eq!(
        version.trim(),
        format!("keysmith {}", env!("CARGO_PKG_VERSION"))
    );

    // The verifier's unit: installed, disabled, and hardened (systemd's own score).
    let unit = "/usr/lib/systemd/system/keysmith-verifier.service";
    assert!(pkg.path(unit).is_file(), "no {unit}");
    assert!(
        !pkg.path("/etc/systemd/system/multi-user.target.wants/keysmith-verifier.service")
            .exists(),
        "the verifier is enabled by installing"
    );
    let security = Command::new("systemd-analyze")
        .args(["security", "--offline=true", "--threshold=20"])
        .arg(format!("--root={}", pkg.root.display()))
        .arg("keysmith-verifier.service")
        .output()
        .unwrap();
    let report = text(&security);
    assert!(
        security.status.success(),
        "systemd rates the unit's exposure above 2.0:\n{report}"
    );
    println!(
        "{}",
        report
            .lines()
            .find(|l| l.contains("Overall exposure"))
            .unwrap_or("no overall exposure line")
    );

    let mode = |p: &str| {
        std::fs::metadata(pkg.path(p))
            .unwrap_or_else(|e| panic!("{p}: {e}"))
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(mode("/etc/keysmith/policy.toml"), 0o644);
    // It may hold the replica's password.
    assert_eq!(mode("/etc/keysmith/verifier.env"), 0o600);
    assert_eq!(
        std::fs::read(pkg.path("/etc/keysmith/policy.toml")).unwrap(),
        std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/policy.toml"))
            .unwrap(),
        "the installed policy is the example's"
    );
}

/// First run in the installed app, two keys, one revoked; returns (revoked, kept).
async fn flows(driver: &WebDriver, pkg: &Installed) -> (String, String) {
    by_id(driver, "mode-local").await.click().await.unwrap();
    by_id(driver, "setup-name")
        .await
        .send_keys("Olive Owner")
        .await
        .unwrap();
    for id in ["setup-pass", "setup-pass2"] {
        by_id(driver, id).await.send_keys(PASSPHRASE).await.unwrap();
    }
    by_id(driver, "setup-submit").await.click().await.unwrap();
    by_id(driver, "no-keys").await;

    let mut keys = Vec::new();
    for name in ["Old deploy bot", "Billing sync"] {
        by_id(driver, "create-key").await.click().await.unwrap();
        let field = by_id(driver, "key-name").await;
        field.send_keys(name).await.unwrap();
        field.send_keys(Key::Enter).await.unwrap();
        let key = by_id(driver, "revealed-key").await.text().await.unwrap();
        assert!(key.starts_with("ksk_") && key.len() == 53, "{key}");
        by_id(driver, "copy-key").await.click().await.unwrap();
        by_id(driver, "copy-note").await;
        by_id(driver, "reveal-done").await.click().await.unwrap();
        gone(driver, "reveal-dialog").await;
        let (code, message) = pkg.verify(&key);
        assert_eq!(code, Some(0), "{name}: {message}");
        keys.push(key);
    }
    let listed = rows(driver).await;
    assert_eq!(listed.len(), 2, "{listed:?}");
    let old = listed
        .iter()
        .find(|r| r.1 == "Old deploy bot")
        .expect("the first key is listed")
        .0
        .clone();

    driver
        .find(By::Css(format!("tr[data-key-id='{old}'] button.revoke")))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let typed = by_id(driver, "revoke-confirm").await;
    assert_eq!(focused_id(driver).await, "revoke-confirm");
    typed.send_keys("REVOKE").await.unwrap();
    by_id(driver, "revoke-submit").await.click().await.unwrap();
    gone(driver, "revoke-dialog").await;
    let (code, message) = pkg.verify(&keys[0]);
    assert_eq!(code, Some(1), "{message}");
    assert!(message.contains("revoked"), "{message}");
    assert_eq!(pkg.verify(&keys[1]).0, Some(0));
    let kept = keys.pop().unwrap();
    let revoked = keys.pop().unwrap();
    (revoked, kept)
}

/// The unit's ExecStart, run as it would run: an unprivileged user, the installed policy, the
/// pepper as a file only that user reads, the database in /var/lib/keysmith-verifier. (The
/// root has no systemd to start the unit itself.)
fn the_verifier_runs_as_its_unit_says(pkg: &Installed, revoked: &str, kept: &str) {
    let unit =
        std::fs::read_to_string(pkg.path("/usr/lib/systemd/system/keysmith-verifier.service"))
            .unwrap();
    let exec = unit
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart="))
        .expect("the unit has an ExecStart");
    let data_dir = unit
        .lines()
        .find_map(|l| l.strip_prefix("Environment=KEYSMITH_DATA_DIR="))
        .expect("the unit sets KEYSMITH_DATA_DIR");

    // The admin's steps from the unit's comments: the pepper from the Owner's account, and
    // (without a replica) a copy of the account's database for the verifier.
    let o = pkg.run(
        &[
            "env",
            &format!("KEYSMITH_PASSPHRASE={PASSPHRASE}"),
            "keysmith",
            "--as",
            "Olive Owner",
            "export-pepper",
            "--to",
            "/etc/keysmith/pepper",
        ],
        None,
    );
    assert!(o.status.success(), "export-pepper: {}", text(&o));
    let credentials = "/run/credentials/keysmith-verifier.service";
    let user_data = format!("{}/keysmith", pkg.session["XDG_DATA_HOME"]);
    pkg.ok(&[
        "sh",
        "-ec",
        &format!(
            "install -d -o nobody -m 0700 {data_dir} {credentials}
             cp {user_data}/keysmith.sqlite3* {data_dir}/
             chown -R nobody {data_dir}
             install -o nobody -m 0400 /etc/keysmith/pepper {credentials}/pepper"
        ),
    ]);

    let port = free_port();
    let command = exec.replace("${CREDENTIALS_DIRECTORY}", credentials);
    let mut args: Vec<&str> = command.split_whitespace().collect();
    let listen = format!("127.0.0.1:{port}");
    args.extend(["--listen", &listen]);
    // Not `Installed::run`: as the unit runs it, with nothing of the user's session.
    let mut cmd = Command::new("chroot");
    cmd.arg("--userspec=nobody:nogroup")
        .arg(&pkg.root)
        .args([
            "env",
            "-i",
            "PATH=/usr/bin:/bin",
            &format!("KEYSMITH_DATA_DIR={data_dir}"),
        ])
        .args(&args)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(pkg.path("/tmp/verifier.log")).unwrap());
    let mut verifier = keysmith_tests::Running(cmd.spawn().unwrap());
    keysmith_tests::wait_for_port(port, &mut verifier.0, "the packaged verifier");
    // The Owner's key may call everything under the example policy; the revoked one nothing.
    let log = || std::fs::read_to_string(pkg.path("/tmp/verifier.log")).unwrap_or_default();
    assert_eq!(forward_auth_status(port, kept), 204, "{}", log());
    assert_eq!(forward_auth_status(port, revoked), 401, "{}", log());
    assert_eq!(forward_auth_status(port, "ksk_not-a-key"), 401, "{}", log());
    drop(verifier);
    std::thread::sleep(Duration::from_millis(200));
}
