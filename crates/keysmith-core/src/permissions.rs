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
        }
    }
}

/// Whether `role` may perform `action`. The table above, as code.
pub fn permits(role: Role, action: Action) -> bool {
    use Role::*;
    match action {
        Action::GenerateOwnKey | Action::SeeOwnKeys | Action::RevokeOwnKey => {
            matches!(role, Owner | Admin | Manager)
        }
        Action::SeeOthersKeys | Action::RevokeOthersKey => matches!(role, Owner | Admin),
        Action::ManageMember(target) => match role {
            Owner => target != Owner,
            Admin => target < Admin,
            _ => false,
        },
        Action::TransferOwnership => role == Owner,
    }
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

    /// Each row: the action, then the answer for Owner, Admin, Manager, Author, Viewer.
    const TABLE: &[(Action, [bool; 5])] = &[
        (Action::GenerateOwnKey, [true, true, true, false, false]),
        (Action::SeeOwnKeys, [true, true, true, false, false]),
        (Action::SeeOthersKeys, [true, true, false, false, false]),
        (Action::RevokeOwnKey, [true, true, true, false, false]),
        (Action::RevokeOthersKey, [true, true, false, false, false]),
        (
            Action::ManageMember(Owner),
            [false, false, false, false, false],
        ),
        (
            Action::ManageMember(Admin),
            [true, false, false, false, false],
        ),
        (
            Action::ManageMember(Manager),
            [true, true, false, false, false],
        ),
        (
            Action::ManageMember(Author),
            [true, true, false, false, false],
        ),
        (
            Action::ManageMember(Viewer),
            [true, true, false, false, false],
        ),
        (
            Action::TransferOwnership,
            [true, false, false, false, false],
        ),
    ];

    #[test]
    fn every_cell_of_the_role_table() {
        for (action, row) in TABLE {
            for (role, want) in Role::ALL.iter().zip(row) {
                assert_eq!(permits(*role, *action), *want, "{role:?} × {action:?}");
                assert_eq!(authorize(*role, *action).is_ok(), *want);
            }
        }
    }
}
