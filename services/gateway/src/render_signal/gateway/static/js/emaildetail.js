// One email's detail (GET /api/emails/{id}): every step of its way through the pipeline,
// and each delivery attempt as it was sent (target, masked URL, headers, body) and as it
// was answered (status, headers, body snippet, error, duration). "Retry now"
// (POST /api/emails/{id}/retry, confirmed first) sends a retrying, deferred or
// dead-lettered email to its targets' *current* URL; the view then follows the email.
import { $, api, busy, confirmDialog, el, formatTime, t, toast } from "./core.js";
import {
  codeSpan, codeText, eventText, reasonSpan, reasonText, sourceText, stateBadge, targetName,
} from "./vocabulary.js";

const REFRESH_MS = 2000;
const RETRYABLE = new Set(["retrying", "deferred", "dead_letter"]);
let current = null; // { id, signature }
let timer = null;

const pre = (text, cls = "") => el("pre", { class: `code ${cls}`.trim(), text });

function headerLines(headers) {
  return Object.entries(headers ?? {}).map(([name, value]) => `${name}: ${value}`).join("\n");
}

/** The payload pretty-printed when it is whole JSON; as sent otherwise (e.g. truncated). */
function payloadText(payload) {
  try {
    return JSON.stringify(JSON.parse(payload), null, 2);
  } catch (error) {
    return payload ?? "";
  }
}

function fact(label, value, attrs = {}) {
  return el("div", attrs, el("dt", { text: label }), el("dd", {}, value));
}

function attemptView(attempt, event) {
  const status = attempt.status_code ?? null;
  const facts = [
    fact(t("attempt_status"), status === null ? t("attempt_no_status") : String(status), { class: "attempt__status" }),
    fact(t("attempt_duration"), `${attempt.duration_ms ?? 0} ms`),
    fact(t("attempt_outcome"), codeSpan("outcome", attempt.outcome)),
    fact(t("attempt_url"), el("code", { text: attempt.url ?? "—" })),
  ];
  if (attempt.error) facts.push(fact(t("attempt_error"), reasonSpan(attempt.error), { class: "attempt__error" }));
  if (event.until) facts.push(fact(t("attempt_next"), formatTime(event.until)));
  const snippet = attempt.response_snippet || t("attempt_empty_response");
  return el("div", { class: "attempt", dataset: { attempt: attempt.attempt, status: status ?? "" } },
    el("dl", { class: "facts facts--compact" }, facts),
    el("h4", { text: t("attempt_response") }),
    pre(snippet, "attempt__snippet"),
    el("details", { class: "attempt__more" }, el("summary", { text: t("attempt_request_headers") }),
      pre(headerLines(attempt.request_headers))),
    el("details", { class: "attempt__more" },
      el("summary", { text: t("attempt_payload", { bytes: t("bytes_n", { n: attempt.payload_bytes ?? 0 }) }) }),
      pre(payloadText(attempt.payload))),
    el("details", { class: "attempt__more" }, el("summary", { text: t("attempt_response_headers") }),
      pre(headerLines(attempt.response_headers))));
}

function linkLine(link) {
  const outcome = link.r2
    ? t("link_r2")
    : `${t("link_kept")}${link.reason ? ` (${reasonText(link.reason)})` : ""}`;
  return el("li", { title: link.reason ?? "" },
    el("strong", { text: link.provider }), ` — ${outcome}`,
    link.unknown_shape ? ` · ${t("link_unknown_shape")}` : "");
}

/** What one event adds to its line, besides its time and kind. */
function eventBody(event) {
  const parts = [];
  const line = (...children) => el("p", { class: "event__text" }, ...children);
  switch (event.kind) {
    case "received":
      parts.push(line(`${sourceText(event.source)} · ${t("bytes_n", { n: event.size ?? "?" })}`));
      break;
    case "parsed":
      parts.push(line(event.detector ? `${codeText("detector", event.detector)} · ` : "", reasonSpan(event.reason)));
      break;
    case "offloaded":
      parts.push(el("ul", { class: "event__links" }, (event.links ?? []).map(linkLine)));
      break;
    case "deferred":
      parts.push(line(reasonSpan(event.reason), event.until ? ` · ${t("until_when", { when: formatTime(event.until) })}` : ""));
      break;
    case "attempt":
      if (event.attempt) parts.push(attemptView(event.attempt, event));
      break;
    default:
      if (event.reason) parts.push(line(reasonSpan(event.reason)));
  }
  return parts;
}

function eventItem(event) {
  const attempt = event.attempt;
  const title = attempt
    ? `${t("attempt_n", { n: attempt.attempt })} ${t("attempt_to", { target: targetName(attempt.target) })}`
    : eventText(event.kind);
  const target = !attempt && event.target ? ` · ${targetName(event.target)}` : "";
  return el("li", { class: `event event--${event.kind}`, dataset: { kind: event.kind } },
    el("div", { class: "event__head" },
      el("time", { text: formatTime(event.at) }),
      el("strong", { title: event.kind, text: title }),
      el("span", { class: "muted", text: `${target} · ${event.service}` })),
    ...eventBody(event));
}

function render(email) {
  $("#email-subject").textContent = email.subject || t("history_no_subject");
  $("#email-state").replaceWith(Object.assign(stateBadge(email.state), { id: "email-state" }));
  $("#email-detail").dataset.state = email.state;
  $("#email-detail").dataset.emailId = email.email_id;
  $("#email-retry").hidden = !RETRYABLE.has(email.state);
  const facts = [
    fact(t("email_id"), el("code", { text: email.email_id })),
    fact(t("email_sender"), email.sender || "—"),
    fact(t("email_source"), sourceText(email.source)),
    fact(t("email_size"), email.size ? t("bytes_n", { n: email.size }) : "—"),
    fact(t("email_received"), formatTime(email.received_at)),
    fact(t("email_updated"), formatTime(email.updated_at)),
  ];
  if (email.reason) facts.push(fact(t("email_reason"), reasonSpan(email.reason)));
  $("#email-facts").replaceChildren(...facts);
  const targets = (email.targets ?? []).map((target) => el("li", { class: "chip", dataset: { target: target.name } },
    el("strong", { text: targetName(target.name) }), " ", stateBadge(target.state)));
  $("#email-targets").replaceChildren(...(targets.length ? targets
    : [el("li", { class: "muted", text: t("email_no_target") })]));
  $("#email-events").replaceChildren(...(email.events ?? []).map(eventItem));
}

async function refresh() {
  if (!current) return;
  const id = current.id;
  let email;
  try {
    email = await api(`/api/emails/${encodeURIComponent(id)}`, { quiet: true });
  } catch (error) {
    if (current?.id !== id) return;
    const message = $("#email-message");
    message.textContent = error.status === 404 ? t("email_unknown") : error.message;
    message.hidden = false;
    if (!current.signature) $("#email-subject").textContent = "—";
    return;
  }
  if (current?.id !== id) return;
  $("#email-message").hidden = true;
  // Re-render only on change: an operator reading an open <details> keeps it open.
  const signature = `${email.updated_at}|${(email.events ?? []).length}|${email.state}`;
  if (signature !== current.signature) {
    current.signature = signature;
    render(email);
  }
}

/** Open the detail of `emailId` in place of the list; it follows the email until closed. */
export function showEmail(emailId) {
  if (current?.id === emailId) return;
  current = { id: emailId, signature: "" };
  $("#history-card").hidden = true;
  const detail = $("#email-detail");
  detail.hidden = false;
  detail.dataset.emailId = emailId;
  detail.dataset.state = "";
  $("#email-subject").textContent = t("email_loading");
  $("#email-facts").replaceChildren();
  $("#email-targets").replaceChildren();
  $("#email-events").replaceChildren();
  $("#email-retry").hidden = true;
  clearInterval(timer);
  timer = setInterval(() => { if (!document.hidden) refresh(); }, REFRESH_MS);
  refresh();
  detail.scrollIntoView({ block: "start" });
}

/** Back to the list. */
export function hideEmail() {
  clearInterval(timer);
  current = null;
  $("#email-detail").hidden = true;
  $("#history-card").hidden = false;
}

async function retry(button) {
  if (!current) return;
  const id = current.id;
  if (!(await confirmDialog(t("confirm_retry")))) return;
  try {
    const data = await busy(button, () => api(`/api/emails/${encodeURIComponent(id)}/retry`, { method: "POST" }));
    toast(t("retry_queued", { n: data.queued ?? 1 }), "success", { title: data.message });
  } catch (error) {
    // shown by api(), translated
  }
  await refresh();
}

export function initEmailDetail() {
  $("#email-back").addEventListener("click", () => { location.hash = "#history"; });
  const button = $("#email-retry");
  button.addEventListener("click", () => retry(button));
}
