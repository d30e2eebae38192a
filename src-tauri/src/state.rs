//! The app's one piece of state, and the command bodies as plain async functions over it,
//! so they can be tested without a webview. The Tauri commands in `commands.rs` only
//! delegate here.
//!
//! The account lives in one of two places ([`Backend`]): this computer's registry (SQLite in
//! the data directory), or a team server the app joined (`team-server.json` in the data
//! directory). Every screen goes through [`keysmith_client::Team`], so both behave alike.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::{Duration, Instant};

use keysmith_client::{Remote, Team};
use keysmith_core::scope::ScopeCatalog;
use keysmith_core::{Error, Registry, SecretStore};
use keysmith_types::{
    AddMemberRequest, AuditFilter, AuditReport, ChangePassphraseRequest, ChangeRoleRequest,
    CopyReceipt, CreateAccountRequest, ErrorCode, GenerateKeyRequest, IpcError, JoinServerRequest,
    KeyReveal, KeyStatus, KeySummary, KeyUsage, KeyUsageRequest, MemberListing, MemberRequest,
    MemberSummary, PauseKeyRequest, RemoveMemberRequest, RevealRequest, RevealedKey,
    RevokeKeyRequest, RollKeyRequest, ScanReport, ScanRequest, ScopeInfo, SessionStatus,
    SessionTokenText, UnlockRequest,
};

use crate::clipboard::{self, Clipboard};
use crate::team::TeamConfig;

/// The key being shown once: held from generation until Done (or the window closes).
struct PendingReveal {
    key: KeySummary,
    /// Who generated it (the member signed in then).
    member_id: String,
    secret: RevealedKey,
    copied: bool,
}

/// A key whose one-time display ended before anyone copied it, without the member choosing
/// so (the app locked, the window's page reloaded): offered for revoking when its creator
/// is signed in again (issue 12).
struct UnsavedKey {
    member_id: String,
    key_id: String,
}

struct Session {
    member: MemberSummary,
    must_change_passphrase: bool,
    last_activity: Instant,
}

/// Where the account lives.
#[derive(Clone)]
enum Backend {
    /// "This computer only": the registry in the data directory.
    Local(Arc<Registry>),
    /// "Join a team server": the server decides; this app holds no pepper and no database.
    Server { remote: Remote, config: TeamConfig },
    /// First run, before the choice: no database yet (the first-run screen offers both; the
    /// database file is created only when "This computer only" sets up an account).
    Fresh,
}

/// Everything the window's commands share.
pub struct AppState {
    backend: RwLock<Backend>,
    /// The data directory (where `team-server.json` and the local database live); `None`
    /// for a state built around a registry in tests, which cannot switch modes.
    data_dir: Option<PathBuf>,
    /// The OS keyring: the team server session's token while a member is signed in.
    secrets: Arc<dyn SecretStore>,
    /// The signed-in member; `None` when locked.
    session: Mutex<Option<Session>>,
    /// Why the app locked itself, for the sign-in screen (taken when shown).
    notice: Mutex<Option<String>>,
    reveal: Mutex<Option<PendingReveal>>,
    unsaved: Mutex<Option<UnsavedKey>>,
    clipboard: Arc<Clipboard>,
    /// SHA-256 of the last key copied, until the clipboard is cleared of it: locking clears
    /// it at once rather than when its timer runs out.
    copied: Arc<Mutex<Option<[u8; 32]>>>,
    /// How many copies were made: each copy's clearing runs only if no later copy came, so
    /// "Copy again" gets its own full time (issue 12).
    copies: Arc<std::sync::atomic::AtomicU64>,
    idle_limit: Duration,
    /// The whole key list last sent, for the keys page's 5 s refresh ([`AppState::key_list`]).
    listed: Mutex<Option<Listed>>,
}

/// What [`AppState::key_list`] last sent as the whole list, and what it depended on.
#[derive(Debug)]
struct Listed {
    member_id: String,
    /// [`Registry::change_counter`] read before the list was.
    counter: i64,
    /// The first expiry after the list was read (Unix ms): the list's statuses change then.
    until: Option<i64>,
    fingerprint: String,
}

impl Listed {
    /// Whether the page holding `known` still holds the list `member_id` would get at `now`,
    /// the database's counter being `counter`.
    fn still(&self, member_id: &str, counter: i64, now: i64, known: &str) -> bool {
        self.member_id == member_id
            && self.counter == counter
            && self.until.is_none_or(|at| now < at)
            && self.fingerprint == known
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Seconds from the UI as milliseconds, refusing what does not fit.
fn secs_to_ms(secs: i64) -> Result<i64, IpcError> {
    Ok(keysmith_core::validate::secs_to_ms(secs)?)
}

fn no_pending_reveal(id: &str) -> IpcError {
    IpcError {
        code: ErrorCode::NotFound,
        message: format!("The key {id} is no longer on display: a key is shown only once."),
    }
}

fn keyring_error(e: impl std::fmt::Display) -> IpcError {
    IpcError {
        code: ErrorCode::KeyringUnavailable,
        message: format!("The OS keyring cannot keep the team server session: {e}"),
    }
}

/// Whether an error means the session is gone (ended, expired, the member removed).
fn session_gone(e: &IpcError) -> bool {
    matches!(e.code, ErrorCode::SessionExpired | ErrorCode::NotSignedIn)
}

/// The idle time after which the app locks: `KEYSMITH_IDLE_LOCK_SECS`, default 5 minutes.
pub fn idle_limit_from_env() -> Duration {
    let secs = std::env::var("KEYSMITH_IDLE_LOCK_SECS")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .filter(|s| (10..=86_400).contains(s))
        .unwrap_or(300);
    Duration::from_secs(secs)
}

impl AppState {
    /// A state on `registry` ("this computer only"), fixed in that mode.
    pub fn new(registry: Registry) -> AppState {
        AppState::with_idle_limit(registry, idle_limit_from_env())
    }

    pub fn with_idle_limit(registry: Registry, idle_limit: Duration) -> AppState {
        let secrets = registry.secrets();
        AppState::build(
            Backend::Local(Arc::new(registry)),
            None,
            secrets,
            idle_limit,
        )
    }

    fn build(
        backend: Backend,
        data_dir: Option<PathBuf>,
        secrets: Arc<dyn SecretStore>,
        idle_limit: Duration,
    ) -> AppState {
        AppState {
            backend: RwLock::new(backend),
            data_dir,
            secrets,
            session: Mutex::new(None),
            notice: Mutex::new(None),
            reveal: Mutex::new(None),
            unsaved: Mutex::new(None),
            clipboard: Arc::new(Clipboard::default()),
            copied: Arc::new(Mutex::new(None)),
            copies: Arc::new(std::sync::atomic::AtomicU64::new(0)),
            idle_limit,
            listed: Mutex::new(None),
        }
    }

    /// The app's state on the data directory `dir`: joined to the team server that
    /// `team-server.json` names, or else this computer's registry (when its database exists;
    /// before the first-run choice there is none, and joining a server never makes one). A
    /// session token a crashed run left in the keyring is ended on the server.
    ///
    /// # Errors
    /// An unreadable `team-server.json` or CA file; the registry's errors.
    pub async fn open(
        dir: PathBuf,
        secrets: Arc<dyn SecretStore>,
        idle_limit: Duration,
    ) -> Result<AppState, IpcError> {
        // Made now, with its mode, also before the first-run choice: joining a server keeps
        // `team-server.json` there.
        keysmith_core::data_dir::ensure(&dir)?;
        let backend = match TeamConfig::load(&dir)? {
            Some(config) => {
                let remote = config.remote()?;
                Backend::Server { remote, config }
            }
            None => local_backend(&dir, &secrets).await?,
        };
        let state = AppState::build(backend, Some(dir), secrets, idle_limit);
        state.end_left_over_session().await;
        Ok(state)
    }

    /// A state joined to `config`'s server, for tests (no data directory).
    #[cfg(test)]
    fn joined(config: TeamConfig, secrets: Arc<dyn SecretStore>) -> AppState {
        let remote = config.remote().expect("a usable test config");
        AppState::build(
            Backend::Server { remote, config },
            None,
            secrets,
            idle_limit_from_env(),
        )
    }

    fn backend(&self) -> Backend {
        self.backend
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    fn set_backend(&self, backend: Backend) {
        *self
            .backend
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = backend;
    }

    async fn keyring<T: Send + 'static>(
        &self,
        f: impl FnOnce(&dyn SecretStore) -> Result<T, keysmith_core::secret_store::SecretStoreError>
            + Send
            + 'static,
    ) -> Result<T, IpcError> {
        let secrets = Arc::clone(&self.secrets);
        tokio::task::spawn_blocking(move || f(secrets.as_ref()))
            .await
            .map_err(keyring_error)?
            .map_err(keyring_error)
    }

    /// Keeps the session token in the keyring entry `entry` (so that a crash does not leave
    /// a session nobody can end).
    async fn keep_token(
        &self,
        entry: &str,
        token: Option<SessionTokenText>,
    ) -> Result<(), IpcError> {
        let Some(token) = token else { return Ok(()) };
        let entry = entry.to_owned();
        self.keyring(move |s| s.set(&entry, token.expose().as_bytes()))
            .await
    }

    /// Ends on the server a session whose token a run that never locked left in the keyring.
    async fn end_left_over_session(&self) {
        let Backend::Server { remote, config } = self.backend() else {
            return;
        };
        let entry = config.session_entry.clone();
        let found = match self.keyring(move |s| s.get(&entry)).await {
            Ok(found) => found,
            Err(e) => {
                tracing::warn!(error = %e.message, "could not look for a left-over session");
                return;
            }
        };
        let Some(bytes) = found else { return };
        let token = SessionTokenText::new(String::from_utf8_lossy(&bytes).into_owned());
        let entry = config.session_entry.clone();
        if let Err(e) = self.keyring(move |s| s.delete(&entry)).await {
            tracing::warn!(error = %e.message, "could not delete a left-over session");
        }
        tauri::async_runtime::spawn(async move {
            match remote.end_session(&token).await {
                Ok(()) => tracing::info!("ended the session a previous run left open"),
                Err(e) => tracing::info!(error = %e.message, "a left-over session was not ended"),
            }
        });
    }

    /// The signed-in member's id, if the session has not gone idle; counts as activity.
    fn session_member(&self) -> Result<String, IpcError> {
        let mut guard = lock(&self.session);
        let expired = guard
            .as_ref()
            .is_some_and(|s| s.last_activity.elapsed() > self.idle_limit);
        if expired {
            drop(guard);
            self.lock();
            let message = format!(
                "Keysmith locked itself after {} minutes without activity.",
                self.idle_limit.as_secs() / 60
            );
            *lock(&self.notice) = Some(message.clone());
            return Err(IpcError {
                code: ErrorCode::NotSignedIn,
                message,
            });
        }
        match guard.as_mut() {
            Some(s) => {
                s.last_activity = Instant::now();
                Ok(s.member.id.clone())
            }
            None => Err(Error::NotSignedIn.to_ipc()),
        }
    }

    /// The signed-in member's operations, on this computer or on the team server. On this
    /// computer the member is re-read (a removed member is signed out) and nothing but the
    /// passphrase change is allowed until an initial passphrase is changed; the team server
    /// checks both itself.
    async fn team(&self) -> Result<Team, IpcError> {
        let id = self.session_member()?;
        match self.backend() {
            Backend::Local(registry) => {
                let member = match registry.actor(&id).await {
                    Ok(m) => m,
                    Err(e) => {
                        self.lock();
                        return Err(e.to_ipc());
                    }
                };
                if member.must_change_passphrase {
                    return Err(IpcError {
                        code: ErrorCode::PassphraseChangeRequired,
                        message: "Change your initial passphrase first.".into(),
                    });
                }
                Ok(Team::Local {
                    registry,
                    member_id: id,
                })
            }
            Backend::Server { remote, .. } => Ok(Team::Remote(remote)),
            Backend::Fresh => Err(Error::NotInitialized.to_ipc()),
        }
    }

    /// Passes `result` on; an answer that the session is gone locks the app (the UI goes
    /// back to sign-in and says why).
    fn checked<T>(&self, result: Result<T, IpcError>) -> Result<T, IpcError> {
        if let Err(e) = &result {
            if session_gone(e) && lock(&self.session).is_some() {
                self.lock();
                *lock(&self.notice) = Some(e.message.clone());
            }
        }
        result
    }

    fn start_session(&self, member: MemberSummary, must_change_passphrase: bool) {
        *lock(&self.notice) = None;
        *lock(&self.session) = Some(Session {
            member,
            must_change_passphrase,
            last_activity: Instant::now(),
        });
    }

    /// Whether set-up was done, who is signed in (re-read: a removed member or an ended
    /// session is signed out), and where the account lives.
    pub async fn session_status(&self) -> Result<SessionStatus, IpcError> {
        let backend = self.backend();
        let (initialized, server) = match &backend {
            Backend::Local(registry) => (registry.is_initialized().await?, None),
            Backend::Server { remote, .. } => (true, Some(remote.url().to_owned())),
            Backend::Fresh => (false, None),
        };
        let mut signed_in = None;
        let mut must_change_passphrase = false;
        if let Ok(id) = self.session_member() {
            match &backend {
                Backend::Local(registry) => match registry.actor(&id).await {
                    Ok(m) => {
                        must_change_passphrase = m.must_change_passphrase;
                        signed_in = Some(m.summary());
                    }
                    Err(_) => self.lock(),
                },
                Backend::Server { remote, .. } => match self.checked(remote.current().await) {
                    Ok(current) => {
                        must_change_passphrase = current.must_change_passphrase;
                        if let Some(s) = lock(&self.session).as_mut() {
                            s.member = current.member.clone();
                            s.must_change_passphrase = current.must_change_passphrase;
                        }
                        signed_in = Some(current.member);
                    }
                    Err(e) if session_gone(&e) => {}
                    // The server is away for now: the member stays signed in as they were;
                    // the next operation says the server cannot be reached.
                    Err(_) => {
                        if let Some(s) = lock(&self.session).as_ref() {
                            must_change_passphrase = s.must_change_passphrase;
                            signed_in = Some(s.member.clone());
                        }
                    }
                },
                Backend::Fresh => self.lock(),
            }
        }
        Ok(SessionStatus {
            initialized,
            must_change_passphrase,
            signed_in,
            idle_lock_secs: self.idle_limit.as_secs(),
            server,
            notice: lock(&self.notice).clone(),
        })
    }

    /// First run on this computer: creates the account and signs its Owner in.
    pub async fn create_account(
        &self,
        req: CreateAccountRequest,
    ) -> Result<MemberSummary, IpcError> {
        let registry = match self.backend() {
            Backend::Local(registry) => registry,
            Backend::Fresh => {
                let Some(dir) = self.data_dir.as_deref() else {
                    return Err(fixed_mode());
                };
                let registry = Arc::new(Registry::open(dir, Arc::clone(&self.secrets)).await?);
                self.set_backend(Backend::Local(Arc::clone(&registry)));
                registry
            }
            Backend::Server { .. } => {
                return Err(IpcError {
                    code: ErrorCode::AlreadyInitialized,
                    message: "This app is joined to a team server: the account is set up there, \
                          and its Owner adds you as a member."
                        .into(),
                })
            }
        };
        let owner = registry
            .create_account(&req.owner_name, req.passphrase.expose())
            .await?;
        let summary = owner.summary();
        self.start_session(summary.clone(), false);
        Ok(summary)
    }

    /// Signs in: on this computer, or on the team server (whose session token the keyring
    /// keeps until the app locks).
    pub async fn unlock(&self, req: UnlockRequest) -> Result<MemberSummary, IpcError> {
        match self.backend() {
            Backend::Local(registry) => {
                let member = registry.sign_in(&req.name, req.passphrase.expose()).await?;
                let summary = member.summary();
                self.start_session(summary.clone(), member.must_change_passphrase);
                Ok(summary)
            }
            Backend::Fresh => Err(Error::NotInitialized.to_ipc()),
            Backend::Server { remote, config } => {
                let res = remote.sign_in(&req.name, req.passphrase.expose()).await?;
                if let Err(e) = self
                    .keep_token(&config.session_entry, Some(res.token.clone()))
                    .await
                {
                    remote.sign_out().await;
                    return Err(e);
                }
                self.start_session(res.member.clone(), res.must_change_passphrase);
                Ok(res.member)
            }
        }
    }

    /// Signs out and drops everything the session held: the member, any key on display, a
    /// copied key still on the clipboard (as KeePassXC clears it on lock), and on a team
    /// server the session token (from the keyring at once; the server is told in the
    /// background, so a lock never waits on the network).
    pub fn lock(&self) {
        *lock(&self.session) = None;
        *lock(&self.listed) = None;
        self.drop_reveal();
        if let Some(fingerprint) = lock(&self.copied).take() {
            match self.clipboard.clear_if_holds(&fingerprint) {
                Ok(true) => tracing::info!("clipboard cleared on lock"),
                Ok(false) => {}
                Err(e) => tracing::warn!(error = %e, "could not clear the clipboard"),
            }
        }
        if let Backend::Server { remote, config } = self.backend() {
            // Also when the client forgot the token already (the server said it ended).
            if let Err(e) = self.secrets.delete(&config.session_entry) {
                tracing::warn!(error = %e, "could not drop the session token from the keyring");
            }
            if let Some(token) = remote.take_token() {
                tauri::async_runtime::spawn(async move {
                    if let Err(e) = remote.end_session(&token).await {
                        tracing::info!(error = %e.message, "the server did not end the session");
                    }
                });
            }
        }
    }

    pub async fn change_passphrase(&self, req: ChangePassphraseRequest) -> Result<(), IpcError> {
        let id = self.session_member()?;
        match self.backend() {
            Backend::Local(registry) => Ok(registry
                .change_passphrase(&id, req.current.expose(), req.new.expose())
                .await?),
            Backend::Fresh => Err(Error::NotInitialized.to_ipc()),
            Backend::Server { remote, config } => {
                // The server ends every session of the member's and answers with a new one.
                let res = self.checked(
                    remote
                        .change_passphrase(req.current.expose(), req.new.expose())
                        .await,
                )?;
                self.keep_token(&config.session_entry, Some(res.token))
                    .await?;
                if let Some(s) = lock(&self.session).as_mut() {
                    s.must_change_passphrase = false;
                }
                Ok(())
            }
        }
    }

    /// "Join a team server": checks that `req.url` serves Keysmith's API in this version,
    /// then keeps it in `team-server.json`; sign-in goes there from now on. Only while
    /// nobody is signed in.
    ///
    /// # Errors
    /// [`ErrorCode::ServerUnavailable`] (a bad URL, plain HTTP to another computer, no
    /// answer, not Keysmith, another version, an unreadable CA file);
    /// [`ErrorCode::NotPermitted`] while signed in.
    pub async fn join_server(&self, req: JoinServerRequest) -> Result<SessionStatus, IpcError> {
        if lock(&self.session).is_some() {
            return Err(IpcError {
                code: ErrorCode::NotPermitted,
                message: "Lock Keysmith before joining a team server.".into(),
            });
        }
        let Some(dir) = self.data_dir.clone() else {
            return Err(fixed_mode());
        };
        let url = keysmith_client::check_url(&req.url, req.allow_plain_http)?;
        let ca_file = req
            .ca_file
            .map(|f| f.trim().to_owned())
            .filter(|f| !f.is_empty())
            .map(PathBuf::from);
        let config = TeamConfig::new(url, req.allow_plain_http, ca_file);
        let remote = config.remote()?;
        remote.check_server().await?;
        config.save(&dir)?;
        tracing::info!(server = %config.url, "joined a team server");
        self.set_backend(Backend::Server { remote, config });
        self.session_status().await
    }

    /// Leaves the team server: back to "this computer only" (the local account, if one was
    /// made before, is as it was). Only while nobody is signed in.
    ///
    /// # Errors
    /// [`ErrorCode::NotPermitted`] while signed in; the registry's errors.
    pub async fn leave_server(&self) -> Result<SessionStatus, IpcError> {
        if lock(&self.session).is_some() {
            return Err(IpcError {
                code: ErrorCode::NotPermitted,
                message: "Lock Keysmith before leaving the team server.".into(),
            });
        }
        let Some(dir) = self.data_dir.clone() else {
            return Err(fixed_mode());
        };
        if let Backend::Server { .. } = self.backend() {
            let local = local_backend(&dir, &self.secrets).await?;
            TeamConfig::remove(&dir)?;
            tracing::info!("left the team server");
            self.set_backend(local);
        }
        *lock(&self.notice) = None;
        self.session_status().await
    }

    /// "Scan a folder": this computer's account names the keys found in `req.path` (a
    /// folder or file; a git repository's history too when it is one's top). Any signed-in
    /// member may scan: only who holds a key learns what it is, as with `keysmith verify`.
    ///
    /// # Errors
    /// [`ErrorCode::InvalidPath`] (empty, or nothing there), [`ErrorCode::NotPermitted`] on
    /// a team server (the server holds the pepper: scan there with `keysmith scan`), the
    /// registry's errors.
    pub async fn scan_folder(&self, req: ScanRequest) -> Result<ScanReport, IpcError> {
        let team = self.team().await?;
        let Team::Local { registry, .. } = team else {
            return Err(IpcError {
                code: ErrorCode::NotPermitted,
                message: "On a team server the keys are checked there: run `keysmith scan PATH` \
                          on the server's host (it holds the pepper)."
                    .into(),
            });
        };
        let typed = req.path.trim();
        let path = PathBuf::from(typed);
        if typed.is_empty() {
            return Err(
                Error::InvalidPath("Type the folder to scan, e.g. /home/you/src.".into()).to_ipc(),
            );
        }
        if !path.exists() {
            return Err(Error::InvalidPath(format!(
                "Nothing is at {}: check the folder's path.",
                path.display()
            ))
            .to_ipc());
        }
        let report = registry
            .scan(keysmith_core::scan::ScanTarget::Paths {
                paths: vec![path],
                history: true,
            })
            .await?;
        Ok(report)
    }

    pub async fn list_keys(&self) -> Result<Vec<KeySummary>, IpcError> {
        let team = self.team().await?;
        self.checked(team.list_keys().await)
    }

    /// The key list as the keys page takes it: `FINGERPRINT\nJSON`, where JSON is the array
    /// of [`KeySummary`] (only the newest `first` with `first`) and FINGERPRINT the 64 hex
    /// digits of its SHA-256; or only FINGERPRINT when it equals `known`, the one the page
    /// already holds. Bytes rather than
    /// a JSON value over IPC: with 10,000 keys the webview parses one string in a few
    /// milliseconds, where converting each object field by field took hundreds; and the
    /// page's refresh every few seconds costs the webview nothing while nothing changed.
    ///
    /// On this computer the refresh costs the backend nothing either: while
    /// [`Registry::change_counter`] says nothing was committed (by this app, a verifier, or a
    /// hand edit) and no key's expiry passed, the whole list is not read again.
    pub async fn key_list(
        &self,
        known: Option<&str>,
        first: Option<u32>,
    ) -> Result<Vec<u8>, IpcError> {
        use keysmith_core::clock::Clock as _;
        use sha2::Digest as _;
        use std::fmt::Write as _;
        let team = self.team().await?;
        let member_id = self.session_member()?;
        // The whole list is built again (10,000 keys: about 250 ms of SQL and MAC checks)
        // only when the database changed or an expiry passed since it was last sent.
        let counter = match first {
            None => self.checked(team.change_counter().await)?,
            Some(_) => None,
        };
        let now = keysmith_core::clock::SystemClock.now_ms();
        if let (Some(known), Some(counter)) = (known, counter) {
            let same = lock(&self.listed)
                .as_ref()
                .is_some_and(|l| l.still(&member_id, counter, now, known));
            if same {
                return Ok(known.as_bytes().to_vec());
            }
        }
        let keys = self.checked(team.list_newest_keys(first).await)?;
        let json = serde_json::to_vec(&keys).map_err(|e| IpcError {
            code: keysmith_types::ErrorCode::Internal,
            message: format!("Cannot send the key list: {e}"),
        })?;
        let mut answer = String::with_capacity(64);
        for byte in sha2::Sha256::digest(&json) {
            let _ = write!(answer, "{byte:02x}");
        }
        if let Some(counter) = counter {
            *lock(&self.listed) = Some(Listed {
                member_id,
                counter,
                until: keys
                    .iter()
                    .filter_map(|k| k.expires_at)
                    .filter(|&at| at > now)
                    .min(),
                fingerprint: answer.clone(),
            });
        }
        let mut answer = answer.into_bytes();
        if known.is_some_and(|k| k.as_bytes() == answer.as_slice()) {
            return Ok(answer);
        }
        answer.push(b'\n');
        answer.extend_from_slice(&json);
        Ok(answer)
    }

    /// Generates a key and starts its one-time display (replacing any earlier one). A key
    /// the server did not confirm as stored is never shown.
    pub async fn generate_key(&self, req: GenerateKeyRequest) -> Result<KeyReveal, IpcError> {
        let team = self.team().await?;
        let catalog = if req.scopes.is_empty() {
            ScopeCatalog::builtin()
        } else {
            self.scope_catalog()?
        };
        let reveal = self.checked(team.generate_key(&req, &catalog).await)?;
        Ok(self.start_reveal(reveal))
    }

    /// The scopes the signed-in member may give a key: the built-in `read-only` and those
    /// of `policy.toml` in the data directory (read on each call, so an edited file counts at
    /// once); on a team server, the server's.
    pub async fn list_scopes(&self) -> Result<Vec<ScopeInfo>, IpcError> {
        let team = self.team().await?;
        let catalog = self.scope_catalog()?;
        self.checked(team.scopes(&catalog).await)
    }

    /// This computer's scope catalogue (`policy.toml` in the data directory, if any).
    fn scope_catalog(&self) -> Result<ScopeCatalog, IpcError> {
        match self.data_dir.as_deref() {
            None => Ok(ScopeCatalog::builtin()),
            Some(dir) => ScopeCatalog::of_data_dir(dir).map_err(|e| IpcError {
                code: ErrorCode::InvalidScope,
                message: format!("The policy file that defines the scopes is refused: {e}"),
            }),
        }
    }

    /// Rolls a key: its replacement starts its one-time display; the old key keeps working
    /// for the grace period.
    pub async fn roll_key(&self, req: RollKeyRequest) -> Result<KeyReveal, IpcError> {
        let team = self.team().await?;
        let grace_ms = secs_to_ms(req.grace_secs)?;
        let reveal = self.checked(team.roll_key(&req.id, grace_ms).await)?;
        Ok(self.start_reveal(reveal))
    }

    /// The signed-in member's id ("" when locked), without counting as activity.
    fn signed_in_id(&self) -> String {
        lock(&self.session)
            .as_ref()
            .map(|s| s.member.id.clone())
            .unwrap_or_default()
    }

    fn start_reveal(&self, reveal: KeyReveal) -> KeyReveal {
        let member_id = self.signed_in_id();
        let replaced = lock(&self.reveal).replace(PendingReveal {
            key: reveal.key.clone(),
            member_id,
            secret: reveal.secret.clone(),
            copied: false,
        });
        if let Some(earlier) = replaced {
            self.note_unsaved(earlier);
        }
        reveal
    }

    /// Drops the key on display, if any; one nobody copied is offered for revoking later.
    fn drop_reveal(&self) {
        let dropped = lock(&self.reveal).take();
        if let Some(pending) = dropped {
            self.note_unsaved(pending);
        }
    }

    fn note_unsaved(&self, pending: PendingReveal) {
        if !pending.copied {
            *lock(&self.unsaved) = Some(UnsavedKey {
                member_id: pending.member_id,
                key_id: pending.key.id,
            });
        }
    }

    /// The window's page (re)loaded: no dialog shows a key any more, so a key still held
    /// for display is dropped (a reload would otherwise leave it held, and closing the
    /// window refused, until Lock). One nobody copied is offered for revoking.
    pub fn page_loaded(&self) {
        self.drop_reveal();
    }

    /// The key the signed-in member generated whose one-time display ended uncopied (the
    /// app locked, the page reloaded), once, if it still works: the UI offers to revoke it.
    /// `None` when there is none, or it was another member's (kept for them).
    ///
    /// # Errors
    /// [`ErrorCode::NotSignedIn`] and the list's errors.
    pub async fn take_unsaved_key(&self) -> Result<Option<KeySummary>, IpcError> {
        let team = self.team().await?;
        let member_id = self.signed_in_id();
        let taken = {
            let mut guard = lock(&self.unsaved);
            if guard.as_ref().is_some_and(|u| u.member_id == member_id) {
                guard.take()
            } else {
                None
            }
        };
        let Some(unsaved) = taken else {
            return Ok(None);
        };
        let keys = self.checked(team.list_keys().await)?;
        Ok(keys.into_iter().find(|k| {
            k.id == unsaved.key_id && matches!(k.status, KeyStatus::Active | KeyStatus::Paused)
        }))
    }

    /// Copies the key on display to the clipboard, audits it, and schedules the clearing.
    pub async fn copy_key(&self, req: RevealRequest) -> Result<CopyReceipt, IpcError> {
        let team = self.team().await?;
        let fingerprint = {
            let mut guard = lock(&self.reveal);
            let pending = guard
                .as_mut()
                .filter(|p| p.key.id == req.id)
                .ok_or_else(|| no_pending_reveal(&req.id))?;
            let fp = self
                .clipboard
                .copy_secret(pending.secret.expose())
                .map_err(|e| IpcError {
                    code: ErrorCode::Clipboard,
                    message: e.to_string(),
                })?;
            pending.copied = true;
            fp
        };
        *lock(&self.copied) = Some(fingerprint);
        self.checked(team.record_copy(&req.id).await)?;
        let after = clipboard::clear_after();
        let cb = Arc::clone(&self.clipboard);
        let copied = Arc::clone(&self.copied);
        let copies = Arc::clone(&self.copies);
        let this_copy = copies.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
        tauri::async_runtime::spawn(async move {
            tokio::time::sleep(after).await;
            if copies.load(std::sync::atomic::Ordering::SeqCst) != this_copy {
                return; // copied again since: that copy's own clearing takes over
            }
            {
                let mut last = lock(&copied);
                if *last == Some(fingerprint) {
                    *last = None;
                }
            }
            match cb.clear_if_holds(&fingerprint) {
                Ok(true) => tracing::info!("clipboard cleared"),
                Ok(false) => {}
                Err(e) => tracing::warn!(error = %e, "could not clear the clipboard"),
            }
        });
        Ok(CopyReceipt {
            clear_after_secs: u32::try_from(after.as_secs()).unwrap_or(u32::MAX),
        })
    }

    /// Ends the one-time display: the key is dropped (and zeroized) for good.
    pub fn finish_reveal(&self, req: RevealRequest) -> Result<(), IpcError> {
        let mut guard = lock(&self.reveal);
        match guard.as_ref() {
            Some(p) if p.key.id == req.id => {
                *guard = None;
                Ok(())
            }
            _ => Err(no_pending_reveal(&req.id)),
        }
    }

    /// Whether a key is on display that was not copied yet (closing the window asks first).
    pub fn reveal_uncopied(&self) -> bool {
        lock(&self.reveal).as_ref().is_some_and(|p| !p.copied)
    }

    pub async fn revoke_key(&self, req: RevokeKeyRequest) -> Result<KeySummary, IpcError> {
        let team = self.team().await?;
        self.checked(team.revoke_key(&req.id, &req.confirmation).await)
    }

    pub async fn set_key_paused(&self, req: PauseKeyRequest) -> Result<KeySummary, IpcError> {
        let team = self.team().await?;
        self.checked(team.set_key_paused(&req.id, req.pause).await)
    }

    /// A key's use per UTC day, as the verifiers counted it (on a team server, the server's
    /// answer).
    pub async fn key_usage(&self, req: KeyUsageRequest) -> Result<KeyUsage, IpcError> {
        let team = self.team().await?;
        self.checked(team.key_usage(&req.id, req.days).await)
    }

    pub async fn list_members(&self) -> Result<Vec<MemberListing>, IpcError> {
        let team = self.team().await?;
        self.checked(team.list_members().await)
    }

    pub async fn add_member(&self, req: AddMemberRequest) -> Result<MemberSummary, IpcError> {
        let team = self.team().await?;
        let added = team
            .add_member(&req.name, req.role, req.initial_passphrase.expose())
            .await;
        self.checked(added)
    }

    pub async fn change_role(&self, req: ChangeRoleRequest) -> Result<MemberSummary, IpcError> {
        let team = self.team().await?;
        self.checked(team.change_role(&req.member_id, req.role).await)
    }

    pub async fn removal_preview(&self, req: MemberRequest) -> Result<Vec<KeySummary>, IpcError> {
        let team = self.team().await?;
        self.checked(team.removal_preview(&req.member_id).await)
    }

    pub async fn remove_member(
        &self,
        req: RemoveMemberRequest,
    ) -> Result<Vec<KeySummary>, IpcError> {
        let team = self.team().await?;
        self.checked(team.remove_member(&req.member_id, &req.confirmation).await)
    }

    pub async fn transfer_ownership(&self, req: MemberRequest) -> Result<MemberSummary, IpcError> {
        let team = self.team().await?;
        self.checked(team.transfer_ownership(&req.member_id).await)
    }

    pub async fn audit_report(&self, filter: AuditFilter) -> Result<AuditReport, IpcError> {
        let team = self.team().await?;
        self.checked(team.audit_report(&filter).await)
    }
}

/// This computer's registry in `dir` if its database exists, else [`Backend::Fresh`].
async fn local_backend(dir: &Path, secrets: &Arc<dyn SecretStore>) -> Result<Backend, IpcError> {
    if dir.join(keysmith_core::store::DB_FILE).is_file() {
        Ok(Backend::Local(Arc::new(
            Registry::open(dir, Arc::clone(secrets)).await?,
        )))
    } else {
        Ok(Backend::Fresh)
    }
}

fn fixed_mode() -> IpcError {
    IpcError {
        code: ErrorCode::Internal,
        message: "This window has no data directory to keep a team server in.".into(),
    }
}

#[cfg(test)]
mod tests {
    //! The command bodies as a direct IPC call reaches them (without a webview).
    use std::sync::Arc;

    use std::time::Duration;

    use super::Listed;
    use keysmith_core::{store, testkit, MemoryStore, Registry, SecretStore};
    use keysmith_types::{
        AddMemberRequest, AuditFilter, ChangePassphraseRequest, ChangeRoleRequest,
        CreateAccountRequest, ErrorCode, GenerateKeyRequest, JoinServerRequest, KeyUsageRequest,
        MemberRequest, Passphrase, PauseKeyRequest, RemoveMemberRequest, RevealRequest,
        RevokeKeyRequest, Role, RollKeyRequest, SessionTokenText, UnlockRequest,
    };

    use super::{AppState, Backend};
    use crate::team::TeamConfig;

    const PASS: &str = "correct horse battery";

    async fn state() -> (tempfile::TempDir, AppState) {
        let dir = tempfile::tempdir().unwrap();
        let pool = store::open(&dir.path().join(store::DB_FILE)).await.unwrap();
        let registry = Registry::with_parts(
            pool,
            Arc::new(MemoryStore::new()),
            Arc::new(keysmith_core::clock::SystemClock),
        );
        (dir, AppState::new(registry))
    }

    /// A state whose account exists, with its Owner (Olive) signed in.
    async fn signed_in_owner() -> (tempfile::TempDir, AppState) {
        let (dir, s) = state().await;
        s.create_account(CreateAccountRequest {
            owner_name: "Olive".into(),
            passphrase: Passphrase::new(PASS),
        })
        .await
        .unwrap();
        (dir, s)
    }

    /// The keys page's answer: fingerprint and list, or only the fingerprint when the page
    /// already has that list; any change (a new key, a revoke) gives a new fingerprint.
    #[tokio::test]
    async fn the_key_list_comes_once_per_change() {
        let (_dir, s) = signed_in_owner().await;
        let split = |answer: &[u8]| -> (String, Option<Vec<keysmith_types::KeySummary>>) {
            match answer.iter().position(|&b| b == b'\n') {
                Some(at) => (
                    String::from_utf8(answer[..at].to_vec()).unwrap(),
                    Some(serde_json::from_slice(&answer[at + 1..]).unwrap()),
                ),
                None => (String::from_utf8(answer.to_vec()).unwrap(), None),
            }
        };
        let (empty, keys) = split(&s.key_list(None, None).await.unwrap());
        assert_eq!(keys.unwrap().len(), 0);
        assert_eq!(empty.len(), 64);
        assert!(empty.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_eq!(
            split(&s.key_list(Some(&empty), None).await.unwrap()),
            (empty.clone(), None)
        );

        let reveal = s.generate_key(named("Deploy")).await.unwrap();
        s.finish_reveal(RevealRequest {
            id: reveal.key.id.clone(),
        })
        .unwrap();
        let (one, keys) = split(&s.key_list(Some(&empty), None).await.unwrap());
        assert_ne!(one, empty);
        let keys = keys.expect("a changed list comes whole");
        assert_eq!(keys, s.list_keys().await.unwrap());
        assert_eq!(keys[0].id, reveal.key.id);
        assert_eq!(split(&s.key_list(Some(&one), None).await.unwrap()).1, None);
        // A fingerprint the page did not get from here is simply not equal.
        assert!(split(&s.key_list(Some("zz"), None).await.unwrap())
            .1
            .is_some());

        s.revoke_key(RevokeKeyRequest {
            id: reveal.key.id.clone(),
            confirmation: "REVOKE".into(),
        })
        .await
        .unwrap();
        let (revoked, keys) = split(&s.key_list(Some(&one), None).await.unwrap());
        assert_ne!(revoked, one);
        assert_eq!(keys.unwrap()[0].status, keysmith_types::KeyStatus::Revoked);

        // The first page: only the newest.
        let newer = s.generate_key(named("Newer")).await.unwrap();
        let (_, page) = split(&s.key_list(None, Some(1)).await.unwrap());
        let page = page.unwrap();
        assert_eq!(page.len(), 1);
        assert_eq!(page[0].id, newer.key.id);
        let (_, all) = split(&s.key_list(None, Some(50)).await.unwrap());
        assert_eq!(all.unwrap().len(), 2);
    }

    /// The refresh does not read the list again while nothing changed, yet it sees every
    /// change: a commit from another connection (a verifier's last use, a hand edit) and a
    /// passing expiry.
    #[tokio::test]
    async fn the_refresh_sees_changes_from_anywhere() {
        let (dir, s) = signed_in_owner().await;
        let fingerprint = |answer: Vec<u8>| -> String {
            let end = answer
                .iter()
                .position(|&b| b == b'\n')
                .unwrap_or(answer.len());
            String::from_utf8(answer[..end].to_vec()).unwrap()
        };
        let reveal = s.generate_key(named("Deploy")).await.unwrap();
        let id = reveal.key.id.clone();
        s.finish_reveal(RevealRequest { id: id.clone() }).unwrap();
        let first = fingerprint(s.key_list(None, None).await.unwrap());
        assert_eq!(
            s.key_list(Some(&first), None).await.unwrap(),
            first.as_bytes()
        );

        // Another process's connection, as a verifier's: its commit is seen.
        let other = store::open(&dir.path().join(store::DB_FILE)).await.unwrap();
        store::touch_last_used(&other, &id, 1_234).await.unwrap();
        let answer = s.key_list(Some(&first), None).await.unwrap();
        assert_ne!(answer, first.as_bytes(), "the verifier's write went unseen");
        let used = fingerprint(answer);
        assert_eq!(s.list_keys().await.unwrap()[0].last_used_at, Some(1_234));
        assert_eq!(
            s.key_list(Some(&used), None).await.unwrap(),
            used.as_bytes()
        );

        // A hand edit (a revoke with no audit entry) shows as tampered at the next refresh.
        store::revoke_key(&other, &id, 1_235).await.unwrap();
        let answer = s.key_list(Some(&used), None).await.unwrap();
        let at = answer.iter().position(|&b| b == b'\n').unwrap();
        let keys: Vec<keysmith_types::KeySummary> =
            serde_json::from_slice(&answer[at + 1..]).unwrap();
        assert_eq!(keys[0].status, keysmith_types::KeyStatus::Tampered);

        // The list's statuses change when an expiry passes, with no commit.
        let listed = Listed {
            member_id: "m".into(),
            counter: 7,
            until: Some(1_000),
            fingerprint: "f".into(),
        };
        assert!(listed.still("m", 7, 999, "f"));
        assert!(!listed.still("m", 7, 1_000, "f"), "an expiry passed");
        assert!(!listed.still("m", 8, 999, "f"), "something was committed");
        assert!(!listed.still("n", 7, 999, "f"), "another member signed in");
        assert!(
            !listed.still("m", 7, 999, "g"),
            "the page holds another list"
        );
        let forever = Listed {
            until: None,
            ..listed
        };
        assert!(forever.still("m", 7, i64::MAX, "f"));
    }

    #[tokio::test]
    async fn commands_refuse_until_someone_signs_in() {
        let (_dir, s) = state().await;
        let status = s.session_status().await.unwrap();
        assert!(!status.initialized && status.signed_in.is_none());
        assert_eq!(
            s.list_keys().await.unwrap_err().code,
            ErrorCode::NotSignedIn
        );
        let req = GenerateKeyRequest {
            name: "x".into(),
            expires_in_secs: None,
            allowed_sources: Vec::new(),
            rate_limit: None,
            scopes: Vec::new(),
        };
        assert_eq!(
            s.generate_key(req).await.unwrap_err().code,
            ErrorCode::NotSignedIn
        );

        let owner = s
            .create_account(CreateAccountRequest {
                owner_name: "Olive".into(),
                passphrase: Passphrase::new(PASS),
            })
            .await
            .unwrap();
        assert_eq!(s.session_status().await.unwrap().signed_in, Some(owner));
        s.lock();
        assert_eq!(
            s.list_keys().await.unwrap_err().code,
            ErrorCode::NotSignedIn
        );
        let wrong = UnlockRequest {
            name: "Olive".into(),
            passphrase: Passphrase::new("not it at all"),
        };
        assert_eq!(
            s.unlock(wrong).await.unwrap_err().code,
            ErrorCode::BadCredentials
        );
        let right = UnlockRequest {
            name: "olive".into(),
            passphrase: Passphrase::new(PASS),
        };
        assert_eq!(s.unlock(right).await.unwrap().name, "Olive");
    }

    #[tokio::test]
    async fn the_key_is_held_only_until_done_or_lock() {
        let (_dir, s) = signed_in_owner().await;
        let reveal = s
            .generate_key(GenerateKeyRequest {
                name: "CRM".into(),
                expires_in_secs: None,
                allowed_sources: Vec::new(),
                rate_limit: None,
                scopes: Vec::new(),
            })
            .await
            .unwrap();
        let id = reveal.key.id.clone();
        assert!(s.reveal_uncopied());
        s.finish_reveal(RevealRequest { id: id.clone() }).unwrap();
        assert!(!s.reveal_uncopied());
        let again = s.finish_reveal(RevealRequest { id: id.clone() });
        assert_eq!(again.unwrap_err().code, ErrorCode::NotFound);
        let copy = s.copy_key(RevealRequest { id: id.clone() }).await;
        assert_eq!(copy.unwrap_err().code, ErrorCode::NotFound);

        let second = s
            .generate_key(GenerateKeyRequest {
                name: "ERP".into(),
                expires_in_secs: None,
                allowed_sources: Vec::new(),
                rate_limit: None,
                scopes: Vec::new(),
            })
            .await
            .unwrap();
        s.lock();
        assert!(!s.reveal_uncopied());
        let gone = s.finish_reveal(RevealRequest { id: second.key.id });
        assert_eq!(gone.unwrap_err().code, ErrorCode::NotFound);
    }

    fn named(name: &str) -> GenerateKeyRequest {
        GenerateKeyRequest {
            name: name.into(),
            expires_in_secs: None,
            allowed_sources: Vec::new(),
            rate_limit: None,
            scopes: Vec::new(),
        }
    }

    fn sign_in(name: &str, passphrase: &str) -> UnlockRequest {
        UnlockRequest {
            name: name.into(),
            passphrase: Passphrase::new(passphrase),
        }
    }

    /// A key whose one-time display ended uncopied without the member's say (a reloaded
    /// page, Lock) is no longer held, and is offered once to its creator when they are
    /// signed in again, not to another member; Done, or a key revoked meanwhile, leaves
    /// nothing to offer (issue 12).
    #[tokio::test]
    async fn an_uncopied_key_dropped_by_reload_or_lock_is_offered_for_revoking() {
        let (_dir, s) = signed_in_owner().await;
        let crm = s.generate_key(named("CRM")).await.unwrap().key;
        assert!(s.reveal_uncopied());
        s.page_loaded();
        assert!(!s.reveal_uncopied(), "a reloaded page leaves no key held");
        let copy = s.copy_key(RevealRequest { id: crm.id.clone() }).await;
        assert_eq!(copy.unwrap_err().code, ErrorCode::NotFound);
        let offered = s.take_unsaved_key().await.unwrap();
        assert_eq!(offered.map(|k| k.id), Some(crm.id));
        assert!(
            s.take_unsaved_key().await.unwrap().is_none(),
            "offered once"
        );

        // Locked during the display; another member signs in first: not theirs to see.
        s.add_member(AddMemberRequest {
            name: "Max".into(),
            role: Role::Admin,
            initial_passphrase: Passphrase::new("initial passphrase"),
        })
        .await
        .unwrap();
        let erp = s.generate_key(named("ERP")).await.unwrap().key;
        s.lock();
        assert!(!s.reveal_uncopied());
        s.unlock(sign_in("Max", "initial passphrase"))
            .await
            .unwrap();
        s.change_passphrase(ChangePassphraseRequest {
            current: Passphrase::new("initial passphrase"),
            new: Passphrase::new("max's own passphrase"),
        })
        .await
        .unwrap();
        assert!(s.take_unsaved_key().await.unwrap().is_none());
        s.lock();
        s.unlock(sign_in("Olive", PASS)).await.unwrap();
        let offered = s.take_unsaved_key().await.unwrap();
        assert_eq!(offered.map(|k| k.id), Some(erp.id));

        // Done (the member chose to leave it) offers nothing.
        let done = s.generate_key(named("Done")).await.unwrap().key;
        s.finish_reveal(RevealRequest { id: done.id }).unwrap();
        s.lock();
        s.unlock(sign_in("Olive", PASS)).await.unwrap();
        assert!(s.take_unsaved_key().await.unwrap().is_none());

        // Revoked meanwhile: nothing left to revoke.
        let gone = s.generate_key(named("Gone")).await.unwrap().key;
        s.page_loaded();
        s.revoke_key(RevokeKeyRequest {
            id: gone.id,
            confirmation: keysmith_types::REVOKE_CONFIRMATION.into(),
        })
        .await
        .unwrap();
        assert!(s.take_unsaved_key().await.unwrap().is_none());
    }

    /// A malformed allowlist is refused by the command with `invalid_address`, naming the
    /// entry: no key is stored and none is held for display. A good one comes back canonical.
    #[tokio::test]
    async fn a_bad_allowed_address_list_creates_nothing() {
        let (_dir, s) = signed_in_owner().await;
        for (typed, named) in [
            ("10.1.2.3/8", "\"10.1.2.3/8\""),
            ("10.0.0.0/8, office", "\"office\""),
            ("2001:db8::/129", "\"2001:db8::/129\""),
        ] {
            let err = s
                .generate_key(GenerateKeyRequest {
                    name: "CI".into(),
                    expires_in_secs: None,
                    allowed_sources: vec![typed.into()],
                    rate_limit: None,
                    scopes: Vec::new(),
                })
                .await
                .unwrap_err();
            assert_eq!(err.code, ErrorCode::InvalidAddress, "{typed}");
            assert!(err.message.contains(named), "{typed}: {}", err.message);
            assert!(!s.reveal_uncopied());
            assert!(s.list_keys().await.unwrap().is_empty(), "{typed}");
        }
        let reveal = s
            .generate_key(GenerateKeyRequest {
                name: "CI".into(),
                expires_in_secs: None,
                allowed_sources: vec!["203.0.113.0/24,  2001:DB8::/32 ".into()],
                rate_limit: None,
                scopes: Vec::new(),
            })
            .await
            .unwrap();
        assert_eq!(
            reveal.key.allowed_sources,
            ["203.0.113.0/24", "2001:db8::/32"]
        );
    }

    /// A bad rate limit is refused by the command with `invalid_rate_limit`, naming what was
    /// typed: no key is stored and none is held for display. Empty text is no limit; a good
    /// limit comes back canonical.
    #[tokio::test]
    async fn a_bad_rate_limit_creates_nothing() {
        let (_dir, s) = signed_in_owner().await;
        for typed in [
            "0/s",
            "10/hour",
            "10/s burst 0",
            "2000000/s",
            "fast",
            "10/s\u{7}",
        ] {
            let err = s
                .generate_key(GenerateKeyRequest {
                    name: "Partner".into(),
                    rate_limit: Some(typed.into()),
                    ..GenerateKeyRequest::default()
                })
                .await
                .unwrap_err();
            assert_eq!(err.code, ErrorCode::InvalidRateLimit, "{typed}");
            let shown: String = typed.chars().flat_map(char::escape_debug).collect();
            assert!(
                err.message.contains(&format!("\"{shown}\"")),
                "{typed}: {}",
                err.message
            );
            assert!(!s.reveal_uncopied());
            assert!(s.list_keys().await.unwrap().is_empty(), "{typed}");
        }
        for (typed, want) in [("", None), ("  ", None), ("10 / S", Some("10/s burst 10"))] {
            let reveal = s
                .generate_key(GenerateKeyRequest {
                    name: format!("Partner {}", typed.len()),
                    rate_limit: Some(typed.into()),
                    ..GenerateKeyRequest::default()
                })
                .await
                .unwrap();
            assert_eq!(reveal.key.rate_limit.as_deref(), want, "{typed:?}");
        }
    }

    /// Scopes through the command layer: without a policy file only `read-only` is offered;
    /// a scope the catalogue does not define, a malformed one and too many are refused with
    /// `invalid_scope` naming the value, and nothing is stored or held for display.
    #[tokio::test]
    async fn scopes_are_offered_from_the_catalogue_and_checked() {
        let (_dir, s) = signed_in_owner().await;
        let offered: Vec<String> = s
            .list_scopes()
            .await
            .unwrap()
            .into_iter()
            .map(|i| i.name)
            .collect();
        assert_eq!(offered, ["read-only"]);
        let many: Vec<String> = (0..17).map(|i| format!("s{i}")).collect();
        for (scopes, named) in [
            (
                vec!["reports:read".to_owned()],
                "\"reports:read\" is not defined",
            ),
            (vec!["Read-only".to_owned()], "\"Read-only\" must start"),
            (vec!["read-only\u{7}".to_owned()], "holds '\\u{7}'"),
            (many, "at most 16 scopes"),
        ] {
            let err = s
                .generate_key(GenerateKeyRequest {
                    name: "Dashboard".into(),
                    scopes,
                    ..GenerateKeyRequest::default()
                })
                .await
                .unwrap_err();
            assert_eq!(err.code, ErrorCode::InvalidScope, "{named}");
            assert!(err.message.contains(named), "{named}: {}", err.message);
            assert!(!s.reveal_uncopied());
            assert!(s.list_keys().await.unwrap().is_empty(), "{named}");
        }
        let reveal = s
            .generate_key(GenerateKeyRequest {
                name: "Dashboard".into(),
                scopes: vec![" read-only ".into()],
                ..GenerateKeyRequest::default()
            })
            .await
            .unwrap();
        assert_eq!(reveal.key.scopes, ["read-only"]);
    }

    /// Lock clears a copied key from the clipboard at once, not when its 30 s run out; and
    /// leaves alone what the person copied since. Uses the real clipboard (X11 on Xvfb).
    #[tokio::test]
    async fn locking_clears_a_copied_key_from_the_clipboard() {
        assert!(
            std::env::var_os("DISPLAY").is_some(),
            "no DISPLAY: run through scripts/with-session.sh --display"
        );
        let mut other = arboard::Clipboard::new().unwrap();
        let (_dir, s) = signed_in_owner().await;
        for copied_since in [false, true] {
            s.unlock(UnlockRequest {
                name: "Olive".into(),
                passphrase: Passphrase::new(PASS),
            })
            .await
            .unwrap();
            let reveal = s
                .generate_key(GenerateKeyRequest {
                    name: format!("CRM {copied_since}"),
                    expires_in_secs: None,
                    allowed_sources: Vec::new(),
                    rate_limit: None,
                    scopes: Vec::new(),
                })
                .await
                .unwrap();
            let key = reveal.secret.expose().to_owned();
            s.copy_key(RevealRequest { id: reveal.key.id })
                .await
                .unwrap();
            assert_eq!(other.get_text().ok().as_deref(), Some(key.as_str()));
            if copied_since {
                other.set_text("a note of the person's own").unwrap();
            }
            s.lock();
            let held = other.get_text().ok();
            if copied_since {
                assert_eq!(held.as_deref(), Some("a note of the person's own"));
            } else {
                assert!(
                    held.as_deref().is_none_or(str::is_empty),
                    "the clipboard still holds {} characters after the lock",
                    held.map_or(0, |h| h.len())
                );
            }
        }
    }

    #[tokio::test]
    async fn revoke_checks_the_confirmation_again() {
        let (_dir, s) = signed_in_owner().await;
        let reveal = s
            .generate_key(GenerateKeyRequest {
                name: "CRM".into(),
                expires_in_secs: None,
                allowed_sources: Vec::new(),
                rate_limit: None,
                scopes: Vec::new(),
            })
            .await
            .unwrap();
        let wrong = RevokeKeyRequest {
            id: reveal.key.id.clone(),
            confirmation: "revoke".into(),
        };
        assert_eq!(
            s.revoke_key(wrong).await.unwrap_err().code,
            ErrorCode::ConfirmationMismatch
        );
        assert_eq!(s.list_keys().await.unwrap()[0].revoked_at, None);
        let right = RevokeKeyRequest {
            id: reveal.key.id.clone(),
            confirmation: "REVOKE".into(),
        };
        assert!(s.revoke_key(right).await.unwrap().revoked_at.is_some());
    }

    /// The command layer, on this computer's registry or joined to a team server on it.
    /// The second field is held, not read: dropping it stops the cell's server.
    struct Ipc(
        AppState,
        #[allow(dead_code)] Option<tokio::sync::oneshot::Sender<()>>,
    );

    fn code<T>(r: Result<T, keysmith_types::IpcError>) -> Result<(), ErrorCode> {
        r.map(|_| ()).map_err(|e| e.code)
    }

    impl testkit::Surface for Ipc {
        async fn act_as(&self, actor: &testkit::Person) {
            self.0.lock();
            self.0
                .unlock(UnlockRequest {
                    name: actor.name.clone(),
                    passphrase: Passphrase::new(testkit::PASSPHRASE),
                })
                .await
                .unwrap();
        }
        async fn generate_key(&self, name: &str) -> Result<(), ErrorCode> {
            code(
                self.0
                    .generate_key(GenerateKeyRequest {
                        name: name.into(),
                        expires_in_secs: None,
                        allowed_sources: Vec::new(),
                        rate_limit: None,
                        scopes: Vec::new(),
                    })
                    .await,
            )
        }
        async fn list_keys(&self) -> Result<Vec<keysmith_types::KeySummary>, ErrorCode> {
            self.0.list_keys().await.map_err(|e| e.code)
        }
        async fn revoke_key(&self, key_id: &str) -> Result<(), ErrorCode> {
            code(
                self.0
                    .revoke_key(RevokeKeyRequest {
                        id: key_id.into(),
                        confirmation: "REVOKE".into(),
                    })
                    .await,
            )
        }
        async fn pause_key(&self, key_id: &str) -> Result<(), ErrorCode> {
            code(
                self.0
                    .set_key_paused(PauseKeyRequest {
                        id: key_id.into(),
                        pause: true,
                    })
                    .await,
            )
        }
        async fn roll_key(&self, key_id: &str) -> Result<(), ErrorCode> {
            code(
                self.0
                    .roll_key(RollKeyRequest {
                        id: key_id.into(),
                        grace_secs: 3600,
                    })
                    .await,
            )
        }
        async fn key_usage(&self, key_id: &str) -> Result<(), ErrorCode> {
            code(
                self.0
                    .key_usage(KeyUsageRequest {
                        id: key_id.into(),
                        days: 30,
                    })
                    .await,
            )
        }
        async fn add_member(&self, name: &str, role: Role) -> Result<(), ErrorCode> {
            code(
                self.0
                    .add_member(AddMemberRequest {
                        name: name.into(),
                        role,
                        initial_passphrase: Passphrase::new(testkit::PASSPHRASE),
                    })
                    .await,
            )
        }
        async fn change_role(&self, member_id: &str, role: Role) -> Result<(), ErrorCode> {
            code(
                self.0
                    .change_role(ChangeRoleRequest {
                        member_id: member_id.into(),
                        role,
                    })
                    .await,
            )
        }
        async fn remove_member(&self, member_id: &str) -> Result<(), ErrorCode> {
            code(
                self.0
                    .remove_member(RemoveMemberRequest {
                        member_id: member_id.into(),
                        confirmation: "REMOVE".into(),
                    })
                    .await,
            )
        }
        async fn transfer_ownership(&self, member_id: &str) -> Result<(), ErrorCode> {
            code(
                self.0
                    .transfer_ownership(MemberRequest {
                        member_id: member_id.into(),
                    })
                    .await,
            )
        }
        async fn list_members(&self) -> Result<(), ErrorCode> {
            code(self.0.list_members().await)
        }
        async fn audit(&self) -> Result<(), ErrorCode> {
            code(self.0.audit_report(AuditFilter::default()).await)
        }
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn every_cell_of_the_role_table_through_the_command_layer() {
        let checked = testkit::walk_role_table(|registry| Ipc(AppState::new(registry), None)).await;
        assert!(checked > 150, "only {checked} cells");
    }

    /// A team server on `registry` (real HTTP on loopback), until the sender is dropped.
    fn serve(registry: Registry) -> (String, tokio::sync::oneshot::Sender<()>) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let listener = tokio::net::TcpListener::from_std(listener).unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(keysmith_server::serve(
            Arc::new(registry),
            keysmith_core::scope::ScopeCatalog::builtin(),
            listener,
            async move {
                let _ = stopped.await;
            },
        ));
        (url, stop)
    }

    /// Whether `probe` comes true within 5 s (the server is told of a lock in the background).
    async fn eventually<F, Fut>(probe: F) -> bool
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        for _ in 0..100 {
            if probe().await {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        false
    }

    fn joined(url: &str) -> (AppState, Arc<MemoryStore>) {
        let keyring = Arc::new(MemoryStore::new());
        let config = TeamConfig::new(url.to_owned(), false, None);
        (AppState::joined(config, keyring.clone()), keyring)
    }

    /// The same walk with the app joined to a team server: every screen's command goes
    /// over HTTP and gets the same answer as on this computer.
    #[tokio::test(flavor = "multi_thread")]
    async fn every_cell_of_the_role_table_through_the_command_layer_on_a_team_server() {
        let checked = testkit::walk_role_table(|registry| {
            let (url, stop) = serve(registry);
            Ipc(joined(&url).0, Some(stop))
        })
        .await;
        assert!(checked > 150, "only {checked} cells");
    }

    /// Signing in keeps the session token in the keyring; locking drops it from there at
    /// once and ends it on the server; a session the server ended (a passphrase change
    /// elsewhere) sends the app back to sign-in with the reason, and signing in again
    /// finds everything as it was.
    #[tokio::test(flavor = "multi_thread")]
    async fn a_team_server_session_lives_in_the_keyring_until_lock() {
        let (_db, registry, team) = testkit::team_registry().await;
        let owner = team.get(Role::Owner, false).clone();
        let (url, _stop) = serve(registry);
        let (s, keyring) = joined(&url);
        let entry = {
            let Backend::Server { config, .. } = s.backend() else {
                unreachable!()
            };
            config.session_entry
        };
        let status = s.session_status().await.unwrap();
        assert_eq!(status.server.as_deref(), Some(url.as_str()));
        assert!(status.initialized && status.signed_in.is_none());
        let refused = s
            .create_account(CreateAccountRequest {
                owner_name: "Mallory".into(),
                passphrase: Passphrase::new(PASS),
            })
            .await;
        assert_eq!(refused.unwrap_err().code, ErrorCode::AlreadyInitialized);

        let sign_in = || UnlockRequest {
            name: owner.name.clone(),
            passphrase: Passphrase::new(testkit::PASSPHRASE),
        };
        s.unlock(sign_in()).await.unwrap();
        let kept = keyring
            .get(&entry)
            .unwrap()
            .expect("the token is in the keyring");
        let token = SessionTokenText::new(String::from_utf8(kept.to_vec()).unwrap());
        let made = s
            .generate_key(GenerateKeyRequest {
                name: "Billing".into(),
                expires_in_secs: None,
                allowed_sources: Vec::new(),
                rate_limit: None,
                scopes: Vec::new(),
            })
            .await
            .unwrap();
        s.finish_reveal(RevealRequest {
            id: made.key.id.clone(),
        })
        .unwrap();

        s.lock();
        assert!(keyring.get(&entry).unwrap().is_none(), "dropped on lock");
        let probe = keysmith_client::Remote::new(&url, &Default::default()).unwrap();
        probe.resume(token);
        let ended = eventually(|| async { probe.current().await.is_err() }).await;
        assert!(ended, "the server still honours the session after the lock");

        // A session ended elsewhere: the next command locks the app and says why.
        s.unlock(sign_in()).await.unwrap();
        let other = keysmith_client::Remote::connect(&url, &Default::default())
            .await
            .unwrap();
        other
            .sign_in(&owner.name, testkit::PASSPHRASE)
            .await
            .unwrap();
        other
            .change_passphrase(testkit::PASSPHRASE, "another good passphrase")
            .await
            .unwrap();
        let gone = s.list_keys().await.unwrap_err();
        assert_eq!(gone.code, ErrorCode::SessionExpired, "{gone:?}");
        let status = s.session_status().await.unwrap();
        assert!(status.signed_in.is_none());
        assert!(status.notice.is_some(), "the sign-in screen says why");
        assert!(keyring.get(&entry).unwrap().is_none());
        s.unlock(UnlockRequest {
            name: owner.name.clone(),
            passphrase: Passphrase::new("another good passphrase"),
        })
        .await
        .unwrap();
        let keys = s.list_keys().await.unwrap();
        assert!(keys.iter().any(|k| k.id == made.key.id), "nothing lost");
        assert!(s.session_status().await.unwrap().notice.is_none());
    }

    /// A wrong URL, plain HTTP to another computer, a URL that is not a Keysmith server, a
    /// server that is not there: each a plain error, and the app stays on this computer
    /// with nothing written.
    #[tokio::test(flavor = "multi_thread")]
    async fn joining_a_server_refuses_what_is_not_one() {
        let dir = tempfile::tempdir().unwrap();
        let keyring: Arc<dyn keysmith_core::SecretStore> = Arc::new(MemoryStore::new());
        let s = AppState::open(
            dir.path().to_owned(),
            keyring.clone(),
            Duration::from_secs(60),
        )
        .await
        .unwrap();
        // Something on loopback that answers HTTP but is not Keysmith.
        let other = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        other.set_nonblocking(true).unwrap();
        let not_keysmith = format!("http://{}", other.local_addr().unwrap());
        let other = tokio::net::TcpListener::from_std(other).unwrap();
        tokio::spawn(async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            while let Ok((mut conn, _)) = other.accept().await {
                let mut buf = [0u8; 2048];
                let _ = conn.read(&mut buf).await;
                let _ = conn
                    .write_all(
                        b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\nconnection: close\r\n\r\nhello",
                    )
                    .await;
            }
        });
        let closed = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            format!("http://{}", l.local_addr().unwrap())
        };
        for url in [
            "",
            "not a url",
            "ftp://keys.example.com",
            "http://keys.example.com",
            "https://user:pw@keys.example.com",
            "https://keys.example.com/?x=1",
            not_keysmith.as_str(),
            closed.as_str(),
        ] {
            let err = s
                .join_server(JoinServerRequest {
                    url: url.into(),
                    allow_plain_http: false,
                    ca_file: None,
                })
                .await
                .unwrap_err();
            assert_eq!(err.code, ErrorCode::ServerUnavailable, "{url:?}: {err:?}");
            assert!(!err.message.is_empty());
            assert!(!dir.path().join(crate::team::FILE).exists(), "{url:?}");
            assert_eq!(s.session_status().await.unwrap().server, None, "{url:?}");
        }
        let missing_ca = s
            .join_server(JoinServerRequest {
                url: "https://keys.example.com".into(),
                allow_plain_http: false,
                ca_file: Some(dir.path().join("no-such-ca.pem").display().to_string()),
            })
            .await
            .unwrap_err();
        assert!(
            missing_ca.message.contains("no-such-ca.pem"),
            "{missing_ca:?}"
        );
        assert!(!dir.path().join(crate::team::FILE).exists());
    }

    /// Joining is kept in the data directory: a new run opens joined; a token a crashed run
    /// left in the keyring is ended on the server; leaving goes back to this computer.
    #[tokio::test(flavor = "multi_thread")]
    async fn joining_survives_a_restart_and_a_crash_leaves_no_live_session() {
        let (_db, registry, team) = testkit::team_registry().await;
        let owner = team.get(Role::Owner, false).clone();
        let (url, _stop) = serve(registry);
        let parent = tempfile::tempdir().unwrap();
        // A data directory that does not exist yet, as on a new computer.
        let data_dir = parent.path().join("keysmith");
        let keyring: Arc<dyn keysmith_core::SecretStore> = Arc::new(MemoryStore::new());
        let open = || {
            AppState::open(
                data_dir.as_path().to_owned(),
                keyring.clone(),
                Duration::from_secs(60),
            )
        };
        let s = open().await.unwrap();
        let status = s
            .join_server(JoinServerRequest {
                url: format!("{url}/"),
                allow_plain_http: false,
                ca_file: None,
            })
            .await
            .unwrap();
        assert_eq!(status.server.as_deref(), Some(url.as_str()));
        s.unlock(UnlockRequest {
            name: owner.name.clone(),
            passphrase: Passphrase::new(testkit::PASSPHRASE),
        })
        .await
        .unwrap();
        let refused = s.leave_server().await.unwrap_err();
        assert_eq!(refused.code, ErrorCode::NotPermitted);
        let Backend::Server { remote, config } = s.backend() else {
            unreachable!()
        };
        let token = remote.session_token().unwrap();
        drop(s); // a crash: no lock

        let s = open().await.unwrap();
        assert_eq!(
            s.session_status().await.unwrap().server.as_deref(),
            Some(url.as_str())
        );
        let probe = keysmith_client::Remote::new(&url, &Default::default()).unwrap();
        probe.resume(token);
        let ended = eventually(|| async { probe.current().await.is_err() }).await;
        assert!(ended, "the left-over session still works");
        assert!(keyring.get(&config.session_entry).unwrap().is_none());

        let status = s.leave_server().await.unwrap();
        assert_eq!(status.server, None);
        assert!(
            !status.initialized,
            "this computer's own account was never made"
        );
        assert!(!data_dir.as_path().join(crate::team::FILE).exists());
        let s = open().await.unwrap();
        assert_eq!(s.session_status().await.unwrap().server, None);
        assert!(
            !data_dir.as_path().join(store::DB_FILE).exists(),
            "joining and leaving a team server made a database on this computer"
        );
    }

    /// Before the first-run choice there is no database; signing in is refused as "not set
    /// up"; choosing "This computer only" (setting up the account) makes it, and the next
    /// run opens it.
    #[tokio::test]
    async fn the_database_is_made_only_when_this_computer_is_chosen() {
        let dir = tempfile::tempdir().unwrap();
        let data_dir = dir.path().to_owned();
        let keyring: Arc<dyn keysmith_core::SecretStore> = Arc::new(MemoryStore::new());
        let open = || {
            AppState::open(
                data_dir.as_path().to_owned(),
                keyring.clone(),
                Duration::from_secs(60),
            )
        };
        let db = data_dir.as_path().join(store::DB_FILE);
        let s = open().await.unwrap();
        let status = s.session_status().await.unwrap();
        assert!(!status.initialized && status.signed_in.is_none() && status.server.is_none());
        let refused = s
            .unlock(UnlockRequest {
                name: "Olive".into(),
                passphrase: Passphrase::new(PASS),
            })
            .await
            .unwrap_err();
        assert_eq!(refused.code, ErrorCode::NotInitialized);
        assert_eq!(
            s.list_keys().await.unwrap_err().code,
            ErrorCode::NotSignedIn
        );
        assert!(!db.exists(), "a database before the first-run choice");

        s.create_account(CreateAccountRequest {
            owner_name: "Olive".into(),
            passphrase: Passphrase::new(PASS),
        })
        .await
        .unwrap();
        assert!(db.is_file());
        assert!(s.list_keys().await.unwrap().is_empty());
        drop(s);
        let s = open().await.unwrap();
        assert!(s.session_status().await.unwrap().initialized);
        s.unlock(UnlockRequest {
            name: "Olive".into(),
            passphrase: Passphrase::new(PASS),
        })
        .await
        .unwrap();
    }

    #[tokio::test]
    async fn an_idle_session_locks_itself() {
        let dir = tempfile::tempdir().unwrap();
        let pool = store::open(&dir.path().join(store::DB_FILE)).await.unwrap();
        let registry = Registry::with_parts(
            pool,
            Arc::new(MemoryStore::new()),
            Arc::new(keysmith_core::clock::SystemClock),
        );
        let s = AppState::with_idle_limit(registry, std::time::Duration::from_millis(200));
        s.create_account(CreateAccountRequest {
            owner_name: "Olive".into(),
            passphrase: Passphrase::new(PASS),
        })
        .await
        .unwrap();
        s.list_keys().await.unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        let err = s.list_keys().await.unwrap_err();
        assert_eq!(err.code, ErrorCode::NotSignedIn);
        assert!(err.message.contains("without activity"));
        assert!(s.session_status().await.unwrap().signed_in.is_none());
    }

    #[tokio::test]
    async fn a_new_member_must_change_the_initial_passphrase_first() {
        let (_dir, s) = signed_in_owner().await;
        s.add_member(AddMemberRequest {
            name: "Max".into(),
            role: Role::Manager,
            initial_passphrase: Passphrase::new("initial passphrase"),
        })
        .await
        .unwrap();
        s.unlock(UnlockRequest {
            name: "Max".into(),
            passphrase: Passphrase::new("initial passphrase"),
        })
        .await
        .unwrap();
        assert!(s.session_status().await.unwrap().must_change_passphrase);
        let err = s.list_keys().await.unwrap_err();
        assert_eq!(err.code, ErrorCode::PassphraseChangeRequired);
        s.change_passphrase(ChangePassphraseRequest {
            current: Passphrase::new("initial passphrase"),
            new: Passphrase::new("my own passphrase"),
        })
        .await
        .unwrap();
        assert!(s.list_keys().await.unwrap().is_empty());
    }
}
