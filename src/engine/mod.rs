//! The engine: answers check, expand and lookups by walking a schema's rewrite rules over
//! the relationships of one store snapshot, and validates writes against the schema.
//!
//! Invariants: every request reads exactly one [`Snapshot`]; an error is never turned into
//! "allowed"; recursion carries a depth budget and running out is an error, not a "no"; the
//! check cache, the nested-group index and the arrow index never change an answer (see
//! `accel`).

mod accel;
mod admission;
mod arrows;
mod cache;
mod caveat;
mod cel_value;
mod check;
mod error;
mod expand;
mod found_resources;
mod freshness;
mod groups;
mod id_set;
mod import;
mod interrupt;
mod lookup_resources;
mod lookup_subjects;
mod outcome;
mod plan;
mod subject_set;
mod sweeper;
mod trace;
mod write;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

pub use admission::{Admission, CancelOnDrop};
pub use cache::CacheStats;
pub use error::EngineError;
pub use expand::{ExpandNode, ExpandTree, ExpandedSubject};
pub use found_resources::FoundResources;
pub use import::{ImportError, ImportOutcome};
pub use interrupt::Interrupt;
pub use lookup_subjects::{FoundSubject, FoundSubjects};
pub use outcome::Permissionship;
pub use sweeper::ExpirySweeper;
pub use trace::{
    CaveatResult, CaveatTrace, CheckTrace, MemberKind, Operation, StepSource, TraceStep,
};

use crate::filter::RelationshipFilter;
use crate::revision::{Consistency, Revision, StoreId};
use crate::schema::{self, Member, Schema};
use crate::store::{
    apply_relationship_updates, apply_transaction, Periodic, Snapshot, StoreError, TupleStore,
    WriteTxn, Writes,
};
use crate::transaction::{DeleteOutcome, LoggedRevision, Precondition, Transaction, Update};
use crate::tuple::{ObjectRef, Relationship, SubjectRef};
use accel::Accel;
use interrupt::Ticker;
use plan::Plan;

/// Default recursion budget for one request.
pub const DEFAULT_MAX_DEPTH: u32 = 50;

/// Default bound of the check cache: 64 MiB.
pub const DEFAULT_CACHE_BYTES: u64 = 64 << 20;

/// Tunables of the engine.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// How many nested steps (subject sets, arrows, computed relations) one request may take.
    pub max_depth: u32,
    /// Bytes the check cache may hold (about); 0 turns it off. Default
    /// [`DEFAULT_CACHE_BYTES`].
    pub cache_bytes: u64,
    /// Keep the nested-group index of self-recursive relations (`member: user | group#member`)
    /// so membership through any nesting is a bitmap probe, and the arrow index of the
    /// relations arrows follow so lookup-resources crosses an arrow without a seek per subject.
    /// Default on.
    pub group_index: bool,
    /// Answer an arrow over many relationships (`org->project_get` where the organization has
    /// a role binding per member) from the subject's side: the targets the subject can reach
    /// through the reverse index, then a point read of each in the arrow's relation. Default on.
    pub reverse_arrows: bool,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            max_depth: DEFAULT_MAX_DEPTH,
            cache_bytes: DEFAULT_CACHE_BYTES,
            group_index: true,
            reverse_arrows: true,
        }
    }
}

impl EngineConfig {
    /// The plain walk: no cache, no group index, arrows walked forwards (what the accelerated
    /// engine must agree with).
    pub fn plain() -> Self {
        Self {
            cache_bytes: 0,
            group_index: false,
            reverse_arrows: false,
            ..Self::default()
        }
    }
}

/// Caveat parameters supplied with a request.
pub type Context = Map<String, Value>;

/// A schema with what the engine derived from it, and the revision that wrote it.
#[derive(Debug, Clone)]
struct Installed {
    schema: Arc<Schema>,
    plan: Arc<Plan>,
    /// The revision that wrote this schema (see [`Snapshot::schema_revision`]).
    revision: Revision,
}

/// The authorization engine over one store.
pub struct Engine {
    store: Arc<dyn TupleStore>,
    /// The newest schema this engine has seen in the store; reads at a revision with another
    /// schema use that one instead (see [`Engine::schema_of`]).
    schema: RwLock<Option<Installed>>,
    config: EngineConfig,
    accel: Accel,
    /// The generation number the next compiled schema gets.
    generations: AtomicU64,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// The answer to a check, with the revision it was computed at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckResult {
    /// Has, no, or conditional.
    pub permissionship: Permissionship,
    /// The snapshot revision the answer reflects.
    pub revision: Revision,
}

/// The answer to a traced check and the trace of its walk.
#[derive(Debug, Clone, PartialEq)]
pub struct TracedCheck {
    /// The answer.
    pub result: CheckResult,
    /// Every step the walk took.
    pub trace: CheckTrace,
}

impl Engine {
    /// An engine over `store`, loading the schema stored there (if any).
    ///
    /// With the group index on, this builds it and the arrow index from the store (a scan of
    /// every self-recursive relation and every relation an arrow follows).
    pub fn new(store: Arc<dyn TupleStore>, config: EngineConfig) -> Result<Self, EngineError> {
        let snapshot = store.snapshot()?;
        let installed = match snapshot.schema_text()? {
            Some(text) => {
                let schema = Arc::new(schema::compile(&text)?);
                let plan = Arc::new(Plan::new(&schema, 1));
                Some(Installed {
                    schema,
                    plan,
                    revision: snapshot.schema_revision(),
                })
            }
            None => None,
        };
        let accel = Accel::new(
            config.cache_bytes,
            config.group_index,
            snapshot.as_ref(),
            installed
                .as_ref()
                .map(|i| (Arc::clone(&i.schema), Arc::clone(&i.plan))),
        )?;
        drop(snapshot);
        Ok(Self {
            store,
            schema: RwLock::new(installed),
            config,
            accel,
            generations: AtomicU64::new(2),
        })
    }

    fn installed(&self) -> Option<Installed> {
        self.schema
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// The schema in force at `snapshot`: the installed one when the snapshot's schema
    /// revision is the installed one's; otherwise the snapshot's own schema text, compiled,
    /// and installed when it is newer (a schema written by another process or node, or by a
    /// concurrent writer here). Reads never use a schema other than their revision's.
    fn schema_of(&self, snapshot: &dyn Snapshot) -> Result<Installed, EngineError> {
        let wanted = snapshot.schema_revision();
        let current = self.installed();
        if let Some(installed) = current.as_ref().filter(|i| i.revision == wanted) {
            return Ok(installed.clone());
        }
        let text = snapshot.schema_text()?.ok_or(EngineError::NoSchema)?;
        let compiled = self.compiled(schema::compile(&text)?, wanted);
        if current.is_none_or(|c| c.revision < wanted) {
            self.install(compiled.clone())?;
        }
        Ok(compiled)
    }

    /// `schema` with a new generation's plan, labelled as written at `revision`.
    fn compiled(&self, schema: Schema, revision: Revision) -> Installed {
        let schema = Arc::new(schema);
        let plan = Arc::new(Plan::new(
            &schema,
            self.generations.fetch_add(1, Ordering::Relaxed),
        ));
        Installed {
            schema,
            plan,
            revision,
        }
    }

    /// Makes `newer` the installed schema unless one at least as new is installed already,
    /// and rebuilds the accelerators for it.
    fn install(&self, newer: Installed) -> Result<(), EngineError> {
        {
            let mut guard = self
                .schema
                .write()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            if guard.as_ref().is_some_and(|i| i.revision >= newer.revision) {
                return Ok(());
            }
            *guard = Some(newer.clone());
        }
        self.accel
            .schema_changed(self.store.as_ref(), &newer.schema, &newer.plan)
    }

    /// The schema in force at the head revision.
    pub fn schema(&self) -> Result<Arc<Schema>, EngineError> {
        let snapshot = self.store.snapshot()?;
        Ok(self.schema_of(snapshot.as_ref())?.schema)
    }

    /// Hit and miss counts and the size of the check cache (zeros when it is off).
    pub fn cache_stats(&self) -> CacheStats {
        self.accel.cache_stats()
    }

    /// Starts a background thread that removes expired relationships every `every`; it stops
    /// when the returned handle is dropped.
    pub fn start_expiry_sweeper(
        &self,
        every: std::time::Duration,
    ) -> std::io::Result<ExpirySweeper> {
        ExpirySweeper::start(Arc::clone(&self.store), every)
    }

    /// The newest revision this engine knows to be committed (on a shared database, another
    /// node may be ahead until the next read or [`Engine::refresh`]).
    pub fn head_revision(&self) -> Revision {
        self.store.head_revision()
    }

    /// Whether a read started now may run on a thread that must not wait long: the store reads
    /// local data only, and opening a view has no write log to follow first. A short walk
    /// (see [`Interrupt::with_step_limit`]) is then answered without a hop to another thread.
    pub fn reads_inline(&self) -> bool {
        self.store.reads_are_local() && self.accel.caught_up(self.store.as_ref())
    }

    /// The oldest revision whose changes are still in the log (history before it was pruned).
    pub fn oldest_revision(&self) -> Revision {
        self.store.oldest_revision()
    }

    /// Looks at the store's head: installs a schema written elsewhere, and brings the check
    /// cache and the nested-group index up to it by reading the change log. Returns the head.
    /// What a node sharing its database with others runs in the background, so an idle node
    /// stays current; fails (and changes nothing) when the store cannot be read.
    pub fn refresh(&self) -> Result<Revision, EngineError> {
        let snapshot = self.store.snapshot()?;
        let head = snapshot.revision();
        if snapshot.schema_revision() != Revision::ZERO {
            self.schema_of(snapshot.as_ref())?;
        }
        drop(snapshot);
        self.accel.follow(self.store.as_ref(), true);
        Ok(head)
    }

    /// Starts a thread that runs [`Engine::refresh`] every `every` and calls `on_head` with
    /// each head it finds newer than the last (e.g. to wake watch streams); it stops when the
    /// handle is dropped. Failures are logged and retried at the next tick.
    pub fn start_follower(
        engine: &Arc<Engine>,
        every: std::time::Duration,
        on_head: impl Fn(Revision) + Send + 'static,
    ) -> std::io::Result<Periodic> {
        let engine = Arc::clone(engine);
        let mut last = engine.head_revision();
        let mut failing = false;
        Periodic::start("zanzi-log-follower", every, move || {
            match engine.refresh() {
                Ok(head) => {
                    if failing {
                        tracing::info!(%head, "the store is readable again");
                        failing = false;
                    }
                    if head > last {
                        last = head;
                        on_head(head);
                    }
                }
                Err(err) => {
                    if !failing {
                        tracing::warn!(error = %err, "cannot follow the store");
                        failing = true;
                    }
                }
            }
        })
    }

    /// Compiles and stores a new schema, refusing changes that would orphan stored
    /// relationships. The orphan check reads the head inside the write transaction, so no
    /// relationship write can slip in between the check and the commit.
    pub fn write_schema(&self, text: &str) -> Result<Revision, EngineError> {
        let compiled = schema::compile(text)?;
        let (outcome, ()) = self.store.write_with(|txn| {
            let head = txn.head();
            let current = match head.schema_text()? {
                Some(_) => Some(self.schema_of(head)?.schema),
                None => None,
            };
            write::check_no_orphans(head, current.as_deref(), &compiled)?;
            txn.put_schema(text)?;
            Ok::<_, EngineError>(())
        })?;
        self.install(self.compiled(compiled, outcome.revision))?;
        Ok(outcome.revision)
    }

    /// Validates every update against the schema, then applies them atomically.
    pub fn write_relationships(
        &self,
        updates: &[Update],
        preconditions: &[Precondition],
    ) -> Result<Revision, EngineError> {
        self.validated_write(updates, preconditions, |txn| {
            apply_relationship_updates(txn, updates, preconditions)
        })
    }

    /// Validates the transaction's relationship updates and preconditions against the schema,
    /// then applies it atomically: relationship updates and record changes at one revision.
    pub fn transact(&self, transaction: &Transaction) -> Result<Revision, EngineError> {
        self.validated_write(&transaction.updates, &transaction.preconditions, |txn| {
            apply_transaction(txn, transaction)
        })
    }

    /// Validates `updates` and `preconditions` against the schema, then runs `apply` in one
    /// write transaction and brings the accelerators up to the revision it committed.
    fn validated_write(
        &self,
        updates: &[Update],
        preconditions: &[Precondition],
        apply: impl Fn(&mut dyn WriteTxn) -> Result<(), StoreError>,
    ) -> Result<Revision, EngineError> {
        // Validated against the installed schema outside the write lock; inside, only a
        // schema written meanwhile makes the transaction validate again, against it.
        let checked = match self.installed() {
            Some(installed) => {
                validate_transaction(&installed.schema, updates, preconditions)?;
                Some(installed.revision)
            }
            None => None,
        };
        let (outcome, ()) = self.store.write_with(|txn| {
            if checked != Some(txn.head().schema_revision()) {
                validate_transaction(&self.schema_of(txn.head())?.schema, updates, preconditions)?;
            }
            apply(txn)?;
            Ok::<_, EngineError>(())
        })?;
        if outcome.committed {
            // Readers would catch up by themselves; the writer doing it keeps them from paying.
            self.accel
                .after_own_write(self.store.as_ref(), outcome.revision, updates);
        }
        Ok(outcome.revision)
    }

    /// Builds a transaction from the head state and applies it, both inside one write
    /// transaction: nothing `build` read can change before the commit, so invariants that
    /// span several writers (unique names, a last owner) hold on every backend. `build` may
    /// run more than once (a backend retrying a conflict) and must only read.
    pub fn transact_with<E>(
        &self,
        mut build: impl FnMut(&ReadView<'_>) -> Result<Transaction, E>,
    ) -> Result<Revision, E>
    where
        E: From<EngineError> + std::error::Error + Send + Sync + 'static,
    {
        let written = self.store.write_with(|txn| {
            let caller = |err: EngineError| BodyError::Caller(E::from(err));
            let installed = self.schema_of(txn.head()).map_err(caller)?;
            let transaction = {
                let view = self.view_of(SnapshotHandle::Borrowed(txn.head()), installed.clone());
                build(&view).map_err(BodyError::Caller)?
            };
            validate_transaction(
                &installed.schema,
                &transaction.updates,
                &transaction.preconditions,
            )
            .map_err(caller)?;
            apply_transaction(txn, &transaction)?;
            Ok::<_, BodyError<E>>(transaction.updates)
        });
        let (outcome, updates) = written.map_err(BodyError::into_inner)?;
        if outcome.committed {
            self.accel
                .after_own_write(self.store.as_ref(), outcome.revision, &updates);
        }
        Ok(outcome.revision)
    }

    /// Deletes relationships matching `filter` (at most `limit`) atomically.
    pub fn delete_relationships(
        &self,
        filter: &RelationshipFilter,
        preconditions: &[Precondition],
        limit: Option<usize>,
    ) -> Result<DeleteOutcome, EngineError> {
        let schema = self.schema()?;
        write::validate_filter(&schema, filter)?;
        let outcome = self.store.delete_matching(filter, preconditions, limit)?;
        self.accel.follow(self.store.as_ref(), true);
        Ok(outcome)
    }

    /// Reads relationships matching `filter`, after the cursor `after`, at most `limit`, at the
    /// head revision.
    pub fn read_relationships(
        &self,
        filter: &RelationshipFilter,
        after: Option<&Relationship>,
        limit: Option<usize>,
    ) -> Result<(Vec<Relationship>, Revision), EngineError> {
        let view = self.at(Consistency::FullyConsistent)?;
        Ok((
            view.read_relationships(filter, after, limit)?,
            view.revision(),
        ))
    }

    /// Does `subject` have `permission` on `resource`? (At the head revision.)
    pub fn check(
        &self,
        resource: &ObjectRef,
        permission: &str,
        subject: &SubjectRef,
        context: &Context,
    ) -> Result<CheckResult, EngineError> {
        self.at(Consistency::FullyConsistent)?
            .check(resource, permission, subject, context)
    }

    /// [`Engine::check`] with the trace of every step the walk took.
    pub fn check_traced(
        &self,
        resource: &ObjectRef,
        permission: &str,
        subject: &SubjectRef,
        context: &Context,
    ) -> Result<TracedCheck, EngineError> {
        self.at(Consistency::FullyConsistent)?
            .check_traced(resource, permission, subject, context)
    }

    /// The tree of subject sets that make up `resource#permission` at the head revision;
    /// `recursive` also expands every subject set found in a relation.
    pub fn expand(
        &self,
        resource: &ObjectRef,
        permission: &str,
        recursive: bool,
    ) -> Result<(ExpandTree, Revision), EngineError> {
        let view = self.at(Consistency::FullyConsistent)?;
        Ok((
            view.expand(resource, permission, recursive)?,
            view.revision(),
        ))
    }

    /// Every resource of `resource_type` on which `subject` has `permission`, sorted by id,
    /// at the head revision.
    pub fn lookup_resources(
        &self,
        resource_type: &str,
        permission: &str,
        subject: &SubjectRef,
        context: &Context,
    ) -> Result<(FoundResources, Revision), EngineError> {
        let view = self.at(Consistency::FullyConsistent)?;
        let found = view.lookup_resources(resource_type, permission, subject, context)?;
        Ok((found, view.revision()))
    }

    /// Every subject of `subject_type` (with `subject_relation`, if given) that has
    /// `permission` on `resource`, including a wildcard with its exclusions, at the head
    /// revision.
    pub fn lookup_subjects(
        &self,
        resource: &ObjectRef,
        permission: &str,
        subject_type: &str,
        subject_relation: Option<&str>,
        context: &Context,
    ) -> Result<(FoundSubjects, Revision), EngineError> {
        let view = self.at(Consistency::FullyConsistent)?;
        let found = view.lookup_subjects(
            resource,
            permission,
            subject_type,
            subject_relation,
            context,
        )?;
        Ok((found, view.revision()))
    }

    /// The revisions committed after `after`, oldest first (at most `limit`; a schema write
    /// is a revision with no relationship changes).
    pub fn changes_since(
        &self,
        after: Revision,
        limit: usize,
    ) -> Result<Vec<LoggedRevision>, EngineError> {
        Ok(self.store.changes_since(after, limit)?)
    }

    /// Approximate bytes the store occupies.
    pub fn store_size(&self) -> u64 {
        self.store.size_on_disk()
    }

    /// The store's identity (what ZedTokens are bound to).
    pub fn store_id(&self) -> StoreId {
        self.store.store_id()
    }

    /// A read view at the revision `consistency` asks for: every query made through it reads
    /// that one revision, under the schema in force at that revision.
    pub fn at(&self, consistency: Consistency) -> Result<ReadView<'_>, EngineError> {
        let head = self.store.head_revision();
        let snapshot = match consistency {
            Consistency::MinimizeLatency | Consistency::FullyConsistent => self.store.snapshot()?,
            Consistency::AtLeastAsFresh(wanted) => {
                let snapshot = self.store.snapshot()?;
                if wanted > snapshot.revision() {
                    return Err(EngineError::FutureRevision {
                        requested: wanted,
                        head: snapshot.revision(),
                    });
                }
                snapshot
            }
            Consistency::AtExactSnapshot(wanted) => {
                // `head` is the newest revision this process knows of; on a shared database
                // another node may have committed more, so look before refusing.
                let head = if wanted > head {
                    self.store.snapshot()?.revision()
                } else {
                    head
                };
                if wanted > head {
                    return Err(EngineError::FutureRevision {
                        requested: wanted,
                        head,
                    });
                }
                self.store.snapshot_at(wanted)?
            }
        };
        let installed = self.schema_of(snapshot.as_ref())?;
        // Writes that bypassed the engine (expiry sweeps, direct store writes) reach the cache
        // and the index here; if another reader is already catching up, this one walks.
        self.accel.follow(self.store.as_ref(), false);
        Ok(self.view_of(SnapshotHandle::Owned(snapshot), installed))
    }

    fn view_of<'e>(&'e self, snapshot: SnapshotHandle<'e>, installed: Installed) -> ReadView<'e> {
        ReadView {
            snapshot,
            schema: installed.schema,
            plan: installed.plan,
            accel: &self.accel,
            max_depth: self.config.max_depth,
            reverse_arrows: self.config.reverse_arrows,
            interrupt: Interrupt::never(),
        }
    }
}

/// A write body's error: the caller's own, or the store's (which the caller's type wraps
/// through [`EngineError`]).
#[derive(Debug, thiserror::Error)]
enum BodyError<E: std::error::Error> {
    #[error("{0}")]
    Caller(#[source] E),
    #[error("{0}")]
    Store(#[from] StoreError),
}

impl<E: std::error::Error + From<EngineError>> BodyError<E> {
    fn into_inner(self) -> E {
        match self {
            Self::Caller(err) => err,
            Self::Store(err) => E::from(EngineError::from(err)),
        }
    }
}

/// Every relationship update and precondition of `transaction` checked against `schema`.
fn validate_transaction(
    schema: &Schema,
    updates: &[Update],
    preconditions: &[Precondition],
) -> Result<(), EngineError> {
    for update in updates {
        write::validate_update(schema, update)?;
    }
    for precondition in preconditions {
        write::validate_filter(schema, &precondition.filter)?;
    }
    Ok(())
}

/// The snapshot a [`ReadView`] reads: its own, or one it borrows (a write transaction's head).
enum SnapshotHandle<'e> {
    Owned(Box<dyn Snapshot + 'e>),
    Borrowed(&'e dyn Snapshot),
}

impl<'e> SnapshotHandle<'e> {
    fn get(&self) -> &(dyn Snapshot + 'e) {
        match self {
            Self::Owned(snapshot) => snapshot.as_ref(),
            Self::Borrowed(snapshot) => *snapshot,
        }
    }
}

/// One revision of the store with the schema in force: the queries of a request run here.
pub struct ReadView<'e> {
    snapshot: SnapshotHandle<'e>,
    schema: Arc<Schema>,
    plan: Arc<Plan>,
    accel: &'e Accel,
    max_depth: u32,
    reverse_arrows: bool,
    /// Stops this view's walks (deadline, cancellation); never, unless set.
    interrupt: Interrupt,
}

impl std::fmt::Debug for ReadView<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReadView")
            .field("revision", &self.snapshot.get().revision())
            .finish_non_exhaustive()
    }
}

impl ReadView<'_> {
    /// This view with every walk it runs stopped by `interrupt` (a deadline passing or a
    /// cancellation ends the walk with [`EngineError::DeadlineExceeded`] or
    /// [`EngineError::Cancelled`]).
    pub fn interrupted_by(mut self, interrupt: Interrupt) -> Self {
        self.interrupt = interrupt;
        self
    }

    /// `Ok` while this view's work may go on (see [`ReadView::interrupted_by`]).
    pub fn go_on(&self) -> Result<(), EngineError> {
        self.interrupt.check()
    }

    /// The revision this view reads.
    pub fn revision(&self) -> Revision {
        self.snapshot.get().revision()
    }

    /// The schema in force.
    pub fn schema(&self) -> &Arc<Schema> {
        &self.schema
    }

    fn query<'q>(&'q self, context: &'q Context) -> Query<'q> {
        let mut query = Query::new(self.snapshot.get(), &self.schema, context, self.max_depth);
        query.accel = Some(Accelerated::new(self.accel, &self.plan, context));
        query.reverse_arrows = self.reverse_arrows;
        query.ticker = Ticker::new(self.interrupt.clone());
        query
    }

    /// Relationships matching `filter`, after the cursor `after`, at most `limit`.
    pub fn read_relationships(
        &self,
        filter: &RelationshipFilter,
        after: Option<&Relationship>,
        limit: Option<usize>,
    ) -> Result<Vec<Relationship>, EngineError> {
        write::validate_filter(&self.schema, filter)?;
        let mut out = Vec::new();
        let ticker = Ticker::new(self.interrupt.clone());
        for rel in self.snapshot.get().read(filter, after) {
            if limit.is_some_and(|l| out.len() >= l) {
                break;
            }
            ticker.tick()?;
            out.push(rel?);
        }
        Ok(out)
    }

    /// The record `key` of `keyspace` at this revision.
    pub fn record(&self, keyspace: &str, key: &str) -> Result<Option<Vec<u8>>, EngineError> {
        Ok(self.snapshot.get().record(keyspace, key)?)
    }

    /// Every record of `keyspace` whose key starts with `key_prefix`, in key order.
    pub fn records(
        &self,
        keyspace: &str,
        key_prefix: &str,
    ) -> Result<Vec<(String, Vec<u8>)>, EngineError> {
        Ok(self
            .snapshot
            .get()
            .records(keyspace, key_prefix)
            .collect::<Result<Vec<_>, StoreError>>()?)
    }

    /// Every relationship `resource_type:*#relation@subject` for this exact subject (the
    /// reverse index), in resource id order.
    pub fn resources_with_subject(
        &self,
        subject: &SubjectRef,
        resource_type: &str,
        relation: &str,
    ) -> Result<Vec<Relationship>, EngineError> {
        Ok(self
            .snapshot
            .get()
            .resources_with_subject(subject, resource_type, relation)
            .collect::<Result<Vec<_>, StoreError>>()?)
    }

    /// Does `subject` have `permission` on `resource`?
    pub fn check(
        &self,
        resource: &ObjectRef,
        permission: &str,
        subject: &SubjectRef,
        context: &Context,
    ) -> Result<CheckResult, EngineError> {
        caveat::check_request_size(context)?;
        let query = self.query(context);
        query.require_member(&resource.object_type, permission)?;
        query.require_type(&subject.object.object_type)?;
        self.snapshot
            .get()
            .read_ahead(self.plan.read_ahead(&resource.object_type, permission));
        let permissionship = query.check(resource, permission, subject)?;
        Ok(CheckResult {
            permissionship,
            revision: self.revision(),
        })
    }

    /// [`ReadView::check`] with the trace of every step the walk took (off the hot path: a
    /// check that is not traced records nothing).
    pub fn check_traced(
        &self,
        resource: &ObjectRef,
        permission: &str,
        subject: &SubjectRef,
        context: &Context,
    ) -> Result<TracedCheck, EngineError> {
        caveat::check_request_size(context)?;
        let query = self.query(context);
        query.require_member(&resource.object_type, permission)?;
        query.require_type(&subject.object.object_type)?;
        self.snapshot
            .get()
            .read_ahead(self.plan.read_ahead(&resource.object_type, permission));
        let (permissionship, trace) = query.check_traced(resource, permission, subject)?;
        Ok(TracedCheck {
            result: CheckResult {
                permissionship,
                revision: self.revision(),
            },
            trace,
        })
    }

    /// The tree of subject sets that make up `resource#permission`; `recursive` also expands
    /// every subject set found in a relation.
    pub fn expand(
        &self,
        resource: &ObjectRef,
        permission: &str,
        recursive: bool,
    ) -> Result<ExpandTree, EngineError> {
        let context = Context::new();
        let query = self.query(&context);
        query.require_member(&resource.object_type, permission)?;
        query.expand(resource, permission, recursive)
    }

    /// Every resource of `resource_type` on which `subject` has `permission`, sorted by id.
    pub fn lookup_resources(
        &self,
        resource_type: &str,
        permission: &str,
        subject: &SubjectRef,
        context: &Context,
    ) -> Result<FoundResources, EngineError> {
        caveat::check_request_size(context)?;
        let query = self.query(context);
        query.require_member(resource_type, permission)?;
        query.require_type(&subject.object.object_type)?;
        query.lookup_resources(resource_type, permission, subject)
    }

    /// Every subject of `subject_type` (with `subject_relation`, if given) that has
    /// `permission` on `resource`, including a wildcard with its exclusions.
    pub fn lookup_subjects(
        &self,
        resource: &ObjectRef,
        permission: &str,
        subject_type: &str,
        subject_relation: Option<&str>,
        context: &Context,
    ) -> Result<FoundSubjects, EngineError> {
        caveat::check_request_size(context)?;
        let query = self.query(context);
        query.require_member(&resource.object_type, permission)?;
        query.require_type(subject_type)?;
        if let Some(rel) = subject_relation {
            query.require_member(subject_type, rel)?;
        }
        query.lookup_subjects(resource, permission, subject_type, subject_relation)
    }
}

/// One request's view: a snapshot, the schema, the caller's context and the depth budget.
/// Every algorithm (check, expand, lookups) is a method on it.
pub(crate) struct Query<'a> {
    snapshot: &'a dyn Snapshot,
    schema: &'a Schema,
    context: &'a Context,
    max_depth: u32,
    /// The cache and group index, when the request may use them.
    accel: Option<Accelerated<'a>>,
    /// Whether wide arrows may be answered from the subject's side ([`EngineConfig`]).
    reverse_arrows: bool,
    /// Stops the walk at a deadline or on cancellation (tested at every recursive step).
    ticker: Ticker,
}

/// What a request needs to use the engine's cache and group index.
pub(crate) struct Accelerated<'a> {
    accel: &'a Accel,
    plan: &'a Plan,
    /// The request context as cache-key text (empty when the schema has no caveats); `None`
    /// when it cannot be written, and then nothing is cached.
    context_key: Option<Arc<str>>,
}

impl<'a> Accelerated<'a> {
    fn new(accel: &'a Accel, plan: &'a Plan, context: &Context) -> Self {
        let context_key = if accel.cache().is_none() {
            None
        } else if plan.has_caveats && !context.is_empty() {
            serde_json::to_string(context).ok().map(Arc::from)
        } else {
            Some(Arc::from(""))
        };
        Self {
            accel,
            plan,
            context_key,
        }
    }
}

impl<'a> Query<'a> {
    pub(crate) fn new(
        snapshot: &'a dyn Snapshot,
        schema: &'a Schema,
        context: &'a Context,
        max_depth: u32,
    ) -> Self {
        Self {
            snapshot,
            schema,
            context,
            max_depth,
            accel: None,
            reverse_arrows: false,
            ticker: Ticker::new(Interrupt::never()),
        }
    }

    /// One step of a walk: an error once the request's deadline has passed or it was
    /// cancelled.
    fn tick(&self) -> Result<(), EngineError> {
        self.ticker.tick()
    }

    /// The revision the request reads.
    fn revision(&self) -> Revision {
        self.snapshot.revision()
    }

    /// The instant deciding expiration for this request, if the store pins one.
    fn now(&self) -> Option<DateTime<Utc>> {
        self.snapshot.now()
    }

    fn require_type(&self, object_type: &str) -> Result<&'a schema::Definition, EngineError> {
        self.schema
            .definition(object_type)
            .ok_or_else(|| EngineError::UnknownType(object_type.to_string()))
    }

    fn require_member(&self, object_type: &str, name: &str) -> Result<Member<'a>, EngineError> {
        self.require_type(object_type)?
            .member(name)
            .ok_or_else(|| EngineError::UnknownRelation {
                object_type: object_type.to_string(),
                relation: name.to_string(),
            })
    }
}
