// The page's expression state and gaze: cues reach their weights on time, relax after an
// interruption, the turn machine's faces, and where the eyes look.
import { test } from "node:test";
import assert from "node:assert/strict";
import { ExpressionState, expressionWeights, faceParams } from "../../presence/web/expression.js";
import { blendExpression } from "../../presence/web/avatar3d.js";
import { Motion } from "../../presence/web/motion.js";

function run(state, fromMs, toMs, toPerf = () => null) {
  let w = {};
  for (let t = fromMs; t <= toMs; t += 16) w = state.weightsAt(t, toPerf);
  return w;
}

test("a cue ramps in and is fully present at its time, not before it starts", () => {
  const s = new ExpressionState();
  s.cue("happy", 1, 1000, 250);
  assert.deepEqual(run(s, 0, 740), {}, "nothing before the ramp starts");
  const mid = run(s, 752, 880);
  assert.ok(mid.mouthSmileLeft > 0.1 && mid.mouthSmileLeft < 0.55, `half way: ${mid.mouthSmileLeft}`);
  const full = run(s, 896, 1008);
  assert.ok(Math.abs(full.mouthSmileLeft - 0.6) < 0.01 && Math.abs(full.cheekSquintRight - 0.5) < 0.01);
});

test("a server cue starts at once and, once its sample is placed, is full when that sample is heard", () => {
  const s = new ExpressionState();
  s.event({ name: "curious", intensity: 1, at: 48000, ramp_ms: 250, weights: expressionWeights("curious", 1) }, 0);
  let placed = null;
  const toPerf = (sample) => (placed === null ? null : placed + (sample - 48000) / 48);
  const early = run(s, 0, 32, toPerf);
  assert.ok(early.browInnerUp > 0.05, "the face starts before the audio it precedes is heard");
  placed = 300; // the audio at sample 48000 is now scheduled to be heard at 300 ms
  const at = run(s, 48, 304, toPerf);
  assert.ok(Math.abs(at.browInnerUp - 0.4) < 0.01 && at.browOuterUpLeft > at.browOuterUpRight);
  const later = new ExpressionState();
  later.event({ name: "happy", intensity: 1, at: 96000, ramp_ms: 250 }, 0);
  placed = 2000; // placed before it ever showed: it waits for its ramp
  assert.deepEqual(run(later, 0, 1700, (n) => placed + (n - 96000) / 48), {});
});

test("bad weights from the wire are bounded and cleaned", () => {
  const s = new ExpressionState();
  const weights = Object.fromEntries([...Array(500).keys()].map((i) => [`x${i}`, 5]));
  weights.browInnerUp = Number.NaN;
  s.event({ name: "odd", intensity: "no", at: "soon", ramp_ms: 1e9, weights }, 0);
  const cue = s.cues[0];
  assert.equal(Object.keys(cue.weights).length, 64);
  assert.ok(Object.values(cue.weights).every((v) => v === 1));
  assert.equal(cue.rampMs, 2000);
});

test("an interruption relaxes the face to neutral and drops cues still to come", () => {
  const s = new ExpressionState();
  s.cue("happy", 1, 100, 100);
  s.cue("concerned", 1, 3000, 250);
  run(s, 0, 400);
  s.relax(800, 400);
  assert.deepEqual(s.cues.map((c) => c.name), ["happy", "neutral"]);
  assert.deepEqual(run(s, 416, 900), {});
});

test("the turn machine's faces: attentive while the user speaks, thinking while preparing", () => {
  const s = new ExpressionState();
  s.setState("user_speaking", 0);
  assert.ok(run(s, 0, 400).browInnerUp > 0.1);
  s.setState("speculating", 500);
  const w = run(s, 416, 900);
  assert.ok(w.browDownLeft > 0.1 && w.browOuterUpRight > 0.1);
  s.setState("responding", 1000); // the reply's own cues decide from here
  assert.equal(s.cues.at(-1).name, "thinking");
});

test("the 2D face reads brows up for a question, smile for happy, inner brows for concern", () => {
  const q = faceParams(expressionWeights("curious", 1));
  assert.ok(q.browLeft > 0.5 && q.browRight > 0.3);
  assert.ok(faceParams(expressionWeights("happy", 1)).smile > 0.5);
  const c = faceParams(expressionWeights("concerned", 1));
  assert.ok(c.browInner > 0.6 && c.frown > 0.3);
});

test("speech keeps the mouth: a smile gives way as the jaw opens, brows do not", () => {
  assert.equal(blendExpression("mouthSmileLeft", 0.1, 0.6, 0), 0.6);
  assert.ok(blendExpression("mouthSmileLeft", 0.1, 0.6, 1) < 0.3);
  assert.equal(blendExpression("browInnerUp", 0, 0.6, 1), 0.6);
});

test("gaze: eye contact by default, away and up while thinking, back after", () => {
  const m = new Motion();
  const looks = [];
  for (let t = 0; t < 10000; t += 16) looks.push(m.frame(t));
  assert.ok(looks.every((f) => Math.abs(f.gazeX) < 0.1 && Math.abs(f.gazeY) < 0.1), "eye contact with saccades");
  assert.ok(new Set(looks.map((f) => f.gazeX.toFixed(3))).size > 5, "the eyes do move");
  m.setState("speculating");
  const away = m.frame(10100);
  const later = m.frame(10200);
  assert.ok(later.gazeX > 0.5 && later.gazeY > 0.4, `thinking looks up and aside: ${JSON.stringify([away.gazeX, later.gazeX])}`);
  m.setState("listening");
  m.frame(10300);
  const back = m.frame(10400);
  assert.ok(Math.abs(back.gazeX) < 0.1, "eye contact again");
});

test("breathing and sway: more head movement while speaking than while listening", () => {
  const span = (state) => {
    const m = new Motion();
    m.setState(state);
    const xs = [];
    for (let t = 0; t < 20000; t += 50) xs.push(m.frame(t).swayX);
    return Math.max(...xs) - Math.min(...xs);
  };
  assert.ok(span("responding") > 1.5 * span("listening"));
});

test("the server's thinking cue (named 'thinking') drives the thinking motion and gaze", () => {
  const m = new Motion();
  m.gesture("thinking", 1000, 1200);
  m.frame(1000);
  const f = m.frame(1300);
  assert.ok(f.think > 0.5, `think ${f.think}`);
  assert.ok(m.frame(1400).gazeX > 0.5, "the eyes go up and aside");
});
