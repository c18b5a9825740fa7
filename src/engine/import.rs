//! Imports: relationships checked against the schema in force at the head the import commits
//! against, and stored as one revision through the store's bulk path (all or nothing).

use std::sync::Arc;

use super::{write, Engine, EngineError};
use crate::revision::Revision;
use crate::schema::Schema;
use crate::store::{BulkError, BulkSource, Snapshot, StoreError};
use crate::transaction::{Change, ImportMode, Update, UpdateOp};
use crate::tuple::Relationship;

/// What an import stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImportOutcome {
    /// The revision it committed at (the head, when it had nothing to store).
    pub revision: Revision,
    /// How many relationships it stored.
    pub loaded: u64,
}

/// Why an import stored nothing: the error and the position (from 0) of the relationship it
/// concerns, when it concerns one.
#[derive(Debug, thiserror::Error)]
#[error("{error}")]
pub struct ImportError {
    /// The position of the relationship at fault.
    pub item: Option<u64>,
    /// What went wrong.
    #[source]
    pub error: EngineError,
}

impl From<EngineError> for ImportError {
    fn from(error: EngineError) -> Self {
        Self { item: None, error }
    }
}

/// The items of an import, each validated against the head's schema as the store reads it.
struct Validated<'e, I> {
    engine: &'e Engine,
    items: I,
    op: UpdateOp,
    schema: Option<(Arc<Schema>, Revision)>,
    /// Shapes already found valid (see [`Shape`]): an import repeats a few shapes millions of
    /// times.
    valid: Vec<Shape>,
}

/// What the schema check of a relationship without a caveat depends on: resource type,
/// relation, subject type, subject relation, wildcard subject, expiration.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Shape {
    resource_type: String,
    relation: String,
    subject_type: String,
    subject_relation: Option<String>,
    wildcard: bool,
    expiration: bool,
}

impl Shape {
    /// Whether `rel` has this shape (compared in place, without building one).
    fn fits(&self, rel: &Relationship) -> bool {
        self.resource_type == rel.resource.object_type
            && self.relation == rel.relation
            && self.subject_type == rel.subject.object.object_type
            && self.subject_relation == rel.subject.relation
            && self.wildcard == rel.subject.is_wildcard()
            && self.expiration == rel.expiration.is_some()
    }

    fn of(rel: &Relationship) -> Self {
        Self {
            resource_type: rel.resource.object_type.clone(),
            relation: rel.relation.clone(),
            subject_type: rel.subject.object.object_type.clone(),
            subject_relation: rel.subject.relation.clone(),
            wildcard: rel.subject.is_wildcard(),
            expiration: rel.expiration.is_some(),
        }
    }
}

/// How many shapes an import remembers as valid.
const SHAPES: usize = 64;

fn rejected(error: EngineError) -> StoreError {
    StoreError::Rejected(Box::new(error))
}

impl<I> BulkSource for Validated<'_, I>
where
    I: Iterator<Item = Result<Relationship, EngineError>>,
{
    fn start(&mut self, head: &dyn Snapshot) -> Result<(), StoreError> {
        let installed = self.engine.schema_of(head).map_err(rejected)?;
        if let Some((_, validated)) = &self.schema {
            if *validated != installed.revision {
                return Err(rejected(EngineError::SchemaChangedDuringImport));
            }
        }
        self.schema = Some((installed.schema, installed.revision));
        self.valid.clear();
        Ok(())
    }

    fn next_item(&mut self) -> Option<Result<Relationship, StoreError>> {
        let item = self.items.next()?;
        let Some((schema, _)) = &self.schema else {
            return Some(Err(StoreError::Backend(
                "an import was read before it started".into(),
            )));
        };
        let valid = &mut self.valid;
        Some(
            item.and_then(|relationship| {
                // A caveat's stored context is checked every time; the rest by shape.
                let plain = relationship.caveat.is_none();
                if plain && valid.iter().any(|shape| shape.fits(&relationship)) {
                    return Ok(relationship);
                }
                let update = Update {
                    op: self.op,
                    relationship,
                };
                write::validate_update(schema, &update)?;
                if plain && valid.len() < SHAPES {
                    valid.push(Shape::of(&update.relationship));
                }
                Ok(update.relationship)
            })
            .map_err(rejected),
        )
    }
}

impl Engine {
    /// Stores every relationship of `items` as one revision, with CREATE semantics (any
    /// relationship already stored and live fails the import) or TOUCH semantics; each is
    /// validated against the schema in force at the head. On any error nothing is stored and
    /// the error names the item (its position in `items`, from 0).
    pub fn import(
        &self,
        items: impl Iterator<Item = Result<Relationship, EngineError>>,
        mode: ImportMode,
    ) -> Result<ImportOutcome, ImportError> {
        let mut source = Validated {
            engine: self,
            items,
            op: match mode {
                ImportMode::Create => UpdateOp::Create,
                ImportMode::Touch => UpdateOp::Touch,
            },
            schema: None,
            valid: Vec::new(),
        };
        let outcome =
            self.store
                .bulk_load(&mut source, mode)
                .map_err(|BulkError { item, error }| {
                    let error = match error {
                        StoreError::Rejected(inner) => match inner.downcast::<EngineError>() {
                            Ok(engine) => *engine,
                            Err(other) => EngineError::Store(StoreError::Rejected(other)),
                        },
                        other => EngineError::Store(other),
                    };
                    ImportError { item, error }
                })?;
        if outcome.loaded > 0 {
            let started = std::time::Instant::now();
            self.accel.follow(self.store.as_ref(), true);
            tracing::debug!(
                followed_ms = started.elapsed().as_millis() as u64,
                "cache tracker and group index read the import"
            );
        }
        Ok(ImportOutcome {
            revision: outcome.revision,
            loaded: outcome.loaded,
        })
    }

    /// Part `part` (from 1) of the changes of the bulk revision `revision`, whose log entry
    /// (from [`Engine::changes_since`]) carries the summary saying how many parts there are.
    pub fn bulk_changes(&self, revision: Revision, part: u32) -> Result<Vec<Change>, EngineError> {
        Ok(self.store.bulk_part(revision, part)?)
    }
}
