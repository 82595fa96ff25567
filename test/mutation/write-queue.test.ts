// Mutation tests of write-queue's whole-tree gate: upstream adds another route that writes hook
// events (a batch endpoint calling processEvent, a route inserting into events itself, one in
// another router through a helper). The patch still applies to POST /event; the gate names the
// new route, file:line. The per-target checks alone would have shipped it.
import { describe, expect, it } from "vitest";
import { before, buildMutant, mutateFixture, targetsOnly } from "../support/mutation.ts";

const HOOKS = "server/routes/hooks.js";

const BATCH_ROUTE =
  'router.post("/events/batch", (req, res) => {\n' +
  "  const events = Array.isArray(req.body?.events) ? req.body.events : [];\n" +
  "  const stored = events.map((e) => processEvent(e.hook_type, e.data));\n" +
  "  res.json({ ok: true, stored: stored.length });\n" +
  "});\n\n";

describe("write-queue mutation: a new /events/batch route calls processEvent", () => {
  it("fails the gate naming the patch and the route, file:line (targets alone would have shipped it)", async () => {
    const dir = mutateFixture("batch-route", { [HOOKS]: before('router.post("/event", (req, res) => {', BATCH_ROUTE) });
    expect((await buildMutant(dir, { patches: targetsOnly })).problems).toBeNull();
    const built = await buildMutant(dir);
    expect(built.problems).toMatch(
      /^\[write-queue\] whole tree: server\/routes\/hooks\.js:\d+ router\.post\("\/events\/batch", …\) writes hook events outside the write queue \(line \d+: processEvent\); route it through writeQueue\.enqueue$/m,
    );
  });
});

describe("write-queue mutation: a route inserts into events itself", () => {
  it("fails the gate naming it", async () => {
    const route =
      'router.post("/events/import", (req, res) => {\n' +
      '  db.prepare("INSERT INTO events (session_id, event_type, summary) VALUES (?, ?, ?)").run(req.body.session_id, "Imported", req.body.summary);\n' +
      "  res.json({ ok: true });\n" +
      "});\n\n";
    const built = await buildMutant(mutateFixture("insert-route", { [HOOKS]: before('router.post("/event", (req, res) => {', route) }));
    expect(built.problems).toMatch(/\[write-queue\] whole tree: server\/routes\/hooks\.js:\d+ router\.post\("\/events\/import", …\) writes hook events outside the write queue \(line \d+: "INSERT INTO events/);
  });
});

describe("write-queue mutation: another router writes events through a helper of its module", () => {
  it("fails the gate naming that file's route and the chain", async () => {
    const router =
      'const express = require("express");\nconst { stmts } = require("../db");\n\nconst router = express.Router();\n\n' +
      "function recordReplay(body) {\n  stmts.insertEvent.run(body.session_id, null, body.hook_type, null, \"replayed\", JSON.stringify(body.data));\n}\n\n" +
      'router.put("/replay", (req, res) => {\n  recordReplay(req.body);\n  res.json({ ok: true });\n});\n\nmodule.exports = router;\n';
    const built = await buildMutant(mutateFixture("helper-route", { "server/routes/replay.js": router }));
    expect(built.problems).toContain('[write-queue] whole tree: server/routes/replay.js:10 router.put("/replay", …) writes hook events outside the write queue (recordReplay → line 7: stmts.insertEvent.run(');
  });
});
