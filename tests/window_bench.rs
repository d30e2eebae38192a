//! A benchmark, not a test: the Keysmith desktop app against an empty Tauri + Leptos window
//! built the same way (`bench/empty-window`), measured in the same run, alternately, on the
//! same virtual display. Run it with `scripts/bench-window.sh` (it builds both, then runs
//! this inside `scripts/with-session.sh --display`).
//!
//! 1. Launch to interactive: from the moment the app binary is executed until its first
//!    screen's element is in the DOM (Keysmith: `#mode-local` on an empty data directory;
//!    the empty window: `#ready`). WebKitWebDriver starts the app (directly, set up as
//!    tauri-driver would: the proxy adds up to 40 ms to a command) through a tiny wrapper
//!    script that records the launch time (wall clock, ns) and its pid, then `exec`s the
//!    binary. The end is taken inside the page: with page load strategy "none" the harness's
//!    script reaches the app's page while it loads, and a `MutationObserver` notes
//!    `performance.timeOrigin + performance.now()` when the element is inserted. If the
//!    element is already there when the script first runs, the time of that run is taken
//!    instead (an upper bound; such runs are starred), unless the UI marked the moment
//!    itself with `performance.mark("interactive")` (the empty window does; it is often
//!    quicker than WebDriver). Also printed: when the page's navigation started (the native
//!    share before it), when the UI first mounted anything, when the harness heard of the
//!    element over WebDriver, and WebKit's first contentful paint.
//! 2. Idle memory: five seconds after interactive, PSS (and RSS, USS) summed over the app
//!    process and all its descendants (WebKitWebProcess, WebKitNetworkProcess), from
//!    /proc/PID/smaps_rollup.
//!
//! Each run gets fresh XDG data/config/cache folders (so WebKit starts cold alike for both)
//! and, for Keysmith, a fresh `KEYSMITH_DATA_DIR`. One discarded warm-up run of each comes
//! first (it pulls the binaries and libraries into the page cache). `KEYSMITH_BENCH_RUNS`
//! overrides the number of measured runs of each (5).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use keysmith_tests::{bench_start, built_binary, median, TauriDriver};
use thirtyfour::prelude::*;

/// Keysmith ≤ 1.2 × the empty window, launch to interactive.
const LAUNCH_GOAL: f64 = 1.2;
/// Keysmith ≤ 1.15 × the empty window, idle PSS.
const MEMORY_GOAL: f64 = 1.15;
const IDLE: Duration = Duration::from_secs(5);

struct Subject {
    label: &'static str,
    binary: PathBuf,
    ready_id: &'static str,
    keysmith: bool,
}

/// One launch's figures. Times are ms after the binary was executed.
struct Run {
    /// The page's own clock when the element appeared.
    interactive_ms: f64,
    /// How that time was taken: ' ' a MutationObserver saw the insertion, 'm' the UI's own
    /// `performance.mark("interactive")`, '*' neither (the element was already there when
    /// the script first ran: an upper bound).
    how: char,
    /// When the harness heard of it over WebDriver.
    via_driver_ms: f64,
    /// When the page's navigation started (`performance.timeOrigin`): the native share.
    time_origin_ms: f64,
    /// When the UI first put anything in `<body>`, if observed.
    mount_ms: Option<f64>,
    first_paint_ms: Option<f64>,
    /// The share of all CPUs that processes outside this session used during the launch.
    foreign_cpu: f64,
    mem: Memory,
}

#[derive(Default)]
struct Memory {
    pss_kb: u64,
    rss_kb: u64,
    uss_kb: u64,
    /// (name, PSS kB) of each process counted.
    processes: Vec<(String, u64)>,
}

/// Waits in the page until the element `arguments[0]` exists; returns when that was on the
/// page's clock (ms since the epoch) and how that was found out, and when the UI first put
/// anything in `<body>` (its mount), if observed. A UI that marks the moment itself with
/// `performance.mark("interactive")` (the empty window does) is taken at its word.
const WAIT_FOR_ELEMENT: &str = r#"
const id = arguments[0];
const done = arguments[arguments.length - 1];
const now = () => performance.timeOrigin + performance.now();
const mounted = () => document.body && document.body.firstElementChild;
const report = (observed) => {
  const at = now();
  const mark = performance.getEntriesByName('interactive', 'mark')[0];
  done({
    at: mark ? performance.timeOrigin + mark.startTime : at,
    how: mark ? 'm' : observed ? ' ' : '*',
    origin: performance.timeOrigin,
    mount: window.__benchMount || null,
  });
};
if (location.protocol !== 'tauri:') {
  // Still the initial empty document: the app's page has not been committed yet.
  done({ pending: true, href: location.href });
} else if (document.getElementById(id)) {
  report(false);
} else {
  // 0: not mounted yet; null: mounted before we looked. Kept across retries.
  if (window.__benchMount === undefined) window.__benchMount = mounted() ? null : 0;
  const observer = new MutationObserver(() => {
    if (window.__benchMount === 0 && mounted()) window.__benchMount = now();
    if (document.getElementById(id)) {
      observer.disconnect();
      report(true);
    }
  });
  observer.observe(document, { childList: true, subtree: true });
  // A script cut off by a navigation never answers: ask again now and then.
  setTimeout(() => {
    observer.disconnect();
    done({ pending: true, href: location.href, state: document.readyState });
  }, 2000);
}
"#;

/// WebKit's first contentful paint (Paint Timing), on the page's clock, if reported.
const FIRST_PAINT: &str = r#"
const fcp = performance.getEntriesByName('first-contentful-paint')[0];
return fcp ? performance.timeOrigin + fcp.startTime : null;
"#;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let runs = bench_start("scripts/bench-window.sh", 5);

    let subjects = [
        Subject {
            label: "empty window",
            binary: built_binary("keysmith-empty-window"),
            ready_id: "ready",
            keysmith: false,
        },
        Subject {
            label: "Keysmith",
            binary: built_binary("keysmith-app"),
            ready_id: "mode-local",
            keysmith: true,
        },
    ];

    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    println!("window benchmark: {runs} alternating runs of each after one warm-up each");
    for s in &subjects {
        println!("  {:<12} {}", s.label, s.binary.display());
    }
    println!("  load average before: {}", load_average());
    println!();

    for s in &subjects {
        let run = launch_undisturbed(s).await;
        println!("  warm-up {:<12} {}", s.label, describe(&run));
    }
    let mut results: [Vec<Run>; 2] = [Vec::new(), Vec::new()];
    for i in 0..runs {
        for (s, out) in subjects.iter().zip(results.iter_mut()) {
            let run = launch_undisturbed(s).await;
            println!("  run {}   {:<12} {}", i + 1, s.label, describe(&run));
            out.push(run);
        }
    }
    println!("  load average after: {}", load_average());

    println!("  (interactive: as a MutationObserver saw the element go in; m: as the UI marked it");
    println!("   itself with performance.mark(\"interactive\"); *: the element was already there");
    println!(
        "   when the harness's script first ran in the page, the time is then: an upper bound)"
    );

    println!();
    println!(
        "{:<36}{:>12} {:>12} {:>7}",
        format!("medians over {runs} runs"),
        "empty window",
        "Keysmith",
        "ratio"
    );
    let [empty, keysmith] = &results;
    let row = |what: &str, unit: &str, f: &dyn Fn(&Run) -> Option<f64>, goal: Option<f64>| {
        // The median of the runs that reported it.
        let m = |rs: &[Run]| {
            let v: Vec<f64> = rs.iter().filter_map(f).collect();
            let n = v.len();
            (n > 0).then(|| (median(v), n))
        };
        let (Some((e, ne)), Some((k, nk))) = (m(empty), m(keysmith)) else {
            println!("  {what:<34} (not reported)");
            return;
        };
        let ratio = k / e;
        let shown = if e > 0.0 {
            format!("{ratio:>6.2}x")
        } else {
            format!("{:>7}", "-")
        };
        let mut note = goal
            .map(|g| format!("  goal <= {g}x: {}", verdict(ratio <= g)))
            .unwrap_or_default();
        if ne < empty.len() || nk < keysmith.len() {
            note += &format!("  (of {ne} and {nk} runs)");
        }
        println!("  {what:<34} {e:>9.1} {unit:<2} {k:>9.1} {unit:<2} {shown}{note}");
    };
    row(
        "launch to interactive",
        "ms",
        &|r| Some(r.interactive_ms),
        Some(LAUNCH_GOAL),
    );
    row(
        "  launch to navigation",
        "ms",
        &|r| Some(r.time_origin_ms),
        None,
    );
    row(
        "  navigation to interactive",
        "ms",
        &|r| Some(r.interactive_ms - r.time_origin_ms),
        None,
    );
    row(
        "    of which mount to interactive",
        "ms",
        &|r| r.mount_ms.map(|m| r.interactive_ms - m),
        None,
    );
    row(
        "  heard over WebDriver",
        "ms",
        &|r| Some(r.via_driver_ms),
        None,
    );
    row(
        "  first contentful paint",
        "ms",
        &|r| r.first_paint_ms,
        None,
    );
    row(
        "idle PSS",
        "MB",
        &|r| Some(mb(r.mem.pss_kb as f64)),
        Some(MEMORY_GOAL),
    );
    row("  idle RSS", "MB", &|r| Some(mb(r.mem.rss_kb as f64)), None);
    row("  idle USS", "MB", &|r| Some(mb(r.mem.uss_kb as f64)), None);
    let subjects_by_wasm = [&subjects[1], &subjects[0]];
    println!();
    println!("UI wasm (gzip -9):");
    for ((label, dir), s) in [
        ("Keysmith", root.join("src-ui/dist")),
        ("empty window", root.join("bench/empty-window/ui/dist")),
    ]
    .into_iter()
    .zip(&subjects_by_wasm)
    {
        let wasm = wasm_files(&dir);
        assert!(
            !wasm.is_empty(),
            "no .wasm in {}: build it with trunk first",
            dir.display()
        );
        for f in wasm {
            if modified(&f) > modified(&s.binary) {
                println!(
                    "  WARNING: {} is newer than {}: the app embeds an older UI than this",
                    f.display(),
                    s.binary.display()
                );
            }
            println!(
                "  {label:<12} {:>8} bytes gzipped ({} bytes raw) {}",
                gzip9_len(&f),
                std::fs::metadata(&f).unwrap().len(),
                f.file_name().unwrap().to_string_lossy()
            );
        }
    }
}

/// Other work on the machine may use at most this share of all CPUs during a launch.
const MAX_FOREIGN_CPU: f64 = 0.10;

/// [`launch`], again (up to three times in all) while other work on the machine took more
/// than [`MAX_FOREIGN_CPU`] during the launch: that skews it, and nothing here can tell by how
/// much. Whether a run is repeated does not depend on how fast the app was.
async fn launch_undisturbed(s: &Subject) -> Run {
    let mut attempt = 1;
    loop {
        let run = launch(s).await;
        if run.foreign_cpu <= MAX_FOREIGN_CPU || attempt == 3 {
            return run;
        }
        println!(
            "    (other work took {:.0} % of the CPUs during that launch of {} ({:.0} ms): again)",
            run.foreign_cpu * 100.0,
            s.label,
            run.interactive_ms
        );
        attempt += 1;
    }
}

/// Launches `s` once through WebKitWebDriver, waits until interactive, idles, measures,
/// quits. Waits first for the CPUs to be idle: other work on the machine skews launch times.
async fn launch(s: &Subject) -> Run {
    wait_until_idle().await;
    let cpu_before = cpu_snapshot();
    let work = tempfile::tempdir().unwrap();
    let dir = |name: &str| {
        let d = work.path().join(name);
        std::fs::create_dir_all(&d).unwrap();
        d
    };
    let launch_file = work.path().join("launch");
    let wrapper = work.path().join("launch.sh");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\necho \"$$ $(date +%s%N)\" > '{}'\nexec '{}' \"$@\"\n",
            launch_file.display(),
            s.binary.display()
        ),
    )
    .unwrap();
    Command::new("chmod")
        .arg("+x")
        .arg(&wrapper)
        .status()
        .unwrap();

    let mut envs: Vec<(&str, OsString)> = vec![
        ("XDG_DATA_HOME", dir("xdg-data").into()),
        ("XDG_CONFIG_HOME", dir("xdg-config").into()),
        ("XDG_CACHE_HOME", dir("xdg-cache").into()),
    ];
    // Keysmith turns WebKit's compositing off on a machine with no GPU (src-tauri's
    // `composite_only_with_a_gpu`): the empty window gets the same, so both draw alike.
    let gpu = std::fs::read_dir("/dev/dri").is_ok_and(|nodes| {
        nodes
            .flatten()
            .any(|n| n.file_name().to_string_lossy().starts_with("renderD"))
    });
    if !gpu {
        envs.push(("WEBKIT_DISABLE_COMPOSITING_MODE", "1".into()));
    }
    if s.keysmith {
        // Not created: the app creates its own data directory on first run.
        envs.push(("KEYSMITH_DATA_DIR", work.path().join("data").into()));
    }
    let log = work.path().join("driver.log");
    let webdriver = TauriDriver::start_direct(&envs, &log);
    let mut app = AppGuard {
        pid: None,
        binary: s.binary.clone(),
    };

    let mut caps = thirtyfour::Capabilities::new();
    let (name, value) = webdriver.app_capability(&wrapper);
    caps.set(name, value).unwrap();
    // Scripts run at once rather than after the page's load event, so that the observer is
    // in place before the UI mounts; a script cut off by the navigation gives up soon.
    caps.set("pageLoadStrategy", "none").unwrap();
    caps.set("timeouts", serde_json::json!({ "script": 5000 }))
        .unwrap();
    keysmith_tests::install_crypto_provider();
    let driver = WebDriver::new(webdriver.url(), caps)
        .await
        .unwrap_or_else(|e| panic!("no WebDriver session with {}: {e}\n{}", s.label, tail(&log)));
    let (pid, launched_ms) = read_launch(&launch_file);
    app.pid = Some(pid);

    // The first script may run before the app's page has replaced the initial one, or be cut
    // off by the navigation: try again until the element is reported.
    let deadline = Instant::now() + Duration::from_secs(60);
    let ready = loop {
        assert!(
            Instant::now() < deadline,
            "#{} never appeared in {}\n{}",
            s.ready_id,
            s.label,
            tail(&log)
        );
        match driver
            .execute_async(WAIT_FOR_ELEMENT, vec![serde_json::json!(s.ready_id)])
            .await
        {
            Ok(ret) if ret.json()["at"].as_f64().is_some() => {
                break (ret.json().clone(), now_ms());
            }
            // Not yet the app's page, or still waiting after 2 s: ask again at once.
            Ok(ret) if ret.json()["pending"].as_bool() == Some(true) => {}
            Ok(ret) => {
                println!("    (unexpected answer {:?}; retrying)", ret.json());
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            // The initial document went away under the script: ask the new one at once.
            Err(e) if e.to_string().contains("unload") => {}
            Err(e) => {
                println!("    (waiting for #{} failed: {e}; retrying)", s.ready_id);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    };
    let (answer, heard_ms) = ready;
    let foreign_cpu = foreign_share(cpu_before, cpu_snapshot());
    let at = answer["at"].as_f64().unwrap();
    let origin = answer["origin"].as_f64().unwrap();
    let interactive_ms = at - launched_ms;
    let via_driver_ms = heard_ms - launched_ms;
    assert!(
        interactive_ms > 0.0 && interactive_ms <= via_driver_ms + 5.0,
        "clocks disagree: page says {interactive_ms:.1} ms, driver {via_driver_ms:.1} ms"
    );

    tokio::time::sleep(IDLE).await;
    let mem = memory(pid);
    let first_paint_ms = driver
        .execute(FIRST_PAINT, vec![])
        .await
        .ok()
        .and_then(|r| r.json().as_f64())
        .map(|t| t - launched_ms);

    let _ = driver.quit().await;
    app.stop();
    drop(webdriver);
    Run {
        interactive_ms,
        how: answer["how"]
            .as_str()
            .and_then(|h| h.chars().next())
            .unwrap_or('*'),
        via_driver_ms,
        time_origin_ms: origin - launched_ms,
        mount_ms: answer["mount"].as_f64().map(|t| t - launched_ms),
        first_paint_ms,
        foreign_cpu,
        mem,
    }
}

fn describe(r: &Run) -> String {
    let procs: Vec<String> = r
        .mem
        .processes
        .iter()
        .map(|(name, pss)| format!("{name} {:.1}", mb(*pss as f64)))
        .collect();
    let mount = r
        .mount_ms
        .map(|m| format!(", mount at {m:.0}"))
        .unwrap_or_default();
    let paint = r
        .first_paint_ms
        .map(|p| format!(", first paint {p:.0}"))
        .unwrap_or_default();
    let disturbed = if r.foreign_cpu > MAX_FOREIGN_CPU {
        format!(
            " [disturbed: other work took {:.0} % CPU]",
            r.foreign_cpu * 100.0
        )
    } else {
        String::new()
    };
    format!(
        "interactive {:>4.0}{} ms (navigation at {:>4.0}{mount}, via driver {:>4.0}{paint}) \
         | PSS {:>5.1} MB (RSS {:.1}, USS {:.1}) = {}{disturbed}",
        r.interactive_ms,
        r.how,
        r.time_origin_ms,
        r.via_driver_ms,
        mb(r.mem.pss_kb as f64),
        mb(r.mem.rss_kb as f64),
        mb(r.mem.uss_kb as f64),
        procs.join(" + ")
    )
}

/// Kills the launched app (by its pid, after checking it is still our binary) if the
/// WebDriver session did not end it.
struct AppGuard {
    pid: Option<u32>,
    binary: PathBuf,
}

impl AppGuard {
    fn alive(&self) -> Option<u32> {
        let pid = self.pid?;
        let exe = std::fs::read_link(format!("/proc/{pid}/exe")).ok()?;
        (exe == self.binary).then_some(pid)
    }

    fn stop(&mut self) {
        for signal in ["-TERM", "-KILL"] {
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline {
                if self.alive().is_none() {
                    self.pid = None;
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            if let Some(pid) = self.alive() {
                println!("    (the app {pid} outlived its session: kill {signal})");
                let _ = Command::new("kill")
                    .args([signal, &pid.to_string()])
                    .status();
            }
        }
    }
}

impl Drop for AppGuard {
    fn drop(&mut self) {
        if self.alive().is_some() {
            self.stop();
        }
    }
}

/// The wrapper's pid (the app's, after `exec`) and when it ran, in ms since the epoch.
fn read_launch(path: &Path) -> (u32, f64) {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("the launch wrapper left no {}: {e}", path.display()));
    let mut parts = text.split_whitespace();
    let pid = parts.next().unwrap().parse().unwrap();
    let ns: u128 = parts.next().unwrap().parse().unwrap();
    (pid, ns as f64 / 1e6)
}

fn now_ms() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as f64
        / 1e6
}

/// PSS, RSS and USS summed over `pid` and all its descendants.
fn memory(pid: u32) -> Memory {
    let procs = processes();
    let mut mem = Memory::default();
    for p in descendants(&procs, pid) {
        let Ok(rollup) = std::fs::read_to_string(format!("/proc/{p}/smaps_rollup")) else {
            continue;
        };
        let field = |name: &str| -> u64 {
            rollup
                .lines()
                .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
                .unwrap_or(0)
        };
        let pss = field("Pss");
        mem.pss_kb += pss;
        mem.rss_kb += field("Rss");
        mem.uss_kb += field("Private_Clean") + field("Private_Dirty");
        let name = std::fs::read_to_string(format!("/proc/{p}/comm")).unwrap_or_default();
        mem.processes.push((name.trim().to_owned(), pss));
    }
    assert!(mem.pss_kb > 0, "no memory figures for pid {pid}");
    mem
}

fn wasm_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "wasm"))
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}

fn modified(path: &Path) -> SystemTime {
    std::fs::metadata(path).and_then(|m| m.modified()).unwrap()
}

fn gzip9_len(path: &Path) -> usize {
    let out = Command::new("gzip")
        .arg("-9c")
        .arg(path)
        .stderr(Stdio::inherit())
        .output()
        .expect("gzip");
    assert!(out.status.success(), "gzip -9c {} failed", path.display());
    out.stdout.len()
}

fn mb(kb: f64) -> f64 {
    kb / 1024.0
}

fn verdict(ok: bool) -> &'static str {
    if ok {
        "met"
    } else {
        "MISSED"
    }
}

struct Proc {
    ppid: u32,
    comm: String,
    /// utime + stime + cutime + cstime, in clock ticks.
    cpu: u64,
}

/// Every process, from /proc/PID/stat.
fn processes() -> HashMap<u32, Proc> {
    let mut procs = HashMap::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // "pid (comm) state ppid …": comm may hold spaces and parentheses.
        let (Some((head, rest)), Some(open)) = (stat.rsplit_once(')'), stat.find('(')) else {
            continue;
        };
        let f: Vec<&str> = rest.split_whitespace().collect();
        let num = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
        procs.insert(
            pid,
            Proc {
                ppid: num(1) as u32,
                comm: head[open + 1..].to_owned(),
                cpu: num(11) + num(12) + num(13) + num(14),
            },
        );
    }
    procs
}

/// `root` and all its descendants.
fn descendants(procs: &HashMap<u32, Proc>, root: u32) -> Vec<u32> {
    let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
    for (&pid, p) in procs {
        children.entry(p.ppid).or_default().push(pid);
    }
    let mut out = Vec::new();
    let mut stack = vec![root];
    while let Some(p) = stack.pop() {
        stack.extend(children.get(&p).into_iter().flatten().copied());
        out.push(p);
    }
    out
}

/// A snapshot for telling how much CPU other work took: (busy, total) jiffies of all CPUs
/// and the CPU time of this session's processes (everything under its `dbus-run-session`:
/// the harness, the driver, the app, Xvfb, the bus, the keyring).
fn cpu_snapshot() -> (u64, u64, u64) {
    let procs = processes();
    let mut root = std::process::id();
    let mut p = root;
    while let Some(proc_) = procs.get(&p) {
        if proc_.comm == "dbus-run-sessio" {
            root = p;
            break;
        }
        p = proc_.ppid;
    }
    let ours = descendants(&procs, root)
        .iter()
        .filter_map(|p| procs.get(p))
        .map(|p| p.cpu)
        .sum();
    let (busy, total) = cpu_times();
    (busy, total, ours)
}

/// The share of all CPUs that processes outside this session used between two snapshots.
fn foreign_share(a: (u64, u64, u64), b: (u64, u64, u64)) -> f64 {
    let busy = b.0.saturating_sub(a.0);
    let total = b.1.saturating_sub(a.1).max(1);
    let ours = b.2.saturating_sub(a.2);
    busy.saturating_sub(ours) as f64 / total as f64
}

/// Waits (up to 5 min) until the CPUs have been less than 10 % busy for half a second.
async fn wait_until_idle() {
    let start = Instant::now();
    loop {
        let a = cpu_times();
        tokio::time::sleep(Duration::from_millis(500)).await;
        let b = cpu_times();
        let (busy, total) = (b.0 - a.0, b.1 - a.1);
        let share = if total > 0 {
            busy as f64 / total as f64
        } else {
            0.0
        };
        if share < 0.10 {
            break;
        }
        if start.elapsed() > Duration::from_secs(300) {
            println!(
                "    (WARNING: the CPUs are still {:.0} % busy after 5 min: launch times are skewed)",
                share * 100.0
            );
            return;
        }
    }
    let waited = start.elapsed();
    if waited > Duration::from_secs(2) {
        println!(
            "    (waited {:.0} s for other work to stop)",
            waited.as_secs_f64()
        );
    }
}

/// (busy, total) jiffies over all CPUs, from /proc/stat.
fn cpu_times() -> (u64, u64) {
    let stat = std::fs::read_to_string("/proc/stat").unwrap();
    let v: Vec<u64> = stat
        .lines()
        .next()
        .unwrap()
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal …
    let total: u64 = v.iter().take(8).sum();
    let idle = v[3] + v.get(4).copied().unwrap_or(0);
    (total - idle, total)
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

fn tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    format!(
        "--- last lines of {} ---\n{}",
        log.display(),
        lines[lines.len().saturating_sub(30)..].join("\n")
    )
}
