//! Expand: the tree of subject sets that makes up a relation or permission.
//!
//! A shallow expand lists each relation's direct subjects (subject sets included, unexpanded);
//! a recursive one also expands every subject set it meets. A subject set met again on the
//! current path expands to an empty leaf, so cyclic data terminates.

use std::collections::HashSet;

use super::{EngineError, Query};
use crate::schema::{ArrowMode, Member, Rewrite};
use crate::tuple::{ContextualizedCaveat, ObjectRef, SubjectRef};

/// A node of an expand tree, labelled with the object and relation it expands.
#[derive(Debug, Clone, PartialEq)]
pub struct ExpandTree {
    /// The object expanded.
    pub object: ObjectRef,
    /// The relation or permission expanded.
    pub relation: String,
    /// What it is made of.
    pub node: ExpandNode,
}

/// How an expand node combines its parts.
#[derive(Debug, Clone, PartialEq)]
pub enum ExpandNode {
    /// The subjects stored directly on the relation.
    Leaf(Vec<ExpandedSubject>),
    /// Members of any child.
    Union(Vec<ExpandTree>),
    /// Members of every child.
    Intersection(Vec<ExpandTree>),
    /// Members of the first child that are not members of the second.
    Exclusion(Box<ExpandTree>, Box<ExpandTree>),
}

/// A subject found in a leaf, with the caveat of the relationship that named it.
#[derive(Debug, Clone, PartialEq)]
pub struct ExpandedSubject {
    /// The subject (a concrete object, a wildcard or a subject set).
    pub subject: SubjectRef,
    /// The relationship's caveat, if any.
    pub caveat: Option<ContextualizedCaveat>,
}

type Path = HashSet<(ObjectRef, String)>;

impl Query<'_> {
    pub(crate) fn expand(
        &self,
        object: &ObjectRef,
        member: &str,
        recursive: bool,
    ) -> Result<ExpandTree, EngineError> {
        let mut path = Path::new();
        self.expand_member(object, member, recursive, self.max_depth, &mut path)
    }

    fn expand_member(
        &self,
        object: &ObjectRef,
        member: &str,
        recursive: bool,
        depth: u32,
        path: &mut Path,
    ) -> Result<ExpandTree, EngineError> {
        let empty = |object: &ObjectRef| ExpandTree {
            object: object.clone(),
            relation: member.to_string(),
            node: ExpandNode::Leaf(Vec::new()),
        };
        self.tick()?;
        if depth == 0 {
            return Err(EngineError::MaxDepthExceeded(self.max_depth));
        }
        let Some(def) = self.schema.definition(&object.object_type) else {
            return Ok(empty(object));
        };
        let key = (object.clone(), member.to_string());
        if !path.insert(key.clone()) {
            return Ok(empty(object));
        }
        let tree = match def.member(member) {
            Some(Member::Relation(_)) => self
                .expand_relation(object, member, recursive, depth, path)
                .map(|node| ExpandTree {
                    object: object.clone(),
                    relation: member.to_string(),
                    node,
                }),
            // A permission that is just another member expands to that member's tree.
            Some(Member::Permission(permission)) => {
                self.expand_rewrite(object, member, &permission.rewrite, recursive, depth, path)
            }
            None => Ok(empty(object)),
        };
        path.remove(&key);
        tree
    }

    fn expand_relation(
        &self,
        object: &ObjectRef,
        relation: &str,
        recursive: bool,
        depth: u32,
        path: &mut Path,
    ) -> Result<ExpandNode, EngineError> {
        let mut subjects = Vec::new();
        for rel in self.snapshot.subjects_of(object, relation) {
            let rel = rel?;
            subjects.push(ExpandedSubject {
                subject: rel.subject,
                caveat: rel.caveat,
            });
        }
        if !recursive {
            return Ok(ExpandNode::Leaf(subjects));
        }
        let mut children = Vec::new();
        for found in &subjects {
            if let Some(set_relation) = &found.subject.relation {
                children.push(self.expand_member(
                    &found.subject.object,
                    set_relation,
                    true,
                    depth - 1,
                    path,
                )?);
            }
        }
        if children.is_empty() {
            return Ok(ExpandNode::Leaf(subjects));
        }
        let leaf = ExpandTree {
            object: object.clone(),
            relation: relation.to_string(),
            node: ExpandNode::Leaf(subjects),
        };
        children.insert(0, leaf);
        Ok(ExpandNode::Union(children))
    }

    #[allow(clippy::too_many_arguments)]
    fn expand_rewrite(
        &self,

        object: &ObjectRef,
        member: &str,
        rewrite: &Rewrite,
        recursive: bool,
        depth: u32,
        path: &mut Path,
    ) -> Result<ExpandTree, EngineError> {
        let labelled = |node| ExpandTree {
            object: object.clone(),
            relation: member.to_string(),
            node,
        };
        let expand_children = |children: &[Rewrite], path: &mut Path| {
            children
                .iter()
                .map(|c| self.expand_rewrite(object, member, c, recursive, depth, path))
                .collect::<Result<Vec<_>, _>>()
        };
        Ok(match rewrite {
            Rewrite::Union(children) => {
                labelled(ExpandNode::Union(expand_children(children, path)?))
            }
            Rewrite::Intersection(children) => {
                labelled(ExpandNode::Intersection(expand_children(children, path)?))
            }
            Rewrite::Exclusion(base, subtracted) => {
                let base = self.expand_rewrite(object, member, base, recursive, depth, path)?;
                let subtracted =
                    self.expand_rewrite(object, member, subtracted, recursive, depth, path)?;
                labelled(ExpandNode::Exclusion(Box::new(base), Box::new(subtracted)))
            }
            Rewrite::Computed(name) => {
                self.expand_member(object, name, recursive, depth - 1, path)?
            }
            Rewrite::Arrow {
                tupleset,
                computed,
                mode,
            } => {
                let mut children = Vec::new();
                for rel in self.snapshot.subjects_of(object, tupleset) {
                    let rel = rel?;
                    if rel.subject.is_wildcard() {
                        continue;
                    }
                    let target = &rel.subject.object;
                    let has_member = self
                        .schema
                        .definition(&target.object_type)
                        .is_some_and(|d| d.member(computed).is_some());
                    if has_member {
                        children.push(self.expand_member(
                            target,
                            computed,
                            recursive,
                            depth - 1,
                            path,
                        )?);
                    }
                }
                match mode {
                    ArrowMode::All if children.is_empty() => labelled(ExpandNode::Leaf(Vec::new())),
                    ArrowMode::All => labelled(ExpandNode::Intersection(children)),
                    ArrowMode::Any => labelled(ExpandNode::Union(children)),
                }
            }
            Rewrite::Nil => labelled(ExpandNode::Leaf(Vec::new())),
            Rewrite::SelfRef => labelled(ExpandNode::Leaf(vec![ExpandedSubject {
                subject: SubjectRef {
                    object: object.clone(),
                    relation: None,
                },
                caveat: None,
            }])),
        })
    }
}
