// SSRF guard. The Worker is a fetch-and-store proxy reachable from the
// internet, so the only URLs it may touch are the file providers we relay.
// Every redirect hop is re-checked with the same function (see fetch.js).

export const ALLOWED_DOMAINS = Object.freeze([
  "dropbox.com",
  "dropboxusercontent.com",
  "fromsmash.com",
  "swisstransfer.com",
  "wetransfer.com",
  "we.tl",
]);

/** Host equal to an allowed domain or a subdomain of one (label boundary). */
export function isAllowedHost(hostname) {
  const host = String(hostname).toLowerCase();
  return ALLOWED_DOMAINS.some((d) => host === d || host.endsWith("." + d));
}

/**
 * Parse and validate a URL. Returns the URL object or null.
 * https only; port must be the default (URL normalises ":443" to ""), which
 * also refuses tricks like https://www.dropbox.com:8443/; credentials in the
 * URL are refused because no provider link needs them.
 */
export function allowedUrl(input, base) {
  let url;
  try {
    url = base === undefined ? new URL(input) : new URL(input, base);
  } catch {
    return null;
  }
  if (url.protocol !== "https:") return null;
  if (url.port !== "" && url.port !== "443") return null;
  if (url.username || url.password) return null;
  if (!isAllowedHost(url.hostname)) return null;
  return url;
}
