//! "Scan a folder": finds this account's keys in a folder's files (and a git repository's
//! history) and offers Roll or Revoke for each live one found. The backend never sends a key,
//! only what it is.

use keysmith_types::{KeyStatus, KeySummary, ScanFinding, ScanReport, ScanRequest};
use leptos::ev::SubmitEvent;
use leptos::html;
use leptos::prelude::*;
use leptos::task::spawn_local;

use crate::dialogs::Modal;
use crate::ipc;
use crate::sign_in::focus_on_mount;

/// The scan dialog. `path` and `report` live in the page, so that the dialog comes back as it
/// was (scanning again) after a Roll or Revoke it opened.
#[component]
pub fn ScanDialog(
    path: RwSignal<String>,
    report: RwSignal<Option<ScanReport>>,
    #[prop(into)] on_roll: Callback<KeySummary>,
    #[prop(into)] on_revoke: Callback<KeySummary>,
    #[prop(into)] on_close: Callback<()>,
) -> impl IntoView {
    let error = RwSignal::new(None::<String>);
    let busy = RwSignal::new(false);
    let input = NodeRef::<html::Input>::new();
    focus_on_mount(input);

    let run = move || {
        if busy.get_untracked() {
            return;
        }
        busy.set(true);
        error.set(None);
        let req = ScanRequest {
            path: path.get_untracked(),
        };
        spawn_local(async move {
            let result = ipc::scan_folder(&req).await;
            busy.set(false);
            match result {
                Ok(r) => report.set(Some(r)),
                Err(e) => {
                    report.set(None);
                    error.set(Some(e.message));
                    if let Some(el) = input.get_untracked() {
                        let _ = el.focus();
                    }
                }
            }
        });
    };
    // Back from a Roll or Revoke: scan again, so the list shows what changed.
    if report.get_untracked().is_some() {
        run();
    }
    let submit = move |ev: SubmitEvent| {
        ev.prevent_default();
        run();
    };

    view! {
        <Modal id="scan-dialog" title_id="scan-title" on_escape=on_close>
            <form on:submit=submit>
                <h2 id="scan-title">"Scan a folder for leaked keys"</h2>
                <p class="hint">
                    "Keysmith looks through the folder's files, and the history of a git repository, for this "
                    "account's keys, and names each one it finds. Nothing leaves this computer."
                </p>
                <label for="scan-path">"Folder"</label>
                <div class="row">
                    <input
                        id="scan-path"
                        type="text"
                        autocomplete="off"
                        spellcheck="false"
                        placeholder="/home/you/src/project"
                        node_ref=input
                        bind:value=path
                        aria-invalid=move || error.get().is_some().to_string()
                    />
                    <button type="submit" class="primary" id="scan-submit" disabled=move || busy.get()>
                        {move || if busy.get() { "Scanning…" } else { "Scan" }}
                    </button>
                </div>
                <Show when=move || error.get().is_some()>
                    <p class="error" role="alert" id="scan-error">{move || error.get()}</p>
                </Show>
            </form>
            {move || report.get().map(|r| view! { <Results report=r on_roll=on_roll on_revoke=on_revoke /> })}
            <div class="buttons">
                <button type="button" class="secondary" id="scan-close" on:click=move |_| on_close.run(())>"Close"</button>
            </div>
        </Modal>
    }
}

#[component]
fn Results(
    report: ScanReport,
    on_roll: Callback<KeySummary>,
    on_revoke: Callback<KeySummary>,
) -> impl IntoView {
    let live = report.findings.iter().filter(|f| f.live).count();
    let mut summary = format!(
        "Looked through {} file{}",
        report.files,
        if report.files == 1 { "" } else { "s" }
    );
    if report.git_lines > 0 {
        summary.push_str(&format!(" and {} lines of git history", report.git_lines));
    }
    summary.push_str(&match (report.findings.len(), live) {
        (0, _) => ": no Keysmith key found.".to_owned(),
        (n, 0) => format!(": {n} key{} found, none of them live.", plural(n)),
        (n, l) => format!(
            ": {n} key{} found, {l} live. Roll or revoke each live key: it stays usable by whoever read the file.",
            plural(n)
        ),
    });
    view! {
        <p id="scan-summary" role="status" class:warning={live > 0} class:success={live == 0}>{summary}</p>
        {(!report.problems.is_empty()).then(|| view! {
            <ul class="preview" id="scan-problems">
                {report.problems.into_iter().map(|p| view! { <li>{p}</li> }).collect_view()}
            </ul>
        })}
        {(!report.findings.is_empty()).then(|| view! {
            <ul class="findings" id="scan-results">
                {report.findings.into_iter().map(|f| view! { <Finding finding=f on_roll=on_roll on_revoke=on_revoke /> }).collect_view()}
            </ul>
        })}
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

#[component]
fn Finding(
    finding: ScanFinding,
    on_roll: Callback<KeySummary>,
    on_revoke: Callback<KeySummary>,
) -> impl IntoView {
    let place = format!("{}:{}", finding.place, finding.line);
    let Some(key) = finding.key else {
        return view! {
            <li class="finding">
                <code class="place">{place}</code>
                <span class="muted">"A Keysmith key that is not this account's."</span>
            </li>
        }
        .into_any();
    };
    let rolled = key.replaced_by.is_some();
    let status = key.status_label();
    let class = match key.status {
        KeyStatus::Active if rolled => "grace",
        KeyStatus::Active => "active",
        KeyStatus::Revoked => "revoked",
        KeyStatus::Expired => "expired",
        KeyStatus::Paused => "paused",
        KeyStatus::Tampered => "tampered",
    };
    // A paused key is live (resuming it brings it back) but is not rolled while paused.
    let can_roll = finding.live && !rolled && key.status == KeyStatus::Active;
    let can_revoke = key.status != KeyStatus::Revoked;
    let for_roll = key.clone();
    let for_revoke = key.clone();
    view! {
        <li class="finding" data-key-id=key.id.clone() class:live=finding.live>
            <code class="place">{place}</code>
            <div class="what">
                <span class="name">{key.name.clone()}</span>
                " "
                <code class="start">{format!("{}…", key.start)}</code>
                <span class="muted">{format!(" by {} ", key.created_by.name)}</span>
                <span class=format!("status {class}")>{status}</span>
            </div>
            <div class="actions">
                {can_roll.then(|| view! {
                    <button type="button" class="ghost roll" on:click=move |_| on_roll.run(for_roll.clone())>"Roll"</button>
                })}
                {can_revoke.then(|| view! {
                    <button type="button" class="danger-ghost revoke" on:click=move |_| on_revoke.run(for_revoke.clone())>"Revoke"</button>
                })}
            </div>
        </li>
    }
    .into_any()
}
