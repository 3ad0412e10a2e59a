// Cron cleanup against the real R2 simulator in workerd: called directly
// with an injected "now", and through the Worker's scheduled() handler.

import { after, before, beforeEach, test } from "node:test";
import assert from "node:assert/strict";
import { cleanupExpired } from "../src/index.js";
import { startWorker } from "./helpers.mjs";

const NOW = new Date("2026-03-01T12:00:00.000Z");
const hours = (h) => new Date(NOW.getTime() + h * 3600 * 1000).toISOString();

let worker;
before(async () => {
  // No provider traffic in this file; the origin is never contacted.
  worker = await startWorker("http://127.0.0.1:9");
});
after(() => worker?.dispose());

async function seed() {
  for (const k of await worker.keys()) await worker.bucket.delete(k);
  const objects = {
    "expired/one-hour-ago.zip": hours(-1),
    "expired/one-ms-ago.zip": new Date(NOW.getTime() - 1).toISOString(),
    "expired/last-year.zip": hours(-24 * 365),
    "kept/in-one-hour.zip": hours(1),
    "kept/exactly-now.zip": NOW.toISOString(), // not "in the past" yet
    "kept/no-expiry.zip": null,
    "kept/garbage-expiry.zip": "not-a-date",
  };
  for (const [key, expiresAt] of Object.entries(objects)) {
    const customMetadata = { sourceUrl: "https://www.dropbox.com/s/x", provider: "dropbox" };
    if (expiresAt !== null) customMetadata.expiresAt = expiresAt;
    await worker.bucket.put(key, `data for ${key}`, { customMetadata });
  }
}

const EXPIRED = ["expired/last-year.zip", "expired/one-hour-ago.zip", "expired/one-ms-ago.zip"];
const KEPT = ["kept/exactly-now.zip", "kept/garbage-expiry.zip", "kept/in-one-hour.zip", "kept/no-expiry.zip"];

beforeEach(seed);

test("cleanupExpired deletes exactly the expired objects (paginated)", async () => {
  // pageSize 2 forces 4 list pages for 7 objects: the cursor loop must work.
  const result = await cleanupExpired(worker.bucket, NOW, { pageSize: 2 });
  assert.equal(result.scanned, 7);
  assert.deepEqual([...result.deleted].sort(), EXPIRED);
  assert.deepEqual((await worker.keys()).sort(), KEPT);
});

test("running it again deletes nothing more", async () => {
  await cleanupExpired(worker.bucket, NOW);
  const second = await cleanupExpired(worker.bucket, NOW);
  assert.deepEqual(second.deleted, []);
  assert.deepEqual((await worker.keys()).sort(), KEPT);
});

test("scheduled() handler in workerd uses the cron time as now", async () => {
  const w = await worker.mf.getWorker();
  const early = await w.scheduled({ scheduledTime: new Date(hours(-24 * 400)), cron: "0 * * * *" });
  assert.equal(early.outcome, "ok");
  assert.equal((await worker.keys()).length, 7, "nothing had expired 400 days earlier");
  const res = await w.scheduled({ scheduledTime: NOW, cron: "0 * * * *" });
  assert.equal(res.outcome, "ok");
  assert.deepEqual((await worker.keys()).sort(), KEPT);
});
