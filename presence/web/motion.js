// What makes an avatar look alive, whatever draws it: gesture cues from the server (nod,
// think, smile …) with their envelopes, an irregular blink schedule, the turn state, gaze
// (eye contact, saccades, glances away while thinking or now and then while speaking), and
// breathing with an idle sway that is calmer while listening than while speaking. Both
// renderers (the 2D face and the 3D heads) read their motion from here.

/** A deterministic pseudo-random number in [0, 1) for integer-ish `n`. */
function hash01(n) {
  return (((Math.sin(n * 12.9898 + 78.233) * 43758.5453) % 1) + 1) % 1;
}

function ease(x) {
  return x <= 0 ? 0 : x >= 1 ? 1 : x * x * (3 - 2 * x);
}

export class Motion {
  constructor() {
    this.gestures = []; // {name, startMs, durationMs}
    this.state = "listening";
    this.nextBlinkMs = 1500;
    this.blinkStartMs = -1e9;
    this.gazeFrom = [0, 0];
    this.gazeTo = [0, 0];
    this.gazeAtMs = -1e9; // when the eyes last jumped
    this.nextSaccadeMs = 0;
    this.saccades = 0;
  }

  /** Where the eyes look, each axis in [-1, 1] (0, 0 = at the viewer; +x the avatar's left, +y up).
   * Eye contact by default, with small saccades every 0.4–2.2 s; up and aside while thinking;
   * a short glance away now and then while speaking, as people do when they plan what to say. */
  gaze(nowMs, think) {
    const thinking = think > 0.3;
    if (thinking !== this.thinking) this.nextSaccadeMs = nowMs; // look away (or back) at once
    this.thinking = thinking;
    if (nowMs >= this.nextSaccadeMs) {
      this.saccades += 1;
      const r1 = hash01(this.saccades);
      const r2 = hash01(this.saccades + 0.5);
      let to = [(r1 - 0.5) * 0.16, (r2 - 0.5) * 0.12]; // fixations around the viewer's eyes
      if (thinking) to = [0.55 + 0.2 * r1, 0.45 + 0.2 * r2];
      else if (this.state === "responding" && r1 < 0.22) to = [r2 < 0.5 ? -0.5 : 0.5, -0.15];
      this.gazeFrom = this.gazeNow ?? [0, 0];
      this.gazeTo = to;
      this.gazeAtMs = nowMs;
      const glance = Math.abs(to[0]) > 0.3 && !thinking;
      this.nextSaccadeMs = nowMs + (glance ? 500 : 400 + 1800 * hash01(this.saccades + 0.25));
    }
    const a = ease((nowMs - this.gazeAtMs) / 45); // a saccade takes ~45 ms
    this.gazeNow = [0, 1].map((k) => this.gazeFrom[k] + (this.gazeTo[k] - this.gazeFrom[k]) * a);
    return this.gazeNow;
  }

  /** A gesture cue from the server: nod, think, blink, smile …, starting at `atMs`. */
  gesture(name, atMs, durationMs = 600) {
    if (name === "thinking") name = "think"; // the server's cue name (presence/session/gestures.py)
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
    const speaking = this.state === "responding" ? 1 : 0;
    const breath = Math.sin((2 * Math.PI * nowMs) / (speaking ? 3200 : 4200)); // ~15–19 breaths a minute
    const sway = 1 + 0.8 * speaking; // more head movement while talking
    const [gazeX, gazeY] = this.gaze(nowMs, think);
    return {
      nod,
      think,
      attentive,
      smile: this.level("smile", nowMs),
      blink: this.blink(nowMs),
      speaking,
      breath,
      gazeX,
      gazeY,
      swayX: sway * (3 * Math.sin(nowMs / 1900) + 1.5 * Math.sin(nowMs / 830)),
      swayY: sway * 2 * Math.sin(nowMs / 1400) + 1.5 * breath + 10 * nod,
      tilt: sway * 0.02 * Math.sin(nowMs / 2300) + 0.05 * think - 0.02 * attentive,
    };
  }
}
