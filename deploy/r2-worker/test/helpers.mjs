// Test fixtures: a local HTTP "provider" server whose every request is
// recorded, and the Worker running in workerd via Miniflare with provider
// hosts routed to that server (scripts/outbound.mjs).

import http from "node:http";
import { createHash } from "node:crypto";
import { Miniflare } from "miniflare";
import { makeOutboundService } from "../scripts/outbound.mjs";
import { workerOptions } from "../scripts/miniflare-options.mjs";

export const TOKEN = "test-token-0123456789abcdef";
export const NEXT_TOKEN = "next-token-fedcba9876543210";
export const PUBLIC_BASE = "https://r2.local.test";

export const sha256 = (buf) => createHash("sha256").update(buf).digest("hex");

/**
 * routes: { "/path": (req, res, server) => void }. Unknown paths -> 404.
 * server.requests: [{ path, host }] in arrival order (host = X-Original-Host).
 */
export async function startProviderServer(routes) {
  const server = http.createServer((req, res) => {
    const path = req.url;
    server.requests.push({ path, host: req.headers["x-original-host"] ?? null });
    const route = routes[path.split("?")[0]];
    if (!route) {
      res.writeHead(404, { "content-type": "text/plain" });
      return res.end("no such file");
    }
    route(req, res, server);
  });
  server.requests = [];
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  server.origin = `http://127.0.0.1:${server.address().port}`;
  server.stop = () =>
    new Promise((resolve) => {
      server.closeAllConnections();
      server.close(resolve);
    });
  return server;
}

/** Worker in workerd. outbound: every URL the Worker fetched, in order. */
export async function startWorker(providerOrigin, bindings = {}) {
  const outbound = [];
  const mf = new Miniflare(
    workerOptions({
      bindings: { R2_FETCH_TOKEN: TOKEN, R2_PUBLIC_BASE_URL: PUBLIC_BASE, ...bindings },
      outboundService: makeOutboundService(providerOrigin, (r) => outbound.push(r.url)),
    }),
  );
  await mf.ready;
  const bucket = await mf.getR2Bucket("R2_BUCKET");

  async function post(body, { token = TOKEN, headers = {} } = {}) {
    const h = { "content-type": "application/json", ...headers };
    if (token !== null) h["x-r2-fetch-token"] = token;
    const res = await mf.dispatchFetch("https://worker.local.test/", {
      method: "POST",
      headers: h,
      body: typeof body === "string" ? body : JSON.stringify(body),
    });
    const text = await res.text();
    let json = null;
    try {
      json = JSON.parse(text);
    } catch {
      // Left null: tests assert on it.
    }
    return { status: res.status, json, text, headers: res.headers };
  }

  async function keys() {
    return (await bucket.list()).objects.map((o) => o.key);
  }

  return { mf, bucket, post, keys, outbound, dispose: () => mf.dispose() };
}

export function job(sourceUrl, objectKey = "dropbox/aaaaaaaa/bbbbbbbb/file.zip") {
  return {
    source_url: sourceUrl,
    object_key: objectKey,
    bucket: "render-signal-media",
    provider: "dropbox",
    email_id: "email-123",
  };
}
