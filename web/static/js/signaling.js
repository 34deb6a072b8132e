// The signaling connection (docs/protocol.md): connect with the link token, take the pushed
// `welcome`, keep the newest room view, and come back after a network drop with the newest
// resume credential.
//
// Events (this is an EventTarget; each event's `detail`):
//   "state"    {state: "connecting" | "connected" | "reconnecting" | "closed"}
//   "welcome"  {welcome, resumed}        after every (re)connect
//   "room"     {room}                    a newer room view
//   "signal"   {signal}                  relayed SDP or ICE from another endpoint
//   "media_offer" {description, streams}  the forwarder's subscription offer (group sessions)
//   "media_reset" {reason}               the forwarder lost this endpoint's media: publish again
//   "bye"      {reason, detail}          the server closed this endpoint for good
//   "moved"    {}                        resumed on another node (ours shut down)
//   "refused"  {error, detail}           the server will not let this link in (final)

const PROTOCOL_VERSION = 1;
const ACK_TIMEOUT_MS = 10000;
/** Refusals of a resume after which joining afresh with the link may still work. */
const JOIN_AGAIN = new Set(["resume_expired", "token_invalid", "endpoint_not_found"]);

export class Signaling extends EventTarget {
  constructor(token, { storageKey, takeover = false } = {}) {
    super();
    this.token = token;
    // The person chose "Continue here": the join moves their other window's endpoint here.
    this.takeover = takeover;
    this.storageKey = storageKey;
    this.welcome = null;
    this.room = null;
    this.state = "idle";
    this.byeReason = null;
    this.socket = null;
    this._resume = storageKey ? sessionStorage.getItem(storageKey) : null;
    this._usedResume = false;
    this._closedByServer = false;
    this._leaving = null;  // the socket of a node that is shutting down, until we are back
  }

  /** Whether this tab holds a resume credential (it was in the session moments ago). */
  static stored(storageKey) { return Boolean(sessionStorage.getItem(storageKey)); }

  get endpoint() { return this.welcome ? this.welcome.endpoint : null; }
  get connected() { return Boolean(this.socket && this.socket.connected && this.welcome); }

  connect() {
    const io = window.io;
    if (typeof io !== "function") {
      this._fail("assets_missing", "The page's files are incomplete (the socket.io client is missing).");
      return;
    }
    this._setState("connecting");
    this.socket = this._open();
  }

  /** A socket.io connection. Views and signals count from any of ours (the one of a node
   * shutting down may still deliver some); everything else only from the current one. */
  _open() {
    const io = window.io;
    const s = io({
      transports: ["websocket"],
      // Called before every (re)connection: after a welcome, resume the same endpoint.
      auth: (cb) => {
        this._usedResume = Boolean(this._resume);
        cb(this._resume ? { v: PROTOCOL_VERSION, resume: this._resume }
          : { v: PROTOCOL_VERSION, token: this.token, ...(this.takeover ? { takeover: true } : {}) });
      },
      reconnectionDelay: 500,
      reconnectionDelayMax: 4000,
      randomizationFactor: 0.3,
      timeout: 10000,
    });
    const current = (fn) => (...args) => { if (s === this.socket) { fn(...args); } };
    // The server pushes `welcome`, then the first `room`, as it accepts the connection.
    s.on("welcome", current((welcome) => this._welcomed(welcome)));
    s.on("connect_error", current((err) => this._refused(err)));
    s.on("disconnect", (reason) => this._dropped(s, reason));
    s.on("room", (room) => this._room(room));
    s.on("room_delta", (delta) => this._delta(s, delta));
    s.on("signal", (signal) => this.dispatchEvent(new CustomEvent("signal", { detail: { signal } })));
    for (const event of ["media_offer", "media_reset"]) {
      s.on(event, current((data) => this.dispatchEvent(new CustomEvent(event, { detail: data }))));
    }
    s.on("bye", current((bye) => this._bye(bye)));
    s.on("moving", current(() => this._move()));
    s.io.on("reconnect_attempt", current(() => { if (this.state !== "closed") { this._setState("reconnecting"); } }));
    return s;
  }

  /** Our node is shutting down (docs/protocol.md, "Node shutdown"): resume through the same
   * address, which reaches a node that stays, while this connection still serves; the new
   * node takes the endpoint over, so the call has no gap. The old one closes once we are back. */
  _move() {
    if (this.state === "closed" || !this._resume) { return; }
    this._leaving = this.socket;
    this._leaving.io.opts.reconnection = false;
    this.socket = this._open();
  }

  _dropped(s, reason) {
    if (s === this.socket) { this._lost(reason); return; }
    // The old node closed us before the new one welcomed us: we are between nodes.
    if (s === this._leaving && !this.connected && this.state !== "closed") { this._setState("reconnecting"); }
  }

  /** Send a client event; resolves to its ack ({ok: true, ...} or {error, detail}). */
  async call(event, data = {}) {
    if (!this.connected) {
      return { error: "not_connected", detail: "Not connected right now. Try again in a moment." };
    }
    try {
      return await this.socket.timeout(ACK_TIMEOUT_MS).emitWithAck(event, data);
    } catch (_) {
      return { error: "timeout", detail: "The server did not answer in time." };
    }
  }

  /** Relay SDP or ICE; dropped while disconnected (stale by the time we are back). */
  signal(message) {
    if (!this.connected) { return; }
    this.socket.emit("signal", message, (reply) => {
      if (reply && reply.error) { console.debug("signal refused:", reply.error, reply.detail); }
    });
  }

  async leave() {
    const reply = await this.call("leave");
    this._close("left");
    return reply;
  }

  close() { this._close(null); }

  // --- socket.io ----------------------------------------------------------------------

  _welcomed(welcome) {
    if (!welcome || welcome.v !== PROTOCOL_VERSION) {
      this._fail("version", "This page is out of date. Reload it.");
      return;
    }
    this.welcome = welcome;
    this._closedByServer = false;
    if (this._leaving) {
      this._leaving.disconnect();
      this._leaving = null;
      this.dispatchEvent(new CustomEvent("moved", { detail: {} }));
    }
    this._remember(welcome.resume);  // rotated on every resume: always keep the newest
    this._reannounce = true;  // the view that follows is announced even at the same version
    this._setState("connected");
    this.dispatchEvent(new CustomEvent("welcome", { detail: { welcome, resumed: welcome.resumed } }));
  }

  _room(room) {
    // Views from different nodes may arrive out of order: the highest version wins. After a
    // welcome the view is re-announced even at the same version (the page may have reset).
    const force = this._reannounce;
    this._reannounce = false;
    const newer = !this.room || room.version > this.room.version;
    if (!newer && !force) { return; }
    if (newer) { this.room = room; }
    room = this.room;
    this.dispatchEvent(new CustomEvent("room", { detail: { room } }));
  }

  /** A change to our view (docs/protocol.md): applied on top of the view we hold, or, when it
   * does not fit it (a missed or reordered message), the whole view is asked for again. */
  _delta(s, delta) {
    if (this.room && delta.version <= this.room.version) { return; }  // late
    const room = this.room && applyDelta(this.room, delta);
    if (room) { this._room(room); return; }
    s.timeout(ACK_TIMEOUT_MS).emit("hello", {}, (err, reply) => {
      if (!err && reply && reply.room) { this._room(reply.room); }
    });
  }

  _refused(err) {
    const data = err && err.data;
    if (!data || !data.error) { return; }  // the network, not the server: socket.io retries
    if (this._usedResume && this._closedByServer && data.error === "token_invalid") {
      // The server closed us and our credential no longer works: another tab of this
      // browser resumed this endpoint (a duplicated tab shares the credential). Stay out.
      this._close("replaced");
      return;
    }
    if (this._usedResume && JOIN_AGAIN.has(data.error)) {
      // Away too long (or the credential is gone): join again with the link itself.
      this._remember(null);
      this.socket.connect();
      return;
    }
    this._fail(data.error, data.detail || "");
  }

  _lost(reason) {
    if (this.state === "closed") { return; }
    this._setState("reconnecting");
    this._closedByServer = reason === "io server disconnect";
    if (this._closedByServer) {
      // socket.io does not come back by itself from a server-side close: ask to resume.
      this.socket.connect();
    }
  }

  _bye(bye) {
    this.byeReason = bye.reason;
    this._close(bye.reason, bye.detail || "");
  }

  _close(reason, detail = "") {
    if (this.state === "closed") { return; }
    this._setState("closed");
    this._remember(null);
    for (const s of [this.socket, this._leaving]) {
      if (s) { s.io.opts.reconnection = false; s.disconnect(); }
    }
    this._leaving = null;
    if (reason) { this.dispatchEvent(new CustomEvent("bye", { detail: { reason, detail } })); }
  }

  _fail(error, detail) {
    this._close(null);
    this.dispatchEvent(new CustomEvent("refused", { detail: { error, detail } }));
  }

  _remember(resume) {
    this._resume = resume;
    if (!this.storageKey) { return; }
    if (resume) { sessionStorage.setItem(this.storageKey, resume); }
    else { sessionStorage.removeItem(this.storageKey); }
  }

  _setState(state) {
    if (this.state === state) { return; }
    this.state = state;
    this.dispatchEvent(new CustomEvent("state", { detail: { state } }));
  }
}

/** `view` with `delta` applied, or null when it does not apply (signaling/deltas.py). */
export function applyDelta(view, delta) {
  if (view.you !== delta.you || !(delta.base <= view.version && view.version < delta.version)) {
    return null;
  }
  const gone = new Set(delta.gone);
  const byId = new Map(view.endpoints.filter((e) => !gone.has(e.endpoint)).map((e) => [e.endpoint, e]));
  for (const e of delta.endpoints) { byId.set(e.endpoint, e); }
  const waitingGone = new Set(delta.waiting_gone);
  const waiting = new Map(view.waiting.map((e) => [e.endpoint, e]));
  for (const e of delta.waiting) { waiting.set(e.endpoint, e); }
  let order = delta.waiting_order;
  if (!order) {
    order = view.waiting.map((e) => e.endpoint).filter((id) => !waitingGone.has(id));
    const known = new Set(order);
    for (const e of delta.waiting) { if (!known.has(e.endpoint)) { order.push(e.endpoint); } }
  }
  return {
    version: delta.version, status: delta.status, locked: delta.locked, you: delta.you,
    admitted: delta.admitted,
    endpoints: [...byId.keys()].sort().map((id) => byId.get(id)),
    waiting: order.map((id) => waiting.get(id)),
    departed: delta.departed ?? view.departed ?? [],
  };
}
