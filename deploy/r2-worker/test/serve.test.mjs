// scripts/serve.mjs as the Python integration tests use it: spawn, read the
// ADMIN/READY lines, upload through PROVIDER_ORIGIN, read back, cron, SIGTERM.

import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { createInterface } from "node:readline";
import { randomBytes } from "node:crypto";
import { fileURLToPath } from "node:url";
import { sha256, startProviderServer } from "./helpers.mjs";

const SERVE = fileURLToPath(new URL("../scripts/serve.mjs", import.meta.url));
const PAYLOAD = randomBytes(20000);
const CD = "attachment; filename*=UTF-8''%C3%89preuves%20finales%202026.zip";

let provider;
let child;
let lines;
let workerUrl;
let adminUrl;

before(async () => {
  provider = await startProviderServer({
    "/d/transfer-1": (req, res) => {
      res.writeHead(200, { "content-type": "application/zip", "content-disposition": CD });
      res.end(PAYLOAD);
    },
    "/redir/loopback": (req, res, srv) => {
      res.writeHead(302, { location: `http://127.0.0.1:${srv.address().port}/secret` });
      res.end();
    },
  });
  child = spawn(process.execPath, [SERVE], {
    env: {
      ...process.env,
      PORT: "0",
      ADMIN_PORT: "0",
      R2_FETCH_TOKEN: "serve-token",
      PROVIDER_ORIGIN: provider.origin,
      R2_PERSIST: "",
    },
    stdio: ["ignore", "pipe", "inherit"],
  });
  lines = [];
  const rl = createInterface({ input: child.stdout });
  // Resolve on the READY line (serve.mjs prints ADMIN before READY).
  await new Promise((resolve, reject) => {
    child.once("exit", (code) => reject(new Error(`serve.mjs exited early: ${code}`)));
    rl.on("line", (line) => {
      lines.push(line);
      if (line.startsWith("READY ")) resolve();
    });
  });
  workerUrl = lines.find((l) => l.startsWith("READY ")).slice(6);
  adminUrl = lines.find((l) => l.startsWith("ADMIN ")).slice(6);
});

after(async () => {
  if (child && child.exitCode === null) child.kill("SIGKILL");
  await provider?.stop();
});

function upload(sourceUrl, objectKey, token = "serve-token") {
  return fetch(workerUrl, {
    method: "POST",
    headers: { "content-type": "application/json", "x-r2-fetch-token": token },
    body: JSON.stringify({ source_url: sourceUrl, object_key: objectKey, bucket: "", provider: "swisstransfer", email_id: "e-1" }),
  });
}

test("prints exactly ADMIN then READY with loopback URLs", () => {
  assert.equal(lines.length, 2, JSON.stringify(lines));
  assert.match(lines[0], /^ADMIN http:\/\/127\.0\.0\.1:\d+$/);
  assert.match(lines[1], /^READY http:\/\/127\.0\.0\.1:\d+$/);
});

test("upload via PROVIDER_ORIGIN, read back through the admin port", async () => {
  const key = "swisstransfer/0a1b2c3d/4e5f6a7b/Épreuves finales 2026.zip";
  const res = await upload("https://www.swisstransfer.com/d/transfer-1", key);
  const body = await res.json();
  assert.equal(res.status, 200, JSON.stringify(body));
  assert.equal(body.r2_url, "https://r2.local.test/swisstransfer/0a1b2c3d/4e5f6a7b/%C3%89preuves%20finales%202026.zip");
  assert.deepEqual(provider.requests, [{ path: "/d/transfer-1", host: "www.swisstransfer.com" }]);

  const obj = await fetch(`${adminUrl}/object/${encodeURIComponent(key)}`);
  assert.equal(obj.status, 200);
  assert.equal(obj.headers.get("content-type"), "application/zip");
  assert.equal(sha256(Buffer.from(await obj.arrayBuffer())), sha256(PAYLOAD));
  const meta = JSON.parse(obj.headers.get("x-custom-metadata"));
  assert.equal(meta.originalFilename, "Épreuves finales 2026.zip");
  assert.equal(meta.emailId, "e-1");
  assert.ok(Date.parse(meta.expiresAt) > Date.now());

  assert.deepEqual(await (await fetch(`${adminUrl}/list`)).json(), { keys: [key] });
  assert.equal((await fetch(`${adminUrl}/object/${encodeURIComponent("missing")}`)).status, 404);
});

test("wrong token 401; forbidden redirect 403 and never reaches the server", async () => {
  assert.equal((await upload("https://www.swisstransfer.com/d/transfer-1", "x", "nope")).status, 401);
  provider.requests.length = 0;
  const res = await upload("https://www.dropbox.com/redir/loopback", "redir/x");
  assert.equal(res.status, 403);
  assert.deepEqual(provider.requests.map((r) => r.path), ["/redir/loopback"]);
});

test("POST /cron?now= runs the scheduled cleanup", async () => {
  const keep = await (await fetch(`${adminUrl}/cron?now=2000-01-01T00:00:00Z`, { method: "POST" })).json();
  assert.deepEqual(keep.deleted, []);
  const later = new Date(Date.now() + 25 * 3600 * 1000).toISOString();
  const swept = await (await fetch(`${adminUrl}/cron?now=${encodeURIComponent(later)}`, { method: "POST" })).json();
  assert.equal(swept.outcome, "ok");
  assert.equal(swept.deleted.length, 1);
  assert.deepEqual(swept.remaining, []);
});

test("SIGTERM -> exit code 0", async () => {
  const exited = once(child, "close"); // after stdout is fully read
  child.kill("SIGTERM");
  const [code, signal] = await exited;
  assert.equal(signal, null);
  assert.equal(code, 0);
  // Worker logs (the cron run above logs one line) never reached stdout.
  assert.equal(lines.length, 2, JSON.stringify(lines));
});
