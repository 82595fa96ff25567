// The pages' list requests read a bounded part of `events` and `agents` on a history database (issue #13):
// the patched fixture monitor runs on a copy of its `small` history (harness/history.ts) with
// test/support/sql-log.cjs preloaded, each page request is made over HTTP, and every read statement it ran
// is explained (EXPLAIN QUERY PLAN, better-sqlite3 on the same file). A plan fails when it scans `events`
// or `agents` (by name or alias) unless the scan is an index walk in the query's ORDER BY that its LIMIT
// stops (no temp b-tree for the order). SEARCH steps (an index seek per row of another table) pass.
import { copyFileSync, readFileSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { historyDatabase } from "../../harness/history.ts";
import { openDatabase, type SqliteDatabase } from "../../harness/sqlite.ts";
import type { Monitor } from "../../harness/monitor.ts";
import { buildFixture } from "../support/build-once.ts";
import { useRuntimeScratch } from "../support/runtime.ts";

const SQL_LOG_PROBE = fileURLToPath(new URL("../support/sql-log.cjs", import.meta.url));
const scratch = useRuntimeScratch();

interface Logged { sql: string; params: unknown[] }

/** Names `events`/`agents` go by in a statement: the tables and their aliases. */
function watchedNames(sql: string): Set<string> {
  const names = new Set(["events", "agents"]);
  for (const m of sql.matchAll(/\b(?:FROM|JOIN)\s+(events|agents)(?:\s+AS)?\s+(\w+)/gi)) {
    if (!/^(WHERE|ORDER|GROUP|LIMIT|LEFT|INNER|JOIN|ON)$/i.test(m[2])) names.add(m[2]);
  }
  return names;
}

interface PlanRow { id: number; parent: number; detail: string }

/**
 * The plan's problems: a full scan of events/agents (an ordered, LIMITed index walk excepted), and a LIMITed
 * query that reads events/agents outside any subquery and then sorts (it reads every matching row to keep
 * LIMIT of them: the session_id index plus a temp b-tree the list-events-by-recency patch removed).
 */
export function planProblems(sql: string, plan: PlanRow[]): string[] {
  const names = watchedNames(sql);
  const sorted = plan.some((r) => /USE TEMP B-TREE FOR (?:RIGHT PART OF )?ORDER BY/.test(r.detail));
  const limited = /\bLIMIT\b/i.test(sql);
  const byId = new Map(plan.map((r) => [r.id, r]));
  const inSubquery = (r: PlanRow): boolean => {
    for (let p = byId.get(r.parent); p; p = byId.get(p.parent)) if (/SUBQUERY/.test(p.detail)) return true;
    return false;
  };
  const out: string[] = [];
  for (const r of plan) {
    const m = /^(SCAN|SEARCH) (\w+)(.*)$/.exec(r.detail);
    if (!m || !names.has(m[2])) continue;
    if (m[1] === "SCAN") {
      const orderedWalk = / USING (?:COVERING )?INDEX /.test(m[3]) && limited && !sorted;
      if (!orderedWalk) out.push(`${r.detail}${sorted ? " + USE TEMP B-TREE FOR ORDER BY" : ""}`);
    } else if (limited && sorted && !inSubquery(r)) {
      out.push(`${r.detail} + USE TEMP B-TREE FOR ORDER BY`);
    }
  }
  return out;
}

async function plansOf(monitor: Monitor, db: SqliteDatabase, log: string, urlPath: string): Promise<{ sql: string; plan: PlanRow[] }[]> {
  writeFileSync(log, "");
  const res = await fetch(`${monitor.url}${urlPath}`);
  expect(res.status, urlPath).toBe(200);
  await res.arrayBuffer();
  const reads = readFileSync(log, "utf8").split("\n").filter(Boolean).map((l) => JSON.parse(l) as Logged);
  return reads.map(({ sql, params }) => ({
    sql,
    plan: db.prepare(`EXPLAIN QUERY PLAN ${sql}`).all(...params) as PlanRow[],
  }));
}

describe("query plans of the pages' list requests on a history (patched fixture)", () => {
  let ctx: { monitor: Monitor; db: SqliteDatabase; log: string } | null = null;
  async function setUp() {
    if (ctx) return ctx;
    const { outDir } = await buildFixture();
    const h = await historyDatabase({ treeDir: outDir, size: "small" });
    const dir = scratch.tempDir("query-plans-");
    const dbPath = path.join(dir, "history.db");
    copyFileSync(h.dbPath, dbPath);
    const log = path.join(dir, "sql.log");
    const monitor = await scratch.start(outDir, { dbPath, env: { NODE_OPTIONS: `--require ${JSON.stringify(SQL_LOG_PROBE)}`, AGENT_MONITOR_SQL_LOG: log } });
    // The server made its indexes at start; read the file after that, on a connection of our own.
    const db = openDatabase(dbPath, { readonly: true, fileMustExist: true, timeout: 5000 });
    ctx = { monitor, db, log };
    return ctx;
  }

  // Known and left (issue #13): the unscoped feed's `total` is COUNT(*) over every event, a walk of the
  // smallest index (~4 ms on 150k events); only a maintained counter would bound it. Listed here exactly,
  // so any other scan fails, and so does this one's disappearance (then drop it from the list).
  const KNOWN: Record<string, string[]> = {
    "/api/events?limit=15": ["SCAN events USING COVERING INDEX idx_events_session  <-  SELECT COUNT(*) AS count FROM events"],
  };

  it.each([
    "/api/sessions?limit=10",
    "/api/sessions?limit=10&offset=0&sort_by=time&sort_desc=true&include_transient=true&include_task_progress=true&providers=claude",
    "/api/events?limit=15",
    "/api/events?limit=30&providers=claude",
    // agents-by-last-activity: the agent lists walk the side table's index newest first.
    "/api/agents?limit=100",
    "/api/agents?limit=100&offset=100",
    "/api/agents?status=working,waiting&limit=40&include_transient=1",
    "/api/agents?status=completed&limit=100",
  ])("GET %s: no full scan of events or agents", async (urlPath) => {
    const { monitor, db, log } = await setUp();
    const plans = await plansOf(monitor, db, log, urlPath);
    expect(plans.length, "the request ran no logged read: is the SQL probe loaded?").toBeGreaterThan(0);
    const problems = plans.flatMap(({ sql, plan }) => planProblems(sql, plan).map((p) => `${p}  <-  ${sql.replace(/\s+/g, " ").trim().slice(0, 160)}`));
    expect(problems).toEqual(KNOWN[urlPath] ?? []);
  }, 240_000);

  it("the scoped feed answers what the unscoped one does (the history is all Claude sessions): same page, same total", async () => {
    const { monitor } = await setUp();
    type Feed = { events: { id: number; created_at: string }[]; total: number };
    const all = await monitor.get<Feed>("/api/events?limit=30");
    const scoped = await monitor.get<Feed>("/api/events?limit=30&providers=claude");
    expect(all.events).toHaveLength(30);
    expect(scoped.events.map((e) => e.id)).toEqual(all.events.map((e) => e.id));
    expect(scoped.total).toBe(all.total);
    expect((await monitor.get<Feed>("/api/events?limit=30&providers=codex")).events).toEqual([]);
  }, 240_000);

  it("the rule rejects what the patches removed: the scoped events list served by the session index and sorted, every agent sorted", async () => {
    const { db } = await setUp();
    const sql = "SELECT * FROM events WHERE session_id IN (SELECT id FROM sessions WHERE provider IN (?)) ORDER BY created_at DESC, id DESC LIMIT ? OFFSET ?";
    // Unpatched, the planner reads every event in scope by session and sorts them: a SEARCH plus a temp b-tree.
    expect(planProblems(sql, db.prepare(`EXPLAIN QUERY PLAN ${sql}`).all("claude", 30, 0) as PlanRow[])).toEqual([
      "SEARCH events USING INDEX idx_events_session (session_id=?) + USE TEMP B-TREE FOR ORDER BY",
    ]);
    // Upstream's agent list (what agents-by-last-activity replaced): every agent scanned and sorted.
    const agents = "SELECT a.*, COALESCE((SELECT MAX(e.created_at) FROM events e WHERE e.agent_id = a.id), a.ended_at, a.started_at) AS last_activity FROM agents a ORDER BY last_activity DESC LIMIT ? OFFSET ?";
    expect(planProblems(agents, db.prepare(`EXPLAIN QUERY PLAN ${agents}`).all(100, 0) as PlanRow[])).toEqual(["SCAN a + USE TEMP B-TREE FOR ORDER BY"]);
    const walk = "SELECT * FROM events ORDER BY created_at DESC, id DESC";
    expect(planProblems(walk, db.prepare(`EXPLAIN QUERY PLAN ${walk}`).all() as PlanRow[])).not.toEqual([]);
  }, 240_000);
});
