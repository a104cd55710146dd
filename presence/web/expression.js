// The face's expression, whatever draws it: ARKit blendshape weights for brows, eyes, cheeks
// and mouth corners, moved towards the latest cue so they arrive on time.
//
// Cues come from the server (`expression` events, one per clause of the reply, stamped on the
// output timeline and mapped here to the performance clock) and from the turn machine on the
// page (attentive while the user speaks, thinking while the reply is being prepared). Each cue
// ramps in over `rampMs` so that it is fully present at `atMs`, then holds until the next one.
// The table mirrors presence/expression/blendshapes.py (tests/web/expression.test.js checks it).

export const EXPRESSION_POSES = Object.freeze({
  neutral: {},
  happy: { "mouthSmile*": 0.6, "cheekSquint*": 0.5, "eyeSquint*": 0.25, "browOuterUp*": 0.1 },
  concerned: { browInnerUp: 0.7, "browDown*": 0.15, "mouthFrown*": 0.35, "eyeSquint*": 0.1 },
  surprised: { browInnerUp: 0.6, "browOuterUp*": 0.7, "eyeWide*": 0.6 },
  curious: { browInnerUp: 0.4, browOuterUpLeft: 0.6, browOuterUpRight: 0.35, "eyeWide*": 0.15 },
  thinking: { browInnerUp: 0.25, browDownLeft: 0.3, browOuterUpRight: 0.35, eyeSquintLeft: 0.2 },
  emphasis: { browInnerUp: 0.35, "browOuterUp*": 0.35, "eyeWide*": 0.2 },
});

/** ARKit weights of expression `name` at `intensity` (0 … 1). */
export function expressionWeights(name, intensity = 1) {
  const k = Math.min(1, Math.max(0, intensity));
  const out = {};
  for (const [shape, value] of Object.entries(EXPRESSION_POSES[name] ?? {})) {
    const sides = shape.endsWith("*") ? ["Left", "Right"] : [""];
    for (const side of sides) out[shape.replace("*", "") + side] = value * k;
  }
  return out;
}

/** Session states → the face the page holds while in them (null: keep what the reply set). */
export const STATE_FACES = Object.freeze({
  user_speaking: ["curious", 0.3], // attentive: brows a little up
  paused: ["thinking", 0.4],
  speculating: ["thinking", 0.6],
});

const MAX_CUES = 32;
const MAX_SHAPES = 64; // a server cue's weights are bounded before the page loops over them

export class ExpressionState {
  constructor() {
    this.cues = []; // {name, weights, startMs, atMs}, sorted by startMs
    this.current = {}; // weights shown at the last frame
    this.lastMs = null;
  }

  /** Expression `name` fully present at `atMs` (perf clock), ramping in over `rampMs`. A cue
   * stamped on the output timeline (`atSample`) is placed by `weightsAt`'s mapper once the audio
   * there is scheduled; until then it counts from `atMs`. */
  cue(name, intensity, atMs, rampMs = 250, weights = null, atSample = null) {
    const w = {};
    const source = weights && typeof weights === "object" ? weights : expressionWeights(name, intensity);
    for (const [shape, value] of Object.entries(source).slice(0, MAX_SHAPES)) {
      if (typeof value === "number" && Number.isFinite(value)) w[shape] = Math.min(1, Math.max(0, value));
    }
    const ramp = Math.max(0, rampMs);
    this.cues.push({ name, weights: w, rampMs: ramp, startMs: atMs - ramp, atMs, atSample });
    this.#sort();
    if (this.cues.length > MAX_CUES) this.cues.shift();
  }

  #sort() {
    this.cues.sort((a, b) => a.startMs - b.startMs);
  }

  /** An `expression` event body arriving at `nowMs`. */
  event(body, nowMs) {
    const ramp = Math.min(2000, Number(body.ramp_ms) || 0);
    const at = Number.isFinite(body.at) ? body.at : null;
    // Until its sample is placed, a cue aims a third of its ramp ahead: the audio it precedes
    // arrived with it and is heard after the jitter buffer's delay, so the face starts now.
    this.cue(String(body.name), Number(body.intensity) || 0, nowMs + (at === null ? ramp : ramp / 3), ramp, body.weights, at);
  }

  /** The turn machine's face for `state`, if it has one. */
  setState(state, nowMs) {
    const face = STATE_FACES[state];
    if (face) this.cue(face[0], face[1], nowMs + 300, 300);
  }

  /** Interrupted or ended: relax to neutral by `atMs`, dropping cues still to come. */
  relax(atMs, rampMs = 400) {
    this.cues = this.cues.filter((c) => c.startMs < atMs - rampMs);
    this.cue("neutral", 0, atMs, rampMs);
  }

  /** The weights to show at `nowMs` (call once per rendered frame, with a rising clock);
   * `toPerf(sample)` maps output-timeline samples to the perf clock, or null while unknown. */
  weightsAt(nowMs, toPerf = () => null) {
    let moved = false;
    for (const c of this.cues) {
      if (c.atSample === null) continue;
      const at = toPerf(c.atSample);
      if (at === null) continue;
      c.atMs = at;
      c.startMs = c.shown ? Math.min(c.startMs, at - c.rampMs) : at - c.rampMs; // showing: keeps showing
      c.atSample = null; // placed for good
      moved = true;
    }
    if (moved) this.#sort();
    let target = null;
    for (const c of this.cues) if (c.startMs <= nowMs) target = c;
    const dt = this.lastMs === null ? 16 : Math.max(0, nowMs - this.lastMs);
    this.lastMs = nowMs;
    if (target === null) return this.current;
    target.shown = true;
    const past = this.cues.indexOf(target);
    if (past > 0) this.cues.splice(0, past); // older cues can no longer win
    // Reach the target at its time: the gap closes in proportion to the time left; a cue that
    // arrived late (its time already passed) is approached over ~80 ms instead of jumping.
    const left = target.atMs - nowMs;
    const k = left > 0 ? Math.min(1, dt / left) : Math.min(1, dt / 80);
    const next = {};
    for (const name of new Set([...Object.keys(this.current), ...Object.keys(target.weights)])) {
      const from = this.current[name] ?? 0;
      const v = from + ((target.weights[name] ?? 0) - from) * k;
      if (v > 0.002) next[name] = v;
    }
    this.current = next;
    return next;
  }
}

/** The few numbers the 2D face draws from ARKit expression weights (brows, lids, mouth corners). */
export function faceParams(w) {
  const g = (name) => w[name] ?? 0;
  const avg = (a, b) => (g(a) + g(b)) / 2;
  return {
    browLeft: Math.max(g("browOuterUpLeft"), 0.5 * g("browInnerUp")) - g("browDownLeft"),
    browRight: Math.max(g("browOuterUpRight"), 0.5 * g("browInnerUp")) - g("browDownRight"),
    browInner: g("browInnerUp"),
    wide: avg("eyeWideLeft", "eyeWideRight"),
    squint: Math.max(avg("eyeSquintLeft", "eyeSquintRight"), avg("cheekSquintLeft", "cheekSquintRight") * 0.6),
    smile: avg("mouthSmileLeft", "mouthSmileRight"),
    frown: avg("mouthFrownLeft", "mouthFrownRight"),
  };
}
