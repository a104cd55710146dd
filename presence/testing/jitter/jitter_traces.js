// Arrival traces for the jitter buffer, and the scoring used by its tests and benchmark.
//
// A trace is the server's reply audio as the page would receive it: 20 ms chunks of 24 kHz
// audio grouped into replies (segments), each chunk with its timeline stamp, the time the
// server sent it and the time it arrived (null when lost). Sending follows the server: a
// reply starts at "now" on the output timeline and chunks leave as the engine produces them
// (real time, `leadMs` ahead at most). WebSocket runs over TCP, which never reorders or loses:
// a delayed chunk holds back the ones behind it (FIFO). The datagram traces (reordering,
// loss) are there for the WebRTC transport to come.

export const RATE = 24000;
export const CHUNK_SAMPLES = 480; // 20 ms

/** Small seeded PRNG (mulberry32) so traces are identical on every run. */
export function rng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function exponential(random, meanMs) {
  return -meanMs * Math.log(1 - random());
}

/**
 * Replies of 1.5–4 s separated by 1–2.5 s of silence, over `durationMs`.
 * `delay(sendMs, random)` gives a chunk's network delay, or null when it is lost.
 */
export function buildTrace({ name, description, seed, durationMs = 60000, leadMs = 0, fifo = true, delay }) {
  const random = rng(seed);
  const chunks = [];
  let wallMs = 500;
  while (wallMs < durationMs) {
    const count = Math.round((1500 + random() * 2500) / 20);
    const startTs = Math.round((wallMs * RATE) / 1000);
    for (let k = 0; k < count; k++) {
      const flags = (k === 0 ? 1 : 0) | (k === count - 1 ? 2 : 0);
      const sendMs = wallMs + Math.max(0, k * 20 - leadMs);
      const d = delay(sendMs, random);
      chunks.push({ ts: startTs + k * CHUNK_SAMPLES, samples: CHUNK_SAMPLES, flags, sendMs, arrivalMs: d === null ? null : sendMs + d });
    }
    wallMs += count * 20 + 1000 + random() * 1500;
  }
  if (fifo) {
    let last = -Infinity;
    for (const c of chunks) {
      if (c.arrivalMs === null) continue;
      c.arrivalMs = Math.max(c.arrivalMs, last);
      last = c.arrivalMs;
    }
  }
  return { name, description, chunks };
}

export const BASE_MS = 15;

export function traces() {
  return [
    buildTrace({
      name: "calm",
      description: "wired LAN: 15 ms ± 1 ms",
      seed: 1,
      delay: (t, r) => BASE_MS + r() * 2,
    }),
    buildTrace({
      name: "jittery",
      description: "busy path: exponential extra delay, mean 12 ms",
      seed: 2,
      delay: (t, r) => BASE_MS + exponential(r, 12),
    }),
    buildTrace({
      name: "bursty",
      description: "Wi-Fi power save: the radio wakes every 60 ms and delivers in a burst",
      seed: 3,
      delay: (t, r) => Math.ceil((t + BASE_MS) / 60) * 60 + r() * 2 - t,
    }),
    buildTrace({
      name: "spike",
      description: "calm, then a 400 ms stall every 20 s (a TCP retransmission timeout)",
      seed: 4,
      delay: (t, r) => {
        const phase = t % 20000;
        const stall = phase >= 10000 && phase < 10400 ? 10400 - phase : 0;
        return BASE_MS + r() * 2 + stall;
      },
    }),
    buildTrace({
      name: "regime",
      description: "alternates 10 s calm and 10 s jittery (mean 25 ms extra): tests grow and shrink",
      seed: 5,
      delay: (t, r) => BASE_MS + (Math.floor(t / 10000) % 2 ? exponential(r, 25) : r() * 2),
    }),
    buildTrace({
      name: "burst-send",
      description: "server 1 s ahead of real time (scripted engine), jittery path",
      seed: 6,
      leadMs: 1000,
      delay: (t, r) => BASE_MS + exponential(r, 12),
    }),
    buildTrace({
      name: "reordering",
      description: "datagrams: jittery, 5% of chunks 30 ms extra (overtaken by the next)",
      seed: 7,
      fifo: false,
      delay: (t, r) => BASE_MS + exponential(r, 5) + (r() < 0.05 ? 30 : 0),
    }),
    buildTrace({
      name: "loss",
      description: "datagrams: calm, 3% of chunks lost",
      seed: 8,
      fifo: false,
      delay: (t, r) => (r() < 0.03 ? null : BASE_MS + r() * 2),
    }),
  ];
}

/**
 * Run a jitter buffer (anything with push(chunk, nowMs, leadMs)) over a trace, in arrival order.
 * Returns its late-loss rate and mean added delay: how long after the earliest possible start
 * of its reply (the first chunk's arrival) each played chunk is heard, minus its own offset.
 */
export function score(trace, buffer, leadMs = 0) {
  const arrivals = trace.chunks.filter((c) => c.arrivalMs !== null).sort((a, b) => a.arrivalMs - b.arrivalMs);
  const firstArrival = new Map(); // segment start ts → earliest arrival (transit) of the segment's first chunk
  const segmentOf = segmentIndex(trace);
  let late = 0;
  let played = 0;
  let addedSum = 0;
  for (const c of arrivals) {
    const decision = buffer.push(c, c.arrivalMs, leadMs);
    const seg = segmentOf.get(c.ts);
    if (!firstArrival.has(seg.startTs)) firstArrival.set(seg.startTs, seg.firstTransitMs);
    if (decision.kind === "play") {
      played += 1;
      const tsMs = (c.ts * 1000) / RATE;
      addedSum += decision.playMs - (tsMs + seg.firstTransitMs) - leadMs;
    } else if (decision.kind === "late") late += 1;
  }
  const underruns = buffer.stats?.underruns ?? 0;
  return {
    delivered: arrivals.length,
    played,
    late,
    underruns,
    lateRate: late / arrivals.length,
    glitchesPerMinute: ((late + underruns) * 60000) / (trace.chunks.length * 20),
    meanAddedMs: addedSum / played,
  };
}

/** For each chunk ts: its segment's start and the transit of the segment's first chunk. */
function segmentIndex(trace) {
  const map = new Map();
  let current = null;
  for (const c of trace.chunks) {
    if (c.flags & 1) current = { startTs: c.ts, firstTransitMs: null, chunks: [] };
    current.chunks.push(c);
    map.set(c.ts, current);
  }
  for (const seg of new Set(map.values())) {
    const first = seg.chunks.find((c) => c.arrivalMs !== null);
    seg.firstTransitMs = first.arrivalMs - (first.ts * 1000) / RATE;
  }
  return map;
}

/**
 * The oracle: the smallest single fixed delay, chosen knowing the whole trace, with which no
 * delivered chunk is late (each reply anchored at its first chunk's arrival). Also the
 * clairvoyant per-reply optimum, averaged over chunks: the lower bound for any anchored buffer.
 */
export function oracle(trace) {
  const segments = new Set(segmentIndex(trace).values());
  let fixedMs = 0;
  let perReplySum = 0;
  let count = 0;
  for (const seg of segments) {
    let need = 0;
    const delivered = seg.chunks.filter((c) => c.arrivalMs !== null);
    for (const c of delivered) need = Math.max(need, c.arrivalMs - (c.ts * 1000) / RATE - seg.firstTransitMs);
    fixedMs = Math.max(fixedMs, need);
    perReplySum += need * delivered.length;
    count += delivered.length;
  }
  return { fixedMs, perReplyMeanMs: perReplySum / count };
}

/** A buffer with one fixed added delay per reply and no adaptation: the usual baseline. */
export class FixedDelayBuffer {
  constructor(delayMs) {
    this.delayMs = delayMs;
    this.offsetMs = null;
  }

  push(chunk, nowMs, leadMs = 0) {
    const tsMs = (chunk.ts * 1000) / RATE;
    if (chunk.flags & 1 || this.offsetMs === null) this.offsetMs = nowMs + leadMs + this.delayMs - tsMs;
    const playMs = tsMs + this.offsetMs;
    return playMs >= nowMs + leadMs ? { kind: "play", playMs } : { kind: "late" };
  }
}
