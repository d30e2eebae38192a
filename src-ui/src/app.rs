//! The top level: first-run set-up, the unlock screen, the passphrase change a new member
//! must make, or the signed-in frame.

use keysmith_types::{MemberSummary, SessionStatus};
use leptos::prelude::*;
use leptos::task::spawn_local;

use crate::dialogs::OpenDialogs;
use crate::ipc;
use crate::keys::KeyRowsWarmUp;
use crate::shell::MainView;
use crate::sign_in::{ChangePassphrasePage, FirstRunPage, JoinPage, UnlockPage};

#[derive(Debug, Clone, PartialEq)]
enum Screen {
    Loading,
    /// First run on this computer: "This computer only" or "Join a team server".
    Setup,
    /// "Join a team server": its URL.
    Join,
    /// Sign-in; the team server's URL when joined to one, and why the app locked itself.
    Unlock {
        server: Option<String>,
        notice: Option<String>,
    },
    ChangePassphrase(MemberSummary),
    Main(MemberSummary, u64, Option<String>),
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
                    server,
                    ..
                }) => Screen::Main(m, idle_lock_secs, server),
                Ok(SessionStatus { server, notice, .. }) => Screen::Unlock { server, notice },
                Err(e) => Screen::Failed(e.message),
            });
        })
    };
    spawn_local(async move {
        if let Err(e) = ipc::on_close_requested(move || close_requested.0.set(true)).await {
            leptos::logging::warn!("close listener: {}", e.message);
        }
    });
    // A reload leaves no dialog showing a key: the backend drops one it still held.
    spawn_local(async move {
        if let Err(e) = ipc::page_loaded().await {
            leptos::logging::warn!("page_loaded: {}", e.message);
        }
        refresh();
    });
    // A command refused because the session is gone (expired on the team server, ended by
    // a passphrase change elsewhere, the member removed): back to sign-in, saying why.
    ipc::on_signed_out(refresh);

    let signed_in = move |_m: MemberSummary| refresh();
    let locked = move |()| refresh();
    let join = move |()| screen.set(Screen::Join);

    move || match screen.get() {
        Screen::Loading => {
            view! { <main class="centered muted">"Opening Keysmith…"</main> }.into_any()
        }
        Screen::Setup => view! { <FirstRunPage on_done=signed_in on_join=join /> }.into_any(),
        Screen::Join => view! { <JoinPage on_done=move |()| refresh() /> }.into_any(),
        Screen::Unlock { server, notice } => view! {
            <UnlockPage
                server=server
                notice=notice
                on_done=signed_in
                on_join=join
                on_left=move |()| refresh()
            />
            <KeyRowsWarmUp />
        }
        .into_any(),
        Screen::ChangePassphrase(member) => {
            view! { <ChangePassphrasePage member=member on_done=move |()| refresh() /> }.into_any()
        }
        Screen::Main(member, idle, server) => view! {
            <MainView member=member idle_lock_secs=idle server=server on_lock=locked />
        }
        .into_any(),
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
