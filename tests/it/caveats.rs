//! Caveated relationships: a property test of check and lookup-resources against a naive
//! three-valued reference evaluator (has / no / conditional), over random graphs, stored caveat
//! contexts and request contexts; and caveat expressions end to end: type errors refused at
//! schema write with their position, timestamps, durations and bytes evaluated through
//! `Engine::check`, caveat names as SpiceDB allows them.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use chrono::{DateTime, SecondsFormat, Utc};
use proptest::prelude::*;
use zanzi::clock::FixedClock;
use zanzi::engine::{Context, Engine, EngineConfig, EngineError, Permissionship};
use zanzi::store::{RocksStore, StoreOptions};
use zanzi::transaction::{Update, UpdateOp};
use zanzi::tuple::{ObjectRef, Relationship, SubjectRef};

use crate::support::{configs, engine_with, engine_with_config, expr_over, Expr};

fn context(value: serde_json::Value) -> Context {
    value.as_object().unwrap().clone()
}

fn write(engine: &Engine, relationships: &[&str]) {
    let updates: Vec<Update> = relationships
        .iter()
        .map(|text| Update {
            op: UpdateOp::Touch,
            relationship: Relationship::parse(text).unwrap(),
        })
        .collect();
    engine.write_relationships(&updates, &[]).unwrap();
}

fn check_with(engine: &Engine, text: &str, ctx: &Context) -> Permissionship {
    let rel = Relationship::parse(text).unwrap();
    engine
        .check(&rel.resource, &rel.relation, &rel.subject, ctx)
        .unwrap()
        .permissionship
}

fn at(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .unwrap()
        .with_timezone(&Utc)
}

/// The schema error `write_schema` gives for `text`, as one line of text.
fn schema_error(text: &str) -> String {
    let (engine, _dir) = engine_with("definition user {}", &[]);
    let error = engine.write_schema(text).unwrap_err();
    assert!(matches!(error, EngineError::Schema(_)), "{error}");
    error.to_string()
}

#[test]
fn caveat_type_errors_are_refused_at_schema_write_with_their_position() {
    let text = "definition user {}\ncaveat c(a int) {\n  a == \"x\"\n}";
    assert_eq!(
        schema_error(text),
        "invalid schema: line 3, column 5: invalid expression for caveat `c`: no matching overload for `_==_` on (int, string)"
    );
    let text = "definition user {}\ncaveat c(a int) { a + 1 }";
    assert_eq!(
        schema_error(text),
        "invalid schema: line 2, column 19: invalid expression for caveat `c`: caveat expression must result in a boolean value: found `int`"
    );
    let text = "definition user {}\ncaveat only_ip(ip ipaddress) {\n  ip.in_cidr(1)\n}";
    let error = schema_error(text);
    assert!(
        error.starts_with("invalid schema: line 3, column "),
        "{error}"
    );
    assert!(
        error.contains("no matching overload for `in_cidr` on ipaddress.(int)"),
        "{error}"
    );
    let text = "definition user {}\ncaveat c(a int, d double) { a + d > 1.0 }";
    assert!(
        schema_error(text).contains("no matching overload for `_+_` on (int, double)"),
        "{text}"
    );
    let text = "definition user {}\ncaveat c(a string) { a.shout() }";
    assert!(
        schema_error(text).contains("undeclared reference to `shout`"),
        "{text}"
    );
}

/// An engine whose store's clock is `clock`, with `schema` written.
fn engine_with_clock(schema: &str, clock: Arc<FixedClock>) -> (Engine, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let options = StoreOptions {
        clock,
        ..StoreOptions::default()
    };
    let store = RocksStore::open(dir.path(), options).unwrap();
    let engine = Engine::new(Arc::new(store), EngineConfig::default()).unwrap();
    engine.write_schema(schema).unwrap();
    (engine, dir)
}

#[test]
fn timestamp_methods_evaluate_through_check() {
    // CEL has no "now": the caller passes it, here read from the same pinned clock that
    // decides whether the relationship has expired.
    let schema = "use expiration
        definition user {}
        caveat office_hours(now timestamp, tz string, opened_at timestamp, ttl duration) {
            now.getHours(tz) >= 9 && now.getHours(tz) < 17 &&
            now.getDayOfWeek(tz) >= 1 && now.getDayOfWeek(tz) <= 5 &&
            now < opened_at + ttl
        }
        definition doc {
            relation viewer: user with office_hours and expiration
            permission view = viewer
        }";
    let clock = Arc::new(FixedClock::new(at("2030-01-07T08:30:00Z")));
    let (engine, _dir) = engine_with_clock(schema, clock.clone());
    write(
        &engine,
        &[
            r#"doc:1#viewer@user:ann[office_hours:{"tz":"Europe/Paris","opened_at":"2030-01-01T00:00:00Z","ttl":"720h"}][expiration:2030-02-01T00:00:00Z]"#,
        ],
    );
    let now = |clock: &FixedClock| {
        context(serde_json::json!({
            "now": zanzi::clock::Clock::now(clock).to_rfc3339_opts(SecondsFormat::Secs, true)
        }))
    };
    let view = "doc:1#view@user:ann";
    // Monday 7 January 2030, 09:30 in Paris.
    assert_eq!(check_with(&engine, view, &now(&clock)), Permissionship::Has);
    // 07:30 in Paris: before office hours.
    clock.set(at("2030-01-07T06:30:00Z"));
    assert_eq!(check_with(&engine, view, &now(&clock)), Permissionship::No);
    // Saturday.
    clock.set(at("2030-01-12T10:00:00Z"));
    assert_eq!(check_with(&engine, view, &now(&clock)), Permissionship::No);
    // Past `opened_at + ttl` (31 January): the caveat says no.
    clock.set(at("2030-01-31T10:00:00Z"));
    assert_eq!(check_with(&engine, view, &now(&clock)), Permissionship::No);
    // No "now" given: conditional on it.
    clock.set(at("2030-01-07T08:30:00Z"));
    assert_eq!(
        check_with(&engine, view, &Context::new()),
        Permissionship::conditional(["now".to_string()])
    );
    // Past the relationship's expiration it is gone, whatever the caveat says.
    clock.set(at("2030-02-04T09:00:00Z"));
    let mut ctx = now(&clock);
    ctx.insert("ttl".to_string(), "8760h".into());
    assert_eq!(check_with(&engine, view, &ctx), Permissionship::No);
}

#[test]
fn bytes_context_is_base64_through_check() {
    let schema = "definition user {}
        caveat token_matches(token bytes, expected bytes) { token == expected && size(token) == 3 }
        definition doc { relation viewer: user with token_matches }";
    let (engine, _dir) = engine_with(
        schema,
        &[r#"doc:1#viewer@user:ann[token_matches:{"expected":"AQID"}]"#],
    );
    let view = "doc:1#viewer@user:ann";
    let good = context(serde_json::json!({"token": "AQID"}));
    assert_eq!(check_with(&engine, view, &good), Permissionship::Has);
    let other = context(serde_json::json!({"token": "AQIE"}));
    assert_eq!(check_with(&engine, view, &other), Permissionship::No);
    // Not base64: a context type error, never an answer.
    let rel = Relationship::parse(view).unwrap();
    let raw = context(serde_json::json!({"token": "\u{1}\u{2}\u{3}"}));
    let error = engine
        .check(&rel.resource, &rel.relation, &rel.subject, &raw)
        .unwrap_err();
    assert!(
        matches!(error, EngineError::CaveatContextType { .. }),
        "{error}"
    );
}

#[test]
fn schema_and_relationships_agree_on_caveat_names() {
    for name in [
        "c",
        "c1",
        "Cav",
        "_x",
        "9lives",
        "a_b",
        "café",
        "way_too_long",
    ] {
        let name = if name == "way_too_long" {
            "c".repeat(129)
        } else {
            name.to_string()
        };
        let schema = format!(
            "definition user {{}}\ncaveat {name}(x int) {{ x == 1 }}\ndefinition doc {{ relation viewer: user with {name} }}"
        );
        let compiles = zanzi::schema::compile(&schema).is_ok();
        let relationship = format!("doc:1#viewer@user:ann[{name}:{{\"x\":1}}]");
        let parses = Relationship::parse(&relationship).is_ok();
        assert_eq!(compiles, parses, "caveat name `{name}`");
        if compiles {
            let (engine, _dir) = engine_with(&schema, &[&relationship]);
            assert_eq!(
                check_with(&engine, "doc:1#viewer@user:ann", &Context::new()),
                Permissionship::Has,
                "caveat name `{name}`"
            );
        }
    }
}

/// The reference's three values, kept separate from the engine's `Permissionship`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tri {
    No,
    Conditional,
    Has,
}

impl Tri {
    fn of(p: &Permissionship) -> Tri {
        match p {
            Permissionship::Has => Tri::Has,
            Permissionship::No => Tri::No,
            Permissionship::Conditional { .. } => Tri::Conditional,
        }
    }

    /// `a + b`: has beats everything, conditional beats no.
    fn or(self, other: Tri) -> Tri {
        match (self, other) {
            (Tri::Has, _) | (_, Tri::Has) => Tri::Has,
            (Tri::Conditional, _) | (_, Tri::Conditional) => Tri::Conditional,
            _ => Tri::No,
        }
    }

    /// `a & b`: no beats everything, conditional beats has.
    fn and(self, other: Tri) -> Tri {
        match (self, other) {
            (Tri::No, _) | (_, Tri::No) => Tri::No,
            (Tri::Conditional, _) | (_, Tri::Conditional) => Tri::Conditional,
            _ => Tri::Has,
        }
    }

    /// `a - b`: no if a is no or b is has; a if b is no; otherwise conditional.
    fn minus(self, other: Tri) -> Tri {
        match (self, other) {
            (Tri::No, _) | (_, Tri::Has) => Tri::No,
            (a, Tri::No) => a,
            _ => Tri::Conditional,
        }
    }
}

/// A caveat on a relationship: `cav1` (parameter `a`, true when 1) or `cav2` (`b`, true when 2),
/// with an optional stored value for its parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Caveat {
    name: &'static str,
    stored: Option<i64>,
}

impl Caveat {
    fn parameter(&self) -> (&'static str, i64) {
        match self.name {
            "cav1" => ("a", 1),
            _ => ("b", 2),
        }
    }

    fn text(&self) -> String {
        let (param, _) = self.parameter();
        match self.stored {
            None => format!("[{}]", self.name),
            Some(v) => format!("[{}:{{\"{param}\":{v}}}]", self.name),
        }
    }

    /// Stored context wins over the request's; a parameter known nowhere makes it conditional.
    fn eval(&self, request: &Req) -> Tri {
        let (param, wanted) = self.parameter();
        let value = self.stored.or(match param {
            "a" => request.a,
            _ => request.b,
        });
        match value {
            None => Tri::Conditional,
            Some(v) if v == wanted => Tri::Has,
            Some(_) => Tri::No,
        }
    }
}

/// A request context over the two parameters.
#[derive(Debug, Clone, Copy)]
struct Req {
    a: Option<i64>,
    b: Option<i64>,
}

impl Req {
    fn context(&self) -> Context {
        let mut ctx = Context::new();
        if let Some(a) = self.a {
            ctx.insert("a".to_string(), a.into());
        }
        if let Some(b) = self.b {
            ctx.insert("b".to_string(), b.into());
        }
        ctx
    }
}

const REQUESTS: [Req; 5] = [
    Req { a: None, b: None },
    Req {
        a: Some(1),
        b: None,
    },
    Req {
        a: Some(0),
        b: None,
    },
    Req {
        a: None,
        b: Some(2),
    },
    Req {
        a: Some(1),
        b: Some(2),
    },
];

/// One relationship: `resource#relation@subject[caveat]`.
#[derive(Debug, Clone)]
struct Rel {
    resource: String,
    relation: &'static str,
    subject: String,
    caveat: Option<Caveat>,
}

impl Rel {
    fn text(&self) -> String {
        let caveat = self.caveat.map(|c| c.text()).unwrap_or_default();
        format!(
            "{}#{}@{}{caveat}",
            self.resource, self.relation, self.subject
        )
    }

    /// Gating: a no through the relationship stays no; otherwise the caveat's value and the
    /// value reached through it must both hold.
    fn gate(&self, request: &Req, through: Tri) -> Tri {
        match self.caveat {
            None => through,
            Some(_) if through == Tri::No => Tri::No,
            Some(c) => c.eval(request).and(through),
        }
    }
}

/// Leaves of the random `view` permission.
const LEAVES: &[&str] = &["viewer", "editor", "banned"];

const USERS: [&str; 3] = ["u0", "u1", "u2"];
const GROUPS: [&str; 3] = ["g0", "g1", "g2"];
const DOC_IDS: [&str; 3] = ["d0", "d1", "d2"];

fn schema(view: &Expr) -> String {
    format!(
        "caveat cav1(a int) {{ a == 1 }}
         caveat cav2(b int) {{ b == 2 }}
         definition user {{}}
         definition group {{ relation member: user | user with cav1 | group#member }}
         definition doc {{
             relation viewer: user | user with cav1 | user with cav2 | user:* | group#member | group#member with cav2
             relation editor: user | user with cav2 | group#member
             relation banned: user | user with cav1
             permission view = {}
         }}",
        view.text()
    )
}

/// No caveat, or one of `names` with no stored value or a stored value that makes it true or
/// false.
fn caveat(names: &'static [&'static str]) -> impl Strategy<Value = Option<Caveat>> {
    let mut options = vec![None];
    for &name in names {
        let wanted = if name == "cav1" { 1 } else { 2 };
        for stored in [None, Some(wanted), Some(0)] {
            options.push(Some(Caveat { name, stored }));
        }
    }
    prop::sample::select(options)
}

/// A random relationship the schema allows; group nesting only goes from `gi` to `gj`, i < j.
fn relationship() -> impl Strategy<Value = Rel> {
    let user = prop::sample::select(USERS.to_vec());
    let group = prop::sample::select(GROUPS.to_vec());
    let doc = prop::sample::select(DOC_IDS.to_vec());
    let rel = |resource: String, relation, subject: String, caveat| Rel {
        resource,
        relation,
        subject,
        caveat,
    };
    prop_oneof![
        (group.clone(), user.clone(), caveat(&["cav1"])).prop_map(move |(g, u, c)| rel(
            format!("group:{g}"),
            "member",
            format!("user:{u}"),
            c
        )),
        (0..GROUPS.len() - 1, 1..GROUPS.len())
            .prop_filter("nesting goes up", |(i, j)| i < j)
            .prop_map(move |(i, j)| rel(
                format!("group:{}", GROUPS[i]),
                "member",
                format!("group:{}#member", GROUPS[j]),
                None
            )),
        (doc.clone(), user.clone(), caveat(&["cav1", "cav2"])).prop_map(move |(d, u, c)| rel(
            format!("doc:{d}"),
            "viewer",
            format!("user:{u}"),
            c
        )),
        doc.clone().prop_map(move |d| rel(
            format!("doc:{d}"),
            "viewer",
            "user:*".to_string(),
            None
        )),
        (doc.clone(), group.clone(), caveat(&["cav2"])).prop_map(move |(d, g, c)| rel(
            format!("doc:{d}"),
            "viewer",
            format!("group:{g}#member"),
            c
        )),
        (doc.clone(), user.clone(), caveat(&["cav2"])).prop_map(move |(d, u, c)| rel(
            format!("doc:{d}"),
            "editor",
            format!("user:{u}"),
            c
        )),
        (doc.clone(), group).prop_map(move |(d, g)| rel(
            format!("doc:{d}"),
            "editor",
            format!("group:{g}#member"),
            None
        )),
        (doc, user, caveat(&["cav1"])).prop_map(move |(d, u, c)| rel(
            format!("doc:{d}"),
            "banned",
            format!("user:{u}"),
            c
        )),
    ]
}

/// One relationship per (resource, relation, subject): the first one generated.
fn unique(rels: Vec<Rel>) -> Vec<Rel> {
    let mut seen = BTreeSet::new();
    rels.into_iter()
        .filter(|r| seen.insert((r.resource.clone(), r.relation, r.subject.clone())))
        .collect()
}

/// The obviously correct evaluator. Group nesting is acyclic by construction, so membership
/// is plain recursion (which is the least fixed point here).
struct Reference<'a> {
    rels: &'a [Rel],
    request: Req,
}

impl Reference<'_> {
    fn member(&self, group: &str, user: &str) -> Tri {
        let resource = format!("group:{group}");
        self.rels
            .iter()
            .filter(|r| r.resource == resource && r.relation == "member")
            .map(|r| self.through(r, user))
            .fold(Tri::No, Tri::or)
    }

    /// The value for `user` reached through one relationship (caveat included).
    fn through(&self, rel: &Rel, user: &str) -> Tri {
        let reached = if rel.subject == format!("user:{user}") || rel.subject == "user:*" {
            Tri::Has
        } else if let Some(g) = rel
            .subject
            .strip_prefix("group:")
            .and_then(|s| s.strip_suffix("#member"))
        {
            self.member(g, user)
        } else {
            Tri::No
        };
        rel.gate(&self.request, reached)
    }

    fn relation(&self, doc: &str, relation: &str, user: &str) -> Tri {
        let resource = format!("doc:{doc}");
        self.rels
            .iter()
            .filter(|r| r.resource == resource && r.relation == relation)
            .map(|r| self.through(r, user))
            .fold(Tri::No, Tri::or)
    }

    fn view(&self, expr: &Expr, doc: &str, user: &str) -> Tri {
        match expr {
            Expr::Rel(r) => self.relation(doc, r, user),
            Expr::Union(a, b) => self.view(a, doc, user).or(self.view(b, doc, user)),
            Expr::Inter(a, b) => self.view(a, doc, user).and(self.view(b, doc, user)),
            Expr::Excl(a, b) => self.view(a, doc, user).minus(self.view(b, doc, user)),
        }
    }
}

/// Checks twice (the second answer may come from the cache), records the full answer in
/// `transcript`, and returns its kind.
fn check_kind(
    engine: &Engine,
    resource: &str,
    permission: &str,
    user: &str,
    ctx: &Context,
    transcript: &mut Vec<String>,
) -> Tri {
    let (object_type, id) = resource.split_once(':').unwrap();
    let resource = ObjectRef::new(object_type, id).unwrap();
    let subject = SubjectRef::parse(&format!("user:{user}")).unwrap();
    let first = engine.check(&resource, permission, &subject, ctx).unwrap();
    let again = engine.check(&resource, permission, &subject, ctx).unwrap();
    assert_eq!(first, again, "a repeated check changed its answer");
    transcript.push(format!("{:?}", first.permissionship));
    Tri::of(&first.permissionship)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, .. ProptestConfig::default() })]

    #[test]
    fn caveated_check_and_lookup_resources_agree_with_reference(
        view in expr_over(LEAVES),
        rels in prop::collection::vec(relationship(), 0..16),
    ) {
        let rels = unique(rels);
        let texts: Vec<String> = rels.iter().map(Rel::text).collect();
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        // Every configuration must agree with the reference, and give the very same answers
        // (missing parameters included) as the plain walk.
        let mut transcripts: Vec<(&str, Vec<String>)> = Vec::new();
        for (config_name, config) in configs() {
            let mut transcript = Vec::new();
            let (engine, _dir) = engine_with_config(&schema(&view), &refs, config);
            for request in REQUESTS {
                let ctx = request.context();
                let reference = Reference { rels: &rels, request };
                for user in USERS {
                    for group in GROUPS {
                        let expected = reference.member(group, user);
                        let actual = check_kind(&engine, &format!("group:{group}"), "member", user, &ctx, &mut transcript);
                        prop_assert_eq!(
                            actual, expected,
                            "{}: check group:{}#member@user:{} context {:?} rels {:?}",
                            config_name, group, user, ctx, texts
                        );
                    }
                    let subject = SubjectRef::parse(&format!("user:{user}")).unwrap();
                    let (found, _) = engine.lookup_resources("doc", "view", &subject, &ctx).unwrap();
                    transcript.push(format!("{found:?}"));
                    let looked_up: BTreeMap<String, Tri> =
                        found.iter().map(|(id, p)| (id.to_string(), Tri::of(p))).collect();
                    let mut wanted = BTreeMap::new();
                    for doc in DOC_IDS {
                        let expected = reference.view(&view, doc, user);
                        let actual = check_kind(&engine, &format!("doc:{doc}"), "view", user, &ctx, &mut transcript);
                        prop_assert_eq!(
                            actual, expected,
                            "{}: check doc:{}#view@user:{} view = {} context {:?} rels {:?}",
                            config_name, doc, user, view.text(), ctx, texts
                        );
                        if expected != Tri::No {
                            wanted.insert(doc.to_string(), expected);
                        }
                    }
                    prop_assert_eq!(
                        looked_up, wanted,
                        "{}: lookup-resources doc#view for user:{} view = {} context {:?} rels {:?}",
                        config_name, user, view.text(), ctx, texts
                    );
                }
            }
            transcripts.push((config_name, transcript));
        }
        let (plain_name, plain) = &transcripts[0];
        for (name, answers) in &transcripts[1..] {
            prop_assert_eq!(answers, plain, "{} and {} disagree; rels {:?}", name, plain_name, texts);
        }
    }
}
