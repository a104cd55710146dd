// The page: wires capture, session, playback, animation, avatar and HUD together, and keeps
// per-turn measurements on the page's one clock (performance.now(), with the audio output
// mapped onto it by getOutputTimestamp()). `window.presence` exposes state for tests.
//
// URL options: ?autostart=1 (start without the button; needs an autoplay-permissive browser),
// ?processing=0 (no echo cancellation / noise suppression / auto gain), ?codec=pcm (no Opus,
// either way; otherwise Opus is used in each direction the browser's WebCodecs supports),
// ?glb=URL (a GLB head to render with three.js; by default the server's /avatar.glb if it has
// one, else the built-in 3D head head.glb where WebGL works, else the 2D face), ?avatar=2d (the
// 2D face instead of the built-in 3D head; an operator's GLB still wins).
// ?transport=webrtc (Opus over RTP and data channels, webrtc.js).

import { AnimationTrack } from "./animation.js";
import { Avatar } from "./avatar.js";
import { Capture, MicrophoneError, opusSupported } from "./capture.js";
import { ExpressionState } from "./expression.js";
import { Hud } from "./hud.js";
import { openness, poseFromWeights } from "./mouth.js";
import { OpusReplyDecoder, opusOutputSupported } from "./opus-output.js";
import { OPUS_RATE } from "./opus-timing.js";
import { Playback } from "./playback.js";
import { clientHello } from "./protocol.js";
import { SessionConnection } from "./session.js";

const params = new URLSearchParams(location.search);
const MOUTH_OPEN = 0.12; // openness counted as "the mouth moved"

const hud = new Hud(document);
const canvas2d = document.getElementById("avatar");
const canvas3d = document.getElementById("avatar3d");
let avatar = new Avatar(canvas2d);
const animation = new AnimationTrack();
const expressions = new ExpressionState(); // issue 18: the face's expression cues
const turns = new Map(); // turn_id → measurements (ms on the performance clock unless *_ms relative)
const frames = []; // recent rendered frames: {perfMs, ts, openness}
const state = {
  micState: "off",
  turnState: "listening",
  respondingTurn: null,
  replyTurn: null, // the turn whose reply audio plays now
  weightSet: { name: "oculus15", names: [] },
  lastSpeechEndPerfMs: null,
  events: [],
  errors: [],
  cuts: 0,
};

function turnOf(id) {
  if (!turns.has(id)) turns.set(id, { turnId: id, stages: {}, interrupted: false });
  return turns.get(id);
}

const playback = new Playback({
  onFirstAudio: ({ scheduledAtMs, heardAtMs }) => {
    const id = state.respondingTurn;
    if (id === null) return;
    state.replyTurn = id;
    const t = turnOf(id);
    if (t.firstScheduledPerfMs !== undefined) return;
    t.firstScheduledPerfMs = scheduledAtMs;
    t.firstHeardPerfMs = heardAtMs;
    refreshTurn(t);
  },
});

const PCM_OUT = { codec: "pcm_s16le", sample_rate: 24000, channels: 1 };
const OPUS_OUT = { codec: "opus", sample_rate: OPUS_RATE, channels: 1 };
const opusReplies = new OpusReplyDecoder(
  (decoded) => playback.pushSamples(decoded),
  (err) => hud.error(`could not decode the reply audio: ${err?.message ?? err}`),
);

const connection = new SessionConnection({
  hello: { ...clientHello(), features: ["expressions"] }, // issue 18: ask for expression cues
  handlers: {
    onHello: (agreement) => {
      state.weightSet = agreement.weight_set;
      opusReplies.close();
      // The output timeline runs at the chosen format's rate (48 kHz with Opus).
      playback.setSampleRate(agreement.audio_out.sample_rate).catch((err) => hud.error(`audio output: ${err}`));
      playback.reset();
      animation.clear();
      state.agreement = agreement;
      // A new session has a new input timeline (and a fresh Opus decoder expecting a pre-skip).
      capture?.setCodec(agreement.audio_in.codec);
    },
    onAudio: (frame, nowMs) => {
      if (state.agreement?.audio_out.codec === "opus") opusReplies.push(frame, nowMs);
      else playback.push(frame, nowMs);
    },
    onAnimation: (frame) => animation.add(frame),
    onEvent: onEvent,
    onStatus: ({ state: s, message }) => {
      hud.setStatus(s, message);
      state.connection = s;
      state.connectionMessage = message;
    },
    onRtt: (ms) => {
      state.rttMs = ms;
      playback.jitter.observeRtt(ms);
    },
  },
});

function onEvent(body, nowMs) {
  state.events.push({ ...body, receivedAtMs: nowMs });
  if (state.events.length > 500) state.events.shift();
  switch (body.type) {
    case "turn": {
      state.turnState = body.state;
      avatar.setState(body.state);
      expressions.setState(body.state, nowMs);
      const t = turnOf(body.turn_id);
      if ((body.state === "paused" || body.state === "speculating") && state.lastSpeechEndPerfMs !== null) {
        t.speechEndPerfMs = state.lastSpeechEndPerfMs;
      }
      if (body.state === "responding") {
        state.respondingTurn = body.turn_id;
        t.respondingPerfMs = nowMs; // the confirmation reached the page (benchmarks' waterfall)
        t.speechEndPerfMs ??= state.lastSpeechEndPerfMs;
      }
      break;
    }
    case "transcript":
      hud.transcriptLine(body.role, body.text, body.final, body.turn_id);
      break;
    case "interrupt":
      playback.cut(body.cut_at);
      animation.cut(body.cut_at);
      expressions.relax(timelineToPerf(body.cut_at, nowMs));
      state.cuts += 1;
      turnOf(body.turn_id).interrupted = true;
      break;
    case "gesture": {
      const at = body.at === null || body.at === undefined ? nowMs : timelineToPerf(body.at, nowMs);
      avatar.gesture(body.name, at, body.duration_ms ?? 600);
      break;
    }
    case "expression":
      expressions.event(body, nowMs);
      break;
    case "metrics":
      onMetrics(body);
      break;
    case "error":
      state.errors.push(body);
      hud.error(`server error (${body.code}): ${body.message}`);
      break;
  }
}

/** A gesture stamped on the output timeline happens when that sample is heard. */
function timelineToPerf(ts, nowMs) {
  const heard = playback.heardTimeline(nowMs);
  return heard === null ? nowMs : nowMs + ((ts - heard) * 1000) / playback.sampleRate;
}

/** Output-timeline sample → perf time it is heard, once audio there is playing or scheduled. */
function timelinePerf(ts) {
  const now = performance.now();
  const heard = playback.heardTimeline(now);
  if (heard !== null) return now + ((ts - heard) * 1000) / playback.sampleRate;
  const piece = playback.pieces.findLast((p) => ts >= p.tsStart && ts <= p.tsEnd);
  return piece && playback.context ? playback.heardPerfMs((ts + piece.offset) / playback.sampleRate) : null;
}

function onMetrics(m) {
  const t = turnOf(m.turn_id);
  t.server = m;
  t.interrupted ||= Boolean(m.interrupted);
  refreshTurn(t);
  const c = t.stages;
  connection.sendEvent({ type: "client_metrics", turn_id: m.turn_id, ...roundAll(c), rtt_ms: state.rttMs ?? null });
}

function roundAll(o) {
  return Object.fromEntries(Object.entries(o).map(([k, v]) => [k, typeof v === "number" ? Math.round(v * 10) / 10 : v]));
}

/** Fill the waterfall stages, all in ms after the user's speech ended (page VAD). */
function refreshTurn(t) {
  const end = t.speechEndPerfMs;
  if (end === undefined || end === null) return;
  const s = t.server;
  if (s) {
    // Server times count from when the last speech frame arrived there: about half an RTT
    // plus half a 20 ms frame after the speech ended here.
    const uplink = (state.rttMs ?? 0) / 2 + 10;
    const at = (v) => (typeof v === "number" ? v + uplink : undefined);
    t.stages.confirmedMs = at(s.turn_confirmed_ms);
    t.stages.engineFirstAudioMs = at(s.engine_first_audio_ms);
    t.stages.firstAudioSentMs = at(s.first_audio_sent_ms);
  }
  if (t.firstScheduledPerfMs !== undefined) t.stages.firstScheduledMs = t.firstScheduledPerfMs - end;
  if (t.firstHeardPerfMs !== undefined) t.stages.firstHeardMs = t.firstHeardPerfMs - end;
  if (t.firstMouthPerfMs !== undefined) t.stages.firstMouthMs = t.firstMouthPerfMs - end;
  hud.showTurn(t);
}

// ---------------------------------------------------------------- render loop

function frame() {
  const now = performance.now();
  const out = rtc ?? playback; // whichever clock plays the reply
  const ts = out.running ? out.heardTimeline(now) : null;
  const weights = ts === null ? null : animation.sample(ts);
  const pose = poseFromWeights(state.weightSet.name, state.weightSet.names, weights);
  const face = expressions.weightsAt(now, timelinePerf);
  avatar.render(pose, now, state.weightSet.names, weights, face);
  const open = openness(pose);
  frames.push({ perfMs: now, ts, openness: open, smile: face.mouthSmileLeft ?? 0, brow: face.browInnerUp ?? 0 });
  if (frames.length > 3600) frames.splice(0, frames.length - 3600);
  if (ts !== null) {
    animation.prune(ts - 2400);
    const id = state.replyTurn;
    if (id !== null && open >= MOUTH_OPEN) {
      const t = turnOf(id);
      if (t.firstMouthPerfMs === undefined) {
        t.firstMouthPerfMs = now;
        refreshTurn(t);
      }
    }
  }
  requestAnimationFrame(frame);
}

let lastPlaybackReport = null;
function tick() {
  if (rtc) return hud.showStats(rtc.hudStats(state.micState)); // it reports playback itself
  const now = performance.now();
  const heard = playback.running ? playback.heardTimeline(now) : null;
  if (heard !== null && heard !== lastPlaybackReport) {
    connection.sendEvent({ type: "playback", heard_until: Math.floor(heard) });
    lastPlaybackReport = heard;
  }
  const ctx = playback.context;
  hud.showStats({
    rttMs: state.rttMs,
    jitterMs: playback.jitter.jitterMs,
    depthMs: playback.depthMs(now),
    targetMs: playback.jitter.targetDelayMs(now),
    outputLatencyMs: ctx ? ((ctx.baseLatency || 0) + (ctx.outputLatency || 0)) * 1000 : null,
    underruns: playback.status.underruns + playback.jitter.stats.underruns,
    late: playback.jitter.stats.late,
    micState: state.micState,
  });
}

// ---------------------------------------------------------------- start

/** The operator's GLB head when there is one, else the built-in 3D head where WebGL works
 * (three.js is loaded only then); the 2D face otherwise. */
async function chooseAvatar() {
  let url = params.get("glb") ?? "avatar.glb";
  let found = false;
  try {
    found = (await fetch(url, { method: "HEAD" })).ok;
  } catch {
    found = false;
  }
  const builtIn = !params.has("glb") && params.get("avatar") !== "2d" && webglWorks();
  if (!found && builtIn) [url, found] = ["head.glb", true];
  if (!found) return;
  try {
    const { GlbAvatar } = await import("./avatar3d.js");
    const head = await GlbAvatar.load(canvas3d, url, { lambert: url === "head.glb" });
    avatar = head;
    canvas2d.hidden = true;
    canvas3d.hidden = false;
    connection.hello.weight_sets = [head.weightSet]; // the head's own morph names, one to one
    state.avatarKind = url === "head.glb" ? "head" : "glb";
  } catch (err) {
    hud.error(`could not show the 3D head ${url} (${err?.message ?? err}); showing the 2D face`);
  }
}
function webglWorks() {
  try {
    return Boolean(document.createElement("canvas").getContext("webgl2"));
  } catch {
    return false;
  }
}
state.avatarKind = "2d";
const avatarReady = chooseAvatar();

let capture = null;
let rtc = null; // the WebRTC session with ?transport=webrtc (then `connection` stays unused)

async function startWebRtc() {
  const { WebRtcSession } = await import("./webrtc.js");
  // Capture sends nothing here (RTP carries the microphone): it is the page's VAD and clock.
  capture = new Capture({ processing: params.get("processing") !== "0", send: () => {} });
  await capture.start("pcm_s16le");
  state.capture = capture;
  state.transport = "webrtc";
  rtc = new WebRtcSession({ hello: connection.hello, handlers: connection.h, stream: capture.stream, onFirstAudio: playback.onFirstAudio });
  await rtc.connect();
  state.micState = "on (webrtc opus)";
}

async function start() {
  document.getElementById("start").disabled = true;
  try {
    await avatarReady;
    if (params.get("transport") === "webrtc") return await startWebRtc();
    const pcmOnly = params.get("codec") === "pcm";
    const opusOut = !pcmOnly && (await opusOutputSupported());
    connection.hello.audio_out = opusOut ? [OPUS_OUT, PCM_OUT] : [PCM_OUT];
    await playback.setSampleRate(opusOut ? OPUS_RATE : PCM_OUT.sample_rate);
    await playback.start();
    const codec = pcmOnly || !(await opusSupported()) ? "pcm_s16le" : "opus";
    connection.hello.audio_in = codec === "opus"
      ? [{ codec: "opus", sample_rate: 48000, channels: 1 }, { codec: "pcm_s16le", sample_rate: 16000, channels: 1 }]
      : [{ codec: "pcm_s16le", sample_rate: 16000, channels: 1 }];
    connection.connect();
    capture = new Capture({
      processing: params.get("processing") !== "0",
      send: (frame) => {
        // Only speak the codec the server chose; before the hello, nothing is sent.
        if (state.agreement && state.agreement.audio_in.codec === capture.codec) connection.sendAudio(frame);
      },
    });
    await capture.start(codec);
    state.micState = codec === "opus" ? "on (opus)" : "on (pcm 16 kHz)";
    state.capture = capture;
  } catch (err) {
    const message = err instanceof MicrophoneError ? err.message : `could not start: ${err?.message ?? err}`;
    state.micState = "unavailable";
    state.startError = message;
    hud.error(message);
    document.getElementById("start").disabled = false;
  }
}

// The page VAD's speech end: the end of the last block judged speech, on the perf clock.
setInterval(() => {
  if (!capture || capture.firstBlockPerfMs === null || capture.suppressor.lastSpeechEnd === null) return;
  state.lastSpeechEndPerfMs = capture.firstBlockPerfMs + capture.suppressor.lastSpeechEnd / 48;
}, 10);
setInterval(tick, 100);
requestAnimationFrame(frame);
document.getElementById("start").addEventListener("click", start);
if (params.get("autostart") === "1") start();

window.presence = {
  state, turns, frames, expressions, playback, opusReplies, animation, connection, start, avatarReady,
  get avatar() { return avatar; },
  get capture() { return capture; },
  get rtc() { return rtc; },
};
