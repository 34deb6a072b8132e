// Media of a group session through the forwarding unit (welcome.target "server",
// docs/protocol.md "Group sessions through the forwarder"): one publishing connection that
// sends this device's feed (video in three simulcast layers) and one receiving connection that
// carries every other endpoint's feed, whatever the size of the group. The server relays every
// description and candidate; the page never talks to the forwarder itself.
//
// The same face as mesh.js (welcome, reconcile, replaceTrack, stats, closeAll), so the visit
// uses either one.

/** Three simulcast layers, full, half and quarter size (the forwarder picks one per receiver),
 * within the forwarder's cap of 512 kbit/s per publisher (docs/janus.md). */
const SIMULCAST = [
  { rid: "h", maxBitrate: 300000 },
  { rid: "m", maxBitrate: 120000, scaleResolutionDownBy: 2 },
  { rid: "l", maxBitrate: 50000, scaleResolutionDownBy: 4 },
];
/** Browsers send fewer simulcast layers from small pictures (Chromium: two from 640x480), so
 * the camera is asked for 960x540: 960, 480 and 240 pixels wide. */
const CAMERA = { width: { ideal: 960 }, height: { ideal: 540 }, frameRate: { ideal: 24, max: 30 } };
/** After a media_reset the forwarder may still be restarting: publish again for up to a minute. */
const PUBLISH_ATTEMPTS = 60;
const PUBLISH_PAUSE_MS = 1000;
/** Refusals after which publishing again cannot help now (the room view will say why). */
const FINAL = new Set(["not_authorized", "session_ended", "invalid_message"]);
/** How long a new receiving connection may take to connect before it is replaced (a slow
 * machine may need many seconds; "disconnected" alone recovers by itself, "failed" does not). */
const STUCK_MS = 30000;

function trace(...parts) { console.debug("forwarded:", ...parts); }

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** One connection to the forwarder, with candidates held until its description is acked. */
class Leg {
  constructor(forwarded, role) {
    this.role = role;  // "publisher" | "subscriber"
    forwarded.made[role] += 1;
    this.pc = new RTCPeerConnection({ iceServers: forwarded.iceServers, bundlePolicy: "max-bundle" });
    this.held = [];
    this.ready = false;  // the server has our description: candidates may follow
    this.pc.onicecandidate = ({ candidate }) => {
      // null ends gathering; an empty candidate tells the forwarder there are no more.
      const init = candidate ? candidate.toJSON() : { candidate: "" };
      if (candidate && !candidate.candidate) { return; }
      if (this.ready) { forwarded.candidate(role, init); } else { this.held.push(init); }
    };
    this.since = Date.now();
    this.connected = false;  // once: a connection that was up is replaced only when it fails
  }

  /** Our description is at the server: send what was gathered meanwhile. */
  flush(forwarded) {
    this.ready = true;
    for (const init of this.held.splice(0)) { forwarded.candidate(this.role, init); }
  }

  close() { this.pc.onicecandidate = null; this.pc.close(); }
}

export class Forwarded {
  /**
   * media: LocalMedia; call(event, data) -> ack (Signaling.call); onRemote(endpoint,
   * MediaStream | null) when an endpoint's media appears or goes; onState(state, detail).
   */
  constructor({ media, call, onRemote, onState = () => {} }) {
    this.media = media;
    this.call = call;
    this.onRemote = onRemote;
    this.onState = onState;
    this.self = null;
    this.iceServers = [];
    this.publisher = null;
    this.subscriber = null;
    /** mid -> endpoint, as the last offer said. */
    this.owners = new Map();
    /** endpoint -> the MediaStream its tile shows. */
    this.streams = new Map();
    /** endpoint -> substream asked for (what the page shows); sent -> what the server has. */
    this.wanted = new Map();
    this.sent = new Map();
    this.admitted = false;
    this.publishing = null;  // the running publish attempt, if any
    this.offers = Promise.resolve();  // subscription offers, one at a time, in order
    this.generation = 0;  // of the receiving connection: offers for an older one are dropped
    /** Connections made so far, for support and the tests: a call that goes on through
     * comings and goings keeps one receiving connection. */
    this.made = { publisher: 0, subscriber: 0 };
    this.watchdog = setInterval(() => this._check(), 2000);
  }

  /** After every welcome: the server let go of our feed with the old socket (or never had it). */
  welcome(welcome) {
    const fresh = welcome.endpoint !== this.self;
    this.iceServers = welcome.ice_servers || [];
    this.self = welcome.endpoint;
    this.closeAll({ keepTiles: !fresh });
  }

  /** Publish once admitted; nothing while waiting. */
  reconcile(room) {
    this.admitted = Boolean(room.admitted);
    if (!this.admitted) { this.closeAll(); return; }
    if (!this.publisher && !this.publishing) { this.publish(); }
  }

  /** A relayed peer-to-peer signal: not used through the forwarder. */
  deliver(_signal) {}

  /** (Re)publish this device's feed on a fresh connection; with ``attempts`` > 1, retry while
   * the forwarder is away (a media_reset). */
  publish(attempts = PUBLISH_ATTEMPTS) {
    const run = {};
    this.publishing = run;
    run.done = (async () => {
      for (let attempt = 1; attempt <= attempts; attempt += 1) {
        if (run !== this.publishing || !this.admitted) { return; }
        const error = await this._publishOnce(run);
        if (!error) { break; }
        trace("publish refused", error);
        if (FINAL.has(error) || attempt === attempts) { this.onState("refused", error); break; }
        await sleep(PUBLISH_PAUSE_MS);
      }
      if (run === this.publishing) { this.publishing = null; }
    })();
    return run.done;
  }

  async _publishOnce(run) {
    if (this.publisher) { this.publisher.close(); this.publisher = null; }
    await this.media.setVideoConstraints(CAMERA);
    if (run !== this.publishing) { return null; }  // given up meanwhile (a welcome, the end)
    const leg = new Leg(this, "publisher");
    const pc = leg.pc;
    const local = this.media.stream;
    // Both kinds always: without a device the m-line stays silent, and the device can be
    // swapped in later with replaceTrack.
    pc.addTransceiver(this.media.audio || "audio", { direction: "sendonly", streams: [local] });
    pc.addTransceiver(this.media.video || "video", {
      direction: "sendonly", streams: [local], sendEncodings: SIMULCAST.map((e) => ({ ...e })),
    });
    pc.onconnectionstatechange = () => {
      if (this.publisher === leg) { this.onState("publisher", pc.connectionState); }
    };
    this.publisher = leg;
    await pc.setLocalDescription();
    const reply = await this.call("media_publish", { description: { type: "offer", sdp: pc.localDescription.sdp } });
    if (this.publisher !== leg) { return null; }  // replaced meanwhile
    if (!reply.ok) {
      leg.close();
      this.publisher = null;
      return reply.error || "failed";
    }
    await pc.setRemoteDescription(reply.description);
    leg.flush(this);
    trace("published");
    return null;
  }

  /** media_offer: the forwarder's (new or updated) subscription; answer on our one receiving
   * connection and show whose streams it carries. */
  offer(data) {
    const generation = this.generation;
    this.offers = this.offers.then(() => (generation === this.generation ? this._offer(data) : null))
      .catch((error) => console.warn("subscription offer:", error));
  }

  async _offer({ description, streams }) {
    if (!this.admitted) { return; }
    if (!this.subscriber) {
      const leg = new Leg(this, "subscriber");
      leg.pc.onconnectionstatechange = () => {
        if (this.subscriber === leg) { this.onState("subscriber", leg.pc.connectionState); }
      };
      this.subscriber = leg;
    }
    const leg = this.subscriber;
    leg.ready = false;
    await leg.pc.setRemoteDescription(description);
    await leg.pc.setLocalDescription();
    if (leg !== this.subscriber) { return; }
    // Who is on which m-line now (an m-line of someone who left may carry a newcomer).
    this.owners = new Map((streams || []).map((s) => [s.mid, s.endpoint]));
    this._showStreams();
    const reply = await this.call("media_answer", { description: { type: "answer", sdp: leg.pc.localDescription.sdp } });
    if (leg !== this.subscriber) { return; }
    if (reply.error) { trace("answer refused", reply.error); return; }
    leg.flush(this);
    // A new subscription starts at the forwarder's default layer: ask again for what we show.
    this.sent.clear();
    this._sendLayers();
  }

  /** One MediaStream per endpoint from the receiving connection's tracks; a tile keeps its
   * stream object while its tracks stay the same. */
  _showStreams() {
    const tracks = new Map();
    for (const t of this.subscriber ? this.subscriber.pc.getTransceivers() : []) {
      const owner = t.mid !== null ? this.owners.get(t.mid) : undefined;
      if (!owner || !t.receiver.track) { continue; }
      if (!tracks.has(owner)) { tracks.set(owner, []); }
      tracks.get(owner).push(t.receiver.track);
    }
    for (const [endpoint, stream] of [...this.streams]) {
      if (!tracks.has(endpoint)) {
        this.streams.delete(endpoint);
        this.sent.delete(endpoint);
        if (stream) { this.onRemote(endpoint, null); }
      }
    }
    for (const [endpoint, list] of tracks) {
      const old = this.streams.get(endpoint);
      const same = old && old.getTracks().length === list.length && list.every((t) => old.getTracks().includes(t));
      if (same) { continue; }
      const stream = new MediaStream(list);
      this.streams.set(endpoint, stream);
      this.onRemote(endpoint, stream);
    }
  }

  /** The layers the page shows: {endpoint: 0 (small) .. 2 (large)}; sent when they change. */
  setLayers(layers) {
    this.wanted = new Map(Object.entries(layers));
    this._sendLayers();
  }

  _sendLayers() {
    if (!this.subscriber || !this.subscriber.ready) { return; }
    for (const [endpoint, substream] of this.wanted) {
      if (!this.streams.has(endpoint) || this.sent.get(endpoint) === substream) { continue; }
      this.sent.set(endpoint, substream);
      this.call("media_layer", { endpoint, substream }).then((reply) => {
        if (reply.error) { trace("layer refused", endpoint, reply.error); this.sent.delete(endpoint); }
      });
    }
  }

  /** media_reset: the forwarder lost our media (it restarted). Start over, and keep trying
   * while it comes back. */
  reset() {
    this.closeAll({ keepTiles: true });
    if (this.admitted) { this.publish(); }
  }

  candidate(connection, candidate) {
    this.call("media_candidate", { connection, candidate }).then((reply) => {
      if (reply.error) { trace("candidate refused", connection, reply.error); }
    });
  }

  replaceTrack(kind, track) {
    if (!this.publisher) { return; }
    const found = this.publisher.pc.getTransceivers().find((t) => t.receiver.track.kind === kind);
    if (found) { found.sender.replaceTrack(track).catch(() => this.publish()); }
  }

  /** A publishing connection that failed is published again; a receiving one that failed (or
   * did not connect in time) is replaced by a fresh subscription. */
  _check() {
    if (!this.admitted) { return; }
    if (this.publisher && this.publisher.pc.connectionState === "failed" && !this.publishing) {
      trace("publish again: the connection failed");
      this.publish();
    }
    const leg = this.subscriber;
    if (!leg) { return; }
    const state = leg.pc.connectionState;
    if (state === "connected") { leg.connected = true; return; }
    const stuck = !leg.connected && Date.now() - leg.since > STUCK_MS;
    if (state !== "failed" && !stuck) { return; }
    trace("resubscribe after", state);
    this._dropSubscriber();
    this.call("media_resubscribe", {}).then((reply) => {
      if (reply.error) { trace("resubscribe refused", reply.error); }
    });
  }

  _dropSubscriber() {
    if (this.subscriber) { this.subscriber.close(); this.subscriber = null; }
    this.generation += 1;
    this.sent.clear();
  }

  /** What was received from each endpoint, as mesh.stats() gives it; numbers only. */
  async stats() {
    const out = {};
    const leg = this.subscriber;
    if (!leg) { return out; }
    const report = await leg.pc.getStats();
    const byTrack = new Map();
    for (const t of leg.pc.getTransceivers()) {
      const owner = t.mid !== null ? this.owners.get(t.mid) : undefined;
      if (owner && t.receiver.track) { byTrack.set(t.receiver.track.id, owner); }
    }
    let rttMs = null;
    report.forEach((s) => {
      if (s.type === "candidate-pair" && s.nominated && s.state === "succeeded" && s.currentRoundTripTime !== undefined) {
        rttMs = Math.round(s.currentRoundTripTime * 1000);
      }
    });
    const state = leg.pc.connectionState;
    for (const endpoint of this.streams.keys()) {
      out[endpoint] = { rttMs, packetsLost: 0, fps: null, framesDecoded: 0, videoWidth: 0, audioLevel: 0, audioPackets: 0, state };
    }
    report.forEach((s) => {
      if (s.type !== "inbound-rtp") { return; }
      const endpoint = (s.mid !== undefined && this.owners.get(s.mid)) || byTrack.get(s.trackIdentifier);
      const q = endpoint && out[endpoint];
      if (!q) { return; }
      q.packetsLost += Math.max(0, s.packetsLost || 0);
      if (s.kind === "audio") {
        q.audioLevel = Math.max(q.audioLevel, s.audioLevel || 0);
        q.audioPackets += s.packetsReceived || 0;
      } else if (s.kind === "video") {
        q.fps = s.framesPerSecond ?? q.fps;
        q.framesDecoded += s.framesDecoded || 0;
        q.videoWidth = Math.max(q.videoWidth, s.frameWidth || 0);
      }
    });
    return out;
  }

  /** What this device uploads: connections, video sources with bytes sent (simulcast layers
   * of one camera are one source) and the layers themselves. */
  async uploads() {
    const out = {
      connections: this.publisher ? 1 : 0, receiving: this.subscriber ? 1 : 0, made: { ...this.made },
      videoSources: 0, videoLayers: 0, rids: [], audioStreams: 0,
    };
    if (!this.publisher) { return out; }
    const report = await this.publisher.pc.getStats();
    const sources = new Set();
    report.forEach((s) => {
      if (s.type !== "outbound-rtp" || !(s.bytesSent > 0)) { return; }
      if (s.kind === "video") {
        out.videoLayers += 1;
        if (s.rid) { out.rids.push(s.rid); }
        sources.add(s.mediaSourceId || s.mid);
      }
      else if (s.kind === "audio") { out.audioStreams += 1; }
    });
    out.videoSources = sources.size;
    return out;
  }

  /** Close both connections (a new welcome, the waiting room, the end of the visit). */
  closeAll({ keepTiles = false } = {}) {
    this.publishing = null;
    if (this.publisher) { this.publisher.close(); this.publisher = null; }
    this._dropSubscriber();
    this.owners = new Map();
    if (!keepTiles) {
      for (const endpoint of [...this.streams.keys()]) { this.onRemote(endpoint, null); }
    }
    this.streams.clear();
  }
}
