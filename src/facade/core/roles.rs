//! Predefined roles: each a name (`app/role:<name>` in tuples), a title, the permission slugs
//! it grants (one wildcard tuple per slug and principal type on `app/role`), and the resource
//! types it may be bound on. The core owns the organization roles; each product registers
//! the roles of its own resource types ([`super::Product::roles`]).

use serde::Serialize;

/// A predefined role.
#[derive(Debug, Clone, Copy, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Role {
    /// The role's name and id, e.g. `app_group_owner`.
    pub name: &'static str,
    /// A human title.
    pub title: &'static str,
    /// The permission slugs it grants (relations of `app/role`).
    pub permissions: &'static [&'static str],
    /// The resource types a policy may bind it on.
    pub scopes: &'static [&'static str],
    /// Whether it makes its bearer an owner of the resource: removing such a binding, on any
    /// path, needs the permission that deleting it as a policy needs.
    #[serde(skip)]
    pub owner: bool,
}

/// The type roles are objects of.
pub const ROLE_TYPE: &str = "app/role";
/// The principal types every role's wildcard tuples name.
pub const PRINCIPAL_TYPES: [&str; 2] = ["app/user", "app/serviceuser"];

/// Organization owner.
pub const ORG_OWNER: &str = "app_organization_owner";
/// Organization manager (Bitwarden's Admin).
pub const ORG_MANAGER: &str = "app_organization_manager";
/// Organization access manager: manages policies, nothing else.
pub const ORG_ACCESS_MANAGER: &str = "app_organization_accessmanager";
/// Organization viewer ("member" in Frontier's UI, "user" in Bitwarden's).
pub const ORG_VIEWER: &str = "app_organization_viewer";

const ORG: &[&str] = &["app/organization"];

/// The organization roles.
pub const ORG_ROLES: &[Role] = &[
    Role {
        name: ORG_OWNER,
        title: "Owner",
        permissions: &["app_organization_administer"],
        scopes: ORG,
        owner: true,
    },
    Role {
        name: ORG_MANAGER,
        title: "Manager",
        permissions: &[
            "app_organization_update",
            "app_organization_get",
            "app_organization_projectcreate",
            "app_organization_projectlist",
            "app_organization_groupcreate",
            "app_organization_grouplist",
            "app_project_get",
            "app_project_update",
        ],
        scopes: ORG,
        owner: false,
    },
    Role {
        name: ORG_ACCESS_MANAGER,
        title: "Access Manager",
        permissions: &["app_organization_get", "app_organization_policymanage"],
        scopes: ORG,
        owner: false,
    },
    Role {
        name: ORG_VIEWER,
        title: "Member",
        permissions: &["app_organization_get"],
        scopes: ORG,
        owner: false,
    },
];

/// `name` without an `app/role:` prefix.
pub fn bare(name: &str) -> &str {
    name.strip_prefix(ROLE_TYPE)
        .and_then(|rest| rest.strip_prefix(':'))
        .unwrap_or(name)
}
