//! Caveats on relationships: which parameters a caveat needs and whether they are present.
//!
//! The stored context of a relationship wins over the request's context. When a caveat's
//! parameters are all known the expression is evaluated; when some are missing, the answer is
//! conditional on them.

use std::collections::BTreeSet;

use super::{Context, EngineError, Permissionship};
use crate::schema::Schema;
use crate::tuple::ContextualizedCaveat;

/// The outcome of one relationship's caveat under the request's context.
pub(super) fn evaluate(
    schema: &Schema,
    caveat: &ContextualizedCaveat,
    request: &Context,
) -> Result<Permissionship, EngineError> {
    let definition = schema
        .caveat(&caveat.name)
        .ok_or_else(|| EngineError::UnknownCaveat(caveat.name.clone()))?;
    let missing: BTreeSet<String> = definition
        .parameters
        .iter()
        .map(|(name, _)| name)
        .filter(|name| !caveat.context.contains_key(*name) && !request.contains_key(*name))
        .cloned()
        .collect();
    if !missing.is_empty() {
        return Ok(Permissionship::Conditional { missing });
    }
    Err(EngineError::CaveatEvaluation {
        name: caveat.name.clone(),
        reason: "expression evaluation is not available in this build".to_string(),
    })
}

/// Applies the caveat (if any) of a relationship to the answer reached through it.
pub(super) fn gate(
    schema: &Schema,
    caveat: Option<&ContextualizedCaveat>,
    request: &Context,
    through: Permissionship,
) -> Result<Permissionship, EngineError> {
    match caveat {
        None => Ok(through),
        Some(_) if through.is_no() => Ok(Permissionship::No),
        Some(caveat) => Ok(evaluate(schema, caveat, request)?.intersect(through)),
    }
}
