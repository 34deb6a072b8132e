// The session list, /console#t=<staff token>: a clinician's own sessions (an admin's: all) for a
// range of days, and a form that schedules a new session and hands out its links.

import { $, el } from "./dom.js";
import {
  KIND_WORDS, STATUS_WORDS, Staff, addDays, dateTime, dayText, daysBetween, kindText,
  problemText, roster, say, table,
} from "./staff.js";
import { CheckinQueue } from "./checkin-queue.js";

// GET /api/sessions takes the program's days (its time zone), this page the reader's own: ask
// for a day more on each side, then keep the sessions starting on the reader's chosen days.
const MAX_DAYS = 90;   // + 2 days of margin: what GET /api/sessions allows in one listing
const ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

const CREATE_LEADS = {
  invalid_roster: "These people do not make a valid session of this kind",
  invalid_message: "Something in the form is not right",
  not_authorized: "You can only create sessions you are a clinician of: put your own id as the clinician",
};

const staff = new Staff({ onReady: ready });
const queue = new CheckinQueue(staff);

function ready(claims) {
  queue.start();
  if (!$("from").value) {
    const today = new Date();
    $("from").value = dayText(today);
    $("to").value = dayText(addDays(today, 7));
  }
  if (claims.role === "clinician" && !$("clinicians").value) { $("clinicians").value = claims.subject; }
  load();
}

// --- the list ------------------------------------------------------------------------------

async function load() {
  const first = $("from").value;
  const last = $("to").value;
  const days = daysBetween(first, last);
  if (!(days >= 1 && days <= MAX_DAYS)) {
    say($("list-status"), "Choose a range of 1 to " + MAX_DAYS + " days, the first day before the last.", "problem");
    return;
  }
  say($("list-status"), "Loading sessions…", "busy");
  try {
    const before = dayText(addDays(new Date(first + "T12:00"), -1));
    const after = dayText(addDays(new Date(last + "T12:00"), 1));
    const listed = await staff.api(`/api/sessions?from=${before}&to=${after}`);
    const sessions = listed.sessions.filter((s) => {
      const day = dayText(new Date(s.starts_at));
      return first <= day && day <= last;
    });
    sessions.sort((a, b) => a.starts_at.localeCompare(b.starts_at));
    $("sessions").replaceChildren(sessionTable(sessions));
    const n = sessions.length;
    say($("list-status"), (n === 1 ? "1 session" : n + " sessions") + " from " + first + " to " + last + ".", "ok");
  } catch (error) {
    if (!error.signIn) { say($("list-status"), problemText(error, "The sessions could not be loaded"), "problem"); }
  }
}

function sessionTable(sessions) {
  return table({
    name: "sessions",
    caption: staff.claims.role === "admin" ? "All sessions" : "Your sessions",
    empty: "No sessions in these days.",
    rows: sessions,
    heading: "h2",
    columns: [
      { label: "Starts", head: true, cell: (s) => dateTime(s.starts_at) },
      { label: "Status", cell: (s) => STATUS_WORDS[s.status] + (s.locked ? " (locked)" : "") },
      { label: "People", cell: (s) => roster(s.roster) },
      { label: "Kind", wrap: true, cell: kindText },
      { label: "Minutes", num: true, cell: (s) => String(s.planned_minutes) },
      { label: "Session", cell: (s) => el("code", { text: s.session }) },
    ],
  });
}

// --- the new-session form -----------------------------------------------------------------

function showKindFields() {
  const kind = $("kind").value;
  const purpose = $("purpose").value;
  for (const node of document.querySelectorAll("[data-for-kind]")) { node.hidden = node.dataset.forKind !== kind; }
  for (const node of document.querySelectorAll("[data-for-purpose]")) {
    node.hidden = kind !== "group" || node.dataset.forPurpose !== purpose;
  }
}

function ids(id) {
  return $(id).value.split(/[\s,;]+/).filter(Boolean);
}

/** The POST /api/sessions body from the form, or a sentence saying what to fix. */
function request() {
  const kind = $("kind").value;
  const clinicians = ids("clinicians");
  const patients = ids("patients");
  const guests = kind === "group" && $("purpose").value === "family_education" ? ids("guests") : [];
  const identified = kind === "couples" ? $("identified").value.trim() : "";
  if (!clinicians.length) { return { problem: "Enter the clinician's id." }; }
  if (!patients.length) { return { problem: "Enter at least one patient id." }; }
  const bad = [...clinicians, ...patients, ...guests, ...(identified ? [identified] : [])].find((x) => !ID.test(x));
  if (bad !== undefined) {
    return { problem: "Ids are pseudonyms of letters, digits and . _ - (up to 64), starting with a letter or digit. Check: " + bad };
  }
  const body = {
    kind,
    roster: [
      ...clinicians.map((attendee) => ({ attendee, role: "clinician" })),
      ...patients.map((attendee) => ({ attendee, role: "patient" })),
      ...guests.map((attendee) => ({ attendee, role: "guest" })),
    ],
    planned_minutes: Number($("minutes").value),
  };
  if ($("starts").value) {
    const starts = new Date($("starts").value);   // a local time, sent as an instant
    if (Number.isNaN(starts.getTime())) { return { problem: "Enter the start as a date and time." }; }
    body.starts_at = starts.toISOString();
  }
  if (kind === "group") {
    body.purpose = $("purpose").value;
    if ($("capacity").value) { body.capacity = Number($("capacity").value); }
  }
  if (identified) { body.identified_patient = identified; }
  return { body };
}

async function create(event) {
  event.preventDefault();
  const box = $("create-error");
  box.hidden = true;
  const { body, problem } = request();
  if (problem) { return showError(problem); }
  $("create-button").disabled = true;
  try {
    const created = await staff.api("/api/sessions", { method: "POST", body });
    showCreated(created);
    load();
  } catch (error) {
    if (!error.signIn) { showError(problemText(error, CREATE_LEADS[error.code] || "The session was not created")); }
  } finally {
    $("create-button").disabled = false;
  }
}

function showError(text) {
  const box = $("create-error");
  box.replaceChildren(el("p", { text }));
  box.hidden = false;
  box.focus();
}

function showCreated(created) {
  $("created-text").textContent = KIND_WORDS[created.kind] + " session " + created.session +
    ", " + dateTime(created.starts_at) + " to " + dateTime(created.ends_at) + ".";
  $("links").replaceChildren(...created.links.map(linkItem));
  say($("copy-status"), "");
  $("created").hidden = false;
  $("created").focus();
}

function linkItem(link) {
  const inputId = "link-" + link.attendee;
  const own = staff.claims && link.attendee === staff.claims.subject && link.role === "clinician";
  const input = el("input", { id: inputId, type: "text", readonly: true, value: link.url, class: "link-url", spellcheck: "false" });
  return el("li", { dataset: { attendee: link.attendee, role: link.role } },
    el("label", { for: inputId },
      "Link for " + link.attendee + " ", el("span", { class: "hint", text: "(" + link.role + (link.function ? ", " + link.function.replace(/_/g, " ") : "") + ")" })),
    el("div", { class: "link-row" },
      input,
      el("button", { type: "button", text: "Copy", "aria-label": "Copy the link for " + link.attendee, on: { click: () => copy(input, link.attendee) } }),
      own ? el("a", { class: "button-link", href: link.url, target: "_blank", rel: "noopener", text: "Open host page" }) : null));
}

/** Copy to the clipboard; where that is not allowed, select the text for the reader to copy. */
async function copy(input, attendee) {
  try {
    await navigator.clipboard.writeText(input.value);
    say($("copy-status"), "The link for " + attendee + " is copied.", "ok");
  } catch (_) {
    input.focus();
    input.select();
    let copied = false;
    try { copied = document.execCommand("copy"); } catch (_) { copied = false; }
    say($("copy-status"), copied ? "The link for " + attendee + " is copied."
      : "The link for " + attendee + " is selected: press Ctrl+C (on a phone, tap and hold, then Copy).", "ok");
  }
}

$("range").addEventListener("submit", (event) => { event.preventDefault(); load(); });
$("create").addEventListener("submit", create);
$("kind").addEventListener("change", showKindFields);
$("purpose").addEventListener("change", showKindFields);
showKindFields();
staff.start();
