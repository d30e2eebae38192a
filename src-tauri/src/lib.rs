//! The Keysmith desktop app: a Tauri 2 shell over keysmith-core. It opens the registry in the
//! data directory, manages one [`AppState`], and exposes thin commands to the Leptos UI.

mod clipboard;
pub mod commands;
pub mod state;
mod team;

use std::sync::Arc;

use keysmith_core::OsKeyring;
use tauri::{Emitter, Manager};

pub use state::AppState;

/// The event the UI hears when the window is asked to close while a key is on display.
pub const CLOSE_REQUESTED_EVENT: &str = "keysmith://close-requested";

/// Builds and runs the app with `context`, which the binary makes with
/// `tauri::generate_context!()`. Exits with a message on stderr if the data directory or the
/// database cannot be opened.
pub fn run(context: tauri::Context) {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("KEYSMITH_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();

    let state = match open_state() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("keysmith: {e}");
            std::process::exit(1);
        }
    };

    let result = tauri::Builder::default()
        .manage(state)
        .invoke_handler(tauri::generate_handler![
            commands::session_status,
            commands::create_account,
            commands::unlock,
            commands::lock,
            commands::list_keys,
            commands::scan_folder,
            commands::generate_key,
            commands::list_scopes,
            commands::copy_key,
            commands::finish_reveal,
            commands::page_loaded,
            commands::take_unsaved_key,
            commands::revoke_key,
            commands::set_key_paused,
            commands::key_usage,
            commands::roll_key,
            commands::quit,
            commands::change_passphrase,
            commands::list_members,
            commands::add_member,
            commands::change_role,
            commands::removal_preview,
            commands::remove_member,
            commands::transfer_ownership,
            commands::audit_report,
            commands::join_server,
            commands::leave_server,
        ])
        .on_window_event(|window, event| {
            if let tauri::WindowEvent::CloseRequested { api, .. } = event {
                let state = window.state::<AppState>();
                if state.reveal_uncopied() {
                    api.prevent_close();
                    if let Err(e) = window.emit(CLOSE_REQUESTED_EVENT, ()) {
                        tracing::warn!(error = %e, "could not ask the UI about closing");
                    }
                } else {
                    state.lock();
                }
            }
        })
        .run(context);
    if let Err(e) = result {
        eprintln!("keysmith: the window could not start: {e}");
        std::process::exit(1);
    }
}

/// The state on the data directory: joined to a team server, or this computer's registry.
fn open_state() -> Result<AppState, String> {
    let dir = keysmith_core::data_dir::resolve(None).map_err(|e| e.to_string())?;
    tracing::info!(data_dir = %dir.display(), "opening Keysmith");
    tauri::async_runtime::block_on(AppState::open(
        dir,
        Arc::new(OsKeyring),
        state::idle_limit_from_env(),
    ))
    .map_err(|e| e.message)
}
