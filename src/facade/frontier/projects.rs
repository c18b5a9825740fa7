//! Projects and their custom resources: `POST /v1beta1/projects` `{name, title, orgId}` (the
//! caller becomes owner), `GET|DELETE /v1beta1/projects/{id}` (delete cascades to its
//! resources and bindings), `GET /v1beta1/organizations/{id}/projects`, and
//! `POST|GET /v1beta1/projects/{id}/resources` for objects of custom resource types (any
//! schema type outside `app/` with a `project` relation, e.g. `compute/instance`).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use super::PROJECT_OWNER;
use crate::facade::core::bindings::{self, Principal, ORG_TYPE};
use crate::facade::core::error::FacadeError;
use crate::facade::core::fields::{self, parse_body, Params};
use crate::facade::core::graph;
use crate::facade::core::organizations as orgs;
use crate::facade::core::records::{Keyspace, Tx};
use crate::facade::core::runner::{new_id, now, object, Answer, Authed, Cx};
use crate::facade::core::Facade;
use crate::tuple::{Relationship, SubjectRef};

/// The project type.
pub const PROJECT_TYPE: &str = "app/project";

/// A project record.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Project {
    /// Id (UUID).
    pub id: String,
    /// Slug, unique in its organization.
    pub name: String,
    /// Title.
    pub title: String,
    /// The organization.
    pub org_id: String,
    /// Metadata object.
    pub metadata: Map<String, Value>,
    /// `enabled`.
    pub state: String,
    /// RFC 3339.
    pub created_at: String,
    /// RFC 3339.
    pub updated_at: String,
}

/// An object of a custom resource type inside a project.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Resource {
    /// Id (UUID).
    pub id: String,
    /// Name.
    pub name: String,
    /// The schema type, e.g. `compute/instance`.
    pub namespace: String,
    /// The project.
    pub project_id: String,
    /// The project's organization.
    pub org_id: String,
    /// Metadata object.
    pub metadata: Map<String, Value>,
    /// RFC 3339.
    pub created_at: String,
    /// RFC 3339.
    pub updated_at: String,
}

/// Projects by id.
pub const PROJECTS: Keyspace<Project> = Keyspace::new("project");
/// Project ids by `{org_id}/{name}`.
pub const PROJECT_NAMES: Keyspace<String> = Keyspace::new("project_name");
/// Project ids by `{org_id}/{project_id}`.
pub const ORG_PROJECTS: Keyspace<String> = Keyspace::new("org_project");
/// Custom resources by id.
pub const RESOURCES: Keyspace<Resource> = Keyspace::new("resource");
/// Resource ids by `{project_id}/{resource_id}`.
pub const PROJECT_RESOURCES: Keyspace<String> = Keyspace::new("project_resource");

/// `{name, title, orgId, metadata}`.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ProjectBody {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    title: Option<String>,
    #[serde(default, alias = "org_id")]
    org_id: Option<String>,
    #[serde(default)]
    metadata: Option<Value>,
}

/// `{name, title, namespace, metadata}`.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ResourceBody {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    namespace: Option<String>,
    #[serde(default)]
    metadata: Option<Value>,
}

/// The project `id` when the caller has `permission` on it (404, 403).
fn require(cx: &Cx<'_>, id: &str, permission: &str) -> Result<Project, FacadeError> {
    let project = PROJECTS
        .get(cx.view, id)?
        .ok_or_else(|| FacadeError::not_found("project"))?;
    cx.require(&object(PROJECT_TYPE, id)?, permission)?;
    Ok(project)
}

/// Every project of `org`.
pub fn in_org(cx: &Cx<'_>, org: &str) -> Result<Vec<Project>, FacadeError> {
    let mut out = Vec::new();
    for (_, id) in ORG_PROJECTS.scan(cx.view, &format!("{org}/"))? {
        if let Some(project) = PROJECTS.get(cx.view, &id)? {
            out.push(project);
        }
    }
    Ok(out)
}

fn resources_in(cx: &Cx<'_>, project: &str) -> Result<Vec<Resource>, FacadeError> {
    let mut out = Vec::new();
    for (_, id) in PROJECT_RESOURCES.scan(cx.view, &format!("{project}/"))? {
        if let Some(resource) = RESOURCES.get(cx.view, &id)? {
            out.push(resource);
        }
    }
    Ok(out)
}

/// Stages the removal of a project's records and its resources' records.
pub fn remove_records(cx: &Cx<'_>, tx: &mut Tx, project: &Project) -> Result<(), FacadeError> {
    for resource in resources_in(cx, &project.id)? {
        tx.remove(
            &PROJECT_RESOURCES,
            &format!("{}/{}", project.id, resource.id),
        );
        tx.remove(&RESOURCES, &resource.id);
    }
    tx.remove(
        &PROJECT_NAMES,
        &format!("{}/{}", project.org_id, project.name),
    );
    tx.remove(&ORG_PROJECTS, &format!("{}/{}", project.org_id, project.id));
    tx.remove(&PROJECTS, &project.id);
    Ok(())
}

/// `POST /v1beta1/projects` `{name, title, orgId, metadata}`.
pub async fn create(
    State(facade): State<Arc<Facade>>,
    auth: Authed,
    body: Bytes,
) -> Result<Answer, FacadeError> {
    let body: ProjectBody = parse_body(&body)?;
    let name = fields::slug_name(body.name.as_deref(), body.title.as_deref())?;
    let title = fields::title(body.title)?;
    let metadata = fields::metadata(body.metadata)?;
    let Some(org) = body.org_id.filter(|o| !o.is_empty()) else {
        return Err(FacadeError::InvalidArgument(
            "orgId is required".to_string(),
        ));
    };
    facade
        .write(auth, move |cx, tx| {
            orgs::require(cx, &org, "projectcreate")?;
            let key = format!("{org}/{name}");
            if PROJECT_NAMES.get(cx.view, &key)?.is_some() {
                return Err(FacadeError::AlreadyExists("already exist".to_string()));
            }
            let at = now();
            let project = Project {
                id: new_id(),
                name: name.clone(),
                title: title.clone(),
                org_id: org.clone(),
                metadata: metadata.clone(),
                state: "enabled".to_string(),
                created_at: at.clone(),
                updated_at: at,
            };
            let resource = object(PROJECT_TYPE, &project.id)?;
            tx.touch(Relationship::new(
                resource.clone(),
                "org",
                SubjectRef::new(ORG_TYPE, &org, None)?,
            ));
            let owner = cx.facade.known_role(PROJECT_OWNER)?;
            let me = Principal::User(cx.user_id()?.to_string());
            bindings::grant(cx, tx, &resource, owner, &me, "")?;
            tx.require_absent(&PROJECT_NAMES, &key);
            tx.put(&PROJECT_NAMES, &key, &project.id)?;
            tx.put(&ORG_PROJECTS, &format!("{org}/{}", project.id), &project.id)?;
            tx.put(&PROJECTS, &project.id, &project)?;
            Ok(json!({ "project": project }))
        })
        .await
}

/// `GET /v1beta1/projects/{id}`.
pub async fn get_one(
    State(facade): State<Arc<Facade>>,
    auth: Authed,
    Path(id): Path<String>,
) -> Result<Answer, FacadeError> {
    facade
        .read(auth, move |cx| {
            let project = require(cx, &id, "get")?;
            Ok(json!({ "project": project }))
        })
        .await
}

/// `GET /v1beta1/organizations/{org_id}/projects?pageSize=&pageNum=`.
pub async fn list_in_org(
    State(facade): State<Arc<Facade>>,
    auth: Authed,
    Path(org): Path<String>,
    Query(params): Query<Params>,
) -> Result<Answer, FacadeError> {
    let page = params.page()?;
    facade
        .read(auth, move |cx| {
            orgs::require(cx, &org, "projectlist")?;
            let (projects, count) = page.of(in_org(cx, &org)?);
            Ok(json!({ "projects": projects, "count": count }))
        })
        .await
}

/// `DELETE /v1beta1/projects/{id}`: its resources and itself are forgotten (tuples and
/// bindings), with their records.
pub async fn delete_one(
    State(facade): State<Arc<Facade>>,
    auth: Authed,
    Path(id): Path<String>,
) -> Result<Answer, FacadeError> {
    facade
        .write(auth, move |cx, tx| {
            let project = require(cx, &id, "delete")?;
            for resource in resources_in(cx, &id)? {
                graph::forget(cx, tx, &object(&resource.namespace, &resource.id)?)?;
            }
            graph::forget(cx, tx, &object(PROJECT_TYPE, &id)?)?;
            remove_records(cx, tx, &project)?;
            Ok(json!({}))
        })
        .await
}

/// `POST /v1beta1/projects/{id}/resources` `{name, namespace, metadata}`: the caller
/// becomes the resource's owner.
pub async fn create_resource(
    State(facade): State<Arc<Facade>>,
    auth: Authed,
    Path(project_id): Path<String>,
    body: Bytes,
) -> Result<Answer, FacadeError> {
    let body: ResourceBody = parse_body(&body)?;
    let name = fields::slug_name(body.name.as_deref(), body.title.as_deref())?;
    let metadata = fields::metadata(body.metadata)?;
    let namespace = body.namespace.unwrap_or_default();
    facade
        .write(auth, move |cx, tx| {
            let project = require(cx, &project_id, "update")?;
            let definition = cx.view.schema().definition(&namespace);
            let custom = !namespace.starts_with("app/")
                && definition.is_some_and(|d| d.relations.contains_key("project"));
            if !custom {
                return Err(FacadeError::InvalidArgument(format!(
                    "invalid namespace `{namespace}`: expected a custom resource type of the schema (with a `project` relation)"
                )));
            }
            let owner_allowed = definition.is_some_and(|d| d.relations.contains_key("owner"));
            let at = now();
            let resource = Resource {
                id: new_id(),
                name: name.clone(),
                namespace: namespace.clone(),
                project_id: project.id.clone(),
                org_id: project.org_id.clone(),
                metadata: metadata.clone(),
                created_at: at.clone(),
                updated_at: at,
            };
            let target = object(&namespace, &resource.id)?;
            tx.touch(Relationship::new(
                target.clone(),
                "project",
                SubjectRef::new(PROJECT_TYPE, &project.id, None)?,
            ));
            if owner_allowed {
                tx.touch(Relationship::new(target, "owner", cx.me().clone()));
            }
            tx.put(
                &PROJECT_RESOURCES,
                &format!("{}/{}", project.id, resource.id),
                &resource.id,
            )?;
            tx.put(&RESOURCES, &resource.id, &resource)?;
            Ok(json!({ "resource": resource }))
        })
        .await
}

/// `GET /v1beta1/projects/{id}/resources?pageSize=&pageNum=`.
pub async fn list_resources(
    State(facade): State<Arc<Facade>>,
    auth: Authed,
    Path(project_id): Path<String>,
    Query(params): Query<Params>,
) -> Result<Answer, FacadeError> {
    let page = params.page()?;
    facade
        .read(auth, move |cx| {
            require(cx, &project_id, "resourcelist")?;
            let (resources, count) = page.of(resources_in(cx, &project_id)?);
            Ok(json!({ "resources": resources, "count": count }))
        })
        .await
}

/// The custom resource `id` (404).
pub fn load_resource(cx: &Cx<'_>, id: &str) -> Result<Resource, FacadeError> {
    RESOURCES
        .get(cx.view, id)?
        .ok_or_else(|| FacadeError::not_found("resource"))
}
