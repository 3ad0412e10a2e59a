// Where each configuration value comes from: the config APIs answer `_sources`
// (field -> dashboard | env | default) beside the values the services apply, so a
// value set by the environment (WEBHOOK_URL, WEBHOOKS_TIME_*, POLLING_*) is shown,
// with a badge naming its variable, instead of an empty field.
import { $, $$, el, t } from "./core.js";

// Form controls whose name differs from the config field they edit.
const FIELD_OF = {
  start: "webhook_time_start",
  end: "webhook_time_end",
  absence_day: "absence_pause_days",
  active_day: "active_days",
};

let envVariables = null;

/** `{field: ENV_VAR}`, rendered by the server from the config documents. */
function envVariable(field) {
  envVariables ??= JSON.parse($("#main")?.dataset.configEnv || "{}");
  return envVariables[field];
}

function fieldOf(control) {
  return control.dataset.flag ?? FIELD_OF[control.name] ?? control.name;
}

/**
 * Put the badge next to the control, outside its <label> so the label's text (the
 * field's name) stays what it says: after a `label[for]`, or after a label that
 * wraps the control; in a group of checkboxes, in the legend.
 */
function place(control, badge) {
  const legend = control.closest("fieldset.days")?.querySelector("legend");
  if (legend) {
    legend.append(" ", badge);
    return true;
  }
  const wrapper = control.closest(".field, .check");
  if (!wrapper) return false;
  if (wrapper.tagName !== "LABEL") {
    const label = wrapper.querySelector(`label[for="${control.id}"]`);
    label?.after(badge);
    return Boolean(label);
  }
  // A label wrapping its control: badge and label share a box, so a row of fields
  // keeps one item per field.
  if (!wrapper.parentElement.classList.contains("sourced")) {
    const box = el("div", { class: "sourced" });
    wrapper.replaceWith(box);
    box.append(wrapper);
  }
  wrapper.after(badge);
  return true;
}

let counter = 0;

/**
 * The badge. It sits by the label text but is not part of the field's name
 * (aria-hidden): the control is *described* by it (aria-describedby), so "Start"
 * stays "Start" for a screen reader, followed by where its value comes from.
 */
export function sourceBadge(source, field) {
  const variable = envVariable(field);
  const title = source === "env" ? t("source_env_title", { var: variable ?? "?" }) : t(`source_${source}_title`);
  return el("span", { class: `source source--${source}`, title, id: `source-${(counter += 1)}`,
    "aria-hidden": "true", dataset: { source, field } },
  t(`source_${source}`), source === "env" && variable ? el("code", { text: ` ${variable}` }) : null);
}

function describe(control, badge) {
  const others = (control.getAttribute("aria-describedby") ?? "").split(/\s+/)
    .filter((id) => id && !id.startsWith("source-"));
  control.setAttribute("aria-describedby", [...others, badge.id].join(" "));
}

/** Badge every control of `form` with the source of its field, from a config view. */
export function showSources(form, view) {
  const sources = view?._sources ?? {};
  for (const badge of $$(".source", form)) badge.remove();
  const done = new Set();
  for (const control of $$("input, select, textarea", form)) {
    const field = fieldOf(control);
    const source = sources[field];
    if (!source || done.has(field)) continue;
    const badge = sourceBadge(source, field);
    if (!place(control, badge)) continue;
    done.add(field);
    for (const same of $$("input, select, textarea", form).filter((c) => fieldOf(c) === field)) describe(same, badge);
  }
  const url = $("#webhook-url", form);
  const help = $("#webhook-url-help", form);
  if (url && help) {
    help.dataset.original ??= help.textContent;
    help.textContent = sources.webhook_url === "env"
      ? t("url_from_env", { var: envVariable("webhook_url") ?? "WEBHOOK_URL" })
      : help.dataset.original;
  }
}
