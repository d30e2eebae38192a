//! The shapes that cross the IPC boundary between the Tauri backend and the Leptos UI.
//!
//! This crate depends on serde and zeroize only, so it builds for the host and for
//! `wasm32-unknown-unknown` alike. Every command returns `Result<T, IpcError>`; the UI
//! branches on [`ErrorCode`], never on message text.
//!
//! Times are Unix epoch milliseconds (UTC) as `i64`.

use std::fmt;

use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, ZeroizeOnDrop};

/// What went wrong, as a stable code the UI and scripts may branch on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum ErrorCode {
    /// The signed-in member's role does not allow the operation (PRODUCT.md role table).
    NotPermitted,
    /// No member is signed in.
    NotSignedIn,
    /// Unknown member name or wrong passphrase (deliberately not told apart).
    BadCredentials,
    /// The account already exists (first-run set-up was already done).
    AlreadyInitialized,
    /// No account exists yet: run first-run set-up.
    NotInitialized,
    /// A key or member name is empty, too long or has control characters.
    InvalidName,
    /// A passphrase is empty or too short.
    InvalidPassphrase,
    /// A string is not a well-formed Keysmith key (prefix, length, alphabet or checksum).
    MalformedKey,
    /// No key, member or pending reveal has that id.
    NotFound,
    /// The key is well-formed but matches no stored key.
    UnknownKey,
    /// The key was revoked.
    KeyRevoked,
    /// The typed confirmation text was not exactly `REVOKE`.
    ConfirmationMismatch,
    /// The key is already revoked; revoking is not repeated.
    AlreadyRevoked,
    /// The OS keyring could not be reached or is locked.
    KeyringUnavailable,
    /// The account's pepper is missing from the OS keyring.
    PepperMissing,
    /// The system clipboard could not be used.
    Clipboard,
    /// Another member already has that name.
    DuplicateName,
    /// Too many failed sign-ins: wait before trying again.
    TooManyAttempts,
    /// The operation cannot target that member (yourself, or the Owner).
    InvalidTarget,
    /// The typed confirmation text was not exactly `REMOVE`.
    RemoveConfirmationMismatch,
    /// The audit log's hash chain is broken.
    AuditTampered,
    /// A row or the audit log was changed outside Keysmith (its protection does not match):
    /// Keysmith refuses to act on it.
    StoreTampered,
    /// The member must change their initial passphrase first.
    PassphraseChangeRequired,
    /// The key's expiry (or its grace period after a roll) has passed.
    KeyExpired,
    /// An expiry or grace period is out of range or unreadable.
    InvalidDuration,
    /// An allowed source address or network (CIDR) is malformed, or the list is too long.
    InvalidAddress,
    /// A rate limit is malformed, zero or too large.
    InvalidRateLimit,
    /// A scope is malformed or not defined by the policy, or a key names too many.
    InvalidScope,
    /// A scope is beyond the generating member's role: the policy lets only other roles
    /// give it to a key.
    ScopeBeyondRole,
    /// The key was already rolled: roll its replacement instead.
    AlreadyReplaced,
    /// A pepper file cannot be used (missing, wrong mode, wrong content).
    PepperFile,
    /// The database could not be read or written.
    Storage,
    /// Anything else; the message says what.
    Internal,
    /// The team server session is unknown, ended or expired: sign in again.
    SessionExpired,
    /// The team server could not be reached, or answered with something that is not
    /// Keysmith's API (wrong URL, another version, a dropped connection).
    ServerUnavailable,
    /// An HTTP request the team server cannot read (not JSON, missing fields, too large).
    MalformedRequest,
    /// This computer's account was moved to a team server: work there.
    AccountMoved,
    /// A path to scan is empty, missing or cannot be used.
    InvalidPath,
    /// The key is paused: it is refused until someone resumes it (and it cannot be rolled
    /// meanwhile).
    KeyPaused,
    /// The key is already paused.
    AlreadyPaused,
    /// The key is not paused, so there is nothing to resume.
    NotPaused,
}

/// The one error shape that crosses IPC: a stable code and a human sentence.
///
/// The message never contains key material, a raw SQL or keyring error, or a file path
/// beyond the data directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct IpcError {
    pub code: ErrorCode,
    pub message: String,
}

impl fmt::Display for IpcError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for IpcError {}

/// An account's user levels, highest first (PRODUCT.md: Owner > Admin > Manager > Author > Viewer).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Role {
    Viewer,
    Author,
    Manager,
    Admin,
    Owner,
}

impl Role {
    /// Every role, highest first.
    pub const ALL: [Role; 5] = [
        Role::Owner,
        Role::Admin,
        Role::Manager,
        Role::Author,
        Role::Viewer,
    ];

    /// The lowercase name used in the database, the CLI and the policy file.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Admin => "admin",
            Role::Manager => "manager",
            Role::Author => "author",
            Role::Viewer => "viewer",
        }
    }

    /// Parses the lowercase name; `None` for anything else.
    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == s)
    }

    /// The name shown to people ("Owner", "Admin", …).
    pub fn label(self) -> &'static str {
        match self {
            Role::Owner => "Owner",
            Role::Admin => "Admin",
            Role::Manager => "Manager",
            Role::Author => "Author",
            Role::Viewer => "Viewer",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// A key's state as shown in lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum KeyStatus {
    Active,
    Revoked,
    /// Past its expiry, or past the grace period after it was rolled.
    Expired,
    /// Its row was changed outside Keysmith: it is refused everywhere (revoke it).
    Tampered,
    /// Paused by a member: refused like a revoked key until someone resumes it.
    Paused,
}

/// A member as others see them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MemberSummary {
    pub id: String,
    pub name: String,
    pub role: Role,
}

/// What a list shows of an API key: never more than the first 4 characters of its body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct KeySummary {
    pub id: String,
    /// The name its creator gave it (1 to 64 characters, trimmed).
    pub name: String,
    /// The first 4 characters of the key's body (after the `ksk_` prefix).
    pub start: String,
    pub created_at: i64,
    pub created_by: MemberSummary,
    pub last_used_at: Option<i64>,
    pub revoked_at: Option<i64>,
    /// When the key stops working (Unix ms); `None` for never. After a roll, the end of the
    /// grace period.
    #[serde(default)]
    pub expires_at: Option<i64>,
    /// The id of the key that replaced this one when it was rolled.
    #[serde(default)]
    pub replaced_by: Option<String>,
    /// When the key was paused (Unix ms); `None` when it is not paused.
    #[serde(default)]
    pub paused_at: Option<i64>,
    /// The networks (CIDR) the key may be used from; empty for anywhere. Fixed for the key's
    /// life; a roll keeps them.
    #[serde(default)]
    pub allowed_sources: Vec<String>,
    /// The key's rate limit, canonical (`10/s burst 20`, `600/min burst 600`); `None` for no
    /// limit. Fixed for the key's life; a roll keeps it.
    #[serde(default)]
    pub rate_limit: Option<String>,
    /// The key's scopes, sorted (`read-only`, `reports:read`); empty for its creator's whole
    /// role. Fixed for the key's life; a roll keeps them.
    #[serde(default)]
    pub scopes: Vec<String>,
    pub status: KeyStatus,
}

/// A scope a member may give a key: a named permission from the verifier's policy, or the
/// built-in `read-only`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ScopeInfo {
    /// The name keys carry, such as `reports:read`.
    pub name: String,
    /// What it allows, in words; empty when the policy gives none.
    #[serde(default)]
    pub description: String,
    /// The roles whose members may give it to a key.
    pub roles: Vec<Role>,
}

/// A key's use on one day, by outcome: what the verifier answered, counted per key and per UTC
/// day (refusals of unknown or malformed keys have no key to count against).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UsageCounts {
    /// Requests the key was accepted for.
    pub allowed: u64,
    /// Refused: the key was revoked (or its creator removed).
    pub revoked: u64,
    /// Refused: the key had expired.
    pub expired: u64,
    /// Refused: the key was paused.
    pub paused: u64,
    /// Refused: the creator's current role may not call the endpoint.
    pub role: u64,
    /// Refused: none of the key's scopes covers the endpoint.
    pub scope: u64,
    /// Refused: the client address is outside the key's allowed sources.
    pub address: u64,
    /// Refused: the key was over its rate limit.
    pub rate_limited: u64,
}

impl UsageCounts {
    /// Every refusal, whatever its reason.
    pub fn refused(&self) -> u64 {
        self.revoked
            + self.expired
            + self.paused
            + self.role
            + self.scope
            + self.address
            + self.rate_limited
    }

    /// The refusals by reason, in a fixed order, with the words the app and CLI show.
    pub fn refusals(&self) -> [(&'static str, u64); 7] {
        [
            ("revoked", self.revoked),
            ("expired", self.expired),
            ("paused", self.paused),
            ("role", self.role),
            ("scope", self.scope),
            ("address", self.address),
            ("rate limit", self.rate_limited),
        ]
    }

    /// The refusals in words, reasons with none left out (`2 scope, 1 rate limit`); `None`
    /// when nothing was refused.
    pub fn refusals_in_words(&self) -> Option<String> {
        let parts: Vec<String> = self
            .refusals()
            .iter()
            .filter(|(_, n)| *n > 0)
            .map(|(why, n)| format!("{n} {why}"))
            .collect();
        (!parts.is_empty()).then(|| parts.join(", "))
    }

    /// Adds `other`'s counts to these (saturating).
    pub fn add(&mut self, other: &UsageCounts) {
        self.allowed = self.allowed.saturating_add(other.allowed);
        self.revoked = self.revoked.saturating_add(other.revoked);
        self.expired = self.expired.saturating_add(other.expired);
        self.paused = self.paused.saturating_add(other.paused);
        self.role = self.role.saturating_add(other.role);
        self.scope = self.scope.saturating_add(other.scope);
        self.address = self.address.saturating_add(other.address);
        self.rate_limited = self.rate_limited.saturating_add(other.rate_limited);
    }
}

/// One UTC day of a key's use.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UsageDay {
    /// The UTC date, `YYYY-MM-DD` (RFC 3339 full-date).
    pub date: String,
    pub counts: UsageCounts,
}

/// How a key was used over its last days: one entry per UTC day, oldest first, ending today,
/// days without use included (all zero).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct KeyUsage {
    pub key_id: String,
    pub days: Vec<UsageDay>,
    /// The sums over `days`.
    pub total: UsageCounts,
    /// The key's last accepted use (Unix ms), whenever it was.
    pub last_used_at: Option<i64>,
    /// The client address of the last accepted use the verifier saw, when it knew one
    /// (within the days the verifier keeps).
    pub last_used_from: Option<String>,
}

/// The usage chart's span, in days.
pub const USAGE_DAYS_DEFAULT: u32 = 30;

/// The most days a usage query may ask for.
pub const USAGE_DAYS_MAX: u32 = 366;

/// One day in milliseconds.
pub const DAY_MS: i64 = 86_400_000;

/// The list flags a working key whose expiry (or grace period) ends within this many days.
pub const EXPIRING_SOON_DAYS: i64 = 7;

/// The list flags a working key nobody used for this many days, unless the member chose
/// another number.
pub const UNUSED_DAYS_DEFAULT: i64 = 90;

impl KeySummary {
    /// The status as the app shows it: "Active", "Grace period" (rolled, still working),
    /// "Paused", "Expired", "Revoked" or "Changed outside Keysmith".
    pub fn status_label(&self) -> &'static str {
        match self.status {
            KeyStatus::Active if self.replaced_by.is_some() => "Grace period",
            KeyStatus::Active => "Active",
            KeyStatus::Paused => "Paused",
            KeyStatus::Expired => "Expired",
            KeyStatus::Revoked => "Revoked",
            KeyStatus::Tampered => "Changed outside Keysmith",
        }
    }

    /// Whether the key works at `now` (Unix ms) and stops within `days` days: its expiry, or
    /// the end of its grace period after a roll.
    pub fn expires_within(&self, now: i64, days: i64) -> bool {
        self.status == KeyStatus::Active
            && self
                .expires_at
                .is_some_and(|at| at > now && at - now <= days.saturating_mul(DAY_MS))
    }

    /// Whether the key works at `now` (Unix ms) and nothing used it for at least `days` days
    /// (counted from its creation when it was never used). A paused key is left out: it is
    /// not used on purpose.
    pub fn unused_for(&self, now: i64, days: i64) -> bool {
        self.status == KeyStatus::Active
            && now.saturating_sub(self.last_used_at.unwrap_or(self.created_at))
                >= days.saturating_mul(DAY_MS)
    }

    /// Whether `query` is part of the key's name, its creator's name or its status label,
    /// ignoring case and the spaces around it. An empty query matches every key.
    ///
    /// A list searched at each keystroke prepares both sides once instead:
    /// [`KeySummary::search_text`] per key, [`SearchQuery::new`] per keystroke.
    pub fn matches(&self, query: &str) -> bool {
        SearchQuery::new(query).matches(&self.search_text())
    }

    /// What a search looks through, lowercased: the key's name, its creator's name and its
    /// status label, each followed by [`SearchQuery::SEPARATOR`] so that no match spans two
    /// of them.
    pub fn search_text(&self) -> String {
        let mut text = String::with_capacity(self.name.len() + self.created_by.name.len() + 16);
        for field in [
            self.name.as_str(),
            self.created_by.name.as_str(),
            self.status_label(),
        ] {
            text.push_str(&field.to_lowercase());
            text.push(SearchQuery::SEPARATOR);
        }
        text
    }
}

/// A search of the key list as typed, prepared once for every key it is matched against:
/// trimmed and lowercased.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchQuery(String);

impl SearchQuery {
    /// Ends each field in [`KeySummary::search_text`]: a control character, which names
    /// cannot hold (the backend refuses them), so a query holding it matches nothing.
    pub const SEPARATOR: char = '\u{1f}';

    pub fn new(query: &str) -> SearchQuery {
        SearchQuery(query.trim().to_lowercase())
    }

    /// Whether the query is empty (only spaces as typed): it matches every key.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether a key whose [`KeySummary::search_text`] is `text` matches.
    pub fn matches(&self, text: &str) -> bool {
        self.0.is_empty() || (!self.0.contains(Self::SEPARATOR) && text.contains(&self.0))
    }
}

/// Whether first-run set-up was done and who, if anyone, is signed in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionStatus {
    pub initialized: bool,
    pub signed_in: Option<MemberSummary>,
    /// The signed-in member must change their initial passphrase before anything else.
    #[serde(default)]
    pub must_change_passphrase: bool,
    /// The app locks after this many seconds without activity.
    #[serde(default)]
    pub idle_lock_secs: u64,
    /// The team server this app is joined to (its URL); `None` for "this computer only".
    #[serde(default)]
    pub server: Option<String>,
    /// Why the app is locked, when it did not lock at the member's request (the team
    /// server's session expired or was ended): shown on the sign-in screen.
    #[serde(default)]
    pub notice: Option<String>,
}

/// "Join a team server": the server's URL and how to trust it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JoinServerRequest {
    /// `https://host[:port]`, or `http://` to this computer.
    pub url: String,
    /// Allow `http://` to another computer (passphrases and keys cross the network
    /// unencrypted): off unless the member ticks it.
    #[serde(default)]
    pub allow_plain_http: bool,
    /// A PEM file holding the team's own certificate authority, trusted instead of the
    /// system's; `None` for the system's.
    #[serde(default)]
    pub ca_file: Option<String>,
}

/// A passphrase on its way from the UI to the backend: redacted Debug, zeroized on drop.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
#[serde(transparent)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Passphrase(String);

impl Passphrase {
    pub fn new(s: impl Into<String>) -> Self {
        Passphrase(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Passphrase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Passphrase(<redacted>)")
    }
}

/// First-run set-up: the account's Owner.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CreateAccountRequest {
    pub owner_name: String,
    pub passphrase: Passphrase,
}

/// Sign in as a member.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UnlockRequest {
    pub name: String,
    pub passphrase: Passphrase,
}

/// Generate a key for the signed-in member.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct GenerateKeyRequest {
    pub name: String,
    /// Lifetime in seconds from now; `None` for a key that never expires.
    #[serde(default)]
    pub expires_in_secs: Option<i64>,
    /// Where the key may be used from: IPv4/IPv6 addresses or CIDR networks (at most 32);
    /// empty for anywhere.
    #[serde(default)]
    pub allowed_sources: Vec<String>,
    /// A rate limit the verifier enforces, such as `10/s`, `600/min burst 50` or
    /// `5 per second` (1 to 1,000,000 requests per second or minute; the burst defaults to
    /// one period's worth); `None` or empty for no limit.
    #[serde(default)]
    pub rate_limit: Option<String>,
    /// Scopes that narrow the key below the creator's role (names from the policy, or
    /// `read-only`; at most 16); empty for the creator's whole role.
    #[serde(default)]
    pub scopes: Vec<String>,
}

/// Roll a key: generate its replacement (shown once) and let the old key keep working for
/// `grace_secs` more seconds (0 ends it now).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RollKeyRequest {
    pub id: String,
    pub grace_secs: i64,
}

/// The grace period a roll gives the old key unless another is chosen: 24 hours.
pub const DEFAULT_ROLL_GRACE_SECS: i64 = 24 * 3600;

/// "Scan a folder": look through `path` (a folder or a file, and a git repository's history
/// when it is one's top) for this account's keys (`keysmith scan` on the command line).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ScanRequest {
    pub path: String,
}

/// A Keysmith key found by a scan; the key itself is never part of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScanFinding {
    /// A file, `COMMIT:PATH` in git history (12 hex digits), or `(staged) PATH`.
    pub place: String,
    /// 1-based line number.
    pub line: u64,
    /// The key works (active, or rolled and in its grace period): roll or revoke it.
    pub live: bool,
    /// `None`: a well-formed Keysmith key (its checksum holds) that is none of this
    /// account's.
    pub key: Option<KeySummary>,
}

/// What a scan found and what it looked through.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScanReport {
    pub findings: Vec<ScanFinding>,
    /// Files read, and their bytes.
    pub files: u64,
    pub bytes: u64,
    /// Binary files met inside folders, skipped (as ripgrep does).
    pub binary_skipped: u64,
    /// Lines added in git history (or the index) that were read.
    pub git_lines: u64,
    /// What could not be scanned, one plain sentence each (unreadable, binary when named).
    pub problems: Vec<String>,
}

/// Revoke a key; `confirmation` must be exactly `REVOKE`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RevokeKeyRequest {
    pub id: String,
    pub confirmation: String,
}

/// Pause a key (`pause: true`) or resume it (`pause: false`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PauseKeyRequest {
    pub id: String,
    pub pause: bool,
}

/// Read a key's usage over its last `days` UTC days (1 to [`USAGE_DAYS_MAX`]; 30 when absent).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KeyUsageRequest {
    pub id: String,
    #[serde(default = "usage_days_default")]
    pub days: u32,
}

fn usage_days_default() -> u32 {
    USAGE_DAYS_DEFAULT
}

/// Acts on the key that is being shown once (copy it, or end its display).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RevealRequest {
    pub id: String,
}

/// The full key, in the one response that may carry it: the one-time reveal.
///
/// Debug and Display are redacted; the string is zeroized on drop, on both sides of IPC.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
#[serde(transparent)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RevealedKey(String);

impl RevealedKey {
    pub fn new(s: String) -> Self {
        RevealedKey(s)
    }
    /// The key itself, for the one-time display.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for RevealedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RevealedKey(<redacted>)")
    }
}

impl fmt::Display for RevealedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// The answer to "Generate Key": the new key's summary and, this once, the key itself.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct KeyReveal {
    pub key: KeySummary,
    pub secret: RevealedKey,
}

/// The answer to "Copy key to clipboard".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CopyReceipt {
    /// Seconds after which the clipboard is cleared if it still holds the key.
    pub clear_after_secs: u32,
}

/// A member as the members page lists them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MemberListing {
    pub member: MemberSummary,
    pub created_at: i64,
    /// Set for removed members (they stay listed, disabled).
    pub removed_at: Option<i64>,
    /// The member must change the initial passphrase at the next sign-in.
    pub must_change_passphrase: bool,
    /// Keys this member generated that are not revoked.
    pub active_keys: u32,
}

/// Add a member with an initial passphrase they must change at first sign-in.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AddMemberRequest {
    pub name: String,
    pub role: Role,
    pub initial_passphrase: Passphrase,
}

/// Give a member another role (never Owner: that is a transfer).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChangeRoleRequest {
    pub member_id: String,
    pub role: Role,
}

/// Identifies a member (removal preview, ownership transfer).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MemberRequest {
    pub member_id: String,
}

/// Remove a member; `confirmation` must be exactly `REMOVE`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RemoveMemberRequest {
    pub member_id: String,
    pub confirmation: String,
}

/// Change your own passphrase.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ChangePassphraseRequest {
    pub current: Passphrase,
    pub new: Passphrase,
}

/// One audit entry as shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuditEntry {
    pub seq: i64,
    pub at: i64,
    pub actor_id: Option<String>,
    pub actor_name: String,
    pub action: String,
    pub target: String,
    pub detail: String,
}

/// Which audit entries to show; every field narrows, `None` does not.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema, utoipa::IntoParams))]
#[cfg_attr(feature = "openapi", into_params(parameter_in = Query))]
pub struct AuditFilter {
    pub member_id: Option<String>,
    pub action: Option<String>,
    /// Inclusive lower bound, epoch ms.
    pub from: Option<i64>,
    /// Exclusive upper bound, epoch ms.
    pub until: Option<i64>,
}

/// The state of the audit log's hash chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ChainStatus {
    pub intact: bool,
    /// Entries checked.
    pub entries: u64,
    /// What is wrong, naming the first bad entry, when not intact.
    pub problem: Option<String>,
}

/// The audit page: the filtered entries (newest first) and the whole chain's status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuditReport {
    pub entries: Vec<AuditEntry>,
    pub chain: ChainStatus,
}

/// A team server session's bearer token (`kss_…`) on its way to the member's client:
/// redacted Debug, zeroized on drop.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
#[serde(transparent)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SessionTokenText(String);

impl SessionTokenText {
    pub fn new(s: String) -> Self {
        SessionTokenText(s)
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SessionTokenText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SessionTokenText(<redacted>)")
    }
}

/// The team server's answer to a sign-in (or a passphrase change, which starts a new
/// session and ends the others).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SignInResponse {
    pub token: SessionTokenText,
    pub member: MemberSummary,
    /// The member must change their initial passphrase before anything else.
    pub must_change_passphrase: bool,
    /// When the session ends at the latest (Unix ms).
    pub expires_at: i64,
}

/// What `GET /v1/info` says: which product and API version a URL serves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ServerInfo {
    /// Always `keysmith`.
    pub product: String,
    /// The server's version (`Cargo.toml`).
    pub version: String,
    /// The HTTP API's version; clients refuse a server whose API they do not speak.
    pub api: u32,
}

/// The team server API version these types describe.
pub const API_VERSION: u32 = 1;

/// The confirmation text the remove-member dialog asks for.
pub const REMOVE_CONFIRMATION: &str = "REMOVE";

/// The confirmation text the revoke dialog asks for (the article: "type REVOKE").
pub const REVOKE_CONFIRMATION: &str = "REVOKE";

/// What the Owner types to accept a database put back from an earlier copy (`keysmith audit
/// accept-restore`).
pub const RESTORED_CONFIRMATION: &str = "RESTORED";

/// Every audit action as stored (`key_generated`, …) with the label people read, in the
/// order the audit page's filter offers them. keysmith-core's `AuditAction` has exactly these
/// (a test there checks both ways), so no entry ever shows a raw code.
pub const AUDIT_ACTIONS: [(&str, &str); 19] = [
    ("sign_in", "Signed in"),
    ("sign_in_failed", "Failed sign-in"),
    ("key_generated", "Key generated"),
    ("key_copied", "Key copied"),
    ("key_revoked", "Key revoked"),
    ("key_rolled", "Key rolled"),
    ("key_paused", "Key paused"),
    ("key_resumed", "Key resumed"),
    ("pepper_exported", "Pepper exported"),
    ("member_added", "Member added"),
    ("member_removed", "Member removed"),
    ("role_changed", "Role changed"),
    ("ownership_transferred", "Ownership transferred"),
    ("passphrase_changed", "Passphrase changed"),
    ("account_created", "Account created"),
    ("account_moved", "Account moved to a team server"),
    ("rows_sealed", "Rows sealed"),
    ("tamper_detected", "Change outside Keysmith detected"),
    ("anchor_reset", "Restored copy accepted"),
];

#[cfg(test)]
mod tests {
    use super::*;

    fn key(status: KeyStatus, created_at: i64) -> KeySummary {
        KeySummary {
            id: "k".into(),
            name: "Zapier Sync".into(),
            start: "AbCd".into(),
            created_at,
            created_by: MemberSummary {
                id: "m".into(),
                name: "Ösel Nilsson".into(),
                role: Role::Manager,
            },
            last_used_at: None,
            revoked_at: None,
            expires_at: None,
            replaced_by: None,
            paused_at: None,
            allowed_sources: Vec::new(),
            rate_limit: None,
            scopes: Vec::new(),
            status,
        }
    }

    #[test]
    fn expiring_soon_is_a_working_key_that_stops_within_the_days() {
        let now = 1_000 * DAY_MS;
        let at = |expires_at: Option<i64>, status: KeyStatus| KeySummary {
            expires_at,
            ..key(status, 0)
        };
        let cases = [
            (at(None, KeyStatus::Active), false),
            (at(Some(now + 1), KeyStatus::Active), true),
            (at(Some(now + 7 * DAY_MS), KeyStatus::Active), true),
            (at(Some(now + 7 * DAY_MS + 1), KeyStatus::Active), false),
            (at(Some(now), KeyStatus::Active), false),
            (at(Some(now - 1), KeyStatus::Expired), false),
            (at(Some(now + DAY_MS), KeyStatus::Revoked), false),
            (at(Some(now + DAY_MS), KeyStatus::Paused), false),
            (at(Some(i64::MAX), KeyStatus::Active), false),
        ];
        for (k, want) in cases {
            assert_eq!(k.expires_within(now, EXPIRING_SOON_DAYS), want, "{k:?}");
        }
    }

    #[test]
    fn unused_counts_from_the_last_use_or_the_creation() {
        let now = 1_000 * DAY_MS;
        let used = |last: Option<i64>, created: i64, status: KeyStatus| KeySummary {
            last_used_at: last,
            ..key(status, created)
        };
        let cases = [
            (used(None, now - 90 * DAY_MS, KeyStatus::Active), true),
            (used(None, now - 90 * DAY_MS + 1, KeyStatus::Active), false),
            (used(Some(now - DAY_MS), 0, KeyStatus::Active), false),
            (used(Some(now - 91 * DAY_MS), 0, KeyStatus::Active), true),
            (used(Some(now - 91 * DAY_MS), 0, KeyStatus::Paused), false),
            (used(Some(now - 91 * DAY_MS), 0, KeyStatus::Revoked), false),
            (used(Some(now - 91 * DAY_MS), 0, KeyStatus::Expired), false),
        ];
        for (k, want) in cases {
            assert_eq!(k.unused_for(now, UNUSED_DAYS_DEFAULT), want, "{k:?}");
        }
        // Other thresholds, including absurd ones, never overflow.
        assert!(used(None, 0, KeyStatus::Active).unused_for(now, 1));
        assert!(!used(None, 0, KeyStatus::Active).unused_for(now, i64::MAX));
    }

    #[test]
    fn search_matches_name_creator_and_status_ignoring_case() {
        let k = key(KeyStatus::Paused, 0);
        for (query, want) in [
            ("", true),
            ("   ", true),
            ("zapier", true),
            ("  SYNC ", true),
            ("ösel", true),
            ("ÖSEL", true),
            ("nilsson", true),
            ("paused", true),
            ("active", false),
            ("AbCd", false), // the first 4 characters are not searched: not a name
            ("zapier nilsson", false),
        ] {
            assert_eq!(k.matches(query), want, "{query:?}");
        }
        let rolled = KeySummary {
            replaced_by: Some("k2".into()),
            ..key(KeyStatus::Active, 0)
        };
        assert!(rolled.matches("grace"));
        assert!(!rolled.matches("paused"));
    }

    /// The prepared search (one text per key, one query per keystroke) finds exactly what
    /// searching each field on its own finds, for names in several scripts and cases, and
    /// queries that span two fields or hold the separator.
    #[test]
    fn the_prepared_search_matches_field_by_field() {
        let names = [
            "Zapier Sync",
            "ÖSEL",
            "İstanbul billing",
            "straße",
            "ΣΊΣΥΦΟΣ",
            "a",
            "sync\u{1f}x",
        ];
        let queries = [
            "",
            " ",
            "sync",
            "SYNC ",
            "zapier sync",
            "sync ösel",
            "ösel",
            "i̇stanbul",
            "STRASSE",
            "straße",
            "σίσυφος",
            "active",
            "e\u{1f}",
            "\u{1f}",
            "c ö",
            "nilsson",
        ];
        for status in [KeyStatus::Active, KeyStatus::Paused, KeyStatus::Revoked] {
            for name in names {
                for creator in names {
                    let mut k = key(status, 0);
                    k.name = name.into();
                    k.created_by.name = creator.into();
                    let text = k.search_text();
                    for query in queries {
                        let q = query.trim().to_lowercase();
                        let each = q.is_empty()
                            || (!q.contains(SearchQuery::SEPARATOR)
                                && [name, creator, k.status_label()]
                                    .iter()
                                    .any(|f| f.to_lowercase().contains(&q)));
                        assert_eq!(
                            SearchQuery::new(query).matches(&text),
                            each,
                            "{name:?} by {creator:?}, {status:?}, searched for {query:?}"
                        );
                        assert_eq!(k.matches(query), each);
                    }
                }
            }
        }
    }

    #[test]
    fn secrets_are_redacted_in_debug_and_display() {
        let k = RevealedKey::new("ksk_secretmaterial".into());
        assert!(!format!("{k:?}").contains("secretmaterial"));
        assert!(!format!("{k}").contains("secretmaterial"));
        let p = Passphrase::new("hunter22hunter22");
        assert!(!format!("{p:?}").contains("hunter22"));
        let req = UnlockRequest {
            name: "ann".into(),
            passphrase: p,
        };
        assert!(!format!("{req:?}").contains("hunter22"));
    }

    #[test]
    fn error_codes_serialise_as_snake_case() -> Result<(), serde_json::Error> {
        let e = IpcError {
            code: ErrorCode::ConfirmationMismatch,
            message: "Type REVOKE".into(),
        };
        let json = serde_json::to_string(&e)?;
        assert_eq!(
            json,
            r#"{"code":"confirmation_mismatch","message":"Type REVOKE"}"#
        );
        Ok(())
    }

    #[test]
    fn roles_round_trip_and_order() {
        for r in Role::ALL {
            assert_eq!(Role::parse(r.as_str()), Some(r));
        }
        assert!(Role::Owner > Role::Admin && Role::Admin > Role::Manager);
        assert!(Role::Manager > Role::Author && Role::Author > Role::Viewer);
        assert_eq!(Role::parse("Owner"), None);
    }
}
