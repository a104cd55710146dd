// AudioWorklet: plays reply audio at exact context frames, conceals holes by fading.
//
// The page posts chunks already placed on the context's frame axis (the jitter buffer chose
// when). Samples with no chunk are silence; the edges of every run of audio are faded over
// FADE frames (about 2 ms), so a late or lost chunk is a short dip, never a click. A cut
// drops everything at or after a frame with a fade-out. Status (frames played, underruns,
// queued frames) goes back to the page about every 50 ms.

const FADE = 48;

class PlayoutProcessor extends AudioWorkletProcessor {
  constructor() {
    super();
    this.chunks = []; // {start, samples, end, last} sorted by start, non-overlapping
    this.underruns = 0;
    this.playedFrames = 0;
    this.lastChunk = null; // chunk of the previous output frame; a hole after a non-final one is an underrun
    this.lastStatus = 0;
    this.port.onmessage = (e) => this.onMessage(e.data);
  }

  onMessage(msg) {
    if (msg.type === "chunk") {
      const chunk = { start: msg.start, samples: msg.samples, end: msg.start + msg.samples.length, last: msg.last };
      let i = this.chunks.length;
      while (i > 0 && this.chunks[i - 1].start > chunk.start) i--;
      this.chunks.splice(i, 0, chunk);
    } else if (msg.type === "cut") {
      this.cutAt = msg.frame;
      this.chunks = this.chunks.filter((c) => c.start < msg.frame);
      for (const c of this.chunks) {
        if (c.end > msg.frame) {
          c.samples = c.samples.subarray(0, msg.frame - c.start);
          c.end = msg.frame;
          c.last = true;
        }
      }
    } else if (msg.type === "end") {
      if (this.chunks.length) this.chunks[this.chunks.length - 1].last = true;
      else if (this.lastChunk) this.lastChunk.last = true;
    } else if (msg.type === "clear") {
      this.chunks = [];
    }
  }

  // The chunk holding frame f at or after index `from`, or -1 in a hole.
  find(f, from) {
    for (let i = from; i < this.chunks.length; i++) {
      const c = this.chunks[i];
      if (c.start > f) return -1;
      if (f < c.end) return i;
    }
    return -1;
  }

  // Contiguous audio frames next to f in `direction` (±1), capped at FADE.
  runEdge(f, direction) {
    for (let k = 1; k <= FADE; k++) if (this.find(f + direction * k, 0) < 0) return k - 1;
    return FADE;
  }

  process(inputs, outputs) {
    const out = outputs[0][0];
    const n = out.length;
    const start = currentFrame;
    while (this.chunks.length && this.chunks[0].end <= start) this.chunks.shift();
    let playing = false;
    let hint = 0;
    for (let i = 0; i < n; i++) {
      const f = start + i;
      const idx = this.find(f, hint);
      if (idx < 0) {
        out[i] = 0;
        if (this.lastChunk && !this.lastChunk.last) this.underruns += 1;
        this.lastChunk = null;
        continue;
      }
      hint = idx;
      const c = this.chunks[idx];
      let gain = 1;
      if (f - c.start < FADE || c.end - f <= FADE) {
        gain = Math.min(1, (this.runEdge(f, -1) + 1) / (FADE + 1), (this.runEdge(f, 1) + 1) / (FADE + 1));
      }
      out[i] = c.samples[f - c.start] * gain;
      this.lastChunk = c;
      playing = true;
      this.playedFrames += 1;
    }
    for (let ch = 1; ch < outputs[0].length; ch++) outputs[0][ch].set(out);
    if (start - this.lastStatus >= sampleRate / 20) {
      this.lastStatus = start;
      let queued = 0;
      for (const c of this.chunks) queued += c.end - Math.max(c.start, start + n);
      this.port.postMessage({ type: "status", frame: start + n, underruns: this.underruns, queued, playing });
    }
    return true;
  }
}

registerProcessor("presence-playout", PlayoutProcessor);
