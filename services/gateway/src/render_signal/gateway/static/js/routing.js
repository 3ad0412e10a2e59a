// Routing rules editor. Locked by default (accidental edits led to the original's lock).
import { $, $$, api, busy, el, t, toast } from "./core.js";

const FIELDS = ["sender", "subject", "body"];
const OPERATORS = ["contains", "equals", "regex"];
const PRIORITIES = ["normal", "high"];

let counter = 0;
const uid = (prefix) => `${prefix}-${(counter += 1)}`;

/** A control with its own <label for>: wrapping a <select> would put its options in the name. */
function labelled(text, control) {
  control.id = control.id || uid("ctl");
  const label = el("label", { for: control.id, text });
  if (control.type === "checkbox") return el("span", { class: "check" }, control, label);
  return el("span", { class: "field" }, label, control);
}

function select(name, values, current) {
  const node = el("select", { name }, values.map((v) => el("option", { value: v, text: v })));
  node.value = values.includes(current) ? current : values[0];
  return node;
}

function conditionRow(condition = {}) {
  const row = el("li", { class: "condition" });
  const remove = el("button", { type: "button", class: "button button--small", text: t("cond_remove") });
  remove.addEventListener("click", () => row.remove());
  row.append(
    labelled(t("cond_field"), select("field", FIELDS, condition.field)),
    labelled(t("cond_operator"), select("operator", OPERATORS, condition.operator)),
    labelled(t("cond_value"), el("input", { type: "text", name: "value", value: condition.value ?? "", spellcheck: "false" })),
    labelled(t("cond_case"), el("input", { type: "checkbox", name: "case_sensitive", checked: Boolean(condition.case_sensitive) })),
    remove,
  );
  return row;
}

function ruleCard(rule = {}) {
  const id = rule.id || uid("rule");
  const actions = rule.actions ?? {};
  const conditions = el("ol", { class: "conditions" });
  for (const c of rule.conditions?.length ? rule.conditions : [{}]) conditions.append(conditionRow(c));
  const add = el("button", { type: "button", class: "button button--small", text: t("rule_add_condition") });
  add.addEventListener("click", () => conditions.append(conditionRow()));
  // Action fields this editor has no control for (outside_window_policy, ...) ride along.
  const card = el("li", { class: "rule", dataset: { ruleId: id, actions: JSON.stringify(actions) } });
  const remove = el("button", { type: "button", class: "button button--small button--warn", text: t("rule_remove") });
  remove.addEventListener("click", () => { card.remove(); updateEmpty(); });
  card.append(
    el("div", { class: "row" },
      labelled(t("rule_name"), el("input", { type: "text", name: "name", value: rule.name ?? "", required: true })),
      el("code", { class: "muted", text: id }),
      remove),
    el("fieldset", { class: "bare" }, el("legend", { text: t("rule_conditions") }), conditions, add),
    el("div", { class: "row" },
      labelled(t("rule_webhook"), el("input", { type: "url", name: "webhook_url", value: actions.webhook_url ?? "", spellcheck: "false" })),
      labelled(t("rule_priority"), select("priority", PRIORITIES, actions.priority)),
      labelled(t("rule_stop"), el("input", { type: "checkbox", name: "stop_processing", checked: Boolean(actions.stop_processing) }))),
    el("div", { class: "row" },
      labelled(t("rule_accept_any_2xx"), el("input", { type: "checkbox", name: "accept_any_2xx", checked: Boolean(actions.accept_any_2xx) })),
      labelled(t("rule_require_success_true"), el("input", { type: "checkbox", name: "require_success_true", checked: Boolean(actions.require_success_true) }))),
  );
  return card;
}

/** Read the rules back from the editor, in display order. */
export function collectRules() {
  return $$("#routing-rules > .rule").map((card) => ({
    id: card.dataset.ruleId,
    name: $("[name=name]", card).value.trim(),
    conditions: $$(".condition", card).map((row) => ({
      field: $("[name=field]", row).value,
      operator: $("[name=operator]", row).value,
      value: $("[name=value]", row).value,
      case_sensitive: $("[name=case_sensitive]", row).checked,
    })),
    actions: {
      ...JSON.parse(card.dataset.actions || "{}"),
      webhook_url: $("[name=webhook_url]", card).value.trim(),
      priority: $("[name=priority]", card).value,
      stop_processing: $("[name=stop_processing]", card).checked,
      accept_any_2xx: $("[name=accept_any_2xx]", card).checked,
      require_success_true: $("[name=require_success_true]", card).checked,
    },
  }));
}

function updateEmpty() {
  $("#routing-empty").hidden = $$("#routing-rules > .rule").length > 0;
}

function render(rules) {
  $("#routing-rules").replaceChildren(...rules.map(ruleCard));
  updateEmpty();
}

async function load() {
  const data = await api("/api/routing_rules");
  const config = data.config ?? data;
  render(Array.isArray(config.rules) ? config.rules : []);
}

function setLocked(locked) {
  $("#routing-fields").disabled = locked;
  const button = $("#routing-lock");
  button.setAttribute("aria-pressed", String(locked));
  button.textContent = locked ? t("routing_unlock") : t("routing_lock");
  const state = $("#routing-state");
  state.textContent = locked ? t("routing_locked") : t("routing_unlocked");
  state.className = `pill ${locked ? "" : "pill--warn"}`;
}

export function initRouting() {
  setLocked(true);
  $("#routing-lock").addEventListener("click", () => setLocked(!$("#routing-fields").disabled));
  $("#routing-add").addEventListener("click", () => {
    const card = ruleCard({});
    $("#routing-rules").append(card);
    updateEmpty();
    $("[name=name]", card).focus();
  });
  $("#routing-reload").addEventListener("click", () => load().catch(() => {}));
  $("#routing-form").addEventListener("submit", (event) => {
    event.preventDefault();
    busy($("#routing-save"), async () => {
      const data = await api("/api/routing_rules", { method: "POST", json: { rules: collectRules() } });
      toast(t("saved"), "success");
      const config = data.config ?? {};
      if (Array.isArray(config.rules)) render(config.rules);
      setLocked(true);
    }).catch(() => {});
  });
  return load().catch(() => {});
}
