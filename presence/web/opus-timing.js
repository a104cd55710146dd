// The Opus timestamp rule of docs/protocol.md ("Audio"), the browser's copy of
// presence/media.py: 20 ms packets at 48 kHz, and a decoder drops the encoder's 312-sample
// look-ahead (the pre-skip) once per stream. Timestamps name the PCM after pre-skip removal:
// packet 0 of a stream whose first input sample is E decodes from E, packet n ≥ 1 from
// E + 960·n − 312. Capture stamps packets with it; reply playback drops the pre-skip.

export const OPUS_RATE = 48000;
export const OPUS_FRAME = 960;
export const PRE_SKIP = 312;

/** The stamp of packet `n` of an Opus stream that starts at input sample `streamStart`. */
export function opusPacketTimestamp(streamStart, n) {
  return n === 0 ? streamStart : streamStart + OPUS_FRAME * n - PRE_SKIP;
}
