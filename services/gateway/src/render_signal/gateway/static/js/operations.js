// Operations tab: dead letters (with replay) and the link journal.
import { $, api, busy, confirmDialog, el, formatTime, t, toast } from "./core.js";
import { codeSpan, reasonSpan } from "./vocabulary.js";

/** An <a> only for http(s) URLs; anything else (javascript:, data:) stays plain text. */
function safeLink(url) {
  if (!url) return "—";
  try {
    const parsed = new URL(String(url));
    if (parsed.protocol === "https:" || parsed.protocol === "http:") {
      return el("a", { href: parsed.href, rel: "noopener noreferrer", target: "_blank", text: String(url) });
    }
  } catch (error) {
    // not a URL: shown as text below
  }
  return el("span", { text: String(url) });
}

// ---- dead letters ----------------------------------------------------------
function deadRow(item) {
  const replay = el("button", { type: "button", class: "button button--small", text: t("replay"),
    "aria-label": `${t("replay")} ${item.id}`, dataset: { replay: item.id } });
  replay.addEventListener("click", () => busy(replay, async () => {
    const data = await api(`/api/dead_letters/${encodeURIComponent(item.id)}/replay`, { method: "POST" });
    toast(data.message || t("replayed"), "success");
    await refreshDeadLetters();
  }).catch(() => {}));
  // A webhook's error is a failure code (in words); a pipeline step's is the exception text.
  const error = item.kind === "webhook" ? reasonSpan(item.reason ?? item.error) : item.error || "—";
  const email = item.email_id
    ? el("a", { href: `#history/${encodeURIComponent(item.email_id)}`, title: t("open_email"), text: item.subject || item.email_id })
    : item.subject || "—";
  return el("tr", { dataset: { deadId: item.id } },
    el("td", { class: "wrap" }, el("code", { text: item.id })),
    el("td", {}, codeSpan("dead_kind", item.kind)),
    el("td", { class: "wrap" }, email),
    el("td", { class: "wrap" }, error),
    el("td", { text: formatTime(item.failed_at) }),
    el("td", {}, replay));
}

export async function refreshDeadLetters() {
  const data = await api("/api/dead_letters");
  const items = data.dead_letters ?? data.items ?? [];
  $("#dead-rows").replaceChildren(...items.map(deadRow));
  $("#dead-empty").hidden = items.length > 0;
  $("#dead-replay-all").disabled = items.length === 0;
}

// ---- link journal ----------------------------------------------------------
function linkRow(link) {
  return el("tr", {},
    el("td", { text: formatTime(link.timestamp ?? link.created_at ?? link.ts) }),
    el("td", { text: link.provider ?? "—" }),
    el("td", { class: "wrap" }, safeLink(link.source_url ?? link.raw_url ?? link.url)),
    el("td", { class: "wrap" }, safeLink(link.r2_url ?? link.direct_url)));
}

export async function refreshLinks() {
  const data = await api("/api/links");
  const links = Array.isArray(data.links) ? data.links : Array.isArray(data.items) ? data.items : [];
  $("#links-rows").replaceChildren(...links.map(linkRow));
  $("#links-empty").hidden = links.length > 0;
}

export function initOperations() {
  $("#dead-refresh").addEventListener("click", () => refreshDeadLetters().catch(() => {}));
  $("#links-refresh").addEventListener("click", () => refreshLinks().catch(() => {}));
  const replayAll = $("#dead-replay-all");
  replayAll.addEventListener("click", async () => {
    if (!(await confirmDialog(t("confirm_replay_all")))) return;
    try {
      const data = await busy(replayAll, () => api("/api/dead_letters/replay_all", { method: "POST" }));
      toast(data.message || t("replayed_all", { n: data.replayed ?? data.count ?? "" }), "success");
    } catch (error) {
      // already shown by api()
    }
    await refreshDeadLetters().catch(() => {});
  });
  return Promise.all([refreshDeadLetters().catch(() => {}), refreshLinks().catch(() => {})]);
}
