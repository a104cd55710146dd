// A procedural 2D face on a canvas: mouth from a pose (mouth.js), blinks, head motion and
// gesture cues. No assets: everything is drawn from a few parameters each frame.
//
// The mouth is an opening between an upper and a lower lip curve. Jaw drop lowers the lower
// lip and the chin; rounding narrows and rounds the opening; spread widens it; closure presses
// the lips into one line (p/b/m); a tucked lower lip rides up under the upper teeth (f/v);
// teeth and tongue show inside the opening. The cavity colour is fixed (CAVITY) so tests can
// read pixels back and measure how open the mouth really is on screen.

import { faceParams } from "./expression.js";
import { Motion } from "./motion.js";

export const CAVITY = [58, 13, 18];
const SKIN = "#e8b996";
const SKIN_SHADE = "#d49d7a";
const LIP = "#b5545a";
const HAIR = "#3b2a20";

export class Avatar {
  constructor(canvas) {
    this.canvas = canvas;
    this.ctx = canvas.getContext("2d", { willReadFrequently: true });
    this.motion = new Motion();
    this.weightSet = null; // draws any weight set, through mouth.js poses
  }

  /** The canvas rectangle where the mouth opening can appear (for pixel checks). */
  mouthRegion() {
    const { width, height } = this.canvas;
    return { x: Math.round(width * 0.3), y: Math.round(height * 0.6), w: Math.round(width * 0.4), h: Math.round(height * 0.2) };
  }

  /** A gesture cue from the server: nod, think, blink, smile …, starting at `atMs`. */
  gesture(name, atMs, durationMs = 600) {
    this.motion.gesture(name, atMs, durationMs);
  }

  setState(state) {
    this.motion.setState(state);
  }

  /** Draw one frame: `pose` from mouth.js, `nowMs` on the performance clock, `expression`
   * ARKit weights from expression.js (brows, lids, mouth corners; speech keeps the mouth). */
  render(pose, nowMs, weightNames = [], weights = null, expression = {}) {
    const ctx = this.ctx;
    const { width: W, height: H } = this.canvas;
    const s = Math.min(W, H / 1.15) / 360; // design units: a 360 × 414 face
    const m = this.motion.frame(nowMs);
    const { think, blink, attentive, swayX, swayY, tilt } = m;
    const face = faceParams(expression);
    this.face = face;
    const smile = Math.min(1, m.smile + face.smile * 1.6);

    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.fillStyle = "#1d2430";
    ctx.fillRect(0, 0, W, H);
    ctx.setTransform(s, 0, 0, s, W / 2 + swayX * s, H * 0.08 + swayY * s);
    ctx.rotate(tilt);
    const jawDrop = 16 * pose.jaw * (1 - pose.close);

    // Neck, hair back, face with a chin that follows the jaw.
    ctx.fillStyle = SKIN_SHADE;
    ctx.fillRect(-45, 300, 90, 120);
    ctx.fillStyle = HAIR;
    ctx.beginPath();
    ctx.ellipse(0, 150, 150, 165, 0, 0, Math.PI * 2);
    ctx.fill();
    ctx.fillStyle = SKIN;
    ctx.beginPath();
    ctx.moveTo(-125, 140);
    ctx.bezierCurveTo(-125, 20, 125, 20, 125, 140);
    ctx.bezierCurveTo(125, 250, 70, 320 + jawDrop, 0, 325 + jawDrop);
    ctx.bezierCurveTo(-70, 320 + jawDrop, -125, 250, -125, 140);
    ctx.fill();
    ctx.beginPath(); // ears
    ctx.ellipse(-128, 170, 14, 26, 0, 0, Math.PI * 2);
    ctx.ellipse(128, 170, 14, 26, 0, 0, Math.PI * 2);
    ctx.fill();
    ctx.fillStyle = HAIR; // fringe
    ctx.beginPath();
    ctx.moveTo(-130, 130);
    ctx.bezierCurveTo(-120, 10, 120, 0, 132, 120);
    ctx.bezierCurveTo(60, 70, -40, 90, -130, 130);
    ctx.fill();

    this.#eyes(ctx, blink, think, attentive, face, m.gazeX, m.gazeY);
    ctx.strokeStyle = SKIN_SHADE; // nose
    ctx.lineWidth = 4;
    ctx.lineCap = "round";
    ctx.beginPath();
    ctx.moveTo(-4, 165);
    ctx.quadraticCurveTo(-14, 215, -2, 222);
    ctx.quadraticCurveTo(8, 226, 14, 220);
    ctx.stroke();
    this.#mouth(ctx, pose, smile + 0.15 * attentive - 1.2 * face.frown);
  }

  #eyes(ctx, blink, think, attentive, face, gazeX, gazeY) {
    const lookX = 9 * gazeX; // the avatar's left is the viewer's right (+x)
    const lookY = -6 * gazeY;
    for (const side of [-1, 1]) {
      const x = 48 * side;
      const y = 160;
      const open = Math.max(0, (1 - blink) * (1 + 0.35 * face.wide - 0.35 * face.squint));
      ctx.fillStyle = "#fff";
      ctx.beginPath();
      ctx.ellipse(x, y, 22, 13 * open + 0.5, 0, 0, Math.PI * 2);
      ctx.fill();
      if (open > 0.15) {
        ctx.save();
        ctx.beginPath();
        ctx.ellipse(x, y, 22, 13 * open, 0, 0, Math.PI * 2);
        ctx.clip();
        ctx.fillStyle = "#4a6b8a";
        ctx.beginPath();
        ctx.arc(x + lookX, y + lookY, 9, 0, Math.PI * 2);
        ctx.fill();
        ctx.fillStyle = "#111";
        ctx.beginPath();
        ctx.arc(x + lookX, y + lookY, 4.5, 0, Math.PI * 2);
        ctx.fill();
        ctx.restore();
      }
      ctx.strokeStyle = "#5a3a2a"; // lid line
      ctx.lineWidth = 2.5;
      ctx.beginPath();
      ctx.ellipse(x, y, 22, 13 * open + 0.5, 0, Math.PI, 2 * Math.PI);
      ctx.stroke();
      // Brows: one lifts when thinking; expressions raise, lower and tilt them (inner ends up
      // when concerned). The viewer's right (side 1) is the avatar's left.
      const brow = side === 1 ? face.browLeft : face.browRight;
      const raise = (side === 1 ? 10 : 3) * think + 4 * attentive + 14 * brow;
      const inner = 10 * face.browInner;
      const [innerX, outerX] = side === 1 ? [x - 22, x + 22] : [x + 22, x - 22];
      ctx.strokeStyle = HAIR;
      ctx.lineWidth = 6;
      ctx.beginPath();
      ctx.moveTo(innerX, y - 24 - raise * 0.8 - inner);
      ctx.quadraticCurveTo(x, y - 34 - raise, outerX, y - 26 - raise * (side === 1 ? 1.2 : 0.8));
      ctx.stroke();
    }
  }

  #mouth(ctx, pose, smile) {
    const cy = 262;
    const open = 30 * pose.jaw * (1 - pose.close) * (1 - 0.6 * pose.tuck);
    const halfW = 38 * (1 + 0.3 * pose.wide - 0.45 * pose.round) + 3 * smile;
    const corner = cy - 4 * smile + 2 * pose.round;
    const upperY = cy - 2 - 3 * pose.round - 2 * pose.wide * pose.jaw;
    const lowerY = cy + open;
    const roundness = 0.55 + 0.4 * pose.round; // control points further out: rounder opening
    const upper = () => {
      ctx.moveTo(-halfW, corner);
      ctx.bezierCurveTo(-halfW * roundness, upperY - open * 0.25 * pose.round, halfW * roundness, upperY - open * 0.25 * pose.round, halfW, corner);
    };
    const lower = () => {
      ctx.bezierCurveTo(halfW * roundness, lowerY + 2, -halfW * roundness, lowerY + 2, -halfW, corner);
    };
    if (open > 1) {
      ctx.save();
      ctx.beginPath();
      upper();
      lower();
      ctx.closePath();
      ctx.fillStyle = `rgb(${CAVITY.join(",")})`;
      ctx.fill();
      ctx.clip();
      ctx.fillStyle = "#f4f1ea"; // upper teeth, then lower teeth when the jaw is well open
      ctx.fillRect(-halfW * 0.7, upperY - 4, halfW * 1.4, 3 + 7 * pose.teeth);
      if (pose.jaw > 0.4) ctx.fillRect(-halfW * 0.6, lowerY - 2 - 4 * pose.teeth, halfW * 1.2, 6);
      ctx.fillStyle = "#c0606a"; // tongue, tip forward for th
      ctx.beginPath();
      ctx.ellipse(0, lowerY - 2 - 8 * pose.tongue, halfW * 0.5, 6 + 4 * pose.tongue, 0, 0, Math.PI * 2);
      ctx.fill();
      ctx.restore();
    }
    ctx.strokeStyle = LIP;
    ctx.lineCap = "round";
    ctx.lineWidth = 7 - 2 * pose.close; // pressed lips thin out
    ctx.beginPath();
    upper();
    ctx.stroke();
    ctx.lineWidth = 9 - 2 * pose.close + 2 * pose.round;
    ctx.beginPath();
    ctx.moveTo(halfW, corner);
    lower();
    ctx.stroke();
    if (pose.tuck > 0.3 && open <= 1) {
      ctx.fillStyle = "#f4f1ea"; // f/v: upper teeth resting on the lower lip
      ctx.fillRect(-halfW * 0.5, cy - 3, halfW, 4 * pose.tuck);
    }
  }
}
