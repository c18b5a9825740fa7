//! The web-vault API under `/api/organizations/{orgId}`: groups (list, list with details,
//! get, get with details, member ids, create, full update, delete, bulk delete, remove one
//! user) and the collections they point at (create, list, get, update with direct user and
//! group access). Callers present the same JWT as `/v1beta1`; managing needs
//! `#groupcreate` on the organization, reading `#grouplist`, and changing a collection's
//! access (directly or through a group) its `manage_access` (Bitwarden's "can manage").

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use serde::Deserialize;
use serde_json::{json, Value};

use super::errors::{BitwardenError, VaultError};
use super::model::{self, Access, Grantee, GroupInput, Guard, VaultGroup};
use crate::facade::core::error::FacadeError;
use crate::facade::core::fields::{parse_body, unique_ids};
use crate::facade::core::organizations as orgs;
use crate::facade::core::records::Tx;
use crate::facade::core::runner::{object, Answer, Authed, Cx};
use crate::facade::core::Facade;

/// Managing groups and collections.
pub const MANAGE: &str = "groupcreate";
/// Reading them.
pub const LIST: &str = "grouplist";

/// The body of create and update.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct GroupBody {
    #[serde(default)]
    name: Option<String>,
    #[serde(default, alias = "external_id")]
    external_id: Option<String>,
    #[serde(default, alias = "access_all")]
    access_all: bool,
    #[serde(default)]
    collections: Option<Vec<Access>>,
    #[serde(default)]
    users: Option<Vec<String>>,
}

/// A checked [`GroupBody`].
#[derive(Clone)]
struct GroupRequest {
    input: GroupInput,
    collections: Vec<Access>,
    users: Vec<String>,
}

fn group_request(bytes: &[u8]) -> Result<GroupRequest, VaultError> {
    let body: GroupBody = parse_body(bytes)?;
    let collections = body.collections.unwrap_or_default();
    model::check_access(&collections)?;
    let users = unique_ids(body.users.unwrap_or_default(), "users")?;
    Ok(GroupRequest {
        input: GroupInput {
            name: model::check_name(body.name.as_deref())?,
            external_id: model::check_external_id(body.external_id.as_deref())?,
            access_all: body.access_all,
        },
        collections,
        users,
    })
}

/// `{"object": "group", ...}`.
pub fn group_json(group: &VaultGroup) -> Value {
    json!({
        "object": "group",
        "id": group.id,
        "organizationId": group.org_id,
        "name": group.name,
        "externalId": group.external_id,
        "accessAll": group.access_all,
    })
}

/// `{"object": "groupDetails", ..., "collections": [...]}`.
fn details_of(group: &VaultGroup, collections: &[Access]) -> Value {
    let mut value = group_json(group);
    if let Some(map) = value.as_object_mut() {
        map.insert("object".to_string(), json!("groupDetails"));
        map.insert("collections".to_string(), json!(collections));
    }
    value
}

/// [`details_of`] with the group's stored access.
fn details_json(cx: &Cx<'_>, group: &VaultGroup) -> Result<Value, FacadeError> {
    Ok(details_of(group, &model::group_access(cx, &group.id)?))
}

/// `{"object": "list", "data": [...], "continuationToken": null}`.
pub fn list_json(data: Vec<Value>) -> Value {
    json!({ "object": "list", "data": data, "continuationToken": null })
}

/// Runs a read for a user's JWT, answering in Bitwarden's shape.
pub(super) async fn read<F>(
    facade: Arc<Facade>,
    auth: Result<Authed, FacadeError>,
    work: F,
) -> Result<Answer, BitwardenError>
where
    F: FnOnce(&Cx<'_>) -> Result<Value, VaultError> + Send + 'static,
{
    Ok(facade.read(auth?, work).await?)
}

/// Runs a write for a user's JWT, answering in Bitwarden's shape.
pub(super) async fn write<F>(
    facade: Arc<Facade>,
    auth: Result<Authed, FacadeError>,
    work: F,
) -> Result<Answer, BitwardenError>
where
    F: FnMut(&Cx<'_>, &mut Tx) -> Result<Value, VaultError> + Send + 'static,
{
    Ok(facade.write(auth?, work).await?)
}

/// `GET /api/organizations/{orgId}/groups`.
pub async fn list(
    State(facade): State<Arc<Facade>>,
    auth: Result<Authed, FacadeError>,
    Path(org): Path<String>,
) -> Result<Answer, BitwardenError> {
    read(facade, auth, move |cx| {
        orgs::require(cx, &org, LIST)?;
        let data = model::groups_in_org(cx, &org)?
            .iter()
            .map(group_json)
            .collect();
        Ok(list_json(data))
    })
    .await
}

/// `GET /api/organizations/{orgId}/groups/details`.
pub async fn list_details(
    State(facade): State<Arc<Facade>>,
    auth: Result<Authed, FacadeError>,
    Path(org): Path<String>,
) -> Result<Answer, BitwardenError> {
    read(facade, auth, move |cx| {
        orgs::require(cx, &org, LIST)?;
        let data = model::groups_in_org(cx, &org)?
            .iter()
            .map(|g| details_json(cx, g))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(list_json(data))
    })
    .await
}

/// `GET /api/organizations/{orgId}/groups/{id}`.
pub async fn get_one(
    State(facade): State<Arc<Facade>>,
    auth: Result<Authed, FacadeError>,
    Path((org, id)): Path<(String, String)>,
) -> Result<Answer, BitwardenError> {
    read(facade, auth, move |cx| {
        orgs::require(cx, &org, MANAGE)?;
        Ok(group_json(&model::load_group(cx, &org, &id)?))
    })
    .await
}

/// `GET /api/organizations/{orgId}/groups/{id}/details`.
pub async fn get_details(
    State(facade): State<Arc<Facade>>,
    auth: Result<Authed, FacadeError>,
    Path((org, id)): Path<(String, String)>,
) -> Result<Answer, BitwardenError> {
    read(facade, auth, move |cx| {
        orgs::require(cx, &org, MANAGE)?;
        Ok(details_json(cx, &model::load_group(cx, &org, &id)?)?)
    })
    .await
}

/// `GET /api/organizations/{orgId}/groups/{id}/users`: organization user ids.
pub async fn users(
    State(facade): State<Arc<Facade>>,
    auth: Result<Authed, FacadeError>,
    Path((org, id)): Path<(String, String)>,
) -> Result<Answer, BitwardenError> {
    read(facade, auth, move |cx| {
        orgs::require(cx, &org, MANAGE)?;
        model::load_group(cx, &org, &id)?;
        Ok(json!(model::members(cx, &id)?))
    })
    .await
}

/// `POST /api/organizations/{orgId}/groups` `{name, externalId, accessAll, collections, users}`:
/// answers the `group` model, as Bitwarden and Vaultwarden do.
pub async fn create(
    State(facade): State<Arc<Facade>>,
    auth: Result<Authed, FacadeError>,
    Path(org): Path<String>,
    body: Bytes,
) -> Result<Answer, BitwardenError> {
    let request = group_request(&body)?;
    write(facade, auth, move |cx, tx| {
        orgs::require(cx, &org, MANAGE)?;
        let group = model::create_group(cx, tx, &org, request.input.clone())?;
        let collections = &request.collections;
        model::set_group_access(cx, tx, &org, &group.id, collections, Guard::Create)?;
        model::add_members(cx, tx, &org, &group.id, &request.users)?;
        Ok(group_json(&group))
    })
    .await
}

/// `PUT /api/organizations/{orgId}/groups/{id}`: every field replaced (absent lists are
/// empty).
pub async fn update(
    State(facade): State<Arc<Facade>>,
    auth: Result<Authed, FacadeError>,
    Path((org, id)): Path<(String, String)>,
    body: Bytes,
) -> Result<Answer, BitwardenError> {
    let request = group_request(&body)?;
    write(facade, auth, move |cx, tx| {
        orgs::require(cx, &org, MANAGE)?;
        let old = model::load_group(cx, &org, &id)?;
        let group = model::update_group(cx, tx, &old, request.input.clone())?;
        let collections = &request.collections;
        model::set_group_access(cx, tx, &org, &id, collections, Guard::Update)?;
        model::set_members(cx, tx, &org, &id, &request.users)?;
        Ok(group_json(&group))
    })
    .await
}

/// `DELETE /api/organizations/{orgId}/groups/{id}`.
pub async fn delete_one(
    State(facade): State<Arc<Facade>>,
    auth: Result<Authed, FacadeError>,
    Path((org, id)): Path<(String, String)>,
) -> Result<Answer, BitwardenError> {
    write(facade, auth, move |cx, tx| {
        orgs::require(cx, &org, MANAGE)?;
        let group = model::load_group(cx, &org, &id)?;
        model::delete_group(cx, tx, &group)?;
        Ok(json!({}))
    })
    .await
}

/// `{"ids": [...]}` of bulk delete.
#[derive(Debug, Default, Deserialize)]
struct IdsBody {
    #[serde(default)]
    ids: Vec<String>,
}

/// `DELETE /api/organizations/{orgId}/groups` `{"ids": [...]}`: every id is loaded first; one
/// that is not a group of the organization is a 404 and nothing is deleted; otherwise every
/// cascade goes in one write.
pub async fn bulk_delete(
    State(facade): State<Arc<Facade>>,
    auth: Result<Authed, FacadeError>,
    Path(org): Path<String>,
    body: Bytes,
) -> Result<Answer, BitwardenError> {
    let body: IdsBody = parse_body(&body)?;
    if body.ids.is_empty() {
        return Err(VaultError::invalid("Ids", "name at least one group").into());
    }
    let ids = unique_ids(body.ids, "ids")?;
    write(facade, auth, move |cx, tx| {
        orgs::require(cx, &org, MANAGE)?;
        let groups = ids
            .iter()
            .map(|id| model::load_group(cx, &org, id))
            .collect::<Result<Vec<_>, _>>()?;
        for group in &groups {
            model::delete_group(cx, tx, group)?;
        }
        Ok(json!({}))
    })
    .await
}

/// `DELETE /api/organizations/{orgId}/groups/{id}/user/{orgUserId}`.
pub async fn remove_user(
    State(facade): State<Arc<Facade>>,
    auth: Result<Authed, FacadeError>,
    Path((org, id, user)): Path<(String, String, String)>,
) -> Result<Answer, BitwardenError> {
    write(facade, auth, move |cx, tx| {
        orgs::require(cx, &org, MANAGE)?;
        model::load_group(cx, &org, &id)?;
        if !model::members(cx, &id)?.contains(&user) {
            return Err(FacadeError::not_found("user").into());
        }
        model::remove_members(tx, &id, std::slice::from_ref(&user))?;
        Ok(json!({}))
    })
    .await
}

/// The body of collection create and update.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct CollectionBody {
    #[serde(default)]
    name: Option<String>,
    #[serde(default, alias = "external_id")]
    external_id: Option<String>,
    #[serde(default)]
    groups: Vec<Access>,
    #[serde(default)]
    users: Vec<Access>,
}

fn collection_request(
    bytes: &[u8],
) -> Result<(String, Option<String>, CollectionBody), VaultError> {
    let body: CollectionBody = parse_body(bytes)?;
    model::check_access(&body.groups)?;
    model::check_access(&body.users)?;
    let name = model::check_name(body.name.as_deref())?;
    let external_id = model::check_external_id(body.external_id.as_deref())?;
    Ok((name, external_id, body))
}

fn collection_details(cx: &Cx<'_>, collection: &model::Collection) -> Result<Value, FacadeError> {
    let mut value = model::collection_json(collection);
    if let Some(map) = value.as_object_mut() {
        map.insert("object".to_string(), json!("collectionAccessDetails"));
        map.insert(
            "groups".to_string(),
            json!(model::collection_access(
                cx,
                &collection.id,
                Grantee::Group
            )?),
        );
        map.insert(
            "users".to_string(),
            json!(model::collection_access(cx, &collection.id, Grantee::User)?),
        );
    }
    Ok(value)
}

/// `POST /api/organizations/{orgId}/collections` `{name, externalId, groups, users}`.
pub async fn create_collection(
    State(facade): State<Arc<Facade>>,
    auth: Result<Authed, FacadeError>,
    Path(org): Path<String>,
    body: Bytes,
) -> Result<Answer, BitwardenError> {
    let (name, external_id, body) = collection_request(&body)?;
    write(facade, auth, move |cx, tx| {
        orgs::require(cx, &org, MANAGE)?;
        let collection = model::create_collection(cx, tx, &org, name.clone(), external_id.clone())?;
        model::set_collection_access(cx, tx, &org, &collection.id, Grantee::Group, &body.groups)?;
        model::set_collection_access(cx, tx, &org, &collection.id, Grantee::User, &body.users)?;
        Ok(model::collection_json(&collection))
    })
    .await
}

/// `PUT /api/organizations/{orgId}/collections/{id}`: name, external id, and the group and
/// direct user access replaced; needs the collection's `manage_access`.
pub async fn update_collection(
    State(facade): State<Arc<Facade>>,
    auth: Result<Authed, FacadeError>,
    Path((org, id)): Path<(String, String)>,
    body: Bytes,
) -> Result<Answer, BitwardenError> {
    let (name, external_id, body) = collection_request(&body)?;
    write(facade, auth, move |cx, tx| {
        orgs::require(cx, &org, MANAGE)?;
        let mut collection = model::load_collection(cx, &org, &id)?;
        cx.require(&object(model::COLLECTION_TYPE, &id)?, "manage_access")?;
        collection.name.clone_from(&name);
        collection.external_id.clone_from(&external_id);
        model::set_collection_access(cx, tx, &org, &id, Grantee::Group, &body.groups)?;
        model::set_collection_access(cx, tx, &org, &id, Grantee::User, &body.users)?;
        tx.put(&model::COLLECTIONS, &id, &collection)?;
        Ok(model::collection_json(&collection))
    })
    .await
}

/// `GET /api/organizations/{orgId}/collections`.
pub async fn list_collections(
    State(facade): State<Arc<Facade>>,
    auth: Result<Authed, FacadeError>,
    Path(org): Path<String>,
) -> Result<Answer, BitwardenError> {
    read(facade, auth, move |cx| {
        orgs::require(cx, &org, LIST)?;
        let data = model::collections_in_org(cx, &org)?
            .iter()
            .map(model::collection_json)
            .collect();
        Ok(list_json(data))
    })
    .await
}

/// `GET /api/organizations/{orgId}/collections/{id}`: with its group and user access.
pub async fn get_collection(
    State(facade): State<Arc<Facade>>,
    auth: Result<Authed, FacadeError>,
    Path((org, id)): Path<(String, String)>,
) -> Result<Answer, BitwardenError> {
    read(facade, auth, move |cx| {
        orgs::require(cx, &org, LIST)?;
        Ok(collection_details(
            cx,
            &model::load_collection(cx, &org, &id)?,
        )?)
    })
    .await
}
