// Adaptive jitter buffer for the agent's audio: decides when each chunk is heard.
//
// Pure and synchronous: time is always an argument (`nowMs`, on the page's performance clock),
// so node tests and the benchmark drive it with recorded or synthetic arrival traces.
//
// The model. Each reply is a segment of contiguous timeline samples. Its first chunk anchors
// the segment: every chunk of the segment is heard at `tsMs + offsetMs`, so chunks are
// contiguous in time and the lips (stamped on the same timeline) stay on the sound. The only
// free choice is how much delay to add at the anchor (the target delay). A chunk is late when
// its slot is already past when it arrives; the probability of that is the probability that
// its *relative delay* (its transit time minus the anchor's transit time) exceeds the target.
// So, as in WebRTC NetEQ, the target is a high quantile of a forgetting histogram of relative
// delays: it follows the observed jitter, forgets calm-period-irrelevant history within seconds
// (fast shrink when calm), and a peak detector lifts it at once after a late chunk (fast grow).
// Until enough chunks were seen, the RTT variation measured by ping/pong is the prior.
//
// A late chunk that arrives in order after the scheduled audio ran out re-anchors the segment
// (playback resumes with a faded gap: an underrun, not a loss). A late chunk whose slot is in
// the middle of audio already scheduled (reordering) is dropped and counted as late loss.
// Missing chunks leave a hole that playback conceals by fading. After an interruption every
// chunk at or after the cut point is dropped until the next segment starts.

export const SEGMENT_START = 0x0001;
export const SEGMENT_END = 0x0002;

export const DEFAULTS = Object.freeze({
  sampleRate: 24000,
  minDelayMs: 0, // floor of the added delay
  maxDelayMs: 400, // ceiling: beyond this, late chunks re-anchor instead of waiting
  quantile: 0.99, // fraction of chunks that should be on time
  bucketMs: 2, // histogram resolution
  forgetFactor: 0.993, // per chunk; ~140 chunks (~3 s of 20 ms chunks) of memory
  peakHalfLifeMs: 3000, // how fast the post-late-chunk lift decays
  newSegmentGapMs: 500, // a timestamp jump this far past the segment's end starts a new one
});

/** Forgetting histogram of non-negative delays; quantile() says the delay that covers q of them. */
export class DelayHistogram {
  constructor(maxMs, bucketMs, forgetFactor) {
    this.bucketMs = bucketMs;
    this.forget = forgetFactor;
    this.weights = new Float64Array(Math.ceil(maxMs / bucketMs) + 1);
    this.mass = 0; // tends to 1 as samples accumulate; small mass = little evidence yet
  }

  add(delayMs) {
    const f = this.forget;
    const w = this.weights;
    for (let i = 0; i < w.length; i++) w[i] *= f;
    const bucket = Math.min(w.length - 1, Math.max(0, Math.ceil(delayMs / this.bucketMs)));
    w[bucket] += 1 - f;
    this.mass = this.mass * f + (1 - f);
  }

  quantile(q) {
    if (this.mass <= 0) return 0;
    const limit = q * this.mass;
    let sum = 0;
    for (let i = 0; i < this.weights.length; i++) {
      sum += this.weights[i];
      if (sum >= limit) return i * this.bucketMs;
    }
    return (this.weights.length - 1) * this.bucketMs;
  }
}

export class JitterBuffer {
  constructor(options = {}) {
    this.options = { ...DEFAULTS, ...options };
    const o = this.options;
    this.histogram = new DelayHistogram(o.maxDelayMs, o.bucketMs, o.forgetFactor);
    this.segment = null; // {startTs, endTs, offsetMs, refTransitMs, endPlayMs}
    this.cutTs = null; // drop chunks at/after this until a new segment starts
    this.peakMs = 0;
    this.peakAtMs = 0;
    this.srttMs = null;
    this.rttVarMs = 0;
    this.lastArrivalMs = null;
    this.jitterMs = 0; // RFC 3550-style smoothed inter-arrival jitter, for display
    this.stats = { chunks: 0, played: 0, late: 0, cut: 0, underruns: 0, segments: 0 };
  }

  /** Ping/pong RTT sample: its variation is the jitter prior before audio has been seen. */
  observeRtt(rttMs) {
    if (this.srttMs === null) {
      this.srttMs = rttMs;
      this.rttVarMs = rttMs / 2;
    } else {
      this.rttVarMs = 0.75 * this.rttVarMs + 0.25 * Math.abs(rttMs - this.srttMs);
      this.srttMs = 0.875 * this.srttMs + 0.125 * rttMs;
    }
  }

  /** The delay a new segment would be given now (ms beyond the unavoidable output lead). */
  targetDelayMs(nowMs) {
    const o = this.options;
    const fromHistogram = this.histogram.quantile(o.quantile);
    const peak = this.peakMs * 0.5 ** (Math.max(0, nowMs - this.peakAtMs) / o.peakHalfLifeMs);
    // One-way jitter is about half the RTT variation; trust it less as chunks accumulate.
    const prior = this.srttMs === null ? 0 : this.rttVarMs * (1 - this.histogram.mass);
    return Math.min(o.maxDelayMs, Math.max(o.minDelayMs, fromHistogram, peak, prior));
  }

  /**
   * One received chunk `{ts, samples, flags}` (timeline samples) at `nowMs`.
   * `leadMs` is the unavoidable lead of the output path (render quantum + output latency +
   * a scheduling margin): nothing can be heard earlier than `nowMs + leadMs`.
   * Returns `{kind: "play", playMs, reanchored}` (when its first sample must be heard),
   * `{kind: "late"}` or `{kind: "cut"}`.
   */
  push(chunk, nowMs, leadMs = 0) {
    const rate = this.options.sampleRate;
    const tsMs = (chunk.ts * 1000) / rate;
    const endTs = chunk.ts + chunk.samples;
    const transitMs = nowMs - tsMs;
    const starts = (chunk.flags & SEGMENT_START) !== 0;
    this.stats.chunks += 1;
    this.#trackJitter(transitMs, nowMs);

    if (this.cutTs !== null) {
      if (starts && chunk.ts >= this.cutTs) this.cutTs = null;
      else if (chunk.ts >= this.cutTs) {
        this.stats.cut += 1;
        return { kind: "cut" };
      }
    }
    const seg = this.segment;
    const gapSamples = (this.options.newSegmentGapMs * rate) / 1000;
    if (starts || seg === null || chunk.ts < seg.startTs || chunk.ts > seg.endTs + gapSamples) {
      return this.#anchor(chunk, tsMs, endTs, transitMs, nowMs, leadMs, true);
    }
    const relativeMs = transitMs - seg.refTransitMs;
    this.histogram.add(Math.max(0, relativeMs));
    const playMs = tsMs + seg.offsetMs;
    if (playMs >= nowMs + leadMs) {
      return this.#play(seg, endTs, playMs, chunk.samples, false);
    }
    this.#notePeak(relativeMs, nowMs);
    if (chunk.ts >= seg.endTs && seg.endPlayMs <= nowMs + leadMs) {
      this.stats.underruns += 1;
      return this.#anchor(chunk, tsMs, endTs, transitMs, nowMs, leadMs, false);
    }
    this.stats.late += 1;
    return { kind: "late" };
  }

  /** An interruption: nothing at or after `cutTs` may be played until a new segment starts. */
  cut(cutTs) {
    this.cutTs = cutTs;
    if (this.segment !== null && this.segment.endTs > cutTs) {
      const seg = this.segment;
      seg.endPlayMs = Math.min(seg.endPlayMs, (cutTs * 1000) / this.options.sampleRate + seg.offsetMs);
      seg.endTs = Math.max(seg.startTs, cutTs);
    }
  }

  /** Forget the current segment (e.g. after a reconnect: the new session has a new timeline). */
  reset() {
    this.segment = null;
    this.cutTs = null;
    this.lastArrivalMs = null;
  }

  /** Audio scheduled ahead of `nowMs` (ms): the buffer depth the HUD shows. */
  depthMs(nowMs) {
    return this.segment === null ? 0 : Math.max(0, this.segment.endPlayMs - nowMs);
  }

  #anchor(chunk, tsMs, endTs, transitMs, nowMs, leadMs, isNewSegment) {
    let offsetMs = nowMs + leadMs + this.targetDelayMs(nowMs) - tsMs;
    const prev = this.segment;
    // A reply placed after one that still plays keeps the server's spacing on the timeline
    // (seamless when contiguous) rather than overlapping it.
    if (isNewSegment && prev !== null && prev.endPlayMs > nowMs + leadMs && chunk.ts >= prev.endTs) {
      offsetMs = Math.max(offsetMs, prev.offsetMs);
    }
    if (isNewSegment) {
      this.stats.segments += 1;
      this.histogram.add(0);
    }
    const seg = {
      startTs: isNewSegment ? chunk.ts : prev.startTs,
      endTs: chunk.ts,
      offsetMs,
      // Relative delays stay measured against the reply's first chunk even after a re-anchor,
      // so a late chunk never becomes the yardstick that makes the next ones look early.
      refTransitMs: isNewSegment ? transitMs : prev.refTransitMs,
      endPlayMs: tsMs + offsetMs,
    };
    this.segment = seg;
    return this.#play(seg, endTs, tsMs + offsetMs, chunk.samples, true);
  }

  #play(seg, endTs, playMs, samples, reanchored) {
    const endPlayMs = playMs + (samples * 1000) / this.options.sampleRate;
    if (endTs > seg.endTs) seg.endTs = endTs;
    if (endPlayMs > seg.endPlayMs) seg.endPlayMs = endPlayMs;
    this.stats.played += 1;
    return { kind: "play", playMs, reanchored };
  }

  #notePeak(relativeMs, nowMs) {
    const current = this.peakMs * 0.5 ** (Math.max(0, nowMs - this.peakAtMs) / this.options.peakHalfLifeMs);
    if (relativeMs > current) {
      this.peakMs = Math.min(this.options.maxDelayMs, relativeMs);
      this.peakAtMs = nowMs;
    }
  }

  #trackJitter(transitMs, nowMs) {
    if (this.lastArrivalMs !== null && nowMs - this.lastArrivalMs < 1000) {
      const d = Math.abs(transitMs - this.lastTransitMs);
      this.jitterMs += (d - this.jitterMs) / 16;
    }
    this.lastArrivalMs = nowMs;
    this.lastTransitMs = transitMs;
  }
}
