// Blob versioning, soft delete and undelete, container soft delete and restore, and Set
// Blob Expiry through Microsoft's JavaScript SDK. Our emulator is started with
// --blobVersioning and --containerSoftDeleteDays (Azure: account settings); the emulator's
// clock is moved to pass retention and expiry times. Azurite has none of these features.
// Run: node --test conformance-tests/js
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { KEY, require, start, unique } from "./target.mjs";
import { azuriteLacks, refused } from "./helpers.mjs";

const { BlobServiceClient } = require("@azure/storage-blob");

let t;
let svc;

before(async () => {
  t = await start(["--blobVersioning", "--containerSoftDeleteDays", "2"]);
  svc = BlobServiceClient.fromConnectionString(t.connectionString);
});
after(() => t?.stop());

async function advance(seconds) {
  const base = t.blobEndpoint.replace(/\/[^/]+$/, "");
  const r = await fetch(`${base}/_emulator/clock/advance?seconds=${seconds}`, {
    method: "POST",
    headers: { "x-ms-emulator-key": KEY },
  });
  assert.equal(r.status, 200, await r.text());
}

async function container() {
  const c = svc.getContainerClient(unique("jsv"));
  await c.create();
  return c;
}

async function listAll(c, options) {
  const out = [];
  for await (const b of c.listBlobsFlat(options)) out.push(b);
  return out;
}

const text = async (b) => (await b.downloadToBuffer()).toString();

azuriteLacks("versions: every write makes one, each readable, listed in order", "blob versioning", async () => {
  const c = await container();
  const b = c.getBlockBlobClient("doc");
  const v1 = (await b.upload("one", 3)).versionId;
  const v2 = (await b.upload("two", 3)).versionId;
  const v3 = (await b.setMetadata({ k: "v" })).versionId;
  assert.ok(v1 && v2 && v3 && new Set([v1, v2, v3]).size === 3);
  assert.equal(await text(b.withVersion(v1)), "one");
  const p = await b.getProperties();
  assert.equal(p.versionId, v3);
  assert.equal(p.isCurrentVersion, true);
  assert.notEqual((await b.withVersion(v1).getProperties()).isCurrentVersion, true);
  const listed = (await listAll(c, { includeVersions: true })).filter((x) => x.name === "doc");
  assert.deepEqual(listed.map((x) => x.versionId), [v1, v2, v3]);
  assert.deepEqual(listed.map((x) => x.isCurrentVersion === true), [false, false, true]);
  // Deleting the base leaves the versions; a version copied over the base promotes it.
  await b.delete();
  await refused(() => b.getProperties(), 404);
  const promoted = await (await b.beginCopyFromURL(b.withVersion(v1).url)).pollUntilDone();
  assert.equal(promoted.copyStatus, "success");
  assert.equal(await text(b), "one");
  await b.withVersion(v2).delete();
  await refused(() => b.withVersion(v2).getProperties(), 404);
  await refused(() => b.withVersion(promoted.versionId).delete(), 403, "OperationNotAllowedOnRootBlob");
});

azuriteLacks("soft delete: deleted blobs listed, undeleted, purged on the clock", "blob soft delete", async () => {
  await svc.setProperties({ deleteRetentionPolicy: { enabled: true, days: 1 } });
  try {
    const c = await container();
    const b = c.getBlockBlobClient("gone");
    const v1 = (await b.upload("data", 4)).versionId;
    const snap = (await b.createSnapshot()).snapshot;
    // With versioning on, deleting a version soft-deletes it.
    await b.withVersion(v1).delete();
    const deleted = (await listAll(c, { includeVersions: true, includeDeleted: true })).filter((x) => x.deleted);
    assert.deepEqual(deleted.map((x) => x.versionId), [v1]);
    assert.equal(deleted[0].properties.remainingRetentionDays, 1);
    await b.undelete();
    assert.equal(await text(b.withVersion(v1)), "data");
    // A soft-deleted snapshot goes for good once the retention has passed.
    await b.withSnapshot(snap).delete();
    await refused(() => b.withSnapshot(snap).getProperties(), 404);
    await advance(86400 + 60);
    await b.undelete();
    await refused(() => b.withSnapshot(snap).getProperties(), 404);
    assert.equal(await text(b), "data");
  } finally {
    await svc.setProperties({ deleteRetentionPolicy: { enabled: false } });
  }
});

azuriteLacks("container soft delete: listed with its version and restored", "container soft delete", async () => {
  const c = await container();
  await c.getBlockBlobClient("inside").upload("kept", 4);
  await c.delete();
  const found = [];
  for await (const x of svc.listContainers({ prefix: c.containerName, includeDeleted: true })) found.push(x);
  assert.equal(found.length, 1);
  assert.equal(found[0].deleted, true);
  assert.equal(found[0].properties.remainingRetentionDays, 2);
  const { containerClient } = await svc.undeleteContainer(c.containerName, found[0].version);
  assert.equal(await text(containerClient.getBlockBlobClient("inside")), "kept");
  await refused(() => svc.undeleteContainer(c.containerName, found[0].version), 404, "ContainerNotFound");
});

azuriteLacks("set blob expiry: the blob is gone at its time", "Set Blob Expiry", async () => {
  const c = await container();
  const b = c.getBlockBlobClient("brief");
  await b.upload("x", 1);
  // The public API has setExpiry on Data Lake files; the blob client's generated layer
  // carries the same operation.
  await b["blobContext"].setExpiry("RelativeToNow", { expiresOn: "60000" });
  assert.ok((await b.getProperties())._response.headers.get("x-ms-expiry-time"));
  await advance(61);
  await refused(() => b.getProperties(), 404);
});
