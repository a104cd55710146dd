// What makes an avatar look alive, whatever draws it: gesture cues from the server (nod,
// think, smile …) with their envelopes, an irregular blink schedule, the turn state, and a
// slow idle sway. Both renderers (the 2D face and the GLB head) read their motion from here.

function ease(x) {
  return x <= 0 ? 0 : x >= 1 ? 1 : x * x * (3 - 2 * x);
}

export class Motion {
  constructor() {
    this.gestures = []; // {name, startMs, durationMs}
    this.state = "listening";
    this.nextBlinkMs = 1500;
    this.blinkStartMs = -1e9;
  }

  /** A gesture cue from the server: nod, think, blink, smile …, starting at `atMs`. */
  gesture(name, atMs, durationMs = 600) {
    if (name === "blink") {
      this.blinkStartMs = atMs;
      return;
    }
    this.gestures.push({ name, startMs: atMs, durationMs });
    if (this.gestures.length > 16) this.gestures.shift();
  }

  setState(state) {
    this.state = state;
  }

  /** How strongly gesture `name` acts at `nowMs`: a nod swings (−…+), others rise and fall in [0, 1]. */
  level(name, nowMs) {
    let level = 0;
    for (const g of this.gestures) {
      if (g.name !== name) continue;
      const t = (nowMs - g.startMs) / g.durationMs;
      if (t >= 0 && t <= 1) level = Math.max(level, name === "nod" ? Math.sin(2 * Math.PI * t) * (1 - t) : ease(Math.min(t * 5, (1 - t) * 5)));
    }
    return level;
  }

  /** Eyelid closure in [0, 1]: scheduled blinks every 2–5.5 s, plus the server's blink cues. */
  blink(nowMs) {
    if (nowMs >= this.nextBlinkMs) {
      this.blinkStartMs = nowMs;
      // Irregular but deterministic intervals of 2–5.5 s.
      this.nextBlinkMs = nowMs + 2000 + ((Math.sin(nowMs * 12.9898) * 43758.5453) % 1 + 1) % 1 * 3500;
    }
    const t = (nowMs - this.blinkStartMs) / 160;
    return t >= 0 && t <= 1 ? Math.sin(Math.PI * t) : 0;
  }

  /** Everything a renderer needs for one frame (head offsets in design units, tilt in radians). */
  frame(nowMs) {
    const nod = this.level("nod", nowMs);
    const think = Math.max(this.level("think", nowMs), this.state === "speculating" ? 0.6 : 0);
    const attentive = this.state === "user_speaking" ? 1 : 0;
    return {
      nod,
      think,
      attentive,
      smile: this.level("smile", nowMs),
      blink: this.blink(nowMs),
      swayX: 3 * Math.sin(nowMs / 1900) + 1.5 * Math.sin(nowMs / 830),
      swayY: 2 * Math.sin(nowMs / 1400) + 10 * nod,
      tilt: 0.02 * Math.sin(nowMs / 2300) + 0.05 * think - 0.02 * attentive,
    };
  }
}
