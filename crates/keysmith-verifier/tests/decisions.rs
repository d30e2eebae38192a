//! The forward-auth service's table of decisions, through the real router: each key status ×
//! each role × allowed/refused path × each header form × with and without `Origin`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use base64::Engine;
use keysmith_core::clock::{Clock, SystemClock};
use keysmith_core::policy::Policy;
use keysmith_core::testkit::team_registry;
use keysmith_core::verifier::Verifier;
use keysmith_core::{store, ApiKeySecret};
use keysmith_types::Role;
use tower::ServiceExt;

const POLICY: &str = r#"
[[allow]]
role = "owner"
methods = ["*"]
paths = ["/**"]

[[allow]]
role = "admin"
methods = ["GET", "POST"]
paths = ["/v1/**"]

[[allow]]
role = "manager"
methods = ["GET"]
paths = ["/v1/reports/*"]
"#;

/// Two hours ahead: keys generated with a one-hour lifetime have expired.
struct Later;
impl Clock for Later {
    fn now_ms(&self) -> i64 {
        SystemClock.now_ms() + 2 * 3_600_000
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Status {
    Active,
    Revoked,
    Expired,
    Unknown,
    Malformed,
    Missing,
}

#[derive(Debug, Clone, Copy)]
enum Form {
    Bearer,
    Basic,
    ApiKey,
}

fn request(key: Option<&str>, form: Form, method: &str, uri: &str, origin: bool) -> Request<Body> {
    let mut b = Request::builder()
        .uri("/auth")
        .header("x-original-method", method)
        .header("x-original-uri", uri);
    if let Some(key) = key {
        b = match form {
            Form::Bearer => b.header("authorization", format!("Bearer {key}")),
            Form::Basic => {
                let creds =
                    base64::engine::general_purpose::STANDARD.encode(format!("anystring:{key}"));
                b.header("authorization", format!("Basic {creds}"))
            }
            Form::ApiKey => b.header("x-api-key", key),
        };
    }
    if origin {
        b = b.header("origin", "https://app.example");
    }
    b.body(Body::empty()).unwrap()
}

#[tokio::test]
async fn every_cell_of_the_decision_table() {
    let (dir, registry, team) = team_registry().await;
    let owner = team.get(Role::Owner, false).id.clone();
    // Per role: an active, a revoked and an expired key.
    let mut keys = Vec::new();
    for role in [Role::Owner, Role::Admin, Role::Manager] {
        let me = &team.get(role, false).id;
        let active = registry.generate_key(me, "active").await.unwrap();
        let revoked = registry.generate_key(me, "revoked").await.unwrap();
        registry
            .revoke_key(&owner, &revoked.summary.id, "REVOKE")
            .await
            .unwrap();
        let expired = registry
            .generate_key_expiring(me, "expired", Some(3_600_000))
            .await
            .unwrap();
        keys.push((
            role,
            Status::Active,
            active.secret.expose().to_owned(),
            active.summary.id,
        ));
        keys.push((
            role,
            Status::Revoked,
            revoked.secret.expose().to_owned(),
            revoked.summary.id,
        ));
        keys.push((
            role,
            Status::Expired,
            expired.secret.expose().to_owned(),
            expired.summary.id,
        ));
    }
    let stranger = ApiKeySecret::generate().unwrap().expose().to_owned();
    keys.push((Role::Viewer, Status::Unknown, stranger, String::new()));
    keys.push((
        Role::Viewer,
        Status::Malformed,
        "ksk_not-a-key".into(),
        String::new(),
    ));
    keys.push((Role::Viewer, Status::Missing, String::new(), String::new()));

    let verifier = Verifier::with_clock(
        &dir.path().join(store::DB_FILE),
        registry.verifier_pepper().await.unwrap(),
        Some(Policy::parse(POLICY, "policy.toml").unwrap()),
        Arc::new(Later),
    )
    .unwrap();
    let app = keysmith_verifier::router(Arc::new(verifier));

    // (method, uri, roles allowed there)
    let endpoints: [(&str, &str, &[Role]); 4] = [
        (
            "GET",
            "/v1/reports/2026?x=1",
            &[Role::Owner, Role::Admin, Role::Manager],
        ),
        ("POST", "/v1/keys", &[Role::Owner, Role::Admin]),
        ("DELETE", "/v1/keys/1", &[Role::Owner]),
        ("GET", "/v1/reports/2026/11", &[Role::Owner, Role::Admin]),
    ];
    let mut cells = 0;
    for (role, status, key, key_id) in &keys {
        for (method, uri, allowed_roles) in endpoints {
            for form in [Form::Bearer, Form::Basic, Form::ApiKey] {
                for origin in [false, true] {
                    let presented = (*status != Status::Missing).then_some(key.as_str());
                    let res = app
                        .clone()
                        .oneshot(request(presented, form, method, uri, origin))
                        .await
                        .unwrap();
                    let expected = if origin {
                        StatusCode::FORBIDDEN
                    } else if *status != Status::Active {
                        StatusCode::UNAUTHORIZED
                    } else if allowed_roles.contains(role) {
                        StatusCode::NO_CONTENT
                    } else {
                        StatusCode::FORBIDDEN
                    };
                    let cell =
                        format!("{role:?} {status:?} {method} {uri} {form:?} origin={origin}");
                    assert_eq!(res.status(), expected, "{cell}");
                    let h = res.headers();
                    assert!(
                        !h.keys().any(|k| k.as_str().starts_with("access-control-")),
                        "{cell}: CORS header sent"
                    );
                    if expected == StatusCode::NO_CONTENT {
                        assert_eq!(h["x-keysmith-key-id"], key_id.as_str(), "{cell}");
                        assert_eq!(h["x-keysmith-role"], role.as_str(), "{cell}");
                        assert_eq!(
                            h["x-keysmith-member"],
                            team.get(*role, false).id.as_str(),
                            "{cell}"
                        );
                    } else {
                        assert!(!h.contains_key("x-keysmith-key-id"), "{cell}");
                    }
                    if expected == StatusCode::UNAUTHORIZED {
                        assert!(h.contains_key("www-authenticate"), "{cell}");
                    }
                    let body = axum::body::to_bytes(res.into_body(), 4096).await.unwrap();
                    if !key.is_empty() && key.len() > 10 {
                        assert!(
                            !String::from_utf8_lossy(&body).contains(&key[4..]),
                            "{cell}: the key was echoed"
                        );
                    }
                    cells += 1;
                }
            }
        }
    }
    assert_eq!(cells, keys.len() * 4 * 3 * 2);
}

#[tokio::test]
async fn bad_headers_get_400_and_never_a_panic() {
    let (dir, registry, team) = team_registry().await;
    let me = &team.get(Role::Owner, false).id;
    let key = registry.generate_key(me, "k").await.unwrap();
    let verifier = Verifier::open(
        &dir.path().join(store::DB_FILE),
        registry.verifier_pepper().await.unwrap(),
        Some(Policy::parse(POLICY, "policy.toml").unwrap()),
    )
    .unwrap();
    let app = keysmith_verifier::router(Arc::new(verifier));
    let huge = "a".repeat(100_000);
    let cases: Vec<Vec<(&str, Vec<u8>)>> = vec![
        // No original request.
        vec![("x-api-key", key.secret.expose().into())],
        // Oversized key header and URI.
        vec![
            ("x-api-key", huge.clone().into()),
            ("x-original-method", b"GET".to_vec()),
            ("x-original-uri", b"/".to_vec()),
        ],
        vec![
            ("x-api-key", key.secret.expose().into()),
            ("x-original-method", b"GET".to_vec()),
            ("x-original-uri", format!("/{huge}").into()),
        ],
        // Non-ASCII bytes, dot segments, a method with spaces.
        vec![
            ("x-api-key", vec![0xff, 0xfe]),
            ("x-original-method", b"GET".to_vec()),
            ("x-original-uri", b"/".to_vec()),
        ],
        vec![
            ("x-api-key", key.secret.expose().into()),
            ("x-original-method", b"GET".to_vec()),
            ("x-original-uri", b"/v1/../admin".to_vec()),
        ],
        vec![
            ("x-api-key", key.secret.expose().into()),
            ("x-original-method", b"G E T".to_vec()),
            ("x-original-uri", b"/".to_vec()),
        ],
        // Basic that is not base64.
        vec![
            ("authorization", b"Basic %%%".to_vec()),
            ("x-original-method", b"GET".to_vec()),
            ("x-original-uri", b"/".to_vec()),
        ],
    ];
    for case in cases {
        let mut b = Request::builder().uri("/auth");
        for (name, value) in &case {
            b = b.header(*name, axum::http::HeaderValue::from_bytes(value).unwrap());
        }
        let res = app
            .clone()
            .oneshot(b.body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(
            res.status(),
            StatusCode::BAD_REQUEST,
            "{:?}",
            case.iter().map(|c| c.0).collect::<Vec<_>>()
        );
    }
}

/// Keys limited to networks, through the router: the client address comes from the
/// connection, or from `X-Forwarded-For` only when the connection is a trusted proxy's.
#[tokio::test]
async fn source_networks_follow_the_trusted_proxy_rule() {
    use axum::extract::ConnectInfo;
    use keysmith_core::sources::AllowedSources;
    use keysmith_core::KeyLimits;
    use std::net::SocketAddr;

    let (dir, registry, team) = team_registry().await;
    let me = &team.get(Role::Owner, false).id;
    let limited = registry
        .generate_key_limited(
            me,
            "office",
            &KeyLimits {
                sources: AllowedSources::parse(&["203.0.113.0/24", "2001:db8::/32"]).unwrap(),
                ..KeyLimits::default()
            },
        )
        .await
        .unwrap();
    let open = registry.generate_key(me, "anywhere").await.unwrap();
    let verifier = Arc::new(
        Verifier::open(
            &dir.path().join(store::DB_FILE),
            registry.verifier_pepper().await.unwrap(),
            Some(Policy::parse(POLICY, "policy.toml").unwrap()),
        )
        .unwrap(),
    );
    let trusted = keysmith_verifier::TrustedProxies::parse(&["127.0.0.1", "10.0.0.0/8"]).unwrap();
    let behind = keysmith_verifier::router_behind(Arc::clone(&verifier), trusted);
    let direct = keysmith_verifier::router(Arc::clone(&verifier));

    let send = |app: &axum::Router, key: &str, peer: Option<&str>, xff: Option<&str>| {
        let mut req = Request::builder()
            .uri("/auth")
            .header("x-api-key", key)
            .header("x-original-method", "GET")
            .header("x-original-uri", "/v1/reports/1");
        if let Some(v) = xff {
            req = req.header("x-forwarded-for", v);
        }
        let mut req = req.body(Body::empty()).unwrap();
        if let Some(p) = peer {
            let addr: SocketAddr = p.parse().unwrap();
            req.extensions_mut().insert(ConnectInfo(addr));
        }
        app.clone().oneshot(req)
    };
    let key = limited.secret.expose();
    // (router behind proxies?, peer, X-Forwarded-For, expected)
    let table: &[(bool, Option<&str>, Option<&str>, StatusCode)] = &[
        // Straight from the client.
        (
            false,
            Some("203.0.113.9:5000"),
            None,
            StatusCode::NO_CONTENT,
        ),
        (
            false,
            Some("[2001:db8::5]:5000"),
            None,
            StatusCode::NO_CONTENT,
        ),
        (
            false,
            Some("[::ffff:203.0.113.9]:5000"),
            None,
            StatusCode::NO_CONTENT,
        ),
        (
            false,
            Some("198.51.100.1:5000"),
            None,
            StatusCode::FORBIDDEN,
        ),
        // A header from an untrusted peer is ignored, whatever it claims.
        (
            false,
            Some("198.51.100.1:5000"),
            Some("203.0.113.9"),
            StatusCode::FORBIDDEN,
        ),
        (
            true,
            Some("198.51.100.1:5000"),
            Some("203.0.113.9"),
            StatusCode::FORBIDDEN,
        ),
        (
            false,
            Some("127.0.0.1:5000"),
            Some("203.0.113.9"),
            StatusCode::FORBIDDEN,
        ),
        // From a trusted proxy: the rightmost untrusted entry.
        (
            true,
            Some("127.0.0.1:5000"),
            Some("203.0.113.9"),
            StatusCode::NO_CONTENT,
        ),
        (
            true,
            Some("127.0.0.1:5000"),
            Some("203.0.113.9, 10.0.0.2"),
            StatusCode::NO_CONTENT,
        ),
        (
            true,
            Some("10.1.1.1:5000"),
            Some("2001:db8::1"),
            StatusCode::NO_CONTENT,
        ),
        (
            true,
            Some("127.0.0.1:5000"),
            Some("203.0.113.9, 198.51.100.1"),
            StatusCode::FORBIDDEN,
        ),
        (
            true,
            Some("127.0.0.1:5000"),
            Some("198.51.100.1"),
            StatusCode::FORBIDDEN,
        ),
        // Unknown client: refused.
        (true, Some("127.0.0.1:5000"), None, StatusCode::FORBIDDEN),
        (
            true,
            Some("127.0.0.1:5000"),
            Some("unknown"),
            StatusCode::FORBIDDEN,
        ),
        (true, None, Some("203.0.113.9"), StatusCode::FORBIDDEN),
        (false, None, None, StatusCode::FORBIDDEN),
    ];
    for (is_behind, peer, xff, want) in table {
        let app = if *is_behind { &behind } else { &direct };
        let res = send(app, key, *peer, *xff).await.unwrap();
        assert_eq!(
            res.status(),
            *want,
            "behind={is_behind} peer={peer:?} xff={xff:?}"
        );
        if *want == StatusCode::FORBIDDEN {
            let body = axum::body::to_bytes(res.into_body(), 4096).await.unwrap();
            let body = String::from_utf8_lossy(&body);
            assert!(body.contains("may not be used from"), "{body}");
            assert!(body.contains(&limited.summary.id), "{body}");
        }
        // A key without an allowlist is allowed from anywhere, even from an unknown client.
        let res = send(app, open.secret.expose(), *peer, *xff).await.unwrap();
        assert_eq!(
            res.status(),
            StatusCode::NO_CONTENT,
            "open key, peer={peer:?} xff={xff:?}"
        );
    }
}

/// A rate-limited key through the real router: its burst gets 204, then 429 with
/// `Retry-After` in whole seconds (1 to 60 for a limit of one a minute) and a body naming
/// the key id and the limit, never the key; requests the role may not make stay 403 and take
/// nothing; an unlimited key is never 429.
#[tokio::test]
async fn a_key_over_its_rate_limit_gets_429_with_retry_after() {
    use keysmith_core::rate::RateLimit;
    use keysmith_core::KeyLimits;

    let (dir, registry, team) = team_registry().await;
    let me = &team.get(Role::Manager, false).id;
    let limited = registry
        .generate_key_limited(
            me,
            "metered",
            &KeyLimits {
                rate_limit: RateLimit::parse("1/min burst 2").unwrap(),
                ..KeyLimits::default()
            },
        )
        .await
        .unwrap();
    let open = registry.generate_key(me, "unmetered").await.unwrap();
    let verifier = Arc::new(
        Verifier::open(
            &dir.path().join(store::DB_FILE),
            registry.verifier_pepper().await.unwrap(),
            Some(Policy::parse(POLICY, "policy.toml").unwrap()),
        )
        .unwrap(),
    );
    let app = keysmith_verifier::router(verifier);
    let key = limited.secret.expose();
    let call = |key: &str, method: &str| {
        app.clone().oneshot(request(
            Some(key),
            Form::ApiKey,
            method,
            "/v1/reports/1",
            false,
        ))
    };
    for _ in 0..4 {
        let r = call(key, "DELETE").await.unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
        assert!(r.headers().get("retry-after").is_none());
    }
    for i in 0..2 {
        let r = call(key, "GET").await.unwrap();
        assert_eq!(
            r.status(),
            StatusCode::NO_CONTENT,
            "request {i} of the burst"
        );
        assert!(r.headers().get("retry-after").is_none());
    }
    let r = call(key, "GET").await.unwrap();
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    let wait: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&wait), "Retry-After: {wait}");
    assert_eq!(r.headers()["cache-control"], "no-store");
    assert!(r.headers().get("www-authenticate").is_none());
    let body = axum::body::to_bytes(r.into_body(), 4096).await.unwrap();
    let body = String::from_utf8(body.to_vec()).unwrap();
    assert!(body.contains(&limited.summary.id), "{body}");
    assert!(body.contains("1/min burst 2"), "{body}");
    assert!(!body.contains(key), "the body holds the key");
    for _ in 0..20 {
        let r = call(open.secret.expose(), "GET").await.unwrap();
        assert_eq!(r.status(), StatusCode::NO_CONTENT);
    }
}
