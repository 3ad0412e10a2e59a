// Pure helpers, imported directly (they only use Web APIs Node also has).
// End-to-end behaviour inside workerd is covered in worker.test.mjs.

import { test } from "node:test";
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import {
  bytesEqualConstantTime,
  configuredTokens,
  timingSafeEqualStr,
  tokenMatches,
} from "../src/auth.js";
import { allowedUrl, isAllowedHost } from "../src/allowlist.js";
import { filenameFromContentDisposition, filenameFromUrl, originalFilename } from "../src/filename.js";
import { publicUrl } from "../src/index.js";

test("timingSafeEqualStr: equal, unequal, different lengths, non-strings", async () => {
  assert.equal(await timingSafeEqualStr("s3cret-token", "s3cret-token"), true);
  assert.equal(await timingSafeEqualStr("s3cret-token", "s3cret-tokeN"), false);
  assert.equal(await timingSafeEqualStr("s3cret-token", "X3cret-token"), false);
  assert.equal(await timingSafeEqualStr("s3cret", "s3cret-token"), false); // prefix
  assert.equal(await timingSafeEqualStr("s3cret-token-longer", "s3cret-token"), false);
  assert.equal(await timingSafeEqualStr("", "s3cret-token"), false);
  assert.equal(await timingSafeEqualStr("Épreuve", "Épreuve"), true);
  assert.equal(await timingSafeEqualStr(undefined, "x"), false);
  assert.equal(await timingSafeEqualStr(null, null), false);
});

// "Constant time by construction": the byte compare must read every byte
// whatever the position of the first difference (no early exit).
function countingBytes(bytes, counter) {
  return new Proxy(bytes, {
    get(target, prop) {
      if (typeof prop === "string" && /^\d+$/.test(prop)) counter.reads++;
      return Reflect.get(target, prop);
    },
  });
}

test("bytesEqualConstantTime reads every byte even when byte 0 differs", () => {
  for (const [a, b, expected] of [
    [new Uint8Array(32).fill(7), new Uint8Array(32).fill(7), true],
    [new Uint8Array(32).fill(7), Uint8Array.from({ length: 32 }, (_, i) => (i === 0 ? 8 : 7)), false],
    [new Uint8Array(32).fill(7), Uint8Array.from({ length: 32 }, (_, i) => (i === 31 ? 8 : 7)), false],
  ]) {
    const counter = { reads: 0 };
    assert.equal(bytesEqualConstantTime(countingBytes(a, counter), countingBytes(b, counter)), expected);
    assert.equal(counter.reads, 64, "all 32 bytes of both inputs read");
  }
  assert.equal(bytesEqualConstantTime(new Uint8Array(3), new Uint8Array(4)), false);
});

test("tokenMatches: current and next token accepted, anything else refused", async () => {
  const tokens = configuredTokens({ R2_FETCH_TOKEN: "current", R2_FETCH_TOKEN_NEXT: "next" });
  assert.deepEqual(tokens, ["current", "next"]);
  assert.equal(await tokenMatches("current", tokens), true);
  assert.equal(await tokenMatches("next", tokens), true);
  assert.equal(await tokenMatches("curren", tokens), false);
  assert.equal(await tokenMatches("", tokens), false);
  assert.equal(await tokenMatches(null, tokens), false);
  assert.deepEqual(configuredTokens({ R2_FETCH_TOKEN: "", R2_FETCH_TOKEN_NEXT: undefined }), []);
});

test("the Worker's token check goes through the constant-time helper only", async () => {
  const src = await readFile(new URL("../src/index.js", import.meta.url), "utf8");
  assert.match(src, /tokenMatches\(request\.headers\.get\("x-r2-fetch-token"\), tokens\)/);
  // No direct comparison of the header or the configured tokens anywhere.
  for (const file of ["index.js", "auth.js"]) {
    const text = await readFile(new URL(`../src/${file}`, import.meta.url), "utf8");
    assert.doesNotMatch(text, /(===|!==|==|!=)\s*(env\.)?R2_FETCH_TOKEN/);
    assert.doesNotMatch(text, /R2_FETCH_TOKEN(_NEXT)?\s*(===|!==|==|!=)/);
    assert.doesNotMatch(text, /get\("x-r2-fetch-token"\)\s*(===|!==|==|!=)/i);
  }
});

test("allowlist: hosts, scheme, port, credentials", () => {
  for (const ok of [
    "https://www.dropbox.com/s/abc/file.zip?dl=1",
    "https://dropbox.com/scl/fo/x",
    "https://uc123.dl.dropboxusercontent.com/cd/0/get/x/file",
    "https://fromsmash.com/abc",
    "https://www.swisstransfer.com/d/uuid",
    "https://wetransfer.com/downloads/x",
    "https://we.tl/t-abc",
    "https://WWW.DROPBOX.COM:443/s/x",
  ]) {
    assert.ok(allowedUrl(ok), ok);
  }
  for (const bad of [
    "http://www.dropbox.com/s/x",
    "https://www.dropbox.com:8443/s/x",
    "https://user:pw@www.dropbox.com/s/x",
    "https://dropbox.com.evil.test/x",
    "https://evildropbox.com/x",
    "https://127.0.0.1/x",
    "https://169.254.169.254/latest/meta-data/",
    "https://[::1]/x",
    "ftp://dropbox.com/x",
    "javascript:alert(1)",
    "not a url",
  ]) {
    assert.equal(allowedUrl(bad), null, bad);
  }
  assert.equal(isAllowedHost("dl.dropboxusercontent.com"), true);
  assert.equal(isAllowedHost("notwe.tl"), false);
  // Relative redirects resolve against the current (allowed) URL.
  assert.equal(allowedUrl("/get/file", new URL("https://www.dropbox.com/s/x")).href, "https://www.dropbox.com/get/file");
});

test("Content-Disposition parsing: RFC 5987 first, then filename=, then URL", () => {
  const both = `attachment; filename="fallback.zip"; filename*=UTF-8''%C3%89preuves%20finales%202026.zip`;
  assert.equal(filenameFromContentDisposition(both), "Épreuves finales 2026.zip");
  assert.equal(filenameFromContentDisposition(`attachment; filename*="UTF-8'fr'na%C3%AFve.pdf"`), "naïve.pdf");
  assert.equal(filenameFromContentDisposition(`attachment; filename*=iso-8859-1''caf%E9.txt`), "café.txt");
  assert.equal(filenameFromContentDisposition(`attachment; filename="report \\"final\\".pdf"`), 'report "final".pdf');
  assert.equal(filenameFromContentDisposition(`attachment; filename=plain.bin`), "plain.bin");
  assert.equal(filenameFromContentDisposition(`attachment; filename="../../etc/passwd"`), "passwd");
  assert.equal(filenameFromContentDisposition(`attachment; filename*=UTF-8''%FF%FE.zip; filename="ok.zip"`), "ok.zip");
  assert.equal(filenameFromContentDisposition("attachment"), null);
  assert.equal(filenameFromContentDisposition(null), null);
  assert.equal(filenameFromUrl("https://www.dropbox.com/s/abc/My%20File.zip?dl=1"), "My File.zip");
  assert.equal(filenameFromUrl("https://www.swisstransfer.com/d/uuid"), null);
  assert.equal(originalFilename(null, "https://we.tl/t-abc"), null);
  assert.equal(originalFilename("inline", "https://x.dropbox.com/a/b.pdf"), "b.pdf");
});

test("publicUrl encodes each key segment and trims the base's slash", () => {
  assert.equal(
    publicUrl("https://r2.example/", "dropbox/a1/b2/Épreuves finales#1.zip"),
    "https://r2.example/dropbox/a1/b2/%C3%89preuves%20finales%231.zip",
  );
});
