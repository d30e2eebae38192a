//! Declares every app command so Tauri generates an `allow-…` permission for each; the
//! capability in `src-tauri/capabilities/` grants the main window exactly those it uses.

const COMMANDS: &[&str] = &[
    "session_status",
    "create_account",
    "unlock",
    "lock",
    "list_keys",
    "generate_key",
    "list_scopes",
    "copy_key",
    "finish_reveal",
    "page_loaded",
    "take_unsaved_key",
    "revoke_key",
    "set_key_paused",
    "key_usage",
    "roll_key",
    "quit",
    "change_passphrase",
    "list_members",
    "add_member",
    "change_role",
    "removal_preview",
    "remove_member",
    "transfer_ownership",
    "audit_report",
    "join_server",
    "leave_server",
    "scan_folder",
];

fn main() {
    let attributes = tauri_build::Attributes::new()
        .capabilities_path_pattern("./src-tauri/capabilities/**/*")
        .app_manifest(tauri_build::AppManifest::new().commands(COMMANDS));
    if let Err(e) = tauri_build::try_build(attributes) {
        println!("cargo:warning=tauri-build failed: {e:#}");
        std::process::exit(1);
    }
}
