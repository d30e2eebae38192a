//! The signed-in frame: the header (who, Lock), the page tabs the member's role allows,
//! the idle lock and Ctrl+L.

use keysmith_types::{MemberSummary, Role};
use leptos::ev::KeyboardEvent;
use leptos::prelude::*;
use leptos::task::spawn_local;
use wasm_bindgen::closure::Closure;
use wasm_bindgen::JsCast;

use crate::audit::AuditPage;
use crate::dialogs::dialog_open;
use crate::ipc;
use crate::keys::KeysPage;
use crate::members::MembersPage;
use crate::theme::ThemeSwitch;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tab {
    Keys,
    Members,
    Audit,
}

#[component]
pub fn MainView(
    member: MemberSummary,
    idle_lock_secs: u64,
    /// The team server's URL when the app is joined to one.
    server: Option<String>,
    #[prop(into)] on_lock: Callback<()>,
) -> impl IntoView {
    let tab = RwSignal::new(Tab::Keys);
    let manages = matches!(member.role, Role::Owner | Role::Admin);
    let has_keys_page = member.role >= Role::Manager;

    let lock = move || {
        spawn_local(async move {
            let _ = ipc::lock().await;
            on_lock.run(());
        })
    };

    // Idle lock: any key press, click or pointer movement counts as activity.
    let last_activity = StoredValue::new(js_sys::Date::now());
    let mark = move || last_activity.set_value(js_sys::Date::now());
    let window = web_sys::window();
    if let Some(w) = &window {
        for event in ["keydown", "mousedown", "mousemove", "wheel"] {
            let cb = Closure::<dyn Fn()>::new(mark);
            let _ = w.add_event_listener_with_callback(event, cb.as_ref().unchecked_ref());
            on_cleanup({
                let w = w.clone();
                let cb = send_wrapper::SendWrapper::new(cb);
                move || {
                    let _ =
                        w.remove_event_listener_with_callback(event, cb.as_ref().unchecked_ref());
                }
            });
        }
        // Ctrl+L locks, wherever the focus is.
        let ctrl_l = Closure::<dyn Fn(KeyboardEvent)>::new(move |ev: KeyboardEvent| {
            if ev.ctrl_key() && ev.key().eq_ignore_ascii_case("l") {
                ev.prevent_default();
                lock();
            }
        });
        let _ = w.add_event_listener_with_callback("keydown", ctrl_l.as_ref().unchecked_ref());
        on_cleanup({
            let w = w.clone();
            let ctrl_l = send_wrapper::SendWrapper::new(ctrl_l);
            move || {
                let _ = w.remove_event_listener_with_callback(
                    "keydown",
                    ctrl_l.as_ref().unchecked_ref(),
                );
            }
        });
        let limit_ms = (idle_lock_secs.max(10) * 1000) as f64;
        let tick = Closure::<dyn Fn()>::new(move || {
            if js_sys::Date::now() - last_activity.get_value() > limit_ms {
                lock();
            }
        });
        if let Ok(handle) = w.set_interval_with_callback_and_timeout_and_arguments_0(
            tick.as_ref().unchecked_ref(),
            5_000,
        ) {
            on_cleanup({
                let w = w.clone();
                let tick = send_wrapper::SendWrapper::new(tick);
                move || {
                    w.clear_interval_with_handle(handle);
                    drop(tick);
                }
            });
        }
    }

    let tab_button = move |t: Tab, id: &'static str, label: &'static str| {
        view! {
            <button
                class="tab"
                id=id
                role="tab"
                aria-selected=move || (tab.get() == t).to_string()
                class:active=move || tab.get() == t
                on:click=move |_| tab.set(t)
            >
                {label}
            </button>
        }
    };

    let page_member = member.clone();
    view! {
        <div class="shell">
            <header class="topbar" inert=dialog_open>
                <div class="brand"><span class="brand-mark small" aria-hidden="true"></span>"Keysmith"</div>
                {manages.then(|| view! {
                    <nav class="tabs" role="tablist" aria-label="Pages">
                        {tab_button(Tab::Keys, "tab-keys", "API keys")}
                        {tab_button(Tab::Members, "tab-members", "Members")}
                        {tab_button(Tab::Audit, "tab-audit", "Audit log")}
                    </nav>
                })}
                <div class="who">
                    {server.map(|url| view! {
                        <span class="server-badge" id="team-server" title=format!("Signed in to the team server at {url}")>
                            {host_of(&url)}
                        </span>
                    })}
                    <ThemeSwitch />
                    <span id="signed-in-as">{member.name.clone()}</span>
                    <span class="role-badge" id="signed-in-role">{member.role.label()}</span>
                    <button class="ghost" id="lock-button" on:click=move |_| lock() title="Lock Keysmith (Ctrl+L)">"Lock"</button>
                </div>
            </header>
            <main class="content">
                {move || {
                    let m = page_member.clone();
                    match tab.get() {
                        Tab::Keys if has_keys_page => view! { <KeysPage member=m /> }.into_any(),
                        Tab::Keys => view! { <NoKeysPage role=m.role /> }.into_any(),
                        Tab::Members => view! { <MembersPage me=m /> }.into_any(),
                        Tab::Audit => view! { <AuditPage /> }.into_any(),
                    }
                }}
            </main>
        </div>
    }
}

/// `https://keys.example.com:8443` → `keys.example.com:8443`.
fn host_of(url: &str) -> String {
    url.split_once("://")
        .map_or(url, |(_, rest)| rest)
        .to_owned()
}

#[component]
fn NoKeysPage(role: Role) -> impl IntoView {
    view! {
        <div class="empty" id="no-keys-page">
            <h2>"API keys are not part of your role"</h2>
            <p class="muted">
                {format!(
                    "As {} {}, you can't generate or see API keys. Keys act with the role of the member who \
                     generated them, so they are kept to Managers, Admins and the Owner. Ask an Admin if an \
                     integration needs a key.",
                    if role == Role::Author { "an" } else { "a" },
                    role.label()
                )}
            </p>
        </div>
    }
}
