// Mutation tests of busy-timeout's whole-tree gate: upstream adds a connection the declared
// targets do not cover. The patch finds it (discover) and covers it, proven by the gate and at
// runtime; a site it cannot rewrite fails the build naming file:line.
import { readFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { before, buildMutant, mutateFixture, targetsOnly } from "../support/mutation.ts";
import { useRuntimeScratch } from "../support/runtime.ts";

const scratch = useRuntimeScratch();

const USAGE_STORE = `// A module upstream might add: its own connection to the dashboard database, opened through an
// aliased node:sqlite import, which then turns waiting off.
const { DatabaseSync: SqliteDb } = require("node:sqlite");
const { DB_PATH } = require("../db");

let conn = null;
function store() {
  if (!conn) {
    conn = new SqliteDb(DB_PATH);
    conn.exec("PRAGMA busy_timeout = 0");
  }
  return conn;
}

function busyTimeoutMs() {
  return store().prepare("PRAGMA busy_timeout").get().timeout;
}

module.exports = { busyTimeoutMs };
`;

const newModule = () =>
  mutateFixture("own-connection", {
    "server/lib/usage-store.js": USAGE_STORE,
    "server/index.js": before("  return app;\n}", '  app.get("/api/usage-store/busy-timeout", (_req, res) => res.json({ ms: require("./lib/usage-store").busyTimeoutMs() }));\n\n'),
  });

describe("busy-timeout mutation: a new module opens its own connection", () => {
  it("the patch finds it, wraps it and drops the later busy_timeout = 0; the gate lists it (targets alone would have shipped it bare)", async () => {
    const dir = newModule();
    const contrast = await buildMutant(dir, { patches: targetsOnly });
    expect(contrast.problems).toBeNull();
    expect(readFileSync(path.join(contrast.out, "server/lib/usage-store.js"), "utf8")).toBe(USAGE_STORE);

    const built = await buildMutant(dir);
    expect(built.problems).toBeNull();
    const mine = built.outcome!.results.filter((r) => r.patch === "busy-timeout" && r.file === "server/lib/usage-store.js");
    expect(mine.map((r) => [r.action, r.discovered])).toEqual([["applied", true]]);
    const text = readFileSync(path.join(built.out, "server/lib/usage-store.js"), "utf8");
    expect(text).toContain('conn = /* [patch:busy-timeout] */ require("../patch-runtime/busy-timeout").withBusyTimeout(new SqliteDb(DB_PATH));');
    expect(text).toContain('/* conn.exec("PRAGMA busy_timeout = 0"): busy_timeout is set where the connection opens */');
    expect(built.outcome!.notes).toContain("[busy-timeout] whole tree: server/lib/usage-store.js:9 new SqliteDb(DB_PATH): busy_timeout set at open");
  });

  it("at runtime the new module's connection waits AGENT_MONITOR_BUSY_TIMEOUT_MS (the unpatched tree: 0)", async () => {
    const dir = newModule();
    const patched = await buildMutant(dir);
    const unpatched = await buildMutant(dir, { unpatched: true });
    const env = { AGENT_MONITOR_BUSY_TIMEOUT_MS: "4321" };
    const m = await scratch.start(patched.out, { dbPath: path.join(scratch.tempDir("am-mut-bt-"), "monitor.db"), env });
    expect(await m.get("/api/usage-store/busy-timeout")).toEqual({ ms: 4321 });
    const u = await scratch.start(unpatched.out, { dbPath: path.join(scratch.tempDir("am-mut-bt-"), "monitor.db"), env });
    expect(await u.get("/api/usage-store/busy-timeout")).toEqual({ ms: 0 });
  });
});

describe("busy-timeout mutation: a script opens better-sqlite3 without new", () => {
  it("is covered too (and immediate-transactions makes its transaction() IMMEDIATE, around the busy_timeout wrap)", async () => {
    const script = 'const open = require("better-sqlite3");\nconst db = open(process.env.DASHBOARD_DB_PATH);\ndb.prepare("DELETE FROM events WHERE created_at < ?").run(process.argv[2]);\n';
    const built = await buildMutant(mutateFixture("callable", { "scripts/prune-events.js": script }));
    expect(built.problems).toBeNull();
    expect(readFileSync(path.join(built.out, "scripts/prune-events.js"), "utf8")).toContain(
      'const db = /* [patch:immediate-transactions] */ require("../server/patch-runtime/immediate-transactions").immediateByDefault(' +
        '/* [patch:busy-timeout] */ require("../server/patch-runtime/busy-timeout").withBusyTimeout(open(process.env.DASHBOARD_DB_PATH)));',
    );
  });
});

describe("busy-timeout mutation: a fixed busy_timeout the patch cannot remove", () => {
  it("fails the build naming the patch, the file and the line", async () => {
    const probe = 'const { db } = require("../db");\n\nfunction lockProbe() {\n  const previous = db.pragma("busy_timeout = 0");\n  return previous;\n}\n\nmodule.exports = { lockProbe };\n';
    const built = await buildMutant(mutateFixture("fixed-in-expression", { "server/lib/lock-probe.js": probe }));
    expect(built.problems).toContain('[busy-timeout] server/lib/lock-probe.js: expected 1 statement db.pragma("busy_timeout = 0"); on its own');
    expect(built.problems).toContain("line 4: it is part of a larger expression");
  });
});
