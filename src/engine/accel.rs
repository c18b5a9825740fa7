//! The engine's accelerators and what keeps them exact: the check cache, the nested-group and
//! arrow indexes, and the log follower that feeds every committed write (the engine's own,
//! direct store writes, expiry sweeps) into the write tracker and the indexes.
//!
//! Nothing here has to be updated before a write becomes visible. Instead, every use checks
//! that the follower has read the log up to the revision in question: a cached answer from
//! revision E is used for a request at revision R only when the tracker has applied every log
//! entry up to `max(E, R)` and none of the answer's dependencies was written in
//! `(min(E, R), max(E, R)]`; an index answers a request at R only when it has applied the log
//! up to R and its relation has not changed after R. Because the log entry of a revision
//! is written in the same atomic batch as its relationships, "the follower has applied R" means
//! it has seen every change a snapshot at R shows. A reader that finds the follower behind
//! simply walks (and may bring the follower up to date first).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use super::arrows::{ArrowIndex, TuplesetIndex};
use super::cache::{CacheStats, CheckCache};
use super::freshness::Tracker;
use super::groups::{GroupIndex, RelationIndex};
use super::plan::{MemberKey, Plan};
use super::EngineError;
use crate::revision::Revision;
use crate::schema::Schema;
use crate::store::{Snapshot, StoreError, TupleStore};
use crate::transaction::{BulkRelation, LoggedRevision, Update, UpdateOp};
use crate::tuple::Relationship;

/// Log entries read per step while catching up.
const FOLLOW_BATCH: usize = 256;

/// The cache, the group index and the log follower of one engine.
#[derive(Debug)]
pub(crate) struct Accel {
    cache: Option<CheckCache>,
    index_enabled: bool,
    tracker: RwLock<Tracker>,
    indexes: RwLock<Option<Indexes>>,
    /// The schema the index is built for, kept to rebuild the index from a snapshot when the
    /// log it follows has been pruned past its position.
    schema: RwLock<Option<(Arc<Schema>, Arc<Plan>)>>,
    /// Held while reading the log or rebuilding the index: one follower at a time.
    following: Mutex<()>,
    /// The revision up to which both the tracker and the index have applied the log.
    position: AtomicU64,
}

impl Accel {
    /// Accelerators starting at `snapshot`'s revision, with the index built from it when
    /// enabled and a schema is installed.
    pub(crate) fn new(
        cache_bytes: u64,
        index_enabled: bool,
        snapshot: &dyn Snapshot,
        schema: Option<(Arc<Schema>, Arc<Plan>)>,
    ) -> Result<Self, EngineError> {
        let revision = snapshot.revision();
        let indexes = match &schema {
            Some((schema, plan)) if index_enabled => Some(Indexes::build(schema, plan, snapshot)?),
            _ => None,
        };
        Ok(Self {
            cache: (cache_bytes > 0).then(|| CheckCache::new(cache_bytes)),
            index_enabled,
            tracker: RwLock::new(Tracker::new(revision)),
            indexes: RwLock::new(indexes),
            schema: RwLock::new(schema),
            following: Mutex::new(()),
            position: AtomicU64::new(revision.0),
        })
    }

    /// The check cache, when enabled.
    pub(crate) fn cache(&self) -> Option<&CheckCache> {
        self.cache.as_ref()
    }

    /// Cache counters (all zero when the cache is off).
    pub(crate) fn cache_stats(&self) -> CacheStats {
        self.cache
            .as_ref()
            .map(CheckCache::stats)
            .unwrap_or_default()
    }

    /// Whether anything here needs the write log.
    fn active(&self) -> bool {
        self.cache.is_some() || self.index_enabled
    }

    /// Whether [`Accel::follow`] has nothing to read: inactive, or at the store's head.
    pub(crate) fn caught_up(&self, store: &dyn TupleStore) -> bool {
        !self.active() || Revision(self.position.load(Ordering::Acquire)) >= store.head_revision()
    }

    /// Brings the tracker and the index up to the store's head. With `wait`, waits for another
    /// thread that is already doing it; without, leaves it to that thread. Failures to read the
    /// log only leave the accelerators behind (so unused), never wrong.
    pub(crate) fn follow(&self, store: &dyn TupleStore, wait: bool) {
        if !self.active()
            || Revision(self.position.load(Ordering::Acquire)) >= store.head_revision()
        {
            return;
        }
        let _guard = if wait {
            self.following
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
        } else {
            match self.following.try_lock() {
                Ok(guard) => guard,
                Err(std::sync::TryLockError::Poisoned(poisoned)) => poisoned.into_inner(),
                Err(std::sync::TryLockError::WouldBlock) => return,
            }
        };
        self.follow_locked(store);
    }

    fn follow_locked(&self, store: &dyn TupleStore) {
        loop {
            let from = self.read_position();
            let entries = match store.changes_since(from, FOLLOW_BATCH) {
                Ok(entries) => entries,
                Err(StoreError::RevisionUnavailable { oldest, .. }) => {
                    // The log no longer reaches back to what was applied (history was pruned
                    // while this node was behind): start again from a snapshot.
                    tracing::info!(%from, %oldest, "the write log was pruned past the accelerators; rebuilding them from a snapshot");
                    if let Err(err) = self.rebuild(store) {
                        tracing::warn!(error = %err, "cannot rebuild the accelerators; cache and group index wait");
                        return;
                    }
                    continue;
                }
                Err(err) => {
                    tracing::warn!(error = %err, "cannot read the write log; cache and group index wait");
                    return;
                }
            };
            if entries.is_empty() {
                return;
            }
            // Ordinary entries go in runs; a bulk revision (an import) is applied on its own.
            for run in entries.chunk_by(|a, b| a.bulk.is_none() && b.bulk.is_none()) {
                let Some(last) = run.last().map(|entry| entry.revision) else {
                    continue;
                };
                match run {
                    [entry] if entry.bulk.is_some() => {
                        if let Err(err) = self.apply_bulk(store, entry) {
                            tracing::warn!(error = %err, revision = %entry.revision, "cannot read an import's log; cache and group index wait");
                            return;
                        }
                    }
                    _ => {
                        let changes: Vec<(Revision, bool, &Relationship)> = run
                            .iter()
                            .flat_map(|entry| {
                                entry.changes.iter().map(move |c| {
                                    (entry.revision, c.op == UpdateOp::Delete, &c.relationship)
                                })
                            })
                            .collect();
                        self.apply(&changes, run, last);
                    }
                }
                self.position.store(last.0, Ordering::Release);
            }
        }
    }

    /// Starts over at a fresh snapshot: the tracker knows nothing before it (so no cached
    /// answer from before is used again; they are dropped), and the index is built from it.
    /// Called with `following` held.
    fn rebuild(&self, store: &dyn TupleStore) -> Result<(), EngineError> {
        *self.indexes.write().unwrap_or_else(PoisonError::into_inner) = None;
        if let Some(cache) = &self.cache {
            cache.clear();
        }
        let snapshot = store.snapshot()?;
        let revision = snapshot.revision();
        let schema = self
            .schema
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let index = match schema {
            Some((schema, plan)) if self.index_enabled => {
                Some(Indexes::build(&schema, &plan, snapshot.as_ref())?)
            }
            _ => None,
        };
        drop(snapshot);
        *self.tracker.write().unwrap_or_else(PoisonError::into_inner) = Tracker::new(revision);
        *self.indexes.write().unwrap_or_else(PoisonError::into_inner) = index;
        self.position.store(revision.0, Ordering::Release);
        Ok(())
    }

    /// Applies a bulk revision: the tracker learns its relations from the summary; the group
    /// index reads its parts only when it wrote an indexed relation, keeping those changes.
    fn apply_bulk(
        &self,
        store: &dyn TupleStore,
        entry: &LoggedRevision,
    ) -> Result<(), EngineError> {
        let Some(summary) = &entry.bulk else {
            return Ok(());
        };
        let wanted: Vec<&BulkRelation> = {
            let indexes = self.indexes.read().unwrap_or_else(PoisonError::into_inner);
            match indexes.as_ref() {
                Some(index) => summary
                    .relations
                    .iter()
                    .filter(|r| index.covers(&r.resource_type, &r.relation))
                    .collect(),
                None => Vec::new(),
            }
        };
        // Only the parts that hold changes of an indexed relation are read.
        let mut parts: Vec<u32> = wanted
            .iter()
            .flat_map(|r| r.first_part..=r.last_part)
            .collect();
        parts.sort_unstable();
        parts.dedup();
        let mut kept = Vec::new();
        for part in parts {
            kept.extend(
                store
                    .bulk_part(entry.revision, part)?
                    .into_iter()
                    .filter(|c| {
                        wanted.iter().any(|r| {
                            c.relationship.resource.object_type == r.resource_type
                                && c.relationship.relation == r.relation
                        })
                    }),
            );
        }
        let changes: Vec<(Revision, bool, &Relationship)> = kept
            .iter()
            .map(|c| (entry.revision, c.op == UpdateOp::Delete, &c.relationship))
            .collect();
        {
            let mut indexes = self.indexes.write().unwrap_or_else(PoisonError::into_inner);
            if let Some(index) = indexes.as_mut() {
                index.apply(&changes, entry.revision);
            }
        }
        self.tracker
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .record_relations(
                entry.revision,
                summary
                    .relations
                    .iter()
                    .map(|r| (r.resource_type.as_str(), r.relation.as_str())),
            );
        Ok(())
    }

    /// Feeds changes (in revision order, up to and including revision `through`) to the
    /// index and the tracker; `entries` lists every revision with its changes' relationships
    /// for the tracker.
    fn apply(
        &self,
        changes: &[(Revision, bool, &Relationship)],
        entries: &[LoggedRevision],
        through: Revision,
    ) {
        {
            let mut indexes = self.indexes.write().unwrap_or_else(PoisonError::into_inner);
            if let Some(index) = indexes.as_mut() {
                index.apply(changes, through);
            }
        }
        let mut tracker = self.tracker.write().unwrap_or_else(PoisonError::into_inner);
        for entry in entries {
            tracker.record(
                entry.revision,
                entry.changes.iter().map(|c| &c.relationship),
            );
        }
    }

    /// After the engine's own write at `revision`: when the accelerators have read every
    /// revision before it, `updates` are exactly that revision's changes (a delete of something
    /// absent is logged as nothing, and recording it anyway only makes the tracker more
    /// cautious and leaves the index as it is), so they are applied without reading the log
    /// back; otherwise the log is read as usual.
    pub(crate) fn after_own_write(
        &self,
        store: &dyn TupleStore,
        revision: Revision,
        updates: &[Update],
    ) {
        if !self.active() {
            return;
        }
        let _guard = self
            .following
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if self.read_position().next() != revision {
            self.follow_locked(store);
            return;
        }
        let changes: Vec<(Revision, bool, &Relationship)> = updates
            .iter()
            .map(|u| (revision, u.op == UpdateOp::Delete, &u.relationship))
            .collect();
        {
            let mut indexes = self.indexes.write().unwrap_or_else(PoisonError::into_inner);
            if let Some(index) = indexes.as_mut() {
                index.apply(&changes, revision);
            }
        }
        self.tracker
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .record(revision, updates.iter().map(|u| &u.relationship));
        self.position.store(revision.0, Ordering::Release);
    }

    /// The revision both the tracker and the indexes have applied.
    fn read_position(&self) -> Revision {
        let tracker = self
            .tracker
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .applied();
        let indexes = self
            .indexes
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .map_or(tracker, Indexes::applied);
        tracker.min(indexes)
    }

    /// A new schema is in force: drops every cached answer and rebuilds the index for it.
    pub(crate) fn schema_changed(
        &self,
        store: &dyn TupleStore,
        schema: &Arc<Schema>,
        plan: &Arc<Plan>,
    ) -> Result<(), EngineError> {
        if let Some(cache) = &self.cache {
            cache.clear();
        }
        if !self.index_enabled {
            return Ok(());
        }
        let _guard = self
            .following
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        *self.schema.write().unwrap_or_else(PoisonError::into_inner) =
            Some((Arc::clone(schema), Arc::clone(plan)));
        *self.indexes.write().unwrap_or_else(PoisonError::into_inner) = None;
        let snapshot = store.snapshot()?;
        let index = Indexes::build(schema, plan, snapshot.as_ref())?;
        drop(snapshot);
        *self.indexes.write().unwrap_or_else(PoisonError::into_inner) = Some(index);
        // The tracker may be behind the snapshot the index was built from: catch both up.
        self.follow_locked(store);
        Ok(())
    }

    /// Whether none of `dependencies` was written between revisions `a` and `b`.
    pub(crate) fn unchanged_between(
        &self,
        dependencies: &[MemberKey],
        a: Revision,
        b: Revision,
    ) -> bool {
        self.tracker
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .unchanged_between(dependencies, a, b)
    }

    /// Runs `f` on the indexes if they are on, built for schema `generation` and not being
    /// updated right now; `None` otherwise.
    fn with_indexes<R>(&self, generation: u64, f: impl FnOnce(&Indexes) -> Option<R>) -> Option<R> {
        if !self.index_enabled {
            return None;
        }
        let indexes = self.indexes.try_read().ok()?;
        let indexes = indexes.as_ref()?;
        if indexes.groups.generation() != generation {
            return None;
        }
        f(indexes)
    }

    /// Runs `f` on the group index of `object_type#relation` if it is exact for `revision`
    /// under schema `generation` and not being updated right now; `None` otherwise (then walk).
    pub(crate) fn with_group_index<R>(
        &self,
        generation: u64,
        revision: Revision,
        object_type: &str,
        relation: &str,
        f: impl FnOnce(&RelationIndex) -> R,
    ) -> Option<R> {
        self.with_indexes(generation, |indexes| {
            indexes
                .groups
                .relation(generation, object_type, relation, revision)
                .map(f)
        })
    }

    /// Runs `f` on the arrow index of `object_type#relation` if it is exact for `revision`
    /// under schema `generation` and not being updated right now; `None` otherwise (then read
    /// the store).
    pub(crate) fn with_arrow_index<R>(
        &self,
        generation: u64,
        revision: Revision,
        object_type: &str,
        relation: &str,
        f: impl FnOnce(&TuplesetIndex) -> R,
    ) -> Option<R> {
        self.with_indexes(generation, |indexes| {
            if revision > indexes.applied() {
                return None;
            }
            indexes
                .arrows
                .relation(object_type, relation, revision)
                .map(f)
        })
    }
}

/// The indexes that follow the write log together, built from one snapshot for one schema
/// generation: the nested-group index and the arrow index.
#[derive(Debug)]
struct Indexes {
    groups: GroupIndex,
    arrows: ArrowIndex,
}

impl Indexes {
    /// Both indexes of `plan`, built from `snapshot`.
    fn build(schema: &Schema, plan: &Plan, snapshot: &dyn Snapshot) -> Result<Self, StoreError> {
        Ok(Self {
            groups: GroupIndex::build(schema, plan, snapshot)?,
            arrows: ArrowIndex::build(plan, snapshot)?,
        })
    }

    /// The last log revision applied.
    fn applied(&self) -> Revision {
        self.groups.applied()
    }

    /// Whether either index covers `object_type#relation`.
    fn covers(&self, object_type: &str, relation: &str) -> bool {
        self.groups.covers(object_type, relation) || self.arrows.covers(object_type, relation)
    }

    /// Applies changes in revision order, up to and including revision `through`; those at or
    /// before the revision already applied are skipped.
    fn apply(&mut self, changes: &[(Revision, bool, &Relationship)], through: Revision) {
        let applied = self.groups.applied();
        let first_new = changes.partition_point(|(revision, _, _)| *revision <= applied);
        if let Some(new) = changes.get(first_new..) {
            self.arrows.apply(new);
        }
        self.groups.apply(changes, through);
    }
}
