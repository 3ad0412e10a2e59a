// Webhook log timeline (GET /api/webhook_logs?days=N) and a per-day sparkline.
import { $, api, el, formatTime, toDate, t } from "./core.js";
import { reasonText } from "./vocabulary.js";

const ICONS = { success: "✓", error: "✗", skipped: "↷", deferred: "↻" };
const ALIASES = { dead_letter: "error", rate_limited: "deferred", retry: "deferred", retrying: "deferred" };

function statusKey(status) {
  if (status in ICONS) return status;
  return ALIASES[status] ?? "error";
}

function statusLabel(status) {
  const key = `status_${status}`;
  const text = t(key);
  return text === key ? String(status ?? "?").replace(/_/g, " ") : text;
}

function logItem(log) {
  const status = statusKey(log.status);
  const facts = [
    log.status_code ? `HTTP ${log.status_code}` : null,
    log.attempt ? `${t("col_attempt")} ${log.attempt}` : null,
    log.delivery_mode ? `${t("col_mode")} ${log.delivery_mode}` : null,
    log.duration_ms !== undefined && log.duration_ms !== null ? `${Math.round(log.duration_ms)} ms` : null,
    log.failure_reason ? `${t("col_reason")} : ${reasonText(log.failure_reason)}` : null,
    log.next_attempt_at ? `${t("next_attempt")} ${formatTime(log.next_attempt_at)}` : null,
  ].filter(Boolean);
  return el("li", { class: `timeline__item timeline__item--${status}`, dataset: { status } },
    el("span", { class: "timeline__icon", "aria-hidden": "true", text: ICONS[status] }),
    el("div", { class: "timeline__body" },
      el("p", { class: "timeline__line" },
        el("time", { datetime: log.timestamp ?? "", text: formatTime(log.timestamp) }),
        " ",
        el("strong", { text: statusLabel(log.status) }),
        log.target ? el("code", { class: "timeline__target", text: log.target }) : null),
      log.subject ? el("p", { class: "timeline__subject", text: log.subject }) : null,
      el("p", { class: "timeline__meta muted", title: log.failure_reason ?? "" }, facts.join(" · "),
        log.email_id ? ` · ${t("col_email")} ` : null,
        log.email_id ? el("a", { href: `#history/${encodeURIComponent(log.email_id)}`, title: t("open_email"),
          text: log.email_id }) : null)));
}

/** Bars of successes (up) and failures (down) per day, drawn on the canvas. */
function drawSparkline(canvas, logs, days) {
  const context = canvas.getContext?.("2d");
  if (!context) return;
  const width = canvas.width;
  const height = canvas.height;
  const ok = new Array(days).fill(0);
  const bad = new Array(days).fill(0);
  const today = new Date();
  today.setHours(24, 0, 0, 0);
  for (const log of logs) {
    const date = toDate(log.timestamp);
    if (!date) continue;
    const index = days - 1 - Math.floor((today - date) / 86400000);
    if (index < 0 || index >= days) continue;
    if (log.status === "success") ok[index] += 1;
    else if (statusKey(log.status) === "error") bad[index] += 1;
  }
  const peak = Math.max(1, ...ok, ...bad);
  const step = width / days;
  const middle = height / 2;
  context.clearRect(0, 0, width, height);
  for (let i = 0; i < days; i += 1) {
    const x = i * step + step * 0.15;
    const w = step * 0.7;
    context.fillStyle = "#2e7d32";
    context.fillRect(x, middle - (ok[i] / peak) * (middle - 2), w, (ok[i] / peak) * (middle - 2));
    context.fillStyle = "#c62828";
    context.fillRect(x, middle, w, (bad[i] / peak) * (middle - 2));
  }
}

export async function refreshLogs() {
  const days = Number($("#logs-days").value) || 7;
  const list = $("#logs-timeline");
  list.setAttribute("aria-busy", "true");
  try {
    const data = await api(`/api/webhook_logs?days=${days}`);
    const logs = Array.isArray(data.logs) ? data.logs : [];
    list.replaceChildren(...logs.map(logItem));
    $("#logs-empty").hidden = logs.length > 0;
    drawSparkline($("#logs-sparkline"), logs, days);
  } catch (error) {
    list.replaceChildren();
  } finally {
    list.setAttribute("aria-busy", "false");
  }
}

export function initLogs() {
  $("#logs-refresh").addEventListener("click", refreshLogs);
  $("#logs-days").addEventListener("change", refreshLogs);
  return refreshLogs();
}
