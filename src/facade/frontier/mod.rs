//! The Frontier-style product under `/v1beta1`: organizations (the core's, over HTTP),
//! groups, members, projects, custom resources, roles and policies. It depends on the core
//! only; its records are its groups, projects and custom resources, removed by its
//! [`PRODUCT`] cascade when their organization is deleted.

mod groups;
mod organizations;
mod policies;
mod projects;
mod users;

use axum::routing::{delete, get, post};

use super::core::error::FacadeError;
use super::core::records::Tx;
use super::core::roles::Role;
use super::core::runner::Cx;
use super::core::{Cascading, Product, Routes};

/// Project owner.
pub const PROJECT_OWNER: &str = "app_project_owner";
/// Group owner.
pub const GROUP_OWNER: &str = "app_group_owner";
/// Group member.
pub const GROUP_MEMBER: &str = "app_group_member";

const PROJECT: &[&str] = &["app/project", "compute/instance"];
const GROUP: &[&str] = &["app/group"];

/// The roles of projects, custom resources and groups.
pub const ROLES: &[Role] = &[
    Role {
        name: PROJECT_OWNER,
        title: "Owner",
        permissions: &["app_project_administer"],
        scopes: PROJECT,
        owner: true,
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
        owner: false,
    },
    Role {
        name: "app_project_viewer",
        title: "Viewer",
        permissions: &["app_project_get", "compute_instance_get"],
        scopes: PROJECT,
        owner: false,
    },
    Role {
        name: GROUP_OWNER,
        title: "Group Owner",
        permissions: &["app_group_administer"],
        scopes: GROUP,
        owner: true,
    },
    Role {
        name: GROUP_MEMBER,
        title: "Group Member",
        permissions: &["app_group_get"],
        scopes: GROUP,
        owner: false,
    },
];

/// The Frontier-style product.
pub const PRODUCT: Product = Product {
    name: "frontier",
    roles: ROLES,
    routes,
    cascade,
};

/// Removes the product's records of a deleted organization (groups, projects, custom
/// resources); a leaving member leaves no Frontier record behind.
fn cascade(cx: &Cx<'_>, tx: &mut Tx, what: &Cascading<'_>) -> Result<(), FacadeError> {
    if let Cascading::Organization(org) = what {
        for group in groups::in_org(cx, org)? {
            groups::remove_records(tx, &group);
        }
        for project in projects::in_org(cx, org)? {
            projects::remove_records(cx, tx, &project)?;
        }
    }
    Ok(())
}

/// The `/v1beta1` routes: each path with its handlers (the state is applied by
/// [`crate::facade::router`]).
pub fn routes() -> Routes {
    let org = "/v1beta1/organizations/{org_id}";
    let group = "/v1beta1/organizations/{org_id}/groups/{group_id}";
    vec![
        ("/v1beta1/users/self".to_string(), get(users::get_self)),
        ("/v1beta1/roles".to_string(), get(users::list_roles)),
        (
            "/v1beta1/organizations".to_string(),
            post(organizations::create).get(organizations::list),
        ),
        (
            org.to_string(),
            get(organizations::get_one)
                .put(organizations::update)
                .delete(organizations::delete_one),
        ),
        (
            format!("{org}/users"),
            post(organizations::add_users).get(organizations::list_users),
        ),
        (
            format!("{org}/users/{{user_id}}"),
            delete(organizations::remove_user),
        ),
        (format!("{org}/disable"), post(organizations::disable)),
        (format!("{org}/enable"), post(organizations::enable)),
        (format!("{org}/projects"), get(projects::list_in_org)),
        (
            format!("{org}/groups"),
            post(groups::create).get(groups::list),
        ),
        ("/v1beta1/admin/groups".to_string(), get(groups::admin_list)),
        (
            group.to_string(),
            get(groups::get_one)
                .put(groups::update)
                .delete(groups::delete_one),
        ),
        (
            format!("{group}/users"),
            post(groups::add_users).get(groups::list_users),
        ),
        (
            format!("{group}/users/{{user_id}}"),
            delete(groups::remove_user),
        ),
        (format!("{group}/relations"), get(groups::relations)),
        (format!("{group}/disable"), post(groups::disable)),
        (format!("{group}/enable"), post(groups::enable)),
        ("/v1beta1/projects".to_string(), post(projects::create)),
        (
            "/v1beta1/projects/{project_id}".to_string(),
            get(projects::get_one).delete(projects::delete_one),
        ),
        (
            "/v1beta1/projects/{project_id}/resources".to_string(),
            post(projects::create_resource).get(projects::list_resources),
        ),
        (
            "/v1beta1/projects/{project_id}/policies".to_string(),
            post(policies::create_on_project),
        ),
        (
            "/v1beta1/resources/{resource_id}/policies".to_string(),
            post(policies::create_on_resource),
        ),
        (
            "/v1beta1/policies".to_string(),
            post(policies::create).get(policies::list),
        ),
        (
            "/v1beta1/policies/{policy_id}".to_string(),
            get(policies::get_one).delete(policies::delete_one),
        ),
    ]
}
