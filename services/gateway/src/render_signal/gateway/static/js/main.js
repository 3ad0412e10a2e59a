// Dashboard entry point: accessible tabs, then each area loads its own data.
import { $$ } from "./core.js";
import { initLogs } from "./logs.js";
import { initMagic } from "./magic.js";
import { initOperations } from "./operations.js";
import { initRouting } from "./routing.js";
import { initSchedule } from "./schedule.js";
import { initStatus } from "./status.js";
import { initTools } from "./tools.js";
import { initWebhooks } from "./webhooks.js";

/** WAI-ARIA tabs: click or arrow keys/Home/End; the hash (#webhooks) selects a tab. */
function initTabs() {
  const tabs = $$("[role=tab]");
  const select = (tab, focus = false) => {
    for (const other of tabs) {
      const selected = other === tab;
      other.setAttribute("aria-selected", String(selected));
      other.tabIndex = selected ? 0 : -1;
      document.getElementById(other.getAttribute("aria-controls")).hidden = !selected;
    }
    if (focus) tab.focus();
    history.replaceState(null, "", `#${tab.dataset.tab}`);
  };
  tabs.forEach((tab, index) => {
    tab.addEventListener("click", () => select(tab));
    tab.addEventListener("keydown", (event) => {
      const moves = { ArrowRight: index + 1, ArrowLeft: index - 1, Home: 0, End: tabs.length - 1 };
      if (!(event.key in moves)) return;
      event.preventDefault();
      select(tabs[(moves[event.key] + tabs.length) % tabs.length], true);
    });
  });
  const fromHash = () => {
    const tab = tabs.find((candidate) => `#${candidate.dataset.tab}` === location.hash);
    if (tab) select(tab);
  };
  window.addEventListener("hashchange", fromHash);
  fromHash();
}

async function start() {
  initTabs();
  initTools();
  await Promise.all([
    initStatus(), initLogs(), initWebhooks(), initRouting(), initSchedule(), initOperations(), initMagic(),
  ]);
  document.body.dataset.ready = "true";
}

start();
