// Dashboard entry point: accessible tabs and the hash router, then each area loads its own data.
import { $$, setErrorExplainer } from "./core.js";
import { initCardTables } from "./cards.js";
import { initChecks, refreshRuleChecks } from "./checks.js";
import { hideEmail, initEmailDetail, showEmail } from "./emaildetail.js";
import { initHistory, loadHistory } from "./history.js";
import { initLogs } from "./logs.js";
import { initMagic } from "./magic.js";
import { explainMessage } from "./messages.js";
import { initOperations } from "./operations.js";
import { initRouting } from "./routing.js";
import { initSchedule } from "./schedule.js";
import { initTools } from "./tools.js";
import { initVerdict } from "./verdict.js";
import { initWebhooks } from "./webhooks.js";

// What to do when a tab is shown (by a click, the keyboard or the address's hash).
const ON_SHOW = {
  overview: () => refreshRuleChecks(),
  history: () => loadHistory(),
};

/**
 * WAI-ARIA tabs: click or arrow keys/Home/End. The hash selects a tab (#webhooks), and
 * #history/<email id> opens that email's detail, so a detail can be linked to and the
 * browser's Back button returns to the list.
 */
function initTabs() {
  const tabs = $$("[role=tab]");
  const select = (tab, { focus = false, hash = `#${tab.dataset.tab}` } = {}) => {
    for (const other of tabs) {
      const selected = other === tab;
      other.setAttribute("aria-selected", String(selected));
      other.tabIndex = selected ? 0 : -1;
      document.getElementById(other.getAttribute("aria-controls")).hidden = !selected;
    }
    if (focus) tab.focus();
    if (location.hash !== hash) history.replaceState(null, "", hash);
  };
  const show = (tab, options) => {
    const already = tab.getAttribute("aria-selected") === "true";
    select(tab, options);
    if (tab.dataset.tab === "history") hideEmail();
    if (!already || tab.dataset.tab === "history") ON_SHOW[tab.dataset.tab]?.();
  };
  tabs.forEach((tab, index) => {
    tab.addEventListener("click", () => show(tab));
    tab.addEventListener("keydown", (event) => {
      const moves = { ArrowRight: index + 1, ArrowLeft: index - 1, Home: 0, End: tabs.length - 1 };
      if (!(event.key in moves)) return;
      event.preventDefault();
      show(tabs[(moves[event.key] + tabs.length) % tabs.length], { focus: true });
    });
  });
  const route = () => {
    const [name, ...rest] = location.hash.slice(1).split("/");
    const tab = tabs.find((candidate) => candidate.dataset.tab === name);
    if (!tab) return;
    if (name === "history" && rest.length) {
      select(tab, { hash: location.hash });
      showEmail(decodeURIComponent(rest.join("/")));
    } else {
      show(tab);
    }
  };
  window.addEventListener("hashchange", route);
  route();
}

/** Switching language keeps the view (#history/<id> stays open). */
function keepViewOnLanguageSwitch() {
  for (const link of $$(".lang a")) {
    link.addEventListener("click", () => { link.hash = location.hash; });
  }
}

async function start() {
  setErrorExplainer(explainMessage);
  initCardTables();
  initTabs();
  initTools();
  initEmailDetail();
  keepViewOnLanguageSwitch();
  await Promise.all([
    initVerdict(), initChecks(), initHistory(), initLogs(), initWebhooks(), initRouting(), initSchedule(),
    initOperations(), initMagic(),
  ]);
  document.body.dataset.ready = "true";
}

start();
