// Every SQLite connection the monitor opens sets busy_timeout before its first statement:
// 5000 ms, or AGENT_MONITOR_BUSY_TIMEOUT_MS.
import { readFileSync } from "node:fs";
import path from "node:path";
import { type CallExpression, Node, type NewExpression, SyntaxKind } from "ts-morph";
import { definePatch, marker, type PatchFile, type VerifyFile } from "./define-patch.ts";
import { PatchTargetError } from "./lib/errors.ts";
import { stringValue } from "./lib/find.ts";

const ID = "busy-timeout";
export const ENV = "AGENT_MONITOR_BUSY_TIMEOUT_MS";
/** Our runtime module in the generated tree (source: patches/runtime/busy-timeout.js). */
export const RUNTIME_FILE = "server/patch-runtime/busy-timeout.js";
const runtimeSource = readFileSync(new URL("./runtime/busy-timeout.js", import.meta.url), "utf8");

/** The files that open SQLite connections in every release from v1.2.0 on. */
export const CONNECTION_FILES = ["server/compat-sqlite.js", "server/db.js", "scripts/clear-data.js"];
/** Connection files only later releases have: server/lib/codex-ingest.js (v2.0.1+, a readonly connection to Codex's state DB). */
export const LATER_CONNECTION_FILES = ["server/lib/codex-ingest.js"];

type AnyFile = PatchFile | VerifyFile;

export interface ConnectionSite {
  node: NewExpression;
  /** 1-based line in the file. */
  line: number;
  /** `new Database(DB_PATH)` as written (first line). */
  text: string;
  /** Why the site needs no busy_timeout, or null. */
  exempt: string | null;
  /** Wrapped as withBusyTimeout(new …). */
  covered: boolean;
}

const SQLITE_MODULE = /^(better-sqlite3|node:sqlite)$|(^|\/)compat-sqlite(\.js)?$/;

/** Names a connection constructor can have here: Database, DatabaseSync, and anything bound to require(<sqlite module>). */
function constructorNames(file: AnyFile): Set<string> {
  const names = new Set(["Database", "DatabaseSync"]);
  const isSqliteRequire = (n: Node | undefined): boolean =>
    !!n && Node.isCallExpression(n) && n.getExpression().getText() === "require" && SQLITE_MODULE.test(stringValue(n.getArguments()[0]) ?? "");
  for (const d of file.ast.getDescendantsOfKind(SyntaxKind.VariableDeclaration)) {
    if (isSqliteRequire(d.getInitializer()) && Node.isIdentifier(d.getNameNode())) names.add(d.getName());
  }
  for (const b of file.ast.getDescendantsOfKind(SyntaxKind.BinaryExpression)) {
    if (b.getOperatorToken().getKind() === SyntaxKind.EqualsToken && isSqliteRequire(b.getRight()) && Node.isIdentifier(b.getLeft())) names.add(b.getLeft().getText());
  }
  return names;
}

/** `require("…/patch-runtime/busy-timeout").withBusyTimeout(…)` or a bare `withBusyTimeout(…)`. */
function isWithBusyTimeout(n: Node | undefined): n is CallExpression {
  if (!n || !Node.isCallExpression(n)) return false;
  const callee = n.getExpression();
  if (Node.isIdentifier(callee)) return callee.getText() === "withBusyTimeout";
  if (!Node.isPropertyAccessExpression(callee) || callee.getName() !== "withBusyTimeout") return false;
  const obj = callee.getExpression();
  return Node.isCallExpression(obj) && obj.getExpression().getText() === "require" && /(^|\/)patch-runtime\/busy-timeout(\.js)?$/.test(stringValue(obj.getArguments()[0]) ?? "");
}

/** Every `new <sqlite constructor>(…)` in the file. */
export function connectionSites(file: AnyFile): ConnectionSite[] {
  const names = constructorNames(file);
  return file.ast
    .getDescendantsOfKind(SyntaxKind.NewExpression)
    .filter((n) => {
      const callee = n.getExpression();
      const last = Node.isPropertyAccessExpression(callee) ? callee.getName() : callee.getText();
      return names.has(last);
    })
    .map((node) => {
      const first = stringValue(node.getArguments()[0]);
      const parent = node.getParent();
      return {
        node,
        line: node.getStartLineNumber(),
        text: node.getText().split("\n")[0],
        exempt: first === ":memory:" ? "in-memory probe: no file, no other connection to wait for" : null,
        covered: isWithBusyTimeout(parent) && parent.getArguments()[0] === node,
      };
    });
}

/** `x.pragma("busy_timeout = N")` / `x.exec("PRAGMA busy_timeout = N")`: a fixed value that would override ours. */
export function fixedBusyTimeouts(file: AnyFile): CallExpression[] {
  return file.ast.getDescendantsOfKind(SyntaxKind.CallExpression).filter((c) => {
    const callee = c.getExpression();
    if (!Node.isPropertyAccessExpression(callee)) return false;
    const v = stringValue(c.getArguments()[0]);
    if (v === null) return false;
    if (callee.getName() === "pragma") return /^\s*busy_timeout\s*=/i.test(v);
    if (callee.getName() === "exec") return /(^|;)\s*PRAGMA\s+(\w+\.)?busy_timeout\s*=/i.test(v);
    return false;
  });
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
    if (sites.length === 0) {
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
        throw new PatchTargetError(ID, file.path, `statement ${call.getText()}; on its own`, 0, `line ${call.getStartLineNumber()}: it is part of a larger expression, remove the fixed busy_timeout by hand.`);
      }
      file.edit.overwrite(statement.getStart(), statement.getEnd(), `${marker(ID)} /* ${call.getText().replace(/\*\//g, "* /")}: busy_timeout is set where the connection opens */`);
    }
  },
  verify(file) {
    const sites = connectionSites(file);
    // A later-release file may not open a connection yet (v2.0.0's codex-ingest.js): nothing to cover.
    if (sites.length === 0) return LATER_CONNECTION_FILES.includes(file.path) ? [] : ["no SQLite connection site new Database(…) / new DatabaseSync(…) found"];
    const problems = sites
      .filter((s) => !s.exempt && !s.covered)
      .map((s) => `line ${s.line}: ${s.text} opens a connection without busy_timeout (expected withBusyTimeout(${s.text}))`);
    for (const c of fixedBusyTimeouts(file)) problems.push(`line ${c.getStartLineNumber()}: ${c.getText()} would override ${ENV}`);
    return problems;
  },
  report(file) {
    return connectionSites(file).map(
      (s) => `${file.path}:${s.line} ${s.text}: ${s.exempt ? `exempt (${s.exempt})` : s.covered ? "busy_timeout set at open" : "MISSING busy_timeout"}`,
    );
  },
});
