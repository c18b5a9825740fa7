//! Engine behaviour on a real RocksDB store: write validation and atomicity, bad input,
//! depth budget, and a property test against a naive reference evaluator.

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;
use zanzi::engine::{Context, EngineError, Permissionship};
use zanzi::filter::RelationshipFilter;
use zanzi::store::StoreError;
use zanzi::transaction::{Precondition, PreconditionOp, Update, UpdateOp};
use zanzi::tuple::{ObjectRef, Relationship, SubjectRef};

use crate::support::{check, configs, engine_with, engine_with_config, expr_over, Expr};

const DOCS: &str = "
definition user {}
definition group {
    relation member: user | group#member
}
definition doc {
    relation viewer: user | user:* | group#member
    relation banned: user
    permission view = viewer - banned
}";

fn update(op: UpdateOp, text: &str) -> Update {
    Update {
        op,
        relationship: Relationship::parse(text).unwrap(),
    }
}

fn all_relationships(engine: &zanzi::engine::Engine) -> Vec<String> {
    let (rels, _) = engine
        .read_relationships(&RelationshipFilter::default(), None, None)
        .unwrap();
    rels.iter().map(ToString::to_string).collect()
}

#[test]
fn batch_with_one_invalid_update_writes_nothing() {
    let (engine, _dir) = engine_with(DOCS, &["doc:1#viewer@user:ann"]);
    let before = (all_relationships(&engine), engine.head_revision());
    let batch = [
        update(UpdateOp::Touch, "doc:2#viewer@user:bob"),
        update(UpdateOp::Touch, "doc:2#banned@group:eng#member"),
    ];
    let err = engine.write_relationships(&batch, &[]).unwrap_err();
    assert!(
        err.to_string()
            .contains("`group#member` are not allowed on relation `doc#banned`"),
        "{err}"
    );
    assert_eq!((all_relationships(&engine), engine.head_revision()), before);
}

#[test]
fn failed_precondition_writes_nothing() {
    let (engine, _dir) = engine_with(DOCS, &["doc:1#viewer@user:ann"]);
    let before = (all_relationships(&engine), engine.head_revision());
    let precondition = Precondition {
        op: PreconditionOp::MustMatch,
        filter: RelationshipFilter {
            resource_type: Some("doc".into()),
            resource_id: Some("1".into()),
            relation: Some("banned".into()),
            ..Default::default()
        },
    };
    let err = engine
        .write_relationships(
            &[update(UpdateOp::Touch, "doc:3#viewer@user:cat")],
            &[precondition],
        )
        .unwrap_err();
    assert!(
        matches!(err, EngineError::Store(StoreError::PreconditionFailed(_))),
        "{err}"
    );
    assert_eq!((all_relationships(&engine), engine.head_revision()), before);
}

#[test]
fn create_of_existing_relationship_fails_and_writes_nothing() {
    let (engine, _dir) = engine_with(DOCS, &["doc:1#viewer@user:ann"]);
    let before = all_relationships(&engine);
    let err = engine
        .write_relationships(
            &[
                update(UpdateOp::Create, "doc:9#viewer@user:zed"),
                update(UpdateOp::Create, "doc:1#viewer@user:ann"),
            ],
            &[],
        )
        .unwrap_err();
    assert!(
        matches!(err, EngineError::Store(StoreError::AlreadyExists(_))),
        "{err}"
    );
    assert_eq!(all_relationships(&engine), before);
}

#[test]
fn writes_with_unknown_names_are_refused() {
    let (engine, _dir) = engine_with(DOCS, &[]);
    for (text, wanted) in [
        (
            "folder:1#viewer@user:ann",
            "object definition `folder` not found",
        ),
        (
            "doc:1#editor@user:ann",
            "`editor` not found under definition `doc`",
        ),
        ("doc:1#view@user:ann", "permission `view`"),
        (
            "doc:1#viewer@robot:r2",
            "object definition `robot` not found",
        ),
        ("doc:1#banned@user:*", "`user:*` are not allowed"),
    ] {
        let err = engine
            .write_relationships(&[update(UpdateOp::Touch, text)], &[])
            .unwrap_err();
        assert!(err.to_string().contains(wanted), "{text}: {err}");
    }
}

#[test]
fn schema_change_that_would_orphan_relationships_is_refused() {
    let (engine, _dir) = engine_with(DOCS, &["doc:1#banned@user:ann"]);
    let without_banned = DOCS
        .replace("relation banned: user\n", "")
        .replace("viewer - banned", "viewer");
    let err = engine.write_schema(&without_banned).unwrap_err();
    assert!(
        err.to_string().contains("`doc#banned` is still used"),
        "{err}"
    );
    assert!(engine
        .schema()
        .unwrap()
        .definition("doc")
        .unwrap()
        .relations
        .contains_key("banned"));
}

#[test]
fn invalid_schema_reports_position() {
    let (engine, _dir) = engine_with(DOCS, &[]);
    let err = engine
        .write_schema("definition user {}\ndefinition doc {\n  relation viewer: usr\n}")
        .unwrap_err();
    let text = err.to_string();
    assert!(text.contains("line 3"), "{text}");
    assert!(text.contains("`usr`"), "{text}");
}

#[test]
fn wildcard_and_exclusion() {
    let (engine, _dir) = engine_with(DOCS, &["doc:1#viewer@user:*", "doc:1#banned@user:bob"]);
    assert_eq!(check(&engine, "doc:1#view@user:ann"), Permissionship::Has);
    assert_eq!(check(&engine, "doc:1#view@user:bob"), Permissionship::No);
    let resource = ObjectRef::new("doc", "1").unwrap();
    let (found, _) = engine
        .lookup_subjects(&resource, "view", "user", None, &Context::new())
        .unwrap();
    assert_eq!(found[0].subject_id, "*");
    assert_eq!(found[0].excluded_ids, vec!["bob".to_string()]);
}

#[test]
fn deep_nesting_beyond_the_budget_is_an_error_not_a_no() {
    let mut rels = vec!["group:g0#member@user:ann".to_string()];
    for i in 1..60 {
        rels.push(format!("group:g{i}#member@group:g{}#member", i - 1));
    }
    rels.push("doc:1#viewer@group:g59#member".to_string());
    let refs: Vec<&str> = rels.iter().map(String::as_str).collect();
    let (engine, _dir) = engine_with(DOCS, &refs);
    let resource = ObjectRef::new("doc", "1").unwrap();
    let subject = SubjectRef::parse("user:ann").unwrap();
    let err = engine
        .check(&resource, "view", &subject, &Context::new())
        .unwrap_err();
    assert!(matches!(err, EngineError::MaxDepthExceeded(50)), "{err}");
    // Within the budget the same chain answers yes.
    assert_eq!(
        check(&engine, "group:g40#member@user:ann"),
        Permissionship::Has
    );
}

#[test]
fn membership_cycles_terminate() {
    let (engine, _dir) = engine_with(
        DOCS,
        &[
            "group:a#member@group:b#member",
            "group:b#member@group:a#member",
            "group:b#member@user:ann",
            "doc:1#viewer@group:a#member",
        ],
    );
    assert_eq!(check(&engine, "doc:1#view@user:ann"), Permissionship::Has);
    assert_eq!(check(&engine, "doc:1#view@user:bob"), Permissionship::No);
    let subject = SubjectRef::parse("user:ann").unwrap();
    let (found, _) = engine
        .lookup_resources("group", "member", &subject, &Context::new())
        .unwrap();
    let ids: Vec<&str> = found.iter().map(|(id, _)| id).collect();
    assert_eq!(ids, vec!["a", "b"]);
}

/// Two arrows through one relation whose targets overlap in every way (one's a subset of the
/// other's, neither, the same): the walk reuses an earlier read of `doc#project` only where
/// its targets are all among the new ones, and every answer stays exact.
#[test]
fn arrows_through_one_relation_reuse_reads_and_stay_exact() {
    let schema = "
definition user {}
definition project {
    relation editor: user
    relation viewer: user
    relation auditor: user
    permission edit = editor
    permission view = viewer + edit
    permission audit = auditor
}
definition doc {
    relation project: project
    permission edit = project->edit
    permission read = edit + project->view
    permission check = project->audit + project->view
    permission all = read + check + project->audit
}";
    let (engine, _dir) = engine_with(
        schema,
        &[
            "project:p1#editor@user:ann",
            "project:p2#viewer@user:ann",
            "project:p3#auditor@user:ann",
            "project:p4#viewer@user:bob",
            "doc:a#project@project:p1",
            "doc:b#project@project:p2",
            "doc:c#project@project:p3",
            "doc:d#project@project:p4",
            "doc:e#project@project:p1",
            "doc:e#project@project:p3",
        ],
    );
    let ann = SubjectRef::parse("user:ann").unwrap();
    for (permission, expected) in [
        ("edit", vec!["a", "e"]),
        ("read", vec!["a", "b", "e"]),
        ("check", vec!["a", "b", "c", "e"]),
        ("all", vec!["a", "b", "c", "e"]),
    ] {
        let (found, _) = engine
            .lookup_resources("doc", permission, &ann, &Context::new())
            .unwrap();
        let ids: Vec<&str> = found.iter().map(|(id, _)| id).collect();
        assert_eq!(ids, expected, "doc#{permission}");
    }
}

#[test]
fn checks_with_unknown_names_are_errors() {
    let (engine, _dir) = engine_with(DOCS, &[]);
    let subject = SubjectRef::parse("user:ann").unwrap();
    let err = engine
        .check(
            &ObjectRef::new("doc", "1").unwrap(),
            "edit",
            &subject,
            &Context::new(),
        )
        .unwrap_err();
    assert!(matches!(err, EngineError::UnknownRelation { .. }), "{err}");
    let err = engine
        .check(
            &ObjectRef::new("folder", "1").unwrap(),
            "view",
            &subject,
            &Context::new(),
        )
        .unwrap_err();
    assert!(matches!(err, EngineError::UnknownType(_)), "{err}");
}

// ---- property test: the engine against a naive reference evaluator ----

/// Leaves of the random `view` permission.
const LEAVES: &[&str] = &["viewer", "editor", "banned", "parent->view"];

const USERS: [&str; 3] = ["u0", "u1", "u2"];
const GROUPS: [&str; 3] = ["g0", "g1", "g2"];
const DOC_IDS: [&str; 3] = ["d0", "d1", "d2"];

/// A random relationship among a fixed small universe.
fn relationship() -> impl Strategy<Value = String> {
    let user = prop::sample::select(USERS.to_vec());
    let group = prop::sample::select(GROUPS.to_vec());
    let doc = prop::sample::select(DOC_IDS.to_vec());
    prop_oneof![
        (group.clone(), user.clone()).prop_map(|(g, u)| format!("group:{g}#member@user:{u}")),
        (group.clone(), group.clone())
            .prop_map(|(g, h)| format!("group:{g}#member@group:{h}#member")),
        (
            doc.clone(),
            prop::sample::select(vec!["viewer", "editor", "banned"]),
            user
        )
            .prop_map(|(d, r, u)| format!("doc:{d}#{r}@user:{u}")),
        (doc.clone(), prop::sample::select(vec!["viewer", "editor"]))
            .prop_map(|(d, r)| format!("doc:{d}#{r}@user:*")),
        (
            doc.clone(),
            prop::sample::select(vec!["viewer", "editor", "banned"]),
            group
        )
            .prop_map(|(d, r, g)| format!("doc:{d}#{r}@group:{g}#member")),
        (doc.clone(), doc).prop_map(|(d, p)| format!("doc:{d}#parent@doc:{p}")),
    ]
}

/// The obviously correct evaluator: group membership as a least fixed point, relations as
/// set look-ups, permissions by direct recursion (parent chains are acyclic by construction).
struct Reference {
    rels: BTreeSet<(String, String, String)>, // (resource, relation, subject)
    members: BTreeMap<String, BTreeSet<String>>,
    view: Expr,
}

impl Reference {
    fn new(rels: &[String], view: Expr) -> Self {
        let mut set = BTreeSet::new();
        for text in rels {
            let (resource, rest) = text.split_once('#').unwrap();
            let (relation, subject) = rest.split_once('@').unwrap();
            set.insert((
                resource.to_string(),
                relation.to_string(),
                subject.to_string(),
            ));
        }
        let mut members: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        loop {
            let mut changed = false;
            for g in GROUPS {
                let mut users: BTreeSet<String> = members.get(g).cloned().unwrap_or_default();
                for (r, rel, s) in &set {
                    if *r != format!("group:{g}") || rel != "member" {
                        continue;
                    }
                    if let Some(u) = s.strip_prefix("user:") {
                        changed |= users.insert(u.to_string());
                    } else if let Some(h) = s
                        .strip_prefix("group:")
                        .and_then(|s| s.strip_suffix("#member"))
                    {
                        for u in members.get(h).cloned().unwrap_or_default() {
                            changed |= users.insert(u);
                        }
                    }
                }
                members.insert(g.to_string(), users);
            }
            if !changed {
                break;
            }
        }
        Reference {
            rels: set,
            members,
            view,
        }
    }

    fn relation(&self, doc: &str, relation: &str, user: &str) -> bool {
        self.rels.iter().any(|(r, rel, s)| {
            *r == format!("doc:{doc}")
                && rel == relation
                && (*s == format!("user:{user}")
                    || s == "user:*"
                    || s.strip_prefix("group:")
                        .and_then(|s| s.strip_suffix("#member"))
                        .is_some_and(|g| self.members.get(g).is_some_and(|m| m.contains(user))))
        })
    }

    fn view(&self, expr: &Expr, doc: &str, user: &str, depth: usize) -> bool {
        match expr {
            Expr::Rel("parent->view") => {
                depth < 5
                    && self.rels.iter().any(|(r, rel, s)| {
                        *r == format!("doc:{doc}")
                            && rel == "parent"
                            && self.view(&self.view, s.trim_start_matches("doc:"), user, depth + 1)
                    })
            }
            Expr::Rel(r) => self.relation(doc, r, user),
            Expr::Union(a, b) => self.view(a, doc, user, depth) || self.view(b, doc, user, depth),
            Expr::Inter(a, b) => self.view(a, doc, user, depth) && self.view(b, doc, user, depth),
            Expr::Excl(a, b) => self.view(a, doc, user, depth) && !self.view(b, doc, user, depth),
        }
    }
}

/// Keeps only `doc:a#parent@doc:b` with a < b, so parent chains are acyclic.
fn acyclic(rels: Vec<String>) -> Vec<String> {
    let mut seen = BTreeSet::new();
    rels.into_iter()
        .filter(|r| {
            if let Some(rest) = r.strip_prefix("doc:") {
                if let Some((a, b)) = rest.split_once("#parent@doc:") {
                    return a < b;
                }
            }
            true
        })
        .filter(|r| seen.insert(r.clone()))
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, .. ProptestConfig::default() })]

    #[test]
    fn check_and_lookups_agree_with_reference(view in expr_over(LEAVES), rels in prop::collection::vec(relationship(), 0..14)) {
        let rels = acyclic(rels);
        let schema = format!(
            "definition user {{}}
             definition group {{ relation member: user | group#member }}
             definition doc {{
                 relation parent: doc
                 relation viewer: user | user:* | group#member
                 relation editor: user | user:* | group#member
                 relation banned: user | group#member
                 permission view = {}
             }}",
            view.text()
        );
        let refs: Vec<&str> = rels.iter().map(String::as_str).collect();
        let reference = Reference::new(&rels, view.clone());
        // Every configuration must agree with the reference, so with each other.
        for (config_name, config) in configs() {
            let (engine, _dir) = engine_with_config(&schema, &refs, config);
            for user in USERS {
                let subject = SubjectRef::parse(&format!("user:{user}")).unwrap();
                let (found, _) = engine.lookup_resources("doc", "view", &subject, &Context::new()).unwrap();
                let looked_up: BTreeSet<String> = found.into_iter().map(|(id, _)| id).collect();
                for doc in DOC_IDS {
                    let expected = reference.view(&view, doc, user, 0);
                    // Twice: the second answer may come from the cache.
                    for _ in 0..2 {
                        let actual = check(&engine, &format!("doc:{doc}#view@user:{user}"));
                        prop_assert_eq!(actual.is_has(), expected, "{}: check doc:{}#view@user:{} with view = {}", config_name, doc, user, view.text());
                    }
                    prop_assert_eq!(looked_up.contains(doc), expected, "{}: lookup-resources for {} with view = {}", config_name, doc, view.text());
                    let resource = ObjectRef::new("doc", doc).unwrap();
                    let (subjects, _) = engine.lookup_subjects(&resource, "view", "user", None, &Context::new()).unwrap();
                    let listed = subjects.iter().any(|s| s.subject_id == user || (s.subject_id == "*" && !s.excluded_ids.iter().any(|e| e == user)));
                    prop_assert_eq!(listed, expected, "{}: lookup-subjects for {} on {} with view = {}", config_name, user, doc, view.text());
                }
            }
        }
    }
}

#[test]
fn schema_change_removing_an_allowed_subject_type_in_use_is_refused() {
    let (engine, _dir) = engine_with(DOCS, &["doc:1#viewer@user:*", "doc:2#viewer@user:ann"]);
    let without_wildcard = DOCS.replace("user | user:* | group#member", "user | group#member");
    let err = engine.write_schema(&without_wildcard).unwrap_err();
    assert!(
        err.to_string()
            .contains("subject type `user:*` is still used by relationships on `doc#viewer`"),
        "{err}"
    );
    // Removing an allowed type nobody uses is fine.
    let without_groups = DOCS.replace("user | user:* | group#member", "user | user:*");
    engine.write_schema(&without_groups).unwrap();
}

const CAVEATED: &str = "
caveat only_ip(user_ip ipaddress, allowed string) { user_ip.in_cidr(allowed) }
definition user {}
definition doc {
    relation viewer: user | user with only_ip
    permission view = viewer
}";

#[test]
fn stored_caveat_context_is_checked_at_write() {
    let (engine, _dir) = engine_with(CAVEATED, &[]);
    let wrong_type = r#"doc:1#viewer@user:tom[only_ip:{"allowed":42}]"#;
    let err = engine
        .write_relationships(&[update(UpdateOp::Touch, wrong_type)], &[])
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("parameter `allowed` of caveat `only_ip` expects `string`"),
        "{err}"
    );
    let huge = format!(
        r#"doc:1#viewer@user:tom[only_ip:{{"allowed":"{}"}}]"#,
        "a".repeat(30_000)
    );
    let err = engine
        .write_relationships(&[update(UpdateOp::Touch, &huge)], &[])
        .unwrap_err();
    assert!(
        matches!(err, EngineError::StoredContextTooLarge { .. }),
        "{err}"
    );
    assert!(all_relationships(&engine).is_empty());
}

#[test]
fn caveat_decides_with_context_and_is_conditional_without() {
    let (engine, _dir) = engine_with(
        CAVEATED,
        &[r#"doc:1#viewer@user:tom[only_ip:{"allowed":"10.0.0.0/8"}]"#],
    );
    let resource = ObjectRef::new("doc", "1").unwrap();
    let tom = SubjectRef::parse("user:tom").unwrap();
    let with_ip = |ip: &str| {
        let mut context = Context::new();
        context.insert("user_ip".into(), serde_json::Value::String(ip.into()));
        engine
            .check(&resource, "view", &tom, &context)
            .unwrap()
            .permissionship
    };
    assert_eq!(with_ip("10.1.2.3"), Permissionship::Has);
    assert_eq!(with_ip("192.168.1.1"), Permissionship::No);
    assert_eq!(
        check(&engine, "doc:1#view@user:tom"),
        Permissionship::conditional(["user_ip".to_string()])
    );
}

const EXPIRING: &str = "
use expiration
definition user {}
definition doc {
    relation viewer: user with expiration
    permission view = viewer
}";

#[test]
fn expired_relationships_vanish_at_once_and_are_swept_in_the_background() {
    use std::sync::Arc;
    use zanzi::clock::FixedClock;
    use zanzi::engine::{Engine, EngineConfig};
    use zanzi::store::{RocksStore, StoreOptions};

    let start = zanzi::tuple::parse_expiration("2030-01-01T00:00:00Z").unwrap();
    let clock = Arc::new(FixedClock::new(start));
    let dir = tempfile::tempdir().unwrap();
    let store = RocksStore::open(
        dir.path(),
        StoreOptions {
            sync_writes: false,
            clock: clock.clone(),
            ..StoreOptions::default()
        },
    )
    .unwrap();
    let engine = Engine::new(Arc::new(store), EngineConfig::default()).unwrap();
    engine.write_schema(EXPIRING).unwrap();
    let rel = "doc:1#viewer@user:tom[expiration:2030-01-01T00:00:10Z]";
    engine
        .write_relationships(&[update(UpdateOp::Touch, rel)], &[])
        .unwrap();
    assert_eq!(check(&engine, "doc:1#view@user:tom"), Permissionship::Has);

    clock.set(zanzi::tuple::parse_expiration("2030-01-01T00:00:10Z").unwrap());
    assert_eq!(check(&engine, "doc:1#view@user:tom"), Permissionship::No);
    assert!(
        all_relationships(&engine).is_empty(),
        "reads hide it at once"
    );

    // The sweeper removes it from disk: the log records the delete.
    let head = engine.head_revision();
    let sweeper = engine
        .start_expiry_sweeper(std::time::Duration::from_millis(10))
        .unwrap();
    let mut swept = false;
    for _ in 0..500 {
        if engine.head_revision() > head {
            swept = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    drop(sweeper);
    assert!(swept, "the sweeper never removed the expired relationship");

    // TOUCH writes it again with a later expiration.
    let again = "doc:1#viewer@user:tom[expiration:2031-01-01T00:00:00Z]";
    engine
        .write_relationships(&[update(UpdateOp::Touch, again)], &[])
        .unwrap();
    assert_eq!(check(&engine, "doc:1#view@user:tom"), Permissionship::Has);
}

#[test]
fn consistency_selects_the_revision_a_query_reads() {
    use zanzi::revision::{Consistency, Revision};
    let (engine, _dir) = engine_with(DOCS, &["doc:1#viewer@user:tom"]);
    let before = engine.head_revision();
    engine
        .write_relationships(&[update(UpdateOp::Touch, "doc:1#banned@user:tom")], &[])
        .unwrap();
    let after = engine.head_revision();
    let doc = ObjectRef::parse("doc:1").unwrap();
    let tom = SubjectRef::parse("user:tom").unwrap();
    let view_at = |consistency| {
        engine
            .at(consistency)
            .unwrap()
            .check(&doc, "view", &tom, &Context::new())
            .unwrap()
    };
    let exact = view_at(Consistency::AtExactSnapshot(before));
    assert_eq!(exact.permissionship, Permissionship::Has);
    assert_eq!(exact.revision, before);
    let fresh = view_at(Consistency::AtLeastAsFresh(before));
    assert_eq!(fresh.permissionship, Permissionship::No);
    assert_eq!(fresh.revision, after);
    assert_eq!(
        view_at(Consistency::FullyConsistent).permissionship,
        Permissionship::No
    );
    let future = Revision(after.0 + 1);
    for consistency in [
        Consistency::AtLeastAsFresh(future),
        Consistency::AtExactSnapshot(future),
    ] {
        assert!(matches!(
            engine.at(consistency),
            Err(EngineError::FutureRevision { requested, head }) if requested == future && head == after
        ));
    }
}

/// A doc shared with 100 teams: checking it reads 100 rows, more than a short walk may take.
fn wide_doc() -> (zanzi::engine::Engine, tempfile::TempDir) {
    let schema = "definition user {}
definition team {
    relation member: user
}
definition doc {
    relation viewer: user | team#member
    permission view = viewer
}";
    let mut texts: Vec<String> = (0..100)
        .map(|i| format!("doc:wide#viewer@team:t{i:03}#member"))
        .collect();
    texts.push("team:t099#member@user:ann".to_string());
    texts.push("doc:narrow#viewer@user:ann".to_string());
    let texts: Vec<&str> = texts.iter().map(String::as_str).collect();
    engine_with(schema, &texts)
}

#[test]
fn a_step_limit_stops_a_long_walk_and_leaves_a_short_one_alone() {
    use zanzi::engine::Interrupt;
    use zanzi::revision::Consistency;
    let (engine, _dir) = wide_doc();
    let ann = SubjectRef::parse("user:ann").unwrap();
    let limited = || {
        engine
            .at(Consistency::FullyConsistent)
            .unwrap()
            .interrupted_by(Interrupt::never().with_step_limit(64))
    };
    let narrow = ObjectRef::parse("doc:narrow").unwrap();
    let short = limited().check(&narrow, "view", &ann, &Context::new());
    assert_eq!(short.unwrap().permissionship, Permissionship::Has);
    let wide = ObjectRef::parse("doc:wide").unwrap();
    let long = limited().check(&wide, "view", &ann, &Context::new());
    assert!(matches!(long, Err(EngineError::StepLimit(64))), "{long:?}");
    // Without the limit the same walk answers.
    let full = engine.check(&wide, "view", &ann, &Context::new()).unwrap();
    assert_eq!(full.permissionship, Permissionship::Has);
}
