//! The facades in-process: the engine on a temporary RocksDB store (WAL not synced: these
//! tests are about the schema and the facades' writes, not durability), the facades started
//! on it as `zanzi serve` starts them, and their router driven with `tower`'s `oneshot`
//! (no port). Calls may come from many threads at once.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{header, Method, Request};
use axum::Router;
use serde_json::Value;
use tempfile::TempDir;
use tower::ServiceExt;
use zanzi::engine::{Context, Engine, EngineConfig, Permissionship};
use zanzi::facade::auth::{issue_token, SigningKey};
use zanzi::facade::FacadeConfig;
use zanzi::revision::Consistency;
use zanzi::store::{RocksStore, StoreOptions};
use zanzi::tuple::{ObjectRef, SubjectRef};

pub const SECRET: &str = "in-process-facade-secret-0123456789";
pub const ROOT: &str = "root";

/// One answer: status and JSON body (`null` for an empty one).
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub body: Value,
}

/// Everything `user` can do, as lookup-resources answers it: `(type, permission, id)`.
pub type Reach = BTreeSet<(String, String, String)>;

pub struct InProcess {
    pub engine: Arc<Engine>,
    router: Router,
    runtime: tokio::runtime::Runtime,
    _dir: TempDir,
}

pub fn bearer(user: &str) -> String {
    let token = issue_token(
        &SigningKey::Secret(SECRET.to_string()),
        user,
        Duration::from_secs(3600),
        Some(format!("{user}@example.com")),
        None,
    )
    .unwrap();
    format!("Bearer {token}")
}

impl InProcess {
    pub fn start() -> Self {
        Self::start_with(FacadeConfig {
            superusers: vec![ROOT.to_string()],
            ..FacadeConfig::with_secret(SECRET)
        })
    }

    pub fn start_with(config: FacadeConfig) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let options = StoreOptions {
            sync_writes: false,
            ..StoreOptions::default()
        };
        let store = RocksStore::open(dir.path(), options).unwrap();
        let engine = Arc::new(Engine::new(Arc::new(store), EngineConfig::default()).unwrap());
        let (facade, _) = zanzi::facade::start(Arc::clone(&engine), &config, Box::new(|_| {}))
            .unwrap_or_else(|e| panic!("the facades do not start: {e}"));
        let router = zanzi::facade::router(Arc::new(facade));
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        Self {
            engine,
            router,
            runtime,
            _dir: dir,
        }
    }

    /// `method path` with a raw `Authorization` value and an optional JSON body.
    pub fn raw(&self, auth: Option<&str>, method: &str, path: &str, body: Option<&Value>) -> Reply {
        let mut request = Request::builder()
            .method(Method::from_bytes(method.as_bytes()).unwrap())
            .uri(path)
            .header(header::CONTENT_TYPE, "application/json");
        if let Some(auth) = auth {
            request = request.header(header::AUTHORIZATION, auth);
        }
        let body = body.map_or_else(Body::empty, |b| Body::from(b.to_string()));
        let request = request.body(body).unwrap();
        let router = self.router.clone();
        self.runtime.block_on(async move {
            let response = router.oneshot(request).await.unwrap();
            let status = response.status().as_u16();
            let bytes = axum::body::to_bytes(response.into_body(), 1 << 24)
                .await
                .unwrap();
            let body = if bytes.is_empty() {
                Value::Null
            } else {
                serde_json::from_slice(&bytes).unwrap_or_else(|e| {
                    panic!(
                        "{path}: not JSON ({e}): {}",
                        String::from_utf8_lossy(&bytes)
                    )
                })
            };
            Reply { status, body }
        })
    }

    /// `method path` as `user` (its JWT).
    pub fn call(&self, user: &str, method: &str, path: &str, body: Option<&Value>) -> Reply {
        self.raw(Some(&bearer(user)), method, path, body)
    }

    /// `method path` as `user`, expecting a 2xx; the body.
    pub fn ok(&self, user: &str, method: &str, path: &str, body: &Value) -> Value {
        let reply = self.call(user, method, path, Some(body));
        assert!(
            (200..300).contains(&reply.status),
            "{method} {path} as {user}: {} {}",
            reply.status,
            reply.body
        );
        reply.body
    }

    /// `method path` with an organization key, expecting a 2xx; the body.
    pub fn ok_key(&self, key: &str, method: &str, path: &str, body: &Value) -> Value {
        let reply = self.raw(Some(&format!("Bearer {key}")), method, path, Some(body));
        assert!(
            (200..300).contains(&reply.status),
            "{method} {path} with a key: {} {}",
            reply.status,
            reply.body
        );
        reply.body
    }

    /// Makes `user` known to the facades (first sight of a valid token).
    pub fn sign_in(&self, user: &str) {
        self.ok(user, "GET", "/v1beta1/users/self", &Value::Null);
    }

    /// Whether `user` has `permission` on `type:id`.
    pub fn check(&self, resource: &str, permission: &str, user: &str) -> Permissionship {
        let resource = ObjectRef::parse(resource).unwrap();
        let subject = SubjectRef::new("app/user", user, None).unwrap();
        self.engine
            .check(&resource, permission, &subject, &Context::new())
            .unwrap()
            .permissionship
    }

    /// Every `(type, permission, id)` `user` reaches (HAS or conditional) over `pairs`.
    pub fn reach(&self, user: &str, pairs: &[(String, String)]) -> Reach {
        let subject = SubjectRef::new("app/user", user, None).unwrap();
        let view = self.engine.at(Consistency::FullyConsistent).unwrap();
        let mut out = Reach::new();
        for (object_type, permission) in pairs {
            let found = view
                .lookup_resources(object_type, permission, &subject, &Context::new())
                .unwrap();
            for (id, _) in found {
                out.insert((object_type.clone(), permission.clone(), id));
            }
        }
        out
    }

    /// Every `(type, permission)` of the schema in force, filtered by `keep`.
    pub fn permissions(&self, keep: impl Fn(&str, &str) -> bool) -> Vec<(String, String)> {
        let schema = self.engine.schema().unwrap();
        let mut out = Vec::new();
        for (name, definition) in &schema.definitions {
            for permission in definition.permissions.keys() {
                if keep(name, permission) {
                    out.push((name.clone(), permission.clone()));
                }
            }
        }
        out
    }
}
