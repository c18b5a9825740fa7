//! What the engine derives once per installed schema for the check cache and the nested-group
//! and arrow indexes: each member's stored dependencies, which members lie on a static cycle,
//! which relations are self-recursive subject sets, and which relations arrows follow.
//!
//! Every installed schema gets a new generation number; cache entries and the group index are
//! tagged with it, so nothing computed under one schema ever answers under another.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use crate::schema::{AllowedKind, Definition, Member, Rewrite, Schema};
use crate::store::ReadAhead;

/// A `(object type, relation or permission)` pair.
pub(crate) type MemberKey = (String, String);

/// Static facts about one schema generation.
#[derive(Debug)]
pub(crate) struct Plan {
    /// Which installed schema this describes.
    pub(crate) generation: u64,
    /// Per type and member, the stored relations its answer can depend on
    /// ([`Schema::dependencies`]).
    dependencies: HashMap<String, HashMap<String, Arc<[MemberKey]>>>,
    /// Members that can reach themselves through the schema (a relation holding its own type's
    /// subject set, arrows back to the same permission, ...). A sub-check of such a member may
    /// meet a pair already on the caller's path, so its answer depends on that path and is
    /// cached only as a whole request's answer.
    cyclic: HashMap<String, HashSet<String>>,
    /// Whether the schema declares any caveat: without one, no answer depends on the request
    /// context.
    pub(crate) has_caveats: bool,
    /// Relations `T#r` that allow the subject set `T#r` itself (`member: user | group#member`):
    /// the relations the nested-group index covers.
    pub(crate) self_recursive: Vec<MemberKey>,
    /// Relations `T#r` that an arrow of `T` follows (`r->...`): the relations the arrow index
    /// covers.
    pub(crate) arrow_tuplesets: Vec<MemberKey>,
    /// Members whose check may follow an arrow, itself or through the members it evaluates:
    /// a check of any other member never reads an arrow's targets.
    follows_arrows: HashSet<MemberKey>,
}

impl Plan {
    /// Whether `object_type#relation` is a self-recursive relation (covered by the group index).
    pub(crate) fn is_self_recursive(&self, object_type: &str, relation: &str) -> bool {
        self.self_recursive
            .iter()
            .any(|(t, r)| t == object_type && r == relation)
    }
}

impl Plan {
    /// Derives the plan of `schema`, labelled `generation`.
    pub(crate) fn new(schema: &Schema, generation: u64) -> Self {
        let mut dependencies: HashMap<String, HashMap<String, Arc<[MemberKey]>>> = HashMap::new();
        let mut edges: HashMap<MemberKey, Vec<MemberKey>> = HashMap::new();
        let mut self_recursive = Vec::new();
        for def in schema.definitions.values() {
            for name in def.relations.keys().chain(def.permissions.keys()) {
                let key = (def.name.clone(), name.clone());
                let deps: Vec<MemberKey> =
                    schema.dependencies(&def.name, name).into_iter().collect();
                dependencies
                    .entry(def.name.clone())
                    .or_default()
                    .insert(name.clone(), Arc::from(deps));
                edges.insert(key, successors(schema, def, name));
            }
            for relation in def.relations.values() {
                let recursive = relation.allowed.iter().any(|allowed| {
                    allowed.subject_type == def.name
                        && allowed.kind == AllowedKind::SubjectSet(relation.name.clone())
                });
                if recursive {
                    self_recursive.push((def.name.clone(), relation.name.clone()));
                }
            }
        }
        let with_arrow: HashSet<MemberKey> = schema
            .definitions
            .values()
            .flat_map(|def| {
                def.permissions
                    .values()
                    .filter(|p| has_arrow(&p.rewrite))
                    .map(|p| (def.name.clone(), p.name.clone()))
            })
            .collect();
        let follows_arrows = edges
            .keys()
            .filter(|start| reaches_any(&edges, start, &with_arrow))
            .cloned()
            .collect();
        let mut cyclic: HashMap<String, HashSet<String>> = HashMap::new();
        for start in edges.keys().filter(|start| reaches_itself(&edges, start)) {
            cyclic
                .entry(start.0.clone())
                .or_default()
                .insert(start.1.clone());
        }
        Self {
            generation,
            dependencies,
            cyclic,
            has_caveats: !schema.caveats.is_empty(),
            self_recursive,
            arrow_tuplesets: arrow_tuplesets(schema),
            follows_arrows,
        }
    }

    /// What a check of `object_type#member` reads ahead (see [`ReadAhead`]).
    pub(crate) fn read_ahead(&self, object_type: &str, member: &str) -> ReadAhead {
        let key = (object_type.to_string(), member.to_string());
        if self.follows_arrows.contains(&key) {
            ReadAhead::ArrowTargets
        } else {
            ReadAhead::Objects
        }
    }

    /// The stored relations `object_type#member` depends on (empty for unknown members).
    pub(crate) fn dependencies(&self, object_type: &str, member: &str) -> Arc<[MemberKey]> {
        self.dependencies
            .get(object_type)
            .and_then(|members| members.get(member))
            .cloned()
            .unwrap_or_else(|| Arc::from(Vec::new()))
    }

    /// Whether a sub-check of `object_type#member` can never meet its caller's path.
    pub(crate) fn is_acyclic(&self, object_type: &str, member: &str) -> bool {
        !self
            .cyclic
            .get(object_type)
            .is_some_and(|members| members.contains(member))
    }
}

/// The members a check of `def#name` may evaluate next.
fn successors(schema: &Schema, def: &Definition, name: &str) -> Vec<MemberKey> {
    let mut out = BTreeSet::new();
    match def.member(name) {
        Some(Member::Relation(relation)) => {
            for allowed in &relation.allowed {
                if let AllowedKind::SubjectSet(set) = &allowed.kind {
                    out.insert((allowed.subject_type.clone(), set.clone()));
                }
            }
        }
        Some(Member::Permission(permission)) => {
            rewrite_successors(schema, def, &permission.rewrite, &mut out);
        }
        None => {}
    }
    out.into_iter().collect()
}

fn rewrite_successors(
    schema: &Schema,
    def: &Definition,
    rewrite: &Rewrite,
    out: &mut BTreeSet<MemberKey>,
) {
    match rewrite {
        Rewrite::Union(children) | Rewrite::Intersection(children) => {
            for child in children {
                rewrite_successors(schema, def, child, out);
            }
        }
        Rewrite::Exclusion(base, subtracted) => {
            rewrite_successors(schema, def, base, out);
            rewrite_successors(schema, def, subtracted, out);
        }
        Rewrite::Computed(name) => {
            out.insert((def.name.clone(), name.clone()));
        }
        Rewrite::Arrow {
            tupleset, computed, ..
        } => {
            out.insert((def.name.clone(), tupleset.clone()));
            if let Some(relation) = def.relations.get(tupleset) {
                for allowed in &relation.allowed {
                    let defines = schema
                        .definition(&allowed.subject_type)
                        .is_some_and(|d| d.member(computed).is_some());
                    if defines {
                        out.insert((allowed.subject_type.clone(), computed.clone()));
                    }
                }
            }
        }
        Rewrite::Nil | Rewrite::SelfRef => {}
    }
}

/// The relations `T#r` that some arrow of `T` follows (`r->...` in a permission of `T`), sorted
/// and without repeats.
fn arrow_tuplesets(schema: &Schema) -> Vec<MemberKey> {
    let mut keys = Vec::new();
    for def in schema.definitions.values() {
        let mut tuplesets = Vec::new();
        for permission in def.permissions.values() {
            tuplesets_of(&permission.rewrite, &mut tuplesets);
        }
        for tupleset in tuplesets {
            if def.relations.contains_key(tupleset) {
                keys.push((def.name.clone(), tupleset.to_string()));
            }
        }
    }
    keys.sort();
    keys.dedup();
    keys
}

/// Appends the tupleset of every arrow in `rewrite` (`r` of `r->x`).
fn tuplesets_of<'r>(rewrite: &'r Rewrite, found: &mut Vec<&'r str>) {
    match rewrite {
        Rewrite::Union(children) | Rewrite::Intersection(children) => {
            for child in children {
                tuplesets_of(child, found);
            }
        }
        Rewrite::Exclusion(base, subtracted) => {
            tuplesets_of(base, found);
            tuplesets_of(subtracted, found);
        }
        Rewrite::Arrow { tupleset, .. } => found.push(tupleset),
        Rewrite::Computed(_) | Rewrite::Nil | Rewrite::SelfRef => {}
    }
}

/// Whether `rewrite` follows an arrow anywhere in it.
fn has_arrow(rewrite: &Rewrite) -> bool {
    let mut tuplesets = Vec::new();
    tuplesets_of(rewrite, &mut tuplesets);
    !tuplesets.is_empty()
}

/// Whether `start`, or a member it reaches in `edges`, is one of `targets`.
fn reaches_any(
    edges: &HashMap<MemberKey, Vec<MemberKey>>,
    start: &MemberKey,
    targets: &HashSet<MemberKey>,
) -> bool {
    let mut seen: HashSet<&MemberKey> = HashSet::from([start]);
    let mut stack: Vec<&MemberKey> = vec![start];
    while let Some(next) = stack.pop() {
        if targets.contains(next) {
            return true;
        }
        for successor in edges.get(next).into_iter().flatten() {
            if seen.insert(successor) {
                stack.push(successor);
            }
        }
    }
    false
}

/// Whether `start` can reach itself in `edges`.
fn reaches_itself(edges: &HashMap<MemberKey, Vec<MemberKey>>, start: &MemberKey) -> bool {
    let mut seen: HashSet<&MemberKey> = HashSet::new();
    let mut stack: Vec<&MemberKey> = edges.get(start).into_iter().flatten().collect();
    while let Some(next) = stack.pop() {
        if next == start {
            return true;
        }
        if seen.insert(next) {
            stack.extend(edges.get(next).into_iter().flatten());
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::Plan;
    use crate::store::ReadAhead;

    #[test]
    fn finds_cycles_and_self_recursive_relations() {
        let schema = crate::schema::compile(
            "definition user {}
             definition group { relation member: user | group#member }
             definition folder {
                 relation parent: folder
                 relation viewer: user | group#member
                 permission view = viewer + parent->view
             }
             definition doc {
                 relation folder: folder
                 relation viewer: user
                 permission view = viewer + folder->view
             }",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let plan = Plan::new(&schema, 7);
        assert_eq!(plan.generation, 7);
        assert_eq!(
            plan.self_recursive,
            vec![("group".to_string(), "member".to_string())]
        );
        assert!(!plan.is_acyclic("group", "member"));
        assert!(!plan.is_acyclic("folder", "view"));
        assert!(plan.is_acyclic("doc", "view"));
        assert!(plan.is_acyclic("folder", "viewer"));
        let deps = plan.dependencies("doc", "view");
        assert!(deps.contains(&("group".to_string(), "member".to_string())));
        assert!(deps.contains(&("doc".to_string(), "folder".to_string())));
        assert!(!plan.has_caveats);
    }

    #[test]
    fn reads_arrow_targets_ahead_only_for_members_that_can_follow_an_arrow() {
        let schema = crate::schema::compile(
            "definition user {}
             definition group { relation member: user | group#member }
             definition folder {
                 relation viewer: user | group#member
                 permission view = viewer
             }
             definition doc {
                 relation folder: folder
                 relation owner: user
                 relation viewer: user | group#member
                 permission edit = owner
                 permission read = viewer + edit
                 permission view = read + folder->view
                 permission admin = edit & view
             }",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let plan = Plan::new(&schema, 1);
        for (member, expected) in [
            ("owner", ReadAhead::Objects),
            ("edit", ReadAhead::Objects),
            ("read", ReadAhead::Objects),
            ("view", ReadAhead::ArrowTargets),
            ("admin", ReadAhead::ArrowTargets),
        ] {
            assert_eq!(plan.read_ahead("doc", member), expected, "doc#{member}");
        }
        assert_eq!(plan.read_ahead("folder", "view"), ReadAhead::Objects);
        assert_eq!(plan.read_ahead("doc", "unknown"), ReadAhead::Objects);
    }

    #[test]
    fn finds_the_relations_arrows_follow() {
        let schema = crate::schema::compile(
            "definition folder { relation viewer: folder }
             definition doc {
                 relation folder: folder
                 relation parent: folder
                 relation owner: folder
                 permission view = owner + (folder->viewer & parent.all(viewer)) - folder->viewer
             }",
        )
        .unwrap();
        assert_eq!(
            super::arrow_tuplesets(&schema),
            [
                ("doc".to_string(), "folder".to_string()),
                ("doc".to_string(), "parent".to_string())
            ]
        );
    }
}
