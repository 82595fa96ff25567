// Runtime check of immediate-transactions with a real SQLite file: child processes (Node 22,
// node:sqlite through the generated server/compat-sqlite.js; Node 20 with better-sqlite3 for the
// generated server/db.js) run small scripts and print JSON. No timing assertions: the scripts
// coordinate through files, and only outcomes (errors, rows) are compared.
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ensureNode22 } from "../../scripts/lib/node22.ts";
import { repoRoot } from "../../scripts/lib/paths.ts";
import { buildFixture, buildFixtureUnpatched } from "../support/build-once.ts";

let node22: string;
let work: string;
let patchedDir: string;
let unpatchedDir: string;

/** The parent's environment minus anything that could steer the child (DB paths, homes, node options). */
function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (/^(DASHBOARD_|CLAUDE_|CCAM_|CODEX_|AGENT_MONITOR_)/.test(k) || ["NODE_PATH", "NODE_OPTIONS", "HOME"].includes(k)) continue;
    env[k] = v;
  }
  return { ...env, HOME: work, ...extra };
}

function script(name: string, source: string): string {
  const file = path.join(work, name);
  writeFileSync(file, source);
  return file;
}

/** Run a script to completion and parse the last stdout line as JSON. */
function runSync(binary: string, file: string, args: string[], env: Record<string, string> = {}): any {
  const r = spawnSync(binary, [file, ...args], { env: cleanEnv(env), encoding: "utf8", timeout: 60_000 });
  const last = r.stdout.trim().split("\n").pop() ?? "";
  if (r.status !== 0 || !last.startsWith("{")) throw new Error(`${path.basename(file)} exited ${r.status}: ${r.stderr}\n${r.stdout}`);
  return JSON.parse(last);
}

function runAsync(binary: string, file: string, args: string[]): Promise<any> {
  return new Promise((resolve, reject) => {
    const child = spawn(binary, [file, ...args], { env: cleanEnv(), stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    child.stdout.on("data", (d) => (out += d));
    child.stderr.on("data", (d) => (err += d));
    child.on("error", reject);
    child.on("exit", (code) => {
      const last = out.trim().split("\n").pop() ?? "";
      if (code !== 0 || !last.startsWith("{")) reject(new Error(`${path.basename(file)} exited ${code}: ${err}\n${out}`));
      else resolve(JSON.parse(last));
    });
  });
}

// Two processes, one counter: each runs tx(() => { read n; …; write n + 1 }) on its own connection
// with busy_timeout 10 s. Both first meet at a "ready" barrier; inside the transaction each waits
// (up to 3 s) until the other has read too, so with deferred BEGINs both hold a read snapshot when
// they write. With BEGIN IMMEDIATE the second one cannot read before the first commits: its
// wait times out and both commit, one after the other.
const READ_THEN_WRITE = `
const fs = require("fs");
const path = require("path");
const [compat, dbPath, dir, me, other] = process.argv.slice(2);
const Database = require(compat);
const sleep = (ms) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
const signal = (what) => fs.writeFileSync(path.join(dir, me + "." + what), "");
const waitFor = (what, ms) => {
  for (let waited = 0; waited < ms; waited += 10) {
    if (fs.existsSync(path.join(dir, other + "." + what))) return true;
    sleep(10);
  }
  return false;
};
const db = new Database(dbPath);
db.pragma("busy_timeout = 10000");
signal("ready");
if (!waitFor("ready", 60000)) throw new Error("the other process never started");
let result;
try {
  const tx = db.transaction(() => {
    const { n } = db.prepare("SELECT n FROM counter").get();
    signal("read");
    const otherReadToo = waitFor("read", 3000);
    db.prepare("UPDATE counter SET n = ?").run(n + 1);
    return { n, otherReadToo };
  });
  result = { ok: true, ...tx() };
} catch (err) {
  result = { ok: false, errcode: err.errcode ?? null, message: String(err.message) };
}
db.close();
console.log(JSON.stringify(result));
`;

const SETUP_COUNTER = `
const { DatabaseSync } = require("node:sqlite");
const [dbPath, journal] = process.argv.slice(2);
const db = new DatabaseSync(dbPath);
db.exec("PRAGMA journal_mode = " + journal + "; CREATE TABLE IF NOT EXISTS counter (n INTEGER); DELETE FROM counter; INSERT INTO counter VALUES (0); CREATE TABLE IF NOT EXISTS t (x TEXT)");
console.log(JSON.stringify({ ok: true }));
`;

const READ_COUNTER = `
const { DatabaseSync } = require("node:sqlite");
const db = new DatabaseSync(process.argv[2]);
console.log(JSON.stringify(db.prepare("SELECT n FROM counter").get()));
`;

async function readThenWriteRace(treeDir: string, label: string): Promise<{ results: any[]; n: number }> {
  const dir = mkdtempSync(path.join(work, `race-${label}-`));
  const dbPath = path.join(dir, "race.db");
  runSync(node22, script("setup.cjs", SETUP_COUNTER), [dbPath, "WAL"]);
  const rw = script("read-then-write.cjs", READ_THEN_WRITE);
  const compat = path.join(treeDir, "server", "compat-sqlite.js");
  const results = await Promise.all([runAsync(node22, rw, [compat, dbPath, dir, "a", "b"]), runAsync(node22, rw, [compat, dbPath, dir, "b", "a"])]);
  const { n } = runSync(node22, script("read.cjs", READ_COUNTER), [dbPath]);
  return { results, n };
}

beforeAll(async () => {
  node22 = ensureNode22();
  work = mkdtempSync(path.join(os.tmpdir(), "am-immediate-tx-"));
  [patchedDir, unpatchedDir] = await Promise.all([buildFixture().then((b) => b.outDir), buildFixtureUnpatched().then((b) => b.outDir)]);
});

afterAll(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

describe("immediate-transactions at runtime (node:sqlite compat wrapper, Node 22)", () => {
  it("two processes doing read-then-write transactions both commit: the second waits for the write lock instead of failing", async () => {
    const { results, n } = await readThenWriteRace(patchedDir, "patched");
    expect(results.map((r) => r.ok)).toEqual([true, true]);
    expect(n).toBe(2);
    // the IMMEDIATE lock kept them apart: whoever went second read the first one's write
    expect(results.map((r) => r.n).sort()).toEqual([0, 1]);
    expect(results.some((r) => r.otherReadToo === false)).toBe(true);
  });

  it("contrast: the unpatched deferred wrapper fails one of them with SQLITE_BUSY although busy_timeout is 10 s", async () => {
    const { results, n } = await readThenWriteRace(unpatchedDir, "unpatched");
    // both held a read snapshot before either wrote…
    expect(results.filter((r) => r.ok).map((r) => r.otherReadToo)).toEqual([true]);
    // …so the second writer's upgrade is refused: busy_timeout cannot help a stale snapshot
    const failed = results.filter((r) => !r.ok);
    expect(failed).toHaveLength(1);
    expect(failed[0].errcode & 0xff).toBe(5); // SQLITE_BUSY (517 = SQLITE_BUSY_SNAPSHOT)
    expect(failed[0].message).toMatch(/database is locked/);
    expect(n).toBe(1);
  });

  const NESTED = `
const [compat, dbPath] = process.argv.slice(2);
const Database = require(compat);
const db = new Database(dbPath);
const rows = () => db.prepare("SELECT x FROM t ORDER BY rowid").all().map((r) => r.x);
const insert = (x) => db.prepare("INSERT INTO t (x) VALUES (?)").run(x);
const out = {};
db.exec("DELETE FROM t");
const failingInner = db.transaction((x) => { insert(x); throw new Error("inner failed"); });
const okInner = db.transaction((x) => { insert(x); return "inner ok"; });
const outer = db.transaction(() => {
  insert("a");
  try { failingInner("b"); } catch (err) { out.caught = err.message; }
  out.innerResult = okInner("c");
  out.deeper = db.transaction(() => okInner("d"))();
  out.inTransactionInside = db._db.isTransaction;
  return "outer ok";
});
try { out.outerResult = outer(); } catch (err) { out.outerError = err.message; }
out.rows = rows();
out.inTransactionAfter = db._db.isTransaction;
db.exec("DELETE FROM t");
const failingOuter = db.transaction(() => { insert("e"); okInner("f"); throw new Error("outer failed"); });
try { failingOuter(); } catch (err) { out.outerCaught = err.message; }
out.rowsAfterOuterFailure = rows();
console.log(JSON.stringify(out));
`;

  it("nested transactions use savepoints: an inner throw rolls back only the inner part", () => {
    const dbPath = path.join(work, "nested.db");
    runSync(node22, script("setup.cjs", SETUP_COUNTER), [dbPath, "WAL"]);
    const out = runSync(node22, script("nested.cjs", NESTED), [path.join(patchedDir, "server", "compat-sqlite.js"), dbPath]);
    expect(out).toEqual({
      caught: "inner failed",
      innerResult: "inner ok",
      deeper: "inner ok",
      inTransactionInside: true,
      outerResult: "outer ok",
      rows: ["a", "c", "d"],
      inTransactionAfter: false,
      outerCaught: "outer failed",
      rowsAfterOuterFailure: [],
    });
  });

  it("contrast: the unpatched wrapper cannot nest (BEGIN inside BEGIN), so the whole outer transaction fails", () => {
    const dbPath = path.join(work, "nested-unpatched.db");
    runSync(node22, script("setup.cjs", SETUP_COUNTER), [dbPath, "WAL"]);
    const out = runSync(node22, script("nested.cjs", NESTED), [path.join(unpatchedDir, "server", "compat-sqlite.js"), dbPath]);
    expect(out.caught).toMatch(/cannot start a transaction within a transaction/);
    expect(out.outerError).toMatch(/cannot start a transaction within a transaction/);
    expect(out.rows).toEqual([]);
  });

  // Inside each variant, a second connection (busy_timeout 0) probes the lock the first one holds.
  // A rollback-journal file (not WAL) so EXCLUSIVE is observable: it also shuts readers out.
  const VARIANTS = `
const { DatabaseSync } = require("node:sqlite");
const [compat, dbPath] = process.argv.slice(2);
const Database = require(compat);
const db = new Database(dbPath);
const other = new DatabaseSync(dbPath);
other.exec("PRAGMA busy_timeout = 0");
const attempt = (fn) => { try { fn(); return "ok"; } catch (err) { return (err.errcode & 0xff) === 5 ? "SQLITE_BUSY" : String(err.message); } };
const probe = (label) => {
  return {
    label,
    otherWrites: attempt(() => { other.exec("BEGIN IMMEDIATE"); other.exec("ROLLBACK"); }),
    otherReads: attempt(() => other.prepare("SELECT n FROM counter").get()),
  };
};
const tx = db.transaction(probe);
const out = {
  kinds: ["default", "deferred", "immediate", "exclusive"].map((k) => typeof tx[k]),
  defaultIsPlainCall: tx.default === tx,
  plain: tx("plain"),
  default: tx.default("default"),
  deferred: tx.deferred("deferred"),
  immediate: tx.immediate("immediate"),
  exclusive: tx.exclusive("exclusive"),
  chained: typeof tx.deferred.exclusive,
  inTransactionAfter: db._db.isTransaction,
};
console.log(JSON.stringify(out));
`;

  it(".default/.deferred/.immediate/.exclusive exist and take the lock their name says (plain call = IMMEDIATE)", () => {
    const dbPath = path.join(work, "variants.db");
    runSync(node22, script("setup.cjs", SETUP_COUNTER), [dbPath, "DELETE"]);
    const out = runSync(node22, script("variants.cjs", VARIANTS), [path.join(patchedDir, "server", "compat-sqlite.js"), dbPath]);
    expect(out.kinds).toEqual(["function", "function", "function", "function"]);
    expect(out.defaultIsPlainCall).toBe(true);
    const row = (label: string, otherWrites: string, otherReads: string) => ({ label, otherWrites, otherReads });
    expect(out.plain).toEqual(row("plain", "SQLITE_BUSY", "ok"));
    expect(out.default).toEqual(row("default", "SQLITE_BUSY", "ok"));
    expect(out.immediate).toEqual(row("immediate", "SQLITE_BUSY", "ok"));
    expect(out.deferred).toEqual(row("deferred", "ok", "ok"));
    expect(out.exclusive).toEqual(row("exclusive", "SQLITE_BUSY", "SQLITE_BUSY"));
    expect(out.chained).toBe("function");
    expect(out.inTransactionAfter).toBe(false);
  });
});

describe("immediate-transactions at runtime (better-sqlite3 driver, the generated server/db.js on the machine's Node)", () => {
  // better-sqlite3 in the root node_modules is built for this Node (the one running vitest), so
  // the generated db.js picks it over node:sqlite; NODE_PATH lets the out-of-repo tree find it.
  const PROBE = `
const Database = require("better-sqlite3");
const [dbJs, dbPath] = process.argv.slice(2);
const { db } = require(dbJs);
const other = new Database(dbPath, { timeout: 0 });
const attempt = () => { try { other.exec("BEGIN IMMEDIATE"); other.exec("ROLLBACK"); return "ok"; } catch (err) { return err.code; } };
const tx = db.transaction(attempt);
const nested = db.transaction(() => {
  db.exec("CREATE TABLE IF NOT EXISTS probe_rows (x TEXT)");
  db.prepare("INSERT INTO probe_rows VALUES ('outer')").run();
  try { db.transaction(() => { db.prepare("INSERT INTO probe_rows VALUES ('inner')").run(); throw new Error("x"); })(); } catch {}
  return db.prepare("SELECT x FROM probe_rows").all().map((r) => r.x);
});
console.log(JSON.stringify({
  driver: db instanceof Database ? "better-sqlite3" : db.constructor.name,
  plain: tx(),
  default: tx.default(),
  immediate: tx.immediate(),
  deferred: tx.deferred(),
  exclusive: tx.exclusive(),
  nested: nested(),
  busyTimeout: db.pragma("busy_timeout", { simple: true }),
}));
`;

  function probe(treeDir: string, label: string): any {
    const dir = mkdtempSync(path.join(work, `bs3-${label}-`));
    const dbPath = path.join(dir, "monitor.db");
    return runSync(process.execPath, script("bs3-probe.cjs", PROBE), [path.join(treeDir, "server", "db.js"), dbPath], {
      NODE_PATH: path.join(repoRoot, "node_modules"),
      DASHBOARD_DB_PATH: dbPath,
    });
  }

  it("db.transaction(fn) on the shared connection is IMMEDIATE by default; .deferred stays deferred; nesting still works", () => {
    const out = probe(patchedDir, "patched");
    expect(out.driver).toBe("better-sqlite3");
    expect(out.plain).toBe("SQLITE_BUSY");
    expect(out.default).toBe("SQLITE_BUSY");
    expect(out.immediate).toBe("SQLITE_BUSY");
    expect(out.exclusive).toBe("SQLITE_BUSY");
    expect(out.deferred).toBe("ok");
    expect(out.nested).toEqual(["outer"]);
    expect(out.busyTimeout).toBe(5000);
  });

  it("contrast: upstream's db.transaction(fn) is deferred (a second writer gets in)", () => {
    const out = probe(unpatchedDir, "unpatched");
    expect(out.driver).toBe("better-sqlite3");
    expect(out.plain).toBe("ok");
    expect(out.immediate).toBe("SQLITE_BUSY");
  });
});
