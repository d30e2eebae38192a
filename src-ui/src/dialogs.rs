//! The dialogs of the key lifecycle: name a key, show it once, roll it, revoke it.
//!
//! Each dialog puts focus inside itself when it opens, closes on Escape (asking first where
//! something would be lost), and the page behind it is `inert` while it is open. When the
//! last dialog closes, focus goes back to the control that opened the first one (WAI-ARIA
//! Authoring Practices, "Dialog (Modal) Pattern"), found again if the list re-rendered it.

use keysmith_types::{
    ErrorCode, GenerateKeyRequest, KeyReveal, KeySummary, RevokeKeyRequest, RollKeyRequest,
    ScopeInfo, DEFAULT_ROLL_GRACE_SECS, REVOKE_CONFIRMATION,
};
use leptos::ev::{KeyboardEvent, SubmitEvent};
use leptos::html;
use leptos::prelude::*;
use leptos::task::spawn_local;

use crate::app::CloseRequested;
use crate::ipc;
use crate::sign_in::focus_on_mount;

/// How many dialogs are open; the page behind them is `inert` while any is.
#[derive(Debug, Clone, Copy)]
pub struct OpenDialogs(pub RwSignal<u32>);

/// Whether any dialog is open (for `inert` on the page behind).
pub fn dialog_open() -> bool {
    use_context::<OpenDialogs>().is_some_and(|d| d.0.get() > 0)
}

/// [`dialog_open`] without subscribing (for timers).
pub fn dialog_open_untracked() -> bool {
    use_context::<OpenDialogs>().is_some_and(|d| d.0.get_untracked() > 0)
}

/// The control a dialog was opened from, and how to find it again once the page behind
/// re-rendered it: by its id, or by its row (`data-key-id` or `data-member`) and its classes.
#[derive(Clone)]
struct Opener {
    node: web_sys::HtmlElement,
    id: String,
    row: Option<(&'static str, String)>,
    classes: String,
}

thread_local! {
    /// The opener of a dialog that just closed: a dialog opening in its place (Roll →
    /// the new key, a scan result → Revoke) takes it over.
    static PENDING: std::cell::RefCell<Option<Opener>> = const { std::cell::RefCell::new(None) };
}

const ROW_ATTRIBUTES: [&str; 2] = ["data-key-id", "data-member"];

/// The focused control outside any dialog, if any.
fn focused_control() -> Option<Opener> {
    use wasm_bindgen::JsCast;
    let element = document().active_element()?;
    if element.closest(".overlay").ok().flatten().is_some() {
        return None;
    }
    let node = element.dyn_into::<web_sys::HtmlElement>().ok()?;
    if node.tag_name().eq_ignore_ascii_case("body") {
        return None;
    }
    let row = node.closest("tr").ok().flatten().and_then(|tr| {
        ROW_ATTRIBUTES
            .iter()
            .find_map(|a| tr.get_attribute(a).map(|v| (*a, v)))
    });
    Some(Opener {
        id: node.id(),
        classes: node.class_name(),
        row,
        node,
    })
}

/// Who opened the dialog being created: the focused control, else the opener a dialog that
/// just closed handed over.
fn remember_opener() -> Option<Opener> {
    let handed_over = PENDING.with(|p| p.borrow_mut().take());
    focused_control().or(handed_over)
}

/// After a dialog closed: once the page is no longer inert and no other dialog took over,
/// focus its opener (or the same control re-rendered, or the first control of its row).
fn return_focus(opener: Option<Opener>) {
    PENDING.with(|p| *p.borrow_mut() = opener);
    set_timeout(
        || {
            if dialog_showing() {
                return; // another dialog opened: it took the opener over
            }
            if let Some(opener) = PENDING.with(|p| p.borrow_mut().take()) {
                keep_focus(opener, 11);
            }
        },
        std::time::Duration::ZERO,
    );
}

/// Focuses the opener found again if nothing (or the body) holds focus: at once, when the
/// closed dialog took focus with it, and then every 200 ms for `tries - 1` more times,
/// because the list reloads after a dialog's action (a revoke, a roll) and may re-render
/// the opener's row, dropping focus to the body.
fn keep_focus(opener: Opener, tries: u32) {
    if tries == 0 || dialog_showing() {
        return;
    }
    let lost = document()
        .active_element()
        .is_none_or(|e| e.tag_name().eq_ignore_ascii_case("body"));
    if lost {
        if let Some(target) = find_again(&opener) {
            let _ = target.focus();
        }
    }
    set_timeout(
        move || keep_focus(opener, tries - 1),
        std::time::Duration::from_millis(200),
    );
}

/// Whether a dialog is in the page (outside any reactive owner, for timers).
fn dialog_showing() -> bool {
    document()
        .query_selector(".overlay")
        .ok()
        .flatten()
        .is_some()
}

fn find_again(opener: &Opener) -> Option<web_sys::HtmlElement> {
    use wasm_bindgen::JsCast;
    // The same element, unless it now belongs to another row: the key list keeps its rows
    // by place and shows in a row whichever key is at that place.
    let same_row = opener.row.as_ref().is_none_or(|(attribute, value)| {
        opener
            .node
            .closest("tr")
            .ok()
            .flatten()
            .and_then(|tr| tr.get_attribute(attribute))
            .as_deref()
            == Some(value.as_str())
    });
    if opener.node.is_connected() && same_row {
        return Some(opener.node.clone());
    }
    if !opener.id.is_empty() {
        if let Some(e) = document().get_element_by_id(&opener.id) {
            return e.dyn_into().ok();
        }
    }
    let (attribute, value) = opener.row.as_ref()?;
    // The same control (its action may have removed it: Revoke), else the row's first.
    button_in_row(attribute, value, |b| b.class_name() == opener.classes)
}

/// In the page's row (`tr`) whose `attribute` is `value` (`data-key-id`, `data-member`),
/// the first button that is `same`, else the row's first button; `None` when no such row
/// is in the page.
pub fn button_in_row(
    attribute: &str,
    value: &str,
    same: impl Fn(&web_sys::HtmlElement) -> bool,
) -> Option<web_sys::HtmlElement> {
    use wasm_bindgen::JsCast;
    let rows = document().query_selector_all("tr").ok()?;
    let row = (0..rows.length())
        .filter_map(|i| rows.item(i)?.dyn_into::<web_sys::Element>().ok())
        .find(|tr| tr.get_attribute(attribute).as_deref() == Some(value))?;
    let buttons = row.query_selector_all("button").ok()?;
    let buttons: Vec<web_sys::HtmlElement> = (0..buttons.length())
        .filter_map(|i| buttons.item(i)?.dyn_into().ok())
        .collect();
    let same = buttons.iter().position(same);
    buttons.into_iter().nth(same.unwrap_or(0))
}

/// The overlay and box every dialog shares.
#[component]
pub fn Modal(
    id: &'static str,
    title_id: &'static str,
    #[prop(into)] on_escape: Callback<()>,
    children: Children,
) -> impl IntoView {
    if let Some(OpenDialogs(count)) = use_context::<OpenDialogs>() {
        count.update(|n| *n += 1);
        on_cleanup(move || count.update(|n| *n = n.saturating_sub(1)));
    }
    let opener = send_wrapper::SendWrapper::new(remember_opener());
    on_cleanup(move || return_focus(opener.take()));
    let keydown = move |ev: KeyboardEvent| {
        if ev.key() == "Escape" {
            ev.prevent_default();
            ev.stop_propagation();
            on_escape.run(());
        }
    };
    view! {
        <div class="overlay" on:keydown=keydown>
            <div class="dialog" id=id role="dialog" aria-modal="true" aria-labelledby=title_id>
                {children()}
            </div>
        </div>
    }
}

#[component]
pub fn CreateKeyDialog(
    #[prop(into)] on_generated: Callback<KeyReveal>,
    #[prop(into)] on_cancel: Callback<()>,
) -> impl IntoView {
    let name = RwSignal::new(String::new());
    // Lifetime in days; "" = never expires.
    let expiry = RwSignal::new(String::new());
    // Allowed source addresses or networks, as typed ("" = anywhere).
    let sources = RwSignal::new(String::new());
    // The rate limit, as typed ("" = none).
    let rate = RwSignal::new(String::new());
    let error = RwSignal::new(None::<String>);
    // Refusals of the address list and of the rate limit, each shown under its field.
    let sources_error = RwSignal::new(None::<String>);
    let rate_error = RwSignal::new(None::<String>);
    // The scopes the member may give (from the backend) and those ticked.
    let offered = RwSignal::new(Vec::<ScopeInfo>::new());
    let offered_error = RwSignal::new(None::<String>);
    let chosen = RwSignal::new(Vec::<String>::new());
    let scopes_error = RwSignal::new(None::<String>);
    spawn_local(async move {
        match ipc::list_scopes().await {
            Ok(list) => offered.set(list),
            Err(e) => offered_error.set(Some(e.message)),
        }
    });
    let busy = RwSignal::new(false);
    let input = NodeRef::<html::Input>::new();
    let sources_input = NodeRef::<html::Input>::new();
    let rate_input = NodeRef::<html::Input>::new();
    focus_on_mount(input);

    let submit = move |ev: SubmitEvent| {
        ev.prevent_default();
        if busy.get_untracked() {
            return;
        }
        busy.set(true);
        let req = GenerateKeyRequest {
            name: name.get_untracked(),
            expires_in_secs: expiry
                .get_untracked()
                .parse::<i64>()
                .ok()
                .map(|days| days * 86_400),
            // The backend splits on commas and whitespace and checks every entry.
            allowed_sources: vec![sources.get_untracked()],
            // The backend parses and checks it; empty is no limit.
            rate_limit: Some(rate.get_untracked()),
            scopes: chosen.get_untracked(),
        };
        spawn_local(async move {
            let result = ipc::generate_key(&req).await;
            busy.set(false);
            match result {
                Ok(reveal) => on_generated.run(reveal),
                Err(e) if e.code == ErrorCode::InvalidAddress => {
                    sources_error.set(Some(e.message));
                    if let Some(el) = sources_input.get_untracked() {
                        let _ = el.focus();
                    }
                }
                Err(e) if e.code == ErrorCode::InvalidRateLimit => {
                    rate_error.set(Some(e.message));
                    if let Some(el) = rate_input.get_untracked() {
                        let _ = el.focus();
                    }
                }
                Err(e)
                    if matches!(e.code, ErrorCode::InvalidScope | ErrorCode::ScopeBeyondRole) =>
                {
                    scopes_error.set(Some(e.message));
                    // Once drawn, bring the message into view above the dialog's buttons.
                    request_animation_frame(|| {
                        if let Some(el) = document().get_element_by_id("key-scopes-error") {
                            el.scroll_into_view_with_bool(false);
                        }
                    });
                }
                Err(e) => {
                    error.set(Some(e.message));
                    if let Some(el) = input.get_untracked() {
                        let _ = el.focus();
                    }
                }
            }
        });
    };

    view! {
        <Modal id="create-dialog" title_id="create-title" on_escape=on_cancel>
            <form on:submit=submit>
                <h2 id="create-title">"Create A Key"</h2>
                <label for="key-name">"Key name"</label>
                <input
                    id="key-name"
                    type="text"
                    autocomplete="off"
                    spellcheck="false"
                    placeholder="e.g. Zapier – newsletter sync"
                    node_ref=input
                    bind:value=name
                    on:input=move |_| error.set(None)
                    aria-describedby="key-name-hint"
                    aria-invalid=move || error.get().is_some().to_string()
                />
                <p class="hint" id="key-name-hint">
                    "Be descriptive, so you know which app uses this key: later you'll see only this name "
                    "and the key's first 4 characters. Up to 64 characters."
                </p>
                <Show when=move || error.get().is_some()>
                    <p class="error" role="alert" id="key-name-error">{move || error.get()}</p>
                </Show>
                <label for="key-expiry">"Expires"</label>
                <select id="key-expiry" on:change=move |ev| expiry.set(event_target_value(&ev))>
                    <option value="" selected=true>"Never"</option>
                    <option value="7">"In 7 days"</option>
                    <option value="30">"In 30 days"</option>
                    <option value="90">"In 90 days"</option>
                    <option value="365">"In 1 year"</option>
                </select>
                <p class="hint">"An expired key stops working by itself. Roll a key before it expires to replace it."</p>
                <label for="key-sources">"Allowed addresses " <span class="optional">"(optional)"</span></label>
                <input
                    id="key-sources"
                    type="text"
                    autocomplete="off"
                    spellcheck="false"
                    placeholder="e.g. 203.0.113.0/24, 2001:db8::/32"
                    node_ref=sources_input
                    bind:value=sources
                    on:input=move |_| sources_error.set(None)
                    aria-describedby="key-sources-hint"
                    aria-invalid=move || sources_error.get().is_some().to_string()
                />
                <p class="hint" id="key-sources-hint">
                    "Only requests from these IP addresses or networks (CIDR) can use the key; "
                    "separate them with commas. Empty: anywhere. Fixed for the key's life."
                </p>
                <Show when=move || sources_error.get().is_some()>
                    <p class="error" role="alert" id="key-sources-error">{move || sources_error.get()}</p>
                </Show>
                <label for="key-rate">"Rate limit " <span class="optional">"(optional)"</span></label>
                <input
                    id="key-rate"
                    type="text"
                    autocomplete="off"
                    spellcheck="false"
                    placeholder="e.g. 10/s or 600/min burst 50"
                    node_ref=rate_input
                    bind:value=rate
                    on:input=move |_| rate_error.set(None)
                    aria-describedby="key-rate-hint"
                    aria-invalid=move || rate_error.get().is_some().to_string()
                />
                <p class="hint" id="key-rate-hint">
                    "Requests per second (/s) or minute (/min); a burst allows that many at once. "
                    "Beyond it the verifier answers 429 Too Many Requests. Empty: no limit. Fixed for the key's life."
                </p>
                <Show when=move || rate_error.get().is_some()>
                    <p class="error" role="alert" id="key-rate-error">{move || rate_error.get()}</p>
                </Show>
                <fieldset id="key-scopes" aria-describedby="key-scopes-hint">
                    <legend>"Scopes " <span class="optional">"(optional)"</span></legend>
                    <For
                        each=move || offered.get()
                        key=|s| s.name.clone()
                        children=move |s: ScopeInfo| {
                            let name = StoredValue::new(s.name.clone());
                            let toggle = move |ev: leptos::ev::Event| {
                                let on = event_target_checked(&ev);
                                let n = name.get_value();
                                scopes_error.set(None);
                                chosen.update(|c| {
                                    c.retain(|x| *x != n);
                                    if on {
                                        c.push(n);
                                    }
                                });
                            };
                            view! {
                                <label class="scope">
                                    <input type="checkbox" data-scope=s.name.clone() on:change=toggle />
                                    <code>{s.name.clone()}</code>
                                    {(!s.description.is_empty()).then(|| view! {
                                        <span class="muted">{format!(" – {}", s.description)}</span>
                                    })}
                                </label>
                            }
                        }
                    />
                    <p class="hint" id="key-scopes-hint">
                        "Tick scopes to narrow the key: it may then call only what both your role and one of "
                        "its scopes allow. None ticked: everything your role allows. Fixed for the key's life."
                    </p>
                    <Show when=move || offered_error.get().is_some()>
                        <p class="error" id="key-scopes-unavailable">{move || offered_error.get()}</p>
                    </Show>
                    <Show when=move || scopes_error.get().is_some()>
                        <p class="error" role="alert" id="key-scopes-error">{move || scopes_error.get()}</p>
                    </Show>
                </fieldset>
                <div class="buttons">
                    <button type="button" class="secondary" on:click=move |_| on_cancel.run(())>"Cancel"</button>
                    <button type="submit" class="primary" id="generate-key" disabled=move || busy.get()>
                        {move || if busy.get() { "Generating…" } else { "Generate Key" }}
                    </button>
                </div>
            </form>
        </Modal>
    }
}

#[component]
pub fn RevealDialog(reveal: KeyReveal, #[prop(into)] on_closed: Callback<()>) -> impl IntoView {
    let key_id = StoredValue::new(reveal.key.id.clone());
    let key_name = reveal.key.name.clone();
    let sources = reveal.key.allowed_sources.join(", ");
    let rate_limit = reveal.key.rate_limit.clone();
    let scopes = reveal.key.scopes.join(", ");
    let copied = RwSignal::new(false);
    let copy_note = RwSignal::new(None::<String>);
    let error = RwSignal::new(None::<String>);
    // Set when the person tries to leave before copying: the dialog asks first.
    let confirm_leave = RwSignal::new(false);
    // Set when that attempt was closing the window (then leaving quits the app).
    let quitting = RwSignal::new(false);
    let copy_button = NodeRef::<html::Button>::new();
    let go_back = NodeRef::<html::Button>::new();
    focus_on_mount(copy_button);
    if let Some(CloseRequested(close_requested)) = use_context::<CloseRequested>() {
        Effect::new(move |_| {
            if close_requested.get() {
                close_requested.set(false);
                quitting.set(true);
                confirm_leave.set(true);
            }
        });
    }
    Effect::new(move |_| {
        if confirm_leave.get() {
            if let Some(el) = go_back.get() {
                let _ = el.focus();
            }
        }
    });

    let finish = move || {
        let id = key_id.get_value();
        let quit = quitting.get_untracked();
        spawn_local(async move {
            // Whatever the backend says, the key leaves the UI now.
            let _ = ipc::finish_reveal(&id).await;
            on_closed.run(());
            if quit {
                let _ = ipc::quit().await;
            }
        });
    };
    let request_close = move || {
        if copied.get_untracked() {
            finish();
        } else {
            confirm_leave.set(true);
        }
    };
    let copy = move || {
        let id = key_id.get_value();
        spawn_local(async move {
            match ipc::copy_key(&id).await {
                Ok(receipt) => {
                    copied.set(true);
                    error.set(None);
                    copy_note.set(Some(format!(
                        "Copied. The clipboard is cleared in {} seconds if it still holds the key.",
                        receipt.clear_after_secs
                    )));
                }
                Err(e) => error.set(Some(e.message)),
            }
        });
    };
    // However the key is copied (Ctrl+C, Ctrl+Insert, the context menu's Copy, wherever the
    // focus is), the backend copies it: the same history hint, the same clearing, and it
    // counts as copied. Its text cannot be selected, so the middle-click selection (X11's
    // PRIMARY) never holds it.
    let chord = window_event_listener(leptos::ev::keydown, move |ev: KeyboardEvent| {
        let key = ev.key();
        let copy_key = key.eq_ignore_ascii_case("c") || key == "Insert";
        if (ev.ctrl_key() || ev.meta_key()) && !ev.alt_key() && copy_key {
            ev.prevent_default();
            copy();
        }
    });
    let menu_copy = window_event_listener(leptos::ev::copy, move |ev| {
        ev.prevent_default();
        copy();
    });
    on_cleanup(move || {
        chord.remove();
        menu_copy.remove();
    });

    let secret = reveal.secret.expose().to_owned();
    view! {
        <Modal id="reveal-dialog" title_id="reveal-title" on_escape=move |()| {
            if confirm_leave.get_untracked() { confirm_leave.set(false) } else { request_close() }
        }>
            <h2 id="reveal-title">"Your new API key"</h2>
            <p class="muted">"For "<strong>{key_name}</strong></p>
            {(!sources.is_empty()).then(|| view! {
                <p class="muted" id="reveal-sources">
                    "Works only from "<span class="sources">{sources}</span>
                </p>
            })}
            {rate_limit.map(|limit| view! {
                <p class="muted" id="reveal-rate">
                    "Rate limit: "<span class="rate">{limit}</span>
                </p>
            })}
            {(!scopes.is_empty()).then(|| view! {
                <p class="muted" id="reveal-scopes">
                    "Scopes: "<span class="scopes">{scopes}</span>
                </p>
            })}
            <code class="secret" id="revealed-key" aria-label="The new API key"
                on:contextmenu=|ev| ev.prevent_default()>{secret}</code>
            <p class="warning">
                "Copy this key now and save it somewhere secure. You won't be able to see or copy it again. "
                "If you lose it, generate a new key and update the integration that uses it."
            </p>
            <Show when=move || copy_note.get().is_some()>
                <p class="success" role="status" id="copy-note">{move || copy_note.get()}</p>
            </Show>
            <Show when=move || error.get().is_some()>
                <p class="error" role="alert">{move || error.get()}</p>
            </Show>
            <Show
                when=move || confirm_leave.get()
                fallback=move || view! {
                    <div class="buttons">
                        <button type="button" class="secondary" id="copy-key" node_ref=copy_button on:click=move |_| copy()>
                            {move || if copied.get() { "Copy again" } else { "Copy key to clipboard" }}
                        </button>
                        <button type="button" class="primary" id="reveal-done" on:click=move |_| request_close()>"Done"</button>
                    </div>
                }
            >
                <div class="confirm-leave" role="alertdialog" aria-labelledby="leave-title" id="leave-confirm">
                    <p id="leave-title"><strong>"You haven't copied this key."</strong>
                        " Once this dialog closes the key can never be shown again."</p>
                    <div class="buttons">
                        <button type="button" class="secondary" id="leave-back" node_ref=go_back
                            on:click=move |_| { confirm_leave.set(false); quitting.set(false); }>
                            "Go back"
                        </button>
                        <button type="button" class="danger" id="leave-discard" on:click=move |_| finish()>
                            {move || if quitting.get() { "Discard key and quit" } else { "Close without copying" }}
                        </button>
                    </div>
                </div>
            </Show>
        </Modal>
    }
}

/// Said after a key's one-time display ended before anyone copied it, without the member
/// choosing so (the app locked, the window's page reloaded): the key can never be shown
/// again, so revoking it is offered (issue 12).
#[component]
pub fn UnsavedKeyDialog(
    key: KeySummary,
    #[prop(into)] on_revoke: Callback<()>,
    #[prop(into)] on_keep: Callback<()>,
) -> impl IntoView {
    let revoke = NodeRef::<html::Button>::new();
    focus_on_mount(revoke);
    view! {
        <Modal id="unsaved-dialog" title_id="unsaved-title" on_escape=on_keep>
            <h2 id="unsaved-title">"A new key was never copied"</h2>
            <p>
                <strong>{key.name.clone()}</strong>" ("<code>{format!("{}…", key.start)}</code>") was generated, "
                "but its one-time display closed before anyone copied it: Keysmith locked, or the window "
                "reloaded. It can never be shown again."
            </p>
            <p class="muted">"If nobody saved it, revoke it, and generate a new key when you need one."</p>
            <div class="buttons">
                <button type="button" class="secondary" id="unsaved-keep" on:click=move |_| on_keep.run(())>
                    "Keep it"
                </button>
                <button type="button" class="danger" id="unsaved-revoke" node_ref=revoke
                    on:click=move |_| on_revoke.run(())>
                    "Revoke it…"
                </button>
            </div>
        </Modal>
    }
}

/// Grace periods offered when rolling a key, in seconds, with their labels.
const GRACE_CHOICES: [(i64, &str); 4] = [
    (0, "End the old key now"),
    (3_600, "1 hour"),
    (DEFAULT_ROLL_GRACE_SECS, "24 hours"),
    (7 * 86_400, "7 days"),
];

#[component]
pub fn RollDialog(
    key: KeySummary,
    #[prop(into)] on_rolled: Callback<KeyReveal>,
    #[prop(into)] on_cancel: Callback<()>,
) -> impl IntoView {
    let grace = RwSignal::new(DEFAULT_ROLL_GRACE_SECS);
    let error = RwSignal::new(None::<String>);
    let busy = RwSignal::new(false);
    let select = NodeRef::<html::Select>::new();
    focus_on_mount(select);
    let key_id = StoredValue::new(key.id.clone());

    let submit = move |ev: SubmitEvent| {
        ev.prevent_default();
        if busy.get_untracked() {
            return;
        }
        busy.set(true);
        let req = RollKeyRequest {
            id: key_id.get_value(),
            grace_secs: grace.get_untracked(),
        };
        spawn_local(async move {
            let result = ipc::roll_key(&req).await;
            busy.set(false);
            match result {
                Ok(reveal) => on_rolled.run(reveal),
                Err(e) => error.set(Some(e.message)),
            }
        });
    };

    view! {
        <Modal id="roll-dialog" title_id="roll-title" on_escape=on_cancel>
            <form on:submit=submit>
                <h2 id="roll-title">"Roll API key"</h2>
                <p>
                    "Generate a replacement for "<strong>{key.name.clone()}</strong>" ("<code>{format!("{}…", key.start)}</code>"). "
                    "The new key is shown once. Give the old key time to keep working while you update the integration that uses it."
                </p>
                <label for="roll-grace">"The old key keeps working for"</label>
                <select id="roll-grace" node_ref=select
                    on:change=move |ev| grace.set(event_target_value(&ev).parse().unwrap_or(DEFAULT_ROLL_GRACE_SECS))>
                    {GRACE_CHOICES.into_iter().map(|(secs, label)| view! {
                        <option value=secs.to_string() selected=secs == DEFAULT_ROLL_GRACE_SECS>{label}</option>
                    }).collect_view()}
                </select>
                <p class="hint">"After that it fails as expired. You can still revoke it at any time."</p>
                <Show when=move || error.get().is_some()>
                    <p class="error" role="alert" id="roll-error">{move || error.get()}</p>
                </Show>
                <div class="buttons">
                    <button type="button" class="secondary" on:click=move |_| on_cancel.run(())>"Cancel"</button>
                    <button type="submit" class="primary" id="roll-submit" disabled=move || busy.get()>
                        {move || if busy.get() { "Rolling…" } else { "Roll key" }}
                    </button>
                </div>
            </form>
        </Modal>
    }
}

#[component]
pub fn RevokeDialog(
    key: KeySummary,
    #[prop(into)] on_revoked: Callback<()>,
    #[prop(into)] on_cancel: Callback<()>,
) -> impl IntoView {
    let typed = RwSignal::new(String::new());
    let error = RwSignal::new(None::<String>);
    let busy = RwSignal::new(false);
    let input = NodeRef::<html::Input>::new();
    focus_on_mount(input);
    let key_id = StoredValue::new(key.id.clone());
    let matches = move || typed.with(|t| t == REVOKE_CONFIRMATION);

    let submit = move |ev: SubmitEvent| {
        ev.prevent_default();
        if !matches() || busy.get_untracked() {
            return;
        }
        busy.set(true);
        let req = RevokeKeyRequest {
            id: key_id.get_value(),
            confirmation: typed.get_untracked(),
        };
        spawn_local(async move {
            let result = ipc::revoke_key(&req).await;
            busy.set(false);
            match result {
                Ok(_) => on_revoked.run(()),
                Err(e) => error.set(Some(e.message)),
            }
        });
    };

    view! {
        <Modal id="revoke-dialog" title_id="revoke-title" on_escape=on_cancel>
            <form on:submit=submit>
                <h2 id="revoke-title">"Revoke API key"</h2>
                <p>
                    "Revoke "<strong>{key.name.clone()}</strong>" ("<code>{format!("{}…", key.start)}</code>")? "
                    "Every integration using it stops working at once. A revoked key can't be reactivated."
                </p>
                <label for="revoke-confirm">"Type "<strong>"REVOKE"</strong>" to confirm"</label>
                <input id="revoke-confirm" type="text" autocomplete="off" spellcheck="false"
                    node_ref=input bind:value=typed on:input=move |_| error.set(None) />
                <Show when=move || error.get().is_some()>
                    <p class="error" role="alert" id="revoke-error">{move || error.get()}</p>
                </Show>
                <div class="buttons">
                    <button type="button" class="secondary" on:click=move |_| on_cancel.run(())>"Cancel"</button>
                    <button type="submit" class="danger" id="revoke-submit" disabled=move || !matches() || busy.get()>
                        "Revoke"
                    </button>
                </div>
            </form>
        </Modal>
    }
}
