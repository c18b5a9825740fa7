//! Check traces as protobuf: SpiceDB's `DebugInformation` / `CheckDebugTrace` messages to and
//! from the engine's [`CheckTrace`], with the same names and rules as the JSON form
//! (`api::trace`), so a trace read back from either wire format is the same trace.

use prost_types::Duration as ProtoDuration;

use super::convert::{json_to_struct, struct_to_json, timestamp, to_object, to_subject};
use crate::api::error::ApiError;
use crate::api::trace::{is_cached, operation_in, result_of, schema_used, source_of, source_text};
use crate::engine::{CaveatResult, CaveatTrace, CheckTrace, MemberKind, Permissionship, TraceStep};
use crate::proto::v1::{self, caveat_eval_info, check_debug_trace};
use crate::schema::Schema;
use crate::tuple::SubjectRef;

/// The `debug_trace` of a traced check.
pub fn to_proto(trace: &CheckTrace) -> v1::DebugInformation {
    v1::DebugInformation {
        check: Some(step_to_proto(&trace.root, &trace.subject)),
        schema_used: trace.schema_used.clone(),
    }
}

fn step_to_proto(step: &TraceStep, subject: &SubjectRef) -> v1::CheckDebugTrace {
    use check_debug_trace::{PermissionType, Permissionship as Result, Resolution, SubProblems};
    let resolution = if step.steps.is_empty() {
        Resolution::WasCachedResult(is_cached(step))
    } else {
        Resolution::SubProblems(SubProblems {
            traces: step
                .steps
                .iter()
                .map(|s| step_to_proto(s, subject))
                .collect(),
        })
    };
    v1::CheckDebugTrace {
        resource: Some(to_object(&step.resource)),
        permission: step.member.clone(),
        permission_type: match step.kind {
            MemberKind::Relation => PermissionType::Relation,
            MemberKind::Permission => PermissionType::Permission,
        } as i32,
        subject: Some(to_subject(subject)),
        result: match step.result {
            Permissionship::Has => Result::HasPermission,
            Permissionship::No => Result::NoPermission,
            Permissionship::Conditional { .. } => Result::ConditionalPermission,
        } as i32,
        caveat_evaluation_info: step.caveat.as_ref().map(caveat_to_proto),
        duration: Some(ProtoDuration {
            seconds: i64::try_from(step.duration.as_secs()).unwrap_or(i64::MAX),
            // INVARIANT: sub-second nanoseconds are below 10^9 < 2^31.
            nanos: i32::try_from(step.duration.subsec_nanos()).unwrap_or_default(),
        }),
        optional_expires_at: step.expires_at.as_ref().map(super::convert::to_timestamp),
        trace_operation_id: String::new(),
        source: source_text(step),
        resolution: Some(resolution),
    }
}

fn caveat_to_proto(caveat: &CaveatTrace) -> v1::CaveatEvalInfo {
    use caveat_eval_info::Result;
    v1::CaveatEvalInfo {
        expression: caveat.expression.clone(),
        result: match caveat.result {
            CaveatResult::True => Result::True,
            CaveatResult::False => Result::False,
            CaveatResult::MissingContext => Result::MissingSomeContext,
        } as i32,
        context: Some(json_to_struct(&caveat.context)),
        partial_caveat_info: (caveat.result == CaveatResult::MissingContext).then(|| {
            v1::PartialCaveatInfo {
                missing_required_context: caveat.missing.clone(),
            }
        }),
        caveat_name: caveat.name.clone(),
    }
}

/// A `DebugInformation` read back into the engine's trace (operations derived from
/// `schema_used`).
pub fn from_proto(info: &v1::DebugInformation) -> Result<CheckTrace, ApiError> {
    let root = info
        .check
        .as_ref()
        .ok_or_else(|| ApiError::invalid("debug information without a check trace"))?;
    let schema = schema_used(&info.schema_used);
    Ok(CheckTrace {
        subject: super::convert::subject(root.subject.as_ref(), "subject")?,
        schema_used: info.schema_used.clone(),
        root: step_from_proto(root, schema.as_ref())?,
    })
}

fn step_from_proto(
    wire: &v1::CheckDebugTrace,
    schema: Option<&Schema>,
) -> Result<TraceStep, ApiError> {
    use check_debug_trace::{PermissionType, Resolution};
    let resource = super::convert::object(wire.resource.as_ref(), "resource")?;
    let kind = match PermissionType::try_from(wire.permission_type) {
        Ok(PermissionType::Permission) => MemberKind::Permission,
        _ => MemberKind::Relation,
    };
    let (steps, cached) = match &wire.resolution {
        Some(Resolution::SubProblems(sub)) => (
            sub.traces
                .iter()
                .map(|s| step_from_proto(s, schema))
                .collect::<Result<Vec<_>, _>>()?,
            false,
        ),
        Some(Resolution::WasCachedResult(cached)) => (Vec::new(), *cached),
        None => (Vec::new(), false),
    };
    let caveat = wire
        .caveat_evaluation_info
        .as_ref()
        .map(caveat_from_proto)
        .transpose()?;
    let result_name = check_debug_trace::Permissionship::try_from(wire.result)
        .map(|r| r.as_str_name())
        .unwrap_or("PERMISSIONSHIP_UNSPECIFIED");
    let duration = match &wire.duration {
        None => std::time::Duration::ZERO,
        Some(d) => {
            let negative = |_| ApiError::invalid("negative trace duration");
            std::time::Duration::new(
                u64::try_from(d.seconds).map_err(negative)?,
                u32::try_from(d.nanos).map_err(negative)?,
            )
        }
    };
    Ok(TraceStep {
        operation: operation_in(schema, &resource, &wire.permission, kind),
        result: result_of(result_name, caveat.as_ref(), &steps)?,
        source: source_of(&wire.source, cached),
        expires_at: wire
            .optional_expires_at
            .as_ref()
            .map(|at| timestamp(at, "optional_expires_at"))
            .transpose()?,
        resource,
        member: wire.permission.clone(),
        kind,
        caveat,
        duration,
        steps,
    })
}

fn caveat_from_proto(info: &v1::CaveatEvalInfo) -> Result<CaveatTrace, ApiError> {
    use caveat_eval_info::Result;
    Ok(CaveatTrace {
        name: info.caveat_name.clone(),
        expression: info.expression.clone(),
        result: match Result::try_from(info.result) {
            Ok(Result::True) => CaveatResult::True,
            Ok(Result::False) => CaveatResult::False,
            Ok(Result::MissingSomeContext) => CaveatResult::MissingContext,
            _ => {
                return Err(ApiError::invalid(format!(
                    "unknown caveat result {}",
                    info.result
                )))
            }
        },
        context: struct_to_json(info.context.as_ref()),
        missing: info
            .partial_caveat_info
            .as_ref()
            .map(|p| p.missing_required_context.clone())
            .unwrap_or_default(),
    })
}
