// Every SQLite connection the monitor opens sets busy_timeout before its first statement:
// 5000 ms, or AGENT_MONITOR_BUSY_TIMEOUT_MS.
import { readFileSync } from "node:fs";
import path from "node:path";
import { type CallExpression, Node, SyntaxKind } from "ts-morph";
import { definePatch, marker, type PatchFile, type TreeView, type VerifyFile } from "./define-patch.ts";
import { At, finding, PatchTargetError } from "./lib/errors.ts";
import { at } from "./lib/find.ts";
import { type ConnectionSite, connectionSites as sqliteSites, MAY_OPEN_CONNECTION, sqlLiteral, sqlText } from "./lib/sqlite.ts";

const ID = "busy-timeout";
export const ENV = "AGENT_MONITOR_BUSY_TIMEOUT_MS";
/** Our runtime module in the generated tree (source: patches/runtime/busy-timeout.js). */
export const RUNTIME_FILE = "server/patch-runtime/busy-timeout.js";
const runtimeSource = readFileSync(new URL("./runtime/busy-timeout.js", import.meta.url), "utf8");

/** The files that open SQLite connections in every release from v1.2.0 on (any other file that opens one is found by discover()). */
export const CONNECTION_FILES = ["server/compat-sqlite.js", "server/db.js", "scripts/clear-data.js"];
/** Connection files only later releases have: server/lib/codex-ingest.js (v2.0.1+, a readonly connection to Codex's state DB). */
export const LATER_CONNECTION_FILES = ["server/lib/codex-ingest.js"];

type AnyFile = PatchFile | VerifyFile;

export interface BusySite extends ConnectionSite {
  /** Why the site needs no busy_timeout, or null. */
  exempt: string | null;
  /** Wrapped as withBusyTimeout(new …). */
  covered: boolean;
}

/** Every SQLite connection the file opens (any driver, any alias; patches/lib/sqlite.ts), with its busy_timeout status. */
export function connectionSites(file: AnyFile): BusySite[] {
  return sqliteSites(file).map((s) => ({
    ...s,
    exempt: s.memory ? "in-memory probe: no file, no other connection to wait for" : null,
    covered: s.wrappers.has("withBusyTimeout"),
  }));
}

/**
 * Statements that set a fixed busy_timeout, overriding ours: `x.pragma("busy_timeout = N")`,
 * `x.exec("…; PRAGMA busy_timeout = N")`, `x.prepare("PRAGMA busy_timeout = N")` (templates and
 * same-file consts included).
 */
export function fixedBusyTimeouts(file: AnyFile): CallExpression[] {
  if (!/busy_timeout/i.test(file.text)) return [];
  return file.ast.getDescendantsOfKind(SyntaxKind.CallExpression).filter((c) => {
    const callee = c.getExpression();
    if (!Node.isPropertyAccessExpression(callee) || !["pragma", "exec", "prepare"].includes(callee.getName())) return false;
    const lit = sqlLiteral(file, c.getArguments()[0]);
    if (!lit) return false;
    const v = sqlText(lit);
    if (callee.getName() === "pragma") return /^\s*(\w+\.)?busy_timeout\s*=/i.test(v);
    if (callee.getName() === "exec" || callee.getName() === "prepare") return /(^|;)\s*PRAGMA\s+(\w+\.)?busy_timeout\s*=/i.test(v);
    return false;
  });
}

/** What keeps busy_timeout from holding in this file: `{ line, message }` per uncovered site or fixed override. */
function fileProblems(file: AnyFile): { line: number; message: string }[] {
  const problems = connectionSites(file)
    .filter((s) => !s.exempt && !s.covered)
    .map((s) => ({ line: s.line, message: `${s.text} opens a connection without busy_timeout (expected withBusyTimeout(${s.text}))` }));
  for (const c of fixedBusyTimeouts(file)) problems.push({ line: c.getStartLineNumber(), message: `${c.getText()} would override ${ENV}` });
  return problems;
}

/** The tree's upstream files that may open a connection or set busy_timeout (text prefilter, then parsed). */
function candidates(tree: TreeView): string[] {
  return tree.jsFiles.filter((f) => !tree.isAdded(f) && (MAY_OPEN_CONNECTION.test(tree.text(f)) || /busy_timeout/i.test(tree.text(f))));
}

function requirePath(fromFile: string): string {
  const rel = path.posix.relative(path.posix.dirname(fromFile), RUNTIME_FILE).replace(/\.js$/, "");
  return rel.startsWith(".") ? rel : `./${rel}`;
}

const OPEN_SHAPE = "(or more) SQLite connection site new Database(…) / new DatabaseSync(…)";

export default definePatch({
  id: ID,
  description: `Every SQLite connection sets busy_timeout when it opens (5000 ms, or ${ENV}), before its first statement.`,
  why:
    "node:sqlite connections (the compat wrapper, used whenever better-sqlite3 cannot load) default to busy_timeout 0, so any " +
    "concurrent writer (a second server, a hook, an import or clear-data script) fails at once with SQLITE_BUSY; and upstream " +
    "sets 5000 on the shared connection only after `journal_mode = WAL`, which can itself hit SQLITE_BUSY.",
  removeWhen: "Upstream sets busy_timeout on every connection as it opens (and makes it configurable).",
  targets: CONNECTION_FILES,
  optionalTargets: LATER_CONNECTION_FILES,
  adds: { [RUNTIME_FILE]: runtimeSource },
  apply(file) {
    const sites = connectionSites(file);
    if (sites.length === 0 && CONNECTION_FILES.includes(file.path)) {
      throw new PatchTargetError(ID, file.path, OPEN_SHAPE, 0, "This file opened a connection in every release so far; moved to another file upstream?");
    }
    const wrap = `${marker(ID)} require(${JSON.stringify(requirePath(file.path))}).withBusyTimeout(`;
    for (const s of sites) {
      if (s.exempt || s.covered) continue;
      file.edit.appendLeft(s.node.getStart(), wrap);
      file.edit.appendRight(s.node.getEnd(), ")");
    }
    for (const call of fixedBusyTimeouts(file)) {
      const statement = call.getParent();
      if (!Node.isExpressionStatement(statement)) {
        throw new PatchTargetError(ID, file.path, `statement ${call.getText()}; on its own`, 0, finding`${at(call)}: it is part of a larger expression, remove the fixed busy_timeout by hand.`);
      }
      file.edit.overwrite(statement.getStart(), statement.getEnd(), `${marker(ID)} /* ${call.getText().replace(/\*\//g, "* /")}: busy_timeout is set where the connection opens */`);
    }
  },
  verify(file) {
    // A declared file must still open a connection; a later-release or discovered file may not (v2.0.0's codex-ingest.js).
    if (CONNECTION_FILES.includes(file.path) && connectionSites(file).length === 0) return ["no SQLite connection site new Database(…) / new DatabaseSync(…) found"];
    return fileProblems(file).map((p) => finding`${new At(p.line)}: ${p.message}`);
  },
  // Any other module that opens a connection (or pins busy_timeout) is patched the same way.
  discover(tree) {
    return candidates(tree).filter((f) => fileProblems(tree.file(f)).length > 0);
  },
  verifyTree(tree) {
    return candidates(tree).flatMap((f) => fileProblems(tree.file(f)).map((p) => `${f}:${p.line} ${p.message}`));
  },
  reportTree(tree) {
    const files = candidates(tree);
    const sites = files.flatMap((f) => connectionSites(tree.file(f)).map((s) => ({ f, s })));
    const fixed = files.reduce((n, f) => n + fixedBusyTimeouts(tree.file(f)).length, 0);
    return [
      `${tree.jsFiles.length} JS files scanned, ${files.length} mention a SQLite driver or busy_timeout; ${sites.length} connection sites, ${fixed} fixed busy_timeout overrides`,
      ...sites.map(({ f, s }) => `${f}:${s.line} ${s.text}: ${s.exempt ? `exempt (${s.exempt})` : s.covered ? "busy_timeout set at open" : "MISSING busy_timeout"}`),
    ];
  },
});
