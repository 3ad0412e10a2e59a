// Tools tab: deploy (confirm, then health polling) and config export/import.
import { $, api, busy, confirmDialog, t, toast } from "./core.js";

const HEALTH_CHECKS = 12;
const HEALTH_INTERVAL_MS = 1500;

const pause = (ms) => new Promise((resolve) => { setTimeout(resolve, ms); });

async function healthy() {
  try {
    const response = await fetch("/health", { cache: "no-store" });
    return response.ok;
  } catch (error) {
    return false; // the service is restarting
  }
}

/** Poll /health like the original (12 × 1.5 s), showing progress. */
async function followDeploy() {
  const progress = $("#deploy-progress");
  const status = $("#deploy-status");
  $("#deploy-progress-wrap").hidden = false;
  status.textContent = t("deploy_started");
  for (let check = 1; check <= HEALTH_CHECKS; check += 1) {
    await pause(HEALTH_INTERVAL_MS);
    progress.value = check;
    if (await healthy()) {
      progress.value = HEALTH_CHECKS;
      status.textContent = t("deploy_healthy");
      toast(t("deploy_healthy"), "success");
      return;
    }
  }
  status.textContent = t("deploy_timeout");
  toast(t("deploy_timeout"), "error");
}

function initDeploy() {
  const button = $("#deploy-button");
  button.addEventListener("click", async () => {
    if (!(await confirmDialog(t("deploy_confirm")))) return;
    await busy(button, async () => {
      const data = await api("/api/deploy_application", { method: "POST" });
      if (data.message) toast(data.message, "info");
      await followDeploy();
    }).catch(() => {});
  });
}

function chosenFile(input) {
  const file = input.files?.[0];
  if (!file) input.reportValidity();
  return file;
}

function initConfigIO() {
  const importForm = $("#config-import-form");
  importForm.addEventListener("submit", (event) => {
    event.preventDefault();
    const file = chosenFile($("#config-import-file"));
    if (!file) return;
    busy(importForm.querySelector("[type=submit]"), async () => {
      if (!(await confirmDialog(t("confirm_import")))) return;
      let document;
      try {
        document = JSON.parse(await file.text());
      } catch (error) {
        toast(t("error_invalid_json"), "error");
        return;
      }
      const data = await api("/api/config/import", { method: "POST", json: document });
      toast(data.message || t("imported"), "success");
      importForm.reset();
    }).catch(() => {});
  });
  const legacyForm = $("#config-legacy-form");
  legacyForm.addEventListener("submit", (event) => {
    event.preventDefault();
    const input = $("#config-legacy-file");
    if (!chosenFile(input)) return;
    // The server recognises each legacy file by its name (webhook_config.json, ...).
    const form = new FormData();
    for (const file of input.files) form.append("files", file, file.name);
    busy(legacyForm.querySelector("[type=submit]"), async () => {
      if (!(await confirmDialog(t("confirm_import_legacy")))) return;
      const data = await api("/api/config/import_legacy", { method: "POST", form });
      toast(data.message || t("imported"), "success");
      legacyForm.reset();
    }).catch(() => {});
  });
}

export function initTools() {
  initDeploy();
  initConfigIO();
}
