// Tables that become cards on a phone: each cell carries its column's name (data-label),
// which the narrow-screen CSS shows before the value. Rows are labelled as they are added,
// so the modules that fill the tables need not know about it.
import { $$ } from "./core.js";

function label(table) {
  const names = $$("thead th", table).map((th) => th.textContent.trim());
  for (const row of $$("tbody tr", table)) {
    [...row.cells].forEach((cell, index) => {
      if (names[index] && !cell.dataset.label) cell.dataset.label = names[index];
    });
  }
}

export function initCardTables() {
  for (const table of $$("table.table--cards")) {
    label(table);
    new MutationObserver(() => label(table)).observe(table.tBodies[0] ?? table, { childList: true });
  }
}
