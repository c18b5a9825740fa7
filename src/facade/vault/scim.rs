//! SCIM 2.0 (RFC 7643/7644) for directory sync under `/scim/v2/{orgId}`, authenticated by
//! the organization's SCIM key: the shared plumbing (replies, list responses, filters,
//! PatchOp bodies) and Groups (list with `filter=displayName eq "x"` or `externalId eq "y"`,
//! `startIndex`, `count`; get; create 201; replace; PATCH with add/remove/replace of members
//! and replace of displayName or externalId, by path or as a path-less value object; delete
//! 204). Users are in `scim_users`. Bodies are `application/scim+json`; errors use SCIM's
//! error schema. A duplicate externalId is 409.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{json, Value};

use super::errors::{ScimError, VaultError, SCIM_JSON};
use super::groups::MANAGE;
use super::key_request;
use super::model::{self, GroupInput, VaultGroup};
use crate::facade::core::error::FacadeError;
use crate::facade::core::fields::{parse_body, unique_ids, MAX_PAGE_SIZE};
use crate::facade::core::keys::KeyKind;
use crate::facade::core::organizations as orgs;
use crate::facade::core::records::Tx;
use crate::facade::core::runner::{Answer, Cx, TOKEN_HEADER};
use crate::facade::core::Facade;

const GROUP_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
const LIST_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";
pub(super) const PATCH_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";

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

impl ScimReply {
    fn new(status: StatusCode, answer: Answer) -> Self {
        let location = (status == StatusCode::CREATED)
            .then(|| {
                answer
                    .body
                    .pointer("/meta/location")
                    .and_then(Value::as_str)
                    .map(str::to_string)
            })
            .flatten();
        Self {
            status,
            answer,
            location,
        }
    }
}

/// Runs a read for the SCIM key in `headers` on organization `org`.
pub(super) async fn read<F>(
    facade: Arc<Facade>,
    headers: &HeaderMap,
    org: String,
    work: F,
) -> Result<ScimReply, ScimError>
where
    F: FnOnce(&Cx<'_>, &str) -> Result<Value, VaultError> + Send + 'static,
{
    let auth = key_request(&facade, KeyKind::Scim, headers)?;
    let answer = facade
        .read(auth, move |cx| {
            orgs::require(cx, &org, MANAGE)?;
            work(cx, &org)
        })
        .await?;
    Ok(ScimReply::new(StatusCode::OK, answer))
}

/// Runs a write for the SCIM key in `headers` on organization `org`, answering `status`.
pub(super) async fn write<F>(
    facade: Arc<Facade>,
    headers: &HeaderMap,
    org: String,
    status: StatusCode,
    mut work: F,
) -> Result<ScimReply, ScimError>
where
    F: FnMut(&Cx<'_>, &mut Tx, &str) -> Result<Value, VaultError> + Send + 'static,
{
    let auth = key_request(&facade, KeyKind::Scim, headers)?;
    let answer = facade
        .write(auth, move |cx, tx| {
            orgs::require(cx, &org, MANAGE)?;
            work(cx, tx, &org)
        })
        .await?;
    Ok(ScimReply::new(status, answer))
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

/// A `ListResponse` of one page starting at `start` (1-based) of `total` results.
fn list_response(page: Vec<Value>, total: usize, start: usize) -> Value {
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

/// A checked list query: its filter `(attribute, value)`, `startIndex` (from 1) and `count`
/// (at most [`MAX_PAGE_SIZE`]: RFC 7644 §3.4.2.4 lets a server answer fewer than asked).
pub(super) struct Listing {
    pub(super) filter: Option<(&'static str, String)>,
    start: usize,
    count: usize,
}

impl ListQuery {
    /// The query checked, its filter on one of `allowed` (400 `invalidFilter` otherwise).
    pub(super) fn checked(&self, allowed: &[&'static str]) -> Result<Listing, VaultError> {
        Ok(Listing {
            filter: self
                .filter
                .as_deref()
                .map(|f| parse_filter(f, allowed))
                .transpose()?,
            start: self.start_index.unwrap_or(1).max(1),
            count: self.count.unwrap_or(100).min(MAX_PAGE_SIZE),
        })
    }
}

impl Listing {
    /// The `ListResponse` of this page of `items`, each rendered by `render`.
    pub(super) fn respond<T>(
        &self,
        items: &[T],
        render: impl FnMut(&T) -> Result<Value, FacadeError>,
    ) -> Result<Value, FacadeError> {
        let page = items
            .iter()
            .skip(self.start - 1)
            .take(self.count)
            .map(render)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(list_response(page, items.len(), self.start))
    }
}

/// `GET /scim/v2/{orgId}/Groups`.
pub async fn list_groups(
    State(facade): State<Arc<Facade>>,
    headers: HeaderMap,
    Path(org): Path<String>,
    Query(query): Query<ListQuery>,
) -> Result<ScimReply, ScimError> {
    let listing = query.checked(&["displayName", "externalId"])?;
    read(facade, &headers, org, move |cx, org| {
        let mut groups = model::groups_in_org(cx, org)?;
        groups.sort_by(|a, b| a.name.cmp(&b.name).then(a.id.cmp(&b.id)));
        if let Some((attribute, value)) = &listing.filter {
            groups.retain(|g| match *attribute {
                "displayName" => g.name == *value,
                _ => g
                    .external_id
                    .as_deref()
                    .is_some_and(|e| e.eq_ignore_ascii_case(value)),
            });
        }
        Ok(listing.respond(&groups, |g| group_json(cx, g))?)
    })
    .await
}

/// `GET /scim/v2/{orgId}/Groups/{id}`.
pub async fn get_group(
    State(facade): State<Arc<Facade>>,
    headers: HeaderMap,
    Path((org, id)): Path<(String, String)>,
) -> Result<ScimReply, ScimError> {
    read(facade, &headers, org, move |cx, org| {
        Ok(group_json(cx, &model::load_group(cx, org, &id)?)?)
    })
    .await
}

#[derive(Debug, Default, Clone, Deserialize)]
pub(super) struct Member {
    pub(super) value: String,
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

fn member_ids(members: &[Member]) -> Result<Vec<String>, VaultError> {
    let ids = members.iter().map(|m| m.value.clone()).collect();
    Ok(unique_ids(ids, "members")?)
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
    let members = member_ids(body.members.as_deref().unwrap_or_default())?;
    write(
        facade,
        &headers,
        org,
        StatusCode::CREATED,
        move |cx, tx, org| {
            let group = model::create_group(cx, tx, org, input.clone())?;
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
    let members = body.members.as_deref().map(member_ids).transpose()?;
    write(facade, &headers, org, StatusCode::OK, move |cx, tx, org| {
        let old = model::load_group(cx, org, &id)?;
        let input = GroupInput {
            name: name.clone(),
            external_id: old.external_id.clone(),
            access_all: old.access_all,
        };
        let group = model::update_group(cx, tx, &old, input)?;
        let members = match &members {
            Some(members) => {
                model::set_members(cx, tx, org, &id, members)?;
                members.clone()
            }
            None => model::members(cx, &id)?,
        };
        Ok(group_of(&group, &members))
    })
    .await
}

/// One PatchOp operation.
#[derive(Debug, Clone, Deserialize)]
pub(super) struct Operation {
    pub(super) op: String,
    #[serde(default)]
    pub(super) path: Option<String>,
    #[serde(default)]
    pub(super) value: Option<Value>,
}

/// A PatchOp body.
#[derive(Debug, Clone, Deserialize)]
pub(super) struct PatchBody {
    #[serde(default)]
    schemas: Vec<String>,
    #[serde(rename = "Operations", alias = "operations")]
    pub(super) operations: Vec<Operation>,
}

/// A PatchOp body, its `schemas` checked when given.
pub(super) fn patch_body(bytes: &[u8]) -> Result<PatchBody, VaultError> {
    let body: PatchBody = parse_body(bytes)?;
    if !body.schemas.is_empty() && !body.schemas.iter().any(|s| s == PATCH_SCHEMA) {
        return Err(VaultError::invalid(
            "schemas",
            format!("expected `{PATCH_SCHEMA}`"),
        ));
    }
    Ok(body)
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
    let body = patch_body(&body)?;
    write(
        facade,
        &headers,
        org,
        StatusCode::NO_CONTENT,
        move |cx, tx, org| {
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
    write(
        facade,
        &headers,
        org,
        StatusCode::NO_CONTENT,
        move |cx, tx, org| {
            let group = model::load_group(cx, org, &id)?;
            model::delete_group(cx, tx, &group)?;
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
