//! A key's usage: the last 30 UTC days as a bar chart drawn here in SVG (accepted uses below,
//! refusals stacked on top), with labelled axes, a text summary that screen readers read as
//! the chart's description, and the days with use as a table.

use keysmith_types::{KeySummary, KeyUsage, KeyUsageRequest, UsageCounts, USAGE_DAYS_DEFAULT};
use leptos::prelude::*;
use leptos::task::spawn_local;

use crate::dialogs::Modal;
use crate::sign_in::focus_on_mount;
use crate::{format, ipc};

/// The chart's drawing box (SVG user units); the SVG scales to the dialog's width.
const WIDTH: f64 = 640.0;
const HEIGHT: f64 = 220.0;
/// Room for the y-axis labels on the left and the dates below.
const LEFT: f64 = 44.0;
const RIGHT: f64 = 8.0;
const TOP: f64 = 10.0;
const BOTTOM: f64 = 28.0;

#[component]
pub fn UsageDialog(key: KeySummary, #[prop(into)] on_close: Callback<()>) -> impl IntoView {
    let usage = RwSignal::new(None::<KeyUsage>);
    let error = RwSignal::new(None::<String>);
    let close = NodeRef::<leptos::html::Button>::new();
    focus_on_mount(close);
    let req = KeyUsageRequest {
        id: key.id.clone(),
        days: USAGE_DAYS_DEFAULT,
    };
    spawn_local(async move {
        match ipc::key_usage(&req).await {
            Ok(u) => usage.set(Some(u)),
            Err(e) => error.set(Some(e.message)),
        }
    });
    view! {
        <Modal id="usage-dialog" title_id="usage-title" on_escape=on_close>
            <h2 id="usage-title">{format!("Usage of “{}”", key.name)}</h2>
            <p class="muted">
                "Requests the verifiers checked with this key ("<code>{format!("{}…", key.start)}</code>
                "), per day in UTC: accepted, and refused with the reason. Verifiers write their counts every few seconds."
            </p>
            <Show when=move || error.get().is_some()>
                <p class="error" role="alert" id="usage-error">{move || error.get()}</p>
            </Show>
            <Show when=move || usage.get().is_none() && error.get().is_none()>
                <p class="muted" role="status">"Loading usage…"</p>
            </Show>
            {move || usage.get().map(|u| view! { <UsageChart usage=u /> })}
            <div class="buttons">
                <button type="button" class="primary" id="usage-close" node_ref=close
                    on:click=move |_| on_close.run(())>"Close"</button>
            </div>
        </Modal>
    }
}

#[component]
fn UsageChart(usage: KeyUsage) -> impl IntoView {
    let summary = summary(&usage);
    let days = usage.days.len().max(1);
    let peak = usage
        .days
        .iter()
        .map(|d| d.counts.allowed + d.counts.refused())
        .max()
        .unwrap_or(0);
    let top = nice_ceiling(peak);
    let plot_w = WIDTH - LEFT - RIGHT;
    let plot_h = HEIGHT - TOP - BOTTOM;
    let slot = plot_w / days as f64;
    let bar_w = (slot * 0.7).max(1.0);
    let y_of = |n: u64| TOP + plot_h - plot_h * (n as f64) / (top as f64);
    let ticks = [0, top / 2, top];
    let grid = ticks
        .into_iter()
        .map(|t| {
            let y = y_of(t);
            view! {
                <line class="grid" x1=LEFT x2=WIDTH - RIGHT y1=y y2=y />
                <text class="axis-label" x=LEFT - 6.0 y=y + 4.0 text-anchor="end">{t.to_string()}</text>
            }
        })
        .collect_view();
    let bars = usage
        .days
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let c = &d.counts;
            let x = LEFT + slot * i as f64 + (slot - bar_w) / 2.0;
            let accepted_top = y_of(c.allowed);
            let refused_top = y_of(c.allowed + c.refused());
            let base = y_of(0);
            let label = format!("{}: {}", d.date, day_words(c));
            view! {
                <g class="day" data-date=d.date.clone()>
                    <title>{label}</title>
                    <rect class="accepted" x=x y=accepted_top width=bar_w height=base - accepted_top />
                    <rect class="refused" x=x y=refused_top width=bar_w height=accepted_top - refused_top />
                </g>
            }
        })
        .collect_view();
    // Dates under the first, middle and last day.
    let marks = [0, days / 2, days - 1]
        .into_iter()
        .filter_map(|i| usage.days.get(i).map(|d| (i, d.date.clone())))
        .map(|(i, date)| {
            let x = LEFT + slot * i as f64 + slot / 2.0;
            let anchor = match i {
                0 => "start",
                i if i == days - 1 => "end",
                _ => "middle",
            };
            view! { <text class="axis-label" x=x y=HEIGHT - 8.0 text-anchor=anchor>{short_date(&date)}</text> }
        })
        .collect_view();
    let used: Vec<_> = usage
        .days
        .iter()
        .rev()
        .filter(|d| d.counts.allowed + d.counts.refused() > 0)
        .cloned()
        .collect();
    let table = (!used.is_empty()).then(|| {
        view! {
            <details class="usage-days">
                <summary>{match used.len() {
                    1 => "1 day with use".to_owned(),
                    n => format!("{n} days with use"),
                }}</summary>
                <table class="usage-table" id="usage-table">
                    <thead>
                        <tr>
                            <th scope="col">"Date (UTC)"</th>
                            <th scope="col">"Accepted"</th>
                            <th scope="col">"Refused"</th>
                            <th scope="col">"Why refused"</th>
                        </tr>
                    </thead>
                    <tbody>
                        {used.into_iter().map(|d| view! {
                            <tr>
                                <td>{d.date.clone()}</td>
                                <td>{d.counts.allowed.to_string()}</td>
                                <td>{d.counts.refused().to_string()}</td>
                                <td>{d.counts.refusals_in_words().unwrap_or_else(|| "—".into())}</td>
                            </tr>
                        }).collect_view()}
                    </tbody>
                </table>
            </details>
        }
    });
    view! {
        <p id="usage-summary">{summary}</p>
        <figure class="usage-chart">
            <svg id="usage-chart" role="img" aria-labelledby="usage-summary"
                viewBox=format!("0 0 {WIDTH} {HEIGHT}") preserveAspectRatio="xMidYMid meet">
                {grid}
                <line class="axis" x1=LEFT x2=LEFT y1=TOP y2=TOP + plot_h />
                <line class="axis" x1=LEFT x2=WIDTH - RIGHT y1=TOP + plot_h y2=TOP + plot_h />
                {bars}
                {marks}
            </svg>
            <figcaption class="legend">
                <span class="swatch accepted"></span>"Accepted "
                <span class="swatch refused"></span>"Refused "
                <span class="muted">"(requests per day, UTC)"</span>
            </figcaption>
        </figure>
        {table}
    }
}

/// The chart in words: totals, refusal reasons, the busiest day, the last use.
fn summary(u: &KeyUsage) -> String {
    let t = &u.total;
    let span = match u.days.len() {
        1 => "Today (UTC)".to_owned(),
        n => format!("Last {n} days (UTC)"),
    };
    let totals = if t.allowed + t.refused() == 0 {
        format!("{span}: no requests.")
    } else {
        let why = t
            .refusals_in_words()
            .map(|r| format!(" ({r})"))
            .unwrap_or_default();
        let busiest = u
            .days
            .iter()
            .max_by_key(|d| (d.counts.allowed + d.counts.refused(), d.date.clone()))
            .map(|d| {
                format!(
                    " Busiest day: {} with {} requests.",
                    d.date,
                    d.counts.allowed + d.counts.refused()
                )
            })
            .unwrap_or_default();
        format!(
            "{span}: {} accepted, {} refused{why}.{busiest}",
            t.allowed,
            t.refused()
        )
    };
    let last = match (u.last_used_at, u.last_used_from.as_deref()) {
        (None, _) => " Never used.".to_owned(),
        (Some(at), Some(from)) => format!(" Last used {} from {from}.", format::when(Some(at))),
        (Some(at), None) => format!(" Last used {}.", format::when(Some(at))),
    };
    format!("{totals}{last}")
}

/// One day in words, for the bar's tooltip.
fn day_words(c: &UsageCounts) -> String {
    match c.refusals_in_words() {
        Some(why) => format!("{} accepted, {} refused ({why})", c.allowed, c.refused()),
        None => format!("{} accepted", c.allowed),
    }
}

/// The y axis's top: the peak rounded up to twice 1, 2 or 5 × a power of ten (2, 4, 10, 20,
/// 40, 100, …), so that the ticks 0, top / 2 and top step evenly by a round number.
fn nice_ceiling(peak: u64) -> u64 {
    let mut step = 1u64;
    loop {
        for m in [1, 2, 5] {
            let v = step.saturating_mul(m).saturating_mul(2);
            if v >= peak || v == u64::MAX {
                return v;
            }
        }
        step = step.saturating_mul(10);
    }
}

/// `2026-12-02` → `2 Dec`.
fn short_date(date: &str) -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let mut parts = date.split('-').skip(1);
    let month = parts.next().and_then(|m| m.parse::<usize>().ok());
    let day = parts.next().and_then(|d| d.parse::<u32>().ok());
    match (month, day) {
        (Some(m @ 1..=12), Some(d)) => format!("{d} {}", MONTHS[m - 1]),
        _ => date.to_owned(),
    }
}
