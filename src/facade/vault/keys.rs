//! Creating and rotating an organization's keys: `POST /api/organizations/{orgId}/api-key`
//! and `/scim-key` (owners). The answer shows the key once, as `{orgId}.{secret}`, which
//! callers send as `Authorization: Bearer {orgId}.{secret}`; only an HMAC of it is stored
//! (see the core's `keys`). Rotating replaces the record, so the old key stops working in
//! the same write.

use std::sync::Arc;

use axum::extract::{Path, State};
use serde_json::json;

use super::errors::BitwardenError;
use super::groups::write;
use crate::facade::core::bindings::{BINDING_TYPE, ORG_TYPE};
use crate::facade::core::error::FacadeError;
use crate::facade::core::keys::{self, KeyKind, SERVICE_USER_TYPE};
use crate::facade::core::organizations as orgs;
use crate::facade::core::records::Tx;
use crate::facade::core::roles::{ORG_OWNER, ROLE_TYPE};
use crate::facade::core::runner::{now, object, Answer, Authed, Cx};
use crate::facade::core::Facade;
use crate::tuple::{Relationship, SubjectRef};

/// Stages `org`'s `kind` key: the service user, its owner binding (touched: the same tuples
/// on every rotation) and the record of the new key. Returns the key text.
fn issue(cx: &Cx<'_>, tx: &mut Tx, kind: KeyKind, org: &str) -> Result<String, FacadeError> {
    let (key, record) = cx.facade.keys().mint(kind, org)?;
    let user = keys::service_user(kind, org);
    let organization = object(ORG_TYPE, org)?;
    let principal = SubjectRef::new(SERVICE_USER_TYPE, &user, None)?;
    let binding_id = uuid::Uuid::new_v5(
        &uuid::Uuid::NAMESPACE_OID,
        format!("{organization}|{ORG_OWNER}|{SERVICE_USER_TYPE}:{user}").as_bytes(),
    )
    .to_string();
    let binding = object(BINDING_TYPE, &binding_id)?;
    tx.touch(Relationship::new(
        object(SERVICE_USER_TYPE, &user)?,
        "org",
        SubjectRef::new(ORG_TYPE, org, None)?,
    ));
    tx.touch(Relationship::new(binding.clone(), "bearer", principal));
    tx.touch(Relationship::new(
        binding,
        "role",
        SubjectRef::new(ROLE_TYPE, ORG_OWNER, None)?,
    ));
    tx.touch(Relationship::new(
        organization,
        "granted",
        SubjectRef::new(BINDING_TYPE, &binding_id, None)?,
    ));
    keys::store(tx, kind, org, &record)?;
    Ok(key)
}

async fn create(
    facade: Arc<Facade>,
    auth: Result<Authed, FacadeError>,
    org: String,
    kind: KeyKind,
) -> Result<Answer, BitwardenError> {
    write(facade, auth, move |cx, tx| {
        orgs::require(cx, &org, "administer")?;
        let key = issue(cx, tx, kind, &org)?;
        let object = match kind {
            KeyKind::Api => "organizationApiKey",
            KeyKind::Scim => "scimApiKey",
        };
        Ok(json!({ "object": object, "apiKey": key, "revisionDate": now() }))
    })
    .await
}

/// `POST /api/organizations/{orgId}/api-key`: creates or rotates the public API key (owner).
pub async fn create_api_key(
    State(facade): State<Arc<Facade>>,
    auth: Result<Authed, FacadeError>,
    Path(org): Path<String>,
) -> Result<Answer, BitwardenError> {
    create(facade, auth, org, KeyKind::Api).await
}

/// `POST /api/organizations/{orgId}/scim-key`: creates or rotates the SCIM key (owner).
pub async fn create_scim_key(
    State(facade): State<Arc<Facade>>,
    auth: Result<Authed, FacadeError>,
    Path(org): Path<String>,
) -> Result<Answer, BitwardenError> {
    create(facade, auth, org, KeyKind::Scim).await
}
