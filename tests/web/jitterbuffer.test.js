// The adaptive jitter buffer, driven by exact arrival times (no browser, no clock reads).
import { test } from "node:test";
import assert from "node:assert/strict";
import { JitterBuffer, SEGMENT_START, SEGMENT_END, DelayHistogram } from "../../presence/web/jitterbuffer.js";
import { FixedDelayBuffer, oracle, score, traces, RATE, CHUNK_SAMPLES } from "../../presence/testing/jitter/jitter_traces.js";

const chunk = (k, flags = 0, start = 0) => ({ ts: start + k * CHUNK_SAMPLES, samples: CHUNK_SAMPLES, flags });

test("the histogram quantile covers the requested share of delays", () => {
  const h = new DelayHistogram(200, 1, 0.999);
  for (let i = 0; i < 5000; i++) h.add(i % 100);
  assert.ok(Math.abs(h.quantile(0.9) - 90) <= 2);
  assert.ok(h.quantile(0.5) < h.quantile(0.99));
});

test("chunks of one reply are heard back to back at their timeline spacing", () => {
  const jb = new JitterBuffer();
  const first = jb.push(chunk(0, SEGMENT_START), 1000, 5);
  assert.equal(first.kind, "play");
  assert.ok(first.playMs >= 1005, "nothing is heard before the output lead");
  for (let k = 1; k < 20; k++) {
    const d = jb.push(chunk(k), 1000 + k * 20 - (k % 3), 5); // early or on time
    assert.equal(d.kind, "play");
    assert.ok(Math.abs(d.playMs - (first.playMs + k * 20)) < 1e-9);
  }
});

test("the target grows after late chunks and shrinks again when the network calms", () => {
  const jb = new JitterBuffer();
  let now = 0;
  let start = 0;
  const reply = (jitter) => {
    for (let k = 0; k < 100; k++) jb.push(chunk(k, k === 0 ? SEGMENT_START : 0, start), now + k * 20 + jitter(k), 0);
    now += 3000;
    start += 3000 * 24;
  };
  reply(() => 0);
  const calm = jb.targetDelayMs(now);
  assert.ok(calm < 5, `calm target ${calm}`);
  for (let i = 0; i < 3; i++) reply((k) => (k % 7 === 3 ? 60 : 0));
  const jittery = jb.targetDelayMs(now);
  assert.ok(jittery >= 50, `after late chunks the target covers them (${jittery})`);
  for (let i = 0; i < 6; i++) reply(() => 0);
  assert.ok(jb.targetDelayMs(now) < jittery / 2, "calm again: the target came back down");
});

test("an in-order chunk after the audio ran out re-anchors the reply instead of being lost", () => {
  const jb = new JitterBuffer();
  jb.push(chunk(0, SEGMENT_START), 0, 0);
  jb.push(chunk(1), 20, 0);
  const late = jb.push(chunk(2), 200, 0); // its slot passed long ago, nothing after it is queued
  assert.equal(late.kind, "play");
  assert.ok(late.reanchored && late.playMs >= 200);
  assert.equal(jb.stats.underruns, 1);
  const next = jb.push(chunk(3), 201, 0);
  assert.equal(next.playMs, late.playMs + 20, "the rest follows contiguously");
});

test("a reordered chunk whose slot lies inside audio already scheduled is dropped as late", () => {
  const jb = new JitterBuffer({ minDelayMs: 10 });
  jb.push(chunk(0, SEGMENT_START), 0, 0); // heard at 10
  jb.push(chunk(2), 40, 0); // slot 50: scheduled, leaves a hole at 30..50
  assert.equal(jb.push(chunk(1), 45, 0).kind, "late"); // slot 30 < 45
  assert.equal(jb.stats.late, 1);
});

test("after an interruption nothing at or after the cut plays until the next reply", () => {
  const jb = new JitterBuffer();
  jb.push(chunk(0, SEGMENT_START), 0, 0);
  jb.push(chunk(1), 1, 0);
  jb.cut(2 * CHUNK_SAMPLES);
  assert.equal(jb.push(chunk(2), 2, 0).kind, "cut");
  assert.equal(jb.push(chunk(3, SEGMENT_END), 3, 0).kind, "cut");
  const next = jb.push(chunk(0, SEGMENT_START, 10 * CHUNK_SAMPLES), 500, 0);
  assert.equal(next.kind, "play");
  assert.equal(jb.stats.cut, 2);
});

test("a reply placed right after one still playing continues it without overlap", () => {
  const jb = new JitterBuffer();
  let last;
  for (let k = 0; k < 10; k++) last = jb.push(chunk(k, k === 0 ? SEGMENT_START : k === 9 ? SEGMENT_END : 0), k, 0);
  const second = jb.push(chunk(10, SEGMENT_START), 12, 0);
  assert.equal(second.playMs, last.playMs + 20);
});

test("RTT variation sets the target before any audio was seen", () => {
  const jb = new JitterBuffer();
  assert.equal(jb.targetDelayMs(0), 0);
  for (const rtt of [20, 60, 20, 80, 20, 70]) jb.observeRtt(rtt);
  assert.ok(jb.targetDelayMs(0) > 10);
});

test("on every trace the adaptive buffer drops under 2% of chunks as late", () => {
  for (const trace of traces()) {
    const adaptive = score(trace, new JitterBuffer());
    assert.ok(adaptive.lateRate < 0.02, `${trace.name}: late ${adaptive.lateRate}`);
  }
});

test("when conditions change, adapting adds less delay than the best fixed delay chosen in hindsight", () => {
  for (const trace of traces().filter((t) => ["bursty", "spike", "regime"].includes(t.name))) {
    const adaptive = score(trace, new JitterBuffer());
    const o = oracle(trace);
    assert.ok(adaptive.meanAddedMs < o.fixedMs, `${trace.name}: ${adaptive.meanAddedMs} vs oracle ${o.fixedMs}`);
  }
});

test("the oracle fixed delay really is lossless and a smaller one is not", () => {
  const trace = traces().find((t) => t.name === "jittery");
  const o = oracle(trace);
  assert.equal(score(trace, new FixedDelayBuffer(o.fixedMs)).late, 0);
  assert.ok(score(trace, new FixedDelayBuffer(o.fixedMs - 5)).late > 0);
});

test("traces are deterministic", () => {
  const [a, b] = [traces(), traces()];
  assert.deepEqual(a[1].chunks.slice(0, 50), b[1].chunks.slice(0, 50));
  assert.equal(RATE, 24000);
});
