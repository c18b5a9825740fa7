//! Bitwarden's public API for members, `/public/members`, authenticated by the organization
//! API key: list, get (with the member's direct collection access), update (role `type`,
//! `externalId`, and, when present, `collections` and `groups`), delete (the member leaves
//! the organization: every grant inside ends, as `DELETE /v1beta1/.../users/{id}` does), and
//! `GET|PUT /{id}/group-ids`. A member id is the user's id.
//!
//! `type` maps to the organization roles: 0 Owner (`app_organization_owner`), 1 Admin
//! (`app_organization_manager`), 2 User (`app_organization_viewer`), 4 Custom (any other
//! role, shown only). `status` is 2 (confirmed), or -1 (revoked) while the member is
//! suspended in the organization (SCIM `active=false`).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use serde::Deserialize;
use serde_json::{json, Value};

use super::errors::{BitwardenError, VaultError};
use super::groups::list_json;
use super::model::{self, Access};
use super::public::{id_list, read, write};
use crate::facade::core::bindings::{self, Principal, ORG_TYPE};
use crate::facade::core::error::FacadeError;
use crate::facade::core::fields::{parse_body, unique_ids};
use crate::facade::core::organizations as orgs;
use crate::facade::core::roles::{ORG_MANAGER, ORG_OWNER, ORG_VIEWER};
use crate::facade::core::runner::{now, object, Answer, Cx};
use crate::facade::core::{users, Facade};

/// The roles a member `type` stands for, in the order a member's type is read.
const TYPES: [(u8, &str); 3] = [(0, ORG_OWNER), (1, ORG_MANAGER), (2, ORG_VIEWER)];

/// The member's `type`: that of the strongest predefined role it holds, 4 for other roles.
fn member_type(roles: &[String]) -> u8 {
    TYPES
        .iter()
        .find(|(_, role)| roles.iter().any(|r| r == role))
        .map_or(4, |(kind, _)| *kind)
}

/// 404 unless `user` is a member of `org`.
fn require_member(cx: &Cx<'_>, org: &str, user: &str) -> Result<(), FacadeError> {
    if orgs::is_member(cx, org, user)? {
        Ok(())
    } else {
        Err(FacadeError::not_found("member"))
    }
}

/// `{"object": "member", ...}`, with `collections` when given.
fn member_json(
    cx: &Cx<'_>,
    org: &str,
    user: &str,
    collections: Option<&[Access]>,
) -> Result<Value, FacadeError> {
    let roles: Vec<String> = orgs::roles_of(cx, org, user)?
        .into_iter()
        .map(|b| b.role)
        .collect();
    let kept = model::org_user(cx, org, user)?;
    let own = users::USERS.get(cx.view, user)?;
    let email = kept
        .emails
        .first()
        .cloned()
        .or_else(|| own.as_ref().map(|u| u.email.clone()))
        .unwrap_or_default();
    let name = kept
        .display_name
        .clone()
        .or_else(|| own.as_ref().map(|u| u.title.clone()))
        .unwrap_or_default();
    let status = if orgs::is_user_suspended(cx, org, user)? {
        -1
    } else {
        2
    };
    Ok(json!({
        "object": "member",
        "id": user,
        "userId": user,
        "name": name,
        "email": email,
        "twoFactorEnabled": false,
        "status": status,
        "type": member_type(&roles),
        "externalId": kept.external_id,
        "resetPasswordEnrolled": false,
        "collections": collections,
    }))
}

/// `GET /public/members`: every member, without collections (as Bitwarden lists them).
pub async fn list(
    State(facade): State<Arc<Facade>>,
    headers: HeaderMap,
) -> Result<Answer, BitwardenError> {
    read(facade, &headers, |cx, org| {
        let data = orgs::members(cx, org)?
            .iter()
            .map(|u| member_json(cx, org, u, None))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(list_json(data))
    })
    .await
}

/// `GET /public/members/{id}`.
pub async fn get_one(
    State(facade): State<Arc<Facade>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Answer, BitwardenError> {
    read(facade, &headers, move |cx, org| {
        require_member(cx, org, &id)?;
        let collections = model::user_access(cx, org, &id)?;
        Ok(member_json(cx, org, &id, Some(&collections))?)
    })
    .await
}

/// `{type, externalId, collections, groups}` of an update.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
struct MemberBody {
    #[serde(default, rename = "type")]
    kind: Option<u8>,
    #[serde(default, alias = "external_id")]
    external_id: Option<String>,
    #[serde(default)]
    collections: Option<Vec<Access>>,
    #[serde(default)]
    groups: Option<Vec<String>>,
}

/// Gives `user` exactly the organization role `role` among the member types' roles (other
/// roles stay): the removed bindings go through the same guard as a policy delete.
fn set_type(
    cx: &Cx<'_>,
    tx: &mut crate::facade::core::records::Tx,
    org: &str,
    user: &str,
    role: &str,
) -> Result<(), FacadeError> {
    let resource = object(ORG_TYPE, org)?;
    let removing: Vec<bindings::Binding> = orgs::roles_of(cx, org, user)?
        .into_iter()
        .filter(|b| b.role != role && TYPES.iter().any(|(_, r)| *r == b.role))
        .collect();
    bindings::guard_removal(cx, &resource, &removing)?;
    for binding in &removing {
        bindings::revoke(cx, tx, &binding.id)?;
    }
    let role = cx.facade.known_role(role)?;
    bindings::grant(
        cx,
        tx,
        &resource,
        role,
        &Principal::User(user.to_string()),
        "",
    )?;
    Ok(())
}

/// `PUT /public/members/{id}` `{type, externalId, collections, groups}`: `type` is
/// required; `collections` and `groups` are replaced when present.
pub async fn update(
    State(facade): State<Arc<Facade>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Answer, BitwardenError> {
    let body: MemberBody = parse_body(&body)?;
    let role = match body.kind {
        Some(kind) => TYPES
            .iter()
            .find(|(k, _)| *k == kind)
            .map(|(_, role)| *role)
            .ok_or_else(|| {
                VaultError::invalid(
                    "Type",
                    format!("type {kind} is not supported: expected 0, 1 or 2"),
                )
            })?,
        None => return Err(VaultError::invalid("Type", "type is required").into()),
    };
    if let Some(collections) = &body.collections {
        model::check_access(collections)?;
    }
    let external_id = model::check_external_id(body.external_id.as_deref())?;
    let groups = body
        .groups
        .clone()
        .map(|g| unique_ids(g, "groups"))
        .transpose()?;
    write(facade, &headers, move |cx, tx, org| {
        require_member(cx, org, &id)?;
        set_type(cx, tx, org, &id, role)?;
        let mut kept = model::org_user(cx, org, &id)?;
        kept.external_id.clone_from(&external_id);
        if kept.created_at.is_empty() {
            kept.created_at = now();
        }
        kept.updated_at = now();
        model::put_org_user(tx, org, &id, &kept)?;
        if let Some(collections) = &body.collections {
            model::set_user_access(cx, tx, org, &id, collections)?;
        }
        if let Some(groups) = &groups {
            model::set_groups_of(cx, tx, org, &id, groups)?;
        }
        let collections = match &body.collections {
            Some(collections) => collections.clone(),
            None => model::user_access(cx, org, &id)?,
        };
        let mut answer = member_json(cx, org, &id, Some(&collections))?;
        if let Some(map) = answer.as_object_mut() {
            map.insert("type".to_string(), json!(body.kind));
            map.insert("externalId".to_string(), json!(external_id));
        }
        Ok(answer)
    })
    .await
}

/// `DELETE /public/members/{id}`: the member leaves the organization.
pub async fn delete_one(
    State(facade): State<Arc<Facade>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Answer, BitwardenError> {
    write(facade, &headers, move |cx, tx, org| {
        require_member(cx, org, &id)?;
        orgs::remove_member(cx, tx, org, &id)?;
        Ok(json!({}))
    })
    .await
}

/// `GET /public/members/{id}/group-ids`.
pub async fn group_ids(
    State(facade): State<Arc<Facade>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Answer, BitwardenError> {
    read(facade, &headers, move |cx, org| {
        require_member(cx, org, &id)?;
        Ok(json!(model::groups_of(cx, org, &id)?))
    })
    .await
}

/// `PUT /public/members/{id}/group-ids` `{"groupIds": [...]}`: replaces the member's groups
/// (each must be a group of the organization: 404).
pub async fn set_group_ids(
    State(facade): State<Arc<Facade>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Answer, BitwardenError> {
    let wanted = id_list(&body, ["groupIds", "group_ids"], "GroupIds")?;
    write(facade, &headers, move |cx, tx, org| {
        require_member(cx, org, &id)?;
        model::set_groups_of(cx, tx, org, &id, &wanted)?;
        Ok(json!({}))
    })
    .await
}
