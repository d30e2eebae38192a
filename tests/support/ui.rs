//! WebDriver helpers for the end-to-end tests: waiting for elements, screenshots, rows.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use thirtyfour::prelude::*;

pub fn screenshots_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

pub async fn shot(driver: &WebDriver, name: &str) {
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
    driver
        .screenshot(&screenshots_dir().join(format!("{name}.png")))
        .await
        .unwrap();
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
            r#"return Array.from(document.querySelectorAll('#keys-table tbody tr')).map(tr => [
                tr.dataset.keyId, tr.querySelector('.name').textContent,
                tr.querySelector('.start').textContent, tr.querySelector('.status').textContent]);"#,
            vec![],
        )
        .await
        .unwrap();
    serde_json::from_value(ret.json().clone()).unwrap()
}

pub fn clipboard() -> Option<String> {
    let out = Command::new("xclip")
        .args(["-o", "-selection", "clipboard"])
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
