//! First run (this computer only, or join a team server), set-up of the account's Owner,
//! joining a team server, and the sign-in screen.

use keysmith_types::{
    ChangePassphraseRequest, CreateAccountRequest, JoinServerRequest, MemberSummary, Passphrase,
    UnlockRequest,
};
use leptos::ev::SubmitEvent;
use leptos::html;
use leptos::prelude::*;
use leptos::task::spawn_local;

use crate::ipc;

/// Focuses `node` (an input, a button…) once it is in the page.
pub fn focus_on_mount<E>(node: NodeRef<E>)
where
    E: leptos::tachys::html::element::ElementType + 'static,
    E::Output: wasm_bindgen::JsCast + Clone + 'static,
{
    use wasm_bindgen::JsCast;
    Effect::new(move |_| {
        if let Some(el) = node.get() {
            let _ = el.unchecked_ref::<web_sys::HtmlElement>().focus();
        }
    });
}

/// The first run: where the account lives.
#[component]
pub fn FirstRunPage(
    #[prop(into)] on_done: Callback<MemberSummary>,
    #[prop(into)] on_join: Callback<()>,
) -> impl IntoView {
    let local = RwSignal::new(false);
    let first = NodeRef::<html::Button>::new();
    focus_on_mount(first);
    view! {
        <Show
            when=move || local.get()
            fallback=move || view! {
                <main class="centered">
                    <div class="card choice">
                        <div class="brand-mark" aria-hidden="true"></div>
                        <h1>"Welcome to Keysmith"</h1>
                        <p class="muted">"Where does your team's account live?"</p>
                        <button class="option" id="mode-local" node_ref=first on:click=move |_| local.set(true)>
                            <strong>"This computer only"</strong>
                            <span class="muted">
                                "Keys, members and the audit log stay on this computer. "
                                "You create the account and become its Owner."
                            </span>
                        </button>
                        <button class="option" id="mode-join" on:click=move |_| on_join.run(())>
                            <strong>"Join a team server"</strong>
                            <span class="muted">
                                "Your team runs a Keysmith server. Sign in with the name and "
                                "passphrase your Owner or an Admin gave you."
                            </span>
                        </button>
                    </div>
                </main>
            }
        >
            <SetupPage on_done=on_done on_back=move |()| local.set(false) />
        </Show>
    }
}

/// "Join a team server": its URL, and how to trust it.
#[component]
pub fn JoinPage(#[prop(into)] on_done: Callback<()>) -> impl IntoView {
    let url = RwSignal::new(String::new());
    let plain = RwSignal::new(false);
    let ca = RwSignal::new(String::new());
    let error = RwSignal::new(None::<String>);
    let busy = RwSignal::new(false);
    let first = NodeRef::<html::Input>::new();
    focus_on_mount(first);
    let submit = move |ev: SubmitEvent| {
        ev.prevent_default();
        let ca_file = Some(ca.get_untracked()).filter(|f| !f.trim().is_empty());
        let req = JoinServerRequest {
            url: url.get_untracked(),
            allow_plain_http: plain.get_untracked(),
            ca_file,
        };
        busy.set(true);
        error.set(None);
        spawn_local(async move {
            let result = ipc::join_server(&req).await;
            busy.set(false);
            match result {
                Ok(_) => on_done.run(()),
                Err(e) => error.set(Some(e.message)),
            }
        });
    };
    view! {
        <main class="centered">
            <form class="card auth" on:submit=submit>
                <div class="brand-mark" aria-hidden="true"></div>
                <h1>"Join a team server"</h1>
                <p class="muted">
                    "The address your Owner or an Admin gave you. Keysmith checks that it is a "
                    "Keysmith server before it signs you in."
                </p>
                <label for="join-url">"Server address"</label>
                <input id="join-url" type="url" placeholder="https://keys.example.com" autocomplete="url" spellcheck="false" node_ref=first bind:value=url />
                <label for="join-ca">"Certificate authority file (optional)"</label>
                <input id="join-ca" type="text" placeholder="/etc/ssl/team-ca.pem" spellcheck="false" bind:value=ca />
                <p class="hint">"Only if your team signs its server's certificate itself."</p>
                <label class="check">
                    <input id="join-plain-http" type="checkbox" bind:checked=plain />
                    "Allow plain HTTP to another computer (passphrases and keys cross the network unencrypted)"
                </label>
                <Show when=move || error.get().is_some()>
                    <p class="error" role="alert" id="join-error">{move || error.get()}</p>
                </Show>
                <button type="submit" class="primary" id="join-submit" disabled=move || busy.get()>
                    {move || if busy.get() { "Checking the server…" } else { "Join" }}
                </button>
                <button type="button" class="ghost back" id="join-back" on:click=move |_| on_done.run(())>
                    "Back"
                </button>
            </form>
        </main>
    }
}

#[component]
pub fn SetupPage(
    #[prop(into)] on_done: Callback<MemberSummary>,
    #[prop(into)] on_back: Callback<()>,
) -> impl IntoView {
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
                <button type="button" class="ghost back" id="setup-back" on:click=move |_| on_back.run(())>
                    "Back"
                </button>
            </form>
        </main>
    }
}

#[component]
pub fn UnlockPage(
    /// The team server's URL when the app is joined to one.
    server: Option<String>,
    /// Why the app locked itself, if it did.
    notice: Option<String>,
    #[prop(into)] on_done: Callback<MemberSummary>,
    #[prop(into)] on_join: Callback<()>,
    #[prop(into)] on_left: Callback<()>,
) -> impl IntoView {
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

    let leave = move |_| {
        spawn_local(async move {
            match ipc::leave_server().await {
                Ok(_) => on_left.run(()),
                Err(e) => error.set(Some(e.message)),
            }
        });
    };
    let joined = server.is_some();
    view! {
        <main class="centered">
            <form class="card auth" on:submit=submit>
                <div class="brand-mark" aria-hidden="true"></div>
                <h1>{if joined { "Sign in to your team" } else { "Unlock Keysmith" }}</h1>
                {match &server {
                    Some(url) => view! {
                        <p class="muted">"Team server "<span class="mono" id="unlock-server">{url.clone()}</span></p>
                    }
                    .into_any(),
                    None => view! { <p class="muted">"Sign in with your name and passphrase."</p> }.into_any(),
                }}
                {notice.map(|n| view! { <p class="warning" role="status" id="unlock-notice">{n}</p> })}
                <label for="unlock-name">"Name"</label>
                <input id="unlock-name" type="text" autocomplete="username" node_ref=first bind:value=name />
                <label for="unlock-pass">"Passphrase"</label>
                <input id="unlock-pass" type="password" autocomplete="current-password" bind:value=pass />
                <Show when=move || error.get().is_some()>
                    <p class="error" role="alert" id="unlock-error">{move || error.get()}</p>
                </Show>
                <button type="submit" class="primary" id="unlock-submit" disabled=move || busy.get()>
                    {move || match (busy.get(), joined) {
                        (true, _) => "Signing in…",
                        (false, true) => "Sign in",
                        (false, false) => "Unlock",
                    }}
                </button>
                {if joined {
                    view! {
                        <button type="button" class="ghost back" id="leave-server" on:click=leave>
                            "Leave this team server"
                        </button>
                    }
                    .into_any()
                } else {
                    view! {
                        <button type="button" class="ghost back" id="join-instead" on:click=move |_| on_join.run(())>
                            "Join a team server instead"
                        </button>
                    }
                    .into_any()
                }}
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
