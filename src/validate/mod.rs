//! `zanzi validate`: loads SpiceDB validation files into a fresh store (a temporary embedded
//! one, or an empty database) and checks every assertion, every expected-relations block, and
//! that check, lookup-resources and lookup-subjects agree with each other on every combination
//! the file mentions.

mod expected;
mod file;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;

use chrono::{DateTime, Utc};

pub use expected::{found_subjects, parse_line, FoundEntry};
pub use file::{load, parse, parse_inline, ValidationFile};

use crate::clock::{Clock, FixedClock, SystemClock};
use crate::engine::{Context, Engine, EngineConfig, EngineError, Permissionship};
use crate::store::{Datastore, OpenOptions, Opened, PgOptions, PgStore, StoreError, TupleStore};
use crate::transaction::{Update, UpdateOp};
use crate::tuple::{ObjectRef, Relationship, SubjectRef};

/// Relationships written per store batch while loading.
const LOAD_CHUNK: usize = 500;

/// Why a validation file could not be loaded or run.
#[derive(Debug, thiserror::Error)]
pub enum ValidateError {
    /// The file could not be read.
    #[error("cannot read `{path}`: {reason}")]
    Io {
        /// The file.
        path: String,
        /// The operating system's reason.
        reason: String,
    },
    /// The file is not valid YAML of the expected shape.
    #[error("cannot parse `{path}`: {reason}")]
    Yaml {
        /// The file.
        path: String,
        /// The parser's reason.
        reason: String,
    },
    /// The file's content is refused.
    #[error("{0}")]
    Invalid(String),
    /// The schema does not compile.
    #[error("error when parsing schema: {0}")]
    Schema(String),
    /// The engine refused or failed.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// The temporary store could not be created.
    #[error("cannot create a temporary store: {0}")]
    TempStore(String),
    /// The database to validate on could not be opened or emptied.
    #[error("cannot use the database: {0}")]
    Datastore(#[from] StoreError),
    /// The database to validate on holds data, and clearing it was not asked for.
    #[error("database `{database}` holds data (its head revision is {head}): validation needs an empty database; pass --clear to empty it first (everything in it is lost)")]
    NotEmpty {
        /// The database.
        database: String,
        /// Its head revision.
        head: u64,
    },
}

/// How to run validation.
#[derive(Debug, Clone, Default)]
pub struct ValidateOptions {
    /// Pin "now" for expiration (default: the system clock).
    pub now: Option<DateTime<Utc>>,
    /// Skip the check / lookup agreement pass.
    pub skip_consistency: bool,
    /// The engine's tunables (cache and group index on by default); the conformance tests run
    /// every file with each accelerator on and off.
    pub engine: EngineConfig,
    /// Validate on this database instead of a temporary embedded store (which must be empty,
    /// or `clear` set); it is emptied again afterwards.
    pub datastore: Option<Datastore>,
    /// Empty a database that holds data before validating.
    pub clear: bool,
}

/// What validating one file (or one merged group of files) found.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// Relationships loaded.
    pub relationships: usize,
    /// Assertions checked.
    pub assertions: usize,
    /// Expected-relation blocks compared.
    pub validations: usize,
    /// Consistency combinations compared.
    pub consistency_checks: usize,
    /// Every disagreement, one line each.
    pub failures: Vec<String>,
    /// Each assertion and expected-relations block, in file order, passed or not.
    pub outcomes: Vec<Outcome>,
}

/// One assertion or expected-relations block and whether it held.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// `assertTrue`, `assertFalse`, `assertCaveated` or `validation`.
    pub kind: &'static str,
    /// The assertion text, or the expected-relations key.
    pub item: String,
    /// The failure, if it did not hold.
    pub failure: Option<String>,
}

impl Report {
    /// Whether nothing failed.
    pub fn passed(&self) -> bool {
        self.failures.is_empty()
    }

    /// Notes one assertion or expected-relations block and its failure, if any.
    fn record(&mut self, kind: &'static str, item: &str, failure: Option<String>) {
        if let Some(failure) = &failure {
            self.failures.push(failure.clone());
        }
        self.outcomes.push(Outcome {
            kind,
            item: item.to_string(),
            failure,
        });
    }
}

/// Loads `files` in order into one fresh store and validates all of them together.
/// A load error (bad schema, bad relationship) is returned as `Err`; disagreements are
/// listed in the report.
pub fn validate_files(files: &[&Path], options: &ValidateOptions) -> Result<Report, ValidateError> {
    let parsed = files
        .iter()
        .map(|path| file::load(path))
        .collect::<Result<Vec<_>, _>>()?;
    validate_parsed(&parsed, options)
}

/// Validates already-parsed files loaded into one fresh store.
pub fn validate_parsed(
    files: &[ValidationFile],
    options: &ValidateOptions,
) -> Result<Report, ValidateError> {
    let clock: Arc<dyn Clock> = match options.now {
        Some(now) => Arc::new(FixedClock::new(now)),
        None => Arc::new(SystemClock),
    };
    match &options.datastore {
        None | Some(Datastore::Embedded(_)) => {
            let dir = tempfile::tempdir().map_err(|e| ValidateError::TempStore(e.to_string()))?;
            let store = Opened::open(
                &Datastore::Embedded(dir.path().to_path_buf()),
                &OpenOptions {
                    sync_writes: false,
                    clock,
                    ..OpenOptions::default()
                },
            )
            .map_err(|e| ValidateError::TempStore(e.to_string()))?;
            validate_on(store.store(), files, options)
        }
        Some(Datastore::Postgres(url)) => {
            let mut store = PgStore::open(
                url,
                PgOptions {
                    clock,
                    ..PgOptions::default()
                },
            )?;
            let head = store.head_revision();
            if head.0 > 0 {
                if !options.clear {
                    return Err(ValidateError::NotEmpty {
                        database: store.database().to_string(),
                        head: head.0,
                    });
                }
                store = store.clear()?;
            }
            let store = Arc::new(store);
            let outcome = validate_on(Arc::clone(&store) as Arc<dyn TupleStore>, files, options);
            // What this run wrote is its own to remove: the next file starts empty.
            match Arc::try_unwrap(store) {
                Ok(store) => {
                    store.clear()?;
                }
                Err(_) => tracing::warn!("the database was left with the validated data"),
            }
            outcome
        }
    }
}

/// Validates `files` loaded into `store`, which is empty.
fn validate_on(
    store: Arc<dyn TupleStore>,
    files: &[ValidationFile],
    options: &ValidateOptions,
) -> Result<Report, ValidateError> {
    let engine = Engine::new(store, options.engine.clone())?;

    let schema = files
        .iter()
        .rev()
        .find_map(|f| f.schema.as_deref())
        // Without a schema every relationship names an unknown type, which is the error to report.
        .unwrap_or_default();
    crate::schema::compile(schema).map_err(|e| ValidateError::Schema(e.to_string()))?;
    engine.write_schema(schema)?;

    let relationships: Vec<&Relationship> = files.iter().flat_map(|f| &f.relationships).collect();
    for chunk in relationships.chunks(LOAD_CHUNK) {
        let updates: Vec<Update> = chunk
            .iter()
            .map(|rel| Update {
                op: UpdateOp::Touch,
                relationship: (*rel).clone(),
            })
            .collect();
        engine.write_relationships(&updates, &[])?;
    }

    let mut report = Report {
        relationships: relationships.len(),
        ..Report::default()
    };
    for file in files {
        run_assertions(&engine, file, &mut report)?;
        run_expected_relations(&engine, file, &mut report)?;
    }
    if !options.skip_consistency {
        let all: Vec<Relationship> = relationships.into_iter().cloned().collect();
        run_consistency(&engine, &all, &mut report)?;
    }
    Ok(report)
}

/// Splits `resource#permission@subject with {json}` into its parts.
fn parse_assertion(text: &str) -> Result<(Relationship, Context), ValidateError> {
    let (rel_text, context) = match text.split_once(" with ") {
        Some((rel, json)) => {
            let value: serde_json::Value = serde_json::from_str(json.trim()).map_err(|e| {
                ValidateError::Invalid(format!("invalid context in assertion `{text}`: {e}"))
            })?;
            match value {
                serde_json::Value::Object(map) => (rel, map),
                _ => {
                    return Err(ValidateError::Invalid(format!(
                        "context in assertion `{text}` must be a JSON object"
                    )))
                }
            }
        }
        None => (text, Context::new()),
    };
    let rel = Relationship::parse(rel_text)
        .map_err(|e| ValidateError::Invalid(format!("invalid assertion `{text}`: {e}")))?;
    Ok((rel, context))
}

fn describe(p: &Permissionship) -> &'static str {
    match p {
        Permissionship::Has => "true",
        Permissionship::No => "false",
        Permissionship::Conditional { .. } => "caveated",
    }
}

fn run_assertions(
    engine: &Engine,
    file: &ValidationFile,
    report: &mut Report,
) -> Result<(), ValidateError> {
    let groups: [(&[String], &str, &'static str); 3] = [
        (&file.assert_true, "true", "assertTrue"),
        (&file.assert_false, "false", "assertFalse"),
        (&file.assert_caveated, "caveated", "assertCaveated"),
    ];
    for (assertions, expected, kind) in groups {
        for text in assertions {
            report.assertions += 1;
            let (rel, context) = parse_assertion(text)?;
            let failure = match engine.check(&rel.resource, &rel.relation, &rel.subject, &context) {
                Ok(result) => {
                    let actual = describe(&result.permissionship);
                    (actual != expected)
                        .then(|| format!("assertion `{text}`: expected {expected}, got {actual}"))
                }
                Err(err) => Some(format!(
                    "assertion `{text}`: expected {expected}, got error: {err}"
                )),
            };
            report.record(kind, text, failure);
        }
    }
    Ok(())
}

fn run_expected_relations(
    engine: &Engine,
    file: &ValidationFile,
    report: &mut Report,
) -> Result<(), ValidateError> {
    for (key, lines) in &file.validation {
        report.validations += 1;
        let (object_text, relation) = key
            .split_once('#')
            .ok_or_else(|| ValidateError::Invalid(format!("invalid validation key `{key}`")))?;
        let object = ObjectRef::parse(object_text)
            .map_err(|e| ValidateError::Invalid(format!("invalid validation key `{key}`: {e}")))?;
        let expected: BTreeSet<FoundEntry> = lines
            .iter()
            .map(|line| expected::parse_line(line))
            .collect::<Result<_, _>>()?;
        let (tree, _) = match engine.expand(&object, relation, true) {
            Ok(found) => found,
            Err(err) => {
                let failure = format!("expected relations for `{key}`: {err}");
                report.record("validation", key, Some(failure));
                continue;
            }
        };
        let actual: BTreeSet<FoundEntry> = expected::found_subjects(&tree).into_values().collect();
        let failure = (expected != actual).then(|| {
            let missing: Vec<String> = expected
                .difference(&actual)
                .map(|e| e.to_string())
                .collect();
            let extra: Vec<String> = actual
                .difference(&expected)
                .map(|e| e.to_string())
                .collect();
            format!(
                "expected relations for `{key}` differ: missing {missing:?}, unexpected {extra:?}"
            )
        });
        report.record("validation", key, failure);
    }
    Ok(())
}

/// For every object, relation or permission of its type, and subject in the relationships:
/// check must agree with lookup-resources and with lookup-subjects.
fn run_consistency(
    engine: &Engine,
    relationships: &[Relationship],
    report: &mut Report,
) -> Result<(), ValidateError> {
    let schema = engine.schema()?;
    let mut objects = BTreeSet::new();
    let mut subjects = BTreeSet::new();
    for rel in relationships {
        objects.insert(rel.resource.clone());
        if !rel.subject.is_wildcard() {
            objects.insert(rel.subject.object.clone());
            subjects.insert(rel.subject.clone());
            subjects.insert(SubjectRef {
                object: rel.subject.object.clone(),
                relation: None,
            });
        }
    }
    let context = Context::new();
    let mut resources_cache: BTreeMap<
        (String, String, SubjectRef),
        Option<BTreeMap<String, bool>>,
    > = BTreeMap::new();
    for object in &objects {
        let Some(def) = schema.definition(&object.object_type) else {
            continue;
        };
        for member in &def.member_order {
            if def.member(member).is_none() {
                continue;
            }
            let mut subject_sets: BTreeMap<
                (String, Option<String>),
                Option<crate::engine::FoundSubjects>,
            > = BTreeMap::new();
            for subject in &subjects {
                if let Some(rel) = &subject.relation {
                    let valid = schema
                        .definition(&subject.object.object_type)
                        .and_then(|d| d.member(rel))
                        .is_some();
                    if !valid {
                        continue;
                    }
                }
                let check = match engine.check(object, member, subject, &context) {
                    Ok(result) => result.permissionship,
                    Err(_) => continue, // refused checks (e.g. depth) have nothing to agree with
                };
                report.consistency_checks += 1;
                let has = !check.is_no();

                let lr_key = (object.object_type.clone(), member.clone(), subject.clone());
                let found = resources_cache.entry(lr_key).or_insert_with(|| {
                    engine
                        .lookup_resources(&object.object_type, member, subject, &context)
                        .ok()
                        .map(|(found, _)| {
                            found
                                .into_iter()
                                .map(|(id, p)| (id, matches!(p, Permissionship::Has)))
                                .collect()
                        })
                });
                if let Some(found) = found {
                    let in_lookup = found.contains_key(&object.object_id);
                    if in_lookup != has {
                        report.failures.push(format!(
                            "consistency: check `{object}#{member}@{subject}` is {}, but lookup-resources {} it",
                            describe(&check),
                            if in_lookup { "returns" } else { "does not return" }
                        ));
                    }
                }

                let ls_key = (subject.object.object_type.clone(), subject.relation.clone());
                let found_subjects = subject_sets.entry(ls_key).or_insert_with(|| {
                    engine
                        .lookup_subjects(
                            object,
                            member,
                            &subject.object.object_type,
                            subject.relation.as_deref(),
                            &context,
                        )
                        .ok()
                        .map(|(found, _)| found)
                });
                if let Some(found) = found_subjects {
                    // What lookup-subjects says of this subject: the strongest of its own entry
                    // and a wildcard that does not exclude it (2 has, 1 conditional, 0 out);
                    // the check must say the same.
                    let id = &subject.object.object_id;
                    let said = found
                        .iter()
                        .filter(|f| {
                            f.subject_id == *id
                                || (f.subject_id == crate::tuple::WILDCARD_ID
                                    && subject.relation.is_none()
                                    && !f.excluded_ids.contains(id))
                        })
                        .map(|f| if f.permissionship.is_has() { 2 } else { 1 })
                        .max()
                        .unwrap_or(0);
                    let checked = match check {
                        Permissionship::Has => 2,
                        Permissionship::Conditional { .. } => 1,
                        Permissionship::No => 0,
                    };
                    if said != checked {
                        report.failures.push(format!(
                            "consistency: check `{object}#{member}@{subject}` is {}, but lookup-subjects {} it",
                            describe(&check),
                            match said {
                                2 => "returns",
                                1 => "conditionally returns",
                                _ => "does not return",
                            }
                        ));
                    }
                }
            }
        }
    }
    Ok(())
}
