//! The audit log page (Owner and Admins): the hash chain's status, and the entries filtered
//! by member, action and date.

use keysmith_types::{
    AuditEntry, AuditFilter, ChainStatus, MemberListing, AUDIT_ACTIONS as ACTIONS,
};
use leptos::prelude::*;
use leptos::task::spawn_local;
use wasm_bindgen::JsValue;

use crate::{format, ipc};

fn action_label(action: &str) -> String {
    ACTIONS
        .iter()
        .find(|(a, _)| *a == action)
        .map_or_else(|| action.to_owned(), |(_, l)| (*l).to_owned())
}

/// Local midnight of a `YYYY-MM-DD` date input, as epoch ms.
fn local_midnight(date: &str) -> Option<i64> {
    if date.is_empty() {
        return None;
    }
    let ms = js_sys::Date::new(&JsValue::from_str(&format!("{date}T00:00:00"))).get_time();
    (!ms.is_nan()).then_some(ms as i64)
}

#[component]
pub fn AuditPage() -> impl IntoView {
    let entries = RwSignal::new(Vec::<AuditEntry>::new());
    let chain = RwSignal::new(None::<ChainStatus>);
    let error = RwSignal::new(None::<String>);
    let members = RwSignal::new(Vec::<MemberListing>::new());
    let member = RwSignal::new(String::new());
    let action = RwSignal::new(String::new());
    let from = RwSignal::new(String::new());
    let until = RwSignal::new(String::new());

    spawn_local(async move {
        if let Ok(list) = ipc::list_members().await {
            members.set(list);
        }
    });
    Effect::new(move |_| {
        let filter = AuditFilter {
            member_id: Some(member.get()).filter(|m| !m.is_empty()),
            action: Some(action.get()).filter(|a| !a.is_empty()),
            from: local_midnight(&from.get()),
            until: local_midnight(&until.get()).map(|d| d + 86_400_000),
        };
        spawn_local(async move {
            match ipc::audit_report(&filter).await {
                Ok(report) => {
                    entries.set(report.entries);
                    chain.set(Some(report.chain));
                    error.set(None);
                }
                Err(e) => error.set(Some(e.message)),
            }
        });
    });

    view! {
        <div class="page-head">
            <div>
                <h1>"Audit log"</h1>
                <p class="muted lead">
                    "Who generated, copied, revoked or removed what, and when. Each entry is chained to the one "
                    "before it by SHA-256, so an edited, removed or reordered entry is detected."
                </p>
            </div>
        </div>
        {move || chain.get().map(|c| if c.intact {
            view! { <p class="chain ok" id="chain-status">{format!("✓ Chain intact: {} entries verified.", c.entries)}</p> }.into_any()
        } else {
            view! { <p class="chain bad" id="chain-status" role="alert">
                {format!("✗ The audit log was tampered with: {}.", c.problem.unwrap_or_default())}
            </p> }.into_any()
        })}
        <Show when=move || error.get().is_some()>
            <p class="error" role="alert">{move || error.get()}</p>
        </Show>
        <div class="toolbar">
            <label class="inline" for="audit-member">"Member"</label>
            <select id="audit-member" on:change=move |ev| member.set(event_target_value(&ev))>
                <option value="">"Everyone"</option>
                {move || members.get().into_iter().map(|m| view! {
                    <option value=m.member.id.clone()>{m.member.name.clone()}</option>
                }).collect_view()}
            </select>
            <label class="inline" for="audit-action">"Action"</label>
            <select id="audit-action" on:change=move |ev| action.set(event_target_value(&ev))>
                <option value="">"Any"</option>
                {ACTIONS.iter().map(|(a, l)| view! { <option value=*a>{*l}</option> }).collect_view()}
            </select>
            <label class="inline" for="audit-from">"From"</label>
            <input id="audit-from" type="date" bind:value=from />
            <label class="inline" for="audit-until">"To"</label>
            <input id="audit-until" type="date" bind:value=until />
        </div>
        <table class="keys" id="audit-table">
            <thead>
                <tr>
                    <th scope="col">"#"</th>
                    <th scope="col">"When"</th>
                    <th scope="col">"Who"</th>
                    <th scope="col">"Action"</th>
                    <th scope="col">"Target"</th>
                </tr>
            </thead>
            <tbody>
                <For each=move || entries.get() key=|e| e.seq let:e>
                    <tr data-action=e.action.clone()>
                        <td class="muted">{e.seq}</td>
                        <td>{format::when(Some(e.at))}</td>
                        <td>{if e.actor_name.is_empty() { "—".to_owned() } else { e.actor_name.clone() }}</td>
                        <td>{action_label(&e.action)}</td>
                        <td class="target">{e.target.clone()}
                            {(!e.detail.is_empty()).then(|| view! { <span class="muted">{format!(" · {}", e.detail)}</span> })}
                        </td>
                    </tr>
                </For>
            </tbody>
        </table>
    }
}
