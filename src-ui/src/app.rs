//! The top level: first-run set-up, the unlock screen, the passphrase change a new member
//! must make, or the signed-in frame.

use keysmith_types::{MemberSummary, SessionStatus};
use leptos::prelude::*;
use leptos::task::spawn_local;

use crate::dialogs::OpenDialogs;
use crate::ipc;
use crate::shell::MainView;
use crate::sign_in::{ChangePassphrasePage, SetupPage, UnlockPage};

#[derive(Debug, Clone, PartialEq)]
enum Screen {
    Loading,
    Setup,
    Unlock,
    ChangePassphrase(MemberSummary),
    Main(MemberSummary, u64),
    Failed(String),
}

/// Set when the window was asked to close while a key is on display.
#[derive(Debug, Clone, Copy)]
pub struct CloseRequested(pub RwSignal<bool>);

#[component]
pub fn App() -> impl IntoView {
    let screen = RwSignal::new(Screen::Loading);
    let close_requested = CloseRequested(RwSignal::new(false));
    provide_context(close_requested);
    provide_context(OpenDialogs(RwSignal::new(0)));

    let refresh = move || {
        spawn_local(async move {
            screen.set(match ipc::session_status().await {
                Ok(SessionStatus {
                    initialized: false, ..
                }) => Screen::Setup,
                Ok(SessionStatus {
                    signed_in: Some(m),
                    must_change_passphrase: true,
                    ..
                }) => Screen::ChangePassphrase(m),
                Ok(SessionStatus {
                    signed_in: Some(m),
                    idle_lock_secs,
                    ..
                }) => Screen::Main(m, idle_lock_secs),
                Ok(_) => Screen::Unlock,
                Err(e) => Screen::Failed(e.message),
            });
        })
    };
    spawn_local(async move {
        if let Err(e) = ipc::on_close_requested(move || close_requested.0.set(true)).await {
            leptos::logging::warn!("close listener: {}", e.message);
        }
    });
    refresh();

    let signed_in = move |_m: MemberSummary| refresh();
    let locked = move |()| screen.set(Screen::Unlock);

    move || match screen.get() {
        Screen::Loading => {
            view! { <main class="centered muted">"Opening Keysmith…"</main> }.into_any()
        }
        Screen::Setup => view! { <SetupPage on_done=signed_in /> }.into_any(),
        Screen::Unlock => view! { <UnlockPage on_done=signed_in /> }.into_any(),
        Screen::ChangePassphrase(member) => {
            view! { <ChangePassphrasePage member=member on_done=move |()| refresh() /> }.into_any()
        }
        Screen::Main(member, idle) => {
            view! { <MainView member=member idle_lock_secs=idle on_lock=locked /> }.into_any()
        }
        Screen::Failed(message) => view! {
            <main class="centered">
                <div class="card">
                    <h1>"Keysmith cannot start"</h1>
                    <p class="error" role="alert">{message}</p>
                </div>
            </main>
        }
        .into_any(),
    }
}
