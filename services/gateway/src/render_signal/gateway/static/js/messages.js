// Server error messages in the page's language. The APIs answer English sentences
// (scripts and logs read them); the page recognises the known ones and translates them,
// and keeps the server's exact sentence in the toast's tooltip.
import { t } from "./core.js";
import { stateText } from "./vocabulary.js";

const FIELD_LABELS = {
  webhook_url: "webhook_url", webhook_time_start: "window_start", webhook_time_end: "window_end",
  absence_pause_enabled: "absence_title", absence_pause_days: "absence_days",
  active_days: "active_days", active_start_hour: "active_start_hour", active_end_hour: "active_end_hour",
  vacation_start: "vacation_start", vacation_end: "vacation_end", sender_of_interest_for_polling: "senders",
  webhook_delivery_mode: "delivery_mode", webhook_ssl_verify: "ssl_verify",
  webhook_sending_enabled: "sending_enabled", webhook_fallback_on_415: "fallback_415",
};

/** The label of a config field path ("rules[0].actions.webhook_url" -> "URL du webhook"). */
export function fieldLabel(path) {
  const name = String(path).split(/[.\]]/).filter(Boolean).pop() ?? path;
  const key = FIELD_LABELS[name];
  return key ? t(key) : name.replace(/_/g, " ");
}

const KNOWN = [
  [/^(\w+) is not running: start it to run this test$/, (m) => t("check_service_down", { service: m[1] })],
  [/^No (\w+) replica answered within/, (m) => t("check_no_answer", { service: m[1] })],
  [/^Nothing to retry: the email is (.+)$/, (m) => t("retry_nothing", { state: stateText(m[1].replace(/ /g, "_")) })],
  [/^Nothing could be retried/, () => t("retry_impossible")],
  [/^Unknown email/, () => t("email_unknown")],
  [/^Configuration changed concurrently/, () => t("error_conflict")],
  // "<field>: <detail>" (config validation): the field by its label, never its code.
  [/^([a-z][a-z0-9_]*(?:\[\d+\])?(?:\.[a-z0-9_]+)*(?:, [a-z][a-z0-9_]*)*): (.+)$/s,
    (m) => t("error_field", { field: m[1].split(", ").map(fieldLabel).join(", "), detail: m[2] })],
];

/** `message` from the server, translated when known; anything else unchanged. */
export function explainMessage(message, status = 0) {
  const text = String(message ?? "");
  for (const [pattern, render] of KNOWN) {
    const match = pattern.exec(text);
    if (match) return render(match);
  }
  if (status === 403 && !text) return t("error_forbidden");
  if (status === 404 && !text) return t("error_not_found");
  return text;
}
