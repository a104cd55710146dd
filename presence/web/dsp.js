// Small pure DSP helpers for the capture path.

/** Linear-phase low-pass FIR (windowed sinc, Blackman window); `cutoff` as a fraction of Nyquist. */
export function lowpass(taps, cutoff) {
  const h = new Float64Array(taps);
  const mid = (taps - 1) / 2;
  let sum = 0;
  for (let i = 0; i < taps; i++) {
    const x = i - mid;
    const sinc = x === 0 ? cutoff : Math.sin(Math.PI * cutoff * x) / (Math.PI * x);
    const w = 0.42 - 0.5 * Math.cos((2 * Math.PI * i) / (taps - 1)) + 0.08 * Math.cos((4 * Math.PI * i) / (taps - 1));
    h[i] = sinc * w;
    sum += h[i];
  }
  for (let i = 0; i < taps; i++) h[i] /= sum;
  return h;
}

/**
 * Streaming integer-factor decimator (48 kHz → 16 kHz with factor 3). Output sample j of a
 * call corresponds to input sample `3j − delayInputSamples` of the same call's block, so a
 * block stamped `start` at 48 kHz is stamped `(start − delayInputSamples) / 3` at 16 kHz.
 */
export class Decimator {
  constructor(factor = 3, taps = 49) {
    this.factor = factor;
    this.h = lowpass(taps, 0.9 / factor);
    this.delayInputSamples = (taps - 1) / 2;
    this.history = new Float32Array(taps - 1);
    this.phase = 0; // input samples to skip before the next output
  }

  process(input) {
    const taps = this.h.length;
    const buf = new Float32Array(this.history.length + input.length);
    buf.set(this.history);
    buf.set(input, this.history.length);
    const out = [];
    let i = this.phase;
    for (; i < input.length; i += this.factor) {
      let acc = 0;
      const end = i + taps; // buf index of input[i] is i + taps - 1
      for (let k = 0; k < taps; k++) acc += this.h[k] * buf[end - 1 - k];
      out.push(acc);
    }
    this.phase = i - input.length;
    this.history = buf.slice(buf.length - (taps - 1));
    return Float32Array.from(out);
  }
}
