//! The API keys page: the list, "Create A Key", and the dialogs it opens.

use keysmith_types::{
    KeyReveal, KeyStatus, KeySummary, MemberSummary, Role, SearchQuery, DAY_MS, EXPIRING_SOON_DAYS,
    UNUSED_DAYS_DEFAULT,
};
use leptos::prelude::*;
use leptos::task::spawn_local;

use crate::dialogs::{
    button_in_row, dialog_open, dialog_open_untracked, CreateKeyDialog, RevealDialog, RevokeDialog,
    RollDialog, UnsavedKeyDialog,
};
use crate::scan::ScanDialog;
use crate::usage::UsageDialog;
use crate::{format, ipc};

/// How many keys the page asks for first, before the whole list: more than a full-screen
/// window shows.
const FIRST_PAGE: u32 = 60;

#[component]
pub fn KeysPage(member: MemberSummary) -> impl IntoView {
    let keys = RwSignal::new(Vec::<KeySummary>::new());
    let loaded = RwSignal::new(false);
    let load_error = RwSignal::new(None::<String>);
    // A pause or resume the backend refused (the key changed meanwhile, a role changed…).
    let action_error = RwSignal::new(None::<String>);
    let creating = RwSignal::new(false);
    let reveal = RwSignal::new(None::<KeyReveal>);
    let revoking = RwSignal::new(None::<KeySummary>);
    let rolling = RwSignal::new(None::<KeySummary>);
    let charting = RwSignal::new(None::<KeySummary>);
    let sees_others = matches!(member.role, Role::Owner | Role::Admin);
    let columns = if sees_others { "7" } else { "6" };
    let scanning = RwSignal::new(false);
    let scan_path = RwSignal::new(String::new());
    let scan_report = RwSignal::new(None::<keysmith_types::ScanReport>);
    // A Roll or Revoke opened from the scan's results: the scan comes back after it.
    let back_to_scan = RwSignal::new(false);
    let after_action = move || {
        if back_to_scan.get_untracked() {
            back_to_scan.set(false);
            scanning.set(true);
        }
    };

    // The fingerprint of the list in `keys`: the backend sends the list again only when it
    // changed, so the refresh below costs the page nothing otherwise.
    let fingerprint = StoredValue::new(None::<String>);
    // Whether `keys` is the whole list, not yet only its first page.
    let complete = RwSignal::new(false);
    let reload = move || {
        spawn_local(async move {
            let known = fingerprint.get_value();
            match ipc::list_keys(known.as_deref(), None).await {
                Ok(ipc::KeyList::Changed {
                    fingerprint: now,
                    keys: list,
                }) => {
                    fingerprint.set_value(Some(now));
                    keys.set(list);
                    load_error.set(None);
                    complete.set(true);
                }
                Ok(ipc::KeyList::Unchanged) => {
                    if load_error.with_untracked(Option::is_some) {
                        load_error.set(None);
                    }
                }
                Err(e) => load_error.set(Some(e.message)),
            }
            if !loaded.get_untracked() {
                loaded.set(true);
            }
        })
    };
    // The first screen's keys first, then the whole list: with thousands of keys the first
    // rows show at once. A first page shorter than asked for is already the whole list.
    spawn_local(async move {
        match ipc::list_keys(None, Some(FIRST_PAGE)).await {
            Ok(ipc::KeyList::Changed {
                fingerprint: now,
                keys: page,
            }) if !complete.get_untracked() => {
                let whole = page.len() < FIRST_PAGE as usize;
                keys.set(page);
                loaded.set(true);
                if whole {
                    fingerprint.set_value(Some(now));
                    complete.set(true);
                    return;
                }
                // The rest once these rows are painted, so it does not hold up their frame.
                request_animation_frame(move || set_timeout(reload, std::time::Duration::ZERO));
                return;
            }
            _ => {}
        }
        reload();
    });
    // A key this member generated whose display ended uncopied (the app locked, the page
    // reloaded): say so, and offer to revoke it.
    let unsaved = RwSignal::new(None::<KeySummary>);
    spawn_local(async move {
        if let Ok(found) = ipc::take_unsaved_key().await {
            unsaved.set(found);
        }
    });
    // Keep "Last used" and "Status" current while the page is open: a verifier writes last
    // use every few seconds, and expiries pass. Not while a dialog is open.
    if let Ok(handle) = set_interval_with_handle(
        move || {
            if !dialog_open_untracked() {
                reload();
            }
        },
        std::time::Duration::from_secs(5),
    ) {
        on_cleanup(move || handle.clear());
    }

    // "" = every member (Owner and Admins only).
    let filter = RwSignal::new(String::new());
    let search = RwSignal::new(String::new());
    // "" = every key, "expiring" = works but stops within 7 days, "unused" = works but was
    // not used for `unused_days`.
    let flag = RwSignal::new(String::new());
    let unused_days = RwSignal::new(UNUSED_DAYS_DEFAULT);
    // What the search looks through, per key, prepared once per list rather than per
    // keystroke.
    let search_texts = Memo::new(move |_| {
        keys.with(|all| all.iter().map(KeySummary::search_text).collect::<Vec<_>>())
    });
    // The keys that pass the filters, as positions in `keys`.
    let shown = Memo::new(move |_| {
        let f = filter.get();
        let q = SearchQuery::new(&search.get());
        let wanted = flag.get();
        let days = unused_days.get();
        let now = js_sys::Date::now() as i64;
        let texts = search_texts.read();
        keys.with(|all| {
            all.iter()
                .enumerate()
                .filter(|(_, k)| f.is_empty() || k.created_by.id == f)
                .filter(|(i, _)| q.matches(texts.get(*i).map_or("", String::as_str)))
                .filter(|(_, k)| match wanted.as_str() {
                    "expiring" => k.expires_within(now, EXPIRING_SOON_DAYS),
                    "unused" => k.unused_for(now, days),
                    _ => true,
                })
                .map(|(i, _)| i)
                .collect::<Vec<_>>()
        })
    });
    let window = ListWindow::new();
    let range = Memo::new(move |_| window.range(shown.with(Vec::len)));
    // What is above the table may change with the filters ("Showing n of m"): look again.
    Effect::new(move |_| {
        shown.track();
        complete.track();
        request_animation_frame(move || window.measure());
    });
    // The rows in the page, by their place among the keys shown (see `KeyRow`).
    let places = move || {
        let (first, last) = range.get();
        first..last
    };
    let narrowed = move || {
        !filter.get().is_empty() || !search.get().trim().is_empty() || !flag.get().is_empty()
    };
    let creators = Memo::new(move |_| {
        let mut members: Vec<MemberSummary> = keys.with(|all| {
            let mut seen = std::collections::BTreeMap::new();
            for k in all {
                seen.entry(k.created_by.id.as_str())
                    .or_insert(&k.created_by);
            }
            seen.into_values().cloned().collect()
        });
        members.sort_by(|a, b| a.name.cmp(&b.name));
        members
    });

    let on_generated = move |r: KeyReveal| {
        creating.set(false);
        reveal.set(Some(r));
        reload();
    };
    let on_reveal_closed = move |()| {
        reveal.set(None);
        after_action();
    };
    let on_revoked = move |()| {
        revoking.set(None);
        reload();
        after_action();
    };
    let on_scan_roll = move |k: KeySummary| {
        scanning.set(false);
        back_to_scan.set(true);
        rolling.set(Some(k));
    };
    let on_scan_revoke = move |k: KeySummary| {
        scanning.set(false);
        back_to_scan.set(true);
        revoking.set(Some(k));
    };
    let on_pause = move |(k, pause): (KeySummary, bool)| {
        spawn_local(async move {
            let req = keysmith_types::PauseKeyRequest {
                id: k.id.clone(),
                pause,
            };
            match ipc::set_key_paused(&req).await {
                Ok(_) => action_error.set(None),
                Err(e) => action_error.set(Some(format!("“{}”: {}", k.name, e.message))),
            }
            reload();
        })
    };
    let on_rolled = move |r: KeyReveal| {
        rolling.set(None);
        reveal.set(Some(r));
        reload();
    };

    // Focus on a row's button stays with its key when another key comes to its place (a
    // reload put a new key above it): a keyboard user's next Enter acts on the key they
    // chose, or on nothing. Checked once every row is redrawn.
    let focused = StoredValue::new_local(None::<FocusedButton>);
    let on_focusin = move |ev: leptos::ev::FocusEvent| {
        focused.set_value(FocusedButton::of(ev.target()));
    };
    let on_focusout = move |ev: leptos::ev::FocusEvent| {
        // Focus went to another control (a row's button is taken up by `focusin`); with no
        // control to go to, the button may have been taken out by a redraw: keep it.
        if ev.related_target().is_some() {
            focused.set_value(None);
        }
    };
    Effect::new(move |_| {
        shown.track();
        keys.track();
        range.track();
        // No timer per keystroke while no row's button has focus (typing in the search box).
        if focused.with_value(Option::is_none) {
            return;
        }
        set_timeout(
            move || {
                if let Some(button) = focused.try_get_value().flatten() {
                    button.follow();
                }
            },
            std::time::Duration::ZERO,
        );
    });
    // A click on a row's button, by the key whose row it is (`data-key-id`) and what the
    // button does (`data-action`): one handler for the table rather than one per button, so
    // that a row shows another key without its buttons' handlers changing.
    let on_row_click = move |ev: leptos::ev::MouseEvent| {
        let Some((action, id)) = row_action(&ev) else {
            return;
        };
        let Some(k) = keys.with_untracked(|all| all.iter().find(|k| k.id == id).cloned()) else {
            return;
        };
        match action.as_str() {
            "usage" => charting.set(Some(k)),
            "roll" => rolling.set(Some(k)),
            "revoke" => revoking.set(Some(k)),
            "pause" => on_pause((k, true)),
            "resume" => on_pause((k, false)),
            _ => {}
        }
    };

    view! {
        <div inert=dialog_open>
                <div class="page-head">
                    <div>
                        <h1>"API keys"</h1>
                        <p class="muted lead">
                            "An API key lets another system act for this account. Give each integration its own key "
                            "and a descriptive name. You'll see the full key only once, right after you generate it; "
                            "afterwards only its name and first 4 characters."
                        </p>
                    </div>
                    <div class="head-actions">
                        <button class="secondary" id="scan-folder" on:click=move |_| scanning.set(true)>"Scan a folder"</button>
                        <button class="primary" id="create-key" on:click=move |_| creating.set(true)>"Create A Key"</button>
                    </div>
                </div>
                <div class="toolbar">
                    <input type="search" id="key-search" class="search" placeholder="Search name, creator or status"
                        aria-label="Search keys by name, creator or status"
                        prop:value=move || search.get()
                        on:input=move |ev| search.set(event_target_value(&ev)) />
                    <label for="key-flag" class="inline">"Show"</label>
                    <select id="key-flag" on:change=move |ev| flag.set(event_target_value(&ev))>
                        <option value="">"All keys"</option>
                        <option value="expiring">{format!("Expiring within {EXPIRING_SOON_DAYS} days")}</option>
                        <option value="unused">"Not used lately"</option>
                    </select>
                    <Show when=move || flag.get() == "unused">
                        <label for="unused-days" class="inline">"for at least"</label>
                        <input type="number" id="unused-days" class="days" min="1" max="3650"
                            prop:value=move || unused_days.get().to_string()
                            on:change=move |ev| {
                                // Out-of-range or unreadable input goes back to the last good number.
                                match event_target_value(&ev).trim().parse::<i64>() {
                                    Ok(d) if (1..=3650).contains(&d) => unused_days.set(d),
                                    _ => unused_days.set(unused_days.get_untracked()),
                                }
                            } />
                        <span class="inline">"days"</span>
                    </Show>
                    {sees_others.then(|| view! {
                        <label for="key-filter" class="inline">"Generated by"</label>
                        <select id="key-filter" on:change=move |ev| filter.set(event_target_value(&ev))>
                            <option value="">"Every member"</option>
                            {move || creators.get().into_iter().map(|m| view! {
                                <option value=m.id.clone() selected=move || filter.get() == m.id>{m.name.clone()}</option>
                            }).collect_view()}
                        </select>
                    })}
                </div>
                <Show when=move || action_error.get().is_some()>
                    <p class="error" role="alert" id="key-action-error">{move || action_error.get()}</p>
                </Show>
                <Show when=move || load_error.get().is_some()>
                    <p class="error" role="alert">{move || load_error.get()}</p>
                </Show>
                <Show when=move || !loaded.get()>
                    <p class="muted" id="keys-loading" role="status">"Loading keys…"</p>
                </Show>
                <Show when=move || loaded.get() && keys.with(Vec::is_empty) && load_error.with(Option::is_none)>
                    <div class="empty" id="no-keys">
                        <h2>"No API keys yet"</h2>
                        <p class="muted">"Create a key for each app or integration that needs access."</p>
                    </div>
                </Show>
                <Show when=move || loaded.get() && !complete.get()>
                    <p class="muted" id="keys-more" role="status">"Loading the rest of the keys…"</p>
                </Show>
                <Show when=move || loaded.get() && !keys.with(Vec::is_empty) && narrowed()>
                    <p class="muted" id="keys-count" role="status">
                        {move || {
                            let n = shown.with(Vec::len);
                            let total = keys.with(Vec::len);
                            if n == 0 {
                                format!("No key matches (of {total}).")
                            } else {
                                format!("Showing {n} of {total} keys.")
                            }
                        }}
                    </p>
                </Show>
                <Show when=move || loaded.get() && !keys.with(Vec::is_empty)>
                    <table class="keys" id="keys-table"
                        aria-rowcount=move || (shown.with(Vec::len) + 1).to_string()>
                        <thead>
                            <tr>
                                <th scope="col">"Name"</th>
                                <th scope="col">"Key"</th>
                                {sees_others.then(|| view! { <th scope="col">"Created by"</th> })}
                                <th scope="col">"Last used"</th>
                                <th scope="col">"Expires"</th>
                                <th scope="col">"Status"</th>
                                <th scope="col"><span class="sr-only">"Actions"</span></th>
                            </tr>
                        </thead>
                        <tbody node_ref=window.body on:click=on_row_click on:focusin=on_focusin on:focusout=on_focusout>
                            <tr class="spacer" aria-hidden="true" style:height=move || window.spacer(range.get().0)>
                                <td colspan=columns></td>
                            </tr>
                            <For each=places key=|place| *place let:place>
                                <KeyRow place=place sees_others=sees_others unused_days=unused_days
                                    key=Memo::new(move |_| shown.with(|positions| {
                                        positions.get(place).map(|&i| keys.with(|all| all[i].clone()))
                                    })) />
                            </For>
                            <tr class="spacer" aria-hidden="true" style:height=move || window.spacer(shown.with(Vec::len) - range.get().1)>
                                <td colspan=columns></td>
                            </tr>
                        </tbody>
                    </table>
                </Show>
        </div>
        <Show when=move || creating.get()>
            <CreateKeyDialog on_generated=on_generated on_cancel=move |()| creating.set(false) />
        </Show>
        {move || reveal.get().map(|r| view! { <RevealDialog reveal=r on_closed=on_reveal_closed /> })}
        {move || unsaved.get().map(|k| view! {
            <UnsavedKeyDialog key=k.clone()
                on_revoke=move |()| { unsaved.set(None); revoking.set(Some(k.clone())); }
                on_keep=move |()| unsaved.set(None) />
        })}
        {move || revoking.get().map(|k| view! {
            <RevokeDialog key=k on_revoked=on_revoked on_cancel=move |()| { revoking.set(None); after_action(); } />
        })}
        {move || rolling.get().map(|k| view! {
            <RollDialog key=k on_rolled=on_rolled on_cancel=move |()| { rolling.set(None); after_action(); } />
        })}
        {move || charting.get().map(|k| view! {
            <UsageDialog key=k on_close=move |()| charting.set(None) />
        })}
        <Show when=move || scanning.get()>
            <ScanDialog path=scan_path report=scan_report
                on_roll=on_scan_roll on_revoke=on_scan_revoke
                on_close=move |()| scanning.set(false) />
        </Show>
    }
}

/// What a click on a key row's button asks for, as `(action, key id)`: the button's
/// `data-action` and its row's `data-key-id`. `None` for a click anywhere else.
fn row_action(ev: &leptos::ev::MouseEvent) -> Option<(String, String)> {
    row_button(ev.target()).map(|(_, action, id)| (action, id))
}

/// The key row's button that is or holds `target` (an event's): the button, its
/// `data-action` and its row's `data-key-id`. `None` anywhere else.
fn row_button(target: Option<web_sys::EventTarget>) -> Option<(web_sys::Element, String, String)> {
    use wasm_bindgen::JsCast;
    let target = target?.dyn_into::<web_sys::Element>().ok()?;
    let button = target.closest("button[data-action]").ok()??;
    let action = button.get_attribute("data-action")?;
    let id = row_key_id(&button)?;
    Some((button, action, id))
}

/// The `data-key-id` of the key row `node` is in.
fn row_key_id(node: &web_sys::Element) -> Option<String> {
    node.closest("tr[data-key-id]")
        .ok()??
        .get_attribute("data-key-id")
}

/// One row of the key list, kept for a place among the keys shown (0 = first) and redrawn
/// in place when another key comes to that place.
///
/// A search keystroke that changes which keys are shown then changes the rows' text and
/// attributes, where rows kept per key were taken out and built anew: about 2 ms a row in
/// WebKit, most of a slow keystroke (`tests/list_bench.rs`, issue 12). Its buttons carry
/// `data-action` and the page handles their clicks by the row's `data-key-id`.
#[component]
fn KeyRow(
    /// The key at this place; `None` for a moment while the list shrinks.
    #[prop(into)]
    key: Signal<Option<KeySummary>>,
    place: usize,
    sees_others: bool,
    /// "Not used for N days" flags keys idle this long.
    #[prop(into)]
    unused_days: Signal<i64>,
) -> impl IntoView {
    move || {
        let days = unused_days.get();
        key.with(|k| k.as_ref().map(|k| key_row(k, place, sees_others, days)))
    }
}

/// The row button that has focus, as the key list last saw it: the button, its row's key
/// id and its `data-action`.
#[derive(Clone)]
struct FocusedButton {
    node: web_sys::Element,
    id: String,
    action: String,
}

impl FocusedButton {
    /// The button `target` (a `focusin` event's), if it is a key row's.
    fn of(target: Option<web_sys::EventTarget>) -> Option<FocusedButton> {
        let (node, action, id) = row_button(target)?;
        Some(FocusedButton { node, id, action })
    }

    /// After the rows changed: if this button still has focus but its row now shows another
    /// key, or the redraw took it out of the page and focus with it, focuses the same button
    /// in the row of its key, else that row's first button. When that row is not in the
    /// page, focus is dropped rather than left on another key's button.
    fn follow(&self) {
        use wasm_bindgen::JsCast;
        let active = document().active_element();
        let still = active.as_ref() == Some(&self.node);
        let moved = still && row_key_id(&self.node).is_some_and(|id| id != self.id);
        let lost = !self.node.is_connected()
            && active.is_none_or(|e| e.tag_name().eq_ignore_ascii_case("body"));
        if !(moved || lost) {
            return;
        }
        let action = Some(self.action.as_str());
        let target = button_in_row("data-key-id", &self.id, |b| {
            b.get_attribute("data-action").as_deref() == action
        });
        match target {
            Some(button) => {
                let _ = button.focus();
            }
            None => {
                if let Some(node) = self.node.dyn_ref::<web_sys::HtmlElement>() {
                    let _ = node.blur();
                }
            }
        }
    }
}

/// What a [`KeyRow`] shows of `key` at `place`, flagging it unused after `unused_days`.
fn key_row(key: &KeySummary, place: usize, sees_others: bool, unused_days: i64) -> impl IntoView {
    let revoked = key.status == KeyStatus::Revoked;
    let active = key.status == KeyStatus::Active;
    let rolled = key.replaced_by.is_some();
    let paused = key.status == KeyStatus::Paused;
    let expires = match (key.expires_at, rolled) {
        (None, _) => "Never".to_owned(),
        (Some(at), true) => format!("{} (rolled)", format::when(Some(at))),
        (Some(at), false) => format::when(Some(at)),
    };
    let expires_title = rolled
        .then(|| "Replaced by a newer key; works until the end of its grace period".to_owned());
    let label = key.status_label();
    let created = format!("Created {}", format::when(Some(key.created_at)));
    let sources = (!key.allowed_sources.is_empty()).then(|| key.allowed_sources.join(", "));
    let rate = key.rate_limit.clone();
    let scopes = (!key.scopes.is_empty()).then(|| key.scopes.join(", "));
    let details = {
        let mut parts = vec![created.clone()];
        if let Some(list) = &sources {
            parts.push(format!("Only from {list}"));
        }
        if let Some(limit) = &rate {
            parts.push(format!("Rate limit {limit}"));
        }
        if let Some(list) = &scopes {
            parts.push(format!("Scopes: {list}"));
        }
        parts.join(" · ")
    };
    let status = match key.status {
        KeyStatus::Revoked => view! {
            <span class="status revoked" title=format!("Revoked {}", format::when(key.revoked_at))>{label}</span>
        }
        .into_any(),
        KeyStatus::Expired => view! { <span class="status expired">{label}</span> }.into_any(),
        KeyStatus::Tampered => view! {
            <span class="status tampered" title="Its row in the database was changed outside Keysmith: it is refused everywhere. Revoke it.">
                {label}
            </span>
        }.into_any(),
        KeyStatus::Paused => view! {
            <span class="status paused" title=format!("Paused {}: refused until someone resumes it", format::when(key.paused_at))>{label}</span>
        }
        .into_any(),
        KeyStatus::Active if rolled => view! { <span class="status grace">{label}</span> }.into_any(),
        KeyStatus::Active => view! { <span class="status active">{label}</span> }.into_any(),
    };
    let now = js_sys::Date::now() as i64;
    let expiring = key.expires_within(now, EXPIRING_SOON_DAYS).then(|| {
        let days = key
            .expires_at
            .map_or(0, |at| (at - now + DAY_MS - 1) / DAY_MS);
        let text = match days {
            ..=1 => "Stops within a day".to_owned(),
            d => format!("Stops within {d} days"),
        };
        view! { <span class="flag expiring" title="Its expiry, or the end of its grace period, is near: roll it or plan for it">{text}</span> }
    });
    let idle = key.unused_for(now, unused_days).then(|| view! {
        <span class="flag unused" title="Still active but nothing used it lately: revoke it if nobody needs it">
            {format!("Not used for {unused_days}+ days")}
        </span>
    });
    let pause = (active || paused).then(|| {
        let (action, label, title) = if paused {
            ("resume", "Resume", "Let this key work again")
        } else {
            (
                "pause",
                "Pause",
                "Refuse this key everywhere until you resume it",
            )
        };
        view! {
            <button class="ghost pause" data-action=action title=title>{label}</button>
        }
    });
    view! {
        <tr class="key-row" class:revoked=!(active || paused) class:paused=paused data-key-id=key.id.clone()
            aria-rowindex=(place + 2).to_string()>
            <td class="name-cell"><div class="name-box">
                <span class="name" title=key.name.clone()>{key.name.clone()}</span>
                <span class="details" title=details>
                <span class="created">{created}</span>
                {sources.map(|list| view! {
                    <span class="sources" title=format!("Refused from any other address: {list}")>
                        {format!("Only from {list}")}
                    </span>
                })}
                {rate.map(|limit| view! {
                    <span class="rate" title="Requests beyond this rate are refused with 429 Too Many Requests">
                        {format!("Rate limit {limit}")}
                    </span>
                })}
                {scopes.map(|list| view! {
                    <span class="scopes" title="The key may call only what both its creator's role and one of these scopes allow">
                        {format!("Scopes: {list}")}
                    </span>
                })}
                </span>
            </div></td>
            <td><code class="start">{format!("{}…", key.start)}</code></td>
            {sees_others.then(|| view! { <td>{key.created_by.name.clone()}</td> })}
            <td class="last-used">{format::when(key.last_used_at)}</td>
            <td class="expires" title=expires_title>{expires}</td>
            <td class="status-cell">{status}{expiring}{idle}</td>
            <td class="actions"><div class="row-actions">
                <button class="ghost usage" data-action="usage"
                    title="Requests accepted and refused, per day, over the last 30 days">"Usage"</button>
                {(active && !rolled).then(|| view! {
                    <button class="ghost roll" data-action="roll">"Roll"</button>
                })}
                {pause}
                {(!revoked).then(|| view! {
                    <button class="danger-ghost revoke" data-action="revoke">"Revoke"</button>
                })}
            </div></td>
        </tr>
    }
}

/// Draws the key list's rows, hidden, while the sign-in screen waits for a passphrase:
/// made-up keys' rows, built in one frame and shown with other keys in the next (as a
/// search keystroke redraws them), a moment after the screen appears.
///
/// The first rows after sign-in, and the first keystroke's redraw, are then not the first
/// run of this code. WebKit runs new WebAssembly in its interpreter and compiles it tier by
/// tier as it runs, and the row's date format, fonts and style rules are also set up on
/// first use: with them cold, the first rows took about 200 ms to draw after sign-in; warm,
/// about 60 ms (`tests/list_bench.rs`, issue 12).
const WARM_UP_ROWS: usize = 40;
const WARM_UP_ROUNDS: u32 = 3;

#[component]
pub fn KeyRowsWarmUp() -> impl IntoView {
    // Which made-up keys the rows show: none (no rows), the first set, or the second.
    let phase = RwSignal::new(0u8);
    fn round(phase: RwSignal<u8>, left: u32) {
        if left == 0 {
            return;
        }
        phase.try_set(1);
        request_animation_frame(move || {
            phase.try_set(2);
            request_animation_frame(move || {
                phase.try_set(0);
                set_timeout(
                    move || round(phase, left - 1),
                    std::time::Duration::from_millis(50),
                );
            })
        });
    }
    if let Ok(handle) = set_timeout_with_handle(
        move || round(phase, WARM_UP_ROUNDS),
        std::time::Duration::from_millis(300),
    ) {
        on_cleanup(move || handle.clear());
    }
    let unused_days = Signal::stored(UNUSED_DAYS_DEFAULT);
    // The table comes and goes with the rows; between the two sets it stays, so its rows
    // are redrawn in place.
    let on = Memo::new(move |_| phase.get() != 0);
    move || {
        on.get().then(|| {
            view! {
                <div class="warm-up" aria-hidden="true" inert>
                    <table class="keys"><tbody>
                        {(0..WARM_UP_ROWS).map(|place| view! {
                            <KeyRow place=place sees_others=true unused_days=unused_days
                                key=Signal::derive(move || match phase.get() {
                                    0 => None,
                                    set => Some(warm_up_key(place, set == 2)),
                                }) />
                        }).collect_view()}
                    </tbody></table>
                </div>
            }
        })
    }
}

/// A made-up key for [`KeyRowsWarmUp`]; the `other` set differs in every field a row
/// shows, and in which optional parts it has.
fn warm_up_key(place: usize, other: bool) -> KeySummary {
    let now = js_sys::Date::now() as i64;
    let (status, extras) = match (place % 3, other) {
        (0, false) | (1, true) => (KeyStatus::Active, true),
        (1, false) | (2, true) => (KeyStatus::Paused, false),
        _ => (KeyStatus::Revoked, false),
    };
    let list = |v: &str| {
        if extras {
            vec![v.to_owned()]
        } else {
            Vec::new()
        }
    };
    KeySummary {
        id: format!("warm-up-{place}-{other}"),
        name: format!("Warm-up {place} {other}"),
        start: if other { "wxyz" } else { "abcd" }.to_owned(),
        created_at: now - DAY_MS * (place as i64 + 1),
        created_by: MemberSummary {
            id: "warm-up".to_owned(),
            name: "Warm-up".to_owned(),
            role: Role::Owner,
        },
        last_used_at: other.then_some(now),
        revoked_at: (status == KeyStatus::Revoked).then_some(now),
        expires_at: extras.then_some(now + 3 * DAY_MS),
        replaced_by: None,
        paused_at: (status == KeyStatus::Paused).then_some(now),
        allowed_sources: list("192.0.2.0/24"),
        rate_limit: extras.then(|| "10/s burst 20".to_owned()),
        scopes: list("read-only"),
        status,
    }
}

/// A key's row height in px until the stylesheet's `--row-h` is read. Rows are all one
/// height (`--row-h`, which depends on the window's width), so that the list can put in the
/// page only the rows in view: with 10,000 keys it renders a few dozen (issue 12).
const ROW_PX: f64 = 64.0;
/// Rows rendered beyond each edge of the window, so that moving focus (Tab) to the next row
/// finds it rendered, and scrolling it into view brings the rows after it. Each is a row
/// more to build when a keystroke changes the keys shown: 4 rather than 8 took the worst
/// keystroke from 33 to 29–31 ms (`tests/list_bench.rs`), and a fast scroll (300 px a
/// frame) still finds its rows drawn.
const OVERSCAN: usize = 4;

/// Where the list is in the window, for [`ListWindow::range`].
#[derive(Debug, Clone, Copy)]
struct ListWindow {
    body: NodeRef<leptos::html::Tbody>,
    /// How far the list's first row is above the window's top (negative when below it), the
    /// window's height, and a row's height (`--row-h`), in px.
    view: RwSignal<(f64, f64, f64)>,
}

impl ListWindow {
    /// Follows the window's scrolling and size while the page is open.
    fn new() -> ListWindow {
        let list = ListWindow {
            body: NodeRef::new(),
            view: RwSignal::new((0.0, 1080.0, ROW_PX)),
        };
        let scroll = window_event_listener(leptos::ev::scroll, move |_| list.measure());
        let resize = window_event_listener(leptos::ev::resize, move |_| list.measure());
        on_cleanup(move || {
            scroll.remove();
            resize.remove();
        });
        Effect::new(move |_| {
            if list.body.get().is_some() {
                list.measure();
            }
        });
        list
    }

    fn measure(self) {
        let Some(body) = self.body.get_untracked() else {
            return;
        };
        let top = body.get_bounding_client_rect().top();
        let height = window()
            .inner_height()
            .ok()
            .and_then(|h| h.as_f64())
            .unwrap_or(1080.0);
        let row = window()
            .get_computed_style(&body)
            .ok()
            .flatten()
            .and_then(|style| style.get_property_value("--row-h").ok())
            .and_then(|v| v.trim().trim_end_matches("px").parse::<f64>().ok())
            .filter(|px| *px >= 1.0)
            .unwrap_or(ROW_PX);
        let now = (-top, height, row);
        if self.view.get_untracked() != now {
            self.view.set(now);
        }
    }

    /// The rows `[first, last)` of `n` to render: those in the window and [`OVERSCAN`] more
    /// on each side.
    fn range(self, n: usize) -> (usize, usize) {
        let (above, height, row) = self.view.get();
        let top_row = (above.max(0.0) / row) as usize;
        let in_view = (height.max(0.0) / row).ceil() as usize + 1;
        let first = top_row.saturating_sub(OVERSCAN).min(n);
        let last = top_row.saturating_add(in_view + OVERSCAN).min(n);
        (first, last.max(first))
    }

    /// The height of `rows` rows, for a spacer.
    fn spacer(self, rows: usize) -> String {
        format!("{}px", rows as f64 * self.view.get().2)
    }
}
