// Mutation test of coalesce-broadcasts' whole-tree gate: upstream adds a module that sends its own
// session_updated frame to the dashboards, past broadcast() and so past the per-batch coalescing.
// The patch still applies to websocket.js and hooks.js; the gate names the new frame, file:line.
import { describe, expect, it } from "vitest";
import { buildMutant, mutateFixture, targetsOnly } from "../support/mutation.ts";

const NOTIFY =
  "// Tell every dashboard a session changed.\n" +
  "function notifySession(wss, session) {\n" +
  '  const frame = JSON.stringify({ type: "session_updated", data: session, timestamp: new Date().toISOString() });\n' +
  "  for (const client of wss.clients) client.send(frame);\n" +
  "}\n\n" +
  "module.exports = { notifySession };\n";

describe("coalesce-broadcasts mutation: a module sends its own session_updated frame", () => {
  it("fails the gate naming the patch and the frame, file:line (targets alone would have shipped it)", async () => {
    const dir = mutateFixture("own-frame", { "server/lib/session-notify.js": NOTIFY });
    expect((await buildMutant(dir, { patches: targetsOnly })).problems).toBeNull();
    const built = await buildMutant(dir);
    expect(built.problems).toMatch(
      /^\[coalesce-broadcasts\] whole tree: server\/lib\/session-notify\.js:3 sends its own session_updated frame \(line 3: JSON\.stringify\(\{ type: "session_updated", data: session, .*\}\)\), past broadcast\(\) and its coalescing$/m,
    );
  });
});
