//! Who may do what: the role table of PRODUCT.md, in one place.
//!
//! | may…                                        | Owner | Admin | Manager | Author | Viewer |
//! |---------------------------------------------|-------|-------|---------|--------|--------|
//! | generate own API keys                       | yes   | yes   | yes     | no     | no     |
//! | see own keys                                | yes   | yes   | yes     | –      | –      |
//! | see keys other members generated            | yes   | yes   | no      | no     | no     |
//! | revoke own keys                             | yes   | yes   | yes     | –      | –      |
//! | revoke anyone's key                         | yes   | yes   | no      | no     | no     |
//! | add / remove members, change roles < Admin  | yes   | yes   | no      | no     | no     |
//! | manage Admins, transfer ownership           | yes   | no    | no      | no     | no     |
//! | see members and the audit log               | yes   | yes   | no      | no     | no     |
//! | export the pepper (for a headless verifier) | yes   | no    | no      | no     | no     |
//!
//! Every core operation calls [`authorize`] with the signed-in member's *current* role
//! before it reads or changes anything.

use keysmith_types::Role;

use crate::error::{Error, Result};

/// An operation, with what matters about its target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    GenerateOwnKey,
    SeeOwnKeys,
    SeeOthersKeys,
    RevokeOwnKey,
    RevokeOthersKey,
    /// Add, remove or change the role of a member whose role (before and after) is this one.
    ManageMember(Role),
    TransferOwnership,
    /// See the member list (the people the actor may manage).
    SeeMembers,
    /// See the audit log.
    SeeAudit,
    /// Write the account's pepper to a file, for a verifier on a machine with no keyring.
    ExportPepper,
    /// Move the account to a team server (`keysmith migrate`).
    MoveAccount,
}

impl Action {
    /// What the refusal says ("Not permitted: …").
    fn describe(self) -> &'static str {
        match self {
            Action::GenerateOwnKey => "your role cannot generate API keys",
            Action::SeeOwnKeys => "your role has no API keys page",
            Action::SeeOthersKeys => "only the Owner and Admins see keys other members generated",
            Action::RevokeOwnKey => "your role cannot revoke API keys",
            Action::RevokeOthersKey => {
                "only the Owner and Admins revoke keys other members generated"
            }
            Action::ManageMember(Role::Owner) => {
                "the Owner cannot be managed; transfer ownership instead"
            }
            Action::ManageMember(Role::Admin) => "only the Owner manages Admins",
            Action::ManageMember(_) => "only the Owner and Admins manage members",
            Action::TransferOwnership => "only the Owner transfers ownership",
            Action::SeeMembers => "only the Owner and Admins see the member list",
            Action::SeeAudit => "only the Owner and Admins see the audit log",
            Action::ExportPepper => "only the Owner exports the pepper",
            Action::MoveAccount => "only the Owner moves the account to a team server",
        }
    }
}

/// The role table as data: each action with its answer for Owner, Admin, Manager, Author,
/// Viewer (in [`Role::ALL`] order). [`permits`] reads only this; the tests walk every cell of
/// it through the core API and the Tauri command layer.
pub const TABLE: &[(Action, [bool; 5])] = &[
    (Action::GenerateOwnKey, [true, true, true, false, false]),
    (Action::SeeOwnKeys, [true, true, true, false, false]),
    (Action::SeeOthersKeys, [true, true, false, false, false]),
    (Action::RevokeOwnKey, [true, true, true, false, false]),
    (Action::RevokeOthersKey, [true, true, false, false, false]),
    (
        Action::ManageMember(Role::Owner),
        [false, false, false, false, false],
    ),
    (
        Action::ManageMember(Role::Admin),
        [true, false, false, false, false],
    ),
    (
        Action::ManageMember(Role::Manager),
        [true, true, false, false, false],
    ),
    (
        Action::ManageMember(Role::Author),
        [true, true, false, false, false],
    ),
    (
        Action::ManageMember(Role::Viewer),
        [true, true, false, false, false],
    ),
    (
        Action::TransferOwnership,
        [true, false, false, false, false],
    ),
    (Action::SeeMembers, [true, true, false, false, false]),
    (Action::SeeAudit, [true, true, false, false, false]),
    (Action::ExportPepper, [true, false, false, false, false]),
    (Action::MoveAccount, [true, false, false, false, false]),
];

/// Whether `role` may perform `action`, from [`TABLE`]. Anything not in the table is refused.
pub fn permits(role: Role, action: Action) -> bool {
    let Some(column) = Role::ALL.iter().position(|r| *r == role) else {
        return false;
    };
    TABLE
        .iter()
        .find(|(a, _)| *a == action)
        .is_some_and(|(_, row)| row[column])
}

/// `Ok(())` if `role` may perform `action`, else [`Error::NotPermitted`].
pub fn authorize(role: Role, action: Action) -> Result<()> {
    if permits(role, action) {
        Ok(())
    } else {
        Err(Error::NotPermitted(action.describe()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Role::*;

    /// PRODUCT.md's table, restated as rules, checked against [`TABLE`] cell by cell.
    fn spec(role: Role, action: Action) -> bool {
        match action {
            Action::GenerateOwnKey | Action::SeeOwnKeys | Action::RevokeOwnKey => role >= Manager,
            Action::SeeOthersKeys
            | Action::RevokeOthersKey
            | Action::SeeMembers
            | Action::SeeAudit => role >= Admin,
            Action::ManageMember(target) => match role {
                Owner => target != Owner,
                Admin => target < Admin,
                _ => false,
            },
            Action::TransferOwnership | Action::ExportPepper | Action::MoveAccount => role == Owner,
        }
    }

    #[test]
    fn the_table_matches_the_product_rules_in_every_cell() {
        assert_eq!(TABLE.len(), 15);
        for (action, _) in TABLE {
            for role in Role::ALL {
                assert_eq!(
                    permits(role, *action),
                    spec(role, *action),
                    "{role:?} × {action:?}"
                );
                assert_eq!(authorize(role, *action).is_ok(), spec(role, *action));
            }
        }
    }
}
