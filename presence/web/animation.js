// Animation frames on the output timeline, sampled at any timeline position.
//
// Frames arrive in ANIMATION messages (frame i describes output sample ts + i·step). The
// renderer asks for the weights at the sample being heard right now and gets the linear
// interpolation of the two frames around it, so the mouth moves smoothly whatever the
// display refresh rate. Interruptions cut the track; old frames are pruned.

export class AnimationTrack {
  constructor() {
    this.times = []; // sorted timeline samples
    this.frames = []; // Float32Array weights in [0, 1]
    this.maxGapSamples = 24000 / 5; // a hole longer than 200 ms between frames is silence
  }

  /** Add the frames of one decoded ANIMATION frame (protocol.js decode output). */
  add(frame) {
    const n = frame.weightsPerFrame;
    for (let i = 0; i < frame.frameCount; i++) {
      const t = frame.timestamp + i * frame.stepSamples;
      const w = new Float32Array(n);
      for (let k = 0; k < n; k++) w[k] = frame.weights[i * n + k] / 255;
      this.#insert(t, w);
    }
  }

  #insert(t, w) {
    let i = this.times.length;
    while (i > 0 && this.times[i - 1] > t) i--;
    if (i > 0 && this.times[i - 1] === t) {
      this.frames[i - 1] = w;
      return;
    }
    this.times.splice(i, 0, t);
    this.frames.splice(i, 0, w);
  }

  /** Weights at timeline sample `t`, or null when no frame covers it (rest pose). */
  sample(t) {
    const times = this.times;
    if (times.length === 0 || t < times[0] || t > times[times.length - 1]) return null;
    let lo = 0;
    let hi = times.length - 1;
    while (hi - lo > 1) {
      const mid = (lo + hi) >> 1;
      if (times[mid] <= t) lo = mid;
      else hi = mid;
    }
    if (times[lo] === t || lo === hi) return this.frames[lo];
    if (times[hi] - times[lo] > this.maxGapSamples) return null;
    const a = (t - times[lo]) / (times[hi] - times[lo]);
    const f0 = this.frames[lo];
    const f1 = this.frames[hi];
    const out = new Float32Array(f0.length);
    for (let k = 0; k < f0.length; k++) out[k] = f0[k] + a * (f1[k] - f0[k]);
    return out;
  }

  /** Interruption: drop every frame at or after `cutAt`. */
  cut(cutAt) {
    let i = this.times.length;
    while (i > 0 && this.times[i - 1] >= cutAt) i--;
    this.times.length = i;
    this.frames.length = i;
  }

  /** Drop frames before `t` (keeping one, for interpolation). */
  prune(t) {
    let i = 0;
    while (i + 1 < this.times.length && this.times[i + 1] < t) i++;
    if (i > 0) {
      this.times.splice(0, i);
      this.frames.splice(0, i);
    }
  }

  clear() {
    this.times.length = 0;
    this.frames.length = 0;
  }
}
