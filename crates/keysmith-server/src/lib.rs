//! The team server (`keysmith serve`): every operation of [`Registry`] as an HTTP JSON API,
//! for members on other machines. Stateless: the store (PostgreSQL for a team) holds
//! everything, sessions included, so any number of instances may run behind one load
//! balancer. Handlers are thin: they read the session, call the registry with the member it
//! names, and map the result; the registry checks the role table on every call.
//!
//! Errors are the app's `{code, message}` ([`IpcError`]) with an HTTP status
//! ([`status_of`]). Requests are JSON, at most [`BODY_LIMIT`] bytes.

use std::sync::Arc;

use axum::extract::rejection::JsonRejection;
use axum::extract::{DefaultBodyLimit, FromRequest, FromRequestParts, Path, Query, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::Router;
use keysmith_core::scope::ScopeCatalog;
use keysmith_core::session::SessionToken;
use keysmith_core::{Error, Member, Registry};
use keysmith_types::{
    AddMemberRequest, AuditFilter, AuditReport, ChangePassphraseRequest, ErrorCode,
    GenerateKeyRequest, IpcError, KeyReveal, KeySummary, KeyUsage, MemberListing, MemberSummary,
    Role, ScopeInfo, ServerInfo, SessionTokenText, SignInResponse, UnlockRequest, API_VERSION,
};
use serde::de::DeserializeOwned;
use serde::Deserialize;

/// The largest request body read: 64 KiB (names are at most 64 characters).
pub const BODY_LIMIT: usize = 64 * 1024;

/// The server's state: the registry (one per process; its pool is shared by all requests).
#[derive(Clone)]
struct AppState {
    registry: Arc<Registry>,
    /// The scopes members may give keys (`scope.rs`).
    scopes: Arc<ScopeCatalog>,
}

/// The API's routes, over `registry`, offering only the built-in scope (`read-only`).
pub fn router(registry: Arc<Registry>) -> Router {
    router_with_scopes(registry, ScopeCatalog::builtin())
}

/// The API's routes, over `registry`, offering the scopes of `scopes` (from the verifier's
/// policy file: `keysmith serve --policy`).
pub fn router_with_scopes(registry: Arc<Registry>, scopes: ScopeCatalog) -> Router {
    Router::new()
        .route("/v1/info", get(info))
        .route("/v1/sessions", post(sign_in))
        .route("/v1/sessions/current", get(current).delete(sign_out))
        .route("/v1/me/passphrase", post(change_passphrase))
        .route("/v1/keys", get(list_keys).post(generate_key))
        .route("/v1/scopes", get(list_scopes))
        .route("/v1/keys/{id}/roll", post(roll_key))
        .route("/v1/keys/{id}/revoke", post(revoke_key))
        .route("/v1/keys/{id}/pause", post(pause_key))
        .route("/v1/keys/{id}/resume", post(resume_key))
        .route("/v1/keys/{id}/copied", post(record_copy))
        .route("/v1/keys/{id}/usage", get(key_usage))
        .route("/v1/members", get(list_members).post(add_member))
        .route("/v1/members/{id}/role", put(change_role))
        .route("/v1/members/{id}/removal-preview", get(removal_preview))
        .route("/v1/members/{id}/remove", post(remove_member))
        .route("/v1/members/{id}/ownership", post(transfer_ownership))
        .route("/v1/audit", get(audit))
        .route("/v1/openapi.json", get(openapi_json))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .fallback(not_found)
        .with_state(AppState {
            registry,
            scopes: Arc::new(scopes),
        })
}

/// Serves the API on `listener` until `shutdown` completes, offering the scopes of `scopes`.
///
/// # Errors
/// The listener's I/O error.
pub async fn serve(
    registry: Arc<Registry>,
    scopes: ScopeCatalog,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router_with_scopes(registry, scopes))
        .with_graceful_shutdown(shutdown)
        .await
}

/// Serves the API over HTTPS (rustls; TLS 1.2 and 1.3) on `addr` with the PEM certificate
/// chain `cert` and private key `key`, until `shutdown` completes (then waits up to 10 s for
/// requests in flight), offering the scopes of `scopes`. Returns the address it listened on.
///
/// # Errors
/// An unreadable certificate or key, or the listener's I/O error.
pub async fn serve_tls(
    registry: Arc<Registry>,
    scopes: ScopeCatalog,
    addr: std::net::SocketAddr,
    cert: &std::path::Path,
    key: &std::path::Path,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<std::net::SocketAddr> {
    // The process-wide crypto provider; an error means one is installed already.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let config = axum_server::tls_rustls::RustlsConfig::from_pem_file(cert, key)
        .await
        .map_err(|e| {
            std::io::Error::new(
                e.kind(),
                format!(
                    "cannot use the certificate {} and key {}: {e}",
                    cert.display(),
                    key.display()
                ),
            )
        })?;
    let handle = axum_server::Handle::new();
    {
        let handle = handle.clone();
        tokio::spawn(async move {
            shutdown.await;
            handle.graceful_shutdown(Some(std::time::Duration::from_secs(10)));
        });
    }
    {
        let handle = handle.clone();
        tokio::spawn(async move {
            if let Some(bound) = handle.listening().await {
                tracing::info!(listen = %bound, "team server ready (HTTPS)");
            }
        });
    }
    axum_server::bind_rustls(addr, config)
        .handle(handle)
        .serve(router_with_scopes(registry, scopes).into_make_service())
        .await?;
    Ok(addr)
}

/// The API's OpenAPI 3.1 document, generated from the handlers and the types above
/// (utoipa); served at `GET /v1/openapi.json` and checked in as `docs/openapi.json`.
#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "Keysmith team server",
        description = "Every operation of a Keysmith account, for members on other machines. Errors are `{code, message}` with the HTTP status of `status_of`; sessions are bearer tokens from `POST /v1/sessions`."
    ),
    paths(
        info, sign_in, current, sign_out, change_passphrase, list_keys, generate_key, list_scopes, roll_key,
        revoke_key, pause_key, resume_key, record_copy, key_usage, list_members, add_member, change_role, removal_preview, remove_member,
        transfer_ownership, audit
    ),
    modifiers(&BearerSessions)
)]
pub struct ApiDoc;

struct BearerSessions;

impl utoipa::Modify for BearerSessions {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "session",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("kss_ + 64 hex digits")
                    .build(),
            ),
        );
    }
}

/// The OpenAPI document as served (pretty JSON).
pub fn openapi_document() -> String {
    use utoipa::OpenApi;
    ApiDoc::openapi()
        .to_pretty_json()
        .unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
}

async fn openapi_json() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        openapi_document(),
    )
        .into_response()
}

/// The HTTP status of an error code.
pub fn status_of(code: ErrorCode) -> StatusCode {
    use ErrorCode as C;
    match code {
        C::NotSignedIn | C::SessionExpired | C::BadCredentials => StatusCode::UNAUTHORIZED,
        C::NotPermitted | C::PassphraseChangeRequired | C::ScopeBeyondRole => StatusCode::FORBIDDEN,
        C::NotFound => StatusCode::NOT_FOUND,
        C::InvalidName
        | C::InvalidPassphrase
        | C::MalformedKey
        | C::ConfirmationMismatch
        | C::RemoveConfirmationMismatch
        | C::InvalidDuration
        | C::InvalidAddress
        | C::InvalidRateLimit
        | C::InvalidScope
        | C::InvalidTarget
        | C::InvalidPath
        | C::MalformedRequest => StatusCode::UNPROCESSABLE_ENTITY,
        C::AlreadyInitialized
        | C::AccountMoved
        | C::AlreadyRevoked
        | C::AlreadyReplaced
        | C::DuplicateName
        | C::UnknownKey
        | C::KeyRevoked
        | C::KeyExpired
        | C::KeyPaused
        | C::AlreadyPaused
        | C::NotPaused => StatusCode::CONFLICT,
        C::TooManyAttempts => StatusCode::TOO_MANY_REQUESTS,
        C::NotInitialized
        | C::KeyringUnavailable
        | C::PepperMissing
        | C::ServerUnavailable
        | C::Clipboard
        | C::PepperFile => StatusCode::SERVICE_UNAVAILABLE,
        C::StoreTampered | C::AuditTampered | C::Storage | C::Internal => {
            StatusCode::INTERNAL_SERVER_ERROR
        }
    }
}

/// An error as the API answers it: `{code, message}`, its status, and `Retry-After` for a
/// throttled sign-in.
#[derive(Debug)]
pub struct ApiError {
    body: IpcError,
    retry_after_secs: Option<i64>,
}

impl From<Error> for ApiError {
    fn from(e: Error) -> ApiError {
        let retry_after_secs = match &e {
            Error::TooManyAttempts { retry_after_secs } => Some(*retry_after_secs),
            _ => None,
        };
        ApiError {
            body: e.to_ipc(),
            retry_after_secs,
        }
    }
}

impl ApiError {
    fn new(code: ErrorCode, message: impl Into<String>) -> ApiError {
        ApiError {
            body: IpcError {
                code,
                message: message.into(),
            },
            retry_after_secs: None,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (status_of(self.body.code), axum::Json(&self.body)).into_response();
        if self.body.code == ErrorCode::SessionExpired || self.body.code == ErrorCode::NotSignedIn {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"keysmith\""),
            );
        }
        if let Some(secs) = self.retry_after_secs {
            if let Ok(v) = HeaderValue::from_str(&secs.max(1).to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, v);
            }
        }
        response
    }
}

type ApiResult<T> = Result<axum::Json<T>, ApiError>;

/// A JSON body whose rejection is the API's error shape (not axum's plain text).
struct Body<T>(T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(Body(v)),
            Err(rejection) => Err(json_rejection(&rejection)),
        }
    }
}

fn json_rejection(rejection: &JsonRejection) -> ApiError {
    // The rejection's text describes the JSON (line, column, which field), never echoes it.
    let message = match rejection {
        JsonRejection::MissingJsonContentType(_) => {
            "The request needs `Content-Type: application/json`.".to_owned()
        }
        JsonRejection::BytesRejection(_) => {
            format!("The request body could not be read (at most {BODY_LIMIT} bytes are accepted).")
        }
        other => format!(
            "The request body is not what this call takes: {}",
            other.body_text()
        ),
    };
    ApiError::new(ErrorCode::MalformedRequest, message)
}

/// The member a request's session names (`Authorization: Bearer kss_…`), as they are now.
/// Refuses everything but a passphrase change while an initial passphrase is unchanged.
struct Signed(Member);

/// As [`Signed`], also while the initial passphrase is unchanged (for changing it, and for
/// signing out).
struct Session(Member, SessionToken);

fn bearer(parts: &Parts) -> Result<SessionToken, ApiError> {
    let value = parts
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| ApiError::from(Error::NotSignedIn))?;
    let token = value
        .strip_prefix("Bearer ")
        .ok_or_else(|| ApiError::from(Error::NotSignedIn))?;
    Ok(SessionToken::parse(token.trim())?)
}

impl FromRequestParts<AppState> for Session {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = bearer(parts)?;
        let member = state.registry.session_member(&token).await?;
        Ok(Session(member, token))
    }
}

impl FromRequestParts<AppState> for Signed {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let Session(member, _) = Session::from_request_parts(parts, state).await?;
        if member.must_change_passphrase {
            return Err(ApiError::new(
                ErrorCode::PassphraseChangeRequired,
                "Change your initial passphrase first.",
            ));
        }
        Ok(Signed(member))
    }
}

async fn not_found() -> ApiError {
    ApiError::new(ErrorCode::NotFound, "No such API call.")
}

#[utoipa::path(get, path = "/v1/info", tag = "server", responses((status = 200, description = "Which product and API version this URL serves", body = ServerInfo)))]
async fn info() -> axum::Json<ServerInfo> {
    axum::Json(ServerInfo {
        product: "keysmith".into(),
        version: env!("CARGO_PKG_VERSION").into(),
        api: API_VERSION,
    })
}

fn signed_in(session: keysmith_core::session::Session) -> SignInResponse {
    SignInResponse {
        token: SessionTokenText::new(session.token.expose().to_owned()),
        must_change_passphrase: session.member.must_change_passphrase,
        member: session.member.summary(),
        expires_at: session.expires_at,
    }
}

#[utoipa::path(post, path = "/v1/sessions", tag = "sessions", request_body = UnlockRequest, responses((status = 200, description = "Signed in: the session token, shown once", body = SignInResponse), (status = "4XX", description = "Refused: `{code, message}`", body = IpcError), (status = "5XX", description = "The server cannot act: `{code, message}`", body = IpcError)))]
async fn sign_in(
    State(s): State<AppState>,
    Body(req): Body<UnlockRequest>,
) -> ApiResult<SignInResponse> {
    let session = s
        .registry
        .start_session(&req.name, req.passphrase.expose())
        .await?;
    Ok(axum::Json(signed_in(session)))
}

#[utoipa::path(get, path = "/v1/sessions/current", tag = "sessions", security(("session" = [])), responses((status = 200, description = "Who the session belongs to", body = SignInStatus), (status = "4XX", description = "Refused: `{code, message}`", body = IpcError), (status = "5XX", description = "The server cannot act: `{code, message}`", body = IpcError)))]
async fn current(Session(member, _): Session) -> axum::Json<SignInStatus> {
    axum::Json(SignInStatus {
        must_change_passphrase: member.must_change_passphrase,
        member: member.summary(),
    })
}

/// Who a session belongs to (`GET /v1/sessions/current`).
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
struct SignInStatus {
    member: MemberSummary,
    must_change_passphrase: bool,
}

#[utoipa::path(delete, path = "/v1/sessions/current", tag = "sessions", security(("session" = [])), responses((status = 204, description = "Signed out"), (status = "4XX", description = "Refused: `{code, message}`", body = IpcError), (status = "5XX", description = "The server cannot act: `{code, message}`", body = IpcError)))]
async fn sign_out(
    State(s): State<AppState>,
    Session(_, token): Session,
) -> Result<StatusCode, ApiError> {
    s.registry.end_session(&token).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/v1/me/passphrase", tag = "sessions", security(("session" = [])), request_body = ChangePassphraseRequest, responses((status = 200, description = "Changed; every other session ended; a new session", body = SignInResponse), (status = "4XX", description = "Refused: `{code, message}`", body = IpcError), (status = "5XX", description = "The server cannot act: `{code, message}`", body = IpcError)))]
async fn change_passphrase(
    State(s): State<AppState>,
    Session(member, _): Session,
    Body(req): Body<ChangePassphraseRequest>,
) -> ApiResult<SignInResponse> {
    s.registry
        .change_passphrase(&member.id, req.current.expose(), req.new.expose())
        .await?;
    // The change ended every session of the member; this one goes on as a new session.
    let session = s
        .registry
        .start_session(&member.name, req.new.expose())
        .await?;
    Ok(axum::Json(signed_in(session)))
}

#[utoipa::path(get, path = "/v1/keys", tag = "keys", security(("session" = [])), responses((status = 200, description = "The keys the member may see, newest first", body = Vec<KeySummary>), (status = "4XX", description = "Refused: `{code, message}`", body = IpcError), (status = "5XX", description = "The server cannot act: `{code, message}`", body = IpcError)))]
async fn list_keys(State(s): State<AppState>, Signed(m): Signed) -> ApiResult<Vec<KeySummary>> {
    Ok(axum::Json(s.registry.list_keys(&m.id).await?))
}

#[utoipa::path(post, path = "/v1/keys", tag = "keys", security(("session" = [])), request_body = GenerateKeyRequest, responses((status = 201, description = "Generated: the key itself, this once", body = KeyReveal), (status = "4XX", description = "Refused: `{code, message}`", body = IpcError), (status = "5XX", description = "The server cannot act: `{code, message}`", body = IpcError)))]
async fn generate_key(
    State(s): State<AppState>,
    Signed(m): Signed,
    Body(req): Body<GenerateKeyRequest>,
) -> Result<(StatusCode, axum::Json<KeyReveal>), ApiError> {
    let limits = keysmith_core::KeyLimits::from_request(&req, &s.scopes)?;
    let generated = s
        .registry
        .generate_key_limited(&m.id, &req.name, &limits)
        .await?;
    Ok((StatusCode::CREATED, axum::Json(generated.reveal())))
}

#[utoipa::path(get, path = "/v1/scopes", tag = "keys", security(("session" = [])), responses((status = 200, description = "The scopes the member's role may give a key, the built-in `read-only` first", body = Vec<ScopeInfo>), (status = "4XX", description = "Refused: `{code, message}`", body = IpcError), (status = "5XX", description = "The server cannot act: `{code, message}`", body = IpcError)))]
async fn list_scopes(State(s): State<AppState>, Signed(m): Signed) -> ApiResult<Vec<ScopeInfo>> {
    Ok(axum::Json(s.scopes.grantable_by(m.role)))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
struct Grace {
    grace_secs: i64,
}

#[utoipa::path(post, path = "/v1/keys/{id}/roll", tag = "keys", security(("session" = [])), params(("id" = String, Path, description = "The key's id")), request_body = Grace, responses((status = 201, description = "The replacement, this once", body = KeyReveal), (status = "4XX", description = "Refused: `{code, message}`", body = IpcError), (status = "5XX", description = "The server cannot act: `{code, message}`", body = IpcError)))]
async fn roll_key(
    State(s): State<AppState>,
    Signed(m): Signed,
    Path(id): Path<String>,
    Body(req): Body<Grace>,
) -> Result<(StatusCode, axum::Json<KeyReveal>), ApiError> {
    let grace_ms = keysmith_core::validate::secs_to_ms(req.grace_secs)?;
    let generated = s.registry.roll_key(&m.id, &id, grace_ms).await?;
    Ok((StatusCode::CREATED, axum::Json(generated.reveal())))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
struct Confirmation {
    confirmation: String,
}

#[utoipa::path(post, path = "/v1/keys/{id}/revoke", tag = "keys", security(("session" = [])), params(("id" = String, Path, description = "The key's id")), request_body = Confirmation, responses((status = 200, description = "Revoked", body = KeySummary), (status = "4XX", description = "Refused: `{code, message}`", body = IpcError), (status = "5XX", description = "The server cannot act: `{code, message}`", body = IpcError)))]
async fn revoke_key(
    State(s): State<AppState>,
    Signed(m): Signed,
    Path(id): Path<String>,
    Body(req): Body<Confirmation>,
) -> ApiResult<KeySummary> {
    Ok(axum::Json(
        s.registry.revoke_key(&m.id, &id, &req.confirmation).await?,
    ))
}

#[utoipa::path(post, path = "/v1/keys/{id}/pause", tag = "keys", security(("session" = [])), params(("id" = String, Path, description = "The key's id")), responses((status = 200, description = "Paused: refused by every verifier until resumed", body = KeySummary), (status = "4XX", description = "Refused: `{code, message}`", body = IpcError), (status = "5XX", description = "The server cannot act: `{code, message}`", body = IpcError)))]
async fn pause_key(
    State(s): State<AppState>,
    Signed(m): Signed,
    Path(id): Path<String>,
) -> ApiResult<KeySummary> {
    Ok(axum::Json(s.registry.pause_key(&m.id, &id).await?))
}

#[utoipa::path(post, path = "/v1/keys/{id}/resume", tag = "keys", security(("session" = [])), params(("id" = String, Path, description = "The key's id")), responses((status = 200, description = "Resumed: the key works again", body = KeySummary), (status = "4XX", description = "Refused: `{code, message}`", body = IpcError), (status = "5XX", description = "The server cannot act: `{code, message}`", body = IpcError)))]
async fn resume_key(
    State(s): State<AppState>,
    Signed(m): Signed,
    Path(id): Path<String>,
) -> ApiResult<KeySummary> {
    Ok(axum::Json(s.registry.resume_key(&m.id, &id).await?))
}

/// `GET /v1/keys/{id}/usage?days=N`.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct UsageQuery {
    /// How many UTC days, today included (1 to 366; 30 when absent).
    days: Option<u32>,
}

#[utoipa::path(get, path = "/v1/keys/{id}/usage", tag = "keys", security(("session" = [])), params(("id" = String, Path, description = "The key's id"), UsageQuery), responses((status = 200, description = "The key's use per UTC day, oldest first, with its last use", body = KeyUsage), (status = "4XX", description = "Refused: `{code, message}`", body = IpcError), (status = "5XX", description = "The server cannot act: `{code, message}`", body = IpcError)))]
async fn key_usage(
    State(s): State<AppState>,
    Signed(m): Signed,
    Path(id): Path<String>,
    query: Result<Query<UsageQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<KeyUsage> {
    let Query(q) = query.map_err(|r| {
        ApiError::new(
            ErrorCode::InvalidDuration,
            format!(
                "days must be a whole number from 1 to 366: {}",
                r.body_text()
            ),
        )
    })?;
    let days = q.days.unwrap_or(keysmith_types::USAGE_DAYS_DEFAULT);
    Ok(axum::Json(s.registry.key_usage(&m.id, &id, days).await?))
}

#[utoipa::path(post, path = "/v1/keys/{id}/copied", tag = "keys", security(("session" = [])), params(("id" = String, Path, description = "The key's id")), responses((status = 204, description = "Recorded in the audit log: the member copied the key during its one-time display"), (status = "4XX", description = "Refused: `{code, message}`", body = IpcError), (status = "5XX", description = "The server cannot act: `{code, message}`", body = IpcError)))]
async fn record_copy(
    State(s): State<AppState>,
    Signed(m): Signed,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    s.registry.record_copy(&m.id, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/v1/members", tag = "members", security(("session" = [])), responses((status = 200, description = "Every member, removed ones included", body = Vec<MemberListing>), (status = "4XX", description = "Refused: `{code, message}`", body = IpcError), (status = "5XX", description = "The server cannot act: `{code, message}`", body = IpcError)))]
async fn list_members(
    State(s): State<AppState>,
    Signed(m): Signed,
) -> ApiResult<Vec<MemberListing>> {
    Ok(axum::Json(s.registry.list_members(&m.id).await?))
}

#[utoipa::path(post, path = "/v1/members", tag = "members", security(("session" = [])), request_body = AddMemberRequest, responses((status = 201, description = "Added; they change the initial passphrase first", body = MemberSummary), (status = "4XX", description = "Refused: `{code, message}`", body = IpcError), (status = "5XX", description = "The server cannot act: `{code, message}`", body = IpcError)))]
async fn add_member(
    State(s): State<AppState>,
    Signed(m): Signed,
    Body(req): Body<AddMemberRequest>,
) -> Result<(StatusCode, axum::Json<MemberSummary>), ApiError> {
    let added = s
        .registry
        .add_member(&m.id, &req.name, req.role, req.initial_passphrase.expose())
        .await?;
    Ok((StatusCode::CREATED, axum::Json(added.summary())))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
struct NewRole {
    role: Role,
}

#[utoipa::path(put, path = "/v1/members/{id}/role", tag = "members", security(("session" = [])), params(("id" = String, Path, description = "The member's id")), request_body = NewRole, responses((status = 200, description = "The member with the new role", body = MemberSummary), (status = "4XX", description = "Refused: `{code, message}`", body = IpcError), (status = "5XX", description = "The server cannot act: `{code, message}`", body = IpcError)))]
async fn change_role(
    State(s): State<AppState>,
    Signed(m): Signed,
    Path(id): Path<String>,
    Body(req): Body<NewRole>,
) -> ApiResult<MemberSummary> {
    Ok(axum::Json(
        s.registry
            .change_role(&m.id, &id, req.role)
            .await?
            .summary(),
    ))
}

#[utoipa::path(get, path = "/v1/members/{id}/removal-preview", tag = "members", security(("session" = [])), params(("id" = String, Path, description = "The member's id")), responses((status = 200, description = "The keys a removal would revoke", body = Vec<KeySummary>), (status = "4XX", description = "Refused: `{code, message}`", body = IpcError), (status = "5XX", description = "The server cannot act: `{code, message}`", body = IpcError)))]
async fn removal_preview(
    State(s): State<AppState>,
    Signed(m): Signed,
    Path(id): Path<String>,
) -> ApiResult<Vec<KeySummary>> {
    Ok(axum::Json(s.registry.removal_preview(&m.id, &id).await?))
}

#[utoipa::path(post, path = "/v1/members/{id}/remove", tag = "members", security(("session" = [])), params(("id" = String, Path, description = "The member's id")), request_body = Confirmation, responses((status = 200, description = "Removed; the keys revoked with them", body = Vec<KeySummary>), (status = "4XX", description = "Refused: `{code, message}`", body = IpcError), (status = "5XX", description = "The server cannot act: `{code, message}`", body = IpcError)))]
async fn remove_member(
    State(s): State<AppState>,
    Signed(m): Signed,
    Path(id): Path<String>,
    Body(req): Body<Confirmation>,
) -> ApiResult<Vec<KeySummary>> {
    Ok(axum::Json(
        s.registry
            .remove_member(&m.id, &id, &req.confirmation)
            .await?,
    ))
}

#[utoipa::path(post, path = "/v1/members/{id}/ownership", tag = "members", security(("session" = [])), params(("id" = String, Path, description = "The member's id")), responses((status = 200, description = "The new Owner (you become an Admin)", body = MemberSummary), (status = "4XX", description = "Refused: `{code, message}`", body = IpcError), (status = "5XX", description = "The server cannot act: `{code, message}`", body = IpcError)))]
async fn transfer_ownership(
    State(s): State<AppState>,
    Signed(m): Signed,
    Path(id): Path<String>,
) -> ApiResult<MemberSummary> {
    Ok(axum::Json(
        s.registry.transfer_ownership(&m.id, &id).await?.summary(),
    ))
}

#[utoipa::path(get, path = "/v1/audit", tag = "audit", security(("session" = [])), params(AuditFilter), responses((status = 200, description = "Entries, newest first, and the chain's status", body = AuditReport), (status = "4XX", description = "Refused: `{code, message}`", body = IpcError), (status = "5XX", description = "The server cannot act: `{code, message}`", body = IpcError)))]
async fn audit(
    State(s): State<AppState>,
    Signed(m): Signed,
    query: Result<Query<AuditFilter>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<AuditReport> {
    let Query(filter) = query.map_err(|r| {
        ApiError::new(
            ErrorCode::MalformedRequest,
            format!("The audit filter is not readable: {}", r.body_text()),
        )
    })?;
    Ok(axum::Json(s.registry.audit_report(&m.id, &filter).await?))
}
