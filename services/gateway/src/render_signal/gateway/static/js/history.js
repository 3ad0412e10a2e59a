// The email history (GET /api/emails): newest first, one line per accepted email,
// skipped ones included, filtered by state, searched by subject / sender / id, and
// paged with "load more" (the API's next_cursor). A line opens the email's detail
// (#history/<email id>, emaildetail.js).
import { $, api, el, formatTime, t } from "./core.js";
import { reasonSpan, sourceText, stateBadge, targetName } from "./vocabulary.js";

const PAGE_SIZE = 25;
const SEARCH_DELAY_MS = 400;
let cursor = null;
// A newer query makes the answers of older ones moot (typing fast in the search box).
let generation = 0;

function emailRow(email) {
  const targets = email.targets ?? [];
  return el("li", { class: "email-row", dataset: { emailId: email.email_id, state: email.state } },
    el("div", { class: "email-row__main" },
      stateBadge(email.state),
      el("a", { class: "email-row__link", href: `#history/${encodeURIComponent(email.email_id)}`,
        title: t("history_open"), text: email.subject || t("history_no_subject") })),
    el("p", { class: "email-row__meta muted" },
      el("time", { text: formatTime(email.received_at) }), " · ",
      el("span", { class: "email-row__sender", text: email.sender || "—" }), " · ",
      el("span", { text: sourceText(email.source) })),
    email.reason ? el("p", { class: "email-row__reason" }, reasonSpan(email.reason)) : null,
    targets.length ? el("ul", { class: "email-row__targets" }, targets.map((target) =>
      el("li", {}, `${targetName(target.name)} : `, stateBadge(target.state)))) : null);
}

function currentQuery(after) {
  const params = new URLSearchParams({ limit: String(PAGE_SIZE) });
  const state = $("#history-state").value;
  const q = $("#history-q").value.trim();
  if (state) params.set("state", state);
  if (q) params.set("q", q);
  if (after) params.set("cursor", after);
  return params;
}

/** Load the first page (or, with `more`, the next one) of the filtered history. */
export async function loadHistory({ more = false } = {}) {
  const list = $("#history-rows");
  const mine = more ? generation : (generation += 1);
  list.setAttribute("aria-busy", "true");
  try {
    const data = await api(`/api/emails?${currentQuery(more ? cursor : null)}`);
    if (mine !== generation) return;
    const rows = (data.emails ?? []).map(emailRow);
    if (more) list.append(...rows);
    else list.replaceChildren(...rows);
    cursor = data.next_cursor ?? null;
    $("#history-more").hidden = !cursor;
    $("#history-empty").hidden = list.children.length > 0;
  } catch (error) {
    // shown by api()
  } finally {
    if (mine === generation) list.setAttribute("aria-busy", "false");
  }
}

export function initHistory() {
  const form = $("#history-filters");
  let timer;
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    clearTimeout(timer);
    loadHistory();
  });
  $("#history-state").addEventListener("change", () => loadHistory());
  $("#history-q").addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(() => loadHistory(), SEARCH_DELAY_MS);
  });
  $("#history-refresh").addEventListener("click", () => loadHistory());
  $("#history-more").addEventListener("click", () => loadHistory({ more: true }));
  return loadHistory();
}
