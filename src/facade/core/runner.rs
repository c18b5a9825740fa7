//! The per-call runners every facade endpoint goes through, and what a call works with.
//!
//! A request's credential is verified on its own task first (a JWT by [`Authed`], an
//! organization key by [`super::keys::KeyRing::authenticate`]); only then does the call take
//! a blocking-pool slot. A read runs at the consistency the request asked for (`X-ZedToken`
//! request header: at least as fresh as it). A write runs inside one
//! [`Engine::transact_with`]: the work reads the head inside the store's write transaction
//! and fills one [`Tx`], committed atomically with no process-local lock, so invariants that
//! span concurrent writers (unique names, the last owner) hold on every node. The work may run
//! more than once (a backend retrying a conflict) and only the last run's answer is sent. The
//! ZedToken of the revision read or written comes back in `X-ZedToken`.

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use super::auth::UserIdentity;
use super::error::{FacadeError, Failure};
use super::keys::{self, PresentedKey};
use super::records::Tx;
use super::{users, Facade};
use crate::engine::{CancelOnDrop, Context, EngineError, Permissionship, ReadView};
use crate::filter::RelationshipFilter;
use crate::revision::{Consistency, Revision, ZedToken};
use crate::store::StoreError;
use crate::tuple::{ObjectRef, Relationship, SubjectRef};

/// The response (and request) header carrying a ZedToken.
pub const TOKEN_HEADER: &str = "x-zedtoken";

/// The user type of callers.
pub const USER_TYPE: &str = "app/user";

/// A verified credential (for a key: step 1, minted by this deployment).
#[derive(Debug, Clone)]
pub enum Credential {
    /// A user with a valid JWT.
    User(UserIdentity),
    /// An organization key.
    Key(PresentedKey),
}

/// A request whose credential has been verified: the credential and the consistency token
/// it sent, if any.
#[derive(Debug, Clone)]
pub struct Authed {
    /// Who calls.
    pub credential: Credential,
    /// The `X-ZedToken` request header.
    pub token: Option<String>,
}

impl Authed {
    /// A request made with an organization key (keys send no consistency token).
    pub fn key(key: PresentedKey) -> Self {
        Self {
            credential: Credential::Key(key),
            token: None,
        }
    }
}

impl FromRequestParts<Arc<Facade>> for Authed {
    type Rejection = FacadeError;

    async fn from_request_parts(
        parts: &mut Parts,
        facade: &Arc<Facade>,
    ) -> Result<Self, Self::Rejection> {
        let header = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        let Some(token) = header.and_then(|h| h.strip_prefix("Bearer ")) else {
            return Err(FacadeError::Unauthenticated(
                "missing `Authorization: Bearer <token>` header".to_string(),
            ));
        };
        let user = facade
            .verifier
            .verify(token.trim())
            .map_err(FacadeError::Unauthenticated)?;
        crate::api::connections::prove_connection();
        let token = parts
            .headers
            .get(TOKEN_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        Ok(Self {
            credential: Credential::User(user),
            token,
        })
    }
}

/// Who acts in a call, as the engine sees it.
#[derive(Debug)]
pub struct Actor {
    subject: SubjectRef,
    user: Option<UserIdentity>,
    key_org: Option<String>,
}

/// A successful answer: a JSON body and the ZedToken of the revision it reflects.
#[derive(Debug)]
pub struct Answer {
    /// The body.
    pub body: Value,
    /// The ZedToken text.
    pub token: String,
}

impl IntoResponse for Answer {
    fn into_response(self) -> Response {
        let body = match serde_json::to_vec(&self.body) {
            Ok(body) => body,
            Err(err) => return FacadeError::Internal(err.to_string()).into_response(),
        };
        let mut response = ([(header::CONTENT_TYPE, "application/json")], body).into_response();
        if let Ok(value) = HeaderValue::from_str(&self.token) {
            response.headers_mut().insert(TOKEN_HEADER, value);
        }
        response
    }
}

/// The view, the actor and the facade one call works with.
pub struct Cx<'a> {
    /// The revision the call reads (inside a write: the head, in the write transaction).
    pub view: &'a ReadView<'a>,
    actor: &'a Actor,
    /// The facade (limits, roles, products).
    pub facade: &'a Facade,
}

impl Cx<'_> {
    /// The caller as a subject (`app/user:U`, or a key's `app/serviceuser:S`).
    pub fn me(&self) -> &SubjectRef {
        &self.actor.subject
    }

    /// The calling user (keys are not users: 403).
    pub fn user(&self) -> Result<&UserIdentity, FacadeError> {
        self.actor
            .user
            .as_ref()
            .ok_or(FacadeError::PermissionDenied)
    }

    /// The calling user's id.
    pub fn user_id(&self) -> Result<&str, FacadeError> {
        Ok(&self.user()?.user_id)
    }

    /// The organization of a key caller.
    pub fn key_org(&self) -> Option<&str> {
        self.actor.key_org.as_deref()
    }

    /// Whether `subject` has `permission` on `resource` (conditional counts as no).
    pub fn has(
        &self,
        resource: &ObjectRef,
        permission: &str,
        subject: &SubjectRef,
    ) -> Result<bool, FacadeError> {
        let result = self
            .view
            .check(resource, permission, subject, &Context::new())?;
        Ok(result.permissionship == Permissionship::Has)
    }

    /// Whether the caller has `permission` on `resource`.
    pub fn can(&self, resource: &ObjectRef, permission: &str) -> Result<bool, FacadeError> {
        self.has(resource, permission, self.me())
    }

    /// 403 unless the caller has `permission` on `resource`.
    pub fn require(&self, resource: &ObjectRef, permission: &str) -> Result<(), FacadeError> {
        if self.can(resource, permission)? {
            Ok(())
        } else {
            Err(FacadeError::PermissionDenied)
        }
    }

    /// 403 unless the caller is a superuser.
    pub fn require_superuser(&self) -> Result<(), FacadeError> {
        let platform = ObjectRef::new(super::bootstrap::PLATFORM.0, super::bootstrap::PLATFORM.1)?;
        self.require(&platform, "superuser")
    }

    /// Every relationship matching `filter`.
    pub fn read(&self, filter: &RelationshipFilter) -> Result<Vec<Relationship>, FacadeError> {
        Ok(self.view.read_relationships(filter, None, None)?)
    }

    /// Every relationship `resource#relation@*`.
    pub fn subjects(
        &self,
        resource: &ObjectRef,
        relation: &str,
    ) -> Result<Vec<Relationship>, FacadeError> {
        self.read(&RelationshipFilter {
            resource_type: Some(resource.object_type.clone()),
            resource_id: Some(resource.object_id.clone()),
            relation: Some(relation.to_string()),
            ..RelationshipFilter::default()
        })
    }

    /// Whether exactly `rel` is stored (a point read).
    pub fn exists(&self, rel: &Relationship) -> Result<bool, FacadeError> {
        Ok(!self
            .view
            .read_relationships(&super::bootstrap::exact(rel), None, Some(1))?
            .is_empty())
    }

    /// Every relationship `resource_type:*#relation@subject`.
    pub fn resources_of(
        &self,
        subject: &SubjectRef,
        resource_type: &str,
        relation: &str,
    ) -> Result<Vec<Relationship>, FacadeError> {
        Ok(self
            .view
            .resources_with_subject(subject, resource_type, relation)?)
    }
}

impl Facade {
    fn token(&self, revision: Revision) -> String {
        ZedToken::new(self.engine.store_id(), revision).encode()
    }

    fn consistency(&self, token: Option<&str>) -> Result<Consistency, FacadeError> {
        match token {
            None => Ok(Consistency::FullyConsistent),
            Some(text) => {
                let token = ZedToken::decode(text, self.engine.store_id())
                    .map_err(|e| FacadeError::InvalidArgument(e.to_string()))?;
                Ok(Consistency::AtLeastAsFresh(token.revision))
            }
        }
    }

    /// The engine's subject for `credential` at `view`; a key must still be its
    /// organization's current key there (step 2, 401 otherwise).
    fn actor(&self, view: &ReadView<'_>, credential: &Credential) -> Result<Actor, FacadeError> {
        Ok(match credential {
            Credential::User(user) => Actor {
                subject: SubjectRef::new(USER_TYPE, &user.user_id, None)?,
                user: Some(user.clone()),
                key_org: None,
            },
            Credential::Key(key) => {
                if !self.keys.is_current(view, key)? {
                    return Err(FacadeError::Unauthenticated(format!(
                        "invalid {} key",
                        key.kind.name()
                    )));
                }
                Actor {
                    subject: SubjectRef::new(
                        keys::SERVICE_USER_TYPE,
                        &keys::service_user(key.kind, &key.org),
                        None,
                    )?,
                    user: None,
                    key_org: Some(key.org.clone()),
                }
            }
        })
    }

    /// Creates the user's record the first time a valid token for it is seen.
    fn ensure_user(&self, user: &UserIdentity) -> Result<(), FacadeError> {
        let view = self.engine.at(Consistency::FullyConsistent)?;
        if users::USERS.get(&view, &user.user_id)?.is_some() {
            return Ok(());
        }
        drop(view);
        let written = self.engine.transact_with(|view| {
            let mut tx = Tx::default();
            if users::USERS.get(view, &user.user_id)?.is_none() {
                users::create(&mut tx, user)?;
            }
            Ok::<_, FacadeError>(tx.into_transaction())
        });
        match written {
            Ok(revision) => (self.on_commit)(revision),
            // Created by a concurrent first call.
            Err(FacadeError::Engine(EngineError::Store(StoreError::RecordConflict { .. }))) => {}
            Err(err) => return Err(err),
        }
        Ok(())
    }

    /// Runs a read-only call on the blocking pool at the consistency the request asked for,
    /// under the facade's [`Admission`](crate::engine::Admission): refused at once past its
    /// bound, stopped at its deadline or when the client goes away.
    pub async fn read<E, F>(self: &Arc<Self>, request: Authed, work: F) -> Result<Answer, E>
    where
        E: Failure,
        F: FnOnce(&Cx<'_>) -> Result<Value, E> + Send + 'static,
    {
        let facade = Arc::clone(self);
        let permit = self.admission.admit()?;
        let interrupt = self.admission.interrupt();
        let _cancel = CancelOnDrop(interrupt.clone());
        blocking(move || {
            let _permit = permit;
            let consistency = facade.consistency(request.token.as_deref())?;
            if let Credential::User(user) = &request.credential {
                facade.ensure_user(user)?;
            }
            let view = facade.engine.at(consistency)?.interrupted_by(interrupt);
            let actor = facade.actor(&view, &request.credential)?;
            let cx = Cx {
                view: &view,
                actor: &actor,
                facade: &facade,
            };
            let body = work(&cx)?;
            Ok(Answer {
                body,
                token: facade.token(view.revision()),
            })
        })
        .await
    }

    /// Runs a mutating call on the blocking pool inside one write transaction: `work` reads
    /// the head and fills one [`Tx`], committed atomically (or nothing, on an error). Counted
    /// against the concurrency bound; no deadline (it commits or fails as a whole).
    pub async fn write<E, F>(self: &Arc<Self>, request: Authed, mut work: F) -> Result<Answer, E>
    where
        E: Failure,
        F: FnMut(&Cx<'_>, &mut Tx) -> Result<Value, E> + Send + 'static,
    {
        let facade = Arc::clone(self);
        let permit = self.admission.admit()?;
        blocking(move || {
            let _permit = permit;
            facade.consistency(request.token.as_deref())?;
            let mut answer = None;
            let mut staged = false;
            let revision = facade.engine.transact_with(|view| {
                let actor = facade.actor(view, &request.credential)?;
                let cx = Cx {
                    view,
                    actor: &actor,
                    facade: &facade,
                };
                let mut tx = Tx::default();
                if let Credential::User(user) = &request.credential {
                    users::stage_if_missing(&cx, &mut tx, user)?;
                }
                let body = work(&cx, &mut tx)?;
                staged = !tx.is_empty();
                answer = Some(body);
                Ok::<_, E>(tx.into_transaction())
            })?;
            if staged {
                (facade.on_commit)(revision);
            }
            let body =
                answer.ok_or_else(|| FacadeError::Internal("a write produced no answer".into()))?;
            Ok(Answer {
                body,
                token: facade.token(revision),
            })
        })
        .await
    }
}

async fn blocking<T: Send + 'static, E: Failure>(
    work: impl FnOnce() -> Result<T, E> + Send + 'static,
) -> Result<T, E> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| E::from(FacadeError::Internal(format!("facade task failed: {e}"))))?
}

/// An object reference the facade built from its own ids (validated anyway).
pub fn object(object_type: &str, id: &str) -> Result<ObjectRef, FacadeError> {
    ObjectRef::new(object_type, id).map_err(|_| FacadeError::not_found(short_name(object_type)))
}

/// `group` for `app/group`, `org` for `app/organization`.
pub fn short_name(object_type: &str) -> &str {
    match object_type {
        "app/organization" => "org",
        other => other.rsplit('/').next().unwrap_or(other),
    }
}

/// The current time as RFC 3339 (what records keep).
pub fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// A fresh random id (UUID v4 text).
pub fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}
