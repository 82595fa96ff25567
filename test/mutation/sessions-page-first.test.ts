// Mutation test of sessions-page-first's whole-tree gate: upstream adds a second paged session list (a
// per-project page) that joins every session to its agents and sorts them all before LIMIT ? OFFSET ?, the
// shape the patch rewrote in sessions.js. The patch still applies to sessions.js; the gate names the new list.
import { describe, expect, it } from "vitest";
import { buildMutant, mutateFixture, targetsOnly } from "../support/mutation.ts";

const PROJECTS =
  'const { Router } = require("express");\n' +
  'const { db } = require("../db");\n\n' +
  "const router = Router();\n\n" +
  'router.get("/:cwd/sessions", (req, res) => {\n' +
  "  const rows = db\n" +
  "    .prepare(\n" +
  "      `SELECT s.*, COUNT(a.id) AS agent_count FROM sessions s LEFT JOIN agents a ON a.session_id = s.id\n" +
  "       WHERE s.cwd = ? GROUP BY s.id ORDER BY s.started_at DESC LIMIT ? OFFSET ?`\n" +
  "    )\n" +
  "    .all(req.params.cwd, 10, 0);\n" +
  "  res.json({ sessions: rows });\n" +
  "});\n\n" +
  "module.exports = router;\n";

describe("sessions-page-first mutation: another paged session list joined to agents", () => {
  it("fails the gate naming the patch and the list, file:line (targets alone would have shipped it)", async () => {
    const dir = mutateFixture("projects-page", { "server/routes/projects.js": PROJECTS });
    expect((await buildMutant(dir, { patches: targetsOnly })).problems).toBeNull();
    const built = await buildMutant(dir);
    expect(built.problems).toMatch(
      /^\[sessions-page-first\] whole tree: server\/routes\/projects\.js:9 a paged session list joins every session in its filter to its agents and sorts them all before LIMIT \? OFFSET \?$/m,
    );
  });
});
