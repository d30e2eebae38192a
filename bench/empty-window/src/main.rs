//! An empty Tauri window: the UI in `ui/` (one Leptos button) and nothing else.

// No console window on Windows release builds.
#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

fn main() {
    if let Err(e) = tauri::Builder::default().run(tauri::generate_context!()) {
        eprintln!("keysmith-empty-window: the window could not start: {e}");
        std::process::exit(1);
    }
}
