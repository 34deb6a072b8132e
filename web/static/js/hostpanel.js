// The clinician's console beside the call: the waiting room (admit / deny), everyone in the
// session with their controls, session controls (mute all, lock, end for all), and the
// connection quality of each endpoint from WebRTC statistics.

import { $, el } from "./dom.js";

const STATS_EVERY_MS = 3000;
const STATUS_WORDS = { scheduled: "Not started", open: "Open: waiting room", live: "Live", ended: "Ended" };

/** A group on the peer-to-peer mesh (no forwarder on this server): every device sends its
 * video to every other, which only works for a few. */
const MESH_DEVICES = 4;

/** good / fair / poor from round-trip time, frame rate and packets lost since the last sample. */
function grade(q, lost) {
  if (q.state && q.state !== "connected") { return q.state === "failed" ? "no connection" : "connecting…"; }
  if ((q.rttMs ?? 0) > 400 || (q.fps !== null && q.fps < 8) || lost > 50) { return "poor"; }
  if ((q.rttMs ?? 0) > 200 || (q.fps !== null && q.fps < 15) || lost > 5) { return "fair"; }
  return "good";
}

export class HostPanel {
  constructor(visit) {
    this.visit = visit;
    this.quality = {};
    this.lostBefore = {};
    this.timer = 0;
    // Who was waiting, asking or gone at the last render; departures before the console opened
    // (null) are in the Left list, not news.
    this.known = { waiting: new Set(), asking: new Set(), departed: null };
    visit.addEventListener("room", () => this.render());
    visit.addEventListener("welcome", () => this._startStats());
    visit.addEventListener("ended", () => clearInterval(this.timer));
    $("mute-all").addEventListener("click", () => this.act("mute_all", {}, "Everyone else is muted."));
    $("admit-all").addEventListener("click", () => this.admitAll());
    $("lock").addEventListener("click", () => {
      const locked = !this.visit.room.locked;
      this.act("lock", { locked }, locked ? "The session is locked: nobody new can come in." : "The session is unlocked.");
    });
    $("end").addEventListener("click", async () => {
      if (await confirmDialog("End the session for everyone?",
        "Everyone is disconnected and the session closes. Links stop working.", "End for all")) {
        this.act("end");
      }
    });
    for (const id of ["waiting-list", "people-list"]) { $(id).addEventListener("click", (e) => this._click(e)); }
  }

  async act(event, data = {}, done = "") {
    const reply = await this.visit.signaling.call(event, data);
    if (reply.error) { this.say("That did not work: " + (reply.detail || reply.error)); }
    else if (done) { this.say(done); }
    return reply;
  }

  say(text) { $("console-message").textContent = text; }

  /** Admit every expected person who is waiting (the server admits only people on the roster). */
  async admitAll() {
    const waiting = this._waiting().map(([, a]) => a.attendee);
    let admitted = 0;
    for (const attendee of new Set(waiting)) {
      const reply = await this.visit.signaling.call("admit", { attendee });
      if (reply.error) { this.say("Could not admit " + attendee + ": " + (reply.detail || reply.error)); return; }
      admitted += 1;
    }
    this.say(admitted === 1 ? "1 person is in the session." : admitted + " people are in the session.");
  }

  _waiting() {
    const room = this.visit.room;
    const all = [...room.endpoints, ...(room.waiting || [])];
    return all.flatMap((e) => e.attendees.filter((a) => a.status === "waiting").map((a) => [e, a]));
  }

  async _click(event) {
    const button = event.target.closest("button[data-action]");
    if (!button) { return; }
    const { action, attendee } = button.dataset;
    const simple = {
      admit: ["admit", {}, attendee + " is in the session."],
      deny: ["deny", {}, attendee + " was not let in."],
      mute: ["mute", {}, attendee + " is muted."],
      unmute: ["unmute", {}, attendee + " can speak again."],
      "lock-mute": ["lock_mute", { locked: true }, attendee + " stays muted until you release the lock."],
      "unlock-mute": ["lock_mute", { locked: false }, "Mute lock released for " + attendee + "."],
      absent: ["mark", { present: false }, attendee + " is marked as stepped away."],
      present: ["mark", { present: true }, attendee + " is marked present."],
    }[action];
    if (simple) {
      await this.act(simple[0], { attendee, ...simple[1] }, simple[2]);
    } else if (action === "remove" && await confirmDialog("Remove " + attendee + "?",
      "They leave the call at once and their link stops working for this session.", "Remove")) {
      await this.act("remove", { attendee }, attendee + " was removed.");
    }
  }

  // --- rendering ----------------------------------------------------------------------

  render() {
    const room = this.visit.room;
    if (!room) { return; }
    $("session-state").textContent = (STATUS_WORDS[room.status] || room.status) + (room.locked ? " · Locked" : "");
    this._meshNotice(room);
    const lock = $("lock");
    lock.textContent = room.locked ? "Unlock" : "Lock";
    lock.setAttribute("aria-pressed", String(room.locked));
    const all = [...room.endpoints, ...(room.waiting || [])];
    const waiting = this._waiting();
    // This device first, then everyone by id (p-2 before p-10): a clinician finds a row at once.
    const byId = (e) => (e.endpoint === room.you ? "" : (e.attendees[0] || {}).attendee || "");
    const inCall = room.endpoints.filter((e) => e.attendees.some((a) => a.status !== "waiting"))
      .sort((x, y) => byId(x).localeCompare(byId(y), undefined, { numeric: true }));
    const here = new Set(all.flatMap((e) => e.attendees.map((a) => a.attendee)));
    const roster = (this.visit.signaling && this.visit.signaling.welcome && this.visit.signaling.welcome.roster) || [];
    // Someone who came and went is not someone who has not come yet: the server says who left.
    const departed = (room.departed || []).filter((d) => !here.has(d.attendee))
      .sort((x, y) => x.attendee.localeCompare(y.attendee, undefined, { numeric: true }));
    const gone = new Set(departed.map((d) => d.attendee));
    const roles = new Map(roster.map((m) => [m.attendee, m.role]));
    const absent = roster.filter((m) => !here.has(m.attendee) && !gone.has(m.attendee));
    const present = inCall.flatMap((e) => e.attendees).filter((a) => a.status === "admitted").length;
    keepFocus(() => {
      $("waiting-count").textContent = "(" + waiting.length + ")";
      $("waiting-list").replaceChildren(...waiting.map(([e, a]) => this._waitingRow(e, a)));
      $("waiting-empty").hidden = waiting.length > 0;
      $("admit-all").hidden = waiting.length < 2;
      $("present-count").textContent = "(" + present + ")";
      $("people-list").replaceChildren(...inCall.map((e) => this._device(e, room.you)));
      $("left-count").textContent = "(" + departed.length + ")";
      $("left-list").replaceChildren(...departed.map((d) => departedRow(d, roles.get(d.attendee) || "")));
      $("left-title").hidden = $("left-list").hidden = departed.length === 0;
      $("absent-count").textContent = "(" + absent.length + ")";
      $("absent-list").replaceChildren(...absent.map((m) => el("li", { class: "person", dataset: { attendee: m.attendee } },
        el("span", { class: "who" }, el("strong", { text: m.attendee }), " " + m.role))));
      $("absent-title").hidden = $("absent-list").hidden = absent.length === 0;
    });
    this._announce(waiting.map(([, a]) => a.attendee),
      inCall.flatMap((e) => e.attendees).filter((a) => a.unmute_requested).map((a) => a.attendee),
      departed);
  }

  /** Without a forwarder a group falls back to the mesh: say that video degrades beyond four
   * devices, and say it louder once there are more. */
  _meshNotice(room) {
    const welcome = this.visit.signaling && this.visit.signaling.welcome;
    const box = $("mesh-notice");
    box.hidden = !welcome || welcome.kind !== "group" || welcome.target !== "peer";
    if (box.hidden) { return; }
    const devices = room.endpoints.filter((e) => e.connected).length;
    const over = devices > MESH_DEVICES;
    box.dataset.over = String(over);
    // One short line, so that a group's rows still fit the console.
    box.textContent = "Peer-to-peer video degrades beyond " + MESH_DEVICES + " devices" +
      (over ? " (" + devices + " now)" : "");
  }

  _waitingRow(endpoint, person) {
    const shared = endpoint.attendees.length > 1 ? " (shared device)" : "";
    return el("li", { class: "person", dataset: { attendee: person.attendee } },
      el("span", { class: "who" }, el("strong", { text: person.attendee }), " " + person.role + shared),
      el("span", { class: "actions" },
        button("admit", person.attendee, "Admit", "primary"),
        button("deny", person.attendee, "Deny")));
  }

  _device(endpoint, you) {
    const shared = endpoint.attendees.length > 1;
    const mine = endpoint.endpoint === you;
    const quality = mine ? null
      : el("span", { class: "quality", dataset: { quality: endpoint.endpoint }, text: this._qualityText(endpoint.endpoint) });
    const people = endpoint.attendees.filter((a) => a.status !== "waiting")
      .map((a, i) => this._person(a, { shared, mine, quality: i === 0 ? quality : null }));
    // One compact line per person; a head line only where it says something (a shared device,
    // this device, a lost connection), so a group of twelve fits the console at once.
    const heading = shared ? "Shared device" : "";
    const lost = endpoint.connected ? null : el("span", { class: "badge warn", text: "reconnecting" });
    return el("li", { class: "device", dataset: { endpoint: endpoint.endpoint, connected: String(endpoint.connected) } },
      heading || lost ? el("p", { class: "device-head" }, heading ? el("span", { text: heading }) : null, lost) : null,
      el("ul", { class: "people" }, people));
  }

  _person(a, { shared, mine, quality = null }) {
    const seated = a.role !== "clinician";
    const badges = [
      a.clinician_muted ? badge("muted by you") : a.muted ? badge("muted") : null,
      a.mute_locked ? badge("mute locked") : null,
      a.unmute_requested ? badge("asks to unmute", "attention") : null,
      a.status === "absent" ? badge("stepped away", "warn") : null,
      a.attached && !a.attested ? badge("not confirmed yet", "warn") : null,
    ];
    const actions = [];
    if (seated && !mine) {
      if (!a.clinician_muted) { actions.push(button("mute", a.attendee, "Mute")); }
      else if (!a.mute_locked) { actions.push(button("unmute", a.attendee, a.unmute_requested ? "Unmute (asked)" : "Unmute")); }
      actions.push(a.mute_locked ? button("unlock-mute", a.attendee, "Release lock") : button("lock-mute", a.attendee, "Lock mute"));
      if (shared) {
        if (a.status === "absent") { actions.push(button("present", a.attendee, "Mark present")); }
        else if (!a.attested) { actions.push(button("present", a.attendee, "Confirm present", "primary")); }
        else { actions.push(button("absent", a.attendee, "Mark absent")); }
      }
      actions.push(button("remove", a.attendee, "Remove", "danger"));
    }
    return el("li", { class: "person", dataset: { attendee: a.attendee, status: a.status } },
      el("span", { class: "who" }, el("strong", { text: a.attendee }), " " + a.role + (mine ? " (you)" : ""), " ", badges, " ", quality),
      actions.length ? el("span", { class: "actions" }, actions) : null);
  }

  /** Say what changed in the room. A departure replaces the message too, so it never goes on
   * saying that someone who has gone "is in the session" or "is muted". */
  _announce(waiting, asking, departed) {
    const fresh = (ids, seen) => ids.filter((id) => !seen.has(id));
    const before = this.known.departed;
    const gone = before ? departed.filter((d) => !before.has(d.attendee)) : [];
    const lines = [
      ...gone.map((d) => d.attendee + (d.removed ? " was removed." : " left the session.")),
      ...fresh(waiting, this.known.waiting).map((id) => id + " is waiting to be let in."),
      ...fresh(asking, this.known.asking).map((id) => id + " asks to unmute."),
    ];
    this.known = { waiting: new Set(waiting), asking: new Set(asking), departed: new Set(departed.map((d) => d.attendee)) };
    if (lines.length) { this.say(lines.join(" ")); }
  }

  // --- connection quality -------------------------------------------------------------

  _startStats() {
    clearInterval(this.timer);
    this.timer = setInterval(() => this._sample(), STATS_EVERY_MS);
    setTimeout(() => this._sample(), 1000);
  }

  async _sample() {
    this.quality = await this.visit.transport.stats();
    for (const [endpoint, q] of Object.entries(this.quality)) {
      const total = q.packetsLost || 0;
      q.recentLost = Math.max(0, total - (this.lostBefore[endpoint] ?? total));
      this.lostBefore[endpoint] = total;
    }
    for (const node of document.querySelectorAll("[data-quality]")) {
      node.textContent = this._qualityText(node.dataset.quality);
    }
  }

  _qualityText(endpoint) {
    const q = this.quality[endpoint];
    // Short, to fit a compact row: the grade, round trip, frame rate, and losses when any.
    if (!q) { return "starting…"; }
    const lost = q.recentLost || 0;
    const parts = [grade(q, lost)];
    if (q.rttMs !== null && q.rttMs !== undefined) { parts.push(q.rttMs + " ms"); }
    if (q.fps !== null && q.fps !== undefined) { parts.push(Math.round(q.fps) + " fps"); }
    if (lost) { parts.push(lost + " packets lost in " + STATS_EVERY_MS / 1000 + " s"); }
    return parts.join(" · ");
  }
}

function button(action, attendee, text, kind = "") {
  return el("button", {
    type: "button", class: kind, text,
    dataset: { action, attendee, key: action + ":" + attendee },
    "aria-label": text + " " + attendee,
  });
}

/** One person who was here and has gone: left (or dropped and did not come back) or removed,
 * and when, in this device's time. */
function departedRow(d, role) {
  const at = new Date(d.at);
  const clock = at.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  return el("li", { class: "person", dataset: { attendee: d.attendee, departed: d.removed ? "removed" : "left" } },
    el("span", { class: "who" }, el("strong", { text: d.attendee }), " " + role + " · ",
      d.removed ? "removed at " : "left at ", el("time", { datetime: d.at, text: clock })));
}

function badge(text, kind = "") {
  return el("span", { class: ("badge " + kind).trim(), text });
}

/** Re-render without losing a keyboard user's place: focus returns to the same control. */
function keepFocus(render) {
  const key = document.activeElement && document.activeElement.dataset ? document.activeElement.dataset.key : null;
  render();
  if (key) {
    const again = document.querySelector('[data-key="' + CSS.escape(key) + '"]');
    if (again) { again.focus(); }
  }
}

/** A modal question; resolves true when the person confirms. */
export function confirmDialog(title, text, confirmLabel) {
  const dialog = $("confirm");
  $("confirm-title").textContent = title;
  $("confirm-text").textContent = text;
  $("confirm-ok").textContent = confirmLabel;
  dialog.returnValue = "";
  dialog.showModal();
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "ok"), { once: true });
  });
}
