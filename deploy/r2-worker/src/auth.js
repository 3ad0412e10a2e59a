// Token check for X-R2-FETCH-TOKEN.
//
// Why not `===`: a plain string compare returns at the first differing
// character, so response timing leaks how much of a guessed token is right.
// We HMAC both sides with a per-isolate random key, which turns any input
// (any length) into 32 bytes, then compare those bytes with an XOR loop that
// always visits every byte. The random key means an attacker cannot
// precompute digests, and length differences are hidden by the fixed size.

const encoder = new TextEncoder();
let hmacKeyPromise = null;

function hmacKey() {
  // Lazily created: crypto.subtle is not usable at module top level in workerd.
  if (!hmacKeyPromise) {
    hmacKeyPromise = crypto.subtle.generateKey(
      { name: "HMAC", hash: "SHA-256" },
      false,
      ["sign"],
    );
  }
  return hmacKeyPromise;
}

/** XOR-accumulate over two byte arrays; no early exit on mismatch. */
export function bytesEqualConstantTime(a, b) {
  if (a.byteLength !== b.byteLength) return false; // only ever fixed 32-byte digests here
  let diff = 0;
  for (let i = 0; i < a.byteLength; i++) diff |= a[i] ^ b[i];
  return diff === 0;
}

/** Constant-time string equality (via HMAC digests, so lengths may differ). */
export async function timingSafeEqualStr(provided, expected) {
  if (typeof provided !== "string" || typeof expected !== "string") return false;
  const key = await hmacKey();
  const [da, db] = await Promise.all([
    crypto.subtle.sign("HMAC", key, encoder.encode(provided)),
    crypto.subtle.sign("HMAC", key, encoder.encode(expected)),
  ]);
  return bytesEqualConstantTime(new Uint8Array(da), new Uint8Array(db));
}

/** Configured tokens: current plus optional next one (zero-downtime rotation). */
export function configuredTokens(env) {
  return [env.R2_FETCH_TOKEN, env.R2_FETCH_TOKEN_NEXT].filter(
    (t) => typeof t === "string" && t.length > 0,
  );
}

/**
 * True when `provided` equals any configured token. Every configured token is
 * always compared (no short-circuit), so timing does not reveal which matched.
 */
export async function tokenMatches(provided, tokens) {
  if (typeof provided !== "string" || provided.length === 0) return false;
  const results = await Promise.all(tokens.map((t) => timingSafeEqualStr(provided, t)));
  return results.reduce((acc, ok) => acc || ok, false);
}
