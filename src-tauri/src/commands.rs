//! The Tauri commands: each one line, delegating to [`AppState`]. Every command is declared
//! in `build.rs` and granted to the main window in `src-tauri/capabilities/main.json`.

use keysmith_types::{
    CopyReceipt, CreateAccountRequest, GenerateKeyRequest, IpcError, KeyReveal, KeySummary,
    MemberSummary, RevealRequest, RevokeKeyRequest, SessionStatus, UnlockRequest,
};
use tauri::State;

use crate::state::AppState;

#[tauri::command]
pub async fn session_status(state: State<'_, AppState>) -> Result<SessionStatus, IpcError> {
    state.session_status().await
}

#[tauri::command]
pub async fn create_account(
    state: State<'_, AppState>,
    request: CreateAccountRequest,
) -> Result<MemberSummary, IpcError> {
    state.create_account(request).await
}

#[tauri::command]
pub async fn unlock(
    state: State<'_, AppState>,
    request: UnlockRequest,
) -> Result<MemberSummary, IpcError> {
    state.unlock(request).await
}

#[tauri::command]
pub fn lock(state: State<'_, AppState>) {
    state.lock();
}

#[tauri::command]
pub async fn list_keys(state: State<'_, AppState>) -> Result<Vec<KeySummary>, IpcError> {
    state.list_keys().await
}

#[tauri::command]
pub async fn generate_key(
    state: State<'_, AppState>,
    request: GenerateKeyRequest,
) -> Result<KeyReveal, IpcError> {
    state.generate_key(request).await
}

#[tauri::command]
pub fn copy_key(
    state: State<'_, AppState>,
    request: RevealRequest,
) -> Result<CopyReceipt, IpcError> {
    state.copy_key(request)
}

#[tauri::command]
pub fn finish_reveal(state: State<'_, AppState>, request: RevealRequest) -> Result<(), IpcError> {
    state.finish_reveal(request)
}

#[tauri::command]
pub async fn revoke_key(
    state: State<'_, AppState>,
    request: RevokeKeyRequest,
) -> Result<KeySummary, IpcError> {
    state.revoke_key(request).await
}

/// Quits after the person chose to close while a key was still on display.
#[tauri::command]
pub fn quit(state: State<'_, AppState>, app: tauri::AppHandle) {
    state.lock();
    app.exit(0);
}
