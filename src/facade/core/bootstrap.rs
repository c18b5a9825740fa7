//! Start-up of the facades: the built-in schema, the predefined roles' wildcard tuples, and
//! the configured superusers.
//!
//! Schema rule: an empty store gets the built-in schema. A store that already holds a schema
//! keeps it when it is the built-in one or a **superset** of it: every built-in type exists,
//! every built-in relation exists and allows at least the built-in subject types, and every
//! built-in permission exists with the same expression. Extra types, relations and
//! permissions (custom resource types) are welcome. A store holding exactly an earlier
//! built-in schema is upgraded to the current one (the engine's orphan check guards the
//! write). Anything else refuses to start, naming the first difference, so the facade never
//! runs over a schema whose permissions mean something else.

use crate::engine::{Engine, EngineError};
use crate::filter::RelationshipFilter;
use crate::revision::Revision;
use crate::schema::{self, Schema};
use crate::tuple::{ObjectRef, Relationship, SubjectRef};

use super::error::FacadeError;
use super::records::Tx;
use super::roles::{Role, PRINCIPAL_TYPES, ROLE_TYPE};

/// The platform singleton's type and id.
pub const PLATFORM: (&str, &str) = ("app/platform", "platform");

/// Why the facade could not start.
#[derive(Debug, thiserror::Error)]
pub enum BootstrapError {
    /// The stored schema is neither the built-in one nor a superset of it.
    #[error("the stored schema is not compatible with the facade's built-in schema ({0}); write the built-in schema (`cat schema/frontier.zed schema/vault.zed`) or a superset of it with `zanzi schema write` first")]
    IncompatibleSchema(String),
    /// The engine failed.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// The built-in schema does not compile (a bug).
    #[error("the built-in schema does not compile: {0}")]
    BuiltIn(String),
    /// Writing the bootstrap tuples failed.
    #[error("writing the facade's bootstrap tuples: {0}")]
    Facade(#[from] FacadeError),
}

/// What happened to the schema at start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SchemaOutcome {
    /// The store was empty; the built-in schema was written.
    Written,
    /// The store already held the built-in schema.
    Unchanged,
    /// The store holds a superset of the built-in schema, kept as it is.
    Superset,
    /// The store held an earlier built-in schema; the current one was written.
    Upgraded,
}

/// Where `stored` fails to be a superset of `builtin`, if anywhere.
pub fn superset_gap(stored: &Schema, builtin: &Schema) -> Option<String> {
    for (name, definition) in &builtin.definitions {
        let Some(other) = stored.definition(name) else {
            return Some(format!("type `{name}` is missing"));
        };
        for (relation, wanted) in &definition.relations {
            let Some(found) = other.relations.get(relation) else {
                return Some(format!("relation `{name}#{relation}` is missing"));
            };
            if let Some(subject) = wanted.allowed.iter().find(|a| !found.allowed.contains(a)) {
                return Some(format!(
                    "relation `{name}#{relation}` does not allow `{}`",
                    subject.subject_type
                ));
            }
        }
        for (permission, wanted) in &definition.permissions {
            match other.permissions.get(permission) {
                None => return Some(format!("permission `{name}#{permission}` is missing")),
                Some(found) if found.rewrite != wanted.rewrite => {
                    return Some(format!(
                        "permission `{name}#{permission}` has a different expression"
                    ))
                }
                Some(_) => {}
            }
        }
    }
    None
}

/// Loads the built-in schema `text` into an empty store, or checks the stored one, or
/// upgrades a store holding one of the `previous` built-in schemas (see the module doc).
pub fn ensure_schema(
    engine: &Engine,
    text: &str,
    previous: &[&str],
) -> Result<SchemaOutcome, BootstrapError> {
    let builtin = schema::compile(text).map_err(|e| BootstrapError::BuiltIn(e.to_string()))?;
    match engine.schema() {
        Err(EngineError::NoSchema) => {
            engine.write_schema(text)?;
            Ok(SchemaOutcome::Written)
        }
        Err(err) => Err(err.into()),
        Ok(stored) if stored.source == text => Ok(SchemaOutcome::Unchanged),
        Ok(stored) if previous.contains(&stored.source.as_str()) => {
            engine.write_schema(text)?;
            Ok(SchemaOutcome::Upgraded)
        }
        Ok(stored) => match superset_gap(&stored, &builtin) {
            None => Ok(SchemaOutcome::Superset),
            Some(gap) => Err(BootstrapError::IncompatibleSchema(gap)),
        },
    }
}

fn wildcard(subject_type: &str) -> Result<SubjectRef, FacadeError> {
    Ok(SubjectRef::new(subject_type, "*", None)?)
}

/// Writes the tuples the facade needs before its first call, in one transaction built from
/// the head: every predefined role's wildcard tuples (only those missing), and
/// `app/platform:platform#admin` for exactly the configured superusers (others are removed,
/// so the configuration stays the source of truth). The revision, when anything was missing.
pub fn bootstrap_tuples(
    engine: &Engine,
    roles: &[&Role],
    superusers: &[String],
) -> Result<Option<Revision>, FacadeError> {
    let mut changed = false;
    let revision = engine.transact_with(|view| {
        let tx = missing_tuples(view, roles, superusers)?;
        changed = !tx.is_empty();
        Ok::<_, FacadeError>(tx.into_transaction())
    })?;
    Ok(changed.then_some(revision))
}

fn missing_tuples(
    view: &crate::engine::ReadView<'_>,
    roles: &[&Role],
    superusers: &[String],
) -> Result<Tx, FacadeError> {
    let mut tx = Tx::default();
    for role in roles {
        let object = ObjectRef::new(ROLE_TYPE, role.name)?;
        for slug in role.permissions {
            for principal in PRINCIPAL_TYPES {
                let subject = wildcard(principal)?;
                let rel = Relationship::new(object.clone(), slug, subject);
                let present = !view
                    .read_relationships(&exact(&rel), None, Some(1))?
                    .is_empty();
                if !present {
                    tx.touch(rel);
                }
            }
        }
    }
    let platform = ObjectRef::new(PLATFORM.0, PLATFORM.1)?;
    let filter = RelationshipFilter {
        resource_type: Some(PLATFORM.0.to_string()),
        resource_id: Some(PLATFORM.1.to_string()),
        relation: Some("admin".to_string()),
        ..RelationshipFilter::default()
    };
    let admins = view.read_relationships(&filter, None, None)?;
    for admin in &admins {
        let configured = admin.subject.object.object_type == "app/user"
            && superusers.contains(&admin.subject.object.object_id);
        if !configured {
            tx.delete(admin.clone());
        }
    }
    for user in superusers {
        let subject = SubjectRef::new("app/user", user, None)?;
        let rel = Relationship::new(platform.clone(), "admin", subject);
        if !admins.contains(&rel) {
            tx.touch(rel);
        }
    }
    Ok(tx)
}

/// A filter matching exactly `rel`.
pub fn exact(rel: &Relationship) -> RelationshipFilter {
    RelationshipFilter {
        resource_type: Some(rel.resource.object_type.clone()),
        resource_id: Some(rel.resource.object_id.clone()),
        relation: Some(rel.relation.clone()),
        subject: Some(crate::filter::SubjectFilter {
            subject_type: rel.subject.object.object_type.clone(),
            subject_id: Some(rel.subject.object.object_id.clone()),
            relation: Some(rel.subject.relation.clone()),
        }),
        ..RelationshipFilter::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn compile(text: &str) -> Schema {
        schema::compile(text).unwrap_or_else(|e| panic!("{e}"))
    }

    const BUILTIN: &str = crate::facade::BUILTIN_SCHEMA;

    #[test]
    fn the_built_in_schema_compiles_and_is_its_own_superset() {
        let builtin = compile(BUILTIN);
        assert_eq!(superset_gap(&builtin, &builtin), None);
        for previous in crate::facade::PREVIOUS_SCHEMAS {
            compile(previous);
        }
    }

    #[test]
    fn supersets_may_add_but_not_change() {
        let builtin = compile(BUILTIN);
        let extended = compile(&format!(
            "{BUILTIN}\ndefinition storage/bucket {{ relation project: app/project }}"
        ));
        assert_eq!(superset_gap(&extended, &builtin), None);
        let changed = compile(&BUILTIN.replace(
            "permission active_member = (member - suspended) - org->suspended",
            "permission active_member = member",
        ));
        assert_eq!(
            superset_gap(&changed, &builtin).as_deref(),
            Some("permission `app/group#active_member` has a different expression")
        );
        let other = compile("definition user {}");
        assert!(superset_gap(&other, &builtin).is_some());
    }
}
