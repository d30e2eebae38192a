//! The Tauri commands: each one line, delegating to [`AppState`]. Every command is declared
//! in `build.rs` and granted to the main window in `src-tauri/capabilities/main.json`.

use keysmith_types::{
    AddMemberRequest, AuditFilter, AuditReport, ChangePassphraseRequest, ChangeRoleRequest,
    CopyReceipt, CreateAccountRequest, GenerateKeyRequest, IpcError, JoinServerRequest, KeyReveal,
    KeySummary, KeyUsage, KeyUsageRequest, MemberListing, MemberRequest, MemberSummary,
    PauseKeyRequest, RemoveMemberRequest, RevealRequest, RevokeKeyRequest, RollKeyRequest,
    ScanReport, ScanRequest, ScopeInfo, SessionStatus, UnlockRequest,
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
pub async fn scan_folder(
    state: State<'_, AppState>,
    request: ScanRequest,
) -> Result<ScanReport, IpcError> {
    state.scan_folder(request).await
}

#[tauri::command]
pub async fn list_keys(
    state: State<'_, AppState>,
    known: Option<String>,
    first: Option<u32>,
) -> Result<tauri::ipc::Response, IpcError> {
    state
        .key_list(known.as_deref(), first)
        .await
        .map(tauri::ipc::Response::new)
}

#[tauri::command]
pub async fn generate_key(
    state: State<'_, AppState>,
    request: GenerateKeyRequest,
) -> Result<KeyReveal, IpcError> {
    state.generate_key(request).await
}

#[tauri::command]
pub async fn list_scopes(state: State<'_, AppState>) -> Result<Vec<ScopeInfo>, IpcError> {
    state.list_scopes().await
}

#[tauri::command]
pub async fn roll_key(
    state: State<'_, AppState>,
    request: RollKeyRequest,
) -> Result<KeyReveal, IpcError> {
    state.roll_key(request).await
}

#[tauri::command]
pub async fn copy_key(
    state: State<'_, AppState>,
    request: RevealRequest,
) -> Result<CopyReceipt, IpcError> {
    state.copy_key(request).await
}

#[tauri::command]
pub fn finish_reveal(state: State<'_, AppState>, request: RevealRequest) -> Result<(), IpcError> {
    state.finish_reveal(request)
}

#[tauri::command]
pub fn page_loaded(state: State<'_, AppState>) {
    state.page_loaded();
}

#[tauri::command]
pub async fn take_unsaved_key(state: State<'_, AppState>) -> Result<Option<KeySummary>, IpcError> {
    state.take_unsaved_key().await
}

#[tauri::command]
pub async fn revoke_key(
    state: State<'_, AppState>,
    request: RevokeKeyRequest,
) -> Result<KeySummary, IpcError> {
    state.revoke_key(request).await
}

#[tauri::command]
pub async fn set_key_paused(
    state: State<'_, AppState>,
    request: PauseKeyRequest,
) -> Result<KeySummary, IpcError> {
    state.set_key_paused(request).await
}

#[tauri::command]
pub async fn key_usage(
    state: State<'_, AppState>,
    request: KeyUsageRequest,
) -> Result<KeyUsage, IpcError> {
    state.key_usage(request).await
}

/// Quits after the person chose to close while a key was still on display.
#[tauri::command]
pub fn quit(state: State<'_, AppState>, app: tauri::AppHandle) {
    state.lock();
    app.exit(0);
}

#[tauri::command]
pub async fn change_passphrase(
    state: State<'_, AppState>,
    request: ChangePassphraseRequest,
) -> Result<(), IpcError> {
    state.change_passphrase(request).await
}

#[tauri::command]
pub async fn list_members(state: State<'_, AppState>) -> Result<Vec<MemberListing>, IpcError> {
    state.list_members().await
}

#[tauri::command]
pub async fn add_member(
    state: State<'_, AppState>,
    request: AddMemberRequest,
) -> Result<MemberSummary, IpcError> {
    state.add_member(request).await
}

#[tauri::command]
pub async fn change_role(
    state: State<'_, AppState>,
    request: ChangeRoleRequest,
) -> Result<MemberSummary, IpcError> {
    state.change_role(request).await
}

#[tauri::command]
pub async fn removal_preview(
    state: State<'_, AppState>,
    request: MemberRequest,
) -> Result<Vec<KeySummary>, IpcError> {
    state.removal_preview(request).await
}

#[tauri::command]
pub async fn remove_member(
    state: State<'_, AppState>,
    request: RemoveMemberRequest,
) -> Result<Vec<KeySummary>, IpcError> {
    state.remove_member(request).await
}

#[tauri::command]
pub async fn transfer_ownership(
    state: State<'_, AppState>,
    request: MemberRequest,
) -> Result<MemberSummary, IpcError> {
    state.transfer_ownership(request).await
}

#[tauri::command]
pub async fn audit_report(
    state: State<'_, AppState>,
    request: AuditFilter,
) -> Result<AuditReport, IpcError> {
    state.audit_report(request).await
}

#[tauri::command]
pub async fn join_server(
    state: State<'_, AppState>,
    request: JoinServerRequest,
) -> Result<SessionStatus, IpcError> {
    state.join_server(request).await
}

#[tauri::command]
pub async fn leave_server(state: State<'_, AppState>) -> Result<SessionStatus, IpcError> {
    state.leave_server().await
}
