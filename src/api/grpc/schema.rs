//! `authzed.api.v1.SchemaService`: read and write the schema, and the reflection calls
//! (ReflectSchema, ComputablePermissions, DependentRelations, DiffSchema) computed from the
//! compiled model. The model keeps no doc comments, so reflected comments are empty and doc
//! comment changes are not reported.

use std::collections::BTreeSet;
use std::sync::Arc;

use tonic::{Request, Response, Status};

use super::required;
use crate::api::error::ApiError;
use crate::api::service::Service;
use crate::engine::EngineError;
use crate::proto::v1;
use crate::proto::v1::reflection_schema_diff::Diff;
use crate::proto::v1::schema_service_server::SchemaService;
use crate::schema::model::{
    AllowedKind, AllowedSubject, CaveatDefinition, CaveatType, Definition, Member,
    PermissionDefinition, RelationDefinition, Rewrite, Schema,
};

/// The SchemaService implementation.
#[derive(Debug, Clone)]
pub struct SchemaApi {
    service: Arc<Service>,
}

impl SchemaApi {
    /// The service over the shared implementation.
    pub fn new(service: Arc<Service>) -> Self {
        Self { service }
    }

    fn token(&self) -> Option<v1::ZedToken> {
        Some(v1::ZedToken {
            token: self.service.token(self.service.head_revision()),
        })
    }

    /// The schema in force (an empty one when none was written, if `allow_none`).
    fn schema(&self, allow_none: bool) -> Result<Arc<Schema>, ApiError> {
        match self.service.engine().schema() {
            Ok(schema) => Ok(schema),
            Err(EngineError::NoSchema) if allow_none => Ok(Arc::new(empty_schema())),
            Err(EngineError::NoSchema) => Err(ApiError::new(
                crate::api::error::Code::NotFound,
                "no schema has been defined",
            )),
            Err(err) => Err(err.into()),
        }
    }
}

fn empty_schema() -> Schema {
    Schema {
        definitions: Default::default(),
        caveats: Default::default(),
        uses_expiration: false,
        uses_self: false,
        source: String::new(),
    }
}

// ---- the model as reflection messages ----

/// A caveat parameter type as SpiceDB writes it (`list<string>`).
fn type_name(ty: &CaveatType) -> String {
    match ty {
        CaveatType::Any => "any".into(),
        CaveatType::Bool => "bool".into(),
        CaveatType::String => "string".into(),
        CaveatType::Int => "int".into(),
        CaveatType::Uint => "uint".into(),
        CaveatType::Double => "double".into(),
        CaveatType::Bytes => "bytes".into(),
        CaveatType::Duration => "duration".into(),
        CaveatType::Timestamp => "timestamp".into(),
        CaveatType::IpAddress => "ipaddress".into(),
        CaveatType::List(inner) => format!("list<{}>", type_name(inner)),
        CaveatType::Map(inner) => format!("map<{}>", type_name(inner)),
    }
}

fn type_reference(allowed: &AllowedSubject) -> v1::ReflectionTypeReference {
    use v1::reflection_type_reference::Typeref;
    let typeref = match &allowed.kind {
        AllowedKind::Direct => Typeref::IsTerminalSubject(true),
        AllowedKind::Wildcard => Typeref::IsPublicWildcard(true),
        AllowedKind::SubjectSet(relation) => Typeref::OptionalRelationName(relation.clone()),
    };
    v1::ReflectionTypeReference {
        subject_definition_name: allowed.subject_type.clone(),
        optional_caveat_name: allowed.caveat.clone().unwrap_or_default(),
        typeref: Some(typeref),
    }
}

fn relation(definition: &str, rel: &RelationDefinition) -> v1::ReflectionRelation {
    v1::ReflectionRelation {
        name: rel.name.clone(),
        comment: String::new(),
        parent_definition_name: definition.to_string(),
        subject_types: rel.allowed.iter().map(type_reference).collect(),
    }
}

fn permission(definition: &str, perm: &PermissionDefinition) -> v1::ReflectionPermission {
    v1::ReflectionPermission {
        name: perm.name.clone(),
        comment: String::new(),
        parent_definition_name: definition.to_string(),
    }
}

/// The reflection of `def`, keeping the relations and permissions `keep` accepts.
fn definition(def: &Definition, keep: impl Fn(&str, bool) -> bool) -> v1::ReflectionDefinition {
    let mut out = v1::ReflectionDefinition {
        name: def.name.clone(),
        ..Default::default()
    };
    for name in &def.member_order {
        match def.member(name) {
            Some(Member::Relation(rel)) if keep(name, false) => {
                out.relations.push(relation(&def.name, rel));
            }
            Some(Member::Permission(perm)) if keep(name, true) => {
                out.permissions.push(permission(&def.name, perm));
            }
            _ => {}
        }
    }
    out
}

fn parameter(caveat: &str, name: &str, ty: &CaveatType) -> v1::ReflectionCaveatParameter {
    v1::ReflectionCaveatParameter {
        name: name.to_string(),
        r#type: type_name(ty),
        parent_caveat_name: caveat.to_string(),
    }
}

fn caveat(cav: &CaveatDefinition) -> v1::ReflectionCaveat {
    v1::ReflectionCaveat {
        name: cav.name.clone(),
        comment: String::new(),
        parameters: cav
            .parameters
            .iter()
            .map(|(name, ty)| parameter(&cav.name, name, ty))
            .collect(),
        expression: cav.expression.clone(),
    }
}

// ---- reflection filters ----

fn reflect(
    schema: &Schema,
    filters: &[v1::ReflectionSchemaFilter],
) -> Result<(Vec<v1::ReflectionDefinition>, Vec<v1::ReflectionCaveat>), ApiError> {
    for (i, f) in filters.iter().enumerate() {
        let member_filter = !f.optional_relation_name_filter.is_empty()
            || !f.optional_permission_name_filter.is_empty();
        if member_filter && f.optional_definition_name_filter.is_empty() {
            return Err(ApiError::invalid(format!(
                "optionalFilters[{i}]: a relation or permission filter needs a definition filter"
            )));
        }
        if !f.optional_relation_name_filter.is_empty()
            && !f.optional_permission_name_filter.is_empty()
        {
            return Err(ApiError::invalid(format!(
                "optionalFilters[{i}]: give a relation filter or a permission filter, not both"
            )));
        }
    }
    let definitions = schema
        .definitions
        .values()
        .filter_map(|def| {
            if filters.is_empty() {
                return Some(definition(def, |_, _| true));
            }
            let matching: Vec<&v1::ReflectionSchemaFilter> = filters
                .iter()
                .filter(|f| {
                    !f.optional_definition_name_filter.is_empty()
                        && def.name.starts_with(&f.optional_definition_name_filter)
                })
                .collect();
            if matching.is_empty() {
                return None;
            }
            Some(definition(def, |name, is_permission| {
                matching.iter().any(|f| {
                    let (rel, perm) = (
                        &f.optional_relation_name_filter,
                        &f.optional_permission_name_filter,
                    );
                    (rel.is_empty() && perm.is_empty())
                        || (!is_permission && !rel.is_empty() && name.starts_with(rel.as_str()))
                        || (is_permission && !perm.is_empty() && name.starts_with(perm.as_str()))
                })
            }))
        })
        .collect();
    let caveats = schema
        .caveats
        .values()
        .filter(|cav| {
            filters.is_empty()
                || filters.iter().any(|f| {
                    !f.optional_caveat_name_filter.is_empty()
                        && cav.name.starts_with(&f.optional_caveat_name_filter)
                })
        })
        .map(caveat)
        .collect();
    Ok((definitions, caveats))
}

// ---- what depends on what ----

/// Every relation and permission `object_type#member` reads, transitively, itself included.
fn reads(schema: &Schema, object_type: &str, member: &str) -> BTreeSet<(String, String)> {
    let mut seen = BTreeSet::new();
    walk_member(schema, object_type, member, &mut seen);
    seen
}

fn walk_member(
    schema: &Schema,
    object_type: &str,
    member: &str,
    seen: &mut BTreeSet<(String, String)>,
) {
    let Some(def) = schema.definition(object_type) else {
        return;
    };
    if def.member(member).is_none() || !seen.insert((object_type.to_string(), member.to_string())) {
        return;
    }
    match def.member(member) {
        Some(Member::Relation(rel)) => {
            for allowed in &rel.allowed {
                if let AllowedKind::SubjectSet(sub) = &allowed.kind {
                    walk_member(schema, &allowed.subject_type, sub, seen);
                }
            }
        }
        Some(Member::Permission(perm)) => walk_rewrite(schema, def, &perm.rewrite, seen),
        None => {}
    }
}

fn walk_rewrite(
    schema: &Schema,
    def: &Definition,
    rewrite: &Rewrite,
    seen: &mut BTreeSet<(String, String)>,
) {
    match rewrite {
        Rewrite::Union(children) | Rewrite::Intersection(children) => {
            for child in children {
                walk_rewrite(schema, def, child, seen);
            }
        }
        Rewrite::Exclusion(base, minus) => {
            walk_rewrite(schema, def, base, seen);
            walk_rewrite(schema, def, minus, seen);
        }
        Rewrite::Computed(name) => walk_member(schema, &def.name, name, seen),
        Rewrite::Arrow {
            tupleset, computed, ..
        } => {
            walk_member(schema, &def.name, tupleset, seen);
            if let Some(rel) = def.relations.get(tupleset) {
                for allowed in &rel.allowed {
                    walk_member(schema, &allowed.subject_type, computed, seen);
                }
            }
        }
        Rewrite::Nil | Rewrite::SelfRef => {}
    }
}

fn reference(
    schema: &Schema,
    (object_type, member): &(String, String),
) -> v1::ReflectionRelationReference {
    v1::ReflectionRelationReference {
        definition_name: object_type.clone(),
        relation_name: member.clone(),
        is_permission: schema
            .definition(object_type)
            .is_some_and(|d| d.permissions.contains_key(member)),
    }
}

fn known_member<'s>(
    schema: &'s Schema,
    object_type: &str,
    member: &str,
) -> Result<Member<'s>, ApiError> {
    let def = schema
        .definition(object_type)
        .ok_or_else(|| ApiError::invalid(format!("object definition `{object_type}` not found")))?;
    def.member(member).ok_or_else(|| {
        ApiError::invalid(format!(
            "relation/permission `{member}` not found under definition `{object_type}`"
        ))
    })
}

// ---- diff ----

fn diff(existing: &Schema, comparison: &Schema) -> Vec<v1::ReflectionSchemaDiff> {
    let mut out = Vec::new();
    let mut push = |diff: Diff| out.push(v1::ReflectionSchemaDiff { diff: Some(diff) });
    for (name, def) in &existing.definitions {
        if !comparison.definitions.contains_key(name) {
            push(Diff::DefinitionRemoved(definition(def, |_, _| true)));
        }
    }
    for (name, def) in &comparison.definitions {
        let Some(old) = existing.definitions.get(name) else {
            push(Diff::DefinitionAdded(definition(def, |_, _| true)));
            continue;
        };
        for (rel_name, rel) in &old.relations {
            if !def.relations.contains_key(rel_name) {
                push(Diff::RelationRemoved(relation(name, rel)));
            }
        }
        for (rel_name, rel) in &def.relations {
            let Some(old_rel) = old.relations.get(rel_name) else {
                push(Diff::RelationAdded(relation(name, rel)));
                continue;
            };
            for allowed in &old_rel.allowed {
                if !rel.allowed.contains(allowed) {
                    push(Diff::RelationSubjectTypeRemoved(
                        v1::ReflectionRelationSubjectTypeChange {
                            relation: Some(relation(name, rel)),
                            changed_subject_type: Some(type_reference(allowed)),
                        },
                    ));
                }
            }
            for allowed in &rel.allowed {
                if !old_rel.allowed.contains(allowed) {
                    push(Diff::RelationSubjectTypeAdded(
                        v1::ReflectionRelationSubjectTypeChange {
                            relation: Some(relation(name, rel)),
                            changed_subject_type: Some(type_reference(allowed)),
                        },
                    ));
                }
            }
        }
        for (perm_name, perm) in &old.permissions {
            if !def.permissions.contains_key(perm_name) {
                push(Diff::PermissionRemoved(permission(name, perm)));
            }
        }
        for (perm_name, perm) in &def.permissions {
            match old.permissions.get(perm_name) {
                None => push(Diff::PermissionAdded(permission(name, perm))),
                Some(old_perm) if old_perm.rewrite != perm.rewrite => {
                    push(Diff::PermissionExprChanged(permission(name, perm)));
                }
                Some(_) => {}
            }
        }
    }
    for (name, cav) in &existing.caveats {
        if !comparison.caveats.contains_key(name) {
            push(Diff::CaveatRemoved(caveat(cav)));
        }
    }
    for (name, cav) in &comparison.caveats {
        let Some(old) = existing.caveats.get(name) else {
            push(Diff::CaveatAdded(caveat(cav)));
            continue;
        };
        if old.expression.trim() != cav.expression.trim() {
            push(Diff::CaveatExprChanged(caveat(cav)));
        }
        for (param, ty) in &old.parameters {
            if !cav.parameters.iter().any(|(p, _)| p == param) {
                push(Diff::CaveatParameterRemoved(parameter(name, param, ty)));
            }
        }
        for (param, ty) in &cav.parameters {
            match old.parameters.iter().find(|(p, _)| p == param) {
                None => push(Diff::CaveatParameterAdded(parameter(name, param, ty))),
                Some((_, old_ty)) if old_ty != ty => push(Diff::CaveatParameterTypeChanged(
                    v1::ReflectionCaveatParameterTypeChange {
                        parameter: Some(parameter(name, param, ty)),
                        previous_type: type_name(old_ty),
                    },
                )),
                Some(_) => {}
            }
        }
    }
    out
}

#[tonic::async_trait]
impl SchemaService for SchemaApi {
    async fn read_schema(
        &self,
        _request: Request<v1::ReadSchemaRequest>,
    ) -> Result<Response<v1::ReadSchemaResponse>, Status> {
        let (text, revision) = self.service.read_schema().await?;
        Ok(Response::new(v1::ReadSchemaResponse {
            schema_text: text,
            read_at: Some(v1::ZedToken {
                token: self.service.token(revision),
            }),
        }))
    }

    async fn write_schema(
        &self,
        request: Request<v1::WriteSchemaRequest>,
    ) -> Result<Response<v1::WriteSchemaResponse>, Status> {
        let revision = self
            .service
            .write_schema(request.into_inner().schema)
            .await?;
        Ok(Response::new(v1::WriteSchemaResponse {
            written_at: Some(v1::ZedToken {
                token: self.service.token(revision),
            }),
        }))
    }

    async fn reflect_schema(
        &self,
        request: Request<v1::ReflectSchemaRequest>,
    ) -> Result<Response<v1::ReflectSchemaResponse>, Status> {
        Ok(Response::new(self.reflect(request.into_inner())?))
    }

    async fn computable_permissions(
        &self,
        request: Request<v1::ComputablePermissionsRequest>,
    ) -> Result<Response<v1::ComputablePermissionsResponse>, Status> {
        Ok(Response::new(self.computable(request.into_inner())?))
    }

    async fn dependent_relations(
        &self,
        request: Request<v1::DependentRelationsRequest>,
    ) -> Result<Response<v1::DependentRelationsResponse>, Status> {
        Ok(Response::new(self.dependent(request.into_inner())?))
    }

    async fn diff_schema(
        &self,
        request: Request<v1::DiffSchemaRequest>,
    ) -> Result<Response<v1::DiffSchemaResponse>, Status> {
        Ok(Response::new(self.diff(request.into_inner())?))
    }
}

/// The reflection calls, shared by gRPC and the HTTP gateway (which writes their answers as
/// protojson, as SpiceDB's gateway does).
impl SchemaApi {
    /// ReflectSchema.
    pub fn reflect(
        &self,
        request: v1::ReflectSchemaRequest,
    ) -> Result<v1::ReflectSchemaResponse, ApiError> {
        let schema = self.schema(false)?;
        let (definitions, caveats) = reflect(&schema, &request.optional_filters)?;
        Ok(v1::ReflectSchemaResponse {
            definitions,
            caveats,
            read_at: self.token(),
        })
    }

    /// ComputablePermissions.
    pub fn computable(
        &self,
        request: v1::ComputablePermissionsRequest,
    ) -> Result<v1::ComputablePermissionsResponse, ApiError> {
        let schema = self.schema(false)?;
        let object_type = required(request.definition_name, "definitionName")?;
        let relation_name = required(request.relation_name, "relationName")?;
        known_member(&schema, &object_type, &relation_name)?;
        let target = (object_type, relation_name);
        let mut permissions = Vec::new();
        for def in schema.definitions.values() {
            if !def
                .name
                .starts_with(&request.optional_definition_name_filter)
            {
                continue;
            }
            for member in &def.member_order {
                let key = (def.name.clone(), member.clone());
                if key != target && reads(&schema, &def.name, member).contains(&target) {
                    permissions.push(reference(&schema, &key));
                }
            }
        }
        Ok(v1::ComputablePermissionsResponse {
            permissions,
            read_at: self.token(),
        })
    }

    /// DependentRelations.
    pub fn dependent(
        &self,
        request: v1::DependentRelationsRequest,
    ) -> Result<v1::DependentRelationsResponse, ApiError> {
        let schema = self.schema(false)?;
        let object_type = required(request.definition_name, "definitionName")?;
        let permission_name = required(request.permission_name, "permissionName")?;
        if let Member::Relation(_) = known_member(&schema, &object_type, &permission_name)? {
            return Err(ApiError::invalid(format!(
                "`{permission_name}` is a relation of `{object_type}`, not a permission"
            )));
        }
        let own = (object_type.clone(), permission_name.clone());
        let relations = reads(&schema, &object_type, &permission_name)
            .iter()
            .filter(|key| **key != own)
            .map(|key| reference(&schema, key))
            .collect();
        Ok(v1::DependentRelationsResponse {
            relations,
            read_at: self.token(),
        })
    }

    /// DiffSchema.
    pub fn diff(&self, request: v1::DiffSchemaRequest) -> Result<v1::DiffSchemaResponse, ApiError> {
        let comparison = crate::schema::compile(&request.comparison_schema)
            .map_err(|e| ApiError::invalid(format!("comparison schema: {e}")))?;
        let existing = self.schema(true)?;
        Ok(v1::DiffSchemaResponse {
            diffs: diff(&existing, &comparison),
            read_at: self.token(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SCHEMA: &str = r#"
        definition user {}
        definition group { relation member: user | group#member }
        definition doc {
            relation parent: doc
            relation viewer: user | group#member | user:*
            permission view = viewer + parent->view
        }
        caveat ip(allowed list<string>, n int) { n > 1 && allowed.size() > 0 }
    "#;

    #[test]
    fn dependencies_follow_arrows_and_subject_sets() {
        let schema = crate::schema::compile(SCHEMA).unwrap();
        let read = reads(&schema, "doc", "view");
        for member in [("doc", "viewer"), ("doc", "parent"), ("group", "member")] {
            assert!(
                read.contains(&(member.0.into(), member.1.into())),
                "{member:?}"
            );
        }
        assert!(!read.contains(&("user".into(), "member".into())));
    }

    #[test]
    fn diffs_name_what_changed() {
        let old = crate::schema::compile(SCHEMA).unwrap();
        let new = crate::schema::compile(
            &SCHEMA
                .replace("| user:*", "")
                .replace("viewer + parent->view", "viewer")
                .replace("n int", "n uint"),
        )
        .unwrap();
        let diffs: Vec<Diff> = diff(&old, &new)
            .into_iter()
            .filter_map(|d| d.diff)
            .collect();
        assert!(diffs
            .iter()
            .any(|d| matches!(d, Diff::RelationSubjectTypeRemoved(_))));
        assert!(diffs
            .iter()
            .any(|d| matches!(d, Diff::PermissionExprChanged(p) if p.name == "view")));
        assert!(diffs
            .iter()
            .any(|d| matches!(d, Diff::CaveatParameterTypeChanged(c) if c.previous_type == "int")));
        assert!(diff(&old, &old).is_empty());
    }

    #[test]
    fn caveat_types_print_as_in_the_schema() {
        assert_eq!(
            type_name(&CaveatType::Map(Box::new(CaveatType::List(Box::new(
                CaveatType::IpAddress
            ))))),
            "map<list<ipaddress>>"
        );
    }
}
