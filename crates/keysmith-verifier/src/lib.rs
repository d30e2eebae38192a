//! The forward-auth HTTP service: a reverse proxy (nginx `auth_request`, Traefik
//! `ForwardAuth`) asks it about each request, and forwards the request only on a 2xx.
//!
//! Answers, for any path the proxy sends the sub-request to:
//! - 204, with `X-Keysmith-Key-Id`, `X-Keysmith-Member` (the creator's member id) and
//!   `X-Keysmith-Role`, when the key is active and the policy lets its creator's current
//!   role call the original method and path;
//! - 401 (with `WWW-Authenticate: Bearer`, RFC 6750 §3) for a missing, malformed, unknown,
//!   revoked, expired or paused key; 403 when the role may not call that endpoint, when the
//!   key is limited to networks the client's address (`client.rs`) is not in, and for any
//!   request carrying `Origin` (keys are not for browser pages; no CORS header is ever
//!   sent); 429 with `Retry-After` (whole seconds, RFC 9110 §10.2.3) when the key is over
//!   its rate limit; 400 for unreadable headers; 503 if the key database cannot be read.
//!
//! nginx's `auth_request` passes on only 2xx, 401 and 403, and turns any other answer into
//! 500; the README's recipe catches that 500 and answers 429 itself when the sub-request
//! carried `Retry-After` (`tests/verifier_nginx.rs` runs it).
//!
//! Logs (tracing) name the key id, never the key.

pub mod client;
pub mod extract;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderName, HeaderValue, Response, StatusCode};
use axum::Router;
use keysmith_core::verifier::{Denial, Target, Verifier};

pub use client::{client_address, TrustedProxies};
pub use extract::{extract, ExtractError, Extracted, PresentedKey};

/// Response headers of an allowed request.
pub const KEY_ID_HEADER: &str = "x-keysmith-key-id";
pub const MEMBER_HEADER: &str = "x-keysmith-member";
pub const ROLE_HEADER: &str = "x-keysmith-role";

// The same names, built once: inserting by `&str` parses and validates the name each time.
const KEY_ID: HeaderName = HeaderName::from_static(KEY_ID_HEADER);
const MEMBER: HeaderName = HeaderName::from_static(MEMBER_HEADER);
const ROLE: HeaderName = HeaderName::from_static(ROLE_HEADER);

/// The service for one verifier, trusting no proxy's `X-Forwarded-For`: every path and
/// method answers the same way.
pub fn router(verifier: Arc<Verifier>) -> Router {
    router_behind(verifier, TrustedProxies::default())
}

/// [`router`] behind the proxies `trusted` (`--trusted-proxy`), whose `X-Forwarded-For`
/// names the client ([`client_address`]). The peer address comes from
/// `ConnectInfo<SocketAddr>` ([`serve`] provides it); without it the client is unknown.
pub fn router_behind(verifier: Arc<Verifier>, trusted: TrustedProxies) -> Router {
    Router::new()
        .fallback(check)
        .with_state(Arc::new(Service { verifier, trusted }))
}

struct Service {
    verifier: Arc<Verifier>,
    trusted: TrustedProxies,
}

async fn check(State(service): State<Arc<Service>>, request: Request) -> Response<Body> {
    let verifier = &service.verifier;
    let peer = request
        .extensions()
        .get::<ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0.ip());
    // The whole request, not the `HeaderMap` extractor: that one clones every header.
    let headers = request.headers();
    let client = client_address(headers, peer, &service.trusted);
    let request = match extract(headers) {
        Ok(r) => r,
        Err(e) => {
            tracing::info!(status = e.http_status(), reason = %e, "refused");
            return plain(e.http_status(), &e.to_string());
        }
    };
    let decision = verifier.check(
        request.key.as_ref().map(extract::PresentedKey::as_str),
        Some(Target {
            method: request.method,
            uri: request.uri,
            client,
        }),
    );
    match decision {
        Ok(grant) => {
            tracing::debug!(key = %grant.key_id, role = %grant.role, method = %request.method, "allowed");
            let mut response = empty(StatusCode::NO_CONTENT);
            let h = response.headers_mut();
            h.insert(ROLE, HeaderValue::from_static(grant.role.as_str()));
            if let Ok(v) = HeaderValue::from_str(&grant.member_id) {
                h.insert(MEMBER, v);
            }
            if let Ok(v) = HeaderValue::from_maybe_shared(axum::body::Bytes::from(grant.key_id)) {
                h.insert(KEY_ID, v);
            }
            response
        }
        Err(denial) => {
            let status = denial.http_status();
            tracing::info!(
                status,
                key = denial.key_id().unwrap_or("-"),
                method = %request.method,
                reason = %denial,
                "refused"
            );
            let mut response = plain(status, &denial.to_string());
            if let Some(secs) = denial.retry_after_secs() {
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(secs));
            }
            if status == 401 {
                let challenge = match denial {
                    Denial::MissingKey => "Bearer realm=\"keysmith\"",
                    _ => "Bearer realm=\"keysmith\", error=\"invalid_token\"",
                };
                response.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static(challenge),
                );
            }
            response
        }
    }
}

fn empty(status: StatusCode) -> Response<Body> {
    let mut response = Response::new(Body::empty());
    *response.status_mut() = status;
    // Room for every header an answer carries, so none of the inserts grows the map.
    let mut headers = axum::http::HeaderMap::with_capacity(6);
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    *response.headers_mut() = headers;
    response
}

fn plain(status: u16, message: &str) -> Response<Body> {
    let mut response = empty(StatusCode::from_u16(status).unwrap_or(StatusCode::FORBIDDEN));
    *response.body_mut() = Body::from(format!("{message}\n"));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

/// Serves `verifier` on `listener` until `shutdown` completes, believing `X-Forwarded-For`
/// from `trusted` only, writing last-used times every `flush_every` (and once more at
/// shutdown).
///
/// # Errors
/// The listener's I/O error.
pub async fn serve(
    listener: tokio::net::TcpListener,
    verifier: Arc<Verifier>,
    trusted: TrustedProxies,
    flush_every: Duration,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let flusher = {
        let verifier = Arc::clone(&verifier);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(flush_every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                flush(&verifier).await;
            }
        })
    };
    let app = router_behind(Arc::clone(&verifier), trusted)
        .into_make_service_with_connect_info::<std::net::SocketAddr>();
    let result = axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await;
    flusher.abort();
    flush(&verifier).await;
    result
}

async fn flush(verifier: &Arc<Verifier>) {
    let v = Arc::clone(verifier);
    match tokio::task::spawn_blocking(move || v.flush_last_used()).await {
        Ok(Ok(0)) => {}
        Ok(Ok(n)) => tracing::debug!(keys = n, "last-used times written"),
        Ok(Err(e)) => tracing::warn!(error = %e, "could not write last-used times; will retry"),
        Err(e) => tracing::warn!(error = %e, "last-used writer stopped"),
    }
}
