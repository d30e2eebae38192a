//! Keysmith's UI, compiled to WebAssembly and shown in the Tauri webview.
//!
//! Pages and dialogs never build IPC calls themselves: they call the typed functions in
//! [`ipc`], which return `Result<T, IpcError>`.

mod app;
mod audit;
mod dialogs;
mod format;
mod ipc;
mod keys;
mod members;
mod scan;
mod shell;
mod sign_in;
mod theme;
mod usage;

fn main() {
    console_error_panic_hook::set_once();
    theme::Theme::saved().apply();
    leptos::mount::mount_to_body(app::App);
}
