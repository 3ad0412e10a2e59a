// Fetching the source file: manual redirects re-validated against the
// allowlist on every hop, HTML-preview rejection and the size cap.

import { allowedUrl } from "./allowlist.js";
import { HttpError } from "./http.js";

export const MAX_REDIRECTS = 5;
const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);
// Dropbox serves an HTML preview to unknown clients; a browser-like UA was
// what made direct downloads work for the original system.
const USER_AGENT =
  "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36 render-signal-r2-worker";

function discard(response) {
  // Release the connection of a response we will not read.
  response.body?.cancel().catch(() => {});
}

/**
 * GET the source, following at most MAX_REDIRECTS redirects by hand.
 * Never lets the runtime follow a redirect: a Location pointing at
 * 127.0.0.1 / 169.254.169.254 / http:// / another host is refused (403)
 * before anything is fetched from it.
 */
export async function fetchSource(sourceUrl) {
  let url = allowedUrl(sourceUrl);
  if (!url) throw new HttpError(403, "Source URL not allowed");
  for (let hop = 0; ; hop++) {
    let response;
    try {
      response = await fetch(url.href, {
        method: "GET",
        redirect: "manual",
        headers: { "user-agent": USER_AGENT, accept: "*/*" },
      });
    } catch (err) {
      throw new HttpError(502, `Source fetch failed: ${err?.message ?? err}`);
    }
    if (!REDIRECT_STATUSES.has(response.status)) return { response, finalUrl: url };
    const location = response.headers.get("location");
    discard(response);
    if (!location) throw new HttpError(502, `Source fetch failed: ${response.status}`);
    if (hop >= MAX_REDIRECTS) throw new HttpError(502, "Source fetch failed: too many redirects");
    const next = allowedUrl(location, url);
    if (!next) throw new HttpError(403, "Redirect target not allowed");
    url = next;
  }
}

/** Reject error statuses and HTML previews (e.g. Dropbox folder pages). */
export function checkSourceResponse(response) {
  if (!response.ok) {
    discard(response);
    throw new HttpError(502, `Source fetch failed: ${response.status}`);
  }
  const mediaType = (response.headers.get("content-type") ?? "").split(";")[0].trim().toLowerCase();
  if (mediaType === "text/html" || mediaType === "application/xhtml+xml") {
    discard(response);
    throw new HttpError(422, "Source returned HTML preview instead of file");
  }
}

/**
 * Body to hand to R2.put, with the size cap enforced.
 * - Content-Length known (and no content-coding, which would make the length
 *   refer to compressed bytes): reject before reading if too big, else stream
 *   the body straight to R2 (R2 needs a known length to stream).
 * - Length unknown: read with a running byte count, abort as soon as the cap
 *   is passed, and hand R2 the buffered bytes. Buffering is the price of not
 *   knowing the length; keep MAX_OBJECT_BYTES well below the isolate memory.
 */
export async function cappedBody(response, maxBytes) {
  const lengthHeader = response.headers.get("content-length");
  const encoding = (response.headers.get("content-encoding") ?? "identity").toLowerCase();
  if (lengthHeader !== null && /^\d+$/.test(lengthHeader.trim())) {
    const length = Number(lengthHeader);
    if (length > maxBytes) {
      discard(response);
      throw new HttpError(413, `Source file too large: Content-Length ${length} exceeds ${maxBytes} bytes`);
    }
    if (encoding === "identity" && response.body) return response.body;
  }
  if (!response.body) return new Uint8Array(0);
  const reader = response.body.getReader();
  const chunks = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > maxBytes) {
      await reader.cancel().catch(() => {});
      throw new HttpError(413, `Source file too large: exceeded ${maxBytes} bytes while streaming`);
    }
    chunks.push(value);
  }
  const out = new Uint8Array(total);
  let offset = 0;
  for (const c of chunks) {
    out.set(c, offset);
    offset += c.byteLength;
  }
  return out;
}
