// Transactions on the monitor's database take the write lock up front (BEGIN IMMEDIATE) and nest
// with savepoints, for both drivers: the node:sqlite compat wrapper and better-sqlite3.
import { readFileSync } from "node:fs";
import path from "node:path";
import { type CallExpression, Node, type PropertyAccessExpression, SyntaxKind, type VariableDeclaration } from "ts-morph";
import { indentAt } from "./lib/ast.ts";
import { definePatch, marker, type PatchFile, type TreeView, type VerifyFile } from "./define-patch.ts";
import { At, type Finding, finding, PatchTargetError } from "./lib/errors.ts";
import { at, findAll, findOne, frame, methodAnchor } from "./lib/find.ts";
import { type BeginStatement, beginStatements, type ConnectionSite, connectionSites, isDeferred, MAY_OPEN_CONNECTION } from "./lib/sqlite.ts";

const ID = "immediate-transactions";
const COMPAT = "server/compat-sqlite.js";
const DB = "server/db.js";
/** Our runtime module in the generated tree (source: patches/runtime/immediate-transactions.js). */
export const RUNTIME_FILE = "server/patch-runtime/immediate-transactions.js";
const runtimeSource = readFileSync(new URL("./runtime/immediate-transactions.js", import.meta.url), "utf8");

type AnyFile = PatchFile | VerifyFile;

// ── compat-sqlite.js: the transaction(fn) method ────────────────────────────

const plainBegin = /^\s*BEGIN(\s+(DEFERRED|IMMEDIATE|EXCLUSIVE))?(\s+TRANSACTION)?\s*;?\s*$/i;

/** `<db>.exec("BEGIN")` (plain, DEFERRED, or already IMMEDIATE/EXCLUSIVE; any quotes) inside `within`. */
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
    throw new PatchTargetError(ID, file.path, "method transaction(fn) with one parameter", 0, finding`Found ${frame(method)}. Signature changed upstream?`);
  }
  const begin = findOne(ID, file, beginExecAnchor(method));
  // The connection the wrapper runs on: `db` in `db.exec("BEGIN")`, resolved through a local
  // `const db = this._db;` when there is one (that is what upstream evaluates per call).
  const receiver = (begin.getExpression() as PropertyAccessExpression).getExpression();
  let connection = receiver.getText();
  if (Node.isIdentifier(receiver)) {
    const local = method.getDescendantsOfKind(SyntaxKind.VariableDeclaration).find((d) => d.getName() === receiver.getText());
    const init = local?.getInitializer();
    if (local && !init) throw new PatchTargetError(ID, file.path, `const ${receiver.getText()} = <connection> in transaction(fn)`, 0, finding`Found ${frame(local)}.`);
    if (init) connection = init.getText();
  }
  const body = method.getBody()!;
  const mode = /\b(IMMEDIATE|EXCLUSIVE)\b/i.exec((begin.getArguments()[0] as import("ts-morph").StringLiteral).getLiteralValue());
  // Upstream may take the write lock up front itself; the savepoint nesting is still ours to add.
  if (mode) file.satisfied(`compat transaction() begins ${mode[1].toUpperCase()}`);
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

function verifyCompat(file: VerifyFile): Finding[] {
  const methods = findAll(file, methodAnchor("transaction"));
  if (methods.length !== 1) return [`expected 1 method transaction(fn), found ${methods.length}`];
  const delegates = methods[0]
    .getDescendantsOfKind(SyntaxKind.ReturnStatement)
    .some((r) => {
      const e = r.getExpression();
      return !!e && isRuntimeCall(e, "compatTransaction");
    });
  const problems: Finding[] = [];
  if (!delegates) problems.push(finding`transaction(fn) at ${at(methods[0])} does not return compatTransaction(…) (BEGIN IMMEDIATE + savepoints)`);
  for (const b of beginStatements(file).filter(isDeferred)) problems.push(finding`${new At(b.line)}: deferred BEGIN in ${b.call.getExpression().getText()}(…)`);
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
  wrapConnections(file, (s) => s.node.getStart() >= decl.getStart() && s.node.getEnd() <= decl.getEnd()); // the shared one: the statement above
  makeImmediate(file);
}

function verifyDb(file: VerifyFile): Finding[] {
  const problems: Finding[] = [];
  const decls = findAll(file, sharedConnectionAnchor());
  if (decls.length !== 1) return [`expected 1 top-level const db = new Database(…), found ${decls.length}`];
  const name = decls[0].getName();
  const wraps = file.ast
    .getStatements()
    .filter((s) => Node.isExpressionStatement(s))
    .map((s) => s.getExpression())
    .filter((e): e is CallExpression => isRuntimeCall(e, "immediateByDefault") && e.getArguments()[0]?.getText() === name);
  if (wraps.length !== 1) {
    problems.push(finding`expected 1 top-level immediateByDefault(${name}) after ${at(decls[0])}, found ${wraps.length}`);
  } else {
    const wrapStart = wraps[0].getStart();
    if (wrapStart < decls[0].getEnd()) problems.push(`immediateByDefault(${name}) runs before the connection is opened`);
    const early = file.ast
      .getDescendantsOfKind(SyntaxKind.CallExpression)
      .filter((c) => {
        const callee = c.getExpression();
        return Node.isPropertyAccessExpression(callee) && callee.getName() === "transaction" && callee.getExpression().getText() === name && c.getStart() < wrapStart;
      });
    for (const c of early) problems.push(finding`${at(c)}: ${c.getExpression().getText()}(…) is created before immediateByDefault(${name})`);
  }
  const shared = decls[0];
  for (const b of beginStatements(file).filter(isDeferred)) problems.push(finding`${new At(b.line)}: deferred BEGIN in ${b.call.getExpression().getText()}(…)`);
  for (const s of uncoveredConnections(file).filter((x) => x.node.getStart() < shared.getStart() || x.node.getEnd() > shared.getEnd())) {
    problems.push(finding`${new At(s.line)}: ${s.text}: its transaction() helper would begin DEFERRED (expected immediateByDefault(${s.text}))`);
  }
  return problems;
}

// ── every connection of the tree: its transaction() helper begins IMMEDIATE ──

/** Why a connection needs no immediateByDefault, or null. */
function txExempt(s: ConnectionSite): string | null {
  if (s.driver === "node:sqlite") return "raw node:sqlite DatabaseSync: no transaction() helper, its BEGINs are checked as SQL";
  if (s.memory) return "in-memory: no other connection to race";
  if (s.readonly) return "readonly: never takes the write lock";
  return null;
}

/** db.js's way: a top-level `const db = <site>` (maybe wrapped by our runtime) followed by a top-level `immediateByDefault(db);`. */
function coveredByStatement(file: AnyFile, s: ConnectionSite): boolean {
  let cur: Node = s.node;
  while (cur.getParent() && (Node.isParenthesizedExpression(cur.getParent()!) || (Node.isCallExpression(cur.getParent()!) && cur.getParent()!.getText().includes("patch-runtime/")))) cur = cur.getParent()!;
  const decl = cur.getParent();
  if (!decl || !Node.isVariableDeclaration(decl) || decl.getInitializer() !== cur || !Node.isSourceFile(decl.getVariableStatement()?.getParent())) return false;
  return file.ast.getStatements().some((st) => {
    if (!Node.isExpressionStatement(st) || st.getStart() < decl.getEnd()) return false;
    const e = st.getExpression();
    return isRuntimeCall(e, "immediateByDefault") && e.getArguments()[0]?.getText() === decl.getName();
  });
}

/** Connections whose db.transaction(fn) would still begin DEFERRED (better-sqlite3's default). */
function uncoveredConnections(file: AnyFile): ConnectionSite[] {
  return connectionSites(file).filter((s) => !txExempt(s) && !s.wrappers.has("immediateByDefault") && !coveredByStatement(file, s));
}

/** `….transaction(fn).deferred`, or `tx.deferred` for a `const tx = ….transaction(fn)`: a transaction asked to be deferred explicitly. */
function explicitDeferred(file: AnyFile): Node[] {
  if (!/\.deferred\b/.test(file.text)) return [];
  const isTransactionCall = (n: Node | undefined) => !!n && Node.isCallExpression(n) && Node.isPropertyAccessExpression(n.getExpression()) && (n.getExpression() as PropertyAccessExpression).getName() === "transaction";
  const txNames = new Set(file.ast.getDescendantsOfKind(SyntaxKind.VariableDeclaration).filter((d) => isTransactionCall(d.getInitializer())).map((d) => d.getName()));
  return file.ast.getDescendantsOfKind(SyntaxKind.PropertyAccessExpression).filter((p) => {
    if (p.getName() !== "deferred") return false;
    const obj = p.getExpression();
    return isTransactionCall(obj) || (Node.isIdentifier(obj) && txNames.has(obj.getText()));
  });
}

/** What apply can fix in any file: deferred raw BEGINs and connections without immediateByDefault. */
function fixableProblems(file: AnyFile): { line: number; message: string }[] {
  return [
    ...beginStatements(file).filter(isDeferred).map((b) => ({ line: b.line, message: `deferred BEGIN in ${b.call.getExpression().getText()}(…)` })),
    ...uncoveredConnections(file).map((s) => ({ line: s.line, message: `${s.text}: its transaction() helper would begin DEFERRED (expected immediateByDefault(${s.text}))` })),
  ];
}

function wrapConnections(file: PatchFile, skip: (s: ConnectionSite) => boolean = () => false): void {
  for (const s of uncoveredConnections(file).filter((x) => !skip(x))) {
    file.edit.appendLeft(s.node.getStart(), `${marker(ID)} require(${JSON.stringify(requirePath(file.path))}).immediateByDefault(`);
    file.edit.appendRight(s.node.getEnd(), ")");
  }
}

/** Upstream files (not ours) that may open a connection or run a BEGIN. */
function candidates(tree: TreeView): string[] {
  return tree.jsFiles.filter((f) => !tree.isAdded(f) && (MAY_OPEN_CONNECTION.test(tree.text(f)) || /begin/i.test(tree.text(f)) || /\.deferred\b/.test(tree.text(f))));
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
    if (file.path === COMPAT) applyCompat(file);
    else if (file.path === DB) applyDb(file);
    else {
      // Any other module discover() found: a connection of its own, or a raw BEGIN.
      wrapConnections(file);
      makeImmediate(file);
    }
  },
  verify(file) {
    if (file.path === COMPAT) return verifyCompat(file);
    if (file.path === DB) return verifyDb(file);
    return fixableProblems(file).map((p) => finding`${new At(p.line)}: ${p.message}`);
  },
  discover(tree) {
    return candidates(tree).filter((f) => f !== COMPAT && f !== DB && fixableProblems(tree.file(f)).length > 0);
  },
  verifyTree(tree) {
    return candidates(tree).flatMap((f) => {
      const file = tree.file(f);
      return [
        ...fixableProblems(file).map((p) => `${f}:${p.line} ${p.message}`),
        ...explicitDeferred(file).map((n) => `${f}:${n.getStartLineNumber()} ${n.getText().split("\n")[0]}: an explicitly deferred transaction (take the write lock up front: .immediate)`),
      ];
    });
  },
  reportTree(tree) {
    const files = candidates(tree);
    const begins = files.flatMap((f) => beginStatements(tree.file(f)).map((b) => ({ f, b })));
    const sites = files.flatMap((f) => connectionSites(tree.file(f)).map((s) => ({ f, s })));
    const deferred = files.reduce((n, f) => n + explicitDeferred(tree.file(f)).length, 0);
    const status = (f: string, s: ConnectionSite): string => {
      const exempt = txExempt(s);
      if (exempt) return `exempt (${exempt})`;
      if (s.wrappers.has("immediateByDefault")) return "transaction() IMMEDIATE (wrapped at open)";
      return coveredByStatement(tree.file(f), s) ? "transaction() IMMEDIATE (immediateByDefault after open)" : "DEFERRED transaction()";
    };
    return [
      `${tree.jsFiles.length} JS files scanned: ${begins.length} raw BEGIN statements (${begins.filter(({ b }) => isDeferred(b)).length} deferred), ${sites.length} connection sites, ${deferred} explicit .deferred transactions`,
      ...begins.map(({ f, b }) => `${f}:${b.line} BEGIN${b.mode ? ` ${b.mode.word}` : ""} in ${b.call.getExpression().getText()}(…)`),
      ...sites.map(({ f, s }) => `${f}:${s.line} ${s.text}: ${status(f, s)}`),
    ];
  },
  report(file) {
    return file.path.endsWith("compat-sqlite.js") ? reportCompat(file) : reportDb(file);
  },
});
