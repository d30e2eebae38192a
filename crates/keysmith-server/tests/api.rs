//! The team server's HTTP API, request by request through the router (real HTTP requests
//! and responses, no socket): the whole role table, sessions (sign-in, sign-out, expiry,
//! forged rows, removal), the first-sign-in passphrase change, throttling, and bad input.
//! On SQLite by default; `scripts/test.sh` runs it again on PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use axum::Router;
use http_body_util::BodyExt;
use keysmith_core::testkit::{self, team_registry, Person, Surface, PASSPHRASE};
use keysmith_core::Registry;
use keysmith_types::{ErrorCode, KeySummary, Role};
use serde_json::{json, Value};
use tower::ServiceExt;

/// One HTTP call: status, headers and JSON body (`Value::Null` when empty).
async fn call(
    app: &Router,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (StatusCode, axum::http::HeaderMap, Value) {
    let mut req = Request::builder().method(method).uri(path);
    if let Some(t) = token {
        req = req.header(header::AUTHORIZATION, format!("Bearer {t}"));
    }
    let req = match body {
        Some(b) => req
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(b.to_string())),
        None => req.body(Body::empty()),
    }
    .unwrap();
    let res = app.clone().oneshot(req).await.unwrap();
    let status = res.status();
    let headers = res.headers().clone();
    let bytes = res.into_body().collect().await.unwrap().to_bytes();
    let value = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| panic!("not JSON: {}", String::from_utf8_lossy(&bytes)))
    };
    (status, headers, value)
}

fn code_of(v: &Value) -> ErrorCode {
    serde_json::from_value(v["code"].clone()).unwrap_or_else(|_| panic!("no code in {v}"))
}

async fn sign_in(app: &Router, name: &str, pass: &str) -> (StatusCode, Value) {
    let (s, _, v) = call(
        app,
        Method::POST,
        "/v1/sessions",
        None,
        Some(json!({"name": name, "passphrase": pass})),
    )
    .await;
    (s, v)
}

async fn token_of(app: &Router, name: &str) -> String {
    let (s, v) = sign_in(app, name, PASSPHRASE).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    v["token"].as_str().unwrap().to_owned()
}

/// The operations over HTTP, acting as whoever signed in last.
struct Http {
    app: Router,
    token: Mutex<String>,
}

impl Http {
    async fn go(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, ErrorCode> {
        let token = self.token.lock().unwrap().clone();
        let (status, _, v) = call(&self.app, method, path, Some(&token), body).await;
        if status.is_success() {
            Ok(v)
        } else {
            let code = code_of(&v);
            assert_eq!(status, keysmith_server::status_of(code), "{v}");
            Err(code)
        }
    }
}

impl Surface for Http {
    async fn act_as(&self, actor: &Person) {
        *self.token.lock().unwrap() = token_of(&self.app, &actor.name).await;
    }
    async fn generate_key(&self, name: &str) -> Result<(), ErrorCode> {
        self.go(Method::POST, "/v1/keys", Some(json!({"name": name})))
            .await
            .map(|_| ())
    }
    async fn list_keys(&self) -> Result<Vec<KeySummary>, ErrorCode> {
        self.go(Method::GET, "/v1/keys", None)
            .await
            .map(|v| serde_json::from_value(v).unwrap())
    }
    async fn revoke_key(&self, key_id: &str) -> Result<(), ErrorCode> {
        let path = format!("/v1/keys/{key_id}/revoke");
        self.go(Method::POST, &path, Some(json!({"confirmation": "REVOKE"})))
            .await
            .map(|_| ())
    }
    async fn pause_key(&self, key_id: &str) -> Result<(), ErrorCode> {
        let path = format!("/v1/keys/{key_id}/pause");
        self.go(Method::POST, &path, None).await.map(|_| ())
    }
    async fn roll_key(&self, key_id: &str) -> Result<(), ErrorCode> {
        let path = format!("/v1/keys/{key_id}/roll");
        self.go(Method::POST, &path, Some(json!({"grace_secs": 3600})))
            .await
            .map(|_| ())
    }
    async fn key_usage(&self, key_id: &str) -> Result<(), ErrorCode> {
        let path = format!("/v1/keys/{key_id}/usage");
        self.go(Method::GET, &path, None).await.map(|_| ())
    }
    async fn add_member(&self, name: &str, role: Role) -> Result<(), ErrorCode> {
        let body = json!({"name": name, "role": role, "initial_passphrase": PASSPHRASE});
        self.go(Method::POST, "/v1/members", Some(body))
            .await
            .map(|_| ())
    }
    async fn change_role(&self, member_id: &str, role: Role) -> Result<(), ErrorCode> {
        let path = format!("/v1/members/{member_id}/role");
        self.go(Method::PUT, &path, Some(json!({"role": role})))
            .await
            .map(|_| ())
    }
    async fn remove_member(&self, member_id: &str) -> Result<(), ErrorCode> {
        let path = format!("/v1/members/{member_id}/remove");
        self.go(Method::POST, &path, Some(json!({"confirmation": "REMOVE"})))
            .await
            .map(|_| ())
    }
    async fn transfer_ownership(&self, member_id: &str) -> Result<(), ErrorCode> {
        let path = format!("/v1/members/{member_id}/ownership");
        self.go(Method::POST, &path, None).await.map(|_| ())
    }
    async fn list_members(&self) -> Result<(), ErrorCode> {
        self.go(Method::GET, "/v1/members", None).await.map(|_| ())
    }
    async fn audit(&self) -> Result<(), ErrorCode> {
        self.go(Method::GET, "/v1/audit", None).await.map(|_| ())
    }
}

fn app(registry: Registry) -> Router {
    keysmith_server::router(Arc::new(registry))
}

#[tokio::test(flavor = "multi_thread")]
async fn every_cell_of_the_role_table_through_the_http_api() {
    let checked = testkit::walk_role_table(|registry| Http {
        app: app(registry),
        token: Mutex::new(String::new()),
    })
    .await;
    assert!(checked > 150, "only {checked} cells");
}

#[tokio::test]
async fn sessions_begin_at_sign_in_and_end_at_sign_out() {
    let (_db, registry, team) = team_registry().await;
    let app = app(registry);
    let manager = team.get(Role::Manager, false);

    let (s, _, info) = call(&app, Method::GET, "/v1/info", None, None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(info["product"], "keysmith");
    assert_eq!(info["api"], keysmith_types::API_VERSION);

    // No session, a malformed one, an unknown one.
    let (s, h, v) = call(&app, Method::GET, "/v1/keys", None, None).await;
    assert_eq!(
        (s, code_of(&v)),
        (StatusCode::UNAUTHORIZED, ErrorCode::NotSignedIn)
    );
    assert!(h.contains_key(header::WWW_AUTHENTICATE));
    let unknown = format!("kss_{}", "0".repeat(64));
    for bad in ["nonsense", "ksk_abc", unknown.as_str()] {
        let (s, _, v) = call(&app, Method::GET, "/v1/keys", Some(bad), None).await;
        assert_eq!(
            (s, code_of(&v)),
            (StatusCode::UNAUTHORIZED, ErrorCode::SessionExpired),
            "{bad}"
        );
    }

    let (s, v) = sign_in(&app, &manager.name, PASSPHRASE).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["member"]["id"], manager.id.as_str());
    assert_eq!(v["must_change_passphrase"], false);
    let token = v["token"].as_str().unwrap().to_owned();
    assert!(token.starts_with("kss_"));
    let (s, _, keys) = call(&app, Method::GET, "/v1/keys", Some(&token), None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(keys.as_array().unwrap().len(), 1, "{keys}");
    let (s, _, me) = call(
        &app,
        Method::GET,
        "/v1/sessions/current",
        Some(&token),
        None,
    )
    .await;
    assert_eq!(
        (s, me["member"]["name"].as_str()),
        (StatusCode::OK, Some(manager.name.as_str()))
    );

    let (s, _, _) = call(
        &app,
        Method::DELETE,
        "/v1/sessions/current",
        Some(&token),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _, v) = call(&app, Method::GET, "/v1/keys", Some(&token), None).await;
    assert_eq!(
        (s, code_of(&v)),
        (StatusCode::UNAUTHORIZED, ErrorCode::SessionExpired)
    );

    // A wrong passphrase: 401, no token.
    let (s, v) = sign_in(&app, &manager.name, "not the passphrase").await;
    assert_eq!(
        (s, code_of(&v)),
        (StatusCode::UNAUTHORIZED, ErrorCode::BadCredentials)
    );
    assert!(v.get("token").is_none());
}

#[tokio::test]
async fn a_removed_members_session_stops_at_once() {
    let (_db, registry, team) = team_registry().await;
    let owner = team.get(Role::Owner, false).clone();
    // A Manager: a member with a keys page and a key of their own.
    let author = team.get(Role::Manager, false).clone();
    let app = app(registry);
    let owner_token = token_of(&app, &owner.name).await;
    let author_token = token_of(&app, &author.name).await;
    let (s, _, _) = call(&app, Method::GET, "/v1/keys", Some(&author_token), None).await;
    assert_eq!(s, StatusCode::OK);
    let path = format!("/v1/members/{}/remove", author.id);
    let (s, _, revoked) = call(
        &app,
        Method::POST,
        &path,
        Some(&owner_token),
        Some(json!({"confirmation": "REMOVE"})),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{revoked}");
    assert_eq!(
        revoked.as_array().unwrap().len(),
        1,
        "the Manager's key is revoked"
    );
    let (s, _, v) = call(&app, Method::GET, "/v1/keys", Some(&author_token), None).await;
    assert_eq!(
        (s, code_of(&v)),
        (StatusCode::UNAUTHORIZED, ErrorCode::NotSignedIn)
    );
}

#[tokio::test]
async fn a_new_member_changes_the_initial_passphrase_before_anything_else() {
    let (_db, registry, team) = team_registry().await;
    let owner = team.get(Role::Owner, false).clone();
    let app = app(registry);
    let owner_token = token_of(&app, &owner.name).await;
    let body =
        json!({"name": "Nadia", "role": "manager", "initial_passphrase": "initial passphrase 1"});
    let (s, _, v) = call(
        &app,
        Method::POST,
        "/v1/members",
        Some(&owner_token),
        Some(body),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");

    let (s, v) = sign_in(&app, "Nadia", "initial passphrase 1").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["must_change_passphrase"], true);
    let first = v["token"].as_str().unwrap().to_owned();
    let (s, _, v) = call(&app, Method::GET, "/v1/keys", Some(&first), None).await;
    assert_eq!(
        (s, code_of(&v)),
        (StatusCode::FORBIDDEN, ErrorCode::PassphraseChangeRequired)
    );
    let (s, _, v) = call(
        &app,
        Method::POST,
        "/v1/me/passphrase",
        Some(&first),
        Some(json!({"current": "initial passphrase 1", "new": "my very own passphrase"})),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["must_change_passphrase"], false);
    let second = v["token"].as_str().unwrap().to_owned();
    // The session opened with the Owner-chosen passphrase is over; the new one works.
    let (s, _, v) = call(&app, Method::GET, "/v1/keys", Some(&first), None).await;
    assert_eq!(
        (s, code_of(&v)),
        (StatusCode::UNAUTHORIZED, ErrorCode::SessionExpired)
    );
    let (s, _, v) = call(
        &app,
        Method::POST,
        "/v1/keys",
        Some(&second),
        Some(json!({"name": "mine"})),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert!(v["secret"].as_str().unwrap().starts_with("ksk_"));
}

#[tokio::test]
async fn a_session_row_written_outside_keysmith_signs_nobody_in() {
    let (_db, registry, team) = team_registry().await;
    let owner = team.get(Role::Owner, false).clone();
    let pool = registry.pool().clone();
    let app = app(registry);
    let token = token_of(&app, &team.get(Role::Viewer, false).name).await;
    // Someone with write access to the database moves the Viewer's session to the Owner.
    pool.execute_raw(&format!("UPDATE sessions SET member_id = '{}'", owner.id))
        .await
        .unwrap();
    let (s, _, v) = call(&app, Method::GET, "/v1/members", Some(&token), None).await;
    assert_eq!(
        (s, code_of(&v)),
        (StatusCode::UNAUTHORIZED, ErrorCode::SessionExpired)
    );
    // And a session that never expires.
    let token = token_of(&app, &owner.name).await;
    pool.execute_raw("UPDATE sessions SET expires_at = 9000000000000")
        .await
        .unwrap();
    let (s, _, v) = call(&app, Method::GET, "/v1/members", Some(&token), None).await;
    assert_eq!(
        (s, code_of(&v)),
        (StatusCode::UNAUTHORIZED, ErrorCode::SessionExpired)
    );
}

#[tokio::test]
async fn bad_requests_get_the_apis_error_and_change_nothing() {
    let (_db, registry, team) = team_registry().await;
    let pool = registry.pool().clone();
    let app = app(registry);
    let token = token_of(&app, &team.get(Role::Owner, false).name).await;
    let before = testkit::fingerprint(&pool).await;
    let huge = "x".repeat(keysmith_server::BODY_LIMIT + 1);
    let cases: Vec<(Method, &str, Option<Value>, ErrorCode)> = vec![
        (
            Method::POST,
            "/v1/keys",
            Some(json!({"name": ""})),
            ErrorCode::InvalidName,
        ),
        (
            Method::POST,
            "/v1/keys",
            Some(json!({"name": "a\u{202e}b"})),
            ErrorCode::InvalidName,
        ),
        (
            Method::POST,
            "/v1/keys",
            Some(json!({"name": "x".repeat(65)})),
            ErrorCode::InvalidName,
        ),
        (
            Method::POST,
            "/v1/keys",
            Some(json!({"name": huge})),
            ErrorCode::MalformedRequest,
        ),
        (
            Method::POST,
            "/v1/keys",
            Some(json!({"nom": "x"})),
            ErrorCode::MalformedRequest,
        ),
        (
            Method::POST,
            "/v1/keys",
            Some(json!("x")),
            ErrorCode::MalformedRequest,
        ),
        (
            Method::POST,
            "/v1/keys",
            Some(json!({"name": 7})),
            ErrorCode::MalformedRequest,
        ),
        (Method::POST, "/v1/keys", None, ErrorCode::MalformedRequest),
        (
            Method::POST,
            "/v1/keys",
            Some(json!({"name": "x", "expires_in_secs": i64::MAX})),
            ErrorCode::InvalidDuration,
        ),
        (
            Method::POST,
            "/v1/keys",
            Some(json!({"name": "x", "allowed_sources": ["10.1.2.3/8"]})),
            ErrorCode::InvalidAddress,
        ),
        (
            Method::POST,
            "/v1/keys",
            Some(json!({"name": "x", "rate_limit": "0/s"})),
            ErrorCode::InvalidRateLimit,
        ),
        (
            Method::POST,
            "/v1/keys",
            Some(json!({"name": "x", "rate_limit": "10/s burst 99999999"})),
            ErrorCode::InvalidRateLimit,
        ),
        (
            Method::POST,
            "/v1/keys",
            Some(json!({"name": "x", "rate_limit": 10})),
            ErrorCode::MalformedRequest,
        ),
        (
            Method::POST,
            "/v1/keys",
            Some(json!({"name": "x", "scopes": ["reports:read"]})),
            ErrorCode::InvalidScope,
        ),
        (
            Method::POST,
            "/v1/keys",
            Some(json!({"name": "x", "scopes": ["Read-Only"]})),
            ErrorCode::InvalidScope,
        ),
        (
            Method::POST,
            "/v1/keys",
            Some(json!({"name": "x", "scopes": "read-only"})),
            ErrorCode::MalformedRequest,
        ),
        (
            Method::POST,
            "/v1/keys/nope/revoke",
            Some(json!({"confirmation": "REVOKE"})),
            ErrorCode::NotFound,
        ),
        (
            Method::POST,
            "/v1/members/nope/remove",
            Some(json!({"confirmation": "REMOVE"})),
            ErrorCode::NotFound,
        ),
        (
            Method::PUT,
            "/v1/members/nope/role",
            Some(json!({"role": "emperor"})),
            ErrorCode::MalformedRequest,
        ),
        (
            Method::GET,
            "/v1/audit?from=yesterday",
            None,
            ErrorCode::MalformedRequest,
        ),
        (Method::GET, "/v1/nothing-here", None, ErrorCode::NotFound),
    ];
    for (method, path, body, want) in cases {
        let shown = format!("{method} {path} {body:.80?}");
        let (s, _, v) = call(&app, method, path, Some(&token), body).await;
        assert!(!s.is_success(), "{shown}: {v}");
        assert_eq!(code_of(&v), want, "{shown}: {v}");
        assert_eq!(s, keysmith_server::status_of(want), "{shown}");
        assert!(!v["message"].as_str().unwrap().is_empty());
    }
    assert_eq!(testkit::fingerprint(&pool).await, before);
}

#[tokio::test]
async fn repeated_failed_sign_ins_are_answered_429_with_retry_after() {
    let (_db, registry, team) = team_registry().await;
    let app = app(registry);
    let name = team.get(Role::Author, false).name.clone();
    let mut throttled = None;
    for _ in 0..8 {
        let (s, h, v) = call(
            &app,
            Method::POST,
            "/v1/sessions",
            None,
            Some(json!({"name": name, "passphrase": "guess"})),
        )
        .await;
        if s == StatusCode::TOO_MANY_REQUESTS {
            assert_eq!(code_of(&v), ErrorCode::TooManyAttempts);
            throttled = h.get(header::RETRY_AFTER).cloned();
            break;
        }
        assert_eq!(s, StatusCode::UNAUTHORIZED);
    }
    let secs: u64 = throttled
        .expect("throttled within 8 attempts")
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(secs >= 1);
}

/// The OpenAPI document is generated from the code, served, and checked in as
/// `docs/openapi.json` (regenerate with `KEYSMITH_WRITE_OPENAPI=1 cargo test -p
/// keysmith-server openapi`); it describes every call the router answers.
#[tokio::test]
async fn the_openapi_document_is_served_checked_in_and_complete() {
    let generated = keysmith_server::openapi_document();
    let checked_in =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/openapi.json");
    if std::env::var_os("KEYSMITH_WRITE_OPENAPI").is_some() {
        std::fs::write(&checked_in, format!("{generated}\n")).unwrap();
    }
    let on_disk = std::fs::read_to_string(&checked_in).unwrap_or_default();
    assert_eq!(
        on_disk.trim_end(),
        generated,
        "docs/openapi.json is not what the code generates: KEYSMITH_WRITE_OPENAPI=1 cargo test -p keysmith-server openapi"
    );
    let (_db, registry, _team) = team_registry().await;
    let app = app(registry);
    let (s, _, served) = call(&app, Method::GET, "/v1/openapi.json", None, None).await;
    assert_eq!(s, StatusCode::OK);
    let doc: Value = serde_json::from_str(&generated).unwrap();
    assert_eq!(served, doc);
    let paths = doc["paths"].as_object().unwrap();
    for (path, methods) in [
        ("/v1/info", &["get"][..]),
        ("/v1/sessions", &["post"]),
        ("/v1/sessions/current", &["get", "delete"]),
        ("/v1/me/passphrase", &["post"]),
        ("/v1/keys", &["get", "post"]),
        ("/v1/scopes", &["get"]),
        ("/v1/keys/{id}/roll", &["post"]),
        ("/v1/keys/{id}/revoke", &["post"]),
        ("/v1/keys/{id}/pause", &["post"]),
        ("/v1/keys/{id}/resume", &["post"]),
        ("/v1/keys/{id}/copied", &["post"]),
        ("/v1/keys/{id}/usage", &["get"]),
        ("/v1/members", &["get", "post"]),
        ("/v1/members/{id}/role", &["put"]),
        ("/v1/members/{id}/removal-preview", &["get"]),
        ("/v1/members/{id}/remove", &["post"]),
        ("/v1/members/{id}/ownership", &["post"]),
        ("/v1/audit", &["get"]),
    ] {
        for m in methods {
            assert!(
                paths[path].get(*m).is_some(),
                "{m} {path} is not in the document"
            );
        }
    }
    assert_eq!(
        paths.len(),
        18,
        "a path the router does not answer, or one missing"
    );
    assert!(doc["components"]["schemas"]["IpcError"].is_object());
    assert!(doc["components"]["securitySchemes"]["session"].is_object());
}

/// "Copy key" on a member's desktop is recorded on the server: one `key_copied` entry for
/// a key the member may see; another member's key or an unknown id is refused with nothing
/// recorded.
#[tokio::test]
async fn a_copy_during_the_one_time_display_is_audited_on_the_server() {
    let (_db, registry, team) = team_registry().await;
    let owner = team.get(Role::Owner, false).clone();
    let manager = team.get(Role::Manager, false).clone();
    let app = app(registry);
    let token = token_of(&app, &manager.name).await;
    let (s, _, made) = call(
        &app,
        Method::POST,
        "/v1/keys",
        Some(&token),
        Some(json!({"name": "Copied once"})),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{made}");
    let id = made["key"]["id"].as_str().unwrap().to_owned();
    let owner_token = token_of(&app, &owner.name).await;
    // The Manager's "key_copied" entries, as the Owner's audit page lists them.
    let copies = || async {
        let path = format!("/v1/audit?action=key_copied&member_id={}", manager.id);
        let (s, _, log) = call(&app, Method::GET, &path, Some(&owner_token), None).await;
        assert_eq!(s, StatusCode::OK, "{log}");
        log["entries"].as_array().cloned().unwrap_or_default()
    };

    let path = format!("/v1/keys/{id}/copied");
    let (s, _, v) = call(&app, Method::POST, &path, Some(&token), None).await;
    assert_eq!(s, StatusCode::NO_CONTENT, "{v}");
    let log = copies().await;
    assert_eq!(log.len(), 1, "{log:?}");
    let target = log[0]["target"].as_str().unwrap();
    assert!(target.contains(&id), "{log:?}");

    // Someone else's key (the Owner's), and an id that names no key.
    let (s, _, theirs) = call(
        &app,
        Method::POST,
        "/v1/keys",
        Some(&owner_token),
        Some(json!({"name": "The Owner's"})),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED);
    let theirs = theirs["key"]["id"].as_str().unwrap().to_owned();
    for bad in [theirs.as_str(), "01a22eb8-0000-7000-8000-000000000000"] {
        let path = format!("/v1/keys/{bad}/copied");
        let (s, _, v) = call(&app, Method::POST, &path, Some(&token), None).await;
        assert!(s.is_client_error(), "{bad}: {s} {v}");
    }
    let log = copies().await;
    assert_eq!(log.len(), 1, "nothing more recorded: {log:?}");
}

/// Limits through the API: a key generated with an allowlist and a rate limit comes back
/// with both in canonical form, in the reveal and in the list.
#[tokio::test]
async fn a_key_with_limits_is_generated_and_listed_with_them() {
    let (_db, registry, team) = team_registry().await;
    let app = app(registry);
    let token = token_of(&app, &team.get(Role::Manager, false).name).await;
    let (s, _, v) = call(
        &app,
        Method::POST,
        "/v1/keys",
        Some(&token),
        Some(json!({
            "name": "partner",
            "allowed_sources": ["203.0.113.0/24, 2001:DB8::/32"],
            "rate_limit": "5 per second",
            "scopes": ["read-only"]
        })),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(v["key"]["rate_limit"], "5/s burst 5");
    assert_eq!(
        v["key"]["allowed_sources"],
        json!(["203.0.113.0/24", "2001:db8::/32"])
    );
    let id = v["key"]["id"].clone();
    let (s, _, list) = call(&app, Method::GET, "/v1/keys", Some(&token), None).await;
    assert_eq!(s, StatusCode::OK);
    let listed = list
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["id"] == id)
        .unwrap();
    assert_eq!(listed["rate_limit"], "5/s burst 5");
    assert_eq!(listed["scopes"], json!(["read-only"]));
    assert_eq!(v["key"]["scopes"], json!(["read-only"]));
    // Without a policy the server offers the built-in scope alone.
    let (s, _, scopes) = call(&app, Method::GET, "/v1/scopes", Some(&token), None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(scopes.as_array().unwrap().len(), 1, "{scopes}");
    assert_eq!(scopes[0]["name"], "read-only");
    let (s, _, _) = call(&app, Method::GET, "/v1/scopes", None, None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
}

/// A key's usage over HTTP: the Manager sees their key's days (30 by default, or `days`), with
/// the checks counted; another member's key, an unknown id and a bad `days` are refused with
/// their codes; no session, 401.
#[tokio::test]
async fn a_keys_usage_is_read_by_whoever_sees_the_key() {
    let (_db, registry, team) = team_registry().await;
    let owner = team.get(Role::Owner, false).clone();
    let manager = team.get(Role::Manager, false).clone();
    let mine = registry.generate_key(&manager.id, "mine").await.unwrap();
    let theirs = registry.generate_key(&owner.id, "theirs").await.unwrap();
    registry.verify(mine.secret.expose()).await.unwrap();
    registry.verify(mine.secret.expose()).await.unwrap();
    let (mine, theirs) = (mine.summary.id, theirs.summary.id);
    let app = app(registry);
    let token = token_of(&app, &manager.name).await;
    let path = format!("/v1/keys/{mine}/usage");
    let (s, _, v) = call(&app, Method::GET, &path, Some(&token), None).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["key_id"], mine.as_str());
    assert_eq!(v["days"].as_array().unwrap().len(), 30);
    assert_eq!(v["days"][29]["counts"]["allowed"], 2);
    assert_eq!(v["total"]["allowed"], 2);
    assert!(v["last_used_at"].is_i64());
    let (s, _, v) = call(
        &app,
        Method::GET,
        &format!("{path}?days=7"),
        Some(&token),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["days"].as_array().unwrap().len(), 7);
    for (query, status, code) in [
        (
            "?days=0",
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_duration",
        ),
        (
            "?days=367",
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_duration",
        ),
        (
            "?days=-1",
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_duration",
        ),
        (
            "?days=ten",
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_duration",
        ),
    ] {
        let (s, _, v) = call(
            &app,
            Method::GET,
            &format!("{path}{query}"),
            Some(&token),
            None,
        )
        .await;
        assert_eq!(
            (s, v["code"].as_str()),
            (status, Some(code)),
            "{query}: {v}"
        );
    }
    let (s, _, v) = call(
        &app,
        Method::GET,
        &format!("/v1/keys/{theirs}/usage"),
        Some(&token),
        None,
    )
    .await;
    assert_eq!(
        (s, v["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("not_permitted")),
        "{v}"
    );
    let (s, _, v) = call(
        &app,
        Method::GET,
        "/v1/keys/01a22eb8-0000-7000-8000-000000000000/usage",
        Some(&token),
        None,
    )
    .await;
    assert_eq!(
        (s, v["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("not_found")),
        "{v}"
    );
    let (s, _, _) = call(&app, Method::GET, &path, None, None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
}
