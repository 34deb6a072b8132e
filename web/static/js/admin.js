// The admin page, /admin#t=<admin token>: sessions and attendance for a range of days (default:
// this ISO week), per-patient program hours against the IOP targets, downloads, the audit
// chain's check, and one session's staff actions.

import { $, el } from "./dom.js";
import {
  STATUS_WORDS, Staff, clock, dateTime, dayText, daysBetween, hours, isoWeek, kindText,
  problemText, roster, say, table,
} from "./staff.js";
import { ProgramAdmin } from "./admin-program.js";

const MAX_DAYS = 92;   // what GET /api/sessions allows in one listing
const ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

const BILLING_WORDS = {
  suggested: "Suggested", below_threshold: "Below threshold", not_billable: "Not billable",
  absent: "Absent", open: "Still open", needs_attestation: "Needs attestation",
};
const ACTION_WORDS = {
  create: "created the session", admit: "admitted", deny: "did not let in", mute: "muted",
  unmute: "unmuted", lock_mute: "locked the microphone of", unlock_mute: "released the microphone of",
  remove: "removed", lock: "locked the session", unlock: "unlocked the session",
  auto_readmit: "changed automatic readmission", end: "ended the session for all",
  mark_absent: "marked absent", mark_present: "marked present",
  attest: "confirmed present on a shared device", detach: "took off a shared device",
};

const staff = new Staff({ needAdmin: true, onReady: ready });
const program = new ProgramAdmin(staff);
/** Session id -> a label, for the staff-actions picker: listed sessions and attended ones. */
let known = new Map();
/** The days (and patient) on show: what the download buttons download. */
let shown = null;

function ready() {
  if (!$("from").value) {
    const [monday, sunday] = isoWeek(new Date());
    $("from").value = dayText(monday);
    $("to").value = dayText(sunday);
  }
  load();
}

/** The query string of the chosen days (and patient), or null after saying what is wrong. */
function range() {
  const first = $("from").value;
  const last = $("to").value;
  const patient = $("patient").value.trim();
  const kind = $("kind").value;
  const days = daysBetween(first, last);
  if (!(days >= 1 && days <= MAX_DAYS)) {
    say($("range-status"), "Choose a range of 1 to " + MAX_DAYS + " days, the first day before the last.", "problem");
    return null;
  }
  if (patient && !ID.test(patient)) {
    say($("range-status"), "A patient id is a pseudonym of letters, digits and . _ -", "problem");
    return null;
  }
  const query = `from=${first}&to=${last}` + (patient ? `&patient=${encodeURIComponent(patient)}` : "") +
    (kind ? `&kind=${kind}` : "");
  return { first, last, patient, kind, query };
}

async function load() {
  const chosen = range();
  if (!chosen) { return; }
  say($("range-status"), "Loading " + chosen.first + " to " + chosen.last + "…", "busy");
  known = new Map();
  shown = chosen;
  $("audit-entries").replaceChildren();
  say($("audit-status"), "");
  const done = await Promise.all([loadSessions(chosen), loadAttendance(chosen), loadChain(chosen),
    program.load(chosen, guarded)]);
  fillAuditPicker();
  if (done.every(Boolean)) {
    const kind = chosen.kind ? ", " + $("kind").selectedOptions[0].textContent.toLowerCase() + " sessions" : "";
    say($("range-status"), "Showing " + chosen.first + " to " + chosen.last + (chosen.patient ? " for " + chosen.patient : "") + kind + ".", "ok");
  } else if (staff.token) {
    say($("range-status"), "Some parts could not be loaded; see below.", "problem");
  }
}

/** Run ``work``; on failure put the reason in ``container`` and return false. */
async function guarded(container, what, work) {
  try {
    await work();
    return true;
  } catch (error) {
    if (error.signIn) { return false; }
    const text = problemText(error, what + " could not be loaded");
    if (container.classList.contains("card")) {
      container.classList.add("problem");
      container.replaceChildren(el("p", { text }));
    } else {
      container.replaceChildren(el("p", { class: "card problem", text }));
    }
    return false;
  }
}

// --- sessions --------------------------------------------------------------------------------

function loadSessions({ first, last, patient, kind }) {
  return guarded($("sessions"), "The sessions", async () => {
    let { sessions } = await staff.api(`/api/sessions?from=${first}&to=${last}`);
    if (patient) { sessions = sessions.filter((s) => s.roster.some((m) => m.attendee === patient)); }
    if (kind) { sessions = sessions.filter((s) => s.kind === kind); }
    sessions.sort((a, b) => a.starts_at.localeCompare(b.starts_at));
    for (const s of sessions) { known.set(s.session, s.session + " · " + kindText(s) + " · " + dateTime(s.starts_at)); }
    $("sessions").replaceChildren(table({
      name: "sessions",
      caption: "Sessions starting " + first + " to " + last,
      empty: "No sessions in these days.",
      rows: sessions,
      columns: [
        { label: "Session", head: true, cell: (s) => el("code", { text: s.session }) },
        { label: "Starts", cell: (s) => dateTime(s.starts_at) },
        { label: "Kind", wrap: true, cell: kindText },
        { label: "Status", cell: (s) => STATUS_WORDS[s.status] + (s.locked ? " (locked)" : "") },
        { label: "Minutes", num: true, cell: (s) => String(s.planned_minutes) },
        { label: "People", cell: (s) => roster(s.roster) },
        { label: "Audit", cell: (s) => auditButton(s.session) },
      ],
    }));
  });
}

function auditButton(session) {
  return el("button", {
    type: "button", class: "small", text: "Staff actions", "aria-label": "Staff actions in " + session,
    on: { click: () => showAudit(session) },
  });
}

// --- attendance --------------------------------------------------------------------------------

function loadAttendance({ query }) {
  return guarded($("attendance"), "The attendance", async () => {
    const report = await staff.api(`/api/attendance?${query}&format=json`);
    const bySession = new Map();
    for (const row of report.rows) {
      if (!bySession.has(row.session)) { bySession.set(row.session, []); }
      bySession.get(row.session).push(row);
      if (!known.has(row.session)) { known.set(row.session, row.session + " · " + kindText(row) + " · " + row.date_of_service); }
    }
    const parts = [...bySession.values()].map(sessionAttendance);
    $("attendance").replaceChildren(...(parts.length ? parts : [el("p", { class: "hint empty", text: "No attendance recorded in these days." })]));
    $("days").replaceChildren(totals(report.days, "Program days", "Day", "No patient time in these days."));
    $("weeks").replaceChildren(totals(report.weeks, "Program weeks (ISO)", "Week", "No patient time in these weeks."));
  });
}

function sessionAttendance(rows) {
  const s = rows[0];
  return el("div", { class: "session-attendance", dataset: { session: s.session } },
    table({
      name: "attendance",
      caption: "Session " + s.session + ": " + kindText(s) + ", date of service " + s.date_of_service,
      rows,
      columns: [
        { label: "Attendee", head: true, cell: (r) => r.attendee },
        { label: "Role", cell: (r) => r.role },
        { label: "Present (min)", num: true, cell: (r) => String(r.present_minutes) },
        { label: "Code", cell: (r) => r.suggested_code ? [r.suggested_code, r.modifier].filter(Boolean).join("-") : null },
        { label: "Billing", cell: (r) => el("span", { class: "badge billing-" + r.status, text: BILLING_WORDS[r.status] || r.status }) },
        { label: "Why", cell: (r) => el("span", { class: "explanation", text: r.explanation }) },
        { label: "Intervals", cell: (r) => intervals(r.intervals) },
        // Shown with "Show every column": the table fits a laptop screen without them.
        { label: "First join", extra: true, cell: (r) => clock(r.first_join) },
        { label: "Last leave", extra: true, cell: (r) => clock(r.last_leave) },
        { label: "Video (min)", extra: true, num: true, cell: (r) => String(r.video_minutes) },
        { label: "Audio only (min)", extra: true, num: true, cell: (r) => String(r.audio_minutes) },
        { label: "Drops", extra: true, num: true, cell: (r) => String(r.disconnects) },
        { label: "POS", extra: true, cell: (r) => r.pos },
      ],
    }),
    auditButton(s.session));
}

function intervals(spans) {
  if (!spans.length) { return null; }
  return el("ul", { class: "plain intervals" }, spans.map(([start, end]) => el("li", { text: clock(start) + " – " + clock(end) })));
}

function totals(periods, caption, periodLabel, empty) {
  return table({
    name: periodLabel.toLowerCase() + "s",
    caption: caption + " against the IOP target",
    empty,
    rows: periods,
    columns: [
      { label: "Patient", head: true, cell: (t) => t.patient },
      { label: periodLabel, cell: (t) => t.period },
      { label: "Present", num: true, cell: (t) => hours(t.present_minutes) },
      { label: "Target", num: true, cell: (t) => hours(t.target_minutes) },
      { label: "Awaiting attestation", num: true, cell: (t) => t.unattested_minutes ? hours(t.unattested_minutes) : "—" },
      { label: "Sessions", num: true, cell: (t) => String(t.sessions) },
      { label: "Target met?", cell: (t) => el("span", { class: "badge " + (t.met ? "met" : "not-met"), text: t.met ? "Met" : "Not met" }) },
    ],
  });
}

// --- downloads ---------------------------------------------------------------------------------

async function download(button) {
  const chosen = shown || range();
  if (!chosen) { return; }
  button.disabled = true;
  say($("download-status"), "Preparing the download…", "busy");
  try {
    const name = await staff.download(`/api/attendance?${chosen.query}&format=${button.dataset.format}`);
    say($("download-status"), "Downloaded " + name + ".", "ok");
  } catch (error) {
    if (!error.signIn) { say($("download-status"), problemText(error, "The download did not work"), "problem"); }
  } finally {
    button.disabled = false;
  }
}

// --- the audit trail ---------------------------------------------------------------------------

function loadChain({ first, last }) {
  const box = $("chain");
  box.classList.remove("intact", "problem");
  box.replaceChildren(el("p", { text: "Checking the audit trail…" }));
  return guarded(box, "The audit check", async () => {
    const result = await staff.api(`/api/audit/verify?from=${first}&to=${last}`);
    box.classList.toggle("intact", result.ok);
    box.classList.toggle("problem", !result.ok);
    const scope = "the records of the sessions starting in these days and the admin audit log.";
    if (result.ok) {
      const n = result.chains;
      box.replaceChildren(
        el("p", { class: "verdict", text: (n === 1 ? "The 1 chain is intact" : "All " + n + " chains intact") + "." }),
        el("p", { class: "hint", text: "Checked " + scope }));
      return;
    }
    const broken = result.first_broken;
    const whose = broken.chain === "admin" ? "The admin audit log" : "The record of session " + broken.chain;
    box.replaceChildren(
      el("p", { class: "verdict", text: whose + " is broken at entry " + broken.seq + ": " + broken.reason + "." }),
      el("p", { text: "Entries from there on cannot be trusted: the record was changed or damaged after it was written." +
        (broken.detail ? " (" + broken.detail + ")" : "") }),
      el("p", { class: "hint", text: result.chains + " chains checked: " + scope }));
  });
}

function fillAuditPicker() {
  const select = $("audit-session");
  const keep = select.value;
  const options = [...known.entries()].sort((a, b) => a[1].localeCompare(b[1]));
  select.replaceChildren(...options.map(([value, label]) => el("option", { value, text: label })));
  if (known.has(keep)) { select.value = keep; }
  select.closest("form").hidden = !options.length;
  if (!options.length) { say($("audit-status"), "No sessions in these days."); }
}

async function showAudit(session) {
  if (!session) { return; }
  if ([...$("audit-session").options].some((o) => o.value === session)) { $("audit-session").value = session; }
  $("audit").scrollIntoView({ block: "start" });
  $("audit").focus({ preventScroll: true });
  say($("audit-status"), "Loading the staff actions of " + session + "…", "busy");
  try {
    const { entries, chain } = await staff.api(`/api/audit?session=${encodeURIComponent(session)}`);
    $("audit-entries").replaceChildren(table({
      name: "audit",
      caption: "Staff actions in " + session,
      empty: "No staff actions recorded.",
      rows: entries,
      columns: [
        { label: "When", head: true, cell: (e) => dateTime(e.at, { seconds: true }) },
        { label: "Who", cell: (e) => e.actor },
        { label: "Did", cell: (e) => ACTION_WORDS[e.action] || e.action.replace(/_/g, " ") },
        { label: "To whom", cell: (e) => e.target },
        { label: "Device", cell: (e) => e.endpoint ? el("code", { text: e.endpoint }) : null },
        { label: "Entry", num: true, cell: (e) => String(e.seq) },
      ],
    }));
    const intact = chain.ok ? "This session's record is intact (" + chain.count + " entries)."
      : "This session's record is broken at entry " + chain.first_broken.seq + ": " + chain.first_broken.reason + ".";
    say($("audit-status"), entries.length + " staff actions in " + session + ". " + intact, chain.ok ? "ok" : "problem");
  } catch (error) {
    if (!error.signIn) { say($("audit-status"), problemText(error, "The staff actions could not be loaded"), "problem"); }
  }
}

$("range").addEventListener("submit", (event) => { event.preventDefault(); load(); });
$("all-columns").addEventListener("change", (event) => document.body.classList.toggle("all-columns", event.target.checked));
$("audit-form").addEventListener("submit", (event) => { event.preventDefault(); showAudit($("audit-session").value); });
for (const button of document.querySelectorAll("button[data-format]")) {
  button.addEventListener("click", () => download(button));
}
staff.start();
