// agents-by-last-activity at runtime, on copies of the unpatched tree's `small` history (harness/history.ts: a
// database made before the patch, so the patched server makes and backfills its side table at start):
// - GET /api/agents (the Dashboard's pages, offsets and status lists) answers what the unpatched tree answers:
//   the same sort key at each position, each agent the same bytes; agents whose last activity ties may trade
//   places (SQL leaves their order to the plan);
// - after new hook events (a new session, and an old agent of the history active again), the side table equals
//   upstream's expression for every agent, and the pages equal upstream's query on the same file;
// - the triggers keep it exact when events and agents are deleted, moved and replaced (SQL on a copy, the
//   tree's own runtime module making the table).
import { randomUUID } from "node:crypto";
import { copyFileSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { historyDatabase } from "../../harness/history.ts";
import { openDatabase, type SqliteDatabase } from "../../harness/sqlite.ts";
import type { BuildOutcome } from "../../scripts/pipeline/build.ts";
import { buildFixture, buildFixtureUnpatched, buildReal, buildRealUnpatched, realUpstream, SKIP_REAL } from "../support/build-once.ts";
import { useRuntimeScratch } from "../support/runtime.ts";
import { samePage, type Row } from "../support/same-page.ts";

const scratch = useRuntimeScratch();

const REQUESTS = [
  "/api/agents?limit=100",
  "/api/agents?limit=25&offset=25",
  "/api/agents?limit=20&offset=5",
  "/api/agents?status=completed&limit=50",
  "/api/agents?status=working,waiting&limit=40&include_transient=1",
  "/api/agents?status=waiting&limit=20&include_transient=1",
  "/api/agents?limit=100&offset=100000",
];

/** Upstream's definition, evaluated on a database: what the side table must hold for every agent. */
const UPSTREAM = "COALESCE((SELECT MAX(e.created_at) FROM events e WHERE e.agent_id = a.id), a.ended_at, a.started_at)";

/** Agents whose side-table row is missing or differs from upstream's expression, and rows of agents that are gone. */
function drift(db: SqliteDatabase): unknown[] {
  return db
    .prepare(
      `SELECT a.id, ${UPSTREAM} AS upstream, COALESCE(l.event_max, l.fallback) AS kept FROM agents a LEFT JOIN agent_last_activity l ON l.agent_id = a.id
       WHERE l.agent_id IS NULL OR COALESCE(l.event_max, l.fallback) IS NOT ${UPSTREAM}
       UNION ALL SELECT l.agent_id, NULL, 'orphan' FROM agent_last_activity l WHERE NOT EXISTS (SELECT 1 FROM agents a WHERE a.id = l.agent_id)`,
    )
    .all();
}

const key = (r: Row) => String(r.last_activity);
const variants: [string, () => Promise<BuildOutcome>, () => Promise<BuildOutcome>, boolean][] = [
  ["fixture", buildFixture, buildFixtureUnpatched, false],
  ["real upstream", () => buildReal(), () => buildRealUnpatched(), !realUpstream],
];

describe.each(variants)("GET /api/agents by the side table's index (%s): the same answer as unpatched", (_label, patched, unpatched, skip) => {
  it.skipIf(skip)(skip ? SKIP_REAL : "backfilled at start, kept by triggers as hook events arrive", async () => {
    const [{ outDir }, { outDir: plainDir }] = await Promise.all([patched(), unpatched()]);
    const h = await historyDatabase({ treeDir: plainDir, size: "small" });
    const dir = scratch.tempDir("agents-by-last-activity-");
    const [a, b] = ["patched.db", "unpatched.db"].map((n) => path.join(dir, n));
    copyFileSync(h.dbPath, a);
    copyFileSync(h.dbPath, b);
    const [mine, theirs] = await Promise.all([scratch.start(outDir, { dbPath: a }), scratch.start(plainDir, { dbPath: b })]);
    expect(mine.stdout()).toMatch(/\[agents-by-last-activity\] agent last-activity table backfilled \(\d+ agents\) and ready in \d+ ms/);

    let nonEmpty = 0;
    for (const url of REQUESTS) {
      const [x, y] = await Promise.all([fetch(`${mine.url}${url}`), fetch(`${theirs.url}${url}`)]);
      expect([x.status, y.status], url).toEqual([200, 200]);
      const [px, py] = [(await x.json()) as Record<string, unknown>, (await y.json()) as Record<string, unknown>];
      expect(samePage(px, py, "agents", key), url).toEqual([]);
      if ((px.agents as Row[]).length > 0) nonEmpty++;
    }
    // Real pages, not only empty ones: the history's agents are mostly completed (the working and waiting lists
    // are compared again below, after new activity), and the last request is past the end on purpose.
    expect(nonEmpty).toBeGreaterThanOrEqual(REQUESTS.length - 3);

    // New activity: a new session's agent, and hook events for a session of the history (resumed).
    const db = openDatabase(a, { readonly: true, fileMustExist: true, timeout: 5000 });
    try {
      const old = db.prepare("SELECT session_id FROM agents WHERE type = 'main' ORDER BY started_at LIMIT 1 OFFSET 7").get() as { session_id: string };
      const fresh = randomUUID();
      for (const session_id of [fresh, old.session_id]) {
        const data = { session_id, cwd: "/home/dev/agents-by-last-activity", transcript_path: "" };
        if (session_id === fresh) expect((await mine.postEvent("SessionStart", { ...data, source: "startup" })).status).toBe(200);
        expect((await mine.postEvent("UserPromptSubmit", { ...data, prompt: "go" })).status).toBe(200);
        expect((await mine.postEvent("PreToolUse", { ...data, tool_name: "Bash", tool_input: { command: "ls" } })).status).toBe(200);
      }
      expect(drift(db)).toEqual([]);
      const top = (await mine.get<{ agents: Row[] }>("/api/agents?limit=100")).agents;
      expect(top.map((r) => r.session_id)).toContain(fresh);
      // Each page equals upstream's own query on the same file (rows by position up to ties, values exactly).
      for (const [url, where, params] of [
        ["/api/agents?limit=100", "", [100, 0]],
        ["/api/agents?limit=50&offset=30", "", [50, 30]],
        ["/api/agents?status=working&limit=20", "WHERE a.status = ?", ["working", 20, 0]],
      ] as [string, string, unknown[]][]) {
        const want = db.prepare(`SELECT a.*, ${UPSTREAM} AS last_activity FROM agents a ${where} ORDER BY last_activity DESC LIMIT ? OFFSET ?`).all(...params) as Row[];
        const got = (await mine.get<{ agents: Row[] }>(url)).agents;
        const fields = (rows: Row[]) => rows.map((r) => Object.fromEntries(Object.keys(want[0] ?? {}).map((k) => [k, r[k]])) as Row);
        expect(samePage({ agents: fields(got) }, { agents: fields(want) }, "agents", key), url).toEqual([]);
        expect(got.length, url).toBe(want.length);
      }
    } finally {
      db.close();
    }
  }, 600_000);
});

describe("the triggers keep the side table exact (fixture's runtime module, SQL on a copy of the history)", () => {
  it("after deleting, moving and replacing events and agents", async () => {
    const [{ outDir: plainDir }, { outDir }] = await Promise.all([buildFixtureUnpatched(), buildFixture()]);
    const h = await historyDatabase({ treeDir: plainDir, size: "small" });
    const file = path.join(scratch.tempDir("agents-by-last-activity-sql-"), "history.db");
    copyFileSync(h.dbPath, file);
    const db = openDatabase(file, { fileMustExist: true, timeout: 5000 });
    try {
      db.exec("PRAGMA foreign_keys = ON");
      const { ensureAgentLastActivity } = createRequire(path.join(outDir, "server", "db.js"))("./patch-runtime/agent-last-activity") as { ensureAgentLastActivity: (d: SqliteDatabase) => void };
      ensureAgentLastActivity(db);
      expect(drift(db)).toEqual([]);
      const agents = (db.prepare("SELECT id, session_id FROM agents ORDER BY started_at").all() as { id: string; session_id: string }[]).slice(0, 6);
      expect(agents.length).toBe(6);
      const [x, y, z, w, v, u] = agents;
      const steps: [string, string, unknown[]][] = [
        ["an agent's newest event deleted", "DELETE FROM events WHERE id = (SELECT id FROM events WHERE agent_id = ? ORDER BY created_at DESC LIMIT 1)", [x.id]],
        ["every event of an agent deleted", "DELETE FROM events WHERE agent_id = ?", [y.id]],
        ["an event moved to another agent", "UPDATE events SET agent_id = ? WHERE id = (SELECT id FROM events WHERE agent_id = ? ORDER BY created_at DESC LIMIT 1)", [z.id, w.id]],
        ["an event dated later", "UPDATE events SET created_at = '2099-01-01T00:00:00.000Z' WHERE id = (SELECT MIN(id) FROM events WHERE agent_id = ?)", [w.id]],
        ["an agent ended", "UPDATE agents SET ended_at = '2098-01-01T00:00:00.000Z' WHERE id = ?", [y.id]],
        ["an agent deleted (its events' agent_id set NULL)", "DELETE FROM agents WHERE id = ?", [v.id]],
        ["an agent replaced", "INSERT OR REPLACE INTO agents SELECT * FROM agents WHERE id = ?", [u.id]],
        ["a session deleted (its agents cascade)", "DELETE FROM sessions WHERE id = ?", [x.session_id]],
        ["an event without an agent", "INSERT INTO events (session_id, agent_id, event_type, created_at) VALUES (?, NULL, 'Note', '2099-06-01T00:00:00.000Z')", [z.session_id]],
      ];
      for (const [what, sql, params] of steps) {
        db.prepare(sql).run(...params);
        expect(drift(db), what).toEqual([]);
      }
      ensureAgentLastActivity(db); // a second start: nothing to make again
      db.exec("DELETE FROM events; DELETE FROM agents;");
      expect(db.prepare("SELECT COUNT(*) AS n FROM agent_last_activity").get()).toEqual({ n: 0 });
    } finally {
      db.close();
    }
  }, 600_000);
});
