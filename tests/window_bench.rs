//! A benchmark, not a test: the Keysmith desktop app against an empty Tauri + Leptos window
//! built the same way (`bench/empty-window`), measured in the same run, alternately, on the
//! same virtual display. Run it with `scripts/bench-window.sh` (it builds both, then runs
//! this inside `scripts/with-session.sh --display`).
//!
//! 1. Launch to interactive: from the moment the app binary is executed until its first
//!    screen's element is in the DOM (Keysmith: `#setup-name` on an empty data directory;
//!    the empty window: `#ready`). The app is started by WebKitWebDriver (through
//!    tauri-driver) via a tiny wrapper script that records the launch time (wall clock, ns)
//!    and its pid, then `exec`s the binary. The end is taken inside the page: a
//!    `MutationObserver` notes `performance.timeOrigin + performance.now()` when the element
//!    is inserted (or, if it is already there when WebDriver first gets to run a script, the
//!    time of that script: an upper bound). The time at which the harness hears of it over
//!    WebDriver is printed too ("via driver"; it adds the WebDriver round trips).
//! 2. Idle memory: five seconds after interactive, PSS summed over the app process and all
//!    its descendants (WebKitWebProcess, WebKitNetworkProcess), from /proc/PID/smaps_rollup.
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

use keysmith_tests::{built_binary, require_secret_service, TauriDriver};
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
    /// Whether a MutationObserver saw the insertion (else: an upper bound).
    observed: bool,
    /// When the harness heard of it over WebDriver.
    via_driver_ms: f64,
    /// When the page's navigation started (`performance.timeOrigin`): the native share.
    time_origin_ms: f64,
    first_paint_ms: Option<f64>,
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
/// page's clock (ms since the epoch) and whether the insertion was observed.
const WAIT_FOR_ELEMENT: &str = r#"
const id = arguments[0];
const done = arguments[arguments.length - 1];
const now = () => performance.timeOrigin + performance.now();
const report = (observed) => done({ at: now(), observed, origin: performance.timeOrigin });
if (document.getElementById(id)) {
  report(false);
} else {
  const observer = new MutationObserver(() => {
    if (document.getElementById(id)) {
      observer.disconnect();
      report(true);
    }
  });
  observer.observe(document, { childList: true, subtree: true });
}
"#;

/// The first paint with content, on the page's clock, if WebKit reports paint timing.
const FIRST_PAINT: &str = r#"
const entries = performance.getEntriesByType('paint');
const fcp = entries.find(e => e.name === 'first-contentful-paint') || entries[0];
return fcp ? performance.timeOrigin + fcp.startTime : null;
"#;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    assert!(
        std::env::var_os("DISPLAY").is_some(),
        "no DISPLAY: run through scripts/bench-window.sh (scripts/with-session.sh --display)"
    );
    require_secret_service();
    let runs: usize = std::env::var("KEYSMITH_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|n| *n > 0)
        .unwrap_or(5);

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
            ready_id: "setup-name",
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
        let run = launch(s).await;
        println!("  warm-up {:<12} {}", s.label, describe(&run));
    }
    let mut results: [Vec<Run>; 2] = [Vec::new(), Vec::new()];
    for i in 0..runs {
        for (s, out) in subjects.iter().zip(results.iter_mut()) {
            let run = launch(s).await;
            println!("  run {}   {:<12} {}", i + 1, s.label, describe(&run));
            out.push(run);
        }
    }
    println!("  load average after: {}", load_average());

    println!();
    println!("medians over {runs} runs:");
    let med = |rs: &[Run], f: &dyn Fn(&Run) -> f64| median(rs.iter().map(f).collect());
    let mut launch_med = [0.0; 2];
    let mut pss_med = [0.0; 2];
    for (k, (s, rs)) in subjects.iter().zip(&results).enumerate() {
        launch_med[k] = med(rs, &|r| r.interactive_ms);
        pss_med[k] = med(rs, &|r| r.mem.pss_kb as f64);
        let paints: Vec<f64> = rs.iter().filter_map(|r| r.first_paint_ms).collect();
        println!(
            "  {:<12} interactive {:>6.0} ms (via driver {:>6.0} ms; navigation starts at {:>5.0} ms{}) \
             | PSS {:>6.1} MB  RSS {:>6.1} MB  USS {:>6.1} MB",
            s.label,
            launch_med[k],
            med(rs, &|r| r.via_driver_ms),
            med(rs, &|r| r.time_origin_ms),
            if paints.len() == rs.len() {
                format!("; first paint {:.0} ms", median(paints))
            } else {
                String::new()
            },
            mb(pss_med[k]),
            mb(med(rs, &|r| r.mem.rss_kb as f64)),
            mb(med(rs, &|r| r.mem.uss_kb as f64)),
        );
    }
    let launch_ratio = launch_med[1] / launch_med[0];
    let pss_ratio = pss_med[1] / pss_med[0];
    println!();
    println!("Keysmith / empty window:");
    println!(
        "  launch to interactive  {launch_ratio:.2}x  (goal <= {LAUNCH_GOAL}x: {})",
        verdict(launch_ratio <= LAUNCH_GOAL)
    );
    println!(
        "  idle PSS               {pss_ratio:.2}x  (goal <= {MEMORY_GOAL}x: {})",
        verdict(pss_ratio <= MEMORY_GOAL)
    );

    println!();
    println!("UI wasm (gzip -9):");
    for (label, dir) in [
        ("Keysmith", root.join("src-ui/dist")),
        ("empty window", root.join("bench/empty-window/ui/dist")),
    ] {
        let wasm = wasm_files(&dir);
        assert!(!wasm.is_empty(), "no .wasm in {}: build it with trunk first", dir.display());
        for f in wasm {
            println!(
                "  {label:<12} {:>8} bytes gzipped ({} bytes raw) {}",
                gzip9_len(&f),
                std::fs::metadata(&f).unwrap().len(),
                f.file_name().unwrap().to_string_lossy()
            );
        }
    }
}

/// Launches `s` once through tauri-driver, waits until interactive, idles, measures, quits.
async fn launch(s: &Subject) -> Run {
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
    Command::new("chmod").arg("+x").arg(&wrapper).status().unwrap();

    let mut envs: Vec<(&str, OsString)> = vec![
        ("XDG_DATA_HOME", dir("xdg-data").into()),
        ("XDG_CONFIG_HOME", dir("xdg-config").into()),
        ("XDG_CACHE_HOME", dir("xdg-cache").into()),
    ];
    if s.keysmith {
        // Not created: the app creates its own data directory on first run.
        envs.push(("KEYSMITH_DATA_DIR", work.path().join("data").into()));
    }
    let log = work.path().join("driver.log");
    let tauri_driver = TauriDriver::start(&envs, &log);
    let mut app = AppGuard {
        pid: None,
        binary: s.binary.clone(),
    };

    let mut caps = thirtyfour::Capabilities::new();
    caps.set(
        "tauri:options",
        serde_json::json!({ "application": wrapper.to_string_lossy() }),
    )
    .unwrap();
    let driver = WebDriver::new(tauri_driver.url(), caps)
        .await
        .unwrap_or_else(|e| panic!("no WebDriver session with {}: {e}\n{}", s.label, tail(&log)));
    let (pid, launched_ms) = read_launch(&launch_file);
    app.pid = Some(pid);

    // The first script may run before the app's page has replaced the initial one, or be cut
    // off by the navigation: try again until the element is reported.
    let deadline = Instant::now() + Duration::from_secs(60);
    let ready = loop {
        match driver
            .execute_async(WAIT_FOR_ELEMENT, vec![serde_json::json!(s.ready_id)])
            .await
        {
            Ok(ret) if ret.json().get("at").is_some_and(|v| v.is_f64()) => {
                break (ret.json().clone(), now_ms());
            }
            Ok(ret) => println!("    (unexpected answer {:?}; retrying)", ret.json()),
            Err(e) => println!("    (waiting for #{} failed: {e}; retrying)", s.ready_id),
        }
        assert!(
            Instant::now() < deadline,
            "#{} never appeared in {}\n{}",
            s.ready_id,
            s.label,
            tail(&log)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let (answer, heard_ms) = ready;
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
    drop(tauri_driver);
    Run {
        interactive_ms,
        observed: answer["observed"].as_bool().unwrap_or(false),
        via_driver_ms,
        time_origin_ms: origin - launched_ms,
        first_paint_ms,
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
    format!(
        "interactive {:>6.0} ms{} (via driver {:>6.0}, navigation at {:>5.0}{}) | PSS {:>6.1} MB \
         (RSS {:.1}, USS {:.1}) = {}",
        r.interactive_ms,
        if r.observed { " " } else { "*" },
        r.via_driver_ms,
        r.time_origin_ms,
        r.first_paint_ms
            .map(|p| format!(", first paint {p:.0}"))
            .unwrap_or_default(),
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
                let _ = Command::new("kill").args([signal, &pid.to_string()]).status();
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
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos() as f64 / 1e6
}

/// PSS, RSS and USS summed over `pid` and all its descendants.
fn memory(pid: u32) -> Memory {
    let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(p) = entry.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{p}/stat")) else {
            continue;
        };
        // "pid (comm) state ppid …": comm may hold spaces and parentheses.
        let Some(ppid) = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
            .and_then(|v| v.parse::<u32>().ok())
        else {
            continue;
        };
        children.entry(ppid).or_default().push(p);
    }
    let mut mem = Memory::default();
    let mut stack = vec![pid];
    while let Some(p) = stack.pop() {
        stack.extend(children.get(&p).into_iter().flatten().copied());
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

fn median(mut v: Vec<f64>) -> f64 {
    assert!(!v.is_empty());
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
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
