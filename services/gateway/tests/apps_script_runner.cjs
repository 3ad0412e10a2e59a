// Runs deploy/gmail/apps-script.js under node with stand-ins for the Apps Script
// services it calls (PropertiesService, GmailApp, UrlFetchApp), and prints what
// it did as JSON: the requests it built, the threads it unlabelled, its log lines.
// Input (stdin, JSON): {script, properties, threads: [[message...]], statuses: [int]}.
"use strict";
const fs = require("fs");
const vm = require("vm");

const input = JSON.parse(fs.readFileSync(0, "utf8"));
const out = { requests: [], unlabelled: [], logs: [] };
const statuses = input.statuses.slice();

function message(spec) {
  return {
    getSubject: () => spec.subject,
    getFrom: () => spec.from,
    getDate: () => new Date(spec.date),
    getBody: () => spec.body,
    getPlainBody: () => spec.plain,
    getHeader: (name) => (spec.headers || {})[name] || "",
    isUnread: () => spec.unread !== false,
  };
}

const label = { name: input.properties.LABEL_NAME || "A_TRANSFERER_WEBHOOK" };
const threads = input.threads.map((specs, index) => ({
  getMessages: () => specs.map(message),
  removeLabel: (which) => {
    if (which !== label) throw new Error("removeLabel called with another label");
    out.unlabelled.push(index);
  },
}));
label.getThreads = (start, max) => threads.slice(start, start + max);

const sandbox = {
  PropertiesService: {
    getScriptProperties: () => ({ getProperty: (key) => input.properties[key] ?? null }),
  },
  GmailApp: { getUserLabelByName: (name) => (name === label.name ? label : null) },
  UrlFetchApp: {
    fetch: (url, options) => {
      out.requests.push({ url, options });
      const code = statuses.length ? statuses.shift() : 200;
      const text = JSON.stringify({ success: code < 300, message: `stand-in ${code}` });
      return { getResponseCode: () => code, getContentText: () => text };
    },
  },
  console: {
    log: (...args) => out.logs.push(args.join(" ")),
    error: (...args) => out.logs.push(args.join(" ")),
  },
};
vm.createContext(sandbox);
vm.runInContext(fs.readFileSync(input.script, "utf8"), sandbox, { filename: input.script });
vm.runInContext("processWebhookTransfer();", sandbox);
process.stdout.write(JSON.stringify(out));
