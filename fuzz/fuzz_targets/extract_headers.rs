//! Header extraction and request-path reading on arbitrary header sets: never panics, refuses
//! any request with `Origin`, and only hands on paths the policy can read one way.
//!
//! Input: lines of `name:value`; lines that are not a valid header are skipped.
#![no_main]

use axum::http::{HeaderMap, HeaderName, HeaderValue};
use keysmith_core::policy::{decoded_path, request_path};
use keysmith_verifier::{extract, ExtractError};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut headers = HeaderMap::new();
    for line in data.split(|b| *b == b'\n') {
        let Some(colon) = line.iter().position(|b| *b == b':') else {
            continue;
        };
        let (name, value) = (&line[..colon], &line[colon + 1..]);
        if let (Ok(n), Ok(v)) = (HeaderName::from_bytes(name), HeaderValue::from_bytes(value)) {
            headers.append(n, v);
        }
    }
    let has_origin = headers.contains_key("origin");
    match extract(&headers) {
        Ok(request) => {
            assert!(!has_origin);
            if let Ok(path) = request_path(request.uri) {
                assert!(path.starts_with('/'));
                assert!(!path.contains(['?', '#', ';', '\\']));
                // What an upstream routes on: the same segments, none of them a dot
                // segment, nothing structural decoded into them, nothing left to decode.
                let decoded = decoded_path(path);
                assert_eq!(decoded.matches('/').count(), path.matches('/').count());
                assert!(!decoded.contains(['%', ';', '\\', '?', '#']));
                assert!(!decoded[1..].split('/').any(|s| !s.is_empty() && s.chars().all(|c| c == '.' || c == ' ')));
            }
        }
        Err(e) => {
            assert_eq!(has_origin, e == ExtractError::CrossOrigin);
            assert!([400, 403].contains(&e.http_status()));
        }
    }
});
