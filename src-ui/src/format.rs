//! Dates for people: the local time zone, in the webview's locale conventions.

use wasm_bindgen::JsValue;

/// "29 Nov 2026, 09:45", or "Never" for `None`. `ms` is Unix epoch milliseconds.
pub fn when(ms: Option<i64>) -> String {
    let Some(ms) = ms else {
        return "Never".to_owned();
    };
    let date = js_sys::Date::new(&JsValue::from_f64(ms as f64));
    let options = js_sys::Object::new();
    let _ = js_sys::Reflect::set(&options, &"dateStyle".into(), &"medium".into());
    let _ = js_sys::Reflect::set(&options, &"timeStyle".into(), &"short".into());
    date.to_locale_string("en-GB", &options).into()
}
