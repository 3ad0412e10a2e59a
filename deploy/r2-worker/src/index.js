// render-signal R2 Worker: POST {source_url, object_key, bucket, provider,
// email_id} -> fetch the provider file -> store it in R2 -> {r2_url, ...}.
// Contract: /work/shared/docs/architecture.md, "R2 Worker".

import { configuredTokens, tokenMatches } from "./auth.js";
import { cleanupExpired } from "./cleanup.js";
import { originalFilename } from "./filename.js";
import { HttpError, failure, json } from "./http.js";
import { cappedBody, checkSourceResponse, fetchSource } from "./source.js";

export { cleanupExpired } from "./cleanup.js";

const DEFAULT_MAX_OBJECT_BYTES = 100 * 1024 * 1024;
const DEFAULT_TTL_HOURS = 24;
const MAX_KEY_BYTES = 1024; // R2 key length limit

function positiveNumber(value, fallback) {
  const n = Number(value);
  return Number.isFinite(n) && n > 0 ? n : fallback;
}

/** R2 keys may contain spaces/accents; the public URL needs each segment encoded. */
export function publicUrl(base, key) {
  const path = key.split("/").map(encodeURIComponent).join("/");
  return `${String(base).replace(/\/+$/, "")}/${path}`;
}

async function handlePost(request, env) {
  const tokens = configuredTokens(env);
  if (tokens.length === 0) return failure(500, "Worker not configured");
  if (!(await tokenMatches(request.headers.get("x-r2-fetch-token"), tokens))) {
    return failure(401, "Unauthorized");
  }
  if (!env.R2_BUCKET || !env.R2_PUBLIC_BASE_URL) return failure(500, "Worker not configured");

  let body;
  try {
    body = await request.json();
  } catch {
    return failure(400, "Invalid JSON body");
  }
  if (body === null || typeof body !== "object" || Array.isArray(body)) {
    return failure(400, "Invalid JSON body");
  }
  const { source_url: sourceUrl, object_key: objectKey, provider, email_id: emailId } = body;
  if (typeof sourceUrl !== "string" || !sourceUrl || typeof objectKey !== "string" || !objectKey) {
    return failure(400, "Missing source_url or object_key");
  }
  if (new TextEncoder().encode(objectKey).byteLength > MAX_KEY_BYTES) {
    return failure(400, "object_key too long");
  }

  const maxBytes = positiveNumber(env.MAX_OBJECT_BYTES, DEFAULT_MAX_OBJECT_BYTES);
  const ttlHours = positiveNumber(env.OBJECT_TTL_HOURS, DEFAULT_TTL_HOURS);

  const { response } = await fetchSource(sourceUrl);
  checkSourceResponse(response);
  const data = await cappedBody(response, maxBytes);

  const contentDisposition = response.headers.get("content-disposition");
  const filename = originalFilename(contentDisposition, sourceUrl);
  const now = new Date();
  const customMetadata = {
    sourceUrl,
    provider: provider == null ? "" : String(provider),
    emailId: emailId == null ? "" : String(emailId),
    uploadedAt: now.toISOString(),
    expiresAt: new Date(now.getTime() + ttlHours * 3600 * 1000).toISOString(),
  };
  if (filename) customMetadata.originalFilename = filename;
  const httpMetadata = {
    contentType: response.headers.get("content-type") || "application/octet-stream",
  };
  if (contentDisposition) httpMetadata.contentDisposition = contentDisposition;

  await env.R2_BUCKET.put(objectKey, data, { httpMetadata, customMetadata });

  return json(200, {
    success: true,
    r2_url: publicUrl(env.R2_PUBLIC_BASE_URL, objectKey),
    object_key: objectKey,
    original_filename: filename,
  });
}

export default {
  async fetch(request, env) {
    // Preflight: answered without auth, like the original Worker. No CORS
    // allow-origin: only our backend calls this Worker, never a browser.
    if (request.method === "OPTIONS") {
      return new Response(null, { status: 204, headers: { allow: "POST, OPTIONS" } });
    }
    if (request.method !== "POST") {
      return json(405, { success: false, error: "Method not allowed" }, { allow: "POST, OPTIONS" });
    }
    try {
      return await handlePost(request, env);
    } catch (err) {
      if (err instanceof HttpError) return failure(err.status, err.message);
      return failure(500, String(err?.message ?? err));
    }
  },

  async scheduled(event, env, ctx) {
    // scheduledTime is the cron's nominal time; tests inject it to fake "now".
    const result = cleanupExpired(env.R2_BUCKET, new Date(event.scheduledTime));
    ctx.waitUntil(result);
    const { scanned, deleted } = await result;
    console.log(JSON.stringify({ event: "r2_cleanup", scanned, deleted: deleted.length }));
  },
};
