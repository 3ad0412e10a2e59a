// Schedule tab: IMAP polling schedule and runtime flags.
import { $, $$, api, busy, el, t, toast, trackSaves } from "./core.js";
import { showSources } from "./sources.js";

// ---- polling schedule ------------------------------------------------------
function asList(value) {
  if (Array.isArray(value)) return value;
  if (typeof value === "string") return value.split(/[\s,;]+/).filter(Boolean);
  return [];
}

async function loadPolling() {
  const data = await api("/api/polling_config");
  const config = data.config ?? data;
  const days = new Set(asList(config.active_days).map(Number));
  for (const box of $$("input[name=active_day]")) box.checked = days.has(Number(box.value));
  $("#polling-active_start_hour").value = String(config.active_start_hour ?? 0);
  $("#polling-active_end_hour").value = String(config.active_end_hour ?? 24);
  $("#polling-vacation-start").value = config.vacation_start ?? "";
  $("#polling-vacation-end").value = config.vacation_end ?? "";
  $("#polling-enabled").checked = Boolean(config.enable_polling);
  $("#polling-senders").value = asList(config.sender_of_interest_for_polling).join("\n");
  showSources($("#polling-form"), config);
}

function initPolling() {
  const form = $("#polling-form");
  const saves = trackSaves(form);
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const body = {
      active_days: $$("input[name=active_day]:checked").map((box) => Number(box.value)),
      active_start_hour: Number($("#polling-active_start_hour").value),
      active_end_hour: Number($("#polling-active_end_hour").value),
      vacation_start: $("#polling-vacation-start").value || null,
      vacation_end: $("#polling-vacation-end").value || null,
      enable_polling: $("#polling-enabled").checked,
      sender_of_interest_for_polling: asList($("#polling-senders").value),
    };
    busy(form.querySelector("[type=submit]"), async () => {
      const data = await api("/api/polling_config", { method: "POST", json: body });
      toast(t("saved"), "success");
      saves.saved();
      await loadPolling();
    }).catch(() => {});
  });
  return loadPolling().catch(() => {});
}

// ---- runtime flags ---------------------------------------------------------
function flagLabel(name) {
  const key = `flag_${name}`;
  const text = t(key);
  return text === key ? name : text;
}

async function loadFlags() {
  const data = await api("/api/get_runtime_flags");
  const flags = data.flags ?? {};
  const boxes = Object.entries(flags)
    .filter(([, value]) => typeof value === "boolean")
    .map(([name, value]) => el("label", { class: "check" },
      el("input", { type: "checkbox", name, checked: value, dataset: { flag: name } }),
      ` ${flagLabel(name)}`));
  $("#flags-list").replaceChildren(...boxes);
  showSources($("#flags-form"), flags);
}

function initFlags() {
  const form = $("#flags-form");
  const saves = trackSaves(form);
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const body = Object.fromEntries($$("[data-flag]", form).map((box) => [box.dataset.flag, box.checked]));
    busy(form.querySelector("[type=submit]"), async () => {
      const data = await api("/api/update_runtime_flags", { method: "POST", json: body });
      toast(t("saved"), "success");
      saves.saved();
      await loadFlags();
    }).catch(() => {});
  });
  return loadFlags().catch(() => {});
}

export function initSchedule() {
  return Promise.all([initPolling(), initFlags()]);
}
