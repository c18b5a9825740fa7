//! Tests for the schema module: conformance schemas, precedence, every error kind with its
//! position, caveats, and no-panic properties.

use std::path::{Path, PathBuf};

use super::*;

fn conformance_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/conformance")
}

#[track_caller]
fn ok(src: &str) -> Schema {
    let result = compile(src);
    let shown = result.as_ref().err().map(ToString::to_string);
    assert!(
        result.is_ok(),
        "expected the schema to compile, got: {shown:?}"
    );
    result.unwrap_or_else(|_| Schema {
        definitions: Default::default(),
        caveats: Default::default(),
        uses_expiration: false,
        uses_self: false,
        source: String::new(),
    })
}

#[track_caller]
fn errs(src: &str) -> Vec<SchemaError> {
    let result = compile(src);
    assert!(
        result.is_err(),
        "expected errors, the schema compiled:\n{src}"
    );
    result.err().map(|e| e.0).unwrap_or_default()
}

/// Asserts exactly one error, at `line:column`, whose message contains `needle`.
#[track_caller]
fn one_err(src: &str, line: usize, column: usize, needle: &str) {
    let errors = errs(src);
    assert_eq!(errors.len(), 1, "expected one error, got {errors:?}");
    let e = &errors[0];
    assert_eq!((e.line, e.column), (line, column), "wrong position for {e}");
    assert!(
        e.message.contains(needle),
        "`{}` does not contain `{needle}`",
        e.message
    );
}

fn perm(schema: &Schema, def: &str, name: &str) -> Rewrite {
    schema.definitions[def].permissions[name].rewrite.clone()
}

fn c(name: &str) -> Rewrite {
    Rewrite::Computed(name.to_string())
}

/// Every `schema:` (or `schemaFile:`) in the YAML files under `dir`.
fn yaml_schemas(dir: &Path, out: &mut Vec<(PathBuf, String)>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    for path in paths {
        if path.is_dir() {
            yaml_schemas(&path, out);
            continue;
        }
        if path.extension().and_then(|e| e.to_str()) != Some("yaml") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        for doc in serde_yaml::Deserializer::from_str(&text) {
            let Ok(value) = <serde_yaml::Value as serde::Deserialize>::deserialize(doc) else {
                continue;
            };
            if let Some(schema) = value.get("schema").and_then(|s| s.as_str()) {
                out.push((path.clone(), schema.to_string()));
            } else if let Some(file) = value.get("schemaFile").and_then(|s| s.as_str()) {
                let base = path.parent().unwrap_or(Path::new("."));
                let schema = std::fs::read_to_string(base.join(file)).unwrap_or_default();
                out.push((path.clone(), schema));
            }
        }
    }
}

#[test]
fn every_conformance_schema_compiles() {
    let root = conformance_dir();
    let mut schemas = Vec::new();
    for sub in ["spicedb", "examples", "spicedb-oracle"] {
        yaml_schemas(&root.join(sub), &mut schemas);
    }
    assert!(
        schemas.len() >= 80,
        "found only {} schemas under {}",
        schemas.len(),
        root.display()
    );
    let mut failures = Vec::new();
    for (path, schema) in &schemas {
        if let Err(e) = compile(schema) {
            failures.push(format!("{}: {e}", path.display()));
        }
    }
    assert!(
        failures.is_empty(),
        "{} failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn frontier_schemas_compile() {
    for name in ["base_schema.zed", "compiled_schema.zed"] {
        let path = conformance_dir().join("frontier").join(name);
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(!text.is_empty(), "missing {}", path.display());
        let schema = ok(&text);
        assert!(schema.definitions.len() > 3);
        assert_eq!(schema.source, text);
    }
}

#[test]
fn loader_valid_schema_files_compile() {
    let root = conformance_dir().join("loader");
    ok(&std::fs::read_to_string(root.join("separate_schemafile.zed")).unwrap_or_default());
    let mut schemas = Vec::new();
    yaml_schemas(&root, &mut schemas);
    for (path, schema) in schemas {
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        if name == "loader_using_invalid_schemafile.yaml" {
            continue;
        }
        if name == "invalid_caveat.yaml" {
            // EXPECTED.tsv: the schema itself names a caveat it never defines.
            let errors = compile(&schema)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(
                errors.contains("caveat with name `some_caveat` not found"),
                "{errors}"
            );
            continue;
        }
        assert!(
            compile(&schema).is_ok(),
            "{name} should compile: {:?}",
            compile(&schema).err()
        );
    }
}

#[test]
fn loader_invalid_schemafile_fails_at_line_6_column_18() {
    let text = std::fs::read_to_string(conformance_dir().join("loader/invalid_schemafile.zed"))
        .unwrap_or_default();
    one_err(&text, 6, 18, "expected `:`");
}

#[test]
fn unknown_object_definition_like_just_rels() {
    let src =
        "definition example/user {}\n\ndefinition doc {\n  relation reader: example/project\n}";
    one_err(src, 4, 20, "object definition `example/project` not found");
}

#[test]
fn precedence_exclusion_loosest_then_intersection_then_union() {
    let s = ok("definition user {}\ndefinition doc {\n relation ann: user\n relation bob: user\n relation cat: user\n relation dan: user\n permission pone = ann + bob & cat - dan\n permission ptwo = ann - bob & cat + dan\n permission pthree = ann & bob + cat\n}");
    assert_eq!(
        perm(&s, "doc", "pone"),
        Rewrite::Exclusion(
            Box::new(Rewrite::Intersection(vec![
                Rewrite::Union(vec![c("ann"), c("bob")]),
                c("cat")
            ])),
            Box::new(c("dan"))
        )
    );
    assert_eq!(
        perm(&s, "doc", "ptwo"),
        Rewrite::Exclusion(
            Box::new(c("ann")),
            Box::new(Rewrite::Intersection(vec![
                c("bob"),
                Rewrite::Union(vec![c("cat"), c("dan")])
            ]))
        )
    );
    assert_eq!(
        perm(&s, "doc", "pthree"),
        Rewrite::Intersection(vec![c("ann"), Rewrite::Union(vec![c("bob"), c("cat")])])
    );
}

#[test]
fn associativity_unions_flatten_and_exclusion_is_left_associative() {
    let s = ok("definition user {}\ndefinition doc {\n relation ann: user\n relation bob: user\n relation cat: user\n permission uuu = ann + (bob + cat) + ann\n permission iii = (ann & bob) & cat\n permission eee = ann - bob - cat\n permission single = ann\n permission paren = (ann - bob) + cat\n}");
    assert_eq!(
        perm(&s, "doc", "uuu"),
        Rewrite::Union(vec![c("ann"), c("bob"), c("cat"), c("ann")])
    );
    assert_eq!(
        perm(&s, "doc", "iii"),
        Rewrite::Intersection(vec![c("ann"), c("bob"), c("cat")])
    );
    assert_eq!(
        perm(&s, "doc", "eee"),
        Rewrite::Exclusion(
            Box::new(Rewrite::Exclusion(Box::new(c("ann")), Box::new(c("bob")))),
            Box::new(c("cat"))
        )
    );
    assert_eq!(perm(&s, "doc", "single"), c("ann"));
    assert_eq!(
        perm(&s, "doc", "paren"),
        Rewrite::Union(vec![
            Rewrite::Exclusion(Box::new(c("ann")), Box::new(c("bob"))),
            c("cat")
        ])
    );
}

#[test]
fn arrows_any_all_and_nil_bind_tightest() {
    let s = ok("definition user {}\ndefinition org { relation member: user }\ndefinition doc {\n relation parent: org\n relation viewer: user\n permission ppp = parent->member + viewer & parent.all(member) - nil\n permission qqq = parent.any(member)\n}");
    let arrow = |mode| Rewrite::Arrow {
        tupleset: "parent".into(),
        computed: "member".into(),
        mode,
    };
    assert_eq!(
        perm(&s, "doc", "ppp"),
        Rewrite::Exclusion(
            Box::new(Rewrite::Intersection(vec![
                Rewrite::Union(vec![arrow(ArrowMode::Any), c("viewer")]),
                arrow(ArrowMode::All)
            ])),
            Box::new(Rewrite::Nil)
        )
    );
    assert_eq!(perm(&s, "doc", "qqq"), arrow(ArrowMode::Any));
}

#[test]
fn relation_allowed_types_are_compiled() {
    let s = ok("use expiration\ndefinition user {}\ndefinition group { relation member: user | group#member }\ncaveat cav(x int) { x > 1 }\ndefinition doc {\n relation viewer: user | user:* | group#member | user with cav | group#... with expiration | app/thing with cav and expiration\n}\ndefinition app/thing {}");
    let allowed = &s.definitions["doc"].relations["viewer"].allowed;
    let mk = |t: &str, kind, caveat: Option<&str>, expiration| AllowedSubject {
        subject_type: t.into(),
        kind,
        caveat: caveat.map(String::from),
        expiration,
    };
    assert_eq!(
        allowed,
        &vec![
            mk("user", AllowedKind::Direct, None, false),
            mk("user", AllowedKind::Wildcard, None, false),
            mk(
                "group",
                AllowedKind::SubjectSet("member".into()),
                None,
                false
            ),
            mk("user", AllowedKind::Direct, Some("cav"), false),
            mk("group", AllowedKind::Direct, None, true),
            mk("app/thing", AllowedKind::Direct, Some("cav"), true),
        ]
    );
    assert!(s.uses_expiration);
    assert_eq!(
        s.definitions["doc"].member_order,
        vec!["viewer".to_string()]
    );
}

#[test]
fn definitions_on_one_line_and_semicolons() {
    let s =
        ok("definition user {} definition doc { relation viewer: user; permission view = viewer }");
    assert_eq!(s.definitions.len(), 2);
    assert_eq!(
        s.definitions["doc"].member_order,
        vec!["viewer".to_string(), "view".to_string()]
    );
}

#[test]
fn comments_and_doc_comments_are_ignored() {
    ok("/** the user */\ndefinition user {} // trailing\n/* block\n spanning */ definition doc {\n  /** doc comment on a relation */\n  relation viewer: user /* inline */ | user:*\n  // a line comment\n  permission view = viewer // why\n}");
}

#[test]
fn multi_line_expressions_continue_after_an_operator() {
    let s = ok("definition user {}\ndefinition doc {\n relation ann: user |\n   user:*\n relation bob: user\n permission ppp = ann +\n   bob\n}");
    assert_eq!(
        perm(&s, "doc", "ppp"),
        Rewrite::Union(vec![c("ann"), c("bob")])
    );
}

#[test]
fn use_self_makes_self_an_expression() {
    let s = ok(
        "use self\ndefinition user {\n relation friend: user\n permission view = self + friend\n}",
    );
    assert!(s.uses_self);
    assert_eq!(
        perm(&s, "user", "view"),
        Rewrite::Union(vec![Rewrite::SelfRef, c("friend")])
    );
    one_err(
        "definition user {\n relation friend: user\n permission view = self + friend\n}",
        3,
        20,
        "`self` not found under definition `user` (add `use self`",
    );
}

#[test]
fn caveat_is_captured_verbatim_with_nested_braces_and_strings() {
    let src = "definition user {}\ncaveat has_attr(attrs map<any>, name string, allowed list<string>) {\n  {'a': {'b': \"}\"}}['a']['b'] == '}' && name in allowed && attrs[name] == {'x': 1}\n}\ndefinition doc { relation viewer: user with has_attr }";
    let s = ok(src);
    let cav = &s.caveats["has_attr"];
    assert_eq!(
        cav.expression,
        "{'a': {'b': \"}\"}}['a']['b'] == '}' && name in allowed && attrs[name] == {'x': 1}"
    );
    assert_eq!((cav.expression_line, cav.expression_column), (3, 3));
    assert_eq!(
        cav.parameters,
        vec![
            (
                "attrs".to_string(),
                CaveatType::Map(Box::new(CaveatType::Any))
            ),
            ("name".to_string(), CaveatType::String),
            (
                "allowed".to_string(),
                CaveatType::List(Box::new(CaveatType::String))
            ),
        ]
    );
}

#[test]
fn caveat_parameter_types() {
    let s = ok("caveat cav(a any, b bool, c string, d int, e uint, f double, g bytes, h duration, i timestamp, j ipaddress, k list<map<int>>) {\n a == 1 && b && c == 'x' && d + e > 1 && f > 0.5 && g == b'x' &&\n h > duration('1s') && i < timestamp('2030-01-01T00:00:00Z') && j.in_cidr('10.0.0.0/8') &&\n k[0]['x'] == 1\n}");
    let types: Vec<CaveatType> = s.caveats["cav"]
        .parameters
        .iter()
        .map(|(_, t)| t.clone())
        .collect();
    assert_eq!(types.len(), 11);
    assert_eq!(
        types[10],
        CaveatType::List(Box::new(CaveatType::Map(Box::new(CaveatType::Int))))
    );
}

#[test]
fn caveat_comprehension_variables_are_not_free() {
    ok("caveat cav(items list<int>, limit int) {\n  items.all(i, i < limit) && items.exists(j, j == 2)\n}");
}

#[test]
fn caveat_declared_after_use_compiles() {
    ok("definition user {}\ndefinition doc { relation viewer: user with later }\ncaveat later(x int) { x == 1 }");
}

#[test]
fn caveat_errors_are_positioned_in_the_schema_text() {
    // CEL syntax error on the second line of the expression.
    one_err(
        "caveat cav(x int) {\n  x == 1 &&\n    )\n}",
        3,
        5,
        "invalid expression for caveat `cav`",
    );
    // Undeclared identifier on the first line, after the `{`.
    one_err(
        "caveat cav(x int) { x == y }",
        1,
        26,
        "undeclared reference to `y`",
    );
    one_err(
        "caveat cav(x int, y int) { x == 1 }",
        1,
        19,
        "parameter `y` for caveat `cav` is unused",
    );
    one_err(
        "caveat cav(x int, x int) { x == 1 }",
        1,
        19,
        "duplicate parameter `x` defined on caveat `cav`",
    );
    one_err(
        "caveat cav(x integer) { x == 1 }",
        1,
        14,
        "unknown caveat parameter type `integer`",
    );
    one_err(
        "caveat cav(x list) { x == 1 }",
        1,
        14,
        "type `list` takes 1 type argument, found 0",
    );
    one_err(
        "caveat cav() { true }",
        1,
        8,
        "caveat `cav` must have at least one parameter defined",
    );
    one_err("caveat cav(x int) {  }", 1, 22, "missing caveat expression");
    one_err(
        "caveat cav(x int) { x == 1",
        1,
        27,
        "expected `}` to close caveat `cav`",
    );
}

#[test]
fn caveat_type_errors_are_positioned_in_the_schema_text() {
    one_err(
        "caveat cav(x int) {\n  x == 1 &&\n    x == 'a'\n}",
        3,
        7,
        "invalid expression for caveat `cav`: no matching overload for `_==_` on (int, string)",
    );
    one_err(
        "caveat cav(x int) { x + 1 }",
        1,
        21,
        "caveat expression must result in a boolean value: found `int`",
    );
    // As in SpiceDB, a `dyn` result is not a `bool`.
    one_err("caveat cav(x any) { x }", 1, 21, "found `dyn`");
    // SpiceDB declares `uint` parameters as CEL `int`.
    one_err(
        "caveat cav(x uint) { x == 1u }",
        1,
        24,
        "no matching overload for `_==_` on (int, uint)",
    );
    one_err(
        "caveat cav(ip ipaddress) {\n  ip.in_cidr(1)\n}",
        2,
        13,
        "no matching overload for `in_cidr` on ipaddress.(int)",
    );
    ok("caveat cav(x any, m map<any>) { x == 1 && m.a.b > 2 && m['c'][0] == 'x' }");
}

#[test]
fn caveat_expression_nesting_is_bounded() {
    let deep = format!(
        "caveat cav(x int) {{ {}x{} == 1 }}",
        "(".repeat(5000),
        ")".repeat(5000)
    );
    let errors = errs(&deep);
    assert!(
        errors[0].message.contains("nested too deeply"),
        "{errors:?}"
    );
}

#[test]
fn error_duplicate_definition_and_caveat_names() {
    one_err(
        "definition user {}\ndefinition user {}",
        2,
        12,
        "found name reused between multiple definitions and/or caveats: `user`",
    );
    one_err(
        "definition user {}\ncaveat user(x int) { x == 1 }",
        2,
        8,
        "reused",
    );
}

#[test]
fn caveat_names_follow_spicedb_api_rule() {
    // One and two characters are fine, as in SpiceDB's `CaveatDefinition.name` pattern.
    ok("caveat c(x int) { x == 1 }\ncaveat c1(x int) { x == 1 }\ncaveat Ab_9(x int) { x == 1 }");
    one_err(
        "caveat café(x int) { x == 1 }",
        1,
        8,
        "invalid caveat name `café`",
    );
    let long = format!("caveat {}(x int) {{ x == 1 }}", "c".repeat(129));
    one_err(&long, 1, 8, "expected 1 to 128 characters");
}

#[test]
fn error_duplicate_member_names() {
    one_err(
        "definition user {}\ndefinition doc {\n relation viewer: user\n permission viewer = nil\n}",
        4,
        13,
        "found duplicate relation/permission name `viewer` under definition `doc`",
    );
}

#[test]
fn error_unknown_subject_relation_and_caveat() {
    one_err(
        "definition user {}\ndefinition group {}\ndefinition doc {\n relation viewer: group#member\n}",
        4,
        25,
        "relation/permission `member` not found under definition `group`",
    );
    one_err(
        "definition user {}\ndefinition doc {\n relation viewer: user with some_caveat\n}",
        3,
        29,
        "caveat with name `some_caveat` not found",
    );
}

#[test]
fn error_expiration_without_use_expiration() {
    one_err(
        "definition user {}\ndefinition doc {\n relation viewer: user with expiration\n}",
        3,
        29,
        "caveat with name `expiration` not found (add `use expiration`",
    );
}

#[test]
fn error_use_after_definition_and_unknown_flag() {
    one_err(
        "definition user {}\nuse expiration",
        2,
        5,
        "`use` expressions must be declared before any definition",
    );
    one_err(
        "use magic\ndefinition user {}",
        1,
        5,
        "unknown use flag `magic`",
    );
}

#[test]
fn error_unknown_relation_in_expression() {
    one_err(
        "definition user {}\ndefinition doc {\n relation viewer: user\n permission view = viewer + editor\n}",
        4,
        29,
        "relation/permission `editor` not found under definition `doc`",
    );
}

#[test]
fn error_arrow_over_permission() {
    one_err(
        "definition user {}\ndefinition doc {\n relation viewer: user\n permission view = viewer\n permission bad = view->view\n}",
        5,
        19,
        "permissions cannot be used on the left hand side of an arrow (found `view`)",
    );
}

#[test]
fn error_arrow_over_wildcard_relation() {
    one_err(
        "definition user { relation self_rel: user }\ndefinition doc {\n relation viewer: user | user:*\n permission bad = viewer->self_rel\n}",
        4,
        19,
        "wildcard relations cannot be used on the left side of arrows",
    );
}

#[test]
fn arrow_target_on_no_subject_type_is_accepted_like_spicedb() {
    // SpiceDB only warns; Frontier's production schema relies on it.
    ok("definition user {}\ndefinition org { relation admin: user }\ndefinition doc {\n relation parent: org | user\n permission view = parent->member\n}");
}

#[test]
fn error_nested_arrows() {
    one_err(
        "definition user {}\ndefinition doc {\n relation parent: doc\n permission view = parent->parent->view\n}",
        4,
        34,
        "nested arrows are not supported",
    );
}

#[test]
fn error_permission_cycles() {
    one_err(
        "definition user {}\ndefinition doc {\n relation viewer: user\n permission aaa = bbb\n permission bbb = aaa\n}",
        4,
        13,
        "under definition `doc`, there exists a cycle in permissions: aaa, bbb",
    );
    one_err(
        "definition user {}\ndefinition doc {\n relation viewer: user\n permission aaa = aaa + viewer\n}",
        4,
        13,
        "cycle in permissions: aaa",
    );
    // Through an arrow is fine: the relation is in between.
    ok("definition user {}\ndefinition doc {\n relation parent: doc\n relation viewer: user\n permission view = viewer + parent->view\n}");
}

#[test]
fn error_wildcard_subject_set() {
    one_err(
        "definition user {}\ndefinition group { relation member: user }\ndefinition doc {\n relation viewer: group:*#member\n}",
        4,
        26,
        "a wildcard subject type cannot have a subject relation",
    );
}

#[test]
fn error_transitive_wildcard() {
    one_err(
        "definition user {}\ndefinition group { relation member: user | user:* }\ndefinition doc {\n relation viewer: group#member\n}",
        4,
        25,
        "wildcard relations cannot be transitively included",
    );
}

#[test]
fn error_duplicate_allowed_type() {
    one_err(
        "definition user {}\ndefinition doc {\n relation viewer: user | user\n}",
        3,
        26,
        "found duplicate allowed subject type `user` on relation `viewer` under definition `doc`",
    );
}

#[test]
fn error_invalid_names() {
    one_err(
        "definition User {}",
        1,
        12,
        "invalid definition name `User`",
    );
    one_err(
        "definition user { relation v: user }",
        1,
        28,
        "invalid relation/permission name `v`",
    );
    one_err(
        "definition relation {}",
        1,
        12,
        "expected a definition name, found keyword `relation`",
    );
}

#[test]
fn several_errors_are_reported_at_once() {
    // Syntax errors: the parser recovers at the next member and the next definition.
    let errors = errs("definition user {}\ndefinition doc {\n relation viewer user\n permission view = viewer +\n relation ok: user\n}\ndefinition broken {{\ndefinition fine {}\n");
    let positions: Vec<(usize, usize)> = errors.iter().map(|e| (e.line, e.column)).collect();
    assert_eq!(
        positions,
        vec![(3, 18), (5, 2), (7, 20), (8, 1)],
        "{errors:?}"
    );

    // Semantic errors: all of them, in source order.
    let errors = errs("definition user {}\ndefinition doc {\n relation viewer: usr\n permission view = viewr\n relation editor: user with cav\n}\ndefinition doc {}");
    let positions: Vec<(usize, usize)> = errors.iter().map(|e| (e.line, e.column)).collect();
    assert_eq!(
        positions,
        vec![(3, 19), (4, 20), (5, 29), (7, 12)],
        "{errors:?}"
    );
    let shown = SchemaErrors(errors).to_string();
    assert!(
        shown.starts_with("line 3, column 19: object definition `usr` not found; line 4"),
        "{shown}"
    );
}

#[test]
fn expression_nesting_is_bounded() {
    let deep = format!(
        "definition user {{}}\ndefinition doc {{ relation viewer: user\n permission ppp = {}viewer{}\n}}",
        "(".repeat(10_000),
        ")".repeat(10_000)
    );
    let errors = errs(&deep);
    assert!(
        errors
            .iter()
            .any(|e| e.message.contains("nesting is too deep")),
        "{errors:?}"
    );
    // 100 levels are fine.
    ok(&format!(
        "definition user {{}}\ndefinition doc {{ relation viewer: user\n permission ppp = {}viewer{}\n}}",
        "(".repeat(100),
        ")".repeat(100)
    ));
}

#[test]
fn empty_and_comment_only_schemas_compile() {
    assert!(ok("").definitions.is_empty());
    assert!(ok("// nothing\n/* here */").definitions.is_empty());
}

#[test]
fn dependencies_follow_arrows_and_subject_sets() {
    let s = ok("definition user {}\ndefinition group { relation member: user | group#member }\ndefinition doc {\n relation parent: group\n relation viewer: user | group#member\n permission view = viewer + parent->member\n}");
    let deps = s.dependencies("doc", "view");
    assert!(deps.contains(&("doc".to_string(), "viewer".to_string())));
    assert!(deps.contains(&("doc".to_string(), "parent".to_string())));
    assert!(deps.contains(&("group".to_string(), "member".to_string())));
}

mod never_panics {
    use proptest::prelude::*;

    const TOKENS: &[&str] = &[
        "definition",
        "caveat",
        "relation",
        "permission",
        "use",
        "expiration",
        "self",
        "with",
        "and",
        "nil",
        "user",
        "doc",
        "group",
        "member",
        "viewer",
        "app/x",
        "{",
        "}",
        "(",
        ")",
        ":",
        ";",
        "|",
        "+",
        "-",
        "&",
        "->",
        ".",
        "any",
        "all",
        "#",
        "*",
        "...",
        "=",
        "\n",
        " ",
        "//",
        "/*",
        "*/",
        "\"",
        "'",
        ",",
        "<",
        ">",
        "list",
        "int",
        "x",
        "==",
        "é",
        "\r",
    ];

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn random_strings(s in "\\PC*") {
            let _ = super::compile(&s);
        }

        #[test]
        fn token_soup(picks in proptest::collection::vec(0..TOKENS.len(), 0..80)) {
            let src: String = picks.iter().map(|i| TOKENS[*i]).collect::<Vec<_>>().join(" ");
            let _ = super::compile(&src);
            let glued: String = picks.iter().map(|i| TOKENS[*i]).collect();
            let _ = super::compile(&glued);
        }

        #[test]
        fn mutated_valid_schema(cut in 0usize..400, insert in 0..TOKENS.len()) {
            let base = "use expiration\ndefinition user {}\ncaveat cav(x int) { x == 1 }\ndefinition doc {\n relation parent: doc\n relation viewer: user | user:* with cav and expiration\n permission view = viewer + parent->view - nil\n}";
            let cut = base.char_indices().map(|(i, _)| i).nth(cut).unwrap_or(base.len());
            let src = format!("{}{}{}", &base[..cut], TOKENS[insert], &base[cut..]);
            let _ = super::compile(&src);
        }
    }
}
