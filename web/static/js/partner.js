// "Add my partner on this device": the second partner of a shared home device opens or pastes
// their own link here, so the server holds verified evidence for each person (protocol: attach).
// Names typed here stay on this device; only the link's pseudonymous id travels.

import { $, el } from "./dom.js";
import { problemLines, tokenFromText, verifyLink } from "./link.js";

const STATUS_WORDS = { waiting: "waiting to be let in", admitted: "in the session", absent: "stepped away" };

export class PartnerPanel {
  constructor(visit) {
    this.visit = visit;
    this.box = $("partner");
    $("partner-toggle").addEventListener("click", () => this.toggle());
    $("partner-form").addEventListener("submit", (e) => { e.preventDefault(); this.add(); });
    visit.addEventListener("room", () => this.render());
    visit.addEventListener("ended", () => { this.box.hidden = true; });
  }

  /** Only patients and guests of couples and group sessions can share a device. */
  get allowed() {
    const info = this.visit.info;
    return Boolean(info) && info.role !== "clinician" && info.kind !== "individual";
  }

  toggle(open) {
    const toggle = $("partner-toggle");
    const show = open ?? toggle.getAttribute("aria-expanded") !== "true";
    toggle.setAttribute("aria-expanded", String(show));
    $("partner-form").hidden = !show;
    if (show) { $("partner-link").focus(); }
  }

  render() {
    this.box.hidden = !this.allowed;
    if (!this.allowed) { return; }
    const mine = this.visit.mine();
    const people = mine ? mine.attendees : [];
    const self = this.visit.signaling && this.visit.signaling.welcome ? this.visit.signaling.welcome.attendees[0] : null;
    $("device-people").replaceChildren(...people.map((a) => {
      const name = this.visit.names.get(a.attendee) || (a.attendee === self ? "You" : "Your partner");
      let status = STATUS_WORDS[a.status] || a.status;
      if (a.attached && !a.attested && a.status === "admitted") { status += " (your clinician will confirm)"; }
      return el("li", { dataset: { attendee: a.attendee } }, el("strong", { text: name }), " — " + status);
    }));
    const full = people.length >= 2;
    $("partner-toggle").hidden = full;
    if (full) { $("partner-form").hidden = true; }
  }

  async add() {
    const say = (text) => { $("partner-message").textContent = text; };
    const token = tokenFromText($("partner-link").value);
    if (!token) {
      say("That does not look like a Homeroom link. Copy the whole link from your partner's message.");
      return;
    }
    const checked = await verifyLink(token);
    if (!checked.ok) { say(problemLines(checked.error, checked.body).join(" ")); return; }
    const info = checked.info;
    if (info.session !== this.visit.info.session) { say(problemLines("wrong_session").join(" ")); return; }
    if (!this.visit.signaling || !this.visit.signaling.connected) {
      say("Join the session first, then add your partner.");
      return;
    }
    $("partner-add").disabled = true;
    const reply = await this.visit.signaling.call("attach", { token });
    $("partner-add").disabled = false;
    if (reply.error) {
      const words = {
        device_full: "Two people are already on this device.",
        invalid_transition: "Your partner is already on this device.",
        not_authorized: "This link cannot be added to a shared device.",
      }[reply.error];
      say(words || problemLines(reply.error).join(" "));
      return;
    }
    const name = $("partner-name").value.trim().slice(0, 40);
    if (name) { this.visit.names.set(info.attendee, name); this.visit.saveNames(); }
    $("partner-link").value = "";
    $("partner-name").value = "";
    say((name || "Your partner") + " is now on this device.");
    this.render();
    this.visit.refreshSelf();
  }
}
