//! The arrow index: for each relation an arrow follows (`project` in `project->view`), which
//! resources name each subject, kept in memory so that lookup-resources crosses an arrow with
//! one hash lookup and one copy per subject instead of one reverse-index seek per subject.
//!
//! Walking `resource#view = ... + project->view` backwards from a user first finds the projects
//! the user can view (often hundreds), then every resource whose `project` names one of them.
//! The store answers that second step with one seek per project; this index answers it from
//! memory. Per indexed relation `T#r` it keeps, for each plain subject `S:id` (no subject
//! relation) that some `T:x#r@S:id` names, the ids `x` as one sorted [`IdSet`]. Caveated
//! edges are kept like any other (the store's reverse read returns them too, and the walk
//! confirms what a caveat narrows). Edges with an expiration are not: whether they still hold
//! depends on the clock, so a subject named by one is read from the store instead.
//!
//! Like the nested-group index, the arrow index is built from a snapshot and then follows the
//! write log; it is exact for the revisions from the last change of a relation up to the last
//! log entry applied, and outside that window the walk reads the store. A relation with more
//! than [`MAX_EDGES`] edges is not indexed (the memory would grow with the data); its arrows
//! read the store as before.

use std::collections::HashMap;

use super::id_set::{IdList, IdSet};
use super::plan::Plan;
use crate::filter::RelationshipFilter;
use crate::revision::Revision;
use crate::store::{Snapshot, StoreError};
use crate::tuple::{ObjectRef, Relationship};

/// The most edges one relation may have and stay indexed. An edge costs its resource id's
/// bytes and 16 more; a subject about 230 (its map entry and the set's three buffers). So a
/// relation costs at most about 250 MiB, where every subject is named once, and far less where
/// subjects are shared (100,000 resources in 10,000 projects: about 5 MiB). A larger relation
/// is read from the store, one seek per subject, as without the index.
pub(crate) const MAX_EDGES: usize = 1_000_000;

/// The arrow index of every arrow-followed relation of one schema generation.
#[derive(Debug, Default)]
pub(crate) struct ArrowIndex {
    relations: Vec<TuplesetIndex>,
}

impl ArrowIndex {
    /// Builds the index of every relation in `plan.arrow_tuplesets` from `snapshot`.
    pub(crate) fn build(plan: &Plan, snapshot: &dyn Snapshot) -> Result<Self, StoreError> {
        let revision = snapshot.revision();
        let mut relations = Vec::new();
        for (object_type, relation) in &plan.arrow_tuplesets {
            let mut index = TuplesetIndex::new(object_type, relation, revision);
            let filter = RelationshipFilter::of_relation(object_type, relation);
            for found in snapshot.read(&filter, None) {
                let found = found?;
                index.add_edge(&found);
                if index.edges.is_none() {
                    break;
                }
            }
            relations.push(index);
        }
        Ok(Self { relations })
    }

    /// Whether `object_type#relation` is indexed (its changes must be applied).
    pub(crate) fn covers(&self, object_type: &str, relation: &str) -> bool {
        self.relations
            .iter()
            .any(|r| r.object_type == object_type && r.relation == relation)
    }

    /// Applies changes in revision order (the caller skips those already applied): each is
    /// the revision, whether the relationship was deleted, and the relationship.
    pub(crate) fn apply(&mut self, changes: &[(Revision, bool, &Relationship)]) {
        for index in &mut self.relations {
            for (revision, deleted, rel) in changes {
                if rel.resource.object_type != index.object_type || rel.relation != index.relation {
                    continue;
                }
                index.remove_edge(rel);
                if !deleted {
                    index.add_edge(rel);
                }
                index.last_change = index.last_change.max(*revision);
            }
        }
    }

    /// The index of `object_type#relation`, if it is indexed, not over [`MAX_EDGES`], and
    /// exact for `revision` (the caller has checked that every log entry up to `revision` is
    /// applied).
    pub(crate) fn relation(
        &self,
        object_type: &str,
        relation: &str,
        revision: Revision,
    ) -> Option<&TuplesetIndex> {
        self.relations
            .iter()
            .find(|r| r.object_type == object_type && r.relation == relation)
            .filter(|r| r.last_change <= revision && r.edges.is_some())
    }
}

/// The index of one relation `T#r` that an arrow follows.
#[derive(Debug)]
pub(crate) struct TuplesetIndex {
    object_type: String,
    relation: String,
    /// The newest revision that changed this relation (or the build revision).
    last_change: Revision,
    /// The edges, or `None` once the relation grew past [`MAX_EDGES`] (then it stays unindexed
    /// until the index is rebuilt).
    edges: Option<Edges>,
}

/// The edges of one indexed relation.
#[derive(Debug, Default)]
struct Edges {
    /// The resources naming each subject through edges without an expiration.
    lasting: Subjects,
    /// The same through edges with an expiration (the store decides whether they hold).
    expiring: Subjects,
    /// How many edges the two maps hold.
    count: usize,
}

/// Per subject type, per subject id: the ids of the resources naming that subject, sorted, so
/// a read copies each subject's resources in one piece and an edge is found by binary search.
type Subjects = HashMap<Box<str>, HashMap<Box<str>, IdSet>>;

/// Adds `resource` to what names `subject` in `map`; `false` when it was there.
fn insert(map: &mut Subjects, subject: &ObjectRef, resource: &str) -> bool {
    let of_type = match map.get_mut(subject.object_type.as_str()) {
        Some(of_type) => of_type,
        None => map.entry(subject.object_type.as_str().into()).or_default(),
    };
    let set = match of_type.get_mut(subject.object_id.as_str()) {
        Some(set) => set,
        None => of_type
            .entry(subject.object_id.as_str().into())
            .or_default(),
    };
    set.insert(resource)
}

/// Takes `resource` out of what names `subject` in `map`; `false` when it was not there.
fn remove(map: &mut Subjects, subject: &ObjectRef, resource: &str) -> bool {
    let Some(of_type) = map.get_mut(subject.object_type.as_str()) else {
        return false;
    };
    let Some(set) = of_type.get_mut(subject.object_id.as_str()) else {
        return false;
    };
    let removed = set.remove(resource);
    if set.is_empty() {
        of_type.remove(subject.object_id.as_str());
    }
    removed
}

impl TuplesetIndex {
    fn new(object_type: &str, relation: &str, revision: Revision) -> Self {
        Self {
            object_type: object_type.to_string(),
            relation: relation.to_string(),
            last_change: revision,
            edges: Some(Edges::default()),
        }
    }

    /// Adds a stored relationship of this relation.
    fn add_edge(&mut self, rel: &Relationship) {
        let Some(edges) = self.edges.as_mut() else {
            return;
        };
        if rel.subject.relation.is_some() {
            return;
        }
        if edges.count >= MAX_EDGES {
            tracing::info!(
                relation = %format_args!("{}#{}", self.object_type, self.relation),
                "over {MAX_EDGES} edges: arrows over this relation read the store"
            );
            self.edges = None;
            return;
        }
        let map = if rel.expiration.is_some() {
            &mut edges.expiring
        } else {
            &mut edges.lasting
        };
        if insert(map, &rel.subject.object, &rel.resource.object_id) {
            edges.count += 1;
        }
    }

    /// Removes whatever edge the index holds between `rel`'s resource and subject.
    fn remove_edge(&mut self, rel: &Relationship) {
        let Some(edges) = self.edges.as_mut() else {
            return;
        };
        if rel.subject.relation.is_some() {
            return;
        }
        for map in [&mut edges.lasting, &mut edges.expiring] {
            if remove(map, &rel.subject.object, &rel.resource.object_id) {
                edges.count -= 1;
            }
        }
    }

    /// Appends to `into` every resource whose relation names `subject_type:id` for one of
    /// `ids` through an edge without an expiration. Returns the ids that some edge with an
    /// expiration names: the caller reads those subjects from the store instead (which returns
    /// all of their resources).
    pub(crate) fn resources_naming<'i>(
        &self,
        subject_type: &str,
        ids: impl Iterator<Item = &'i str>,
        into: &mut IdList,
    ) -> Vec<&'i str> {
        let Some(edges) = self.edges.as_ref() else {
            return ids.collect();
        };
        let lasting = edges.lasting.get(subject_type);
        let expiring = edges.expiring.get(subject_type);
        let mut from_store = Vec::new();
        for id in ids {
            if expiring.is_some_and(|of_type| of_type.contains_key(id)) {
                from_store.push(id);
            } else if let Some(set) = lasting.and_then(|of_type| of_type.get(id)) {
                into.push_set(set);
            }
        }
        from_store
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn rel(text: &str) -> Relationship {
        Relationship::parse(text).unwrap()
    }

    fn index(edges: &[&str]) -> TuplesetIndex {
        let mut index = TuplesetIndex::new("doc", "folder", Revision(1));
        for text in edges {
            index.add_edge(&rel(text));
        }
        index
    }

    /// The sorted resources the index names for `ids`, and the ids left to the store.
    fn naming(index: &TuplesetIndex, ids: &[&str]) -> (Vec<String>, Vec<String>) {
        let mut found = IdList::default();
        let stored = index.resources_naming("folder", ids.iter().copied(), &mut found);
        (
            found.into_set().iter().map(str::to_string).collect(),
            stored.into_iter().map(str::to_string).collect(),
        )
    }

    #[test]
    fn unions_the_resources_of_many_subjects_once_each() {
        let index = index(&[
            "doc:a#folder@folder:f1",
            "doc:b#folder@folder:f1",
            "doc:b#folder@folder:f2",
            "doc:c#folder@folder:f3",
            "doc:d#folder@folder:f2#parent",
        ]);
        let (found, stored) = naming(&index, &["f1", "f2", "missing"]);
        assert_eq!(found, ["a", "b"]);
        assert!(stored.is_empty());
        let (found, _) = naming(&index, &["f3"]);
        assert_eq!(found, ["c"]);
    }

    #[test]
    fn caveated_edges_count_and_expiring_ones_go_to_the_store() {
        let index = index(&[
            "doc:a#folder@folder:f1[only_on_tuesday]",
            "doc:b#folder@folder:f2[expiration:2100-01-01T00:00:00Z]",
            "doc:c#folder@folder:f2",
        ]);
        let (found, stored) = naming(&index, &["f1", "f2"]);
        assert_eq!(found, ["a"]);
        assert_eq!(stored, ["f2"]);
    }

    #[test]
    fn deletes_and_touches_replace_edges() {
        let mut index = index(&[
            "doc:a#folder@folder:f1",
            "doc:b#folder@folder:f1[expiration:2100-01-01T00:00:00Z]",
        ]);
        let mut arrows = ArrowIndex {
            relations: vec![std::mem::replace(
                &mut index,
                TuplesetIndex::new("doc", "folder", Revision(1)),
            )],
        };
        let deleted = rel("doc:a#folder@folder:f1");
        let touched = rel("doc:b#folder@folder:f1");
        let other = rel("doc:z#parent@folder:f1");
        arrows.apply(&[
            (Revision(2), true, &deleted),
            (Revision(3), false, &touched),
            (Revision(3), false, &other),
        ]);
        assert!(arrows.relation("doc", "folder", Revision(2)).is_none());
        let index = arrows.relation("doc", "folder", Revision(3)).unwrap();
        let (found, stored) = naming(index, &["f1"]);
        assert_eq!(found, ["b"]);
        assert!(stored.is_empty());
        assert_eq!(index.edges.as_ref().unwrap().count, 1);
    }

    #[test]
    fn a_relation_over_the_limit_is_left_to_the_store() {
        let mut index = index(&[]);
        index.edges.as_mut().unwrap().count = MAX_EDGES;
        index.add_edge(&rel("doc:a#folder@folder:f1"));
        assert!(index.edges.is_none());
        let arrows = ArrowIndex {
            relations: vec![index],
        };
        assert!(arrows.relation("doc", "folder", Revision(5)).is_none());
        assert!(arrows.covers("doc", "folder"));
    }
}
