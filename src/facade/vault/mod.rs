//! The Bitwarden-style product: groups that hold collection access with flags, under
//! `/api/organizations/{orgId}/...` (the caller's JWT, the same as `/v1beta1`), the public API
//! `/public/groups` and `/public/members` (an organization API key) and SCIM 2.0 under
//! `/scim/v2/{orgId}` (a per-organization SCIM key).
//!
//! It stands on the core alone: organizations and their members (`app/organization`
//! bindings; an organization user id is the user's id), `app/group` objects (so a group's
//! members are `app/group:G#member` tuples and a disabled group's grants stop through
//! `active_member`), the runners and records, and the organization keys (a key is a service
//! user bound to its organization as owner, so the same engine checks pass for it).
//! Collection access lives only in the flag tuples of `schema/vault.zed`, whose permissions
//! compute the effective access; no code merges flags.
//!
//! Authorization goes through the engine: group management needs
//! `app/organization:{orgId}#groupcreate` (Owner, Manager), listing needs `#grouplist`, keys
//! need `#administer` (Owner), changing a collection's access needs its `manage_access`.

pub mod errors;
mod groups;
mod keys;
mod members;
mod model;
mod public;
mod scim;
mod scim_users;

use axum::http::HeaderMap;
use axum::routing::{delete, get, post};

use super::core::error::FacadeError;
use super::core::keys::KeyKind;
use super::core::records::Tx;
use super::core::runner::{Authed, Cx};
use super::core::{Cascading, Facade, Product, Routes};

/// The Bitwarden-style product.
pub const PRODUCT: Product = Product {
    name: "vault",
    roles: &[],
    routes,
    cascade,
};

/// Removes the product's records: a deleted organization's groups, collections and SCIM
/// users; a leaving member's SCIM user.
fn cascade(cx: &Cx<'_>, tx: &mut Tx, what: &Cascading<'_>) -> Result<(), FacadeError> {
    match what {
        Cascading::Organization(org) => {
            model::remove_org_records(cx, tx, org)?;
            scim_users::remove_org_records(cx, tx, org)
        }
        Cascading::Member { org, user } => {
            scim_users::remove_record(tx, org, user);
            Ok(())
        }
    }
}

/// A request made with `org`'s `kind` key, checked before anything shared is taken (401
/// for anything this deployment did not mint).
pub(crate) fn key_request(
    facade: &Facade,
    kind: KeyKind,
    headers: &HeaderMap,
) -> Result<Authed, FacadeError> {
    let key = facade.keys().authenticate(kind, headers)?;
    crate::api::connections::prove_connection();
    Ok(Authed::key(key))
}

/// The Bitwarden-style routes (`/api`, `/public`, `/scim/v2`): each path with its handlers
/// (the state is applied by [`crate::facade::router`]).
pub fn routes() -> Routes {
    let org = "/api/organizations/{org_id}";
    vec![
        (
            format!("{org}/groups"),
            get(groups::list)
                .post(groups::create)
                .delete(groups::bulk_delete),
        ),
        (format!("{org}/groups/details"), get(groups::list_details)),
        (
            format!("{org}/groups/{{id}}"),
            get(groups::get_one)
                .put(groups::update)
                .delete(groups::delete_one),
        ),
        (
            format!("{org}/groups/{{id}}/details"),
            get(groups::get_details),
        ),
        (format!("{org}/groups/{{id}}/users"), get(groups::users)),
        (
            format!("{org}/groups/{{id}}/user/{{user_id}}"),
            delete(groups::remove_user),
        ),
        (
            format!("{org}/collections"),
            get(groups::list_collections).post(groups::create_collection),
        ),
        (
            format!("{org}/collections/{{id}}"),
            get(groups::get_collection).put(groups::update_collection),
        ),
        (format!("{org}/api-key"), post(keys::create_api_key)),
        (format!("{org}/scim-key"), post(keys::create_scim_key)),
        (
            "/public/groups".to_string(),
            get(public::list).post(public::create),
        ),
        (
            "/public/groups/{id}".to_string(),
            get(public::get_one)
                .put(public::update)
                .delete(public::delete_one),
        ),
        (
            "/public/groups/{id}/member-ids".to_string(),
            get(public::member_ids).put(public::set_member_ids),
        ),
        ("/public/members".to_string(), get(members::list)),
        (
            "/public/members/{id}".to_string(),
            get(members::get_one)
                .put(members::update)
                .delete(members::delete_one),
        ),
        (
            "/public/members/{id}/group-ids".to_string(),
            get(members::group_ids).put(members::set_group_ids),
        ),
        (
            "/scim/v2/{org_id}/Groups".to_string(),
            get(scim::list_groups).post(scim::create_group),
        ),
        (
            "/scim/v2/{org_id}/Groups/{id}".to_string(),
            get(scim::get_group)
                .put(scim::replace_group)
                .patch(scim::patch_group)
                .delete(scim::delete_group),
        ),
        (
            "/scim/v2/{org_id}/Users".to_string(),
            get(scim_users::list).post(scim_users::create),
        ),
        (
            "/scim/v2/{org_id}/Users/{id}".to_string(),
            get(scim_users::get_one)
                .put(scim_users::replace)
                .patch(scim_users::patch)
                .delete(scim_users::delete_one),
        ),
    ]
}
