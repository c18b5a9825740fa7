//! SCIM 2.0 Users under `/scim/v2/{orgId}/Users`, as identity providers provision and
//! deprovision them: list (`filter=userName eq "u"` or `externalId eq "x"`), get, create
//! (201: the user joins the organization as a viewer), replace, PATCH and delete.
//!
//! - A SCIM user id is the user's id, SCIM's `userName` (the JWT `sub` the user signs in
//!   with). Everything else a SCIM client sends (`externalId`, `displayName`, `emails`) is
//!   kept per organization, so a client never changes what another organization, or the
//!   user's own record, says; and a user who is not a member is 404 here.
//! - `active` is read back truthfully: `false` while the user is suspended in the
//!   organization. `PATCH` with `active` (as `{"op": "replace", "path": "active", "value":
//!   false}` or as Azure AD's path-less `{"op": "replace", "value": {"active": false}}`,
//!   booleans or the strings `"True"`/`"False"`), `PUT` with `active`, or a create with
//!   `active: false` suspend the user there: every permission through the organization ends,
//!   memberships stay, and `active: true` restores exactly what they had.
//! - `DELETE` removes the user from the organization, every grant inside with it, in one
//!   write (the core's member removal). 204.
//!
//! Attributes zanzi keeps nothing of (`name.givenName`, enterprise extensions, ...) are
//! accepted and dropped, as Bitwarden's SCIM service does.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use serde::Deserialize;
use serde_json::{json, Value};

use super::errors::{ScimError, VaultError};
use super::model::{self, OrgUser};
use super::scim::{patch_body, read, write, ListQuery, Member, Operation, ScimReply};
use crate::facade::core::error::FacadeError;
use crate::facade::core::fields::parse_body;
use crate::facade::core::organizations as orgs;
use crate::facade::core::records::Tx;
use crate::facade::core::roles::ORG_VIEWER;
use crate::facade::core::runner::{now, Cx};
use crate::facade::core::Facade;

const USER_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:User";

/// Stages the removal of what `org` keeps about `user`.
pub fn remove_record(tx: &mut Tx, org: &str, user: &str) {
    tx.remove(&model::ORG_USERS, &model::org_user_key(org, user));
}

/// Stages the removal of what `org` keeps about all its users.
pub fn remove_org_records(cx: &Cx<'_>, tx: &mut Tx, org: &str) -> Result<(), FacadeError> {
    for (key, _) in model::ORG_USERS.scan(cx.view, &format!("{org}/"))? {
        tx.remove(&model::ORG_USERS, &key);
    }
    Ok(())
}

/// 404 unless `user` is a member of `org`.
fn require_member(cx: &Cx<'_>, org: &str, user: &str) -> Result<(), FacadeError> {
    if orgs::is_member(cx, org, user)? {
        Ok(())
    } else {
        Err(FacadeError::not_found("user"))
    }
}

/// The SCIM user `id` of `org` as `kept` describes it, `active` as given.
fn user_of(org: &str, id: &str, kept: &OrgUser, active: bool) -> Value {
    let emails: Vec<Value> = kept
        .emails
        .iter()
        .enumerate()
        .map(|(at, e)| json!({ "value": e, "primary": at == 0 }))
        .collect();
    json!({
        "schemas": [USER_SCHEMA],
        "id": id,
        "userName": id,
        "externalId": kept.external_id,
        "displayName": kept.display_name,
        "emails": emails,
        "active": active,
        "meta": {
            "resourceType": "User",
            "created": kept.created_at,
            "lastModified": kept.updated_at,
            "location": format!("/scim/v2/{org}/Users/{id}"),
        },
    })
}

/// The SCIM user `id` of `org` as stored.
fn user_json(cx: &Cx<'_>, org: &str, id: &str) -> Result<Value, FacadeError> {
    let kept = model::org_user(cx, org, id)?;
    let active = !orgs::is_user_suspended(cx, org, id)?;
    Ok(user_of(org, id, &kept, active))
}

/// `GET /scim/v2/{orgId}/Users` (`filter=userName eq "u"` or `externalId eq "x"`).
pub async fn list(
    State(facade): State<Arc<Facade>>,
    headers: HeaderMap,
    Path(org): Path<String>,
    Query(query): Query<ListQuery>,
) -> Result<ScimReply, ScimError> {
    let listing = query.checked(&["userName", "externalId"])?;
    read(facade, &headers, org, move |cx, org| {
        let mut ids = orgs::members(cx, org)?;
        ids.sort();
        if let Some((attribute, value)) = &listing.filter {
            let mut kept = Vec::new();
            for id in ids {
                let matches = match *attribute {
                    "userName" => id == *value,
                    _ => model::org_user(cx, org, &id)?
                        .external_id
                        .is_some_and(|e| e == *value),
                };
                if matches {
                    kept.push(id);
                }
            }
            ids = kept;
        }
        Ok(listing.respond(&ids, |u| user_json(cx, org, u))?)
    })
    .await
}

/// `GET /scim/v2/{orgId}/Users/{id}`.
pub async fn get_one(
    State(facade): State<Arc<Facade>>,
    headers: HeaderMap,
    Path((org, id)): Path<(String, String)>,
) -> Result<ScimReply, ScimError> {
    read(facade, &headers, org, move |cx, org| {
        require_member(cx, org, &id)?;
        Ok(user_json(cx, org, &id)?)
    })
    .await
}

/// `{formatted}` of a SCIM `name`.
#[derive(Debug, Default, Clone, Deserialize)]
struct Name {
    #[serde(default)]
    formatted: Option<String>,
}

/// A SCIM user as sent; attributes not named here are dropped.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
struct UserBody {
    #[serde(default)]
    user_name: Option<String>,
    #[serde(default)]
    external_id: Option<String>,
    #[serde(default)]
    display_name: Option<String>,
    #[serde(default)]
    name: Option<Name>,
    #[serde(default)]
    emails: Vec<Member>,
    #[serde(default)]
    active: Option<Value>,
}

/// A SCIM boolean: `true`/`false`, or the strings `"True"`/`"False"` some clients send.
fn boolean(field: &'static str, value: &Value) -> Result<bool, VaultError> {
    match value {
        Value::Bool(b) => Ok(*b),
        Value::String(s) if s.eq_ignore_ascii_case("true") => Ok(true),
        Value::String(s) if s.eq_ignore_ascii_case("false") => Ok(false),
        other => Err(VaultError::invalid(
            field,
            format!("expected true or false, not {other}"),
        )),
    }
}

/// A checked [`UserBody`]: the user id, what the organization keeps, and `active`.
#[derive(Debug, Clone)]
struct UserInput {
    id: String,
    kept: OrgUser,
    active: bool,
}

fn user_input(bytes: &[u8]) -> Result<UserInput, VaultError> {
    let body: UserBody = parse_body(bytes)?;
    let id = body.user_name.unwrap_or_default();
    if crate::tuple::validate_object_id(&id).is_err() {
        return Err(VaultError::invalid(
            "userName",
            format!("`{id}` is not a valid user id"),
        ));
    }
    let display_name = body
        .display_name
        .or_else(|| body.name.and_then(|n| n.formatted));
    let active = body
        .active
        .as_ref()
        .map(|v| boolean("active", v))
        .transpose()?
        .unwrap_or(true);
    Ok(UserInput {
        id,
        kept: OrgUser {
            external_id: model::check_external_id(body.external_id.as_deref())?,
            display_name,
            emails: body.emails.into_iter().map(|e| e.value).collect(),
            created_at: String::new(),
            updated_at: String::new(),
        },
        active,
    })
}

/// Stages what `org` keeps about `id` and its `active` state; returns the SCIM user.
fn save(
    cx: &Cx<'_>,
    tx: &mut Tx,
    org: &str,
    id: &str,
    mut kept: OrgUser,
    active: bool,
) -> Result<Value, FacadeError> {
    let at = now();
    kept.created_at = model::ORG_USERS
        .get(cx.view, &model::org_user_key(org, id))?
        .map_or_else(|| at.clone(), |old| old.created_at);
    kept.updated_at = at;
    model::put_org_user(tx, org, id, &kept)?;
    orgs::set_user_active(tx, org, id, active)?;
    Ok(user_of(org, id, &kept, active))
}

/// `POST /scim/v2/{orgId}/Users` `{userName, externalId, displayName, emails, active}`: the
/// user joins the organization as a viewer (409 when already a member). 201.
pub async fn create(
    State(facade): State<Arc<Facade>>,
    headers: HeaderMap,
    Path(org): Path<String>,
    body: Bytes,
) -> Result<ScimReply, ScimError> {
    let input = user_input(&body)?;
    write(
        facade,
        &headers,
        org,
        StatusCode::CREATED,
        move |cx, tx, org| {
            let id = &input.id;
            if orgs::is_member(cx, org, id)? {
                return Err(
                    FacadeError::AlreadyExists(format!("user `{id}` is already a member")).into(),
                );
            }
            orgs::add_member(cx, tx, org, id, ORG_VIEWER)?;
            Ok(save(cx, tx, org, id, input.kept.clone(), input.active)?)
        },
    )
    .await
}

/// `PUT /scim/v2/{orgId}/Users/{id}`: replaces what the organization keeps and `active`
/// (`userName` must stay the id: 400).
pub async fn replace(
    State(facade): State<Arc<Facade>>,
    headers: HeaderMap,
    Path((org, id)): Path<(String, String)>,
    body: Bytes,
) -> Result<ScimReply, ScimError> {
    let input = user_input(&body)?;
    if input.id != id {
        return Err(VaultError::invalid("userName", "userName cannot change").into());
    }
    write(facade, &headers, org, StatusCode::OK, move |cx, tx, org| {
        require_member(cx, org, &id)?;
        Ok(save(cx, tx, org, &id, input.kept.clone(), input.active)?)
    })
    .await
}

/// Applies one PatchOp operation to a user's state.
fn apply(
    kept: &mut OrgUser,
    active: &mut bool,
    id: &str,
    op: &Operation,
) -> Result<(), VaultError> {
    let kind = op.op.to_ascii_lowercase();
    if !["add", "replace", "remove"].contains(&kind.as_str()) {
        return Err(VaultError::invalid(
            "Operations",
            format!(
                "unsupported operation `{}`: expected add, remove or replace",
                op.op
            ),
        ));
    }
    let path = op.path.as_deref().map(str::trim).filter(|p| !p.is_empty());
    let Some(path) = path else {
        // A path-less value object (Azure AD): each attribute as its own operation.
        let Some(Value::Object(map)) = &op.value else {
            return Err(VaultError::invalid(
                "Operations",
                "a path-less operation needs an object value",
            ));
        };
        for (key, value) in map {
            let one = Operation {
                op: op.op.clone(),
                path: Some(key.clone()),
                value: Some(value.clone()),
            };
            apply(kept, active, id, &one)?;
        }
        return Ok(());
    };
    let value = op.value.as_ref();
    let text = value.and_then(Value::as_str).map(str::to_string);
    let removing = kind == "remove";
    match path.to_ascii_lowercase().as_str() {
        "active" => {
            let Some(value) = value.filter(|_| !removing) else {
                return Err(VaultError::invalid("active", "active needs a value"));
            };
            *active = boolean("active", value)?;
        }
        "username" if text.as_deref() != Some(id) => {
            return Err(VaultError::invalid("userName", "userName cannot change"));
        }
        "externalid" => {
            kept.external_id = if removing {
                None
            } else {
                model::check_external_id(text.as_deref())?
            };
        }
        "displayname" | "name.formatted" => {
            kept.display_name = if removing { None } else { text };
        }
        p if p.starts_with("emails") => {
            kept.emails = match value.filter(|_| !removing) {
                None => Vec::new(),
                Some(Value::String(email)) => vec![email.clone()],
                Some(Value::Array(items)) => items
                    .iter()
                    .filter_map(|i| i.get("value").and_then(Value::as_str))
                    .map(str::to_string)
                    .collect(),
                Some(other) => {
                    return Err(VaultError::invalid(
                        "emails",
                        format!("expected an address or a list of `{{\"value\"}}`, not {other}"),
                    ))
                }
            };
        }
        // Attributes zanzi keeps nothing of.
        _ => {}
    }
    Ok(())
}

/// `PATCH /scim/v2/{orgId}/Users/{id}` (PatchOp): 204.
pub async fn patch(
    State(facade): State<Arc<Facade>>,
    headers: HeaderMap,
    Path((org, id)): Path<(String, String)>,
    body: Bytes,
) -> Result<ScimReply, ScimError> {
    let body = patch_body(&body)?;
    write(
        facade,
        &headers,
        org,
        StatusCode::NO_CONTENT,
        move |cx, tx, org| {
            require_member(cx, org, &id)?;
            let mut kept = model::org_user(cx, org, &id)?;
            let mut active = !orgs::is_user_suspended(cx, org, &id)?;
            for op in &body.operations {
                apply(&mut kept, &mut active, &id, op)?;
            }
            save(cx, tx, org, &id, kept, active)?;
            Ok(Value::Null)
        },
    )
    .await
}

/// `DELETE /scim/v2/{orgId}/Users/{id}`: the user leaves the organization. 204.
pub async fn delete_one(
    State(facade): State<Arc<Facade>>,
    headers: HeaderMap,
    Path((org, id)): Path<(String, String)>,
) -> Result<ScimReply, ScimError> {
    write(
        facade,
        &headers,
        org,
        StatusCode::NO_CONTENT,
        move |cx, tx, org| {
            require_member(cx, org, &id)?;
            orgs::remove_member(cx, tx, org, &id)?;
            Ok(Value::Null)
        },
    )
    .await
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn active_patches_take_both_forms_and_string_booleans() {
        let mut kept = OrgUser::default();
        let mut active = true;
        let ops: Vec<Operation> = serde_json::from_value(json!([
            {"op": "Replace", "path": "active", "value": false},
            {"op": "replace", "value": {"active": "True", "displayName": "Ann", "name.givenName": "A"}},
            {"op": "replace", "path": "emails[type eq \"work\"].value", "value": "ann@example.com"},
            {"op": "add", "path": "externalId", "value": "e-1"},
        ]))
        .unwrap();
        apply(&mut kept, &mut active, "ann", &ops[0]).unwrap();
        assert!(!active);
        apply(&mut kept, &mut active, "ann", &ops[1]).unwrap();
        assert!(active);
        assert_eq!(kept.display_name.as_deref(), Some("Ann"));
        apply(&mut kept, &mut active, "ann", &ops[2]).unwrap();
        assert_eq!(kept.emails, vec!["ann@example.com".to_string()]);
        apply(&mut kept, &mut active, "ann", &ops[3]).unwrap();
        assert_eq!(kept.external_id.as_deref(), Some("e-1"));
        let bad: Operation =
            serde_json::from_value(json!({"op": "replace", "path": "active", "value": "maybe"}))
                .unwrap();
        assert!(apply(&mut kept, &mut active, "ann", &bad).is_err());
        let rename: Operation =
            serde_json::from_value(json!({"op": "replace", "path": "userName", "value": "bob"}))
                .unwrap();
        assert!(apply(&mut kept, &mut active, "ann", &rename).is_err());
    }
}
