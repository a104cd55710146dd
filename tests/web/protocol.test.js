// The browser codec must produce and accept exactly the bytes of presence/protocol/frames.py.
// Golden frames below were encoded by the Python reference (see tests/web/test_js_protocol.py,
// which also re-checks them against the live Python codec).
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  decode,
  encode,
  FrameType,
  Flags,
  ProtocolError,
  CloseCode,
  Sequencer,
  SeqTracker,
  s16leToFloat,
  floatToS16le,
  shouldReconnect,
  describeClose,
} from "../../presence/web/protocol.js";

const hex = (bytes) => Buffer.from(bytes).toString("hex");
const unhex = (text) => new Uint8Array(Buffer.from(text, "hex"));

export const GOLDEN = [
  [{ type: FrameType.CLIENT_HELLO, body: { protocol: 1 } }, "50560101000000000000000000000000000000000e0000007b2270726f746f636f6c223a317d"],
  [{ type: FrameType.AUDIO_IN, data: unhex("01020304"), seq: 7, timestamp: 960, flags: Flags.SEGMENT_START }, "505601100100000007000000c0030000000000000400000001020304"],
  [{ type: FrameType.AUDIO_OUT, data: unhex("ff7f"), seq: 2 ** 32 - 1, timestamp: -5, flags: 3 }, "5056011103000000fffffffffbffffffffffffff02000000ff7f"],
  [{ type: FrameType.ANIMATION, weightSet: 0, weightsPerFrame: 2, stepSamples: 400, weights: unhex("00ff0a14"), seq: 3, timestamp: 24000 }, "505601200000000003000000c05d0000000000000c000000000202009001000000ff0a14"],
  [{ type: FrameType.EVENT, body: { type: "playback", heard_until: 48000 } }, "5056013000000000000000000000000000000000270000007b2274797065223a22706c61796261636b222c2268656172645f756e74696c223a34383030307d"],
  [{ type: FrameType.PING, timestamp: 123456789012 }, "505601400000000000000000141a99be1c00000000000000"],
  [{ type: FrameType.PONG, echoTimestamp: 1234, receivedAt: 5678, timestamp: 99 }, "505601410000000000000000630000000000000010000000d2040000000000002e16000000000000"],
];

test("encode produces the reference bytes for every frame type", () => {
  for (const [frame, expected] of GOLDEN) assert.equal(hex(encode(frame)), expected, `type ${frame.type}`);
});

test("decode reads the reference bytes back into the same fields", () => {
  for (const [frame, bytes] of GOLDEN) {
    const decoded = decode(unhex(bytes));
    for (const [key, value] of Object.entries(frame)) {
      const got = decoded[key];
      if (value instanceof Uint8Array) assert.equal(hex(got), hex(value), key);
      else assert.deepEqual(got, value, key);
    }
    assert.equal(hex(encode(decoded)), bytes, "re-encoding is the identity");
  }
});

test("decode accepts an ArrayBuffer and a view into a larger buffer", () => {
  const bytes = unhex(GOLDEN[1][1]);
  assert.equal(decode(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length)).timestamp, 960);
  const padded = new Uint8Array(bytes.length + 10);
  padded.set(bytes, 5);
  assert.equal(decode(padded.subarray(5, 5 + bytes.length)).seq, 7);
});

function rejects(bytes, code) {
  assert.throws(() => decode(bytes), (err) => err instanceof ProtocolError && err.closeCode === code);
}

test("every prefix of a frame is refused as truncated", () => {
  const bytes = unhex(GOLDEN[4][1]);
  for (let n = 0; n < bytes.length; n++) rejects(bytes.subarray(0, n), CloseCode.TRUNCATED_FRAME);
});

test("trailing bytes after the payload are refused", () => {
  const bytes = unhex(GOLDEN[1][1] + "00");
  rejects(bytes, CloseCode.TRUNCATED_FRAME);
});

test("bad magic, version, type, flags and reserved bits map to their close codes", () => {
  const base = unhex(GOLDEN[5][1]);
  const mutate = (offset, value) => {
    const copy = base.slice();
    copy[offset] = value;
    return copy;
  };
  rejects(mutate(0, 0x51), CloseCode.PROTOCOL_ERROR);
  rejects(mutate(2, 2), CloseCode.UNSUPPORTED_VERSION);
  rejects(mutate(3, 0x99), CloseCode.UNKNOWN_FRAME_TYPE);
  rejects(mutate(4, 0x04), CloseCode.PROTOCOL_ERROR);
  rejects(mutate(6, 0x01), CloseCode.PROTOCOL_ERROR);
});

test("an oversized declared payload is refused before reading it", () => {
  const bytes = unhex(GOLDEN[5][1]);
  new DataView(bytes.buffer).setUint32(20, 64 * 1024 + 1, true);
  rejects(bytes, CloseCode.MESSAGE_TOO_BIG);
});

test("malformed payloads are invalid payloads", () => {
  const event = (text) => encode({ type: FrameType.AUDIO_IN, data: new TextEncoder().encode(text) }).slice();
  const asEvent = (text) => {
    const bytes = event(text);
    bytes[3] = FrameType.EVENT;
    return bytes;
  };
  rejects(asEvent("{"), CloseCode.INVALID_PAYLOAD);
  rejects(asEvent("[1]"), CloseCode.INVALID_PAYLOAD);
  rejects(asEvent('{"no_type":1}'), CloseCode.INVALID_PAYLOAD);
  const badUtf8 = encode({ type: FrameType.AUDIO_IN, data: unhex("7bff7d") });
  badUtf8[3] = FrameType.EVENT;
  rejects(badUtf8, CloseCode.INVALID_PAYLOAD);
  const ping = encode({ type: FrameType.AUDIO_IN, data: unhex("00") });
  ping[3] = FrameType.PING;
  rejects(ping, CloseCode.INVALID_PAYLOAD);
  const animation = unhex(GOLDEN[3][1]);
  rejects(animation.subarray(0, animation.length - 1).slice().fill(0x0b, 20, 21), CloseCode.INVALID_PAYLOAD);
});

test("encode refuses frames no peer could legally send", () => {
  assert.throws(() => encode({ type: FrameType.EVENT, body: { no: "type" } }), TypeError);
  assert.throws(() => encode({ type: FrameType.AUDIO_IN, data: new Uint8Array(2), flags: 4 }), RangeError);
  assert.throws(() => encode({ type: FrameType.AUDIO_IN, data: new Uint8Array(64 * 1024 + 1) }), RangeError);
  assert.throws(() => encode({ type: FrameType.PING, seq: -1 }), RangeError);
});

test("the sequencer numbers each frame type separately and wraps at 2^32", () => {
  const seq = new Sequencer();
  assert.equal(decode(seq.stamp({ type: FrameType.PING })).seq, 0);
  assert.equal(decode(seq.stamp({ type: FrameType.PING })).seq, 1);
  assert.equal(decode(seq.stamp({ type: FrameType.AUDIO_IN, data: new Uint8Array(0) })).seq, 0);
});

test("late or duplicate media is counted and dropped, gaps are counted", () => {
  const tracker = new SeqTracker();
  assert.ok(tracker.accept(FrameType.AUDIO_OUT, 0xfffffffe));
  assert.ok(tracker.accept(FrameType.AUDIO_OUT, 0xffffffff));
  assert.ok(tracker.accept(FrameType.AUDIO_OUT, 1)); // wrapped, one missing
  assert.equal(tracker.gaps, 1);
  assert.ok(!tracker.accept(FrameType.AUDIO_OUT, 1));
  assert.ok(!tracker.accept(FrameType.AUDIO_OUT, 0xffffffff));
  assert.equal(tracker.lateOrDuplicate, 2);
  assert.ok(tracker.accept(FrameType.ANIMATION, 0), "streams are independent");
});

test("PCM converts both ways within one quantisation step", () => {
  const samples = Float32Array.from([0, 0.5, -0.5, 1, -1, 0.25]);
  const back = s16leToFloat(floatToS16le(samples));
  for (let i = 0; i < samples.length; i++) assert.ok(Math.abs(back[i] - samples[i]) <= 1 / 32767);
  assert.throws(() => s16leToFloat(new Uint8Array(3)), ProtocolError);
});

test("only closes that would not repeat are retried", () => {
  assert.ok(shouldReconnect(1006));
  assert.ok(shouldReconnect(1001));
  assert.ok(!shouldReconnect(4005));
  assert.ok(!shouldReconnect(1000));
  assert.match(describeClose(4005, "no common input audio format"), /no common audio format: no common input/);
});
