// The test buttons (POST /api/test/{webhook,imap,worker}): each test is run by the service
// that owns the resource and answers what a real attempt met. The page shows it in its
// language: a summary, the HTTP status, the receiver's answer, the exact error and a hint;
// the service's own English sentences stay in tooltips.
import { $, $$, api, busy, el, t } from "./core.js";
import { reasonSpan, serviceName, targetName } from "./vocabulary.js";

const OWNERS = { webhook: "notify", imap: "ingest", worker: "offload" };

// The services' summaries and hints, recognised to be said in the page's language.
const SUMMARIES = [
  [/^(.+) answered (\d+)$/, (m) => t("sum_webhook_answered", { target: targetName(m[1]), code: m[2] })],
  [/^(.+) did not answer$/, (m) => t("sum_webhook_silent", { target: targetName(m[1]) })],
  [/^no URL configured for (.+)$/, (m) => t("sum_webhook_no_url", { target: targetName(m[1]) })],
  [/^logged in to (\S+); (.+) holds (\d+) message\(s\)$/, (m) => t("sum_imap_ok", { where: m[1], box: m[2], n: m[3] })],
  [/^login refused by (\S+)$/, (m) => t("sum_imap_refused", { where: m[1] })],
  [/^could not use (\S+)$/, (m) => t("sum_imap_unusable", { where: m[1] })],
  [/^IMAP is not configured$/, () => t("sum_imap_unconfigured")],
  [/^the Worker answered and accepted the token$/, () => t("sum_worker_ok")],
  [/^the Worker could not be reached$/, () => t("sum_worker_unreachable")],
  [/^the Worker refused the token$/, () => t("sum_worker_refused")],
  [/^the Worker answered (\d+)$/, (m) => t("sum_worker_status", { code: m[1] })],
  [/^R2 offload is disabled/, () => t("sum_worker_disabled")],
  [/^no answer$/, () => t("sum_no_answer")],
];

const HINTS = [
  [/EMAIL_PASSWORD \(/, "hint_imap_login"],
  [/IMAP_USE_SSL/, "hint_imap_tls"],
  [/^check IMAP_SERVER and IMAP_PORT/, "hint_imap_reach"],
  [/IMAP_MAILBOX/, "hint_imap_mailbox"],
  [/does not resolve/, "hint_imap_dns"],
  [/^set IMAP_SERVER, EMAIL_ADDRESS/, "hint_imap_unconfigured"],
  [/ingest log has the same line/, "hint_imap_generic"],
  [/^check R2_FETCH_ENDPOINT/, "hint_worker_reach"],
  [/^R2_FETCH_TOKEN must match/, "hint_worker_token"],
  [/wrangler tail/, "hint_worker_logs"],
  [/^set R2_FETCH_ENABLED/, "hint_worker_disabled"],
  [/^set WEBHOOK_URL/, "hint_webhook_no_url"],
];

function translated(table, text, render) {
  for (const [pattern, make] of table) {
    const match = pattern.exec(text ?? "");
    if (match) return render(make, match);
  }
  return text ?? "";
}

const summaryText = (summary) => translated(SUMMARIES, summary, (make, match) => make(match));

/** The hint for a result: by the webhook's failure code, else by the service's sentence. */
function hintText(result) {
  const byCode = result.error ? t(`hint_${result.error}`) : null;
  if (byCode && byCode !== `hint_${result.error}`) return byCode;
  return translated(HINTS, result.hint, (key) => t(key));
}

/** The error: a known failure code in words; anything else is the exact error, verbatim. */
function errorView(error) {
  if (/^[a-z]+(_[a-z]+)+$/.test(error)) return reasonSpan(error);
  return el("code", { class: "check-result__error", text: error });
}

function renderResult(box, result) {
  const ok = Boolean(result.ok);
  box.dataset.outcome = ok ? "ok" : "failed";
  const lines = [
    el("p", { class: "check-result__summary" },
      el("span", { class: `pill ${ok ? "pill--ok" : "pill--bad"}`, text: ok ? t("check_ok") : t("check_failed") }),
      " ",
      el("span", { title: result.summary ?? "", text: summaryText(result.summary) })),
  ];
  const facts = [];
  if (result.status_code) facts.push(t("target_http", { code: result.status_code }));
  if (result.duration_ms !== undefined && result.duration_ms !== null) facts.push(`${result.duration_ms} ms`);
  if (result.url) facts.push(result.url);
  if (facts.length) lines.push(el("p", { class: "muted check-result__facts", text: facts.join(" · ") }));
  if (result.response_snippet) {
    lines.push(el("p", { class: "check-result__label", text: t("check_response") }),
      el("pre", { class: "code check-result__snippet", text: result.response_snippet }));
  }
  if (result.error) {
    lines.push(el("p", { class: "check-result__label" }, `${t("check_error")} : `, errorView(result.error)));
  }
  const hint = hintText(result);
  if (hint) lines.push(el("p", { class: "check-result__hint", title: result.hint ?? "" }, el("strong", { text: `${t("check_hint")} : ` }), hint));
  if (result.service) {
    lines.push(el("p", { class: "muted", text: t("check_ran_by", { service: serviceName(result.service), instance: result.instance ?? "?" }) }));
  }
  box.replaceChildren(...lines);
}

function renderRefusal(box, kind, error) {
  // 503: no live replica of the owning service; 504: none answered in time.
  box.dataset.outcome = "failed";
  const service = serviceName(OWNERS[kind]);
  const text = error.status === 503 ? t("check_service_down", { service })
    : error.status === 504 ? t("check_no_answer", { service }) : error.message;
  box.replaceChildren(el("p", { class: "check-result__summary" },
    el("span", { class: "pill pill--bad", text: t("check_failed") }), " ",
    el("span", { title: error.data?.message ?? "", text })));
}

async function run(button) {
  const kind = button.dataset.run;
  const box = button.closest(".check-row").querySelector(".check-result");
  box.dataset.outcome = "running";
  box.replaceChildren(el("p", { class: "muted", text: t("check_running") }));
  const options = { method: "POST", quiet: true };
  if (kind === "webhook") options.json = { target: button.dataset.target || "default" };
  await busy(button, async () => {
    try {
      renderResult(box, await api(`/api/test/${kind}`, options));
    } catch (error) {
      // A failed test is a 200 answer with success:false: show what it met.
      if (error.status === 200 && error.data) renderResult(box, error.data);
      else renderRefusal(box, kind, error);
    }
  });
}

function ruleRow(rule) {
  return el("li", { class: "check-row", dataset: { check: "webhook", target: rule.id, rule: rule.id } },
    el("div", { class: "check-row__head" },
      el("strong", { text: t("target_rule", { name: rule.name || rule.id }) }),
      el("button", { type: "button", class: "button button--small", text: t("check_webhook"),
        dataset: { run: "webhook", target: rule.id } })),
    el("div", { class: "check-result", "aria-live": "polite" }));
}

/** One "test the webhook" row per routing rule, after the default target's. */
export async function refreshRuleChecks() {
  for (const row of $$("#checks-list .check-row[data-rule]")) row.remove();
  let rules = [];
  try {
    const data = await api("/api/routing_rules", { quiet: true });
    rules = (data.config ?? data).rules ?? [];
  } catch (error) {
    return;
  }
  const anchor = $('#checks-list .check-row[data-target="default"]');
  anchor.after(...rules.map(ruleRow));
}

export function initChecks() {
  $("#checks-list").addEventListener("click", (event) => {
    const button = event.target.closest("button[data-run]");
    if (button) run(button);
  });
  return refreshRuleChecks();
}
