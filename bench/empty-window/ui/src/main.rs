//! The empty window's whole UI: one button, rendered by Leptos, that the benchmark waits for.

use leptos::prelude::*;

fn main() {
    leptos::mount::mount_to_body(|| view! { <button id="ready">"Ready"</button> });
    // For the benchmark: the moment the button went in, on the page's clock. The page can be
    // quicker than WebDriver, whose script then arrives too late to observe the insertion.
    if let Some(performance) = web_sys::window().and_then(|w| w.performance()) {
        let _ = performance.mark("interactive");
    }
}
