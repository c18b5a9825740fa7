//! SCIM 2.0 (RFC 7643/7644) for directory sync under `/scim/v2/{orgId}`, authenticated by
//! the organization's SCIM key: Groups (list with `filter=displayName eq "x"` or
//! `externalId eq "y"`, `startIndex`, `count`; get; create 201; replace; PATCH with
//! add/remove/replace of members and replace of displayName or externalId, by path or as a
//! path-less value object; delete 204) and the Users groups need (list, get, create: an
//! organization user id is the user's id, SCIM's `userName`). Bodies are
//! `application/scim+json`; errors use SCIM's error schema. A duplicate externalId is 409.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{json, Value};

use super::errors::{ScimError, VaultError, SCIM_JSON};
use super::groups::MANAGE;
use super::model::{self, GroupInput, VaultGroup};
use super::{run, Actor, Answer, Facade, KeyKind, Who};
use crate::facade::auth::Caller;
use crate::facade::policies::{self, Principal};
use crate::facade::records::Tx;
use crate::facade::{
    object, organizations, parse_body, roles, users, Cx, FacadeError, TOKEN_HEADER,
};

const GROUP_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
const USER_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
const LIST_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";
const PATCH_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";

/// A SCIM answer: status, body (none for 204), `Location` for 201.
pub struct ScimReply {
    status: StatusCode,
    answer: Answer,
    location: Option<String>,
}

impl IntoResponse for ScimReply {
    fn into_response(self) -> Response {
        let mut response = if self.status == StatusCode::NO_CONTENT {
            StatusCode::NO_CONTENT.into_response()
        } else {
            (
                self.status,
                [(header::CONTENT_TYPE, SCIM_JSON)],
                self.answer.body.to_string(),
            )
                .into_response()
        };
        let headers = response.headers_mut();
        if let Ok(value) = HeaderValue::from_str(&self.answer.token) {
            headers.insert(TOKEN_HEADER, value);
        }
        if let Some(location) = self.location.and_then(|l| HeaderValue::from_str(&l).ok()) {
            headers.insert(header::LOCATION, location);
        }
        response
    }
}

async fn call<F>(
    facade: Arc<Facade>,
    headers: &HeaderMap,
    org: String,
    mutate: bool,
    status: StatusCode,
    work: F,
) -> Result<ScimReply, ScimError>
where
    F: FnOnce(&Cx<'_>, &mut Tx, &Actor, &str) -> Result<Value, VaultError> + Send + 'static,
{
    let who = Who::key(KeyKind::Scim, headers)?;
    let answer = run(&facade, who, mutate, move |cx, tx, actor| {
        actor.require(cx, &org, MANAGE)?;
        work(cx, tx, actor, &org)
    })
    .await?;
    let location = (status == StatusCode::CREATED)
        .then(|| {
            answer
                .body
                .pointer("/meta/location")
                .and_then(Value::as_str)
                .map(str::to_string)
        })
        .flatten();
    Ok(ScimReply {
        status,
        answer,
        location,
    })
}

/// The group with the stored members.
fn group_json(cx: &Cx<'_>, group: &VaultGroup) -> Result<Value, FacadeError> {
    Ok(group_of(group, &model::members(cx, &group.id)?))
}

/// The SCIM group with `members` (a write answers with what it wrote).
fn group_of(group: &VaultGroup, members: &[String]) -> Value {
    let members: Vec<Value> = members.iter().map(|m| json!({ "value": m })).collect();
    json!({
        "schemas": [GROUP_SCHEMA],
        "id": group.id,
        "displayName": group.name,
        "externalId": group.external_id,
        "members": members,
        "meta": {
            "resourceType": "Group",
            "created": group.created_at,
            "lastModified": group.revision_date,
            "location": format!("/scim/v2/{}/Groups/{}", group.org_id, group.id),
        },
    })
}

fn list_response(all: Vec<Value>, start: usize, count: usize) -> Value {
    let total = all.len();
    let page: Vec<Value> = all
        .into_iter()
        .skip(start.saturating_sub(1))
        .take(count)
        .collect();
    json!({
        "schemas": [LIST_SCHEMA],
        "totalResults": total,
        "startIndex": start,
        "itemsPerPage": page.len(),
        "Resources": page,
    })
}

/// `?filter=&startIndex=&count=`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListQuery {
    #[serde(default)]
    filter: Option<String>,
    #[serde(default)]
    start_index: Option<usize>,
    #[serde(default)]
    count: Option<usize>,
}

/// `(attribute, value)` of `attribute eq "value"`, the attribute one of `allowed` (ignoring
/// case).
fn parse_filter(
    filter: &str,
    allowed: &[&'static str],
) -> Result<(&'static str, String), VaultError> {
    let bad = || {
        VaultError::InvalidFilter(format!(
            "unsupported filter `{filter}`: expected `{} eq \"value\"`",
            allowed.join("|")
        ))
    };
    let mut parts = filter.trim().splitn(3, ' ');
    let (Some(attribute), Some(op), Some(value)) = (parts.next(), parts.next(), parts.next())
    else {
        return Err(bad());
    };
    let attribute = allowed
        .iter()
        .find(|a| a.eq_ignore_ascii_case(attribute))
        .ok_or_else(bad)?;
    let value = value.trim();
    if !op.eq_ignore_ascii_case("eq")
        || value.len() < 2
        || !value.starts_with('"')
        || !value.ends_with('"')
    {
        return Err(bad());
    }
    let inner = value.get(1..value.len() - 1).ok_or_else(bad)?;
    Ok((attribute, inner.replace("\\\"", "\"")))
}

fn paging(query: &ListQuery) -> (usize, usize) {
    (
        query.start_index.unwrap_or(1).max(1),
        query.count.unwrap_or(100),
    )
}

/// `GET /scim/v2/{orgId}/Groups`.
pub async fn list_groups(
    State(facade): State<Arc<Facade>>,
    headers: HeaderMap,
    Path(org): Path<String>,
    Query(query): Query<ListQuery>,
) -> Result<ScimReply, ScimError> {
    let filter = query
        .filter
        .as_deref()
        .map(|f| parse_filter(f, &["displayName", "externalId"]))
        .transpose()?;
    let (start, count) = paging(&query);
    call(
        facade,
        &headers,
        org,
        false,
        StatusCode::OK,
        move |cx, _, _, org| {
            let mut groups = model::groups_in_org(cx, org)?;
            groups.sort_by(|a, b| a.name.cmp(&b.name).then(a.id.cmp(&b.id)));
            if let Some((attribute, value)) = &filter {
                groups.retain(|g| match *attribute {
                    "displayName" => g.name == *value,
                    _ => g
                        .external_id
                        .as_deref()
                        .is_some_and(|e| e.eq_ignore_ascii_case(value)),
                });
            }
            let all = groups
                .iter()
                .map(|g| group_json(cx, g))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(list_response(all, start, count))
        },
    )
    .await
}

/// `GET /scim/v2/{orgId}/Groups/{id}`.
pub async fn get_group(
    State(facade): State<Arc<Facade>>,
    headers: HeaderMap,
    Path((org, id)): Path<(String, String)>,
) -> Result<ScimReply, ScimError> {
    call(
        facade,
        &headers,
        org,
        false,
        StatusCode::OK,
        move |cx, _, _, org| Ok(group_json(cx, &model::load_group(cx, org, &id)?)?),
    )
    .await
}

#[derive(Debug, Default, Deserialize)]
struct Member {
    value: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct GroupBody {
    #[serde(default)]
    display_name: Option<String>,
    #[serde(default)]
    external_id: Option<String>,
    #[serde(default)]
    members: Option<Vec<Member>>,
}

fn member_ids(members: &[Member]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for member in members {
        if !out.contains(&member.value) {
            out.push(member.value.clone());
        }
    }
    out
}

/// `POST /scim/v2/{orgId}/Groups` `{displayName, externalId, members: [{value}]}`: 201.
pub async fn create_group(
    State(facade): State<Arc<Facade>>,
    headers: HeaderMap,
    Path(org): Path<String>,
    body: Bytes,
) -> Result<ScimReply, ScimError> {
    let body: GroupBody = parse_body(&body)?;
    let input = GroupInput {
        name: model::check_name(body.display_name.as_deref())?,
        external_id: model::check_external_id(body.external_id.as_deref())?,
        access_all: false,
    };
    let members = member_ids(body.members.as_deref().unwrap_or_default());
    call(
        facade,
        &headers,
        org,
        true,
        StatusCode::CREATED,
        move |cx, tx, _, org| {
            let group = model::create_group(cx, tx, org, input)?;
            model::add_members(cx, tx, org, &group.id, &members)?;
            Ok(group_of(&group, &members))
        },
    )
    .await
}

/// `PUT /scim/v2/{orgId}/Groups/{id}`: replaces displayName and, when present, the members
/// (the externalId stays, as Bitwarden).
pub async fn replace_group(
    State(facade): State<Arc<Facade>>,
    headers: HeaderMap,
    Path((org, id)): Path<(String, String)>,
    body: Bytes,
) -> Result<ScimReply, ScimError> {
    let body: GroupBody = parse_body(&body)?;
    let name = model::check_name(body.display_name.as_deref())?;
    let members = body.members.as_deref().map(member_ids);
    call(
        facade,
        &headers,
        org,
        true,
        StatusCode::OK,
        move |cx, tx, _, org| {
            let old = model::load_group(cx, org, &id)?;
            let input = GroupInput {
                name,
                external_id: old.external_id.clone(),
                access_all: old.access_all,
            };
            let group = model::update_group(cx, tx, &old, input)?;
            let members = match members {
                Some(members) => {
                    model::set_members(cx, tx, org, &id, &members)?;
                    members
                }
                None => model::members(cx, &id)?,
            };
            Ok(group_of(&group, &members))
        },
    )
    .await
}

/// One PatchOp operation.
#[derive(Debug, Deserialize)]
struct Operation {
    op: String,
    #[serde(default)]
    path: Option<String>,
    #[serde(default)]
    value: Option<Value>,
}

#[derive(Debug, Deserialize)]
struct PatchBody {
    #[serde(default)]
    schemas: Vec<String>,
    #[serde(rename = "Operations", alias = "operations")]
    operations: Vec<Operation>,
}

/// The member ids in a PATCH value: `[{value}]`, `{value}` or `"id"`.
fn values_of(value: Option<&Value>) -> Result<Vec<String>, VaultError> {
    let bad = || VaultError::invalid("members", "expected `[{\"value\": \"<id>\"}]`");
    let one = |v: &Value| -> Result<String, VaultError> {
        match v {
            Value::String(s) => Ok(s.clone()),
            Value::Object(map) => map
                .get("value")
                .and_then(Value::as_str)
                .map(str::to_string)
                .ok_or_else(bad),
            _ => Err(bad()),
        }
    };
    match value {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items.iter().map(one).collect(),
        Some(other) => Ok(vec![one(other)?]),
    }
}

/// The id of a `members[value eq "id"]` path.
fn member_in_path(path: &str) -> Result<Option<String>, VaultError> {
    let Some(inner) = path
        .strip_prefix("members[")
        .and_then(|p| p.strip_suffix(']'))
    else {
        return Ok(None);
    };
    let (_, value) = parse_filter(inner, &["value"])?;
    Ok(Some(value))
}

/// One group's state while a PATCH is applied.
struct Patched {
    members: Vec<String>,
    name: String,
    external_id: Option<String>,
}

fn apply(state: &mut Patched, op: &Operation) -> Result<(), VaultError> {
    let kind = op.op.to_ascii_lowercase();
    let path = op.path.as_deref().map(str::trim).filter(|p| !p.is_empty());
    match (kind.as_str(), path) {
        ("add" | "replace", None) => {
            // A path-less value object (Azure AD, Okta): `{"displayName": ..., ...}`.
            let Some(Value::Object(map)) = &op.value else {
                return Err(VaultError::invalid(
                    "Operations",
                    "a path-less operation needs an object value",
                ));
            };
            // Azure AD repeats the group's `id` in it; read-only attributes are skipped.
            for (key, value) in map {
                if ["id", "schemas", "meta"].contains(&key.as_str()) {
                    continue;
                }
                let one = Operation {
                    op: op.op.clone(),
                    path: Some(key.clone()),
                    value: Some(value.clone()),
                };
                apply(state, &one)?;
            }
        }
        (_, Some(p)) if p.eq_ignore_ascii_case("displayName") => {
            let name = op.value.as_ref().and_then(Value::as_str);
            if kind == "remove" {
                return Err(VaultError::invalid(
                    "displayName",
                    "displayName cannot be removed",
                ));
            }
            state.name = model::check_name(name)?;
        }
        (_, Some(p)) if p.eq_ignore_ascii_case("externalId") => {
            state.external_id = if kind == "remove" {
                None
            } else {
                model::check_external_id(op.value.as_ref().and_then(Value::as_str))?
            };
        }
        ("add", Some(p)) if p.eq_ignore_ascii_case("members") => {
            for id in values_of(op.value.as_ref())? {
                if !state.members.contains(&id) {
                    state.members.push(id);
                }
            }
        }
        ("replace", Some(p)) if p.eq_ignore_ascii_case("members") => {
            state.members = Vec::new();
            for id in values_of(op.value.as_ref())? {
                if !state.members.contains(&id) {
                    state.members.push(id);
                }
            }
        }
        ("remove", Some(p)) if p.eq_ignore_ascii_case("members") => {
            let gone = values_of(op.value.as_ref())?;
            if op.value.is_none() {
                state.members.clear();
            } else {
                state.members.retain(|m| !gone.contains(m));
            }
        }
        ("remove", Some(p)) => match member_in_path(p)? {
            Some(id) => state.members.retain(|m| *m != id),
            None => return Err(unsupported(p)),
        },
        ("add" | "replace", Some(p)) => match member_in_path(p)? {
            Some(id) if !state.members.contains(&id) => state.members.push(id),
            Some(_) => {}
            None => return Err(unsupported(p)),
        },
        (other, _) => {
            return Err(VaultError::invalid(
                "Operations",
                format!("unsupported operation `{other}`: expected add, remove or replace"),
            ))
        }
    }
    Ok(())
}

fn unsupported(path: &str) -> VaultError {
    VaultError::invalid("Operations", format!("unsupported path `{path}`"))
}

/// `PATCH /scim/v2/{orgId}/Groups/{id}` (PatchOp): 204.
pub async fn patch_group(
    State(facade): State<Arc<Facade>>,
    headers: HeaderMap,
    Path((org, id)): Path<(String, String)>,
    body: Bytes,
) -> Result<ScimReply, ScimError> {
    let body: PatchBody = parse_body(&body)?;
    if !body.schemas.is_empty() && !body.schemas.iter().any(|s| s == PATCH_SCHEMA) {
        return Err(VaultError::invalid("schemas", format!("expected `{PATCH_SCHEMA}`")).into());
    }
    call(
        facade,
        &headers,
        org,
        true,
        StatusCode::NO_CONTENT,
        move |cx, tx, _, org| {
            let old = model::load_group(cx, org, &id)?;
            let mut state = Patched {
                members: model::members(cx, &id)?,
                name: old.name.clone(),
                external_id: old.external_id.clone(),
            };
            for op in &body.operations {
                apply(&mut state, op)?;
            }
            let input = GroupInput {
                name: state.name,
                external_id: state.external_id,
                access_all: old.access_all,
            };
            model::update_group(cx, tx, &old, input)?;
            model::set_members(cx, tx, org, &id, &state.members)?;
            Ok(Value::Null)
        },
    )
    .await
}

/// `DELETE /scim/v2/{orgId}/Groups/{id}`: 204.
pub async fn delete_group(
    State(facade): State<Arc<Facade>>,
    headers: HeaderMap,
    Path((org, id)): Path<(String, String)>,
) -> Result<ScimReply, ScimError> {
    call(
        facade,
        &headers,
        org,
        true,
        StatusCode::NO_CONTENT,
        move |cx, tx, _, org| {
            let group = model::load_group(cx, org, &id)?;
            model::delete_group(cx, tx, &group)?;
            Ok(Value::Null)
        },
    )
    .await
}

fn user_json(cx: &Cx<'_>, org: &str, id: &str) -> Result<Value, FacadeError> {
    let user = users::USERS.get(&cx.view, id)?;
    let email = user.as_ref().map(|u| u.email.clone()).unwrap_or_default();
    let mut value = json!({
        "schemas": [USER_SCHEMA],
        "id": id,
        "userName": id,
        "active": true,
        "meta": {
            "resourceType": "User",
            "location": format!("/scim/v2/{org}/Users/{id}"),
        },
    });
    if let (false, Some(map)) = (email.is_empty(), value.as_object_mut()) {
        map.insert(
            "emails".to_string(),
            json!([{ "value": email, "primary": true }]),
        );
    }
    Ok(value)
}

/// The user ids of `org`'s members, in order.
fn org_users(cx: &Cx<'_>, org: &str) -> Result<Vec<String>, FacadeError> {
    let mut out: Vec<String> = Vec::new();
    for binding in policies::bindings_on(cx, &object(organizations::ORG_TYPE, org)?)? {
        if let Principal::User(user) = binding.principal {
            if !out.contains(&user) {
                out.push(user);
            }
        }
    }
    out.sort();
    Ok(out)
}

/// `GET /scim/v2/{orgId}/Users` (filter `userName eq "x"`).
pub async fn list_users(
    State(facade): State<Arc<Facade>>,
    headers: HeaderMap,
    Path(org): Path<String>,
    Query(query): Query<ListQuery>,
) -> Result<ScimReply, ScimError> {
    let filter = query
        .filter
        .as_deref()
        .map(|f| parse_filter(f, &["userName"]))
        .transpose()?;
    let (start, count) = paging(&query);
    call(
        facade,
        &headers,
        org,
        false,
        StatusCode::OK,
        move |cx, _, _, org| {
            let mut ids = org_users(cx, org)?;
            if let Some((_, value)) = &filter {
                ids.retain(|u| u == value);
            }
            let all = ids
                .iter()
                .map(|u| user_json(cx, org, u))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(list_response(all, start, count))
        },
    )
    .await
}

/// `GET /scim/v2/{orgId}/Users/{id}`.
pub async fn get_user(
    State(facade): State<Arc<Facade>>,
    headers: HeaderMap,
    Path((org, id)): Path<(String, String)>,
) -> Result<ScimReply, ScimError> {
    call(
        facade,
        &headers,
        org,
        false,
        StatusCode::OK,
        move |cx, _, _, org| {
            if crate::tuple::validate_object_id(&id).is_err()
                || !organizations::is_member(cx, org, &id)?
            {
                return Err(FacadeError::not_found("user").into());
            }
            Ok(user_json(cx, org, &id)?)
        },
    )
    .await
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct UserBody {
    #[serde(default)]
    user_name: Option<String>,
    #[serde(default)]
    emails: Vec<Member>,
}

/// `POST /scim/v2/{orgId}/Users` `{userName, emails}`: the user (id = `userName`) joins the
/// organization as a member (viewer); 409 when already a member. 201.
pub async fn create_user(
    State(facade): State<Arc<Facade>>,
    headers: HeaderMap,
    Path(org): Path<String>,
    body: Bytes,
) -> Result<ScimReply, ScimError> {
    let body: UserBody = parse_body(&body)?;
    let id = body.user_name.unwrap_or_default();
    if crate::tuple::validate_object_id(&id).is_err() {
        return Err(
            VaultError::invalid("userName", format!("`{id}` is not a valid user id")).into(),
        );
    }
    let email = body.emails.first().map(|e| e.value.clone());
    call(
        facade,
        &headers,
        org,
        true,
        StatusCode::CREATED,
        move |cx, tx, _, org| {
            if organizations::is_member(cx, org, &id)? {
                return Err(
                    FacadeError::AlreadyExists(format!("user `{id}` is already a member")).into(),
                );
            }
            if users::USERS.get(&cx.view, &id)?.is_none() {
                let caller = Caller {
                    user_id: id.clone(),
                    email,
                    name: None,
                };
                users::create(tx, &caller)?;
            }
            let viewer =
                roles::find(roles::ORG_VIEWER).ok_or_else(|| FacadeError::not_found("role"))?;
            policies::grant(
                cx,
                tx,
                &object(organizations::ORG_TYPE, org)?,
                viewer,
                &Principal::User(id.clone()),
                "",
            )?;
            Ok(user_json(cx, org, &id)?)
        },
    )
    .await
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn filters_and_member_paths_parse() {
        assert_eq!(
            parse_filter(
                "displayName eq \"Sales team\"",
                &["displayName", "externalId"]
            )
            .unwrap(),
            ("displayName", "Sales team".to_string())
        );
        assert_eq!(
            parse_filter("EXTERNALID Eq \"x-1\"", &["displayName", "externalId"])
                .unwrap()
                .0,
            "externalId"
        );
        assert!(parse_filter("displayName co \"x\"", &["displayName"]).is_err());
        assert_eq!(
            member_in_path("members[value eq \"u1\"]").unwrap(),
            Some("u1".to_string())
        );
    }

    #[test]
    fn patch_operations_apply_in_order() {
        let mut state = Patched {
            members: vec!["a".into()],
            name: "x".into(),
            external_id: None,
        };
        let ops: Vec<Operation> = serde_json::from_value(json!([
            {"op": "Add", "path": "members", "value": [{"value": "b"}, {"value": "a"}]},
            {"op": "remove", "path": "members[value eq \"a\"]"},
            {"op": "replace", "value": {"displayName": "y", "externalId": "e"}},
        ]))
        .unwrap();
        for op in &ops {
            apply(&mut state, op).unwrap();
        }
        assert_eq!(state.members, vec!["b".to_string()]);
        assert_eq!(state.name, "y");
        assert_eq!(state.external_id.as_deref(), Some("e"));
    }
}
