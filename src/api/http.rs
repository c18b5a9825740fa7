//! The HTTP/JSON API, shaped like SpiceDB's HTTP gateway: `POST /v1/...` with camelCase JSON,
//! streaming answers as one `{"result": {...}}` object per line, errors as
//! `{"code", "message", "details"}` with the gateway's HTTP status. Also `/healthz`,
//! `/readyz` and `/metrics`.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{FromRequest, MatchedPath, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, MethodRouter};
use axum::Router;
use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use tokio::sync::{mpsc, watch};

use super::error::{ApiError, Code};
use super::openapi;
use super::requests::RequestLayer;
use super::service::{
    BulkItem, Cursor, CursorBinding, LookupResources, LookupSubjects, Paged, Requested, Service,
    WatchEvent,
};
use super::trace;
use super::wire::{
    self, Count, ObjectReference, PermissionRelationshipTree, ResolvedSubject, SubjectReference,
    Token, WireConsistency, WireFilter, WirePrecondition, WireRelationship, WireUpdate,
};
use crate::engine::Permissionship;
use crate::filter::RelationshipFilter;
use crate::revision::Revision;
use crate::transaction::UpdateOp;
use crate::tuple::Relationship;

/// How the HTTP API behaves.
#[derive(Debug, Clone)]
pub struct HttpOptions {
    /// The preshared key every `/v1/` call must present.
    pub preshared_key: String,
    /// How often an idle watch stream gets a checkpoint.
    pub watch_checkpoint: Duration,
    /// Becomes `true` when the server starts shutting down (ends watch streams).
    pub shutdown: watch::Receiver<bool>,
}

#[derive(Clone)]
struct AppState {
    service: Arc<Service>,
    options: Arc<HttpOptions>,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status =
            StatusCode::from_u16(self.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = serde_json::to_vec(&self.body()).unwrap_or_default();
        (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
    }
}

/// The router: the `/v1/` API behind the preshared key, health and metrics open.
pub fn router(service: Arc<Service>, options: HttpOptions) -> Router {
    router_with(service, options, Router::new())
}

/// [`router`] with `extra` routes (their own state applied, their own authentication)
/// merged in, sharing the request ids, tracing and per-endpoint metrics.
pub fn router_with(service: Arc<Service>, options: HttpOptions, extra: Router) -> Router {
    let state = AppState {
        service,
        options: Arc::new(options),
    };
    let requests = RequestLayer::new(Arc::clone(state.service.metrics()));
    let route = |router: Router<AppState>, (path, handlers)| router.route(path, handlers);
    let api = v1_routes()
        .into_iter()
        .fold(Router::new(), route)
        .route_layer(requests.keyed(&state.options.preshared_key));
    let open = open_routes()
        .into_iter()
        .fold(Router::new(), route)
        .fallback(not_found)
        .layer(requests.clone());
    api.merge(open)
        .with_state(state)
        .merge(extra.layer(requests))
}

/// The `/v1/` API's routes (behind the preshared key): each path with its handler, the one
/// list [`router_with`] is built from.
fn v1_routes() -> Vec<(&'static str, MethodRouter<AppState>)> {
    vec![
        ("/v1/schema/write", post(schema_write)),
        ("/v1/schema/read", post(schema_read)),
        ("/v1/relationships/write", post(relationships_write)),
        ("/v1/relationships/read", post(relationships_read)),
        ("/v1/relationships/delete", post(relationships_delete)),
        ("/v1/relationships/importbulk", post(import_bulk)),
        ("/v1/relationships/exportbulk", post(export_bulk)),
        ("/v1/permissions/check", post(check)),
        ("/v1/permissions/checkbulk", post(check_bulk)),
        ("/v1/permissions/expand", post(expand)),
        ("/v1/permissions/resources", post(lookup_resources)),
        ("/v1/permissions/subjects", post(lookup_subjects)),
        ("/v1/watch", post(watch_changes)),
        ("/v1/schema/reflectschema", post(reflect_schema)),
        ("/v1/schema/diffschema", post(diff_schema)),
        (
            "/v1/schema/permissions/computable",
            post(computable_permissions),
        ),
        (
            "/v1/schema/permissions/dependent",
            post(dependent_relations),
        ),
        // SpiceDB's experimental gateway paths, served by the same handlers (their messages
        // have the stable ones' fields and JSON names).
        ("/v1/experimental/reflectschema", post(reflect_schema)),
        ("/v1/experimental/diffschema", post(diff_schema)),
        (
            "/v1/experimental/permissions/computable",
            post(computable_permissions),
        ),
        (
            "/v1/experimental/permissions/dependent",
            post(dependent_relations),
        ),
        (
            "/v1/experimental/permissions/bulkcheckpermission",
            post(check_bulk),
        ),
        (
            "/v1/experimental/relationships/bulkimport",
            post(import_bulk),
        ),
        (
            "/v1/experimental/relationships/bulkexport",
            post(export_bulk),
        ),
        (
            "/v1/experimental/registerrelationshipcounter",
            post(register_counter),
        ),
        (
            "/v1/experimental/countrelationships",
            post(count_relationships),
        ),
        (
            "/v1/experimental/unregisterrelationshipcounter",
            post(unregister_counter),
        ),
    ]
}

/// The routes open without a key: health, readiness, metrics and the OpenAPI document.
fn open_routes() -> Vec<(&'static str, MethodRouter<AppState>)> {
    vec![
        ("/healthz", get(healthz)),
        ("/readyz", get(readyz)),
        ("/metrics", get(metrics)),
        (openapi::PATH, get(openapi::serve)),
    ]
}

/// The path of every route [`router`] serves itself (for the OpenAPI check), from the same
/// lists it is built from.
pub fn paths() -> Vec<String> {
    v1_routes()
        .into_iter()
        .chain(open_routes())
        .map(|(path, _)| path.to_string())
        .collect()
}

async fn not_found(request: Request) -> ApiError {
    ApiError::new(
        Code::NotFound,
        format!("no endpoint {} {}", request.method(), request.uri().path()),
    )
}

async fn healthz() -> Response {
    Json(json!({"status": "SERVING"})).into_response()
}

async fn readyz(State(state): State<AppState>) -> Response {
    if *state.options.shutdown.borrow() {
        return ApiError::new(Code::Unavailable, "shutting down").into_response();
    }
    let engine = Arc::clone(state.service.engine());
    let ready = tokio::task::spawn_blocking(move || engine.at(Default::default()).map(|_| ()))
        .await
        .map(|r| {
            r.or_else(|e| match e {
                crate::engine::EngineError::NoSchema => Ok(()),
                other => Err(other),
            })
        });
    match ready {
        Ok(Ok(())) => Json(json!({"status": "SERVING"})).into_response(),
        // A database that cannot be reached answers 503 UNAVAILABLE, naming it.
        Ok(Err(err)) => ApiError::from(err).into_response(),
        Err(err) => ApiError::internal(&err).into_response(),
    }
}

async fn metrics(State(state): State<AppState>) -> Response {
    let engine = Arc::clone(state.service.engine());
    let sample = move || {
        (
            engine.store_size(),
            engine.head_revision().0,
            engine.cache_stats(),
        )
    };
    let (size, head, cache) = match tokio::task::spawn_blocking(sample).await {
        Ok(sampled) => sampled,
        Err(err) => return ApiError::internal(&err).into_response(),
    };
    state
        .service
        .metrics()
        .engine_calls_running(state.service.running());
    match state.service.metrics().render(size, head, &cache) {
        Ok(text) => ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response(),
        Err(err) => ApiError::internal(&err).into_response(),
    }
}

// ---- request bodies ----

/// A JSON body, with malformed JSON, wrong field types and oversized bodies answered as API
/// errors. An empty body reads as `{}`.
struct Json<T>(T);

impl<T: serde::Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        match serde_json::to_vec(&self.0) {
            Ok(body) => ([(header::CONTENT_TYPE, "application/json")], body).into_response(),
            Err(err) => ApiError::internal(&err).into_response(),
        }
    }
}

async fn body_bytes(request: Request, limit: usize) -> Result<Bytes, ApiError> {
    axum::body::to_bytes(request.into_body(), limit)
        .await
        .map_err(|_| ApiError {
            http_status: Some(413),
            ..ApiError::new(
                Code::ResourceExhausted,
                format!("request body is larger than the limit of {limit} bytes"),
            )
        })
}

fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let bytes: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        bytes
    };
    serde_json::from_slice(bytes)
        .map_err(|err| ApiError::invalid(format!("invalid request body: {err}")))
}

/// The protobuf request message of each `/v1` route (for reading its body as protojson).
fn request_message(path: &str) -> Option<&'static str> {
    Some(match path {
        "/v1/schema/write" => "WriteSchemaRequest",
        "/v1/schema/read" => "ReadSchemaRequest",
        "/v1/schema/reflectschema" | "/v1/experimental/reflectschema" => "ReflectSchemaRequest",
        "/v1/schema/diffschema" | "/v1/experimental/diffschema" => "DiffSchemaRequest",
        "/v1/schema/permissions/computable" | "/v1/experimental/permissions/computable" => {
            "ComputablePermissionsRequest"
        }
        "/v1/schema/permissions/dependent" | "/v1/experimental/permissions/dependent" => {
            "DependentRelationsRequest"
        }
        "/v1/relationships/write" => "WriteRelationshipsRequest",
        "/v1/relationships/read" => "ReadRelationshipsRequest",
        "/v1/relationships/delete" => "DeleteRelationshipsRequest",
        "/v1/relationships/exportbulk" | "/v1/experimental/relationships/bulkexport" => {
            "ExportBulkRelationshipsRequest"
        }
        "/v1/permissions/check" => "CheckPermissionRequest",
        "/v1/permissions/checkbulk" | "/v1/experimental/permissions/bulkcheckpermission" => {
            "CheckBulkPermissionsRequest"
        }
        "/v1/permissions/expand" => "ExpandPermissionTreeRequest",
        "/v1/permissions/resources" => "LookupResourcesRequest",
        "/v1/permissions/subjects" => "LookupSubjectsRequest",
        "/v1/watch" => "WatchRequest",
        _ => return None,
    })
}

/// The route's protobuf request message, from the matched path.
fn message_of(request: &Request) -> Option<&'static str> {
    request
        .extensions()
        .get::<MatchedPath>()
        .and_then(|path| request_message(path.as_str()))
}

/// Reads a body in its canonical JSON form, or else in any form protojson accepts for the
/// route's request message (proto field names, enum numbers, nulls): SpiceDB's gateway reads
/// protojson, so its clients may send either.
fn parse_lenient<T: DeserializeOwned>(
    message: Option<&'static str>,
    bytes: &[u8],
) -> Result<T, ApiError> {
    match parse_json(bytes) {
        Ok(value) => Ok(value),
        Err(strict) => match message {
            Some(name) => parse_json(&super::protojson::canonical(name, bytes)?),
            None => Err(strict),
        },
    }
}

impl<T: DeserializeOwned> FromRequest<AppState> for Json<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, ApiError> {
        let message = message_of(&request);
        let bytes = body_bytes(request, state.service.limits().max_body_bytes).await?;
        parse_lenient(message, &bytes).map(Json)
    }
}

/// A JSON body not yet parsed, with the route's protobuf request message: for a handler that
/// reads it borrowing from the bytes, falling back to [`parse_lenient`].
struct RawJson {
    message: Option<&'static str>,
    bytes: Bytes,
}

impl FromRequest<AppState> for RawJson {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, ApiError> {
        let message = message_of(&request);
        let bytes = body_bytes(request, state.service.limits().max_body_bytes).await?;
        Ok(Self { message, bytes })
    }
}

/// A body read as the generated type of a protobuf request message (for the endpoints
/// answered straight from protobuf types).
struct Proto<M>(M);

impl<M: prost::Message + Default> FromRequest<AppState> for Proto<M> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, ApiError> {
        let message = message_of(&request)
            .ok_or_else(|| ApiError::internal(&"a protobuf route without a request message"))?;
        let bytes = body_bytes(request, state.service.limits().max_body_bytes).await?;
        super::protojson::decode(message, &bytes).map(Proto)
    }
}

fn requested(consistency: Option<&WireConsistency>) -> Result<Requested, ApiError> {
    let Some(c) = consistency else {
        return Ok(Requested::default());
    };
    let set = [
        c.minimize_latency.is_some(),
        c.at_least_as_fresh.is_some(),
        c.at_exact_snapshot.is_some(),
        c.fully_consistent.is_some(),
    ]
    .iter()
    .filter(|set| **set)
    .count();
    if set > 1 {
        return Err(ApiError::invalid(
            "consistency: give exactly one of minimizeLatency, atLeastAsFresh, atExactSnapshot, fullyConsistent",
        ));
    }
    Ok(if let Some(token) = &c.at_least_as_fresh {
        Requested::AtLeastAsFresh(token.token.clone())
    } else if let Some(token) = &c.at_exact_snapshot {
        Requested::AtExactSnapshot(token.token.clone())
    } else if c.minimize_latency == Some(true) {
        Requested::MinimizeLatency
    } else {
        Requested::FullyConsistent
    })
}

fn token(service: &Service, revision: Revision) -> Value {
    json!({ "token": service.token(revision) })
}

fn cursor(binding: &CursorBinding, optional: Option<&Token>) -> Result<Option<Cursor>, ApiError> {
    binding.decode(optional.map(|t| t.token.as_str()))
}

fn limit(optional: Option<u32>) -> Option<usize> {
    optional.filter(|l| *l > 0).map(|l| l as usize)
}

fn required<'a>(value: &'a str, what: &str) -> Result<&'a str, ApiError> {
    if value.is_empty() {
        Err(ApiError::invalid(format!("{what} is required")))
    } else {
        Ok(value)
    }
}

/// Lines of `{"result": ...}` as one streamed body.
fn ndjson_lines(lines: Vec<Value>) -> Response {
    let mut body = Vec::new();
    for line in lines {
        if serde_json::to_writer(&mut body, &json!({ "result": line })).is_ok() {
            body.push(b'\n');
        }
    }
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// A streamed body fed by `receiver`: each `Ok` is a result line, an `Err` ends the stream
/// with an `{"error": ...}` line (as SpiceDB's gateway does once a stream has started).
fn ndjson_stream(receiver: mpsc::Receiver<Result<Value, ApiError>>) -> Response {
    let stream = futures_util::stream::unfold(receiver, |mut receiver| async move {
        let item = receiver.recv().await?;
        let line = match item {
            Ok(result) => json!({ "result": result }),
            Err(err) => json!({ "error": err.body() }),
        };
        let mut bytes = serde_json::to_vec(&line).unwrap_or_default();
        bytes.push(b'\n');
        Some((
            Ok::<_, std::convert::Infallible>(Bytes::from(bytes)),
            receiver,
        ))
    });
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        Body::from_stream(stream),
    )
        .into_response()
}

// ---- schema ----

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SchemaWrite {
    #[serde(default)]
    schema: String,
}

async fn schema_write(
    State(state): State<AppState>,
    Json(request): Json<SchemaWrite>,
) -> Result<Json<Value>, ApiError> {
    let revision = state.service.write_schema(request.schema).await?;
    Ok(Json(
        json!({ "writtenAt": token(&state.service, revision) }),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Empty {}

async fn schema_read(
    State(state): State<AppState>,
    Json(Empty {}): Json<Empty>,
) -> Result<Json<Value>, ApiError> {
    let (text, revision) = state.service.read_schema().await?;
    Ok(Json(
        json!({ "schemaText": text, "readAt": token(&state.service, revision) }),
    ))
}

// ---- relationships ----

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct WriteRelationships {
    #[serde(default)]
    updates: Vec<WireUpdate>,
    #[serde(default)]
    optional_preconditions: Vec<WirePrecondition>,
    #[serde(default)]
    #[allow(dead_code)]
    optional_transaction_metadata: Option<Value>,
}

async fn relationships_write(
    State(state): State<AppState>,
    Json(request): Json<WriteRelationships>,
) -> Result<Json<Value>, ApiError> {
    let updates = request
        .updates
        .iter()
        .enumerate()
        .map(|(i, u)| {
            u.to_domain()
                .map_err(|e| ApiError::invalid(format!("updates[{i}]: {}", e.message)))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let preconditions = request
        .optional_preconditions
        .iter()
        .map(WirePrecondition::to_domain)
        .collect::<Result<Vec<_>, _>>()?;
    let revision = state.service.write(updates, preconditions).await?;
    Ok(Json(
        json!({ "writtenAt": token(&state.service, revision) }),
    ))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ReadRelationships {
    consistency: Option<WireConsistency>,
    #[serde(default)]
    relationship_filter: WireFilter,
    optional_limit: Option<u32>,
    optional_cursor: Option<Token>,
}

async fn relationships_read(
    State(state): State<AppState>,
    Json(request): Json<ReadRelationships>,
) -> Result<Response, ApiError> {
    let filter = request.relationship_filter.to_domain(true)?;
    let binding = state.service.cursor_binding(Paged::Read(&filter));
    let (consistency, after) = resume_read(
        &state.service,
        &binding,
        request.consistency.as_ref(),
        request.optional_cursor.as_ref(),
    )?;
    stream_relationships(
        &state.service,
        binding,
        consistency,
        filter,
        after,
        limit(request.optional_limit),
        false,
    )
}

/// The revision a paged relationship read uses and the relationship it resumes after.
fn resume_read(
    service: &Service,
    binding: &CursorBinding,
    consistency: Option<&WireConsistency>,
    optional_cursor: Option<&Token>,
) -> Result<(crate::revision::Consistency, Option<Relationship>), ApiError> {
    let cursor = cursor(binding, optional_cursor)?;
    let consistency = service.consistency(&requested(consistency)?, cursor.as_ref())?;
    let after = cursor
        .as_ref()
        .map(|c| Relationship::parse(&c.after))
        .transpose()
        .map_err(|_| ApiError::invalid("malformed cursor"))?;
    Ok((consistency, after))
}

/// Streams a relationship read as result lines: one per relationship (`bulk` false, read
/// relationships) or one per page (`bulk` true, export).
fn stream_relationships(
    service: &Arc<Service>,
    binding: CursorBinding,
    consistency: crate::revision::Consistency,
    filter: RelationshipFilter,
    after: Option<Relationship>,
    limit: Option<usize>,
    bulk: bool,
) -> Result<Response, ApiError> {
    let mut pages = service.read_stream(consistency, filter, after, limit, 1_000)?;
    let (sender, receiver) = mpsc::channel(8);
    let service = Arc::clone(service);
    tokio::spawn(async move {
        while let Some(page) = pages.recv().await {
            let page = match page {
                Ok(page) => page,
                Err(err) => {
                    let _ = sender.send(Err(err)).await;
                    return;
                }
            };
            let at = token(&service, page.revision);
            let cursor_of = |rel: &Relationship| json!({"token": binding.encode(page.revision, &rel.to_string())});
            let lines: Vec<Value> = if bulk {
                let last = page.relationships.last().map(cursor_of);
                vec![json!({
                    "afterResultCursor": last,
                    "relationships": page.relationships.iter().map(WireRelationship::from_domain).collect::<Vec<_>>(),
                })]
            } else {
                page.relationships
                    .iter()
                    .map(|rel| {
                        json!({
                            "readAt": at,
                            "relationship": WireRelationship::from_domain(rel),
                            "afterResultCursor": cursor_of(rel),
                        })
                    })
                    .collect()
            };
            for line in lines {
                if sender.send(Ok(line)).await.is_err() {
                    return;
                }
            }
        }
    });
    Ok(ndjson_stream(receiver))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct DeleteRelationships {
    #[serde(default)]
    relationship_filter: WireFilter,
    #[serde(default)]
    optional_preconditions: Vec<WirePrecondition>,
    optional_limit: Option<u32>,
    #[serde(default)]
    optional_allow_partial_deletions: bool,
    #[serde(default)]
    #[allow(dead_code)]
    optional_transaction_metadata: Option<Value>,
}

async fn relationships_delete(
    State(state): State<AppState>,
    Json(request): Json<DeleteRelationships>,
) -> Result<Json<Value>, ApiError> {
    let filter = request.relationship_filter.to_domain(true)?;
    let preconditions = request
        .optional_preconditions
        .iter()
        .map(WirePrecondition::to_domain)
        .collect::<Result<Vec<_>, _>>()?;
    let outcome = state
        .service
        .delete(
            filter,
            preconditions,
            limit(request.optional_limit),
            request.optional_allow_partial_deletions,
        )
        .await?;
    let progress = if outcome.partial {
        "DELETION_PROGRESS_PARTIAL"
    } else {
        "DELETION_PROGRESS_COMPLETE"
    };
    Ok(Json(json!({
        "deletedAt": token(&state.service, outcome.revision),
        "deletionProgress": progress,
        "relationshipsDeletedCount": Count(outcome.deleted as u64),
    })))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ImportChunk {
    #[serde(default)]
    relationships: Vec<WireRelationship>,
}

/// The body is one `{"relationships": [...]}` object or several, one per line; everything is
/// stored as one revision, created (or touched, with `zanzi-import-mode: touch`).
async fn import_bulk(
    State(state): State<AppState>,
    request: Request,
) -> Result<Json<Value>, ApiError> {
    let mode = super::service::import_mode(
        request
            .headers()
            .get(super::service::IMPORT_MODE_HEADER)
            .map(|v| v.to_str().unwrap_or("?")),
    )?;
    let bytes = body_bytes(request, state.service.limits().max_import_bytes).await?;
    let mut relationships = Vec::new();
    for (n, chunk) in import_chunks(&bytes)?.into_iter().enumerate() {
        for (i, rel) in chunk.relationships.iter().enumerate() {
            relationships.push(rel.to_domain().map_err(|e| {
                ApiError::invalid(format!("message {n}, relationships[{i}]: {}", e.message))
            })?);
            state.service.check_import_count(relationships.len())?;
        }
    }
    let loaded = state.service.import(relationships, mode).await?;
    Ok(Json(json!({ "numLoaded": Count(loaded) })))
}

/// The messages of an import body, read as canonical JSON or, if that fails, each as
/// protojson.
fn import_chunks(bytes: &[u8]) -> Result<Vec<ImportChunk>, ApiError> {
    let strict: Result<Vec<ImportChunk>, _> = serde_json::Deserializer::from_slice(bytes)
        .into_iter::<ImportChunk>()
        .collect();
    let strict = match strict {
        Ok(chunks) => return Ok(chunks),
        Err(strict) => strict,
    };
    let mut chunks = Vec::new();
    for (n, value) in serde_json::Deserializer::from_slice(bytes)
        .into_iter::<Value>()
        .enumerate()
    {
        let value = value
            .map_err(|_| ApiError::invalid(format!("invalid import message {n}: {strict}")))?;
        let text = serde_json::to_vec(&value).map_err(|e| ApiError::internal(&e))?;
        let chunk = parse_lenient(Some("ImportBulkRelationshipsRequest"), &text)
            .map_err(|e| ApiError::invalid(format!("invalid import message {n}: {}", e.message)))?;
        chunks.push(chunk);
    }
    Ok(chunks)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ExportBulk {
    consistency: Option<WireConsistency>,
    optional_limit: Option<u32>,
    optional_cursor: Option<Token>,
    optional_relationship_filter: Option<WireFilter>,
}

async fn export_bulk(
    State(state): State<AppState>,
    Json(request): Json<ExportBulk>,
) -> Result<Response, ApiError> {
    let filter = request
        .optional_relationship_filter
        .as_ref()
        .map(|f| f.to_domain(false))
        .transpose()?
        .unwrap_or_default();
    let binding = state.service.cursor_binding(Paged::Read(&filter));
    let (consistency, after) = resume_read(
        &state.service,
        &binding,
        request.consistency.as_ref(),
        request.optional_cursor.as_ref(),
    )?;
    stream_relationships(
        &state.service,
        binding,
        consistency,
        filter,
        after,
        limit(request.optional_limit),
        true,
    )
}

// ---- permissions ----

/// A check request; `S` is `&str` when read borrowing its names and ids from the body.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct CheckPermission<S = String> {
    consistency: Option<WireConsistency>,
    #[serde(default)]
    resource: ObjectReference<S>,
    #[serde(default)]
    permission: S,
    #[serde(default)]
    subject: SubjectReference<S>,
    #[serde(default)]
    context: Option<Map<String, Value>>,
    #[serde(default)]
    with_tracing: bool,
}

fn check_answer(permissionship: &Permissionship) -> Value {
    let mut answer = json!({ "permissionship": wire::check_permissionship(permissionship) });
    if let Some(info) = wire::partial_caveat_info(permissionship) {
        answer["partialCaveatInfo"] = json!(info);
    }
    answer
}

/// A check's answer on the wire, built without an intermediate JSON tree.
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct CheckAnswer {
    permissionship: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    partial_caveat_info: Option<wire::PartialCaveatInfo>,
    checked_at: Token,
    #[serde(skip_serializing_if = "Option::is_none")]
    debug_trace: Option<Value>,
}

async fn check(
    State(state): State<AppState>,
    body: RawJson,
) -> Result<Json<CheckAnswer>, ApiError> {
    // The names and ids are borrowed from the body when none holds an escape (the usual
    // case); any other body (escapes, protojson's forms, an empty body) is read as before,
    // owned and leniently, with the same errors.
    match serde_json::from_slice::<CheckPermission<&str>>(&body.bytes) {
        Ok(request) => check_request(&state, request).await,
        Err(_) => {
            let request: CheckPermission = parse_lenient(body.message, &body.bytes)?;
            check_request(&state, request).await
        }
    }
}

async fn check_request<S: AsRef<str>>(
    state: &AppState,
    request: CheckPermission<S>,
) -> Result<Json<CheckAnswer>, ApiError> {
    let consistency = state
        .service
        .consistency(&requested(request.consistency.as_ref())?, None)?;
    let resource = request.resource.to_domain("resource")?;
    let permission = required(request.permission.as_ref(), "permission")?.to_string();
    let subject = request.subject.to_domain("subject")?;
    let context = request.context.unwrap_or_default();
    let (result, debug_trace) = if request.with_tracing {
        let traced = state
            .service
            .check_traced(consistency, resource, permission, subject, context)
            .await?;
        (traced.result, Some(json!(trace::to_json(&traced.trace))))
    } else {
        let result = state
            .service
            .check(consistency, resource, permission, subject, context)
            .await?;
        (result, None)
    };
    Ok(Json(CheckAnswer {
        permissionship: wire::check_permissionship(&result.permissionship),
        partial_caveat_info: wire::partial_caveat_info(&result.permissionship),
        checked_at: Token {
            token: state.service.token(result.revision),
        },
        debug_trace,
    }))
}

#[derive(Deserialize, Clone)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct CheckBulkItem {
    #[serde(default)]
    resource: ObjectReference,
    #[serde(default)]
    permission: String,
    #[serde(default)]
    subject: SubjectReference,
    #[serde(default)]
    context: Option<Map<String, Value>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct CheckBulk {
    consistency: Option<WireConsistency>,
    #[serde(default)]
    items: Vec<CheckBulkItem>,
    #[serde(default)]
    with_tracing: bool,
}

async fn check_bulk(
    State(state): State<AppState>,
    Json(request): Json<CheckBulk>,
) -> Result<Json<Value>, ApiError> {
    let consistency = state
        .service
        .consistency(&requested(request.consistency.as_ref())?, None)?;
    let items = request
        .items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let at = |e: ApiError| ApiError::invalid(format!("items[{i}]: {}", e.message));
            Ok(BulkItem {
                resource: item.resource.to_domain("resource").map_err(at)?,
                permission: required(&item.permission, "permission")
                    .map_err(at)?
                    .to_string(),
                subject: item.subject.to_domain("subject").map_err(at)?,
                context: item.context.clone().unwrap_or_default(),
            })
        })
        .collect::<Result<Vec<_>, ApiError>>()?;
    let (answers, revision) = state
        .service
        .check_bulk(consistency, items, request.with_tracing)
        .await?;
    let pairs: Vec<Value> = request
        .items
        .iter()
        .zip(answers)
        .map(|(item, answer)| {
            let request = json!({
                "resource": item.resource,
                "permission": item.permission,
                "subject": item.subject,
                "context": item.context,
            });
            match answer {
                Ok(answer) => {
                    let mut item = check_answer(&answer.permissionship);
                    if let Some(traced) = &answer.trace {
                        item["debugTrace"] = json!(trace::to_json(traced));
                    }
                    json!({ "request": request, "item": item })
                }
                Err(err) => json!({ "request": request, "error": err.body() }),
            }
        })
        .collect();
    Ok(Json(json!({
        "checkedAt": token(&state.service, revision),
        "pairs": pairs,
    })))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ExpandPermission {
    consistency: Option<WireConsistency>,
    #[serde(default)]
    resource: ObjectReference,
    #[serde(default)]
    permission: String,
}

async fn expand(
    State(state): State<AppState>,
    Json(request): Json<ExpandPermission>,
) -> Result<Json<Value>, ApiError> {
    let consistency = state
        .service
        .consistency(&requested(request.consistency.as_ref())?, None)?;
    let resource = request.resource.to_domain("resource")?;
    let permission = required(&request.permission, "permission")?.to_string();
    let (tree, revision) = state
        .service
        .expand(consistency, resource, permission)
        .await?;
    Ok(Json(json!({
        "expandedAt": token(&state.service, revision),
        "treeRoot": PermissionRelationshipTree::from_domain(&tree),
    })))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct LookupResourcesRequest {
    consistency: Option<WireConsistency>,
    #[serde(default)]
    resource_object_type: String,
    #[serde(default)]
    permission: String,
    #[serde(default)]
    subject: SubjectReference,
    #[serde(default)]
    context: Option<Map<String, Value>>,
    optional_limit: Option<u32>,
    optional_cursor: Option<Token>,
}

async fn lookup_resources(
    State(state): State<AppState>,
    Json(request): Json<LookupResourcesRequest>,
) -> Result<Response, ApiError> {
    let query = LookupResources {
        resource_type: required(&request.resource_object_type, "resourceObjectType")?.to_string(),
        permission: required(&request.permission, "permission")?.to_string(),
        subject: request.subject.to_domain("subject")?,
        context: request.context.unwrap_or_default(),
    };
    let binding = state.service.cursor_binding(Paged::Resources(&query));
    let cursor = cursor(&binding, request.optional_cursor.as_ref())?;
    let consistency = state
        .service
        .consistency(&requested(request.consistency.as_ref())?, cursor.as_ref())?;
    let (found, revision) = state
        .service
        .lookup_resources(
            consistency,
            query,
            cursor.map(|c| c.after),
            limit(request.optional_limit),
        )
        .await?;
    let at = token(&state.service, revision);
    let lines = found
        .iter()
        .map(|(id, permissionship)| {
            let mut line = json!({
                "lookedUpAt": at,
                "resourceObjectId": id,
                "permissionship": wire::lookup_permissionship(permissionship),
                "afterResultCursor": {"token": binding.encode(revision, id)},
            });
            if let Some(info) = wire::partial_caveat_info(permissionship) {
                line["partialCaveatInfo"] = json!(info);
            }
            line
        })
        .collect();
    Ok(ndjson_lines(lines))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct LookupSubjectsRequest {
    consistency: Option<WireConsistency>,
    #[serde(default)]
    resource: ObjectReference,
    #[serde(default)]
    permission: String,
    #[serde(default)]
    subject_object_type: String,
    #[serde(default)]
    optional_subject_relation: String,
    #[serde(default)]
    context: Option<Map<String, Value>>,
    optional_concrete_limit: Option<u32>,
    optional_cursor: Option<Token>,
    #[serde(default)]
    wildcard_option: Option<String>,
}

async fn lookup_subjects(
    State(state): State<AppState>,
    Json(request): Json<LookupSubjectsRequest>,
) -> Result<Response, ApiError> {
    let exclude_wildcards = match request.wildcard_option.as_deref() {
        None
        | Some("")
        | Some("WILDCARD_OPTION_UNSPECIFIED")
        | Some("WILDCARD_OPTION_INCLUDE_WILDCARDS") => false,
        Some("WILDCARD_OPTION_EXCLUDE_WILDCARDS") => true,
        Some(other) => {
            return Err(ApiError::invalid(format!(
                "unknown wildcardOption `{other}`"
            )))
        }
    };
    let query = LookupSubjects {
        resource: request.resource.to_domain("resource")?,
        permission: required(&request.permission, "permission")?.to_string(),
        subject_type: required(&request.subject_object_type, "subjectObjectType")?.to_string(),
        subject_relation: (!request.optional_subject_relation.is_empty())
            .then(|| request.optional_subject_relation.clone()),
        context: request.context.unwrap_or_default(),
    };
    let binding = state.service.cursor_binding(Paged::Subjects(&query));
    let cursor = cursor(&binding, request.optional_cursor.as_ref())?;
    let consistency = state
        .service
        .consistency(&requested(request.consistency.as_ref())?, cursor.as_ref())?;
    let (found, revision) = state
        .service
        .lookup_subjects(
            consistency,
            query,
            cursor.map(|c| c.after),
            limit(request.optional_concrete_limit),
        )
        .await?;
    let at = token(&state.service, revision);
    let lines = found
        .iter()
        .filter(|s| !(exclude_wildcards && s.subject_id == crate::tuple::WILDCARD_ID))
        .map(|s| {
            let excluded: Vec<ResolvedSubject> = s
                .excluded_ids
                .iter()
                .map(|id| ResolvedSubject {
                    subject_object_id: id.clone(),
                    permissionship: "LOOKUP_PERMISSIONSHIP_HAS_PERMISSION",
                    partial_caveat_info: None,
                })
                .collect();
            let mut subject = json!(ResolvedSubject::from_domain(s));
            subject["excludedSubjectIds"] = json!(s.excluded_ids);
            json!({
                "lookedUpAt": at,
                "subject": subject,
                "excludedSubjects": excluded,
                "afterResultCursor": {"token": binding.encode(revision, &s.subject_id)},
            })
        })
        .collect();
    Ok(ndjson_lines(lines))
}

// ---- schema reflection (answered from the gRPC messages, written as protojson) ----

fn schema_api(state: &AppState) -> super::grpc::SchemaApi {
    super::grpc::SchemaApi::new(Arc::clone(&state.service))
}

async fn reflect_schema(
    State(state): State<AppState>,
    Proto(request): Proto<crate::proto::v1::ReflectSchemaRequest>,
) -> Result<Json<Value>, ApiError> {
    let answer = schema_api(&state).reflect(request)?;
    Ok(Json(super::protojson::encode(
        "ReflectSchemaResponse",
        &answer,
    )?))
}

async fn diff_schema(
    State(state): State<AppState>,
    Proto(request): Proto<crate::proto::v1::DiffSchemaRequest>,
) -> Result<Json<Value>, ApiError> {
    let answer = schema_api(&state).diff(request)?;
    Ok(Json(super::protojson::encode(
        "DiffSchemaResponse",
        &answer,
    )?))
}

async fn computable_permissions(
    State(state): State<AppState>,
    Proto(request): Proto<crate::proto::v1::ComputablePermissionsRequest>,
) -> Result<Json<Value>, ApiError> {
    let answer = schema_api(&state).computable(request)?;
    Ok(Json(super::protojson::encode(
        "ComputablePermissionsResponse",
        &answer,
    )?))
}

async fn dependent_relations(
    State(state): State<AppState>,
    Proto(request): Proto<crate::proto::v1::DependentRelationsRequest>,
) -> Result<Json<Value>, ApiError> {
    let answer = schema_api(&state).dependent(request)?;
    Ok(Json(super::protojson::encode(
        "DependentRelationsResponse",
        &answer,
    )?))
}

// ---- relationship counters (experimental) ----

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RegisterCounter {
    #[serde(default)]
    name: String,
    #[serde(default, alias = "relationship_filter")]
    relationship_filter: WireFilter,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NamedCounter {
    #[serde(default)]
    name: String,
}

async fn register_counter(
    State(state): State<AppState>,
    Json(request): Json<RegisterCounter>,
) -> Result<Json<Value>, ApiError> {
    super::counters::register(&state.service, request.name, request.relationship_filter).await?;
    Ok(Json(json!({})))
}

async fn count_relationships(
    State(state): State<AppState>,
    Json(request): Json<NamedCounter>,
) -> Result<Json<Value>, ApiError> {
    let (count, revision) = super::counters::count(&state.service, request.name).await?;
    Ok(Json(json!({
        "readCounterValue": {
            "relationshipCount": Count(count),
            "readAt": token(&state.service, revision),
        }
    })))
}

async fn unregister_counter(
    State(state): State<AppState>,
    Json(request): Json<NamedCounter>,
) -> Result<Json<Value>, ApiError> {
    super::counters::unregister(&state.service, request.name).await?;
    Ok(Json(json!({})))
}

// ---- watch ----

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct WatchRequest {
    #[serde(default)]
    optional_object_types: Vec<String>,
    optional_start_cursor: Option<Token>,
    #[serde(default)]
    optional_relationship_filters: Vec<WireFilter>,
    #[serde(default)]
    #[allow(dead_code)]
    optional_update_kinds: Vec<String>,
}

async fn watch_changes(
    State(state): State<AppState>,
    Json(request): Json<WatchRequest>,
) -> Result<Response, ApiError> {
    let filters = request
        .optional_relationship_filters
        .iter()
        .map(|f| f.to_domain(false))
        .collect::<Result<Vec<_>, _>>()?;
    let service = Arc::clone(&state.service);
    let start = service.watch_start(
        request
            .optional_start_cursor
            .as_ref()
            .map(|t| t.token.as_str()),
    )?;
    let types = request.optional_object_types;
    let keep = move |rel: &Relationship| {
        (types.is_empty() || types.contains(&rel.resource.object_type))
            && (filters.is_empty() || filters.iter().any(|f| f.matches(rel)))
    };
    let mut events = service.watch(
        start,
        state.options.watch_checkpoint,
        state.options.shutdown.clone(),
    );
    let (sender, receiver) = mpsc::channel(16);
    tokio::spawn(async move {
        while let Some(event) = events.recv().await {
            let line = match event {
                Err(err) => Err(err),
                Ok(WatchEvent::Checkpoint(after)) => Ok(
                    json!({"updates": [], "changesThrough": token(&service, after), "isCheckpoint": true}),
                ),
                Ok(WatchEvent::Changes {
                    revision,
                    changes,
                    partial,
                }) => {
                    let updates: Vec<Value> = changes
                        .iter()
                        .filter(|c| keep(&c.relationship))
                        .map(|c| {
                            let operation = match c.op {
                                UpdateOp::Delete => "OPERATION_DELETE",
                                UpdateOp::Create => "OPERATION_CREATE",
                                UpdateOp::Touch => "OPERATION_TOUCH",
                            };
                            json!({"operation": operation, "relationship": WireRelationship::from_domain(&c.relationship)})
                        })
                        .collect();
                    if updates.is_empty() {
                        continue;
                    }
                    let through = super::service::changes_through(revision, partial);
                    Ok(json!({"updates": updates, "changesThrough": token(&service, through)}))
                }
            };
            if sender.send(line).await.is_err() {
                return;
            }
        }
    });
    Ok(ndjson_stream(receiver))
}
