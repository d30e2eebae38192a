//! The API keys page: the list, "Create A Key", and the dialogs it opens.

use keysmith_types::{KeyReveal, KeyStatus, KeySummary, MemberSummary, Role};
use leptos::prelude::*;
use leptos::task::spawn_local;

use crate::dialogs::{CreateKeyDialog, RevealDialog, RevokeDialog};
use crate::{format, ipc};

#[component]
pub fn KeysPage(member: MemberSummary, #[prop(into)] on_lock: Callback<()>) -> impl IntoView {
    let keys = RwSignal::new(Vec::<KeySummary>::new());
    let loaded = RwSignal::new(false);
    let load_error = RwSignal::new(None::<String>);
    let creating = RwSignal::new(false);
    let reveal = RwSignal::new(None::<KeyReveal>);
    let revoking = RwSignal::new(None::<KeySummary>);
    let sees_others = matches!(member.role, Role::Owner | Role::Admin);

    let reload = move || {
        spawn_local(async move {
            match ipc::list_keys().await {
                Ok(list) => {
                    keys.set(list);
                    load_error.set(None);
                }
                Err(e) => load_error.set(Some(e.message)),
            }
            loaded.set(true);
        })
    };
    reload();

    let lock = move |_| {
        spawn_local(async move {
            let _ = ipc::lock().await;
            reveal.set(None);
            on_lock.run(());
        })
    };
    let dialog_open =
        move || creating.get() || reveal.with(Option::is_some) || revoking.with(Option::is_some);

    let on_generated = move |r: KeyReveal| {
        creating.set(false);
        reveal.set(Some(r));
        reload();
    };
    let on_reveal_closed = move |()| reveal.set(None);
    let on_revoked = move |()| {
        revoking.set(None);
        reload();
    };

    view! {
        <div class="shell" inert=dialog_open>
            <header class="topbar">
                <div class="brand"><span class="brand-mark small" aria-hidden="true"></span>"Keysmith"</div>
                <div class="who">
                    <span id="signed-in-as">{member.name.clone()}</span>
                    <span class="role-badge">{member.role.label()}</span>
                    <button class="ghost" id="lock-button" on:click=lock title="Lock Keysmith">"Lock"</button>
                </div>
            </header>
            <main class="content">
                <div class="page-head">
                    <div>
                        <h1>"API keys"</h1>
                        <p class="muted lead">
                            "An API key lets another system act for this account. Give each integration its own key "
                            "and a descriptive name. You'll see the full key only once, right after you generate it; "
                            "afterwards only its name and first 4 characters."
                        </p>
                    </div>
                    <button class="primary" id="create-key" on:click=move |_| creating.set(true)>"Create A Key"</button>
                </div>
                <Show when=move || load_error.get().is_some()>
                    <p class="error" role="alert">{move || load_error.get()}</p>
                </Show>
                <Show
                    when=move || !(loaded.get() && keys.with(Vec::is_empty))
                    fallback=|| view! {
                        <div class="empty" id="no-keys">
                            <h2>"No API keys yet"</h2>
                            <p class="muted">"Create a key for each app or integration that needs access."</p>
                        </div>
                    }
                >
                    <table class="keys" id="keys-table">
                        <thead>
                            <tr>
                                <th scope="col">"Name"</th>
                                <th scope="col">"Key"</th>
                                {sees_others.then(|| view! { <th scope="col">"Created by"</th> })}
                                <th scope="col">"Created"</th>
                                <th scope="col">"Last used"</th>
                                <th scope="col">"Status"</th>
                                <th scope="col"><span class="sr-only">"Actions"</span></th>
                            </tr>
                        </thead>
                        <tbody>
                            <For
                                each=move || keys.get()
                                key=|k| (k.id.clone(), k.revoked_at, k.last_used_at)
                                let:key
                            >
                                <KeyRow key=key sees_others=sees_others on_revoke=move |k| revoking.set(Some(k)) />
                            </For>
                        </tbody>
                    </table>
                </Show>
            </main>
        </div>
        <Show when=move || creating.get()>
            <CreateKeyDialog on_generated=on_generated on_cancel=move |()| creating.set(false) />
        </Show>
        {move || reveal.get().map(|r| view! { <RevealDialog reveal=r on_closed=on_reveal_closed /> })}
        {move || revoking.get().map(|k| view! {
            <RevokeDialog key=k on_revoked=on_revoked on_cancel=move |()| revoking.set(None) />
        })}
    }
}

#[component]
fn KeyRow(
    key: KeySummary,
    sees_others: bool,
    #[prop(into)] on_revoke: Callback<KeySummary>,
) -> impl IntoView {
    let revoked = key.status == KeyStatus::Revoked;
    let for_revoke = key.clone();
    view! {
        <tr class:revoked=revoked data-key-id=key.id.clone()>
            <td class="name">{key.name.clone()}</td>
            <td><code class="start">{format!("{}…", key.start)}</code></td>
            {sees_others.then(|| view! { <td>{key.created_by.name.clone()}</td> })}
            <td>{format::when(Some(key.created_at))}</td>
            <td>{format::when(key.last_used_at)}</td>
            <td>
                {if revoked {
                    view! { <span class="status revoked" title=format!("Revoked {}", format::when(key.revoked_at))>"Revoked"</span> }.into_any()
                } else {
                    view! { <span class="status active">"Active"</span> }.into_any()
                }}
            </td>
            <td class="actions">
                {(!revoked).then(|| view! {
                    <button class="danger-ghost revoke" on:click=move |_| on_revoke.run(for_revoke.clone())>
                        "Revoke"
                    </button>
                })}
            </td>
        </tr>
    }
}
