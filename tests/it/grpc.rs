//! The gRPC API (`authzed.api.v1`) against a live server through the generated tonic clients:
//! every RPC, SpiceDB's status codes for bad calls, TLS, health and reflection.

use std::time::Duration;

use serde_json::{Map, Value};
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::interceptor::InterceptedService;
use tonic::service::Interceptor;
use tonic::transport::Channel;
use tonic::{Code, Request, Status};
use zanzi::proto::v1::schema_service_client::SchemaServiceClient;
use zanzi::proto::v1::watch_service_client::WatchServiceClient;
use zanzi::proto::v1::{self, permissions_service_client::PermissionsServiceClient};

use crate::server_support::TestServer;

/// Adds `authorization: Bearer <key>` to every call.
#[derive(Clone)]
pub struct Bearer(MetadataValue<Ascii>);

impl Interceptor for Bearer {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        request
            .metadata_mut()
            .insert("authorization", self.0.clone());
        Ok(request)
    }
}

type Authed = InterceptedService<Channel, Bearer>;

/// The three authzed clients over one channel.
pub struct Clients {
    pub permissions: PermissionsServiceClient<Authed>,
    pub schema: SchemaServiceClient<Authed>,
    pub watch: WatchServiceClient<Authed>,
}

impl Clients {
    pub fn over(channel: Channel, key: &str) -> Self {
        let bearer = Bearer(format!("Bearer {key}").parse().unwrap());
        Self {
            permissions: PermissionsServiceClient::with_interceptor(
                channel.clone(),
                bearer.clone(),
            ),
            schema: SchemaServiceClient::with_interceptor(channel.clone(), bearer.clone()),
            watch: WatchServiceClient::with_interceptor(channel, bearer),
        }
    }

    pub async fn connect(server: &TestServer, key: &str) -> Self {
        let channel = Channel::from_shared(format!("http://{}", server.grpc_addr))
            .unwrap()
            .connect()
            .await
            .unwrap();
        Self::over(channel, key)
    }
}

pub fn object(text: &str) -> Option<v1::ObjectReference> {
    let (t, id) = text.split_once(':').unwrap();
    Some(v1::ObjectReference {
        object_type: t.into(),
        object_id: id.into(),
    })
}

pub fn subject(text: &str) -> Option<v1::SubjectReference> {
    let (object_text, relation) = text.split_once('#').unwrap_or((text, ""));
    Some(v1::SubjectReference {
        object: object(object_text),
        optional_relation: relation.into(),
    })
}

pub fn relationship(text: &str) -> v1::Relationship {
    let rel = zanzi::tuple::Relationship::parse(text).unwrap();
    v1::Relationship {
        resource: object(&rel.resource.to_string()),
        relation: rel.relation.clone(),
        subject: subject(&rel.subject.to_string()),
        optional_caveat: rel.caveat.map(|c| v1::ContextualizedCaveat {
            caveat_name: c.name,
            context: Some(to_struct(&c.context)),
        }),
        optional_expires_at: rel.expiration.map(|at| prost_types::Timestamp {
            seconds: at.timestamp(),
            nanos: at.timestamp_subsec_nanos() as i32,
        }),
    }
}

fn text(rel: &v1::Relationship) -> String {
    let r = rel.resource.as_ref().unwrap();
    let s = rel.subject.as_ref().unwrap();
    let o = s.object.as_ref().unwrap();
    let mut out = format!(
        "{}:{}#{}@{}:{}",
        r.object_type, r.object_id, rel.relation, o.object_type, o.object_id
    );
    if !s.optional_relation.is_empty() {
        out = format!("{out}#{}", s.optional_relation);
    }
    out
}

pub fn to_struct(map: &Map<String, Value>) -> prost_types::Struct {
    use prost_types::value::Kind;
    fn value(v: &Value) -> prost_types::Value {
        let kind = match v {
            Value::Null => Kind::NullValue(0),
            Value::Bool(b) => Kind::BoolValue(*b),
            Value::Number(n) => Kind::NumberValue(n.as_f64().unwrap()),
            Value::String(s) => Kind::StringValue(s.clone()),
            Value::Array(items) => Kind::ListValue(prost_types::ListValue {
                values: items.iter().map(value).collect(),
            }),
            Value::Object(m) => Kind::StructValue(to_struct(m)),
        };
        prost_types::Value { kind: Some(kind) }
    }
    prost_types::Struct {
        fields: map.iter().map(|(k, v)| (k.clone(), value(v))).collect(),
    }
}

pub fn update(op: v1::relationship_update::Operation, text: &str) -> v1::RelationshipUpdate {
    v1::RelationshipUpdate {
        operation: op as i32,
        relationship: Some(relationship(text)),
    }
}

fn touch_all(texts: &[&str]) -> v1::WriteRelationshipsRequest {
    v1::WriteRelationshipsRequest {
        updates: texts
            .iter()
            .map(|t| update(v1::relationship_update::Operation::Touch, t))
            .collect(),
        ..Default::default()
    }
}

pub fn check_request(
    resource: &str,
    permission: &str,
    who: &str,
    token: Option<&v1::ZedToken>,
) -> v1::CheckPermissionRequest {
    use v1::consistency::Requirement;
    v1::CheckPermissionRequest {
        consistency: Some(v1::Consistency {
            requirement: Some(match token {
                Some(t) => Requirement::AtLeastAsFresh(t.clone()),
                None => Requirement::FullyConsistent(true),
            }),
        }),
        resource: object(resource),
        permission: permission.into(),
        subject: subject(who),
        ..Default::default()
    }
}

const SCHEMA: &str = r#"
definition user {}
definition group { relation member: user | group#member }
definition doc {
    relation parent: folder
    relation owner: user
    relation viewer: user | user:* | group#member | user with on_weekday
    relation banned: user
    permission edit = owner
    permission view = (viewer + edit + parent->view) - banned
}
definition folder {
    relation viewer: user
    permission view = viewer
}
caveat on_weekday(day string) { day != "sunday" }
"#;

const HAS: i32 = v1::check_permission_response::Permissionship::HasPermission as i32;
const NO: i32 = v1::check_permission_response::Permissionship::NoPermission as i32;

async fn with_schema(server: &TestServer) -> Clients {
    let mut c = Clients::connect(server, &server.key).await;
    c.schema
        .write_schema(v1::WriteSchemaRequest {
            schema: SCHEMA.into(),
        })
        .await
        .unwrap();
    c
}

async fn collect<T>(mut stream: tonic::Streaming<T>) -> Vec<T> {
    let mut out = Vec::new();
    while let Some(item) = stream.message().await.unwrap() {
        out.push(item);
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schema_calls_and_reflection() {
    let server = TestServer::start();
    let mut c = Clients::connect(&server, &server.key).await;
    let err = c
        .schema
        .read_schema(v1::ReadSchemaRequest {})
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound, "{err:?}");
    let mut c = with_schema(&server).await;
    let read = c
        .schema
        .read_schema(v1::ReadSchemaRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(read.schema_text, SCHEMA);
    assert!(read.read_at.is_some());

    let reflected = c
        .schema
        .reflect_schema(v1::ReflectSchemaRequest::default())
        .await
        .unwrap()
        .into_inner();
    let names: Vec<&str> = reflected
        .definitions
        .iter()
        .map(|d| d.name.as_str())
        .collect();
    assert_eq!(names, ["doc", "folder", "group", "user"]);
    let doc = &reflected.definitions[0];
    let viewer = doc.relations.iter().find(|r| r.name == "viewer").unwrap();
    assert_eq!(viewer.subject_types.len(), 4);
    assert_eq!(viewer.subject_types[3].optional_caveat_name, "on_weekday");
    assert_eq!(
        viewer.subject_types[1].typeref,
        Some(v1::reflection_type_reference::Typeref::IsPublicWildcard(
            true
        ))
    );
    assert_eq!(reflected.caveats[0].parameters[0].r#type, "string");

    let filtered = c
        .schema
        .reflect_schema(v1::ReflectSchemaRequest {
            optional_filters: vec![v1::ReflectionSchemaFilter {
                optional_definition_name_filter: "doc".into(),
                optional_permission_name_filter: "vi".into(),
                ..Default::default()
            }],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(filtered.definitions.len(), 1);
    assert!(filtered.definitions[0].relations.is_empty());
    assert_eq!(filtered.definitions[0].permissions[0].name, "view");
    assert!(filtered.caveats.is_empty());

    let computable = c
        .schema
        .computable_permissions(v1::ComputablePermissionsRequest {
            definition_name: "folder".into(),
            relation_name: "viewer".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let found: Vec<(String, String, bool)> = computable
        .permissions
        .iter()
        .map(|p| {
            (
                p.definition_name.clone(),
                p.relation_name.clone(),
                p.is_permission,
            )
        })
        .collect();
    assert_eq!(
        found,
        [
            ("doc".to_string(), "view".to_string(), true),
            ("folder".to_string(), "view".to_string(), true)
        ]
    );

    let dependent = c
        .schema
        .dependent_relations(v1::DependentRelationsRequest {
            definition_name: "doc".into(),
            permission_name: "view".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let deps: Vec<String> = dependent
        .relations
        .iter()
        .map(|r| format!("{}#{}", r.definition_name, r.relation_name))
        .collect();
    for wanted in [
        "doc#viewer",
        "doc#edit",
        "doc#owner",
        "doc#parent",
        "doc#banned",
        "folder#view",
        "folder#viewer",
        "group#member",
    ] {
        assert!(
            deps.contains(&wanted.to_string()),
            "{wanted} missing from {deps:?}"
        );
    }
    let err = c
        .schema
        .dependent_relations(v1::DependentRelationsRequest {
            definition_name: "doc".into(),
            permission_name: "nope".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);

    let diff = c
        .schema
        .diff_schema(v1::DiffSchemaRequest {
            comparison_schema: SCHEMA
                .replace(
                    "relation banned: user",
                    "relation banned: user | group#member",
                )
                .replace("definition folder", "definition team {}\ndefinition folder"),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    use v1::reflection_schema_diff::Diff;
    let diffs: Vec<Diff> = diff.diffs.into_iter().filter_map(|d| d.diff).collect();
    assert_eq!(diffs.len(), 2, "{diffs:?}");
    assert!(diffs
        .iter()
        .any(|d| matches!(d, Diff::DefinitionAdded(def) if def.name == "team")));
    assert!(diffs.iter().any(
        |d| matches!(d, Diff::RelationSubjectTypeAdded(ch) if ch.relation.as_ref().unwrap().name == "banned")
    ));
    let err = c
        .schema
        .diff_schema(v1::DiffSchemaRequest {
            comparison_schema: "definition {".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_checks_bulk_checks_and_expand() {
    use v1::relationship_update::Operation;
    let server = TestServer::start();
    let mut c = with_schema(&server).await;
    let written = c
        .permissions
        .write_relationships(v1::WriteRelationshipsRequest {
            updates: vec![
                update(Operation::Create, "doc:1#owner@user:ann"),
                update(Operation::Touch, "doc:1#viewer@group:eng#member"),
                update(Operation::Touch, "group:eng#member@user:bob"),
                update(Operation::Touch, "doc:1#banned@user:eve"),
                update(Operation::Touch, "doc:1#viewer@user:eve"),
                update(Operation::Touch, r#"doc:2#viewer@user:cid[on_weekday]"#),
            ],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .written_at
        .unwrap();
    let check = |resource: &'static str, perm: &'static str, who: &'static str| {
        let mut permissions = c.permissions.clone();
        let token = written.clone();
        async move {
            permissions
                .check_permission(check_request(resource, perm, who, Some(&token)))
                .await
                .unwrap()
                .into_inner()
        }
    };
    assert_eq!(check("doc:1", "view", "user:bob").await.permissionship, HAS);
    assert_eq!(check("doc:1", "view", "user:eve").await.permissionship, NO);
    assert_eq!(check("doc:1", "edit", "user:ann").await.permissionship, HAS);
    let conditional = check("doc:2", "view", "user:cid").await;
    assert_eq!(
        conditional.permissionship,
        v1::check_permission_response::Permissionship::ConditionalPermission as i32
    );
    assert_eq!(
        conditional
            .partial_caveat_info
            .unwrap()
            .missing_required_context,
        ["day"]
    );
    let mut with_context = check_request("doc:2", "view", "user:cid", None);
    with_context.context = Some(to_struct(
        serde_json::json!({"day": "monday"}).as_object().unwrap(),
    ));
    let answer = c
        .permissions
        .check_permission(with_context)
        .await
        .unwrap()
        .into_inner();
    assert_eq!(answer.permissionship, HAS);

    // DELETE with a precondition that holds.
    let deleted = c
        .permissions
        .write_relationships(v1::WriteRelationshipsRequest {
            updates: vec![update(Operation::Delete, "doc:1#banned@user:eve")],
            optional_preconditions: vec![v1::Precondition {
                operation: v1::precondition::Operation::MustMatch as i32,
                filter: Some(v1::RelationshipFilter {
                    resource_type: "doc".into(),
                    optional_relation: "banned".into(),
                    ..Default::default()
                }),
            }],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .written_at
        .unwrap();
    let eve = c
        .permissions
        .check_permission(check_request("doc:1", "view", "user:eve", Some(&deleted)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(eve.permissionship, HAS);

    // Bulk: answers in order, a bad item fails alone.
    let item = |resource: &str, perm: &str, who: &str| v1::CheckBulkPermissionsRequestItem {
        resource: object(resource),
        permission: perm.into(),
        subject: subject(who),
        context: None,
    };
    let bulk = c
        .permissions
        .check_bulk_permissions(v1::CheckBulkPermissionsRequest {
            items: vec![
                item("doc:1", "view", "user:bob"),
                item("doc:1", "edit", "user:bob"),
                item("doc:1", "nope", "user:bob"),
            ],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    use v1::check_bulk_permissions_pair::Response as Pair;
    let answers: Vec<Result<i32, i32>> = bulk
        .pairs
        .iter()
        .map(|p| match p.response.as_ref().unwrap() {
            Pair::Item(i) => Ok(i.permissionship),
            Pair::Error(e) => Err(e.code),
        })
        .collect();
    assert_eq!(
        answers,
        [Ok(HAS), Ok(NO), Err(Code::InvalidArgument as i32)]
    );
    assert_eq!(bulk.pairs[1].request.as_ref().unwrap().permission, "edit");

    // Expand: (viewer + edit + parent->view) - banned.
    let tree = c
        .permissions
        .expand_permission_tree(v1::ExpandPermissionTreeRequest {
            resource: object("doc:1"),
            permission: "view".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .tree_root
        .unwrap();
    assert_eq!(tree.expanded_relation, "view");
    let Some(v1::permission_relationship_tree::TreeType::Intermediate(root)) = tree.tree_type
    else {
        panic!("expected an intermediate node: {tree:?}");
    };
    assert_eq!(
        root.operation,
        v1::algebraic_subject_set::Operation::Exclusion as i32
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lookups_stream_with_cursors() {
    let server = TestServer::start();
    let mut c = with_schema(&server).await;
    c.permissions
        .write_relationships(touch_all(&[
            "doc:a#viewer@user:tom",
            "doc:b#viewer@group:eng#member",
            "doc:c#owner@user:tom",
            "doc:d#viewer@user:ann",
            "group:eng#member@user:tom",
            "group:eng#member@user:ann",
            "doc:b#viewer@user:zed",
        ]))
        .await
        .unwrap();
    let mut found = Vec::new();
    let mut cursor = None;
    loop {
        let page = collect(
            c.permissions
                .lookup_resources(v1::LookupResourcesRequest {
                    resource_object_type: "doc".into(),
                    permission: "view".into(),
                    subject: subject("user:tom"),
                    optional_limit: 2,
                    optional_cursor: cursor.clone(),
                    ..Default::default()
                })
                .await
                .unwrap()
                .into_inner(),
        )
        .await;
        if page.is_empty() {
            break;
        }
        assert!(page.len() <= 2);
        cursor = page.last().unwrap().after_result_cursor.clone();
        found.extend(page.into_iter().map(|r| r.resource_object_id));
    }
    assert_eq!(found, ["a", "b", "c"]);

    let mut subjects = Vec::new();
    let mut cursor = None;
    loop {
        let page = collect(
            c.permissions
                .lookup_subjects(v1::LookupSubjectsRequest {
                    resource: object("doc:b"),
                    permission: "view".into(),
                    subject_object_type: "user".into(),
                    optional_concrete_limit: 1,
                    optional_cursor: cursor.clone(),
                    ..Default::default()
                })
                .await
                .unwrap()
                .into_inner(),
        )
        .await;
        if page.is_empty() {
            break;
        }
        cursor = page.last().unwrap().after_result_cursor.clone();
        subjects.extend(
            page.into_iter()
                .map(|r| r.subject.unwrap().subject_object_id),
        );
    }
    assert_eq!(subjects, ["ann", "tom", "zed"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_deletes_import_and_export() {
    let server = TestServer::start();
    let mut c = with_schema(&server).await;
    let imported: Vec<String> = (0..120)
        .map(|i| format!("doc:d{i:03}#viewer@user:u{}", i % 7))
        .collect();
    let messages: Vec<v1::ImportBulkRelationshipsRequest> = imported
        .chunks(50)
        .map(|chunk| v1::ImportBulkRelationshipsRequest {
            relationships: chunk.iter().map(|t| relationship(t)).collect(),
        })
        .collect();
    let loaded = c
        .permissions
        .import_bulk_relationships(futures_util::stream::iter(messages.clone()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(loaded.num_loaded, 120);
    // Importing an existing relationship again fails as a whole.
    let err = c
        .permissions
        .import_bulk_relationships(futures_util::stream::iter(messages[..1].to_vec()))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::AlreadyExists, "{err:?}");
    // With `zanzi-import-mode: touch` the same import overwrites.
    let mut touching = tonic::Request::new(futures_util::stream::iter(messages[..1].to_vec()));
    touching
        .metadata_mut()
        .insert("zanzi-import-mode", "touch".parse().unwrap());
    let loaded = c
        .permissions
        .import_bulk_relationships(touching)
        .await
        .unwrap()
        .into_inner();
    assert_eq!(loaded.num_loaded, 50);

    let mut exported = Vec::new();
    let mut cursor = None;
    loop {
        let batches = collect(
            c.permissions
                .export_bulk_relationships(v1::ExportBulkRelationshipsRequest {
                    optional_limit: 40,
                    optional_cursor: cursor.clone(),
                    ..Default::default()
                })
                .await
                .unwrap()
                .into_inner(),
        )
        .await;
        let page: Vec<String> = batches
            .iter()
            .flat_map(|b| b.relationships.iter().map(text))
            .collect();
        if page.is_empty() {
            break;
        }
        assert!(page.len() <= 40);
        cursor = batches.last().unwrap().after_result_cursor.clone();
        exported.extend(page);
    }
    assert_eq!(exported, imported);

    let filter = v1::RelationshipFilter {
        resource_type: "doc".into(),
        optional_resource_id_prefix: "d00".into(),
        optional_relation: "viewer".into(),
        optional_subject_filter: Some(v1::SubjectFilter {
            subject_type: "user".into(),
            optional_subject_id: "u1".into(),
            optional_relation: None,
        }),
        ..Default::default()
    };
    let read = collect(
        c.permissions
            .read_relationships(v1::ReadRelationshipsRequest {
                relationship_filter: Some(filter.clone()),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner(),
    )
    .await;
    let texts: Vec<String> = read
        .iter()
        .map(|r| text(r.relationship.as_ref().unwrap()))
        .collect();
    assert_eq!(
        texts,
        ["doc:d001#viewer@user:u1", "doc:d008#viewer@user:u1"]
    );
    assert!(read
        .iter()
        .all(|r| r.read_at.is_some() && r.after_result_cursor.is_some()));

    // Delete by filter with a limit refuses partial deletion unless allowed.
    let doc_filter = v1::RelationshipFilter {
        resource_type: "doc".into(),
        ..Default::default()
    };
    let err = c
        .permissions
        .delete_relationships(v1::DeleteRelationshipsRequest {
            relationship_filter: Some(doc_filter.clone()),
            optional_limit: 100,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    let partial = c
        .permissions
        .delete_relationships(v1::DeleteRelationshipsRequest {
            relationship_filter: Some(doc_filter.clone()),
            optional_limit: 100,
            optional_allow_partial_deletions: true,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(partial.relationships_deleted_count, 100);
    assert_eq!(
        partial.deletion_progress,
        v1::delete_relationships_response::DeletionProgress::Partial as i32
    );
    let rest = c
        .permissions
        .delete_relationships(v1::DeleteRelationshipsRequest {
            relationship_filter: Some(doc_filter.clone()),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(rest.relationships_deleted_count, 20);
    let left = collect(
        c.permissions
            .read_relationships(v1::ReadRelationshipsRequest {
                relationship_filter: Some(doc_filter),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner(),
    )
    .await;
    assert!(left.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_streams_writes_and_checkpoints() {
    let server = TestServer::start();
    let mut c = with_schema(&server).await;
    let start = c
        .permissions
        .write_relationships(touch_all(&["doc:1#viewer@user:a"]))
        .await
        .unwrap()
        .into_inner()
        .written_at;
    let mut stream = c
        .watch
        .watch(v1::WatchRequest {
            optional_object_types: vec!["doc".into()],
            optional_start_cursor: start,
            optional_update_kinds: vec![v1::WatchKind::IncludeCheckpoints as i32],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    c.permissions
        .write_relationships(touch_all(&["group:g#member@user:x", "doc:2#viewer@user:b"]))
        .await
        .unwrap();
    let mut updates = Vec::new();
    let mut checkpoint = false;
    while updates.is_empty() || !checkpoint {
        let response = tokio::time::timeout(Duration::from_secs(60), stream.message())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert!(response.changes_through.is_some());
        if response.is_checkpoint {
            checkpoint = true;
        }
        updates.extend(response.updates.iter().map(|u| {
            assert_eq!(
                u.operation,
                v1::relationship_update::Operation::Touch as i32
            );
            text(u.relationship.as_ref().unwrap())
        }));
    }
    // The group write is filtered out by object type.
    assert_eq!(updates, ["doc:2#viewer@user:b"]);

    let err = c
        .watch
        .watch(v1::WatchRequest {
            optional_start_cursor: Some(v1::ZedToken {
                token: "garbage".into(),
            }),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_carry_spicedb_status_codes() {
    use v1::relationship_update::Operation;
    let server = TestServer::start_with(|config| {
        config.engine.max_depth = 5;
        config.limits.max_import_bytes = 2_000;
    });
    let mut c = with_schema(&server).await;

    // Wrong or missing key.
    let mut wrong = Clients::connect(&server, "wrong-key").await;
    let err = wrong
        .schema
        .read_schema(v1::ReadSchemaRequest {})
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);
    let channel = Channel::from_shared(format!("http://{}", server.grpc_addr))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let err = SchemaServiceClient::new(channel)
        .read_schema(v1::ReadSchemaRequest {})
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);
    assert!(err.message().contains("authorization"), "{}", err.message());

    // Unknown relation, unknown type, malformed ids.
    let err = c
        .permissions
        .check_permission(check_request("doc:1", "viewr", "user:ann", None))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().contains("viewr"), "{}", err.message());
    let err = c
        .permissions
        .write_relationships(touch_all(&["pad:1#viewer@user:ann"]))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().contains("pad"), "{}", err.message());
    let err = c
        .permissions
        .check_permission(check_request("doc:has space", "view", "user:ann", None))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);

    // A failed precondition applies nothing.
    let err = c
        .permissions
        .write_relationships(v1::WriteRelationshipsRequest {
            updates: vec![update(Operation::Touch, "doc:1#viewer@user:ann")],
            optional_preconditions: vec![v1::Precondition {
                operation: v1::precondition::Operation::MustMatch as i32,
                filter: Some(v1::RelationshipFilter {
                    resource_type: "doc".into(),
                    optional_resource_id: "1".into(),
                    ..Default::default()
                }),
            }],
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    let answer = c
        .permissions
        .check_permission(check_request("doc:1", "view", "user:ann", None))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(answer.permissionship, NO);

    // CREATE of an existing relationship.
    let create = v1::WriteRelationshipsRequest {
        updates: vec![update(Operation::Create, "doc:1#owner@user:ann")],
        ..Default::default()
    };
    c.permissions
        .write_relationships(create.clone())
        .await
        .unwrap();
    let err = c.permissions.write_relationships(create).await.unwrap_err();
    assert_eq!(err.code(), Code::AlreadyExists);

    // An orphaning schema change.
    let err = c
        .schema
        .write_schema(v1::WriteSchemaRequest {
            schema: SCHEMA.replace("relation owner: user", "relation owner: group#member"),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");

    // Limits: depth and import size.
    c.permissions
        .write_relationships(touch_all(&[
            "group:g1#member@group:g2#member",
            "group:g2#member@group:g3#member",
            "group:g3#member@group:g4#member",
            "group:g4#member@group:g5#member",
            "group:g5#member@user:deep",
            "doc:deep#viewer@group:g1#member",
        ]))
        .await
        .unwrap();
    let err = c
        .permissions
        .check_permission(check_request("doc:deep", "view", "user:deep", None))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::ResourceExhausted, "{err:?}");
    let big: Vec<v1::ImportBulkRelationshipsRequest> = (0..10)
        .map(|n| v1::ImportBulkRelationshipsRequest {
            relationships: (0..10)
                .map(|i| relationship(&format!("doc:big{n}x{i}#viewer@user:someone")))
                .collect(),
        })
        .collect();
    let err = c
        .permissions
        .import_bulk_relationships(futures_util::stream::iter(big))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::ResourceExhausted, "{err:?}");

    // Tokens and cursors from elsewhere.
    let mut bad_token = check_request("doc:1", "view", "user:ann", None);
    bad_token.consistency = Some(v1::Consistency {
        requirement: Some(v1::consistency::Requirement::AtExactSnapshot(
            v1::ZedToken {
                token: "not-a-token".into(),
            },
        )),
    });
    let err = c.permissions.check_permission(bad_token).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_wire_formats_share_one_engine() {
    let server = TestServer::start();
    let mut c = with_schema(&server).await;
    server.ok(
        "/v1/relationships/write",
        &crate::server_support::touch(&["doc:shared#viewer@user:http"]),
    );
    let answer = c
        .permissions
        .check_permission(check_request("doc:shared", "view", "user:http", None))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(answer.permissionship, HAS);
    // A token minted over gRPC is accepted over HTTP.
    let token = c
        .permissions
        .write_relationships(touch_all(&["doc:shared#viewer@user:grpc"]))
        .await
        .unwrap()
        .into_inner()
        .written_at
        .unwrap()
        .token;
    let answer = server.ok(
        "/v1/permissions/check",
        &crate::server_support::check_body(
            "doc:shared",
            "view",
            "user:grpc",
            serde_json::json!({"atLeastAsFresh": {"token": token}}),
        ),
    );
    assert_eq!(answer["permissionship"], "PERMISSIONSHIP_HAS_PERMISSION");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_and_reflection_are_served_without_a_key() {
    let server = TestServer::start();
    let channel = Channel::from_shared(format!("http://{}", server.grpc_addr))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut health = tonic_health::pb::health_client::HealthClient::new(channel);
    let status = health
        .check(tonic_health::pb::HealthCheckRequest {
            service: "authzed.api.v1.PermissionsService".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .status;
    assert_eq!(
        status,
        tonic_health::pb::health_check_response::ServingStatus::Serving as i32
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_clients_connect_with_the_configured_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let cert_pem = certified.cert.pem();
    let cert = dir.path().join("cert.pem");
    let key = dir.path().join("key.pem");
    std::fs::write(&cert, &cert_pem).unwrap();
    std::fs::write(&key, certified.key_pair.serialize_pem()).unwrap();
    let server = TestServer::start_with(|config| {
        config.grpc_tls = Some(zanzi::api::grpc::TlsFiles {
            cert: cert.clone(),
            key: key.clone(),
        });
    });
    let tls = tonic::transport::ClientTlsConfig::new()
        .ca_certificate(tonic::transport::Certificate::from_pem(&cert_pem))
        .domain_name("localhost");
    let channel = Channel::from_shared(format!("https://{}", server.grpc_addr))
        .unwrap()
        .tls_config(tls)
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut c = Clients::over(channel, &server.key);
    c.schema
        .write_schema(v1::WriteSchemaRequest {
            schema: SCHEMA.into(),
        })
        .await
        .unwrap();
    let read = c
        .schema
        .read_schema(v1::ReadSchemaRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(read.schema_text, SCHEMA);
    // A plaintext client cannot talk to the TLS listener.
    let plaintext = Channel::from_shared(format!("http://{}", server.grpc_addr))
        .unwrap()
        .connect()
        .await;
    if let Ok(channel) = plaintext {
        let mut plain = Clients::over(channel, &server.key);
        assert!(plain
            .schema
            .read_schema(v1::ReadSchemaRequest {})
            .await
            .is_err());
    }
}

/// A check reading more rows than a walk answered on the async thread may take
/// (`api::service::INLINE_STEPS`) moves to the blocking pool and answers the same on both
/// wires as a short one answered inline.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checks_longer_than_the_inline_limit_answer_on_both_wires() {
    let server = TestServer::start();
    let mut c = Clients::connect(&server, &server.key).await;
    c.schema
        .write_schema(v1::WriteSchemaRequest {
            schema: "definition user {}
definition team { relation member: user }
definition doc {
    relation viewer: user | team#member
    permission view = viewer
}"
            .into(),
        })
        .await
        .unwrap();
    let mut texts: Vec<String> = (0..200)
        .map(|i| format!("doc:wide#viewer@team:t{i:03}#member"))
        .collect();
    texts.push("team:t199#member@user:ann".to_string());
    texts.push("doc:narrow#viewer@user:ann".to_string());
    let texts: Vec<&str> = texts.iter().map(String::as_str).collect();
    server.ok(
        "/v1/relationships/write",
        &crate::server_support::touch(&texts),
    );
    for (doc, who, want) in [
        ("doc:wide", "user:ann", HAS),
        ("doc:wide", "user:bob", NO),
        ("doc:narrow", "user:ann", HAS),
        ("doc:narrow", "user:bob", NO),
    ] {
        let answer = c
            .permissions
            .check_permission(check_request(doc, "view", who, None))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(answer.permissionship, want, "{doc} {who} over gRPC");
        assert!(answer.checked_at.is_some());
        let answer = server.ok(
            "/v1/permissions/check",
            &crate::server_support::check_body(
                doc,
                "view",
                who,
                serde_json::json!({"fullyConsistent": true}),
            ),
        );
        let want = if want == HAS {
            "PERMISSIONSHIP_HAS_PERMISSION"
        } else {
            "PERMISSIONSHIP_NO_PERMISSION"
        };
        assert_eq!(answer["permissionship"], want, "{doc} {who} over HTTP");
        assert!(answer["checkedAt"]["token"].is_string(), "{answer}");
    }
}
