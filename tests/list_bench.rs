//! A benchmark, not a test: the key list of an account with 10,000 keys against the same
//! account with none, in the real app (release build, under Xvfb, over WebDriver), launched
//! alternately in the same run (issue 12). Run it with `scripts/bench-list.sh`.
//!
//! Both accounts have an Owner (Olive) and an Admin (Max); in the big one Olive generated
//! 9,900 keys and Max 100 (`testkit::bulk_keys`, stored as the app stores them). Each launch
//! signs Olive in through the window, then measures, on the page's own clock
//! (`performance.now()`):
//!
//! 1. **First render**: from the moment the signed-in frame (`.shell`) is inserted until the
//!    frame after the list's first row (with no keys: "No API keys yet") is inserted: the
//!    list's share of signing in, which is what the goal (≤ 150 ms) is about. Also shown:
//!    from the Enter that submits the passphrase (the passphrase's key derivation is in it).
//! 2. **Keystrokes**: "bench key 12" typed into the search box one character at a time
//!    (each an `input` event, as typing sends), then erased one at a time; and the member
//!    filter set to Max, then back to every member. Each from the event until the next
//!    frame is painted (`requestAnimationFrame`, then a task): the work and the wait for the
//!    frame, as a person sees it. Goal ≤ 30 ms each.
//! 3. **Scrolling**: 150 steps of 300 px, one per frame, down the list: the longest gap between
//!    frames and the 95th percentile (one 60 Hz frame is 16.7 ms).
//! 4. **Memory**: five seconds after the list rendered, PSS summed over the app and its
//!    WebKit processes (from `/proc/PID/smaps_rollup`). Goal: 10,000 keys ≤ 1.2 × none.
//!
//! `KEYSMITH_BENCH_RUNS` sets the number of launches of each (3); `KEYSMITH_BENCH_VERBOSE`
//! prints every keystroke's figures.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::ffi::OsStr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use keysmith_core::{testkit, OsKeyring, Registry};
use keysmith_tests::ui::{by_id, launch};
use keysmith_tests::{bench_start, descendants, exe_name, median, PASSPHRASE};
use keysmith_types::Role;
use thirtyfour::prelude::*;

const KEYS: usize = 10_000;
const BY_MAX: usize = 100;
const FIRST_RENDER_GOAL_MS: f64 = 150.0;
const KEYSTROKE_GOAL_MS: f64 = 30.0;
const MEMORY_GOAL: f64 = 1.2;
const IDLE: Duration = Duration::from_secs(5);

#[derive(Debug, Default)]
struct Run {
    /// `.shell` inserted → first row painted.
    first_render_ms: f64,
    /// Enter on the passphrase → first row painted.
    from_enter_ms: f64,
    /// `.shell` inserted → the whole list in the page (after its first page).
    whole_ms: f64,
    /// Each search keystroke (typing, then erasing), event → next paint.
    keystrokes_ms: Vec<f64>,
    /// The slowest keystroke: its query and its [`Painted`] times.
    slowest: Option<(String, Painted)>,
    /// The member filter: to Max, back to every member.
    filter_ms: Vec<f64>,
    /// Frame gaps while scrolling: (longest, 95th percentile), ms.
    scroll_ms: Option<(f64, f64)>,
    pss_kb: u64,
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let runs = bench_start("scripts/bench-list.sh", 3);
    let work = tempfile::tempdir().unwrap();
    let empty = work.path().join("none");
    let full = work.path().join("full");
    account(&empty, 0).await;
    account(&full, KEYS).await;
    println!("list benchmark: {runs} alternating launches of each, after a warm-up of each");

    for (dir, label) in [(&empty, "none"), (&full, "10,000")] {
        let r = measure(dir, work.path(), label == "10,000").await;
        println!("  warm-up {label:>6} keys: {}", describe(&r));
    }
    let mut results: [Vec<Run>; 2] = [Vec::new(), Vec::new()];
    for i in 0..runs {
        for (k, (dir, label)) in [(&empty, "none"), (&full, "10,000")]
            .into_iter()
            .enumerate()
        {
            let r = measure(dir, work.path(), k == 1).await;
            println!("  run {} {label:>6} keys: {}", i + 1, describe(&r));
            results[k].push(r);
        }
    }

    let [none, big] = &results;
    let med = |rs: &[Run], f: &dyn Fn(&Run) -> f64| median(rs.iter().map(f).collect());
    let worst =
        |rs: &[Run], f: &dyn Fn(&Run) -> Vec<f64>| rs.iter().flat_map(f).fold(0.0_f64, f64::max);
    println!();
    println!("medians over {runs} launches       no keys   10,000 keys   goal");
    let first = med(big, &|r| r.first_render_ms);
    println!(
        "first render after sign-in (ms) {:>9.0} {:>13.0}   ≤ {FIRST_RENDER_GOAL_MS:.0}  {}",
        med(none, &|r| r.first_render_ms),
        first,
        verdict(first <= FIRST_RENDER_GOAL_MS)
    );
    println!(
        "  from the Enter (ms)           {:>9.0} {:>13.0}",
        med(none, &|r| r.from_enter_ms),
        med(big, &|r| r.from_enter_ms)
    );
    println!(
        "  the whole list, polled (ms)   {:>9.0} {:>13.0}",
        med(none, &|r| r.whole_ms),
        med(big, &|r| r.whole_ms)
    );
    let keystroke_median = median(big.iter().flat_map(|r| r.keystrokes_ms.clone()).collect());
    let keystroke_worst = worst(big, &|r| r.keystrokes_ms.clone());
    println!(
        "search keystroke, median (ms)             {keystroke_median:>13.1}   ≤ {KEYSTROKE_GOAL_MS:.0}  {}",
        verdict(keystroke_median <= KEYSTROKE_GOAL_MS)
    );
    println!(
        "search keystroke, worst (ms)              {keystroke_worst:>13.1}   ≤ {KEYSTROKE_GOAL_MS:.0}  {}",
        verdict(keystroke_worst <= KEYSTROKE_GOAL_MS)
    );
    let slowest: Vec<&(String, Painted)> = big.iter().filter_map(|r| r.slowest.as_ref()).collect();
    if !slowest.is_empty() {
        println!(
            "  the slowest's script share (median)       {:>12.0}%   (event → first task after it; see `Painted`)",
            median(slowest.iter().map(|(_, p)| 100.0 * p.script_ms / p.total_ms).collect())
        );
    }
    let filter_worst = worst(big, &|r| r.filter_ms.clone());
    println!(
        "member filter and back, worst (ms)        {filter_worst:>13.1}   ≤ {KEYSTROKE_GOAL_MS:.0}  {}",
        verdict(filter_worst <= KEYSTROKE_GOAL_MS)
    );
    let scroll: Vec<(f64, f64)> = big.iter().filter_map(|r| r.scroll_ms).collect();
    if !scroll.is_empty() {
        println!(
            "scrolling: longest frame gap (ms)         {:>13.1}",
            median(scroll.iter().map(|s| s.0).collect())
        );
        println!(
            "scrolling: 95th percentile gap (ms)       {:>13.1}",
            median(scroll.iter().map(|s| s.1).collect())
        );
    }
    let (m0, m1) = (
        med(none, &|r| r.pss_kb as f64),
        med(big, &|r| r.pss_kb as f64),
    );
    println!(
        "memory, PSS (MB)                {:>9.0} {:>13.0}   ≤ {MEMORY_GOAL} ×  {:.2} × {}",
        m0 / 1024.0,
        m1 / 1024.0,
        m1 / m0,
        verdict(m1 / m0 <= MEMORY_GOAL)
    );
}

/// An account in `dir` (Olive, the Owner, and Max, an Admin) with `keys` keys, of which Max
/// generated [`BY_MAX`]; its pepper in the session's keyring, as `keysmith init` leaves it.
async fn account(dir: &Path, keys: usize) {
    std::fs::create_dir_all(dir).unwrap();
    let registry = Registry::open(dir, Arc::new(OsKeyring)).await.unwrap();
    let olive = registry.create_account("Olive", PASSPHRASE).await.unwrap();
    let max = registry
        .add_member(&olive.id, "Max", Role::Admin, "an initial passphrase")
        .await
        .unwrap();
    registry
        .change_passphrase(&max.id, "an initial passphrase", PASSPHRASE)
        .await
        .unwrap();
    if keys > 0 {
        let pepper = registry.verifier_pepper().await.unwrap();
        testkit::bulk_keys(registry.pool(), &pepper, &olive.id, keys - BY_MAX, keys).await;
        testkit::bulk_keys(registry.pool(), &pepper, &max.id, BY_MAX, keys).await;
    }
}

/// One launch on `dir`: sign in, then the figures. `full`: the list has keys to search.
async fn measure(dir: &Path, work: &Path, full: bool) -> Run {
    let log = work.join("app.log");
    let (tauri_driver, driver) = launch(
        &[
            ("KEYSMITH_DATA_DIR", dir.as_os_str()),
            ("KEYSMITH_LOG", OsStr::new("warn")),
        ],
        &log,
    )
    .await;
    let mut run = Run::default();
    let result = steps(&driver, full, &mut run).await;
    // Memory while the list is on screen, the window idle.
    tokio::time::sleep(IDLE).await;
    run.pss_kb = pss_kb(tauri_driver.pid());
    let _ = driver.quit().await;
    drop(tauri_driver);
    if let Err(e) = result {
        panic!("{e}");
    }
    run
}

async fn steps(driver: &WebDriver, full: bool, run: &mut Run) -> WebDriverResult<()> {
    by_id(driver, "unlock-name")
        .await
        .send_keys("Olive")
        .await?;
    let pass = by_id(driver, "unlock-pass").await;
    pass.send_keys(PASSPHRASE).await?;
    driver
        .execute(
            "window.__bench = {};
             document.addEventListener('keydown', e => {
               if (e.key === 'Enter') window.__bench.enter = performance.now();
             }, { capture: true, once: true });
             const seen = () => document.querySelector('#keys-table tr.key-row, #no-keys');
             const watch = new MutationObserver(() => {
               if (!window.__bench.shell && document.querySelector('.shell'))
                 window.__bench.shell = performance.now();
               if (seen()) {
                 watch.disconnect();
                 requestAnimationFrame(() => setTimeout(() => {
                   window.__bench.painted = performance.now();
                 }));
               }
             });
             watch.observe(document.body, { childList: true, subtree: true });",
            vec![],
        )
        .await?;
    pass.send_keys(Key::Enter).await?;
    let times = loop {
        let ret = driver
            .execute(
                "const b = window.__bench;
                 return b.painted ? [b.painted - b.shell, b.painted - b.enter] : null;",
                vec![],
            )
            .await?;
        if let Ok((a, b)) = serde_json::from_value::<(f64, f64)>(ret.json().clone()) {
            break (a, b);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    run.first_render_ms = times.0;
    run.from_enter_ms = times.1;
    // The page shows the newest keys first, then the whole list ("Loading the rest…" until
    // then): when every key is in the table (its aria-rowcount counts the heading row too),
    // polled, so up to a WebDriver round trip late.
    let rows = if full { KEYS + 1 } else { 0 };
    run.whole_ms = loop {
        let ret = driver
            .execute(
                "const alert = document.querySelector('[role=alert]');
                 if (alert && alert.textContent) return alert.textContent;
                 const table = document.getElementById('keys-table');
                 const shown = table ? Number(table.getAttribute('aria-rowcount')) : 0;
                 return shown === arguments[0] && !document.getElementById('keys-more')
                   ? performance.now() - window.__bench.shell : null;",
                vec![serde_json::json!(rows)],
            )
            .await?;
        if let Some(ms) = ret.json().as_f64() {
            break ms;
        }
        if let Some(alert) = ret.json().as_str() {
            panic!("the keys page says: {alert}");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    if !full {
        return Ok(());
    }

    // Keystrokes: type, then erase.
    let query = "bench key 12";
    for n in (1..=query.len()).chain((0..query.len()).rev()) {
        let painted = until_painted(driver, "key-search", "input", &query[..n]).await?;
        if std::env::var_os("KEYSMITH_BENCH_VERBOSE").is_some() {
            eprintln!(
                "    keystroke {:?}: {:.0} ms, script {:.0} ms",
                &query[..n],
                painted.total_ms,
                painted.script_ms
            );
        }
        run.keystrokes_ms.push(painted.total_ms);
        if run
            .slowest
            .as_ref()
            .is_none_or(|(_, s)| painted.total_ms > s.total_ms)
        {
            run.slowest = Some((query[..n].to_owned(), painted));
        }
    }
    // The member filter: Max, then every member again.
    let max_id = driver
        .execute(
            "return Array.from(document.querySelectorAll('#key-filter option'))
               .find(o => o.textContent === 'Max').value;",
            vec![],
        )
        .await?;
    let max_id = max_id.json().as_str().unwrap_or_default().to_owned();
    run.filter_ms.push(
        until_painted(driver, "key-filter", "change", &max_id)
            .await?
            .total_ms,
    );
    let shown = driver
        .execute(
            "return document.querySelector('#keys-table').getAttribute('aria-rowcount');",
            vec![],
        )
        .await?;
    assert_eq!(
        shown.json().as_str(),
        Some(&*format!("{}", BY_MAX + 1)),
        "the filter did not narrow the list to Max's keys"
    );
    run.filter_ms.push(
        until_painted(driver, "key-filter", "change", "")
            .await?
            .total_ms,
    );

    // Scrolling, one step per frame.
    let gaps = driver
        .execute_async(
            "const done = arguments[arguments.length - 1];
             const times = [];
             let steps = 150;
             const step = t => {
               times.push(t);
               if (steps-- === 0) {
                 const gaps = times.slice(1).map((t, i) => t - times[i]).sort((a, b) => a - b);
                 done([gaps[gaps.length - 1], gaps[Math.floor(gaps.length * 0.95)],
                       document.querySelectorAll('#keys-table tr.key-row').length]);
                 return;
               }
               window.scrollBy(0, 300);
               requestAnimationFrame(step);
             };
             requestAnimationFrame(step);",
            vec![],
        )
        .await?;
    let (longest, p95, rendered): (f64, f64, usize) =
        serde_json::from_value(gaps.json().clone()).unwrap();
    assert!(
        rendered < 200,
        "{rendered} rows in the page after scrolling: the list renders more than is in view"
    );
    run.scroll_ms = Some((longest, p95));
    driver.execute("window.scrollTo(0, 0);", vec![]).await?;
    Ok(())
}

/// Sets the value of the element `id` to `value`, fires `event` at it as a person's input
/// would, and returns how long until the next frame was painted.
async fn until_painted(
    driver: &WebDriver,
    id: &str,
    event: &str,
    value: &str,
) -> WebDriverResult<Painted> {
    let ret = driver
        .execute_async(
            "const [id, event, value, done] = arguments;
             const e = document.getElementById(id);
             const t0 = performance.now();
             e.value = value;
             e.dispatchEvent(new Event(event, { bubbles: true }));
             setTimeout(() => {
               const script = performance.now() - t0;
               requestAnimationFrame(() => setTimeout(() => {
                 done([performance.now() - t0, script]);
               }));
             });",
            vec![
                serde_json::json!(id),
                serde_json::json!(event),
                serde_json::json!(value),
            ],
        )
        .await?;
    let at = |i: usize| ret.json().get(i).and_then(serde_json::Value::as_f64);
    Ok(Painted {
        total_ms: at(0).unwrap_or(f64::NAN),
        script_ms: at(1).unwrap_or(f64::NAN),
    })
}

/// How long one change took to reach the screen, in ms (WebKit rounds to whole ms).
#[derive(Debug, Clone, Copy)]
struct Painted {
    /// The event → the frame after it painted.
    total_ms: f64,
    /// The event → the first timer after it: the page's handler and every task it queued
    /// (the UI's Rust code and its DOM calls), and also WebKit's style, layout and paint when
    /// a frame fell due before the timer. So a script share near 100% does not by itself say
    /// the UI's code is slow: with the rows redrawn in place, marks put in a scratch build of
    /// the UI showed its code done 1–2 ms after the event while this figure was 8–20 ms.
    script_ms: f64,
}

/// PSS in kB summed over the app and WebKit's processes under the driver `root`.
fn pss_kb(root: u32) -> u64 {
    descendants(root)
        .into_iter()
        .filter(|&pid| exe_name(pid).is_some_and(|n| n == "keysmith-app" || n.ends_with("Process")))
        .filter_map(|pid| std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).ok())
        .filter_map(|rollup| {
            rollup
                .lines()
                .find_map(|l| l.strip_prefix("Pss:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .sum()
}

fn describe(r: &Run) -> String {
    let worst = |v: &[f64]| v.iter().copied().fold(0.0_f64, f64::max);
    let mut s = format!(
        "first render {:.0} ms (from Enter {:.0} ms, whole list {:.0} ms), PSS {:.0} MB",
        r.first_render_ms,
        r.from_enter_ms,
        r.whole_ms,
        r.pss_kb as f64 / 1024.0
    );
    if !r.keystrokes_ms.is_empty() {
        s += &format!(
            ", keystrokes median {:.1} / worst {:.1} ms, filter worst {:.1} ms",
            median(r.keystrokes_ms.clone()),
            worst(&r.keystrokes_ms),
            worst(&r.filter_ms)
        );
    }
    if let Some((query, p)) = &r.slowest {
        s += &format!(
            ", slowest keystroke {query:?}: {:.0} ms, script {:.0} ms of it",
            p.total_ms, p.script_ms
        );
    }
    if let Some((longest, p95)) = r.scroll_ms {
        s += &format!(", scroll gaps longest {longest:.1} / p95 {p95:.1} ms");
    }
    s
}

fn verdict(ok: bool) -> &'static str {
    if ok {
        "met"
    } else {
        "NOT MET"
    }
}
