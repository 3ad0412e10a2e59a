// Outbound hook for local runs (tests and serve.mjs): every fetch() the Worker
// makes inside workerd lands here, in Node. Requests to provider hosts are
// sent to a local file server instead; the Worker's own allowlist is
// untouched, so what is tested is exactly what ships.

import { fetch as mfFetch } from "miniflare";
import { isAllowedHost } from "../src/allowlist.js";

/**
 * @param {string} providerOrigin e.g. "http://127.0.0.1:8123"
 * @param {(info: {url: string, method: string}) => void} [onRequest] observer
 */
export function makeOutboundService(providerOrigin, onRequest) {
  const origin = new URL(providerOrigin);
  return async (request) => {
    const original = new URL(request.url);
    onRequest?.({ url: request.url, method: request.method });
    let target = original;
    const headers = new Headers(request.headers);
    if (isAllowedHost(original.hostname)) {
      target = new URL(original.pathname + original.search, origin);
      headers.set("x-original-host", original.host);
    }
    // Identity encoding keeps Content-Length meaningful; "manual" so this
    // hop never follows a redirect on the Worker's behalf.
    headers.set("accept-encoding", "identity");
    return mfFetch(target.href, {
      method: request.method,
      headers,
      body: ["GET", "HEAD"].includes(request.method) ? undefined : request.body,
      duplex: "half",
      redirect: "manual",
    });
  };
}
