//! Check traces on the wire: SpiceDB's `DebugInformation` / `CheckDebugTrace` messages in
//! their JSON form (the HTTP API's `debugTrace`), to and from the engine's [`CheckTrace`].
//!
//! The messages carry what SpiceDB's do: per step the resource, the relation or permission
//! and its type, the subject, the result, a cached flag or the sub-problems, the caveat
//! evaluated, the time spent, the earliest expiration and the source (`zanzi:walk`,
//! `zanzi:cache`, `zanzi:cycle`, or `group-index:<type>#<relation>` for a nested-group index
//! probe, which SpiceDB's tools print as "cached by group-index"). Each step's operation
//! (union, arrow, ...) is not a field of the message: reading a trace back derives it from
//! `schemaUsed`, as the engine did when it recorded the step, so a trace read from the wire
//! prints the same tree as the engine's.

use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::error::ApiError;
use super::wire::{ObjectReference, SubjectReference};
use crate::engine::{
    CaveatResult, CaveatTrace, CheckTrace, MemberKind, Operation, Permissionship, StepSource,
    TraceStep,
};
use crate::schema::{self, Schema};
use crate::tuple::{ObjectRef, SubjectRef};

/// `DebugInformation` in JSON.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct WireDebugInformation {
    /// The trace of the check.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub check: Option<WireCheckTrace>,
    /// The schema the check used.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub schema_used: String,
}

/// `CheckDebugTrace` in JSON.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct WireCheckTrace {
    /// The resource of the step.
    #[serde(default)]
    pub resource: ObjectReference,
    /// The relation or permission.
    #[serde(default)]
    pub permission: String,
    /// `PERMISSION_TYPE_RELATION` or `PERMISSION_TYPE_PERMISSION`.
    #[serde(default)]
    pub permission_type: String,
    /// The subject of the check.
    #[serde(default)]
    pub subject: SubjectReference,
    /// `PERMISSIONSHIP_HAS_PERMISSION`, `..._NO_PERMISSION` or `..._CONDITIONAL_PERMISSION`.
    #[serde(default)]
    pub result: String,
    /// Set (true or false) on a step without sub-problems.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub was_cached_result: Option<bool>,
    /// The steps this one needed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub_problems: Option<WireSubProblems>,
    /// The caveat evaluated at this step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caveat_evaluation_info: Option<WireCaveatEvalInfo>,
    /// Time spent, as protobuf's JSON duration (`"0.000012s"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<String>,
    /// The earliest expiration among the relationships read (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub optional_expires_at: Option<String>,
    /// Opaque operation id (unused by zanzi).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub trace_operation_id: String,
    /// `<sourcetype>:<sourceid>`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub source: String,
}

/// `CheckDebugTrace.SubProblems` in JSON.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct WireSubProblems {
    /// The sub-steps.
    #[serde(default)]
    pub traces: Vec<WireCheckTrace>,
}

/// `CaveatEvalInfo` in JSON.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct WireCaveatEvalInfo {
    /// The CEL expression.
    #[serde(default)]
    pub expression: String,
    /// `RESULT_TRUE`, `RESULT_FALSE` or `RESULT_MISSING_SOME_CONTEXT`.
    #[serde(default)]
    pub result: String,
    /// The parameter values used.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub context: Map<String, Value>,
    /// The missing parameters, for `RESULT_MISSING_SOME_CONTEXT`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partial_caveat_info: Option<WirePartialCaveatInfo>,
    /// The caveat's name.
    #[serde(default)]
    pub caveat_name: String,
}

/// `PartialCaveatInfo` in JSON.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct WirePartialCaveatInfo {
    /// The parameters nobody supplied.
    #[serde(default)]
    pub missing_required_context: Vec<String>,
}

// ---- names shared by both wire formats ----

/// The `source` of a step.
pub fn source_text(step: &TraceStep) -> String {
    match step.source {
        StepSource::Walk => "zanzi:walk".to_string(),
        StepSource::Cache => "zanzi:cache".to_string(),
        StepSource::Cycle => "zanzi:cycle".to_string(),
        StepSource::GroupIndex => {
            format!("group-index:{}#{}", step.resource.object_type, step.member)
        }
    }
}

/// The step source a `source` and cached flag stand for.
pub fn source_of(source: &str, cached: bool) -> StepSource {
    if source.starts_with("group-index:") {
        StepSource::GroupIndex
    } else if source == "zanzi:cycle" {
        StepSource::Cycle
    } else if cached {
        StepSource::Cache
    } else {
        StepSource::Walk
    }
}

/// Whether the step goes on the wire as a cached result (the cache and the group index).
pub fn is_cached(step: &TraceStep) -> bool {
    matches!(step.source, StepSource::Cache | StepSource::GroupIndex)
}

/// Protobuf's JSON form of a duration: seconds with 0, 3, 6 or 9 fractional digits.
pub fn duration_text(duration: Duration) -> String {
    let seconds = duration.as_secs();
    let nanos = duration.subsec_nanos();
    if nanos == 0 {
        format!("{seconds}s")
    } else if nanos % 1_000_000 == 0 {
        format!("{seconds}.{:03}s", nanos / 1_000_000)
    } else if nanos % 1_000 == 0 {
        format!("{seconds}.{:06}s", nanos / 1_000)
    } else {
        format!("{seconds}.{nanos:09}s")
    }
}

/// Parses protobuf's JSON form of a duration.
pub fn parse_duration(text: &str) -> Result<Duration, ApiError> {
    let malformed = || ApiError::invalid(format!("malformed duration `{text}`"));
    let number = text.strip_suffix('s').ok_or_else(malformed)?;
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    let seconds: u64 = whole.parse().map_err(|_| malformed())?;
    if fraction.len() > 9 || !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return Err(malformed());
    }
    let nanos: u32 = if fraction.is_empty() {
        0
    } else {
        format!("{fraction:0<9}").parse().map_err(|_| malformed())?
    };
    Ok(Duration::new(seconds, nanos))
}

/// The `result` enum name of a step.
pub fn result_name(p: &Permissionship) -> &'static str {
    match p {
        Permissionship::Has => "PERMISSIONSHIP_HAS_PERMISSION",
        Permissionship::No => "PERMISSIONSHIP_NO_PERMISSION",
        Permissionship::Conditional { .. } => "PERMISSIONSHIP_CONDITIONAL_PERMISSION",
    }
}

/// The `permission_type` enum name of a step.
pub fn kind_name(kind: MemberKind) -> &'static str {
    match kind {
        MemberKind::Relation => "PERMISSION_TYPE_RELATION",
        MemberKind::Permission => "PERMISSION_TYPE_PERMISSION",
    }
}

/// The `CaveatEvalInfo.Result` enum name.
pub fn caveat_result_name(result: CaveatResult) -> &'static str {
    match result {
        CaveatResult::True => "RESULT_TRUE",
        CaveatResult::False => "RESULT_FALSE",
        CaveatResult::MissingContext => "RESULT_MISSING_SOME_CONTEXT",
    }
}

/// A step's result read back: conditional answers carry what their caveat and their
/// sub-steps miss.
pub fn result_of(
    name: &str,
    caveat: Option<&CaveatTrace>,
    steps: &[TraceStep],
) -> Result<Permissionship, ApiError> {
    Ok(match name {
        "PERMISSIONSHIP_HAS_PERMISSION" => Permissionship::Has,
        "PERMISSIONSHIP_NO_PERMISSION" => Permissionship::No,
        "PERMISSIONSHIP_CONDITIONAL_PERMISSION" => {
            let mut missing: Vec<String> = caveat.map(|c| c.missing.clone()).unwrap_or_default();
            for step in steps {
                if let Permissionship::Conditional { missing: inner } = &step.result {
                    missing.extend(inner.iter().cloned());
                }
            }
            Permissionship::conditional(missing)
        }
        other => return Err(ApiError::invalid(format!("unknown trace result `{other}`"))),
    })
}

/// The operation of a step read back, from the schema the trace says it used.
pub fn operation_in(
    schema: Option<&Schema>,
    resource: &ObjectRef,
    member: &str,
    kind: MemberKind,
) -> Option<Operation> {
    let (found, operation) = Operation::of(schema?, &resource.object_type, member)?;
    (found == kind).then_some(operation)
}

/// The schema a trace used, if it compiles.
pub fn schema_used(text: &str) -> Option<Schema> {
    schema::compile(text).ok()
}

// ---- JSON ----

/// The `debugTrace` of a traced check.
pub fn to_json(trace: &CheckTrace) -> WireDebugInformation {
    WireDebugInformation {
        check: Some(step_to_json(&trace.root, &trace.subject)),
        schema_used: trace.schema_used.clone(),
    }
}

fn step_to_json(step: &TraceStep, subject: &SubjectRef) -> WireCheckTrace {
    let walked = !step.steps.is_empty();
    WireCheckTrace {
        resource: ObjectReference::from_domain(&step.resource),
        permission: step.member.clone(),
        permission_type: kind_name(step.kind).to_string(),
        subject: SubjectReference::from_domain(subject),
        result: result_name(&step.result).to_string(),
        was_cached_result: (!walked).then(|| is_cached(step)),
        sub_problems: walked.then(|| WireSubProblems {
            traces: step
                .steps
                .iter()
                .map(|s| step_to_json(s, subject))
                .collect(),
        }),
        caveat_evaluation_info: step.caveat.as_ref().map(|c| WireCaveatEvalInfo {
            expression: c.expression.clone(),
            result: caveat_result_name(c.result).to_string(),
            context: c.context.clone(),
            partial_caveat_info: (c.result == CaveatResult::MissingContext).then(|| {
                WirePartialCaveatInfo {
                    missing_required_context: c.missing.clone(),
                }
            }),
            caveat_name: c.name.clone(),
        }),
        duration: Some(duration_text(step.duration)),
        optional_expires_at: step
            .expires_at
            .map(|at| at.to_rfc3339_opts(SecondsFormat::AutoSi, true)),
        trace_operation_id: String::new(),
        source: source_text(step),
    }
}

/// A `debugTrace` read back into the engine's trace (operations derived from `schemaUsed`).
pub fn from_json(info: &WireDebugInformation) -> Result<CheckTrace, ApiError> {
    let root = info
        .check
        .as_ref()
        .ok_or_else(|| ApiError::invalid("debug information without a check trace"))?;
    let schema = schema_used(&info.schema_used);
    Ok(CheckTrace {
        subject: root.subject.to_domain("subject")?,
        schema_used: info.schema_used.clone(),
        root: step_from_json(root, schema.as_ref())?,
    })
}

fn step_from_json(wire: &WireCheckTrace, schema: Option<&Schema>) -> Result<TraceStep, ApiError> {
    let resource = wire.resource.to_domain("resource")?;
    let kind = match wire.permission_type.as_str() {
        "PERMISSION_TYPE_PERMISSION" => MemberKind::Permission,
        _ => MemberKind::Relation,
    };
    let steps = wire
        .sub_problems
        .as_ref()
        .map(|sub| {
            sub.traces
                .iter()
                .map(|s| step_from_json(s, schema))
                .collect::<Result<Vec<_>, _>>()
        })
        .transpose()?
        .unwrap_or_default();
    let caveat = wire
        .caveat_evaluation_info
        .as_ref()
        .map(|c| {
            Ok::<_, ApiError>(CaveatTrace {
                name: c.caveat_name.clone(),
                expression: c.expression.clone(),
                result: match c.result.as_str() {
                    "RESULT_TRUE" => CaveatResult::True,
                    "RESULT_FALSE" => CaveatResult::False,
                    "RESULT_MISSING_SOME_CONTEXT" => CaveatResult::MissingContext,
                    other => {
                        return Err(ApiError::invalid(format!(
                            "unknown caveat result `{other}`"
                        )))
                    }
                },
                context: c.context.clone(),
                missing: c
                    .partial_caveat_info
                    .as_ref()
                    .map(|p| p.missing_required_context.clone())
                    .unwrap_or_default(),
            })
        })
        .transpose()?;
    let expires_at = wire
        .optional_expires_at
        .as_deref()
        .map(|text| {
            DateTime::parse_from_rfc3339(text)
                .map(|at| at.with_timezone(&Utc))
                .map_err(|e| ApiError::invalid(format!("malformed expiration `{text}`: {e}")))
        })
        .transpose()?;
    Ok(TraceStep {
        operation: operation_in(schema, &resource, &wire.permission, kind),
        result: result_of(&wire.result, caveat.as_ref(), &steps)?,
        source: source_of(&wire.source, wire.was_cached_result == Some(true)),
        duration: wire
            .duration
            .as_deref()
            .map(parse_duration)
            .transpose()?
            .unwrap_or_default(),
        resource,
        member: wire.permission.clone(),
        kind,
        caveat,
        expires_at,
        steps,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_use_protobuf_json_form() {
        assert_eq!(duration_text(Duration::from_secs(2)), "2s");
        assert_eq!(duration_text(Duration::from_millis(1500)), "1.500s");
        assert_eq!(duration_text(Duration::from_micros(12)), "0.000012s");
        assert_eq!(duration_text(Duration::from_nanos(1_234)), "0.000001234s");
        for text in ["2s", "1.500s", "0.000012s", "0.000001234s"] {
            assert_eq!(duration_text(parse_duration(text).unwrap()), text);
        }
        assert_eq!(parse_duration("0.5s").unwrap(), Duration::from_millis(500));
        assert!(parse_duration("12").is_err());
        assert!(parse_duration("1.2.3s").is_err());
        assert!(parse_duration("1.0000000001s").is_err());
    }

    #[test]
    fn sources_round_trip() {
        assert_eq!(source_of("zanzi:walk", false), StepSource::Walk);
        assert_eq!(source_of("zanzi:cache", true), StepSource::Cache);
        assert_eq!(source_of("zanzi:cycle", false), StepSource::Cycle);
        assert_eq!(
            source_of("group-index:group#member", true),
            StepSource::GroupIndex
        );
        // A SpiceDB node's cached result.
        assert_eq!(source_of("spicedb:node-1", true), StepSource::Cache);
    }
}
