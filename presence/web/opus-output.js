// Opus reply audio → PCM for playback, with WebCodecs' AudioDecoder.
//
// Each reply is its own Opus stream (docs/protocol.md): the decoder restarts at SEGMENT_START,
// and the first 312 decoded samples of a reply are the encoder's look-ahead (the pre-skip a
// container would announce), dropped here. Packet 0 is stamped with the reply's first sample;
// packet n ≥ 1 with start + 960·n − 312, so every decoded packet lands where its stamp says.
// Decoding is asynchronous; each packet's arrival time travels with it, so the jitter buffer
// sees network arrival, not decode completion.

import { SEGMENT_END, SEGMENT_START } from "./jitterbuffer.js";
import { OPUS_RATE, PRE_SKIP } from "./opus-timing.js";

const CONFIG = { codec: "opus", sampleRate: OPUS_RATE, numberOfChannels: 1 };

/** True when this browser can decode Opus (WebCodecs). */
export async function opusOutputSupported() {
  if (typeof AudioDecoder === "undefined") return false;
  try {
    return (await AudioDecoder.isConfigSupported(CONFIG)).supported === true;
  } catch {
    return false;
  }
}

/** `onSamples({samples, timestamp, flags, nowMs})` receives each decoded packet, in order. */
export class OpusReplyDecoder {
  constructor(onSamples, onError = (err) => console.error("opus decoder", err)) {
    this.onSamples = onSamples;
    this.onError = onError;
    this.decoder = null;
    this.pending = []; // per packet in flight: {timestamp, flags, nowMs}, or an empty END marker
    this.skip = 0;
    this.stats = { packets: 0, errors: 0 };
  }

  /** One AUDIO_OUT frame whose payload is an Opus packet, received at `nowMs`. */
  push(frame, nowMs) {
    if (frame.flags & SEGMENT_START || this.decoder === null) this.#restart();
    const meta = { timestamp: frame.timestamp, flags: frame.flags, nowMs };
    if (frame.data.length === 0) {
      // An empty reply's only frame: pass it on after whatever is still decoding.
      this.pending.push({ ...meta, empty: true });
      this.#drainEmpty();
      return;
    }
    this.pending.push(meta);
    this.stats.packets += 1;
    this.decoder.decode(new EncodedAudioChunk({ type: "key", timestamp: frame.timestamp, data: frame.data }));
  }

  close() {
    if (this.decoder && this.decoder.state !== "closed") this.decoder.close();
    this.decoder = null;
    this.pending = [];
  }

  #restart() {
    this.close();
    this.decoder = new AudioDecoder({ output: (data) => this.#output(data), error: (err) => this.#error(err) });
    this.decoder.configure(CONFIG);
    this.skip = PRE_SKIP;
  }

  #output(data) {
    const meta = this.pending.shift();
    const samples = new Float32Array(data.numberOfFrames);
    data.copyTo(samples, { planeIndex: 0, format: "f32-planar" });
    data.close();
    if (meta === undefined) return;
    const skip = Math.min(this.skip, samples.length);
    this.skip -= skip;
    this.onSamples({ samples: samples.subarray(skip), timestamp: meta.timestamp, flags: meta.flags, nowMs: meta.nowMs });
    this.#drainEmpty();
  }

  #drainEmpty() {
    while (this.pending.length && this.pending[0].empty) {
      const meta = this.pending.shift();
      this.onSamples({ samples: new Float32Array(0), timestamp: meta.timestamp, flags: meta.flags | SEGMENT_END, nowMs: meta.nowMs });
    }
  }

  #error(err) {
    // A broken packet loses that reply's audio from here on; the next reply restarts cleanly.
    this.stats.errors += 1;
    this.decoder = null;
    this.pending = [];
    this.onError(err);
  }
}
