// Mutation test of coalesce-page-reloads' whole-client gate: a new page (no patch targets it) that
// subscribes to the event bus and calls its loader directly fails the gate, naming file and line.
import { describe, expect, it } from "vitest";
import patch, { COALESCE_FILE } from "../../patches/coalesce-page-reloads.ts";
import { memoryTreeView } from "../../scripts/pipeline/patch.ts";

const NEW_PAGE =
  'import { api } from "../lib/api";\nimport { eventBus } from "../lib/eventBus";\n\n' +
  "export function Fleet() {\n  const load = async () => api.agents.list({ limit: 100 });\n" +
  "  return eventBus.subscribe((msg) => {\n    if (msg.type === \"agent_updated\") load();\n  });\n}\n";

describe("coalesce-page-reloads gate over every client file", () => {
  it("fails on a new page whose eventBus subscriber calls load() directly", () => {
    const tree = memoryTreeView({ [COALESCE_FILE]: "export {};\n", "client/src/pages/Fleet.tsx": NEW_PAGE });
    expect(patch.verifyTree!(tree)).toEqual(["client/src/pages/Fleet.tsx:7 eventBus subscriber calls load directly (not through coalesced())"]);
  });

  it("holds once the same page goes through coalesced()", () => {
    const fixed = NEW_PAGE.replace("load();\n  });", 'coalesced("fleet", load);\n  });');
    const tree = memoryTreeView({ [COALESCE_FILE]: "export {};\n", "client/src/pages/Fleet.tsx": fixed });
    expect(patch.verifyTree!(tree)).toEqual([]);
  });

  it("fails when the coalescer itself is missing from the tree", () => {
    expect(patch.verifyTree!(memoryTreeView({ "client/src/pages/Empty.tsx": "export {};\n" }))).toEqual([`${COALESCE_FILE}: missing (the coalescer the pages import)`]);
  });
});
