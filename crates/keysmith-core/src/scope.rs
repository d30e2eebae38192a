//! Scopes: named permissions that make an API key narrower than its creator's role.
//!
//! The policy file names them (`[[scope]]` tables, `policy.rs`): each has a name such as
//! `reports:read`, the methods and paths it covers, and the roles whose members may give it to
//! a key. One scope is built in: [`READ_ONLY`], which covers `GET` and `HEAD` on every path.
//!
//! A key with scopes is allowed a request only when its creator's **current** role allows it
//! (the article: "the role of the user who generated the API key determines access to each
//! endpoint") **and** one of its scopes covers it: the intersection, so a scope never widens a
//! key. A key without scopes has its creator's whole role. Scopes are chosen at generation,
//! fixed for the key's life (a database trigger and the row's MAC) and kept by a roll, as
//! GitHub's fine-grained tokens and Stripe's restricted keys keep theirs.
//!
//! A name is 1 to 64 bytes of lowercase ASCII letters, digits and `:` `.` `_` `-`, starting
//! with a letter; a key holds at most [`MAX_SCOPES`]. The stored form is the sorted names
//! joined by `,`.

use keysmith_types::{Role, ScopeInfo};

use crate::error::{Error, Result};

/// The built-in scope: `GET` and `HEAD` (RFC 9110 §9.2.1 safe methods that read) on any path
/// the creator's role allows.
pub const READ_ONLY: &str = "read-only";

/// The most scopes one key may hold.
pub const MAX_SCOPES: usize = 16;

/// The longest scope name, in bytes.
pub const MAX_NAME_LEN: usize = 64;

/// The policy file in the data directory whose scopes the app and the CLI offer (the
/// verifier's `--policy`, kept beside the database).
pub const POLICY_FILE: &str = "policy.toml";

/// Checks one scope name's grammar (see the module documentation).
///
/// # Errors
/// The reason, quoting the name (escaped, at most 32 characters).
pub fn check_name(name: &str) -> std::result::Result<(), String> {
    let quoted = quote(name);
    if name.is_empty() {
        return Err("a scope name is empty".into());
    }
    if name.len() > MAX_NAME_LEN {
        return Err(format!(
            "scope {quoted} is longer than {MAX_NAME_LEN} bytes"
        ));
    }
    if !name.as_bytes()[0].is_ascii_lowercase() {
        return Err(format!("scope {quoted} must start with a lowercase letter"));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || ":._-".contains(*c)))
    {
        return Err(format!(
            "scope {quoted} holds {c:?}: a scope name has only lowercase letters, digits and \":\", \".\", \"_\", \"-\""
        ));
    }
    Ok(())
}

fn quote(text: &str) -> String {
    let short: String = text.chars().take(32).collect();
    let mut q = format!("{short:?}");
    if short.len() < text.len() {
        q.push('…');
    }
    q
}

/// A key's scopes: valid names, sorted, without duplicates, never empty.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Scopes(Box<[Box<str>]>);

impl Scopes {
    /// The scopes a request names (each trimmed). An empty list means none: the key has its
    /// creator's whole role.
    ///
    /// # Errors
    /// [`Error::InvalidScope`] naming a malformed name, or a list of more than
    /// [`MAX_SCOPES`].
    pub fn parse<S: AsRef<str>>(names: &[S]) -> Result<Option<Scopes>> {
        let mut list: Vec<Box<str>> = Vec::with_capacity(names.len());
        for name in names {
            let name = name.as_ref().trim();
            check_name(name).map_err(Error::InvalidScope)?;
            list.push(name.into());
        }
        list.sort();
        list.dedup();
        if list.len() > MAX_SCOPES {
            return Err(Error::InvalidScope(format!(
                "a key holds at most {MAX_SCOPES} scopes, not {}",
                list.len()
            )));
        }
        Ok((!list.is_empty()).then(|| Scopes(list.into_boxed_slice())))
    }

    /// Reads the stored form back; only the exact form [`Scopes::stored`] writes is accepted
    /// (anything else was written outside Keysmith).
    ///
    /// # Errors
    /// `Err(())` for text that is not a canonical stored list.
    #[allow(clippy::result_unit_err)]
    pub fn from_stored(stored: Option<&str>) -> std::result::Result<Option<Scopes>, ()> {
        let Some(text) = stored else {
            return Ok(None);
        };
        let names: Vec<&str> = text.split(',').collect();
        match Scopes::parse(&names) {
            Ok(Some(s)) if s.stored() == text => Ok(Some(s)),
            _ => Err(()),
        }
    }

    /// The stored form: the names joined by `,`.
    pub fn stored(&self) -> String {
        self.0.join(",")
    }

    /// The names, sorted.
    pub fn names(&self) -> &[Box<str>] {
        &self.0
    }
}

impl std::fmt::Display for Scopes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0.join(", "))
    }
}

/// The names of a stored scope list, for a key's summary; empty for none (or for a list
/// changed outside Keysmith, which the row's MAC reports).
pub fn stored_names(stored: Option<&str>) -> Vec<String> {
    stored
        .map(|s| s.split(',').map(str::to_owned).collect())
        .unwrap_or_default()
}

/// The scopes members may give their keys: the built-in [`READ_ONLY`] and the policy's
/// `[[scope]]` tables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScopeCatalog {
    entries: Vec<ScopeInfo>,
}

impl Default for ScopeCatalog {
    fn default() -> Self {
        ScopeCatalog::builtin()
    }
}

impl ScopeCatalog {
    /// Only the built-in scope: what a generating side offers without a policy file.
    pub fn builtin() -> ScopeCatalog {
        ScopeCatalog {
            entries: vec![ScopeInfo {
                name: READ_ONLY.into(),
                description: "Read only: GET and HEAD on whatever the creator's role may call"
                    .into(),
                roles: Role::ALL.to_vec(),
            }],
        }
    }

    /// The built-in scope and the policy's.
    pub fn from_policy(policy: &crate::policy::Policy) -> ScopeCatalog {
        let mut catalog = ScopeCatalog::builtin();
        catalog.entries.extend(policy.scope_infos());
        catalog
    }

    /// The catalogue of the policy file at `path`.
    ///
    /// # Errors
    /// [`crate::policy::PolicyError`] for a file that cannot be read or is refused.
    pub fn load(
        path: &std::path::Path,
    ) -> std::result::Result<ScopeCatalog, crate::policy::PolicyError> {
        crate::policy::Policy::load(path).map(|p| ScopeCatalog::from_policy(&p))
    }

    /// The catalogue of [`POLICY_FILE`] in the data directory `dir`, or only the built-in
    /// scope when there is no such file.
    ///
    /// # Errors
    /// [`crate::policy::PolicyError`] for a file that exists but is refused.
    pub fn of_data_dir(
        dir: &std::path::Path,
    ) -> std::result::Result<ScopeCatalog, crate::policy::PolicyError> {
        let path = dir.join(POLICY_FILE);
        if !path.exists() {
            return Ok(ScopeCatalog::builtin());
        }
        ScopeCatalog::load(&path)
    }

    /// Every scope, the built-in first.
    pub fn all(&self) -> &[ScopeInfo] {
        &self.entries
    }

    /// The scopes a member with `role` may give a key.
    pub fn grantable_by(&self, role: Role) -> Vec<ScopeInfo> {
        self.entries
            .iter()
            .filter(|s| s.roles.contains(&role))
            .cloned()
            .collect()
    }

    /// Checks that every one of `scopes` is in the catalogue, and records which roles may
    /// give each; [`ScopeGrant::check_role`] then checks the generating member's role.
    ///
    /// # Errors
    /// [`Error::InvalidScope`] naming a scope the policy does not define.
    pub fn resolve(&self, scopes: Scopes) -> Result<ScopeGrant> {
        let mut roles = Vec::with_capacity(scopes.names().len());
        for name in scopes.names() {
            let info = self
                .entries
                .iter()
                .find(|s| *s.name == **name)
                .ok_or_else(|| {
                    Error::InvalidScope(format!(
                        "scope {} is not defined: the policy defines {}",
                        quote(name),
                        self.entries
                            .iter()
                            .map(|s| s.name.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ))
                })?;
            roles.push(info.roles.clone());
        }
        Ok(ScopeGrant { scopes, roles })
    }
}

/// Scopes a generate request asks for, with the roles that may give each.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScopeGrant {
    scopes: Scopes,
    roles: Vec<Vec<Role>>,
}

impl ScopeGrant {
    /// The scopes.
    pub fn scopes(&self) -> &Scopes {
        &self.scopes
    }

    /// Checks that a member with `role` may give every scope (issue 11: "scopes beyond the
    /// creator's role" are refused).
    ///
    /// # Errors
    /// [`Error::ScopeBeyondRole`] naming the first scope `role` may not give.
    pub fn check_role(&self, role: Role) -> Result<()> {
        for (name, roles) in self.scopes.names().iter().zip(&self.roles) {
            if !roles.contains(&role) {
                return Err(Error::ScopeBeyondRole(format!(
                    "scope {} is beyond the {} role: only {} may give it to a key",
                    quote(name),
                    role.label(),
                    roles
                        .iter()
                        .map(|r| r.label())
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn names_are_sorted_deduplicated_and_trimmed() {
        let s = Scopes::parse(&[" reports:read", "orders:create", "reports:read "])
            .unwrap()
            .unwrap();
        assert_eq!(s.stored(), "orders:create,reports:read");
        assert_eq!(s.to_string(), "orders:create, reports:read");
        assert_eq!(Scopes::from_stored(Some(&s.stored())), Ok(Some(s)));
        assert_eq!(Scopes::parse::<&str>(&[]).unwrap(), None);
        assert_eq!(Scopes::from_stored(None), Ok(None));
    }

    #[test]
    fn malformed_names_are_refused_naming_them() {
        let long = "a".repeat(65);
        let cases: &[(&str, &str)] = &[
            ("", "empty"),
            ("   ", "empty"),
            ("Reports:read", "lowercase letter"),
            ("1reports", "lowercase letter"),
            (":read", "lowercase letter"),
            ("reports read", "holds ' '"),
            ("reports,read", "holds ','"),
            ("reports/read", "holds '/'"),
            ("reports:*", "holds '*'"),
            ("rapports:lü", "holds 'ü'"),
            ("reports\u{7}", "holds '\\u{7}'"),
            ("reports\nread", "holds '\\n'"),
            ("reports:\u{ff52}", "holds"),
            (&long, "longer than 64 bytes"),
        ];
        for (bad, why) in cases {
            let err = Scopes::parse(&[*bad]).unwrap_err();
            assert!(matches!(err, Error::InvalidScope(_)), "{bad:?}");
            let text = err.to_string();
            assert!(text.contains(why), "{bad:?}: {text}");
            if !bad.trim().is_empty() {
                assert!(
                    text.contains(&format!(
                        "{:?}",
                        bad.trim().chars().take(32).collect::<String>()
                    )),
                    "{bad:?} is quoted: {text}"
                );
            }
        }
        let many: Vec<String> = (0..17).map(|i| format!("s{i}")).collect();
        assert!(Scopes::parse(&many)
            .unwrap_err()
            .to_string()
            .contains("at most 16 scopes, not 17"));
        let sixteen = &many[..16];
        assert_eq!(Scopes::parse(sixteen).unwrap().unwrap().names().len(), 16);
    }

    #[test]
    fn only_the_canonical_stored_form_reads_back() {
        for bad in ["", "b,a", "a,a", "a, b", "a,,b", ",a", "A", "a,"] {
            assert_eq!(Scopes::from_stored(Some(bad)), Err(()), "{bad:?}");
        }
        assert_eq!(stored_names(Some("a:b,c")), ["a:b", "c"]);
        assert!(stored_names(None).is_empty());
    }

    #[test]
    fn a_grant_is_checked_against_the_generating_role() {
        let policy = crate::policy::Policy::parse(
            r#"
[[allow]]
role = "manager"
methods = ["GET"]
paths = ["/v1/**"]

[[scope]]
name = "reports:read"
roles = ["owner", "admin", "manager"]
methods = ["GET"]
paths = ["/v1/reports/**"]

[[scope]]
name = "billing:write"
description = "Change billing"
roles = ["owner"]
methods = ["POST"]
paths = ["/v1/billing"]
"#,
            "p.toml",
        )
        .unwrap();
        let catalog = ScopeCatalog::from_policy(&policy);
        let names: Vec<&str> = catalog.all().iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["read-only", "reports:read", "billing:write"]);
        let for_manager: Vec<String> = catalog
            .grantable_by(Role::Manager)
            .into_iter()
            .map(|s| s.name)
            .collect();
        assert_eq!(for_manager, ["read-only", "reports:read"]);

        let grant = |names: &[&str]| catalog.resolve(Scopes::parse(names).unwrap().unwrap());
        assert!(grant(&["read-only", "reports:read"])
            .unwrap()
            .check_role(Role::Manager)
            .is_ok());
        let err = grant(&["reports:read", "billing:write"])
            .unwrap()
            .check_role(Role::Manager)
            .unwrap_err();
        assert!(matches!(err, Error::ScopeBeyondRole(_)));
        assert_eq!(
            err.to_string(),
            "scope \"billing:write\" is beyond the Manager role: only Owner may give it to a key"
        );
        assert!(grant(&["billing:write"])
            .unwrap()
            .check_role(Role::Owner)
            .is_ok());
        let err = grant(&["reports:write"]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "scope \"reports:write\" is not defined: the policy defines read-only, reports:read, billing:write"
        );
        // Without a policy file only the built-in scope exists.
        assert!(ScopeCatalog::builtin()
            .resolve(Scopes::parse(&["reports:read"]).unwrap().unwrap())
            .is_err());
    }

    proptest! {
        #[test]
        fn any_list_of_valid_names_round_trips(
            names in proptest::collection::vec("[a-z][a-z0-9:._-]{0,63}", 1..=16)
        ) {
            let s = Scopes::parse(&names).unwrap().unwrap();
            prop_assert_eq!(Scopes::from_stored(Some(&s.stored())), Ok(Some(s.clone())));
            for n in &names {
                prop_assert!(s.names().iter().any(|m| **m == **n));
            }
        }

        #[test]
        fn any_text_is_refused_or_accepted_without_panic(text in "\\PC{0,80}|[\\x00-\\x7f]{0,80}") {
            match Scopes::parse(&[&text]) {
                Ok(_) => prop_assert!(check_name(text.trim()).is_ok()),
                Err(e) => prop_assert!(e.to_string().len() < 300),
            }
            let _ = Scopes::from_stored(Some(&text));
        }
    }
}
