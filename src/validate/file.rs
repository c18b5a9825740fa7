//! Reading a SpiceDB validation file: schema (inline or `schemaFile`), relationships,
//! assertions and expected relations.

use std::collections::{BTreeMap, HashSet};
use std::path::{Component, Path, PathBuf};

use serde::Deserialize;

use super::ValidateError;
use crate::tuple::Relationship;

/// The parsed contents of one validation file.
#[derive(Debug, Clone, Default)]
pub struct ValidationFile {
    /// Where it was read from.
    pub path: PathBuf,
    /// Schema text, if the file has one.
    pub schema: Option<String>,
    /// Relationships in file order.
    pub relationships: Vec<Relationship>,
    /// `assertTrue` entries.
    pub assert_true: Vec<String>,
    /// `assertFalse` entries.
    pub assert_false: Vec<String>,
    /// `assertCaveated` entries.
    pub assert_caveated: Vec<String>,
    /// Expected relations: `type:id#relation` → expected subject lines.
    pub validation: BTreeMap<String, Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    schema: Option<String>,
    #[serde(rename = "schemaFile")]
    schema_file: Option<String>,
    relationships: Option<String>,
    assertions: Option<RawAssertions>,
    validation: Option<BTreeMap<String, Option<Vec<String>>>>,
    /// The key older files used for relationships; refused with a pointer to `relationships`.
    validation_tuples: Option<serde_yaml::Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAssertions {
    #[serde(rename = "assertTrue")]
    assert_true: Option<Vec<String>>,
    #[serde(rename = "assertFalse")]
    assert_false: Option<Vec<String>>,
    #[serde(rename = "assertCaveated")]
    assert_caveated: Option<Vec<String>>,
}

/// Reads and parses one validation file.
pub fn load(path: &Path) -> Result<ValidationFile, ValidateError> {
    let text = std::fs::read_to_string(path).map_err(|e| ValidateError::Io {
        path: path.display().to_string(),
        reason: e.to_string(),
    })?;
    parse(path, &text)
}

/// Parses validation-file text read from `path` (used to resolve `schemaFile`).
pub fn parse(path: &Path, text: &str) -> Result<ValidationFile, ValidateError> {
    parse_with(path, text, true)
}

/// Parses validation-file text that came from no file (pasted into the playground): its
/// schema must be inline, since `schemaFile` would read the server's disk.
pub fn parse_inline(text: &str) -> Result<ValidationFile, ValidateError> {
    parse_with(Path::new("pasted.yaml"), text, false)
}

fn parse_with(
    path: &Path,
    text: &str,
    schema_file_allowed: bool,
) -> Result<ValidationFile, ValidateError> {
    let raw: RawFile = serde_yaml::from_str(text).map_err(|e| ValidateError::Yaml {
        path: path.display().to_string(),
        reason: e.to_string(),
    })?;
    if raw.schema_file.is_some() && !schema_file_allowed {
        return Err(ValidateError::Invalid(
            "`schemaFile` cannot be used here: put the schema under `schema`".to_string(),
        ));
    }
    if raw.validation_tuples.is_some() {
        return Err(ValidateError::Invalid(
            "relationships must be specified in `relationships`".to_string(),
        ));
    }
    let schema = match (raw.schema, raw.schema_file) {
        (Some(_), Some(_)) => {
            return Err(ValidateError::Invalid(
                "only one of schema or schemaFile can be specified".to_string(),
            ))
        }
        (Some(schema), None) => Some(schema),
        (None, Some(file)) => Some(read_schema_file(path, &file)?),
        (None, None) => None,
    };
    let mut relationships = Vec::new();
    let mut seen = HashSet::new();
    for (index, line) in raw.relationships.unwrap_or_default().lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with("//") {
            continue;
        }
        let rel = Relationship::parse(line).map_err(|e| {
            ValidateError::Invalid(format!(
                "error parsing relationship on line {}: {e}",
                index + 1
            ))
        })?;
        if !seen.insert(rel.key_string()) {
            return Err(ValidateError::Invalid(format!(
                "found repeated relationship `{}`",
                rel.key_string()
            )));
        }
        relationships.push(rel);
    }
    let assertions = raw.assertions.unwrap_or_default();
    Ok(ValidationFile {
        path: path.to_path_buf(),
        schema,
        relationships,
        assert_true: assertions.assert_true.unwrap_or_default(),
        assert_false: assertions.assert_false.unwrap_or_default(),
        assert_caveated: assertions.assert_caveated.unwrap_or_default(),
        validation: raw
            .validation
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| (k, v.unwrap_or_default()))
            .collect(),
    })
}

/// Reads `schemaFile`, which must be local: resolved against the validation file's folder,
/// it may not climb above the folder the validation file was named from (SpiceDB's rule).
fn read_schema_file(file: &Path, schema_file: &str) -> Result<String, ValidateError> {
    let joined = file
        .parent()
        .unwrap_or_else(|| Path::new(""))
        .join(schema_file);
    let cleaned = clean(&joined);
    let is_local = if file.is_absolute() {
        !Path::new(schema_file).is_absolute()
    } else {
        cleaned.is_relative() && !matches!(cleaned.components().next(), Some(Component::ParentDir))
    };
    if !is_local {
        return Err(ValidateError::Invalid(format!(
            "schema file \"{}\" is not local",
            cleaned.display()
        )));
    }
    std::fs::read_to_string(&cleaned).map_err(|e| {
        ValidateError::Invalid(format!(
            "error when opening schema file {}: {e}",
            cleaned.display()
        ))
    })
}

/// Lexically removes `.` and `a/..` pairs.
fn clean(path: &Path) -> PathBuf {
    let mut out: Vec<Component<'_>> = Vec::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => match out.last() {
                Some(Component::Normal(_)) => {
                    out.pop();
                }
                Some(Component::RootDir) => {}
                _ => out.push(component),
            },
            other => out.push(other),
        }
    }
    out.iter().collect()
}
