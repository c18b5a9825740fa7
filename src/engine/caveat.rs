//! Caveats on relationships: which parameters a caveat needs, and evaluating its expression.
//!
//! The stored context of a relationship wins over the request's context. Each value is
//! converted to CEL according to the declared parameter type (see `cel_value`). When every
//! parameter is known the expression is evaluated to `true` (has) or `false` (no). When some
//! are missing the expression is still evaluated with the known ones (a simple form of
//! SpiceDB's partial evaluation): a boolean result decides the answer, and a failure on an
//! unbound name makes the answer conditional on the missing parameters.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, OnceLock};

use cel::common::types::{self, CelDuration, CelInt};
use cel::common::value::CowVal;
use cel::extractors::This;
use cel::{Context as CelContext, Env, ExecutionError, Program, Value};

use super::cel_value::{self, Mismatch};
use super::{Context, EngineError, Permissionship};
use crate::schema::{CaveatDefinition, CaveatType, Schema};
use crate::tuple::ContextualizedCaveat;

/// Largest request context accepted, serialized as JSON.
pub(super) const MAX_REQUEST_CONTEXT_BYTES: usize = 4 * 1024;
/// Largest caveat context stored with a relationship, serialized as JSON.
pub(super) const MAX_STORED_CONTEXT_BYTES: usize = 25_000;
/// Compiled programs kept before the cache is emptied (schemas change rarely).
const MAX_CACHED_PROGRAMS: usize = 1024;
/// Stack for the thread that compiles an expression: the `cel` parser recurses deeply.
const COMPILER_STACK_BYTES: usize = 64 << 20;

/// The outcome of one relationship's caveat under the request's context.
pub(super) fn evaluate(
    schema: &Schema,
    caveat: &ContextualizedCaveat,
    request: &Context,
) -> Result<Permissionship, EngineError> {
    let definition = schema
        .caveat(&caveat.name)
        .ok_or_else(|| EngineError::UnknownCaveat(caveat.name.clone()))?;
    let mut missing = BTreeSet::new();
    let mut bound = Vec::with_capacity(definition.parameters.len());
    for (name, ty) in &definition.parameters {
        let Some(json) = caveat.context.get(name).or_else(|| request.get(name)) else {
            missing.insert(name.clone());
            continue;
        };
        bound.push((name.as_str(), typed_value(&caveat.name, name, ty, json)?));
    }
    let program = compiled(definition)?;
    let outcome = execute(&program, bound, &caveat.name)?;
    match outcome {
        Ok(Value::Bool(true)) => Ok(Permissionship::Has),
        Ok(Value::Bool(false)) => Ok(Permissionship::No),
        Ok(other) if missing.is_empty() => Err(EngineError::CaveatEvaluation {
            name: caveat.name.clone(),
            reason: format!("expression returned {other:?}, not a bool"),
        }),
        Err(error) if missing.is_empty() => Err(EngineError::CaveatEvaluation {
            name: caveat.name.clone(),
            reason: error.to_string(),
        }),
        // With parameters unbound, any failure to decide means the answer depends on them.
        Ok(_) | Err(_) => Ok(Permissionship::Conditional { missing }),
    }
}

/// Refuses a relationship's stored context that is over the size limit or holds a value of
/// the wrong type for one of the caveat's parameters.
pub(super) fn validate_stored_context(
    schema: &Schema,
    caveat: &ContextualizedCaveat,
) -> Result<(), EngineError> {
    let definition = schema
        .caveat(&caveat.name)
        .ok_or_else(|| EngineError::UnknownCaveat(caveat.name.clone()))?;
    if caveat.context.is_empty() {
        return Ok(());
    }
    let size = serde_json::to_vec(&caveat.context)
        .map(|v| v.len())
        .unwrap_or(usize::MAX);
    if size > MAX_STORED_CONTEXT_BYTES {
        return Err(EngineError::StoredContextTooLarge {
            size,
            limit: MAX_STORED_CONTEXT_BYTES,
        });
    }
    for (name, ty) in &definition.parameters {
        if let Some(json) = caveat.context.get(name) {
            typed_value(&caveat.name, name, ty, json)?;
        }
    }
    Ok(())
}

/// A context value converted to the parameter's declared type, or the type error.
fn typed_value(
    caveat: &str,
    parameter: &str,
    ty: &CaveatType,
    json: &serde_json::Value,
) -> Result<Value, EngineError> {
    cel_value::to_cel(ty, json).map_err(|Mismatch(reason)| EngineError::CaveatContextType {
        caveat: caveat.to_string(),
        parameter: parameter.to_string(),
        expected: cel_value::type_name(ty),
        reason,
    })
}

/// Refuses a request context whose JSON form is over the limit (once per request, at the
/// engine's entry points).
pub(super) fn check_request_size(request: &Context) -> Result<(), EngineError> {
    if request.is_empty() {
        return Ok(());
    }
    let size = serde_json::to_vec(request)
        .map(|v| v.len())
        .unwrap_or(usize::MAX);
    if size > MAX_REQUEST_CONTEXT_BYTES {
        return Err(EngineError::CaveatContextTooLarge {
            size,
            limit: MAX_REQUEST_CONTEXT_BYTES,
        });
    }
    Ok(())
}

type ProgramCache = Mutex<HashMap<(String, String), Arc<Program>>>;

/// The compiled program of a caveat, from the cache when the same name and expression text
/// were compiled before (keying by the text keeps it right across schema changes).
fn compiled(definition: &CaveatDefinition) -> Result<Arc<Program>, EngineError> {
    static CACHE: OnceLock<ProgramCache> = OnceLock::new();
    let cache = CACHE.get_or_init(|| Mutex::new(HashMap::new()));
    let key = (definition.name.clone(), definition.expression.clone());
    {
        let programs = cache
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(program) = programs.get(&key) {
            return Ok(Arc::clone(program));
        }
    }
    let program = Arc::new(compile(&definition.name, &definition.expression)?);
    let mut programs = cache
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if programs.len() >= MAX_CACHED_PROGRAMS {
        programs.clear();
    }
    programs.insert(key, Arc::clone(&program));
    Ok(program)
}

/// Compiles an expression on a thread with a large stack; panics inside `cel` become errors.
fn compile(name: &str, expression: &str) -> Result<Program, EngineError> {
    let text = expression.to_string();
    let failure = |reason: String| EngineError::CaveatEvaluation {
        name: name.to_string(),
        reason,
    };
    let handle = std::thread::Builder::new()
        .name("zanzi-cel-compile".to_string())
        .stack_size(COMPILER_STACK_BYTES)
        .spawn(move || Program::compile(&text).map_err(|e| e.to_string()))
        .map_err(|e| failure(format!("cannot start the compiler thread: {e}")))?;
    match handle.join() {
        Ok(Ok(program)) => Ok(program),
        Ok(Err(reason)) => Err(failure(format!("invalid expression: {reason}"))),
        Err(_) => Err(failure(
            "internal error while compiling the expression".to_string(),
        )),
    }
}

/// The root CEL context: the standard library (timestamps and durations included) plus
/// SpiceDB's extra functions (`in_cidr`, `isSubtreeOf`), built once and shared, so an
/// evaluation only binds its variables in a child scope.
fn root_context() -> Result<&'static CelContext<'static, 'static>, String> {
    static ROOT: OnceLock<Result<CelContext<'static, 'static>, String>> = OnceLock::new();
    ROOT.get_or_init(|| {
        let mut env = Env::stdlib();
        // Standard CEL conversions the crate's library lacks (the schema check allows them).
        env.add_overload(
            "int",
            "duration_to_int64",
            vec![types::DURATION_TYPE],
            duration_to_int,
        )
        .map_err(|e| e.to_string())?;
        env.add_overload(
            "duration",
            "int64_to_duration",
            vec![types::INT_TYPE],
            int_to_duration,
        )
        .map_err(|e| e.to_string())?;
        let mut context = CelContext::with_env(Arc::new(env));
        context
            .add_function(
                "in_cidr",
                |This(ip): This<Arc<String>>, cidr: Arc<String>| -> Result<Value, ExecutionError> {
                    cel_value::in_cidr(&ip, &cidr)
                        .map(Value::Bool)
                        .map_err(|e| ExecutionError::function_error("in_cidr", e))
                },
            )
            .map_err(|e| e.to_string())?;
        context
            .add_function(
                "isSubtreeOf",
                |This(sub): This<Value>, of: Value| -> Result<Value, ExecutionError> {
                    match (&sub, &of) {
                        (Value::Map(sub), Value::Map(of)) => {
                            Ok(Value::Bool(cel_value::is_subtree(sub, of)))
                        }
                        _ => Err(ExecutionError::function_error(
                            "isSubtreeOf",
                            "expects two maps",
                        )),
                    }
                },
            )
            .map_err(|e| e.to_string())?;
        Ok(context)
    })
    .as_ref()
    .map_err(Clone::clone)
}

/// `int(duration)`: the duration in nanoseconds.
fn duration_to_int<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
    args.first()
        .and_then(|arg| arg.downcast_ref::<CelDuration>())
        .and_then(|duration| duration.inner().num_nanoseconds())
        .map(|nanos| CowVal::owned(CelInt::from(nanos)))
        .ok_or_else(|| ExecutionError::function_error("int", "duration out of range"))
}

/// `duration(int)`: a duration of that many nanoseconds.
fn int_to_duration<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
    args.first()
        .and_then(|arg| arg.downcast_ref::<CelInt>())
        .map(|nanos| {
            CowVal::owned(CelDuration::from(chrono::Duration::nanoseconds(
                *nanos.inner(),
            )))
        })
        .ok_or_else(|| ExecutionError::function_error("duration", "expects an int"))
}

/// Runs `program` with `bound` variables. The outer error is a setup failure; the inner
/// result is the expression's own outcome.
fn execute(
    program: &Program,
    bound: Vec<(&str, Value)>,
    caveat: &str,
) -> Result<Result<Value, ExecutionError>, EngineError> {
    let root = root_context().map_err(|reason| EngineError::CaveatEvaluation {
        name: caveat.to_string(),
        reason: format!("cannot set up the evaluation: {reason}"),
    })?;
    let mut context = root.new_inner_scope();
    for (name, value) in bound {
        context.add_variable_from_value(name, value);
    }
    Ok(program.execute(&context))
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

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::schema::CaveatType;

    fn schema(text: &str) -> Schema {
        crate::schema::compile(text).unwrap()
    }

    fn context(value: serde_json::Value) -> Context {
        value.as_object().unwrap().clone()
    }

    fn caveat(name: &str, stored: serde_json::Value) -> ContextualizedCaveat {
        ContextualizedCaveat {
            name: name.to_string(),
            context: context(stored),
        }
    }

    fn run(
        schema_text: &str,
        name: &str,
        stored: serde_json::Value,
        request: serde_json::Value,
    ) -> Result<Permissionship, EngineError> {
        evaluate(
            &schema(schema_text),
            &caveat(name, stored),
            &context(request),
        )
    }

    fn conditional(names: &[&str]) -> Permissionship {
        Permissionship::conditional(names.iter().map(|n| n.to_string()))
    }

    const IP: &str = "caveat ip(user_ip ipaddress, cidr string) { user_ip.in_cidr(cidr) }";

    #[test]
    fn scalar_conversions() {
        use CaveatType::*;
        assert_eq!(cel_value::to_cel(&Int, &json!(42)), Ok(Value::Int(42)));
        assert_eq!(cel_value::to_cel(&Int, &json!(42.0)), Ok(Value::Int(42)));
        assert!(cel_value::to_cel(&Int, &json!(42.5)).is_err());
        assert!(cel_value::to_cel(&Int, &json!("42")).is_err());
        // SpiceDB declares `uint` parameters as CEL `int`.
        assert_eq!(cel_value::to_cel(&Uint, &json!(7)), Ok(Value::Int(7)));
        assert!(cel_value::to_cel(&Uint, &json!(-7)).is_err());
        assert!(cel_value::to_cel(&Uint, &json!(u64::MAX)).is_err());
        assert_eq!(cel_value::to_cel(&Double, &json!(1)), Ok(Value::Float(1.0)));
        assert_eq!(
            cel_value::to_cel(&Double, &json!(1.5)),
            Ok(Value::Float(1.5))
        );
        assert_eq!(
            cel_value::to_cel(&Bool, &json!(true)),
            Ok(Value::Bool(true))
        );
        assert!(cel_value::to_cel(&Bool, &json!(1)).is_err());
        assert_eq!(
            cel_value::to_cel(&String, &json!("hi")),
            Ok(Value::String(Arc::new("hi".to_string())))
        );
        // Bytes arrive base64-encoded (standard alphabet, padded), as in SpiceDB.
        assert_eq!(
            cel_value::to_cel(&Bytes, &json!("aGk=")),
            Ok(Value::Bytes(Arc::new(b"hi".to_vec())))
        );
        assert_eq!(
            cel_value::to_cel(&Bytes, &json!("")),
            Ok(Value::Bytes(Arc::new(Vec::new())))
        );
        assert!(cel_value::to_cel(&Bytes, &json!("hi")).is_err());
        assert!(cel_value::to_cel(&Bytes, &json!("aGk")).is_err());
        assert!(cel_value::to_cel(&Bytes, &json!("aG-k")).is_err());
        assert_eq!(
            cel_value::to_cel(&Duration, &json!("1h30m")),
            Ok(Value::Duration(chrono::Duration::minutes(90)))
        );
        let epoch_plus_one = chrono::DateTime::from_timestamp(1, 0)
            .unwrap()
            .fixed_offset();
        assert_eq!(
            cel_value::to_cel(&Timestamp, &json!("1970-01-01T00:00:01Z")),
            Ok(Value::Timestamp(epoch_plus_one))
        );
        // Other offsets are the same instant, held in UTC.
        assert_eq!(
            cel_value::to_cel(&Timestamp, &json!("1970-01-01T02:00:01+02:00")),
            Ok(Value::Timestamp(epoch_plus_one))
        );
        assert!(cel_value::to_cel(&Timestamp, &json!("0000-12-31T23:00:00Z")).is_err());
        assert!(cel_value::to_cel(&Timestamp, &json!("yesterday")).is_err());
        assert!(cel_value::to_cel(&IpAddress, &json!("10.1.2.3")).is_ok());
        assert!(cel_value::to_cel(&IpAddress, &json!("10.1.2")).is_err());
        assert_eq!(
            cel_value::to_cel(&IpAddress, &json!("2001:DB8:0::1")),
            Ok(Value::String(Arc::new("2001:db8::1".to_string())))
        );
        assert_eq!(cel_value::to_cel(&Any, &json!(null)), Ok(Value::Null));
        assert_eq!(cel_value::to_cel(&Any, &json!(3)), Ok(Value::Int(3)));
    }

    #[test]
    fn nested_conversions() {
        let list = CaveatType::List(Box::new(CaveatType::Int));
        assert_eq!(
            cel_value::to_cel(&list, &json!([1, 2])),
            Ok(Value::List(Arc::new(vec![Value::Int(1), Value::Int(2)])))
        );
        let error = cel_value::to_cel(&list, &json!([1, "x"])).unwrap_err();
        assert!(error.0.contains("element 1"), "{error:?}");
        let map = CaveatType::Map(Box::new(CaveatType::Bool));
        assert!(cel_value::to_cel(&map, &json!({"a": true})).is_ok());
        assert!(cel_value::to_cel(&map, &json!({"a": 1})).is_err());
        assert_eq!(cel_value::type_name(&map), "map<bool>");
    }

    #[test]
    fn go_durations() {
        use cel_value::parse_duration as d;
        assert_eq!(d("10s"), Ok(10_000_000_000));
        assert_eq!(d("1.5h"), Ok(5_400_000_000_000));
        assert_eq!(d("-300ms"), Ok(-300_000_000));
        assert_eq!(d("2h45m0.5s"), Ok(9_900_500_000_000));
        assert_eq!(d("1us"), Ok(1_000));
        assert_eq!(d("0"), Ok(0));
        assert!(d("").is_err());
        assert!(d("10").is_err());
        assert!(d("1d").is_err());
        assert!(d("s").is_err());
    }

    #[test]
    fn cidr_matching() {
        use cel_value::in_cidr;
        assert_eq!(in_cidr("10.1.2.3", "10.0.0.0/8"), Ok(true));
        assert_eq!(in_cidr("11.1.2.3", "10.0.0.0/8"), Ok(false));
        assert_eq!(in_cidr("192.168.1.7", "192.168.1.0/25"), Ok(true));
        assert_eq!(in_cidr("192.168.1.200", "192.168.1.0/25"), Ok(false));
        assert_eq!(in_cidr("1.2.3.4", "0.0.0.0/0"), Ok(true));
        assert_eq!(in_cidr("1.2.3.4", "1.2.3.4"), Ok(true));
        assert_eq!(in_cidr("2001:db8::1", "2001:db8::/32"), Ok(true));
        assert_eq!(in_cidr("2001:db9::1", "2001:db8::/32"), Ok(false));
        assert_eq!(in_cidr("::1", "::1/128"), Ok(true));
        assert_eq!(in_cidr("10.0.0.1", "::/0"), Ok(false));
        assert!(in_cidr("10.0.0.1", "10.0.0.0/33").is_err());
        assert!(in_cidr("nope", "10.0.0.0/8").is_err());
    }

    #[test]
    fn in_cidr_in_expressions() {
        let v4 = json!({"cidr": "10.0.0.0/8"});
        assert_eq!(
            run(IP, "ip", v4.clone(), json!({"user_ip": "10.9.8.7"})).unwrap(),
            Permissionship::Has
        );
        assert_eq!(
            run(IP, "ip", v4, json!({"user_ip": "192.168.0.1"})).unwrap(),
            Permissionship::No
        );
        let v6 = json!({"cidr": "fd00::/8"});
        assert_eq!(
            run(IP, "ip", v6, json!({"user_ip": "fd12::1"})).unwrap(),
            Permissionship::Has
        );
    }

    #[test]
    fn evaluates_typed_expressions() {
        let text = "caveat c(n int, limit uint, ratio double, tags list<string>, \
                    attrs map<int>, ttl duration, at timestamp, raw bytes, flag bool, extra any) {
            n < 10 && limit == 3 && limit + n == 6 && ratio > 0.5 && 'a' in tags &&
            attrs['k'] == 1 && ttl == duration('90m') && at > timestamp('2020-01-01T00:00:00Z') &&
            raw == b'xy' && flag && extra.size() == 2
        }";
        let request = json!({
            "n": 3, "limit": 3, "ratio": 0.75, "tags": ["a", "b"], "attrs": {"k": 1},
            "ttl": "1h30m", "at": "2024-05-01T12:00:00+02:00", "raw": "eHk=", "flag": true,
            "extra": [1, "two"],
        });
        assert_eq!(
            run(text, "c", json!({}), request.clone()).unwrap(),
            Permissionship::Has
        );
        let mut changed = request;
        changed["n"] = json!(11);
        assert_eq!(
            run(text, "c", json!({}), changed).unwrap(),
            Permissionship::No
        );
    }

    #[test]
    fn wrong_type_is_an_error() {
        let text = "caveat c(x int) { x == 1 }";
        let error = run(text, "c", json!({}), json!({"x": "abc"})).unwrap_err();
        assert!(matches!(error, EngineError::CaveatContextType { .. }));
        assert_eq!(
            error.to_string(),
            "parameter `x` of caveat `c` expects `int`, got `\"abc\"`"
        );
    }

    #[test]
    fn non_bool_result_is_refused_by_the_schema() {
        let error = crate::schema::compile("caveat c(x int) { x + 1 }").unwrap_err();
        assert!(
            error.to_string().contains("must result in a boolean value"),
            "{error}"
        );
    }

    #[test]
    fn timestamps_and_durations_are_cel_values() {
        let text = "caveat c(now timestamp, expires_at timestamp, grace duration) {
            now < expires_at + grace && expires_at - now > duration('1h') &&
            now.getHours() == 10 && now.getMinutes() == 30 && now.getDayOfWeek() == 3 &&
            now.getFullYear() == 2024 && now.getMonth() == 4 && now.getDayOfMonth() == 0 &&
            now.getDate() == 1 && now.getDayOfYear() == 121 && now.getSeconds() == 5 &&
            now.getMilliseconds() == 250 && now.getHours('Europe/Paris') == 12 &&
            now.getHours('-05:00') == 5 && grace.getMinutes() == 90 && int(grace) == 5400000000000 &&
            duration(60000000000) == duration('1m')
        }";
        let stored = json!({"expires_at": "2024-05-01T14:00:00+02:00", "grace": "1h30m"});
        // 10:30:05.250 UTC on Wednesday 1 May 2024 (given with an offset: accessors read UTC).
        let now = json!({"now": "2024-05-01T12:30:05.25+02:00"});
        assert_eq!(
            run(text, "c", stored.clone(), now).unwrap(),
            Permissionship::Has
        );
        let later = json!({"now": "2024-05-01T13:30:05.25Z"});
        assert_eq!(run(text, "c", stored, later).unwrap(), Permissionship::No);
    }

    /// Every kind of expression the schema's type check accepts also evaluates: the checker's
    /// overloads and the runtime's agree.
    #[test]
    fn expressions_the_schema_accepts_evaluate() {
        let params = "i int, u uint, d double, s string, b bool, by bytes, dur duration, \
                      ts timestamp, ip ipaddress, a any, li list<int>, ls list<string>, \
                      mi map<int>, ma map<any>";
        let values = json!({
            "i": 3, "u": 4, "d": 2.5, "s": "hello", "b": true, "by": "aGk=", "dur": "90m",
            "ts": "2024-05-01T10:30:00Z", "ip": "10.1.2.3", "a": {"k": [1, 2]},
            "li": [1, 2, 3], "ls": ["a", "b"], "mi": {"k": 1}, "ma": {"x": {"y": 1}},
        });
        let uses_all = "[i, u].size() + [d].size() + [s].size() + [b].size() + [by].size() \
                        + [dur].size() + [ts].size() + [ip].size() + [a].size() + [li].size() \
                        + [ls].size() + [mi].size() + [ma].size() == 14";
        let expressions = [
            "i == 3 && i != 4 && u == 4 && u + i == 7",
            "d > 2.0 && d < 3.0 && d < i && 1u < d && i <= 3u && 4u >= i && i >= d",
            "-i == -3 && i * 2 == 6 && i / 2 == 1 && i % 2 == 1 && -d == -2.5 && d * 2.0 == 5.0",
            "5u - 1u == 4u && 6u / 2u == 3u && 7u % 4u == 3u && 2u * 2u == 4u && 1u + 1u == 2u",
            "s + '!' == 'hello!' && s.size() == 5 && size(s) == 5 && s.contains('ell') \
             && s.startsWith('he') && s.endsWith('lo') && s.matches('^h.*o$') \
             && matches(s, 'l+') && s < 'world' && s >= 'hello'",
            "by + b'!' == b'hi!' && size(by) == 2 && by.size() == 2 && string(by) == 'hi' \
             && bytes('hi') == by && by < b'hj'",
            "b && !false && (b || false) && (b ? 1 : 2) == 1 && b != false && false < b",
            "ts + dur == timestamp('2024-05-01T12:00:00Z') && dur + ts > ts && ts - dur < ts \
             && ts - timestamp('2024-05-01T10:00:00Z') == duration('30m')",
            "dur > duration('1h') && dur - duration('30m') == duration('1h') \
             && dur + dur == duration('3h') && duration(dur) == dur && timestamp(ts) == ts",
            "int(ts) == 1714559400 && timestamp(1714559400) == ts && int(dur) == 5400000000000 \
             && duration(5400000000000) == dur",
            "string(ts) == '2024-05-01T10:30:00Z' && string(dur) == '5400s'",
            "int('42') == 42 && int(2.9) == 2 && int(u) == 4 && int(i) == 3 && uint(i) == 3u \
             && uint('7') == 7u && uint(2.5) == 2u && uint(1u) == 1u && double(i) == 3.0 \
             && double('1.5') == 1.5 && double(2u) == 2.0 && double(d) == d",
            "string(i) == '3' && string(true) == 'true' && string(2.5) == '2.5' \
             && string(3u) == '3' && string(s) == s && bool('true') && !bool('false') \
             && bool(b) && dyn(i) == 3",
            "type(i) == int && type(s) == string && type(li) == list && type(mi) == map",
            "1 in li && 'a' in ls && 'k' in mi && !(5 in li) && li[0] == 1 && mi['k'] == 1 \
             && mi.k == 1 && has(mi.k) && !has(mi.z)",
            "li + [4] == [1, 2, 3, 4] && size(li) == 3 && li.size() == 3 && size(mi) == 1 \
             && mi.size() == 1 && [1, 'a'][1] == 'a' && {'a': 1}['a'] == 1 && [] == []",
            "li.all(x, x > 0) && li.exists(x, x == 2) && li.exists_one(x, x == 3) \
             && li.map(x, x * 2) == [2, 4, 6] && li.filter(x, x > 1) == [2, 3] \
             && li.map(x, x > 1, x * 10) == [20, 30]",
            "mi.all(k, mi[k] == 1) && ls.exists(x, x.startsWith('b')) && !li.exists(x, x > 3)",
            "a.k[1] == 2 && a.k.size() == 2 && size(a) == 1 && ma.x.y == 1 \
             && ma['x']['y'] == 1 && has(ma.x) && ma.isSubtreeOf(ma) && a.k[0] + 1 == 2",
            "ip.in_cidr('10.0.0.0/8') && !ip.in_cidr('192.168.0.0/16') && ip == ip",
            "null == null && dyn(a) != null",
        ];
        for expression in expressions {
            let text = format!("caveat c({params}) {{ ({expression}) && {uses_all} }}");
            let compiled = crate::schema::compile(&text);
            assert!(compiled.is_ok(), "{expression}: {}", compiled.unwrap_err());
            assert_eq!(
                run(&text, "c", json!({}), values.clone())
                    .unwrap_or_else(|e| panic!("{expression}: {e}")),
                Permissionship::Has,
                "{expression}"
            );
        }
    }

    #[test]
    fn bytes_arrive_base64_encoded() {
        let text = "caveat c(token bytes) { token == b'\\x00\\xffhi' && size(token) == 4 }";
        assert_eq!(
            run(text, "c", json!({}), json!({"token": "AP9oaQ=="})).unwrap(),
            Permissionship::Has
        );
        let error = run(text, "c", json!({}), json!({"token": "not base64"})).unwrap_err();
        assert!(
            matches!(error, EngineError::CaveatContextType { .. }),
            "{error}"
        );
    }

    #[test]
    fn ip_addresses_compare_by_address() {
        let text = "caveat c(a ipaddress, b ipaddress) { a == b }";
        assert_eq!(
            run(text, "c", json!({"a": "::1"}), json!({"b": "0:0::0:1"})).unwrap(),
            Permissionship::Has
        );
    }

    #[test]
    fn is_subtree_of() {
        let text = "caveat c(sub map<any>, of map<any>) { sub.isSubtreeOf(of) }";
        let of = json!({"of": {"a": 1, "b": {"c": "x", "d": true}}});
        assert_eq!(
            run(text, "c", json!({"sub": {"b": {"c": "x"}}}), of.clone()).unwrap(),
            Permissionship::Has
        );
        assert_eq!(
            run(text, "c", json!({"sub": {"b": {"c": "y"}}}), of.clone()).unwrap(),
            Permissionship::No
        );
        assert_eq!(
            run(text, "c", json!({"sub": {"z": 1}}), of).unwrap(),
            Permissionship::No
        );
    }

    #[test]
    fn runtime_error_is_an_error() {
        let text = "caveat c(x int, m map<int>) { m['missing'] == x }";
        let error = run(text, "c", json!({}), json!({"x": 1, "m": {}})).unwrap_err();
        assert!(
            matches!(error, EngineError::CaveatEvaluation { .. }),
            "{error}"
        );
    }

    #[test]
    fn stored_context_wins_over_request() {
        let text = "caveat c(x int) { x == 1 }";
        assert_eq!(
            run(text, "c", json!({"x": 1}), json!({"x": 2})).unwrap(),
            Permissionship::Has
        );
        assert_eq!(
            run(text, "c", json!({"x": 2}), json!({"x": 1})).unwrap(),
            Permissionship::No
        );
    }

    #[test]
    fn missing_parameters_are_conditional() {
        let text = "caveat c(a int, b int) { a == b }";
        assert_eq!(
            run(text, "c", json!({}), json!({})).unwrap(),
            conditional(&["a", "b"])
        );
        assert_eq!(
            run(text, "c", json!({"a": 1}), json!({})).unwrap(),
            conditional(&["b"])
        );
    }

    #[test]
    fn partial_evaluation_decides_when_it_can() {
        let text = "caveat c(a bool, b bool) { a || b }";
        assert_eq!(
            run(text, "c", json!({}), json!({"a": true})).unwrap(),
            Permissionship::Has
        );
        assert_eq!(
            run(text, "c", json!({}), json!({"b": true})).unwrap(),
            Permissionship::Has
        );
        assert_eq!(
            run(text, "c", json!({}), json!({"a": false})).unwrap(),
            conditional(&["b"])
        );
        let and = "caveat c(a bool, b bool) { a && b }";
        assert_eq!(
            run(and, "c", json!({}), json!({"b": false})).unwrap(),
            Permissionship::No
        );
        assert_eq!(
            run(and, "c", json!({}), json!({"a": true})).unwrap(),
            conditional(&["b"])
        );
    }

    #[test]
    fn request_context_size_is_limited() {
        let big = "y".repeat(MAX_REQUEST_CONTEXT_BYTES);
        let request = json!({ "x": big }).as_object().unwrap().clone();
        let error = check_request_size(&request).unwrap_err();
        assert!(matches!(error, EngineError::CaveatContextTooLarge { .. }));
    }

    #[test]
    fn programs_follow_schema_changes() {
        let first = "caveat c(x int) { x == 1 }";
        let second = "caveat c(x int) { x == 2 }";
        let request = json!({"x": 2});
        assert_eq!(
            run(first, "c", json!({}), request.clone()).unwrap(),
            Permissionship::No
        );
        assert_eq!(
            run(second, "c", json!({}), request).unwrap(),
            Permissionship::Has
        );
    }
}
