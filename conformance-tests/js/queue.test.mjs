// Microsoft's JavaScript SDK (@azure/storage-queue) against the target: messages through
// their life, pop receipts, and the service's CORS preflight.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { require, start, unique } from "./target.mjs";

const { QueueServiceClient } = require("@azure/storage-queue");

let t;
let svc;
before(async () => {
  t = await start();
  svc = QueueServiceClient.fromConnectionString(t.connectionString);
});
after(() => t?.stop());

test("messages: send, peek, receive, update, delete", async () => {
  const q = svc.getQueueClient(unique("jsq"));
  await q.create();
  await q.sendMessage("first");
  await q.sendMessage("second");
  const peeked = await q.peekMessages({ numberOfMessages: 32 });
  assert.deepEqual(peeked.peekedMessageItems.map((m) => m.messageText), ["first", "second"]);
  const got = await q.receiveMessages({ visibilityTimeout: 60 });
  assert.equal(got.receivedMessageItems.length, 1);
  const m = got.receivedMessageItems[0];
  assert.equal(m.messageText, "first");
  assert.equal(m.dequeueCount, 1);
  const updated = await q.updateMessage(m.messageId, m.popReceipt, "changed", 0);
  await assert.rejects(
    () => q.deleteMessage(m.messageId, m.popReceipt),
    (e) => e.statusCode === 404 || e.statusCode === 400,
  );
  await q.deleteMessage(m.messageId, updated.popReceipt);
  const left = await q.peekMessages({ numberOfMessages: 32 });
  assert.deepEqual(left.peekedMessageItems.map((x) => x.messageText), ["second"]);
  assert.equal((await q.getProperties()).approximateMessagesCount, 1);
  await q.delete();
});

test("CORS preflight on the queue service", async () => {
  const before = await svc.getProperties();
  const origin = "http://app.example";
  await svc.setProperties({
    cors: [{ allowedOrigins: origin, allowedMethods: "GET,POST", allowedHeaders: "*", exposedHeaders: "*", maxAgeInSeconds: 30 }],
  });
  try {
    const q = svc.getQueueClient(unique("jsq"));
    const ok = await fetch(`${q.url}/messages`, { method: "OPTIONS", headers: { Origin: origin, "Access-Control-Request-Method": "POST" } });
    assert.equal(ok.status, 200);
    assert.equal(ok.headers.get("access-control-allow-origin"), origin);
    const missing = await fetch(`${q.url}/messages`, { method: "OPTIONS", headers: { Origin: origin } });
    assert.equal(missing.status, 400);
  } finally {
    await svc.setProperties({ cors: before.cors ?? [] });
  }
});
