//! Check traces: what a check's walk visited and why it answered as it did.
//!
//! A traced check records one [`TraceStep`] per (resource, relation or permission) the walk
//! resolves, with the steps it needed beneath it: the step's result, how the member combines
//! its parts (the [`Operation`], from the schema), where the answer came from (walked, the
//! check cache, the nested-group index, or a cycle cut short), the caveat evaluated on the
//! relationships it read, the earliest expiration among them, and the time spent. The shape
//! is SpiceDB's `CheckDebugTrace`, so the API layer can send it as SpiceDB does.
//!
//! Tracing is off unless a caller asks for it: the walk then carries no [`Recorder`] and
//! every hook is one branch on an empty `Option`.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use super::{caveat, Context, EngineError, Permissionship};
use crate::schema::{ArrowMode, Member, Rewrite, Schema};
use crate::tuple::{ContextualizedCaveat, ObjectRef, Relationship, SubjectRef};

/// The trace of one check: the subject asked about, the schema in force, and the root step.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckTrace {
    /// The subject of the check (the same for every step).
    pub subject: SubjectRef,
    /// The schema text the check used.
    pub schema_used: String,
    /// The step for the requested resource and permission.
    pub root: TraceStep,
}

/// One resolved (resource, relation or permission) of a check's walk.
#[derive(Debug, Clone, PartialEq)]
pub struct TraceStep {
    /// The resource.
    pub resource: ObjectRef,
    /// The relation or permission resolved on it.
    pub member: String,
    /// Whether `member` is a relation or a permission.
    pub kind: MemberKind,
    /// How the member combines its parts; `None` when the schema is not known (a trace read
    /// back from a peer whose schema did not compile here).
    pub operation: Option<Operation>,
    /// The answer of this step.
    pub result: Permissionship,
    /// Where the answer came from.
    pub source: StepSource,
    /// The caveat evaluated on a relationship read at this step, if any.
    pub caveat: Option<CaveatTrace>,
    /// The earliest expiration among the relationships this step (and the steps beneath it)
    /// read.
    pub expires_at: Option<DateTime<Utc>>,
    /// Time spent on this step, steps beneath included.
    pub duration: Duration,
    /// The steps this one needed, in the order the walk took them.
    pub steps: Vec<TraceStep>,
}

/// Whether a step resolved a relation or a permission.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberKind {
    /// A relation: stored relationships are read.
    Relation,
    /// A permission: its rewrite is evaluated.
    Permission,
}

/// How a step's member is computed, after its schema definition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// A relation: direct subjects, wildcards and subject sets read from the store.
    Relation,
    /// `a + b`: any part grants.
    Union,
    /// `a & b`: every part must grant.
    Intersection,
    /// `a - b`: the first part, unless the second grants.
    Exclusion,
    /// `rel->perm` or `rel.any(perm)`: any object in the relation grants.
    Arrow,
    /// `rel.all(perm)`: every object in the relation must grant.
    AllArrow,
    /// `permission p = q`: another member of the same object.
    Computed,
    /// `nil`: nothing grants.
    Nil,
    /// `self`: the object itself is the subject.
    SelfRef,
}

impl Operation {
    /// The operation's name as the explain tree prints it.
    pub fn name(self) -> &'static str {
        match self {
            Operation::Relation => "relation",
            Operation::Union => "union",
            Operation::Intersection => "intersection",
            Operation::Exclusion => "exclusion",
            Operation::Arrow => "arrow",
            Operation::AllArrow => "all",
            Operation::Computed => "computed",
            Operation::Nil => "nil",
            Operation::SelfRef => "self",
        }
    }

    /// The operation of `object_type#member` in `schema`, with whether it is a relation or a
    /// permission; `None` for a member the schema does not define.
    pub fn of(schema: &Schema, object_type: &str, member: &str) -> Option<(MemberKind, Self)> {
        match schema.definition(object_type)?.member(member)? {
            Member::Relation(_) => Some((MemberKind::Relation, Operation::Relation)),
            Member::Permission(permission) => Some((
                MemberKind::Permission,
                match &permission.rewrite {
                    Rewrite::Union(_) => Operation::Union,
                    Rewrite::Intersection(_) => Operation::Intersection,
                    Rewrite::Exclusion(..) => Operation::Exclusion,
                    Rewrite::Computed(_) => Operation::Computed,
                    Rewrite::Arrow {
                        mode: ArrowMode::Any,
                        ..
                    } => Operation::Arrow,
                    Rewrite::Arrow {
                        mode: ArrowMode::All,
                        ..
                    } => Operation::AllArrow,
                    Rewrite::Nil => Operation::Nil,
                    Rewrite::SelfRef => Operation::SelfRef,
                },
            )),
        }
    }
}

/// Where a step's answer came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StepSource {
    /// The walk computed it (the steps beneath say how).
    Walk,
    /// The check cache held it.
    Cache,
    /// The nested-group index answered it with one probe.
    GroupIndex,
    /// The pair was already on the walk's path: a cycle, which contributes "no".
    Cycle,
}

/// A caveat evaluated at a step.
#[derive(Debug, Clone, PartialEq)]
pub struct CaveatTrace {
    /// The caveat's name.
    pub name: String,
    /// Its CEL expression.
    pub expression: String,
    /// What it evaluated to.
    pub result: CaveatResult,
    /// The parameter values it was evaluated with (the relationship's own context wins over
    /// the request's).
    pub context: Map<String, Value>,
    /// The parameters nobody supplied (for [`CaveatResult::MissingContext`]).
    pub missing: Vec<String>,
}

/// The outcome of a caveat.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaveatResult {
    /// The expression held.
    True,
    /// The expression did not hold.
    False,
    /// Parameters were missing and the expression could not be decided without them.
    MissingContext,
}

/// Records the steps of one traced check as the walk enters and leaves them.
#[derive(Debug, Default)]
pub(crate) struct Recorder {
    /// The steps being resolved, outermost first.
    open: Vec<Frame>,
    /// The root step, once it is left.
    root: Option<TraceStep>,
}

#[derive(Debug)]
struct Frame {
    step: TraceStep,
    started: Instant,
    /// Caveats of the relationships read at this step, evaluated when the step is left.
    caveats: Vec<ContextualizedCaveat>,
}

impl Recorder {
    /// The walk starts resolving `resource#member`.
    pub(crate) fn enter(&mut self, schema: &Schema, resource: &ObjectRef, member: &str) {
        let (kind, operation) = match Operation::of(schema, &resource.object_type, member) {
            Some((kind, operation)) => (kind, Some(operation)),
            None => (MemberKind::Relation, None),
        };
        self.open.push(Frame {
            step: TraceStep {
                resource: resource.clone(),
                member: member.to_string(),
                kind,
                operation,
                result: Permissionship::No,
                source: StepSource::Walk,
                caveat: None,
                expires_at: None,
                duration: Duration::ZERO,
                steps: Vec::new(),
            },
            started: Instant::now(),
            caveats: Vec::new(),
        });
    }

    /// The answer of the step being resolved comes from `source`.
    pub(crate) fn note(&mut self, source: StepSource) {
        if let Some(frame) = self.open.last_mut() {
            frame.step.source = source;
        }
    }

    /// The step being resolved read `rel`.
    pub(crate) fn read(&mut self, rel: &Relationship) {
        let Some(frame) = self.open.last_mut() else {
            return;
        };
        frame.step.expires_at = earliest(frame.step.expires_at, rel.expiration);
        if let Some(caveat) = &rel.caveat {
            frame.caveats.push(caveat.clone());
        }
    }

    /// The walk finished the innermost open step with `result`.
    pub(crate) fn leave(
        &mut self,
        schema: &Schema,
        context: &Context,
        result: &Result<Permissionship, EngineError>,
    ) {
        let Some(frame) = self.open.pop() else {
            return;
        };
        let Ok(answer) = result else {
            return; // the whole check fails; nothing of this step is reported
        };
        let mut step = frame.step;
        step.result = answer.clone();
        step.duration = frame.started.elapsed();
        step.caveat = pick_caveat(schema, context, &frame.caveats, answer);
        for inner in &step.steps {
            step.expires_at = earliest(step.expires_at, inner.expires_at);
        }
        match self.open.last_mut() {
            Some(parent) => parent.step.steps.push(step),
            None => self.root = Some(step),
        }
    }

    /// The trace of the check of `resource#member` that answered `answer` (a root step with
    /// nothing beneath it if the walk recorded none).
    pub(crate) fn finish(
        self,
        schema: &Schema,
        resource: &ObjectRef,
        member: &str,
        subject: &SubjectRef,
        answer: &Permissionship,
    ) -> CheckTrace {
        let root = self.root.unwrap_or_else(|| {
            let mut bare = Recorder::default();
            bare.enter(schema, resource, member);
            let mut step = bare.open.pop().map(|frame| frame.step);
            if let Some(step) = &mut step {
                step.result = answer.clone();
            }
            step.unwrap_or_else(|| TraceStep {
                resource: resource.clone(),
                member: member.to_string(),
                kind: MemberKind::Relation,
                operation: None,
                result: answer.clone(),
                source: StepSource::Walk,
                caveat: None,
                expires_at: None,
                duration: Duration::ZERO,
                steps: Vec::new(),
            })
        });
        CheckTrace {
            subject: subject.clone(),
            schema_used: schema.source.clone(),
            root,
        }
    }
}

fn earliest(a: Option<DateTime<Utc>>, b: Option<DateTime<Utc>>) -> Option<DateTime<Utc>> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// The caveat to report for a step: of those evaluated, the first whose outcome agrees with
/// the step's answer (true for a yes, missing context for a conditional, false for a no),
/// else the first.
fn pick_caveat(
    schema: &Schema,
    context: &Context,
    caveats: &[ContextualizedCaveat],
    answer: &Permissionship,
) -> Option<CaveatTrace> {
    let evaluated: Vec<CaveatTrace> = caveats
        .iter()
        .filter_map(|c| evaluate(schema, context, c))
        .collect();
    let wanted = match answer {
        Permissionship::Has => CaveatResult::True,
        Permissionship::No => CaveatResult::False,
        Permissionship::Conditional { .. } => CaveatResult::MissingContext,
    };
    let position = evaluated.iter().position(|c| c.result == wanted);
    evaluated.into_iter().nth(position.unwrap_or(0))
}

/// One caveat evaluated as the walk evaluated it (an evaluation error is left out: the check
/// failed with it).
fn evaluate(
    schema: &Schema,
    request: &Context,
    caveat: &ContextualizedCaveat,
) -> Option<CaveatTrace> {
    let definition = schema.caveat(&caveat.name)?;
    let outcome = caveat::evaluate(schema, caveat, request).ok()?;
    let mut context = Map::new();
    for (name, _) in &definition.parameters {
        if let Some(value) = caveat.context.get(name).or_else(|| request.get(name)) {
            context.insert(name.clone(), value.clone());
        }
    }
    let (result, missing) = match outcome {
        Permissionship::Has => (CaveatResult::True, BTreeSet::new()),
        Permissionship::No => (CaveatResult::False, BTreeSet::new()),
        Permissionship::Conditional { missing } => (CaveatResult::MissingContext, missing),
    };
    Some(CaveatTrace {
        name: caveat.name.clone(),
        expression: definition.expression.trim().to_string(),
        result,
        context,
        missing: missing.into_iter().collect(),
    })
}
