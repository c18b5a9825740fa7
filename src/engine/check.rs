//! Check: does a subject have a relation or permission on a resource?
//!
//! Walks the permission's rewrite tree. Unions stop at the first unconditional yes;
//! intersections and exclusions evaluate both sides; arrows read the tupleset relation and
//! check the target on each object; subject sets recurse. A (resource, member) pair already
//! being evaluated on the current path is a cycle and contributes "no" (the least fixed point).

use std::collections::HashSet;

use super::{caveat, EngineError, Permissionship, Query};
use crate::schema::{AllowedKind, ArrowMode, Member, RelationDefinition, Rewrite};
use crate::tuple::{ObjectRef, SubjectRef, WILDCARD_ID};

/// The (resource, member) pairs on the current recursion path.
type Path = HashSet<(ObjectRef, String)>;

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
        let mut path = Path::new();
        self.check_member(resource, member, subject, self.max_depth, &mut path)
    }

    fn check_member(
        &self,
        resource: &ObjectRef,
        member: &str,
        subject: &SubjectRef,
        depth: u32,
        path: &mut Path,
    ) -> Result<Permissionship, EngineError> {
        // A subject set is a member of itself.
        if subject.relation.as_deref() == Some(member) && subject.object == *resource {
            return Ok(Permissionship::Has);
        }
        if depth == 0 {
            return Err(EngineError::MaxDepthExceeded(self.max_depth));
        }
        let Some(def) = self.schema.definition(&resource.object_type) else {
            return Ok(Permissionship::No);
        };
        let key = (resource.clone(), member.to_string());
        if !path.insert(key.clone()) {
            return Ok(Permissionship::No);
        }
        let result = match def.member(member) {
            Some(Member::Relation(relation)) => {
                self.check_relation(resource, relation, subject, depth, path)
            }
            Some(Member::Permission(permission)) => {
                self.check_rewrite(resource, &permission.rewrite, subject, depth, path)
            }
            None => Ok(Permissionship::No),
        };
        path.remove(&key);
        result
    }

    fn check_relation(
        &self,
        resource: &ObjectRef,
        relation: &RelationDefinition,
        subject: &SubjectRef,
        depth: u32,
        path: &mut Path,
    ) -> Result<Permissionship, EngineError> {
        let mut result = Permissionship::No;
        if let Some(rel) = self.snapshot.get(resource, &relation.name, subject)? {
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
            let rel = rel?;
            let Some(set_relation) = &rel.subject.relation else {
                continue;
            };
            if rel.subject == *subject {
                continue; // already answered by the point lookup
            }
            let through =
                self.check_member(&rel.subject.object, set_relation, subject, depth - 1, path)?;
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
        path: &mut Path,
    ) -> Result<Permissionship, EngineError> {
        match rewrite {
            Rewrite::Union(children) => {
                let mut result = Permissionship::No;
                for child in children {
                    let next = self.check_rewrite(resource, child, subject, depth, path)?;
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
                    let next = self.check_rewrite(resource, child, subject, depth, path)?;
                    result = result.intersect(next);
                    if result.is_no() {
                        break;
                    }
                }
                Ok(result)
            }
            Rewrite::Exclusion(base, subtracted) => {
                let base = self.check_rewrite(resource, base, subject, depth, path)?;
                if base.is_no() {
                    return Ok(base);
                }
                let subtracted = self.check_rewrite(resource, subtracted, subject, depth, path)?;
                Ok(base.exclude(subtracted))
            }
            Rewrite::Computed(name) => self.check_member(resource, name, subject, depth - 1, path),
            Rewrite::Arrow {
                tupleset,
                computed,
                mode,
            } => self.check_arrow(resource, tupleset, computed, *mode, subject, depth, path),
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
        path: &mut Path,
    ) -> Result<Permissionship, EngineError> {
        let mut any = Permissionship::No;
        let mut all = Permissionship::Has;
        let mut targets = 0usize;
        for rel in self.snapshot.subjects_of(resource, tupleset) {
            let rel = rel?;
            if rel.subject.is_wildcard() {
                continue;
            }
            let target = &rel.subject.object;
            let has_member = self
                .schema
                .definition(&target.object_type)
                .is_some_and(|d| d.member(computed).is_some());
            let through = if has_member {
                self.check_member(target, computed, subject, depth - 1, path)?
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
}
