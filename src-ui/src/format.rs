//! Dates for people: the local time zone, in the webview's locale conventions.

use wasm_bindgen::JsValue;

thread_local! {
    /// One formatter for every date on screen: building an `Intl.DateTimeFormat` is far
    /// dearer than using one, and the key list shows three dates per row.
    static FORMAT: js_sys::Function = {
        let options = js_sys::Object::new();
        let _ = js_sys::Reflect::set(&options, &"dateStyle".into(), &"medium".into());
        let _ = js_sys::Reflect::set(&options, &"timeStyle".into(), &"short".into());
        let locales = js_sys::Array::of1(&"en-GB".into());
        js_sys::Intl::DateTimeFormat::new(&locales, &options).format()
    };
}

/// "29 Nov 2026, 09:45", or "Never" for `None`. `ms` is Unix epoch milliseconds.
pub fn when(ms: Option<i64>) -> String {
    let Some(ms) = ms else {
        return "Never".to_owned();
    };
    let date = js_sys::Date::new(&JsValue::from_f64(ms as f64));
    FORMAT.with(|format| {
        format
            .call1(&JsValue::NULL, &date)
            .ok()
            .and_then(|s| s.as_string())
            .unwrap_or_default()
    })
}
