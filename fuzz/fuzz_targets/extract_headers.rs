//! Header extraction and request-path reading on arbitrary header sets: never panics, refuses
//! any request with `Origin`, and only hands on paths the policy can read one way; and the
//! client address behind a trusted proxy never comes from nowhere.
//!
//! Input: lines of `name:value`; lines that are not a valid header are skipped.
#![no_main]

use axum::http::{HeaderMap, HeaderName, HeaderValue};
use keysmith_core::policy::{decoded_path, request_path};
use keysmith_verifier::{client_address, extract, ExtractError, TrustedProxies};
use std::net::IpAddr;
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
    // The client address from the same headers: never a panic; an untrusted peer is the
    // client whatever `X-Forwarded-For` says; a trusted one yields an address the header
    // holds, or none.
    let peer = IpAddr::from([127, 0, 0, 1]);
    let none = TrustedProxies::default();
    assert_eq!(client_address(&headers, Some(peer), &none), Some(peer));
    if let Ok(trusted) = TrustedProxies::parse(&["127.0.0.0/8"]) {
        if let Some(addr) = client_address(&headers, Some(peer), &trusted) {
            let text = headers
                .get_all("x-forwarded-for")
                .iter()
                .filter_map(|v| v.to_str().ok())
                .collect::<Vec<_>>()
                .join(",");
            assert!(!text.is_empty(), "an address came from no header: {addr}");
        }
    }
});
