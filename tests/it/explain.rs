//! Check traces: what the walk records (operations, cache and group-index answers, cycles,
//! caveats), `zanzi check --explain` printing the exact tree for a fixed world, and the same
//! steps coming back over HTTP (SpiceDB's `debugTrace` JSON) and gRPC (`DebugInformation`).

use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use serde_json::{json, Value};
use zanzi::api::grpc::trace as grpc_trace;
use zanzi::api::trace::{self, WireDebugInformation};
use zanzi::api::wire::WireRelationship;
use zanzi::engine::{
    CaveatResult, CheckTrace, Context, Engine, EngineConfig, Operation, Permissionship, StepSource,
};
use zanzi::explain::{self, Style};
use zanzi::proto::v1;
use zanzi::store::{RocksStore, StoreOptions};
use zanzi::tuple::Relationship;

use crate::grpc::{object, subject, Clients};
use crate::server_support::TestServer;
use crate::support::engine_with_config;

const SCHEMA: &str = "caveat weekday(day string) {
    day != \"sunday\"
}

definition user {}

definition group {
    relation member: user | group#member
}

definition folder {
    relation viewer: user | group#member
}

definition doc {
    relation parent: folder
    relation owner: user
    relation banned: user
    relation viewer: user with weekday
    permission edit = owner
    permission view = viewer + edit + parent->viewer - banned
}";

const WORLD: &[&str] = &[
    "doc:plan#parent@folder:q3",
    "doc:plan#viewer@user:dee[weekday]",
    "doc:plan#banned@user:eve",
    "folder:q3#viewer@group:eng#member",
    "group:eng#member@group:core#member",
    "group:core#member@user:ann",
    "group:core#member@user:eve",
];

/// Ann sees the plan through the folder her group can view.
const ANN_TREE: &[&str] = &[
    "✓ doc:plan view [exclusion]",
    "├── ⨉ doc:plan viewer",
    "├── ⨉ doc:plan edit [computed]",
    "│   └── ⨉ doc:plan owner",
    "├── ✓ folder:q3 viewer",
    "│   └── ✓ group:eng member (group index)",
    "│       └── user:ann",
    "└── ⨉ doc:plan banned",
];

/// Eve could, but she is banned.
const EVE_TREE: &[&str] = &[
    "⨉ doc:plan view [exclusion]",
    "├── ⨉ doc:plan viewer",
    "├── ⨉ doc:plan edit [computed]",
    "│   └── ⨉ doc:plan owner",
    "├── ✓ folder:q3 viewer",
    "│   └── ✓ group:eng member (group index)",
    "│       └── user:eve",
    "└── ✓ doc:plan banned",
    "    └── user:eve",
];

/// Dee is a viewer on weekdays, and nobody said which day it is.
const DEE_TREE: &[&str] = &[
    "? doc:plan view [exclusion]",
    "├── ? doc:plan viewer",
    "│   └── ? day != \"sunday\" weekday",
    "│       └── missing context: day",
    "├── ⨉ doc:plan edit [computed]",
    "│   └── ⨉ doc:plan owner",
    "├── ⨉ folder:q3 viewer",
    "│   └── ⨉ group:eng member (group index)",
    "└── ⨉ doc:plan banned",
];

/// On a Monday she is.
const DEE_MONDAY_TREE: &[&str] = &[
    "✓ doc:plan view [exclusion]",
    "├── ✓ doc:plan viewer",
    "│   ├── ✓ day != \"sunday\" weekday",
    "│   │   └── {\"day\":\"monday\"}",
    "│   └── user:dee",
    "└── ⨉ doc:plan banned",
];

/// The tree's lines without the time each step took.
fn without_timings(text: &str) -> Vec<String> {
    text.lines()
        .map(|line| match line.rfind(" (") {
            Some(at) if line.ends_with("s)") => line[..at].to_string(),
            _ => line.to_string(),
        })
        .collect()
}

fn plain(trace: &CheckTrace) -> Vec<String> {
    explain::render(
        trace,
        Style {
            colour: false,
            timings: false,
        },
    )
    .lines()
    .map(str::to_string)
    .collect()
}

fn relationships() -> Vec<Relationship> {
    WORLD
        .iter()
        .map(|r| Relationship::parse(r).unwrap())
        .collect()
}

/// A relationship write touching the world (caveats included).
fn world_write() -> Value {
    let updates: Vec<Value> = relationships()
        .iter()
        .map(|r| json!({"operation": "OPERATION_TOUCH", "relationship": WireRelationship::from_domain(r)}))
        .collect();
    json!({ "updates": updates })
}

/// The fixed world written into `data_dir` as `zanzi` (without `--endpoint`) opens it.
fn write_world(data_dir: &Path) {
    let store = RocksStore::open(&data_dir.join("store"), StoreOptions::default()).unwrap();
    let engine = Engine::new(Arc::new(store), EngineConfig::default()).unwrap();
    engine.write_schema(SCHEMA).unwrap();
    let updates: Vec<_> = relationships()
        .into_iter()
        .map(|relationship| zanzi::transaction::Update {
            op: zanzi::transaction::UpdateOp::Touch,
            relationship,
        })
        .collect();
    engine.write_relationships(&updates, &[]).unwrap();
}

fn zanzi(args: &[&str]) -> (i32, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_zanzi"))
        .args(args)
        .env_remove("ZANZI_DATA_DIR")
        .env_remove("ZANZI_ENDPOINT")
        .env_remove("NO_COLOR")
        .output()
        .unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// `zanzi check --explain` output split into the tree and the answer line.
fn explained(args: &[&str]) -> (i32, Vec<String>, String) {
    let (code, stdout, stderr) = zanzi(args);
    let mut lines = without_timings(&stdout);
    let answer = lines.pop().unwrap_or_else(|| panic!("no output: {stderr}"));
    (code, lines, answer)
}

#[test]
fn cli_explain_prints_the_exact_tree_of_a_fixed_world() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    write_world(&data);
    let data = data.to_str().unwrap();
    for (check, context, tree, answer, code) in [
        ("doc:plan#view@user:ann", None, ANN_TREE, "true", 0),
        ("doc:plan#view@user:eve", None, EVE_TREE, "false", 1),
        (
            "doc:plan#view@user:dee",
            None,
            DEE_TREE,
            "caveated (missing day)",
            2,
        ),
        (
            "doc:plan#view@user:dee",
            Some(r#"{"day":"monday"}"#),
            DEE_MONDAY_TREE,
            "true",
            0,
        ),
    ] {
        let mut args = vec!["check", "--explain", "--data-dir", data, check];
        if let Some(context) = context {
            args.extend(["--context", context]);
        }
        let (status, lines, printed) = explained(&args);
        assert_eq!(lines, tree, "{check} {context:?}");
        assert_eq!((printed.as_str(), status), (answer, code), "{check}");
    }
    // Piped output has no colours, and every step line carries its time.
    let (_, stdout, _) = zanzi(&[
        "check",
        "--explain",
        "--data-dir",
        data,
        "doc:plan#view@user:ann",
    ]);
    assert!(
        !stdout.contains('\x1b'),
        "colours in piped output: {stdout:?}"
    );
    let timed = stdout
        .lines()
        .filter(|l| {
            l.contains(" doc:plan ") || l.contains(" folder:q3 ") || l.contains(" group:eng ")
        })
        .filter(|l| l.ends_with("s)"))
        .count();
    assert_eq!(timed, 7, "{stdout}");
    // Without --explain, only the answer.
    let (code, stdout, _) = zanzi(&["check", "--data-dir", data, "doc:plan#view@user:ann"]);
    assert_eq!((code, stdout.as_str()), (0, "true\n"));
}

#[test]
fn colours_mark_the_granting_steps_on_a_terminal() {
    let (engine, _dir) = engine_with_config(SCHEMA, WORLD, EngineConfig::default());
    let rel = Relationship::parse("doc:plan#view@user:eve").unwrap();
    let traced = engine
        .check_traced(&rel.resource, &rel.relation, &rel.subject, &Context::new())
        .unwrap();
    let coloured = explain::render(
        &traced.trace,
        Style {
            colour: true,
            timings: false,
        },
    );
    let lines: Vec<&str> = coloured.lines().collect();
    // A step that has the permission: green mark, name in its kind's colour.
    assert_eq!(
        lines[4],
        "├── \x1b[32m✓\x1b[0m folder:q3 \x1b[38;5;166mviewer\x1b[0m"
    );
    // One that does not: red mark, faint names.
    assert_eq!(
        lines[0],
        "\x1b[31m⨉\x1b[0m \x1b[90mdoc:plan\x1b[0m \x1b[90mview\x1b[0m \x1b[90m[exclusion]\x1b[0m"
    );
    // With the colours taken out, the plain tree.
    let stripped: String = {
        let mut out = String::new();
        let mut chars = coloured.chars();
        while let Some(c) = chars.next() {
            if c == '\x1b' {
                for c in chars.by_ref() {
                    if c == 'm' {
                        break;
                    }
                }
            } else {
                out.push(c);
            }
        }
        out
    };
    assert_eq!(stripped.lines().collect::<Vec<_>>(), EVE_TREE);
}

#[test]
fn http_and_grpc_traces_carry_the_cli_tree() {
    // No check cache: the same check is asked three times and must walk every time.
    let server = TestServer::start_with(|config| config.engine.cache_bytes = 0);
    server.ok("/v1/schema/write", &json!({ "schema": SCHEMA }));
    server.ok("/v1/relationships/write", &world_write());
    let dir = tempfile::tempdir().unwrap();
    let local = dir.path().join("data");
    write_world(&local);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let mut clients = runtime.block_on(Clients::connect(&server, &server.key));
    for (check, tree) in [
        ("doc:plan#view@user:ann", ANN_TREE),
        ("doc:plan#view@user:eve", EVE_TREE),
        ("doc:plan#view@user:dee", DEE_TREE),
    ] {
        // The CLI on the local folder and the CLI against the server (HTTP) print one tree.
        let (_, from_folder, _) = explained(&[
            "check",
            "--explain",
            "--data-dir",
            local.to_str().unwrap(),
            check,
        ]);
        let (_, over_http, _) = explained(&[
            "check",
            "--explain",
            "--endpoint",
            &server.url(""),
            "--key",
            &server.key,
            check,
        ]);
        assert_eq!(from_folder, tree, "{check}");
        assert_eq!(over_http, tree, "{check} over HTTP");

        // gRPC's DebugInformation reads back into the same steps.
        let rel = Relationship::parse(check).unwrap();
        let response = runtime
            .block_on(
                clients
                    .permissions
                    .check_permission(v1::CheckPermissionRequest {
                        consistency: None,
                        resource: object(&rel.resource.to_string()),
                        permission: rel.relation.clone(),
                        subject: subject(&rel.subject.to_string()),
                        context: None,
                        with_tracing: true,
                    }),
            )
            .unwrap()
            .into_inner();
        let info = response
            .debug_trace
            .expect("a traced check returns its trace");
        assert_eq!(info.schema_used, SCHEMA);
        let over_grpc = grpc_trace::from_proto(&info).unwrap();
        assert_eq!(plain(&over_grpc), tree, "{check} over gRPC");

        // Without tracing, no trace.
        let response = runtime
            .block_on(
                clients
                    .permissions
                    .check_permission(v1::CheckPermissionRequest {
                        consistency: None,
                        resource: object(&rel.resource.to_string()),
                        permission: rel.relation.clone(),
                        subject: subject(&rel.subject.to_string()),
                        context: None,
                        with_tracing: false,
                    }),
            )
            .unwrap()
            .into_inner();
        assert!(response.debug_trace.is_none());
    }
}

#[test]
fn http_debug_trace_has_spicedb_shape() {
    let server = TestServer::start_with(|config| config.engine.cache_bytes = 0);
    server.ok("/v1/schema/write", &json!({ "schema": SCHEMA }));
    server.ok("/v1/relationships/write", &world_write());
    let answer = server.ok(
        "/v1/permissions/check",
        &json!({
            "resource": {"objectType": "doc", "objectId": "plan"},
            "permission": "view",
            "subject": {"object": {"objectType": "user", "objectId": "dee"}},
            "withTracing": true,
        }),
    );
    assert_eq!(
        answer["permissionship"],
        "PERMISSIONSHIP_CONDITIONAL_PERMISSION"
    );
    let info = &answer["debugTrace"];
    assert_eq!(info["schemaUsed"], SCHEMA);
    let root = &info["check"];
    let dee = json!({"object": {"objectType": "user", "objectId": "dee"}});
    assert_eq!(
        root["resource"],
        json!({"objectType": "doc", "objectId": "plan"})
    );
    assert_eq!(root["permission"], "view");
    assert_eq!(root["permissionType"], "PERMISSION_TYPE_PERMISSION");
    assert_eq!(root["subject"], dee);
    assert_eq!(root["result"], "PERMISSIONSHIP_CONDITIONAL_PERMISSION");
    assert_eq!(root["source"], "zanzi:walk");
    assert!(root.get("wasCachedResult").is_none());
    let duration = root["duration"].as_str().unwrap();
    assert!(
        duration.ends_with('s') && duration.trim_end_matches('s').parse::<f64>().is_ok(),
        "{duration}"
    );
    let steps = root["subProblems"]["traces"].as_array().unwrap();
    assert_eq!(steps.len(), 4);
    // The caveated relation: a leaf with the caveat's evaluation.
    let viewer = &steps[0];
    assert_eq!(viewer["permission"], "viewer");
    assert_eq!(viewer["permissionType"], "PERMISSION_TYPE_RELATION");
    assert_eq!(viewer["wasCachedResult"], json!(false));
    assert!(viewer.get("subProblems").is_none());
    assert_eq!(
        viewer["caveatEvaluationInfo"],
        json!({
            "expression": "day != \"sunday\"",
            "result": "RESULT_MISSING_SOME_CONTEXT",
            "partialCaveatInfo": {"missingRequiredContext": ["day"]},
            "caveatName": "weekday",
        })
    );
    // The nested-group index's answer reads as a cached result from its own source.
    let member = &steps[2]["subProblems"]["traces"][0];
    assert_eq!(
        member["resource"],
        json!({"objectType": "group", "objectId": "eng"})
    );
    assert_eq!(member["wasCachedResult"], json!(true));
    assert_eq!(member["source"], "group-index:group#member");
    // Read back, it is the engine's tree.
    let wire: WireDebugInformation = serde_json::from_value(info.clone()).unwrap();
    assert_eq!(plain(&trace::from_json(&wire).unwrap()), DEE_TREE);

    // Bulk checks carry one trace per item, and none without tracing.
    let item = |who: &str| {
        json!({
            "resource": {"objectType": "doc", "objectId": "plan"},
            "permission": "view",
            "subject": {"object": {"objectType": "user", "objectId": who}},
        })
    };
    let bulk = server.ok(
        "/v1/permissions/checkbulk",
        &json!({"items": [item("ann"), item("eve")], "withTracing": true}),
    );
    let pairs = bulk["pairs"].as_array().unwrap();
    for (pair, tree) in pairs.iter().zip([ANN_TREE, EVE_TREE]) {
        let wire: WireDebugInformation =
            serde_json::from_value(pair["item"]["debugTrace"].clone()).unwrap();
        assert_eq!(plain(&trace::from_json(&wire).unwrap()), tree);
    }
    let bulk = server.ok(
        "/v1/permissions/checkbulk",
        &json!({"items": [item("ann")]}),
    );
    assert!(bulk["pairs"][0]["item"].get("debugTrace").is_none());
}

#[test]
fn a_cached_answer_is_marked_and_has_no_steps() {
    let (engine, _dir) = engine_with_config(SCHEMA, WORLD, EngineConfig::default());
    let rel = Relationship::parse("doc:plan#view@user:ann").unwrap();
    let first = engine
        .check_traced(&rel.resource, &rel.relation, &rel.subject, &Context::new())
        .unwrap();
    assert_eq!(first.trace.root.source, StepSource::Walk);
    let again = engine
        .check_traced(&rel.resource, &rel.relation, &rel.subject, &Context::new())
        .unwrap();
    assert_eq!(again.result, first.result);
    let root = &again.trace.root;
    assert_eq!(root.source, StepSource::Cache);
    assert!(root.steps.is_empty());
    assert_eq!(
        plain(&again.trace),
        ["✓ doc:plan view [exclusion] (cached)", "└── user:ann"]
    );
    let wire = trace::to_json(&again.trace);
    let check = wire.check.as_ref().unwrap();
    assert_eq!(check.was_cached_result, Some(true));
    assert_eq!(check.source, "zanzi:cache");
    let proto = grpc_trace::to_proto(&again.trace);
    assert_eq!(
        proto.check.unwrap().resolution,
        Some(v1::check_debug_trace::Resolution::WasCachedResult(true))
    );
}

#[test]
fn the_plain_walk_shows_every_step_and_cuts_cycles() {
    let schema = "definition user {}
definition group {
    relation member: user | group#member
}
definition doc {
    relation viewer: group#member
    permission view = viewer
}";
    let world = [
        "doc:1#viewer@group:a#member",
        "group:a#member@group:b#member",
        "group:b#member@group:a#member",
        "group:b#member@user:zed",
    ];
    let (engine, _dir) = engine_with_config(schema, &world, EngineConfig::plain());
    let rel = Relationship::parse("doc:1#view@user:zed").unwrap();
    let traced = engine
        .check_traced(&rel.resource, &rel.relation, &rel.subject, &Context::new())
        .unwrap();
    assert_eq!(
        plain(&traced.trace),
        [
            "✓ doc:1 view [computed]",
            "└── ✓ doc:1 viewer",
            "    └── ✓ group:a member",
            "        └── ✓ group:b member",
            "            └── user:zed",
        ]
    );
    let rel = Relationship::parse("doc:1#view@user:nobody").unwrap();
    let traced = engine
        .check_traced(&rel.resource, &rel.relation, &rel.subject, &Context::new())
        .unwrap();
    assert_eq!(traced.result.permissionship, Permissionship::No);
    assert_eq!(
        plain(&traced.trace),
        [
            "⨉ doc:1 view [computed]",
            "└── ⨉ doc:1 viewer",
            "    └── ⨉ group:a member",
            "        └── ⨉ group:b member",
            "            └── ⨉ group:a member (cycle)",
        ]
    );
    // The steps name their operations and kinds.
    let root = &traced.trace.root;
    assert_eq!(root.operation, Some(Operation::Computed));
    assert_eq!(root.steps[0].operation, Some(Operation::Relation));
}

#[test]
fn a_caveat_that_fails_is_shown_with_its_context() {
    let (engine, _dir) = engine_with_config(SCHEMA, WORLD, EngineConfig::plain());
    let rel = Relationship::parse("doc:plan#viewer@user:dee").unwrap();
    let mut context = Context::new();
    context.insert("day".into(), Value::from("sunday"));
    let traced = engine
        .check_traced(&rel.resource, &rel.relation, &rel.subject, &context)
        .unwrap();
    assert_eq!(traced.result.permissionship, Permissionship::No);
    let caveat = traced.trace.root.caveat.as_ref().unwrap();
    assert_eq!(caveat.result, CaveatResult::False);
    assert_eq!(caveat.context.get("day"), Some(&Value::from("sunday")));
    assert_eq!(
        plain(&traced.trace),
        [
            "⨉ doc:plan viewer",
            "└── ⨉ day != \"sunday\" weekday",
            "    └── {\"day\":\"sunday\"}",
        ]
    );
}

#[test]
fn traced_and_untraced_checks_agree() {
    // Every check in the world, every configuration: the trace never changes the answer.
    for config in [EngineConfig::plain(), EngineConfig::default()] {
        let (engine, _dir) = engine_with_config(SCHEMA, WORLD, config);
        for resource in ["doc:plan", "folder:q3", "group:eng", "group:core"] {
            let resource = zanzi::tuple::ObjectRef::parse(resource).unwrap();
            let schema = engine.schema().unwrap();
            let definition = schema.definition(&resource.object_type).unwrap();
            for member in &definition.member_order {
                for who in ["ann", "eve", "dee", "zed"] {
                    let subject = zanzi::tuple::SubjectRef::parse(&format!("user:{who}")).unwrap();
                    let plain_answer = engine
                        .check(&resource, member, &subject, &Context::new())
                        .unwrap();
                    let traced = engine
                        .check_traced(&resource, member, &subject, &Context::new())
                        .unwrap();
                    assert_eq!(traced.result, plain_answer, "{resource}#{member}@{subject}");
                    assert_eq!(traced.trace.root.result, plain_answer.permissionship);
                }
            }
        }
    }
}
