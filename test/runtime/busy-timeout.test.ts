// Runtime check of busy-timeout: the generated tree's connections carry busy_timeout (5000 ms, or
// AGENT_MONITOR_BUSY_TIMEOUT_MS) from their very first statement. A preload script instruments
// node:sqlite's DatabaseSync and records, per connection, the busy_timeout in force when its first
// statement other than `PRAGMA busy_timeout = …` runs; the generated db.js (shared connection and
// the legacy-migration source) and scripts/clear-data.js then run under Node 22 (node:sqlite path).
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ensureNode22 } from "../../scripts/lib/node22.ts";
import { repoRoot } from "../../scripts/lib/paths.ts";
import { buildFixture, buildFixtureUnpatched } from "../support/build-once.ts";

const ENV = "AGENT_MONITOR_BUSY_TIMEOUT_MS";
let node22: string;
let work: string;
let patchedDir: string;
let unpatchedDir: string;

const PRELOAD = `
const fs = require("fs");
const { DatabaseSync } = require("node:sqlite");
const proto = DatabaseSync.prototype;
const prepare = proto.prepare;
const seen = new WeakSet();
const records = [];
const setsTimeout = (sql) => /^\\s*PRAGMA\\s+busy_timeout\\s*=/i.test(String(sql));
for (const method of ["exec", "prepare"]) {
  const original = proto[method];
  proto[method] = function (sql, ...rest) {
    if (!seen.has(this) && !setsTimeout(sql)) {
      seen.add(this);
      const { timeout } = prepare.call(this, "PRAGMA busy_timeout").get();
      records.push({ file: require("path").basename(this.location() || ":memory:"), first: String(sql).trim().split("\\n")[0].slice(0, 60), busyTimeout: timeout });
    }
    return original.call(this, sql, ...rest);
  };
}
process.on("exit", () => fs.writeFileSync(process.env.RECORD_FILE, JSON.stringify(records)));
`;

function cleanEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (/^(DASHBOARD_|CLAUDE_|CCAM_|CODEX_|AGENT_MONITOR_)/.test(k) || ["NODE_PATH", "NODE_OPTIONS", "HOME"].includes(k)) continue;
    env[k] = v;
  }
  return { ...env, ...extra };
}

interface Recorded {
  file: string;
  first: string;
  busyTimeout: number;
}

/** Run `args` under Node 22 with the recorder preloaded; returns the connections it saw and stderr. */
function recorded(args: string[], env: Record<string, string>, binary = node22): { records: Recorded[]; stderr: string; stdout: string } {
  const recordFile = path.join(mkdtempSync(path.join(work, "rec-")), "records.json");
  const r = spawnSync(binary, ["--require", path.join(work, "preload.cjs"), ...args], { env: cleanEnv({ ...env, RECORD_FILE: recordFile }), encoding: "utf8", timeout: 60_000 });
  if (r.status !== 0) throw new Error(`exit ${r.status}: ${r.stderr}`);
  return { records: JSON.parse(readFileSync(recordFile, "utf8")), stderr: r.stderr, stdout: r.stdout };
}

/**
 * A fresh home whose canonical DB does not exist yet, plus a legacy DB for db.js to migrate from
 * (DASHBOARD_LEGACY_DB_PATH), so both of db.js's file connections open: the migration source and
 * the shared connection at ~/.claude/agent-dashboard/dashboard.db.
 */
function freshHome(label: string): { env: Record<string, string>; dbPath: string } {
  const home = mkdtempSync(path.join(work, `home-${label}-`));
  const legacy = path.join(home, "legacy.db");
  const r = spawnSync(node22, ["-e", `new (require("node:sqlite").DatabaseSync)(${JSON.stringify(legacy)}).exec("CREATE TABLE legacy_marker (x)")`], { encoding: "utf8" });
  if (r.status !== 0) throw new Error(r.stderr);
  return { env: { HOME: home, DASHBOARD_LEGACY_DB_PATH: legacy }, dbPath: path.join(home, ".claude", "agent-dashboard", "dashboard.db") };
}

const loadDb = (treeDir: string) => ["-e", `require(${JSON.stringify(path.join(treeDir, "server", "db.js"))})`];

beforeAll(async () => {
  node22 = ensureNode22();
  work = mkdtempSync(path.join(os.tmpdir(), "am-busy-timeout-"));
  writeFileSync(path.join(work, "preload.cjs"), PRELOAD);
  [patchedDir, unpatchedDir] = await Promise.all([buildFixture().then((b) => b.outDir), buildFixtureUnpatched().then((b) => b.outDir)]);
});

afterAll(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

describe("busy-timeout at runtime (node:sqlite, Node 22)", () => {
  it("db.js: the migration source and the shared connection run their first statement with busy_timeout 5000", () => {
    const { env, dbPath } = freshHome("default");
    const { records } = recorded(loadDb(patchedDir), env);
    expect(existsSync(dbPath)).toBe(true); // the migration ran, so both connections were opened
    expect(records.map((r) => [r.file, r.first.split(" ").slice(0, 2).join(" "), r.busyTimeout])).toEqual([
      ["legacy.db", "VACUUM INTO", 5000],
      ["dashboard.db", "PRAGMA journal_mode", 5000],
    ]);
  });

  it(`follows ${ENV} on every connection, from the first statement`, () => {
    const { env } = freshHome("env");
    const { records } = recorded(loadDb(patchedDir), { ...env, [ENV]: "1234" });
    expect(records.map((r) => [r.file, r.busyTimeout])).toEqual([
      ["legacy.db", 1234],
      ["dashboard.db", 1234],
    ]);
  });

  it("after loading, the shared connection still has the configured value: upstream's later fixed 5000 is gone (what /api/settings shows)", () => {
    const { env } = freshHome("after");
    const script = `const { db } = require(${JSON.stringify(path.join(patchedDir, "server", "db.js"))}); console.log(JSON.stringify({ now: db.pragma("busy_timeout", { simple: true }) }))`;
    const { stdout } = recorded(["-e", script], { ...env, [ENV]: "2345" });
    expect(JSON.parse(stdout.trim().split("\n").pop()!)).toEqual({ now: 2345 });
  });

  it(`an invalid ${ENV} falls back to 5000 with one warning`, () => {
    const { env } = freshHome("invalid");
    const { records, stderr } = recorded(loadDb(patchedDir), { ...env, [ENV]: "soon" });
    expect(records.map((r) => r.busyTimeout)).toEqual([5000, 5000]);
    const warnings = stderr.split("\n").filter((l) => l.includes(ENV));
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/ignoring AGENT_MONITOR_BUSY_TIMEOUT_MS="soon".*using 5000/);
  });

  it("scripts/clear-data.js opens its connection with the configured busy_timeout", () => {
    const dir = mkdtempSync(path.join(work, "clear-"));
    const dbPath = path.join(dir, "monitor.db");
    recorded(loadDb(patchedDir), { HOME: dir, DASHBOARD_DB_PATH: dbPath }); // create the schema
    const { records, stdout } = recorded([path.join(patchedDir, "scripts", "clear-data.js")], { HOME: dir, DASHBOARD_DB_PATH: dbPath, [ENV]: "777" });
    expect(stdout).toMatch(/dry run/i); // no --yes: it only counts, but it did open the database
    expect(records).toHaveLength(1);
    expect(records[0].file).toBe("monitor.db");
    expect(records[0].busyTimeout).toBe(777);
  });

  it("every compat connection gets it, whoever opens it (the wrapper's constructor)", () => {
    const dir = mkdtempSync(path.join(work, "compat-"));
    mkdirSync(dir, { recursive: true });
    const script = `const Database = require(${JSON.stringify(path.join(patchedDir, "server", "compat-sqlite.js"))}); const d = new Database(${JSON.stringify(path.join(dir, "x.db"))}); d.exec("CREATE TABLE IF NOT EXISTS x (y)");`;
    expect(recorded(["-e", script], { HOME: dir }).records).toEqual([{ file: "x.db", first: "CREATE TABLE IF NOT EXISTS x (y)", busyTimeout: 5000 }]);
    expect(recorded(["-e", script], { HOME: dir, [ENV]: "0" }).records[0].busyTimeout).toBe(0);
  });

  it("contrast: upstream's shared connection runs journal_mode = WAL with busy_timeout 0, and ignores the variable", () => {
    const { env } = freshHome("unpatched");
    const { records } = recorded(loadDb(unpatchedDir), { ...env, [ENV]: "1234" });
    expect(records.map((r) => [r.file, r.first.split(" ").slice(0, 2).join(" "), r.busyTimeout])).toEqual([
      ["legacy.db", "VACUUM INTO", 0],
      ["dashboard.db", "PRAGMA journal_mode", 0],
    ]);
  });
});

describe("busy-timeout at runtime (better-sqlite3 driver, the generated server/db.js on the machine's Node)", () => {
  it(`the shared better-sqlite3 connection follows ${ENV}`, () => {
    const dir = mkdtempSync(path.join(work, "bs3-"));
    const script = `const { db } = require(${JSON.stringify(path.join(patchedDir, "server", "db.js"))}); console.log(JSON.stringify({ driver: db.constructor.name, inTx: typeof db.inTransaction, now: db.pragma("busy_timeout", { simple: true }) }))`;
    const r = spawnSync(process.execPath, ["-e", script], {
      env: cleanEnv({ HOME: dir, DASHBOARD_DB_PATH: path.join(dir, "m.db"), NODE_PATH: path.join(repoRoot, "node_modules"), [ENV]: "3456" }),
      encoding: "utf8",
    });
    expect(r.status, r.stderr).toBe(0);
    // better-sqlite3 has an inTransaction getter; the compat wrapper has none
    // The last line: db.js logs index-list-queries' startup line before it.
    expect(JSON.parse(r.stdout.trim().split("\n").at(-1)!)).toEqual({ driver: "Database", inTx: "boolean", now: 3456 });
  });
});
