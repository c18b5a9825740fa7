"""Drives a live zanzi through SpiceDB's official Python client (`authzed` from PyPI).

Usage: python spicedb_client_check.py  (ZANZI_GRPC_ADDR=host:port, ZANZI_KEY=preshared key)

Every step asserts the answer; the script prints one line per step and exits non-zero on the
first failure. tests/it/python_client.rs runs it against a server on a loopback port.
"""

import os
import sys
import threading
import queue

import grpc
from authzed.api.v1 import (
    CheckBulkPermissionsRequest,
    ComputablePermissionsRequest,
    DependentRelationsRequest,
    DiffSchemaRequest,
    ReflectSchemaRequest,
    CheckBulkPermissionsRequestItem,
    CheckPermissionRequest,
    CheckPermissionResponse,
    Client,
    Consistency,
    Cursor,
    DeleteRelationshipsRequest,
    DeleteRelationshipsResponse,
    ExpandPermissionTreeRequest,
    LookupResourcesRequest,
    LookupSubjectsRequest,
    ObjectReference,
    Precondition,
    ReadRelationshipsRequest,
    ReadSchemaRequest,
    Relationship,
    RelationshipFilter,
    RelationshipUpdate,
    SubjectFilter,
    SubjectReference,
    WatchRequest,
    WriteRelationshipsRequest,
    WriteSchemaRequest,
    ZedToken,
)
from authzed.api.v1.debug_pb2 import CheckDebugTrace
from authzed.api.v1.permission_service_pb2 import (
    ExportBulkRelationshipsRequest,
    ImportBulkRelationshipsRequest,
    LookupPermissionship,
)
from grpcutil import insecure_bearer_token_credentials

ADDR = os.environ["ZANZI_GRPC_ADDR"]
KEY = os.environ["ZANZI_KEY"]

SCHEMA = """
definition user {}

definition group {
    relation member: user | group#member
}

definition doc {
    relation owner: user
    relation viewer: user | group#member
    permission edit = owner
    permission view = viewer + edit
}
"""


def step(name):
    print(f"ok: {name}", flush=True)


def obj(text):
    object_type, object_id = text.split(":")
    return ObjectReference(object_type=object_type, object_id=object_id)


def subj(text):
    object_text, _, relation = text.partition("#")
    return SubjectReference(object=obj(object_text), optional_relation=relation)


def rel(text):
    resource, rest = text.split("#", 1)
    relation, subject = rest.split("@", 1)
    return Relationship(resource=obj(resource), relation=relation, subject=subj(subject))


def update(op, text):
    return RelationshipUpdate(operation=op, relationship=rel(text))


def text_of(r):
    s = f"{r.resource.object_type}:{r.resource.object_id}#{r.relation}@{r.subject.object.object_type}:{r.subject.object.object_id}"
    if r.subject.optional_relation:
        s += "#" + r.subject.optional_relation
    return s


def expect_code(code, call):
    try:
        call()
    except grpc.RpcError as err:
        assert err.code() == code, f"expected {code}, got {err.code()}: {err.details()}"
        return err.details()
    raise AssertionError(f"expected {code}, the call succeeded")


def fresh(token):
    return Consistency(at_least_as_fresh=token)


def check(client, resource, permission, subject, consistency=None):
    response = client.CheckPermission(
        CheckPermissionRequest(
            consistency=consistency or Consistency(fully_consistent=True),
            resource=obj(resource),
            permission=permission,
            subject=subj(subject),
        )
    )
    return response


def main():
    client = Client(ADDR, insecure_bearer_token_credentials(KEY))
    has = CheckPermissionResponse.PERMISSIONSHIP_HAS_PERMISSION
    no = CheckPermissionResponse.PERMISSIONSHIP_NO_PERMISSION

    # Schema.
    written = client.WriteSchema(WriteSchemaRequest(schema=SCHEMA))
    assert written.written_at.token
    read = client.ReadSchema(ReadSchemaRequest())
    assert "permission view = viewer + edit" in read.schema_text, read.schema_text
    step("WriteSchema, ReadSchema")

    # The reflection calls.
    reflected = client.ReflectSchema(ReflectSchemaRequest())
    assert [d.name for d in reflected.definitions] == ["doc", "group", "user"], reflected
    doc = reflected.definitions[0]
    assert [r.name for r in doc.relations] == ["owner", "viewer"], doc
    assert [p.name for p in doc.permissions] == ["edit", "view"], doc
    dependent = client.DependentRelations(DependentRelationsRequest(definition_name="doc", permission_name="view"))
    assert {(r.definition_name, r.relation_name) for r in dependent.relations} == {
        ("doc", "viewer"), ("doc", "edit"), ("doc", "owner"), ("group", "member")
    }, dependent
    computable = client.ComputablePermissions(ComputablePermissionsRequest(definition_name="doc", relation_name="owner"))
    assert {(p.relation_name, p.is_permission) for p in computable.permissions} == {("edit", True), ("view", True)}, computable
    diff = client.DiffSchema(DiffSchemaRequest(comparison_schema=SCHEMA + "\ndefinition team {}\n"))
    assert [d.WhichOneof("diff") for d in diff.diffs] == ["definition_added"], diff
    assert diff.diffs[0].definition_added.name == "team"
    step("ReflectSchema, DependentRelations, ComputablePermissions, DiffSchema")

    # Writes: CREATE and TOUCH, then DELETE guarded by a precondition.
    first = client.WriteRelationships(
        WriteRelationshipsRequest(
            updates=[
                update(RelationshipUpdate.OPERATION_CREATE, "doc:readme#owner@user:ann"),
                update(RelationshipUpdate.OPERATION_CREATE, "group:eng#member@user:bob"),
                update(RelationshipUpdate.OPERATION_TOUCH, "doc:readme#viewer@group:eng#member"),
                update(RelationshipUpdate.OPERATION_TOUCH, "doc:spec#viewer@user:cid"),
                update(RelationshipUpdate.OPERATION_TOUCH, "doc:plan#viewer@user:bob"),
            ]
        )
    )
    touched = client.WriteRelationships(
        WriteRelationshipsRequest(
            updates=[update(RelationshipUpdate.OPERATION_TOUCH, "doc:readme#owner@user:ann")]
        )
    )
    deleted = client.WriteRelationships(
        WriteRelationshipsRequest(
            updates=[update(RelationshipUpdate.OPERATION_DELETE, "doc:spec#viewer@user:cid")],
            optional_preconditions=[
                Precondition(
                    operation=Precondition.OPERATION_MUST_MATCH,
                    filter=RelationshipFilter(resource_type="doc", optional_resource_id="spec"),
                )
            ],
        )
    )
    assert first.written_at.token and touched.written_at.token and deleted.written_at.token
    step("WriteRelationships CREATE/TOUCH/DELETE with a precondition")

    # CheckPermission with the write's ZedToken.
    token = deleted.written_at
    answer = check(client, "doc:readme", "view", "user:bob", fresh(token))
    assert answer.permissionship == has, answer
    assert answer.checked_at.token
    assert check(client, "doc:spec", "view", "user:cid", fresh(token)).permissionship == no
    assert check(client, "doc:readme", "edit", "user:bob", fresh(token)).permissionship == no
    step("CheckPermission with at_least_as_fresh")

    # CheckBulkPermissions.
    items = [
        CheckBulkPermissionsRequestItem(resource=obj("doc:readme"), permission="view", subject=subj("user:ann")),
        CheckBulkPermissionsRequestItem(resource=obj("doc:readme"), permission="edit", subject=subj("user:bob")),
        CheckBulkPermissionsRequestItem(resource=obj("doc:plan"), permission="view", subject=subj("user:bob")),
    ]
    bulk = client.CheckBulkPermissions(CheckBulkPermissionsRequest(consistency=fresh(token), items=items))
    answers = [pair.item.permissionship for pair in bulk.pairs]
    assert answers == [has, no, has], answers
    assert bulk.pairs[0].request.resource.object_id == "readme"
    step("CheckBulkPermissions")

    # CheckPermission with_tracing: SpiceDB's DebugInformation, read by the official client.
    traced = client.CheckPermission(
        CheckPermissionRequest(
            consistency=fresh(token),
            resource=obj("doc:readme"),
            permission="edit",
            subject=subj("user:ann"),
            with_tracing=True,
        )
    )
    assert traced.permissionship == has, traced
    assert "permission edit = owner" in traced.debug_trace.schema_used, traced.debug_trace.schema_used
    root = traced.debug_trace.check
    assert (root.resource.object_type, root.resource.object_id, root.permission) == ("doc", "readme", "edit"), root
    assert root.permission_type == CheckDebugTrace.PERMISSION_TYPE_PERMISSION, root
    assert root.result == CheckDebugTrace.PERMISSIONSHIP_HAS_PERMISSION, root
    assert root.subject.object.object_id == "ann", root
    assert root.WhichOneof("resolution") == "sub_problems", root
    assert root.HasField("duration"), root
    [owner] = root.sub_problems.traces
    assert (owner.permission, owner.permission_type) == ("owner", CheckDebugTrace.PERMISSION_TYPE_RELATION), owner
    assert owner.result == CheckDebugTrace.PERMISSIONSHIP_HAS_PERMISSION, owner
    assert owner.WhichOneof("resolution") == "was_cached_result" and not owner.was_cached_result, owner
    untraced = check(client, "doc:readme", "edit", "user:ann", fresh(token))
    assert not untraced.HasField("debug_trace"), untraced
    step("CheckPermission with_tracing returns SpiceDB's debug trace")

    # ExpandPermissionTree.
    tree = client.ExpandPermissionTree(
        ExpandPermissionTreeRequest(consistency=fresh(token), resource=obj("doc:readme"), permission="view")
    )
    root = tree.tree_root
    assert root.expanded_relation == "view" and root.expanded_object.object_id == "readme"
    assert root.WhichOneof("tree_type") == "intermediate", root
    leaves = []

    def walk(node):
        if node.WhichOneof("tree_type") == "leaf":
            leaves.extend(
                f"{s.object.object_type}:{s.object.object_id}" + (f"#{s.optional_relation}" if s.optional_relation else "")
                for s in node.leaf.subjects
            )
        else:
            for child in node.intermediate.children:
                walk(child)

    walk(root)
    assert "group:eng#member" in leaves and "user:ann" in leaves, leaves
    step("ExpandPermissionTree")

    # LookupResources, streamed one at a time with cursors.
    found, cursor = [], None
    while True:
        request = LookupResourcesRequest(
            consistency=fresh(token),
            resource_object_type="doc",
            permission="view",
            subject=subj("user:bob"),
            optional_limit=1,
        )
        if cursor is not None:
            request.optional_cursor.CopyFrom(cursor)
        page = list(client.LookupResources(request))
        if not page:
            break
        assert len(page) == 1, page
        assert page[0].permissionship == LookupPermissionship.LOOKUP_PERMISSIONSHIP_HAS_PERMISSION
        found.append(page[0].resource_object_id)
        cursor = page[0].after_result_cursor
    assert found == ["plan", "readme"], found
    step("LookupResources with cursors")

    # LookupSubjects, streamed with a concrete limit and cursors.
    client.WriteRelationships(
        WriteRelationshipsRequest(
            updates=[update(RelationshipUpdate.OPERATION_TOUCH, "group:eng#member@user:dee")]
        )
    )
    subjects, cursor = [], None
    while True:
        request = LookupSubjectsRequest(
            resource=obj("doc:readme"),
            permission="view",
            subject_object_type="user",
            optional_concrete_limit=2,
        )
        if cursor is not None:
            request.optional_cursor.CopyFrom(cursor)
        page = list(client.LookupSubjects(request))
        if not page:
            break
        assert len(page) <= 2, page
        subjects.extend(r.subject.subject_object_id for r in page)
        cursor = page[-1].after_result_cursor
    assert subjects == ["ann", "bob", "dee"], subjects
    step("LookupSubjects with cursors")

    # ReadRelationships with filters (resource type + relation + subject filter; then paged).
    read = list(
        client.ReadRelationships(
            ReadRelationshipsRequest(
                relationship_filter=RelationshipFilter(
                    resource_type="doc",
                    optional_relation="viewer",
                    optional_subject_filter=SubjectFilter(
                        subject_type="group",
                        optional_relation=SubjectFilter.RelationFilter(relation="member"),
                    ),
                )
            )
        )
    )
    assert [text_of(r.relationship) for r in read] == ["doc:readme#viewer@group:eng#member"], read
    all_docs, cursor = [], None
    while True:
        request = ReadRelationshipsRequest(relationship_filter=RelationshipFilter(resource_type="doc"), optional_limit=1)
        if cursor is not None:
            request.optional_cursor.CopyFrom(cursor)
        page = list(client.ReadRelationships(request))
        if not page:
            break
        all_docs.extend(text_of(r.relationship) for r in page)
        cursor = page[-1].after_result_cursor
    assert len(all_docs) == 3, all_docs
    step("ReadRelationships with filters and cursors")

    # Watch receives a write made after it started.
    events = queue.Queue()
    watch_token = client.WriteRelationships(
        WriteRelationshipsRequest(updates=[update(RelationshipUpdate.OPERATION_TOUCH, "doc:watched#owner@user:ann")])
    ).written_at
    stream = client.Watch(WatchRequest(optional_object_types=["doc"], optional_start_cursor=watch_token))

    def follow():
        try:
            for response in stream:
                events.put(response)
                return
        except grpc.RpcError as err:
            events.put(err)

    threading.Thread(target=follow, daemon=True).start()
    client.WriteRelationships(
        WriteRelationshipsRequest(updates=[update(RelationshipUpdate.OPERATION_TOUCH, "doc:watched#viewer@user:bob")])
    )
    event = events.get(timeout=60)
    assert not isinstance(event, Exception), event
    assert [text_of(u.relationship) for u in event.updates] == ["doc:watched#viewer@user:bob"], event
    assert event.updates[0].operation == RelationshipUpdate.OPERATION_TOUCH
    assert event.changes_through.token
    stream.cancel()
    step("Watch receives a write")

    # DeleteRelationships by filter.
    result = client.DeleteRelationships(
        DeleteRelationshipsRequest(
            relationship_filter=RelationshipFilter(resource_type="doc", optional_resource_id="watched")
        )
    )
    assert result.relationships_deleted_count == 2, result
    assert result.deletion_progress == DeleteRelationshipsResponse.DELETION_PROGRESS_COMPLETE
    left = list(
        client.ReadRelationships(
            ReadRelationshipsRequest(
                consistency=fresh(result.deleted_at),
                relationship_filter=RelationshipFilter(resource_type="doc", optional_resource_id="watched"),
            )
        )
    )
    assert left == [], left
    step("DeleteRelationships by filter")

    # ImportBulkRelationships, then ExportBulkRelationships gives them back.
    imported = [f"doc:bulk{i:03}#viewer@user:u{i:03}" for i in range(250)]

    def chunks():
        for start in range(0, len(imported), 100):
            yield ImportBulkRelationshipsRequest(relationships=[rel(t) for t in imported[start : start + 100]])

    loaded = client.ImportBulkRelationships(chunks())
    assert loaded.num_loaded == 250, loaded
    exported, cursor = [], None
    while True:
        request = ExportBulkRelationshipsRequest(
            optional_limit=100,
            optional_relationship_filter=RelationshipFilter(resource_type="doc", optional_resource_id_prefix="bulk"),
        )
        if cursor is not None:
            request.optional_cursor.CopyFrom(cursor)
        batches = list(client.ExportBulkRelationships(request))
        page = [text_of(r) for batch in batches for r in batch.relationships]
        if not page:
            break
        exported.extend(page)
        cursor = batches[-1].after_result_cursor
    assert sorted(exported) == sorted(imported), (len(exported), exported[:3])
    step("ImportBulkRelationships then ExportBulkRelationships")

    # Errors.
    wrong = Client(ADDR, insecure_bearer_token_credentials("not-the-key"))
    expect_code(grpc.StatusCode.UNAUTHENTICATED, lambda: wrong.ReadSchema(ReadSchemaRequest()))
    details = expect_code(
        grpc.StatusCode.INVALID_ARGUMENT,
        lambda: check(client, "doc:readme", "viewr", "user:ann"),
    )
    assert "viewr" in details, details
    details = expect_code(
        grpc.StatusCode.FAILED_PRECONDITION,
        lambda: client.WriteRelationships(
            WriteRelationshipsRequest(
                updates=[update(RelationshipUpdate.OPERATION_TOUCH, "doc:x#viewer@user:ann")],
                optional_preconditions=[
                    Precondition(
                        operation=Precondition.OPERATION_MUST_NOT_MATCH,
                        filter=RelationshipFilter(resource_type="doc", optional_resource_id="readme"),
                    )
                ],
            )
        ),
    )
    assert details, "the failed precondition has no message"
    assert check(client, "doc:x", "view", "user:ann").permissionship == no, "a refused write was applied"
    step("errors: UNAUTHENTICATED, INVALID_ARGUMENT, FAILED_PRECONDITION")
    print("all steps passed")


if __name__ == "__main__":
    try:
        main()
    except AssertionError as err:
        print(f"FAILED: {err}", file=sys.stderr)
        raise
