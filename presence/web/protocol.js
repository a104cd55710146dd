// Wire protocol v1 for browsers: the same frames as presence/protocol/frames.py.
// docs/protocol.md is normative. Pure functions over bytes; no sockets, no DOM.

export const MAGIC0 = 0x50; // "P"
export const MAGIC1 = 0x56; // "V"
export const VERSION = 1;
export const HEADER_BYTES = 24;
export const MAX_PAYLOAD_BYTES = 64 * 1024;

export const FrameType = Object.freeze({
  CLIENT_HELLO: 0x01,
  SERVER_HELLO: 0x02,
  AUDIO_IN: 0x10,
  AUDIO_OUT: 0x11,
  ANIMATION: 0x20,
  EVENT: 0x30,
  PING: 0x40,
  PONG: 0x41,
});

export const Flags = Object.freeze({ NONE: 0, SEGMENT_START: 0x0001, SEGMENT_END: 0x0002 });
const DEFINED_FLAGS = Flags.SEGMENT_START | Flags.SEGMENT_END;
const TYPE_NAMES = new Map(Object.entries(FrameType).map(([name, value]) => [value, name]));

/** WebSocket close codes (presence/protocol/errors.py CloseCode) with a sentence a user can act on. */
export const CloseCode = Object.freeze({
  NORMAL: 1000,
  GOING_AWAY: 1001,
  PROTOCOL_ERROR: 1002,
  ABNORMAL: 1006, // set by the browser when the connection drops without a close frame
  INVALID_PAYLOAD: 1007,
  MESSAGE_TOO_BIG: 1009,
  INTERNAL_ERROR: 1011,
  TRY_AGAIN_LATER: 1013,
  UNSUPPORTED_VERSION: 4000,
  UNKNOWN_FRAME_TYPE: 4001,
  TRUNCATED_FRAME: 4002,
  WRONG_DIRECTION: 4003,
  UNEXPECTED_FRAME: 4004,
  NEGOTIATION_FAILED: 4005,
  SLOW_CONSUMER: 4008,
  IDLE_TIMEOUT: 4009,
});

const CLOSE_TEXT = new Map([
  [1000, "session ended"],
  [1001, "the server is shutting down"],
  [1002, "protocol error"],
  [1006, "connection lost"],
  [1007, "invalid payload"],
  [1008, "input out of bounds"],
  [1009, "message too big"],
  [1011, "server error"],
  [1013, "the server is busy (session limit)"],
  [4000, "unsupported protocol version"],
  [4001, "unknown frame type"],
  [4002, "truncated frame"],
  [4003, "frame sent in the wrong direction"],
  [4004, "unexpected frame"],
  [4005, "no common audio format"],
  [4008, "this page could not keep up with the server"],
  [4009, "idle timeout"],
  [4401, "not authorised"],
  [4403, "this page's origin is not allowed"],
]);

export function describeClose(code, reason) {
  const text = CLOSE_TEXT.get(code) ?? `closed (${code})`;
  return reason ? `${text}: ${reason}` : text;
}

/**
 * Whether a close is worth reconnecting after. 4xxx protocol errors and 1002/1007/1009 would
 * repeat on the next attempt, so they are not; drops, shutdowns, overload and timeouts are.
 */
export function shouldReconnect(code) {
  return [1001, 1006, 1011, 1013, 4008, 4009].includes(code);
}

/** The one error decode() throws; `closeCode` is what the server would close with. */
export class ProtocolError extends Error {
  constructor(message, closeCode = CloseCode.PROTOCOL_ERROR) {
    super(message);
    this.name = "ProtocolError";
    this.closeCode = closeCode;
  }
}

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });

function jsonBytes(body) {
  if (body === null || typeof body !== "object" || Array.isArray(body)) {
    throw new TypeError("JSON payload must be an object");
  }
  return encoder.encode(JSON.stringify(body));
}

function checkU32(value, what) {
  if (!Number.isInteger(value) || value < 0 || value > 0xffffffff) throw new RangeError(`${what} must fit u32`);
}

/**
 * Encode one frame: `{type, seq, timestamp, flags, ...payload fields}` → Uint8Array.
 * Payload fields: `body` (hello, event), `data` (audio, Uint8Array), `weightSet`,
 * `weightsPerFrame`, `stepSamples`, `weights` (animation), `echoTimestamp`, `receivedAt` (pong).
 */
export function encode(frame) {
  const { type, seq = 0, timestamp = 0, flags = 0 } = frame;
  let payload;
  switch (type) {
    case FrameType.CLIENT_HELLO:
    case FrameType.SERVER_HELLO:
      payload = jsonBytes(frame.body);
      break;
    case FrameType.EVENT:
      if (typeof frame.body?.type !== "string") throw new TypeError("event must have a string 'type'");
      payload = jsonBytes(frame.body);
      break;
    case FrameType.AUDIO_IN:
    case FrameType.AUDIO_OUT:
      payload = frame.data instanceof Uint8Array ? frame.data : new Uint8Array(frame.data);
      break;
    case FrameType.ANIMATION: {
      const weights = frame.weights;
      const perFrame = frame.weightsPerFrame;
      const count = perFrame ? weights.length / perFrame : 0;
      if (!perFrame || !count || !Number.isInteger(count) || count > 0xffff) {
        throw new RangeError("animation weights must be a whole, non-empty number of frames");
      }
      payload = new Uint8Array(8 + weights.length);
      const view = new DataView(payload.buffer);
      view.setUint8(0, frame.weightSet);
      view.setUint8(1, perFrame);
      view.setUint16(2, count, true);
      view.setUint32(4, frame.stepSamples, true);
      payload.set(weights, 8);
      break;
    }
    case FrameType.PING:
      payload = new Uint8Array(0);
      break;
    case FrameType.PONG: {
      payload = new Uint8Array(16);
      const view = new DataView(payload.buffer);
      view.setBigInt64(0, BigInt(frame.echoTimestamp), true);
      view.setBigInt64(8, BigInt(frame.receivedAt), true);
      break;
    }
    default:
      throw new TypeError(`unknown frame type ${type}`);
  }
  if (payload.length > MAX_PAYLOAD_BYTES) throw new RangeError(`payload of ${payload.length} bytes is too big`);
  if (flags & ~DEFINED_FLAGS) throw new RangeError(`undefined flag bits 0x${flags.toString(16)}`);
  checkU32(seq, "seq");
  if (!Number.isSafeInteger(timestamp)) throw new RangeError("timestamp must be a safe integer");
  const out = new Uint8Array(HEADER_BYTES + payload.length);
  const view = new DataView(out.buffer);
  out[0] = MAGIC0;
  out[1] = MAGIC1;
  view.setUint8(2, VERSION);
  view.setUint8(3, type);
  view.setUint16(4, flags, true);
  view.setUint16(6, 0, true);
  view.setUint32(8, seq, true);
  view.setBigInt64(12, BigInt(timestamp), true);
  view.setUint32(20, payload.length, true);
  out.set(payload, HEADER_BYTES);
  return out;
}

function parseJson(bytes) {
  let text;
  try {
    text = decoder.decode(bytes);
  } catch {
    throw new ProtocolError("JSON payload is not valid UTF-8", CloseCode.INVALID_PAYLOAD);
  }
  let value;
  try {
    value = JSON.parse(text);
  } catch {
    throw new ProtocolError("payload is not valid JSON", CloseCode.INVALID_PAYLOAD);
  }
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    throw new ProtocolError("JSON payload must be an object", CloseCode.INVALID_PAYLOAD);
  }
  return value;
}

function toInt(big) {
  if (big > BigInt(Number.MAX_SAFE_INTEGER) || big < BigInt(Number.MIN_SAFE_INTEGER)) {
    throw new ProtocolError("timestamp beyond 2^53 is not representable here", CloseCode.INVALID_PAYLOAD);
  }
  return Number(big);
}

/** Decode exactly one frame from an ArrayBuffer, typed array or DataView; throws ProtocolError. */
export function decode(message) {
  const bytes =
    message instanceof Uint8Array
      ? message
      : ArrayBuffer.isView(message)
        ? new Uint8Array(message.buffer, message.byteOffset, message.byteLength)
        : new Uint8Array(message);
  if (bytes.length < HEADER_BYTES) {
    throw new ProtocolError(`frame of ${bytes.length} bytes is shorter than the header`, CloseCode.TRUNCATED_FRAME);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (bytes[0] !== MAGIC0 || bytes[1] !== MAGIC1) throw new ProtocolError("not a presence frame (bad magic)");
  const version = view.getUint8(2);
  if (version !== VERSION) {
    throw new ProtocolError(`protocol version ${version} is not supported`, CloseCode.UNSUPPORTED_VERSION);
  }
  const type = view.getUint8(3);
  if (!TYPE_NAMES.has(type)) {
    throw new ProtocolError(`unknown frame type 0x${type.toString(16).padStart(2, "0")}`, CloseCode.UNKNOWN_FRAME_TYPE);
  }
  const flags = view.getUint16(4, true);
  if (flags & ~DEFINED_FLAGS || view.getUint16(6, true)) {
    throw new ProtocolError("undefined flag bits or reserved header field set");
  }
  const seq = view.getUint32(8, true);
  const timestamp = toInt(view.getBigInt64(12, true));
  const length = view.getUint32(20, true);
  if (length > MAX_PAYLOAD_BYTES) {
    throw new ProtocolError(`payload of ${length} bytes exceeds the limit`, CloseCode.MESSAGE_TOO_BIG);
  }
  const available = bytes.length - HEADER_BYTES;
  if (available < length) {
    throw new ProtocolError(`payload has ${available} of ${length} bytes`, CloseCode.TRUNCATED_FRAME);
  }
  if (available > length) {
    throw new ProtocolError(`${available - length} bytes after the declared payload`, CloseCode.TRUNCATED_FRAME);
  }
  const payload = bytes.subarray(HEADER_BYTES);
  const frame = { type, seq, timestamp, flags };
  switch (type) {
    case FrameType.CLIENT_HELLO:
    case FrameType.SERVER_HELLO:
      frame.body = parseJson(payload);
      break;
    case FrameType.EVENT:
      frame.body = parseJson(payload);
      if (typeof frame.body.type !== "string") {
        throw new ProtocolError("event must have a string 'type'", CloseCode.INVALID_PAYLOAD);
      }
      break;
    case FrameType.AUDIO_IN:
    case FrameType.AUDIO_OUT:
      frame.data = payload;
      break;
    case FrameType.ANIMATION: {
      if (payload.length < 8) throw new ProtocolError("animation payload shorter than 8 bytes", CloseCode.INVALID_PAYLOAD);
      const head = new DataView(payload.buffer, payload.byteOffset, 8);
      frame.weightSet = head.getUint8(0);
      frame.weightsPerFrame = head.getUint8(1);
      const count = head.getUint16(2, true);
      frame.stepSamples = head.getUint32(4, true);
      frame.weights = payload.subarray(8);
      if (frame.weightsPerFrame === 0 || count === 0 || frame.weights.length !== frame.weightsPerFrame * count) {
        throw new ProtocolError("animation weight bytes do not match its head", CloseCode.INVALID_PAYLOAD);
      }
      frame.frameCount = count;
      break;
    }
    case FrameType.PING:
      if (payload.length) throw new ProtocolError("ping carries no payload", CloseCode.INVALID_PAYLOAD);
      break;
    case FrameType.PONG: {
      if (payload.length !== 16) throw new ProtocolError("pong payload must be 16 bytes", CloseCode.INVALID_PAYLOAD);
      const body = new DataView(payload.buffer, payload.byteOffset, 16);
      frame.echoTimestamp = toInt(body.getBigInt64(0, true));
      frame.receivedAt = toInt(body.getBigInt64(8, true));
      break;
    }
  }
  return frame;
}

export function frameTypeName(type) {
  return TYPE_NAMES.get(type) ?? `0x${type.toString(16)}`;
}

/** Per-type send sequence numbers (u32, wrapping), as presence.protocol.Connection stamps them. */
export class Sequencer {
  #next = new Map();

  stamp(frame) {
    const seq = this.#next.get(frame.type) ?? 0;
    this.#next.set(frame.type, (seq + 1) >>> 0);
    return encode({ ...frame, seq });
  }
}

/** Media sequence check by serial-number arithmetic: false for a duplicate or older frame. */
export class SeqTracker {
  #last = new Map();
  lateOrDuplicate = 0;
  gaps = 0;

  accept(type, seq) {
    const last = this.#last.get(type);
    if (last !== undefined) {
      const delta = (seq - last) >>> 0;
      if (delta === 0 || delta >= 0x80000000) {
        this.lateOrDuplicate += 1;
        return false;
      }
      this.gaps += delta - 1;
    }
    this.#last.set(type, seq);
    return true;
  }
}

/** The client hello body; `audioIn` lists formats in preference order. */
export function clientHello({ audioIn, weightSets = ["oculus15", "arkit"], animationFps = 60 } = {}) {
  return {
    protocol: VERSION,
    client: "presence-web/0.1",
    audio_in: audioIn ?? [
      { codec: "opus", sample_rate: 48000, channels: 1 },
      { codec: "pcm_s16le", sample_rate: 16000, channels: 1 },
    ],
    audio_out: [{ codec: "pcm_s16le", sample_rate: 24000, channels: 1 }],
    weight_sets: weightSets,
    animation_fps: animationFps,
  };
}

/** Little-endian s16 PCM bytes → float32 in [-1, 1). */
export function s16leToFloat(bytes) {
  if (bytes.length % 2) throw new ProtocolError("odd-length PCM payload", CloseCode.INVALID_PAYLOAD);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out = new Float32Array(bytes.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = view.getInt16(2 * i, true) / 32768;
  return out;
}

/** float32 → little-endian s16 PCM bytes, clipped. */
export function floatToS16le(samples) {
  const out = new Uint8Array(samples.length * 2);
  const view = new DataView(out.buffer);
  for (let i = 0; i < samples.length; i++) {
    const v = Math.max(-1, Math.min(1, samples[i]));
    view.setInt16(2 * i, Math.round(v < 0 ? v * 32768 : v * 32767), true);
  }
  return out;
}
