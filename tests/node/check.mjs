// SpiceDB's official Node.js client (@authzed/authzed-node, pinned in package.json) against a
// running zanzi: every PermissionsService and SchemaService call, each answer asserted.
// Run by tests/it/node_client.rs with ZANZI_ENDPOINT (`localhost:PORT`) and ZANZI_KEY.
import assert from "node:assert/strict";
import * as grpc from "@grpc/grpc-js";
import { v1 } from "@authzed/authzed-node";

const endpoint = process.env.ZANZI_ENDPOINT;
const key = process.env.ZANZI_KEY;
assert.ok(endpoint && key, "set ZANZI_ENDPOINT and ZANZI_KEY");

// The client sends the token over plaintext only to endpoints starting with `localhost:`.
const { promises: client } = v1.NewClient(
  key,
  endpoint,
  v1.ClientSecurity.INSECURE_LOCALHOST_ALLOWED,
);

const SCHEMA = `definition user {}

definition group {
  relation member: user | group#member
}

definition doc {
  relation owner: user
  relation viewer: user | group#member
  permission view = viewer + owner
}`;

const object = (objectType, objectId) => v1.ObjectReference.create({ objectType, objectId });
const subject = (objectType, objectId, optionalRelation = "") =>
  v1.SubjectReference.create({ object: object(objectType, objectId), optionalRelation });
const relationship = (resource, relation, who) =>
  v1.Relationship.create({ resource, relation, subject: who });
const full = v1.Consistency.create({
  requirement: { oneofKind: "fullyConsistent", fullyConsistent: true },
});

async function refused(call, code) {
  try {
    await call();
  } catch (err) {
    assert.equal(err.code, code, `expected gRPC code ${code}, got ${err.code}: ${err.details}`);
    return err;
  }
  assert.fail("the call should have failed");
}

/** The google.rpc.ErrorInfo reason in an error's status details, if any. */
function reason(err) {
  const raw = err.metadata?.get("grpc-status-details-bin")?.[0];
  if (!raw) return undefined;
  // google.rpc.Status: details (field 3) is an Any whose value (field 2) is an ErrorInfo whose
  // reason is field 1. A small reader of the wire format is enough for that.
  const fields = (bytes) => {
    const out = [];
    let at = 0;
    const varint = () => {
      let value = 0, shift = 0, b;
      do { b = bytes[at++]; value += (b & 0x7f) * 2 ** shift; shift += 7; } while (b & 0x80);
      return value;
    };
    while (at < bytes.length) {
      const tag = varint();
      if ((tag & 7) === 2) {
        const len = varint();
        out.push([tag >> 3, bytes.subarray(at, at + len)]);
        at += len;
      } else {
        out.push([tag >> 3, varint()]);
      }
    }
    return out;
  };
  for (const [n, any] of fields(raw)) {
    if (n !== 3) continue;
    for (const [m, info] of fields(any)) {
      if (m !== 2) continue;
      for (const [k, text] of fields(info)) {
        if (k === 1) return Buffer.from(text).toString();
      }
    }
  }
  return undefined;
}

// ---- SchemaService ----
const written = await client.writeSchema(v1.WriteSchemaRequest.create({ schema: SCHEMA }));
assert.ok(written.writtenAt?.token, "writeSchema answers a token");
const read = await client.readSchema(v1.ReadSchemaRequest.create({}));
assert.match(read.schemaText, /relation viewer: user \| group#member/);

const reflected = await client.reflectSchema(v1.ReflectSchemaRequest.create({}));
assert.deepEqual(
  reflected.definitions.map((d) => d.name).sort(),
  ["doc", "group", "user"],
);
const docDefinition = reflected.definitions.find((d) => d.name === "doc");
assert.deepEqual(docDefinition.permissions.map((p) => p.name), ["view"]);

const computable = await client.computablePermissions(
  v1.ComputablePermissionsRequest.create({ definitionName: "doc", relationName: "viewer" }),
);
assert.deepEqual(
  computable.permissions.map((p) => `${p.definitionName}#${p.relationName}`),
  ["doc#view"],
);
const dependent = await client.dependentRelations(
  v1.DependentRelationsRequest.create({ definitionName: "doc", permissionName: "view" }),
);
assert.deepEqual(
  dependent.relations.map((r) => `${r.definitionName}#${r.relationName}`).sort(),
  ["doc#owner", "doc#viewer", "group#member"],
);
const diff = await client.diffSchema(
  v1.DiffSchemaRequest.create({ comparisonSchema: SCHEMA + "\ndefinition folder {}" }),
);
assert.equal(diff.diffs.length, 1);
assert.equal(diff.diffs[0].diff.oneofKind, "definitionAdded");

const badSchema = await refused(
  () => client.writeSchema(v1.WriteSchemaRequest.create({ schema: "definition doc { relation viewer: usr }" })),
  grpc.status.INVALID_ARGUMENT,
);
assert.equal(reason(badSchema), "ERROR_REASON_SCHEMA_TYPE_ERROR");

// ---- PermissionsService ----
const tom = subject("user", "tom");
const writeAnswer = await client.writeRelationships(
  v1.WriteRelationshipsRequest.create({
    updates: [
      v1.RelationshipUpdate.create({
        operation: v1.RelationshipUpdate_Operation.CREATE,
        relationship: relationship(object("doc", "d1"), "viewer", tom),
      }),
      v1.RelationshipUpdate.create({
        operation: v1.RelationshipUpdate_Operation.TOUCH,
        relationship: relationship(object("doc", "d1"), "viewer", subject("group", "eng", "member")),
      }),
      v1.RelationshipUpdate.create({
        operation: v1.RelationshipUpdate_Operation.TOUCH,
        relationship: relationship(object("group", "eng"), "member", subject("user", "ann")),
      }),
    ],
  }),
);
assert.ok(writeAnswer.writtenAt?.token);

// A CREATE of what exists: ALREADY_EXISTS, the message with `#` as is, and SpiceDB's reason.
const again = await refused(
  () =>
    client.writeRelationships(
      v1.WriteRelationshipsRequest.create({
        updates: [
          v1.RelationshipUpdate.create({
            operation: v1.RelationshipUpdate_Operation.CREATE,
            relationship: relationship(object("doc", "d1"), "viewer", tom),
          }),
        ],
      }),
    ),
  grpc.status.ALREADY_EXISTS,
);
assert.ok(again.details.includes("doc:d1#viewer@user:tom"), `message: ${again.details}`);
assert.ok(!again.details.includes("%23"), `message: ${again.details}`);
assert.equal(reason(again), "ERROR_REASON_ATTEMPT_TO_RECREATE_RELATIONSHIP");

const unknown = await refused(
  () =>
    client.checkPermission(
      v1.CheckPermissionRequest.create({ resource: object("doc", "d1"), permission: "edit", subject: tom }),
    ),
  grpc.status.INVALID_ARGUMENT,
);
assert.equal(reason(unknown), "ERROR_REASON_UNKNOWN_RELATION_OR_PERMISSION");

const check = await client.checkPermission(
  v1.CheckPermissionRequest.create({
    resource: object("doc", "d1"),
    permission: "view",
    subject: subject("user", "ann"),
    consistency: full,
  }),
);
assert.equal(check.permissionship, v1.CheckPermissionResponse_Permissionship.HAS_PERMISSION);

const bulk = await client.checkBulkPermissions(
  v1.CheckBulkPermissionsRequest.create({
    consistency: full,
    items: [
      v1.CheckBulkPermissionsRequestItem.create({ resource: object("doc", "d1"), permission: "view", subject: tom }),
      v1.CheckBulkPermissionsRequestItem.create({ resource: object("doc", "d1"), permission: "view", subject: subject("user", "bob") }),
    ],
  }),
);
assert.deepEqual(
  bulk.pairs.map((p) => p.response.item?.permissionship),
  [
    v1.CheckPermissionResponse_Permissionship.HAS_PERMISSION,
    v1.CheckPermissionResponse_Permissionship.NO_PERMISSION,
  ],
);

const expanded = await client.expandPermissionTree(
  v1.ExpandPermissionTreeRequest.create({ resource: object("doc", "d1"), permission: "view", consistency: full }),
);
assert.equal(expanded.treeRoot?.treeType.oneofKind, "intermediate");

const resources = await client.lookupResources(
  v1.LookupResourcesRequest.create({
    resourceObjectType: "doc",
    permission: "view",
    subject: subject("user", "ann"),
    consistency: full,
  }),
);
assert.deepEqual(resources.map((r) => r.resourceObjectId), ["d1"]);

const subjects = await client.lookupSubjects(
  v1.LookupSubjectsRequest.create({
    resource: object("doc", "d1"),
    permission: "view",
    subjectObjectType: "user",
    consistency: full,
  }),
);
assert.deepEqual(subjects.map((s) => s.subject?.subjectObjectId).sort(), ["ann", "tom"]);

const relationships = await client.readRelationships(
  v1.ReadRelationshipsRequest.create({
    relationshipFilter: v1.RelationshipFilter.create({ resourceType: "doc" }),
    consistency: full,
  }),
);
assert.equal(relationships.length, 2);

// ImportBulkRelationships is client-streaming: write messages, then end.
const loaded = await new Promise((resolve, reject) => {
  const stream = client.importBulkRelationships((err, value) => (err ? reject(err) : resolve(value)));
  stream.on("error", reject);
  for (let batch = 0; batch < 3; batch++) {
    const relationships = [];
    for (let i = 0; i < 100; i++) {
      relationships.push(relationship(object("doc", `imported${batch}_${i}`), "owner", tom));
    }
    stream.write(v1.ImportBulkRelationshipsRequest.create({ relationships }));
  }
  stream.end();
});
assert.equal(String(loaded.numLoaded), "300");

const exported = await client.exportBulkRelationships(
  v1.ExportBulkRelationshipsRequest.create({ consistency: full }),
);
assert.equal(exported.reduce((n, page) => n + page.relationships.length, 0), 303);

const deleted = await client.deleteRelationships(
  v1.DeleteRelationshipsRequest.create({
    relationshipFilter: v1.RelationshipFilter.create({ resourceType: "doc", optionalRelation: "owner" }),
  }),
);
assert.ok(deleted.deletedAt?.token);
const after = await client.readRelationships(
  v1.ReadRelationshipsRequest.create({
    relationshipFilter: v1.RelationshipFilter.create({ resourceType: "doc" }),
    consistency: full,
  }),
);
assert.equal(after.length, 2);

client.close();
console.log("node client: every call answered as expected");
