/**
 * render-signal — Gmail push, Apps Script (version 2).
 *
 * Every minute (time-driven trigger), sends each unread message of the threads
 * carrying the label to render-signal's POST /api/ingress/gmail, then removes
 * the label from the threads whose every unread message was accepted.
 *
 * Changes from the script written for render_signal_server:
 *   - sends the Message-ID header (`message_id`), so render-signal recognises
 *     the same email arriving over IMAP too and delivers one webhook, not two;
 *   - any 2xx answer counts as accepted (the old script wanted exactly 200);
 *   - the URL, token and label come from Script properties (no code edit).
 * The entry point keeps its name, so an existing trigger keeps working after
 * pasting this file over the old one.
 *
 * Script properties (Project settings > Script properties):
 *   PROCESS_API_TOKEN  required: the gateway's PROCESS_API_TOKEN
 *   INGRESS_URL        https://<your gateway>/api/ingress/gmail (default below)
 *   LABEL_NAME         optional, default A_TRANSFERER_WEBHOOK
 */

var DEFAULT_INGRESS_URL = "https://render-signal-gateway.onrender.com/api/ingress/gmail";
var DEFAULT_LABEL_NAME = "A_TRANSFERER_WEBHOOK";
// Threads handled per run: a run must end well within Apps Script's 6-minute limit.
var THREADS_PER_RUN = 20;
var SCRIPT_VERSION = "2";

function processWebhookTransfer() {
  var props = PropertiesService.getScriptProperties();
  var token = props.getProperty("PROCESS_API_TOKEN") || "";
  var url = props.getProperty("INGRESS_URL") || DEFAULT_INGRESS_URL;
  var labelName = props.getProperty("LABEL_NAME") || DEFAULT_LABEL_NAME;
  if (!token) {
    console.error("render-signal: script property PROCESS_API_TOKEN is not set; nothing sent.");
    return;
  }
  var label = GmailApp.getUserLabelByName(labelName);
  if (!label) {
    console.error("render-signal: the Gmail label " + labelName + " does not exist.");
    return;
  }
  var threads = label.getThreads(0, THREADS_PER_RUN);
  if (threads.length === 0) {
    console.log("render-signal: no labelled thread.");
    return;
  }
  for (var t = 0; t < threads.length; t++) {
    var thread = threads[t];
    var messages = thread.getMessages();
    var allAccepted = true;
    for (var m = 0; m < messages.length; m++) {
      // Read messages were handled by an earlier run (or by a person): skip them.
      if (messages[m].isUnread() && !pushMessage_(url, token, messages[m])) {
        allAccepted = false;
      }
    }
    if (allAccepted) {
      thread.removeLabel(label);
    } else {
      console.log("render-signal: label kept on a thread; it is retried on the next run.");
    }
  }
}

/** The request for one message: the old script's fields plus the Message-ID. */
function buildRequest_(token, message) {
  var payload = {
    subject: message.getSubject(),
    sender: message.getFrom(),
    date: message.getDate().toISOString(),
    body: message.getBody(),
    snippet: message.getPlainBody().substring(0, 200),
    message_id: message.getHeader("Message-ID") || "",
  };
  return {
    method: "post",
    contentType: "application/json",
    headers: {
      Authorization: "Bearer " + token,
      "X-Source": "GoogleAppsScript",
      "X-Script-Version": SCRIPT_VERSION,
    },
    payload: JSON.stringify(payload),
    muteHttpExceptions: true,
  };
}

/** Sends one message; true when render-signal accepted it (any 2xx). */
function pushMessage_(url, token, message) {
  var subject = message.getSubject();
  try {
    var response = UrlFetchApp.fetch(url, buildRequest_(token, message));
    var code = response.getResponseCode();
    var text = response.getContentText();
    if (code >= 200 && code < 300) {
      console.log("render-signal: accepted \"" + subject + "\": " + describe_(text));
      return true;
    }
    // 409: Gmail ingress switched off in the dashboard; 503: Redis down. Both retry later.
    console.error("render-signal: HTTP " + code + " for \"" + subject + "\": " + text.substring(0, 300));
  } catch (e) {
    console.error("render-signal: connection error for \"" + subject + "\": " + e);
  }
  return false;
}

/** The reply's own summary line (`message`), else its email id, else the raw text. */
function describe_(text) {
  try {
    var reply = JSON.parse(text);
    return reply.message || ("email_id " + reply.email_id);
  } catch (e) {
    return text.substring(0, 200);
  }
}
