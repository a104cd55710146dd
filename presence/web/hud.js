// The heads-up display: connection status, live transport numbers, a per-turn latency
// waterfall and the transcripts of both sides. Plain DOM; it only shows what it is given.

export const STAGES = [
  ["confirmedMs", "turn confirmed", "#7aa2f7"],
  ["engineFirstAudioMs", "engine first audio", "#bb9af7"],
  ["firstAudioSentMs", "first audio sent", "#9ece6a"],
  ["firstHeardMs", "first audio heard", "#e0af68"],
  ["firstMouthMs", "first mouth movement", "#f7768e"],
];

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

export class Hud {
  constructor(root) {
    this.status = root.querySelector("#status");
    this.stats = root.querySelector("#stats");
    this.waterfall = root.querySelector("#waterfall");
    this.transcript = root.querySelector("#transcript");
    this.errors = root.querySelector("#errors");
    this.partial = new Map(); // `${role}:${turn}` → element being refined
  }

  setStatus(state, message) {
    this.status.dataset.state = state;
    this.status.textContent = message;
  }

  error(message) {
    const item = el("li", "error", message);
    this.errors.prepend(item);
    while (this.errors.children.length > 5) this.errors.lastChild.remove();
  }

  showStats(values) {
    const f = (v, unit = " ms") => (v === null || v === undefined || Number.isNaN(v) ? "–" : `${Math.round(v)}${unit}`);
    if (values.transport === "webrtc") {
      const pct = (v) => (typeof v === "number" ? `${v.toFixed(1)} %` : "–");
      this.stats.textContent = [
        "transport WebRTC",
        `RTT ${f(values.rttMs)}`,
        `jitter ${f(values.jitterMs)}`,
        `loss ${pct(values.lossPct)}`,
        `concealed ${pct(values.concealedPct)}`,
        `buffer ${f(values.bufferMs)}`,
        `mic ${values.micState}`,
      ].join(" · ");
      return;
    }
    this.stats.textContent = [
      "transport WebSocket",
      `RTT ${f(values.rttMs)}`,
      `jitter ${f(values.jitterMs)}`,
      `buffer ${f(values.depthMs)} (target ${f(values.targetMs)})`,
      `output latency ${f(values.outputLatencyMs)}`,
      `underruns ${values.underruns}`,
      `late ${values.late}`,
      `mic ${values.micState}`,
    ].join(" · ");
  }

  /** `turn`: {turnId, stages: {confirmedMs, …} in ms after the user's speech ended}. */
  showTurn(turn) {
    let row = this.waterfall.querySelector(`[data-turn="${turn.turnId}"]`);
    if (!row) {
      row = el("div", "turn");
      row.dataset.turn = String(turn.turnId);
      this.waterfall.prepend(row);
      while (this.waterfall.children.length > 6) this.waterfall.lastChild.remove();
    }
    row.replaceChildren(el("div", "turn-title", `turn ${turn.turnId}${turn.interrupted ? " (interrupted)" : ""}`));
    const values = STAGES.map(([key]) => turn.stages[key]).filter((v) => typeof v === "number");
    const scale = Math.max(200, ...values);
    for (const [key, label, colour] of STAGES) {
      const value = turn.stages[key];
      const line = el("div", "step");
      line.append(el("span", "stage-label", label));
      const bar = el("span", "bar");
      if (typeof value === "number") {
        bar.style.width = `${Math.max(1, (100 * Math.max(0, value)) / scale)}%`;
        bar.style.background = colour;
      }
      line.append(bar, el("span", "stage-value", typeof value === "number" ? `${Math.round(value)} ms` : "–"));
      line.dataset.stage = key;
      row.append(line);
    }
  }

  transcriptLine(role, text, final, turnId) {
    const key = `${role}:${turnId}`;
    let line = this.partial.get(key);
    if (!line) {
      line = el("li", role);
      this.transcript.append(line);
      this.partial.set(key, line);
      while (this.transcript.children.length > 40) this.transcript.firstChild.remove();
    }
    line.textContent = `${role === "user" ? "you" : "agent"}: ${text}`;
    line.classList.toggle("partial", !final);
    this.transcript.scrollTop = this.transcript.scrollHeight;
  }
}
