// The WebSocket session: hello, frame dispatch, ping/RTT, and reconnection with backoff.
// It moves frames between the socket and the page's handlers; it decides nothing about media.

import { clientHello, decode, describeClose, FrameType, ProtocolError, Sequencer, SeqTracker, shouldReconnect } from "./protocol.js";

export const BACKOFF_MS = [500, 1000, 2000, 4000, 8000, 15000];

/**
 * A draining server closes with 1001 and "reconnect" in the reason (docs/protocol.md): another
 * backend is ready, so come back without backing off; after the reply's last second, which the
 * server sent ahead (max_lead_ms) and a new session's hello would cut, plus a jitter that
 * spreads a drained server's clients. Same rule as presence/client/reconnect.py.
 */
export function reconnectDelayMs(attempt, code, reason, unitRandom = Math.random()) {
  if (attempt === 0 && code === 1001 && (reason ?? "").includes("reconnect")) return 1000 + 250 * unitRandom;
  return BACKOFF_MS[Math.min(attempt, BACKOFF_MS.length - 1)];
}
const PING_EVERY_MS = 1000;

/**
 * The session token (docs/security.md): the page's own `?token=` (an operator's backend put it
 * there), else one asked of the server at /v1/token (a loopback server hands its page tokens),
 * else none (a server that needs none answers 404).
 */
export async function sessionToken(pageToken) {
  if (pageToken) return pageToken;
  const answer = await fetch("/v1/token", { cache: "no-store" });
  if (answer.status === 404) return null;
  if (!answer.ok) throw new Error(`the server refused a session token (HTTP ${answer.status})`);
  return (await answer.json()).token;
}

export function withToken(url, token) {
  if (!token) return url;
  const u = new URL(url);
  u.searchParams.set("token", token);
  return u.toString();
}

/**
 * `handlers`: onHello(agreement), onAudio(frame, nowMs), onAnimation(frame), onEvent(body),
 * onStatus({state, message}), onRtt(ms). `url` defaults to this page's /v1/session.
 */
export class SessionConnection {
  constructor({ url, hello, handlers, token }) {
    this.url = url ?? `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/v1/session`;
    this.token = token ?? new URLSearchParams(location.search).get("token");
    this.hello = hello ?? clientHello();
    this.h = handlers;
    this.attempt = 0;
    this.closedByUser = false;
    this.rttMs = null;
    this.agreement = null;
  }

  async connect() {
    this.closedByUser = false;
    this.failed = false;
    this.seq = new Sequencer();
    this.tracker = new SeqTracker();
    this.agreement = null;
    let token;
    try {
      token = await sessionToken(this.token);
    } catch (err) {
      // The server is out of reach (or refused): the same as a lost connection, retried.
      if (!this.closedByUser) this.#retryLater(`could not get a session token (${err.message ?? err})`);
      return;
    }
    const ws = new WebSocket(withToken(this.url, token));
    ws.binaryType = "arraybuffer";
    this.ws = ws;
    this.h.onStatus({ state: "connecting", message: this.attempt ? `reconnecting (attempt ${this.attempt + 1})…` : "connecting…" });
    ws.onopen = () => ws.send(this.seq.stamp({ type: FrameType.CLIENT_HELLO, body: this.hello }));
    ws.onmessage = (e) => this.#onMessage(e.data);
    ws.onclose = (e) => this.#onClose(e);
  }

  #onMessage(data) {
    const now = performance.now();
    if (typeof data === "string") return this.#fail(4004, "the server sent a text message");
    let frame;
    try {
      frame = decode(data);
    } catch (err) {
      if (err instanceof ProtocolError) return this.#fail(err.closeCode, err.message);
      throw err;
    }
    switch (frame.type) {
      case FrameType.SERVER_HELLO:
        this.agreement = frame.body;
        this.attempt = 0;
        this.h.onStatus({ state: "open", message: `connected (${frame.body.engine} engine)` });
        this.h.onHello(frame.body);
        this.#startPinging();
        break;
      case FrameType.AUDIO_OUT:
        if (this.tracker.accept(frame.type, frame.seq)) this.h.onAudio(frame, now);
        break;
      case FrameType.ANIMATION:
        if (this.tracker.accept(frame.type, frame.seq)) this.h.onAnimation(frame);
        break;
      case FrameType.EVENT:
        this.h.onEvent(frame.body, now);
        break;
      case FrameType.PING:
        this.#send({ type: FrameType.PONG, echoTimestamp: frame.timestamp, receivedAt: Math.round(now * 1000), timestamp: Math.round(performance.now() * 1000) });
        break;
      case FrameType.PONG:
        this.rttMs = now - frame.echoTimestamp / 1000;
        this.h.onRtt(this.rttMs);
        break;
      default:
        this.#fail(4003, `the server sent a client-only frame (type ${frame.type})`);
    }
  }

  #fail(code, reason) {
    this.h.onStatus({ state: "error", message: describeClose(code, reason) });
    this.failed = true;
    // Browsers may only send 1000 or 3000–4999; the protocol codes below 3000 go as 1000.
    this.ws?.close(code >= 3000 ? code : 1000, reason.slice(0, 120));
  }

  #startPinging() {
    clearInterval(this.pinger);
    // Pings measure RTT and keep the session alive while silence is suppressed.
    this.pinger = setInterval(() => this.#send({ type: FrameType.PING, timestamp: Math.round(performance.now() * 1000) }), PING_EVERY_MS);
    this.#send({ type: FrameType.PING, timestamp: Math.round(performance.now() * 1000) });
  }

  #onClose(e) {
    clearInterval(this.pinger);
    const reason = describeClose(e.code, e.reason);
    if (this.closedByUser) {
      this.h.onStatus({ state: "closed", message: "disconnected" });
      return;
    }
    if (this.failed || !shouldReconnect(e.code)) {
      // A protocol error would repeat on every attempt: say why and stop.
      this.h.onStatus({ state: "closed", message: `session closed — ${reason}` });
      return;
    }
    this.#retryLater(reason, reconnectDelayMs(this.attempt, e.code, e.reason));
  }

  #retryLater(reason, delay = reconnectDelayMs(this.attempt)) {
    this.attempt += 1;
    this.h.onStatus({ state: "reconnecting", message: `${reason}; reconnecting in ${(delay / 1000).toFixed(1)} s…`, delayMs: delay });
    this.retry = setTimeout(() => this.connect(), delay);
  }

  #send(frame) {
    if (this.ws?.readyState === WebSocket.OPEN) this.ws.send(this.seq.stamp(frame));
  }

  sendAudio({ data, timestamp, flags }) {
    if (this.agreement !== null) this.#send({ type: FrameType.AUDIO_IN, data, timestamp, flags });
  }

  sendEvent(body) {
    if (this.agreement !== null) this.#send({ type: FrameType.EVENT, body });
  }

  close() {
    this.closedByUser = true;
    clearTimeout(this.retry);
    clearInterval(this.pinger);
    this.ws?.close(1000, "bye");
  }
}

