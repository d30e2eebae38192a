//! First-run set-up (the account's Owner) and the unlock screen.

use keysmith_types::{
    ChangePassphraseRequest, CreateAccountRequest, MemberSummary, Passphrase, UnlockRequest,
};
use leptos::ev::SubmitEvent;
use leptos::html;
use leptos::prelude::*;
use leptos::task::spawn_local;

use crate::ipc;

/// Focuses `node` once it is in the page.
pub fn focus_on_mount(node: NodeRef<html::Input>) {
    Effect::new(move |_| {
        if let Some(el) = node.get() {
            let _ = el.focus();
        }
    });
}

#[component]
pub fn SetupPage(#[prop(into)] on_done: Callback<MemberSummary>) -> impl IntoView {
    let name = RwSignal::new(String::new());
    let pass = RwSignal::new(String::new());
    let pass2 = RwSignal::new(String::new());
    let error = RwSignal::new(None::<String>);
    let busy = RwSignal::new(false);
    let first = NodeRef::<html::Input>::new();
    focus_on_mount(first);

    let submit = move |ev: SubmitEvent| {
        ev.prevent_default();
        if pass.get_untracked() != pass2.get_untracked() {
            error.set(Some("The two passphrases differ.".into()));
            return;
        }
        let req = CreateAccountRequest {
            owner_name: name.get_untracked(),
            passphrase: Passphrase::new(pass.get_untracked()),
        };
        busy.set(true);
        spawn_local(async move {
            let result = ipc::create_account(&req).await;
            busy.set(false);
            match result {
                Ok(member) => {
                    pass.set(String::new());
                    pass2.set(String::new());
                    on_done.run(member);
                }
                Err(e) => error.set(Some(e.message)),
            }
        });
    };

    view! {
        <main class="centered">
            <form class="card auth" on:submit=submit>
                <div class="brand-mark" aria-hidden="true"></div>
                <h1>"Welcome to Keysmith"</h1>
                <p class="muted">
                    "Create your account. You become its Owner: you generate API keys, "
                    "see every key of the team and revoke any of them."
                </p>
                <label for="setup-name">"Your name"</label>
                <input id="setup-name" type="text" maxlength="200" autocomplete="off" node_ref=first bind:value=name />
                <label for="setup-pass">"Passphrase"</label>
                <input id="setup-pass" type="password" autocomplete="new-password" bind:value=pass />
                <label for="setup-pass2">"Repeat passphrase"</label>
                <input id="setup-pass2" type="password" autocomplete="new-password" bind:value=pass2 />
                <p class="hint">"At least 10 characters. It unlocks Keysmith on this computer."</p>
                <Show when=move || error.get().is_some()>
                    <p class="error" role="alert" id="setup-error">{move || error.get()}</p>
                </Show>
                <button type="submit" class="primary" id="setup-submit" disabled=move || busy.get()>
                    {move || if busy.get() { "Creating…" } else { "Create account" }}
                </button>
            </form>
        </main>
    }
}

#[component]
pub fn UnlockPage(#[prop(into)] on_done: Callback<MemberSummary>) -> impl IntoView {
    let name = RwSignal::new(String::new());
    let pass = RwSignal::new(String::new());
    let error = RwSignal::new(None::<String>);
    let busy = RwSignal::new(false);
    let first = NodeRef::<html::Input>::new();
    focus_on_mount(first);

    let submit = move |ev: SubmitEvent| {
        ev.prevent_default();
        let req = UnlockRequest {
            name: name.get_untracked(),
            passphrase: Passphrase::new(pass.get_untracked()),
        };
        busy.set(true);
        spawn_local(async move {
            let result = ipc::unlock(&req).await;
            busy.set(false);
            pass.set(String::new());
            match result {
                Ok(member) => on_done.run(member),
                Err(e) => error.set(Some(e.message)),
            }
        });
    };

    view! {
        <main class="centered">
            <form class="card auth" on:submit=submit>
                <div class="brand-mark" aria-hidden="true"></div>
                <h1>"Unlock Keysmith"</h1>
                <p class="muted">"Sign in with your name and passphrase."</p>
                <label for="unlock-name">"Name"</label>
                <input id="unlock-name" type="text" autocomplete="username" node_ref=first bind:value=name />
                <label for="unlock-pass">"Passphrase"</label>
                <input id="unlock-pass" type="password" autocomplete="current-password" bind:value=pass />
                <Show when=move || error.get().is_some()>
                    <p class="error" role="alert" id="unlock-error">{move || error.get()}</p>
                </Show>
                <button type="submit" class="primary" id="unlock-submit" disabled=move || busy.get()>
                    {move || if busy.get() { "Unlocking…" } else { "Unlock" }}
                </button>
            </form>
        </main>
    }
}

/// A new member's first sign-in: the initial passphrase must be replaced.
#[component]
pub fn ChangePassphrasePage(
    member: MemberSummary,
    #[prop(into)] on_done: Callback<()>,
) -> impl IntoView {
    let current = RwSignal::new(String::new());
    let new = RwSignal::new(String::new());
    let new2 = RwSignal::new(String::new());
    let error = RwSignal::new(None::<String>);
    let first = NodeRef::<html::Input>::new();
    focus_on_mount(first);
    let submit = move |ev: SubmitEvent| {
        ev.prevent_default();
        if new.get_untracked() != new2.get_untracked() {
            error.set(Some("The two new passphrases differ.".into()));
            return;
        }
        let req = ChangePassphraseRequest {
            current: Passphrase::new(current.get_untracked()),
            new: Passphrase::new(new.get_untracked()),
        };
        spawn_local(async move {
            let result = ipc::change_passphrase(&req).await;
            current.set(String::new());
            new.set(String::new());
            new2.set(String::new());
            match result {
                Ok(()) => on_done.run(()),
                Err(e) => error.set(Some(e.message)),
            }
        });
    };
    view! {
        <main class="centered">
            <form class="card auth" on:submit=submit>
                <div class="brand-mark" aria-hidden="true"></div>
                <h1>{format!("Welcome, {}", member.name)}</h1>
                <p class="muted">"Choose your own passphrase to replace the one you were given."</p>
                <label for="change-current">"Initial passphrase"</label>
                <input id="change-current" type="password" autocomplete="current-password" node_ref=first bind:value=current />
                <label for="change-new">"New passphrase"</label>
                <input id="change-new" type="password" autocomplete="new-password" bind:value=new />
                <label for="change-new2">"Repeat new passphrase"</label>
                <input id="change-new2" type="password" autocomplete="new-password" bind:value=new2 />
                <Show when=move || error.get().is_some()>
                    <p class="error" role="alert" id="change-error">{move || error.get()}</p>
                </Show>
                <button type="submit" class="primary" id="change-submit">"Save passphrase"</button>
            </form>
        </main>
    }
}
