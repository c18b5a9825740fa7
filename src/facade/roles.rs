//! The predefined roles: each a name (`app/role:<name>` in tuples), a title, the permission
//! slugs it grants (one wildcard tuple per slug and principal type on `app/role`), and the
//! resource types it may be bound on.

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
}

/// The type roles are objects of.
pub const ROLE_TYPE: &str = "app/role";
/// The principal types every role's wildcard tuples name.
pub const PRINCIPAL_TYPES: [&str; 2] = ["app/user", "app/serviceuser"];

/// Organization owner.
pub const ORG_OWNER: &str = "app_organization_owner";
/// Organization viewer ("member" in Frontier's UI).
pub const ORG_VIEWER: &str = "app_organization_viewer";
/// Project owner.
pub const PROJECT_OWNER: &str = "app_project_owner";
/// Group owner.
pub const GROUP_OWNER: &str = "app_group_owner";
/// Group member.
pub const GROUP_MEMBER: &str = "app_group_member";

const ORG: &[&str] = &["app/organization"];
const PROJECT: &[&str] = &["app/project", "compute/instance"];
const GROUP: &[&str] = &["app/group"];

/// Every predefined role.
pub const ROLES: &[Role] = &[
    Role {
        name: ORG_OWNER,
        title: "Owner",
        permissions: &["app_organization_administer"],
        scopes: ORG,
    },
    Role {
        name: "app_organization_manager",
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
    },
    Role {
        name: ORG_VIEWER,
        title: "Member",
        permissions: &["app_organization_get"],
        scopes: ORG,
    },
    Role {
        name: PROJECT_OWNER,
        title: "Owner",
        permissions: &["app_project_administer"],
        scopes: PROJECT,
    },
    Role {
        name: "app_project_manager",
        title: "Manager",
        permissions: &[
            "app_project_update",
            "app_project_get",
            "app_project_resourcelist",
            "compute_instance_get",
            "compute_instance_update",
        ],
        scopes: PROJECT,
    },
    Role {
        name: "app_project_viewer",
        title: "Viewer",
        permissions: &["app_project_get", "compute_instance_get"],
        scopes: PROJECT,
    },
    Role {
        name: GROUP_OWNER,
        title: "Group Owner",
        permissions: &["app_group_administer"],
        scopes: GROUP,
    },
    Role {
        name: GROUP_MEMBER,
        title: "Group Member",
        permissions: &["app_group_get"],
        scopes: GROUP,
    },
];

/// The role called `name` (also accepted as `app/role:<name>`).
pub fn find(name: &str) -> Option<&'static Role> {
    let name = name
        .strip_prefix(ROLE_TYPE)
        .and_then(|rest| rest.strip_prefix(':'))
        .unwrap_or(name);
    ROLES.iter().find(|role| role.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_role_slug_is_a_relation_of_the_built_in_schema() {
        let schema = crate::schema::compile(super::super::bootstrap::FRONTIER_SCHEMA)
            .unwrap_or_else(|e| panic!("{e}"));
        let role = schema
            .definition(ROLE_TYPE)
            .unwrap_or_else(|| panic!("no role type"));
        for r in ROLES {
            for slug in r.permissions {
                assert!(role.relations.contains_key(*slug), "{slug}");
            }
            for scope in r.scopes {
                assert!(schema.definition(scope).is_some(), "{scope}");
            }
        }
        assert_eq!(
            find("app/role:app_group_owner").map(|r| r.name),
            Some(GROUP_OWNER)
        );
        assert!(find("nope").is_none());
    }
}
