// The admin page's program part: the check-in report for the chosen days (wait p50/p95 per day,
// the requests nobody picked up), the enrolled patients with their standing links (withdraw),
// and a form that gives a patient a new standing link.

import { $, el } from "./dom.js";
import { dateTime, problemText, say, table } from "./staff.js";

const ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
const FUNCTIONS = ["individual_therapist", "couples_therapist", "counselor", "medical", "facilitator"];

function seconds(value) {
  if (value === null || value === undefined) { return null; }
  return value < 90 ? Math.round(value) + " s" : (value / 60).toFixed(1) + " min";
}

export class ProgramAdmin {
  constructor(staff) {
    this.staff = staff;
    $("link-form").addEventListener("submit", (event) => { event.preventDefault(); this.issue(); });
  }

  /** Load the report and the enrolled patients; ``guarded`` reports a failure in place. */
  async load(chosen, guarded) {
    const results = await Promise.all([
      guarded($("checkin-report"), "The check-in report", () => this.loadReport(chosen)),
      guarded($("enrolled"), "The program links", () => this.loadPatients()),
    ]);
    return results.every(Boolean);
  }

  async loadReport({ first, last }) {
    const report = await this.staff.api(`/api/checkins/report?from=${first}&to=${last}`);
    const days = report.days.filter((d) => d.requests > 0);
    $("checkin-report").replaceChildren(
      table({
        name: "checkin-days", caption: "Check-ins per day, " + first + " to " + last,
        empty: "No check-in requests in these days.", rows: days,
        columns: [
          { label: "Day", head: true, cell: (d) => d.day },
          { label: "Requests", num: true, cell: (d) => d.requests },
          { label: "Picked up", num: true, cell: (d) => d.taken },
          { label: "Cancelled", num: true, cell: (d) => d.cancelled },
          { label: "Unanswered", num: true, cell: (d) => d.unanswered },
          { label: "Wait p50", num: true, cell: (d) => seconds(d.wait_p50_seconds) },
          { label: "Wait p95", num: true, cell: (d) => seconds(d.wait_p95_seconds) },
        ],
      }),
      table({
        name: "checkin-unanswered", caption: "Requests nobody picked up",
        empty: "Every request was picked up.", rows: report.unanswered,
        columns: [
          { label: "Patient", head: true, cell: (u) => u.patient },
          { label: "Asked", cell: (u) => dateTime(u.requested_at) },
          { label: "Outcome", cell: (u) => (u.status === "cancelled" ? "Cancelled by the patient" : "Still waiting") },
          { label: "Waited", num: true, cell: (u) => seconds(u.waited_seconds) },
        ],
      }));
  }

  async loadPatients() {
    const { patients } = await this.staff.api("/api/patients");
    $("enrolled").replaceChildren(table({
      name: "enrolled", caption: "Enrolled patients", empty: "No patient has a program link yet.", rows: patients,
      columns: [
        { label: "Patient", head: true, cell: (p) => p.patient + (p.partner ? " (partner " + p.partner + ")" : "") },
        { label: "Care team", cell: (p) => p.care_team.map((m) => m.clinician + " · " + m.function.replace(/_/g, " ")).join(", ") },
        { label: "Link", cell: (p) => (p.link_active ? "Active since " + dateTime(p.link_issued_at) : p.revoked_at ? "Withdrawn " + dateTime(p.revoked_at) : "None") },
        { label: "Action", cell: (p) => (p.link_active ? el("button", {
          type: "button", class: "danger", text: "Withdraw link", "aria-label": "Withdraw the program link of " + p.patient,
          on: { click: () => this.revoke(p.patient) },
        }) : null) },
      ],
    }));
  }

  async revoke(patient) {
    try {
      const done = await this.staff.api("/api/patients/" + encodeURIComponent(patient) + "/link", { method: "DELETE" });
      say($("enrolled-status"), "The program link of " + patient + " was withdrawn" +
        (done.signed_out_sessions ? " and they were signed out of " + done.signed_out_sessions + " session(s)." : "."), "ok");
      await this.loadPatients();
    } catch (error) {
      if (!error.signIn) { say($("enrolled-status"), problemText(error, "The link could not be withdrawn"), "problem"); }
    }
  }

  /** The care team typed one per line, or a sentence saying which line is wrong. */
  team() {
    const lines = $("link-team").value.split("\n").map((l) => l.trim()).filter(Boolean);
    if (!lines.length) { return "Name at least one clinician of the care team."; }
    const members = [];
    for (const line of lines) {
      const [clinician, fn, ...name] = line.split(":");
      if (!ID.test(clinician || "")) { return "“" + line + "”: start with the clinician's id (letters, digits, . _ -)."; }
      if (!FUNCTIONS.includes((fn || "").trim())) { return "“" + line + "”: after the id comes the function, one of " + FUNCTIONS.join(", ") + "."; }
      const member = { clinician, function: fn.trim() };
      if (name.join(":").trim()) { member.display_name = name.join(":").trim(); }
      members.push(member);
    }
    return members;
  }

  async issue() {
    const patient = $("link-patient").value.trim();
    const partner = $("link-partner").value.trim();
    const team = this.team();
    const problem = !ID.test(patient) ? "The patient id is a pseudonym of letters, digits and . _ -"
      : partner && !ID.test(partner) ? "The partner id is a pseudonym of letters, digits and . _ -"
      : typeof team === "string" ? team : null;
    $("link-error").hidden = !problem;
    $("link-error").textContent = problem || "";
    if (problem) { return; }
    try {
      const made = await this.staff.api("/api/patients/" + encodeURIComponent(patient) + "/link", {
        method: "POST", body: partner ? { care_team: team, partner } : { care_team: team },
      });
      $("link-url").value = made.url;
      $("link-made").hidden = false;
      await this.loadPatients();
    } catch (error) {
      if (error.signIn) { return; }
      $("link-error").hidden = false;
      $("link-error").textContent = problemText(error, "The link could not be made");
    }
  }
}
