//! The top level: first-run set-up, the unlock screen, or the keys page.

use keysmith_types::{MemberSummary, SessionStatus};
use leptos::prelude::*;
use leptos::task::spawn_local;

use crate::ipc;
use crate::keys::KeysPage;
use crate::sign_in::{SetupPage, UnlockPage};

#[derive(Debug, Clone, PartialEq)]
enum Screen {
    Loading,
    Setup,
    Unlock,
    Keys(MemberSummary),
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

    spawn_local(async move {
        if let Err(e) = ipc::on_close_requested(move || close_requested.0.set(true)).await {
            leptos::logging::warn!("close listener: {}", e.message);
        }
        screen.set(match ipc::session_status().await {
            Ok(SessionStatus {
                initialized: false, ..
            }) => Screen::Setup,
            Ok(SessionStatus {
                signed_in: Some(m), ..
            }) => Screen::Keys(m),
            Ok(_) => Screen::Unlock,
            Err(e) => Screen::Failed(e.message),
        });
    });

    let signed_in = move |m: MemberSummary| screen.set(Screen::Keys(m));
    let locked = move |()| screen.set(Screen::Unlock);

    move || match screen.get() {
        Screen::Loading => {
            view! { <main class="centered muted">"Opening Keysmith…"</main> }.into_any()
        }
        Screen::Setup => view! { <SetupPage on_done=signed_in /> }.into_any(),
        Screen::Unlock => view! { <UnlockPage on_done=signed_in /> }.into_any(),
        Screen::Keys(member) => view! { <KeysPage member=member on_lock=locked /> }.into_any(),
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
