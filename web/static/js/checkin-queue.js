// The check-in queue on the console: the on-demand requests this clinician's care teams have
// waiting, with their wait, refreshed every QUEUE_POLL ms. "Pick up" opens the session the
// server creates for the first clinician to ask; the others see the request taken.

import { $, el } from "./dom.js";
import { problemText, say } from "./staff.js";

const QUEUE_POLL = 1500;
/** The host page joins at once when it finds its token here (visit.js). */
const AUTOJOIN_KEY = "homeroom.autojoin";
const KIND_WORDS = { individual: "Individual", couples: "Couples" };
const REASON_WORDS = {
  check_in: "Wants to check in", hard_moment: "Having a hard moment", cravings: "Cravings or urges",
  medication: "Medication question", schedule: "Schedule question",
};

export class CheckinQueue {
  constructor(staff) {
    this.staff = staff;
    this.timer = null;
    this.picking = null;
    this.requests = [];
    this.recent = [];
    // The waits tick every second between polls, without rebuilding the rows.
    this.ticker = setInterval(() => this.tick(), 1000);
  }

  start() {
    $("queue-section").hidden = false;
    this.poll();
  }

  async poll() {
    clearTimeout(this.timer);
    try {
      const queue = await this.staff.api("/api/checkins");
      this.loadedAt = Date.now();
      this.requests = queue.requests;
      this.recent = queue.recent;
      this.onDuty = queue.on_duty;
      this.render();
    } catch (error) {
      if (error.signIn) { return; }
      say($("queue-status"), problemText(error, "The check-in queue could not be loaded"), "problem");
    }
    this.timer = setTimeout(() => this.poll(), QUEUE_POLL);
  }

  waited(request) {
    return request.waited_seconds + (Date.now() - this.loadedAt) / 1000;
  }

  tick() {
    for (const span of document.querySelectorAll("#queue .q-wait")) {
      const request = this.requests.find((r) => r.id === span.dataset.checkin);
      if (request) { span.textContent = "waiting " + clockText(this.waited(request)); }
    }
  }

  render() {
    if (this.loadedAt === undefined) { return; }
    // Rows are rebuilt: keep the keyboard focus on the same request's button.
    const focused = document.activeElement && document.activeElement.dataset.checkin;
    const rows = this.requests.map((r) => el("li", { class: "queue-row", dataset: { checkin: r.id, state: "waiting" } },
      el("span", { class: "q-who", text: r.patient + (r.partner ? " and " + r.partner : "") }),
      el("span", { class: "q-what", text: KIND_WORDS[r.kind] + (r.reason ? " · " + REASON_WORDS[r.reason] : "") }),
      el("span", { class: "q-wait", dataset: { checkin: r.id }, text: "waiting " + clockText(this.waited(r)) }),
      el("button", {
        type: "button", class: "primary", text: "Pick up", disabled: this.picking !== null, dataset: { checkin: r.id },
        "aria-label": "Pick up the check-in of " + r.patient, on: { click: () => this.pick(r) },
      })));
    const me = this.staff.claims && this.staff.claims.subject;
    const gone = this.recent.map((r) => el("li", { class: "queue-row settled", dataset: { checkin: r.id, state: r.status } },
      el("span", { class: "q-who", text: r.patient }),
      el("span", { class: "q-what", text: r.status === "cancelled" ? "Cancelled by the patient"
        : r.taken_by === me ? "Picked up by you" : "Taken by " + r.taken_by })));
    $("queue").replaceChildren(...rows, ...gone);
    const again = focused && document.querySelector(`#queue button[data-checkin="${CSS.escape(focused)}"]`);
    if (again) { again.focus(); }
    $("queue-empty").hidden = rows.length + gone.length > 0;
    const n = this.requests.length;
    say($("queue-status"), !this.onDuty ? "Outside check-in hours." : n === 0 ? "Nobody is waiting." : n === 1 ? "1 person is waiting." : n + " people are waiting.", "ok");
  }

  async pick(request) {
    this.picking = request.id;
    say($("queue-message"), "");
    this.render();
    try {
      const taken = await this.staff.api("/api/checkins/" + request.id + "/take", { method: "POST" });
      const hostToken = new URLSearchParams(taken.url.split("#")[1] || "").get("t");
      if (hostToken) { sessionStorage.setItem(AUTOJOIN_KEY, hostToken); }
      window.homeroomPickedAt = Date.now();
      location.assign(taken.url);
    } catch (error) {
      this.picking = null;
      if (error.signIn) { return; }
      const words = { checkin_taken: "Someone else picked this request up.", checkin_cancelled: "The patient cancelled this request." };
      say($("queue-message"), words[error.code] || problemText(error, "This request could not be picked up"), "problem");
      this.poll();
    }
  }
}

function clockText(seconds) {
  const s = Math.max(0, Math.floor(seconds));
  return Math.floor(s / 60) + ":" + String(s % 60).padStart(2, "0");
}
