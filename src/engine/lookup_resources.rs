//! LookupResources: every resource of a type on which a subject has a permission.
//!
//! Walks backwards from the subject through the reverse index: for each relation, the
//! resources whose relationship names the subject (or its type's wildcard, or a subject set
//! that holds it). Unions are exact; intersections, exclusions, `.all()` and caveats only
//! narrow, so for permissions that reach them the walk yields candidates and each candidate
//! is confirmed by a check. Recursive relations (`member: user | group#member`) are closed by a
//! breadth-first walk; other cycles by fixed-point rounds.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::rc::Rc;

use super::id_set::{IdList, IdSet as Ids};
use super::{EngineError, FoundResources, Query};
use crate::schema::{AllowedKind, ArrowMode, Definition, Member, Rewrite, Schema};
use crate::tuple::{ObjectRef, SubjectRef, WILDCARD_ID};

const MAX_ROUNDS: usize = 64;

type Key = (String, String);

/// A batched reverse read: the resources of a type whose relation names one of a set of
/// subjects of one type (and subject relation).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct ReadKey {
    resource_type: String,
    relation: String,
    subject_type: String,
    subject_relation: Option<String>,
}

/// A batched reverse read done earlier in the request: the subject ids it read and the
/// resource ids it found.
struct DoneRead {
    subjects: Rc<Ids>,
    found: Rc<Ids>,
}

/// One walk's state. Sets found for a (type, member) are shared between the memo and the
/// walk (`Rc`), so a set is copied only where a union needs to own it.
struct Walk<'s> {
    subject: &'s SubjectRef,
    seeds: HashMap<Key, Rc<Ids>>,
    memo: HashMap<Key, Rc<Ids>>,
    in_progress: HashSet<Key>,
    used_seed: bool,
    /// The batched reverse reads done so far, kept across fixed-point rounds (a read depends
    /// only on its subjects and the snapshot).
    reads: HashMap<ReadKey, Vec<DoneRead>>,
}

impl Query<'_> {
    pub(crate) fn lookup_resources(
        &self,
        resource_type: &str,
        member: &str,
        subject: &SubjectRef,
    ) -> Result<FoundResources, EngineError> {
        if subject.is_wildcard() {
            return Err(EngineError::WildcardSubject(subject.to_string()));
        }
        let candidates = self.candidate_set(resource_type, member, subject)?;
        if !needs_confirmation(self.schema, resource_type, member) {
            return Ok(FoundResources::unconditional(Rc::unwrap_or_clone(
                candidates,
            )));
        }
        FoundResources::confirmed(&candidates, |id| {
            self.check(
                &ObjectRef::new_unchecked(resource_type, id),
                member,
                subject,
            )
        })
    }

    /// Every resource of `resource_type` on which `subject` may hold `member`: exact for
    /// unions, a superset where intersections, exclusions, `.all()` or caveats narrow.
    pub(super) fn resource_candidates(
        &self,
        resource_type: &str,
        member: &str,
        subject: &SubjectRef,
    ) -> Result<Vec<String>, EngineError> {
        let found = self.candidate_set(resource_type, member, subject)?;
        Ok(found.iter().map(str::to_string).collect())
    }

    /// [`Query::resource_candidates`] as a sorted set.
    fn candidate_set(
        &self,
        resource_type: &str,
        member: &str,
        subject: &SubjectRef,
    ) -> Result<Rc<Ids>, EngineError> {
        let mut walk = Walk {
            subject,
            seeds: HashMap::new(),
            memo: HashMap::new(),
            in_progress: HashSet::new(),
            used_seed: false,
            reads: HashMap::new(),
        };
        for _ in 0..MAX_ROUNDS {
            walk.memo.clear();
            walk.used_seed = false;
            let result = self.resources_for(resource_type, member, self.max_depth, &mut walk)?;
            if !walk.used_seed || walk.memo == walk.seeds {
                return Ok(result);
            }
            walk.seeds = std::mem::take(&mut walk.memo);
        }
        Err(EngineError::MaxDepthExceeded(self.max_depth))
    }

    fn resources_for(
        &self,
        resource_type: &str,
        member: &str,
        depth: u32,
        walk: &mut Walk<'_>,
    ) -> Result<Rc<Ids>, EngineError> {
        let subject = walk.subject;
        // A subject set `resource_type:x#member` holds `member` on `x` itself.
        let with_subject = |ids: Rc<Ids>| -> Rc<Ids> {
            let names_itself = subject.object.object_type == resource_type
                && subject.relation.as_deref() == Some(member);
            if !names_itself {
                return ids;
            }
            match ids.with(&subject.object.object_id) {
                Some(added) => Rc::new(added),
                None => ids,
            }
        };
        self.tick()?;
        if depth == 0 {
            return Err(EngineError::MaxDepthExceeded(self.max_depth));
        }
        let key = (resource_type.to_string(), member.to_string());
        if let Some(done) = walk.memo.get(&key) {
            return Ok(with_subject(Rc::clone(done)));
        }
        if walk.in_progress.contains(&key) {
            walk.used_seed = true;
            let seed = walk.seeds.get(&key).cloned().unwrap_or_default();
            return Ok(with_subject(seed));
        }
        let Some(def) = self.schema.definition(resource_type) else {
            return Ok(with_subject(Rc::default()));
        };
        walk.in_progress.insert(key.clone());
        let found = match def.member(member) {
            Some(Member::Relation(_)) => self
                .resources_for_relation(def, member, depth, walk)
                .map(Rc::new),
            Some(Member::Permission(permission)) => {
                self.resources_for_rewrite(def, &permission.rewrite, depth, walk)
            }
            None => Ok(Rc::default()),
        };
        walk.in_progress.remove(&key);
        let found = found?;
        walk.memo.insert(key, Rc::clone(&found));
        Ok(with_subject(found))
    }

    fn resources_for_relation(
        &self,
        def: &Definition,
        relation: &str,
        depth: u32,
        walk: &mut Walk<'_>,
    ) -> Result<Ids, EngineError> {
        let subject = walk.subject;
        let mut direct = IdList::default();
        self.collect_resources(subject, &def.name, relation, &mut direct)?;
        let Some(relation_def) = def.relations.get(relation) else {
            return Ok(direct.into_set());
        };
        let mut through_sets = Vec::new();
        let mut self_recursive = false;
        let mut seen = BTreeSet::new();
        for allowed in &relation_def.allowed {
            match &allowed.kind {
                AllowedKind::Direct => {}
                AllowedKind::Wildcard => {
                    if subject.relation.is_none()
                        && allowed.subject_type == subject.object.object_type
                        && seen.insert((allowed.subject_type.clone(), "*".to_string()))
                    {
                        let wildcard = SubjectRef {
                            object: ObjectRef::new_unchecked(&allowed.subject_type, WILDCARD_ID),
                            relation: None,
                        };
                        self.collect_resources(&wildcard, &def.name, relation, &mut direct)?;
                    }
                }
                AllowedKind::SubjectSet(set_relation) => {
                    if !seen.insert((allowed.subject_type.clone(), set_relation.clone())) {
                        continue;
                    }
                    if allowed.subject_type == def.name && set_relation == relation {
                        self_recursive = true;
                        continue;
                    }
                    let holders =
                        self.resources_for(&allowed.subject_type, set_relation, depth - 1, walk)?;
                    let key = ReadKey {
                        resource_type: def.name.clone(),
                        relation: relation.to_string(),
                        subject_type: allowed.subject_type.clone(),
                        subject_relation: Some(set_relation.clone()),
                    };
                    through_sets.push(self.reverse_read(walk, key, &holders)?);
                }
            }
        }
        let direct = direct.into_set();
        let found = Ids::union(std::iter::once(&direct).chain(through_sets.iter().map(|s| &**s)));
        if !self_recursive {
            return Ok(found);
        }
        // Close `relation: ... | this_type#relation` breadth-first.
        let mut frontier: Vec<String> = found.iter().map(str::to_string).collect();
        if subject.object.object_type == def.name && subject.relation.as_deref() == Some(relation) {
            frontier.push(subject.object.object_id.clone());
        }
        let mut result: HashSet<String> = found.iter().map(str::to_string).collect();
        match self.close_with_index(def, relation, &mut frontier, &mut result) {
            Some(closed) => closed?,
            None => {
                // One batched read per level of nesting.
                while !frontier.is_empty() {
                    let level = std::mem::take(&mut frontier);
                    self.snapshot.resource_ids_with_subject_ids(
                        &def.name,
                        &mut level.iter().map(String::as_str),
                        Some(relation),
                        &def.name,
                        relation,
                        &mut |id| {
                            if !result.contains(id) {
                                result.insert(id.to_string());
                                frontier.push(id.to_string());
                            }
                        },
                    )?;
                }
            }
        }
        let mut closed = IdList::default();
        for id in &result {
            closed.push(id);
        }
        Ok(closed.into_set())
    }

    /// The breadth-first closure above, with the parents of each group taken from the group
    /// index (plain edges) and from the store only for groups that a caveated or expiring edge
    /// names. `None` when the index is not exact for this request (then the caller walks).
    fn close_with_index(
        &self,
        def: &Definition,
        relation: &str,
        frontier: &mut Vec<String>,
        result: &mut HashSet<String>,
    ) -> Option<Result<(), EngineError>> {
        let accel = self.accel.as_ref()?;
        accel.accel.with_group_index(
            accel.plan.generation,
            self.snapshot.revision(),
            &def.name,
            relation,
            |index| {
                while let Some(id) = frontier.pop() {
                    let (parents, also_stored) = index.parents(&id);
                    for parent in parents {
                        if !result.contains(parent) {
                            result.insert(parent.to_string());
                            frontier.push(parent.to_string());
                        }
                    }
                    if also_stored {
                        let set = SubjectRef {
                            object: ObjectRef::new_unchecked(&def.name, &id),
                            relation: Some(relation.to_string()),
                        };
                        let mut next = Vec::new();
                        self.snapshot.resource_ids_with_subjects(
                            std::slice::from_ref(&set),
                            &def.name,
                            relation,
                            &mut |id| {
                                if !result.contains(id) {
                                    next.push(id.to_string());
                                }
                            },
                        )?;
                        for found in next {
                            if !result.contains(&found) {
                                result.insert(found.clone());
                                frontier.push(found);
                            }
                        }
                    }
                }
                Ok(())
            },
        )
    }

    /// Appends the resources of `resource_type` whose `relation` names `subject`.
    fn collect_resources(
        &self,
        subject: &SubjectRef,
        resource_type: &str,
        relation: &str,
        into: &mut IdList,
    ) -> Result<(), EngineError> {
        self.snapshot.resource_ids_with_subjects(
            std::slice::from_ref(subject),
            resource_type,
            relation,
            &mut |id| into.push(id),
        )?;
        Ok(())
    }

    /// The resources of `key.resource_type` whose `key.relation` names one of `subjects`
    /// (ids of `key.subject_type`, with `key.subject_relation`), read in one ordered
    /// multi-range scan of the reverse index. A read of the same relation done earlier in the
    /// request for a subset of these subjects is reused, and only the subjects it did not
    /// cover are read: `project->edit` and `project->view` read `resource#project` once.
    fn reverse_read(
        &self,
        walk: &mut Walk<'_>,
        key: ReadKey,
        subjects: &Rc<Ids>,
    ) -> Result<Rc<Ids>, EngineError> {
        if subjects.is_empty() {
            return Ok(Rc::default());
        }
        let done = walk.reads.entry(key.clone()).or_default();
        // The earlier read with the most subjects among those whose subjects are all here.
        let mut base: Option<(&DoneRead, Ids)> = None;
        for read in done.iter() {
            if Rc::ptr_eq(&read.subjects, subjects) || read.subjects == *subjects {
                return Ok(Rc::clone(&read.found));
            }
            if base
                .as_ref()
                .is_some_and(|(best, _)| best.subjects.len() >= read.subjects.len())
            {
                continue;
            }
            if let Some(rest) = subjects.minus_subset(&read.subjects) {
                base = Some((read, rest));
            }
        }
        let (earlier, to_read) = match &base {
            Some((read, rest)) => (Some(&read.found), rest),
            None => (None, &**subjects),
        };
        let mut list = IdList::default();
        self.read_resources(&key, to_read, &mut list)?;
        let read = list.into_set();
        let found = match earlier {
            Some(earlier) => Rc::new(Ids::union([&**earlier, &read])),
            None => Rc::new(read),
        };
        done.push(DoneRead {
            subjects: Rc::clone(subjects),
            found: Rc::clone(&found),
        });
        Ok(found)
    }

    /// Appends the resources of `key.resource_type` whose `key.relation` names one of
    /// `subjects`: from the arrow index where it covers the relation at this request's
    /// revision (then only subjects named by an expiring edge are read from the store), from
    /// the store's reverse index otherwise.
    fn read_resources(
        &self,
        key: &ReadKey,
        subjects: &Ids,
        into: &mut IdList,
    ) -> Result<(), EngineError> {
        let indexed = match (&self.accel, &key.subject_relation) {
            (Some(accel), None) => accel.accel.with_arrow_index(
                accel.plan.generation,
                self.snapshot.revision(),
                &key.resource_type,
                &key.relation,
                |index| index.resources_naming(&key.subject_type, subjects.iter(), into),
            ),
            _ => None,
        };
        let mut all;
        let from_store: &mut dyn Iterator<Item = &str> = match &indexed {
            Some(rest) if rest.is_empty() => return Ok(()),
            Some(rest) => {
                all = rest.iter().copied();
                &mut all
            }
            None => &mut subjects.iter(),
        };
        self.snapshot.resource_ids_with_subject_ids(
            &key.subject_type,
            from_store,
            key.subject_relation.as_deref(),
            &key.resource_type,
            &key.relation,
            &mut |id| into.push(id),
        )?;
        Ok(())
    }

    fn resources_for_rewrite(
        &self,
        def: &Definition,
        rewrite: &Rewrite,
        depth: u32,
        walk: &mut Walk<'_>,
    ) -> Result<Rc<Ids>, EngineError> {
        Ok(match rewrite {
            Rewrite::Union(children) => {
                let mut found = Vec::with_capacity(children.len());
                for child in children {
                    found.push(self.resources_for_rewrite(def, child, depth, walk)?);
                }
                Rc::new(Ids::union(found.iter().map(|set| &**set)))
            }
            // Every member of an intersection is in its first operand; confirmed later.
            Rewrite::Intersection(children) => match children.first() {
                Some(first) => self.resources_for_rewrite(def, first, depth, walk)?,
                None => Rc::default(),
            },
            Rewrite::Exclusion(base, _) => self.resources_for_rewrite(def, base, depth, walk)?,
            Rewrite::Computed(name) => self.resources_for(&def.name, name, depth - 1, walk)?,
            Rewrite::Arrow {
                tupleset, computed, ..
            } => {
                let mut result = Vec::new();
                let Some(relation_def) = def.relations.get(tupleset) else {
                    return Ok(Rc::default());
                };
                let mut seen = BTreeSet::new();
                for allowed in &relation_def.allowed {
                    if allowed.kind == AllowedKind::Wildcard {
                        continue;
                    }
                    let has_member = self
                        .schema
                        .definition(&allowed.subject_type)
                        .is_some_and(|d| d.member(computed).is_some());
                    if !has_member {
                        continue;
                    }
                    let subject_relation = match &allowed.kind {
                        AllowedKind::SubjectSet(r) => Some(r.clone()),
                        _ => None,
                    };
                    if !seen.insert((allowed.subject_type.clone(), subject_relation.clone())) {
                        continue;
                    }
                    let targets =
                        self.resources_for(&allowed.subject_type, computed, depth - 1, walk)?;
                    let key = ReadKey {
                        resource_type: def.name.clone(),
                        relation: tupleset.clone(),
                        subject_type: allowed.subject_type.clone(),
                        subject_relation,
                    };
                    result.push(self.reverse_read(walk, key, &targets)?);
                }
                match result.as_slice() {
                    [only] => Rc::clone(only),
                    _ => Rc::new(Ids::union(result.iter().map(|set| &**set))),
                }
            }
            Rewrite::Nil => Rc::default(),
            Rewrite::SelfRef => {
                let subject = walk.subject;
                if subject.object.object_type == def.name && subject.relation.is_none() {
                    Rc::new(Ids::of(&subject.object.object_id))
                } else {
                    Rc::default()
                }
            }
        })
    }
}

/// Whether `resource_type#member` can reach an intersection, exclusion, `.all()` or caveat,
/// so that reverse-walk candidates must be confirmed by a check.
pub(crate) fn needs_confirmation(schema: &Schema, resource_type: &str, member: &str) -> bool {
    fn walk_member(
        schema: &Schema,
        object_type: &str,
        member: &str,
        seen: &mut HashSet<(String, String)>,
    ) -> bool {
        if !seen.insert((object_type.to_string(), member.to_string())) {
            return false;
        }
        let Some(def) = schema.definition(object_type) else {
            return false;
        };
        match def.member(member) {
            Some(Member::Relation(relation)) => relation.allowed.iter().any(|allowed| {
                allowed.caveat.is_some()
                    || match &allowed.kind {
                        AllowedKind::SubjectSet(r) => {
                            walk_member(schema, &allowed.subject_type, r, seen)
                        }
                        _ => false,
                    }
            }),
            Some(Member::Permission(permission)) => {
                walk_rewrite(schema, def, &permission.rewrite, seen)
            }
            None => false,
        }
    }
    fn walk_rewrite(
        schema: &Schema,
        def: &Definition,
        rewrite: &Rewrite,
        seen: &mut HashSet<(String, String)>,
    ) -> bool {
        match rewrite {
            Rewrite::Intersection(_) | Rewrite::Exclusion(..) => true,
            Rewrite::Arrow {
                mode: ArrowMode::All,
                ..
            } => true,
            Rewrite::Union(children) => children.iter().any(|c| walk_rewrite(schema, def, c, seen)),
            Rewrite::Computed(name) => walk_member(schema, &def.name, name, seen),
            Rewrite::Arrow {
                tupleset, computed, ..
            } => {
                walk_member(schema, &def.name, tupleset, seen)
                    || def.relations.get(tupleset).is_some_and(|relation| {
                        relation.allowed.iter().any(|allowed| {
                            walk_member(schema, &allowed.subject_type, computed, seen)
                        })
                    })
            }
            Rewrite::Nil | Rewrite::SelfRef => false,
        }
    }
    walk_member(schema, resource_type, member, &mut HashSet::new())
}
