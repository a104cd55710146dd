// The WebRTC page module's pure parts: DTX in the answer, RTP timestamps → output timeline.
import { test } from "node:test";
import assert from "node:assert/strict";
import { heardSample, playedSample, RATE, unmuteAfterCut, withDtx } from "../../presence/web/webrtc.js";

const ANSWER = "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 96\r\na=rtpmap:96 opus/48000/2\r\na=fmtp:96 minptime=10;useinbandfec=1\r\n";

test("the answer's Opus fmtp asks the browser for DTX, once", () => {
  const sdp = withDtx(ANSWER);
  assert.match(sdp, /^a=fmtp:96 minptime=10;useinbandfec=1;usedtx=1\r$/m);
  assert.equal(withDtx(sdp), sdp);
  const bare = withDtx(ANSWER.replace(/a=fmtp:.*\r\n/, ""));
  assert.match(bare, /a=rtpmap:96 opus\/48000\/2\r\na=fmtp:96 usedtx=1\r\n/);
  assert.equal(withDtx("v=0\r\n"), "v=0\r\n", "no Opus, nothing to change");
});

test("the heard sample is the played RTP timestamp minus the origin, advanced by the time since", () => {
  const origin = 2 ** 32 - 1000; // the RTP clock wraps between the origin and the packet
  const source = { timestamp: 5000, rtpTimestamp: 47_000 };
  assert.equal(heardSample(source, origin, 5000), 48_000);
  assert.equal(heardSample(source, origin, 5020), 48_000 + 0.02 * RATE);
  assert.equal(heardSample(source, origin, 5200), null, "a stale source: nothing is playing");
  assert.equal(heardSample(source, null, 5000), null, "no rtp_clock yet");
  assert.equal(heardSample(undefined, origin, 5000), null);
  const epoch = { timestamp: 1.7e12 + 5000, rtpTimestamp: 47_000 };
  assert.equal(heardSample(epoch, origin, 5010, 1.7e12), 48_000 + 0.01 * RATE, "Chrome's epoch-clock stamps");
});

test("after a cut the page stays muted until a packet from past what was sent plays", () => {
  const cut = { at: 96_000, sentUntil: 100_800 };
  assert.equal(unmuteAfterCut(cut, 96_960), false, "NetEQ still plays the cut reply");
  assert.equal(unmuteAfterCut(cut, 99_840), false, "its last packet");
  assert.equal(unmuteAfterCut(cut, null), false, "nothing plays");
  assert.equal(unmuteAfterCut(cut, 130_000), true, "the next reply");
  const origin = 2 ** 32 - 10;
  assert.equal(playedSample({ rtpTimestamp: 50, timestamp: 0 }, origin), 60, "RTP wraps");
  assert.equal(playedSample(undefined, origin), null);
});
