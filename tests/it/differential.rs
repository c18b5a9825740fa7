//! Differential testing against the real SpiceDB (v1.54, its embedded C library on the memory
//! datastore): random worlds (`world.rs`) go into SpiceDB and into zanzi (the in-process engine
//! on a temporary RocksDB store), and both answer the same checks, lookup-resources and
//! lookup-subjects; refusals are compared too. A mismatch is shrunk and written to
//! `tests/regressions/<hash>.yaml` with SpiceDB's answers, which the conformance test runs.
//!
//! `SPICEDB_LIB` names `libspicedb.so`; unset, `scripts/get-spicedb` fetches it. CI runs the
//! fixed seeds 1..=500; `ZANZI_DIFF_WORLDS=N ZANZI_DIFF_SEED=S` runs seeds S..S+N, in
//! `ZANZI_DIFF_JOBS` worker processes (2 by default).

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Map, Value};
use tempfile::TempDir;
use tonic::transport::Channel;
use zanzi::api::grpc::{json_to_struct, to_tree};
use zanzi::engine::{Engine, EngineConfig, Permissionship};
use zanzi::proto::v1::{
    self, check_bulk_permissions_pair, consistency::Requirement,
    permissions_service_client::PermissionsServiceClient, relationship_update::Operation,
};
use zanzi::store::{RocksStore, StoreOptions};
use zanzi::transaction::{Update, UpdateOp};
use zanzi::tuple::{ObjectRef, Relationship, SubjectRef};

use crate::spicedb::SpiceDb;
use crate::support::configs;
use crate::world::{Dice, SubjectKind, World, OBJECTS, STRANGER, USERS};

/// Worlds the CI run covers (seeds 1..=500).
const CI_WORLDS: u64 = 500;
/// Check items per CheckBulkPermissions call.
const BULK: usize = 100;

/// The path of SpiceDB's library: `SPICEDB_LIB`, or what `scripts/get-spicedb` installs.
fn library_path() -> String {
    if let Ok(path) = std::env::var("SPICEDB_LIB") {
        if !path.is_empty() {
            return path;
        }
    }
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scripts/get-spicedb");
    let output = std::process::Command::new(&script)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
    assert!(
        output.status.success(),
        "the differential test needs SpiceDB's library: {} failed: {}. Set SPICEDB_LIB to \
         libspicedb.so, or install npm (scripts/setup) so the script can fetch it.",
        script.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}

/// A subject of a query: `type:id` or `type:id#relation`.
#[derive(Debug, Clone, PartialEq)]
struct Subject {
    ty: String,
    id: String,
    relation: Option<String>,
}

impl Subject {
    fn text(&self) -> String {
        match &self.relation {
            Some(r) => format!("{}:{}#{r}", self.ty, self.id),
            None => format!("{}:{}", self.ty, self.id),
        }
    }

    fn zanzi(&self) -> SubjectRef {
        SubjectRef {
            object: ObjectRef::new_unchecked(&self.ty, &self.id),
            relation: self.relation.clone(),
        }
    }

    fn proto(&self) -> v1::SubjectReference {
        v1::SubjectReference {
            object: Some(proto_object(&self.ty, &self.id)),
            optional_relation: self.relation.clone().unwrap_or_default(),
        }
    }
}

/// One question put to both engines.
#[derive(Debug, Clone, PartialEq)]
enum Query {
    Check {
        resource_type: String,
        resource_id: String,
        member: String,
        subject: Subject,
        context: Option<Map<String, Value>>,
    },
    Resources {
        resource_type: String,
        member: String,
        subject: Subject,
        context: Option<Map<String, Value>>,
    },
    Subjects {
        resource_type: String,
        resource_id: String,
        member: String,
        subject_type: String,
        /// Subject sets of this relation (`group#member`) rather than plain objects.
        subject_relation: Option<String>,
        context: Option<Map<String, Value>>,
    },
    /// A shallow expand (what ExpandPermissionTree answers).
    Expand {
        resource_type: String,
        resource_id: String,
        member: String,
    },
}

impl Query {
    fn text(&self) -> String {
        let with = |c: &Option<Map<String, Value>>| match c {
            Some(c) => format!(" with {}", Value::Object(c.clone())),
            None => String::new(),
        };
        match self {
            Query::Check {
                resource_type,
                resource_id,
                member,
                subject,
                context,
            } => format!(
                "check {resource_type}:{resource_id}#{member}@{}{}",
                subject.text(),
                with(context)
            ),
            Query::Resources {
                resource_type,
                member,
                subject,
                context,
            } => format!(
                "lookup-resources {resource_type} {member} {}{}",
                subject.text(),
                with(context)
            ),
            Query::Subjects {
                resource_type,
                resource_id,
                member,
                subject_type,
                subject_relation,
                context,
            } => format!(
                "lookup-subjects {resource_type}:{resource_id} {member} {subject_type}{}{}",
                subject_relation
                    .as_ref()
                    .map_or(String::new(), |r| format!("#{r}")),
                with(context)
            ),
            Query::Expand {
                resource_type,
                resource_id,
                member,
            } => format!("expand {resource_type}:{resource_id} {member}"),
        }
    }

    fn context(&self) -> Option<&Map<String, Value>> {
        match self {
            Query::Check { context, .. }
            | Query::Resources { context, .. }
            | Query::Subjects { context, .. } => context.as_ref(),
            Query::Expand { .. } => None,
        }
    }
}

/// A normalised answer; refusals compare equal whatever their messages.
#[derive(Debug, Clone)]
enum Answer {
    Check(&'static str),
    Found(Vec<String>),
    /// An expand tree in the form of [`tree_text`], as answered and with trivial nodes
    /// simplified away ([`simplify`]); answers compare as answered.
    Tree {
        raw: String,
        simple: String,
        /// Simplified after [`drop_all_arrow_gaps`].
        gapless: String,
    },
    Refused(String),
}

impl PartialEq for Answer {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Answer::Check(a), Answer::Check(b)) => a == b,
            (Answer::Found(a), Answer::Found(b)) => a == b,
            (Answer::Tree { raw: a, .. }, Answer::Tree { raw: b, .. }) => a == b,
            (Answer::Refused(_), Answer::Refused(_)) => true,
            _ => false,
        }
    }
}

impl std::fmt::Display for Answer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Answer::Check(a) => write!(f, "{a}"),
            Answer::Found(ids) => write!(f, "[{}]", ids.join(", ")),
            Answer::Tree { raw, .. } => write!(f, "{raw}"),
            Answer::Refused(why) => write!(f, "refused ({why})"),
        }
    }
}

fn mark(id: &str, conditional: bool) -> String {
    if conditional {
        format!("{id}?")
    } else {
        id.to_string()
    }
}

fn zanzi_mark(id: &str, p: &Permissionship) -> String {
    mark(id, matches!(p, Permissionship::Conditional { .. }))
}

// ---------- the questions a world asks ----------

/// Every check the world mentions (resources of every type in the id pool, every member,
/// users, the stranger, plain objects and subject sets the schema allows), some with a
/// context; lookup-resources and lookup-subjects for the same members.
fn queries(world: &World, dice: &mut Dice) -> Vec<Query> {
    let mut subjects: Vec<Subject> = USERS
        .iter()
        .chain([STRANGER].iter())
        .map(|id| Subject {
            ty: "user".to_string(),
            id: id.to_string(),
            relation: None,
        })
        .collect();
    let plain_types: BTreeSet<String> = world
        .definitions
        .iter()
        .flat_map(|d| &d.relations)
        .flat_map(|r| &r.allowed)
        .filter(|a| a.kind == SubjectKind::Plain && a.subject_type != "user")
        .map(|a| a.subject_type.clone())
        // A definition naming `self` has its own objects as subjects.
        .chain(
            world
                .definitions
                .iter()
                .filter(|d| d.names_self())
                .map(|d| d.name.clone()),
        )
        .collect();
    for ty in &plain_types {
        subjects.extend(OBJECTS.iter().map(|id| Subject {
            ty: ty.clone(),
            id: id.to_string(),
            relation: None,
        }));
    }
    for (ty, member) in world.subject_sets() {
        subjects.extend(OBJECTS.iter().map(|id| Subject {
            ty: ty.clone(),
            id: id.to_string(),
            relation: Some(member.clone()),
        }));
    }
    let context = |dice: &mut Dice| {
        (!world.caveats.is_empty() && dice.chance(1, 4)).then(|| world.random_context(dice))
    };
    let mut out = Vec::new();
    for def in world.definitions.iter().filter(|d| d.name != "user") {
        for member in def.members() {
            for id in OBJECTS {
                for subject in &subjects {
                    out.push(Query::Check {
                        resource_type: def.name.clone(),
                        resource_id: id.to_string(),
                        member: member.clone(),
                        subject: subject.clone(),
                        context: context(dice),
                    });
                }
                for subject_type in std::iter::once("user".to_string()).chain(plain_types.clone()) {
                    out.push(Query::Subjects {
                        resource_type: def.name.clone(),
                        resource_id: id.to_string(),
                        member: member.clone(),
                        subject_type,
                        subject_relation: None,
                        context: context(dice),
                    });
                }
            }
            for subject in subjects.iter().filter(|s| s.relation.is_none()) {
                out.push(Query::Resources {
                    resource_type: def.name.clone(),
                    member: member.clone(),
                    subject: subject.clone(),
                    context: context(dice),
                });
            }
        }
    }
    // Expand for a sample: one object of the pool for each member, drawn after every other
    // question so the earlier draws stay what they were.
    for def in world.definitions.iter().filter(|d| d.name != "user") {
        for member in def.members() {
            let id = OBJECTS[dice.below(OBJECTS.len())];
            out.push(Query::Expand {
                resource_type: def.name.clone(),
                resource_id: id.to_string(),
                member: member.clone(),
            });
        }
    }
    // Lookup-subjects of subject sets (`team#member`) the schema allows, for one object per
    // member, drawn last for the same reason.
    let subject_sets = world.subject_sets();
    if !subject_sets.is_empty() {
        for def in world.definitions.iter().filter(|d| d.name != "user") {
            for member in def.members() {
                let id = OBJECTS[dice.below(OBJECTS.len())];
                for (ty, relation) in &subject_sets {
                    out.push(Query::Subjects {
                        resource_type: def.name.clone(),
                        resource_id: id.to_string(),
                        member: member.clone(),
                        subject_type: ty.clone(),
                        subject_relation: Some(relation.clone()),
                        context: context(dice),
                    });
                }
            }
        }
    }
    out
}

// ---------- both engines loaded with one world ----------

type Client = PermissionsServiceClient<Channel>;

/// The SpiceDB instance every world is loaded into in turn (one per test: its library starts
/// Go runtime threads, and starting an instance takes seconds).
struct Spice {
    db: Arc<SpiceDb>,
    client: Client,
    lib: String,
}

/// How long one SpiceDB call may take before the world counts as unanswered (SpiceDB v1.54
/// never returns on some recursive worlds). The slowest answered call of the CI seeds takes
/// well under a second in a debug build on a loaded machine.
const PATIENCE: Duration = Duration::from_secs(5);
/// Lookups in flight at once on SpiceDB's streaming socket.
const LOOKUPS_IN_FLIGHT: usize = 4;

/// SpiceDB gave no answer within [`PATIENCE`].
#[derive(Debug)]
struct Hung;

impl Spice {
    fn start(lib: &str, runtime: &tokio::runtime::Runtime) -> Spice {
        let db = SpiceDb::start(lib, &serde_json::json!({ "datastore": "memory" }))
            .unwrap_or_else(|e| panic!("starting SpiceDB: {e}"));
        let client = runtime
            .block_on(db.streaming_client())
            .unwrap_or_else(|e| panic!("SpiceDB's streaming socket: {e}"));
        Spice {
            db: Arc::new(db),
            client,
            lib: lib.to_string(),
        }
    }

    /// A fresh instance in place of one stuck in a call (the stuck call keeps the old one).
    fn restart(&mut self, runtime: &tokio::runtime::Runtime) {
        *self = Spice::start(&self.lib.clone(), runtime);
    }

    /// One call to the library, given up on after [`PATIENCE`].
    fn call<T: Send + 'static>(
        &self,
        f: impl FnOnce(&SpiceDb) -> T + Send + 'static,
    ) -> Result<T, Hung> {
        let db = self.db.clone();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(f(&db));
        });
        let answer = rx.recv_timeout(PATIENCE).map_err(|_| Hung)?;
        heartbeat();
        Ok(answer)
    }

    /// Deletes every relationship the previous world wrote, so the next schema can drop any
    /// definition.
    fn clear(&self) -> Result<(), Hung> {
        for resource_type in crate::world::RESOURCE_TYPES {
            let request = v1::DeleteRelationshipsRequest {
                relationship_filter: Some(v1::RelationshipFilter {
                    resource_type: resource_type.to_string(),
                    ..Default::default()
                }),
                ..Default::default()
            };
            // A type the current schema lacks is refused; there is nothing to delete then.
            let _ = self.call(move |db| db.delete_relationships(&request))?;
        }
        Ok(())
    }
}

/// zanzi holding one world, on its own RocksDB store.
struct Zanzi {
    engine: Engine,
    _dir: TempDir,
}

/// How loading a world went.
enum Loaded {
    Both(Box<Zanzi>),
    /// SpiceDB refused the schema: a generator defect (zanzi's answer alongside).
    SchemaRefused {
        spicedb: String,
        zanzi_refused: bool,
    },
    /// Both refused the relationships (compared, nothing more to ask).
    BothRefused,
    /// One side refused what the other took.
    Disagree(String),
    /// SpiceDB gave no answer.
    Hung,
}

fn load(world: &World, spice: &Spice, config: EngineConfig) -> Loaded {
    let schema = world.schema();
    if std::env::var_os("ZANZI_DIFF_TRACE").is_some() {
        eprintln!("{schema}\n{}", world.relationship_lines().join("\n"));
    }
    if spice.clear().is_err() {
        return Loaded::Hung;
    }
    let dir = tempfile::tempdir().unwrap();
    let store = RocksStore::open(dir.path(), StoreOptions::default()).unwrap();
    let engine = Engine::new(Arc::new(store), config).unwrap();
    let request = v1::WriteSchemaRequest {
        schema: schema.clone(),
    };
    let Ok(spice_schema) = spice.call(move |db| db.write_schema(&request)) else {
        return Loaded::Hung;
    };
    let zanzi_schema = engine.write_schema(&schema);
    match (&spice_schema, &zanzi_schema) {
        (Err(e), z) => {
            return Loaded::SchemaRefused {
                spicedb: e.clone(),
                zanzi_refused: z.is_err(),
            }
        }
        (Ok(_), Err(e)) => return Loaded::Disagree(format!("zanzi refused the schema: {e}")),
        (Ok(_), Ok(_)) => {}
    }
    let spice_write = if world.relationships.is_empty() {
        Ok(())
    } else {
        let request = v1::WriteRelationshipsRequest {
            updates: world
                .relationships
                .iter()
                .map(|r| v1::RelationshipUpdate {
                    operation: Operation::Touch as i32,
                    relationship: Some(proto_relationship(r)),
                })
                .collect(),
            ..Default::default()
        };
        match spice.call(move |db| db.write_relationships(&request).map(drop)) {
            Ok(result) => result,
            Err(Hung) => return Loaded::Hung,
        }
    };
    let zanzi_write = zanzi_write(&engine, world);
    match (spice_write, zanzi_write) {
        (Ok(()), Ok(())) => {}
        (Err(_), Err(_)) => return Loaded::BothRefused,
        (Ok(()), Err(e)) => {
            return Loaded::Disagree(format!("zanzi refused the relationships: {e}"))
        }
        (Err(e), Ok(())) => {
            return Loaded::Disagree(format!("SpiceDB refused the relationships: {e}"))
        }
    }
    Loaded::Both(Box::new(Zanzi { engine, _dir: dir }))
}

fn zanzi_write(engine: &Engine, world: &World) -> Result<(), String> {
    let mut updates = Vec::new();
    for line in world.relationship_lines() {
        updates.push(Update {
            op: UpdateOp::Touch,
            relationship: Relationship::parse(&line).map_err(|e| format!("{line}: {e}"))?,
        });
    }
    if updates.is_empty() {
        return Ok(());
    }
    engine
        .write_relationships(&updates, &[])
        .map(drop)
        .map_err(|e| e.to_string())
}

// ---------- SpiceDB's side ----------

fn proto_object(ty: &str, id: &str) -> v1::ObjectReference {
    v1::ObjectReference {
        object_type: ty.to_string(),
        object_id: id.to_string(),
    }
}

fn proto_relationship(r: &crate::world::Rel) -> v1::Relationship {
    v1::Relationship {
        resource: Some(proto_object(&r.resource_type, &r.resource_id)),
        relation: r.relation.clone(),
        subject: Some(v1::SubjectReference {
            object: Some(proto_object(&r.subject_type, &r.subject_id)),
            optional_relation: r.subject_relation.clone().unwrap_or_default(),
        }),
        optional_caveat: r
            .caveat
            .as_ref()
            .map(|(name, context)| v1::ContextualizedCaveat {
                caveat_name: name.clone(),
                context: (!context.is_empty()).then(|| json_to_struct(context)),
            }),
        optional_expires_at: r.expiration.map(|at| {
            let at = zanzi::tuple::parse_expiration(at).unwrap();
            prost_types::Timestamp {
                seconds: at.timestamp(),
                nanos: 0,
            }
        }),
    }
}

fn fully_consistent() -> Option<v1::Consistency> {
    Some(v1::Consistency {
        requirement: Some(Requirement::FullyConsistent(true)),
    })
}

fn check_answer(permissionship: i32) -> Answer {
    use v1::check_permission_response::Permissionship as P;
    match P::try_from(permissionship) {
        Ok(P::HasPermission) => Answer::Check("has"),
        Ok(P::NoPermission) => Answer::Check("no"),
        Ok(P::ConditionalPermission) => Answer::Check("conditional"),
        _ => Answer::Refused(format!("permissionship {permissionship}")),
    }
}

/// SpiceDB's answers to every check of `checks`, in order, through CheckBulkPermissions.
fn spicedb_checks(db: &SpiceDb, checks: &[Query]) -> Vec<Answer> {
    let mut out = Vec::new();
    for chunk in checks.chunks(BULK) {
        let items = chunk
            .iter()
            .map(|q| match q {
                Query::Check {
                    resource_type,
                    resource_id,
                    member,
                    subject,
                    context,
                } => v1::CheckBulkPermissionsRequestItem {
                    resource: Some(proto_object(resource_type, resource_id)),
                    permission: member.clone(),
                    subject: Some(subject.proto()),
                    context: context.as_ref().map(json_to_struct),
                },
                _ => unreachable!("only checks"),
            })
            .collect();
        let request = v1::CheckBulkPermissionsRequest {
            consistency: fully_consistent(),
            items,
            with_tracing: false,
        };
        match db.check_bulk_permissions(&request) {
            Ok(response) => {
                assert_eq!(response.pairs.len(), chunk.len(), "bulk check pairs");
                out.extend(response.pairs.into_iter().map(|pair| match pair.response {
                    Some(check_bulk_permissions_pair::Response::Item(item)) => {
                        check_answer(item.permissionship)
                    }
                    Some(check_bulk_permissions_pair::Response::Error(status)) => {
                        Answer::Refused(status.message)
                    }
                    None => Answer::Refused("no answer".to_string()),
                }));
            }
            // The whole batch refused (SpiceDB does so when one item runs out of depth).
            // Asking one at a time is no way out: single checks on such worlds can leave
            // SpiceDB v1.54 stuck for good, so every item counts as refused.
            Err(e) => out.extend(chunk.iter().map(|_| Answer::Refused(e.clone()))),
        }
    }
    out
}

/// Whether SpiceDB v1.54's CheckBulkPermissions answer to the check `q` is not what its own
/// CheckPermission answers for the same item, and the single check agrees with zanzi. Its bulk
/// check dispatches the items of one (type, permission, subject) together and can let one
/// resource's caveat reach another's answer (seed 11389: `folder:a#per0@folder:c#per1` is HAS
/// alone, CONDITIONAL in a batch beside `folder:b`, whose tupleset relationship lacks the
/// context `folder:a`'s has). True only when the single check answers exactly as zanzi.
fn spicedb_bulk_disagrees_with_its_check(spice: &Spice, q: &Query, zanzi: &Answer) -> bool {
    if !matches!(q, Query::Check { .. }) {
        return false;
    }
    let q = q.clone();
    matches!(spice.call(move |db| spicedb_single_check(db, &q)), Ok(single) if single == *zanzi)
}

/// SpiceDB's answers to every check of `checks`, in order, one CheckPermission call each: the
/// answers its bulk check should give (it does not always, see
/// [`spicedb_bulk_disagrees_with_its_check`]).
fn spicedb_single_checks(db: &SpiceDb, checks: &[Query]) -> Vec<Answer> {
    checks.iter().map(|q| spicedb_single_check(db, q)).collect()
}

/// SpiceDB's CheckPermission answer to the check `q`.
fn spicedb_single_check(db: &SpiceDb, q: &Query) -> Answer {
    let Query::Check {
        resource_type,
        resource_id,
        member,
        subject,
        context,
    } = q
    else {
        unreachable!("only checks")
    };
    let request = v1::CheckPermissionRequest {
        consistency: fully_consistent(),
        resource: Some(proto_object(resource_type, resource_id)),
        permission: member.clone(),
        subject: Some(subject.proto()),
        context: context.as_ref().map(json_to_struct),
        with_tracing: false,
    };
    match db.check_permission(&request) {
        Ok(response) => check_answer(response.permissionship),
        Err(e) => Answer::Refused(e),
    }
}

/// SpiceDB's answers to every expand of `expands`, in order (ExpandPermissionTree, one call
/// each).
fn spicedb_expands(db: &SpiceDb, expands: &[Query]) -> Vec<Answer> {
    expands
        .iter()
        .map(|q| {
            let Query::Expand {
                resource_type,
                resource_id,
                member,
            } = q
            else {
                unreachable!("only expands")
            };
            let request = v1::ExpandPermissionTreeRequest {
                consistency: fully_consistent(),
                resource: Some(proto_object(resource_type, resource_id)),
                permission: member.clone(),
            };
            match db.expand_permission_tree(&request) {
                Ok(response) => match response.tree_root {
                    Some(tree) => tree_answer(&tree),
                    None => Answer::Refused("no tree".to_string()),
                },
                Err(e) => Answer::Refused(e),
            }
        })
        .collect()
}

fn tree_answer(tree: &v1::PermissionRelationshipTree) -> Answer {
    Answer::Tree {
        raw: tree_text(tree),
        simple: tree_text(&simplify(tree)),
        gapless: tree_text(&simplify(&drop_all_arrow_gaps(tree))),
    }
}

/// SpiceDB's expand of an `.all()` arrow puts an empty leaf, named like the arrow's own node,
/// into the intersection for each subject of the arrow's relation whose type lacks the
/// relation the arrow names, so the intersection is empty; its check leaves such subjects
/// out, as zanzi's check and expand do (`rel0.all(rel0)` with `team:c#rel0@user:bob` and
/// `team:c#rel0@folder:c#rel0`). This takes exactly those leaves out of intersections; an
/// intersection made only of them, or of nothing (an `.all()` with no target that has the
/// relation, or with no subject at all, which zanzi writes as one empty leaf named like the
/// arrow) becomes such a leaf itself, from the leaves up. Both trees go through it: `nil` in `a & nil` is such a leaf in both.
fn drop_all_arrow_gaps(tree: &v1::PermissionRelationshipTree) -> v1::PermissionRelationshipTree {
    use v1::algebraic_subject_set::Operation;
    use v1::permission_relationship_tree::TreeType;
    let Some(TreeType::Intermediate(set)) = &tree.tree_type else {
        return tree.clone();
    };
    let intersection = Operation::try_from(set.operation) == Ok(Operation::Intersection);
    let gap = |c: &v1::PermissionRelationshipTree| {
        intersection
            && c.expanded_object == tree.expanded_object
            && c.expanded_relation == tree.expanded_relation
            && matches!(&c.tree_type, Some(TreeType::Leaf(leaf)) if leaf.subjects.is_empty())
    };
    let children: Vec<v1::PermissionRelationshipTree> = set
        .children
        .iter()
        .map(drop_all_arrow_gaps)
        .filter(|c| !gap(c))
        .collect();
    // An intersection of no children at all is how SpiceDB writes an `.all()` over no subject.
    let tree_type = if intersection && children.is_empty() {
        TreeType::Leaf(v1::DirectSubjectSet::default())
    } else {
        TreeType::Intermediate(v1::AlgebraicSubjectSet {
            operation: set.operation,
            children,
        })
    };
    v1::PermissionRelationshipTree {
        tree_type: Some(tree_type),
        expanded_object: tree.expanded_object.clone(),
        expanded_relation: tree.expanded_relation.clone(),
    }
}

/// The tree without its trivial nodes, which SpiceDB writes and zanzi leaves out: an empty
/// leaf is one unnamed empty node, and a union drops it (SpiceDB's arrow gives one for each
/// subject whose type lacks the arrow's relation); a union or intersection of one child
/// (SpiceDB wraps every permission's expression in one) is that child, and a union or
/// intersection of none (SpiceDB's `nil` is an intersection of none) is the empty node. Each
/// rule keeps the tree's meaning.
fn simplify(tree: &v1::PermissionRelationshipTree) -> v1::PermissionRelationshipTree {
    use v1::algebraic_subject_set::Operation;
    use v1::permission_relationship_tree::TreeType;
    let empty = || v1::PermissionRelationshipTree {
        tree_type: Some(TreeType::Leaf(v1::DirectSubjectSet::default())),
        expanded_object: None,
        expanded_relation: String::new(),
    };
    let set = match &tree.tree_type {
        Some(TreeType::Intermediate(set)) => set,
        Some(TreeType::Leaf(leaf)) if leaf.subjects.is_empty() => return empty(),
        _ => return tree.clone(),
    };
    let mut children: Vec<v1::PermissionRelationshipTree> =
        set.children.iter().map(simplify).collect();
    let operation = Operation::try_from(set.operation);
    let is_empty_leaf = |t: &v1::PermissionRelationshipTree| matches!(&t.tree_type, Some(TreeType::Leaf(leaf)) if leaf.subjects.is_empty());
    if operation == Ok(Operation::Union) {
        children.retain(|c| !is_empty_leaf(c));
    }
    if matches!(operation, Ok(Operation::Union | Operation::Intersection)) {
        match children.len() {
            0 => return empty(),
            1 => return children.pop().unwrap_or_default(),
            _ => {}
        }
    }
    v1::PermissionRelationshipTree {
        tree_type: Some(TreeType::Intermediate(v1::AlgebraicSubjectSet {
            operation: set.operation,
            children,
        })),
        expanded_object: tree.expanded_object.clone(),
        expanded_relation: tree.expanded_relation.clone(),
    }
}

/// An expand tree as text, the same for trees that differ only in order where order carries
/// no meaning: each node names the object and relation it expands; a leaf's subjects and the
/// children of a union or intersection are sorted; an exclusion keeps its order (base first).
fn tree_text(tree: &v1::PermissionRelationshipTree) -> String {
    use v1::algebraic_subject_set::Operation;
    use v1::permission_relationship_tree::TreeType;
    let label = match &tree.expanded_object {
        Some(o) => format!(
            "{}:{}#{}",
            o.object_type, o.object_id, tree.expanded_relation
        ),
        None => String::new(),
    };
    match &tree.tree_type {
        Some(TreeType::Leaf(leaf)) => {
            let mut subjects: Vec<String> = leaf
                .subjects
                .iter()
                .map(|s| {
                    let (ty, id) = s
                        .object
                        .as_ref()
                        .map_or(("?", "?"), |o| (&o.object_type, &o.object_id));
                    if s.optional_relation.is_empty() {
                        format!("{ty}:{id}")
                    } else {
                        format!("{ty}:{id}#{}", s.optional_relation)
                    }
                })
                .collect();
            subjects.sort();
            format!("{label}[{}]", subjects.join(" "))
        }
        Some(TreeType::Intermediate(set)) => {
            let mut children: Vec<String> = set.children.iter().map(tree_text).collect();
            let operation = match Operation::try_from(set.operation) {
                Ok(Operation::Union) => {
                    children.sort();
                    "union"
                }
                Ok(Operation::Intersection) => {
                    children.sort();
                    "intersection"
                }
                Ok(Operation::Exclusion) => "exclusion",
                _ => "unknown",
            };
            format!("{label} {operation}({})", children.join(", "))
        }
        None => format!("{label} empty"),
    }
}

fn lookup_mark(permissionship: i32) -> bool {
    permissionship == v1::LookupPermissionship::ConditionalPermission as i32
}

async fn spicedb_lookup(client: &mut Client, q: &Query) -> Answer {
    let result: Result<Vec<String>, tonic::Status> = async {
        let mut found = Vec::new();
        match q {
            Query::Resources {
                resource_type,
                member,
                subject,
                context,
            } => {
                let request = v1::LookupResourcesRequest {
                    consistency: fully_consistent(),
                    resource_object_type: resource_type.clone(),
                    permission: member.clone(),
                    subject: Some(subject.proto()),
                    context: context.as_ref().map(json_to_struct),
                    ..Default::default()
                };
                let mut stream = client.lookup_resources(request).await?.into_inner();
                while let Some(item) = stream.message().await? {
                    found.push(mark(
                        &item.resource_object_id,
                        lookup_mark(item.permissionship),
                    ));
                }
            }
            Query::Subjects {
                resource_type,
                resource_id,
                member,
                subject_type,
                subject_relation,
                context,
            } => {
                let request = v1::LookupSubjectsRequest {
                    consistency: fully_consistent(),
                    resource: Some(proto_object(resource_type, resource_id)),
                    permission: member.clone(),
                    subject_object_type: subject_type.clone(),
                    optional_subject_relation: subject_relation.clone().unwrap_or_default(),
                    context: context.as_ref().map(json_to_struct),
                    ..Default::default()
                };
                let mut stream = client.lookup_subjects(request).await?.into_inner();
                while let Some(item) = stream.message().await? {
                    let Some(subject) = item.subject else {
                        continue;
                    };
                    let mut text = mark(
                        &subject.subject_object_id,
                        lookup_mark(subject.permissionship),
                    );
                    let mut excluded: Vec<String> = item
                        .excluded_subjects
                        .iter()
                        .map(|e| mark(&e.subject_object_id, lookup_mark(e.permissionship)))
                        .collect();
                    if !excluded.is_empty() {
                        excluded.sort();
                        text = format!("{text}-[{}]", excluded.join(","));
                    }
                    found.push(text);
                }
            }
            Query::Check { .. } | Query::Expand { .. } => unreachable!("not a lookup"),
        }
        Ok(found)
    }
    .await;
    match result {
        // SpiceDB streams a resource once per path that reaches it: an unconditional answer
        // and a conditional one for the same id mean the id is in, unconditionally.
        Ok(found) if matches!(q, Query::Resources { .. }) => {
            let has: BTreeSet<String> = found
                .iter()
                .filter(|f| !f.ends_with('?'))
                .cloned()
                .collect();
            let mut found: Vec<String> = found
                .into_iter()
                .filter(|f| f.strip_suffix('?').is_none_or(|id| !has.contains(id)))
                .collect();
            found.sort();
            found.dedup();
            Answer::Found(found)
        }
        // SpiceDB streams a subject once per path too (`[*, *?]`): a conditional entry beside
        // the same entry unconditional (same exclusions) is the unconditional one.
        Ok(found) => {
            let has: BTreeSet<String> = found
                .iter()
                .filter(|f| !is_conditional(f))
                .cloned()
                .collect();
            let mut found: Vec<String> = found
                .into_iter()
                .filter(|f| !is_conditional(f) || !has.contains(&unconditional(f)))
                .collect();
            found.sort();
            found.dedup();
            Answer::Found(found)
        }
        Err(status) => Answer::Refused(status.message().to_string()),
    }
}

/// Whether a lookup-subjects entry (`id`, `id?`, `*-[ann]`, `*?-[ann]`) is conditional.
fn is_conditional(entry: &str) -> bool {
    let head = entry.split_once("-[").map_or(entry, |(head, _)| head);
    head.ends_with('?')
}

/// The same lookup-subjects entry without its conditional mark.
fn unconditional(entry: &str) -> String {
    match entry.split_once("-[") {
        Some((head, rest)) => format!("{}-[{rest}", head.trim_end_matches('?')),
        None => entry.trim_end_matches('?').to_string(),
    }
}

// ---------- zanzi's side ----------

fn zanzi_answer(engine: &Engine, q: &Query) -> Answer {
    let empty = Map::new();
    let context = q.context().unwrap_or(&empty);
    let result = match q {
        Query::Check {
            resource_type,
            resource_id,
            member,
            subject,
            ..
        } => engine
            .check(
                &ObjectRef::new_unchecked(resource_type, resource_id),
                member,
                &subject.zanzi(),
                context,
            )
            .map(|r| {
                Answer::Check(match r.permissionship {
                    Permissionship::Has => "has",
                    Permissionship::No => "no",
                    Permissionship::Conditional { .. } => "conditional",
                })
            }),
        Query::Resources {
            resource_type,
            member,
            subject,
            ..
        } => engine
            .lookup_resources(resource_type, member, &subject.zanzi(), context)
            .map(|(found, _)| {
                let mut ids: Vec<String> = found.iter().map(|(id, p)| zanzi_mark(id, p)).collect();
                ids.sort();
                ids.dedup();
                Answer::Found(ids)
            }),
        Query::Subjects {
            resource_type,
            resource_id,
            member,
            subject_type,
            subject_relation,
            ..
        } => engine
            .lookup_subjects(
                &ObjectRef::new_unchecked(resource_type, resource_id),
                member,
                subject_type,
                subject_relation.as_deref(),
                context,
            )
            .map(|(found, _)| {
                let mut ids: Vec<String> = found
                    .iter()
                    .map(|s| {
                        let text = zanzi_mark(&s.subject_id, &s.permissionship);
                        if s.excluded_ids.is_empty() {
                            text
                        } else {
                            let mut excluded = s.excluded_ids.clone();
                            excluded.sort();
                            format!("{text}-[{}]", excluded.join(","))
                        }
                    })
                    .collect();
                ids.sort();
                ids.dedup();
                Answer::Found(ids)
            }),
        Query::Expand {
            resource_type,
            resource_id,
            member,
        } => engine
            .expand(
                &ObjectRef::new_unchecked(resource_type, resource_id),
                member,
                false,
            )
            .map(|(tree, _)| tree_answer(&to_tree(&tree))),
    };
    result.unwrap_or_else(|e| Answer::Refused(e.to_string()))
}

// ---------- SpiceDB v1.54's known bugs ----------

/// SpiceDB v1.54 builds its direct-subject query for a relation as if no allowed type had
/// expiration or a caveat when the relation also allows a subject set of the same type
/// (`team with expiration | team#member`, or `team with c | team#member`): a check on the
/// plain `team:x` then counts an expired relationship, or misses a caveated one. True when the
/// query's subject type is such a type and the world holds such a relationship.
fn spicedb_known_bug(world: &World, q: &Query) -> bool {
    let subject_type = match q {
        Query::Check { subject, .. } | Query::Resources { subject, .. } => {
            if subject.relation.is_some() {
                return false;
            }
            subject.ty.as_str()
        }
        Query::Subjects {
            subject_type,
            subject_relation: None,
            ..
        } => subject_type.as_str(),
        Query::Subjects { .. } | Query::Expand { .. } => return false,
    };
    world.definitions.iter().any(|def| {
        def.relations.iter().any(|relation| {
            let plain_with_extra = relation.allowed.iter().any(|a| {
                a.subject_type == subject_type
                    && a.kind == SubjectKind::Plain
                    && (a.caveat.is_some() || a.expiration)
            });
            let set_of_same_type = relation
                .allowed
                .iter()
                .any(|a| a.subject_type == subject_type && matches!(a.kind, SubjectKind::Set(_)));
            plain_with_extra
                && set_of_same_type
                && world.relationships.iter().any(|r| {
                    r.resource_type == def.name
                        && r.relation == relation.name
                        && r.subject_type == subject_type
                        && r.subject_relation.is_none()
                        && (r.caveat.is_some() || r.expiration.is_some())
                })
        })
    })
}

/// SpiceDB v1.54 also counts an expired relationship whose subject is a subject set when the
/// check asks for exactly that subject set (`team:b#rel1@team:c#per1[expiration:2020-...]`,
/// `rel1: team#rel0 with c | team#per1 with expiration`: check `team:b#rel1@team:c#per1` is
/// HAS; CONDITIONAL when that relationship also carries a caveat, seed 3792; NO when the
/// relation is excluded, `rel2 - rel1`, seed 16917). True for a check on a subject set that
/// such an expired relationship names when zanzi, on the world with those relationships
/// unexpired (as SpiceDB reads them), answers exactly what SpiceDB answered.
fn spicedb_expired_subject_set(world: &World, q: &Query, spice: &Answer) -> bool {
    let Query::Check { subject, .. } = q else {
        return false;
    };
    if subject.relation.is_none() {
        return false;
    }
    let mut as_spicedb_reads = world.clone();
    let mut unexpired = false;
    for r in &mut as_spicedb_reads.relationships {
        if r.expiration == Some(crate::world::PAST)
            && r.subject_type == subject.ty
            && r.subject_id == subject.id
            && r.subject_relation == subject.relation
        {
            r.expiration = Some(crate::world::FUTURE);
            unexpired = true;
        }
    }
    if !unexpired {
        return false;
    }
    let dir = tempfile::tempdir().unwrap();
    let store = RocksStore::open(dir.path(), StoreOptions::default()).unwrap();
    let engine = Engine::new(Arc::new(store), EngineConfig::default()).unwrap();
    if engine.write_schema(&world.schema()).is_err()
        || zanzi_write(&engine, &as_spicedb_reads).is_err()
    {
        return false;
    }
    zanzi_answer(&engine, q) == *spice
}

/// SpiceDB has no cycle detection: a walk that meets the same (object, relation) again goes
/// round until its depth budget runs out and refuses the query ("max depth exceeded"), where
/// zanzi cuts the cycle (a pair already on the path contributes "no": the least fixed point)
/// and answers. True when SpiceDB refused for depth and the world's relationships hold a
/// cycle (an object reachable from itself through relationship subjects).
fn depth_on_cyclic_data(world: &World, spice: &Answer) -> bool {
    let Answer::Refused(why) = spice else {
        return false;
    };
    if !why.contains("max depth exceeded") {
        return false;
    }
    type Object<'a> = (&'a str, &'a str);
    let edges: Vec<(Object, Object)> = world
        .relationships
        .iter()
        .map(|r| {
            (
                (r.resource_type.as_str(), r.resource_id.as_str()),
                (r.subject_type.as_str(), r.subject_id.as_str()),
            )
        })
        .collect();
    // Peel off objects with no outgoing edge until nothing changes: what is left is cyclic.
    let mut live = edges;
    loop {
        let sources: BTreeSet<Object> = live.iter().map(|(from, _)| *from).collect();
        let before = live.len();
        live.retain(|(_, to)| sources.contains(to));
        if live.len() == before {
            return !live.is_empty();
        }
    }
}

/// SpiceDB's lookups sometimes disagree with its own checks: lookup-resources leaves out a
/// resource its check answers CONDITIONAL for (`permission p = r - r` over a caveated `r`), and
/// lookup-subjects lists a subject its check answers NO for (`rel.all(rel)` where `rel` holds
/// a user, which has no `rel`, beside a subject set; with a wildcard, `rel0 - rel2.all(rel1)`
/// excludes such a user from `*`). True when zanzi's lookup answer is exactly what SpiceDB's
/// checks say, object by object; a wildcard answer of lookup-subjects counts only for `user`,
/// whose pool holds a user no relationship names (what the wildcard claims is checked on it).
///
/// An object whose check SpiceDB refuses for depth on cyclic data (difference 3) is left out
/// of the comparison (seed 4572: `rel0 - rel0` beside a cycle of `folder#rel0`); any other
/// refusal ends it.
fn spicedb_lookup_disagrees_with_its_check(
    world: &World,
    spice: &Spice,
    q: &Query,
    zanzi: &Answer,
) -> bool {
    let (ids, checks): (Vec<String>, Vec<Query>) = match q {
        Query::Resources {
            resource_type,
            member,
            subject,
            context,
        } => OBJECTS
            .iter()
            .map(|id| {
                (
                    id.to_string(),
                    Query::Check {
                        resource_type: resource_type.clone(),
                        resource_id: id.to_string(),
                        member: member.clone(),
                        subject: subject.clone(),
                        context: context.clone(),
                    },
                )
            })
            .unzip(),
        Query::Subjects {
            resource_type,
            resource_id,
            member,
            subject_type,
            subject_relation,
            context,
        } => {
            let pool: Vec<&str> = if subject_type == "user" && subject_relation.is_none() {
                USERS.iter().chain([STRANGER].iter()).copied().collect()
            } else {
                OBJECTS.to_vec()
            };
            pool.iter()
                .map(|id| {
                    (
                        id.to_string(),
                        Query::Check {
                            resource_type: resource_type.clone(),
                            resource_id: resource_id.clone(),
                            member: member.clone(),
                            subject: Subject {
                                ty: subject_type.clone(),
                                id: id.to_string(),
                                relation: subject_relation.clone(),
                            },
                            context: context.clone(),
                        },
                    )
                })
                .unzip()
        }
        Query::Check { .. } | Query::Expand { .. } => return false,
    };
    let Answer::Found(found) = zanzi else {
        return false;
    };
    // What zanzi's answer says about each id of the pool, in the form of `expected` below.
    let zanzi_says = if found.iter().any(|f| f.starts_with('*')) {
        match q {
            Query::Subjects {
                subject_type,
                subject_relation: None,
                ..
            } if subject_type == "user" => match subjects_membership(zanzi, subject_type) {
                Some(says) => says,
                None => return false,
            },
            _ => return false,
        }
    } else {
        found.clone()
    };
    // Its single checks: its bulk check can share one resource's caveat with another's
    // answer as its lookups do (seed 655: `team:b` is CONDITIONAL in both, HAS alone).
    let Ok(answers) = spice.call(move |db| spicedb_single_checks(db, &checks)) else {
        return false;
    };
    let mut expected = Vec::new();
    let mut left_out = BTreeSet::new();
    for (id, answer) in ids.iter().zip(answers) {
        match answer {
            Answer::Check("has") => expected.push(id.clone()),
            Answer::Check("conditional") => expected.push(format!("{id}?")),
            Answer::Check(_) => {}
            refused @ Answer::Refused(_) if depth_on_cyclic_data(world, &refused) => {
                left_out.insert(id.clone());
            }
            Answer::Found(_) | Answer::Tree { .. } | Answer::Refused(_) => return false,
        }
    }
    expected.sort();
    let mut zanzi_says: Vec<String> = zanzi_says
        .into_iter()
        .filter(|entry| !left_out.contains(entry.trim_end_matches('?')))
        .collect();
    zanzi_says.sort();
    zanzi_says == expected
}

/// What a lookup-subjects answer says about each id of the pool: `has`, `conditional` or
/// absent. SpiceDB lists a concrete subject with its own path's caveat beside a wildcard that
/// already grants it (`[*, ann?]` where zanzi says `[*, ann]`), and leaves out one that only
/// the wildcard grants; both say the same about every subject.
fn subjects_membership(answer: &Answer, subject_type: &str) -> Option<Vec<String>> {
    let Answer::Found(found) = answer else {
        return None;
    };
    let pool: Vec<&str> = if subject_type == "user" {
        USERS.iter().chain([STRANGER].iter()).copied().collect()
    } else {
        OBJECTS.to_vec()
    };
    let mut wildcards: Vec<(bool, Vec<String>)> = Vec::new();
    let mut listed = std::collections::BTreeMap::new();
    for item in found {
        let (head, excluded) = match item.split_once("-[") {
            Some((head, rest)) => (
                head,
                rest.trim_end_matches(']')
                    .split(',')
                    .map(str::to_string)
                    .collect(),
            ),
            None => (item.as_str(), Vec::new()),
        };
        let (id, conditional) = match head.strip_suffix('?') {
            Some(id) => (id, true),
            None => (head, false),
        };
        if id == "*" {
            wildcards.push((conditional, excluded));
        } else {
            listed.insert(id.to_string(), conditional);
        }
    }
    let mut out = Vec::new();
    for id in pool {
        let by_list = listed.get(id).map(|c| if *c { 1 } else { 2 }).unwrap_or(0);
        let by_wildcard = wildcards
            .iter()
            .map(|(conditional, excluded)| {
                if excluded.iter().any(|e| e == id) {
                    0
                } else if excluded.iter().any(|e| e == &format!("{id}?")) || *conditional {
                    1
                } else {
                    2
                }
            })
            .max()
            .unwrap_or(0);
        match by_list.max(by_wildcard) {
            2 => out.push(id.to_string()),
            1 => out.push(format!("{id}?")),
            _ => {}
        }
    }
    Some(out)
}

/// Two expand trees that are the same once [`simplify`] has taken out the trivial nodes.
fn same_simplified_tree(spice: &Answer, zanzi: &Answer) -> bool {
    matches!(
        (spice, zanzi),
        (Answer::Tree { simple: a, .. }, Answer::Tree { simple: b, .. }) if a == b
    )
}

/// Two expand trees that are the same once empty leaves named like their intersection
/// ([`drop_all_arrow_gaps`]) and the trivial nodes are out, in a world whose schema has an
/// `.all()` arrow.
fn same_without_all_arrow_gaps(world: &World, spice: &Answer, zanzi: &Answer) -> bool {
    world.schema().contains(".all(")
        && matches!(
            (spice, zanzi),
            (Answer::Tree { gapless: a, .. }, Answer::Tree { gapless: b, .. }) if a == b
        )
}

/// SpiceDB v1.54's LookupResources fails with an internal error on some schemas naming `self`
/// ("BUG: ... cannot call HintForEntrypoint for kind SELF_ENTRYPOINT", seeds 1183 and 11319).
fn spicedb_self_lookup_bug(world: &World, spice: &Answer) -> bool {
    matches!(spice, Answer::Refused(why) if why.contains("HintForEntrypoint for kind SELF_ENTRYPOINT"))
        && world.definitions.iter().any(|d| d.names_self())
}

/// Why SpiceDB's answer differs from zanzi's when SpiceDB's own single checks side with zanzi:
/// its lookups or bulk check disagreeing with its check (differences 4 and 8), or its lookup
/// failing on `self` where its checks answer (9). Asks SpiceDB, so only for answers that differ.
fn spicedb_disagrees_with_itself(
    world: &World,
    spice: &Spice,
    q: &Query,
    theirs: &Answer,
    ours: &Answer,
) -> Option<&'static str> {
    if spicedb_self_lookup_bug(world, theirs) {
        return spicedb_lookup_disagrees_with_its_check(world, spice, q, ours)
            .then_some("SpiceDB v1.54 lookup-resources error on self");
    }
    if spicedb_lookup_disagrees_with_its_check(world, spice, q, ours) {
        return Some("SpiceDB lookup disagrees with its own check");
    }
    if spicedb_bulk_disagrees_with_its_check(spice, q, ours) {
        return Some("SpiceDB bulk check disagrees with its own check");
    }
    None
}

/// Why an answer that differs is expected, if it is one of the listed differences.
fn explained(world: &World, q: &Query, spice: &Answer) -> Option<&'static str> {
    if spicedb_known_bug(world, q) {
        return Some("SpiceDB v1.54 direct-subject query bug");
    }
    if spicedb_expired_subject_set(world, q, spice) {
        return Some("SpiceDB v1.54 expired subject-set relationship");
    }
    if depth_on_cyclic_data(world, spice) {
        return Some("SpiceDB depth refusal on cyclic data");
    }
    None
}

// ---------- one world ----------

/// What comparing worlds found.
#[derive(Default, serde::Serialize, serde::Deserialize)]
struct Tally {
    worlds: usize,
    answers: usize,
    refusals_compared: usize,
    /// Differing answers that are listed differences, by reason.
    explained: std::collections::BTreeMap<String, usize>,
    generator_defects: Vec<String>,
    /// Seeds of worlds SpiceDB gave no answer on.
    unanswered: Vec<u64>,
    mismatches: Vec<String>,
}

/// Both answers to every query, SpiceDB's first.
fn answer_all(
    spice: &mut Spice,
    zanzi: &Zanzi,
    queries: &[Query],
    runtime: &tokio::runtime::Runtime,
) -> Result<Vec<(Answer, Answer)>, Hung> {
    let checks: Vec<Query> = queries
        .iter()
        .filter(|q| matches!(q, Query::Check { .. }))
        .cloned()
        .collect();
    let trace = std::env::var_os("ZANZI_DIFF_TRACE").is_some();
    let expands: Vec<Query> = queries
        .iter()
        .filter(|q| matches!(q, Query::Expand { .. }))
        .cloned()
        .collect();
    let t0 = Instant::now();
    let mut check_answers = spice
        .call(move |db| spicedb_checks(db, &checks))?
        .into_iter();
    let mut expand_answers = spice
        .call(move |db| spicedb_expands(db, &expands))?
        .into_iter();
    let t1 = Instant::now();
    heartbeat();
    // Lookups go to SpiceDB several at a time (its answers are mostly waiting, not work).
    let lookups: Vec<&Query> = queries
        .iter()
        .filter(|q| matches!(q, Query::Resources { .. } | Query::Subjects { .. }))
        .collect();
    let client = spice.client.clone();
    let lookup_answers: Vec<Answer> = runtime.block_on(async {
        use futures_util::stream::{self, StreamExt, TryStreamExt};
        stream::iter(lookups)
            .map(|q| {
                let mut client = client.clone();
                async move {
                    if trace {
                        eprintln!("  SpiceDB: {}", q.text());
                    }
                    let answer = tokio::time::timeout(PATIENCE, spicedb_lookup(&mut client, q))
                        .await
                        .map_err(|_| Hung)?;
                    heartbeat();
                    Ok::<Answer, Hung>(answer)
                }
            })
            .buffered(LOOKUPS_IN_FLIGHT)
            .try_collect()
            .await
    })?;
    let mut lookup_answers = lookup_answers.into_iter();
    let spice_answers: Vec<Answer> = queries
        .iter()
        .map(|q| match q {
            Query::Check { .. } => check_answers.next().unwrap(),
            Query::Expand { .. } => expand_answers.next().unwrap(),
            Query::Resources { .. } | Query::Subjects { .. } => lookup_answers.next().unwrap(),
        })
        .collect();
    let t2 = Instant::now();
    let out: Vec<(Answer, Answer)> = spice_answers
        .into_iter()
        .zip(queries)
        .map(|(spice, q)| {
            if trace {
                eprintln!("  zanzi: {}", q.text());
            }
            (spice, zanzi_answer(&zanzi.engine, q))
        })
        .collect();
    if std::env::var_os("ZANZI_DIFF_VERBOSE").is_some() {
        eprintln!(
            "  {} queries: SpiceDB checks {:?}, lookups {:?}; zanzi {:?}",
            queries.len(),
            t1 - t0,
            t2 - t1,
            t2.elapsed()
        );
    }
    Ok(out)
}

/// Whether `world` still makes SpiceDB and zanzi disagree on `query`.
fn still_differs(
    world: &World,
    query: &Query,
    spice: &mut Spice,
    config: &EngineConfig,
    runtime: &tokio::runtime::Runtime,
) -> bool {
    match load(world, spice, config.clone()) {
        Loaded::Both(zanzi) => {
            let Ok(mut answers) = answer_all(spice, &zanzi, std::slice::from_ref(query), runtime)
            else {
                spice.restart(runtime);
                return false;
            };
            let (theirs, ours) = answers.pop().unwrap();
            let same_members = match query {
                Query::Subjects { subject_type, .. } => subjects_membership(&theirs, subject_type)
                    .zip(subjects_membership(&ours, subject_type))
                    .is_some_and(|(a, b)| a == b),
                _ => false,
            };
            let differs = theirs != ours
                && !same_members
                && !same_simplified_tree(&theirs, &ours)
                && !same_without_all_arrow_gaps(world, &theirs, &ours)
                && explained(world, query, &theirs).is_none();
            differs && spicedb_disagrees_with_itself(world, spice, query, &theirs, &ours).is_none()
        }
        Loaded::Hung => {
            spice.restart(runtime);
            false
        }
        _ => false,
    }
}

/// Shrinks a world while the query's answers still differ: relationships first, then
/// permission branches, then unused members.
fn shrink(
    mut world: World,
    query: &Query,
    spice: &mut Spice,
    config: &EngineConfig,
    runtime: &tokio::runtime::Runtime,
) -> World {
    let mut i = world.relationships.len();
    while i > 0 {
        i -= 1;
        let mut smaller = world.clone();
        smaller.relationships.remove(i);
        if still_differs(&smaller, query, spice, config, runtime) {
            world = smaller;
        }
    }
    let mut progress = true;
    while progress {
        progress = false;
        'defs: for d in 0..world.definitions.len() {
            for p in 0..world.definitions[d].permissions.len() {
                for simpler in world.definitions[d].permissions[p].expr.simpler() {
                    let mut smaller = world.clone();
                    smaller.definitions[d].permissions[p].expr = simpler;
                    if still_differs(&smaller, query, spice, config, runtime) {
                        world = smaller;
                        progress = true;
                        break 'defs;
                    }
                }
            }
        }
    }
    // Unused permissions and relations (the queried member stays).
    let queried = match query {
        Query::Check {
            resource_type,
            member,
            ..
        }
        | Query::Resources {
            resource_type,
            member,
            ..
        }
        | Query::Subjects {
            resource_type,
            member,
            ..
        }
        | Query::Expand {
            resource_type,
            member,
            ..
        } => (resource_type.clone(), member.clone()),
    };
    for d in 0..world.definitions.len() {
        for name in world.definitions[d].members() {
            let def = world.definitions[d].name.clone();
            if (def.clone(), name.clone()) == queried || world.is_used(&def, &name) {
                continue;
            }
            let mut smaller = world.clone();
            smaller.definitions[d]
                .permissions
                .retain(|p| p.name != name);
            smaller.definitions[d].relations.retain(|r| r.name != name);
            if still_differs(&smaller, query, spice, config, runtime) {
                world = smaller;
            }
        }
    }
    world
}

/// Writes the world as a validation file with SpiceDB's check answers as assertions (the
/// conformance test's consistency pass then compares lookups with them); returns its path.
fn write_regression(world: &World, query: &Query, spice: &mut Spice) -> PathBuf {
    let Loaded::Both(_zanzi) = load(world, spice, EngineConfig::default()) else {
        panic!("the shrunk world no longer loads");
    };
    let mut dice = Dice::new(0);
    let mut checks: Vec<Query> = queries(world, &mut dice)
        .into_iter()
        .filter_map(|q| match q {
            Query::Check {
                resource_type,
                resource_id,
                member,
                subject,
                ..
            } => Some(Query::Check {
                resource_type,
                resource_id,
                member,
                subject,
                context: None,
            }),
            _ => None,
        })
        .collect();
    if matches!(query, Query::Check { .. }) && query.context().is_some() {
        checks.push(query.clone());
    }
    // Single checks, so the assertions hold SpiceDB's answers without its bulk check's bug.
    let answers = spicedb_single_checks(&spice.db, &checks);
    let (mut yes, mut no, mut maybe) = (Vec::new(), Vec::new(), Vec::new());
    for (q, answer) in checks.iter().zip(answers) {
        let Query::Check {
            resource_type,
            resource_id,
            member,
            subject,
            context,
        } = q
        else {
            continue;
        };
        let mut line = format!("{resource_type}:{resource_id}#{member}@{}", subject.text());
        if let Some(c) = context {
            line = format!("{line} with {}", Value::Object(c.clone()));
        }
        match answer {
            Answer::Check("has") => yes.push(line),
            Answer::Check("no") => no.push(line),
            Answer::Check(_) => maybe.push(line),
            _ => {}
        }
    }
    let mut text = format!(
        "# Found by tests/it/differential.rs: {}\n# Assertions are SpiceDB v1.54's answers.\n",
        query.text()
    );
    let yaml_str = |s: &str| serde_json::to_string(s).unwrap();
    text.push_str(&format!("schema: {}\n", yaml_str(&world.schema())));
    text.push_str(&format!(
        "relationships: {}\n",
        yaml_str(&world.relationship_lines().join("\n"))
    ));
    text.push_str("assertions:\n");
    for (key, list) in [
        ("assertTrue", &yes),
        ("assertFalse", &no),
        ("assertCaveated", &maybe),
    ] {
        if list.is_empty() {
            continue;
        }
        text.push_str(&format!("  {key}:\n"));
        for line in list {
            text.push_str(&format!("  - {}\n", yaml_str(line)));
        }
    }
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    text.hash(&mut hasher);
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/regressions")
        .join(format!("{:08x}.yaml", hasher.finish() as u32));
    std::fs::write(&path, text).unwrap();
    path
}

fn run_world(seed: u64, spice: &mut Spice, runtime: &tokio::runtime::Runtime, tally: &mut Tally) {
    let world = World::generate(seed);
    let verbose = std::env::var_os("ZANZI_DIFF_VERBOSE").is_some();
    if verbose {
        eprintln!("world {seed}: {} relationships", world.relationships.len());
    }
    let all_configs = configs();
    let (config_name, config) = &all_configs[(seed % all_configs.len() as u64) as usize];
    tally.worlds += 1;
    let zanzi = match load(&world, spice, config.clone()) {
        Loaded::Both(zanzi) => zanzi,
        Loaded::SchemaRefused {
            spicedb,
            zanzi_refused,
        } => {
            tally.generator_defects.push(format!(
                "seed {seed}: SpiceDB refused the schema ({spicedb}); zanzi {}\n{}",
                if zanzi_refused {
                    "refused it too"
                } else {
                    "accepted it"
                },
                world.schema()
            ));
            return;
        }
        Loaded::BothRefused => {
            tally.refusals_compared += 1;
            return;
        }
        // The worker ends after this world (SpiceDB's runaway call would go on eating CPU).
        Loaded::Hung => {
            tally.unanswered.push(seed);
            return;
        }
        Loaded::Disagree(why) => {
            tally.mismatches.push(format!(
                "seed {seed} ({config_name}): {why}\n{}\n{}",
                world.schema(),
                world.relationship_lines().join("\n")
            ));
            return;
        }
    };
    let mut dice = Dice::new(seed ^ 0x5eed);
    let queries = queries(&world, &mut dice);
    let Ok(answers) = answer_all(spice, &zanzi, &queries, runtime) else {
        tally.unanswered.push(seed);
        return;
    };
    drop(zanzi);
    let mut first_mismatch = None;
    for (q, (theirs, ours)) in queries.iter().zip(answers) {
        tally.answers += 1;
        if matches!(theirs, Answer::Refused(_)) {
            tally.refusals_compared += 1;
        }
        if theirs == ours {
            continue;
        }
        if let Query::Subjects { subject_type, .. } = q {
            let same = subjects_membership(&theirs, subject_type)
                .zip(subjects_membership(&ours, subject_type))
                .is_some_and(|(a, b)| a == b);
            if same {
                *tally
                    .explained
                    .entry("lookup-subjects listed differently, same members".to_string())
                    .or_default() += 1;
                continue;
            }
        }
        if let Some(why) = explained(&world, q, &theirs) {
            *tally.explained.entry(why.to_string()).or_default() += 1;
            continue;
        }
        if same_simplified_tree(&theirs, &ours) {
            *tally
                .explained
                .entry("expand: SpiceDB's trivial nodes".to_string())
                .or_default() += 1;
            continue;
        }
        if same_without_all_arrow_gaps(&world, &theirs, &ours) {
            *tally
                .explained
                .entry("expand: SpiceDB's .all() over a type lacking the relation".to_string())
                .or_default() += 1;
            continue;
        }
        if let Some(why) = spicedb_disagrees_with_itself(&world, spice, q, &theirs, &ours) {
            *tally.explained.entry(why.to_string()).or_default() += 1;
            continue;
        }
        tally.mismatches.push(format!(
            "seed {seed} ({config_name}): {}: SpiceDB {theirs}, zanzi {ours}",
            q.text()
        ));
        first_mismatch.get_or_insert_with(|| q.clone());
    }
    if let Some(q) = first_mismatch {
        if verbose {
            eprintln!("world {seed}: shrinking on {}", q.text());
        }
        let small = shrink(world, &q, spice, config, runtime);
        let path = write_regression(&small, &q, spice);
        tally.mismatches.push(format!(
            "seed {seed}: shrunk to {} ({} relationships):\n{}\n{}",
            path.display(),
            small.relationships.len(),
            small.schema(),
            small.relationship_lines().join("\n")
        ));
    }
}

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

impl Tally {
    fn merge(&mut self, other: Tally) {
        self.worlds += other.worlds;
        self.answers += other.answers;
        self.refusals_compared += other.refusals_compared;
        for (why, n) in other.explained {
            *self.explained.entry(why).or_default() += n;
        }
        self.generator_defects.extend(other.generator_defects);
        self.unanswered.extend(other.unanswered);
        self.mismatches.extend(other.mismatches);
    }
}

/// Marks a worker's line holding one world's tally.
const WORKER_LINE: &str = "DIFFERENTIAL-WORLD ";
/// A worker's line saying that a SpiceDB call came back.
const ALIVE_LINE: &str = "DIFFERENTIAL-ALIVE";
/// The longest a worker may go without a line (a world's tally or a call that came back)
/// before it is killed and its world counted as unanswered. A worker notices a call that
/// outlasts [`PATIENCE`] itself; this catches what it cannot (SpiceDB v1.54 runs away on some
/// recursive worlds and can take the process's Go runtime with it).
const WORLD_PATIENCE: Duration = Duration::from_secs(8);
/// Each worker slice prints its running tally after this many worlds.
const PROGRESS_EVERY: u64 = 250;
/// A worker's exit status after a world SpiceDB gave no answer on: abandoning the world with
/// its process stops SpiceDB's runaway call; the next worker goes on from the next seed.
const HUNG_EXIT: i32 = 3;

/// In a worker, tells the runner that a SpiceDB call came back (so a slow world that makes
/// progress is not taken for a stuck one).
fn heartbeat() {
    use std::io::Write;
    static IN_WORKER: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    if *IN_WORKER.get_or_init(|| std::env::var_os("ZANZI_DIFF_WORKER").is_some()) {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{ALIVE_LINE}");
        let _ = out.flush();
    }
}

/// The worker: runs seeds `first..first + worlds` in this process and prints one tally line
/// per world.
fn worker(first: u64, worlds: u64) {
    use std::io::Write;
    let lib = library_path();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut spice = Spice::start(&lib, &runtime);
    for seed in first..first + worlds {
        let mut tally = Tally::default();
        run_world(seed, &mut spice, &runtime, &mut tally);
        let mut out = std::io::stdout().lock();
        writeln!(
            out,
            "{WORKER_LINE}{}",
            serde_json::to_string(&tally).unwrap()
        )
        .unwrap();
        out.flush().unwrap();
        if !tally.unanswered.is_empty() {
            std::process::exit(HUNG_EXIT);
        }
    }
}

/// Runs the seeds in worker processes (this test binary, this test, `ZANZI_DIFF_WORKER=1`),
/// replacing a worker that stalls on a world.
fn run_in_workers(first: u64, worlds: u64) -> Tally {
    use std::io::BufRead;
    use std::process::{Command, Stdio};
    let mut tally = Tally::default();
    let end = first + worlds;
    let mut next = first;
    while next < end {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "differential::zanzi_answers_as_spicedb_on_random_worlds",
                "--exact",
                "--nocapture",
                "--test-threads=1",
            ])
            .env("ZANZI_DIFF_WORKER", "1")
            .env("ZANZI_DIFF_SEED", next.to_string())
            .env("ZANZI_DIFF_WORLDS", (end - next).to_string())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                // libtest may print the test's name on the same line before it.
                let message = if let Some(at) = line.find(WORKER_LINE) {
                    Some(line[at + WORKER_LINE.len()..].to_string())
                } else if line.contains(ALIVE_LINE) {
                    None
                } else {
                    continue;
                };
                if tx.send(message).is_err() {
                    break;
                }
            }
        });
        // The first world also waits for SpiceDB to start.
        let mut patience = WORLD_PATIENCE * 3;
        loop {
            match rx.recv_timeout(patience) {
                Ok(None) => patience = WORLD_PATIENCE,
                Ok(Some(json)) => {
                    tally.merge(serde_json::from_str(&json).unwrap());
                    next += 1;
                    if (next - first) % PROGRESS_EVERY == 0 {
                        eprintln!(
                            "differential progress: seeds {first}..{}: {} worlds, {} answers, \
                             {} mismatches, {} unanswered",
                            next - 1,
                            tally.worlds,
                            tally.answers,
                            tally.mismatches.len(),
                            tally.unanswered.len()
                        );
                    }
                    patience = WORLD_PATIENCE;
                    if next == end {
                        break;
                    }
                }
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                    let _ = child.kill();
                    tally.worlds += 1;
                    tally.unanswered.push(next);
                    next += 1;
                    break;
                }
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                    let status = child.wait().unwrap();
                    if next < end && status.code() != Some(HUNG_EXIT) {
                        tally.worlds += 1;
                        tally.mismatches.push(format!(
                            "the worker stopped at seed {next} ({status}); run \
                             ZANZI_DIFF_SEED={next} ZANZI_DIFF_WORLDS=1 ZANZI_DIFF_WORKER=1 \
                             to see why"
                        ));
                        next += 1;
                    }
                    break;
                }
            }
        }
        let _ = child.wait();
    }
    tally
}

#[test]
fn zanzi_answers_as_spicedb_on_random_worlds() {
    let worlds = env_u64("ZANZI_DIFF_WORLDS").unwrap_or(CI_WORLDS);
    let first = env_u64("ZANZI_DIFF_SEED").unwrap_or(1);
    if std::env::var_os("ZANZI_DIFF_WORKER").is_some() {
        worker(first, worlds);
        return;
    }
    // Fetch the library once, here, so a missing one fails with its reason.
    library_path();
    let started = Instant::now();
    // Worker processes side by side, each over its own slice of the seeds.
    let jobs = env_u64("ZANZI_DIFF_JOBS")
        .unwrap_or(2)
        .clamp(1, worlds.max(1));
    let slices: Vec<(u64, u64)> = (0..jobs)
        .map(|j| {
            let from = first + worlds * j / jobs;
            let to = first + worlds * (j + 1) / jobs;
            (from, to - from)
        })
        .collect();
    let mut tally = Tally::default();
    std::thread::scope(|scope| {
        let handles: Vec<_> = slices
            .iter()
            .map(|&(from, count)| scope.spawn(move || run_in_workers(from, count)))
            .collect();
        for handle in handles {
            tally.merge(handle.join().unwrap());
        }
    });
    for defect in &tally.generator_defects {
        eprintln!("generator defect: {defect}");
    }
    eprintln!(
        "differential: SpiceDB gave no answer on {} worlds: {:?}",
        tally.unanswered.len(),
        tally.unanswered
    );
    eprintln!(
        "differential: {} worlds (seeds {first}..{}), {} answers compared, {} refusals \
         compared, listed differences {:?}, {} generator defects, {} mismatches, {:.1} s",
        tally.worlds,
        first + worlds - 1,
        tally.answers,
        tally.refusals_compared,
        tally.explained,
        tally.generator_defects.len(),
        tally.mismatches.len(),
        started.elapsed().as_secs_f64()
    );
    assert!(
        tally.mismatches.is_empty(),
        "{} mismatches:\n{}",
        tally.mismatches.len(),
        tally.mismatches.join("\n")
    );
    assert!(
        tally.generator_defects.is_empty(),
        "{} schemas SpiceDB refused (generator defects, printed above)",
        tally.generator_defects.len()
    );
}

/// Helpers for the tree-normalisation tests: a leaf and an algebra node of `doc:d#<relation>`.
#[cfg(test)]
mod trees {
    use super::v1;
    use v1::algebraic_subject_set::Operation;
    use v1::permission_relationship_tree::TreeType;

    pub fn leaf(relation: &str, users: &[&str]) -> v1::PermissionRelationshipTree {
        v1::PermissionRelationshipTree {
            tree_type: Some(TreeType::Leaf(v1::DirectSubjectSet {
                subjects: users
                    .iter()
                    .map(|u| v1::SubjectReference {
                        object: Some(super::proto_object("user", u)),
                        optional_relation: String::new(),
                    })
                    .collect(),
            })),
            expanded_object: Some(super::proto_object("doc", "d")),
            expanded_relation: relation.to_string(),
        }
    }

    pub fn node(
        relation: &str,
        operation: Operation,
        children: Vec<v1::PermissionRelationshipTree>,
    ) -> v1::PermissionRelationshipTree {
        v1::PermissionRelationshipTree {
            tree_type: Some(TreeType::Intermediate(v1::AlgebraicSubjectSet {
                operation: operation as i32,
                children,
            })),
            expanded_object: Some(super::proto_object("doc", "d")),
            expanded_relation: relation.to_string(),
        }
    }
}

#[test]
fn expand_trees_compare_without_order_and_trivial_nodes_but_keep_content() {
    use trees::{leaf, node};
    use v1::algebraic_subject_set::Operation::{Exclusion, Intersection, Union};
    // Leaves and union children in any order read the same.
    let a = node(
        "p",
        Union,
        vec![leaf("r", &["bob", "ann"]), leaf("s", &["cat"])],
    );
    let b = node(
        "p",
        Union,
        vec![leaf("s", &["cat"]), leaf("r", &["ann", "bob"])],
    );
    assert_eq!(tree_text(&a), tree_text(&b));
    // An exclusion keeps its order.
    let c = node("p", Exclusion, vec![leaf("r", &["ann"]), leaf("s", &[])]);
    let d = node("p", Exclusion, vec![leaf("s", &[]), leaf("r", &["ann"])]);
    assert_ne!(tree_text(&simplify(&c)), tree_text(&simplify(&d)));
    // SpiceDB's wrapping union of one child, and empty leaves in a union, go.
    let wrapped = node(
        "p",
        Union,
        vec![node("q", Union, vec![leaf("r", &["ann"]), leaf("p", &[])])],
    );
    assert_eq!(
        tree_text(&simplify(&wrapped)),
        tree_text(&leaf("r", &["ann"]))
    );
    // A subject is never simplified away.
    let other = node("p", Union, vec![leaf("r", &["bob"])]);
    assert_ne!(tree_text(&simplify(&wrapped)), tree_text(&simplify(&other)));
    // An intersection keeps its empty children (they make it empty) unless it is the .all()
    // rule's gap, named like the intersection itself.
    let all = node(
        "p",
        Intersection,
        vec![leaf("r", &["ann"]), leaf("p", &[]), leaf("p", &[])],
    );
    let zanzi_all = node("p", Intersection, vec![leaf("r", &["ann"])]);
    assert_ne!(tree_text(&simplify(&all)), tree_text(&simplify(&zanzi_all)));
    assert_eq!(
        tree_text(&simplify(&drop_all_arrow_gaps(&all))),
        tree_text(&simplify(&drop_all_arrow_gaps(&zanzi_all)))
    );
    let empty_target = node("p", Intersection, vec![leaf("r", &["ann"]), leaf("s", &[])]);
    assert_ne!(
        tree_text(&simplify(&drop_all_arrow_gaps(&empty_target))),
        tree_text(&simplify(&drop_all_arrow_gaps(&zanzi_all)))
    );
    // An .all() with only gaps inside `a & b` is one gap, as zanzi's single empty leaf.
    let nested = node(
        "p",
        Intersection,
        vec![
            node("p", Intersection, vec![leaf("p", &[]), leaf("p", &[])]),
            leaf("r", &["ann"]),
            leaf("s", &["ann"]),
        ],
    );
    let zanzi_nested = node(
        "p",
        Intersection,
        vec![leaf("p", &[]), leaf("r", &["ann"]), leaf("s", &["ann"])],
    );
    assert_eq!(
        tree_text(&simplify(&drop_all_arrow_gaps(&nested))),
        tree_text(&simplify(&drop_all_arrow_gaps(&zanzi_nested)))
    );
}

#[test]
fn spicedb_duplicate_lookup_subjects_entries_merge_and_membership_takes_the_strongest() {
    assert!(is_conditional("*?-[ann]"));
    assert!(!is_conditional("*-[ann?]"));
    assert_eq!(unconditional("*?-[ann?]"), "*-[ann?]");
    let spice = Answer::Found(vec!["*".to_string(), "*?".to_string()]);
    let zanzi = Answer::Found(vec!["*".to_string()]);
    assert_eq!(
        subjects_membership(&spice, "user"),
        subjects_membership(&zanzi, "user")
    );
    let narrower = Answer::Found(vec!["*-[ann]".to_string()]);
    assert_ne!(
        subjects_membership(&narrower, "user"),
        subjects_membership(&zanzi, "user")
    );
}
