// One place that describes how to run the Worker in Miniflare, shared by the
// test suite and scripts/serve.mjs so both exercise the same configuration
// as wrangler.toml (binding name, compatibility date, modules).

import { fileURLToPath } from "node:url";
import path from "node:path";

export const WORKER_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
export const COMPATIBILITY_DATE = "2024-09-23"; // keep equal to wrangler.toml
export const CRON = "0 * * * *"; // keep equal to wrangler.toml

/**
 * @param {object} o
 * @param {Record<string,string>} o.bindings  vars/secrets (R2_FETCH_TOKEN, ...)
 * @param {Function} [o.outboundService]     see outbound.mjs
 * @param {string|false} [o.r2Persist]       directory, or false for memory
 * @param {string} [o.host] @param {number} [o.port]
 */
export function workerOptions({ bindings, outboundService, r2Persist = false, host, port }) {
  return {
    modules: true,
    scriptPath: path.join(WORKER_ROOT, "src/index.js"),
    // Without modulesRoot workerd refuses a script outside the process cwd.
    modulesRoot: WORKER_ROOT,
    modulesRules: [{ type: "ESModule", include: ["**/*.js"] }],
    compatibilityDate: COMPATIBILITY_DATE,
    r2Buckets: ["R2_BUCKET"],
    r2Persist,
    bindings,
    cf: false, // never try to download Request.cf from the internet
    ...(outboundService ? { outboundService } : {}),
    ...(host ? { host } : {}),
    ...(port !== undefined ? { port } : {}),
    // Worker console output goes to stderr: stdout carries only the
    // READY/ADMIN lines that scripts/serve.mjs promises.
    handleRuntimeStdio(stdout, stderr) {
      stdout.pipe(process.stderr);
      stderr.pipe(process.stderr);
    },
  };
}
