// The page's reconnect timing: a draining server's hint brings it back at once (after the
// reply's last second), other closes back off. Same table as presence/client/reconnect.py.
import { test } from "node:test";
import assert from "node:assert/strict";
import { BACKOFF_MS, reconnectDelayMs } from "../../presence/web/session.js";

test("a drained session (1001 with the reconnect hint) comes back within a second and a quarter", () => {
  for (const r of [0, 0.5, 0.999]) {
    const delay = reconnectDelayMs(0, 1001, "server draining: reconnect", r);
    assert.ok(delay >= 1000 && delay < 1250, `delay ${delay}`);
  }
});

test("a plain shutdown, a drop, or a failed retry backs off along the table", () => {
  assert.equal(reconnectDelayMs(0, 1001, "server is shutting down", 0), BACKOFF_MS[0]);
  assert.equal(reconnectDelayMs(0, 1006, "", 0), BACKOFF_MS[0]);
  assert.equal(reconnectDelayMs(1, 1001, "server draining: reconnect", 0), BACKOFF_MS[1]);
  assert.equal(reconnectDelayMs(99), BACKOFF_MS.at(-1));
});
