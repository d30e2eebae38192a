//! Reading a forward-auth request's headers: the presented key and the original request.
//!
//! A pure function of the header map, so it is fuzzed on its own (`fuzz/`).

use axum::http::{header, HeaderMap, HeaderValue};
use base64::Engine;
use zeroize::Zeroizing;

/// The longest credential header value read, in bytes (a key is 53 characters; Basic adds
/// the user name and base64).
pub const MAX_CREDENTIAL_LEN: usize = 1024;
/// The longest method name read, in bytes.
pub const MAX_METHOD_LEN: usize = 32;

/// Header names, lowercase as the `http` crate keeps them.
pub const X_API_KEY: &str = "x-api-key";
pub const X_ORIGINAL_METHOD: &str = "x-original-method";
pub const X_ORIGINAL_URI: &str = "x-original-uri";
pub const X_FORWARDED_METHOD: &str = "x-forwarded-method";
pub const X_FORWARDED_URI: &str = "x-forwarded-uri";

/// Headers with which clients ask frameworks to run another method than the request's
/// (ASP.NET, Express's method-override, Spring's HiddenHttpMethodFilter variants, Google
/// APIs): an allowed `GET` carrying `X-HTTP-Method-Override: DELETE` would run a DELETE the
/// policy never allowed. Their presence is refused outright (400).
pub const METHOD_OVERRIDE_HEADERS: [&str; 3] = [
    "x-http-method-override",
    "x-http-method",
    "x-method-override",
];

/// A presented key: a slice of its header, or decoded from HTTP Basic (then zeroized on
/// drop). Debug redacts it.
#[derive(PartialEq, Eq)]
pub enum PresentedKey<'h> {
    Header(&'h str),
    Decoded(Zeroizing<String>),
}

impl PresentedKey<'_> {
    pub fn as_str(&self) -> &str {
        match self {
            PresentedKey::Header(k) => k,
            PresentedKey::Decoded(k) => k.as_str(),
        }
    }
}

impl std::fmt::Debug for PresentedKey<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

/// What a forward-auth request carries, borrowed from its headers.
#[derive(PartialEq, Eq)]
pub struct Extracted<'h> {
    /// The presented key, if any.
    pub key: Option<PresentedKey<'h>>,
    /// The original request's method (`GET`).
    pub method: &'h str,
    /// The original request's URI (`/v1/reports?x=1`).
    pub uri: &'h str,
}

impl std::fmt::Debug for Extracted<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Extracted")
            .field("key", &self.key.as_ref().map(|_| "<redacted>"))
            .field("method", &self.method)
            .field("uri", &self.uri)
            .finish()
    }
}

/// Why a request is refused before its key is looked at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExtractError {
    /// The request carries an `Origin` header: it comes from a browser page, and keys are
    /// not for client-side use (the article: no CORS). 403.
    CrossOrigin,
    /// A header is repeated, too long, not visible ASCII, or unreadable; or the key is sent
    /// in two different places. 400.
    BadHeader(&'static str),
    /// Neither `X-Original-Method`/`X-Original-URI` (nginx) nor `X-Forwarded-Method`/
    /// `X-Forwarded-Uri` (Traefik) says what request to decide on. 400.
    NoOriginalRequest,
    /// A method-override header ([`METHOD_OVERRIDE_HEADERS`]) asks the upstream to run
    /// another method than the one the policy is asked about. 400.
    MethodOverride,
}

impl ExtractError {
    /// The HTTP status to answer with.
    pub fn http_status(self) -> u16 {
        match self {
            ExtractError::CrossOrigin => 403,
            ExtractError::BadHeader(_)
            | ExtractError::NoOriginalRequest
            | ExtractError::MethodOverride => 400,
        }
    }
}

impl std::fmt::Display for ExtractError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ExtractError::CrossOrigin => {
                f.write_str("requests from browser pages (with an Origin header) are refused")
            }
            ExtractError::BadHeader(what) => write!(f, "bad header: {what}"),
            ExtractError::NoOriginalRequest => f.write_str(
                "the original request is missing: send X-Original-Method and X-Original-URI \
                 (nginx) or X-Forwarded-Method and X-Forwarded-Uri (Traefik)",
            ),
            ExtractError::MethodOverride => f.write_str(
                "method-override headers (X-HTTP-Method-Override, X-HTTP-Method, \
                 X-Method-Override) are refused: the policy decides on the request's own method",
            ),
        }
    }
}

impl std::error::Error for ExtractError {}

/// Reads the key and the original request from a forward-auth request's headers.
///
/// The key may come from `Authorization: Bearer KEY` (RFC 6750 §2.1), `Authorization: Basic`
/// with the key as password and any user name (RFC 7617; the article's `anystring:KEY`), or
/// `X-Api-Key: KEY`. Sent in more than one of these, it must be the same key.
///
/// # Errors
/// [`ExtractError`]; `Origin` is checked first.
pub fn extract<'a>(headers: &'a HeaderMap) -> Result<Extracted<'a>, ExtractError> {
    let seen = Seen::read(headers);
    if seen.origin {
        return Err(ExtractError::CrossOrigin);
    }
    if seen.method_override {
        return Err(ExtractError::MethodOverride);
    }
    let mut key: Option<PresentedKey<'a>> = None;
    let mut offer = |k: PresentedKey<'a>| -> Result<(), ExtractError> {
        match &key {
            Some(existing) if existing.as_str() != k.as_str() => Err(ExtractError::BadHeader(
                "two different API keys in one request",
            )),
            _ => {
                key = Some(k);
                Ok(())
            }
        }
    };
    if let Some(value) = seen.authorization.single(MAX_CREDENTIAL_LEN)? {
        if let Some(k) = from_authorization(value)? {
            offer(k)?;
        }
    }
    if let Some(value) = seen.api_key.single(MAX_CREDENTIAL_LEN)? {
        offer(PresentedKey::Header(value.trim()))?;
    }
    let (method, uri) = original_request(&seen)?;
    if method.is_empty() || !method.bytes().all(|b| b.is_ascii_alphabetic() || b == b'-') {
        return Err(ExtractError::BadHeader(
            "the original method is not an HTTP method",
        ));
    }
    Ok(Extracted { key, method, uri })
}

/// The headers [`extract`] reads, found in one pass over the map: a look-up per name
/// would hash (and, for a `&str` name, parse) each of ten names on every request.
#[derive(Default)]
#[cfg_attr(test, derive(Debug, PartialEq))]
struct Seen<'h> {
    origin: bool,
    method_override: bool,
    authorization: Slot<'h>,
    api_key: Slot<'h>,
    original_method: Slot<'h>,
    original_uri: Slot<'h>,
    forwarded_method: Slot<'h>,
    forwarded_uri: Slot<'h>,
}

impl<'h> Seen<'h> {
    fn read(headers: &'h HeaderMap) -> Seen<'h> {
        let mut seen = Seen::default();
        for (name, value) in headers {
            if *name == header::AUTHORIZATION {
                seen.authorization.see(value);
            } else if *name == header::ORIGIN {
                seen.origin = true;
            } else {
                match name.as_str() {
                    X_API_KEY => seen.api_key.see(value),
                    X_ORIGINAL_METHOD => seen.original_method.see(value),
                    X_ORIGINAL_URI => seen.original_uri.see(value),
                    X_FORWARDED_METHOD => seen.forwarded_method.see(value),
                    X_FORWARDED_URI => seen.forwarded_uri.see(value),
                    other if METHOD_OVERRIDE_HEADERS.contains(&other) => {
                        seen.method_override = true;
                    }
                    _ => {}
                }
            }
        }
        seen
    }
}

/// How often a header that must appear at most once was seen, and its first value.
#[derive(Default, Clone, Copy)]
#[cfg_attr(test, derive(Debug, PartialEq))]
enum Slot<'h> {
    #[default]
    Absent,
    Once(&'h HeaderValue),
    Repeated,
}

impl<'h> Slot<'h> {
    fn see(&mut self, value: &'h HeaderValue) {
        *self = match self {
            Slot::Absent => Slot::Once(value),
            Slot::Once(_) | Slot::Repeated => Slot::Repeated,
        };
    }

    /// The one value, as visible ASCII of at most `limit` bytes.
    fn single(self, limit: usize) -> Result<Option<&'h str>, ExtractError> {
        match self {
            Slot::Absent => Ok(None),
            Slot::Once(value) => visible(value, limit).map(Some),
            Slot::Repeated => Err(ExtractError::BadHeader(
                "a header that must appear once is repeated",
            )),
        }
    }
}

fn original_request<'h>(seen: &Seen<'h>) -> Result<(&'h str, &'h str), ExtractError> {
    let limit = keysmith_core::policy::MAX_URI_LEN;
    let nginx = (
        seen.original_method.single(MAX_METHOD_LEN)?,
        seen.original_uri.single(limit)?,
    );
    let traefik = (
        seen.forwarded_method.single(MAX_METHOD_LEN)?,
        seen.forwarded_uri.single(limit)?,
    );
    match (nginx, traefik) {
        ((Some(m), Some(u)), (None, None)) | ((None, None), (Some(m), Some(u))) => Ok((m, u)),
        ((Some(m), Some(u)), (Some(m2), Some(u2))) if m == m2 && u == u2 => Ok((m, u)),
        ((None, None), (None, None)) => Err(ExtractError::NoOriginalRequest),
        _ => Err(ExtractError::BadHeader(
            "the original method and URI must come as one pair (X-Original-* or X-Forwarded-*)",
        )),
    }
}

fn visible(value: &HeaderValue, limit: usize) -> Result<&str, ExtractError> {
    if value.len() > limit {
        return Err(ExtractError::BadHeader("a header value is too long"));
    }
    let text = value
        .to_str()
        .map_err(|_| ExtractError::BadHeader("a header value is not visible ASCII"))?;
    if text.bytes().any(|b| b.is_ascii_control()) {
        return Err(ExtractError::BadHeader(
            "a header value holds a control character",
        ));
    }
    Ok(text)
}

/// The key in an `Authorization` value, or `None` for a scheme that carries none.
fn from_authorization(value: &str) -> Result<Option<PresentedKey<'_>>, ExtractError> {
    let value = value.trim();
    let (scheme, rest) = value.split_once(' ').unwrap_or((value, ""));
    let rest = rest.trim();
    if scheme.eq_ignore_ascii_case("bearer") {
        return Ok(Some(PresentedKey::Header(rest)));
    }
    if scheme.eq_ignore_ascii_case("basic") {
        let decoded = Zeroizing::new(
            base64::engine::general_purpose::STANDARD
                .decode(rest)
                .map_err(|_| ExtractError::BadHeader("Basic credentials are not base64"))?,
        );
        let text = std::str::from_utf8(&decoded)
            .map_err(|_| ExtractError::BadHeader("Basic credentials are not UTF-8"))?;
        let (_user, password) = text.split_once(':').ok_or(ExtractError::BadHeader(
            "Basic credentials lack the ':' separator",
        ))?;
        return Ok(Some(PresentedKey::Decoded(Zeroizing::new(
            password.to_owned(),
        ))));
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    const ORIG: [(&str, &str); 2] = [("x-original-method", "GET"), ("x-original-uri", "/a")];

    #[test]
    fn each_key_form_reads_the_same_key() {
        let basic = base64::engine::general_purpose::STANDARD.encode("anystring:ksk_abc");
        for form in [
            ("authorization", "Bearer ksk_abc".to_owned()),
            ("authorization", "bearer   ksk_abc ".to_owned()),
            ("authorization", format!("Basic {basic}")),
            ("x-api-key", "ksk_abc".to_owned()),
        ] {
            let mut pairs = ORIG.to_vec();
            pairs.push((form.0, &form.1));
            let h = headers(&pairs);
            let e = extract(&h).unwrap();
            assert_eq!(
                e.key.as_ref().map(PresentedKey::as_str),
                Some("ksk_abc"),
                "{form:?}"
            );
            assert_eq!((e.method, e.uri), ("GET", "/a"));
        }
    }

    #[test]
    fn refusals() {
        let with = |extra: &[(&'static str, &str)]| {
            let mut pairs = ORIG.to_vec();
            pairs.extend_from_slice(extra);
            let h = headers(&pairs);
            extract(&h).map(|e| e.key.map(|k| k.as_str().to_owned()))
        };
        assert_eq!(
            with(&[("origin", "https://evil.example")]).unwrap_err(),
            ExtractError::CrossOrigin
        );
        assert!(matches!(
            with(&[("x-api-key", "ksk_a"), ("authorization", "Bearer ksk_b")]),
            Err(ExtractError::BadHeader(_))
        ));
        assert!(matches!(
            with(&[("x-api-key", "ksk_a"), ("x-api-key", "ksk_a")]),
            Err(ExtractError::BadHeader(_))
        ));
        assert!(matches!(
            with(&[("authorization", "Basic !!!")]),
            Err(ExtractError::BadHeader(_))
        ));
        let long = "k".repeat(MAX_CREDENTIAL_LEN + 1);
        assert!(matches!(
            with(&[("x-api-key", &long)]),
            Err(ExtractError::BadHeader(_))
        ));
        assert_eq!(
            extract(&headers(&[("x-api-key", "ksk_a")])).unwrap_err(),
            ExtractError::NoOriginalRequest
        );
        assert!(matches!(
            extract(&headers(&[("x-original-method", "GET")])),
            Err(ExtractError::BadHeader(_))
        ));
        assert!(matches!(
            extract(&headers(&[
                ("x-original-method", "G T"),
                ("x-original-uri", "/")
            ])),
            Err(ExtractError::BadHeader(_))
        ));
        // Every method-override header on an otherwise good request (HTTP lowercases names).
        for name in [
            "x-http-method-override",
            "x-http-method",
            "x-method-override",
        ] {
            let h = headers(&[
                ("x-original-method", "GET"),
                ("x-original-uri", "/a"),
                ("x-api-key", "ksk_a"),
                (name, "DELETE"),
            ]);
            assert_eq!(
                extract(&h).unwrap_err(),
                ExtractError::MethodOverride,
                "{name}"
            );
        }
        // Another scheme carries no key: the request is then keyless.
        assert_eq!(with(&[("authorization", "Digest x")]).unwrap(), None);
        // Traefik's pair works alone.
        let h = headers(&[("x-forwarded-method", "POST"), ("x-forwarded-uri", "/b?c")]);
        let t = extract(&h).unwrap();
        assert_eq!((t.method, t.uri), ("POST", "/b?c"));
    }

    /// What `extract` found with a look-up per name before it read the map in one pass:
    /// the reference the one pass must agree with (everything after it is shared).
    fn seen_by_lookup(headers: &HeaderMap) -> Seen<'_> {
        let slot = |name: &str| {
            let mut values = headers.get_all(name).iter();
            match (values.next(), values.next()) {
                (None, _) => Slot::Absent,
                (Some(v), None) => Slot::Once(v),
                (Some(_), Some(_)) => Slot::Repeated,
            }
        };
        Seen {
            origin: headers.contains_key("origin"),
            method_override: METHOD_OVERRIDE_HEADERS
                .iter()
                .any(|n| headers.contains_key(*n)),
            authorization: slot("authorization"),
            api_key: slot(X_API_KEY),
            original_method: slot(X_ORIGINAL_METHOD),
            original_uri: slot(X_ORIGINAL_URI),
            forwarded_method: slot(X_FORWARDED_METHOD),
            forwarded_uri: slot(X_FORWARDED_URI),
        }
    }

    proptest::proptest! {
        /// Any mix of the headers `extract` reads (repeated, missing, in any order, with
        /// good and bad values) and others: the one pass answers as the look-ups did.
        #[test]
        fn one_pass_agrees_with_lookups(
            pairs in proptest::collection::vec((0usize..14, 0usize..12), 0..10)
        ) {
            let names = [
                "authorization", "x-api-key", "x-original-method", "x-original-uri",
                "x-forwarded-method", "x-forwarded-uri", "origin", "x-http-method-override",
                "x-http-method", "x-method-override", "x-forwarded-for", "accept", "host",
                "x-original-url",
            ];
            let basic = base64::engine::general_purpose::STANDARD.encode("u:ksk_b");
            let long = "a".repeat(MAX_CREDENTIAL_LEN + 1);
            let values = [
                "GET".to_owned(), "/v1/reports".to_owned(), "Bearer ksk_a".to_owned(),
                format!("Basic {basic}"), "Basic !!".to_owned(), "ksk_a".to_owned(),
                " ksk_b ".to_owned(), "G T".to_owned(), String::new(), long,
                "DELETE".to_owned(), "Digest x".to_owned(),
            ];
            let mut h = HeaderMap::new();
            for (n, v) in pairs {
                h.append(
                    axum::http::HeaderName::from_static(names[n]),
                    HeaderValue::from_str(&values[v]).unwrap(),
                );
            }
            proptest::prop_assert_eq!(Seen::read(&h), seen_by_lookup(&h));
        }
    }

    #[test]
    fn debug_redacts_the_key() {
        let mut pairs = ORIG.to_vec();
        pairs.push(("x-api-key", "ksk_secretvalue"));
        let h = headers(&pairs);
        let e = extract(&h).unwrap();
        assert!(!format!("{e:?}").contains("secretvalue"));
    }
}
