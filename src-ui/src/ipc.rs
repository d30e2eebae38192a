//! The only module that talks to the backend. Each function is one Tauri command; errors
//! come back as the backend's `{code, message}`.

use keysmith_types::{
    AddMemberRequest, AuditFilter, AuditReport, ChangePassphraseRequest, ChangeRoleRequest,
    CopyReceipt, CreateAccountRequest, ErrorCode, GenerateKeyRequest, IpcError, JoinServerRequest,
    KeyReveal, KeySummary, KeyUsage, KeyUsageRequest, MemberListing, MemberRequest, MemberSummary,
    PauseKeyRequest, RemoveMemberRequest, RevealRequest, RevokeKeyRequest, RollKeyRequest,
    ScanReport, ScanRequest, ScopeInfo, SessionStatus, UnlockRequest,
};
use serde::de::DeserializeOwned;
use serde::Serialize;
use wasm_bindgen::prelude::*;

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_namespace = ["window", "__TAURI__", "core"], js_name = invoke, catch)]
    async fn tauri_invoke(cmd: &str, args: JsValue) -> Result<JsValue, JsValue>;

    #[wasm_bindgen(js_namespace = ["window", "__TAURI__", "event"], js_name = listen, catch)]
    async fn tauri_listen(event: &str, handler: &js_sys::Function) -> Result<JsValue, JsValue>;
}

fn internal(message: String) -> IpcError {
    IpcError {
        code: ErrorCode::Internal,
        message,
    }
}

thread_local! {
    /// What to do when the backend says the session is gone (see [`on_signed_out`]).
    static SIGNED_OUT: std::cell::RefCell<Option<std::rc::Rc<dyn Fn()>>> =
        const { std::cell::RefCell::new(None) };
}

/// Calls `handler` whenever a command is refused because the session is gone (the team
/// server's session expired or was ended, the member was removed, the app locked itself):
/// the app goes back to sign-in, where the backend's notice says why.
pub fn on_signed_out(handler: impl Fn() + 'static) {
    SIGNED_OUT.with(|h| *h.borrow_mut() = Some(std::rc::Rc::new(handler)));
}

async fn call<R: DeserializeOwned>(cmd: &str, args: JsValue) -> Result<R, IpcError> {
    serde_wasm_bindgen::from_value(call_raw(cmd, args).await?)
        .map_err(|e| internal(format!("Unexpected answer from the backend: {e}")))
}

/// Runs the command; its refusal as the backend's `IpcError`, after which a lost session
/// sends the app back to sign-in.
async fn call_raw(cmd: &str, args: JsValue) -> Result<JsValue, IpcError> {
    tauri_invoke(cmd, args).await.map_err(|err| {
        let e = serde_wasm_bindgen::from_value::<IpcError>(err.clone()).unwrap_or_else(|_| {
            internal(
                err.as_string()
                    .unwrap_or_else(|| "The backend did not answer.".to_owned()),
            )
        });
        let gone = matches!(e.code, ErrorCode::SessionExpired | ErrorCode::NotSignedIn);
        if gone && !matches!(cmd, "unlock" | "session_status" | "lock") {
            if let Some(handler) = SIGNED_OUT.with(|h| h.borrow().clone()) {
                handler();
            }
        }
        e
    })
}

/// `{ request: … }`, the argument object of commands that take a request.
fn with_request<T: Serialize>(request: &T) -> Result<JsValue, IpcError> {
    #[derive(Serialize)]
    struct Args<'a, T> {
        request: &'a T,
    }
    Args { request }
        .serialize(&serde_wasm_bindgen::Serializer::json_compatible())
        .map_err(|e| internal(format!("Cannot send the request: {e}")))
}

fn no_args() -> JsValue {
    js_sys::Object::new().into()
}

pub async fn session_status() -> Result<SessionStatus, IpcError> {
    call("session_status", no_args()).await
}

pub async fn create_account(req: &CreateAccountRequest) -> Result<MemberSummary, IpcError> {
    call("create_account", with_request(req)?).await
}

pub async fn unlock(req: &UnlockRequest) -> Result<MemberSummary, IpcError> {
    call("unlock", with_request(req)?).await
}

pub async fn lock() -> Result<(), IpcError> {
    call("lock", no_args()).await
}

pub async fn list_scopes() -> Result<Vec<ScopeInfo>, IpcError> {
    call("list_scopes", no_args()).await
}

/// The key list, unless it is the one whose fingerprint is `known`.
pub enum KeyList {
    /// The list changed (or `known` was `None`): here it is, with its new fingerprint.
    Changed {
        fingerprint: String,
        keys: Vec<KeySummary>,
    },
    Unchanged,
}

/// The backend answers `FINGERPRINT\nJSON` as bytes (see `AppState::key_list`), parsed
/// here by serde_json in one pass: for 10,000 keys much faster than a JavaScript object
/// converted field by field.
///
/// `first`: only the newest that many keys (the page's first screen).
pub async fn list_keys(known: Option<&str>, first: Option<u32>) -> Result<KeyList, IpcError> {
    #[derive(Serialize)]
    struct Args<'a> {
        known: Option<&'a str>,
        first: Option<u32>,
    }
    let args = Args { known, first }
        .serialize(&serde_wasm_bindgen::Serializer::json_compatible())
        .map_err(|e| internal(format!("Cannot send the request: {e}")))?;
    let bytes = js_sys::Uint8Array::new(&call_raw("list_keys", args).await?).to_vec();
    let unexpected = || internal("Unexpected answer from the backend to list_keys".to_owned());
    match bytes.iter().position(|&b| b == b'\n') {
        None if known.is_some_and(|k| k.as_bytes() == bytes.as_slice()) => Ok(KeyList::Unchanged),
        None => Err(unexpected()),
        Some(at) => Ok(KeyList::Changed {
            fingerprint: String::from_utf8(bytes[..at].to_vec()).map_err(|_| unexpected())?,
            keys: serde_json::from_slice(&bytes[at + 1..])
                .map_err(|e| internal(format!("Unexpected key list from the backend: {e}")))?,
        }),
    }
}

pub async fn scan_folder(req: &ScanRequest) -> Result<ScanReport, IpcError> {
    call("scan_folder", with_request(req)?).await
}

pub async fn generate_key(req: &GenerateKeyRequest) -> Result<KeyReveal, IpcError> {
    call("generate_key", with_request(req)?).await
}

pub async fn copy_key(id: &str) -> Result<CopyReceipt, IpcError> {
    call(
        "copy_key",
        with_request(&RevealRequest { id: id.to_owned() })?,
    )
    .await
}

pub async fn finish_reveal(id: &str) -> Result<(), IpcError> {
    call(
        "finish_reveal",
        with_request(&RevealRequest { id: id.to_owned() })?,
    )
    .await
}

/// The page (re)loaded: a key the backend still held for display is dropped.
pub async fn page_loaded() -> Result<(), IpcError> {
    call("page_loaded", no_args()).await
}

/// The signed-in member's key whose one-time display ended uncopied (Lock, a reload), once.
pub async fn take_unsaved_key() -> Result<Option<KeySummary>, IpcError> {
    call("take_unsaved_key", no_args()).await
}

pub async fn roll_key(req: &RollKeyRequest) -> Result<KeyReveal, IpcError> {
    call("roll_key", with_request(req)?).await
}

pub async fn revoke_key(req: &RevokeKeyRequest) -> Result<KeySummary, IpcError> {
    call("revoke_key", with_request(req)?).await
}

pub async fn set_key_paused(req: &PauseKeyRequest) -> Result<KeySummary, IpcError> {
    call("set_key_paused", with_request(req)?).await
}

pub async fn key_usage(req: &KeyUsageRequest) -> Result<KeyUsage, IpcError> {
    call("key_usage", with_request(req)?).await
}

pub async fn change_passphrase(req: &ChangePassphraseRequest) -> Result<(), IpcError> {
    call("change_passphrase", with_request(req)?).await
}

pub async fn list_members() -> Result<Vec<MemberListing>, IpcError> {
    call("list_members", no_args()).await
}

pub async fn add_member(req: &AddMemberRequest) -> Result<MemberSummary, IpcError> {
    call("add_member", with_request(req)?).await
}

pub async fn change_role(req: &ChangeRoleRequest) -> Result<MemberSummary, IpcError> {
    call("change_role", with_request(req)?).await
}

pub async fn removal_preview(member_id: &str) -> Result<Vec<KeySummary>, IpcError> {
    let req = MemberRequest {
        member_id: member_id.to_owned(),
    };
    call("removal_preview", with_request(&req)?).await
}

pub async fn remove_member(req: &RemoveMemberRequest) -> Result<Vec<KeySummary>, IpcError> {
    call("remove_member", with_request(req)?).await
}

pub async fn transfer_ownership(member_id: &str) -> Result<MemberSummary, IpcError> {
    let req = MemberRequest {
        member_id: member_id.to_owned(),
    };
    call("transfer_ownership", with_request(&req)?).await
}

pub async fn audit_report(filter: &AuditFilter) -> Result<AuditReport, IpcError> {
    call("audit_report", with_request(filter)?).await
}

pub async fn join_server(req: &JoinServerRequest) -> Result<SessionStatus, IpcError> {
    call("join_server", with_request(req)?).await
}

pub async fn leave_server() -> Result<SessionStatus, IpcError> {
    call("leave_server", no_args()).await
}

pub async fn quit() -> Result<(), IpcError> {
    call("quit", no_args()).await
}

/// Calls `handler` whenever the window is asked to close while a key is on display.
pub async fn on_close_requested(handler: impl Fn() + 'static) -> Result<(), IpcError> {
    let closure = Closure::<dyn Fn(JsValue)>::new(move |_event: JsValue| handler());
    tauri_listen(
        "keysmith://close-requested",
        closure.as_ref().unchecked_ref(),
    )
    .await
    .map_err(|e| internal(e.as_string().unwrap_or_else(|| "cannot listen".into())))?;
    // The listener lives as long as the window.
    closure.forget();
    Ok(())
}
