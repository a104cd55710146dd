// Reply audio on the one clock: jitter buffer → context frames → playout worklet, and the
// mapping back from "what is being heard now" to the output timeline for the avatar.
//
// The AudioContext runs at the output rate (24 kHz), so a timeline sample is a context frame
// plus a per-segment integer offset: chunks of a reply are placed sample-exactly. The only
// float conversion is at a segment's anchor: the jitter buffer says when (performance clock)
// its first sample must be heard, and AudioContext.getOutputTimestamp() turns that into a
// context frame. The same map, read backwards, gives the timeline sample being heard at any
// performance time; rendering the mouth from it keeps lips on the sound whatever the buffer
// depth, network delay or output latency.

import { JitterBuffer, SEGMENT_END, SEGMENT_START } from "./jitterbuffer.js";
import { s16leToFloat } from "./protocol.js";

const SCHEDULE_MARGIN_S = 0.012; // the worklet gets chunks through a message port: leave it time

export class Playback {
  constructor({ sampleRate = 24000, onFirstAudio = () => {}, jitter = {} } = {}) {
    this.sampleRate = sampleRate;
    this.onFirstAudio = onFirstAudio;
    this.jitter = new JitterBuffer({ sampleRate, ...jitter });
    this.pieces = []; // {tsStart, tsEnd, offset}: frame = ts + offset, for heard-position lookup
    this.status = { underruns: 0, queued: 0, frame: 0 };
    this.loudness = []; // {perfMs, rms, ts}: 10 ms steps of scheduled reply audio (for measurements)
    this.context = null;
  }

  /** Create the context and the worklet. Call from page code (not a user gesture in tests). */
  async start() {
    this.context = new AudioContext({ sampleRate: this.sampleRate, latencyHint: "interactive" });
    await this.context.audioWorklet.addModule(new URL("./playout-worklet.js", import.meta.url));
    this.node = new AudioWorkletNode(this.context, "presence-playout", { numberOfOutputs: 1, outputChannelCount: [1] });
    this.node.connect(this.context.destination);
    this.node.port.onmessage = (e) => {
      if (e.data.type === "status") this.status = e.data;
    };
    if (this.context.state !== "running") await this.context.resume().catch(() => {});
  }

  get running() {
    return this.context?.state === "running";
  }

  async resume() {
    if (this.context && this.context.state !== "running") await this.context.resume();
  }

  /** Context time (s) ↔ performance time (ms) of what is heard, from the hardware's own report. */
  #outputStamp() {
    const ctx = this.context;
    const stamp = ctx.getOutputTimestamp();
    if (stamp.performanceTime > 0) return stamp;
    // Before the first render callback: estimate from the declared latencies.
    const latency = (ctx.baseLatency || 0) + (ctx.outputLatency || 0);
    return { contextTime: ctx.currentTime - latency, performanceTime: performance.now() };
  }

  /** Performance time (ms) at which context time `t` (s) is heard. */
  heardPerfMs(t, stamp = this.#outputStamp()) {
    return stamp.performanceTime + (t - stamp.contextTime) * 1000;
  }

  /**
   * Set the output timeline's rate (24 kHz PCM, 48 kHz for Opus) before or after `start`:
   * a running context at another rate is replaced.
   */
  async setSampleRate(rate) {
    if (rate === this.sampleRate) return;
    this.sampleRate = rate;
    this.jitter = new JitterBuffer({ ...this.jitter.options, sampleRate: rate });
    this.pieces = [];
    if (this.context) {
      await this.context.close().catch(() => {});
      this.context = null;
      await this.start();
    }
  }

  /** One PCM AUDIO_OUT frame (decoded by protocol.js), received at `nowMs`. */
  push(frame, nowMs) {
    this.pushSamples({ samples: s16leToFloat(frame.data), timestamp: frame.timestamp, flags: frame.flags, nowMs });
  }

  /** Decoded reply audio: `samples` start at timeline sample `timestamp`; arrived at `nowMs`. */
  pushSamples({ samples, timestamp, flags, nowMs }) {
    if (!this.context || !this.node) return; // between contexts (a rate change): nothing to play on
    const frame = { timestamp, flags };
    if (samples.length === 0) {
      // A reply may end with an empty frame carrying SEGMENT_END: its audio ends where it is.
      if (frame.flags & SEGMENT_END) this.node.port.postMessage({ type: "end" });
      return;
    }
    const stamp = this.#outputStamp();
    const leadMs = this.heardPerfMs(this.context.currentTime + SCHEDULE_MARGIN_S, stamp) - nowMs;
    const decision = this.jitter.push({ ts: frame.timestamp, samples: samples.length, flags: frame.flags }, nowMs, leadMs);
    if (decision.kind !== "play") return;
    let piece = this.pieces[this.pieces.length - 1];
    if (decision.reanchored || !piece) {
      const t = stamp.contextTime + (decision.playMs - stamp.performanceTime) / 1000;
      const frameAt = Math.max(Math.ceil(this.context.currentTime * this.sampleRate), Math.round(t * this.sampleRate));
      let offset = frameAt - frame.timestamp;
      // A reply that continues the previous one keeps its exact offset: no 1-frame overlap or gap.
      if (piece && Math.abs(offset - piece.offset) <= 2 && frame.timestamp >= piece.tsEnd) offset = piece.offset;
      piece = { tsStart: frame.timestamp, tsEnd: frame.timestamp, offset };
      this.pieces.push(piece);
      if (this.pieces.length > 64) this.pieces.shift();
    }
    const startFrame = frame.timestamp + piece.offset;
    piece.tsEnd = Math.max(piece.tsEnd, frame.timestamp + samples.length);
    piece.tsStart = Math.min(piece.tsStart, frame.timestamp);
    const last = (frame.flags & SEGMENT_END) !== 0;
    this.node.port.postMessage({ type: "chunk", start: startFrame, samples, last });
    const heardMs = this.heardPerfMs(startFrame / this.sampleRate, stamp);
    this.#noteLoudness(samples, frame.timestamp, heardMs);
    if (frame.flags & SEGMENT_START) this.onFirstAudio({ ts: frame.timestamp, scheduledAtMs: nowMs, heardAtMs: heardMs });
  }

  #noteLoudness(samples, ts, heardMs) {
    const step = this.sampleRate / 100;
    for (let i = 0; i + step <= samples.length; i += step) {
      let sum = 0;
      for (let k = i; k < i + step; k++) sum += samples[k] * samples[k];
      this.loudness.push({ perfMs: heardMs + (i * 1000) / this.sampleRate, rms: Math.sqrt(sum / step), ts: ts + i });
    }
    if (this.loudness.length > 6000) this.loudness.splice(0, this.loudness.length - 6000);
  }

  /** The output-timeline sample heard at performance time `nowMs`, or null between replies. */
  heardTimeline(nowMs) {
    if (!this.context) return null;
    const stamp = this.#outputStamp();
    const frame = (stamp.contextTime + (nowMs - stamp.performanceTime) / 1000) * this.sampleRate;
    for (let i = this.pieces.length - 1; i >= 0; i--) {
      const p = this.pieces[i];
      const ts = frame - p.offset;
      if (ts >= p.tsStart && ts < p.tsEnd) return ts;
    }
    return null;
  }

  /** Interruption at timeline sample `cutAt`: drop queued audio from there on. */
  cut(cutAt) {
    this.jitter.cut(cutAt);
    let frame = null;
    for (const p of this.pieces) {
      if (cutAt < p.tsEnd) {
        frame = Math.max(p.tsStart, cutAt) + p.offset;
        break;
      }
    }
    for (const p of this.pieces) p.tsEnd = Math.min(p.tsEnd, Math.max(p.tsStart, cutAt));
    const now = Math.ceil(this.context.currentTime * this.sampleRate);
    this.node.port.postMessage({ type: "cut", frame: frame === null ? now : Math.max(frame, now) });
  }

  /** New session (reconnect): the old timeline means nothing any more. */
  reset() {
    this.jitter.reset();
    this.pieces = [];
    this.node?.port.postMessage({ type: "clear" });
  }

  depthMs(nowMs) {
    return this.jitter.depthMs(nowMs);
  }

  async close() {
    await this.context?.close();
  }
}
