// The status verdict on every view (GET /api/status, polled): ok / degraded / failing,
// each problem in words, every service (a down one stays listed, red, with "last seen"),
// and the delivery health of each target. The server computes the verdict
// (common.health); this module only says it.
import { $, ago, api, el, formatAge, LANG, relativeTime, t } from "./core.js";
import { codeText, reasonText, serviceName, targetName } from "./vocabulary.js";

const POLL_MS = 5000;
const VERDICTS = ["ok", "degraded", "failing"];
let inFlight = null;

function fill(list, items, empty) {
  list.replaceChildren(...(items.length ? items : [el("li", { class: "muted", text: empty })]));
}

const seen = (epoch) => (epoch ? t("service_last_seen", { when: ago(epoch) }) : t("service_never_seen"));

/** The instance details one service reports in its heartbeat (first live one first). */
function detailsOf(data, service) {
  const record = (data.services ?? []).find((s) => s.service === service);
  const instances = record?.instances ?? [];
  const live = instances.find((i) => i.alive) ?? instances[0];
  return live?.details ?? {};
}

/** A failing target, for a delivery problem: the one whose failures started then. */
function failingTarget(data, problem) {
  const failing = (data.targets ?? []).filter((target) => target.consecutive_failures);
  return failing.find((target) => target.failing_since === problem.since) ?? failing[0];
}

function failureCause(target) {
  if (!target) return "—";
  const parts = [];
  if (target.last_status) parts.push(t("target_http", { code: target.last_status }));
  if (target.last_error) parts.push(reasonText(target.last_error));
  return parts.join(", ") || "—";
}

/** One problem in the page's language, from its kind and the structured status. */
export function problemText(problem, data) {
  const service = serviceName(problem.service ?? "");
  switch (problem.kind) {
    case "service_down":
      return t("problem_service_down", { service, seen: seen(problem.since) });
    case "service_stalled":
      return t("problem_service_stalled", { service, seen: ago(problem.since) });
    case "imap": {
      const imap = detailsOf(data, "ingest").imap ?? {};
      const error = imap.last_error ?? /^IMAP not connected: (.*)$/s.exec(problem.message ?? "")?.[1];
      const known = error && error !== "no replica holds the IMAP session";
      return t("problem_imap", { error: known ? error : t("problem_imap_no_session") });
    }
    case "delivery": {
      const target = failingTarget(data, problem);
      return t("problem_delivery", {
        target: targetName(target?.name), url: target?.url ?? "—", cause: failureCause(target),
        n: target?.consecutive_failures ?? "?",
      });
    }
    case "target_disabled":
      return t("problem_target_disabled", { n: (data.disabled_targets ?? []).length || "?" });
    case "dead_letters":
      return t("problem_dead_letters", { n: /^(\d+)/.exec(problem.message ?? "")?.[1] ?? "?" });
    case "sending_paused": {
      const gate = detailsOf(data, "notify").gate ?? {};
      const until = gate.until ? t("problem_sending_paused_until", { when: relativeOrDate(gate.until) }) : "";
      return t("problem_sending_paused", { reason: reasonText(gate.reason), until });
    }
    case "worker":
      return t("problem_worker");
    case "backlog": {
      const match = /^(\d+) entries waiting on (\S+)$/.exec(problem.message ?? "");
      return t("problem_backlog", { n: match?.[1] ?? "?", stream: match?.[2] ?? "?" });
    }
    default:
      return t("problem_other", { message: problem.message ?? problem.kind });
  }
}

/** A future time as a date ("until ..."): relativeTime() is for the past. */
function relativeOrDate(epoch) {
  const date = new Date(epoch * 1000);
  return date.toLocaleString(LANG === "en" ? "en-GB" : "fr-FR",
    { weekday: "short", day: "numeric", month: "short", hour: "2-digit", minute: "2-digit" });
}

function renderProblems(data) {
  const items = (data.problems ?? []).map((problem) => el("li",
    { class: `problem problem--${problem.level}`, dataset: { kind: problem.kind, level: problem.level },
      title: problem.message ?? "" },
    el("strong", { class: "problem__kind", text: codeText("problem_kind", problem.kind) }),
    " ",
    el("span", { class: "problem__text", text: problemText(problem, data) }),
    problem.since && !["service_down", "service_stalled"].includes(problem.kind)
      ? el("span", { class: "muted problem__since", text: ` ${t("problem_since", { when: ago(problem.since) })}` })
      : null));
  $("#status-problems").replaceChildren(...items);
}

function renderServices(data) {
  const chips = (data.services ?? []).map((record) => {
    const state = record.state ?? "down";
    const count = (record.instances ?? []).length;
    const facts = [codeText("service_state", state)];
    if (state !== "up") facts.push(seen(record.last_seen));
    else if (count > 1) facts.push(t("service_instances", { n: count }));
    const ages = (record.instances ?? []).map((i) => `${i.instance}: ${formatAge(i.age_s)}`).join(", ");
    return el("li", { class: `chip ${state === "up" ? "chip--ok" : "chip--bad"}`,
      dataset: { service: record.service, state }, title: ages || state },
      el("span", { class: "dot", "aria-hidden": "true" }),
      el("strong", { text: serviceName(record.service) }), ` · ${facts.join(" · ")}`);
  });
  fill($("#status-services"), chips, t("no_service"));
}

function renderTargets(data) {
  const chips = (data.targets ?? []).map((target) => {
    const failing = target.consecutive_failures > 0
      && (target.last_failure_at ?? 0) >= (target.last_success_at ?? 0);
    const fact = failing
      ? t("target_failing", { n: target.consecutive_failures, cause: failureCause(target) })
      : target.last_success_at ? `${t("target_healthy")} · ${t("target_last_success", { when: ago(target.last_success_at) })}`
        : t("target_healthy");
    return el("li", { class: `chip ${failing ? "chip--bad" : "chip--ok"}`, title: target.url ?? "",
      dataset: { target: target.name, health: failing ? "failing" : "ok" } },
      el("span", { class: "dot", "aria-hidden": "true" }),
      el("strong", { text: targetName(target.name) }), ` · ${fact}`);
  });
  fill($("#status-targets"), chips, t("no_target_health"));
}

function renderDetails(data) {
  $("#status-errors-1h").textContent = String(data.errors_1h ?? 0);
  $("#status-errors-24h").textContent = String(data.errors_24h ?? 0);
  $("#status-last-email").textContent = relativeTime(data.last_email_at);
  $("#status-last-webhook").textContent = relativeTime(data.last_webhook_at);
  const streams = Object.entries(data.streams ?? {}).map(([name, stream]) => el("li", { dataset: { stream: name } },
    el("code", { text: name }), ` ${t("stream_length")} ${stream.length ?? "—"}`,
    (stream.groups ?? []).map((g) => el("span", { class: "group" },
      `${g.name}: ${t("stream_pending")} ${g.pending ?? "—"} · ${t("stream_lag")} ${g.lag ?? "—"}`))));
  fill($("#status-streams"), streams, t("none"));
  const dlq = Object.entries(data.dlq ?? {}).map(([name, size]) =>
    el("li", { class: size ? "bad" : "" }, el("code", { text: name }), ` ${size}`));
  fill($("#status-dlq"), dlq, t("none"));
  const disabled = (data.disabled_targets ?? []).map((item) => el("li", {}, el("code", { text: item.target })));
  fill($("#status-disabled"), disabled, t("none"));
}

function show(verdict) {
  const banner = $("#status-banner");
  // Only on change: the summary is a live region, re-announced whenever it is written.
  if (banner.dataset.verdict === verdict) return;
  banner.className = `status status--${verdict}`;
  banner.dataset.verdict = verdict;
  banner.dataset.level = verdict;
  $("#status-summary").textContent = t(`verdict_${verdict}`);
  document.title = `${verdict === "ok" ? "" : verdict === "failing" ? "⛔ " : "⚠ "}${t("title")}`;
}

async function load() {
  const banner = $("#status-banner");
  banner.setAttribute("aria-busy", "true");
  try {
    const data = await api("/api/status", { quiet: true });
    const verdict = VERDICTS.includes(data.verdict) ? data.verdict : "unknown";
    show(verdict);
    renderProblems(data);
    renderServices(data);
    renderTargets(data);
    renderDetails(data);
    $("#status-checked").textContent = t("verdict_checked", { when: ago(data.checked_at) });
  } catch (error) {
    show("unknown");
  } finally {
    banner.removeAttribute("aria-busy");
  }
}

/** Refresh now (one request at a time: a slow answer is not stacked behind another). */
export function refreshStatus() {
  inFlight ??= load().finally(() => { inFlight = null; });
  return inFlight;
}

export function initVerdict() {
  $("#status-refresh").addEventListener("click", refreshStatus);
  setInterval(() => { if (!document.hidden) refreshStatus(); }, POLL_MS);
  document.addEventListener("visibilitychange", () => { if (!document.hidden) refreshStatus(); });
  return refreshStatus();
}
