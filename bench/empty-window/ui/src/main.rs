//! The empty window's whole UI: one button, rendered by Leptos, that the benchmark waits for.

use leptos::prelude::*;

fn main() {
    leptos::mount::mount_to_body(|| view! { <button id="ready">"Ready"</button> });
}
