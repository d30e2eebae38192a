//! The members page (Owner and Admins): who is on the team, their roles, adding and removing
//! members, and transferring ownership. The backend decides every action again.

use keysmith_types::{
    AddMemberRequest, ChangeRoleRequest, KeySummary, MemberListing, MemberSummary, Passphrase,
    RemoveMemberRequest, Role, REMOVE_CONFIRMATION,
};
use leptos::ev::SubmitEvent;
use leptos::html;
use leptos::prelude::*;
use leptos::task::spawn_local;

use crate::dialogs::{dialog_open, Modal};
use crate::sign_in::focus_on_mount;
use crate::{format, ipc};

/// Roles `me` may give or take away (PRODUCT.md: Admins manage roles below Admin; the
/// Owner also manages Admins). The backend enforces the same.
fn manageable(me: Role) -> Vec<Role> {
    match me {
        Role::Owner => vec![Role::Admin, Role::Manager, Role::Author, Role::Viewer],
        Role::Admin => vec![Role::Manager, Role::Author, Role::Viewer],
        _ => vec![],
    }
}

#[component]
pub fn MembersPage(me: MemberSummary) -> impl IntoView {
    let members = RwSignal::new(Vec::<MemberListing>::new());
    let error = RwSignal::new(None::<String>);
    let notice = RwSignal::new(None::<String>);
    let adding = RwSignal::new(false);
    let removing = RwSignal::new(None::<MemberSummary>);
    let transferring = RwSignal::new(None::<MemberSummary>);
    let reload = move || {
        spawn_local(async move {
            match ipc::list_members().await {
                Ok(list) => members.set(list),
                Err(e) => error.set(Some(e.message)),
            }
        })
    };
    reload();
    let roles = manageable(me.role);
    let is_owner = me.role == Role::Owner;
    let my_id = me.id.clone();

    let change_role = move |member_id: String, role: Role| {
        spawn_local(async move {
            match ipc::change_role(&ChangeRoleRequest { member_id, role }).await {
                Ok(m) => {
                    error.set(None);
                    notice.set(Some(format!("{} is now {}.", m.name, m.role.label())));
                }
                Err(e) => error.set(Some(e.message)),
            }
            reload();
        })
    };
    let transfer = move |m: MemberSummary| {
        spawn_local(async move {
            transferring.set(None);
            match ipc::transfer_ownership(&m.id).await {
                Ok(_) => {
                    notice.set(Some(format!(
                        "{} is now the Owner; you are an Admin. Lock and unlock to see your new role.",
                        m.name
                    )));
                    error.set(None);
                }
                Err(e) => error.set(Some(e.message)),
            }
            reload();
        })
    };

    view! {
        <div inert=dialog_open>
            <div class="page-head">
                <div>
                    <h1>"Members"</h1>
                    <p class="muted lead">
                        "Everyone who can sign in to this account. A key acts with the role its creator has at the "
                        "moment it is used; removing a member revokes every key they generated."
                    </p>
                </div>
                <button class="primary" id="add-member" on:click=move |_| adding.set(true)>"Add member"</button>
            </div>
            <Show when=move || notice.get().is_some()>
                <p class="success" role="status" id="members-notice">{move || notice.get()}</p>
            </Show>
            <Show when=move || error.get().is_some()>
                <p class="error" role="alert" id="members-error">{move || error.get()}</p>
            </Show>
            <table class="keys" id="members-table">
                <thead>
                    <tr>
                        <th scope="col">"Name"</th>
                        <th scope="col">"Role"</th>
                        <th scope="col">"Active keys"</th>
                        <th scope="col">"Added"</th>
                        <th scope="col">"Status"</th>
                        <th scope="col"><span class="sr-only">"Actions"</span></th>
                    </tr>
                </thead>
                <tbody>
                    <For
                        each=move || members.get()
                        key=|m| (m.member.id.clone(), m.member.role, m.removed_at, m.active_keys, m.must_change_passphrase)
                        let:m
                    >
                        {
                            let removed = m.removed_at.is_some();
                            let can_manage = !removed && m.member.id != my_id && roles.contains(&m.member.role);
                            let id = m.member.id.clone();
                            let for_remove = m.member.clone();
                            let for_transfer = m.member.clone();
                            let current = m.member.role;
                            let options = roles.clone();
                            view! {
                                <tr class:revoked=removed data-member=m.member.name.clone()>
                                    <td class="name">{m.member.name.clone()}</td>
                                    <td>
                                        {if can_manage {
                                            view! {
                                                <select class="role-select" aria-label=format!("Role of {}", m.member.name)
                                                    on:change=move |ev| {
                                                        if let Some(role) = Role::parse(&event_target_value(&ev)) {
                                                            change_role(id.clone(), role);
                                                        }
                                                    }>
                                                    {options.into_iter().map(|r| view! {
                                                        <option value=r.as_str() selected=r == current>{r.label()}</option>
                                                    }).collect_view()}
                                                </select>
                                            }.into_any()
                                        } else {
                                            view! { <span>{current.label()}</span> }.into_any()
                                        }}
                                    </td>
                                    <td>{m.active_keys}</td>
                                    <td>{format::when(Some(m.created_at))}</td>
                                    <td>
                                        {match (m.removed_at, m.must_change_passphrase) {
                                            (Some(_), _) => view! { <span class="status revoked">"Removed"</span> }.into_any(),
                                            (None, true) => view! { <span class="status pending">"Invited"</span> }.into_any(),
                                            (None, false) => view! { <span class="status active">"Active"</span> }.into_any(),
                                        }}
                                    </td>
                                    <td class="actions">
                                        // Ownership passes only to someone who has signed in and set their own
                                        // passphrase (the backend refuses the rest too).
                                        {(is_owner && !removed && !m.must_change_passphrase && current != Role::Owner).then(|| view! {
                                            <button class="ghost small transfer" on:click=move |_| transferring.set(Some(for_transfer.clone()))>
                                                "Make Owner"
                                            </button>
                                        })}
                                        {can_manage.then(|| view! {
                                            <button class="danger-ghost remove" on:click=move |_| removing.set(Some(for_remove.clone()))>
                                                "Remove"
                                            </button>
                                        })}
                                    </td>
                                </tr>
                            }
                        }
                    </For>
                </tbody>
            </table>
        </div>
        <Show when=move || adding.get()>
            <AddMemberDialog
                roles=manageable(me.role)
                on_added=move |m: MemberSummary| {
                    adding.set(false);
                    notice.set(Some(format!("Added {} as {}. They change the initial passphrase at first sign-in.", m.name, m.role.label())));
                    reload();
                }
                on_cancel=move |()| adding.set(false)
            />
        </Show>
        {move || transferring.get().map(|m| {
            let target = m.clone();
            let cancel = NodeRef::<html::Button>::new();
            focus_on_mount(cancel);
            view! {
                <Modal id="transfer-dialog" title_id="transfer-title" on_escape=move |()| transferring.set(None)>
                    <h2 id="transfer-title">{format!("Make {} the Owner?", m.name)}</h2>
                    <p>{format!(
                        "{} becomes the account's only Owner, and you become an Admin. Only the new Owner can give ownership back.",
                        m.name
                    )}</p>
                    <div class="buttons">
                        <button type="button" class="secondary" id="transfer-cancel" node_ref=cancel on:click=move |_| transferring.set(None)>"Cancel"</button>
                        <button type="button" class="danger" id="transfer-confirm" on:click=move |_| transfer(target.clone())>"Transfer ownership"</button>
                    </div>
                </Modal>
            }
        })}
        {move || removing.get().map(|m| view! {
            <RemoveMemberDialog
                member=m
                on_removed=move |(name, n): (String, usize)| {
                    removing.set(None);
                    notice.set(Some(match n {
                        1 => format!("Removed {name}; 1 key revoked."),
                        n => format!("Removed {name}; {n} keys revoked."),
                    }));
                    reload();
                }
                on_cancel=move |()| removing.set(None)
            />
        })}
    }
}

#[component]
fn AddMemberDialog(
    roles: Vec<Role>,
    #[prop(into)] on_added: Callback<MemberSummary>,
    #[prop(into)] on_cancel: Callback<()>,
) -> impl IntoView {
    let name = RwSignal::new(String::new());
    let role = RwSignal::new(
        roles
            .last()
            .copied()
            .unwrap_or(Role::Viewer)
            .as_str()
            .to_owned(),
    );
    let pass = RwSignal::new(String::new());
    let error = RwSignal::new(None::<String>);
    let input = NodeRef::<html::Input>::new();
    focus_on_mount(input);
    let submit = move |ev: SubmitEvent| {
        ev.prevent_default();
        let Some(r) = Role::parse(&role.get_untracked()) else {
            return;
        };
        let req = AddMemberRequest {
            name: name.get_untracked(),
            role: r,
            initial_passphrase: Passphrase::new(pass.get_untracked()),
        };
        spawn_local(async move {
            match ipc::add_member(&req).await {
                Ok(m) => {
                    pass.set(String::new());
                    on_added.run(m)
                }
                Err(e) => error.set(Some(e.message)),
            }
        });
    };
    view! {
        <Modal id="add-member-dialog" title_id="add-member-title" on_escape=on_cancel>
            <form on:submit=submit>
                <h2 id="add-member-title">"Add member"</h2>
                <label for="member-name">"Name"</label>
                <input id="member-name" type="text" autocomplete="off" node_ref=input bind:value=name />
                <label for="member-role">"Role"</label>
                <select id="member-role" on:change=move |ev| role.set(event_target_value(&ev))>
                    {roles.iter().map(|r| {
                        let v = r.as_str();
                        view! { <option value=v selected=move || role.get() == v>{r.label()}</option> }
                    }).collect_view()}
                </select>
                <label for="member-pass">"Initial passphrase"</label>
                <input id="member-pass" type="password" autocomplete="new-password" bind:value=pass />
                <p class="hint">"Hand it over in person; they must change it when they first sign in. At least 10 characters."</p>
                <Show when=move || error.get().is_some()>
                    <p class="error" role="alert" id="add-member-error">{move || error.get()}</p>
                </Show>
                <div class="buttons">
                    <button type="button" class="secondary" on:click=move |_| on_cancel.run(())>"Cancel"</button>
                    <button type="submit" class="primary" id="add-member-submit">"Add member"</button>
                </div>
            </form>
        </Modal>
    }
}

#[component]
fn RemoveMemberDialog(
    member: MemberSummary,
    #[prop(into)] on_removed: Callback<(String, usize)>,
    #[prop(into)] on_cancel: Callback<()>,
) -> impl IntoView {
    let preview = RwSignal::new(None::<Vec<KeySummary>>);
    let typed = RwSignal::new(String::new());
    let error = RwSignal::new(None::<String>);
    let input = NodeRef::<html::Input>::new();
    focus_on_mount(input);
    let id = StoredValue::new(member.id.clone());
    let name = StoredValue::new(member.name.clone());
    spawn_local(async move {
        match ipc::removal_preview(&id.get_value()).await {
            Ok(keys) => preview.set(Some(keys)),
            Err(e) => error.set(Some(e.message)),
        }
    });
    let matches = move || typed.with(|t| t == REMOVE_CONFIRMATION);
    let submit = move |ev: SubmitEvent| {
        ev.prevent_default();
        if !matches() {
            return;
        }
        let req = RemoveMemberRequest {
            member_id: id.get_value(),
            confirmation: typed.get_untracked(),
        };
        spawn_local(async move {
            match ipc::remove_member(&req).await {
                Ok(keys) => on_removed.run((name.get_value(), keys.len())),
                Err(e) => error.set(Some(e.message)),
            }
        });
    };
    view! {
        <Modal id="remove-member-dialog" title_id="remove-member-title" on_escape=on_cancel>
            <form on:submit=submit>
                <h2 id="remove-member-title">{format!("Remove {}", member.name)}</h2>
                <p>{format!("{} will no longer be able to sign in, and every key they generated is revoked at once:", member.name)}</p>
                {move || match preview.get() {
                    None => view! { <p class="muted">"Loading their keys…"</p> }.into_any(),
                    Some(keys) if keys.is_empty() => view! { <p class="muted" id="remove-preview-none">"They have no active keys."</p> }.into_any(),
                    Some(keys) => view! {
                        <ul class="preview" id="remove-preview">
                            {keys.into_iter().map(|k| view! {
                                <li><strong>{k.name.clone()}</strong>" "<code class="start">{format!("{}…", k.start)}</code>
                                    <span class="muted">{format!(" · last used {}", format::when(k.last_used_at))}</span></li>
                            }).collect_view()}
                        </ul>
                    }.into_any(),
                }}
                <label for="remove-confirm">"Type "<strong>"REMOVE"</strong>" to confirm"</label>
                <input id="remove-confirm" type="text" autocomplete="off" spellcheck="false" node_ref=input bind:value=typed />
                <Show when=move || error.get().is_some()>
                    <p class="error" role="alert" id="remove-error">{move || error.get()}</p>
                </Show>
                <div class="buttons">
                    <button type="button" class="secondary" on:click=move |_| on_cancel.run(())>"Cancel"</button>
                    <button type="submit" class="danger" id="remove-submit" disabled=move || !matches()>"Remove member"</button>
                </div>
            </form>
        </Modal>
    }
}
