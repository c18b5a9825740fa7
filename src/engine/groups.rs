//! The nested-group index (after Zanzibar's Leopard): for each self-recursive relation
//! (`group#member: user | group#member`), the transitive closure of its subject-set edges as
//! roaring bitmaps over interned object ids, so "is this user in this group, through any number
//! of nested groups?" is one bitmap intersection instead of a walk.
//!
//! Per indexed relation `T#r` it keeps:
//! - `children[g]`: the groups `h` with a plain edge `T:g#r@T:h#r` (no caveat, no expiration),
//!   and the reverse `parents`;
//! - `closure[g]`: every group reachable from `g` through plain edges, `g` included;
//! - `holders[s]`: the groups holding subject `s` (an object, no subject relation, interned in
//!   `subjects`) through a plain edge, and `wildcards[type]` likewise for `type:*`; `members[g]`
//!   is the other direction (the plain subjects `g` holds itself, wildcards included), so the
//!   members of a whole closure are a union of bitmaps (lookup-subjects);
//! - `complex`: the groups holding any other edge (caveated, expiring, or a subject set of
//!   another relation). Such edges are never folded into the closure: a group whose closure
//!   contains a complex group is answered by the ordinary walk, which evaluates them exactly.
//! - `bound[g]`: an upper bound on how deep the walk from `g` can go (every simple path through
//!   the strongly connected components below `g`, plus the edge that closes a cycle), so the
//!   index is used only where the walk could not have run out of depth: answers with the index
//!   on and off are identical, errors included.
//!
//! The index is built from a snapshot at startup and then follows the write log. After a batch
//! of changes only the groups that can reach a changed edge (before or after the change) get
//! their closure recomputed, strongly connected component by component (Tarjan), in reverse
//! topological order. The index is exact for the revisions from the last change of a relation up
//! to the last log entry applied; outside that window the engine walks.

use std::collections::{HashMap, HashSet};

use indexmap::IndexSet;
use roaring::{MultiOps, RoaringBitmap};

use super::plan::Plan;
use crate::filter::RelationshipFilter;
use crate::revision::Revision;
use crate::schema::{AllowedKind, Schema};
use crate::store::{Snapshot, StoreError};
use crate::tuple::{Relationship, SubjectRef};

/// The index of every self-recursive relation of one schema generation.
#[derive(Debug)]
pub(crate) struct GroupIndex {
    generation: u64,
    applied: Revision,
    relations: Vec<RelationIndex>,
}

/// A probe's answer: whether the subject is a member, and the depth the walk would have needed
/// at most.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Probe {
    pub(crate) member: bool,
    pub(crate) bound: u32,
}

impl GroupIndex {
    /// Builds the index of every self-recursive relation of `plan` from `snapshot`.
    pub(crate) fn build(
        schema: &Schema,
        plan: &Plan,
        snapshot: &dyn Snapshot,
    ) -> Result<Self, StoreError> {
        let revision = snapshot.revision();
        let mut relations = Vec::new();
        for (object_type, relation) in &plan.self_recursive {
            let mut index = RelationIndex::new(schema, object_type, relation, revision);
            let filter = RelationshipFilter::of_relation(object_type, relation);
            for found in snapshot.read(&filter, None) {
                let found = found?;
                let group = index.intern(&found.resource.object_id);
                index.add_edge(group, &found);
            }
            let everything: RoaringBitmap = (0..index.len()).collect();
            index.recompute(&everything);
            relations.push(index);
        }
        Ok(Self {
            generation: plan.generation,
            applied: revision,
            relations,
        })
    }

    /// The schema generation the index was built for.
    pub(crate) fn generation(&self) -> u64 {
        self.generation
    }

    /// The last log revision applied.
    pub(crate) fn applied(&self) -> Revision {
        self.applied
    }

    /// Applies changes, in revision order; those at or before `applied` are skipped. Each is
    /// the revision, whether the relationship was deleted, and the relationship (as written,
    /// or as it was for a delete).
    pub(crate) fn apply(&mut self, changes: &[(Revision, bool, &Relationship)], through: Revision) {
        let applied = self.applied;
        for index in &mut self.relations {
            let relevant: Vec<(Revision, bool, &Relationship)> = changes
                .iter()
                .filter(|(revision, _, rel)| {
                    *revision > applied
                        && rel.resource.object_type == index.object_type
                        && rel.relation == index.relation
                })
                .copied()
                .collect();
            if !relevant.is_empty() {
                index.apply(&relevant);
            }
        }
        self.applied = self.applied.max(through);
    }

    /// Whether `object_type#relation` is one of the indexed relations.
    pub(crate) fn covers(&self, object_type: &str, relation: &str) -> bool {
        self.relations
            .iter()
            .any(|r| r.object_type == object_type && r.relation == relation)
    }

    /// The index of `object_type#relation`, if it is indexed and exact for `revision` under
    /// schema `generation`.
    pub(crate) fn relation(
        &self,
        generation: u64,
        object_type: &str,
        relation: &str,
        revision: Revision,
    ) -> Option<&RelationIndex> {
        if generation != self.generation || revision > self.applied {
            return None;
        }
        self.relations
            .iter()
            .find(|r| r.object_type == object_type && r.relation == relation)
            .filter(|r| r.last_change <= revision)
    }
}

/// The closures of many groups at once ([`RelationIndex::closures`]).
#[derive(Debug, Default)]
pub(crate) struct Closures<'a> {
    /// Every group in the closures the index could tell (interned ids).
    pub(crate) groups: RoaringBitmap,
    /// Groups no relationship names: their closure is themselves alone, holding nothing.
    pub(crate) unknown: Vec<&'a str>,
    /// Groups the index cannot answer for (a complex edge below, or not enough depth).
    pub(crate) rest: Vec<&'a str>,
}

/// The index of one self-recursive relation `T#r`.
#[derive(Debug)]
pub(crate) struct RelationIndex {
    object_type: String,
    relation: String,
    /// The newest revision that changed this relation (or the build revision): the index is
    /// exact for every revision from here to the last applied.
    last_change: Revision,
    /// Subject types whose wildcard the relation allows.
    wildcard_types: HashSet<String>,
    /// Group ids, interned: a group's number is its place in the set.
    names: IndexSet<String>,
    children: Vec<RoaringBitmap>,
    parents: Vec<RoaringBitmap>,
    closure: Vec<RoaringBitmap>,
    bound: Vec<u32>,
    /// Plain subjects (no subject relation, wildcards included) named by some edge, interned.
    subjects: IndexSet<SubjectRef>,
    /// Per interned subject, the groups holding it through a plain edge.
    holders: Vec<RoaringBitmap>,
    /// Per group, the interned subjects it holds through a plain edge.
    members: Vec<RoaringBitmap>,
    wildcards: HashMap<String, RoaringBitmap>,
    complex: HashMap<u32, HashSet<SubjectRef>>,
    complex_groups: RoaringBitmap,
    /// Per group, how many complex edges name it as a subject set (lookups must read those
    /// from the store).
    complex_in: HashMap<u32, u32>,
}

impl RelationIndex {
    fn new(schema: &Schema, object_type: &str, relation: &str, revision: Revision) -> Self {
        let wildcard_types = schema
            .definition(object_type)
            .and_then(|d| d.relations.get(relation))
            .map(|r| {
                r.allowed
                    .iter()
                    .filter(|a| a.kind == AllowedKind::Wildcard)
                    .map(|a| a.subject_type.clone())
                    .collect()
            })
            .unwrap_or_default();
        Self {
            object_type: object_type.to_string(),
            relation: relation.to_string(),
            last_change: revision,
            wildcard_types,
            names: IndexSet::new(),
            children: Vec::new(),
            parents: Vec::new(),
            closure: Vec::new(),
            bound: Vec::new(),
            subjects: IndexSet::new(),
            holders: Vec::new(),
            members: Vec::new(),
            wildcards: HashMap::new(),
            complex: HashMap::new(),
            complex_groups: RoaringBitmap::new(),
            complex_in: HashMap::new(),
        }
    }

    fn len(&self) -> u32 {
        u32::try_from(self.names.len()).unwrap_or(u32::MAX)
    }

    fn intern(&mut self, id: &str) -> u32 {
        if let Some(found) = self.group_number(id) {
            return found;
        }
        let next = self.len();
        self.names.insert(id.to_string());
        self.children.push(RoaringBitmap::new());
        self.parents.push(RoaringBitmap::new());
        let mut own = RoaringBitmap::new();
        own.insert(next);
        self.closure.push(own);
        self.bound.push(0);
        self.members.push(RoaringBitmap::new());
        next
    }

    /// The interned id of a plain subject.
    fn intern_subject(&mut self, subject: &SubjectRef) -> u32 {
        if let Some(found) = self.subject_number(subject) {
            return found;
        }
        let next = u32::try_from(self.subjects.len()).unwrap_or(u32::MAX);
        self.subjects.insert(subject.clone());
        self.holders.push(RoaringBitmap::new());
        next
    }

    /// The interned number of group `id`, if some relationship names it.
    fn group_number(&self, id: &str) -> Option<u32> {
        self.names
            .get_index_of(id)
            .map(|index| u32::try_from(index).unwrap_or(u32::MAX))
    }

    /// The interned number of a plain subject, if some plain edge names it.
    fn subject_number(&self, subject: &SubjectRef) -> Option<u32> {
        self.subjects
            .get_index_of(subject)
            .map(|index| u32::try_from(index).unwrap_or(u32::MAX))
    }

    fn slot(&self, id: u32) -> usize {
        usize::try_from(id).unwrap_or(usize::MAX)
    }

    fn is_self_set(&self, subject: &SubjectRef) -> bool {
        subject.object.object_type == self.object_type
            && subject.relation.as_deref() == Some(self.relation.as_str())
    }

    /// Removes whatever edge `group -> subject` the index holds.
    fn remove_edge(&mut self, group: u32, subject: &SubjectRef) {
        if self.is_self_set(subject) {
            if let Some(child) = self.group_number(&subject.object.object_id) {
                let (g, c) = (self.slot(group), self.slot(child));
                if let Some(children) = self.children.get_mut(g) {
                    children.remove(child);
                }
                if let Some(parents) = self.parents.get_mut(c) {
                    parents.remove(group);
                }
            }
        } else if subject.relation.is_none() {
            if subject.is_wildcard() {
                if let Some(bitmap) = self.wildcards.get_mut(&subject.object.object_type) {
                    bitmap.remove(group);
                }
            }
            if let Some(id) = self.subject_number(subject) {
                let (s, g) = (self.slot(id), self.slot(group));
                if let Some(holders) = self.holders.get_mut(s) {
                    holders.remove(group);
                }
                if let Some(members) = self.members.get_mut(g) {
                    members.remove(id);
                }
            }
        }
        let mut now_empty = false;
        let mut removed = false;
        if let Some(set) = self.complex.get_mut(&group) {
            removed = set.remove(subject);
            now_empty = set.is_empty();
        }
        if removed && self.is_self_set(subject) {
            if let Some(child) = self.group_number(&subject.object.object_id) {
                if let Some(count) = self.complex_in.get_mut(&child) {
                    *count = count.saturating_sub(1);
                    if *count == 0 {
                        self.complex_in.remove(&child);
                    }
                }
            }
        }
        if now_empty {
            self.complex.remove(&group);
            self.complex_groups.remove(group);
        }
    }

    /// Adds the stored relationship `rel` (on `group`) to the index.
    fn add_edge(&mut self, group: u32, rel: &Relationship) {
        let subject = &rel.subject;
        let plain = rel.caveat.is_none() && rel.expiration.is_none();
        if plain && self.is_self_set(subject) {
            let child = self.intern(&subject.object.object_id);
            let (g, c) = (self.slot(group), self.slot(child));
            if let Some(children) = self.children.get_mut(g) {
                children.insert(child);
            }
            if let Some(parents) = self.parents.get_mut(c) {
                parents.insert(group);
            }
        } else if plain && subject.relation.is_none() {
            if subject.is_wildcard() {
                self.wildcards
                    .entry(subject.object.object_type.clone())
                    .or_default()
                    .insert(group);
            }
            let id = self.intern_subject(subject);
            let (s, g) = (self.slot(id), self.slot(group));
            if let Some(holders) = self.holders.get_mut(s) {
                holders.insert(group);
            }
            if let Some(members) = self.members.get_mut(g) {
                members.insert(id);
            }
        } else {
            let inserted = self
                .complex
                .entry(group)
                .or_default()
                .insert(subject.clone());
            self.complex_groups.insert(group);
            if inserted && self.is_self_set(subject) {
                let child = self.intern(&subject.object.object_id);
                *self.complex_in.entry(child).or_default() += 1;
            }
        }
    }

    /// Applies this relation's changes (in revision order) and recomputes the closures that
    /// may have changed.
    fn apply(&mut self, changes: &[(Revision, bool, &Relationship)]) {
        let mut sources = RoaringBitmap::new();
        for (_, _, rel) in changes {
            if self.is_self_set(&rel.subject) {
                sources.insert(self.intern(&rel.resource.object_id));
            }
        }
        let before = self.ancestors(&sources);
        for (revision, deleted, rel) in changes {
            let group = self.intern(&rel.resource.object_id);
            self.remove_edge(group, &rel.subject);
            if !deleted {
                self.add_edge(group, rel);
            }
            self.last_change = self.last_change.max(*revision);
        }
        let mut affected = self.ancestors(&sources);
        affected |= before;
        if !affected.is_empty() {
            self.recompute(&affected);
        }
    }

    /// `nodes` and every group that reaches one of them.
    fn ancestors(&self, nodes: &RoaringBitmap) -> RoaringBitmap {
        let mut seen = nodes.clone();
        let mut stack: Vec<u32> = nodes.iter().collect();
        while let Some(node) = stack.pop() {
            if let Some(parents) = self.parents.get(self.slot(node)) {
                for parent in parents {
                    if seen.insert(parent) {
                        stack.push(parent);
                    }
                }
            }
        }
        seen
    }

    /// Recomputes `closure` and `bound` of every node in `nodes` (a set closed under
    /// "reaches": every group that reaches a member is a member), taking the closures of
    /// groups outside it as they are.
    fn recompute(&mut self, nodes: &RoaringBitmap) {
        // Iterative Tarjan over the subgraph `nodes` induces; components come out in reverse
        // topological order, so every component below one is finished before it.
        let mut order: HashMap<u32, (u32, u32)> = HashMap::new(); // node -> (index, low link)
        let mut on_stack = RoaringBitmap::new();
        let mut stack: Vec<u32> = Vec::new();
        let mut counter = 0u32;
        for root in nodes {
            if order.contains_key(&root) {
                continue;
            }
            let mut calls: Vec<(u32, Vec<u32>, usize)> = Vec::new();
            self.enter(
                root,
                nodes,
                &mut order,
                &mut counter,
                &mut stack,
                &mut on_stack,
                &mut calls,
            );
            while let Some(frame) = calls.last_mut() {
                let node = frame.0;
                if let Some(kid) = frame.1.get(frame.2).copied() {
                    frame.2 += 1;
                    match order.get(&kid).copied() {
                        None => self.enter(
                            kid,
                            nodes,
                            &mut order,
                            &mut counter,
                            &mut stack,
                            &mut on_stack,
                            &mut calls,
                        ),
                        Some((kid_index, _)) if on_stack.contains(kid) => {
                            if let Some(entry) = order.get_mut(&node) {
                                entry.1 = entry.1.min(kid_index);
                            }
                        }
                        Some(_) => {}
                    }
                    continue;
                }
                calls.pop();
                let (index, low) = order.get(&node).copied().unwrap_or((0, 0));
                if let Some((parent, _, _)) = calls.last() {
                    if let Some(entry) = order.get_mut(parent) {
                        entry.1 = entry.1.min(low);
                    }
                }
                if low == index {
                    let mut component = Vec::new();
                    while let Some(member) = stack.pop() {
                        on_stack.remove(member);
                        component.push(member);
                        if member == node {
                            break;
                        }
                    }
                    self.finish_component(&component);
                }
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn enter(
        &self,
        node: u32,
        nodes: &RoaringBitmap,
        order: &mut HashMap<u32, (u32, u32)>,
        counter: &mut u32,
        stack: &mut Vec<u32>,
        on_stack: &mut RoaringBitmap,
        calls: &mut Vec<(u32, Vec<u32>, usize)>,
    ) {
        order.insert(node, (*counter, *counter));
        *counter += 1;
        stack.push(node);
        on_stack.insert(node);
        let kids = self
            .children
            .get(self.slot(node))
            .map(|c| c.iter().filter(|k| nodes.contains(*k)).collect())
            .unwrap_or_default();
        calls.push((node, kids, 0));
    }

    /// Sets the closure and depth bound of one strongly connected component whose successors
    /// are all final.
    fn finish_component(&mut self, component: &[u32]) {
        let members: RoaringBitmap = component.iter().copied().collect();
        let mut closure = members.clone();
        let mut below: u32 = 0;
        let mut cyclic = component.len() > 1;
        for &node in component {
            let Some(children) = self.children.get(self.slot(node)) else {
                continue;
            };
            for child in children {
                if members.contains(child) {
                    cyclic = true; // includes a group that holds itself
                    continue;
                }
                if let Some(reach) = self.closure.get(self.slot(child)) {
                    closure |= reach;
                }
                let child_bound = self.bound.get(self.slot(child)).copied().unwrap_or(0);
                below = below.max(child_bound.saturating_add(1));
            }
        }
        let own = if cyclic {
            u32::try_from(component.len()).unwrap_or(u32::MAX)
        } else {
            0
        };
        let bound = own.saturating_add(below);
        for &node in component {
            let slot = self.slot(node);
            if let Some(entry) = self.closure.get_mut(slot) {
                *entry = closure.clone();
            }
            if let Some(entry) = self.bound.get_mut(slot) {
                *entry = bound;
            }
        }
    }

    /// The closure of `group` when the index alone decides membership in it: every group in it
    /// holds only plain edges, and `depth` exceeds how deep the walk could go.
    fn pure_closure(&self, group: u32, depth: u32) -> Option<(&RoaringBitmap, u32)> {
        let slot = self.slot(group);
        let closure = self.closure.get(slot)?;
        let bound = self.bound.get(slot).copied()?;
        if depth <= bound || !closure.is_disjoint(&self.complex_groups) {
            return None;
        }
        Some((closure, bound))
    }

    /// Whether `subject` is in `group_id#r` (through any nesting), when the index alone can
    /// tell with `depth` levels left; `None` when the walk must decide.
    pub(crate) fn probe(&self, group_id: &str, subject: &SubjectRef, depth: u32) -> Option<Probe> {
        let Some(group) = self.group_number(group_id) else {
            // A group no relationship names: nothing is in it.
            return Some(Probe {
                member: false,
                bound: 0,
            });
        };
        let (closure, bound) = self.pure_closure(group, depth)?;
        let member = if self.is_self_set(subject) {
            self.group_number(&subject.object.object_id)
                .is_some_and(|id| closure.contains(id))
        } else {
            // A wildcard subject is in only through the wildcard rule below (`holders` keeps
            // wildcards too, for `members`).
            let direct = subject.relation.is_none()
                && !subject.is_wildcard()
                && self
                    .subject_number(subject)
                    .and_then(|id| self.holders.get(self.slot(id)))
                    .is_some_and(|holders| !holders.is_disjoint(closure));
            direct
                || (subject.relation.is_none()
                    && self.wildcard_types.contains(&subject.object.object_type)
                    && self
                        .wildcards
                        .get(&subject.object.object_type)
                        .is_some_and(|holders| !holders.is_disjoint(closure)))
        };
        Some(Probe { member, bound })
    }

    /// The union of the closures of `group_ids` (each group itself included), for those whose
    /// closure the index alone can tell with `depth` levels left; the others are returned in
    /// [`Closures::rest`].
    pub(crate) fn closures<'a>(
        &self,
        group_ids: impl IntoIterator<Item = &'a str>,
        depth: u32,
    ) -> Closures<'a> {
        let mut found = Closures::default();
        let mut closures = Vec::new();
        for group_id in group_ids {
            let Some(group) = self.group_number(group_id) else {
                found.unknown.push(group_id);
                continue;
            };
            match self.pure_closure(group, depth) {
                Some((closure, _)) => closures.push(closure),
                None => found.rest.push(group_id),
            }
        }
        // One multi-way union: or-ing the closures one by one into a growing array would copy
        // it once per group.
        found.groups = closures.union();
        found
    }

    /// The id of an interned group.
    pub(crate) fn group_name(&self, group: u32) -> Option<&str> {
        self.names.get_index(self.slot(group)).map(String::as_str)
    }

    /// Every plain subject (an object or a wildcard, no subject relation) that some group of
    /// `groups` holds through a plain edge, each once.
    pub(crate) fn members_of(&self, groups: &RoaringBitmap) -> impl Iterator<Item = &SubjectRef> {
        let subjects = groups
            .iter()
            .filter_map(|group| self.members.get(self.slot(group)))
            .union();
        subjects
            .into_iter()
            .filter_map(|id| self.subjects.get_index(self.slot(id)))
    }

    /// The groups holding `group_id#r` through a plain edge, and whether some caveated or
    /// expiring edge also names it (those must be read from the store).
    pub(crate) fn parents(&self, group_id: &str) -> (Vec<&str>, bool) {
        let Some(group) = self.group_number(group_id) else {
            return (Vec::new(), false);
        };
        let parents = self
            .parents
            .get(self.slot(group))
            .map(|p| {
                p.iter()
                    .filter_map(|id| self.names.get_index(self.slot(id)).map(String::as_str))
                    .collect()
            })
            .unwrap_or_default();
        (parents, self.complex_in.contains_key(&group))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index(edges: &[&str]) -> RelationIndex {
        let schema = crate::schema::compile(
            "use expiration
             caveat cav(x int) { x == 1 }
             definition user {}
             definition team { relation member: user }
             definition group {
                 relation member: user | user:* | group#member | team#member | user with cav | group#member with expiration
             }",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let mut index = RelationIndex::new(&schema, "group", "member", Revision(1));
        let rels: Vec<Relationship> = edges.iter().map(|text| rel(text)).collect();
        let changes: Vec<(Revision, bool, &Relationship)> =
            rels.iter().map(|r| (Revision(2), false, r)).collect();
        index.apply(&changes);
        index
    }

    fn rel(text: &str) -> Relationship {
        Relationship::parse(text).unwrap_or_else(|e| panic!("{e}"))
    }

    fn delete(index: &mut RelationIndex, text: &str) {
        index.apply(&[(Revision(3), true, &rel(text))]);
    }

    fn member(index: &RelationIndex, group: &str, subject: &str) -> Option<bool> {
        let subject = SubjectRef::parse(subject).unwrap_or_else(|e| panic!("{e}"));
        index.probe(group, &subject, 50).map(|p| p.member)
    }

    #[test]
    fn chains_cycles_and_deletes() {
        let mut index = index(&[
            "group:a#member@group:b#member",
            "group:b#member@group:c#member",
            "group:c#member@group:a#member",
            "group:c#member@user:ann",
            "group:d#member@group:a#member",
        ]);
        for group in ["a", "b", "c", "d"] {
            assert_eq!(member(&index, group, "user:ann"), Some(true), "{group}");
        }
        assert_eq!(member(&index, "a", "user:bob"), Some(false));
        assert_eq!(member(&index, "d", "group:b#member"), Some(true));
        assert_eq!(member(&index, "a", "group:d#member"), Some(false));
        delete(&mut index, "group:b#member@group:c#member");
        assert_eq!(member(&index, "a", "user:ann"), Some(false));
        assert_eq!(member(&index, "c", "user:ann"), Some(true));
        assert_eq!(member(&index, "d", "user:ann"), Some(false));
        assert_eq!(member(&index, "nobody", "user:ann"), Some(false));
    }

    #[test]
    fn depth_bound_covers_the_longest_walk() {
        let index = index(&[
            "group:g2#member@group:g1#member",
            "group:g1#member@group:g0#member",
            "group:g0#member@user:ann",
            "group:x#member@group:y#member",
            "group:y#member@group:x#member",
        ]);
        let ann = SubjectRef::parse("user:ann").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(index.probe("g2", &ann, 2), None, "the walk needs 3 levels");
        assert_eq!(
            index.probe("g2", &ann, 3),
            Some(Probe {
                member: true,
                bound: 2
            })
        );
        assert_eq!(
            index.probe("x", &ann, 2),
            None,
            "x -> y -> x needs 3 levels"
        );
        assert!(index.probe("x", &ann, 3).is_some());
    }

    #[test]
    fn wildcards_count_only_for_plain_subjects() {
        let index = index(&["group:a#member@group:b#member", "group:b#member@user:*"]);
        assert_eq!(member(&index, "a", "user:anyone"), Some(true));
        assert_eq!(member(&index, "a", "team:t#member"), Some(false));
    }

    #[test]
    fn caveated_expiring_and_foreign_edges_send_the_walk() {
        let index = index(&[
            "group:a#member@group:b#member",
            "group:b#member@user:ann[cav]",
            "group:x#member@group:y#member[expiration:2030-01-01T00:00:00Z]",
            "group:t#member@team:eng#member",
            "group:p#member@user:ann",
        ]);
        assert_eq!(member(&index, "a", "user:ann"), None);
        assert_eq!(member(&index, "b", "user:ann"), None);
        assert_eq!(member(&index, "x", "user:ann"), None);
        assert_eq!(member(&index, "y", "user:ann"), Some(false));
        assert_eq!(member(&index, "t", "user:ann"), None);
        assert_eq!(member(&index, "p", "user:ann"), Some(true));
        assert_eq!(index.parents("y"), (Vec::new(), true));
        assert_eq!(index.parents("b"), (vec!["a"], false));
    }

    fn members(index: &RelationIndex, groups: &[&str]) -> (Vec<String>, Vec<String>) {
        let closures = index.closures(groups.iter().copied(), 50);
        let mut found: Vec<String> = index
            .members_of(&closures.groups)
            .map(ToString::to_string)
            .collect();
        found.sort();
        let rest = closures.rest.iter().map(ToString::to_string).collect();
        (found, rest)
    }

    #[test]
    fn members_of_closures_follow_edges_and_skip_complex_groups() {
        let mut index = index(&[
            "group:a#member@group:b#member",
            "group:b#member@user:ann",
            "group:b#member@user:*",
            "group:c#member@user:bob",
            "group:d#member@group:b#member",
            "group:d#member@user:eve[cav]",
        ]);
        let closures = index.closures(["a", "c", "d", "nobody"], 50);
        let mut groups: Vec<&str> = closures
            .groups
            .iter()
            .filter_map(|g| index.group_name(g))
            .collect();
        groups.sort();
        assert_eq!(groups, ["a", "b", "c"]);
        assert_eq!(closures.unknown, ["nobody"]);
        assert_eq!(closures.rest, ["d"], "d holds a caveated edge");
        assert_eq!(
            members(&index, &["a", "c"]),
            (
                vec!["user:*".to_string(), "user:ann".into(), "user:bob".into()],
                Vec::new()
            )
        );
        delete(&mut index, "group:b#member@user:ann");
        assert_eq!(
            members(&index, &["a"]),
            (vec!["user:*".to_string()], Vec::new())
        );
        index.apply(&[(Revision(4), false, &rel("group:c#member@user:bob[cav]"))]);
        assert_eq!(members(&index, &["c"]), (Vec::new(), vec!["c".to_string()]));
        assert_eq!(
            member(&index, "a", "user:*"),
            Some(true),
            "through the wildcard rule"
        );
    }

    #[test]
    fn touch_replaces_an_edge_kind() {
        let mut index = index(&["group:a#member@user:ann[cav]"]);
        assert_eq!(member(&index, "a", "user:ann"), None);
        index.apply(&[(Revision(3), false, &rel("group:a#member@user:ann"))]);
        assert_eq!(member(&index, "a", "user:ann"), Some(true));
        delete(&mut index, "group:a#member@user:ann");
        assert_eq!(member(&index, "a", "user:ann"), Some(false));
    }
}
