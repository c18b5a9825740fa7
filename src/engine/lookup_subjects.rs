//! LookupSubjects: every subject of a type that has a permission on one resource.
//!
//! Expands forward from the resource. Results are sets that may contain the wildcard minus
//! exclusions, combined with set algebra at unions, intersections and exclusions. Recursive
//! structures are solved as a fixed point: a pair met again on the current path contributes
//! what the previous round found for it, and rounds repeat until nothing changes.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use super::lookup_resources::needs_confirmation;
use super::subject_set::SubjectIdSet;
use super::{EngineError, Permissionship, Query};
use crate::schema::{ArrowMode, Member, Rewrite};
use crate::tuple::{ObjectRef, SubjectRef, WILDCARD_ID};

/// Rounds of fixed-point iteration before giving up on a cyclic, non-monotone schema.
const MAX_ROUNDS: usize = 64;

/// An id no relationship can name (`*` is not allowed inside object ids), checked to learn
/// what the wildcard grants: it reaches a resource only through wildcard relationships.
const WILDCARD_PROBE_ID: &str = "*probe";

/// One subject found by LookupSubjects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoundSubject {
    /// The subject id, or `*` for the wildcard.
    pub subject_id: String,
    /// For the wildcard: ids that are excluded from it.
    pub excluded_ids: Vec<String>,
    /// Has, or conditional on caveat parameters.
    pub permissionship: Permissionship,
}

/// Every subject found, the wildcard (if any) first, then concrete ids in order.
pub type FoundSubjects = Vec<FoundSubject>;

type Key = (ObjectRef, String);

/// Every subject of a set, all unconditional.
fn unconditional(set: SubjectIdSet) -> FoundSubjects {
    let mut found = Vec::new();
    if let Some(excluded) = &set.wildcard {
        found.push(FoundSubject {
            subject_id: WILDCARD_ID.to_string(),
            excluded_ids: excluded.iter().cloned().collect(),
            permissionship: Permissionship::Has,
        });
    }
    found.extend(set.concrete.into_iter().map(|id| FoundSubject {
        subject_id: id,
        excluded_ids: Vec::new(),
        permissionship: Permissionship::Has,
    }));
    found
}

struct Walk<'q> {
    subject_type: &'q str,
    subject_relation: Option<&'q str>,
    seeds: HashMap<Key, SubjectIdSet>,
    memo: HashMap<Key, SubjectIdSet>,
    in_progress: HashSet<Key>,
    used_seed: bool,
    mode: SetMode,
}

/// What a walk's set holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SetMode {
    /// The members, caveats taken as satisfied.
    Exact,
    /// A superset of the members whatever the caveats decide: the subtracted side of
    /// exclusions is ignored (candidates to confirm by check).
    Superset,
    /// Every id the walk meets on any side: intersections, exclusions and `.all()` taken as
    /// unions. Any id outside it is granted exactly what the wildcard grants.
    Mentioned,
}

impl Query<'_> {
    pub(crate) fn lookup_subjects(
        &self,
        resource: &ObjectRef,
        member: &str,
        subject_type: &str,
        subject_relation: Option<&str>,
    ) -> Result<FoundSubjects, EngineError> {
        let set = self.subject_id_set(
            resource,
            member,
            subject_type,
            subject_relation,
            SetMode::Exact,
        )?;
        if !needs_confirmation(self.schema, &resource.object_type, member) {
            return Ok(unconditional(set));
        }
        // Caveats, intersections or exclusions are reachable: take every id that could be a
        // member and let check decide, as lookup-resources does.
        let superset = self.subject_id_set(
            resource,
            member,
            subject_type,
            subject_relation,
            SetMode::Superset,
        )?;
        let mut candidates: BTreeSet<String> = set.concrete.clone();
        candidates.extend(superset.concrete.iter().cloned());
        for excluded in [&set.wildcard, &superset.wildcard].into_iter().flatten() {
            candidates.extend(excluded.iter().cloned());
        }
        // The wildcard stands for every id no relationship names; one such id, checked,
        // says whether the wildcard is in (and on which caveats). Caveats whose stored context
        // already fails drop it; a caveated wildcard on an excluded side makes it conditional.
        let wildcard = match (&superset.wildcard, subject_relation) {
            (Some(_), None) => {
                let probe = SubjectRef {
                    object: ObjectRef::new_unchecked(subject_type, WILDCARD_PROBE_ID),
                    relation: None,
                };
                Some(self.check(resource, member, &probe)?).filter(|answer| !answer.is_no())
            }
            _ => None,
        };
        // With the wildcard in, every id that may differ from it must be checked, so that one
        // left out on some side (`(w - banned) & conditional`) is listed as excluded.
        if wildcard.is_some() {
            let mentioned = self.subject_id_set(
                resource,
                member,
                subject_type,
                subject_relation,
                SetMode::Mentioned,
            )?;
            candidates.extend(mentioned.concrete);
        }
        let mut excluded_ids = Vec::new();
        let mut concrete = Vec::new();
        for id in candidates {
            let subject = SubjectRef {
                object: ObjectRef::new_unchecked(subject_type, &id),
                relation: subject_relation.map(str::to_string),
            };
            let answer = self.check(resource, member, &subject)?;
            // The id's own check decides for it: the wildcard must not claim an id that is out
            // or only conditionally in (e.g. a caveated exclusion), so such an id leaves it.
            let has = matches!(answer, Permissionship::Has);
            if wildcard.is_some() && !has {
                excluded_ids.push(id.clone());
            }
            if answer.is_no() {
                continue;
            }
            concrete.push(FoundSubject {
                subject_id: id,
                excluded_ids: Vec::new(),
                permissionship: answer,
            });
        }
        let mut found = Vec::new();
        if let Some(permissionship) = wildcard {
            found.push(FoundSubject {
                subject_id: WILDCARD_ID.to_string(),
                excluded_ids,
                permissionship,
            });
        }
        found.extend(concrete);
        Ok(found)
    }

    pub(crate) fn subject_id_set(
        &self,
        resource: &ObjectRef,
        member: &str,
        subject_type: &str,
        subject_relation: Option<&str>,
        mode: SetMode,
    ) -> Result<SubjectIdSet, EngineError> {
        let mut walk = Walk {
            subject_type,
            subject_relation,
            seeds: HashMap::new(),
            memo: HashMap::new(),
            in_progress: HashSet::new(),
            used_seed: false,
            mode,
        };
        for _ in 0..MAX_ROUNDS {
            walk.memo.clear();
            walk.used_seed = false;
            let result = self.subjects_of_member(resource, member, self.max_depth, &mut walk)?;
            if !walk.used_seed || walk.memo == walk.seeds {
                return Ok(result);
            }
            walk.seeds = std::mem::take(&mut walk.memo);
        }
        Err(EngineError::MaxDepthExceeded(self.max_depth))
    }

    fn subjects_of_member(
        &self,
        object: &ObjectRef,
        member: &str,
        depth: u32,
        walk: &mut Walk<'_>,
    ) -> Result<SubjectIdSet, EngineError> {
        let mut result = SubjectIdSet::default();
        if object.object_type == walk.subject_type && walk.subject_relation == Some(member) {
            result.add_concrete(&object.object_id);
        }
        self.tick()?;
        if depth == 0 {
            return Err(EngineError::MaxDepthExceeded(self.max_depth));
        }
        let key = (object.clone(), member.to_string());
        if let Some(done) = walk.memo.get(&key) {
            return Ok(result.union(done.clone()));
        }
        if walk.in_progress.contains(&key) {
            walk.used_seed = true;
            let seed = walk.seeds.get(&key).cloned().unwrap_or_default();
            return Ok(result.union(seed));
        }
        let Some(def) = self.schema.definition(&object.object_type) else {
            return Ok(result);
        };
        walk.in_progress.insert(key.clone());
        let found = match def.member(member) {
            Some(Member::Relation(_)) => self.subjects_of_relation(object, member, depth, walk),
            Some(Member::Permission(permission)) => {
                self.subjects_of_rewrite(object, &permission.rewrite, depth, walk)
            }
            None => Ok(SubjectIdSet::default()),
        };
        walk.in_progress.remove(&key);
        let found = found?;
        walk.memo.insert(key, found.clone());
        Ok(result.union(found))
    }

    fn subjects_of_relation(
        &self,
        object: &ObjectRef,
        relation: &str,
        depth: u32,
        walk: &mut Walk<'_>,
    ) -> Result<SubjectIdSet, EngineError> {
        if let Some(found) = self.subjects_with_index(object, relation, depth, walk) {
            return found;
        }
        let mut result = SubjectIdSet::default();
        // Subject sets found here, by (type, relation): the nested groups are expanded
        // together after the scan, so a relation naming many groups costs one read for all.
        let mut sets: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
        for subject in self.snapshot.subject_refs_of(object, relation) {
            let subject = subject?;
            if subject.object.object_type == walk.subject_type
                && subject.relation.as_deref() == walk.subject_relation
            {
                if subject.is_wildcard() {
                    result.add_wildcard();
                } else {
                    result.add_concrete(&subject.object.object_id);
                }
            }
            if let Some(set_relation) = subject.relation {
                sets.entry((subject.object.object_type, set_relation))
                    .or_default()
                    .push(subject.object.object_id);
            }
        }
        for ((set_type, set_relation), ids) in sets {
            let rest = match self.sets_with_index(&set_type, &set_relation, &ids, depth - 1, walk) {
                Some(found) => {
                    let (found, rest) = found?;
                    result = result.union(found);
                    rest
                }
                None => ids,
            };
            for id in rest {
                let set = ObjectRef::new_unchecked(&set_type, &id);
                let nested = self.subjects_of_member(&set, &set_relation, depth - 1, walk)?;
                result = result.union(nested);
            }
        }
        Ok(result)
    }

    /// The subjects of a self-recursive relation from the group index's closure: the direct
    /// subjects of every nested group, with no recursion. `None` when the index cannot decide
    /// alone (then the caller walks).
    fn subjects_with_index(
        &self,
        object: &ObjectRef,
        relation: &str,
        depth: u32,
        walk: &Walk<'_>,
    ) -> Option<Result<SubjectIdSet, EngineError>> {
        let ids = [object.object_id.as_str()];
        let (found, rest) =
            self.closure_subjects(&object.object_type, relation, &ids, depth, walk)?;
        rest.is_empty().then_some(Ok(found))
    }

    /// What `set_type:id#set_relation` holds for every id of `ids`, as
    /// [`Query::subjects_of_member`] would find it with `depth` levels left, for those the
    /// group index can answer alone, in one batched read; the other ids are returned to be
    /// walked one by one. `None` when the index does not apply at all.
    fn sets_with_index(
        &self,
        set_type: &str,
        set_relation: &str,
        ids: &[String],
        depth: u32,
        walk: &Walk<'_>,
    ) -> Option<Result<(SubjectIdSet, Vec<String>), EngineError>> {
        if depth == 0 || ids.len() < 2 {
            return None;
        }
        if let Err(err) = self.tick() {
            return Some(Err(err));
        }
        // A pair already solved this round, or open on the current path (whose seed the walk
        // must use), is left to the walk. Most walks hold no pair of this relation at all.
        let same_relation = |key: &Key| key.0.object_type == set_type && key.1 == set_relation;
        let mut walked = Vec::new();
        let mut batched: Vec<&str> = Vec::with_capacity(ids.len());
        if walk.memo.keys().any(same_relation) || walk.in_progress.iter().any(same_relation) {
            for id in ids {
                let key = (
                    ObjectRef::new_unchecked(set_type, id),
                    set_relation.to_string(),
                );
                if walk.memo.contains_key(&key) || walk.in_progress.contains(&key) {
                    walked.push(id.clone());
                } else {
                    batched.push(id);
                }
            }
        } else {
            batched.extend(ids.iter().map(String::as_str));
        }
        let (found, mut rest) =
            self.closure_subjects(set_type, set_relation, &batched, depth, walk)?;
        rest.extend(walked);
        Some(Ok((found, rest)))
    }

    /// The subjects of every group in the closures of `set_type:id#relation` for the ids whose
    /// closure the group index knows with `depth` levels left, straight from the index (the
    /// plain subjects each nested group holds, plus the groups themselves when they are what is
    /// looked up); the ids it does not know are returned. `None` when there is no exact index
    /// for the relation.
    fn closure_subjects(
        &self,
        set_type: &str,
        relation: &str,
        ids: &[&str],
        depth: u32,
        walk: &Walk<'_>,
    ) -> Option<(SubjectIdSet, Vec<String>)> {
        let accel = self.accel.as_ref()?;
        if !accel.plan.is_self_recursive(set_type, relation) {
            return None;
        }
        let wants_groups = set_type == walk.subject_type && walk.subject_relation == Some(relation);
        // A pure closure holds only plain edges: nested groups of this relation and subjects
        // without a subject relation. Nothing else can match a looked-up subject relation.
        let wants_plain = walk.subject_relation.is_none();
        let subject_type = walk.subject_type;
        accel.accel.with_group_index(
            accel.plan.generation,
            self.snapshot.revision(),
            set_type,
            relation,
            |index| {
                let closures = index.closures(ids.iter().copied(), depth);
                let mut result = SubjectIdSet::default();
                if wants_groups {
                    // A group the index does not know has an empty closure; it is still one
                    // of the groups looked at.
                    let known = closures.groups.iter().filter_map(|g| index.group_name(g));
                    for id in known.chain(closures.unknown.iter().copied()) {
                        result.add_concrete(id);
                    }
                }
                if wants_plain {
                    for subject in index.members_of(&closures.groups) {
                        if subject.object.object_type != subject_type {
                            continue;
                        }
                        if subject.is_wildcard() {
                            result.add_wildcard();
                        } else {
                            result.add_concrete(&subject.object.object_id);
                        }
                    }
                }
                let rest = closures.rest.into_iter().map(str::to_string).collect();
                (result, rest)
            },
        )
    }

    fn subjects_of_rewrite(
        &self,
        object: &ObjectRef,
        rewrite: &Rewrite,
        depth: u32,
        walk: &mut Walk<'_>,
    ) -> Result<SubjectIdSet, EngineError> {
        Ok(match rewrite {
            Rewrite::Union(children) => {
                let mut result = SubjectIdSet::default();
                for child in children {
                    result = result.union(self.subjects_of_rewrite(object, child, depth, walk)?);
                }
                result
            }
            Rewrite::Intersection(children) => {
                let mut result: Option<SubjectIdSet> = None;
                for child in children {
                    let next = self.subjects_of_rewrite(object, child, depth, walk)?;
                    result = Some(match result {
                        None => next,
                        Some(acc) if walk.mode == SetMode::Mentioned => acc.union(next),
                        Some(acc) => acc.intersect(next),
                    });
                }
                result.unwrap_or_default()
            }
            Rewrite::Exclusion(base, subtracted) => {
                let base = self.subjects_of_rewrite(object, base, depth, walk)?;
                match walk.mode {
                    SetMode::Superset => return Ok(base),
                    SetMode::Exact if base.is_empty() => return Ok(base),
                    SetMode::Exact | SetMode::Mentioned => {}
                }
                let subtracted = self.subjects_of_rewrite(object, subtracted, depth, walk)?;
                if walk.mode == SetMode::Mentioned {
                    base.union(subtracted)
                } else {
                    base.subtract(subtracted)
                }
            }
            Rewrite::Computed(name) => self.subjects_of_member(object, name, depth - 1, walk)?,
            Rewrite::Arrow {
                tupleset,
                computed,
                mode,
            } => {
                let mut any = SubjectIdSet::default();
                let mut all: Option<SubjectIdSet> = None;
                for subject in self.snapshot.subject_refs_of(object, tupleset) {
                    let subject = subject?;
                    if subject.is_wildcard() {
                        continue;
                    }
                    let target = &subject.object;
                    let has_member = self
                        .schema
                        .definition(&target.object_type)
                        .is_some_and(|d| d.member(computed).is_some());
                    let found = if has_member {
                        self.subjects_of_member(target, computed, depth - 1, walk)?
                    } else {
                        SubjectIdSet::default()
                    };
                    match mode {
                        ArrowMode::Any => any = any.union(found),
                        ArrowMode::All => {
                            all = Some(match all {
                                None => found,
                                Some(acc) if walk.mode == SetMode::Mentioned => acc.union(found),
                                Some(acc) => acc.intersect(found),
                            })
                        }
                    }
                }
                match mode {
                    ArrowMode::Any => any,
                    ArrowMode::All => all.unwrap_or_default(),
                }
            }
            Rewrite::Nil => SubjectIdSet::default(),
            Rewrite::SelfRef => {
                let mut result = SubjectIdSet::default();
                if object.object_type == walk.subject_type && walk.subject_relation.is_none() {
                    result.add_concrete(&object.object_id);
                }
                result
            }
        })
    }
}
