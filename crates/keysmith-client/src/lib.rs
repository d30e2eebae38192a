//! The operations a member performs, as the shells (the CLI, and the desktop app) call them,
//! whichever way the account is reached: [`Team::Local`], this computer's [`Registry`], or
//! [`Team::Remote`], a team server (`keysmith serve`) over HTTPS. Both answer with the same
//! types and the same `{code, message}` errors ([`IpcError`]); the server decides exactly
//! as the local registry does, so the shells cannot tell them apart except by latency.
//!
//! Talking to a server, this client refuses plain `http://` to anything but loopback unless
//! told explicitly ([`ConnectOptions::allow_plain_http`]), checks at connect time that the
//! URL serves Keysmith's API in a version it speaks, and reports a dropped connection or a
//! server that answers something else as [`ErrorCode::ServerUnavailable`].

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use keysmith_core::scope::ScopeCatalog;
use keysmith_core::Registry;
use keysmith_types::{
    AuditFilter, AuditReport, ErrorCode, GenerateKeyRequest, IpcError, KeyReveal, KeySummary,
    KeyUsage, MemberListing, MemberSummary, Role, ScopeInfo, ServerInfo, SessionTokenText,
    SignInResponse, API_VERSION,
};
use serde::de::DeserializeOwned;
use serde_json::json;

/// How long a request may take, connection included.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// How to reach a team server.
#[derive(Debug, Clone, Default)]
pub struct ConnectOptions {
    /// Allow `http://` to a host that is not loopback (passphrases and keys then cross the
    /// network unencrypted). Off by default.
    pub allow_plain_http: bool,
    /// Trust only this certificate authority (PEM) instead of the system's: for a server
    /// with a certificate of the team's own.
    pub ca_pem: Option<Vec<u8>>,
}

fn unavailable(message: impl Into<String>) -> IpcError {
    IpcError {
        code: ErrorCode::ServerUnavailable,
        message: message.into(),
    }
}

fn core(e: keysmith_core::Error) -> IpcError {
    e.to_ipc()
}

/// Checks a team server URL: `https://HOST[:PORT]`, or `http://` to loopback (or anywhere
/// when `allow_plain_http`). Returns it without a trailing slash.
///
/// # Errors
/// [`ErrorCode::ServerUnavailable`] naming what is wrong.
pub fn check_url(raw: &str, allow_plain_http: bool) -> Result<String, IpcError> {
    let parsed = url::Url::parse(raw.trim())
        .map_err(|e| unavailable(format!("{raw:?} is not a URL ({e}).")))?;
    let host = parsed
        .host()
        .ok_or_else(|| unavailable(format!("{raw:?} names no host.")))?;
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(unavailable(
            "Leave the user name and passphrase out of the server URL.",
        ));
    }
    if parsed.query().is_some() || parsed.fragment().is_some() {
        return Err(unavailable("The server URL takes no query or fragment."));
    }
    let loopback = match host {
        url::Host::Domain(d) => d.eq_ignore_ascii_case("localhost"),
        url::Host::Ipv4(ip) => ip.is_loopback(),
        url::Host::Ipv6(ip) => ip.is_loopback(),
    };
    match parsed.scheme() {
        "https" => {}
        "http" if loopback || allow_plain_http => {}
        "http" => {
            return Err(unavailable(format!(
                "{raw} is plain HTTP to another machine: passphrases and keys would cross the \
                 network unencrypted. Use https://, or allow plain HTTP explicitly."
            )))
        }
        other => {
            return Err(unavailable(format!(
                "{other}:// is not a team server URL: use https://."
            )))
        }
    }
    Ok(parsed.as_str().trim_end_matches('/').to_owned())
}

/// Why a request failed: no answer at all, or an answer that is an error.
enum Failed {
    Unreachable(IpcError),
    Answered(IpcError),
}

/// A team server, reached over HTTPS, with the session of the member signed in (if any).
/// Clones share the connection pool and the session.
#[derive(Clone)]
pub struct Remote {
    base: String,
    http: reqwest::Client,
    token: Arc<Mutex<Option<SessionTokenText>>>,
}

/// Who a session belongs to, as `GET /v1/sessions/current` says.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct CurrentSession {
    pub member: MemberSummary,
    /// The member must change their initial passphrase before anything else.
    pub must_change_passphrase: bool,
}

impl std::fmt::Debug for Remote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Remote")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

impl Remote {
    /// Checks `url` ([`check_url`]) and that it serves Keysmith's API in this version
    /// (`GET /v1/info`).
    ///
    /// # Errors
    /// [`ErrorCode::ServerUnavailable`]: a bad URL, no answer, not Keysmith, another API
    /// version.
    pub async fn connect(url: &str, options: &ConnectOptions) -> Result<Remote, IpcError> {
        let remote = Remote::new(url, options)?;
        remote.check_server().await?;
        Ok(remote)
    }

    /// Checks `url` ([`check_url`]) and sets up the HTTPS client, without a request yet:
    /// for a shell that must start while the server is away (the desktop).
    ///
    /// # Errors
    /// [`ErrorCode::ServerUnavailable`]: a bad URL or CA certificate.
    pub fn new(url: &str, options: &ConnectOptions) -> Result<Remote, IpcError> {
        let base = check_url(url, options.allow_plain_http)?;
        // The process-wide crypto provider; an error means one is installed already.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut builder = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .connect_timeout(Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("keysmith/", env!("CARGO_PKG_VERSION")));
        if let Some(pem) = &options.ca_pem {
            let cert = reqwest::Certificate::from_pem(pem)
                .map_err(|e| unavailable(format!("The CA certificate cannot be read: {e}")))?;
            builder = builder.tls_certs_only([cert]);
        }
        let http = builder
            .build()
            .map_err(|e| unavailable(format!("Cannot set up HTTPS: {e}")))?;
        Ok(Remote {
            base,
            http,
            token: Arc::new(Mutex::new(None)),
        })
    }

    /// Checks that the URL serves Keysmith's API in this version (`GET /v1/info`).
    ///
    /// # Errors
    /// [`ErrorCode::ServerUnavailable`]: no answer, not Keysmith, another API version.
    pub async fn check_server(&self) -> Result<(), IpcError> {
        let info: ServerInfo = match self.send(reqwest::Method::GET, "/v1/info", None).await {
            Ok(info) => info,
            Err(Failed::Unreachable(e)) => return Err(e),
            Err(Failed::Answered(_)) => {
                return Err(unavailable(format!(
                    "{} is not a Keysmith team server.",
                    self.base
                )))
            }
        };
        if info.product != "keysmith" {
            return Err(unavailable(format!(
                "{} is not a Keysmith team server.",
                self.base
            )));
        }
        if info.api != API_VERSION {
            return Err(unavailable(format!(
                "The team server runs Keysmith {} (API version {}); this Keysmith speaks API \
                 version {API_VERSION}. Use matching versions.",
                info.version, info.api
            )));
        }
        Ok(())
    }

    /// The server's URL.
    pub fn url(&self) -> &str {
        &self.base
    }

    fn token(&self) -> Option<String> {
        self.token
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .map(|t| t.expose().to_owned())
    }

    fn set_token(&self, token: Option<SessionTokenText>) {
        *self.token.lock().unwrap_or_else(PoisonError::into_inner) = token;
    }

    async fn call<T: DeserializeOwned>(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> Result<T, IpcError> {
        self.send(method, path, body).await.map_err(|f| match f {
            Failed::Unreachable(e) | Failed::Answered(e) => e,
        })
    }

    async fn send<T: DeserializeOwned>(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> Result<T, Failed> {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(t) = self.token() {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req.send().await.map_err(|e| {
            Failed::Unreachable(unavailable(format!(
                "The team server at {} could not be reached ({}). If you were changing \
                 something, look at the list again once it is back.",
                self.base,
                root_cause(&e)
            )))
        })?;
        let status = res.status();
        let bytes = res.bytes().await.map_err(|_| {
            Failed::Unreachable(unavailable(format!(
                "The connection to {} dropped before the answer arrived. If you were changing \
                 something, look at the list again once it is back.",
                self.base
            )))
        })?;
        if status.is_success() {
            let bytes = if bytes.is_empty() {
                &b"null"[..]
            } else {
                &bytes[..]
            };
            return serde_json::from_slice(bytes).map_err(|_| {
                Failed::Answered(unavailable(format!(
                    "{} answered something that is not Keysmith's API.",
                    self.base
                )))
            });
        }
        match serde_json::from_slice::<IpcError>(&bytes) {
            Ok(e) => {
                if e.code == ErrorCode::SessionExpired || e.code == ErrorCode::NotSignedIn {
                    self.set_token(None);
                }
                Err(Failed::Answered(e))
            }
            Err(_) => Err(Failed::Answered(unavailable(format!(
                "{} answered HTTP {status}, not Keysmith's API.",
                self.base
            )))),
        }
    }

    /// Signs in and keeps the session for the calls that follow.
    ///
    /// # Errors
    /// As the server's `POST /v1/sessions`.
    pub async fn sign_in(&self, name: &str, pass: &str) -> Result<SignInResponse, IpcError> {
        let res: SignInResponse = self
            .call(
                reqwest::Method::POST,
                "/v1/sessions",
                Some(json!({"name": name, "passphrase": pass})),
            )
            .await?;
        self.set_token(Some(res.token.clone()));
        Ok(res)
    }

    /// Resumes a session whose token was kept (the desktop keeps it in the OS keyring).
    pub fn resume(&self, token: SessionTokenText) {
        self.set_token(Some(token));
    }

    /// The session's token, to keep (the desktop's keyring).
    pub fn session_token(&self) -> Option<SessionTokenText> {
        self.token().map(SessionTokenText::new)
    }

    /// Changes the signed-in member's passphrase; the server ends every session of theirs
    /// and this client goes on with the new one it gets back.
    ///
    /// # Errors
    /// As the server's `POST /v1/me/passphrase`.
    pub async fn change_passphrase(
        &self,
        current: &str,
        new: &str,
    ) -> Result<SignInResponse, IpcError> {
        let res: SignInResponse = self
            .call(
                reqwest::Method::POST,
                "/v1/me/passphrase",
                Some(json!({"current": current, "new": new})),
            )
            .await?;
        self.set_token(Some(res.token.clone()));
        Ok(res)
    }

    /// Who the session belongs to, re-read from the server (a removed member, an ended or
    /// expired session: an error).
    ///
    /// # Errors
    /// As the server's `GET /v1/sessions/current`: [`ErrorCode::SessionExpired`],
    /// [`ErrorCode::NotSignedIn`], [`ErrorCode::ServerUnavailable`].
    pub async fn current(&self) -> Result<CurrentSession, IpcError> {
        self.call(reqwest::Method::GET, "/v1/sessions/current", None)
            .await
    }

    /// Forgets the session here and hands its token over (to end it on the server later,
    /// [`Remote::end_session`], without holding up a lock).
    pub fn take_token(&self) -> Option<SessionTokenText> {
        self.token
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
    }

    /// Ends the session `token` names on the server, whether or not it is this client's.
    ///
    /// # Errors
    /// As the server's `DELETE /v1/sessions/current`.
    pub async fn end_session(&self, token: &SessionTokenText) -> Result<(), IpcError> {
        let res = self
            .http
            .delete(format!("{}/v1/sessions/current", self.base))
            .bearer_auth(token.expose())
            .send()
            .await
            .map_err(|e| {
                unavailable(format!(
                    "The team server at {} could not be reached ({}).",
                    self.base,
                    root_cause(&e)
                ))
            })?;
        if res.status().is_success() {
            return Ok(());
        }
        let status = res.status();
        let bytes = res.bytes().await.unwrap_or_default();
        Err(
            serde_json::from_slice::<IpcError>(&bytes).unwrap_or_else(|_| {
                unavailable(format!(
                    "{} answered HTTP {status}, not Keysmith's API.",
                    self.base
                ))
            }),
        )
    }

    /// Ends the session on the server (and forgets it here).
    pub async fn sign_out(&self) {
        if self.token().is_some() {
            let _: Result<serde_json::Value, _> = self
                .call(reqwest::Method::DELETE, "/v1/sessions/current", None)
                .await;
        }
        self.set_token(None);
    }
}

/// The operations, on this computer or on a team server.
#[derive(Debug)]
pub enum Team {
    /// This computer's registry, acting as the member `member_id`.
    Local {
        registry: Arc<Registry>,
        member_id: String,
    },
    /// A team server, acting as the member its session names.
    Remote(Remote),
}

impl Team {
    /// Keys the member may see, newest first.
    ///
    /// # Errors
    /// The registry's or server's error.
    pub async fn list_keys(&self) -> Result<Vec<KeySummary>, IpcError> {
        self.list_newest_keys(None).await
    }

    /// The newest `limit` keys (all for `None`), newest first. A team server sends the whole
    /// list, cut here.
    pub async fn list_newest_keys(&self, limit: Option<u32>) -> Result<Vec<KeySummary>, IpcError> {
        match self {
            Team::Local {
                registry,
                member_id,
            } => registry
                .list_newest_keys(member_id, limit)
                .await
                .map_err(core),
            Team::Remote(r) => {
                let mut keys: Vec<KeySummary> =
                    r.call(reqwest::Method::GET, "/v1/keys", None).await?;
                if let Some(n) = limit {
                    keys.truncate(usize::try_from(n).unwrap_or(usize::MAX));
                }
                Ok(keys)
            }
        }
    }

    /// [`Registry::change_counter`] on this computer; `None` on a team server, whose list
    /// is asked for again each time.
    ///
    /// # Errors
    /// The registry's error.
    pub async fn change_counter(&self) -> Result<Option<i64>, IpcError> {
        match self {
            Team::Local { registry, .. } => registry.change_counter().await.map_err(core),
            Team::Remote(_) => Ok(None),
        }
    }

    /// Generates a key (shown once) with the request's limits: lifetime, allowed addresses,
    /// rate limit, scopes. On this computer `catalog` (this computer's policy file) says which
    /// scopes exist; a team server uses its own.
    ///
    /// # Errors
    /// The registry's or server's error; `invalid_duration`, `invalid_address`,
    /// `invalid_rate_limit` or `invalid_scope` naming a malformed limit; `scope_beyond_role`
    /// for a scope the member's role may not give.
    pub async fn generate_key(
        &self,
        req: &GenerateKeyRequest,
        catalog: &ScopeCatalog,
    ) -> Result<KeyReveal, IpcError> {
        match self {
            Team::Local {
                registry,
                member_id,
            } => {
                let limits = keysmith_core::KeyLimits::from_request(req, catalog).map_err(core)?;
                registry
                    .generate_key_limited(member_id, &req.name, &limits)
                    .await
                    .map(|g| g.reveal())
                    .map_err(core)
            }
            Team::Remote(r) => {
                let body = serde_json::to_value(req).map_err(|e| IpcError {
                    code: ErrorCode::Internal,
                    message: format!("could not encode the request: {e}"),
                })?;
                r.call(reqwest::Method::POST, "/v1/keys", Some(body)).await
            }
        }
    }

    /// The scopes the member may give a key: on this computer from `catalog`, on a team
    /// server from its policy.
    ///
    /// # Errors
    /// The registry's or server's error.
    pub async fn scopes(&self, catalog: &ScopeCatalog) -> Result<Vec<ScopeInfo>, IpcError> {
        match self {
            Team::Local {
                registry,
                member_id,
            } => {
                let me = registry.actor(member_id).await.map_err(core)?;
                Ok(catalog.grantable_by(me.role))
            }
            Team::Remote(r) => r.call(reqwest::Method::GET, "/v1/scopes", None).await,
        }
    }

    /// Rolls a key; the old one keeps working for `grace_ms`.
    ///
    /// # Errors
    /// The registry's or server's error.
    pub async fn roll_key(&self, key_id: &str, grace_ms: i64) -> Result<KeyReveal, IpcError> {
        match self {
            Team::Local {
                registry,
                member_id,
            } => registry
                .roll_key(member_id, key_id, grace_ms)
                .await
                .map(|g| g.reveal())
                .map_err(core),
            Team::Remote(r) => {
                r.call(
                    reqwest::Method::POST,
                    &format!("/v1/keys/{}/roll", segment(key_id)),
                    Some(json!({"grace_secs": grace_ms / 1000})),
                )
                .await
            }
        }
    }

    /// Records in the audit log that the member copied the key `key_id` during its one-time
    /// display (the copy itself happens on the member's computer).
    ///
    /// # Errors
    /// The registry's or server's error.
    pub async fn record_copy(&self, key_id: &str) -> Result<(), IpcError> {
        match self {
            Team::Local {
                registry,
                member_id,
            } => registry.record_copy(member_id, key_id).await.map_err(core),
            Team::Remote(r) => {
                r.call(
                    reqwest::Method::POST,
                    &format!("/v1/keys/{}/copied", segment(key_id)),
                    None,
                )
                .await
            }
        }
    }

    /// Revokes a key (`confirmation` must be `REVOKE`).
    ///
    /// # Errors
    /// The registry's or server's error.
    pub async fn revoke_key(
        &self,
        key_id: &str,
        confirmation: &str,
    ) -> Result<KeySummary, IpcError> {
        match self {
            Team::Local {
                registry,
                member_id,
            } => registry
                .revoke_key(member_id, key_id, confirmation)
                .await
                .map_err(core),
            Team::Remote(r) => {
                r.call(
                    reqwest::Method::POST,
                    &format!("/v1/keys/{}/revoke", segment(key_id)),
                    Some(json!({"confirmation": confirmation})),
                )
                .await
            }
        }
    }

    /// Pauses a key (`pause`) or resumes it: a paused key is refused like a revoked one
    /// until it is resumed.
    ///
    /// # Errors
    /// The registry's or server's error.
    pub async fn set_key_paused(&self, key_id: &str, pause: bool) -> Result<KeySummary, IpcError> {
        match self {
            Team::Local {
                registry,
                member_id,
            } => if pause {
                registry.pause_key(member_id, key_id).await
            } else {
                registry.resume_key(member_id, key_id).await
            }
            .map_err(core),
            Team::Remote(r) => {
                let verb = if pause { "pause" } else { "resume" };
                r.call(
                    reqwest::Method::POST,
                    &format!("/v1/keys/{}/{verb}", segment(key_id)),
                    None,
                )
                .await
            }
        }
    }

    /// How a key was used over the last `days` UTC days (1 to 366), one entry per day,
    /// oldest first, with its last use and that use's client address.
    ///
    /// # Errors
    /// `not_found`, `not_permitted` (a key the member does not see), `invalid_duration`.
    pub async fn key_usage(&self, key_id: &str, days: u32) -> Result<KeyUsage, IpcError> {
        match self {
            Team::Local {
                registry,
                member_id,
            } => registry
                .key_usage(member_id, key_id, days)
                .await
                .map_err(core),
            Team::Remote(r) => {
                r.call(
                    reqwest::Method::GET,
                    &format!("/v1/keys/{}/usage?days={days}", segment(key_id)),
                    None,
                )
                .await
            }
        }
    }

    /// Every member, removed ones included.
    ///
    /// # Errors
    /// The registry's or server's error.
    pub async fn list_members(&self) -> Result<Vec<MemberListing>, IpcError> {
        match self {
            Team::Local {
                registry,
                member_id,
            } => registry.list_members(member_id).await.map_err(core),
            Team::Remote(r) => r.call(reqwest::Method::GET, "/v1/members", None).await,
        }
    }

    /// The member called `name` (compared as names are: trimmed, NFC, case-insensitive),
    /// among those the member may see.
    ///
    /// # Errors
    /// [`ErrorCode::NotFound`], or the listing's error.
    pub async fn member_named(&self, name: &str) -> Result<MemberSummary, IpcError> {
        let wanted = keysmith_core::validate::name_key(name);
        self.list_members()
            .await?
            .into_iter()
            .filter(|m| m.removed_at.is_none())
            .map(|m| m.member)
            .find(|m| keysmith_core::validate::name_key(&m.name) == wanted)
            .ok_or_else(|| core(keysmith_core::Error::UnknownMember(name.trim().to_owned())))
    }

    /// Adds a member with an initial passphrase.
    ///
    /// # Errors
    /// The registry's or server's error.
    pub async fn add_member(
        &self,
        name: &str,
        role: Role,
        initial: &str,
    ) -> Result<MemberSummary, IpcError> {
        match self {
            Team::Local {
                registry,
                member_id,
            } => registry
                .add_member(member_id, name, role, initial)
                .await
                .map(|m| m.summary())
                .map_err(core),
            Team::Remote(r) => {
                r.call(
                    reqwest::Method::POST,
                    "/v1/members",
                    Some(json!({"name": name, "role": role, "initial_passphrase": initial})),
                )
                .await
            }
        }
    }

    /// Gives a member another role.
    ///
    /// # Errors
    /// The registry's or server's error.
    pub async fn change_role(&self, id: &str, role: Role) -> Result<MemberSummary, IpcError> {
        match self {
            Team::Local {
                registry,
                member_id,
            } => registry
                .change_role(member_id, id, role)
                .await
                .map(|m| m.summary())
                .map_err(core),
            Team::Remote(r) => {
                r.call(
                    reqwest::Method::PUT,
                    &format!("/v1/members/{}/role", segment(id)),
                    Some(json!({"role": role})),
                )
                .await
            }
        }
    }

    /// The keys a removal would revoke.
    ///
    /// # Errors
    /// The registry's or server's error.
    pub async fn removal_preview(&self, id: &str) -> Result<Vec<KeySummary>, IpcError> {
        match self {
            Team::Local {
                registry,
                member_id,
            } => registry.removal_preview(member_id, id).await.map_err(core),
            Team::Remote(r) => {
                r.call(
                    reqwest::Method::GET,
                    &format!("/v1/members/{}/removal-preview", segment(id)),
                    None,
                )
                .await
            }
        }
    }

    /// Removes a member (`confirmation` must be `REMOVE`); returns the keys revoked.
    ///
    /// # Errors
    /// The registry's or server's error.
    pub async fn remove_member(
        &self,
        id: &str,
        confirmation: &str,
    ) -> Result<Vec<KeySummary>, IpcError> {
        match self {
            Team::Local {
                registry,
                member_id,
            } => registry
                .remove_member(member_id, id, confirmation)
                .await
                .map_err(core),
            Team::Remote(r) => {
                r.call(
                    reqwest::Method::POST,
                    &format!("/v1/members/{}/remove", segment(id)),
                    Some(json!({"confirmation": confirmation})),
                )
                .await
            }
        }
    }

    /// Makes another member the Owner.
    ///
    /// # Errors
    /// The registry's or server's error.
    pub async fn transfer_ownership(&self, id: &str) -> Result<MemberSummary, IpcError> {
        match self {
            Team::Local {
                registry,
                member_id,
            } => registry
                .transfer_ownership(member_id, id)
                .await
                .map(|m| m.summary())
                .map_err(core),
            Team::Remote(r) => {
                r.call(
                    reqwest::Method::POST,
                    &format!("/v1/members/{}/ownership", segment(id)),
                    None,
                )
                .await
            }
        }
    }

    /// Audit entries (newest first) and the chain's status.
    ///
    /// # Errors
    /// The registry's or server's error.
    pub async fn audit_report(&self, filter: &AuditFilter) -> Result<AuditReport, IpcError> {
        match self {
            Team::Local {
                registry,
                member_id,
            } => registry.audit_report(member_id, filter).await.map_err(core),
            Team::Remote(r) => {
                let mut query = Vec::new();
                if let Some(m) = &filter.member_id {
                    query.push(format!("member_id={}", segment(m)));
                }
                if let Some(a) = &filter.action {
                    query.push(format!("action={}", segment(a)));
                }
                if let Some(f) = filter.from {
                    query.push(format!("from={f}"));
                }
                if let Some(u) = filter.until {
                    query.push(format!("until={u}"));
                }
                let path = if query.is_empty() {
                    "/v1/audit".to_owned()
                } else {
                    format!("/v1/audit?{}", query.join("&"))
                };
                r.call(reqwest::Method::GET, &path, None).await
            }
        }
    }
}

/// The innermost error's text (connection refused, certificate not trusted, timed out): it
/// names the problem, never a request's content.
fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut inner = e;
    while let Some(next) = inner.source() {
        inner = next;
    }
    inner.to_string()
}

/// `s` percent-encoded as one path segment (ids are UUIDs; anything else stays one segment).
fn segment(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_urls_are_https_or_loopback_http() {
        for ok in [
            "https://keys.example.com",
            "https://keys.example.com:8443/",
            "http://127.0.0.1:9180",
            "http://localhost:9180",
            "http://[::1]:9180",
        ] {
            assert!(check_url(ok, false).is_ok(), "{ok}");
        }
        for (bad, allow) in [
            ("http://keys.example.com", false),
            ("http://10.0.0.5:9180", false),
            ("ftp://keys.example.com", false),
            ("keys.example.com", false),
            ("https://olive:secret@keys.example.com", false),
            ("https://keys.example.com/?x=1", false),
            ("", false),
        ] {
            let e = check_url(bad, allow).unwrap_err();
            assert_eq!(e.code, ErrorCode::ServerUnavailable, "{bad}");
        }
        assert!(check_url("http://10.0.0.5:9180", true).is_ok());
        assert_eq!(
            check_url("https://k.example.com/", false).unwrap(),
            "https://k.example.com"
        );
    }
}
