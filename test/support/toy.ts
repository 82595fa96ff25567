// A tiny upstream-shaped tree and a toy patch, for testing the pipeline without real patches.
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { SyntaxKind } from "ts-morph";
import { definePatch, marker } from "../../patches/define-patch.ts";
import { callAnchor, findAll, findOne } from "../../patches/lib/find.ts";

export const TOY_DB = `const Database = require("./compat-sqlite");
const db = new Database(process.env.DASHBOARD_DB_PATH);
db.pragma("journal_mode = WAL");
module.exports = { db };
`;

/** Writes a minimal tree with upstream's top-level layout; returns its path. */
export function makeToyUpstream(files: Record<string, string> = {}): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), "toy-upstream-"));
  const all: Record<string, string> = {
    "server/db.js": TOY_DB,
    "server/index.js": 'require("./db");\n',
    "scripts/hook-handler.js": "process.exit(0);\n",
    "package.json": '{ "name": "toy", "type": "commonjs" }\n',
    "package-lock.json": '{ "lockfileVersion": 3 }\n',
    LICENSE: "MIT\n",
    "README.md": "not materialized\n",
    ...files,
  };
  for (const [rel, text] of Object.entries(all)) {
    mkdirSync(path.dirname(path.join(dir, rel)), { recursive: true });
    writeFileSync(path.join(dir, rel), text);
  }
  return dir;
}

/** Turns a directory into a git repo with one commit and a tag; returns the commit. */
export function gitCommitAll(dir: string, tag?: string): string {
  const git = (...args: string[]) => execFileSync("git", ["-C", dir, ...args], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] }).trim();
  git("init", "-q", "-b", "main");
  git("-c", "user.email=t@example.com", "-c", "user.name=t", "add", "-A");
  git("-c", "user.email=t@example.com", "-c", "user.name=t", "commit", "-q", "-m", "toy");
  if (tag) git("tag", tag);
  return git("rev-parse", "HEAD");
}

/** Adds `db.pragma("busy_timeout = 1")` before the WAL pragma: a stand-in for a real patch. */
export const toyPatch = definePatch({
  id: "toy-busy-timeout",
  description: "set busy_timeout before journal_mode",
  why: "test the engine",
  removeWhen: "never (test only)",
  targets: ["server/db.js"],
  adds: { "server/lib/toy-added.js": "module.exports = 1;\n" },
  apply(file) {
    const wal = findOne(this.id, file, callAnchor("db.pragma", "journal_mode = WAL"));
    const stmt = wal.getFirstAncestorByKindOrThrow(SyntaxKind.ExpressionStatement);
    file.edit.prependLeft(stmt.getStart(), `db.pragma("busy_timeout = 1"); ${marker(this.id)}\n`);
  },
  verify(file) {
    return findAll(file, callAnchor("db.pragma", "busy_timeout = 1")).length === 1 ? [] : ["busy_timeout pragma missing"];
  },
});
