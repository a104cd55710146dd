// Microphone → 10 ms blocks (AudioWorklet) → silence suppression → Opus 20 ms (WebCodecs)
// or PCM16 at 16 kHz → AUDIO_IN frames with input-timeline stamps.
//
// Opus stamps follow docs/protocol.md (timestamps name the PCM after pre-skip removal; the
// rule is in opus-timing.js) and presence/audio/opus.py: one encoder runs from the first speech onward and is fed every
// block, speech or not, so its packets stay aligned to the capture timeline; only packets
// that overlap blocks the suppressor wants sent go on the wire. Packet n of an encoder that
// started at input sample E decodes (after the decoder drops the 312-sample pre-skip once)
// to samples starting at E for n = 0 and at E + 960·n − 312 afterwards.

import { SilenceSuppressor } from "./vad.js";
import { Decimator } from "./dsp.js";
import { floatToS16le } from "./protocol.js";
import { OPUS_FRAME, opusPacketTimestamp } from "./opus-timing.js";

export const CAPTURE_RATE = 48000;
const BLOCK = CAPTURE_RATE / 100; // 10 ms

/** Raised when the microphone cannot be used; `message` is for the user. */
export class MicrophoneError extends Error {
  constructor(message, cause) {
    super(message);
    this.name = "MicrophoneError";
    this.cause = cause;
  }
}

function explain(err) {
  switch (err?.name) {
    case "NotAllowedError":
    case "SecurityError":
      return "Microphone permission was denied. Allow the microphone for this site and reload the page.";
    case "NotFoundError":
    case "OverconstrainedError":
      return "No microphone was found. Connect one and reload the page.";
    case "NotReadableError":
      return "The microphone is in use by another application or could not be opened.";
    default:
      return `The microphone could not be started: ${err?.message ?? err}`;
  }
}

export async function opusSupported() {
  if (typeof AudioEncoder === "undefined") return false;
  try {
    const { supported } = await AudioEncoder.isConfigSupported(opusConfig());
    return supported;
  } catch {
    return false;
  }
}

function opusConfig() {
  return { codec: "opus", sampleRate: CAPTURE_RATE, numberOfChannels: 1, bitrate: 24000, opus: { frameDuration: 20000 } };
}

/**
 * Capture. `send({data, timestamp, flags, speech})` receives each AUDIO_IN payload;
 * `codec` is "opus" (48 kHz) or "pcm_s16le" (16 kHz), as negotiated.
 */
export class Capture {
  constructor({ send, processing = true, suppression = {}, onSpeechEnd = () => {} }) {
    this.send = send;
    this.processing = processing;
    this.onSpeechEnd = onSpeechEnd;
    this.suppressor = new SilenceSuppressor(suppression);
    this.codec = null;
    this.firstBlockPerfMs = null; // performance time when capture sample 0 arrived (≈ captured)
    this.lastBlockPerfMs = null;
    // Capture sample of the first sample louder than −40 dBFS: benchmarks align the fake
    // microphone's file with the page clock on it (the file starts before capture does).
    this.firstSoundSample = null;
    this.speaking = false;
    this.stats = { blocks: 0, frames: 0, bytes: 0 };
  }

  async start(codec) {
    this.codec = codec;
    let stream;
    try {
      stream = await navigator.mediaDevices.getUserMedia({
        audio: {
          echoCancellation: this.processing,
          noiseSuppression: this.processing,
          autoGainControl: this.processing,
          channelCount: 1,
        },
      });
    } catch (err) {
      throw new MicrophoneError(explain(err), err);
    }
    this.stream = stream;
    this.context = new AudioContext({ sampleRate: CAPTURE_RATE, latencyHint: "interactive" });
    await this.context.audioWorklet.addModule(new URL("./capture-worklet.js", import.meta.url));
    const source = this.context.createMediaStreamSource(stream);
    this.node = new AudioWorkletNode(this.context, "presence-capture", {
      numberOfOutputs: 0,
      processorOptions: { blockSamples: BLOCK },
    });
    this.node.port.onmessage = (e) => this.#onBlock(e.data.block, e.data.start);
    source.connect(this.node);
    if (this.context.state !== "running") await this.context.resume().catch(() => {});
    if (codec === "pcm_s16le") this.decimator = new Decimator(3, 49);
  }

  #onBlock(block, start) {
    const now = performance.now();
    if (this.firstBlockPerfMs === null) this.firstBlockPerfMs = now - (start + BLOCK) / (CAPTURE_RATE / 1000);
    this.lastBlockPerfMs = now;
    if (this.firstSoundSample === null) {
      const i = block.findIndex((x) => Math.abs(x) > 0.01);
      if (i >= 0) this.firstSoundSample = start + i;
    }
    this.stats.blocks += 1;
    const decisions = this.suppressor.push(block, start);
    if (this.codec === "opus") this.#feedOpus(block, start, decisions);
    else for (const d of decisions) this.#sendPcm(d);
    for (const d of decisions) {
      if (d.speech) this.speaking = true;
      if (d.segmentEnd) {
        this.speaking = false;
        const end = this.suppressor.lastSpeechEnd;
        this.onSpeechEnd({ sample: end, perfMs: this.firstBlockPerfMs + end / (CAPTURE_RATE / 1000) });
      }
    }
  }

  #sendPcm(d) {
    // Each segment gets a fresh filter (its history would be audio from the last segment);
    // the first millisecond of pre-roll takes the ramp. A block stamped `start` at 48 kHz
    // starts at (start − filter delay) / 3 at 16 kHz.
    if (d.segmentStart) this.decimator = new Decimator(3, 49);
    const out = this.decimator.process(d.block);
    const timestamp = Math.round((d.start - this.decimator.delayInputSamples) / 3);
    this.#emit(floatToS16le(out), timestamp, d);
  }

  #emit(data, timestamp, d) {
    const flags = (d.segmentStart ? 1 : 0) | (d.segmentEnd ? 2 : 0);
    this.stats.frames += 1;
    this.stats.bytes += data.length;
    this.send({ data, timestamp, flags });
  }

  // --- Opus ---------------------------------------------------------------------------

  #feedOpus(block, start, decisions) {
    if (!this.encoder) {
      if (decisions.length === 0) return; // the encoder starts with the first segment's pre-roll
      this.#startEncoder(decisions[0].start);
      for (const d of decisions) this.#encode(d.block, d.start, d);
      return;
    }
    const mine = decisions.find((d) => d.start === start);
    // Blocks released from pre-roll were already fed while the encoder ran: the suppressor
    // only hands them back at a segment start, and the encoder saw them as silence. Mark them.
    for (const d of decisions) if (d.start !== start) this.#mark(d);
    this.#encode(block, start, mine ?? null);
  }

  #startEncoder(firstSample) {
    this.encoderStart = firstSample;
    this.packetIndex = 0;
    this.marks = new Map(); // packet index → {send, segmentStart, segmentEnd}
    this.held = new Map(); // recent unsent packets, in case a segment onset claims them as pre-roll
    this.encoder = new AudioEncoder({
      output: (chunk) => this.#onPacket(chunk),
      error: (err) => console.error("opus encoder", err),
    });
    this.encoder.configure(opusConfig());
  }

  #mark(d) {
    const n = Math.floor((d.start - this.encoderStart) / OPUS_FRAME);
    const m = this.marks.get(n) ?? { send: false, segmentStart: false, segmentEnd: false };
    m.send = true;
    m.segmentStart ||= d.segmentStart;
    m.segmentEnd ||= d.segmentEnd;
    this.marks.set(n, m);
    const held = this.held.get(n);
    if (held) {
      this.held.delete(n);
      this.marks.delete(n);
      this.#sendPacket(n, held, m);
    }
  }

  #encode(block, start, decision) {
    if (decision) this.#mark(decision);
    const data = new AudioData({
      format: "f32",
      sampleRate: CAPTURE_RATE,
      numberOfFrames: block.length,
      numberOfChannels: 1,
      timestamp: Math.round(((start - this.encoderStart) * 1e6) / CAPTURE_RATE),
      data: block,
    });
    this.encoder.encode(data);
    data.close();
  }

  #onPacket(chunk) {
    const n = this.packetIndex++;
    const mark = this.marks.get(n);
    for (const k of this.marks.keys()) if (k <= n) this.marks.delete(k);
    const data = new Uint8Array(chunk.byteLength);
    chunk.copyTo(data);
    if (!mark?.send) {
      // Not wanted yet; keep it for as long as the suppressor's pre-roll could claim it.
      this.held.set(n, data);
      this.held.delete(n - Math.ceil((this.suppressor.options.preRollBlocks * BLOCK) / OPUS_FRAME) - 2);
      return;
    }
    this.#sendPacket(n, data, mark);
  }

  #sendPacket(n, data, mark) {
    const timestamp = opusPacketTimestamp(this.encoderStart, n);
    this.#emit(data, timestamp, mark);
  }

  /** Switch codec, or restart the current one for a new session: a fresh encoder and filter. */
  setCodec(codec) {
    if (this.encoder && this.encoder.state !== "closed") this.encoder.close();
    this.encoder = null;
    this.codec = codec;
    this.decimator = new Decimator(3, 49);
  }

  async stop() {
    this.stream?.getTracks().forEach((t) => t.stop());
    if (this.encoder && this.encoder.state !== "closed") this.encoder.close();
    await this.context?.close();
  }
}
