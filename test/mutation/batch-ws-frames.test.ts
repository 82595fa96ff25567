// Mutation test of batch-ws-frames' whole-client gate: any eventBus.publish outside the batcher (a
// second socket hook, a new component relaying frames) fails the gate with file and line; the
// reviewed UpdateNotifier publish is reported, not failed; the App's patched output passes.
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import patch, { FRAME_BATCH_FILE } from "../../patches/batch-ws-frames.ts";
import { memoryTreeView } from "../../scripts/pipeline/patch.ts";

const APP = readFileSync(new URL("../fixtures/patches/batch-ws-frames/app.output.tsx", import.meta.url), "utf8");
const RELAY =
  'import { eventBus } from "../lib/eventBus";\n\n' +
  "export function useSecondSocket() {\n  const ws = new WebSocket(\"/ws\");\n" +
  "  ws.onmessage = (e) => eventBus.publish(JSON.parse(e.data));\n}\n";
const UPDATE_NOTIFIER =
  'import { eventBus } from "../lib/eventBus";\n\nexport function UpdateNotifier() {\n' +
  '  api.updates.status().then((s) => {\n    eventBus.publish({ type: "update_status", data: s });\n  });\n}\n';
const base = { [FRAME_BATCH_FILE]: "export {};\n", "client/src/App.tsx": APP };

describe("batch-ws-frames gate over every client file", () => {
  it("holds on the patched App, and reports the reviewed UpdateNotifier publish without failing", () => {
    const tree = memoryTreeView({ ...base, "client/src/components/UpdateNotifier.tsx": UPDATE_NOTIFIER });
    expect(patch.verifyTree!(tree)).toEqual([]);
    expect(patch.reportTree!(tree).join("\n")).toMatch(/1 useWebSocket handler\(s\), 0 direct publishes, 1 reviewed exceptions\n.*UpdateNotifier.tsx:5 .*reviewed/);
  });

  it("fails on a new module that relays socket frames with eventBus.publish, naming file and line", () => {
    const tree = memoryTreeView({ ...base, "client/src/hooks/useSecondSocket.ts": RELAY });
    expect(patch.verifyTree!(tree)).toEqual([
      "client/src/hooks/useSecondSocket.ts:5 eventBus.publish outside the batcher (in useSecondSocket): WebSocket frames must reach the pages through publishInBatches",
    ]);
  });

  it("fails when the App's handler is reverted to a direct publish, and when the batcher is missing", () => {
    const reverted = APP.replace("/* [patch:batch-ws-frames] */ publishInBatches(eventBus, msg)", "eventBus.publish(msg)");
    expect(reverted).not.toBe(APP);
    expect(patch.verifyTree!(memoryTreeView({ ...base, "client/src/App.tsx": reverted }))[0]).toMatch(/^client\/src\/App.tsx:\d+ eventBus.publish outside the batcher \(in App\)/);
    expect(patch.verify({ path: "client/src/App.tsx", text: reverted, ast: memoryTreeView({ "client/src/App.tsx": reverted }).file("client/src/App.tsx").ast }).join("\n")).toMatch(/calls eventBus.publish directly/);
    expect(patch.verifyTree!(memoryTreeView({ "client/src/App.tsx": APP }))).toEqual([`${FRAME_BATCH_FILE}: missing (the batcher the App imports)`]);
  });

  it("leaves test files alone (upstream's own eventBus tests publish directly)", () => {
    const tree = memoryTreeView({ ...base, "client/src/lib/eventBus.test.ts": RELAY });
    expect(patch.verifyTree!(tree)).toEqual([]);
  });
});
