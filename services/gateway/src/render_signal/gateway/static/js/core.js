// Shared plumbing: strings, DOM building (no innerHTML), toasts, the API client.

const body = document.body;
const STRINGS = JSON.parse(body.dataset.i18n || "{}");
export const LANG = body.dataset.lang || "fr";
export const SESSION_KIND = body.dataset.sessionKind || "password";
/** "admin" (password login) or "operator" (magic link); the server enforces it too. */
export const ROLE = body.dataset.role === "admin" ? "admin" : "operator";

/** Translate `key`, replacing `{name}` placeholders from `vars`. */
export function t(key, vars = {}) {
  const text = STRINGS[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (_, name) => String(vars[name] ?? ""));
}

/**
 * Build an element. `attrs` keys: `text` (textContent), `class`, `dataset`,
 * `on<event>` (listener), booleans set/omit the attribute, the rest setAttribute.
 * Children are nodes or strings (added as text nodes, never parsed as HTML).
 */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "text") node.textContent = String(value);
    else if (key === "class") node.className = value;
    else if (key === "dataset") Object.assign(node.dataset, value);
    else if (key.startsWith("on") && typeof value === "function") {
      node.addEventListener(key.slice(2), value);
    } else if (key in node && typeof value !== "string") node[key] = value;
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

export const $ = (selector, root = document) => root.querySelector(selector);
export const $$ = (selector, root = document) => [...root.querySelectorAll(selector)];

/**
 * Show a message in the aria-live region; errors stay until dismissed.
 * `title`: the server's exact words, as a tooltip, when `message` is a translation.
 */
export function toast(message, kind = "info", { title } = {}) {
  const region = $("#toasts");
  const close = el("button", { type: "button", class: "toast__close", "aria-label": t("close"), text: "×" });
  const item = el("div", { class: `toast toast--${kind}`, role: kind === "error" ? "alert" : "status" },
    el("span", { class: "toast__text", text: message, title: title || undefined }), close);
  close.addEventListener("click", () => item.remove());
  region.append(item);
  if (kind !== "error") setTimeout(() => item.remove(), 6000);
  return item;
}

export class ApiError extends Error {
  constructor(status, message, data) {
    super(message);
    this.status = status;
    this.data = data;
  }
}

// Server messages are English sentences; the page translates the ones it knows (main.js
// installs messages.js here, so this module stays free of the vocabulary).
let explain = (message) => message;

/** Install the translator of server error messages: `(message, status) => text`. */
export function setErrorExplainer(explainer) {
  explain = explainer;
}

/** The server's error sentence from an answer body (FastAPI 422 details included). */
function serverMessage(data, fallback) {
  const raw = data?.message ?? data?.detail ?? fallback;
  if (Array.isArray(raw)) return raw.map((item) => item?.msg ?? String(item)).join("; ");
  return typeof raw === "string" ? raw : fallback;
}

function csrfToken() {
  return $('meta[name="csrf-token"]')?.content ?? "";
}

function goToLogin() {
  toast(t("error_session"), "error");
  const next = encodeURIComponent(location.pathname + location.search);
  location.assign(`/login?next=${next}`);
}

/**
 * Call the JSON API. Options: method, json (body object), form (FormData),
 * quiet (no error toast). Sends X-CSRF-Token; a 401 (or a redirect to the
 * login page) sends the browser to /login. Resolves with the parsed JSON;
 * rejects with ApiError after showing the error.
 */
export async function api(path, { method = "GET", json, form, quiet = false } = {}) {
  const headers = { Accept: "application/json", "X-CSRF-Token": csrfToken() };
  let payload;
  if (json !== undefined) {
    headers["Content-Type"] = "application/json";
    payload = JSON.stringify(json);
  } else if (form) payload = form;
  let response;
  try {
    response = await fetch(path, { method, headers, body: payload, credentials: "same-origin" });
  } catch (error) {
    if (!quiet) toast(t("error_network"), "error");
    throw new ApiError(0, t("error_network"), null);
  }
  if (response.status === 401 || (response.redirected && new URL(response.url).pathname === "/login")) {
    goToLogin();
    throw new ApiError(401, t("error_session"), null);
  }
  let data = null;
  if ((response.headers.get("content-type") || "").includes("json")) {
    data = await response.json().catch(() => null);
  }
  if (!response.ok || (data && data.success === false)) {
    const raw = serverMessage(data, response.statusText);
    const message = `${t("error_generic")} ${response.status}: ${explain(raw, response.status)}`;
    if (!quiet) toast(message, "error", { title: raw });
    throw new ApiError(response.status, message, data);
  }
  return data ?? {};
}

/** Format an ISO string or epoch seconds for display in the page language. */
export function formatTime(value) {
  const date = toDate(value);
  if (!date) return value ? String(value) : "—";
  return date.toLocaleString(LANG === "fr" ? "fr-FR" : "en-GB", {
    dateStyle: "short", timeStyle: "medium",
  });
}

export function toDate(value) {
  if (value === null || value === undefined || value === "") return null;
  const date = typeof value === "number" ? new Date(value * 1000) : new Date(value);
  return Number.isNaN(date.getTime()) ? null : date;
}

/** "À l'instant" / "Il y a N min" / "Il y a N h" / a date, like the original banner. */
export function relativeTime(value) {
  const date = toDate(value);
  if (!date) return t("never");
  const minutes = Math.floor((Date.now() - date.getTime()) / 60000);
  if (minutes < 1) return t("just_now");
  if (minutes < 60) return t("minutes_ago", { n: minutes });
  if (minutes < 24 * 60) return t("hours_ago", { n: Math.floor(minutes / 60) });
  return formatTime(value);
}

/** relativeTime() inside a sentence: "il y a 3 min", "à l'instant". */
export function ago(value) {
  const text = relativeTime(value);
  return text.charAt(0).toLowerCase() + text.slice(1);
}

/** Seconds as a short age ("4 s", "3 min", "2 h"). */
export function formatAge(seconds) {
  const s = Number(seconds);
  if (!Number.isFinite(s)) return "—";
  if (s < 90) return `${Math.round(s)} s`;
  if (s < 5400) return `${Math.round(s / 60)} min`;
  return `${Math.round(s / 3600)} h`;
}

/** Show "Sauvegarde requise" on edit and "Dernière sauvegarde HH:MM" after a save. */
export function trackSaves(form) {
  const pill = $("[data-save-pill]", form);
  const mark = (text, cls) => { if (pill) { pill.textContent = text; pill.className = `pill save-pill ${cls}`; } };
  form.addEventListener("input", () => mark(t("save_required"), "pill--warn"));
  return {
    saved() {
      const now = new Date().toLocaleTimeString(LANG === "fr" ? "fr-FR" : "en-GB", { timeStyle: "short" });
      mark(`${t("last_saved")} ${now}`, "pill--ok");
    },
    clear() { mark("", ""); },
  };
}

/** A modal confirmation built on <dialog>; resolves true when confirmed. */
export function confirmDialog(message) {
  const dialog = $("#confirm-dialog");
  $("#confirm-text", dialog).textContent = message;
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "confirm"), { once: true });
    dialog.returnValue = "";
    dialog.showModal();
    $("#confirm-cancel", dialog).focus();
  });
}

/** Run an async action with the button disabled, so double clicks don't double-post. */
export async function busy(button, action) {
  button.disabled = true;
  button.setAttribute("aria-busy", "true");
  try {
    return await action();
  } finally {
    button.disabled = false;
    button.removeAttribute("aria-busy");
  }
}
