//! The key parser on arbitrary input: never panics; accepts only `ksk_` + 49 letters and digits
//! with a matching checksum; a refusal names the right defect (its type holds no text of the
//! input, so it cannot echo it); an accepted key's Debug and Display are redacted.
#![no_main]

use keysmith_core::key::KeyFormatError;
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
            let text = text.trim();
            match e {
                KeyFormatError::WrongPrefix => assert!(!text.starts_with("ksk_")),
                KeyFormatError::WrongLength { found } => {
                    assert_eq!(found, text.chars().count());
                    assert!(text.len() != 53 || found != 53);
                }
                KeyFormatError::BadCharacter { position } => {
                    assert!((5..=53).contains(&position));
                    assert!(!text.as_bytes()[position - 1].is_ascii_alphanumeric());
                }
                KeyFormatError::ChecksumMismatch => {
                    assert!(text[4..].bytes().all(|b| b.is_ascii_alphanumeric()));
                }
            }
        }
    }
});
