//! The verifier's policy: which HTTP methods and paths each role's keys may call.
//!
//! The article: "the role of the user who generated the API key determines access to each
//! endpoint". A policy file is TOML, a list of `[[allow]]` rules:
//!
//! ```toml
//! [[allow]]
//! role = "manager"                 # owner | admin | manager | author | viewer
//! methods = ["GET", "HEAD"]        # HTTP methods (RFC 9110 §9), or ["*"] for any
//! paths = ["/v1/reports/**"]       # glob patterns on the request path
//! ```
//!
//! Anything no rule allows is refused (deny by default). In a path pattern `*` matches
//! within one path segment, `**` across segments, `?` one character, `{a,b}` alternatives
//! and `[a-z]` a class (the globset crate's syntax, with `/` as the separator). Patterns
//! must start with `/` and are matched against the path alone, without the query string.
//!
//! Loading validates everything: an unknown role or method, a bad pattern, a missing or
//! unknown field is a [`PolicyError`] that names the line.

use std::path::Path;

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};
use keysmith_types::{Role, ScopeInfo};
use serde::Deserialize;
use toml::Spanned;

/// Why a policy file was refused. `line` is 1-based; 0 when the file could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyError {
    pub file: String,
    pub line: usize,
    pub message: String,
}

impl std::fmt::Display for PolicyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.file, self.message)
        } else {
            write!(f, "{}:{}: {}", self.file, self.line, self.message)
        }
    }
}

impl std::error::Error for PolicyError {}

/// The HTTP methods a rule may name (RFC 9110 §9 and RFC 5789 for PATCH).
const METHODS: [&str; 9] = [
    "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH",
];
const ANY_METHOD: u16 = (1 << METHODS.len()) - 1;

/// The method's position in [`METHODS`]; `None` for a method no rule can name.
fn method_index(method: &str) -> Option<usize> {
    METHODS.iter().position(|m| *m == method)
}

fn method_bit(method: &str) -> Option<u16> {
    method_index(method).map(|i| 1u16 << i)
}

/// A path pattern as every rule and scope reads it: `*` stays within a segment
/// (`literal_separator`), and `\` escapes the next character.
fn glob(pattern: &str) -> Result<globset::Glob, globset::Error> {
    GlobBuilder::new(pattern)
        .literal_separator(true)
        .backslash_escape(true)
        .build()
}

/// One set of `globs`; an error names the line at `start`.
fn glob_set(
    globs: impl IntoIterator<Item = globset::Glob>,
    start: usize,
    err: &impl Fn(usize, String) -> PolicyError,
) -> Result<GlobSet, PolicyError> {
    let mut set = GlobSetBuilder::new();
    for g in globs {
        set.add(g);
    }
    set.build()
        .map_err(|e| err(start, format!("bad path patterns: {e}")))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    allow: Vec<Spanned<RuleSpec>>,
    #[serde(default)]
    scope: Vec<Spanned<ScopeSpec>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ScopeSpec {
    name: Spanned<String>,
    #[serde(default)]
    description: Option<String>,
    roles: Vec<Spanned<String>>,
    methods: Vec<Spanned<String>>,
    paths: Vec<Spanned<String>>,
}

/// A named permission (`scope.rs`): what it covers and who may give it.
#[derive(Debug, Clone)]
struct ScopeRule {
    info: ScopeInfo,
    rule: Rule,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleSpec {
    role: Spanned<String>,
    methods: Vec<Spanned<String>>,
    paths: Vec<Spanned<String>>,
}

#[derive(Debug, Clone)]
struct Rule {
    methods: u16,
    paths: GlobSet,
}

/// A loaded, validated policy.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    /// For each role (in [`Role::ALL`] order) and method (in [`METHODS`] order), every path
    /// pattern of that role's rules naming that method, as one set: a check is one match.
    allow: [[Option<GlobSet>; METHODS.len()]; 5],
    rule_count: usize,
    /// The `[[scope]]` tables, in file order.
    scopes: Vec<ScopeRule>,
    /// Scope name → position in `scopes` (foldhash: names come from this file and from
    /// sealed key rows, never from a request).
    scope_ix: std::collections::HashMap<String, usize, foldhash::fast::RandomState>,
}

/// One request's method and path, prepared once for every rule and scope they are matched
/// against ([`Policy::allows_request`], [`Policy::scopes_cover`]).
#[derive(Debug, Clone)]
pub struct RequestTarget<'a> {
    /// The method's position in [`METHODS`]; `None` for a method no rule can name.
    method: Option<usize>,
    get_or_head: bool,
    path: globset::Candidate<'a>,
}

impl<'a> RequestTarget<'a> {
    /// `method` as sent (case-sensitive, RFC 9110 §9.1) and `path` as returned by
    /// [`request_path`].
    pub fn new(method: &str, path: &'a str) -> RequestTarget<'a> {
        RequestTarget {
            method: method_index(method),
            get_or_head: method == "GET" || method == "HEAD",
            path: globset::Candidate::new(path),
        }
    }
}

impl Policy {
    /// Reads and validates the policy file at `path`.
    ///
    /// # Errors
    /// [`PolicyError`] naming the file and line.
    pub fn load(path: &Path) -> Result<Policy, PolicyError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| PolicyError {
            file: file.clone(),
            line: 0,
            message: format!("cannot read the policy file: {e}"),
        })?;
        Policy::parse(&text, &file)
    }

    /// Parses policy text; `file` only names the source in errors.
    ///
    /// # Errors
    /// [`PolicyError`] naming the line of the first problem.
    pub fn parse(text: &str, file: &str) -> Result<Policy, PolicyError> {
        let err = |offset: usize, message: String| PolicyError {
            file: file.to_owned(),
            line: line_of(text, offset),
            message,
        };
        let parsed: File = toml::from_str(text).map_err(|e| {
            let offset = e.span().map_or(0, |s| s.start);
            err(offset, e.message().trim().to_owned())
        })?;
        let mut policy = Policy::default();
        // Each role's and method's patterns, gathered from every rule for one set each.
        let mut gathered: [[Vec<globset::Glob>; METHODS.len()]; 5] = Default::default();
        for rule in parsed.allow {
            let rule_start = rule.span().start;
            let spec = rule.into_inner();
            let role = parse_role(&spec.role, &err)?;
            let (methods, globs) = compile_parts(rule_start, &spec.methods, &spec.paths, &err)?;
            for (m, patterns) in gathered[role_index(role)].iter_mut().enumerate() {
                if methods & (1 << m) != 0 {
                    patterns.extend(globs.iter().cloned());
                }
            }
            policy.rule_count += 1;
        }
        for (role, methods) in gathered.into_iter().enumerate() {
            for (m, globs) in methods.into_iter().enumerate() {
                if !globs.is_empty() {
                    policy.allow[role][m] = Some(glob_set(globs, 0, &err)?);
                }
            }
        }
        for scope in parsed.scope {
            let start = scope.span().start;
            let spec = scope.into_inner();
            let name = spec.name.get_ref();
            crate::scope::check_name(name).map_err(|m| err(spec.name.span().start, m))?;
            if name == crate::scope::READ_ONLY {
                return Err(err(
                    spec.name.span().start,
                    format!("scope {name:?} is built in and cannot be redefined"),
                ));
            }
            if policy.scopes.iter().any(|s| s.info.name == *name) {
                return Err(err(
                    spec.name.span().start,
                    format!("scope {name:?} is defined twice"),
                ));
            }
            if spec.roles.is_empty() {
                return Err(err(
                    start,
                    "this scope's `roles` lists no role that may give it".into(),
                ));
            }
            let mut roles = Vec::new();
            for r in &spec.roles {
                let role = parse_role(r, &err)?;
                if !roles.contains(&role) {
                    roles.push(role);
                }
            }
            let description = spec.description.unwrap_or_default();
            if description.chars().count() > 200 || description.chars().any(char::is_control) {
                return Err(err(
                    start,
                    "a scope's `description` is at most 200 characters, without control characters"
                        .into(),
                ));
            }
            let rule = compile_rule(start, &spec.methods, &spec.paths, &err)?;
            policy.scope_ix.insert(name.clone(), policy.scopes.len());
            policy.scopes.push(ScopeRule {
                info: ScopeInfo {
                    name: name.clone(),
                    description,
                    roles,
                },
                rule,
            });
        }
        if policy.rule_count == 0 {
            return Err(err(
                0,
                "no [[allow]] rule: every request would be refused (see examples/policy.toml)"
                    .into(),
            ));
        }
        Ok(policy)
    }

    /// How many `[[allow]]` rules the policy holds.
    pub fn rule_count(&self) -> usize {
        self.rule_count
    }

    /// Whether a key of a member with `role` may call `method` on `path` (a path as returned
    /// by [`request_path`]). Methods are case-sensitive (RFC 9110 §9.1).
    pub fn allows(&self, role: Role, method: &str, path: &str) -> bool {
        self.allows_request(role, &RequestTarget::new(method, path))
    }

    /// [`Policy::allows`] for a prepared request.
    pub fn allows_request(&self, role: Role, request: &RequestTarget<'_>) -> bool {
        request
            .method
            .and_then(|m| self.allow[role_index(role)][m].as_ref())
            .is_some_and(|set| set.is_match_candidate(&request.path))
    }
}

fn parse_role(
    role: &Spanned<String>,
    err: &impl Fn(usize, String) -> PolicyError,
) -> Result<Role, PolicyError> {
    let name = role.get_ref();
    Role::parse(name).ok_or_else(|| {
        err(
            role.span().start,
            format!("unknown role {name:?} (expected owner, admin, manager, author or viewer)"),
        )
    })
}

/// Compiles one rule's (or scope's) methods and path patterns.
fn compile_rule(
    start: usize,
    methods: &[Spanned<String>],
    paths: &[Spanned<String>],
    err: &impl Fn(usize, String) -> PolicyError,
) -> Result<Rule, PolicyError> {
    let (bits, globs) = compile_parts(start, methods, paths, err)?;
    Ok(Rule {
        methods: bits,
        paths: glob_set(globs, start, err)?,
    })
}

/// One rule's (or scope's) methods as bits of [`METHODS`], and its checked path patterns.
fn compile_parts(
    start: usize,
    methods: &[Spanned<String>],
    paths: &[Spanned<String>],
    err: &impl Fn(usize, String) -> PolicyError,
) -> Result<(u16, Vec<globset::Glob>), PolicyError> {
    if methods.is_empty() {
        return Err(err(start, "this rule's `methods` lists no method".into()));
    }
    let mut bits = 0u16;
    for m in methods {
        let bit = if m.get_ref() == "*" {
            ANY_METHOD
        } else {
            method_bit(m.get_ref()).ok_or_else(|| {
                err(
                    m.span().start,
                    format!(
                        "unknown HTTP method {:?} (expected one of {} in capitals, or \"*\")",
                        m.get_ref(),
                        METHODS.join(", ")
                    ),
                )
            })?
        };
        bits |= bit;
    }
    if paths.is_empty() {
        return Err(err(start, "this rule's `paths` lists no pattern".into()));
    }
    let mut globs = Vec::with_capacity(paths.len());
    for p in paths {
        let pattern = p.get_ref();
        check_pattern(pattern).map_err(|m| err(p.span().start, m))?;
        globs.push(glob(pattern).map_err(|e| {
            err(
                p.span().start,
                format!("bad path pattern {pattern:?}: {}", e.kind()),
            )
        })?);
    }
    Ok((bits, globs))
}

impl Policy {
    /// The `[[scope]]` tables, in file order (without the built-in `read-only`).
    pub fn scope_infos(&self) -> impl Iterator<Item = ScopeInfo> + '_ {
        self.scopes.iter().map(|s| s.info.clone())
    }

    /// Whether one of a key's `scopes` covers `method` on `path`: the built-in `read-only`
    /// covers `GET` and `HEAD` anywhere; a name the policy does not define covers nothing.
    /// The creator's role is checked separately ([`Policy::allows`]): a request needs both.
    pub fn scopes_allow(&self, scopes: &[Box<str>], method: &str, path: &str) -> bool {
        self.scopes_cover(scopes, &RequestTarget::new(method, path))
    }

    /// [`Policy::scopes_allow`] for a prepared request.
    pub fn scopes_cover(&self, scopes: &[Box<str>], request: &RequestTarget<'_>) -> bool {
        scopes.iter().any(|name| {
            if &**name == crate::scope::READ_ONLY {
                return request.get_or_head;
            }
            let (Some(m), Some(&at)) = (request.method, self.scope_ix.get(&**name)) else {
                return false;
            };
            let rule = &self.scopes[at].rule;
            rule.methods & (1 << m) != 0 && rule.paths.is_match_candidate(&request.path)
        })
    }
}

fn role_index(role: Role) -> usize {
    Role::ALL.iter().position(|r| *r == role).unwrap_or(0)
}

fn line_of(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    text.as_bytes()[..end]
        .iter()
        .filter(|b| **b == b'\n')
        .count()
        + 1
}

/// Why an original request's target was refused. Describes the defect, never the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    #[error("the request target is empty or longer than 8192 bytes")]
    Length,
    #[error(
        "the request target must be a path starting with \"/\" (origin-form, RFC 9112 §3.2.1)"
    )]
    NotOriginForm,
    #[error("the request target holds a character outside the accepted grammar (byte {0}): no \";\", \"#\", \"\\\", space, control or non-ASCII character")]
    Character(usize),
    #[error("the request target holds a percent-escape that is malformed or not accepted (byte {0}): letters, digits, \"-._~\", \"/\", \"\\\", \"%\", \";\", \"?\", \"#\", control and non-ASCII bytes are never percent-encoded in a path")]
    Escape(usize),
    #[error(
        "the request path holds an empty segment, or one of only dots and spaces (\".\", \"..\")"
    )]
    DotOrEmptySegment,
    #[error(
        "the request's query asks for another method (a method-override parameter such as _method)"
    )]
    MethodOverride,
}

/// The longest original target accepted, in bytes.
pub const MAX_URI_LEN: usize = 8192;

/// RFC 3986 §2.3 unreserved characters: never percent-encoded (§6.2.2.2 would decode them).
fn unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

/// The other characters a path segment may hold as they are: RFC 3986 sub-delims without
/// ";" (servlet containers cut a segment's `;parameters` off before routing), ":" and "@".
fn segment_extra(b: u8) -> bool {
    matches!(
        b,
        b'!' | b'$' | b'&' | b'\'' | b'(' | b')' | b'*' | b'+' | b',' | b'=' | b':' | b'@'
    )
}

/// The bytes a path may carry percent-encoded: printable ASCII that is not unreserved and
/// that no upstream reads as structure once decoded (not "/", "\", "%", ";", "?", "#").
/// A decoded path therefore has exactly the raw path's segments, and decoding it again
/// changes nothing (no "%" survives the first decoding).
fn encodable_in_path(b: u8) -> bool {
    (0x20..0x7f).contains(&b)
        && !unreserved(b)
        && !matches!(b, b'/' | b'\\' | b'%' | b';' | b'?' | b'#')
}

/// Query parameter names that ask frameworks to dispatch on another method (Rails, Laravel,
/// Symfony `_method`; the header names some accept as parameters), compared lowercased.
const METHOD_OVERRIDE_PARAMS: [&str; 4] = [
    "_method",
    "x-http-method-override",
    "x-http-method",
    "x-method-override",
];

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// The byte of the percent-escape starting at `at`, if `bytes[at..]` starts with `%XX`.
fn escape_at(bytes: &[u8], at: usize) -> Option<u8> {
    match bytes.get(at..at + 3) {
        Some([b'%', h, l]) => Some(hex(*h)? << 4 | hex(*l)?),
        _ => None,
    }
}

/// The path a policy is matched against, from an original request target (`/a/b?x=1`).
///
/// An allowlist, not a denylist (OWASP Authorization Cheat Sheet: validate, deny by
/// default): the verifier and whatever serves the request behind the proxy must read the
/// same path, so only targets that every common upstream reads one way are accepted, and
/// everything else is refused rather than interpreted:
///
/// - origin-form only (RFC 9112 §3.2.1): `/` path, then optionally `?` query; no fragment
///   (`#`), no absolute-form, no `*`;
/// - path segments of RFC 3986 unreserved characters, `!$&'()*+,=:@`, and percent-escapes
///   of the other printable ASCII characters except `/ \ % ; ? #` ([`encodable_in_path`]);
///   so no `;parameters`, no double encoding (`%25`), no encoded `/`, `\` or dot, no
///   encoded unreserved character (`%73` for `s`), no control, non-ASCII or overlong byte;
/// - no empty segment except a trailing slash, and no segment of only dots and spaces;
/// - a query of the same characters plus `/` and `?`, in which any escape but one of an
///   unreserved character may appear (the query is never matched), with no method-override
///   parameter (`_method=DELETE`).
///
/// Every path accepted decodes, segment by segment, to a path with the same segments, and
/// a rule of unreserved literals, `*` and `**` matches the raw path exactly when it matches
/// the decoded one (`tests/differential.rs` checks this against real upstream servers).
///
/// # Errors
/// [`PathError`] naming the defect.
pub fn request_path(target: &str) -> Result<&str, PathError> {
    if target.is_empty() || target.len() > MAX_URI_LEN {
        return Err(PathError::Length);
    }
    let bytes = target.as_bytes();
    if bytes[0] != b'/' {
        return Err(PathError::NotOriginForm);
    }
    let path_end = target.find('?').unwrap_or(target.len());
    check_path(&bytes[..path_end])?;
    if path_end < bytes.len() {
        check_query(bytes, path_end + 1)?;
    }
    Ok(&target[..path_end])
}

fn check_path(path: &[u8]) -> Result<(), PathError> {
    let mut i = 0;
    // Each segment: bytes after a "/" up to the next one.
    while i < path.len() {
        debug_assert_eq!(path[i], b'/');
        let start = i + 1;
        let mut j = start;
        let mut only_dots_and_spaces = true;
        while j < path.len() && path[j] != b'/' {
            let b = path[j];
            if b == b'%' {
                let decoded = escape_at(path, j).ok_or(PathError::Escape(j))?;
                if !encodable_in_path(decoded) {
                    return Err(PathError::Escape(j));
                }
                only_dots_and_spaces &= decoded == b' ';
                j += 3;
            } else if unreserved(b) || segment_extra(b) {
                only_dots_and_spaces &= b == b'.';
                j += 1;
            } else {
                return Err(PathError::Character(j));
            }
        }
        let empty = j == start;
        let last = j == path.len();
        if (empty && !last) || (!empty && only_dots_and_spaces) {
            return Err(PathError::DotOrEmptySegment);
        }
        i = j;
    }
    Ok(())
}

fn check_query(bytes: &[u8], from: usize) -> Result<(), PathError> {
    let mut i = from;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'%' {
            let decoded = escape_at(bytes, i).ok_or(PathError::Escape(i))?;
            if unreserved(decoded) {
                return Err(PathError::Escape(i));
            }
            i += 3;
        } else if unreserved(b) || segment_extra(b) || b == b'/' || b == b'?' {
            i += 1;
        } else {
            return Err(PathError::Character(i));
        }
    }
    // Unreserved characters are never encoded here, so an override parameter cannot hide.
    let query = &bytes[from..];
    for pair in query.split(|b| *b == b'&') {
        let name = pair.split(|b| *b == b'=').next().unwrap_or_default();
        let name = name.to_ascii_lowercase();
        if METHOD_OVERRIDE_PARAMS
            .iter()
            .any(|p| name.starts_with(p.as_bytes()))
        {
            return Err(PathError::MethodOverride);
        }
    }
    Ok(())
}

/// The path as an upstream that percent-decodes it reads it (`/a%20b` → `/a b`), for a path
/// [`request_path`] accepted: each escape there stands for one printable ASCII character.
/// Tests compare what real upstream servers saw with this.
pub fn decoded_path(path: &str) -> String {
    let bytes = path.as_bytes();
    let mut out = String::with_capacity(path.len());
    let mut i = 0;
    while i < bytes.len() {
        match escape_at(bytes, i) {
            Some(b) => {
                out.push(char::from(b));
                i += 3;
            }
            None => {
                out.push(char::from(bytes[i]));
                i += 1;
            }
        }
    }
    out
}

/// Checks a rule's path pattern before it is compiled: it starts with "/", and its literal
/// parts are characters a path holds as they are, so the pattern cannot name a form the
/// verifier refuses or an upstream decodes differently (`%`, `;`, `#`, `\`, space,
/// non-ASCII).
fn check_pattern(pattern: &str) -> Result<(), String> {
    if !pattern.starts_with('/') {
        return Err(format!("path pattern {pattern:?} must start with \"/\""));
    }
    // Glob syntax: * ** ? [..] {a,b}, and "!" / "^" / "-" inside classes.
    let glob = |b: u8| {
        matches!(
            b,
            b'*' | b'?' | b'[' | b']' | b'{' | b'}' | b',' | b'!' | b'^' | b'-'
        )
    };
    if let Some(bad) = pattern
        .bytes()
        .find(|b| !(unreserved(*b) || segment_extra(*b) || *b == b'/' || glob(*b)))
    {
        return Err(format!(
            "path pattern {pattern:?} holds {:?}, which a request path never carries as it is (write patterns with letters, digits, -._~ and !$&'()+,=:@ between the slashes)",
            char::from(bad)
        ));
    }
    if pattern[1..].split('/').enumerate().any(|(i, seg)| {
        seg == "." || seg == ".." || (seg.is_empty() && i + 1 < pattern[1..].split('/').count())
    }) {
        return Err(format!(
            "path pattern {pattern:?} holds an empty, \".\" or \"..\" segment, which requests never match"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = r#"
[[allow]]
role = "admin"
methods = ["*"]
paths = ["/**"]

[[allow]]
role = "manager"
methods = ["GET", "HEAD"]
paths = ["/v1/reports", "/v1/reports/**"]
"#;

    #[test]
    fn allows_what_rules_say_and_nothing_else() {
        let p = Policy::parse(EXAMPLE, "t.toml").unwrap();
        assert_eq!(p.rule_count(), 2);
        assert!(p.allows(Role::Admin, "DELETE", "/v1/keys/9"));
        assert!(p.allows(Role::Manager, "GET", "/v1/reports"));
        assert!(p.allows(Role::Manager, "HEAD", "/v1/reports/2026/11"));
        assert!(!p.allows(Role::Manager, "POST", "/v1/reports"));
        assert!(!p.allows(Role::Manager, "GET", "/v1/reportsx"));
        assert!(!p.allows(Role::Manager, "get", "/v1/reports"));
        assert!(!p.allows(Role::Owner, "GET", "/"));
        assert!(!p.allows(Role::Author, "GET", "/v1/reports"));
    }

    #[test]
    fn single_star_stays_in_one_segment() {
        let p = Policy::parse(
            "[[allow]]\nrole = \"manager\"\nmethods = [\"GET\"]\npaths = [\"/v1/*/items\"]\n",
            "t",
        )
        .unwrap();
        assert!(p.allows(Role::Manager, "GET", "/v1/a/items"));
        assert!(!p.allows(Role::Manager, "GET", "/v1/a/b/items"));
    }

    #[test]
    fn scopes_are_named_permissions_a_key_intersects_with_its_role() {
        let p = Policy::parse(
            r#"
[[allow]]
role = "manager"
methods = ["GET", "POST"]
paths = ["/v1/**"]

[[scope]]
name = "reports:read"
description = "Read reports"
roles = ["manager", "owner", "manager"]
methods = ["GET", "HEAD"]
paths = ["/v1/reports", "/v1/reports/**"]
"#,
            "t.toml",
        )
        .unwrap();
        let infos: Vec<ScopeInfo> = p.scope_infos().collect();
        assert_eq!(
            infos,
            [ScopeInfo {
                name: "reports:read".into(),
                description: "Read reports".into(),
                roles: vec![Role::Manager, Role::Owner],
            }]
        );
        let s = |names: &[&str]| {
            names
                .iter()
                .map(|n| Box::<str>::from(*n))
                .collect::<Vec<_>>()
        };
        assert!(p.scopes_allow(&s(&["reports:read"]), "GET", "/v1/reports/9"));
        assert!(p.scopes_allow(&s(&["reports:read"]), "HEAD", "/v1/reports"));
        assert!(!p.scopes_allow(&s(&["reports:read"]), "POST", "/v1/reports"));
        assert!(!p.scopes_allow(&s(&["reports:read"]), "GET", "/v1/orders"));
        assert!(p.scopes_allow(&s(&["read-only"]), "GET", "/v1/orders"));
        assert!(p.scopes_allow(&s(&["read-only"]), "HEAD", "/anything"));
        for method in [
            "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT", "get", "FETCH",
        ] {
            assert!(
                !p.scopes_allow(&s(&["read-only", "reports:read"]), method, "/v1/orders"),
                "{method}"
            );
        }
        assert!(!p.scopes_allow(&s(&["reports:write"]), "GET", "/v1/reports/9"));
        assert!(!p.scopes_allow(&[], "GET", "/v1/reports/9"));
    }

    /// The example the README points to loads, with its two scopes.
    #[test]
    fn the_example_policy_loads() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/policy.toml");
        let p = Policy::load(&path).unwrap();
        assert_eq!(p.rule_count(), 4);
        let names: Vec<String> = p.scope_infos().map(|s| s.name).collect();
        assert_eq!(names, ["reports:read", "orders:create"]);
        assert!(p.allows(Role::Manager, "POST", "/v1/orders"));
        assert!(!p.allows(Role::Manager, "DELETE", "/v1/orders"));
    }

    #[test]
    fn scope_errors_name_the_line() {
        let rule = "[[allow]]\nrole = \"owner\"\nmethods = [\"*\"]\npaths = [\"/**\"]\n";
        let scope = |body: &str| format!("{rule}\n[[scope]]\n{body}");
        let ok = "name = \"a:b\"\nroles = [\"owner\"]\nmethods = [\"GET\"]\npaths = [\"/a\"]\n";
        assert!(Policy::parse(&scope(ok), "p.toml").is_ok());
        let long = format!("description = \"{}\"\n{ok}", "x".repeat(201));
        let cases = [
            (scope("name = \"A:b\"\nroles = [\"owner\"]\nmethods = [\"GET\"]\npaths = [\"/a\"]\n"), 7, "must start with a lowercase letter"),
            (scope("name = \"a b\"\nroles = [\"owner\"]\nmethods = [\"GET\"]\npaths = [\"/a\"]\n"), 7, "holds ' '"),
            (scope("name = \"read-only\"\nroles = [\"owner\"]\nmethods = [\"GET\"]\npaths = [\"/a\"]\n"), 7, "built in"),
            (scope("name = \"a:b\"\nroles = [\"boss\"]\nmethods = [\"GET\"]\npaths = [\"/a\"]\n"), 8, "unknown role"),
            (scope("name = \"a:b\"\nroles = []\nmethods = [\"GET\"]\npaths = [\"/a\"]\n"), 6, "lists no role"),
            (scope("name = \"a:b\"\nroles = [\"owner\"]\nmethods = [\"FETCH\"]\npaths = [\"/a\"]\n"), 9, "unknown HTTP method"),
            (scope("name = \"a:b\"\nroles = [\"owner\"]\nmethods = [\"GET\"]\npaths = [\"a\"]\n"), 10, "must start with"),
            (scope("name = \"a:b\"\nroles = [\"owner\"]\nmethods = [\"GET\"]\n"), 6, "paths"),
            (scope(&format!("{ok}scopes = 1\n")), 11, "unknown field"),
            (scope(&long), 6, "at most 200 characters"),
            (format!("{}\n[[scope]]\n{ok}", scope(ok)), 13, "defined twice"),
        ];
        for (text, line, needle) in cases {
            let e = Policy::parse(&text, "p.toml").unwrap_err();
            assert_eq!(e.line, line, "{text}\n{e}");
            assert!(e.message.contains(needle), "{text}\n{e}");
        }
    }

    #[test]
    fn errors_name_the_line() {
        let cases = [
            (
                "[[allow]]\nrole = \"boss\"\nmethods = [\"GET\"]\npaths = [\"/\"]\n",
                2,
                "unknown role",
            ),
            (
                "[[allow]]\nrole = \"admin\"\nmethods = [\"GET\"]\npaths = [\"/a/[z\"]\n",
                4,
                "bad path pattern",
            ),
            (
                "[[allow]]\nrole = \"admin\"\nmethods = [\"GET\"]\npaths = [\"a/b\"]\n",
                4,
                "must start with",
            ),
            (
                "\n\n[[allow]]\nrole = \"admin\"\nmethods = [\"FETCH\"]\npaths = [\"/\"]\n",
                5,
                "unknown HTTP method",
            ),
            (
                "[[allow]]\nrole = \"admin\"\npaths = [\"/\"]\n",
                1,
                "methods",
            ),
            (
                "[[allow]]\nrole = \"admin\"\nmethod = [\"GET\"]\nmethods = [\"GET\"]\npaths = [\"/\"]\n",
                3,
                "unknown field",
            ),
            ("[[allow]\n", 1, ""),
            ("# nothing\n", 1, "no [[allow]] rule"),
        ];
        for (text, line, needle) in cases {
            let e = Policy::parse(text, "p.toml").unwrap_err();
            assert_eq!(e.line, line, "{text:?} gave {e}");
            assert!(e.message.contains(needle), "{text:?} gave {e}");
            assert!(e.to_string().starts_with(&format!("p.toml:{line}: ")));
        }
    }

    #[test]
    fn request_paths() {
        for (target, path) in [
            ("/a/b?x=1", "/a/b"),
            ("/", "/"),
            ("/a/b/", "/a/b/"),
            ("/v1/reports/2026/11", "/v1/reports/2026/11"),
            ("/v1/reports/a%20b", "/v1/reports/a%20b"),
            ("/v1/files/c%2B%2B", "/v1/files/c%2B%2B"),
            ("/v1/x:y@z!$&'()*+,=", "/v1/x:y@z!$&'()*+,="),
            ("/v1/reports/v1.2", "/v1/reports/v1.2"),
            ("/v1/reports/.well", "/v1/reports/.well"),
            ("/a?q=caf%C3%A9&r=%2F%25&s=/?", "/a"),
            ("/a?", "/a"),
        ] {
            assert_eq!(request_path(target), Ok(path), "{target}");
        }
        use PathError::*;
        for (target, error) in [
            ("", Length),
            ("a/b", NotOriginForm),
            ("*", NotOriginForm),
            ("http://h.example/a?q", NotOriginForm),
            // The issue's inputs: each reached the upstream as another path.
            ("/v1/reports/..;/admin", Character(14)),
            ("/v1/reports#/../../admin", Character(11)),
            ("/v1/reports/%252e%252e/admin", Escape(12)),
            // Dot and empty segments, also encoded or padded.
            ("/a/../b", DotOrEmptySegment),
            ("/a/./b", DotOrEmptySegment),
            ("/..", DotOrEmptySegment),
            ("/a/...", DotOrEmptySegment),
            ("/a/..%20/b", DotOrEmptySegment),
            ("//a", DotOrEmptySegment),
            ("/a//b", DotOrEmptySegment),
            ("/a/%2e%2e/b", Escape(3)),
            ("/a/.%2E/b", Escape(4)),
            ("/a%2Fb", Escape(2)),
            ("/a%2fb", Escape(2)),
            ("/a%5cb", Escape(2)),
            ("/a\\b", Character(2)),
            ("/a\tb", Character(2)),
            ("/a b", Character(2)),
            ("/a;jsessionid=1", Character(2)),
            ("/a%3Bb", Escape(2)),
            ("/a%3Fb", Escape(2)),
            ("/a%23b", Escape(2)),
            ("/a%00", Escape(2)),
            ("/a%7F", Escape(2)),
            ("/a%C0%AE", Escape(2)),
            ("/a%e0%80%ae", Escape(2)),
            ("/a%u002e", Escape(2)),
            ("/a%", Escape(2)),
            ("/a%4", Escape(2)),
            ("/a%zz", Escape(2)),
            ("/v1/report%73", Escape(10)),
            ("/v1/%7Ex", Escape(4)),
            ("/caf\u{e9}", Character(4)),
            ("/a?x#f", Character(4)),
            ("/a?x;y", Character(4)),
            ("/a?%61", Escape(3)),
            ("/a?_method=DELETE", MethodOverride),
            ("/a?x=1&_METHOD=put", MethodOverride),
            ("/a?_method[]=put", Character(10)),
            ("/a?x-http-method-override=PUT", MethodOverride),
        ] {
            assert_eq!(request_path(target), Err(error), "{target}");
        }
        assert_eq!(request_path(&"/a".repeat(5000)), Err(Length));
    }

    #[test]
    fn patterns_use_only_what_paths_carry_as_they_are() {
        for bad in [
            "/v1/a%20b",
            "/v1/a;b",
            "/v1/a b",
            "/v1/caf\u{e9}",
            "/v1/a\\*",
            "/v1/../x",
            "/v1//x",
            "v1/x",
        ] {
            let text =
                format!("[[allow]]\nrole = \"admin\"\nmethods = [\"GET\"]\npaths = [{bad:?}]\n");
            let e = Policy::parse(&text, "p.toml").unwrap_err();
            assert_eq!(e.line, 4, "{bad}: {e}");
        }
        for good in [
            "/v1/**",
            "/v1/items/*",
            "/v1/{a,b}/[0-9]?",
            "/v1/x:y@z",
            "/v1/reports/",
        ] {
            let text =
                format!("[[allow]]\nrole = \"admin\"\nmethods = [\"GET\"]\npaths = [{good:?}]\n");
            assert!(Policy::parse(&text, "p.toml").is_ok(), "{good}");
        }
    }

    /// Pieces an attacker combines into request targets.
    const PIECES: [&str; 40] = [
        "/", "/", "/", "a", "v1", "reports", "admin", ".", "..", "...", "%2e", "%2E", "%252e",
        "%2f", "%2F", "%5c", "\\", ";", "%3b", "#", "?", "&", "=", "_method", "%20", "%41", "%7e",
        "%25", "%", "%c0%ae", "%C3%A9", "\u{e9}", "*", "~", "-", "x:y", "@", "+", "%2B", " ",
    ];

    fn pattern_set() -> Vec<(&'static str, GlobSet)> {
        [
            "/v1/reports/**",
            "/v1/reports",
            "/v1/*",
            "/v1/*/admin",
            "/a/**",
            "/a/*",
            "/**/admin",
            "/reports*",
            "/a/*/*",
        ]
        .into_iter()
        .map(|p| {
            let mut set = GlobSetBuilder::new();
            set.add(glob(p).unwrap());
            (p, set.build().unwrap())
        })
        .collect()
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(20_000))]
        /// Whatever pieces a target is made of: an accepted path decodes to a path with the
        /// same segments, nothing structural inside them, nothing left to decode, and every
        /// pattern of literals and wildcards matches the raw path exactly when it matches
        /// the decoded one (what an upstream routes on).
        #[test]
        fn accepted_paths_read_one_way(picks in proptest::collection::vec(0..PIECES.len(), 1..12)) {
            let target: String = std::iter::once("/").chain(picks.iter().map(|i| PIECES[*i])).collect();
            if let Ok(path) = request_path(&target) {
                let decoded = decoded_path(path);
                proptest::prop_assert_eq!(decoded.matches('/').count(), path.matches('/').count());
                proptest::prop_assert!(!decoded.contains(['%', ';', '\\', '?', '#']));
                proptest::prop_assert!(decoded.chars().all(|c| (' '..='~').contains(&c)));
                let segments: Vec<&str> = decoded[1..].split('/').collect();
                for (i, seg) in segments.iter().enumerate() {
                    proptest::prop_assert!(!seg.is_empty() || i + 1 == segments.len(), "{target}");
                    proptest::prop_assert!(seg.is_empty() || !seg.chars().all(|c| c == '.' || c == ' '), "{target}");
                }
                proptest::prop_assert_eq!(decoded_path(&decoded), decoded.clone());
                for (pattern, set) in pattern_set() {
                    proptest::prop_assert_eq!(
                        set.is_match(path),
                        set.is_match(&decoded),
                        "{} on {} / {}", pattern, target, decoded
                    );
                }
            }
        }
    }

    /// Patterns, methods and paths random policies are made of.
    const RULE_PATTERNS: [&str; 10] = [
        "/**",
        "/v1/**",
        "/v1/reports",
        "/v1/reports/**",
        "/v1/*/items",
        "/v1/orders",
        "/v?/x",
        "/v1/{reports,orders}/**",
        "/v1/[a-o]*",
        "/**/admin",
    ];
    const RULE_METHODS: [&str; 5] = ["GET", "HEAD", "POST", "DELETE", "*"];
    const ASKED_METHODS: [&str; 7] = ["GET", "HEAD", "POST", "DELETE", "PATCH", "get", "BREW"];
    const ASKED_PATHS: [&str; 11] = [
        "/",
        "/v1",
        "/v1/reports",
        "/v1/reports/",
        "/v1/reports/2026/11",
        "/v1/orders",
        "/v1/orders/7/items",
        "/v2/x",
        "/v1/keys/admin",
        "/admin",
        "/v1/zebra",
    ];

    /// (role, methods, patterns), each an index into the tables above.
    type RuleSpecs = Vec<(usize, Vec<usize>, Vec<usize>)>;

    fn rules_toml(table: &str, rules: &RuleSpecs, named: bool) -> String {
        let mut text = String::new();
        for (i, (role, methods, paths)) in rules.iter().enumerate() {
            let list = |items: Vec<&str>| {
                items
                    .iter()
                    .map(|m| format!("{m:?}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            text += &format!("[[{table}]]\n");
            if named {
                text += &format!("name = \"s{i}\"\nroles = [\"owner\"]\n");
            } else {
                text += &format!("role = {:?}\n", Role::ALL[*role].as_str());
            }
            text += &format!(
                "methods = [{}]\npaths = [{}]\n",
                list(methods.iter().map(|m| RULE_METHODS[*m]).collect()),
                list(paths.iter().map(|p| RULE_PATTERNS[*p]).collect())
            );
        }
        text
    }

    /// The rule-by-rule reading of a rule list: one glob at a time.
    fn reference(methods: &[usize], paths: &[usize], method: &str, path: &str) -> bool {
        let method_ok = methods.iter().any(|m| {
            RULE_METHODS[*m] == "*" && METHODS.contains(&method) || RULE_METHODS[*m] == method
        });
        method_ok
            && paths.iter().any(|p| {
                glob(RULE_PATTERNS[*p])
                    .unwrap()
                    .compile_matcher()
                    .is_match(path)
            })
    }

    fn rule_specs(max: usize) -> impl proptest::strategy::Strategy<Value = RuleSpecs> {
        use proptest::collection::vec;
        vec(
            (
                0..Role::ALL.len(),
                vec(0..RULE_METHODS.len(), 1..3),
                vec(0..RULE_PATTERNS.len(), 1..4),
            ),
            1..max,
        )
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(300))]
        /// The per-role, per-method merged sets answer exactly as the rules read one by one:
        /// a request is allowed when some rule of the role names its method and has a
        /// pattern matching its path.
        #[test]
        fn merged_rules_answer_as_each_rule_would(rules in rule_specs(7)) {
            let p = Policy::parse(&rules_toml("allow", &rules, false), "t.toml").unwrap();
            for role in Role::ALL {
                for method in ASKED_METHODS {
                    for path in ASKED_PATHS {
                        let expected = rules.iter().any(|(r, m, ps)| {
                            Role::ALL[*r] == role && reference(m, ps, method, path)
                        });
                        proptest::prop_assert_eq!(
                            p.allows(role, method, path), expected, "{:?} {} {}", role, method, path
                        );
                    }
                }
            }
        }

        /// A key's scopes cover a request when one of them (by name) names its method and
        /// has a pattern matching its path; `read-only` covers GET and HEAD; an unknown name
        /// covers nothing.
        #[test]
        fn scopes_answer_as_each_scope_would(
            scopes in rule_specs(5),
            held in proptest::collection::vec(0..7usize, 0..4),
        ) {
            let text = rules_toml("allow", &vec![(0, vec![4], vec![0])], false)
                + &rules_toml("scope", &scopes, true);
            let p = Policy::parse(&text, "t.toml").unwrap();
            // 5 is read-only, 6 a name the policy does not define.
            let names: Vec<Box<str>> = held
                .iter()
                .map(|i| match i {
                    5 => crate::scope::READ_ONLY.into(),
                    6 => "unknown:scope".into(),
                    i => format!("s{i}").into(),
                })
                .collect();
            for method in ASKED_METHODS {
                for path in ASKED_PATHS {
                    let expected = held.iter().any(|i| match i {
                        5 => method == "GET" || method == "HEAD",
                        i => scopes.get(*i).is_some_and(|(_, m, ps)| reference(m, ps, method, path)),
                    });
                    proptest::prop_assert_eq!(
                        p.scopes_allow(&names, method, path), expected, "{:?} {} {}", names, method, path
                    );
                }
            }
        }
    }
}
