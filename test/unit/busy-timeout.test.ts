// Unit checks of busy-timeout beyond the fixture pairs: the runtime's parsing of
// AGENT_MONITOR_BUSY_TIMEOUT_MS, how it sets the pragma per driver, and what verify/report say.
import { copyFileSync, mkdtempSync } from "node:fs";
import { createRequire } from "node:module";
import os from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it, vi } from "vitest";
import patch, { connectionSites, fixedBusyTimeouts } from "../../patches/busy-timeout.ts";
import { repoRoot } from "../../scripts/lib/paths.ts";
import { memoryTreeView, verifyView } from "../../scripts/pipeline/patch.ts";

// The runtime is CommonJS for the generated tree, but this repo is "type": "module": load a .cjs copy.
const copy = path.join(mkdtempSync(path.join(os.tmpdir(), "am-bt-unit-")), "busy-timeout.cjs");
copyFileSync(path.join(repoRoot, "patches/runtime/busy-timeout.js"), copy);
const runtime = createRequire(import.meta.url)(copy) as {
  busyTimeoutMs(env: Record<string, string | undefined>): number;
  withBusyTimeout<T>(connection: T): T;
  ENV: string;
};

afterEach(() => vi.restoreAllMocks());

describe("busy-timeout runtime", () => {
  it.each([
    [undefined, 5000],
    ["", 5000],
    ["   ", 5000],
    ["0", 0],
    ["250", 250],
    [" 42 ", 42],
    ["2147483647", 2147483647],
  ])("%j -> %d without a warning", (value, ms) => {
    const warn = vi.spyOn(console, "warn").mockImplementation(() => {});
    expect(runtime.busyTimeoutMs({ [runtime.ENV]: value })).toBe(ms);
    expect(warn).not.toHaveBeenCalled();
  });

  it("invalid values fall back to 5000, warning once per process", () => {
    const warn = vi.spyOn(console, "warn").mockImplementation(() => {});
    for (const bad of ["-1", "1e3", "5.5", "soon", "2147483648", "0x10"]) {
      expect(runtime.busyTimeoutMs({ [runtime.ENV]: bad }), bad).toBe(5000);
    }
    expect(warn).toHaveBeenCalledTimes(1);
    expect(String(warn.mock.calls[0][0])).toContain(`ignoring ${runtime.ENV}="-1"`);
  });

  it("uses .pragma when the connection has it (better-sqlite3, compat), else exec (node:sqlite), and returns the connection", () => {
    const calls: string[] = [];
    const withPragma = { pragma: (s: string) => calls.push(`pragma ${s}`), exec: (s: string) => calls.push(`exec ${s}`) };
    const raw = { exec: (s: string) => calls.push(`exec ${s}`) };
    delete process.env[runtime.ENV];
    expect(runtime.withBusyTimeout(withPragma)).toBe(withPragma);
    expect(runtime.withBusyTimeout(raw)).toBe(raw);
    expect(calls).toEqual(["pragma busy_timeout = 5000", "exec PRAGMA busy_timeout = 5000"]);
  });
});

describe("busy-timeout verify and report", () => {
  const file = (text: string) => verifyView("server/db.js", text);

  it("names each connection site that lacks the wrap, and a fixed pragma that would override it", () => {
    const text = [
      'const Database = require("better-sqlite3");',
      'const a = require("./patch-runtime/busy-timeout").withBusyTimeout(new Database("a.db"));',
      'const b = new Database("b.db");',
      'new Database(":memory:").close();',
      'a.pragma("busy_timeout = 100");',
    ].join("\n");
    expect(patch.verify(file(text)).map(String)).toEqual([
      'line 3: new Database("b.db") opens a connection without busy_timeout (expected withBusyTimeout(new Database("b.db")))',
      'line 5: a.pragma("busy_timeout = 100") would override AGENT_MONITOR_BUSY_TIMEOUT_MS',
    ]);
    const tree = memoryTreeView({ "server/db.js": text, "server/other.js": "module.exports = 1;\n" });
    expect(patch.reportTree!(tree)).toEqual([
      "2 JS files scanned, 1 mention a SQLite driver or busy_timeout; 3 connection sites, 1 fixed busy_timeout overrides",
      'server/db.js:2 new Database("a.db"): busy_timeout set at open',
      'server/db.js:3 new Database("b.db"): MISSING busy_timeout',
      'server/db.js:4 new Database(":memory:"): exempt (in-memory probe: no file, no other connection to wait for)',
    ]);
    expect(patch.verifyTree!(tree)).toEqual([
      'server/db.js:3 new Database("b.db") opens a connection without busy_timeout (expected withBusyTimeout(new Database("b.db")))',
      'server/db.js:5 a.pragma("busy_timeout = 100") would override AGENT_MONITOR_BUSY_TIMEOUT_MS',
    ]);
  });

  it("a wrap by some other function does not count", () => {
    const text = 'const Database = require("better-sqlite3");\nconst a = somethingElse(new Database("a.db"));\n';
    expect(patch.verify(file(text))).toHaveLength(1);
  });

  it("a file without any connection site fails verify (it cannot pass as already applied)", () => {
    expect(patch.verify(file("module.exports = {};\n"))).toEqual(["no SQLite connection site new Database(…) / new DatabaseSync(…) found"]);
  });
});

describe("busy-timeout finds a connection by any driver and any name", () => {
  const sites = (text: string) => connectionSites(verifyView("server/lib/x.js", text)).map((s) => [s.line, s.driver, s.covered]);

  it("better-sqlite3 with or without new, node:sqlite aliased, compat, an ES import", () => {
    const text = [
      'const open = require("better-sqlite3");',
      'const { DatabaseSync: Sync } = require("node:sqlite");',
      'const Compat = require("../compat-sqlite");',
      'import Lite from "better-sqlite3";',
      'const a = open("a.db");',
      'const b = new Sync("b.db");',
      'const c = new Compat("c.db");',
      'const d = require("better-sqlite3")("d.db");',
      'const e = new (require("node:sqlite").DatabaseSync)("e.db");',
      'const f = new Lite("f.db");',
      'const g = require("../patch-runtime/busy-timeout").withBusyTimeout(open("g.db"));',
    ].join("\n");
    expect(sites(text)).toEqual([
      [5, "better-sqlite3", false],
      [6, "node:sqlite", false],
      [7, "better-sqlite3", false],
      [8, "better-sqlite3", false],
      [9, "node:sqlite", false],
      [10, "better-sqlite3", false],
      [11, "better-sqlite3", true],
    ]);
  });

  it("a node:sqlite DatabaseSync cannot be called without new, and a compat class neither: no site", () => {
    expect(sites('const { DatabaseSync } = require("node:sqlite");\nconst Compat = require("./compat-sqlite");\nDatabaseSync("a"); Compat("b");\n')).toEqual([]);
  });

  it("fixed busy_timeouts in templates, prepare and same-file consts count as overrides", () => {
    const text = ['const SQL = "PRAGMA busy_timeout = 0";', "db.exec(SQL);", "db.pragma(`busy_timeout = ${n}`);", 'db.prepare("PRAGMA main.busy_timeout=1").run();', 'db.pragma("busy_timeout", { simple: true });'].join("\n");
    expect(fixedBusyTimeouts(verifyView("server/lib/x.js", text)).map((c) => c.getStartLineNumber())).toEqual([2, 3, 4]);
  });
});
