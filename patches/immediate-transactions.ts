// Transactions on the monitor's database take the write lock up front (BEGIN IMMEDIATE) and nest
// with savepoints, for both drivers: the node:sqlite compat wrapper and better-sqlite3.
import { readFileSync } from "node:fs";
import path from "node:path";
import { type CallExpression, Node, type PropertyAccessExpression, type SourceFile, SyntaxKind, type VariableDeclaration } from "ts-morph";
import { indentAt } from "./lib/ast.ts";
import { definePatch, marker, type PatchFile, type VerifyFile } from "./define-patch.ts";
import { PatchTargetError } from "./lib/errors.ts";
import { findAll, findOne, frame, methodAnchor } from "./lib/find.ts";

const ID = "immediate-transactions";
const COMPAT = "server/compat-sqlite.js";
const DB = "server/db.js";
/** Our runtime module in the generated tree (source: patches/runtime/immediate-transactions.js). */
export const RUNTIME_FILE = "server/patch-runtime/immediate-transactions.js";
const runtimeSource = readFileSync(new URL("./runtime/immediate-transactions.js", import.meta.url), "utf8");

type AnyFile = PatchFile | VerifyFile;

// ── Raw BEGIN statements in SQL strings ─────────────────────────────────────

export interface BeginStatement {
  /** The call running the SQL (`db.exec(…)` / `db.prepare(…)`). */
  call: CallExpression;
  /** Offset of `BEGIN` in the file. */
  at: number;
  /** 1-based line of `BEGIN` in the file. */
  line: number;
  /** The mode word and its offsets, when the statement names one. */
  mode: { word: "DEFERRED" | "IMMEDIATE" | "EXCLUSIVE"; start: number; end: number } | null;
}

/** A BEGIN that starts a deferred transaction (no mode, or DEFERRED): the read-to-write upgrade hazard. */
export function isDeferred(b: BeginStatement): boolean {
  return b.mode === null || b.mode.word === "DEFERRED";
}

/**
 * BEGIN statements inside string literals passed to `.exec(…)` / `.prepare(…)` calls, found with a
 * small SQL tokenizer (comments, quoted strings and `;` boundaries respected, so `-- BEGIN` or
 * `'BEGIN'` do not count). Template literals are scanned part by part around their `${…}`.
 */
export function beginStatements(file: AnyFile): BeginStatement[] {
  const out: BeginStatement[] = [];
  const sf: SourceFile = file.ast;
  for (const call of sf.getDescendantsOfKind(SyntaxKind.CallExpression)) {
    const callee = call.getExpression();
    if (!Node.isPropertyAccessExpression(callee) || !["exec", "prepare"].includes(callee.getName())) continue;
    const arg = call.getArguments()[0];
    if (!arg) continue;
    const parts: { node: Node; open: number; close: number; startsStatement: boolean }[] = [];
    if (Node.isStringLiteral(arg) || Node.isNoSubstitutionTemplateLiteral(arg)) {
      parts.push({ node: arg, open: 1, close: 1, startsStatement: true });
    } else if (Node.isTemplateExpression(arg)) {
      parts.push({ node: arg.getHead(), open: 1, close: 2, startsStatement: true });
      for (const span of arg.getTemplateSpans()) {
        const lit = span.getLiteral();
        parts.push({ node: lit, open: 1, close: Node.isTemplateTail(lit) ? 1 : 2, startsStatement: false });
      }
    } else {
      continue;
    }
    for (const part of parts) {
      const text = part.node.getText();
      const raw = text.slice(part.open, text.length - part.close);
      const base = part.node.getStart() + part.open;
      for (const b of scanBegins(raw, part.startsStatement)) {
        out.push({
          call,
          at: base + b.at,
          line: sf.getLineAndColumnAtPos(base + b.at).line,
          mode: b.mode ? { word: b.mode.word, start: base + b.mode.start, end: base + b.mode.end } : null,
        });
      }
    }
  }
  return out;
}

type Mode = "DEFERRED" | "IMMEDIATE" | "EXCLUSIVE";

/** BEGIN keywords that start a statement in raw literal text (JS escapes like `\n` count as whitespace). */
function scanBegins(raw: string, startsStatement: boolean): { at: number; mode: { word: Mode; start: number; end: number } | null }[] {
  const found: { at: number; mode: { word: Mode; start: number; end: number } | null }[] = [];
  let i = 0;
  let atStart = startsStatement;
  const skipTrivia = (): void => {
    for (;;) {
      if (i < raw.length && /\s/.test(raw[i])) i++;
      else if (raw[i] === "\\" && /[nrtv]/.test(raw[i + 1] ?? "")) i += 2;
      else if (raw.startsWith("--", i)) {
        while (i < raw.length && raw[i] !== "\n" && !raw.startsWith("\\n", i)) i++;
      } else if (raw.startsWith("/*", i)) {
        const end = raw.indexOf("*/", i + 2);
        i = end < 0 ? raw.length : end + 2;
      } else return;
    }
  };
  const readWord = (): { word: string; start: number; end: number } => {
    const start = i;
    while (i < raw.length && /[A-Za-z0-9_]/.test(raw[i])) i++;
    return { word: raw.slice(start, i), start, end: i };
  };
  while (i < raw.length) {
    skipTrivia();
    if (i >= raw.length) break;
    const c = raw[i];
    if (c === ";") {
      atStart = true;
      i++;
    } else if (c === "'" || c === '"' || c === "`" || c === "[") {
      const close = c === "[" ? "]" : c;
      i++;
      while (i < raw.length && raw[i] !== close) i++;
      i++;
      atStart = false;
    } else if (/[A-Za-z_]/.test(c)) {
      const w = readWord();
      if (atStart && w.word.toUpperCase() === "BEGIN") {
        skipTrivia();
        const next = /[A-Za-z_]/.test(raw[i] ?? "") ? readWord() : null;
        const upper = next?.word.toUpperCase();
        const mode = upper === "DEFERRED" || upper === "IMMEDIATE" || upper === "EXCLUSIVE" ? { word: upper as Mode, start: next!.start, end: next!.end } : null;
        found.push({ at: w.start, mode });
      }
      atStart = false;
    } else {
      i += c === "\\" ? 2 : 1;
      atStart = false;
    }
  }
  return found;
}

// ── compat-sqlite.js: the transaction(fn) method ────────────────────────────

const plainBegin = /^\s*BEGIN(\s+DEFERRED)?(\s+TRANSACTION)?\s*;?\s*$/i;

/** `<db>.exec("BEGIN")` (plain or DEFERRED, any quotes) inside `within`. */
function beginExecAnchor(within: Node) {
  return {
    shape: 'call <db>.exec("BEGIN") inside transaction(fn)',
    kind: SyntaxKind.CallExpression,
    within,
    match: (n: Node): n is CallExpression => {
      if (!Node.isCallExpression(n)) return false;
      const callee = n.getExpression();
      if (!Node.isPropertyAccessExpression(callee) || callee.getName() !== "exec") return false;
      const arg = n.getArguments()[0];
      return !!arg && (Node.isStringLiteral(arg) || Node.isNoSubstitutionTemplateLiteral(arg)) && plainBegin.test(arg.getLiteralValue());
    },
  };
}

/** Rewrite each deferred raw BEGIN (that `keep` selects) to BEGIN IMMEDIATE, with an SQL comment marker. */
function makeImmediate(file: PatchFile, keep: (b: BeginStatement) => boolean = () => true): void {
  for (const b of beginStatements(file).filter((x) => isDeferred(x) && keep(x))) {
    if (b.mode) file.edit.overwrite(b.mode.start, b.mode.end, `IMMEDIATE ${marker(ID)}`);
    else file.edit.appendLeft(b.at + "BEGIN".length, ` IMMEDIATE ${marker(ID)}`);
  }
}

function requirePath(fromFile: string): string {
  const rel = path.posix.relative(path.posix.dirname(fromFile), RUNTIME_FILE).replace(/\.js$/, "");
  return rel.startsWith(".") ? rel : `./${rel}`;
}

/** The indentation of the line `pos` is on. */
function applyCompat(file: PatchFile): void {
  const method = findOne(ID, file, methodAnchor("transaction"));
  const params = method.getParameters();
  if (params.length !== 1 || !Node.isIdentifier(params[0].getNameNode())) {
    throw new PatchTargetError(ID, file.path, "method transaction(fn) with one parameter", 0, `Found ${frame(method)}. Signature changed upstream?`);
  }
  const begin = findOne(ID, file, beginExecAnchor(method));
  // The connection the wrapper runs on: `db` in `db.exec("BEGIN")`, resolved through a local
  // `const db = this._db;` when there is one (that is what upstream evaluates per call).
  const receiver = (begin.getExpression() as PropertyAccessExpression).getExpression();
  let connection = receiver.getText();
  if (Node.isIdentifier(receiver)) {
    const local = method.getDescendantsOfKind(SyntaxKind.VariableDeclaration).find((d) => d.getName() === receiver.getText());
    const init = local?.getInitializer();
    if (local && !init) throw new PatchTargetError(ID, file.path, `const ${receiver.getText()} = <connection> in transaction(fn)`, 0, `Found ${frame(local)}.`);
    if (init) connection = init.getText();
  }
  const body = method.getBody()!;
  makeImmediate(file, (b) => b.at < body.getStart() || b.at >= body.getEnd()); // the body is replaced below
  const indent = indentAt(file.text, method.getStart());
  const inner = indent + (indent.includes("\t") ? "\t" : "  ");
  file.edit.overwrite(
    body.getStart(),
    body.getEnd(),
    `{\n${inner}${marker(ID)} // BEGIN IMMEDIATE; nested calls use savepoints; .default/.deferred/.immediate/.exclusive\n` +
      `${inner}return require(${JSON.stringify(requirePath(file.path))}).compatTransaction(${connection}, ${params[0].getName()});\n${indent}}`,
  );
}

/** `require("…/patch-runtime/immediate-transactions").<name>(…)` or a bare `<name>(…)`. */
function isRuntimeCall(n: Node, name: string): n is CallExpression {
  if (!Node.isCallExpression(n)) return false;
  const callee = n.getExpression();
  if (Node.isIdentifier(callee)) return callee.getText() === name;
  if (!Node.isPropertyAccessExpression(callee) || callee.getName() !== name) return false;
  const obj = callee.getExpression();
  if (!Node.isCallExpression(obj) || obj.getExpression().getText() !== "require") return false;
  const arg = obj.getArguments()[0];
  return !!arg && Node.isStringLiteral(arg) && /(^|\/)patch-runtime\/immediate-transactions(\.js)?$/.test(arg.getLiteralValue());
}

function verifyCompat(file: VerifyFile): string[] {
  const methods = findAll(file, methodAnchor("transaction"));
  if (methods.length !== 1) return [`expected 1 method transaction(fn), found ${methods.length}`];
  const delegates = methods[0]
    .getDescendantsOfKind(SyntaxKind.ReturnStatement)
    .some((r) => {
      const e = r.getExpression();
      return !!e && isRuntimeCall(e, "compatTransaction");
    });
  const problems: string[] = [];
  if (!delegates) problems.push(`transaction(fn) at line ${methods[0].getStartLineNumber()} does not return compatTransaction(…) (BEGIN IMMEDIATE + savepoints)`);
  for (const b of beginStatements(file).filter(isDeferred)) problems.push(`line ${b.line}: deferred BEGIN in ${b.call.getExpression().getText()}(…)`);
  return problems;
}

// ── db.js: the shared connection and raw BEGINs ─────────────────────────────

/** Top-level `const db = …new Database(…)…` (the initializer may wrap the `new`). */
function sharedConnectionAnchor() {
  return {
    shape: "top-level const db = new Database(…)",
    kind: SyntaxKind.VariableDeclaration,
    match: (n: Node): n is VariableDeclaration => {
      if (!Node.isVariableDeclaration(n) || n.getName() !== "db") return false;
      if (!Node.isSourceFile(n.getVariableStatement()?.getParent())) return false;
      const init = n.getInitializer();
      if (!init) return false;
      const isNew = (x: Node) => Node.isNewExpression(x) && x.getExpression().getText() === "Database";
      return isNew(init) || init.getDescendants().some(isNew);
    },
  };
}

function applyDb(file: PatchFile): void {
  const decl = findOne(ID, file, sharedConnectionAnchor());
  const statement = decl.getVariableStatement()!;
  // Same line, so the rest of the file keeps upstream's line numbers; `;` first when upstream relies on ASI.
  const semi = statement.getText().trimEnd().endsWith(";") ? "" : ";";
  file.edit.appendLeft(statement.getEnd(), `${semi} ${marker(ID)} require(${JSON.stringify(requirePath(file.path))}).immediateByDefault(${decl.getName()});`);
  makeImmediate(file);
}

function verifyDb(file: VerifyFile): string[] {
  const problems: string[] = [];
  const decls = findAll(file, sharedConnectionAnchor());
  if (decls.length !== 1) return [`expected 1 top-level const db = new Database(…), found ${decls.length}`];
  const name = decls[0].getName();
  const wraps = file.ast
    .getStatements()
    .filter((s) => Node.isExpressionStatement(s))
    .map((s) => s.getExpression())
    .filter((e): e is CallExpression => isRuntimeCall(e, "immediateByDefault") && e.getArguments()[0]?.getText() === name);
  if (wraps.length !== 1) {
    problems.push(`expected 1 top-level immediateByDefault(${name}) after line ${decls[0].getStartLineNumber()}, found ${wraps.length}`);
  } else {
    const at = wraps[0].getStart();
    if (at < decls[0].getEnd()) problems.push(`immediateByDefault(${name}) runs before the connection is opened`);
    const early = file.ast
      .getDescendantsOfKind(SyntaxKind.CallExpression)
      .filter((c) => {
        const callee = c.getExpression();
        return Node.isPropertyAccessExpression(callee) && callee.getName() === "transaction" && callee.getExpression().getText() === name && c.getStart() < at;
      });
    for (const c of early) problems.push(`line ${c.getStartLineNumber()}: ${c.getExpression().getText()}(…) is created before immediateByDefault(${name})`);
  }
  for (const b of beginStatements(file).filter(isDeferred)) problems.push(`line ${b.line}: deferred BEGIN in ${b.call.getExpression().getText()}(…)`);
  return problems;
}

function reportCompat(file: VerifyFile): string[] {
  const m = findAll(file, methodAnchor("transaction"))[0];
  return m ? [`${file.path}:${m.getStartLineNumber()} transaction(fn): BEGIN IMMEDIATE by default; nested calls SAVEPOINT/RELEASE/ROLLBACK TO; .default/.deferred/.immediate/.exclusive`] : [];
}

function reportDb(file: VerifyFile): string[] {
  const lines: string[] = [];
  const d = findAll(file, sharedConnectionAnchor())[0];
  if (d) lines.push(`${file.path}:${d.getStartLineNumber()} shared connection ${d.getName()}: ${d.getName()}.transaction(fn) defaults to .immediate (better-sqlite3; the node:sqlite wrapper is IMMEDIATE itself)`);
  const begins = beginStatements(file);
  for (const b of begins) {
    const what = `raw BEGIN${b.mode ? ` ${b.mode.word}` : ""} in ${b.call.getExpression().getText()}(…)`;
    const status = isDeferred(b) ? "NOT COVERED (deferred)" : b.mode!.word === "IMMEDIATE" ? "covered (IMMEDIATE)" : "left as is (EXCLUSIVE also takes the write lock up front)";
    lines.push(`${file.path}:${b.line} ${what}: ${status}`);
  }
  if (begins.length === 0) lines.push(`${file.path}: no raw BEGIN statements`);
  return lines;
}

export default definePatch({
  id: ID,
  description: "Transactions begin IMMEDIATE (write lock up front) and nest with savepoints, on node:sqlite and better-sqlite3.",
  why:
    "A deferred BEGIN reads first and upgrades to a writer at its first write; when another connection wrote in between, " +
    "that upgrade fails with SQLITE_BUSY at once (busy_timeout cannot resolve it), so concurrent hook writers lose events. " +
    "The node:sqlite wrapper also could not nest transactions (BEGIN inside BEGIN throws).",
  removeWhen: "Upstream's compat-sqlite transaction() and db.transaction() begin IMMEDIATE and nest, and its raw BEGIN statements are IMMEDIATE.",
  targets: [COMPAT, DB],
  adds: { [RUNTIME_FILE]: runtimeSource },
  apply(file) {
    if (file.path.endsWith("compat-sqlite.js")) applyCompat(file);
    else applyDb(file);
  },
  verify(file) {
    return file.path.endsWith("compat-sqlite.js") ? verifyCompat(file) : verifyDb(file);
  },
  report(file) {
    return file.path.endsWith("compat-sqlite.js") ? reportCompat(file) : reportDb(file);
  },
});
