// Microsoft's JavaScript SDK (@azure/storage-blob) against the target: conditions, tags,
// copies (Copy Blob From URL, Put Block From URL, Append Block From URL) and CORS, the
// ground the Python suite covers, through a third SDK. Run: node --test conformance-tests/js
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import crypto from "node:crypto";
import { require, start, unique } from "./target.mjs";
import { azuriteLacks, credential, deviation, refused, sasUrl } from "./helpers.mjs";

const { BlobServiceClient } = require("@azure/storage-blob");

let t;
let svc;

before(async () => {
  t = await start();
  svc = BlobServiceClient.fromConnectionString(t.connectionString);
});
after(() => t?.stop());

async function container() {
  const c = svc.getContainerClient(unique("jsc"));
  await c.create();
  return c;
}

test("conditional reads answer 304 and 412", async () => {
  const c = await container();
  const b = c.getBlockBlobClient("cond.txt");
  const put = await b.upload("conditional", 11);
  const r = await b.download(0, undefined, { conditions: { ifMatch: put.etag } });
  assert.equal(r.contentLength, 11);
  await refused(() => b.download(0, undefined, { conditions: { ifMatch: '"0x8D000000BADBAD0"' } }), 412, "ConditionNotMet");
  await refused(() => b.getProperties({ conditions: { ifNoneMatch: put.etag } }), 304);
  await refused(
    () => b.download(0, undefined, { conditions: { ifModifiedSince: new Date(Date.now() + 3600_000) } }),
    304,
  );
});

test("conditional writes: If-None-Match * and If-Match", async () => {
  const c = await container();
  const b = c.getBlockBlobClient("w.txt");
  await b.upload("one", 3, { conditions: { ifNoneMatch: "*" } });
  await refused(() => b.upload("two", 3, { conditions: { ifNoneMatch: "*" } }), 409, "BlobAlreadyExists");
  await refused(() => b.setMetadata({ a: "b" }, { conditions: { ifMatch: '"0x8D000000BADBAD0"' } }), 412, "ConditionNotMet");
  assert.equal((await b.downloadToBuffer()).toString(), "one");
});

test("a lease guards writes", async () => {
  const c = await container();
  const b = c.getBlockBlobClient("leased.txt");
  await b.upload("x", 1);
  const lease = b.getBlobLeaseClient();
  await lease.acquireLease(15);
  await refused(() => b.setMetadata({ a: "b" }), 412, "LeaseIdMissing");
  await b.setMetadata({ a: "b" }, { conditions: { leaseId: lease.leaseId } });
  await lease.releaseLease();
});

test("tags: set, get, find, and the tag condition", async () => {
  const c = await container();
  const run = crypto.randomUUID().replaceAll("-", "");
  const b = c.getBlockBlobClient("tagged");
  await b.upload("t", 1, { tags: { run, state: "ready" } });
  assert.deepEqual((await b.getTags()).tags, { run, state: "ready" });
  const found = [];
  for await (const item of svc.findBlobsByTags(`"run"='${run}'`)) found.push(item.name);
  assert.deepEqual(found, ["tagged"]);
  await b.getProperties({ conditions: { tagConditions: `"state" = 'ready'` } });
  // A HEAD answer has no body: the status says it.
  await refused(() => b.getProperties({ conditions: { tagConditions: `"state" = 'done'` } }), 412);
  await refused(() => b.download(0, undefined, { conditions: { tagConditions: `"state" = 'done'` } }), 412, "ConditionNotMet");
  await refused(() => b.setMetadata({ a: "b" }, { conditions: { tagConditions: `"state" = 'done'` } }), 412, "ConditionNotMet");
  await refused(() => svc.findBlobsByTags("run = unquoted").next(), 400);
});

test("Copy Blob From URL with a read SAS", async () => {
  const c = await container();
  const src = c.getBlockBlobClient("src");
  await src.upload("copy me", 7, { metadata: { origin: "src" } });
  const dst = c.getBlockBlobClient("dst");
  const r = await dst.syncCopyFromURL(sasUrl(src, "r"));
  assert.equal(r.copyStatus, "success");
  assert.equal((await dst.downloadToBuffer()).toString(), "copy me");
  assert.deepEqual((await dst.getProperties()).metadata, { origin: "src" });
});

deviation(
  "a copy source SAS without read permission is refused",
  "https://learn.microsoft.com/rest/api/storageservices/create-service-sas (Read (r): 'Use a blob as the source of a copy operation'); Azurite 3.37.0 copies from a write-only SAS",
  async () => {
    const c = await container();
    const src = c.getBlockBlobClient("src");
    await src.upload("secret", 6);
    await refused(() => c.getBlockBlobClient("dst").syncCopyFromURL(sasUrl(src, "w")), 403, "CannotVerifyCopySource");
  },
);

test("Put Block From URL stages the source's ranges", async () => {
  const c = await container();
  const data = crypto.randomBytes(300_000);
  const src = c.getBlockBlobClient("src");
  await src.uploadData(data);
  const dst = c.getBlockBlobClient("staged");
  const url = sasUrl(src, "r");
  const ids = [];
  for (const [i, [offset, count]] of [[0, 100_000], [100_000, 200_000]].entries()) {
    const id = Buffer.from(`block-${i}`).toString("base64");
    ids.push(id);
    await dst.stageBlockFromURL(id, url, offset, count);
  }
  await dst.commitBlockList(ids);
  assert.ok((await dst.downloadToBuffer()).equals(data));
  const md5 = crypto.createHash("md5").update(Buffer.from("other")).digest();
  await refused(
    () => dst.stageBlockFromURL(Buffer.from("block-9").toString("base64"), url, 0, 10, { sourceContentMD5: md5 }),
    400,
    "Md5Mismatch",
  );
});

azuriteLacks("Append Block From URL appends the source's range", "Append Block From URL", async () => {
  const c = await container();
  const data = crypto.randomBytes(10_000);
  const src = c.getBlockBlobClient("src");
  await src.uploadData(data);
  const log = c.getAppendBlobClient("log");
  await log.create();
  await log.appendBlockFromURL(sasUrl(src, "r"), 0, 4000);
  const r = await log.appendBlockFromURL(sasUrl(src, "r"), 4000, 1000, { conditions: { appendPosition: 4000 } });
  assert.equal(r.blobAppendOffset, "4000");
  assert.ok((await log.downloadToBuffer()).equals(data.subarray(0, 5000)));
});

async function withCors(rules, body) {
  const before = await svc.getProperties();
  await svc.setProperties({ cors: rules });
  try {
    await body();
  } finally {
    await svc.setProperties({ cors: before.cors ?? [] });
  }
}

test("CORS: preflight and the actual request", async () => {
  const c = await container();
  const b = c.getBlockBlobClient("cors.txt");
  await b.upload("x", 1);
  const origin = "http://app.example";
  await withCors(
    [{ allowedOrigins: origin, allowedMethods: "GET,PUT", allowedHeaders: "x-ms-meta-*", exposedHeaders: "x-ms-request-id", maxAgeInSeconds: 60 }],
    async () => {
      const pre = await fetch(b.url, { method: "OPTIONS", headers: { Origin: origin, "Access-Control-Request-Method": "PUT" } });
      assert.equal(pre.status, 200);
      assert.equal(pre.headers.get("access-control-allow-origin"), origin);
      const bad = await fetch(b.url, { method: "OPTIONS", headers: { Origin: "http://evil.example", "Access-Control-Request-Method": "PUT" } });
      assert.equal(bad.status, 403);
      const got = await fetch(sasUrl(b, "r"), { headers: { Origin: origin } });
      assert.equal(got.status, 200);
      assert.equal(got.headers.get("access-control-allow-origin"), origin);
      assert.equal(got.headers.get("access-control-expose-headers"), "x-ms-request-id");
    },
  );
});

// https://learn.microsoft.com/rest/api/storageservices/cross-origin-resource-sharing--cors--support-for-the-azure-storage-services
// ("Understanding the Vary header")
test("CORS: Vary: Origin as Azure's table has it", async () => {
    const c = await container();
    const b = c.getBlockBlobClient("vary.txt");
    await b.upload("x", 1);
    const url = sasUrl(b, "r");
    await withCors([{ allowedOrigins: "http://app.example", allowedMethods: "GET", allowedHeaders: "", exposedHeaders: "", maxAgeInSeconds: 60 }], async () => {
      assert.equal((await fetch(url, { headers: { Origin: "http://app.example" } })).headers.get("vary"), "Origin");
      assert.equal((await fetch(url, { headers: { Origin: "http://other.example" } })).headers.get("vary"), "Origin");
    });
    await withCors([{ allowedOrigins: "*", allowedMethods: "GET", allowedHeaders: "", exposedHeaders: "", maxAgeInSeconds: 60 }], async () => {
      const r = await fetch(url, { headers: { Origin: "http://app.example" } });
      assert.equal(r.headers.get("access-control-allow-origin"), "*");
      assert.equal(r.headers.get("vary"), null);
    });
});

test("access tiers: inferred Hot, Set Blob Tier, the tier on upload", async () => {
  const c = await container();
  const b = c.getBlockBlobClient("tiered");
  await b.upload("x", 1);
  let p = await b.getProperties();
  assert.equal(p.accessTier, "Hot");
  assert.equal(p.accessTierInferred, true);
  await b.setAccessTier("Cool");
  p = await b.getProperties();
  assert.equal(p.accessTier, "Cool");
  assert.ok(p.accessTierChangedOn instanceof Date);
  const born = c.getBlockBlobClient("born-cold");
  await born.upload("y", 1, { tier: "Cold" });
  assert.equal((await born.getProperties()).accessTier, "Cold");
  const log = c.getAppendBlobClient("log");
  await log.create();
  await refused(() => log.setAccessTier("Cool"), 400, "AccessTierNotSupportedForBlobType");
});

deviation(
  "archived blobs are offline until rehydrated",
  "https://learn.microsoft.com/azure/storage/blobs/access-tiers-overview ('considered to be offline and can't be read or modified'); Azurite 3.37.0 serves archived data and rehydrates at once",
  async () => {
    const c = await container();
    const b = c.getBlockBlobClient("archived");
    await b.upload("data", 4);
    await b.setAccessTier("Archive");
    await refused(() => b.download(), 409, "BlobArchived");
    const r = await b.setAccessTier("Hot", { rehydratePriority: "High" });
    assert.equal(r._response.status, 202);
    const p = await b.getProperties();
    assert.equal(p.archiveStatus, "rehydrate-pending-to-hot");
    assert.equal(p.rehydratePriority, "High");
    await refused(() => b.setAccessTier("Cool"), 409, "BlobBeingRehydrated");
  },
);

test("blob batch: deletes and tiers in one request, each answered on its own", async () => {
  const c = await container();
  const names = ["a", "b", "c"];
  for (const n of names) await c.getBlockBlobClient(n).upload("x", 1);
  const batch = c.getBlobBatchClient();
  const tiers = await batch.setBlobsAccessTier(names.map((n) => c.getBlockBlobClient(n).url), credential, "Cool");
  assert.equal(tiers.subResponsesSucceededCount, 3);
  const urls = [...names, "missing"].map((n) => c.getBlockBlobClient(n).url);
  const r = await batch.deleteBlobs(urls, credential);
  assert.equal(r.subResponsesSucceededCount, 3);
  assert.equal(r.subResponsesFailedCount, 1);
  assert.equal(r.subResponses[3].status, 404);
  assert.equal(r.subResponses[3].errorCode, "BlobNotFound");
  const left = [];
  for await (const b of c.listBlobsFlat()) left.push(b.name);
  assert.deepEqual(left, []);
});
