// Mutation tests of immediate-transactions' whole-tree gate: upstream adds a raw deferred BEGIN in
// a new module (the patch finds and rewrites it; a runtime race shows the difference), asks for a
// deferred transaction explicitly (the gate fails, naming file:line), or already begins IMMEDIATE
// itself (reported as already satisfied by upstream; savepoint nesting still added).
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { openDatabase } from "../../harness/sqlite.ts";
import { repoRoot } from "../../scripts/lib/paths.ts";
import { before, buildMutant, mutateFixture, targetsOnly } from "../support/mutation.ts";
import { useRuntimeScratch } from "../support/runtime.ts";

const scratch = useRuntimeScratch();

const MAINTENANCE = `// A module upstream might add: a maintenance step with a raw transaction of its own.
const { db } = require("../db");

db.exec("CREATE TABLE IF NOT EXISTS maintenance_log (sessions INTEGER)");

function recount() {
  db.exec("BEGIN");
  try {
    const { n } = db.prepare("SELECT COUNT(*) AS n FROM sessions").get();
    db.prepare("INSERT INTO maintenance_log (sessions) VALUES (?)").run(n);
    db.exec("COMMIT");
    return n;
  } catch (err) {
    db.exec("ROLLBACK");
    throw err;
  }
}

module.exports = { recount };
`;

const ROUTE =
  '  app.post("/api/maintenance/recount", (_req, res) => {\n' +
  "    try {\n" +
  '      res.json({ ok: true, sessions: require("./lib/maintenance").recount() });\n' +
  "    } catch (err) {\n" +
  "      res.status(500).json({ ok: false, error: err.message });\n" +
  "    }\n" +
  "  });\n\n";

const migration = () => mutateFixture("raw-begin", { "server/lib/maintenance.js": MAINTENANCE, "server/index.js": before("  return app;\n}", ROUTE) });

/** POST the recount while another connection holds the write lock and commits a write 1 s later (ample time for the request to reach its write). */
async function recountUnderContention(url: string, dbPath: string): Promise<{ status: number; body: any }> {
  const companion = openDatabase(dbPath, { timeout: 5000 });
  try {
    companion.exec("BEGIN IMMEDIATE");
    companion.prepare("INSERT INTO maintenance_log (sessions) VALUES (-1)").run();
    const commit = setTimeout(() => companion.exec("COMMIT"), 1000);
    const res = await fetch(`${url}/api/maintenance/recount`, { method: "POST" });
    clearTimeout(commit);
    if (companion.inTransaction) companion.exec("COMMIT");
    return { status: res.status, body: await res.json() };
  } finally {
    companion.close();
  }
}

describe("immediate-transactions mutation: a new module runs a raw deferred BEGIN", () => {
  it("the patch finds the module and makes the BEGIN IMMEDIATE; the gate lists it (targets alone would have left it deferred)", async () => {
    const dir = migration();
    const contrast = await buildMutant(dir, { patches: targetsOnly });
    expect(contrast.problems).toBeNull();
    expect(readFileSync(path.join(contrast.out, "server/lib/maintenance.js"), "utf8")).toBe(MAINTENANCE);

    const built = await buildMutant(dir);
    expect(built.problems).toBeNull();
    expect(readFileSync(path.join(built.out, "server/lib/maintenance.js"), "utf8")).toContain('db.exec("BEGIN IMMEDIATE /* [patch:immediate-transactions] */");');
    const mine = built.outcome!.results.filter((r) => r.patch === "immediate-transactions" && r.file === "server/lib/maintenance.js");
    expect(mine.map((r) => [r.action, r.discovered])).toEqual([["applied", true]]);
    expect(built.outcome!.notes).toContain("[immediate-transactions] whole tree: server/lib/maintenance.js:7 BEGIN IMMEDIATE in db.exec(…)");
  });

  it("at runtime, with another writer committing meanwhile, the patched recount waits and succeeds; the unpatched one fails on its stale read", async () => {
    const dir = migration();
    const results: Record<string, { status: number; body: any }> = {};
    for (const [label, opts] of [["patched", {}], ["unpatched", { unpatched: true }]] as const) {
      const built = await buildMutant(dir, opts);
      const m = await scratch.start(built.out, { dbPath: path.join(scratch.tempDir("am-mut-it-"), "monitor.db") });
      const res = await fetch(`${m.url}/api/maintenance/recount`, { method: "POST" }); // loads the module, creates its table
      expect(res.status).toBe(200);
      results[label] = await recountUnderContention(m.url, m.dbPath);
    }
    expect(results.patched).toEqual({ status: 200, body: { ok: true, sessions: 0 } });
    expect(results.unpatched.status).toBe(500);
    expect(results.unpatched.body.error).toMatch(/database is locked|busy/i);
  });
});

describe("immediate-transactions mutation: a transaction asked to be deferred explicitly", () => {
  it("fails the gate naming the patch, the file and the line", async () => {
    const cleanup = 'const { db } = require("../db");\n\nconst purge = db.transaction((before) => db.prepare("DELETE FROM events WHERE created_at < ?").run(before));\n\nmodule.exports = { purge: (t) => purge.deferred(t) };\n';
    const built = await buildMutant(mutateFixture("explicit-deferred", { "server/lib/cleanup.js": cleanup }));
    expect(built.problems).toContain("[immediate-transactions] whole tree: server/lib/cleanup.js:5 purge.deferred: an explicitly deferred transaction");
  });
});

describe("immediate-transactions: upstream's compat transaction() already begins IMMEDIATE", () => {
  const upstreamImmediate = () =>
    mutateFixture("already-immediate", {
      "server/compat-sqlite.js": (t) => t.replace('db.exec("BEGIN");', 'db.exec("BEGIN IMMEDIATE");'),
    });

  it("reports that part as already satisfied by upstream, still adds savepoint nesting, and the gate passes", async () => {
    const built = await buildMutant(upstreamImmediate());
    expect(built.problems).toBeNull();
    const rows = built.outcome!.results.filter((r) => r.patch === "immediate-transactions" && r.file === "server/compat-sqlite.js");
    expect(rows.map((r) => [r.action, r.note])).toEqual([
      ["already-satisfied", "compat transaction() begins IMMEDIATE"],
      ["applied", undefined],
    ]);
    expect(readFileSync(path.join(built.out, "server/compat-sqlite.js"), "utf8")).toContain('return require("./patch-runtime/immediate-transactions").compatTransaction(this._db, fn);');
  });

  it("the build CLI prints it", () => {
    const out = path.join(scratch.tempDir("am-mut-cli-"), "agent-monitor");
    const log = execFileSync(process.execPath, ["--import", "tsx", path.join(repoRoot, "scripts/build.ts"), "--upstream", upstreamImmediate(), "--out", out], { encoding: "utf8", cwd: repoRoot });
    expect(log).toContain("already satisfied by upstream: [immediate-transactions] server/compat-sqlite.js: compat transaction() begins IMMEDIATE");
    expect(log).toMatch(/1 already satisfied by upstream; stamp/);
  });
});
