// watchdogCheck: transcript reads and file-system calls first, then one IMMEDIATE transaction whose
// decisions use state read inside it, with its broadcasts sent only after COMMIT.
import { Node, SyntaxKind, type CallExpression, type ForOfStatement, type FunctionDeclaration, type Statement } from "ts-morph";
import { indentOf } from "./lib/ast.ts";
import { definePatch, marker, type PatchFile, type VerifyFile } from "./define-patch.ts";
import { type Finding, finding, PatchDriftError, PatchTargetError } from "./lib/errors.ts";
import { at, findAll, findOne, frame, functionAnchor, variableAnchor, type Anchor } from "./lib/find.ts";
import { functionsByName, isDeclarationName, reachChain } from "./lib/reach.ts";
import { sqlLiteral, sqlText } from "./lib/sqlite.ts";

const ID = "atomic-watchdog";
const HOOKS = "server/routes/hooks.js";
const M = marker(ID);

/** Names the patch introduces. */
export const WATCHDOG_NAMES = {
  run: "runWatchdogTransaction",
  stat: "watchdogStatOf",
  reads: "watchdogReads",
  read: "watchdogRead",
  fresh: "staleNow",
  query: "queryStaleSessions",
  emit: "emit",
} as const;
const N = WATCHDOG_NAMES;

const HELPERS = `${M}
// watchdogCheck reads first, then writes atomically. The pre-pass does every transcript read
// (transcriptCache.extract) and file-system call; then ONE transaction (db.transaction: BEGIN
// IMMEDIATE) re-runs the stale-session query, re-reads the session and agent rows and decides on
// that state, so a hook that landed since the pre-pass is never overwritten by a stale decision.
// Its own broadcasts are collected and sent after COMMIT (dropped on rollback); broadcasts made by
// the helpers it calls are held through websocket.js's holdBroadcasts when the write queue added it.
// A timer callback is synchronous, so it can never run between a write-queue batch's BEGIN and COMMIT.
function ${N.stat}(file) {
  try {
    const st = require("fs").statSync(file);
    return () => st;
  } catch (err) {
    return () => {
      throw err;
    };
  }
}

function ${N.run}(body) {
  const ws = require("../websocket");
  const hold = typeof ws.holdBroadcasts === "function" ? ws.holdBroadcasts() : null;
  const frames = [];
  const ${N.emit} = (type, data) => {
    frames.push([type, data]);
  };
  try {
    db.transaction(() => body(${N.emit}))();
  } catch (err) {
    if (hold) hold.discard();
    throw err;
  }
  if (hold) hold.flush();
  for (const [type, data] of frames) broadcast(type, data);
}

`;

const staleLoop = (within: Node): Anchor<ForOfStatement> => ({
  shape: "for (const sess of staleSessions) { … } in watchdogCheck",
  kind: SyntaxKind.ForOfStatement,
  within,
  match: (n): n is ForOfStatement => Node.isForOfStatement(n) && n.getExpression().getText() === "staleSessions",
});

function fail(file: PatchFile, expected: string, detail: Finding): never {
  throw new PatchTargetError(ID, file.path, expected, 0, detail);
}

/** `const result = transcriptCache.extract(tPath);` as a direct statement of the loop body. */
function isExtractStatement(st: Statement): boolean {
  if (!Node.isVariableStatement(st)) return false;
  const decls = st.getDeclarations();
  if (decls.length !== 1 || decls[0].getName() !== "result") return false;
  const init = decls[0].getInitializer();
  return !!init && Node.isCallExpression(init) && init.getExpression().getText() === "transcriptCache.extract" && init.getArguments()[0]?.getText() === "tPath";
}

const calleeText = (c: CallExpression) => c.getExpression().getText().replace(/\s+/g, "");

/** The shape is there, but what it does no longer fits the split: say what and where. */
function drift(file: PatchFile, message: Finding): never {
  throw new PatchDriftError(ID, file.path, message);
}

function apply(file: PatchFile): void {
  const fn = findOne(ID, file, functionAnchor("watchdogCheck"));
  const body = fn.getBody();
  if (!body || !Node.isBlock(body)) fail(file, "function watchdogCheck() { … }", "watchdogCheck has no body.");
  for (const name of [N.run, N.stat]) {
    if (file.ast.getStatements().some((s) => Node.isFunctionDeclaration(s) && s.getName() === name)) {
      throw new PatchTargetError(ID, file.path, `no existing function ${name}`, 1, "Upstream added its own? Rename ours.");
    }
  }
  const taken = new Set(fn.getDescendantsOfKind(SyntaxKind.Identifier).map((i) => i.getText()));
  for (const name of [N.reads, N.read, N.fresh, N.emit, N.query]) {
    if (taken.has(name)) throw new PatchTargetError(ID, file.path, `no identifier ${name} in watchdogCheck`, 1, "watchdogCheck already uses that name; rename ours.");
  }

  const staleDecl = findOne(ID, file, { ...variableAnchor("staleSessions"), within: fn });
  const staleInit = staleDecl.getInitializerOrThrow();
  if (!/\.all\(/.test(staleInit.getText())) fail(file, "const staleSessions = db.prepare(…).all(…)", finding`Found: ${frame(staleDecl)}.`);
  const loop = findOne(ID, file, staleLoop(fn));
  const loopBody = loop.getStatement();
  if (!Node.isBlock(loopBody)) fail(file, "for (const sess of staleSessions) { … } with a block body", finding`Found: ${frame(loop)}.`);
  const init = loop.getInitializer();
  if (init.getText().replace(/\s+/g, " ") !== "const sess") fail(file, "for (const sess of staleSessions)", finding`Found: ${frame(loop)}.`);

  const statements = loopBody.getStatements();
  const split = statements.findIndex(isExtractStatement);
  if (split === -1) {
    const near = loopBody.getDescendantsOfKind(SyntaxKind.CallExpression).find((c) => calleeText(c) === "transcriptCache.extract");
    fail(file, "const result = transcriptCache.extract(tPath); directly in the stale-session loop", near ? finding`Nearest: ${frame(near)}.` : "The loop no longer reads the transcript with transcriptCache.extract(tPath).");
  }
  const prefix = statements.slice(0, split + 1);
  const suffix = statements.slice(split + 1);

  // The pre-pass (prefix) may read only: no writes, no broadcasts.
  for (const st of prefix) {
    for (const c of st.getDescendantsOfKind(SyntaxKind.CallExpression)) {
      const t = calleeText(c);
      if (t === "broadcast" || /\.run$/.test(t) || /^db\.exec$/.test(t)) {
        drift(file, finding`watchdogCheck writes before its transcript read (${at(c)}: ${t}(…)); the pre-pass must be read-only. Upstream reordered the watchdog.`);
      }
    }
  }
  // The decide-and-write part (suffix) moves into the transaction: it must not read transcripts
  // or touch the file system, except the one fs.statSync(tPath) the pre-pass takes over.
  const statCalls: CallExpression[] = [];
  const broadcasts: CallExpression[] = [];
  for (const st of suffix) {
    for (const c of st.getDescendantsOfKind(SyntaxKind.CallExpression)) {
      const t = calleeText(c);
      if (t === "broadcast") broadcasts.push(c);
      else if (t === "fs.statSync" && c.getArguments().length === 1 && c.getArguments()[0].getText() === "tPath") statCalls.push(c);
      else if (/^transcriptCache\./.test(t) || /^fs\./.test(t) || /Sync$/.test(t) || t === "require") {
        drift(file, finding`watchdogCheck reads after its decisions began (${at(c)}: ${t}(…)), which would run inside the transaction; extend the pre-pass of ${ID} to read it first.`);
      }
    }
  }

  // The decisions may use only what the pre-pass hands over: sess (re-read), tPath and result.
  const prefixNames = prefix.flatMap((st) =>
    Node.isVariableStatement(st) ? st.getDeclarations().flatMap((d) => [d.getNameNode(), ...d.getNameNode().getDescendantsOfKind(SyntaxKind.Identifier)].map((n) => n.getText())) : [],
  );
  for (const name of prefixNames.filter((n) => n !== "tPath" && n !== "result")) {
    const use = suffix.flatMap((st) => st.getDescendantsOfKind(SyntaxKind.Identifier)).find((i) => i.getText() === name);
    if (use) drift(file, finding`watchdogCheck's decisions use ${name} (${at(use)}), computed in the pre-pass; only tPath and result are handed over. Extend ${ID}.`);
  }

  file.edit.appendLeft(fn.getStart(), HELPERS);

  // The stale-session query becomes a function, run once for the pre-pass and again inside the transaction.
  const staleStmt = staleDecl.getVariableStatementOrThrow();
  if (staleStmt.getDeclarations().length !== 1) fail(file, "const staleSessions = …; as its own statement", finding`Found: ${frame(staleStmt)}.`);
  file.edit.overwrite(staleDecl.getNameNode().getStart(), staleDecl.getNameNode().getEnd(), N.query);
  const staleIndent = indentOf(file.text, staleStmt);
  file.edit.appendLeft(staleInit.getStart(), `() =>\n${staleIndent}  `);
  file.edit.appendLeft(staleStmt.getEnd(), `\n${staleIndent}const staleSessions = ${N.query}(); ${M}`);

  const loopIndent = indentOf(file.text, loop);
  const inner = `${loopIndent}  `;
  file.edit.appendLeft(loop.getStart(), `const ${N.reads} = []; ${M} // pre-pass: transcript reads and fs calls only\n${loopIndent}`);
  const extractStmt = statements[split];
  const stmtIndent = indentOf(file.text, extractStmt);
  file.edit.appendLeft(
    extractStmt.getEnd(),
    [
      "",
      `${stmtIndent}${N.reads}.push({ id: sess.id, tPath, result${statCalls.length > 0 ? `, stat: ${N.stat}(tPath)` : ""} }); ${M}`,
      `${loopIndent}}`,
      `${loopIndent}${M} // decide and write in one IMMEDIATE transaction, on state read inside it; broadcasts after COMMIT`,
      `${loopIndent}if (${N.reads}.length > 0) ${N.run}((${N.emit}) => {`,
      `${inner}const ${N.fresh} = new Map(${N.query}().map((s) => [s.id, s]));`,
      `${inner}for (const ${N.read} of ${N.reads}) {`,
      `${inner}  const sess = ${N.fresh}.get(${N.read}.id);`,
      `${inner}  if (!sess) continue; // a hook moved it (active again, ended, or fresh) since the pre-pass`,
      `${inner}  const { tPath, result } = ${N.read};`,
    ].join("\n"),
  );
  for (const c of statCalls) file.edit.overwrite(c.getStart(), c.getEnd(), `${N.read}.stat()`);
  for (const c of broadcasts) file.edit.overwrite(c.getExpression().getStart(), c.getExpression().getEnd(), N.emit);
  file.edit.appendLeft(loop.getEnd(), `\n${loopIndent}});`);
}

/** The function passed to runWatchdogTransaction(…) inside watchdogCheck, or a problem. */
function transactionBody(fn: FunctionDeclaration): Node | string {
  const calls = fn.getDescendantsOfKind(SyntaxKind.CallExpression).filter((c) => calleeText(c) === N.run);
  if (calls.length !== 1) return `watchdogCheck calls ${N.run}(…) ${calls.length} times, expected once`;
  const arg = calls[0].getArguments()[0];
  if (!arg || !(Node.isArrowFunction(arg) || Node.isFunctionExpression(arg))) return `${N.run}(…) in watchdogCheck does not get an inline function`;
  return arg;
}

// ── Every write watchdogCheck performs, through any function of the module ─────────────

/**
 * Module functions watchdogCheck calls outside its transaction on purpose, each reviewed. The gate
 * fails on any other write outside; a new entry here needs the same review.
 */
export const OUTSIDE_BY_DESIGN: Record<string, string> = {
  livenessReap:
    "a separate sweep (also router.livenessReap) that probes processes with ps/lsof, which must not run under the write lock; " +
    "it only completes sessions whose CLI is gone, so a hook landing in between reactivates them",
};

const WRITE_SQL = /(^|;)\s*(INSERT|UPDATE|DELETE|REPLACE|UPSERT|CREATE|DROP|ALTER)\b/i;

/** A call that writes by itself: a prepared statement's `.run(…)`, or `.exec(…)` of writing SQL (any SQL on a `db`). */
function directWrite(file: VerifyFile, c: CallExpression): boolean {
  const callee = c.getExpression();
  if (!Node.isPropertyAccessExpression(callee)) return false;
  if (callee.getName() === "run") return true;
  if (callee.getName() !== "exec") return false;
  const lit = sqlLiteral(file, c.getArguments()[0]);
  return lit ? WRITE_SQL.test(sqlText(lit)) : /(^|\.)db$/i.test(callee.getExpression().getText());
}

interface OutsideWrite {
  line: number;
  what: Finding;
}

/** Writes watchdogCheck performs outside the function it hands to runWatchdogTransaction (helpers followed). */
function writesOutsideTransaction(file: VerifyFile, fn: FunctionDeclaration, tx: Node): { writes: OutsideWrite[]; byDesign: string[]; helpers: number } {
  const fns = functionsByName(file.ast, fn);
  fns.delete(N.run);
  const reach = { fns, hit: (n: Node) => Node.isCallExpression(n) && directWrite(file, n) };
  const inside = (n: Node) => n.getStart() >= tx.getStart() && n.getEnd() <= tx.getEnd();
  const writes: OutsideWrite[] = [];
  const byDesign = new Set<string>();
  const reached = new Set<string>();
  for (const d of fn.getBody()!.getDescendants()) {
    if (inside(d)) continue;
    if (Node.isCallExpression(d) && directWrite(file, d)) writes.push({ line: d.getStartLineNumber(), what: finding`${frame(d)} writes outside watchdogCheck's transaction` });
    else if (Node.isIdentifier(d) && fns.has(d.getText()) && !isDeclarationName(d)) {
      const name = d.getText();
      reached.add(name);
      const chain = reachChain(fns.get(name)!, reach);
      if (!chain) continue;
      if (OUTSIDE_BY_DESIGN[name]) byDesign.add(name);
      else writes.push({ line: d.getStartLineNumber(), what: finding`${at(d)}: ${name}(…) writes outside watchdogCheck's transaction (${name} → ${chain})` });
    }
  }
  return { writes, byDesign: [...byDesign], helpers: reached.size };
}

function verify(file: VerifyFile): Finding[] {
  const fns = findAll(file, functionAnchor("watchdogCheck"));
  if (fns.length !== 1) return [`expected 1 function watchdogCheck, found ${fns.length}`];
  const fn = fns[0];
  const problems: Finding[] = [];
  const runFn = file.ast.getStatements().find((s): s is FunctionDeclaration => Node.isFunctionDeclaration(s) && s.getName() === N.run);
  if (!runFn) return [`no module-level function ${N.run}(body)`];
  const runCalls = runFn.getDescendantsOfKind(SyntaxKind.CallExpression).map(calleeText);
  if (!runCalls.includes("db.transaction")) problems.push(`${N.run} does not open a db.transaction`);
  const tx = transactionBody(fn);
  if (typeof tx === "string") return [...problems, tx];
  for (const c of tx.getDescendantsOfKind(SyntaxKind.CallExpression)) {
    const t = calleeText(c);
    if (/^transcriptCache\./.test(t)) problems.push(finding`watchdogCheck's transaction reads a transcript: ${frame(c)}`);
    else if (/^fs\./.test(t) || /Sync$/.test(t)) problems.push(finding`watchdogCheck's transaction makes a synchronous file-system call: ${frame(c)}`);
    else if (t === "broadcast") problems.push(finding`watchdogCheck's transaction broadcasts directly (before COMMIT): ${frame(c)}`);
  }
  const reread = tx.getDescendantsOfKind(SyntaxKind.VariableDeclaration).some((d) => d.getName() === N.fresh);
  if (!reread) problems.push("watchdogCheck's transaction does not re-run the stale-session query (it would decide on the pre-pass snapshot)");
  for (const w of writesOutsideTransaction(file, fn, tx).writes) problems.push(w.what);
  return problems;
}

export default definePatch({
  id: ID,
  description: "watchdogCheck reads transcripts first, then decides and writes in one IMMEDIATE transaction; broadcasts go out after COMMIT.",
  why:
    "The watchdog read a session list, then for each session read its transcript (sync file I/O) and wrote status changes and " +
    "APIError events statement by statement, each its own autocommit, deciding on rows read before the transcript parse: a hook " +
    "written in between (e.g. a UserPromptSubmit) could be overwritten by a stale decision, a half-done tick could be observed, " +
    "and clients got broadcasts for writes that were not committed yet.",
  removeWhen: "Upstream's watchdog separates the transcript reads from a single transaction that re-reads state and defers its broadcasts.",
  targets: [HOOKS],
  apply,
  verify,
  report: (file) => {
    const fn = findAll(file, functionAnchor("watchdogCheck"))[0];
    if (!fn) return [];
    const tx = transactionBody(fn);
    if (typeof tx === "string") return [];
    const outside = writesOutsideTransaction(file, fn, tx);
    return [
      `${file.path}: watchdogCheck transaction body lines ${tx.getStartLineNumber()}-${tx.getEndLineNumber()}: no transcript read, no sync fs call, no direct broadcast`,
      `${file.path}: every write watchdogCheck performs outside that body, directly or through the ${outside.helpers} module function(s) it reaches there (followed transitively): ${outside.writes.length}` +
        (outside.byDesign.length ? `; outside by design (reviewed): ${outside.byDesign.map((n) => `${n} (${OUTSIDE_BY_DESIGN[n]})`).join("; ")}` : ""),
    ];
  },
});

