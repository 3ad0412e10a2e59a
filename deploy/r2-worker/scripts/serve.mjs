#!/usr/bin/env node
// Local server for the Python integration tests: runs the Worker in
// Miniflare (workerd) on 127.0.0.1, plus a test-only admin port to read the
// R2 bucket back and trigger the cron cleanup. Usage: see README.md.

import http from "node:http";
import { Miniflare } from "miniflare";
import { makeOutboundService } from "./outbound.mjs";
import { CRON, workerOptions } from "./miniflare-options.mjs";

// HOST=0.0.0.0 lets a container publish it (compose dev profile); loopback otherwise.
const HOST = process.env.HOST || "127.0.0.1";
const env = process.env;

function portFromEnv(name) {
  const raw = env[name] ?? "0";
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0 || n > 65535) {
    console.error(`${name} must be a port number (0 = pick a free one), got ${JSON.stringify(raw)}`);
    process.exit(2);
  }
  return n;
}

const bindings = { R2_PUBLIC_BASE_URL: env.R2_PUBLIC_BASE_URL || "https://r2.local.test" };
for (const name of ["R2_FETCH_TOKEN", "R2_FETCH_TOKEN_NEXT", "MAX_OBJECT_BYTES", "OBJECT_TTL_HOURS"]) {
  if (env[name]) bindings[name] = env[name];
}

const mf = new Miniflare(
  workerOptions({
    bindings,
    // Without PROVIDER_ORIGIN the Worker fetches the real network.
    outboundService: env.PROVIDER_ORIGIN ? makeOutboundService(env.PROVIDER_ORIGIN) : undefined,
    r2Persist: env.R2_PERSIST || false,
    host: HOST,
    port: portFromEnv("PORT"),
  }),
);

async function listKeys(bucket) {
  const keys = [];
  let cursor;
  do {
    const page = await bucket.list({ cursor });
    keys.push(...page.objects.map((o) => o.key));
    cursor = page.truncated ? page.cursor : undefined;
  } while (cursor);
  return keys;
}

function sendJson(res, status, body) {
  res.writeHead(status, { "content-type": "application/json" });
  res.end(JSON.stringify(body));
}

async function admin(req, res) {
  const url = new URL(req.url, `http://${HOST}`);
  const bucket = await mf.getR2Bucket("R2_BUCKET");
  if (req.method === "GET" && url.pathname.startsWith("/object/")) {
    const key = decodeURIComponent(url.pathname.slice("/object/".length));
    const obj = await bucket.get(key);
    if (!obj) return sendJson(res, 404, { error: "not found", key });
    const bytes = Buffer.from(await obj.arrayBuffer());
    res.writeHead(200, {
      "content-type": obj.httpMetadata?.contentType ?? "application/octet-stream",
      "content-length": bytes.length,
      // Header values must be Latin-1: JSON.stringify escapes nothing, so
      // escape non-ASCII to \uXXXX to keep filenames like "Épreuves" intact.
      "x-custom-metadata": JSON.stringify(obj.customMetadata ?? {}).replace(
        /[\u007f-\uffff]/g,
        (c) => "\\u" + c.charCodeAt(0).toString(16).padStart(4, "0"),
      ),
      "x-http-metadata": JSON.stringify(obj.httpMetadata ?? {}).replace(
        /[\u007f-\uffff]/g,
        (c) => "\\u" + c.charCodeAt(0).toString(16).padStart(4, "0"),
      ),
    });
    return res.end(bytes);
  }
  if (req.method === "GET" && url.pathname === "/list") {
    return sendJson(res, 200, { keys: await listKeys(bucket) });
  }
  if (req.method === "POST" && url.pathname === "/cron") {
    const nowParam = url.searchParams.get("now");
    const now = nowParam ? new Date(nowParam) : new Date();
    if (Number.isNaN(now.getTime())) return sendJson(res, 400, { error: "bad now" });
    const before = await listKeys(bucket);
    // Runs the Worker's real scheduled() handler inside workerd.
    const worker = await mf.getWorker();
    const result = await worker.scheduled({ scheduledTime: now, cron: CRON });
    const after = await listKeys(bucket);
    const remaining = new Set(after);
    return sendJson(res, 200, {
      outcome: result.outcome,
      deleted: before.filter((k) => !remaining.has(k)),
      remaining: after,
    });
  }
  return sendJson(res, 404, { error: "unknown admin route" });
}

const adminServer = http.createServer((req, res) => {
  admin(req, res).catch((err) => sendJson(res, 500, { error: String(err?.message ?? err) }));
});

let stopping = false;
async function shutdown() {
  if (stopping) return;
  stopping = true;
  adminServer.close();
  await mf.dispose();
  process.exit(0);
}
// Miniflare's exit-hook also listens for SIGTERM/SIGINT and calls
// process.exit(143/130) at once; replace it so a stop is a clean exit 0 after
// dispose() has stopped workerd (its plain "exit" hook stays as a backstop).
for (const sig of ["SIGTERM", "SIGINT"]) {
  process.removeAllListeners(sig);
  process.on(sig, shutdown);
}

try {
  const url = await mf.ready;
  await new Promise((resolve, reject) => {
    adminServer.once("error", reject);
    adminServer.listen(portFromEnv("ADMIN_PORT"), HOST, resolve);
  });
  // ADMIN first: once a caller has seen READY, both addresses are known.
  process.stdout.write(`ADMIN http://${HOST}:${adminServer.address().port}\n`);
  process.stdout.write(`READY http://${HOST}:${url.port}\n`);
} catch (err) {
  console.error(`serve.mjs failed to start: ${err?.stack ?? err}`);
  await mf.dispose().catch(() => {});
  process.exit(1);
}
