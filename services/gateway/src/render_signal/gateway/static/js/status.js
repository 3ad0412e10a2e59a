// Status banner: services (heartbeats), streams, dead letters, last activity, error counts.
import { $, api, el, formatAge, relativeTime, t } from "./core.js";

/** [name, value] pairs from either an object map or a list of records. */
function entries(value, nameKeys = ["name", "stream", "service", "key", "target", "url"]) {
  if (!value) return [];
  if (Array.isArray(value)) {
    return value.map((item) => {
      if (item === null || typeof item !== "object") return [String(item), item];
      const key = nameKeys.find((k) => item[k] !== undefined);
      return [key ? String(item[key]) : "?", item];
    });
  }
  return Object.entries(value);
}

function countOf(value) {
  if (typeof value === "number") return value;
  if (value && typeof value === "object") return value.size ?? value.length ?? value.count ?? 0;
  return Number(value) || 0;
}

function timestampOf(value) {
  if (value && typeof value === "object") return value.timestamp ?? value.ts ?? value.at ?? null;
  return value;
}

function errorCounts(data) {
  const errors = data.errors ?? {};
  return {
    hour: Number(data.errors_1h ?? errors["1h"] ?? errors.last_hour ?? 0),
    day: Number(data.errors_24h ?? errors["24h"] ?? errors.last_24h ?? 0),
  };
}

function fill(list, items, empty) {
  list.replaceChildren(...(items.length ? items : [el("li", { class: "muted", text: empty })]));
}

function renderServices(data) {
  const services = entries(data.services).map(([name, info]) => {
    const record = info && typeof info === "object" ? info : {};
    const label = record.service && record.instance ? `${record.service} (${record.instance})` : name;
    const age = record.age_s ?? record.age_seconds ?? record.age;
    const stale = record.alive === false || record.stale === true;
    return el("li", { class: `chip ${stale ? "chip--bad" : "chip--ok"}`, dataset: { service: record.service ?? name } },
      el("span", { class: "dot", "aria-hidden": "true" }),
      `${label} · ${formatAge(age)}`);
  });
  fill($("#status-services"), services, t("no_service"));
}

function renderStreams(data) {
  const streams = entries(data.streams).map(([name, info]) => {
    const s = info && typeof info === "object" ? info : { length: info };
    // One line per consumer group: pending (delivered, not acked) and lag (not yet delivered).
    const groups = Array.isArray(s.groups) ? s.groups : [{ name: "", pending: s.pending, lag: s.lag }];
    return el("li", { dataset: { stream: name } },
      el("code", { text: name }), ` ${t("stream_length")} ${s.length ?? "—"}`,
      groups.map((g) => el("span", { class: "group" },
        `${g.name ? `${g.name}: ` : ""}${t("stream_pending")} ${g.pending ?? "—"} · ${t("stream_lag")} ${g.lag ?? "—"}`)));
  });
  fill($("#status-streams"), streams, t("none"));
  const dlq = entries(data.dlq ?? data.dead_letters).map(([name, size]) =>
    el("li", { class: countOf(size) ? "bad" : "" }, el("code", { text: name }), ` ${countOf(size)}`));
  fill($("#status-dlq"), dlq, t("none"));
  const disabled = entries(data.disabled_targets).map(([name, info]) => {
    const reason = info && typeof info === "object" ? info.reason ?? info.until ?? "" : "";
    return el("li", {}, el("code", { text: name }), reason ? ` ${reason}` : "");
  });
  fill($("#status-disabled"), disabled, t("none"));
}

export async function refreshStatus() {
  const banner = $("#status-banner");
  const summary = $("#status-summary");
  banner.setAttribute("aria-busy", "true");
  try {
    const data = await api("/api/status");
    const errors = errorCounts(data);
    const level = errors.hour > 0 ? "critical" : errors.day > 0 ? "warning" : "ok";
    banner.className = `status status--${level}`;
    banner.dataset.level = level;
    summary.textContent = t(`status_${level}`);
    $("#status-errors-1h").textContent = String(errors.hour);
    $("#status-errors-24h").textContent = String(errors.day);
    $("#status-last-email").textContent = relativeTime(timestampOf(data.last_email_at ?? data.last_email));
    $("#status-last-webhook").textContent = relativeTime(timestampOf(data.last_webhook_at ?? data.last_webhook));
    renderServices(data);
    renderStreams(data);
  } catch (error) {
    banner.className = "status status--unknown";
    banner.dataset.level = "unknown";
    summary.textContent = t("status_unknown");
  } finally {
    banner.removeAttribute("aria-busy");
  }
}

export function initStatus() {
  $("#status-refresh").addEventListener("click", refreshStatus);
  return refreshStatus();
}
