// Media between endpoints: one RTCPeerConnection per other admitted endpoint (a mesh), with
// perfect negotiation (docs/protocol.md): in each pair the endpoint whose id sorts first is
// polite and rolls back its own offer on a collision; the other ignores a colliding offer.

/** The o= line's session id: it changes only when the remote side starts a new connection
 * (a reload, a resume, a replaced connection), which an existing connection cannot follow. */
function sessionOf(sdp) {
  const match = /^o=\S+ (\S+)/m.exec(sdp || "");
  return match ? match[1] : null;
}

/** How long the polite side of a new connection waits for the other side's first offer. */
const OFFER_WAIT_MS = 3000;
/** How long a negotiated connection may sit without starting ICE before it is replaced. */
const STUCK_MS = 6000;

/** Negotiation steps, for the browser console (endpoint ids only). */
function trace(...parts) { console.debug("mesh:", ...parts); }

class Peer {
  /** eager: offer at once even when polite (the other side keeps an older connection). */
  constructor(mesh, remote, { eager = false } = {}) {
    this.mesh = mesh;
    this.remote = remote;
    this.polite = mesh.self < remote;
    this.eager = eager;
    this.stream = null;
    this.remoteSession = null;
    this.ignoreOffer = false;
    this.queue = Promise.resolve();
    this.pc = null;
    this._open();
  }

  _open() {
    const pc = new RTCPeerConnection({ iceServers: this.mesh.iceServers });
    this.pc = pc;
    this.remoteSession = null;
    this.ignoreOffer = false;
    this.stuckSince = null;
    // The server relays each event in its own task, so a candidate may overtake the
    // description it belongs to: keep it until a remote description is there.
    this.early = [];
    // On a new connection the impolite side offers first and the polite side answers. Glare
    // is legal, but Chromium may then never gather candidates for the answer of a rolled-back
    // offer, and the call stays silent. The polite side offers anyway if nothing comes.
    this.waitingForOffer = this.polite && !this.eager;
    this.eager = false;
    if (this.waitingForOffer) {
      setTimeout(() => {
        if (pc === this.pc && this.waitingForOffer) {
          this.waitingForOffer = false;
          this._enqueue(() => this._offer(pc));
        }
      }, OFFER_WAIT_MS);
    }
    this.stream = new MediaStream();
    const local = this.mesh.media.stream;
    for (const kind of ["audio", "video"]) {
      const track = local.getTracks().find((t) => t.kind === kind);
      // Without a camera (or microphone) still receive that kind from the others.
      if (track) { pc.addTrack(track, local); } else { pc.addTransceiver(kind, { direction: "recvonly" }); }
    }
    pc.onnegotiationneeded = () => {
      if (!this.waitingForOffer) { this._enqueue(() => this._offer(pc)); }
    };
    pc.onicecandidate = ({ candidate }) => {
      if (pc === this.pc && candidate && candidate.candidate) {
        trace("candidate to", this.remote);
        this.mesh.send({ to: this.remote, candidate: candidate.toJSON() });
      }
    };
    pc.ontrack = ({ track }) => {
      if (pc !== this.pc) { return; }
      for (const old of this.stream.getTracks().filter((t) => t.kind === track.kind)) { this.stream.removeTrack(old); }
      this.stream.addTrack(track);
      this.mesh.onRemote(this.remote, this.stream);
    };
    pc.onconnectionstatechange = () => {
      if (pc !== this.pc) { return; }
      this.mesh.onState(this.remote, pc.connectionState);
      // The impolite side offers, so it also starts over when the path fails.
      if (pc.connectionState === "failed" && !this.polite) { this.replace(); }
    };
    this.mesh.onRemote(this.remote, this.stream);
  }

  /** Start over with a fresh connection (it negotiates by itself). */
  replace() {
    trace("replace", this.remote);
    const old = this.pc;
    this._open();
    old.close();
  }

  /** Our signaling was down: an offer of ours may have been lost, and nobody would answer it. */
  restored() {
    this._enqueue(async () => { if (this.pc.signalingState === "have-local-offer") { this.replace(); } });
  }

  /** Start over when negotiation got nowhere: an offer nobody answered (it was lost with a
   * page or a connection), or both descriptions set but ICE never started (the impolite side
   * restarts that one, so that both sides do not). */
  checkStuck(now) {
    const pc = this.pc;
    const unanswered = pc.signalingState === "have-local-offer";
    const silent = pc.signalingState === "stable" && pc.localDescription && pc.remoteDescription &&
      pc.iceConnectionState === "new" && !this.polite;
    if (!unanswered && !silent) { this.stuckSince = null; return; }
    this.stuckSince = this.stuckSince ?? now;
    if (now - this.stuckSince > STUCK_MS) { this.replace(); }
  }

  deliver(signal) {
    if (signal.description) { this._enqueue(() => this._description(signal.description)); }
    else if (signal.candidate) { this._enqueue(() => this._candidate(signal.candidate)); }
  }

  replaceTrack(kind, track) {
    for (const sender of this.pc.getSenders()) {
      if (sender.track && sender.track.kind === kind) { sender.replaceTrack(track).catch(() => {}); return; }
    }
    // The connection had no sender of this kind (joined without that device): start over.
    this.replace();
  }

  close() {
    this.pc.close();
    this.queue = Promise.resolve();
  }

  // Descriptions, candidates and our own offers are handled one at a time, in order.
  _enqueue(job) {
    this.queue = this.queue.then(job).catch((error) => console.warn("negotiation:", this.remote, error));
  }

  async _offer(pc) {
    if (pc !== this.pc || pc.signalingState !== "stable") { return; }
    await pc.setLocalDescription();
    trace("offer to", this.remote);
    this._sendLocal(pc);
  }

  async _description(description) {
    trace(description.type, "from", this.remote, "in", this.pc.signalingState, this.polite ? "polite" : "impolite");
    if (description.type === "rollback") { return; }  // the remote undid its own offer
    const session = sessionOf(description.sdp);
    if (this.remoteSession && session && session !== this.remoteSession) { this.replace(); }
    const pc = this.pc;
    const collision = description.type === "offer" && pc.signalingState !== "stable";
    this.ignoreOffer = collision && !this.polite;
    if (this.ignoreOffer) { return; }
    if (description.type === "answer" && pc.signalingState !== "have-local-offer") { return; }  // stale
    await pc.setRemoteDescription(description);  // the polite side rolls back implicitly
    this.remoteSession = session;
    this.waitingForOffer = false;
    for (const candidate of this.early.splice(0)) { await this._add(candidate); }
    if (description.type === "offer") {
      await pc.setLocalDescription();
      this._sendLocal(pc);
    }
  }

  async _candidate(candidate) {
    if (!this.pc.remoteDescription) {
      if (this.early.length < 64) { this.early.push(candidate); }
      return;
    }
    await this._add(candidate);
  }

  async _add(candidate) {
    try {
      await this.pc.addIceCandidate(candidate);
    } catch (error) {
      // Candidates of an ignored or replaced offer are expected to fail; others do no harm.
      trace("candidate refused", this.remote, this.ignoreOffer ? "(ignored offer)" : String(error));
    }
  }

  _sendLocal(pc) {
    const { type, sdp } = pc.localDescription;
    this.mesh.send({ to: this.remote, description: { type, sdp } });
  }
}

/** What a clinician needs to judge a connection: RTT, packets lost, frames per second. */
async function quality(pc) {
  const report = await pc.getStats();
  const out = { rttMs: null, packetsLost: 0, fps: null, framesDecoded: 0, videoWidth: 0 };
  report.forEach((s) => {
    if (s.type === "candidate-pair" && s.nominated && s.state === "succeeded" && s.currentRoundTripTime !== undefined) {
      out.rttMs = Math.round(s.currentRoundTripTime * 1000);
    } else if (s.type === "inbound-rtp") {
      out.packetsLost += Math.max(0, s.packetsLost || 0);
      if (s.kind === "audio") {
        out.audioLevel = Math.max(out.audioLevel || 0, s.audioLevel || 0);
      } else if (s.kind === "video") {
        out.fps = s.framesPerSecond ?? out.fps;
        out.framesDecoded += s.framesDecoded || 0;
        out.videoWidth = Math.max(out.videoWidth, s.frameWidth || 0);
      }
    }
  });
  return out;
}

export class Mesh {
  /**
   * media: LocalMedia; send(signal); onRemote(endpoint, MediaStream | null) when a remote
   * endpoint's media appears or goes; onState(endpoint, connectionState).
   */
  constructor({ media, send, onRemote, onState = () => {} }) {
    this.media = media;
    this.send = send;
    this.onRemote = onRemote;
    this.onState = onState;
    this.self = null;
    this.iceServers = [];
    this.peers = new Map();
    this.away = new Set();
    this.eager = false;
    this.early = [];
    this.watchdog = setInterval(() => {
      const now = Date.now();
      for (const peer of this.peers.values()) { peer.checkStuck(now); }
    }, 2000);
  }

  /** After every welcome: who we are now, and whether the connections should start over. */
  welcome(welcome) {
    const fresh = welcome.endpoint !== this.self;
    // A reloaded page resuming its endpoint: the others still hold connections to the page
    // that went away and will not offer, so this side offers whatever its politeness.
    this.eager = welcome.resumed && fresh;
    this.iceServers = welcome.ice_servers || [];
    if (fresh) { this.closeAll(); }
    this.self = welcome.endpoint;
    if (!fresh) { for (const peer of this.peers.values()) { peer.restored(); } }
    for (const signal of this.early.splice(0)) { this.deliver(signal); }
  }

  /** One connection per other connected endpoint of the call; none while waiting. */
  reconcile(room) {
    const others = new Map(room.admitted
      ? room.endpoints.filter((e) => e.endpoint !== room.you).map((e) => [e.endpoint, e])
      : []);
    for (const remote of [...this.peers.keys()]) {
      if (!others.has(remote)) { this._drop(remote); }
    }
    for (const [remote, view] of others) {
      if (!view.connected) {
        // Its connection stays (media may flow on while its signaling reconnects), but it
        // gets no new one: nobody would answer the offer.
        this.away.add(remote);
        continue;
      }
      const peer = this.peers.get(remote);
      if (!peer) { this.peers.set(remote, new Peer(this, remote, { eager: this.eager })); }
      else if (this.away.has(remote)) { peer.restored(); }
      this.away.delete(remote);
    }
    if (room.admitted) { this.eager = false; }
  }

  deliver(signal) {
    if (!this.self) {
      // Before our welcome (a resumed page): the others may already be offering.
      if (this.early.length < 256) { this.early.push(signal); }
      return;
    }
    const from = signal.from;
    let peer = this.peers.get(from);
    if (!peer && this.self && from) {
      // The server relays only between admitted endpoints: the view saying so may not be
      // here yet (events from another node are not ordered with ours).
      peer = new Peer(this, from);
      this.peers.set(from, peer);
    }
    if (peer) { peer.deliver(signal); }
  }

  replaceTrack(kind, track) {
    for (const peer of this.peers.values()) { peer.replaceTrack(kind, track); }
  }

  /** {endpoint: {rttMs, packetsLost, fps, framesDecoded, videoWidth, state}} */
  async stats() {
    const out = {};
    await Promise.all([...this.peers].map(async ([remote, peer]) => {
      try {
        out[remote] = {
          ...(await quality(peer.pc)),
          state: peer.pc.connectionState,
          signaling: peer.pc.signalingState,
          ice: peer.pc.iceConnectionState,
          polite: peer.polite,
        };
      } catch (_) {
        out[remote] = { state: peer.pc.connectionState };
      }
    }));
    return out;
  }

  /** What this device uploads: one connection, one video stream per other endpoint. */
  async uploads() {
    const out = { connections: this.peers.size, receiving: this.peers.size, videoSources: 0, videoLayers: 0, audioStreams: 0 };
    await Promise.all([...this.peers.values()].map(async (peer) => {
      (await peer.pc.getStats()).forEach((s) => {
        if (s.type !== "outbound-rtp" || !(s.bytesSent > 0)) { return; }
        if (s.kind === "video") { out.videoSources += 1; out.videoLayers += 1; } else if (s.kind === "audio") { out.audioStreams += 1; }
      });
    }));
    return out;
  }

  closeAll() {
    for (const remote of [...this.peers.keys()]) { this._drop(remote); }
    this.away.clear();
  }

  _drop(remote) {
    const peer = this.peers.get(remote);
    this.peers.delete(remote);
    this.away.delete(remote);
    if (peer) { peer.close(); }
    this.onRemote(remote, null);
  }
}
