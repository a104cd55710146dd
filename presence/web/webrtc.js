// The WebRTC transport (?transport=webrtc; docs/protocol.md, "WebRTC"). The microphone and the
// reply travel as Opus over RTP through the browser's own media stack (echo cancellation, noise
// suppression, DTX, and the NetEQ jitter buffer for playout); events and animation ride two data
// channels as protocol frames. It calls the same handlers as SessionConnection, and it is the
// page's clock for the mouth: getSynchronizationSources() says which RTP timestamp is being
// played, and the server's `rtp_clock` event maps RTP timestamps to the output timeline.

import { decode, describeClose, FrameType, ProtocolError, Sequencer } from "./protocol.js";
import { sessionToken, withToken } from "./session.js";

export const RATE = 48000;
const PING_EVERY_MS = 1000;
const REPORT_EVERY_MS = 100;
const FRESH_MS = 100; // a synchronization source older than this: nothing is playing

/** Opus with DTX: the answer's fmtp asks this browser to stop sending in silence. */
export function withDtx(sdp) {
  const pt = /a=rtpmap:(\d+) opus\/48000/i.exec(sdp)?.[1];
  if (!pt) return sdp;
  const fmtp = new RegExp(`^a=fmtp:${pt} (.*)$`, "m");
  if (fmtp.test(sdp)) return /usedtx=1/.test(sdp) ? sdp : sdp.replace(fmtp, (line) => `${line};usedtx=1`);
  return sdp.replace(new RegExp(`^(a=rtpmap:${pt} .*)$`, "m"), `$1\r\na=fmtp:${pt} usedtx=1`);
}

/** Which output-timeline sample is heard at `nowMs`, from a synchronization source. */
export function heardSample(source, origin, nowMs, timeOrigin = performance.timeOrigin) {
  if (!source || origin === null) return null;
  // Chrome stamps sources on the epoch clock; the spec's is the page's performance clock.
  const playedMs = source.timestamp > 1e12 ? source.timestamp - timeOrigin : source.timestamp;
  const age = nowMs - playedMs;
  if (age > FRESH_MS || age < -FRESH_MS) return null;
  return ((source.rtpTimestamp - origin) >>> 0) + (Math.max(0, age) * RATE) / 1000;
}

/**
 * Muted since an interrupt, NetEQ plays out what it held of the cut reply unheard; the server
 * flushed the rest and said where what it had sent ends (`sent_until`). Unmute when a packet
 * from there on plays: the next reply. `played` is the timeline sample of the packet playing.
 */
export function unmuteAfterCut(cut, played) {
  return played !== null && played >= cut.sentUntil;
}

/** Timeline sample at the start of the packet playing (no extrapolation), or null. */
export function playedSample(source, origin) {
  return source && origin !== null ? (source.rtpTimestamp - origin) >>> 0 : null;
}

export class WebRtcSession {
  constructor({ hello, handlers, stream = null, processing = true, onFirstAudio = () => {} }) {
    this.hello = hello;
    this.mic = stream; // the page's capture stream, else one of its own
    this.h = handlers;
    this.processing = processing;
    this.onFirstAudio = onFirstAudio;
    this.token = new URLSearchParams(location.search).get("token");
    this.sampleRate = RATE;
    this.origin = null; // RTP timestamp of output-timeline sample 0 (the server's rtp_clock event)
    this.agreement = null;
    this.seq = new Sequencer();
    this.loudness = []; // {perfMs, rms}: what the remote track carries, 10 ms by 10 ms
    this.net = {}; // RTT, jitter, loss from getStats()
    this.cut = null; // {at, sentUntil} from an interrupt until the next reply plays
    this.wasHeard = false;
    this.running = false;
  }

  async connect() {
    this.h.onStatus({ state: "connecting", message: "connecting (WebRTC)…" });
    const token = await sessionToken(this.token);
    const p = this.processing;
    this.mic ??= await navigator.mediaDevices.getUserMedia({
      audio: { channelCount: 1, echoCancellation: p, noiseSuppression: p, autoGainControl: p },
    });
    const pc = new RTCPeerConnection();
    this.pc = pc;
    this.events = pc.createDataChannel("events", { negotiated: true, id: 0 });
    this.animation = pc.createDataChannel("animation", { negotiated: true, id: 1, ordered: false, maxRetransmits: 0 });
    for (const channel of [this.events, this.animation]) {
      channel.binaryType = "arraybuffer";
      channel.onmessage = (e) => this.#onMessage(e.data);
    }
    this.events.onopen = () => this.#startTimers();
    pc.addTransceiver(this.mic.getAudioTracks()[0], { direction: "sendrecv" });
    pc.ontrack = (e) => this.#play(e);
    pc.onconnectionstatechange = () => {
      if (pc.connectionState === "failed" || pc.connectionState === "closed") this.#ended(1001, `peer connection ${pc.connectionState}`);
    };
    await pc.setLocalDescription(await pc.createOffer());
    await this.#gathered();
    const answer = await fetch(withToken(new URL("/v1/webrtc", location.href).toString(), token), {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ type: "offer", sdp: pc.localDescription.sdp, hello: this.hello }),
    });
    const body = await answer.json().catch(() => ({ code: 1011, reason: `HTTP ${answer.status}` }));
    if (answer.status !== 201) {
      this.#ended(body.code, body.reason);
      throw new Error(describeClose(body.code, body.reason));
    }
    await pc.setRemoteDescription({ type: "answer", sdp: withDtx(body.sdp) });
    this.agreement = body.hello;
    this.running = true;
    this.h.onHello(body.hello);
    this.h.onStatus({ state: "open", message: `connected (${body.hello.engine} engine, WebRTC)` });
  }

  /** Non-trickle ICE: the offer goes out with its candidates. */
  #gathered() {
    const pc = this.pc;
    if (pc.iceGatheringState === "complete") return Promise.resolve();
    return new Promise((resolve) => {
      pc.addEventListener("icegatheringstatechange", () => pc.iceGatheringState === "complete" && resolve());
    });
  }

  /** The browser plays the reply (NetEQ); an analyser on the same track measures it. */
  #play(e) {
    this.receiver = e.receiver;
    const stream = new MediaStream([e.track]);
    this.audio = new Audio();
    this.audio.autoplay = true;
    this.audio.srcObject = stream;
    this.audio.play().catch(() => {});
    this.context = new AudioContext();
    const analyser = this.context.createAnalyser();
    analyser.fftSize = 512;
    this.context.createMediaStreamSource(stream).connect(analyser);
    const buf = new Float32Array(analyser.fftSize);
    this.meter = setInterval(() => {
      analyser.getFloatTimeDomainData(buf);
      let sum = 0;
      for (const x of buf) sum += x * x;
      this.loudness.push({ perfMs: performance.now(), rms: Math.sqrt(sum / buf.length) });
      if (this.loudness.length > 6000) this.loudness.splice(0, 1000);
    }, 10);
  }

  #onMessage(data) {
    const now = performance.now();
    let frame;
    try {
      frame = decode(data);
    } catch (err) {
      if (err instanceof ProtocolError) return this.#ended(err.closeCode, err.message);
      throw err;
    }
    switch (frame.type) {
      case FrameType.ANIMATION:
        this.h.onAnimation(frame);
        break;
      case FrameType.EVENT:
        this.#onEvent(frame.body, now);
        break;
      case FrameType.PING:
        this.#send({ type: FrameType.PONG, echoTimestamp: frame.timestamp, receivedAt: Math.round(now * 1000), timestamp: Math.round(now * 1000) });
        break;
      case FrameType.PONG:
        this.rttMs = now - frame.echoTimestamp / 1000;
        this.h.onRtt(this.rttMs);
        break;
      default: // SERVER_HELLO: already in the answer
    }
  }

  #onEvent(body, now) {
    switch (body.type) {
      case "rtp_clock":
        this.origin = body.origin;
        break;
      case "interrupt":
        // The server dropped what it had queued; what is already in NetEQ must not be heard.
        if (this.audio) this.audio.muted = true;
        this.cut = { at: body.cut_at, sentUntil: body.sent_until ?? body.cut_at };
        break;
      case "close":
        this.#ended(body.code, body.reason);
        break;
    }
    this.h.onEvent(body, now);
  }

  /** Output-timeline sample being heard now, or null when nothing plays (or it is muted). */
  heardTimeline(nowMs) {
    if (!this.receiver) return null;
    const source = this.receiver.getSynchronizationSources()[0];
    const raw = heardSample(source, this.origin, nowMs);
    if (this.cut !== null && raw !== null && unmuteAfterCut(this.cut, playedSample(source, this.origin))) {
      this.cut = null;
      this.audio.muted = false;
    }
    const ts = this.cut === null ? raw : null;
    if (ts !== null && !this.wasHeard) this.onFirstAudio({ scheduledAtMs: nowMs, heardAtMs: nowMs });
    this.wasHeard = ts !== null;
    return ts;
  }

  #startTimers() {
    const ping = () => this.#send({ type: FrameType.PING, timestamp: Math.round(performance.now() * 1000) });
    this.pinger = setInterval(ping, PING_EVERY_MS);
    ping();
    let last = null;
    this.reporter = setInterval(() => {
      const heard = this.heardTimeline(performance.now());
      if (heard !== null && heard !== last) this.sendEvent({ type: "playback", heard_until: Math.floor(heard) });
      last = heard;
    }, REPORT_EVERY_MS);
    this.statser = setInterval(() => this.#readStats(), 1000);
  }

  async #readStats() {
    const stats = await this.pc.getStats();
    for (const s of stats.values()) {
      if (s.type === "candidate-pair" && s.nominated && s.currentRoundTripTime !== undefined) this.net.rttMs = s.currentRoundTripTime * 1000;
      if (s.type === "inbound-rtp" && s.kind === "audio") {
        this.net.jitterMs = (s.jitter ?? 0) * 1000;
        const lost = s.packetsLost ?? 0;
        this.net.lossPct = (100 * lost) / Math.max(1, lost + (s.packetsReceived ?? 0));
        this.net.concealmentEvents = s.concealmentEvents ?? 0;
        // Silent concealment is NetEQ filling the pauses between replies: only the audible
        // part stands for lost or late packets.
        const audible = (s.concealedSamples ?? 0) - (s.silentConcealedSamples ?? 0);
        this.net.concealedMs = (1000 * audible) / RATE;
        this.net.concealedPct = (100 * audible) / Math.max(1, s.totalSamplesReceived ?? 0);
        this.net.bufferMs = s.jitterBufferEmittedCount ? (1000 * s.jitterBufferDelay) / s.jitterBufferEmittedCount : null;
      }
    }
  }

  /** What the HUD shows for this transport. */
  hudStats(micState) {
    return { transport: "webrtc", ...this.net, rttMs: this.net.rttMs ?? this.rttMs, micState };
  }

  #send(frame) {
    if (this.events?.readyState === "open") this.events.send(this.seq.stamp(frame));
  }

  sendEvent(body) {
    this.#send({ type: FrameType.EVENT, body });
  }

  #ended(code, reason) {
    if (this.closed) return;
    this.closed = true;
    this.running = false;
    for (const timer of [this.pinger, this.reporter, this.statser, this.meter]) clearInterval(timer);
    this.h.onStatus({ state: "closed", message: `session closed — ${describeClose(code, reason)}` });
  }

  close() {
    this.#ended(1000, "bye");
    this.mic?.getTracks().forEach((t) => t.stop());
    this.pc?.close();
  }
}
