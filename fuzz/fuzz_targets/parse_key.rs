//! The key parser on arbitrary input: never panics; accepts only `ksk_` + 49 letters and digits
//! with a matching checksum; never echoes the input in its error or Debug output.
#![no_main]

use keysmith_core::ApiKeySecret;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match ApiKeySecret::parse(text) {
        Ok(key) => {
            // Surrounding whitespace is ignored; the key itself is kept exactly.
            let text = text.trim();
            assert_eq!(key.expose(), text);
            assert_eq!(text.len(), 53);
            assert!(text.starts_with("ksk_"));
            assert!(text[4..].bytes().all(|b| b.is_ascii_alphanumeric()));
            assert!(!format!("{key:?}{key}").contains(&text[4..]));
        }
        Err(e) => {
            if text.len() > 12 {
                assert!(!e.to_string().contains(&text[4..]));
            }
        }
    }
});
