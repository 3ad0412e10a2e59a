// Webhook tab: targets (URL/SSL/mode), the enforced time window, Absence Globale.
import { $, $$, api, busy, el, t, toast, trackSaves } from "./core.js";
import { showSources } from "./sources.js";

/** "9h30" / "9:30" / "09h00" → "09:30"; anything else unchanged. */
export function normaliseTime(value) {
  const match = /^\s*(\d{1,2})\s*[h:]\s*(\d{2})?\s*$/i.exec(value ?? "");
  if (!match) return value ?? "";
  return `${match[1].padStart(2, "0")}:${match[2] ?? "00"}`;
}

/** Select `value` in a half-hour dropdown, adding an option for an off-grid stored value. */
function selectTime(select, raw) {
  const value = raw ? normaliseTime(raw) : "";
  if (value && ![...select.options].some((o) => o.value === value)) {
    select.append(el("option", { value, text: value }));
  }
  select.value = value;
}

// ---- targets ---------------------------------------------------------------
async function loadTargets() {
  const data = await api("/api/webhooks/config");
  const config = data.config ?? data;
  const url = $("#webhook-url");
  url.value = config.webhook_url ?? "";
  url.dataset.original = url.value;
  $("#webhook-ssl-verify").checked = Boolean(config.webhook_ssl_verify);
  $("#webhook-sending-enabled").checked = Boolean(config.webhook_sending_enabled);
  $("#webhook-delivery-mode").value = config.webhook_delivery_mode === "form" ? "form" : "json";
  $("#webhook-fallback-415").checked = Boolean(config.webhook_fallback_on_415);
  $("#webhook-accept-any-2xx").checked = Boolean(config.webhook_accept_any_2xx);
  showSources($("#targets-form"), config);
}

function initTargets() {
  const form = $("#targets-form");
  const saves = trackSaves(form);
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const url = $("#webhook-url");
    const fields = {
      webhook_ssl_verify: () => $("#webhook-ssl-verify").checked,
      webhook_sending_enabled: () => $("#webhook-sending-enabled").checked,
      webhook_delivery_mode: () => $("#webhook-delivery-mode").value,
      webhook_fallback_on_415: () => $("#webhook-fallback-415").checked,
      webhook_accept_any_2xx: () => $("#webhook-accept-any-2xx").checked,
    };
    // Disabled controls (admin-only, for an operator session) are not sent: the API refuses them.
    const body = {};
    for (const [name, read] of Object.entries(fields)) {
      if (!form.elements[name].disabled) body[name] = read();
    }
    // The GET answer is masked ("https://host/***"): sending it back would overwrite the real URL.
    if (!url.disabled && url.value.trim() && url.value.trim() !== url.dataset.original) {
      body.webhook_url = url.value.trim();
    }
    busy(form.querySelector("[type=submit]"), async () => {
      const data = await api("/api/webhooks/config", { method: "POST", json: body });
      toast(t("saved"), "success");
      saves.saved();
      await loadTargets();
    }).catch(() => {});
  });
  return loadTargets().catch(() => {});
}

// ---- time window -----------------------------------------------------------
async function loadWindow() {
  const data = await api("/api/webhooks/time-window");
  selectTime($("#window-start"), data.webhooks_time_start ?? data.start);
  selectTime($("#window-end"), data.webhooks_time_end ?? data.end);
  // One source for the pair: the window is set (or left to the environment) as a whole.
  showSources($("#window-form"), { _sources: { webhook_time_start: data.source, webhook_time_end: data.source } });
}

function initWindow() {
  const form = $("#window-form");
  const saves = trackSaves(form);
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const body = { start: $("#window-start").value, end: $("#window-end").value };
    busy($("#window-save"), async () => {
      const data = await api("/api/webhooks/time-window", { method: "POST", json: body });
      toast(t("saved"), "success");
      saves.saved();
      await loadWindow();
    }).catch(() => {});
  });
  return loadWindow().catch(() => {});
}

// ---- Absence Globale -------------------------------------------------------
async function loadAbsence() {
  // The whole webhook document: the same fields as /api/absence, with their sources.
  const data = await api("/api/webhooks/config");
  const config = data.config ?? data;
  const days = new Set((config.absence_pause_days ?? []).map((d) => String(d).toLowerCase()));
  $("#absence-enabled").checked = Boolean(config.absence_pause_enabled);
  for (const box of $$("input[name=absence_day]")) box.checked = days.has(box.value);
  showSources($("#absence-form"), config);
}

function initAbsence() {
  const form = $("#absence-form");
  const saves = trackSaves(form);
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const body = {
      absence_pause_enabled: $("#absence-enabled").checked,
      absence_pause_days: $$("input[name=absence_day]:checked").map((box) => box.value),
    };
    busy(form.querySelector("[type=submit]"), async () => {
      const data = await api("/api/absence", { method: "POST", json: body });
      toast(t("saved"), "success");
      saves.saved();
      await loadAbsence();
    }).catch(() => {});
  });
  return loadAbsence().catch(() => {});
}

export function initWebhooks() {
  return Promise.all([initTargets(), initWindow(), initAbsence()]);
}
