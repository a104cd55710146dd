// Pure client modules: silence suppression, decimation, animation sampling, mouth poses.
import { test } from "node:test";
import assert from "node:assert/strict";
import { SilenceSuppressor } from "../../presence/web/vad.js";
import { Decimator } from "../../presence/web/dsp.js";
import { AnimationTrack } from "../../presence/web/animation.js";
import { OCULUS_POSES, openness, poseFromWeights } from "../../presence/web/mouth.js";

const BLOCK = 480;
const tone = (amp, start) => Float32Array.from({ length: BLOCK }, (_, i) => amp * Math.sin((2 * Math.PI * 200 * (start + i)) / 48000));

test("silence is not sent; speech is sent with its pre-roll, hangover and a marked end", () => {
  const s = new SilenceSuppressor({ preRollBlocks: 3, hangoverBlocks: 5 });
  const sent = [];
  let start = 0;
  const feed = (amp, blocks) => {
    for (let i = 0; i < blocks; i++, start += BLOCK) sent.push(...s.push(tone(amp, start), start));
  };
  feed(0.0005, 50);
  assert.equal(sent.length, 0, "quiet room: nothing sent");
  feed(0.3, 20);
  assert.equal(sent[0].start, 47 * BLOCK, "three blocks of pre-roll before the onset");
  assert.ok(sent[0].segmentStart && !sent.slice(1).some((d) => d.segmentStart));
  feed(0.0005, 20);
  const ends = sent.filter((d) => d.segmentEnd);
  assert.equal(ends.length, 1);
  assert.equal(ends[0].start, (50 + 20 + 5) * BLOCK, "the block after the hangover closes the segment");
  assert.equal(sent.length, 3 + 20 + 6);
  for (let i = 1; i < sent.length; i++) assert.equal(sent[i].start, sent[i - 1].start + BLOCK, "contiguous");
  assert.equal(s.lastSpeechEnd, 70 * BLOCK);
});

test("the decimator keeps a low tone, rejects one above 8 kHz, and reports its delay", () => {
  const run = (freq) => {
    const d = new Decimator(3, 49);
    const out = [];
    for (let b = 0; b < 20; b++) {
      const block = Float32Array.from({ length: BLOCK }, (_, i) => Math.sin((2 * Math.PI * freq * (b * BLOCK + i)) / 48000));
      out.push(...d.process(block));
    }
    assert.equal(out.length, (20 * BLOCK) / 3);
    const tail = out.slice(100);
    return Math.sqrt(tail.reduce((a, v) => a + v * v, 0) / tail.length);
  };
  assert.ok(Math.abs(run(1000) - Math.SQRT1_2) < 0.02);
  assert.ok(run(12000) < 0.01);
  assert.equal(new Decimator(3, 49).delayInputSamples, 24);
});

test("animation frames are interpolated at any timeline sample and cut by an interruption", () => {
  const track = new AnimationTrack();
  track.add({ timestamp: 1000, stepSamples: 400, weightsPerFrame: 2, frameCount: 3, weights: Uint8Array.from([0, 255, 255, 0, 255, 255]) });
  assert.equal(track.sample(999), null);
  assert.deepEqual(Array.from(track.sample(1000)), [0, 1]);
  assert.deepEqual(Array.from(track.sample(1200)), [0.5, 0.5]);
  track.cut(1800);
  assert.equal(track.sample(1800), null);
  assert.deepEqual(Array.from(track.sample(1400)), [1, 0]);
});

test("mouth poses: aa opens wide, p/b/m closes the lips, ou rounds, silence rests", () => {
  const names = Object.keys(OCULUS_POSES);
  const one = (name) => names.map((n) => (n === name ? 1 : 0));
  const aa = poseFromWeights("oculus15", names, one("aa"));
  const pp = poseFromWeights("oculus15", names, one("PP"));
  const ou = poseFromWeights("oculus15", names, one("ou"));
  assert.equal(openness(aa), 1);
  assert.equal(openness(pp), 0);
  assert.equal(pp.close, 1);
  assert.ok(ou.round === 1 && openness(ou) < openness(aa));
  assert.equal(openness(poseFromWeights("oculus15", names, null)), 0);
  const arkit = poseFromWeights("arkit", ["jawOpen", "mouthClose", "mouthPucker"], [0.8, 0, 0.9]);
  assert.ok(Math.abs(arkit.jaw - 0.8) < 1e-6 && Math.abs(arkit.round - 0.9) < 1e-6);
});
