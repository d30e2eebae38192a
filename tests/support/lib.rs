//! Helpers shared by the integration tests and the window benchmark: where the built binaries
//! are, a private data directory, running the CLI, the guard that the real Secret Service is
//! present, and tauri-driver for driving the desktop app over WebDriver.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::ffi::OsStr;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The passphrase every test member uses.
pub const PASSPHRASE: &str = "correct horse battery staple";

/// The folder holding the built binaries: the test binary lives in `<profile>/deps/`.
pub fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    exe.parent()
        .and_then(Path::parent)
        .expect("target/<profile>")
        .to_path_buf()
}

/// A built binary of this workspace (`keysmith`, `keysmith-app`), or a clear panic saying
/// how to build it.
pub fn built_binary(name: &str) -> PathBuf {
    let path = bin_dir().join(name);
    assert!(
        path.is_file(),
        "{} is missing: build it first (`cargo build --release -p keysmith-cli -p keysmith-app`, \
         as scripts/test.sh does)",
        path.display()
    );
    path
}

/// Panics unless a session bus with a Secret Service is present (scripts/with-session.sh
/// provides one). These tests never fall back to an in-memory store.
pub fn require_secret_service() {
    let bus = std::env::var("DBUS_SESSION_BUS_ADDRESS").unwrap_or_default();
    assert!(
        !bus.is_empty(),
        "no D-Bus session: run the tests through scripts/with-session.sh (scripts/test.sh does)"
    );
    let out = Command::new("dbus-send")
        .args([
            "--session",
            "--print-reply",
            "--dest=org.freedesktop.DBus",
            "/org/freedesktop/DBus",
            "org.freedesktop.DBus.NameHasOwner",
            "string:org.freedesktop.secrets",
        ])
        .output()
        .expect("dbus-send");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("boolean true"),
        "no Secret Service on the session bus: run through scripts/with-session.sh"
    );
}

/// Runs `keysmith` with `args` on `data_dir`, feeding `stdin`, with the test passphrase.
pub fn cli(data_dir: &Path, args: &[&str], stdin: Option<&str>) -> Output {
    use std::io::Write;
    let mut child = Command::new(built_binary("keysmith"))
        .arg("--data-dir")
        .arg(data_dir)
        .args(args)
        .env("KEYSMITH_PASSPHRASE", PASSPHRASE)
        .env_remove("KEYSMITH_DATA_DIR")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn keysmith");
    {
        let mut input = child.stdin.take().expect("stdin");
        if let Some(text) = stdin {
            input.write_all(text.as_bytes()).expect("write stdin");
        }
    }
    child.wait_with_output().expect("keysmith output")
}

/// Every secret the Secret Service holds for the service "keysmith", as
/// `secret-tool search --all` prints them (attributes and secrets).
pub fn keyring_dump() -> String {
    let out = Command::new("secret-tool")
        .args(["search", "--all", "--unlock", "service", "keysmith"])
        .output()
        .expect("secret-tool (package libsecret-tools)");
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Counts the files under `dir` (recursively) whose bytes contain `needle`.
pub fn files_containing(dir: &Path, needle: &[u8]) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if let Ok(bytes) = std::fs::read(&path) {
                if bytes.windows(needle.len()).any(|w| w == needle) {
                    found.push(path);
                }
            }
        }
    }
    found
}

/// tauri-driver (in front of WebKitWebDriver) on two free ports, stopped with SIGTERM on drop.
/// The app it launches inherits `envs`; its output and the app's go to `log`.
pub struct TauriDriver {
    child: Child,
    /// The WebDriver port (`http://127.0.0.1:{port}`).
    pub port: u16,
}

impl TauriDriver {
    pub fn start<K, V>(envs: &[(K, V)], log: &Path) -> TauriDriver
    where
        K: AsRef<OsStr>,
        V: AsRef<OsStr>,
    {
        let port = free_port_pair();
        let log_file = std::fs::File::create(log).unwrap();
        let child = Command::new("tauri-driver")
            .args([
                "--port",
                &port.to_string(),
                "--native-port",
                &(port + 1).to_string(),
            ])
            .args(["--native-driver", "/usr/bin/WebKitWebDriver"])
            .envs(envs.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::from(log_file.try_clone().unwrap()))
            .stderr(Stdio::from(log_file))
            .spawn()
            .expect("tauri-driver (cargo install tauri-driver; scripts/setup.sh does)");
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "tauri-driver did not listen");
            std::thread::sleep(Duration::from_millis(100));
        }
        TauriDriver { child, port }
    }

    /// The URL a WebDriver client connects to.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for TauriDriver {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A free port whose successor is free too (tauri-driver's port and its native driver's).
pub fn free_port_pair() -> u16 {
    for _ in 0..50 {
        let a = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = a.local_addr().unwrap().port();
        if port < 65535 && TcpListener::bind(("127.0.0.1", port + 1)).is_ok() {
            return port;
        }
    }
    panic!("no two free adjacent ports");
}
