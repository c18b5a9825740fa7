//! Imports through the store's bulk path: one revision, all or nothing, CREATE exact and TOUCH
//! overwriting, the bulk log followed by the cache, the group and arrow indexes and watch, and a crash at
//! any point of a large import (SIGKILL of `zanzi import`) leaving all of it or none.

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use zanzi::engine::{Context, Engine, EngineConfig, EngineError, Permissionship};
use zanzi::filter::RelationshipFilter;
use zanzi::store::{RocksStore, StoreOptions, TupleStore};
use zanzi::transaction::{ImportMode, UpdateOp};
use zanzi::tuple::{ObjectRef, Relationship, SubjectRef};

const SCHEMA: &str = "definition user {}
definition group {
    relation member: user | group#member
}
caveat flag(on bool) { on }
definition doc {
    relation viewer: user | user with flag | group#member
    relation owner: user
    permission view = viewer + owner
}";

fn rel(text: &str) -> Relationship {
    Relationship::parse(text).unwrap()
}

fn open(dir: &Path, config: EngineConfig) -> (Arc<dyn TupleStore>, Engine) {
    let store: Arc<dyn TupleStore> =
        Arc::new(RocksStore::open(dir, StoreOptions::default()).unwrap());
    let engine = Engine::new(Arc::clone(&store), config).unwrap();
    (store, engine)
}

fn everything(engine: &Engine) -> Vec<String> {
    engine
        .read_relationships(&RelationshipFilter::default(), None, None)
        .unwrap()
        .0
        .iter()
        .map(ToString::to_string)
        .collect()
}

fn import(
    engine: &Engine,
    texts: &[String],
    mode: ImportMode,
) -> Result<zanzi::engine::ImportOutcome, zanzi::engine::ImportError> {
    engine.import(
        texts
            .iter()
            .map(|t| Relationship::parse(t).map_err(EngineError::from)),
        mode,
    )
}

fn docs(prefix: &str, n: usize) -> Vec<String> {
    (0..n)
        .map(|i| format!("doc:{prefix}{i}#viewer@user:u{}", i % 97))
        .collect()
}

#[test]
fn an_import_is_one_revision_read_back_in_parts() {
    let dir = tempfile::tempdir().unwrap();
    let (store, engine) = open(dir.path(), EngineConfig::default());
    let schema_revision = engine.write_schema(SCHEMA).unwrap();
    let texts = docs("d", 10_000);
    let outcome = import(&engine, &texts, ImportMode::Create).unwrap();
    assert_eq!(outcome.loaded, 10_000);
    assert_eq!(outcome.revision, schema_revision.next());
    assert_eq!(store.head_revision(), outcome.revision);
    assert_eq!(everything(&engine).len(), 10_000);
    // The reverse index has them too.
    let (found, _) = engine
        .lookup_resources(
            "doc",
            "view",
            &SubjectRef::parse("user:u5").unwrap(),
            &Context::new(),
        )
        .unwrap();
    assert_eq!(
        found.len(),
        texts.iter().filter(|t| t.ends_with("@user:u5")).count()
    );

    let logged = engine.changes_since(schema_revision, 10).unwrap();
    assert_eq!(logged.len(), 1);
    let summary = logged[0].bulk.clone().expect("a bulk revision");
    assert!(logged[0].changes.is_empty());
    assert_eq!(summary.changes, 10_000);
    assert_eq!(summary.relations.len(), 1);
    assert_eq!(
        (
            summary.relations[0].resource_type.as_str(),
            summary.relations[0].relation.as_str()
        ),
        ("doc", "viewer")
    );
    assert_eq!(
        (
            summary.relations[0].first_part,
            summary.relations[0].last_part
        ),
        (1, summary.parts)
    );
    assert!(summary.parts > 1, "{summary:?}");
    let mut read_back = Vec::new();
    for part in 1..=summary.parts {
        for change in engine.bulk_changes(outcome.revision, part).unwrap() {
            assert_eq!(change.op, UpdateOp::Touch);
            read_back.push(change.relationship.to_string());
        }
    }
    let mut expected = texts.clone();
    expected.sort();
    read_back.sort();
    assert_eq!(read_back, expected);

    // Reopened, the store has it all, and the next write follows it.
    drop(engine);
    drop(store);
    let (store, engine) = open(dir.path(), EngineConfig::default());
    assert_eq!(store.head_revision(), outcome.revision);
    assert_eq!(everything(&engine).len(), 10_000);
    let next = engine
        .write_relationships(
            &[zanzi::transaction::Update {
                op: UpdateOp::Create,
                relationship: rel("doc:extra#viewer@user:u1"),
            }],
            &[],
        )
        .unwrap();
    assert_eq!(next, outcome.revision.next());
}

#[test]
fn a_failure_at_any_line_leaves_the_store_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let (store, engine) = open(dir.path(), EngineConfig::default());
    engine.write_schema(SCHEMA).unwrap();
    import(&engine, &docs("old", 30), ImportMode::Create).unwrap();
    let before = (store.head_revision(), everything(&engine));
    let good = docs("new", 40);
    type Bad = fn(usize) -> String;
    let bad_kinds: [(&str, Bad); 5] = [
        ("exists", |_| "doc:old7#viewer@user:u7".to_string()),
        ("duplicate", |i| {
            format!("doc:new{}#viewer@user:u{}", i - 1, (i - 1) % 97)
        }),
        ("unknown relation", |i| format!("doc:x{i}#editor@user:u1")),
        ("subject not allowed", |i| {
            format!("doc:x{i}#owner@group:g#member")
        }),
        ("malformed", |_| "doc:x#viewer".to_string()),
    ];
    for (kind, bad) in bad_kinds {
        for at in [1usize, 2, 17, 39] {
            let mut texts = good.clone();
            texts[at] = bad(at);
            let err = import(&engine, &texts, ImportMode::Create).unwrap_err();
            assert_eq!(err.item, Some(at as u64), "{kind} at {at}: {}", err.error);
            assert_eq!(
                (store.head_revision(), everything(&engine)),
                before,
                "{kind} at {at} changed the store"
            );
        }
    }
    // TOUCH writes over what exists; CREATE of the same refuses.
    let touched = vec![r#"doc:old7#viewer@user:u7[flag:{"on":true}]"#.to_string()];
    import(&engine, &touched, ImportMode::Touch).unwrap();
    let stored = engine
        .read_relationships(
            &RelationshipFilter {
                resource_type: Some("doc".into()),
                resource_id: Some("old7".into()),
                ..RelationshipFilter::default()
            },
            None,
            None,
        )
        .unwrap()
        .0;
    assert_eq!(stored, [rel(&touched[0])]);
    let err = import(&engine, &touched, ImportMode::Create).unwrap_err();
    assert!(
        err.error.to_string().contains("already exists"),
        "{}",
        err.error
    );
    // An empty import commits nothing.
    let head = store.head_revision();
    assert_eq!(import(&engine, &[], ImportMode::Create).unwrap().loaded, 0);
    assert_eq!(store.head_revision(), head);
}

#[test]
fn expired_relationships_count_as_absent_for_create() {
    let dir = tempfile::tempdir().unwrap();
    let (_store, engine) = open(dir.path(), EngineConfig::default());
    engine
        .write_schema(
            &SCHEMA
                .replace(
                    "user | user with flag",
                    "user with expiration | user with flag",
                )
                .replace("definition user {}", "use expiration\ndefinition user {}"),
        )
        .unwrap();
    let past = vec!["doc:1#viewer@user:tom[expiration:2000-01-01T00:00:00Z]".to_string()];
    import(&engine, &past, ImportMode::Create).unwrap();
    let now = vec!["doc:1#viewer@user:tom[expiration:2999-01-01T00:00:00Z]".to_string()];
    import(&engine, &now, ImportMode::Create).unwrap();
    assert_eq!(everything(&engine), now);
}

#[test]
fn the_cache_and_the_group_index_follow_an_import() {
    let dir = tempfile::tempdir().unwrap();
    let (store, engine) = open(dir.path(), EngineConfig::default());
    engine.write_schema(SCHEMA).unwrap();
    let doc = ObjectRef::parse("doc:top").unwrap();
    let ann = SubjectRef::parse("user:ann").unwrap();
    engine
        .write_relationships(
            &[zanzi::transaction::Update {
                op: UpdateOp::Create,
                relationship: rel("doc:top#viewer@group:g0#member"),
            }],
            &[],
        )
        .unwrap();
    // Cached: no.
    let check = |engine: &Engine| {
        engine
            .check(&doc, "view", &ann, &Context::new())
            .unwrap()
            .permissionship
    };
    assert_eq!(check(&engine), Permissionship::No);
    assert_eq!(check(&engine), Permissionship::No);
    // A chain of 30 nested groups down to ann, imported in one revision.
    let mut chain: Vec<String> = (1..30)
        .map(|i| format!("group:g{}#member@group:g{i}#member", i - 1))
        .collect();
    chain.push("group:g29#member@user:ann".to_string());
    chain.extend(docs("filler", 9_000));
    import(&engine, &chain, ImportMode::Create).unwrap();
    assert_eq!(check(&engine), Permissionship::Has);
    // Another engine over the same store (reading the log from its start) and the plain
    // walk agree.
    let plain = Engine::new(Arc::clone(&store), EngineConfig::plain()).unwrap();
    assert_eq!(check(&plain), Permissionship::Has);
    let (members, _) = engine
        .lookup_subjects(&doc, "view", "user", None, &Context::new())
        .unwrap();
    assert_eq!(members.len(), 1);
}

const FOLDERS_SCHEMA: &str = "definition user {}
definition folder {
    relation viewer: user
}
definition doc {
    relation folder: folder
    permission view = folder->viewer
}";

/// The documents `user:ann` can view, sorted.
fn viewable(engine: &Engine) -> Vec<String> {
    crate::support::resource_ids(engine, "doc", "view", "user:ann")
}

/// The ids `d{i}` of the 6,000 imported documents whose `i` passes `keep`, and `extra`, sorted.
fn docs_where(keep: impl Fn(usize) -> bool, extra: &[&str]) -> Vec<String> {
    let mut ids: Vec<String> = (0..6_000)
        .filter(|&i| keep(i))
        .map(|i| format!("d{i}"))
        .chain(extra.iter().map(|id| id.to_string()))
        .collect();
    ids.sort();
    ids
}

#[test]
fn lookups_across_arrows_follow_imports_writes_and_deletes() {
    let dir = tempfile::tempdir().unwrap();
    let (store, engine) = open(dir.path(), EngineConfig::default());
    engine.write_schema(FOLDERS_SCHEMA).unwrap();
    let plain = Engine::new(Arc::clone(&store), EngineConfig::plain()).unwrap();
    let write = |op: UpdateOp, text: &str| {
        engine
            .write_relationships(
                &[zanzi::transaction::Update {
                    op,
                    relationship: rel(text),
                }],
                &[],
            )
            .unwrap();
    };
    write(UpdateOp::Create, "folder:f0#viewer@user:ann");
    write(UpdateOp::Create, "doc:early#folder@folder:f0");
    assert_eq!(viewable(&engine), ["early"]);
    // 6,000 documents over 30 folders in one import; ann views folders f0 and f1.
    let mut texts: Vec<String> = (0..6_000)
        .map(|i| format!("doc:d{i}#folder@folder:f{}", i % 30))
        .collect();
    texts.push("folder:f1#viewer@user:ann".to_string());
    import(&engine, &texts, ImportMode::Create).unwrap();
    let expected = docs_where(|i| i % 30 < 2, &["early"]);
    assert_eq!(viewable(&engine), expected);
    assert_eq!(viewable(&plain), expected);
    // A document leaves its folder, another joins a second folder, a folder loses its viewer.
    write(UpdateOp::Delete, "doc:d0#folder@folder:f0");
    write(UpdateOp::Touch, "doc:d2#folder@folder:f0");
    write(UpdateOp::Delete, "folder:f1#viewer@user:ann");
    let expected = docs_where(|i| i % 30 == 0 && i != 0, &["early", "d2"]);
    assert_eq!(viewable(&engine), expected);
    assert_eq!(viewable(&plain), expected);
    // A TOUCH import that moves every tenth document of f0 to f5 as well, and gives ann f5.
    let mut moved: Vec<String> = (0..6_000)
        .step_by(300)
        .map(|i| format!("doc:d{i}#folder@folder:f5"))
        .collect();
    moved.push("folder:f5#viewer@user:ann".to_string());
    moved.push("doc:early#folder@folder:f0".to_string());
    import(&engine, &moved, ImportMode::Touch).unwrap();
    let expected = docs_where(|i| i % 30 == 0 || i % 30 == 5, &["early", "d2"]);
    assert_eq!(viewable(&engine), expected);
    assert_eq!(viewable(&plain), expected);
    // A new engine builds its index from the store as it is now.
    let reopened = Engine::new(Arc::clone(&store), EngineConfig::default()).unwrap();
    assert_eq!(viewable(&reopened), expected);
}

// ---- crash safety ----

fn zanzi() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_zanzi"));
    command
        .env_remove("ZANZI_DATA_DIR")
        .env("RUST_LOG", "error");
    command
}

fn write_lines(path: &Path, lines: &[String]) {
    std::fs::write(path, lines.join("\n")).unwrap();
}

/// How many relationships `doc:{prefix}*#viewer` the store holds, read from both indexes (they
/// must agree), and whether any is caveated.
fn count_both_ways(engine: &Engine, prefix: &str, users: usize) -> (usize, usize) {
    let forward = engine
        .read_relationships(
            &RelationshipFilter {
                resource_type: Some("doc".into()),
                resource_id_prefix: Some(prefix.into()),
                ..RelationshipFilter::default()
            },
            None,
            None,
        )
        .unwrap()
        .0;
    let mut reverse = 0;
    for u in 0..users {
        let subject = zanzi::filter::SubjectFilter {
            subject_type: "user".into(),
            subject_id: Some(format!("u{u}")),
            relation: None,
        };
        reverse += engine
            .read_relationships(
                &RelationshipFilter {
                    subject: Some(subject),
                    ..RelationshipFilter::default()
                },
                None,
                None,
            )
            .unwrap()
            .0
            .iter()
            .filter(|r| r.resource.object_id.starts_with(prefix))
            .count();
    }
    assert_eq!(
        forward.len(),
        reverse,
        "the two indexes disagree for `{prefix}`"
    );
    let caveated = forward.iter().filter(|r| r.caveat.is_some()).count();
    (forward.len(), caveated)
}

/// 20 rounds of `zanzi import` killed with SIGKILL at a random point (some while the import's
/// files are being built or ingested): after each, the reopened store holds all of the round's
/// relationships or none, in both indexes, with the head revision and the log to match, and
/// every earlier round intact. Odd rounds TOUCH the previous round's relationships with a
/// caveat, so a rollback must restore overwritten values too.
#[test]
fn an_import_killed_at_any_point_leaves_all_of_it_or_none() {
    const N: usize = 30_000;
    const USERS: usize = 7;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let schema_file = dir.path().join("schema.zed");
    std::fs::write(&schema_file, SCHEMA).unwrap();
    let status = zanzi()
        .args(["schema", "write"])
        .arg(&schema_file)
        .arg("--data-dir")
        .arg(&data)
        .output()
        .unwrap();
    assert!(status.status.success(), "{status:?}");

    // One uninterrupted import sets the time scale of the kills.
    // A round's file: its own relationships, or (touching) those of round `target`, caveated.
    let round_file = |round: usize, touching: Option<usize>| {
        let touch = touching.is_some();
        let prefix = touching.unwrap_or(round);
        let lines: Vec<String> = (0..N)
            .map(|i| {
                let base = format!("doc:r{prefix}x{i}#viewer@user:u{}", i % USERS);
                if touch {
                    format!("{base}[flag:{{\"on\":true}}]")
                } else {
                    base
                }
            })
            .collect();
        let path = dir.path().join(format!("round{round}.txt"));
        write_lines(&path, &lines);
        path
    };
    let timed = round_file(1000, None);
    let started = Instant::now();
    let mut child = zanzi()
        .arg("import")
        .arg(&timed)
        .arg("--data-dir")
        .arg(&data)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let work = data.join("store").join("import");
    let mut building = None;
    while child.try_wait().unwrap().is_none() {
        if building.is_none() && work.exists() {
            building = Some(started.elapsed());
        }
        std::thread::sleep(Duration::from_micros(200));
    }
    assert!(child.wait().unwrap().success());
    let full = started.elapsed();
    // Kills land from halfway through reading the file to just after the commit.
    let from = building.unwrap_or(full / 2) / 2;
    let span = (full * 3 / 2).saturating_sub(from);

    let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
    let mut random = move |below: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % below.max(1)
    };
    let mut committed: Vec<(usize, bool)> = Vec::new();
    let mut interrupted = 0;
    let mut rolled_back = 0;
    for round in 0..20 {
        // Odd rounds touch the last committed round that no round touched yet, if any.
        let touching = (round % 2 == 1)
            .then(|| {
                committed
                    .iter()
                    .rev()
                    .find(|(r, t)| !t && !committed.iter().any(|(o, ot)| *ot && *o == *r))
                    .map(|(r, _)| *r)
            })
            .flatten();
        let touch = touching.is_some();
        let file = round_file(round, touching);
        let (head_before, _) = {
            let (store, engine) = open(&data.join("store"), EngineConfig::plain());
            (store.head_revision(), engine)
        };
        let mut child = zanzi()
            .arg("import")
            .arg(&file)
            .args(if touch { &["--touch"][..] } else { &[][..] })
            .arg("--data-dir")
            .arg(&data)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = if round % 2 == 0 {
            // Even rounds: at a random moment between reading the file and the commit.
            let deadline = from + Duration::from_micros(random(span.as_micros() as u64));
            std::thread::sleep(deadline);
            deadline
        } else {
            // Odd rounds: as soon as ingestion is seen under way (the import's files leave its
            // work folder as they are ingested), after a random pause of up to 2 ms.
            let watching = Instant::now();
            let mut most = 0;
            while child.try_wait().unwrap().is_none() && watching.elapsed() < full * 3 {
                let files = std::fs::read_dir(&work).map_or(0, |d| d.count());
                if files < most {
                    std::thread::sleep(Duration::from_micros(random(2_000)));
                    break;
                }
                most = most.max(files);
                std::thread::sleep(Duration::from_micros(100));
            }
            watching.elapsed()
        };
        let finished = child.try_wait().unwrap().is_some();
        let _ = child.kill();
        let _ = child.wait();
        if !finished {
            interrupted += 1;
        }

        let rocks = RocksStore::open(&data.join("store"), StoreOptions::default()).unwrap();
        if rocks.rolled_back_import().is_some() {
            rolled_back += 1;
        }
        let store: Arc<dyn TupleStore> = Arc::new(rocks);
        let engine = Engine::new(Arc::clone(&store), EngineConfig::plain()).unwrap();
        let head = store.head_revision();
        let prefix = format!("r{}x", touching.unwrap_or(round));
        let (count, caveated) = count_both_ways(&engine, &prefix, USERS);
        let applied = if touch {
            assert_eq!(count, N, "round {round}: a touch import lost relationships");
            assert!(
                caveated == 0 || caveated == N,
                "round {round}: {caveated} of {N} touched"
            );
            caveated == N
        } else {
            assert!(
                count == 0 || count == N,
                "round {round}: {count} of {N} stored"
            );
            count == N
        };
        assert_eq!(
            head,
            if applied {
                head_before.next()
            } else {
                head_before
            },
            "round {round}: head revision"
        );
        let logged = store.changes_since(head_before, 10).unwrap();
        assert_eq!(logged.len(), usize::from(applied), "round {round}: log");
        if applied {
            assert_eq!(logged[0].bulk.as_ref().unwrap().changes, N as u64);
            committed.push((touching.unwrap_or(round), touch));
        }
        eprintln!(
            "round {round}: {} after {:?} (a full import takes {full:?})",
            if applied { "imported" } else { "rolled back" },
            deadline
        );
        assert!(
            !work.exists(),
            "round {round}: the import's work folder was left behind"
        );
        // Earlier committed rounds are intact.
        for (earlier, was_touch) in &committed {
            if *earlier == round || *was_touch {
                continue;
            }
            let (count, _) = count_both_ways(&engine, &format!("r{earlier}x"), USERS);
            assert_eq!(
                count, N,
                "round {round}: round {earlier} lost relationships"
            );
        }
    }
    eprintln!(
        "{interrupted} of 20 imports interrupted, {rolled_back} of them after their files began \
         to be ingested (rolled back at open)"
    );
    assert!(
        rolled_back > 0,
        "no kill landed while an import's files were being ingested"
    );
    assert!(
        interrupted > 0,
        "no round was interrupted: the kills came too late"
    );
}
