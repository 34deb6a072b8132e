// One visit to a session from this page, patient or clinician: check the link, check the
// devices, join, wait, take part in the call, and end with a plain message. The clinician's
// console (host.js) listens to the same visit.

import { $, fillSelect, paragraphs, showStage } from "./dom.js";
import { clock, problemLines, readToken, verifyLink, when } from "./link.js";
import { LevelMeter, LocalMedia } from "./media.js";
import { Signaling } from "./signaling.js";
import { Mesh } from "./mesh.js";
import { Forwarded } from "./forwarded.js";
import { CallView, showSelf } from "./call.js";

const ROLE_WORDS = { patient: "a patient", guest: "a family guest", clinician: "the clinician" };
const KIND_WORDS = { individual: "Individual session", couples: "Couples session", group: "Group session" };

const BYE_WORDS = {
  removed: ["You have been removed from this session",
    "Your clinician has removed you from this session. If you think this is a mistake, contact your care team."],
  denied: ["You were not let in",
    "Your clinician could not let you in to this session. If you need help, contact your care team."],
  ended: ["The session has ended", "The session has ended. Thank you for attending."],
  ended_staff: ["The session has ended",
    "The session has ended for everyone. Its attendance is on the Sessions page (/console)."],
  left: ["You left the session", "You left the session. You can join again while it is still running."],
  replaced: ["You joined from another window",
    "This call continued in another window, tab or device. You can close this one."],
  revoked: ["This link was withdrawn",
    "Your program link was withdrawn, so you were signed out. Ask your care team for a new one."],
  expired: ["You were away too long", "Your connection was away too long. Join again to come back."],
};

/** Refusals that may pass by themselves: the page offers to try again. */
const RETRY = new Set(["session_locked", "unreachable", "store_unavailable", "busy", "internal_error", "timeout"]);

const MEDIA_WORDS = {
  denied: "Your camera and microphone are blocked for this page. To take part, allow them: " +
    "tap the camera or lock icon in the address bar, choose Allow, then press Try again.",
  busy: "Your camera or microphone is being used by another app. Close that app, then press Try again.",
  unsupported: "This browser cannot use a camera or microphone here. Try a recent Chrome, Safari, Firefox or Edge.",
  failed: "We could not start your camera or microphone. Press Try again, or restart your browser.",
};

/**
 * The self-view's label for the people on this device, given the names typed on it (undefined
 * for someone who typed none): "You", "You: Alex", "You: Alex and Sam" on a shared device,
 * "You: Sam and 1 more" when one partner gave no name, "You: 2 people" when neither did.
 * Short: it sits on a phone's small self-view.
 */
export function selfLabel(names) {
  const named = names.filter(Boolean);
  const unnamed = names.length - named.length;
  if (!named.length) { return names.length > 1 ? `You: ${names.length} people` : "You"; }
  return "You: " + named.join(" and ") + (unnamed ? ` and ${unnamed} more` : "");
}

export class Visit extends EventTarget {
  constructor(page) {
    super();
    this.page = page;                 // "join" or "host"
    this.token = null;
    this.info = null;                 // /api/links/verify
    this.media = new LocalMedia();
    this.meter = new LevelMeter($("level"));
    this.waitingMeter = new LevelMeter($("waiting-level"));
    this.signaling = null;
    this.room = null;
    const onRemote = (endpoint, stream) => this.call.stream(endpoint, stream);
    // Peer to peer (welcome.target "peer"), or through the forwarder (group sessions, "server").
    this.mesh = new Mesh({
      media: this.media,
      send: (signal) => this.signaling && this.signaling.signal(signal),
      onRemote,
    });
    this.forwarded = new Forwarded({
      media: this.media,
      call: (event, data) => this.signaling ? this.signaling.call(event, data) : Promise.resolve({ error: "not_connected" }),
      onRemote,
      onState: (what, detail) => {
        if (what === "refused") { this.notice("Your video could not reach the group right now. Leave and join again if it does not come back."); }
        console.debug("forwarded:", what, detail);
      },
    });
    this.target = "peer";
    this.self = null;
    this.call = new CallView($("remotes"), (view) => this.describe(view));
    // Through the forwarder, ask for the layer each tile shows (large: high, small: low).
    this.call.onLayers = (layers) => { if (this.target === "server") { this.forwarded.setLayers(layers); } };
    /** Names typed on this device, by attendee id. Never sent anywhere. */
    this.names = new Map();
    this.reported = null;             // the modality last sent for this endpoint
    // For the page tests and for support: media numbers only, nothing identifying.
    window.homeroomMedia = {
      stats: () => this.transport.stats(),
      target: () => this.target,
      uploads: () => this.transport.uploads(),
      sending: () => ({ audio: this.media.sendingAudio, video: Boolean(this.media.video && this.media.cameraOn) }),
      endpoint: () => (this.signaling && this.signaling.endpoint) || null,
    };
  }

  // --- link ---------------------------------------------------------------------------

  async start() {
    this._wire();
    // A new link opened in this tab changes only the fragment: start over with it.
    window.addEventListener("hashchange", () => {
      if (new URLSearchParams(location.hash.slice(1)).get("t")) { location.reload(); }
    });
    const before = sessionStorage.getItem("homeroom.link." + this.page);
    this.token = readToken(this.page);
    // Another link in this tab: a resume credential of the last one must not be used with it.
    if (this.token !== before) { sessionStorage.removeItem(this._resumeKey()); }
    this._loadNames();
    if (!this.token) {
      this.problem(["This page needs the link from your invitation message.",
        "Open that link again, or ask your care team to send a new one."]);
      return;
    }
    const checked = await verifyLink(this.token);
    if (!checked.ok) {
      this.problem(problemLines(checked.error, checked.body), RETRY.has(checked.error));
      return;
    }
    this.info = checked.info;
    $("my-name").value = this.names.get(this.info.attendee) || "";
    this._describeLink();
    showStage("setup");
    await this.openMedia();
    if (Signaling.stored(this._resumeKey())) { this.join(); }  // reloaded mid-call: straight back in
    else if (this._autoJoin()) { this.join(); }  // a check-in just picked up: no second tap
  }

  /** Say why the session cannot be opened; ``retry`` when trying again later may work. */
  problem(lines, retry = false) {
    paragraphs($("problem-text"), lines);
    $("problem-retry").hidden = !retry;
    showStage("problem");
  }

  _describeLink() {
    const info = this.info;
    // Short: on a phone the Join button must stay above the fold.
    const kind = KIND_WORDS[info.kind] || "A session";
    const lines = [
      kind + (info.role === "patient" ? "" : " (you are " + (ROLE_WORDS[info.role] || info.role) + ")") +
        ", " + when(info.starts_at) + ".",
    ];
    if (info.session_status === "scheduled") { lines.push("You can check your camera now; the waiting room opens when you join."); }
    paragraphs($("link-info"), lines);
    if (info.clinic) { $("brand").textContent = info.clinic; }
    const who = info.clinicians && info.clinicians.length ? info.clinicians.join(" or ") : "Your clinician";
    $("waiting-who").textContent = (info.clinic ? "Welcome to " + info.clinic + ". " : "") +
      who + " will let you in soon. Please keep this page open.";
    $("waiting-when").textContent = "Your session: " + when(info.starts_at) + " to " + clock(info.ends_at) + ".";
  }

  // --- devices ------------------------------------------------------------------------

  async openMedia(choice = {}) {
    await this.media.open(choice);
    showSelf($("preview"), this.media.stream);
    this.meter.attach(this.media.audio);
    this._mediaProblem();
    await this._fillPickers();
    this._controls();
    $("join").disabled = false;
  }

  _mediaProblem() {
    const { audio, video } = this.media.problems;
    const box = $("media-problem");
    let text = "";
    if (audio && video) { text = MEDIA_WORDS[audio] || MEDIA_WORDS[video] || MEDIA_WORDS.failed; }
    else if (video === "missing") { text = "We could not find a camera. You can still join with sound only."; }
    else if (video) { text = MEDIA_WORDS[video] + " You can also join with sound only."; }
    else if (audio === "missing") { text = "We could not find a microphone. You can join, but others will not hear you."; }
    else if (audio) { text = MEDIA_WORDS[audio]; }
    $("media-problem-text").textContent = text;
    box.hidden = !text;
    $("level-field").hidden = !this.media.audio;
    $("retry-media").hidden = !(audio || video) || (video === "missing" && !audio);
    $("preview-off").hidden = Boolean(this.media.video);
    $("join").textContent = this.media.audio || this.media.video
      ? (this.media.video ? "Join the session" : "Join with sound only")
      : "Join without camera or microphone";
  }

  async _fillPickers() {
    const devices = await this.media.devices();
    for (const kind of ["audio", "video"]) {
      const select = $("pick-" + kind);
      fillSelect(select, devices[kind], this.media.deviceId(kind));
      select.disabled = devices[kind].length < 2 && Boolean(this.media[kind]);
      // Blocked: nothing can be chosen until the person allows it (a busy one may be swapped).
      const blocked = ["denied", "unsupported"].includes(this.media.problems[kind]);
      select.closest(".field").hidden = devices[kind].length === 0 || blocked;
    }
  }

  async _pick(kind) {
    const id = $("pick-" + kind).value;
    if (!id || id === this.media.deviceId(kind)) { return; }
    try {
      const track = await this.media.switchDevice(kind, id);
      this.transport.replaceTrack(kind, track);
      if (kind === "audio") { this.meter.attach(track); }
      showSelf($("preview"), this.media.stream);
      this._mediaProblem();
    } catch (_) {
      this.notice("That " + (kind === "audio" ? "microphone" : "camera") + " could not be started.");
    }
  }

  // --- joining ------------------------------------------------------------------------

  /** Join; with ``takeover`` the person's other window gives its place to this one. */
  join({ takeover = false } = {}) {
    if (this.signaling) { return; }
    this._rememberName(this.info.attendee, $("my-name").value);
    $("join").disabled = true;
    $("join").textContent = "Connecting…";
    const signaling = new Signaling(this.token, { storageKey: this._resumeKey(), takeover });
    this.signaling = signaling;
    signaling.addEventListener("state", (e) => this._connection(e.detail.state));
    signaling.addEventListener("welcome", (e) => this._welcome(e.detail.welcome));
    signaling.addEventListener("room", (e) => this._room(e.detail.room));
    signaling.addEventListener("signal", (e) => this.mesh.deliver(e.detail.signal));
    signaling.addEventListener("media_offer", (e) => this.forwarded.offer(e.detail));
    signaling.addEventListener("media_reset", () => this.forwarded.reset());
    signaling.addEventListener("bye", (e) => this.finish(e.detail.reason));
    signaling.addEventListener("refused", (e) => this._refused(e.detail));
    signaling.connect();
  }

  /** True once when the program page sent this link to be joined at once (program.js). */
  _autoJoin() {
    const asked = sessionStorage.getItem("homeroom.autojoin") === this.token;
    sessionStorage.removeItem("homeroom.autojoin");
    return asked;
  }

  _resumeKey() { return "homeroom.resume." + this.page; }

  _welcome(welcome) {
    this.meter.detach();  // the device check is over: no drawing loop during the call
    const fresh = this.self !== welcome.endpoint;
    this.self = welcome.endpoint;
    this.target = welcome.target === "server" ? "server" : "peer";
    (this.target === "server" ? this.mesh : this.forwarded).closeAll();
    this.transport.welcome(welcome);
    if (fresh) {
      this.call.clear();
      // A new endpoint starts as video on the server; a reloaded page does not know.
      this.reported = welcome.resumed ? null : "video";
    }
    this._reportModality();
    this._followSpeaker();
    this.dispatchEvent(new CustomEvent("welcome", { detail: { welcome } }));
  }

  _room(room) {
    this.room = room;
    const mine = this.mine();
    if (room.admitted) { showStage("call"); } else { showStage("waiting"); }
    const people = mine ? mine.attendees : [];
    this.media.setClinicianMuted(people.some((a) => a.clinician_muted));
    // The microphone check goes on in the waiting room; the call draws nothing of its own.
    if (room.admitted) { this.waitingMeter.detach(); }
    else if (!this.waitingMeter.source) { this.waitingMeter.attach(this.media.audio); }
    this.transport.reconcile(room);
    this.call.sync(room);
    showSelf($(room.admitted ? "self-view" : "waiting-self"), this.media.stream);
    this.refreshSelf();
    this._controls();
    this.dispatchEvent(new CustomEvent("room", { detail: { room } }));
  }

  _refused({ error, detail }) {
    if (error === "already_joined") { this._elsewhere(); return; }
    this.stopMedia();
    if (error === "assets_missing") {
      this.problem([detail, "Ask whoever runs Homeroom to run `make run` (it installs the page's files)."]);
      return;
    }
    this.problem(problemLines(error, {}), RETRY.has(error));
  }

  /** Already in the session in another window: ask before taking the call over. The camera
   * stays on, so continuing here is one tap. */
  _elsewhere() {
    this.signaling = null;
    this._mediaProblem();  // the Join button's words, for "Not now"
    $("join").disabled = false;
    showStage("elsewhere");
  }

  /** The connection banner: says so while the page is not connected. */
  _connection(state) {
    const banner = $("connection");
    const words = { connecting: "Connecting…", reconnecting: "Connection lost. Reconnecting…" }[state];
    const was = document.body.dataset.connection;
    document.body.dataset.connection = state;
    clearTimeout(this._bannerTimer);
    if (words) {
      banner.textContent = words;
    } else if (state === "connected" && was === "reconnecting") {
      banner.textContent = "Reconnected.";
      this._bannerTimer = setTimeout(() => { banner.textContent = ""; }, 3000);
    } else {
      banner.textContent = "";
    }
  }

  // --- in the call --------------------------------------------------------------------

  /** The media connections this session uses: the mesh, or the forwarder's two. */
  get transport() { return this.target === "server" ? this.forwarded : this.mesh; }

  /** This endpoint's own view (in the call or waiting). */
  mine() {
    const room = this.room;
    if (!room) { return null; }
    return [...room.endpoints, ...(room.waiting || [])].find((e) => e.endpoint === room.you) || null;
  }

  /** The words under another endpoint's tile. Patients see roles; clinicians see ids. */
  describe(view) {
    const host = this.info && this.info.role === "clinician";
    const names = view.attendees.map((a) => {
      if (a.role === "clinician") { return host ? "Clinician " + a.attendee : "Clinician"; }
      return host ? a.attendee : (a.role === "guest" ? "Guest" : "Participant");
    });
    return names.join(" & ") || "Someone";
  }

  refreshSelf() {
    const mine = this.mine();
    $("self-label").textContent = this._selfLabel(mine ? mine.attendees : []);
  }

  _selfLabel(people) {
    return selfLabel(people.map((a) => this.names.get(a.attendee)));
  }

  _rememberName(attendee, name) {
    const clean = (name || "").trim().slice(0, 40);
    if (clean) { this.names.set(attendee, clean); } else { this.names.delete(attendee); }
    this.saveNames();
  }

  /** Names stay in this tab (sessionStorage) so a reload keeps them; they are never sent. */
  saveNames() {
    sessionStorage.setItem("homeroom.names", JSON.stringify([...this.names]));
  }

  _loadNames() {
    try {
      for (const [attendee, name] of JSON.parse(sessionStorage.getItem("homeroom.names") || "[]")) {
        this.names.set(attendee, name);
      }
    } catch (_) { sessionStorage.removeItem("homeroom.names"); }
  }

  async toggleMic() {
    const on = !this.media.micOn;
    this.media.setMic(on);
    this._controls();
    // Tell the session, so the clinician sees who is muted (the microphone is off either way).
    const mine = this.mine();
    for (const person of mine ? mine.attendees : []) {
      if (person.muted !== on) { continue; }
      await this.signaling.call(on ? "unmute" : "mute", { attendee: person.attendee });
    }
  }

  async toggleCamera() {
    this.media.setCamera(!this.media.cameraOn);
    this._controls();
    await this._reportModality();
  }

  async _reportModality() {
    const modality = this.media.modality;
    if (!this.signaling || !this.signaling.connected || modality === this.reported) { return; }
    this.reported = modality;
    const reply = await this.signaling.call("modality", { modality });
    if (reply.error && reply.error !== "invalid_transition") { this.reported = null; }
  }

  async askToUnmute() {
    const reply = await this.signaling.call("ask_unmute");
    if (reply.error) { this.notice(reply.detail || "Your clinician could not be asked right now."); }
    // The notice says so too, and its button stays pressed, once the room view comes back.
    else { this.notice("You asked to speak. Your clinician will unmute you.", { shown: false }); }
  }

  async leave() {
    if (!this.signaling) { this.finish("left"); return; }
    await this.signaling.leave();
  }

  /** The end of this visit: say why, and let go of camera, microphone and connections. */
  finish(reason) {
    const staff = this.info && this.info.role === "clinician";
    const [title, text] = (reason === "ended" && staff ? BYE_WORDS.ended_staff : BYE_WORDS[reason])
      || BYE_WORDS.ended;
    this.stopMedia();
    $("ended-title").textContent = title;
    paragraphs($("ended-text"), [text]);
    $("rejoin").hidden = !(reason === "left" || reason === "expired" || reason === "replaced");
    document.body.dataset.bye = reason;
    clearTimeout(this._bannerTimer);
    $("connection").textContent = "";
    clearTimeout(this._noticeTimer);  // news of the call (a mute, an admission) is over with it
    $("notice").textContent = "";
    showStage("ended");
    this.dispatchEvent(new CustomEvent("ended", { detail: { reason } }));
  }

  stopMedia() {
    this.mesh.closeAll();
    this.forwarded.closeAll();
    this.call.clear();
    this.meter.close();
    this.waitingMeter.close();
    clearInterval(this._speakerTimer);
    this.media.stop();
    for (const id of ["preview", "self-view", "waiting-self"]) { $(id).srcObject = null; }
  }

  /** A two-note chime through the speaker (WebAudio: no file to fetch). */
  testSpeaker() {
    const Context = window.AudioContext || window.webkitAudioContext;
    if (!Context) { $("speaker-status").textContent = "This browser cannot play a test sound."; return; }
    const context = new Context();
    const gain = context.createGain();
    gain.gain.value = 0.2;
    gain.connect(context.destination);
    [523.25, 659.25].forEach((hz, i) => {
      const tone = context.createOscillator();
      tone.frequency.value = hz;
      tone.connect(gain);
      tone.start(context.currentTime + i * 0.35);
      tone.stop(context.currentTime + i * 0.35 + 0.3);
    });
    setTimeout(() => context.close().catch(() => {}), 1200);
    $("speaker-status").textContent = "Did you hear two notes? If not, turn your volume up or check your headphones.";
  }

  /** In a group, the loudest remote endpoint gets the large tile (from inbound audio levels). */
  _followSpeaker() {
    clearInterval(this._speakerTimer);
    this._speakerTimer = setInterval(async () => {
      if (this.call.tiles.size <= 3) { return; }
      const stats = await this.transport.stats();
      let loudest = null;
      let level = 0.02;  // below this it is room noise, not someone speaking
      for (const [endpoint, s] of Object.entries(stats)) {
        if ((s.audioLevel || 0) > level) { loudest = endpoint; level = s.audioLevel; }
      }
      if (loudest) { this.call.setActive(loudest); }
    }, 1500);
  }

  /** A short message for the person, read out by screen readers. It takes its own line at the
   * top of the page, so it never covers a control. ``shown: false`` only reads it out: for what
   * the page already shows (the mute notice says it in its own words). */
  notice(text, { shown = true } = {}) {
    const box = $("notice");
    box.textContent = text;
    box.classList.toggle("visually-hidden", !shown);
    clearTimeout(this._noticeTimer);
    this._noticeTimer = setTimeout(() => { box.textContent = ""; }, 8000);
  }

  // --- buttons ------------------------------------------------------------------------

  _wire() {
    $("join").addEventListener("click", () => this.join());
    $("take-over").addEventListener("click", () => this.join({ takeover: true }));
    $("stay-away").addEventListener("click", () => showStage("setup"));
    $("speaker-test").addEventListener("click", () => this.testSpeaker());
    $("retry-media").addEventListener("click", () => this.openMedia());
    $("pick-audio").addEventListener("change", () => this._pick("audio"));
    $("pick-video").addEventListener("change", () => this._pick("video"));
    $("mic").addEventListener("click", () => this.toggleMic());
    $("camera").addEventListener("click", () => this.toggleCamera());
    $("ask-unmute").addEventListener("click", () => this.askToUnmute());
    for (const id of ["leave", "leave-waiting"]) { $(id).addEventListener("click", () => this.leave()); }
    for (const id of ["rejoin", "problem-retry"]) { $(id).addEventListener("click", () => location.reload()); }
    $("my-name").addEventListener("change", (e) => this._rememberName(this.info.attendee, e.target.value));
  }

  /** Buttons and the mute notice follow the media and the room view. */
  _controls() {
    const people = this.mine() ? this.mine().attendees : [];
    const clinicianMuted = people.some((a) => a.clinician_muted);
    const locked = people.some((a) => a.mute_locked);
    const asked = people.some((a) => a.unmute_requested);
    const mic = $("mic");
    mic.disabled = !this.media.audio || clinicianMuted;
    mic.setAttribute("aria-pressed", String(!this.media.sendingAudio));
    mic.textContent = !this.media.audio ? "No microphone"
      : clinicianMuted ? "Muted" : this.media.micOn ? "Mute" : "Unmute";
    const camera = $("camera");
    camera.disabled = !this.media.video;
    camera.setAttribute("aria-pressed", String(!this.media.cameraOn));
    camera.textContent = !this.media.video ? "No camera" : this.media.cameraOn ? "Stop video" : "Start video";
    $("self-off").hidden = Boolean(this.media.video && this.media.cameraOn);

    const box = $("muted-notice");
    // The notice appears with the mute; say it too, for screen readers only (a live region that
    // was hidden is not reliably read out when it appears). On screen the notice is the message.
    if (clinicianMuted && box.hidden) { this.notice("Your clinician muted your microphone.", { shown: false }); }
    if (!clinicianMuted && !box.hidden) { this.notice("Your clinician unmuted your microphone."); }
    box.hidden = !clinicianMuted;
    $("muted-text").textContent = locked
      ? "Your microphone is muted by your clinician for now."
      : asked ? "Your microphone is muted by your clinician. You asked to speak: they will unmute you."
        : "Your microphone is muted by your clinician.";
    const ask = $("ask-unmute");
    ask.hidden = locked;
    ask.disabled = asked;
  }
}
