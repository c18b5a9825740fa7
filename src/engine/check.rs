//! Check: does a subject have a relation or permission on a resource?
//!
//! Walks the permission's rewrite tree. Unions stop at the first unconditional yes;
//! intersections and exclusions evaluate both sides; arrows read the tupleset relation and
//! check the target on each object; subject sets recurse. A (resource, member) pair already
//! being evaluated on the current path is a cycle and contributes "no" (the least fixed point).
//!
//! With the accelerators on, a self-recursive relation whose nested groups the index covers is
//! answered by one bitmap probe, and answers are looked up in and stored to the check cache:
//! the whole request's answer always, and the answer of a sub-check reached through a subject
//! set or an arrow when its member cannot reach itself in the schema (so its answer cannot
//! depend on the caller's path). The walk records what each answer rests on: the earliest
//! expiration it read, the depth it needed, and whether it was cut short by a pair on the
//! caller's part of the path (then it is not cached).

use std::collections::HashSet;

use chrono::{DateTime, Utc};

use super::cache::{CacheKey, CachedAnswer};
use super::trace::{CheckTrace, Recorder, StepSource};
use super::{caveat, EngineError, Permissionship, Query};
use crate::schema::{AllowedKind, ArrowMode, Member, RelationDefinition, Rewrite};

/// Targets an `Any` arrow walks forwards before it turns to the subject's side.
const REVERSE_ARROW_AFTER: usize = 16;
use crate::tuple::{ObjectRef, Relationship, SubjectRef, WILDCARD_ID};

/// The state of one check walk.
pub(crate) struct Walk {
    /// The (resource, member) pairs on the current recursion path, outermost first (at most
    /// the depth budget long, so a linear search beats hashing).
    path: Vec<(ObjectRef, String)>,
    /// What the answer being computed rests on so far.
    rests_on: RestsOn,
    /// The steps of a traced check (`None`, the default, records nothing).
    trace: Option<Box<Recorder>>,
}

impl Walk {
    pub(crate) fn new() -> Self {
        Self {
            path: Vec::new(),
            rests_on: RestsOn::NOTHING,
            trace: None,
        }
    }

    /// The walk read `rel` (and rests on it).
    fn read(&mut self, rel: &Relationship) {
        self.rests_on.read(rel);
        if let Some(trace) = &mut self.trace {
            trace.read(rel);
        }
    }

    /// The step being resolved is answered by `source` rather than walked.
    fn answered_by(&mut self, source: StepSource) {
        if let Some(trace) = &mut self.trace {
            trace.note(source);
        }
    }
}

/// What an answer rests on.
#[derive(Debug, Clone, Copy)]
struct RestsOn {
    /// The lowest path position where the walk met a pair already on the path.
    lowest_cut: usize,
    /// The lowest remaining depth the walk reached (an index probe counts as the depth its
    /// bound says the walk would have reached).
    lowest_depth: u32,
    /// The earliest expiration among the relationships read.
    expires: Option<DateTime<Utc>>,
}

impl RestsOn {
    const NOTHING: RestsOn = RestsOn {
        lowest_cut: usize::MAX,
        lowest_depth: u32::MAX,
        expires: None,
    };

    fn reach(&mut self, depth: u32) {
        self.lowest_depth = self.lowest_depth.min(depth);
    }

    fn expire(&mut self, at: Option<DateTime<Utc>>) {
        self.expires = match (self.expires, at) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
    }

    fn read(&mut self, rel: &Relationship) {
        self.expire(rel.expiration);
    }

    fn merge(&mut self, inner: RestsOn) {
        self.lowest_cut = self.lowest_cut.min(inner.lowest_cut);
        self.reach(inner.lowest_depth);
        self.expire(inner.expires);
    }
}

impl Query<'_> {
    /// Does `subject` have `member` on `resource`?
    pub(crate) fn check(
        &self,
        resource: &ObjectRef,
        member: &str,
        subject: &SubjectRef,
    ) -> Result<Permissionship, EngineError> {
        if subject.is_wildcard() {
            return Err(EngineError::WildcardSubject(subject.to_string()));
        }
        let mut walk = Walk::new();
        self.check_member(resource, member, subject, self.max_depth, &mut walk, true)
    }

    /// [`Query::check`], recording every step of the walk.
    pub(crate) fn check_traced(
        &self,
        resource: &ObjectRef,
        member: &str,
        subject: &SubjectRef,
    ) -> Result<(Permissionship, CheckTrace), EngineError> {
        if subject.is_wildcard() {
            return Err(EngineError::WildcardSubject(subject.to_string()));
        }
        let mut walk = Walk::new();
        walk.trace = Some(Box::default());
        let answer =
            self.check_member(resource, member, subject, self.max_depth, &mut walk, true)?;
        let recorder = walk.trace.map(|boxed| *boxed).unwrap_or_default();
        let trace = recorder.finish(self.schema, resource, member, subject, &answer);
        Ok((answer, trace))
    }

    /// Every step of the walk goes through here: [`Query::resolve_member`], recorded when the
    /// check is traced (untraced, one branch).
    #[inline]
    fn check_member(
        &self,
        resource: &ObjectRef,
        member: &str,
        subject: &SubjectRef,
        depth: u32,
        walk: &mut Walk,
        hop: bool,
    ) -> Result<Permissionship, EngineError> {
        let Some(trace) = &mut walk.trace else {
            return self.resolve_member(resource, member, subject, depth, walk, hop);
        };
        trace.enter(self.schema, resource, member);
        let result = self.resolve_member(resource, member, subject, depth, walk, hop);
        if let Some(trace) = &mut walk.trace {
            trace.leave(self.schema, self.context, &result);
        }
        result
    }

    /// `hop`: reached through a subject set or an arrow (or the request itself), so a cached
    /// answer may stand in for the sub-check.
    fn resolve_member(
        &self,
        resource: &ObjectRef,
        member: &str,
        subject: &SubjectRef,
        depth: u32,
        walk: &mut Walk,
        hop: bool,
    ) -> Result<Permissionship, EngineError> {
        // A subject set is a member of itself.
        if subject.relation.as_deref() == Some(member) && subject.object == *resource {
            return Ok(Permissionship::Has);
        }
        self.tick()?;
        if depth == 0 {
            return Err(EngineError::MaxDepthExceeded(self.max_depth));
        }
        // With less budget this very step would have failed.
        walk.rests_on.reach(depth);
        let Some(def) = self.schema.definition(&resource.object_type) else {
            return Ok(Permissionship::No);
        };
        let on_path = walk
            .path
            .iter()
            .position(|(object, name)| object == resource && name == member);
        if let Some(position) = on_path {
            walk.rests_on.lowest_cut = walk.rests_on.lowest_cut.min(position);
            walk.answered_by(StepSource::Cycle);
            return Ok(Permissionship::No);
        }
        let definition = def.member(member);
        if let Some(Member::Relation(_)) = definition {
            if let Some(answer) = self.probe_groups(resource, member, subject, depth, walk) {
                walk.answered_by(StepSource::GroupIndex);
                return Ok(answer);
            }
        }
        let position = walk.path.len();
        let cache_key = if hop {
            self.cache_key(resource, member, subject, position)
        } else {
            None
        };
        if let Some(key) = &cache_key {
            if let Some(hit) = self.cache_lookup(key, &resource.object_type, member, depth) {
                walk.rests_on.reach(depth + 1 - hit.depth_needed);
                walk.rests_on.expire(hit.expires);
                walk.answered_by(StepSource::Cache);
                return Ok(hit.answer);
            }
        }
        let outer = std::mem::replace(&mut walk.rests_on, RestsOn::NOTHING);
        walk.rests_on.reach(depth);
        walk.path.push((resource.clone(), member.to_string()));
        let result = match definition {
            Some(Member::Relation(relation)) => {
                self.check_relation(resource, relation, subject, depth, walk)
            }
            Some(Member::Permission(permission)) => {
                self.check_rewrite(resource, &permission.rewrite, subject, depth, walk)
            }
            None => Ok(Permissionship::No),
        };
        walk.path.pop();
        let inner = std::mem::replace(&mut walk.rests_on, outer);
        walk.rests_on.merge(inner);
        if let (Some(key), Ok(answer)) = (cache_key, &result) {
            // Cut short by a pair above this one: the answer depends on the path, keep it out.
            if inner.lowest_cut >= position {
                self.cache_store(key, answer, depth, inner);
            }
        }
        result
    }

    /// Membership in a self-recursive relation from the group index, when it alone can tell.
    fn probe_groups(
        &self,
        resource: &ObjectRef,
        relation: &str,
        subject: &SubjectRef,
        depth: u32,
        walk: &mut Walk,
    ) -> Option<Permissionship> {
        let accel = self.accel.as_ref()?;
        if !accel
            .plan
            .is_self_recursive(&resource.object_type, relation)
        {
            return None;
        }
        let probe = accel
            .accel
            .with_group_index(
                accel.plan.generation,
                self.revision(),
                &resource.object_type,
                relation,
                |index| index.probe(&resource.object_id, subject, depth),
            )
            .flatten()?;
        walk.rests_on.reach(depth - probe.bound);
        Some(if probe.member {
            Permissionship::Has
        } else {
            Permissionship::No
        })
    }

    /// The cache key of a sub-check at `position` on the path, if its answer may be cached.
    fn cache_key(
        &self,
        resource: &ObjectRef,
        member: &str,
        subject: &SubjectRef,
        position: usize,
    ) -> Option<CacheKey> {
        let accel = self.accel.as_ref()?;
        let context = accel.context_key.as_ref()?;
        if position > 0 && !accel.plan.is_acyclic(&resource.object_type, member) {
            return None;
        }
        Some(CacheKey::new(
            accel.plan.generation,
            resource,
            member,
            subject,
            context,
        ))
    }

    /// A cached answer that may answer this request with `depth` levels left.
    fn cache_lookup(
        &self,
        key: &CacheKey,
        object_type: &str,
        member: &str,
        depth: u32,
    ) -> Option<CachedAnswer> {
        let accel = self.accel.as_ref()?;
        let cache = accel.accel.cache()?;
        let hit = cache.get(key).filter(|entry| {
            entry.usable(self.now(), depth)
                && accel.accel.unchanged_between(
                    &accel.plan.dependencies(object_type, member),
                    entry.revision,
                    self.revision(),
                )
        });
        cache.count(hit.is_some());
        hit
    }

    fn cache_store(&self, key: CacheKey, answer: &Permissionship, depth: u32, rests_on: RestsOn) {
        let Some(cache) = self.accel.as_ref().and_then(|a| a.accel.cache()) else {
            return;
        };
        let now = self.now();
        if rests_on.expires.is_some() && now.is_none() {
            return;
        }
        cache.insert(
            key,
            CachedAnswer {
                answer: answer.clone(),
                revision: self.revision(),
                computed_at: now,
                expires: rests_on.expires,
                depth_needed: depth
                    .saturating_add(1)
                    .saturating_sub(rests_on.lowest_depth),
            },
        );
    }

    fn check_relation(
        &self,
        resource: &ObjectRef,
        relation: &RelationDefinition,
        subject: &SubjectRef,
        depth: u32,
        walk: &mut Walk,
    ) -> Result<Permissionship, EngineError> {
        let mut result = Permissionship::No;
        if let Some(rel) = self.snapshot.get(resource, &relation.name, subject)? {
            walk.read(&rel);
            result = caveat::gate(
                self.schema,
                rel.caveat.as_ref(),
                self.context,
                Permissionship::Has,
            )?;
            if result.is_has() {
                return Ok(result);
            }
        }
        let subject_type = &subject.object.object_type;
        let allows_wildcard = relation
            .allowed
            .iter()
            .any(|a| a.kind == AllowedKind::Wildcard && a.subject_type == *subject_type);
        if subject.relation.is_none() && allows_wildcard {
            let wildcard = SubjectRef {
                object: ObjectRef::new_unchecked(subject_type, WILDCARD_ID),
                relation: None,
            };
            if let Some(rel) = self.snapshot.get(resource, &relation.name, &wildcard)? {
                walk.read(&rel);
                let via = caveat::gate(
                    self.schema,
                    rel.caveat.as_ref(),
                    self.context,
                    Permissionship::Has,
                )?;
                result = result.union(via);
                if result.is_has() {
                    return Ok(result);
                }
            }
        }
        let allows_subject_sets = relation
            .allowed
            .iter()
            .any(|a| matches!(a.kind, AllowedKind::SubjectSet(_)));
        if !allows_subject_sets {
            return Ok(result);
        }
        for rel in self.snapshot.subjects_of(resource, &relation.name) {
            // Every row read is a step, so a long scan meets the deadline and a step limit.
            self.tick()?;
            let rel = rel?;
            let Some(set_relation) = &rel.subject.relation else {
                continue;
            };
            if rel.subject == *subject {
                continue; // already answered by the point lookup
            }
            walk.read(&rel);
            let through = self.check_member(
                &rel.subject.object,
                set_relation,
                subject,
                depth - 1,
                walk,
                true,
            )?;
            let via = caveat::gate(self.schema, rel.caveat.as_ref(), self.context, through)?;
            result = result.union(via);
            if result.is_has() {
                return Ok(result);
            }
        }
        Ok(result)
    }

    fn check_rewrite(
        &self,
        resource: &ObjectRef,
        rewrite: &Rewrite,
        subject: &SubjectRef,
        depth: u32,
        walk: &mut Walk,
    ) -> Result<Permissionship, EngineError> {
        match rewrite {
            Rewrite::Union(children) => {
                let mut result = Permissionship::No;
                for child in children {
                    let next = self.check_rewrite(resource, child, subject, depth, walk)?;
                    result = result.union(next);
                    if result.is_has() {
                        break;
                    }
                }
                Ok(result)
            }
            Rewrite::Intersection(children) => {
                let mut result = Permissionship::Has;
                for child in children {
                    let next = self.check_rewrite(resource, child, subject, depth, walk)?;
                    result = result.intersect(next);
                    if result.is_no() {
                        break;
                    }
                }
                Ok(result)
            }
            Rewrite::Exclusion(base, subtracted) => {
                let base = self.check_rewrite(resource, base, subject, depth, walk)?;
                if base.is_no() {
                    return Ok(base);
                }
                let subtracted = self.check_rewrite(resource, subtracted, subject, depth, walk)?;
                Ok(base.exclude(subtracted))
            }
            Rewrite::Computed(name) => {
                self.check_member(resource, name, subject, depth - 1, walk, false)
            }
            Rewrite::Arrow {
                tupleset,
                computed,
                mode,
            } => self.check_arrow(resource, tupleset, computed, *mode, subject, depth, walk),
            Rewrite::Nil => Ok(Permissionship::No),
            Rewrite::SelfRef => Ok(
                if subject.relation.is_none() && subject.object == *resource {
                    Permissionship::Has
                } else {
                    Permissionship::No
                },
            ),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn check_arrow(
        &self,
        resource: &ObjectRef,
        tupleset: &str,
        computed: &str,
        mode: ArrowMode,
        subject: &SubjectRef,
        depth: u32,
        walk: &mut Walk,
    ) -> Result<Permissionship, EngineError> {
        let mut any = Permissionship::No;
        let mut all = Permissionship::Has;
        let mut targets = 0usize;
        let may_reverse = self.reverse_arrows && mode == ArrowMode::Any && !subject.is_wildcard();
        for rel in self.snapshot.subjects_of(resource, tupleset) {
            self.tick()?;
            let rel = rel?;
            if rel.subject.is_wildcard() {
                continue;
            }
            if may_reverse && targets == REVERSE_ARROW_AFTER {
                if let Some(rest) = self
                    .check_arrow_from_subject(resource, tupleset, computed, subject, depth, walk)?
                {
                    return Ok(any.union(rest));
                }
            }
            walk.read(&rel);
            let target = &rel.subject.object;
            let has_member = self
                .schema
                .definition(&target.object_type)
                .is_some_and(|d| d.member(computed).is_some());
            let through = if has_member {
                self.check_member(target, computed, subject, depth - 1, walk, true)?
            } else {
                Permissionship::No
            };
            let via = caveat::gate(self.schema, rel.caveat.as_ref(), self.context, through)?;
            targets += 1;
            match mode {
                ArrowMode::Any => {
                    any = any.union(via);
                    if any.is_has() {
                        return Ok(any);
                    }
                }
                ArrowMode::All => {
                    all = all.intersect(via);
                    if all.is_no() {
                        return Ok(all);
                    }
                }
            }
        }
        Ok(match mode {
            ArrowMode::Any => any,
            ArrowMode::All if targets == 0 => Permissionship::No,
            ArrowMode::All => all,
        })
    }

    /// The rest of an `Any` arrow whose relation holds many targets, answered from the
    /// subject's side: the targets on which the subject may hold `computed` (the reverse walk's
    /// candidates, a superset of every target that does not answer "no"), each kept only if
    /// `resource#tupleset` names it, then checked as the forward walk would (the few targets the
    /// forward walk already checked may be checked again: cheaper than remembering them on
    /// every arrow). `None` when the reverse walk cannot give the candidates
    /// (it ran out of rounds), and the forward walk goes on.
    #[allow(clippy::too_many_arguments)]
    fn check_arrow_from_subject(
        &self,
        resource: &ObjectRef,
        tupleset: &str,
        computed: &str,
        subject: &SubjectRef,
        depth: u32,
        walk: &mut Walk,
    ) -> Result<Option<Permissionship>, EngineError> {
        let Some(relation) = self
            .schema
            .definition(&resource.object_type)
            .and_then(|def| def.relations.get(tupleset))
        else {
            return Ok(None);
        };
        let mut targets = Vec::new();
        let mut shapes = HashSet::new();
        for allowed in &relation.allowed {
            let subject_relation = match &allowed.kind {
                AllowedKind::Wildcard => continue,
                AllowedKind::SubjectSet(r) => Some(r.clone()),
                _ => None,
            };
            let has_member = self
                .schema
                .definition(&allowed.subject_type)
                .is_some_and(|d| d.member(computed).is_some());
            if !has_member
                || !shapes.insert((allowed.subject_type.clone(), subject_relation.clone()))
            {
                continue;
            }
            let candidates =
                match self.resource_candidates(&allowed.subject_type, computed, subject) {
                    Ok(candidates) => candidates,
                    Err(EngineError::MaxDepthExceeded(_)) => return Ok(None),
                    Err(other) => return Err(other),
                };
            targets.extend(candidates.into_iter().map(|id| SubjectRef {
                object: ObjectRef::new_unchecked(&allowed.subject_type, &id),
                relation: subject_relation.clone(),
            }));
        }
        let mut any = Permissionship::No;
        for target in targets {
            let Some(rel) = self.snapshot.get(resource, tupleset, &target)? else {
                continue;
            };
            walk.read(&rel);
            let through =
                self.check_member(&target.object, computed, subject, depth - 1, walk, true)?;
            let via = caveat::gate(self.schema, rel.caveat.as_ref(), self.context, through)?;
            any = any.union(via);
            if any.is_has() {
                break;
            }
        }
        Ok(Some(any))
    }
}
