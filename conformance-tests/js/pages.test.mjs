// Page blobs through Microsoft's JavaScript SDK: create, upload and clear pages, page
// ranges (paged, and the diff against a snapshot), resize and sequence numbers, Put Page
// From URL and incremental copies. Run: node --test conformance-tests/js
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import crypto from "node:crypto";
import { require, start, unique } from "./target.mjs";
import { azuriteLacks, deviation, refused, sasUrl } from "./helpers.mjs";

const { BlobServiceClient } = require("@azure/storage-blob");

const KIB = 1024;
let t;
let svc;

before(async () => {
  t = await start();
  svc = BlobServiceClient.fromConnectionString(t.connectionString);
});
after(() => t?.stop());

async function pageBlob(name = "disk", size = 16 * KIB, options = {}) {
  const c = svc.getContainerClient(unique("jsp"));
  await c.create();
  const b = c.getPageBlobClient(name);
  await b.create(size, options);
  return { c, b };
}

async function bytes(b, offset, count) {
  return (await b.downloadToBuffer(offset, count)).subarray(0, count);
}

// getPageRanges gives {offset, count} with count = End - Start (the SDK's reading of the
// inclusive XML); listPageRanges pages give {start, end}.
const pairs = (list = []) =>
  list.map((r) => (r.start !== undefined ? [r.start, r.end] : [r.offset, r.offset + r.count]));

test("page blobs: create, upload, clear, read back with zeros", async () => {
  const { c, b } = await pageBlob("disk", 16 * KIB, { metadata: { k: "v" }, blobSequenceNumber: 3 });
  const p = await b.getProperties();
  assert.equal(p.blobType, "PageBlob");
  assert.equal(p.contentLength, 16 * KIB);
  assert.equal(p.blobSequenceNumber, 3);
  assert.deepEqual(p.metadata, { k: "v" });
  const data = crypto.randomBytes(2 * KIB);
  const up = await b.uploadPages(data, 4 * KIB, 2 * KIB);
  assert.equal(up.blobSequenceNumber, 3);
  assert.deepEqual(await bytes(b, 3 * KIB, 4 * KIB), Buffer.concat([Buffer.alloc(KIB), data, Buffer.alloc(KIB)]));
  await b.clearPages(4 * KIB, KIB);
  const r = await b.getPageRanges(0, 16 * KIB);
  assert.deepEqual(pairs(r.pageRange), [[5 * KIB, 6 * KIB - 1]]);
  assert.deepEqual(await bytes(b, 4 * KIB, 2 * KIB), Buffer.concat([Buffer.alloc(KIB), data.subarray(KIB)]));
  for await (const item of c.listBlobsFlat()) {
    assert.equal(item.properties.blobType, "PageBlob");
    assert.equal(item.properties.contentLength, 16 * KIB);
    assert.equal(item.properties.blobSequenceNumber, 3);
  }
});

test("page blobs: sequence numbers and their conditions, resize", async () => {
  const { b } = await pageBlob("disk", 8 * KIB);
  await b.updateSequenceNumber("update", 10);
  await b.updateSequenceNumber("max", 7);
  const inc = await b.updateSequenceNumber("increment");
  assert.equal(inc.blobSequenceNumber, 11);
  await b.uploadPages(Buffer.alloc(512, 1), 0, 512, { conditions: { ifSequenceNumberEqualTo: 11 } });
  await refused(
    () => b.uploadPages(Buffer.alloc(512, 1), 0, 512, { conditions: { ifSequenceNumberLessThan: 11 } }),
    412,
    "SequenceNumberConditionNotMet",
  );
  await b.uploadPages(Buffer.alloc(8 * KIB, 2), 0, 8 * KIB);
  await b.resize(2 * KIB);
  assert.equal((await b.getProperties()).contentLength, 2 * KIB);
  assert.deepEqual(pairs((await b.getPageRanges()).pageRange), [[0, 2 * KIB - 1]]);
  await assert.rejects(() => b.uploadPages(Buffer.alloc(512), 2 * KIB, 512), (e) => e.statusCode === 416);
});

deviation(
  "page blobs: a write past the end is 416 InvalidPageRange",
  "Azurite 3.37.0 answers the code 'Requested Range Not Satisfiable'. https://learn.microsoft.com/rest/api/storageservices/blob-service-error-codes (InvalidPageRange)",
  async () => {
    const { b } = await pageBlob("disk", 2 * KIB);
    await refused(() => b.uploadPages(Buffer.alloc(1024), 1536, 1024), 416, "InvalidPageRange");
  },
);

deviation(
  "page blobs: listPageRanges pages through with a marker",
  "Azurite 3.37.0 ignores maxresults and marker. https://learn.microsoft.com/rest/api/storageservices/get-page-ranges (marker and maxresults, 2020-10-02 and later)",
  async () => {
    const { b } = await pageBlob("disk", 32 * KIB);
    for (let i = 0; i < 32; i += 2) await b.uploadPages(Buffer.alloc(512, i), i * KIB, 512);
    const pages = [];
    for await (const page of b.listPageRanges().byPage({ maxPageSize: 6 })) pages.push(pairs(page.pageRange));
    assert.deepEqual(pages.map((p) => p.length), [6, 6, 4]);
    assert.deepEqual(pages.flat()[15], [30 * KIB, 30 * KIB + 511]);
  },
);

azuriteLacks("page blobs: the diff against a snapshot", "Get Page Ranges Diff", async () => {
  const { b } = await pageBlob("disk", 16 * KIB);
  await b.uploadPages(crypto.randomBytes(4 * KIB), 0, 4 * KIB);
  const snap = (await b.createSnapshot()).snapshot;
  await b.uploadPages(crypto.randomBytes(KIB), 8 * KIB, KIB);
  await b.clearPages(KIB, KIB);
  const d = await b.getPageRangesDiff(0, 16 * KIB, snap);
  assert.deepEqual(pairs(d.pageRange), [[8 * KIB, 9 * KIB - 1]]);
  assert.deepEqual(pairs(d.clearRange), [[KIB, 2 * KIB - 1]]);
  await refused(() => b.getPageRangesDiff(0, 16 * KIB, "2001-01-01T00:00:00.0000000Z"), 409, "PreviousSnapshotNotFound");
});

azuriteLacks("page blobs: Put Page From URL", "Put Page From URL", async () => {
  const { c, b } = await pageBlob("disk", 16 * KIB);
  const src = c.getBlockBlobClient("src");
  const data = crypto.randomBytes(8 * KIB);
  await src.upload(data, data.length);
  await b.uploadPagesFromURL(sasUrl(src, "r"), 2 * KIB, 4 * KIB, 2 * KIB);
  assert.deepEqual(await bytes(b, 4 * KIB, 2 * KIB), data.subarray(2 * KIB, 4 * KIB));
  assert.deepEqual(pairs((await b.getPageRanges()).pageRange), [[4 * KIB, 6 * KIB - 1]]);
});

azuriteLacks("page blobs: incremental copy from snapshots", "Incremental Copy Blob", async () => {
  const { c, b } = await pageBlob("vhd", 8 * KIB);
  const data = crypto.randomBytes(KIB);
  await b.uploadPages(data, 0, KIB);
  const snap = (await b.createSnapshot()).snapshot;
  const dest = c.getPageBlobClient("backup");
  const poller = await dest.startCopyIncremental(sasUrl(b, "r", snap));
  assert.equal(poller.copyStatus, "success");
  const p = await dest.getProperties();
  assert.equal(p.isIncrementalCopy, true);
  assert.ok(p.destinationSnapshot);
  assert.deepEqual(await bytes(dest.withSnapshot(p.destinationSnapshot), 0, KIB), data);
  await refused(() => dest.download(), 409, "OperationNotAllowedOnIncrementalCopyBlob");
  await refused(() => dest.startCopyIncremental(sasUrl(b, "r")), 409, "IncrementalCopySourceMustBeSnapshot");
});

deviation(
  "page blobs: a copy of a page blob keeps its pages",
  "Azurite 3.37.0's copy shares the source's pages (clearing the source clears the copy). https://learn.microsoft.com/rest/api/storageservices/copy-blob",
  async () => {
    const { c, b } = await pageBlob("disk", 64 * KIB);
    const data = crypto.randomBytes(KIB);
    await b.uploadPages(data, 32 * KIB, KIB);
    const copy = c.getPageBlobClient("copy");
    await (await copy.beginCopyFromURL(b.url)).pollUntilDone();
    assert.equal((await copy.getProperties()).blobType, "PageBlob");
    assert.deepEqual(await bytes(copy, 32 * KIB, KIB), data);
    assert.deepEqual(pairs((await copy.getPageRanges()).pageRange), [[32 * KIB, 33 * KIB - 1]]);
    await b.clearPages(32 * KIB, KIB);
    assert.deepEqual(await bytes(copy, 32 * KIB, KIB), data);
  },
);
