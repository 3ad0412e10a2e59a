// Magic links: create (one-shot or permanent), copy, list permanent ones, revoke.
import { $, api, busy, confirmDialog, el, formatTime, ROLE, t, toast } from "./core.js";

async function copyLink() {
  const input = $("#magic-link");
  try {
    await navigator.clipboard.writeText(input.value);
    toast(t("copied"), "success");
  } catch (error) {
    // Clipboard API refused (permissions, insecure context): leave it selected for Ctrl+C.
    input.focus();
    input.select();
    toast(t("copy_failed"), "info");
  }
}

function linkRow(link) {
  const revoke = el("button", { type: "button", class: "button button--small button--warn", text: t("revoke"),
    "aria-label": `${t("revoke")} ${link.id}`, dataset: { revoke: link.id } });
  revoke.addEventListener("click", async () => {
    if (!(await confirmDialog(t("confirm_revoke")))) return;
    await busy(revoke, async () => {
      await api(`/api/auth/magic-links/${encodeURIComponent(link.id)}`, { method: "DELETE" });
      toast(t("revoked"), "success");
      await refreshMagicLinks();
    }).catch(() => {});
  });
  return el("tr", { dataset: { linkId: link.id } },
    el("td", {}, el("code", { text: link.id })),
    el("td", { text: formatTime(link.created_at) }),
    el("td", { text: link.last_used_at ? formatTime(link.last_used_at) : t("never") }),
    el("td", {}, revoke));
}

export async function refreshMagicLinks() {
  const data = await api("/api/auth/magic-links");
  const links = Array.isArray(data.links) ? data.links : Array.isArray(data.items) ? data.items : [];
  $("#magic-rows").replaceChildren(...links.map(linkRow));
  $("#magic-none").hidden = links.length > 0;
  $("#magic-revoke-all").disabled = links.length === 0;
}

export function initMagic() {
  if (ROLE !== "admin") return Promise.resolve(); // the card is not rendered usable; the API says 403
  const create = $("#magic-create");
  create.addEventListener("click", () => busy(create, async () => {
    const unlimited = $("#magic-unlimited").checked;
    const data = await api("/api/auth/magic-link", { method: "POST", json: { unlimited } });
    $("#magic-link").value = data.magic_link ?? "";
    $("#magic-result").dataset.linkId = data.id ?? "";
    $("#magic-expiry").textContent = data.expires_at
      ? `${t("magic_expires")} ${formatTime(data.expires_at)}` : t("magic_no_expiry");
    $("#magic-result").hidden = false;
    toast(t("magic_created"), "success");
    if (data.unlimited) await refreshMagicLinks();
  }).catch(() => {}));
  $("#magic-copy").addEventListener("click", copyLink);
  const revokeAll = $("#magic-revoke-all");
  revokeAll.addEventListener("click", async () => {
    if (!(await confirmDialog(t("confirm_revoke_all")))) return;
    try {
      const data = await busy(revokeAll, () => api("/api/auth/magic-links", { method: "DELETE" }));
      toast(data.message || t("revoked_all"), "success");
    } catch (error) {
      // already shown by api()
    }
    await refreshMagicLinks().catch(() => {});
  });
  return refreshMagicLinks().catch(() => {});
}
