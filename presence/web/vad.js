// Client-side silence suppression: decide which 10 ms capture blocks go to the server.
//
// Pure: blocks and their input-timeline positions go in, send decisions come out. An energy
// VAD with an adaptive noise floor (the same idea as presence/audio/vad.py's EnergyVad) opens
// a segment when a block is clearly above the floor; the `preRollBlocks` before it are sent
// too, so the onset of the first word is intact, and the segment stays open for
// `hangoverBlocks` of quiet, so word ends and short pauses are kept. The block that ends the
// hangover is sent as well, flagged as the segment's end, so the server sees the pause start.

export const DEFAULTS = Object.freeze({
  marginDb: 12, // above the noise floor
  minSpeechDb: -50, // never speech below this level (dBFS)
  initialFloorDb: -70,
  preRollBlocks: 10, // 100 ms
  hangoverBlocks: 30, // 300 ms
});

export function levelDb(block) {
  let sum = 0;
  for (let i = 0; i < block.length; i++) sum += block[i] * block[i];
  return 10 * Math.log10(sum / Math.max(1, block.length) + 1e-12);
}

export class SilenceSuppressor {
  constructor(options = {}) {
    this.options = { ...DEFAULTS, ...options };
    this.floorDb = this.options.initialFloorDb;
    this.active = false;
    this.quietBlocks = 0;
    this.preRoll = []; // [{block, start}]
    this.lastSpeechEnd = null; // input sample just after the last block judged speech
    this.stats = { blocks: 0, sent: 0, segments: 0 };
  }

  /** Whether this block, alone, sounds like speech; also updates the noise floor. */
  isSpeech(block) {
    const db = levelDb(block);
    const o = this.options;
    const speech = db > this.floorDb + o.marginDb && db > o.minSpeechDb;
    // The floor follows quiet blocks quickly and loud ones slowly, so steady noise is learnt.
    const rate = db < this.floorDb ? 0.3 : speech ? 0.002 : 0.05;
    this.floorDb += rate * (db - this.floorDb);
    return speech;
  }

  /**
   * One capture block starting at input sample `start`. Returns the blocks to send now, in
   * order, each `{block, start, segmentStart, segmentEnd, speech}`.
   */
  push(block, start) {
    const o = this.options;
    this.stats.blocks += 1;
    const speech = this.isSpeech(block);
    if (speech) this.lastSpeechEnd = start + block.length;
    const out = [];
    if (!this.active) {
      if (!speech) {
        this.preRoll.push({ block, start });
        if (this.preRoll.length > o.preRollBlocks) this.preRoll.shift();
        return out;
      }
      this.active = true;
      this.quietBlocks = 0;
      this.stats.segments += 1;
      const roll = this.preRoll;
      this.preRoll = [];
      roll.forEach((b, i) => out.push({ ...b, segmentStart: i === 0, segmentEnd: false, speech: false }));
      out.push({ block, start, segmentStart: roll.length === 0, segmentEnd: false, speech: true });
    } else {
      this.quietBlocks = speech ? 0 : this.quietBlocks + 1;
      const ends = this.quietBlocks > o.hangoverBlocks;
      out.push({ block, start, segmentStart: false, segmentEnd: ends, speech });
      if (ends) this.active = false;
    }
    this.stats.sent += out.length;
    return out;
  }
}
