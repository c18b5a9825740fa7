//! The API's implementation, shared by every wire format: limits, consistency tokens, cursors,
//! and engine calls moved off the async runtime. Handlers parse their wire format into the
//! domain types used here and print the answers back.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use tokio::sync::{mpsc, watch, OwnedSemaphorePermit};

use super::error::{ApiError, Code};
use super::metrics::Metrics;
use crate::engine::{
    Admission, CancelOnDrop, CheckResult, CheckTrace, Context, Engine, EngineError, ExpandTree,
    FoundSubjects, Interrupt, Permissionship, TracedCheck,
};
use crate::filter::RelationshipFilter;
use crate::revision::{Consistency, Revision, StoreId, ZedToken};
use crate::store::StoreError;
use crate::transaction::{Change, DeleteOutcome, ImportMode, LoggedRevision, Precondition, Update};
use crate::tuple::{ObjectRef, Relationship, SubjectRef};

/// The request header (gRPC metadata key) choosing an import's mode: `create` (the default:
/// an existing relationship fails the import) or `touch` (it is overwritten).
pub const IMPORT_MODE_HEADER: &str = "zanzi-import-mode";

/// The import mode named by an [`IMPORT_MODE_HEADER`] value (none: CREATE).
pub fn import_mode(value: Option<&str>) -> Result<ImportMode, ApiError> {
    match value.map(str::trim) {
        None | Some("") => Ok(ImportMode::Create),
        Some(v) if v.eq_ignore_ascii_case("create") => Ok(ImportMode::Create),
        Some(v) if v.eq_ignore_ascii_case("touch") => Ok(ImportMode::Touch),
        Some(other) => Err(ApiError::invalid(format!(
            "unknown {IMPORT_MODE_HEADER} `{other}`: expected `create` or `touch`"
        ))),
    }
}

/// Request limits (each refusal names the limit).
#[derive(Debug, Clone)]
pub struct Limits {
    /// Updates in one relationship write (SpiceDB's default is 1,000).
    pub max_updates_per_write: usize,
    /// Preconditions in one write or delete.
    pub max_preconditions: usize,
    /// Items in one bulk check.
    pub max_bulk_checks: usize,
    /// Bytes of a request body (import has its own limit).
    pub max_body_bytes: usize,
    /// Bytes of an import body.
    pub max_import_bytes: usize,
    /// Relationships deleted by one delete-by-filter without a limit.
    pub max_delete: usize,
    /// Relationships in one import (counted as the import is read).
    pub max_import_relationships: usize,
    /// How long a read (check, expand, lookup) may run before its walk is stopped and it
    /// answers DEADLINE_EXCEEDED (a gRPC client's shorter deadline wins).
    pub request_timeout: Duration,
    /// Engine calls (reads and writes) running at once; one more is refused at once with
    /// RESOURCE_EXHAUSTED. Watch streams, health and metrics are not counted.
    pub max_concurrent_requests: usize,
    /// HTTP connections served at once; the next one waits in the kernel's accept queue
    /// until one closes (see [`crate::api::connections`]).
    pub max_http_connections: usize,
    /// Of those, connections that have not yet presented a valid credential; they are also
    /// closed after [`crate::api::connections::UNPROVEN_LIFETIME`] (see
    /// [`crate::api::connections`]).
    pub max_unauthenticated_connections: usize,
}

/// The default of [`Limits::max_http_connections`].
pub const DEFAULT_MAX_HTTP_CONNECTIONS: usize = 512;

/// The default of [`Limits::max_unauthenticated_connections`].
pub const DEFAULT_MAX_UNAUTHENTICATED_CONNECTIONS: usize = 16;

/// The default of [`Limits::request_timeout`].
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// The default of [`Limits::max_concurrent_requests`]: 64 per core, between 64 and 448.
///
/// A walk is CPU work with some disk reads, so a few in flight per core already keep the
/// machine busy; 64 per core leaves room for bursts of cheap checks, which finish in
/// microseconds and rarely overlap. The ceiling keeps engine work below tokio's 512 blocking
/// threads, so the facades, readiness probes and file reads always find a thread.
pub fn default_max_concurrent_requests() -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    (64 * cores).clamp(64, 448)
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_updates_per_write: 1_000,
            max_preconditions: 1_000,
            max_bulk_checks: 10_000,
            max_body_bytes: 4 << 20,
            max_import_bytes: 256 << 20,
            max_delete: 100_000,
            max_import_relationships: 10_000_000,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            max_concurrent_requests: default_max_concurrent_requests(),
            max_http_connections: DEFAULT_MAX_HTTP_CONNECTIONS,
            max_unauthenticated_connections: DEFAULT_MAX_UNAUTHENTICATED_CONNECTIONS,
        }
    }
}

tokio::task_local! {
    /// The deadline a gRPC client sent (`grpc-timeout`) for the call being served.
    static CLIENT_DEADLINE: Instant;
}

/// Runs `work` (a call's handler) with the client's deadline `timeout` from now: engine
/// calls it makes stop at the earlier of it and [`Limits::request_timeout`].
pub async fn with_client_deadline<F: Future>(timeout: Option<Duration>, work: F) -> F::Output {
    match timeout.and_then(|t| Instant::now().checked_add(t)) {
        Some(deadline) => CLIENT_DEADLINE.scope(deadline, work).await,
        None => work.await,
    }
}

/// What the caller asked for, before its tokens are decoded.
#[derive(Debug, Clone, Default)]
pub enum Requested {
    /// `minimizeLatency`.
    MinimizeLatency,
    /// `atLeastAsFresh` with a token.
    AtLeastAsFresh(String),
    /// `atExactSnapshot` with a token.
    AtExactSnapshot(String),
    /// `fullyConsistent` (also the default when nothing is given).
    #[default]
    FullyConsistent,
}

/// Where a paged read resumes: the revision it reads and the last key returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    /// The revision every page reads.
    pub revision: Revision,
    /// The last item returned (a relationship's text, or an object id).
    pub after: String,
}

/// The first byte of a cursor's binary form (earlier cursors began with an ASCII digit).
const CURSOR_VERSION: u8 = 2;

/// Bytes of the request digest a cursor carries.
const DIGEST_BYTES: usize = 16;

/// A paged read, as a cursor is bound to it: everything the request asked but its cursor,
/// its limit and its consistency (a cursor fixes the revision).
#[derive(Debug, Clone, Copy)]
pub enum Paged<'a> {
    /// Read relationships and export: the filter.
    Read(&'a RelationshipFilter),
    /// Lookup resources.
    Resources(&'a LookupResources),
    /// Lookup subjects.
    Subjects(&'a LookupSubjects),
}

impl Paged<'_> {
    /// A digest of the request (SHA-256 of its parts, cut to [`DIGEST_BYTES`]).
    fn digest(&self) -> [u8; DIGEST_BYTES] {
        use sha2::Digest as _;
        let text = match self {
            Paged::Read(filter) => format!("read\n{filter:?}"),
            Paged::Resources(q) => format!(
                "resources\n{:?}\n{:?}\n{}\n{}",
                q.resource_type,
                q.permission,
                q.subject,
                serde_json::Value::Object(q.context.clone())
            ),
            Paged::Subjects(q) => format!(
                "subjects\n{}\n{:?}\n{:?}\n{:?}\n{}",
                q.resource,
                q.permission,
                q.subject_type,
                q.subject_relation,
                serde_json::Value::Object(q.context.clone())
            ),
        };
        let hash = sha2::Sha256::digest(text.as_bytes());
        let mut digest = [0; DIGEST_BYTES];
        digest.copy_from_slice(&hash[..DIGEST_BYTES]);
        digest
    }
}

/// What the cursors of one paged read are bound to: the store and the request. A cursor
/// issued for another store or request is refused, never read as if it were this one's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CursorBinding {
    store: StoreId,
    digest: [u8; DIGEST_BYTES],
}

impl CursorBinding {
    /// The opaque text of the cursor resuming after `after` at `revision` (URL-safe base64
    /// of: version, store id, request digest, revision, `after`).
    pub fn encode(&self, revision: Revision, after: &str) -> String {
        let mut bytes = Vec::with_capacity(1 + 16 + DIGEST_BYTES + 8 + after.len());
        bytes.push(CURSOR_VERSION);
        bytes.extend_from_slice(&self.store.0);
        bytes.extend_from_slice(&self.digest);
        bytes.extend_from_slice(&revision.0.to_be_bytes());
        bytes.extend_from_slice(after.as_bytes());
        URL_SAFE_NO_PAD.encode(bytes)
    }

    /// The cursor `text` names, if it was issued for this store and request; an empty text
    /// is no cursor.
    pub fn decode(&self, text: Option<&str>) -> Result<Option<Cursor>, ApiError> {
        let Some(text) = text.filter(|t| !t.is_empty()) else {
            return Ok(None);
        };
        let invalid = |message: String| {
            ApiError::invalid(message).with_reason("ERROR_REASON_INVALID_CURSOR", [])
        };
        let malformed = || invalid(format!("malformed cursor `{text}`"));
        let bytes = URL_SAFE_NO_PAD.decode(text).map_err(|_| malformed())?;
        match bytes.first() {
            Some(&CURSOR_VERSION) => {}
            Some(digit) if digit.is_ascii_digit() => {
                return Err(invalid(
                    "cursor was issued by an earlier version of zanzi and cannot be resumed; start the read again without a cursor".to_string(),
                ))
            }
            _ => return Err(malformed()),
        }
        let rest = &bytes[1..];
        if rest.len() < 16 + DIGEST_BYTES + 8 {
            return Err(malformed());
        }
        let (store, rest) = rest.split_at(16);
        let (digest, rest) = rest.split_at(DIGEST_BYTES);
        let (revision, after) = rest.split_at(8);
        if store != self.store.0 {
            return Err(invalid(
                "cursor was issued for a different request: it belongs to another store"
                    .to_string(),
            ));
        }
        if digest != self.digest {
            return Err(invalid(
                "cursor was issued for a different request: send it with the same request that returned it, or start without a cursor".to_string(),
            ));
        }
        let mut revision_bytes = [0; 8];
        revision_bytes.copy_from_slice(revision);
        let after = String::from_utf8(after.to_vec()).map_err(|_| malformed())?;
        Ok(Some(Cursor {
            revision: Revision(u64::from_be_bytes(revision_bytes)),
            after,
        }))
    }
}

/// An engine error from resuming a read at a cursor's revision: a revision no longer retained
/// is named as the cursor's, with what to do.
fn resumed(err: EngineError, from_cursor: bool) -> ApiError {
    match err {
        EngineError::Store(StoreError::RevisionUnavailable {
            requested, oldest, ..
        }) if from_cursor => ApiError::new(
            Code::FailedPrecondition,
            format!(
                "the cursor's revision {requested} has expired: the oldest retained revision is {oldest}; start the read again without a cursor"
            ),
        )
        .with_reason("ERROR_REASON_INVALID_CURSOR", []),
        other => other.into(),
    }
}

/// The shared implementation behind every API.
pub struct Service {
    engine: Arc<Engine>,
    limits: Limits,
    metrics: Arc<Metrics>,
    head: watch::Sender<Revision>,
    /// One permit per engine call running ([`Limits::max_concurrent_requests`]), shared with
    /// the facades.
    admission: Arc<Admission>,
}

impl std::fmt::Debug for Service {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Service")
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

/// How many steps (recursive steps and relationships read) a check may take on the calling
/// async thread before it moves to the blocking pool (see [`Service::read_short`]): a cache
/// hit or a group-index probe takes a handful, a walk through a few direct relationships a few
/// dozen, each a microsecond or so.
pub const INLINE_STEPS: u32 = 64;

/// Runs a blocking engine call on tokio's blocking pool.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|err| ApiError::internal(&err))?
}

impl Service {
    /// A service over `engine`.
    pub fn new(engine: Arc<Engine>, limits: Limits, metrics: Arc<Metrics>) -> Self {
        let (head, _) = watch::channel(engine.head_revision());
        let admission = Arc::new(Admission::new(
            limits.max_concurrent_requests,
            limits.request_timeout,
        ));
        Self {
            engine,
            limits,
            metrics,
            head,
            admission,
        }
    }

    /// How many engine calls are running (each holds a permit until its work ends).
    pub fn running(&self) -> usize {
        self.admission.running()
    }

    /// The concurrency bound and read deadline, for the other APIs served beside this one.
    pub fn admission(&self) -> Arc<Admission> {
        Arc::clone(&self.admission)
    }

    /// A permit to run an engine call, or RESOURCE_EXHAUSTED at once when
    /// [`Limits::max_concurrent_requests`] calls are running.
    fn admit(&self) -> Result<OwnedSemaphorePermit, ApiError> {
        self.admission.admit().map_err(|err| {
            self.metrics.request_refused();
            ApiError::from(err)
        })
    }

    /// What stops a read started now: [`Limits::request_timeout`], or the client's deadline
    /// when that is sooner.
    fn interrupt(&self) -> Interrupt {
        let mut timeout = self.limits.request_timeout;
        if let Ok(deadline) = CLIENT_DEADLINE.try_with(|deadline| *deadline) {
            timeout = timeout.min(deadline.saturating_duration_since(Instant::now()));
        }
        Interrupt::after(timeout)
    }

    /// Runs a read on tokio's blocking pool under the concurrency bound and the deadline:
    /// `work` gets the [`Interrupt`] to hand to the engine. At the deadline the caller gets
    /// DEADLINE_EXCEEDED and the walk stops at its next step; when this future is dropped
    /// (the client went away) the walk stops too. The permit is held until the work ends.
    async fn read<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Interrupt) -> Result<T, ApiError> + Send + 'static,
    ) -> Result<T, ApiError> {
        let permit = self.admit()?;
        self.read_admitted(permit, work).await
    }

    /// [`Service::read`] with its permit already taken.
    async fn read_admitted<T: Send + 'static>(
        &self,
        permit: OwnedSemaphorePermit,
        work: impl FnOnce(&Interrupt) -> Result<T, ApiError> + Send + 'static,
    ) -> Result<T, ApiError> {
        let interrupt = self.interrupt();
        let _cancel = CancelOnDrop(interrupt.clone());
        let task = {
            let interrupt = interrupt.clone();
            tokio::task::spawn_blocking(move || {
                let _permit = permit;
                interrupt.check()?;
                work(&interrupt)
            })
        };
        let joined = match (interrupt.deadline(), interrupt.timeout()) {
            (Some(deadline), Some(timeout)) => {
                match tokio::time::timeout_at(deadline.into(), task).await {
                    Ok(joined) => joined,
                    Err(_) => return Err(EngineError::DeadlineExceeded(timeout).into()),
                }
            }
            _ => task.await,
        };
        joined.map_err(|err| ApiError::internal(&err))?
    }

    /// [`Service::read`] for a read that is usually short (a check): under the same permit
    /// and deadline, it is first tried on the calling thread with each walk bounded to
    /// [`INLINE_STEPS`] steps, when the engine can read without waiting
    /// ([`Engine::reads_inline`]: local store, no write log to follow first), so a cache hit,
    /// an index probe or a few point reads answer without a hop to the blocking pool. A walk
    /// that meets the bound runs again, unbounded, on the blocking pool.
    async fn read_short<T: Send + 'static>(
        &self,
        work: impl Fn(&Interrupt) -> Result<T, EngineError> + Send + 'static,
    ) -> Result<T, ApiError> {
        let permit = self.admit()?;
        if self.engine.reads_inline() {
            let short = self.interrupt().with_step_limit(INLINE_STEPS);
            match short.check().and_then(|()| work(&short)) {
                Err(EngineError::StepLimit(_)) => {}
                done => return done.map_err(ApiError::from),
            }
        }
        self.read_admitted(permit, move |interrupt| Ok(work(interrupt)?))
            .await
    }

    /// Runs a write on tokio's blocking pool under the concurrency bound (no deadline: a
    /// write commits or fails as a whole, and its caller learns which).
    async fn write_work<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
    ) -> Result<T, ApiError> {
        let permit = self.admit()?;
        blocking(move || {
            let _permit = permit;
            work()
        })
        .await
    }

    /// The limits in force.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// The metrics registry.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// The engine.
    pub fn engine(&self) -> &Arc<Engine> {
        &self.engine
    }

    /// The ZedToken for `revision`.
    pub fn token(&self, revision: Revision) -> String {
        ZedToken::new(self.engine.store_id(), revision).encode()
    }

    /// What the cursors of `paged` are bound to (this store and that request).
    pub fn cursor_binding(&self, paged: Paged<'_>) -> CursorBinding {
        CursorBinding {
            store: self.engine.store_id(),
            digest: paged.digest(),
        }
    }

    /// Decodes a ZedToken issued by this store.
    pub fn revision_of(&self, token: &str) -> Result<Revision, ApiError> {
        Ok(ZedToken::decode(token, self.engine.store_id())?.revision)
    }

    /// The consistency a request asked for, with a cursor's revision taking precedence.
    pub fn consistency(
        &self,
        requested: &Requested,
        cursor: Option<&Cursor>,
    ) -> Result<Consistency, ApiError> {
        if let Some(cursor) = cursor {
            return Ok(Consistency::AtExactSnapshot(cursor.revision));
        }
        Ok(match requested {
            Requested::MinimizeLatency => Consistency::MinimizeLatency,
            Requested::FullyConsistent => Consistency::FullyConsistent,
            Requested::AtLeastAsFresh(token) => {
                Consistency::AtLeastAsFresh(self.revision_of(token)?)
            }
            Requested::AtExactSnapshot(token) => {
                Consistency::AtExactSnapshot(self.revision_of(token)?)
            }
        })
    }

    /// A receiver that sees the head revision change after every write made through the API.
    pub fn subscribe_head(&self) -> watch::Receiver<Revision> {
        self.head.subscribe()
    }

    /// Tells watchers about a revision committed outside this service (e.g. by the facade).
    pub fn publish(&self, revision: Revision) {
        self.published(revision);
    }

    fn published(&self, revision: Revision) -> Revision {
        self.head.send_if_modified(|head| {
            let newer = revision > *head;
            if newer {
                *head = revision;
            }
            newer
        });
        revision
    }

    /// Compiles and stores a schema.
    pub async fn write_schema(&self, text: String) -> Result<Revision, ApiError> {
        if text.trim().is_empty() {
            return Err(ApiError::invalid("schema is empty"));
        }
        let engine = Arc::clone(&self.engine);
        let revision = self
            .write_work(move || Ok(engine.write_schema(&text)?))
            .await?;
        Ok(self.published(revision))
    }

    /// The schema text and the revision read.
    pub async fn read_schema(&self) -> Result<(String, Revision), ApiError> {
        let engine = Arc::clone(&self.engine);
        self.read(move |_| {
            let revision = engine.head_revision();
            match engine.schema() {
                Ok(schema) => Ok((schema.source.clone(), revision)),
                Err(EngineError::NoSchema) => {
                    Err(ApiError::new(Code::NotFound, "no schema has been defined"))
                }
                Err(err) => Err(err.into()),
            }
        })
        .await
    }

    /// Applies `updates` atomically after checking `preconditions`.
    pub async fn write(
        &self,
        updates: Vec<Update>,
        preconditions: Vec<Precondition>,
    ) -> Result<Revision, ApiError> {
        if updates.len() > self.limits.max_updates_per_write {
            return Err(ApiError::invalid(format!(
                "update count of {} is greater than maximum allowed of {}",
                updates.len(),
                self.limits.max_updates_per_write
            ))
            .with_reason(
                "ERROR_REASON_TOO_MANY_UPDATES_IN_REQUEST",
                [
                    ("update_count", updates.len().to_string()),
                    (
                        "maximum_updates_allowed",
                        self.limits.max_updates_per_write.to_string(),
                    ),
                ],
            ));
        }
        self.check_preconditions(&preconditions)?;
        let count = updates.len();
        let engine = Arc::clone(&self.engine);
        let revision = self
            .write_work(move || Ok(engine.write_relationships(&updates, &preconditions)?))
            .await?;
        self.metrics.relationships_written(count);
        Ok(self.published(revision))
    }

    fn check_preconditions(&self, preconditions: &[Precondition]) -> Result<(), ApiError> {
        if preconditions.len() > self.limits.max_preconditions {
            return Err(ApiError::invalid(format!(
                "precondition count of {} is greater than maximum allowed of {}",
                preconditions.len(),
                self.limits.max_preconditions
            ))
            .with_reason(
                "ERROR_REASON_TOO_MANY_PRECONDITIONS_IN_REQUEST",
                [
                    ("precondition_count", preconditions.len().to_string()),
                    (
                        "maximum_preconditions_allowed",
                        self.limits.max_preconditions.to_string(),
                    ),
                ],
            ));
        }
        Ok(())
    }

    /// INVALID_ARGUMENT once an import being read holds more than
    /// [`Limits::max_import_relationships`] relationships (`count` so far).
    pub fn check_import_count(&self, count: usize) -> Result<(), ApiError> {
        let max = self.limits.max_import_relationships;
        if count <= max {
            return Ok(());
        }
        Err(ApiError::invalid(format!(
            "import holds more than {max} relationships, the most one import may hold; split it into several imports; nothing was imported"
        ))
        .with_reason(
            "ERROR_REASON_TOO_MANY_UPDATES_IN_REQUEST",
            [
                ("update_count", count.to_string()),
                ("maximum_updates_allowed", max.to_string()),
            ],
        ))
    }

    /// Stores every relationship as one revision, all or nothing: with [`ImportMode::Create`]
    /// any that exists fails the whole import, with [`ImportMode::Touch`] it is overwritten.
    /// An error names the relationship's position in the import (from 0).
    pub async fn import(
        &self,
        relationships: Vec<Relationship>,
        mode: ImportMode,
    ) -> Result<u64, ApiError> {
        if relationships.is_empty() {
            return Ok(0);
        }
        let engine = Arc::clone(&self.engine);
        let outcome = self
            .write_work(move || {
                engine
                    .import(relationships.into_iter().map(Ok), mode)
                    .map_err(|failed| {
                        let mut err = ApiError::from(failed.error);
                        if let Some(item) = failed.item {
                            err.message = format!(
                                "import item {item}: {}; nothing was imported",
                                err.message
                            );
                            err = err.with_metadata("import_item", item.to_string());
                        }
                        err
                    })
            })
            .await?;
        self.metrics.relationships_written(outcome.loaded as usize);
        self.published(outcome.revision);
        Ok(outcome.loaded)
    }

    /// Deletes what `filter` matches. With a `limit` and `allow_partial` false, more matches
    /// than the limit is an error and nothing is deleted.
    pub async fn delete(
        &self,
        filter: RelationshipFilter,
        preconditions: Vec<Precondition>,
        limit: Option<usize>,
        allow_partial: bool,
    ) -> Result<DeleteOutcome, ApiError> {
        self.check_preconditions(&preconditions)?;
        let engine = Arc::clone(&self.engine);
        let max_delete = self.limits.max_delete;
        let outcome = self.write_work(move || {
            let cap = limit.unwrap_or(max_delete);
            if !allow_partial {
                let (found, _) = engine.read_relationships(&filter, None, Some(cap + 1))?;
                if found.len() > cap {
                    let reason = match limit {
                        Some(limit) => format!("the filter matches more than the limit of {limit} relationships and partial deletions are not allowed"),
                        None => format!("the filter matches more than {max_delete} relationships, the most one delete may remove; give a limit and allow partial deletions"),
                    };
                    return Err(ApiError::invalid(reason).with_reason(
                        "ERROR_REASON_TOO_MANY_RELATIONSHIPS_FOR_TRANSACTIONAL_DELETE",
                        [],
                    ));
                }
            }
            Ok(engine.delete_relationships(&filter, &preconditions, Some(cap))?)
        })
        .await?;
        self.metrics.relationships_deleted(outcome.deleted);
        self.published(outcome.revision);
        Ok(outcome)
    }

    /// One check.
    pub async fn check(
        &self,
        consistency: Consistency,
        resource: ObjectRef,
        permission: String,
        subject: SubjectRef,
        context: Context,
    ) -> Result<CheckResult, ApiError> {
        let engine = Arc::clone(&self.engine);
        let result = self
            .read_short(move |interrupt| {
                engine
                    .at(consistency)?
                    .interrupted_by(interrupt.clone())
                    .check(&resource, &permission, &subject, &context)
            })
            .await?;
        self.metrics.check_outcome(&result.permissionship);
        Ok(result)
    }

    /// One check with the trace of its walk.
    pub async fn check_traced(
        &self,
        consistency: Consistency,
        resource: ObjectRef,
        permission: String,
        subject: SubjectRef,
        context: Context,
    ) -> Result<TracedCheck, ApiError> {
        let engine = Arc::clone(&self.engine);
        let traced = self
            .read(move |interrupt| {
                Ok(engine
                    .at(consistency)?
                    .interrupted_by(interrupt.clone())
                    .check_traced(&resource, &permission, &subject, &context)?)
            })
            .await?;
        self.metrics.check_outcome(&traced.result.permissionship);
        Ok(traced)
    }

    /// Many checks against one revision; each item answers or fails on its own. With
    /// `traced`, each answer comes with the trace of its walk.
    pub async fn check_bulk(
        &self,
        consistency: Consistency,
        items: Vec<BulkItem>,
        traced: bool,
    ) -> Result<(Vec<Result<BulkAnswer, ApiError>>, Revision), ApiError> {
        if items.len() > self.limits.max_bulk_checks {
            return Err(ApiError::invalid(format!(
                "check count of {} is greater than maximum allowed of {}",
                items.len(),
                self.limits.max_bulk_checks
            ))
            .with_reason(
                "ERROR_REASON_TOO_MANY_CHECKS_IN_REQUEST",
                [
                    ("check_count", items.len().to_string()),
                    (
                        "maximum_checks_allowed",
                        self.limits.max_bulk_checks.to_string(),
                    ),
                ],
            ));
        }
        let engine = Arc::clone(&self.engine);
        let (answers, revision) = self
            .read(move |interrupt| {
                let view = engine.at(consistency)?.interrupted_by(interrupt.clone());
                let answers = items
                    .iter()
                    .map(|item| {
                        // A deadline or cancellation fails the whole request, not each item.
                        view.go_on()?;
                        let (resource, permission, subject, context) = (
                            &item.resource,
                            &item.permission,
                            &item.subject,
                            &item.context,
                        );
                        let answer = if traced {
                            view.check_traced(resource, permission, subject, context)
                                .map(|t| BulkAnswer {
                                    permissionship: t.result.permissionship,
                                    trace: Some(t.trace),
                                })
                        } else {
                            view.check(resource, permission, subject, context)
                                .map(|r| BulkAnswer {
                                    permissionship: r.permissionship,
                                    trace: None,
                                })
                        };
                        Ok(answer.map_err(ApiError::from))
                    })
                    .collect::<Result<Vec<_>, ApiError>>()?;
                Ok((answers, view.revision()))
            })
            .await?;
        for answer in answers.iter().flatten() {
            self.metrics.check_outcome(&answer.permissionship);
        }
        Ok((answers, revision))
    }

    /// The expand tree of `resource#permission` (one level, as SpiceDB's Expand).
    pub async fn expand(
        &self,
        consistency: Consistency,
        resource: ObjectRef,
        permission: String,
    ) -> Result<(ExpandTree, Revision), ApiError> {
        let engine = Arc::clone(&self.engine);
        self.read(move |interrupt| {
            let view = engine.at(consistency)?.interrupted_by(interrupt.clone());
            Ok((view.expand(&resource, &permission, false)?, view.revision()))
        })
        .await
    }

    /// Resources of a type the subject can reach, after `cursor`, at most `limit`.
    pub async fn lookup_resources(
        &self,
        consistency: Consistency,
        query: LookupResources,
        after: Option<String>,
        limit: Option<usize>,
    ) -> Result<(Vec<(String, Permissionship)>, Revision), ApiError> {
        let engine = Arc::clone(&self.engine);
        self.read(move |interrupt| {
            let view = engine
                .at(consistency)
                .map_err(|e| resumed(e, after.is_some()))?
                .interrupted_by(interrupt.clone());
            let found = view.lookup_resources(
                &query.resource_type,
                &query.permission,
                &query.subject,
                &query.context,
            )?;
            let page = found
                .page(after.as_deref(), limit)
                .map(|(id, held)| (id.to_string(), held.clone()))
                .collect();
            Ok((page, view.revision()))
        })
        .await
    }

    /// Subjects of a type that reach `resource#permission`, after `cursor`, at most `limit`
    /// concrete subjects.
    pub async fn lookup_subjects(
        &self,
        consistency: Consistency,
        query: LookupSubjects,
        after: Option<String>,
        limit: Option<usize>,
    ) -> Result<(FoundSubjects, Revision), ApiError> {
        let engine = Arc::clone(&self.engine);
        self.read(move |interrupt| {
            let view = engine
                .at(consistency)
                .map_err(|e| resumed(e, after.is_some()))?
                .interrupted_by(interrupt.clone());
            let found = view.lookup_subjects(
                &query.resource,
                &query.permission,
                &query.subject_type,
                query.subject_relation.as_deref(),
                &query.context,
            )?;
            Ok((
                page(found, |s| &s.subject_id, after, limit),
                view.revision(),
            ))
        })
        .await
    }

    /// Streams relationships matching `filter` in pages of `page_size` through a channel; the
    /// first message is the revision read (or the error that stopped the read). Refused at
    /// once (before any stream starts) past [`Limits::max_concurrent_requests`]; the read
    /// holds its permit until it ends or its receiver is dropped. The read stops at
    /// [`Limits::request_timeout`] (or the gRPC client's sooner deadline) with
    /// DEADLINE_EXCEEDED as the last message; a longer export resumes from the cursor of the
    /// last page it got.
    pub fn read_stream(
        &self,
        consistency: Consistency,
        filter: RelationshipFilter,
        after: Option<Relationship>,
        limit: Option<usize>,
        page_size: usize,
    ) -> Result<mpsc::Receiver<Result<ReadPage, ApiError>>, ApiError> {
        let (sender, receiver) = mpsc::channel(4);
        let permit = self.admit()?;
        let interrupt = self.interrupt();
        let engine = Arc::clone(&self.engine);
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let result = (|| -> Result<(), ApiError> {
                interrupt.check()?;
                // The view's store scan looks at the deadline as it goes, so one page of a
                // sparse filter over a large store stops at it too.
                let view = engine
                    .at(consistency)
                    .map_err(|e| resumed(e, after.is_some()))?
                    .interrupted_by(interrupt.clone());
                let revision = view.revision();
                let mut after = after;
                let mut remaining = limit;
                loop {
                    let want = remaining.map_or(page_size, |r| r.min(page_size));
                    if want == 0 {
                        return Ok(());
                    }
                    // Also past a slow consumer: a page waits for room in the channel.
                    interrupt.check()?;
                    let relationships =
                        view.read_relationships(&filter, after.as_ref(), Some(want))?;
                    let done = relationships.len() < want;
                    after = relationships.last().cloned();
                    if let Some(r) = remaining.as_mut() {
                        *r -= relationships.len();
                    }
                    if !relationships.is_empty()
                        && sender
                            .blocking_send(Ok(ReadPage {
                                revision,
                                relationships,
                            }))
                            .is_err()
                    {
                        return Ok(()); // the client went away
                    }
                    if done {
                        return Ok(());
                    }
                }
            })();
            if let Err(err) = result {
                let _ = sender.blocking_send(Err(err));
            }
        });
        Ok(receiver)
    }

    /// The changes committed after `after` (at most `limit` revisions).
    pub async fn changes_since(
        &self,
        after: Revision,
        limit: usize,
    ) -> Result<Vec<LoggedRevision>, ApiError> {
        let engine = Arc::clone(&self.engine);
        blocking(move || Ok(engine.changes_since(after, limit)?)).await
    }

    /// Part `part` of the changes of the bulk revision `revision`.
    pub async fn bulk_changes(
        &self,
        revision: Revision,
        part: u32,
    ) -> Result<Vec<Change>, ApiError> {
        let engine = Arc::clone(&self.engine);
        blocking(move || Ok(engine.bulk_changes(revision, part)?)).await
    }

    /// The head revision.
    pub fn head_revision(&self) -> Revision {
        self.engine.head_revision()
    }

    /// Where a watch starts: after the token's revision, or after the head without one. A
    /// token from the future is refused.
    pub fn watch_start(&self, token: Option<&str>) -> Result<Revision, ApiError> {
        let head = self.head_revision();
        let Some(token) = token.filter(|t| !t.is_empty()) else {
            return Ok(head);
        };
        let revision = self.revision_of(token)?;
        if revision > head {
            return Err(ApiError::invalid(format!(
                "watch cursor revision {revision} is in the future: the newest revision is {head}"
            )));
        }
        let oldest = self.engine.oldest_revision();
        if revision < oldest {
            return Err(EngineError::from(StoreError::RevisionUnavailable {
                requested: revision,
                oldest,
                head,
            })
            .into());
        }
        Ok(revision)
    }

    /// Follows the write log after `start`: every committed revision's changes in order, and
    /// a checkpoint whenever the stream has been idle for `checkpoint`. Ends when the
    /// receiver is dropped or `shutdown` becomes `true`.
    pub fn watch(
        self: &Arc<Self>,
        start: Revision,
        checkpoint: Duration,
        mut shutdown: watch::Receiver<bool>,
    ) -> mpsc::Receiver<Result<WatchEvent, ApiError>> {
        let (sender, receiver) = mpsc::channel(16);
        let service = Arc::clone(self);
        tokio::spawn(async move {
            let mut heads = service.subscribe_head();
            let mut after = start;
            loop {
                let batches = match service.changes_since(after, 100).await {
                    Ok(batches) => batches,
                    Err(err) => {
                        let _ = sender.send(Err(err)).await;
                        return;
                    }
                };
                let idle = batches.is_empty();
                for LoggedRevision {
                    revision,
                    changes,
                    bulk,
                    ..
                } in batches
                {
                    let Some(summary) = bulk else {
                        after = revision;
                        let event = WatchEvent::Changes {
                            revision,
                            changes,
                            partial: false,
                        };
                        if sender.send(Ok(event)).await.is_err() {
                            return;
                        }
                        continue;
                    };
                    // An import's changes go out part by part.
                    for part in 1..=summary.parts {
                        let changes = match service.bulk_changes(revision, part).await {
                            Ok(changes) => changes,
                            Err(err) => {
                                let _ = sender.send(Err(err)).await;
                                return;
                            }
                        };
                        let event = WatchEvent::Changes {
                            revision,
                            changes,
                            partial: part < summary.parts,
                        };
                        if sender.send(Ok(event)).await.is_err() {
                            return;
                        }
                    }
                    after = revision;
                }
                if !idle {
                    continue;
                }
                tokio::select! {
                    changed = heads.changed() => if changed.is_err() { return },
                    () = tokio::time::sleep(checkpoint) => {
                        if sender.send(Ok(WatchEvent::Checkpoint(after))).await.is_err() {
                            return;
                        }
                    }
                    () = stopped(&mut shutdown) => return,
                    () = sender.closed() => return,
                }
            }
        });
        receiver
    }
}

/// Resolves once `shutdown` turns `true` (or its sender is gone).
pub async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|stopping| *stopping).await.map(|_| ());
}

/// One step of a watch stream.
#[derive(Debug, Clone)]
pub enum WatchEvent {
    /// The changes committed at `revision` (all of them, or one part of an import's).
    Changes {
        /// The revision.
        revision: Revision,
        /// What it changed, in order.
        changes: Vec<Change>,
        /// More changes of this revision follow (an import is sent part by part): the stream
        /// is then complete only through the revision before.
        partial: bool,
    },
    /// Nothing was committed for a while; everything through this revision has been sent.
    Checkpoint(Revision),
}

/// The revision a watch message's `changesThrough` names: its own, or the one before when
/// more parts of the revision follow (a client resuming from it gets the whole import again).
pub fn changes_through(revision: Revision, partial: bool) -> Revision {
    if partial {
        Revision(revision.0.saturating_sub(1))
    } else {
        revision
    }
}

/// One item of a bulk check.
#[derive(Debug, Clone)]
pub struct BulkItem {
    /// The resource.
    pub resource: ObjectRef,
    /// The permission.
    pub permission: String,
    /// The subject.
    pub subject: SubjectRef,
    /// Caveat context.
    pub context: Context,
}

/// The answer to one item of a bulk check.
#[derive(Debug, Clone)]
pub struct BulkAnswer {
    /// Has, no, or conditional.
    pub permissionship: Permissionship,
    /// The trace of the walk, when the bulk check was traced.
    pub trace: Option<CheckTrace>,
}

/// A lookup-resources query.
#[derive(Debug, Clone)]
pub struct LookupResources {
    /// The resource type searched.
    pub resource_type: String,
    /// The permission.
    pub permission: String,
    /// Who.
    pub subject: SubjectRef,
    /// Caveat context.
    pub context: Context,
}

/// A lookup-subjects query.
#[derive(Debug, Clone)]
pub struct LookupSubjects {
    /// The resource.
    pub resource: ObjectRef,
    /// The permission.
    pub permission: String,
    /// The subject type searched.
    pub subject_type: String,
    /// The subject relation, if any.
    pub subject_relation: Option<String>,
    /// Caveat context.
    pub context: Context,
}

/// One page of a relationship read.
#[derive(Debug, Clone)]
pub struct ReadPage {
    /// The revision read.
    pub revision: Revision,
    /// The relationships, in key order.
    pub relationships: Vec<Relationship>,
}

/// The items strictly after `after` (by `key`, items being sorted by it), at most `limit`.
fn page<T>(
    items: Vec<T>,
    key: impl Fn(&T) -> &String,
    after: Option<String>,
    limit: Option<usize>,
) -> Vec<T> {
    let start = match &after {
        Some(after) => items.partition_point(|item| key(item) <= after),
        None => 0,
    };
    let limit = limit.unwrap_or(usize::MAX);
    items.into_iter().skip(start).take(limit).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn binding(store: u8, resource_type: &str) -> CursorBinding {
        let filter = RelationshipFilter {
            resource_type: Some(resource_type.to_string()),
            ..RelationshipFilter::default()
        };
        CursorBinding {
            store: StoreId([store; 16]),
            digest: Paged::Read(&filter).digest(),
        }
    }

    #[test]
    fn cursors_round_trip_for_their_own_store_and_request() {
        let doc = binding(1, "doc");
        let text = doc.encode(Revision(9), "doc:1#viewer@user:tom");
        assert_eq!(
            doc.decode(Some(&text)).unwrap(),
            Some(Cursor {
                revision: Revision(9),
                after: "doc:1#viewer@user:tom".into(),
            })
        );
        assert_eq!(doc.decode(Some("")).unwrap(), None);
        assert_eq!(doc.decode(None).unwrap(), None);
    }

    #[test]
    fn cursors_of_another_request_or_store_or_version_are_refused() {
        let text = binding(1, "doc").encode(Revision(9), "doc:1#viewer@user:tom");
        let refused = |binding: CursorBinding, text: &str| {
            let err = binding.decode(Some(text)).unwrap_err();
            assert_eq!(err.code, Code::InvalidArgument);
            err.message
        };
        assert!(refused(binding(1, "folder"), &text).contains("different request"));
        assert!(refused(binding(2, "doc"), &text).contains("another store"));
        let old = URL_SAFE_NO_PAD.encode("9\ndoc:1#viewer@user:tom");
        assert!(refused(binding(1, "doc"), &old).contains("earlier version"));
        assert!(refused(binding(1, "doc"), "not a cursor!").contains("malformed"));
        assert!(
            refused(binding(1, "doc"), &URL_SAFE_NO_PAD.encode([2, 0, 1])).contains("malformed")
        );
    }

    #[test]
    fn pages_resume_after_the_cursor() {
        let items: Vec<String> = ["a", "b", "c", "d"].map(String::from).to_vec();
        assert_eq!(page(items.clone(), |s| s, Some("b".into()), Some(1)), ["c"]);
        assert_eq!(page(items.clone(), |s| s, None, Some(2)), ["a", "b"]);
        assert_eq!(
            page(items, |s| s, Some("d".into()), None),
            Vec::<String>::new()
        );
    }
}
