//! Projects and their custom resources: `POST /v1beta1/projects` `{name, title, orgId}` (the
//! caller becomes owner), `GET|DELETE /v1beta1/projects/{id}` (delete cascades to its
//! resources and bindings), `GET /v1beta1/organizations/{id}/projects`, and
//! `POST|GET /v1beta1/projects/{id}/resources` for objects of custom resource types (any
//! schema type outside `app/` with a `project` relation, e.g. `compute/instance`).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use super::fields::{self, NamedBody};
use super::organizations::{self, delete_all_tuples_of, ORG_TYPE};
use super::policies::{self, Principal};
use super::records::{Keyspace, Tx};
use super::roles;
use super::{new_id, now, object, parse_body, Answer, Authed, Cx, Facade, FacadeError};
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

fn load(cx: &Cx<'_>, id: &str) -> Result<Project, FacadeError> {
    PROJECTS
        .get(&cx.view, id)?
        .ok_or_else(|| FacadeError::not_found("project"))
}

/// Every project of `org`.
pub fn in_org(cx: &Cx<'_>, org: &str) -> Result<Vec<Project>, FacadeError> {
    let mut out = Vec::new();
    for (_, id) in ORG_PROJECTS.scan(&cx.view, &format!("{org}/"))? {
        if let Some(project) = PROJECTS.get(&cx.view, &id)? {
            out.push(project);
        }
    }
    Ok(out)
}

fn resources_in(cx: &Cx<'_>, project: &str) -> Result<Vec<Resource>, FacadeError> {
    let mut out = Vec::new();
    for (_, id) in PROJECT_RESOURCES.scan(&cx.view, &format!("{project}/"))? {
        if let Some(resource) = RESOURCES.get(&cx.view, &id)? {
            out.push(resource);
        }
    }
    Ok(out)
}

/// `POST /v1beta1/projects` `{name, title, orgId, metadata}`.
pub async fn create(
    State(facade): State<Arc<Facade>>,
    auth: Authed,
    body: Bytes,
) -> Result<Answer, FacadeError> {
    let body: NamedBody = parse_body(&body)?;
    let name = fields::slug_name(body.name.as_deref(), body.title.as_deref())?;
    let metadata = fields::metadata(body.metadata)?;
    let Some(org) = body.org_id.filter(|o| !o.is_empty()) else {
        return Err(FacadeError::InvalidArgument(
            "orgId is required".to_string(),
        ));
    };
    facade
        .write(auth, move |cx, tx| {
            organizations::load(cx, &org)?;
            cx.require(&object(ORG_TYPE, &org)?, "projectcreate")?;
            let key = format!("{org}/{name}");
            if PROJECT_NAMES.get(&cx.view, &key)?.is_some() {
                return Err(FacadeError::AlreadyExists("already exist".to_string()));
            }
            let at = now();
            let project = Project {
                id: new_id(),
                name,
                title: body.title.unwrap_or_default(),
                org_id: org.clone(),
                metadata,
                state: "enabled".to_string(),
                created_at: at.clone(),
                updated_at: at,
            };
            let object = object(PROJECT_TYPE, &project.id)?;
            tx.touch(Relationship::new(
                object.clone(),
                "org",
                SubjectRef::new(ORG_TYPE, &org, None)?,
            ));
            let owner =
                roles::find(roles::PROJECT_OWNER).ok_or_else(|| FacadeError::not_found("role"))?;
            policies::grant(
                cx,
                tx,
                &object,
                owner,
                &Principal::User(cx.caller.user_id.clone()),
                "",
            )?;
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
            let project = load(cx, &id)?;
            cx.require(&object(PROJECT_TYPE, &id)?, "get")?;
            Ok(json!({ "project": project }))
        })
        .await
}

/// `GET /v1beta1/organizations/{org_id}/projects`.
pub async fn list_in_org(
    State(facade): State<Arc<Facade>>,
    auth: Authed,
    Path(org): Path<String>,
) -> Result<Answer, FacadeError> {
    facade
        .read(auth, move |cx| {
            organizations::load(cx, &org)?;
            cx.require(&object(ORG_TYPE, &org)?, "projectlist")?;
            Ok(json!({ "projects": in_org(cx, &org)? }))
        })
        .await
}

/// The project's cascade: its resources (bindings, tuples, records), its bindings, its
/// tuples, its records.
pub fn cascade(cx: &Cx<'_>, tx: &mut Tx, project: &Project) -> Result<(), FacadeError> {
    for resource in resources_in(cx, &project.id)? {
        let object = object(&resource.namespace, &resource.id)?;
        for binding in policies::bindings_on(cx, &object)? {
            policies::revoke(cx, tx, &binding.id)?;
        }
        delete_all_tuples_of(cx, tx, &object)?;
        tx.remove(
            &PROJECT_RESOURCES,
            &format!("{}/{}", project.id, resource.id),
        );
        tx.remove(&RESOURCES, &resource.id);
    }
    let object = object(PROJECT_TYPE, &project.id)?;
    for binding in policies::bindings_on(cx, &object)? {
        policies::revoke(cx, tx, &binding.id)?;
    }
    delete_all_tuples_of(cx, tx, &object)?;
    tx.remove(
        &PROJECT_NAMES,
        &format!("{}/{}", project.org_id, project.name),
    );
    tx.remove(&ORG_PROJECTS, &format!("{}/{}", project.org_id, project.id));
    tx.remove(&PROJECTS, &project.id);
    Ok(())
}

/// `DELETE /v1beta1/projects/{id}`.
pub async fn delete_one(
    State(facade): State<Arc<Facade>>,
    auth: Authed,
    Path(id): Path<String>,
) -> Result<Answer, FacadeError> {
    facade
        .write(auth, move |cx, tx| {
            let project = load(cx, &id)?;
            cx.require(&object(PROJECT_TYPE, &id)?, "delete")?;
            cascade(cx, tx, &project)?;
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
    let body: NamedBody = parse_body(&body)?;
    let name = fields::slug_name(body.name.as_deref(), body.title.as_deref())?;
    let metadata = fields::metadata(body.metadata)?;
    let namespace = body.namespace.unwrap_or_default();
    facade
        .write(auth, move |cx, tx| {
            let project = load(cx, &project_id)?;
            cx.require(&object(PROJECT_TYPE, &project_id)?, "update")?;
            let custom = !namespace.starts_with("app/")
                && cx
                    .view
                    .schema()
                    .definition(&namespace)
                    .is_some_and(|d| d.relations.contains_key("project"));
            if !custom {
                return Err(FacadeError::InvalidArgument(format!(
                    "invalid namespace `{namespace}`: expected a custom resource type of the schema (with a `project` relation)"
                )));
            }
            let at = now();
            let resource = Resource {
                id: new_id(),
                name,
                namespace: namespace.clone(),
                project_id: project.id.clone(),
                org_id: project.org_id.clone(),
                metadata,
                created_at: at.clone(),
                updated_at: at,
            };
            let object = object(&namespace, &resource.id)?;
            tx.touch(Relationship::new(
                object.clone(),
                "project",
                SubjectRef::new(PROJECT_TYPE, &project.id, None)?,
            ));
            let owner_allowed = cx
                .view
                .schema()
                .definition(&namespace)
                .is_some_and(|d| d.relations.contains_key("owner"));
            if owner_allowed {
                tx.touch(Relationship::new(object, "owner", cx.me()?));
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

/// `GET /v1beta1/projects/{id}/resources`.
pub async fn list_resources(
    State(facade): State<Arc<Facade>>,
    auth: Authed,
    Path(project_id): Path<String>,
) -> Result<Answer, FacadeError> {
    facade
        .read(auth, move |cx| {
            load(cx, &project_id)?;
            cx.require(&object(PROJECT_TYPE, &project_id)?, "resourcelist")?;
            Ok(json!({ "resources": resources_in(cx, &project_id)? }))
        })
        .await
}
