//! The Bitwarden-style facade: groups that hold collection access with flags, under
//! `/api/organizations/{orgId}/...` (the caller's JWT, the same as `/v1beta1`), the public API
//! `/public/groups` (an organization API key) and SCIM 2.0 under `/scim/v2/{orgId}` (a
//! per-organization SCIM key).
//!
//! It reuses the Frontier facade's machinery: organizations and their members
//! (`app/organization` bindings; an organization user id is the user's id), `app/group`
//! objects (so a group's members are `app/group:G#member` tuples and a disabled group's
//! grants stop through `active_member`), typed records written atomically with the tuples
//! ([`crate::facade::records`]), and the facade's write lock. Collection access lives only in
//! the flag tuples of `schema/vault.zed`, whose permissions compute the effective access; no
//! facade code merges flags.
//!
//! Authorization goes through the engine: group management needs
//! `app/organization:{orgId}#groupcreate` (Owner, Manager), listing needs `#grouplist`, keys
//! need `#administer` (Owner). An API or SCIM key is a service user
//! (`app/serviceuser`) bound to its organization as owner, so the same checks pass for it.

pub mod errors;
mod groups;
mod keys;
mod model;
mod public;
mod scim;

use std::sync::Arc;

use axum::http::HeaderMap;
use axum::routing::{get, post};
use axum::Router;
use serde_json::Value;

use super::auth::Caller;
use super::organizations::ORG_TYPE;
use super::records::Tx;
use super::{blocking, object, Answer, Authed, Cx, Facade, FacadeError, USER_TYPE};
use crate::revision::Consistency;
use crate::tuple::SubjectRef;
use errors::VaultError;
pub use keys::KeyKind;

/// Who calls a Bitwarden-style endpoint, before verification.
#[derive(Debug)]
pub(crate) enum Who {
    /// A user with a valid JWT.
    User(Authed),
    /// An organization key `{orgId}.{secret}` of one kind, not yet checked.
    Key {
        /// API or SCIM.
        kind: KeyKind,
        /// The organization the key names.
        org: String,
        /// The secret part.
        secret: String,
    },
}

impl Who {
    /// The key in `Authorization: Bearer {orgId}.{secret}` (401 without one).
    fn key(kind: KeyKind, headers: &HeaderMap) -> Result<Self, FacadeError> {
        let (org, secret) = keys::from_headers(headers)?;
        Ok(Self::Key { kind, org, secret })
    }
}

/// A verified caller: its subject for engine checks, and for keys the organization.
pub(crate) struct Actor {
    subject: SubjectRef,
    key_org: Option<String>,
}

impl Actor {
    /// 403 unless the caller has `permission` on organization `org`; 404 when a key of
    /// another organization names it.
    fn require(&self, cx: &Cx<'_>, org: &str, permission: &str) -> Result<(), FacadeError> {
        if self.key_org.as_deref().is_some_and(|k| k != org) {
            return Err(FacadeError::not_found("org"));
        }
        super::organizations::load(cx, org)?;
        if cx.has(&object(ORG_TYPE, org)?, permission, &self.subject)? {
            Ok(())
        } else {
            Err(FacadeError::PermissionDenied)
        }
    }

    /// The organization of a key caller (public API calls have no organization in the path).
    fn org(&self) -> Result<&str, FacadeError> {
        self.key_org
            .as_deref()
            .ok_or_else(|| FacadeError::Internal("a key caller without organization".into()))
    }
}

/// The organization's Bitwarden-style data, for its delete cascade: groups, collections,
/// the vault object, and both keys.
pub(crate) fn delete_org(cx: &Cx<'_>, tx: &mut Tx, org: &str) -> Result<(), FacadeError> {
    model::delete_org(cx, tx, org)?;
    keys::delete_keys(cx, tx, org)
}

/// Runs one call on the blocking pool: verifies the caller at the head, then (under the
/// facade's write lock when `mutate`) runs `work` and commits its [`Tx`] atomically.
pub(crate) async fn run<F>(
    facade: &Arc<Facade>,
    who: Who,
    mutate: bool,
    work: F,
) -> Result<Answer, VaultError>
where
    F: FnOnce(&Cx<'_>, &mut Tx, &Actor) -> Result<Value, VaultError> + Send + 'static,
{
    let facade = Arc::clone(facade);
    let outcome = blocking(move || {
        let (caller, token, kind) = match &who {
            Who::User(authed) => {
                facade.ensure_user(&authed.caller)?;
                (authed.caller.clone(), authed.token.clone(), None)
            }
            Who::Key { kind, org, .. } => (
                Caller {
                    user_id: keys::service_user(*kind, org),
                    email: None,
                    name: None,
                },
                None,
                Some(*kind),
            ),
        };
        let consistency = if mutate {
            facade.consistency(token.as_deref())?;
            Consistency::FullyConsistent
        } else {
            facade.consistency(token.as_deref())?
        };
        let _guard = mutate.then(|| facade.lock());
        let view = facade.engine.at(consistency)?;
        let read_at = view.revision();
        let cx = Cx {
            view,
            caller: &caller,
        };
        let actor = match (&who, kind) {
            (Who::Key { org, secret, .. }, Some(kind)) => {
                let subject = keys::verify(&cx, kind, org, secret)?;
                Actor {
                    subject,
                    key_org: Some(org.clone()),
                }
            }
            _ => Actor {
                subject: SubjectRef::new(USER_TYPE, &caller.user_id, None)?,
                key_org: None,
            },
        };
        let mut tx = Tx::default();
        let body = match work(&cx, &mut tx, &actor) {
            Ok(body) => body,
            Err(err) => return Ok(Err(err)),
        };
        drop(cx);
        let revision = if mutate && !tx.is_empty() {
            facade.commit(tx)?
        } else {
            read_at
        };
        Ok(Ok(Answer {
            body,
            token: facade.token(revision),
        }))
    })
    .await;
    match outcome {
        Ok(answer) => answer,
        Err(err) => Err(VaultError::Facade(err)),
    }
}

/// The Bitwarden-style routes (`/api`, `/public`, `/scim/v2`), their state applied.
pub fn router(facade: Arc<Facade>) -> Router {
    let org = "/api/organizations/{org_id}";
    Router::new()
        .route(
            &format!("{org}/groups"),
            get(groups::list)
                .post(groups::create)
                .delete(groups::bulk_delete),
        )
        .route(&format!("{org}/groups/details"), get(groups::list_details))
        .route(
            &format!("{org}/groups/{{id}}"),
            get(groups::get_one)
                .put(groups::update)
                .delete(groups::delete_one),
        )
        .route(
            &format!("{org}/groups/{{id}}/details"),
            get(groups::get_details),
        )
        .route(&format!("{org}/groups/{{id}}/users"), get(groups::users))
        .route(
            &format!("{org}/groups/{{id}}/user/{{user_id}}"),
            axum::routing::delete(groups::remove_user),
        )
        .route(
            &format!("{org}/collections"),
            get(groups::list_collections).post(groups::create_collection),
        )
        .route(
            &format!("{org}/collections/{{id}}"),
            get(groups::get_collection).put(groups::update_collection),
        )
        .route(&format!("{org}/api-key"), post(keys::create_api_key))
        .route(&format!("{org}/scim-key"), post(keys::create_scim_key))
        .route("/public/groups", get(public::list).post(public::create))
        .route(
            "/public/groups/{id}",
            get(public::get_one)
                .put(public::update)
                .delete(public::delete_one),
        )
        .route(
            "/public/groups/{id}/member-ids",
            get(public::member_ids).put(public::set_member_ids),
        )
        .route(
            "/scim/v2/{org_id}/Groups",
            get(scim::list_groups).post(scim::create_group),
        )
        .route(
            "/scim/v2/{org_id}/Groups/{id}",
            get(scim::get_group)
                .put(scim::replace_group)
                .patch(scim::patch_group)
                .delete(scim::delete_group),
        )
        .route(
            "/scim/v2/{org_id}/Users",
            get(scim::list_users).post(scim::create_user),
        )
        .route("/scim/v2/{org_id}/Users/{id}", get(scim::get_user))
        .with_state(facade)
}
