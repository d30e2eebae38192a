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
use keysmith_types::Role;
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

fn method_bit(method: &str) -> Option<u16> {
    METHODS.iter().position(|m| *m == method).map(|i| 1u16 << i)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    allow: Vec<Spanned<RuleSpec>>,
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
    /// The rules of each role, in [`Role::ALL`] order.
    rules: [Vec<Rule>; 5],
    rule_count: usize,
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
        for rule in parsed.allow {
            let rule_start = rule.span().start;
            let spec = rule.into_inner();
            let role_name = spec.role.get_ref();
            let role = Role::ALL
                .into_iter()
                .find(|r| r.as_str() == role_name)
                .ok_or_else(|| {
                    err(
                        spec.role.span().start,
                        format!(
                            "unknown role {role_name:?} (expected owner, admin, manager, author or viewer)"
                        ),
                    )
                })?;
            if spec.methods.is_empty() {
                return Err(err(
                    rule_start,
                    "this rule's `methods` lists no method".into(),
                ));
            }
            let mut methods = 0u16;
            for m in &spec.methods {
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
                methods |= bit;
            }
            if spec.paths.is_empty() {
                return Err(err(
                    rule_start,
                    "this rule's `paths` lists no pattern".into(),
                ));
            }
            let mut set = GlobSetBuilder::new();
            for p in &spec.paths {
                let pattern = p.get_ref();
                if !pattern.starts_with('/') {
                    return Err(err(
                        p.span().start,
                        format!("path pattern {pattern:?} must start with \"/\""),
                    ));
                }
                let glob = GlobBuilder::new(pattern)
                    .literal_separator(true)
                    .backslash_escape(true)
                    .build()
                    .map_err(|e| {
                        err(
                            p.span().start,
                            format!("bad path pattern {pattern:?}: {}", e.kind()),
                        )
                    })?;
                set.add(glob);
            }
            let paths = set
                .build()
                .map_err(|e| err(rule_start, format!("bad path patterns: {e}")))?;
            policy.rules[role_index(role)].push(Rule { methods, paths });
            policy.rule_count += 1;
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
        let Some(bit) = method_bit(method) else {
            return false;
        };
        self.rules[role_index(role)]
            .iter()
            .any(|r| r.methods & bit != 0 && r.paths.is_match(path))
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

/// Why an original request's URI was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    #[error("the request URI is empty or longer than 8192 bytes")]
    Length,
    #[error("the request path must start with \"/\"")]
    NotAbsolute,
    #[error("the request path holds a control character, a backslash or an encoded slash, dot or backslash")]
    Ambiguous,
    #[error("the request path holds an empty, \".\" or \"..\" segment")]
    DotOrEmptySegment,
}

/// The longest original URI accepted, in bytes.
pub const MAX_URI_LEN: usize = 8192;

/// The path a policy is matched against, from an original request URI (`/a/b?x=1`, or an
/// absolute `http://host/a/b`): the query and fragment are dropped.
///
/// Paths that an upstream might read differently from the verifier are refused rather than
/// normalised (OWASP Authorization Cheat Sheet: validate, deny by default): dot segments
/// and empty segments (RFC 3986 §5.2.4 would rewrite them), percent-encoded `/`, `.` or
/// `\`, backslashes and control characters.
///
/// # Errors
/// [`PathError`].
pub fn request_path(uri: &str) -> Result<&str, PathError> {
    if uri.is_empty() || uri.len() > MAX_URI_LEN {
        return Err(PathError::Length);
    }
    let mut rest = uri;
    for scheme in ["http://", "https://"] {
        if let Some(after) = uri.strip_prefix(scheme) {
            rest = after.find('/').map_or("/", |i| &after[i..]);
        }
    }
    let end = rest.find(['?', '#']).unwrap_or(rest.len());
    let path = &rest[..end];
    if !path.starts_with('/') {
        return Err(PathError::NotAbsolute);
    }
    if path.bytes().any(|b| b.is_ascii_control() || b == b'\\') {
        return Err(PathError::Ambiguous);
    }
    let encoded = path.as_bytes().windows(3).any(|w| {
        w[0] == b'%'
            && matches!(
                (w[1], w[2].to_ascii_lowercase()),
                (b'2', b'f') | (b'2', b'e') | (b'5', b'c') | (b'0', b'0')
            )
    });
    if encoded {
        return Err(PathError::Ambiguous);
    }
    // Segments after the leading "/"; only the last may be empty (a trailing slash).
    let mut segments = path[1..].split('/').peekable();
    while let Some(seg) = segments.next() {
        let last = segments.peek().is_none();
        if seg == "." || seg == ".." || (seg.is_empty() && !last) {
            return Err(PathError::DotOrEmptySegment);
        }
    }
    Ok(path)
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
        assert_eq!(request_path("/a/b?x=1#f"), Ok("/a/b"));
        assert_eq!(request_path("/"), Ok("/"));
        assert_eq!(request_path("/a/b/"), Ok("/a/b/"));
        assert_eq!(request_path("http://h.example/a?q"), Ok("/a"));
        assert_eq!(request_path("https://h.example"), Ok("/"));
        assert_eq!(request_path(""), Err(PathError::Length));
        assert_eq!(request_path("a/b"), Err(PathError::NotAbsolute));
        for bad in ["/a/../b", "/a/./b", "/..", "//a", "/a//b"] {
            assert_eq!(
                request_path(bad),
                Err(PathError::DotOrEmptySegment),
                "{bad}"
            );
        }
        for bad in ["/a%2Fb", "/a/%2e%2e/b", "/a\\b", "/a\tb", "/a%5cb"] {
            assert_eq!(request_path(bad), Err(PathError::Ambiguous), "{bad}");
        }
        assert_eq!(request_path(&"/a".repeat(5000)), Err(PathError::Length));
    }
}
