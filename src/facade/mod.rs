//! The Frontier-style facade under `/v1beta1`: organizations, groups, members, projects,
//! roles and policies, served as a thin layer over the engine.
//!
//! Records (names, titles, metadata, state, timestamps) live in the store's `records`
//! column family ([`records`]); membership and access live only in tuples. Every call is
//! authenticated by a JWT ([`auth`]), authorized by an engine check of the caller's
//! permission, and writes all its changes (tuples and records) in one atomic engine
//! transaction whose ZedToken comes back in the `X-ZedToken` response header. A request may
//! send a token in the same header to read at least as fresh as it.
//!
//! Mutating calls are serialized by one facade-wide lock held from their reads to their
//! commit, so guards such as "the last owner cannot be removed" and "names are unique" hold
//! (the unique-name indexes are also record preconditions of the write itself).

pub mod auth;
pub mod bootstrap;
pub mod error;
mod fields;
mod groups;
mod organizations;
mod policies;
mod projects;
pub mod records;
pub mod roles;
mod users;
pub mod vault;

use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::Router;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::engine::{Context, Engine, Permissionship, ReadView};
use crate::filter::RelationshipFilter;
use crate::revision::{Consistency, Revision, ZedToken};
use crate::tuple::{ObjectRef, Relationship, SubjectRef};

pub use auth::{Caller, TokenVerifier};
pub use bootstrap::{SchemaOutcome, FRONTIER_SCHEMA};
pub use error::FacadeError;
use records::Tx;

/// The response (and request) header carrying a ZedToken.
pub const TOKEN_HEADER: &str = "x-zedtoken";

/// The user type of callers.
pub const USER_TYPE: &str = "app/user";

/// How the facade is configured.
#[derive(Debug, Clone, Default)]
pub struct FacadeConfig {
    /// HS256 shared secret for bearer tokens.
    pub jwt_secret: Option<String>,
    /// PEM public key (RSA → RS256, Ed25519 → EdDSA) for bearer tokens.
    pub jwt_public_key: Option<PathBuf>,
    /// User ids that get `app/platform:platform#admin`.
    pub superusers: Vec<String>,
}

/// Why the facade could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// No key, or an unreadable one.
    #[error(transparent)]
    Key(#[from] auth::KeyError),
    /// Neither a secret nor a public key was configured.
    #[error("the facade needs --jwt-secret or --jwt-public-key")]
    NoKey,
    /// Schema or bootstrap tuples.
    #[error(transparent)]
    Bootstrap(#[from] bootstrap::BootstrapError),
}

/// Called with the revision of every committed facade write (e.g. to wake watch streams).
pub type OnCommit = Box<dyn Fn(Revision) + Send + Sync>;

/// The facade's shared state.
pub struct Facade {
    engine: Arc<Engine>,
    verifier: TokenVerifier,
    write_lock: Mutex<()>,
    on_commit: OnCommit,
}

impl std::fmt::Debug for Facade {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Facade")
            .field("verifier", &self.verifier)
            .finish_non_exhaustive()
    }
}

impl Facade {
    /// Loads (or checks) the built-in schema, writes the roles' and superusers' tuples, and
    /// returns the facade with what happened to the schema. Blocking.
    pub fn start(
        engine: Arc<Engine>,
        config: &FacadeConfig,
        on_commit: OnCommit,
    ) -> Result<(Self, SchemaOutcome), StartError> {
        if config.jwt_secret.is_none() && config.jwt_public_key.is_none() {
            return Err(StartError::NoKey);
        }
        let public_key = config
            .jwt_public_key
            .as_ref()
            .map(|p| p.to_string_lossy().into_owned());
        let verifier = TokenVerifier::new(config.jwt_secret.as_deref(), public_key.as_deref())?;
        let outcome = bootstrap::ensure_schema(&engine)?;
        let tx = bootstrap::bootstrap_tuples(&engine, &config.superusers)
            .map_err(bootstrap::BootstrapError::from)?;
        if !tx.is_empty() {
            let revision = engine
                .transact(&tx.into_transaction())
                .map_err(|e| bootstrap::BootstrapError::from(FacadeError::from(e)))?;
            on_commit(revision);
        }
        Ok((
            Self {
                engine,
                verifier,
                write_lock: Mutex::new(()),
                on_commit,
            },
            outcome,
        ))
    }

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

    fn commit(&self, tx: Tx) -> Result<Revision, FacadeError> {
        let revision = self.engine.transact(&tx.into_transaction())?;
        (self.on_commit)(revision);
        Ok(revision)
    }

    /// Creates the caller's user record the first time a valid token for it is seen.
    fn ensure_user(&self, caller: &Caller) -> Result<(), FacadeError> {
        let view = self.engine.at(Consistency::FullyConsistent)?;
        if users::USERS.get(&view, &caller.user_id)?.is_some() {
            return Ok(());
        }
        drop(view);
        let _guard = self.lock();
        let view = self.engine.at(Consistency::FullyConsistent)?;
        if users::USERS.get(&view, &caller.user_id)?.is_some() {
            return Ok(());
        }
        drop(view);
        let mut tx = Tx::default();
        users::create(&mut tx, caller)?;
        self.commit(tx)?;
        Ok(())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ()> {
        // The guarded data is `()`: a panic elsewhere leaves nothing inconsistent.
        self.write_lock
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs a read-only call on the blocking pool at the consistency the request asked for.
    async fn read<F>(self: &Arc<Self>, request: Authed, work: F) -> Result<Answer, FacadeError>
    where
        F: FnOnce(&Cx<'_>) -> Result<Value, FacadeError> + Send + 'static,
    {
        let facade = Arc::clone(self);
        blocking(move || {
            facade.ensure_user(&request.caller)?;
            let view = facade
                .engine
                .at(facade.consistency(request.token.as_deref())?)?;
            let cx = Cx {
                view,
                caller: &request.caller,
            };
            let body = work(&cx)?;
            Ok(Answer {
                body,
                token: facade.token(cx.view.revision()),
            })
        })
        .await
    }

    /// Runs a mutating call on the blocking pool under the facade's write lock: the work
    /// reads the head and fills one [`Tx`], committed atomically at the end.
    async fn write<F>(self: &Arc<Self>, request: Authed, work: F) -> Result<Answer, FacadeError>
    where
        F: FnOnce(&Cx<'_>, &mut Tx) -> Result<Value, FacadeError> + Send + 'static,
    {
        let facade = Arc::clone(self);
        blocking(move || {
            facade.consistency(request.token.as_deref())?;
            facade.ensure_user(&request.caller)?;
            let _guard = facade.lock();
            let view = facade.engine.at(Consistency::FullyConsistent)?;
            let read_at = view.revision();
            let cx = Cx {
                view,
                caller: &request.caller,
            };
            let mut tx = Tx::default();
            let body = work(&cx, &mut tx)?;
            drop(cx);
            let revision = if tx.is_empty() {
                read_at
            } else {
                facade.commit(tx)?
            };
            Ok(Answer {
                body,
                token: facade.token(revision),
            })
        })
        .await
    }
}

async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, FacadeError> + Send + 'static,
) -> Result<T, FacadeError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| FacadeError::Internal(format!("facade task failed: {e}")))?
}

/// A successful answer: a JSON body and the ZedToken of the revision it reflects.
#[derive(Debug)]
pub struct Answer {
    body: Value,
    token: String,
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

/// An authenticated request: the caller and the consistency token it sent, if any.
#[derive(Debug, Clone)]
pub struct Authed {
    /// Who calls.
    pub caller: Caller,
    /// The `X-ZedToken` request header.
    pub token: Option<String>,
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
        let caller = facade
            .verifier
            .verify(token.trim())
            .map_err(FacadeError::Unauthenticated)?;
        let token = parts
            .headers
            .get(TOKEN_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        Ok(Self { caller, token })
    }
}

/// Parses a JSON body; an empty body reads as `{}`.
pub(crate) fn parse_body<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, FacadeError> {
    let bytes: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        bytes
    };
    serde_json::from_slice(bytes).map_err(FacadeError::bad_body)
}

/// The view and caller one call works with.
pub(crate) struct Cx<'a> {
    view: ReadView<'a>,
    caller: &'a Caller,
}

impl Cx<'_> {
    /// The caller as a subject.
    fn me(&self) -> Result<SubjectRef, FacadeError> {
        Ok(SubjectRef::new(USER_TYPE, &self.caller.user_id, None)?)
    }

    /// Whether `subject` has `permission` on `resource` (conditional counts as no).
    fn has(
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

    /// 403 unless the caller has `permission` on `resource`.
    fn require(&self, resource: &ObjectRef, permission: &str) -> Result<(), FacadeError> {
        if self.has(resource, permission, &self.me()?)? {
            Ok(())
        } else {
            Err(FacadeError::PermissionDenied)
        }
    }

    /// 403 unless the caller is a superuser.
    fn require_superuser(&self) -> Result<(), FacadeError> {
        let platform = ObjectRef::new(bootstrap::PLATFORM.0, bootstrap::PLATFORM.1)?;
        self.require(&platform, "superuser")
    }

    /// Every relationship `resource#relation@*`.
    fn subjects(
        &self,
        resource: &ObjectRef,
        relation: &str,
    ) -> Result<Vec<Relationship>, FacadeError> {
        let filter = RelationshipFilter {
            resource_type: Some(resource.object_type.clone()),
            resource_id: Some(resource.object_id.clone()),
            relation: Some(relation.to_string()),
            ..RelationshipFilter::default()
        };
        Ok(self.view.read_relationships(&filter, None, None)?)
    }

    /// Whether exactly `rel` is stored (a point read).
    fn exists(&self, rel: &Relationship) -> Result<bool, FacadeError> {
        Ok(!self
            .view
            .read_relationships(&bootstrap::exact(rel), None, Some(1))?
            .is_empty())
    }

    /// Every relationship `resource_type:*#relation@subject`.
    fn resources_of(
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

/// An object reference the facade built from its own ids (validated anyway).
pub(crate) fn object(object_type: &str, id: &str) -> Result<ObjectRef, FacadeError> {
    ObjectRef::new(object_type, id).map_err(|_| FacadeError::not_found(short_name(object_type)))
}

/// `group` for `app/group`.
fn short_name(object_type: &str) -> &str {
    match object_type {
        "app/organization" => "org",
        other => other.rsplit('/').next().unwrap_or(other),
    }
}

/// The current time as RFC 3339 (what records keep).
pub(crate) fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// A fresh random id (UUID v4 text).
pub(crate) fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// The `/v1beta1` router (its state applied), to be merged beside the `/v1` API.
pub fn router(facade: Arc<Facade>) -> Router {
    Router::new()
        .route("/v1beta1/users/self", get(users::get_self))
        .route("/v1beta1/roles", get(users::list_roles))
        .route(
            "/v1beta1/organizations",
            post(organizations::create).get(organizations::list),
        )
        .route(
            "/v1beta1/organizations/{org_id}",
            get(organizations::get_one)
                .put(organizations::update)
                .delete(organizations::delete_one),
        )
        .route(
            "/v1beta1/organizations/{org_id}/users",
            post(organizations::add_users).get(organizations::list_users),
        )
        .route(
            "/v1beta1/organizations/{org_id}/users/{user_id}",
            delete(organizations::remove_user),
        )
        .route(
            "/v1beta1/organizations/{org_id}/projects",
            get(projects::list_in_org),
        )
        .route(
            "/v1beta1/organizations/{org_id}/groups",
            post(groups::create).get(groups::list),
        )
        .route("/v1beta1/admin/groups", get(groups::admin_list))
        .route(
            "/v1beta1/organizations/{org_id}/groups/{group_id}",
            get(groups::get_one)
                .put(groups::update)
                .delete(groups::delete_one),
        )
        .route(
            "/v1beta1/organizations/{org_id}/groups/{group_id}/users",
            post(groups::add_users).get(groups::list_users),
        )
        .route(
            "/v1beta1/organizations/{org_id}/groups/{group_id}/users/{user_id}",
            delete(groups::remove_user),
        )
        .route(
            "/v1beta1/organizations/{org_id}/groups/{group_id}/relations",
            get(groups::relations),
        )
        .route(
            "/v1beta1/organizations/{org_id}/groups/{group_id}/disable",
            post(groups::disable),
        )
        .route(
            "/v1beta1/organizations/{org_id}/groups/{group_id}/enable",
            post(groups::enable),
        )
        .route("/v1beta1/projects", post(projects::create))
        .route(
            "/v1beta1/projects/{project_id}",
            get(projects::get_one).delete(projects::delete_one),
        )
        .route(
            "/v1beta1/projects/{project_id}/resources",
            post(projects::create_resource).get(projects::list_resources),
        )
        .route(
            "/v1beta1/projects/{project_id}/policies",
            post(policies::create_on_project),
        )
        .route(
            "/v1beta1/resources/{resource_id}/policies",
            post(policies::create_on_resource),
        )
        .route(
            "/v1beta1/policies",
            post(policies::create).get(policies::list),
        )
        .route(
            "/v1beta1/policies/{policy_id}",
            get(policies::get_one).delete(policies::delete_one),
        )
        .with_state(facade)
}
