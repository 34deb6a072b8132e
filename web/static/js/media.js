// This device's camera and microphone: one MediaStream shared by the preview and every peer
// connection, device choice, the person's own mute, and a clinician's mute on top of it.

const VIDEO = { width: { ideal: 640 }, height: { ideal: 480 }, frameRate: { ideal: 24, max: 30 } };

/** Why media could not be had, as a word the page turns into advice. */
function problemOf(error) {
  switch (error && error.name) {
    case "NotAllowedError": case "SecurityError": return "denied";
    case "NotFoundError": case "OverconstrainedError": return "missing";
    case "NotReadableError": case "AbortError": return "busy";
    default: return navigator.mediaDevices ? "failed" : "unsupported";
  }
}

export class LocalMedia {
  constructor() {
    this.stream = new MediaStream();
    this.micOn = true;        // the person's own choice
    this.cameraOn = true;
    this.clinicianMuted = false;
    /** The camera's size and rate (a group through the forwarder asks for more: forwarded.js). */
    this.videoConstraints = VIDEO;
    /** "denied" | "missing" | "busy" | "failed" | "unsupported" per kind, or null. */
    this.problems = { audio: null, video: null };
  }

  get audio() { return this.stream.getAudioTracks()[0] || null; }
  get video() { return this.stream.getVideoTracks()[0] || null; }
  /** What the endpoint sends, for the `modality` event. */
  get modality() { return this.video && this.cameraOn ? "video" : "audio"; }

  /** Ask for both devices; fall back to either one alone. Never throws. */
  async open(choice = {}) {
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
      this.problems = { audio: "unsupported", video: "unsupported" };
      return;
    }
    const audio = choice.audio ? { deviceId: { exact: choice.audio } } : true;
    const video = choice.video ? { ...this.videoConstraints, deviceId: { exact: choice.video } } : this.videoConstraints;
    this.stop();
    try {
      this._use(await navigator.mediaDevices.getUserMedia({ audio, video }));
      this.problems = { audio: null, video: null };
      return;
    } catch (error) {
      if (problemOf(error) === "denied") {
        this.problems = { audio: "denied", video: "denied" };
        return;
      }
    }
    // One of the two is missing or busy: find out which, and keep the one that works.
    this.problems = { audio: null, video: null };
    for (const kind of ["audio", "video"]) {
      try {
        this._use(await navigator.mediaDevices.getUserMedia({ [kind]: kind === "audio" ? audio : video }));
      } catch (error) {
        this.problems[kind] = problemOf(error);
      }
    }
  }

  /** Switch one device; returns the new track (for the peer connections) or null. */
  async switchDevice(kind, deviceId) {
    const constraints = kind === "audio"
      ? { audio: { deviceId: { exact: deviceId } } }
      : { video: { ...this.videoConstraints, deviceId: { exact: deviceId } } };
    const fresh = await navigator.mediaDevices.getUserMedia(constraints);
    const track = fresh.getTracks()[0];
    const old = kind === "audio" ? this.audio : this.video;
    if (old) { this.stream.removeTrack(old); old.stop(); }
    this.stream.addTrack(track);
    this.problems[kind] = null;
    this._apply();
    return track;
  }

  /** Another size or rate for the camera, now and after a device switch; never throws. */
  async setVideoConstraints(constraints) {
    this.videoConstraints = constraints;
    const track = this.video;
    if (!track) { return; }
    try {
      await track.applyConstraints({ ...constraints, deviceId: track.getSettings().deviceId });
    } catch (_) { /* the camera keeps the size it has */ }
  }

  /** Labelled inputs, for the pickers (labels are known once permission was given). */
  async devices() {
    if (!navigator.mediaDevices || !navigator.mediaDevices.enumerateDevices) { return { audio: [], video: [] }; }
    const all = await navigator.mediaDevices.enumerateDevices();
    const pick = (kind, word) => all.filter((d) => d.kind === kind && d.deviceId)
      .map((d, i) => ({ value: d.deviceId, label: d.label || word + " " + (i + 1) }));
    return { audio: pick("audioinput", "Microphone"), video: pick("videoinput", "Camera") };
  }

  deviceId(kind) {
    const track = kind === "audio" ? this.audio : this.video;
    return track ? track.getSettings().deviceId : undefined;
  }

  setMic(on) { this.micOn = on; this._apply(); }
  setCamera(on) { this.cameraOn = on; this._apply(); }
  /** A clinician's mute silences the microphone whatever the person chose. */
  setClinicianMuted(muted) { this.clinicianMuted = muted; this._apply(); }
  get sendingAudio() { return Boolean(this.audio) && this.micOn && !this.clinicianMuted; }

  stop() {
    for (const track of this.stream.getTracks()) { track.stop(); this.stream.removeTrack(track); }
  }

  _use(stream) {
    for (const track of stream.getTracks()) {
      const old = track.kind === "audio" ? this.audio : this.video;
      if (old) { this.stream.removeTrack(old); old.stop(); }
      this.stream.addTrack(track);
    }
    this._apply();
  }

  _apply() {
    if (this.audio) { this.audio.enabled = this.sendingAudio; }
    if (this.video) { this.video.enabled = this.cameraOn; }
  }
}

/** The microphone level, 0..1, from a WebAudio AnalyserNode, drawn into a <meter>. */
export class LevelMeter {
  constructor(meter) {
    this.meter = meter;
    this.context = null;
    this.source = null;
    this.frame = 0;
  }

  attach(track) {
    this.detach();
    const Context = window.AudioContext || window.webkitAudioContext;
    if (!track || !Context) { return; }
    this.context = this.context || new Context();
    // Autoplay rules may start the context suspended until the person touches the page.
    if (this.context.state === "suspended") {
      const wake = () => this.context && this.context.resume();
      document.addEventListener("pointerdown", wake, { once: true });
      document.addEventListener("keydown", wake, { once: true });
      this.context.resume().catch(() => {});
    }
    const analyser = this.context.createAnalyser();
    analyser.fftSize = 512;
    this.source = this.context.createMediaStreamSource(new MediaStream([track]));
    this.source.connect(analyser);
    const samples = new Uint8Array(analyser.fftSize);
    const draw = () => {
      analyser.getByteTimeDomainData(samples);
      let sum = 0;
      for (const s of samples) { const x = (s - 128) / 128; sum += x * x; }
      // RMS of speech sits around 0.05-0.3: stretch it so talking fills most of the bar.
      this.meter.value = Math.min(1, Math.sqrt(sum / samples.length) * 4);
      this.frame = requestAnimationFrame(draw);
    };
    draw();
  }

  detach() {
    cancelAnimationFrame(this.frame);
    if (this.source) { this.source.disconnect(); this.source = null; }
    this.meter.value = 0;
  }

  close() {
    this.detach();
    if (this.context) { this.context.close().catch(() => {}); this.context = null; }
  }
}
