// Unit checks of immediate-transactions beyond the fixture pairs: the SQL scan that finds raw
// BEGIN statements, and what verify/report say about a db.js or compat-sqlite.js.
import { describe, expect, it } from "vitest";
import patch from "../../patches/immediate-transactions.ts";
import { beginStatements } from "../../patches/lib/sqlite.ts";
import { memoryTreeView, verifyView } from "../../scripts/pipeline/patch.ts";

const begins = (js: string) => beginStatements(verifyView("server/db.js", js)).map((b) => [b.line, b.mode?.word ?? null]);

describe("raw BEGIN scan", () => {
  it("finds BEGIN at statement starts in exec/prepare strings, with its mode", () => {
    expect(begins('db.exec("BEGIN");')).toEqual([[1, null]]);
    expect(begins("db.exec('begin transaction');")).toEqual([[1, null]]);
    expect(begins('db.prepare("BEGIN DEFERRED").run();')).toEqual([[1, "DEFERRED"]]);
    expect(begins('db.exec("PRAGMA x = 1; BEGIN IMMEDIATE; COMMIT");')).toEqual([[1, "IMMEDIATE"]]);
    expect(begins('db.exec("BEGIN /* why */ EXCLUSIVE");')).toEqual([[1, "EXCLUSIVE"]]);
    expect(begins('db.exec("PRAGMA a = 1;\\nBEGIN;");')).toEqual([[1, null]]);
    expect(begins("db.exec(`\n  X;\n  ${a};\n  BEGIN;\n`);")).toEqual([[4, null]]);
  });

  it("ignores BEGIN in comments, quoted SQL, trigger bodies, non-SQL calls and after a substitution", () => {
    expect(begins("db.exec(\"-- BEGIN;\\nSELECT 1\");")).toEqual([]);
    expect(begins("db.exec(\"/* BEGIN; */ SELECT 1\");")).toEqual([]);
    expect(begins("db.exec(\"SELECT 'x; BEGIN;' AS s\");")).toEqual([]);
    expect(begins('db.exec("CREATE TRIGGER t AFTER INSERT ON a BEGIN UPDATE b SET n = 1; END;");')).toEqual([]);
    expect(begins('log("BEGIN");')).toEqual([]);
    expect(begins("db.exec(`SELECT ${x} BEGIN`);")).toEqual([]);
  });
});

describe("immediate-transactions verify and report", () => {
  const db = (text: string) => verifyView("server/db.js", text);
  const wrap = 'require("./patch-runtime/immediate-transactions").immediateByDefault(db);';

  it("db.js: passes when the wrap follows the connection and every raw BEGIN is IMMEDIATE", () => {
    const text = `const db = new Database(P); ${wrap}\nconst tx = db.transaction(() => 1);\ndb.exec("BEGIN IMMEDIATE; COMMIT");\n`;
    expect(patch.verify(db(text))).toEqual([]);
    expect(patch.report!(db(text))).toEqual([
      "server/db.js:1 shared connection db: db.transaction(fn) defaults to .immediate (better-sqlite3; the node:sqlite wrapper is IMMEDIATE itself)",
      "server/db.js:3 raw BEGIN IMMEDIATE in db.exec(…): covered (IMMEDIATE)",
    ]);
  });

  it("db.js: a transaction created before the wrap, a missing wrap and a deferred BEGIN are each named", () => {
    expect(patch.verify(db(`const db = new Database(P);\nconst early = db.transaction(() => 1);\n${wrap}\n`)).map(String)).toEqual([
      "line 2: db.transaction(…) is created before immediateByDefault(db)",
    ]);
    expect(patch.verify(db('const db = new Database(P);\ndb.exec("BEGIN; COMMIT");\n')).map(String)).toEqual([
      "expected 1 top-level immediateByDefault(db) after line 1, found 0",
      "line 2: deferred BEGIN in db.exec(…)",
    ]);
    expect(patch.report!(db('const db = new Database(P);\ndb.exec("BEGIN; COMMIT");\n'))[1]).toBe("server/db.js:2 raw BEGIN in db.exec(…): NOT COVERED (deferred)");
  });

  it("compat-sqlite.js: a transaction(fn) that does not hand over to compatTransaction fails verify", () => {
    const compat = (body: string) => verifyView("server/compat-sqlite.js", `class Database {\n  transaction(fn) {\n    ${body}\n  }\n}\n`);
    expect(patch.verify(compat('return require("./patch-runtime/immediate-transactions").compatTransaction(this._db, fn);'))).toEqual([]);
    expect(patch.verify(compat("return (...a) => fn(...a);")).map(String)).toEqual(["transaction(fn) at line 2 does not return compatTransaction(…) (BEGIN IMMEDIATE + savepoints)"]);
    expect(patch.verify(compat('return require("./somewhere-else").compatTransaction(this._db, fn);'))).toHaveLength(1);
  });
});

describe("immediate-transactions over the whole tree", () => {
  const tree = () =>
    memoryTreeView({
      "server/lib/jobs.js": [
        'const Database = require("better-sqlite3");',
        'const jobs = new Database("jobs.db");',
        'const SQL = "BEGIN";',
        "jobs.exec(SQL);",
        "const tx = jobs.transaction(() => 1);",
        "tx.deferred();",
      ].join("\n"),
      "server/lib/read.js": 'const Database = require("better-sqlite3");\nconst r = new Database("x.db", { readonly: true });\n',
      "server/patch-runtime/ours.js": '// [patch:x] ours\ndb.exec("BEGIN");\n',
    });

  it("names each deferred BEGIN (through a const too), each connection without immediateByDefault and each explicit .deferred, file:line", () => {
    expect(patch.verifyTree!(tree())).toEqual([
      "server/lib/jobs.js:3 deferred BEGIN in jobs.exec(…)",
      'server/lib/jobs.js:2 new Database("jobs.db"): its transaction() helper would begin DEFERRED (expected immediateByDefault(new Database("jobs.db")))',
      "server/lib/jobs.js:6 tx.deferred: an explicitly deferred transaction (take the write lock up front: .immediate)",
    ]);
  });

  it("discovers the module it can fix, not the readonly one nor our own runtime file", () => {
    expect(patch.discover!(tree())).toEqual(["server/lib/jobs.js"]);
  });
});
