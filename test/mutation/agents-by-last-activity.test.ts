// Mutation test of agents-by-last-activity's whole-tree gate: upstream adds another agent list with a LIMIT
// ordered by the computed last activity (the newest subagents, in a module of its own), the shape the patch
// rewrote in db.js and routes/agents.js. The patch still applies to its targets; the gate names the new list.
import { describe, expect, it } from "vitest";
import { buildMutant, mutateFixture, targetsOnly } from "../support/mutation.ts";

const SUBAGENTS =
  'const { Router } = require("express");\n' +
  'const { db } = require("../db");\n\n' +
  "const router = Router();\n" +
  "const LAST_ACTIVITY = `COALESCE((SELECT MAX(e.created_at) FROM events e WHERE e.agent_id = a.id), a.ended_at, a.started_at)`;\n\n" +
  'router.get("/", (req, res) => {\n' +
  "  const rows = db\n" +
  "    .prepare(\n" +
  "      `SELECT a.*, ${LAST_ACTIVITY} AS last_activity FROM agents a\n" +
  "       WHERE a.type = 'subagent' ORDER BY last_activity DESC LIMIT ?`\n" +
  "    )\n" +
  "    .all(20);\n" +
  "  res.json({ agents: rows });\n" +
  "});\n\n" +
  "module.exports = router;\n";

describe("agents-by-last-activity mutation: another agent list ordered by the computed last activity", () => {
  it("fails the gate naming the patch and the list, file:line (targets alone would have shipped it)", async () => {
    const dir = mutateFixture("subagents-list", { "server/routes/subagents.js": SUBAGENTS });
    expect((await buildMutant(dir, { patches: targetsOnly })).problems).toBeNull();
    const built = await buildMutant(dir);
    expect(built.problems).toMatch(
      /^\[agents-by-last-activity\] whole tree: server\/routes\/subagents\.js:10 an agent list with LIMIT orders by the computed last activity \(a MAX over each agent's events, every agent sorted\)$/m,
    );
  });
});
