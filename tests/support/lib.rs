//! Helpers shared by the integration tests and the window benchmark: where the built binaries
//! are, a private data directory, running the CLI, the guard that the real Secret Service is
//! present, and tauri-driver for driving the desktop app over WebDriver.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod ui;

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
        "{} is missing: build it first with the profile the tests run in (`cargo build \
         --profile ci --bins`, as scripts/test.sh does; the benchmark scripts use --release)",
        path.display()
    );
    path
}

/// A benchmark's start: panics unless there is a display and a Secret Service (`script`, the
/// benchmark's script, runs it inside `scripts/with-session.sh --display`), then returns the
/// number of runs: `KEYSMITH_BENCH_RUNS`, else `default`.
pub fn bench_start(script: &str, default: usize) -> usize {
    assert!(
        std::env::var_os("DISPLAY").is_some(),
        "no DISPLAY: run through {script} (scripts/with-session.sh --display)"
    );
    require_secret_service();
    std::env::var("KEYSMITH_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|n| *n > 0)
        .unwrap_or(default)
}

/// The median of `v`, NaN when it is empty.
pub fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
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

/// Installs ring as the process's rustls crypto provider. The workspace builds reqwest with
/// `rustls-no-provider` (keysmith-client picks ring, which needs no cmake), and Cargo unifies
/// that feature into the reqwest thirtyfour uses to speak WebDriver: its client needs a
/// provider installed before it is built. Idempotent.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Runs `keysmith` with `args` on `data_dir`, feeding `stdin`, with the test passphrase.
pub fn cli(data_dir: &Path, args: &[&str], stdin: Option<&str>) -> Output {
    cli_with(data_dir, args, stdin, &[])
}

/// As [`cli`], with extra environment variables (they override the test passphrase).
pub fn cli_with(
    data_dir: &Path,
    args: &[&str],
    stdin: Option<&str>,
    env: &[(&str, &str)],
) -> Output {
    use std::io::Write;
    let mut child = Command::new(built_binary("keysmith"))
        .arg("--data-dir")
        .arg(data_dir)
        .args(args)
        .env("KEYSMITH_PASSPHRASE", PASSPHRASE)
        .envs(env.iter().copied())
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

/// tauri-driver (in front of WebKitWebDriver) on two free ports, or WebKitWebDriver alone,
/// stopped with SIGTERM on drop. The app it launches inherits `envs`; the drivers' output and
/// the app's go to `log`.
pub struct TauriDriver {
    child: Child,
    /// The WebDriver port (`http://127.0.0.1:{port}`).
    pub port: u16,
    direct: bool,
}

impl TauriDriver {
    /// tauri-driver, which starts WebKitWebDriver and translates `tauri:options`.
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
            .args(["--native-driver", WEBKIT_WEBDRIVER])
            .envs(envs.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::from(log_file.try_clone().unwrap()))
            .stderr(Stdio::from(log_file))
            .spawn()
            .expect("tauri-driver (cargo install tauri-driver; scripts/setup.sh does)");
        // Ready once both tauri-driver and the WebKitWebDriver it starts listen: a session
        // asked for before the latter is up fails with a connect error.
        wait_listening(&[port, port + 1]);
        TauriDriver {
            child,
            port,
            direct: false,
        }
    }

    /// WebKitWebDriver alone, set up as tauri-driver sets it up, without the proxy in front:
    /// each command then takes about a millisecond, where through tauri-driver some take 40 ms
    /// more (its client to WebKitWebDriver does not set TCP_NODELAY). For timing.
    pub fn start_direct<K, V>(envs: &[(K, V)], log: &Path) -> TauriDriver
    where
        K: AsRef<OsStr>,
        V: AsRef<OsStr>,
    {
        let port = free_port_pair();
        let child = Command::new(WEBKIT_WEBDRIVER)
            .arg(format!("--port={port}"))
            .arg("--host=127.0.0.1")
            .envs(envs.iter().map(|(k, v)| (k, v)))
            // What tauri-driver sets: wry then lets WebKit automate the webview.
            .env("TAURI_AUTOMATION", "true")
            .env("TAURI_WEBVIEW_AUTOMATION", "true")
            .stdout(Stdio::null())
            .stderr(Stdio::from(std::fs::File::create(log).unwrap()))
            .spawn()
            .expect("WebKitWebDriver (package webkit2gtk-driver; scripts/setup.sh installs it)");
        wait_listening(&[port]);
        TauriDriver {
            child,
            port,
            direct: true,
        }
    }

    /// The URL a WebDriver client connects to.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The capability (name, value) that has the driver launch `app`.
    pub fn app_capability(&self, app: &Path) -> (&'static str, serde_json::Value) {
        let app = app.to_string_lossy();
        if self.direct {
            (
                "webkitgtk:browserOptions",
                serde_json::json!({ "binary": app, "args": [] }),
            )
        } else {
            ("tauri:options", serde_json::json!({ "application": app }))
        }
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

const WEBKIT_WEBDRIVER: &str = "/usr/bin/WebKitWebDriver";

fn wait_listening(ports: &[u16]) {
    let deadline = Instant::now() + Duration::from_secs(20);
    for &p in ports {
        while TcpStream::connect(("127.0.0.1", p)).is_err() {
            assert!(
                Instant::now() < deadline,
                "the WebDriver did not listen on {p}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
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

/// A free TCP port on loopback.
pub fn free_port() -> u16 {
    // The port is free when returned, not reserved: the kernel may offer it again at once.
    // Never hand out one port twice in this process, so two servers of one test (or of tests
    // running side by side) never get the same port.
    static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    let mut given = GIVEN
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    loop {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        if !given.contains(&port) {
            given.push(port);
            return port;
        }
    }
}

/// Waits until something listens on `port` (or `child` exits, which fails the test).
pub fn wait_for_port(port: u16, child: &mut Child, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("{what} exited with {status} before listening on {port}");
        }
        assert!(Instant::now() < deadline, "{what} did not listen on {port}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A child process killed (SIGTERM, then waited for) when dropped.
pub struct Running(pub Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = Command::new("kill").arg(self.0.id().to_string()).status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// An HTTP response as the tests read it.
#[derive(Debug)]
pub struct HttpResponse {
    pub status: u16,
    /// Header lines, names lowercased.
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl HttpResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// One HTTP/1.1 request on loopback with `Connection: close`: enough for tests, and it sends
/// exactly the target and headers given (no client adds its own). Panics on any error.
pub fn http(port: u16, method: &str, path: &str, headers: &[(&str, &str)]) -> HttpResponse {
    try_http(port, method, path, headers)
        .unwrap_or_else(|e| panic!("{method} {path} on port {port}: {e}"))
}

/// Whether the tests run as root (nginx then needs `user root;` to read their folders).
pub fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// An nginx.conf with the README's forward-auth recipe: for each `(front, upstream)` pair of
/// loopback ports, a server on `front` that asks the verifier on `verifier` (`auth_request`)
/// and passes allowed requests, with the member and role it answered, to `upstream`. `extra`
/// is more `server` blocks, as they are. nginx's own files go to `dir`.
pub fn nginx_conf(dir: &Path, fronts: &[(u16, u16)], verifier: u16, extra: &str) -> String {
    let d = dir.display();
    let user = if is_root() { "user root;" } else { "" };
    let mut servers = String::new();
    for (front, upstream) in fronts {
        servers.push_str(&format!(
            r#"
    server {{
        listen 127.0.0.1:{front};

        location / {{
            auth_request /_keysmith;
            auth_request_set $keysmith_member $upstream_http_x_keysmith_member;
            auth_request_set $keysmith_role $upstream_http_x_keysmith_role;
            proxy_set_header X-Keysmith-Member $keysmith_member;
            proxy_set_header X-Keysmith-Role $keysmith_role;
            proxy_pass http://127.0.0.1:{upstream};
            # A key over its rate limit: auth_request turns the verifier's 429 into 500.
            auth_request_set $keysmith_retry_after $upstream_http_retry_after;
            error_page 500 = @keysmith_500;
        }}

        location @keysmith_500 {{
            if ($keysmith_retry_after) {{
                add_header Retry-After $keysmith_retry_after always;
                return 429 "Too many requests with this API key\n";
            }}
            return 500;
        }}

        location = /_keysmith {{
            internal;
            proxy_pass http://127.0.0.1:{verifier};
            proxy_pass_request_body off;
            proxy_set_header Content-Length "";
            proxy_set_header X-Original-Method $request_method;
            proxy_set_header X-Original-URI $request_uri;
            # The client's address, replacing any the client sent (one proxy in front:
            # the verifier, --trusted-proxy 127.0.0.1, believes nothing else).
            proxy_set_header X-Forwarded-For $remote_addr;
        }}
    }}
"#
        ));
    }
    format!(
        r#"{user}
worker_processes 1;
daemon off;
pid {d}/nginx.pid;
error_log {d}/error.log info;
events {{ worker_connections 512; }}
http {{
    access_log {d}/access.log;
    client_body_temp_path {d}/body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
{extra}{servers}}}
"#
    )
}

/// Starts `keysmith serve-verifier` for `data_dir` with `policy` on a free loopback port,
/// with `extra` arguments and `env`, its log going to `log`, and waits until it listens.
/// Returns the running verifier and its port.
pub fn start_verifier(
    data_dir: &Path,
    policy: &Path,
    extra: &[&str],
    env: &[(&str, &str)],
    log: Stdio,
) -> (Running, u16) {
    let port = free_port();
    let mut verifier = Running(
        Command::new(built_binary("keysmith"))
            .arg("--data-dir")
            .arg(data_dir)
            .arg("serve-verifier")
            .arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            .arg("--policy")
            .arg(policy)
            .args(extra)
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap(),
    );
    wait_for_port(port, &mut verifier.0, "keysmith serve-verifier");
    (verifier, port)
}

impl TauriDriver {
    /// The driver's process id: the app it launches runs among its descendants (tauri-driver
    /// → WebKitWebDriver → the app → WebKit's web and network processes).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

/// Every process descended from `root` (children, grandchildren, …), as /proc shows them now.
pub fn descendants(root: u32) -> Vec<u32> {
    let mut parents = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // "pid (comm) state ppid …": comm may hold spaces and parentheses, so the fields are
        // read after the last ')'.
        let ppid = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
            .and_then(|s| s.parse::<u32>().ok());
        if let Some(ppid) = ppid {
            parents.push((pid, ppid));
        }
    }
    let mut found = Vec::new();
    let mut frontier = vec![root];
    while let Some(parent) = frontier.pop() {
        for &(pid, ppid) in &parents {
            if ppid == parent && !found.contains(&pid) {
                found.push(pid);
                frontier.push(pid);
            }
        }
    }
    found
}

/// The file name of the executable process `pid` runs, if it still runs.
pub fn exe_name(pid: u32) -> Option<String> {
    let exe = std::fs::read_link(format!("/proc/{pid}/exe")).ok()?;
    let name = exe.file_name()?.to_string_lossy().into_owned();
    // A binary replaced by a rebuild while it runs reads "name (deleted)".
    Some(name.trim_end_matches(" (deleted)").to_owned())
}

/// The first descendant of `root` running the executable named `name` (e.g. `keysmith-app`,
/// `WebKitWebProcess`).
pub fn descendant_named(root: u32, name: &str) -> Option<u32> {
    descendants(root)
        .into_iter()
        .find(|&pid| exe_name(pid).as_deref() == Some(name))
}

/// Sends SIGKILL to `pid`, a process this test started (directly or through a driver).
pub fn sigkill(pid: u32) {
    let _ = Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .stderr(Stdio::null())
        .status();
}

/// Writes a core file of the running process `pid` with gdb's `gcore` (the process goes on
/// afterwards) into `dir` and returns its path, or gcore's own words on why it could not.
pub fn gcore(pid: u32, dir: &Path, label: &str) -> Result<PathBuf, String> {
    let prefix = dir.join(label);
    let out = Command::new("gcore")
        .arg("-o")
        .arg(&prefix)
        .arg(pid.to_string())
        .output()
        .map_err(|e| format!("cannot run gcore (package gdb): {e}"))?;
    let path = PathBuf::from(format!("{}.{pid}", prefix.display()));
    if out.status.success() && path.is_file() {
        Ok(path)
    } else {
        Err(format!(
            "gcore {pid} exited with {}: {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// As [`http`], but errors are returned instead of failing the test (a server that may have
/// just been killed, or that answers some targets by closing or resetting the connection),
/// unless some answer was read before them: a server that resets right after answering still
/// answered. An answer without a status line is an error.
pub fn try_http(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> std::io::Result<HttpResponse> {
    use std::io::{Read, Write};
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    // A server may answer and close before reading everything: read its answer anyway.
    let sent = stream.write_all(req.as_bytes());
    let mut raw = Vec::new();
    let read = stream.read_to_end(&mut raw);
    if raw.is_empty() {
        sent?;
        read?;
    }
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("no HTTP status line in {text:?}")))?;
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    Ok(HttpResponse {
        status,
        headers,
        body: body.to_owned(),
    })
}

/// A certificate for `localhost` and 127.0.0.1 signed by a certificate authority of the
/// team's own, made with openssl as an operator would (rustls, like browsers, refuses a CA
/// certificate used as the server's own). Returns the files (CA, certificate, key) in `dir`.
pub fn localhost_certificate(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let (ca, ca_key) = (dir.join("ca.pem"), dir.join("ca.key"));
    let (cert, key, csr) = (
        dir.join("cert.pem"),
        dir.join("key.pem"),
        dir.join("cert.csr"),
    );
    let ext = dir.join("ext.cnf");
    std::fs::write(
        &ext,
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n\
         extendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    let openssl = |args: &[&OsStr]| {
        let ok = Command::new("openssl")
            .args(args)
            .stderr(Stdio::null())
            .status()
            .expect("openssl (Debian package openssl)");
        assert!(ok.success(), "openssl {args:?}");
    };
    let os = |s: &'static str| OsStr::new(s);
    let ec = [
        os("-newkey"),
        os("ec"),
        os("-pkeyopt"),
        os("ec_paramgen_curve:P-256"),
    ];
    let mut args = vec![os("req"), os("-x509")];
    args.extend(ec);
    args.extend([
        os("-nodes"),
        os("-days"),
        os("1"),
        os("-subj"),
        os("/CN=Keysmith test CA"),
        os("-keyout"),
        ca_key.as_os_str(),
        os("-out"),
        ca.as_os_str(),
    ]);
    openssl(&args);
    let mut args = vec![os("req")];
    args.extend(ec);
    args.extend([
        os("-nodes"),
        os("-subj"),
        os("/CN=localhost"),
        os("-keyout"),
        key.as_os_str(),
        os("-out"),
        csr.as_os_str(),
    ]);
    openssl(&args);
    openssl(&[
        os("x509"),
        os("-req"),
        os("-in"),
        csr.as_os_str(),
        os("-CA"),
        ca.as_os_str(),
        os("-CAkey"),
        ca_key.as_os_str(),
        os("-CAcreateserial"),
        os("-days"),
        os("1"),
        os("-extfile"),
        ext.as_os_str(),
        os("-out"),
        cert.as_os_str(),
    ]);
    (ca, cert, key)
}

/// `keysmith --database-url URL serve` on 127.0.0.1:`port` with `args`, once it listens.
pub fn serve_team(url: &str, args: &[&str], port: u16) -> Running {
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

/// The team server over HTTPS on a free port: a `localhost` certificate from a CA of the
/// team's own, made in `dir` ([`localhost_certificate`]), then [`serve_team`] with it.
/// Returns the server, its port and the CA's PEM file (what a member passes to trust it).
pub fn serve_team_https(url: &str, dir: &Path) -> (Running, u16, PathBuf) {
    let (ca, cert, key) = localhost_certificate(dir);
    let port = free_port();
    let args = ["--tls-cert", path_str(&cert), "--tls-key", path_str(&key)];
    (serve_team(url, &args, port), port, ca)
}

fn path_str(path: &Path) -> &str {
    path.to_str().expect("a UTF-8 temporary path")
}

/// A new database on the throwaway PostgreSQL server of `scripts/with-postgres.sh`
/// (`KEYSMITH_TEST_DATABASE_URL`), named `name`; its URL.
pub async fn team_database(name: &str) -> String {
    let server = std::env::var("KEYSMITH_TEST_DATABASE_URL").expect("scripts/with-postgres.sh");
    keysmith_core::store::create_postgres_database(&server, name)
        .await
        .unwrap()
}

/// A verifier replica on the PostgreSQL database `url` (`serve-verifier --database-url`,
/// `--max-staleness 500ms`) with `policy`, once it listens; and its port.
pub fn start_replica(url: &str, policy: &Path) -> (Running, u16) {
    let port = free_port();
    let mut child = Running(
        Command::new(built_binary("keysmith"))
            .args(["--database-url", url, "serve-verifier", "--listen"])
            .arg(format!("127.0.0.1:{port}"))
            .arg("--policy")
            .arg(policy)
            .args(["--max-staleness", "500ms"])
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap(),
    );
    wait_for_port(port, &mut child.0, "keysmith serve-verifier");
    (child, port)
}

/// What the verifier on `port` answers a forward-auth check of `GET /v1/invoices` with `key`
/// (204 allowed, 401 refused, 503 not fresh).
pub fn forward_auth_status(port: u16, key: &str) -> u16 {
    let bearer = format!("Bearer {key}");
    http(
        port,
        "GET",
        "/",
        &[
            ("Authorization", bearer.as_str()),
            ("X-Original-Method", "GET"),
            ("X-Original-URI", "/v1/invoices"),
        ],
    )
    .status
}
