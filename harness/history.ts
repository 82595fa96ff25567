// A database with months of history for a tree, made through the tree itself: its server creates
// the schema and stores a seed of simulated agents' sessions through its own hook path (the bench's
// agents, blocking client); the seed's rows are then copied with SQL under new ids and older dates
// until the size is reached. Cached by tree and size (.cache/history/<tree-hash>-<size>.db); callers
// start their server on a COPY of dbPath.
import { createHash, randomUUID } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { cacheDir } from "../scripts/lib/paths.ts";
import { ensureRuntimeDeps } from "../scripts/pipeline/install.ts";
import { startMonitor } from "./monitor.ts";
import { openDatabase, type SqliteDatabase } from "./sqlite.ts";
import { driveAgents } from "./workload.ts";

export type HistorySize = "small" | "large";

/** Seed sessions stored through the server, and how many copies of them make each size. */
const SEED_AGENTS = 10;
const SEED_EVENTS_PER_AGENT = 140;
/**
 * Copies are added until the sessions are reached, or 1.5× the events first: v2.0.3 stores a TurnDuration
 * row per hook per finished turn (≈ 9 rows per hook event here), a patched tree one row per hook.
 */
export const HISTORY_SIZES: Record<HistorySize, { sessions: number; events: number }> = {
  small: { sessions: 100, events: 15_000 },
  // issue #13's "months of history"
  large: { sessions: 1_000, events: 150_000 },
};
/** Each copy is this much older than the previous one (1,000 sessions ≈ 3 months). */
const COPY_SPACING_HOURS = 2;
/** Tool output kept in PostToolUse payloads of the copies (real tool results are kilobytes; ≈300 MB at large). */
const TOOL_OUTPUT_BYTES = 4000;

export interface HistoryDatabase {
  dbPath: string;
  sessions: number;
  events: number;
  bytes: number;
  /** How it was made, one line for the report. */
  how: string;
  cached: boolean;
}

/** Bumped when the generator changes, so cached histories are made again. */
const GENERATOR_VERSION = 2;

/** Hash of what decides the rows a tree writes: its server sources (schema, hook path), and this generator's version. */
export function treeHash(treeDir: string): string {
  const h = createHash("sha256").update(`history generator ${GENERATOR_VERSION}\0`);
  const walk = (dir: string) => {
    for (const name of readdirSync(dir).sort()) {
      if (name === "node_modules" || name === "__tests__" || name.startsWith(".")) continue;
      const p = path.join(dir, name);
      const st = statSync(p);
      if (st.isDirectory()) walk(p);
      else if (/\.(c|m)?js$/.test(name)) h.update(path.relative(treeDir, p)).update("\0").update(readFileSync(p)).update("\0");
    }
  };
  walk(path.join(treeDir, "server"));
  return h.digest("hex").slice(0, 12);
}

function columns(db: SqliteDatabase, table: string): string[] {
  return (db.prepare(`PRAGMA table_info(${JSON.stringify(table)})`).all() as Array<{ name: string }>).map((c) => c.name);
}

const q = (name: string) => JSON.stringify(name);

/** A timestamp column shifted back, keeping the tree's own format (ISO with Z, or SQLite's datetime). */
function shifted(expr: string): string {
  return `CASE WHEN ${expr} IS NULL THEN NULL WHEN ${expr} LIKE '%T%Z' THEN strftime('%Y-%m-%dT%H:%M:%fZ', ${expr}, $shift) ELSE datetime(${expr}, $shift) END`;
}

/** Copy every seed session (and its agents, events and other session-keyed rows) once, under new ids, `copy` spacings older. */
function copySeed(db: SqliteDatabase, seedSessions: string[], copy: number): void {
  const shift = `-${copy * COPY_SPACING_HOURS} hours`;
  db.exec("DROP TABLE IF EXISTS temp.sid; DROP TABLE IF EXISTS temp.aid; CREATE TEMP TABLE sid(old TEXT PRIMARY KEY, new TEXT); CREATE TEMP TABLE aid(old TEXT PRIMARY KEY, new TEXT)");
  const addS = db.prepare("INSERT INTO temp.sid VALUES (?, ?)");
  for (const s of seedSessions) addS.run(s, randomUUID());
  const addA = db.prepare("INSERT INTO temp.aid VALUES (?, ?)");
  for (const a of db.prepare("SELECT id FROM agents WHERE session_id IN (SELECT old FROM temp.sid)").all() as Array<{ id: string }>) addA.run(a.id, randomUUID());

  const tables = (db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'").all() as Array<{ name: string }>).map((t) => t.name);
  const value = (table: string, col: string): string => {
    if (table === "sessions" && col === "id") return "sid.new";
    if (col === "session_id") return "sid.new";
    if (table === "agents" && col === "id") return "(SELECT new FROM temp.aid WHERE old = t.id)";
    if (col === "agent_id" || col === "parent_agent_id") return `(SELECT new FROM temp.aid WHERE old = t.${q(col)})`;
    if (table === "events" && col === "data") {
      // The payload names its session too; tool results get a realistic size.
      return `CASE WHEN t.event_type = 'PostToolUse' AND json_valid(t.data) THEN json_set(replace(t.data, sid.old, sid.new), '$.tool_response.history_output', printf('%.${TOOL_OUTPUT_BYTES}c', 'x')) ELSE replace(t.data, sid.old, sid.new) END`;
    }
    if (/_at$/.test(col)) return shifted(`t.${q(col)}`);
    return `t.${q(col)}`;
  };
  for (const table of ["sessions", "agents", "events", ...tables.filter((t) => !["sessions", "agents", "events"].includes(t))]) {
    if (!tables.includes(table)) continue;
    const cols = columns(db, table).filter((c) => !(table === "events" && c === "id"));
    const key = table === "sessions" ? "id" : "session_id";
    if (!cols.includes(key)) continue;
    const sql =
      `INSERT OR IGNORE INTO ${q(table)} (${cols.map(q).join(", ")}) ` +
      `SELECT ${cols.map((c) => value(table, c)).join(", ")} FROM ${q(table)} t JOIN temp.sid sid ON sid.old = t.${q(key)}` +
      (table === "events" ? " ORDER BY t.id" : "");
    db.prepare(sql).run({ shift });
  }
}

/**
 * The history database of a tree at a size: cached, or made now (a few seconds for small, about a
 * minute for large on 2 cores). Start servers on a copy of dbPath, never on the file itself.
 */
export async function historyDatabase(opts: { treeDir: string; size: HistorySize; log?: (l: string) => void }): Promise<HistoryDatabase> {
  const log = opts.log ?? (() => {});
  const treeDir = path.resolve(opts.treeDir);
  const hash = treeHash(treeDir);
  const dir = path.join(cacheDir, "history");
  const dbPath = path.join(dir, `${hash}-${opts.size}.db`);
  const metaPath = `${dbPath}.json`;
  if (existsSync(dbPath) && existsSync(metaPath)) {
    const meta = JSON.parse(readFileSync(metaPath, "utf8")) as Omit<HistoryDatabase, "dbPath" | "cached">;
    return { ...meta, dbPath, cached: true };
  }
  mkdirSync(dir, { recursive: true });
  const t0 = performance.now();
  const work = mkdtempSync(path.join(os.tmpdir(), "ccam-history-"));
  try {
    // 1. The seed, through the tree's server and hook path.
    const seedDb = path.join(work, "seed.db");
    const nodePath = await ensureRuntimeDeps(treeDir, log);
    const monitor = await startMonitor({ treeDir, dbPath: seedDb, env: nodePath ? { NODE_PATH: nodePath } : {} });
    let agents;
    try {
      log(`  history: seeding ${SEED_AGENTS} sessions through the server…`);
      ({ agents } = await driveAgents({
        port: monitor.port,
        agents: SEED_AGENTS,
        mode: "blocking",
        durationMs: 120_000,
        eventsPerAgent: SEED_EVENTS_PER_AGENT,
        thinkMs: 2,
        bigEvery: 0,
        workDir: work,
      }));
    } finally {
      await monitor.stop();
    }
    const seedSessions = agents.map((a) => a.sessionId);
    // 2. Copies under new ids and older dates, then one compact file.
    const target = HISTORY_SIZES[opts.size];
    const db = openDatabase(seedDb, { timeout: 5000 });
    let sessions: number;
    let events: number;
    let copies = 0;
    const tmp = path.join(dir, `.${hash}-${opts.size}.${process.pid}.db`);
    try {
      db.exec("PRAGMA journal_mode = WAL; PRAGMA synchronous = OFF");
      const missing = seedSessions.filter((s) => !db.prepare("SELECT 1 FROM sessions WHERE id = ?").get(s));
      if (missing.length) throw new Error(`history: the server did not store ${missing.length} of the ${seedSessions.length} seed sessions`);
      const count = () => ({
        sessions: (db.prepare("SELECT COUNT(*) AS n FROM sessions").get() as { n: number }).n,
        events: (db.prepare("SELECT COUNT(*) AS n FROM events").get() as { n: number }).n,
      });
      log(`  history: copying the seed until ${target.sessions} sessions or ${target.events} events…`);
      for (let n = count(); n.sessions < target.sessions && n.events < 1.5 * target.events; n = count()) {
        copies++;
        db.exec("BEGIN");
        copySeed(db, seedSessions, copies);
        db.exec("COMMIT");
      }
      ({ sessions, events } = count());
      rmSync(tmp, { force: true });
      db.prepare("VACUUM INTO ?").run(tmp);
    } finally {
      db.close();
    }
    const bytes = statSync(tmp).size;
    const seconds = (performance.now() - t0) / 1000;
    const how =
      `${sessions} sessions, ${events} events, ${(bytes / 1048576).toFixed(0)} MB: ${SEED_AGENTS} seed sessions of ≤${SEED_EVENTS_PER_AGENT} hook events stored by the tree's own server ` +
      `(tree ${hash}, blocking client), copied ${copies}× with SQL under new ids, ${COPY_SPACING_HOURS} h older each copy, PostToolUse output ${TOOL_OUTPUT_BYTES} B; made in ${seconds.toFixed(1)} s`;
    renameSync(tmp, dbPath);
    writeFileSync(metaPath, JSON.stringify({ sessions, events, bytes, how }, null, 2) + "\n");
    log(`  history: ${how}`);
    return { dbPath, sessions, events, bytes, how, cached: false };
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}
