// End-to-end: the Worker runs inside workerd (Miniflare); provider hosts are
// routed to a local recording HTTP server, so the Worker's allowlist is the
// real one and any forbidden fetch would show up in server.requests.

import { after, before, beforeEach, describe, test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { NEXT_TOKEN, PUBLIC_BASE, TOKEN, job, sha256, startProviderServer, startWorker } from "./helpers.mjs";

const MAX = 64 * 1024; // small cap so oversize tests move little data
const ARCHIVE = randomBytes(48 * 1024);
const CHUNKED_OK = randomBytes(40 * 1024);
const ACCENTED_CD = "attachment; filename*=UTF-8''%C3%89preuves%20finales%202026.zip";

function redirect(location, status = 302) {
  return (req, res) => {
    res.writeHead(status, { location, "content-type": "text/html" });
    res.end("<a>moved</a>");
  };
}

function chunked(bytes) {
  // No Content-Length: Node sends Transfer-Encoding: chunked.
  return (req, res) => {
    res.writeHead(200, { "content-type": "application/octet-stream" });
    for (let i = 0; i < bytes.length; i += 8192) res.write(bytes.subarray(i, i + 8192));
    res.end();
  };
}

let server;
let worker;

before(async () => {
  server = await startProviderServer({
    "/s/ok/archive.zip": (req, res) => {
      res.writeHead(200, {
        "content-type": "application/zip",
        "content-length": ARCHIVE.length,
        "content-disposition": ACCENTED_CD,
      });
      res.end(ARCHIVE);
    },
    "/s/quoted/x": (req, res) => {
      res.writeHead(200, { "content-disposition": 'attachment; filename="quoted name.pdf"' });
      res.end("%PDF-1.7");
    },
    "/s/nocd/My%20Report.pdf": (req, res) => res.end("report"),
    "/d/nodot": (req, res) => res.end("bytes"),
    "/scl/fo/folder": (req, res) => {
      res.writeHead(200, { "content-type": "text/html; charset=utf-8" });
      res.end("<html>Dropbox folder preview</html>");
    },
    "/big-with-length": (req, res) => {
      res.writeHead(200, { "content-type": "application/zip", "content-length": MAX + 1 });
      res.end(Buffer.alloc(MAX + 1));
    },
    "/exact-limit": (req, res) => {
      res.writeHead(200, { "content-length": MAX });
      res.end(Buffer.alloc(MAX, 1));
    },
    "/big-chunked": chunked(randomBytes(MAX + 8192)),
    "/small-chunked": chunked(CHUNKED_OK),
    "/status/404": (req, res) => {
      res.writeHead(404);
      res.end();
    },
    "/status/500": (req, res) => {
      res.writeHead(500);
      res.end();
    },
    "/reset": (req) => req.socket.destroy(),
    "/redir/loopback": (req, res, srv) => redirect(`http://127.0.0.1:${srv.address().port}/secret`)(req, res),
    "/redir/loopback-https": (req, res, srv) => redirect(`https://127.0.0.1:${srv.address().port}/secret`)(req, res),
    "/redir/metadata": redirect("http://169.254.169.254/latest/meta-data/"),
    "/redir/metadata-https": redirect("https://169.254.169.254/latest/meta-data/", 307),
    "/redir/http-same-host": redirect("http://www.dropbox.com/secret", 301),
    "/redir/other-host": redirect("https://evil.example.test/secret"),
    "/redir/lookalike": redirect("https://dropbox.com.evil.example.test/secret"),
    "/redir/port": redirect("https://www.dropbox.com:8443/secret", 308),
    "/redir/chain1": redirect("/redir/chain2", 301),
    "/redir/chain2": redirect("https://dl.dropboxusercontent.com/s/ok/archive.zip", 302),
    "/loop": redirect("/loop"),
    "/secret": (req, res) => res.end("internal secret"),
  });
  worker = await startWorker(server.origin, { MAX_OBJECT_BYTES: String(MAX), R2_FETCH_TOKEN_NEXT: NEXT_TOKEN });
});

after(async () => {
  await worker?.dispose();
  await server?.stop();
});

beforeEach(() => {
  server.requests.length = 0;
  worker.outbound.length = 0;
});

const DROPBOX = "https://www.dropbox.com";

describe("method, auth and body validation", () => {
  test("OPTIONS -> 204, GET/PUT -> 405 JSON", async () => {
    const opt = await worker.mf.dispatchFetch("https://w.test/", { method: "OPTIONS" });
    assert.equal(opt.status, 204);
    for (const method of ["GET", "PUT", "DELETE"]) {
      const res = await worker.mf.dispatchFetch("https://w.test/any/path", { method });
      assert.equal(res.status, 405, method);
      assert.deepEqual(await res.json(), { success: false, error: "Method not allowed" });
    }
  });

  test("missing, wrong, prefix and extended token -> 401, nothing fetched", async () => {
    for (const token of [null, "", "wrong", TOKEN.slice(0, -1), TOKEN + "x", TOKEN.toUpperCase()]) {
      const r = await worker.post(job(`${DROPBOX}/s/ok/archive.zip`), { token });
      assert.equal(r.status, 401, `token ${JSON.stringify(token)}`);
      assert.deepEqual(r.json, { success: false, error: "Unauthorized" });
    }
    assert.equal(worker.outbound.length, 0);
  });

  test("rotation: R2_FETCH_TOKEN_NEXT is accepted too", async () => {
    const r = await worker.post(job(`${DROPBOX}/s/ok/archive.zip`, "rotation/next.zip"), { token: NEXT_TOKEN });
    assert.equal(r.status, 200, r.text);
  });

  test("no token configured -> 500 Worker not configured (even with a token sent)", async () => {
    const bare = await startWorker(server.origin, { R2_FETCH_TOKEN: "" });
    try {
      const r = await bare.post(job(`${DROPBOX}/s/ok/archive.zip`));
      assert.equal(r.status, 500);
      assert.deepEqual(r.json, { success: false, error: "Worker not configured" });
      assert.equal(bare.outbound.length, 0);
    } finally {
      await bare.dispose();
    }
  });

  test("invalid JSON and missing fields -> 400 JSON", async () => {
    const cases = [
      "{not json",
      "[]",
      "null",
      JSON.stringify({ object_key: "k" }),
      JSON.stringify({ source_url: `${DROPBOX}/s/ok/archive.zip` }),
      JSON.stringify({ source_url: "", object_key: "k" }),
      JSON.stringify({ source_url: 42, object_key: "k" }),
    ];
    for (const body of cases) {
      const r = await worker.post(body);
      assert.equal(r.status, 400, body);
      assert.equal(r.json.success, false, body);
      assert.equal(typeof r.json.error, "string");
    }
    assert.equal(worker.outbound.length, 0);
  });
});

describe("success path", () => {
  test("stores bytes byte-identical with http and custom metadata", async () => {
    const key = "dropbox/a1b2c3d4/e5f6a7b8/Épreuves finales 2026.zip";
    const t0 = Date.now();
    const r = await worker.post({ ...job(`${DROPBOX}/s/ok/archive.zip?dl=1`, key), email_id: "msg-42" });
    const t1 = Date.now();
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.json, {
      success: true,
      r2_url: `${PUBLIC_BASE}/dropbox/a1b2c3d4/e5f6a7b8/%C3%89preuves%20finales%202026.zip`,
      object_key: key,
      original_filename: "Épreuves finales 2026.zip",
    });
    // The Worker asked the provider host (routed here), path and query intact.
    assert.deepEqual(server.requests, [{ path: "/s/ok/archive.zip?dl=1", host: "www.dropbox.com" }]);

    const obj = await worker.bucket.get(key);
    const stored = Buffer.from(await obj.arrayBuffer());
    assert.equal(stored.length, ARCHIVE.length);
    assert.equal(sha256(stored), sha256(ARCHIVE));
    assert.deepEqual(obj.httpMetadata, { contentType: "application/zip", contentDisposition: ACCENTED_CD });
    const meta = obj.customMetadata;
    assert.equal(meta.sourceUrl, `${DROPBOX}/s/ok/archive.zip?dl=1`);
    assert.equal(meta.provider, "dropbox");
    assert.equal(meta.emailId, "msg-42");
    assert.equal(meta.originalFilename, "Épreuves finales 2026.zip");
    const uploaded = Date.parse(meta.uploadedAt);
    assert.ok(uploaded >= t0 - 1000 && uploaded <= t1 + 1000, meta.uploadedAt);
    assert.equal(Date.parse(meta.expiresAt) - uploaded, 24 * 3600 * 1000, "default TTL 24 h");
  });

  test("relative and cross-provider redirects within the allowlist are followed", async () => {
    const r = await worker.post(job(`${DROPBOX}/redir/chain1`, "chain/archive.zip"));
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(server.requests, [
      { path: "/redir/chain1", host: "www.dropbox.com" },
      { path: "/redir/chain2", host: "www.dropbox.com" },
      { path: "/s/ok/archive.zip", host: "dl.dropboxusercontent.com" },
    ]);
    const obj = await worker.bucket.get("chain/archive.zip");
    assert.equal(sha256(Buffer.from(await obj.arrayBuffer())), sha256(ARCHIVE));
  });

  test("filename= fallback and default content type", async () => {
    const r = await worker.post(job(`${DROPBOX}/s/quoted/x`, "q/x"));
    assert.equal(r.json.original_filename, "quoted name.pdf");
    const obj = await worker.bucket.head("q/x");
    assert.equal(obj.httpMetadata.contentType, "application/octet-stream");
    assert.equal(obj.customMetadata.originalFilename, "quoted name.pdf");
  });

  test("URL fallback only when the last segment has a dot, else null", async () => {
    const a = await worker.post(job(`https://www.swisstransfer.com/s/nocd/My%20Report.pdf`, "u/a"));
    assert.equal(a.json.original_filename, "My Report.pdf");
    const b = await worker.post(job(`https://www.swisstransfer.com/d/nodot`, "u/b"));
    assert.equal(b.status, 200, b.text);
    assert.equal(b.json.original_filename, null);
    assert.equal("originalFilename" in (await worker.bucket.head("u/b")).customMetadata, false);
  });

  test("chunked body under the cap is stored byte-identical", async () => {
    const r = await worker.post(job(`${DROPBOX}/small-chunked`, "chunked/ok.bin"));
    assert.equal(r.status, 200, r.text);
    const obj = await worker.bucket.get("chunked/ok.bin");
    assert.equal(sha256(Buffer.from(await obj.arrayBuffer())), sha256(CHUNKED_OK));
  });

  test("a body of exactly MAX_OBJECT_BYTES is accepted", async () => {
    const r = await worker.post(job(`${DROPBOX}/exact-limit`, "limit/exact.bin"));
    assert.equal(r.status, 200, r.text);
    assert.equal((await worker.bucket.head("limit/exact.bin")).size, MAX);
  });
});

describe("source rejections", () => {
  test("HTML preview -> 422, nothing stored", async () => {
    const r = await worker.post(job(`${DROPBOX}/scl/fo/folder`, "html/preview"));
    assert.equal(r.status, 422);
    assert.deepEqual(r.json, { success: false, error: "Source returned HTML preview instead of file" });
    assert.equal(await worker.bucket.head("html/preview"), null);
  });

  test("Content-Length over the cap -> 413 before reading", async () => {
    const r = await worker.post(job(`${DROPBOX}/big-with-length`, "big/cl"));
    assert.equal(r.status, 413);
    assert.equal(r.json.success, false);
    assert.match(r.json.error, /Content-Length 65537 exceeds 65536/);
    assert.equal(await worker.bucket.head("big/cl"), null);
  });

  test("no Content-Length: cap enforced while streaming -> 413", async () => {
    const r = await worker.post(job(`${DROPBOX}/big-chunked`, "big/chunked"));
    assert.equal(r.status, 413);
    assert.match(r.json.error, /exceeded 65536 bytes while streaming/);
    assert.equal(await worker.bucket.head("big/chunked"), null);
  });

  test("non-OK source -> 502 with status", async () => {
    for (const status of [404, 500]) {
      const r = await worker.post(job(`${DROPBOX}/status/${status}`, "err/x"));
      assert.equal(r.status, 502);
      assert.deepEqual(r.json, { success: false, error: `Source fetch failed: ${status}` });
    }
  });

  test("connection reset by source -> 502", async () => {
    const r = await worker.post(job(`${DROPBOX}/reset`, "err/reset"));
    assert.equal(r.status, 502, r.text);
    assert.equal(r.json.success, false);
  });

  test("non-allowlisted source_url -> 403, nothing fetched", async () => {
    for (const url of [
      `${server.origin}/s/ok/archive.zip`,
      "http://www.dropbox.com/s/ok/archive.zip",
      "https://169.254.169.254/latest/meta-data/",
      "https://www.dropbox.com:8443/s/ok/archive.zip",
      "https://example.com/file.zip",
      "not a url",
    ]) {
      const r = await worker.post(job(url, "forbidden/x"));
      assert.equal(r.status, 403, url);
      assert.equal(r.json.success, false);
    }
    assert.deepEqual(worker.outbound, []);
    assert.deepEqual(server.requests, []);
  });
});

describe("redirects are re-validated on every hop", () => {
  const forbidden = {
    "/redir/loopback": "http://127.0.0.1",
    "/redir/loopback-https": "https://127.0.0.1",
    "/redir/metadata": "http://169.254.169.254",
    "/redir/metadata-https": "https://169.254.169.254",
    "/redir/http-same-host": "http://www.dropbox.com",
    "/redir/other-host": "https://evil.example.test",
    "/redir/lookalike": "https://dropbox.com.evil.example.test",
    "/redir/port": "https://www.dropbox.com:8443",
  };
  for (const [path, target] of Object.entries(forbidden)) {
    test(`redirect to ${target} -> 403 and never fetched`, async () => {
      server.requests.length = 0;
      worker.outbound.length = 0;
      const r = await worker.post(job(`${DROPBOX}${path}`, "redir/forbidden"));
      assert.equal(r.status, 403, r.text);
      assert.deepEqual(r.json, { success: false, error: "Redirect target not allowed" });
      // Exactly one request left the Worker: the first hop.
      assert.deepEqual(worker.outbound, [`${DROPBOX}${path}`]);
      assert.deepEqual(server.requests, [{ path, host: "www.dropbox.com" }]);
      assert.equal(server.requests.some((q) => q.path === "/secret"), false);
      assert.equal(await worker.bucket.head("redir/forbidden"), null);
    });
  }

  test("more than 5 redirects -> 502 after exactly 6 requests", async () => {
    const r = await worker.post(job(`${DROPBOX}/loop`, "redir/loop"));
    assert.equal(r.status, 502);
    assert.match(r.json.error, /too many redirects/);
    assert.equal(server.requests.length, 6);
  });
});

test("OBJECT_TTL_HOURS sets expiresAt", async () => {
  const w = await startWorker(server.origin, { OBJECT_TTL_HOURS: "2" });
  try {
    const r = await w.post(job(`${DROPBOX}/s/ok/archive.zip`, "ttl/two-hours.zip"));
    assert.equal(r.status, 200, r.text);
    const meta = (await w.bucket.head("ttl/two-hours.zip")).customMetadata;
    assert.equal(Date.parse(meta.expiresAt) - Date.parse(meta.uploadedAt), 2 * 3600 * 1000);
  } finally {
    await w.dispose();
  }
});
