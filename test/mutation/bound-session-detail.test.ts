// Mutation tests of bound-session-detail's whole-tree gate: no GET route under server/ reads a
// session's events without LIMIT. Its SQL cases (valid / invalid), small trees in memory, and the
// fixture monitor with one plausible upstream change built with the real patches: a new route that
// sends every event of a session fails the build naming file, line and query; a Workflows drill-in
// like upstream's is bounded by the patch (an optional target) and the build passes.
import { describe, expect, it } from "vitest";
import patch, { unboundedSessionEvents } from "../../patches/bound-session-detail.ts";
import { memoryTreeView } from "../../scripts/pipeline/patch.ts";
import { before, buildMutant, mutateFixture } from "../support/mutation.ts";

const DB =
  'const db = {};\nconst stmts = {\n  listEventsBySession: db.prepare("SELECT * FROM events WHERE session_id = ? ORDER BY created_at DESC, id DESC"),\n' +
  '  listTaskEventsBySession: db.prepare("SELECT * FROM events WHERE session_id = ? AND event_type IN (\'TaskCreated\') ORDER BY id"),\n};\nmodule.exports = { db, stmts };\n';

const route = (body: string) => `const { Router } = require("express");\nconst { stmts, db } = require("../db");\nconst router = Router();\n${body}\nmodule.exports = router;\n`;

describe("which SQL is a session's events without bound", () => {
  it.each([
    "SELECT * FROM events WHERE session_id = ? ORDER BY created_at DESC, id DESC",
    "SELECT e.* FROM events e WHERE e.session_id = ?",
    "SELECT summary FROM events WHERE session_id = ? AND event_type = 'APIError'",
    "SELECT * FROM events WHERE session_id IN (?, ?) ORDER BY id",
  ])("unbounded: %s", (sql) => expect(unboundedSessionEvents(sql)).not.toBeNull());

  it.each([
    "SELECT * FROM events WHERE session_id = ? ORDER BY created_at DESC, id DESC LIMIT ?",
    "SELECT COUNT(*) AS count FROM events WHERE session_id = ?",
    "SELECT event_type, COUNT(*) AS count FROM events WHERE session_id = ? GROUP BY event_type",
    "SELECT * FROM events ORDER BY created_at DESC LIMIT ? OFFSET ?",
    "SELECT s.*, (SELECT MAX(e.created_at) FROM events e WHERE e.session_id = s.id) AS last FROM sessions s",
    "SELECT * FROM (SELECT * FROM events WHERE session_id = ? ORDER BY created_at DESC, id DESC LIMIT 5000) ORDER BY created_at ASC, id ASC",
    "SELECT * FROM agents WHERE session_id = ?",
  ])("bounded, or not a list of events: %s", (sql) => expect(unboundedSessionEvents(sql)).toBeNull());
});

describe("bound-session-detail gate over every GET route", () => {
  it("fails on a new route that sends a db.js statement's full list, naming file, line, route and statement", () => {
    const tree = memoryTreeView({
      "server/db.js": DB,
      "server/routes/timeline.js": route('router.get("/:id/timeline", (req, res) => {\n  res.json({ events: stmts.listEventsBySession.all(req.params.id) });\n});'),
    });
    expect(patch.verifyTree!(tree)).toEqual([
      "server/routes/timeline.js:4 GET /:id/timeline reads a session's events without LIMIT: line 5: stmts.listEventsBySession.all(req.params.id) " +
        "(stmts.listEventsBySession: SELECT * FROM events WHERE session_id = ? ORDER BY created_at DESC, id DESC)",
    ]);
  });

  it("follows the handler into the module's functions", () => {
    const tree = memoryTreeView({
      "server/db.js": DB,
      "server/routes/export.js": route(
        'function eventsOf(id) {\n  return db.prepare("SELECT * FROM events WHERE session_id = ?").all(id);\n}\n' +
          'router.get("/session/:id/export", (req, res) => res.json(eventsOf(req.params.id)));',
      ),
    });
    expect(patch.verifyTree!(tree)).toEqual([
      "server/routes/export.js:7 GET /session/:id/export reads a session's events without LIMIT: eventsOf → line 5: db.prepare(\"SELECT * FROM events WHERE session_id = ?\").all(id) " +
        "(SELECT * FROM events WHERE session_id = ?)",
    ]);
  });

  it("holds for bounded pages, aggregates, and the reviewed read that is never sent", () => {
    const tree = memoryTreeView({
      "server/db.js": DB,
      "server/routes/ok.js": route(
        'router.get("/:id", (req, res) => res.json({\n  events: db.prepare("SELECT * FROM events WHERE session_id = ? ORDER BY id DESC LIMIT ?").all(req.params.id, 200),\n' +
          '  total: db.prepare("SELECT COUNT(*) AS c FROM events WHERE session_id = ?").get(req.params.id).c,\n' +
          '  cursor: db.prepare("SELECT id, created_at FROM events WHERE id = ? AND session_id = ?").get(1, req.params.id),\n' +
          "  tasks: stmts.listTaskEventsBySession.all(req.params.id).length,\n}));",
      ),
    });
    expect(patch.verifyTree!(tree)).toEqual([]);
    expect(patch.reportTree!(tree)[0]).toContain("read, not sent: listTaskEventsBySession");
  });
});

describe("bound-session-detail on the fixture monitor with one upstream change", () => {
  it("a new GET /:id/timeline sending every event of the session fails the build, naming the patch, file and route", async () => {
    const dir = mutateFixture("detail-timeline", {
      "server/routes/sessions.js": before(
        'router.get("/:id/stats"',
        'router.get("/:id/timeline", (req, res) => {\n  res.json({ events: stmts.listEventsBySession.all(req.params.id) });\n});\n\n',
      ),
    });
    const { problems } = await buildMutant(dir);
    expect(problems).toMatch(/\[bound-session-detail\] whole tree: server\/routes\/sessions\.js:\d+ GET \/:id\/timeline reads a session's events without LIMIT: line \d+: stmts\.listEventsBySession\.all/);
  }, 120_000);

  it("a Workflows drill-in reading every event of the session is bounded by the patch, and the build passes", async () => {
    const dir = mutateFixture("detail-drill-in", {
      "server/routes/workflows.js": route(
        'router.get("/session/:id", (req, res) => {\n  const events = db\n    .prepare("SELECT * FROM events WHERE session_id = ? ORDER BY created_at ASC, id ASC")\n    .all(req.params.id);\n' +
          "  res.json({ toolTimeline: events.filter((e) => e.tool_name), events: events.slice(0, 500) });\n});",
      ),
    });
    const { outcome, problems } = await buildMutant(dir);
    expect(problems).toBeNull();
    const row = outcome!.results.find((r) => r.patch === "bound-session-detail" && r.file === "server/routes/workflows.js");
    expect(row?.action).toBe("applied");
  }, 120_000);
});
