// The words for the machine codes the APIs answer (states, event kinds, reasons, sources...).
// The page never shows a raw code such as "upstream_server_error": it shows the translated
// text and keeps the code in a tooltip (title) for whoever reads the logs.
import { el, t } from "./core.js";

/** The text for `code` in `family` ("state", "reason"...), or a readable fallback. */
export function codeText(family, code, vars = {}) {
  if (code === null || code === undefined || code === "") return "—";
  const key = `${family}_${code}`;
  const text = t(key, vars);
  // An unknown code still reads as words, never as an identifier.
  return text === key ? String(code).replace(/_/g, " ") : text;
}

/** A <span> with the translated text and the raw code as its tooltip. */
export function codeSpan(family, code, attrs = {}) {
  return el("span", { ...attrs, title: code ?? "", dataset: { code: code ?? "" }, text: codeText(family, code) });
}

// Reasons that carry a detail after the code (written by ingest, offload, the retry API).
const COMPOUND_REASONS = [
  [/^refused: (.+)$/, (m) => t("reason_refused", { why: m[1] })],
  [/^retry now by (.+)$/, (m) => t("reason_retry_by", { who: m[1] })],
  [/^unreadable email: (.+)$/, (m) => `${t("reason_unreadable")} (${m[1]})`],
  [/^parse failed: (.+)$/, (m) => `${t("reason_parse_failed")} (${m[1]})`],
  [/^(\d+) link\(s\)$/, (m) => t("links_n", { n: m[1] })],
];

/** Any reason field: a code, or a code with its detail. */
export function reasonText(reason) {
  if (!reason) return "—";
  for (const [pattern, render] of COMPOUND_REASONS) {
    const match = pattern.exec(reason);
    if (match) return render(match);
  }
  return codeText("reason", reason);
}

export function reasonSpan(reason, attrs = {}) {
  return el("span", { ...attrs, title: reason ?? "", dataset: { code: reason ?? "" }, text: reasonText(reason) });
}

/** A delivery target's name as notify records it: "default" or "rule: <name>". */
export function targetName(name) {
  if (!name || name === "default") return t("target_default");
  const rule = /^rule:\s*(.+)$/.exec(name);
  return rule ? t("target_rule", { name: rule[1] }) : name;
}

export const stateText = (state) => codeText("state", state);
export const eventText = (kind) => codeText("event", kind);
export const sourceText = (source) => codeText("source", source);
export const serviceName = (service) => codeText("service_name", service);

/** A coloured badge for an email or target state. */
export function stateBadge(state) {
  return el("span", { class: `badge badge--${state ?? "unknown"}`, title: state ?? "", dataset: { state: state ?? "" },
    text: stateText(state) });
}
