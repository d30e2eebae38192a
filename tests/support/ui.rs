//! WebDriver helpers for the end-to-end tests: waiting for elements, screenshots, rows.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::Duration;

use thirtyfour::prelude::*;

pub fn screenshots_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The app process behind each WebDriver session [`launch`] opened, for [`shot`].
static APPS: Mutex<BTreeMap<String, u32>> = Mutex::new(BTreeMap::new());

/// Saves the app's window as the X server shows it (what a person sees) to
/// `docs/screenshots/{name}.png`, with ImageMagick's `import`. Not WebDriver's screenshot:
/// that is WebKit's own snapshot, which never returns when compositing is off, as the app
/// turns it off on a machine with no GPU (src-tauri `composite_only_with_a_gpu`). The window
/// is raised first, as a test may have two open at the same place.
pub async fn shot(driver: &WebDriver, name: &str) {
    let pid = APPS
        .lock()
        .unwrap()
        .get(&driver.session_id().to_string())
        .copied()
        .expect("shot() takes windows that launch() opened");
    let found = Command::new("xdotool")
        .args(["search", "--onlyvisible", "--pid", &pid.to_string()])
        .output()
        .expect("xdotool (scripts/setup.sh installs it)");
    let window = String::from_utf8_lossy(&found.stdout)
        .lines()
        .next()
        .unwrap_or_else(|| panic!("no visible window of the app (pid {pid}) for {name}"))
        .to_owned();
    let raised = Command::new("xdotool")
        .args(["windowraise", &window])
        .status()
        .unwrap();
    assert!(raised.success(), "xdotool could not raise window {window}");
    // Let the page paint the state we waited for: two animation frames, then a pause for
    // WebKit's snapshot to catch up (a screenshot right after a DOM change can miss it).
    driver
        .execute_async(
            "const done = arguments[arguments.length - 1];
             requestAnimationFrame(() => requestAnimationFrame(() => done(true)));",
            vec![],
        )
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(400)).await;
    let path = screenshots_dir().join(format!("{name}.png"));
    let out = Command::new("import")
        .args(["-silent", "-window", &window])
        .arg(&path)
        .output()
        .expect("ImageMagick's import (scripts/setup.sh installs it)");
    assert!(
        out.status.success(),
        "import could not save {name}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

pub async fn by_id(driver: &WebDriver, id: &str) -> WebElement {
    driver
        .query(By::Id(id))
        .wait(Duration::from_secs(20), Duration::from_millis(50))
        .first()
        .await
        .unwrap_or_else(|e| panic!("#{id} did not appear: {e}"))
}

pub async fn gone(driver: &WebDriver, id: &str) {
    driver
        .query(By::Id(id))
        .wait(Duration::from_secs(20), Duration::from_millis(50))
        .not_exists()
        .await
        .unwrap_or_else(|e| panic!("#{id} did not go away: {e}"));
}

pub async fn focused_id(driver: &WebDriver) -> String {
    let ret = driver
        .execute(
            "return document.activeElement && document.activeElement.id;",
            vec![],
        )
        .await
        .unwrap();
    ret.json().as_str().unwrap_or_default().to_owned()
}

pub async fn rows(driver: &WebDriver) -> Vec<(String, String, String, String)> {
    // (id, name, start cell, status) of every row.
    let ret = driver
        .execute(
            r#"return Array.from(document.querySelectorAll('#keys-table tbody tr.key-row')).map(tr => [
                tr.dataset.keyId, tr.querySelector('.name').textContent,
                tr.querySelector('.start').textContent, tr.querySelector('.status').textContent]);"#,
            vec![],
        )
        .await
        .unwrap();
    serde_json::from_value(ret.json().clone()).unwrap()
}

pub fn clipboard() -> Option<String> {
    x_selection("clipboard")
}

/// Waits (up to 15 s) until the clipboard no longer holds `key`; panics saying `what` if it
/// still does.
pub async fn clipboard_lets_go_of(key: &str, what: &str) {
    eventually(what, Duration::from_secs(15), || async move {
        match clipboard() {
            Some(held) if held == key => Err("it still holds the key"),
            _ => Ok(()),
        }
    })
    .await;
}

/// What a middle-click would paste (X11's PRIMARY selection), if anything.
pub fn primary_selection() -> Option<String> {
    x_selection("primary")
}

fn x_selection(which: &str) -> Option<String> {
    let out = Command::new("xclip")
        .args(["-o", "-selection", which])
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
        .filter(|s| !s.is_empty())
}

/// Chooses `value` in the `<select>` with this id, as a person picking an option would.
pub async fn select(driver: &WebDriver, id: &str, value: &str) {
    by_id(driver, id).await;
    driver
        .execute(
            "const s = document.getElementById(arguments[0]); s.value = arguments[1];
             s.dispatchEvent(new Event('change', { bubbles: true }));",
            vec![serde_json::json!(id), serde_json::json!(value)],
        )
        .await
        .unwrap();
}

/// Types `text` into the input with this id.
pub async fn type_into(driver: &WebDriver, id: &str, text: &str) {
    by_id(driver, id).await.send_keys(text).await.unwrap();
}

/// Clicks the element with this id.
pub async fn click(driver: &WebDriver, id: &str) {
    by_id(driver, id).await.click().await.unwrap();
}

/// Signs in on the unlock screen as member `name` with passphrase `pass`.
pub async fn unlock(driver: &WebDriver, name: &str, pass: &str) {
    type_into(driver, "unlock-name", name).await;
    type_into(driver, "unlock-pass", pass).await;
    click(driver, "unlock-submit").await;
}

/// A WebDriver session with the built app; the app gets `envs`.
pub async fn launch(
    envs: &[(&str, &std::ffi::OsStr)],
    log: &Path,
) -> (crate::TauriDriver, WebDriver) {
    let app = crate::built_binary("keysmith-app");
    crate::install_crypto_provider();
    let tauri_driver = crate::TauriDriver::start(envs, log);
    let mut caps = thirtyfour::Capabilities::new();
    caps.set(
        "tauri:options",
        serde_json::json!({ "application": app.to_string_lossy() }),
    )
    .unwrap();
    let driver = WebDriver::new(tauri_driver.url(), caps)
        .await
        .expect("a WebDriver session with the app");
    let app = crate::descendants(tauri_driver.pid())
        .into_iter()
        .find(|&pid| crate::exe_name(pid).is_some_and(|n| n == "keysmith-app"))
        .expect("the app's process under the driver");
    APPS.lock()
        .unwrap()
        .insert(driver.session_id().to_string(), app);
    (tauri_driver, driver)
}

/// Polls `probe` every 100 ms until it returns `Ok`, for at most `timeout`; then panics
/// with `what` and the last `Err` the probe gave (the state it saw).
pub async fn eventually<T, E, F, Fut>(what: &str, timeout: Duration, mut probe: F) -> T
where
    E: std::fmt::Debug,
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, E>>,
{
    let deadline = std::time::Instant::now() + timeout;
    loop {
        match probe().await {
            Ok(value) => return value,
            Err(last) => {
                assert!(std::time::Instant::now() < deadline, "{what}: {last:?}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// Waits (up to 5 s) until the focused element matches the CSS selector `css`: after a
/// dialog closes, focus goes back to the control that opened it.
pub async fn focus_returns_to(driver: &WebDriver, css: &str) {
    eventually(
        &format!("focus did not return to {css}"),
        Duration::from_secs(5),
        || async move {
            let ret = driver
                .execute(
                    "const e = document.activeElement;
                     return [!!e && e.matches(arguments[0]),
                             e ? e.outerHTML.slice(0, 120) : 'nothing'];",
                    vec![serde_json::json!(css)],
                )
                .await
                .unwrap();
            let got = ret.json().clone();
            if got[0] == serde_json::json!(true) {
                Ok(())
            } else {
                Err(got[1].as_str().unwrap_or_default().to_owned())
            }
        },
    )
    .await;
}

/// Runs axe-core (`node_modules/axe-core`, put there by `scripts/setup.sh`) in the real
/// window on the screen as it is, once in the light theme and once in the dark, with the
/// WCAG 2.0/2.1 A and AA rules (colour contrast among them), and panics listing every
/// serious or critical violation (issue 12: none on any screen). `screen` names it.
pub async fn accessible(driver: &WebDriver, screen: &str) {
    let axe = Path::new(env!("CARGO_MANIFEST_DIR")).join("../node_modules/axe-core/axe.min.js");
    let source = std::fs::read_to_string(&axe)
        .unwrap_or_else(|e| panic!("{}: {e} (run scripts/setup.sh)", axe.display()));
    let loaded = driver
        .execute("return typeof window.axe === 'object';", vec![])
        .await
        .unwrap();
    if loaded.json() != &serde_json::json!(true) {
        driver
            .execute(&format!("{source}\n;return true;"), vec![])
            .await
            .unwrap();
    }
    let mut found = Vec::new();
    for theme in ["light", "dark"] {
        let ret = driver
            .execute_async(
                "const [theme, done] = [arguments[0], arguments[arguments.length - 1]];
                 const root = document.documentElement;
                 const before = root.getAttribute('data-theme');
                 root.setAttribute('data-theme', theme);
                 requestAnimationFrame(() => requestAnimationFrame(() => {
                   window.axe.run(document, { runOnly: { type: 'tag',
                       values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'] } })
                     .then(r => {
                       if (before === null) root.removeAttribute('data-theme');
                       else root.setAttribute('data-theme', before);
                       done(r.violations
                         .filter(v => v.impact === 'serious' || v.impact === 'critical')
                         .map(v => v.id + ' (' + v.impact + '): ' + v.nodes.slice(0, 4)
                           .map(n => n.target.join(' ') + ' ' + (n.failureSummary || '')
                             .replace(/\\s+/g, ' ').slice(0, 160)).join(' | ')));
                     }, e => done(['axe failed: ' + e]));
                 }));",
                vec![serde_json::json!(theme)],
            )
            .await
            .unwrap();
        let list: Vec<String> = serde_json::from_value(ret.json().clone()).unwrap_or_default();
        found.extend(list.into_iter().map(|v| format!("[{theme}] {v}")));
    }
    assert!(
        found.is_empty(),
        "{screen}: serious accessibility violations:\n{}",
        found.join("\n")
    );
}

/// Resizes the window to `width` × `height` CSS pixels (its inner size) and waits until
/// the page has that size.
pub async fn resize(driver: &WebDriver, width: u32, height: u32) {
    let target = (i64::from(width), i64::from(height));
    driver
        .set_window_rect(0, 0, width, height)
        .await
        .expect("WebDriver resizes the window");
    // The window rect includes decorations, if any, and the window manager applies a
    // resize some time after WebDriver returns: read a size only once two readings 100 ms
    // apart agree, and correct from the window's actual rect, never from what was asked
    // (a stale reading corrected from the request overshoots by the old size's difference).
    let last = std::cell::Cell::new(None);
    let last = &last;
    eventually(
        &format!("the window did not become {width}×{height}"),
        Duration::from_secs(5),
        || async move {
            let inner = inner_size(driver).await;
            if inner == target {
                return Ok(());
            }
            if last.get() == Some(inner) {
                let outer = driver.get_window_rect().await.unwrap();
                let w = u32::try_from(outer.width + target.0 - inner.0).unwrap();
                let h = u32::try_from(outer.height + target.1 - inner.1).unwrap();
                driver.set_window_rect(0, 0, w, h).await.unwrap();
                last.set(None);
            } else {
                last.set(Some(inner));
            }
            Err(inner)
        },
    )
    .await;
}

/// The page's viewport, `(window.innerWidth, window.innerHeight)`, in CSS pixels.
async fn inner_size(driver: &WebDriver) -> (i64, i64) {
    let got = driver
        .execute("return [window.innerWidth, window.innerHeight];", vec![])
        .await
        .unwrap();
    serde_json::from_value(got.json().clone()).unwrap()
}

/// Everything that sticks out: elements of the page whose box reaches past the window's
/// right edge, or a page wider than the window (a horizontal scrollbar), as descriptions.
pub async fn cut_off(driver: &WebDriver) -> Vec<String> {
    let ret = driver
        .execute(
            "const w = document.documentElement.clientWidth;
             const out = [];
             if (document.documentElement.scrollWidth > w)
               out.push('the page is ' + document.documentElement.scrollWidth + ' px wide in ' + w);
             for (const e of document.querySelectorAll('th, td, button, select, input, .status, h1, h2')) {
               const r = e.getBoundingClientRect();
               if (r.width > 0 && r.right > w + 0.5)
                 out.push(e.tagName + (e.id ? '#' + e.id : '') + '.' + e.className + ' ends at ' + Math.round(r.right));
             }
             return out.slice(0, 12);",
            vec![],
        )
        .await
        .unwrap();
    serde_json::from_value(ret.json().clone()).unwrap_or_default()
}
