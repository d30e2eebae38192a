//! Light or dark: the system's preference (`prefers-color-scheme`, which the stylesheet's
//! `light-dark()` colours follow), unless the member picked one with the header's Theme
//! switch. The choice is a display preference, kept in the webview's `localStorage`.

use leptos::prelude::*;

const STORAGE_KEY: &str = "keysmith.theme";

/// The theme the member picked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Theme {
    System,
    Light,
    Dark,
}

impl Theme {
    const ALL: [Theme; 3] = [Theme::System, Theme::Light, Theme::Dark];

    /// The value of `data-theme` on `<html>` and in storage; `system` sets none.
    fn value(self) -> &'static str {
        match self {
            Theme::System => "system",
            Theme::Light => "light",
            Theme::Dark => "dark",
        }
    }

    fn label(self) -> &'static str {
        match self {
            Theme::System => "System theme",
            Theme::Light => "Light",
            Theme::Dark => "Dark",
        }
    }

    fn parse(value: &str) -> Theme {
        Theme::ALL
            .into_iter()
            .find(|t| t.value() == value)
            .unwrap_or(Theme::System)
    }

    fn storage() -> Option<web_sys::Storage> {
        window().local_storage().ok().flatten()
    }

    /// The stored choice (System when none, or storage is unavailable).
    pub fn saved() -> Theme {
        Theme::storage()
            .and_then(|s| s.get_item(STORAGE_KEY).ok().flatten())
            .map_or(Theme::System, |v| Theme::parse(&v))
    }

    /// Shows this theme (sets or removes `data-theme` on `<html>`).
    pub fn apply(self) {
        if let Some(root) = document().document_element() {
            let _ = match self {
                Theme::System => root.remove_attribute("data-theme"),
                other => root.set_attribute("data-theme", other.value()),
            };
        }
    }

    /// Shows this theme and remembers it.
    fn choose(self) {
        self.apply();
        if let Some(s) = Theme::storage() {
            let _ = s.set_item(STORAGE_KEY, self.value());
        }
    }
}

/// The header's theme switch.
#[component]
pub fn ThemeSwitch() -> impl IntoView {
    let current = RwSignal::new(Theme::saved());
    view! {
        <select id="theme-choice" class="theme-choice" aria-label="Theme" title="Theme"
            on:change=move |ev| {
                let theme = Theme::parse(&event_target_value(&ev));
                theme.choose();
                current.set(theme);
            }>
            {Theme::ALL.into_iter().map(|t| view! {
                <option value=t.value() selected=move || current.get() == t>{t.label()}</option>
            }).collect_view()}
        </select>
    }
}
