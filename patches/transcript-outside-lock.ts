// processEvent's body becomes processEventCore(hookType, data, transcriptData), run inside the
// write transaction with no transcript read in it: every transcriptCache.extract(...) the body did
// is done first, by extractTranscriptForEvent(hookType, data), and handed in. processEvent(hookType,
// data) stays for single-event callers (reads the transcript, then runs the core in db.transaction).
// verify walks the call graph from processEventCore through the module's own functions and names
// the chain to any transcript read or synchronous file I/O it can still reach.
import { isBuiltin } from "node:module";
import { type Block, type CallExpression, Node, type SourceFile, SyntaxKind, type VariableDeclaration } from "ts-morph";
import { type FnLike, topLevelFunction } from "./lib/ast.ts";
import { definePatch, marker, type PatchFile, type VerifyFile } from "./define-patch.ts";
import { At, type Finding, finding, type Found, PatchTargetError } from "./lib/errors.ts";
import { at, findOne, frame, stringValue, variableAnchor } from "./lib/find.ts";

const ID = "transcript-outside-lock";
const TARGET = "server/routes/hooks.js";
const CORE = "processEventCore";
const HELPER = "extractTranscriptForEvent";
const WRAPPER_TX = "processEventTransaction";
const TRANSCRIPT_PARAM = "transcriptData";
const SHAPE = "const processEvent = db.transaction((hookType, data) => { … })";

/** transcriptCache methods that only touch memory (allowed under the lock). */
const IN_MEMORY_CACHE_METHODS = new Set(["invalidate", "clear", "stats"]);

function fail(file: PatchFile, expected: string, found: number, detail: Finding): never {
  throw new PatchTargetError(ID, file.path, expected, found, detail);
}

/** Identifiers an expression reads from its scope (property names and object keys excluded). */
function freeIdentifiers(expr: Node): string[] {
  const ids = Node.isIdentifier(expr) ? [expr] : expr.getDescendantsOfKind(SyntaxKind.Identifier);
  return ids
    .filter((id) => {
      const parent = id.getParent();
      if (parent && Node.isPropertyAccessExpression(parent) && parent.getNameNode() === id) return false;
      if (parent && Node.isPropertyAssignment(parent) && parent.getNameNode() === id) return false;
      return true;
    })
    .map((id) => id.getText());
}

/** `this` or `arguments` used by the function itself (not by nested non-arrow functions). */
function usesOwnThisOrArguments(fn: FnLike): Found | null {
  let found: Found | null = null;
  fn.getBody().forEachDescendant((node, traversal) => {
    if (Node.isFunctionDeclaration(node) || Node.isFunctionExpression(node) || Node.isMethodDeclaration(node) || Node.isClassDeclaration(node)) {
      traversal.skip();
      return;
    }
    if (node.getKind() === SyntaxKind.ThisKeyword) found = finding`\`this\` at ${at(node)}`;
    else if (Node.isIdentifier(node) && node.getText() === "arguments") found = finding`\`arguments\` at ${at(node)}`;
  });
  return found;
}

function isTranscriptExtractCall(call: CallExpression): boolean {
  const callee = call.getExpression();
  return Node.isPropertyAccessExpression(callee) && callee.getName() === "extract" && /transcriptCache$/i.test(callee.getExpression().getText().replace(/\s+/g, ""));
}

/** Top-level names declared in the module (to avoid collisions with what we add). */
function moduleDeclaredNames(sf: SourceFile): Set<string> {
  const names = new Set<string>();
  for (const st of sf.getStatements()) {
    if (Node.isFunctionDeclaration(st) && st.getName()) names.add(st.getName()!);
    if (Node.isVariableStatement(st)) for (const d of st.getDeclarations()) names.add(d.getName());
    if (Node.isClassDeclaration(st) && st.getName()) names.add(st.getName()!);
  }
  return names;
}

interface Located {
  decl: VariableDeclaration;
  txCall: CallExpression;
  fn: FnLike;
  body: Block;
  params: [string, string];
}

function locate(file: PatchFile): Located {
  const decl = findOne(ID, file, variableAnchor("processEvent"));
  const init = decl.getInitializer();
  const txCall = init && Node.isCallExpression(init) ? init : null;
  const callee = txCall?.getExpression();
  const isTx = !!callee && Node.isPropertyAccessExpression(callee) && callee.getName() === "transaction";
  const fnArg = txCall?.getArguments()[0];
  if (!txCall || !isTx || txCall.getArguments().length !== 1 || !fnArg || !(Node.isArrowFunction(fnArg) || Node.isFunctionExpression(fnArg))) {
    fail(file, SHAPE, 0, finding`processEvent is no longer a db.transaction(...) wrapper around an inline function (${frame(decl)}). Upstream changed how events are written; re-check where the transcript is read.`);
  }
  const fn = fnArg as FnLike;
  const body = fn.getBody();
  if (!Node.isBlock(body)) fail(file, `${SHAPE} with a block body`, 0, finding`the transaction callback has an expression body (${frame(fn)}).`);
  const params = fn.getParameters();
  if (params.length !== 2 || params.some((p) => !Node.isIdentifier(p.getNameNode()))) {
    fail(file, SHAPE, 0, finding`the transaction callback takes ${params.length} parameter(s) (${frame(fn)}); expected (hookType, data). Upstream changed processEvent's signature.`);
  }
  const statement = decl.getVariableStatement();
  if (!statement || statement.getDeclarations().length !== 1 || statement.getParent() !== file.ast) {
    fail(file, `${SHAPE} as its own top-level statement`, 0, finding`processEvent is declared together with other variables or not at module level (${frame(decl)}).`);
  }
  return { decl, txCall, fn, body: body as Block, params: [params[0].getName(), params[1].getName()] };
}

function apply(file: PatchFile): void {
  const { decl, txCall, fn, body, params } = locate(file);
  const [hookParam, dataParam] = params;
  const statement = decl.getVariableStatement()!;

  const extractCalls = body.getDescendantsOfKind(SyntaxKind.CallExpression).filter(isTranscriptExtractCall);
  if (extractCalls.length === 0) {
    fail(file, "transcriptCache.extract(…) inside processEvent", 0, "processEvent no longer reads the transcript itself; upstream moved the read, so this patch must be re-evaluated.");
  }
  const receivers = new Set(extractCalls.map((c) => (c.getExpression() as import("ts-morph").PropertyAccessExpression).getExpression().getText()));
  if (receivers.size !== 1) fail(file, "one transcript cache instance used by processEvent", receivers.size, `processEvent reads through ${[...receivers].join(", ")}.`);
  const cacheName = [...receivers][0];

  const reads: string[] = [];
  for (const call of extractCalls) {
    const args = call.getArguments();
    if (args.length !== 1) fail(file, "transcriptCache.extract(<path>) with one argument", 0, finding`${frame(call)} passes ${args.length}.`);
    const free = freeIdentifiers(args[0]).filter((n) => n !== hookParam && n !== dataParam);
    if (free.length > 0) {
      fail(file, `transcriptCache.extract(<path computed from ${hookParam}/${dataParam}>)`, 0,
        finding`${frame(call)}: the path depends on ${[...new Set(free)].join(", ")}, computed inside the transaction, so it cannot be read before the lock is taken.`);
    }
    const text = args[0].getText();
    if (!reads.some((r) => r.replace(/\s+/g, "") === text.replace(/\s+/g, ""))) reads.push(text);
  }

  const own = usesOwnThisOrArguments(fn);
  if (own) fail(file, "a transaction callback that does not use this/arguments", 0, finding`processEvent's callback uses ${own}; turning it into a function declaration would change its meaning.`);
  const taken = moduleDeclaredNames(file.ast);
  for (const name of [CORE, HELPER, WRAPPER_TX]) {
    if (taken.has(name)) fail(file, `no existing top-level ${name}`, 1, `the module already declares ${name}; upstream added its own? Rename ours.`);
  }
  if (body.getDescendantsOfKind(SyntaxKind.Identifier).some((id) => id.getText() === TRANSCRIPT_PARAM)) {
    fail(file, `processEvent's body free of the name ${TRANSCRIPT_PARAM}`, 1, `the body already uses ${TRANSCRIPT_PARAM}; rename the parameter.`);
  }

  const m = marker(ID);
  const txCallee = txCall.getExpression().getText();
  const helper = [
    m,
    "// Every transcript read processEventCore needs, done BEFORE the write transaction: a large",
    "// JSONL must never be parsed while the SQLite write lock is held. transcriptCache.extract is",
    "// cumulative and stat-cached, so one read per path serves every use inside the core.",
    `function ${HELPER}(${hookParam}, ${dataParam}) {`,
    "  const results = new Map();",
    "  const read = (transcriptPath) => {",
    `    if (transcriptPath && !results.has(transcriptPath)) results.set(transcriptPath, ${cacheName}.extract(transcriptPath));`,
    "  };",
    ...reads.map((r) => `  read(${r});`),
    "  return {",
    "    resultFor: (transcriptPath) => (results.has(transcriptPath) ? results.get(transcriptPath) : null),",
    "  };",
    "}",
    "",
    "",
  ].join("\n");
  const coreHeader = `${m} // runs under the write lock: no transcript read, no synchronous file I/O (checked at build time)\nfunction ${CORE}(${hookParam}, ${dataParam}, ${TRANSCRIPT_PARAM}) `;
  const wrapper = [
    "",
    "",
    m,
    `// Single-event callers keep processEvent(${hookParam}, ${dataParam}): the transcript is read first,`,
    "// then processEventCore runs in its own write transaction.",
    `const ${WRAPPER_TX} = ${txCallee}(${CORE});`,
    `const processEvent = (${hookParam}, ${dataParam}) => ${WRAPPER_TX}(${hookParam}, ${dataParam}, ${HELPER}(${hookParam}, ${dataParam}));`,
  ].join("\n");

  // The helper goes above the statement's JSDoc (which stays with processEventCore).
  file.edit.appendLeft(statement.getStart(true), helper);
  file.edit.overwrite(statement.getStart(), body.getStart(), coreHeader);
  for (const call of extractCalls) {
    const callee = call.getExpression();
    file.edit.overwrite(callee.getStart(), callee.getEnd(), `${m} ${TRANSCRIPT_PARAM}.resultFor`);
  }
  file.edit.overwrite(body.getEnd(), statement.getEnd(), wrapper);
}

// ── Call-graph check: what can run while the write lock is held ────────────

export interface LockFinding {
  /** processEventCore → … → the function containing the call. */
  chain: string[];
  what: string;
  line: number;
}

export interface LockAnalysis {
  found: boolean;
  /** Module functions reachable from the root (root first). */
  reachable: string[];
  findings: LockFinding[];
}

/** Why a call does I/O or reads a transcript, or null when it is harmless. */
export function lockHazard(call: CallExpression): string | null {
  const callee = call.getExpression();
  if (Node.isPropertyAccessExpression(callee)) {
    const name = callee.getName();
    const recv = callee.getExpression().getText().replace(/\s+/g, "");
    if (/transcriptCache$/i.test(recv) && !IN_MEMORY_CACHE_METHODS.has(name)) return `transcript read ${recv}.${name}(…)`;
    if (/Sync$/.test(name)) return `synchronous I/O ${recv}.${name}(…)`;
    return null;
  }
  if (Node.isIdentifier(callee)) {
    const name = callee.getText();
    if (/Sync$/.test(name)) return `synchronous I/O ${name}(…)`;
    if (name === "require") {
      const spec = stringValue(call.getArguments()[0]);
      if (spec === null || !isBuiltin(spec)) return `module load require(${call.getArguments()[0]?.getText() ?? ""}) (synchronous file I/O)`;
    }
  }
  return null;
}

/** Module-level functions by name: declarations, function-valued consts, and wrappers like db.transaction(fn). */
export function moduleFunctions(sf: SourceFile): Map<string, Node> {
  const out = new Map<string, Node>();
  for (const st of sf.getStatements()) {
    if (Node.isFunctionDeclaration(st) && st.getName() && st.getBody()) out.set(st.getName()!, st);
    if (!Node.isVariableStatement(st)) continue;
    for (const d of st.getDeclarations()) {
      const init = d.getInitializer();
      if (!init) continue;
      if (Node.isArrowFunction(init) || Node.isFunctionExpression(init)) out.set(d.getName(), init);
      else if (Node.isCallExpression(init) && init.getArguments().some((a) => Node.isArrowFunction(a) || Node.isFunctionExpression(a) || Node.isIdentifier(a))) {
        // A wrapper (db.transaction(fn), debounce(fn), …): calling it runs its function argument(s).
        out.set(d.getName(), init);
      }
    }
  }
  return out;
}

function referencedNames(node: Node, names: Map<string, Node>): string[] {
  const out = new Set<string>();
  const visit = (id: Node) => {
    const text = id.getText();
    if (!names.has(text)) return;
    const parent = id.getParent();
    if (parent && Node.isPropertyAccessExpression(parent) && parent.getNameNode() === id) return;
    if (parent && (Node.isFunctionDeclaration(parent) || Node.isVariableDeclaration(parent) || Node.isParameterDeclaration(parent)) && parent.getNameNode() === id) return;
    out.add(text);
  };
  if (Node.isIdentifier(node)) visit(node);
  node.getDescendantsOfKind(SyntaxKind.Identifier).forEach(visit);
  return [...out];
}

/**
 * Walk the call graph from `root` through the module's own functions (transitively) and report
 * every transcript read / synchronous file I/O / non-builtin require reachable from it.
 */
export function analyzeLockHeld(sf: SourceFile, root = CORE): LockAnalysis {
  const fns = moduleFunctions(sf);
  const start = fns.get(root);
  if (!start) return { found: false, reachable: [], findings: [] };
  const parent = new Map<string, string | null>([[root, null]]);
  const order: string[] = [];
  const queue = [root];
  const findings: LockFinding[] = [];
  const chainOf = (name: string): string[] => {
    const chain: string[] = [];
    for (let n: string | null = name; n !== null; n = parent.get(n) ?? null) chain.unshift(n);
    return chain;
  };
  while (queue.length > 0) {
    const name = queue.shift()!;
    order.push(name);
    const node = fns.get(name)!;
    for (const call of node.getDescendantsOfKind(SyntaxKind.CallExpression)) {
      const what = lockHazard(call);
      if (what) findings.push({ chain: chainOf(name), what, line: call.getStartLineNumber() });
    }
    for (const next of referencedNames(node, fns)) {
      if (parent.has(next)) continue;
      parent.set(next, name);
      queue.push(next);
    }
  }
  return { found: true, reachable: order, findings };
}

export function describeFinding(f: LockFinding): Found {
  return finding`under the write lock: ${f.chain.join(" → ")} does ${f.what} (${new At(f.line)})`;
}

function verify(file: VerifyFile): Finding[] {
  const sf = file.ast;
  const problems: Finding[] = [];
  const core = topLevelFunction(sf, CORE);
  if (!core) return [`no top-level function ${CORE}(hookType, data, ${TRANSCRIPT_PARAM}): processEvent's body still runs as a db.transaction callback`];
  if (!Node.isFunctionDeclaration(core) || core.getParameters().length < 3) problems.push(`${CORE} must take (hookType, data, ${TRANSCRIPT_PARAM})`);
  if (!topLevelFunction(sf, HELPER)) problems.push(`no function ${HELPER}(hookType, data) that reads the transcript before the transaction`);

  const txOfCore = sf.getDescendantsOfKind(SyntaxKind.CallExpression).some((c) => {
    const callee = c.getExpression();
    const arg = c.getArguments()[0];
    return Node.isPropertyAccessExpression(callee) && callee.getName() === "transaction" && !!arg && Node.isIdentifier(arg) && arg.getText() === CORE;
  });
  if (!txOfCore) problems.push(`no db.transaction(${CORE}) for single-event callers`);
  const fns = moduleFunctions(sf);
  const wrapper = fns.get("processEvent") ?? topLevelFunction(sf, "processEvent");
  if (!wrapper) problems.push("processEvent(hookType, data) is gone; single-event callers need it");
  else if (!wrapper.getDescendantsOfKind(SyntaxKind.Identifier).some((id) => id.getText() === HELPER)) {
    problems.push(`processEvent does not read the transcript through ${HELPER} before its transaction`);
  }

  const analysis = analyzeLockHeld(sf, CORE);
  for (const f of analysis.findings) problems.push(describeFinding(f));
  return problems;
}

function report(file: VerifyFile): string[] {
  const analysis = analyzeLockHeld(file.ast, CORE);
  if (!analysis.found) return [`${file.path}: ${CORE} not found`];
  return [
    `${file.path}: ${CORE} reaches ${analysis.reachable.length - 1} module function(s) under the write lock (${analysis.reachable.slice(1).join(", ") || "none"}); ` +
      `${analysis.findings.length === 0 ? "no transcript read or synchronous file I/O among them" : `${analysis.findings.length} hazard(s)`}`,
  ];
}

export default definePatch({
  id: ID,
  description: "Read the transcript before the write transaction: processEvent's body becomes processEventCore(hookType, data, transcriptData).",
  why:
    "Upstream parses the transcript JSONL (transcriptCache.extract, synchronous fs reads of files that grow to tens of MB) inside " +
    "db.transaction, so the SQLite write lock is held for the whole parse: every other writer (hooks, watchdog, imports) waits or hits SQLITE_BUSY.",
  removeWhen: "upstream reads transcripts outside its write transaction (processEvent no longer calls transcriptCache.extract inside db.transaction).",
  targets: [TARGET],
  apply,
  verify,
  report,
});
